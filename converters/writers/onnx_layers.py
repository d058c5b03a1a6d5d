"""The non-recurrent IR ops as ONNX nodes, one small function each (see converters/ir.py).

Tensors stay batch-first and channels-last as in Keras; Conv1D alone transposes to ONNX's
channels-first and back.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Node
from ..sanitize import quote
from .onnx_activations import apply_activation
from .onnx_builder import GraphBuilder


def _scalar(v, default: int = 1) -> int:
    """Keras stores ``strides`` / ``dilation_rate`` / ``axis`` as ``2`` or ``[2]``."""
    if v is None:
        return default
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


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
    g.op("Concat", node.inputs, out=node.outputs[0], axis=_scalar(node.options.get("axis"), -1))


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
    axis = _scalar(node.options.get("axis"), -1) % rank
    if axis == 0:
        raise UnsupportedError("expected a BatchNormalization axis other than the batch axis, found 0")
    f32 = {k: np.asarray(v, dtype=np.float32) for k, v in w.items()}
    size = next(iter(f32.values())).shape[0]
    mean = f32.get("moving_mean", np.zeros(size, np.float32))
    inv = np.float32(1.0) / np.sqrt(f32.get("moving_variance", np.ones(size, np.float32))
                                    + np.float32(node.options.get("epsilon", 1e-3)))
    inv = inv * f32.get("gamma", np.ones(size, np.float32))
    shift = f32.get("beta", np.zeros(size, np.float32)) - mean * inv
    shape = (size,) + (1,) * (rank - 1 - axis)
    scaled = g.op("Mul", [x, g.initializer(inv.reshape(shape), "scale")])
    g.op("Add", [scaled, g.initializer(shift.reshape(shape), "shift")], out=node.outputs[0])


def conv1d_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Keras Conv1D (channels last) as ONNX Conv between two Transposes."""
    o, w, b = node.options, node.weights["weight"], node.weights.get("bias")
    k = int(np.shape(w)[2])
    stride, dilation = _scalar(o.get("strides")), _scalar(o.get("dilation_rate"))
    x = g.transpose(node.inputs[0], [0, 2, 1])
    inputs = [x, g.initializer(w, "weight")] + ([g.initializer(b, "bias")] if b is not None else [])
    y = g.op("Conv", inputs, kernel_shape=[k], strides=[stride], dilations=[dilation],
             **_conv_padding(o.get("padding", "valid"), dilation * (k - 1), stride, dilation))
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
}
