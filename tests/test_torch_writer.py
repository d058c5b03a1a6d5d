"""The generated PyTorch code (``--to torch``) against real Keras 3 on the torch backend, and fixtures.

Models are built in the test with Keras 3 and turned into IR by the hand converter of
``test_reference`` (independent of converters.readers); the generated ``model.py`` is imported, run
eagerly, through ``torch.jit.script`` and through ``torch.export.export``, and every output must
match Keras with max abs error <= 1e-5. Every fixture (and the real corpus, when present) goes
through ``read`` -> ``torch_code.write`` -> import -> compare with the outputs Keras stored.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from converters.errors import OutputError, UnsupportedError  # noqa: E402
from converters.ir import Gate, Node  # noqa: E402
from converters.writers import torch_code  # noqa: E402
from cases import (B, BIDIRECTIONAL, CONV, F, INITIAL_STATES, KEEP, MASKED, SINGLE,  # noqa: E402
                            KERAS_VERSION, T, U, L, chain_case, conv_chain_case, from_keras, ir_model, keras,
                            keras_outputs, masking_case, merge_case, MERGE_CASES, node_of, randomize,
                            single_layer_case, x_data)

import helpers  # noqa: E402

assert_close = functools.partial(helpers.assert_close, dtype=np.float32)  # every output float32, as PyTorch computes
ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.filterwarnings("ignore:The tensor attributes .*_flat_weights:UserWarning"),  # export + nn.LSTM
    pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning"),  # Keras, one-input models
    pytest.mark.usefixtures("one_torch_thread"),
]



# -- running the generated module --------------------------------------------------------------------
def load_generated(ir, out_dir: Path):
    """Write ``ir`` as model.py + model.safetensors, import it, return (module, load_model())."""
    torch_code.write(ir, out_dir)
    spec = importlib.util.spec_from_file_location(f"gen_{abs(hash(str(out_dir)))}", out_dir / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.load_model()


def as_torch(ir, inputs):
    """Inputs as the generated forward takes them: float32, int64 for token ids, bool for masks."""
    dtypes = {"int64": torch.int64, "float32": torch.float32, "bool": torch.bool}
    return tuple(torch.from_numpy(np.asarray(x)).to(dtypes[spec.dtype]) for spec, x in zip(ir.inputs, inputs))


def run(module, args):
    with torch.no_grad():
        out = module(*args)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def scripted(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated in 2.13
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(model)


def assert_torch_matches(model, ir, inputs, tmp_path, deploy=True):
    """Generated module == Keras: eagerly, and (``deploy``) scripted and exported."""
    want = keras_outputs(model, inputs)
    _, generated = load_generated(ir, tmp_path / "torch_model")
    args = as_torch(ir, inputs)
    assert_close(run(generated, args), want, "eager")
    if deploy:
        assert_close(run(scripted(generated), args), want, "jit.script")
        assert_close(run(torch.export.export(generated, args).module(), args), want, "export")
    return generated


# -- single layers, Bidirectional, initial states --------------------------------------------------
@pytest.mark.parametrize("case", SINGLE)
def test_single_recurrent_layer(case, tmp_path):
    model, ir = single_layer_case(SINGLE[case]())
    assert_torch_matches(model, ir, [x_data()], tmp_path)


@pytest.mark.parametrize("kind,merge_mode,seq", BIDIRECTIONAL)
def test_bidirectional(kind, merge_mode, seq, tmp_path):
    cls = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind]
    layer = L.Bidirectional(cls(U, return_sequences=seq, return_state=True), merge_mode=merge_mode)
    model, ir = single_layer_case(layer)
    assert_torch_matches(model, ir, [x_data()], tmp_path)


@pytest.mark.parametrize("kind", ["lstm", "gru_reset_before"])
def test_bidirectional_of_go_backwards_layer(kind, tmp_path):
    make = {"lstm": lambda **k: L.LSTM(U, return_sequences=True, **k),
            "gru_reset_before": lambda **k: L.GRU(U, reset_after=False, return_sequences=True, **k)}[kind]
    layer = L.Bidirectional(make(go_backwards=True), backward_layer=make())
    model, ir = single_layer_case(layer)
    assert_torch_matches(model, ir, [x_data()], tmp_path)


@pytest.mark.parametrize("case", INITIAL_STATES)
def test_initial_states_as_inputs(case, tmp_path):
    make, n = INITIAL_STATES[case]
    model, ir = single_layer_case(make(), n_states=n)
    states = [x_data(10 + k, (B, U)) for k in range(n)]
    assert_torch_matches(model, ir, [x_data(), *states], tmp_path)


# -- hard_sigmoid: both definitions ------------------------------------------------------------------
def hard_sigmoid_keras2(x):
    """tf-keras / Keras 2 hard_sigmoid, for a Keras 3 layer to compute it."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


HARD_SIGMOID = {
    "lstm": lambda: L.LSTM(U, recurrent_activation="hard_sigmoid", return_sequences=True, return_state=True),
    "gru_reset_before": lambda: L.GRU(U, recurrent_activation="hard_sigmoid", reset_after=False,
                                      return_sequences=True),
    "gru_reset_after": lambda: L.GRU(U, recurrent_activation="hard_sigmoid", return_state=True),
    "bi_lstm_masked": lambda: L.Bidirectional(L.LSTM(U, recurrent_activation="hard_sigmoid",
                                                     return_sequences=True), merge_mode="mul"),
}


@pytest.mark.parametrize("definition", ["keras2", "keras3"])
@pytest.mark.parametrize("case", HARD_SIGMOID)
def test_hard_sigmoid(case, definition, tmp_path):
    """Keras 3's relu6(x+3)/6 as Keras 3 computes it; Keras 2's clip(0.2x+0.5) on the same layer."""
    layer = HARD_SIGMOID[case]()
    masked = case.endswith("masked")
    model, ir = masking_case(layer) if masked else single_layer_case(layer)
    x = x_data() * KEEP[..., None] if masked else x_data()
    if definition == "keras2":
        keras3_outputs = keras_outputs(model, [x])
        for sub in (layer.forward_layer, layer.backward_layer) if isinstance(layer, L.Bidirectional) else (layer,):
            sub.cell.recurrent_activation = hard_sigmoid_keras2
        rnn = next(n for n in ir.nodes if n.is_recurrent)
        assert rnn.options["recurrent_activation"] == "hard_sigmoid_keras3"
        rnn.options["recurrent_activation"] = "hard_sigmoid_keras2"
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(keras_outputs(model, [x]), keras3_outputs))
        assert moved > 1e-3, "the two hard_sigmoid definitions should give different outputs here"
    generated = assert_torch_matches(model, ir, [x], tmp_path)
    source = (tmp_path / "torch_model" / "model.py").read_text()
    assert ("HardSigmoidKeras2()" in source) == (definition == "keras2")
    assert ("nn.Hardsigmoid()" in source) == (definition == "keras3")
    assert not any(isinstance(m, (torch.nn.LSTM, torch.nn.GRU)) for m in generated.modules())


# -- masks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", MASKED)
def test_masking_then_recurrent(case, tmp_path):
    model, ir = masking_case(MASKED[case]())
    assert_torch_matches(model, ir, [x_data() * KEEP[..., None]], tmp_path)


def test_masked_first_step_with_initial_state(tmp_path):
    model, ir = masking_case(L.LSTM(U, return_sequences=True, return_state=True), n_states=2)
    inputs = [x_data() * KEEP[..., None], *(x_data(10 + k, (B, U)) for k in range(2))]
    assert_torch_matches(model, ir, inputs, tmp_path)


def embedding_case(layer, mask_zero=True):
    ids = np.random.default_rng(2).integers(1, 9, (B, T)) * KEEP
    inp = keras.Input((T,), dtype="int64", name="ids")
    emb = L.Embedding(9, F, mask_zero=mask_zero)
    y = layer(emb(inp))
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    model = keras.Model(inp, ys)
    randomize(model)
    outs = [f"y{k}" for k in range(len(ys))]
    nodes = [node_of(emb, ["ids"], ["e"]), node_of(layer, ["e"], outs, mask="m" if mask_zero else None)]
    if mask_zero:
        nodes.insert(0, Node("mask", "mask_not_equal", ["ids"], ["m"], {"value": 0}))
    return model, ir_model([("ids", (T,), "int64")], nodes, outs), [ids]


EMBEDDED = {
    "lstm_seq_state": lambda: L.LSTM(U, return_sequences=True, return_state=True),
    "bi_gru_seq_concat": lambda: L.Bidirectional(L.GRU(U, return_sequences=True)),
    "bi_lstm_last_ave": lambda: L.Bidirectional(L.LSTM(U), merge_mode="ave"),
    "bi_simple_rnn_seq_none": lambda: L.Bidirectional(L.SimpleRNN(U, return_sequences=True), merge_mode=None),
    "gru_backwards_reset_before": lambda: L.GRU(U, go_backwards=True, reset_after=False, return_sequences=True),
}


@pytest.mark.parametrize("case", EMBEDDED)
def test_embedding_mask_zero(case, tmp_path):
    model, ir, inputs = embedding_case(EMBEDDED[case]())
    assert_torch_matches(model, ir, inputs, tmp_path)


def test_embedding_without_mask_uses_nn_lstm(tmp_path):
    model, ir, inputs = embedding_case(L.LSTM(U, return_sequences=True), mask_zero=False)
    generated = assert_torch_matches(model, ir, inputs, tmp_path)
    assert any(isinstance(m, torch.nn.LSTM) for m in generated.modules())


# -- stacks and other ops ------------------------------------------------------------------------
def test_stacked_recurrent_layers(tmp_path):
    model, ir = chain_case([L.LSTM(5, return_sequences=True), L.GRU(U, reset_after=False, return_sequences=True),
                            L.Bidirectional(L.SimpleRNN(3), merge_mode="ave"), L.Dense(2, activation="tanh")])
    assert_torch_matches(model, ir, [x_data()], tmp_path)


def test_conv_batchnorm_lstm_timedistributed_flatten(tmp_path):
    model, ir = conv_chain_case()
    assert_torch_matches(model, ir, [x_data()], tmp_path)


def test_lstm_repeat_gru_reshape_activation_batchnorm_axis1(tmp_path):
    model, ir = chain_case([
        L.LSTM(U), L.RepeatVector(T), L.GRU(U, return_sequences=True), L.Reshape((T // 2, 2 * U)),
        L.Activation("hard_sigmoid"), L.BatchNormalization(axis=1),
    ], options={1: {"op": "repeat_vector", "n": T}, 3: {"op": "reshape", "shape": [T // 2, 2 * U]},
                4: {"op": "activation", "activation": from_keras("hard_sigmoid", KERAS_VERSION)}})
    assert_torch_matches(model, ir, [x_data()], tmp_path)


@pytest.mark.parametrize("padding,strides,dilation", CONV)
def test_conv1d(padding, strides, dilation, tmp_path):
    model, ir = chain_case([L.Conv1D(4, 3, strides=strides, padding=padding, dilation_rate=dilation)],
                           input_spec=("x", (7, F), "float32"))
    assert_torch_matches(model, ir, [x_data(shape=(B, 7, F))], tmp_path)


@pytest.mark.parametrize("op", MERGE_CASES)
def test_merges(op, tmp_path):
    model, ir = merge_case(op)
    assert_torch_matches(model, ir, [x_data()], tmp_path)


ACTIVATIONS = ["linear", "relu", "softsign", "softplus", "elu", "selu", "exponential", "swish", "sigmoid"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_cell_activations(activation, tmp_path):
    """Any element-wise activation inside the LSTM cell (loop) and on a Dense."""
    scale = 0.2 if activation == "exponential" else 1.0  # exp(c) overflows to inf in Keras too otherwise
    layers = [L.LSTM(U, activation=activation, return_sequences=True), L.Dense(2, activation=activation)]
    model, _ = chain_case(layers)
    for layer in layers:
        layer.set_weights([w * scale for w in layer.get_weights()])
    ir = chain_case_ir_from(model, layers)
    assert_torch_matches(model, ir, [x_data() * scale], tmp_path, deploy=activation in ("elu", "exponential"))


def chain_case_ir_from(model, layers):
    """IR of a Sequential chain after its weights changed."""
    names = ["x"] + [f"t{k}" for k in range(len(layers))]
    return ir_model([("x", (T, F), "float32")], [node_of(layer, names[k:k + 1], names[k + 1:k + 2])
                                                  for k, layer in enumerate(layers)], [names[-1]])


def test_multiple_inputs_and_outputs_in_keras_order(tmp_path):
    a, b = keras.Input((T, F), name="b_first"), keras.Input((T, 2), name="a_second")
    la, lb = L.GRU(U, return_state=True), L.LSTM(U)
    dense = L.Dense(3)
    ya, ha = la(a)
    yb = lb(b)
    model = keras.Model([a, b], [dense(yb), ha, ya])
    randomize(model)
    ir = ir_model([("b_first", (T, F), "float32"), ("a_second", (T, 2), "float32")], [
        node_of(la, ["b_first"], ["ya", "ha"]), node_of(lb, ["a_second"], ["yb"]), node_of(dense, ["yb"], ["out"]),
    ], ["out", "ha", "ya"])
    generated = assert_torch_matches(model, ir, [x_data(), x_data(3, (B, T, 2))], tmp_path)
    source = (tmp_path / "torch_model" / "model.py").read_text()
    assert "def forward(self, b_first: Tensor, a_second: Tensor) -> Tuple[Tensor, Tensor, Tensor]:" in source
    assert generated is not None


def test_hand_built_masks_and_float64_weights_vs_reference(tmp_path):
    """Ops Keras builds rarely: mask_and of two masks, Masking with only its mask_value; float64 IR weights."""
    from converters import reference

    rng = np.random.default_rng(5)
    lstm = Node("lstm", "lstm", ["xm"], ["y", "h", "c"], {
        "units": U, "input_size": F, "activation": "tanh", "recurrent_activation": "hard_sigmoid_keras2",
        "use_bias": True, "go_backwards": True, "return_sequences": True, "return_state": True,
        "bidirectional": False, "zero_output_for_mask": False}, mask="both")
    for gate in lstm.gate_names:
        lstm.set_gate("forward", gate, Gate(rng.uniform(-1, 1, (U, F)), rng.uniform(-1, 1, (U, U)),
                                            rng.uniform(-1, 1, U), rng.uniform(-1, 1, U)))
    ir = ir_model([("x", (T, F), "float32"), ("ids", (T,), "int64")], [
        Node("ids_mask", "mask_not_equal", ["ids"], ["m_ids"], {"value": 0}),
        Node("x_mask", "mask_not_equal", ["x"], ["m_x"], {"value": 0.5, "reduce": True}),
        Node("both", "mask_and", ["m_ids", "m_x"], ["both"]),
        Node("masking", "masking", ["x"], ["xm"], {"mask_value": 0.5}),
        lstm,
    ], ["y", "h", "c"])
    x = x_data()
    x[0, 1] = 0.5
    x[2, 4:] = 0.5
    ids = rng.integers(1, 5, (B, T)) * KEEP
    _, generated = load_generated(ir, tmp_path / "hand")
    for module in (generated, scripted(generated)):
        assert_close(run(module, as_torch(ir, [x, ids])), reference.run(ir, [x, ids]), "vs reference")


# -- dynamic shapes --------------------------------------------------------------------------------
def test_dynamic_time_and_batch(tmp_path):
    """One generated module, scripted, runs any batch and length, masked and unmasked."""
    x = keras.Input((None, F), name="x")
    xm = L.Masking(0.0)(x)
    masked = L.Bidirectional(L.GRU(U, return_sequences=True, reset_after=False))
    plain = L.LSTM(U)
    model = keras.Model(x, plain(masked(xm)))
    randomize(model)
    ir = ir_model([("x", (None, F), "float32")], [
        Node("mask", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True}),
        Node("masking", "masking", ["x"], ["xm"], mask="m"),
        node_of(masked, ["xm"], ["h"], mask="m"),
        node_of(plain, ["h"], ["y"], mask="m"),
    ], ["y"])
    _, generated = load_generated(ir, tmp_path / "dyn")
    script = scripted(generated)
    for batch, time in ((3, 6), (5, 9), (1, 2)):
        keep = np.random.default_rng(time).uniform(size=(batch, time)) > 0.3
        xs = x_data(time, (batch, time, F)) * keep[..., None]
        want = keras_outputs(model, [xs])
        assert_close(run(generated, as_torch(ir, [xs])), want, f"eager {batch}x{time}")
        assert_close(run(script, as_torch(ir, [xs])), want, f"jit.script {batch}x{time}")


def test_export_with_dynamic_batch(tmp_path):
    """torch.export with a symbolic batch (the time loop is unrolled for the example's length)."""
    model, ir = masking_case(L.Bidirectional(L.LSTM(U, return_sequences=True, recurrent_activation="hard_sigmoid")))
    _, generated = load_generated(ir, tmp_path / "exp")
    example = as_torch(ir, [x_data() * KEEP[..., None]])
    exported = torch.export.export(generated, example, dynamic_shapes=({0: torch.export.Dim("batch")},))
    xs = x_data(7, (5, T, F))
    xs[1, 2:] = 0.0
    assert_close(run(exported.module(), as_torch(ir, [xs])), keras_outputs(model, [xs]), "export batch 5")


# -- the file itself -----------------------------------------------------------------------------
def test_source_is_standalone_and_emits_only_needed_helpers(tmp_path):
    model, ir = chain_case([L.LSTM(U, return_sequences=True), L.GRU(U), L.Dense(2)])
    source = torch_code.generate_source(ir)
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])}
    assert imported == {"os", "typing", "torch", "safetensors"}
    assert "class KerasLoop" not in source and "HardSigmoid" not in source  # all nn.*: no loop helpers
    assert "nn.LSTM(3, 4, batch_first=True)" in source and "nn.GRU(4, 4, batch_first=True)" in source

    model, ir = single_layer_case(L.GRU(U, reset_after=False))
    source = torch_code.generate_source(ir)
    assert "class GRULoop(KerasLoop)" in source and "class LSTMLoop" not in source
    assert "class SimpleRNNLoop" not in source and "class Exponential" not in source


def test_converters_import_without_torch():
    code = ("import sys, converters.writers.torch_code, converters.writers.torch_state; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    model, ir = single_layer_case(L.LSTM(U))
    out = tmp_path / "out"
    assert torch_code.write(ir, out) == out
    assert sorted(p.name for p in out.iterdir()) == ["model.py", "model.safetensors"]
    with pytest.raises(OutputError, match="exists"):
        torch_code.write(ir, out)
    (out / "notes.txt").write_text("kept")
    torch_code.write(ir, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["model.py", "model.safetensors", "notes.txt"]
    with pytest.raises(OutputError):
        torch_code.write(ir, tmp_path / "missing" / "out")
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as f:
        assert f.metadata()["format"] == "pt"
        assert set(f.keys()) == set(torch_code.state_dict(ir))


def test_unknown_op_is_refused_with_the_layer_name():
    model, ir = single_layer_case(L.SimpleRNN(U))
    ir.nodes.append(Node("odd", "fourier", ["y0"], ["z"], source={"class_name": "FFT"}))
    with pytest.raises(UnsupportedError, match="fourier") as e:
        torch_code.generate_source(ir)
    assert "odd (FFT)" in str(e.value)


# -- every fixture: read() -> write -> import -> compare with the outputs Keras stored ----------------
def _entries():
    entries = [dict(e, id=e["name"]) for e in json.loads((ROOT / "fixtures" / "fixtures.json").read_text())]
    legacy = ROOT / "fixtures" / "legacy.json"
    if legacy.exists():
        entries += [dict(e, id=f"legacy:{e['name']}") for e in json.loads(legacy.read_text())]
    corpus = ROOT / "fixtures" / "corpus" / "manifest.json"
    if corpus.exists():
        entries += [dict(e, name=name, id=f"corpus:{name}") for name, e in json.loads(corpus.read_text()).items()]
    return entries


ENTRIES = _entries()


def _resize(a, spec, batch, time):
    """The stored input tiled/cut to ``batch`` rows and, where the time axis is dynamic, ``time`` steps."""
    a = np.concatenate([a] * (batch // len(a) + 1))[:batch]
    if len(spec.shape) >= 1 and spec.shape[0] is None and a.ndim >= 2:
        a = np.concatenate([a] * (time // a.shape[1] + 1), axis=1)[:, :time]
    return a


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_fixture_to_torch(entry, tmp_path):
    """Stored Keras outputs, eagerly and scripted; the scripted module at another size vs the reference."""
    from converters import readers, reference
    from converters.errors import FormatError

    if not hasattr(readers, "read"):
        pytest.skip("converters.readers.read does not exist yet")
    path = (ROOT / entry["file"]).resolve()
    if not path.exists():
        pytest.skip(f"{path} is not here (the corpus lives outside the repository)")
    config = {"config": str(ROOT / entry["config"])} if entry.get("config") else {}
    try:
        ir = readers.read(path, **config)
    except (UnsupportedError, FormatError) as e:
        if entry["id"].startswith("corpus:"):  # the one refusal allowed: see test_corpus_recurrent_only.py
            assert "weights only" in str(e) and "textgenrnn" in str(path)
            return
        raise
    stored = np.load(ROOT / entry["expected"])
    inputs = [stored[f"in:{name}"] for name in entry["inputs"]]
    want = [stored[f"out:{k}"] for k in range(entry["n_outputs"])]
    _, generated = load_generated(ir, tmp_path / "torch_model")
    args = as_torch(ir, inputs)
    assert_close(run(generated, args), want, entry["id"])
    script = scripted(generated)
    assert_close(run(script, args), want, f"{entry['id']} jit.script")
    resized = [_resize(a, spec, 2, 9) for a, spec in zip(inputs, ir.inputs)]
    assert_close(run(script, as_torch(ir, resized)), reference.run(ir, resized), f"{entry['id']} 2x9 vs reference")
