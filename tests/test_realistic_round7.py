"""Round-7 realistic models (fixtures/realistic_round7.py), built live under Keras 3 (torch backend): reference,
PyTorch, ONNX and Keras 3 loading gateport's .keras against Keras' own outputs, within TOL (no fixture files: the
fixture folder's byte budget is full). The helpers are round 6's (tests/test_realistic_round6.py).

The round's sweep (43 models; live under Keras 3 torch, and ``fixtures/sweep_round4.py make OUT --round 7`` under
tf-keras 2.21 (.h5, weights-only .h5 + JSON, its .keras) and Keras 3 TensorFlow, then ``verify --to
torch,numpy,onnx,keras``; six are Keras 3 only: dict inputs and outputs, use_causal_mask calls, score_mode="concat",
UnitNormalization, Conv1D channels_first, which TensorFlow refuses on CPU) found two refusals of what gateport
should read, both read now: Conv1D / SeparableConv1D / DepthwiseConv1D / Conv1DTranspose / Max/AveragePooling1D
with data_format="channels_first" (the channels_last layer between two Permute((2, 1))), and a Keras 3 merge of
differently masked inputs (the masks' logical or, a mask_or node; tf-keras' and of them still has no Keras 3
target, refused in one line). Refused in one line: TimeDistributed of a nested Functional / Sequential model (the
HAN word encoder). Worst error over every file and target: 4.8e-6 (Keras 3 TensorFlow
``weather_stacked_gru_dropouts``, PyTorch), most <= 7e-7; none silently wrong.
"""
from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("onnxruntime")

import test_layers_coverage as cov  # noqa: E402  (its runtimes: torch, onnx, keras)
import test_realistic_round6 as r6t  # noqa: E402  (round 6's seeded weights and every-target check)
from helpers import TOL  # noqa: E402

from converters import read as read_any  # noqa: E402  (every format, ONNX included)
from converters.readers import read  # noqa: E402
from converters.writers import onnx_graph  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fixtures"))
import realistic_round7 as r7  # noqa: E402
from fixture_inputs import floats, make_input  # noqa: E402

#: Round-7 models refused when read, and the one line: TimeDistributed of a nested model (the hierarchical attention
#: network's word encoder, a per-frame Sequential).
REFUSED = {
    "han_td_word_encoder": r"td_words \(TimeDistributed\): TimeDistributed of a nested model \('Functional'\) is not "
                           r"supported: expected one layer inside TimeDistributed",
    "td_sequential_frame_encoder": r"td \(TimeDistributed\): TimeDistributed of a nested model \('Sequential'\) is "
                                   r"not supported: expected one layer inside TimeDistributed",
}
LIVE = [m for m in r7.ROUND7 if m.only != "tf" and m.name not in REFUSED]


def _inputs(model, m, rng):
    return [make_input(m.data.get(t.name.split(":")[0], floats), rng, tuple(t.shape), t.dtype) for t in model.inputs]


@pytest.mark.parametrize("m", LIVE, ids=[m.name for m in LIVE])
def test_round7_model_in_every_target(m, tmp_path):
    keras.backend.clear_session()
    model = m.build(keras)
    r6t._live_weights(model, seed=7, scale=m.weight_scale)
    inputs = _inputs(model, m, np.random.default_rng(12))
    want = cov.keras_outputs(model, inputs)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    inputs = [x.astype(s.dtype) for x, s in zip(inputs, ir.inputs)]
    errors = r6t._every_target(ir, inputs, want, tmp_path)
    print(m.name, {k: f"{v:.2e}" for k, v in errors.items()})
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_round7_refusals_in_one_line(name, tmp_path):
    from converters.errors import UnsupportedError

    keras.backend.clear_session()
    (m,) = [m for m in r7.ROUND7 if m.name == name]
    m.build(keras).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedError, match=REFUSED[name]) as caught:
        read(tmp_path / "m.keras")
    assert "\n" not in str(caught.value)


def test_channels_first_1d_layers_read_between_two_permutes(tmp_path):
    """Every 1-D conv and pooling class with data_format="channels_first" (Conv1DTranspose, DepthwiseConv1D,
    MaxPooling1D(same) here; Conv1D, SeparableConv1D and AveragePooling1D in conv1d_channels_first_lstm): the
    channels_last layer between two Permute((2, 1)), in every target; a data_format neither Keras writes is refused
    naming what is expected."""
    from converters.errors import FormatError

    keras.backend.clear_session()
    L = keras.layers
    x = keras.Input((3, 9), name="nct")
    h = L.Conv1DTranspose(4, 3, strides=2, padding="same", data_format="channels_first", name="up")(x)
    h = L.DepthwiseConv1D(3, depth_multiplier=2, data_format="channels_first", activation="relu", name="dw")(h)
    h = L.MaxPooling1D(3, strides=2, padding="same", data_format="channels_first", name="pool")(h)
    model = keras.Model(x, L.Dense(2, name="out")(L.Flatten(name="flat")(h)))
    r6t._live_weights(model, seed=7)
    inputs = [floats(np.random.default_rng(3), (3, 3, 9), "float32")]
    want = cov.keras_outputs(model, inputs)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    assert [n.op for n in ir.nodes][:3] == ["permute", "conv1d_transpose", "permute"]
    errors = r6t._every_target(ir, inputs, want, tmp_path)
    assert max(errors.values()) <= TOL, errors

    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(tmp_path / "m.keras") as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                data = data.replace(b'"channels_first"', b'"channels_middle"', 1)
            dst.writestr(item, data)
    with pytest.raises(FormatError, match=r"up \(Conv1DTranspose\): data_format: expected channels_last or "
                                          r"channels_first, found 'channels_middle'") as caught:
        read(bad)
    assert "\n" not in str(caught.value)


def test_keras3_merge_of_differently_masked_inputs_is_a_mask_or(tmp_path):
    """Keras 3 merges (Add, Subtract, Average, Concatenate) OR the masks of their inputs (keras/src/layers/merging/
    base_merge.py compute_mask; tf-keras ANDs them): word_tag_embeddings_added reads a mask_or (was refused), and
    its inputs tell the two apart (the word ids' middle 0 under a tag id): read as an and, the reference misses
    Keras' outputs."""
    from converters import reference

    keras.backend.clear_session()
    (m,) = [m for m in r7.ROUND7 if m.name == "word_tag_embeddings_added"]
    model = m.build(keras)
    r6t._live_weights(model, seed=7)
    inputs = _inputs(model, m, np.random.default_rng(12))
    want = cov.keras_outputs(model, inputs)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    inputs = [x.astype(s.dtype) for x, s in zip(inputs, ir.inputs)]
    (node,) = [n for n in ir.nodes if n.op == "mask_or"]
    assert cov.error(reference.run(ir, inputs), want) <= TOL
    # gateport's ONNX of it (an Or of the masks) reads back as the same mask_or, matching onnxruntime and Keras
    back = read_any(onnx_graph.write(ir, tmp_path / "m.onnx"))
    assert [n.op for n in back.nodes].count("mask_or") == 1
    assert cov.error(reference.run(back, inputs), want) <= TOL
    assert cov.error(cov.onnx_outputs(back, inputs, tmp_path / "back.onnx"), want) <= TOL
    node.op = "mask_and"
    assert cov.error(reference.run(ir, inputs), want) > 1e-3
