"""Read every attribute of an HDF5 file in a child process first, with a time limit.

A damaged HDF5 file can make libhdf5 loop forever inside one call (a corrupted global heap behind a
variable-length string attribute, found by tests/fuzz_readers.py) or fail with errors h5py does not
map; no Python code can interrupt that call. So the child walks the file and reads each attribute;
if it does not finish in time, or fails, the file is refused with one line before the reader
touches it. libhdf5 is deterministic, so attributes the child read, the reader reads too.

The child also refuses, before the parent touches any object, links to other files and datasets
whose data lives outside the file (opening or reading a FIFO would block forever, virtual datasets
map other files), and attributes that declare more bytes than the file's budget (budget.py).
"""
from __future__ import annotations

import io
import os
import select
import sys
import warnings

import h5py

from .. import budget as budgets
from ..errors import FormatError, UnsafeError
from ..sanitize import quote
from .hdf5 import outside_storage

#: Seconds the child may take; a healthy Keras file needs milliseconds.
TIMEOUT = 20.0
#: How the child marks a refusal for a hostile file (UnsafeError) rather than a damaged one.
_UNSAFE = "unsafe: "
#: How the child marks a refusal it words itself (FormatError), not an error of h5py's.
_DAMAGED = "damaged: "


class _Unsafe(Exception):
    pass


class _Damaged(Exception):
    pass


def _text_name(name: bytes) -> None:
    """An object's path as libhdf5 stores it (bytes) must be UTF-8: h5py decodes every name it lists, and a
    name that is not failed inside its iteration as a SystemError ('FastRLock.__exit__ returned a result
    with an exception set'), which reached the user's one line."""
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        raise _Damaged(f"expected HDF5 object names that are UTF-8 text, found {quote(name)}") from None


def _walk(source, limit: int) -> None:
    with h5py.File(source, "r") as f:
        def visit(name, obj):
            _read_attrs(obj, limit)
            if isinstance(obj, h5py.Dataset) and (why := outside_storage(obj.id.get_create_plist())):
                raise _Unsafe(f"dataset {quote('/' + name)} uses {why}; gateport reads only data "
                              "stored in the file itself")
        h5py.h5o.visit(f.id, _text_name)  # bytes names, before any h5py call that decodes them
        _read_attrs(f, limit)
        # links are listed, not followed; the first one to another file stops the visit
        if (name := f.visititems_links(_foreign_link)) is not None:
            raise _Unsafe(f"{quote('/' + name)} is a link to another file; gateport reads only data "
                          "stored in the file itself")
        f.visititems(visit)


def _foreign_link(name, link) -> str | None:
    return None if isinstance(link, (h5py.HardLink, h5py.SoftLink)) else name


def _read_attrs(obj, limit: int) -> None:
    for key in obj.attrs:
        attr = obj.attrs.get_id(key)
        declared = budgets.nbytes(tuple(attr.shape or ()), attr.dtype.itemsize)
        if declared > limit:
            raise _Unsafe(f"attribute {quote(key)} of {quote(obj.name)} declares {declared} bytes, more "
                          f"than this file's budget of {limit}")
        obj.attrs[key]


def probe(source: str | os.PathLike | bytes | io.IOBase, timeout: float = TIMEOUT) -> None:
    """Raise FormatError if reading ``source``'s attributes fails or does not finish in ``timeout``
    (a path, the bytes of a file, or a seekable file object, read in the child only)."""
    if not hasattr(os, "fork"):
        return
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns on any fork of a process with threads (numpy's BLAS pool is one); the child
        # only reads through h5py and leaves by os._exit, and a child that hangs is killed after ``timeout``
        warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: walk, report, leave without running any cleanup of the parent's
        code = 0
        try:
            os.close(read_end)
            if isinstance(source, bytes):
                source = io.BytesIO(source)
            size = source.seek(0, io.SEEK_END) if hasattr(source, "seek") else os.path.getsize(source)
            _walk(source, budgets.limit_for(size))
        except _Unsafe as e:
            os.write(write_end, f"{_UNSAFE}{e}".encode()[:2000])
            code = 1
        except _Damaged as e:
            os.write(write_end, f"{_DAMAGED}{e}".encode()[:2000])
            code = 1
        except BaseException as e:  # noqa: BLE001 - reported to the parent as one line
            os.write(write_end, f"{type(e).__name__}: {e}".encode()[:2000])
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        if not ready:
            os.kill(pid, 9)
            raise FormatError(f"the HDF5 library did not finish reading this file's attributes in "
                              f"{timeout:.0f} s: the file is damaged")
        message = os.read(read_end, 4096).decode(errors="replace")
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    if not message and os.waitstatus_to_exitcode(status) != 0:  # libhdf5 crashed the child (a signal)
        raise FormatError(f"the HDF5 library crashed reading this file's attributes (exit status "
                          f"{os.waitstatus_to_exitcode(status)}): the file is damaged")
    if message.startswith(_UNSAFE):
        raise UnsafeError(message[len(_UNSAFE):])
    if message.startswith(_DAMAGED):
        raise FormatError(message[len(_DAMAGED):])
    if message:
        raise FormatError(f"cannot read the HDF5 file's attributes ({message.splitlines()[0]})")


if __name__ == "__main__":  # python -m converters.readers.hdf5_probe FILE
    probe(sys.argv[1])
