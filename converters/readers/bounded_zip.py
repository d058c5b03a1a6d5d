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
import mmap
import os
import struct
import zipfile
import zlib
from typing import Any, Callable

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


class StoredMember(io.RawIOBase):
    """A stored (uncompressed) member read in place from the archive file: a read-only, seekable
    file object over its bytes (``os.pread`` on the archive's descriptor, so nothing else's file
    position moves). h5py reads a ``.keras`` weights store through it without a copy in memory."""

    def __init__(self, fd: int, start: int, size: int):
        super().__init__()
        self._fd, self._start, self.size, self._pos = fd, start, size, 0
        self._mapped: memoryview | None = None
        self._unmappable = False

    def mapped(self) -> memoryview | None:
        """The member's bytes mapped read-only from the archive file: no copy, and no memory of this
        process but the page cache's (None where the system cannot map the file: read it then). Arrays
        viewing them keep the mapping alive. As with any mapped file, a file truncated by another
        process while gateport reads it stops gateport (SIGBUS)."""
        if self._mapped is None and not self._unmappable:
            try:
                mapping = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError, OverflowError):
                self._unmappable = True
                return None
            if len(mapping) < self._start + self.size:
                mapping.close()
                self._unmappable = True  # the archive ends inside the member: the reads say so
                return None
            self._mapped = memoryview(mapping)[self._start:self._start + self.size]
        return self._mapped

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self.size - self._pos))
        done = 0
        while done < n:
            got = os.preadv(self._fd, [view[done:n]], self._start + self._pos + done)
            if got <= 0:
                raise OSError("the archive ended inside a member")
            done += got
        self._pos += n
        return n


def stored_member(z: zipfile.ZipFile, name: str, budget: budgets.Budget, *, limit: int | None = None,
                  file: str | None = None) -> StoredMember | None:
    """Member ``name`` of the archive file ``z`` as a :class:`StoredMember` when it is stored
    uncompressed and unencrypted (else None: read it with :func:`read_member`), after the same
    checks as :func:`read_member`: its size within ``limit`` and taken from ``budget``, its local
    header matching the central directory, and its CRC-32 over the bytes in place."""
    info = z.getinfo(name)
    fp = getattr(z, "fp", None)
    if (info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1 or info.compress_size != info.file_size
            or not hasattr(fp, "fileno") or not hasattr(os, "preadv")):
        return None
    what = f"archive member {quote(name)}"
    if limit is not None and info.file_size > limit:
        raise UnsafeError(f"{what} unpacks to {info.file_size} bytes, more than the {limit} gateport "
                          "accepts", file=file)
    budget.take(info.file_size, what)
    with malformed(what, file=file, errors=(*IO_ERRORS, ValueError)):
        fd = fp.fileno()
        head = os.pread(fd, _LOCAL_HEADER.size, info.header_offset)
        if len(head) != _LOCAL_HEADER.size:
            raise FormatError(f"{what}: the archive ends inside its local header", file=file)
        magic, name_len, extra_len = _LOCAL_HEADER.unpack(head)
        stored_name = os.pread(fd, name_len, info.header_offset + _LOCAL_HEADER.size)
        if magic != b"PK\x03\x04" or stored_name != info.orig_filename.encode(
                "utf-8" if info.flag_bits & 0x800 else "cp437"):
            raise FormatError(f"{what}: its local header does not match the central directory", file=file)
        member = StoredMember(fd, info.header_offset + _LOCAL_HEADER.size + name_len + extra_len, info.file_size)
        _check_crc(member, info.CRC, what, file)
    return member


#: A zip local file header: signature, then 22 bytes this reader skips, then the name and extra lengths.
_LOCAL_HEADER = struct.Struct("<4s22xHH")


#: Members from this size have their CRC-32 computed by ISA-L when it is installed (crc32_function).
FAST_CRC_FROM = 1 << 25


def crc32_function(size: int) -> Callable[[Any, int], int]:
    """zlib.crc32, or for a member of ``size`` >= FAST_CRC_FROM bytes ISA-L's (python-isal,
    ``pip install gateport[fast]``): the same values (the zip CRC-32 polynomial), about five times as
    fast here (8.7 against 1.7 GB/s); its import (a few ms) is paid only for large members."""
    if size >= FAST_CRC_FROM:
        try:
            from isal.isal_zlib import crc32
        except ImportError:
            return zlib.crc32
        return crc32
    return zlib.crc32


def _check_crc(member: StoredMember, crc: int, what: str, file: str | None) -> None:
    """The member's bytes, in place (mapped, else read chunk by chunk), must have the CRC-32 the
    archive declares."""
    found = 0
    crc32 = crc32_function(member.size)
    if (mapped := member.mapped()) is not None:
        for start in range(0, len(mapped), 16 * CHUNK):
            found = crc32(mapped[start:start + 16 * CHUNK], found)
    else:
        buffer = bytearray(16 * CHUNK)
        while n := member.readinto(buffer):
            found = crc32(memoryview(buffer)[:n], found)
        member.seek(0)
    if found != crc:
        raise FormatError(f"{what}: bad CRC-32 (the archive is damaged)", file=file)


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
    dims, fortran, dtype = npy_header(data, what, file)
    offset = data.tell()
    size = len(data.getbuffer()) - offset
    expected = budgets.nbytes(dims, dtype.itemsize)
    if size != expected:
        raise FormatError(f"{what}: its header declares {expected} bytes of data, found {size}", file=file)
    flat = np.frombuffer(data.getbuffer(), dtype=dtype, count=math.prod(dims), offset=offset)
    return flat.reshape(dims[::-1]).T if fortran else flat.reshape(dims)


def npy_header(data: io.BytesIO, what: str, file: str | None) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the .npy at ``data``'s position, checked (a plain numeric
    dtype, a valid shape); ``data`` is left at the first byte of the array."""
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
