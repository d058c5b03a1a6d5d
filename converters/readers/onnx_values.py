"""What an ONNX tensor means to the ONNX reader: symbolic values, each a view of IR tensors.

The reader walks the ONNX graph once and gives every tensor one of these values instead of numbers.
An ONNX op either maps a value to another (a Transpose of a time-major view gives the batch-first
tensor back) or, when it is a whole Keras-level computation, adds IR nodes and gives a plain
:class:`IR` tensor. Values that belong to a recurrent node (:class:`Seq`, :class:`State`,
:class:`Last`, :class:`Merged`) stay symbolic until something needs them as IR tensors; the
recurrent node's options (return_sequences, return_state, merge_mode, go_backwards) follow from
which of them are used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class Value:
    """Base class: a symbolic ONNX tensor."""

    what = "tensor"


@dataclass(eq=False)
class IR(Value):
    """An IR tensor, batch-first (Keras layout)."""

    name: str
    rank: int | None = None
    dtype: str = "float32"
    what = "tensor"


@dataclass(eq=False)
class Const(Value):
    """An initializer or a constant, folded to numpy."""

    value: np.ndarray
    what = "constant"


@dataclass(eq=False)
class Zeros(Value):
    """A run-time zeros tensor (an initial state made of zeros: the same as none)."""

    what = "zeros"


@dataclass(eq=False)
class ShapeOf(Value):
    """``Shape(x)``: only used to Expand a mask plan index over ``x``."""

    of: Value | None  # None: sizes computed from shapes
    what = "shape"


@dataclass(eq=False)
class TimeSteps(Value):
    """``Range(0, x's number of steps, 1)``: the step indices of the batch-first ``x`` (axis 1), as a row
    ``(1, time)`` when ``row`` (gateport's writer's ``mask_lengths``: onnx_masks.mask_lengths_to_onnx)."""

    of: "IR"
    row: bool = False
    what = "range of steps"


@dataclass(eq=False)
class View(Value):
    """``x`` seen through a layout change: ``time_major`` (perm 1,0,2), ``channels_first`` (0,2,1),
    ``unsqueeze1`` (axis 1 inserted, for RepeatVector), ``int`` (cast to int64 for a lookup),
    ``unsqueeze0`` (axis 0 inserted, an initial state), ``compact`` (masked steps moved last)."""

    kind: str
    of: Value
    mask: Any = None  # the mask value of a "compact" view


@dataclass(eq=False)
class Pending(Value):
    """A partial Keras-level op waiting for its next ONNX op (MatMul before its Add, a scale before
    its shift, a Conv before its Transpose, Add before a Div)."""

    kind: str
    args: tuple
    what = "partial op"


# -- recurrent ------------------------------------------------------------------------------------
@dataclass(eq=False)
class RecOut(Value):
    """A raw output of an ONNX LSTM/GRU/RNN: ``Y`` (k=None) or state ``k`` (0 = h, 1 = c), or ``Y``
    transposed to ``[batch|time, time|batch, dirs, hidden]`` (``perm``)."""

    rec: Any
    k: int | None = None
    perm: tuple | None = None
    what = "recurrent output"


@dataclass(eq=False)
class Seq(Value):
    """One direction's output sequence. ``stage``: ``raw`` (what ONNX returns; compacted when masked),
    ``expanded`` (put back at input time, before the zero-fill), ``keras`` (Keras' output of that
    direction aligned to input time). ``flipped`` = reversed along time; ``time_major`` layout."""

    rec: Any
    slot: int
    time_major: bool = True
    flipped: bool = False
    stage: str = "raw"
    zero: bool | None = None
    what = "recurrent sequence"


@dataclass(eq=False)
class State(Value):
    """One direction's final state ``k`` (0 = h, 1 = c), batch-first."""

    rec: Any
    slot: int
    k: int
    what = "recurrent state"


@dataclass(eq=False)
class Last(Value):
    """One direction's last output (the step it processed last), masked case."""

    rec: Any
    slot: int
    zero: bool | None = None
    what = "recurrent last output"


@dataclass(eq=False)
class Merged(Value):
    """Both directions merged as Keras' Bidirectional does (``mode`` concat|sum|mul|ave)."""

    rec: Any
    mode: str
    parts: tuple  # (Seq|State|Last, Seq|State|Last)
    time_major: bool = False
    what = "merged recurrent output"


# -- masks ------------------------------------------------------------------------------------
@dataclass(eq=False)
class NotEqual(Value):
    """``x != value`` element-wise (``Not(Equal(x, c))``); reduced over the last axis when ``reduce``.
    ``stage`` tracks the reduce pattern: ``int`` (cast), ``count`` (ReduceSum), ``kd`` (keepdims)."""

    x: IR
    value: float
    reduce: bool = False
    stage: str = "mask"
    keepdims: bool = False
    what = "mask"


@dataclass(eq=False)
class Equal(Value):
    x: IR
    value: float
    what = "comparison"


@dataclass(eq=False)
class MaskRef(Value):
    """An IR mask tensor, possibly cast to float and/or with a last axis added (``unsq``)."""

    name: str
    float_: bool = False
    unsq: bool = False
    what = "mask"


@dataclass(eq=False)
class Plan(Value):
    """A tensor of the masked-RNN plan derived from ``mask`` (a mask value): its ``role``
    (ones, count, len64, len, order, idx_fwd, idx_rev, started, empty ...), with ``^`` for an added
    axis and ``^x`` once expanded over a sequence."""

    mask: Value
    role: str
    over: Any = None  # the value whose Shape an index was expanded to (role ``...^x``): what it may gather
    what = "mask plan"


# -- helpers shared by the ONNX reader's modules ----------------------------------------------
def shape_arithmetic(args: list) -> bool:
    """All inputs are sizes or constants, and one at least is a run-time size."""
    present = [a for a in args if a is not None]
    return any(isinstance(a, ShapeOf) for a in present) and all(isinstance(a, (ShapeOf, Const)) for a in present)


def is_mask(v) -> bool:
    return isinstance(v, MaskRef) and not v.float_ and not v.unsq or \
        isinstance(v, NotEqual) and v.stage == "mask"


def scalar(v: Value) -> float | None:
    if isinstance(v, Const) and v.value.size == 1:
        return float(v.value.reshape(-1)[0])
    return None


def ints(v: Value) -> list[int] | None:
    if isinstance(v, Const) and v.value.dtype.kind in "iu":
        return [int(i) for i in v.value.reshape(-1)]
    return None


def rec_key(v: Value) -> tuple | None:
    """The use key a recurrent value stands for (see RecurrentNode.request), or None."""
    masked = v.rec.mask is not None
    z = None
    if isinstance(v, Seq):
        if v.time_major or v.stage != "keras":
            return None
        return ("seq", v.slot, v.flipped, v.zero if masked else None)
    if isinstance(v, State):
        return ("state", v.slot, v.k)
    if isinstance(v, Last):
        return ("last", v.slot, v.zero if masked else None)
    if isinstance(v, Merged):
        if v.time_major:
            return None
        parts = [part(p) for p in v.parts]
        if None in parts or parts[0][0] != parts[1][0] or parts[0][1] == parts[1][1]:
            return None
        kind = parts[0][0]
        if kind == "seq" and parts[0][2] != parts[1][2]:
            return None
        zs = {p[3] for p in parts}
        z = zs.pop() if len(zs) == 1 else None
        return ("merge", v.mode, kind, parts[0][1], parts[0][2] if kind == "seq" else None,
                z if masked else None)
    return None


def part(p: Value) -> tuple | None:
    """``(kind, slot, flipped, zero)`` of one direction inside a merge."""
    if isinstance(p, Seq) and p.stage == "keras":
        return ("seq", p.slot, p.flipped, p.zero)
    if isinstance(p, Last):
        return ("last", p.slot, None, p.zero)
    if isinstance(p, State) and p.k == 0:
        return ("last", p.slot, None, None)
    return None


def out_name(node) -> str:
    return node.output[0]


def axes_of(node, args: list, attrs: dict) -> list[int] | None:
    """``axes`` given as an attribute (opset < 13) or as the second input."""
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    return ints(args[1]) if len(args) > 1 and args[1] is not None else None


def onnx_producer(r, name: str):
    """The ONNX node of the graph being read that computes ``name``, or None."""
    producers = getattr(r, "_onnx_producers", None)
    if producers is None:
        producers = r._onnx_producers = {o: n for n in r.proto.graph.node for o in n.output if o}
    return producers.get(name)


def onnx_consumers(r, name: str) -> list:
    """The ONNX nodes of the graph being read that use tensor ``name`` (each once)."""
    consumers = getattr(r, "_onnx_consumers", None)
    if consumers is None:
        consumers = r._onnx_consumers = {}
        for n in r.proto.graph.node:
            for i in set(n.input):
                consumers.setdefault(i, []).append(n)
    return consumers.get(name, [])


def only_read_by(r, name: str, *ops: str) -> bool:
    """Whether ``name`` is read, only by nodes of ``ops`` and is no graph output (a partial form is taken only
    where what completes it follows; else the plain op is read)."""
    readers = onnx_consumers(r, name)
    return bool(readers) and all(n.op_type in ops for n in readers) \
        and all(o.name != name for o in r.proto.graph.output)
