"""ONNX ops around the recurrent nodes -> IR layers, one small function per op.

Layout ops (Transpose, Squeeze, Unsqueeze, Gather of one direction, Reshape of both, the time flip)
only change a symbolic value; ops that make a Keras-level computation add IR nodes: ``Gemm`` /
``MatMul(+Add)`` dense, ``Gather`` of a 2-D constant embedding, ``Conv`` between Transposes conv1d,
``Mul(+Add)`` by constants batch_norm, ``Tile`` of ``Unsqueeze`` repeat_vector, ``Concat`` / ``Add`` /
``Sub`` / ``Mul`` / ``Div`` / ``Max`` / ``Min`` merges (or Keras' Bidirectional merge of two
directions), activation ops, ``Flatten``, ``Reshape``, ``Identity``; ``LSTM`` / ``GRU`` / ``RNN``
start a :class:`converters.readers.onnx_recurrent.RecurrentNode`.
"""
from __future__ import annotations

import numpy as np

import math

from ..activations import ONNX_OPS, from_onnx_op, onnx_op_forms
from ..errors import FormatError, GateportError
from ..ir import Node
from ..sanitize import quote
from .onnx_mask_ops import mask_ir, plan_binary, reduce_sum_of_mask
from .onnx_recurrent import KINDS, RecurrentNode
from .onnx_tensors import type_name
from .onnx_values import (onnx_producer, IR, Const, Last, MaskRef, Merged, NotEqual, Pending, Plan, RecOut, Seq, ShapeOf, State,
                          TimeSteps, Value, View, Zeros, axes_of, ints, is_mask, onnx_consumers, out_name, rec_key, scalar)

ELEM = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 11: "float64"}
#: constant folding of the element-wise ops
_FOLD = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Max": np.maximum,
         "Min": np.minimum}
_INT64_MIN = np.iinfo(np.int64).min


#: element-wise activation ops: those of the activation table (converters/activations.py), and Softmax
_ACTIVATION_OPS = (*ONNX_OPS, "Softmax")


_MERGE_OPS = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Max": "maximum", "Min": "minimum"}


_REC_MERGES = {"Add": "sum", "Mul": "mul", "Concat": "concat"}


def _constant(r, node, args, attrs):
    if "value" in attrs:
        return [Const(r.array(attrs["value"]))]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return [Const(np.asarray(attrs[key], dtype=dtype))]
    raise r.unsupported(f"expected a tensor or number Constant, found attributes {sorted(attrs)}")


def _identity(r, node, args, attrs):
    x = args[0]
    if isinstance(x, IR):
        return [r.add("identity", [x.name], out_name(node), rank=x.rank)]
    return [x]


def _dropout(r, node, args, attrs):
    """Dropout at inference is the identity (onnx/docs/Operators.md Dropout: "If training_mode is false or not
    provided, or ratio is 0, the output is the input"; Dropout-7..10 run only in inference, ``ratio`` an
    attribute; Dropout-1/6 compute it only with ``is_test=1``). Refused: training_mode true or computed at run
    time (random zeros), the training-only mask output used, Dropout-1/6 without ``is_test``."""
    mask = node.output[1] if len(node.output) > 1 else ""
    if mask and (onnx_consumers(r, mask) or mask in {vi.name for vi in r.proto.graph.output}):
        raise r.unsupported(f"expected Dropout's mask output unused (it is drawn at random in training), found "
                            f"{quote(mask)} used")
    training = args[2] if len(args) > 2 else None
    if training is not None and not (isinstance(training, Const) and not training.value.any()):
        what = "true" if isinstance(training, Const) else f"computed at run time ({quote(node.input[2])})"
        raise r.unsupported(f"expected Dropout at inference (training_mode absent or a constant false), found "
                            f"training_mode {what}")
    if r.op_version < 7 and not int(attrs.get("is_test", 0)):
        raise r.unsupported("expected Dropout at inference (is_test=1 before opset 7), found is_test=0")
    return _identity(r, node, args[:1], attrs)


def _cast(r, node, args, attrs):
    if int(attrs["to"]) == 1 and (isinstance(args[0], (Seq, State, Last, Merged, RecOut))
                                  or isinstance(args[0], View) and args[0].kind == "time_major"):
        return [args[0]]  # float to float around a recurrent node (an input's time-major view, its outputs)
    x, to = r.as_ir(args[0]), ELEM.get(int(attrs["to"]))
    if to is None:
        raise r.unsupported(f"expected a Cast to float, double, int32, int64 or bool, found element type "
                            f"{type_name(int(attrs['to']))}")
    if isinstance(x, Const):
        r.fold(x.value.shape, to)
        return [Const(x.value.astype(to))]
    if isinstance(x, NotEqual) and to == "int64" and x.stage == "mask" and not x.reduce:
        return [Plan(x, "ones")]  # either the reduce pattern's cast or a mask plan's "ones"
    if is_mask(x) and to in ("int64",):
        return [Plan(x, "ones")]
    if is_mask(x) and to == "float32":
        return [MaskRef(r.mask_name(x, out_name(node)), float_=True)]
    if isinstance(x, Plan) and x.role == "mask^" and to == "float32":
        return [MaskRef(r.mask_name(x.mask, out_name(node)), float_=True, unsq=True)]
    if isinstance(x, NotEqual) and x.stage == "kd" and to == "float32":
        return [NotEqual(x.x, x.value, True, "kd_float", True)]
    if isinstance(x, Plan) and x.role == "len64" and to == "int32":
        return [Plan(x.mask, "len")]
    if isinstance(x, IR):
        if to == x.dtype or (to.startswith("float") and x.dtype.startswith("float")):
            return [x]
        if to.startswith("int") and x.dtype.startswith("float"):
            return [View("int", x)]
        if to.startswith("int") and x.dtype.startswith("int"):
            return [x]  # token ids stay ids
    raise r.unsupported(f"expected a Cast gateport's writer emits, found a {x.what} cast to {to}")


def _rec_part(v) -> bool:
    """``v`` can be one direction inside a Keras Bidirectional merge (onnx_values.part): a sequence, a last output
    or a final h. A cell state c is no Bidirectional output: Concatenate([fc, bc]) (a bidirectional encoder's
    states starting a decoder) is a plain concatenation."""
    return isinstance(v, (Seq, State, Last)) and (not isinstance(v, Seq) or v.stage == "keras") and \
        (not isinstance(v, State) or v.k == 0)


def _folded(r, op: str, values: list[np.ndarray]) -> Const:
    """``op`` of constants, computed once its broadcast shape is within the budget."""
    shape = np.broadcast_shapes(*(v.shape for v in values))
    r.fold(shape, np.result_type(*values))
    out = values[0]
    for v in values[1:]:
        out = _FOLD[op](out, v)
    return Const(np.asarray(out))


def _binary(r, node, args, attrs):
    op = node.op_type
    if len(args) != 2:  # Max / Min of one or of three and more inputs
        return [_variadic(r, node, args)]
    a, b = args
    if op in ("Add", "Mul") and isinstance(a, Const) and not isinstance(b, Const):
        a, b = b, a  # commutative: the constant second
    plan = plan_binary(op, a, b) if isinstance(a, Plan) or isinstance(b, Plan) else None
    if plan is not None:
        return [plan]
    if isinstance(a, Const) and isinstance(b, Const):
        return [_folded(r, op, [a.value, b.value])]
    if op in _REC_MERGES and _rec_part(a) and _rec_part(b) and a.rec is b.rec:
        return [Merged(a.rec, _REC_MERGES[op], (a, b))]
    if op == "Add" and isinstance(b, Const) and isinstance(a, Pending) and a.kind == "matmul":
        x, w = a.args
        return [_dense(r, node, x, w, b.value)]
    if op == "Add" and isinstance(b, Const) and isinstance(a, Pending) and a.kind == "scale":
        x, (axis, scale) = a.args
        shift = r.channel_vector(x, b.value)
        if shift is not None and shift[0] == axis and shift[1].shape == scale.shape:
            return [r.batch_norm(x, axis, scale, shift[1], out_name(node))]
    a, b = r.as_ir(a), r.as_ir(b)
    if op == "Mul":
        masked = _masking(r, node, a, b) or _masking(r, node, b, a)
        if masked is not None:
            return [masked]
        swish = _swish(r, node, a, b) or _swish(r, node, b, a)
        if swish is not None:
            return [swish]
        if isinstance(a, IR) and isinstance(b, Const):
            by_one = _by_one_number(r, node, op, a, b)
            return [by_one] if by_one is not None else [Pending("scale", (a, _per_channel(r, op, a, b.value)))]
    if op == "Add" and isinstance(a, IR) and isinstance(b, Const):
        by_one = _by_one_number(r, node, op, a, b)
        if by_one is not None:
            return [by_one]
        axis, shift = _per_channel(r, op, a, b.value)
        return [r.batch_norm(a, axis, None, shift, out_name(node))]
    names = [r.tensor(v, out_name(node)) for v in (a, b)]
    _check_broadcast(r, op, names)
    return [r.add(_MERGE_OPS[op], names, out_name(node), rank=r.ranks.get(names[0]))]


def _by_one_number(r, node, op: str, a: IR, b: Const) -> IR | None:
    """``a * c`` / ``a + c`` of one float number where ``a``'s last axis has no known size (attention's scores
    ``[batch, T, T]`` scaled): the IR's element-wise ``scalar`` op; None where a per-channel constant is read
    (a known last axis: batch_norm, as before)."""
    if b.value.size != 1 or b.value.ndim > 1 or b.value.dtype.kind != "f" or r.channel_vector(a, b.value) is not None:
        return None
    value = float(b.value.reshape(-1)[0])
    if not math.isfinite(value):
        raise r.unsupported(f"expected {op} by a finite number, found {value!r}")
    return r.add("scalar", [a.name], out_name(node), {"operation": "multiply" if op == "Mul" else "add",
                                                      "value": value}, rank=a.rank)


def _check_broadcast(r, op: str, names: list[str]) -> None:
    """FormatError when the known sizes of the merged tensors cannot broadcast (ONNX would fail)."""
    shapes = [r.shapes.get(n) for n in names]
    if any(s is None for s in shapes):
        return
    for dims in zip(*(s[::-1] for s in shapes)):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise FormatError(f"{op} of tensors of shapes {[['batch', *s] for s in shapes]} that do not broadcast")


def _per_channel(r, op: str, x: IR, c: np.ndarray) -> tuple[int, np.ndarray]:
    """:meth:`OnnxReader.channel_vector` of ``x <op> c``, or the refusal saying why it is not one."""
    found = r.channel_vector(x, c)
    if found is None:
        raise r.unsupported(f"expected {op} of a tensor by one number per channel (a constant of shape (C,) "
                            f"or (C, 1, ...) on an axis of C channels, or a scalar on a last axis of known size), "
                            f"found a {c.dtype} constant of shape {list(c.shape)}; a batch_norm would not "
                            f"compute it exactly")
    return found


def _variadic(r, node, args):
    """Max / Min of any number of inputs (Max-8: Numpy-style broadcasting)."""
    if any(a is None for a in args):
        raise r.unsupported("expected every input of Max/Min given")
    if all(isinstance(a, Const) for a in args):
        return _folded(r, node.op_type, [a.value for a in args])
    if len(args) == 1:
        return args[0]  # the maximum of one tensor is itself
    names = [r.tensor(r.as_ir(a), out_name(node)) for a in args]
    _check_broadcast(r, node.op_type, names)
    return r.add(_MERGE_OPS[node.op_type], names, out_name(node), rank=r.ranks.get(names[0]))


def _bias(c: np.ndarray, units: int, rank: int | None) -> np.ndarray | None:
    """``c`` as the bias of ``units`` outputs when adding it broadcasts exactly that way: one float per
    unit (leading 1s allowed, no more axes than the output) or one float; else None."""
    if c.dtype.kind != "f" or c.ndim > (rank if rank is not None else 1):
        return None
    if c.size == 1:
        return np.full(units, c.reshape(-1)[0], c.dtype)
    dims = [d for d in c.shape]
    while dims and dims[0] == 1:
        dims.pop(0)
    return c.reshape(-1) if dims == [units] else None


def _dense(r, node, x: IR, w: np.ndarray, c: np.ndarray | None) -> IR:
    """``x @ w.T (+ c)`` as a dense layer; ``c`` must be a per-unit bias."""
    units = int(w.shape[0])
    bias = None
    if c is not None:
        bias = _bias(c, units, x.rank or r.ranks.get(x.name))
        if bias is None:
            raise r.unsupported(f"expected a bias of one float per unit ({units},) (or one float), found a "
                                f"{c.dtype} constant of shape {list(c.shape)}")
    return r.add("dense", [x.name], out_name(node), {"units": units, "activation": "linear",
                                                     "use_bias": bias is not None},
                 {"weight": w, **({"bias": bias} if bias is not None else {})}, rank=x.rank)


def _masking(r, node, x, m) -> IR | None:
    """``x * mask[..., None]``: Keras Masking (with its mask, or recomputed from ``mask_value``)."""
    if not isinstance(x, IR):
        return None
    if isinstance(m, NotEqual) and m.stage == "kd_float" and m.x is x:
        return r.add("masking", [x.name], out_name(node), {"mask_value": m.value}, rank=x.rank)
    if isinstance(m, MaskRef) and m.float_ and m.unsq:
        mask_node = r.producer.get(m.name)
        value = mask_node.options["value"] if mask_node is not None and \
            mask_node.op == "mask_not_equal" else 0.0
        return r.add("masking", [x.name, m.name], out_name(node), {"mask_value": value}, mask=m.name, rank=x.rank)
    return None


def _swish(r, node, x, s) -> IR | None:
    if isinstance(x, IR) and isinstance(s, IR):
        p = r.producer.get(s.name)
        if p is not None and p.op == "activation" and p.options.get("activation") == "sigmoid" \
                and p.inputs == [x.name]:
            return r.add("activation", [x.name], out_name(node), {"activation": "swish"}, rank=x.rank)
    return None


def _div(r, node, args, attrs):
    a, b = args
    n = scalar(b)
    if isinstance(a, Merged) and a.mode == "sum" and n == 2:
        return [Merged(a.rec, "ave", a.parts)]
    a = r.as_ir(a)
    if isinstance(a, IR) and n is not None:
        p = r.producer.get(a.name)
        if p is not None and p.op == "add" and len(_flat_add_inputs(r, p)) == n:
            return [r.add("average", _flat_add_inputs(r, p), out_name(node), rank=a.rank)]
    if isinstance(a, Const) and isinstance(b, Const):
        return [_folded(r, "Div", [a.value, b.value])]
    if isinstance(a, IR) and isinstance(b, Const) and n is not None and b.value.ndim <= 1 \
            and b.value.dtype.kind == "f":  # attention's scores / sqrt(d): element-wise by one number
        if not math.isfinite(n) or n == 0.0:
            raise r.unsupported(f"expected Div by a finite non-zero number, found {n!r}")
        return [r.add("scalar", [a.name], out_name(node), {"operation": "divide", "value": n}, rank=a.rank)]
    b = r.as_ir(b)
    if isinstance(a, IR) and isinstance(b, IR) and r.ranks.get(a.name, a.rank) == r.ranks.get(b.name, b.rank):
        _check_broadcast(r, "Div", [a.name, b.name])  # a masked sum by its count: element-wise, broadcast
        return [r.add("binary", [a.name, b.name], out_name(node), {"operation": "divide"}, rank=a.rank)]
    raise r.unsupported("expected Div of a sum by its number of terms (Keras Average), of a tensor by a number, or "
                        "of two tensors of one rank")


def _flat_add_inputs(r, p: Node) -> list[str]:
    """The terms of a left-folded chain of adds."""
    first = r.producer.get(p.inputs[0])
    if first is not None and first.op == "add":
        return _flat_add_inputs(r, first) + p.inputs[1:]
    return list(p.inputs)


def _gather(r, node, args, attrs):
    data, index = args
    axis = int(attrs.get("axis", 0))
    i = ints(index)
    if isinstance(data, Const) and isinstance(index, Const):
        d = data.value.shape
        r.fold(d[:axis % max(len(d), 1)] + index.value.shape + d[axis % max(len(d), 1) + 1:], data.value.dtype)
        return [Const(np.take(data.value, index.value, axis=axis))]
    if isinstance(data, Const) and data.value.ndim == 2 and axis == 0:
        ids = index.of if isinstance(index, View) and index.kind == "int" else r.as_ir(index)
        if isinstance(ids, IR):
            return [r.add("embedding", [ids.name], out_name(node),
                          {"input_dim": int(data.value.shape[0]), "output_dim": int(data.value.shape[1])},
                          {"embeddings": data.value}, rank=(ids.rank or 2) + 1)]
    if isinstance(data, Plan) and data.role == "shape" and i == [1]:
        return [Plan(data.mask, "steps1d")]
    if isinstance(data, RecOut) and i is not None and len(i) == 1 and index.value.ndim == 0:
        return [_select_direction(r, data, axis, i[0])]
    if isinstance(data, Seq) and data.stage == "keras" and not data.time_major and axis == 1 and i is not None \
            and index.value.ndim == 0 and _is_last(data, i[0]):
        return [_last(r, data, i[0])]
    if i is not None and index.value.ndim == 0:
        step = _one_step(r, node, data, axis, i[0])
        if step is not None:
            return [step]
    raise r.unsupported(f"expected Gather of an embedding, a recurrent direction or a last step, found "
                        f"Gather of a {data.what}")


_REDUCE_MODES = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min"}


def _reduce(r, node, args, attrs):
    """``ReduceMean/Sum/Max/Min`` of a float tensor over axes other than the batch: the IR's ``reduce``
    (PyTorch's ``out.mean(dim=1)`` after a recurrent layer; ``ReduceSum`` of a mask is the masked plan's,
    onnx_mask_ops.py). ``axes`` an attribute (before -13, -18 for Mean/Max/Min) or an input; none given
    reduces every axis (the batch too: refused) or, with ``noop_with_empty_axes`` (-13/-18 on), nothing."""
    if node.op_type == "ReduceSum":
        found = reduce_sum_of_mask(r, node, args, attrs)
        if found is not None:
            return found
    axes, keepdims = axes_of(node, args, attrs), bool(attrs.get("keepdims", 1))
    moved = _batch_first(args[0])
    # a time-major value (onnxruntime's transpose optimizer pushes torch's Transpose back to batch-first through
    # out.mean(dim=1), whose axes become [0]: onnxruntime/core/optimizer/transpose_optimization): the reduce of its
    # batch-first value over the same axes, time and batch swapped
    time_major = moved is not None and bool(axes)
    x = r.as_ir(moved if time_major else args[0])
    rank = r.ranks.get(x.name, x.rank) if isinstance(x, IR) else None
    if not isinstance(x, IR) or x.dtype != "float32" or rank is None:
        if time_major:
            raise r.unsupported(f"expected {node.op_type} of a time-major float tensor of known rank, found a "
                                f"{x.what}")
        also = " or of a mask (Keras Masking, a masked RNN's lengths)" if node.op_type == "ReduceSum" else ""
        raise r.unsupported(f"expected {node.op_type} of a float tensor of known rank{also}, found a {args[0].what}")
    if not axes:
        if int(attrs.get("noop_with_empty_axes", 0)) and len(args) < 2:
            return [x]
        raise r.unsupported(f"expected {node.op_type} over axes other than the batch, found every axis")
    if any(not -rank <= a < rank for a in axes):
        raise FormatError(f"{node.op_type} axes {axes} out of range for a tensor of rank {rank}")
    swap = {0: 1, 1: 0} if time_major else {}
    keras_axes = sorted({swap.get(a % rank, a % rank) for a in axes})
    if keras_axes[0] == 0 or len(keras_axes) != len(axes):
        batch = "axis 1 of a time-major tensor" if time_major else "axis 0"
        raise r.unsupported(f"expected {node.op_type} over distinct axes other than the batch ({batch}), found {axes}")
    out_rank = rank if keepdims else rank - len(keras_axes)
    out = r.add("reduce", [x.name], out_name(node), {"mode": _REDUCE_MODES[node.op_type], "axes": keras_axes,
                                                       "keepdims": keepdims}, rank=out_rank)
    # still time-major unless time was reduced away
    return [View("time_major", out)] if time_major and (keepdims or 1 not in keras_axes) else [out]


def _batch_first(v: Value) -> Value | None:
    """The batch-first value of a time-major one (a recurrent sequence, both directions merged, a tensor
    seen time-major), else None."""
    if isinstance(v, View) and v.kind == "time_major" and isinstance(v.of, IR):
        return v.of
    if isinstance(v, Seq) and v.time_major:
        return _transposed(v)
    if isinstance(v, Merged) and v.time_major:
        return Merged(v.rec, v.mode, tuple(_transposed(p) for p in v.parts), False)
    return None


def _select_direction(r, y: RecOut, axis: int, slot: int) -> Value:
    rec = y.rec
    slot = slot % rec.n_dirs
    if y.perm is not None:
        raise r.unsupported("expected one direction taken from the recurrent output as ONNX returns it")
    if y.k is None:  # Y: layout 0 [T, dirs, B, H], layout 1 [B, T, dirs, H]
        if axis != (1 if rec.layout == 0 else 2):
            raise r.unsupported(f"expected Gather on the directions axis of Y, found axis {axis}")
        return Seq(rec, slot, rec.layout == 0, rec.input_flipped, *_y_stage(rec))
    if axis != (0 if rec.layout == 0 else 1):  # states: layout 0 [dirs, B, H], layout 1 [B, dirs, H]
        raise r.unsupported(f"expected Gather on the directions axis of a state, found axis {axis}")
    return State(rec, slot, y.k)


def _y_stage(rec) -> tuple[str, bool | None]:
    """(stage, zero) of the ``Y`` ONNX returns: compacted when the node reads a compacted (masked) input;
    Keras' masked output with zero_output_for_mask when its mask is ``sequence_lens`` (``Y`` is zero past
    each length and aligned to input time, onnx/docs/Operators.md LSTM); else Keras' output."""
    if rec.mask is None:
        return "keras", None
    return ("keras", True) if rec.lengths else ("raw", None)


def _is_last(seq: Seq, index: int) -> bool:
    """``index`` (-1 or 0) is the step the direction processed last (its Keras last output); never with
    ``sequence_lens``, where a short sample's step -1 is a zero past its length (read as a slice)."""
    if seq.rec.lengths:
        return False
    processed_last_at_end = seq.rec.reversed(seq.slot) == seq.flipped
    return index == (-1 if processed_last_at_end else 0)


def _one_step(r, node, data: Value, axis: int, index: int) -> Value | None:
    """``data[:, index]`` of a batch-first sequence (``data[index]`` of a time-major one, PyTorch's
    ``h_n[-1]`` of the layers' states too): an IR ``slice`` taking the one entry (axis dropped), or None.

    What PyTorch models take after a recurrent layer: ``out[:, -1]`` of a bidirectional output is the
    forward direction's last output beside the backward direction's output at the last step (its first
    processed), which no Keras Bidirectional returns alone; ``h_n[-1]`` is the last layer's last direction.
    """
    time_major = isinstance(data, View) and data.kind == "time_major" or \
        isinstance(data, (Seq, Merged)) and data.time_major
    if axis != (0 if time_major else 1):
        return None
    if isinstance(data, View) and data.kind == "time_major":
        data = data.of
    elif isinstance(data, Seq) and data.time_major:
        data = Seq(data.rec, data.slot, False, data.flipped, data.stage, data.zero)
    elif isinstance(data, Merged) and data.time_major:
        data = Merged(data.rec, data.mode, data.parts, False)
    if isinstance(data, Seq) and data.stage != "keras" or isinstance(data, Merged) and not (
            isinstance(data.parts[0], Seq) and all(p.stage == "keras" for p in data.parts)):
        return None
    x = r.as_ir(data)
    if not isinstance(x, IR) or r.ranks.get(x.name, x.rank) != 3:
        return None
    step = r.add("slice", [x.name], out_name(node), {"axis": 1, "index": int(index)}, rank=2)
    if isinstance(data, Merged) and data.mode == "concat" and all(isinstance(p, Seq) for p in data.parts):
        r.merged_steps[step.name] = ([Seq(p.rec, p.slot, False, p.flipped, p.stage, p.zero) for p in data.parts],
                                     int(index))
    return step


def _direction_of_step(r, node, x: Value, starts, ends, axes, steps) -> Value | None:
    """One direction's half of one step of a bidirectional sequence (PyTorch's ``torch.cat((out[:, -1, :H],
    out[:, 0, H:]), 1)``: the forward direction's last output beside the backward one's): that direction's
    output at the step, its last output (the state Keras returns) when it is the step it processed last."""
    found = r.merged_steps.get(x.name) if isinstance(x, IR) else None
    if found is None or axes not in ([1], [-1]) or (steps or [1]) != [1]:
        return None
    parts, index = found
    h = parts[0].rec.hidden
    half = 0 if (starts[0], ends[0]) == (0, h) else 1 if starts[0] == h and ends[0] >= 2 * h else None
    if half is None:
        return None
    part = parts[half]
    if _is_last(part, index):
        return _last(r, part, index)
    return r.add("slice", [r.as_ir(part).name], out_name(node), {"axis": 1, "index": index}, rank=2)


def _last(r, seq: Seq, index: int) -> Value:
    """``y[:, index]`` of a direction: its last output when ``index`` is the step it processed last."""
    if not _is_last(seq, index):
        raise r.unsupported(f"expected the step a direction processed last, found step {index}")
    return Last(seq.rec, seq.slot, seq.zero)


def _squeeze(r, node, args, attrs):
    x, axes = args[0], axes_of(node, args, attrs)
    if isinstance(x, Const):
        return [Const(np.squeeze(x.value, axis=tuple(axes) if axes else None))]
    rank = (4 if x.k is None else 3) if isinstance(x, RecOut) else r.ranks.get(x.name, x.rank) \
        if isinstance(x, IR) else None
    if axes and rank is not None:  # negative axes count from the end (Squeeze-11+): Squeeze(Y, -3)
        axes = [a + rank if a < 0 else a for a in axes]
    if isinstance(x, View) and x.kind == "time_major" and isinstance(x.of, IR) and axes in ([0], [-x.of.rank]) \
            and x.of.rank and r.dim(x.of.name, 1) == 1:
        # [1, batch, ...] seen time-major (a Reduce over time that kept it, _reduce_time_major): batch-first
        rest = [r.dim(x.of.name, k) for k in range(2, x.of.rank)]
        if None not in rest:
            return [r.add("reshape", [x.of.name], out_name(node), {"shape": rest}, rank=x.of.rank - 1)]
    if isinstance(x, IR) and axes and 0 not in axes and rank is not None and all(0 < a < rank for a in axes):
        dims = [r.dim(x.name, k) for k in range(1, rank)]
        if all(dims[a - 1] == 1 for a in axes) and None not in dims:  # Linear(n, 1) -> squeeze(-1): a reshape
            rest = [d for k, d in enumerate(dims, start=1) if k not in axes]
            return [r.add("reshape", [x.name], out_name(node), {"shape": rest}, rank=rank - len(set(axes)))]
        raise r.unsupported(f"expected Squeeze of axes of size 1 (batch axis kept), found axes {axes} of a tensor "
                            f"of shape {['batch', *dims]}")
    if isinstance(x, Plan) and x.role == "steps1d" and axes == [0]:
        return [Plan(x.mask, "steps")]
    if isinstance(x, NotEqual) and x.stage == "kd" and axes in ([2], [-1]):
        return [NotEqual(x.x, x.value, True, "mask", False)]  # Keras Masking's mask, its last axis dropped
    if isinstance(x, RecOut) and x.perm is None and x.rec.n_dirs == 1 and axes and len(axes) == 1:
        return [_select_direction(r, x, axes[0], 0)]
    if not axes:
        raise r.unsupported(f"expected Squeeze with its axes given (without them it drops every axis of size 1, "
                            f"the batch too when it is 1), found none on a {x.what}")
    raise r.unsupported(f"expected Squeeze of one direction's output, found Squeeze of a {x.what}")


def _unsqueeze(r, node, args, attrs):
    x, axes = args[0], axes_of(node, args, attrs)
    if not isinstance(x, (Plan, MaskRef, NotEqual, TimeSteps)):
        x = r.as_ir(x)
    if isinstance(x, Const):
        return [Const(np.expand_dims(x.value, tuple(axes)))]
    if isinstance(x, Plan) and axes in ([1], [2], [-1]):
        return [Plan(x.mask, x.role + "^")]
    if isinstance(x, TimeSteps) and not x.row and axes == [0]:
        return [TimeSteps(x.of, True)]
    if is_mask(x) and axes in ([2], [-1]):
        return [Plan(x, "mask^")]
    if isinstance(x, MaskRef) and x.float_ and axes in ([2], [-1]):
        return [MaskRef(x.name, True, True)]
    if isinstance(x, IR) and axes == [1]:
        return [View("unsqueeze1", x)]
    if isinstance(x, IR) and axes == [0]:
        return [View("unsqueeze0", x)]
    rank = r.ranks.get(x.name, x.rank) if isinstance(x, IR) else None
    if rank is not None and axes:  # size-1 axes inserted after the batch (torch's mask.unsqueeze(-1),
        out_rank = rank + len(axes)  # h.unsqueeze(2) before a bmm): Keras Reshape, the batch kept
        put = {a + out_rank if a < 0 else a for a in axes}
        dims = iter([r.dim(x.name, k) for k in range(1, rank)])
        shape = [1 if k in put else next(dims) for k in range(1, out_rank)] if len(put) == len(axes) \
            and all(0 < a < out_rank for a in put) else None
        if shape is not None and sum(d is None for d in shape) <= 1:
            return [r.add("reshape", [x.name], out_name(node), {"shape": [-1 if d is None else d for d in shape]},
                          rank=out_rank)]
        raise r.unsupported(f"expected Unsqueeze after the batch axis of a tensor whose sizes but one are known, "
                            f"found Unsqueeze {axes} of a tensor of shape {['batch', *shape] if shape else rank}")
    raise r.unsupported(f"expected Unsqueeze gateport's writer emits, found Unsqueeze {axes} of a {x.what}")


def _transpose(r, node, args, attrs):
    x, perm = args[0], tuple(int(p) for p in attrs.get("perm", ()))
    if isinstance(x, Const):
        return [Const(np.transpose(x.value, perm or None))]
    if perm == (1, 0, 2):
        if isinstance(x, View) and x.kind == "channels_first" and isinstance(x.of, IR) \
                and r.ranks.get(x.of.name, x.of.rank) == 3:  # a Permute((2, 1)), then a recurrent layer's
            x = IR(r.tensor(x, out_name(node) + "/permuted"), 3)  # time-major Transpose (tf2onnx keeps both)
        if isinstance(x, IR) or isinstance(x, View) and x.kind in ("compact", "flipped"):
            return [View("time_major", x)]
        if isinstance(x, View) and x.kind == "time_major":
            return [x.of]
        if isinstance(x, Seq):
            return [Seq(x.rec, x.slot, not x.time_major, x.flipped, x.stage, x.zero)]
        if isinstance(x, Merged):
            parts = tuple(_transposed(p) for p in x.parts)
            return [Merged(x.rec, x.mode, parts, not x.time_major)]
    if perm == (0, 2, 1):
        x = x if isinstance(x, Pending) and x.kind == "conv" else r.as_ir(x)
        if isinstance(x, IR):
            return [View("channels_first", x)]
        if isinstance(x, Pending) and x.kind == "conv":
            return [_conv1d(r, node, *x.args)]
    if perm == (1, 2, 0) and _batch_first(x) is not None:  # time-major [time, batch, C] -> [batch, C, time] at
        moved = r.as_ir(_batch_first(x))  # once (torch folds y.transpose(0, 1).transpose(1, 2) into one): the
        if isinstance(moved, IR):  # batch-first tensor's Transpose [0, 2, 1]
            return [View("channels_first", moved)]
    if perm == (2, 0, 1):  # channels-first [batch, channels, time] -> time-major [time, batch, channels] at once:
        # tf2onnx folds a Conv1D's Transpose back to channels-last into the next recurrent layer's time-major one
        if isinstance(x, Pending) and x.kind == "conv":
            return [View("time_major", _conv1d(r, None, *x.args))]
        if isinstance(x, View) and x.kind == "channels_first" and isinstance(x.of, IR) \
                and r.ranks.get(x.of.name, x.of.rank) == 3:
            return [View("time_major", x.of)]
    if isinstance(x, RecOut) and x.k is None and x.perm is None and x.rec.layout == 0 \
            and perm in ((0, 2, 1, 3), (2, 0, 1, 3)):
        return [RecOut(x.rec, None, perm)]
    if isinstance(x, RecOut) and x.k is not None and x.perm is None and x.rec.layout == 0 and perm == (1, 0, 2):
        return [RecOut(x.rec, x.k, perm)]  # a state [dirs, batch, hidden] made batch-first
    raise r.unsupported(f"expected a Transpose between Keras and ONNX layouts, found perm {list(perm)} of a "
                        f"{x.what}")


def _transposed(v: Value) -> Value:
    """A direction's sequence in the other layout (time-major <-> batch-first)."""
    return Seq(v.rec, v.slot, not v.time_major, v.flipped, v.stage, v.zero) if isinstance(v, Seq) else v


def _reshape(r, node, args, attrs):
    x, shape = args[0], ints(args[1])
    if is_mask(x):
        return [_folded_mask(r, node, x, shape)]
    x = x if isinstance(x, RecOut) else r.as_ir(x)
    allowzero = int(attrs.get("allowzero", 0))  # Reshape-14: 1 makes a 0 a zero-size axis, not a copy
    folded = _time_fold(r, node, x, shape) if isinstance(x, IR) and not allowzero else None
    if folded is not None:
        return [folded]
    if shape is None:
        raise r.unsupported("expected Reshape to a constant shape")
    if any(s < -1 for s in shape) or shape.count(-1) > 1 or allowzero and 0 in shape and -1 in shape:
        raise FormatError(f"expected a Reshape shape of sizes, 0 and at most one -1, found {shape}")
    if isinstance(x, Const):
        return [Const(x.value.reshape([s if s or allowzero else x.value.shape[k] for k, s in enumerate(shape)]))]
    if allowzero and 0 in shape:
        raise r.unsupported(f"expected Reshape without zero-size axes, found shape {shape} with allowzero=1")
    if isinstance(x, IR) and x.rank == 2 and len(shape) == 3 and shape[0] == 1 and shape[1] == -1 \
            and shape[2] == r.dim(x.name, 1):  # keras2onnx's initial state [1, batch, hidden]
        return [View("unsqueeze0", x)]
    if isinstance(x, IR) and shape and shape[0] == 0:
        rest = [s if s else r.dim(x.name, k) for k, s in enumerate(shape[1:], start=1)]
        if None in rest:
            raise r.unsupported(f"expected Reshape copying (0) only axes of known size, found shape {shape}")
        return [r.add("reshape", [x.name], out_name(node), {"shape": rest}, rank=len(shape))]
    if isinstance(x, RecOut) and x.k is not None:
        return [_joined_states(r, node, x, shape)]
    if isinstance(x, RecOut) and x.k is None and x.perm is None and _same_y_shape(r, x.rec, shape):
        return [x]  # keras2onnx's Reshape(Y, [time, dirs, -1, hidden]): Y unchanged
    if isinstance(x, RecOut) and x.k is None and len(shape) == 3 and shape[2] in (-1, x.rec.n_dirs * x.rec.hidden):
        rec = x.rec
        batch_time = x.perm == (2, 0, 1, 3) or (x.perm is None and rec.layout == 1)
        # one direction's Y [time, 1, batch, hidden] is laid out as [time, batch, hidden] already
        time_batch = x.perm == (0, 2, 1, 3) or (x.perm is None and rec.layout == 0 and rec.n_dirs == 1)
        steps = r.dim(rec.x, 1)  # keras2onnx writes the fixed time in: [-1, time, units]
        if batch_time and shape[0] == -1 and steps is not None and shape[1] == steps:
            shape = [-1, 0, shape[2]]
        t_at = 1 if batch_time else 0
        if (batch_time or time_batch) and steps is not None and shape[t_at] == steps and shape[2] > 0 \
                and shape[1 - t_at] > 0:  # sizes written out (onnx-simplifier, a fixed-shape export): with the
            shape = [0, 0, shape[2]]  # time and the width those of Y, the element count makes the other the batch
        if (batch_time or time_batch) and shape[0] in (0, -1) and shape[1] in (0, -1) and shape[:2] != [-1, -1]:
            seqs = [Seq(rec, s, time_batch, rec.input_flipped, *_y_stage(rec)) for s in range(rec.n_dirs)]
            return [seqs[0] if rec.n_dirs == 1 else Merged(rec, "concat", tuple(seqs), time_batch)]
    raise r.unsupported(f"expected Reshape keeping the batch axis, found shape {shape} of a {x.what}")


def _time_fold(r, node, x: IR, shape: list[int] | None) -> IR | None:
    """TimeDistributed's folds as gateport writes them (onnx_layers.fold_time_to_onnx / unfold_time_to_onnx):
    ``x (b, outer, *rest)`` to ``[-1, *rest]`` (constant, or ``Concat([-1], Shape(x)[2:])``) is fold_time;
    ``y`` to ``Concat(Shape(s)[:2], Shape(y)[1:])`` is unfold_time with ``s``'s batch and outer sizes."""
    if shape is not None:
        sizes = [r.dim(x.name, k) if s == 0 else s for k, s in enumerate(shape)]
        rest = [r.dim(x.name, k) for k in range(2, x.rank or 0)]
        if x.rank and x.rank >= 3 and shape[0] == -1 and None not in rest and sizes[1:] == rest:
            return r.add("fold_time", [x.name], out_name(node), rank=x.rank - 1)
        return None
    cat = onnx_producer(r, node.input[1])
    if cat is None or cat.op_type != "Concat" or len(cat.input) != 2 or not x.rank:
        return None
    big = np.iinfo(np.int64).max
    if ints(r.env.get(cat.input[0])) == [-1] and _shape_slice(r, cat.input[1]) == (node.input[0], 2, big) \
            and x.rank >= 3:
        return r.add("fold_time", [x.name], out_name(node), rank=x.rank - 1)
    outer = _shape_slice(r, cat.input[0])
    source = r.env.get(outer[0]) if outer and outer[1:] == (0, 2) else None
    source = r.as_ir(source) if source is not None else None
    if isinstance(source, IR) and source.rank and source.rank >= 3 and x.rank >= 2 \
            and _shape_slice(r, cat.input[1]) == (node.input[0], 1, big):
        return r.add("unfold_time", [x.name, source.name], out_name(node), rank=x.rank + 1)
    return None


def _folded_mask(r, node, mask: Value, shape: list[int] | None) -> MaskRef:
    """TimeDistributed's fold of a ``(batch, outer, steps)`` mask (onnx_layers.fold_time_to_onnx on the mask a
    folded recurrent layer reads): ``Reshape(mask, Concat([-1], Shape(mask)[2:]))``, checked node by node."""
    x = mask_ir(r, mask, out_name(node))
    folded = _time_fold(r, node, x, shape) if x.rank == 3 and shape is None else None
    if folded is None or r.producer[folded.name].op != "fold_time":
        raise r.unsupported("expected a mask reshaped only by TimeDistributed's fold of a (batch, outer, steps) mask "
                            "(Reshape to Concat([-1], Shape(mask)[2:]))")
    return MaskRef(folded.name)


def _shape_slice(r, name: str) -> tuple | None:
    """``(tensor, start, end)`` when ``name`` is ``Slice(Shape(tensor), [start], [end])`` with constant bounds
    (an end past the rank as int64 max), else None."""
    sl = onnx_producer(r, name)
    if sl is None or sl.op_type != "Slice" or len(sl.input) != 3:
        return None
    shape = onnx_producer(r, sl.input[0])
    bounds = [ints(r.env.get(i)) for i in sl.input[1:]]
    if shape is None or shape.op_type != "Shape" or len(shape.attribute) or any(b is None or len(b) != 1
                                                                                for b in bounds):
        return None
    return shape.input[0], bounds[0][0], bounds[1][0]


def _same_y_shape(r, rec, shape: list[int]) -> bool:
    """``shape`` is layout-0 ``Y``'s own ``[time, dirs, batch, hidden]`` (0/-1 for run-time sizes)."""
    dims = [r.dim(rec.x, 1), rec.n_dirs, None, rec.hidden]  # the batch is never fixed in the IR
    return rec.layout == 0 and len(shape) == 4 and all(e in (0, -1) or e == d for e, d in zip(shape, dims))


def _declared_batch(r) -> int | None:
    """The batch size every graph input declares fixed (axis 0 of the batch-first inputs the reader takes), or
    None where any is symbolic or they differ: a size a fixed-shape export writes into its Reshapes."""
    sizes = {vi.type.tensor_type.shape.dim[0].dim_value if vi.type.tensor_type.shape.dim
             and vi.type.tensor_type.shape.dim[0].HasField("dim_value") else None
             for vi in r.proto.graph.input if vi.name in r.claimed}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def _joined_states(r, node, x: RecOut, shape: list[int] | None) -> Value:
    """A state ``[dirs, batch, hidden]`` (or ``[batch, dirs, hidden]``: layout 1, or Transpose(1, 0, 2)) as
    ``[batch, dirs * hidden]`` (Reshape to ``[-1, dirs * hidden]``; Flatten: ``shape`` None): one direction's
    state, or both concatenated forward first (keras2onnx's last output of a Bidirectional)."""
    rec = x.rec
    batch_first = x.perm == (1, 0, 2) or x.perm is None and rec.layout == 1
    width = rec.n_dirs * rec.hidden
    wanted = [[-1, width], [0, -1], [0, width]] if batch_first else [[-1, rec.hidden]] if rec.n_dirs == 1 else []
    batch = _declared_batch(r)
    if batch is not None:  # the batch written in (onnx-simplifier on a fixed-shape export): the graph's only one
        wanted += [[batch, width]] if batch_first else [[batch, rec.hidden]] if rec.n_dirs == 1 else []
    if shape not in wanted and not (shape is None and batch_first):
        raise r.unsupported(f"expected a state {'[batch, dirs, hidden]' if batch_first else '[dirs, batch, hidden]'} "
                            f"reshaped to [batch, dirs * hidden], found {'Flatten' if shape is None else shape}")
    states = [State(rec, s, x.k) for s in range(rec.n_dirs)]
    if rec.n_dirs == 1:
        return states[0]
    if x.k == 0:
        return Merged(rec, "concat", tuple(states))  # Keras' Bidirectional concat of the last outputs
    parts = [r.tensor(s, f"{out_name(node)}/{k}") for k, s in enumerate(states)]
    return r.add("concatenate", parts, out_name(node), {"axis": -1}, rank=2)


def _is_time_flip(starts, ends, axes, steps) -> bool:
    """``x[:, ::-1]``: Slice of axis 1 from its last element to before its first, step -1."""
    return axes == [1] and steps == [-1] and starts is not None and ends is not None \
        and (starts[0] == -1 or starts[0] >= 2**31 - 1) and ends[0] <= -(2**31)


def _slice(r, node, args, attrs):
    x = args[0]
    if r.op_version < 10:  # Slice-1: starts, ends, axes as attributes, no steps (Changelog Slice-1, -10)
        starts, ends, axes, steps = ([int(i) for i in attrs[k]] if k in attrs else None
                                     for k in ("starts", "ends", "axes", "steps"))
    else:
        starts, ends, axes, steps = (ints(a) if a is not None else None for a in (args + [None] * 5)[1:5])
    if starts is None or ends is None or len(starts) != len(ends) or axes is not None and len(axes) != len(starts) \
            or steps is not None and (len(steps) != len(starts) or 0 in steps):
        raise r.unsupported(f"expected Slice with constant starts, ends, axes and non-zero steps of one length, "
                            f"found {starts}, {ends}, {axes}, {steps}")
    if isinstance(x, Plan) and x.role == "shape" and starts == [2] and ends == [np.iinfo(np.int64).max] \
            and axes in (None, [0]) and steps in (None, [1]):
        return [ShapeOf(None)]  # a mask's sizes past its outer axis, for its fold (_folded_mask)
    if isinstance(x, Const) and starts is not None and ends is not None:
        axes = axes or list(range(len(starts)))
        steps = steps or [1] * len(starts)
        index = [slice(None)] * x.value.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            index[a] = slice(s, e, st)
        return [Const(x.value[tuple(index)])]
    if _is_time_flip(starts, ends, axes, steps):
        if isinstance(x, Seq) and not x.time_major:
            return [Seq(x.rec, x.slot, False, not x.flipped, x.stage, x.zero)]
        if isinstance(x, IR) and x.rank == 3:
            return [View("flipped", x)]
    if _stacked(r, x) is not None and axes == [0] and (steps or [1]) == [1]:  # x[a:b] of [n, batch, ...]
        start, stop, _ = slice(starts[0], ends[0]).indices(_stacked(r, x))
        if stop > start:
            return [_stacked_part(r, x, start, stop, out_name(node))]
    if isinstance(x, Merged) and x.mode == "concat" and not x.time_major and starts and ends and axes \
            and axes[0] in (2, -1) and (steps or [1]) == [1]:
        h = x.rec.hidden
        if starts[0] == 0 and ends[0] == h:
            return [x.parts[0]]
        if starts[0] == h and ends[0] >= 2 * h:
            return [x.parts[1]]
    half = _direction_of_step(r, node, x, starts, ends, axes, steps)
    if half is not None:
        return [half]
    raise r.unsupported("expected Slice reversing a sequence in time or taking one direction's half")


def _stacked(r, x: Value) -> int | None:
    """``n`` when ``x`` is a time-major ``[n, batch, ...]`` tensor of rank 3 with ``n`` declared (torch's
    ``h0`` / ``c0`` of stacked layers ``[layers * dirs, batch, hidden]``, seen batch-first), else None."""
    if isinstance(x, View) and x.kind == "time_major" and isinstance(x.of, IR) and x.of.rank == 3:
        return r.dim(x.of.name, 1)
    return None


def _stacked_part(r, x: View, start: int, stop: int, hint: str) -> View:
    """Rows ``start:stop`` of a stacked ``[n, batch, ...]`` tensor (:func:`_stacked`): a crop of axis 1 of
    the batch-first tensor, still seen time-major (one layer's initial state, read by ``_initial_state``)."""
    n = r.dim(x.of.name, 1)
    return View("time_major", r.add("crop1d", [x.of.name], r.fresh(hint), {"cropping": [start, n - stop]},
                                    rank=3))


def _split_sizes(r, node, args, attrs, n: int) -> list[int]:
    """The part sizes of ``Split`` along an axis of ``n`` elements: the ``split`` attribute (Split-1, -2,
    -11; Split-1 also took it as an input), the ``split`` input (Split-13, -18), ``num_outputs`` (Split-18:
    parts of ceil(n / num_outputs), the last smaller), or equal parts, one per output (onnx/docs/Changelog.md
    Split-1..-18; onnx/defs/tensor/defs.cc). Each checked non-negative, one per output, summing to ``n``."""
    outputs = len(node.output)
    if "split" in attrs:
        if r.op_version >= 13:
            raise FormatError(f"Split-{r.op_version} takes split as an input, found a split attribute")
        sizes = [int(v) for v in attrs["split"]]
    elif len(args) > 1 and args[1] is not None:
        sizes = ints(args[1])
        if sizes is None or "num_outputs" in attrs:
            raise r.unsupported("expected the split input of Split a constant (and no num_outputs with it)")
    elif "num_outputs" in attrs:
        if r.op_version < 18:
            raise FormatError(f"Split-{r.op_version} has no num_outputs attribute (Split-18 on)")
        parts = int(attrs["num_outputs"])
        if parts != outputs or parts < 1:
            raise FormatError(f"Split num_outputs {parts} and its {outputs} outputs differ")
        size = -(-n // parts)
        sizes = [min(size, max(n - k * size, 0)) for k in range(parts)]
    else:
        if r.op_version >= 18:
            raise FormatError("Split-18 needs the split input or num_outputs, found neither")
        if n % outputs:
            raise FormatError(f"Split of an axis of {n} into {outputs} equal parts")
        sizes = [n // outputs] * outputs
    if len(sizes) != outputs or any(s < 0 for s in sizes) or sum(sizes) != n:
        raise FormatError(f"expected Split sizes, one non-negative size per output ({outputs}) summing to the "
                          f"axis' declared {n}, found {sizes[:8]}{' ...' if len(sizes) > 8 else ''}")
    return sizes


def _split(r, node, args, attrs):
    """``Split`` on axis 0 of a stacked ``[n, batch, hidden]`` state (onnxruntime's GatherSliceToSplitFusion
    makes one Split of torch's per-layer Gather / Slice of ``h0``, onnxruntime/core/optimizer/
    gather_slice_fusion.cc): each part the rows ``Slice`` would take (:func:`_stacked_part`); a part is
    checked against the layer's directions where it is used (``_initial_state``)."""
    x, axis = args[0], int(attrs.get("axis", 0))
    n = _stacked(r, x)
    graph_outputs = {o.name for o in r.proto.graph.output}
    states = all(o and o not in graph_outputs and _only_initial_state(r, o) for o in node.output)
    if n is None or axis not in (0, -3) or not states:
        found = f"axis {axis} of a {x.what}" if n is None else f"axis {axis}" if states else \
            "parts used other than as a recurrent node's initial_h / initial_c (a sequence split into steps?)"
        raise r.unsupported(f"expected Split on axis 0 of stacked states [layers * dirs, batch, hidden] (torch's "
                            f"h0 / c0, size declared) into each layer's initial state, found {found}")
    sizes = _split_sizes(r, node, args, attrs, n)
    if 0 in sizes:
        raise r.unsupported(f"expected Split of stacked states into parts of at least one row, found {sizes}")
    starts = np.cumsum([0, *sizes[:-1]])
    return [_stacked_part(r, x, int(a), int(a) + s, name or out_name(node))
            for a, s, name in zip(starts, sizes, node.output)]


def _only_initial_state(r, name: str) -> bool:
    """``name`` is read, and only as ``initial_h`` / ``initial_c`` of recurrent nodes."""
    users = onnx_consumers(r, name)
    return bool(users) and all(
        n.op_type in KINDS and name in list(n.input)[5:7] and name not in list(n.input)[:5] for n in users)


def _concat(r, node, args, attrs):
    axis = int(attrs["axis"])
    if all(isinstance(a, Const) for a in args):
        return [Const(np.concatenate([a.value for a in args], axis=axis))]
    if len(args) == 2 and all(_rec_part(a) for a in args) and args[0].rec is args[1].rec:
        # both directions joined on the last axis (-1, or written out: 2 of a sequence, 1 of a state); time-major
        # sequences (tf2onnx's Bidirectional feeding the next recurrent node as they are) stay time-major
        tm = {isinstance(a, Seq) and a.time_major for a in args}
        last = 2 if isinstance(args[0], Seq) else 1
        merged = Merged(args[0].rec, "concat", tuple(args), tm.pop()) if axis in (-1, last) and len(tm) == 1 \
            and isinstance(args[0], Seq) == isinstance(args[1], Seq) else None
        if merged is not None and (axis == -1 or rec_key(_batch_first(merged) or merged) is not None):
            return [merged]  # (on a written-out axis, one direction twice is a plain concatenation, below)
    if axis == 0 and all(isinstance(a, View) and a.kind == "unsqueeze0" for a in args):
        return [Pending("stacked", tuple(a.of for a in args))]
    if axis == 0 and all(isinstance(a, RecOut) and a.k is not None and a.perm is None and a.rec.layout == 0
                         and a.rec.hidden == args[0].rec.hidden for a in args):  # torch's h_n of several layers
        parts = [raw_output(r, RecOut(a.rec, a.k, (1, 0, 2)), r.fresh(f"{out_name(node)}/{k}"))
                 for k, a in enumerate(args)]
        both = r.add("concatenate", parts, r.fresh(f"{out_name(node)}/batch_first"), {"axis": 1}, rank=3)
        return [View("time_major", both)]
    names = [r.tensor(a, out_name(node)) for a in args]
    return [r.add("concatenate", names, out_name(node), {"axis": axis}, rank=r.ranks.get(names[0]))]


def _tile(r, node, args, attrs):
    x, reps = args[0], ints(args[1])
    if isinstance(x, View) and x.kind == "unsqueeze1" and reps is not None and len(reps) == 3 \
            and reps[0] == 1 and reps[2] == 1:
        return [r.add("repeat_vector", [x.of.name], out_name(node), {"n": reps[1]}, rank=3)]
    raise r.unsupported("expected Tile of Unsqueeze(x, 1) (Keras RepeatVector)")


def _flatten(r, node, args, attrs):
    if int(attrs.get("axis", 1)) != 1:
        raise r.unsupported(f"expected Flatten(axis=1), found axis {attrs.get('axis')}")
    if isinstance(args[0], RecOut) and args[0].k is not None:
        return [_joined_states(r, node, args[0], None)]
    return [r.add("flatten", [r.tensor(args[0], out_name(node))], out_name(node), rank=2)]


def _gemm(r, node, args, attrs):
    """``alpha * A @ B' + beta * C``: a dense layer of the constants ``alpha * B'`` and ``beta * C`` (folded once,
    in B's type: torch's Linear writes alpha = beta = 1; hand-built and converted graphs scale)."""
    a, b = args[:2]
    c = args[2] if len(args) > 2 else None
    if attrs.get("transA", 0) or attrs.get("transB", 0) not in (0, 1):
        raise r.unsupported(f"expected Gemm with transA=0 and transB 0 or 1, found transA={quote(attrs.get('transA', 0))}, "
                            f"transB={quote(attrs.get('transB', 0))}")
    if not isinstance(b, Const) or b.value.ndim != 2 or b.value.dtype.kind != "f" \
            or (c is not None and not isinstance(c, Const)):
        raise r.unsupported("expected Gemm with constant 2-D float weights")
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        raise FormatError(f"expected Gemm alpha and beta finite, found alpha={alpha!r}, beta={beta!r}")
    w = b.value if attrs.get("transB", 0) else np.ascontiguousarray(b.value.T)
    if alpha != 1.0:
        w = (w * w.dtype.type(alpha)).astype(w.dtype)
    if c is not None and beta != 1.0 and c.value.dtype.kind == "f":
        c = Const((c.value * c.value.dtype.type(beta)).astype(c.value.dtype))
    x = r.tensor(a, out_name(node))
    if r.ranks.get(x, 2) != 2:
        raise FormatError(f"expected Gemm of a 2-D tensor, found rank {r.ranks[x]}")
    return [_dense(r, node, IR(x, 2), w, None if c is None else c.value)]


def _matmul(r, node, args, attrs):
    a, b = r.as_ir(args[0]), args[1]
    if isinstance(a, IR) and isinstance(b, Const) and b.value.ndim == 2 and b.value.dtype.kind == "f":
        return [Pending("matmul", (a, np.ascontiguousarray(b.value.T)))]
    if not isinstance(a, Const) and not isinstance(b, Const):
        return [_batch_matmul(r, node, a, b)]
    if isinstance(a, Const) and isinstance(b, Const):
        if a.value.ndim >= 2 and b.value.ndim >= 2:
            r.fold(np.broadcast_shapes(a.value.shape[:-2], b.value.shape[:-2]) + (a.value.shape[-2], b.value.shape[-1]),
                   np.result_type(a.value, b.value))
        return [Const(a.value @ b.value)]
    raise r.unsupported("expected MatMul of a tensor by a constant 2-D weight")


def _batch_matmul(r, node, a: Value, b: Value) -> IR:
    """MatMul of two batch-first rank-3 tensors (torch.bmm / matmul, attention's ``scores @ values``): Keras Dot
    with axes (2, 1), each sample's matrices multiplied; ``b`` a Transpose [0, 2, 1] (``y.transpose(1, 2)``) is
    read as Dot on axes (2, 2) of what it transposes. Any other rank would multiply across the batch."""
    axis = 1
    if isinstance(b, View) and b.kind == "channels_first" and isinstance(b.of, IR):
        b, axis = b.of, 2
    a, b = (r.as_ir(v) if not isinstance(v, View) or v.kind != "channels_first" else
            IR(r.tensor(v, r.fresh(f"{out_name(node)}/{k}")), 3) for k, v in enumerate((a, b)))  # (a Permute)
    ranks = [r.ranks.get(v.name, v.rank) if isinstance(v, IR) else None for v in (a, b)]
    if ranks != [3, 3]:
        raise r.unsupported(f"expected MatMul of a tensor by a constant 2-D weight, or of two batch-first rank-3 "
                            f"tensors (a batched matmul), found a {a.what} of rank {ranks[0]} by a {b.what} of "
                            f"rank {ranks[1]}")
    inner = (r.dim(a.name, 2), r.dim(b.name, axis))
    if None not in inner and inner[0] != inner[1]:
        raise FormatError(f"expected MatMul of matching inner sizes, found {inner[0]} and {inner[1]}")
    return IR(r.add("dot", [a.name, b.name], out_name(node), {"axes": [2, axis]}, rank=3).name, 3)


def _conv(r, node, args, attrs):
    x, w = args[:2]
    b = args[2] if len(args) > 2 else None
    if isinstance(x, Pending) and x.kind == "conv":  # Conv -> Conv: no Transposes left between them
        x = View("channels_first", _conv1d(r, None, *x.args))
    if not (isinstance(x, View) and x.kind == "channels_first") or not isinstance(w, Const) or w.value.ndim != 3:
        raise r.unsupported("expected a 1-D Conv of Transpose(x, [0, 2, 1]) with constant weights")
    group = attrs.get("group", 1)  # weight (filters, in / group, k), as the IR's conv1d keeps it
    if isinstance(group, bool) or not isinstance(group, int) or group < 1 or w.value.shape[0] % group:
        raise r.unsupported(f"expected a Conv group dividing its {w.value.shape[0]} filters, found {quote(group)}")
    if list(attrs.get("kernel_shape") or w.value.shape[2:]) != list(w.value.shape[2:]):
        raise FormatError(f"kernel_shape {list(attrs['kernel_shape'])} disagrees with W of shape {list(w.value.shape)}")
    if any(len(attrs.get(k) or [0] * n) != n for k, n in (("pads", 2), ("strides", 1), ("dilations", 1))):
        raise FormatError("expected 1-D Conv pads (2 values), strides and dilations (1 value each)")
    return [Pending("conv", (x.of, w.value, None if b is None else b.value, attrs, out_name(node)))]


def _conv1d(r, node, x: IR, w: np.ndarray, b, attrs, conv_output: str) -> IR:
    """The conv1d IR node, named after the Transpose back to channels last (``node``) or, where another Conv
    reads it directly (``node`` None), after the Conv's own output."""
    k = int(w.shape[2])
    dilation = int((attrs.get("dilations") or [1])[0])
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    pads = list(attrs.get("pads") or [0, 0])
    if auto_pad == "SAME_UPPER":
        padding = "same"
    elif auto_pad in ("NOTSET", "VALID") and pads == [0, 0]:
        padding = "valid"
    elif auto_pad == "NOTSET" and pads == [dilation * (k - 1), 0]:
        padding = "causal"
    elif auto_pad == "NOTSET" and int((attrs.get("strides") or [1])[0]) == 1 \
            and pads == [dilation * (k - 1) // 2, dilation * (k - 1) - dilation * (k - 1) // 2]:
        padding = "same"  # TensorFlow's rule at stride 1, as gateport's writer spells it
    else:
        raise r.unsupported(f"expected Conv padding valid, causal or SAME_UPPER, found {auto_pad} {pads}")
    weights = {"weight": w, **({"bias": b} if b is not None else {})}
    options = {"filters": int(w.shape[0]), "kernel_size": k, "strides": int((attrs.get("strides") or [1])[0]),
               "padding": padding, "dilation_rate": dilation, "activation": "linear", "use_bias": b is not None}
    if attrs.get("group", 1) != 1:  # checked by _conv
        options["groups"] = int(attrs["group"])
    return r.add("conv1d", [x.name], conv_output if node is None else out_name(node), options, weights, rank=3)


def _activation(r, node, args, attrs):
    op = node.op_type
    name = "softmax" if op == "Softmax" else from_onnx_op(op, attrs)
    if name is None:
        found = ", ".join(f"{quote(k, 40)}={quote(v, 40)}" for k, v in sorted(attrs.items()))
        raise r.unsupported(f"expected {onnx_op_forms(op)}, found {op}({found})")
    x = r.tensor(args[0], out_name(node))
    if op == "Softmax":
        return [_softmax(r, node, x, attrs)]
    return [r.add("activation", [x], out_name(node), {"activation": name}, rank=r.ranks.get(x))]


def _softmax(r, node, x: str, attrs) -> IR:
    """Softmax by version (onnx/onnx docs/Changelog.md, Softmax-1/-11/-13).

    Softmax-13: one ``axis``, default -1. Softmax-1 and -11: the input "will be coerced into a
    2-dimensional tensor with dimensions [a_0 * ... * a_{k-1}, a_k * ... * a_{n-1}]" at ``axis``
    (default 1) and the softmax taken over its second dimension: over every axis from ``axis`` on at
    once. That is the last-axis softmax when ``axis`` is the last axis; otherwise it is read as
    reshape (axes from ``axis`` on flattened into one) -> softmax -> reshape back, which needs the
    sizes of those axes.
    """
    rank = r.ranks.get(x)
    legacy = r.op_version < 13
    axis = int(attrs.get("axis", 1 if legacy else -1))
    if rank is None:
        raise r.unsupported(f"expected Softmax of a tensor of known rank (axis {axis} at Softmax-{r.op_version})")
    if not -rank <= axis < rank:
        raise FormatError(f"expected a Softmax axis in [{-rank}, {rank - 1}], found {axis}")
    axis %= rank
    if axis == rank - 1:
        return r.add("activation", [x], out_name(node), {"activation": "softmax"}, rank=rank)
    if not legacy and axis == 0:
        raise r.unsupported("expected Softmax not over the batch axis, found axis 0 (one softmax over the whole batch)")
    if not legacy and rank == 3:  # over time (attention pooling's weights): Permute, softmax, Permute back
        moved = r.add("permute", [x], r.fresh(f"{out_name(node)}/permuted"), {"dims": [2, 1]}, rank=3)
        soft = r.add("activation", [moved.name], r.fresh(f"{out_name(node)}/softmax"), {"activation": "softmax"},
                     rank=3)
        return r.add("permute", [soft.name], out_name(node), {"dims": [2, 1]}, rank=3)
    if not legacy:
        raise r.unsupported(f"expected Softmax on the last axis (or axis 1 of a rank-3 tensor), found axis "
                            f"{attrs.get('axis')} of a rank-{rank} tensor")
    if axis == 0:
        raise r.unsupported(f"expected Softmax-{r.op_version} not over the batch axis, found axis 0 (one softmax "
                            "over the whole batch)")
    shape = r.shapes.get(x)
    if shape is None or len(shape) != rank - 1:
        shape = (None,) * (rank - 1)
    outer, inner = shape[:axis - 1], shape[axis - 1:]
    if None in inner or outer.count(None) > 1:
        raise r.unsupported(f"Softmax-{r.op_version} with axis {axis} of a rank-{rank} tensor is one softmax over "
                            f"axes {axis}..{rank - 1} together, which needs their sizes; found shape "
                            f"{['batch', *shape]}")
    sizes = [-1 if d is None else d for d in outer]
    flat = r.add("reshape", [x], r.fresh(f"{out_name(node)}/coerced"), {"shape": sizes + [math.prod(inner)]},
                 rank=axis + 1)
    soft = r.add("activation", [flat.name], r.fresh(f"{out_name(node)}/softmax"), {"activation": "softmax"},
                 rank=axis + 1)
    return r.add("reshape", [soft.name], out_name(node), {"shape": [-1 if d is None else d for d in shape]},
                 rank=rank)


def _recurrent(r, node, args, attrs):
    args = list(args) + [None] * (8 - len(args))
    x_value, w, rr, b, lens, h0, c0, p = args[:8]
    layout = int(attrs.get("layout", 0))
    x, mask, flipped = _recurrent_input(r, node, x_value, layout)
    if lens is not None and _full_lengths(r, lens, x):
        lens = None  # every sample's length is the (fixed) number of steps: the same as none
    lengths = lens is not None and _run_time_lengths(r, lens) and mask is None
    if lengths:
        if flipped:
            raise r.unsupported("expected sequence_lens with X in input order, found X reversed in time: the "
                                "lengths count from the reversed sequence's start")
        mask = r.add("mask_lengths", [lens.name, x], r.fresh(f"{out_name(node)}/lengths_mask"), rank=2).name
    elif lens is not None:
        if not (isinstance(lens, Plan) and lens.role == "len" and mask is not None
                and r.mask_name(lens.mask, "mask") == mask):
            raise r.unsupported(
                f"expected no sequence_lens (or the one tf2onnx computes from a Keras mask), found sequence_lens "
                f"{quote(node.input[4])} ({_lens_what(lens, r.dim(x, 1))}): per-sample lengths are read "
                "from a (batch,) integer graph input (or a Cast of one) only")
    elif mask is not None:
        raise r.unsupported("expected sequence_lens with a compacted input")
    weights = {}
    for k, key, value in ((1, "W", w), (2, "R", rr), (3, "B", b), (7, "P", p)):
        if value is None:
            continue
        if not isinstance(value, Const):
            raise r.unsupported(f"expected {key} as an initializer or constant, found {quote(node.input[k])}: a "
                                f"{value.what} (weights computed or fed at run time have no IR equivalent)")
        weights[key] = value.value
    n_dirs = 2 if attrs.get("direction", b"forward") in (b"bidirectional", "bidirectional") else 1
    hidden = int(attrs.get("hidden_size", 0) or 0)
    initial = [_initial_state(r, node, v, n_dirs, hidden, layout, k)
               for k, v in (((5, h0), (6, c0)) if node.op_type == "LSTM" else ((5, h0),))]
    if all(s is None for s in initial):
        initial = None
    elif any(s is None for s in initial):
        raise r.unsupported("expected both initial_h and initial_c, or neither")
    attrs = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in attrs.items()}
    attrs["op_type"] = node.op_type
    scope = (node.name or "").strip("/").rsplit("/", 1)[0] if "/" in (node.name or "").strip("/") else ""
    name, k = scope or node.name or KINDS[node.op_type], 1
    while name in r.node_names:
        name, k = f"{scope or node.name or KINDS[node.op_type]}_{k}", k + 1
    r.node_names.add(name)
    try:
        rec = RecurrentNode(name, node.op_type, attrs, weights, x, mask, initial, r.dim(x, -1), flipped,
                            lens.name if lengths and isinstance(lens, IR) else None)
    except GateportError as e:
        raise e.at(file=r.path, layer=f"ONNX {node.op_type} {quote(node.name or name)}")
    r.items.append(rec)
    outs = [RecOut(rec, None), RecOut(rec, 0)]
    return outs + ([RecOut(rec, 1)] if node.op_type == "LSTM" else [])


def raw_output(r, v: RecOut, name: str) -> str:
    """A recurrent node's ``Y`` / ``Y_h`` / ``Y_c`` used as ONNX returns it (a graph output): each direction
    as Keras returns it, joined along the last axis and reshaped to layout 1's ``[batch, time, dirs, hidden]``
    / ``[batch, dirs, hidden]`` (the IR is batch-first; a layout-0 file's output is relaid, :attr:`relaid`)."""
    rec = v.rec
    if rec.mask is not None and not rec.lengths:
        raise r.unsupported("expected the raw output of a node reading a compacted (masked) input to be "
                            "expanded back to input time, found it used as is")
    if v.perm not in (None, (2, 0, 1, 3) if v.k is None else (1, 0, 2)):
        raise r.unsupported(f"expected Y batch-first ([batch, time, dirs, hidden]), found Y transposed by "
                            f"{list(v.perm)}")
    if v.k is None:
        parts = [Seq(rec, s, False, rec.input_flipped, *_y_stage(rec)) for s in range(rec.n_dirs)]
        whole = parts[0] if rec.n_dirs == 1 else Merged(rec, "concat", tuple(parts), False)
        src, shape = r.tensor(whole, f"{name}/directions"), [-1, rec.n_dirs, rec.hidden]
    else:
        parts = [r.tensor(State(rec, s, v.k), f"{name}/{s}") for s in range(rec.n_dirs)]
        src = parts[0] if rec.n_dirs == 1 else \
            r.add("concatenate", parts, r.fresh(f"{name}/directions"), {"axis": -1}, rank=2).name
        shape = [rec.n_dirs, rec.hidden]
    if rec.layout == 0 and v.perm is None:
        r.relaid.append(name)
    return r.add("reshape", [src], name, {"shape": shape}, rank=len(shape) + 1).name


def _full_lengths(r, lens: Value, x: str) -> bool:
    """``sequence_lens`` is a constant equal, for every sample, to the input's fixed number of steps."""
    steps = r.dim(x, 1)
    return isinstance(lens, Const) and steps is not None and lens.value.ndim == 1 and lens.value.size > 0 \
        and bool(np.all(lens.value == steps))


def _run_time_lengths(r, lens: Value) -> bool:
    """``sequence_lens`` is a (batch,) integer tensor computed at run time (a graph input, or a Cast of one:
    torch.onnx's TorchScript exporter on ``pack_padded_sequence``)."""
    return isinstance(lens, IR) and lens.dtype.startswith("int") and r.ranks.get(lens.name, lens.rank) == 1


def _lens_what(lens: Value, steps: int | None) -> str:
    if isinstance(lens, Const):
        shown = ", ".join(str(v.item()) for v in lens.value.reshape(-1)[:8])  # any dtype: a stranger's NaN too
        return f"constant [{shown}{', ...' if lens.value.size > 8 else ''}], " + \
            ("the input's steps not fixed" if steps is None else f"not every sample the input's {steps} steps")
    return f"a run-time {lens.what}" if not isinstance(lens, IR) else "a graph input or computed tensor"


def _recurrent_input(r, node, v: Value, layout: int) -> tuple[str, str | None, bool]:
    """(batch-first IR input, IR mask or None, whether X is that input reversed in time)."""
    if layout == 0:
        if isinstance(v, View) and v.kind == "time_major":
            v = v.of
        elif isinstance(v, (Seq, Merged)) and v.time_major:
            v = Seq(v.rec, v.slot, False, v.flipped, v.stage, v.zero) if isinstance(v, Seq) \
                else Merged(v.rec, v.mode, v.parts, False)
        else:
            raise r.unsupported(f"expected X time-major (Transpose of a batch-first tensor), found a {v.what}")
    if isinstance(v, View) and v.kind == "compact":
        return r.tensor(v.of, out_name(node)), r.mask_name(v.mask, "mask"), False
    if isinstance(v, View) and v.kind == "flipped":
        return v.of.name, None, True
    return r.tensor(v, out_name(node)), None, False


def _direction_state(r, states: str, slot: int, n_dirs: int, hint: str) -> str:
    """Direction ``slot``'s ``[batch, hidden]`` of a batch-first ``[batch, dirs, hidden]`` state tensor."""
    if n_dirs > 1:
        states = r.add("crop1d", [states], r.fresh(f"{hint}/{slot}"), {"cropping": [slot, n_dirs - 1 - slot]},
                       rank=3).name
    return r.add("reshape", [states], r.fresh(f"{hint}/{slot}" if n_dirs > 1 else hint), {"shape": [-1]},
                 rank=2).name


def _initial_state(r, node, v: Value | None, n_dirs: int, hidden: int, layout: int, k: int) -> list[str] | None:
    """Per direction, the IR tensor of the initial state at input ``k`` (None: zeros or absent)."""
    if isinstance(v, Const):  # [dirs, batch, hidden] (layout 0) or [batch, dirs, hidden] (layout 1)
        shape = v.value.shape
        if len(shape) != 3 or shape[1 if layout else 0] != n_dirs or hidden and shape[2] != hidden:
            want = ["batch", n_dirs] if layout else [n_dirs, "batch"]
            raise FormatError(f"expected an initial state of shape {want + [hidden or 'hidden']}, found {list(shape)}")
    if v is None or isinstance(v, Zeros) or isinstance(v, Const) and not np.any(v.value):
        return None
    if isinstance(v, Pending) and v.kind == "stacked" and len(v.args) == n_dirs:
        return [r.tensor(s, out_name(node)) for s in v.args]
    if isinstance(v, View) and v.kind == "unsqueeze0" and n_dirs == 1:
        return [r.tensor(v.of, out_name(node))]
    if isinstance(v, RecOut) and v.k is not None and v.perm is None and v.rec.layout == layout \
            and v.rec.n_dirs == n_dirs and hidden in (0, v.rec.hidden):
        # another node's final state as it returns it: an encoder's (h, c) starting a decoder (torch's
        # decoder(y, encoder(x)[1]), Keras' initial_state=encoder_states), direction by direction
        return [r.tensor(State(v.rec, slot, v.k), out_name(node)) for slot in range(n_dirs)]
    whole = v.of if isinstance(v, View) and v.kind == "time_major" and not layout else v if layout else None
    if isinstance(whole, IR) and whole.rank == 3 and r.dim(whole.name, 1) in (n_dirs, None) \
            and r.dim(whole.name, 2) in (hidden or None, None):
        return [_direction_state(r, whole.name, slot, n_dirs, node.input[k]) for slot in range(n_dirs)]
    if isinstance(v, Const):
        what = "a nonzero constant (the IR's initial states are model inputs)"
    elif isinstance(whole, IR) and r.shapes.get(whole.name) is not None:
        shape = ["batch", *r.shapes[whole.name]]
        what = f"a tensor of shape {shape if layout else [shape[1], 'batch', *shape[2:]]}"
    else:
        what = f"a {v.what}"
    want = f"[batch, {n_dirs}, {hidden or 'hidden'}]" if layout else f"[{n_dirs}, batch, {hidden or 'hidden'}]"
    raise r.unsupported(f"expected {('initial_h', 'initial_c')[k - 5]} absent, zeros, a {want} tensor, or stacked "
                        f"(Unsqueeze/Concat on axis 0) from [batch, hidden] tensors, found "
                        f"{quote(whole.name if isinstance(whole, IR) else node.input[k])}: {what}")


HANDLERS = {
    "Constant": _constant,
    "Identity": _identity,
    "Dropout": _dropout,
    "Cast": _cast,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Max": _binary,
    "Min": _binary,
    "Div": _div,
    "Gather": _gather,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Slice": _slice,
    "Split": _split,
    "Concat": _concat,
    "Tile": _tile,
    "Flatten": _flatten,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Conv": _conv,
    **{op_type: _activation for op_type in _ACTIVATION_OPS},
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNN": _recurrent,
    **{op_type: _reduce for op_type in _REDUCE_MODES},
}
