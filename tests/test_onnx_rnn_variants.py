"""ONNX ``LSTM`` / ``GRU`` / ``RNN`` nodes written every way the spec allows (onnx/defs/rnn/defs.cc), as
other tools and hand-built graphs write them: each variant is either read exactly or refused in one line.

A variant is one node built with ``onnx.helper`` and seeded numpy weights, its ``Y`` / ``Y_h`` / ``Y_c``
the graph's outputs as the spec returns them (or a chain of nodes). Read: onnxruntime runs the file
(or, where onnxruntime cannot run it, the same node written the way it can: layout 0 for layout 1,
``hidden_size`` written for its absence) and gateport's model converted to PyTorch and to ONNX (and
to Keras where marked) must give those numbers within TOL on seeded inputs. A layout-0 file's ``X``
is read batch-first and its outputs as layout 1's (README "ONNX files from other tools"). Refused:
``gateport inspect`` exits 2 with one line naming the file, the node and the attribute or input.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters import api
from converters.cli import main
from converters.runtimes import run_onnx, run_torch
from helpers import TOL, max_error

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper, TP, numpy_helper = onnx.helper, onnx.TensorProto, onnx.numpy_helper
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
B, T, I, H = 3, 5, 2, 4
NODE = "my_rec"


def _weights(op: str, dirs: int, rng, peepholes: float | None, initial: str | None, layout: int) -> dict:
    g = GATES[op]
    arr = {"W": rng.uniform(-1, 1, (dirs, g * H, I)), "R": rng.uniform(-1, 1, (dirs, g * H, H)),
           "B": rng.uniform(-1, 1, (dirs, 2 * g * H))}
    if peepholes is not None:
        arr["P"] = rng.uniform(-1, 1, (dirs, 3 * H)) * peepholes
    if initial == "const":
        for k in ["initial_h"] + (["initial_c"] if op == "LSTM" else []):
            arr[k] = rng.uniform(-1, 1, (B, dirs, H) if layout else (dirs, B, H))
    return arr


def variant(op="LSTM", direction="forward", layout=0, opset=17, outputs=("Y", "Y_h", "Y_c"), omit=(),
            weights="initializer", dtype=TP.FLOAT, dims=("time", "batch"), hidden_attr=True, peepholes=None,
            seq_lens=None, initial=None, seed=0, trailing=False, state_width=H, **attrs):
    """One recurrent node reading graph input ``X`` ([time, batch, in], layout 1 [batch, time, in]); its
    ``outputs`` (empty names for the others) are the graph's. ``omit``: optional inputs given as "";
    ``weights``: "initializer", "constant" (Constant nodes) or "input" (W, R, B graph inputs); ``seq_lens``:
    values (an initializer) or "input"; ``initial``: "const" or "input"; ``dims``: the time and batch dims
    (names: symbolic); ``trailing``: the omitted trailing inputs and outputs written as "" (else left off);
    ``state_width``: the last size the initial-state graph inputs declare."""
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    npt = {TP.FLOAT: np.float32, TP.DOUBLE: np.float64, TP.FLOAT16: np.float16}[dtype]
    arr = {k: v.astype(npt) for k, v in _weights(op, dirs, rng, peepholes, initial, layout).items()}
    if seq_lens is not None and seq_lens != "input":
        arr["sequence_lens"] = np.asarray(seq_lens, np.int32)
    given = set(arr) | ({"sequence_lens"} if seq_lens == "input" else set()) \
        | ({"initial_h", "initial_c"} if initial == "input" else set())
    order = ["W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"][:7 if op == "LSTM" else 5]
    ins = ["X"] + [k if k in given and k not in omit else "" for k in order]
    while ins[-1] == "" and not trailing:
        ins.pop()
    nodes, inits = [], []
    for k, a in arr.items():
        if k in omit:
            continue
        if weights == "input" and k in ("W", "R", "B"):
            continue
        if weights == "constant":
            nodes.append(helper.make_node("Constant", [], [k], name=f"const_{k}",
                                          value=numpy_helper.from_array(a, k)))
        else:
            inits.append(numpy_helper.from_array(a, k))
    t, b = dims
    graph_in = [helper.make_tensor_value_info("X", dtype, [b, t, I] if layout else [t, b, I])]
    if weights == "input":
        graph_in += [helper.make_tensor_value_info(k, dtype, list(arr[k].shape)) for k in ("W", "R", "B")]
    if seq_lens == "input":
        graph_in.append(helper.make_tensor_value_info("sequence_lens", TP.INT32, [b]))
    if initial == "input":
        shape = [b, dirs, state_width] if layout else [dirs, b, state_width]
        graph_in += [helper.make_tensor_value_info(k, dtype, shape)
                     for k in ["initial_h"] + (["initial_c"] if op == "LSTM" else [])]
    outs = [o if o in outputs else "" for o in ["Y", "Y_h", "Y_c"][:3 if op == "LSTM" else 2]]
    while outs[-1] == "" and not trailing:
        outs.pop()
    if layout:
        attrs["layout"] = 1
    if hidden_attr:
        attrs.setdefault("hidden_size", H)
    nodes.append(helper.make_node(op, ins, outs, name=NODE, direction=direction, **attrs))
    state = [b, dirs, H] if layout else [dirs, b, H]
    shapes = {"Y": [b, t, dirs, H] if layout else [t, dirs, b, H], "Y_h": state, "Y_c": state}
    graph_out = [helper.make_tensor_value_info(o, dtype, shapes[o]) for o in outs if o]
    return _model(helper.make_graph(nodes, "g", graph_in, graph_out, inits), opset)


def _model(graph, opset: int):
    ops = [helper.make_opsetid("", opset)]
    ir = helper.find_min_ir_version_for(ops)
    if ir < 4:  # IR 3 (opset < 9): every initializer is also a graph input, as tools of that time wrote them
        graph.input.extend(helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in graph.initializer)
    return helper.make_model(graph, opset_imports=ops, ir_version=ir)


def chain(kind: str, opset=17):
    """Two nodes in a row, as tools chain them: ``squeeze`` (LSTM -> Squeeze(Y, 1) -> GRU, time-major
    throughout; ``reverse``: the LSTM reverse) or ``bidirectional`` (bidirectional LSTM -> Transpose/Reshape
    to [time, batch, 2H] -> RNN)."""
    rng = np.random.default_rng(7)
    first_dirs = 2 if kind == "bidirectional" else 1
    a = {k: v.astype(np.float32) for k, v in _weights("LSTM", first_dirs, rng, None, None, 0).items()}
    second, width = ("RNN", 2 * H) if kind == "bidirectional" else ("GRU", H)
    g = GATES[second]
    b = {"W2": rng.uniform(-1, 1, (1, g * H, width)), "R2": rng.uniform(-1, 1, (1, g * H, H)),
         "B2": rng.uniform(-1, 1, (1, 2 * g * H))}
    inits = [numpy_helper.from_array(v, k) for k, v in a.items()]
    inits += [numpy_helper.from_array(v.astype(np.float32), k) for k, v in b.items()]
    nodes = [helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y1"], name="first", hidden_size=H,
                              direction={"bidirectional": "bidirectional", "reverse": "reverse"}.get(kind, "forward"))]
    if kind != "bidirectional":
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
        nodes.append(helper.make_node("Squeeze", ["Y1", "axis1"], ["X2"], name="squeeze"))
    else:
        inits.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape"))
        nodes += [helper.make_node("Transpose", ["Y1"], ["Y1t"], name="transpose", perm=[0, 2, 1, 3]),
                  helper.make_node("Reshape", ["Y1t", "shape"], ["X2"], name="reshape")]
    nodes.append(helper.make_node(second, ["X2", "W2", "R2", "B2"], ["Y", "Y_h"], name=NODE, hidden_size=H,
                                  **({"linear_before_reset": 1} if second == "GRU" else {})))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TP.FLOAT, ["time", "batch", I])],
                              [helper.make_tensor_value_info("Y", TP.FLOAT, ["time", 1, "batch", H]),
                               helper.make_tensor_value_info("Y_h", TP.FLOAT, [1, "batch", H])], inits)
    return _model(graph, opset)


def keras2onnx_style(op: str, output: str, bidirectional=False, initial=False, dynamic=False):
    """The node wired as keras2onnx (onnx/keras-onnx ke2onnx/simplernn.py, lstm.py) wires it: x [batch, time,
    in] with a fixed time, Transpose in; ``output`` "sequence": Transpose(Y, [2, 0, 1, 3]) and Reshape to
    [-1, time, units] (bidirectional: first Reshape(Y, [time, 2, -1, hidden])); "last": Transpose(Y_h,
    [1, 0, 2]) then Reshape [-1, hidden] (bidirectional: Flatten); "states": the sequence and each state
    Reshape'd to [-1, hidden]. ``initial``: input_h (and input_c) [batch, hidden] Reshape'd to [1, -1, hidden].
    ``dynamic``: a dynamic time, the sequence's shape computed as Concat([-1], Slice(Shape(x), 1, 2), [units]);
    the LSTM's inputs end with an empty P, as keras2onnx writes them."""
    rng = np.random.default_rng(5)
    dirs = 2 if bidirectional else 1
    arr = {k: v.astype(np.float32) for k, v in _weights(op, dirs, rng, None, None, 0).items()}
    inits = [numpy_helper.from_array(v, k) for k, v in arr.items()]
    c = {}

    def const(values):
        name = f"c{len(c)}"
        c[name] = numpy_helper.from_array(np.array(values, np.int64), name)
        return name

    states = ["input_h"] + (["input_c"] if op == "LSTM" else []) if initial else []
    nodes = [helper.make_node("Transpose", ["x"], ["X"], perm=[1, 0, 2])]
    nodes += [helper.make_node("Reshape", [k, const([1, -1, H])], [f"{k}_3d"]) for k in states]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    ins = ["X", "W", "R", "B", "", *([f"{k}_3d" for k in states] or [""] * len(outs[1:]))] + [""] * (op == "LSTM")
    nodes.append(helper.make_node(op, ins, outs, name=NODE, hidden_size=H,
                                  direction="bidirectional" if bidirectional else "forward"))
    graph_out = []
    if output in ("sequence", "states"):
        y, shape, fixed = "Y", const([-1, T, dirs * H]), const([T, 2, -1, H])
        if dynamic:
            nodes += [helper.make_node("Shape", ["x"], ["x_shape"]),
                      helper.make_node("Slice", ["x_shape", const([1]), const([2]), const([0])], ["seq_dim"]),
                      helper.make_node("Concat", [const([-1]), "seq_dim", const([dirs * H])], ["seq_shape"], axis=0),
                      helper.make_node("Concat", ["seq_dim", const([2, -1, H])], ["fixed_shape"], axis=0)]
            shape, fixed = "seq_shape", "fixed_shape"
        if bidirectional:
            nodes.append(helper.make_node("Reshape", ["Y", fixed], ["Y_fixed"]))
            y = "Y_fixed"
        nodes += [helper.make_node("Transpose", [y], ["Y_t"], perm=[2, 0, 1, 3]),
                  helper.make_node("Reshape", ["Y_t", shape], ["seq"])]
        graph_out.append(("seq", ["batch", "time" if dynamic else T, dirs * H]))
    if output == "last":
        nodes.append(helper.make_node("Transpose", ["Y_h"], ["Y_h_t"], perm=[1, 0, 2]))
        nodes.append(helper.make_node("Flatten", ["Y_h_t"], ["last"], axis=1) if bidirectional else
                     helper.make_node("Reshape", ["Y_h_t", const([-1, H])], ["last"]))
        graph_out.append(("last", ["batch", dirs * H]))
    if output == "states":
        for k in outs[1:]:
            nodes.append(helper.make_node("Reshape", [k, const([-1, H])], [f"{k}_out"]))
            graph_out.append((f"{k}_out", ["batch", H]))
    graph_in = [helper.make_tensor_value_info("x", TP.FLOAT, ["batch", "time" if dynamic else T, I])]
    graph_in += [helper.make_tensor_value_info(k, TP.FLOAT, ["batch", H]) for k in states]
    graph = helper.make_graph(nodes, "g", graph_in, [helper.make_tensor_value_info(n, TP.FLOAT, d)
                                                     for n, d in graph_out], inits + list(c.values()))
    return _model(graph, 13)


KERAS2ONNX = [("LSTM", "sequence", False, False, False), ("GRU", "last", False, False, False),
              ("RNN", "states", False, False, False), ("LSTM", "states", False, True, False),
              ("GRU", "sequence", True, False, False), ("LSTM", "last", True, False, False),
              ("RNN", "last", False, True, False), ("LSTM", "sequence", False, False, True),
              ("GRU", "sequence", True, False, True)]


@pytest.mark.parametrize("op,output,bidirectional,initial,dynamic", KERAS2ONNX)
def test_keras2onnx_wiring_reads_exactly(op, output, bidirectional, initial, dynamic, tmp_path):
    """keras2onnx's graphs take batch-first inputs and give batch-first outputs: compared as they are."""
    proto = keras2onnx_style(op, output, bidirectional, initial, dynamic)
    onnx.checker.check_model(proto, full_check=True)
    path = tmp_path / "k2o.onnx"
    onnx.save(proto, str(path))
    rng = np.random.default_rng(3)
    x = [rng.normal(0, 1.5, (B, T, I)).astype(np.float32)]
    x += [rng.uniform(-1, 1, (B, H)).astype(np.float32) for vi in proto.graph.input[1:]]
    want = run_onnx(proto, x)
    model = api.read(path)
    assert "read batch-first" not in (model.source.get("layout") or "")
    for target, outs in {"torch": run_torch(api.to_torch(model), x), "onnx": run_onnx(api.to_onnx(model), x)}.items():
        err = max_error(outs, want, target)
        print(f"{target}: max abs error {err:.2e}")
        assert err <= TOL


HS = {"activations": ["HardSigmoid", "Tanh", "Tanh"]}
#: id -> variant options: read exactly. "keras" in the id: also converted to Keras and compared.
READ = {
    "lstm_forward_keras": {},
    "gru_forward_lbr1_keras": {"op": "GRU", "linear_before_reset": 1},
    "gru_forward_lbr0": {"op": "GRU", "linear_before_reset": 0},
    "rnn_forward_keras": {"op": "RNN"},
    "lstm_bidirectional_keras": {"direction": "bidirectional"},
    "gru_bidirectional": {"op": "GRU", "direction": "bidirectional", "linear_before_reset": 1},
    "rnn_bidirectional": {"op": "RNN", "direction": "bidirectional"},
    "lstm_reverse_states": {"direction": "reverse", "outputs": ("Y_h", "Y_c")},
    "lstm_reverse_keras": {"direction": "reverse"},
    "gru_reverse_Y_layout1": {"op": "GRU", "direction": "reverse", "layout": 1, "opset": 14, "outputs": ("Y",)},
    "rnn_reverse_Y_keras": {"op": "RNN", "direction": "reverse", "outputs": ("Y",)},
    "gru_reverse_state": {"op": "GRU", "direction": "reverse", "outputs": ("Y_h",)},
    "lstm_layout1_keras": {"layout": 1, "opset": 14},
    "gru_layout1_bidirectional": {"op": "GRU", "layout": 1, "opset": 14, "direction": "bidirectional"},
    "rnn_layout1": {"op": "RNN", "layout": 1, "opset": 22},
    "lstm_Y_only": {"outputs": ("Y",)},
    "lstm_Y_h_only": {"outputs": ("Y_h",)},
    "lstm_Y_c_only_keras": {"outputs": ("Y_c",)},
    "gru_Y_only_trailing_empty": {"op": "GRU", "outputs": ("Y",), "trailing": True},
    "lstm_Y_h_only_trailing_empties": {"outputs": ("Y_h",), "trailing": True, "omit": ("B",)},
    "lstm_B_omitted": {"omit": ("B",)},
    "lstm_zero_peepholes": {"peepholes": 0.0},
    "lstm_input_forget_0": {"input_forget": 0},
    "lstm_hidden_size_absent": {"hidden_attr": False},
    "gru_constant_weights": {"op": "GRU", "weights": "constant"},
    "lstm_fixed_dims": {"dims": (T, B)},
    "lstm_full_sequence_lens": {"dims": (T, B), "seq_lens": [T] * B},
    "lstm_initial_states_input_keras": {"initial": "input"},
    "gru_initial_state_input_bidirectional_keras": {"op": "GRU", "initial": "input", "direction": "bidirectional"},
    "lstm_initial_states_input_layout1": {"initial": "input", "layout": 1, "opset": 14, "direction": "bidirectional"},
    "rnn_initial_state_input_reverse": {"op": "RNN", "initial": "input", "direction": "reverse", "outputs": ("Y_h",)},
    "lstm_opset7": {"opset": 7},
    "gru_opset7": {"op": "GRU", "opset": 7},
    "rnn_opset9": {"op": "RNN", "opset": 9},
    "lstm_opset13": {"opset": 13},
    "lstm_opset14": {"opset": 14},
    "gru_opset22": {"op": "GRU", "opset": 22},
    "lstm_hard_sigmoid_keras2_keras": {**HS, "activation_alpha": [0.2], "activation_beta": [0.5]},
    "lstm_hard_sigmoid_default": HS,
    "lstm_hard_sigmoid_keras3": {**HS, "activation_alpha": [1 / 6], "activation_beta": [0.5]},
    "lstm_relu": {"activations": ["Sigmoid", "Relu", "Relu"]},
    "lstm_lowercase_names": {"activations": ["sigmoid", "tanh", "TANH"]},
    "lstm_bidirectional_activations": {"direction": "bidirectional",
                                       "activations": ["HardSigmoid", "Relu", "Relu"] * 2},
    "rnn_leaky_relu_0.2": {"op": "RNN", "activations": ["LeakyRelu"], "activation_alpha": [0.2]},
    "rnn_affine_1_0": {"op": "RNN", "activations": ["Affine"], "activation_alpha": [1.0], "activation_beta": [0.0]},
    "rnn_elu_default": {"op": "RNN", "activations": ["Elu"]},
    "rnn_softsign": {"op": "RNN", "activations": ["Softsign"]},
    "gru_softplus": {"op": "GRU", "activations": ["Sigmoid", "Softplus"]},
    "rnn_sigmoid": {"op": "RNN", "activations": ["Sigmoid"]},
    "gru_alpha_order": {"op": "GRU", "activations": ["HardSigmoid", "Elu"], "activation_alpha": [0.2, 1.0],
                        "activation_beta": [0.5]},
}
CHAINS = ["squeeze", "reverse", "bidirectional"]


def _ort_twin(options: dict):
    """The variant onnxruntime can run: its CPU kernels need layout 0 (lstm_base.h, deep_cpu_gru.h,
    rnn.h "Batchwise recurrent operations (layout == 1) are not supported") and hidden_size."""
    return variant(**{**options, "layout": 0, "hidden_attr": True})


def _batch_first(outputs: list[np.ndarray]) -> list[np.ndarray]:
    """Layout-0 Y [T, dirs, B, H] / states [dirs, B, H] as gateport reads them (layout 1's)."""
    return [y.transpose(2, 0, 1, 3) if y.ndim == 4 else y.transpose(1, 0, 2) for y in outputs]


def _inputs(proto) -> list[np.ndarray]:
    """Seeded batch-first inputs: x [batch, time, in], then any initial states [batch, dirs, hidden]."""
    rng = np.random.default_rng(11)
    x = [rng.normal(0, 1.5, (B, T, I)).astype(np.float32)]
    dims = {vi.name: vi.type.tensor_type.shape.dim for vi in proto.graph.input}
    return x + [rng.uniform(-1, 1, (B, d[0].dim_value or d[1].dim_value, H)).astype(np.float32)
                for name, d in dims.items() if name.startswith("initial")]  # the dirs axis: the fixed one


def check_read(proto, twin, tmp_path, keras: bool) -> None:
    """gateport's model of ``proto`` converted to PyTorch and ONNX (and Keras) gives what onnxruntime
    computes on ``twin`` (the file itself, or its runnable twin: layout 0, inputs [time|dirs, batch, ...])."""
    path = tmp_path / "variant.onnx"
    onnx.save(proto, str(path))
    x = _inputs(proto)  # batch-first, as gateport's model takes them
    want = _batch_first(run_onnx(twin, [a.transpose(1, 0, 2) for a in x]))
    model = api.read(path)
    assert len(model.outputs) == len(want)
    got = {"torch": run_torch(api.to_torch(model), x), "onnx": run_onnx(api.to_onnx(model), x)}
    if keras:
        from converters.runtimes import run_keras

        api.convert(model, "keras", tmp_path / "m.keras")
        got["keras"] = run_keras(tmp_path / "m.keras", x)
    for target, outs in got.items():
        err = max_error(outs, want, target)
        print(f"{target}: max abs error {err:.2e}")
        assert err <= TOL, target


@pytest.mark.parametrize("name", list(READ))
def test_variant_reads_exactly(name, tmp_path):
    options = READ[name]
    proto = variant(**options)
    onnx.checker.check_model(proto, full_check=True)
    check_read(proto, _ort_twin(options), tmp_path, "keras" in name)


@pytest.mark.parametrize("kind", CHAINS)
def test_chained_nodes_read_exactly(kind, tmp_path):
    proto = chain(kind)
    onnx.checker.check_model(proto, full_check=True)
    check_read(proto, proto, tmp_path, kind == "bidirectional")


#: id -> (variant options, what the one-line refusal names besides the file and the node; a tuple: what
#: it names instead of the node, for element types refused where the graph input or initializer is read)
REFUSED = {
    "clip": ({"clip": 3.0}, "clip=3"),
    "input_forget_1": ({"input_forget": 1}, "input_forget=1"),
    "peepholes": ({"peepholes": 1.0}, "P (peepholes)"),
    "sequence_lens_varying": ({"seq_lens": [5, 3, 1], "dims": (T, B)}, "constant [5, 3, 1]"),
    "sequence_lens_full_symbolic_time": ({"seq_lens": [T] * B}, "the input's steps not fixed"),
    "initial_h_constant": ({"initial": "const"}, "found 'initial_h': a nonzero constant"),
    "initial_h_input_wrong_hidden": ({"initial": "input", "state_width": H + 3},
                                     "a [1, batch, 4] tensor, or stacked (Unsqueeze/Concat on axis 0) from [batch, "
                                     "hidden] tensors, found 'initial_h': a tensor of shape [1, 'batch', 7]"),
    "weights_input": ({"weights": "input"}, "expected W as an initializer or constant, found 'W'"),
    "float64": ({"dtype": TP.DOUBLE}, ("input 'X'", "element type 11")),
    "float16": ({"dtype": TP.FLOAT16}, ("input 'X'", "element type 10")),
    "leaky_relu_default": ({"op": "RNN", "activations": ["LeakyRelu"]}, "LeakyRelu(alpha=0.01)"),
    "thresholded_relu": ({"op": "RNN", "activations": ["ThresholdedRelu"], "activation_alpha": [1.0]},
                         "ThresholdedRelu(alpha=1)"),
    "scaled_tanh": ({"op": "RNN", "activations": ["ScaledTanh"], "activation_alpha": [2.0],
                     "activation_beta": [1.0]}, "ScaledTanh(alpha=2, beta=1)"),  # (1, 1) is tanh: read
    "affine_without_alpha": ({"op": "RNN", "activations": ["Affine"]},
                             "activation_alpha/activation_beta values for Affine"),
    "hard_sigmoid_other": ({**HS, "activation_alpha": [0.3], "activation_beta": [0.5]}, "HardSigmoid(alpha=0.3"),
    "elu_alpha": ({"op": "RNN", "activations": ["Elu"], "activation_alpha": [0.5]}, "Elu(alpha=0.5)"),
    "lstm_g_h_differ": ({"activations": ["Sigmoid", "Tanh", "Relu"]}, "g=tanh, h=relu"),
    "directions_differ": ({"direction": "bidirectional", "activations": ["Sigmoid", "Tanh", "Tanh",
                                                                       "Sigmoid", "Relu", "Relu"]},
                          "directions' activations equal"),
    "unknown_activation": ({"op": "RNN", "activations": ["Swish"]}, "'Swish'"),
    "direction_unknown": ({"direction": "sideways"}, "'sideways'"),
    "hidden_size_not_the_weights": ({"hidden_size": H + 1}, "W: expected shape (1, 20, 'input_size') (hidden_size 5"),
    "layout_before_opset14": ({"layout": 1, "opset": 13}, "has no attribute 'layout'"),
    "opset6_output_sequence": ({"opset": 6}, "LSTM-1 (attribute output_sequence)"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_variant_is_refused_in_one_line(name, tmp_path, capsys):
    options, named = REFUSED[name]
    path = tmp_path / f"{name}.onnx"
    onnx.save(variant(**options), str(path))
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and err.startswith("gateport: error: ") and str(path) in err
    assert all(n in err for n in named) if isinstance(named, tuple) else NODE in err and named in err


@pytest.mark.parametrize("dtype,raw", [(np.float16, True), (np.float16, False), (np.float64, True)])
def test_stored_weights_cast_to_float32_read_exactly(dtype, raw, tmp_path):
    """Weights stored as float16 (gateport's own ``--fp16`` files; raw_data, or int32_data holding the bit
    patterns) or float64 and Cast to float32 before the node: the node computes in float32 with the cast
    weights, exactly what the file computes; a float16/float64 node itself stays refused (above)."""
    proto = variant(direction="bidirectional")
    for init in list(proto.graph.initializer):
        half = numpy_helper.to_array(init).astype(dtype)
        stored = numpy_helper.from_array(half, init.name + "_stored") if raw else \
            helper.make_tensor(init.name + "_stored", TP.FLOAT16, half.shape, half.ravel().tolist())
        proto.graph.initializer.remove(init)
        proto.graph.initializer.append(stored)
        proto.graph.node.insert(0, helper.make_node("Cast", [stored.name], [init.name], to=TP.FLOAT))
    assert bool(proto.graph.initializer[0].raw_data) == raw
    onnx.checker.check_model(proto, full_check=True)
    check_read(proto, proto, tmp_path, False)


def test_gateport_reads_its_own_fp16_onnx(tmp_path):
    """``convert --to onnx --fp16``'s file read back: the same model as the float32 file with rounded weights."""
    path = tmp_path / "variant.onnx"
    onnx.save(variant(op="GRU", linear_before_reset=1), str(path))
    half = tmp_path / "half.onnx"
    assert main(["convert", str(path), "--to", "onnx", "-o", str(half), "--fp16", "-q"]) == 0
    model = api.read(half)
    x = _inputs(variant())
    assert max_error(run_torch(api.to_torch(model), x), run_onnx(onnx.load(str(half)), x), "torch") <= TOL


STATES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "onnx_rnn_states"
STATES = json.loads((STATES_DIR / "manifest.json").read_text())["models"]
STATE_FILES = [(m["name"], tool) for m in STATES for tool in m["files"]]


@pytest.mark.parametrize("name,exporter", STATE_FILES, ids=[f"{n}-{t}" for n, t in STATE_FILES])
def test_torch_exporters_with_initial_states_match_pytorch(name, exporter, tmp_path):
    """fixtures/make_onnx_rnn_states.py: both torch.onnx exporters' files of modules called with h0 (c0) and
    returning h_n (c_n), read and converted to PyTorch (and Keras for the TorchScript ones), give PyTorch's
    outputs; states are read batch-first ([batch, layers * dirs, hidden], as ``model.source`` says)."""
    entry = next(m for m in STATES if m["name"] == name)
    data = np.load(STATES_DIR / f"{name}.npz")
    n_in = len([k for k in data.files if k.startswith("in:")])
    feed = [data["in:0"]] + [data[f"in:{k}"].transpose(1, 0, 2) for k in range(1, n_in)]
    want = [data["out:0"]] + [data[f"out:{k}"].transpose(1, 0, 2) for k in range(1, len(data.files) - n_in)]
    model = api.read(STATES_DIR / entry["files"][exporter])
    assert "read batch-first" in model.source["layout"]
    got = {"torch": run_torch(api.to_torch(model), feed)}
    if exporter == "torchscript":
        from converters.runtimes import run_keras

        api.convert(model, "keras", tmp_path / "m.keras")
        got["keras"] = run_keras(tmp_path / "m.keras", feed)
    for target, outs in got.items():
        err = max_error(outs, want, target)
        print(f"{name} {exporter} {target}: max abs error {err:.2e}")
        assert err <= TOL


def test_an_output_computed_from_a_relaid_state_is_named_batch_first(tmp_path):
    """Relu(Y_h) as the graph's output: gateport returns it batch-first like Y_h itself, and the layout note
    names that output (it named the intermediate Y_h, which no caller sees)."""
    proto = variant(op="GRU", outputs=("Y_h",), linear_before_reset=1)
    proto.graph.node[-1].output[1] = "h"
    proto.graph.node.append(helper.make_node("Relu", ["h"], ["Y_h"], name="relu"))
    onnx.checker.check_model(proto, full_check=True)
    check_read(proto, proto, tmp_path, keras=False)
    model = api.read(tmp_path / "variant.onnx")
    assert "outputs 'Y_h' (" in model.source["layout"] and "'h'" not in model.source["layout"]


def stacked_split(form: str = "input", opset: int = 13, sizes=(1, 1), axis: int = 0, stacked: int = 2):
    """Two LSTM layers (the second reading the first's Y squeezed) whose initial states come from graph inputs
    ``initial_h`` / ``initial_c`` ``[stacked, batch, hidden]`` through one ``Split`` each, as onnxruntime's
    GatherSliceToSplitFusion leaves torch's per-layer Slices of ``h0`` / ``c0``: the sizes given as the
    ``split`` input (``form`` "input", Split-13 on), the ``split`` attribute ("attribute", before 13), or as
    ``num_outputs`` ("num_outputs", Split-18)."""
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(np.array([1], np.int64), "axis1")] if opset >= 13 else []
    nodes = []
    for k in ("h", "c"):
        extra = {"split": list(sizes)} if form == "attribute" else {"num_outputs": len(sizes)} \
            if form == "num_outputs" else {}
        ins = [f"initial_{k}"] + ([f"sizes_{k}"] if form == "input" else [])
        if form == "input":
            inits.append(numpy_helper.from_array(np.array(sizes, np.int64), f"sizes_{k}"))
        nodes.append(helper.make_node("Split", ins, [f"{k}{n}" for n in range(len(sizes))], name=f"split_{k}",
                                      axis=axis, **extra))
    x = "X"
    for n, width in enumerate((I, H)):
        w = {"W": (1, 4 * H, width), "R": (1, 4 * H, H), "B": (1, 8 * H)}
        inits += [numpy_helper.from_array(rng.uniform(-1, 1, shape).astype(np.float32), f"{key}{n}")
                  for key, shape in w.items()]
        nodes.append(helper.make_node("LSTM", [x, f"W{n}", f"R{n}", f"B{n}", "", f"h{n}", f"c{n}"],
                                      [f"Y{n}", "Y_h" if n else ""], name=NODE if n else "first", hidden_size=H))
        if not n:
            nodes.append(helper.make_node("Squeeze", ["Y0", "axis1"], ["X1"], name="squeeze") if opset >= 13 else
                         helper.make_node("Squeeze", ["Y0"], ["X1"], name="squeeze", axes=[1]))
            x = "X1"
    states = [helper.make_tensor_value_info(f"initial_{k}", TP.FLOAT, [stacked, "batch", H]) for k in ("h", "c")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TP.FLOAT, ["time", "batch", I]),
                                           *states],
                              [helper.make_tensor_value_info("Y1", TP.FLOAT, ["time", 1, "batch", H]),
                               helper.make_tensor_value_info("Y_h", TP.FLOAT, [1, "batch", H])], inits)
    return _model(graph, opset)


@pytest.mark.parametrize("form,opset", [("input", 13), ("input", 18), ("attribute", 11), ("num_outputs", 18)])
def test_split_of_stacked_initial_states_reads_as_its_slices(form, opset, tmp_path):
    """A Split on axis 0 of stacked states ``[layers, batch, hidden]`` into each layer's initial_h / initial_c
    (onnxruntime EXTENDED's fusion of torch's per-layer Slices) reads as those Slices: PyTorch, ONNX and Keras
    give what onnxruntime computes on the file."""
    proto = stacked_split(form, opset)
    onnx.checker.check_model(proto, full_check=True)
    check_read(proto, proto, tmp_path, keras=True)


SPLIT_REFUSED = {
    "sizes_not_the_declared_axis": ({"sizes": (1, 2)}, "split_h",
                                    "one non-negative size per output (2) summing to the axis' declared 2, found [1, 2]"),
    "negative_size": ({"sizes": (3, -1)}, "split_h", "summing to the axis' declared 2, found [3, -1]"),
    "other_axis": ({"axis": 2, "sizes": (2, 2)}, "split_h", "expected Split on axis 0 of stacked states"),
    # a part of two rows for a one-direction layer: refused where the layer reads it (the part's IR name quoted)
    "parts_not_the_directions": ({"sizes": (2, 1), "stacked": 3}, "first",
                                 ("expected initial_h absent, zeros, a [1, batch, 4] tensor",
                                  ": a tensor of shape [2, 'batch', 4]")),
}


@pytest.mark.parametrize("name", list(SPLIT_REFUSED))
def test_bad_split_of_stacked_states_is_refused_in_one_line(name, tmp_path, capsys):
    options, node, named = SPLIT_REFUSED[name]
    path = tmp_path / f"{name}.onnx"
    onnx.save(stacked_split(**options), str(path))
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and err.startswith("gateport: error: ") and str(path) in err
    assert f"ONNX node '{node}'" in err and all(n in err for n in ((named,) if isinstance(named, str) else named))
