"""The .npz files a user gives to ``verify`` / ``explain`` (``--inputs``, ``--expected``), read within limits.

They come from a stranger as much as a model does, so they are read like every other zip member
(:mod:`converters.readers.bounded_zip`), never by ``np.load``: numpy's ``NpzFile`` answers a key
``x`` with a member named exactly ``x`` before ``x.npy`` (raw bytes, or a ``.npy`` whose header no
check saw: a 10 KB file unpacked 1.5 GiB that way), and of two members named alike it reads the last.
Here the file must be a regular file (a FIFO would block), every member a ``NAME.npy`` listed once,
each header is checked (plain numbers, a valid shape) before any data is unpacked, and the bytes
unpacked are taken from the file's :class:`~converters.budget.Budget` (``64 MiB + 4 x`` its size).
"""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from . import budget
from .errors import FormatError
from .readers.bounded_zip import MAX_NPY_HEADER, npy_header, open_zip, parse_npy, read_member
from .readers.detect import check_regular
from .readers.malformed import IO_ERRORS, malformed
from .sanitize import quote

Header = tuple[tuple[int, ...], np.dtype]


def headers(path: str | os.PathLike) -> dict[str, Header]:
    """Each array's declared shape and dtype by name (member name without ``.npy``), from the
    ``.npy`` headers alone; FormatError / UnsafeError in one line for anything else in the archive."""
    file = os.fsdecode(path)
    check_regular(path, "an .npz of arrays")
    found: dict[str, Header] = {}
    with _archive(path) as z:
        for info in z.infolist():
            name = info.filename
            if not name.endswith(".npy") or info.is_dir():
                raise FormatError(f"expected an .npz holding only NAME.npy arrays, found member {quote(name)}",
                                  file=file)
            key = name[: -len(".npy")]
            if key in found:
                raise FormatError(f"expected each array once, found member {quote(name)} twice", file=file)
            with malformed(f"member {quote(name)}", file=file, errors=(*IO_ERRORS, ValueError)), z.open(info) as f:
                head = io.BytesIO(f.read(MAX_NPY_HEADER + 16))
            dims, _, dtype = npy_header(head, name, file)
            found[key] = (dims, dtype)
    return found


def arrays(path: str | os.PathLike, keys: list[str]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` (names from :func:`headers`), each unpacked by the bounded reader."""
    file = os.fsdecode(path)
    check_regular(path, "an .npz of arrays")
    spent = budget.Budget(file=file)
    out = {}
    with _archive(path) as z:
        for key in keys:
            member = read_member(z, key + ".npy", spent, file=file)
            out[key] = parse_npy(member, key + ".npy", file)
    return out


def _archive(path) -> zipfile.ZipFile:
    return open_zip(os.fspath(path), os.fsdecode(path), ".npz archive")
