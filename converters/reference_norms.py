"""The numpy forward pass of the normalization and scaling ops and of conv1d_transpose (rows in
converters/ops.py), float64.

Equations from Keras' sources (3.15 and tf-keras 2.21, the same formulas in both):

* ``normalization``: keras/src/layers/preprocessing/normalization.py ``call`` and
  tf_keras/src/layers/preprocessing/normalization.py ``call``: ``(x - mean) / maximum(sqrt(variance),
  backend.epsilon())``; ``invert``: ``mean + x * maximum(sqrt(variance), epsilon)``. A zero variance divides
  by epsilon (1e-7), never by zero.
* ``rescaling``: keras/src/layers/preprocessing/rescaling.py: ``x * scale + offset``.
* ``rms_norm``: keras/src/ops/nn.py ``_rms_normalization``: ``x * rsqrt(mean(square(x)) + epsilon) * scale``;
  ``centered``: ``_layer_normalization(rms_scaling=True)``: ``x * rsqrt(var(x) + epsilon) * gamma``.
* ``group_norm``: keras/src/layers/normalization/group_normalization.py: the channels reshaped to
  ``(groups, channels / groups)``, moments over every axis but batch and group, ``(x - mean) *
  rsqrt(var + epsilon) * gamma + beta``.
* ``conv1d_transpose``: keras/src/layers/convolutional/base_conv_transpose.py (TensorFlow's conv_transpose):
  every input step scattered through the kernel, then cropped / zero-padded to Keras' output length.
"""
from __future__ import annotations

import numpy as np

from .norm_checks import check_weights
from .ops import conv1d_transpose_edges
from .reference_rnn import activation


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _normalization(node, x):
    mean, var = _f64(node.weights["mean"]), _f64(node.weights["variance"])
    denominator = np.maximum(np.sqrt(var), float(node.options["epsilon"]))
    return mean + x * denominator if node.options["invert"] else (x - mean) / denominator


def _rescaling(node, x):
    return x * _f64(node.weights["scale"]) + _f64(node.weights["offset"])


def _rms_norm(node, x):
    axes = tuple(int(a) for a in node.options["axes"])
    if node.options["centered"]:
        square = (x - x.mean(axis=axes, keepdims=True)) ** 2
    else:
        square = x * x
    y = x / np.sqrt(square.mean(axis=axes, keepdims=True) + float(node.options["epsilon"]))
    return y * _f64(node.weights["scale"]) if "scale" in node.weights else y


def _group_norm(node, x):
    groups, w = int(node.options["groups"]), node.weights
    grouped = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
    axes = tuple(a for a in range(1, grouped.ndim) if a != grouped.ndim - 2)
    mean = grouped.mean(axis=axes, keepdims=True)
    var = ((grouped - mean) ** 2).mean(axis=axes, keepdims=True)
    y = ((grouped - mean) / np.sqrt(var + float(node.options["epsilon"]))).reshape(x.shape)
    return y * (_f64(w["gamma"]) if "gamma" in w else 1.0) + (_f64(w["beta"]) if "beta" in w else 0.0)


def _conv1d_transpose(node, x):
    o, w = node.options, _f64(node.weights["weight"])  # (in, filters, k)
    k, s, d = w.shape[2], int(o["strides"]), int(o["dilation_rate"])
    steps = x.shape[1]
    full = np.zeros((x.shape[0], (steps - 1) * s + (k - 1) * d + 1, w.shape[1]))
    for j in range(k):
        full[:, j * d: j * d + (steps - 1) * s + 1: s] += x @ w[:, :, j]
    before, after = conv1d_transpose_edges(o)
    y = np.pad(full[:, before: full.shape[1] + min(after, 0)], ((0, 0), (0, max(after, 0)), (0, 0)))
    if "bias" in node.weights:
        y = y + _f64(node.weights["bias"])
    return activation(node, o.get("activation"))(y)


def _checked(compute):
    """``compute`` after the node's weights are checked against ``x`` (a stranger's .gates file holds anything)."""
    def run(node, x):
        check_weights(node, tuple(x.shape[1:]))
        return compute(node, x)
    return run


#: op -> f(node, x) -> one array
OPS = {op: _checked(f) for op, f in (("normalization", _normalization), ("rescaling", _rescaling),
                                     ("rms_norm", _rms_norm), ("group_norm", _group_norm),
                                     ("conv1d_transpose", _conv1d_transpose))}
