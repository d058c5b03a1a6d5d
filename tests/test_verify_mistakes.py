"""gateport verify on deliberately broken artifacts: for every fixture and every corpus file, each mistake
class (:data:`converters.mistakes.KINDS`, missing_layer aside) made in the IR and written by a real writer
is caught by ``verify --artifact`` against the stored outputs, naming the layer, the gates and the
mistake; the correct artifacts pass.

ONNX carries the whole matrix; PyTorch folders (each runs in a child process, ~4 s for its torch import)
one fixture per mistake class. Whether a mistake changes the outputs at all is decided independently
of verify, by the numpy reference on the correct and the broken model (test_diff's ``_outputs_change``):
an LSTM's two biases merged compute the same numbers, and verify must then pass.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest  # noqa: E402

from converters import api, cli, mistakes  # noqa: E402
from converters.errors import GateportError, UnsupportedError  # noqa: E402
from converters.verification import render, verify  # noqa: E402

pytest.importorskip("onnxruntime")

from test_diff import ENTRIES, WEIGHT_MISTAKES, _outputs_change, _paths, _write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=None)
def _source(entry_id: str):
    """The file's full model, or the GateportError that refuses it (a weights-only file: diff's job only)."""
    entry = next(e for e in ENTRIES if e["id"] == entry_id)
    try:
        return api.read(*_paths(entry))
    except GateportError as e:
        return e


def _model(entry: dict):
    model = _source(entry["id"])
    assert not isinstance(model, GateportError), model
    return model


#: The files verify can read as a whole model (a weights-only file without its architecture is diff's job
#: only: test_files_verify_cannot_read_whole_are_refused_in_one_line).
WHOLE = [e for e in ENTRIES if not isinstance(_source(e["id"]), GateportError)]


def _verify(entry: dict, target: str, artifact: Path):
    """verify --artifact's verdict on a file gateport wrote here, run in this process (``isolate=False``: a
    child per run would add about 1,100 process starts; tests/test_attacks_round5_artifacts.py checks
    the isolated path gives the same outputs and traces)."""
    path, config = _paths(entry)
    stored = str(ROOT / entry["expected"])
    return verify(path, (target,), inputs=stored, expected=stored, config=config, artifacts={target: str(artifact)},
                  isolate=False)


def _carrying(model, kind: str) -> list[str]:
    """The recurrent layers that carry ``kind`` (the others cannot: break_model leaves them)."""
    return [n.name for n in model.recurrent_nodes() if not isinstance(mistakes.canonical(n, kind), str)]


def _assert_named(report, target: str, kind: str, layers: list[str]) -> None:
    """Fail, the first departing layer one that carries the mistake, its gates and the mistake named."""
    text = render(report)
    assert report.verdict == "fail", text
    (where,) = [w for w in report.where if w.runtime == target]
    assert where.departures and not where.unavailable and not where.read_back, text
    for d in where.departures:
        assert d.layer in layers and d.tensor != "input", text
        assert d.gates and kind in {m["kind"] for m in d.mistakes}, text
        assert f"[{kind}]" in d.describe() and "; gate" in d.describe()
    found = report.to_dict()["where"][0]["departures"][0]
    assert found["gates"] == where.departures[0].gates and found["mistakes"], found


def _broken_or_reason(model, kind: str):
    try:
        return mistakes.break_model(model, kind)
    except UnsupportedError as e:  # the model cannot carry it: the reason names each layer
        assert "no layer can carry" in str(e) and all(n.name in str(e) for n in model.recurrent_nodes())
        return None


# -- every file x every mistake class, as ONNX -----------------------------------------------------------------
@pytest.mark.parametrize("kind", WEIGHT_MISTAKES)
@pytest.mark.parametrize("entry", WHOLE, ids=lambda e: e["id"])
def test_broken_onnx_artifact_is_caught_and_named(entry, kind, tmp_path):
    model = _model(entry)
    broken = _broken_or_reason(model, kind)
    if broken is None:
        return
    path = _write(broken, tmp_path / "broken.onnx", "onnx")
    assert path is not None, "the ONNX writer writes every model it is given here"
    report = _verify(entry, "onnx", path)
    if _outputs_change(model, broken):
        _assert_named(report, "onnx", kind, _carrying(model, kind))
    else:  # e.g. merged biases of an LSTM: the same sums, the same numbers
        assert report.verdict == "ok", render(report)


@pytest.mark.parametrize("entry", WHOLE, ids=lambda e: e["id"])
def test_correct_onnx_artifact_passes(entry, tmp_path):
    path = _write(_model(entry), tmp_path / "ok.onnx", "onnx")
    report = _verify(entry, "onnx", path)
    assert report.verdict == "ok", render(report)
    assert all(not w.departures for w in report.where)


def test_files_verify_cannot_read_whole_are_refused_in_one_line(capsys):
    refused = [e for e in ENTRIES if (ROOT / e["file"]).resolve().is_file()
               and isinstance(_source(e["id"]), GateportError)]
    for entry in refused:
        path, config = _paths(entry)
        assert cli.main(["verify", path] + (["--config", config] if config else [])) == 2
        err = capsys.readouterr().err
        assert err.startswith("gateport: error: ") and err.count("\n") == 1, err


# -- PyTorch folders: one fixture per mistake class, and a correct one ------------------------------------------
#: nn.* (bidir_gru_mul, autoencoder_bilstm, tiny_lstm), masked nn.* per direction (embedding_mask_bigru),
#: loops (keras1_lstm)
TORCH_CASES = {"permuted_gates": "embedding_mask_bigru", "keras1_order": "tiny_lstm",
               "transposed_kernel": "bidir_gru_mul", "merged_biases": "bidir_gru_mul",
               "swapped_directions": "autoencoder_bilstm", "scaled_gates": "keras1_lstm"}


def _entry(name: str) -> dict:
    return next(e for e in ENTRIES if e["id"] == name)


@pytest.mark.parametrize("kind", WEIGHT_MISTAKES)
def test_broken_torch_folder_is_caught_and_named(kind, tmp_path):
    entry = _entry(TORCH_CASES[kind])
    model = _model(entry)
    broken = mistakes.break_model(model, kind)
    assert _outputs_change(model, broken)
    folder = api.convert(broken, "torch", tmp_path / "broken")
    report = _verify(entry, "torch", folder)
    _assert_named(report, "torch", kind, _carrying(model, kind))


def test_correct_torch_folder_passes(tmp_path):
    entry = _entry("embedding_mask_bigru")  # each masked direction traced at its KerasMaskedRNN
    report = _verify(entry, "torch", api.convert(_model(entry), "torch", tmp_path / "ok"))
    assert report.verdict == "ok", render(report)
    assert report.where[0].departures == [] and report.where[0].unavailable is None


def test_broken_keras_artifact_names_the_layer_whose_weights_differ(tmp_path):
    """A .keras artifact runs without traces: read back by the Keras reader, its first differing layer is named."""
    pytest.importorskip("keras")
    entry = _entry("tiny_lstm")
    path = api.convert(mistakes.break_model(_model(entry), "keras1_order"), "keras", tmp_path / "broken.keras")
    report = _verify(entry, "keras", path)
    assert report.verdict == "fail", render(report)
    (where,) = report.where
    assert where.unavailable == "a Keras artifact is compared at its outputs only"
    (d,) = where.departures
    assert (d.layer, d.tensor, d.direction, d.gates) == ("lstm", "weights", "forward", ["forget", "cell"])
    assert [m["kind"] for m in d.mistakes] == ["keras1_order"]
    assert "where: keras (converted): layer 'lstm', forward direction: its weights differ from the source's; " \
           "gates forget, cell: forget and cell gates swapped" in render(report)


# -- what cannot be named is said ---------------------------------------------------------------------------
def test_a_departure_verify_converted_itself_says_why_no_mistake_is_named():
    """verify's own conversion carries gateport's reading: a departure there is not a weight mistake."""
    from converters.divergence import ReadBackUnavailable, read_back

    model = _model(_entry("tiny_lstm"))
    with pytest.raises(ReadBackUnavailable, match="not a weight mistake"):
        read_back(model, next(model.recurrent_nodes()).name, "onnx", None)


def test_a_departure_with_the_same_weights_names_what_differs():
    """An activation changed, no weight: no gate, the option named."""
    entry = _entry("tiny_lstm")
    model = _model(entry)
    changed = mistakes.break_model(model, "permuted_gates")
    node = next(changed.recurrent_nodes())
    node.weights, node.options = dict(next(model.recurrent_nodes()).weights), {**node.options, "activation": "relu"}
    path, config = _paths(entry)
    stored = str(ROOT / entry["expected"])
    report = verify(path, ("onnx",), inputs=stored, expected=stored, artifacts={"onnx": changed})
    (d,) = report.where[0].departures
    assert d.gates == [] and [m["kind"] for m in d.mistakes] == ["activation"], render(report)
    assert d.describe().endswith("; activation differs: A 'tanh', B 'relu' [activation]")


def test_an_unreadable_artifact_is_said_in_the_where_line(tmp_path):
    entry = _entry("tiny_lstm")
    model = _model(entry)
    folder = api.convert(mistakes.break_model(model, "permuted_gates"), "torch", tmp_path / "broken")
    (folder / "model.safetensors").rename(folder / "weights.safetensors")
    text = (folder / "model.py").read_text().replace('"model.safetensors"', '"weights.safetensors"')
    (folder / "model.py").write_text(text)
    report = _verify(entry, "torch", folder)
    assert report.verdict == "fail"
    assert "where: torch: gate and mistake not named: the artifact's weights cannot be read back: the torch " \
           "folder has no model.safetensors" in render(report), render(report)
    assert report.to_dict()["where"][0]["read_back"] == \
        "the artifact's weights cannot be read back: the torch folder has no model.safetensors"


def test_mapping_through_the_writer_reads_what_the_onnx_reader_reads(tmp_path):
    """The marker mapping (torch folders, ONNX files the reader refuses) agrees with gateport's ONNX reader."""
    from converters.divergence import _counterpart, _onnx_layout, _onnx_tensors, _through_writer

    model = _model(_entry("bidir_stacked_concat"))
    path = api.convert(mistakes.break_model(model, "scaled_gates"), "onnx", tmp_path / "broken.onnx")
    for node in model.recurrent_nodes():  # a Bidirectional LSTM, then a Bidirectional GRU
        mapped = _through_writer(model, node, _onnx_tensors(path), _onnx_layout)
        read = _counterpart(model, node, api.read(path))
        assert mapped.weights.keys() == read.weights.keys()
        assert all((mapped.weights[k] == read.weights[k]).all() for k in read.weights), node.name
        assert any((mapped.weights[k] != node.weights[k]).any() for k in node.weights)  # the mistake is read


def test_cli_text_and_json_name_the_gates_and_mistake(tmp_path, capsys):
    entry = _entry("tiny_lstm")
    path = api.convert(mistakes.break_model(_model(entry), "permuted_gates"), "onnx", tmp_path / "broken.onnx")
    args = ["verify", _paths(entry)[0], "--to", "onnx", "--artifact", f"onnx={path}",
            "--inputs", str(ROOT / entry["expected"]), "--expected", str(ROOT / entry["expected"])]
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    assert "where: onnx: layer 'lstm', forward direction: output first differs at step 0" in out
    assert "; gates forget, cell, output: gates permuted: B's i,f,c,o hold A's i,c,o,f (Keras order i,f,c,o " \
           "read as ONNX order i,o,f,c) [permuted_gates]" in out, out
    assert cli.main(args + ["--json"]) == 1
    (d,) = json.loads(capsys.readouterr().out)["where"][0]["departures"]
    assert d["gates"] == ["forget", "cell", "output"] and d["mistakes"][0]["kind"] == "permuted_gates"


def summary(tmp: Path) -> dict[str, dict[str, int]]:
    """Per mistake class, over the files verify reads whole: caught and named as ONNX, passing because the
    numbers are the same, not representable, missed (the test above failing)."""
    counts = {k: {"caught": 0, "same numbers": 0, "not representable": 0, "missed": 0} for k in WEIGHT_MISTAKES}
    for entry in ENTRIES:
        if not (ROOT / entry["file"]).resolve().is_file() or isinstance(_source(entry["id"]), GateportError):
            continue
        model = _source(entry["id"])
        for n, kind in enumerate(WEIGHT_MISTAKES):
            try:
                broken = mistakes.break_model(model, kind)
            except UnsupportedError:
                counts[kind]["not representable"] += 1
                continue
            folder = tmp / f"{entry['id'].replace(':', '_')}-{n}"
            folder.mkdir()
            try:
                test_broken_onnx_artifact_is_caught_and_named(entry, kind, folder)
            except AssertionError:
                counts[kind]["missed"] += 1
                continue
            counts[kind]["caught" if _outputs_change(model, broken) else "same numbers"] += 1
    return counts


if __name__ == "__main__":  # prints the README's verify table counts
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for kind, c in summary(Path(tmp)).items():
            print(f"| `{kind}` | {c['caught']} | {c['same numbers']} | {c['not representable']} | {c['missed']} |",
                  flush=True)
