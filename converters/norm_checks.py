"""Checks of the normalization, scaling and transposed-convolution ops' weights against their input, shared by
the torch, numpy and ONNX writers: the IR may come from a stranger's ``.gates`` file, so each weight's shape is
checked before anything is written, and a mismatch is refused in one line naming the node."""
from __future__ import annotations

import numpy as np

from .errors import UnsupportedError
from .ir import Node


def input_shape(w, node: Node) -> tuple:
    """The input's shape without batch, known in rank (converters/shapes.py), or a one-line refusal."""
    shape = w.shapes.get(node.inputs[0])
    if shape is None:
        raise UnsupportedError(f"expected a known input rank for {node.op}, found none", layer=node.label())
    return tuple(shape)


def check_broadcast(node: Node, shape: tuple, arrays: dict, *, same_rank: bool = False) -> None:
    """Each array broadcasts against one sample of ``shape`` from the right without changing it (size 1 or the
    input's; ``same_rank``: exactly the sample's rank), else a one-line refusal naming it."""
    for key, a in arrays.items():
        dims = np.shape(a)
        bad = len(dims) > len(shape) or (same_rank and len(dims) != len(shape)) or any(
            d != 1 and d != s for d, s in zip(dims[::-1], shape[::-1]))
        if bad:
            raise UnsupportedError(f"expected {key} to broadcast against the input's (batch, "
                                   f"{', '.join(map(str, shape))}), found shape {dims}", layer=node.label())


def trailing_dims(node: Node, shape: tuple, axes: list[int], arrays: dict) -> tuple[int, ...]:
    """The input's sizes on ``axes`` (the trailing ones, known); each array must have exactly them."""
    if axes != list(range(-len(axes), 0)) or len(axes) > len(shape) or any(shape[a] is None for a in axes):
        raise UnsupportedError(f"expected known trailing axes, found axes {axes} of shape {shape}", layer=node.label())
    dims = tuple(int(shape[a]) for a in axes)
    for key, a in arrays.items():
        if np.shape(a) != dims:
            raise UnsupportedError(f"expected {key} of shape {dims}, found {np.shape(a)}", layer=node.label())
    return dims


def group_channels(node: Node, shape: tuple) -> int:
    """The channels (last axis) of a group_norm's input: known, a multiple of groups; gamma/beta (channels,)."""
    channels, groups = (shape[-1] if shape else None), int(node.options["groups"])
    if channels is None or channels % groups:
        raise UnsupportedError(f"expected a known number of channels that groups {groups} divides, found shape "
                               f"{shape}", layer=node.label())
    for key in ("gamma", "beta"):
        if key in node.weights and np.shape(node.weights[key]) != (channels,):
            raise UnsupportedError(f"expected {key} of shape ({channels},), found {np.shape(node.weights[key])}",
                                   layer=node.label())
    return int(channels)


def conv1d_transpose_weights(node: Node, shape: tuple) -> tuple[np.ndarray, np.ndarray | None, int, int, int]:
    """``(weight (in, filters, k), bias or None, k, strides, dilation)``, the weight's shape and output_padding
    checked against the options (a stranger's .gates file may hold any) and the input of ``shape`` (without
    batch): (time, in). The writers call it once, for the checks and the arrays together."""
    o, weight, bias = node.options, np.asarray(node.weights["weight"]), node.weights.get("bias")
    filters, k = int(o["filters"]), int(o["kernel_size"])
    if o.get("output_padding") is not None and int(o["output_padding"]) >= int(o["strides"]):
        raise UnsupportedError(f"expected output_padding less than strides {int(o['strides'])} (as Keras), found "
                               f"{int(o['output_padding'])}", layer=node.label())
    if weight.ndim != 3 or weight.shape[1:] != (filters, k) or bias is not None and np.shape(bias) != (filters,):
        raise UnsupportedError(f"expected weight (in, {filters}, {k}) and bias ({filters},), found "
                               f"{weight.shape} and {None if bias is None else np.shape(bias)}", layer=node.label())
    if len(shape) != 2 or shape[-1] not in (None, weight.shape[0]):
        raise UnsupportedError(f"expected an input (batch, time, {weight.shape[0]}), found shape {shape}",
                               layer=node.label())
    return weight, None if bias is None else np.asarray(bias), k, int(o["strides"]), int(o["dilation_rate"])


def check_weights(node: Node, shape: tuple) -> None:
    """Every check of ``node``'s weights against an input of ``shape`` (without batch; the reference passes the
    array's own), or a one-line refusal naming the node."""
    w = node.weights
    if node.op == "normalization":
        check_broadcast(node, shape, {k: w[k] for k in ("mean", "variance")}, same_rank=True)
        if np.shape(w["mean"]) != np.shape(w["variance"]):
            raise UnsupportedError("expected mean and variance of one shape", layer=node.label())
    elif node.op == "rescaling":
        check_broadcast(node, shape, {k: w[k] for k in ("scale", "offset")})
    elif node.op == "rms_norm":
        trailing_dims(node, shape, [int(a) for a in node.options["axes"]], {k: w[k] for k in ("scale",) if k in w})
    elif node.op == "group_norm":
        group_channels(node, shape)
    elif node.op == "conv1d_transpose":
        conv1d_transpose_weights(node, shape)


def check_model(model, shapes: dict) -> None:
    """:func:`check_weights` for every node of these ops whose input shape ``shapes`` knows (the Keras writer)."""
    for node in model.nodes:
        shape = shapes.get(node.inputs[0]) if node.op in CHECKED_OPS else None
        if shape is not None:
            check_weights(node, tuple(shape))


#: the ops :func:`check_weights` checks
CHECKED_OPS = ("normalization", "rescaling", "rms_norm", "group_norm", "conv1d_transpose")
