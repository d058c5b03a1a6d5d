"""The normalization and scaling ops as ONNX nodes (equations: converters/reference_norms.py), opset 13+:
element-wise ``Sub``/``Div``/``Max``/``Sqrt`` with the weights as initializers, ``ReduceMean`` for the
moments; group_norm reshapes the channels to ``(groups, channels / groups)`` and back (time stays dynamic).
Each weight's shape is checked against the input's first (converters/norm_checks.py)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..errors import UnsupportedError
from ..ir import Node
from ..ops import conv1d_transpose_edges
from ..shapes import infer_shapes
from .onnx_activations import apply_activation, scalar
from .onnx_builder import GraphBuilder
from .onnx_layers import _reduce
from ..norm_checks import check_weights, conv1d_transpose_weights, group_channels, input_shape, trailing_dims


def _shape(g: GraphBuilder, node: Node) -> tuple:
    """The static shape (without batch) of the node's input, from the IR's shape inference (once per graph)."""
    if "shapes" not in g.memo:
        g.memo["shapes"] = infer_shapes(g.memo["model"]) if "model" in g.memo else {}
    return input_shape(SimpleNamespace(shapes=g.memo["shapes"]), node)


def normalization_to_onnx(g: GraphBuilder, node: Node) -> None:
    w = node.weights
    check_weights(node, _shape(g, node))
    x, mean = node.inputs[0], g.initializer(w["mean"], "mean")
    scale = g.op("Max", [g.op("Sqrt", [g.initializer(w["variance"], "variance")]),
                         scalar(g, float(node.options["epsilon"]))], rank=g.rank(x))
    if node.options["invert"]:
        g.op("Add", [mean, g.op("Mul", [x, scale])], out=node.outputs[0], rank=g.rank(x))
    else:
        g.op("Div", [g.op("Sub", [x, mean]), scale], out=node.outputs[0])


def rescaling_to_onnx(g: GraphBuilder, node: Node) -> None:
    w = node.weights
    check_weights(node, _shape(g, node))
    y = g.op("Mul", [node.inputs[0], g.initializer(w["scale"], "scale")])
    g.op("Add", [y, g.initializer(w["offset"], "offset")], out=node.outputs[0])


def rms_norm_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``x / sqrt(mean(x^2) + eps) * scale`` (centered: ``x - mean(x)`` squared)."""
    x, axes, w = node.inputs[0], [int(a) for a in node.options["axes"]], node.weights
    trailing_dims(node, _shape(g, node), axes, {k: w[k] for k in ("scale",) if k in w})
    base = g.op("Sub", [x, _reduce(g, "ReduceMean", x, axes, True)]) if node.options["centered"] else x
    mean_square = _reduce(g, "ReduceMean", g.op("Mul", [base, base]), axes, True)
    y = g.op("Div", [x, g.op("Sqrt", [g.op("Add", [mean_square, scalar(g, float(node.options["epsilon"]))])])])
    if "scale" in w:
        y = g.op("Mul", [y, g.initializer(w["scale"], "scale")])
    g.finish(y, node.outputs[0])


def group_norm_to_onnx(g: GraphBuilder, node: Node) -> None:
    x, w, shape = node.inputs[0], node.weights, _shape(g, node)
    n, groups = group_channels(node, shape), int(node.options["groups"])
    rank = len(shape) + 1
    if g.rank(x) != rank:
        raise UnsupportedError(f"expected an input of rank {rank}, found {g.rank(x)}", layer=node.label())
    grouped = g.op("Reshape", [x, g.const([0] * (rank - 1) + [groups, n // groups])], rank=rank + 1)
    axes = [*range(1, rank - 1), rank]
    centered = g.op("Sub", [grouped, _reduce(g, "ReduceMean", grouped, axes, True)])
    var = _reduce(g, "ReduceMean", g.op("Mul", [centered, centered]), axes, True)
    y = g.op("Div", [centered, g.op("Sqrt", [g.op("Add", [var, scalar(g, float(node.options["epsilon"]))])])])
    y = g.op("Reshape", [y, g.op("Shape", [x], rank=1, dtype="int64")], rank=rank)
    if "gamma" in w:
        y = g.op("Mul", [y, g.initializer(w["gamma"], "gamma")])
    if "beta" in w:
        y = g.op("Add", [y, g.initializer(w["beta"], "beta")])
    g.finish(y, node.outputs[0])


LAYERS = {"normalization": normalization_to_onnx, "rescaling": rescaling_to_onnx, "rms_norm": rms_norm_to_onnx,
          "group_norm": group_norm_to_onnx}


def conv1d_transpose_to_onnx(g: GraphBuilder, node: Node) -> None:
    """ConvTranspose (no pads) between two Transposes, TensorFlow's crop (Slice) and zero steps (Pad), the bias."""
    weight, bias, k, s, d = conv1d_transpose_weights(node, _shape(g, node))
    x = g.transpose(node.inputs[0], [0, 2, 1])
    y = g.op("ConvTranspose", [x, g.initializer(weight, "weight")], kernel_shape=[k], strides=[s], dilations=[d],
             pads=[0, 0])
    y = g.transpose(y, [0, 2, 1])
    before, after = conv1d_transpose_edges(node.options)
    if before or after < 0:
        end = after if after < 0 else np.iinfo(np.int64).max
        y = g.op("Slice", [y, g.const([before]), g.const([end]), g.const([1])])
    if after > 0:
        y = g.op("Pad", [y, g.const([0, 0, 0, 0, after, 0])], mode="constant")
    if bias is not None:
        y = g.op("Add", [y, g.initializer(bias, "bias")])
    apply_activation(g, node.options.get("activation"), y, node.outputs[0])


LAYERS["conv1d_transpose"] = conv1d_transpose_to_onnx
