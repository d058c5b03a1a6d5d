"""Numpy forward pass of ``conv_lstm`` (Keras ConvLSTM1D / ConvLSTM2D, channels last), from the equations.

keras/src/layers/rnn/conv_lstm.py ``ConvLSTMCell.call`` (tf_keras/src/layers/rnn/base_conv_lstm.py
computes the same): with ``*`` a convolution and gates in Keras' order i, f, c, o::

    z = conv(x_t, kernel; strides, padding, dilation_rate) + bias + conv(h, recurrent_kernel; 1, same)
    i, f, o = recurrent_activation(z_i, z_f, z_o);  c = f * c + i * activation(z_c);  h = o * activation(c)

The recurrent convolution always has stride 1, no dilation and 'same' padding. The time loop is
Keras' ``backend.rnn`` without a mask (reference_rnn.scan): ``go_backwards`` reverses the input and
the sequence output stays in processing order.

IR weights (PyTorch's ``(out, in, *kernel)`` orientation, gates stacked i, f, c, o on axis 0):
``kernel (4 filters, channels, *k)``, ``recurrent_kernel (4 filters, filters, *k)``, ``bias (4 filters)``.
"""
from __future__ import annotations

import itertools

import numpy as np

from .errors import UnsupportedError
from .ir import Node
from .ops import conv_lstm_sizes
from .reference_rnn import activation, scan


def same_padding(length: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one axis (Keras 3 reproduces it on every backend): [left, right],
    the odd step on the right."""
    span = dilation * (kernel - 1) + 1
    total = max((-(-length // stride) - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def pads(node: Node, sizes: tuple[int, ...], kernel: tuple[int, ...], recurrent: bool = False) -> list[tuple[int, int]]:
    """[(left, right)] per spatial axis of the input (or, ``recurrent``, the state) convolution."""
    o = node.options
    if recurrent:
        return [same_padding(n, k, 1, 1) for n, k in zip(sizes, kernel)]
    if o["padding"] == "valid":
        return [(0, 0)] * len(sizes)
    if o["padding"] != "same":
        raise UnsupportedError(f"expected conv_lstm padding valid|same, found {o['padding']!r}", layer=node.label())
    return [same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, o["strides"], o["dilation_rate"])]


def conv(x: np.ndarray, w: np.ndarray, strides, dilation, padding: list[tuple[int, int]]) -> np.ndarray:
    """A channels-last convolution: ``x (batch, *sizes, in)``, ``w (out, in, *k)`` -> ``(batch, *sizes', out)``."""
    x = np.pad(x, ((0, 0), *padding, (0, 0)))
    kernel = w.shape[2:]
    out = [(x.shape[1 + a] - dilation[a] * (k - 1) - 1) // strides[a] + 1 for a, k in enumerate(kernel)]
    y = np.zeros((x.shape[0], *out, w.shape[0]))
    for offsets in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(j * d, j * d + (n - 1) * s + 1, s)
                       for j, d, n, s in zip(offsets, dilation, out, strides))
        y += x[(slice(None), *window, slice(None))] @ w[(slice(None), slice(None), *offsets)].T
    return y


def run_conv_lstm(node: Node, x: np.ndarray, *initial: np.ndarray) -> list[np.ndarray]:
    """The node's outputs ``[y]`` or ``[y, h, c]`` for ``x (batch, time, *sizes, channels)``."""
    o = node.options
    w = {k: np.asarray(node.weights[k], np.float64) for k in ("kernel", "recurrent_kernel")}
    bias = np.asarray(node.weights.get("bias", np.zeros(w["kernel"].shape[0])), np.float64)
    act, ract = activation(node, o["activation"]), activation(node, o["recurrent_activation"])
    kernel = tuple(w["kernel"].shape[2:])
    x = np.asarray(x, np.float64)
    in_pads = pads(node, x.shape[2:-1], kernel)
    sizes = conv_lstm_sizes(o, x.shape[2:-1])
    rec_pads = pads(node, sizes, kernel, recurrent=True)
    ones = (1,) * len(kernel)

    def step(x_t, h, c):
        z = conv(x_t, w["kernel"], o["strides"], o["dilation_rate"], in_pads) + bias
        z = z + conv(h, w["recurrent_kernel"], ones, ones, rec_pads)
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        c = ract(zf) * c + ract(zi) * act(zc)
        h = ract(zo) * act(c)
        return h, (h, c)

    if initial:
        states = tuple(np.asarray(s, np.float64) for s in initial)
    else:
        states = (np.zeros((x.shape[0], *sizes, o["filters"])),) * 2
    outputs, (h, c) = scan(step, x, states, None, bool(o.get("go_backwards")), False)
    y = outputs if o.get("return_sequences") else outputs[:, -1]
    return [y, h, c] if o.get("return_state") else [y]
