"""Whole-model coverage: each row of :data:`CASES` is a Keras 3 model (torch backend) with one layer or
activation around recurrent layers, read from its ``.keras`` file and run by every runtime: the numpy
reference (also after a round trip through a ``.gates`` IR file, whose manifest follows the schema),
the generated PyTorch module, onnxruntime and Keras 3 loading gateport's ``.keras``, each
within 1e-5 of Keras' own outputs. Masks are used wherever the layer consumes or passes one. The ONNX
files hold one fused node per recurrent layer and no loop.
"""
from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from converters import ir_file, reference  # noqa: E402
from converters.errors import UnsupportedError  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3, onnx_graph, torch_code  # noqa: E402

L = keras.layers
from helpers import SCHEMA_PATH, TOL  # noqa: E402
B, T, F, U, VOCAB = 3, 7, 5, 4, 9


def floats(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * 2


def ids(seed=0):
    """Token ids with 0 (masked) at the start, middle and end of rows."""
    x = np.random.default_rng(seed).integers(1, VOCAB, size=(B, T))
    x[0, :2] = 0
    x[1, 3] = 0
    x[2, -3:] = 0
    return x.astype(np.int64)


def padded(seed=0):
    """Floats whose all-zero steps a Masking layer masks."""
    x = floats((B, T, F), seed)
    x[0, -2:] = 0
    x[2, 1] = 0
    return x


def seq(*layers, shape=(None, F)):
    inp = keras.Input(shape)
    y = inp
    for layer in layers:
        y = layer(y)
    return keras.Model(inp, y)


def token_seq(*layers):
    return seq(L.Embedding(VOCAB, F, mask_zero=True), *layers, shape=(None,))


def randomize(model, seed=3):
    """Non-default weights everywhere (gamma, beta, PReLU alpha included)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(size=w.shape).astype(w.dtype) * 0.7 for w in ws])
    return model


def activation_case(name):
    return (f"Dense({name})", lambda: seq(L.LSTM(U, return_sequences=True), L.Dense(3, activation=name)),
            lambda: [floats((B, T, F))])


def activation_layer_case(name):
    return (f"Activation({name})", lambda: seq(L.Dense(6), L.Activation(name), L.GRU(U)),
            lambda: [floats((B, T, F))])


#: Every activation Keras 3 ships as a layer activation, except the refused glu/sparsemax/threshold.
ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "hard_sigmoid", "softmax", "softsign", "softplus", "elu",
               "selu", "exponential", "silu", "swish", "gelu", "leaky_relu", "relu6", "mish", "hard_silu",
               "hard_swish", "log_softmax", "celu", "hard_tanh", "log_sigmoid", "hard_shrink", "soft_shrink",
               "tanh_shrink", "sparse_plus", "sparse_sigmoid", "squareplus")

def flat(model):
    """The model with its nested outputs (a stacked RNN's per-cell states) as one flat list."""
    return keras.Model(model.inputs, keras.tree.flatten(model.outputs))


def custom_backward(forward, backward, merge="concat"):
    return L.Bidirectional(forward, backward_layer=backward, merge_mode=merge)


#: Stacked cells, Bidirectional with its own backward layer, TimeDistributed of per-step layers.
RECURRENT_STRUCTURE = [
    ("StackedRNNCells lstm gru", lambda: seq(L.RNN(L.StackedRNNCells([L.LSTMCell(U), L.GRUCell(3)]),
                                                   return_sequences=True)), lambda: [floats((B, T, F))]),
    ("RNN list of cells return_state", lambda: flat(seq(L.RNN([L.LSTMCell(U), L.SimpleRNNCell(3), L.LSTMCell(2)],
                                                              return_state=True))), lambda: [floats((B, T, F))]),
    ("RNN list of cells masked", lambda: token_seq(L.RNN([L.GRUCell(U), L.LSTMCell(3)], return_sequences=True)),
     lambda: [ids()]),
    ("RNN list of cells masked last states", lambda: flat(token_seq(L.RNN([L.GRUCell(U), L.LSTMCell(3)],
                                                                          return_state=True))), lambda: [ids()]),
    ("RNN list of cells go_backwards", lambda: seq(L.RNN([L.GRUCell(U), L.LSTMCell(3)], go_backwards=True,
                                                         return_sequences=True)), lambda: [floats((B, T, F))]),
    ("Bidirectional backward_layer sequences", lambda: seq(custom_backward(
        L.LSTM(U, return_sequences=True), L.GRU(3, activation="relu", return_sequences=True, go_backwards=True))),
     lambda: [floats((B, T, F))]),
    ("Bidirectional backward_layer masked states", lambda: flat(token_seq(custom_backward(
        L.LSTM(U, return_sequences=True, return_state=True),
        L.LSTM(U, activation="sigmoid", return_sequences=True, return_state=True, go_backwards=True), "mul"))),
     lambda: [ids()]),
    ("Bidirectional backward_layer last sum", lambda: token_seq(custom_backward(
        L.GRU(U), L.GRU(U, reset_after=False, go_backwards=True), "sum")), lambda: [ids()]),
    ("TimeDistributed norms masked", lambda: token_seq(L.LSTM(U, return_sequences=True),
                                                       L.TimeDistributed(L.LayerNormalization(axis=1)),
                                                       L.TimeDistributed(L.ReLU(max_value=0.5)), L.GRU(3)),
     lambda: [ids()]),
    ("TimeDistributed Flatten Reshape Softmax", lambda: seq(L.TimeDistributed(L.Reshape((3, -1))),
                                                            L.TimeDistributed(L.Flatten()), L.LSTM(U, return_sequences=True),
                                                            L.TimeDistributed(L.Softmax()), shape=(T, 2, 3)),
     lambda: [floats((B, T, 2, 3))]),
    ("ConvLSTM2D same sequences states", lambda: flat(seq(L.ConvLSTM2D(3, (3, 2), padding="same", return_sequences=True,
                                                                       return_state=True), shape=(T, 6, 5, 2))),
     lambda: [floats((B, T, 6, 5, 2)) / 4]),
    ("ConvLSTM2D strides go_backwards", lambda: seq(L.ConvLSTM2D(2, 3, strides=(2, 1), go_backwards=True,
                                                                 recurrent_activation="hard_sigmoid"), shape=(T, 7, 5, 2)),
     lambda: [floats((B, T, 7, 5, 2)) / 4]),
    ("ConvLSTM1D dilated same", lambda: seq(L.ConvLSTM1D(4, 3, dilation_rate=2, padding="same", return_sequences=True),
                                            L.TimeDistributed(L.Flatten()), L.LSTM(U), shape=(T, 9, 3)),
     lambda: [floats((B, T, 9, 3)) / 4]),
    ("ConvLSTM1D even kernel strided same no bias", lambda: seq(L.ConvLSTM1D(2, 4, strides=2, padding="same",
                                                                             use_bias=False), shape=(T, 9, 3)),
     lambda: [floats((B, T, 9, 3)) / 4]),
]

def attended(attend, pool=False, extra_inputs=()):
    """Token ids -> Embedding(mask_zero) -> LSTM sequences -> ``attend(x, *extra)`` (masks flow in), optionally
    -> GlobalAveragePooling1D (the query mask leaves masked steps out) -> Dense."""
    ids_in = keras.Input((None,), dtype="int64")
    x = L.LSTM(U, return_sequences=True)(L.Embedding(VOCAB, F, mask_zero=True)(ids_in))
    extra = [keras.Input(shape) for shape in extra_inputs]
    y = attend(x, *extra)
    if pool:
        y = L.Dense(3)(L.GlobalAveragePooling1D()(y))
    return keras.Model([ids_in, *extra] if extra else ids_in, y)


def two_sequences(attend):
    """A masked query (Masking -> LSTM) attending over another, unmasked sequence (GRU) and its key (Dense)."""
    a, b = keras.Input((None, F)), keras.Input((None, F))
    q = L.LSTM(U, return_sequences=True)(L.Masking()(a))
    v = L.GRU(U, return_sequences=True)(b)
    return keras.Model([a, b], attend(q, v, L.Dense(U)(v)))


def dots():
    """Dot of two vectors (batch, 1), and of a sequence with a vector over features (batch, time)."""
    inp = keras.Input((None, F))
    x = L.LSTM(U, return_sequences=True)(inp)
    a, b = L.LSTM(U)(x), L.GRU(U)(x)
    return keras.Model(inp, [L.Dot(axes=1)([a, b]), L.Dot(axes=(2, 1))([x, a]), L.Dot(axes=(1, 2))([b, x])])


def cross_mask():
    """(batch, query time 5, key time T) 0/1 floats."""
    return (np.random.default_rng(2).random((B, 5, T)) > 0.3).astype(np.float32)


#: Attention, AdditiveAttention, MultiHeadAttention, Dot with Keras' masks (attention over a masked LSTM).
ATTENTION_CASES = [
    ("Attention masked pooled", lambda: attended(lambda x: L.Attention()([x, x]), pool=True), lambda: [ids()]),
    ("Attention scale causal masked", lambda: attended(lambda x: L.Attention(use_scale=True)([x, x],
                                                                                            use_causal_mask=True)),
     lambda: [ids()]),
    ("Attention concat scores", lambda: attended(lambda x: list(L.Attention(score_mode="concat", use_scale=True)(
        [x, x], return_attention_scores=True))), lambda: [ids()]),
    ("Attention query value key", lambda: two_sequences(lambda q, v, k: L.Attention(dropout=0.3)([q, v, k])),
     lambda: [padded(), floats((B, 6, F), 1)]),
    ("AdditiveAttention masked pooled", lambda: attended(lambda x: L.AdditiveAttention()([x, x]), pool=True),
     lambda: [ids()]),
    ("AdditiveAttention no scale key", lambda: two_sequences(
        lambda q, v, k: L.AdditiveAttention(use_scale=False)([q, v, k])), lambda: [padded(), floats((B, 6, F), 1)]),
    ("MultiHeadAttention self masked pooled", lambda: attended(lambda x: L.MultiHeadAttention(2, 3)(x, x), pool=True),
     lambda: [ids()]),
    ("MultiHeadAttention causal scores", lambda: attended(lambda x: list(L.MultiHeadAttention(2, 3, value_dim=2)(
        x, x, use_causal_mask=True, return_attention_scores=True))), lambda: [ids()]),
    ("MultiHeadAttention cross attention_mask no bias", lambda: attended(
        lambda x, q, am: L.MultiHeadAttention(3, 2, use_bias=False, output_shape=6)(q, x, key=x, attention_mask=am),
        extra_inputs=[(None, F), (None, None)]), lambda: [ids(), floats((B, 5, F), 1), cross_mask()]),
    ("MultiHeadAttention key dropout", lambda: two_sequences(
        lambda q, v, k: L.MultiHeadAttention(2, 4, dropout=0.2)(q, v, k)), lambda: [padded(), floats((B, 6, F), 1)]),
    ("Dot sequences normalize", lambda: attended(lambda x: L.Dot(axes=2, normalize=True)([x, x])), lambda: [ids()]),
    ("Dot vectors and sequence", lambda: dots(), lambda: [floats((B, T, F))]),
]


#: Normalization (mean/variance in the config: randomize() would give an adapted one negative variances),
#: Rescaling, RMSNormalization, LayerNormalization(rms_scaling), GroupNormalization; masks as Keras 3 treats them
NORM_CASES = [
    ("Normalization masked", lambda: token_seq(L.Normalization(mean=[0.5, -1.0, 2.0, 0.0, 1.0],
                                                               variance=[4.0, 0.25, 1.0, 0.0, 9.0]),
                                               L.LSTM(U, return_sequences=True)), lambda: [ids()]),
    ("Normalization axis None invert", lambda: seq(L.Normalization(axis=None, mean=0.5, variance=2.0, invert=True),
                                                   L.GRU(U)), lambda: [floats((B, T, F))]),
    ("Rescaling per feature masked", lambda: seq(L.Masking(), L.Rescaling([0.5, 1.0, 2.0, -1.0, 0.1], offset=0.25),
                                                 L.GRU(U, return_sequences=True)), lambda: [padded()]),
    ("RMSNormalization", lambda: seq(L.LSTM(U, return_sequences=True), L.RMSNormalization(epsilon=1e-5),
                                     L.Dense(3)), lambda: [floats((B, T, F))]),
    ("RMSNormalization drops the mask", lambda: token_seq(L.RMSNormalization(axis=[-1]),
                                                          L.LSTM(U, return_sequences=True)), lambda: [ids()]),
    ("LayerNormalization rms_scaling masked", lambda: seq(L.Masking(), L.LayerNormalization(rms_scaling=True),
                                                          L.LSTM(U, return_sequences=True)), lambda: [padded()]),
    ("GroupNormalization over time masked", lambda: token_seq(L.Dense(6), L.GroupNormalization(3),
                                                              L.LSTM(U, return_sequences=True)), lambda: [ids()]),
    ("GroupNormalization channels no center", lambda: seq(L.GRU(6), L.GroupNormalization(2, center=False),
                                                          L.Dense(3)), lambda: [floats((B, T, F))]),
    ("Conv1DTranspose same strides", lambda: seq(L.Conv1DTranspose(4, 3, strides=2, padding="same"), L.GRU(U)),
     lambda: [floats((B, T, F))]),
    ("Conv1DTranspose valid output_padding relu", lambda: seq(L.LSTM(U, return_sequences=True),
                                                              L.Conv1DTranspose(3, 2, strides=3, output_padding=1,
                                                                                activation="relu")),
     lambda: [floats((B, T, F))]),
    ("Conv1DTranspose dilated same even kernel no bias", lambda: seq(
        L.Conv1DTranspose(2, 4, dilation_rate=2, padding="same", use_bias=False), L.LSTM(U)),
     lambda: [floats((B, T, F))]),
]


#: (id, model builder, inputs builder)
CASES = [
    *(activation_case(a) for a in ACTIVATIONS),
    *(activation_layer_case(a) for a in ("gelu", "log_softmax", "mish")),
    ("GlobalAveragePooling1D masked", lambda: token_seq(L.LSTM(U, return_sequences=True),
                                                         L.GlobalAveragePooling1D()), lambda: [ids()]),
    ("GlobalAveragePooling1D keepdims", lambda: seq(L.Masking(), L.GRU(U, return_sequences=True),
                                                    L.GlobalAveragePooling1D(keepdims=True)), lambda: [padded()]),
    ("GlobalAveragePooling1D channels_first", lambda: seq(L.LSTM(U, return_sequences=True),
                                                          L.GlobalAveragePooling1D(data_format="channels_first")),
     lambda: [floats((B, T, F))]),
    ("GlobalMaxPooling1D masked", lambda: token_seq(L.GRU(U, return_sequences=True), L.GlobalMaxPooling1D()),
     lambda: [ids()]),
    ("GlobalMaxPooling1D keepdims", lambda: seq(L.SimpleRNN(U, return_sequences=True),
                                                L.GlobalMaxPooling1D(keepdims=True)), lambda: [floats((B, T, F))]),
    ("MaxPooling1D", lambda: seq(L.MaxPooling1D(2), L.LSTM(U)), lambda: [floats((B, T, F))]),
    ("MaxPooling1D same strides", lambda: seq(L.MaxPooling1D(3, strides=2, padding="same"), L.GRU(U)),
     lambda: [floats((B, T, F))]),
    ("AveragePooling1D", lambda: seq(L.LSTM(U, return_sequences=True), L.AveragePooling1D(3, strides=2)),
     lambda: [floats((B, T, F))]),
    # 'same' with symmetric padding: Keras 3's torch backend counts asymmetric padding (see README)
    ("AveragePooling1D same", lambda: seq(L.AveragePooling1D(3, strides=1, padding="same"), L.LSTM(U)),
     lambda: [floats((B, T, F))]),
    ("Permute", lambda: seq(L.Permute((2, 1)), L.LSTM(U), shape=(T, F)), lambda: [floats((B, T, F))]),
    ("LayerNormalization masked", lambda: seq(L.Masking(), L.LayerNormalization(), L.LSTM(U, return_sequences=True)),
     lambda: [padded()]),
    ("LayerNormalization 2 axes", lambda: seq(L.LayerNormalization(axis=[1, 2], epsilon=1e-5), L.GRU(U),
                                              shape=(T, F)), lambda: [floats((B, T, F))]),
    ("LayerNormalization no scale", lambda: seq(L.GRU(U, return_sequences=True),
                                                L.LayerNormalization(center=False, scale=False)),
     lambda: [floats((B, T, F))]),
    ("UnitNormalization masked", lambda: token_seq(L.UnitNormalization(), L.LSTM(U, return_sequences=True)),
     lambda: [ids()]),
    ("Cropping1D", lambda: seq(L.Cropping1D((1, 2)), L.LSTM(U)), lambda: [floats((B, T, F))]),
    ("ZeroPadding1D", lambda: seq(L.ZeroPadding1D((2, 1)), L.GRU(U)), lambda: [floats((B, T, F))]),
    ("UpSampling1D", lambda: seq(L.LSTM(U, return_sequences=True), L.UpSampling1D(3)),
     lambda: [floats((B, T, F))]),
    ("TimeDistributed 1-D layers, outer time dynamic", lambda: seq(
        *map(L.TimeDistributed, [L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
                                 L.SeparableConv1D(3, 2, padding="same"), L.DepthwiseConv1D(2, strides=2),
                                 L.ZeroPadding1D(1), L.Cropping1D((1, 0)), L.UpSampling1D(2),
                                 L.AveragePooling1D(2, padding="same"), L.GlobalMaxPooling1D()]),
        L.LSTM(U), shape=(None, 8, 3)), lambda: [floats((B, T, 8, 3))]),
    ("TimeDistributed pooling, GlobalAveragePooling1D keepdims", lambda: seq(
        L.TimeDistributed(L.MaxPooling1D(2, strides=1)), L.TimeDistributed(L.GlobalAveragePooling1D(keepdims=True)),
        L.TimeDistributed(L.Flatten()), L.GRU(U), shape=(T, 5, 2)), lambda: [floats((B, T, 5, 2))]),
    ("ReLU options", lambda: seq(L.LSTM(U, return_sequences=True), L.Dense(6),
                                 L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.3)), lambda: [floats((B, T, F))]),
    ("ReLU threshold", lambda: seq(L.Dense(6), L.ReLU(negative_slope=0.05, threshold=0.5), L.GRU(U)),
     lambda: [floats((B, T, F))]),
    ("ReLU max_value 6", lambda: seq(L.Dense(6), L.ReLU(max_value=6.0), L.GRU(U)), lambda: [floats((B, T, F))]),
    ("LeakyReLU masked", lambda: seq(L.Masking(), L.LeakyReLU(0.1), L.GRU(U, return_sequences=True)),
     lambda: [padded()]),
    ("PReLU shared time", lambda: seq(L.Dense(6), L.PReLU(shared_axes=[1]), L.LSTM(U)),
     lambda: [floats((B, T, F))]),
    ("PReLU full", lambda: seq(L.LSTM(U, return_sequences=True), L.PReLU(), shape=(T, F)),
     lambda: [floats((B, T, F))]),
    ("ELU alpha", lambda: seq(L.Dense(6), L.ELU(alpha=0.5), L.SimpleRNN(U)), lambda: [floats((B, T, F))]),
    ("GRU leaky_relu", lambda: seq(L.GRU(U, activation="leaky_relu", return_sequences=True)),
     lambda: [floats((B, T, F))]),
    *RECURRENT_STRUCTURE,
    *NORM_CASES,
    *ATTENTION_CASES,
    ("Conv1D groups causal dilated", lambda: seq(L.Dense(6), L.Conv1D(4, 3, groups=2, padding="causal", dilation_rate=2,
                                                                      activation="relu"), L.LSTM(U)),
     lambda: [floats((B, T, F))]),
    ("Conv1D same strides", lambda: seq(L.Conv1D(6, 3, strides=2, padding="same"), L.GRU(U)), lambda: [floats((B, T, F))]),
    ("DepthwiseConv1D multiplier", lambda: seq(L.DepthwiseConv1D(3, depth_multiplier=2, padding="same",
                                                                 activation="tanh"), L.LSTM(U)),
     lambda: [floats((B, T, F))]),
    ("DepthwiseConv1D strides no bias", lambda: seq(L.DepthwiseConv1D(2, strides=2, use_bias=False), L.GRU(U)),
     lambda: [floats((B, T, F))]),
    ("SeparableConv1D", lambda: seq(L.SeparableConv1D(6, 3, depth_multiplier=2, padding="same", activation="relu"),
                                    L.LSTM(U)), lambda: [floats((B, T, F))]),
    ("SeparableConv1D dilated no bias", lambda: seq(L.LSTM(U, return_sequences=True),
                                                    L.SeparableConv1D(5, 2, dilation_rate=2, use_bias=False)),
     lambda: [floats((B, T, F))]),
]


def keras_outputs(model, inputs):
    out = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    if isinstance(out, dict):  # Keras 3 dict outputs: keras.tree flattens them in sorted key order
        out = [out[k] for k in sorted(out)]
    out = out if isinstance(out, (list, tuple)) else [out]
    return [keras.ops.convert_to_numpy(o).astype(np.float64) for o in out]


def error(got, want) -> float:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w), (np.shape(g), np.shape(w))
    return max(float(np.max(np.abs(np.asarray(g, np.float64) - w))) for g, w in zip(got, want))


def torch_outputs(ir, inputs, folder: Path):
    torch_code.write(ir, folder)
    spec = importlib.util.spec_from_file_location(f"gen_{abs(hash(str(folder)))}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = [torch.from_numpy(np.asarray(x)) for x in inputs]
    with torch.no_grad():
        out = module.load_model()(*args)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def onnx_outputs(ir, inputs, path: Path):
    onnx_graph.write(ir, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    counts = Counter(n.op_type for n in proto.graph.node)
    assert not {"Loop", "Scan", "If"} & set(counts), counts
    assert sum(counts[k] for k in ("LSTM", "GRU", "RNN")) == sum(1 for _ in ir.recurrent_nodes()), counts
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return sess.run(None, {s.name: x for s, x in zip(ir.inputs, inputs)})


def schema_valid(ir) -> None:
    """The manifest of ``ir`` follows schemas/ir-manifest.schema.json (where jsonschema is installed)."""
    try:
        import jsonschema
    except ImportError:
        return
    import json

    jsonschema.validate(ir_file.manifest(ir), json.loads(SCHEMA_PATH.read_text()))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_in_every_runtime(case, tmp_path):
    _, build, make_inputs = case
    model = randomize(build())
    inputs = make_inputs()
    want = keras_outputs(model, inputs)
    model.save(tmp_path / "source.keras")
    ir = read(tmp_path / "source.keras")
    schema_valid(ir)
    errors = {
        "reference": error(reference.run(ir, inputs), want),
        "gates file": error(reference.run(ir_file.load(ir_file.save(ir, tmp_path / "m.gates")), inputs), want),
        "torch": error(torch_outputs(ir, inputs, tmp_path / "torch"), want),
        "onnx": error(onnx_outputs(ir, inputs, tmp_path / "m.onnx"), want),
        "keras": error(keras_outputs(keras.models.load_model(keras_v3.write(ir, tmp_path / "out.keras")),
                                     inputs), want),
    }
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("act", ["gelu", "mish", "relu6", "log_sigmoid"])
def test_recurrent_activation_onnx_cannot_express_refused_with_a_way_out(act, tmp_path):
    model = randomize(seq(L.LSTM(U, activation=act, return_sequences=True)))
    inputs = [floats((B, T, F))]
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    want = keras_outputs(model, inputs)
    assert error(torch_outputs(ir, inputs, tmp_path / "torch"), want) <= TOL
    assert error(reference.run(ir, inputs), want) <= TOL
    with pytest.raises(UnsupportedError, match="--to torch"):
        onnx_graph.to_onnx(ir)


def test_gelu_tanh_matches_keras_approximate_gelu(tmp_path):
    """gelu(approximate=True) has no Keras activation string; the IR name still matches Keras."""
    from converters.activations import apply

    x = np.linspace(-6, 6, 101)
    want = keras.ops.convert_to_numpy(keras.activations.gelu(x.astype(np.float32), approximate=True))
    assert np.max(np.abs(apply("gelu_tanh", x) - want)) <= TOL


@pytest.mark.parametrize("name,why", [("glu", "halves the last axis"), ("sparsemax", "projection")])
def test_refused_activation_says_why(name, why, tmp_path):
    model = seq(L.LSTM(U, return_sequences=True), L.Dense(4, activation=name))
    model.save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedError, match=why):
        read(tmp_path / "m.keras")


def test_every_unsupported_layer_is_named_in_one_line(tmp_path, capsys):
    """A model with several refused layers: one 'gateport: error:' line naming each, '; ' between."""
    from converters.cli import main

    inp, image = keras.Input((T, F)), keras.Input((4, 4, 4, 1))
    x = L.LSTM(U, return_sequences=True, name="enc")(inp)
    gqa = L.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1, name="gqa")(x, x)
    spectral = L.SpectralNormalization(L.Dense(3), name="spectral")(x)
    pool3d = L.MaxPooling3D(2, name="pool3d")(image)
    model = keras.Model([inp, image], [gqa, spectral, pool3d])
    model.save(tmp_path / "m.keras")
    assert main(["convert", str(tmp_path / "m.keras"), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gateport: error:"), err
    line = err[0]
    assert "3 layers cannot be converted" in line
    for name, why in (("pool3d", "1-D sequence"), ("gqa", "grouped-query"), ("spectral", "normalization")):
        assert f"'{name}'" in line and why in line, (name, line)
    assert line.count("; ") >= 2
    assert not (tmp_path / "m.onnx").exists()


def test_readme_lists_every_refused_layer_and_supported_layer():
    """The README's support tables name every layer class gateport reads and every one it refuses on purpose."""
    from converters.readers.keras_layers import HANDLERS, REFUSED

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    refused = readme.split("### Keras layers still refused", 1)[1].strip().split("\n\n", 1)[0]
    for cls in REFUSED:
        assert cls in refused, cls
    aliases = {"GlobalMaxPool1D", "GlobalAvgPool1D", "MaxPool1D", "AvgPool1D", "Softmax", "Identity",
               "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout", "Merge",
               "MaxPool2D", "AvgPool2D", "GlobalMaxPool2D", "GlobalAvgPool2D", "Convolution2D",
               "Convolution3D"}
    for cls in set(HANDLERS) - aliases:
        assert cls in readme, cls


#: (layer class, config key, hostile value) for configs edited after saving
HOSTILE = [
    ("MaxPooling1D", "pool_size", [0]), ("MaxPooling1D", "pool_size", ["2"]), ("MaxPooling1D", "strides", [2.5]),
    ("MaxPooling1D", "pool_size", [10 ** 12]), ("MaxPooling1D", "padding", "reflect"),
    ("Cropping1D", "cropping", [-1, 2]), ("Cropping1D", "cropping", [5, 5]), ("Cropping1D", "cropping", "x"),
    ("ZeroPadding1D", "padding", [10 ** 10, 0]), ("UpSampling1D", "size", 10 ** 10),
    ("UpSampling1D", "size", True), ("Permute", "dims", [1, 1]), ("Permute", "dims", [2, 3]),
    ("LayerNormalization", "axis", 0), ("LayerNormalization", "axis", [1]), ("LayerNormalization", "epsilon", "1"),
    ("LayerNormalization", "rms_scaling", True), ("ReLU", "threshold", float("nan")),
    ("ReLU", "max_value", -1.0), ("ReLU", "negative_slope", "0.1"), ("PReLU", "shared_axes", [7]),
    ("GlobalAveragePooling1D", "data_format", "channels_middle"),
]


@pytest.mark.parametrize("cls,key,value", HOSTILE, ids=[f"{c}.{k}={v!r:.20}" for c, k, v in HOSTILE])
def test_hostile_layer_options_are_refused_in_one_line(cls, key, value, tmp_path, capsys):
    """A config edited by a stranger: each bad option of the new layers is one 'gateport: error:' line."""
    import json

    from attacks import edited_keras, layer
    from converters.cli import main

    model = seq(L.Dense(6), L.PReLU(), L.ReLU(), L.LayerNormalization(), L.Permute((2, 1)), L.Permute((2, 1)),
                L.MaxPooling1D(2), L.ZeroPadding1D(1), L.Cropping1D(1), L.UpSampling1D(2),
                L.LSTM(U, return_sequences=True), L.GlobalAveragePooling1D(), shape=(8, F))
    model.save(tmp_path / "m.keras")

    def edit(cfg):
        layer(cfg, cls)["config"][key] = value

    bad = edited_keras(tmp_path / "m.keras", tmp_path / "bad.keras", edit)
    code = main(["convert", str(bad), "--to", "onnx", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("gateport: error:"), (code, err)
    assert json.dumps(value)[:12].strip('"[]') in err[0] or key in err[0] or cls in err[0], err[0]
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("policy", ["float64", "mixed_float16"])
def test_dtype_policy_other_than_float32_is_stated(policy, tmp_path):
    """A float64 or mixed_float16 model converts to float32 artifacts and says so in a note."""
    import warnings

    from converters import api
    from converters.notes import GateportNote

    model = randomize(seq(L.LSTM(U, return_sequences=True, dtype=policy), L.GlobalAveragePooling1D(dtype=policy)))
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    assert {n.source.get("dtype_policy") for n in ir.nodes} == {policy}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.convert(tmp_path / "m.keras", "onnx", tmp_path / "m.onnx")
    said = [str(w.message) for w in caught if issubclass(w.category, GateportNote)]
    assert any(f"'{policy}'" in s and "float32" in s and "2 layers" in s for s in said), said
    inputs = [floats((B, T, F))]
    got = onnx_outputs(ir, inputs, tmp_path / "m2.onnx")
    assert error(got, reference.run(ir, inputs)) <= TOL  # the artifact is the float32 model
    if policy == "float64":  # mixed_float16: Keras itself rounds to float16, the note says so
        assert error(got, keras_outputs(model, inputs)) <= TOL

#: (id, model builder, target, what the one line says) for recurrent structure gateport refuses
STRUCTURE_REFUSALS = [
    ("stacked go_backwards masked", lambda: token_seq(L.RNN([L.GRUCell(U), L.LSTMCell(3)], go_backwards=True)),
     "onnx", "reversed mask"),
    ("TimeDistributed nested model", lambda: seq(L.TimeDistributed(keras.Sequential([keras.Input((6, 3)),
                                                                                     L.LSTM(2)])), shape=(T, 6, 3)),
     "onnx", "nested model"),
    ("TimeDistributed Conv1D masked", lambda: seq(L.Masking(), L.TimeDistributed(L.Conv1D(2, 2)), shape=(T, 6, 3)),
     "onnx", "of a masked input"),
    ("ConvLSTM2D channels_first", lambda: seq(L.ConvLSTM2D(2, 3, data_format="channels_first"), shape=(T, 2, 6, 5)),
     "torch", "channels_last"),
]


@pytest.mark.parametrize("case", STRUCTURE_REFUSALS, ids=[c[0] for c in STRUCTURE_REFUSALS])
def test_structure_refused_in_one_line(case, tmp_path, capsys):
    from converters.cli import main

    _, build, target, why = case
    build().save(tmp_path / "m.keras")
    out = tmp_path / ("m.onnx" if target == "onnx" else "torch_model")
    assert main(["convert", str(tmp_path / "m.keras"), "--to", target, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gateport: error:") and why in err[0], err
    assert not out.exists()


def test_conv_lstm_onnx_is_a_plain_graph_of_fixed_size_per_step(tmp_path):
    """The unrolled ConvLSTM: one input Conv for all frames, then per step one recurrent Conv (none for the
    first, zero-state step) and no Loop/Scan; exact against Keras (onnx_outputs checks the node kinds)."""
    model = randomize(seq(L.ConvLSTM1D(3, 3, padding="same", return_sequences=True), shape=(T, 6, 2)))
    inputs = [floats((B, T, 6, 2)) / 4]
    ir = read_saved(model, tmp_path)
    assert error(onnx_outputs(ir, inputs, tmp_path / "m.onnx"), keras_outputs(model, inputs)) <= TOL
    counts = Counter(n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node)
    assert counts["Conv"] == 1 + (T - 1) and counts["Split"] == T, counts


@pytest.mark.parametrize("backwards", [False, True])
def test_conv_lstm_dynamic_time_is_one_scan(backwards, tmp_path):
    """A dynamic time length: one Scan over the steps (its body the same cell); exact for any length."""
    layer = L.ConvLSTM1D(3, 2, padding="same", go_backwards=backwards, return_sequences=True, return_state=True)
    model = randomize(flat(seq(layer, shape=(None, 5, 2))))
    ir = read_saved(model, tmp_path)
    onnx_graph.write(ir, tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    assert Counter(n.op_type for n in proto.graph.node)["Scan"] == 1
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for steps in (1, 6):
        x = floats((B, steps, 5, 2), seed=steps) / 4
        assert error(sess.run(None, {ir.inputs[0].name: x}), keras_outputs(model, [x])) <= TOL


def read_saved(model, folder: Path):
    model.save(folder / "source.keras")
    return read(folder / "source.keras")

#: (what is edited, edit of the saved config) of a model with stacked cells, a custom backward layer and a ConvLSTM
STRUCTURE_HOSTILE = [
    ("kernel_size huge", lambda c: _cfg(c, "ConvLSTM1D").update(kernel_size=[10 ** 12])),
    ("strides 0", lambda c: _cfg(c, "ConvLSTM1D").update(strides=[0])),
    ("kernel_size float", lambda c: _cfg(c, "ConvLSTM1D").update(kernel_size=[2.5])),
    ("padding reflect", lambda c: _cfg(c, "ConvLSTM1D").update(padding="reflect")),
    ("filters negative", lambda c: _cfg(c, "ConvLSTM1D").update(filters=-3)),
    ("kernel_size rank", lambda c: _cfg(c, "ConvLSTM1D").update(kernel_size=[2, 2, 2])),
    ("cells not a list", lambda c: _cfg(c, "RNN")["cell"]["config"].update(cells="x")),
    ("cell class Lambda", lambda c: _cfg(c, "RNN")["cell"]["config"]["cells"][0].update(class_name="Lambda")),
    ("cell units string", lambda c: _cfg(c, "RNN")["cell"]["config"]["cells"][1]["config"].update(units="7")),
    ("backward units", lambda c: _cfg(c, "Bidirectional")["backward_layer"]["config"].update(units=9)),
]


def _cfg(cfg: dict, class_name: str) -> dict:
    from attacks import layer

    return layer(cfg, class_name)["config"]


@pytest.mark.parametrize("case", STRUCTURE_HOSTILE, ids=[c[0] for c in STRUCTURE_HOSTILE])
def test_hostile_structure_configs_are_one_line(case, tmp_path, capsys):
    """Stacked cells, a Bidirectional backward layer and a ConvLSTM edited by a stranger: one line each."""
    from attacks import edited_keras
    from converters.cli import main

    inp = keras.Input((T, 6, 2))
    x = L.ConvLSTM1D(2, 3, return_sequences=True)(inp)
    x = L.TimeDistributed(L.Flatten())(x)
    x = L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(3)]), return_sequences=True)(x)
    y = custom_backward(L.LSTM(2), L.GRU(2, go_backwards=True))(x)
    keras.Model(inp, y).save(tmp_path / "m.keras")
    bad = edited_keras(tmp_path / "m.keras", tmp_path / "bad.keras", case[1])
    code = main(["convert", str(bad), "--to", "onnx", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("gateport: error:"), (code, err)
    assert not (tmp_path / "m.onnx").exists()
