"""``--fp16``: ONNX weights stored as float16 (half the file), computed in float32, and what it costs.

The rounding is measured, never hidden: the file says so in ``metadata_props``, ``verify --fp16`` (or
``verify --artifact onnx=FILE`` of such a file) holds it to 1e-2 and reports the error in a note.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from converters import api
from converters.writers import onnx_graph

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from roundtrip import FIXTURE, ROOT, fixture_io  # noqa: E402

AUTOENCODER = "autoencoder_bilstm"


def _gateport(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "converters", *args], capture_output=True, text=True)


def _run(path, xs) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path))
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})


def test_fp16_halves_the_file_and_costs_a_measured_error(tmp_path):
    entry = FIXTURE[AUTOENCODER]
    full, half = tmp_path / "full.onnx", tmp_path / "half.onnx"
    api.convert(ROOT / entry["file"], "onnx", full)
    api.convert(ROOT / entry["file"], "onnx", half, weights_dtype="float16")
    assert half.stat().st_size < 0.55 * full.stat().st_size
    proto = onnx.load(str(half))
    onnx.checker.check_model(proto, full_check=True)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props[onnx_graph.WEIGHTS_DTYPE_PROP] == "float16"
    assert any("float16" in note for note in json.loads(props["gateport.notes"]))
    big = [t for t in proto.graph.initializer if np.prod(t.dims) >= onnx_graph.FLOAT16_MIN_SIZE]
    assert big and all(t.data_type == onnx.TensorProto.FLOAT16 for t in big)
    assert {n.op_type for n in proto.graph.node} >= {"Cast", "LSTM"}
    xs, expected = fixture_io(entry)
    got32, got16 = _run(full, xs), _run(half, xs)
    err32 = max(float(np.abs(g - e).max()) for g, e in zip(got32, expected))
    err16 = max(float(np.abs(g - e).max()) for g, e in zip(got16, expected))
    assert err32 <= 1e-5 < err16 <= 1e-2  # float16 weights do cost something, and it is bounded
    assert all(g.dtype == np.float32 for g in got16)  # computed and returned in float32


def test_constants_float16_cannot_hold_stay_float32():
    """A -1e9 mask constant (Keras' masked softmax) would become -inf in float16: it stays float32."""
    from converters.ir import Model, Node, TensorSpec

    x = TensorSpec("x", (3, 20), "float32")
    node = Node("dense", "dense", ["x"], ["y"], {"units": 20, "activation": "linear", "use_bias": True},
                {"weight": np.full((20, 20), 1e9, np.float32), "bias": np.zeros(20, np.float32)})
    proto = onnx_graph.deployable(Model("m", [x], ["y"], [node]), weights_dtype="float16")
    types = {t.name: t.data_type for t in proto.graph.initializer if np.prod(t.dims) >= 16}
    assert onnx.TensorProto.FLOAT in types.values()
    y = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": np.ones((1, 3, 20), np.float32)})[0]
    assert np.isfinite(y).all() and np.allclose(y, 2e10, rtol=1e-6)


def test_cli_fp16_and_verify_report_the_cost(tmp_path):
    entry = FIXTURE[AUTOENCODER]
    model, expected = str(ROOT / entry["file"]), str(ROOT / entry["expected"])
    out = tmp_path / "m16.onnx"
    done = _gateport("convert", model, "--to", "onnx", "--fp16", "-o", str(out))
    assert done.returncode == 0, done.stderr
    io = ["--inputs", expected, "--expected", expected]
    for how in (["--fp16"], ["--artifact", f"onnx={out}"]):
        done = _gateport("verify", model, "--to", "onnx", *how, *io, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout)
        note = next(n for n in report["notes"] if "float16" in n)
        assert "max abs error" in note and "0.01" in note
        onnx_rows = [r for r in report["rows"] if r["runtime"] == "onnx"]
        assert onnx_rows and all(1e-5 < r["max_abs"] <= 1e-2 for r in onnx_rows)
    refused = _gateport("convert", model, "--to", "torch", "--fp16", "-o", str(tmp_path / "t"))
    assert refused.returncode == 2 and "--fp16" in refused.stderr and not (tmp_path / "t").exists()
