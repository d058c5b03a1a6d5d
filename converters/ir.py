"""The neutral, gate-level model every reader produces and every writer consumes.

A :class:`Model` is an ordered (topologically sorted) list of :class:`Node` s that pass named
tensors. Its manifest (everything but the arrays) is described by ``schemas/ir-manifest.schema.json``.

Conventions, fixed for every op:

* Tensors are batch-first. ``TensorSpec.shape`` excludes the batch axis; ``None`` is dynamic.
* Weight matrices are ``(out, in)`` (PyTorch/ONNX orientation), never Keras' ``(in, out)``.
* A node's ``mask`` names a boolean ``(batch, time)`` tensor made by a ``mask_*`` node; masks are
  explicit, readers do Keras' mask propagation.
* A node's ``source`` records where it came from (Keras class and layer name) for messages.

The ops, one row each (description, options with types and defaults, weights and their shapes,
output shapes, mask rule, states), are the table in :mod:`converters.ops`; a node's options are
completed with the row's defaults when the node is built, so code reading a node indexes
``node.options[key]`` for every option the row gives a default.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, TypeVar

import operator

import numpy as np

from .errors import FormatError, UnsupportedError
from .gates import GATES
from .sanitize import quote
from .ops import DIRECTIONS, GATE_PARTS, MERGE_MODES, STATES, normalized_options  # noqa: F401 (re-exported)

RECURRENT_OPS = tuple(STATES)


@dataclass
class TensorSpec:
    """A model input: its name, shape without the batch axis (``None`` = dynamic) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"  # or "int64" for token ids


@dataclass
class Gate:
    """One gate of one direction: input weights ``(units, in)``, recurrent ``(units, units)``, biases."""

    input_weights: np.ndarray
    recurrent_weights: np.ndarray
    input_bias: np.ndarray
    recurrent_bias: np.ndarray


@dataclass
class Node:
    """One computation: ``op`` applied to the tensors named in ``inputs``, producing ``outputs``."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    mask: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    #: the options this node's defaults filled in, with the values filled (converters/ops.py)
    defaulted: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Fill the defaults of the op's options, once, whichever reader builds the node."""
        self.defaulted = {**self.defaulted, **normalized_options(self.op, self.options)}

    def given_options(self) -> dict[str, Any]:
        """The options but the defaults filled in (unless changed since): what a ``.gates`` manifest stores."""
        return {k: v for k, v in self.options.items() if k not in self.defaulted or self.defaulted[k] != v}

    # -- recurrent helpers -------------------------------------------------------------
    @property
    def is_recurrent(self) -> bool:
        return self.op in RECURRENT_OPS

    @property
    def directions(self) -> tuple[str, ...]:
        return DIRECTIONS if self.options.get("bidirectional") else DIRECTIONS[:1]

    @property
    def gate_names(self) -> tuple[str, ...]:
        return GATES[self.op]

    def gate(self, direction: str, gate: str) -> Gate:
        w = self.weights
        return Gate(*(w[f"{direction}.{gate}.{part}"] for part in GATE_PARTS))

    def set_gate(self, direction: str, gate: str, g: Gate) -> None:
        for part in GATE_PARTS:
            self.weights[f"{direction}.{gate}.{part}"] = getattr(g, part)

    def gates(self, direction: str) -> dict[str, Gate]:
        return {g: self.gate(direction, g) for g in self.gate_names}

    def stacked(self, direction: str, part: str, framework: str) -> np.ndarray:
        """One part of all gates of ``direction`` stacked on axis 0 in ``framework``'s order."""
        from .gates import gate_order

        blocks = [self.weights[f"{direction}.{g}.{part}"] for g in gate_order(framework, self.op)]
        joined = joined_rows(blocks)  # the packed array itself when stored in this order (no copy)
        return np.concatenate(blocks, axis=0) if joined is None else joined

    def label(self) -> str:
        """How messages name this node: ``name (KerasClass)``."""
        cls = self.source.get("class_name")
        return f"{self.name} ({cls})" if cls else self.name


@dataclass
class Model:
    """An ordered graph of nodes with named inputs and outputs (Keras' order)."""

    name: str
    inputs: list[TensorSpec]
    outputs: list[str]
    nodes: list[Node]
    source: dict[str, Any] = field(default_factory=dict)  # format, keras_version, path ...

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def recurrent_nodes(self) -> Iterator[Node]:
        return (n for n in self.nodes if n.is_recurrent)

    def read_tensors(self) -> set[str]:
        """Every tensor something reads: a node's input or mask, or a model output (the others, e.g. the
        sequence output of an encoder whose states alone are used, need no variable in generated code)."""
        return {t for n in self.nodes for t in (*n.inputs, n.mask) if t} | set(self.outputs)


M = TypeVar("M")


def made_twice(given: Iterable[str], makers: Iterable[tuple[M, Iterable[str]]]) -> tuple[str, M | None, M] | None:
    """Each tensor made once: the one check the Keras reader (keras_build), the ONNX reader (onnx_model) and the
    ``.gates`` manifest check (manifest_check) share, each with its own message. ``makers`` in order, each with
    the names it makes; the first name one makes that is among ``given`` (model inputs, initializers) or that an
    earlier maker made, as ``(name, the earlier maker or None for a given name, this maker)``; None when every
    name is made once. Two makers of one name would make a graph mean either (every target wires one)."""
    made: dict[str, M | None] = dict.fromkeys(given)
    for maker, names in makers:
        for name in names:
            if name in made:
                return name, made[name], maker
            made[name] = maker
    return None


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2`` ... whichever is not in ``taken``; it is added to ``taken``."""
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    taken.add(candidate)
    return candidate


def set_recurrent_weights(
    node: Node,
    direction: str,
    framework: str,
    input_weights: np.ndarray,
    recurrent_weights: np.ndarray,
    input_bias: np.ndarray | None,
    recurrent_bias: np.ndarray | None = None,
) -> None:
    """Store packed ``(gates*units, in)`` arrays of ``framework``'s gate order as per-gate weights.

    Missing biases become zeros. Arrays are kept in float32 unless they already are float64.
    """
    from .gates import split_gates

    units = node.options["units"]
    n = len(GATES[node.op])
    zeros = np.zeros(n * units, dtype=input_weights.dtype)
    parts = {
        "input_weights": input_weights,
        "recurrent_weights": recurrent_weights,
        "input_bias": zeros if input_bias is None else input_bias,
        "recurrent_bias": zeros if recurrent_bias is None else recurrent_bias,
    }
    for part, packed in parts.items():
        # no copy: each gate is a view of the packed array (for a Keras kernel, a transposed view of the
        # array read from the file); a writer lays it out once, while writing (safetensors_io.write_array)
        for gate, block in split_gates(np.asarray(packed), framework, node.op, axis=0).items():
            node.weights[f"{direction}.{gate}.{part}"] = block


def joined_rows(blocks: list[np.ndarray]) -> np.ndarray | None:
    """``np.concatenate(blocks)`` without a copy when the blocks are consecutive row ranges of one array
    (the gates of one packed array, in their stored order), else None."""
    first = blocks[0]
    if first.ndim == 0 or first.base is None:
        return None
    for a, b in zip(blocks, blocks[1:]):
        if (b.base is not first.base or b.dtype != first.dtype or b.shape[1:] != first.shape[1:]
                or b.strides != first.strides or not a.shape[0] or _address(b) != _address(a) + a.shape[0] * a.strides[0]):
            return None
    rows = sum(b.shape[0] for b in blocks)
    return np.lib.stride_tricks.as_strided(first, (rows, *first.shape[1:]), first.strides)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


#: Tiles of the blocked transpose, in source rows x source columns, and the size from which it beats
#: numpy's plain strided copy. A transposed Keras kernel's rows lie a power of two bytes apart (32 KB for
#: 8,192 columns of float32), so a strided read of one output row's elements maps them all onto the same
#: few cache sets; each tile is therefore read as contiguous runs into a small buffer, transposed there,
#: and written as contiguous runs (1.6x numpy's own tiled copy on a 2048 x 8192 float32 kernel, 2 cores).
_TILE_SOURCE_ROWS, _TILE_SOURCE_COLS, _TILED_FROM = 64, 256, 1 << 16
#: Padding of the transposed tile's rows, so that they do not lie a power of two bytes apart either.
_TILE_PAD = 16
#: The shortest contiguous run of the source (``out``'s row count) worth tiling for.
_TILED_MIN_RUN = 16


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous array; a large transposed view is copied tile by tile (cache-friendly)."""
    if a.flags.c_contiguous:
        return a
    if a.ndim != 2:
        return np.ascontiguousarray(a)
    out = np.empty(a.shape, a.dtype)
    copy_2d(out, a)
    return out


def copy_2d(out: np.ndarray, a: np.ndarray) -> None:
    """``out[...] = a`` for 2-D arrays (a cast if the dtypes differ); a large source laid out column-major
    (a transposed view) is copied tile by tile through two small buffers (see :data:`_TILE_SOURCE_ROWS`)."""
    rows, cols = a.shape
    if a.size < _TILED_FROM or rows < _TILED_MIN_RUN or not 0 < a.strides[0] < a.strides[1]:
        out[...] = a
        return
    source = a.T  # the array as stored: each of its rows a run of ``out``'s column
    read = np.empty((_TILE_SOURCE_ROWS, _TILE_SOURCE_COLS), a.dtype)
    turned = np.empty((_TILE_SOURCE_COLS, _TILE_SOURCE_ROWS + _TILE_PAD), out.dtype)
    for i in range(0, cols, _TILE_SOURCE_ROWS):
        height = min(_TILE_SOURCE_ROWS, cols - i)
        for j in range(0, rows, _TILE_SOURCE_COLS):
            width = min(_TILE_SOURCE_COLS, rows - j)
            tile = read[:height, :width]
            tile[...] = source[i:i + height, j:j + width]
            tile_t = turned[:width, :height]
            tile_t[...] = tile.T
            out[j:j + width, i:i + height] = tile_t


def int_option(value, default: int | None = None) -> int:
    """A Keras int option that may be stored as a 1-tuple (``strides: [2]``), ``default`` when it is
    None and a default is given; never a string, never several values."""
    if value is None and default is not None:
        return default
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise UnsupportedError(f"expected one value, found {quote(list(value))}")
        value = value[0]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return operator.index(value)
    except TypeError:
        raise FormatError(f"expected an integer, found {quote(value)}") from None
