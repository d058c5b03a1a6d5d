"""Patterns of PyTorch's exporters (torch.onnx) that the other tools do not write.

* ``unrolled_rnn``: the dynamo exporter writes ``nn.RNN`` as one step per time step over a static time
  axis: ``h_t = act(h_{t-1} @ R + b_hh + P[t])`` with ``P = X @ W + b_ih`` projected once, ``h_0``
  zeros, the steps stacked by ``Concat`` when the sequence is used. Read back as the ONNX ``RNN`` it
  unrolls (``Y`` for the stacked steps, ``Y_h`` for the last one).
* ``time_major_input``: ``batch_first=False`` modules read their input ``[time, batch, features]``
  straight into the recurrent node (or their ids ``[time, batch]`` through an embedding ``Gather``). gateport's IR is batch-first, so the graph input is declared
  ``[batch, time, features]`` and transposed in front of its uses (:func:`time_major_inputs`); a
  graph output that is then time-major is transposed back to batch-first (``time_major_output``), and
  a Dense on a time-major sequence is moved after the transpose (``time_major_dense``). The model
  gateport reads therefore takes (and gives) sequences batch-first: ``x.transpose(0, 1)`` of the file's.
"""
from __future__ import annotations

import numpy as np

from ..sanitize import quote
from .onnx_rewrite import Rewrite, fresh, op_of as _op, step_of, zeros
from .onnx_value_graph import ValueGraph, shown

_ACTS = ("Tanh", "Relu")
_RECURRENT = ("LSTM", "GRU", "RNN")
#: what a time-major input is renamed to inside the graph
TIME_MAJOR_SUFFIX = "/time_major"


def _const_operand(vg: ValueGraph, node, rank: int):
    """``(other input, constant input)`` of a two-input node with one constant of ``rank``."""
    for a, b in (node.input, node.input[::-1]):
        if vg.is_const(b) and vg.rank(b) == rank and not vg.is_const(a):
            return a, b
    return None


def _one_step(vg: ValueGraph, h: str, r: str):
    """``(new h, projected sequence, t, nodes, activation)`` of one unrolled step reading ``h``, or a str."""
    mm = next((n for n in vg.consumers.get(h, []) if n.op_type == "MatMul" and list(n.input) == [h, r]), None)
    if mm is None:
        return None
    nodes, top, b_hh = [mm], mm, None
    add = vg.only_consumer(mm.output[0])
    if add is not None and add.op_type == "Add" and _const_operand(vg, add, 1) is not None:
        b_hh, nodes, top = _const_operand(vg, add, 1)[1], nodes + [add], add
        add = vg.only_consumer(add.output[0])
    if add is None or add.op_type != "Add":
        return "expected the recurrent product added to one step of the projected input"
    other = add.input[1] if add.input[0] == top.output[0] else add.input[0]
    step = step_of(vg, other) if vg.only_consumer(other) is add else None
    act = vg.only_consumer(add.output[0])
    if step is None or act is None or act.op_type not in _ACTS:
        return "expected Add(recurrent product, Squeeze(Slice(projected input, t:t+1))) then Tanh or Relu"
    return act.output[0], step[0], step[1], nodes + [add, act] + step[2], act.op_type, b_hh


def _projection(vg: ValueGraph, seq: str):
    """``(time-major X, W [in, units], b_ih or None, nodes)`` for ``seq = X @ W (+ b_ih)``."""
    add = _op(vg, seq, "Add")
    bias = _const_operand(vg, add, 1) if add is not None else None
    mm = _op(vg, bias[0], "MatMul") if bias is not None else _op(vg, seq, "MatMul")
    if mm is None or not vg.is_const(mm.input[1]) or vg.rank(mm.input[1]) != 2 or vg.rank(mm.input[0]) != 3:
        return None
    return mm.input[0], mm.input[1], bias[1] if bias is not None else None


def unrolled_rnn(vg: ValueGraph, node):
    """MatMul of a zero state by a constant, the first of T unrolled ``nn.RNN`` steps -> one ONNX RNN."""
    h0, r = node.input[0], node.input[1]
    if not vg.is_const(r) or vg.rank(r) != 2 or not zeros(vg, h0) or vg.rank(h0) not in (2, 3):
        return None
    h, states, removed, seq, act, b_hh = h0, [], [], None, None, None
    while True:
        found = _one_step(vg, h, r)
        if found is None:
            break
        if isinstance(found, str):
            return found
        h, s, t, nodes, a, b = found
        if t != len(states) or seq not in (None, s) or act not in (None, a) or (states and b != b_hh):
            return f"expected step {len(states)} of the same projected input, activation and bias"
        seq, act, b_hh = s, a, b
        states.append(h)
        removed += nodes
    dims = vg.dims(seq) if seq else None
    if len(states) < 2 or dims is None or len(dims) != 3 or dims[0] != len(states):
        return f"expected one step per time step of the projected input, found {len(states)} of dims {dims}"
    proj = _projection(vg, seq)
    if proj is None:
        return "expected the projected input to be MatMul(time-major X, constant W) + constant bias"
    stacked = _stacked(vg, states)
    if isinstance(stacked, str):
        return stacked
    return _fused_rnn(vg, node, proj, r, b_hh, act, h0, states[-1], stacked, removed)


def _stacked(vg: ValueGraph, states: list[str]):
    """The Concat of every step's state on axis 0 (the output sequence), None when unused, or a str."""
    for h in states[:-1]:
        others = [n for n in vg.consumers.get(h, []) if n.op_type != "MatMul"]
        if h in vg.outputs or any(n.op_type != "Concat" for n in others) or len(others) > 1:
            return f"expected step state {quote(h)} used only by the next step and the stacked sequence"
    cat = next((n for n in vg.consumers.get(states[0], []) if n.op_type == "Concat"), None)
    if cat is None:
        return None
    if list(cat.input) != states or int(vg.attr(cat, "axis", 0)) != 0 or vg.rank(states[0]) != 3:
        return "expected the steps' states stacked in order by one Concat on axis 0"
    return cat


def _fused_rnn(vg: ValueGraph, node, proj, r, b_hh, act, h0, last, cat, removed) -> Rewrite:
    x, w, b_ih = proj
    hidden = int(vg.dims(r)[1])
    h, names = vg.onnx.helper, [fresh(vg, f"{node.name or 'rnn'}/unrolled/{k}") for k in ("W", "R", "B", "Y", "axis")]
    zero = np.zeros(hidden, np.float32)
    b = np.concatenate([vg.const(b_ih) if b_ih else zero, vg.const(b_hh) if b_hh else zero])[None]
    arrays = (vg.const(w).T[None], vg.const(r).T[None], b, np.array([1], np.int64))
    inits = [vg.onnx.numpy_helper.from_array(np.ascontiguousarray(a), n) for a, n in zip(arrays, names[:3] + names[4:])]
    y_h = last if vg.rank(h0) == 3 else fresh(vg, f"{last}/state")
    adds = [h.make_node("RNN", [x, *names[:3]], [names[3] if cat else "", y_h], name=names[3], hidden_size=hidden,
                        activations=[act])]
    if y_h != last:
        adds.append(h.make_node("Squeeze", [y_h, fresh(vg, "axis0")], [last], name=last))
        inits.append(vg.onnx.numpy_helper.from_array(np.array([0], np.int64), adds[-1].input[1]))
    if cat is not None:
        adds.append(h.make_node("Squeeze", [names[3], names[4]], list(cat.output), name=cat.name))
        removed = removed + [cat]
    return Rewrite("unrolled_rnn", removed, adds, inits)


# -- time-major inputs ---------------------------------------------------------------------------------
def _passes_through(vg: ValueGraph, node) -> bool:
    """``node`` hands its first input on unchanged at inference: ``Identity``, a ``Cast`` to float32, a
    ``Dropout`` (its training-only mask and ``training_mode`` are checked where the reader reads it)."""
    if node.op_type == "Cast":  # Cast-1 to -5 name the type as a string: read (or refused) by the op's reader
        return vg.attr(node, "to", 0) == 1
    return node.op_type in ("Identity", "Dropout")


def _time_major_uses(vg: ValueGraph, name: str) -> bool:
    """``name`` is the ``X`` of a layout-0 recurrent node read without a Transpose (rank 3), or its
    ``initial_h`` / ``initial_c`` ([dirs, batch, hidden]: torch.onnx passes ``h0`` / ``c0`` straight in),
    or the ids of an embedding ``Gather`` that is (rank 2)."""
    def feeds_x(t: str, depth: int = 0) -> bool:  # straight, or through Identity / Cast to float / Dropout
        return vg.rank(t) == 3 and any(
            n.op_type in _RECURRENT and n.input and n.input[0] == t and not int(vg.attr(n, "layout", 0))
            or depth < 8 and n.input and n.input[0] == t and _passes_through(vg, n) and feeds_x(n.output[0], depth + 1)
            for n in vg.consumers.get(t, []))
    if vg.rank(name) == 2:
        users = vg.consumers.get(name, [])
        return bool(users) and all(n.op_type == "Gather" and list(n.input)[1:] == [name] and vg.is_const(n.input[0])
                                   and int(vg.attr(n, "axis", 0)) == 0 and feeds_x(n.output[0]) for n in users)
    def feeds_state(t: str, sliced: bool = False) -> bool:  # torch's h0 of several layers: Slice / Split on axis 0
        users = vg.consumers.get(t, [])
        return bool(users) and all(
            n.op_type in _RECURRENT and t in list(n.input)[5:7] and not int(vg.attr(n, "layout", 0))
            or not sliced and n.op_type == "Slice" and n.input[0] == t and feeds_state(n.output[0], True)
            or not sliced and n.op_type == "Split" and n.input[0] == t  # (onnxruntime's fusion of those Slices)
            and all(o and feeds_state(o, True) for o in n.output)
            for n in users)
    return feeds_x(name) or vg.rank(name) == 3 and feeds_state(name)


def time_major_inputs(onnx, proto, nodes: list, vg: ValueGraph) -> tuple[object, list, list[str]]:
    """``(proto, nodes, names)``: each graph input read time-major straight into a recurrent node declared
    batch-first instead and transposed in front of its uses (``time_major_input``); each rank-3 graph
    output that is then time-major (the relaid input's time and batch axes, in that order) transposed to
    batch-first (``time_major_output``). ``proto`` is a copy when anything changed."""
    names = [vi.name for vi in proto.graph.input if vi.name not in vg.initializers and _time_major_uses(vg, vi.name)]
    if not names:
        return proto, nodes, []
    out = type(proto)()
    out.CopyFrom(proto)
    h, inner = onnx.helper, {n: n + TIME_MAJOR_SUFFIX for n in names if vg.rank(n) == 3}
    added = [h.make_node("Transpose", [n], [inner[n]], perm=[1, 0, 2], name=inner[n]) for n in inner]
    nodes = added + [_renamed(h, n, inner) for n in nodes]
    ids = {n for n in names if n not in inner}  # embedded batch-first, then transposed: Gather's rows move along
    embedded = {g.output[0]: g.output[0] + "/batch_first" for i in ids for g in vg.consumers.get(i, [])}
    # each Transpose right after its Gather: the nodes stay in order, so the shapes followed below (which
    # outputs are time-major) reach past it (appended last, a Linear on the time-major sequence was not seen)
    nodes = [m for n in nodes for m in (
        [_renamed(h, n, embedded), h.make_node("Transpose", [embedded[n.output[0]]], [n.output[0]], perm=[1, 0, 2],
                                               name=n.output[0])]
        if n.op_type == "Gather" and n.output and n.output[0] in embedded else [n])]
    for vi in out.graph.input:
        if vi.name in names:
            _swap01(vi)
            _pin_traced_time(vg, vi)
    relaid = ValueGraph(onnx, nodes, out.graph, vg.tensors, vg.cache)
    symbols = {tuple(relaid.dims(n)[1::-1]) for n in names}  # (time, batch) of each relaid input
    outputs = [vi for vi in out.graph.output if (relaid.dims(vi.name) or ())[:2] in symbols
               and len(relaid.dims(vi.name)) == 3]
    back = {vi.name: vi.name + TIME_MAJOR_SUFFIX for vi in outputs}
    nodes = [_renamed(h, n, back) for n in nodes]
    nodes += [h.make_node("Transpose", [back[o]], [o], perm=[1, 0, 2], name=o) for o in back]
    for vi in outputs:
        _swap01(vi)
    return out, nodes, ["time_major_input"] * len(names) + ["time_major_output"] * len(outputs)


def _pin_traced_time(vg: ValueGraph, vi) -> None:
    """Declare the (relaid) input's time size when the exporter wrote the traced one into the graph: the
    dynamo exporter's ``Reshape(Transpose(Y, [0, 2, 1, 3]), [T, -1, H])`` of a node reading this input
    computes the file's numbers only at that ``T`` (:func:`static_time_reshape` then reads it). Stacked
    layers (``num_layers`` > 1) are followed: each layer's ``Y`` reaches the next through a computed
    ``Reshape`` (read by ``computed_reshape``) that keeps the time axis; often only the last is traced."""
    time = vi.type.tensor_type.shape.dim[1]
    if time.HasField("dim_value"):
        return
    traced, frontier, seen = set(), [vi.name], set()
    while frontier:
        name = frontier.pop()
        if name in seen:
            continue
        seen.add(name)
        for rec in vg.consumers.get(name, []):
            if rec.op_type not in _RECURRENT or not rec.output or rec.input[0] != name:
                continue
            for tr in vg.consumers.get(rec.output[0], []):
                if tr.op_type != "Transpose" or [int(q) for q in vg.attr(tr, "perm", [])] != [0, 2, 1, 3]:
                    continue
                for r in vg.consumers.get(tr.output[0], []):
                    if r.op_type != "Reshape":
                        continue
                    target = vg.ints(r.input[1])
                    if target is None:  # computed from Shape: the next layer's X, time kept
                        frontier.append(r.output[0])
                    elif len(target) == 3:
                        traced.add(target[0])
    if len(traced) == 1 and min(traced) > 0:
        time.dim_value = traced.pop()


def _renamed(h, node, names: dict):
    """``node``, or a copy of it reading and writing ``names[t]`` for each of its tensors ``t`` in ``names``."""
    if not any(t in names for t in list(node.input) + list(node.output)):
        return node
    new = type(node)()
    new.CopyFrom(node)
    for target in (new.input, new.output):
        for k, t in enumerate(target):
            target[k] = names.get(t, t)
    return new


def _swap01(vi) -> None:
    """The declared dims of a graph input or output with its first two axes swapped."""
    dims = vi.type.tensor_type.shape.dim
    if len(dims) >= 2:
        a, b = type(dims[0])(), type(dims[1])()
        a.CopyFrom(dims[1])
        b.CopyFrom(dims[0])
        dims[0].CopyFrom(a)
        dims[1].CopyFrom(b)


def time_major_dense(vg: ValueGraph, node):
    """Transpose(Add(MatMul(s, W), b), [1, 0, 2]) -> Add(MatMul(Transpose(s), W), b): a Dense (torch's
    Linear) on a time-major sequence, moved after the transpose to batch-first (it acts on the last axis)."""
    if [int(p) for p in vg.attr(node, "perm", [])] != [1, 0, 2]:
        return None
    chain, top = [], vg.producer.get(node.input[0])
    bias = None
    if top is not None and top.op_type == "Add" and _const_operand(vg, top, 1) is not None:
        bias, chain, top = _const_operand(vg, top, 1)[1], [top], vg.producer.get(_const_operand(vg, top, 1)[0])
    if top is None or top.op_type != "MatMul" or not vg.is_const(top.input[1]) or vg.rank(top.input[1]) != 2 \
            or vg.rank(top.input[0]) != 3:
        return None
    chain = [top] + chain
    if any(vg.only_consumer(n.output[0]) not in chain[k + 1:] + [node] for k, n in enumerate(chain)):
        return "expected the Dense used only by this Transpose"
    h, bf = vg.onnx.helper, fresh(vg, f"{top.input[0]}/batch_first")
    adds = [h.make_node("Transpose", [top.input[0]], [bf], perm=[1, 0, 2], name=bf)]
    if bias is None:
        adds.append(h.make_node("MatMul", [bf, top.input[1]], list(node.output), name=node.name))
    else:
        product = fresh(vg, f"{node.output[0]}/matmul")
        adds += [h.make_node("MatMul", [bf, top.input[1]], [product], name=product),
                 h.make_node("Add", [product, bias], list(node.output), name=node.name)]
    return Rewrite("time_major_dense", chain + [node], adds)


def unsqueeze_gather(vg: ValueGraph, node):
    """Gather(Unsqueeze(t, 0), 0, axis 0) -> Identity(t): the dynamo exporter stacking one layer's final
    state into ``h_n`` and picking ``h_n[-1]`` back out."""
    unsq = vg.producer.get(node.input[0]) if node.input else None
    if unsq is None or unsq.op_type != "Unsqueeze" or vg.axes(unsq) != [0] or int(vg.attr(node, "axis", 0)) != 0:
        return None
    if vg.ints(node.input[1]) not in ([0], [-1]) or vg.rank(node.input[1]) != 0:
        return "expected index 0 or -1 (a scalar) of the one stacked tensor"
    return Rewrite("unsqueeze_gather", [node],
                   [vg.onnx.helper.make_node("Identity", [unsq.input[0]], list(node.output), name=node.name)])


def layer_view_gather(vg: ValueGraph, node):
    """Gather(Reshape(Concat(h_1, ..., h_L), [L, dirs, -1, H]), k, axis 0) -> Identity(h_k): PyTorch's
    ``h_n.view(num_layers, num_directions, batch, hidden)[k]`` (the TorchScript exporter's ``h_n`` is the
    ``Concat`` on axis 0 of each layer's node's ``Y_h`` [dirs, batch, H]; one layer: that ``Y_h`` itself), the
    view's layer ``k`` being that layer's state (torch/nn/modules/rnn.py documents ``h_n``'s layout)."""
    view = _op(vg, node.input[0], "Reshape")
    if view is None or int(vg.attr(node, "axis", 0)) != 0 or int(vg.attr(view, "allowzero", 0)):
        return None
    cat = _op(vg, view.input[0], "Concat")
    sources = list(cat.input) if cat is not None and int(vg.attr(cat, "axis", 0)) == 0 else [view.input[0]]
    states = [vg.producer.get(s) for s in sources]
    if not all(p is not None and p.op_type in _RECURRENT and s in p.output[1:] for s, p in zip(sources, states)):
        return None
    dims = [vg.dims(s) for s in sources]
    target = vg.ints(view.input[1]) if vg.const(view.input[1]) is not None else vg.shape_value(view.input[1])
    if target is None or len(target) != 4 or any(d is None or len(d) != 3 or d[0] != dims[0][0] or d[2] != dims[0][2]
                                                 for d in dims):
        return "expected a view [layers, dirs, batch, hidden] of the stacked layers' final states"
    layers, dirs, batch, hidden = len(sources), dims[0][0], dims[0][1], dims[0][2]
    sizes = [layers * dirs if target[0] == 0 else target[0], batch if target[1] == 0 else target[1], target[2],
             target[3]]
    if sizes[:2] != [layers, dirs] or sizes[2] not in (-1, 0, batch) or sizes[3] != hidden:
        return f"expected the view {shown([layers, dirs, -1, hidden])}, found {shown(target)}"
    index = vg.ints(node.input[1])
    if index is None or len(index) != 1 or vg.rank(node.input[1]) != 0 or not -len(sources) <= index[0] < len(sources):
        return f"expected one layer's index (a scalar below {len(sources)})"
    return Rewrite("layer_view_gather", [node],
                   [vg.onnx.helper.make_node("Identity", [sources[index[0]]], list(node.output), name=node.name)])


def static_time_reshape(vg: ValueGraph, node):
    """Reshape(Transpose(Y, [0, 2, 1, 3]), [T, -1, dirs * H]) of a node whose time axis is statically T
    (the dynamo exporter joining the directions of a time-major Y; the batch written in too, ``[T, B, 2H]``,
    where the input declares that batch) -> Squeeze(Y, 1) for one direction, Reshape(Transpose(Y), [0, 0, -1])
    (both directions joined, the form the reader reads) for two."""
    tr = _op(vg, node.input[0], "Transpose")
    rec = vg.producer.get(tr.input[0]) if tr is not None else None
    if rec is None or rec.op_type not in _RECURRENT or tr.input[0] != rec.output[0] \
            or [int(q) for q in vg.attr(tr, "perm", [])] != [0, 2, 1, 3]:
        return None
    dims, target = vg.dims(node.input[0]), vg.ints(node.input[1])
    if dims is None or len(dims) != 4 or dims[2] not in (1, 2) or not isinstance(dims[3], int) or target is None \
            or len(target) != 3 or target[1] not in (-1, dims[1]) or target[2] != dims[2] * dims[3]:
        return "expected Y reshaped to [time, -1, directions * hidden]"
    if target[0] != dims[0]:
        return (f"expected the time size {target[0]} fixed by the exporter to be the input's, found a time axis "
                f"the input declares {'dynamic' if not isinstance(dims[0], int) else dims[0]}")
    h, arg = vg.onnx.helper, fresh(vg, f"{node.output[0]}/{'axis' if dims[2] == 1 else 'shape'}")
    if dims[2] == 2:
        return Rewrite("static_time_reshape", [node],
                       [h.make_node("Reshape", [node.input[0], arg], list(node.output), name=node.name)],
                       [vg.onnx.numpy_helper.from_array(np.array([0, 0, -1], np.int64), arg)])
    return Rewrite("static_time_reshape", [node],  # [T, 1, B, H] -> [T, B, H]: Y's directions axis dropped
                   [h.make_node("Squeeze", [tr.input[0], arg], list(node.output), name=node.name)],
                   [vg.onnx.numpy_helper.from_array(np.array([1], np.int64), arg)])


def _through_cast(vg: ValueGraph, name: str) -> str:
    cast = _op(vg, name, "Cast")
    return cast.input[0] if cast is not None else name


def _inverse_of(vg: ValueGraph, name: str, order: set[str]) -> bool:
    """``name`` is ``ScatterElements(data, i, Range(0, n, 1), axis 0)`` with ``i`` in ``order``: the inverse
    permutation of ``i`` (``inv[i[k]] = k``; every position written, so ``data`` is only its shape)."""
    scatter = _op(vg, _through_cast(vg, name), "ScatterElements")
    if scatter is None or int(vg.attr(scatter, "axis", 0)) != 0 or scatter.input[1] not in order:
        return False
    rng = _op(vg, _through_cast(vg, scatter.input[2]), "Range")
    return rng is not None and vg.ints(rng.input[0]) == [0] and vg.ints(rng.input[2]) == [1]


def _carried(vg: ValueGraph, node, region: dict[str, int], values: set[str]) -> list[int] | None:
    """Where the batch axis of each output of ``node`` is when its inputs in ``region`` hold the batch (on the
    axes ``region`` gives) in another order: for the ops that compute each sample from that sample alone (a
    recurrent node whose ``sequence_lens`` are ``values``, reordered alike) or move axes other than the batch's;
    None for any other."""
    op, ins = node.op_type, list(node.input)
    axis = region.get(ins[0]) if ins else None
    if op == "Shape":
        return []
    if op in ("Identity", "Cast") and axis is not None:
        return [axis]
    if op == "Transpose" and axis is not None:
        perm = [int(p) for p in vg.attr(node, "perm", ())]
        return [perm.index(axis)] if axis in perm else None
    if op in ("Squeeze", "Slice") and axis is not None and not any(i in region for i in ins[1:]):
        rank = vg.rank(ins[0])
        axes = vg.axes(node) if op == "Squeeze" else vg.slice_args(node)[2]
        if not axes or not rank or axis in [a % rank for a in axes]:
            return None
        return [axis - sum(a % rank < axis for a in axes)] if op == "Squeeze" else [axis]
    if op == "Reshape" and axis is not None and ins[1] not in region and not int(vg.attr(node, "allowzero", 0)):
        shape, before = vg.ints(ins[1]), vg.dims(ins[0])  # the axes up to the batch's kept: each sample's block
        keeps = shape is not None and before is not None and len(shape) > axis and all(  # regrouped on its own
            shape[k] == 0 or k < axis and isinstance(before[k], int) and shape[k] == before[k] for k in range(axis + 1))
        return [axis] if keeps else None
    if op == "Split" and axis is not None and not any(i in region for i in ins[1:]):  # (onnxruntime's Slices)
        rank = vg.rank(ins[0])
        return [axis] * len(node.output) if rank and int(vg.attr(node, "axis", 0)) % rank != axis else None
    if op == "Concat" and all(region.get(i) == axis for i in ins) and axis is not None:
        rank = vg.rank(ins[0])
        return [axis] if rank and int(vg.attr(node, "axis", 0)) % rank != axis else None
    if op in _RECURRENT and axis == 1 and not int(vg.attr(node, "layout", 0)) \
            and all(vg.is_const(i) for i in ins[1:4] if i) and (len(ins) < 5 or ins[4] in values or not ins[4]) \
            and all(region.get(i) == 1 for i in ins[5:7] if i):
        return [2, 1, 1][:len(node.output)]
    return None


def sorted_batch(vg: ValueGraph, topk):
    """Recurrent nodes run on the batch sorted by length, their outputs put back in order -> the nodes on the
    batch as it is, ``sequence_lens`` the lengths unsorted: ``pack_padded_sequence(x, lengths,
    enforce_sorted=False)`` (torch/nn/utils/rnn.py: ``torch.sort(lengths, descending=True)``, ``index_select`` of
    the input and of the initial states by its indices, the outputs taken back by ``unsorted_indices``), which the
    TorchScript exporter writes as TopK, Gather of X (batch axis) and of initial_h / initial_c (axis 1), the layers
    (and the Squeeze / Transpose / Slice / Concat between them) on the sorted batch, and Gather of what leaves by
    ``ScatterElements(zeros, indices, Range(0, n, 1))``. Each op between computes every sample from that sample
    alone (:func:`_carried` follows the batch axis through them), so the permutation and its inverse cancel."""
    lengths = topk.input[0]
    values = {topk.output[0]} | {c.output[0] for c in vg.consumers.get(topk.output[0], []) if c.op_type == "Cast"}
    order = {topk.output[1]} | {c.output[0] for c in vg.consumers.get(topk.output[1], []) if c.op_type == "Cast"}
    if not any(n.op_type in _RECURRENT for v in values for n in vg.consumers.get(v, [])):
        return None
    k = vg.shape_value(topk.input[1]) if len(topk.input) > 1 else None
    dims = vg.dims(lengths)
    if dims is None or len(dims) != 1 or int(vg.attr(topk, "axis", -1)) not in (0, -1) \
            or not int(vg.attr(topk, "largest", 1)) or k is None or list(k) != [dims[0]]:
        return "expected TopK of every one of a (batch,) tensor of lengths, largest first (the batch sorted by length)"
    region: dict[str, int] = {}
    unsorted: dict[str, str] = {}  # a Gather's output in the sorted order -> the tensor it reorders
    seeds, exits, rewired = [], [], []
    for node in vg.nodes:
        ins = list(node.input)
        if node.op_type == "Gather" and len(ins) == 2 and ins[1] in order and ins[0] not in region:
            shape, axis = vg.dims(ins[0]), int(vg.attr(node, "axis", 0))
            size = shape[axis % len(shape)] if shape else None  # a row per sample (not a table): the batch's
            if size is None or size != dims[0] and (isinstance(size, int) or isinstance(dims[0], int)
                                                    or vg.is_const(ins[0])):  # size, or both run-time sizes
                return f"expected a tensor with an axis of the batch's size taken in the sorted order, found " \
                       f"{quote(ins[0])} of shape {shown(shape) if shape else 'unknown'}"
            region[node.output[0]], unsorted[node.output[0]] = axis % len(shape), ins[0]
            seeds.append(node)
        elif node.op_type == "Gather" and len(ins) == 2 and ins[0] in region and _inverse_of(vg, ins[1], order):
            rank = vg.rank(ins[0])
            if not rank or int(vg.attr(node, "axis", 0)) % rank != region[ins[0]]:
                return f"expected {quote(node.output[0])} put back in order on the batch axis {region[ins[0]]}"
            exits.append(node)
        elif node.op_type == "Cast" and ins[:1] == [topk.output[0]] or node is topk:
            continue
        elif any(i in region or i in values for i in ins):
            axes = _carried(vg, node, region, values)
            if axes is None:
                return (f"expected ops computing each sample from that sample alone between the sort and its "
                        f"inverse, found {node.op_type} {quote(node.name or node.output[0])}")
            region.update(zip(node.output, axes))
            rewired.append(node)
    leaks = [o for o in region if o in vg.outputs]
    if leaks:
        return f"expected every output put back in the batch's order, found graph output {quote(leaks[0])} sorted"
    h = vg.onnx.helper
    lens = fresh(vg, f"{topk.output[0]}/unsorted")
    added = [h.make_node("Cast", [lengths], [lens], to=6, name=lens)]  # int32, as sequence_lens is
    for node in rewired:
        new = h.make_node(node.op_type, [unsorted.get(i, lens if i in values else i) for i in node.input],
                          list(node.output), name=node.name)
        new.attribute.extend(node.attribute)
        added.append(new)
    added += [h.make_node("Identity", [g.input[0]], [g.output[0]], name=g.name) for g in exits]
    return Rewrite("sorted_batch", [*seeds, *rewired, *exits], added)
