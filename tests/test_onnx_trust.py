"""ONNX files from strangers: old opsets read by their own semantics, hostile files refused in one line.

Every model is built here with ``onnx.helper``. What gateport accepts is converted (``--to torch``
through :func:`converters.api.convert`, and the IR through the numpy reference) and compared with
onnxruntime running the ORIGINAL file (onnxruntime implements each op by its version) at <= 1e-5.
What it refuses exits 2 with one line ``gateport: error: <file>: ...`` from ``gateport convert``.
"""
from __future__ import annotations

import numpy as np
import pytest

from converters import api, reference, runtimes
from converters.cli import main
from converters.readers import onnx_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper, TP = onnx.helper, onnx.TensorProto
from helpers import TOL  # noqa: E402
RNG = np.random.default_rng(0)


def tensor(name: str, a) -> "onnx.TensorProto":
    a = np.asarray(a)
    return helper.make_tensor(name, {np.dtype("float32"): TP.FLOAT, np.dtype("float64"): TP.DOUBLE,
                                     np.dtype("int64"): TP.INT64}[a.dtype], a.shape, a.ravel().tolist())


def model(nodes, shape, opset, inits=(), out_shape=None, name="g"):
    """x (float, ``shape``) -> ``nodes`` -> y, at ``opset`` (the oldest IR version that opset allows)."""
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TP.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TP.FLOAT, out_shape)], list(inits))
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True)
    return proto


def save(proto, tmp_path, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())  # not onnx.save: hostile files are written as they are
    return path


def assert_matches_onnxruntime(tmp_path, proto, x):
    """gateport's torch conversion and the IR reference both match onnxruntime on the original file."""
    path = save(proto, tmp_path)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got_ir = reference.run(onnx_model.read(path), [x])[0]
    out = api.convert(path, "torch", tmp_path / "torch")
    got_torch = runtimes.run_torch(out, [x])[0]
    assert got_ir.shape == want.shape and got_torch.shape == want.shape
    err = max(np.max(np.abs(got_ir - want)), np.max(np.abs(got_torch - want)))
    print(f"max abs error vs onnxruntime: {err:.1e}")
    assert err <= TOL


def assert_refused(capsys, tmp_path, path, *expect):
    out_dir = tmp_path / "out"
    code = main(["convert", str(path), "--to", "torch", "-o", str(out_dir)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("gateport: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(path) in err, err
    for e in expect:
        assert e in err, err
    assert not out_dir.exists()
    return err


def x_of(*shape):
    return RNG.normal(0, 2, shape).astype(np.float32)


# -- Softmax by version ------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [7, 11])
def test_old_softmax_default_axis_is_over_time_and_channels(tmp_path, opset):
    """Softmax-1/-11 without axis: axis 1 of the input coerced to 2-D [N, T*C] (one softmax over T*C)."""
    proto = model([helper.make_node("Softmax", ["x"], ["y"])], ["batch", 4, 3], opset)
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 4, 3))


def test_old_softmax_axis_2_of_rank_4_with_a_dynamic_axis_before_it(tmp_path):
    proto = model([helper.make_node("Softmax", ["x"], ["y"], axis=2)], ["batch", "time", 2, 3], 11)
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 5, 2, 3))


@pytest.mark.parametrize("opset,axis,shape", [(11, None, [2, 4]), (11, -1, [2, 4, 3]), (13, None, [2, 4, 3]),
                                               (13, 2, [2, 4, 3])])
def test_softmax_on_the_last_axis(tmp_path, opset, axis, shape):
    kwargs = {} if axis is None else {"axis": axis}
    proto = model([helper.make_node("Softmax", ["x"], ["y"], **kwargs)], ["batch", *shape[1:]], opset)
    assert_matches_onnxruntime(tmp_path, proto, x_of(*shape))


def test_old_softmax_over_axes_of_unknown_size_is_refused(capsys, tmp_path):
    proto = model([helper.make_node("Softmax", ["x"], ["y"])], ["batch", "time", "features"], 11)
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "Softmax-11", "axes 1..2 together")


def test_softmax_13_over_the_batch_axis_is_refused(capsys, tmp_path):
    proto = model([helper.make_node("Softmax", ["x"], ["y"], axis=0)], ["batch", 4, 3], 13)
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "not over the batch axis")


@pytest.mark.parametrize("axis", [1, -2])
def test_softmax_13_over_time_of_a_rank_3_tensor(tmp_path, axis):
    """Softmax-13 over axis 1 of (batch, time, features) (torch attention pooling, softmax(score, dim=1)):
    read as Permute, softmax, Permute back."""
    proto = model([helper.make_node("Softmax", ["x"], ["y"], axis=axis)], ["batch", 4, 3], 13)
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 4, 3))


# -- old broadcasting and other old op versions -------------------------------------------------------
@pytest.mark.parametrize("op", ["Add", "Mul", "Sub", "Div"])
def test_opset_6_broadcast_axis_is_refused(capsys, tmp_path, op):
    proto = model([helper.make_node(op, ["x", "c"], ["y"], broadcast=1, axis=1)], ["batch", 4, 3], 6,
                  [tensor("c", np.ones(4, np.float32))])
    assert_refused(capsys, tmp_path, save(proto, tmp_path), f"{op}-6", "opset 6", "broadcast")


@pytest.mark.parametrize("op,attrs,inputs", [
    ("Reshape", {"shape": [0, -1]}, ["x"]),
    ("Cast", {"to": "FLOAT"}, ["x"]),
    ("Concat", {}, ["x", "x"]),
])
def test_op_versions_with_another_meaning_are_refused(capsys, tmp_path, op, attrs, inputs):
    proto = model([helper.make_node(op, inputs, ["y"], **attrs)], ["batch", 4, 3], 3)
    assert_refused(capsys, tmp_path, save(proto, tmp_path), f"{op}-", "opset 3")


def test_slice_1_attributes_are_read(tmp_path):
    """Slice-1 (opset < 10) takes starts/ends/axes as attributes: here a constant's first 3 values."""
    w, b = x_of(2, 3), x_of(5)
    proto = model([helper.make_node("Slice", ["b"], ["b3"], starts=[0], ends=[3], axes=[0]),
                   helper.make_node("MatMul", ["x", "w"], ["xw"]),
                   helper.make_node("Add", ["xw", "b3"], ["y"])], ["batch", 2], 9,
                  [tensor("w", w), tensor("b", b)])
    assert_matches_onnxruntime(tmp_path, proto, x_of(4, 2))


def test_max_of_three_inputs(tmp_path):
    proto = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Sigmoid", ["x"], ["s"]),
                   helper.make_node("Max", ["x", "r", "s"], ["y"])], ["batch", 4], 13)
    assert_matches_onnxruntime(tmp_path, proto, x_of(3, 4))


def test_unknown_attribute_for_the_opset_is_refused(capsys, tmp_path):
    proto = model([helper.make_node("Relu", ["x"], ["y"], alpha=0.5)], ["batch", 4], 13)
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "no attribute 'alpha'")


def test_op_newer_than_the_opset_is_refused(capsys, tmp_path):
    proto = model([helper.make_node("CumSum", ["x", "ax"], ["y"])], ["batch", 4], 10,
                  [tensor("ax", np.asarray(1, np.int64))])
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "CumSum does not exist at opset 10")


# -- constants folded into batch_norm / dense only when exact ----------------------------------------
@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_scalar_constant_on_a_known_last_axis(tmp_path, op):
    proto = model([helper.make_node(op, ["x", "c"], ["y"])], ["batch", "time", 3], 13,
                  [tensor("c", np.asarray(1.5, np.float32))])
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 4, 3))


def test_per_channel_scale_and_shift_on_the_middle_axis(tmp_path):
    """Mul by (4, 1) then Add (4, 1): one number per channel of axis 1 (what the writer emits for axis -2)."""
    proto = model([helper.make_node("Mul", ["x", "s"], ["xs"]), helper.make_node("Add", ["xs", "b"], ["y"])],
                  ["batch", 4, "time"], 13, [tensor("s", x_of(4, 1)), tensor("b", x_of(4, 1))])
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 4, 5))


def test_scale_and_shift_on_different_axes(tmp_path):
    proto = model([helper.make_node("Mul", ["x", "s"], ["xs"]), helper.make_node("Add", ["xs", "b"], ["y"])],
                  ["batch", 4, 3], 13, [tensor("s", x_of(3)), tensor("b", x_of(4, 1))])
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 4, 3))


def test_matmul_bias_of_one_number(tmp_path):
    proto = model([helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
                  ["batch", 3], 13, [tensor("w", x_of(3, 2)), tensor("b", np.asarray([0.5], np.float32))])
    assert_matches_onnxruntime(tmp_path, proto, x_of(4, 3))


@pytest.mark.parametrize("shape,c", [
    (["batch", 4, 3], np.ones((4, 3), np.float32)),      # (T, C): not one number per channel
    (["batch", 3], np.ones((2, 1, 3), np.float32)),      # adds an axis by broadcasting
    (["batch", 4, 3], np.ones((5,), np.float32)),        # 5 numbers for 3 channels
])
def test_constants_no_batch_norm_computes_are_refused(capsys, tmp_path, shape, c):
    proto = model([helper.make_node("Add", ["x", "c"], ["y"])], shape, 13, [tensor("c", np.asarray(c))])
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "one number per channel")


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_one_number_on_a_last_axis_of_unknown_size_reads(tmp_path, op):
    """A scalar on a last axis of unknown size (attention's scores [batch, T, T] scaled) is the IR's element-wise
    ``scalar`` op (refused before: no batch_norm computes it without the channel count)."""
    proto = model([helper.make_node(op, ["x", "c"], ["y"])], ["batch", 4, "features"], 13,
                  [tensor("c", np.asarray(np.float32(2.5)))])
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 4, 3))


def test_gemm_bias_per_row_is_refused(capsys, tmp_path):
    proto = model([helper.make_node("Gemm", ["x", "w", "c"], ["y"])], [4, 3], 13,
                  [tensor("w", x_of(3, 2)), tensor("c", x_of(4, 2))])
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "one float per unit")


# -- recurrent nodes against the spec -------------------------------------------------------------------
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
H, I = 3, 2


def recurrent(op="LSTM", direction="forward", opset=17, w_dtype=np.float32, r_hidden=H, **attrs):
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    inits = [tensor("W", RNG.uniform(-1, 1, (dirs, g * H, I)).astype(w_dtype)),
             tensor("R", RNG.uniform(-1, 1, (dirs, g * r_hidden, r_hidden)).astype(w_dtype))]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node(op, ["xt", "W", "R"], ["Y"], direction=direction, **attrs),
             helper.make_node("Transpose", ["Y"], ["Yb"], perm=[2, 0, 1, 3]),
             helper.make_node("Reshape", ["Yb", "shape"], ["y"])]
    inits.append(tensor("shape", np.asarray([0, 0, -1], np.int64)))
    return model(nodes, ["batch", "time", I], opset, inits)


@pytest.mark.parametrize("op,direction", [("LSTM", "bidirectional"), ("GRU", "bidirectional"), ("RNN", "forward")])
def test_valid_recurrent_node_matches_onnxruntime(tmp_path, op, direction):
    proto = recurrent(op, direction, hidden_size=H)
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 5, I))


@pytest.mark.parametrize("op,acts,want", [
    ("LSTM", ["Sigmoid", "Tanh", "Tanh"], "expected 6 activations"),
    ("GRU", ["Sigmoid", "Tanh"], "expected 4 activations"),
    ("RNN", ["Tanh"], "expected 2 activations"),
])
def test_bidirectional_needs_activations_for_both_directions(capsys, tmp_path, op, acts, want):
    proto = recurrent(op, "bidirectional", hidden_size=H, activations=acts)
    assert_refused(capsys, tmp_path, save(proto, tmp_path), want)


@pytest.mark.parametrize("attrs,kwargs,want", [
    ({"hidden_size": 4}, {}, "hidden_size 4"),
    ({"hidden_size": -3}, {}, "hidden_size a positive integer"),
    ({"hidden_size": 0}, {}, "hidden_size a positive integer"),
    ({}, {"r_hidden": 2}, "W: expected shape"),
    ({"hidden_size": H}, {"w_dtype": np.float64}, "expected float32 weights"),
    ({"hidden_size": H, "linear_before_reset": 1}, {}, "no attribute 'linear_before_reset'"),
    ({"hidden_size": H}, {"opset": 6}, "LSTM-1"),
    ({"hidden_size": H, "layout": 0}, {"opset": 13}, "no attribute 'layout'"),
    ({"hidden_size": H, "direction": "sideways"}, {}, "forward|reverse|bidirectional"),
])
def test_recurrent_nodes_against_the_spec(capsys, tmp_path, attrs, kwargs, want):
    attrs = dict(attrs)
    direction = attrs.pop("direction", "forward")
    proto = recurrent("LSTM", direction, **kwargs, **attrs)
    assert_refused(capsys, tmp_path, save(proto, tmp_path), want)


# -- tensors whose sizes lie ------------------------------------------------------------------------------
def relu_model(*inits, opset=13):
    return model([helper.make_node("Relu", ["x"], ["y"])], ["batch", 3], opset, inits)


def raw_tensor(name, dims, raw: bytes, data_type=TP.FLOAT):
    t = TP()
    t.name, t.data_type = name, data_type
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def float_tensor(name, dims, values):
    t = TP()
    t.name, t.data_type = name, TP.FLOAT
    t.dims.extend(dims)
    t.float_data.extend(values)
    return t


@pytest.mark.parametrize("init,want", [
    (raw_tensor("w", [4, 4], b"\0" * 12), "need 64 bytes of raw_data, found 12"),
    (float_tensor("w", [3], [1.0, 2.0]), "hold 3 values, found 2"),
    (raw_tensor("w", [-3, 4], b""), "non-negative"),
    (raw_tensor("w", [1 << 20, 1 << 20], b""), "budget"),
    (raw_tensor("w", [2], b"ab", data_type=TP.STRING), "element type"),
])
def test_initializer_sizes_are_checked_first(capsys, tmp_path, init, want):
    assert_refused(capsys, tmp_path, save(relu_model(init), tmp_path), want, "'w'")


def external(name, dims, **entries):
    t = TP()
    t.name, t.data_type, t.data_location = name, TP.FLOAT, TP.EXTERNAL
    t.dims.extend(dims)
    for k, v in entries.items():
        t.external_data.add(key=k, value=str(v))
    return t


def test_external_data_inside_the_folder_is_read(tmp_path):
    w = x_of(3, 2)
    (tmp_path / "w.bin").write_bytes(b"\0" * 8 + w.tobytes())
    proto = model([helper.make_node("MatMul", ["x", "w"], ["y"])], ["batch", 3], 13,
                  [external("w", [3, 2], location="w.bin", offset=8, length=24)])
    assert_matches_onnxruntime(tmp_path, proto, x_of(4, 3))


@pytest.mark.parametrize("entries,want", [
    ({"location": "w\0.bin"}, "relative path inside"),
    ({"location": "../w.bin"}, "outside the model's folder"),
    ({"location": "/etc/passwd"}, "relative path inside"),
    ({"location": "missing.bin"}, "missing"),
    ({"location": "w.bin", "offset": 20}, "at offset 20 of a 24-byte file"),
    ({"location": "w.bin", "length": 12}, "found length 12"),
    ({"location": "w.bin", "offset": -1}, "non-negative external data offset"),
])
def test_external_data_is_confined_and_checked(capsys, tmp_path, entries, want):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(np.zeros(6, np.float32).tobytes())
    (tmp_path / "w.bin").write_bytes(np.zeros(6, np.float32).tobytes())
    path = save(relu_model(external("w", [3, 2], **entries)), folder)
    assert_refused(capsys, tmp_path, path, want)


# -- files that are not ONNX, and hostile graphs ---------------------------------------------------------
@pytest.mark.parametrize("data,want", [
    (b"", ""),                                                   # not even sent to the ONNX reader
    (b"\x08\x07", "no graph"),                                     # a valid message, but not a model
    (b"\x08\x07not an onnx model at all\n" * 10, "not an ONNX model"),
    (b"\x08" + bytes(range(256)) * 8, "not an ONNX model"),
    (b"\x08" + np.random.default_rng(1).bytes(4096), "not an ONNX model"),
])
def test_bytes_that_are_not_onnx(capsys, tmp_path, data, want):
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    assert_refused(capsys, tmp_path, path, want)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    def varint(n):
        out = b""
        while True:
            out += bytes([n & 0x7F | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_deeply_nested_subgraphs(capsys, tmp_path):
    """If-nodes nested 200 deep (written byte by byte: onnx.helper itself refuses to build them):
    refused in one line, not a RecursionError."""
    graph = b""
    for _ in range(200):  # GraphProto.node(1) -> NodeProto.attribute(5) -> AttributeProto.g(6) -> GraphProto
        attribute = _field(1, b"then_branch") + bytes([20 << 3, onnx.AttributeProto.GRAPH]) + _field(6, graph)
        graph = _field(1, _field(4, b"If") + _field(5, attribute))
    proto = model([helper.make_node("Relu", ["x"], ["y"])], ["batch", 3], 13)
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString() + _field(7, graph))  # merged into the first graph
    assert_refused(capsys, tmp_path, path)


def test_hostile_names_reach_messages_escaped(capsys, tmp_path):
    name = "evil\n\x1b[31mname\u202e" + "x" * 500
    proto = model([helper.make_node("Erf", ["x"], ["y"], name=name)], ["batch", 3], 13, name=name)
    err = assert_refused(capsys, tmp_path, save(proto, tmp_path), "Erf")
    assert "\x1b" not in err and "\u202e" not in err and "x" * 200 not in err


def test_negative_input_dimension(capsys, tmp_path):
    proto = model([helper.make_node("Relu", ["x"], ["y"])], ["batch", -4], 13)
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "non-negative")


@pytest.mark.parametrize("nodes,inits,want", [
    ([helper.make_node("ConstantOfShape", ["s"], ["big"], value=helper.make_tensor("v", TP.FLOAT, [1], [1.0])),
      helper.make_node("Add", ["x", "big"], ["y"])], [tensor("s", np.asarray([1 << 20, 1 << 20], np.int64))],
     "budget"),
    ([helper.make_node("Add", ["a", "b"], ["big"]), helper.make_node("Add", ["x", "big"], ["y"])],
     [tensor("a", np.zeros((1 << 14, 1), np.float32)), tensor("b", np.zeros((1, 1 << 14), np.float32))], "budget"),
    ([helper.make_node("Gather", ["a", "i"], ["g"]), helper.make_node("Add", ["x", "g"], ["y"])],
     [tensor("a", np.zeros((2, 3), np.float32)), tensor("i", np.asarray([7], np.int64))], "IndexError"),
])
def test_constant_folding_is_bounded_and_one_line(capsys, tmp_path, nodes, inits, want):
    err = assert_refused(capsys, tmp_path, save(model(nodes, ["batch", 3], 13, inits), tmp_path), want)
    assert "ONNX node" in err


def test_empty_activations_list_is_refused(capsys, tmp_path):
    """An ``activations`` attribute given empty is not the default (onnxruntime refuses it too)."""
    proto = recurrent("RNN", hidden_size=H)
    proto.graph.node[1].attribute.append(helper.make_attribute("activations", [], attr_type=onnx.AttributeProto.STRINGS))
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "expected 1 activations")


def test_empty_required_input_is_refused(capsys, tmp_path):
    proto = recurrent("LSTM", hidden_size=H)
    proto.graph.node[1].input[2] = ""
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "input 2 (R) is required")


def test_merge_of_shapes_that_do_not_broadcast_is_refused(capsys, tmp_path):
    graph = helper.make_graph([helper.make_node("Add", ["x", "z"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TP.FLOAT, ["batch", 4]),
                               helper.make_tensor_value_info("z", TP.FLOAT, ["batch", 3])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, None)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert_refused(capsys, tmp_path, save(proto, tmp_path), "do not broadcast")


# -- a zero initial state sized from Shape(x) ---------------------------------------------------------------
def _lstm_from_zero_state(batch_index: int):
    """torch.onnx's zero initial state: ConstantOfShape([1, Shape(x)[batch_index], H]) into a time-major LSTM."""
    hidden, features = 3, 2
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "k"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "zero_axis"], ["b1"]),
             helper.make_node("Concat", ["one", "b1", "h"], ["dims"], axis=0),
             helper.make_node("ConstantOfShape", ["dims"], ["h0"]),
             helper.make_node("LSTM", ["x", "W", "R", "", "", "h0", "h0"], ["", "yh"], hidden_size=hidden),
             helper.make_node("Squeeze", ["yh", "zero_axis"], ["y"])]
    inits = [tensor("k", np.array(batch_index, np.int64)), tensor("zero_axis", np.array([0], np.int64)),
             tensor("one", np.array([1], np.int64)), tensor("h", np.array([hidden], np.int64)),
             tensor("W", RNG.normal(0, 0.5, (1, 4 * hidden, features)).astype(np.float32)),
             tensor("R", RNG.normal(0, 0.5, (1, 4 * hidden, hidden)).astype(np.float32))]
    return model(nodes, ["time", "batch", features], 13, inits, ["batch", hidden])


def test_a_zero_initial_state_sized_from_the_batch_reads_as_zeros(tmp_path):
    """(gateport's model takes the time-major x batch-first, as for every layout-0 file.)"""
    path, x = save(_lstm_from_zero_state(1), tmp_path), x_of(5, 2, 2)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = reference.run(onnx_model.read(path), [x.transpose(1, 0, 2)])[0]
    assert got.shape == want.shape and np.max(np.abs(got - want)) <= TOL


@pytest.mark.parametrize("index", [3, -4, 7])
def test_a_shape_index_past_the_rank_is_refused(capsys, tmp_path, index):
    """onnxruntime refuses the Gather when it runs; gateport read the state as zeros whatever the index said."""
    assert_refused(capsys, tmp_path, save(_lstm_from_zero_state(index), tmp_path),
                   "(Gather)", "expected Gather indices within the 3 dims its input holds")


# -- foreign ONNX round 10: batched MatMul, Unsqueeze after the batch, Div, Clip by constants ----------------
def _transposed(name: str, out: str) -> "onnx.NodeProto":
    return helper.make_node("Transpose", [name], [out], perm=[0, 2, 1])


@pytest.mark.parametrize("nodes", [
    # self-attention: softmax(x x^T / 2) x
    [_transposed("x", "xt"), helper.make_node("MatMul", ["x", "xt"], ["s"]), helper.make_node("Div", ["s", "two"], ["d"]),
     helper.make_node("Softmax", ["d"], ["w"], axis=-1), helper.make_node("MatMul", ["w", "x"], ["y"])],
    # the last step queries the sequence: x @ x[:, -1].unsqueeze(2), softmax over time, (w^T @ x).squeeze(1)
    [helper.make_node("Gather", ["x", "last"], ["q"], axis=1), helper.make_node("Unsqueeze", ["q", "a2"], ["q2"]),
     helper.make_node("MatMul", ["x", "q2"], ["s"]), helper.make_node("Softmax", ["s"], ["w"], axis=1),
     _transposed("w", "wt"), helper.make_node("MatMul", ["wt", "x"], ["c"]),
     helper.make_node("Squeeze", ["c", "a1"], ["y"])],
    # a masked mean: (x * m).sum(1) / m.sum(1).clamp(min=1), m = (x[..., 0] > 0).unsqueeze(-1) as float
    [helper.make_node("ReduceMean", ["x"], ["f"], axes=[2], keepdims=0), helper.make_node("Relu", ["f"], ["m0"]),
     helper.make_node("Unsqueeze", ["m0", "am1"], ["m"]), helper.make_node("Mul", ["x", "m"], ["xm"]),
     helper.make_node("ReduceSum", ["xm", "a1"], ["num"], keepdims=0),
     helper.make_node("ReduceSum", ["m", "a1"], ["den0"], keepdims=0),
     helper.make_node("Clip", ["den0", "one", ""], ["den"]), helper.make_node("Div", ["num", "den"], ["y"])],
    # Clip by both bounds, Div by a number
    [helper.make_node("Clip", ["x", "mone", "one"], ["c"]), helper.make_node("Div", ["c", "two"], ["y"])],
])
def test_batched_matmul_unsqueeze_div_clip_read_as_onnxruntime(tmp_path, nodes):
    inits = [tensor("two", np.float32(2.0)), tensor("one", np.float32(1.0)), tensor("mone", np.float32(-1.0)),
             tensor("last", np.int64(-1)), tensor("a1", np.asarray([1], np.int64)),
             tensor("a2", np.asarray([2], np.int64)), tensor("am1", np.asarray([-1], np.int64))]
    used = {i for n in nodes for i in n.input}
    proto = model(nodes, ["batch", "time", 3], 13, [t for t in inits if t.name in used])
    assert_matches_onnxruntime(tmp_path, proto, x_of(2, 5, 3))


@pytest.mark.parametrize("nodes,shape,inits,expect", [
    # a MatMul of two rank-2 tensors multiplies across the batch
    ([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MatMul", ["x", "r"], ["y"])],
     ["batch", 3], [], "two batch-first rank-3 tensors"),
    # inner sizes that do not match (onnxruntime fails when it runs)
    ([helper.make_node("MatMul", ["x", "x"], ["y"])], ["batch", 4, 3], [], "matching inner sizes, found 3 and 4"),
    # a division by zero, by a number not finite
    ([helper.make_node("Div", ["x", "z"], ["y"])], ["batch", 4, 3], [tensor("z", np.float32(0.0))],
     "Div by a finite non-zero number"),
    ([helper.make_node("Div", ["x", "z"], ["y"])], ["batch", 4, 3], [tensor("z", np.float32(np.inf))],
     "Div by a finite non-zero number"),
    ([helper.make_node("Mul", ["x", "z"], ["y"])], ["batch", 4, "f"], [tensor("z", np.float32(np.nan))],
     "Mul by a finite number"),
    # Unsqueeze that would move the batch, repeated axes, axes past the rank
    ([helper.make_node("Unsqueeze", ["x", "a"], ["y"])], ["batch", 4, 3], [tensor("a", np.asarray([0, 2], np.int64))],
     "Unsqueeze"),
    ([helper.make_node("Unsqueeze", ["x", "a"], ["y"])], ["batch", 4, 3], [tensor("a", np.asarray([2, 2], np.int64))],
     "Unsqueeze"),
    ([helper.make_node("Unsqueeze", ["x", "a"], ["y"])], ["batch", 4, 3], [tensor("a", np.asarray([9], np.int64))],
     "Unsqueeze"),
    # two unknown sizes: no Keras Reshape holds both
    ([helper.make_node("Unsqueeze", ["x", "a"], ["y"])], ["batch", "t", "f"], [tensor("a", np.asarray([3], np.int64))],
     "sizes but one are known"),
    # a Clip bound computed at run time
    ([helper.make_node("ReduceMax", ["x"], ["m"], axes=[2], keepdims=1), helper.make_node("Clip", ["x", "m", ""], ["y"])],
     ["batch", 4, 3], [], "Clip"),
])
def test_batched_matmul_unsqueeze_div_clip_refused(capsys, tmp_path, nodes, shape, inits, expect):
    assert_refused(capsys, tmp_path, save(model(nodes, shape, 13, inits), tmp_path), expect)


@pytest.mark.parametrize("halves,refused", [
    ((0, 1), None),
    ((1, 0), "the directions are concatenated backward first"),
    ((0, 0), "expected a recurrent output as Keras returns it"),
])
def test_time_major_halves_of_a_bidirectional_node_concatenated_on_axis_2(capsys, tmp_path, halves, refused):
    """tf2onnx's Bidirectional: each direction's time-major Y half (Slice + Squeeze), joined by Concat on axis 2
    (written out, not -1) and put back batch-first: read as Keras' concat merge; backward first, or one direction
    twice (no Keras Bidirectional output), refused in one line."""
    units, feats = 3, 2
    rng = np.random.default_rng(10)
    w = [tensor(n, rng.uniform(-0.7, 0.7, s).astype(np.float32))
         for n, s in (("W", (2, 4 * units, feats)), ("R", (2, 4 * units, units)), ("B", (2, 8 * units)))]
    ints_ = [tensor(n, np.asarray(v, np.int64)) for n, v in
             (("s0", [0]), ("s1", [1]), ("s2", [2]), ("ax1", [1]))]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W", "R", "B"], ["Y"], hidden_size=units, direction="bidirectional")]
    for k, d in enumerate(halves):
        nodes += [helper.make_node("Slice", ["Y", f"s{d}", f"s{d + 1}", "ax1"], [f"h{k}"]),
                  helper.make_node("Squeeze", [f"h{k}", "ax1"], [f"q{k}"])]
    nodes += [helper.make_node("Concat", ["q0", "q1"], ["cat"], axis=2),
              helper.make_node("Transpose", ["cat"], ["y"], perm=[1, 0, 2])]
    proto = model(nodes, ["batch", 5, feats], 13, w + ints_)
    if refused is None:
        assert_matches_onnxruntime(tmp_path, proto, x_of(2, 5, feats))
    else:
        assert_refused(capsys, tmp_path, save(proto, tmp_path), refused)
