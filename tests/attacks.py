"""Hostile inputs, built from the real fixtures, for the attack run (attack_run.py) and its CI sample.

Each :class:`Case` is one command line against one crafted file. A case passes when gateport either
refuses it with one line and exit 2, or converts it into an output that is whole and executes
nothing; in both cases without a traceback, without touching its inputs, within the time and
memory limits (checked by attack_run.py). The classes follow issue 11: code injection through
names, size bombs, storage tricks, outputs that would destroy inputs, malformed numbers, truncated
and foreign files, custom objects.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
K3 = MODELS / "k3_masking_bilstm_named.keras"
K3_GRU = MODELS / "k3_gru_repeat_lstm.keras"
H5 = MODELS / "lstm_dense_activation.h5"
WEIGHTS_ONLY = MODELS / "k3_weights_only_lstm_hard_sigmoid.weights.h5"
WEIGHTS_ONLY_JSON = MODELS / "k3_weights_only_lstm_hard_sigmoid.json"


@dataclass
class Case:
    """One attack: ``argv`` after ``gateport``; ``{dir}`` in it is the case's folder."""

    klass: str
    name: str
    argv: list[str]
    inputs: list[str] = field(default_factory=list)  # files that must come out unchanged
    output: str | None = None  # what the command may write (whole or absent)
    importable: bool = False  # the output is a torch folder whose model.py is imported afterwards
    expect: str = "refuse"  # "refuse": exit 2 with one line; "any": refused, or written whole and safe


def marker_code(marker: str) -> list[str]:
    """Payloads that would create ``marker`` if they ever ran as Python."""
    m = repr(marker)
    return [
        f'x"""\nopen({m}, "w").write("pwned")\n"""',
        f"x'''\nopen({m}, 'w')\n'''",
        f"x\nopen({m}, 'w')\n#",
        f"x'); open({m}, 'w'); ('",
        f'x"); open({m}, "w"); ("',
        f"x\\\nopen({m}, 'w')",
        f"x\r\nopen({m}, 'w')#",
        f"x\u2028open({m}, 'w')#",
        f"x\x0cimport os;open({m},'w')",
        f"__import__('os').system('touch ' + {m})",
        f"{{open({m}, 'w')}}",
        "x\nopen('pwned_relative', 'w')\n#",  # a relative path: caught by the empty working folder
    ]


ODD_NAMES = ["x²", "ﬁlter", "class", "__init__", "forward", "self", "torch", "nn", "0abc", " ", "a" * 3000,
             "é", "名前", "\u202egnp.exe", "a/b", "a.b", "x:0", "\x1b[31mred\x1b[0m\nfake: line", "x\x00y", "None"]


# -- helpers that edit real files ----------------------------------------------------------------
def read_keras(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_keras(path: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def replace_strings(obj, old: str, new: str):
    """Every string equal to ``old`` in a JSON tree replaced by ``new`` (names are referenced by value)."""
    if isinstance(obj, dict):
        return {k: replace_strings(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [replace_strings(v, old, new) for v in obj]
    return new if obj == old else obj


def renamed_keras(src: Path, dst: Path, old: str, new: str, meta: dict | None = None) -> Path:
    members = read_keras(src)
    cfg = json.loads(members["config.json"])
    members["config.json"] = json.dumps(replace_strings(cfg, old, new)).encode()
    if meta is not None:
        members["metadata.json"] = json.dumps(meta).encode()
    return write_keras(dst, members)


def edited_keras(src: Path, dst: Path, edit: Callable[[dict], None]) -> Path:
    members = read_keras(src)
    cfg = json.loads(members["config.json"])
    edit(cfg)
    members["config.json"] = json.dumps(cfg).encode()
    return write_keras(dst, members)


def layers_of(cfg: dict) -> list[dict]:
    return cfg["config"]["layers"]


def layer(cfg: dict, class_name: str) -> dict:
    for entry in layers_of(cfg):
        if entry["class_name"] == class_name:
            return entry
        inner = entry.get("config", {}).get("layer")
        if isinstance(inner, dict) and inner.get("class_name") == class_name:
            return inner
    raise KeyError(class_name)


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def raw_safetensors(header_text: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header_text)) + header_text + data


def state_dict_file(path: Path, keys: dict[str, tuple], metadata: dict | None = None) -> Path:
    """A plain safetensors state_dict with float32 tensors of the given shapes, written by hand."""
    header, offset, chunks = {}, 0, []
    rng = np.random.default_rng(0)
    for key, shape in keys.items():
        data = rng.standard_normal(shape).astype("<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        chunks.append(data)
    if metadata is not None:
        header["__metadata__"] = metadata
    path.write_bytes(safetensors_bytes(header, b"".join(chunks)))
    return path


def lstm_keys(prefix: str, units: int = 4, n_in: int = 3) -> dict[str, tuple]:
    return {f"{prefix}.weight_ih_l0": (4 * units, n_in), f"{prefix}.weight_hh_l0": (4 * units, units),
            f"{prefix}.bias_ih_l0": (4 * units,), f"{prefix}.bias_hh_l0": (4 * units,)}


def npy_bytes(header: str, data: bytes = b"") -> bytes:
    """A .npy file with a hand-written header dict (``{'descr': ..., 'shape': ...}``)."""
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def keras_with_npz(dst: Path, npz_members: dict[str, bytes], compress: bool = True) -> Path:
    """K3's config and metadata with ``model.weights.npz`` in place of its HDF5 weights."""
    members = read_keras(K3)
    del members["model.weights.h5"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in npz_members.items():
            z.writestr(name, data)
    members["model.weights.npz"] = buf.getvalue()
    return write_keras(dst, members)


def zip_bomb_member(dst: Path, inner_name: str, size: int, header: bytes = b"") -> bytes:
    """A deflated zip holding ``inner_name``: ``header`` then ``size`` zero bytes, streamed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(inner_name, "w", force_zip64=True) as f:
            f.write(header)
            block = bytes(1 << 20)
            left = size
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)
    return buf.getvalue()


def h5_weights_copy(dst: Path, edit: Callable[[h5py.File], None], src: Path = K3) -> Path:
    """K3 with its model.weights.h5 edited by ``edit``."""
    members = read_keras(src)
    tmp = dst.with_suffix(".weights.tmp.h5")
    tmp.write_bytes(members["model.weights.h5"])
    with h5py.File(tmp, "r+") as f:
        edit(f)
    members["model.weights.h5"] = tmp.read_bytes()
    tmp.unlink()
    return write_keras(dst, members)


def first_dataset(f: h5py.File, part: str = "") -> str:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and part in n else None)
    return names[0]


def replace_dataset(f: h5py.File, name: str, **create) -> None:
    del f[name]
    f.create_dataset(name, **create)


# -- the cases -----------------------------------------------------------------------------------
def build(folder: Path, quick: bool = False) -> list[Case]:
    """Every attack case, its files written under ``folder``. ``quick``: a small sample for CI."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = str(folder / "MARKER")
    cases: list[Case] = []
    cases += injection_cases(folder, marker, quick)
    cases += size_cases(folder, quick)
    cases += number_cases(folder, quick)
    cases += output_cases(folder)
    cases += foreign_cases(folder, quick)
    cases += semantic_cases(folder)
    return cases


def _convert(src: Path, to: str, out: Path, *extra: str) -> list[str]:
    return ["convert", str(src), "--to", to, "-o", str(out), *extra]


def injection_cases(folder: Path, marker: str, quick: bool) -> list[Case]:
    """Names carrying code or odd characters, through every carrier, into every writer."""
    cases: list[Case] = []
    payloads = marker_code(marker) + ODD_NAMES
    if quick:
        payloads = payloads[:3] + ["x²", "\x1b[31mred\x1b[0m\nfake: line"]
    carriers = {  # carrier -> function(payload, path) writing the crafted file
        "keras_layer_name": lambda p, d: renamed_keras(K3, d, "bidirectional", p),
        "keras_model_name": lambda p, d: renamed_keras(K3, d, "functional", p),
        "keras_input_name": lambda p, d: renamed_keras(K3, d, "x", p),
        "keras_output_name": lambda p, d: renamed_keras(K3, d, "probabilities", p)
        if b'"probabilities"' in read_keras(K3)["config.json"] else renamed_keras(K3, d, "dense", p),
        "keras_version": lambda p, d: renamed_keras(K3, d, "__none__", "__none__",
                                                     meta={"keras_version": p, "date_saved": p}),
        "state_dict_key": lambda p, d: state_dict_file(d, lstm_keys(p)),
        "state_dict_metadata": lambda p, d: state_dict_file(d, lstm_keys("rnn"), {"format": "pt", "name": p}),
    }
    others = ["onnx", "keras", "gates", "torch-state-dict"]
    n = 0
    for carrier, make in carriers.items():
        for i, payload in enumerate(payloads):
            suffix = ".safetensors" if carrier.startswith("state_dict") else ".keras"
            src = folder / f"inj_{carrier}_{i}{suffix}"
            try:
                make(payload, src)
            except (ValueError, UnicodeEncodeError):  # a name the carrier cannot even hold
                continue
            # code payloads go to the generated code (torch) and one other writer; odd names to one writer
            rotating = others[(i + n) % len(others)]
            for to in (["torch", rotating] if "open(" in payload else [rotating if i % 2 else "torch"]):
                n += 1
                out = folder / f"out_inj_{n}" if to == "torch" else folder / f"out_inj_{n}.{to}"
                cases.append(Case("code injection", f"{carrier}[{i}] -> {to}", _convert(src, to, out),
                                  inputs=[str(src)], output=str(out), importable=to == "torch", expect="any"))
    # the input file's own name
    for i, payload in enumerate(marker_code(marker)[:4] if not quick else marker_code(marker)[:1]):
        safe = payload.replace("/", "_").replace("\x00", "_")
        src = folder / f"{safe}.keras"
        try:
            shutil.copy(K3, src)
        except OSError:
            continue
        out = folder / f"out_fname_{i}"
        cases.append(Case("code injection", f"file name[{i}] -> torch", _convert(src, "torch", out),
                          inputs=[str(src)], output=str(out), importable=True, expect="any"))
    # verify imports generated code: it must not run in the verifying process either
    src = folder / "inj_verify.keras"
    renamed_keras(K3, src, "bidirectional", marker_code(marker)[2])
    cases.append(Case("code injection", "verify of an injected layer name", ["verify", str(src)],
                      inputs=[str(src)], expect="any"))
    return cases


def size_cases(folder: Path, quick: bool) -> list[Case]:
    """Declared sizes far beyond the file: bombs, never-written datasets, huge headers."""
    cases: list[Case] = []

    def add(name: str, src: Path, *commands: str) -> None:
        for cmd in commands or ("inspect", "onnx"):
            argv = ["inspect", str(src)] if cmd == "inspect" else _convert(src, cmd, folder / f"out_{src.stem}.{cmd}")
            out = None if cmd == "inspect" else argv[-1]
            cases.append(Case("size bomb", f"{name} ({cmd})", argv, inputs=[str(src)], output=out))

    header = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1024, 1024, 1024), }")
    members = {f"{i}.npy": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", bytes(12))
               for i in range(3)}
    members["0.npy"] = header
    add("npz member declaring 4 GiB", keras_with_npz(folder / "npz_declared.keras", members))
    if not quick:
        bomb = zip_bomb_member(folder / "x", "layers/lstm/vars/0.npy", 1 << 30,
                               npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (268435456,), }"))
        members = read_keras(K3)
        del members["model.weights.h5"]
        members["model.weights.npz"] = bomb
        add("1 GiB deflated npy inside the npz", write_keras(folder / "npz_bomb.keras", members))
    for shape in ("(1000000, 1000000)", "(-1, 3)", "(8.5, 2)", "(True, 3)", "(10**30,)", "(1e400,)"):
        members = {"0.npy": npy_bytes(f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}")}
        add(f"npy shape {shape}", keras_with_npz(folder / f"npy_shape_{len(cases)}.keras", members), "inspect")
    members = {"0.npy": npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N.")}
    add("npy with object dtype (pickle)", keras_with_npz(folder / "npy_pickle.keras", members))
    members = {"0.npy": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", bytes(7))}
    add("truncated npy", keras_with_npz(folder / "npy_trunc.keras", members))

    def huge_chunked(f):
        name = first_dataset(f, "vars")
        replace_dataset(f, name, shape=(31623, 31623), dtype="f4", chunks=(1024, 1024))
    add("never-written chunked 31623x31623 kernel", h5_weights_copy(folder / "h5_chunked.keras", huge_chunked))

    def huge_declared(f):
        name = first_dataset(f, "vars")
        replace_dataset(f, name, shape=(10 ** 6, 10 ** 6), dtype="f4", chunks=(64, 64))
    add("declared 1e12-element dataset", h5_weights_copy(folder / "h5_1e12.keras", huge_declared))

    fifo = folder / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)

    def external(target):
        def edit(f):
            name = first_dataset(f, "vars")
            shape = f[name].shape
            replace_dataset(f, name, shape=shape, dtype="f4", external=[(str(target), 0, h5py.h5f.UNLIMITED)])
        return edit
    add("HDF5 external storage on a FIFO", h5_weights_copy(folder / "h5_ext_fifo.keras", external(fifo)))
    add("HDF5 external storage on /dev/zero", h5_weights_copy(folder / "h5_ext_zero.keras", external("/dev/zero")))
    add("HDF5 external storage on /etc/hostname",
        h5_weights_copy(folder / "h5_ext_etc.keras", external("/etc/hostname")))

    def virtual(f):
        name = first_dataset(f, "vars")
        shape = f[name].shape
        layout = h5py.VirtualLayout(shape=shape, dtype="f4")
        layout[...] = h5py.VirtualSource("/dev/zero", "x", shape=shape)
        del f[name]
        f.create_virtual_dataset(name, layout, fillvalue=0)
    add("HDF5 virtual dataset", h5_weights_copy(folder / "h5_virtual.keras", virtual))

    # legacy .h5 with a huge never-written kernel
    dst = folder / "legacy_chunked.h5"
    shutil.copy(H5, dst)
    with h5py.File(dst, "r+") as f:
        name = first_dataset(f, "kernel")
        replace_dataset(f, name, shape=(31623, 31623), dtype="f4", chunks=(1024, 1024))
    add("legacy .h5 never-written 31623x31623 kernel", dst)

    # safetensors headers
    for label, shape in [("1e12 elements", [10 ** 6, 10 ** 6]), ("negative", [-4, 3]), ("float", [8.5, 2]),
                         ("bool", [True, 3]), ("huge int", [10 ** 30]), ("string", ["3"])]:
        src = folder / f"st_shape_{label.replace(' ', '_')}.safetensors"
        src.write_bytes(safetensors_bytes({"rnn.weight_ih_l0": {"dtype": "F32", "shape": shape,
                                                                 "data_offsets": [0, 48]}}, bytes(48)))
        add(f"safetensors shape {label}", src)
    for label, offsets in [("past the end", [0, 10 ** 9]), ("negative", [-8, 40]), ("reversed", [48, 0]),
                           ("float", [0, 4.8e1])]:
        src = folder / f"st_off_{label.replace(' ', '_')}.safetensors"
        src.write_bytes(safetensors_bytes({"rnn.weight_ih_l0": {"dtype": "F32", "shape": [4, 3],
                                                                 "data_offsets": offsets}}, bytes(48)))
        add(f"safetensors offsets {label}", src)
    src = folder / "st_overlap.safetensors"
    src.write_bytes(safetensors_bytes({"rnn.weight_ih_l0": {"dtype": "F32", "shape": [16, 3], "data_offsets": [0, 192]},
                                       "rnn.weight_hh_l0": {"dtype": "F32", "shape": [16, 4], "data_offsets": [0, 256]},
                                       "rnn.bias_ih_l0": {"dtype": "F32", "shape": [16], "data_offsets": [256, 320]},
                                       "rnn.bias_hh_l0": {"dtype": "F32", "shape": [16], "data_offsets": [320, 384]}},
                                      bytes(384)))
    add("safetensors overlapping ranges", src)
    src = folder / "st_deep_header.safetensors"
    src.write_bytes(raw_safetensors(b'{"a": ' + deep_json(50000).encode() + b"}"))
    add("safetensors header 50k levels deep", src, "inspect")
    src = folder / "st_deep_meta.safetensors"
    state_dict_file(src, lstm_keys("rnn"))
    data = src.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    text = json.dumps(head)[:-1] + ', "__metadata__": {"x": ' + deep_json(50000) + "}}"
    src.write_bytes(raw_safetensors(text.encode(), data[8 + n:]))
    add("safetensors metadata 50k levels deep", src, "inspect")
    src = folder / "st_header_len.safetensors"
    src.write_bytes(struct.pack("<Q", 2 ** 62) + b"{}")
    add("safetensors header length 2^62", src, "inspect")

    # deep JSON in a .keras config and a --config file
    members = read_keras(K3)
    members["config.json"] = deep_json(50000).encode()
    add("config.json 50k levels deep", write_keras(folder / "deep_config.keras", members), "inspect")
    deep = folder / "deep_config.json"
    deep.write_text(deep_json(50000))
    cases.append(Case("size bomb", "--config 50k levels deep",
                      ["inspect", str(WEIGHTS_ONLY), "--config", str(deep)], inputs=[str(deep)]))
    # verify declared sizes
    cases.append(Case("size bomb", "verify --steps 10**9", ["verify", str(K3_GRU), "--steps", str(10 ** 9)]))
    cases.append(Case("size bomb", "verify --batch 10**9", ["verify", str(K3_GRU), "--batch", str(10 ** 9)]))

    def repeat_huge(cfg):
        layer(cfg, "RepeatVector")["config"]["n"] = 10 ** 9
    src = edited_keras(K3_GRU, folder / "repeat_huge.keras", repeat_huge)
    cases.append(Case("size bomb", "RepeatVector(10**9) verify", ["verify", str(src)], inputs=[str(src)]))

    def time_huge(cfg):
        layers_of(cfg)[0]["config"]["batch_shape"] = [None, 10 ** 9, 3]
    src = edited_keras(K3, folder / "time_huge.keras", time_huge)
    cases.append(Case("size bomb", "input of 10**9 time steps verify", ["verify", str(src)], inputs=[str(src)]))
    return cases


def number_cases(folder: Path, quick: bool) -> list[Case]:
    """Non-integer and out-of-range numbers where a config holds a size."""
    cases: list[Case] = []
    values = [float("inf"), 8.5, float("nan"), True, 10 ** 30, -1, 0, "3", None, [4]]
    if quick:
        values = values[:4]
    for i, value in enumerate(values):
        def units(cfg, v=value):
            layer(cfg, "LSTM")["config"]["units"] = v
        src = folder / f"num_units_{i}.keras"
        text = json.dumps(json.loads(read_keras(K3)["config.json"]), allow_nan=True)
        cfg = json.loads(text)
        units(cfg)
        members = read_keras(K3)
        members["config.json"] = json.dumps(cfg, allow_nan=True).encode()
        write_keras(src, members)
        for cmd in ("inspect", "torch"):
            out = folder / f"out_num_units_{i}_{cmd}"
            argv = ["inspect", str(src)] if cmd == "inspect" else _convert(src, "torch", out)
            cases.append(Case("bad number", f"units={value!r} ({cmd})", argv, inputs=[str(src)],
                              output=None if cmd == "inspect" else str(out), importable=cmd == "torch"))

        def shape(cfg, v=value):
            layers_of(cfg)[0]["config"]["batch_shape"] = [None, v, 3]
        src = edited_keras(K3, folder / f"num_shape_{i}.keras", shape) if not isinstance(value, float) or \
            value == value and abs(value) != float("inf") else None
        if src is None:
            cfg = json.loads(read_keras(K3)["config.json"])
            shape(cfg)
            members = read_keras(K3)
            members["config.json"] = json.dumps(cfg, allow_nan=True).encode()
            src = write_keras(folder / f"num_shape_{i}.keras", members)
        out = folder / f"out_num_shape_{i}.onnx"
        cases.append(Case("bad number", f"time dim={value!r} (onnx)", _convert(src, "onnx", out),
                          inputs=[str(src)], output=str(out),  # None is a dynamic axis, 0 an empty one
                          expect="any" if value is None or value == 0 and not isinstance(value, bool) else "refuse"))
    return cases


def output_cases(folder: Path) -> list[Case]:
    """Outputs that are, or resolve to, an input."""
    cases: list[Case] = []
    src = folder / "own.keras"
    shutil.copy(K3, src)
    cases.append(Case("output destroys input", "-o the input --force",
                      _convert(src, "keras", src, "--force"), inputs=[str(src)]))
    link = folder / "link.keras"
    if not link.exists():
        link.symlink_to(src)
    cases.append(Case("output destroys input", "-o a symlink to the input --force",
                      _convert(src, "keras", link, "--force"), inputs=[str(src)]))
    hard = folder / "hard.keras"
    if not hard.exists():
        os.link(src, hard)
    cases.append(Case("output destroys input", "-o a hard link to the input --force",
                      _convert(src, "keras", hard, "--force"), inputs=[str(src)]))
    sub = folder / "sub"
    sub.mkdir(exist_ok=True)
    cases.append(Case("output destroys input", "-o sub/../own.keras --force",
                      _convert(src, "keras", sub / ".." / "own.keras", "--force"), inputs=[str(src)]))
    batch = folder / "batch"
    batch.mkdir(exist_ok=True)
    for name in ("a.keras", "b.keras"):
        shutil.copy(K3, batch / name)
    cases.append(Case("output destroys input", "batch '*.keras' --to keras -o . --force",
                      ["convert", str(batch / "*.keras"), "--to", "keras", "-o", str(batch), "--force"],
                      inputs=[str(batch / "a.keras"), str(batch / "b.keras")]))
    for d in ("c1", "c2"):
        (folder / d).mkdir(exist_ok=True)
        shutil.copy(K3, folder / d / "same.keras")
    out = folder / "collide"
    cases.append(Case("output destroys input", "batch inputs with one stem --force",
                      ["convert", str(folder / "c1" / "same.keras"), str(folder / "c2" / "same.keras"),
                       "--to", "onnx", "-o", str(out), "--force"], inputs=[str(folder / "c1" / "same.keras")],
                      output=str(out)))
    cases.append(Case("output destroys input", "--config is the output",
                      _convert(WEIGHTS_ONLY, "keras-weights", folder / "cfg.weights.h5", "--config",
                               str(folder / "cfg.json"), "--force"), inputs=[]))
    shutil.copy(WEIGHTS_ONLY_JSON, folder / "cfg.json")
    cases[-1].inputs = [str(folder / "cfg.json")]
    tdir = folder / "tdir"
    tdir.mkdir(exist_ok=True)
    shutil.copy(K3, tdir / "model.keras")
    cases.append(Case("output destroys input", "--to torch -o the input's folder --force",
                      _convert(tdir / "model.keras", "torch", tdir, "--force"), inputs=[str(tdir / "model.keras")]))
    for label, out in [("-o ''", ""), ("-o /proc/x.onnx", "/proc/x.onnx"), ("-o missing folder", str(folder / "no" / "x.onnx")),
                       ("-o /dev/full", "/dev/full")]:
        cases.append(Case("bad output", label, _convert(K3, "onnx", out), inputs=[str(K3)]))
    return cases


def foreign_cases(folder: Path, quick: bool) -> list[Case]:
    """Truncated, empty, foreign and special files."""
    cases: list[Case] = []
    sources = [K3, H5, WEIGHTS_ONLY, MODELS / "keras1_lstm.h5", MODELS / "cudnn_lstm_gru.h5"]
    fractions = (0.01, 0.3, 0.7, 0.99) if not quick else (0.3,)
    for src in sources:
        data = src.read_bytes()
        for frac in fractions:
            dst = folder / f"trunc_{int(frac * 100)}_{src.name}"
            dst.write_bytes(data[: int(len(data) * frac)])
            cases.append(Case("truncated", f"{src.name} cut at {frac:.0%}",
                              _convert(dst, "onnx", folder / f"out_{dst.name}.onnx"), inputs=[str(dst)],
                              output=str(folder / f"out_{dst.name}.onnx"), expect="any"))
    empty = folder / "empty.h5"
    empty.write_bytes(b"")
    text = folder / "text.keras"
    text.write_text("hello\n" * 10)
    png = folder / "image.h5"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    pb = folder / "saved_model.pb"
    pb.write_bytes(b"\x08\x01\x12\x00" + bytes(60))
    for p in (empty, text, png, pb):
        cases.append(Case("foreign", p.name, ["inspect", str(p)], inputs=[str(p)]))
    for special in ("/dev/null", str(folder), "/proc/self/status", str(folder / "fifo")):
        cases.append(Case("foreign", f"input {special}", ["inspect", special]))
    zip_slip = folder / "slip.keras"
    members = read_keras(K3)
    members["../../evil.txt"] = b"x"
    members["/abs/evil.txt"] = b"x"
    write_keras(zip_slip, members)
    cases.append(Case("foreign", "zip with ../ and absolute members", _convert(zip_slip, "onnx", folder / "slip.onnx"),
                      inputs=[str(zip_slip)], output=str(folder / "slip.onnx"), expect="any"))  # never extracted
    many = folder / "many_members.keras"
    members = read_keras(K3)
    for i in range(20000 if not quick else 2000):
        members[f"junk/{i}"] = b""
    write_keras(many, members)
    cases.append(Case("foreign", "zip with 20000 members", ["inspect", str(many)], inputs=[str(many)], expect="any"))
    pt = folder / "pickle.pt"
    pt.write_bytes(b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.")
    cases.append(Case("foreign", "pickle .pt calling os.system", ["inspect", str(pt)], inputs=[str(pt)]))
    return cases


def semantic_cases(folder: Path) -> list[Case]:
    """Custom objects posing as built-ins, Lambda layers: refused, never executed."""
    cases: list[Case] = []

    def custom_lstm(cfg):
        entry = layer(cfg, "LSTM")
        entry["module"] = "evil_pkg.layers"
        entry["registered_name"] = "evil>LSTM"

    def custom_activation(cfg):
        layer(cfg, "LSTM")["config"]["activation"] = {"module": "evil_pkg", "class_name": "function",
                                                      "config": "tanh", "registered_name": "evil>tanh"}

    def lambda_layer(cfg):
        entry = layer(cfg, "Masking")
        entry["class_name"] = "Lambda"
        entry["config"]["function"] = {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}

    for label, edit in [("custom LSTM posing as built-in", custom_lstm),
                        ("custom activation posing as tanh", custom_activation), ("Lambda layer", lambda_layer)]:
        src = edited_keras(K3, folder / f"sem_{edit.__name__}.keras", edit)
        out = folder / f"out_sem_{edit.__name__}.onnx"
        cases.append(Case("custom object", label, _convert(src, "onnx", out), inputs=[str(src)], output=str(out)))
    return cases
