"""The non-recurrent IR ops as ONNX nodes, one small function each (see converters/ir.py).

Tensors stay batch-first and channels-last as in Keras; Conv1D alone transposes to ONNX's
channels-first and back.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Node, int_option
from ..sanitize import quote
from .onnx_activations import apply_activation, scalar
from .onnx_attention import LAYERS as ATTENTION_LAYERS
from .onnx_builder import GraphBuilder



def dense_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``x W^T + b`` on the last axis: Gemm for 2-D inputs, MatMul + Add otherwise."""
    x, w, b = node.inputs[0], node.weights["weight"], node.weights.get("bias")
    act = node.options.get("activation")
    out = node.outputs[0] if (act or "linear") == "linear" else None
    if g.rank(x) == 2:
        inputs = [x, g.initializer(w, "weight")] + ([g.initializer(b, "bias")] if b is not None else [])
        y = g.op("Gemm", inputs, out=out, transB=1)
    else:
        y = g.op("MatMul", [x, g.initializer(np.asarray(w).T, "weight_t")],
                 out=out if b is None else None)
        if b is not None:
            y = g.op("Add", [y, g.initializer(b, "bias")], out=out)
    apply_activation(g, act, y, node.outputs[0])


def embedding_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Row lookup; float ids are truncated to integers as Keras' cast does."""
    ids = node.inputs[0]
    if not g.dtypes.get(ids, "float32").startswith("int"):
        ids = g.cast(ids, "int64")
    g.op("Gather", [g.initializer(node.weights["embeddings"], "embeddings"), ids],
         out=node.outputs[0], axis=0, rank=g.rank(ids) + 1)


def repeat_vector_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``(batch, f) -> (batch, n, f)``."""
    x = g.unsqueeze(node.inputs[0], [1])
    g.op("Tile", [x, g.const([1, int(node.options["n"]), 1])], out=node.outputs[0])


def concatenate_to_onnx(g: GraphBuilder, node: Node) -> None:
    g.op("Concat", node.inputs, out=node.outputs[0], axis=int_option(node.options.get("axis"), -1))


def _chain(op_type: str):
    """A Keras merge that folds its inputs left to right: ``((a op b) op c) ...``."""
    def convert(g: GraphBuilder, node: Node) -> None:
        g.fold(op_type, node.inputs, node.outputs[0])
    convert.__doc__ = f"Keras merge as a chain of ONNX {op_type}."
    return convert


def average_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Keras ``Average``: the sum, then divided by the number of inputs."""
    total = g.fold("Add", node.inputs)
    g.op("Div", [total, g.const(float(len(node.inputs)), "float32")], out=node.outputs[0])


def activation_to_onnx(g: GraphBuilder, node: Node) -> None:
    apply_activation(g, node.options.get("activation"), node.inputs[0], node.outputs[0])


def identity_to_onnx(g: GraphBuilder, node: Node) -> None:
    g.identity(node.inputs[0], node.outputs[0])


def flatten_to_onnx(g: GraphBuilder, node: Node) -> None:
    g.op("Flatten", node.inputs[:1], out=node.outputs[0], axis=1, rank=2)


def reshape_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Target shape without batch; ONNX's 0 copies the batch size."""
    shape = [int(d) for d in node.options["shape"]]
    g.op("Reshape", [node.inputs[0], g.const([0] + shape)], out=node.outputs[0], rank=len(shape) + 1)


def batch_norm_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Inference BatchNormalization as ``x * inv + (beta - mean * inv)``, ``inv = gamma / sqrt(var + eps)``.

    Computed like Keras (keras/src/layers/normalization/batch_normalization.py) in float32, on the
    Keras axis, broadcast over the axes after it.
    """
    x, w = node.inputs[0], node.weights
    rank = g.rank(x)
    axis = int_option(node.options.get("axis"), -1) % rank
    if axis == 0:
        raise UnsupportedError("expected a BatchNormalization axis other than the batch axis, found 0")
    f32 = {k: np.asarray(v, dtype=np.float32) for k, v in w.items()}
    size = next(iter(f32.values())).shape[0]
    mean = f32.get("moving_mean", np.zeros(size, np.float32))
    inv = np.float32(1.0) / np.sqrt(f32.get("moving_variance", np.ones(size, np.float32))
                                    + np.float32(node.options["epsilon"]))
    inv = inv * f32.get("gamma", np.ones(size, np.float32))
    shift = f32.get("beta", np.zeros(size, np.float32)) - mean * inv
    shape = (size,) + (1,) * (rank - 1 - axis)
    scaled = g.op("Mul", [x, g.initializer(inv.reshape(shape), "scale")])
    g.op("Add", [scaled, g.initializer(shift.reshape(shape), "shift")], out=node.outputs[0])


def conv1d_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Keras Conv1D (channels last) as ONNX Conv between two Transposes."""
    o, w, b = node.options, node.weights["weight"], node.weights.get("bias")
    k = int(np.shape(w)[2])
    stride, dilation = int_option(o.get("strides"), 1), int_option(o.get("dilation_rate"), 1)
    x = g.transpose(node.inputs[0], [0, 2, 1])
    inputs = [x, g.initializer(w, "weight")] + ([g.initializer(b, "bias")] if b is not None else [])
    y = g.op("Conv", inputs, kernel_shape=[k], strides=[stride], dilations=[dilation],
             group=int_option(o.get("groups"), 1),
             **_conv_padding(o["padding"], dilation * (k - 1), stride, dilation))
    act = o.get("activation")
    done = (act or "linear") == "linear"
    y = g.transpose(y, [0, 2, 1], out=node.outputs[0] if done else None)
    if not done:
        apply_activation(g, act, y, node.outputs[0])


def _conv_padding(padding: str, span: int, stride: int, dilation: int) -> dict:
    """Conv padding attributes for Keras' ``valid``, ``causal`` (``span`` zeros on the left) and
    ``same`` (TensorFlow's rule: the odd zero at the end, which is ONNX ``SAME_UPPER``; explicit
    for stride 1, where onnxruntime refuses ``SAME_UPPER`` with dilation)."""
    if padding == "valid":
        return {"pads": [0, 0]}
    if padding == "causal":
        return {"pads": [span, 0]}
    if padding != "same":
        raise UnsupportedError(f"expected conv1d padding valid|same|causal, found {quote(padding)}")
    if stride == 1:
        return {"pads": [span // 2, span - span // 2]}
    if dilation != 1:
        raise UnsupportedError(f"expected conv1d padding 'same' with strides 1 or dilation_rate 1, "
                               f"found strides {stride} and dilation_rate {dilation}")
    return {"auto_pad": "SAME_UPPER"}


def _reduce(g: GraphBuilder, op_type: str, x: str, axes: list[int], keepdims: bool, out: str | None = None) -> str:
    """A Reduce* node: axes as an input from opset 18 (ReduceSum from 13), an attribute before."""
    rank = g.rank(x) - (0 if keepdims else len(axes))
    if op_type == "ReduceSum" or g.opset >= 18:
        return g.op(op_type, [x, g.const(list(axes))], out=out, keepdims=int(keepdims), rank=rank)
    return g.op(op_type, [x], out=out, axes=list(axes), keepdims=int(keepdims), rank=rank)


def relu_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Keras ReLU/LeakyReLU: ``clip(x * (x > t), 0, max) - negative_slope * relu(t - x)``."""
    o, x = node.options, node.inputs[0]
    t, slope, top = float(o["threshold"]), float(o["negative_slope"]), o.get("max_value")
    if t != 0:
        y = g.op("Mul", [x, g.cast(g.op("Greater", [x, scalar(g, t)], dtype="bool"), "float32")])
    else:
        y = g.op("Relu", [x])
    if top is not None:
        y = g.op("Clip", [y, scalar(g, 0.0), scalar(g, top)])
    if slope:
        negative = g.op("Relu", [g.op("Sub", [scalar(g, t), x], rank=g.rank(x))])
        y = g.op("Sub", [y, g.op("Mul", [negative, scalar(g, slope)])])
    g.finish(y, node.outputs[0])


def elu_to_onnx(g: GraphBuilder, node: Node) -> None:
    g.op("Elu", node.inputs[:1], out=node.outputs[0], alpha=float(node.options["alpha"]))


def prelu_to_onnx(g: GraphBuilder, node: Node) -> None:
    """ONNX PRelu: ``x < 0 ? alpha * x : x``, alpha broadcast over the batch."""
    g.op("PRelu", [node.inputs[0], g.initializer(node.weights["alpha"], "alpha")], out=node.outputs[0])


def global_pool_to_onnx(g: GraphBuilder, node: Node) -> None:
    """ReduceMax / ReduceMean over the time axis; a masked mean is Where + ReduceSum over the count."""
    o, x = node.options, node.inputs[0]
    axis, keep = int(o["axis"]), bool(o.get("keepdims"))
    if o.get("mode") == "max":
        _reduce(g, "ReduceMax", x, [axis], keep, out=node.outputs[0])
    elif not node.mask:
        _reduce(g, "ReduceMean", x, [axis], keep, out=node.outputs[0])
    else:
        m = g.unsqueeze(node.mask, [2 if axis == 1 else 1])
        total = _reduce(g, "ReduceSum", g.op("Where", [m, x, scalar(g, 0.0)], rank=g.rank(x)), [axis], keep)
        count = _reduce(g, "ReduceSum", g.cast(m, "float32"), [axis], keep)
        g.op("Div", [total, count], out=node.outputs[0])


def pool1d_to_onnx(g: GraphBuilder, node: Node) -> None:
    """MaxPool / AveragePool between Transposes; ``same`` is SAME_UPPER (TensorFlow's odd step at the
    end) with the padding left out of the average (count_include_pad=0)."""
    o = node.options
    k = int_option(o["pool_size"], 1)
    s = int_option(o.get("strides") or k, 1)
    padding = o["padding"]
    if padding not in ("valid", "same"):
        raise UnsupportedError(f"expected pooling padding valid or same, found {quote(padding)}")
    x = g.transpose(node.inputs[0], [0, 2, 1])
    pads = {"auto_pad": "SAME_UPPER"} if padding == "same" else {"pads": [0, 0]}
    y = g.op("MaxPool" if o.get("mode") == "max" else "AveragePool", [x], kernel_shape=[k], strides=[s], **pads)
    g.transpose(y, [0, 2, 1], out=node.outputs[0])


def permute_to_onnx(g: GraphBuilder, node: Node) -> None:
    g.transpose(node.inputs[0], [0] + [int(d) for d in node.options["dims"]], out=node.outputs[0])


def layer_norm_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` from ReduceMean (the LayerNormalization op
    starts at opset 17)."""
    x, axes, w = node.inputs[0], [int(a) for a in node.options["axes"]], node.weights
    centered = g.op("Sub", [x, _reduce(g, "ReduceMean", x, axes, True)])
    var = _reduce(g, "ReduceMean", g.op("Mul", [centered, centered]), axes, True)
    eps = scalar(g, float(node.options["epsilon"]))
    y = g.op("Div", [centered, g.op("Sqrt", [g.op("Add", [var, eps])])])
    if "gamma" in w:
        y = g.op("Mul", [y, g.initializer(w["gamma"], "gamma")])
    if "beta" in w:
        y = g.op("Add", [y, g.initializer(w["beta"], "beta")])
    g.finish(y, node.outputs[0])


def unit_norm_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``x * min(1 / sqrt(sum(x^2)), 1e12)`` as Keras 3 computes it."""
    x = node.inputs[0]
    square_sum = _reduce(g, "ReduceSum", g.op("Mul", [x, x]), [int(a) for a in node.options["axes"]], True)
    inv = g.op("Min", [g.op("Reciprocal", [g.op("Sqrt", [square_sum])]), scalar(g, 1e12)])
    g.op("Mul", [x, inv], out=node.outputs[0])


def crop1d_to_onnx(g: GraphBuilder, node: Node) -> None:
    left, right = (int(v) for v in node.options["cropping"])
    end = -right if right else np.iinfo(np.int64).max
    g.op("Slice", [node.inputs[0], g.const([left]), g.const([end]), g.const([1])], out=node.outputs[0])


def zero_pad1d_to_onnx(g: GraphBuilder, node: Node) -> None:
    left, right = (int(v) for v in node.options["padding"])
    g.op("Pad", [node.inputs[0], g.const([0, left, 0, 0, right, 0])], out=node.outputs[0], mode="constant")


def upsample1d_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Each step repeated: ``(b, t, f) -> (b, t, size, f) -> (b, t * size, f)``."""
    x, size = node.inputs[0], int(node.options["size"])
    tiled = g.op("Tile", [g.unsqueeze(x, [2]), g.const([1, 1, size, 1])])
    shape = g.op("Mul", [g.op("Shape", [x], rank=1, dtype="int64"), g.const([1, size, 1])], dtype="int64")
    g.op("Reshape", [tiled, shape], out=node.outputs[0], rank=3)


def _dims(g: GraphBuilder, x: str, start: int, end: int) -> str:
    """``Shape(x)[start:end]`` as an int64 vector (``end`` past the last axis: to the end)."""
    return g.op("Slice", [g.op("Shape", [x], rank=1, dtype="int64"), g.const([start]), g.const([end])],
                rank=1, dtype="int64")


def fold_time_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``(b, s, *rest) -> (b * s, *rest)``: Reshape to ``[-1, *Shape(x)[2:]]`` (the batch stays dynamic)."""
    x, end = node.inputs[0], np.iinfo(np.int64).max
    shape = g.op("Concat", [g.const([-1]), _dims(g, x, 2, end)], axis=0, rank=1, dtype="int64")
    g.op("Reshape", [x, shape], out=node.outputs[0], rank=g.rank(x) - 1)


def unfold_time_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``(b * s, *rest) -> (b, s, *rest)``: Reshape to ``[*Shape(x)[:2], *Shape(y)[1:]]``, x the folded input."""
    y, x = node.inputs[:2]
    shape = g.op("Concat", [_dims(g, x, 0, 2), _dims(g, y, 1, np.iinfo(np.int64).max)], axis=0, rank=1,
                 dtype="int64")
    g.op("Reshape", [y, shape], out=node.outputs[0], rank=g.rank(y) + 1)


LAYERS = {
    "dense": dense_to_onnx,
    "embedding": embedding_to_onnx,
    "repeat_vector": repeat_vector_to_onnx,
    "concatenate": concatenate_to_onnx,
    "add": _chain("Add"),
    "subtract": _chain("Sub"),
    "multiply": _chain("Mul"),
    "average": average_to_onnx,
    "maximum": _chain("Max"),
    "minimum": _chain("Min"),
    "activation": activation_to_onnx,
    "identity": identity_to_onnx,
    "flatten": flatten_to_onnx,
    "reshape": reshape_to_onnx,
    "batch_norm": batch_norm_to_onnx,
    "conv1d": conv1d_to_onnx,
    "relu": relu_to_onnx,
    "elu": elu_to_onnx,
    "prelu": prelu_to_onnx,
    "global_pool": global_pool_to_onnx,
    "pool1d": pool1d_to_onnx,
    "permute": permute_to_onnx,
    "layer_norm": layer_norm_to_onnx,
    "unit_norm": unit_norm_to_onnx,
    "crop1d": crop1d_to_onnx,
    "zero_pad1d": zero_pad1d_to_onnx,
    "upsample1d": upsample1d_to_onnx,
    "fold_time": fold_time_to_onnx,
    "unfold_time": unfold_time_to_onnx,
    **ATTENTION_LAYERS,  # attention, multi_head_attention, dot, masked_softmax
}
