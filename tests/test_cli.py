"""The command's messages: output suffixes, what a non-file source is, --debug/-q/-v anywhere, -j,
errors as JSON with --json, --help examples, notes, and the ONNX deployment options."""
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from converters import reference
from converters.api import read
from converters.cli import main
from converters.errors import GateportError

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
TINY = MODELS / "tiny_lstm.h5"
HARD = MODELS / "lstm_hard_sigmoid.h5"
from helpers import TOL  # noqa: E402


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code, err, *expect):
    assert code == 2 and err.count("\n") == 1 and err.startswith("gateport: error: "), err
    for text in expect:
        assert text in err, err


@pytest.mark.parametrize("to,name,expected", [
    ("onnx", "out.h5", ".onnx"), ("keras", "m.onnx", ".keras"), ("gates", "m.safetensors", ".gates"),
    ("keras-weights", "m.h5", ".weights.h5"), ("torch-state-dict", "m.pt", ".safetensors")])
def test_output_suffix_of_another_format_is_refused(capsys, tmp_path, to, name, expected):
    code, _, err = run(capsys, "convert", TINY, "--to", to, "-o", tmp_path / name)
    one_line(code, err, f"ending in {expected}", name)
    assert not any(tmp_path.iterdir())


def test_torch_folder_named_like_a_model_file_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, "convert", TINY, "--to", "torch", "-o", tmp_path / "model.onnx")
    one_line(code, err, "folder name without a model-file suffix", "model.onnx")
    assert not any(tmp_path.iterdir())
    assert run(capsys, "convert", TINY, "--to", "torch", "-o", tmp_path / "model")[0] == 0
    assert (tmp_path / "model" / "model.py").is_file()


def test_sources_that_are_not_files_say_what_they_are(capsys, tmp_path):
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    os.mkfifo(tmp_path / "fifo")
    cases = {saved: "TensorFlow SavedModel", saved / "saved_model.pb": "TensorFlow SavedModel",
             tmp_path / "fifo": "found a FIFO", Path("/dev/null"): "found a device",
             tmp_path: "found a folder", tmp_path / "missing.h5": "no such file"}
    for source, text in cases.items():
        code, _, err = run(capsys, "inspect", source)
        one_line(code, err, str(source), text)
    code, _, err = run(capsys, "inspect", saved)
    assert "tf.keras.models.load_model" in err and ".keras" in err


def test_debug_quiet_verbose_go_after_the_command(capsys, tmp_path):
    with pytest.raises(GateportError):  # --debug after the subcommand: the traceback, not one line
        main(["inspect", str(tmp_path / "missing.h5"), "--debug"])
    code, out, err = run(capsys, "convert", HARD, "--to", "keras", "-o", tmp_path / "q.keras", "-q")
    assert code == 0 and out == "" and err == ""
    code, out, err = run(capsys, "-v", "convert", TINY, "--to", "onnx", "-o", tmp_path / "v.onnx")
    assert code == 0 and f"{tmp_path / 'v.onnx'}  {(tmp_path / 'v.onnx').stat().st_size} bytes" in out


@pytest.mark.parametrize("jobs", ["0", "-3", "x"])
def test_jobs_below_one_refused(capsys, tmp_path, jobs):
    with pytest.raises(SystemExit) as info:
        main(["convert", str(TINY), "--to", "onnx", "-o", str(tmp_path), "-j", jobs])
    assert info.value.code == 2 and "expected a whole number >= 1" in capsys.readouterr().err


def test_json_errors_are_one_json_object_on_stdout(capsys, tmp_path):
    code, out, err = run(capsys, "convert", tmp_path / "missing.h5", "--to", "onnx", "-o", tmp_path / "m.onnx",
                         "--json")
    assert code == 2 and err == ""
    record = json.loads(out)
    assert record == {"error": f"{tmp_path / 'missing.h5'}: no such file", "kind": "ModelNotFoundError",
                      "file": str(tmp_path / "missing.h5"), "layer": None}
    code, out, _ = run(capsys, "inspect", HARD, "--layer", "nope", "--json")
    assert code == 2 and "no layer" in json.loads(out)["error"]
    with pytest.raises(SystemExit) as info:  # a usage error too
        main(["convert", str(TINY), "--to", "onnx", "-o", str(tmp_path / "m.onnx"), "-j", "0", "--json"])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and err == "" and json.loads(out)["kind"] == "UsageError"
    assert "expected a whole number >= 1" in json.loads(out)["error"]


def test_help_ends_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "gateport convert model.h5 --to onnx -o model.onnx" in out


def test_torch_state_dict_refusal_names_the_file(capsys, tmp_path):
    code, _, err = run(capsys, "convert", HARD, "--to", "torch-state-dict", "-o", tmp_path / "m.safetensors")
    one_line(code, err, f"{HARD}: lstm (LSTM): nn.LSTM cannot compute this layer exactly")


def test_hard_sigmoid_scaling_is_a_printed_note_recorded_in_the_file(capsys, tmp_path):
    code, out, err = run(capsys, "convert", HARD, "--to", "keras", "-o", tmp_path / "m.keras")
    notes = [line for line in err.splitlines() if line.startswith("gateport: note: ")]
    assert code == 0 and len(notes) == 1 and "by 1.2" in notes[0], err
    meta = json.loads(zipfile.ZipFile(tmp_path / "m.keras").read("metadata.json"))
    assert notes[0].removeprefix("gateport: note: ") == meta["gateport_notes"][0]


def test_onnx_names_fixed_axes_and_provenance(capsys, tmp_path):
    out = tmp_path / "m.onnx"
    code, _, err = run(capsys, "convert", TINY, "--to", "onnx", "-o", out, "--dynamic", "none",
                       "--input-names", "seq", "--output-names", "y")
    assert code == 0, err
    proto = onnx.load(str(out))
    model = read(TINY)
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert proto.graph.input[0].name == "seq" and proto.graph.output[0].name == "y"
    assert dims == [1, *model.inputs[0].shape]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["gateport.source"] == TINY.name and "gateport.version" in props
    x = np.random.default_rng(0).standard_normal(dims).astype("float32")
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"seq": x})[0]
    assert np.abs(got - reference.run(model, [x])[0]).max() <= TOL


def test_onnx_options_refused_for_other_targets_and_bad_axes(capsys, tmp_path):
    code, _, err = run(capsys, "convert", TINY, "--to", "torch", "-o", tmp_path / "pt", "--input-names", "a")
    one_line(code, err, "apply to --to onnx")
    with pytest.raises(SystemExit):
        main(["convert", str(TINY), "--to", "onnx", "-o", str(tmp_path / "m.onnx"), "--dynamic", "batch,depth"])
    assert "expected axes from batch, time" in capsys.readouterr().err


@pytest.mark.parametrize("exc", [RecursionError(), MemoryError()])
def test_exhaustion_names_the_input(capsys, monkeypatch, exc):
    """An input too deep or too large for this machine: one line naming the file (the exception names none)."""
    import converters.cli as cli

    def exhausted(args):
        raise exc

    monkeypatch.setitem(cli.COMMANDS, "inspect", exhausted)
    assert main(["inspect", "deep\x1b[2J.keras"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deep" in err and "\x1b" not in err
    assert ("nested too deeply" if isinstance(exc, RecursionError) else "out of memory") in err
