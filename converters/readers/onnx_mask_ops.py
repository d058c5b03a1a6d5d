"""ONNX ops of Keras masks and of gateport's exact masked-RNN plan -> IR masks.

Keras masks come back from the ops gateport's ONNX writer emits (converters/writers/onnx_masks.py):
``Not(Equal(x, c))`` is ``mask_not_equal``; with ``ReduceSum``/``Greater`` over the last axis it is the
reduced mask of Keras' Masking; ``And`` is ``mask_and``, ``Or`` ``mask_or``. The plan around a masked recurrent node (a
stable TopK moving the unmasked steps first, ``sequence_lens``, GatherElements putting each output
back at its step, Where for the zero-fill) is followed role by role (:class:`Plan`), so the
recurrent node gets the mask and its ``zero_output_for_mask`` back. One small function per op.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import FormatError

from .onnx_values import (onnx_producer, IR, Const, Equal, MaskRef, NotEqual, Plan, Seq, ShapeOf, State, TimeSteps, Value, View, Zeros,
                          axes_of, ints, is_mask, out_name, scalar)


def mask_ir(r, m: Value, hint: str) -> IR:
    """A mask value as its IR bool tensor (rank from the IR, or from what the mask was computed of)."""
    name = r.mask_name(m, hint)
    rank = r.ranks.get(name) or (m.x.rank - m.reduce if isinstance(m, NotEqual) and m.x.rank else None)
    return IR(name, rank, "bool")


def _equal(r, node, args, attrs):
    a, b = args
    if is_mask(a):  # a mask of a mask: tf-keras' TimeDistributed any over the inner steps (keras_layers.py)
        a = mask_ir(r, a, out_name(node))
    elif not isinstance(a, Plan):
        a = r.as_ir(a)
    if isinstance(a, IR) and scalar(b) is not None:
        return [Equal(a, scalar(b))]
    if isinstance(a, Plan) and a.role == "len64" and scalar(b) == 0:
        return [Plan(a.mask, "empty")]
    raise r.unsupported("expected Equal(x, constant) of a mask")


def _not(r, node, args, attrs):
    if isinstance(args[0], Equal):
        return [NotEqual(args[0].x, args[0].value)]
    raise r.unsupported("expected Not(Equal(x, constant)) (a Keras mask)")


def _logic(onnx_op: str, op: str):
    """``And`` / ``Or`` of masks: ``mask_and`` / ``mask_or`` (Keras 3's mask of a merge of differently masked
    inputs, as gateport writes it)."""
    def read(r, node, args, attrs):
        if all(is_mask(a) for a in args):
            names = [r.mask_name(a, out_name(node)) for a in args]
            return [MaskRef(r.add(op, names, out_name(node)).name)]
        raise r.unsupported(f"expected {onnx_op} of masks")
    return read


def reduce_sum_of_mask(r, node, args, attrs) -> list[Value] | None:
    """``ReduceSum`` of a mask (Keras Masking's count, a masked RNN's lengths), or None."""
    x, axes, keepdims = args[0], axes_of(node, args, attrs), bool(attrs.get("keepdims", 1))
    if isinstance(x, Plan) and x.role == "ones":
        m = x.mask
        if axes == [-1] and isinstance(m, NotEqual) and not m.reduce:
            return [NotEqual(m.x, m.value, False, "count", keepdims)]
        if axes == [1] and not keepdims:
            return [Plan(m, "len64")]
    return None


def _greater(r, node, args, attrs):
    x, c = args[0], scalar(args[1])
    if isinstance(x, NotEqual) and x.stage == "count" and c == 0:
        return [NotEqual(x.x, x.value, True, "kd" if x.keepdims else "mask", x.keepdims)]
    if isinstance(x, Plan) and x.role == "count" and c == 0:
        return [Plan(x.mask, "started")]
    raise r.unsupported("expected Greater(count, 0) of a mask")


def _cumsum(r, node, args, attrs):
    if attrs.get("exclusive", 0) or attrs.get("reverse", 0):
        raise r.unsupported("expected an inclusive, forward CumSum (exclusive=0, reverse=0)")
    if isinstance(args[0], Plan) and args[0].role == "ones" and scalar(args[1]) == 1:
        return [Plan(args[0].mask, "count")]
    raise r.unsupported("expected CumSum of a mask over time")


def _shape(r, node, args, attrs):
    x = args[0]
    if "start" in attrs or "end" in attrs:  # Shape-15: a slice [start:end] of the shape
        if isinstance(x, Const):
            return [Const(np.asarray(x.value.shape[int(attrs.get("start", 0)):attrs.get("end")], np.int64))]
        raise r.unsupported("expected Shape of the whole tensor (no start/end)")
    if is_mask(x):
        return [Plan(x, "shape")]
    if isinstance(x, Const):
        return [Const(np.asarray(x.value.shape, np.int64))]
    return [ShapeOf(x)]


def _range(r, node, args, attrs):
    start, limit, delta = args
    if isinstance(limit, Plan) and limit.role == "steps" and scalar(start) == 0 and scalar(delta) == 1:
        return [Plan(limit.mask, "t")]
    x = _steps_of(r, node.input[1]) if isinstance(limit, ShapeOf) and scalar(start) == 0 and scalar(delta) == 1 \
        else None
    if x is not None:
        return [TimeSteps(x)]
    if all(isinstance(a, Const) for a in args) and None not in map(scalar, args) and scalar(delta) != 0:
        r.fold((max(0, math.ceil((scalar(limit) - scalar(start)) / scalar(delta))),), start.value.dtype)
        return [Const(np.arange(scalar(start), scalar(limit), scalar(delta)).astype(start.value.dtype))]
    raise r.unsupported("expected Range over a mask's time steps")


def _steps_of(r, name: str) -> IR | None:
    """The batch-first IR tensor ``x`` when ``name`` is ``Squeeze(Gather(Shape(x), [1]), [0])`` (its number of
    steps, as onnx_masks.mask_lengths_to_onnx computes it), checked node by node; else None."""

    squeeze = onnx_producer(r, name)
    if squeeze is None or squeeze.op_type != "Squeeze" or _node_ints(r, squeeze, "axes", 1) != [0]:
        return None
    gather = onnx_producer(r, squeeze.input[0])
    if gather is None or gather.op_type != "Gather" or _node_ints(r, gather, "axis", None) not in (None, [0]) \
            or len(gather.input) != 2 or ints(r.env.get(gather.input[1])) != [1]:
        return None
    shape = onnx_producer(r, gather.input[0])
    if shape is None or shape.op_type != "Shape" or len(shape.attribute):
        return None
    x = r.as_ir(r.env.get(shape.input[0]))
    return x if isinstance(x, IR) and x.dtype == "float32" and r.ranks.get(x.name, x.rank) == 3 else None


def _node_ints(r, node, attr: str, k: int | None) -> list[int] | None:
    """Attribute ``attr`` of an ONNX node as ints, else its input ``k`` when constant (None if neither)."""
    for a in node.attribute:
        if a.name == attr:
            value = r.onnx.helper.get_attribute_value(a)
            return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
    return ints(r.env.get(node.input[k])) if k is not None and len(node.input) > k else None


def _less(r, node, args, attrs):
    """``Less(Unsqueeze(Range(0, steps of x, 1), [0]), Unsqueeze(Cast(lengths, int64), [1]))``: gateport's
    ``mask_lengths(lengths, x)`` = ``arange(time) < lengths[:, None]`` (onnx_masks.mask_lengths_to_onnx), for
    ``lengths`` a (batch,) integer tensor."""
    steps, per_sample = args
    lengths = per_sample.of if isinstance(per_sample, View) and per_sample.kind == "unsqueeze1" else None
    if isinstance(steps, TimeSteps) and steps.row and isinstance(lengths, IR) and lengths.dtype.startswith("int") \
            and r.ranks.get(lengths.name, lengths.rank) == 1:
        return [MaskRef(r.add("mask_lengths", [lengths.name, steps.of.name], out_name(node), rank=2).name)]
    raise r.unsupported("expected Less of a range of steps and per-sample lengths (gateport's mask of ONNX "
                        "sequence_lens: Range(0, steps, 1)[None, :] < Cast(lengths, int64)[:, None])")


def _topk(r, node, args, attrs):
    keys, k = args
    stable_ascending = int(attrs.get("largest", 1)) == 0 and int(attrs.get("sorted", 1)) == 1  # TopK-11
    if isinstance(keys, Plan) and keys.role == "keys" and isinstance(k, Plan) and k.role == "steps1d" \
            and stable_ascending and int(attrs.get("axis", -1)) == 1:
        return [Plan(keys.mask, "sorted_keys"), Plan(keys.mask, "order")]
    raise r.unsupported("expected TopK ordering a mask's steps")


def _expand(r, node, args, attrs):
    x, shape = args
    if isinstance(x, Plan) and x.role.endswith("^") and isinstance(shape, ShapeOf) and shape.of is not None:
        return [Plan(x.mask, x.role + "x", shape.of)]
    if isinstance(x, (Const, Zeros)) and (isinstance(x, Zeros) or not np.any(x.value)):
        return [Zeros()]
    if isinstance(shape, Const) and np.all(shape.value == 1):
        return [x]  # expanding by ones changes nothing (PyTorch's repeat)
    raise r.unsupported("expected Expand of a mask plan index or of zeros")


def _constant_of_shape(r, node, args, attrs):
    value = r.array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
    if value.size != 1:
        raise FormatError(f"expected a one-element ConstantOfShape value, found shape {list(value.shape)}")
    if not np.any(value):
        return [Zeros()]
    if isinstance(args[0], ShapeOf):
        raise r.unsupported("expected ConstantOfShape of zeros for a run-time shape")
    shape = ints(args[0])
    if shape is not None:
        r.fold(shape, value.dtype)
        return [Const(np.full(shape, value.reshape(-1)[0]))]
    raise r.unsupported("expected ConstantOfShape of zeros or of a constant shape")


def _gather_elements(r, node, args, attrs):
    x, index = args
    if int(attrs.get("axis", 0)) == 1 and isinstance(index, Plan) and index.over is x:
        role = index.role
        x = r.as_ir(x) if role == "order^x" else x  # a masked recurrent layer's output feeding the next one
        if role == "order^x" and isinstance(x, IR):
            return [View("compact", x, mask=index.mask)]
        if role in ("idx_fwd^x", "idx_rev^x") and isinstance(x, Seq) and x.stage == "raw" and not x.time_major:
            reverse = role == "idx_rev^x"
            if reverse != x.rec.reversed(x.slot):
                raise r.unsupported("expected the plan index of the direction the node processes")
            if reverse:  # a reverse direction's expanded output is already Keras' (no zero-fill)
                return [Seq(x.rec, x.slot, False, x.flipped, "keras", False)]
            return [Seq(x.rec, x.slot, False, x.flipped, "expanded")]
    raise r.unsupported("expected GatherElements of gateport's masked-RNN plan (an index expanded to the shape of "
                        "the tensor it gathers from)")


def _where(r, node, args, attrs):
    cond, a, b = args
    if isinstance(cond, Plan) and cond.role == "empty^" and isinstance(b, State):
        return [b]  # an empty sequence keeps the initial state (Keras), where ONNX gives zeros
    if isinstance(a, Seq) and scalar(b) == 0 and a.stage in ("expanded", "keras"):
        zero = isinstance(cond, Plan) and cond.role == "mask^" or isinstance(cond, MaskRef) and cond.unsq
        started = isinstance(cond, Plan) and cond.role == "started^"
        if a.stage == "expanded" and (zero or started):
            return [Seq(a.rec, a.slot, False, a.flipped, "keras", zero)]
        if a.stage == "keras" and zero:
            return [Seq(a.rec, a.slot, False, a.flipped, "keras", True)]
    masked = _masking(r, node, cond, r.as_ir(a)) if scalar(b) == 0 else None
    if masked is not None:
        return [masked]
    raise r.unsupported("expected Where of gateport's masked-RNN plan or of Keras Masking")


def _masking(r, node, keep: Value, x: Value) -> IR | None:
    """``Where(keep, x, 0)``: Keras Masking (keras/src/layers/core/masking.py), with the mask it was given
    (``keep`` = the mask with a last axis added) or its own (``any(x != mask_value, -1, keepdims)``)."""
    if not isinstance(x, IR):
        return None
    if isinstance(keep, NotEqual) and keep.stage == "kd" and keep.x is x:
        return r.add("masking", [x.name], out_name(node), {"mask_value": keep.value}, rank=x.rank)
    if isinstance(keep, Plan) and keep.role == "mask^":
        mask = r.mask_name(keep.mask, out_name(node))
        producer = r.producer.get(mask)
        value = producer.options["value"] if producer is not None and producer.op == "mask_not_equal" \
            else 0.0
        return r.add("masking", [x.name, mask], out_name(node), {"mask_value": value}, mask=mask, rank=x.rank)
    return None


_PLAN_BINARY = {  # (op, left role or constant, right role or constant) -> role
    ("Sub", 1, "ones"): "skipped", ("Mul", "skipped", "steps"): "skipped_t", ("Add", "t", "skipped_t"): "keys",
    ("Sub", "count", 1): "count_1", ("Max", "count_1", 0): "idx_fwd", ("Sub", "count", "ones"): "idx_rev",
}


def plan_binary(op: str, a: Value, b: Value) -> Plan | None:
    def tag(v):
        return v.role if isinstance(v, Plan) else scalar(v)
    role = _PLAN_BINARY.get((op, tag(a), tag(b)))
    if role is None:
        return None
    mask = next(v.mask for v in (a, b) if isinstance(v, Plan))
    return Plan(mask, role)


HANDLERS = {
    "Equal": _equal,
    "Not": _not,
    "And": _logic("And", op="mask_and"),
    "Or": _logic("Or", op="mask_or"),
    "Greater": _greater,
    "CumSum": _cumsum,
    "Shape": _shape,
    "Range": _range,
    "Less": _less,
    "TopK": _topk,
    "Expand": _expand,
    "ConstantOfShape": _constant_of_shape,
    "GatherElements": _gather_elements,
    "Where": _where,
}
