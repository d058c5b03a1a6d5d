"""Round trips through the IR, as properties and as chains of real files.

Properties (hypothesis): a random recurrent layer (kind, units, input size, directions, go_backwards,
return_sequences/state, merge mode, activations, reset_after, bias, a Keras mask) goes through each
writer and back through the matching reader:

* PyTorch state_dict writer -> PyTorch reader, ONNX writer -> ONNX reader: every array bit-identical,
  the options that compute unchanged, the numpy reference output identical;
* Keras writer -> Keras reader: bit-identical, except that gates driven by Keras 2's hard_sigmoid are
  scaled by 1.2 (keras_layers.py); then the outputs are checked instead (<= 1e-5), and Keras 3 itself
  loads the file and agrees with the reference (<= 1e-5).

Chains: a Keras .h5/.keras fixture -> PyTorch (state_dict, or the generated model.py exported by
``torch.onnx.export``) -> ONNX -> Keras 3 ``.keras``, loaded by Keras 3 and compared with the outputs
the original Keras computed (<= 1e-5).
"""
from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from converters import reference  # noqa: E402
from converters.errors import UnsupportedError  # noqa: E402
from converters.gates import GATES  # noqa: E402
from converters.ir import Model, Node, TensorSpec  # noqa: E402
from converters.readers import onnx_model, read, torch_state as torch_reader  # noqa: E402
from converters.writers import keras_v3, onnx_graph, torch_code, torch_state as torch_writer  # noqa: E402
from converters.writers.keras_layers import KERAS2_HARD_SIGMOID, scaled_recurrent  # noqa: E402
from converters.writers.torch_state import nn_incompatibility  # noqa: E402
from roundtrip import (CORPUS, FIXTURE, FIXTURES, TOL, assert_bit_identical, computing_options,  # noqa: E402
                       corpus_path, fixture_io, fixture_model, keras_run, max_error, read_from_onnx)

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FAST_PROPERTY = settings(PROPERTY, max_examples=50)  # no Keras run inside
B, T = 3, 5
N_STATES = {"lstm": 2, "gru": 1, "simple_rnn": 1}
#: activations each target can hold. Gates get bounded ones: unbounded gates make outputs grow
#: until float32 rounding alone passes 1e-5 (a relu LSTM with linear gates reaches |y| ~ 1e3).
ONNX_ACTIVATIONS = ["tanh", "sigmoid", "relu", "linear", "softsign", "softplus", "elu",
                    "hard_sigmoid_keras2", "hard_sigmoid_keras3"]
KERAS_ACTIVATIONS = ["tanh", "sigmoid", "relu", "linear", "softsign", "softplus", "elu", "selu", "swish",
                     "hard_sigmoid_keras3", "hard_sigmoid_keras2"]
GATE_ACTIVATIONS = ["sigmoid", "hard_sigmoid_keras2", "hard_sigmoid_keras3", "tanh", "softsign"]


# -- random IR layers ------------------------------------------------------------------------------
@st.composite
def recurrent_models(draw, target: str) -> tuple[Model, list[np.ndarray]]:
    """A model of one random recurrent layer (behind a Keras mask when drawn) and its input."""
    kind = draw(st.sampled_from(sorted(GATES)))
    units, features = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    bidirectional = draw(st.booleans())
    o = {"units": units, "input_size": features, "bidirectional": bidirectional,
         "go_backwards": draw(st.booleans()), "return_sequences": draw(st.booleans()),
         "return_state": draw(st.booleans()), "use_bias": draw(st.booleans()), "stateful": False}
    if bidirectional:
        o["merge_mode"] = draw(st.sampled_from(["concat", "sum", "mul", "ave", None]))
    if target == "torch":
        o["activation"] = draw(st.sampled_from(["tanh", "relu"])) if kind == "simple_rnn" else "tanh"
        ract = "sigmoid"
    else:
        names = ONNX_ACTIVATIONS if target == "onnx" else KERAS_ACTIVATIONS
        acts = [n for n in names if not (target == "keras" and kind == "lstm" and n == KERAS2_HARD_SIGMOID)]
        o["activation"] = draw(st.sampled_from(acts))
        ract = draw(st.sampled_from(GATE_ACTIVATIONS if target == "keras" else names))
    if kind != "simple_rnn":
        o["recurrent_activation"] = ract
    if kind == "gru":
        o["reset_after"] = True if target == "torch" else draw(st.booleans())
    masked = target != "torch" and draw(st.booleans())
    o["zero_output_for_mask"] = (o["return_sequences"] if bidirectional and (masked or target == "torch")
                                 else draw(st.booleans()) if masked else False)
    seed = draw(st.integers(0, 2**16))
    node = Node("rnn", kind, ["xm" if masked else "x"], [], o, mask="m" if masked else None,
                source={"class_name": kind})
    _random_weights(node, np.random.default_rng(seed), keras=target == "keras")
    n_y = 2 if bidirectional and o.get("merge_mode", "concat") is None else 1
    n_states = N_STATES[kind] * len(node.directions) if o["return_state"] else 0
    node.outputs = ["rnn"] + [f"rnn:{k}" for k in range(1, n_y + n_states)]
    nodes = [node]
    if masked:
        nodes = [Node("m", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True}),
                 Node("xm", "masking", ["x"], ["xm"], {"mask_value": 0.0}, mask="m")] + nodes
    model = Model("random", [TensorSpec("x", (None, features))], list(node.outputs), nodes)
    return model, [_inputs(np.random.default_rng(seed + 1), features, masked)]


def _random_weights(node: Node, rng, keras: bool) -> None:
    """Uniform in [-1, 1]; no biases without use_bias; one bias where Keras holds one."""
    units, features = node.options["units"], node.options["input_size"]
    two_biases = node.op == "gru" and node.options.get("reset_after", True)
    for d in node.directions:
        for gate in node.gate_names:
            for part, shape in (("input_weights", (units, features)), ("recurrent_weights", (units, units)),
                                ("input_bias", (units,)), ("recurrent_bias", (units,))):
                a = rng.uniform(-1, 1, shape).astype(np.float32)
                if part.endswith("bias") and (not node.options["use_bias"]
                                              or keras and part == "recurrent_bias" and not two_biases):
                    a = np.zeros(shape, np.float32)
                node.weights[f"{d}.{gate}.{part}"] = a


def _inputs(rng, features: int, masked: bool) -> np.ndarray:
    x = rng.normal(0, 1, (B, T, features)).astype(np.float32)
    if masked:  # trailing padding, a hole, leading padding
        x[0, T - 2:] = 0.0
        x[1, T // 2] = 0.0
        x[2, 0] = 0.0
    return x


def assert_same_outputs(a: Model, b: Model, inputs) -> None:
    for x, y in zip(reference.run(a, inputs), reference.run(b, inputs)):
        assert np.array_equal(x, y)


def uses_keras2_hard_sigmoid(node: Node) -> bool:
    return KERAS2_HARD_SIGMOID in (node.options.get("activation"), node.options.get("recurrent_activation"))


# -- properties ------------------------------------------------------------------------------------
@FAST_PROPERTY
@given(recurrent_models("torch"))
def test_torch_state_dict_round_trip(case):
    model, inputs = case
    node = model.nodes[-1]
    assert nn_incompatibility(node) is None
    with tempfile.TemporaryDirectory() as tmp:
        back = torch_reader.read(torch_writer.write(model, Path(tmp) / "m.safetensors"))
    other = back.node("rnn")
    assert_bit_identical(node, other)
    assert computing_options(other) == computing_options(node)
    assert back.outputs == model.outputs
    assert_same_outputs(model, back, inputs)


@FAST_PROPERTY
@given(recurrent_models("onnx"))
def test_onnx_round_trip(case):
    model, inputs = case
    proto = onnx_graph.to_onnx(model)
    back = onnx_model.from_proto(proto)
    node, other = model.node("rnn"), back.node("rnn")
    assert_bit_identical(node, other)
    assert computing_options(other) == computing_options(node)
    assert back.outputs == model.outputs
    assert_same_outputs(model, back, inputs)


@PROPERTY
@given(recurrent_models("keras"))
def test_keras_round_trip(case):
    model, inputs = case
    node = model.node("rnn")
    with tempfile.TemporaryDirectory() as tmp:
        path = keras_v3.write(model, Path(tmp) / "m.keras")
        keras_err = max_error(keras_run(path, inputs), reference.run(model, inputs))
        assert keras_err <= TOL, f"Keras 3 vs reference: {keras_err}"
        if node.options["bidirectional"] and node.options["go_backwards"]:
            return  # Keras 3 computes it (checked above); the Keras reader refuses this layer
        back = read(path)
    other = back.node("rnn")
    if uses_keras2_hard_sigmoid(node):  # scaled gates: the numbers, not the bits, are kept
        assert_bit_identical(scaled_recurrent(node)[0], other)
        assert max_error(reference.run(back, inputs), reference.run(model, inputs)) <= TOL
        return
    assert_bit_identical(node, other)
    assert computing_options(other) == computing_options(node)
    assert_same_outputs(model, back, inputs)


# -- chains of real files --------------------------------------------------------------------------
def _recurrent_only(name: str) -> bool:
    model = fixture_model(name)
    return all(n.is_recurrent and nn_incompatibility(n) is None and not n.mask for n in model.nodes)


STATE_DICT_CHAIN = [f["name"] for f in FIXTURES if _recurrent_only(f["name"])]
#: fixtures whose generated model.py uses nn.LSTM/GRU/RNN only (no exact step loop to unroll)
TORCH_EXPORT_CHAIN = [
    "tiny_lstm", "lstm_dense_activation", "two_inputs", "gru_stacked_dynamic_time", "simple_rnn_relu_stacked",
    "lstm_go_backwards_sequences", "gru_go_backwards_last", "lstm_return_state", "bidir_lstm_return_state",
    "bidir_gru_mul", "bidir_simple_rnn_ave", "bidir_lstm_merge_none", "bidir_stacked_concat",
    "time_distributed_dropout", "flatten_dense", "add_lstm_gru", "lstm_no_bias", "autoencoder_bilstm",
    "k3_simple_rnn_relu_backwards", "k3_bigru_return_state_merge_none", "k3_multi_input_add",
    "k3_gru_repeat_lstm", "k3_bidir_mul_sum_flatten"]


def finish_in_keras(model: Model, name: str, tmp_path) -> float:
    """ONNX writer -> ONNX reader -> Keras writer -> Keras 3; max error against the fixture's outputs."""
    onnx_path = onnx_graph.write(model, tmp_path / "m.onnx")
    keras_path = keras_v3.write(onnx_model.read(onnx_path), tmp_path / "m.keras")
    inputs, expected = fixture_io(FIXTURE[name])
    return max_error(keras_run(keras_path, inputs), expected)


def test_state_dict_chain_covers_enough_fixtures():
    assert len(STATE_DICT_CHAIN) >= 8, STATE_DICT_CHAIN


@pytest.mark.parametrize("name", STATE_DICT_CHAIN)
def test_keras_to_torch_state_dict_to_onnx_to_keras3(name, tmp_path):
    state_dict = torch_writer.write(fixture_model(name), tmp_path / "m.safetensors")
    err = finish_in_keras(torch_reader.read(state_dict), name, tmp_path)
    print(f"{name}: .h5 -> state_dict -> ONNX -> .keras: max abs error {err:.2e}")
    assert err <= TOL


def export_generated_module(model: Model, inputs: list[np.ndarray], tmp_path) -> Path:
    """``--to torch``'s model.py, loaded and exported by PyTorch's own (TorchScript) ONNX exporter."""
    torch = pytest.importorskip("torch")
    folder = torch_code.write(model, tmp_path / "torch_model")
    spec = importlib.util.spec_from_file_location(f"generated_{tmp_path.name}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.load_model()
    names = [t.name for t in model.inputs]
    path = tmp_path / "exported.onnx"
    torch.onnx.export(net, tuple(torch.from_numpy(np.asarray(x)) for x in inputs), str(path), dynamo=False,
                      input_names=names, output_names=list(model.outputs),
                      dynamic_axes={n: {0: "batch"} for n in names})
    return path


@pytest.mark.parametrize("name", TORCH_EXPORT_CHAIN)
def test_keras_to_torch_module_to_onnx_to_keras3(name, tmp_path):
    import warnings

    inputs, expected = fixture_io(FIXTURE[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        exported = export_generated_module(fixture_model(name), inputs, tmp_path)
    keras_path = keras_v3.write(onnx_model.read(exported), tmp_path / "m.keras")
    err = max_error(keras_run(keras_path, inputs), expected)
    print(f"{name}: .h5 -> model.py -> torch.onnx.export -> .keras: max abs error {err:.2e}")
    assert err <= TOL


def test_unrolled_step_loop_in_a_pytorch_export_is_refused(tmp_path):
    """A generated exact cell (Keras 2 hard_sigmoid) traces to per-step ops, not one LSTM node."""
    import warnings

    inputs, _ = fixture_io(FIXTURE["lstm_hard_sigmoid"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = export_generated_module(fixture_model("lstm_hard_sigmoid"), inputs, tmp_path)
    with pytest.raises(UnsupportedError, match="ONNX node"):
        onnx_model.read(exported)


@pytest.mark.parametrize("name", [f["name"] for f in FIXTURES if read_from_onnx(f)])
def test_keras_to_onnx_to_keras3(name, tmp_path):
    if "keras3_refused" in FIXTURE[name]["features"]:  # read back from ONNX exactly, refused by the Keras writer
        with pytest.raises(UnsupportedError, match="cannot keep this layer's mask in Keras 3"):
            finish_in_keras(fixture_model(name), name, tmp_path)
        return
    err = finish_in_keras(fixture_model(name), name, tmp_path)
    print(f"{name}: .h5/.keras -> ONNX -> .keras: max abs error {err:.2e}")
    assert err <= TOL


@pytest.mark.parametrize("model_id", [k for k in CORPUS if k != "k215_cudnnlstm_weights_textgenrnn"])
def test_corpus_to_onnx_to_keras3(model_id, tmp_path):
    """Real models (Keras 1 to 3, masks, Conv1D, BatchNormalization, Reshape) .h5 -> ONNX -> .keras."""
    entry = CORPUS[model_id]
    model = read(corpus_path(entry))
    inputs, expected = fixture_io(entry)
    if inputs[0].ndim >= 2 and inputs[0].shape[1] > 64:  # Keras 3 steps in Python: cut long inputs
        for spec in model.inputs:
            spec.shape = (None, *spec.shape[1:])
        inputs = [x[:, :64] for x in inputs]
        expected = reference.run(model, inputs)  # test_readers.py checks it on the full inputs
    keras_path = keras_v3.write(onnx_model.read(onnx_graph.write(model, tmp_path / "m.onnx")), tmp_path / "m.keras")
    err = max_error(keras_run(keras_path, inputs), expected)
    print(f"{model_id}: .h5 -> ONNX -> .keras: max abs error {err:.2e}")
    assert err <= TOL
