"""Keras files whose labels lie: gateport computes what the Keras that wrote them computes, or
refuses in one line.

Real Keras 3 (torch backend) models are saved here with ``save_weights`` / ``save``; the
attack files are made from them: layer names swapped in the config (Keras loads by position),
custom classes or activations posing as built-ins, a Keras 1 file relabelled as Keras 3,
declared sizes that contradict the weights, configs nested 50,000 levels deep. The oracle is
Keras' own ``load_weights`` on the same files.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from converters import reference, safe_json  # noqa: E402
from converters.cli import main  # noqa: E402
from converters.errors import FormatError, GateportError, UnsafeError, UnsupportedError  # noqa: E402
from converters.readers import read, read_recurrent_weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
from helpers import TOL  # noqa: E402
X = np.random.default_rng(3).standard_normal((2, 5, 4)).astype("float32")


# -- the model and its files ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """LSTM 'a' -> LSTM 'b' (same shapes, b with hard_sigmoid) -> Dense 'd', saved three ways."""
    d = tmp_path_factory.mktemp("k3")
    inp = keras.Input((5, 4), name="x")
    y = keras.layers.LSTM(4, return_sequences=True, name="a")(inp)
    y = keras.layers.LSTM(4, return_sequences=True, recurrent_activation="hard_sigmoid", name="b")(y)
    y = keras.layers.Dense(2, name="d")(y)
    model = keras.Model(inp, y)
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") for w in model.get_weights()])
    model.save_weights(d / "m.weights.h5")
    model.save(d / "m.keras")
    with h5py.File(d / "m_legacy.h5", "w") as f:
        write_legacy_weights(model, f)
    (d / "m.json").write_text(model.to_json())
    return d


def write_legacy_weights(model, f: h5py.Group) -> None:
    """Weights laid out as ``save_weights_to_hdf5_group`` writes them (tf_keras hdf5_format.py,
    keras/src/legacy/saving/legacy_h5_format.py): ``layer_names`` (every layer, in model order)
    and per layer a group whose ``weight_names`` list its arrays in ``layer.weights`` order.
    Labelled with this Keras' version: Keras 3 is both the writer and the oracle (a tf-keras
    label would mean tf-keras' hard_sigmoid, which Keras 3 does not compute)."""
    f.attrs["keras_version"] = keras.__version__
    f.attrs["backend"] = "torch"
    f.attrs["layer_names"] = np.array([layer.name.encode() for layer in model.layers])
    for layer in model.layers:
        g = f.create_group(layer.name)
        names = [f"{layer.name}/{v.path.split('/')[-1]}".encode() for v in layer.weights]
        g.attrs["weight_names"] = np.array(names, dtype="S64") if names else np.array([], dtype="S1")
        for name, v in zip(names, layer.weights):
            g[name.decode()] = np.asarray(v.numpy())


def swapped(config_text: str, a: str = "a", b: str = "b") -> str:
    """The config with the names of layers ``a`` and ``b`` exchanged everywhere."""
    return config_text.replace(f'"{a}"', '"\0"').replace(f'"{b}"', f'"{a}"').replace('"\0"', f'"{b}"')


def edited(saved: Path, name: str, edit) -> Path:
    """A copy of the model JSON changed by ``edit(dict)``."""
    cfg = json.loads((saved / "m.json").read_text())
    edit(cfg)
    path = saved / name
    path.write_text(json.dumps(cfg))
    return path


def layer_cfg(cfg: dict, name: str) -> dict:
    return next(item for item in cfg["config"]["layers"] if item["config"]["name"] == name)


def keras_output(config_text: str, weights: Path) -> np.ndarray:
    """What Keras computes after rebuilding the config and ``load_weights(weights)``."""
    model = keras.models.model_from_json(config_text)
    model.load_weights(str(weights))
    return np.asarray(model(X).detach().cpu())


def gateport_output(path: Path, config: Path | None = None) -> np.ndarray:
    return reference.run(read(path, config), [X])[0]


def one_line_refusal(capsys, *args) -> str:
    capsys.readouterr()  # what Keras printed before
    code = main(["inspect", *map(str, args)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("gateport: error: "), err
    return err


# -- 1. weights are matched as Keras matches them ----------------------------------------------------
@pytest.mark.parametrize("weights", ["m.weights.h5", "m_legacy.h5"])
def test_swapped_layer_names_load_by_position_like_keras(saved, weights):
    text = swapped((saved / "m.json").read_text())
    (saved / "swapped.json").write_text(text)
    want = keras_output(text, saved / weights)  # Keras ignores the names: the original numbers
    assert np.abs(want - keras_output((saved / "m.json").read_text(), saved / weights)).max() <= TOL
    got = gateport_output(saved / weights, saved / "swapped.json")
    assert np.abs(got - want).max() <= TOL


def test_swapped_names_inside_a_keras_archive(saved, tmp_path):
    path = tmp_path / "swapped.keras"
    with zipfile.ZipFile(saved / "m.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, swapped(data.decode()).encode() if item.filename == "config.json" else data)
    want = np.asarray(keras.models.load_model(path)(X).detach().cpu())
    assert np.abs(gateport_output(path) - want).max() <= TOL


def test_layer_count_mismatch_is_refused_like_keras(saved, capsys):
    def add_dense(cfg):
        extra = json.loads(json.dumps(layer_cfg(cfg, "d")))
        extra["name"] = extra["config"]["name"] = "d2"
        extra["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "d"
        cfg["config"]["layers"].append(extra)
        cfg["config"]["output_layers"] = [["d2", 0, 0]]

    config = edited(saved, "extra.json", add_dense)
    with pytest.raises(ValueError):
        keras_output(config.read_text(), saved / "m_legacy.h5")
    err = one_line_refusal(capsys, saved / "m_legacy.h5", "--config", config)
    assert "expected 4 saved layers with weights" in err and "found 3" in err


def test_read_full_legacy_h5_uses_the_order_too(saved, tmp_path):
    """A full .h5 whose model_config has the names swapped: Keras' load_model also loads by position."""
    path = tmp_path / "full.h5"
    text = swapped((saved / "m.json").read_text())
    with h5py.File(saved / "m_legacy.h5") as src, h5py.File(path, "w") as f:
        group = f.create_group("model_weights")
        for name in src:
            src.copy(src[name], group, name)
        group.attrs.update(src.attrs)
        f.attrs.update({"model_config": text, "keras_version": src.attrs["keras_version"]})
    want = keras_output(text, saved / "m_legacy.h5")
    assert np.abs(gateport_output(path) - want).max() <= TOL


# -- 2. custom objects posing as built-ins -----------------------------------------------------------
@pytest.mark.parametrize("edit, shown", [
    (lambda c: layer_cfg(c, "b").update(module="my_pkg"), "'my_pkg'"),
    (lambda c: layer_cfg(c, "b").update(registered_name="my_pkg>LSTM"), "'my_pkg>LSTM'"),
    (lambda c: layer_cfg(c, "b")["config"].update(activation={
        "module": "my_pkg", "class_name": "function", "config": "tanh", "registered_name": "my_pkg>tanh"}),
     "'my_pkg'"),
    (lambda c: layer_cfg(c, "d")["config"].update(activation={
        "module": "keras.activations", "class_name": "function", "config": "tanh",
        "registered_name": "Custom>tanh"}), "'Custom>tanh'"),
    (lambda c: c.update(module="evil", registered_name="evil>Functional"), "'evil'"),
], ids=["layer-module", "layer-registered", "activation-module", "activation-registered", "model-module"])
def test_custom_objects_are_refused(saved, capsys, edit, shown):
    config = edited(saved, "custom.json", edit)
    with pytest.raises(UnsupportedError):
        read(saved / "m.weights.h5", config)
    err = one_line_refusal(capsys, saved / "m.weights.h5", "--config", config)
    assert shown in err


def test_custom_class_inside_a_wrapper_is_refused(saved):
    def wrap(cfg):
        item = layer_cfg(cfg, "b")
        inner = {k: item[k] for k in ("module", "class_name", "config", "registered_name")}
        inner["module"] = "my_pkg"
        item.update(class_name="Bidirectional", config={"name": "b", "layer": inner, "merge_mode": "sum"})

    with pytest.raises(UnsupportedError, match="my_pkg"):
        read(saved / "m.weights.h5", edited(saved, "wrapped.json", wrap))


@pytest.mark.parametrize("module, registered", [("keras.activations", "tanh"), ("builtins", "function")])
def test_builtin_activation_dicts_are_accepted(saved, module, registered):
    config = edited(saved, "act.json", lambda c: layer_cfg(c, "d")["config"].update(activation={
        "module": module, "class_name": "function", "config": "tanh", "registered_name": registered}))
    want = keras_output(config.read_text(), saved / "m.weights.h5")
    assert np.abs(gateport_output(saved / "m.weights.h5", config) - want).max() <= TOL


# -- 3. the storage layout decides over a version label ------------------------------------------------
@pytest.mark.parametrize("drop_default", [False, True], ids=["as_saved", "inner_activation_dropped"])
def test_keras1_file_relabelled_as_keras3_keeps_keras1_semantics(tmp_path, drop_default):
    """Also with inner_activation removed from the config: the default is Keras 1's hard_sigmoid."""
    entry = next(e for e in json.loads((ROOT / "fixtures" / "legacy.json").read_text())
                 if e["name"] == "keras1_lstm")
    path = tmp_path / "relabelled.h5"
    shutil.copy(ROOT / entry["file"], path)
    with h5py.File(path, "r+") as f:
        f.attrs["keras_version"] = "3.0.0"
        if drop_default:
            cfg = json.loads(f.attrs["model_config"])
            assert cfg["config"][0]["config"].pop("inner_activation") == "hard_sigmoid"
            f.attrs["model_config"] = json.dumps(cfg)
    model = read(path)
    data = np.load(ROOT / entry["expected"])
    got = reference.run(model, [data[f"in:{s.name}"] for s in model.inputs])[0]
    assert np.abs(got - data["out:0"]).max() <= TOL
    assert model.nodes[0].options["recurrent_activation"] == "hard_sigmoid_keras2"
    assert "Keras 1 per-gate" in model.source["semantics_note"] and "'3.0.0'" in model.source["semantics_note"]


def test_object_path_weights_labelled_keras2_keep_keras3_semantics(saved):
    config = edited(saved, "old_label.json", lambda c: c.update(keras_version="2.2.4"))
    want = keras_output(config.read_text(), saved / "m.weights.h5")
    model = read(saved / "m.weights.h5", config)
    assert np.abs(reference.run(model, [X])[0] - want).max() <= TOL
    assert "object-path" in model.source["semantics_note"]
    assert {n.options.get("recurrent_activation") for n in model.recurrent_nodes()} == {
        "sigmoid", "hard_sigmoid_keras3"}


# -- 4. declared sizes against the stored weights -----------------------------------------------------------
@pytest.mark.parametrize("layer, key, value, message", [
    ("b", "units", 2, "kernel has shape (4, 16), expected (4, 8)"),
    ("d", "units", 3, "kernel has shape (4, 2), expected"),
])
def test_sizes_contradicting_the_weights_are_refused_like_keras(saved, capsys, layer, key, value, message):
    config = edited(saved, "sizes.json", lambda c: layer_cfg(c, layer)["config"].update({key: value}))
    with pytest.raises(ValueError):
        keras_output(config.read_text(), saved / "m.weights.h5")
    for fn in (read, read_recurrent_weights):
        with pytest.raises(FormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fn(saved / "m.weights.h5", config)
    err = one_line_refusal(capsys, saved / "m.weights.h5", "--config", config)
    assert f"{layer} (" in err and message in err


# -- 5. numbers and JSON from a stranger -----------------------------------------------------------------
@pytest.mark.parametrize("value", [4.5, True, -4, 0, "4", float("inf"), [4]])
def test_units_must_be_positive_integers(saved, value):
    config = edited(saved, "units.json", lambda c: layer_cfg(c, "a")["config"].update(units=value))
    with pytest.raises(GateportError, match="units"):
        read(saved / "m.weights.h5", config)


def test_huge_repeat_vector_is_refused_before_allocating(saved):
    def after_flatten(cfg):  # LSTM a (last step) -> RepeatVector(10**9) -> LSTM b -> Dense d
        layer_cfg(cfg, "a")["config"]["return_sequences"] = False
        rep = {"module": "keras.layers", "class_name": "RepeatVector", "registered_name": None,
               "name": "r", "config": {"name": "r", "n": 10 ** 9},
               "inbound_nodes": json.loads(json.dumps(layer_cfg(cfg, "b")["inbound_nodes"]))}
        layer_cfg(cfg, "b")["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "r"
        cfg["config"]["layers"].insert(2, rep)

    config = edited(saved, "repeat.json", after_flatten)
    with pytest.raises(UnsafeError, match="RepeatVector"):
        read(saved / "m.weights.h5", config)


@pytest.mark.parametrize("shape", [[None, 10 ** 9, 4], [None, 5.5, 4], [None, -5, 4], [None, True, 4]])
def test_declared_input_shapes_are_checked(saved, shape):
    config = edited(saved, "shape.json", lambda c: c["config"]["layers"][0]["config"].update(batch_shape=shape))
    with pytest.raises(GateportError, match="input"):
        read(saved / "m.weights.h5", config)


def test_deeply_nested_config_json_is_one_line(saved, tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text('{"class_name": "Sequential", "config": ' + "[" * 50_000 + "]" * 50_000 + "}")
    err = one_line_refusal(capsys, saved / "m.weights.h5", "--config", deep)
    assert "nested at most 64 levels deep, found 50001" in err


def test_deeply_nested_metadata_in_an_archive_is_one_line(saved, tmp_path, capsys):
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(saved / "m.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, ("[" * 50_000 + "]" * 50_000).encode() if item.filename == "metadata.json" else data)
    assert "metadata.json" in one_line_refusal(capsys, path)


def test_safe_json_counts_brackets_outside_strings_only():
    text = json.dumps({"name": "[" * 1000, "layers": [[{"a": "}}}"}]]})
    assert safe_json.depth(text) == 4 and safe_json.loads(text, what="t")["name"] == "[" * 1000
    with pytest.raises(FormatError, match="at most 3 levels deep, found 4"):
        safe_json.loads(text, what="t", max_depth=3)
    with pytest.raises(FormatError, match="at most 10 bytes"):
        safe_json.loads(text, what="t", max_bytes=10)
    with pytest.raises(FormatError, match="UTF-8"):
        safe_json.loads(b'{"a": "\xff"}', what="t")


def test_swapped_names_inside_a_nested_model_are_refused(tmp_path, capsys):
    """Keras gives a nested model's group to its layers by position; the weight names say which
    layer each array was saved from. Swapped in the config, gateport refuses rather than guess."""
    L = keras.layers
    inner = keras.Sequential([keras.Input((5, 4)), L.LSTM(4, return_sequences=True, name="p"),
                              L.LSTM(4, return_sequences=True, name="q")], name="enc")
    x = keras.Input((5, 4), name="x")
    model = keras.Model(x, L.Dense(2, name="d")(inner(x)))
    model.save(tmp_path / "nested.h5")
    assert np.abs(gateport_output(tmp_path / "nested.h5") - np.asarray(model(X).detach().cpu())).max() <= TOL
    with h5py.File(tmp_path / "nested.h5", "r+") as f:
        f.attrs["model_config"] = swapped(f.attrs["model_config"], "p", "q")
    err = one_line_refusal(capsys, tmp_path / "nested.h5")
    assert "nested model 'enc'" in err and "by position" in err


def test_keras1_gate_names_out_of_the_saved_order_are_refused(tmp_path, capsys):
    """Keras 1 and tf_keras set per-gate arrays by position (i, c, f, o); a file whose names say
    another order would load differently by name and by position: refused."""
    path = tmp_path / "reordered.h5"
    shutil.copy(ROOT / "fixtures" / "models" / "keras1_lstm.h5", path)
    with h5py.File(path, "r+") as f:
        g = f["model_weights"]["lstm_1"]
        names = list(g.attrs["weight_names"])
        g.attrs["weight_names"] = np.array(names[6:9] + names[3:6] + names[0:3] + names[9:])  # f, c, i, o
    err = one_line_refusal(capsys, path)
    assert "saved order W_i, U_i, b_i, W_c" in err and "found them named W_f, U_f, b_f" in err


def test_inferred_object_path_weights_assume_keras3_defaults(saved):
    """Without an architecture, the defaults assumed are those of Keras 3, the writer of the layout."""
    model = read_recurrent_weights(saved / "m.weights.h5")
    assert [n.options["recurrent_activation"] for n in model.recurrent_nodes()] == ["sigmoid", "sigmoid"]
    assert "object-path" in model.source["semantics_note"] and model.source["assumed_keras_version"] == "3"
