"""The safetensors file format in plain numpy: an 8-byte little-endian header length, a JSON header
(dtype, shape, byte offsets per tensor, optional ``__metadata__`` of strings), then the raw data.

Written here so that saving the IR needs no extra package; the tests check the files against the
``safetensors`` library itself. Spec: https://github.com/huggingface/safetensors (README, "Format").

Reading trusts nothing in the header: it is parsed with a depth limit (:mod:`converters.safe_json`),
every shape is checked and counted by :mod:`converters.budget`, and the byte ranges must tile the
data exactly (no overlap, no gap, nothing past the end), as the spec requires, before any data
is read.
"""
from __future__ import annotations

import json
import numbers
import os
import struct
import sys
from dataclasses import dataclass
from typing import BinaryIO, Mapping

import numpy as np

from . import safe_json
from . import budget as budgets
from .budget import Budget
from .errors import FormatError, UnsafeError, UnsupportedError
from .sanitize import quote

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
#: Largest header read (the reference implementation allows 100 MiB; parsing that many small entries
#: takes gigabytes, and a real header, even of thousands of tensors, stays far below).
MAX_HEADER = 16 << 20
#: Most tensors one file may list.
MAX_TENSORS = 100_000
#: The header is ``{name: {"shape": [...]}}`` and ``{"__metadata__": {key: value}}``: 3 levels.
HEADER_DEPTH = 3
#: dtypes of the spec that numpy cannot hold (BF16 is read as float32, exactly).
_OTHER_DTYPES = ("F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64", "I4", "U4")
METADATA = "__metadata__"


def save(path: str | os.PathLike, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` (name -> array) and string ``metadata`` to ``path``.

    The header comes from the arrays' shapes and dtypes; then each tensor's bytes go from its array
    straight to the file (copied only when the array is not C-contiguous little-endian), one at a time.
    """
    header: dict = {}
    if metadata:  # a lone surrogate (a name from JSON "\ud800") is escaped: the header must be UTF-8
        header["__metadata__"] = {str(k).encode("utf-8", "backslashreplace").decode(): str(v).encode(
            "utf-8", "backslashreplace").decode() for k, v in metadata.items()}
    offset = 0
    arrays = []
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        code = _CODES.get(a.dtype.newbyteorder("="))
        if code is None:
            raise TypeError(f"{name}: dtype {a.dtype} cannot be stored in safetensors")
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # align the data to 8 bytes, as the reference writer does
    with open_output(path) as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for a in arrays:
            write_array(f, a)


def open_output(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for writing from its start (created if missing), truncated only if it holds bytes.

    The writers write into the empty temporary :mod:`converters.atomic` made; ``open(path, "wb")`` would
    truncate it anyway, and ext4 (``auto_da_alloc``) then writes a file truncated to empty back to the disk
    when it is closed, a flush of the whole output (0.05-0.09 s of CPU for 235 MB here) before the rename."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        if os.fstat(fd).st_size:
            os.ftruncate(fd, 0)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


#: Most bytes one ``write`` call passes, and the size of the block a non-contiguous array is laid out in.
BLOCK_BYTES = 8 << 20


def write_array(f, a: np.ndarray, dtype=None) -> None:
    """Write ``a``'s data to the file ``f`` in C order, little-endian, as ``dtype`` (default: its own):
    straight from the array when it already is laid out so, else block by block through one buffer of
    at most :data:`BLOCK_BYTES` (a 2-D transposed view copied tile by tile, :func:`converters.ir.copy_2d`),
    so that no copy of the whole array is made. The bytes are those of ``little_endian_bytes``."""
    from .ir import copy_2d

    a = np.asarray(a)
    target = np.dtype(dtype or a.dtype).newbyteorder("<")
    if a.ndim != 2 or a.dtype == target and a.flags.c_contiguous:
        data = little_endian_bytes(a if dtype is None else a.astype(target, copy=False))
        for start in range(0, len(data), BLOCK_BYTES):
            f.write(data[start:start + BLOCK_BYTES])
        return
    rows, row_bytes = a.shape[0], a.shape[1] * target.itemsize
    step = max(1, BLOCK_BYTES // max(1, row_bytes))
    buffer = np.empty((min(step, rows), a.shape[1]), target)
    for start in range(0, rows, step):
        block = buffer[:min(step, rows - start)]
        copy_2d(block, a[start:start + step])
        f.write(memoryview(block.reshape(-1)).cast("B"))


def little_endian_bytes(a: np.ndarray) -> memoryview:
    """The bytes of ``a`` in C order, little-endian (as safetensors and ONNX store them): a view of
    the array itself when it already is C-contiguous little-endian, else of one copy."""
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    return memoryview(a.reshape(-1)).cast("B")


@dataclass(frozen=True)
class Entry:
    """One tensor of the header: its dtype code, shape and byte range in the data."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    stop: int


@dataclass(frozen=True)
class Header:
    """A checked header: the tensors by name, the string metadata, where the data starts and its size."""

    entries: dict[str, Entry]
    metadata: dict[str, str]
    data_start: int
    data_size: int


def read_header(path: str | os.PathLike) -> Header:
    """The checked header of ``path``; reads no tensor data."""
    file = str(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) != 8:
            raise FormatError("not a safetensors file: shorter than its 8-byte header length", file=file)
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise FormatError(f"not a safetensors file: header length {n} exceeds the file's {size} bytes",
                              file=file)
        if n > MAX_HEADER:
            raise UnsafeError(f"safetensors header of {n} bytes, more than the {MAX_HEADER} gateport reads",
                              file=file)
        header = safe_json.loads(f.read(n), what="safetensors header", file=file, max_depth=HEADER_DEPTH,
                                 max_bytes=MAX_HEADER)
    if not isinstance(header, dict):
        raise FormatError(f"not a safetensors file: expected a JSON object as header, found "
                          f"{type(header).__name__}", file=file)
    metadata = _metadata(header.pop(METADATA, None), file)
    if len(header) > MAX_TENSORS:
        raise UnsafeError(f"the header lists {len(header)} tensors, more than the {MAX_TENSORS} gateport accepts",
                          file=file)
    data_size = size - 8 - n
    budget = Budget(file, file_size=size)
    entries = {name: _entry(name, info, data_size, budget, file) for name, info in header.items()}
    _check_tiling(entries, data_size, file)
    return Header(entries, metadata, 8 + n, data_size)


def _metadata(value: object, file: str) -> dict[str, str]:
    """``__metadata__``: absent, null or an object of strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormatError(f"{METADATA}: expected an object of strings, found {type(value).__name__}", file=file)
    for key, text in value.items():
        if not isinstance(text, str):
            raise FormatError(f"{METADATA} {quote(key)}: expected a string, found {type(text).__name__}",
                              file=file)
    return value


def _entry(name: str, info: object, data_size: int, budget: Budget, file: str) -> Entry:
    """One header entry checked: known dtype, shape within the budget, offsets that fit its bytes."""
    what = f"tensor {quote(name)}"
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise FormatError(f"{what}: expected an object with dtype, shape and data_offsets, found "
                          f"{quote(_brief(info))}", file=file)
    code = info["dtype"]
    if code in _OTHER_DTYPES:
        raise UnsupportedError(f"{what}: dtype {code} has no numpy equivalent", file=file)
    if not isinstance(code, str) or code != "BF16" and code not in _DTYPES:
        raise FormatError(f"{what}: expected a dtype among {', '.join(['BF16', *_DTYPES])}, found "
                          f"{quote(_brief(code))}", file=file)
    shape = budget.take_array(info["shape"], _itemsize(code), f"{what} shape")
    offsets = info["data_offsets"]
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size):
        raise FormatError(f"{what}: expected data_offsets [start, stop] with 0 <= start <= stop <= "
                          f"{data_size} (the data size), found {quote(_brief(offsets))}", file=file)
    start, stop = (int(o) for o in offsets)
    nbytes = budgets.nbytes(shape, _itemsize(code))
    if stop - start != nbytes:
        raise FormatError(f"{what}: shape {list(shape)} of {code} needs {nbytes} bytes, its data_offsets "
                          f"[{start}, {stop}] hold {stop - start}", file=file)
    return Entry(code, shape, start, stop)


def _check_tiling(entries: dict[str, Entry], data_size: int, file: str) -> None:
    """The byte ranges, sorted, must follow each other exactly from 0 to the end of the data."""
    end, previous = 0, None
    for name, e in sorted(entries.items(), key=lambda item: (item[1].start, item[1].stop)):
        if e.start != end:
            problem = (f"overlaps tensor {quote(previous)}" if e.start < end
                       else f"leaves bytes {end}..{e.start} of the data unused")
            raise FormatError(f"tensor {quote(name)}: data_offsets [{e.start}, {e.stop}] {problem}; the spec "
                              "requires the tensors to tile the data exactly", file=file)
        end, previous = e.stop, name
    if end != data_size:
        raise FormatError(f"the tensors cover {end} of the file's {data_size} data bytes; the spec requires "
                          "them to tile the data exactly", file=file)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _itemsize(code: str) -> int:
    return 2 if code == "BF16" else np.dtype(_DTYPES[code]).itemsize


def dtype_name(code: str) -> str:
    """The numpy name of a header dtype code (``F32`` -> ``float32``); ``bfloat16`` for BF16."""
    return "bfloat16" if code == "BF16" else np.dtype(_DTYPES[code]).name


def _brief(value: object) -> str:
    """A short text of a JSON value for a message (never recursing deeper than the header allows)."""
    text = json.dumps(value, allow_nan=True) if not isinstance(value, str) else value
    return text[:200]


def _array(raw: bytes, e: Entry) -> np.ndarray:
    """The bytes of one tensor as a native-order array (BF16 widened to float32, exactly)."""
    if e.dtype == "BF16":
        wide = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return wide.view(np.float32).reshape(e.shape)
    dtype = np.dtype(_DTYPES[e.dtype]).newbyteorder("<")
    return np.frombuffer(raw, dtype=dtype).reshape(e.shape).astype(dtype.newbyteorder("="))


def load_metadata(path: str | os.PathLike) -> tuple[dict[str, Entry], dict[str, str]]:
    """The checked header entries (tensor name -> dtype, shape, offsets) and the metadata; reads no data."""
    header = read_header(path)
    return header.entries, header.metadata


def read_tensors(path: str | os.PathLike, header: Header) -> dict[str, np.ndarray]:
    """The tensors ``header`` (from :func:`read_header`) describes, read one by one."""
    tensors = {}
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size != header.data_start + header.data_size:
            raise FormatError("the file changed while being read", file=str(path))
        for name, e in sorted(header.entries.items(), key=lambda item: item[1].start):
            f.seek(header.data_start + e.start)
            raw = f.read(e.stop - e.start)
            if len(raw) != e.stop - e.start:
                raise FormatError(f"tensor {quote(name)}: the file ends inside its data", file=str(path))
            tensors[name] = _array(raw, e)
    return {name: tensors[name] for name in header.entries}


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: ``(tensors, metadata)``. The whole header is checked before any data is read."""
    header = read_header(path)
    return read_tensors(path, header), header.metadata
