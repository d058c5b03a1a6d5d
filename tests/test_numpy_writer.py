"""``--to numpy``: the generated numpy ``model.py`` against real Keras 3 (torch backend) and every fixture.

Models are built in the test with Keras 3 and turned into IR by the hand converter of
``test_reference`` (independent of converters.readers); the generated file is imported and must
match Keras within 1e-5. Every fixture and corpus file goes read -> write -> import -> the outputs
Keras stored; one runs through ``gateport verify --to numpy`` (a child process); one runs in a
child process where torch, onnx, keras, h5py, safetensors and gateport itself cannot be imported.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from converters.errors import OutputError, UnsupportedError  # noqa: E402
from converters.ir import Node  # noqa: E402
from converters.writers import numpy_code  # noqa: E402
from cases import (B, BIDIRECTIONAL, CONV, F, INITIAL_STATES, KEEP, MASKED, MERGE_CASES, SINGLE,  # noqa: E402
                            T, U, L, chain_case, conv_chain_case, keras, keras_outputs, masking_case,
                            merge_case, node_of, ir_model, randomize, single_layer_case, x_data)

from helpers import TOL, assert_close  # noqa: E402
ROOT = Path(__file__).resolve().parent.parent


def load_generated(ir, out_dir: Path):
    """Write ``ir`` as model.py + model.npz, import it; returns (module, load_model())."""
    numpy_code.write(ir, out_dir)
    spec = importlib.util.spec_from_file_location(f"gen_np_{abs(hash(str(out_dir)))}", out_dir / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.load_model()


def outputs_of(model, inputs) -> list[np.ndarray]:
    out = model(*inputs)
    return list(out) if isinstance(out, tuple) else [out]


def assert_numpy_matches(model, ir, inputs, tmp_path):
    """The generated file's outputs equal Keras' own."""
    _, generated = load_generated(ir, tmp_path / "numpy_model")
    assert_close(outputs_of(generated, inputs), keras_outputs(model, inputs), "numpy vs keras")


# -- recurrent layers against Keras ---------------------------------------------------------------
@pytest.mark.parametrize("case", SINGLE)
def test_single_recurrent_layer(case, tmp_path):
    model, ir = single_layer_case(SINGLE[case]())
    assert_numpy_matches(model, ir, [x_data()], tmp_path)


@pytest.mark.parametrize("kind,merge_mode,seq", [c for c in BIDIRECTIONAL if c[2] or c[1] in ("sum", None)])
def test_bidirectional(kind, merge_mode, seq, tmp_path):
    cls = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind]
    layer = L.Bidirectional(cls(U, return_sequences=seq, return_state=True), merge_mode=merge_mode)
    model, ir = single_layer_case(layer)
    assert_numpy_matches(model, ir, [x_data()], tmp_path)


@pytest.mark.parametrize("case", INITIAL_STATES)
def test_initial_states_as_inputs(case, tmp_path):
    make, n = INITIAL_STATES[case]
    model, ir = single_layer_case(make(), n_states=n)
    states = [x_data(10 + k, (B, U)) for k in range(n)]
    assert_numpy_matches(model, ir, [x_data(), *states], tmp_path)


@pytest.mark.parametrize("case", MASKED)
def test_masking_then_recurrent(case, tmp_path):
    model, ir = masking_case(MASKED[case]())
    assert_numpy_matches(model, ir, [x_data() * KEEP[..., None]], tmp_path)


def test_embedding_mask_zero(tmp_path):
    ids = np.random.default_rng(2).integers(1, 9, (B, T)) * KEEP
    inp = keras.Input((T,), dtype="int64", name="ids")
    emb, gru = L.Embedding(9, F, mask_zero=True), L.Bidirectional(L.GRU(U, return_sequences=True))
    model = keras.Model(inp, gru(emb(inp)))
    randomize(model)
    ir = ir_model([("ids", (T,), "int64")], [
        Node("mask", "mask_not_equal", ["ids"], ["m"], {"value": 0}),
        node_of(emb, ["ids"], ["e"]), node_of(gru, ["e"], ["y"], mask="m"),
    ], ["y"])
    assert_numpy_matches(model, ir, [ids], tmp_path)


# -- other ops ------------------------------------------------------------------------------------
def test_conv_batchnorm_lstm_timedistributed_flatten(tmp_path):
    model, ir = conv_chain_case()
    assert_numpy_matches(model, ir, [x_data()], tmp_path)


@pytest.mark.parametrize("padding,strides,dilation", CONV)
def test_conv1d(padding, strides, dilation, tmp_path):
    model, ir = chain_case([L.Conv1D(4, 3, strides=strides, padding=padding, dilation_rate=dilation)],
                           input_spec=("x", (7, F), "float32"))
    assert_numpy_matches(model, ir, [x_data(shape=(B, 7, F))], tmp_path)


@pytest.mark.parametrize("op", MERGE_CASES)
def test_merges(op, tmp_path):
    model, ir = merge_case(op)
    assert_numpy_matches(model, ir, [x_data()], tmp_path)


@pytest.mark.parametrize("activation", ["relu", "softsign", "softplus", "elu", "selu", "swish", "hard_sigmoid"])
def test_cell_and_dense_activations(activation, tmp_path):
    """Any element-wise activation inside the LSTM cell and on a Dense."""
    model, ir = chain_case([L.LSTM(U, activation=activation, return_sequences=True), L.Dense(2, activation=activation)])
    assert_numpy_matches(model, ir, [x_data()], tmp_path)


def test_repeat_vector_reshape_activation_batchnorm_axis1(tmp_path):
    from converters.activations import from_keras

    model, ir = chain_case([
        L.LSTM(U), L.RepeatVector(T), L.GRU(U, return_sequences=True), L.Reshape((T // 2, 2 * U)),
        L.Activation("softmax"), L.BatchNormalization(axis=1),
    ], options={1: {"op": "repeat_vector", "n": T}, 3: {"op": "reshape", "shape": [T // 2, 2 * U]},
                4: {"op": "activation", "activation": from_keras("softmax", keras.__version__)}})
    assert_numpy_matches(model, ir, [x_data()], tmp_path)


def test_multiple_inputs_and_outputs_in_keras_order(tmp_path):
    a, b = keras.Input((T, F), name="b_first"), keras.Input((T, 2), name="a_second")
    la, lb, dense = L.GRU(U, return_state=True), L.LSTM(U), L.Dense(3)
    ya, ha = la(a)
    model = keras.Model([a, b], [dense(lb(b)), ha, ya])
    randomize(model)
    ir = ir_model([("b_first", (T, F), "float32"), ("a_second", (T, 2), "float32")], [
        node_of(la, ["b_first"], ["ya", "ha"]), node_of(lb, ["a_second"], ["yb"]), node_of(dense, ["yb"], ["out"]),
    ], ["out", "ha", "ya"])
    assert_numpy_matches(model, ir, [x_data(), x_data(3, (B, T, 2))], tmp_path)
    source = (tmp_path / "numpy_model" / "model.py").read_text()
    assert "def __call__(self, b_first, a_second):" in source

import test_layers_coverage as coverage  # noqa: E402  (one row per layer: the shared case table)


@pytest.mark.parametrize("case", coverage.CASES, ids=[c[0] for c in coverage.CASES])
def test_every_layer_of_the_coverage_table(case, tmp_path):
    """Each layer or activation of tests/test_layers_coverage.py, from its saved .keras, vs Keras."""
    from converters import read

    _, build, make_inputs = case
    model = coverage.randomize(build())
    inputs = make_inputs()
    model.save(tmp_path / "source.keras")
    _, generated = load_generated(read(tmp_path / "source.keras"), tmp_path / "numpy_model")
    assert coverage.error(outputs_of(generated, inputs), coverage.keras_outputs(model, inputs)) <= TOL


# -- what the file reads like ---------------------------------------------------------------------
def _function(source: str, name: str) -> str:
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(source, node)


def test_cells_read_like_keras_equations_with_named_gate_slices():
    """Gates by name in Keras' order, each with its slice; the weights in Keras' layout."""
    x = keras.Input((T, F), name="x")
    lstm, gru = L.LSTM(U, return_sequences=True, name="enc"), L.GRU(3, reset_after=False, name="dec")
    model = keras.Model(x, gru(lstm(x)))
    randomize(model)
    ir = ir_model([("x", (T, F), "float32")], [node_of(lstm, ["x"], ["h1"]), node_of(gru, ["h1"], ["y"])], ["y"])
    source = numpy_code.generate_source(ir)
    cell = _function(source, "enc_cell")
    u = U
    for line in [f"i = sigmoid(z[:, 0:{u}])  # i (input gate): columns 0:{u}",
                 f"f = sigmoid(z[:, {u}:{2 * u}])  # f (forget gate): columns {u}:{2 * u}",
                 f"c_tilde = np.tanh(z[:, {2 * u}:{3 * u}])  # c (cell candidate): columns {2 * u}:{3 * u}",
                 f"o = sigmoid(z[:, {3 * u}:{4 * u}])  # o (output gate): columns {3 * u}:{4 * u}",
                 "c = f * c + i * c_tilde", "h = o * np.tanh(c)"]:
        assert line in cell, line
    assert "(r * h) @ recurrent_kernel[:, 6:9]" in _function(source, "dec_cell")  # reset before the product
    assert "import" not in source.replace("import os\n", "").replace("import numpy as np\n", "")
    weights = {k: v for k, v in zip(["kernel", "recurrent_kernel", "bias"], lstm.get_weights())}
    for name, keras_array in weights.items():
        assert np.array_equal(numpy_code.keras_weights(ir.nodes[0], "forward")[name], keras_array)


def test_only_needed_helpers_and_imports():
    model, ir = single_layer_case(L.SimpleRNN(U, activation="relu", name="rnn"))
    source = numpy_code.generate_source(ir)
    tree = ast.parse(source)
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert defined == {"keras_rnn", "rnn_cell", "Model", "load_model"}
    assert "h = np.maximum(x_t @ kernel + h @ recurrent_kernel + bias, 0.0)" in source


# -- refusals and atomic output -------------------------------------------------------------------
def test_unknown_op_is_refused_with_the_layer_name(tmp_path):
    model, ir = single_layer_case(L.SimpleRNN(U))
    ir.nodes.append(Node("odd", "fourier", ["y0"], ["z"], source={"class_name": "FFT"}))
    with pytest.raises(UnsupportedError, match="fourier") as e:
        numpy_code.write(ir, tmp_path / "out")
    assert "odd (FFT)" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_write_refuses_to_overwrite_and_keeps_other_files(tmp_path):
    _, ir = single_layer_case(L.GRU(U))
    out = tmp_path / "out"
    numpy_code.write(ir, out)
    with pytest.raises(OutputError):
        numpy_code.write(ir, out)
    (out / "notes.txt").write_text("mine")
    numpy_code.write(ir, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["model.npz", "model.py", "notes.txt"]


# -- every fixture and corpus file: read() -> write -> import -> the outputs Keras stored ---------------
def _entries():
    entries = [dict(e, id=e["name"]) for e in json.loads((ROOT / "fixtures" / "fixtures.json").read_text())]
    legacy = ROOT / "fixtures" / "legacy.json"
    if legacy.exists():
        entries += [dict(e, id=f"legacy:{e['name']}") for e in json.loads(legacy.read_text())]
    corpus = ROOT / "fixtures" / "corpus" / "manifest.json"
    entries += [dict(e, name=name, id=f"corpus:{name}") for name, e in json.loads(corpus.read_text()).items()]
    return entries


ENTRIES = _entries()


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_fixture_to_numpy(entry, tmp_path):
    from converters import read
    from converters.errors import FormatError

    path = (ROOT / entry["file"]).resolve()
    if not path.exists():
        pytest.skip(f"{path} is not here (the corpus lives outside the repository)")
    config = str(ROOT / entry["config"]) if entry.get("config") else None
    try:
        ir = read(path, config)
    except FormatError as e:  # the one refusal every target shares: see test_corpus_recurrent_only.py
        assert "weights only" in str(e) and "textgenrnn" in str(path)
        return
    stored = np.load(ROOT / entry["expected"])
    inputs = [stored[f"in:{name}"] for name in entry["inputs"]]
    want = [stored[f"out:{k}"] for k in range(entry["n_outputs"])]
    _, generated = load_generated(ir, tmp_path / "numpy_model")
    assert_close(outputs_of(generated, inputs), want, entry["id"])


def test_cli_verify_runs_the_numpy_target_in_a_child(tmp_path):
    entry = next(e for e in ENTRIES if e["name"] == "embedding_mask_bigru")
    stored = str(ROOT / entry["expected"])
    proc = subprocess.run([sys.executable, "-m", "converters", "verify", str(ROOT / entry["file"]), "--to", "numpy",
                           "--inputs", stored, "--expected", stored, "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    report = json.loads(proc.stdout)
    rows = [r for r in report["rows"] if r["runtime"] == "numpy (generated)"]
    assert proc.returncode == 0 and report["verdict"] == "ok", proc.stdout + proc.stderr
    assert len(rows) == entry["n_outputs"] and all(r["status"] == "pass" and r["max_abs"] <= TOL for r in rows)
    assert report["where"] == [{"runtime": "numpy (generated)", "departures": [], "layers_agree": True}]


# -- numpy alone --------------------------------------------------------------------------------------
_BLOCKED = ("torch", "onnx", "onnxruntime", "keras", "tensorflow", "tf_keras", "jax", "h5py", "safetensors",
            "converters")
_NUMPY_ONLY = f"""
import sys
for name in {_BLOCKED!r}:
    sys.modules[name] = None  # import name -> ImportError
import importlib.util
import numpy as np
folder, out = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("model", folder + "/model.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
with np.load(folder + "/inputs.npz") as f:
    xs = [f["x%d" % k] for k in range(len(f.files))]
y = module.load_model()(*xs)
y = list(y) if isinstance(y, tuple) else [y]
np.savez(out, *y)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {_BLOCKED!r} and sys.modules[m] is not None)
assert not loaded, loaded
"""


def test_generated_code_runs_with_numpy_alone(tmp_path):
    """Conv1D, BatchNorm, LSTM, TimeDistributed, Flatten, softmax Dense in a child that cannot import
    torch, onnx, keras, h5py, safetensors or gateport."""
    model, ir = conv_chain_case()
    folder = tmp_path / "numpy_model"
    numpy_code.write(ir, folder)
    x = x_data()
    np.savez(folder / "inputs.npz", x0=x)
    subprocess.run([sys.executable, "-I", "-c", _NUMPY_ONLY, str(folder), str(tmp_path / "out.npz")],
                   check=True, cwd=tmp_path, timeout=120)
    with np.load(tmp_path / "out.npz") as f:
        got = [f[k] for k in sorted(f.files)]
    assert_close(got, keras_outputs(model, [x]), "numpy alone vs keras")


def test_readme_shows_the_real_generated_cell():
    """The README's lstm_cell is what --to numpy writes for fixtures/models/two_inputs.h5, line for line."""
    from converters import read

    source = numpy_code.generate_source(read(ROOT / "fixtures/models/two_inputs.h5"))
    for name in ("README.md", "README.zh-CN.md"):
        shown = (ROOT / name).read_text().split("```python\ndef lstm_cell", 1)[1].split("```", 1)[0]
        assert "def lstm_cell" + shown in source, name


def test_every_op_and_activation_of_the_reference_is_written():
    from converters.activations import NUMPY
    from converters.reference import OPS
    from converters.writers.numpy_templates import ACTIVATIONS

    assert set(numpy_code.EMITTERS) == set(OPS) | {"lstm", "gru", "simple_rnn"}
    assert set(ACTIVATIONS) == set(NUMPY)


def test_verify_fails_a_wrong_numpy_artifact_and_reports_a_crash(tmp_path):
    """A written folder given as the artifact: its forget and input gates exchanged fail; a crash is an error row."""
    from converters import read
    from converters.verification import verify

    entry = next(e for e in ENTRIES if e["name"] == "lstm_return_state")
    stored = str(ROOT / entry["expected"])
    folder = numpy_code.write(read(ROOT / entry["file"]), tmp_path / "np")
    with np.load(folder / "model.npz") as f:
        arrays = {k: f[k] for k in f.files}
    kernel = next(k for k in arrays if k.endswith(".kernel") and arrays[k].shape[1] % 4 == 0)
    u = arrays[kernel].shape[1] // 4
    arrays[kernel] = np.concatenate([arrays[kernel][:, u:2 * u], arrays[kernel][:, :u], arrays[kernel][:, 2 * u:]], 1)
    np.savez(folder / "model.npz", **arrays)
    report = verify(ROOT / entry["file"], ("numpy",), inputs=stored, expected=stored,
                    artifacts={"numpy": folder})
    assert report.verdict == "fail" and any(r.status == "fail" for r in report.rows if r.runtime == "numpy (generated)")
    [where] = [w.to_dict() for w in report.where if w.runtime == "numpy (generated)"]
    assert [d["layer"] for d in where["departures"]][:1] == [read(ROOT / entry["file"]).nodes[0].name], where
    (folder / "model.py").write_text("def load_model():\n    raise RuntimeError('boom')\n")
    report = verify(ROOT / entry["file"], ("numpy",), inputs=stored, expected=stored, artifacts={"numpy": folder})
    [row] = [r for r in report.rows if r.runtime == "numpy (generated)"]
    assert report.verdict == "error" and row.error == "RuntimeError: boom"


def test_readme_shows_the_real_generated_call():
    """The README's excerpt of Model.__call__ is in the generated file, line for line."""
    from converters import read

    source = numpy_code.generate_source(read(ROOT / "fixtures/models/two_inputs.h5"))
    shown = (ROOT / "README.md").read_text().split("    def __call__(self, seq_input, aux_input):\n", 1)[1]
    lines = [ln for ln in shown.split("```", 1)[0].splitlines() if ln.strip() != "..."]
    assert lines and all(ln in source.splitlines() for ln in lines), lines
