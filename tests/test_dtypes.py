"""Keras dtype policies (converters/dtypes.py): float64, mixed_float16, mixed_bfloat16, float16 and bfloat16
models built with Keras 3 (torch backend), read, inspected, converted and run by every runtime.

float64: the reference, the generated numpy and PyTorch code and the Keras target compute in float64 and
agree with each other to 1e-12; ONNX computes in float32 (onnxruntime has no double LSTM/GRU/RNN kernel)
and says so in a note. All are within 1e-5 of Keras 3 on torch, whose ``ops.matmul`` itself rounds float64
products to float32 (keras/src/backend/common/dtypes.py: BIT64_TO_BIT32_DTYPE off TensorFlow).
float16 / bfloat16 compute: the Keras target keeps the policy and reproduces Keras; the other targets
compute in float32 and stay within verify's bound for the compute dtype (dtypes.tolerance).
"""
from __future__ import annotations

import json
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from converters import dtypes, reference  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3  # noqa: E402
from test_layers_coverage import B, F, T, U, error, floats, keras_outputs, onnx_outputs, randomize, torch_outputs  # noqa: E402
from test_numpy_writer import load_generated, outputs_of  # noqa: E402

L = keras.layers
TOL = 1e-5


def model_with(policy: str, input_dtype: str = "float32", last: str | None = None):
    """LSTM -> causal Conv1D -> GRU -> Dense, every layer under ``policy`` (the Dense under ``last`` if given:
    mixed-precision models end in a float32 layer). Glorot recurrent kernels: orthogonal needs a float QR
    torch's CPU lacks for float16."""
    rec = {"recurrent_initializer": "glorot_uniform"}
    inp = keras.Input((None, F), dtype=input_dtype, name="x")
    y = L.LSTM(U, return_sequences=True, dtype=policy, name="lstm", **rec)(inp)
    y = L.Conv1D(3, 2, padding="causal", dtype=policy, name="conv")(y)
    y = L.GRU(U, dtype=policy, name="gru", **rec)(y)
    y = L.Dense(3, dtype=last or policy, name="dense")(y)
    return randomize(keras.Model(inp, y))


def within(got, want, atol: float, rtol: float) -> bool:
    """verify's test: ``|got - want| <= atol + rtol * |want|`` everywhere."""
    return all(np.all(np.abs(np.asarray(g, np.float64) - w) <= atol + rtol * np.abs(w)) for g, w in zip(got, want))


def saved(model, tmp_path):
    model.save(tmp_path / "m.keras")
    return read(tmp_path / "m.keras")


def run_all(ir, xs, tmp_path) -> dict[str, list[np.ndarray]]:
    """Outputs of the reference, generated numpy and PyTorch code, ONNX (float inputs as float32) and Keras'
    reading of gateport's .keras."""
    _, generated = load_generated(ir, tmp_path / "np")
    k = keras.models.load_model(keras_v3.write(ir, tmp_path / "out.keras"))
    return {"reference": reference.run(ir, xs), "numpy": outputs_of(generated, xs),
            "torch": torch_outputs(ir, xs, tmp_path / "torch"),
            "onnx": onnx_outputs(ir, [x.astype(np.float32) if x.dtype.kind == "f" else x for x in xs],
                                 tmp_path / "m.onnx"),
            "keras": [keras.ops.convert_to_numpy(o) for o in [k(xs[0], training=False)]]}


def test_float64_model_computes_in_float64_where_the_target_can(tmp_path):
    model = model_with("float64", "float64")
    ir = saved(model, tmp_path)
    assert [s.dtype for s in ir.inputs] == ["float64"]
    assert dtypes.describe(ir)["policy"] == "float64" and dtypes.tolerance(ir) is None
    xs = [floats((B, T, F)).astype(np.float64)]
    got = run_all(ir, xs, tmp_path)
    want = keras_outputs(model, xs)
    assert max(error(g, want) for g in got.values()) <= TOL, {k: error(g, want) for k, g in got.items()}
    assert {k: g[0].dtype.name for k, g in got.items()} == {
        "reference": "float64", "numpy": "float64", "torch": "float64", "onnx": "float32", "keras": "float64"}
    for name in ("numpy", "torch"):  # float64 all through: agree far below float32's rounding
        assert error(got[name], got["reference"]) <= 1e-12, name
    assert error(got["keras"], want) == 0.0  # Keras reading gateport's file computes as the source
    assert error(got["onnx"], got["reference"]) > 1e-12  # float32, as its note says
    from safetensors.numpy import load_file

    assert {a.dtype.name for a in load_file(tmp_path / "torch" / "model.safetensors").values()} == {"float64"}
    assert {layer.dtype_policy.name for layer in keras.models.load_model(tmp_path / "out.keras").layers[1:]} \
        == {"float64"}


def test_float64_masking_model_reads_keras_cast_of_its_input(tmp_path):
    """A float64 Masking on a float32 input: Keras 3 serializes a Cast op before the mask's NotEqual (exact,
    float32 to float64); every runtime follows Keras' mask, the float64 ones to 1e-12 of each other."""
    from test_layers_coverage import padded, seq

    model = randomize(seq(L.Masking(dtype="float64"), L.SimpleRNN(U, return_sequences=True, dtype="float64"),
                          L.GlobalAveragePooling1D(dtype="float64")))
    ir = saved(model, tmp_path)
    xs = [padded()]
    got = run_all(ir, xs, tmp_path)
    want = keras_outputs(model, xs)
    assert max(error(g, want) for g in got.values()) <= TOL, {k: error(g, want) for k, g in got.items()}
    assert max(error(got[k], got["reference"]) for k in ("numpy", "torch")) <= 1e-12


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float16", "bfloat16"])
def test_half_precision_compute_within_the_dtype_bound(policy, tmp_path):
    """Every runtime within dtypes.tolerance of Keras (which rounds each layer to float16/bfloat16); the
    Keras target keeps the policy; the float32 targets agree with each other to 1e-5."""
    model = model_with(policy, last="float32")
    ir = saved(model, tmp_path)
    compute = dtypes.policy_dtypes(policy)[0]
    assert dtypes.describe(ir) == {"policy": policy, "compute_dtype": compute,
                                   "variable_dtype": dtypes.policy_dtypes(policy)[1],
                                   "layers": {policy: 3, "float32": 1}}
    atol, rtol, why = dtypes.tolerance(ir)  # LSTM, Conv1D, GRU: 2 x (6 + 1 + 6) epsilons
    assert atol == rtol == {"float16": 2.6e-2, "bfloat16": 2.1e-1}[compute]
    assert why.startswith(f"tolerance {dtypes.short(atol)} from compute dtype {compute} (26 x epsilon")
    xs = [floats((B, T, F))]
    got = run_all(ir, xs, tmp_path)
    want = keras_outputs(model, xs)
    errors = {k: error(g, want) for k, g in got.items()}
    assert all(within(g, want, atol, rtol) for g in got.values()), errors
    assert errors["keras"] <= 1e-6, errors  # Keras recomputes its own float16 rounding
    assert errors["torch"] > 1e-5, errors  # the float32 targets do not: the dtype bound is needed
    for name in ("numpy", "torch", "onnx"):
        assert error(got[name], got["reference"]) <= TOL, name


def test_verify_takes_its_tolerance_from_the_compute_dtype(tmp_path, capsys):
    from converters.cli import main

    model_with("mixed_float16", last="float32").save(tmp_path / "m.keras")
    assert main(["verify", str(tmp_path / "m.keras"), "--to", "onnx", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["atol"] == report["rtol"] == 2.6e-2
    assert any(n.startswith("tolerance 2.6e-2 from compute dtype float16 (26 x epsilon 9.77e-4 over 3 layers")
               for n in report["notes"])
    assert main(["verify", str(tmp_path / "m.keras"), "--to", "onnx"]) == 0
    text = capsys.readouterr().out
    assert "tolerance: |error| <= 0.026 + 0.026 * |reference|" in text
    assert "note: tolerance 2.6e-2 from compute dtype float16" in text
    # a tolerance given by hand is used as given, without the note
    main(["verify", str(tmp_path / "m.keras"), "--to", "onnx", "--json", "--atol", "1e-5", "--rtol", "1e-5"])
    report = json.loads(capsys.readouterr().out)
    assert report["atol"] == 1e-5 and not any("compute dtype" in n for n in report["notes"])
    assert report["verdict"] == "fail"  # float16 rounding exceeds the float32 bound: the note explains why


def test_float32_model_keeps_the_float32_bound(tmp_path):
    from converters.api import verify

    model_with("float32").save(tmp_path / "m.keras")
    report = verify(tmp_path / "m.keras", ["onnx"])
    assert (report.atol, report.rtol) == (1e-5, 1.3e-6) and report.ok
    assert not any("compute dtype" in n for n in report.notes)


def test_inspect_shows_the_policy_and_float64_inputs(tmp_path, capsys):
    from converters.cli import main

    model_with("mixed_float16", last="float32").save(tmp_path / "m.keras")
    assert main(["inspect", str(tmp_path / "m.keras")]) == 0
    out = capsys.readouterr().out
    assert "dtype:   mixed_float16 (compute float16, variables float32); layers: 1 float32, 3 mixed_float16" in out
    model_with("float64", "float64").save(tmp_path / "d.keras")
    assert main(["inspect", str(tmp_path / "d.keras"), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["inputs"][0]["dtype"] == "float64"
    assert desc["dtype"] == {"policy": "float64", "compute_dtype": "float64", "variable_dtype": "float64",
                             "layers": {"float64": 4}}
    model_with("float32").save(tmp_path / "f.keras")
    assert main(["inspect", str(tmp_path / "f.keras")]) == 0
    assert "dtype:" not in capsys.readouterr().out  # a float32 model: nothing to say


@pytest.mark.parametrize("policy, target, said", [
    ("float64", "onnx", "computes in float32 on float32 inputs (onnxruntime"),
    ("float64", "torch", None),
    ("float64", "keras", None),
    ("mixed_float16", "torch", "computes in float32 with the float32 variables"),
    ("mixed_float16", "onnx", "computes in float32 with the float32 variables"),
    ("mixed_float16", "keras", None),
])
def test_a_note_says_where_the_artifact_does_not_compute_in_the_model_dtype(policy, target, said, tmp_path):
    from converters import api
    from converters.notes import GateportNote

    model_with(policy, "float64" if policy == "float64" else "float32").save(tmp_path / "m.keras")
    out = tmp_path / {"onnx": "m.onnx", "torch": "torch", "keras": "out.keras"}[target]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.convert(tmp_path / "m.keras", target, out)
    notes = [str(w.message) for w in caught if issubclass(w.category, GateportNote) and "dtype policy" in str(w.message)]
    if said is None:
        assert notes == []
    else:
        assert len(notes) == 1 and said in notes[0] and f"'{policy}'" in notes[0] and "4 layers" in notes[0], notes


# -- fixtures written by real tf_keras 2.21 and Keras 3 (TensorFlow backend): fixtures/make_dtype_fixtures.py --
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
DTYPE_FIXTURES = json.loads((ROOT / "fixtures" / "dtype_fixtures.json").read_text())


@pytest.mark.parametrize("entry", DTYPE_FIXTURES, ids=lambda e: e["name"])
def test_dtype_fixture_in_every_runtime(entry, tmp_path):
    """The producer's stored outputs against every runtime: float64 models to 1e-12 where the artifact
    computes in float64 (TensorFlow computes float64 all through), 1e-5 in ONNX and in Keras 3 on torch
    (its ops.matmul rounds float64 to float32); float16/bfloat16 compute within dtypes.tolerance."""
    ir = read(ROOT / entry["file"])
    with np.load(ROOT / entry["expected"]) as npz:
        xs = [npz[f"in:{s.name}"].astype(s.dtype) for s in ir.inputs]  # token ids as the IR's int64
        want = [npz[f"out:{k}"].astype(np.float64) for k in range(entry["n_outputs"])]
    policy = next(f for f in entry["features"] if f in ("float64", "mixed_float16", "mixed_bfloat16"))
    assert dtypes.describe(ir)["policy"] == policy
    got = run_all(ir, xs, tmp_path)
    errors = {k: error(g, want) for k, g in got.items()}
    if policy == "float64":
        assert [s.dtype for s in ir.inputs] == ["float64"] and dtypes.tolerance(ir) is None
        assert max(errors[k] for k in ("reference", "numpy", "torch")) <= 1e-12, errors
        assert errors["onnx"] <= TOL and errors["keras"] <= TOL, errors  # Keras 3 on torch: float32 matmuls
    else:
        atol, rtol, _ = dtypes.tolerance(ir)
        assert all(within(g, want, atol, rtol) for g in got.values()), (atol, errors)
        assert max(errors.values()) > TOL, errors  # the producer's float16 rounding: the bound is needed


@pytest.mark.parametrize("entry", DTYPE_FIXTURES[2:4], ids=lambda e: e["name"])
def test_verify_on_a_mixed_float16_fixture_passes_and_says_why(entry, capsys):
    from converters.cli import main

    code = main(["verify", str(ROOT / entry["file"]), "--expected", str(ROOT / entry["expected"]),
                 "--inputs", str(ROOT / entry["expected"]), "--to", "torch,onnx", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "ok", report
    assert any(n.startswith("tolerance 2.6e-2 from compute dtype float16") for n in report["notes"]), report["notes"]
