"""Hostile inputs, red team round 3: classes attacks.py and attacks_more.py do not build.

Same :class:`attacks.Case` contract and runner (``attack_run.run_case``), with three checks more
(:func:`run_case3`): stderr holds no raw control, escape or bidi character on any line; a refusal's
one line names the file it is about (``Case3.names``); and no file outside the input's folder is
opened (a sentinel ``gateport_SECRET`` file beside the case folder; every ``open`` the command makes
is seen by an audit hook). Verify cases of ``klass == "collide"`` must not report a mismatch (a
name collision that loads a weight into the wrong layer computes the wrong numbers).

Classes: ``npz3`` (members numpy reads but no header check saw: raw members, duplicates, FIFOs),
``onnx3`` (tensors outside the main graph: Constant attributes and subgraph initializers with
external data pointing out of the folder; dims whose product overflows int64; dim_param, doc
strings and metadata carrying code), ``collide`` (names equal after sanitizing, names shadowing
what generated code uses), ``safetensors3`` (header lengths past 2**63, odd offsets and shapes),
``h53`` (external storage / virtual / links aimed at the sentinel, attribute lists of 10**6
names), ``output3`` (a sidecar, --plot or --gate output landing on an input, /proc/self/root
paths, --force on a folder holding the user's files), ``message3`` (file names carrying escapes
for every reader), ``fifo`` (every file argument a FIFO), ``zip3`` (duplicate members, the checked pickle
not the one read, ZIP64 sizes), ``legacy3`` (Keras 1 / CuDNN names), ``gates3`` (the .gates weights
against their manifest).

``python tests/attacks_round3.py`` (2026-12-01, 2 shared cores): 434 attacks, 434 passed, peak memory
387 MiB; before the fixes of this round 20 failed (npz members numpy read unchecked, FIFOs, a raw
escape on a progress line, a symbolic feature axis; the Python API's TypeErrors are tested apart).
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

import attack_run
from attacks import (K3, MODELS, WEIGHTS_ONLY, WEIGHTS_ONLY_JSON, Case, lstm_keys, npy_bytes, raw_safetensors,
                     read_keras, replace_strings, state_dict_file, write_keras)

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = ROOT / "fixtures" / "expected"
TINY = MODELS / "tiny_lstm.h5"
MULTI = MODELS / "k3_multi_input_add.keras"
SECRET_NAME = "gateport_SECRET"


@dataclass
class Case3(Case):
    """A case with the names its refusal line must show (the file's name, as one_line escapes it)."""

    names: tuple[str, ...] = ()


#: The runner's wrapper with an audit hook logging every opened path that names the sentinel.
_AUDIT = """import os, sys
_log = os.environ.get("GATEPORT_ATTACK_READS")
def _hook(event, args):
    if _log and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        p = os.fsdecode(args[0])
        try:
            real = os.path.realpath(p)
        except (OSError, ValueError):
            real = p
        if "%s" in p or "%s" in real:
            with open(_log, "a") as f:
                f.write(real + "\\n")
sys.addaudithook(_hook)
""" % (SECRET_NAME, SECRET_NAME)

#: Characters that must never reach a terminal raw: C0/C1 controls but newline, DEL, bidi and invisible.
_RAW = set(map(chr, [*range(0, 10), *range(11, 32), *range(0x7F, 0xA0), 0x200B, 0x200E, 0x200F, 0x2028, 0x2029,
                     *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF]))


def run_case3(case: Case, marker: Path, timeout: float) -> tuple[list[str], dict]:
    """attack_run.run_case plus the round-3 checks (see the module docstring)."""
    reads = marker.with_name("reads")
    reads.unlink(missing_ok=True)
    wrapper = attack_run.WRAPPER
    os.environ["GATEPORT_ATTACK_READS"] = str(reads)
    attack_run.WRAPPER = _AUDIT + wrapper.replace("import atexit, resource, sys", "import atexit, resource", 1)
    try:
        problems, measured = attack_run.run_case(case, marker, timeout)
    finally:
        attack_run.WRAPPER = wrapper
        os.environ.pop("GATEPORT_ATTACK_READS", None)
    stderr = measured.get("stderr", "")
    full = stderr  # run_case keeps 300 characters: enough for the first line's start
    if any(ch in _RAW for ch in full.replace("\n", "")):
        problems.append(f"raw control/bidi character on stderr: {full[:200]!r}")
    if measured.get("exit") == 2 and isinstance(case, Case3) and case.names:
        if not any(n in full for n in case.names):
            problems.append(f"the error line does not name {case.names[0]!r}: {full[:200]!r}")
    if reads.exists():
        problems.append(f"READ OUTSIDE THE INPUT: {sorted(set(reads.read_text().split()))[:2]}")
    if case.klass == "collide" and measured.get("exit") == 1:
        problems.append(f"verify found a mismatch: {stderr[:200]!r}")
    if "a gateport bug" in stderr:
        problems.append(f"refused as a gateport bug: {stderr[:200]!r}")
    return problems, measured


def _name_of(path: Path) -> tuple[str, ...]:
    """What of ``path`` an error line must show: its name as one_line escapes it (or its ASCII start)."""
    from converters.sanitize import one_line

    escaped = one_line(path.name)
    return (escaped[:40], path.name[:12]) if escaped.isascii() else (escaped[:40],)


def _case(klass: str, name: str, argv: list[str], src: Path | list[Path], *, output: Path | None = None,
          expect: str = "refuse", importable: bool = False, named: bool = True) -> Case3:
    srcs = src if isinstance(src, list) else [src]
    return Case3(klass, name, [str(a) for a in argv], inputs=[str(s) for s in srcs],
                 output=None if output is None else str(output), expect=expect, importable=importable,
                 names=_name_of(srcs[0]) if named else ())


def _convert(src, to: str, out, *extra) -> list[str]:
    return ["convert", str(src), "--to", to, "-o", str(out), *map(str, extra)]


def build_groups(folder: Path, makers, groups: tuple[str, ...] | None = None) -> list[Case]:
    """The cases of every ``<group>_cases(sub_folder)`` in ``makers`` (or of those named in ``groups``), each group
    in its own sub-folder, beside the decoy file the path cases aim at (every round's ``build``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder.parent / SECRET_NAME).write_bytes(b"\x00" * 4096)
    cases: list[Case] = []
    for make in makers:
        if groups is None or make.__name__.removesuffix("_cases") in groups:
            sub = folder / make.__name__
            sub.mkdir(exist_ok=True)
            cases += make(sub)
    return cases


def failures(cases: list[Case], run, folder: Path, timeout: float) -> list[str]:
    """One line per case whose run (a round's ``run_case``) found a problem: the CI sample tests' loop."""
    lines = []
    for case in cases:
        problems, _ = run(case, folder / "MARKER", timeout=timeout)
        if problems:
            lines.append(f"[{case.klass}] {case.name!r}: {'; '.join(problems)}")
    return lines


def build(folder: Path, groups: tuple[str, ...] | None = None) -> list[Case]:
    """Every case (or those of the builders named in ``groups``)."""
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder.parent / (SECRET_NAME + ".h5"), "w") as f:
        f.create_dataset("x", data=np.zeros((4, 4), "f4"))
    return build_groups(folder, (npz_cases, onnx_cases, collide_cases, safetensors_cases, h5_cases, output_cases,
                                 message_cases, fifo_cases, zip_cases, legacy_cases, gates_cases), groups)


# -- npz given to verify / explain -------------------------------------------------------------------
def _deflated(members: list[tuple[str, bytes | tuple[bytes, int]]]) -> bytes:
    """A zip of ``(name, data)`` members, deflated; data ``(head, n)`` is ``head`` then n zero bytes, streamed."""
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            if isinstance(data, bytes):
                z.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
                continue
            head, n = data
            with z.open(zipfile.ZipInfo(name), "w", force_zip64=True) as f:
                f.write(head)
                block = bytes(1 << 20)
                while n > 0:
                    f.write(block[: min(n, len(block))])
                    n -= len(block)
    return buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    import io
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def npz_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "npz3"
    exp = np.load(EXPECTED / "tiny_lstm.npz")
    in_key = next(k for k in exp.files if k.startswith("in:"))
    out_key = next(k for k in exp.files if k.startswith("out:"))
    x, y = exp[in_key], exp[out_key]
    big = 3 << 29  # 1.5 GiB of zeros: a few MB deflated
    bomb_head = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % (big // 4))
    import warnings
    warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
    variants: dict[str, list[tuple[str, bytes | tuple[bytes, int]]]] = {
        # numpy's NpzFile reads a member named exactly like the key before key + ".npy"
        "raw .npy member named like the key, 1.5 GiB": [(in_key + ".npy", _npy(x)), (in_key, (bomb_head, big))],
        "raw bytes member named like the key, 1.5 GiB": [(in_key + ".npy", _npy(x)), (in_key, (b"x", big))],
        "raw object member named like the key": [(in_key + ".npy", _npy(x)),
                                                  (in_key, npy_bytes("{'descr': '|O', 'fortran_order': False, "
                                                                     "'shape': (1,), }", b"\x80\x04N."))],
        "duplicate members, the last an object array": [(in_key + ".npy", _npy(x)), (in_key + ".npy", npy_bytes(
            "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N."))],
        "duplicate members, the last 1.5 GiB": [(in_key + ".npy", _npy(x)), (in_key + ".npy", (bomb_head, big))],
        ".npy member deflated to 1.5 GiB": [(in_key + ".npy", (bomb_head, big))],
        "shape product past int64": [(in_key + ".npy", npy_bytes(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 4, 8), }" % (2 ** 62), bytes(64)))],
        "negative shape": [(in_key + ".npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                                       "'shape': (-1, 3, 2), }", bytes(64)))],
        "a .npy header of 60 KB": [(in_key + ".npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                                              "'shape': (1, 3, 2), " + " " * 60000 + "}", bytes(24)))],
        "member name with traversal": [("../../" + in_key + ".npy", _npy(x))],
        "member name with newline and ANSI": [(in_key + "\n\x1b[31m.npy", _npy(x))],
    }
    for label, members in variants.items():
        p = folder / f"npz_{len(cases)}.npz"
        p.write_bytes(_deflated(members))
        for cmd in ("verify", "explain"):
            cases.append(_case(K, f"{cmd} --inputs {label}", [cmd, TINY, "--inputs", p], p, expect="any"))
    for label, members in {
        "raw out member named like the key, 1.5 GiB": [(in_key + ".npy", _npy(x)), (out_key + ".npy", _npy(y)),
                                                        (out_key, (b"x", big))],
        "out .npy deflated to 1.5 GiB": [(in_key + ".npy", _npy(x)), (out_key + ".npy", (bomb_head, big))],
    }.items():
        p = folder / f"npz_exp_{len(cases)}.npz"
        p.write_bytes(_deflated(members))
        cases.append(_case(K, f"verify --expected {label}", ["verify", TINY, "--expected", p], p, expect="any"))
    many = folder / "npz_many.npz"  # 200,000 empty members
    with zipfile.ZipFile(many, "w") as z:
        z.writestr(in_key + ".npy", _npy(x))
        for i in range(200_000):
            z.writestr(f"m{i}.npy", b"")
    cases.append(_case(K, "verify --inputs 200,000 members", ["verify", TINY, "--inputs", many], many, expect="any"))
    return cases


# -- ONNX: tensors outside graph.initializer, dims, text fields -------------------------------------
def _onnx_base(folder: Path):
    import onnx
    base = folder / "base_lstm.onnx"
    if not base.exists():
        from converters.cli import main
        assert main(["-q", "convert", str(TINY), "--to", "onnx", "-o", str(base)]) == 0
    return onnx.load(str(base))


def onnx_cases(folder: Path) -> list[Case]:
    from onnx import TensorProto, helper

    cases: list[Case] = []
    K = "onnx3"
    secret = folder.parent.parent / SECRET_NAME
    (folder / "link_out").unlink(missing_ok=True)
    (folder / "link_out").symlink_to(secret)
    (folder / "dirlink").unlink(missing_ok=True)
    (folder / "dirlink").symlink_to(folder.parent.parent)

    def external(t, loc: str) -> None:
        t.ClearField("raw_data")
        del t.float_data[:]
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        t.external_data.add(key="location", value=loc)

    def as_constant(m, loc: str | None):
        """The first initializer moved into a Constant node's value attribute (external data at loc)."""
        t = m.graph.initializer[0]
        value = TensorProto()
        value.CopyFrom(t)
        if loc is not None:
            external(value, loc)
        del m.graph.initializer[0]
        m.graph.node.insert(0, helper.make_node("Constant", [], [t.name], value=value))

    def in_subgraph(m, loc: str | None, dims=None):
        """An If node whose branches hold an initializer (external data at loc, or the given dims)."""
        t = TensorProto()
        t.CopyFrom(m.graph.initializer[0])
        t.name = "sub_w"
        if loc is not None:
            external(t, loc)
        if dims is not None:
            del t.dims[:]
            t.dims.extend(dims)
        out = helper.make_tensor_value_info("sub_out", TensorProto.FLOAT, None)
        body = helper.make_graph([helper.make_node("Identity", ["sub_w"], ["sub_out"])], "b", [], [out], [t])
        cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
        m.graph.initializer.append(cond)
        m.graph.node.append(helper.make_node("If", ["cond"], ["if_out"], then_branch=body, else_branch=body))
        m.graph.output.append(helper.make_tensor_value_info("if_out", TensorProto.FLOAT, None))

    def nested_ifs(m, depth: int):
        out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [1])
        c = helper.make_tensor("c", TensorProto.FLOAT, [1], [1.0])
        leaf = g = helper.make_graph([helper.make_node("Identity", ["c"], ["o"])], "leaf", [], [out], [c])
        for i in range(depth):  # (the else branch a leaf: two copies of g a level would double each level)
            g = helper.make_graph([helper.make_node("If", ["cond"], ["o"], then_branch=g, else_branch=leaf)],
                                  f"g{i}", [], [out])
        m.graph.initializer.append(helper.make_tensor("cond", TensorProto.BOOL, [], [True]))
        m.graph.node.append(helper.make_node("If", ["cond"], ["deep_out"], then_branch=g, else_branch=g))
        m.graph.output.append(helper.make_tensor_value_info("deep_out", TensorProto.FLOAT, [1]))

    def dims(m, values):
        t = m.graph.initializer[0]
        del t.dims[:]
        t.dims.extend(values)

    def input_dim(m, value=None, param=None):
        d = m.graph.input[0].type.tensor_type.shape.dim[-1]
        if param is not None:
            d.dim_param = param
        else:
            d.dim_value = value

    payload = 'x"""\nopen("PWNED", "w")\n"""\x1b[31m\u202e' + "#" * 300
    edits = {
        "Constant value: external data at an absolute path": lambda m: as_constant(m, str(secret)),
        "Constant value: external data at ../": lambda m: as_constant(m, "../../" + SECRET_NAME),
        "Constant value: external data through a symlink out": lambda m: as_constant(m, "link_out"),
        "Constant value: external data through a folder symlink": lambda m: as_constant(m, "dirlink/" + SECRET_NAME),
        "Constant value: no external data (a legitimate constant)": lambda m: as_constant(m, None),
        "initializer: external data through a folder symlink": lambda m: external(m.graph.initializer[0],
                                                                                  "dirlink/" + SECRET_NAME),
        "If-branch initializer: external data at an absolute path": lambda m: in_subgraph(m, str(secret)),
        "If-branch initializer: external data at ../": lambda m: in_subgraph(m, "../../" + SECRET_NAME),
        "If-branch initializer: dims 2**40 x 2**40": lambda m: in_subgraph(m, None, [2 ** 40, 2 ** 40]),
        "If-branch initializer: dims -3": lambda m: in_subgraph(m, None, [-3]),
        "Ifs nested 25 deep": lambda m: nested_ifs(m, 25),
        "initializer dims whose product overflows int64": lambda m: dims(m, [2 ** 62, 8, 4]),
        "initializer dims 2**63-1 x 0": lambda m: dims(m, [2 ** 63 - 1, 0]),
        "initializer dims -2 x -8": lambda m: dims(m, [-2, -8]),
        "input dim 2**62": lambda m: input_dim(m, 2 ** 62),
        "input dim -5": lambda m: input_dim(m, -5),
        "input dim_param carrying code": lambda m: input_dim(m, param=payload),
        "input feature dim_param (symbolic features)": lambda m: input_dim(m, param="features"),
        "doc_string / producer / metadata carrying code": lambda m: (
            setattr(m, "doc_string", payload), setattr(m, "producer_name", payload),
            setattr(m.graph, "doc_string", payload), setattr(m.graph, "name", payload),
            m.metadata_props.add(key=payload, value=payload)),
        "producer_version of 5 MB": lambda m: setattr(m, "producer_version", "9" * (5 << 20)),
        "two opset imports for the default domain": lambda m: m.opset_import.add(domain="", version=1),
        "opset import for ai.onnx.ml 10**9": lambda m: m.opset_import.add(domain="ai.onnx.ml", version=10 ** 9),
        "opset version -1": lambda m: (m.opset_import.__delitem__(slice(None)), m.opset_import.add(domain="", version=-1)),
        "opset domain with escapes": lambda m: m.opset_import.add(domain="\x1b[2J\nevil", version=1),
        "initializer name with newline, ANSI and bidi": lambda m: _rename_value(m, m.graph.initializer[0].name,
                                                                                "w\n\x1b[31m\u202e"),
        "input name carrying code": lambda m: _rename_value(m, m.graph.input[0].name, payload),
        "string tensor of 10**6 entries": lambda m: m.graph.initializer.append(
            helper.make_tensor("strs", TensorProto.STRING, [10 ** 6], [b"a"] * 10 ** 6)),
        "float_data longer than its dims": lambda m: _long_data(m),
        "initializer with segment": lambda m: m.graph.initializer[0].segment.MergeFrom(
            TensorProto.Segment(begin=0, end=2 ** 62)),
    }
    for i, (label, edit) in enumerate(edits.items()):
        m = _onnx_base(folder)
        edit(m)
        src = folder / f"m{i}.onnx"
        src.write_bytes(m.SerializeToString())
        expect = "any"
        for cmd in ("inspect", "verify", "explain"):
            cases.append(_case(K, f"{label} ({cmd})", [cmd, src], src, expect=expect))
        out = folder / f"m{i}_torch"
        cases.append(_case(K, f"{label} (torch)", _convert(src, "torch", out), src, output=out, expect=expect,
                           importable=True))
        cases.append(_case(K, f"{label} (keras)", _convert(src, "keras", folder / f"m{i}.keras"), src,
                           output=folder / f"m{i}.keras", expect=expect))
    return cases


def _rename_value(m, old: str, new: str) -> None:
    for t in m.graph.initializer:
        if t.name == old:
            t.name = new
    for v in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info):
        if v.name == old:
            v.name = new
    for n in m.graph.node:
        for i, name in enumerate(n.input):
            if name == old:
                n.input[i] = new


def _long_data(m) -> None:
    from onnx import numpy_helper
    t = m.graph.initializer[0]
    a = numpy_helper.to_array(t).astype("f4")
    t.ClearField("raw_data")
    del t.float_data[:]
    t.float_data.extend(list(a.ravel()) + [0.0] * 10 ** 6)


# -- names that collide after sanitizing, names shadowing what generated code uses -------------------
SHADOWS = ["torch", "nn", "F", "np", "math", "self", "x", "inputs", "outputs", "h", "c", "state", "load_model",
           "Model", "forward", "__class__", "__builtins__", "__dict__", "super", "print", "_", "match", "safe_open",
           "Path", "os", "sys", "load_file", "weights", "None", "True", "lambda", "model", "__init__"]


def collide_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "collide"
    members = read_keras(MULTI)
    cfg0 = json.loads(members["config.json"])
    originals = ["sequence_a", "sequence_b", "lstm_a", "gru_b", "add", "concat", "score", "classes"]
    groups = {
        "punctuation": ["a-b", "a_b", "a.b", "a b", "a/b", "a:b", "a__b", "_a_b_"],
        "NFKC and accents": ["ﬁ", "fi", "é", "e\u0301", "Ｆ", "F", "ℌ", "H"],
        "keywords and their escapes": ["class", "class_", "def", "def_", "None", "None_", "if", "if_"],
        "digits and empties": ["0", "_0", "t_0", "", " ", "t", "1", "__"],
        "long names equal in their first 60": ["a" * 61 + "x", "a" * 61 + "y", "a" * 200, "a" * 60, "a" * 60 + "_2",
                                               "a" * 62, "b" * 70, "b" * 71],
    }
    for i in range(0, len(SHADOWS), len(originals)):
        chunk = SHADOWS[i:i + len(originals)]
        groups[f"shadows {i // len(originals)}"] = chunk + [f"pad{j}" for j in range(len(originals) - len(chunk))]
    for label, names in groups.items():
        cfg = cfg0
        for old, new in zip(originals, names):
            cfg = replace_strings(cfg, old, new)
        members["config.json"] = json.dumps(cfg).encode()
        src = write_keras(folder / f"collide_{len(cases)}.keras", members)
        cases.append(_case(K, f"{label}: verify --to torch,numpy,onnx",
                           ["verify", src, "--to", "torch,numpy,onnx"], src, expect="any"))
        out = folder / f"collide_{len(cases)}_torch"
        cases.append(_case(K, f"{label}: convert --to torch", _convert(src, "torch", out), src, output=out,
                           expect="any", importable=True))
    # state_dict keys colliding after sanitizing (inspect, convert --to torch: the module must load)
    keys: dict[str, tuple] = {}
    for prefix in ("a-b", "a_b", "a.b", "class", "torch", "__init__"):
        keys.update(lstm_keys(prefix, units=2, n_in=3))
    sd = state_dict_file(folder / "collide_keys.safetensors", keys)
    cases.append(_case(K, "state_dict keys colliding: inspect", ["inspect", sd], sd, expect="any"))
    out = folder / "collide_sd_torch"
    cases.append(_case(K, "state_dict keys colliding: convert --to torch", _convert(sd, "torch", out), sd,
                       output=out, expect="any", importable=True))
    return cases


# -- safetensors headers ------------------------------------------------------------------------------
def safetensors_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "safetensors3"
    data = bytes(4 * 12)
    good = {"w.weight_ih_l0": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]}}

    def head(h: dict) -> bytes:
        return json.dumps(h).encode()

    variants = {
        "header length 2**63": struct.pack("<Q", 2 ** 63) + head(good) + data,
        "header length 2**64-1": struct.pack("<Q", 2 ** 64 - 1) + head(good) + data,
        "header length past the file": struct.pack("<Q", 10 ** 6) + head(good) + data,
        "header length 0": struct.pack("<Q", 0) + data,
        "header a JSON list": raw_safetensors(b"[1, 2, 3]", data),
        "header a JSON string": raw_safetensors(b'"x"', data),
        "offsets floats": raw_safetensors(head({"w": {"dtype": "F32", "shape": [12], "data_offsets": [0.0, 48.0]}}),
                                          data),
        "offsets past 2**64": raw_safetensors(head({"w": {"dtype": "F32", "shape": [2 ** 62],
                                                          "data_offsets": [0, 2 ** 64 + 48]}}), data),
        "offsets reversed": raw_safetensors(head({"w": {"dtype": "F32", "shape": [0], "data_offsets": [48, 0]}}),
                                            data),
        "shape of booleans": raw_safetensors(head({"w": {"dtype": "F32", "shape": [True, 12],
                                                         "data_offsets": [0, 48]}}), data),
        "shape product past int64 with a 0": raw_safetensors(head({"w": {"dtype": "F32", "shape": [2 ** 63, 0],
                                                                         "data_offsets": [0, 0]}}), b""),
        "shape product overflowing int64 to 12": raw_safetensors(head({"w": {"dtype": "F32",
                                                                             "shape": [2 ** 32 + 3, 2 ** 32 * 4],
                                                                             "data_offsets": [0, 48]}}), data),
        "dtype lower-case f32": raw_safetensors(head({"w": {"dtype": "f32", "shape": [12], "data_offsets": [0, 48]}}),
                                                data),
        "dtype F4 (not a safetensors name)": raw_safetensors(head({"w": {"dtype": "F4", "shape": [12],
                                                                        "data_offsets": [0, 48]}}), data),
        "dtype object": raw_safetensors(head({"w": {"dtype": "O", "shape": [12], "data_offsets": [0, 48]}}), data),
        "__metadata__ a tensor": raw_safetensors(head({"__metadata__": {"dtype": "F32", "shape": [12],
                                                                        "data_offsets": [0, 48]}}), data),
        "__metadata__ values not strings": raw_safetensors(head({"__metadata__": {"a": [1, {"b": 2}]}, **good}), data),
        "empty tensor name": raw_safetensors(head({"": good["w.weight_ih_l0"]}), data),
        "tensor name with NUL, newline, ANSI": raw_safetensors(head({"w\x00\n\x1b[31m.weight_ih_l0":
                                                                     good["w.weight_ih_l0"]}), data),
        "duplicate tensor names in the JSON": raw_safetensors(
            b'{"w.weight_ih_l0": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]}, '
            b'"w.weight_ih_l0": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}', data),
        "header with a UTF-8 BOM": raw_safetensors(b"\xef\xbb\xbf" + head(good), data),
        "header not UTF-8": raw_safetensors(b'{"w\xff": 1}', data),
        "header padded with NULs": raw_safetensors(head(good) + b"\x00" * 8, data),
        "200,000 tensors of 0 bytes": raw_safetensors(head({f"t{i}": {"dtype": "F32", "shape": [0],
                                                                       "data_offsets": [0, 0]}
                                                            for i in range(200_000)}), b""),
    }
    for i, (label, raw) in enumerate(variants.items()):
        src = folder / f"s{i}.safetensors"
        src.write_bytes(raw)
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect="any"))
        out = folder / f"s{i}.onnx"
        cases.append(_case(K, f"{label} (onnx)", _convert(src, "onnx", out), src, output=out, expect="any"))
        cases.append(_case(K, f"{label} (diff)", ["diff", src, src], src, expect="any"))
    return cases


# -- HDF5 ------------------------------------------------------------------------------------------------
def h5_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "h53"
    secret = folder.parent.parent / SECRET_NAME
    secret_h5 = folder.parent.parent / (SECRET_NAME + ".h5")

    def first(f: h5py.File) -> str:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        return names[0]

    def ext_storage(path: str):
        def edit(f):
            n = first(f)
            shape, dtype = f[n].shape, f[n].dtype
            del f[n]
            f.create_dataset(n, shape=shape, dtype=dtype, external=[(path, 0, h5py.h5f.UNLIMITED)])
        return edit

    def virtual(f):
        n = first(f)
        shape = f[n].shape
        layout = h5py.VirtualLayout(shape=shape, dtype="f4")
        layout[...] = h5py.VirtualSource(str(secret_h5), "x", shape=(4, 4))[: shape[0], : shape[1]] \
            if len(shape) == 2 else h5py.VirtualSource(str(secret_h5), "x", shape=(4, 4))[0, : shape[0]]
        del f[n]
        f.create_virtual_dataset(n, layout, fillvalue=0)

    def ext_link(f):
        n = first(f)
        del f[n]
        f[n] = h5py.ExternalLink(str(secret_h5), "/x")

    def soft_out(f):
        n = first(f)
        del f[n]
        f[n] = h5py.SoftLink("/../../" + SECRET_NAME)

    def names_attr(count: int, key: str):
        def edit(f):
            target = f if key == "layer_names" else f[next(iter(f.keys()))]
            target.attrs.create(key, np.array([b"l%d" % i for i in range(count)], dtype="S8"))
        return edit

    def ansi_group(f):
        f.move(next(iter(f.keys())), "\x1b[31m\nred\u202e")

    def config_attr(text: str):
        def edit(f):
            f.attrs["model_config"] = text
        return edit

    h5_edits = {
        "external storage: the sentinel by absolute path": ext_storage(str(secret)),
        "external storage: ../ the sentinel": ext_storage("../../../" + SECRET_NAME),
        "external storage: /dev/zero": ext_storage("/dev/zero"),
        "virtual dataset from the sentinel": virtual,
        "external link to the sentinel": ext_link,
        "soft link climbing out": soft_out,
        "layer_names of 10**6 entries": names_attr(10 ** 6, "layer_names"),
        "weight_names of 10**6 entries": names_attr(10 ** 6, "weight_names"),
        "group named with ANSI, newline, bidi": ansi_group,
        "model_config of 40 MB": config_attr('{"class_name": "Sequential", "config": {"name": "' + "x" * (40 << 20)
                                             + '"}}'),
    }
    for i, (label, edit) in enumerate(h5_edits.items()):
        for src_model in (TINY, WEIGHTS_ONLY):
            src = folder / f"h{i}_{src_model.stem}.h5"
            shutil.copy(src_model, src)
            try:
                with h5py.File(src, "r+") as f:
                    edit(f)
            except (KeyError, ValueError, OSError):
                continue
            extra = ["--config", str(WEIGHTS_ONLY_JSON)] if src_model == WEIGHTS_ONLY else []
            cases.append(_case(K, f"{label} [{src_model.stem}] (inspect)", ["inspect", src, *extra], src,
                               expect="any"))
            out = folder / f"h{i}_{src_model.stem}.onnx"
            cases.append(_case(K, f"{label} [{src_model.stem}] (onnx)", _convert(src, "onnx", out, *extra), src,
                               output=out, expect="any"))
            cases.append(_case(K, f"{label} [{src_model.stem}] (verify)", ["verify", src, *extra], src,
                               expect="any"))
    return cases


# -- outputs landing on inputs ----------------------------------------------------------------------------
def output_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "output3"
    w = folder / "w.weights.h5"
    shutil.copy(WEIGHTS_ONLY, w)
    arch = folder / "w.json"
    shutil.copy(WEIGHTS_ONLY_JSON, arch)
    # the keras-weights sidecar (<out>.json ... or <stem>.json) is the --config input
    for out_name in ("w.weights.h5", "w2.weights.h5", "w.h5"):
        out = folder / "side" / out_name
        out.parent.mkdir(exist_ok=True)
        side_arch = out.parent / (out_name.split(".")[0] + ".json")
        shutil.copy(WEIGHTS_ONLY_JSON, side_arch)
        for force in ((), ("--force",)):
            cases.append(_case(K, f"keras-weights -o {out_name}: its sidecar is the --config {force}",
                               _convert(w, "keras-weights", out, "--config", side_arch, *force), [w, side_arch],
                               output=out, expect="any", named=False))
    cases.append(_case(K, "-o the --config file --force", _convert(w, "onnx", arch, "--config", arch, "--force"),
                       [w, arch], named=False))
    cases.append(_case(K, "-o /proc/self/root/<input> --force",
                       _convert(w, "onnx", f"/proc/self/root{w}", "--config", arch, "--force"), [w, arch],
                       named=False))
    cases.append(_case(K, "-o //<input> with dot segments --force",
                       _convert(w, "onnx", f"/{w.parent}/./../{w.parent.name}//{w.name}", "--config", arch,
                                "--force"), [w, arch], named=False))
    src = folder / "m.keras"
    shutil.copy(K3, src)
    layer_name = "bi_custom"
    for label, out in [("the model", src), ("a symlink to the model", folder / "link_to_m.npz")]:
        if label.startswith("a symlink") and not os.path.lexists(out):
            out.symlink_to(src)
        cases.append(_case(K, f"inspect --gate -o {label} --force",
                           ["inspect", src, "--layer", layer_name, "--gate", "forget", "-o", out, "--force"], src,
                           named=False))
    other = folder / "other.keras"
    shutil.copy(K3, other)
    for label, argv in [("diff --plot onto A --force", ["diff", src, other, "--plot", src, "--force"]),
                        ("diff --plot onto B --force", ["diff", src, other, "--plot", other, "--force"]),
                        ("explain --plot onto the model --force", ["explain", src, "--plot", src, "--force"]),
                        ("diff --plot a folder", ["diff", src, other, "--plot", folder]),
                        ("explain --plot /proc/self/root/<model> --force",
                         ["explain", src, "--plot", f"/proc/self/root{src}", "--force"])]:
        cases.append(_case(K, label, argv, [src, other], named=False))
    # --force onto a folder holding the user's own files: those stay
    user = folder / "user_dir"
    user.mkdir(exist_ok=True)
    (user / "precious.txt").write_text("the user's notes\n")
    (user / "model.py").write_text("# the user's own model.py\n")
    cases.append(_case(K, "--to torch --force onto a folder holding the user's files",
                       _convert(src, "torch", user, "--force"), [src, user / "precious.txt"], output=user,
                       expect="any", importable=True, named=False))
    npy_dir = folder / "numpy_user_dir"
    npy_dir.mkdir(exist_ok=True)
    (npy_dir / "precious.txt").write_text("keep\n")
    cases.append(_case(K, "--to numpy --force onto a folder holding the user's files",
                       _convert(src, "numpy", npy_dir, "--force"), [src, npy_dir / "precious.txt"], output=npy_dir,
                       expect="any", named=False))
    return cases


# -- file names carrying escapes, for every reader -----------------------------------------------------------
def message_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "message3"
    evil = "\x1b[2J\x1b[31mred\n\u202eevil\x07"
    broken = {
        ".h5": (TINY.read_bytes()[:5000]),
        ".keras": K3.read_bytes()[:3000],
        ".onnx": b"\x08\x07" + b"\xff" * 100,
        ".safetensors": raw_safetensors(b'{"w": 1}'),
        ".pt": b"PK\x03\x04" + b"\x00" * 100,
        ".gates": raw_safetensors(b'{"__metadata__": {"gateport.manifest": "{"}}'),
        ".json": b'{"class_name": ',
        ".npz": b"PK\x05\x06" + bytes(18),
    }
    for ext, raw in broken.items():
        src = folder / f"{evil}{ext}"
        src.write_bytes(raw)
        if ext == ".npz":
            cases.append(_case(K, f"broken {ext} named with escapes (verify --inputs)",
                               ["verify", TINY, "--inputs", src], src))
            continue
        if ext == ".json":
            cases.append(_case(K, f"broken {ext} named with escapes (--config)",
                               ["inspect", WEIGHTS_ONLY, "--config", src], src))
            continue
        for cmd in ("inspect", "explain"):  # (inspect --json answers on stdout, as one JSON object)
            cases.append(_case(K, f"broken {ext} named with escapes ({cmd})", [cmd, src], src))
        cases.append(_case(K, f"broken {ext} named with escapes (diff)", ["diff", K3, src], src))
    # a valid model under such a name: the notes, 'wrote' lines and inspect output stay escaped
    src = folder / f"valid{evil}.keras"
    shutil.copy(K3, src)
    for argv in (["inspect", src], ["-v", "convert", src, "--to", "onnx", "-o", folder / f"valid{evil}.onnx"],
                 ["verify", src, "--to", "numpy"]):
        cases.append(_case(K, f"valid model named with escapes ({argv[0]} {argv[1] if argv[0] == '-v' else ''})",
                           argv, src, expect="any"))
    return cases


# -- FIFOs for every file argument --------------------------------------------------------------------------
def fifo_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "fifo"
    fifo = folder / "pipe.npz"
    if not fifo.exists():
        os.mkfifo(fifo)
    cfg = folder / "pipe.json"
    if not cfg.exists():
        os.mkfifo(cfg)
    for label, argv in [("verify --inputs a FIFO", ["verify", TINY, "--inputs", fifo]),
                        ("verify --expected a FIFO", ["verify", TINY, "--expected", fifo]),
                        ("explain --inputs a FIFO", ["explain", TINY, "--inputs", fifo]),
                        ("inspect --config a FIFO", ["inspect", WEIGHTS_ONLY, "--config", cfg]),
                        ("convert --config a FIFO", _convert(WEIGHTS_ONLY, "onnx", folder / "f.onnx", "--config", cfg)),
                        ("diff --config-a a FIFO", ["diff", WEIGHTS_ONLY, TINY, "--config-a", cfg]),
                        ("verify --inputs /dev/zero", ["verify", TINY, "--inputs", "/dev/zero"]),
                        ("inspect --config /dev/zero", ["inspect", WEIGHTS_ONLY, "--config", "/dev/zero"]),
                        ("inspect a model that is a FIFO", ["inspect", fifo])]:
        c = _case(K, label, argv, fifo if "FIFO" in label and "config" not in label else cfg, named=False)
        c.inputs = []
        cases.append(c)
    return cases


# -- zip containers: duplicate members, ZIP64 sizes, a torch zip whose checked pickle is not the one read ----
def _zip_with(path: Path, members: list[tuple[str, bytes]]) -> Path:
    import warnings
    warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name), data)
    return path


def zip_cases(folder: Path) -> list[Case]:
    import io

    import torch

    cases: list[Case] = []
    K = "zip3"
    k3 = read_keras(K3)
    other = read_keras(MULTI)
    buf = io.BytesIO()
    torch.save({k: torch.zeros(v) for k, v in lstm_keys("rnn", units=2, n_in=3).items()}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        pt = [(i.filename, z.read(i)) for i in z.infolist()]
    pkl = next(n for n, _ in pt if n.endswith("data.pkl"))
    evil = b"\x80\x02cposix\nsystem\nq\x00X\x0b\x00\x00\x00touch PWNEDq\x01\x85q\x02Rq\x03."
    variants = {
        ".keras: two model.weights.h5, the second another model's": (
            "k.keras", [*k3.items(), ("model.weights.h5", other["model.weights.h5"])]),
        ".keras: two config.json, the second another model's": (
            "k.keras", [*k3.items(), ("config.json", other["config.json"])]),
        ".keras: members under ../ and / as well": (
            "k.keras", [*k3.items(), ("../config.json", other["config.json"]), ("/model.weights.h5", b"x")]),
        ".keras: config.json also as CONFIG.JSON and config.json/": (
            "k.keras", [*k3.items(), ("CONFIG.JSON", b"{}"), ("config.json/", b"")]),
        ".pt: data.pkl twice, the second a pickle calling os.system": ("p.pt", [*pt, (pkl, evil)]),
        ".pt: data.pkl twice, the first a pickle calling os.system": ("p.pt", [(pkl, evil), *pt]),
        ".pt: a member named with ANSI and newline": ("p.pt", [*pt, ("archive/\x1b[2J\nx", b"x")]),
    }
    for i, (label, (name, members)) in enumerate(variants.items()):
        src = _zip_with(folder / f"z{i}_{name}", members)
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect="any"))
        out = folder / f"z{i}_torch"
        cases.append(_case(K, f"{label} (torch)", _convert(src, "torch", out), src, output=out, expect="any",
                           importable=True))
        cases.append(_case(K, f"{label} (verify)", ["verify", src], src, expect="any"))
    # ZIP64 extra fields declaring 2**63 bytes for the weights member (central directory patched)
    src = folder / "zip64.keras"
    with zipfile.ZipFile(src, "w") as z:
        for n, data in k3.items():
            info = zipfile.ZipInfo(n)
            with z.open(info, "w", force_zip64=True) as f:
                f.write(data)
    raw = bytearray(src.read_bytes())
    at = raw.rfind(b"model.weights.h5")  # the central entry's name; its ZIP64 extra follows
    extra = raw.find(b"\x01\x00", at)
    if extra > 0:
        raw[extra + 4:extra + 12] = struct.pack("<Q", 2 ** 63)
        src.write_bytes(bytes(raw))
        cases.append(_case(K, ".keras: ZIP64 size 2**63 for the weights (inspect)", ["inspect", src], src,
                           expect="any"))
    return cases


# -- Keras 1 / CuDNN files: names carrying escapes and code, names colliding after sanitizing -------------
def legacy_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "legacy3"
    payload = 'x"""\nopen("PWNED", "w")\n"""\x1b[31m\u202e'
    for model in ("keras1_lstm.h5", "keras1_bidirectional_lstm.h5", "cudnn_lstm_gru.h5"):
        for label, new_names in [("code and escapes", lambda names: [payload + str(i) for i in range(len(names))]),
                                 ("collisions", lambda names: ["a-b", "a_b", "a.b", "a b", "a/b", "a:b"][:len(names)]
                                  + [f"z{i}" for i in range(len(names) - 6)])]:
            src = folder / f"{Path(model).stem}_{label.replace(' ', '_')}.h5"
            shutil.copy(MODELS / model, src)
            if not _rename_h5_layers(src, new_names):
                continue
            cases.append(_case(K, f"{model} {label} (inspect)", ["inspect", src], src, expect="any"))
            out = folder / f"{src.stem}_torch"
            cases.append(_case(K, f"{model} {label} (torch)", _convert(src, "torch", out), src, output=out,
                               expect="any", importable=True))
            cases.append(_case(K, f"{model} {label} (verify)", ["verify", src, "--to", "torch,numpy,onnx"], src,
                               expect="any"))
    return cases


def _rename_h5_layers(path: Path, new_names) -> bool:
    """Every layer of a full-model .h5 renamed (config, layer_names, weight groups and weight names)."""
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
        old = [entry["config"]["name"] for entry in layers]
        new = new_names(old)
        if len(set(new)) != len(new):
            return False
        for o, n in zip(old, new):
            cfg = replace_strings(cfg, o, n)
        f.attrs["model_config"] = json.dumps(cfg).encode()
        mw = f["model_weights"] if "model_weights" in f else f
        names = [x.decode() if isinstance(x, bytes) else x for x in mw.attrs["layer_names"]]
        mapping = dict(zip(old, new))
        for o in names:
            if o not in mapping or o not in mw:
                continue
            g = mw[o]
            wn = [x.decode() if isinstance(x, bytes) else x for x in g.attrs.get("weight_names", [])]
            tmp = "tmp_" + o
            mw.move(o, tmp)
            mw.create_group(mapping[o].replace("/", "_"))
            for w in wn:
                if w in mw[tmp]:
                    mw[tmp].move(w, w)  # (kept under the old path inside the group)
            del mw[mapping[o].replace("/", "_")]
            mw.move(tmp, mapping[o]) if "/" not in mapping[o] else mw.move(tmp, mapping[o].replace("/", "_"))
            g = mw[mapping[o].replace("/", "_")]
            g.attrs["weight_names"] = np.array([w.encode() for w in wn])
        mw.attrs["layer_names"] = np.array([mapping.get(n, n).replace("/", "_").encode() for n in names])
    return True


# -- the IR's own .gates file: the safetensors part against the manifest ------------------------------------
def gates_cases(folder: Path) -> list[Case]:
    from attacks_more import _gates_with

    cases: list[Case] = []
    K = "gates3"
    base = _gates_with(folder, "plain.gates", lambda m: None)
    raw = base.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    tensors = [k for k in header if k != "__metadata__"]

    def with_header(name: str, edit) -> Path:
        h = json.loads(json.dumps(header))
        edit(h)
        text = json.dumps(h).encode()
        text += b" " * (-len(text) % 8)
        dst = folder / name
        dst.write_bytes(struct.pack("<Q", len(text)) + text + data)
        return dst

    def drop(h):
        del h[tensors[0]]

    def extra(h):
        h["../../evil\n\x1b[31m"] = dict(h[tensors[0]])

    def dtype_f64(h):
        h[tensors[0]]["dtype"] = "F64"

    def reshape(h):
        h[tensors[0]]["shape"] = list(reversed(h[tensors[0]]["shape"])) + [1]

    def swap(h):
        a, b = tensors[0], tensors[1]
        h[a]["data_offsets"], h[b]["data_offsets"] = h[b]["data_offsets"], h[a]["data_offsets"]

    def manifest_edit(edit):
        def inner(h):
            m = json.loads(h["__metadata__"]["gateport.manifest"])
            edit(m)
            h["__metadata__"]["gateport.manifest"] = json.dumps(m)
        return inner

    payload = 'x"""\nopen("PWNED", "w")\n"""\x1b[31m\u202e'
    edits = {
        "a weight the manifest names is missing": drop,
        "a tensor the manifest does not name, named with ../ and escapes": extra,
        "a weight stored as F64": dtype_f64,
        "a weight of another shape": reshape,
        "two weights' bytes swapped (same sizes)": swap,
        "input with a symbolic feature axis": manifest_edit(lambda m: m["inputs"][0].update(shape=[3, None])),
        "input dtype object": manifest_edit(lambda m: m["inputs"][0].update(dtype="object")),
        "input shape of 10**6 axes": manifest_edit(lambda m: m["inputs"][0].update(shape=[1] * 10 ** 6)),
        "input named like the output, carrying code": manifest_edit(lambda m: (
            m["inputs"][0].update(name=payload), m["nodes"][0].update(inputs=[payload]))),
        "source path and keras_version carrying code": manifest_edit(lambda m: m["source"].update(
            path=payload, keras_version=payload)),
        "options carrying code": manifest_edit(lambda m: m["nodes"][0]["options"].update(
            activation=payload, recurrent_activation=payload)),
        "manifest a 30 MB string": lambda h: h["__metadata__"].update({"gateport.manifest": '"' + "x" * (30 << 20) + '"'}),
    }
    for i, (label, edit) in enumerate(edits.items()):
        src = with_header(f"g{i}.gates", edit)
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect="any"))
        out = folder / f"g{i}_torch"
        cases.append(_case(K, f"{label} (torch)", _convert(src, "torch", out), src, output=out, expect="any",
                           importable=True))
        cases.append(_case(K, f"{label} (verify)", ["verify", src, "--to", "torch,numpy,onnx"], src, expect="any"))
    return cases


def main() -> int:
    """``python tests/attacks_round3.py [--class NAME]``: build and run every case, one line per failure."""
    import argparse
    import tempfile
    from collections import Counter, defaultdict

    ap = argparse.ArgumentParser()
    ap.add_argument("--class", dest="klass")
    ap.add_argument("--group")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--match", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cases"
        cases = [c for c in build(folder, groups=(args.group,) if args.group else None)
                 if (not args.klass or c.klass == args.klass) and args.match in c.name]
        per_class: dict[str, Counter] = defaultdict(Counter)
        peak = failed = 0
        for case in cases:
            problems, measured = run_case3(case, folder / "MARKER", args.timeout)
            peak = max(peak, measured.get("rss_mib", 0))
            per_class[case.klass]["failed" if problems else "passed"] += 1
            if problems:
                failed += 1
                print(f"FAIL [{case.klass}] {case.name!r}: {'; '.join(problems)}", flush=True)
        for klass, counts in per_class.items():
            print(f"{klass:24s} {counts['passed']:4d} passed {counts['failed']:4d} failed")
        print(f"{len(cases)} attacks: {len(cases) - failed} passed, {failed} failed; peak memory {peak} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

