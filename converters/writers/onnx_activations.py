"""IR activations in ONNX: as graph ops, and as the ``activations`` attributes of LSTM/GRU/RNN.

The ops and recurrent names are the ``onnx`` / ``onnx_recurrent`` columns of
:data:`converters.activations.TABLE` (exact definitions, never approximations; ONNX operator docs,
onnx/defs/rnn/defs.cc for the recurrent activation list); the activations made of several ops
(``COMPOSED`` there) are built here.
"""
from __future__ import annotations

from ..activations import NUMPY, column
from ..errors import UnsupportedError
from ..sanitize import quote
from .onnx_builder import GraphBuilder

#: IR activation -> (ONNX op, attributes) for a plain element-wise op.
ELEMENTWISE_OPS = {name: op for name, op in column("onnx").items() if isinstance(op, tuple)}


def scalar(g: GraphBuilder, value: float) -> str:
    """A shared float32 scalar constant."""
    return g.const(float(value), "float32")


def _gelu(g: GraphBuilder, x: str, out: str | None) -> str:
    """``0.5 x (1 + erf(x / sqrt 2))`` (the Gelu op starts at opset 20)."""
    erf = g.op("Erf", [g.op("Mul", [x, scalar(g, 0.5 ** 0.5)])])
    return g.op("Mul", [g.op("Mul", [x, scalar(g, 0.5)]), g.op("Add", [erf, scalar(g, 1.0)])], out=out)


def _gelu_tanh(g: GraphBuilder, x: str, out: str | None) -> str:
    """``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    cube = g.op("Mul", [g.op("Mul", [x, x]), x])
    inner = g.op("Add", [x, g.op("Mul", [cube, scalar(g, 0.044715)])])
    t = g.op("Tanh", [g.op("Mul", [inner, scalar(g, (2.0 / 3.141592653589793) ** 0.5)])])
    return g.op("Mul", [g.op("Mul", [x, scalar(g, 0.5)]), g.op("Add", [t, scalar(g, 1.0)])], out=out)


def _clip(lo: float, hi: float):
    def clip(g: GraphBuilder, x: str, out: str | None) -> str:
        return g.op("Clip", [x, scalar(g, lo), scalar(g, hi)], out=out)
    return clip


def _sparse_plus(g: GraphBuilder, x: str, out: str | None) -> str:
    """0 for ``x <= -1``, ``(x + 1)^2 / 4`` below 1, ``x`` from 1 on."""
    x1 = g.op("Add", [x, scalar(g, 1.0)])
    middle = g.op("Mul", [g.op("Mul", [x1, x1]), scalar(g, 0.25)])
    upper = g.op("Where", [g.op("Less", [x, scalar(g, 1.0)], dtype="bool"), middle, x])
    low = g.op("LessOrEqual", [x, scalar(g, -1.0)], dtype="bool")
    return g.op("Where", [low, scalar(g, 0.0), upper], out=out)


def _squareplus(g: GraphBuilder, x: str, out: str | None) -> str:
    root = g.op("Sqrt", [g.op("Add", [g.op("Mul", [x, x]), scalar(g, 4.0)])])
    return g.op("Div", [g.op("Add", [x, root]), scalar(g, 2.0)], out=out)


#: IR activation -> f(graph, x, out) for activations made of several ONNX ops.
COMPOSED = {
    "linear": lambda g, x, out: g.finish(x, out),
    "swish": lambda g, x, out: g.op("Mul", [x, g.op("Sigmoid", [x])], out=out),
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "relu6": _clip(0.0, 6.0),
    "hard_tanh": _clip(-1.0, 1.0),
    "mish": lambda g, x, out: g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])], out=out),
    "hard_silu": lambda g, x, out: g.op("Mul", [x, g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)], out=out),
    "log_sigmoid": lambda g, x, out: g.op("Neg", [g.op("Softplus", [g.op("Neg", [x])])], out=out),
    "tanh_shrink": lambda g, x, out: g.op("Sub", [x, g.op("Tanh", [x])], out=out),
    "sparse_sigmoid": lambda g, x, out: _clip(0.0, 1.0)(g, g.op("Mul", [g.op("Add", [x, scalar(g, 1.0)]), scalar(g, 0.5)]), out),
    "sparse_plus": _sparse_plus,
    "squareplus": _squareplus,
    "softmax": lambda g, x, out: g.op("Softmax", [x], out=out, axis=-1),
    "log_softmax": lambda g, x, out: g.op("LogSoftmax", [x], out=out, axis=-1),
}

#: IR activation -> (name, alpha, beta) inside an ONNX recurrent op; None = the op takes no such
#: argument. onnxruntime consumes activation_alpha/beta only for activations that take them
#: (NameToArgUsageMap in onnxruntime/core/providers/cpu/rnn/rnn_helpers.cc).
RECURRENT = column("onnx_recurrent")


def apply_activation(g: GraphBuilder, name: str | None, x: str, out: str | None = None) -> str:
    """``name(x)`` as ONNX ops (``None`` = linear); (log_)softmax acts on the last axis as in Keras."""
    name = name or "linear"
    if name in COMPOSED:
        return COMPOSED[name](g, x, out)
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
