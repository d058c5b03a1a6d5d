"""gateport verify: every fixture (and the real corpus) passes against the Keras outputs stored with
it in torch, onnxruntime, Keras 3 (the converted .keras) and the numpy reference; a corrupted artifact
fails with its output and its first departing layer named, bad input exits 2, a missing runtime is a
skipped row (verdict rules: tests/test_verify_verdicts.py).

Corruption is real (forget and input gates swapped in the IR before one target is written), and a
missing runtime is a real ImportError in a subprocess (``sys.modules[name] = None``), not a mock.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from converters import cli  # noqa: E402
from converters.errors import GateportError  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.verification import ATOL, compare, keras_plan, random_inputs, verify  # noqa: E402

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
from helpers import TOL  # noqa: E402


def _entries(manifest: str) -> list[dict]:
    path = ROOT / "fixtures" / manifest
    return json.loads(path.read_text()) if path.exists() else []


FIXTURES = _entries("fixtures.json") + _entries("legacy.json")
CORPUS = [dict(v, name=k) for k, v in json.loads((ROOT / "fixtures/corpus/manifest.json").read_text()).items()]
#: Corpus files verify cannot take as they are, and why.
CORPUS_NEEDS = {"k215_cudnnlstm_weights_textgenrnn": "weights only; its architecture is a shim in make_corpus_refs.py"}


def _path(rel: str | None) -> str | None:
    return None if rel is None else str((ROOT / rel).resolve())


def _verify_stored(entry: dict, targets=("torch", "onnx")):
    """verify on the fixture's own inputs, with the outputs Keras stored as the reference."""
    stored = _path(entry["expected"])
    return verify(_path(entry["file"]), targets, inputs=stored, expected=stored, config=_path(entry.get("config")))


def _rows(report, runtime: str) -> list:
    return [r for r in report.rows if r.runtime == runtime]


def _assert_exact(report, runtimes, n_outputs):
    for runtime in runtimes:
        rows = _rows(report, runtime)
        assert len(rows) == n_outputs, f"{runtime}: {[r.to_dict() for r in rows]}"
        for r in rows:
            print(f"{runtime:18s} {r.output:24s} max abs {r.max_abs:.2e}")
            assert r.passed and r.max_abs <= TOL, r.to_dict()


# -- every fixture ------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", FIXTURES, ids=lambda e: e["name"])
def test_fixture_matches_stored_keras_outputs(entry):
    pytest.importorskip("keras")
    report = _verify_stored(entry, ("torch", "onnx", "keras"))
    assert report.reference.startswith("stored outputs")
    expected_rows = ["numpy", "torch", "onnx"] + ([] if "keras3_refused" in entry["features"] else ["keras (converted)"])
    if keras_plan(_path(entry["file"]), _path(entry.get("config")))[0] == "keras":
        expected_rows.append("keras (source)")  # Keras 3 reloads its own file: it must agree too
    _assert_exact(report, expected_rows, entry["n_outputs"])
    assert report.ok, report.to_dict()


@pytest.mark.parametrize("entry", FIXTURES, ids=lambda e: e["name"])
def test_fixture_passes_on_random_inputs(entry):
    report = verify(_path(entry["file"]), ("torch", "onnx"), config=_path(entry.get("config")), require="any")
    assert report.ok, report.to_dict()
    assert report.reference_kind in ("gateport", "keras")
    assert report.independent == (report.reference == f"keras {_keras_version()}")
    assert all(w.departures == [] and w.unavailable is None for w in report.where), report.to_dict()
    _assert_exact(report, ["torch", "onnx"], entry["n_outputs"])


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: e["name"])
def test_corpus_matches_stored_outputs(entry):
    if entry["name"] in CORPUS_NEEDS:  # the one refusal allowed; its recurrent part: test_corpus_recurrent_only.py
        with pytest.raises(GateportError, match="weights only"):
            _verify_stored(entry)
        return
    report = _verify_stored(entry)
    _assert_exact(report, ["numpy", "torch", "onnx"], entry["n_outputs"])
    assert report.ok, report.to_dict()


def _keras_version():
    import keras

    return keras.__version__


def _fixture(name: str) -> dict:
    return next(e for e in FIXTURES if e["name"] == name)


# -- the reference ---------------------------------------------------------------------------------------
def test_keras3_file_uses_keras_as_reference():
    report = verify(_path(_fixture("k3_lstm_hard_sigmoid")["file"]), ("torch",))
    assert report.reference == f"keras {_keras_version()}"
    assert [r.runtime for r in report.rows] == ["numpy", "torch"] and report.ok


@pytest.mark.parametrize("name,runtime", [
    ("k3_masking_lstm", "keras"), ("lstm_relu", "tf_keras"), ("weights_only_gru_lstm", "tf_keras"),
    ("k3_weights_only_lstm_hard_sigmoid", None), ("keras1_lstm", None), ("cudnn_lstm_gru", None),
])
def test_keras_plan(name, runtime):
    entry = _fixture(name)
    assert keras_plan(_path(entry["file"]), _path(entry.get("config")))[0] == runtime


def test_keras_never_loads_a_file_with_a_lambda_layer(tmp_path):
    path = tmp_path / "lambda.h5"
    cfg = {"class_name": "Sequential", "config": {"layers": [
        {"class_name": "LSTM", "config": {"units": 2}},
        {"class_name": "Lambda", "config": {"function": ["4wEAAAAAAAAA", None, None]}}]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "3.5.0"
        f.attrs["model_config"] = json.dumps(cfg)
    runtime, why = keras_plan(path, None)
    assert runtime is None and "Lambda" in why


def test_tf_keras_file_without_tf_keras_is_a_skipped_row_and_numpy_is_the_reference():
    out = _run_cli_isolated(["verify", _path(_fixture("lstm_hard_sigmoid")["file"]), "--json"], poison=["tf_keras"])
    assert out.returncode == 3, out.stderr  # unproven: only gateport's own reading to compare with
    report = json.loads(out.stdout)
    assert report["reference_kind"] == "gateport" and report["verdict"] == "unproven"
    assert "install tf-keras or pass --expected" in report["summary"]
    assert report["rows"][0] == {"runtime": "tf_keras (source)", "status": "skipped",
                                 "skipped": report["rows"][0]["skipped"]}
    assert "pip install tf-keras" in report["rows"][0]["skipped"]


# -- corruption: forget and input gates swapped in one artifact -----------------------------------------
def swap_forget_input(model):
    """A copy of ``model`` with the forget and input gates of every LSTM direction exchanged."""
    bad = copy.deepcopy(model)
    for node in bad.recurrent_nodes():
        if node.op == "lstm":
            for d in node.directions:
                i, f = node.gate(d, "input"), node.gate(d, "forget")
                node.set_gate(d, "input", f)
                node.set_gate(d, "forget", i)
    return bad


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_swapped_gates_in_one_artifact_fail_that_artifact_only(target):
    entry = _fixture("lstm_return_state")  # outputs [y, h, c]
    model = read(_path(entry["file"]))
    stored = _path(entry["expected"])
    report = verify(_path(entry["file"]), ("torch", "onnx"), inputs=stored, expected=stored,
                    artifacts={target: swap_forget_input(model)})
    assert not report.ok
    failed = report.failures()
    assert {r.runtime for r in failed} == {target}
    assert [r.output for r in failed] == model.outputs  # every output named
    assert all(r.max_abs > 1e-2 for r in failed)
    where = {w.runtime: w for w in report.where}
    assert [(d.layer, d.direction, d.step) for d in where[target].departures] == [("lstm", "forward", 0)]
    other = "onnx" if target == "torch" else "torch"
    assert all(r.passed for r in _rows(report, other))


def test_cli_exits_1_and_names_the_output_of_a_corrupted_onnx_file(tmp_path, capsys):
    import onnx

    from converters.writers import onnx_graph

    entry = _fixture("lstm_relu")
    model = read(_path(entry["file"]))
    bad = tmp_path / "bad.onnx"
    onnx.save(onnx_graph.to_onnx(swap_forget_input(model)), str(bad))
    code = cli.main(["verify", _path(entry["file"]), "--artifact", f"onnx={bad}"])
    captured = capsys.readouterr()
    out = captured.out
    print(out)
    assert code == 1
    # the report is on stdout; stderr says it in one line too, naming the file
    assert captured.err.splitlines()[-1] == (f"gateport: mismatch: {_path(entry['file'])}: "
                                             f"FAIL (onnx: {model.outputs[0]})")
    row = next(line for line in out.splitlines() if line.startswith("onnx "))
    assert model.outputs[0] in row and "FAIL" in row
    assert next(line for line in out.splitlines() if line.startswith("torch ")).endswith("pass")
    assert f"FAIL (onnx: {model.outputs[0]})" in out
    assert "where: onnx: layer 'lstm', forward direction: output first differs at step 0" in out


# -- the CLI ---------------------------------------------------------------------------------------------
def test_cli_passes_with_stored_inputs_and_json(capsys):
    entry = _fixture("two_inputs")
    stored = _path(entry["expected"])
    code = cli.main(["verify", _path(entry["file"]), "--inputs", stored, "--expected", stored, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"]
    assert report["reference"] == f"stored outputs ({stored})"
    compared = [r for r in report["rows"] if "skipped" not in r]
    assert {r["runtime"] for r in compared} == {"numpy", "torch", "onnx"}
    assert all(set(r) == {"runtime", "output", "max_abs", "max_rel", "passed", "status"} for r in compared)
    assert (report["verdict"], report["reference_kind"], report["exit_status"]) == ("ok", "stored", 0)
    assert all(r["max_abs"] <= TOL for r in compared)


def test_cli_table(capsys):
    code = cli.main(["verify", _path(_fixture("k3_embedding_bigru")["file"]), "--to", "onnx",
                     "--batch", "3"])
    out = capsys.readouterr().out
    print(out)
    assert code == 0
    assert f"reference: keras {_keras_version()}" in out
    assert "inputs: random (seed 0): " in out and "x (3, 6) int64" in out
    header = next(line for line in out.splitlines() if line.startswith("runtime"))
    assert header.split() == ["runtime", "output", "max", "abs", "max", "rel", "result"]
    assert out.rstrip().endswith("2 passed, 0 failed, 0 skipped: OK")


@pytest.mark.parametrize("make_args", [
    lambda tmp: ["verify", str(_garbage(tmp))],
    lambda tmp: ["verify", str(tmp / "missing.h5")],
    lambda tmp: ["verify", _path(_fixture("tiny_lstm")["file"]), "--to", "tensorflow"],
    lambda tmp: ["verify", _path(_fixture("tiny_lstm")["file"]), "--inputs", str(_npz(tmp, wrong=1))],
    lambda tmp: ["verify", _path(_fixture("tiny_lstm")["file"]), "--expected", str(_npz(tmp, **{"out:1": 1}))],
    lambda tmp: ["verify", _path(_fixture("tiny_lstm")["file"]), "--artifact", f"onnx={tmp / 'none.onnx'}"],
    lambda tmp: ["verify", _path(_fixture("tiny_lstm")["file"]), "--batch", "0"],
], ids=["not-a-model", "no-file", "unknown-target", "inputs-missing-name", "expected-wrong-keys",
        "artifact-missing", "batch-0"])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, make_args):
    code = cli.main(make_args(tmp_path))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("gateport: error: ") and err.count("\n") == 1, err


def _garbage(tmp: Path) -> Path:
    path = tmp / "model.h5"
    path.write_bytes(b"this is not a model" * 10)
    return path


def _npz(tmp: Path, **arrays) -> Path:
    path = tmp / "data.npz"
    np.savez(path, **{k: np.full((1, 3), v, dtype="float32") for k, v in arrays.items()})
    return path


def _run_cli_isolated(args: list[str], poison: list[str] = (), unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter where importing each module of ``poison`` fails."""
    code = ("import sys\n"
            f"for name in {list(poison)!r}:\n    sys.modules[name] = None  # import raises ImportError\n"
            "from converters.cli import main\n"
            f"sys.exit(main({args!r}))\n")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_missing_onnxruntime_is_a_skipped_row_naming_the_extra():
    out = _run_cli_isolated(["verify", _path(_fixture("bidir_gru_mul")["file"]), "--json", "--require", "any"],
                            poison=["onnxruntime"])
    assert out.returncode == 0, out.stderr
    rows = {r["runtime"]: r for r in json.loads(out.stdout)["rows"]}
    assert "pip install 'gateport[onnx]'" in rows["onnx"]["skipped"]
    assert rows["torch"]["passed"]


def test_unset_keras_backend_becomes_torch_and_the_report_says_so():
    out = _run_cli_isolated(["verify", _path(_fixture("k3_masking_lstm")["file"]), "--to", "torch", "--json"],
                            unset=("KERAS_BACKEND",))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["reference"].startswith("keras ") and report["ok"]
    assert "KERAS_BACKEND was unset: gateport set it to torch" in report["notes"]


# -- inputs and comparison -----------------------------------------------------------------------------------
def test_random_ids_are_in_the_vocabulary_with_padding_where_masked():
    model = read(_path(_fixture("embedding_mask_lstm")["file"]))
    vocab = next(n for n in model.nodes if n.op == "embedding").weights["embeddings"].shape[0]
    ids = random_inputs(model, batch=3)[0]
    steps = model.inputs[0].shape[0]
    assert ids.dtype == np.int64 and ids.shape == (3, steps)
    assert ids.min() >= 0 and ids.max() < vocab
    assert np.all(ids[0] > 0)  # row 0 full
    assert ids[1, -1] == 0 and ids[1, -2] != 0 and np.all(ids[2, -2:] == 0)  # trailing padding
    assert ids[2, steps // 2 - 1] == 0 and np.count_nonzero(ids[2] == 0) == 3  # and one step in the middle


def test_random_floats_use_the_masking_value():
    model = read(_path(_fixture("masking_gru")["file"]))  # Masking(mask_value=-1.0)
    x = random_inputs(model, batch=2)[0]
    steps = x.shape[1]
    assert x.dtype == np.float32 and np.all(np.abs(x[x != -1.0]) <= 2.0)
    assert np.all(x[1, -1] == -1.0) and np.all(x[1, steps // 2 - 1] == -1.0)
    assert not np.any(np.all(x[0] == -1.0, axis=-1))


def test_compare():
    want = np.array([[1.0, -2.0, 0.0]])
    assert compare("t", "y", want + 1e-6, want, ATOL, 0.0).passed
    row = compare("t", "y", want + [[0, 0, 1e-3]], want, ATOL, 0.0)
    assert not row.passed and row.max_abs == pytest.approx(1e-3) and row.max_rel == 0.0
    assert not compare("t", "y", want[:, :2], want, ATOL, 0.0).passed
    assert not compare("t", "y", want * np.nan, want, ATOL, 0.0).passed
    assert compare("t", "y", want * np.nan, want * np.nan, ATOL, 0.0).passed
