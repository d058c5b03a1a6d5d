"""Every size an input declares is checked here before anything of that size is allocated or read.

A 10 KB file can declare a 10**12-element dataset, a 5 GiB deflated archive member or a
``(-1, 8.5)`` shape. Readers call :func:`shape` on every declared shape (it must be a tuple of
non-negative Python ints) and :meth:`Budget.take` before reading the bytes, so a hostile file is
refused in one line instead of exhausting memory.

The budget of one read is ``min(MAX_BYTES, FLOOR + RATIO * file size)``: real weights are stored
about as large as they are in memory (float data hardly compresses), so a file that declares far
more than it holds is refused. ``GATEPORT_MAX_BYTES`` (bytes), when set, is the budget of every
file whatever its size (for trusted files of very compressible weights, or to lower the ceiling).
"""
from __future__ import annotations

import math
import numbers
import os

from . import errors
from .errors import UnsafeError
from .sanitize import quote

#: Absolute ceiling of what one read may allocate (default 16 GiB; env GATEPORT_MAX_BYTES).
MAX_BYTES = int(os.environ.get("GATEPORT_MAX_BYTES", 16 << 30))
#: Whether the user set the budget themselves: then it holds for every file, whatever its size.
EXPLICIT = "GATEPORT_MAX_BYTES" in os.environ
#: What any file may declare regardless of its size (small files with zero-filled weights).
FLOOR = 64 << 20
#: How much more than its own size a file may declare (a little compression, headers).
RATIO = 4
#: Most dimensions an array may have.
MAX_RANK = 32
#: Most layers of a Keras config or nodes of an ONNX graph (subgraphs included): real models hold a few
#: thousand; every reader walks each one in Python (~0.1 ms a node), so 10**6 would take minutes.
MAX_NODES = 30_000
#: Longest name (a layer's, an input's, an output's, a tensor's) a model may carry: real ones are under a few
#: hundred characters. Each is written into every artifact again, once per node and value it names: a 12 MB
#: layer name became a 201 MB ONNX file and took 2 GB to write.
MAX_NAME = 4096
#: Most recurrent layers of one model (real ones hold a handful; each costs ~2 ms to write, a 24,000-module
#: state dict took 82 s to inspect).
MAX_RECURRENT = 1_000


#: What a child process running an artifact (onnxruntime, Keras, generated code) may allocate besides its
#: inputs, activations and weights: the runtime itself. Measured (VmData after importing and running a fixture):
#: Keras 3 on torch 320 MiB, onnxruntime 120 MiB.
CHILD_BASE = 1 << 30


def child_limit(artifact_bytes: int, work_bytes: int) -> int:
    """RLIMIT_DATA of a child process running an artifact of ``artifact_bytes`` (its files' sizes) on inputs and
    activations of at most ``work_bytes`` (the verify budget): the runtime, the work, and the weights :data:`RATIO`
    times over (a serialized graph, its parse, the runtime's own copies). ``GATEPORT_CHILD_BYTES`` (bytes), when
    set, is the ceiling of every child."""
    if "GATEPORT_CHILD_BYTES" in os.environ:
        return int(os.environ["GATEPORT_CHILD_BYTES"])
    return CHILD_BASE + max(0, int(work_bytes)) + min(MAX_BYTES, RATIO * max(0, int(artifact_bytes)))


def limit_for(file_size: int) -> int:
    """The byte budget of reading a file of ``file_size`` bytes."""
    if EXPLICIT:
        return MAX_BYTES
    return min(MAX_BYTES, FLOOR + RATIO * max(0, int(file_size)))


def shape(value: object, what: str, *, file: str | None = None, layer: str | None = None) -> tuple[int, ...]:
    """``value`` as a shape tuple of non-negative ints, or a one-line :class:`UnsafeError`.

    Refuses floats (``8.5``, ``inf``, ``nan``), bools, strings, negative numbers, more than
    :data:`MAX_RANK` dimensions and any dimension above :data:`MAX_BYTES`.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)) or len(value) > MAX_RANK:
        raise UnsafeError(f"{what}: expected a shape (a list of at most {MAX_RANK} non-negative integers), "
                          f"found {quote(value)}", file=file, layer=layer)
    dims = []
    for d in value:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) < 0:
            raise UnsafeError(f"{what}: expected non-negative integer dimensions, found {quote(list(value))}",
                              file=file, layer=layer)
        if int(d) > MAX_BYTES:
            raise UnsafeError(f"{what}: expected dimensions of at most {MAX_BYTES} (the byte budget's ceiling), "
                              f"found {quote(list(value))}", file=file, layer=layer)
        dims.append(int(d))
    return tuple(dims)


def count(n: int, what: str, *, file: str | None = None, layer: str | None = None, limit: int | None = None) -> None:
    """Refuse (UnsafeError) a model declaring more than ``limit`` (:data:`MAX_NODES`) layers or nodes."""
    limit = MAX_NODES if limit is None else limit
    if n > limit:
        raise UnsafeError(f"{what}: expected at most {limit}, found {n}", file=file, layer=layer)


def names(items, *, file: str | None = None) -> None:
    """Refuse (UnsafeError) any ``(what, name)`` of ``items`` longer than :data:`MAX_NAME` characters."""
    for what, name in items:
        if len(name) > MAX_NAME:
            raise UnsafeError(f"{what} {quote(name)}: expected a name of at most {MAX_NAME} characters, found "
                              f"{len(name)}", file=file)


def plain_numeric(dtype) -> bool:
    """Whether a declared numpy ``dtype`` is plain numbers (bool, int, uint, float): no objects
    (pickle), strings, records or sub-arrays."""
    return dtype.kind in "biuf" and not (dtype.fields or dtype.subdtype or dtype.hasobject)


def nbytes(dims: tuple[int, ...], itemsize: int) -> int:
    """Bytes of an array of ``dims`` (Python ints: no overflow)."""
    return math.prod(dims) * int(itemsize)


class Budget:
    """What one read may still allocate; :meth:`take` refuses what does not fit."""

    def __init__(self, file: str | None = None, file_size: int | None = None, limit: int | None = None):
        self.file = file
        if limit is None:
            if file_size is None:
                file_size = os.path.getsize(file) if file and os.path.isfile(file) else 0
            limit = limit_for(file_size)
        self.limit = int(limit)
        self.used = 0

    def take(self, nbytes: int, what: str, *, layer: str | None = None) -> None:
        """Count ``nbytes`` for ``what``; refuse (UnsafeError) if the total exceeds the budget."""
        nbytes = int(nbytes)
        if nbytes < 0 or self.used + nbytes > self.limit:
            raise UnsafeError(f"{what} declares {nbytes} bytes, more than the {self.limit - self.used} left of "
                              f"this file's budget of {self.limit} bytes (set GATEPORT_MAX_BYTES to allow more)",
                              file=self.file, layer=layer)
        self.used += nbytes

    @property
    def left(self) -> int:
        """Bytes this read may still allocate."""
        return self.limit - self.used

    def take_array(self, value: object, itemsize: int, what: str, *, layer: str | None = None) -> tuple[int, ...]:
        """Validate a declared shape and count its bytes; returns the shape as a tuple of ints."""
        dims = shape(value, what, file=self.file, layer=layer)
        self.take(nbytes(dims, itemsize), what, layer=layer)
        return dims


def check_count(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as a whole number in ``[minimum, maximum]`` (default maximum: the byte budget's ceiling,
    :data:`MAX_BYTES`: no count of samples, steps or seconds is larger), else a UsageError
    naming the option: a bool, a float, a string ('3' from a script) or 2**63 is refused here, not deep in
    numpy as a TypeError or an OverflowError."""
    top = MAX_BYTES if maximum is None else maximum
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not minimum <= int(value) <= top:
        raise errors.UsageError(f"expected {name} a whole number from {minimum} to {top}, found {value!r:.60}")
    return int(value)
