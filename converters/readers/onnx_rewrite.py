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
