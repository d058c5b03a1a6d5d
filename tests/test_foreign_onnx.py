"""ONNX files written by other tools, read back: tf2onnx 1.17 (from tf-keras .h5 and Keras 3 models) and
Keras 3's ``model.export(format="onnx")`` (fixtures/make_foreign_onnx.py, outputs from Keras), and
torch.onnx's TorchScript exporter (exported here, compared with PyTorch).

Every file either reads, converts to PyTorch and to Keras and matches Keras (<= 1e-5), or is refused in
one line naming the node; every pattern's rewrite computes what the tool's graph computes (onnxruntime).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from converters import api
from converters.cli import main
from converters.errors import UnsupportedError
from converters.readers import onnx_model
from converters.readers.onnx_patterns import normalize
from converters.readers.onnx_tensors import TensorReader

onnx = pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parent.parent
FOREIGN = ROOT / "fixtures" / "foreign_onnx"
MANIFEST = json.loads((FOREIGN / "manifest.json").read_text())
from helpers import TOL  # noqa: E402
TIME = 5  # the fixtures' time steps (fixtures/make_foreign_onnx.py)
#: what each fixture model needs: the patterns its exports go through, or the refusal of its Loop
#: (tf2onnx fuses tf-keras LSTM and GRU(reset_after=True) and Keras 3 LSTM; the rest stay Loops)
EXPECTED = {
    "lstm_dense": {"*": ["last_step", "zero_initial_state"]},
    "stacked_lstm": {"*": ["last_step", "zero_initial_state"]},
    "bilstm_concat": {"*": ["slice_one_squeeze", "tensordot_dense", "time_major_merge", "zero_initial_state"]},
    "bigru_loop_sum": {"*": ["bidirectional_pair", "full_reverse_sequence", "loop_gru", "time_major_merge"]},
    "bigru_loop_concat_last": {"tf2onnx_h5": ["last_step", "slice_one_squeeze", "zero_initial_state"],
                               "*": ["bidirectional_pair", "full_reverse_sequence", "last_step", "loop_gru"]},
    "gru_seq_td": {"tf2onnx_h5": ["tensordot_dense", "zero_initial_state"],
                   "*": ["loop_gru", "unrolled_time_distributed"]},
    "gru_reset_before": {"*": ["last_step", "loop_gru"]},
    "simple_rnn": {"*": ["last_step", "loop_simple_rnn"]},
    "embedding_lstm_td": {"tf2onnx_h5": ["tensordot_dense", "zero_initial_state"],
                          "*": ["negative_ids_wrapped", "unrolled_time_distributed", "zero_initial_state"]},
    "lstm_relu_seq": {"*": ["zero_initial_state"]},
    "embedding_mask_lstm": {"tf2onnx_h5": ["last_step", "masked_loop_lstm"],
                            "*": ["last_step", "masked_loop_lstm", "negative_ids_wrapped"]},
    "masking_gru": {"*": ["float_count", "last_step", "masked_loop_gru", "select_lowered"],
                    "tf2onnx_h5": ["float_count", "last_step", "masked_loop_gru", "masking_product"]},
    "masking_rnn_seq": {"*": ["float_count", "masked_loop_simple_rnn", "select_lowered"],
                        "tf2onnx_h5": ["float_count", "masked_loop_simple_rnn", "masking_product"]},
    "masking_bigru": {"*": ["float_count", "last_step", "masked_bidirectional_loop_gru", "select_lowered"],
                      "tf2onnx_h5": ["float_count", "last_step", "masked_bidirectional_loop_gru", "masking_product"]},
}
CASES = [(m["name"], tool) for m in MANIFEST["models"] for tool in m["exports"]]
MANIFEST_EXPORTS = {m["name"]: sorted(m["exports"]) for m in MANIFEST["models"]}


def expected(name: str, tool: str):
    """The patterns (or the refusal) of a fixture; ``tool_opN`` (another opset) expects what ``tool`` does."""
    e, tool = EXPECTED[name], re.sub(r"_op\d+$", "", tool)
    return e.get(tool, e["*"])


READ = [c for c in CASES if isinstance(expected(*c), list)]


def path_of(name: str, tool: str) -> Path:
    return FOREIGN / f"{name}__{tool}.onnx"


def keras_io(name: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(FOREIGN / f"{name}.npz")
    return data["in:0"], data["out:0"]


def feed(model, x: np.ndarray) -> np.ndarray:
    return x.astype(model.inputs[0].dtype) if model.inputs[0].dtype.startswith("int") else x


def ids(cases):
    return [f"{n}-{t}" for n, t in cases]


def assert_converted_matches(model, target: str, x: np.ndarray, want: np.ndarray, tmp_path, what: str) -> None:
    """``model`` converted to ``target`` ("torch" or "keras") and run on ``x``: its first output is within
    TOL of ``want`` (the max abs error printed after ``what``)."""
    from converters.runtimes import run_keras, run_torch

    out, run = {"torch": ("torch", run_torch), "keras": ("m.keras", run_keras)}[target]
    api.convert(model, target, tmp_path / out)
    err = float(np.max(np.abs(run(tmp_path / out, [feed(model, x)])[0] - want)))
    print(f"{what} max abs error {err:.2e}")
    assert err <= TOL


def test_every_fixture_has_a_verdict():
    assert {m["name"] for m in MANIFEST["models"]} == set(EXPECTED)
    opsets = {m["exports"][tool]["opset"] for m in MANIFEST["models"] for tool in m["exports"]}
    assert opsets == {13, 15, 18} and READ == CASES  # every Keras export reads
    matrix = {"tf2onnx_h5", "tf2onnx_keras", "keras_export", "tf2onnx_h5_op13", "tf2onnx_h5_op18",
              "tf2onnx_keras_op13", "tf2onnx_keras_op18", "keras_export_op18"}
    assert all(set(m["exports"]) == matrix for m in MANIFEST["models"])  # every model, both files, 13..18
    assert all(path_of(*c).stat().st_size < 200_000 for c in CASES)


@pytest.mark.parametrize("name,tool", READ, ids=ids(READ))
def test_inspect_reads_it(name, tool, capsys):
    assert main(["inspect", str(path_of(name, tool))]) == 0
    out = capsys.readouterr().out.lower()
    assert any(f"ONNX {op}".lower() in out for op in ("LSTM", "GRU", "RNN"))


@pytest.mark.parametrize("name,tool", READ, ids=ids(READ))
def test_converts_to_torch_and_matches_keras(name, tool, tmp_path):
    x, want = keras_io(name)
    assert_converted_matches(api.read(path_of(name, tool)), "torch", x, want, tmp_path, f"{name} {tool}: PyTorch vs Keras")


@pytest.mark.parametrize("name,tool", READ, ids=ids(READ))
def test_converts_to_keras_and_matches_keras(name, tool, tmp_path):
    x, want = keras_io(name)
    assert_converted_matches(api.read(path_of(name, tool)), "keras", x, want, tmp_path,
                             f"{name} {tool}: Keras 3 (converted) vs Keras")


@pytest.mark.parametrize("name,tool", READ, ids=ids(READ))
def test_each_pattern_rewrite_computes_what_the_tool_wrote(name, tool):
    """The patterns that fire are the expected ones, and the rewritten graph gives onnxruntime's numbers."""
    from converters.runtimes import run_onnx

    path = path_of(name, tool)
    proto = onnx.load(str(path))
    rewritten, misses, applied = normalize(onnx, proto, str(path), TensorReader(proto, str(path)))
    assert sorted(set(applied)) == sorted(expected(name, tool)) and not misses
    x, want = keras_io(name)
    before = run_onnx(proto, [x])[0]
    after = run_onnx(rewritten, [x])[0]
    assert np.array_equal(before, after) or float(np.max(np.abs(before - after))) <= 1e-6
    assert float(np.max(np.abs(after - want))) <= TOL


@pytest.mark.parametrize("name,tool", READ, ids=ids(READ))
def test_diff_against_the_keras_file_reports_identical_gates(name, tool):
    from converters.diff import diff

    keras_file = FOREIGN / (f"{name}.h5" if tool == "tf2onnx_h5" else f"{name}.keras")
    report = diff(keras_file, path_of(name, tool))
    assert report.ok, [m.text for m in report.mistakes]
    assert report.pairs


def _backward_mask_edited(edit: str, tmp_path) -> Path:
    """masking_bigru's Keras 3 export with its backward loop reading the mask not reversed in time
    (``unreversed``), or reversed from another mask (``other``: the ReverseSequence reads Not(mask))."""
    proto = onnx.load(str(path_of("masking_bigru", "keras_export")))
    graph = proto.graph
    flip = next(n for n in graph.node if n.op_type == "ReverseSequence" and "ReverseV2_1" in n.output[0])
    if edit == "unreversed":
        back = next(n for n in graph.node if n.op_type == "Loop" and "backward" in n.name)
        reads = [n for n in back.attribute[0].g.node if n.op_type == "Gather" and n.input[0] == flip.output[0]]
        assert len(reads) == 1
        reads[0].input[0] = flip.input[0]
    else:
        graph.node.insert(list(graph.node).index(flip),
                          onnx.helper.make_node("Not", [flip.input[0]], ["other_mask"], name="other_mask"))
        flip.input[0] = "other_mask"
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize("edit,message", [
    ("unreversed", "expected a backward loop of a masked Bidirectional to read both its sequence and its mask "
                   "reversed in time, found only its sequence reversed"),
    ("other", "expected the mask it reads reversed in time to be the mask its forward loop"),
])
def test_backward_masked_loop_whose_mask_is_not_the_forward_mask_reversed_is_refused(edit, message, tmp_path,
                                                                                      capsys):
    """A masked Bidirectional's backward loop must read the forward loop's mask reversed in time: the same
    file with the backward loop's mask edited is refused in one line naming that loop."""
    path = _backward_mask_edited(edit, tmp_path)
    with pytest.raises(UnsupportedError) as info:
        onnx_model.read(path)
    e = info.value
    assert "(Loop)" in e.layer and "backward" in e.layer and "while_loop" in e.layer
    assert "(a GRU step (3 gates), masked;" in e.message and message in e.message
    assert "\n" not in str(e) and main(["inspect", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_masked_bidirectional_matches_keras_on_masks_with_holes(tmp_path):
    """The 8 masking_bigru files read as one masked bidirectional GRU that matches Keras (the .keras file
    run by Keras 3) on samples that start masked, have masked steps between unmasked ones, end masked, or
    are all masked; one converted to PyTorch too."""
    from converters.runtimes import run_keras, run_reference

    x = keras_io("masking_bigru")[0].copy()
    x[0, [0, 2]] = 0.0  # starts masked, a hole
    x[1, [1, 4]] = 0.0  # a hole, ends masked
    x[2] = 0.0  # all masked
    want = run_keras(FOREIGN / "masking_bigru.keras", [x])[0]
    for tool in MANIFEST_EXPORTS["masking_bigru"]:
        model = api.read(path_of("masking_bigru", tool))
        (node,) = [n for n in model.nodes if n.is_recurrent]
        assert node.options["bidirectional"] and node.mask
        err = float(np.max(np.abs(run_reference(model, [x])[0] - want)))
        print(f"masking_bigru {tool}: reference vs Keras, masks with holes: max abs error {err:.2e}")
        assert err <= TOL
    assert_converted_matches(api.read(path_of("masking_bigru", "tf2onnx_h5")), "torch", x, want, tmp_path,
                             "masking_bigru tf2onnx_h5, masks with holes: PyTorch vs Keras")


@pytest.mark.parametrize("name", ["masking_gru", "embedding_mask_lstm"])
def test_masked_loop_whose_select_is_not_keras_is_refused_in_one_line(name, tmp_path, capsys):
    """A masked loop whose state select keeps the new state at masked steps too (its ``Not`` made an
    ``Identity``): the body runs, but not as Keras' masked step, so the loop is refused, named."""
    proto = onnx.load(str(path_of(name, "keras_export")))
    body = next(n for n in proto.graph.node if n.op_type == "Loop").attribute[0].g
    next(n for n in body.node if n.op_type == "Not").op_type = "Identity"
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(UnsupportedError) as info:
        onnx_model.read(path)
    e = info.value
    assert "(Loop)" in e.layer and "while_loop" in e.layer and "\n" not in str(e)
    assert "masked;" in e.message and "step (masked) with these weights" in e.message
    assert main(["inspect", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_unrecognized_construct_names_the_node_and_the_closest_pattern(tmp_path):
    """tf2onnx's last-step Slice changed to keep two steps: no pattern matches, the message says which came
    closest and why, on one line naming the node."""
    src = path_of("lstm_dense", "tf2onnx_h5")
    proto = onnx.load(str(src))
    node = next(n for n in proto.graph.node if n.name.endswith("strided_slice_2"))
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array([-2], np.int64), "two_steps"))
    node.input[1] = "two_steps"
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(UnsupportedError) as info:
        onnx_model.read(path)
    text = str(info.value)
    assert "strided_slice_2' (Slice)" in text
    assert "closest pattern slice_one_squeeze: expected one index (step 1), found [-2:2147483647:1] on axis 0" in text


# -- torch.onnx (TorchScript exporter) ---------------------------------------------------------------
TORCH_CASES = {
    "time_major_lstm_linear": dict(kind="LSTM", batch_first=False),
    "time_major_embedding_gru_last_state": dict(kind="GRU", batch_first=False, embedding=True, last_state=True),
    "embedding_gru_linear": dict(kind="GRU", embedding=True),
    "stacked_bidirectional_lstm_linear": dict(kind="LSTM", num_layers=2, bidirectional=True),
    "rnn_tanh_last_state": dict(kind="RNN", last_state=True),
}


@pytest.mark.parametrize("case", TORCH_CASES)
def test_torch_onnx_export_reads_and_matches_pytorch(case, tmp_path):
    torch = pytest.importorskip("torch")
    o = dict(TORCH_CASES[case])
    kind, batch_first = o.pop("kind"), o.pop("batch_first", True)
    embedding, last_state = o.pop("embedding", False), o.pop("last_state", False)
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(11, 4) if embedding else None
            self.rnn = getattr(torch.nn, kind)(4, 5, batch_first=batch_first, **o)
            self.out = torch.nn.Linear(5 * (2 if o.get("bidirectional") else 1), 3)

        def forward(self, x):
            if self.emb is not None:
                x = self.emb(x)
            y, state = self.rnn(x)
            return self.out(state[-1] if last_state else y)

    net = Net().eval()
    shape = ((3, 6) if batch_first else (6, 3)) + (() if embedding else (4,))
    x = torch.randint(0, 11, shape) if embedding else torch.randn(*shape)
    path = tmp_path / "m.onnx"
    axes = {0: "batch", 1: "time"} if batch_first else {0: "time", 1: "batch"}
    torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": axes})
    with torch.no_grad():
        want = net(x).numpy()
    from converters.runtimes import run_reference

    model = api.read(path)
    if not batch_first:  # read batch-first, said where the producer is shown
        assert "read batch-first" in model.source["producer"]
        x, want = x.transpose(0, 1), (want.transpose(1, 0, 2) if want.ndim == 3 else want)
    err = float(np.max(np.abs(run_reference(model, [x.numpy()])[0] - want)))
    print(f"{case}: max abs error {err:.2e}")
    assert err <= TOL


@pytest.mark.parametrize("edit,message", [
    ("cell_add_to_sub", "the body does not compute a Keras simple_rnn step with these weights"),
    ("counter_by_two", "expected step 1 read at iteration 1"),
])
def test_loop_body_that_is_not_the_keras_cell_is_refused(edit, message, tmp_path):
    """The cell read from the body's structure is checked by running the body: a SimpleRNN loop whose
    state update subtracts the recurrent term, or whose counter skips steps, is not read as SimpleRNN."""
    proto = onnx.load(str(path_of("simple_rnn", "tf2onnx_h5")))
    loop = next(n for n in proto.graph.node if n.op_type == "Loop")
    body = loop.attribute[0].g
    if edit == "cell_add_to_sub":
        next(n for n in body.node if n.name.endswith("simple_rnn_cell/add")).op_type = "Sub"
    else:
        step = next(t for t in body.initializer if t.name.endswith("while/add/y:0"))
        step.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(step) * 2, step.name))
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(UnsupportedError) as info:
        onnx_model.read(path)
    assert "(Loop)" in info.value.layer and message in info.value.message


# -- torch.onnx fixtures: both exporters (fixtures/make_foreign_onnx.py --torch) ------------------------
TORCH_MANIFEST = json.loads((FOREIGN / "torch_manifest.json").read_text())
TORCH_FILES = [(m["name"], tool) for m in TORCH_MANIFEST["models"] for tool in m["exports"]]
TIME_MAJOR = {m["name"] for m in TORCH_MANIFEST["models"] if m.get("time_major")}
#: every torch.onnx fixture reads (the dynamo exporter's time-major LSTM writes Reshape(Y, [5, -1, 5]), the
#: time traced at 5 while the input declares it dynamic: read with the input's time declared 5)
TORCH_REFUSED: set = set()
TORCH_READ = [c for c in TORCH_FILES if c not in TORCH_REFUSED]


def torch_io(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The fixture's input and PyTorch's output, batch-first (as gateport reads a time-major file)."""
    x, want = keras_io(name)
    if name in TIME_MAJOR:
        x, want = x.transpose(1, 0, 2), (want.transpose(1, 0, 2) if want.ndim == 3 else want)
    return np.ascontiguousarray(x), want


@pytest.mark.parametrize("name,tool", TORCH_READ, ids=ids(TORCH_READ))
def test_torch_onnx_fixture_converts_to_torch_and_matches_pytorch(name, tool, tmp_path):
    x, want = torch_io(name)
    model = api.read(path_of(name, tool))
    assert [n.op for n in model.nodes if n.is_recurrent]
    assert ("read batch-first" in model.source["producer"]) == (name in TIME_MAJOR)
    assert_converted_matches(model, "torch", x, want, tmp_path, f"{name} {tool}: PyTorch (converted) vs PyTorch")


@pytest.mark.parametrize("name,tool", TORCH_READ, ids=ids(TORCH_READ))
def test_torch_onnx_fixture_inspects_and_converts_to_keras_matching_pytorch(name, tool, tmp_path, capsys):
    assert main(["inspect", str(path_of(name, tool))]) == 0
    assert ("read batch-first" in capsys.readouterr().out.replace("\n  ", " ")) == (name in TIME_MAJOR)
    x, want = torch_io(name)
    assert_converted_matches(api.read(path_of(name, tool)), "keras", x, want, tmp_path,
                             f"{name} {tool}: Keras 3 (converted) vs PyTorch")


def test_dynamo_reshape_of_y_to_another_width_is_refused_naming_the_closest_pattern(tmp_path):
    """dynamo's time-major LSTM with its Reshape(Y, [5, -1, 5]) made [5, -1, 1]: not Y's directions joined."""
    proto = onnx.load(str(path_of("torch_time_major_lstm_linear", "dynamo")))
    target = next(t for t in proto.graph.initializer if t.name == "val_82")
    target.CopyFrom(onnx.numpy_helper.from_array(np.array([5, -1, 1], np.int64), "val_82"))
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(UnsupportedError) as info:
        onnx_model.read(path)
    assert info.value.layer == "ONNX node 'node_Reshape_85' (Reshape)" and "\n" not in str(info.value)
    assert "(closest pattern static_time_reshape: expected Y reshaped to [time, -1, directions * hidden])" \
        in info.value.message


def test_dynamo_time_major_lstm_reads_at_the_time_it_was_traced_at(tmp_path, capsys):
    """Its input declares the time dynamic, its Reshape fixes 5: read with the input (5, 4), batch-first; the
    same with the time declared 5 in the file."""
    assert main(["inspect", str(path_of("torch_time_major_lstm_linear", "dynamo"))]) == 0
    assert "inputs:  x (5, 4) float32" in capsys.readouterr().out
    proto = onnx.load(str(path_of("torch_time_major_lstm_linear", "dynamo")))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = TIME
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    x, want = torch_io("torch_time_major_lstm_linear")  # float32: fed as it is
    assert_converted_matches(api.read(path), "torch", x, want, tmp_path, "time declared 5: PyTorch vs PyTorch")


def test_unrolled_rnn_with_a_step_not_the_cell_is_refused_naming_the_closest_pattern(tmp_path):
    """The dynamo exporter's unrolled nn.RNN with one step's Tanh made a Sigmoid: not one RNN any more."""
    proto = onnx.load(str(path_of("torch_rnn_last_h_linear", "dynamo")))
    next(n for n in proto.graph.node if n.name == "node_tanh_2").op_type = "Sigmoid"
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(UnsupportedError) as info:
        onnx_model.read(path)
    assert info.value.layer.startswith("ONNX node ") and "\n" not in str(info.value)
    assert "closest pattern unrolled_r" in info.value.message


def test_edited_foreign_files_read_or_fail_in_one_line(tmp_path):
    """Seeded edits of the tool's files (an input dropped, an op swapped, a small constant changed, a Loop
    body node removed) either raise a GateportError of one line (the patterns meet such nodes before the
    reader's checks do) or read and compute what onnxruntime computes from the edited file."""
    from converters.errors import GateportError
    from converters.runtimes import run_onnx, run_reference

    rng = np.random.default_rng(5)
    ops = ["Slice", "Squeeze", "Transpose", "Reshape", "Concat", "MatMul", "Add", "Gather", "Loop", "Expand"]
    models = ("bilstm_concat", "simple_rnn", "gru_seq_td", "embedding_lstm_td", "masking_gru", "embedding_mask_lstm",
              "masking_rnn_seq", "masking_bigru")
    sources = [path_of(n, t) for n, t in CASES if n in models and not t.endswith(("_op13", "_op18"))]
    outcomes = {"read": 0, "refused": 0}
    for k in range(5 * len(sources)):  # five edits of each source
        proto = onnx.load(str(sources[k % len(sources)]))
        graph = proto.graph
        loop = next((n for n in graph.node if n.op_type == "Loop"), None)
        node = graph.node[int(rng.integers(len(graph.node)))]
        edit = k % 4
        if edit == 0 and len(node.input) > 1:
            del node.input[int(rng.integers(len(node.input)))]
        elif edit == 1:
            node.op_type = ops[int(rng.integers(len(ops)))]
        elif edit == 2:
            small = [t for t in graph.initializer if t.data_type == 7 and 0 < len(t.raw_data) <= 64]
            if small:
                t = small[int(rng.integers(len(small)))]
                a = onnx.numpy_helper.to_array(t).copy()
                a.reshape(-1)[0] = int(rng.integers(-3, 7))
                t.CopyFrom(onnx.numpy_helper.from_array(a, t.name))
        elif loop is not None:
            body = loop.attribute[0].g
            del body.node[int(rng.integers(len(body.node)))]
        path = tmp_path / f"m{k}.onnx"
        path.write_bytes(proto.SerializeToString())
        try:
            model = onnx_model.read(path)
        except GateportError as e:
            assert "\n" not in str(e) and "Traceback" not in str(e)
            outcomes["refused"] += 1
            continue
        outcomes["read"] += 1
        x = keras_io(sources[k % len(sources)].name.split("__")[0])[0]
        try:
            want = run_onnx(proto, [x])[0]
        except Exception:  # noqa: BLE001 - onnxruntime refuses the edited file: nothing to compare with
            outcomes["ort_refused"] = outcomes.get("ort_refused", 0) + 1
            continue
        got = run_reference(model, [feed(model, x)])[0]
        assert got.shape == want.shape and float(np.max(np.abs(got - want))) <= TOL, (k, edit)
    print(outcomes)
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("name,tool", TORCH_READ, ids=ids(TORCH_READ))
def test_torch_onnx_pattern_rewrites_compute_what_the_exporter_wrote(name, tool):
    from converters.runtimes import run_onnx

    path = path_of(name, tool)
    proto = onnx.load(str(path))
    rewritten, misses, applied = normalize(onnx, proto, str(path), TensorReader(proto, str(path)))
    unrolled = name.startswith("torch_rnn") and tool == "dynamo"
    assert ("unrolled_rnn" in applied) == unrolled and ("zero_initial_state" in applied) != unrolled
    assert ("time_major_input" in applied) == (name in TIME_MAJOR)
    x, want = torch_io(name)
    after = run_onnx(rewritten, [x])[0]
    assert float(np.max(np.abs(run_onnx(proto, [keras_io(name)[0]])[0] - keras_io(name)[1]))) <= TOL
    assert float(np.max(np.abs(after - want))) <= TOL
