"""``conv_lstm`` (Keras ConvLSTM1D/2D) in a generated numpy ``model.py``: the equations of
converters/reference_conv_lstm.py written out as one helper (channels last, TensorFlow's 'same' padding)."""
from __future__ import annotations

import numpy as np

from ..ir import Node

_CONV = '''
def keras_same_pads(sizes, kernel, strides, dilation):
    """TensorFlow's 'same' padding per spatial axis: (left, right), the odd step on the right."""
    pads = []
    for n, k, s, d in zip(sizes, kernel, strides, dilation):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def keras_conv(x, w, strides, dilation, pads):
    """Channels-last convolution: x (batch, *sizes, in), w (out, in, *k) -> (batch, *sizes', out)."""
    import itertools

    x = np.pad(x, ((0, 0), *pads, (0, 0)))
    kernel = w.shape[2:]
    out = [(x.shape[1 + a] - d * (k - 1) - 1) // s + 1 for a, (k, s, d) in enumerate(zip(kernel, strides, dilation))]
    y = np.zeros((x.shape[0], *out, w.shape[0]), x.dtype)
    for offs in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(j * d, j * d + (n - 1) * s + 1, s) for j, d, n, s in zip(offs, dilation, out, strides))
        y += x[(slice(None), *window, slice(None))] @ w[(slice(None), slice(None), *offs)].T
    return y
'''

_CONV_LSTM = '''
def keras_conv_lstm(x, h=None, c=None, *, kernel, recurrent_kernel, bias=None, strides, dilation, same,
                    go_backwards, return_sequences, act, ract):
    """Keras ConvLSTM1D/2D (channels last): (y, h, c); gates i, f, c, o; recurrent conv stride 1, same."""
    sizes, k = x.shape[2:-1], kernel.shape[2:]
    pads = keras_same_pads(sizes, k, strides, dilation) if same else [(0, 0)] * len(k)
    ones = [1] * len(k)
    hs = []
    for t in (range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])):
        z = keras_conv(x[:, t], kernel, strides, dilation, pads)
        if bias is not None:
            z = z + bias
        if h is None:
            h = c = np.zeros(z.shape[:-1] + (z.shape[-1] // 4,), z.dtype)
        z = z + keras_conv(h, recurrent_kernel, ones, ones, keras_same_pads(h.shape[1:-1], k, ones, ones))
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        c = ract(zf) * c + ract(zi) * act(zc)
        h = ract(zo) * act(c)
        hs.append(h)
    return (np.stack(hs, 1) if return_sequences else h), h, c
'''

#: ``keras_conv`` (with ``keras_same_pads``) is shared with Conv2D (writers/numpy_conv2d.py)
HELPERS = {"keras_conv": (_CONV, ()), "keras_conv_lstm": (_CONV_LSTM, ("keras_conv",))}
FUNCTION_NAMES = ("keras_same_pads", "keras_conv", "keras_conv_lstm")


def conv_lstm_to_numpy(w, node: Node) -> None:
    o = node.options
    arrays = {k: np.asarray(v) for k, v in node.weights.items()}
    args = [w.var(t, node) for t in node.inputs] + [
        f"strides={[int(v) for v in o['strides']]}", f"dilation={[int(v) for v in o['dilation_rate']]}",
        f"same={o.get('padding') == 'same'}", f"go_backwards={bool(o.get('go_backwards'))}",
        f"return_sequences={bool(o.get('return_sequences'))}",
        f"act=lambda v: {w.activation(o.get('activation', 'tanh'), 'v')}",
        f"ract=lambda v: {w.activation(o.get('recurrent_activation', 'sigmoid'), 'v')}",
        f"**{w.weights(node.name, arrays)}"]
    w.helpers.add("keras_conv_lstm")
    out = w.unique(f"{node.name}_out")
    w.line(f"{out} = keras_conv_lstm({', '.join(args)})")
    for k, tensor in enumerate(node.outputs):
        w.assign(tensor, f"{out}[{k}]")


EMITTERS = {"conv_lstm": conv_lstm_to_numpy}
