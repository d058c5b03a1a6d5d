"""Normalization, Rescaling, RMSNormalization, LayerNormalization(rms_scaling) and GroupNormalization: Keras'
exact formulas (the zero-variance guard), the masks Keras gives on, and one-line refusals for configs and
weights that do not fit the input (edited into real .keras files: a stranger's file holds anything).
The models around recurrent layers in every runtime are in tests/test_layers_coverage.py (NORM_CASES)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from converters import reference  # noqa: E402
from converters.cli import main  # noqa: E402
from converters.errors import FormatError, GateportError, UnsupportedError  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3, numpy_code, onnx_graph, torch_code  # noqa: E402
from helpers import assert_close  # noqa: E402

L = keras.layers
B, T, F = 2, 4, 3


def x_in(seed=0):
    return np.random.default_rng(seed).normal(size=(B, T, F)).astype(np.float32)


def save(tmp_path, *layers, shape=(T, F), name="m.keras"):
    inp = keras.Input(shape)
    y = inp
    for layer in layers:
        y = layer(y)
    model = keras.Model(inp, y)
    path = tmp_path / name
    model.save(path)
    return model, path


def edited(path, layer_name: str, version: str | None = None, **changes):
    """The .keras file at ``path`` with ``changes`` written into layer ``layer_name``'s config (and the
    recorded Keras version replaced by ``version``)."""
    out = path.with_name(f"edited_{path.name}")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                for layer in cfg["config"]["layers"]:
                    if layer["config"].get("name") == layer_name:
                        layer["config"].update(changes)
                data = json.dumps(cfg).encode()
            elif item.filename == "metadata.json" and version:
                data = json.dumps({**json.loads(data), "keras_version": version}).encode()
            dst.writestr(item, data)
    return out


def test_zero_variance_divides_by_keras_epsilon(tmp_path):
    """max(sqrt(variance), 1e-7): a zero variance gives (x - mean) * 1e7, as Keras, in every runtime."""
    model, path = save(tmp_path, L.Normalization(mean=[0.5, -1.0, 0.0], variance=[0.0, 1e-16, 4.0], name="norm"))
    x = np.round(x_in(), 3) * 1e-6  # small inputs keep the 1e7 factor's results in range
    want = keras.ops.convert_to_numpy(model(x))
    ir = read(path)
    assert_close(reference.run(ir, [x]), want, "reference", tol=1e-5 * float(np.max(np.abs(want))))
    torch_code.write(ir, tmp_path / "torch")
    numpy_code.write(ir, tmp_path / "np")
    assert_close(numpy_code.run_isolated(tmp_path / "np", [x])[0], want, "numpy",
                 tol=1e-5 * float(np.max(np.abs(want))))
    assert ir.nodes[0].options == {"invert": False, "epsilon": 1e-7}


def test_adapted_and_inverted_normalization_over_two_axes(tmp_path):
    norm = L.Normalization(axis=(1, -1), invert=True, name="norm")
    norm.adapt(np.random.default_rng(1).normal(2.0, 3.0, size=(16, T, F)).astype(np.float32))
    model, path = save(tmp_path, norm)
    ir = read(path)
    assert ir.nodes[0].weights["mean"].shape == (T, F)
    assert_close(reference.run(ir, [x_in()]), keras.ops.convert_to_numpy(model(x_in())), "reference")


def test_masks_pass_in_keras3_and_a_masked_tf_keras_group_normalization_is_refused(tmp_path):
    """Keras 3 passes the mask through Normalization, Rescaling and GroupNormalization (the fixtures
    norm_masked_lstm / k3_norm_masked_lstm show tf-keras' Normalization and Rescaling dropping it); tf-keras'
    GroupNormalization weighs its moments by the mask: refused."""
    ids = keras.Input((None,))
    e = L.Embedding(5, F, mask_zero=True)(ids)
    y = L.LSTM(2, name="lstm")(L.Rescaling(2.0, name="rescale")(L.Normalization(mean=1.0, variance=4.0, name="n")(e)))
    path = tmp_path / "m.keras"
    keras.Model(ids, y).save(path)
    assert next(n for n in read(path).nodes if n.name == "lstm").mask
    g = L.GroupNormalization(1, name="gn")(e)
    path = tmp_path / "g.keras"
    keras.Model(ids, L.LSTM(2)(g)).save(path)
    read(path)  # Keras 3: the mask passes, the moments ignore it
    with pytest.raises(UnsupportedError, match="tf-keras GroupNormalization of a masked input"):
        read(edited(path, "gn", version="2.15.0"))


@pytest.mark.parametrize("changes,error,match", [
    ({"axis": [0]}, UnsupportedError, "batch axis"),
    ({"axis": [1]}, FormatError, r"mean has shape \(3,\), expected \(4,\)"),
    ({"axis": [5]}, FormatError, "rank-3 input"),
    ({"mean": [1.0, 2.0], "variance": [1.0, 1.0]}, FormatError, "broadcast to the kept axes"),
    ({"mean": [1.0, 2.0, 3.0], "variance": None}, FormatError, "both mean and variance"),
    ({"mean": [[1.0, 2.0], [3.0]], "variance": [[1.0, 2.0], [3.0]]}, GateportError, "mean"),
    ({"mean": 0.0, "variance": -1.0}, FormatError, "variance >= 0"),
    ({"mean": "x", "variance": 1.0}, GateportError, "mean"),
])
def test_normalization_configs_that_do_not_fit_are_refused(tmp_path, changes, error, match):
    norm = L.Normalization(name="norm")
    norm.adapt(x_in())
    _, path = save(tmp_path, norm)
    with pytest.raises(error, match=match):
        read(edited(path, "norm", **changes))


@pytest.mark.parametrize("layer,changes,error,match", [
    (L.Rescaling(2.0, name="layer"), {"scale": [1.0, 2.0]}, UnsupportedError, "does not broadcast"),
    (L.Rescaling(2.0, name="layer"), {"offset": [[[1.0, 2.0, 3.0]]] * 2}, UnsupportedError, "does not broadcast"),
    (L.GroupNormalization(3, name="layer"), {"groups": 2}, FormatError, "divisor of the 3 channels"),
    (L.GroupNormalization(3, name="layer"), {"axis": 1}, UnsupportedError, "only the last axis"),
    (L.GroupNormalization(3, name="layer"), {"groups": 1.5}, FormatError, "groups"),
    (L.RMSNormalization(name="layer"), {"axis": 1}, GateportError, "axes|shape"),
    (L.RMSNormalization(name="layer"), {"epsilon": -1.0}, FormatError, "epsilon"),
    (L.GroupNormalization(3, name="layer"), {"epsilon": float("inf")}, FormatError, "epsilon"),
    (L.Rescaling(2.0, name="layer"), {"scale": [[1.0, 2.0], [3.0]]}, GateportError, "scale"),
    (L.Rescaling(2.0, name="layer"), {"offset": "0.5"}, FormatError, "expected numbers"),
    (L.RMSNormalization(name="layer"), {"axis": [-1, 2]}, FormatError, "distinct axes"),
    (L.BatchNormalization(name="layer"), {"epsilon": "0.001"}, FormatError, "epsilon"),
    (L.BatchNormalization(name="layer"), {"epsilon": float("nan")}, FormatError, "epsilon"),
    (L.BatchNormalization(name="layer"), {"epsilon": -1e-3}, FormatError, "epsilon"),
])
def test_other_layer_configs_that_do_not_fit_are_refused(tmp_path, layer, changes, error, match):
    _, path = save(tmp_path, layer)
    with pytest.raises(error, match=match):
        read(edited(path, "layer", **changes))


def test_refusal_is_one_cli_line(tmp_path, capsys):
    _, path = save(tmp_path, L.Normalization(mean=0.0, variance=1.0, name="norm"))
    bad = edited(path, "norm", axis=[0])
    assert main(["convert", str(bad), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gateport: error:") and "batch axis" in err[0], err


@pytest.mark.parametrize("op,key,shape", [("normalization", "mean", (1, 2)), ("rescaling", "scale", (2,)),
                                          ("rms_norm", "scale", (4,)), ("group_norm", "gamma", (5,))])
def test_writers_check_weights_against_the_input(tmp_path, op, key, shape):
    """An IR (a stranger's .gates file) whose weights do not fit the input: each writer, and the reference
    (verify), refuses in one line."""
    layer = {"normalization": L.Normalization(mean=0.0, variance=1.0), "rescaling": L.Rescaling([1.0, 2.0, 3.0]),
             "rms_norm": L.RMSNormalization(), "group_norm": L.GroupNormalization(3)}[op]
    _, path = save(tmp_path, layer)
    ir = read(path)
    (node,) = [n for n in ir.nodes if n.op == op]
    node.weights[key] = np.ones(shape, np.float32)
    if op == "normalization":
        node.weights["variance"] = np.ones(shape, np.float32)
    for write in (lambda: torch_code.write(ir, tmp_path / "t", force=True),
                  lambda: numpy_code.write(ir, tmp_path / "n", force=True), lambda: onnx_graph.to_onnx(ir),
                  lambda: keras_v3.write(ir, tmp_path / "k.keras"), lambda: reference.run(ir, [x_in()])):
        with pytest.raises(UnsupportedError, match=f"expected {key}"):
            write()


def test_tf_keras_normalization_and_rescaling_drop_the_mask():
    """The tf-keras fixture's LSTM runs every step (its stored outputs agree: tests over fixtures.json), the
    Keras 3 twin's skips the masked ones."""
    from pathlib import Path

    models = Path(__file__).resolve().parent.parent / "fixtures" / "models"
    lstm = lambda path: next(n for n in read(path).nodes if n.op == "lstm")  # noqa: E731
    assert not lstm(models / "norm_masked_lstm.h5").mask
    assert lstm(models / "k3_norm_masked_lstm.keras").mask


#: (kernel_size, strides, dilation_rate, padding, output_padding): every crop / zero-step case of TensorFlow's rule
TRANSPOSE_CONFIGS = [(3, 2, 1, "same", None), (2, 3, 1, "valid", None), (4, 1, 2, "same", None),
                     (3, 2, 1, "valid", 1), (4, 3, 1, "same", 2), (1, 2, 1, "same", 0), (5, 1, 1, "valid", None)]


def test_conv1d_transpose_configs_in_every_runtime(tmp_path):
    """One model, one Conv1DTranspose branch per config: the reference, the generated numpy and PyTorch code
    and onnxruntime against Keras."""
    import onnxruntime as ort

    inp = keras.Input((T, F))
    outs = [L.Conv1DTranspose(2, k, strides=s, dilation_rate=d, padding=pad, output_padding=p,
                              bias_initializer="ones")(inp) for k, s, d, pad, p in TRANSPOSE_CONFIGS]
    model = keras.Model(inp, outs)
    model.save(tmp_path / "m.keras")
    x = x_in()
    want = [keras.ops.convert_to_numpy(y) for y in model(x)]
    ir = read(tmp_path / "m.keras")
    assert_close(reference.run(ir, [x]), want, "reference")
    numpy_code.write(ir, tmp_path / "np")
    assert_close(numpy_code.run_isolated(tmp_path / "np", [x])[0], want, "numpy")
    onnx_graph.write(ir, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, {ir.inputs[0].name: x}), want, "onnx")
    from test_layers_coverage import torch_outputs

    assert_close(torch_outputs(ir, [x], tmp_path / "torch"), want, "torch")


@pytest.mark.parametrize("changes,error,match", [
    ({"output_padding": [2]}, FormatError, "less than strides"),
    ({"padding": "causal"}, UnsupportedError, "causal"),
    ({"dilation_rate": [2]}, UnsupportedError, "strides and dilation_rate"),
    ({"filters": 3}, FormatError, "kernel has shape"),
    ({"output_padding": [-1]}, FormatError, "output_padding"),
])
def test_conv1d_transpose_configs_that_do_not_fit_are_refused(tmp_path, changes, error, match):
    _, path = save(tmp_path, L.Conv1DTranspose(2, 3, strides=2, name="layer"))
    with pytest.raises(error, match=match):
        read(edited(path, "layer", **changes))


def test_conv1d_transpose_declaring_a_huge_output_is_refused(tmp_path):
    """strides 10**9 on a dynamic time axis: one sample's output would take gigabytes: refused before anything runs."""
    from converters.errors import UnsafeError

    _, path = save(tmp_path, L.Conv1DTranspose(2, 3, strides=2, name="layer"), shape=(None, F))
    with pytest.raises(UnsafeError, match="Conv1DTranspose output"):
        read(edited(path, "layer", strides=[10 ** 9]))
