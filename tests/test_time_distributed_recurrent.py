"""TimeDistributed of recurrent layers (LSTM, GRU, SimpleRNN, RNN(cell), Bidirectional) on
``(batch, outer, steps, features)``: the outer time axis folded into the batch (IR fold_time / unfold_time).

Each model is Keras 3 (torch backend), saved and read back, then run by the numpy reference, the generated
PyTorch module, onnxruntime and Keras 3 loading gateport's ``.keras``, at two outer and inner lengths where
the source leaves them dynamic, each within 1e-5 of Keras. The tf-keras fixtures (``fold_time`` in
fixtures/fixtures.json) are checked against Keras' stored outputs by tests/test_readers.py and test_verify.py.
What is not exact is refused in one line.
"""
from __future__ import annotations

import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("onnxruntime")

import test_layers_coverage as cov  # noqa: E402  (its runtimes: torch, onnx, keras)
from helpers import TOL  # noqa: E402

from converters import reference  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3  # noqa: E402

L = keras.layers
B, F = 2, 3


def model_of(*layers, shape=(None, None, F), dtype="float32"):
    inp = keras.Input(shape, dtype=dtype)
    y = inp
    for layer in layers:
        y = layer(y)
    return cov.randomize(keras.Model(inp, y))


def floats(outer, steps, seed=0):
    return np.random.default_rng(seed).normal(size=(B, outer, steps, F)).astype(np.float32)


def nested_ids(outer, steps, seed=0):
    """Token ids (batch, sentences, words): a padded last sentence, padded words, a hole mid-sentence."""
    x = np.random.default_rng(seed).integers(1, 9, size=(B, outer, steps))
    x[0, -1] = 0
    x[1, 0, -2:] = 0
    x[1, -1, 1] = 0
    return x.astype(np.int64)


def ids_model(*layers):
    return model_of(L.Embedding(9, F, mask_zero=True), *layers, shape=(None, None), dtype="int32")


#: (id, model, inputs at two lengths): outer and inner time dynamic
CASES = [
    ("LSTM", lambda: model_of(L.TimeDistributed(L.LSTM(4)), L.LSTM(3)),
     lambda: [[floats(3, 5)], [floats(1, 2, seed=1)]]),
    ("GRU reset_after=False go_backwards sequences", lambda: model_of(
        L.TimeDistributed(L.GRU(4, reset_after=False, go_backwards=True, return_sequences=True)),
        L.TimeDistributed(L.GlobalAveragePooling1D())),
     lambda: [[floats(2, 4)], [floats(4, 1, seed=1)]]),
    ("RNN(SimpleRNNCell relu) and RNN(LSTMCell)", lambda: model_of(
        L.TimeDistributed(L.RNN(L.SimpleRNNCell(4, activation="relu"), return_sequences=True)),
        L.TimeDistributed(L.RNN(L.LSTMCell(3)))),
     lambda: [[floats(3, 4)], [floats(2, 6, seed=1)]]),
    ("Bidirectional GRU sequences, stacked cells", lambda: model_of(
        L.TimeDistributed(L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="ave")),
        L.TimeDistributed(L.RNN(L.StackedRNNCells([L.GRUCell(2), L.SimpleRNNCell(3)]))), L.GRU(2)),
     lambda: [[floats(3, 4)], [floats(1, 3, seed=1)]]),
    ("masked Bidirectional LSTM sequences", lambda: ids_model(
        L.TimeDistributed(L.Bidirectional(L.LSTM(3, return_sequences=True)))),
     lambda: [[nested_ids(3, 5)], [nested_ids(2, 4, seed=1)]]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_runtime_matches_keras_at_two_lengths(case, tmp_path):
    _, build, make_inputs = case
    model = build()
    ir = cov.read_saved(model, tmp_path)
    assert {"fold_time", "unfold_time"} <= {n.op for n in ir.nodes}
    loaded = keras.models.load_model(keras_v3.write(ir, tmp_path / "out.keras"))
    assert any(isinstance(layer, L.TimeDistributed) for layer in loaded.layers)
    for k, inputs in enumerate(make_inputs()):
        want = cov.keras_outputs(model, inputs)
        errors = {
            "reference": cov.error(reference.run(ir, inputs), want),
            "torch": cov.error(cov.torch_outputs(ir, inputs, tmp_path / f"torch{k}"), want),
            "onnx": cov.error(cov.onnx_outputs(ir, inputs, tmp_path / f"m{k}.onnx"), want),
            "keras": cov.error(cov.keras_outputs(loaded, inputs), want),
        }
        assert max(errors.values()) <= TOL, (inputs[0].shape, errors)


def test_masked_input_folds_the_mask_into_the_inner_layer(tmp_path):
    """The inner node reads the input's mask reshaped to (batch * outer, steps), as Keras passes it."""
    ir = cov.read_saved(ids_model(L.TimeDistributed(L.LSTM(3, return_sequences=True))), tmp_path)
    folds = {n.name: n for n in ir.nodes if n.op == "fold_time"}
    (lstm,) = [n for n in ir.nodes if n.op == "lstm"]
    assert lstm.mask in {n.outputs[0] for n in folds.values()}
    mask_of = next(n for n in folds.values() if n.outputs[0] == lstm.mask).inputs[0]
    assert next(n for n in ir.nodes if mask_of in n.outputs).op == "mask_not_equal"


def _edited(tmp_path, model, edit):
    """``model`` saved, its config edited by ``edit(config of the TimeDistributed layer)``."""
    from attacks import edited_keras

    model.save(tmp_path / "m.keras")

    def change(cfg):
        td = next(layer for layer in cfg["config"]["layers"] if layer["class_name"] == "TimeDistributed")
        edit(td["config"])

    return edited_keras(tmp_path / "m.keras", tmp_path / "bad.keras", change)


def _inner(td: dict) -> dict:
    return td["layer"]["config"]


#: (id, model, config edit or None, what the one line says)
REFUSALS = [
    ("return_state", lambda: model_of(L.TimeDistributed(L.LSTM(2))),
     lambda td: _inner(td).update(return_state=True), "return_state=True is not supported"),
    ("stateful", lambda: model_of(L.TimeDistributed(L.GRU(2))),
     lambda td: _inner(td).update(stateful=True), "stateful=True is not supported"),
    ("Bidirectional backward return_state", lambda: model_of(L.TimeDistributed(L.Bidirectional(L.LSTM(2)))),
     lambda td: _inner(td)["layer"]["config"].update(return_state=True), "return_state=True"),
    ("Bidirectional merge_mode None", lambda: model_of(L.TimeDistributed(L.Bidirectional(L.LSTM(2)))),
     lambda td: _inner(td).update(merge_mode=None), "merge_mode=None"),
    ("nested model", lambda: model_of(L.TimeDistributed(keras.Sequential([keras.Input((None, F)), L.LSTM(2)]))),
     None, "nested model ('Sequential')"),
    ("Keras 3 masked without return_sequences", lambda: ids_model(L.TimeDistributed(L.LSTM(2))), None,
     "passes the (batch, outer, steps) mask on unchanged"),
    ("masked Conv1D", lambda: ids_model(L.TimeDistributed(L.Conv1D(2, 2))), None,
     "masks are folded for the recurrent layers only"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_not_exact_is_refused_in_one_line(case, tmp_path, capsys):
    from converters.cli import main

    _, build, edit, why = case
    model = build()
    if edit is None:
        model.save(tmp_path / "bad.keras")
        path = tmp_path / "bad.keras"
    else:
        path = _edited(tmp_path, model, edit)
    out = tmp_path / "m.onnx"
    assert main(["convert", str(path), "--to", "onnx", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gateport: error:") and "(TimeDistributed)" in err[0], err
    assert why in err[0], err
    assert not out.exists()


def test_tf_keras_masked_hierarchy_reduces_the_mask_over_words():
    """tf-keras (fixture td_masked_hierarchical): the document LSTM's mask is any over each sentence's words
    (TimeDistributed.compute_mask), so an all-padding sentence is skipped; the Keras writer refuses it in one
    line (Keras 3 passes the 3-D mask on)."""
    root = cov.Path(__file__).resolve().parent.parent
    entry = next(e for e in json.loads((root / "fixtures" / "fixtures.json").read_text())
                 if e["name"] == "td_masked_hierarchical")
    ir = read(root / entry["file"])
    (doc,) = [n for n in ir.nodes if n.name == "doc_lstm"]
    reduced = next(n for n in ir.nodes if doc.mask in n.outputs)
    assert reduced.op == "mask_not_equal" and reduced.options["reduce"]
    with np.load(root / entry["expected"]) as data:
        x, want = data["in:x"], data["out:0"]
    assert (x == 0).all(axis=-1).any()  # some sentence is all padding
    assert cov.error(reference.run(ir, [x]), [want]) <= TOL
    assert "keras3_refused" in entry["features"]
