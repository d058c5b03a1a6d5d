"""Zip archives read within limits: the ``.keras`` file and the npz weight store inside it.

A 10 KB ``.keras`` can hold a ``model.weights.npz`` whose ``.npy`` member unpacks to 5 GiB. So
every member, at every level of nesting, is read by :func:`read_member`: its size from the
central directory is taken from the file's :class:`~converters.budget.Budget` before anything is
unpacked, and the bytes actually unpacked are counted while reading. A nested zip is opened by
:func:`open_zip` on the bytes of its member, with the same member limit and the same budget.

``.npy`` members are parsed here, never by ``np.load``: the header (numpy's own
``read_array_header_1_0`` / ``2_0``), its shape checked by :func:`converters.budget.shape`, a plain
numeric dtype (never an object dtype, never pickle), then exactly the bytes the header declares.
"""
from __future__ import annotations

import io
import math
import zipfile

import numpy as np

from .. import budget as budgets
from ..errors import FormatError, UnsafeError
from ..sanitize import quote
from .malformed import IO_ERRORS, malformed

#: Most members an archive may list (a .keras has a handful; an npz one per weight).
MAX_MEMBERS = 100_000
#: Bytes unpacked per read call.
CHUNK = 1 << 20
#: Largest .npy header (numpy's own limit for untrusted files).
MAX_NPY_HEADER = 10_000


def open_zip(source, file: str | None, what: str = "archive") -> zipfile.ZipFile:
    """``source`` (a path or a file object) as a ZipFile listing at most :data:`MAX_MEMBERS`."""
    try:
        z = zipfile.ZipFile(source)
    except (*IO_ERRORS, ValueError) as e:
        raise FormatError(f"not a readable {what} ({type(e).__name__}: {quote(e, 200)})", file=file) from None
    if len(z.infolist()) > MAX_MEMBERS:
        count = len(z.infolist())
        z.close()
        raise UnsafeError(f"the {what} lists {count} members, more than the {MAX_MEMBERS} gateport "
                          "accepts", file=file)
    return z


def read_member(z: zipfile.ZipFile, name: str, budget: budgets.Budget, *, limit: int | None = None,
                file: str | None = None, inside: str = "") -> io.BytesIO:
    """Member ``name`` unpacked into memory, its declared size taken from ``budget`` first.

    ``limit`` caps this one member; ``inside`` names the archive member holding ``z``, if any. The
    unpacked bytes are counted: a member that unpacks to more or fewer bytes than its header
    declares is refused (zipfile checks the CRC at the end).
    """
    what = f"archive member {quote(inside + name)}"
    info = z.getinfo(name)
    declared = info.file_size
    if limit is not None and declared > limit:
        raise UnsafeError(f"{what} unpacks to {declared} bytes, more than the {limit} gateport "
                          "accepts", file=file)
    budget.take(declared, what)
    out = io.BytesIO()
    with malformed(what, file=file, errors=(*IO_ERRORS, ValueError)), z.open(info) as f:
        while out.tell() < declared:
            chunk = f.read(min(CHUNK, declared - out.tell()))
            if not chunk:
                break
            out.write(chunk)
        extra = len(f.read(1))
    if out.tell() + extra != declared:
        raise FormatError(f"{what} unpacks to {'more than ' if extra else ''}{out.tell()} bytes, its "
                          f"header declares {declared}", file=file)
    out.seek(0)
    return out


def read_npz(data: io.BytesIO, budget: budgets.Budget, file: str | None,
             label: str = "model.weights.npz") -> dict[str, np.ndarray]:
    """The arrays of an npz held in ``data``, by member name without ``.npy``."""
    arrays = {}
    with open_zip(data, file, f"{label} archive") as z:
        for info in z.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise FormatError(f"expected only .npy arrays in {label}, found member {quote(name)}",
                                  file=file)
            member = read_member(z, name, budget, file=file, inside=f"{label}:")
            arrays[name[: -len(".npy")]] = parse_npy(member, f"{label}:{name}", file)
    return arrays


def parse_npy(data: io.BytesIO, what: str, file: str | None) -> np.ndarray:
    """The array in ``data`` (a whole .npy file), viewed in place, after its header is checked."""
    what = quote(what)
    dims, fortran, dtype = _npy_header(data, what, file)
    offset = data.tell()
    size = len(data.getbuffer()) - offset
    expected = budgets.nbytes(dims, dtype.itemsize)
    if size != expected:
        raise FormatError(f"{what}: its header declares {expected} bytes of data, found {size}", file=file)
    flat = np.frombuffer(data.getbuffer(), dtype=dtype, count=math.prod(dims), offset=offset)
    return flat.reshape(dims[::-1]).T if fortran else flat.reshape(dims)


def _npy_header(data: io.BytesIO, what: str, file: str | None) -> tuple[tuple[int, ...], bool, np.dtype]:
    head = io.BytesIO(data.read(MAX_NPY_HEADER + 16))
    fmt = np.lib.format
    with malformed(f".npy header of {what}", file=file):
        version = fmt.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(head, max_header_size=MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(head, max_header_size=MAX_NPY_HEADER)
        else:
            raise FormatError(f"{what}: expected .npy format version 1.0 or 2.0, found {quote(version)}",
                              file=file)
    if not budgets.plain_numeric(dtype):
        raise UnsafeError(f"{what}: expected a numeric dtype, found {quote(dtype)} (object arrays would "
                          "need pickle, which gateport never runs)", file=file)
    dims = budgets.shape(shape, f".npy shape of {what}", file=file)
    data.seek(head.tell())
    return dims, bool(fortran), dtype
