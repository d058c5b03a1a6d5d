"""Activation functions by exact definition, and how a Keras name maps to one.

The IR never stores a bare ``"hard_sigmoid"``: Keras 1/2 and tf-keras define it as
``clip(0.2x + 0.5, 0, 1)``, Keras 3 as ``relu6(x + 3) / 6`` = ``clip(x/6 + 0.5, 0, 1)``
(SEMANTICS.md §3.3; tf_keras/backend.py ``hard_sigmoid``, keras/src/activations/activations.py).
Readers resolve the name with the writer's Keras version through :func:`from_keras`.
"""
from __future__ import annotations

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


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

#: name -> numpy definition (float64 in, float64 out). These are the IR's activation names.
NUMPY: dict[str, callable] = {
    "linear": lambda x: x,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "hard_sigmoid_keras2": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "hard_sigmoid_keras3": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "softmax": _softmax,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "exponential": np.exp,
    "swish": lambda x: x * _sigmoid(x),
    # Keras 3 / tf-keras 2.x additions (keras/src/activations/activations.py; default arguments)
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,  # gelu(approximate=True): not a Keras name, reachable from other formats
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "mish": lambda x: x * np.tanh(np.logaddexp(0.0, x)),
    "hard_silu": lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "log_softmax": _log_softmax,
    "celu": _elu,  # alpha 1: elu
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "log_sigmoid": lambda x: -np.logaddexp(0.0, -x),
    "hard_shrink": _shrink(0.5, soft=False),
    "soft_shrink": _shrink(0.5, soft=True),
    "tanh_shrink": lambda x: x - np.tanh(x),
    "sparse_plus": lambda x: np.where(x <= -1, 0.0, np.where(x < 1, 0.25 * (x + 1) ** 2, x)),
    "sparse_sigmoid": lambda x: np.clip(0.5 * (x + 1), 0.0, 1.0),
    "squareplus": lambda x: (x + np.sqrt(x * x + 4.0)) / 2,
}

#: Activations over the last axis; the others are element-wise.
AXIS_WISE = ("softmax", "log_softmax")
#: Element-wise activations: what a recurrent cell may use.
ELEMENTWISE = tuple(n for n in NUMPY if n not in AXIS_WISE)

_KERAS_ALIASES = {"silu": "swish", "hard_swish": "hard_silu", None: "linear", "": "linear"}
#: IR names no Keras activation string reaches (a Keras file naming one is refused).
NOT_KERAS = ("gelu_tanh", "hard_sigmoid_keras2", "hard_sigmoid_keras3")
#: Keras activations gateport refuses, with the reason.
REFUSED = {"glu": "it halves the last axis (not element-wise)",
           "sparsemax": "it is a projection over the last axis that no target runs exactly",
           "threshold": "it takes required arguments a layer's activation string cannot give"}


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
    name = _KERAS_ALIASES.get(name, name)
    if name == "hard_sigmoid":
        return "hard_sigmoid_keras3" if keras_major(keras_version) >= 3 else "hard_sigmoid_keras2"
    if name in NUMPY and name not in NOT_KERAS:
        return name
    if name in REFUSED:
        raise UnsupportedError(f"{where}activation {quote(name)} is not supported: {REFUSED[name]}")
    supported = (set(NUMPY) - set(NOT_KERAS)) | {"hard_sigmoid"}
    raise UnsupportedError(f"{where}activation {quote(name)} is not supported (supported: {', '.join(sorted(supported))})")


def apply(name: str, x: np.ndarray) -> np.ndarray:
    """Apply IR activation ``name`` with numpy."""
    return NUMPY[name](x)
