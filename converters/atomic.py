"""Atomic outputs: written whole to temporaries next to the target, then committed by rename.

- An output that exists is never replaced without ``force``. Without ``force`` the commit itself is a
  no-overwrite operation (``renameat2(RENAME_NOREPLACE)``, or ``link`` + ``unlink``), so of two
  conversions racing to one path exactly one succeeds and the other gets an "exists" error.
- With ``force`` an existing file or folder is swapped by one ``renameat2(RENAME_EXCHANGE)``; the old
  one is deleted once everything is in, or swapped back on failure (where the system lacks renameat2:
  old aside, new in, old back on failure).
- Several files of one output (``.weights.h5`` + ``.json``; ``.onnx`` + ``.onnx.data``; ``model.py`` +
  ``model.safetensors`` in a folder that holds other files of the user) are all written first, then
  committed one rename each, the main file last; if one rename fails the earlier ones are undone. The
  one window left: a crash (power loss, SIGKILL) between two of those renames.
- Commits in one folder are serialized by an advisory lock on the folder, so the check "exists?" and
  the rename are one step for every gateport process.
- Every failure (no space, permission, read-only, a pseudo file system, a missing folder) is one
  :class:`OutputError` naming the output, and no temporary is left behind.
- :func:`refuse_inputs` refuses an output that is, or is a folder holding, an input of the command.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .errors import OutputError, check_flag, check_path
from .sanitize import quote

_RENAME_NOREPLACE, _RENAME_EXCHANGE, _AT_FDCWD = 1, 2, -100
#: Most characters of the output's name a temporary's name repeats (names stop at 255 bytes)
_NAME_PART = 100
#: errnos by which renameat2 says "not on this system or file system": fall back to plain renames
_NO_RENAMEAT2 = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM}


def _load_renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a C library older than glibc 2.28
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2_fn = _load_renameat2()


# -- checks ---------------------------------------------------------------------------------------

def check_path_type(path: object) -> None:
    """An output path is a ``str`` or an ``os.PathLike`` of one (not None, bytes, a number, a file object)."""
    text = check_path("an output path", path)  # every os call on a NUL would raise ValueError ('embedded null byte')
    try:  # a name of bytes that are not UTF-8 (a str of surrogate escapes): safetensors, onnxruntime and the
        os.path.abspath(text).encode("utf-8")  # generated model.py's loader open paths as text and refuse it later
    except UnicodeEncodeError:
        raise OutputError(f"expected an output path that is UTF-8 text, found {quote(text)}") from None
    if text and not Path(os.path.abspath(text)).name:
        raise OutputError(f"expected an output path naming a file or folder, found {quote(text)} (the "
                          "root folder)")


def check_output(path: str | os.PathLike, force: bool = False, names: Sequence[str] | None = None) -> Path:
    """Refuse an output that cannot or must not be written, before any work; returns it as a Path.

    ``names``: the output is a folder and these are the entries gateport writes in it (an existing
    folder is fine; only these names count as "exists"). Without ``names`` the output is a file.
    """
    check_path_type(path)
    check_flag("force", force)
    if not os.fspath(path):
        raise OutputError("expected an output path, found an empty one")
    path = _normalize(Path(path))
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"folder {parent} does not exist" if not os.path.lexists(parent)
                          else f"{parent} is not a folder", file=str(path))
    if not os.access(parent, os.W_OK):
        raise OutputError(f"folder {parent} is not writable", file=str(path))
    _check_existing(path, force, names)
    return path


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """A file output: :func:`check_output` without ``names``."""
    return check_output(path, force)


def _normalize(path: Path) -> Path:
    """``path`` with its folder resolved, so that ``.``, ``..`` and ``dir/..`` name a real entry."""
    if path.name in ("", ".", ".."):
        return path.resolve()
    return path.parent.resolve() / path.name


def _check_existing(path: Path, force: bool, names: Sequence[str] | None) -> None:
    if not os.path.lexists(path):
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:  # a dangling symbolic link: replaceable like a file
        mode = None
    if names is not None:
        if mode is None or not stat.S_ISDIR(mode):
            raise OutputError(f"{path} exists and is not a folder")
        taken = [path / n for n in names if os.path.lexists(path / n)]
        if taken and not force:
            raise _exists(taken[0])
        for entry in taken:
            _check_existing(entry, True, None)
        return
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"{path} is a folder; expected a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(f"{path} is not a regular file (a device, pipe or socket); refusing to replace it")
    if not force:
        raise _exists(path)


def _exists(path: Path) -> OutputError:
    return OutputError(f"{path} exists; pass --force to overwrite it")


def refuse_inputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse an output that is an input, or a folder holding one: writing it would destroy the input.

    Files are compared by (device, inode), so a symbolic link, a hard link, ``..`` or another mount of
    the same file is caught; ``outputs`` that do not exist yet cannot be an input.
    """
    seen: dict[tuple[int, int], tuple[str, bool]] = {}
    for inp in inputs:
        if not isinstance(inp, (str, os.PathLike)) or not os.fspath(inp):
            continue
        real = Path(os.path.realpath(inp))
        for p in (real, *real.parents):
            with contextlib.suppress(OSError):
                st = os.stat(p)
                seen.setdefault((st.st_dev, st.st_ino), (os.fspath(inp), p == real))
    for out in outputs:
        try:
            st = os.stat(out)
        except (OSError, ValueError):
            continue
        hit = seen.get((st.st_dev, st.st_ino))
        if hit:
            inp, same = hit
            what = f"is the input {inp}" if same else f"is a folder holding the input {inp}"
            raise OutputError(f"output {out} {what}; refusing to overwrite it (choose another -o)")


# -- context managers the writers use ------------------------------------------------------------

@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary file next to ``path``; it becomes ``path`` if the block succeeds."""
    with atomic_paths([path], force) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike], force: bool = False) -> Iterator[list[Path]]:
    """Yield one temporary file per path (in one folder); after the block all are committed in order,
    or none: list the main file last."""
    targets = [check_output(p, force) for p in paths]
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(_temporary(t, t.parent, folder=False)) for t in targets]
        with _as_output_error(targets[-1]):
            yield tmps
            for tmp in tmps:
                os.chmod(tmp, _default_mode(0o666))  # mkstemp makes files owner-only
            with _locked(targets[-1].parent):
                for t in targets:
                    _check_existing(t, force, None)
                _commit(list(zip(tmps, targets)), force)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, names: Sequence[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder to write the entries ``names`` in; they become ``path``'s.

    A new folder, or one holding nothing but ``names`` (and ``__pycache__``), is swapped in whole by
    one rename. A folder holding other files of the user is not moved: the entries are committed
    inside it, all or none.
    """
    path = check_output(path, force, names)
    inside = _holds_others(path, names)
    with _temporary(path, path if inside else path.parent, folder=True) as tmp, _as_output_error(path):
        yield tmp
        with _locked(path.parent):
            _check_existing(path, force, names)
            if inside:
                _commit([(tmp / n, path / n) for n in names], force)
                return
            if _holds_others(path, names):
                raise OutputError(f"{path} changed during the conversion (other files appeared); run again")
            _copy_folder_mode(path, tmp)
            if not force and os.path.lexists(path):
                _remove_empty(path)  # our files take the place of an empty folder
            _commit([(tmp, path)], force)


def _holds_others(path: Path, names: Sequence[str]) -> bool:
    """Whether the existing folder ``path`` is the user's: a link, a mount point, the working folder
    (or above it), or a folder with other entries."""
    if not os.path.lexists(path):
        return False
    if path.is_symlink() or os.stat(path).st_dev != os.stat(path.parent).st_dev:
        return True
    here, real = os.path.realpath(os.getcwd()), os.path.realpath(path)
    if os.path.commonpath([here, real]) == real:  # swapping it would leave the shell in a deleted folder
        return True
    return bool(set(os.listdir(path)) - set(names) - {"__pycache__"})


# -- mechanisms -----------------------------------------------------------------------------------

@contextlib.contextmanager
def _temporary(target: Path, where: Path, folder: bool) -> Iterator[Path]:
    """A temporary file or folder in ``where`` named after ``target``; removed on exit if still there."""
    with _as_output_error(target, f"cannot create a temporary {'folder' if folder else 'file'} in {where}"):
        prefix = f".{target.name[:_NAME_PART]}."  # a 250-byte output name leaves no room for ours
        if folder:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=where))
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=where)
            os.close(fd)
            tmp = Path(name)
    try:
        yield tmp
    finally:
        _remove(tmp)


@contextlib.contextmanager
def _as_output_error(path: Path, doing: str = "cannot write") -> Iterator[None]:
    """Turn an OSError (no space, permission, read-only) into one OutputError naming ``path``."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"{doing}: {e.strerror or e}", file=str(path)) from None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an advisory lock on ``folder`` (released with the descriptor, also when killed); where
    the system or the folder allows no lock, commit unlocked (the no-overwrite renames still hold)."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (ImportError, OSError):
        fd = None
    try:
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _commit(pairs: list[tuple[Path, Path]], force: bool) -> None:
    """Rename each temporary onto its target, in order (replacing one only with ``force``); on
    failure undo the ones already done."""
    done: list[tuple[Path, Path | None]] = []  # (target, where its old content is now)
    try:
        for tmp, target in pairs:
            if force and os.path.lexists(target):
                done.append((target, _exchange(tmp, target)))
            else:
                _create(tmp, target)
                done.append((target, None))
    except BaseException:
        for target, old in reversed(done):
            with contextlib.suppress(OSError):
                if old is None:
                    _remove(target)
                else:
                    _remove(_exchange(old, target))
        raise
    for _, old in done:
        if old is not None:
            _remove(old)


def _remove_empty(folder: Path) -> None:
    """Remove ``folder`` if it holds nothing (but ``__pycache__``); "exists" if something appeared."""
    shutil.rmtree(folder / "__pycache__", ignore_errors=True)
    try:
        os.rmdir(folder)  # the kernel checks that it is empty, atomically
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise _exists(folder) from None
        raise


def _create(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target``, failing with "exists" if ``target`` appeared meanwhile."""
    try:
        if _renameat2(tmp, target, _RENAME_NOREPLACE):
            return
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists")
        if tmp.is_dir():
            os.rename(tmp, target)  # refuses a non-empty folder that appeared meanwhile
            return
        try:
            os.link(tmp, target)  # fails if target exists
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system (FAT, some network mounts)
            os.replace(tmp, target)
            return
        os.unlink(tmp)
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise _exists(target) from None
        raise


def _exchange(new: Path, target: Path) -> Path:
    """Put ``new`` at ``target`` in one step; returns where ``target``'s old content now is."""
    if _renameat2(new, target, _RENAME_EXCHANGE):
        return new
    old = _sibling(target, ".old")  # without renameat2: old aside, new in, old back if that fails
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2``; False where this system or file system lacks it (the caller falls back)."""
    if _renameat2_fn is None:
        return False
    if _renameat2_fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_RENAMEAT2:
        return False
    raise OSError(err, os.strerror(err), str(dst))


def _sibling(path: Path, suffix: str) -> Path:
    """An unused name next to ``path`` (the name only: nothing is created)."""
    return path.with_name(f".{path.name[:_NAME_PART]}.{os.urandom(6).hex()}{suffix}")


def _remove(path: Path) -> None:
    """Remove a file, link or folder tree if it is there; errors are ignored (best-effort cleanup)."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            path.unlink()


def _copy_folder_mode(old: Path, new: Path) -> None:
    """Give the folder that replaces ``old`` its permissions (and owner, where allowed)."""
    if not os.path.lexists(old):
        os.chmod(new, _default_mode(0o777))  # mkdtemp makes folders owner-only
        return
    st = os.stat(old)
    os.chmod(new, stat.S_IMODE(st.st_mode))
    if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
        with contextlib.suppress(OSError):
            os.chown(new, st.st_uid, st.st_gid)


def _read_umask() -> int:
    umask = os.umask(0o22)  # reading it means setting it: done once, at import, not while threads write
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _default_mode(mode: int) -> int:
    """``mode`` less the process umask: what ``open()`` would have given a new file."""
    return mode & ~_UMASK
