"""A small ONNX graph builder: unique names, initializers, cached constants, node emission.

The ONNX writers (``onnx_graph``, ``onnx_layers``, ``onnx_masks``, ``onnx_recurrent``) add nodes
through one :class:`GraphBuilder`; it imports ``onnx`` when created, never at module import.
Initializers stay numpy arrays in their final layout (``weights``) until written: ``onnx_graph``
streams them to the file, or makes ``TensorProto``s of them (:meth:`GraphBuilder.tensor`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import require

#: numpy dtype name -> ONNX TensorProto element type name.
ELEM_TYPES = {"float32": "FLOAT", "float64": "DOUBLE", "int64": "INT64", "int32": "INT32", "bool": "BOOL"}


class Blocks:
    """An initializer held as blocks whose float32 bytes in C order, one after another, are its data
    (e.g. the IR's per-gate arrays of a recurrent layer, views of the arrays read): kept as they are,
    each laid out (transposed, cast to float32) only while it is written
    (:func:`converters.safetensors_io.write_array`); concatenated only when a ``TensorProto`` or an
    array is asked for."""

    def __init__(self, blocks: Sequence[np.ndarray], shape: Sequence[int]):
        self.blocks = [np.asarray(b) for b in blocks]
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)
        self.nbytes = sum(b.size for b in self.blocks) * self.dtype.itemsize
        if self.nbytes != int(np.prod(self.shape)) * self.dtype.itemsize:
            raise ValueError(f"blocks of {self.nbytes} bytes cannot fill shape {self.shape}")

    def array(self) -> np.ndarray:
        """The blocks concatenated into one array of ``shape``."""
        return np.concatenate([b.reshape(-1) for b in self.blocks]).astype(self.dtype, copy=False).reshape(self.shape)


def as_array(weight) -> np.ndarray:
    """An initializer's data as one array (a :class:`Blocks` concatenated)."""
    return weight.array() if isinstance(weight, Blocks) else weight


class GraphBuilder:
    """Collects the nodes and initializers of one ONNX graph.

    ``ranks`` maps a tensor name to its rank (batch axis included) where known; ``dtypes`` to its
    numpy dtype name (default ``float32``); ``memo`` caches tensors derived once per graph
    (mask plans, compacted inputs); ``weights`` maps each initializer's name to its
    array or :class:`Blocks`, in the order they were made.
    """

    def __init__(self, opset: int):
        self.onnx = require("onnx", "onnx")
        self.helper = self.onnx.helper
        self.opset = opset
        self.nodes: list = []
        self.weights: dict[str, np.ndarray] = {}
        self.ranks: dict[str, int] = {}
        self.dtypes: dict[str, str] = {}
        self.memo: dict[Any, Any] = {}
        self.scope = "graph"
        self._taken: set[str] = set()
        self._consts: dict[tuple, str] = {}
        self._transposes: dict[str, tuple[str, tuple]] = {}  # output -> (input, perm)

    # -- names -------------------------------------------------------------------------
    def reserve(self, names: Sequence[str]) -> None:
        """Mark tensor names that the model itself uses, so generated names never collide."""
        self._taken.update(names)

    def fresh(self, hint: str) -> str:
        """A new unique tensor name ``<scope>/<hint>``."""
        base = f"{self.scope}/{hint}"
        name, k = base, 1
        while name in self._taken:
            name, k = f"{base}_{k}", k + 1
        self._taken.add(name)
        return name

    def elem_type(self, dtype: str) -> int:
        return getattr(self.onnx.TensorProto, ELEM_TYPES[str(dtype)])

    # -- constants ---------------------------------------------------------------------
    def initializer(self, array: np.ndarray, hint: str) -> str:
        """Store ``array`` as an initializer (float arrays as float32) and return its name.

        The array is kept, not copied, when it already is float32 (never written to afterwards), a
        transposed view too: it is laid out while written (:func:`converters.safetensors_io.write_array`).
        """
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(np.float32, copy=False)
        name = self.fresh(hint)
        self.weights[name] = array
        self.ranks[name] = array.ndim
        self.dtypes[name] = str(array.dtype)
        return name

    def const(self, values, dtype: str = "int64") -> str:
        """A small shared constant (axes, shapes, scalars); a list gives a 1-D tensor."""
        array = np.asarray(values, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            scope, self.scope = self.scope, "const"
            self._consts[key] = self.initializer(array, "c")
            self.scope = scope
        return self._consts[key]

    def initializer_blocks(self, blocks: Sequence[np.ndarray], shape: Sequence[int], hint: str) -> str:
        """Store the concatenation of ``blocks`` (row blocks in C order), shaped ``shape``, as a float32
        initializer without concatenating them (:class:`Blocks`); returns its name."""
        name = self.fresh(hint)
        self.weights[name] = Blocks(blocks, shape)
        self.ranks[name] = len(shape)
        self.dtypes[name] = "float32"
        return name

    def tensor(self, name: str):
        """The ``TensorProto`` of initializer ``name`` (its data copied into ``raw_data``)."""
        return self.onnx.numpy_helper.from_array(as_array(self.weights[name]), name)

    # -- nodes -------------------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence[str], *, out: str | Sequence[str] | None = None,
           n_out: int = 1, rank: int | None = None, dtype: str | None = None, **attrs) -> Any:
        """Emit one node; returns its output name (or the list of names when ``n_out > 1``).

        ``out`` names the outputs (the model's own tensor names); otherwise fresh names are made.
        ``rank`` and ``dtype`` record the first output's rank (default: the first input's) and dtype.
        """
        if out is None:
            outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        else:
            outs = [out] if isinstance(out, str) else list(out)
            self._taken.update(outs)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        inputs = list(inputs)
        while inputs and not inputs[-1]:  # trailing optional inputs left out
            inputs.pop()
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs,
                                                name=self.fresh(op_type), **attrs))
        if rank is None and inputs:  # element-wise by default: the first input's rank
            rank = self.ranks.get(inputs[0])
        if rank is not None:
            self.ranks[outs[0]] = rank
        if dtype is not None:
            self.dtypes[outs[0]] = dtype
        return outs if n_out > 1 or isinstance(out, (list, tuple)) else outs[0]

    # -- common idioms -----------------------------------------------------------------
    def rank(self, name: str) -> int:
        """The rank of ``name`` (batch included); it must be known."""
        return self.ranks[name]

    def transpose(self, x: str, perm: Sequence[int], out: str | None = None) -> str:
        """``x`` transposed; transposing a transpose back gives its source (stacked RNN layers)."""
        perm = tuple(perm)
        if out is None and x in self._transposes:
            source, first = self._transposes[x]
            if tuple(first[p] for p in perm) == tuple(range(len(perm))):
                return source
        y = self.op("Transpose", [x], out=out, perm=list(perm), rank=len(perm))
        self._transposes[y] = (x, perm)
        return y

    def unsqueeze(self, x: str, axes: Sequence[int], out: str | None = None) -> str:
        rank = self.ranks.get(x)
        return self.op("Unsqueeze", [x, self.const(list(axes))], out=out,
                       rank=None if rank is None else rank + len(axes), dtype=self.dtypes.get(x))

    def gather(self, x: str, index: int, axis: int, out: str | None = None) -> str:
        """``x`` indexed by one constant position on ``axis`` (the axis is dropped)."""
        rank = self.ranks.get(x)
        return self.op("Gather", [x, self.const(index)], out=out, axis=axis,
                       rank=None if rank is None else rank - 1)

    def flip(self, x: str, axis: int, out: str | None = None) -> str:
        """Reverse ``x`` along ``axis`` (any length, known at run time only)."""
        int64_min = np.iinfo(np.int64).min
        return self.op("Slice", [x, self.const([-1]), self.const([int64_min]), self.const([axis]),
                                 self.const([-1])], out=out, rank=self.ranks.get(x))

    def cast(self, x: str, dtype: str) -> str:
        return self.op("Cast", [x], to=self.elem_type(dtype), rank=self.ranks.get(x), dtype=dtype)

    def identity(self, x: str, out: str) -> str:
        y = self.op("Identity", [x], out=out, rank=self.ranks.get(x), dtype=self.dtypes.get(x))
        if x in self._transposes:
            self._transposes[y] = self._transposes[x]
        return y

    def finish(self, x: str, out: str | None) -> str:
        """``x`` under the name ``out`` (an Identity only when the names differ)."""
        return x if out is None or out == x else self.identity(x, out)

    def fold(self, op_type: str, inputs: Sequence[str], out: str | None = None) -> str:
        """``((a op b) op c) ...`` left to right, the last result named ``out``."""
        result = inputs[0]
        for i, x in enumerate(inputs[1:], start=2):
            result = self.op(op_type, [result, x], out=out if i == len(inputs) else None)
        return self.finish(result, out)

    def prune(self, outputs: Sequence[str]) -> None:
        """Drop the nodes and initializers nothing leads from to ``outputs``."""
        used = set(outputs)
        kept = []
        for node in reversed(self.nodes):
            if used.intersection(node.output):
                kept.append(node)
                used.update(node.input)
        self.nodes = kept[::-1]
        self.weights = {name: a for name, a in self.weights.items() if name in used}

    def fold_identities(self, keep: set[str]) -> None:
        """Drop an Identity whose input is a generated tensor used only there: its producer writes
        the Identity's output directly. Names in ``keep`` (the model's own) are never renamed."""
        uses: dict[str, int] = {}
        for node in self.nodes:
            for name in node.input:
                uses[name] = uses.get(name, 0) + 1
        producer = {name: node for node in self.nodes for name in node.output}
        folded = []
        for node in self.nodes:
            src = node.input[0] if node.op_type == "Identity" else None
            if src in producer and src not in keep and uses[src] == 1:
                outputs = producer[src].output
                outputs[list(outputs).index(src)] = node.output[0]
                producer[node.output[0]] = producer.pop(src)
                folded.append(node)
        for node in folded:
            self.nodes.remove(node)
