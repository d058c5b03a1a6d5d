"""Conv1D with groups / strides / dilation, DepthwiseConv1D and SeparableConv1D beyond the runtimes of
``test_layers_coverage`` (reference, .gates, PyTorch, ONNX, Keras): the generated numpy ``model.py``
within 1e-5 of Keras, the IR each layer becomes, and the ONNX nodes (one grouped ``Conv`` per step)."""
from __future__ import annotations

import os
from collections import Counter

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest  # noqa: E402

keras = pytest.importorskip("keras")
onnx = pytest.importorskip("onnx")

from converters.readers import read  # noqa: E402
from converters.writers import onnx_graph  # noqa: E402
from test_layers_coverage import CASES, TOL, F, L, T, U, error, keras_outputs, randomize, seq  # noqa: E402
from test_numpy_writer import load_generated, outputs_of  # noqa: E402

CONV_CASES = [c for c in CASES if "Conv1D" in c[0]]


@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_numpy_code_matches_keras(case, tmp_path):
    _, build, make_inputs = case
    model = randomize(build())
    inputs = make_inputs()
    model.save(tmp_path / "m.keras")
    _, generated = load_generated(read(tmp_path / "m.keras"), tmp_path / "np")
    assert error(outputs_of(generated, inputs), keras_outputs(model, inputs)) <= TOL


def test_separable_is_a_depthwise_then_a_pointwise_node(tmp_path):
    """SeparableConv1D(6, 3, depth_multiplier=2) on 5 channels: a grouped conv1d of 10 filters (groups 5,
    kernel 3, the layer's strides) into '<name>/depthwise', then a kernel-1 conv1d with bias and activation."""
    model = randomize(seq(L.SeparableConv1D(6, 3, depth_multiplier=2, strides=2, activation="relu", name="sep"),
                          L.LSTM(U)))
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    dw, pw = (n for n in ir.nodes if n.op == "conv1d")
    assert (dw.name, dw.outputs, pw.name, pw.inputs) == ("sep/depthwise", ["sep/depthwise"], "sep", ["sep/depthwise"])
    assert dw.options["groups"] == F and dw.options["filters"] == 2 * F and dw.options["strides"] == 2
    assert dw.weights["weight"].shape == (2 * F, 1, 3) and not dw.options["use_bias"]
    assert dw.options["activation"] == "linear" and pw.options["activation"] == "relu"
    assert pw.weights["weight"].shape == (6, 2 * F, 1) and pw.options["use_bias"] and pw.options.get("groups", 1) == 1
    counts = Counter(n.op_type for n in onnx_graph.to_onnx(ir).graph.node)
    assert counts["Conv"] == 2 and counts["LSTM"] == 1, counts
    groups = [a.i for n in onnx_graph.to_onnx(ir).graph.node if n.op_type == "Conv" for a in n.attribute
              if a.name == "group"]
    assert groups == [F, 1]


def test_grouped_kernel_not_matching_the_input_is_one_line(tmp_path, capsys):
    """A Conv1D whose groups do not fit the kernel stored for its input is refused in one line."""
    from attacks import edited_keras, layer
    from converters.cli import main

    seq(L.Conv1D(4, 3), L.LSTM(U), shape=(T, 6)).save(tmp_path / "m.keras")

    def edit(cfg):
        layer(cfg, "Conv1D")["config"]["groups"] = 2

    bad = edited_keras(tmp_path / "m.keras", tmp_path / "bad.keras", edit)
    assert main(["convert", str(bad), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "groups 2" in err[0] and "kernel" in err[0], err
