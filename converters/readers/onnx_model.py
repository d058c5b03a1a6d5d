"""ONNX models -> IR: fused ``LSTM`` / ``GRU`` / ``RNN`` nodes and the common ops around them.

    read(path) -> Model

The graph is walked once in order; every ONNX tensor gets a symbolic value
(:mod:`converters.readers.onnx_values`) rather than numbers, from one small function per op
(:mod:`converters.readers.onnx_ops` for layers and recurrent nodes,
:mod:`converters.readers.onnx_mask_ops` for Keras masks). This module holds the walk, the naming of
IR tensors, the materializing of symbolic values into IR nodes, and the tidying after the walk
(dead nodes dropped, ``dense`` + activation and merge chains folded back together).

Every node is first checked against its op's schema at the model's default opset
(:mod:`converters.readers.onnx_opset`: op versions whose meaning the reader does not implement are
refused), every tensor is read under the file's byte budget (:mod:`converters.readers.onnx_tensors`),
and anything a node raises becomes one line naming the file and the node. Anything else is refused
with an UnsupportedError naming the ONNX node. ``onnx`` is imported inside :func:`read` only.
"""


from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import budget
from ..budget import MAX_BYTES, Budget, shape as checked_shape
from ..errors import FormatError, GateportError, UnsupportedError, require
from ..ir import Model, Node, TensorSpec, made_twice
from ..sanitize import quote
from ..shapes import node_output_shapes
from .onnx_layer_ops import KINDS as LAYER_KINDS, finish as finish_layer, layer_handlers
from .onnx_mask_ops import HANDLERS as MASK_HANDLERS
from .onnx_ops import ELEM, HANDLERS as OP_HANDLERS, raw_output
from .onnx_opset import check_node, default_opset
from .onnx_functions import inline_local_functions
from .onnx_recurrent import RecurrentNode
from .onnx_tensors import TensorReader, type_name
from .onnx_foreign import graphs_of
from .onnx_values import (IR, Const, Last, MaskRef, Merged, NotEqual, Pending, RecOut, Seq, ShapeOf, State, Value, View,
                          Zeros, is_mask, onnx_consumers, rec_key, shape_arithmetic)

#: ONNX op type -> the function that reads it
HANDLERS = layer_handlers({**OP_HANDLERS, **MASK_HANDLERS})

#: ops that may compute run-time sizes from Shape (PyTorch's exporter builds zero states that way)
_SHAPE_OPS = ("Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Add", "Sub", "Mul", "Div")


#: ops that keep zeros zeros
_LAYOUT_OPS = ("Slice", "Split", "Gather", "Squeeze", "Unsqueeze", "Reshape", "Transpose", "Cast", "Identity", "Expand")
#: protobuf refuses messages above 2 GiB; bigger models keep their weights as external data
_PROTOBUF_MAX = 2**31 - 1


class OnnxReader:
    """Walks one ONNX graph and builds the IR model."""

    def __init__(self, onnx, proto, path: str | None):
        self.onnx, self.proto, self.path = onnx, proto, path
        self.env: dict[str, Value] = {}
        self.items: list[Node | RecurrentNode] = []
        self.claimed: set[str] = set()  # IR tensor names in use
        self.onnx_names = {t for n in proto.graph.node for t in n.output} | {v.name for v in proto.graph.input}
        self.value_names: dict[int, str] = {}  # id(value) -> the ONNX tensor it was first bound to
        self.node_names: set[str] = set()
        self.cache: dict[int, str] = {}  # id(value) -> IR tensor it was materialized as
        # every value keyed by id() above stays alive while the reader runs: a freed value's id
        # could be reused by a new one and pick up its name (a bug that depended on memory layout)
        self.keep_alive: list[Value] = []
        self.producer: dict[str, Node] = {}
        self.ranks: dict[str, int] = {}
        self.shapes: dict[str, tuple] = {}  # IR tensor -> shape without batch (None: unknown size)
        self.onnx_node = None
        self.opset = 0
        self.op_version = 0  # the version of the op being read (its schema's since_version)
        self.tensors: TensorReader | None = None
        #: IR tensor of one step of a merged (concat) bidirectional sequence -> (its directions batch-first, the step): a Slice
        #: of one direction's half of it is that direction's step (onnx_ops._direction_of_step)
        self.merged_steps: dict[str, tuple] = {}
        self.relaid: list[str] = []  # graph outputs read batch-first from a layout-0 Y / Y_h / Y_c

    # -- errors and names ----------------------------------------------------------------------
    def where(self) -> str | None:
        """The node being read, for messages: ``ONNX node 'name' (Op)``."""
        n = self.onnx_node
        if n is None:
            return None
        return f"ONNX node {quote(n.name or (n.output[0] if n.output else ''))} ({quote(n.op_type)[1:-1]})"

    def unsupported(self, message: str) -> UnsupportedError:
        return UnsupportedError(message, file=self.path, layer=self.where())

    def array(self, tensor_proto) -> np.ndarray:
        """The numbers of a TensorProto (an attribute of the node being read), checked first."""
        return self.tensors.array(tensor_proto, self.where())

    def fold(self, shape: tuple, dtype, what: str = "a folded constant") -> None:
        """Count a constant the reader is about to compute against the budget (before computing it)."""
        self.tensors.budget.take_array(list(shape), np.dtype(dtype).itemsize, what, layer=self.where())

    def dim(self, name: str, axis: int) -> int | None:
        """The static size of axis ``axis`` (batch counted, negative from the end) of IR tensor ``name``."""
        shape = self.shapes.get(name)
        if shape is None or axis == 0 or -axis > len(shape):
            return None
        return shape[axis - 1] if axis > 0 else shape[axis]

    def fresh(self, hint: str) -> str:
        """A new IR tensor name like ``hint`` that no ONNX tensor and no IR tensor has."""
        name, k = hint, 1
        while name in self.claimed or name in self.onnx_names:
            name, k = f"{hint}_{k}", k + 1
        return name

    def claim(self, name: str) -> str:
        """Use ``name`` (an ONNX tensor's own name) for an IR tensor, or a variant if it is taken."""
        if name in self.claimed:
            name, k = f"{name}_1", 1
            while name in self.claimed or name in self.onnx_names:
                k += 1
                name = f"{name.rsplit('_', 1)[0]}_{k}"
        self.claimed.add(name)
        return name

    def add(self, op: str, inputs: list[str], name: str, options: dict | None = None,
            weights: dict | None = None, mask: str | None = None, rank: int | None = None) -> IR:
        """Add one IR node whose single output (and the node) is called ``name``; returns its tensor."""
        out = self.claim(name)
        node_name, k = out, 1
        while node_name in self.node_names:
            node_name, k = f"{out}_{k}", k + 1
        self.node_names.add(node_name)
        node = Node(node_name, op, list(inputs), [out], options or {}, weights or {}, mask,
                    source={"class_name": f"ONNX {self.onnx_node.op_type}" if self.onnx_node else op})
        self.items.append(node)
        self.producer[out] = node
        if rank is not None:
            self.ranks[out] = rank
        shape = node_output_shapes(node, [self.shapes.get(i) for i in node.inputs])[0]
        if shape is not None:
            self.shapes[out] = tuple(shape)
        return IR(out, rank)

    # -- materializing symbolic values as IR tensors ----------------------------------------
    def tensor(self, v: Value, hint: str = "t", exact: bool = False) -> str:
        """The IR tensor holding ``v`` (adding the IR nodes it needs). It takes ``v``'s own ONNX name
        when it has one; ``exact`` (a graph output) insists on ``hint``."""
        if id(v) in self.cache and not exact:
            return self.cache[id(v)]
        own = self.value_names.get(id(v))
        name = self._materialize(v, hint if exact else own or self.fresh(hint), exact)
        if exact and name != hint:
            name = self.add("identity", [name], hint).name
        self.keep_alive.append(v)
        self.cache.setdefault(id(v), name)
        return name

    def _materialize(self, v: Value, name: str, exact: bool) -> str:
        if isinstance(v, IR):
            return v.name
        if isinstance(v, MaskRef) and not v.float_ and not v.unsq:
            return v.name
        if isinstance(v, NotEqual) and v.stage == "mask":
            return self.add("mask_not_equal", [v.x.name], name,
                            {"value": v.value, "reduce": v.reduce}).name
        if isinstance(v, (Seq, State, Last, Merged)):
            return self._rec_tensor(v, name, exact)
        if isinstance(v, Pending):
            return self._finish_pending(v, name)
        if isinstance(v, RecOut):
            return raw_output(self, v, name)
        if isinstance(v, View) and v.kind == "channels_first" and isinstance(v.of, IR) \
                and self.ranks.get(v.of.name, v.of.rank) == 3:  # a Transpose(x, [0, 2, 1]) no Conv reads: Permute
            return self.add("permute", [v.of.name], name, {"dims": [2, 1]}, rank=3).name
        if isinstance(v, View) and v.kind == "time_major" and isinstance(v.of, IR) and exact:
            self.relaid.append(name)  # a graph output [time | dirs, batch, ...]: given batch-first
            return v.of.name
        raise self.unsupported(f"expected a Keras-level (batch-first) tensor for {quote(name)}, found a "
                               f"{v.what} ({type(v).__name__}) with no IR equivalent")

    def _rec_tensor(self, v: Value, name: str, exact: bool) -> str:
        if isinstance(v, Seq) and v.stage == "keras" and not v.time_major and v.rec.n_dirs == 1 \
                and v.flipped != v.rec.reversed(0):
            # the sequence in the other time order than processed (a reverse node's Y in input time): Keras
            # returns only the processing order (go_backwards), so that reversed along time (IR slice, step -1);
            # masked too (a reverse direction's expanded output at input time is its go_backwards output flipped)
            done = self.tensor(Seq(v.rec, v.slot, False, not v.flipped, v.stage, v.zero), f"{name}/processing_order")
            return self.add("slice", [done], name, {"axis": 1, "step": -1}, rank=3).name
        key = rec_key(v)
        if key is None:
            raise self.unsupported(f"expected a recurrent output as Keras returns it for {quote(name)}, found a "
                                   f"{'time-major ' if getattr(v, 'time_major', False) else ''}{v.what} "
                                   f"({getattr(v, 'stage', '')})")
        if not exact and id(v) not in self.value_names:
            name = self.fresh(v.rec.name if key[0] != "state" else f"{v.rec.name}:state")
        name = v.rec.request(key, name, exact)
        self.claimed.add(name)
        shape = self.shapes.setdefault(name, self._rec_shape(v))
        self.ranks.setdefault(name, len(shape) + 1)
        return name

    def _rec_shape(self, v: Value) -> tuple:
        """The shape (without batch) of a finished recurrent value."""
        rec = v.rec
        seq = isinstance(v, Seq) or isinstance(v, Merged) and isinstance(v.parts[0], Seq)
        units = rec.hidden * (2 if isinstance(v, Merged) and v.mode == "concat" else 1)
        return (self.dim(rec.x, 1), units) if seq else (units,)

    def as_ir(self, v: Value) -> Value:
        """``v`` as a plain IR tensor when it is a finished Keras-level value; else ``v`` itself."""
        if isinstance(v, (Seq, State, Last, Merged)) and rec_key(v) is not None:
            rank = 3 if isinstance(v, Seq) or isinstance(v, Merged) and isinstance(v.parts[0], Seq) else 2
            return IR(self.tensor(v), rank)
        if isinstance(v, Pending) and v.kind in ("matmul", "scale"):
            return IR(self.tensor(v), v.args[0].rank)
        if isinstance(v, Pending) and v.kind in LAYER_KINDS:
            name = self.tensor(v)
            return IR(name, self.ranks.get(name))
        return v

    def mask_name(self, m: Value, hint: str) -> str:
        if not is_mask(m):
            raise self.unsupported(f"expected a mask, found a {m.what}")
        return self.tensor(m, hint)

    # -- the walk ----------------------------------------------------------------------------
    def run(self) -> Model:
        g = self.proto.graph
        self.opset = default_opset(self.onnx, self.proto, self.path)
        self.tensors = TensorReader(self.proto, self.path)
        for init in g.initializer:
            self.env[init.name] = Const(self.tensors.array(init, f"initializer {quote(init.name)}"))
        inputs = []
        for vi in g.input:
            if vi.name in self.env:
                continue
            spec = self._input_spec(vi)
            inputs.append(spec)
            # a bool input is a (batch, time) mask given to a layer (what gateport's writer makes of layer(x, mask=m))
            self.env[vi.name] = MaskRef(vi.name) if spec.dtype == "bool" else IR(vi.name, len(spec.shape) + 1,
                                                                                  spec.dtype)
            self.ranks[vi.name] = len(spec.shape) + 1
            self.shapes[vi.name] = tuple(spec.shape)
            self.claimed.add(vi.name)
        for node in g.node:
            self.onnx_node = node
            try:
                outs = self._read_node(node)
            except GateportError as e:
                raise e.at(file=self.path, layer=self.where())
            except Exception as e:  # a hostile node the checks above did not foresee: one line, not a traceback
                raise FormatError(f"cannot read this node ({type(e).__name__}: {quote(str(e), 200)})",
                                  file=self.path, layer=self.where()) from None
            for name, value in zip(node.output, outs):
                if name:
                    self.env[name] = value
                    self.keep_alive.append(value)
                    self.value_names.setdefault(id(value), name)
        self.onnx_node = None
        outputs = []
        for vi in g.output:
            if vi.name not in self.env:
                raise FormatError(f"graph output {quote(vi.name)} is computed by no node", file=self.path)
            outputs.append(self.tensor(self.env[vi.name], vi.name, exact=True))
        nodes = self._finish_recurrent()
        nodes = simplify(nodes, outputs)
        return Model(g.name or "onnx_model", inputs, outputs, nodes,
                     {"format": "onnx", "path": self.path, "opset": self.opset,
                      "producer": f"{self.proto.producer_name} {self.proto.producer_version}".strip()})

    def _read_node(self, node) -> list[Value]:
        """The values of one node's outputs (the op's version checked against the model's opset)."""
        if node.domain not in ("", "ai.onnx"):
            raise self.unsupported(f"expected standard ONNX ops, found domain {quote(node.domain)}")
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            raise self.unsupported(f"expected an op gateport reads ({', '.join(sorted(HANDLERS))}), "
                                   f"found {quote(node.op_type)}")
        self.op_version = check_node(self.onnx, node, self.opset, self.where(), self.path)
        missing = [i for i in node.input if i and i not in self.env]
        if missing:
            raise FormatError(f"input {quote(missing[0])} is not computed before it is used")
        args = [self.env[i] if i else None for i in node.input]
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in _SHAPE_OPS and shape_arithmetic(args):
            return [ShapeOf(None)] * len(node.output)  # run-time sizes (e.g. zero states' shape)
        if node.op_type in _LAYOUT_OPS and isinstance(args[0], Zeros):
            return [args[0]] * len(node.output)  # a slice (each part of a Split) of zero states is zeros
        return handler(self, node, args, attrs)

    def _input_spec(self, vi) -> TensorSpec:
        t, where = vi.type.tensor_type, f"input {quote(vi.name)}"
        dtype = ELEM.get(t.elem_type)
        if dtype not in ("float32", "int64", "int32", "bool"):
            raise UnsupportedError(f"expected a float32, integer or bool (mask) input, found element type "
                                   f"{type_name(t.elem_type)}", file=self.path, layer=where)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if dtype == "bool" and len(dims) != 2:
            raise UnsupportedError(f"expected a bool input to be a (batch, time) mask, found rank {len(dims)}",
                                   file=self.path, layer=where)
        if not dims:
            raise UnsupportedError("expected an input with a batch axis, found a scalar or no shape",
                                   file=self.path, layer=where)
        if any(d is not None and d < 0 for d in dims):
            raise FormatError(f"expected non-negative sizes, found shape {['?' if d is None else d for d in dims]}",
                              file=self.path, layer=where)
        checked_shape([d or 0 for d in dims], "input shape", file=self.path, layer=where)  # no absurd sizes
        return TensorSpec(vi.name, tuple(dims[1:]), dtype)

    def _finish_recurrent(self) -> list[Node]:
        nodes = []
        for item in self.items:
            if isinstance(item, RecurrentNode):
                try:
                    node = item.build(self.claimed)
                except GateportError as e:
                    raise e.at(file=self.path, layer=f"ONNX {item.attrs['op_type']} {quote(item.name)}")
                nodes.append(node)
                nodes += item.after
                nodes += [Node(alias, "identity", [name], [alias], source={"class_name": "ONNX Identity"})
                          for alias, name in item.aliases]
            else:
                nodes.append(item)
        return nodes

    # -- pending ops ---------------------------------------------------------------------------
    def _finish_pending(self, v: Pending, hint: str) -> str:
        done = finish_layer(self, v, hint)
        if done is not None:
            return done
        if v.kind == "matmul":
            x, w = v.args
            return self.add("dense", [x.name], hint, {"units": int(w.shape[0]), "activation": "linear",
                                                      "use_bias": False}, {"weight": w}, rank=x.rank).name
        if v.kind == "scale":
            x, (axis, scale) = v.args
            return self.batch_norm(x, axis, scale, None, hint).name
        if v.kind == "add_of_rec":
            raise self.unsupported("expected the sum of two directions to be used whole or halved (ave)")
        raise self.unsupported(f"expected {v.kind} to be followed by the op that completes it")

    def channel_vector(self, x: IR, c: np.ndarray) -> tuple[int, np.ndarray] | None:
        """``(axis, vector)`` when ``x <op> c`` applies one number per channel of one axis of ``x`` (what
        a batch_norm folds exactly): ``c`` has the shape ``(C, 1, ..., 1)`` (leading 1s allowed, no more
        axes than ``x``, not on the batch axis) and ``x`` has ``C`` channels there, or ``c`` is one
        number and the last axis of ``x`` has a known size. Else None: a ``(T, C)`` constant, one that
        would add axes or change the shape of ``x`` by broadcasting."""
        rank = x.rank or self.ranks.get(x.name)
        if rank is None or c.dtype.kind != "f" or c.ndim > rank:
            return None
        if c.size == 1:
            size = self.dim(x.name, -1)
            return None if size is None else (-1, np.full(size, c.reshape(-1)[0], c.dtype))
        dims = list(c.shape)
        while dims and dims[0] == 1:
            dims.pop(0)
        axis = -len(dims)
        if any(d != 1 for d in dims[1:]) or -axis > rank - 1:
            return None
        size = self.dim(x.name, axis)
        if size is not None and size != dims[0]:
            return None
        return axis, c.reshape(-1)

    def batch_norm(self, x: IR, axis: int, scale: np.ndarray | None, shift: np.ndarray | None, hint: str) -> IR:
        """``x * scale + shift`` per channel of ``axis`` (vectors from :meth:`channel_vector`)."""
        ref = scale if scale is not None else shift
        weights = {}
        if scale is not None:
            weights["gamma"] = scale
        if shift is not None:
            weights["beta"] = shift
        weights["moving_mean"] = np.zeros(ref.shape[0], ref.dtype)
        weights["moving_variance"] = np.ones(ref.shape[0], ref.dtype)
        return self.add("batch_norm", [x.name], hint, {"epsilon": 0.0, "axis": axis}, weights, rank=x.rank)


# -- after the walk: drop dead nodes, fold what the writer split ----------------------------
def simplify(nodes: list[Node], outputs: list[str]) -> list[Node]:
    """Drop nodes nothing uses; join what gateport's writer split into several ONNX ops.

    A ``dense``/``conv1d`` followed by an activation, or a chain of one merge op, is one IR node
    when the first op's output is named in the scope of the last (``dense/gemm`` -> ``dense``), as
    the writer names the ops it makes for one node; otherwise the nodes stay apart (same numbers).
    """
    nodes = _prune(nodes, outputs)
    uses = _uses(nodes, outputs)
    producer = {t: n for n in nodes for t in n.outputs}
    dropped = set()
    for node in nodes:
        src = producer.get(node.inputs[0]) if node.inputs else None
        if src is None or id(src) in dropped or uses.get(node.inputs[0], 0) != 1 \
                or not src.outputs[0].startswith(_scope(node.outputs[0]) + "/"):
            continue
        if node.op == "activation" and src.op in ("dense", "conv1d", "conv1d_transpose") \
                and src.options["activation"] == "linear":
            src.options["activation"] = node.options["activation"]
            src.outputs, src.name = [node.outputs[0]], node.name
            producer[node.outputs[0]] = src
            dropped.add(id(node))
        elif node.op in ("add", "multiply", "maximum", "minimum") and src.op == node.op:
            node.inputs = src.inputs + node.inputs[1:]
            dropped.add(id(src))
    return [n for n in nodes if id(n) not in dropped]


def _scope(name: str) -> str:
    """The writer's scope of the ops it made for the node computing ``name``: ``name``, or the wrapper's for
    the inner layer of a TimeDistributed (``td_conv/step``: ``td_conv``, onnx_layers.fold_time_to_onnx)."""
    return name[:-len("/step")] if name.endswith("/step") else name


def _uses(nodes: list[Node], outputs: list[str]) -> dict[str, int]:
    uses: dict[str, int] = {}
    for n in nodes:
        for t in n.inputs + ([n.mask] if n.mask else []):
            uses[t] = uses.get(t, 0) + 1
    for t in outputs:
        uses[t] = uses.get(t, 0) + 1
    return uses


def _prune(nodes: list[Node], outputs: list[str]) -> list[Node]:
    needed = set(outputs)
    kept = []
    for n in reversed(nodes):
        if needed.intersection(n.outputs):
            kept.append(n)
            needed.update(n.inputs)
            if n.mask:
                needed.add(n.mask)
    return kept[::-1]


def read(path: str | os.PathLike) -> Model:
    """Read an ONNX model file into the IR; external data is read only from files in its folder.

    The file is parsed as a protobuf message (never as text or JSON, whatever its name) after its
    size is checked (protobuf stops at 2 GiB, the budget before that); ``onnx.load``'s loading of
    external data is not used: :class:`converters.readers.onnx_tensors.TensorReader` reads each
    tensor's external data itself, checked and confined to the model's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError("no such file", file=str(path))
    return from_proto(load_proto(path), str(path))


def load_proto(path: Path):
    """The ``onnx.ModelProto`` of a regular file: its size checked (protobuf stops at 2 GiB, the byte budget
    before that), parsed as protobuf, with a graph and an opset import (FormatError in one line else)."""
    onnx = require("onnx", "onnx")
    size = path.stat().st_size
    if size > _PROTOBUF_MAX:
        raise FormatError(f"expected an ONNX protobuf file of at most 2 GiB (larger models keep their weights "
                          f"as external data), found {size} bytes", file=str(path))
    Budget(str(path), limit=MAX_BYTES).take(size, "the ONNX file")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as e:  # protobuf DecodeError (bad bytes, nesting past protobuf's recursion limit)
        raise FormatError(f"not an ONNX model ({type(e).__name__}: {quote(str(e), 200)})", file=str(path)) from None
    if not proto.HasField("graph") or not proto.opset_import:
        raise FormatError("not an ONNX model (no graph or no opset import)", file=str(path))
    return proto


def not_text(proto) -> tuple[str, bytes] | None:
    """The first string field (a node's or a value's name, an op type, a domain, a doc string, metadata) of
    ``proto`` and every message below it that is not UTF-8, as ``(field name, bytes)``, or None. protobuf's
    upb parser gives such a proto2 string as ``bytes``: a node so named was 'cannot read this node (TypeError:
    a bytes-like object is required)', a graph input so named became the name "b'\\xc3...'" in the outputs."""
    stack = [proto]
    while stack:
        message = stack.pop()
        for field, value in message.ListFields():
            # protobuf 7 (upb) has is_repeated and no label; older releases have label
            repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
            values = value if repeated else [value]
            if field.type == field.TYPE_MESSAGE:
                stack.extend(values)
            elif field.type == field.TYPE_STRING:
                bad = next((v for v in values if isinstance(v, bytes)), None)
                if bad is not None:
                    return field.name, bad
    return None


def check_structure(onnx, proto, path: str | None) -> None:
    """What the ONNX spec requires of any model, checked before any node is read: UTF-8 text in every string
    field (:func:`not_text`), an IR version the
    installed onnx knows, no local function posing as a standard op, at most :data:`budget.MAX_NODES`
    nodes (subgraphs included), at least one graph output, and every value named once (no graph input listed twice, no node
    output named like another one, an initializer or a graph input: two producers of one name would make the graph mean either)."""
    bad = not_text(proto)
    if bad is not None:
        raise FormatError(f"expected UTF-8 text in every name and string of the model, found {bad[0]} {quote(bad[1])}",
                          file=path)
    if proto.ir_version > onnx.IR_VERSION:
        raise FormatError(f"expected an ONNX IR version up to {onnx.IR_VERSION} (the installed onnx package's "
                          f"newest), found {proto.ir_version}", file=path)
    shadow = next((f for f in proto.functions if f.domain in ("", "ai.onnx")), None)
    if shadow is not None:  # a node 'LSTM' would then run this function, not the standard op
        raise UnsupportedError(f"expected standard ONNX ops, found a model-local function {quote(shadow.name)} in the "
                               "standard domain", file=path)
    total = 0
    for g in graphs_of(proto):
        total += len(g.node)
        budget.count(total, "ONNX nodes (subgraphs included)", file=path)
    g = proto.graph
    if not g.output:
        raise FormatError("expected at least one graph output, found none", file=path)
    defined = {t.name for t in g.initializer}
    if len(defined) != len(g.initializer):
        raise FormatError(f"expected each initializer named once, found {quote(_twice(t.name for t in g.initializer))} "
                          "twice", file=path)
    if len({v.name for v in g.input}) != len(g.input):  # a caller's feed would go to either
        raise FormatError(f"expected each graph input named once, found {quote(_twice(v.name for v in g.input))} "
                          "twice", file=path)
    defined |= {v.name for v in g.input}
    # an empty output name is an optional output left out, no value (unless an initializer or input is named so)
    twice = made_twice(defined, ((node, [n for n in node.output if n or n in defined]) for node in g.node))
    if twice is not None:
        name, _, node = twice
        raise FormatError(f"expected each value named once, found {quote(name)} computed again by node "
                          f"{quote(node.name)} ({quote(node.op_type)})", file=path)


def _outputs_from(reader, names: list[str]) -> list[str]:
    """The graph outputs computed from any of ``names`` (a relaid Y_h read through a Relu is the Relu's
    output that reaches the caller batch-first), in the graph's order; ``names`` themselves where none is."""
    reached, todo = set(names), list(names)
    while todo:
        for node in onnx_consumers(reader, todo.pop()):
            new = [o for o in node.output if o and o not in reached]
            reached.update(new)
            todo += new
    outputs = [vi.name for vi in reader.proto.graph.output if vi.name in reached]
    return outputs or list(names)


def _relaid_values(before, after, kind: str) -> list[str]:
    """The graph inputs (``kind`` "input") or outputs ("output") that ``time_major_input`` /
    ``time_major_output`` declared batch-first: those whose declared first two axes in ``after`` (the
    normalized model) are ``before``'s swapped (inputs: a time-major ``x``, torch's ``h0``/``c0``, token ids
    ``[time, batch]``; outputs: a time-major sequence read through a ``Squeeze``, an ``Identity``, a ``Linear``)."""
    def dims(vi) -> list:
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    def swapped(a: list, b: list) -> bool:  # a time the reader pinned (_pin_traced_time) was symbolic before
        return len(a) == len(b) >= 2 and a[0] == b[1] and (a[1] == b[0] or isinstance(b[0], str))

    old = {vi.name: dims(vi) for vi in getattr(before.graph, kind)}
    return [vi.name for vi in getattr(after.graph, kind) if swapped(dims(vi), old.get(vi.name, []))]


def _initializer_inputs(proto) -> int:
    """How many graph inputs are also initializers: defaults a caller may override in onnxruntime (ONNX
    IR 4+; IR 3 required every initializer listed as an input) that the reader takes as constants."""
    names = {t.name for t in proto.graph.initializer}
    return sum(vi.name in names for vi in proto.graph.input)


def _twice(names) -> str:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return ""


def from_proto(proto, path: str | None = None) -> Model:
    """The IR of an ``onnx.ModelProto`` (external data is read from ``path``'s folder)."""
    onnx = require("onnx", "onnx")
    from .onnx_patterns import closest, normalize  # other tools' constructs -> the ops read below

    misses: dict[str, str] = {}
    applied: list[str] = []
    check_structure(onnx, proto, path)
    try:
        proto, inlined = inline_local_functions(onnx, proto, path)
        before = proto
        if proto.producer_name != "gateport":
            proto, misses, applied = normalize(onnx, proto, path, TensorReader(proto, path))
        reader = OnnxReader(onnx, proto, path)
        model = reader.run()
        if inlined:  # onnxscript / the dynamo exporter: modules as functions, run inlined as onnxruntime does
            model.source["functions"] = f"model-local functions {', '.join(quote(n) for n in inlined)} inlined"
            model.source["producer"] = "; ".join([model.source.get("producer", ""),
                                                  model.source["functions"]]).lstrip("; ")
        ins = _relaid_values(before, proto, "input") if "time_major_input" in applied else []
        layouts = ([f"inputs {', '.join(quote(n) for n in ins)} time-major in the file, read batch-first: feed "
                    f"{'it' if len(ins) == 1 else 'each'} .transpose(0, 1)"] if ins else [])
        moved = _relaid_values(before, proto, "output") if "time_major_output" in applied else []
        if reader.relaid or moved:  # the IR is batch-first: say so where the producer is shown, naming the outputs
            reached = _outputs_from(reader, reader.relaid) if reader.relaid else []
            relaid = [vi.name for vi in proto.graph.output if vi.name in {*reached, *moved}] or reached
            layouts.append(f"outputs {', '.join(quote(n) for n in relaid)} ([time | dirs, batch, ...] in the "
                           "file: a layout-0 Y, Y_h, Y_c, or computed from one) read batch-first "
                           "(Y as [batch, time, dirs, hidden])")
        if layouts:
            model.source["layout"] = "; ".join(layouts)
            model.source["producer"] = "; ".join([model.source.get("producer", ""), *layouts]).lstrip("; ")
        fixed = _initializer_inputs(proto)
        if fixed:  # keep_initializers_as_inputs=True (and every IR 3 file): onnxruntime lets a caller feed them
            model.source["initializer_inputs"] = (
                f"{fixed} initializers also listed as graph inputs read as the file's constants (a value fed for "
                "them at run time, which onnxruntime would take instead, is no input here)")
            model.source["producer"] = "; ".join([model.source.get("producer", ""),
                                                  model.source["initializer_inputs"]]).lstrip("; ")
        return model
    except GateportError as e:
        hint = closest(misses, e.layer) if isinstance(e, UnsupportedError) else None
        if hint:
            e.message += f" (closest pattern {hint})"
        raise e.at(file=path)
    except (RecursionError, MemoryError, ArithmeticError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OSError) as e:  # outside any node (the graph's outputs, the tidying): one line all the same
        raise FormatError(f"cannot read the model ({type(e).__name__}: {quote(str(e), 200)})", file=path) from None
