"""A weights-only file of a model with a custom layer (textgenrnn: CuDNNLSTM weights + a custom
attention layer): the full conversion is refused with a clear line, its recurrent layers still convert,
and in PyTorch they reproduce what tf_keras computed for them."""
from pathlib import Path

import h5py
import numpy as np
import pytest

from converters.cli import main

torch = pytest.importorskip("torch")
from safetensors.torch import load_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
TEXTGENRNN = CORPUS / "k215_cudnnlstm_weights_textgenrnn.hdf5"
EXPECTED = ROOT / "fixtures" / "corpus" / "k215_cudnnlstm_weights_textgenrnn.npz"


def test_full_conversion_is_refused_in_one_line(tmp_path, capsys):
    code = main(["convert", str(TEXTGENRNN), "--to", "onnx", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(TEXTGENRNN) in err
    assert not list(tmp_path.iterdir())


def test_recurrent_layers_convert_and_match_tf_keras(tmp_path, capsys):
    out = tmp_path / "rnn.safetensors"
    assert main(["convert", str(TEXTGENRNN), "--to", "torch-state-dict", "-o", str(out), "--json"]) == 0
    state = load_file(str(out))
    with h5py.File(TEXTGENRNN) as f:  # the embedding is not recurrent: the test takes it from the file
        embeddings = torch.from_numpy(f["embedding/embedding/embeddings:0"][()])
    rnn_1, rnn_2 = torch.nn.LSTM(100, 128, batch_first=True), torch.nn.LSTM(128, 128, batch_first=True)
    for name, lstm in (("rnn_1", rnn_1), ("rnn_2", rnn_2)):
        lstm.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(name + ".")})
    data = np.load(EXPECTED)
    ids = torch.from_numpy(data["in:input"].astype(np.int64))
    with torch.no_grad():
        y = rnn_2(rnn_1(torch.nn.functional.embedding(ids, embeddings))[0])[0]
    err = np.abs(y.numpy() - data["out:0"]).max()
    assert err <= 1e-5, err


def test_gates_file_holds_both_cudnn_biases(tmp_path):
    from converters import ir_file

    out = tmp_path / "t.gates"
    assert main(["convert", str(TEXTGENRNN), "--to", "gates", "-o", str(out)]) == 0
    model = ir_file.load(out)
    with h5py.File(TEXTGENRNN) as f:
        bias = f["rnn_1/rnn_1/bias:0"][()]
    node = model.node("rnn_1")
    # cuDNN bias = 4u input biases then 4u recurrent biases, gates i, f, c, o
    assert np.array_equal(node.weights["forward.forget.input_bias"], bias[128:256])
    assert np.array_equal(node.weights["forward.forget.recurrent_bias"], bias[512 + 128:512 + 256])
