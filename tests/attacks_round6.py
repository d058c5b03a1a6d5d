"""Hostile inputs, red team round 6: what rounds 1-5 (attacks.py, attacks_more.py, attacks_round3.py,
attacks_round4.py, attacks_round5.py) do not build.

Same :class:`attacks.Case` contract and runner as round 5 (:func:`attacks_round5.run_case5`: one line naming
the file, no traceback, no raw escape on stderr, nothing read outside the input's folder, bounded time and
memory, inputs unchanged, no output left behind on a refusal, exit 2 where a refusal is due, never 'a
gateport bug'); ``python tests/attacks_round6.py`` runs them through :func:`attack_run.run_battery`.

Classes: ``unicode6`` (text that is no valid Unicode: lone surrogates escaped in a config.json or a safetensors
header, bytes that are not UTF-8 in HDF5 attributes, group names, ONNX names, a zip member flagged UTF-8, file
and folder names), ``json6`` (JSON a config may hold that round 1-5 did not: a byte-order mark, UTF-16, a top
level that is no object, duplicated keys, an integer of 5,000 digits, ``-0``, ``4.0``, ``1e400``, NaN in a
shape), ``h5attr6`` (HDF5 attributes stored in shapes Keras never writes: a scalar ``layer_names``, a 2-D or
empty one, a layer listed twice, ``weight_names`` listing one weight twice or a fourth, a model_config behind a
BOM, NULs or padded in a fixed-length string; a group that links back to its parent, weights compressed with
lzf, scale-offset, one-element chunks, a corrupt chunk), ``onnx6`` (attributes past int64 or of the wrong type,
``hidden_size`` disagreeing with W, opset versions of 10**18 or negative, no default domain, an
``ir_version`` of 10**9, negative dims, a function calling itself, 100,000 metadata entries, an LSTM ``clip`` of
NaN, a ``layout`` of 5), ``pickle6`` (a PyTorch zip whose pickle holds a list containing itself, a 10**9-leaf
tree of shared lists, 100,000 levels of nesting, keys that are not text, a size tuple of text, a global
outside the allowed ones), ``paths6`` (a symbolic link loop, a folder named like a model, ``-o`` the folder
holding the input with ``--force``, ``-o`` a hard link of the input, the output through a link to the input's
folder), ``size6`` (names small on disk and large once read: U+FDFA is 18 characters after NFKD; a config of
151 MB of escaped names or 15 M floats; tensors of 100 dimensions and more in ONNX, safetensors and .npz).

``python tests/attacks_round6.py`` (2026-12-01, 2 shared cores, load 1-6): 248 attacks, 248 passed, peak memory
385 MiB. Before this round's fixes 6 failed in the runner: unicode6 1 (a torch folder named in bytes that are not
UTF-8 was written, its model.py could not load its weights), h5attr6 2 (a scalar ``layer_names`` read as a
one-name list), size6 3 (a 12-24 MB layer name: 1.5 GB normalizing it whole, 2 GB writing it into every ONNX name;
a 151 MB config.json: 4 GB, 1.4 GB of it scanning brackets). 11 more refused in one line that did not say what was
expected (an HDF5 group name not UTF-8: 'SystemError: FastRLock.__exit__ ...'; an ONNX node name not UTF-8:
'TypeError: a bytes-like object is required'; a 5,000-digit integer: Python's advice to raise its digit limit),
and 2 (an ONNX graph input named in bytes not UTF-8) were written with the name "b'...'". Mechanisms:
hdf5.attr_list, atomic.check_path_type, sanitize.identifier/comment, safe_json (chunked scan, MAX_VALUES, the
Keras config ceiling), budget.names, hdf5_probe (object names), onnx_model.not_text.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

from attacks import K3_GRU, Case, lstm_keys, read_keras, safetensors_bytes, write_keras
from attacks_round3 import _case, _convert, build_groups
from attacks_round4 import TINY, _written
from attacks_round5 import EVIL, run_case5

ROOT = Path(__file__).resolve().parent.parent
_KERNEL = "model_weights/lstm/lstm/lstm_cell/kernel:0"


def build(folder: Path, groups: tuple[str, ...] | None = None) -> list[Case]:
    """Every case (or those of the builders named in ``groups``)."""
    return build_groups(folder, (unicode_cases, json_cases, h5attr_cases, onnx_cases, pickle_cases, paths_cases, size_cases), groups)


def _both(K: str, label: str, src: Path, folder: Path, to: str = "torch", expect: str = "refuse",
          named: bool = True) -> list[Case]:
    """``inspect`` and ``convert --to to`` of ``src``."""
    out = folder / (f"{src.stem}_{to}" if to in ("torch", "numpy") else f"{src.stem}_out.{to}")
    return [_case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect, named=named),
            _case(K, f"{label} ({to})", _convert(src, to, out), src, output=out, expect=expect,
                  importable=to == "torch", named=named)]


def _h5(folder: Path, i: int, edit) -> Path:
    src = folder / f"h{i}.h5"
    shutil.copy(TINY, src)
    with h5py.File(src, "r+") as f:
        edit(f)
    return src


def _keras_config(folder: Path, i: int, text: bytes, members: dict[str, bytes] | None = None) -> Path:
    members = dict(members or read_keras(K3_GRU))
    members["config.json"] = text
    return write_keras(folder / f"c{i}.keras", members)


# -- text that is no valid Unicode ----------------------------------------------------------------------------
def unicode_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "unicode6"
    members = read_keras(K3_GRU)
    text = members["config.json"].decode()
    # a JSON escape of a lone surrogate is valid JSON: json.loads gives a str that no UTF-8 codec can write
    for i, (label, new) in enumerate([("a layer name a lone surrogate", "enc\\ud800oder"),
                                      ("a layer name a lone low surrogate and escapes", "\\udc80\\u001b[31m\\u202e")]):
        src = _keras_config(folder, i, text.replace('"encoder"', f'"{new}"').encode())
        for to in ("onnx", "torch", "keras"):
            cases += _both(K, f"{label} (to {to})", src, folder, to, expect="any")[1:] if to != "onnx" else \
                _both(K, label, src, folder, to, expect="any")
        cases.append(_case(K, f"{label} (inspect --json)", ["inspect", "--json", src], src, expect="any"))
        cases.append(_case(K, f"{label} (verify)", ["verify", src, "--to", "torch,numpy,onnx,keras"], src,
                           expect="any"))
    # bytes that are not UTF-8 in the HDF5 file's attributes and names
    def layer_names_latin1(f):
        f["model_weights"].attrs["layer_names"] = np.array([b"input_1", b"lstm\xff\xfe"])
        f["model_weights"].move(b"lstm", b"lstm\xff\xfe")  # HDF5 names are bytes

    def weight_names_latin1(f):
        f["model_weights/lstm"].attrs["weight_names"] = np.array(
            [b"lstm/lstm_cell/kernel\xe9:0", b"lstm/lstm_cell/recurrent_kernel:0", b"lstm/lstm_cell/bias:0"])

    def config_latin1(f):
        cfg = f.attrs["model_config"]
        cfg = cfg if isinstance(cfg, str) else cfg.decode()
        del f.attrs["model_config"]
        f.attrs.create("model_config", np.bytes_(cfg.replace('"lstm"', '"lstm\udce9"').encode("utf-8", "surrogateescape")))

    def version_latin1(f):
        f.attrs["keras_version"] = np.bytes_(b"2.21\xff\x1b[31m")
        f.attrs["backend"] = np.bytes_(b"tensorflow\xc3")

    def config_surrogate_escape(f):  # valid UTF-8, a JSON escape of a lone surrogate in the LSTM's name
        cfg = f.attrs["model_config"]
        cfg = cfg if isinstance(cfg, str) else cfg.decode()
        f.attrs["model_config"] = cfg.replace('"lstm"', '"lstm\\ud800"')

    for j, (label, edit, expect) in enumerate([
            ("layer_names and the group not UTF-8", layer_names_latin1, "refuse"),
            ("weight_names not UTF-8", weight_names_latin1, "refuse"),
            ("model_config not UTF-8", config_latin1, "refuse"),
            ("keras_version and backend not UTF-8", version_latin1, "any"),
            ("model_config naming a lone surrogate", config_surrogate_escape, "any")]):
        src = _h5(folder, j, edit)
        cases += _both(K, label, src, folder, "torch", expect=expect)
        cases.append(_case(K, f"{label} (keras)", _convert(src, "keras", folder / f"h{j}.keras"), src,
                           output=folder / f"h{j}.keras", expect=expect))
        if expect == "any":
            cases.append(_case(K, f"{label} (verify)", ["verify", src, "--to", "torch,numpy,onnx,keras"], src,
                               expect="any"))
    # a zip member flagged UTF-8 (general purpose bit 11) whose name is not
    raw = bytearray(write_keras(folder / "flag_src.keras", {**members, "evil\xe9.json": b"{}"}).read_bytes())
    for sig, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        pos = raw.find(sig)
        while pos != -1:
            n = struct.unpack("<H", raw[(pos + name_at - 4):(pos + name_at - 2)])[0]
            name = bytes(raw[pos + name_at:pos + name_at + n])
            if name.startswith(b"evil"):
                raw[pos + name_at:pos + name_at + n] = b"evil\xff\xfe.json"[:n].ljust(n, b"x")
                raw[pos + flag_at:pos + flag_at + 2] = struct.pack("<H", 0x800)
            pos = raw.find(sig, pos + 4)
    src = folder / "utf8_flag.keras"
    src.write_bytes(bytes(raw))
    cases += _both(K, "a zip member flagged UTF-8 whose name is not", src, folder, "onnx", expect="any")
    # safetensors: a lone surrogate escaped in a tensor name, and header bytes that are not UTF-8
    keys = lstm_keys("rnn")
    header, off = {}, 0
    for k, shape in keys.items():
        n = int(np.prod(shape)) * 4
        header[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    head = json.dumps(header).encode()
    for label, h in [("a tensor name with an escaped lone surrogate", head.replace(b'"rnn.', b'"rnn\\udc80.', 1)),
                     ("a tensor name not UTF-8", head.replace(b'"rnn.', b'"rnn\xff.', 1)),
                     ("metadata with an escaped lone surrogate",
                      head[:-1] + b', "__metadata__": {"gateport.layers": "\\ud800"}}')]:
        src = folder / f"s{len(cases)}.safetensors"
        src.write_bytes(struct.pack("<Q", len(h)) + h + bytes(off))
        cases += _both(K, label, src, folder, "torch", expect="any" if "surrogate" in label else "refuse")
    # ONNX: names that are not UTF-8 (protobuf's string fields, read by a proto2 parser)
    good = _written(folder, "onnx").read_bytes()
    import onnx

    m = onnx.load_from_string(good)
    lstm_node = next(n for n in m.graph.node if n.op_type == "LSTM")
    marker = "Q" * len(lstm_node.name.encode())
    lstm_node.name = marker
    data = m.SerializeToString()
    for label, blob in [("a node name not UTF-8", data.replace(marker.encode(), (b"\xff\xfe" * 64)[:len(marker)], 1)),
                        ("a graph input name not UTF-8",
                         good.replace(m.graph.input[0].name.encode(), b"\xc3" * len(m.graph.input[0].name.encode())))]:
        src = folder / f"o{len(cases)}.onnx"
        src.write_bytes(blob)
        cases += _both(K, label, src, folder, "torch", expect="any")
    # file and folder names that are not UTF-8 (a Linux file name is bytes)
    bad = folder / os.fsdecode(b"m\xff\xfe\x1b.h5")
    shutil.copy(TINY, bad)
    cases += _both(K, "a file name not UTF-8", bad, folder, "onnx", expect="any", named=False)
    cases.append(_case(K, "a file name not UTF-8 (verify)", ["verify", bad, "--to", "torch,numpy,onnx,keras"], bad,
                       expect="any", named=False))
    artifact = folder / os.fsdecode(b"a\xff.onnx")
    shutil.copy(_written(folder, "onnx"), artifact)
    cases.append(_case(K, "verify --artifact named not UTF-8", ["verify", TINY, "--to", "onnx", "--artifact",
                                                                 f"onnx={artifact}"], [TINY, artifact],
                       expect="any", named=False))
    out_dir = folder / os.fsdecode(b"out\xe9\x1b[31m")
    cases.append(_case(K, "a torch folder named not UTF-8", _convert(TINY, "torch", out_dir), TINY, output=out_dir,
                       expect="any", importable=True, named=False))
    return cases


# -- JSON a config may hold -----------------------------------------------------------------------------------
def json_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "json6"
    members = read_keras(K3_GRU)
    text = members["config.json"].decode()
    cfg = json.loads(text)

    def units(value: str) -> bytes:
        return text.replace('"units": 6', f'"units": {value}', 1).encode()

    assert '"units": 6' in text, "k3_gru_repeat_lstm's encoder has 6 units"
    variants = {
        "a UTF-8 byte-order mark": (b"\xef\xbb\xbf" + text.encode(), "any"),
        "UTF-16 with its byte-order mark": (text.encode("utf-16"), "any"),
        "the top level a list": (json.dumps([cfg]).encode(), "refuse"),
        "the top level a string": (json.dumps(text).encode(), "refuse"),
        "the top level null": (b"null", "refuse"),
        "the top level 1e400": (b"1e400", "refuse"),
        "class_name duplicated, the last Lambda": (text.replace('"class_name": "Functional"',
                                                               '"class_name": "Functional", "class_name": "Lambda"', 1)
                                                  .encode(), "refuse"),
        "units duplicated, the last 2**40": (units(f"6, \"units\": {2 ** 40}"), "refuse"),
        "units an integer of 5,000 digits": (units("9" * 5000), "refuse"),
        "units -0": (units("-0"), "refuse"),
        "units 6.0": (units("6.0"), "any"),
        "units 6.5": (units("6.5"), "refuse"),
        "units 1e400": (units("1e400"), "refuse"),
        "units NaN": (units("NaN"), "refuse"),
        "units -Infinity": (units("-Infinity"), "refuse"),
        "a 1 MB key": (text.replace('"units": 6', '"units": 6, "' + "k" * (1 << 20) + '": 1', 1).encode(), "any"),
        "a NUL escaped in a layer name": (text.replace('"encoder"', '"enc\\u0000oder"').encode(), "any"),
        "the batch shape holding NaN": (text.replace('"batch_shape": [null,', '"batch_shape": [NaN,', 1).encode(),
                                        "refuse"),
        "the batch shape holding -1": (text.replace('"batch_shape": [null,', '"batch_shape": [-1,', 1).encode(),
                                       "refuse"),
        "the batch shape holding 4.5": (text.replace('"batch_shape": [null,', '"batch_shape": [4.5,', 1).encode(),
                                        "refuse"),
        "trailing garbage after the object": (text.encode() + b"\n}{", "refuse"),
    }
    assert '"batch_shape": [null,' in text
    for i, (label, (data, expect)) in enumerate(variants.items()):
        src = _keras_config(folder, i, data, members)
        cases += _both(K, label, src, folder, "onnx", expect=expect)
    # metadata.json and a Keras 2 .h5's model_config
    for label, meta, expect in [("metadata.json a list", b"[1, 2]", "any"),
                                ("metadata.json keras_version an integer of 5,000 digits",
                                 b'{"keras_version": ' + b"9" * 5000 + b"}", "any"),
                                ("metadata.json with a BOM and escapes", b"\xef\xbb\xbf" + json.dumps(
                                    {"keras_version": EVIL, "date_saved": EVIL}).encode(), "any")]:
        src = write_keras(folder / f"m{len(cases)}.keras", {**members, "metadata.json": meta})
        cases += _both(K, label, src, folder, "onnx", expect=expect)

    def h5_units(value: str):
        def edit(f):
            c = f.attrs["model_config"]
            c = c if isinstance(c, str) else c.decode()
            assert "\"units\": 3" in c
            f.attrs["model_config"] = c.replace("\"units\": 3", f"\"units\": {value}", 1)
        return edit

    for j, (label, value) in enumerate([("model_config units of 5,000 digits", "9" * 5000),
                                        ("model_config units duplicated, the last 10**12", "3, \"units\": 1000000000000"),
                                        ("model_config units 3.000001", "3.000001")]):
        src = _h5(folder, 100 + j, h5_units(value))
        cases += _both(K, label, src, folder, "torch")
    return cases


# -- HDF5 attributes in shapes Keras never writes -------------------------------------------------------------
def h5attr_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "h5attr6"

    def names_attr(value):
        def edit(f):
            del f["model_weights"].attrs["layer_names"]
            f["model_weights"].attrs["layer_names"] = value
        return edit

    def wnames_attr(value):
        def edit(f):
            del f["model_weights/lstm"].attrs["weight_names"]
            f["model_weights/lstm"].attrs["weight_names"] = value
        return edit

    W = [b"lstm/lstm_cell/kernel:0", b"lstm/lstm_cell/recurrent_kernel:0", b"lstm/lstm_cell/bias:0"]

    def config_as(kind: str):
        def edit(f):
            c = f.attrs["model_config"]
            c = c if isinstance(c, str) else c.decode()
            del f.attrs["model_config"]
            if kind == "bom":
                f.attrs["model_config"] = "\ufeff" + c
            elif kind == "nul":
                f.attrs["model_config"] = np.bytes_(c.encode() + b"\x00" + b'{"class_name": "Lambda"}')
            elif kind == "array1":
                f.attrs.create("model_config", np.array([c], dtype=h5py.string_dtype()))
            elif kind == "padded":
                f.attrs.create("model_config", np.array(c.encode(), dtype=f"S{len(c) + 4096}"))
            elif kind == "10mb":
                f.attrs["model_config"] = c[:-1] + ', "pad": "' + "x" * (10 << 20) + '"}'
        return edit

    def loop_to_parent(f):  # a hard link back to model_weights: a recursive walk never ends
        f["model_weights/lstm/lstm/loop"] = f["model_weights"]

    def loop_to_root(f):
        f["model_weights/lstm/lstm/lstm_cell/root"] = f["/"]

    def recompress(**create):
        def edit(f):
            a = f[_KERNEL][()]
            del f[_KERNEL]
            f.create_dataset(_KERNEL, data=a, **create)
        return edit

    edits = {
        "layer_names a scalar string": (names_attr(np.bytes_(b"lstm")), "refuse"),
        "layer_names a 2-D array": (names_attr(np.array([[b"input_1", b"lstm"]])), "refuse"),
        "layer_names empty": (names_attr(np.array([], dtype="S1")), "refuse"),
        "layer_names listing lstm twice": (names_attr(np.array([b"input_1", b"lstm", b"lstm"])), "refuse"),
        "layer_names HDF5 empty": (names_attr(h5py.Empty("S10")), "refuse"),
        "weight_names listing the kernel twice and four names": (wnames_attr(np.array([W[0], W[0], W[1], W[2]])),
                                                                 "refuse"),
        "weight_names a scalar string": (wnames_attr(np.bytes_(W[0])), "refuse"),
        "weight_names a 2-D array": (wnames_attr(np.array([W])), "refuse"),
        "weight_names empty": (wnames_attr(np.array([], dtype="S1")), "refuse"),
        "model_config behind a byte-order mark": (config_as("bom"), "any"),
        "model_config followed by a NUL and a Lambda": (config_as("nul"), "any"),
        "model_config a 1-element string array": (config_as("array1"), "any"),
        "model_config padded with 4096 NULs": (config_as("padded"), "any"),
        "model_config of 10 MB": (config_as("10mb"), "any"),
        "a hard link from a layer group to model_weights": (loop_to_parent, "any"),
        "a hard link from the cell to the root": (loop_to_root, "any"),
        "the kernel lzf-compressed": (recompress(compression="lzf"), "any"),
        "the kernel scale-offset": (recompress(scaleoffset=3), "any"),
        "the kernel in 1-element chunks": (recompress(chunks=(1, 1)), "any"),
        "the kernel chunked (4096, 4096)": (recompress(chunks=(4096, 4096), maxshape=(None, None)), "any"),
        "the kernel fletcher32 and shuffle": (recompress(fletcher32=True, shuffle=True, compression="gzip"), "any"),
    }
    for i, (label, (edit, expect)) in enumerate(edits.items()):
        src = _h5(folder, i, edit)
        cases += _both(K, label, src, folder, "torch", expect=expect)
    # a deflated chunk whose bytes are corrupt: HDF5 reports it when the data are read
    src = _h5(folder, 99, recompress(compression="gzip", chunks=(1, 4)))
    with h5py.File(src, "r") as f:
        offsets = [f[_KERNEL].id.get_chunk_info(k).byte_offset for k in range(f[_KERNEL].id.get_num_chunks())]
    raw = bytearray(src.read_bytes())
    for o in offsets:
        raw[o:o + 8] = b"\xde\xad\xbe\xef" * 2
    src.write_bytes(bytes(raw))
    cases += _both(K, "every deflated chunk of the kernel corrupt", src, folder, "torch")
    # the Keras 3 weights file (model.weights.h5 in a .keras) with a link cycle
    members = read_keras(K3_GRU)
    tmp = folder / "k3w.h5"
    tmp.write_bytes(members["model.weights.h5"])
    with h5py.File(tmp, "r+") as f:
        groups = []
        f.visititems(lambda n, o: groups.append(n) if isinstance(o, h5py.Group) else None)
        deepest = max(groups, key=lambda n: n.count("/"))
        f[deepest + "/loop"] = f["/"]
    src = write_keras(folder / "k3_loop.keras", {**members, "model.weights.h5": tmp.read_bytes()})
    cases += _both(K, "a .keras whose weights file links a group back to its root", src, folder, "onnx", expect="any")
    return cases


# -- ONNX attributes and imports -----------------------------------------------------------------------------
def onnx_cases(folder: Path) -> list[Case]:
    import onnx
    from onnx import AttributeProto, helper

    cases: list[Case] = []
    K = "onnx6"
    base = onnx.load(str(_written(folder, "onnx")))

    def lstm(m):
        return next(n for n in m.graph.node if n.op_type == "LSTM")

    def set_attr(name: str, value=None, *, kind=None):
        def edit(m):
            node = lstm(m)
            for a in list(node.attribute):
                if a.name == name:
                    node.attribute.remove(a)
            if kind is not None:
                a = AttributeProto(name=name, type=kind)
                if kind == AttributeProto.INT:
                    a.i = value
                elif kind == AttributeProto.FLOAT:
                    a.f = value
                elif kind == AttributeProto.INTS:
                    a.ints.extend(value)
                elif kind == AttributeProto.STRING:
                    a.s = value
                node.attribute.append(a)
            elif value is not None:
                node.attribute.append(helper.make_attribute(name, value))
        return edit

    def opsets(*pairs):
        def edit(m):
            del m.opset_import[:]
            for domain, version in pairs:
                m.opset_import.append(helper.make_opsetid(domain, version))
        return edit

    def ir(version):
        def edit(m):
            m.ir_version = version
        return edit

    def negative_dims(m):
        t = next(t for t in m.graph.initializer if t.name == lstm(m).input[1])
        dims = list(t.dims)
        del t.dims[:]
        t.dims.extend([-dims[0], -dims[1], dims[2]])

    def input_dim_negative(m):
        d = m.graph.input[0].type.tensor_type.shape.dim
        d[-1].ClearField("dim_param")
        d[-1].dim_value = -3

    def recursive_function(m):
        f = helper.make_function("local", "Again", ["x"], ["y"], [helper.make_node("Again", ["x"], ["y"], domain="local")],
                                 [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
        m.functions.append(f)
        m.opset_import.append(helper.make_opsetid("local", 1))
        out = m.graph.output[0].name
        producer = next(n for n in m.graph.node if out in n.output)
        producer.output[list(producer.output).index(out)] = out + "_pre"
        m.graph.node.append(helper.make_node("Again", [out + "_pre"], [out], domain="local"))

    def metadata(m):
        for i in range(100000):
            m.metadata_props.append(onnx.StringStringEntryProto(key=f"k{i}", value=EVIL))

    def sequence_lens_negative(m):
        node = lstm(m)
        name = "seq_lens_neg"
        m.graph.initializer.append(onnx.numpy_helper.from_array(np.array([-5, 2 ** 31 - 1], np.int32), name))
        while len(node.input) < 5:
            node.input.append("")
        node.input[4] = name

    edits = {
        "hidden_size 2**63-1": (set_attr("hidden_size", 2 ** 63 - 1, kind=AttributeProto.INT), "refuse"),
        "hidden_size -4": (set_attr("hidden_size", -4, kind=AttributeProto.INT), "refuse"),
        "hidden_size disagreeing with W": (set_attr("hidden_size", 5, kind=AttributeProto.INT), "refuse"),
        "hidden_size a float": (set_attr("hidden_size", 4.0, kind=AttributeProto.FLOAT), "refuse"),
        "hidden_size a string": (set_attr("hidden_size", b"4", kind=AttributeProto.STRING), "refuse"),
        "direction an int list": (set_attr("direction", [1, 2], kind=AttributeProto.INTS), "refuse"),
        "clip NaN": (set_attr("clip", float("nan"), kind=AttributeProto.FLOAT), "refuse"),
        "clip -1": (set_attr("clip", -1.0, kind=AttributeProto.FLOAT), "refuse"),
        "layout 5": (set_attr("layout", 5, kind=AttributeProto.INT), "refuse"),
        "input_forget 2": (set_attr("input_forget", 2, kind=AttributeProto.INT), "refuse"),
        "an attribute declared INT holding nothing": (set_attr("hidden_size", 0, kind=AttributeProto.INT), "refuse"),
        "the default opset 10**18": (opsets(("", 10 ** 18)), "refuse"),
        "the default opset -1": (opsets(("", -1)), "refuse"),
        "no default domain imported": (opsets(("ai.onnx.ml", 3)), "refuse"),
        "ai.onnx imported as 17 and 9": (opsets(("", 17), ("ai.onnx", 9)), "any"),
        "a custom domain of version 2**62 unused": (opsets(("", 17), ("evil" + EVIL, 2 ** 62)), "any"),
        "ir_version 10**9": (ir(10 ** 9), "refuse"),
        # onnxruntime runs it: the opset imports, not the IR version, say what the ops mean
        "ir_version 0": (ir(0), "any"),
        "W of negative dims": (negative_dims, "refuse"),
        "a graph input of dimension -3": (input_dim_negative, "refuse"),
        "a function calling itself": (recursive_function, "refuse"),
        "100,000 metadata entries carrying escapes": (metadata, "any"),
        "sequence_lens -5 and 2**31-1": (sequence_lens_negative, "refuse"),
    }
    for i, (label, (edit, expect)) in enumerate(edits.items()):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        edit(m)
        src = folder / f"o{i}.onnx"
        src.write_bytes(m.SerializeToString())
        cases += _both(K, label, src, folder, "torch", expect=expect)
    return cases


# -- PyTorch zip checkpoints whose pickle is shaped to hurt a walker -------------------------------------------
def pickle_cases(folder: Path) -> list[Case]:
    import torch

    cases: list[Case] = []
    K = "pickle6"
    lstm = torch.nn.LSTM(3, 4)
    sd = {f"rnn.{k}": v.detach() for k, v in lstm.state_dict().items()}
    PLACE = "PLACEHOLDER_VALUE_0123456789"

    def with_value(name: str, opcodes: bytes) -> Path:
        """A torch.save zip whose ``extra`` value is the pickle ``opcodes`` (spliced in for a placeholder)."""
        p = folder / f"{name}.pt"
        torch.save({**sd, "extra": PLACE}, p)
        m = read_keras(p)
        pkl = next(k for k in m if k.endswith("data.pkl"))
        enc = PLACE.encode()
        old = b"X" + struct.pack("<I", len(enc)) + enc
        assert old in m[pkl]
        m[pkl] = m[pkl].replace(old, opcodes, 1)
        write_keras(p, m)
        return p

    files: dict[str, tuple[Path, str]] = {}
    a: list = []
    a.append(a)
    p = folder / "self_list.pt"
    torch.save({**sd, "extra": a}, p)
    files["a list containing itself"] = (p, "any")
    d: dict = {}
    d["me"] = d
    p = folder / "self_dict.pt"
    torch.save({**sd, "extra": d}, p)
    files["a dict containing itself"] = (p, "any")
    leaf: list = [0]
    for _ in range(9):
        leaf = [leaf] * 10
    p = folder / "laughs.pt"
    torch.save({**sd, "extra": leaf}, p)
    files["10**9 leaves of shared lists"] = (p, "any")
    shared = {"rnn.weight_ih_l0": sd["rnn.weight_ih_l0"]}
    tree: object = shared
    for _ in range(30):
        tree = {"a": tree, "b": tree}
    p = folder / "laughs_dict.pt"
    torch.save({**sd, "extra": tree}, p)
    files["2**30 paths to one tensor through shared dicts"] = (p, "any")
    n = 100000
    files["100,000 nested lists"] = (with_value("deep", b"]" * n + b"a" * (n - 1)), "any")
    files["100,000 nested dicts"] = (with_value("deep_dict", b"}" + (b"X\x01\x00\x00\x00k}" * (n - 1)) +
                                                b"s" * (n - 1)), "any")
    files["a global outside the allowed ones (posix.system)"] = (
        with_value("glob", b"cposix\nsystem\nX\x04\x00\x00\x00true\x85R"), "refuse")
    files["a global of builtins.getattr"] = (
        with_value("getattr", b"cbuiltins\ngetattr\n"), "refuse")
    p = folder / "int_keys.pt"
    torch.save({**sd, 7: sd["rnn.weight_hh_l0"], (1, 2): 3}, p)
    files["keys an int and a tuple"] = (p, "any")
    p = folder / "only_int_keys.pt"
    torch.save({i: v for i, v in enumerate(sd.values())}, p)
    files["every key an int"] = (p, "refuse")
    p = folder / "size_text.pt"
    torch.save(sd, p)
    m = read_keras(p)
    pkl = next(k for k in m if k.endswith("data.pkl"))
    # the first tensor's size tuple (16, 3) -> ('x', 3): BININT1 16 -> BINUNICODE 'x' (protocol 2, as torch.save)
    assert b"K\x10K\x03\x86" in m[pkl]
    m[pkl] = m[pkl].replace(b"K\x10K\x03\x86", b"X\x01\x00\x00\x00xK\x03\x86", 1)
    write_keras(p, m)
    files["a size tuple holding text"] = (p, "refuse")
    p = folder / "size_neg.pt"
    m = read_keras(folder / "size_text.pt")
    m[pkl] = m[pkl].replace(b"X\x01\x00\x00\x00xK\x03\x86", b"J\xf0\xff\xff\xffK\x03\x86", 1)  # BININT -16
    write_keras(p, m)
    files["a size tuple holding -16"] = (p, "refuse")
    for label, (src, expect) in files.items():
        cases += _both(K, label, src, folder, "onnx", expect=expect)
    return cases


# -- paths ---------------------------------------------------------------------------------------------------
def paths_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "paths6"
    a, b = folder / "loop_a.h5", folder / "loop_b.h5"
    for x, y in ((a, b), (b, a)):
        if not os.path.lexists(x):
            x.symlink_to(y.name)
    cases.append(_case(K, "a symbolic link loop (inspect)", ["inspect", a], [], named=False))
    cases.append(_case(K, "a symbolic link loop (onnx)", _convert(a, "onnx", folder / "loop.onnx"), [],
                       output=folder / "loop.onnx", named=False))
    d = folder / "folder.keras"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text("{}")
    cases.append(_case(K, "a folder named like a .keras (inspect)", ["inspect", d], [d / "config.json"], named=False))
    cases.append(_case(K, "a folder named like a .keras (verify)", ["verify", d, "--to", "torch"], [d / "config.json"],
                       named=False))
    # a gateport torch folder read back from its own safetensors, written onto that folder
    good = _written(folder, "torch")
    user = folder / "user_torch"
    if not user.exists():
        shutil.copytree(good, user)
    st = user / "model.safetensors"
    keep = [st, user / "model.py"]
    cases.append(_case(K, "-o the torch folder holding the input --force",
                       _convert(st, "torch", user, "--force"), keep, expect="refuse", named=False))
    cases.append(_case(K, "-o the torch folder holding the input (no --force)",
                       _convert(st, "torch", user), keep, expect="refuse", named=False))
    cases.append(_case(K, "-o the folder of the input through a link --force",
                       _convert(st, "torch", folder / "link_to_user", "--force"), keep, expect="refuse", named=False))
    if not os.path.lexists(folder / "link_to_user"):
        (folder / "link_to_user").symlink_to(user)
    # an .onnx input and a hard link to it as the output
    src = folder / "m.onnx"
    shutil.copy(_written(folder, "onnx"), src)
    hard = folder / "hard.onnx"
    if not hard.exists():
        os.link(src, hard)
    cases.append(_case(K, "-o a hard link of the input --force", _convert(src, "onnx", hard, "--force"), [src],
                       expect="any", named=False))
    linkdir = folder / "linkdir"
    if not os.path.lexists(linkdir):
        linkdir.symlink_to(".")
    cases.append(_case(K, "-o the input through a linked folder --force",
                       _convert(src, "onnx", linkdir / "m.onnx", "--force"), [src], expect="refuse", named=False))
    cases.append(_case(K, "-o the input as ./m.onnx/../m.onnx --force",
                       _convert(src, "onnx", str(folder / "m.onnx" / ".." / "m.onnx"), "--force"), [src],
                       expect="refuse", named=False))
    # --gates output onto the input's own folder name
    h5 = folder / "m.h5"
    shutil.copy(TINY, h5)
    cases.append(_case(K, "-o the input's folder as a .gates --force", _convert(h5, "gates", folder, "--force"), [h5],
                       expect="refuse", named=False))
    return cases


# -- names and ranks that grow when read ----------------------------------------------------------------------
#: U+FDFA: one character, 3 bytes of UTF-8, 18 characters after NFKD (the normalization identifiers go through)
WIDE = "\ufdfa"


def size_cases(folder: Path) -> list[Case]:
    """Names that are small on disk and large once normalized, and tensors of 100 dimensions (numpy has at most
    64): a reader or a name maker that works on the whole text, or hands numpy the rank unchecked."""
    import onnx
    from onnx import helper

    cases: list[Case] = []
    K = "size6"
    members = read_keras(K3_GRU)
    text = members["config.json"].decode()
    long_name = WIDE * (4 << 20)  # 12 MB of UTF-8 (three times in the config: under 64 MB), 75 M after NFKD
    src = _keras_config(folder, 0, text.replace('"encoder"', json.dumps(long_name, ensure_ascii=False)).encode(),
                        members)
    cases += _both(K, "a layer name of 4 M characters each 18 after NFKD", src, folder, "torch", expect="any")
    cases.append(_case(K, "a layer name of 4 M characters each 18 after NFKD (onnx)",
                       _convert(src, "onnx", folder / "c0.onnx"), src, output=folder / "c0.onnx", expect="any"))
    # the same name escaped (\ufdfa, 6 bytes each): 151 MB of config, and 60 MB of floats (32 bytes each once read)
    for i, (label, data) in enumerate([
            ("a config of 151 MB (a name escaped)", text.replace('"encoder"', json.dumps(WIDE * (8 << 20)))),
            ("a config holding 15 M floats in 60 MB", text.replace('"units": 6', '"units": 6, "pad": [' +
                                                                    "0.5," * (15 << 20) + "0.5]", 1))], 1):
        src = _keras_config(folder, i, data.encode(), members)
        cases += _both(K, label, src, folder, "onnx")

    def h5_name(f):
        c = f.attrs["model_config"]
        c = c if isinstance(c, str) else c.decode()
        f.attrs["model_config"] = c.replace('"lstm"', json.dumps(WIDE * (4 << 20), ensure_ascii=False))

    src = _h5(folder, 0, h5_name)
    cases += _both(K, "an .h5 layer name of 4 M characters each 18 after NFKD", src, folder, "torch", expect="any")
    base = onnx.load(str(_written(folder, "onnx")))
    m = onnx.ModelProto()
    m.CopyFrom(base)
    next(n for n in m.graph.node if n.op_type == "LSTM").name = WIDE * (4 << 20)
    src = folder / "wide_node.onnx"
    src.write_bytes(m.SerializeToString())
    cases += _both(K, "an ONNX node name of 4 M characters each 18 after NFKD", src, folder, "torch", expect="any")
    m = onnx.ModelProto()
    m.CopyFrom(base)
    t = next(t for t in m.graph.initializer if t.name == next(n for n in m.graph.node if n.op_type == "LSTM").input[1])
    dims = list(t.dims)
    del t.dims[:]
    t.dims.extend([1] * 100 + dims)
    src = folder / "rank100.onnx"
    src.write_bytes(m.SerializeToString())
    cases += _both(K, "an ONNX weight of 103 dimensions", src, folder, "torch")
    m = onnx.ModelProto()
    m.CopyFrom(base)
    node = next(n for n in m.graph.node if n.op_type == "LSTM")
    for a in list(node.attribute):
        if a.name == "activations":
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute("activations", ["Tanh"] * 1_000_000))
    src = folder / "activations_1m.onnx"
    src.write_bytes(m.SerializeToString())
    cases += _both(K, "an LSTM activations list of 10**6 names", src, folder, "torch")
    keys = lstm_keys("rnn")
    header, off = {}, 0
    for k, shape in keys.items():
        n = int(np.prod(shape)) * 4
        header[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    first = next(iter(header))
    src = folder / "rank100.safetensors"
    src.write_bytes(safetensors_bytes({**header, first: {**header[first], "shape": [1] * 100 + header[first]["shape"]}},
                                      bytes(off)))
    cases += _both(K, "a safetensors weight of 102 dimensions", src, folder, "torch")
    src = folder / "wide_key.safetensors"
    src.write_bytes(safetensors_bytes({("rnn" + WIDE * (2 << 20) + "." + k[4:]): v for k, v in header.items()},
                                      bytes(off)))
    cases += _both(K, "safetensors keys of 2 M characters each 18 after NFKD", src, folder, "torch", expect="any")
    from attacks import npy_bytes

    exp = np.load(ROOT / "fixtures" / "expected" / "tiny_lstm.npz")
    key = next(k for k in exp.files if k.startswith("in:"))
    npz = folder / "rank100.npz"
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr(key + ".npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }"
                                           % ("1, " * 100 + "2, 3, 1"), bytes(24)))
    for cmd in ("verify", "explain"):
        cases.append(_case(K, f"{cmd} --inputs of 103 dimensions", [cmd, TINY, "--inputs", npz] +
                           (["--to", "numpy"] if cmd == "verify" else []), [TINY, npz], named=False))
    return cases


def main() -> int:
    """``python tests/attacks_round6.py [--group NAME] [--match TEXT] [--json FILE]``: build and run every case."""
    import attack_run

    return attack_run.battery_main(build, run_case5, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
