"""The Keras 3 writer: files Keras 3 (torch backend) loads with no custom objects and that compute
what the source computed (max abs error <= 1e-5 against the stored tf_keras / Keras 3 outputs).

Every fixture and every real corpus model is written as ``.keras``, loaded by
``keras.models.load_model``, run, and saved again by Keras itself: Keras' own ``model.weights.h5``
must hold exactly the datasets gateport wrote (same paths, same bytes). The Keras reader reads the
file back to the same weights (Keras 2 hard_sigmoid gates scaled by 1.2, see keras_layers.py).
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from converters import reference  # noqa: E402
from converters.errors import OutputError, UnsupportedError  # noqa: E402
from converters.ir import Model, Node, TensorSpec, set_recurrent_weights  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3  # noqa: E402
from converters.writers.keras_layers import HARD_SIGMOID_SCALE  # noqa: E402
from roundtrip import (CORPUS, FIXTURE, FIXTURES, ROOT, TOL, assert_bit_identical, corpus_path,  # noqa: E402
                       fixture_io, fixture_model, keras_run, max_error)

keras = pytest.importorskip("keras")

CORPUS_IDS = [k for k in CORPUS if k != "k215_cudnnlstm_weights_textgenrnn"]  # weights only, no config


def h5_datasets(source) -> dict[str, np.ndarray]:
    """Every dataset of a ``.keras`` archive's weights (or of a ``.weights.h5``), by path."""
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            source = io.BytesIO(zf.read("model.weights.h5"))
    out = {}
    with h5py.File(source, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def check_written_model(model: Model, inputs, expected, tmp_path) -> float:
    """Write, load in Keras 3, compare outputs; Keras re-saving gives the same datasets."""
    path = keras_v3.write(model, tmp_path / "m.keras")
    loaded = keras.models.load_model(path)
    err = max_error(keras_run(path, inputs, loaded), expected)
    loaded.save(tmp_path / "resaved.keras")
    ours, theirs = h5_datasets(path), h5_datasets(tmp_path / "resaved.keras")
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype and ours[key].tobytes() == theirs[key].tobytes(), key
    return err


@pytest.mark.parametrize("name", [f["name"] for f in FIXTURES])
def test_fixture_loads_in_keras3_and_matches(name, tmp_path):
    inputs, expected = fixture_io(FIXTURE[name])
    if "keras3_refused" in FIXTURE[name]["features"]:  # e.g. tf-keras' masked TimeDistributed(LSTM): Keras 3
        with pytest.raises(UnsupportedError) as e:  # passes its 3-D mask on where tf-keras reduces it
            keras_v3.write(fixture_model(name), tmp_path / "m.keras")
        assert "cannot keep this layer's mask in Keras 3" in str(e.value) and "\n" not in str(e.value)
        assert not (tmp_path / "m.keras").exists()
        return
    err = check_written_model(fixture_model(name), inputs, expected, tmp_path)
    print(f"{name}: max abs error {err:.2e}")
    assert err <= TOL


#: Keras 3 steps through time in Python on the torch backend: longer corpus inputs are cut to this
#: many steps (time made dynamic) and compared with the numpy reference, which tests/test_readers.py
#: checks against the stored tf_keras outputs on the full length.
MAX_STEPS = 64


@pytest.mark.parametrize("model_id", CORPUS_IDS)
def test_corpus_model_loads_in_keras3_and_matches(model_id, tmp_path):
    entry = CORPUS[model_id]
    model = read(corpus_path(entry))
    inputs, expected = fixture_io(entry)
    if inputs[0].ndim >= 2 and inputs[0].shape[1] > MAX_STEPS:
        for spec in model.inputs:
            spec.shape = (None, *spec.shape[1:])
        inputs = [x[:, :MAX_STEPS] for x in inputs]
        expected = reference.run(model, inputs)
    err = check_written_model(model, inputs, expected, tmp_path)
    print(f"{model_id}: max abs error {err:.2e}")
    assert err <= TOL


def _scaled_like_the_writer(node: Node) -> Node:
    from converters.writers.keras_layers import scaled_recurrent

    return scaled_recurrent(node)[0] if node.is_recurrent else node


@pytest.mark.parametrize("name", ["lstm_hard_sigmoid", "gru_reset_before_hard_sigmoid", "weights_only_gru_lstm",
                                  "bidir_lstm_merge_none", "embedding_mask_bigru", "k3_masking_bilstm_named",
                                  "k3_multi_input_add", "autoencoder_bilstm", "masking_gru"])
def test_keras_reader_reads_the_file_back(name, tmp_path):
    """Same nodes and bits (hard_sigmoid_keras2 gates as scaled); the reference still matches Keras."""
    model = fixture_model(name)
    back = read(keras_v3.write(model, tmp_path / "m.keras"))
    inputs, expected = fixture_io(FIXTURE[name])
    assert max_error(reference.run(back, inputs), expected) <= TOL
    for node in model.nodes:
        if node.op in ("mask_not_equal", "mask_and"):
            continue
        other = back.node(node.name)
        assert other.op == node.op
        assert_bit_identical(_scaled_like_the_writer(node), other)


def test_keras2_hard_sigmoid_becomes_keras3_hard_sigmoid_of_scaled_gates(tmp_path):
    model = fixture_model("lstm_hard_sigmoid")
    node = next(model.recurrent_nodes())
    assert node.options["recurrent_activation"] == "hard_sigmoid_keras2"
    path = keras_v3.write(model, tmp_path / "m.keras")
    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read("config.json"))
    layer = next(x for x in config["config"]["layers"] if x["class_name"] == "LSTM")
    assert layer["config"]["recurrent_activation"] == "hard_sigmoid"
    kernel = h5_datasets(path)["layers/lstm/cell/vars/0"]
    units = node.options["units"]
    for k, gate in enumerate(("input", "forget", "cell", "output")):  # Keras order i, f, c, o
        want = node.weights[f"forward.{gate}.input_weights"].T
        if gate != "cell":
            want = (want.astype(np.float64) * HARD_SIGMOID_SCALE).astype(np.float32)
        assert np.array_equal(kernel[:, k * units:(k + 1) * units], want), gate
    inputs, expected = fixture_io(FIXTURE["lstm_hard_sigmoid"])
    err = max_error(keras_run(path, inputs), expected)
    print(f"Keras 2 hard_sigmoid LSTM in Keras 3: max abs error {err:.2e}")
    assert err <= TOL


@pytest.mark.parametrize("name", ["weights_only_gru_lstm", "two_inputs", "k3_multi_input_add", "embedding_mask_lstm"])
def test_weights_only_file_loads_into_the_written_config(name, tmp_path):
    model = fixture_model(name)
    keras_v3.write_config(model, tmp_path / "m.json")
    keras_v3.write_weights(model, tmp_path / "m.weights.h5")
    rebuilt = keras.models.model_from_json((tmp_path / "m.json").read_text())
    rebuilt.load_weights(tmp_path / "m.weights.h5")
    inputs, expected = fixture_io(FIXTURE[name])
    assert max_error(keras_run(None, inputs, rebuilt), expected) <= TOL


def test_config_uses_only_builtin_keras_layers(tmp_path):
    path = keras_v3.write(fixture_model("k3_bidir_mul_sum_flatten"), tmp_path / "m.keras")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(zf.read("config.json"))
        assert json.loads(zf.read("metadata.json"))["keras_version"].startswith("3.")

    def objects(value):
        if isinstance(value, dict):
            if "class_name" in value and "module" in value:
                yield value
            for v in value.values():
                yield from objects(v)
        elif isinstance(value, list):
            for v in value:
                yield from objects(v)

    modules = {(o["module"], o.get("registered_name")) for o in objects(config["config"])}
    assert modules == {("keras.layers", None)}


def test_writing_imports_no_framework(tmp_path):
    code = ("import sys; from converters.readers import read; from converters.writers import keras_v3; "
            f"keras_v3.write(read({str(ROOT / FIXTURE['tiny_lstm']['file'])!r}), {str(tmp_path / 'm.keras')!r}); "
            "print(sorted(m for m in ('keras', 'torch', 'tensorflow', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_existing_output_needs_force(tmp_path):
    model = fixture_model("tiny_lstm")
    path = keras_v3.write(model, tmp_path / "m.keras")
    with pytest.raises(OutputError):
        keras_v3.write(model, path)
    keras_v3.write(model, path, force=True)


# -- what Keras 3 cannot keep is refused --------------------------------------------------------
def _lstm(name="rnn", units=2, features=3, **options) -> Node:
    rng = np.random.default_rng(0)
    opts = {"units": units, "input_size": features, "activation": "tanh", "recurrent_activation": "sigmoid",
            "return_sequences": True, **options}
    node = Node(name, "lstm", ["x"], [name], opts)
    for d in node.directions:
        set_recurrent_weights(node, d, "keras", rng.normal(size=(4 * units, features)).astype(np.float32),
                              rng.normal(size=(4 * units, units)).astype(np.float32), None)
    return node


def _model(*nodes: Node, inputs=(("x", (None, 3)),)) -> Model:
    return Model("m", [TensorSpec(n, s) for n, s in inputs], [nodes[-1].outputs[0]], list(nodes))


def test_lstm_with_keras2_hard_sigmoid_cell_activation_is_refused(tmp_path):
    with pytest.raises(UnsupportedError, match="rnn.*cell state"):
        keras_v3.write(_model(_lstm(activation="hard_sigmoid_keras2")), tmp_path / "m.keras")
    assert not list(tmp_path.iterdir())


def test_activation_layer_with_keras2_hard_sigmoid_is_refused(tmp_path):
    act = Node("act", "activation", ["rnn"], ["act"], {"activation": "hard_sigmoid_keras2"})
    with pytest.raises(UnsupportedError, match="act.*0.2x"):
        keras_v3.write(_model(_lstm(), act), tmp_path / "m.keras")


def test_masks_keras3_merges_differently_are_refused(tmp_path):
    """Keras 2 ANDs the masks of merged inputs; Keras 3 ORs them."""
    nodes = [Node("ma", "mask_not_equal", ["a"], ["ma"], {"value": 0.0, "reduce": True}),
             Node("mka", "masking", ["a"], ["mka"], {"mask_value": 0.0}, mask="ma"),
             Node("mb", "mask_not_equal", ["b"], ["mb"], {"value": 0.0, "reduce": True}),
             Node("mkb", "masking", ["b"], ["mkb"], {"mask_value": 0.0}, mask="mb"),
             Node("add", "add", ["mka", "mkb"], ["add"]),
             Node("m", "mask_and", ["ma", "mb"], ["m"])]
    rnn = _lstm(mask="m")
    rnn.inputs = ["add"]
    rnn.mask = "m"
    model = Model("m", [TensorSpec("a", (None, 3)), TensorSpec("b", (None, 3))], ["rnn"], nodes + [rnn])
    with pytest.raises(UnsupportedError, match="rnn.*OR"):
        keras_v3.write(model, tmp_path / "m.keras")


def test_masked_rnn_with_initial_state_gets_its_mask_in_the_call(tmp_path):
    """Keras 3 does not fill in the mask of an RNN called with initial_state: the mask is written as the call's
    ``mask``, computed by NotEqual and Any operation nodes (keras_graph._explicit_masks)."""
    nodes = [Node("m", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True}),
             Node("mk", "masking", ["x"], ["mk"], {"mask_value": 0.0}, mask="m")]
    rnn = _lstm()
    rnn.inputs, rnn.mask = ["mk", "h0", "c0"], "m"
    model = _model(*nodes, rnn, inputs=(("x", (None, 3)), ("h0", (2,)), ("c0", (2,))))
    rng = np.random.default_rng(2)
    inputs = [rng.normal(size=(3, 5, 3)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32),
              rng.normal(size=(3, 2)).astype(np.float32)]
    inputs[0][0, 1:3] = 0.0  # masked steps in the middle, at the end, a whole row
    inputs[0][1, -2:] = 0.0
    inputs[0][2] = 0.0
    got = keras_run(keras_v3.write(model, tmp_path / "m.keras"), inputs)
    assert max_error(got, reference.run(model, inputs)) <= TOL


def test_masked_bidirectional_that_repeats_outputs_is_refused(tmp_path):
    nodes = [Node("m", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True}),
             Node("mk", "masking", ["x"], ["mk"], {"mask_value": 0.0}, mask="m")]
    rnn = _lstm(bidirectional=True, merge_mode="concat", zero_output_for_mask=False)
    rnn.inputs, rnn.mask = ["mk"], "m"
    with pytest.raises(UnsupportedError, match="zero_output_for_mask"):
        keras_v3.write(_model(*nodes, rnn), tmp_path / "m.keras")


def test_unmasked_initial_states_are_kept(tmp_path):
    rnn = _lstm(return_state=True)
    rnn.inputs = ["x", "h0", "c0"]
    rnn.outputs = ["rnn", "rnn:1", "rnn:2"]
    model = Model("m", [TensorSpec("x", (None, 3)), TensorSpec("h0", (2,)), TensorSpec("c0", (2,))],
                  list(rnn.outputs), [rnn])
    rng = np.random.default_rng(1)
    inputs = [rng.normal(size=(2, 5, 3)).astype(np.float32), rng.normal(size=(2, 2)).astype(np.float32),
              rng.normal(size=(2, 2)).astype(np.float32)]
    got = keras_run(keras_v3.write(model, tmp_path / "m.keras"), inputs)
    assert max_error(got, reference.run(model, inputs)) <= TOL
