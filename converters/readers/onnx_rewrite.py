"""What an ONNX pattern rewrite is, and the helpers both the patterns (onnx_patterns.py) and the Loop
recognition (onnx_loops.py) build rewrites with."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .onnx_value_graph import ValueGraph, where

#: ops through which a tensor of zeros stays zeros
_KEEPS_ZEROS = ("Unsqueeze", "Squeeze", "Reshape", "Transpose", "Identity", "Cast", "Tile", "Slice", "Expand",
                "Gather")


@dataclass
class Rewrite:
    """Replace ``remove`` by ``add`` (in order, where the last removed node was)."""

    pattern: str
    remove: list
    add: list
    initializers: list = field(default_factory=list)


def zeros(vg: ValueGraph, name: str, depth: int = 0) -> bool:
    """Whether tensor ``name`` is all zeros whatever the input (constants and zero-preserving ops)."""
    if depth > 32 or not name:
        return False
    node = vg.producer.get(name)
    if node is None or node.op_type == "Constant":
        value = vg.const(name)
        return value is not None and value.size > 0 and not np.any(value)
    if node.op_type == "ConstantOfShape":
        value = vg.attr(node, "value")
        return value is None or not np.any(vg.tensors.array(value, where(node)))
    if node.op_type == "Concat":
        return all(zeros(vg, i, depth + 1) for i in node.input)
    return node.op_type in _KEEPS_ZEROS and zeros(vg, node.input[0], depth + 1)


def fresh(vg: ValueGraph, hint: str) -> str:
    """A tensor name not used in ``vg`` (``hint``, or ``hint_k``), reserved."""
    name, k = hint, 1
    while name in vg.producer or name in vg.initializers or name in vg.consumers:
        name, k = f"{hint}_{k}", k + 1
    vg.producer[name] = None  # reserved
    return name


def op_of(vg: ValueGraph, name: str, op: str):
    """The node computing ``name`` when it is an ``op``, else None."""
    node = vg.producer.get(name)
    return node if node is not None and node.op_type == op else None


def step_of(vg: ValueGraph, name: str):
    """``(sequence, t, [nodes])`` when ``name`` is ``Squeeze(Slice(sequence, t:t+1, axis 0), 0)``."""
    squeeze = vg.producer.get(name)
    if squeeze is None or squeeze.op_type != "Squeeze" or vg.axes(squeeze) != [0]:
        return None
    sl = vg.producer.get(squeeze.input[0])
    if sl is None or sl.op_type != "Slice" or vg.only_consumer(sl.output[0]) is not squeeze:
        return None
    starts, ends, axes, steps = vg.slice_args(sl)
    if starts is None or ends is None or axes != [0] or steps != [1] or len(starts) != 1 or ends[0] != starts[0] + 1:
        return None
    return sl.input[0], starts[0], [sl, squeeze]


def through_cast(vg: ValueGraph, name: str) -> str:
    """``x`` when ``name`` is ``Cast(x)``, else ``name``."""
    cast = op_of(vg, name, "Cast")
    return cast.input[0] if cast is not None else name


#: the end a Slice of step -1 gives to reach index 0 (what full_reverse_sequence writes)
FLIP_END = np.iinfo(np.int64).min


def full_reverse(vg: ValueGraph, node) -> str | None:
    """Why ``ReverseSequence`` ``node`` does not reverse every sequence over its whole time axis (its
    lengths ``Expand`` of the time size), or None when it does (TensorFlow's ``ReverseV2``)."""
    time_axis, batch_axis = int(vg.attr(node, "time_axis", 0)), int(vg.attr(node, "batch_axis", 1))
    dims, lengths = vg.dims(node.input[0]), vg.producer.get(node.input[1])
    if dims is None or len(dims) != 3 or {time_axis, batch_axis} != {0, 1}:
        return "expected a time-major or batch-first sequence"
    size = vg.shape_value(lengths.input[0]) if lengths is not None and lengths.op_type == "Expand" else None
    if size != [dims[time_axis]]:
        return "expected every sequence reversed over its whole length (lengths = the time size)"
    return None


def time_flip_source(vg: ValueGraph, name: str) -> str | None:
    """``x`` when ``name`` is the time-major ``x`` reversed in time: ``ReverseSequence`` of whole lengths
    (time axis 0), ``Slice`` of step -1 over all of axis 0, or Transpose / that Slice on axis 1 /
    Transpose (what :func:`converters.readers.onnx_patterns._full_reverse_sequence` writes)."""
    try:
        return _flip_source(vg, name)
    except (IndexError, KeyError, TypeError, ValueError):  # a malformed node is no flip
        return None


def _flip_source(vg: ValueGraph, name: str) -> str | None:
    node = vg.producer.get(name)
    if node is None:
        return None
    if node.op_type == "ReverseSequence" and len(node.input) == 2 and int(vg.attr(node, "time_axis", 0)) == 0:
        return node.input[0] if full_reverse(vg, node) is None else None
    if node.op_type == "Slice" and _whole_flip(vg, node, 0):
        return node.input[0]
    return transposed_flip_source(vg, name)


def transposed_flip_source(vg: ValueGraph, name: str) -> str | None:
    """``x`` when ``name`` is the time-major ``x`` reversed in time by Transpose / Slice(step -1 over all
    of axis 1) / Transpose (what :func:`converters.readers.onnx_patterns._full_reverse_sequence` writes)."""
    back = op_of(vg, name, "Transpose")
    flip = op_of(vg, back.input[0], "Slice") if back is not None else None
    front = op_of(vg, flip.input[0], "Transpose") if flip is not None else None
    if front is None or any([int(p) for p in vg.attr(t, "perm", [])] != [1, 0, 2] for t in (back, front)) \
            or not _whole_flip(vg, flip, 1):
        return None
    return front.input[0]


def _whole_flip(vg: ValueGraph, node, axis: int) -> bool:
    """``node`` is ``Slice(x, -1, FLIP_END, axis, -1)``: all of ``axis`` reversed."""
    return list(vg.slice_args(node)) == [[-1], [FLIP_END], [axis], [-1]]


#: the most node pairs :func:`same_value` compares (a bound on the work on a hostile graph)
_SAME_WORK = 4096


def same_value(vg: ValueGraph, a: str, b: str) -> bool:
    """Whether tensors ``a`` and ``b`` are computed the same way from the same inputs (equal constants,
    the same ops and attributes): tf2onnx writes one Keras mask twice, once for each direction."""
    seen: dict[tuple[str, str], bool] = {}
    work = [0]

    def same(x: str, y: str) -> bool:
        if x == y:
            return True
        if (x, y) in seen:
            return seen[(x, y)]
        work[0] += 1
        if work[0] > _SAME_WORK or not x or not y:
            return False
        seen[(x, y)] = False  # a cycle (a hostile graph) is not the same value
        seen[(x, y)] = result = _same_node(vg, x, y, same)
        return result

    return same(a, b)


def _same_node(vg: ValueGraph, x: str, y: str, same) -> bool:
    cx, cy = (vg.const(x), vg.const(y)) if vg.is_const(x) or vg.is_const(y) else (None, None)
    if cx is not None or cy is not None:
        return cx is not None and cy is not None and cx.dtype == cy.dtype and cx.shape == cy.shape \
            and bool(np.array_equal(cx, cy))
    nx, ny = vg.producer.get(x), vg.producer.get(y)
    if nx is None or ny is None or nx.op_type != ny.op_type or nx.domain != ny.domain \
            or len(nx.input) != len(ny.input) or list(nx.output).index(x) != list(ny.output).index(y):
        return False
    attrs = [sorted((a.name, a.SerializeToString()) for a in n.attribute) for n in (nx, ny)]
    if attrs[0] != attrs[1] or any(a.HasField("g") or len(a.graphs) for a in nx.attribute):
        return False
    return all(same(i, j) for i, j in zip(nx.input, ny.input))
