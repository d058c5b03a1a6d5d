"""One exception hierarchy. The CLI turns any :class:`GateportError` into one line and exit 2."""
from __future__ import annotations

import errno
import os

from .sanitize import quote


class GateportError(Exception):
    """Base of every error gateport raises on purpose.

    ``file`` and ``layer`` are filled in where known so the message reads
    ``<file>: <layer>: <what was expected, what was found>``.

    >>> try:
    ...     converters.read("notes.txt")
    ... except converters.GateportError as e:
    ...     print(e)
    notes.txt: expected an HDF5 file, a .keras zip or a JSON model config, ...
    """

    def __init__(self, message: str, *, file: str | None = None, layer: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.layer = layer

    def __str__(self) -> str:
        from .sanitize import one_line

        parts = [p for p in (self.file, self.layer) if p]
        return one_line(": ".join(parts + [self.message]))

    def at(self, *, file: str | None = None, layer: str | None = None) -> "GateportError":
        """Fill in the file / layer if not known yet; returns self for ``raise e.at(...)``."""
        self.file = self.file or file
        self.layer = self.layer or layer
        return self


class FormatError(GateportError):
    """The file is not what it should be: not a model, truncated, foreign, inconsistent.

    >>> converters.read("/dev/null")  # raises FormatError: /dev/null: expected a model file, found a device
    """


class GraphError(FormatError):
    """The model's graph contradicts itself: a reference to a layer, call or tensor that is not there or not an
    index, a cycle, one layer name given twice. Keras loads no such file, so no part of it is read: a target of
    recurrent layers only does not fall back to them as it does past a layer gateport cannot read."""


class ModelNotFoundError(FormatError, FileNotFoundError):
    """The model file does not exist: caught by ``except FileNotFoundError`` and ``except FormatError``.

    >>> import converters
    >>> try:
    ...     converters.read("missing.h5")
    ... except FileNotFoundError as e:
    ...     print(e)
    missing.h5: no such file
    """

    def __init__(self, message: str = "no such file", *, file: str | None = None, layer: str | None = None):
        FormatError.__init__(self, message, file=file, layer=layer)
        self.errno, self.strerror, self.filename = errno.ENOENT, message, file


class UnsupportedError(GateportError):
    """A valid model uses a layer, option or feature gateport cannot convert exactly.

    >>> converters.read("lambda_model.h5")  # raises UnsupportedError naming the Lambda layer
    """


class UnsafeError(GateportError):
    """The file asks for something gateport refuses to do: run code, escape its folder, explode.

    >>> converters.read("bomb.keras")  # raises UnsafeError: declares more bytes than it holds
    """


class OutputError(GateportError):
    """An output cannot be written (exists without --force, folder not writable).

    >>> converters.convert("model.h5", "onnx", "exists.onnx")  # raises OutputError unless force=True
    """


class UsageError(GateportError):
    """The command line or API call itself is wrong (bad option value, missing argument).

    >>> converters.convert("model.h5", "tflite", "m.tflite")  # raises UsageError: unknown target
    """


class LayoutError(FormatError, ValueError):
    """Arrays or tensors that do not fit their layer: a packed array that is not a whole number of gates,
    a wrong count of initial states. Also a ValueError, as numpy's shape errors are."""


class InputsError(UsageError, ValueError):
    """The inputs given to run a model do not match its inputs (count, names). Also a ValueError."""


class MismatchError(GateportError, ValueError):
    """A user's module does not match the Keras model (``load_into``: names both sides and both shapes)."""


class MissingDependencyError(GateportError):
    """An optional runtime is not installed; the message names the extra to install."""


class GateportWarning(UserWarning):
    """Something a user should know that does not stop the conversion (e.g. NaN weights)."""


def require(module: str, extra: str):
    """Import an optional dependency lazily, or say which extra provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{module} is not installed: pip install 'gateport[{extra}]' ({e})"
        ) from None


def check_tolerances(atol: object, rtol: object) -> None:
    """``atol`` / ``rtol`` as finite numbers >= 0, else a UsageError (verify, diff): a NaN or negative
    tolerance makes every comparison fail (identical models reported different), an infinite one makes
    every comparison pass (any artifact 'proven')."""
    import math
    import numbers

    for name, value in (("--atol", atol), ("--rtol", rtol)):
        if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
                or value < 0):
            raise UsageError(f"expected {name} a finite number >= 0, found {value!r}")


def check_flag(name: str, value: object) -> bool:
    """``value`` as a bool, else a UsageError: ``force="no"`` (a non-empty string, so true) overwrote the
    user's file."""
    if not isinstance(value, bool):
        raise UsageError(f"expected {name} True or False, found {type(value).__name__} {value!r:.60}")
    return value


def check_path(what: str, value: object) -> str:
    """``value``, a ``str`` or an ``os.PathLike`` giving one, as a plain ``str``; else a UsageError naming ``what``
    (``"a model file path"``): bytes, a number, a model object where a path is due, a PathLike whose
    ``__fspath__`` raises or gives bytes, a NUL character (each failed as a TypeError, ValueError or the object's
    own exception from deep inside a reader), a ``str`` subclass whose ``__str__`` raises (the copy is plain)."""
    if not isinstance(value, (str, os.PathLike)):
        raise UsageError(f"expected {what} (str or os.PathLike), found {type(value).__name__}")
    try:
        text = os.fspath(value)
    except Exception as e:  # the caller's object: its own exception, whatever it is
        raise UsageError(f"expected {what} (str or os.PathLike), found a {type(value).__name__} whose __fspath__ "
                         f"raised {type(e).__name__}") from None
    if not isinstance(text, str):
        raise UsageError(f"expected {what} (str or os.PathLike), found {type(value).__name__} giving "
                         f"{type(text).__name__}")
    if "\x00" in text:
        raise UsageError(f"expected {what}, found one holding a NUL character: {quote(str.__str__(text))}")
    return str.__str__(text)


def _shown(value: object) -> str:
    """A caller's value for a message: text, bytes and numbers quoted (:func:`converters.sanitize.quote`, cut to 60
    characters), any other object by its type alone (its own ``__repr__`` may raise or print anything)."""
    if type(value) in (str, bytes, int, float, bool) or value is None:
        return quote(value, 60)
    return "object"


def check_names(name: str, value: object) -> list[str] | None:
    """``value`` as a list of strings (or None), else a UsageError: a string is not a list of names (``"ab"``
    would name two inputs ``a`` and ``b``), nor is a number a name."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise UsageError(f"expected {name} a list of names, found {type(value).__name__} {_shown(value)}")
    names = list(value)  # type: ignore[call-overload]
    wrong = [n for n in names if not isinstance(n, str)]
    if wrong:
        raise UsageError(f"expected {name} a list of names (strings), found {type(wrong[0]).__name__} "
                         f"{_shown(wrong[0])}")
    return names
