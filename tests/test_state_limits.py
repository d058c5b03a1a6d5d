"""Hostile safetensors, .pt, .gates files and layer descriptions: one line, exit 2, nothing written.

Every variant is made here from real files: a state_dict of nn.LSTM + nn.GRU saved by
``safetensors.torch.save_file`` and ``torch.save``, and a ``.gates`` file that ``gateport convert``
wrote from a fixture. Each one goes through ``gateport inspect`` and ``gateport convert --to onnx``.
Hypothesis mutates headers and manifests: the readers raise nothing but GateportError, and the
hand-written manifest check (converters/manifest_check.py) agrees with jsonschema on the schema.
"""
from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converters import api, ir_file, manifest_check, safetensors_io
from converters.cli import main
from converters.errors import GateportError
from converters.readers import torch_state
from helpers import SCHEMA_PATH

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "models" / "lstm_dense_activation.h5"
DEEP = "[" * 50000 + "]" * 50000


# -- the real files and ways to edit them -----------------------------------------------------
def state_dict() -> dict:
    torch.manual_seed(0)
    lstm, gru = torch.nn.LSTM(3, 4, bidirectional=True), torch.nn.GRU(3, 5)
    return {**{f"lstm.{k}": v.detach().clone() for k, v in lstm.state_dict().items()},
            **{f"gru.{k}": v.detach().clone() for k, v in gru.state_dict().items()}}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("good")
    state = state_dict()
    safetensors_torch.save_file(state, str(folder / "m.safetensors"), metadata={"format": "pt"})
    torch.save(state, folder / "m.pt")
    assert main(["convert", str(FIXTURE), "--to", "gates", "-o", str(folder / "m.gates")]) == 0
    return {"safetensors": folder / "m.safetensors", "pt": folder / "m.pt", "gates": folder / "m.gates"}


def split(path: Path) -> tuple[dict, bytes]:
    """(header, data) of a safetensors file."""
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def join(header: dict | str, data: bytes) -> bytes:
    text = (header if isinstance(header, str) else json.dumps(header, allow_nan=True)).encode()
    return struct.pack("<Q", len(text)) + text + data


def edit_header(src: Path, edit) -> bytes:
    header, data = split(src)
    result = edit(header)
    return join(header if result is None else result, data)


def edit_manifest(src: Path, edit) -> bytes:
    def apply(header):
        m = json.loads(header["__metadata__"]["gateport.manifest"])
        result = edit(m)
        header["__metadata__"]["gateport.manifest"] = result if isinstance(result, str) else json.dumps(m)
    return edit_header(src, apply)


def first_tensor(header: dict) -> dict:
    return header[next(k for k in header if k != "__metadata__")]


def setter(*path, value):
    """An edit setting ``header[path...] = value`` (first tensor when the path starts with None)."""
    def edit(obj):
        target = first_tensor(obj) if path[0] is None else obj[path[0]]
        for key in path[1:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def node_of(m: dict, op: str) -> dict:
    return next(n for n in m["nodes"] if n["op"] == op)


def replace_member(src: Path, suffix: str, data: bytes) -> bytes:
    """The zip ``src`` with the member ending in ``suffix`` replaced by ``data``."""
    out = io.BytesIO()
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as w:
        for info in z.infolist():
            w.writestr(info.filename, data if info.filename.endswith(suffix) else z.read(info))
    return out.getvalue()


def huge_member_size(src: Path) -> bytes:
    """The zip ``src`` whose central directory declares a 4 GiB uncompressed data member."""
    blob = bytearray(src.read_bytes())
    at = blob.find(b"PK\x01\x02", blob.find(b"PK\x01\x02") + 1)  # the second member's entry
    blob[at + 24:at + 28] = struct.pack("<I", 0xFFFFFFF0)
    return bytes(blob)


def huge_storage(src: Path) -> bytes:
    """``src`` whose pickle declares a 10**11-byte storage for its first tensor."""
    import pickletools

    with zipfile.ZipFile(src) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    ops = list(pickletools.genops(pkl))
    persid = next(i for i, op in enumerate(ops) if op[0].name == "BINPERSID")
    j = max(i for i in range(persid) if ops[i][0].name in ("BININT1", "BININT2", "BININT"))
    size = {"BININT1": 2, "BININT2": 3, "BININT": 5}[ops[j][0].name]
    big = (10 ** 11).to_bytes(6, "little")
    return replace_member(src, "data.pkl", pkl[:ops[j][2]] + b"\x8a\x06" + big + pkl[ops[j][2] + size:])


def nested_pickle(levels: int) -> bytes:
    """A protocol-2 pickle of ``{"a": {"a": ... {}}}``, ``levels`` dicts deep, written by hand."""
    key = b"X\x01\x00\x00\x00a"
    return b"\x80\x02" + (b"}" + key) * levels + b"}" + b"s" * levels + b"."


def torch_bytes(obj, **kwargs) -> bytes:
    out = io.BytesIO()
    torch.save(obj, out, **kwargs)
    return out.getvalue()


# -- the variants -------------------------------------------------------------------------------
def safetensors_variants(src: Path) -> dict[str, bytes]:
    v = {}
    for label, shape in [("negative", [-4, 3]), ("huge", [10 ** 6, 10 ** 6]), ("inf", [math.inf, 3]),
                         ("float", [8.5, 2]), ("nan", [math.nan]), ("bool", [True, 3]), ("10**30", [10 ** 30]),
                         ("string", ["3"]), ("rank 40", [1] * 40), ("nested", [[3]]), ("scalar string", "x")]:
        v[f"shape {label}"] = edit_header(src, setter(None, "shape", value=shape))
    for label, offsets in [("negative", [-8, 40]), ("past the end", [0, 10 ** 9]), ("reversed", [48, 0]),
                           ("float", [0, 48.0]), ("inf", [0, math.inf]), ("one", [0]), ("10**30", [0, 10 ** 30]),
                           ("strings", ["0", "48"]), ("bools", [False, True])]:
        v[f"offsets {label}"] = edit_header(src, setter(None, "data_offsets", value=offsets))

    def overlap(h):
        names = [k for k in h if k != "__metadata__"]
        a, b = h[names[0]], h[names[1]]
        b["data_offsets"] = [a["data_offsets"][0], a["data_offsets"][0] + b["data_offsets"][1] - b["data_offsets"][0]]
    v["overlapping ranges"] = edit_header(src, overlap)
    header, data = split(src)
    v["gap at the end"] = join(header, data + bytes(64))
    v["truncated data"] = join(header, data[:-4])

    def shrink(h):
        first_tensor(h)["shape"] = [1]
    v["shape smaller than its bytes"] = edit_header(src, shrink)
    for label, dtype in [("unknown", "X9"), ("list", ["F32"]), ("number", 32), ("f8", "F8_E4M3")]:
        v[f"dtype {label}"] = edit_header(src, setter(None, "dtype", value=dtype))
    v["entry a list"] = edit_header(src, lambda h: {**h, next(iter(h)): [1, 2]})
    v["entry without dtype"] = edit_header(src, lambda h: first_tensor(h).pop("dtype") and None)
    v["header 50k deep"] = join('{"a": ' + DEEP + "}", b"")
    v["header a list"] = join("[1, 2]", b"")
    v["header not JSON"] = join("{not json", b"")
    v["header not UTF-8"] = struct.pack("<Q", 4) + b"{\xff\xfe}"
    v["header length 2**62"] = struct.pack("<Q", 2 ** 62) + b"{}"
    plain_header = json.dumps({k: x for k, x in header.items() if k != "__metadata__"})
    v["metadata 50k deep"] = join(plain_header[:-1] + ', "__metadata__": {"x": ' + DEEP + "}}", data)
    v["metadata value a number"] = edit_header(src, setter("__metadata__", "format", value=3))
    v["metadata a list"] = edit_header(src, lambda h: {**h, "__metadata__": ["a"]})
    return v


def description_variants(src: Path) -> dict[str, bytes]:
    """Layer descriptions carried in the file's gateport.layers metadata."""
    def meta(entries) -> bytes:
        return edit_header(src, setter("__metadata__", "gateport.layers", value=entries))
    return {
        "layers metadata 50k deep": meta(DEEP),
        "layers metadata not a list": meta(json.dumps({"prefix": "lstm."})),
        "layers metadata hidden_size wrong": meta(json.dumps([{"prefix": "lstm.", "hidden_size": 99}])),
        "layers metadata units 10**30": meta(json.dumps([{"prefix": "lstm.", "options": {"units": 10 ** 30}}])),
        "layers metadata input_size inf": meta(json.dumps([{"prefix": "gru.", "input_size": math.inf}])),
        "layers metadata kind a list": meta(json.dumps([{"prefix": "gru.", "kind": ["gru"]}])),
        "layers metadata name a dict": meta(json.dumps([{"prefix": "gru.", "name": {"a": 1}}])),
        "layers metadata prefix twice": meta(json.dumps([{"prefix": "gru."}, {"prefix": "gru."}])),
        "layers metadata bidirectional wrong": meta(json.dumps([{"prefix": "gru.", "bidirectional": True}])),
    }


def pt_variants(src: Path) -> dict[str, bytes]:
    lstm = torch.nn.LSTM(3, 4)
    return {
        "pt 50k nested dicts": replace_member(src, "data.pkl", nested_pickle(50000)),
        "pt 9 nested dicts": replace_member(src, "data.pkl", nested_pickle(9)),
        "pt os.system global": replace_member(src, "data.pkl", b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R."),
        "pt huge declared storage": huge_storage(src),
        "pt huge zip member": huge_member_size(src),
        "pt zero-stride 10**12 view": torch_bytes({"lstm.weight_ih_l0": torch.zeros(1).expand(10 ** 6, 10 ** 6)}),
        "pt only non-tensors": torch_bytes({"epoch": 3, "name": "x", "lists": [torch.zeros(2)]}),
        "pt legacy format": torch_bytes(lstm.state_dict(), _use_new_zipfile_serialization=False),
        "pt sparse tensor": torch_bytes({"lstm.weight_ih_l0": torch.zeros(16, 3).to_sparse()}),
        "pt truncated": src.read_bytes()[: src.stat().st_size // 2],
        "pt garbage": b"\x80\x02garbage" * 10,
        "pt data.pkl not a pickle": replace_member(src, "data.pkl", b"not a pickle"),
    }


def gates_variants(src: Path) -> dict[str, bytes]:
    v = {"manifest 50k deep": edit_manifest(src, lambda m: DEEP),
         "manifest not JSON": edit_manifest(src, lambda m: "{nope"),
         "manifest a list": edit_manifest(src, lambda m: "[]"),
         "manifest 40 levels deep": edit_manifest(
             src, lambda m: m.update(source={"converted_from": json.loads("[" * 40 + "]" * 40)}))}
    for label, value in [("99", 99), ("10**30", 10 ** 30), ("4.0", 4.0), ("'4'", "4"), ("true", True),
                         ("nan", math.nan), ("-1", -1), ("0", 0), ("inf", math.inf)]:
        v[f"lstm units {label}"] = edit_manifest(src, lambda m, x=value: node_of(m, "lstm")["options"].update(units=x))
    v["lstm input_size wrong"] = edit_manifest(src, lambda m: node_of(m, "lstm")["options"].update(input_size=7))
    v["dense units wrong"] = edit_manifest(src, lambda m: node_of(m, "dense")["options"].update(units=6))
    v["dense units 10**9"] = edit_manifest(src, lambda m: node_of(m, "dense")["options"].update(units=10 ** 9))
    v["options a list"] = edit_manifest(src, lambda m: node_of(m, "dense").update(options=[1]))
    v["weight shape unlike the file"] = edit_manifest(
        src, lambda m: next(iter(node_of(m, "dense")["weights"].values())).update(shape=[3, 3]))
    v["weight dtype unlike the file"] = edit_manifest(
        src, lambda m: next(iter(node_of(m, "dense")["weights"].values())).update(dtype="float64"))
    v["weight not listed"] = edit_manifest(src, lambda m: node_of(m, "dense")["weights"].pop("bias") and None)
    v["gate missing"] = edit_manifest(src, lambda m: node_of(m, "lstm")["weights"].pop(
        next(iter(node_of(m, "lstm")["weights"]))) and None)
    v["input made nowhere"] = edit_manifest(src, lambda m: node_of(m, "dense").update(inputs=["ghost"]))
    v["mask made nowhere"] = edit_manifest(src, lambda m: node_of(m, "dense").update(mask="ghost"))
    v["output made nowhere"] = edit_manifest(src, lambda m: m.update(outputs=["ghost"]))
    v["node name twice"] = edit_manifest(src, lambda m: m["nodes"].append(m["nodes"][-1]))
    v["op unknown"] = edit_manifest(src, lambda m: node_of(m, "dense").update(op="eval"))
    v["name 10k characters"] = edit_manifest(src, lambda m: m.update(name="n" * 10000))
    v["extra root key"] = edit_manifest(src, lambda m: m.update(evil=1))
    v["version 2"] = edit_manifest(src, lambda m: m.update(version=2))
    v["input shape 10**30"] = edit_manifest(src, lambda m: m["inputs"][0].update(shape=[10 ** 30, 3]))
    v["input shape rank 40"] = edit_manifest(src, lambda m: m["inputs"][0].update(shape=[1] * 40))
    v["no manifest"] = edit_header(src, lambda h: h["__metadata__"].pop("gateport.manifest") and None)
    v["gates overlapping tensors"] = edit_header(src, lambda h: h[[k for k in h if k != "__metadata__"][1]].update(
        data_offsets=first_tensor(h)["data_offsets"]))
    return v


def all_variants(good) -> dict[str, tuple[str, bytes]]:
    out = {}
    for suffix, make in [("safetensors", safetensors_variants), ("safetensors", description_variants),
                         ("pt", pt_variants), ("gates", gates_variants)]:
        src = good["safetensors" if make is description_variants else suffix]
        out.update({label: (suffix, blob) for label, blob in make(src).items()})
    return out


def one_line_error(capsys, argv, path: Path) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("gateport: error: "), err
    assert str(path) in err, err
    assert "unexpected" not in err and "Traceback" not in err, err
    return err


def test_every_hostile_variant_is_one_line_and_writes_nothing(good, tmp_path, capsys):
    variants = all_variants(good)
    assert len(variants) >= 70
    for i, (label, (suffix, blob)) in enumerate(variants.items()):
        p = tmp_path / f"v{i}.{suffix}"
        p.write_bytes(blob)
        out = tmp_path / f"v{i}.onnx"
        try:
            one_line_error(capsys, ["inspect", p], p)
            one_line_error(capsys, ["convert", p, "--to", "onnx", "-o", out], p)
        except AssertionError as e:
            raise AssertionError(f"{label}: {e}") from None
        assert not out.exists(), label
    assert sorted(x.name for x in tmp_path.iterdir() if x.suffix == ".onnx") == []


@pytest.mark.parametrize("desc,named", [
    (DEEP, "config"), (" " * (2 << 20), "config"), ('{"layers": 3}', "config"),
    ('{"layers": [], "chain": "no"}', "config"), ('{"layers": [{"prefix": "lstm.", "evil": 1}]}', "config"),
    ('{"layers": [{"prefix": "lstm.", "options": {"units": 99}}]}', "model"),
    ('{"layers": [{"prefix": "lstm.", "units": 4.0}]}', "config"),
    ('{"layers": [{"prefix": "lstm.", "bias": "yes"}]}', "config"),
    ('{"layers": [{"prefix": "lstm.", "merge_mode": ["sum"]}]}', "config"),
    ('{"layers": [{"prefix": "lstm.", "input_size": 1e400}]}', "config"),
    ('{"layers": [{"prefix": "lstm.", "hidden_size": 5}]}', "model"),
    ('{"layers": [{"prefix": "lstm.", "num_layers": 2}]}', "model"),
    ('{"layers": [{"prefix": "gru.", "bidirectional": true}]}', "model")])
def test_hostile_config_description_is_one_line(good, tmp_path, capsys, desc, named):
    config = tmp_path / "desc.json"
    config.write_text(desc)
    out = tmp_path / "o.onnx"
    for p in (good["safetensors"], good["pt"]):
        where = config if named == "config" else p
        one_line_error(capsys, ["inspect", p, "--config", config], where)
        one_line_error(capsys, ["convert", p, "--to", "onnx", "-o", out, "--config", config], where)
        assert not out.exists()


def test_config_fifo_is_refused_without_blocking(good, tmp_path, capsys):
    import os

    fifo = tmp_path / "desc.json"
    os.mkfifo(fifo)
    one_line_error(capsys, ["inspect", good["safetensors"], "--config", fifo], fifo)


def test_good_files_read_bit_identical(good, tmp_path, capsys):
    state = {k: v.numpy() for k, v in state_dict().items()}
    tensors, meta = safetensors_io.load(good["safetensors"])
    assert meta == {"format": "pt"} and tensors.keys() == state.keys()
    assert all(tensors[k].dtype == state[k].dtype and tensors[k].tobytes() == state[k].tobytes() for k in state)
    assert torch_state.load_tensors(good["pt"])[0].keys() == state.keys()
    from_st, from_pt = torch_state.read(good["safetensors"]), torch_state.read(good["pt"])
    assert sorted(n.name for n in from_st.nodes) == sorted(n.name for n in from_pt.nodes) == ["gru", "lstm"]
    for a in from_st.nodes:
        b = from_pt.node(a.name)
        assert a.weights.keys() == b.weights.keys()
        assert all(a.weights[k].tobytes() == b.weights[k].tobytes() for k in a.weights)
    back = ir_file.load(ir_file.save(from_st, tmp_path / "st.gates"))  # a state_dict's IR as a gates file
    assert ir_file.manifest(back) == ir_file.manifest(from_st)
    model, want = ir_file.load(good["gates"]), api.read(FIXTURE)
    assert ir_file.manifest(model) == ir_file.manifest(want)
    for a, b in zip(model.nodes, want.nodes):
        assert all(a.weights[k].tobytes() == np.asarray(b.weights[k]).tobytes() for k in a.weights)
    for p in good.values():
        assert main(["convert", str(p), "--to", "onnx", "-o", str(tmp_path / f"{p.suffix[1:]}.onnx")]) == 0
    capsys.readouterr()


def test_bfloat16_reads_exactly(tmp_path):
    t = torch.randn(8, 3).to(torch.bfloat16)
    safetensors_torch.save_file({"w": t}, str(tmp_path / "b.safetensors"))
    tensors, _ = safetensors_io.load(tmp_path / "b.safetensors")
    assert tensors["w"].dtype == np.float32 and np.array_equal(tensors["w"], t.float().numpy())


# -- hypothesis: mutated headers and manifests ------------------------------------------------------
JSON_SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.sampled_from([0, 1, 3, -1, 48, 2 ** 31])
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
                | st.sampled_from(["F32", "BF16", "lstm", "gru", "dense", "tanh", "concat", "float32", "forward"]))
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["shape", "dtype", "data_offsets", "units", "name", "a"]), inner, max_size=3), max_leaves=8)


def mutate(data, doc):
    """``doc`` with one place (drawn by ``data``) replaced, deleted or added to."""
    doc = json.loads(json.dumps(doc, allow_nan=True))
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[key] = data.draw(JSON)
        elif action == "delete":
            del node[key]
        elif isinstance(node, dict):
            node[data.draw(st.sampled_from(["extra", "mask", "source", "__metadata__", "evil"]))] = data.draw(JSON)
        else:
            node.append(data.draw(JSON))
        break
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_headers_raise_only_gateport_errors(good, tmp_path, data):
    kind = data.draw(st.sampled_from(["safetensors", "gates"]))
    header, blob = split(good[kind])
    p = tmp_path / f"m.{kind}"
    p.write_bytes(join(mutate(data, header), blob))
    for read in (safetensors_io.load, api.read):
        try:
            read(p)
        except GateportError:
            pass


PLAUSIBLE = st.sampled_from([0, 1, 3, 4, -1, 2 ** 31 - 1, True, False, None, "tanh", "concat", "sum", "x", [], [3]])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_plausible_manifest_edits_convert_or_fail_in_one_line(good, tmp_path, capsys, data):
    """Edits a schema may let through (options, wiring, input shapes) never reach a writer as a crash."""
    header, blob = split(good["gates"])
    m = json.loads(header["__metadata__"]["gateport.manifest"])
    tensors = [t for n in m["nodes"] for t in n["outputs"]] + [t["name"] for t in m["inputs"]]
    node = data.draw(st.sampled_from(m["nodes"]))
    what = data.draw(st.sampled_from(["option", "inputs", "mask", "outputs", "input shape"]))
    if what == "option":
        key = data.draw(st.sampled_from(sorted(node["options"]) + ["merge_mode", "axis"]))
        node["options"][key] = data.draw(PLAUSIBLE)
    elif what == "inputs":
        node["inputs"] = data.draw(st.lists(st.sampled_from(tensors), max_size=3))
    elif what == "mask":
        node["mask"] = data.draw(st.sampled_from(tensors))
    elif what == "outputs":
        m["outputs"] = data.draw(st.lists(st.sampled_from(tensors), min_size=1, max_size=2))
    else:
        m["inputs"][0]["shape"] = data.draw(st.lists(st.sampled_from([None, 0, 1, 4, 7]), max_size=3))
    header["__metadata__"]["gateport.manifest"] = json.dumps(m)
    p = tmp_path / "e.gates"
    p.write_bytes(join(header, blob))
    for to, out in [("onnx", tmp_path / "e.onnx"), ("torch", tmp_path / "e_torch")]:
        code = main(["convert", str(p), "--to", to, "-o", str(out), "--force"])
        err = capsys.readouterr().err
        assert code == 0 or (code == 2 and err.count("\n") == 1 and "unexpected" not in err), err


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def hand_ok(doc) -> bool:
    try:
        manifest_check.check(doc)
        return True
    except GateportError:
        return False


def plain(doc) -> bool:
    """Whether ``doc`` keeps to what both validators read alike: no integral or non-finite floats."""
    if isinstance(doc, float):
        return math.isfinite(doc) and not doc.is_integer()
    if isinstance(doc, dict):
        return all(plain(v) for v in doc.values())
    if isinstance(doc, list):
        return all(plain(v) for v in doc)
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hand_check_agrees_with_jsonschema(good, data):
    header, _ = split(good["gates"])
    doc = json.loads(header["__metadata__"]["gateport.manifest"])
    for _ in range(data.draw(st.integers(0, 2))):
        doc = mutate(data, doc)
    if not plain(doc):
        return
    assert hand_ok(doc) == jsonschema.Draft202012Validator(schema()).is_valid(doc), json.dumps(doc)[:400]


def test_hand_check_is_stricter_only_on_floats(good):
    header, _ = split(good["gates"])
    doc = json.loads(header["__metadata__"]["gateport.manifest"])
    validator = jsonschema.Draft202012Validator(schema())
    assert hand_ok(doc) and validator.is_valid(doc)
    node_of(doc, "lstm")["options"]["units"] = 4.0  # a JSON Schema "integer"; never an int in gateport
    assert validator.is_valid(doc) and not hand_ok(doc)


def test_hand_check_enums_are_the_schema_enums():
    from converters.activations import NUMPY

    defs = schema()["$defs"]
    assert set(manifest_check.ACTIVATIONS) <= set(NUMPY)  # a new activation joins the schema and the check together
    assert tuple(defs["activation"]["enum"]) == manifest_check.ACTIVATIONS
    assert tuple(defs["node"]["properties"]["op"]["enum"]) == manifest_check.OPS
    assert tuple(defs["weight"]["properties"]["dtype"]["enum"]) == manifest_check.WEIGHT_DTYPES
    assert tuple(defs["tensorSpec"]["properties"]["dtype"]["enum"]) == manifest_check.INPUT_DTYPES
