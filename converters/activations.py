"""Activation functions by exact definition: one row per IR activation, every spelling in one table.

The IR never stores a bare ``"hard_sigmoid"``: Keras 1/2 and tf-keras define it as
``clip(0.2x + 0.5, 0, 1)``, Keras 3 as ``relu6(x + 3) / 6`` = ``clip(x/6 + 0.5, 0, 1)``
(SEMANTICS.md §3.3; tf_keras/backend.py ``hard_sigmoid``, keras/src/activations/activations.py).
Readers resolve the name with the writer's Keras version through :func:`from_keras`.

:data:`TABLE` holds, per IR name: the numpy definition, the Keras 1/2 and Keras 3 config spellings,
the PyTorch expression, module and helper (writers/torch_templates.py holds the helpers' source),
the numpy-code expression and helper (writers/numpy_templates.py), the ONNX element-wise op with its
attributes (or :data:`COMPOSED`: several ops, built in writers/onnx_activations.py) and the name,
alpha and beta inside an ONNX LSTM/GRU/RNN node. A column a format cannot express holds
:data:`NOT_EXPRESSIBLE`. Every other module reads its column here; reverse maps are computed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import UnsupportedError
from .sanitize import quote


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _gelu(x):
    from math import erf, sqrt  # exact: 0.5 x (1 + erf(x / sqrt 2))

    return 0.5 * x * (1.0 + np.vectorize(erf, otypes=[np.float64])(np.asarray(x) / sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def _log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _shrink(threshold: float, soft: bool):
    def f(x):
        out = np.where(np.abs(x) > threshold, x, 0.0)
        return out - np.sign(out) * threshold if soft else out
    return f


#: SELU's constants as written into generated code (keras/src/activations/activations.py ``selu``).
SELU_ALPHA_TEXT = "1.6732632423543772848170429916717"
SELU_SCALE_TEXT = "1.0507009873554804934193349852946"
SELU_ALPHA = float(SELU_ALPHA_TEXT)
SELU_SCALE = float(SELU_SCALE_TEXT)


class _NotExpressible:
    """Marks a column a format has no exact spelling for."""

    def __repr__(self) -> str:
        return "NOT_EXPRESSIBLE"


NOT_EXPRESSIBLE = _NotExpressible()
#: ONNX column: several ops (writers/onnx_activations.py ``COMPOSED`` builds them).
COMPOSED = "composed"


@dataclass(frozen=True)
class Activation:
    """One IR activation in every format."""

    name: str
    numpy: Callable  # float64 in, float64 out
    keras2: object  # the name in a Keras 1/2 config
    keras3: object  # the name in a Keras 3 config
    torch: tuple  # (expression with {} for the argument, module constructor, helper needed or None)
    numpy_code: tuple  # (expression with {} for the argument, helper needed or None)
    onnx: object  # (op, attributes) | COMPOSED
    onnx_recurrent: object  # (name, alpha or None, beta or None) inside an ONNX recurrent op
    axis_wise: bool = False  # acts over the last axis (not element-wise)
    keras3_op: object = NOT_EXPRESSIBLE  # a function Keras has no activation name for: its Keras 3 operation class


_X = NOT_EXPRESSIBLE


def _row(name, numpy, keras, torch, numpy_code, onnx, onnx_recurrent=_X, axis_wise=False, keras3=None,
         keras3_op=_X):
    """A row whose Keras 2 and 3 spellings are ``keras`` (``keras3`` when it differs)."""
    return Activation(name, numpy, keras, keras if keras3 is None else keras3, torch, numpy_code, onnx,
                      onnx_recurrent, axis_wise, keras3_op)


def _math(name, numpy, torch_function, module, onnx_op, keras3_op):
    """An element-wise math function that is no Keras activation (``tf.abs``, ``keras.ops.sqrt`` ... in a functional
    model): read from TensorFlow / Keras 3 calls, written back to Keras 3 as its operation."""
    return _row(name, numpy, _X, (f"{torch_function}({{}})", f"{module}()", module), (f"np.{name}({{}})", None),
                (onnx_op, {}), keras3_op=keras3_op)


def _own(name):  # the numpy-code helper of the same name
    return (name + "({})", name)


_ROWS = (
    _row("linear", lambda x: x, "linear", ("{}", "nn.Identity()", None), ("{}", None), COMPOSED,
         ("Affine", 1.0, 0.0)),
    _row("sigmoid", _sigmoid, "sigmoid", ("torch.sigmoid({})", "nn.Sigmoid()", None), _own("sigmoid"),
         ("Sigmoid", {}), ("Sigmoid", None, None)),
    _row("tanh", np.tanh, "tanh", ("torch.tanh({})", "nn.Tanh()", None), ("np.tanh({})", None),
         ("Tanh", {}), ("Tanh", None, None)),
    _row("relu", lambda x: np.maximum(x, 0), "relu", ("torch.relu({})", "nn.ReLU()", None),
         ("np.maximum({}, 0.0)", None), ("Relu", {}), ("Relu", None, None)),
    _row("hard_sigmoid_keras2", lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0), "hard_sigmoid",
         ("hard_sigmoid_keras2({})", "HardSigmoidKeras2()", "HardSigmoidKeras2"), _own("hard_sigmoid_keras2"),
         ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}), ("HardSigmoid", 0.2, 0.5), keras3=_X),
    _row("hard_sigmoid_keras3", lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0), _X,
         ("F.hardsigmoid({})", "nn.Hardsigmoid()", None), _own("hard_sigmoid_keras3"),
         ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}), ("HardSigmoid", 1.0 / 6.0, 0.5), keras3="hard_sigmoid"),
    _row("softmax", _softmax, "softmax", ("torch.softmax({}, dim=-1)", "nn.Softmax(dim=-1)", None),
         _own("softmax"), COMPOSED, axis_wise=True),
    _row("softsign", lambda x: x / (1.0 + np.abs(x)), "softsign", ("F.softsign({})", "nn.Softsign()", None),
         _own("softsign"), ("Softsign", {}), ("Softsign", None, None)),
    _row("softplus", lambda x: np.logaddexp(0.0, x), "softplus", ("F.softplus({})", "nn.Softplus()", None),
         ("np.logaddexp(0.0, {})", None), ("Softplus", {}), ("Softplus", None, None)),
    _row("elu", _elu, "elu", ("F.elu({})", "nn.ELU()", None), _own("elu"), ("Elu", {"alpha": 1.0}),
         ("Elu", 1.0, None)),
    _row("selu", lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))), "selu",
         ("F.selu({})", "nn.SELU()", None), _own("selu"), ("Selu", {"alpha": SELU_ALPHA, "gamma": SELU_SCALE})),
    _row("exponential", np.exp, "exponential", ("torch.exp({})", "Exponential()", "Exponential"),
         ("np.exp({})", None), ("Exp", {})),
    _row("swish", lambda x: x * _sigmoid(x), "swish", ("F.silu({})", "nn.SiLU()", None), _own("swish"),
         COMPOSED, keras3="silu"),
    # Keras 3 / tf-keras 2.x additions (keras/src/activations/activations.py; default arguments);
    # a Keras 1/2 file naming one is read as Keras 3 defines it.
    _row("gelu", _gelu, "gelu", ("F.gelu({})", "nn.GELU()", None), _own("gelu"), COMPOSED),
    # gelu(approximate=True): not a Keras name, reachable from other formats
    _row("gelu_tanh", _gelu_tanh, _X, ("F.gelu({}, approximate='tanh')", "nn.GELU(approximate='tanh')", None),
         _own("gelu_tanh"), COMPOSED),
    _row("leaky_relu", lambda x: np.where(x >= 0, x, 0.2 * x), "leaky_relu",
         ("F.leaky_relu({}, 0.2)", "nn.LeakyReLU(0.2)", None), _own("leaky_relu"), ("LeakyRelu", {"alpha": 0.2}),
         ("LeakyRelu", 0.2, None)),
    _row("relu6", lambda x: np.clip(x, 0.0, 6.0), "relu6", ("F.relu6({})", "nn.ReLU6()", None),
         ("np.clip({}, 0.0, 6.0)", None), COMPOSED),
    _row("mish", lambda x: x * np.tanh(np.logaddexp(0.0, x)), "mish", ("F.mish({})", "nn.Mish()", None),
         _own("mish"), COMPOSED),
    _row("hard_silu", lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0), "hard_silu",
         ("F.hardswish({})", "nn.Hardswish()", None), _own("hard_silu"), COMPOSED),
    _row("log_softmax", _log_softmax, "log_softmax", ("torch.log_softmax({}, dim=-1)", "nn.LogSoftmax(dim=-1)", None),
         _own("log_softmax"), COMPOSED, axis_wise=True),
    _row("celu", _elu, "celu", ("F.celu({})", "nn.CELU()", None), ("elu({})", "elu"),  # alpha 1: elu
         ("Celu", {"alpha": 1.0})),
    _row("hard_tanh", lambda x: np.clip(x, -1.0, 1.0), "hard_tanh", ("F.hardtanh({})", "nn.Hardtanh()", None),
         ("np.clip({}, -1.0, 1.0)", None), COMPOSED),
    _row("log_sigmoid", lambda x: -np.logaddexp(0.0, -x), "log_sigmoid", ("F.logsigmoid({})", "nn.LogSigmoid()", None),
         ("-np.logaddexp(0.0, -({}))", None), COMPOSED),
    _row("hard_shrink", _shrink(0.5, soft=False), "hard_shrink", ("F.hardshrink({}, 0.5)", "nn.Hardshrink(0.5)", None),
         _own("hard_shrink"), ("Shrink", {"lambd": 0.5, "bias": 0.0})),
    _row("soft_shrink", _shrink(0.5, soft=True), "soft_shrink", ("F.softshrink({}, 0.5)", "nn.Softshrink(0.5)", None),
         ("soft_shrink({})", "hard_shrink"), ("Shrink", {"lambd": 0.5, "bias": 0.5})),
    _row("tanh_shrink", lambda x: x - np.tanh(x), "tanh_shrink", ("F.tanhshrink({})", "nn.Tanhshrink()", None),
         _own("tanh_shrink"), COMPOSED),
    _row("sparse_plus", lambda x: np.where(x <= -1, 0.0, np.where(x < 1, 0.25 * (x + 1) ** 2, x)), "sparse_plus",
         ("keras_sparse_plus({})", "SparsePlus()", "SparsePlus"), _own("sparse_plus"), COMPOSED),
    _row("sparse_sigmoid", lambda x: np.clip(0.5 * (x + 1), 0.0, 1.0), "sparse_sigmoid",
         ("keras_sparse_sigmoid({})", "SparseSigmoid()", "SparseSigmoid"),
         ("np.clip(0.5 * ({} + 1), 0.0, 1.0)", None), COMPOSED),
    _row("squareplus", lambda x: (x + np.sqrt(x * x + 4.0)) / 2, "squareplus",
         ("keras_squareplus({})", "Squareplus()", "Squareplus"), _own("squareplus"), COMPOSED),
    # tf.math.abs / sqrt / log, keras.ops.absolute / sqrt / log (keras/src/ops/numpy.py Absolute, Sqrt, Log)
    _math("abs", np.abs, "torch.abs", "KerasAbs", "Abs", "Absolute"),
    _math("sqrt", np.sqrt, "torch.sqrt", "KerasSqrt", "Sqrt", "Sqrt"),
    _math("log", np.log, "torch.log", "KerasLog", "Log", "Log"),
)

#: IR name -> its row. These are the IR's activation names, in this order.
TABLE: dict[str, Activation] = {a.name: a for a in _ROWS}


def column(field: str) -> dict[str, Any]:
    """IR name -> one column of :data:`TABLE`, rows that cannot express it left out."""
    return {a.name: getattr(a, field) for a in _ROWS if getattr(a, field) is not NOT_EXPRESSIBLE}


#: name -> numpy definition (float64 in, float64 out).
NUMPY: dict[str, Callable] = column("numpy")
#: Activations over the last axis; the others are element-wise.
AXIS_WISE = tuple(a.name for a in _ROWS if a.axis_wise)
#: Element-wise activations: what a recurrent cell may use.
ELEMENTWISE = tuple(n for n in NUMPY if n not in AXIS_WISE)

#: ONNX op -> the attributes its activation reads, with the op's defaults (onnx/defs/math/defs.cc).
ONNX_OP_DEFAULTS = {"HardSigmoid": {"alpha": 0.2, "beta": 0.5}, "Elu": {"alpha": 1.0}, "LeakyRelu": {"alpha": 0.01},
                    "Celu": {"alpha": 1.0}, "Shrink": {"lambd": 0.5, "bias": 0.0},
                    "Selu": {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}}
#: ONNX recurrent activation -> which of (alpha, beta) it consumes, with their defaults (the ONNX
#: operators' defaults; onnxruntime rnn_helpers.cc ``NameToArgUsageMap``), for every name ONNX has.
ONNX_RECURRENT_ARGS = {"Affine": (1.0, 0.0), "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None),
                       "ScaledTanh": (1.0, 1.0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, None)}

#: Keras spellings read in any version besides the table's (keras/src/activations/__init__.py aliases).
_KERAS_ALIASES = {"hard_swish": "hard_silu", None: "linear", "": "linear"}
#: Keras activations gateport refuses, with the reason.
REFUSED = {"glu": "it halves the last axis (not element-wise)",
           "sparsemax": "it is a projection over the last axis that no target runs exactly",
           "threshold": "it takes required arguments a layer's activation string cannot give"}


def _keras_names(own: str, other: str) -> dict:
    """Keras spelling -> IR name for a file whose version spells names as column ``own``; the other
    version's spellings are read too where they mean nothing else (Keras 3's ``silu`` in Keras 2)."""
    names = {spelling: ir for ir, spelling in column(other).items()}
    names.update({spelling: ir for ir, spelling in column(own).items()})
    return {**names, **_KERAS_ALIASES}


#: Keras major version (1 and 2 read alike) -> Keras spelling -> IR name.
_FROM_KERAS = {2: _keras_names("keras2", "keras3"), 3: _keras_names("keras3", "keras2")}


def keras_major(keras_version: str | None) -> int:
    """The major version of the Keras that wrote a file; a file with no version is Keras 1."""
    if not keras_version:
        return 1
    try:
        return int(str(keras_version).split(".")[0])
    except ValueError:
        return 2


def from_keras(name, keras_version: str | None, where: str = "") -> str:
    """The IR activation for Keras activation ``name`` in a file written by ``keras_version``."""
    if isinstance(name, dict):  # Keras 3 may serialize {"class_name": "function", "config": "tanh"}
        name = name.get("config", name.get("class_name"))
    names = _FROM_KERAS[3 if keras_major(keras_version) >= 3 else 2]
    if name in names:
        return names[name]
    if name in REFUSED:
        raise UnsupportedError(f"{where}activation {quote(name)} is not supported: {REFUSED[name]}")
    supported = {*column("keras2").values(), *column("keras3").values()}
    raise UnsupportedError(f"{where}activation {quote(name)} is not supported (supported: {', '.join(sorted(supported))})")


def _f32_equal(a, b) -> bool:
    """``a == b`` in float32; False where ``a`` (a stranger's attribute) is not a real number."""
    if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)):
        return False
    return bool(np.float32(a) == np.float32(b))


#: ONNX op -> the rows spelled with it (reverse of the ``onnx`` column).
_BY_ONNX_OP: dict[str, list[Activation]] = {}
for _a in _ROWS:
    if isinstance(_a.onnx, tuple):
        _BY_ONNX_OP.setdefault(_a.onnx[0], []).append(_a)
#: ONNX element-wise ops some IR activation is.
ONNX_OPS = tuple(_BY_ONNX_OP)


def from_onnx_op(op: str, attrs: dict) -> str | None:
    """The IR activation ONNX element-wise ``op`` with ``attrs`` computes (float32 equality), else None."""
    defaults = ONNX_OP_DEFAULTS.get(op, {})
    for a in _BY_ONNX_OP.get(op, ()):
        if all(_f32_equal(attrs.get(k, defaults.get(k)), v) for k, v in a.onnx[1].items()):
            return a.name
    return None


def onnx_op_forms(op: str) -> str:
    """The forms of ``op`` the IR has, for messages: ``HardSigmoid(alpha=0.2, beta=0.5) or (...)``."""
    forms = [", ".join(f"{k}={v:g}" for k, v in a.onnx[1].items()) for a in _BY_ONNX_OP.get(op, ())]
    return f"{op}({') or ('.join(forms)})" if any(forms) else op


#: ONNX recurrent activations that compute an IR activation exactly though the writer never emits them (read
#: only): ScaledTanh(1, 1) = 1 * tanh(1 * x); ThresholdedRelu(0) = x > 0 ? x : 0 and LeakyRelu(0) = x >= 0 ? x :
#: 0 * x are relu (onnx/defs/rnn/defs.cc activation list; onnxruntime rnn_helpers.cc computes them so).
ONNX_RECURRENT_SAME = (("ScaledTanh", 1.0, 1.0, "tanh"), ("ThresholdedRelu", 0.0, None, "relu"),
                       ("LeakyRelu", 0.0, None, "relu"))

#: ONNX recurrent name -> [(alpha, beta, IR name)] (reverse of the ``onnx_recurrent`` column, then the
#: equivalent forms above).
_BY_ONNX_RECURRENT: dict[str, list[tuple]] = {}
for _a in _ROWS:
    if _a.onnx_recurrent is not NOT_EXPRESSIBLE:
        _n, _alpha, _beta = _a.onnx_recurrent
        _BY_ONNX_RECURRENT.setdefault(_n, []).append((_alpha, _beta, _a.name))
for _n, _alpha, _beta, _ir in ONNX_RECURRENT_SAME:
    _BY_ONNX_RECURRENT.setdefault(_n, []).append((_alpha, _beta, _ir))


def _recurrent_forms() -> str:
    forms = []
    for n, rows in _BY_ONNX_RECURRENT.items():
        args = [", ".join(f"{v:g}" for v in (alpha, beta) if v is not None) for alpha, beta, _ in rows]
        forms.append(f"{n}({') or ('.join(args)})" if any(args) else n)
    return ", ".join(forms)


def from_onnx_recurrent(name: str, alpha: float | None, beta: float | None) -> str:
    """The IR activation an ONNX recurrent activation computes, or UnsupportedError."""
    for a, b, ir in _BY_ONNX_RECURRENT.get(name, ()):
        if (a is None or _f32_equal(alpha, a)) and (b is None or _f32_equal(beta, b)):
            return ir
    known = name in _BY_ONNX_RECURRENT or name in ONNX_RECURRENT_ARGS
    shown = name if known else quote(name)  # a stranger's name only quoted
    if alpha is not None:
        shown += f"(alpha={alpha:g}" + (f", beta={beta:g}" if beta is not None else "") + ")"
    raise UnsupportedError(f"expected a recurrent activation the IR has ({_recurrent_forms()}), found {shown}")


def apply(name: str, x: np.ndarray) -> np.ndarray:
    """Apply IR activation ``name`` with numpy."""
    return NUMPY[name](x)
