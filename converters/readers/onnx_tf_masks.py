"""Keras masks as TensorFlow lowers them and tf2onnx writes them, -> the mask ops gateport's reader reads.

* ``float_count``: ``Greater(ReduceSum(Cast(b, float), axes), 0)`` (tf.reduce_any of Keras' Masking, as
  tf2onnx writes it) -> the same over ``Cast(b, int64)`` on the last axis (the count of true values is
  exact in both: at most 2^24 per row is checked from the static size when it is known);
* ``select_lowered``: ``Add(Mul(Cast(c, float), a), Mul(Cast(Not(c), float), b))`` (tf2onnx's SelectV2)
  -> ``Where(c, a, b)``; equal for finite ``a``, ``b`` (a product by 0 of an infinity is NaN, which the
  select never gave);
* ``masking_product``: ``Mul(x, Cast(keep, float))`` with ``keep`` a per-step mask of Keras' Masking
  (tf-keras' ``inputs * cast(mask)``) -> ``Where(keep, x, 0)``, equal for finite ``x``.
"""
from __future__ import annotations

import numpy as np

from .onnx_rewrite import Rewrite, fresh, op_of as _op, through_cast
from .onnx_value_graph import ValueGraph

_FLOAT = 1
_EXACT_COUNT = 1 << 24


def _const_zero(vg: ValueGraph, name: str) -> bool:
    v = vg.const(name)
    return v is not None and v.size == 1 and not np.any(v)


def float_count(vg: ValueGraph, node):
    """Greater(ReduceSum(Cast(bool, float), last axis), 0) -> the same counted in int64."""
    total = _op(vg, node.input[0], "ReduceSum")
    cast = _op(vg, total.input[0], "Cast") if total is not None else None
    if cast is None or vg.attr(cast, "to", 0) != _FLOAT or not _const_zero(vg, node.input[1]):
        return None
    dims, axes = vg.dims(cast.input[0]), vg.axes(total)
    if dims is None or axes is None or [a % len(dims) for a in axes] != [len(dims) - 1] \
            or not isinstance(dims[-1], int) or dims[-1] >= _EXACT_COUNT:
        return "expected a count over the last axis, of a static size below 2^24"
    if vg.only_consumer(total.output[0]) is not node:
        return "expected the count used only by this Greater"
    h, base = vg.onnx.helper, fresh(vg, f"{node.output[0]}/int_count")
    names = [f"{base}/{k}" for k in ("cast", "axes", "sum", "zero")]
    inits = [vg.onnx.numpy_helper.from_array(np.array([-1], np.int64), names[1]),
             vg.onnx.numpy_helper.from_array(np.array(0, np.int64), names[3])]
    adds = [h.make_node("Cast", [cast.input[0]], [names[0]], to=7, name=names[0]),
            h.make_node("ReduceSum", [names[0], names[1]], [names[2]], name=names[2],
                        keepdims=int(vg.attr(total, "keepdims", 1))),
            h.make_node("Greater", [names[2], names[3]], list(node.output), name=node.name)]
    return Rewrite("float_count", [total, node], adds, inits)


def _cast_of(vg: ValueGraph, name: str):
    """``c`` when ``name`` is ``Cast(c, float)``."""
    cast = _op(vg, name, "Cast")
    return cast.input[0] if cast is not None and vg.attr(cast, "to", 0) == _FLOAT else None


def _selected(vg: ValueGraph, mul):
    """``(c, value)`` for ``Mul(Cast(c, float), value)`` in either order."""
    for a, b in (mul.input, mul.input[::-1]):
        c = _cast_of(vg, a)
        if c is not None:
            return c, b
    return None


def select_lowered(vg: ValueGraph, node):
    """Add(Mul(Cast(c), a), Mul(Cast(Not(c)), b)) -> Where(c, a, b)."""
    muls = [_op(vg, i, "Mul") for i in node.input]
    if len(muls) != 2 or None in muls:
        return None
    picks = [_selected(vg, m) for m in muls]
    if None in picks:
        return None
    for (c, a), (nc, b) in (picks, picks[::-1]):
        negated = _op(vg, nc, "Not")
        if negated is not None and negated.input[0] == c:
            where = vg.onnx.helper.make_node("Where", [c, a, b], list(node.output), name=node.name)
            return Rewrite("select_lowered", [node], [where])
    return "expected Cast(c) and Cast(Not(c)) picking between two values (tf2onnx's SelectV2)"


def masking_product(vg: ValueGraph, node):
    """Mul(x, Cast(keep, float)) with ``keep = Greater(count of x != v over the last axis, keepdims)`` of
    the same ``x`` -> Where(keep, x, 0)."""
    picked = _selected(vg, node)
    keep = _op(vg, picked[0], "Greater") if picked is not None else None
    total = _op(vg, keep.input[0], "ReduceSum") if keep is not None else None
    if total is None or not int(vg.attr(total, "keepdims", 1)):
        return None
    source = _op(vg, through_cast(vg, total.input[0]), "Not")
    equal = _op(vg, source.input[0], "Equal") if source is not None else None
    if equal is None or equal.input[0] != picked[1]:
        return "expected the mask computed from the same tensor it keeps (Keras' Masking)"
    h, zero = vg.onnx.helper, fresh(vg, f"{node.output[0]}/zero")
    return Rewrite("masking_product", [node],
                   [h.make_node("Where", [picked[0], picked[1], zero], list(node.output), name=node.name)],
                   [vg.onnx.numpy_helper.from_array(np.array(0, np.float32), zero)])
