"""Hostile inputs, red team round 5: what rounds 1-4 (attacks.py, attacks_more.py, attacks_round3.py,
attacks_round4.py) do not build.

Same :class:`attacks.Case` contract and runner as round 4 (:func:`attacks_round4.run_case4`: one line
naming the file, no traceback, no raw escape on stderr, nothing read outside the input's folder, bounded
time and memory, inputs unchanged, no output left behind on a refusal, exit 2 where a refusal is due).

Classes: ``options5`` (numbers and names on the command line no round tried: ``verify --timeout``,
``--batch``/``--steps`` past int64, ``--opset`` out of range, ``--artifact`` for an unknown target,
``--to`` naming nothing, ``inspect --layer`` carrying escapes), ``h55`` (a full Keras 2 .h5 whose
``model_config`` attribute is not text: an integer, NaN, HDF5's empty attribute, a compound, an object
reference, a 2-D string array; ``model_weights`` or a layer group that is a dataset; ``weight_names``
that are not text or alias another layer's arrays; ``layer_names`` naming the root ``/``; a weight that
is a named datatype, not a dataset; version attributes carrying escapes), ``config5`` (Keras 3 config
values of the wrong JSON type: names that are numbers, null or objects, ``class_name`` not text, a
``config`` that is a list, ``layers`` an object, booleans given as the strings ``"false"`` or numbers,
units past int64, a NaN dropout, an activation object naming ``os.system``, dtype policies that are
not float, 40-dimension shapes), ``numbers5`` (a Masking ``mask_value``, a LeakyReLU slope, a Rescaling
scale or offset that is NaN, infinite, past float32's range, text, a bool or null: refused, or computed as
Keras computes it: a verify mismatch fails the case), ``zip5`` (member names with backslash traversal, an absolute or
``./`` config name, a config named in another case, the central directory and local header naming
different members, a stored member whose two sizes differ, a 64 KB comment with escapes, a
multi-disk end record, a central directory past the end, an empty zip and an empty file),
``safetensors5`` (header length 0, offsets as strings, a zero-size shape of 2**62, 64 dimensions,
F16 bytes not matching the shape, bytes after the last tensor, names carrying escapes, 100,000
metadata entries), ``torch5`` (a 1-element storage viewed as 10**12, a storage offset past its
end, a big-endian archive, a storage key with traversal), ``onnx5`` (an initializer holding raw_data and
float_data, float_data one value short, a weight of strings, a segment, activations and direction carrying
escapes, a weight that is also a graph input, W given as R, the default domain imported twice), ``npz5`` (``--inputs`` given the model
itself, a .gates file, an empty archive; ``explain --inputs`` of 3000 time steps), ``output5``
(``-o ""``, ``.``, a trailing slash, a file replaced by a torch folder, ``/sys``, a FIFO ``--plot``,
the same input twice to a batch, a batch ``-o`` that is a file).

``python tests/attacks_round5.py`` (2026-12-01, 2 shared cores, load 3-7): 262 attacks, 262 passed, peak memory
387 MiB. Before this round's fixes 16 failed: options5 2 (``--steps 2**63`` and ``--to ',,,'`` ran and said
'unproven'), config5 6 (dtype policies int8, 'object' and text with escapes read as float32), numbers5 4 (a NaN or
-1e308 mask_value, a -1e308 Rescaling scale/offset: verify mismatches), onnx5 2 (raw_data beside float_data read),
output5 2 (``-o .`` and ``-o /`` were 'a gateport bug'); 11 more first written as refusals are read as Keras
reads them (0/1 booleans, dropout rates, a disk number zipfile ignores, a big-endian torch archive).

The Python API's arguments of the wrong type (``force="no"``, ``dynamic="batch"``, ``opset=True``,
``targets="onnx"``, ``b"path"``, a NUL in a path; 8 of them failed as TypeError, ValueError or AttributeError,
or overwrote the file) are checked in tests/test_attacks_round5.py.
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

from attacks import (K3, K3_GRU, MODELS, Case, lstm_keys, read_keras, replace_strings, safetensors_bytes,
                     write_keras)
from attacks_round3 import SECRET_NAME, _case, _convert, build_groups
from attacks_round4 import TINY, _written, run_case4

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = ROOT / "fixtures" / "expected"
MULTI = MODELS / "k3_multi_input_add.keras"
#: Text that must never reach a terminal raw.
EVIL = "\x1b[2J\x1b[31mred\n\u202eevil\x07"


def run_case5(case: Case, marker: Path, timeout: float) -> tuple[list[str], dict]:
    """Round 4's checks, plus: a ``numbers5`` verify must not report a mismatch (an artifact computing other
    numbers than Keras from the same config value)."""
    problems, measured = run_case4(case, marker, timeout)
    if case.klass == "numbers5" and measured.get("exit") == 1:
        problems.append(f"verify found a mismatch: {measured.get('stderr', '')[:200]!r}")
    return problems, measured


def build(folder: Path, groups: tuple[str, ...] | None = None) -> list[Case]:
    """Every case (or those of the builders named in ``groups``)."""
    return build_groups(folder, (options_cases, h5_cases, config_cases, numbers_cases, zip_cases, safetensors_cases, torch_cases, onnx_cases, npz_cases, output_cases), groups)


# -- numbers and names on the command line ------------------------------------------------------------------
def options_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "options5"
    for label, extra in [("--timeout nan", ["--timeout", "nan"]), ("--timeout -1", ["--timeout", "-1"]),
                         ("--timeout 0", ["--timeout", "0"]), ("--timeout inf", ["--timeout", "inf"]),
                         ("--timeout 1e308", ["--timeout", "1e308"]),
                         ("--batch -1", ["--batch", "-1"]), ("--batch 2**63", ["--batch", str(2 ** 63)]),
                         ("--steps 0", ["--steps", "0"]), ("--steps 2**63", ["--steps", str(2 ** 63)]), 
                         ("--batch 2**40", ["--batch", str(2 ** 40)]),
                         ("--to ',,,'", ["--to", ",,,"]), ("--to 'onnx,ONNX'", ["--to", "onnx,ONNX"]),
                         ("--artifact for an unknown target", ["--artifact", f"evil{EVIL}={TINY}"]),
                         ("--artifact onnx twice", ["--artifact", f"onnx={TINY}", "--artifact", f"onnx={K3}"])]:
        expect = "any" if label in ("--timeout 1e308", "--timeout inf") else "refuse"
        cases.append(_case(K, f"verify {label}", ["verify", TINY, "--to", "torch", *extra], TINY, named=False,
                           expect=expect))
    for label, opset in [("-1", -1), ("0", 0), ("2**63", 2 ** 63), ("6", 6)]:
        out = folder / f"opset_{label.replace('*', '')}.onnx"
        cases.append(_case(K, f"convert --opset {label}", _convert(TINY, "onnx", out, "--opset", opset), TINY,
                           output=out, named=False))
    for label, value in [("an empty name", ""), ("escapes", EVIL), ("30,000 names", ",".join(["y"] * 30000))]:
        out = folder / f"names_{len(cases)}.onnx"
        cases.append(_case(K, f"convert --output-names {label}", _convert(TINY, "onnx", out, "--output-names", value),
                           TINY, output=out, named=False, expect="any" if label == "escapes" else "refuse"))
    cases.append(_case(K, "inspect --layer with escapes, 100 KB", ["inspect", TINY, "--layer", EVIL + "x" * 100000],
                       TINY, named=False))
    cases.append(_case(K, "inspect --layer lstm --gate with escapes",
                       ["inspect", TINY, "--layer", "lstm", "--gate", EVIL, "-o", folder / "g.npz"], TINY,
                       output=folder / "g.npz", named=False))
    return cases


# -- a full Keras 2 .h5 whose attributes and groups are not what they should be -----------------------------------
_KERNEL = "model_weights/lstm/lstm/lstm_cell/kernel:0"


def h5_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "h55"

    def cfg(value):
        def edit(f):
            del f.attrs["model_config"]
            f.attrs["model_config"] = value
        return edit

    def cfg_ref(f):
        del f.attrs["model_config"]
        f.attrs.create("model_config", f["model_weights"].ref, dtype=h5py.ref_dtype)

    def cfg_compound(f):
        del f.attrs["model_config"]
        f.attrs["model_config"] = np.array((1, 2.0), dtype=[("a", "i4"), ("b", "f8")])

    def weights_dataset(f):
        del f["model_weights"]
        f.create_dataset("model_weights", data=np.zeros(4, "f4"))

    def layer_dataset(f):
        names = f["model_weights"].attrs["layer_names"]
        del f["model_weights/lstm"]
        f["model_weights"].create_dataset("lstm", data=np.zeros(4, "f4"))
        f["model_weights"].attrs["layer_names"] = names

    def weight_names_int(f):
        f["model_weights/lstm"].attrs["weight_names"] = np.arange(3)

    def weight_names_alias(f):  # all three names are the kernel
        f["model_weights/lstm"].attrs["weight_names"] = np.array([b"lstm/lstm_cell/kernel:0"] * 3)

    def weight_names_absolute(f):  # absolute paths outside the layer's group
        f["model_weights/lstm"].attrs["weight_names"] = np.array(
            [b"/model_weights/lstm/lstm/lstm_cell/kernel:0", b"/model_weights/lstm/lstm/lstm_cell/kernel:0",
             b"/model_weights/lstm/lstm/lstm_cell/bias:0"])

    def weight_names_escapes(f):
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["model_weights/lstm"].attrs["weight_names"]]
        names[0] = "lstm/" + EVIL + ":0"
        f["model_weights/lstm"].attrs.create("weight_names", np.array(names, dtype=h5py.string_dtype()))

    def layer_names_root(f):
        f["model_weights"].attrs["layer_names"] = np.array([b"input_1", b"/"])

    def layer_names_dotdot(f):
        f["model_weights"].attrs["layer_names"] = np.array([b"input_1", b".."])

    def named_datatype(f):
        del f[_KERNEL]
        f[_KERNEL] = np.dtype("<f4")

    def region_ref(f):
        shape = f[_KERNEL].shape
        del f[_KERNEL]
        f.create_dataset(_KERNEL, shape=shape, dtype=h5py.regionref_dtype)

    def version_escapes(f):
        f.attrs["keras_version"] = EVIL + "9" * 5000
        f.attrs["backend"] = EVIL

    def version_int(f):
        f.attrs["keras_version"] = 3
        f.attrs["backend"] = np.arange(4)

    def training_config(f):
        f.attrs["training_config"] = json.dumps({"loss": {"class_name": "__import__('os').system('x')"}})

    def cfg_layers_object(f):
        c = json.loads(f.attrs["model_config"])
        c["config"]["layers"] = {"a": 1}
        f.attrs["model_config"] = json.dumps(c)

    edits = {"model_config an integer": cfg(np.int64(7)), "model_config NaN": cfg(np.float64("nan")),
             "model_config HDF5 empty": cfg(h5py.Empty("S10")), "model_config an object reference": cfg_ref,
             "model_config a compound": cfg_compound,
             "model_config a 2-D string array": cfg(np.array([["{}", "{}"], ["{}", "{}"]], dtype=h5py.string_dtype())),
             "model_weights a dataset": weights_dataset, "the LSTM's group a dataset": layer_dataset,
             "weight_names integers": weight_names_int, "weight_names all the kernel": weight_names_alias,
             "weight_names absolute paths": weight_names_absolute, "weight_names with escapes": weight_names_escapes,
             "layer_names naming the root /": layer_names_root, "layer_names naming ..": layer_names_dotdot,
             "the kernel a named datatype": named_datatype, "the kernel of region references": region_ref,
             "keras_version and backend with escapes": version_escapes,
             "keras_version an int, backend an array": version_int,
             "training_config carrying code": training_config, "model_config layers an object": cfg_layers_object}
    for i, (label, edit) in enumerate(edits.items()):
        src = folder / f"h{i}.h5"
        shutil.copy(TINY, src)
        with h5py.File(src, "r+") as f:
            edit(f)
        expect = "any" if label.startswith(("keras_version", "training_config", "weight_names absolute")) else "refuse"
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect))
        out = folder / f"h{i}_torch"
        cases.append(_case(K, f"{label} (torch)", _convert(src, "torch", out), src, output=out, expect=expect,
                           importable=True))
    return cases


# -- Keras 3 config values of the wrong JSON type ----------------------------------------------------------------
def _layer(cfg: dict, name: str) -> dict:
    return next(e for e in cfg["config"]["layers"] if e["name"] == name)


def config_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "config5"
    members = read_keras(K3_GRU)

    def both(name: str, key: str, value):
        def edit(c):
            _layer(c, name)["config"][key] = value
        return edit

    def rename(value):  # every reference to the layer too
        def edit(c):
            c["config"] = replace_strings(c["config"], "encoder", value)
        return edit

    def top(key, value):
        def edit(c):
            _layer(c, "encoder")[key] = value
        return edit

    def layers_object(c):
        c["config"]["layers"] = {"x": c["config"]["layers"][0]}

    def activation_os(c):
        _layer(c, "encoder")["config"]["activation"] = {"module": "os", "class_name": "system",
                                                        "config": {"command": "touch PWN"}, "registered_name": "os>system"}

    def dtype_policy(name):
        def edit(c):
            _layer(c, "encoder")["config"]["dtype"] = {"module": "keras", "class_name": "DTypePolicy",
                                                       "config": {"name": name}, "registered_name": None}
        return edit

    def rank40(c):
        _layer(c, "x")["config"]["batch_shape"] = [None] + [1] * 39 + [3]

    edits = {
        "a layer name that is a number": rename(123), "a layer name that is null": rename(None),
        "a layer name that is an object": rename({"a": 1}), "a layer name of 100 KB with escapes": rename(EVIL * 5000),
        "class_name a number": top("class_name", 5), "class_name null": top("class_name", None),
        "config a list": top("config", [1, 2]), "layers an object": layers_object,
        "return_sequences the string 'false'": both("encoder", "return_sequences", "false"),
        "go_backwards 1": both("encoder", "go_backwards", 1), "go_backwards 'yes'": both("encoder", "go_backwards", "yes"),
        "reset_after null": both("encoder", "reset_after", None), "use_bias the string 'true'": both("encoder", "use_bias", "true"),
        "units 2**63": both("encoder", "units", 2 ** 63), "units 2**31": both("encoder", "units", 2 ** 31),
        "dropout NaN": both("encoder", "dropout", float("nan")),
        "recurrent_dropout 2": both("encoder", "recurrent_dropout", 2.0),
        "activation an object naming os.system": activation_os,
        "activation with escapes": both("encoder", "activation", "tanh" + EVIL),
        "dtype policy int8": dtype_policy("int8"), "dtype policy object": dtype_policy("object"),
        "dtype policy with escapes": dtype_policy(EVIL), "an input of 41 dimensions": rank40,
        "RepeatVector n the string '4'": both("repeat", "n", "4"),
    }
    # read as Keras reads them: 0/1 are false/true (keras_context.flag), Keras clamps a dropout rate to [0, 1]
    # (and none applies at inference), a long name is escaped and cut wherever it is shown
    accepted = ("go_backwards 1", "dropout NaN", "recurrent_dropout 2", "a layer name of 100 KB with escapes")
    for i, (label, edit) in enumerate(edits.items()):
        c = json.loads(members["config.json"])
        edit(c)
        src = folder / f"c{i}.keras"
        write_keras(src, {**members, "config.json": json.dumps(c, allow_nan=True).encode()})
        expect = "any" if label in accepted else "refuse"
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect))
        out = folder / f"c{i}.onnx"
        cases.append(_case(K, f"{label} (onnx)", _convert(src, "onnx", out), src, output=out, expect=expect))
    return cases


# -- numbers of a config that reach generated code ------------------------------------------------------------
def numbers_cases(folder: Path) -> list[Case]:
    """A mask value, a slope or a scale becomes a literal in model.py and a constant in the ONNX graph: NaN and
    infinity are no Python literal (``nan`` is a NameError), text or a bool is no number. Each must be refused
    or computed as Keras computes it (verify: no mismatch, exit 1 is a failure here)."""
    cases: list[Case] = []
    K = "numbers5"
    sources = {"Masking mask_value": (MODELS / "k3_masking_bilstm_named.keras", "masking", "mask_value"),
               "LeakyReLU negative_slope": (MODELS / "k3_activation_objects.keras", "leaky_re_lu", "negative_slope"),
               "Rescaling offset": (MODELS / "k3_rescaling_gru.keras", "rescaling", "offset"),
               "Rescaling scale": (MODELS / "k3_rescaling_gru.keras", "rescaling", "scale")}
    values = {"NaN": float("nan"), "inf": float("inf"), "-1e308": -1e308, "the string '0.5'": "0.5", "true": True,
              "null": None}
    for what, (model, name, key) in sources.items():
        members = read_keras(model)
        for label, value in values.items():
            c = json.loads(members["config.json"])
            entry = _find_layer(c, name)
            entry["config"][key] = value
            src = folder / f"n{len(cases)}.keras"
            write_keras(src, {**members, "config.json": json.dumps(c, allow_nan=True).encode()})
            out = folder / f"n{len(cases)}_torch"
            cases.append(_case(K, f"{what} {label} (torch)", _convert(src, "torch", out), src, output=out,
                               expect="any", importable=True))
            cases.append(_case(K, f"{what} {label} (verify)", ["verify", src, "--to", "torch,numpy,onnx,keras"], src,
                               expect="any"))
    return cases


def _find_layer(cfg, name: str) -> dict:
    """The layer config named ``name`` anywhere in a config tree (a Dense's activation object included)."""
    stack = [cfg]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            if isinstance(o.get("config"), dict) and o["config"].get("name") == name and "class_name" in o:
                return o
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    raise KeyError(name)


# -- .keras zips lying about their members -------------------------------------------------------------------
def _central(raw: bytes | bytearray, name: str) -> int:
    """Offset of ``name``'s central directory header."""
    pos = raw.find(b"PK\x01\x02")
    while pos != -1:
        n, e, c = struct.unpack("<HHH", raw[pos + 28:pos + 34])
        if bytes(raw[pos + 46:pos + 46 + n]) == name.encode():
            return pos
        pos = raw.find(b"PK\x01\x02", pos + 46 + n + e + c)
    raise KeyError(name)


def zip_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "zip5"
    members = read_keras(K3_GRU)
    stored = write_keras(folder / "stored_src.keras", members)
    raw = stored.read_bytes()

    def renamed(new_names: dict[str, str]) -> dict[str, bytes]:
        return {new_names.get(n, n): d for n, d in members.items()}

    variants: dict[str, bytes] = {}
    for label, m in [("config.json named with a backslash traversal", {**members, "..\\..\\evil.json": b"x"}),
                     ("config.json absolute (/config.json)", renamed({"config.json": "/config.json"})),
                     ("config.json as ./config.json", renamed({"config.json": "./config.json"})),
                     ("config.json as Config.json", renamed({"config.json": "Config.json"})),
                     ("the weights named with escapes", renamed({"model.weights.h5": "model.weights.h5" + EVIL})),
                     ("an empty zip", {})]:
        p = folder / f"z{len(variants)}.keras"
        write_keras(p, m)
        variants[label] = p.read_bytes()
    # the central directory names config.json, the local header another name of the same length
    r = bytearray(raw)
    off = struct.unpack("<I", r[_central(r, "config.json") + 42:_central(r, "config.json") + 46])[0]
    n = struct.unpack("<H", r[off + 26:off + 28])[0]
    r[off + 30:off + 30 + n] = b"x" * n
    variants["the local header naming another member than the central directory"] = bytes(r)
    # a stored member whose compressed and uncompressed sizes differ (central directory and local header)
    r = bytearray(raw)
    c = _central(r, "config.json")
    size = struct.unpack("<I", r[c + 24:c + 28])[0]
    r[c + 20:c + 24] = struct.pack("<I", size // 2)
    r[off + 18:off + 22] = struct.pack("<I", size // 2)
    variants["stored config.json whose compressed size is half its size"] = bytes(r)
    # a 64 KB comment carrying escapes
    p = folder / "comment.keras"
    with zipfile.ZipFile(p, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        z.comment = (EVIL.encode() * 4000)[:65535]
    variants["a 64 KB comment with escapes"] = p.read_bytes()
    # end record: multi-disk, and a central directory past the end
    r = bytearray(raw)
    e = r.rfind(b"PK\x05\x06")
    r[e + 4:e + 6] = struct.pack("<H", 3)
    variants["an end record of disk 3"] = bytes(r)
    r = bytearray(raw)
    r[e + 16:e + 20] = struct.pack("<I", len(raw) + 1000)
    variants["a central directory offset past the end"] = bytes(r)
    r = bytearray(raw)
    r[e + 12:e + 16] = struct.pack("<I", 0xFFFFFFF0)
    variants["a central directory size of 4 GiB"] = bytes(r)
    variants["an empty file"] = b""
    variants["the end record alone"] = raw[e:]
    for i, (label, data) in enumerate(variants.items()):
        src = folder / f"v{i}.keras"
        src.write_bytes(data)
        # zipfile reads a single-disk archive whatever disk number its end record gives (the members are all here)
        expect = "any" if label.startswith(("a 64 KB comment", "config.json named with a backslash",
                                            "an end record of disk")) else "refuse"
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect))
        if i % 2 == 0:
            out = folder / f"v{i}.onnx"
            cases.append(_case(K, f"{label} (onnx)", _convert(src, "onnx", out), src, output=out, expect=expect))
    return cases


# -- safetensors headers that lie in ways round 1-3 did not try ----------------------------------------------
def safetensors_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "safetensors5"
    keys = lstm_keys("rnn")

    def header_for(dtype="F32", size=4, edit=None):
        header, off = {}, 0
        for k, shape in keys.items():
            n = int(np.prod(shape)) * size
            header[k] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
        if edit:
            edit(header)
        return header, off

    files: dict[str, bytes] = {}
    files["header length 0"] = struct.pack("<Q", 0) + bytes(64)
    h, n = header_for()
    first = next(iter(h))
    files["offsets as strings"] = safetensors_bytes(
        {**h, first: {**h[first], "data_offsets": [str(v) for v in h[first]["data_offsets"]]}}, bytes(n))
    files["a zero-size shape of [0, 2**62]"] = safetensors_bytes(
        {**h, "rnn.extra": {"dtype": "F32", "shape": [0, 2 ** 62], "data_offsets": [n, n]}}, bytes(n))
    files["64 dimensions of 2"] = safetensors_bytes(
        {**h, first: {**h[first], "shape": [2] * 64}}, bytes(n))
    hf, nf = header_for("F16", 4)  # F16 declared, float32's byte counts
    files["F16 whose bytes are twice the shape"] = safetensors_bytes(hf, bytes(nf))
    files["1 MB after the last tensor"] = safetensors_bytes(h, bytes(n) + bytes(1 << 20))
    files["a tensor name with escapes"] = safetensors_bytes(
        {(k if k != first else first + EVIL): v for k, v in h.items()}, bytes(n))
    files["100,000 metadata entries"] = safetensors_bytes(
        {**h, "__metadata__": {f"k{i}": "v" for i in range(100000)}}, bytes(n))
    files["a metadata value with escapes"] = safetensors_bytes({**h, "__metadata__": {"format": "pt" + EVIL}},
                                                               bytes(n))
    head = json.dumps(h).encode()
    files["the header padded with NULs"] = struct.pack("<Q", len(head) + 16) + head + bytes(16) + bytes(n)
    files["the header length 2**64-1"] = struct.pack("<Q", 2 ** 64 - 1) + head + bytes(n)
    hm, nm = header_for(edit=lambda hh: hh[first].update(dtype="F64"))
    files["F32 and F64 mixed in one layer"] = safetensors_bytes(hm, bytes(nm))
    for i, (label, data) in enumerate(files.items()):
        src = folder / f"s{i}.safetensors"
        src.write_bytes(data)
        expect = "any" if label in ("1 MB after the last tensor", "a metadata value with escapes",
                                    "the header padded with NULs", "a zero-size shape of [0, 2**62]",
                                    "100,000 metadata entries") else "refuse"
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect))
        out = folder / f"s{i}_torch"
        cases.append(_case(K, f"{label} (torch)", _convert(src, "torch", out), src, output=out, expect=expect,
                           importable=True))
    return cases


# -- PyTorch zip checkpoints whose storages lie -----------------------------------------------------------------
def torch_cases(folder: Path) -> list[Case]:
    import torch

    cases: list[Case] = []
    K = "torch5"
    lstm = torch.nn.LSTM(3, 4)
    sd = {f"rnn.{k}": v.detach() for k, v in lstm.state_dict().items()}
    files: dict[str, Path] = {}
    p = folder / "zero_stride.pt"
    torch.save({**sd, "rnn.extra": torch.zeros(1, 1).expand(10 ** 6, 10 ** 6)}, p)
    files["a 1-element storage viewed as 10**12 elements"] = p
    p = folder / "offset_past.pt"
    storage = torch.zeros(4)
    view = torch.empty(0).set_(storage.untyped_storage(), 0, (2,), (1,))
    torch.save({**sd, "rnn.extra": view}, p)
    m = read_keras(p)
    pkl = next(k for k in m if k.endswith("data.pkl"))
    # the view's storage offset 0 -> 3 (past the end of a 4-element storage for 2 elements)
    m[pkl] = m[pkl].replace(b"K\x00K\x02\x85", b"K\x03K\x02\x85", 1)
    write_keras(p, m)
    files["a storage offset past its end"] = p
    p = folder / "big_endian.pt"
    torch.save(sd, p)
    m = read_keras(p)
    bo = next((k for k in m if k.endswith("byteorder")), None)
    if bo:
        m[bo] = b"big"
        write_keras(p, m)
        files["a big-endian archive"] = p
    p = folder / "traversal_key.pt"
    torch.save(sd, p)
    m = read_keras(p)
    pkl = next(k for k in m if k.endswith("data.pkl"))
    data_members = sorted(k for k in m if "/data/" in k)
    first = data_members[0].rsplit("/", 1)[1]
    evil_key = ("../../" + SECRET_NAME)[: len(first) + 40]
    m[pkl] = m[pkl].replace(b"X" + struct.pack("<I", len(first)) + first.encode(),
                            b"X" + struct.pack("<I", len(evil_key)) + evil_key.encode(), 1)
    write_keras(p, m)
    files["a storage key with ../ traversal"] = p
    good = folder / "good.pt"
    torch.save(sd, good)
    p = folder / "deflated.pt"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in read_keras(good).items():
            z.writestr(name, data)
    files["deflated members"] = p
    for label, src in files.items():
        # a big-endian archive is read as torch.load reads it (byte-swapped: as saved on a big-endian machine)
        expect = "any" if label in ("deflated members", "a big-endian archive") else "refuse"
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect))
        out = folder / f"{src.stem}.onnx"
        cases.append(_case(K, f"{label} (onnx)", _convert(src, "onnx", out), src, output=out, expect=expect))
    return cases


# -- ONNX files whose tensors and attributes say two things ---------------------------------------------------
def onnx_cases(folder: Path) -> list[Case]:
    import onnx
    from onnx import TensorProto, helper

    cases: list[Case] = []
    K = "onnx5"
    base = onnx.load(str(_written(folder, "onnx")))

    def lstm(m):
        return next(n for n in m.graph.node if n.op_type == "LSTM")

    def weight(m, k: int):
        name = lstm(m).input[k]
        return next(t for t in m.graph.initializer if t.name == name)

    def raw_and_float(m):  # both raw_data and float_data: which one a reader takes decides the numbers
        t = weight(m, 1)
        t.float_data.extend([1.0] * int(np.prod(t.dims)))

    def float_count(m):  # float_data of one value fewer than the dims hold
        t = weight(m, 1)
        a = onnx.numpy_helper.to_array(t).reshape(-1)
        t.ClearField("raw_data")
        t.float_data.extend(a[:-1].tolist())

    def string_weight(m):
        t = weight(m, 2)
        n = int(np.prod(t.dims))
        t.CopyFrom(helper.make_tensor(t.name, TensorProto.STRING, list(t.dims), [b"x"] * n))

    def segment(m):
        weight(m, 1).segment.begin = 3
        weight(m, 1).segment.end = 10 ** 12

    def activations_escapes(m):
        node = lstm(m)
        for a in list(node.attribute):
            if a.name == "activations":
                node.attribute.remove(a)
        node.attribute.append(helper.make_attribute("activations", ["Sigmoid" + EVIL, "Tanh", "Tanh"]))

    def weight_is_input(m):  # W also a graph input: a runtime lets the caller replace the weights
        t = weight(m, 1)
        m.graph.input.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)))

    def w_as_r(m):  # one initializer given as both W and R
        node = lstm(m)
        node.input[2] = node.input[1]

    def opsets_twice(m):
        m.opset_import.append(helper.make_opsetid("", 9))

    def value_info_escapes(m):
        m.graph.value_info.append(helper.make_tensor_value_info("v" + EVIL, TensorProto.FLOAT, ["d" + EVIL]))

    def direction_escapes(m):
        node = lstm(m)
        for a in list(node.attribute):
            if a.name == "direction":
                node.attribute.remove(a)
        node.attribute.append(helper.make_attribute("direction", "forward" + EVIL))

    def int64_dims_overflow(m):
        t = weight(m, 1)
        del t.dims[:]
        t.dims.extend([2 ** 62, 4, 0])

    edits = {"an initializer with raw_data and float_data": raw_and_float,
             "float_data one value short of its dims": float_count, "a weight of strings": string_weight,
             "a segmented initializer": segment, "activations carrying escapes": activations_escapes,
             "a weight that is also a graph input": weight_is_input, "W given as R": w_as_r,
             "the default domain imported twice": opsets_twice,
             "a value_info named with escapes": value_info_escapes, "direction carrying escapes": direction_escapes,
             "dims [2**62, 4, 0]": int64_dims_overflow}
    for i, (label, edit) in enumerate(edits.items()):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        edit(m)
        src = folder / f"o{i}.onnx"
        src.write_bytes(m.SerializeToString())
        # an initializer listed as a graph input is read as the file's constant (inspect says so)
        expect = "any" if label in ("a value_info named with escapes", "a weight that is also a graph input") \
            else "refuse"
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect))
        out = folder / f"o{i}_torch"
        cases.append(_case(K, f"{label} (torch)", _convert(src, "torch", out), src, output=out, expect=expect,
                           importable=True))
    return cases


# -- .npz given to verify / explain that are not what they claim ------------------------------------------------
def npz_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "npz5"
    own = folder / "own.keras"
    shutil.copy(K3_GRU, own)
    gates = _written(folder, "gates")
    empty = folder / "empty.npz"
    with zipfile.ZipFile(empty, "w"):
        pass
    for label, p in [("the model itself (a .keras zip)", own), ("a .gates file", gates), ("an empty archive", empty)]:
        for cmd in ("verify", "explain"):
            cases.append(_case(K, f"{cmd} --inputs {label}", [cmd, own, "--inputs", p], [own, p], named=False))
    exp = np.load(EXPECTED / "tiny_lstm.npz")
    key = next(k for k in exp.files if k.startswith("in:"))
    long = folder / "long.npz"
    np.savez(long, **{key: np.random.default_rng(0).standard_normal((4, 3000, 1)).astype("f4")})
    cases.append(_case(K, "explain --inputs 4 x 3000 time steps (finite differences)", ["explain", TINY, "--inputs", long],
                       [TINY, long], expect="any", named=False))
    wide = folder / "wide.npz"
    np.savez(wide, **{key: np.zeros((20000, 3, 1), "f4")})
    cases.append(_case(K, "explain --inputs a batch of 20,000", ["explain", TINY, "--inputs", wide], [TINY, wide],
                       expect="any", named=False))
    obj = folder / "obj.npz"
    with zipfile.ZipFile(obj, "w") as z:
        z.writestr(key + ".npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1, 3, 1), }"
                   .ljust(128 - 1, b" ") + b"\n" + b"\x80\x04N.")
    for cmd in ("verify", "explain"):
        cases.append(_case(K, f"{cmd} --inputs a pickled object array", [cmd, TINY, "--inputs", obj], [TINY, obj],
                           named=False))
    return cases


# -- outputs: odd paths ------------------------------------------------------------------------------------------
def output_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "output5"
    src = folder / "m.keras"
    shutil.copy(K3_GRU, src)
    existing = folder / "existing_file"
    existing.write_bytes(b"the user's file")
    dir_link = folder / "link_to_dir"
    real_dir = folder / "real_dir"
    real_dir.mkdir(exist_ok=True)
    (real_dir / "precious.txt").write_text("keep\n")
    if not os.path.lexists(dir_link):
        dir_link.symlink_to(real_dir)
    fifo = folder / "plot.png"
    if not fifo.exists():
        os.mkfifo(fifo)
    items = [
        ("-o '' (onnx)", _convert(src, "onnx", ""), [src], None, "refuse"),
        ("-o . (onnx)", _convert(src, "onnx", "."), [src], None, "refuse"),
        ("-o / (onnx)", _convert(src, "onnx", "/"), [src], None, "refuse"),
        ("-o <folder>/.. (onnx)", _convert(src, "onnx", str(real_dir) + "/.."), [src], None, "refuse"),
        ("-o a name with a trailing slash (onnx)", _convert(src, "onnx", str(folder / "slash.onnx") + "/"), [src],
         folder / "slash.onnx", "any"),
        ("--to torch -o an existing file --force", _convert(src, "torch", existing, "--force"), [src, existing],
         None, "refuse"),
        ("--to torch -o a symlink to a folder of the user's --force", _convert(src, "torch", dir_link, "--force"),
         [src, real_dir / "precious.txt"], None, "any"),
        ("-o under /sys", _convert(src, "onnx", "/sys/gateport_attack.onnx"), [src], None, "refuse"),
        ("-o under /proc", _convert(src, "onnx", "/proc/gateport_attack.onnx"), [src], None, "refuse"),
        ("diff --plot a FIFO --force", ["diff", src, src, "--plot", fifo, "--force"], [src], None, "refuse"),
        ("explain --plot /dev/null --force", ["explain", src, "--plot", "/dev/null", "--force"], [src], None,
         "refuse"),
        ("inspect --gate -o a folder", ["inspect", src, "--layer", "encoder", "--gate", "update", "-o", real_dir],
         [src], None, "refuse"),
        ("batch: the same input twice", ["convert", src, src, "--to", "onnx", "-o", folder / "twice"], [src],
         folder / "twice", "any"),
        ("batch: -o an existing file", ["convert", src, K3, "--to", "onnx", "-o", existing], [src, existing], None,
         "refuse"),
        ("batch: a glob matching nothing", ["convert", str(folder / "nothing*.keras"), "--to", "onnx", "-o",
                                            folder / "none_out"], [src], folder / "none_out", "refuse"),
        ("-o a name with escapes (onnx)", _convert(src, "onnx", folder / ("e" + EVIL + ".onnx")), [src],
         folder / ("e" + EVIL + ".onnx"), "any"),
    ]
    for label, argv, inputs, out, expect in items:
        cases.append(_case(K, label, argv, inputs, output=out, expect=expect, named=False))
    return cases


def main() -> int:
    """``python tests/attacks_round5.py [--group NAME] [--match TEXT]``: build and run every case."""
    from attack_run import battery_main

    return battery_main(build, run_case5, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
