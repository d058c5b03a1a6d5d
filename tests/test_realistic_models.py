"""Models written the way tutorials and production code write them, and the file variants they are saved in.

The fixtures (fixtures/fixture_specs.py, REALISTIC_TWINS: attention with Softmax over time, the seq2seq inference
decoder reusing trained layers, a Siamese model with shared Embedding and LSTM, the word-level seq2seq training model
with masked encoder states as the decoder's initial state, the toxic-comment classifier pooling masked BiGRU steps
into a nested Sequential head) are read to Keras' stored outputs
here through the numpy reference and the generated PyTorch module (test_readers.py and test_verify.py check them
in every runtime too). Live Keras 3 models cover what no fixture file can: the Keras 3 legacy ``.h5`` (no module
recorded per layer) of a SpatialDropout1D model, and the ``.keras`` layout tf-keras writes for MultiHeadAttention
(sub-layers stored as ``_query_dense`` ...).
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

import test_layers_coverage as cov  # noqa: E402
from helpers import TOL  # noqa: E402

from converters import reference  # noqa: E402
from converters.cli import main  # noqa: E402
from converters.errors import UnsupportedError  # noqa: E402
from converters.readers import read  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = {e["name"]: e for e in json.loads((ROOT / "fixtures" / "fixtures.json").read_text())}
REALISTIC = ["attention_softmax_time", "seq2seq_inference_decoder", "siamese_shared_lstm", "seq2seq_word_training",
             "toxic_masked_pools", "seq2seq_attention_masked"]
L = keras.layers


def stored(name: str):
    entry = ENTRIES[name]
    data = np.load(ROOT / entry["expected"])
    inputs = [data[f"in:{n}"] for n in entry["inputs"]]
    return entry, inputs, [data[f"out:{k}"] for k in range(entry["n_outputs"])]


@pytest.mark.parametrize("name", [*REALISTIC, *(f"k3_{n}" for n in REALISTIC)])
def test_fixture_matches_keras_in_reference_and_torch(name, tmp_path):
    entry, inputs, want = stored(name)
    ir = read(ROOT / entry["file"])
    assert cov.error(reference.run(ir, inputs), want) <= TOL
    assert cov.error(cov.torch_outputs(ir, inputs, tmp_path / "torch"), want) <= TOL


@pytest.mark.parametrize("name", ["attention_softmax_time", "k3_attention_softmax_time"])
def test_softmax_over_time_sums_to_one_over_time(name):
    """Softmax(axis=1) of (batch, time, 1) scores: the weights sum to 1 over the steps (not 1 per step)."""
    _, inputs, _ = stored(name)
    weights = reference.run(read(ROOT / ENTRIES[name]["file"]), inputs)[1]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert float(np.max(weights)) < 0.99


def _toxic_comment_model():
    """Embedding -> SpatialDropout1D -> Bidirectional(GRU, sequences) -> average and max pooling -> Dense."""
    ids = keras.Input((7,), dtype="int32")
    h = L.Bidirectional(L.GRU(4, return_sequences=True))(L.SpatialDropout1D(0.2)(L.Embedding(20, 5)(ids)))
    pooled = L.concatenate([L.GlobalAveragePooling1D()(h), L.GlobalMaxPooling1D()(h)])
    return cov.randomize(keras.Model(ids, L.Dense(3, activation="sigmoid")(pooled)))


def test_keras3_legacy_h5_spatial_dropout_is_a_layer(tmp_path):
    """Keras 3's SpatialDropout1D config has no 'trainable' (and a legacy .h5 records no module): still a layer."""
    model = _toxic_comment_model()
    model.save(tmp_path / "m.h5")
    cfg = json.loads(h5py.File(tmp_path / "m.h5", "r").attrs["model_config"])
    assert "trainable" not in next(c for c in cfg["config"]["layers"] if c["class_name"] == "SpatialDropout1D")["config"]
    ids = np.random.default_rng(0).integers(0, 20, (3, 7)).astype(np.int32)
    ir = read(tmp_path / "m.h5")
    assert cov.error(cov.torch_outputs(ir, [ids], tmp_path / "torch"), cov.keras_outputs(model, [ids])) <= TOL


def _as_tf_keras_layout(path: Path, out: Path) -> Path:
    """The .keras archive with its MultiHeadAttention sub-layers renamed as tf-keras 2.21 stores them."""
    with zipfile.ZipFile(path) as src:
        (out.parent / "store.h5").write_bytes(src.read("model.weights.h5"))
        with h5py.File(out.parent / "store.h5", "a") as f:
            group = f["layers/multi_head_attention"]
            for sub in ("query_dense", "key_dense", "value_dense", "output_dense"):
                group.move(sub, f"_{sub}")
        with zipfile.ZipFile(out, "w") as dst:
            for item in src.infolist():
                data = src.read(item.filename)
                dst.writestr(item, (out.parent / "store.h5").read_bytes() if item.filename == "model.weights.h5"
                             else data)
    return out


def test_tf_keras_keras_archive_multi_head_attention_weights_found(tmp_path):
    x = keras.Input((5, 4))
    h = L.LSTM(6, return_sequences=True)(x)
    y = L.GlobalAveragePooling1D()(L.Add()([h, L.MultiHeadAttention(2, 3)(h, h)]))
    model = cov.randomize(keras.Model(x, y))
    model.save(tmp_path / "m.keras")
    ir = read(_as_tf_keras_layout(tmp_path / "m.keras", tmp_path / "tf.keras"))
    xs = [np.random.default_rng(1).normal(size=(2, 5, 4)).astype(np.float32)]
    assert cov.error(reference.run(ir, xs), cov.keras_outputs(model, xs)) <= TOL


def test_softmax_over_several_axes_refused_in_one_line(tmp_path, capsys):
    x = keras.Input((5, 4))
    keras.Model(x, L.Softmax(axis=(1, 2))(L.LSTM(4, return_sequences=True)(x))).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedError, match="several axes"):
        read(tmp_path / "m.keras")
    assert main(["inspect", str(tmp_path / "m.keras")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Softmax over several axes '[1, 2]' is not supported" in err, err


def test_dict_inputs_and_outputs_in_keras_flattened_order(tmp_path):
    """Model({"zeta": .., "alpha": ..}, {"z_out": .., "a_out": ..}): both Kerases order model.inputs and
    model.outputs by sorted key, whatever order the config's dicts list them in."""
    zeta, alpha = keras.Input((4, 2), name="zeta"), keras.Input((3,), name="alpha")
    h = L.Concatenate()([L.LSTM(3)(zeta), alpha])
    model = cov.randomize(keras.Model({"zeta": zeta, "alpha": alpha},
                                      {"z_out": L.Dense(1, name="z_out")(h), "a_out": L.Dense(2, name="a_out")(h)}))
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    assert [t.name for t in ir.inputs] == ["alpha", "zeta"]
    rng = np.random.default_rng(2)
    xs = {"alpha": rng.normal(size=(2, 3)).astype(np.float32), "zeta": rng.normal(size=(2, 4, 2)).astype(np.float32)}
    out = model(xs)
    want = [keras.ops.convert_to_numpy(out[k]) for k in sorted(out)]
    assert [tuple(w.shape) for w in want] == [(2, *t.shape[1:]) for t in model.outputs] == [(2, 2), (2, 1)]
    assert cov.error(reference.run(ir, [xs["alpha"], xs["zeta"]]), want) <= TOL


def test_preprocessing_layer_in_the_model_refused_in_one_line_and_the_model_after_it_converts(tmp_path, capsys):
    """Tutorials put the preprocessing inside the model (TextVectorization, here Discretization: the lookup layers
    need TensorFlow): refused in one line naming the file, the layer and the remedy; the same network taking the
    preprocessed values (what the remedy says) converts exactly."""
    x = keras.Input((6,))
    bucket = L.Discretization(bin_boundaries=[-1.0, 0.0, 1.0], name="bucketize")
    embed, lstm, dense = L.Embedding(4, 3), L.LSTM(4), L.Dense(2)
    keras.Model(x, dense(lstm(embed(bucket(x))))).save(tmp_path / "m.keras")
    assert main(["convert", str(tmp_path / "m.keras"), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "m.keras" in err and "bucketize (Discretization)" in err and "apply them to the data before the model" in err
    assert not (tmp_path / "m.onnx").exists()
    ids = keras.Input((6,), dtype="int32")
    core = cov.randomize(keras.Model(ids, dense(lstm(embed(ids)))))
    core.save(tmp_path / "core.keras")
    xs = [np.random.default_rng(3).integers(0, 4, (3, 6)).astype(np.int32)]
    assert cov.error(reference.run(read(tmp_path / "core.keras"), xs), cov.keras_outputs(core, xs)) <= TOL


@pytest.mark.parametrize("given", ["my_checkpoint", "my_checkpoint.index", "my_checkpoint.data-00000-of-00001", "."])
def test_tensorflow_checkpoint_named_in_one_line(tmp_path, capsys, given):
    """tf-keras' save_weights('./checkpoints/my_checkpoint') (no .h5) writes a TensorFlow checkpoint: the prefix,
    either of its files or its folder is named as one, with the way out, in one line (was 'no such file', 'found
    bytes ...', 'found a folder'). The files hold the first bytes tf-keras 2.21 wrote for a Sequential LSTM."""
    (tmp_path / "my_checkpoint.index").write_bytes(b"\x00\x00\x06\x08\x01\x1a\x02\x08" + bytes(40))
    (tmp_path / "my_checkpoint.data-00000-of-00001").write_bytes(b"`\x08\x0e\xbf -\xc9>" + bytes(40))
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "my_checkpoint"\n')
    x = keras.Input((5, 3))
    (tmp_path / "model.json").write_text(keras.Model(x, L.LSTM(4)(x)).to_json())
    path = tmp_path / given
    assert main(["convert", str(path), "--config", str(tmp_path / "model.json"), "--to", "onnx",
                 "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "found a TensorFlow checkpoint" in err and "model.load_weights(PREFIX)" in err, err
    assert not (tmp_path / "m.onnx").exists()


def test_missing_index_file_is_no_checkpoint(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "gone.index")]) == 2
    assert "no such file" in capsys.readouterr().err
