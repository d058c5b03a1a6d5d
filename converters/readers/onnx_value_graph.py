"""A read-only value graph of an ONNX model, for the patterns of :mod:`converters.readers.onnx_patterns`.

    vg = ValueGraph(onnx, nodes, graph, tensors, cache)
    vg.producer[name], vg.consumers[name], vg.const(name), vg.ints(name), vg.dims(name)

``dims(name)`` is the shape of a tensor as far as it follows from the graph: each axis an ``int``
(static), or a symbol (a tuple) standing for one run-time size, so that two axes with the same
symbol are known to be equal (the batch axis of the input and of every tensor derived from it).
``shape_value(name)`` is the value of a small integer tensor built from ``Shape`` (a list of such
dims), which is how tf2onnx and Keras' exporter compute run-time reshapes and zero states.

Constants are read through the reader's budgeted :class:`converters.readers.onnx_tensors.TensorReader`
and cached by tensor name across rebuilds of the graph.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import FormatError
from ..sanitize import quote

#: ops whose output has the shape of their first input
_SAME = {"Cast", "Identity", "Sigmoid", "Tanh", "Relu", "Softsign", "Softplus", "Elu", "Selu", "Exp", "Not",
         "Neg", "Abs", "HardSigmoid", "Softmax", "Dropout", "ReverseSequence", "CumSum"}
_BROADCAST = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Equal", "And", "Or", "Greater", "Less", "Where"}
#: slices whose end is at least this big run to the end of the axis (tf2onnx writes INT32_MAX)
BIG = 2**31 - 1


def shown(dims) -> str:
    """Sizes for a message: static sizes as numbers, run-time ones as ``?`` (never a tensor's name)."""
    if dims is None:
        return "unknown"
    return "[" + ", ".join(str(d) if isinstance(d, int) else "?" for d in dims) + "]"


def where(node) -> str:
    """How the reader names a node in messages: ``ONNX node 'name' (Op)``."""
    return f"ONNX node {quote(node.name or (node.output[0] if node.output else ''))} ({quote(node.op_type)[1:-1]})"


class ValueGraph:
    """Producers, consumers, constants and symbolic shapes of one list of nodes."""

    def __init__(self, onnx, nodes: list, graph, tensors, cache: dict, extra: list = ()):
        self.onnx, self.nodes, self.graph, self.tensors, self.cache = onnx, nodes, graph, tensors, cache
        #: the default domain's opset the model imports (onnx_patterns.normalize sets it): the form nodes
        #: a rewrite adds must take (Squeeze's axes an attribute before opset 13)
        self.opset = 13
        self.producer = {o: n for n in nodes for o in n.output if o}
        self.consumers: dict[str, list] = {}
        for n in nodes:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in graph.output}
        self.initializers = {t.name: t for t in list(graph.initializer) + list(extra)}
        self._dims: dict[str, tuple | None] = {}
        self._shape_values: dict[str, list | None] = {}
        for vi in graph.input:
            if vi.name not in self.initializers:
                dims = vi.type.tensor_type.shape.dim
                self._dims[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else (vi.name, k)
                                            for k, d in enumerate(dims))
        for n in nodes:
            try:
                self._infer(n)
            except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError):
                pass  # a shape it cannot follow stays unknown

    # -- constants -----------------------------------------------------------------------------
    def const(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant output (budgeted, cached), else None."""
        if not name:
            return None
        if name in self.cache:
            return self.cache[name]
        value = None
        if name in self.initializers:
            value = self.tensors.array(self.initializers[name], f"initializer {quote(name)}")
        else:
            node = self.producer.get(name)
            if node is not None and node.op_type == "Constant":
                attrs = {a.name: a for a in node.attribute}
                if "value" in attrs:
                    value = self.tensors.array(attrs["value"].t, where(node))
        self.cache[name] = value
        return value

    def is_const(self, name: str) -> bool:
        """Whether ``name`` is an initializer or a Constant's output (without reading its numbers)."""
        node = self.producer.get(name)
        return bool(name) and (name in self.initializers or node is not None and node.op_type == "Constant")

    def ints(self, name: str) -> list[int] | None:
        v = self.const(name)
        if v is None or v.dtype.kind not in "iu" or v.size > 64:
            return None
        return [int(i) for i in v.reshape(-1)]

    def attr(self, node, key: str, default=None):
        for a in node.attribute:
            if a.name == key:
                return self.onnx.helper.get_attribute_value(a)
        return default

    def axes(self, node) -> list[int] | None:
        """``axes`` of Squeeze/Unsqueeze/Reduce*: an attribute (older opsets) or input 1."""
        a = self.attr(node, "axes")
        if a is not None:
            return [int(x) for x in a]
        return self.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else None

    def slice_args(self, node) -> tuple[list[int] | None, list[int] | None, list[int] | None, list[int] | None]:
        """``(starts, ends, axes, steps)`` of a Slice as constant int lists (None where one is not
        constant): Slice-10 and later take them as inputs (axes default all, steps 1); Slice-1 (opsets
        1-9, what torch.onnx writes at opset 9) as attributes starts/ends/axes, with no steps
        (onnx/defs/tensor/old.cc Slice-1)."""
        if len(node.input) == 1 and self.attr(node, "starts") is not None:
            starts, ends = [int(v) for v in self.attr(node, "starts")], [int(v) for v in self.attr(node, "ends", [])]
            axes = [int(v) for v in self.attr(node, "axes", range(len(starts)))]
            return starts, ends, axes, [1] * len(starts)
        ins = list(node.input) + [""] * (5 - len(node.input))
        starts, ends = self.ints(ins[1]), self.ints(ins[2])
        axes = self.ints(ins[3]) if ins[3] else (list(range(len(starts))) if starts is not None else None)
        steps = self.ints(ins[4]) if ins[4] else ([1] * len(starts) if starts is not None else None)
        return starts, ends, axes, steps

    def only_consumer(self, name: str):
        """The one node that reads ``name`` (not a graph output), else None."""
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in self.outputs else None

    # -- symbolic shapes ---------------------------------------------------------------------
    def dims(self, name: str) -> tuple | None:
        if name in self._dims:
            return self._dims[name]
        if name in self.initializers:  # declared dims (checked against the data when it is read)
            return tuple(int(x) for x in self.initializers[name].dims)
        node = self.producer.get(name)
        value = next((a.t for a in node.attribute if a.name == "value"), None) \
            if node is not None and node.op_type == "Constant" else None
        return tuple(int(x) for x in value.dims) if value is not None else None

    def rank(self, name: str) -> int | None:
        d = self.dims(name)
        return None if d is None else len(d)

    def shape_value(self, name: str) -> list | None:
        """The dims an integer tensor holds (from ``Shape`` or constants), else None."""
        if name in self._shape_values:
            return self._shape_values[name]
        i = self.ints(name)
        return i

    def _infer(self, n) -> None:
        op, ins, out = n.op_type, n.input, n.output[0] if n.output else ""
        d = self.dims(ins[0]) if ins and ins[0] else None
        fresh = lambda k: ("?", out, k)  # noqa: E731
        sv = self.shape_value(ins[0]) if ins and ins[0] else None
        if op == "Shape" and d is not None:  # Shape-15: a slice [start:end] of the dims
            dims = list(d)[int(self.attr(n, "start", 0)):self.attr(n, "end")]
            self._dims[out] = (len(dims),)
            self._shape_values[out] = dims
        elif op in _SAME and d is not None:
            self._dims[out] = d
            if op in ("Cast", "Identity") and sv is not None:
                self._shape_values[out] = sv
        elif op == "Transpose" and d is not None:
            perm = [int(p) for p in self.attr(n, "perm", list(range(len(d)))[::-1])]
            self._dims[out] = tuple(d[p] for p in perm)
        elif op in ("Squeeze", "Unsqueeze") and d is not None:
            axes = self.axes(n)
            if op == "Squeeze" and axes is not None:
                drop = {a % len(d) for a in axes}
                self._dims[out] = tuple(x for k, x in enumerate(d) if k not in drop)
                if sv is not None and len(sv) == 1 and d == (1,):
                    self._shape_values[out] = sv
            elif op == "Unsqueeze" and axes is not None and all(-len(d) - len(axes) <= a < len(d) + len(axes)
                                                               for a in axes) \
                    and len({a % (len(d) + len(axes)) for a in axes}) == len(axes):  # (repeated: onnxruntime fails)
                r = len(d) + len(axes)
                it = iter(d)
                put = {a % r for a in axes}
                self._dims[out] = tuple(1 if k in put else next(it) for k in range(r))
                if sv is not None and d == ():
                    self._shape_values[out] = sv
        elif op == "Slice" and d is not None:
            self._slice(n, d, sv, out)
        elif op == "Concat":
            self._concat(n, out)
        elif op == "Gather" and d is not None:
            idx = self.dims(ins[1])
            axis = int(self.attr(n, "axis", 0)) % len(d)
            if idx is not None:
                self._dims[out] = d[:axis] + idx + d[axis + 1:]
            picks = self.ints(ins[1])
            if sv is not None and picks is not None and axis == 0:
                if any(not -len(sv) <= p < len(sv) for p in picks):  # onnxruntime refuses it when the node runs
                    raise FormatError(f"expected Gather indices within the {len(sv)} dims its input holds, found "
                                      f"{quote(picks)}", layer=where(n))
                self._shape_values[out] = [sv[p] for p in picks]
        elif op == "ReduceProd" and sv is not None:
            keep = int(self.attr(n, "keepdims", 1))
            self._dims[out] = (1,) if keep else ()
            known = [x for x in sv if isinstance(x, int)]
            rest = tuple(x for x in sv if not isinstance(x, int))
            self._shape_values[out] = [math.prod(known) if not rest else ("prod", math.prod(known), rest)]
        elif op == "Mul" and sv is not None and len(sv) == 1 and self.shape_value(ins[1]) is not None \
                and len(self.shape_value(ins[1])) == 1:
            a, b = sv[0], self.shape_value(ins[1])[0]
            self._dims[out] = d
            self._shape_values[out] = [a * b if isinstance(a, int) and isinstance(b, int) else ("*", a, b)]
        elif op in _BROADCAST:
            shapes = [self.dims(i) for i in ins if i]
            if None not in shapes:
                r = max(len(s) for s in shapes)
                padded = [(1,) * (r - len(s)) + tuple(s) for s in shapes]
                self._dims[out] = tuple(next((x for x in col if x != 1), 1) for col in zip(*padded))
        elif op == "MatMul":
            b = self.dims(ins[1])
            if d is not None and b is not None and len(b) == 2 and len(d) >= 2:
                self._dims[out] = d[:-1] + (b[1],)
        elif op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean") and d is not None and self.axes(n) is not None:
            drop = {a % len(d) for a in self.axes(n)}
            keep = int(self.attr(n, "keepdims", 1))
            self._dims[out] = tuple(1 if k in drop else x for k, x in enumerate(d) if keep or k not in drop)
        elif op == "Range" and self.ints(ins[0]) == [0] and self.ints(ins[2]) == [1] \
                and len(self.shape_value(ins[1]) or ()) == 1:
            self._dims[out] = tuple(self.shape_value(ins[1]))
        elif op == "GatherElements" and self.dims(ins[1]) is not None:
            self._dims[out] = self.dims(ins[1])
        elif op == "TopK" and d is not None and self.shape_value(ins[1]) is not None:
            axis = int(self.attr(n, "axis", -1)) % len(d)
            dims = d[:axis] + tuple(self.shape_value(ins[1])[:1]) + d[axis + 1:]
            for o in n.output:
                self._dims[o] = dims
        elif op == "Conv" and d is not None and len(d) >= 3 and self.dims(ins[1]) is not None:
            # [batch, filters, spatial...]: the rank (a Conv1D tf2onnx writes as a Conv2D, then Squeeze), each spatial
            # size left unknown (it depends on pads, strides and dilations)
            self._dims[out] = (d[0], self.dims(ins[1])[0]) + tuple(("?", out, k) for k in range(2, len(d)))
        elif op in ("LSTM", "GRU", "RNN") and d is not None and len(d) == 3:
            self._recurrent(n, d)
        elif op == "Reshape" and d is not None:
            self._reshape(n, d, out, fresh)
            if sv is not None and len(sv) == 1:  # one size, as a 1-D or 0-D tensor
                self._shape_values[out] = sv
        elif op in ("Expand", "ConstantOfShape"):
            target = self.shape_value(ins[1] if op == "Expand" else ins[0])
            if target is not None and (op == "ConstantOfShape" or d is not None and len(d) <= len(target)):
                self._dims[out] = tuple(target)

    def _slice(self, n, d, sv, out) -> None:
        starts, ends = self.ints(n.input[1]), self.ints(n.input[2])
        axes = self.ints(n.input[3]) if len(n.input) > 3 and n.input[3] else None
        steps = self.ints(n.input[4]) if len(n.input) > 4 and n.input[4] else None
        if starts is None or ends is None:
            return
        axes = axes or list(range(len(starts)))
        steps = steps or [1] * len(starts)
        dims = list(d)
        for s, e, a, st in zip(starts, ends, axes, steps):
            a %= len(d)
            dims[a] = len(range(*slice(s, e, st).indices(d[a]))) if isinstance(d[a], int) else ("?", n.output[0], a)
        self._dims[n.output[0]] = tuple(dims)
        if sv is not None and len(d) == 1 and axes == [0]:
            self._shape_values[n.output[0]] = sv[slice(starts[0], ends[0], steps[0])]

    def _concat(self, n, out) -> None:
        parts = [self.dims(i) for i in n.input]
        values = [self.shape_value(i) for i in n.input]
        if None not in values and all(p is not None and len(p) == 1 for p in parts):
            self._shape_values[out] = [x for v in values for x in v]
        if None in parts or len({len(p) for p in parts}) != 1:
            return
        axis = int(self.attr(n, "axis", 0)) % len(parts[0])
        along = [p[axis] for p in parts]
        dims = list(parts[0])
        dims[axis] = sum(along) if all(isinstance(x, int) for x in along) else ("?", out, axis)
        self._dims[out] = tuple(dims)

    def _recurrent(self, n, x) -> None:
        layout = int(self.attr(n, "layout", 0))
        hidden = self.attr(n, "hidden_size")
        direction = self.attr(n, "direction", b"forward")
        dirs = 2 if direction in (b"bidirectional", "bidirectional") else 1
        t, b = (x[0], x[1]) if layout == 0 else (x[1], x[0])
        h = int(hidden) if hidden else ("?", n.output[0], 3)
        y = (t, dirs, b, h) if layout == 0 else (b, t, dirs, h)
        state = (dirs, b, h) if layout == 0 else (b, dirs, h)
        for k, o in enumerate(n.output):
            if o:
                self._dims[o] = y if k == 0 else state

    def _reshape(self, n, d, out, fresh) -> None:
        target = self.shape_value(n.input[1])
        if target is None:
            return
        dims = [d[k] if x == 0 and k < len(d) and not self.attr(n, "allowzero", 0) else x
                for k, x in enumerate(target)]
        if -1 in dims:
            k = dims.index(-1)
            known = [x for j, x in enumerate(dims) if j != k]
            symbols = [x for x in d if not isinstance(x, int)]
            sized = [x for x in d if isinstance(x, int)]
            if all(isinstance(x, int) for x in list(d) + known) and math.prod(known):
                dims[k] = math.prod(d) // math.prod(known)
            elif len(symbols) == 1 and all(isinstance(x, int) for x in known) and math.prod(sized) == math.prod(known):
                dims[k] = symbols[0]  # the one run-time size is what the -1 stands for
            else:
                dims[k] = fresh(k)
        self._dims[out] = tuple(dims)
