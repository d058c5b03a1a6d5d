"""ONNX files other tools write for the non-recurrent Keras layers (fixtures/make_foreign_onnx_layers.py):
torch.onnx (TorchScript exporter at opsets 13 and 17, dynamo) on the torch module doing what the Keras layer
does, tf2onnx (tf-keras ``.h5``, opsets 13 and 17) and Keras 3's exporter (opset 18) on the Keras layer.

Every file either reads into the IR op the Keras reader makes for that layer, converts to PyTorch and to ONNX,
and both compute what onnxruntime computes on the source file (<= TOL), or is refused in one line naming the
file and the node (what the IR op cannot compute exactly); an export the tool itself fails is recorded in the
manifest (no file).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters import api
from converters.cli import main

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from helpers import TOL  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "fixtures" / "foreign_onnx_layers"
MODELS = [m for f in ("manifest_torch.json", "manifest_keras.json")
          for m in json.loads((HERE / f).read_text())["models"]]
BY_NAME = {m["name"]: m for m in MODELS}
#: the IR op each file reads into (the Keras reader's op for that layer; ``activation:<name>`` an activation)
OPS = {
    **dict.fromkeys(("t_maxpool_valid", "t_maxpool_pad", "t_avgpool_valid", "t_avgpool_pad_exclude", "k_max_pool_same",
                     "k_max_pool_valid", "k_avg_pool_same", "k_avg_pool_valid"), "pool1d"),
    **dict.fromkeys(("t_global_max", "t_global_mean_keepdim", "k_global_max", "k_global_avg"), "global_pool"),
    **dict.fromkeys(("t_pad_time", "k_zero_pad"), "zero_pad1d"),
    **dict.fromkeys(("t_crop_time", "k_crop"), "crop1d"),
    **dict.fromkeys(("t_repeat_time", "t_upsample_nearest"), "upsample1d"),
    **dict.fromkeys(("t_permute", "k_permute"), "permute"),
    **dict.fromkeys(("t_elu",), "elu"),
    **dict.fromkeys(("t_leaky_relu", "k_leaky_relu", "k_relu_layer"), "relu"),
    **dict.fromkeys(("t_prelu_one", "k_prelu"), "prelu"),
    **dict.fromkeys(("t_gelu",), "activation:gelu"),
    **dict.fromkeys(("t_log_softmax", "k_log_softmax"), "activation:log_softmax"),
    **dict.fromkeys(("t_mish", "k_mish"), "activation:mish"),
    **dict.fromkeys(("t_layernorm", "t_layernorm_noaffine"), "layer_norm"),
    "k_unit_norm": "unit_norm",
    "t_rmsnorm": "rms_norm",
    "t_convtranspose": "conv1d_transpose",
    "k_rescaling": "rescaling",
    "t_gelu_tanh": "activation:gelu_tanh",  # dynamo's Gelu(approximate=tanh); TorchScript's tanh graph: see below
}
#: files gateport refuses: (name, tool or None for every tool) -> what the one line says
REFUSED = {
    ("t_maxpool_ceil", None): "expected ceil_mode=0, or ceil_mode=1 where no window is partial",
    ("t_maxpool_dilated", None): "expected a pooling without dilation",
    ("t_avgpool_pad_include", None): "expected count_include_pad=0 with padding",
    # padding=1, output_padding=1: the steps [1, len) of the full transposed convolution, which no Keras
    # padding / output_padding gives (same with output_padding 1 keeps [0, len - 1))
    ("t_convtranspose_pad", None): "expected the steps [1, len + 0) of the full transposed convolution",
    # torch's GroupNorm: Reshape to (batch, groups, -1) and InstanceNormalization, channels first
    ("t_groupnorm", None): "expected Reshape keeping the batch axis, found shape [0, 2, -1]",
    # TensorFlow's ELU(alpha != 1): Where(x > 0, elu(x), alpha * elu(x)) written as Cast/Mul/Add of the masks
    ("k_elu", None): "(Where)",
    ("k_upsample", "tf2onnx_h5_op13"): "(Split)",
    ("k_upsample", "tf2onnx_h5_op17"): "(Split)",
    ("k_upsample", "keras_export_op18"): "expected the repeated steps reshaped to (batch, time * 2, features)",
    ("k_relu_layer", "keras_export_op18"): "(Where)",
    # tf2onnx's LayerNormalization: moments through Reshape to [1, -1] (a fused batch norm over the rows)
    ("k_layer_norm", "tf2onnx_h5_op13"): "expected Reshape keeping the batch axis",
    ("k_layer_norm", "tf2onnx_h5_op17"): "expected Reshape keeping the batch axis",
    # Keras 3: x * (rsqrt(var + eps) * gamma) + (beta - mean * rsqrt(var + eps) * gamma), rearranged
    ("k_layer_norm", "keras_export_op18"): "(Mul)",
    # tf2onnx's Normalization divides by multiplying by the constant reciprocal (no variance to read back)
    ("k_normalization", None): "expected (x - mean) / max(sqrt(variance), epsilon) (Keras Normalization)",
    # GroupNormalization and Conv1DTranspose as TensorFlow computes them: 2-D ops on computed shapes
    ("k_group_norm", "tf2onnx_h5_op13"): "expected Reshape to a constant shape",
    ("k_group_norm", "tf2onnx_h5_op17"): "expected Reshape to a constant shape",
    ("k_group_norm", "keras_export_op18"): "expected Reshape keeping the batch axis, found shape [-1, 9, 2, 2]",
    ("k_conv_transpose", None): "expected a 1-D ConvTranspose of Transpose(x, [0, 2, 1])",
    ("k_unit_norm", "tf2onnx_h5_op13"): "(Max)",
    ("k_unit_norm", "tf2onnx_h5_op17"): "(Max)",
}
#: exports the tool itself fails (no file; the manifest records the tool's line)
TOOL_FAILED = {**{("k_gelu", tool): "INVALID_GRAPH" for tool in ("tf2onnx_h5_op13", "tf2onnx_h5_op17",
                                                                   "keras_export_op18")},
               **{("t_rmsnorm", tool): "UnsupportedOperatorError" for tool in ("torchscript_op13",
                                                                              "torchscript_op17")},
               ("k_normalization", "keras_export_op18"): "Required inputs"}
FILES = [(m["name"], tool) for m in MODELS for tool, e in m["exports"].items() if "file" in e]


def refusal(name: str, tool: str) -> str | None:
    return REFUSED.get((name, tool), REFUSED.get((name, None)))


READ = [c for c in FILES if refusal(*c) is None]
REFUSE = [c for c in FILES if refusal(*c) is not None]


def ids(cases):
    return [f"{n}-{t}" for n, t in cases]


def path_of(name: str, tool: str) -> Path:
    return HERE / BY_NAME[name]["exports"][tool]["file"]


def test_every_export_has_a_verdict():
    exports = {(m["name"], tool): e for m in MODELS for tool, e in m["exports"].items()}
    failed = {c: e["failed"] for c, e in exports.items() if "file" not in e}
    assert set(failed) == set(TOOL_FAILED)
    assert all(TOOL_FAILED[c] in line for c, line in failed.items())
    assert all(e["onnxruntime_vs_producer"] <= 1e-5 for e in exports.values() if "file" in e)
    assert {c[0] for c in READ} <= set(OPS), "every file read names the IR op it reads into"
    assert len(READ) >= 90 and len(REFUSE) >= 15


@pytest.mark.parametrize("name,tool", READ, ids=ids(READ))
def test_reads_converts_and_matches_onnxruntime(name, tool, tmp_path):
    from converters.runtimes import run_onnx, run_torch

    path = path_of(name, tool)
    model = api.read(path)
    data = np.load(HERE / BY_NAME[name]["expected"])
    x = data["in:0"]
    want = run_onnx(str(path), [x])[0]
    assert float(np.max(np.abs(want - data["out:0"]))) <= 1e-5  # the source file computes the producer's numbers
    op = OPS[name]
    if not (name == "t_gelu_tanh" and tool.startswith("torchscript")):  # its tanh formula, op by op (exact)
        found = [f"{n.op}:{n.options['activation']}" if n.op == "activation" else n.op for n in model.nodes]
        assert found == [op], found
    torch_dir = api.convert(model, "torch", tmp_path / "torch")
    onnx_path = api.convert(model, "onnx", tmp_path / "m.onnx")
    for target, got in (("torch", run_torch(torch_dir, [x])[0]), ("onnx", run_onnx(str(onnx_path), [x])[0])):
        err = float(np.max(np.abs(got - want)))
        print(f"{name} {tool}: {target} (converted) vs onnxruntime on the source max abs error {err:.2e}")
        assert got.shape == want.shape and err <= TOL
    # the exporters' dynamic batch: two samples give the source's first two rows
    assert float(np.max(np.abs(run_torch(torch_dir, [x[:2]])[0] - want[:2]))) <= TOL


@pytest.mark.parametrize("name,tool", REFUSE, ids=ids(REFUSE))
def test_refused_in_one_line_naming_the_file_and_node(name, tool, tmp_path, capsys):
    path = path_of(name, tool)
    assert main(["convert", str(path), "--to", "torch", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path.name) in err and "ONNX node '" in err
    assert refusal(name, tool) in err
    assert not (tmp_path / "out").exists()


def _graph(nodes, inits=(), opset=17, shape=("b", 9, 4)):
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _pool(op="MaxPool", **attrs):
    from onnx import helper

    return [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]), helper.make_node(op, ["t"], ["p"], **attrs),
            helper.make_node("Transpose", ["p"], ["y"], perm=[0, 2, 1])]


def _one(op, inputs, **attrs):
    from onnx import helper

    return [helper.make_node(op, inputs, ["y"], **attrs)]


#: a stranger's attributes and shapes -> what the one line says
HOSTILE = {
    "same_lower_odd": (_pool(kernel_shape=[2], strides=[2], auto_pad="SAME_LOWER"), (),
                       "expected SAME_UPPER (TensorFlow's odd padding step at the end), found SAME_LOWER"),
    "pads_not_same": (_pool(kernel_shape=[3], strides=[2], pads=[2, 0]), (),
                      "expected pads [0, 0] or TensorFlow's 'same' padding"),
    "negative_pads": (_pool(kernel_shape=[3], pads=[-1, 0]), (), "pads >= 0"),
    "kernel_past_steps": (_pool(kernel_shape=[12]), (), "expected a pooling window of at most the 9 steps"),
    "pool_of_2d_kernel": (_pool(kernel_shape=[3, 1]), (), "expected kernel_shape of 1 value (a 1-D pooling)"),
    "pool_indices": ([*_pool(kernel_shape=[2])[:1],
                      onnx.helper.make_node("MaxPool", ["t"], ["p", "i"], kernel_shape=[2]),
                      *_pool(kernel_shape=[2])[2:]], (), "expected MaxPool without its Indices output"),
    "elu_nan": (_one("Elu", ["x"], alpha=float("nan")), (), "expected a finite Elu alpha"),
    "leaky_negative": (_one("LeakyRelu", ["x"], alpha=-0.5), (), "expected a LeakyRelu alpha >= 0"),
    "layer_norm_inf_eps": (_one("LayerNormalization", ["x", "s"], epsilon=float("inf")),
                           (("s", np.ones(4, np.float32)),), "expected a finite epsilon"),
    "layer_norm_scale_shape": (_one("LayerNormalization", ["x", "s"]), (("s", np.ones(3, np.float32)),),
                               "of the normalized axes' shape [4]"),
    "layer_norm_batch_axis": (_one("LayerNormalization", ["x", "s"], axis=0), (("s", np.ones(4, np.float32)),),
                              "expected a LayerNormalization axis after the batch axis"),
    "pad_reflect": (_one("Pad", ["x", "p"], mode="reflect"), (("p", np.asarray([0, 1, 0, 0, 1, 0], np.int64)),),
                    "expected Pad with zeros (mode constant, value 0)"),
    "pad_features": (_one("Pad", ["x", "p"]), (("p", np.asarray([0, 0, 1, 0, 0, 1], np.int64)),),
                     "expected Pad of the time axis only"),
    "pad_five": (_one("Pad", ["x", "p"]), (("p", np.asarray([0, 1, 0, 0, 1], np.int64)),),
                 "expected 6 pads for a rank-3 tensor"),
    "prelu_slope_shape": (_one("PRelu", ["x", "a"]), (("a", np.ones((9, 3), np.float32)),),
                          "expected a PRelu slope of shape"),
    "log_softmax_time": (_one("LogSoftmax", ["x"], axis=1), (), "expected LogSoftmax on the last axis"),
    "gelu_approximate": (_one("Gelu", ["x"], approximate="sigmoid"), (), "expected Gelu approximate 'none' or 'tanh'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_strangers_attributes_are_refused_in_one_line(case, tmp_path, capsys):
    """Attributes and shapes the IR op cannot compute exactly (or that ONNX itself forbids) are refused in one
    line naming the file and the node, never read approximately."""
    nodes, inits, expected = HOSTILE[case]
    path = tmp_path / f"{case}.onnx"
    onnx.save(_graph(nodes, inits, opset=20), str(path))
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path.name in err and "ONNX node '" in err, err
    assert expected in err, err
