"""Element-wise math functions Keras has no activation name for, called in a functional model: ``keras.ops.abs``
(``absolute``), ``sqrt``, ``log`` in Keras 3 (operation nodes ``Absolute``/``Abs``, ``Sqrt``, ``Log``:
keras/src/ops/numpy.py) and ``tf.abs``/``tf.sqrt``/``tf.math.log`` in tf-keras (TFOpLambda ``math.abs``, ``math.sqrt``,
``math.log``). They are rows of converters/activations.py (``_math``): read as the IR activation of that name and
written to PyTorch (``torch.abs`` ...), ONNX (``Abs``, ``Sqrt``, ``Log``), numpy and back to Keras 3 as the same
operation. A Siamese LSTM's Manhattan similarity ``exp(-sum(|a - b|))`` is the model people write with them.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("onnxruntime")

import test_layers_coverage as cov  # noqa: E402
import test_realistic_round6 as r6t  # noqa: E402
from helpers import TOL  # noqa: E402

from converters.readers import read  # noqa: E402


def _siamese_manhattan():
    """MaLSTM: one LSTM over both sentences, similarity exp(-sum(|h_a - h_b|)) (Mueller & Thyagarajan 2016)."""
    L, ops = keras.layers, keras.ops
    a, b = keras.Input((6, 4), name="left"), keras.Input((6, 4), name="right")
    lstm = L.LSTM(5, name="shared")
    distance = ops.sum(ops.abs(ops.subtract(lstm(a), lstm(b))), axis=1, keepdims=True)
    return keras.Model([a, b], ops.exp(ops.negative(distance)))


def _sqrt_log_features():
    """A GRU's features through sqrt(|x| + 1) and log(|x| + 1) beside each other, then a Dense."""
    L, ops = keras.layers, keras.ops
    x = keras.Input((7, 3), name="x")
    h = L.Dense(4, name="proj")(L.GRU(6, return_sequences=True, name="gru")(x))
    shifted = ops.add(ops.absolute(h), 1.0)
    return keras.Model(x, L.Dense(2, name="out")(L.Concatenate()([ops.sqrt(shifted), ops.log(shifted), h])))


@pytest.mark.parametrize("build", [_siamese_manhattan, _sqrt_log_features], ids=lambda f: f.__name__[1:])
def test_math_ops_in_every_target(build, tmp_path):
    keras.backend.clear_session()
    model = build()
    r6t._live_weights(model, seed=3, scale=0.5)
    rng = np.random.default_rng(5)
    inputs = [rng.uniform(-2, 2, (3, *t.shape[1:])).astype("float32") for t in model.inputs]
    want = cov.keras_outputs(model, inputs)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    assert {n.options.get("activation") for n in ir.nodes if n.op == "activation"} >= (
        {"abs"} if build is _siamese_manhattan else {"abs", "sqrt", "log"})
    errors = r6t._every_target(ir, inputs, want, tmp_path)
    assert max(errors.values()) <= TOL, errors


def test_gateports_onnx_of_math_ops_reads_back(tmp_path):
    """gateport's ONNX of sqrt/log/abs (``Sqrt``, ``Log``, ``Abs`` nodes) reads back as the same activations: a lone
    ``Sqrt`` is the activation, ``Sqrt`` of a sum of squares stays UnitNormalization's norm."""
    from converters import api, reference
    from converters.readers import read_file

    keras.backend.clear_session()
    model = _sqrt_log_features()
    r6t._live_weights(model, seed=3, scale=0.5)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    api.convert(tmp_path / "m.keras", "onnx", tmp_path / "m.onnx")
    back = read_file(tmp_path / "m.onnx")
    assert sorted(n.options["activation"] for n in back.nodes if n.op == "activation") == sorted(
        n.options["activation"] for n in ir.nodes if n.op == "activation")
    x = np.random.default_rng(2).uniform(-2, 2, (2, 7, 3)).astype("float32")
    np.testing.assert_allclose(reference.run(back, [x])[0], reference.run(ir, [x])[0], rtol=0, atol=1e-6)
