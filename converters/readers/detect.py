"""What a file is, from its first bytes and (for HDF5) its top-level layout; for Keras never its extension.

A ``.keras`` file may really be HDF5 (tf.keras 2.x ``model.save("x.keras")`` with
``save_format="h5"``), so only the bytes count: HDF5 signature ``\\x89HDF\\r\\n\\x1a\\n`` (at
offset 0 or a 512-byte-multiple user block), zip ``PK\\x03\\x04``, or JSON text.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import h5py

from ..errors import FormatError, ModelNotFoundError, UnsupportedError
from .hdf5 import attr_str

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
_USERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096)
_HEAD_BYTES = 4096 + 8


def file_kind(path: str | os.PathLike, head: bytes | None = None) -> str:
    """What a file is, from its first bytes (the one sniffer): ``gates``, ``torch``, ``onnx`` (by bytes
    and suffix), or for Keras ``hdf5``, ``zip``, ``json``, and ``unknown`` for anything else."""
    path = Path(path)
    head = _head(path) if head is None else head
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: 8-byte header length, then JSON
        from .. import ir_file, safetensors_io

        _, metadata = safetensors_io.load_metadata(path)
        return "gates" if ir_file.METADATA_KEY in metadata else "torch"
    if head.startswith(ZIP_SIGNATURE):  # a .keras archive, or a zip-format torch.save
        import zipfile

        try:
            names = zipfile.ZipFile(path).namelist()
        except (zipfile.BadZipFile, ValueError):  # ValueError: a member name that is not its UTF-8
            return "zip"  # the Keras reader says what is wrong with it
        # a zip named .pt / .pth is meant as a torch.save: its reader says what it lacks (an .npz so named was
        # 'expected config.json in the .keras archive', red team round 7)
        torch_named = path.suffix.lower() in (".pt", ".pth")
        return "torch" if torch_named or any(n.endswith("/data.pkl") for n in names) else "zip"
    if head[:1] == b"\x08" and path.suffix.lower() == ".onnx":  # ModelProto field 1, ir_version
        return "onnx"
    if head[:1] == b"\x80" and path.suffix.lower() in (".pt", ".pth", ".bin"):  # legacy torch.save
        return "torch"
    return _container(head) or "unknown"


def source_kind(path: str | Path) -> str:
    """What a model file is, from its bytes: ``gates``, ``torch``, ``onnx`` or ``keras``."""
    with open(path, "rb") as f:  # an unreadable file raises OSError, as it always did here
        head = f.read(_HEAD_BYTES)
    kind = file_kind(path, head)
    return kind if kind in ("gates", "torch", "onnx") else "keras"


def sniff(path: str | Path) -> str:
    """A Keras file's container: ``"hdf5"``, ``"zip"`` or ``"json"``; FormatError for anything else."""
    path = Path(path)
    head = _head(path)
    kind = _container(head)
    if kind:
        return kind
    if tf_checkpoint(path):
        raise UnsupportedError(TF_CHECKPOINT, file=str(path))
    if path.suffix.lower() == ".safetensors":  # named as one: say what one is (the Rust reader is as strict)
        raise FormatError("expected a safetensors file: an 8-byte little-endian header length, then the JSON header "
                          f"starting with '{{', found bytes {head[:9]!r}", file=str(path))
    onnx = " (an ONNX model reads with the .onnx suffix)" if head[:1] == b"\x08" else ""
    raise FormatError(f"expected an HDF5 file, a .keras zip or a JSON model config (or a PyTorch .pt/.pth/"
                      f".safetensors, an .onnx, a gateport .gates file), found bytes {head[:8]!r}{onnx}", file=str(path))


#: What a TensorFlow checkpoint is, and the way out: tf-keras' ``save_weights(PREFIX)`` without a ``.h5`` suffix
#: writes ``PREFIX.index`` and ``PREFIX.data-00000-of-00001`` (tf_keras/src/engine/training.py, save_weights:
#: ``save_format`` is "tf" unless the name ends in .h5/.keras), the tutorials' ``./checkpoints/my_checkpoint``.
TF_CHECKPOINT = ("expected a Keras model or weights file, found a TensorFlow checkpoint (PREFIX.index, "
                 "PREFIX.data-*: save_weights without .h5), which gateport does not read: load it with "
                 "model.load_weights(PREFIX) and save model.save('model.keras') or model.save_weights('model.weights.h5'), "
                 "then convert that file")

_CHECKPOINT_DATA = re.compile(r"\.data-\d{5}-of-\d{5}$")


def tf_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a TensorFlow checkpoint by its names: a ``PREFIX.index`` or ``PREFIX.data-NNNNN-of-NNNNN``
    file, a missing PREFIX beside its ``.index``, or a folder of them with the ``checkpoint`` file tf writes."""
    p = Path(path)
    try:
        if p.suffix == ".index" or _CHECKPOINT_DATA.search(p.name):
            return p.is_file()
        if p.is_dir():
            return (p / "checkpoint").is_file() and any(c.suffix == ".index" for c in p.iterdir())
        return not p.exists() and p.with_name(p.name + ".index").is_file()
    except (OSError, ValueError):  # a name too long, a NUL: check_regular says so
        return False


def _container(head: bytes) -> str | None:
    """``"hdf5"``, ``"zip"`` or ``"json"`` from a file's first bytes; None for none of them."""
    if any(head[o:o + 8] == HDF5_SIGNATURE for o in _USERBLOCK_OFFSETS):
        return "hdf5"
    if head.startswith(ZIP_SIGNATURE):
        return "zip"
    return "json" if head.lstrip()[:1] in (b"{", b"[") else None


def _head(path: Path) -> bytes:
    """The first bytes of ``path`` (enough for every signature); FormatError when it cannot be read or is
    not a regular file (:func:`check_regular`; opened without blocking, so a FIFO swapped in cannot hang it)."""
    check_regular(path, "a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise FormatError(f"cannot read the file ({e.strerror})", file=str(path)) from None
    with open(fd, "rb") as f:
        check_regular(path, "a regular file", os.fstat(fd).st_mode)
        try:
            return f.read(_HEAD_BYTES)
        except OSError as e:
            raise FormatError(f"cannot read the file ({e.strerror})", file=str(path)) from None


def check_regular(path: str | os.PathLike, expected: str = "a model file", mode: int | None = None) -> None:
    """Refuse, in one line, a path that is not a regular file: missing, a folder, a FIFO (opening one
    blocks until a writer comes), a device (``/dev/zero`` never ends), a socket. Every file an input
    names is checked so before it is opened: the model, ``--config``, ``--inputs`` / ``--expected``."""
    import stat

    file = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    if mode is None:
        try:
            mode = os.stat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise ModelNotFoundError(file=file) from None
        except OSError as e:
            raise FormatError(f"cannot read: {e.strerror}", file=file) from None
        except ValueError:  # an embedded NUL
            raise FormatError("expected a file name, found one holding a NUL character", file=file) from None
    if stat.S_ISREG(mode):
        return
    found = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device" \
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    raise FormatError(f"expected {expected}, found {found}", file=file)


def hdf5_layout(f: h5py.File) -> str:
    """``"full"`` (model_config + weights), ``"legacy_weights"`` (save_weights .h5, one group per
    layer listed in ``layer_names``) or ``"v3_weights"`` (Keras 3 ``.weights.h5``: ``layers/..``)."""
    if attr_str(f.attrs, "model_config"):
        return "full"
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:  # a long list is stored in chunks (hdf5.attr_list)
        return "legacy_weights"
    keys = {k.replace("\\", "/").split("/")[0] for k in f.keys()}
    if keys & {"layers", "vars", "_layer_checkpoint_dependencies"}:
        return "v3_weights"
    if "model_weights" in f:
        raise FormatError("the HDF5 file has model_weights but no model_config: pass the "
                          "architecture as config", file=f.filename)
    raise FormatError(f"expected a Keras model or weights HDF5 file, found top-level keys "
                      f"{sorted(f.keys())[:8]}", file=f.filename)
