"""The ONNX writer: onnxruntime against Keras 3 (torch backend), the numpy reference and the fixtures.

Each Keras-built case exports one file with a dynamic batch and time axis and runs it at two batch
sizes and two sequence lengths (max abs error <= 1e-5). Every export passes
``onnx.checker.check_model(full_check=True)`` and holds exactly one LSTM/GRU/RNN node per recurrent
layer and no Loop/Scan/If. Keras layers become IR nodes through the hand converter of
tests/test_reference.py (independent of converters.readers).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from converters import reference  # noqa: E402
from converters.activations import from_keras  # noqa: E402
from converters.errors import FormatError, UnsupportedError  # noqa: E402
from converters.ir import Model, Node, TensorSpec, set_recurrent_weights  # noqa: E402
from converters.writers import onnx_graph  # noqa: E402

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
keras = pytest.importorskip("keras")

from cases import (  # noqa: E402  the shared hand converter and Keras option grids
    BIDIRECTIONAL, INITIAL_STATES, MASKED, SINGLE, U, ir_model, keras_outputs, node_of, randomize)

L = keras.layers
KERAS_VERSION = keras.__version__
from helpers import TOL  # noqa: E402
F = 3
#: (batch, time) pairs every exported file runs at.
SIZES = [(5, 7), (2, 3)]
RECURRENT_ONNX = {"LSTM", "GRU", "RNN"}
ROOT = Path(__file__).resolve().parent.parent


# -- data ------------------------------------------------------------------------------------------
def x_data(batch, time, seed=1, features=F):
    return np.random.default_rng(seed).normal(0, 1.5, (batch, time, features)).astype("float32")


def keep_mask(batch, time):
    """Row patterns: trailing padding, all kept, a masked step inside, leading padding, all masked."""
    keep = np.ones((batch, time), dtype=bool)
    for b in range(batch):
        kind = b % 5
        if kind == 0:
            keep[b, max(1, time - 2):] = False
        elif kind == 2:
            keep[b, time // 2] = False
        elif kind == 3:
            keep[b, :1] = False
        elif kind == 4:
            keep[b] = False
    return keep


def masked_x(batch, time, seed=1):
    return x_data(batch, time, seed) * keep_mask(batch, time)[..., None]


def states_data(batch, n, seed=10):
    return [np.random.default_rng(seed + k).normal(0, 1, (batch, U)).astype("float32") for k in range(n)]


# -- export and compare ------------------------------------------------------------------------------
def export(ir: Model, folder: Path, opset: int = onnx_graph.DEFAULT_OPSET, **kwargs) -> Path:
    """Write, check (full), and count op types: one fused node per recurrent IR node, no loops."""
    folder.mkdir(exist_ok=True)
    path = onnx_graph.write(ir, folder / f"{ir.name}.onnx", opset=opset, **kwargs)
    onnx.checker.check_model(str(path), full_check=True)
    counts = op_counts(path)
    n_recurrent = sum(1 for _ in ir.recurrent_nodes())
    assert sum(counts[op] for op in RECURRENT_ONNX) == n_recurrent, counts
    assert not {"Loop", "Scan", "If"} & set(counts), counts
    return path


def op_counts(path: Path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def session(path: Path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare(got, want, label=""):
    assert len(got) == len(want), label
    errors = []
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"{label} output {k}: shape {g.shape} vs {w.shape}"
        err = float(np.max(np.abs(g.astype(np.float64) - w))) if g.size else 0.0
        errors.append(err)
        assert err <= TOL, f"{label} output {k}: max abs error {err}"
    print(f"{label}: max abs errors {['%.1e' % e for e in errors]}")  # shown with -s
    return errors


def assert_onnx_matches(model, ir: Model, make_inputs, folder: Path, **kwargs) -> Path:
    """One file, run at every SIZES entry against Keras (``model``) or the numpy reference (None)."""
    path = export(ir, folder, **kwargs)
    sess = session(path)
    assert [i.name for i in sess.get_inputs()] == [s.name for s in ir.inputs]
    assert [o.name for o in sess.get_outputs()] == list(ir.outputs)
    for batch, time in SIZES:
        inputs = make_inputs(batch, time)
        got = sess.run(None, {s.name: a for s, a in zip(ir.inputs, inputs)})
        want = keras_outputs(model, inputs) if model is not None else reference.run(ir, inputs)
        compare(got, want, f"batch {batch} time {time}")
    return path


# -- Keras models with a dynamic time axis, and their IR -------------------------------------------------
def recurrent_case(layer, n_states=0, masked=False):
    """Input (None, F) [-> Masking] -> layer(initial states from inputs) -> all its outputs."""
    x = keras.Input((None, F), name="x")
    states = [keras.Input((U,), name=f"s{k}") for k in range(n_states)]
    xin = L.Masking(0.0)(x) if masked else x
    if states:  # Keras 3 passes the mask implicitly only for a call with one tensor argument
        y = layer(xin, initial_state=states, **({"mask": xin._keras_mask} if masked else {}))
    else:
        y = layer(xin)
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    model = keras.Model([x, *states], ys)
    randomize(model)
    outs = [f"y{k}" for k in range(len(ys))]
    state_names = [f"s{k}" for k in range(n_states)]
    nodes = [node_of(layer, ["xm" if masked else "x", *state_names], outs, mask="m" if masked else None)]
    if masked:
        nodes[:0] = [Node("mask", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True}),
                     Node("masking", "masking", ["x"], ["xm"], mask="m")]
    specs = [("x", (None, F), "float32")] + [(s, (U,), "float32") for s in state_names]
    return model, ir_model(specs, nodes, outs)


@pytest.mark.parametrize("case", SINGLE)
def test_single_recurrent_layer(case, tmp_path):
    model, ir = recurrent_case(SINGLE[case]())
    assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t)], tmp_path)


@pytest.mark.parametrize("kind,merge_mode,seq", BIDIRECTIONAL)
def test_bidirectional(kind, merge_mode, seq, tmp_path):
    cls = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind]
    model, ir = recurrent_case(L.Bidirectional(cls(U, return_sequences=seq, return_state=True),
                                               merge_mode=merge_mode))
    path = assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t)], tmp_path)
    (node,) = [n for n in onnx.load(str(path)).graph.node if n.op_type in RECURRENT_ONNX]
    assert onnx.helper.get_attribute_value(node.attribute[[a.name for a in node.attribute].index("direction")]) \
        == b"bidirectional"


@pytest.mark.parametrize("masked", [False, True])
def test_bidirectional_of_go_backwards_layer(masked, tmp_path):
    """Wrapped go_backwards=True (tf_keras flips it for the backward copy; Keras 3 needs backward_layer)."""
    model, ir = recurrent_case(L.Bidirectional(L.LSTM(U, go_backwards=True, return_sequences=True,
                                                      return_state=True),
                                               backward_layer=L.LSTM(U, return_sequences=True,
                                                                     return_state=True)), masked=masked)
    assert_onnx_matches(model, ir, lambda b, t: [masked_x(b, t) if masked else x_data(b, t)], tmp_path)


@pytest.mark.parametrize("case", INITIAL_STATES)
def test_initial_states_as_inputs(case, tmp_path):
    make, n = INITIAL_STATES[case]
    model, ir = recurrent_case(make(), n_states=n)
    assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t), *states_data(b, n)], tmp_path)


@pytest.mark.parametrize("case", MASKED)
def test_masking_then_recurrent(case, tmp_path):
    """Trailing, inner and leading masked steps and fully masked rows, all exact."""
    model, ir = recurrent_case(MASKED[case](), masked=True)
    assert_onnx_matches(model, ir, lambda b, t: [masked_x(b, t)], tmp_path)


@pytest.mark.parametrize("case", ["lstm", "bi_gru"])
def test_masking_with_initial_states(case, tmp_path):
    """A fully masked row keeps the initial state (onnxruntime alone would return zeros)."""
    make, n = INITIAL_STATES[case]
    model, ir = recurrent_case(make(), n_states=n, masked=True)
    assert_onnx_matches(model, ir, lambda b, t: [masked_x(b, t), *states_data(b, n)], tmp_path)


def test_embedding_mask_zero_bidirectional(tmp_path):
    ids = keras.Input((None,), dtype="int64", name="ids")
    emb = L.Embedding(9, F, mask_zero=True)
    bi = L.Bidirectional(L.GRU(U, return_sequences=True, reset_after=False), merge_mode="concat")
    head = L.TimeDistributed(L.Dense(2))
    model = keras.Model(ids, head(bi(emb(ids))))
    randomize(model)
    ir = ir_model([("ids", (None,), "int64")], [
        Node("mask", "mask_not_equal", ["ids"], ["m"], {"value": 0}),
        node_of(emb, ["ids"], ["e"]), node_of(bi, ["e"], ["h"], mask="m"), node_of(head, ["h"], ["y"]),
    ], ["y"])

    def make(batch, time):
        return [np.random.default_rng(2).integers(1, 9, (batch, time)) * keep_mask(batch, time)]
    assert_onnx_matches(model, ir, make, tmp_path)


# -- exact activations -----------------------------------------------------------------------------------
ACTIVATIONS = [("lstm", "tanh", a) for a in ("hard_sigmoid", "relu", "linear", "softsign", "softplus", "elu",
                                              "tanh")] \
    + [("lstm", a, "sigmoid") for a in ("relu", "linear", "softsign", "elu", "sigmoid", "hard_sigmoid")] \
    + [("gru", a, r) for a, r in (("relu", "hard_sigmoid"), ("linear", "softsign"), ("elu", "sigmoid"))] \
    + [("simple_rnn", a, None) for a in ("linear", "softsign", "softplus", "elu", "sigmoid", "hard_sigmoid")]


@pytest.mark.parametrize("kind,act,ract", ACTIVATIONS)
def test_recurrent_activations(kind, act, ract, tmp_path):
    cls = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind]
    kwargs = {"recurrent_activation": ract} if ract else {}
    layer = L.Bidirectional(cls(U, activation=act, return_sequences=True, **kwargs))
    model, ir = recurrent_case(layer)
    assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t)], tmp_path)


def hand_lstm(recurrent_activation="hard_sigmoid_keras2", seed=0, mask=False, **options):
    """An IR LSTM with random weights (for what Keras 3 cannot build, e.g. Keras 2's hard_sigmoid);
    with ``mask``, masked where every feature is 0."""
    rng = np.random.default_rng(seed)
    opts = {"units": U, "input_size": F, "activation": "tanh", "recurrent_activation": recurrent_activation,
            "return_sequences": True, **options}
    dirs = 2 if opts.get("bidirectional") else 1
    n_y = 2 if dirs == 2 and opts.get("merge_mode", "concat") is None else 1
    outs = [f"y{k}" for k in range(n_y)] + ([f"s{k}" for k in range(2 * dirs)] if opts.get("return_state") else [])
    node = Node("lstm", "lstm", ["x"], outs, opts, mask="m" if mask else None, source={"class_name": "LSTM"})
    for d in node.directions:
        set_recurrent_weights(node, d, "keras", rng.normal(0, 0.7, (4 * U, F)), rng.normal(0, 0.7, (4 * U, U)),
                              rng.normal(0, 0.5, 4 * U))
    masks = [Node("mask", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True})] if mask else []
    return Model("hand", [TensorSpec("x", (None, F))], outs, masks + [node])


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output", [False, True])
@pytest.mark.parametrize("merge_mode", ["forward only", "concat", None])
def test_random_masks_against_reference(go_backwards, zero_output, merge_mode, tmp_path):
    """Any mask (random holes, empty rows) is exact: sequences, last outputs and states."""
    bidirectional = merge_mode != "forward only"
    options = {"bidirectional": True, "merge_mode": merge_mode} if bidirectional else {}
    for return_sequences in (True, False):
        ir = hand_lstm("sigmoid", mask=True, go_backwards=go_backwards, zero_output_for_mask=zero_output,
                       return_sequences=return_sequences, return_state=True, **options)
        sess = session(export(ir, tmp_path / str(return_sequences)))
        rng = np.random.default_rng(7)
        for batch, time in SIZES + [(6, 9), (1, 1)]:
            x = x_data(batch, time, seed=batch) * (rng.random((batch, time, 1)) < 0.6)
            compare(sess.run(None, {"x": x}), reference.run(ir, [x]), f"{batch}x{time}")


def test_keras2_hard_sigmoid_against_reference(tmp_path):
    ir = hand_lstm("hard_sigmoid_keras2", bidirectional=True, merge_mode="sum")
    path = assert_onnx_matches(None, ir, lambda b, t: [x_data(b, t)], tmp_path)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for n in onnx.load(str(path)).graph.node
             if n.op_type == "LSTM" for a in n.attribute}
    assert attrs["activations"] == [b"HardSigmoid", b"Tanh", b"Tanh"] * 2
    assert np.allclose(attrs["activation_alpha"], [0.2, 0.2]) and np.allclose(attrs["activation_beta"], [0.5, 0.5])
    assert attrs.get("layout", 0) == 0


def test_attributes_keras3_hard_sigmoid_and_reset_after(tmp_path):
    model, ir = recurrent_case(L.GRU(U, recurrent_activation="hard_sigmoid", reset_after=True,
                                     return_sequences=True))
    path = assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t)], tmp_path)
    (gru,) = [n for n in onnx.load(str(path)).graph.node if n.op_type == "GRU"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gru.attribute}
    assert attrs["activations"] == [b"HardSigmoid", b"Tanh"]
    assert np.allclose(attrs["activation_alpha"], [1 / 6]) and np.allclose(attrs["activation_beta"], [0.5])
    assert attrs["linear_before_reset"] == 1 and attrs["direction"] == b"forward"


@pytest.mark.parametrize("act", ["selu", "swish", "exponential"])
def test_inexpressible_recurrent_activation_is_refused(act, tmp_path):
    ir = hand_lstm(act)
    with pytest.raises(UnsupportedError, match=f"found '{act}'") as e:
        onnx_graph.write(ir, tmp_path / "x.onnx")
    assert "lstm (LSTM)" in str(e.value) and "--to torch" in str(e.value)
    assert not list(tmp_path.iterdir())


# -- stacks, the other layers, several inputs and outputs -----------------------------------------------
def chain_case(layers, options=None, features=F):
    """Sequential(Input((None, features)), *layers) and the same chain by hand."""
    model = keras.Sequential([keras.Input((None, features), name="x"), *layers])
    randomize(model)
    names = ["x"] + [f"t{k}" for k in range(len(layers))]
    nodes = [node_of(layer, names[k:k + 1], names[k + 1:k + 2], **(options or {}).get(k, {}))
             for k, layer in enumerate(layers)]
    return model, ir_model([("x", (None, features), "float32")], nodes, [names[-1]])


def test_stacked_recurrent_layers(tmp_path):
    model, ir = chain_case([L.LSTM(5, return_sequences=True), L.GRU(U, reset_after=False, return_sequences=True),
                            L.Bidirectional(L.SimpleRNN(3), merge_mode="ave"), L.Dense(2, activation="tanh")])
    path = assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t)], tmp_path)
    counts = op_counts(path)
    assert (counts["LSTM"], counts["GRU"], counts["RNN"]) == (1, 1, 1)


def test_conv_batchnorm_lstm_timedistributed_dropout(tmp_path):
    model, ir = chain_case([
        L.Conv1D(5, 3, padding="causal", dilation_rate=2, activation="relu"),
        L.BatchNormalization(epsilon=1e-2),
        L.LSTM(U, return_sequences=True),
        L.TimeDistributed(L.Dense(3, activation="softmax")),
        L.Dropout(0.5),
        L.Activation("swish"),
    ], options={4: {"op": "identity"}, 5: {"op": "activation", "activation": "swish"}})
    assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t)], tmp_path)


def test_lstm_repeat_gru_flatten_dense(tmp_path):
    model, ir = chain_case([
        L.LSTM(U), L.RepeatVector(4), L.GRU(U, return_sequences=True), L.Reshape((2, 2 * U)),
        L.BatchNormalization(axis=1), L.Activation("hard_sigmoid"), L.Flatten(), L.Dense(3, activation="selu"),
    ], options={1: {"op": "repeat_vector", "n": 4}, 3: {"op": "reshape", "shape": [2, 2 * U]},
                5: {"op": "activation", "activation": from_keras("hard_sigmoid", KERAS_VERSION)},
                6: {"op": "flatten"}})
    assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t)], tmp_path)


CONV = [("valid", 1, 1), ("valid", 2, 1), ("same", 1, 2), ("same", 2, 1), ("same", 3, 1), ("causal", 1, 3),
        ("causal", 2, 1)]


@pytest.mark.parametrize("padding,strides,dilation", CONV)
def test_conv1d(padding, strides, dilation, tmp_path):
    model, ir = chain_case([L.Conv1D(4, 3, strides=strides, padding=padding, dilation_rate=dilation,
                                     activation="elu")])
    assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t + 6)], tmp_path)


MERGES = {"add": L.Add, "subtract": L.Subtract, "multiply": L.Multiply, "average": L.Average,
          "maximum": L.Maximum, "minimum": L.Minimum}


def test_several_inputs_and_outputs_keep_keras_names_and_order(tmp_path):
    """Two sequences of different lengths and a vector in; every merge op out, in Keras' order."""
    a, b = keras.Input((None, F), name="seq_a"), keras.Input((None, 2), name="seq_b")
    aux = keras.Input((2,), name="aux")
    lstm, gru = L.LSTM(U), L.GRU(U, go_backwards=True)
    merges = {op: cls(name=op) for op, cls in MERGES.items()}
    cat = L.Concatenate(name="concat")
    head = L.Dense(3, activation="relu", name="main")
    ha, hb = lstm(a), gru(b)
    outs = [head(cat([ha, aux, hb]))] + [m([ha, hb]) for m in merges.values()]
    outs.append(L.Add(name="add3")([ha, hb, ha]))
    model = keras.Model([aux, a, b], outs)
    randomize(model)
    names = ["main", *merges, "add3"]
    nodes = [node_of(lstm, ["seq_a"], ["ha"]), node_of(gru, ["seq_b"], ["hb"]),
             node_of(cat, ["ha", "aux", "hb"], ["cat"], op="concatenate", axis=-1), node_of(head, ["cat"], ["main"])]
    nodes += [node_of(m, ["ha", "hb"], [op], op=op) for op, m in merges.items()]
    nodes.append(Node("add3", "add", ["ha", "hb", "ha"], ["add3"]))
    ir = ir_model([("aux", (2,), "float32"), ("seq_a", (None, F), "float32"), ("seq_b", (None, 2), "float32")],
                  nodes, names)

    def make(batch, time):
        return [x_data(batch, 1, 5, 2)[:, 0], x_data(batch, time), x_data(batch, time + 2, 3, 2)]
    assert_onnx_matches(model, ir, make, tmp_path)


@pytest.mark.parametrize("axis", [1, -2])
def test_concatenate_on_time(axis, tmp_path):
    x = keras.Input((None, F), name="x")
    lstm, dense = L.LSTM(U, return_sequences=True), L.TimeDistributed(L.Dense(U))
    cat = L.Concatenate(axis=axis)
    model = keras.Model(x, cat([lstm(x), dense(x)]))
    randomize(model)
    ir = ir_model([("x", (None, F), "float32")], [
        node_of(lstm, ["x"], ["a"]), node_of(dense, ["x"], ["b"]),
        node_of(cat, ["a", "b"], ["y"], op="concatenate", axis=axis)], ["y"])
    assert_onnx_matches(model, ir, lambda b, t: [x_data(b, t)], tmp_path)


# -- opsets, files, errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [onnx_graph.MIN_OPSET, onnx_graph.DEFAULT_OPSET, 21])
def test_opsets(opset, tmp_path):
    model, ir = recurrent_case(MASKED["bi_gru_seq_state_none"](), masked=True)
    path = assert_onnx_matches(model, ir, lambda b, t: [masked_x(b, t)], tmp_path, opset=opset)
    assert onnx.load(str(path)).opset_import[0].version == opset


def test_bad_opset_is_refused(tmp_path):
    ir = hand_lstm("sigmoid")
    for opset in (7, 10_000):
        with pytest.raises(UnsupportedError, match="expected an ONNX opset"):
            onnx_graph.write(ir, tmp_path / "x.onnx", opset=opset)


def test_external_data_next_to_the_file(tmp_path, monkeypatch):
    """Forced with 0-byte limits; the real limit (2 GB) is onnx_graph.EXTERNAL_DATA_ABOVE."""
    monkeypatch.setattr(onnx_graph, "EXTERNAL_TENSOR_MIN", 0)
    ir = hand_lstm("sigmoid", bidirectional=True, merge_mode="concat")
    path = assert_onnx_matches(None, ir, lambda b, t: [x_data(b, t)], tmp_path, external_data_above=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand.onnx", "hand.onnx.data"]
    assert path.stat().st_size < (tmp_path / "hand.onnx.data").stat().st_size


def test_existing_file_needs_force(tmp_path):
    from converters.errors import OutputError

    ir = hand_lstm("sigmoid")
    path = onnx_graph.write(ir, tmp_path / "m.onnx")
    with pytest.raises(OutputError, match="exists"):
        onnx_graph.write(ir, path)
    onnx_graph.write(ir, path, force=True)


def test_inconsistent_node_is_refused():
    ir = hand_lstm("sigmoid", return_state=True)
    ir.nodes[-1].outputs = ["y0"]  # promises [y, h, c], has only [y]
    ir.outputs = ["y0"]
    with pytest.raises(FormatError, match="expected 3 outputs, found 1"):
        onnx_graph.to_onnx(ir)


def test_imports_without_onnx():
    """converters.writers.onnx_graph imports without onnx; using it names the extra to install."""
    code = ("import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
            "from converters.writers import onnx_graph\n"
            "from converters.errors import MissingDependencyError\n"
            "from converters.ir import Model\n"
            "try:\n    onnx_graph.to_onnx(Model('m', [], [], []))\n"
            "except MissingDependencyError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "gateport[onnx]" in out.stdout


# -- every fixture: read() -> to_onnx -> onnxruntime, against stored Keras outputs and the reference ---------
def _fixtures():
    entries = [dict(e, expected_path=ROOT / e["expected"]) for e in json.loads(
        (ROOT / "fixtures" / "fixtures.json").read_text())]
    for extra in ("legacy.json", "corpus/manifest.json"):
        path = ROOT / "fixtures" / extra
        if path.exists():
            data = json.loads(path.read_text())
            items = data.items() if isinstance(data, dict) else ((e["name"], e) for e in data)
            entries += [dict(e, name=name, expected_path=ROOT / e["expected"]) for name, e in items]
    return entries


FIXTURES = _fixtures()


def _read():
    from converters import readers

    if not hasattr(readers, "read"):
        pytest.skip("converters.readers.read does not exist yet")
    return readers.read


@pytest.mark.parametrize("entry", FIXTURES, ids=lambda e: e["name"])
def test_fixture(entry, tmp_path):
    """Stored Keras outputs at the stored size; the numpy reference at two other batch sizes and lengths."""
    read = _read()
    path = (ROOT / entry["file"]).resolve()
    if not path.exists():
        pytest.skip(f"{path} is not here (the corpus lives outside the repository)")
    config = {"config": str(ROOT / entry["config"])} if entry.get("config") else {}
    try:
        ir = read(path, **config)
    except (UnsupportedError, FormatError) as e:
        if "runner" in entry:  # the one refusal allowed: see test_corpus_recurrent_only.py
            assert "weights only" in str(e) and "textgenrnn" in str(path)
            return
        raise
    sess = session(export(ir, tmp_path))
    stored = np.load(entry["expected_path"])
    inputs = [stored[f"in:{name}"].astype(spec.dtype) for name, spec in zip(entry["inputs"], ir.inputs)]
    got = sess.run(None, {s.name: a for s, a in zip(ir.inputs, inputs)})
    compare(got, [stored[f"out:{k}"] for k in range(entry["n_outputs"])], f"{entry['name']} vs Keras")
    for batch, time in SIZES:
        resized = [_resize(a, spec, batch, time) for a, spec in zip(inputs, ir.inputs)]
        got = sess.run(None, {s.name: a for s, a in zip(ir.inputs, resized)})
        compare(got, reference.run(ir, resized), f"{entry['name']} vs reference at {batch}x{time}")


def _resize(a, spec, batch, time):
    """The stored input tiled/cut to ``batch`` rows and, where the time axis is dynamic, ``time`` steps."""
    a = np.concatenate([a] * (batch // len(a) + 1))[:batch]
    if len(spec.shape) >= 1 and spec.shape[0] is None and a.ndim >= 2:
        a = np.concatenate([a] * (time // a.shape[1] + 1), axis=1)[:, :time]
    return a
