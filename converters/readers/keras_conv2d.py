"""Keras Conv2D, Conv3D, Max/AveragePooling2D, ZeroPadding2D and GlobalMax/AveragePooling2D, channels last, as IR
``conv2d``, ``conv3d``, ``pool2d``, ``zero_pad2d`` and ``reduce`` nodes: the image layers tutorial models put before
their recurrent layers (the keras.io captcha OCR and CTC ASR models, CNN-LSTM video classifiers through
TimeDistributed) or after them (Conv3D over the frames of the keras.io ConvLSTM next-frame prediction model).

Configs as keras/src/layers/convolutional/base_conv.py and keras/src/layers/pooling/base_pooling.py write
them (tf-keras: tf_keras/src/layers/convolutional/conv2d.py, conv3d.py, pooling/base_pooling2d.py): ``kernel_size``,
``strides``, ``dilation_rate``, ``pool_size`` are pairs (triples for Conv3D; an int in a hand-written config:
every axis); ``padding`` valid|same; the kernel is stored ``(*kernel_size, in / groups, filters)``. None of these layers
supports masking (the mask stops). channels_first is refused in one line.
"""
from __future__ import annotations

import numpy as np

from ..ops import window_sizes
from ..sanitize import quote
from .keras_context import LayerCall, Tensor


def _channels_last(call: LayerCall) -> None:
    fmt = call.config.get("data_format") or "channels_last"
    if fmt != "channels_last":
        raise call.unsupported(f"{call.class_name} data_format {quote(fmt)} is not supported (only channels_last: "
                               "images (batch, height, width, channels))")


def _pair(call: LayerCall, key: str, default: object, rank: int = 2) -> list[int]:
    """A (height, width) option (``rank`` 3: (depth, height, width)): an int for every axis or a list of ``rank``."""
    value = call.config.get(key, default)
    if value is None:
        value = default
    values = list(value) if isinstance(value, (list, tuple)) else [value] * rank
    if len(values) != rank:
        raise call.error(f"{key}: expected an integer or {rank} integers, found {quote(value)}")
    return [call.size(key, v) for v in values]


def _padding(call: LayerCall) -> str:
    padding = str(call.config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise call.unsupported(f"{call.class_name} padding {quote(padding)} is not supported (valid or same)")
    return padding


def _image(call: LayerCall, channels: int | None = None, rank: int = 2) -> Tensor:
    """The layer's input, ``(batch, height, width, channels)`` (``rank`` 3: ``(batch, depth, height, width,
    channels)``)."""
    x = call.single_input()
    call.expect_rank(x, rank + 1, channels)
    return x


def _out_shape(call: LayerCall, x: Tensor, kernel, strides, dilation, padding: str, channels, what: str) -> tuple:
    given = tuple(x.shape[:len(kernel)]) if x.shape else (None,) * len(kernel)
    sizes = window_sizes(given, kernel, strides, dilation, padding)
    if any(n is not None and n < 1 for n in sizes):
        raise call.error(f"{what} {tuple(kernel)} is larger than the input {given}")
    call.take(int(np.prod([n if n is not None else 1 for n in sizes])) * (channels or 1), f"{call.class_name} output")
    return (*sizes, channels)


def conv2d(call: LayerCall) -> list[Tensor]:
    """Conv2D / Conv3D(filters, kernel_size, strides, padding valid/same, dilation_rate, groups, activation,
    use_bias): kernel ``(*kernel_size, in / groups, filters)`` stored as nn.Conv2d's / nn.Conv3d's
    ``(filters, in / groups, *kernel_size)``."""
    cfg = call.config
    _channels_last(call)
    rank = 3 if "3D" in call.class_name else 2
    kernel_size, strides = _pair(call, "kernel_size", None, rank), _pair(call, "strides", 1, rank)
    dilation, padding = _pair(call, "dilation_rate", 1, rank), _padding(call)
    groups, filters = call.size("groups", cfg.get("groups", 1)), call.size("filters", cfg.get("filters"))
    if filters % groups:
        raise call.error(f"filters {filters} is not a multiple of groups {groups}")
    use_bias = call.flag("use_bias", True)
    ws = call.expect_weights(2 if use_bias else 1, " (kernel, bias)" if use_bias else " (kernel)")
    kernel = ws[0].array
    call.check_shape("kernel", kernel, (*kernel_size, None, filters))
    n_in = int(kernel.shape[rank]) * groups
    x = _image(call, n_in, rank)
    if x.shape and x.shape[-1] != n_in:
        raise call.error(f"kernel has shape {tuple(kernel.shape)}, expected ({', '.join(map(str, kernel_size))}, "
                         f"{x.shape[-1]} / groups {groups}, {filters}) from the input")
    if use_bias:
        call.check_shape("bias", ws[1].array, (filters,))
    options = {"filters": filters, "kernel_size": kernel_size, "strides": strides, "dilation_rate": dilation,
               "groups": groups, "padding": padding, "activation": call.activation(cfg.get("activation", "linear")),
               "use_bias": use_bias}
    shape = _out_shape(call, x, kernel_size, strides, dilation, padding, filters, "kernel_size")
    arrays = {"weight": np.ascontiguousarray(kernel.transpose(rank + 1, rank, *range(rank))),
              **({"bias": ws[1].array} if use_bias else {})}
    call.add(f"conv{rank}d", [x.name], [call.out()], options, arrays,
             weight_paths={role: w.path for role, w in zip(("weight", "bias"), ws)})
    return [Tensor(call.out(), shape)]


def pooling2d(call: LayerCall) -> list[Tensor]:
    """Max/AveragePooling2D(pool_size, strides (None: pool_size), padding valid/same)."""
    _channels_last(call)
    pool_size = _pair(call, "pool_size", 2)
    strides = _pair(call, "strides", pool_size) if call.config.get("strides") is not None else list(pool_size)
    padding = _padding(call)
    x = _image(call)
    channels = x.shape[-1] if x.shape else None
    shape = _out_shape(call, x, pool_size, strides, (1, 1), padding, channels, "pool_size")
    mode = "average" if "Average" in call.class_name or "Avg" in call.class_name else "max"
    call.add("pool2d", [x.name], [call.out()], {"mode": mode, "pool_size": pool_size, "strides": strides,
                                                  "padding": padding})
    return [Tensor(call.out(), shape)]


def global_pooling2d(call: LayerCall, axes: tuple[int, int] = (1, 2)) -> list[Tensor]:
    """GlobalMax/AveragePooling2D: the max or mean over height and width (Keras axes ``axes``; TimeDistributed
    of one reduces axes 2 and 3 of the unfolded sequence), ``keepdims``."""
    _channels_last(call)
    x = call.single_input()
    call.expect_rank(x, axes[1] + 1)
    keepdims = call.flag("keepdims", False)
    mode = "mean" if "Average" in call.class_name or "Avg" in call.class_name else "max"
    call.add("reduce", [x.name], [call.out()], {"mode": mode, "axes": list(axes), "keepdims": keepdims})
    shape = None
    if x.shape:
        shape = tuple(1 if i + 1 in axes else d for i, d in enumerate(x.shape)) if keepdims else \
            tuple(d for i, d in enumerate(x.shape) if i + 1 not in axes)
    return [Tensor(call.out(), shape)]


def zero_padding2d(call: LayerCall) -> list[Tensor]:
    """ZeroPadding2D(padding): an int (every side), (rows, columns) or ((top, bottom), (left, right))."""
    _channels_last(call)
    value = call.config.get("padding", 1)
    with call.parsing("padding"):
        pairs = [[value] * 2] * 2 if not isinstance(value, (list, tuple)) else \
            [list(p) if isinstance(p, (list, tuple)) else [p, p] for p in value]
    if len(pairs) != 2 or any(len(p) != 2 for p in pairs):
        raise call.error(f"padding: expected an integer, 2 integers or 2 pairs, found {quote(value)}")
    padding = [call.size("padding", v, minimum=0) for p in pairs for v in p]
    x = _image(call)
    sizes = tuple(None if n is None else n + a + b for n, a, b in
                  zip(x.shape[:2] if x.shape else (None, None), padding[::2], padding[1::2]))
    channels = x.shape[-1] if x.shape else None
    call.take((sizes[0] or 1) * (sizes[1] or 1) * (channels or 1), "ZeroPadding2D output")
    call.add("zero_pad2d", [x.name], [call.out()], {"padding": padding})
    return [Tensor(call.out(), (*sizes, channels))]


def time_distributed_global_pooling2d(call: LayerCall) -> list[Tensor]:
    """TimeDistributed(GlobalMax/AveragePooling2D) on ``(batch, time, height, width, channels)``: the reduce over
    axes 2 and 3, no folding needed."""
    return global_pooling2d(call, (2, 3))


HANDLERS = {
    **dict.fromkeys(("Conv2D", "Convolution2D", "Conv3D", "Convolution3D"), conv2d),
    **dict.fromkeys(("MaxPooling2D", "AveragePooling2D", "MaxPool2D", "AvgPool2D"), pooling2d),
    "ZeroPadding2D": zero_padding2d,
    **dict.fromkeys(("GlobalMaxPooling2D", "GlobalAveragePooling2D", "GlobalMaxPool2D", "GlobalAvgPool2D"),
                    global_pooling2d),
}
