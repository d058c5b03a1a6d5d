"""Old weight layouts: Keras 1 per-gate arrays and CuDNNLSTM/CuDNNGRU, unit by unit and end to end.

The layouts are rebuilt here from their definitions (SEMANTICS.md §3.2), not from the code under
test: Keras 1 saves LSTM gates in the order i, c, f, o; cuDNN reads each ``(in, u)`` gate block
of a CuDNN kernel, flattened row-major, as the ``(u, in)`` matrix ``W`` with ``W.T`` the Keras
kernel block (tf_keras ``_convert_rnn_weights``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters import reference
from converters.errors import FormatError
from converters.gates import GATES
from converters.readers import read
from converters.readers.keras_legacy import from_cudnn, from_keras1, is_cudnn_bias, keras1_parts

ROOT = Path(__file__).resolve().parent.parent
LEGACY = json.loads((ROOT / "fixtures" / "legacy.json").read_text())
from helpers import TOL  # noqa: E402
RNG = np.random.default_rng(11)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# -- Keras 1 -----------------------------------------------------------------------------------
def keras1_lstm_arrays(n_in=3, u=2, prefix="lstm_1_", suffix=":0"):
    """Per-gate arrays as Keras 1.2.2 saves them: (W, U, b) for i, c, f, o."""
    gates = {g: (rand(n_in, u), rand(u, u), rand(u)) for g in "icfo"}
    names, arrays = [], []
    for g in "icfo":
        for part, array in zip("WUb", gates[g]):
            names.append(f"{prefix}{part}_{g}{suffix}")
            arrays.append(array)
    return gates, names, arrays


def test_keras1_lstm_is_packed_in_keras2_order():
    gates, names, arrays = keras1_lstm_arrays()
    packed = from_keras1("lstm", names, arrays)
    np.testing.assert_array_equal(packed.kernel, np.concatenate([gates[g][0] for g in "ifco"], axis=1))
    np.testing.assert_array_equal(packed.recurrent_kernel, np.concatenate([gates[g][1] for g in "ifco"], axis=1))
    np.testing.assert_array_equal(packed.input_bias, np.concatenate([gates[g][2] for g in "ifco"]))
    assert packed.recurrent_bias is None and packed.layout == "keras1"


def test_keras1_names_decide_over_position():
    gates, names, arrays = keras1_lstm_arrays(prefix="forward_lstm_1_")
    order = [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]  # c, i, o, f: any order works with names
    packed = from_keras1("lstm", [names[k] for k in order], [arrays[k] for k in order])
    np.testing.assert_array_equal(packed.kernel[:, 2:4], gates["f"][0])


def test_keras1_without_usable_names_uses_the_saved_order():
    _, names, arrays = keras1_lstm_arrays()
    assert keras1_parts("lstm", ["a"] * 12) == keras1_parts("lstm", names)
    assert keras1_parts("gru", ["x"] * 9)[:3] == [("W", "update"), ("U", "update"), ("b", "update")]


def test_keras1_gru_theano_names():
    names = [f"gru_1_{p}_{g}" for g in "zrh" for p in "WUb"]
    assert [gate for _, gate in keras1_parts("gru", names)][::3] == list(GATES["gru"])


# -- cuDNN ------------------------------------------------------------------------------------
def to_cudnn_kernel(kernel: np.ndarray, n_gates: int) -> np.ndarray:
    """What CuDNNLSTM stores for Keras kernel ``kernel``: per gate, W = K.T flattened row-major,
    read back as an ``(in, u)`` array."""
    blocks = np.split(kernel, n_gates, axis=1)
    return np.concatenate([np.ravel(k.T).reshape(k.shape) for k in blocks], axis=1)


@pytest.mark.parametrize("kind,n_in,u", [("lstm", 3, 2), ("lstm", 5, 4), ("gru", 2, 3), ("gru", 4, 4)])
def test_cudnn_layout_is_undone(kind, n_in, u):
    g = len(GATES[kind])
    kernel, recurrent = rand(n_in, g * u), rand(u, g * u)
    b_in, b_rec = rand(g * u), rand(g * u)
    stored_kernel = to_cudnn_kernel(kernel, g)
    stored_recurrent = np.concatenate([r.T for r in np.split(recurrent, g, axis=1)], axis=1)
    bias = np.concatenate([b_in, b_rec])
    assert is_cudnn_bias(kind, u, bias)
    packed = from_cudnn(kind, stored_kernel, stored_recurrent, bias)
    np.testing.assert_array_equal(packed.kernel, kernel)
    np.testing.assert_array_equal(packed.recurrent_kernel, recurrent)
    np.testing.assert_array_equal(packed.input_bias, b_in)
    np.testing.assert_array_equal(packed.recurrent_bias, b_rec)


def test_cudnn_bias_is_told_apart_by_length():
    assert not is_cudnn_bias("lstm", 4, np.zeros(16))
    assert is_cudnn_bias("lstm", 4, np.zeros(32))
    assert not is_cudnn_bias("gru", 4, np.zeros((2, 12)))
    assert is_cudnn_bias("gru", 4, np.zeros(24))


# -- the fixtures: real numbers from real loaders -----------------------------------------------
@pytest.mark.parametrize("entry", LEGACY, ids=[e["name"] for e in LEGACY])
def test_legacy_fixture_matches_keras(entry):
    config = ROOT / entry["config"] if entry["config"] else None
    model = read(ROOT / entry["file"], config)
    assert [spec.name for spec in model.inputs] == entry["inputs"]
    data = np.load(ROOT / entry["expected"])
    got = reference.run(model, [data[f"in:{name}"] for name in entry["inputs"]])
    for k in range(entry["n_outputs"]):
        want = data[f"out:{k}"]
        assert got[k].shape == want.shape
        assert float(np.max(np.abs(got[k] - want))) <= TOL


def test_keras1_config_names_are_translated():
    model = read(ROOT / "fixtures" / "models" / "keras1_gru.h5")
    (gru,) = model.recurrent_nodes()
    assert gru.options["reset_after"] is False
    assert gru.options["recurrent_activation"] == "hard_sigmoid_keras2"
    assert gru.source["weight_paths"]["forward"].keys() == {
        f"{p}_{g}" for p in "WUb" for g in "zrh"}


def test_cudnn_fixture_options():
    model = read(ROOT / "fixtures" / "models" / "cudnn_lstm_gru.h5")
    lstm, gru = model.recurrent_nodes()
    assert (lstm.source["class_name"], gru.source["class_name"]) == ("CuDNNLSTM", "CuDNNGRU")
    assert gru.options["reset_after"] is True
    assert lstm.options["recurrent_activation"] == gru.options["recurrent_activation"] == "sigmoid"
    assert lstm.source["layout"] == gru.source["layout"] == "cudnn"
    assert lstm.weights["forward.input.recurrent_bias"].any()  # both cuDNN biases are kept


def test_cudnn_gru_bias_needs_reset_after(tmp_path):
    """A CuDNNGRU bias under a GRU(reset_after=False) config cannot be right (tf_keras refuses too)."""
    import h5py
    import shutil

    path = tmp_path / "m.h5"
    shutil.copy(ROOT / "fixtures" / "models" / "cudnn_lstm_gru.h5", path)
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for layer in cfg["config"]["layers"]:
            if layer["class_name"] == "CuDNNGRU":
                layer["class_name"] = "GRU"
                layer["config"]["reset_after"] = False
        f.attrs["model_config"] = json.dumps(cfg)
    with pytest.raises(FormatError, match="reset_after"):
        read(path)
