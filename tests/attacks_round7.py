"""Hostile inputs, red team round 7: what rounds 1-6 (attacks.py, attacks_more.py, attacks_round3.py ...
attacks_round6.py) do not build, or built thinly.

Same :class:`attacks.Case` contract and runner as round 6 (:func:`attacks_round5.run_case5`: one line naming
the file, no traceback, no raw escape on stderr, nothing read outside the input's folder, bounded time and
memory, inputs unchanged, no output left behind on a refusal, exit 2 where a refusal is due, never 'a
gateport bug'), plus (:func:`run_case7`): a ``verify`` of this round never reports a mismatch (exit 1): an
input that is read must be read right. ``python tests/attacks_round7.py`` runs them through
:func:`attack_run.run_battery`.

Classes: ``torch7`` (a zip-format torch.save whose pickle uses opcodes and globals past a state_dict: EXT1, INST,
OBJ, PERSID as text, NEWOBJ_EX, BUILD on OrderedDict, a FRAME or BINBYTES8 whose length lies, a missing memo;
storages whose member is short, long, missing, of another dtype name; OrderedDict / nested dicts holding
ints, text, None, lists; tensors of dtypes an LSTM weight never has: bool, int64, uint8, float16, bfloat16,
float8, complex64, sparse COO, quantized; legacy non-zip files: the pre-1.6 pickle, a tar, gzip; zips with
data descriptors, a stored ZIP64 extra, directory entries, a second archive folder), ``safetensors7`` (offsets
that overlap, come out of order, leave a gap or pass the end; a key given twice in the header; a header length
past the file; dtypes F8_E4M3, F8_E5M2, BOOL, BF16, F64, I64, U8, C64, lower case; a header padded with
spaces, metadata not text), ``onnx7`` (external data read right and wrong: an offset or length past the
file, a length shorter than the tensor, offsets as text, a valid file beside the model; sparse initializers;
graph inputs of sequence, map and optional types; If / Loop / Scan subgraphs nested 64 and 2,000 deep; names
given twice: initializers, node outputs, graph inputs; a local function shadowing LSTM in the default
domain), ``keras7`` (zip members with data descriptors, a ZIP64 end record, directory entries, a symlink
entry, a member named ``./config.json``; config.json with ``registered_name`` / ``module`` naming os or
builtins, a ``build_config`` of 10**12 steps, a ``compile_config`` whose loss is a function of ``os``,
shared objects; Keras 3 ``metadata.json`` missing), ``h5_7`` (soft link cycles, a dangling soft link, an
external link to the file itself, a layer's weights soft-linked to another layer's, kernels of array, vlen,
float16, float64, scalar, null-dataspace type, attributes holding object and region references),
``cli7`` (``-o`` a FIFO, a dangling symlink, a file in a read-only folder, through a symlinked parent, a path
through a regular file, a 300-character name; ``--config`` of 80 MB, a binary, a folder, the model itself,
/dev/zero), ``cmds7`` (``inspect --layer --gate -o`` into the same odd places; ``diff`` / ``verify`` /
``explain`` given this round's hostile files).

``python tests/attacks_round7.py`` (2026-12-02, 2 shared cores, load 5-8, three groups in parallel): 353 attacks
(torch7 94, safetensors7 52, onnx7 50, keras7 44, h5_7 30, cli7 31, cmds7 52), 353 passed, peak memory 383 MiB.
Before this round's fixes: a safetensors header naming one tensor twice was read (the last entry won, as in
Python's json; safe_json now refuses a key given twice in any object); an ONNX graph input listed twice was read
(check_structure); ``verify --artifact`` of an ONNX file with external data exited 2 with an ERROR row and no line
on stderr (onnxruntime reads no external data from bytes; refused before any runtime, naming the tensor); a
quantized weight printed torch's 'TypedStorage is deprecated' as a gateport warning ahead of its error (torch's
warnings stay inside torch.load). Not caught by the runner, fixed too: every weights-only refusal of a pickle
carried torch's advice to re-run with ``weights_only=False`` (now the reason alone); an .npz named .pt was
'expected config.json in the .keras archive'. Cases first written as refusals are read as Keras or
torch read them (BUILD on an OrderedDict, a ZIP64 member count, ``rnn..weight``, an HDF5 array dtype; a
read-only folder does not stop root).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import struct
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np

from attacks import K3_GRU, Case, lstm_keys, read_keras, safetensors_bytes, write_keras
from attacks_round3 import SECRET_NAME, _case, _convert, build_groups
from attacks_round4 import TINY, _written
from attacks_round5 import run_case5

ROOT = Path(__file__).resolve().parent.parent
_KERNEL = "model_weights/lstm/lstm/lstm_cell/kernel:0"
_RECURRENT = "model_weights/lstm/lstm/lstm_cell/recurrent_kernel:0"
#: a folder of mode 0555 stops anyone but root
_READ_ONLY = "any" if os.geteuid() == 0 else "refuse"


def run_case7(case: Case, marker: Path, timeout: float) -> tuple[list[str], dict]:
    """Round 6's checks, plus: no verify of this round reports a mismatch."""
    problems, measured = run_case5(case, marker, timeout)
    if case.argv[0] == "verify" and measured.get("exit") == 1:
        problems.append(f"verify found a mismatch: {measured.get('stderr', '')[:200]!r}")
    return problems, measured


def build(folder: Path, groups: tuple[str, ...] | None = None) -> list[Case]:
    """Every case (or those of the builders named in ``groups``)."""
    return build_groups(folder, (torch_cases, safetensors_cases, onnx_cases, keras_cases, h5_cases, cli_cases, cmds_cases), groups)


def _pair(K: str, label: str, src: Path, folder: Path, to: str = "onnx", expect: str = "refuse",
          verify: bool = False) -> list[Case]:
    """``inspect`` and ``convert --to to`` of ``src`` (and ``verify`` when asked)."""
    out = folder / (f"{src.stem}_{to}" if to in ("torch", "numpy") else f"{src.stem}_out.{to}")
    cases = [_case(K, f"{label} ({to})", _convert(src, to, out), src, output=out, expect=expect,
                   importable=to == "torch")]
    if len(label) % 2:  # inspect reads through the same reader: every other file is enough
        cases.insert(0, _case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect))
    if verify:
        cases.append(_case(K, f"{label} (verify)", ["verify", src, "--to", "torch,onnx"], src, expect=expect))
    return cases


# -- PyTorch state_dicts ----------------------------------------------------------------------------------------
def _torch_sd():
    import torch

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4)
    return {f"rnn.{k}": v.detach().clone() for k, v in lstm.state_dict().items()}


def _zip_replace(src: Path, dst: Path, edit) -> Path:
    """``src``'s members (names -> bytes, in order) edited by ``edit`` and stored in ``dst``."""
    with zipfile.ZipFile(src) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    members = edit(members)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
    return dst


def torch_cases(folder: Path) -> list[Case]:
    import collections

    import torch

    cases: list[Case] = []
    K = "torch7"
    sd = _torch_sd()
    PLACE = "PLACEHOLDER_VALUE_0123456789"
    base = folder / "base.pt"
    torch.save(sd, base)
    files: dict[str, tuple[Path, str, bool]] = {}

    def with_value(name: str, opcodes: bytes) -> Path:
        p = folder / f"{name}.pt"
        torch.save({**sd, "extra": PLACE}, p)
        enc = PLACE.encode()
        old = b"X" + struct.pack("<I", len(enc)) + enc

        def edit(members):
            out = []
            for n, d in members:
                if n.endswith("data.pkl"):
                    assert old in d
                    d = d.replace(old, opcodes, 1)
                out.append((n, d))
            return out
        return _zip_replace(p, p, edit)

    opcode_values = {
        "EXT1 (the copyreg extension registry)": b"\x82\x01",
        "INST os.system": b"(X\x04\x00\x00\x00trueios\nsystem\n",
        "OBJ of builtins.eval": b"(cbuiltins\neval\nX\x01\x00\x00\x001o",
        "PERSID given as text": b"Pfoo\n",
        "NEWOBJ_EX of OrderedDict": b"ccollections\nOrderedDict\n)}\x92",
        "BUILD on an OrderedDict with a __dict__": b"ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00aK\x01sb",
        "a FRAME whose length lies": b"\x95\xff\xff\xff\xff\xff\xff\xff\x7fN",
        "BINBYTES8 of 2**62 bytes": b"\x8e" + struct.pack("<Q", 1 << 62),
        "BYTEARRAY8 of 2**40 bytes": b"\x96" + struct.pack("<Q", 1 << 40),
        "LONG4 of 4 MB": b"\x8b" + struct.pack("<i", 4 << 20) + b"\x01" * (4 << 20),
        "a memo get of index 10**6": b"j" + struct.pack("<I", 10 ** 6),
        "STACK_GLOBAL of os.system": b"X\x02\x00\x00\x00osX\x06\x00\x00\x00system\x93",
        "GLOBAL torch.load": b"ctorch\nload\n",
        "GLOBAL torch._utils._rebuild_parameter of nothing": b"ctorch._utils\n_rebuild_parameter\n)R",
        "a STOP in the middle": b".",
        "a set of 10**5 ints": b"\x8f(" + b"J" * 0 + b"".join(b"J" + struct.pack("<i", i) for i in range(100000)) + b"\x90",
        "a string of 4 MB": b"X" + struct.pack("<I", 4 << 20) + b"a" * (4 << 20),
    }
    for i, (label, ops) in enumerate(opcode_values.items()):
        # weights_only's unpickler allows BUILD on an OrderedDict (how torch.save sets a state_dict's _metadata)
        expect = "any" if label in ("a set of 10**5 ints", "a string of 4 MB", "LONG4 of 4 MB",
                                    "BUILD on an OrderedDict with a __dict__") else "refuse"
        files[f"the pickle holding {label}"] = (with_value(f"op{i}", ops), expect, False)

    # storages whose zip member lies about the tensor
    def storage_edit(name: str, how):
        def edit(members):
            out = []
            for n, d in members:
                if "/data/" in n and n.rsplit("/", 1)[-1] == "0":
                    if how == "drop":
                        continue
                    d = how(d)
                out.append((n, d))
            return out
        return _zip_replace(base, folder / f"{name}.pt", edit)

    files["storage 0 one float short"] = (storage_edit("short", lambda d: d[:-4]), "refuse", False)
    files["storage 0 empty"] = (storage_edit("empty", lambda d: b""), "refuse", False)
    files["storage 0 twice as long"] = (storage_edit("long", lambda d: d + d), "any", True)
    files["storage 0 missing"] = (storage_edit("missing", "drop"), "refuse", False)

    def pkl_edit(name: str, old: bytes, new: bytes, count: int = 1):
        def edit(members):
            out = []
            for n, d in members:
                if n.endswith("data.pkl"):
                    assert old in d, (name, old)
                    d = d.replace(old, new, count)
                out.append((n, d))
            return out
        return _zip_replace(base, folder / f"{name}.pt", edit)

    files["storage dtype FloatStorage renamed DoubleStorage"] = (
        pkl_edit("double", b"FloatStorage", b"DoubleStorage"), "refuse", False)
    files["every storage dtype HalfStorage"] = (pkl_edit("half", b"FloatStorage", b"HalfStorage", -1), "refuse",
                                                 False)
    files["every storage dtype BoolStorage"] = (pkl_edit("bool", b"FloatStorage", b"BoolStorage", -1), "any", False)
    files["a storage dtype of torch.nn.Module"] = (pkl_edit("module", b"torch\nFloatStorage", b"torch.nn\nModule"),
                                                    "refuse", False)
    files["the rebuild global _rebuild_tensor (v1)"] = (
        pkl_edit("v1", b"_rebuild_tensor_v2", b"_rebuild_tensor"), "refuse", False)
    files["the rebuild global _rebuild_device_tensor_from_numpy"] = (
        pkl_edit("numpy", b"_rebuild_tensor_v2", b"_rebuild_device_tensor_from_numpy"), "refuse", False)
    # non-tensor values around the tensors
    for label, obj, expect in [
            ("an OrderedDict with _metadata", None, "any"),
            ("nested dicts with ints, text, None and lists", {"state_dict": sd, "epoch": 7, "name": "x", "opt": None,
                                                              "hist": [1.0, 2.0], "cfg": {"lr": 0.1}}, "any"),
            ("a list of tensors", list(sd.values()), "refuse"),
            ("a tuple (state_dict, 3)", (sd, 3), "refuse"),
            ("a bare tensor", sd["rnn.weight_ih_l0"], "refuse"),
            ("keys with dots doubled", {k.replace(".", ".."): v for k, v in sd.items()}, "any"),
            ("the state_dict nested 9 deep", None, "refuse"),
            ("a Parameter for each weight", {k: torch.nn.Parameter(v) for k, v in sd.items()}, "any")]:
        if label.startswith("an OrderedDict"):
            obj = collections.OrderedDict(sd)
            obj._metadata = collections.OrderedDict({"rnn": {"version": 1}})  # type: ignore[attr-defined]
        elif label.startswith("the state_dict nested"):
            obj = sd
            for _ in range(9):
                obj = {"m": obj}
        p = folder / f"v{len(files)}.pt"
        torch.save(obj, p)
        files[label] = (p, expect, expect == "any")
    # tensors of dtypes an LSTM weight never has
    dtype_cases = [("bool", lambda t: t > 0, "refuse"), ("int64", lambda t: (t * 100).long(), "refuse"),
                   ("uint8", lambda t: (t * 100).to(torch.uint8), "refuse"),
                   ("float16", lambda t: t.half(), "any"), ("bfloat16", lambda t: t.bfloat16(), "any"),
                   ("float64", lambda t: t.double(), "any"),
                   ("float8_e4m3fn", lambda t: t.to(torch.float8_e4m3fn), "refuse"),
                   ("complex64", lambda t: t.to(torch.complex64), "refuse"),
                   ("sparse COO", lambda t: t.to_sparse(), "refuse"),
                   ("quantized qint8", lambda t: torch.quantize_per_tensor(t, 0.1, 0, torch.qint8), "refuse"),
                   ("a zero-stride view of 10**12", lambda t: t.reshape(-1)[:1].expand(10 ** 6, 10 ** 6), "refuse"),
                   ("a transposed view", lambda t: t.t().contiguous().t(), "any"),
                   ("requires_grad with a grad_fn-free leaf", lambda t: t.clone().requires_grad_(True), "any")]
    for i, (label, f, expect) in enumerate(dtype_cases):
        try:
            with warnings.catch_warnings():  # torch: quantized tensors are deprecated
                warnings.simplefilter("ignore")
                changed = {**sd, "rnn.weight_ih_l0": f(sd["rnn.weight_ih_l0"])}
        except (RuntimeError, TypeError):
            continue
        p = folder / f"d{i}.pt"
        torch.save(changed, p)
        files[f"weight_ih a {label} tensor"] = (p, expect, expect == "any")
    # legacy and foreign containers
    p = folder / "legacy.pt"
    torch.save(sd, p, _use_new_zipfile_serialization=False)
    files["the legacy (pre-1.6) pickle format"] = (p, "refuse", False)
    p = folder / "legacy.tar"
    with tarfile.open(p, "w") as tar:
        for member in ("sys_info", "pickle", "storages", "tensors"):
            data = b"\x80\x02}q\x00." if member != "storages" else b"\x80\x02K\x00."
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    legacy_tar = folder / "legacy_tar.pt"
    shutil.move(p, legacy_tar)
    files["the legacy tar format"] = (legacy_tar, "refuse", False)
    p = folder / "gz.pt"
    p.write_bytes(gzip.compress(base.read_bytes()))
    files["a gzip of a torch.save"] = (p, "refuse", False)
    p = folder / "npz.pt"
    np.savez(p.with_suffix(".npz"), **{k: v.numpy() for k, v in sd.items()})
    shutil.move(p.with_suffix(".npz"), p)
    files["an .npz named .pt"] = (p, "refuse", False)
    # zips torch reads with its own (miniz) reader
    raw = base.read_bytes()
    files["members with data descriptors"] = (_with_descriptors(raw, folder / "desc.pt"), "any", True)
    files["a directory entry and a second archive folder"] = (
        _zip_replace(base, folder / "dirs.pt", lambda m: m + [("archive/data/", b""), ("other/data.pkl", b"\x80\x02}.")]),
        "any", False)
    files["data.pkl deflated to 8 MB of padding"] = (
        _zip_replace(base, folder / "pad.pt", lambda m: [(n, d + b"\x00" * (9 << 20) if n.endswith("data.pkl") else d)
                                                         for n, d in m]), "refuse", False)
    for label, (src, expect, verify) in files.items():
        cases += _pair(K, label, src, folder, "onnx", expect=expect, verify=verify)
    return cases


def _with_descriptors(raw: bytes, dst: Path) -> Path:
    """The zip ``raw`` rewritten with general purpose bit 3: sizes and CRC zero in each local header, given in a
    data descriptor after the data (as a streaming writer does)."""
    src = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    central = []
    for info in src.infolist():
        data = src.read(info)
        name = info.filename.encode()
        offset = out.tell()
        crc = zipfile.crc32(data) & 0xFFFFFFFF
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0x08, 0, 0, 0x21, 0, 0, 0, len(name), 0))
        out.write(name)
        out.write(data)
        out.write(struct.pack("<4sIII", b"PK\x07\x08", crc, len(data), len(data)))
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0x08, 0, 0, 0x21, crc, len(data),
                                   len(data), len(name), 0, 0, 0, 0, 0, offset) + name)
    start = out.tell()
    for c in central:
        out.write(c)
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), out.tell() - start, start, 0))
    dst.write_bytes(out.getvalue())
    return dst


# -- safetensors ------------------------------------------------------------------------------------------------
def safetensors_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "safetensors7"
    keys = lstm_keys("rnn")
    rng = np.random.default_rng(0)
    header, off, chunks = {}, 0, []
    for k, shape in keys.items():
        data = rng.standard_normal(shape).astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        chunks.append(data)
    body = b"".join(chunks)
    names = list(header)
    files: dict[str, tuple[bytes, str]] = {}

    def variant(**changes) -> dict:
        h = json.loads(json.dumps(header))
        for k, v in changes.items():
            h[names[int(k[1:])]].update(v)
        return h

    e0, e1 = header[names[0]]["data_offsets"], header[names[1]]["data_offsets"]
    files["two tensors at the same offsets"] = (safetensors_bytes(variant(k1={"data_offsets": e0, "shape": [16, 3]}),
                                                                  body), "refuse")
    files["tensors overlapping by 4 bytes"] = (safetensors_bytes(
        variant(k1={"data_offsets": [e1[0] - 4, e1[1] - 4]}), body), "refuse")
    rev = dict(reversed(list(header.items())))
    files["the header listing the tensors in reverse order"] = (safetensors_bytes(rev, body), "any")
    # tensors stored in the reverse order of the header's (the spec asks only for a tiling)
    h2, o2, parts = {}, 0, []
    for k in reversed(names):
        s, e = header[k]["data_offsets"]
        h2[k] = {**header[k], "data_offsets": [o2, o2 + e - s]}
        o2 += e - s
        parts.append(body[s:e])
    files["the data stored in reverse order"] = (safetensors_bytes({k: h2[k] for k in names}, b"".join(parts)), "any")
    files["a 4-byte gap between two tensors"] = (safetensors_bytes(
        {k: {**v, "data_offsets": [v["data_offsets"][0] + (4 if i else 0), v["data_offsets"][1] + (4 if i else 0)]}
         for i, (k, v) in enumerate(header.items())}, body[:e0[1]] + b"\x00" * 4 + body[e0[1]:]), "refuse")
    files["the last tensor ending past the file"] = (safetensors_bytes(header, body[:-8]), "refuse")
    files["data_offsets reversed"] = (safetensors_bytes(variant(k0={"data_offsets": [e0[1], e0[0]]}), body), "refuse")
    files["data_offsets of three numbers"] = (safetensors_bytes(variant(k0={"data_offsets": [0, e0[1], 5]}), body),
                                              "refuse")
    files["data_offsets floats"] = (safetensors_bytes(variant(k0={"data_offsets": [0.0, float(e0[1])]}), body), "refuse")
    text = json.dumps(header)
    dup = text.replace("{", '{"%s": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, ' % names[0], 1)
    files["a tensor named twice in the header"] = (struct.pack("<Q", len(dup)) + dup.encode() + body, "refuse")
    files["a header length of 2**40"] = (struct.pack("<Q", 1 << 40) + text.encode() + body, "refuse")
    files["a header length one past the JSON"] = (struct.pack("<Q", len(text) + 1) + text.encode() + body, "refuse")
    padded = text + " " * 7
    files["a header padded with 7 spaces (as the spec allows)"] = (struct.pack("<Q", len(padded)) + padded.encode() +
                                                                   body, "any")
    lead = " " + text
    files["a header with a leading space"] = (struct.pack("<Q", len(lead)) + lead.encode() + body, "any")
    for code, size, expect in [("F8_E4M3", 1, "refuse"), ("F8_E5M2", 1, "refuse"), ("BOOL", 1, "refuse"),
                               ("BF16", 2, "any"), ("F64", 8, "any"), ("I64", 8, "refuse"), ("U8", 1, "refuse"),
                               ("C64", 8, "refuse"), ("f32", 4, "refuse"), ("F32 ", 4, "refuse"), ("F4", 1, "refuse"),
                               ("", 4, "refuse")]:
        h, o, parts = {}, 0, []
        for i, (k, v) in enumerate(header.items()):
            n = int(np.prod(v["shape"])) * (size if i == 0 else 4)
            h[k] = {**v, "dtype": code if i == 0 else "F32", "data_offsets": [o, o + n]}
            if code == "BF16" and i == 0:
                data = (np.frombuffer(body[v["data_offsets"][0]:v["data_offsets"][1]], "<u4") >> 16).astype("<u2").tobytes()
            elif code == "F64" and i == 0:
                data = np.frombuffer(body[v["data_offsets"][0]:v["data_offsets"][1]], "<f4").astype("<f8").tobytes()
            elif i == 0:
                data = bytes([1]) * n
            else:
                data = body[v["data_offsets"][0]:v["data_offsets"][1]]
            parts.append(data)
            o += n
        files[f"weight_ih of dtype {code!r}"] = (safetensors_bytes(h, b"".join(parts)), expect)
    for label, meta, expect in [("metadata values numbers", {"a": 1}, "refuse"),
                                ("metadata a list", ["x"], "refuse"),
                                ("gateport.layers metadata naming os.system as kind",
                                 {"gateport.layers": json.dumps([{"prefix": "rnn.", "kind": "os.system"}])}, "refuse"),
                                ("gateport.layers metadata of 2 MB", {"gateport.layers": "[" + " " * (2 << 20) + "]"},
                                 "refuse")]:
        files[label] = (safetensors_bytes({**header, "__metadata__": meta}, body), expect)
    for i, (label, (data, expect)) in enumerate(files.items()):
        src = folder / f"s{i}.safetensors"
        src.write_bytes(data)
        cases += _pair(K, label, src, folder, "torch", expect=expect, verify=expect == "any")
    return cases


# -- ONNX -------------------------------------------------------------------------------------------------------
def onnx_cases(folder: Path) -> list[Case]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cases: list[Case] = []
    K = "onnx7"
    base = onnx.load(str(_written(folder, "onnx")))

    def lstm(m):
        return next(n for n in m.graph.node if n.op_type == "LSTM")

    def weight(m):
        return next(t for t in m.graph.initializer if t.name == lstm(m).input[1])

    def external(m, loc: str, offset: str | None = None, length: str | None = None, data: bytes | None = None,
                 where: Path | None = None):
        t = weight(m)
        raw = numpy_helper.to_array(t).astype("<f4").tobytes()
        t.ClearField("raw_data")
        del t.float_data[:]
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        t.external_data.add(key="location", value=loc)
        if offset is not None:
            t.external_data.add(key="offset", value=offset)
        if length is not None:
            t.external_data.add(key="length", value=length)
        if where is not None:
            where.write_bytes(data if data is not None else raw)
        return raw

    edits: dict[str, tuple] = {}

    def ext(label, loc, expect, offset=None, length=None, data_fn=None, file_name=None):
        def edit(m, d):
            raw = numpy_helper.to_array(weight(m)).astype("<f4").tobytes()
            data = data_fn(raw) if data_fn else raw
            external(m, loc, offset, length, data, d / (file_name or loc) if file_name is not False else None)
        edits[label] = (edit, expect)

    ext("external data beside the model, read right", "w.bin", "any")
    ext("external data at offset 4096 with its length", "w_off.bin", "any", "4096", None,
        lambda raw: b"\x00" * 4096 + raw)
    ext("external data offset past the file", "w_past.bin", "refuse", "1000000")
    ext("external data length past the file", "w_len.bin", "refuse", "0", str(10 ** 6))
    ext("external data length 4 bytes short of the tensor", "w_short.bin", "refuse", "0", None,
        lambda raw: raw[:-4])
    ext("external data length given 4 bytes short", "w_short2.bin", "refuse", "0", "188")
    ext("external data offset '0x10'", "w_hex.bin", "refuse", "0x10")
    ext("external data offset '1e3'", "w_exp.bin", "refuse", "1e3")
    ext("external data offset ' 4'", "w_space.bin", "refuse", " 4")
    ext("external data location a file: URL", "file:///etc/hostname", "refuse", file_name=False)
    ext("external data location with a backslash", "..\\..\\" + SECRET_NAME, "refuse", file_name=False)
    ext("external data location empty", "", "refuse", file_name=False)
    ext("external data location the model's own folder name", "../onnx_cases/w.bin", "any", file_name="w.bin")

    def two_locations(m, d):
        external(m, "w2.bin", where=d / "w2.bin")
        weight(m).external_data.add(key="location", value="/etc/hostname")
    edits["external data naming two locations, the second absolute"] = (two_locations, "refuse")

    def sparse_initializer(m, d):
        t = weight(m)
        arr = numpy_helper.to_array(t)
        flat = arr.reshape(-1)
        idx = np.nonzero(flat)[0].astype(np.int64)
        values = numpy_helper.from_array(flat[idx].astype(np.float32), t.name)
        indices = numpy_helper.from_array(idx, t.name + "_idx")
        sp = onnx.SparseTensorProto(values=values, indices=indices, dims=list(arr.shape))
        m.graph.initializer.remove(t)
        m.graph.sparse_initializer.append(sp)
    edits["W a sparse initializer"] = (sparse_initializer, "any")

    def sparse_huge(m, d):
        sp = onnx.SparseTensorProto(values=numpy_helper.from_array(np.ones(1, np.float32), "big"),
                                    indices=numpy_helper.from_array(np.zeros(1, np.int64), "big_idx"),
                                    dims=[2 ** 31, 2 ** 31])
        m.graph.sparse_initializer.append(sp)
    edits["an unused sparse initializer of 2**62 elements"] = (sparse_huge, "any")

    def sparse_as_constant(m, d):
        sp = onnx.SparseTensorProto(values=numpy_helper.from_array(np.ones(1, np.float32), "c"),
                                    indices=numpy_helper.from_array(np.array([10 ** 12], np.int64), "c_idx"),
                                    dims=[2 ** 20, 2 ** 20])
        node = helper.make_node("Constant", [], ["sparse_c"], sparse_value=sp)
        m.graph.node.insert(0, node)
    edits["a Constant of a sparse value, its index past its dims"] = (sparse_as_constant, "any")

    def typed_input(kind):
        def edit(m, d):
            elem = helper.make_tensor_type_proto(TensorProto.FLOAT, None)
            if kind == "sequence":
                tp = helper.make_sequence_type_proto(elem)
            elif kind == "map":
                tp = helper.make_map_type_proto(TensorProto.STRING, elem)
            else:
                tp = helper.make_optional_type_proto(elem)
            m.graph.input[0].type.CopyFrom(tp)
        return edit

    for kind in ("sequence", "map", "optional"):
        edits[f"the graph input of {kind} type"] = (typed_input(kind), "refuse")

    def extra_seq_input(m, d):
        vi = helper.make_value_info("s", helper.make_sequence_type_proto(
            helper.make_tensor_type_proto(TensorProto.FLOAT, None)))
        m.graph.input.append(vi)
    edits["a second, unused graph input of sequence type"] = (extra_seq_input, "any")

    def nested(op: str, depth: int):
        def edit(m, d):
            out = m.graph.output[0].name
            producer = next(n for n in m.graph.node if out in n.output)
            producer.output[list(producer.output).index(out)] = out + "_pre"
            inner_out = "z"
            body = helper.make_graph([helper.make_node("Identity", [out + "_pre"], [inner_out])], "g0", [],
                                     [helper.make_tensor_value_info(inner_out, TensorProto.FLOAT, None)])
            leaf = body
            for i in range(depth):
                cond = f"cond{i}"
                node = helper.make_node("If", [cond], [f"r{i}"], then_branch=body, else_branch=leaf)
                body = helper.make_graph([helper.make_node("Constant", [], [cond],
                                                           value=numpy_helper.from_array(np.array(True))), node],
                                         f"g{i + 1}", [], [helper.make_tensor_value_info(f"r{i}", TensorProto.FLOAT,
                                                                                          None)])
            if op == "If":
                m.graph.node.append(helper.make_node("Constant", [], ["c_top"],
                                                     value=numpy_helper.from_array(np.array(True))))
                m.graph.node.append(helper.make_node("If", ["c_top"], [out], then_branch=body, else_branch=body))
            elif op == "Loop":
                lb = helper.make_graph(
                    [helper.make_node("Identity", ["cin"], ["cout"]), helper.make_node("Identity", ["v"], ["vout"])],
                    "loop", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                             helper.make_tensor_value_info("cin", TensorProto.BOOL, []),
                             helper.make_tensor_value_info("v", TensorProto.FLOAT, None)],
                    [helper.make_tensor_value_info("cout", TensorProto.BOOL, []),
                     helper.make_tensor_value_info("vout", TensorProto.FLOAT, None)])
                for i in range(depth):
                    lb = helper.make_graph(
                        [helper.make_node("Identity", ["cin"], ["cout"]),
                         helper.make_node("Loop", ["", "cin", "v"], ["vout"], body=lb)],
                        f"loop{i}", list(lb.input), list(lb.output))
                m.graph.initializer.extend([numpy_helper.from_array(np.array(2, np.int64), "trips"),
                                            numpy_helper.from_array(np.array(True), "go")])
                m.graph.node.append(helper.make_node("Loop", ["trips", "go", out + "_pre"], [out], body=lb))
            else:  # Scan
                sb = helper.make_graph([helper.make_node("Identity", ["s_in"], ["s_out"])], "scan",
                                       [helper.make_tensor_value_info("s_in", TensorProto.FLOAT, None)],
                                       [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, None)])
                for i in range(depth):
                    sb = helper.make_graph([helper.make_node("Scan", ["s_in"], ["s_out"], body=sb, num_scan_inputs=1)],
                                           f"scan{i}", list(sb.input), list(sb.output))
                m.graph.node.append(helper.make_node("Scan", [out + "_pre"], [out], body=sb, num_scan_inputs=1))
        return edit

    for op in ("If", "Loop", "Scan"):
        for depth in (10, 30):
            edits[f"{op} subgraphs nested {depth} deep after the LSTM"] = (nested(op, depth), "refuse")

    def dup_initializer(m, d):
        t = onnx.TensorProto()
        t.CopyFrom(weight(m))
        t.raw_data = np.zeros(numpy_helper.to_array(t).size, np.float32).tobytes()
        del t.float_data[:]
        m.graph.initializer.append(t)
    edits["W given twice as an initializer, the second zeros"] = (dup_initializer, "refuse")

    def dup_output(m, d):
        node = lstm(m)
        m.graph.node.append(helper.make_node("Identity", [m.graph.input[0].name], [node.output[0]]))
    edits["a second node writing the LSTM's output"] = (dup_output, "refuse")

    def dup_input(m, d):
        vi = onnx.ValueInfoProto()
        vi.CopyFrom(m.graph.input[0])
        m.graph.input.append(vi)
    edits["the graph input listed twice"] = (dup_input, "refuse")

    def dup_graph_output(m, d):
        vi = onnx.ValueInfoProto()
        vi.CopyFrom(m.graph.output[0])
        m.graph.output.append(vi)
    edits["the graph output listed twice"] = (dup_graph_output, "any")

    def shadow_lstm(m, d):
        f = helper.make_function("", "LSTM", ["X", "W", "R", "B", "S", "H", "C"], ["Y", "Yh", "Yc"],
                                 [helper.make_node("Identity", ["X"], ["Y"]), helper.make_node("Identity", ["X"], ["Yh"]),
                                  helper.make_node("Identity", ["X"], ["Yc"])], [helper.make_opsetid("", 17)])
        m.functions.append(f)
    edits["a local function named LSTM in the default domain"] = (shadow_lstm, "refuse")

    def training_info(m, d):
        ti = onnx.TrainingInfoProto()
        ti.algorithm.CopyFrom(helper.make_graph([helper.make_node("Identity", [weight(m).name], ["upd"])], "algo", [],
                                                [helper.make_tensor_value_info("upd", TensorProto.FLOAT, None)]))
        ti.update_binding.add(key=weight(m).name, value="upd")
        m.training_info.append(ti)
    edits["training_info rebinding W"] = (training_info, "any")

    def node_many_outputs(m, d):
        m.graph.node.append(helper.make_node("Split", [m.graph.input[0].name], [f"o{i}" for i in range(100000)],
                                             axis=0))
    edits["a Split of 100,000 unused outputs"] = (node_many_outputs, "any")

    for i, (label, (edit, expect)) in enumerate(edits.items()):
        sub = folder / f"e{i}"
        sub.mkdir(exist_ok=True)
        m = onnx.ModelProto()
        m.CopyFrom(base)
        edit(m, sub)
        src = sub / f"o{i}.onnx"
        src.write_bytes(m.SerializeToString())
        cases += _pair(K, label, src, sub, "torch", expect=expect, verify=expect == "any" and "external" in label)
    return cases


# -- .keras ------------------------------------------------------------------------------------------------------
def _zip_bytes(members: list[tuple[str, bytes]], mode: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            if mode and name in mode:
                info.external_attr = mode[name] << 16
                info.create_system = 3
            z.writestr(info, data)
    return buf.getvalue()


def keras_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "keras7"
    members = read_keras(K3_GRU)
    cfg = json.loads(members["config.json"])
    files: dict[str, tuple[bytes, str]] = {}
    files["members with data descriptors"] = (_with_descriptors(write_keras(folder / "tmp.keras", members).read_bytes(),
                                                                folder / "tmp2.keras").read_bytes(), "any")
    files["directory entries for assets/ and config.json/"] = (
        _zip_bytes([("assets/", b""), ("config.json/", b"")] + list(members.items())), "any")
    files["config.json a symlink entry to /etc/passwd"] = (
        _zip_bytes([("config.json", b"/etc/passwd")] + [(k, v) for k, v in members.items() if k != "config.json"],
                   {"config.json": 0o120777}), "refuse")
    files["model.weights.h5 a symlink entry"] = (
        _zip_bytes([(k, v) for k, v in members.items() if k != "model.weights.h5"] +
                   [("model.weights.h5", b"../../" + SECRET_NAME.encode())], {"model.weights.h5": 0o120777}), "refuse")
    files["config.json named ./config.json"] = (
        _zip_bytes([("./config.json" if k == "config.json" else k, v) for k, v in members.items()]), "refuse")
    files["metadata.json missing"] = (_zip_bytes([(k, v) for k, v in members.items() if k != "metadata.json"]), "any")
    files["model.weights.h5 missing"] = (_zip_bytes([(k, v) for k, v in members.items() if k != "model.weights.h5"]),
                                         "refuse")
    # a ZIP64 end record whose counts lie
    raw = bytearray(write_keras(folder / "z64.keras", members).read_bytes())
    eocd = raw.rfind(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack("<II", raw[eocd + 12:eocd + 20])
    z64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, 10 ** 12, 10 ** 12, cd_size, cd_off)
    loc = struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd, 1)
    end = bytearray(raw[eocd:])
    end[8:12] = b"\xff\xff\xff\xff"
    # zipfile (as Keras) walks the central directory by its size, not its count: read as Keras reads it
    files["a ZIP64 end record declaring 10**12 members"] = (bytes(raw[:eocd]) + z64 + loc + bytes(end), "any")

    def config_edit(edit) -> bytes:
        c = json.loads(json.dumps(cfg))
        edit(c)
        return write_keras(folder / "tmp3.keras", {**members, "config.json": json.dumps(c).encode()}).read_bytes()

    def first_layer(c, cls):
        return next(l for l in c["config"]["layers"] if l["class_name"] == cls)

    def set_in(cls, **kv):
        def edit(c):
            first_layer(c, cls).update(kv)
        return edit

    files["registered_name os>system on the GRU"] = (config_edit(set_in("GRU", registered_name="os>system")), "any")
    files["module os, class_name system"] = (config_edit(set_in("GRU", module="os", class_name="system")), "refuse")
    files["module builtins, class_name eval"] = (config_edit(set_in("GRU", module="builtins", class_name="eval")),
                                                 "refuse")
    files["module keras.layers, registered_name Custom>GRU"] = (
        config_edit(set_in("GRU", registered_name="Custom>GRU")), "any")
    files["build_config input_shape of 10**12 steps"] = (
        config_edit(set_in("GRU", build_config={"input_shape": [None, 10 ** 12, 3]})), "any")
    files["build_config input_shape of 60 dimensions"] = (
        config_edit(set_in("GRU", build_config={"input_shape": [1] * 60})), "any")
    files["build_config input_shape a string"] = (
        config_edit(set_in("GRU", build_config={"input_shape": "os.system('x')"})), "any")

    def compile_fn(c):
        c["compile_config"] = {"optimizer": "adam", "loss": {"module": "os", "class_name": "function",
                                                             "config": "system", "registered_name": "function"},
                               "metrics": [{"module": "builtins", "class_name": "function", "config": "eval"}]}
    files["compile_config with os.system as the loss"] = (config_edit(compile_fn), "any")

    def compile_lambda(c):
        c["compile_config"] = {"loss": {"class_name": "__lambda__", "config": {"code": "YQ==", "defaults": None,
                                                                               "closure": None}}}
    files["compile_config with a __lambda__ loss"] = (config_edit(compile_lambda), "any")

    def shared_object(c):
        gru = first_layer(c, "GRU")
        gru["config"]["kernel_initializer"] = {"class_name": "GlorotUniform", "config": {"seed": None},
                                               "shared_object_id": 140000000000}
        gru["config"]["activation"] = {"class_name": "function", "config": "tanh", "module": "keras.activations",
                                       "shared_object_id": 1}
    files["shared_object_id on an initializer and the activation"] = (config_edit(shared_object), "any")

    def activation_module(c):
        first_layer(c, "GRU")["config"]["activation"] = {"module": "os", "class_name": "function",
                                                         "config": "system", "registered_name": "function"}
    files["the GRU activation a function of os"] = (config_edit(activation_module), "refuse")

    def dtype_policy_module(c):
        first_layer(c, "GRU")["config"]["dtype"] = {"module": "os", "class_name": "DTypePolicy",
                                                    "config": {"name": "float32"}, "registered_name": None}
    files["the dtype policy object from module os"] = (config_edit(dtype_policy_module), "any")
    for i, (label, (data, expect)) in enumerate(files.items()):
        src = folder / f"k{i}.keras"
        src.write_bytes(data)
        cases += _pair(K, label, src, folder, "onnx", expect=expect, verify=expect == "any")
    return cases


# -- HDF5 ---------------------------------------------------------------------------------------------------------
def _h5(folder: Path, i: int, edit) -> Path:
    src = folder / f"h{i}.h5"
    shutil.copy(TINY, src)
    with h5py.File(src, "r+") as f:
        edit(f)
    return src


def h5_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "h5_7"

    def soft_cycle(f):
        del f["model_weights/lstm"]
        f["model_weights/lstm"] = h5py.SoftLink("/model_weights/lstm_b")
        f["model_weights/lstm_b"] = h5py.SoftLink("/model_weights/lstm")

    def soft_dangling(f):
        del f[_KERNEL]
        f[_KERNEL] = h5py.SoftLink("/nowhere/kernel")

    def soft_to_other(f):
        del f[_KERNEL]
        f[_KERNEL] = h5py.SoftLink("/" + _RECURRENT)

    def ext_self(f):
        del f[_KERNEL]
        f[_KERNEL] = h5py.ExternalLink(f.filename, "/" + _KERNEL)

    def ext_self_group(f):
        del f["model_weights/lstm"]
        f["model_weights/lstm"] = h5py.ExternalLink(os.path.basename(f.filename), "/model_weights")

    def retype(make):
        def edit(f):
            a = f[_KERNEL][()]
            del f[_KERNEL]
            make(f, a)
        return edit

    def array_dtype(f, a):
        f.create_dataset(_KERNEL, data=np.zeros(a.shape[0], dtype=np.dtype((np.float32, (a.shape[1],)))))

    def vlen_dtype(f, a):
        ds = f.create_dataset(_KERNEL, (a.shape[0],), dtype=h5py.vlen_dtype(np.float32))
        for i in range(a.shape[0]):
            ds[i] = a[i]

    edits = {
        "a soft link cycle in place of the layer group": (soft_cycle, "refuse"),
        "the kernel a dangling soft link": (soft_dangling, "refuse"),
        "the kernel a soft link to the recurrent kernel": (soft_to_other, "refuse"),
        "the kernel an external link to its own file": (ext_self, "refuse"),
        "the layer group an external link to its file's model_weights": (ext_self_group, "refuse"),
        # h5py reads an array dtype's elements as trailing axes (as Keras' load gets them): a (3, 16) kernel
        "the kernel of an array dtype": (retype(array_dtype), "any"),
        "the kernel of vlen float rows": (retype(vlen_dtype), "refuse"),
        "the kernel float16": (retype(lambda f, a: f.create_dataset(_KERNEL, data=a.astype(np.float16))), "any"),
        "the kernel float64": (retype(lambda f, a: f.create_dataset(_KERNEL, data=a.astype(np.float64))), "any"),
        "the kernel a scalar": (retype(lambda f, a: f.create_dataset(_KERNEL, data=np.float32(1))), "refuse"),
        "the kernel of HDF5's null dataspace": (retype(lambda f, a: f.create_dataset(_KERNEL, data=h5py.Empty("f4"))),
                                                "refuse"),
        "the kernel of shape (3, 0)": (retype(lambda f, a: f.create_dataset(_KERNEL, shape=(a.shape[0], 0),
                                                                            dtype="f4")), "refuse"),
        "the kernel transposed": (retype(lambda f, a: f.create_dataset(_KERNEL, data=a.T.copy())), "refuse"),
        "the kernel with one row more": (retype(lambda f, a: f.create_dataset(_KERNEL, data=np.vstack([a, a[:1]]))),
                                         "refuse"),
        "the kernel of a compound dtype": (retype(lambda f, a: f.create_dataset(
            _KERNEL, data=np.zeros(a.shape, dtype=[("re", "f4"), ("im", "f4")]))), "refuse"),
    }

    def ref_attr(kind):
        def edit(f):
            del f["model_weights"].attrs["layer_names"]
            if kind == "object":
                f["model_weights"].attrs.create("layer_names", [f["model_weights/lstm"].ref, f["/"].ref],
                                                dtype=h5py.ref_dtype)
            else:
                ds = f[_KERNEL]
                f["model_weights"].attrs.create("layer_names", [ds.regionref[0:1, 0:2]], dtype=h5py.regionref_dtype)
        return edit

    def wnames_ref(f):
        grp = f["model_weights/lstm"]
        del grp.attrs["weight_names"]
        grp.attrs.create("weight_names", [f[_KERNEL].ref, f[_RECURRENT].ref, f[_KERNEL].ref], dtype=h5py.ref_dtype)

    def config_ref(f):
        del f.attrs["model_config"]
        f.attrs.create("model_config", f["model_weights"].ref, dtype=h5py.ref_dtype)

    edits["layer_names object references"] = (ref_attr("object"), "refuse")
    edits["layer_names a region reference"] = (ref_attr("region"), "refuse")
    edits["weight_names object references"] = (wnames_ref, "refuse")
    edits["model_config an object reference"] = (config_ref, "refuse")
    for i, (label, (edit, expect)) in enumerate(edits.items()):
        src = _h5(folder, i, edit)
        cases += _pair(K, label, src, folder, "torch", expect=expect, verify=expect == "any")
    return cases


# -- the command line: outputs and configs -------------------------------------------------------------------
def cli_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "cli7"
    src = folder / "m.h5"
    shutil.copy(TINY, src)
    fifo = folder / "fifo.onnx"
    if not os.path.lexists(fifo):
        os.mkfifo(fifo)
    for to, out in (("onnx", fifo), ("torch", folder / "fifo_dir")):
        if to == "torch" and not os.path.lexists(out):
            os.mkfifo(out)
        cases.append(_case(K, f"-o a FIFO ({to})", _convert(src, to, out), src, expect="refuse", named=False))
        cases.append(_case(K, f"-o a FIFO --force ({to})", _convert(src, to, out, "--force"), src, expect="refuse",
                           named=False))
    dangling = folder / "dangling.onnx"
    if not os.path.lexists(dangling):
        dangling.symlink_to(folder / "nowhere" / "x.onnx")
    cases.append(_case(K, "-o a dangling symlink", _convert(src, "onnx", dangling), src, expect="refuse",
                       named=False))
    cases.append(_case(K, "-o a dangling symlink --force", _convert(src, "onnx", dangling, "--force"), src,
                       expect="any", named=False))
    dangling_t = folder / "dangling_t"
    if not os.path.lexists(dangling_t):
        dangling_t.symlink_to(folder / "nowhere2")
    cases.append(_case(K, "-o a dangling symlink (torch) --force", _convert(src, "torch", dangling_t, "--force"), src,
                       expect="any", named=False))
    ro = folder / "readonly"
    ro.mkdir(exist_ok=True)
    for to, name in (("onnx", "m.onnx"), ("torch", "m_torch"), ("keras", "m.keras")):
        cases.append(_case(K, f"-o a file in a read-only folder ({to})", _convert(src, to, ro / name), src,
                           output=ro / name, expect=_READ_ONLY, named=False))
    ro.chmod(0o555)
    real = folder / "real"
    real.mkdir(exist_ok=True)
    linked = folder / "linked"
    if not os.path.lexists(linked):
        linked.symlink_to(real)
    cases.append(_case(K, "-o through a symlinked parent", _convert(src, "onnx", linked / "m.onnx"), src,
                       output=linked / "m.onnx", expect="any", named=False))
    cases.append(_case(K, "-o through a symlinked parent (torch)", _convert(src, "torch", linked / "t"), src,
                       output=linked / "t", expect="any", importable=True, named=False))
    afile = folder / "afile"
    afile.write_bytes(b"x")
    cases.append(_case(K, "-o through a regular file", _convert(src, "onnx", afile / "m.onnx"), [src, afile],
                       output=afile / "m.onnx", expect="refuse", named=False))
    cases.append(_case(K, "-o a 300-character name", _convert(src, "onnx", folder / ("n" * 300 + ".onnx")), src,
                       expect="refuse", named=False))
    cases.append(_case(K, "-o a 300-character folder name (torch)", _convert(src, "torch", folder / ("d" * 300)), src,
                       expect="refuse", named=False))
    cases.append(_case(K, "-o a path under /proc/self/fd", _convert(src, "onnx", "/proc/self/fd/1"), src,
                       expect="refuse", named=False))
    cases.append(_case(K, "-o /dev/full", _convert(src, "onnx", "/dev/full", "--force"), src, expect="refuse",
                       named=False))
    # --config of the wrong kind
    weights = ROOT / "fixtures" / "models" / "k3_weights_only_lstm_hard_sigmoid.weights.h5"
    w = folder / "w.weights.h5"
    shutil.copy(weights, w)
    big = folder / "big.json"
    with open(big, "wb") as f:
        f.write(b'{"class_name": "Functional", "config": {"pad": "')
        f.write(b"x" * (80 << 20))
        f.write(b'"}}')
    binary = folder / "binary.json"
    binary.write_bytes(bytes(range(256)) * 1000)
    cfg_dir = folder / "cfgdir.json"
    cfg_dir.mkdir(exist_ok=True)
    for label, cfgp, named in (("--config of 80 MB", big, True), ("--config a binary file", binary, True),
                               ("--config a folder", cfg_dir, False), ("--config the weights file itself", w, False),
                               ("--config /dev/zero", Path("/dev/zero"), False),
                               ("--config a .keras of 80 MB config", None, True)):
        if cfgp is None:
            members = read_keras(K3_GRU)
            cfgp = write_keras(folder / "big_cfg.keras", {**members, "config.json": members["config.json"][:-1] +
                                                          b', "pad": "' + b"y" * (80 << 20) + b'"}'}, compress=True)
        cases.append(_case(K, f"{label} (inspect)", ["inspect", w, "--config", cfgp],
                           [w] + ([cfgp] if cfgp.is_file() and cfgp.stat().st_size < 1 << 30 else []),
                           expect="refuse", named=False))
        cases.append(_case(K, f"{label} (onnx)", _convert(w, "onnx", folder / f"cfg{len(cases)}.onnx", "--config",
                                                          cfgp), [w], output=folder / f"cfg{len(cases)}.onnx",
                           expect="refuse", named=False))
    # a state_dict description that is hostile
    st = folder / "sd.safetensors"
    from attacks import state_dict_file

    state_dict_file(st, lstm_keys("rnn"))
    desc = folder / "desc.json"
    desc.write_text(json.dumps({"layers": [{"prefix": "rnn.", "kind": "lstm", "module": "os.system"}]}))
    cases.append(_case(K, "a description naming module os.system", _convert(st, "onnx", folder / "d.onnx", "--config",
                                                                            desc), [st, desc], expect="any",
                       output=folder / "d.onnx", named=False))
    desc2 = folder / "desc2.json"
    desc2.write_text(json.dumps({"layers": [{"prefix": "rnn.", "kind": "lstm", "hidden_size": 10 ** 30}]}))
    cases.append(_case(K, "a description of hidden_size 10**30", _convert(st, "onnx", folder / "d2.onnx", "--config",
                                                                         desc2), [st, desc2], expect="refuse",
                       output=folder / "d2.onnx", named=False))
    return cases


# -- inspect / diff / verify / explain on hostile files ----------------------------------------------------------
def cmds_cases(folder: Path) -> list[Case]:
    import torch

    cases: list[Case] = []
    K = "cmds7"
    good_onnx = _written(folder, "onnx")
    good_torch = _written(folder, "torch") / "model.safetensors"
    tiny = folder / "tiny.h5"
    shutil.copy(TINY, tiny)
    # inspect --layer --gate -o into odd places
    fifo = folder / "gate.npz"
    if not os.path.lexists(fifo):
        os.mkfifo(fifo)
    dangling = folder / "dangling.npz"
    if not os.path.lexists(dangling):
        dangling.symlink_to(folder / "nowhere" / "g.npz")
    ro = folder / "ro"
    ro.mkdir(exist_ok=True)
    for label, out, extra, expect in (("a FIFO", fifo, [], "refuse"), ("a FIFO --force", fifo, ["--force"], "refuse"),
                                      ("a dangling symlink", dangling, [], "refuse"),
                                      ("a read-only folder", ro / "g.npz", [], _READ_ONLY),
                                      ("the input itself --force", tiny, ["--force"], "refuse"),
                                      ("a path through a file", tiny / "g.npz", [], "refuse")):
        cases.append(_case(K, f"inspect --gate -o {label}", ["inspect", tiny, "--layer", "lstm", "--gate", "forget",
                                                             "-o", out, *extra], tiny, expect=expect, named=False,
                           output=out if out not in (tiny, fifo, dangling) else None))
    ro.chmod(0o555)
    # hostile files of this round under diff, verify and explain
    sd = _torch_sd()
    hostile: dict[str, Path] = {}
    p = folder / "glob.pt"
    torch.save({**sd, "extra": "PLACEHOLDER_VALUE_0123456789"}, p)
    enc = b"PLACEHOLDER_VALUE_0123456789"
    old = b"X" + struct.pack("<I", len(enc)) + enc
    _zip_replace(p, p, lambda m: [(n, d.replace(old, b"cposix\nsystem\nX\x04\x00\x00\x00true\x85R", 1)
                                   if n.endswith("data.pkl") else d) for n, d in m])
    hostile["a .pt calling posix.system"] = p
    keys = lstm_keys("rnn")
    header, off = {}, 0
    for k, shape in keys.items():
        n = int(np.prod(shape)) * 4
        header[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    first = next(iter(header))
    p = folder / "overlap.safetensors"
    p.write_bytes(safetensors_bytes({**header, "extra": {"dtype": "F32", "shape": [4],
                                                         "data_offsets": header[first]["data_offsets"][:1] +
                                                         [header[first]["data_offsets"][0] + 16]}}, bytes(off)))
    hostile["overlapping safetensors"] = p
    import onnx
    from onnx import TensorProto

    m = onnx.load(str(good_onnx))
    w = next(t for t in m.graph.initializer if t.name == next(n for n in m.graph.node if n.op_type == "LSTM").input[1])
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="ext.bin")
    w.external_data.add(key="offset", value="999999")
    (folder / "ext.bin").write_bytes(b"\x00" * 64)
    p = folder / "ext_past.onnx"
    p.write_bytes(m.SerializeToString())
    hostile["ONNX external data past its file"] = p
    src = folder / "cycle.h5"
    shutil.copy(TINY, src)
    with h5py.File(src, "r+") as f:
        del f["model_weights/lstm"]
        f["model_weights/lstm"] = h5py.SoftLink("/model_weights/lstm_b")
        f["model_weights/lstm_b"] = h5py.SoftLink("/model_weights/lstm")
    hostile["an .h5 soft link cycle"] = src
    members = read_keras(K3_GRU)
    c = json.loads(members["config.json"])
    gru = next(l for l in c["config"]["layers"] if l["class_name"] == "GRU")
    gru.update(module="os", class_name="system")
    p = write_keras(folder / "os.keras", {**members, "config.json": json.dumps(c).encode()})
    hostile["a .keras layer of module os"] = p
    for label, bad in hostile.items():
        ref = good_torch if bad.suffix in (".pt", ".safetensors") else good_onnx
        cases.append(_case(K, f"diff good {label}", ["diff", ref, bad], [ref, bad], expect="refuse", named=False))
        cases.append(_case(K, f"diff {label} good", ["diff", bad, ref], [ref, bad], expect="refuse", named=False))
        cases.append(_case(K, f"diff {label} itself", ["diff", bad, bad], [bad], expect="refuse"))
        cases.append(_case(K, f"verify {label}", ["verify", bad, "--to", "onnx"], [bad], expect="refuse"))
        cases.append(_case(K, f"explain {label}", ["explain", bad], [bad], expect="refuse"))
        cases.append(_case(K, f"inspect --layer {label}", ["inspect", "--layer", "lstm", bad], [bad], expect="refuse"))
        cases.append(_case(K, f"verify --artifact onnx={label}", ["verify", tiny, "--to", "onnx", "--artifact",
                                                                  f"onnx={bad}"], [tiny, bad], expect="refuse",
                           named=False))
        plot = folder / f"plot_{bad.stem}.png"
        cases.append(_case(K, f"diff --plot {label}", ["diff", ref, bad, "--plot", plot], [ref, bad], output=plot,
                           expect="refuse", named=False))
    # verify's --inputs / --expected given this round's hostile files
    for label, bad in list(hostile.items())[:3]:
        cases.append(_case(K, f"verify --inputs {label}", ["verify", tiny, "--to", "onnx", "--inputs", bad],
                           [tiny, bad], expect="refuse", named=False))
        cases.append(_case(K, f"verify --expected {label}", ["verify", tiny, "--to", "onnx", "--expected", bad],
                           [tiny, bad], expect="refuse", named=False))
    return cases


def main() -> int:
    """``python tests/attacks_round7.py [--group NAME] [--match TEXT] [--json FILE]``: build and run every case."""
    import attack_run

    return attack_run.battery_main(build, run_case7, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
