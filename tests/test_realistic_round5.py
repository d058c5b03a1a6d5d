"""Round-5 realistic models (fixtures/realistic_round5.py): every target against the outputs Keras stored, for the
fixtures tf-keras 2.21 (.h5, and its own .keras archive: tfk_*) and Keras 3.15 wrote; the rest of the round's sweep
built live under Keras 3 (torch backend) from the same builders.

The sweep (``fixtures/sweep_round4.py make OUT --round 5`` then ``verify OUT``: 20 models, 77 files with the tf-keras
weights-only .h5 and .keras) found one refusal: Concatenate(axis=1) of masked sequences (the masks concatenated over
time) is refused naming the layer and what is read (masked inputs joined over the last axis).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("onnxruntime")

import test_layers_coverage as cov  # noqa: E402  (its runtimes: torch, onnx, keras)
from helpers import TOL  # noqa: E402

from converters import dtypes, reference  # noqa: E402
from converters.errors import UnsupportedError  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fixtures"))
import realistic_round5 as r5  # noqa: E402
from fixture_inputs import floats, make_input  # noqa: E402

FIXTURES = {e["name"]: e for e in json.loads((ROOT / "fixtures" / "fixtures.json").read_text())}
#: the mixed_float16 twin is in the dtype manifest (its outputs carry Keras' float16 rounding)
DTYPE_FIXTURES = {e["name"]: e for e in json.loads((ROOT / "fixtures" / "dtype_fixtures.json").read_text())}
MIXED = ["mixed_precision_bigru", "k3_mixed_precision_bigru", "tfk_mixed_precision_bigru"]
NAMES = [*(t.name for t in r5.ROUND5_TWINS if t.only != "k3"), *(f"k3_{t.name}" for t in r5.ROUND5_TWINS),
         *(f"tfk_{t.name}" for t in r5.ROUND5_TWINS if t.tf_archive)]
#: Sweep models refused when read, and the one line. (masked_concat_branches was, for its masked Concatenate over
#: time: read since realistic round 9's mask_concat, f699802, and checked in every target like the others.)
REFUSED: dict[str, str] = {}


def _fixture(name: str):
    entry = FIXTURES.get(name) or DTYPE_FIXTURES[name]
    ir = read(ROOT / entry["file"])
    with np.load(ROOT / entry["expected"]) as data:
        inputs = [data[f"in:{s.name}"].astype(s.dtype) for s in ir.inputs]
        want = [data[f"out:{k}"].astype(np.float64) for k in range(entry["n_outputs"])]
    return ir, inputs, want


def _bound(ir) -> float:
    """TOL, or verify's bound for a model computing in float16/bfloat16 (converters/dtypes.py ``tolerance``: every
    artifact but the Keras one computes in float32)."""
    bound = dtypes.tolerance(ir)
    return TOL if bound is None else bound[0]


def _every_target(ir, inputs, want, tmp_path) -> dict[str, float]:
    errors = {
        "reference": cov.error(reference.run(ir, inputs), want),
        "torch": cov.error(cov.torch_outputs(ir, inputs, tmp_path / "torch"), want),
        "onnx": cov.error(cov.onnx_outputs(ir, inputs, tmp_path / "m.onnx"), want),
    }
    loaded = keras.models.load_model(keras_v3.write(ir, tmp_path / "out.keras"))
    errors["keras"] = cov.error(cov.keras_outputs(loaded, inputs), want)
    return errors


def test_the_round_is_in_the_manifest():
    assert set(NAMES) <= set(FIXTURES), sorted(set(NAMES) - set(FIXTURES))
    assert set(MIXED) <= set(DTYPE_FIXTURES) and not set(MIXED) & set(FIXTURES)
    assert all(FIXTURES[n]["producer"].startswith("tf_keras") and FIXTURES[n]["file"].endswith(".keras")
               for n in NAMES if n.startswith("tfk_"))


@pytest.mark.parametrize("name", NAMES)
def test_every_target_matches_the_stored_outputs(name, tmp_path):
    """Reference, PyTorch, ONNX and Keras 3 loading gateport's .keras against the outputs the Keras that made the
    file stored."""
    ir, inputs, want = _fixture(name)
    errors = _every_target(ir, inputs, want, tmp_path)
    assert max(errors.values()) <= _bound(ir), errors


@pytest.mark.parametrize("name", MIXED)
def test_mixed_float16_set_globally_is_read_as_float16_compute(name, tmp_path):
    """The global mixed_float16 policy lands in every layer's config but the float32 head's: the IR keeps it on
    each node (the Keras target keeps the policy), and the stored outputs, computed in float16, differ from the
    float32 reference by more than TOL and less than verify's float16 bound."""
    ir, inputs, want = _fixture(name)
    policies = {n.name: n.source.get("dtype_policy", "float32") for n in ir.nodes if not n.op.startswith("mask_")}
    assert policies["out"] == "float32" and policies["bigru"] == policies["lstm"] == "mixed_float16", policies
    assert dtypes.compute_dtype(ir) == "float16"
    assert TOL < cov.error(reference.run(ir, inputs), want) <= _bound(ir)
    errors = _every_target(ir, inputs, want, tmp_path)
    assert max(errors.values()) <= _bound(ir), errors


#: Round-5 sweep models that are not fixtures, built live under Keras 3 (torch backend); keras_ops_pooling is
#: Keras 3 only (keras.ops nodes in a Functional graph).
LIVE = [m for m in r5.SWEEP if m.name not in {t.name for t in r5.ROUND5_TWINS}]


def _live_weights(model, seed: int):
    """Seeded weights as make_fixtures.random_weights sets them; Normalization keeps what adapt() computed."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "Normalization":
            continue
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.uniform(-1.0, 1.0, w.shape).astype(w.dtype) * min(2.0, 4.5 / np.sqrt(w.shape[0]))
                               for w in ws])


@pytest.mark.parametrize("m", LIVE, ids=[m.name for m in LIVE])
def test_live_keras3_sweep_model(m, tmp_path):
    keras.backend.clear_session()
    model = m.build(keras)
    _live_weights(model, seed=5)
    rng = np.random.default_rng(7)
    inputs = [make_input(m.data.get(t.name.split(":")[0], floats), rng, tuple(t.shape), t.dtype) for t in model.inputs]
    want = cov.keras_outputs(model, inputs)
    model.save(tmp_path / "m.keras")
    if m.name in REFUSED:
        with pytest.raises(UnsupportedError, match=REFUSED[m.name]) as caught:
            read(tmp_path / "m.keras")
        assert "\n" not in str(caught.value)
        return
    ir = read(tmp_path / "m.keras")
    inputs = [x.astype(s.dtype) for x, s in zip(inputs, ir.inputs)]
    errors = _every_target(ir, inputs, want, tmp_path)
    assert max(errors.values()) <= _bound(ir), errors


def test_keras3_model_outputs_taken_from_nested_models(tmp_path):
    """Keras 3's output_layers count a nested Functional's calls from 1 and a nested Sequential's from 0
    (keras/src/models/functional.py get_config / functional_from_config); inbound nodes count both from 0. Read
    as inbound nodes, ['funcm', 1, 0] was the second call's output (silently wrong) and ['funcm', 2, 0] 'not in the
    model' (the keras.io inference decoder composed with its encoder was refused)."""
    L = keras.layers
    seq = keras.Sequential([keras.Input((5, 3)), L.LSTM(4)], name="seqm")
    xi = keras.Input((5, 3))
    f = keras.Model(xi, L.GRU(2, name="g")(xi), name="funcm")
    a, b = keras.Input((5, 3), name="a"), keras.Input((5, 3), name="b")
    model = keras.Model([a, b], [seq(a), f(a), f(b), seq(b)])
    _live_weights(model, seed=2)
    assert model.get_config()["output_layers"] == [["seqm", 0, 0], ["funcm", 1, 0], ["funcm", 2, 0], ["seqm", 1, 0]]
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(3)
    inputs = [rng.uniform(-2, 2, (3, 5, 3)).astype(np.float32) for _ in range(2)]
    want = cov.keras_outputs(model, inputs)
    errors = _every_target(read(tmp_path / "m.keras"), inputs, want, tmp_path)
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("name", ["bilstm_states_decoder", "k3_bilstm_states_decoder"])
def test_bidirectional_states_concatenated_read_back_from_onnx(name, tmp_path):
    """gateport's ONNX of a Bidirectional encoder whose Concatenate([fh, bh]) and Concatenate([fc, bc]) start a
    decoder reads back and matches Keras. The cell states' Concat was taken for a Bidirectional merge, which no
    Keras output is ('expected Unsqueeze gateport's writer emits, found Unsqueeze [0] of a merged recurrent
    output'); the h states' Concat is the layer's merged last output (one concatenate node fewer)."""
    from converters.readers import onnx_model
    from converters.writers import onnx_graph

    ir, inputs, want = _fixture(name)
    back = onnx_model.from_proto(onnx_graph.to_onnx(ir))
    assert cov.error(reference.run(back, inputs), want) <= TOL
    ops = [n.op for n in back.nodes]
    assert ops.count("concatenate") == 1 and [n.op for n in ir.nodes].count("concatenate") == 2, ops
