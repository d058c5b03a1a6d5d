"""The numpy reference (converters.reference) against real Keras 3 (torch backend).

Each test builds a small Keras model with random non-zero weights, converts it to an IR model by
hand (a tiny helper, independent of converters.readers), and compares outputs: max abs error <= 1e-5.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cases import (B, BIDIRECTIONAL, CONV, F, INITIAL_STATES, KEEP, KERAS_VERSION, MASKED, MERGE_CASES, SINGLE, T, U,
                   L, chain_case, conv_chain_case, ir_model, keras, keras_outputs, masking_case, merge_case, node_of,
                   randomize, single_layer_case, x_data)
from converters import reference
from converters.activations import from_keras
from converters.errors import UnsupportedError
from converters.ir import Node
from helpers import assert_close


def assert_matches(model, ir_model, inputs):
    """The reference's float64 outputs equal Keras' own."""
    assert_close(list(reference.run(ir_model, inputs)), keras_outputs(model, inputs), dtype=np.float64)


# -- single recurrent layers ---------------------------------------------------------------------
@pytest.mark.parametrize("case", SINGLE)
def test_single_recurrent_layer(case):
    model, ir = single_layer_case(SINGLE[case]())
    assert_matches(model, ir, [x_data()])


@pytest.mark.parametrize("kind,merge_mode,seq", BIDIRECTIONAL)
def test_bidirectional(kind, merge_mode, seq):
    cls = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind]
    layer = L.Bidirectional(cls(U, return_sequences=seq, return_state=True), merge_mode=merge_mode)
    model, ir = single_layer_case(layer)
    assert_matches(model, ir, [x_data()])


def test_bidirectional_of_go_backwards_layer():
    """The wrapped layer's go_backwards=True: 'forward' runs backwards, 'backward' forwards.

    Keras 3 needs an explicit backward_layer for that (it always sets go_backwards=True on its own copy)."""
    layer = L.Bidirectional(L.LSTM(U, go_backwards=True, return_sequences=True),
                            backward_layer=L.LSTM(U, return_sequences=True))
    model, ir = single_layer_case(layer)
    assert_matches(model, ir, [x_data()])


@pytest.mark.parametrize("case", INITIAL_STATES)
def test_initial_states_as_inputs(case):
    make, n = INITIAL_STATES[case]
    model, ir = single_layer_case(make(), n_states=n)
    states = [x_data(10 + k, (B, U)) for k in range(n)]
    assert_matches(model, ir, [x_data(), *states])


# -- masks -----------------------------------------------------------------------------------------
def test_embedding_mask_zero_lstm():
    ids = np.random.default_rng(2).integers(1, 9, (B, T)) * KEEP
    inp = keras.Input((T,), dtype="int64", name="ids")
    emb, lstm = L.Embedding(9, F, mask_zero=True), L.LSTM(U, return_sequences=True, return_state=True)
    model = keras.Model(inp, list(lstm(emb(inp))))
    randomize(model)
    ir = ir_model([("ids", (T,), "int64")], [
        Node("mask", "mask_not_equal", ["ids"], ["m"], {"value": 0}),
        node_of(emb, ["ids"], ["e"]),
        node_of(lstm, ["e"], ["y", "h", "c"], mask="m"),
    ], ["y", "h", "c"])
    assert_matches(model, ir, [ids])


@pytest.mark.parametrize("case", MASKED)
def test_masking_then_recurrent(case):
    model, ir = masking_case(MASKED[case]())
    assert_matches(model, ir, [x_data() * KEEP[..., None]])


def test_masked_first_step_with_initial_state_outputs_zeros():
    """A masked first step outputs zeros (not the initial h): Keras' torch/TF rnn() loop."""
    model, ir = masking_case(L.LSTM(U, return_sequences=True, return_state=True), n_states=2)
    x = x_data() * KEEP[..., None]
    states = [x_data(10 + k, (B, U)) for k in range(2)]
    assert_matches(model, ir, [x, *states])
    y = reference.run(ir, [x, *states])[0]
    assert np.all(y[2, :2] == 0.0) and np.all(states[0][2] != 0.0)


# -- stacks and the other ops ------------------------------------------------------------------------
def test_stacked_recurrent_layers():
    model, ir = chain_case([L.LSTM(5, return_sequences=True), L.GRU(U, reset_after=False, return_sequences=True),
                            L.Bidirectional(L.SimpleRNN(3), merge_mode="ave"), L.Dense(2, activation="tanh")])
    assert_matches(model, ir, [x_data()])


def test_conv_batchnorm_lstm_timedistributed_flatten():
    model, ir = conv_chain_case()
    assert_matches(model, ir, [x_data()])


def test_lstm_repeat_gru_reshape_activation():
    model, ir = chain_case([
        L.LSTM(U), L.RepeatVector(T), L.GRU(U, return_sequences=True), L.Reshape((T // 2, 2 * U)),
        L.Activation("hard_sigmoid"), L.BatchNormalization(axis=1),
    ], options={1: {"op": "repeat_vector", "n": T}, 3: {"op": "reshape", "shape": [T // 2, 2 * U]},
                4: {"op": "activation", "activation": from_keras("hard_sigmoid", KERAS_VERSION)}})
    assert_matches(model, ir, [x_data()])


@pytest.mark.parametrize("padding,strides,dilation", CONV)
def test_conv1d(padding, strides, dilation):
    model, ir = chain_case([L.Conv1D(4, 3, strides=strides, padding=padding, dilation_rate=dilation)],
                           input_spec=("x", (7, F), "float32"))
    assert_matches(model, ir, [x_data(shape=(B, 7, F))])


@pytest.mark.parametrize("op", MERGE_CASES)
def test_merges(op):
    model, ir = merge_case(op)
    assert_matches(model, ir, [x_data()])


# -- the API ---------------------------------------------------------------------------------------------
def test_inputs_by_name_and_unknown_op():
    model, ir = single_layer_case(L.SimpleRNN(U))
    x = x_data()
    by_list, by_name = reference.run(ir, [x]), reference.run(ir, {"x": x})
    assert np.array_equal(by_list[0], by_name[0])
    ir.nodes.append(Node("odd", "fourier", ["y0"], ["z"], source={"class_name": "FFT"}))
    with pytest.raises(UnsupportedError, match="fourier") as e:
        reference.run(ir, [x])
    assert "odd (FFT)" in str(e.value)


# -- every fixture: read() + run() against the Keras outputs stored when it was written ------------------
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = json.loads((ROOT / "fixtures" / "fixtures.json").read_text())


def _reader():
    from converters import readers

    if not hasattr(readers, "read"):
        pytest.skip("converters.readers.read does not exist yet")
    return readers.read


@pytest.mark.parametrize("entry", FIXTURES, ids=lambda e: e["name"])
def test_fixture_through_reader(entry):
    """Includes tf_keras-written files (hard_sigmoid = clip(0.2x+0.5)) and Keras 3 files."""
    read = _reader()
    config = {"config": str(ROOT / entry["config"])} if entry.get("config") else {}
    model = read(ROOT / entry["file"], **config)
    stored = np.load(ROOT / entry["expected"])
    got = reference.run(model, {name: stored[f"in:{name}"] for name in entry["inputs"]})
    assert_close(list(got), [stored[f"out:{k}"] for k in range(entry["n_outputs"])], entry["name"])
