"""Round-6 realistic models (fixtures/realistic_round6.py), built live under Keras 3 (torch backend): reference,
PyTorch, ONNX and Keras 3 loading gateport's .keras against Keras' own outputs, within TOL (no fixture files: the
fixture folder's byte budget is nearly full).

The round's sweep (42 models as Keras 3 .keras and legacy .h5, and under tf-keras 2.21 as .h5 and its own .keras, 41
of them: TensorFlow name scopes refuse ``names_spaces_unicode``) found two refusals of what gateport should read:
TimeDistributed(Embedding) (the character embedding of the char+word NER tagger) and a tf-keras RNN called with a
nested ``initial_state`` (RNN(StackedRNNCells)); both read now. Worst error over every file and target: 2.6e-6
(``gru_autoencoder_bottleneck``, outputs ~3), most <= 5e-7. tf-keras' ``char_word_ner`` converts to PyTorch and ONNX
(<= 1.2e-7) and the Keras target refuses it in one line: tf-keras' mask of TimeDistributed(Bidirectional(LSTM)) (any
over each word's characters) is one Keras 3 cannot rebuild (README, TimeDistributed of recurrent layers).
"""
from __future__ import annotations

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

from converters import reference  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fixtures"))
import make_fixtures  # noqa: E402
import realistic_round6 as r6  # noqa: E402
from fixture_inputs import floats, make_input  # noqa: E402


def _live_weights(model, seed: int, scale: float = 1.0):
    """Seeded weights as the fixtures get them (make_fixtures.random_weights: positive moving variances, Attention's
    scalar scale)."""
    model.set_weights(make_fixtures.random_weights(model, np.random.default_rng(seed), scale))


def _every_target(ir, inputs, want, tmp_path) -> dict[str, float]:
    errors = {
        "reference": cov.error(reference.run(ir, inputs), want),
        "torch": cov.error(cov.torch_outputs(ir, inputs, tmp_path / "torch"), want),
        "onnx": cov.error(cov.onnx_outputs(ir, inputs, tmp_path / "m.onnx"), want),
    }
    loaded = keras.models.load_model(keras_v3.write(ir, tmp_path / "out.keras"))
    errors["keras"] = cov.error(cov.keras_outputs(loaded, inputs), want)
    return errors


def live_built(m, seed: int, input_seed: int):
    """A round's model ``m`` built under Keras 3 with seeded weights (``seed``, its weight scale), seeded inputs
    (``input_seed``, its data makers) and Keras' own outputs for them."""
    keras.backend.clear_session()
    model = m.build(keras)
    _live_weights(model, seed=seed, scale=m.weight_scale)
    rng = np.random.default_rng(input_seed)
    inputs = [make_input(m.data.get(t.name.split(":")[0], floats), rng, tuple(t.shape), t.dtype) for t in model.inputs]
    return model, inputs, cov.keras_outputs(model, inputs)


def check_live_model(m, tmp_path, seed: int, input_seed: int, legacy_h5: bool = True) -> None:
    """``m`` (:func:`live_built`) saved as ``.keras``: the numpy reference, PyTorch, ONNX and Keras 3 loading
    gateport's .keras, and (``legacy_h5``) the reference of its legacy ``.h5``, each within TOL of Keras."""
    model, inputs, want = live_built(m, seed, input_seed)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    inputs = [x.astype(s.dtype) for x, s in zip(inputs, ir.inputs)]
    errors = _every_target(ir, inputs, want, tmp_path)
    if legacy_h5:
        model.save(tmp_path / "m.h5")
        errors["h5"] = cov.error(reference.run(read(tmp_path / "m.h5"), inputs), want)
    print(m.name, {k: f"{v:.2e}" for k, v in errors.items()})
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("m", r6.ROUND6, ids=[m.name for m in r6.ROUND6])
def test_round6_model_in_every_target(m, tmp_path):
    check_live_model(m, tmp_path, seed=6, input_seed=11, legacy_h5=False)


def test_time_distributed_embedding_of_a_masked_input_refused_in_one_line(tmp_path):
    """TimeDistributed(Embedding) is read as the Embedding on the whole id tensor; an input that already carries a
    mask (which each Keras passes on its own way) is refused naming the layer."""
    from converters.errors import UnsupportedError

    L = keras.layers
    x = keras.Input((4, 3), name="ids")
    h = L.TimeDistributed(L.Embedding(10, 2), name="td_emb")(L.Masking(0.0, name="mask")(x))
    keras.Model(x, L.Dense(1, name="out")(h)).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedError, match=r"td_emb \(TimeDistributed\): TimeDistributed\('Embedding'\) of a "
                                               r"masked input is not supported: expected token ids without a mask"
                       ) as caught:
        read(tmp_path / "m.keras")
    assert "\n" not in str(caught.value)


def test_tf_keras_nested_initial_state_read_in_keras_order():
    """tf-keras stores RNN(StackedRNNCells)(x, initial_state=[[h0, c0], g0]) as the inbound node below (copied from
    the .h5 tf-keras 2.21 wrote for ``stacked_cells_initial_state``: RNN.__call__ joins [x, *initial_state] without
    flattening). It was refused ('expected a [layer, node, tensor] reference'); read flat it is Keras 3's order of
    the same call, and that .h5 matched tf-keras in every target (<= 4.8e-7, checked once: the fixture budget is
    full)."""
    from converters.readers import keras_config

    node = [["x", 0, 0, {}], [["h0", 0, 0, {}], ["c0", 0, 0, {}]], ["g0", 0, 0, {}]]
    call = keras_config._parse_call(node, "stack")
    assert [r.layer for r in call.inputs] == ["x", "h0", "c0", "g0"]
    model = r6.stacked_cells_initial_state(keras)
    (layer,) = [e for e in model.get_config()["layers"] if e["name"] == "stack"]
    k3 = keras_config._parse_call(layer["inbound_nodes"][0], "stack")
    assert [r.layer for r in [*k3.inputs, *k3.initial_state]] == ["x", "h0", "c0", "g0"]
