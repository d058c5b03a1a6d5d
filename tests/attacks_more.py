"""More hostile inputs (red team, round 2): classes attacks.py does not build.

Same :class:`attacks.Case` contract and runner (attack_run.run_case); :func:`build` returns the cases.
Classes: ONNX graphs (cycles, duplicate names, huge dims, external data tricks, nested Loops),
PyTorch files (legacy pickle, zip tricks, odd tensors), zip container tricks, JSON value tricks,
HDF5 dtype/link tricks, weights with NaN/Inf or lying shapes, .gates manifests, .npz given to
verify, and outputs at odd places.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np

from attacks import (H5, K3, K3_GRU, MODELS, WEIGHTS_ONLY, WEIGHTS_ONLY_JSON, Case, edited_keras, h5_weights_copy,
                     layer, layers_of, read_keras, safetensors_bytes, state_dict_file, lstm_keys, write_keras,
                     first_dataset, replace_dataset)

ROOT = Path(__file__).resolve().parent.parent
KERAS1 = MODELS / "keras1_lstm.h5"
EXPECTED = ROOT / "fixtures" / "expected"


def _convert(src, to: str, out, *extra: str) -> list[str]:
    return ["convert", str(src), "--to", to, "-o", str(out), *extra]


def _refuse(klass: str, name: str, src: Path, folder: Path, *cmds: str, expect: str = "refuse") -> list[Case]:
    """``src`` under inspect and each ``--to`` in ``cmds``: refused in one line (or ``expect='any'``)."""
    cases = []
    for cmd in cmds or ("inspect", "onnx"):
        if cmd in ("inspect", "inspect --json", "verify", "explain"):
            argv = cmd.split() + [str(src)]
            cases.append(Case(klass, f"{name} ({cmd})", argv, inputs=[str(src)], expect=expect))
            continue
        out = folder / (f"out_{src.name}_{cmd}" + ("" if cmd in ("torch", "numpy") else f".{cmd}"))
        cases.append(Case(klass, f"{name} ({cmd})", _convert(src, cmd, out), inputs=[str(src)], output=str(out),
                          expect=expect, importable=cmd == "torch"))
    return cases


def build(folder: Path, groups: tuple[str, ...] | None = None) -> list[Case]:
    """Every case (or those of the builders named in ``groups``, e.g. ``("onnx", "npz")``)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    for make in (onnx_cases, torch_cases, zip_cases, json_cases, h5_cases, weight_cases, npz_cases, gates_cases,
                 output_cases2, command_cases):
        if groups is None or make.__name__.removesuffix("_cases").removesuffix("_cases2") in groups:
            cases += make(folder)
    return cases


# -- ONNX ---------------------------------------------------------------------------------------
def _onnx_lstm(folder: Path, name: str, edit=None) -> Path:
    """A tiny valid LSTM ONNX model (as gateport writes it), edited by ``edit(model)``."""
    import onnx

    base = folder / "base_lstm.onnx"
    if not base.exists():
        from converters.cli import main
        assert main(["-q", "convert", str(MODELS / "tiny_lstm.h5"), "--to", "onnx", "-o", str(base)]) == 0
    m = onnx.load(str(base))
    if edit:
        edit(m)
    dst = folder / name
    dst.write_bytes(m.SerializeToString())
    return dst


def onnx_cases(folder: Path) -> list[Case]:
    import onnx
    from onnx import TensorProto, helper

    cases: list[Case] = []
    K = "onnx"

    def cycle(m):
        g = m.graph
        n0 = g.node[0]
        n0.input[0] = g.node[-1].output[0]
    def dup_outputs(m):
        g = m.graph
        if len(g.node) > 1:
            g.node[1].output[0] = g.node[0].output[0]
    def dup_initializer(m):
        g = m.graph
        g.initializer.append(g.initializer[0])
    def huge_dims(m):
        t = m.graph.initializer[0]
        del t.dims[:]
        t.dims.extend([2 ** 40, 2 ** 40])
    def negative_dims(m):
        t = m.graph.initializer[0]
        del t.dims[:]
        t.dims.extend([-1, 4])
    def many_dims(m):
        t = m.graph.initializer[0]
        del t.dims[:]
        t.dims.extend([1] * 100)
    def ext_traversal(m, loc="../../../../etc/passwd"):
        t = m.graph.initializer[0]
        t.ClearField("raw_data")
        del t.float_data[:]
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value=loc)
    def ext_abs(m):
        ext_traversal(m, "/etc/hostname")
    def ext_dev(m):
        ext_traversal(m, "/dev/zero")
    def ext_fifo(m):
        ext_traversal(m, "fifo_ext")
    def ext_huge_len(m):
        ext_traversal(m, "ext.bin")
        m.graph.initializer[0].external_data.add(key="length", value=str(10 ** 15))
    def ext_neg_off(m):
        ext_traversal(m, "ext.bin")
        m.graph.initializer[0].external_data.add(key="offset", value="-5")
    def ext_self(m):
        ext_traversal(m, "ext_self.onnx")
    def ext_dir(m):
        ext_traversal(m, ".")
    def ext_symlink(m):
        ext_traversal(m, "ext_link.bin")
    def ext_nul(m):
        ext_traversal(m, "ext.bin\x00junk")
    def raw_short(m):
        t = m.graph.initializer[0]
        t.raw_data = t.raw_data[:5] if t.raw_data else b"\x00" * 5
        del t.float_data[:]
    def odd_dtype(m):
        m.graph.initializer[0].data_type = TensorProto.STRING
    def complex_dtype(m):
        m.graph.initializer[0].data_type = TensorProto.COMPLEX64
    def undefined_dtype(m):
        m.graph.initializer[0].data_type = 0
    def bad_opset(m):
        del m.opset_import[:]
        m.opset_import.add(domain="", version=10 ** 9)
    def no_opset(m):
        del m.opset_import[:]
    def custom_domain(m):
        m.graph.node[0].domain = "evil.domain"
    def names_inject(m):
        payload = 'x"""\nimport os;os.system("touch PWN")\n"""\x1b[31m\u202e'
        g = m.graph
        old = g.input[0].name
        g.input[0].name = payload
        for n in g.node:
            for i, v in enumerate(n.input):
                if v == old:
                    n.input[i] = payload
        g.node[0].name = payload
        g.name = payload
    def unknown_input(m):
        m.graph.node[0].input[0] = "nowhere"
    def huge_input_dim(m):
        d = m.graph.input[0].type.tensor_type.shape.dim
        d[-1].ClearField("dim_param")
        d[-1].dim_value = 2 ** 62
    def huge_time_dim(m):
        d = m.graph.input[0].type.tensor_type.shape.dim
        d[1].ClearField("dim_param")
        d[1].dim_value = 10 ** 12
    def attr_hidden_huge(m):
        for n in m.graph.node:
            for a in n.attribute:
                if a.name == "hidden_size":
                    a.i = 2 ** 40
    def attr_hidden_neg(m):
        for n in m.graph.node:
            for a in n.attribute:
                if a.name == "hidden_size":
                    a.i = -3
    def attr_wrong_type(m):
        for n in m.graph.node:
            for a in n.attribute:
                if a.name == "hidden_size":
                    a.type = onnx.AttributeProto.STRING
                    a.s = b"x"
    def attr_dup(m):
        for n in m.graph.node:
            for a in list(n.attribute):
                if a.name == "hidden_size":
                    b = n.attribute.add()
                    b.CopyFrom(a)
                    b.i = a.i + 1
    def activations_bad(m):
        for n in m.graph.node:
            if n.op_type == "LSTM":
                n.attribute.append(helper.make_attribute("activations", ["Sigmoid\n", "Tanh", "evil"]))
    def nested_loops(m):
        body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"])], "b",
                                 [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                  helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                                 [helper.make_tensor_value_info("c_out", TensorProto.BOOL, [])])
        for _ in range(30):
            loop = helper.make_node("Loop", ["", ""], [], body=body)
            body = helper.make_graph([loop, helper.make_node("Identity", ["c"], ["c_out"])], "b",
                                     list(body.input), list(body.output))
        m.graph.node.append(helper.make_node("Loop", ["", ""], [], body=body))
    def many_nodes(m):
        g = m.graph
        prev = g.input[0].name
        for i in range(30001):
            g.node.append(helper.make_node("Identity", [prev], [f"id{i}"]))
            prev = f"id{i}"
    def empty_graph(m):
        del m.graph.node[:]
    def no_outputs(m):
        del m.graph.output[:]
    def output_is_input(m):
        m.graph.output[0].name = m.graph.input[0].name
    def ir_version_huge(m):
        m.ir_version = 10 ** 6
    def functions(m):
        f = m.functions.add()
        f.name = "LSTM"
        f.domain = ""
    def sparse_init(m):
        s = m.graph.sparse_initializer.add()
        s.values.CopyFrom(helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))
        s.indices.CopyFrom(helper.make_tensor("i", TensorProto.INT64, [1], [10 ** 12]))
        s.dims.extend([10 ** 6, 10 ** 6])
    def nan_weights(m):
        t = m.graph.initializer[0]
        a = onnx.numpy_helper.to_array(t).copy()
        a.flat[0] = np.nan
        a.flat[-1] = np.inf
        t.CopyFrom(onnx.numpy_helper.from_array(a, t.name))

    (folder / "ext.bin").write_bytes(bytes(64))
    if not (folder / "fifo_ext").exists():
        os.mkfifo(folder / "fifo_ext")
    if not (folder / "ext_link.bin").exists():
        (folder / "ext_link.bin").symlink_to("/etc/hostname")
    edits = [cycle, dup_outputs, dup_initializer, huge_dims, negative_dims, many_dims, ext_traversal, ext_abs,
             ext_dev, ext_fifo, ext_huge_len, ext_neg_off, ext_dir, ext_symlink, ext_nul, raw_short,
             odd_dtype, complex_dtype, undefined_dtype, bad_opset, no_opset, custom_domain, unknown_input,
             huge_input_dim, huge_time_dim, attr_hidden_huge, attr_hidden_neg, attr_wrong_type, attr_dup,
             activations_bad, nested_loops, empty_graph, no_outputs, ir_version_huge, functions]
    for edit in edits:
        src = _onnx_lstm(folder, f"onnx_{edit.__name__}.onnx", edit)
        cases += _refuse(K, edit.__name__, src, folder, "inspect", "torch", expect="refuse")
    for edit in (ext_self, output_is_input, sparse_init):  # valid or harmless: the bytes read stay in the folder
        src = _onnx_lstm(folder, "ext_self.onnx" if edit is ext_self else f"onnx_{edit.__name__}.onnx", edit)
        cases += _refuse(K, edit.__name__, src, folder, "inspect", "torch", expect="any")
    for edit in (names_inject, nan_weights, many_nodes):
        src = _onnx_lstm(folder, f"onnx_{edit.__name__}.onnx", edit)
        cases += _refuse(K, edit.__name__, src, folder, "inspect", "torch", "keras", "verify", expect="any")
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + os.urandom(2000))
    cases += _refuse(K, "random protobuf bytes", garbage, folder, "inspect")
    deep = folder / "deep.onnx"  # nested messages 100k deep: protobuf recursion limit
    payload = b""
    for _ in range(3000):
        payload = b"\x3a" + _varint(len(payload)) + payload  # field 7 (graph), length-delimited
    deep.write_bytes(b"\x08\x07" + payload)
    cases += _refuse(K, "protobuf nested 3000 deep", deep, folder, "inspect")
    return cases


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


# -- PyTorch ----------------------------------------------------------------------------------------
def torch_cases(folder: Path) -> list[Case]:
    import torch

    cases: list[Case] = []
    K = "torch"
    lstm = torch.nn.LSTM(3, 4)
    sd = {f"rnn.{k}": v for k, v in lstm.state_dict().items()}
    legacy = folder / "legacy.pt"
    torch.save(sd, legacy, _use_new_zipfile_serialization=False)
    cases += _refuse(K, "legacy (non-zip) torch.save", legacy, folder, "inspect", "onnx", expect="any")
    good = folder / "good.pt"
    torch.save(sd, good)
    members = read_keras(good)
    # zip member named with ../, duplicate data.pkl, symlink entry, encrypted flag
    def variant(name, change):
        dst = folder / name
        m = dict(members)
        change(m)
        write_keras(dst, m)
        return dst
    pkl = next(n for n in members if n.endswith("data.pkl"))
    evil = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    cases += _refuse(K, "zip .pt with os.system pickle", variant("evil_zip.pt", lambda m: m.update({pkl: evil})),
                     folder, "inspect")
    cases += _refuse(K, "legacy .pt os.system pickle (.pth)", _write(folder / "evil.pth", evil), folder, "inspect")
    cases += _refuse(K, "legacy .bin os.system pickle", _write(folder / "evil.bin", evil), folder, "inspect")
    cases += _refuse(K, ".pt traversal member", variant("trav.pt", lambda m: m.update({"../../x": b"x"})), folder,
                     "inspect", expect="any")
    big = {k: v for k, v in sd.items()}
    big_storage = folder / "storage_lie.pt"
    torch.save(big, big_storage)
    storage_lie = folder / "storage_short.pt"
    m = read_keras(big_storage)
    for n in list(m):
        if "/data/" in n:
            m[n] = m[n][:3]
    write_keras(storage_lie, m)
    cases += _refuse(K, "storages shorter than the tensors", storage_lie, folder, "inspect", "onnx")
    # odd tensors
    for label, value in [("complex", torch.zeros(16, 3, dtype=torch.complex64)), ("int", torch.zeros(16, 3, dtype=torch.int64)),
                         ("bool", torch.zeros(16, 3, dtype=torch.bool)), ("0-d", torch.tensor(1.0)),
                         ("quantized", torch.quantize_per_tensor(torch.zeros(16, 3), 0.1, 0, torch.qint8)),
                         ("sparse", torch.zeros(16, 3).to_sparse()), ("meta", torch.empty(16, 3, device="meta")),
                         ("nan", torch.full((16, 3), float("nan"))), ("expanded", torch.zeros(1, 3).expand(10 ** 7, 3)),
                         ("nested", {"a": {"b": {"c": [1, 2, {"d": torch.zeros(3)}]}}}), ("string", "x" * 100),
                         ("f8", torch.zeros(16, 3, dtype=torch.float8_e4m3fn) if hasattr(torch, "float8_e4m3fn") else torch.zeros(1)),
                         ("bf16", torch.zeros(16, 3, dtype=torch.bfloat16))]:
        d = dict(sd)
        d["rnn.weight_ih_l0"] = value
        dst = folder / f"odd_{label}.pt"
        try:
            torch.save(d, dst)
        except Exception:
            continue
        cases += _refuse(K, f"weight_ih {label}", dst, folder, "inspect", "onnx", expect="any")
    # deeply nested dict
    d: dict = {}
    cur = d
    for _ in range(5000):
        cur["a"] = {}
        cur = cur["a"]
    dst = folder / "deep_dict.pt"
    try:
        torch.save(d, dst)
        cases += _refuse(K, "dict nested 5000 deep", dst, folder, "inspect")
    except RecursionError:
        pass
    # keys with odd text
    for i, key in enumerate(['x"""\nimport os\n"""', "\x1b[2J\u202erev", "a" * 100000, "", "weight_ih_l0",
                             "rnn.weight_ih_l99999999999999999999"]):
        d = {key + k[len("rnn."):] if key != "weight_ih_l0" else k: v for k, v in sd.items()} if key != "rnn.weight_ih_l99999999999999999999" else {key: sd["rnn.weight_ih_l0"]}
        dst = folder / f"odd_key_{i}.pt"
        torch.save(d, dst)
        cases += _refuse(K, f"odd key {i}", dst, folder, "inspect", "torch", expect="any")
    # many modules
    d = {}
    for i in range(3000):
        for k, v in lstm.state_dict().items():
            d[f"m{i}.{k}"] = v
    dst = folder / "many_modules.pt"
    torch.save(d, dst)
    cases += _refuse(K, "3000 LSTM modules", dst, folder, "inspect", expect="any")
    # --config description hostile
    desc_cases = {"deep": "[" * 100000 + "]" * 100000, "nan": '{"layers": [{"prefix": "rnn.", "kind": "lstm", "hidden_size": NaN}]}',
                  "huge": '{"layers": [{"prefix": "rnn.", "kind": "lstm", "hidden_size": 1e400}]}',
                  "dupkeys": '{"layers": [{"prefix": "rnn.", "kind": "lstm", "kind": "gru"}]}',
                  "unknownkey": '{"layers": [{"prefix": "rnn.", "__class__": "x"}]}',
                  "badtype": '{"layers": "x"}', "list": '[1,2,3]', "bom": '\ufeff{"layers": []}',
                  "notutf8": b'{"layers": [{"prefix": "\xff\xfe"}]}'}
    for label, text in desc_cases.items():
        p = folder / f"desc_{label}.json"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        out = folder / f"out_desc_{label}.onnx"
        cases.append(Case(K, f"--config description {label}", _convert(good, "onnx", out, "--config", str(p)),
                          inputs=[str(good), str(p)], output=str(out), expect="any"))
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- zip container tricks ----------------------------------------------------------------------
def zip_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "zip"
    members = read_keras(K3)
    # duplicate config.json: first benign, second different
    dup = folder / "dup_config.keras"
    with zipfile.ZipFile(dup, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z.writestr("config.json", b"{}")
    cases += _refuse(K, "duplicate config.json", dup, folder, "inspect", "onnx", expect="any")
    # encryption flag set on every member
    enc = folder / "encrypted.keras"
    data = bytearray(write_keras(folder / "enc_src.keras", members).read_bytes())
    _set_flags(data, 0x1)
    enc.write_bytes(bytes(data))
    cases += _refuse(K, "encryption flag", enc, folder, "inspect")
    # data descriptor flag, sizes zero in local headers
    dd = folder / "descriptor.keras"
    with zipfile.ZipFile(dd, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            with z.open(n, "w") as f:
                f.write(d)
    cases += _refuse(K, "deflated members", dd, folder, "inspect", "onnx", expect="any")
    # compressed size lies (central directory says small, local header big)
    lie = folder / "size_lie.keras"
    raw = bytearray((folder / "enc_src.keras").read_bytes())
    _patch_central(raw, "model.weights.h5", file_size=10 ** 9)
    lie.write_bytes(bytes(raw))
    cases += _refuse(K, "central size 1e9 for weights", lie, folder, "inspect", "onnx")
    lie2 = folder / "size_lie_small.keras"
    raw = bytearray((folder / "enc_src.keras").read_bytes())
    _patch_central(raw, "model.weights.h5", file_size=100, compress_size=100)
    lie2.write_bytes(bytes(raw))
    cases += _refuse(K, "central size 100 for weights", lie2, folder, "inspect")
    lie3 = folder / "size_lie_cfg.keras"
    raw = bytearray((folder / "enc_src.keras").read_bytes())
    _patch_central(raw, "config.json", file_size=2 ** 32 - 1, compress_size=2 ** 32 - 1)
    lie3.write_bytes(bytes(raw))
    cases += _refuse(K, "central size 4 GiB config.json", lie3, folder, "inspect")
    # overlapping entries: two names, one offset
    ov = folder / "overlap.keras"
    raw = bytearray((folder / "enc_src.keras").read_bytes())
    _patch_central(raw, "metadata.json", offset_of="config.json")
    ov.write_bytes(bytes(raw))
    cases += _refuse(K, "metadata.json points at config.json's bytes", ov, folder, "inspect", expect="any")
    # symlink entry (unix mode in external attributes)
    sl = folder / "symlink_member.keras"
    with zipfile.ZipFile(sl, "w") as z:
        for n, d in members.items():
            info = zipfile.ZipInfo(n)
            if n == "model.weights.h5":
                info.external_attr = (0o120777 << 16)
                d = b"/etc/passwd"
            z.writestr(info, d)
    cases += _refuse(K, "weights member is a symlink entry", sl, folder, "inspect", "onnx")
    # zip64 end record lying about entry count
    z64 = folder / "zip64_lie.keras"
    raw = bytearray((folder / "enc_src.keras").read_bytes())
    eocd = raw.rfind(b"PK\x05\x06")
    raw[eocd + 8:eocd + 12] = struct.pack("<HH", 0xFFFF, 0xFFFF)
    raw[eocd + 12:eocd + 20] = struct.pack("<II", 0xFFFFFFFF, 0xFFFFFFFF)
    z64.write_bytes(bytes(raw))
    cases += _refuse(K, "EOCD says zip64 but none follows", z64, folder, "inspect")
    # members that are folders named like the files
    dirs = folder / "dir_members.keras"
    with zipfile.ZipFile(dirs, "w") as z:
        z.writestr("config.json/", b"")
        z.writestr("model.weights.h5/", b"")
        z.writestr("metadata.json", members["metadata.json"])
    cases += _refuse(K, "config.json is a folder entry", dirs, folder, "inspect")
    # name that is not UTF-8 / with NUL
    nul = folder / "nul_name.keras"
    with zipfile.ZipFile(nul, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
        z.writestr("a\x00b", b"x")
    cases += _refuse(K, "member name with NUL", nul, folder, "inspect", expect="any")
    # nested archive: .keras whose weights is itself a zip
    nest = folder / "nested_zip.keras"
    m = dict(members)
    m["model.weights.h5"] = (folder / "enc_src.keras").read_bytes()
    write_keras(nest, m)
    cases += _refuse(K, "weights member is a zip", nest, folder, "inspect", "onnx")
    # unsupported compression method (bzip2/lzma) and an unknown one
    for label, method in [("bzip2", zipfile.ZIP_BZIP2), ("lzma", zipfile.ZIP_LZMA)]:
        dst = folder / f"method_{label}.keras"
        write_keras(dst, members, compress=False)
        with zipfile.ZipFile(dst, "w", method) as z:
            for n, d in members.items():
                z.writestr(n, d)
        cases += _refuse(K, f"{label} members", dst, folder, "inspect", expect="any")
    raw = bytearray((folder / "enc_src.keras").read_bytes())
    _set_method(raw, 99)
    (folder / "method_99.keras").write_bytes(bytes(raw))
    cases += _refuse(K, "compression method 99", folder / "method_99.keras", folder, "inspect")
    # CRC mismatch
    raw = bytearray((folder / "enc_src.keras").read_bytes())
    i = raw.find(b"\x89HDF")
    raw[i + 5000] ^= 0xFF
    (folder / "crc.keras").write_bytes(bytes(raw))
    cases += _refuse(K, "weights bytes not matching their CRC", folder / "crc.keras", folder, "inspect", "onnx")
    # prepended junk (self-extracting style) and appended junk
    (folder / "prepended.keras").write_bytes(b"MZ" + bytes(5000) + (folder / "enc_src.keras").read_bytes())
    cases += _refuse(K, "5 KB before the zip", folder / "prepended.keras", folder, "inspect", expect="any")
    return cases


def _central_entries(raw: bytearray):
    """(offset of each central directory header, its name)."""
    pos = raw.find(b"PK\x01\x02")
    while pos != -1:
        n, e, c = struct.unpack("<HHH", raw[pos + 28:pos + 34])
        yield pos, bytes(raw[pos + 46:pos + 46 + n]).decode("utf-8", "replace")
        pos = raw.find(b"PK\x01\x02", pos + 46 + n + e + c)


def _patch_central(raw: bytearray, name: str, file_size=None, compress_size=None, offset_of=None) -> None:
    entries = dict((n, p) for p, n in _central_entries(raw))
    p = entries[name]
    if file_size is not None:
        raw[p + 24:p + 28] = struct.pack("<I", file_size)
    if compress_size is not None:
        raw[p + 20:p + 24] = struct.pack("<I", compress_size)
    if offset_of is not None:
        raw[p + 42:p + 46] = raw[entries[offset_of] + 42:entries[offset_of] + 46]


def _set_flags(raw: bytearray, flag: int) -> None:
    for p, _ in list(_central_entries(raw)):
        f = struct.unpack("<H", raw[p + 8:p + 10])[0]
        raw[p + 8:p + 10] = struct.pack("<H", f | flag)
    pos = raw.find(b"PK\x03\x04")
    while pos != -1:
        f = struct.unpack("<H", raw[pos + 6:pos + 8])[0]
        raw[pos + 6:pos + 8] = struct.pack("<H", f | flag)
        pos = raw.find(b"PK\x03\x04", pos + 4)


def _set_method(raw: bytearray, method: int) -> None:
    for p, _ in list(_central_entries(raw)):
        raw[p + 10:p + 12] = struct.pack("<H", method)
    pos = raw.find(b"PK\x03\x04")
    while pos != -1:
        raw[pos + 8:pos + 10] = struct.pack("<H", method)
        pos = raw.find(b"PK\x03\x04", pos + 4)


# -- JSON values ------------------------------------------------------------------------------
def json_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "json"
    base = read_keras(K3)["config.json"].decode()
    texts = {
        "bom": "\ufeff" + base,
        "utf16": base.encode("utf-16"),
        "latin1 byte": base.replace('"bidirectional"', '"bi\xffdir"').encode("latin1", "replace"),
        "huge number units": base.replace('"units": 4', '"units": 1e400', 1),
        "negative zero units": base.replace('"units": 4', '"units": -0', 1),
        "units 4.0": base.replace('"units": 4', '"units": 4.0', 1),
        "units huge int": base.replace('"units": 4', '"units": ' + "9" * 5000, 1),
        "dup keys class_name": base.replace('"class_name": "LSTM"', '"class_name": "LSTM", "class_name": "Lambda"', 1),
        "long string 10MB": base.replace('"bidirectional"', '"' + "b" * (10 << 20) + '"'),
        "many layers keys": base[:-1] + ', ' + ", ".join(f'"k{i}": 0' for i in range(200000)) + "}",
        "trailing garbage": base + "\x00garbage",
        "two documents": base + base,
        "lone surrogate name": base.replace('"bidirectional"', '"\\ud800x"'),
        "name with nul": base.replace('"bidirectional"', '"a\\u0000b"'),
        "empty object": "{}",
        "null": "null",
        "string": '"x"',
        "number": "1e999",
    }
    for label, text in texts.items():
        m = read_keras(K3)
        m["config.json"] = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        src = write_keras(folder / f"json_{label.replace(' ', '_')}.keras", m)
        cases += _refuse(K, label, src, folder, "inspect", "torch", expect="any")
    # metadata.json and weights-only --config tricks
    for label, text in {"metadata deep": "[" * 100000 + "]" * 100000, "metadata list": "[]",
                        "metadata huge": '{"keras_version": "' + "3" * (70 << 20) + '"}'}.items():
        m = read_keras(K3)
        m["metadata.json"] = text.encode()
        src = write_keras(folder / f"meta_{label.replace(' ', '_')}.keras", m)
        cases += _refuse(K, label, src, folder, "inspect", expect="any")
    cfg = json.loads(WEIGHTS_ONLY_JSON.read_text())
    for label, text in {"config layers 1e6": _many_layers(cfg, 10 ** 6), "config NaN units": WEIGHTS_ONLY_JSON.read_text().replace('"units": ', '"units": NaN, "x": ', 1),
                        "config is a directory": None, "config is /dev/zero": "/dev/zero"}.items():
        if text is None:
            p = folder
        elif text.startswith("/dev/"):
            p = Path(text)
        else:
            p = folder / f"cfg_{label.replace(' ', '_')}.json"
            p.write_text(text)
        out = folder / f"out_cfg_{label.replace(' ', '_')}.onnx"
        cases.append(Case(K, f"weights-only --config {label}", _convert(WEIGHTS_ONLY, "onnx", out, "--config", str(p)),
                          inputs=[str(WEIGHTS_ONLY)], output=str(out)))
    return cases


def _many_layers(cfg: dict, n: int) -> str:
    cfg = json.loads(json.dumps(cfg))
    inner = cfg.get("config", cfg)
    layers = inner.get("layers")
    if isinstance(layers, list) and layers:
        extra = {"class_name": "Dropout", "config": {"name": "d", "rate": 0.0}}
        inner["layers"] = layers + [extra] * n
    return json.dumps(cfg)


# -- HDF5 ------------------------------------------------------------------------------------
def h5_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "hdf5"

    def soft_loop(f):
        f["loop_a"] = h5py.SoftLink("/loop_b")
        f["loop_b"] = h5py.SoftLink("/loop_a")
        name = first_dataset(f, "vars")
        del f[name]
        f[name] = h5py.SoftLink("/loop_a")
    def hard_cycle(f):
        g = f.require_group("layers")
        g["cycle"] = g
    def ext_link(f):
        name = first_dataset(f, "vars")
        del f[name]
        f[name] = h5py.ExternalLink("/etc/passwd", "/x")
    def compound(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, shape=shape, dtype=np.dtype([("a", "<f4"), ("b", "<f4")]))
    def vlen(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, shape=shape, dtype=h5py.vlen_dtype("f4"))
    def strings(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, shape=shape, dtype=h5py.string_dtype())
    def int_dtype(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, data=np.zeros(shape, "i8"))
    def f16be(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, data=np.zeros(shape, ">f8"))
    def scalar(f):
        name = first_dataset(f, "vars")
        replace_dataset(f, name, data=np.float32(1))
    def empty_ds(f):
        name = first_dataset(f, "vars")
        replace_dataset(f, name, shape=None, dtype="f4")
    def absurd_chunk(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, shape=shape, dtype="f4", chunks=(1,) * len(shape), maxshape=(None,) * len(shape))
    def scaleoffset(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, data=np.ones(shape, "f4"), chunks=True, scaleoffset=2)
    def gzip_weights(f):
        name = first_dataset(f, "vars")
        data = f[name][()]
        replace_dataset(f, name, data=data, compression="gzip", shuffle=True, fletcher32=True)
    def huge_attr(f):
        f.attrs.create("junk", np.zeros(7000, "f8"))
    def ref_dtype(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, shape=shape, dtype=h5py.ref_dtype)
    def nan_weights(f):
        name = first_dataset(f, "vars")
        a = f[name][()]
        a.flat[0] = np.nan
        a.flat[-1] = np.inf
        f[name][...] = a
    def wrong_shape(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        replace_dataset(f, name, data=np.zeros(tuple(s + 1 for s in shape), "f4"))
    def missing_ds(f):
        name = first_dataset(f, "vars")
        del f[name]
    def extra_ds(f):
        name = first_dataset(f, "vars")
        g = f[name].parent
        g.create_dataset("99", data=np.zeros(3, "f4"))
    for edit in (soft_loop, hard_cycle, ext_link, compound, vlen, strings, ref_dtype, empty_ds, scalar,
                 wrong_shape, missing_ds):
        src = h5_weights_copy(folder / f"h5_{edit.__name__}.keras", edit)
        cases += _refuse(K, f".keras weights {edit.__name__}", src, folder, "inspect", "onnx")
    for edit in (int_dtype, f16be, absurd_chunk, scaleoffset, gzip_weights, huge_attr, nan_weights, extra_ds):
        src = h5_weights_copy(folder / f"h5_{edit.__name__}.keras", edit)
        cases += _refuse(K, f".keras weights {edit.__name__}", src, folder, "inspect", "onnx", "torch", expect="any")

    # full .h5 (Keras 2) and Keras 1 .h5 edits
    def h5_copy(src: Path, name: str, edit) -> Path:
        dst = folder / name
        shutil.copy(src, dst)
        with h5py.File(dst, "r+") as f:
            edit(f)
        return dst
    def cfg_attr(value):
        def edit(f):
            f.attrs["model_config"] = value
        return edit
    def weights_names_lie(f):
        g = f["model_weights"]
        for k in g:
            names = g[k].attrs.get("weight_names")
            if names is not None and len(names):
                g[k].attrs["weight_names"] = np.array([b"../../../etc/passwd"] + [n if isinstance(n, bytes) else n.encode() for n in names[1:]])
                break
    def layer_names_lie(f):
        f["model_weights"].attrs["layer_names"] = np.array([b"nope\n\x1b[31m"] * 3)
    def layer_names_int(f):
        f["model_weights"].attrs["layer_names"] = np.arange(5)
    def cfg_bytes_array(f):
        f.attrs["model_config"] = np.array([1, 2, 3])
    def cfg_vlen(f):
        f.attrs.create("model_config", np.array(["{}", "{}"], dtype=h5py.string_dtype()))
    def inbound_cycle(f):
        cfg = json.loads(f.attrs["model_config"])
        ls = cfg["config"]["layers"]
        if len(ls) >= 2 and ls[0].get("inbound_nodes") is not None:
            ls[0]["inbound_nodes"] = [[[ls[-1]["name"], 0, 0, {}]]]
            ls[0]["class_name"] = "Dense" if ls[0]["class_name"] == "InputLayer" else ls[0]["class_name"]
        f.attrs["model_config"] = json.dumps(cfg)
    def self_loop(f):
        cfg = json.loads(f.attrs["model_config"])
        ls = cfg["config"]["layers"]
        ls[1]["inbound_nodes"] = [[[ls[1]["name"], 0, 0, {}]]]
        f.attrs["model_config"] = json.dumps(cfg)
    def node_index_huge(f):
        cfg = json.loads(f.attrs["model_config"])
        ls = cfg["config"]["layers"]
        ls[1]["inbound_nodes"] = [[[ls[0]["name"], 10 ** 12, -5, {}]]]
        f.attrs["model_config"] = json.dumps(cfg)
    def dup_layer_names(f):
        cfg = json.loads(f.attrs["model_config"])
        ls = cfg["config"]["layers"]
        ls[1]["name"] = ls[1]["config"]["name"] = ls[0]["name"]
        for entry in cfg["config"]["output_layers"]:
            entry[0] = ls[0]["name"]
        f.attrs["model_config"] = json.dumps(cfg)
    def dup_seq_names(f):
        cfg = json.loads(f.attrs["model_config"])
        ls = cfg["config"]["layers"]
        ls[-1]["config"]["name"] = ls[-2]["config"]["name"]
        f.attrs["model_config"] = json.dumps(cfg)
    def bidi_mismatch(f):
        cfg = json.loads(f.attrs["model_config"])
        for l in cfg["config"]["layers"]:
            if l["class_name"] == "Bidirectional":
                l["config"]["backward_layer"] = {"class_name": "GRU", "config": dict(l["config"]["layer"]["config"], go_backwards=True, units=7)}
        f.attrs["model_config"] = json.dumps(cfg)
    sources = {"h5": H5, "bidir": MODELS / "bidir_lstm_return_state.h5", "k1": KERAS1}
    edits = [(cfg_attr("{" * 10), "h5"), (cfg_attr("[" * 100000), "h5"), (cfg_attr(b"\xff\xfe"), "h5"),
             (cfg_attr(np.void(b"abc")), "h5"), (weights_names_lie, "h5"), (layer_names_lie, "h5"),
             (layer_names_int, "h5"), (cfg_bytes_array, "h5"), (cfg_vlen, "h5"), (inbound_cycle, "bidir"),
             (self_loop, "bidir"), (node_index_huge, "bidir"), (dup_layer_names, "bidir"), (bidi_mismatch, "bidir"), (dup_seq_names, "h5"),
             (weights_names_lie, "k1"), (layer_names_lie, "k1"), (cfg_attr("null"), "k1"), (layer_names_int, "k1")]
    for i, (edit, which) in enumerate(edits):
        src = h5_copy(sources[which], f"h5full_{i}_{which}.h5", edit)
        label = getattr(edit, "__name__", "cfg")
        cases += _refuse(K, f"{which} {label}[{i}]", src, folder, "inspect", "torch", expect="any")
    # user block with garbage and HDF5 behind a zip
    ub = folder / "userblock.h5"
    ub.write_bytes(b"PK\x03\x04" + bytes(508) + H5.read_bytes())
    cases += _refuse(K, "zip magic then HDF5 at 512", ub, folder, "inspect", expect="any")
    return cases


# -- weights (values) -------------------------------------------------------------------------
def weight_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "weights"
    for label, fill in [("nan", np.nan), ("inf", np.inf), ("huge", 3e38)]:
        src = folder / f"st_{label}.safetensors"
        keys = lstm_keys("rnn")
        header, off, chunks = {}, 0, []
        for k, shape in keys.items():
            data = np.full(shape, fill, "<f4").tobytes()
            header[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + len(data)]}
            off += len(data)
            chunks.append(data)
        src.write_bytes(safetensors_bytes(header, b"".join(chunks)))
        cases += _refuse(K, f"state dict all {label}", src, folder, "inspect", "torch", "onnx", "verify", expect="any")
    # safetensors dtype tricks
    for label, dtype in [("F64", "F64"), ("BF16", "BF16"), ("I8", "I8"), ("BOOL", "BOOL"), ("F8_E4M3", "F8_E4M3"),
                         ("unknown", "Q4"), ("lower", "f32"), ("nonstring", 5)]:
        src = folder / f"st_dtype_{label}.safetensors"
        header = {}
        off = 0
        for k, shape in lstm_keys("rnn").items():
            n = int(np.prod(shape)) * 4
            header[k] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
        src.write_bytes(safetensors_bytes(header, bytes(off)))
        cases += _refuse(K, f"safetensors dtype {label}", src, folder, "inspect", "onnx", expect="any")
    for label, head in [("header not object", b"[1,2]"), ("header entry not object", b'{"a": 1}'),
                        ("metadata not strings", b'{"__metadata__": {"a": 1}}'),
                        ("metadata list", b'{"__metadata__": [1]}'), ("empty header", b"{}"),
                        ("header len past end", None), ("header invalid utf8", b'{"\xff": 1}'),
                        ("dup keys", b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'),
                        ("extra entry fields", b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": "y"}}'),
                        ("gap in data", b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}')]:
        src = folder / f"st_head_{label.replace(' ', '_')}.safetensors"
        if head is None:
            src.write_bytes(struct.pack("<Q", 1000) + b"{}")
        else:
            src.write_bytes(struct.pack("<Q", len(head)) + head + bytes(8))
        cases += _refuse(K, f"safetensors {label}", src, folder, "inspect", expect="any")
    # shapes lying between config and weights (keras-weights + --config)
    cfg = json.loads(WEIGHTS_ONLY_JSON.read_text())
    text = json.dumps(cfg)
    for label, new in [("units 5", text.replace('"units": 4', '"units": 5', 1)),
                       ("units 0", text.replace('"units": 4', '"units": 0', 1)),
                       ("input dim 1e9", None)]:
        if new is None:
            c = json.loads(text)
            inner = c.get("config", c)
            for l in inner.get("layers", []):
                if l["class_name"] == "InputLayer":
                    key = "batch_shape" if "batch_shape" in l["config"] else "batch_input_shape"
                    l["config"][key] = [None, 10 ** 9, 10 ** 9]
            new = json.dumps(c)
        p = folder / f"cfg_lie_{label.replace(' ', '_')}.json"
        p.write_text(new)
        out = folder / f"out_cfg_lie_{label.replace(' ', '_')}.onnx"
        cases.append(Case(K, f"weights-only config {label}", _convert(WEIGHTS_ONLY, "onnx", out, "--config", str(p)),
                          inputs=[str(WEIGHTS_ONLY), str(p)], output=str(out), expect="any"))
    return cases


# -- .npz given to verify ----------------------------------------------------------------------
def npz_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "npz"
    model = MODELS / "tiny_lstm.h5"
    exp = np.load(EXPECTED / "tiny_lstm.npz")
    x = exp[[k for k in exp.files if k.startswith("in:")][0]]
    in_key = [k for k in exp.files if k.startswith("in:")][0]
    variants = {
        "string inputs": {in_key: np.array([["a"]])},
        "complex inputs": {in_key: x.astype(np.complex64)},
        "structured inputs": {in_key: np.zeros(x.shape, dtype=[("a", "f4")])},
        "bool inputs": {in_key: x > 0},
        "nan inputs": {in_key: np.full(x.shape, np.nan, "f4")},
        "float16 inputs": {in_key: x.astype("f2")},
        "datetime inputs": {in_key: np.zeros(x.shape, "M8[s]")},
        "0-d input": {in_key: np.float32(1)},
        "empty batch": {in_key: np.zeros((0,) + x.shape[1:], "f4")},
        "huge batch declared": None,
        "fortran order": {in_key: np.asfortranarray(x)},
    }
    for label, arrays in variants.items():
        p = folder / f"npz_{label.replace(' ', '_')}.npz"
        if arrays is None:
            header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }" % ((10 ** 6,) + x.shape[1:])
            from attacks import npy_bytes
            with zipfile.ZipFile(p, "w") as z:
                z.writestr(in_key + ".npy", npy_bytes(header, bytes(64)))
        else:
            np.savez(p, **arrays)
        cases.append(Case(K, f"verify --inputs {label}", ["verify", str(model), "--inputs", str(p)],
                          inputs=[str(p)], expect="any"))
        cases.append(Case(K, f"explain --inputs {label}", ["explain", str(model), "--inputs", str(p)],
                          inputs=[str(p)], expect="any"))
    out_key = [k for k in exp.files if k.startswith("out:")][0]
    for label, y in {"string outputs": np.array(["a"]), "complex outputs": exp[out_key].astype("c8"),
                     "structured outputs": np.zeros(exp[out_key].shape, dtype=[("a", "f4")]),
                     "wrong shape outputs": np.zeros((1, 1), "f4"), "object outputs": None}.items():
        p = folder / f"npz_exp_{label.replace(' ', '_')}.npz"
        if y is None:
            from attacks import npy_bytes
            with zipfile.ZipFile(p, "w") as z:
                z.writestr(in_key + ".npy", _npy_of(x))
                z.writestr(out_key + ".npy", npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                                                       b"\x80\x04N."))
        else:
            np.savez(p, **{in_key: x, out_key: y})
        cases.append(Case(K, f"verify --expected {label}", ["verify", str(model), "--expected", str(p)],
                          inputs=[str(p)], expect="any"))
    nz = folder / "not_a_zip.npz"
    nz.write_bytes(b"\x93NUMPY" + bytes(100))
    cases.append(Case(K, "verify --inputs a bare .npy", ["verify", str(model), "--inputs", str(nz)], inputs=[str(nz)]))
    return cases


def _npy_of(a: np.ndarray) -> bytes:
    import io
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _unused():  # keep imports used by later rounds
    return edited_keras, layer, layers_of, state_dict_file, K3_GRU, WEIGHTS_ONLY, json


# -- round 2: outputs, .gates manifests, every command ---------------------------------------------
def _gates_with(folder: Path, name: str, edit) -> Path:
    """tiny_lstm as a .gates file whose manifest ``edit(manifest)`` changed (the weights kept)."""
    base = folder / "base.gates"
    if not base.exists():
        from converters.cli import main
        assert main(["-q", "convert", str(MODELS / "tiny_lstm.h5"), "--to", "gates", "-o", str(base)]) == 0
    data = base.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    manifest = json.loads(header["__metadata__"]["gateport.manifest"])
    text = edit(manifest)
    header["__metadata__"]["gateport.manifest"] = text if isinstance(text, str) else json.dumps(manifest)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    dst = folder / name
    dst.write_bytes(struct.pack("<Q", len(head)) + head + data[8 + n:])
    return dst


def gates_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    payload = 'x"""\nimport os;os.system("touch PWN")\n"""\x1b[31m\u202e' + "a" * 500

    def rename(m):
        m["nodes"][0]["name"] = payload
        m["name"] = payload
        m["inputs"][0]["name"] = payload
        m["nodes"][0]["inputs"] = [payload]
    def unknown_op(m):
        m["nodes"][0]["op"] = "__import__"
    def cycle(m):
        m["nodes"][0]["inputs"] = [m["nodes"][0]["outputs"][0]]
    def huge_units(m):
        m["nodes"][0]["options"]["units"] = 10 ** 12
    def nan_units(m):
        return json.dumps(m).replace('"units": 3', '"units": NaN')
    def shape_lie(m):
        for w in m["nodes"][0]["weights"].values():
            w["shape"] = [10 ** 6, 10 ** 6]
    def dtype_lie(m):
        for w in m["nodes"][0]["weights"].values():
            w["dtype"] = "object"
    def many_nodes(m):
        node = m["nodes"][0]
        m["nodes"] = [dict(node, name=f"n{i}") for i in range(200001)]
    def deep(m):
        return "[" * 100000 + "]" * 100000
    def version(m):
        m["version"] = 10 ** 9
    def no_nodes(m):
        m["nodes"] = []
    def output_unknown(m):
        m["outputs"] = ["nowhere"]
    def extra_key(m):
        m["nodes"][0]["__class__"] = "os.system"
    def activation_code(m):
        m["nodes"][0]["options"]["activation"] = "__import__('os').system('touch PWN')"
    def weight_name_traversal(m):
        w = m["nodes"][0]["weights"]
        k = next(iter(w))
        w["../../" + k] = w.pop(k)
    for edit in (unknown_op, cycle, huge_units, nan_units, shape_lie, dtype_lie, many_nodes, deep, version, no_nodes,
                 output_unknown, extra_key, activation_code, weight_name_traversal):
        src = _gates_with(folder, f"g_{edit.__name__}.gates", edit)
        cases += _refuse("gates", edit.__name__, src, folder, "inspect", "torch")
    src = _gates_with(folder, "g_rename.gates", rename)
    cases += _refuse("gates", "names carrying code", src, folder, "inspect", "torch", "numpy",
                     "onnx", "keras", "verify", "explain", expect="any")
    return cases


def output_cases2(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "output"
    src = folder / "o_src.keras"
    shutil.copy(K3, src)
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    target = elsewhere / "target.onnx"
    target.write_bytes(b"precious")
    link = folder / "o_link.onnx"
    if not os.path.lexists(link):
        link.symlink_to(target)
    # a symlink -o must never write through to (or truncate) what it points at
    cases.append(Case(K, "-o a symlink to another file --force", _convert(src, "onnx", link, "--force"),
                      inputs=[str(src), str(target)], output=str(link), expect="any"))
    cases.append(Case(K, "-o a symlink to another file", _convert(src, "onnx", link),
                      inputs=[str(src), str(target)]))
    dangling = folder / "o_dangling.onnx"
    if not os.path.lexists(dangling):
        dangling.symlink_to(elsewhere / "nothing_here" / "x.onnx")
    cases.append(Case(K, "-o a dangling symlink", _convert(src, "onnx", dangling), inputs=[str(src)]))
    existing = folder / "o_exists.onnx"
    existing.write_bytes(b"keep me")
    cases.append(Case(K, "-o an existing file without --force", _convert(src, "onnx", existing),
                      inputs=[str(src), str(existing)]))
    for label, name in [("newline and ANSI", "o_\n\x1b[31mred.onnx"), ("bidi override", "o_\u202egnp.onnx"),
                        ("quotes and backslash", 'o_"""\\x.onnx'), ("255-byte name", "o" * 250 + ".onnx"),
                        ("256-byte name", "o" * 251 + ".onnx"), ("leading dash", "-o.onnx")]:
        out = folder / name
        cases.append(Case(K, f"-o a name with {label}", _convert(src, "onnx", out), inputs=[str(src)],
                          output=str(out), expect="any"))
        tout = folder / ("t" + name.replace(".onnx", ""))
        cases.append(Case(K, f"--to torch -o a folder with {label}", _convert(src, "torch", tout), inputs=[str(src)],
                          output=str(tout), importable=True, expect="any"))
    cases.append(Case(K, "-o the input's folder (--to onnx)", _convert(src, "onnx", folder), inputs=[str(src)]))
    tdir = folder / "o_tdir"
    tdir.mkdir(exist_ok=True)
    shutil.copy(K3, tdir / "model.keras")
    (tdir / "model.py").write_text("# the user's own file\n")
    cases.append(Case(K, "--to torch into the input's folder holding a model.py", _convert(tdir / "model.keras", "torch", tdir),
                      inputs=[str(tdir / "model.keras"), str(tdir / "model.py")]))
    cases.append(Case(K, "-o /dev/stdout", _convert(src, "onnx", "/dev/stdout"), inputs=[str(src)]))
    cases.append(Case(K, "-o /proc/self/fd/1 --force", _convert(src, "onnx", "/proc/self/fd/1", "--force"),
                      inputs=[str(src)]))
    cases.append(Case(K, "-o a path through a file", _convert(src, "onnx", src / "x.onnx"), inputs=[str(src)]))
    small = folder.parent / "small"  # a 64 KB tmpfs where the run may mount one (disk full)
    if os.path.ismount(small):
        for to in ("onnx", "torch", "gates", "keras"):
            out = small / f"full_{to}"
            cases.append(Case(K, f"disk full --to {to}", _convert(MODELS / "autoencoder_bilstm.h5", to, out),
                              output=str(out)))
    # batch: input names carrying odd text become output names
    bdir = folder / "o_batch"
    bdir.mkdir(exist_ok=True)
    for name in ("a\nb.keras", "\x1b[2Jc.keras", ".keras", "..keras"):
        try:
            shutil.copy(K3, bdir / name)
        except OSError:
            pass
    bout = folder / "o_batch_out"
    cases.append(Case(K, "batch of odd input names", ["convert", str(bdir / "*.keras"), "--to", "onnx", "-o", str(bout)],
                      inputs=[str(p) for p in bdir.iterdir()], output=str(bout), expect="any"))
    return cases


def command_cases(folder: Path) -> list[Case]:
    """diff / explain / verify / inspect --json on hostile files (the same readers, other paths)."""
    cases: list[Case] = []
    K = "command"
    onnx_dup = folder / "onnx_dup_outputs.onnx"
    trunc = folder / "c_trunc.keras"
    trunc.write_bytes(K3.read_bytes()[:3000])
    meta = folder / "c_meta.keras"
    m = read_keras(K3)
    m["metadata.json"] = json.dumps({"keras_version": "3\n\x1b[31m" + "9" * 100000, "date_saved": "\u202e"}).encode()
    write_keras(meta, m)
    for label, argv in [("diff with a truncated file", ["diff", str(K3), str(trunc)]),
                        ("diff a file with itself", ["diff", str(trunc), str(trunc)]),
                        ("diff against an ONNX with a value named twice", ["diff", str(K3), str(onnx_dup)]),
                        ("explain a truncated file", ["explain", str(trunc)]),
                        ("verify --steps -1", ["verify", str(K3), "--steps", "-1"]),
                        ("verify --batch 0", ["verify", str(K3), "--batch", "0"]),
                        ("verify --to nothing", ["verify", str(K3), "--to", "tflite"]),
                        ("convert --opset 1", _convert(K3, "onnx", folder / "c_op1.onnx", "--opset", "1")),
                        ("convert --opset 99999", _convert(K3, "onnx", folder / "c_op2.onnx", "--opset", "99999")),
                        ("convert --dynamic evil", _convert(K3, "onnx", folder / "c_dyn.onnx", "--dynamic", "x\ny")),

                        ("convert --input-names too many", _convert(K3, "onnx", folder / "c_in2.onnx", "--input-names", "a,b,c")),
                        ("convert --output-names duplicate", _convert(K3_GRU, "onnx", folder / "c_out.onnx", "--output-names", "y,y")),
                        ("convert -j 10**18", ["convert", str(K3), str(K3_GRU), "--to", "onnx", "-o", str(folder / "c_j"), "-j", str(10 ** 18)])]:
        cases.append(Case(K, label, argv, inputs=[str(K3)], expect="any" if "-j" in argv else "refuse"))
    for cmd in ("inspect", "inspect --json", "explain", "verify"):
        cases.append(Case(K, f"{cmd}: a 100 KB version with ANSI", cmd.split() + [str(meta)], inputs=[str(meta)],
                          expect="any"))
    return cases
