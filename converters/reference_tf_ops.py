"""The numpy forward pass of the ops read from TensorFlow / Keras 3 calls in functional models
(``slice``, ``reduce``, ``scalar``, ``binary``: converters/ops.py; readers/keras_tf_ops.py)."""
from __future__ import annotations

import numpy as np

from .errors import InputsError

#: IR element-wise operation -> numpy function (shared by the numpy writer's generated code).
ELEMENTWISE = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
               "maximum": np.maximum, "minimum": np.minimum, "power": np.power}
REDUCE = {"mean": np.mean, "sum": np.sum, "max": np.max, "min": np.min}


def slice_(node, x):
    o = node.options
    axis = int(o["axis"])
    if o.get("index") is not None:
        index, size = int(o["index"]), x.shape[axis]
        if not -size <= index < size:
            raise InputsError(f"index {index} is out of range for axis {axis} of size {size}", layer=node.label())
        return np.take(x, index, axis=axis)
    where = [slice(None)] * x.ndim
    where[axis] = slice(o.get("start"), o.get("stop"), int(o["step"]))
    return x[tuple(where)]


def reduce(node, x):
    o = node.options
    return REDUCE[o["mode"]](x, axis=tuple(int(a) for a in o["axes"]), keepdims=bool(o["keepdims"]))


def _apply(operation: str, a, b):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return ELEMENTWISE[operation](a, b)


def scalar(node, x):
    o = node.options
    v = np.asarray(float(o["value"]), dtype=x.dtype)
    return _apply(o["operation"], v, x) if o["reverse"] else _apply(o["operation"], x, v)


OPS = {"slice": slice_, "reduce": reduce, "scalar": scalar,
       "binary": lambda node, a, b: _apply(node.options["operation"], a, b)}
