"""The exact masked-RNN plan, as ONNX nodes, around one fused node that replaces a masked recurrence.

A masked Keras recurrence that another tool left as a ``Loop`` (keras/src/backend/tensorflow/rnn.py: a
masked step keeps the states, and repeats the previous output, or gives zeros with
``zero_output_for_mask``) becomes the ops gateport's own ONNX writer emits for a masked recurrent node
(converters/writers/onnx_masks.py ``MaskPlan``, read back role by role in onnx_mask_ops.py): a stable
TopK moves the unmasked steps first, the node runs with ``sequence_lens``, GatherElements puts each
output back at its step and Where zero-fills. The same ops, so the reader gives the node its mask. A masked
Bidirectional's two loops become one bidirectional node in the same plan (its reverse direction runs each
sample's unmasked steps from the end); :func:`plan_in_numpy` computes what the plan gives, for the check
of the loops' bodies.
"""
from __future__ import annotations

import numpy as np


class PlanNodes:
    """Collects the nodes and constants of one plan (names from ``fresh``)."""

    def __init__(self, onnx, fresh, scope: str, opset: int = 13):
        self.onnx, self.fresh, self.scope, self.opset = onnx, fresh, scope, opset
        self.nodes: list = []
        self.inits: list = []
        self._values: dict[str, np.ndarray] = {}

    def const(self, value, dtype) -> str:
        name = self.fresh(f"{self.scope}/c")
        self._values[name] = np.asarray(value, dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(self._values[name], name))
        return name

    def op(self, op: str, inputs: list[str], n_out: int = 1, out: str | None = None, **attrs):
        if op in ("Squeeze", "Unsqueeze", "ReduceSum") and self.opset < 13 and len(inputs) == 2 \
                and inputs[1] in self._values:  # axes an attribute before opset 13 (Squeeze-11, ReduceSum-11)
            inputs, attrs = inputs[:1], {**attrs, "axes": [int(a) for a in self._values[inputs[1]].reshape(-1)]}
        outs = [out or self.fresh(f"{self.scope}/{op}")] + [self.fresh(f"{self.scope}/{op}") for _ in range(n_out - 1)]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outs, name=outs[0], **attrs))
        return outs if n_out > 1 else outs[0]

    def along_time(self, x: str, index: str) -> str:
        """``x[b, index[b, t], :]`` for a batch-first ``x`` and an int64 ``index (batch, time)``."""
        full = self.op("Expand", [self.op("Unsqueeze", [index, self.const([2], np.int64)]), self.op("Shape", [x])])
        return self.op("GatherElements", [x, full], axis=1)


def masked_node(p: PlanNodes, mask: str, x_time_major: str, make_node, zero_output: bool,
                reverse: tuple[bool, ...] = (False,)) -> tuple[list[str], list[str]]:
    """``(each direction's outputs batch-first, at input time, as Keras gives them; the node's final
    states)``: ``make_node(X, lens)`` adds the fused node (directions ``reverse``: which process the
    steps from the end, in ONNX's slot order) and returns its ``[Y, Y_h(, Y_c)]``."""
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
    return [_expanded(p, y_all, slot, back, mask, ones, count, zero_output)
            for slot, back in enumerate(reverse)], states


def _expanded(p: PlanNodes, y_all: str, slot: int, reverse: bool, mask: str, ones: str, count: str,
              zero_output: bool) -> str:
    """Direction ``slot``'s output put back at each input step (converters/writers/onnx_masks.py
    ``MaskPlan.expand``): a masked step repeats the output of the step processed just before it
    (``y[count - 1]`` going forward, zero before the first; ``y[count]`` in reverse, zero past the
    length, where ONNX zero-fills ``Y``), or is zero with ``zero_output``."""
    i64 = np.int64
    y = p.op("Transpose", [p.op("Gather", [y_all, p.const(slot, i64)], axis=1)], perm=[1, 0, 2])
    if reverse:
        index = p.op("Sub", [count, ones])
        keep = mask if zero_output else None
    else:
        index = p.op("Max", [p.op("Sub", [count, p.const(1, i64)]), p.const(0, i64)])
        keep = mask if zero_output else p.op("Greater", [count, p.const(0, i64)])
    out = p.along_time(y, index)
    if keep is None:
        return out
    return p.op("Where", [p.op("Unsqueeze", [keep, p.const([2], i64)]), out, p.const(0.0, np.float32)])


def plan_in_numpy(masks: np.ndarray, run, units: int, reverse: bool, zero_output: bool):
    """What :func:`masked_node` computes for one direction, step by step in numpy: ``(outputs (time,
    batch, units) at input time, final states)`` for time-major ``masks (time, batch, 1)``;
    ``run(steps, b)`` runs the cell over sample ``b``'s input steps ``steps`` (in that order) from zero
    states and returns per step ``[output, h(, c)]`` of shape ``(1, units)``. The masked-loop check
    compares a loop's body with it."""
    steps, batch = masks.shape[:2]
    ones = masks[:, :, 0].T.astype(np.int64)  # (batch, time)
    count = np.cumsum(ones, axis=1)
    order = np.argsort(np.arange(steps) + (1 - ones) * steps, axis=1, kind="stable")  # the stable TopK
    y = np.zeros((batch, steps, units), np.float32)  # ONNX zero-fills Y past each length
    finals: list[list[np.ndarray] | None] = []  # None: a sample with no unmasked step
    for b in range(batch):
        length = int(ones[b].sum())
        positions = list(range(length))[::-1] if reverse else list(range(length))
        got = run(order[b, positions], b) if length else []
        for k, pos in enumerate(positions):
            y[b, pos] = got[k][0][0]
        finals.append([s[0] for s in got[-1][1:]] if got else None)
    index = count - ones if reverse else np.maximum(count - 1, 0)
    out = np.take_along_axis(y, index[:, :, None], axis=1)
    keep = ones > 0 if zero_output else None if reverse else count > 0
    if keep is not None:
        out = np.where(keep[:, :, None], out, np.float32(0))
    return out.transpose(1, 0, 2), finals
