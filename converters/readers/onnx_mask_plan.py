"""The exact masked-RNN plan, as ONNX nodes, around one fused node that replaces a masked recurrence.

A masked Keras recurrence that another tool left as a ``Loop`` (keras/src/backend/tensorflow/rnn.py: a
masked step keeps the states, and repeats the previous output, or gives zeros with
``zero_output_for_mask``) becomes the ops gateport's own ONNX writer emits for a masked recurrent node
(converters/writers/onnx_masks.py ``MaskPlan``, read back role by role in onnx_mask_ops.py): a stable
TopK moves the unmasked steps first, the node runs with ``sequence_lens``, GatherElements puts each
output back at its step and Where zero-fills. The same ops, so the reader gives the node its mask.
"""
from __future__ import annotations

import numpy as np


class PlanNodes:
    """Collects the nodes and constants of one plan (names from ``fresh``)."""

    def __init__(self, onnx, fresh, scope: str):
        self.onnx, self.fresh, self.scope = onnx, fresh, scope
        self.nodes: list = []
        self.inits: list = []

    def const(self, value, dtype) -> str:
        name = self.fresh(f"{self.scope}/c")
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op: str, inputs: list[str], n_out: int = 1, out: str | None = None, **attrs):
        outs = [out or self.fresh(f"{self.scope}/{op}")] + [self.fresh(f"{self.scope}/{op}") for _ in range(n_out - 1)]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outs, name=outs[0], **attrs))
        return outs if n_out > 1 else outs[0]

    def along_time(self, x: str, index: str) -> str:
        """``x[b, index[b, t], :]`` for a batch-first ``x`` and an int64 ``index (batch, time)``."""
        full = self.op("Expand", [self.op("Unsqueeze", [index, self.const([2], np.int64)]), self.op("Shape", [x])])
        return self.op("GatherElements", [x, full], axis=1)


def masked_node(p: PlanNodes, mask: str, x_time_major: str, make_node, zero_output: bool) -> tuple[str, list[str]]:
    """``(outputs time-major as Keras gives them, the node's final states)``: ``make_node(X, lens)`` adds
    the fused node (one forward direction) and returns its ``[Y, Y_h(, Y_c)]``."""
    i64 = np.int64
    ones = p.op("Cast", [mask], to=7)
    count = p.op("CumSum", [ones, p.const(1, i64)])
    lengths64 = p.op("ReduceSum", [ones, p.const([1], i64)], keepdims=0)
    lengths = p.op("Cast", [lengths64], to=6)
    steps_1d = p.op("Gather", [p.op("Shape", [mask]), p.const([1], i64)], axis=0)
    steps = p.op("Squeeze", [steps_1d, p.const([0], i64)])
    t = p.op("Range", [p.const(0, i64), steps, p.const(1, i64)])
    keys = p.op("Add", [t, p.op("Mul", [p.op("Sub", [p.const(1, i64), ones]), steps])])
    _, order = p.op("TopK", [keys, steps_1d], n_out=2, axis=1, largest=0, sorted=1)
    x = p.op("Transpose", [x_time_major], perm=[1, 0, 2])
    compact = p.op("Transpose", [p.along_time(x, order)], perm=[1, 0, 2])
    y_all, *states = make_node(compact, lengths)
    y = p.op("Transpose", [p.op("Gather", [y_all, p.const(0, i64)], axis=1)], perm=[1, 0, 2])
    index = p.op("Max", [p.op("Sub", [count, p.const(1, i64)]), p.const(0, i64)])
    keep = mask if zero_output else p.op("Greater", [count, p.const(0, i64)])
    out = p.op("Where", [p.op("Unsqueeze", [keep, p.const([2], i64)]), p.along_time(y, index),
                         p.const(0.0, np.float32)])
    return p.op("Transpose", [out], perm=[1, 0, 2]), states
