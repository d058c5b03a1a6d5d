"""``gateport explain``: weight norms against Keras' own kernel slices, sensitivities against torch
autograd (the generated PyTorch module in float64), masks, token ids, the CLI."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from converters import read  # noqa: E402
from converters.errors import UnsafeError  # noqa: E402
from converters.explain_weights import explain, render, sensitivity  # noqa: E402
from converters.writers import torch_code  # noqa: E402

L = keras.layers
ROOT = Path(__file__).resolve().parent.parent
B, T, F, U = 2, 4, 3, 3


def _randomized(model):
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(-0.9, 0.9, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _autograd_sensitivity(ir, xs, tmp_path) -> dict:
    """``||d out_k[b] / d x_i[b]||`` averaged over b, from torch autograd on the generated module in float64."""
    torch_code.write(ir, tmp_path / "torch")
    spec = importlib.util.spec_from_file_location("gen_explain", tmp_path / "torch" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load_model().double()
    args = tuple(torch.tensor(x, dtype=torch.float64) for x in xs)

    def outputs(*a):
        out = model(*a)
        return out if isinstance(out, tuple) else (out,)

    jac = torch.autograd.functional.jacobian(outputs, args)
    result = {}
    for k, per_input in enumerate(jac):
        for i, j in enumerate(per_input):
            j = j.numpy().reshape(B, -1, B, *xs[i].shape[1:])
            rows = np.stack([j[b, :, b] for b in range(B)])  # a row's output depends on that row only
            result[(ir.outputs[k], ir.inputs[i].name)] = np.linalg.norm(rows, axis=1).mean(axis=0)
    return result


@pytest.fixture(scope="module")
def two_input_model(tmp_path_factory):
    """Masking -> Bidirectional(GRU, sequences) -> LSTM, concatenated with aux -> Dense; and the LSTM state."""
    seq, aux = keras.Input((T, F), name="seq"), keras.Input((2,), name="aux")
    y = L.Bidirectional(L.GRU(U, return_sequences=True), name="bigru")(L.Masking(0.0)(seq))
    h = L.LSTM(U, name="lstm")(y)
    out = L.Dense(2, activation="tanh", name="head")(L.Concatenate()([h, aux]))
    model = _randomized(keras.Model([seq, aux], [out, h]))
    path = tmp_path_factory.mktemp("explain") / "m.keras"
    model.save(path)
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (B, T, F)).astype(np.float32)
    x[:, -1] = 0.0  # the last step is masked in both rows
    x[1, 0] = 0.0  # and the first in row 1
    return model, path, [x, rng.normal(0, 1, (B, 2)).astype(np.float32)]


def test_weight_norms_are_norms_of_keras_kernel_slices(two_input_model):
    model, path, _ = two_input_model
    report = explain(path)
    kernel, recurrent, _ = model.get_layer("lstm").get_weights()
    entry = next(e for e in report.layers if e["layer"] == "lstm")
    forget = next(g for g in entry["gates"] if g["gate"] == "forget")  # Keras i, f, c, o: columns U:2U
    np.testing.assert_allclose(forget["per_feature"], np.linalg.norm(kernel[:, U:2 * U], axis=1), rtol=1e-6)
    np.testing.assert_allclose(forget["per_unit_recurrent"], np.linalg.norm(recurrent[:, U:2 * U], axis=0),
                               rtol=1e-6)
    assert entry["features"] == [f"bigru {d} (unit {u})" for d in ("forward", "backward") for u in range(U)]
    assert [(e["layer"], e["direction"]) for e in report.layers] == [
        ("bigru", "forward"), ("bigru", "backward"), ("lstm", "forward")]


def test_sensitivity_matches_torch_autograd_and_masked_steps_are_zero(two_input_model, tmp_path):
    _, path, xs = two_input_model
    ir = read(path)
    got, notes = sensitivity(ir, xs)
    want = _autograd_sensitivity(ir, xs, tmp_path)
    assert len(got) == len(want) == 4 and not notes
    for s in got:
        np.testing.assert_allclose(np.array(s["mean"]), want[(s["output"], s["input"])], rtol=1e-5, atol=1e-8)
    head_seq = next(s for s in got if s["output"] == ir.outputs[0] and s["input"] == "seq")
    assert not np.any(np.array(head_seq["mean"])[-1]) and np.all(np.array(head_seq["mean"])[:-1] > 0)
    lstm_aux = next(s for s in got if s["output"] == ir.outputs[1] and s["input"] == "aux")
    assert lstm_aux["max"] == 0.0  # the LSTM state does not see aux


def test_token_ids_have_no_sensitivity_and_the_budget_is_checked():
    ir = read(ROOT / "fixtures/models/embedding_mask_lstm.h5")
    stored = np.load(ROOT / "fixtures/expected/embedding_mask_lstm.npz")
    xs = [stored[f"in:{s.name}"] for s in ir.inputs]
    result, notes = sensitivity(ir, xs)
    assert result == [] and "token ids" in notes[0]
    float_ir = read(ROOT / "fixtures/models/tiny_lstm.h5")
    x = np.load(ROOT / "fixtures/expected/tiny_lstm.npz")["in:input_1"]
    with pytest.raises(UnsafeError, match="budget"):
        sensitivity(float_ir, [x], limit=1)


def test_cli_text_json_and_plot_refusal(two_input_model, tmp_path):
    _, path, xs = two_input_model
    np.savez(tmp_path / "x.npz", seq=xs[0], aux=xs[1])
    run = lambda *a: subprocess.run([sys.executable, "-m", "converters", "explain", str(path), *a],  # noqa: E731
                                    capture_output=True, text=True, cwd=ROOT, timeout=300)
    text = run("--inputs", str(tmp_path / "x.npz"))
    assert text.returncode == 0, text.stderr
    assert "lstm (LSTM, forward): weight norms per gate" in text.stdout and "by time step" in text.stdout
    assert all(len(line) <= 100 for line in text.stdout.splitlines())
    report = json.loads(run("--json").stdout)
    assert {e["layer"] for e in report["layers"]} == {"bigru", "lstm"} and report["sensitivity"] == []
    plot = run("--plot", str(tmp_path / "p.png"))
    if importlib.util.find_spec("matplotlib") is None:
        assert plot.returncode == 2 and plot.stderr.count("\n") == 1 and "matplotlib" in plot.stderr
    else:
        assert plot.returncode == 0 and (tmp_path / "p.png").stat().st_size > 0


def test_render_names_the_strongest_inputs():
    report = explain(ROOT / "fixtures/models/two_inputs.h5")
    assert "seq_input[" in render(report)
