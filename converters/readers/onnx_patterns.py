"""ONNX files from other tools (tf2onnx, Keras 3's exporter, torch.onnx) -> the ops the ONNX reader reads.

    proto, misses, applied = normalize(onnx, proto, path, tensors)

Other exporters surround the fused ``LSTM``/``GRU``/``RNN`` nodes with their own chains: zero states
built from ``Shape``/``Expand``/``ConstantOfShape``/``Concat``, one step or one direction picked by
``Slice`` + ``Squeeze``, both directions concatenated while still time-major, ``Dense`` on a sequence
as ``Reshape`` -> ``MatMul`` -> ``Reshape`` (TensorFlow's Tensordot) or unrolled per step (Keras 3's
TimeDistributed), reshapes computed from ``Shape``, recurrences left as a ``Loop``. Each construct is
one small, named pattern (:data:`PATTERNS`) over a :class:`converters.readers.onnx_value_graph.ValueGraph`;
a pattern that matches replaces its nodes by the exactly equivalent ops gateport's own writer emits
(so the rewritten graph computes the same numbers: the tests run both under onnxruntime). The
rewrites run until none matches, then nodes nothing uses are dropped.

A pattern whose anchor op matched but whose conditions did not is recorded as a near miss; when the
reader then refuses that node, the message names the pattern that came closest and why
(:func:`closest`). A ``Loop`` is read as the Keras cell its body computes
(:mod:`converters.readers.onnx_loops`) or refused here, naming the loop and what was not recognized.
"""
from __future__ import annotations

import math

import numpy as np

from ..activations import ONNX_OPS
from ..errors import UnsupportedError
from ..sanitize import quote
from .onnx_foreign import refuse_foreign_nodes
from .onnx_loops import loop_recurrence
from .onnx_rewrite import (FLIP_END, Rewrite, fresh as _fresh, full_reverse, op_of as _op, step_of as _step_of,
                           through_cast as _through_cast, transposed_flip_source, zeros as _zeros)
from .onnx_tf_masks import float_count, masking_product, select_lowered
from .onnx_torch_patterns import (sorted_batch, static_time_reshape, time_major_dense, time_major_inputs,
                                  unrolled_rnn, layer_view_gather, unsqueeze_gather)
from .onnx_opset import default_opset
from .onnx_value_graph import BIG, ValueGraph, shown, where

_RECURRENT = ("LSTM", "GRU", "RNN")
#: ops that merge two sequences, as Keras' Bidirectional does
_MERGES = ("Concat", "Add", "Mul", "Sub", "Max", "Min")
#: the key of a near miss about the whole graph rather than one node
GRAPH = "*"
#: what a pattern meeting a malformed node (wrong arity, attribute types) raises; it is then no match
_MALFORMED = (IndexError, KeyError, TypeError, ValueError, AttributeError, ArithmeticError)
#: the most passes over the graph (each applies every match of one pattern): constructs nest a few
#: deep (a loop, then its last step, then ...); a bound on the work, not a tuning
_MAX_PASSES = 64


# -- helpers ---------------------------------------------------------------------------------------
def _const(onnx, name: str, value) -> object:
    return onnx.numpy_helper.from_array(np.asarray(value), name)




def _is_state(vg: ValueGraph, name: str) -> bool:
    """``name`` is a final state (Y_h / Y_c) of a recurrent node."""
    node = vg.producer.get(name)
    return node is not None and node.op_type in _RECURRENT and name in node.output[1:]


# -- patterns --------------------------------------------------------------------------------------
def _zero_initial_state(vg: ValueGraph, node):
    """initial_h / initial_c computed to zeros (tf2onnx: Expand(0, Concat(batch, units))) -> absent."""
    slots = [k for k in (5, 6) if k < len(node.input) and node.input[k]]
    zero = [k for k in slots if _zeros(vg, node.input[k])]
    if not slots:
        return None
    if not zero:
        return f"initial state {quote(node.input[slots[0]])} is not computed to zeros"
    hidden = vg.attr(node, "hidden_size", None)
    r_dims = vg.dims(node.input[2]) if len(node.input) > 2 else None
    hidden = hidden if hidden is not None else (r_dims[-1] if r_dims else None)
    for k in zero:  # a file no runtime runs (torch's dynamo exporter writes one for nn.LSTM(proj_size=...)):
        dims = vg.dims(node.input[k])  # refused, not read as a node whose states start at zero
        if dims and isinstance(dims[-1], int) and isinstance(hidden, int) and dims[-1] != hidden:
            raise UnsupportedError(
                f"expected initial state {quote(node.input[k])} of the node's hidden size {hidden}, found zeros "
                f"of width {dims[-1]} (onnxruntime refuses this node; PyTorch's dynamo exporter writes it for an "
                f"nn.LSTM with proj_size, which no ONNX LSTM computes)", layer=where(node))
    new = vg.onnx.helper.make_node(node.op_type, [("" if k in zero else i) for k, i in enumerate(node.input)],
                                   list(node.output), name=node.name)
    new.attribute.extend(node.attribute)
    return Rewrite("zero_initial_state", [node], [new])


def _slice_one_squeeze(vg: ValueGraph, node):
    """Slice of one index of one axis, then Squeeze of that axis -> Gather of the index (a last step
    of a time-major sequence as Transpose + Gather on the time axis, the form the reader reads)."""
    starts, ends, axes, steps = vg.slice_args(node)
    rank = vg.rank(node.input[0])
    if None in (starts, ends, axes, steps, rank) or not len(starts) == len(ends) == len(axes) == len(steps) == 1:
        return "expected constant starts, ends, axes and steps of one axis and an input of known rank"
    s, e, axis, step = starts[0], ends[0], axes[0] % rank, steps[0]
    if step < 0:
        return None  # a flip, not a pick
    if step != 1 or not (s >= 0 and e == s + 1 or s == -1 and e >= BIG or s < -1 and e == s + 1):
        return f"expected one index (step 1), found [{s}:{e}:{step}] on axis {axis}"
    squeeze = vg.only_consumer(node.output[0])
    if squeeze is None or squeeze.op_type != "Squeeze" \
            or [a % rank for a in (vg.axes(squeeze) or [])] != [axis]:
        return f"expected the slice used only by a Squeeze of axis {axis}"
    h, index = vg.onnx.helper, _fresh(vg, f"{node.output[0]}/index")
    inits = [_const(vg.onnx, index, np.int64(s))]
    if axis == 0 and rank == 3 and not _is_state(vg, node.input[0]):  # [time, batch, units]: step s
        batch_first = _fresh(vg, f"{node.output[0]}/batch_first")
        return Rewrite("last_step", [node, squeeze],
                       [h.make_node("Transpose", [node.input[0]], [batch_first], perm=[1, 0, 2], name=batch_first),
                        h.make_node("Gather", [batch_first, index], list(squeeze.output), axis=1,
                                    name=squeeze.name)], inits)
    return Rewrite("slice_one_squeeze", [node, squeeze],
                   [h.make_node("Gather", [node.input[0], index], list(squeeze.output), axis=axis,
                                name=squeeze.name)], inits)


def _time_major_merge(vg: ValueGraph, node):
    """Transpose(merge(a, b), [1, 0, 2]) -> merge(Transpose(a), Transpose(b)) for a Concat on the last
    axis or an element-wise Add/Mul/Sub/Max/Min of time-major sequences: both directions merged after
    they are put back batch-first (Keras' Bidirectional merge modes); a Mul/Add/Sub by a scalar constant
    moves the same way (tf2onnx's ``ave``: ``Mul(Add(fw, bw), 0.5)``, the Add moved on the next pass)."""
    perm = [int(p) for p in vg.attr(node, "perm", [])]
    merge, passed = vg.producer.get(node.input[0]), []
    while merge is not None and merge.op_type == "Identity" and len(passed) < 8 \
            and vg.only_consumer(merge.output[0]) is (passed[-1] if passed else node):
        passed.append(merge)  # Identity nodes between (a graph output's, torch's) are the merge itself
        merge = vg.producer.get(merge.input[0])
    if perm != [1, 0, 2] or merge is None or merge.op_type not in _MERGES:
        return None
    if any(c.op_type in ("LSTM", "GRU", "RNN") for c in vg.consumers.get(node.output[0], [])):
        return None  # a batch-first merge made time-major for the next recurrent node (torch.onnx): read as it is
    scalars = [i for i in merge.input if merge.op_type in ("Mul", "Add", "Sub") and vg.is_const(i)
               and vg.dims(i) is not None and len(vg.dims(i)) <= 1 and math.prod(vg.dims(i)) == 1]
    if vg.rank(merge.output[0]) != 3 or any(vg.rank(i) != 3 for i in merge.input if i not in scalars) \
            or len(scalars) == len(merge.input) \
            or merge.op_type == "Concat" and int(vg.attr(merge, "axis", 0)) % 3 != 2:
        return f"expected a {merge.op_type} of time-major sequences{' on the last axis' if merge.op_type == 'Concat' else ''}"
    if vg.only_consumer(merge.output[0]) is not (passed[-1] if passed else node):
        return f"expected the merge {quote(merge.output[0])} used only by this Transpose"
    h, parts, adds = vg.onnx.helper, [], []
    for i in merge.input:  # a scalar constant (Keras' ave: the sum times 0.5) is the same either way
        if i in scalars:
            parts.append(i)
            continue
        parts.append(_fresh(vg, f"{i}/batch_first"))
        adds.append(h.make_node("Transpose", [i], [parts[-1]], perm=[1, 0, 2], name=parts[-1]))
    extra = {"axis": -1} if merge.op_type == "Concat" else {}
    adds.append(h.make_node(merge.op_type, parts, list(node.output), name=node.name, **extra))
    return Rewrite("time_major_merge", [merge, *passed, node], adds)


_REDUCES = ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum")


def _time_major_reduce(vg: ValueGraph, node):
    """Reduce(merge(a, b), axes with 0, not 1) -> Reduce(Transpose(merge(a, b), [1, 0, 2]), axes 0 <-> 1), a
    Transpose back after when the axes are kept: the same numbers. tf2onnx's and onnxruntime's transpose
    optimizers push the Transpose back to batch-first of a Bidirectional's time-major merge through Keras'
    GlobalMax/AveragePooling1D (``ReduceMax(Concat(fw, bw), axes=[0])``); moved back, :func:`_time_major_merge`
    reads the merge on the next pass."""
    merge = vg.producer.get(node.input[0]) if node.input else None
    axes = vg.axes(node)
    if merge is None or merge.op_type not in _MERGES or vg.rank(merge.output[0]) != 3 or not axes:
        return None
    if sorted({a % 3 for a in axes}) != sorted(a % 3 for a in axes) or 0 not in {a % 3 for a in axes} \
            or 1 in {a % 3 for a in axes}:
        return f"expected {node.op_type} of a time-major merge over its time axis (0), not its batch (1)"
    if vg.only_consumer(merge.output[0]) is not node:
        return f"expected the merge {quote(merge.output[0])} used only by this {node.op_type}"
    h = vg.onnx.helper
    moved = _fresh(vg, f"{merge.output[0]}/batch_first")
    adds = [h.make_node("Transpose", [merge.output[0]], [moved], perm=[1, 0, 2], name=moved)]
    swapped = [{0: 1, 1: 0}.get(a % 3, a % 3) for a in axes]
    attrs = {a.name: h.get_attribute_value(a) for a in node.attribute}
    keep = int(attrs.get("keepdims", 1))
    ins = [moved]
    if "axes" in attrs:
        attrs["axes"] = swapped
    else:
        ins.append(_fresh(vg, f"{node.name or node.output[0]}/axes"))
        adds.append(h.make_node("Constant", [], [ins[1]], name=ins[1],
                                value=vg.onnx.numpy_helper.from_array(np.asarray(swapped, np.int64))))
    out = _fresh(vg, f"{node.output[0]}/batch_first") if keep else node.output[0]
    adds.append(h.make_node(node.op_type, ins, [out], name=node.name, **attrs))
    if keep:
        adds.append(h.make_node("Transpose", [out], [node.output[0]], perm=[1, 0, 2], name=node.output[0]))
    return Rewrite("time_major_reduce", [node], adds)


def _full_reverse_sequence(vg: ValueGraph, node):
    """ReverseSequence(x, lengths all equal to x's time size) -> x flipped in time (Slice step -1 on the
    time axis of the batch-first view): TensorFlow's ReverseV2 of a Bidirectional's backward input and
    output."""
    why = full_reverse(vg, node)
    if why is not None:
        return why
    time_axis = int(vg.attr(node, "time_axis", 0))
    h, flip = vg.onnx.helper, _fresh(vg, f"{node.output[0]}/flip")
    inits = [_const(vg.onnx, f"{flip}/{k}", np.array([v], np.int64))
             for k, v in (("starts", -1), ("ends", FLIP_END), ("axes", 1), ("steps", -1))]
    args = [f"{flip}/{k}" for k in ("starts", "ends", "axes", "steps")]
    if time_axis == 1:
        return Rewrite("full_reverse_sequence", [node],
                       [h.make_node("Slice", [node.input[0], *args], list(node.output), name=node.name)], inits)
    batch_first, flipped = _fresh(vg, f"{node.output[0]}/batch_first"), _fresh(vg, f"{node.output[0]}/flipped")
    return Rewrite("full_reverse_sequence", [node], [
        h.make_node("Transpose", [node.input[0]], [batch_first], perm=[1, 0, 2], name=batch_first),
        h.make_node("Slice", [batch_first, *args], [flipped], name=flipped),
        h.make_node("Transpose", [flipped], list(node.output), perm=[1, 0, 2], name=node.name)], inits)


def _tensordot_dense(vg: ValueGraph, node):
    """Reshape(x, [-1, F]) -> MatMul(W) [-> Add(b)] -> Reshape(back to x's leading axes + [U]) ->
    MatMul(x, W) [-> Add(b)]: TensorFlow's Tensordot of Dense / TimeDistributed(Dense) on a sequence."""
    flat = vg.producer.get(node.input[0])
    w = vg.dims(node.input[1]) if vg.is_const(node.input[1]) else None
    if flat is None or flat.op_type != "Reshape" or w is None or len(w) != 2:
        return None
    x = flat.input[0]
    xd, s1 = vg.dims(x), vg.shape_value(flat.input[1])
    if xd is None or len(xd) < 3 or s1 is None or len(s1) != 2 or s1[-1] != w[0] or xd[-1] != w[0]:
        return f"expected Reshape of a sequence to [-1, {w[0]}] before the MatMul"
    if vg.only_consumer(flat.output[0]) is not node:
        return "expected the flattened tensor used only by the MatMul"
    chain, last = [node], node
    nxt = vg.only_consumer(node.output[0])
    if nxt is not None and nxt.op_type == "Add" and (vg.dims(nxt.input[1]) or (0, 0)) in ((w[1],), (1,)):
        chain, last, nxt = chain + [nxt], nxt, vg.only_consumer(nxt.output[0])
    acts = []  # TimeDistributed(Dense(activation=...)): element-wise, or softmax over the units, before the Reshape
    while nxt is not None and len(acts) < 4 and (nxt.op_type in ONNX_OPS or nxt.op_type in ("Softmax", "LogSoftmax")
                                                  and int(vg.attr(nxt, "axis", -1)) in (1, -1)):
        acts, nxt = acts + [nxt], vg.only_consumer(nxt.output[0])
    if nxt is None or nxt.op_type != "Reshape":
        return "expected the MatMul's result reshaped back to the sequence's axes"
    s2 = vg.shape_value(nxt.input[1])
    want = list(xd[:-1]) + [w[1]]
    if s2 is None or len(s2) != len(want) or s2.count(-1) > 1 \
            or any(a != b and a != -1 for a, b in zip(s2, want)):  # (a 0 would copy the flat axis)
        return f"expected the result reshaped to the sequence's axes + [{w[1]}], found {shown(s2)}"
    h = vg.onnx.helper
    ends = [node.output[0]] + ([last.output[0]] if last is not node else []) + [a.output[0] for a in acts]
    ends[-1] = nxt.output[0]  # the last op of the chain writes what the Reshape back wrote
    adds = [h.make_node("MatMul", [x, node.input[1]], [ends[0]], name=node.name)]
    if last is not node:
        adds.append(h.make_node("Add", [ends[0], last.input[1]], [ends[1]], name=last.name))
    for a, into, out in zip(acts, ends[len(ends) - len(acts) - 1:], ends[len(ends) - len(acts):]):
        attrs = {k.name: h.get_attribute_value(k) for k in a.attribute}
        if a.op_type in ("Softmax", "LogSoftmax"):
            attrs["axis"] = -1  # the units, now the last of three axes (any opset: -1 is the last axis)
        adds.append(h.make_node(a.op_type, [into], [out], name=a.name, **attrs))
    return Rewrite("tensordot_dense", [flat] + chain + acts + [nxt], adds)


def _unrolled_time_distributed(vg: ValueGraph, node):
    """Transpose(Concat_t(Unsqueeze(Add(MatMul(step t of a time-major sequence, W), b), 0)), [1, 0, 2]) for
    t = 0..T-1 -> Add(MatMul(Transpose(sequence), W), b): Keras 3's TimeDistributed(Dense) unrolled by
    TensorFlow over a static time axis."""
    if int(vg.attr(node, "axis", 0)) != 0 or len(node.input) < 2:
        return None
    after = vg.only_consumer(node.output[0])
    if after is None or after.op_type != "Transpose" or [int(p) for p in vg.attr(after, "perm", [])] != [1, 0, 2]:
        return None
    seq, weight, bias, gone = None, None, None, [node, after]
    for t, piece in enumerate(node.input):
        chain = _td_step(vg, piece)
        if chain is None:
            return f"expected input {t} to be Unsqueeze(0) of a Dense of step {t} of one sequence"
        s, step, w, b, nodes = chain
        if step != t or seq not in (None, s) or weight not in (None, w) or bias not in (None, b):
            return f"expected input {t} to be the same Dense of step {t} of the same sequence"
        seq, weight, bias, gone = s, w, b, gone + nodes
    dims = vg.dims(seq)
    if dims is None or len(dims) != 3 or dims[0] != len(node.input):
        return f"expected every one of the sequence's steps, found {len(node.input)} of dims {shown(dims)}"
    h = vg.onnx.helper
    batch_first = _fresh(vg, f"{seq}/batch_first")
    adds = [h.make_node("Transpose", [seq], [batch_first], perm=[1, 0, 2], name=batch_first)]
    if bias is None:
        adds.append(h.make_node("MatMul", [batch_first, weight], list(after.output), name=after.name))
    else:
        product = _fresh(vg, f"{after.output[0]}/matmul")
        adds += [h.make_node("MatMul", [batch_first, weight], [product], name=product),
                 h.make_node("Add", [product, bias], list(after.output), name=after.name)]
    return Rewrite("unrolled_time_distributed", gone, adds)


def _td_step(vg: ValueGraph, name: str):
    """``(sequence, t, W, b or None, nodes)`` of ``Unsqueeze(Add(MatMul(step t, W), b), 0)``."""
    unsq = vg.producer.get(name)
    if unsq is None or unsq.op_type != "Unsqueeze" or vg.axes(unsq) != [0] or len(vg.consumers.get(name, [])) != 1:
        return None
    top, bias, nodes = vg.producer.get(unsq.input[0]), None, [unsq]
    if top is not None and top.op_type == "Add" and vg.is_const(top.input[1]) \
            and vg.only_consumer(top.output[0]) is unsq:
        bias, nodes, top = top.input[1], nodes + [top], vg.producer.get(top.input[0])
    if bias is not None and len(vg.dims(bias) or ()) != 1:
        return None  # a bias of more axes would broadcast differently over the whole sequence
    if top is None or top.op_type != "MatMul" or not vg.is_const(top.input[1]) or vg.rank(top.input[1]) != 2 \
            or vg.only_consumer(top.output[0]) not in nodes:
        return None
    step = _step_of(vg, top.input[0])
    if step is None or vg.only_consumer(top.input[0]) is not top:
        return None
    return step[0], step[1], top.input[1], bias, nodes + [top] + step[2]


def _negative_ids_wrapped(vg: ValueGraph, node):
    """Gather(table, where(ids < 0, ids + rows, ids)) -> Gather(table, ids): Keras 3's ``take`` wraps
    negative ids itself (TensorFlow lowers the select to Cast/Mul/Add); ONNX Gather reads an index in
    [-rows, -1] from the end, so the select changes nothing an in-range id would compute."""
    table = vg.dims(node.input[0]) if vg.is_const(node.input[0]) else None
    select = _op(vg, node.input[1], "Add")
    if table is None or len(table) != 2 or select is None or int(vg.attr(node, "axis", 0)) != 0:
        return None
    terms = [_op(vg, t, "Mul") for t in select.input]
    if None in terms:
        return "expected the ids chosen by Mul/Add of the two sides of a select"
    ids = wrapped = less = not_less = None
    for term in terms:
        for a, b in (term.input, term.input[::-1]):
            shifted = _op(vg, b, "Add")
            gate = _op(vg, _through_cast(vg, a), "Less")
            if shifted is not None and gate is not None and vg.ints(shifted.input[1]) == [table[0]]:
                wrapped, less = shifted.input[0], gate
            negated = _op(vg, _through_cast(vg, a), "Not")
            if negated is not None and _op(vg, negated.input[0], "Less") is not None:
                ids, not_less = b, _op(vg, negated.input[0], "Less")
    if ids is None or wrapped != ids or less is None or less is not not_less \
            or _through_cast(vg, less.input[0]) != ids or vg.const(less.input[1]) is None \
            or np.any(vg.const(less.input[1]) != 0):
        return "expected where(ids < 0, ids + rows, ids) as Keras 3's take writes it"
    h = vg.onnx.helper
    return Rewrite("negative_ids_wrapped", [node],
                   [h.make_node("Gather", [node.input[0], ids], list(node.output), axis=0, name=node.name)])


def _computed_reshape(vg: ValueGraph, node):
    """Reshape(x, shape computed from Shape) -> Reshape(x, constant): each size that is x's size on the
    same axis becomes 0 (copy), a static size stays, the one other (x's last axes merged: PyTorch's
    exporter joining the directions of ``Y``) becomes -1."""
    if vg.const(node.input[1]) is not None or int(vg.attr(node, "allowzero", 0)):
        return None
    xd, target = vg.dims(node.input[0]), vg.shape_value(node.input[1])
    if xd is None or target is None:
        return "expected a shape computed from the input's own sizes"
    fixed = [0 if k < len(xd) and t == xd[k] else t if isinstance(t, int) and t > 0 else None
             for k, t in enumerate(target)]
    if fixed.count(None) > 1:
        return f"expected at most one size not known from the input, found {shown(target)}"
    merged = [t if t is not None else -1 for t in fixed]
    h, shape = vg.onnx.helper, _fresh(vg, f"{node.output[0]}/shape")
    return Rewrite("computed_reshape", [node],
                   [h.make_node("Reshape", [node.input[0], shape], list(node.output), name=node.name)],
                   [_const(vg.onnx, shape, np.asarray(merged, np.int64))])


def _sequence_use(vg: ValueGraph, node):
    """The Squeeze(axis 1) that is the only use of a one-direction node's ``Y`` (its states unused)."""
    if any(o and (vg.consumers.get(o) or o in vg.outputs) for o in node.output[1:]):
        return None
    use = vg.only_consumer(node.output[0])
    return use if use is not None and use.op_type == "Squeeze" and vg.axes(use) == [1] else None


def _bidirectional_pair(vg: ValueGraph, node):
    """Two one-direction nodes, the second on the first's input reversed in time (TensorFlow's
    Bidirectional of two while-loops) -> one bidirectional node: its reverse direction's output,
    reversed back, is what the second node computed."""
    x = transposed_flip_source(vg, node.input[0]) if node.input else None
    if x is None:
        return None
    twin = next((n for n in vg.consumers.get(x, []) if n.op_type == node.op_type and n.input[0] == x), None)
    keys = ("hidden_size", "activations", "linear_before_reset", "activation_alpha", "activation_beta", "clip")
    if twin is None or any(vg.attr(twin, k) != vg.attr(node, k) for k in keys) \
            or any(vg.attr(n, "direction", b"forward") not in (b"forward", "forward") or int(vg.attr(n, "layout", 0))
                   or len([i for i in n.input if i]) != 4 for n in (twin, node)):
        return "expected a forward node of the same cell on the input not reversed, without initial states"
    uses = [_sequence_use(vg, n) for n in (twin, node)]
    if None in uses:
        return "expected only the output sequences of both nodes used, each through a Squeeze of axis 1"
    arrays = [[vg.const(n.input[k]) for n in (twin, node)] for k in (1, 2, 3)]
    if any(a is None for pair in arrays for a in pair):
        return "expected constant W, R and B"
    h, y = vg.onnx.helper, _fresh(vg, f"{twin.name}/bidirectional")
    names = [_fresh(vg, f"{y}/{k}") for k in ("W", "R", "B", "fw", "bw", "bw_batch_first", "bw_flipped")]
    inits = [_const(vg.onnx, n, np.concatenate(pair, axis=0)) for n, pair in zip(names[:3], arrays)]
    inits += [_const(vg.onnx, names[3], np.int64(0)), _const(vg.onnx, names[4], np.int64(1))]
    flip = [f"{y}/flip/{k}" for k in ("starts", "ends", "axes", "steps")]
    inits += [_const(vg.onnx, n, np.array([v], np.int64)) for n, v in zip(flip, (-1, FLIP_END, 1, -1))]
    fused = h.make_node(node.op_type, [x, *names[:3]], [y], name=y, direction="bidirectional")
    fused.attribute.extend(a for a in twin.attribute if a.name not in ("direction", "activations"))
    acts = vg.attr(twin, "activations")
    if acts:
        fused.attribute.append(h.make_attribute("activations", list(acts) * 2))
    bw_tm = _fresh(vg, f"{y}/bw_time_major")
    adds = [fused,
            h.make_node("Gather", [y, names[3]], list(uses[0].output), axis=1, name=uses[0].name),
            h.make_node("Gather", [y, names[4]], [bw_tm], axis=1, name=bw_tm),
            h.make_node("Transpose", [bw_tm], [names[5]], perm=[1, 0, 2], name=names[5]),
            h.make_node("Slice", [names[5], *flip], [names[6]], name=names[6]),
            h.make_node("Transpose", [names[6]], list(uses[1].output), perm=[1, 0, 2], name=uses[1].name)]
    return Rewrite("bidirectional_pair", [twin, node, *uses], adds, inits)


_CELLS = {4: "an LSTM step (4 gates)", 3: "a GRU step (3 gates)"}


def _loop(vg: ValueGraph, node):
    """A recurrence unrolled into a ``Loop``: the fused node its body computes
    (:func:`converters.readers.onnx_loops.loop_recurrence`), else refused naming the loop, the cell its
    body looks like and what was not recognized."""
    found = loop_recurrence(vg, node)
    if found is None or isinstance(found, Rewrite):
        return found  # None: the forward loop of a masked pair, refused with its backward loop
    body = vg.attr(node, "body")
    ops: dict[str, int] = {}
    splits = []
    for n in body.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
        if n.op_type == "Split":
            splits.append(len(n.output))
    cell = next((_CELLS[k] for k in splits if k in _CELLS), None)
    if cell is None and ops.get("MatMul", 0) >= 2 and not splits:
        cell = "a SimpleRNN step"
    masked = "Not" in ops or "Where" in ops
    return (f"expected fused LSTM/GRU/RNN nodes or a Loop of one Keras SimpleRNN/GRU/LSTM step, masked or not, "
            f"found a recurrence Loop "
            f"({cell or 'no recognized cell'}{', masked' if masked else ''}; {len(body.node)} body nodes) that "
            f"was not recognized: {found}; use gateport on the Keras file itself")


#: patterns applied before time_major_inputs (which looks for graph inputs read straight by a recurrent node)
EARLY = [("sorted_batch", ("TopK",), sorted_batch)]
#: (name, anchor op(s), function): each tried on every node, in this order (a later pattern may need
#: what an earlier one leaves: the Dense of an unrolled TimeDistributed before its steps' slices are read)
PATTERNS = [
    ("float_count", ("Greater",), float_count),
    ("select_lowered", ("Add",), select_lowered),
    ("masking_product", ("Mul",), masking_product),
    ("recurrence_loop", ("Loop",), _loop),
    ("unrolled_rnn", ("MatMul",), unrolled_rnn),
    ("unrolled_time_distributed", ("Concat",), _unrolled_time_distributed),
    ("negative_ids_wrapped", ("Gather",), _negative_ids_wrapped),
    ("unsqueeze_gather", ("Gather",), unsqueeze_gather),
    ("layer_view_gather", ("Gather",), layer_view_gather),
    ("zero_initial_state", _RECURRENT, _zero_initial_state),
    ("bidirectional_pair", _RECURRENT, _bidirectional_pair),
    ("slice_one_squeeze", ("Slice",), _slice_one_squeeze),
    ("full_reverse_sequence", ("ReverseSequence",), _full_reverse_sequence),
    ("time_major_reduce", _REDUCES, _time_major_reduce),
    ("time_major_merge", ("Transpose",), _time_major_merge),
    ("time_major_dense", ("Transpose",), time_major_dense),
    ("tensordot_dense", ("MatMul",), _tensordot_dense),
    ("computed_reshape", ("Reshape",), _computed_reshape),
    ("static_time_reshape", ("Reshape",), static_time_reshape),
]


# -- driving ---------------------------------------------------------------------------------------
def normalize(onnx, proto, path: str | None, tensors) -> tuple[object, dict[str, str], list[str]]:
    """``(proto, misses, applied)``: the model with every pattern applied (a copy; ``proto`` itself when
    nothing matched), per node that a pattern nearly matched (by :func:`where`) ``pattern: why not``,
    and the names of the patterns applied, in order.

    Each pass applies every match of the first pattern that matches anywhere (matches that share no
    node), so the work grows with the number of passes (a few per nesting of constructs), not with
    the number of matches. A node no pattern reads (another domain's, a quantized op) is refused first
    (:func:`converters.readers.onnx_foreign.refuse_foreign_nodes`)."""
    refuse_foreign_nodes(onnx, proto, path)
    nodes, cache, inits, misses = list(proto.graph.node), {}, [], {}
    early = _rewrites(ValueGraph(onnx, nodes, proto.graph, tensors, cache), misses, EARLY)
    nodes = _live(_apply(nodes, early), {o.name for o in proto.graph.output}) if early else nodes
    proto, nodes, applied = time_major_inputs(onnx, proto, nodes, ValueGraph(onnx, nodes, proto.graph, tensors, cache))
    applied = [rw.pattern for rw in early] + applied
    opset = default_opset(onnx, proto, path)
    for _ in range(_MAX_PASSES):
        vg = ValueGraph(onnx, nodes, proto.graph, tensors, cache, inits)
        vg.opset = opset
        batch = _rewrites(vg, misses)
        if not batch:
            break
        nodes = _live(_apply(nodes, batch), {o.name for o in proto.graph.output})
        applied += [rw.pattern for rw in batch]
        inits += [t for rw in batch for t in rw.initializers]
    loop = next((n for n in nodes if n.op_type == "Loop" and where(n) in misses), None)
    if loop is not None:  # the reader reads no Loop: say why this one was not recognized
        raise UnsupportedError(misses[where(loop)].split(": ", 1)[1], layer=where(loop))
    alive = {where(n) for n in nodes}
    misses = {k: v for k, v in misses.items() if k in alive}
    unrolled = _unrolled_steps(ValueGraph(onnx, nodes, proto.graph, tensors, cache, inits))
    if unrolled:
        misses[GRAPH] = unrolled
    if not applied:
        return proto, misses, applied
    out = type(proto)()
    out.CopyFrom(proto)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(inits)
    return out, misses, applied


def _rewrites(vg: ValueGraph, misses: dict[str, str], patterns: list = PATTERNS) -> list[Rewrite]:
    """Every match (sharing no node with an earlier one) of the first pattern, in ``patterns`` order,
    that matches a node."""
    for name, ops, fn in patterns:
        batch, taken = [], set()
        for node in vg.nodes:
            if node.op_type not in ops or id(node) in taken:
                continue
            try:
                found = fn(vg, node)
            except _MALFORMED:  # a node not valid at its opset: the reader checks it and says why
                continue
            if isinstance(found, Rewrite) and not taken.intersection(id(n) for n in found.remove):
                misses.pop(where(node), None)
                batch.append(found)
                taken.update(id(n) for n in found.remove)
            elif isinstance(found, str):
                misses[where(node)] = f"{name}: {found}"
        if batch:
            return batch
    return []


def _apply(nodes: list, batch: list[Rewrite]) -> list:
    """``nodes`` with each rewrite's nodes removed and its new nodes where its last removed node was."""
    index = {id(n): k for k, n in enumerate(nodes)}
    gone = {id(n) for rw in batch for n in rw.remove}
    at: dict[int, list] = {}
    for rw in batch:
        at.setdefault(max(index[id(n)] for n in rw.remove), []).extend(rw.add)
    out = []
    for k, n in enumerate(nodes):
        if id(n) not in gone:
            out.append(n)
        out.extend(at.get(k, ()))
    return _toposorted(out)


def _reads(node) -> set[str]:
    """The tensors a node reads, those its subgraphs read from the outer graph included."""
    names = {i for i in node.input if i}
    for a in node.attribute:
        if a.HasField("g"):
            names.update(i for sub in a.g.node for i in sub.input if i)
    return names


def _toposorted(nodes: list) -> list:
    """``nodes`` with every producer before its consumers, otherwise in their order (a rewrite's new
    nodes go where its last removed node was, which may follow a use of what they compute)."""
    import heapq

    producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    needs = [{producer[i] for i in _reads(n) if i in producer and producer[i] != k} for k, n in enumerate(nodes)]
    users: dict[int, list[int]] = {}
    for k, deps in enumerate(needs):
        for d in deps:
            users.setdefault(d, []).append(k)
    waiting = [len(d) for d in needs]
    ready = [k for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users.get(k, ()):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):  # a cycle (a hostile file): leave the order to the reader's checks
        return nodes
    return [nodes[k] for k in order]


def _live(nodes: list, outputs: set[str]) -> list:
    """Drop nodes whose outputs nothing reads (the shape chains a rewrite left behind)."""
    needed, kept = set(outputs), []
    for n in reversed(nodes):
        if needed.intersection(n.output):
            kept.append(n)
            needed.update(i for i in n.input if i)
            for a in n.attribute:  # a subgraph reads names of the outer graph
                if a.HasField("g"):
                    needed.update(i for sub in a.g.node for i in sub.input)
    return kept[::-1]


def closest(misses: dict[str, str], layer: str | None) -> str | None:
    """The near miss recorded for the node an error names (else one recorded for the whole graph), for
    its message."""
    return (misses.get(layer) if layer else None) or misses.get(GRAPH)


def _unrolled_steps(vg: ValueGraph) -> str | None:
    """A recurrence unrolled step by step (PyTorch's dynamo exporter on nn.RNN; an nn.LSTMCell/GRUCell
    called in a Python loop over time, both exporters): one constant weight multiplying (MatMul, Gemm),
    again and again, what an activation (or a cell's gate product or sum) made of the previous product."""
    chained: dict[str, int] = {}
    for n in vg.nodes:
        if n.op_type in ("MatMul", "Gemm") and len(n.input) >= 2 and vg.is_const(n.input[1]):
            src = vg.producer.get(n.input[0])
            if src is not None and src.op_type in ("Tanh", "Sigmoid", "Relu", "Mul", "Add"):
                chained[n.input[1]] = chained.get(n.input[1], 0) + 1
    weight, count = max(chained.items(), key=lambda kv: kv[1], default=(None, 0))
    if count < 2:
        return None
    return (f"unrolled_recurrence: the graph multiplies by {quote(weight)} once per step ({count + 1} steps), "
            f"a recurrence unrolled over a static time axis; gateport reads fused LSTM/GRU/RNN nodes and "
            f"Loops, not unrolled steps")
