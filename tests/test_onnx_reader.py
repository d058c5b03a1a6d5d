"""The ONNX reader: gateport's own ONNX files read back bit for bit, hand-built and PyTorch-exported
graphs read to what onnxruntime / PyTorch compute (max abs error <= 1e-5), the rest refused.

* Every fixture and corpus model: IR -> ONNX writer -> ONNX reader gives the same recurrent weights
  (bit-identical), the same options and the same numpy reference outputs; onnxruntime on the file
  agrees with the read model.
* Hand-built LSTM/GRU/RNN graphs: layout 0 and 1, forward/reverse/bidirectional, activations with
  alpha/beta (HardSigmoid 0.2 -> Keras 2, 1/6 -> Keras 3), run by onnxruntime (layout 1 compared
  with the same graph in layout 0, which onnxruntime's CPU kernels require).
* ``torch.onnx.export`` (TorchScript exporter) of nn.LSTM/GRU/RNN modules, compared with PyTorch.
"""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

from converters import reference
from converters.errors import UnsupportedError
from converters.readers import onnx_model, read
from converters.writers import onnx_graph
from roundtrip import (CORPUS, FIXTURE, FIXTURES, TOL, assert_bit_identical, computing_options, corpus_path,
                       fixture_io, fixture_model, max_error, read_from_onnx)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper, TP = onnx.helper, onnx.TensorProto
CORPUS_IDS = [k for k in CORPUS if k != "k215_cudnnlstm_weights_textgenrnn"]
#: IR ops whose number may change: mask ops are shared, the writer folds some Identity (Dropout) away
_LOOSE_OPS = ("mask_not_equal", "mask_and", "identity")


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
              "tensor(bool)": np.bool_}


def run_onnx(proto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.asarray(x).astype(_ORT_TYPES[i.type]) for i, x in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)


def used_outputs(model) -> set[str]:
    return set(model.outputs) | {t for n in model.nodes for t in n.inputs}


# -- gateport's own files ------------------------------------------------------------------------
#: long corpus inputs are cut to this many steps (the time axis made dynamic) to keep the test quick
MAX_STEPS = 200


def check_round_trip(model, inputs):
    if inputs[0].ndim >= 2 and inputs[0].shape[1] > MAX_STEPS:
        for spec in model.inputs:
            spec.shape = (None, *spec.shape[1:])
        inputs = [x[:, :MAX_STEPS] for x in inputs]
    proto = onnx_graph.to_onnx(model)
    back = onnx_model.from_proto(proto)
    assert [t.name for t in back.inputs] == [t.name for t in model.inputs]
    assert back.outputs == model.outputs
    for node in model.recurrent_nodes():
        other = back.node(node.name)
        assert other.op == node.op
        assert_bit_identical(node, other)
        want = computing_options(node)
        if not used_outputs(model).intersection(node.outputs[1:]):  # states nobody reads: pruned
            want["return_state"] = other.options.get("return_state")
        assert computing_options(other) == want, node.name
        assert other.mask is None if node.mask is None else other.mask is not None
    ops = Counter(n.op for n in model.nodes if n.op not in _LOOSE_OPS)
    assert Counter(n.op for n in back.nodes if n.op not in _LOOSE_OPS) == ops
    err = max_error(reference.run(back, inputs), reference.run(model, inputs))
    err_ort = max_error(run_onnx(proto, inputs), reference.run(back, inputs))
    return err, err_ort


@pytest.mark.parametrize("name", [f["name"] for f in FIXTURES if read_from_onnx(f)])
def test_fixture_round_trip(name):
    inputs, _ = fixture_io(FIXTURE[name])
    model = fixture_model(name)
    err, err_ort = check_round_trip(model, inputs)
    print(f"{name}: reference {err:.1e}, onnxruntime {err_ort:.1e}")
    # not bit for bit: the writer folds BatchNormalization into a scale and shift (as for the corpus below); a
    # Keras 3 config's ReLU slope 0.1 comes back as the float32 the ONNX file holds (0.10000000149...)
    rounded = any(n.op == "batch_norm" or any(isinstance(v, float) and float(np.float32(v)) != v
                                              for v in n.options.values()) for n in model.nodes if n.op in
                  ("batch_norm", "relu", "elu"))
    assert err <= (1e-6 if rounded else 0.0) and err_ort <= TOL


@pytest.mark.parametrize("model_id", CORPUS_IDS)
def test_corpus_round_trip(model_id):
    entry = CORPUS[model_id]
    inputs, _ = fixture_io(entry)
    err, err_ort = check_round_trip(read(corpus_path(entry)), inputs)
    print(f"{model_id}: reference {err:.1e}, onnxruntime {err_ort:.1e}")
    assert err <= 1e-6 and err_ort <= TOL  # the writer folds BatchNormalization into a scale and shift


# -- hand-built graphs -----------------------------------------------------------------------------
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
B, T, I, H = 3, 5, 2, 3


def recurrent_graph(op="LSTM", direction="forward", layout=0, output="sequence", seed=0, **attrs):
    """x (batch, time, in) -> one recurrent node -> one batch-first output, as tools commonly wire it.

    ``output``: "sequence" (each direction in time order; both concatenated), "flipped" (a reverse
    direction's output reversed in time, Keras' go_backwards), "state" (the final h of direction 0).
    """
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    inits = [helper.make_tensor(n, TP.FLOAT, a.shape, a.ravel().tolist()) for n, a in (
        ("W", rng.uniform(-1, 1, (dirs, g * H, I)).astype(np.float32)),
        ("R", rng.uniform(-1, 1, (dirs, g * H, H)).astype(np.float32)),
        ("B", rng.uniform(-1, 1, (dirs, 2 * g * H)).astype(np.float32)))]
    nodes = []
    x = "x"
    if layout == 0:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]))
        x = "x_tm"
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    nodes.append(helper.make_node(op, [x, "W", "R", "B"], outs, hidden_size=H, direction=direction,
                                  **({"layout": 1} if layout else {}), **attrs))
    const = []

    def c(name, values):
        const.append(helper.make_tensor(name, TP.INT64, [len(values)], values))
        return name

    if output == "state":
        nodes.append(helper.make_node("Squeeze", ["Y_h", c("ax_h", [layout])], ["out"]))
    elif dirs == 2:
        if layout == 0:
            nodes.append(helper.make_node("Transpose", ["Y"], ["Y_bt"], perm=[2, 0, 1, 3]))
        nodes.append(helper.make_node("Reshape", ["Y_bt" if layout == 0 else "Y", c("shape", [0, 0, -1])], ["out"]))
    else:
        y = "Y_s"
        nodes.append(helper.make_node("Squeeze", ["Y", c("ax_y", [2 if layout else 1])], [y]))
        if layout == 0:
            nodes.append(helper.make_node("Transpose", [y], ["Y_bf"], perm=[1, 0, 2]))
            y = "Y_bf"
        if output == "flipped":
            nodes.append(helper.make_node("Slice", [y, c("st", [-1]), c("en", [np.iinfo(np.int64).min]),
                                                    c("axes", [1]), c("step", [-1])], ["out"]))
        else:
            nodes.append(helper.make_node("Identity", [y], ["out"]))
    out_shape = ["batch", "units"] if output == "state" else ["batch", "time", "units"]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, ["batch", "time", I])],
                              [helper.make_tensor_value_info("out", TP.FLOAT, out_shape)], inits + const)
    opsets = [helper.make_opsetid("", 17)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))


def x_data(seed=3):
    return np.random.default_rng(seed).normal(0, 1.5, (B, T, I)).astype(np.float32)


CASES = [
    ("LSTM", "forward", "sequence", {}),
    ("LSTM", "reverse", "flipped", {}),
    ("LSTM", "bidirectional", "sequence", {}),
    ("LSTM", "reverse", "state", {}),
    ("GRU", "forward", "sequence", {"linear_before_reset": 1}),
    ("GRU", "bidirectional", "sequence", {"linear_before_reset": 0}),
    ("GRU", "forward", "state", {"linear_before_reset": 0}),
    ("RNN", "forward", "sequence", {"activations": ["Relu"]}),
    ("RNN", "bidirectional", "sequence", {}),
    ("LSTM", "forward", "sequence", {"activations": ["HardSigmoid", "Tanh", "Tanh"],
                                     "activation_alpha": [0.2], "activation_beta": [0.5]}),
    ("LSTM", "forward", "sequence", {"activations": ["HardSigmoid", "Relu", "Relu"],
                                     "activation_alpha": [1 / 6], "activation_beta": [0.5]}),
    ("GRU", "forward", "sequence", {"activations": ["HardSigmoid", "Elu"], "activation_alpha": [0.2, 1.0],
                                    "activation_beta": [0.5], "linear_before_reset": 1}),
    ("RNN", "forward", "sequence", {"activations": ["Affine"], "activation_alpha": [1.0], "activation_beta": [0.0]}),
]


@pytest.mark.parametrize("op,direction,output,attrs", CASES)
@pytest.mark.parametrize("layout", [0, 1])
def test_hand_built_graph_matches_onnxruntime(op, direction, output, attrs, layout):
    proto = recurrent_graph(op, direction, layout, output, **attrs)
    onnx.checker.check_model(proto, full_check=True)
    model = onnx_model.from_proto(proto)
    assert [n.op for n in model.nodes] == [{"LSTM": "lstm", "GRU": "gru", "RNN": "simple_rnn"}[op]]
    want = run_onnx(recurrent_graph(op, direction, 0, output, **attrs), [x_data()])  # ORT: layout 0 only
    err = max_error(reference.run(model, [x_data()]), want)
    print(f"{op} {direction} {output} layout {layout}: max abs error {err:.2e}")
    assert err <= TOL


def test_hard_sigmoid_alpha_gives_the_keras_version():
    def ract(alpha):
        proto = recurrent_graph(activations=["HardSigmoid", "Tanh", "Tanh"], activation_alpha=[alpha],
                                activation_beta=[0.5])
        return onnx_model.from_proto(proto).nodes[0].options["recurrent_activation"]

    assert ract(0.2) == "hard_sigmoid_keras2"
    assert ract(1 / 6) == "hard_sigmoid_keras3"
    with pytest.raises(UnsupportedError, match=r"HardSigmoid\(alpha=0.3"):
        ract(0.3)


@pytest.mark.parametrize("attrs,message", [
    ({"activations": ["LeakyRelu", "Tanh", "Tanh"]}, "LeakyRelu"),
    ({"clip": 3.0}, "clip"),
    ({"input_forget": 1}, "input_forget"),
    ({"activations": ["Sigmoid", "Tanh", "Relu"]}, "g=tanh, h=relu"),
])
def test_what_keras_cannot_compute_is_refused(attrs, message):
    with pytest.raises(UnsupportedError, match=message):
        onnx_model.from_proto(recurrent_graph(**attrs))


def test_bidirectional_with_different_activations_is_refused():
    proto = recurrent_graph(direction="bidirectional", activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Relu"])
    with pytest.raises(UnsupportedError, match="directions. activations equal"):
        onnx_model.from_proto(proto)


def test_reverse_output_in_input_time_is_read_reversed_back():
    """Keras' go_backwards returns processing order: the time-aligned reverse output is that output
    reversed along time again (an IR slice of step -1), and gives what onnxruntime computes."""
    proto = recurrent_graph(direction="reverse", output="sequence")
    model = onnx_model.from_proto(proto)
    assert [n.op for n in model.nodes] == ["lstm", "slice"] and model.nodes[0].options["go_backwards"]
    assert max_error(reference.run(model, [x_data()]), run_onnx(proto, [x_data()])) <= TOL


def test_time_major_model_input_is_read_batch_first():
    """X is the graph input itself (time, batch, in): read batch-first (the IR's layout), and said so
    (tests/test_foreign_onnx.py compares the numbers on torch.onnx's time-major exports)."""
    proto = recurrent_graph()
    del proto.graph.node[0]
    proto.graph.node[0].input[0] = "x"
    model = onnx_model.from_proto(proto)
    assert "time-major in the file, read batch-first" in model.source["producer"]


def test_reading_needs_no_framework_but_onnx(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "m.onnx"
    path.write_bytes(recurrent_graph().SerializeToString())
    code = ("import sys; from converters.readers import onnx_model; onnx_model.read(sys.argv[1]); "
            "print(sorted(m for m in ('keras', 'torch', 'tensorflow', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "[]"


# -- PyTorch's exporter ------------------------------------------------------------------------------
TORCH_CASES = {
    "bilstm": ("LSTM", dict(bidirectional=True), "y"),
    "lstm_2_layers": ("LSTM", dict(num_layers=2), "y"),
    "gru_last_h": ("GRU", {}, "h"),
    "rnn_relu": ("RNN", dict(nonlinearity="relu"), "y"),
    "bigru_flipped_input": ("GRU", dict(bidirectional=True), "flip"),
    "lstm_flipped_input": ("LSTM", {}, "flip"),
}


@pytest.mark.parametrize("case", TORCH_CASES)
def test_pytorch_export_matches_pytorch(case, tmp_path):
    torch = pytest.importorskip("torch")
    kind, kwargs, what = TORCH_CASES[case]
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(I, H, batch_first=True, **kwargs)

        def forward(self, x):
            if what == "flip":
                x = torch.flip(x, dims=[1])
            y, state = self.rnn(x)
            return state[-1] if what == "h" else y

    net = Net().eval()
    x = torch.from_numpy(x_data())
    path = tmp_path / "m.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch", 1: "time"}})
    model = onnx_model.read(path)
    with torch.no_grad():
        want = net(x).numpy()
    err = max_error(reference.run(model, [x.numpy()]), [want])
    print(f"{case}: max abs error {err:.2e}")
    assert err <= TOL
