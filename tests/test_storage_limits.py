"""Storage tricks in Keras files are refused in one line, fast and in little memory, before the
data is read: HDF5 external storage (a FIFO, /dev/zero) and virtual datasets, never-written or
absurdly declared datasets, zip bombs nested in model.weights.npz, hostile .npy headers.

Every hostile file is built here from a real fixture. The bombs run in a child process with a
time limit (a regression must not hang or exhaust the test machine) that reports its peak memory.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from converters import budget
from converters.cli import main
from converters.errors import FormatError, UnsafeError
from converters.readers import bounded_zip
from converters.readers.hdf5 import read_array, read_dataset

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
K3 = MODELS / "k3_masking_lstm.keras"  # model.weights.h5 read from bytes
H5 = MODELS / "lstm_dense_activation.h5"  # full legacy model
LEGACY_WEIGHTS = MODELS / "weights_only_gru_lstm_weights.h5"
LEGACY_WEIGHTS_JSON = MODELS / "weights_only_gru_lstm.json"
V3_WEIGHTS = MODELS / "k3_weights_only_lstm_hard_sigmoid.weights.h5"
V3_WEIGHTS_JSON = MODELS / "k3_weights_only_lstm_hard_sigmoid.json"
MAX_RSS = 1 << 30
MAX_SECONDS = 20


# -- building hostile files from the fixtures -----------------------------------------------------
def keras_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_keras(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def first_dataset(f: h5py.File, part: str) -> str:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and part in n else None)
    return names[0]


def edited(src: Path, dst: Path, edit) -> Path:
    """``src`` (.h5, or .keras: its model.weights.h5) copied to ``dst`` and changed by ``edit(f)``."""
    h5_path = dst.with_name(dst.name + ".tmp.h5") if src.suffix == ".keras" else dst
    if src.suffix == ".keras":
        h5_path.write_bytes(keras_members(src)["model.weights.h5"])
    else:
        shutil.copy(src, dst)
    with h5py.File(h5_path, "r+") as f:
        edit(f)
    if src.suffix == ".keras":
        members = keras_members(src)
        members["model.weights.h5"] = h5_path.read_bytes()
        h5_path.unlink()
        write_keras(dst, members)
    return dst


def replaced(src: Path, dst: Path, part: str, make) -> Path:
    """``src`` with its first dataset whose path holds ``part`` replaced by ``make(f, name, shape)``."""
    def edit(f):
        name = first_dataset(f, part)
        shape = f[name].shape
        del f[name]
        make(f, name, shape)
    return edited(src, dst, edit)


def looped(src: Path, dst: Path, group: str) -> Path:
    """``src`` with two hard links from ``group`` back to itself (a cycle, not a tree)."""
    def edit(f):
        f[f"{group}/again"] = f[group]
        f[f"{group}/and_again"] = f[group]
    return edited(src, dst, edit)


def linked_away(src: Path, dst: Path, group: str, target: str | Path | None) -> Path:
    """``src`` with ``group`` replaced by a link: to a copy in the file ``target`` (an external
    link), or with ``target`` None to a copy elsewhere in the file (a soft link)."""
    def edit(f):
        if target is None:
            f.move(group, group + "_moved")
            f[group] = h5py.SoftLink("/" + group + "_moved")
            return
        if not Path(target).exists():
            with h5py.File(target, "w") as other:
                f.copy(f[group], other, "copy")
        del f[group]
        f[group] = h5py.ExternalLink(str(target), "copy")
    return edited(src, dst, edit)


def external(target):
    def make(f, name, shape):
        f.create_dataset(name, shape=shape, dtype="f4", external=[(str(target), 0, h5py.h5f.UNLIMITED)])
    return make


def virtual(f, name, shape):
    layout = h5py.VirtualLayout(shape=shape, dtype="f4")
    layout[...] = h5py.VirtualSource("/dev/zero", "x", shape=shape)
    f.create_virtual_dataset(name, layout, fillvalue=0)


def never_written(shape, chunks):
    def make(f, name, _):
        f.create_dataset(name, shape=shape, dtype="f4", chunks=chunks)
    return make


def strings(f, name, shape):
    f.create_dataset(name, data=np.array(["x"] * int(np.prod(shape)), dtype=object).reshape(shape),
                     dtype=h5py.string_dtype())


def npy(header: str, data: bytes = b"") -> bytes:
    """A .npy file with a hand-written header dict."""
    text = header.encode("latin1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def f4_header(shape: str) -> str:
    return f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"


def keras_npz(dst: Path, npz: bytes) -> Path:
    """K3's config and metadata with ``model.weights.npz`` = ``npz`` in place of its HDF5 weights."""
    members = keras_members(K3)
    del members["model.weights.h5"]
    members["model.weights.npz"] = npz
    return write_keras(dst, members)


def npz_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def npz_bomb(size: int) -> bytes:
    """An npz whose one .npy member is a valid header then ``size`` zero bytes, deflated as streamed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("layers/lstm/cell/vars/0.npy", "w", force_zip64=True) as f:
            f.write(npy(f4_header(f"({size // 4},)")))
            block = bytes(1 << 22)
            for _ in range(size // len(block)):
                f.write(block)
    return buf.getvalue()


def lying_npz() -> bytes:
    """An npz whose central directory says its 1 MiB member unpacks to 128 bytes."""
    data = bytearray(npz_of({"layers/lstm/cell/vars/0.npy": npy(f4_header("(262144,)"), bytes(1 << 20))}))
    i = data.find(b"PK\x01\x02")
    data[i + 24:i + 28] = (128).to_bytes(4, "little")
    return bytes(data)


def patched_keras(dst: Path, offset: int, value: int, central: bool = True, local: int | None = None) -> Path:
    """K3 with a 2-byte field of every central directory record (at ``offset``) set to ``value``,
    and of every local header (at ``local``) too."""
    data = bytearray(write_keras(dst, keras_members(K3)).read_bytes())
    for signature, at in ((b"PK\x01\x02", offset if central else None), (b"PK\x03\x04", local)):
        i = 0
        while at is not None and (i := data.find(signature, i)) != -1:
            data[i + at:i + at + 2] = value.to_bytes(2, "little")
            i += 4
    dst.write_bytes(bytes(data))
    return dst


def non_utf8_names(dst: Path) -> Path:
    """Member names flagged UTF-8 that are not (the first byte of each name is 0xff)."""
    patched_keras(dst, 8, 0x800)
    data = bytearray(dst.read_bytes())
    i = 0
    while (i := data.find(b"PK\x01\x02", i)) != -1:
        data[i + 46] = 0xFF
        i += 4
    dst.write_bytes(bytes(data))
    return dst


def v3_weights(make, part="cell/vars/0"):
    return lambda d: (replaced(V3_WEIGHTS, d / "w.weights.h5", part, make), ["--config", V3_WEIGHTS_JSON])


def legacy_weights(make, part="lstm_cell/kernel"):
    return lambda d: (replaced(LEGACY_WEIGHTS, d / "w_weights.h5", part, make), ["--config", LEGACY_WEIGHTS_JSON])


#: name -> (build(folder) -> (path, extra arguments), a word the one-line error holds)
CASES = {
    # every reader path: .keras (weights from bytes), full .h5, weights-only legacy and Keras 3
    "keras external file": (lambda d: (replaced(K3, d / "m.keras", "vars/0", external(ROOT / "README.md")), []),
                            "external storage"),
    "keras virtual": (lambda d: (replaced(K3, d / "m.keras", "vars/0", virtual), []), "virtual"),
    "keras never written": (lambda d: (replaced(K3, d / "m.keras", "vars/0", never_written((300, 300), (10, 10))),
                                       []), "never written"),
    "keras strings": (lambda d: (replaced(K3, d / "m.keras", "vars/0", strings), []), "expected numbers"),
    "h5 external file": (lambda d: (replaced(H5, d / "m.h5", "lstm_cell/kernel", external(ROOT / "README.md")), []),
                         "external storage"),
    "h5 virtual": (lambda d: (replaced(H5, d / "m.h5", "lstm_cell/kernel", virtual), []), "virtual"),
    "h5 never written": (lambda d: (replaced(H5, d / "m.h5", "lstm_cell/kernel",
                                             never_written((300, 300), (10, 10))), []), "never written"),
    "h5 strings": (lambda d: (replaced(H5, d / "m.h5", "lstm_cell/kernel", strings), []), "expected numbers"),
    "legacy weights virtual": (legacy_weights(virtual), "virtual"),
    "h5 external link halfway": (lambda d: (linked_away(H5, d / "m.h5", "model_weights/lstm/lstm", d / "o.h5"), []),
                                 "link to another file"),
    "h5 soft link halfway": (lambda d: (linked_away(H5, d / "m.h5", "model_weights/lstm/lstm", None), []),
                             "soft link"),
    "legacy weights soft link halfway": (lambda d: (linked_away(LEGACY_WEIGHTS, d / "w_weights.h5", "lstm/lstm", None),
                                                    ["--config", LEGACY_WEIGHTS_JSON]), "soft link"),
    "legacy weights never written": (legacy_weights(never_written((300, 300), (10, 10))), "never written"),
    "v3 weights external file": (v3_weights(external(ROOT / "README.md")), "external storage"),
    "v3 weights never written": (v3_weights(never_written((300, 300), (10, 10))), "never written"),
    "keras groups linked in a loop": (lambda d: (looped(K3, d / "loop.keras", "layers"), []), "tree"),
    "v3 weights groups linked in a loop": (lambda d: (looped(V3_WEIGHTS, d / "loop.weights.h5", "layers/lstm"),
                                                      ["--config", V3_WEIGHTS_JSON]), "tree"),
    # npz stores and their .npy headers
    "npy declaring 4 GiB": (lambda d: (keras_npz(d / "m.keras", npz_of({"layers/lstm/cell/vars/0.npy": npy(
        f4_header("(1024, 1024, 1024)"))})), []), "declares"),
    **{f"npy shape {shape}": (lambda d, s=shape: (keras_npz(d / "m.keras", npz_of({"a.npy": npy(f4_header(s))})),
                                                   []), word)
       for shape, word in [("(-1, 3)", "non-negative"), ("(8.5, 2)", "shape"), ("(True, 3)", "non-negative"),
                           ("(1000000000000000000000000000000,)", "at most"), ("(1e400,)", "shape"),
                           ("('3',)", "shape"), ("3", "shape")]},
    "npy object dtype": (lambda d: (keras_npz(d / "m.keras", npz_of({"a.npy": npy(
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N.")})), []), "pickle"),
    "npy structured dtype": (lambda d: (keras_npz(d / "m.keras", npz_of({"a.npy": npy(
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", bytes(4))})), []), "numeric"),
    "npy truncated": (lambda d: (keras_npz(d / "m.keras", npz_of({"a.npy": npy(f4_header("(100,)"), bytes(7))})),
                                 []), "declares 400 bytes"),
    "npy cut in its header": (lambda d: (keras_npz(d / "m.keras", npz_of({"a.npy": npy(f4_header("(3,)"))[:20]})),
                                         []), "npy header"),
    "npy version 3": (lambda d: (keras_npz(d / "m.keras", npz_of({"a.npy": b"\x93NUMPY\x03\x00" + bytes(60)})),
                                 []), "version"),
    "npz with a non-array member": (lambda d: (keras_npz(d / "m.keras", npz_of({"a.txt": b"x"})), []), ".npy"),
    "npz that is not a zip": (lambda d: (keras_npz(d / "m.keras", b"PK\x03\x04" + bytes(100)), []), "readable"),
    # the .keras zip itself
    "zip member names not in their UTF-8": (lambda d: (non_utf8_names(d / "m.keras"), []), "readable"),
    "zip compression method unknown": (lambda d: (patched_keras(d / "m.keras", 10, 99, local=8), []), "compression"),
    "zip members encrypted": (lambda d: (patched_keras(d / "m.keras", 8, 1, local=6), []), "encrypted"),
    "npz member lying about its size": (lambda d: (keras_npz(d / "m.keras", lying_npz()), []), "malformed"),
}

def compressed_huge(shape, chunks):
    """A gzip-chunked dataset of ``shape`` with only its first chunk written."""
    def make(f, name, _):
        f.create_dataset(name, shape=shape, dtype="f4", chunks=chunks, compression="gzip")[:1, :1] = 1
    return make


#: The bombs, as CASES: run in a child process, with a time limit, measuring its peak memory.
BOMBS = {
    "npz holding a 1 GiB deflated npy": (lambda d: (keras_npz(d / "bomb.keras", npz_bomb(1 << 30)), []),
                                         "'model.weights.npz:layers/lstm/cell/vars/0.npy' declares"),
    "keras never-written chunked 31623x31623 kernel": (lambda d: (
        replaced(K3, d / "chunked.keras", "vars/0", never_written((31623, 31623), (1024, 1024))), []),
        "never written"),
    "h5 never-written chunked 31623x31623 kernel": (lambda d: (
        replaced(H5, d / "chunked.h5", "lstm_cell/kernel", never_written((31623, 31623), (1024, 1024))), []),
        "never written"),
    "keras compressed 1e12 elements": (lambda d: (
        replaced(K3, d / "e12.keras", "vars/0", compressed_huge((10 ** 6, 10 ** 6), (64, 64))), []), "budget"),
    "h5 compressed 1e12 elements": (lambda d: (
        replaced(H5, d / "e12.h5", "lstm_cell/kernel", compressed_huge((10 ** 6, 10 ** 6), (64, 64))), []),
        "budget"),
    "keras external FIFO": (lambda d: (replaced(K3, d / "fifo.keras", "vars/0", external(d / "fifo")), []),
                            "external storage"),
    "keras external /dev/zero": (lambda d: (replaced(K3, d / "zero.keras", "vars/0", external("/dev/zero")), []),
                                 "external storage"),
    "h5 external FIFO": (lambda d: (replaced(H5, d / "fifo.h5", "lstm_cell/kernel", external(d / "fifo")), []),
                         "external storage"),
    "h5 external link to a FIFO": (lambda d: (linked_away(H5, d / "elink.h5", "model_weights/lstm/lstm", d / "fifo"),
                                              []), "link to another file"),
    "legacy weights external FIFO": (lambda d: legacy_weights(external(d / "fifo"))(d), "external storage"),
    "v3 weights external /dev/zero": (v3_weights(external("/dev/zero")), "external storage"),
}


def commands(path: Path, extra: list, out: Path) -> list[list[str]]:
    """inspect, a full conversion, and the recurrent-only reader (read_recurrent_weights; for a
    weights-only file without config the layers are inferred from the stored arrays)."""
    extra = [str(e) for e in extra]
    return [["inspect", str(path), *extra],
            ["convert", str(path), "--to", "onnx", "-o", str(out / "m.onnx"), *extra],
            ["convert", str(path), "--to", "torch-state-dict", "-o", str(out / "m.safetensors")]]


def assert_one_line(code: int, err: str, path: Path, seconds: float, word: str | None = None) -> None:
    assert code == 2, err
    assert err.startswith("gateport: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and str(path) in err, err
    assert word is None or word in err, err
    assert seconds < MAX_SECONDS, seconds


# -- every hostile file: one line, exit 2 -------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_in_one_line(case, tmp_path, capsys):
    build, word = CASES[case]
    path, extra = build(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    for i, argv in enumerate(commands(path, extra, out)):
        start = time.monotonic()
        code = main(argv)
        # without --config a weights-only file is refused for that: only a success would be wrong
        shown = word if i < 2 or not extra else None
        assert_one_line(code, capsys.readouterr().err, path, time.monotonic() - start, shown)
    assert not list(out.iterdir())


BOMB_RUNNER = """
import json, resource, sys, time
from converters.cli import main
start = time.monotonic()
sys.stderr = open(sys.argv[1], "w")
code = main(sys.argv[2:])
sys.stderr.close()
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child started from a large pytest process reports
# pytest's peak; VmHWM is this program's own high-water mark
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "err": open(sys.argv[1]).read(), "seconds": time.monotonic() - start,
                  "peak": hwm * 1024,
                  "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def test_bombs_are_refused_fast_in_little_memory(tmp_path):
    """Each bomb through every command, each in its own child process: exit 2 and one line each, no
    hang on the FIFO (the child is killed at the time limit), peak memory below 1 GB per command."""
    os.mkfifo(tmp_path / "fifo")
    for name, (build, word) in BOMBS.items():
        path, extra = build(tmp_path)
        out = tmp_path / f"out_{abs(hash(name))}"
        out.mkdir()
        for i, argv in enumerate(commands(path, extra, out)):
            child = subprocess.run([sys.executable, "-c", BOMB_RUNNER, str(tmp_path / "err.txt"), *argv],
                                   cwd=ROOT, capture_output=True, text=True, timeout=60,
                                   env={**os.environ, "KERAS_BACKEND": "torch"})
            assert child.returncode == 0, child.stderr[-2000:]
            result = json.loads(child.stdout.splitlines()[-1])
            assert_one_line(result["code"], result["err"], path, result["seconds"], word if i < 2 or not extra else None)
            assert result["peak"] < MAX_RSS and result["children"] < MAX_RSS, (name, argv[0], result)


# -- the one place a dataset becomes an array -------------------------------------------------------
def test_read_dataset_checks_storage_before_reading(tmp_path):
    """Without the probe in front: external storage and a virtual dataset, a never-written
    dataset, a partially written uncompressed one (the FIFO case runs in the bomb test's child)."""
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("ext", shape=(4, 4), dtype="f4", external=[("/dev/zero", 0, h5py.h5f.UNLIMITED)])
        virtual(f, "virt", (4, 4))
        f.create_dataset("empty", shape=(300, 300), dtype="f4", chunks=(10, 10))
        f.create_dataset("half", shape=(300, 300), dtype="f4", chunks=(10, 10))[:10] = 1
        f.create_dataset("zipped", data=np.zeros((300, 300), "f4"), compression="gzip")
        f.create_dataset("ok", data=np.arange(6, dtype="f2").reshape(2, 3))
    with h5py.File(path, "r") as f:
        for name, error, word in [("ext", UnsafeError, "external"), ("virt", UnsafeError, "virtual"),
                                  ("empty", UnsafeError, "never written"), ("half", UnsafeError, "stores only")]:
            with pytest.raises(error, match=word) as e:
                read_dataset(f[name], budget.Budget(str(path)), str(path))
            assert str(path) in str(e.value) and name in str(e.value)
        assert read_dataset(f["zipped"], budget.Budget(str(path)), str(path)).shape == (300, 300)
        ok = read_dataset(f["ok"], budget.Budget(str(path)), str(path))
        assert ok.dtype == np.float32 and ok.tolist() == [[0, 1, 2], [3, 4, 5]]
        small = budget.Budget(str(path), limit=1000)
        with pytest.raises(UnsafeError, match="budget"):
            read_dataset(f["zipped"], small, str(path))


def test_every_path_component_must_be_a_hard_link(tmp_path):
    """Without the probe in front: a weight name whose middle component is an external link to
    another file is refused (the last component alone being a hard link is not enough)."""
    path = linked_away(H5, tmp_path / "m.h5", "model_weights/lstm/lstm", tmp_path / "o.h5")
    with h5py.File(path, "r") as f:
        with pytest.raises(UnsafeError, match="'/model_weights/lstm/lstm' is an HDF5 external link"):
            read_array(f["model_weights/lstm"], "lstm/lstm_cell/kernel:0", budget.Budget(str(path)), str(path))
        assert read_array(f["model_weights/dense"], "dense/./bias:0", budget.Budget(str(path)), str(path)).shape == (5,)


def test_read_dataset_budget_is_per_file(tmp_path):
    """Arrays taken together may not exceed the file's budget, even if each one fits."""
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        for i in range(3):
            f.create_dataset(str(i), data=np.zeros(100, "f4"))
    shared = budget.Budget(str(path), limit=1000)
    with h5py.File(path, "r") as f:
        read_dataset(f["0"], shared, str(path))
        read_dataset(f["1"], shared, str(path))
        with pytest.raises(UnsafeError, match="budget"):
            read_dataset(f["2"], shared, str(path))


def test_npy_parsed_without_numpy_load():
    """A valid npy (C and Fortran order) reads as np.save wrote it; the array views the member."""
    for order in ("C", "F"):
        array = np.asfortranarray(np.arange(12, dtype="<f4").reshape(3, 4)) if order == "F" \
            else np.arange(12, dtype="<f4").reshape(3, 4)
        buf = io.BytesIO()
        np.save(buf, array)
        buf.seek(0)
        got = bounded_zip.parse_npy(buf, "a.npy", "f.keras")
        assert got.flags.writeable and np.array_equal(got, array)


def test_archive_member_count_is_limited(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded_zip, "MAX_MEMBERS", 10)
    members = keras_members(K3)
    members.update({f"junk/{i}": b"" for i in range(10)})
    path = write_keras(tmp_path / "many.keras", members)
    with pytest.raises(UnsafeError, match="members") as e:
        bounded_zip.open_zip(path, str(path), ".keras zip")
    assert str(path) in str(e.value)
    npz = keras_npz(tmp_path / "npz.keras", npz_of({f"{i}.npy": npy(f4_header("(1,)"), bytes(4)) for i in range(11)}))
    assert main(["inspect", str(npz)]) == 2


def test_member_budget_counts_every_level(tmp_path):
    """The outer member and the npy members inside it are taken from one budget."""
    data = npz_of({"a.npy": npy(f4_header("(1000,)"), bytes(4000))})
    path = keras_npz(tmp_path / "m.keras", data)
    shared = budget.Budget(str(path), limit=len(data) + 4000)
    with zipfile.ZipFile(path) as z:
        member = bounded_zip.read_member(z, "model.weights.npz", shared, file=str(path))
    with pytest.raises(UnsafeError, match="budget"):
        bounded_zip.read_npz(member, shared, str(path))
    assert shared.used == len(data)


def test_nested_lying_size_is_a_format_error(tmp_path):
    path = keras_npz(tmp_path / "m.keras", lying_npz())
    with zipfile.ZipFile(path) as z:
        member = bounded_zip.read_member(z, "model.weights.npz", budget.Budget(str(path)), file=str(path))
    with pytest.raises(FormatError, match="CRC|header"):
        bounded_zip.read_npz(member, budget.Budget(str(path)), str(path))


def test_real_npz_store_reads_like_the_h5_store(tmp_path):
    """The same weights as model.weights.npz (one .npy per variable) give the same model."""
    from converters.readers import read

    with h5py.File(io.BytesIO(keras_members(K3)["model.weights.h5"])) as f:
        arrays = {}
        f.visititems(lambda n, o: arrays.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = keras_npz(tmp_path / "npz.keras", buf.getvalue())
    want, got = read(K3), read(path)
    for a, b in zip(want.nodes, got.nodes):
        assert a.weights.keys() == b.weights.keys()
        for k in a.weights:
            assert np.array_equal(a.weights[k], b.weights[k])


def test_explicit_budget_overrides_the_file_size_ratio(monkeypatch):
    monkeypatch.setattr(budget, "EXPLICIT", True)
    monkeypatch.setattr(budget, "MAX_BYTES", 5 << 30)
    assert budget.limit_for(10) == 5 << 30
    monkeypatch.setattr(budget, "EXPLICIT", False)
    assert budget.limit_for(10) == budget.FLOOR + 40


@pytest.mark.parametrize("dims,says", [([2, -1], "non-negative integer dimensions"), ([2, 8.5], "non-negative integer"),
                                       ([2, budget.MAX_BYTES + 1], f"dimensions of at most {budget.MAX_BYTES}")])
def test_a_shape_refusal_says_which_rule(dims, says):
    """A dimension past the byte ceiling is refused for its size, not called a negative or a non-integer."""
    with pytest.raises(UnsafeError, match=says):
        budget.shape(dims, "kernel")
