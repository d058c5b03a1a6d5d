"""gateport diff: for every fixture and every corpus file, each mistake class made in the IR and written
by a real writer (torch-state-dict .safetensors, ONNX) is named by ``diff`` against the source file; the
correct artifacts are the same numbers.

Whether a broken artifact computes different numbers is decided independently of diff, by running the
numpy reference on the correct and the broken model: where a mistake changes nothing (an LSTM's two
biases merged: only their sum enters) diff must say "same numbers", everywhere else it must name the
mistake. A mistake a model cannot carry (swapped directions without a bidirectional layer, gate
orders of a one-gate SimpleRNN, a Keras 1 GRU order that is the Keras order, reshaping a (1, 1)
kernel) is refused by :func:`converters.mistakes.break_model` with the reason, and the README table
says so.
"""
from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from converters import api, cli, mistakes, reference  # noqa: E402
from converters.diff import diff, render  # noqa: E402
from converters.errors import GateportError, UnsupportedError  # noqa: E402
from converters.verification import random_inputs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WRITERS = {"torch-state-dict": ".safetensors", "onnx": ".onnx"}
#: the mistake classes every file is tested with (missing_layer has its own tests below)
WEIGHT_MISTAKES = [k for k in mistakes.KINDS if k != "missing_layer"]


def _entries() -> list[dict]:
    out = []
    for manifest in ("fixtures.json", "legacy.json"):
        path = ROOT / "fixtures" / manifest
        out += [dict(e, id=e["name"]) for e in (json.loads(path.read_text()) if path.exists() else [])]
    corpus = json.loads((ROOT / "fixtures" / "corpus" / "manifest.json").read_text())
    out += [dict(e, id=f"corpus:{k}", config=None) for k, e in corpus.items()]
    return out


ENTRIES = _entries()


def _paths(entry: dict) -> tuple[str, str | None]:
    path = (ROOT / entry["file"]).resolve()
    if not path.is_file():
        pytest.skip(f"{path} is not available (the corpus lives in ../shared/corpus)")
    return str(path), str((ROOT / entry["config"]).resolve()) if entry.get("config") else None


@functools.lru_cache(maxsize=None)
def _source(entry_id: str):
    from converters.diff import read_side

    entry = next(e for e in ENTRIES if e["id"] == entry_id)
    return read_side(*_paths(entry))


def _outputs_change(a, b) -> bool:
    """Whether the numpy reference computes different outputs for ``a`` and ``b`` on the same inputs.

    Beyond float32 rounding: merging a CuDNN LSTM's two float32 biases rounds their sum once (~1e-8).
    """
    xs = random_inputs(a, batch=2, steps=5, seed=1)
    with np.errstate(over="ignore"):  # a broken model may saturate its sigmoids
        pairs = list(zip(reference.run(a, xs), reference.run(b, xs)))
    return any(not np.allclose(x, y, rtol=0, atol=1e-6) for x, y in pairs)


def _write(model, path: Path, to: str) -> Path | None:
    """The artifact written by the real writer, or None where the target cannot hold the model."""
    try:
        return api.convert(model, to, path)
    except UnsupportedError:  # e.g. hard_sigmoid in an nn.LSTM state_dict, a weights-only file to ONNX
        return None


def _diff_or_none(a, b: Path, **options):
    """diff's report, or None where gateport's ONNX reader cannot read back what its writer wrote.

    (Masked layers: the reader understands the Keras masking plans it knows, not every graph the writer
    emits around them: tests/test_onnx_reader.py lists what round-trips.)
    """
    try:
        return diff(a, b, **options)
    except UnsupportedError as e:
        if b.suffix != ".onnx" or "ONNX node" not in str(e):
            raise
        return None


def _kinds(report) -> set[str]:
    return {m.kind for m in report.mistakes}


# -- every file x every mistake class ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", WEIGHT_MISTAKES)
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["id"])
def test_broken_artifact_is_named(entry, kind, tmp_path):
    a = _source(entry["id"])
    try:
        broken = mistakes.break_model(a, kind)
    except UnsupportedError as e:  # the model cannot carry this mistake: the reason names each layer
        assert "no layer can carry" in str(e) and all(n.name in str(e) for n in a.recurrent_nodes())
        return
    changes = _outputs_change(a, broken)
    written = 0
    for to, suffix in WRITERS.items():
        path = _write(broken, tmp_path / f"broken{suffix}", to)
        if path is None:
            continue
        report = _diff_or_none(a, path)
        if report is None:
            continue
        written += 1
        if changes:
            assert not report.ok and kind in _kinds(report), render(report)
            assert _kinds(report) == {kind}, render(report)
        else:  # e.g. merged biases of an LSTM: the same sums, the same numbers
            assert report.ok, render(report)
    assert written, "neither a torch-state-dict nor an ONNX artifact of the model could be written and read"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["id"])
def test_correct_artifacts_are_the_same_numbers(entry, tmp_path):
    path, config = _paths(entry)
    written = 0
    for to, suffix in WRITERS.items():
        out = _write(_source(entry["id"]), tmp_path / f"ok{suffix}", to)
        if out is None:
            continue
        report = _diff_or_none(path, out, config_a=config)
        if report is None:
            continue
        written += 1
        assert report.ok, render(report)
        assert report.rows and all(r.max_abs is not None and r.max_abs <= report.atol for r in report.rows)
    assert written


# -- layers: missing, extra, partial ------------------------------------------------------------------------
def test_missing_layer_is_named_and_partial_accepts_it(tmp_path):
    src = ROOT / "fixtures/models/autoencoder_bilstm.h5"
    out = api.convert(mistakes.break_model(api.read(src), "missing_layer"), "torch-state-dict",
                      tmp_path / "one.safetensors")
    report = diff(src, out)
    assert _kinds(report) == {"missing_layer"} and report.mistakes[0].layer == "decoder_lstm", render(report)
    assert diff(src, out, partial=True).ok
    extra = diff(out, src)  # the other way round: B has a layer A lacks
    assert _kinds(extra) == {"extra_layer"}, render(extra)


# -- a user's hand-made nn.Module state_dict ------------------------------------------------------------------
def _keras_lstm(path: Path, layer: str, direction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kernel, recurrent_kernel, bias) of a tf-keras Bidirectional LSTM, as a user reads them with h5py."""
    with h5py.File(path, "r") as f:
        group = f[f"model_weights/{layer}/{layer}"]
        cell = group[next(k for k in group if k.startswith(direction)) + "/lstm_cell"]
        return tuple(np.asarray(cell[f"{n}:0"]) for n in ("kernel", "recurrent_kernel", "bias"))


def _hand_made_state_dict(path: Path, layers: dict[str, str], order: str = "ifco") -> dict:
    """What a user writes: ``weight_ih = kernel.T`` ... with the kernel sliced in ``order`` (Keras is i,f,c,o)."""
    torch = pytest.importorskip("torch")
    state = {}
    for keras_name, prefix in layers.items():
        for direction, sfx in (("forward", ""), ("backward", "_reverse")):
            kernel, recurrent, bias = _keras_lstm(path, keras_name, direction)
            units = recurrent.shape[0]

            def sliced(a, axis):  # the user's gate slices, in the order they believe Keras uses
                blocks = dict(zip("ifco", np.split(a, 4, axis=axis)))
                return np.concatenate([blocks[g] for g in order], axis=axis)
            state[f"{prefix}weight_ih_l0{sfx}"] = torch.from_numpy(np.ascontiguousarray(sliced(kernel, 1).T))
            state[f"{prefix}weight_hh_l0{sfx}"] = torch.from_numpy(np.ascontiguousarray(sliced(recurrent, 1).T))
            state[f"{prefix}bias_ih_l0{sfx}"] = torch.from_numpy(sliced(bias, 0))
            state[f"{prefix}bias_hh_l0{sfx}"] = torch.zeros(4 * units)
    return state


AUTOENCODER = ROOT / "fixtures/models/autoencoder_bilstm.h5"


def _save_pt(state: dict, path: Path) -> Path:
    import torch

    torch.save(state, path)
    return path


def test_hand_made_state_dict_aligned_by_order(tmp_path):
    pt = _save_pt(_hand_made_state_dict(AUTOENCODER, {"encoder_lstm": "enc.", "decoder_lstm": "dec."}),
                  tmp_path / "mine.pt")
    report = diff(AUTOENCODER, pt)
    assert report.alignment == "order" and report.pairs == [("encoder_lstm", "enc"), ("decoder_lstm", "dec")]
    assert report.ok, render(report)


def test_hand_made_partial_state_dict_by_order_and_by_name(tmp_path):
    by_order = _save_pt(_hand_made_state_dict(AUTOENCODER, {"decoder_lstm": "dec."}), tmp_path / "dec.pt")
    report = diff(AUTOENCODER, by_order, partial=True)
    assert report.pairs == [("decoder_lstm", "dec")] and report.ok, render(report)
    assert _kinds(diff(AUTOENCODER, by_order)) == {"missing_layer"}
    by_name = _save_pt(_hand_made_state_dict(AUTOENCODER, {"decoder_lstm": "decoder_lstm."}),
                       tmp_path / "decoder_lstm.pt")
    description = tmp_path / "names.json"  # without it the reader names the module after its prefix anyway
    description.write_text(json.dumps({"layers": [{"prefix": "decoder_lstm.", "kind": "lstm"}]}))
    report = diff(AUTOENCODER, by_name, config_b=description, partial=True)
    assert report.alignment == "name" and report.ok, render(report)


def test_kernel_sliced_as_ifoc_is_named(tmp_path, capsys):
    pt = _save_pt(_hand_made_state_dict(AUTOENCODER, {"encoder_lstm": "enc.", "decoder_lstm": "dec."}, "ifoc"),
                  tmp_path / "ifoc.pt")
    assert cli.main(["diff", str(AUTOENCODER), str(pt)]) == 1
    out = capsys.readouterr().out
    assert "cell and output gates swapped" in out and "[permuted_gates]" in out, out


def test_keras_bias_in_both_torch_biases_is_named(tmp_path):
    state = _hand_made_state_dict(AUTOENCODER, {"encoder_lstm": "enc.", "decoder_lstm": "dec."})
    for key in [k for k in state if k.startswith("enc.bias_hh")]:
        state[key] = state[key.replace("bias_hh", "bias_ih")].clone()  # the Keras bias copied twice
    report = diff(AUTOENCODER, _save_pt(state, tmp_path / "twice.pt"))
    assert [(m.kind, m.layer) for m in report.mistakes] == [("doubled_bias", "encoder_lstm")], render(report)
    assert "forward, backward: the bias counted twice" in report.mistakes[0].text


def test_activation_difference_is_named(tmp_path):
    src = ROOT / "fixtures/models/lstm_hard_sigmoid.h5"
    model = api.read(src)
    for node in model.recurrent_nodes():  # what nn.LSTM computes instead
        node.options = {**node.options, "recurrent_activation": "sigmoid"}
    report = diff(src, api.convert(model, "torch-state-dict", tmp_path / "sigmoid.safetensors"))
    assert _kinds(report) == {"activation"}, render(report)
    assert "recurrent_activation differs: A 'hard_sigmoid_keras2', B 'sigmoid'" in report.mistakes[0].text


def test_weights_only_file_without_architecture_compares_weights_not_assumed_activations(tmp_path):
    weights, config = (ROOT / "fixtures/models" / n for n in ("weights_only_gru_lstm_weights.h5",
                                                               "weights_only_gru_lstm.json"))
    model = api.read(weights, config)
    # the architecture says sigmoid; the weights alone make the reader assume Keras 2's default hard_sigmoid
    assert model.node("lstm").options["recurrent_activation"] == "sigmoid"
    out = api.convert(model, "onnx", tmp_path / "wo.onnx")
    report = diff(weights, out)
    assert report.ok and any("not compared" in n for n in report.notes), render(report)
    assert diff(weights, out, config_a=config).ok
    broken = api.convert(mistakes.break_model(model, "permuted_gates"), "onnx", tmp_path / "bad.onnx")
    assert _kinds(diff(weights, broken)) == {"permuted_gates"}


def test_gru_kernel_in_keras_order_in_an_nn_gru_is_named(tmp_path):
    torch = pytest.importorskip("torch")
    src = ROOT / "fixtures/models/gru_stacked_dynamic_time.h5"
    model = api.read(src)
    state = {}
    for k, node in enumerate(model.recurrent_nodes()):  # the user forgets PyTorch's r,z,n order
        for part, name in (("input_weights", "weight_ih"), ("recurrent_weights", "weight_hh"),
                           ("input_bias", "bias_ih"), ("recurrent_bias", "bias_hh")):
            state[f"gru{k}.{name}_l0"] = torch.from_numpy(node.stacked("forward", part, "keras"))
    report = diff(src, _save_pt(state, tmp_path / "gru.pt"))
    assert _kinds(report) == {"permuted_gates"}, render(report)
    assert all("update and reset gates swapped" in m.text and "(Keras order z,r,h read as PyTorch order r,z,n)"
               in m.text for m in report.mistakes)


# -- hard_sigmoid ---------------------------------------------------------------------------------------------
def test_keras3_conversion_of_keras2_hard_sigmoid_is_the_same_numbers(tmp_path):
    pytest.importorskip("keras")
    src = ROOT / "fixtures/models/lstm_hard_sigmoid.h5"
    out = api.convert(src, "keras", tmp_path / "k3.keras")  # gates scaled by 1.2 under Keras 3's hard_sigmoid
    report = diff(src, out)
    assert report.ok and any("1.2" in n for n in report.notes), render(report)


def test_keras3_hard_sigmoid_without_the_factor_is_named(tmp_path):
    src = ROOT / "fixtures/models/lstm_hard_sigmoid.h5"
    model = api.read(src)
    for node in model.recurrent_nodes():  # the same weights under Keras 3's hard_sigmoid
        node.options = {**node.options, "recurrent_activation": "hard_sigmoid_keras3"}
    report = diff(src, api.convert(model, "onnx", tmp_path / "k3hs.onnx"))
    assert _kinds(report) == {"scaled_gates"} and "divided by 1.2" in report.mistakes[0].text, render(report)


# -- either side may be the broken one ------------------------------------------------------------------------
def test_mistake_in_a_is_named_on_a(tmp_path):
    src = ROOT / "fixtures/models/tiny_lstm.h5"
    broken = api.convert(mistakes.break_model(api.read(src), "transposed_kernel"), "onnx", tmp_path / "t.onnx")
    report = diff(broken, src)
    assert _kinds(report) == {"transposed_kernel"} and {m.side for m in report.mistakes} == {"A"}, render(report)


# -- the command ------------------------------------------------------------------------------------------------
def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "converters.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_exit_codes_and_json(tmp_path):
    src = ROOT / "fixtures/models/bidir_stacked_concat.h5"
    good = api.convert(src, "onnx", tmp_path / "good.onnx")
    bad = api.convert(mistakes.break_model(api.read(src), "swapped_directions"), "torch-state-dict",
                      tmp_path / "bad.safetensors")
    same = _run(["diff", str(src), str(good)])
    assert same.returncode == 0 and same.stdout.rstrip().endswith("same numbers"), same.stdout + same.stderr
    different = _run(["diff", str(src), str(bad), "--json"])
    assert different.returncode == 1, different.stderr
    report = json.loads(different.stdout)
    assert report["kinds"] == ["swapped_directions"] and not report["ok"]
    assert {(r["layer"], r["direction"], r["gate"], r["part"]) for r in report["rows"]} >= {
        ("bi_1", "backward", "forget", "input_weights"), ("bi_2", "forward", "candidate", "recurrent_bias")}


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00not a model" * 10)
    for args in (["diff", str(junk), str(AUTOENCODER)], ["diff", str(AUTOENCODER), str(tmp_path / "missing.pt")]):
        r = _run(args)
        assert r.returncode == 2 and r.stdout == "", r
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_cli_plot(tmp_path):
    src = ROOT / "fixtures/models/tiny_lstm.h5"
    bad = api.convert(mistakes.break_model(api.read(src), "keras1_order"), "onnx", tmp_path / "k1.onnx")
    png = tmp_path / "diff.png"
    r = _run(["diff", str(src), str(bad), "--plot", str(png)])
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # optional: a clear one-line error, before any work, and no file
        assert r.returncode == 2 and r.stderr.strip() == ("gateport: error: --plot needs matplotlib, which is not "
                                                          "installed: pip install matplotlib"), r.stderr
        assert not png.exists()
        return
    assert r.returncode == 1 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", r.stderr


def test_no_recurrent_layer_is_bad_input(tmp_path):
    with pytest.raises(GateportError, match="LSTM"):
        diff(AUTOENCODER, _no_recurrent(tmp_path))


def _no_recurrent(tmp_path: Path) -> Path:
    from converters.safetensors_io import save

    path = tmp_path / "dense.safetensors"
    save(path, {"fc.weight": np.zeros((2, 2), np.float32)}, {})
    return path


# -- the README table ---------------------------------------------------------------------------------------
def summary(tmp: Path) -> dict[str, dict[str, int]]:
    """Per mistake class: files where diff named it, files where it changes nothing, files that cannot carry it."""
    counts = {k: {"named": 0, "same numbers": 0, "not representable": 0, "missed": 0} for k in WEIGHT_MISTAKES}
    for entry in ENTRIES:
        if not (ROOT / entry["file"]).resolve().is_file():
            continue
        a = _source(entry["id"])
        for kind in WEIGHT_MISTAKES:
            try:
                broken = mistakes.break_model(a, kind)
            except UnsupportedError:
                counts[kind]["not representable"] += 1
                continue
            changes = _outputs_change(a, broken)
            reports = []
            for to, suffix in WRITERS.items():
                path = tmp / f"{entry['id'].replace(':', '_')}-{kind}{suffix}"
                path.unlink(missing_ok=True)
                if _write(broken, path, to) is not None:
                    reports.append(_diff_or_none(a, path))
            reports = [r for r in reports if r is not None]
            ok = all((kind in _kinds(r)) if changes else r.ok for r in reports) and reports
            counts[kind]["missed" if not ok else "named" if changes else "same numbers"] += 1
    return counts


if __name__ == "__main__":  # prints the README's mistake table counts
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for kind, c in summary(Path(tmp)).items():
            print(f"| `{kind}` | {c['named']} | {c['same numbers']} | {c['not representable']} | {c['missed']} |")
