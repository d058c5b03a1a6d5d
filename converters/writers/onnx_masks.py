"""Keras masks in ONNX: the mask ops, and the exact masked-RNN plan around one fused node.

Keras skips a masked step: the states keep their values and the output repeats the previous
output (zeros before the first unmasked step), or is zero with ``zero_output_for_mask``
(keras/src/backend/*/rnn.py ``rnn()``; converters/reference_rnn.py). An ONNX LSTM/GRU/RNN with
``sequence_lens`` instead assumes post-padding and zero-fills ``Y`` past each length.

:class:`MaskPlan` makes any mask - trailing padding, leading padding or holes - exact with one
fused node: a stable sort moves the unmasked steps to the front (the identity for trailing padding),
the node runs with ``sequence_lens`` = the number of unmasked steps, and a gather puts each output
back at its time step, repeating or zeroing at masked steps as Keras does.
"""
from __future__ import annotations

from ..ir import Node
from .onnx_builder import GraphBuilder


def mask_not_equal_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``x != value``; with ``reduce``, any over the last axis (Keras Masking's mask)."""
    x = node.inputs[0]
    value = node.options["value"]
    if node.options.get("reduce"):
        _any_differs(g, x, value, keepdims=False, out=node.outputs[0])
    else:
        g.op("Not", [g.op("Equal", [x, g.const(value, g.dtypes.get(x, "float32"))])],
             out=node.outputs[0], dtype="bool")


def mask_and_to_onnx(g: GraphBuilder, node: Node) -> None:
    """The logical and (mask_and) or or (mask_or) of the input masks."""
    g.fold("And" if node.op == "mask_and" else "Or", node.inputs, node.outputs[0])


def mask_concat_to_onnx(g: GraphBuilder, node: Node) -> None:
    """The input masks joined on the time axis (Concat over axis 1)."""
    g.op("Concat", list(node.inputs), out=node.outputs[0], axis=1, rank=2, dtype="bool")


def mask_lengths_to_onnx(g: GraphBuilder, node: Node) -> None:
    """``Range(time) < lengths[:, None]``: the (batch, time) mask of ONNX ``sequence_lens``, ``time`` from
    ``x``'s shape."""
    lengths, x = node.inputs
    steps_1d = g.op("Gather", [g.op("Shape", [x], rank=1), g.const([1])], rank=1)
    steps = g.op("Squeeze", [steps_1d, g.const([0])], rank=0)
    t = g.op("Range", [g.const(0), steps, g.const(1)], rank=1)
    per_sample = g.unsqueeze(g.cast(lengths, "int64"), [1])
    g.op("Less", [g.unsqueeze(t, [0]), per_sample], out=node.outputs[0], rank=2, dtype="bool")


def masking_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Keras ``Masking``: ``where(mask[..., None], x, 0)`` (keras/src/layers/core/masking.py; not
    ``x * mask``, which turns a masked inf into NaN).

    The mask is the node's second input or its ``mask``; without either, Keras' own from
    ``mask_value`` (``x != NaN`` holds everywhere: a NaN mask_value masks nothing, as in Keras).
    """
    x = node.inputs[0]
    mask = node.inputs[1] if len(node.inputs) > 1 else node.mask
    if not mask:  # "" is no mask, as in the reference
        keep = _any_differs(g, x, node.options["mask_value"], keepdims=True)
    else:
        keep = g.unsqueeze(mask, [-1])
    g.op("Where", [keep, x, g.const(0.0, g.dtypes.get(x, "float32"))], out=node.outputs[0])


def _any_differs(g: GraphBuilder, x: str, value, keepdims: bool, out: str | None = None) -> str:
    """``any(x != value, axis=-1)``, a boolean tensor."""
    differs = g.op("Not", [g.op("Equal", [x, g.const(value, g.dtypes.get(x, "float32"))])])
    count = g.op("ReduceSum", [g.cast(differs, "int64"), g.const([-1])], keepdims=int(keepdims),
                 rank=g.rank(x) - (0 if keepdims else 1))
    return g.op("Greater", [count, g.const(0)], out=out, dtype="bool")


class MaskPlan:
    """Tensors derived once from a ``(batch, time)`` boolean mask for masked recurrent nodes."""

    def __init__(self, g: GraphBuilder, mask: str):
        self.g = g
        self.mask = mask
        scope, g.scope = g.scope, f"{mask}/plan"
        self.ones = g.cast(mask, "int64")  # 1 = step is processed
        #: number of processed steps up to and including t
        self.count = g.op("CumSum", [self.ones, g.const(1)], rank=2)
        self.lengths64 = g.op("ReduceSum", [self.ones, g.const([1])], keepdims=0, rank=1)
        #: what ONNX calls sequence_lens
        self.lengths = g.cast(self.lengths64, "int32")
        # a stable sort of the steps with the processed ones first: key t, or t + T when masked
        steps_1d = g.op("Gather", [g.op("Shape", [mask], rank=1), g.const([1])], rank=1)
        steps = g.op("Squeeze", [steps_1d, g.const([0])], rank=0)
        t = g.op("Range", [g.const(0), steps, g.const(1)], rank=1)
        skipped = g.op("Sub", [g.const(1), self.ones])
        keys = g.op("Add", [t, g.op("Mul", [skipped, steps])], rank=2)
        _, self.order = g.op("TopK", [keys, steps_1d], n_out=2, axis=1, largest=0, sorted=1, rank=2)
        g.ranks[self.order] = 2
        g.scope = scope

    @classmethod
    def of(cls, g: GraphBuilder, mask: str) -> "MaskPlan":
        """The plan of ``mask``, built on first use."""
        key = ("mask_plan", mask)
        if key not in g.memo:
            g.memo[key] = cls(g, mask)
        return g.memo[key]

    def _along_time(self, x: str, index: str) -> str:
        """``x[b, index[b, t], ...]`` for a batch-first ``x`` of rank 3 and ``index (batch, time)``."""
        g = self.g
        full = g.op("Expand", [g.unsqueeze(index, [2]), g.op("Shape", [x], rank=1)], rank=3)
        return g.op("GatherElements", [x, full], axis=1, rank=3)

    def compact(self, x: str) -> str:
        """Batch-first ``x`` with the processed steps moved to the front, in order."""
        key = ("compact", self.mask, x)
        if key not in self.g.memo:
            self.g.memo[key] = self._along_time(x, self.order)
        return self.g.memo[key]

    def expand(self, y: str, reverse: bool, zero_output: bool) -> str:
        """Outputs ``y (batch, steps, units)`` of the compacted sequence put back at input time.

        At an unmasked step t the output is ``y[count[t] - 1]``. At a masked step Keras gives
        the output of the step processed just before: ``y[count[t] - 1]`` going forward (zero when
        none), ``y[count[t]]`` going in reverse (zero past the length, where ONNX zero-fills Y);
        or zero with ``zero_output``.
        """
        g = self.g
        if reverse:
            index = g.op("Sub", [self.count, self.ones])
            keep = self.mask if zero_output else None
        else:
            index = g.op("Max", [g.op("Sub", [self.count, g.const(1)]), g.const(0)])
            keep = self.mask if zero_output else g.op("Greater", [self.count, g.const(0)], dtype="bool")
        out = self._along_time(y, index)
        if keep is None:
            return out
        return g.op("Where", [g.unsqueeze(keep, [2]), out, g.const(0.0, "float32")], rank=3)
