"""IR activations in ONNX: as graph ops, and as the ``activations`` attributes of LSTM/GRU/RNN.

Both tables are exact definitions, never approximations (converters/activations.py defines the IR
names; ONNX operator docs, onnx/defs/rnn/defs.cc for the recurrent activation list).
"""
from __future__ import annotations

from ..activations import NUMPY
from ..errors import UnsupportedError
from ..sanitize import quote
from .onnx_builder import GraphBuilder

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_GAMMA = 1.0507009873554804934193349852946

#: IR activation -> (ONNX op, attributes) for a plain element-wise op.
ELEMENTWISE_OPS = {
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("Relu", {}),
    "hard_sigmoid_keras2": ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}),
    "hard_sigmoid_keras3": ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
    "softsign": ("Softsign", {}),
    "softplus": ("Softplus", {}),
    "elu": ("Elu", {"alpha": 1.0}),
    "selu": ("Selu", {"alpha": _SELU_ALPHA, "gamma": _SELU_GAMMA}),
    "exponential": ("Exp", {}),
}

#: IR activation -> (name, alpha, beta) inside an ONNX recurrent op; None = the op takes no such
#: argument. onnxruntime consumes activation_alpha/beta only for activations that take them
#: (NameToArgUsageMap in onnxruntime/core/providers/cpu/rnn/rnn_helpers.cc).
RECURRENT = {
    "linear": ("Affine", 1.0, 0.0),
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
    "relu": ("Relu", None, None),
    "hard_sigmoid_keras2": ("HardSigmoid", 0.2, 0.5),
    "hard_sigmoid_keras3": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "elu": ("Elu", 1.0, None),
}


def apply_activation(g: GraphBuilder, name: str | None, x: str, out: str | None = None) -> str:
    """``name(x)`` as ONNX ops (``None`` = linear); softmax acts on the last axis as in Keras."""
    name = name or "linear"
    if name == "linear":
        return g.finish(x, out)
    if name == "softmax":
        return g.op("Softmax", [x], out=out, axis=-1)
    if name == "swish":
        return g.op("Mul", [x, g.op("Sigmoid", [x])], out=out)
    if name in ELEMENTWISE_OPS:
        op_type, attrs = ELEMENTWISE_OPS[name]
        return g.op(op_type, [x], out=out, **attrs)
    raise UnsupportedError(f"expected an IR activation ({', '.join(NUMPY)}), found {quote(name)}")


def recurrent_activation_attrs(names: list[str]) -> dict:
    """``activations`` / ``activation_alpha`` / ``activation_beta`` for a recurrent node.

    Alpha and beta lists hold one entry per activation that takes the argument, in order.
    """
    missing = [n for n in names if n not in RECURRENT]
    if missing:
        raise UnsupportedError(
            f"expected a recurrent activation ONNX can express exactly ({', '.join(RECURRENT)}), "
            f"found {quote(missing[0])}; convert to PyTorch (--to torch) instead, which runs any activation")
    table = [RECURRENT[n] for n in names]
    attrs = {"activations": [t[0] for t in table]}
    alphas = [t[1] for t in table if t[1] is not None]
    betas = [t[2] for t in table if t[2] is not None]
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs
