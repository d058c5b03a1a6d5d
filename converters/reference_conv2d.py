"""The numpy forward pass of ``conv2d``, ``conv3d``, ``pool2d``, ``zero_pad2d`` (Keras Conv2D, Conv3D,
Max/AveragePooling2D, ZeroPadding2D; rows in converters/ops.py), channels last, float64.

* ``conv2d`` / ``conv3d`` (one function, the rank from the kernel): keras/src/layers/convolutional/base_conv.py
  (tf-keras: tf_keras/src/layers/convolutional/base_conv.py, TensorFlow's conv2d / conv3d):
  ``y[i, j] = sum x[i*s + a*d, j*s + b*d] @ kernel[a, b] + bias`` (a third axis alike) per
  group of consecutive channels and filters; the convolution itself is ConvLSTM's
  (reference_conv_lstm.conv), 'same' TensorFlow's padding (reference_conv_lstm.same_padding: the odd
  row/column at the end).
* ``pool2d``: keras/src/layers/pooling/base_pooling.py (TensorFlow's max_pool2d / avg_pool2d): windows of
  ``pool_size`` every ``strides``; with 'same' the padding takes no part in the max nor in the mean's count.
* ``zero_pad2d``: keras/src/layers/reshaping/zero_padding2d.py: zero rows (top, bottom) and columns (left, right).
"""
from __future__ import annotations

import itertools

import numpy as np

from .errors import UnsupportedError
from .ir import Node
from .reference_conv_lstm import conv, same_padding
from .reference_rnn import activation


def _pads(node: Node, sizes, kernel, strides, dilation) -> list[tuple[int, int]]:
    padding = node.options["padding"]
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding != "same":
        raise UnsupportedError(f"expected padding valid|same, found {padding!r}", layer=node.label())
    return [same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation)]


def conv2d_weights(node: Node) -> tuple[np.ndarray, np.ndarray | None]:
    """``(weight (filters, in / groups, *kernel_size), bias or None)``, checked against the options (a stranger's
    .gates file may hold any): shared by the reference and every writer."""
    o, weight, bias = node.options, np.asarray(node.weights["weight"]), node.weights.get("bias")
    filters, groups, kernel = int(o["filters"]), int(o["groups"]), tuple(int(k) for k in o["kernel_size"])
    if weight.ndim != 2 + len(kernel) or weight.shape[0] != filters or weight.shape[2:] != kernel or filters % groups \
            or bias is not None and np.shape(bias) != (filters,):
        raise UnsupportedError(f"expected weight ({filters}, in / groups {groups}, {', '.join(map(str, kernel))}) with "
                               f"filters a multiple of groups, and bias ({filters},), found {weight.shape} and "
                               f"{None if bias is None else np.shape(bias)}", layer=node.label())
    return weight, None if bias is None else np.asarray(bias)


def _conv2d(node: Node, x: np.ndarray) -> np.ndarray:
    o = node.options
    weight, bias = conv2d_weights(node)
    w = np.asarray(weight, np.float64)  # (filters, in / groups, *kernel_size)
    if x.shape[-1] != w.shape[1] * int(o["groups"]):
        raise UnsupportedError(f"expected {w.shape[1] * int(o['groups'])} input channels, found {x.shape[-1]}",
                               layer=node.label())
    strides, dilation, groups = list(o["strides"]), list(o["dilation_rate"]), int(o["groups"])
    if x.ndim != w.ndim:
        raise UnsupportedError(f"expected an input of rank {w.ndim} (batch, {w.ndim - 2} spatial axes, channels), "
                               f"found {x.ndim}", layer=node.label())
    pads = _pads(node, x.shape[1:-1], w.shape[2:], strides, dilation)
    n_in, n_out = w.shape[1], w.shape[0] // groups  # channels and filters of one group
    y = np.concatenate([conv(x[..., g * n_in:(g + 1) * n_in], w[g * n_out:(g + 1) * n_out], strides, dilation, pads)
                        for g in range(groups)], axis=-1)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return activation(node, o.get("activation"))(y)


def _pool2d(node: Node, x: np.ndarray) -> np.ndarray:
    o = node.options
    k, s = list(o["pool_size"]), list(o["strides"])
    pads = _pads(node, x.shape[1:3], k, s, (1, 1))
    fill = -np.inf if o["mode"] == "max" else 0.0
    xp = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=fill)
    ones = np.pad(np.ones((1, *x.shape[1:3], 1)), ((0, 0), *pads, (0, 0)))  # 0 where padded
    out = [(xp.shape[1 + a] - k[a]) // s[a] + 1 for a in range(2)]
    if min(out) < 1:
        raise UnsupportedError(f"expected at least pool_size {tuple(k)} rows and columns, found {x.shape[1:3]}",
                               layer=node.label())

    def windows(t: np.ndarray) -> np.ndarray:
        return np.stack([t[:, a: a + (out[0] - 1) * s[0] + 1: s[0], b: b + (out[1] - 1) * s[1] + 1: s[1]]
                         for a, b in itertools.product(range(k[0]), range(k[1]))])

    if o["mode"] == "max":
        return windows(xp).max(axis=0)
    return windows(xp).sum(axis=0) / windows(ones).sum(axis=0)

def _zero_pad2d(node: Node, x: np.ndarray) -> np.ndarray:
    top, bottom, left, right = (int(v) for v in node.options["padding"])
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


#: op -> f(node, x) -> one array
OPS = {"conv2d": _conv2d, "conv3d": _conv2d, "pool2d": _pool2d, "zero_pad2d": _zero_pad2d}
