"""Hostile inputs, red team round 10: what rounds 1-9 (attacks.py, attacks_more.py, attacks_round3.py ...
attacks_round9.py) built thinly: HDF5 internals inside a .keras as well as a legacy .h5, zip members a reader of
its own may read otherwise than zipfile, ONNX tensors of every data type and attribute lists of 10**6 entries,
pickles that call what a state_dict never needs, tensors whose strides overrun, and outputs that collide.

Same :class:`attacks.Case` contract and runner as round 9 (:func:`attacks_round9.run_case9`: one line naming the
file, no traceback, no raw escape on stderr, nothing read outside the input's folder, bounded time and memory,
inputs unchanged, no output left behind on a refusal, exit 2 where a refusal is due, never 'a gateport bug', a
verify never reports a mismatch, ``--json`` refusals held to the one-line checks). ``python
tests/attacks_round10.py`` runs them through :func:`attack_run.run_battery`.

Classes: ``h5_10`` (the weight datasets of a legacy .h5 and of a .keras' model.weights.h5 stored as HDF5 floats
laid out otherwise than IEEE's: exponent below the mantissa, an exponent bias of 120, 16 bits laid out as bfloat16;
32-bit integers of 16 bits at bit offset 8; long double, big-endian float64, a compound, region references, vlen
floats, compact layout, a committed datatype, a dimension scale attached; chunks of 128 MiB and 16 MiB behind gzip,
lzf, szip; external storage; one dataset hard-linked under two names; 10**6-element attributes; ``weight_names`` of
10**5 names in Keras' chunks; a 512-byte user block holding a shell script; a float32 or float16 dataset tagged
``dtype='bfloat16'``), ``zip10`` (.keras members compressed with bzip2, lzma, AES (99); a bad CRC in a deflated
config.json; a self-extracting stub before the archive, junk after it; ``../config.json`` and ``/config.json`` beside
config.json; a name cut at a NUL; members of 0 bytes; a deflated model.weights.h5; a metadata.json of 1 GiB of
spaces; a ZIP64 extra field too short; an end record whose comment length lies; names only in upper case; two
central entries for one member), ``onnx10`` (external data through a symbolic link to a file outside the folder,
to /dev/zero or to a file inside it, a folder, a FIFO, the model file itself, offsets given as -1, 0x10, 1e3,
2**64, a location given twice; W of every ONNX data type (float16, bfloat16, double, float8, int4, uint4, float4,
complex, bool, uint64, 0, 999); raw_data one byte short or long; activations / activation_alpha lists of 10**6
entries, 10**5 unknown attributes, 10**4 empty inputs; sequence_lens constants of -1, 0 and 10**9; the LSTM inside
an If; two graph outputs of one name; a tensor external without entries, or with entries beside raw data; a bias
of strings), ``torch10`` (a zip torch.save whose pickle calls posix / os.system, builtins exec / getattr /
__import__, subprocess.Popen, torch.load, numpy's _reconstruct, Python 2's __builtin__.eval, STACK_GLOBAL; a tensor
rebuilt with strides past its storage, negative strides, a negative offset or one past the storage, overlapping
strides, a 2**62 stride, 60 dimensions, a storage numel past its bytes, a size of floats, backward hooks naming
os.system; a safetensors header of 2*10**5 empty tensors, offsets past 2**64), ``out10`` (``-o`` the input itself
or a symlink to it without ``--force``, ``--force -o`` a folder holding the user's files for every target, batches
whose outputs collide: one stem in two folders, m.h5 beside m.keras, M.h5 beside m.h5, an output that is an input,
directly and through a symlinked output folder). :func:`run_case10` adds one check to round 9's: no line advises
trusting the file.

``python tests/attacks_round10.py`` (2026-12-02, 2 shared cores, load 4-6, two groups in parallel): 257 attacks
(h5_10 86, onnx10 78, torch10 44, zip10 36, out10 13), 257 passed, peak memory 397 MiB. Before this round's fixes:
a .keras whose kernel is an HDF5 float with its exponent below the mantissa converted with exit 0 and verify found
every target off Keras: h5py reports such a type (and an exponent bias of its own, and 16-bit integers at a bit
offset in 32) as float32 / int32, and the reader viewed the file's bytes in place as that dtype (hdf5._mapped_view
now requires the file type to equal the dtype's, H5Tequal; other layouts are read through HDF5's conversion, and the
stored-bytes check counts the file type's size: a 2-byte float read as float32 was refused as storing half what it
declares); 10 pickles calling builtins.exec / eval / getattr, subprocess.Popen or torch.load were refused with
torch's advice 'Please use torch.serialization.add_safe_globals([subprocess.Popen]) ... to allowlist this global'
on the line (torch_state keeps the reason's first sentence). Cases first written as refusals and read as onnxruntime
reads them (onnx's checker and onnxruntime accept each): external data in the model file itself, two graph outputs
of one name, an activation_alpha of 10**6 floats beside activations that take none. Left as they are (refusals in
one line, or reads Keras refuses): a .keras behind a self-extracting stub (zipfile, and so Keras, read it; gateport
says it expected a .keras zip); a .keras whose dataset is hard-linked under two names ('expected a tree of
groups'; h5py follows both); a float32 / float16 dataset tagged ``dtype='bfloat16'`` is read as stored (Keras 3's
loader asks HDF5 for a conversion it has not and cannot load the file: verify says unproven).
"""
from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import shutil
import struct
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

from attacks import K3, MODELS, Case, read_keras, safetensors_bytes, write_keras
from attacks_round3 import SECRET_NAME, _case, _convert, _name_of, _onnx_base, build_groups
from attacks_round9 import _both as _pair, run_case9

ROOT = Path(__file__).resolve().parent.parent
TINY = MODELS / "tiny_lstm.h5"
_KERNEL = "model_weights/lstm/lstm/lstm_cell/kernel:0"
_K3_KERNEL = "layers/bidirectional/forward_layer/cell/vars/0"
_K3_BACK = "layers/bidirectional/backward_layer/cell/vars/0"

#: advice a refusal must not give about a stranger's file: to trust it (torch's own, around its refusals)
TRUSTING = ("add_safe_globals", "safe_globals(", "weights_only=False", "weights_only` set to `False",
            "allowlist this global")


def run_case10(case: Case, marker: Path, timeout: float) -> tuple[list[str], dict]:
    """Round 9's checks, and no line advising to trust the file (to allowlist the global its pickle calls)."""
    problems, measured = run_case9(case, marker, timeout)
    said = measured.get("stderr", "")
    problems += [f"advises trusting the file ({advice!r})" for advice in TRUSTING if advice in said]
    return problems, measured


def build(folder: Path, groups: tuple[str, ...] | None = None) -> list[Case]:
    """Every case (or those of the builders named in ``groups``)."""
    return build_groups(folder, (h5_cases, zip_cases, onnx_cases, torch_cases, out_cases), groups)


# -- HDF5 internals, in a legacy .h5 and in a .keras' model.weights.h5 -------------------------------------------
def _recreate(f: h5py.File, name: str, **create) -> np.ndarray:
    old = f[name][()]
    del f[name]
    if create:
        f.create_dataset(name, **create)
    return old


def _custom_float16(f: h5py.File, name: str) -> None:
    """The dataset as an HDF5 float of 2 bytes laid out as bfloat16 (8 exponent bits, 7 mantissa bits): no numpy
    type; h5py reads it as float16 (HDF5 converts it)."""
    old = _recreate(f, name).astype(np.float32)
    tid = h5py.h5t.IEEE_F32LE.copy()
    tid.set_fields(31, 23, 8, 16, 7)
    tid.set_offset(16)
    tid.set_precision(16)
    tid.set_offset(0)
    tid.set_fields(15, 7, 8, 0, 7)
    tid.set_size(2)
    tid.set_ebias(127)
    space = h5py.h5s.create_simple(old.shape)
    dsid = h5py.h5d.create(f.id, name.encode(), tid, space)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(old), mtype=h5py.h5t.NATIVE_FLOAT)


def _custom_float32(fields: tuple[int, int, int, int, int] | None, ebias: int | None):
    """The dataset as a 4-byte HDF5 float laid out otherwise than IEEE's (its fields moved, another exponent
    bias): h5py reads it as float32 or float64, HDF5 converting each value; its bytes are no IEEE float32."""
    def edit(f: h5py.File, name: str) -> None:
        old = _recreate(f, name).astype(np.float32)
        tid = h5py.h5t.IEEE_F32LE.copy()
        if fields:
            tid.set_fields(*fields)
        if ebias is not None:
            tid.set_ebias(ebias)
        dsid = h5py.h5d.create(f.id, name.encode(), tid, h5py.h5s.create_simple(old.shape))
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(old), mtype=h5py.h5t.NATIVE_FLOAT)
    return edit


def _int_bits(f: h5py.File, name: str) -> None:
    """The dataset as 32-bit integers of 16 significant bits at bit offset 8 (h5py reads int32, HDF5 shifting)."""
    old = np.round(_recreate(f, name) * 100).astype(np.int32)
    tid = h5py.h5t.STD_I32LE.copy()
    tid.set_precision(16)
    tid.set_offset(8)
    dsid = h5py.h5d.create(f.id, name.encode(), tid, h5py.h5s.create_simple(old.shape))
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(old), mtype=h5py.h5t.NATIVE_INT32)


def _h5_edits() -> dict[str, tuple]:
    """label -> (edit(f, name), expect, verify)."""
    def as_type(dtype, **extra):
        def edit(f, name):
            old = _recreate(f, name)
            f.create_dataset(name, data=old.astype(dtype), **extra)
        return edit

    def compound(f, name):
        old = _recreate(f, name)
        a = np.zeros(old.shape, dtype=[("x", "<f4")])
        a["x"] = old
        f.create_dataset(name, data=a)

    def region_refs(f, name):
        old = _recreate(f, name)
        ds = f.create_dataset(name, shape=old.shape, dtype=h5py.regionref_dtype)
        other = next(k for k in (_K3_BACK, "model_weights/lstm/lstm/lstm_cell/bias:0") if k in f)
        ds[0, 0] = f[other].regionref[0:1]

    def vlen(f, name):
        old = _recreate(f, name)
        ds = f.create_dataset(name, shape=old.shape[:1], dtype=h5py.vlen_dtype(np.float32))
        for i in range(old.shape[0]):
            ds[i] = old[i].reshape(-1)

    def chunk_bomb(rows, cols):
        def edit(f, name):
            old = _recreate(f, name)
            ds = f.create_dataset(name, shape=old.shape, dtype="<f4", maxshape=(None,) * old.ndim,
                                  chunks=(rows, cols)[-old.ndim:] if old.ndim <= 2 else None, compression="gzip")
            ds[...] = old
        return edit

    def external(f, name):
        old = _recreate(f, name)
        f.create_dataset(name, shape=old.shape, dtype="<f4", external=[("/etc/hostname", 0, old.nbytes)])

    def hard_twice(f, name):
        other = _K3_BACK if name == _K3_KERNEL else None
        if other is None:  # legacy: the recurrent kernel stands for the kernel's group too
            g = f[name].parent
            g["extra_link"] = f[name]
            return
        del f[other]
        f[other] = f[name]

    def big_attr(f, name):
        old = _recreate(f, name)  # a new object header (the file opened in HDF5's latest format): dense attributes
        f.create_dataset(name, data=old).attrs.create("junk", np.zeros(10 ** 6, "f8"))

    def many_weight_names(f, name):
        """10**5 names, in chunks weight_names0, weight_names1 ... as Keras stores a list past 64 KB."""
        g = f[name].parent
        while "weight_names" not in g.attrs and g.name != "/":
            g = g.parent
        del g.attrs["weight_names"]
        names = [f"w{i}".encode() for i in range(10 ** 5)]
        for k in range(0, len(names), 5000):
            g.attrs[f"weight_names{k // 5000}"] = np.array(names[k:k + 5000])

    def tag_bfloat16(dtype):
        def edit(f, name):
            old = _recreate(f, name)
            ds = f.create_dataset(name, data=old.astype(dtype))
            ds.attrs["dtype"] = "bfloat16"
        return edit

    def tag_bfloat16_bytes(f, name):
        old = _recreate(f, name)
        ds = f.create_dataset(name, data=old.astype("<f4"))
        ds.attrs["dtype"] = np.bytes_(b"bfloat16")

    def compact(f, name):
        old = _recreate(f, name).astype("<f4")
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        dsid = h5py.h5d.create(f.id, name.encode(), h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple(old.shape), dcpl=dcpl)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(old))

    def committed_type(f, name):
        old = _recreate(f, name).astype("<f4")
        f["/committed_f4"] = np.dtype("<f4")
        f.create_dataset(name, data=old, dtype=f["/committed_f4"])

    def dimension_scale(f, name):
        ds = f[name]
        scale = f.create_dataset("/scale_rows", data=np.arange(ds.shape[0], dtype="f4"))
        scale.make_scale("rows")
        ds.dims[0].attach_scale(scale)

    edits = {
        "compact layout (the data in the object header)": (compact, "any", True),
        "a committed datatype at the root": (committed_type, "any", True),
        "a dimension scale attached (object references in DIMENSION_LIST)": (dimension_scale, "any", True),
        "a custom 16-bit float (bfloat16 laid out as an HDF5 float)": (_custom_float16, "any", True),
        "a 4-byte float, exponent below the mantissa": (_custom_float32((31, 0, 8, 8, 23), None), "any", True),
        "a 4-byte float of exponent bias 120": (_custom_float32(None, 120), "any", True),
        "32-bit integers of 16 bits at bit offset 8": (_int_bits, "any", True),
        "long double": (as_type(np.longdouble), "any", True),
        "big-endian float64": (as_type(">f8"), "any", True),
        "a compound of one float": (compound, "refuse", False),
        "region references": (region_refs, "refuse", False),
        "vlen floats": (vlen, "refuse", False),
        "gzip chunks of 128 MiB": (chunk_bomb(8192, 4096), "refuse", False),
        "gzip chunks of 16 MiB": (chunk_bomb(2048, 2048), "any", True),
        "lzf": (as_type("<f4", compression="lzf", chunks=True), "any", True),
        "external storage on /etc/hostname": (external, "refuse", False),
        "one dataset hard-linked under two names": (hard_twice, "any", True),
        "an attribute of 10**6 float64": (big_attr, "any", False),
        "weight_names of 10**5 names": (many_weight_names, "refuse", False),
        "float32 tagged dtype='bfloat16'": (tag_bfloat16("<f4"), "any", True),
        "float16 tagged dtype='bfloat16'": (tag_bfloat16("<f2"), "any", True),
        "float32 tagged dtype=b'bfloat16' (bytes)": (tag_bfloat16_bytes, "any", True),
    }
    if h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP):
        edits["szip"] = (as_type("<f4", compression="szip", chunks=True), "any", True)
    return edits


def _legacy(folder: Path, i: int, edit) -> Path:
    src = folder / f"l{i}.h5"
    shutil.copy(TINY, src)
    with h5py.File(src, "r+", libver="latest") as f:
        edit(f, _KERNEL)
    return src


def _keras_weights(dst: Path, edit) -> Path:
    """K3 with its model.weights.h5 edited by ``edit`` (opened with HDF5's latest format: attributes past 64 KB)."""
    members = read_keras(K3)
    tmp = dst.with_suffix(".weights.tmp.h5")
    tmp.write_bytes(members["model.weights.h5"])
    with h5py.File(tmp, "r+", libver="latest") as f:
        edit(f)
    members["model.weights.h5"] = tmp.read_bytes()
    tmp.unlink()
    return write_keras(dst, members)


def h5_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "h5_10"
    for i, (label, (edit, expect, verify)) in enumerate(_h5_edits().items()):
        is_tag = "tagged" in label
        if not is_tag:  # the tag is read by Keras 3's loader only
            try:
                src = _legacy(folder, i, edit)
            except (ValueError, TypeError, OSError, RuntimeError) as e:
                print(f"skipped legacy {label}: {e}", file=sys.stderr)
            else:
                cases += _pair(K, f"legacy .h5 kernel {label}", src, folder, expect=expect, verify=verify)
        try:
            if "weight_names" in label:  # a legacy attribute: a .keras has none
                continue
            src = _keras_weights(folder / f"k{i}.keras", lambda f: edit(f, _K3_KERNEL))
        except (ValueError, TypeError, OSError, RuntimeError) as e:
            print(f"skipped .keras {label}: {e}", file=sys.stderr)
            continue
        cases += _pair(K, f".keras kernel {label}", src, folder, expect=expect, verify=verify)
    # a 512-byte user block before the HDF5 superblock (h5py opens it; Keras reads it)
    src = folder / "userblock.h5"
    with h5py.File(TINY, "r") as old, h5py.File(src, "w", userblock_size=512) as new:
        for k, v in old.attrs.items():
            new.attrs[k] = v
        for k in old:
            old.copy(old[k], new, k)
    with open(src, "r+b") as f:
        f.write(b"#!/bin/sh\necho pwned > MARKER\n".ljust(512, b"\x00"))
    cases += _pair(K, "a legacy .h5 behind a 512-byte user block", src, folder, expect="any")
    return cases


# -- zip containers (.keras) ----------------------------------------------------------------------------------
def _members() -> list[tuple[str, bytes]]:
    return list(read_keras(K3).items())


def _zip(path: Path, members, method=zipfile.ZIP_STORED, methods: dict | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.compress_type = (methods or {}).get(name, method)
            z.writestr(info, data)
    return path


def _central(raw: bytearray):
    pos = raw.find(b"PK\x01\x02")
    while pos != -1:
        n, e, c = struct.unpack("<HHH", raw[pos + 28:pos + 34])
        yield pos, bytes(raw[pos + 46:pos + 46 + n])
        pos = raw.find(b"PK\x01\x02", pos + 46 + n + e + c)


def zip_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "zip10"
    files: dict[str, tuple[Path, str, bool]] = {}
    m = _members()
    files["members compressed with bzip2"] = (_zip(folder / "bz2.keras", m, zipfile.ZIP_BZIP2), "any", True)
    files["members compressed with lzma"] = (_zip(folder / "lzma.keras", m, zipfile.ZIP_LZMA), "any", True)
    files["model.weights.h5 deflated"] = (_zip(folder / "defl.keras", m, methods={"model.weights.h5": 8}), "any",
                                          True)
    raw = bytearray(_zip(folder / "aes.keras", m).read_bytes())
    for pos, _ in list(_central(raw)):
        raw[pos + 10:pos + 12] = struct.pack("<H", 99)
    pos = raw.find(b"PK\x03\x04")
    while pos != -1:
        raw[pos + 8:pos + 10] = struct.pack("<H", 99)
        pos = raw.find(b"PK\x03\x04", pos + 4)
    (folder / "aes.keras").write_bytes(raw)
    files["every member method 99 (AES)"] = (folder / "aes.keras", "refuse", False)
    # a bad CRC on a deflated config.json (zipfile checks it at the end of the member)
    raw = bytearray(_zip(folder / "crc.keras", m, methods={"config.json": 8}).read_bytes())
    for pos, name in _central(raw):
        if name == b"config.json":
            crc = struct.unpack("<I", raw[pos + 16:pos + 20])[0] ^ 1
            raw[pos + 16:pos + 20] = struct.pack("<I", crc)
            local = struct.unpack("<I", raw[pos + 42:pos + 46])[0]
            raw[local + 14:local + 18] = struct.pack("<I", crc)
    (folder / "crc.keras").write_bytes(raw)
    files["config.json deflated, its CRC-32 wrong"] = (folder / "crc.keras", "refuse", False)
    base = _zip(folder / "plain.keras", m).read_bytes()
    (folder / "sfx.keras").write_bytes(b"#!/bin/sh\necho pwned > MARKER\nexit 0\n".ljust(4096, b"#") + base)
    files["a 4 KB self-extracting stub before the archive"] = (folder / "sfx.keras", "any", True)
    (folder / "tail.keras").write_bytes(base + b"\x00" * 4096)
    files["4 KB of junk after the end record"] = (folder / "tail.keras", "any", False)
    files["../config.json beside config.json"] = (
        _zip(folder / "dotdot.keras", m + [("../config.json", b'{"class_name": "Lambda"}')]), "any", False)
    files["/config.json beside config.json"] = (
        _zip(folder / "abs.keras", m + [("/config.json", b'{"class_name": "Lambda"}')]), "any", False)
    files["config.json named 'config.json\\0.txt'"] = (
        _zip(folder / "nul.keras", [("config.json\x00.txt" if n == "config.json" else n, d) for n, d in m]),
        "any", False)
    for member in ("config.json", "model.weights.h5", "metadata.json"):
        files[f"{member} of 0 bytes"] = (
            _zip(folder / f"empty_{member}.keras", [(n, b"" if n == member else d) for n, d in m]),
            "any" if member == "metadata.json" else "refuse", False)
    files["names in upper case only"] = (_zip(folder / "upper.keras", [(n.upper(), d) for n, d in m]), "refuse",
                                         False)
    # metadata.json of 1 GiB of spaces, deflated to about 1 MB
    bomb = folder / "bomb.keras"
    with zipfile.ZipFile(bomb, "w") as z:
        for n, d in m:
            if n == "metadata.json":
                info = zipfile.ZipInfo(n, (2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with z.open(info, "w", force_zip64=True) as w:
                    w.write(d[:-1])
                    block = b" " * (1 << 20)
                    for _ in range(1024):
                        w.write(block)
                    w.write(b"}")
            else:
                z.writestr(n, d)
    files["metadata.json of 1 GiB of spaces"] = (bomb, "any", False)
    # a ZIP64 extra field too short (4 bytes, where 8 are due)
    raw = bytearray(_zip(folder / "z64.keras", m).read_bytes())
    for pos, name in _central(raw):
        if name == b"config.json":
            n, e, c = struct.unpack("<HHH", raw[pos + 28:pos + 34])
            extra = struct.pack("<HHI", 0x0001, 4, 7)
            raw[pos + 20:pos + 28] = b"\xff" * 8
            raw[pos + 30:pos + 32] = struct.pack("<H", len(extra))
            raw[pos + 46 + n:pos + 46 + n] = extra
            break
    end = raw.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<II", raw[end + 12:end + 20])
    raw[end + 12:end + 16] = struct.pack("<I", cd_size + 8)
    (folder / "z64.keras").write_bytes(raw)
    files["a ZIP64 extra field too short"] = (folder / "z64.keras", "refuse", False)
    raw = bytearray(base)
    end = raw.rfind(b"PK\x05\x06")
    raw[end + 20:end + 22] = struct.pack("<H", 60000)
    (folder / "comment.keras").write_bytes(raw)
    files["an end record whose comment length says 60000, none there"] = (folder / "comment.keras", "any", False)
    # two central entries for one local member: metadata.json read again as config.json
    raw = bytearray(base)
    entries = dict((n, p) for p, n in _central(raw))
    p, q = entries[b"config.json"], entries[b"metadata.json"]
    raw[p + 16:p + 28] = raw[q + 16:q + 28]
    raw[p + 42:p + 46] = raw[q + 42:q + 46]
    (folder / "overlap.keras").write_bytes(raw)
    files["config.json's central entry pointing at metadata.json's data"] = (folder / "overlap.keras", "refuse",
                                                                             False)
    for label, (src, expect, verify) in files.items():
        cases += _pair(K, label, src, folder, expect=expect, verify=verify)
    return cases


# -- ONNX -----------------------------------------------------------------------------------------------------
def _onnx_save(folder: Path, name: str, model) -> Path:
    p = folder / name
    p.write_bytes(model.SerializeToString())
    return p


def _lstm_node(model):
    return next(n for n in model.graph.node if n.op_type == "LSTM")


def _init(model, name: str):
    return next(t for t in model.graph.initializer if t.name == name)


def onnx_cases(folder: Path) -> list[Case]:
    import onnx
    from onnx import TensorProto, helper

    cases: list[Case] = []
    K = "onnx10"
    base = _onnx_base(folder)
    node = _lstm_node(base)
    W = node.input[1]
    files: dict[str, tuple[Path, str, bool]] = {}

    def variant(name: str, edit):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        edit(m)
        return _onnx_save(folder, name, m)

    def external(location: str, extra: dict | None = None, sub: str = ""):
        def edit(m):
            t = _init(m, W)
            data = onnx.numpy_helper.to_array(t).astype("<f4").tobytes()
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.data_location = TensorProto.EXTERNAL
            for k, v in {"location": location, **(extra or {})}.items():
                e = t.external_data.add()
                e.key, e.value = k, v
            if sub:
                (folder / sub).write_bytes(data)
        return edit

    (folder / "secret_link.bin").unlink(missing_ok=True)
    os.symlink(folder.parent.parent / SECRET_NAME, folder / "secret_link.bin")
    files["external data through a symlink to a file outside the folder"] = (
        variant("ext_link.onnx", external("secret_link.bin")), "refuse", False)
    (folder / "zero_link.bin").unlink(missing_ok=True)
    os.symlink("/dev/zero", folder / "zero_link.bin")
    files["external data through a symlink to /dev/zero"] = (variant("ext_zero.onnx", external("zero_link.bin")),
                                                             "refuse", False)
    (folder / "a_folder.bin").mkdir(exist_ok=True)
    files["external data location a folder"] = (variant("ext_dir.onnx", external("a_folder.bin")), "refuse", False)
    if not (folder / "pipe.bin").exists():
        os.mkfifo(folder / "pipe.bin")
    files["external data location a FIFO"] = (variant("ext_fifo.onnx", external("pipe.bin")), "refuse", False)
    variant("ext_inside.onnx", external("inside.bin", None, "inside.bin"))
    (folder / "inside_link.bin").unlink(missing_ok=True)
    os.symlink("inside.bin", folder / "inside_link.bin")
    files["external data through a symlink to a file in the folder"] = (
        variant("ext_inlink.onnx", external("inside_link.bin")), "any", True)
    files["external data in the model file itself"] = (variant("ext_self.onnx", external("ext_self.onnx")),
                                                       "any", True)  # a regular file in the folder: onnxruntime reads it
    for label, extra in {"offset -1": {"offset": "-1"}, "offset 0x10": {"offset": "0x10"},
                         "length 1e3": {"length": "1e3"}, "offset 2**64": {"offset": str(2 ** 64)},
                         "an unknown key": {"checksum": "deadbeef"}}.items():
        stem = "ext_" + "".join(c for c in label if c.isalnum())
        files[f"external data, {label}"] = (variant(f"{stem}.onnx", external(f"{stem}.bin", extra, f"{stem}.bin")),
                                            "refuse" if "key" not in label else "any", False)

    def location_twice(m):
        external("w_a.bin", None, "w_a.bin")(m)
        e = _init(m, W).external_data.add()
        e.key, e.value = "location", "../" + SECRET_NAME
    files["external data, location given twice (the second outside)"] = (variant("ext_twice.onnx", location_twice),
                                                                         "refuse", False)

    def no_entries(m):
        t = _init(m, W)
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
    files["a tensor external without entries"] = (variant("ext_none.onnx", no_entries), "refuse", False)

    def entries_and_raw(m):
        e = _init(m, W).external_data.add()
        e.key, e.value = "location", "../" + SECRET_NAME
    files["raw_data beside external entries, data_location default"] = (variant("ext_raw.onnx", entries_and_raw),
                                                                        "any", False)
    # W of every data type
    w0 = onnx.numpy_helper.to_array(_init(base, W))
    n = int(w0.size)
    types = {"float16": (TensorProto.FLOAT16, w0.astype("<f2").tobytes(), "any"),
             "bfloat16": (TensorProto.BFLOAT16, (w0.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes(), "any"),
             "double": (TensorProto.DOUBLE, w0.astype("<f8").tobytes(), "any"),
             "float8e4m3fn": (TensorProto.FLOAT8E4M3FN, bytes(n), "refuse"),
             "int4": (getattr(TensorProto, "INT4", 22), bytes((n + 1) // 2), "refuse"),
             "uint4": (getattr(TensorProto, "UINT4", 21), bytes((n + 1) // 2), "refuse"),
             "float4e2m1": (getattr(TensorProto, "FLOAT4E2M1", 23), bytes((n + 1) // 2), "refuse"),
             "complex64": (TensorProto.COMPLEX64, bytes(8 * n), "refuse"),
             "bool": (TensorProto.BOOL, bytes(n), "refuse"),
             "uint64": (TensorProto.UINT64, bytes(8 * n), "refuse"),
             "undefined (0)": (0, bytes(4 * n), "refuse"),
             "999": (999, bytes(4 * n), "refuse")}
    for label, (code, data, expect) in types.items():
        def as_type(m, code=code, data=data):
            t = _init(m, W)
            t.ClearField("float_data")
            t.data_type = code
            t.raw_data = data
        stem = "w_" + "".join(c for c in label if c.isalnum())
        files[f"W of data type {label}"] = (variant(f"{stem}.onnx", as_type), expect, expect == "any")
    for label, cut in {"one byte short": -1, "one byte long": 1, "a float long": 4}.items():
        def raw_len(m, cut=cut):
            t = _init(m, W)
            data = onnx.numpy_helper.to_array(t).astype("<f4").tobytes()
            t.ClearField("float_data")
            t.raw_data = data[:cut] if cut < 0 else data + bytes(cut)
        files[f"W's raw_data {label}"] = (variant(f"raw{cut}.onnx", raw_len), "refuse", False)
    # attribute lists of 10**6 entries, 10**5 attributes, 10**4 inputs
    def activations(m):
        node = _lstm_node(m)
        kept = [a for a in node.attribute if a.name != "activations"]
        node.ClearField("attribute")
        node.attribute.extend(kept + [helper.make_attribute("activations", ["Sigmoid", "Tanh", "Tanh"] * 333_334)])
    def alphas(m):
        _lstm_node(m).attribute.append(helper.make_attribute("activation_alpha", [0.5] * 10 ** 6))
    def junk_attributes(m):
        _lstm_node(m).attribute.extend(helper.make_attribute(f"a{i}", i) for i in range(10 ** 5))
    def empty_inputs(m):
        _lstm_node(m).input.extend([""] * 10 ** 4)
    for label, edit in {"activations of 10**6 names": activations, "activation_alpha of 10**6 floats": alphas,
                        "10**5 unknown attributes": junk_attributes, "10**4 empty inputs": empty_inputs}.items():
        stem = "".join(c for c in label if c.isalnum())[:20]
        legal = "alpha" in label  # onnxruntime runs it: Sigmoid and Tanh take no alpha, the list is not read
        files[f"LSTM {label}"] = (variant(f"{stem}.onnx", edit), "any" if legal else "refuse", legal)
    # sequence_lens constants
    for value in (-1, 0, 10 ** 9):
        def seq(m, value=value):
            node = _lstm_node(m)
            name = f"seq_lens_{abs(value)}"
            m.graph.initializer.append(helper.make_tensor(name, TensorProto.INT32, [1], [value]))
            while len(node.input) < 5:
                node.input.append("")
            node.input[4] = name
        files[f"sequence_lens a constant {value}"] = (variant(f"seq{abs(value)}_{value < 0}.onnx", seq), "any", True)
    # the LSTM inside an If whose condition is a constant true
    def in_if(m):
        node = _lstm_node(m)
        outs = [o for o in node.output]
        inner = onnx.NodeProto()
        inner.CopyFrom(node)
        inner.output[:] = [o + "_in" if o else "" for o in outs]
        branch_outputs = [helper.make_tensor_value_info(o + "_in", TensorProto.FLOAT, None) for o in outs if o]
        then = helper.make_graph([inner], "then", [], branch_outputs)
        other = onnx.NodeProto()
        other.CopyFrom(inner)
        other_g = helper.make_graph([other], "else", [], branch_outputs)
        m.graph.initializer.append(helper.make_tensor("cond_true", TensorProto.BOOL, [], [True]))
        new = helper.make_node("If", ["cond_true"], [o for o in outs if o], then_branch=then, else_branch=other_g)
        i = list(m.graph.node).index(node)
        m.graph.node.remove(node)
        m.graph.node.insert(i, new)
    files["the LSTM inside an If of a constant true"] = (variant("in_if.onnx", in_if), "any", True)
    def outputs_twice(m):
        m.graph.output.append(m.graph.output[0])
    files["two graph outputs of one name"] = (variant("out_twice.onnx", outputs_twice), "any", True)  # onnx's checker
    # and onnxruntime accept it
    def string_bias(m):
        node = _lstm_node(m)
        if len(node.input) > 3 and node.input[3]:
            t = _init(m, node.input[3])
            dims = list(t.dims)
            t.CopyFrom(helper.make_tensor(t.name, TensorProto.STRING, dims, [b"__import__('os')"] * int(np.prod(dims))))
    files["B a tensor of strings"] = (variant("b_str.onnx", string_bias), "refuse", False)
    for label, (src, expect, verify) in files.items():
        cases += _pair(K, label, src, folder, expect=expect, verify=verify)
    return cases


# -- PyTorch ----------------------------------------------------------------------------------------------------
def _sd():
    import torch

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4)
    return {f"rnn.{k}": v.detach().clone() for k, v in lstm.state_dict().items()}


def _replace_pickle(src: Path, dst: Path, pkl: bytes) -> Path:
    with zipfile.ZipFile(src) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, pkl if name.endswith("/data.pkl") else data)
    return dst


class _Storage:
    """A persistent id of torch's zip format: ('storage', FloatStorage, key, 'cpu', numel)."""

    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class _Tensor:
    def __init__(self, storage: _Storage, offset, size, stride, hooks=None):
        self.args = (storage, offset, tuple(size), tuple(stride), False,
                     collections.OrderedDict() if hooks is None else hooks)

    def __reduce__(self):
        import torch._utils

        return torch._utils._rebuild_tensor_v2, self.args


def _pickle_of(obj) -> bytes:
    import torch

    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, _Storage):
                return ("storage", torch.FloatStorage, o.key, "cpu", o.numel)
            return None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(obj)
    return buf.getvalue()


def torch_cases(folder: Path) -> list[Case]:
    import torch

    cases: list[Case] = []
    K = "torch10"
    sd = _sd()
    base = folder / "base.pt"
    torch.save(sd, base)
    marker = str(folder.parent / "MARKER")
    files: dict[str, tuple[Path, str, bool]] = {}
    # pickles calling what a state_dict never needs: each would create MARKER if run
    cmd = f"touch {marker}".encode()
    code = f"open({marker!r}, 'w')".encode()
    calls = {"posix.system": b"cposix\nsystem\n(X" + struct.pack("<I", len(cmd)) + cmd + b"tR",
             "os.system": b"cos\nsystem\n(X" + struct.pack("<I", len(cmd)) + cmd + b"tR",
             "builtins.exec": b"cbuiltins\nexec\n(X" + struct.pack("<I", len(code)) + code + b"tR",
             "Python 2's __builtin__.eval": b"c__builtin__\neval\n(X" + struct.pack("<I", len(code)) + code + b"tR",
             "builtins.getattr of os": (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(X\x02\x00\x00\x00ostRX\x06\x00"
                                        b"\x00\x00systemtR(X" + struct.pack("<I", len(cmd)) + cmd + b"tR"),
             "subprocess.Popen": b"csubprocess\nPopen\n((X\x05\x00\x00\x00touchX" + struct.pack(
                 "<I", len(marker)) + marker.encode() + b"ttR",
             "torch.load of the file itself": b"ctorch\nload\n(X\x07\x00\x00\x00base.pttR",
             "numpy's _reconstruct": b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(K\x00tC\x01btR",
             "STACK_GLOBAL of os.system": (b"X\x02\x00\x00\x00osX\x06\x00\x00\x00system\x93(X" +
                                           struct.pack("<I", len(cmd)) + cmd + b"tR")}
    for label, call in calls.items():
        pkl = b"\x80\x02}(X\x03\x00\x00\x00key" + call + b"u."
        stem = "".join(c for c in label if c.isalnum())[:20]
        files[f"a pickle calling {label}"] = (_replace_pickle(base, folder / f"g_{stem}.pt", pkl), "refuse", False)
    # tensors rebuilt over their storage: the real data members, one pickle of ours
    # weight_ih_l0 is (16, 3): 48 floats
    def with_tensor(name: str, t: _Tensor, numel: int = 48) -> Path:
        p = folder / f"{name}.pt"
        torch.save(sd, p)
        # our pickle: every tensor ours, storages keyed as torch wrote them (key i holds sd's i-th tensor)
        ours = {}
        for i, (k, v) in enumerate(sd.items()):
            ours[k] = _Tensor(_Storage(str(i), v.numel()), 0, v.shape, v.stride())
        keys = list(sd)
        i = keys.index("rnn.weight_ih_l0")
        t.args = (_Storage(str(i), numel),) + t.args[1:]
        ours["rnn.weight_ih_l0"] = t
        return _replace_pickle(p, p, _pickle_of(collections.OrderedDict(ours)))

    dummy = _Storage("0", 48)
    views = {"a control: the same tensor rebuilt as torch wrote it": (_Tensor(dummy, 0, (16, 3), (3, 1)), "any", True),
             "strides past the storage": (_Tensor(dummy, 0, (16, 3), (100, 1)), "refuse", False),
             "negative strides": (_Tensor(dummy, 45, (16, 3), (-3, 1)), "refuse", False),
             "a negative offset": (_Tensor(dummy, -3, (16, 3), (3, 1)), "refuse", False),
             "an offset past the storage": (_Tensor(dummy, 47, (16, 3), (3, 1)), "refuse", False),
             "overlapping strides (1, 1)": (_Tensor(dummy, 0, (16, 3), (1, 1)), "any", True),
             "a 2**62 stride on a size-1 dimension": (_Tensor(dummy, 0, (1, 16, 3), (2 ** 62, 3, 1)), "refuse",
                                                      False),
             "a size of 60 dimensions": (_Tensor(dummy, 0, (1,) * 58 + (16, 3), (48,) * 58 + (3, 1)), "refuse",
                                         False),
             "a storage numel past its bytes": (_Tensor(dummy, 0, (16, 3), (3, 1)), "refuse", False),
             "size given as floats": (_Tensor(dummy, 0, (16.0, 3.0), (3, 1)), "refuse", False)}
    for i, (label, (t, expect, verify)) in enumerate(views.items()):
        numel = 10 ** 6 if "numel" in label else 48
        try:
            p = with_tensor(f"v{i}", t, numel)
        except Exception as e:  # noqa: BLE001 - a view pickle cannot make: skipped, said
            print(f"skipped torch view {label}: {e}", file=sys.stderr)
            continue
        files[f"weight_ih rebuilt with {label}"] = (p, expect, verify)
    # backward hooks naming os.system
    class Hooks(collections.OrderedDict):
        def __reduce__(self):
            return collections.OrderedDict, (), None, None, iter([(0, os.system)])
    files["weight_ih with a backward hook naming os.system"] = (
        with_tensor("hook", _Tensor(dummy, 0, (16, 3), (3, 1), Hooks())), "refuse", False)
    # safetensors: 2*10**5 empty tensors; offsets past 2**64
    header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(2 * 10 ** 5)}
    p = folder / "many_empty.safetensors"
    p.write_bytes(safetensors_bytes(header, b""))
    files["a safetensors header of 2*10**5 empty tensors"] = (p, "refuse", False)
    p = folder / "past64.safetensors"
    p.write_bytes(safetensors_bytes({"rnn.weight_ih_l0": {"dtype": "F32", "shape": [16, 3],
                                                          "data_offsets": [2 ** 64, 2 ** 64 + 192]}}, bytes(192)))
    files["safetensors offsets past 2**64"] = (p, "refuse", False)
    for label, (src, expect, verify) in files.items():
        cases += _pair(K, label, src, folder, expect=expect, verify=verify)
    return cases


# -- outputs --------------------------------------------------------------------------------------------------
def out_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "out10"
    onnx_in = folder / "self.onnx"
    from converters.cli import main
    assert main(["-q", "convert", str(TINY), "--to", "onnx", "-o", str(onnx_in)]) == 0
    cases.append(_case(K, "-o the input itself, no --force (onnx -> onnx)",
                       _convert(onnx_in, "onnx", onnx_in), onnx_in, output=onnx_in))
    link = folder / "link_to_self.onnx"
    link.symlink_to(onnx_in.name)
    cases.append(_case(K, "-o a symlink to the input, no --force", _convert(onnx_in, "onnx", link), onnx_in))
    for to in ("onnx", "torch", "keras", "gates", "numpy", "torch-state-dict"):
        d = folder / f"users_{to.replace('-', '_')}"
        d.mkdir()
        keep = d / "thesis.txt"
        keep.write_text("the user's own file\n")
        case = _case(K, f"--force -o a folder holding the user's files (--to {to})", _convert(TINY, to, d, "--force"),
                     [TINY, keep], output=d, expect="any")
        cases.append(dataclasses.replace(case, names=case.names + _name_of(d)))  # a refusal names either
    # batches whose outputs collide
    for i, (label, names) in enumerate({"one stem in two folders": ("a/m.h5", "b/m.h5"),
                                        "m.h5 beside m.keras": ("m.h5", "m.keras"),
                                        "M.h5 beside m.h5": ("M.h5", "m.h5"),
                                        "an output that is an input (m.onnx, m.h5)": ("m.onnx", "m.h5")}.items()):
        d = folder / f"batch{i}"
        srcs = []
        for n in names:
            p = d / n
            p.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(onnx_in if n.endswith(".onnx") else (K3 if n.endswith(".keras") else TINY), p)
            srcs.append(p)
        out = d if "input" in label else d / "out"
        cases.append(_case(K, f"a batch: {label}", ["convert", *srcs, "--to", "onnx", "-o", out, "--force"], srcs,
                           output=out / "m.onnx" if out != d else None))
    d = folder / "batch_link"
    d.mkdir()
    srcs = [d / "m.onnx", d / "m.h5"]
    shutil.copy(onnx_in, srcs[0])
    shutil.copy(TINY, srcs[1])
    (folder / "batch_link_out").symlink_to(d.name)
    cases.append(_case(K, "a batch whose output folder is a symlink to the inputs' (m.onnx, m.h5)",
                       ["convert", *srcs, "--to", "onnx", "-o", folder / "batch_link_out", "--force"], srcs))
    return cases


def main() -> int:
    from attack_run import battery_main

    return battery_main(build, run_case10, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
