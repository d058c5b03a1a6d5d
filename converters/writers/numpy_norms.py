"""The normalization and scaling ops in the generated numpy ``model.py``, written out as Keras' equations
(converters/reference_norms.py); each weight's shape is checked against the input's first
(converters/norm_checks.py)."""
from __future__ import annotations

import numpy as np

from ..ir import Node
from ..ops import conv1d_transpose_edges
from .codegen import number as _number
from ..norm_checks import check_weights, conv1d_transpose_weights, group_channels, input_shape, trailing_dims


def _float(a) -> np.ndarray:
    a = np.asarray(a)
    return a if a.dtype == np.float32 else a.astype(np.float64)


def _axes(axes) -> str:
    return "(" + "".join(f"{int(a)}, " for a in axes) + ")"


def normalization_to_numpy(w, node: Node) -> None:
    params = {k: _float(node.weights[k]) for k in ("mean", "variance")}
    check_weights(node, input_shape(w, node))
    x, p, eps = w.var(node.inputs[0], node), w.weights(node.name, params), _number(node.options["epsilon"])
    scale = f"np.maximum(np.sqrt({p}['variance']), {eps})"
    w.assign(node.outputs[0], f"{p}['mean'] + {x} * {scale}" if node.options["invert"]
             else f"({x} - {p}['mean']) / {scale}")


def rescaling_to_numpy(w, node: Node) -> None:
    params = {k: _float(node.weights[k]) for k in ("scale", "offset")}
    check_weights(node, input_shape(w, node))
    x, p = w.var(node.inputs[0], node), w.weights(node.name, params)
    w.assign(node.outputs[0], f"{x} * {p}['scale'] + {p}['offset']")


def rms_norm_to_numpy(w, node: Node) -> None:
    axes = [int(a) for a in node.options["axes"]]
    params = {"scale": _float(node.weights["scale"])} if "scale" in node.weights else {}
    trailing_dims(node, input_shape(w, node), axes, params)
    x, a, eps = w.var(node.inputs[0], node), _axes(axes), _number(node.options["epsilon"])
    squares = f"({x} - {x}.mean(axis={a}, keepdims=True)) ** 2" if node.options["centered"] else f"{x} * {x}"
    expr = f"{x} / np.sqrt(({squares}).mean(axis={a}, keepdims=True) + {eps})"
    w.assign(node.outputs[0], f"{expr} * {w.weights(node.name, params)}['scale']" if params else expr)


def group_norm_to_numpy(w, node: Node) -> None:
    """The channels reshaped to (groups, channels / groups), moments over every axis but batch and group."""
    shape = input_shape(w, node)
    n, groups = group_channels(node, shape), int(node.options["groups"])
    x = w.var(node.inputs[0], node)
    g, mean, var = (w.unique(f"{node.name}_{part}") for part in ("groups", "mean", "var"))
    axes = _axes([*range(1, len(shape)), len(shape) + 1])
    w.line(f"{g} = {x}.reshape({x}.shape[:-1] + ({groups}, {n // groups}))")
    w.line(f"{mean} = {g}.mean(axis={axes}, keepdims=True)")
    w.line(f"{var} = (({g} - {mean}) ** 2).mean(axis={axes}, keepdims=True)")
    expr = f"(({g} - {mean}) / np.sqrt({var} + {_number(node.options['epsilon'])})).reshape({x}.shape)"
    params = {k: _float(node.weights[k]) for k in ("gamma", "beta") if k in node.weights}
    p = w.weights(node.name, params) if params else None
    expr += f" * {p}['gamma']" if "gamma" in params else ""
    expr += f" + {p}['beta']" if "beta" in params else ""
    w.assign(node.outputs[0], expr)


EMITTERS = {"normalization": normalization_to_numpy, "rescaling": rescaling_to_numpy, "rms_norm": rms_norm_to_numpy,
            "group_norm": group_norm_to_numpy}


def conv1d_transpose_to_numpy(w, node: Node) -> None:
    """Each input step scattered through the kernel (the input spread ``strides`` apart, one shifted product per
    tap), TensorFlow's crop / zero steps (ops.conv1d_transpose_edges), the bias, the activation."""
    weight, bias, k, s, d = conv1d_transpose_weights(node, input_shape(w, node))
    params = {"weight": _float(weight), **({"bias": _float(bias)} if bias is not None else {})}
    p, x = w.weights(node.name, params), w.var(node.inputs[0], node)
    spread, full = w.unique(f"{node.name}_spread"), w.unique(f"{node.name}_full")
    w.line(f"{spread} = np.zeros(({x}.shape[0], ({x}.shape[1] - 1) * {s} + 1, {x}.shape[2]))")
    w.line(f"{spread}[:, ::{s}] = {x}")
    w.line(f"{full} = sum(np.pad({spread} @ {p}['weight'][:, :, j], ((0, 0), (j * {d}, ({k - 1} - j) * {d}), "
           f"(0, 0))) for j in range({k}))")
    before, after = conv1d_transpose_edges(node.options)
    expr = f"np.pad({full}[:, {before}:{full}.shape[1] + {min(after, 0)}], ((0, 0), (0, {max(after, 0)}), (0, 0)))"
    if bias is not None:
        expr += f" + {p}['bias']"
    w.assign(node.outputs[0], w.activation(node.options.get("activation"), expr))


EMITTERS["conv1d_transpose"] = conv1d_transpose_to_numpy
