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
    ins = list(sl.input) + [""] * (5 - len(sl.input))
    starts, ends = vg.ints(ins[1]), vg.ints(ins[2])
    axes, steps = (vg.ints(ins[3]) if ins[3] else [0]), (vg.ints(ins[4]) if ins[4] else [1])
    if starts is None or ends is None or axes != [0] or steps != [1] or len(starts) != 1 or ends[0] != starts[0] + 1:
        return None
    return sl.input[0], starts[0], [sl, squeeze]


def through_cast(vg: ValueGraph, name: str) -> str:
    """``x`` when ``name`` is ``Cast(x)``, else ``name``."""
    cast = op_of(vg, name, "Cast")
    return cast.input[0] if cast is not None else name
