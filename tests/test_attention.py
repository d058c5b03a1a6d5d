"""The attention family beyond tests/test_layers_coverage.py's rows: hand-written Luong attention (Dot and a
Softmax with an explicit mask), what each target refuses and why, hostile configs, and the masked-row
semantics (Keras 3 zeroes the weights of a fully masked query only on its explicit-softmax path).
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from helpers import TOL  # noqa: E402
from converters import reference  # noqa: E402
from converters.errors import UnsupportedError  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3, numpy_code  # noqa: E402
from test_layers_coverage import (F, T, U, VOCAB, error, ids, keras_outputs, onnx_outputs,  # noqa: E402
                                  randomize, torch_outputs)

L = keras.layers


def luong():
    """Luong attention written by hand: Dot scores -> Softmax(mask=ids != 0) -> Dot context."""
    tokens = keras.Input((None,), dtype="int64")
    emb = L.Embedding(VOCAB, F, mask_zero=True)(tokens)
    x = L.LSTM(U, return_sequences=True)(emb)
    h = L.LSTM(U)(emb)
    weights = L.Softmax()(L.Dot(axes=(2, 1))([x, h]), mask=keras.ops.not_equal(tokens, 0))
    return keras.Model(tokens, [L.Dot(axes=(1, 1))([weights, x]), weights])


def test_luong_attention_with_an_explicit_softmax_mask(tmp_path):
    """Masked entries get weight 0 (Keras 3 zeroes them after the -1e9 fill) in every runtime; the Keras writer
    writes the explicit mask as the Softmax call's ``mask`` (NotEqual operation nodes computing it, as Keras 3
    records ``keras.ops.not_equal``; was refused in one line)."""
    model = randomize(luong())
    inputs = [ids()]
    want = keras_outputs(model, inputs)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    assert [n.op for n in ir.nodes if n.op in ("dot", "masked_softmax")] == ["dot", "masked_softmax", "dot"]
    numpy_code.write(ir, tmp_path / "np")
    errors = {"reference": error(reference.run(ir, inputs), want),
              "torch": error(torch_outputs(ir, inputs, tmp_path / "torch"), want),
              "onnx": error(onnx_outputs(ir, inputs, tmp_path / "m.onnx"), want),
              "numpy": error(numpy_code.run_isolated(tmp_path / "np", inputs)[0], want)}
    assert max(errors.values()) <= TOL, errors
    assert np.all(want[1][inputs[0] == 0] == 0)  # what the mask does, seen in Keras itself
    loaded = keras.models.load_model(keras_v3.write(ir, tmp_path / "out.keras"))
    assert error(keras_outputs(loaded, inputs), want) <= TOL


@pytest.mark.parametrize("scores", [False, True])
def test_fully_masked_query_rows_follow_keras3_path(scores, tmp_path):
    """Keras 3 MHA: the fused path spreads a fully masked query's weights evenly, the explicit path (scores
    returned) zeroes them; the IR records which, and the outputs at masked queries match either way."""
    tokens = keras.Input((None,), dtype="int64")
    x = L.GRU(U, return_sequences=True)(L.Embedding(VOCAB, F, mask_zero=True)(tokens))
    out = L.MultiHeadAttention(2, 3)(x, x, return_attention_scores=scores)
    model = randomize(keras.Model(tokens, list(out) if scores else out))
    inputs = [ids()]
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    (node,) = [n for n in ir.nodes if n.op == "multi_head_attention"]
    assert node.options["masked_rows"] == ("zero" if scores else "uniform")
    assert error(reference.run(ir, inputs), keras_outputs(model, inputs)) <= TOL


def test_attention_scores_are_the_softmax_weights(tmp_path):
    """Attention's second output: rows sum to 1 over unmasked keys, masked keys get 0."""
    tokens = keras.Input((None,), dtype="int64")
    x = L.LSTM(U, return_sequences=True)(L.Embedding(VOCAB, F, mask_zero=True)(tokens))
    model = randomize(keras.Model(tokens, list(L.Attention()([x, x], return_attention_scores=True))))
    model.save(tmp_path / "m.keras")
    inputs = [ids()]
    _, scores = reference.run(read(tmp_path / "m.keras"), inputs)
    keep = inputs[0] != 0
    assert np.allclose(scores.sum(-1), 1.0) and np.all(scores[~np.broadcast_to(keep[:, None], scores.shape)] < 1e-12)


def _mha_model(tmp_path):
    inp = keras.Input((T, F))
    x = L.LSTM(U, return_sequences=True)(inp)
    a = L.Attention()([x, x])
    y = L.MultiHeadAttention(2, 3)(x, a)
    keras.Model(inp, L.Dot(axes=2)([x, y])).save(tmp_path / "m.keras")
    return tmp_path / "m.keras"


#: (layer class, config key, hostile value, what the one line says)
HOSTILE = [
    ("MultiHeadAttention", "num_heads", 0, "num_heads"), ("MultiHeadAttention", "num_heads", 10 ** 12, "num_heads"),
    ("MultiHeadAttention", "key_dim", "3", "key_dim"), ("MultiHeadAttention", "attention_axes", [2], "attention_axes"),
    ("MultiHeadAttention", "use_gate", True, "use_gate"), ("MultiHeadAttention", "output_shape", [2, 3], "output_shape"),
    ("MultiHeadAttention", "value_dim", 7, "value"), ("Attention", "score_mode", "bilinear", "score_mode"),
    ("Attention", "use_scale", True, "stored arrays"), ("Dot", "axes", [0, 0], "axes"), ("Dot", "axes", [5, 5], "axes"),
    ("Dot", "axes", "2", "axes"), ("Dot", "normalize", "yes", "normalize"),
]


@pytest.mark.parametrize("cls,key,value,said", HOSTILE, ids=[f"{c}.{k}={v!r:.12}" for c, k, v, _ in HOSTILE])
def test_hostile_attention_configs_are_one_line(cls, key, value, said, tmp_path, capsys):
    from attacks import edited_keras, layer
    from converters.cli import main

    def edit(cfg):
        layer(cfg, cls)["config"][key] = value

    bad = edited_keras(_mha_model(tmp_path), tmp_path / "bad.keras", edit)
    code = main(["convert", str(bad), "--to", "onnx", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("gateport: error:"), (code, err)
    assert said in err[0], err[0]
    assert not (tmp_path / "m.onnx").exists()


def test_hostile_call_argument_is_refused(tmp_path, capsys):
    """A call keyword gateport does not know (or a non-boolean flag) is one line, not a silent drop."""
    from attacks import edited_keras, layer
    from converters.cli import main

    def edit(cfg):
        layer(cfg, "Attention")["inbound_nodes"][0]["kwargs"]["use_causal_mask"] = "yes"
        layer(cfg, "MultiHeadAttention")["inbound_nodes"][0]["kwargs"]["sliding"] = 3

    bad = edited_keras(_mha_model(tmp_path), tmp_path / "bad.keras", edit)
    assert main(["convert", str(bad), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "use_causal_mask" in err[0] and "true or false" in err[0], err


def test_attention_onnx_is_plain_ops(tmp_path):
    """No Loop/Scan/If; the attention family becomes MatMul/Softmax/Where and friends (counted)."""
    import onnx
    from collections import Counter

    from converters.writers import onnx_graph

    ir = read(_mha_model(tmp_path))
    onnx_graph.write(ir, tmp_path / "m.onnx")
    counts = Counter(n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node)
    assert not {"Loop", "Scan", "If"} & set(counts)
    assert counts["Softmax"] == 2 and counts["LSTM"] == 1 and counts["MatMul"] == 2 + 7, counts
    assert sum(counts.values()) < 60, counts


def _after_mha(kind: str):
    """A masked LSTM read by a MultiHeadAttention and by one more attention layer."""
    tokens = keras.Input((None,), dtype="int64")
    x = L.LSTM(U, return_sequences=True)(L.Embedding(VOCAB, F, mask_zero=True)(tokens))
    y = L.MultiHeadAttention(2, 3)(x, x)
    if kind == "downstream":  # runs after the MHA: Keras 3 has removed x's mask by then
        return keras.Model(tokens, L.Attention()([x, y]))
    return keras.Model(tokens, [L.Attention()([x, x]), y])  # order up to Keras


def test_keras3_mha_removes_its_inputs_masks_for_later_attention(tmp_path):
    """keras/src/layers/attention/multi_head_attention.py ``call`` sets its inputs' masks to None: an Attention
    downstream of it reads x unmasked (Keras' own output shows it), gateport's reference too."""
    model = randomize(_after_mha("downstream"))
    inputs = [ids()]
    want = keras_outputs(model, inputs)
    assert np.any(want[0][inputs[0] == 0] != 0)  # masked queries are not zeroed: no query mask at run time
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    (att,) = [n for n in ir.nodes if n.op == "attention"]
    assert att.options["roles"] == ["query", "value", "value_mask"]
    assert error(reference.run(ir, inputs), want) <= TOL
    with pytest.raises(UnsupportedError, match="removes that tensor's mask"):
        keras_v3.write(ir, tmp_path / "out.keras")


def test_attention_beside_mha_on_one_masked_tensor_is_refused(tmp_path):
    model = _after_mha("beside")
    model.save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedError, match="depends on the order Keras runs the two"):
        read(tmp_path / "m.keras")
