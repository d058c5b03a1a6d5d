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
}

#: Element-wise activations (all but softmax): what a recurrent cell may use.
ELEMENTWISE = tuple(n for n in NUMPY if n != "softmax")

_KERAS_ALIASES = {"silu": "swish", None: "linear", "": "linear"}


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
    if name in NUMPY:
        return name
    supported = (set(NUMPY) - {"hard_sigmoid_keras2", "hard_sigmoid_keras3"}) | {"hard_sigmoid"}
    raise UnsupportedError(f"{where}activation {quote(name)} is not supported (supported: {', '.join(sorted(supported))})")


def apply(name: str, x: np.ndarray) -> np.ndarray:
    """Apply IR activation ``name`` with numpy."""
    return NUMPY[name](x)
