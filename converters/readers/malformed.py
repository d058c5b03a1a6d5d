"""One way to report a damaged file: errors that plain Python raises on bad data become a
single-line FormatError naming the file and layer (a fuzzed config or a truncated HDF5 file must
never surface as a KeyError or an h5py traceback)."""
from __future__ import annotations

import zipfile
import zlib
from contextlib import contextmanager

from ..errors import FormatError, GateportError

#: What reading a damaged config raises in plain Python code.
DATA_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
               RecursionError)
#: What a damaged HDF5 file or zip archive raises in h5py / zipfile (h5py: KeyError for objects
#: it cannot open; zipfile: RuntimeError for an encrypted member, and its subclass
#: NotImplementedError for a compression method it does not know).
IO_ERRORS = (OSError, EOFError, RuntimeError, KeyError, zipfile.BadZipFile, zlib.error)


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] + ("..." if len(text) > 300 else "")


@contextmanager
def malformed(what: str, *, file: str | None = None, layer: str | None = None, errors=DATA_ERRORS):
    try:
        yield
    except errors as e:
        raise FormatError(f"malformed {what} ({type(e).__name__}: {one_line(e)})",
                          file=file, layer=layer) from None
    except GateportError as e:  # a check inside refused the data: located like the malformed data
        raise e.at(file=file, layer=layer)
