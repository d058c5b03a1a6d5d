"""``--to torch-state-dict`` and ``load_into``: Keras weights in the user's own nn.LSTM/GRU/RNN/Linear.

Keras 3 (torch backend) models are built in the test and turned into IR by the hand converter of
``test_reference``; hand-written PyTorch modules receive the weights and must reproduce Keras'
outputs (max abs error <= 1e-5); mismatching modules get a one-line error naming both sides.
"""
from __future__ import annotations

import json

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch")
nn = torch.nn

from converters.errors import UnsupportedError  # noqa: E402
from converters.writers import torch_state  # noqa: E402
from converters.writers.torch_state import MismatchError  # noqa: E402
from cases import F, U, L, chain_case, keras_outputs, single_layer_case, x_data  # noqa: E402

from helpers import assert_close  # noqa: E402
pytestmark = pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")


def torch_run(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x))


# -- state_dict / write ---------------------------------------------------------------------------
class Last(nn.Module):
    """One nn recurrent module, returning its full output sequence."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


STATE_DICT_CASES = {
    "lstm": (lambda: L.LSTM(U, return_sequences=True), lambda: nn.LSTM(F, U, batch_first=True)),
    "lstm_no_bias": (lambda: L.LSTM(U, use_bias=False, return_sequences=True),
                     lambda: nn.LSTM(F, U, batch_first=True, bias=False)),
    "gru": (lambda: L.GRU(U, return_sequences=True), lambda: nn.GRU(F, U, batch_first=True)),
    "bi_gru": (lambda: L.Bidirectional(L.GRU(U, return_sequences=True)),
               lambda: nn.GRU(F, U, batch_first=True, bidirectional=True)),
    "bi_lstm": (lambda: L.Bidirectional(L.LSTM(U, return_sequences=True)),
                lambda: nn.LSTM(F, U, batch_first=True, bidirectional=True)),
    "simple_rnn_relu": (lambda: L.SimpleRNN(U, activation="relu", return_sequences=True),
                        lambda: nn.RNN(F, U, batch_first=True, nonlinearity="relu")),
}


@pytest.mark.parametrize("case", STATE_DICT_CASES)
def test_state_dict_into_nn_module(case):
    make_keras, make_torch = STATE_DICT_CASES[case]
    model, ir = single_layer_case(make_keras())
    sd = torch_state.state_dict(ir)
    assert all(k.startswith(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")) for k in sd)
    module = make_torch()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    x = x_data()
    assert_close(torch_run(Last(module), x), keras_outputs(model, [x])[0])


def test_state_dict_keys_and_file(tmp_path):
    """Several layers: prefixed by layer name; the file loads with safetensors and says what each is."""
    model, ir = chain_case([L.Bidirectional(L.LSTM(5, return_sequences=True), name="encoder"),
                            L.GRU(U, name="decoder")])
    sd = torch_state.state_dict(ir)
    assert set(sd) == {f"encoder.{p}_l0{s}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                       for s in ("", "_reverse")} | \
        {f"decoder.{p}_l0" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    assert sd["encoder.weight_ih_l0_reverse"].shape == (20, F) and sd["decoder.weight_hh_l0"].shape == (3 * U, U)
    path = tmp_path / "rnn.safetensors"
    assert torch_state.write(ir, path) == path
    from safetensors import safe_open
    from safetensors.torch import load_file

    loaded = load_file(path)
    assert set(loaded) == set(sd) and all(np.array_equal(loaded[k].numpy(), sd[k]) for k in sd)
    with safe_open(path, "pt") as f:
        layers = json.loads(f.metadata()["gateport.layers"])
    assert [(m["layer"], m["module"], m["prefix"], m["hidden_size"], m.get("bidirectional", False))
            for m in layers] == [("encoder", "nn.LSTM", "encoder.", 5, True), ("decoder", "nn.GRU", "decoder.", U, False)]
    # the user's modules, built from that metadata, reproduce Keras
    encoder = nn.LSTM(F, 5, batch_first=True, bidirectional=True)
    decoder = nn.GRU(10, U, batch_first=True)
    encoder.load_state_dict({k[len("encoder."):]: v for k, v in loaded.items() if k.startswith("encoder.")})
    decoder.load_state_dict({k[len("decoder."):]: v for k, v in loaded.items() if k.startswith("decoder.")})
    x = x_data()
    with torch.no_grad():
        y = decoder(encoder(torch.from_numpy(x))[0])[1][0]
    assert_close(y, keras_outputs(model, [x])[0])


INEXACT = {
    "gru_reset_before": (lambda: L.GRU(U, reset_after=False), "expected reset_after=True, found False"),
    "lstm_hard_sigmoid": (lambda: L.LSTM(U, recurrent_activation="hard_sigmoid"),
                          "expected recurrent_activation sigmoid, found hard_sigmoid_keras3"),
    "simple_rnn_softsign": (lambda: L.SimpleRNN(U, activation="softsign"),
                            "expected activation tanh or relu, found softsign"),
}


@pytest.mark.parametrize("case", INEXACT)
def test_state_dict_refuses_what_nn_cannot_compute(case, tmp_path):
    make, why = INEXACT[case]
    _, ir = single_layer_case(make())
    with pytest.raises(UnsupportedError, match=why) as e:
        torch_state.write(ir, tmp_path / "x.safetensors")
    assert "--to torch" in str(e.value) and ir.nodes[0].name in str(e.value)
    assert not (tmp_path / "x.safetensors").exists()


# -- load_into: a hand-written module equal to the Keras model -----------------------------------------
class Tagger(nn.Module):
    """Bidirectional(LSTM(5, seq)) -> GRU(4) -> Dense(3, softmax), written by hand."""

    def __init__(self, hidden=5):
        super().__init__()
        self.head = nn.Linear(U, 3)  # registered first on purpose: layers of each kind are matched in order
        self.encoder = nn.LSTM(F, hidden, batch_first=True, bidirectional=True)
        self.decoder = nn.GRU(2 * hidden, U, batch_first=True)

    def forward(self, x):
        seq, _ = self.encoder(x)
        _, h = self.decoder(seq)
        return torch.softmax(self.head(h[0]), dim=-1)


def tagger_case():
    return chain_case([L.Bidirectional(L.LSTM(5, return_sequences=True), name="encoder"),
                       L.GRU(U, name="decoder"), L.Dense(3, activation="softmax", name="head")])


def test_load_into_reproduces_keras():
    model, ir = tagger_case()
    module = Tagger()
    pairs = torch_state.load_into(module, ir)
    assert pairs == [("encoder", "encoder"), ("decoder", "decoder"), ("head", "head")]
    x = x_data()
    assert_close(torch_run(module, x), keras_outputs(model, [x])[0])


def test_load_into_stacked_layers_into_num_layers():
    """Two Keras LSTMs fill one nn.LSTM(num_layers=2); Keras use_bias=False gives zero torch biases."""
    model, ir = chain_case([L.LSTM(U, return_sequences=True), L.LSTM(U, use_bias=False, return_sequences=True),
                            L.TimeDistributed(L.Dense(2, use_bias=False))])

    class Stacked(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(F, U, num_layers=2, batch_first=True)
            self.out = nn.Linear(U, 2, bias=False)

        def forward(self, x):
            return self.out(self.rnn(x)[0])

    module = Stacked()
    for p in module.parameters():
        nn.init.constant_(p, 0.5)
    torch_state.load_into(module, ir)
    assert torch.count_nonzero(module.rnn.bias_ih_l1) == 0 and torch.count_nonzero(module.rnn.bias_hh_l1) == 0
    x = x_data()
    assert_close(torch_run(module, x), keras_outputs(model, [x])[0])


def test_load_into_float64_module():
    model, ir = tagger_case()
    module = Tagger().double()
    torch_state.load_into(module, ir)
    x = x_data()
    assert module.encoder.weight_ih_l0.dtype == torch.float64
    assert_close(torch_run(module, x.astype(np.float64)).float(), keras_outputs(model, [x])[0])


# -- load_into: mismatches, in one line ------------------------------------------------------------------
def one_line_error(module, ir) -> str:
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(MismatchError) as e:
        torch_state.load_into(module, ir)
    message = str(e.value)
    print(message)
    assert "\n" not in message
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters())), "nothing is copied on a mismatch"
    return message


def test_load_into_wrong_hidden_size_names_layers_and_shapes():
    _, ir = tagger_case()
    message = one_line_error(Tagger(hidden=6), ir)
    assert message == ("encoder -> encoder.weight_ih_l0: expected (20, 3), found (24, 3); "
                       "decoder -> decoder.weight_ih_l0: expected (12, 10), found (12, 12)")


def test_load_into_wrong_kind_and_counts():
    _, ir = tagger_case()

    class Wrong(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.GRU(F, 5, batch_first=True, bidirectional=True)
            self.a, self.b = nn.Linear(U, 3), nn.Linear(3, 3)

    message = one_line_error(Wrong(), ir)
    assert "encoder -> encoder: expected nn.LSTM, found nn.GRU" in message
    assert "Keras recurrent layer(s) decoder have no matching" in message
    assert "expected 1, found 2" in message


def test_load_into_refuses_inexact_semantics():
    _, ir = chain_case([L.GRU(U, reset_after=False)])
    message = one_line_error(nn.GRU(F, U, batch_first=True), ir)
    assert "nn.GRU cannot compute this layer: expected reset_after=True, found False" in message

    _, ir = chain_case([L.SimpleRNN(U, activation="relu")])
    message = one_line_error(nn.RNN(F, U, batch_first=True), ir)
    assert "expected nonlinearity='relu', found 'tanh'" in message

    _, ir = chain_case([L.LSTM(U)])
    message = one_line_error(nn.LSTM(F, U, batch_first=True, bidirectional=True), ir)
    assert "expected bidirectional=False, found True" in message


# -- through the public API, from a saved Keras file ------------------------------------------------------
def test_api_load_into_from_keras_file(tmp_path):
    from converters import readers

    if not hasattr(readers, "read"):
        pytest.skip("converters.readers.read does not exist yet")
    import converters

    model, _ = tagger_case()
    path = tmp_path / "tagger.keras"
    model.save(path)
    module = Tagger()
    converters.load_into(module, path)
    x = x_data()
    assert_close(torch_run(module, x), keras_outputs(model, [x])[0])


def test_api_convert_torch_state_dict(tmp_path):
    from converters import readers

    if not hasattr(readers, "read"):
        pytest.skip("converters.readers.read does not exist yet")
    import converters
    from safetensors.torch import load_file

    model, _ = single_layer_case(L.Bidirectional(L.GRU(U, return_sequences=True)))
    model.save(tmp_path / "m.keras")
    out = converters.convert(tmp_path / "m.keras", "torch-state-dict", tmp_path / "m.safetensors")
    module = nn.GRU(F, U, batch_first=True, bidirectional=True)
    module.load_state_dict(load_file(out))
    x = x_data()
    assert_close(torch_run(Last(module), x), keras_outputs(model, [x])[0])
