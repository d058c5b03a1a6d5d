"""``conv2d``, ``conv3d`` and ``pool2d`` (Keras Conv2D, Conv3D, Max/AveragePooling2D, channels last) in a
generated numpy ``model.py``: the convolution (any spatial rank) is ConvLSTM's helper ``keras_conv`` (writers/numpy_conv_lstm.py) per group,
TensorFlow's 'same' padding ``keras_same_pads``; the pooling as converters/reference_conv2d.py computes it."""
from __future__ import annotations

from ..errors import UnsupportedError
from ..ir import Node
from ..reference_conv2d import conv2d_weights
from ..sanitize import literal, quote

_CONV2D = '''
def keras_conv2d(x, kernel, bias=None, *, strides, dilation, same, groups):
    """Keras Conv2D / Conv3D, channels last: kernel (filters, in / groups, *kernel_size), groups of consecutive
    channels."""
    pads = keras_same_pads(x.shape[1:-1], kernel.shape[2:], strides, dilation) if same else [(0, 0)] * (x.ndim - 2)
    n_in, n_out = kernel.shape[1], kernel.shape[0] // groups
    y = np.concatenate([keras_conv(x[..., g * n_in:(g + 1) * n_in], kernel[g * n_out:(g + 1) * n_out], strides,
                                   dilation, pads) for g in range(groups)], axis=-1)
    return y if bias is None else y + bias
'''

_POOL2D = '''
def keras_pool2d(x, mode, pool_size, strides, same):
    """Keras Max/AveragePooling2D, channels last; 'same' pads as TensorFlow, the padding left out of max and mean."""
    import itertools

    pads = keras_same_pads(x.shape[1:3], pool_size, strides, (1, 1)) if same else [(0, 0), (0, 0)]
    xp = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-np.inf if mode == "max" else 0.0)
    ones = np.pad(np.ones((1, *x.shape[1:3], 1), x.dtype), ((0, 0), *pads, (0, 0)))
    out = [(xp.shape[1 + a] - pool_size[a]) // strides[a] + 1 for a in range(2)]

    def windows(t):
        return np.stack([t[:, a:a + (out[0] - 1) * strides[0] + 1:strides[0], b:b + (out[1] - 1) * strides[1] + 1:
                           strides[1]] for a, b in itertools.product(range(pool_size[0]), range(pool_size[1]))])

    if mode == "max":
        return windows(xp).max(axis=0)
    return windows(xp).sum(axis=0) / windows(ones).sum(axis=0)
'''

HELPERS = {"keras_conv2d": (_CONV2D, ("keras_conv",)), "keras_pool2d": (_POOL2D, ("keras_conv",))}
FUNCTION_NAMES = ("keras_conv2d", "keras_pool2d")


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _same(node: Node) -> bool:
    padding = node.options["padding"]
    if padding not in ("valid", "same"):
        raise UnsupportedError(f"expected padding valid or same, found {quote(padding)}", layer=node.label())
    return padding == "same"


def conv2d_to_numpy(w, node: Node) -> None:
    o = node.options
    weight, bias = conv2d_weights(node)
    arrays = {"kernel": weight, **({"bias": bias} if bias is not None else {})}
    args = [w.var(node.inputs[0], node), f"strides={_ints(o['strides'])}", f"dilation={_ints(o['dilation_rate'])}",
            f"same={_same(node)}", f"groups={int(o['groups'])}", f"**{w.weights(node.name, arrays)}"]
    w.helpers.add("keras_conv2d")
    w.assign(node.outputs[0], w.activation(o.get("activation"), f"keras_conv2d({', '.join(args)})"))


def pool2d_to_numpy(w, node: Node) -> None:
    o = node.options
    mode = o.get("mode")
    if mode not in ("max", "average"):
        raise UnsupportedError(f"expected mode max or average, found {quote(mode)}", layer=node.label())
    w.helpers.add("keras_pool2d")
    args = [w.var(node.inputs[0], node), literal(mode), str(_ints(o["pool_size"])), str(_ints(o["strides"])),
            str(_same(node))]
    w.assign(node.outputs[0], f"keras_pool2d({', '.join(args)})")


def zero_pad2d_to_numpy(w, node: Node) -> None:
    top, bottom, left, right = _ints(node.options["padding"])
    w.assign(node.outputs[0], f"np.pad({w.var(node.inputs[0], node)}, ((0, 0), ({top}, {bottom}), ({left}, {right}), "
                              "(0, 0)))")


EMITTERS = {"conv2d": conv2d_to_numpy, "conv3d": conv2d_to_numpy, "pool2d": pool2d_to_numpy, "zero_pad2d": zero_pad2d_to_numpy}
