"""gateport's ONNX for masked recurrent models read back: masked layers in a chain sharing one masked-RNN plan
(``masked_chain``), a mask folded by TimeDistributed(LSTM ...) (``masked_fold``).

Each fixture: the Keras file -> gateport's ONNX file -> the ONNX reader -> every target (numpy reference,
PyTorch, ONNX, Keras 3 unless the fixture is ``keras3_refused``), compared with onnxruntime running the ONNX
file and with the Keras outputs stored with the fixture (max abs error <= TOL).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters import api
from converters.readers import onnx_model
from converters.runtimes import run_keras, run_onnx, run_reference, run_torch
from converters.writers import onnx_graph
from roundtrip import FIXTURES, TOL, fixture_io, fixture_model, max_error

pytest.importorskip("onnxruntime")

MASKED = [f["name"] for f in FIXTURES if {"masked_chain", "masked_fold"} & set(f["features"])]


def test_every_masked_chain_and_fold_fixture_is_listed():
    assert {"mask_input_recurrent", "k3_mask_input_recurrent", "td_masked_hierarchical",
            "k3_td_masked_bilstm_sequences", "stacked_cells_masked"} <= set(MASKED)


@pytest.mark.parametrize("name", MASKED)
def test_masked_onnx_read_back_matches_onnxruntime_and_keras(name, tmp_path):
    entry = next(f for f in FIXTURES if f["name"] == name)
    inputs, keras_out = fixture_io(entry)
    source = onnx_graph.write(fixture_model(name), tmp_path / "source.onnx")
    ort_out = run_onnx(source, inputs)
    back = onnx_model.read(source)
    assert [n.mask is not None for n in back.nodes if n.is_recurrent] == \
        [n.mask is not None for n in fixture_model(name).nodes if n.is_recurrent]
    got = {"numpy reference": run_reference(back, inputs),
           "torch": run_torch(api.to_torch(back), inputs),
           "onnx": run_onnx(api.to_onnx(back), inputs)}
    if "keras3_refused" not in entry["features"]:
        got["keras"] = run_keras(api.convert(back, "keras", tmp_path / "m.keras"), inputs)
    for target, outs in got.items():
        err_ort, err_keras = max_error(outs, ort_out), max_error(outs, keras_out)
        print(f"{name} {target}: max abs error {err_ort:.1e} vs onnxruntime on the source, {err_keras:.1e} vs Keras")
        assert err_ort <= TOL and err_keras <= TOL, target
    assert max_error(ort_out, keras_out) <= TOL


# -- what only looks like gateport's plan or fold is refused ----------------------------------------------
def _written(name: str, tmp_path):
    import onnx

    return onnx.load(str(onnx_graph.write(fixture_model(name), tmp_path / "m.onnx")))


def _read_proto(proto, tmp_path):
    import onnx

    path = tmp_path / "edited.onnx"
    onnx.save(proto, str(path))
    return onnx_model.read(path)


def test_plan_index_expanded_to_another_tensors_shape_is_refused(tmp_path):
    """The second layer's compacting GatherElements with its index Expanded to the Shape of the first layer's
    input (not of the tensor it gathers from) is not gateport's plan."""
    from converters.errors import UnsupportedError

    proto = _written("mask_input_recurrent", tmp_path)
    producer = {o: n for n in proto.graph.node for o in n.output}
    gathers = [n for n in proto.graph.node if n.op_type == "GatherElements"]
    shapes = [producer[producer[g.input[1]].input[1]] for g in gathers]
    assert all(s.op_type == "Shape" and s.input[0] == g.input[0] for s, g in zip(shapes, gathers))
    first, other = shapes[0].input[0], next(s for s in shapes if s.input[0] != shapes[0].input[0])
    other.input[0] = first
    with pytest.raises(UnsupportedError, match="index expanded to the shape of the tensor it gathers from"):
        _read_proto(proto, tmp_path)


def test_mask_reshaped_otherwise_than_by_the_fold_is_refused(tmp_path):
    """A mask reshaped to a constant shape (not Concat([-1], Shape(mask)[2:])) is not TimeDistributed's fold."""
    import onnx

    from converters.errors import UnsupportedError

    proto = _written("td_masked_hierarchical", tmp_path)
    reshape = next(n for n in proto.graph.node if n.op_type == "Reshape" and n.output[0] == "td_sentence/fold_mask")
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array([-1, 6], np.int64), "const_shape"))
    reshape.input[1] = "const_shape"
    with pytest.raises(UnsupportedError, match="expected a mask reshaped only by TimeDistributed's fold"):
        _read_proto(proto, tmp_path)


# -- masked chains as other tools write them -------------------------------------------------------------
FOREIGN = Path(__file__).resolve().parent.parent / "fixtures" / "foreign_onnx_masked"
FOREIGN_MODELS = json.loads((FOREIGN / "manifest.json").read_text())["models"]
FOREIGN_CASES = [(m["name"], tool) for m in FOREIGN_MODELS for tool in m["exports"]]

@pytest.mark.parametrize("name,tool", FOREIGN_CASES, ids=[f"{n}-{t}" for n, t in FOREIGN_CASES])
def test_foreign_masked_chain_matches_keras_and_onnxruntime(name, tool, tmp_path):
    """tf2onnx's masked Loops (a Bidirectional LSTM's pair and the layer after it; from the .h5, the last Loop
    carries its bound, the steps of the sequence it reads, computed at run time) and Keras 3's export of one
    mask read by two layers: every target against Keras' stored outputs and onnxruntime on the file."""
    path = FOREIGN / f"{name}__{tool}.onnx"
    data = np.load(FOREIGN / f"{name}.npz")
    x, want = data["in:0"], data["out:0"]
    model = onnx_model.read(path)
    rec = [n for n in model.nodes if n.is_recurrent]
    assert len(rec) == 2 and all(n.mask is not None for n in rec)
    ort_out = run_onnx(path, [x])
    got = {"numpy reference": run_reference(model, [x]), "torch": run_torch(api.to_torch(model), [x]),
           "onnx": run_onnx(api.to_onnx(model), [x]),
           "keras": run_keras(api.convert(model, "keras", tmp_path / "m.keras"), [x])}
    for target, outs in got.items():
        err_ort, err_keras = max_error(outs, ort_out), max_error(outs, [want])
        print(f"{name} {tool} {target}: max abs error {err_ort:.1e} vs onnxruntime, {err_keras:.1e} vs Keras")
        assert err_ort <= TOL and err_keras <= TOL, target


def test_loop_bound_not_the_steps_of_its_sequence_is_refused(tmp_path):
    """A carried run-time bound that is not Squeeze(Slice(Shape(x))[0:1]) of the sequence the Loop reads (here
    the slice's end edited to 2) stays a state: the Loop is refused, named, in one line."""
    import onnx

    from converters.errors import UnsupportedError

    proto = onnx.load(str(FOREIGN / "embedding_mask_stacked__tf2onnx_h5.onnx"))
    loop = next(n for n in proto.graph.node if n.op_type == "Loop" and "l2/" in n.name)
    producer = {o: n for n in proto.graph.node for o in n.output}
    bound = next(i for i in loop.input[2:] if i in producer and producer[i].op_type == "Squeeze")
    sl = producer[producer[bound].input[0]]
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array([2], np.int64), "two"))
    sl.input[2] = "two"
    onnx.save(proto, str(tmp_path / "edited.onnx"))
    with pytest.raises(UnsupportedError, match="l2/PartitionedCall/while_loop.*Loop.*not recognized"):
        onnx_model.read(tmp_path / "edited.onnx")
