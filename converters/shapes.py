"""Static shape inference over the IR: the shape (without batch, ``None`` = dynamic) of every tensor.

Each op's rule is its row's ``shape`` in :mod:`converters.ops`.
"""
from __future__ import annotations

from .ir import Model, Node
from .ops import OPS

Shape = tuple


def infer_shapes(model: Model) -> dict[str, Shape]:
    """Map every tensor name of ``model`` to its shape; unknown dimensions are ``None``."""
    shapes: dict[str, Shape] = {t.name: tuple(t.shape) for t in model.inputs}
    for node in model.nodes:
        ins = [shapes.get(name) for name in node.inputs]
        outs = node_output_shapes(node, ins)
        for name, shape in zip(node.outputs, outs):
            shapes[name] = shape
    return shapes


def node_output_shapes(node: Node, ins: list) -> list:
    """The output shapes of ``node`` given its input shapes (entries may be ``None`` if unknown)."""
    if not ins or ins[0] is None:
        return [None] * len(node.outputs)
    row = OPS.get(node.op)
    if row is None:  # an op the table lacks keeps its input's shape (the writers refuse it by name)
        return [ins[0]] * len(node.outputs)
    return row.shape(node, ins)
