"""`gateport inspect`: the answers users ask for, stable JSON, and no framework imports."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from converters.cli import main

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
AUTOENCODER = MODELS / "autoencoder_bilstm.h5"
CORPUS = ROOT.parent / "shared" / "corpus"


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_autoencoder_encoder_kernel_columns(capsys):
    code, out, _ = run_cli(capsys, "inspect", AUTOENCODER, "--json", "--layer", "encoder_lstm")
    assert code == 0
    (layer,) = json.loads(out)["layers"]
    fwd = layer["directions"][0]
    assert fwd["direction"] == "forward"
    assert fwd["keras_arrays"]["kernel"] == [100, 80]
    columns = {g["gate"]: g["keras"]["input_weights"] for g in fwd["gates"]}
    assert columns == {"input": "kernel[:, 0:20]", "forget": "kernel[:, 20:40]",
                       "cell": "kernel[:, 40:60]", "output": "kernel[:, 60:80]"}
    torch_rows = {g["gate"]: g["torch"]["weight_ih"] for g in layer["directions"][1]["gates"]}
    assert torch_rows["forget"] == "weight_ih_l0_reverse[20:40]"
    onnx_rows = {g["gate"]: g["onnx"]["W"] for g in fwd["gates"]}
    assert onnx_rows == {"input": "W[0, 0:20]", "output": "W[0, 20:40]", "forget": "W[0, 40:60]", "cell": "W[0, 60:80]"}


def test_autoencoder_table_for_people(capsys):
    code, out, _ = run_cli(capsys, "inspect", AUTOENCODER)
    assert code == 0
    assert "encoder_lstm" in out and "kernel (100, 80)" in out
    lines = out.splitlines()
    keras_header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["keras", "kernel", "recurrent_kernel", "bias"])
    assert lines[keras_header + 2].split() == ["forget", "(f/f/f)", "[:,", "20:40]", "[:,", "20:40]", "[20:40]"]
    assert max(len(line) for line in lines) <= 100  # without --layer: no stored paths, every line fits


def test_labels_name_the_real_producer(capsys, tmp_path):
    """A state_dict, ONNX or .gates file is never labelled as written by Keras 1 (another gate order)."""
    labels = {}
    for to, name in (("torch-state-dict", "m.safetensors"), ("onnx", "m.onnx"), ("gates", "m.gates")):
        assert run_cli(capsys, "convert", AUTOENCODER, "--to", to, "-o", tmp_path / name)[0] == 0
        code, out, _ = run_cli(capsys, "inspect", tmp_path / name)
        assert code == 0
        labels[to] = " ".join(out.split("\ninputs:")[0].split())  # the first line, wrapped at 100 columns
    assert all("Keras 1" not in label for label in labels.values())
    assert "PyTorch state_dict" in labels["torch-state-dict"]
    assert "ONNX model (gateport" in labels["onnx"] and "opset" in labels["onnx"]
    assert labels["gates"].startswith(f"{tmp_path / 'm.gates'}: gateport IR file (converted by gateport from")


def test_gru_reset_before_says_nn_gru_cannot_express_it(capsys):
    code, out, _ = run_cli(capsys, "inspect", MODELS / "gru_reset_before_hard_sigmoid.h5")
    assert code == 0
    assert "reset_after=False" in out and "no nn.GRU equivalent" in out and "bias_hh" not in out


def test_extract_one_gate(capsys, tmp_path):
    out = tmp_path / "f.npz"
    code, _, _ = run_cli(capsys, "inspect", AUTOENCODER, "--layer", "encoder_lstm", "--gate", "forget", "-o", out)
    assert code == 0
    arrays = np.load(out)
    assert arrays["forward/input_weights"].shape == (20, 100)
    assert arrays["backward/keras_kernel_columns"].shape == (100, 20)


def test_unknown_layer_is_one_line(capsys):
    code, out, err = run_cli(capsys, "inspect", AUTOENCODER, "--layer", "nope")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no layer 'nope'" in err and str(AUTOENCODER) in err


CORPUS_FILES = sorted(p for p in CORPUS.glob("*") if p.suffix in (".h5", ".hdf5", ".keras"))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_inspect_json_reads_every_corpus_file(capsys, path):
    if "weights" in path.name:  # weights-only: the recurrent layers are read without an architecture
        from converters.readers import read_recurrent_weights
        from converters.api import inspect

        desc = inspect(read_recurrent_weights(path))
    else:
        code, out, err = run_cli(capsys, "inspect", path, "--json")
        assert code == 0, err
        desc = json.loads(out)
    assert any("directions" in layer for layer in desc["layers"])


def test_fixtures_inspect_json(capsys):
    manifest = json.loads((ROOT / "fixtures" / "fixtures.json").read_text())
    for fx in manifest:
        args = ["inspect", ROOT / fx["file"], "--json"] + (["--config", ROOT / fx["config"]] if fx["config"] else [])
        code, out, err = run_cli(capsys, *args)
        assert code == 0, (fx["name"], err)
        assert json.loads(out)["layers"]


@pytest.mark.parametrize("code", [
    "import converters",
    f"import sys; from converters.cli import main; main(['inspect', {str(AUTOENCODER)!r}, '--json'])",
])
def test_no_framework_is_imported(code):
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    modules = {line.split("|")[-1].strip().split(".")[0] for line in res.stderr.splitlines() if "|" in line}
    assert modules.isdisjoint({"torch", "onnx", "onnxruntime", "keras", "tensorflow"})
    assert "h5py" in modules or code == "import converters"


@pytest.mark.parametrize("name,config,layout", [
    ("k3_weights_only_lstm_hard_sigmoid.weights.h5", "k3_weights_only_lstm_hard_sigmoid.json", "keras"),
    ("keras1_lstm_consume_less_gpu.h5", None, "keras1_packed"),
    ("keras1_lstm.h5", None, "keras1"),
    ("cudnn_lstm_gru.h5", None, "cudnn"),
    ("autoencoder_bilstm.h5", None, "keras"),
])
def test_keras_layout_is_told_from_the_file(capsys, name, config, layout):
    """A Keras 3 weights-only file records no version: it must not be shown as a Keras 1 layout."""
    models = ROOT / "fixtures" / "models"
    args = ["inspect", models / name, "--json"] + (["--config", models / config] if config else [])
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    layers = [layer for layer in json.loads(out)["layers"] if "directions" in layer]
    assert {layer["keras_layout"] for layer in layers} == {layout}
