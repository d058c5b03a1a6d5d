"""The shared case tables: small Keras models with random non-zero weights, and the same models built
by hand as IR (a tiny hand converter, independent of converters.readers). test_reference.py runs them
through the numpy reference; the writer tests through every runtime (``from cases import ...``)."""
from __future__ import annotations

import numpy as np
import pytest

from converters.activations import from_keras
from converters.ir import Model, Node, TensorSpec, set_recurrent_weights

keras = pytest.importorskip("keras")
L = keras.layers
KERAS_VERSION = keras.__version__
B, T, F, U = 3, 6, 3, 4


def randomize(model, seed=0):
    """Random non-zero weights everywhere, variances positive."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            new = [rng.uniform(-0.8, 0.8, w.shape).astype("float32") for w in ws]
            if isinstance(layer, L.BatchNormalization):
                new[-1] = np.abs(new[-1]) + 0.3
            layer.set_weights(new)


def keras_outputs(model, inputs):
    out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [keras.ops.convert_to_numpy(o) for o in out]


KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn"}


def recurrent_node(layer, inputs, outputs, mask=None):
    bi = isinstance(layer, L.Bidirectional)
    subs = {"forward": layer.forward_layer, "backward": layer.backward_layer} if bi else {"forward": layer}
    inner = subs["forward"]
    cfg, kind = inner.get_config(), KINDS[type(inner).__name__]
    opts = {"units": cfg["units"], "activation": from_keras(cfg["activation"], KERAS_VERSION),
            "use_bias": cfg["use_bias"], "go_backwards": cfg["go_backwards"],
            "return_sequences": cfg["return_sequences"], "return_state": cfg["return_state"],
            "zero_output_for_mask": inner.zero_output_for_mask, "bidirectional": bi}
    if kind != "simple_rnn":
        opts["recurrent_activation"] = from_keras(cfg["recurrent_activation"], KERAS_VERSION)
    if kind == "gru":
        opts["reset_after"] = cfg["reset_after"]
    if bi:
        opts["merge_mode"] = layer.merge_mode
    node = Node(layer.name, kind, inputs, outputs, opts, mask=mask)
    for direction, sub in subs.items():
        kernel, recurrent, *bias = sub.get_weights()
        b_in = b_rec = None
        if bias:
            b_in, b_rec = (bias[0][0], bias[0][1]) if bias[0].ndim == 2 else (bias[0], None)
        set_recurrent_weights(node, direction, "keras", kernel.T, recurrent.T, b_in, b_rec)
    return node


def node_of(layer, inputs, outputs, mask=None, **options):
    """An IR node for a Keras layer (TimeDistributed(Dense) is a plain dense)."""
    if isinstance(layer, L.TimeDistributed):
        layer = layer.layer
    if isinstance(layer, (L.Bidirectional, L.LSTM, L.GRU, L.SimpleRNN)):
        return recurrent_node(layer, inputs, outputs, mask)
    cfg, ws = layer.get_config(), layer.get_weights()
    act = {"activation": from_keras(cfg.get("activation"), KERAS_VERSION)}
    if isinstance(layer, L.Dense):
        return Node(layer.name, "dense", inputs, outputs, act,
                    {"weight": ws[0].T, **({"bias": ws[1]} if len(ws) > 1 else {})})
    if isinstance(layer, L.Conv1D):
        weight = ws[0].transpose(2, 1, 0)  # Keras (k, in, filters) -> IR (filters, in, k)
        opts = {"filters": weight.shape[0], "kernel_size": weight.shape[2], "padding": cfg["padding"],
                "strides": cfg["strides"][0], "dilation_rate": cfg["dilation_rate"][0]}  # ints, as ir.py says
        return Node(layer.name, "conv1d", inputs, outputs, {**opts, **act},
                    {"weight": weight, **({"bias": ws[1]} if len(ws) > 1 else {})})
    if isinstance(layer, L.BatchNormalization):
        names = ("gamma", "beta", "moving_mean", "moving_variance")
        return Node(layer.name, "batch_norm", inputs, outputs,
                    {"axis": cfg["axis"], "epsilon": cfg["epsilon"]}, dict(zip(names, ws)))
    if isinstance(layer, L.Embedding):
        return Node(layer.name, "embedding", inputs, outputs, {}, {"embeddings": ws[0]})
    return Node(layer.name, options.pop("op"), inputs, outputs, options, mask=mask)


def ir_model(inputs, nodes, outputs):
    return Model("test", [TensorSpec(n, s, d) for n, s, d in inputs], outputs, nodes)


def x_data(seed=1, shape=(B, T, F)):
    return np.random.default_rng(seed).normal(0, 1.5, shape).astype("float32")


SINGLE = {
    "lstm": lambda: L.LSTM(U),
    "lstm_seq": lambda: L.LSTM(U, return_sequences=True),
    "lstm_state": lambda: L.LSTM(U, return_state=True),
    "lstm_seq_state": lambda: L.LSTM(U, return_sequences=True, return_state=True),
    "lstm_backwards_seq": lambda: L.LSTM(U, go_backwards=True, return_sequences=True),
    "lstm_backwards_state": lambda: L.LSTM(U, go_backwards=True, return_state=True),
    "lstm_hard_sigmoid": lambda: L.LSTM(U, recurrent_activation="hard_sigmoid", return_sequences=True),
    "lstm_relu": lambda: L.LSTM(U, activation="relu", return_sequences=True),
    "lstm_no_bias": lambda: L.LSTM(U, use_bias=False, return_sequences=True),
    "gru_reset_after": lambda: L.GRU(U, reset_after=True, return_sequences=True, return_state=True),
    "gru_reset_before": lambda: L.GRU(U, reset_after=False, return_sequences=True, return_state=True),
    "gru_backwards_seq": lambda: L.GRU(U, go_backwards=True, return_sequences=True),
    "gru_reset_before_backwards": lambda: L.GRU(U, reset_after=False, go_backwards=True),
    "gru_hard_sigmoid": lambda: L.GRU(U, recurrent_activation="hard_sigmoid", return_sequences=True),
    "gru_relu_no_bias": lambda: L.GRU(U, activation="relu", use_bias=False, return_sequences=True),
    "simple_rnn": lambda: L.SimpleRNN(U),
    "simple_rnn_relu_seq": lambda: L.SimpleRNN(U, activation="relu", return_sequences=True),
    "simple_rnn_backwards_state": lambda: L.SimpleRNN(U, go_backwards=True, return_sequences=True,
                                                      return_state=True),
}


def single_layer_case(layer, n_states=0, mask=None, seed=0):
    """Input(s) -> layer -> outputs, as a Keras model and by hand as an IR model."""
    x = keras.Input((T, F), name="x")
    states = [keras.Input((U,), name=f"s{k}") for k in range(n_states)]
    y = layer(x, initial_state=states or None)
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    model = keras.Model([x, *states], ys)
    randomize(model, seed)
    outs = [f"y{k}" for k in range(len(ys))]
    node = node_of(layer, ["x", *(f"s{k}" for k in range(n_states))], outs, mask)
    specs = [("x", (T, F), "float32")] + [(f"s{k}", (U,), "float32") for k in range(n_states)]
    return model, ir_model(specs, [node], outs)


BIDIRECTIONAL = [(kind, mode, seq) for kind in ("lstm", "gru") for mode in ("concat", "sum", "mul", "ave", None)
                 for seq in (True, False)] + [("simple_rnn", "concat", True), ("simple_rnn", None, False)]


INITIAL_STATES = {
    "lstm": (lambda: L.LSTM(U, return_sequences=True, return_state=True), 2),
    "gru": (lambda: L.GRU(U, go_backwards=True, return_state=True), 1),
    "simple_rnn": (lambda: L.SimpleRNN(U, return_sequences=True), 1),
    "bi_lstm": (lambda: L.Bidirectional(L.LSTM(U, return_sequences=True, return_state=True)), 4),
    "bi_gru": (lambda: L.Bidirectional(L.GRU(U, return_state=True), merge_mode=None), 2),
}


#: (batch, time) keep-masks: trailing padding, a masked step in the middle, leading padding, all kept.
KEEP = np.array([[1, 1, 1, 1, 0, 0],
                 [1, 0, 1, 1, 1, 0],
                 [0, 0, 1, 0, 1, 1]], dtype=bool)


MASKED = {
    "bi_gru_seq": lambda: L.Bidirectional(L.GRU(U, return_sequences=True)),
    "bi_gru_seq_state_none": lambda: L.Bidirectional(L.GRU(U, return_sequences=True, return_state=True),
                                                     merge_mode=None),
    "bi_lstm_last_state": lambda: L.Bidirectional(L.LSTM(U, return_state=True), merge_mode="sum"),
    "lstm_seq": lambda: L.LSTM(U, return_sequences=True),
    "lstm_seq_zero_output": lambda: L.LSTM(U, return_sequences=True, zero_output_for_mask=True),
    "lstm_last_zero_output": lambda: L.LSTM(U, zero_output_for_mask=True, return_state=True),
    "lstm_backwards_seq": lambda: L.LSTM(U, go_backwards=True, return_sequences=True, return_state=True),
    "gru_reset_before_seq": lambda: L.GRU(U, reset_after=False, return_sequences=True),
    "gru_backwards_last": lambda: L.GRU(U, go_backwards=True),
    "simple_rnn_seq_state": lambda: L.SimpleRNN(U, return_sequences=True, return_state=True),
}


def masking_case(layer, n_states=0):
    """Input -> Masking -> layer, by hand: mask_not_equal(reduce) + masking + the masked layer."""
    x = keras.Input((T, F), name="x")
    states = [keras.Input((U,), name=f"s{k}") for k in range(n_states)]
    xm = L.Masking(0.0)(x)
    # Keras 3 fills in `mask` only for a call with one tensor argument (Layer.__call__, step 6):
    # with initial_state the mask must be passed explicitly, or Keras silently runs unmasked.
    y = layer(xm, initial_state=states, mask=xm._keras_mask) if states else layer(xm)
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    model = keras.Model([x, *states], ys)
    randomize(model)
    outs = [f"y{k}" for k in range(len(ys))]
    ir = ir_model([("x", (T, F), "float32")] + [(f"s{k}", (U,), "float32") for k in range(n_states)], [
        Node("mask", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True}),
        Node("masking", "masking", ["x"], ["xm"], mask="m"),
        node_of(layer, ["xm", *(f"s{k}" for k in range(n_states))], outs, mask="m"),
    ], outs)
    return model, ir


def chain_case(layers, input_spec=("x", (T, F), "float32"), options=None):
    """A Keras chain of layers, and the same chain by hand (``options[i]`` for layers without weights)."""
    inp = keras.Input(input_spec[1], dtype=input_spec[2], name=input_spec[0])
    model = keras.Sequential([inp, *layers])
    randomize(model)
    names = [input_spec[0]] + [f"t{k}" for k in range(len(layers))]
    nodes = [node_of(layer, names[k:k + 1], names[k + 1:k + 2], **(options or {}).get(k, {}))
             for k, layer in enumerate(layers)]
    return model, ir_model([input_spec], nodes, [names[-1]])


def conv_chain_case():
    """Conv1D (causal, dilated) -> BatchNorm -> LSTM -> TimeDistributed -> Dropout -> Flatten -> Dense."""
    return chain_case([
        L.Conv1D(5, 3, padding="causal", dilation_rate=2, activation="relu"),
        L.BatchNormalization(epsilon=1e-2),
        L.LSTM(U, return_sequences=True),
        L.TimeDistributed(L.Dense(3, activation="sigmoid")),
        L.Dropout(0.5),
        L.Flatten(),
        L.Dense(4, activation="softmax"),
    ], options={4: {"op": "identity"}, 5: {"op": "flatten"}})


CONV = [("valid", 1, 1), ("valid", 2, 1), ("same", 1, 2), ("same", 2, 1), ("same", 3, 1), ("causal", 1, 3),
        ("causal", 2, 1)]


MERGES = {"add": L.Add, "subtract": L.Subtract, "multiply": L.Multiply, "average": L.Average,
          "maximum": L.Maximum, "minimum": L.Minimum}


MERGE_CASES = [*MERGES, "concatenate_last", "concatenate_time", "concatenate_minus2"]


def merge_case(op):
    """Two recurrent/dense branches merged by ``op``, then a Dense: the Keras model and its IR."""
    x = keras.Input((T, F), name="x")
    a_layer, b_layer = L.LSTM(U, return_sequences=True), L.TimeDistributed(L.Dense(U, activation="relu"))
    axis = {"concatenate_last": -1, "concatenate_time": 1, "concatenate_minus2": -2}.get(op)
    merge = L.Concatenate(axis=axis) if axis is not None else MERGES[op]()
    head = L.Dense(2)
    model = keras.Model(x, head(merge([a_layer(x), b_layer(x)])))
    randomize(model)
    opts = {"op": "concatenate", "axis": axis} if axis is not None else {"op": op}
    ir = ir_model([("x", (T, F), "float32")], [
        node_of(a_layer, ["x"], ["a"]), node_of(b_layer, ["x"], ["b"]),
        node_of(merge, ["a", "b"], ["m"], **opts), node_of(head, ["m"], ["y"]),
    ], ["y"])
    return model, ir
