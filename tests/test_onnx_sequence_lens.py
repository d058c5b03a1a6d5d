"""ONNX LSTM/GRU/RNN with per-sample ``sequence_lens`` (a graph input, or torch.onnx's TorchScript exporter's
``Cast`` of one on ``pack_padded_sequence``): read as the IR's masked recurrent node, its mask
``mask_lengths(lengths, x)`` = ``arange(time) < lengths[:, None]`` and ``zero_output_for_mask``.

ONNX (onnx/docs/Operators.md LSTM; onnxruntime deep_cpu_lstm / deep_cpu_gru / rnn): for sample ``b`` the
steps ``t >= len[b]`` give zero ``Y``, ``Y_h``/``Y_c`` are the states after step ``len[b] - 1``, the reverse
direction starts at step ``len[b] - 1``: Keras' masked layer with a trailing mask and zero_output_for_mask.
onnxruntime gives a length of 0 zero outputs and zero ``Y_h``/``Y_c`` even with initial states (where Keras' masked
layer keeps the initial state: the reader zeroes those rows, onnx_recurrent.RecurrentNode._zeroed); it refuses a
length below 0 or past the steps at run time, where gateport's models keep no step / every step (README).
gateport's own ONNX of such a model (the lengths' mask as Range/Less, onnx_masks.mask_lengths_to_onnx) reads back.

Compared with onnxruntime running the original file and with PyTorch's outputs stored in the fixture
(fixtures/make_foreign_onnx_round3.py).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from converters import api
from converters.cli import main
from converters.errors import UnsupportedError
from converters.readers import onnx_model
from converters.runtimes import run_onnx, run_reference, run_torch
from converters.writers import onnx_graph
from helpers import TOL, max_error

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from test_onnx_rnn_variants import B, H, I, T, _batch_first, variant  # noqa: E402

R3 = Path(__file__).resolve().parent.parent / "fixtures" / "foreign_onnx_round3"
PACKED = [m for m in json.loads((R3 / "manifest_torch.json").read_text())["models"]
          if "packed" in m["name"] and "file" in m["exports"]["torchscript"]]


def _ort(path, feed: list[np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), feed)})


def test_every_packed_export_is_a_fixture():
    names = {m["name"] for m in PACKED}
    assert names == {"t_gru_packed_seq", "t_lstm_packed_seq", "t_bilstm_packed_seq", "t_bigru_packed_seq",
                     "t_lstm2_packed_seq", "t_bigru2_packed_seq", "t_bilstm2_packed_seq", "t_gru2_packed_h"}


@pytest.mark.parametrize("entry", PACKED, ids=[m["name"] for m in PACKED])
def test_packed_sequence_reads_as_a_masked_layer(entry, tmp_path):
    """pack_padded_sequence -> nn.LSTM/GRU (1 or 2 layers, one or both directions) -> pad_packed_sequence or
    h_n[-1]: converted to PyTorch and ONNX, gateport gives PyTorch's stored outputs and what onnxruntime
    computes on the original file, also for 2 of the 3 samples (the exporter's dynamic batch)."""
    path = R3 / entry["exports"]["torchscript"]["file"]
    data = np.load(R3 / entry["expected"])
    x, lengths, want = data["in:0"], data["in:1"], data["out:0"]
    model = api.read(path)
    assert [s.dtype for s in model.inputs] == ["float32", "int64"]
    rec = [n for n in model.nodes if n.is_recurrent]
    assert len(rec) == (2 if "2_" in entry["name"] else 1)
    assert all(n.mask and n.options["zero_output_for_mask"] for n in rec if n.options["return_sequences"])
    makers = {n.outputs[0]: n.op for n in model.nodes}
    assert all(makers[n.mask] == "mask_lengths" for n in rec)
    ort_out = _ort(path, [x, lengths])[0]
    api.convert(model, "torch", tmp_path / "torch")
    api.convert(model, "onnx", tmp_path / "m.onnx")
    for target, run in (("torch", lambda f: run_torch(tmp_path / "torch", f)),
                        ("onnx", lambda f: run_onnx(tmp_path / "m.onnx", f))):
        got = run([x, lengths])[0]
        err, err_ort = float(np.max(np.abs(got - want))), float(np.max(np.abs(got - ort_out)))
        print(f"{entry['name']} {target}: max abs error {err:.2e} vs PyTorch, {err_ort:.2e} vs onnxruntime")
        assert err <= TOL and err_ort <= TOL
        two = run([x[:2], lengths[:2]])[0]
        assert float(np.max(np.abs(two - want[:2]))) <= TOL


def test_verify_with_pytorchs_outputs_and_random_lengths():
    """``verify`` takes the int64 lengths input: PyTorch's stored outputs as the reference, and random inputs
    whose lengths run from every step down to none (len 0)."""
    path = R3 / "t_bigru2_packed_seq__torchscript.onnx"
    data = np.load(R3 / "t_bigru2_packed_seq.npz")
    report = api.verify(path, ["torch", "onnx"], inputs=[data["in:0"], data["in:1"]], expected=[data["out:0"]])
    assert report.ok, report.rows
    from converters.verification import random_inputs

    model = api.read(path)
    xs = random_inputs(model, batch=8)
    assert xs[1].dtype == np.int64 and list(xs[1]) == [6, 5, 4, 3, 2, 1, 0, 0]
    report = api.verify(path, ["torch", "onnx", "numpy"], inputs=xs)  # against gateport's own reading only
    assert report.verdict == "unproven" and not report.failures() and not report.errors()
    assert len(report.compared()) == 3
    ort_out = _ort(path, xs)[0]  # onnxruntime on the file itself, len 0 included
    got = run_torch(api.to_torch(model), xs)[0]
    assert float(np.max(np.abs(got - ort_out))) <= TOL


def test_keras_target_refuses_in_one_line(tmp_path, capsys):
    path = R3 / "t_gru_packed_seq__torchscript.onnx"
    assert main(["convert", str(path), "--to", "keras", "-o", str(tmp_path / "m.keras")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path.name in err and "found 'mask_lengths'" in err
    assert not (tmp_path / "m.keras").exists()


CASES = [(op, d, init) for op in ("LSTM", "GRU", "RNN") for d in ("forward", "reverse", "bidirectional")
         for init in (None, "input")]


@pytest.mark.parametrize("op,direction,initial", CASES, ids=[f"{o}-{d}-{i or 'zeros'}" for o, d, i in CASES])
@pytest.mark.parametrize("outputs", [("Y", "Y_h", "Y_c"), ("Y_h",)], ids=["Y-states", "states"])
def test_sequence_lens_graph_input_matches_onnxruntime(op, direction, initial, outputs, tmp_path):
    """One node, ``sequence_lens`` an int32 graph input (no Cast): lengths with every step, none (len 0: zero
    ``Y`` and zero ``Y_h``/``Y_c``, with initial states too) and some, in each direction; outputs ``Y``/``Y_h``
    (/``Y_c``) or ``Y_h`` alone. The file read, converted to every target, and gateport's ONNX of it read back
    (one direction: a bidirectional node's raw outputs are written with crop1d/Reshape patterns not read back)."""
    outputs = outputs + (("Y_c",) if op == "LSTM" and outputs == ("Y_h",) else ())
    proto = variant(op, direction, seq_lens="input", initial=initial, outputs=outputs)
    path = tmp_path / "v.onnx"
    onnx.save(proto, str(path))
    rng = np.random.default_rng(5)
    dirs = 2 if direction == "bidirectional" else 1
    x = rng.normal(0, 1.5, (B, T, I)).astype(np.float32)
    lengths = np.array([T, 0, 2], np.int32)
    states = [rng.uniform(-1, 1, (B, dirs, H)).astype(np.float32) for _ in range((2 if op == "LSTM" else 1)
                                                                                 if initial else 0)]
    want = _batch_first(_ort(path, [x.transpose(1, 0, 2), lengths, *[s.transpose(1, 0, 2) for s in states]]))
    model = api.read(path)
    assert [s.dtype for s in model.inputs][:2] == ["float32", "int32"]
    feed = [x, lengths, *states]
    got = [("torch", run_torch(api.to_torch(model), feed)), ("onnx", run_onnx(api.to_onnx(model), feed)),
           ("numpy reference", run_reference(model, feed))]
    if direction != "bidirectional":  # both directions' raw Y/Y_h/Y_c: concatenate + Reshape, not read back
        back = onnx_model.read(onnx_graph.write(model, tmp_path / "written.onnx"))
        assert Counter(n.op for n in back.nodes) == Counter(n.op for n in model.nodes)
        got += [("read back from gateport's ONNX: numpy reference", run_reference(back, feed)),
                ("read back from gateport's ONNX: torch", run_torch(api.to_torch(back), feed))]
    for target, outs in got:
        err = max_error(outs, want, target)
        print(f"{op} {direction} {target}: max abs error {err:.2e} vs onnxruntime")
        assert err <= TOL


def test_lengths_past_the_steps_keep_every_step(tmp_path):
    """onnxruntime refuses a length past the steps at run time (rnn_helpers.cc "Invalid value/s in
    sequence_lens"); gateport's models keep every step, as for a length of exactly the steps."""
    proto = variant("GRU", "bidirectional", seq_lens="input")
    path = tmp_path / "v.onnx"
    onnx.save(proto, str(path))
    x = np.random.default_rng(2).normal(0, 1, (B, T, I)).astype(np.float32)
    with pytest.raises(Exception, match="sequence_lens"):
        _ort(path, [x.transpose(1, 0, 2), np.array([T + 3, 1, 2], np.int32)])
    model = api.read(path)
    torch_model = api.to_torch(model)
    past = run_torch(torch_model, [x, np.array([T + 3, 1, 2], np.int32)])
    full = run_torch(torch_model, [x, np.array([T, 1, 2], np.int32)])
    assert max_error(past, full) == 0.0


def test_length_zero_keeps_zero_final_states_with_initial_states(tmp_path):
    """onnxruntime zeroes a length-0 sample's Y_h/Y_c (not its initial state, which Keras' masked layer keeps):
    the IR zeroes those rows after the recurrent node (reshape, mask_lengths, masking, reshape)."""
    path = tmp_path / "v.onnx"
    onnx.save(variant("LSTM", "bidirectional", seq_lens="input", initial="input"), str(path))
    model = api.read(path)
    rec = next(n for n in model.nodes if n.is_recurrent)
    assert rec.options["return_state"] and sum(n.op == "masking" for n in model.nodes) == 4
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (B, T, I)).astype(np.float32)
    states = [rng.uniform(-1, 1, (B, 2, H)).astype(np.float32) for _ in range(2)]
    lengths = np.array([0, 0, 3], np.int32)
    y, h, c = run_reference(model, [x, lengths, *states])
    assert not np.any(h[:2]) and not np.any(c[:2]) and np.all(h[2] != 0)
    want = _batch_first(_ort(path, [x.transpose(1, 0, 2), lengths, *[s.transpose(1, 0, 2) for s in states]]))
    assert max_error([y, h, c], want) <= TOL


@pytest.mark.parametrize("entry", PACKED, ids=[m["name"] for m in PACKED])
def test_packed_sequence_read_back_from_gateports_onnx(entry, tmp_path):
    """gateport's ONNX of a pack_padded_sequence export (the lengths' mask as Range/Less, the masked-RNN plan)
    reads back to the same IR ops; its targets give PyTorch's stored outputs and onnxruntime's on the original."""
    path = R3 / entry["exports"]["torchscript"]["file"]
    data = np.load(R3 / entry["expected"])
    feed, want = [data["in:0"], data["in:1"]], data["out:0"]
    model = api.read(path)
    back = onnx_model.read(onnx_graph.write(model, tmp_path / "m.onnx"))
    assert Counter(n.op for n in back.nodes) == Counter(n.op for n in model.nodes)
    assert [n.mask is not None for n in back.nodes if n.is_recurrent] == [True] * sum(n.is_recurrent
                                                                                     for n in model.nodes)
    ort_out = _ort(path, feed)[0]
    for target, got in (("numpy reference", run_reference(back, feed)[0]),
                        ("torch", run_torch(api.to_torch(back), feed)[0]),
                        ("onnx", run_onnx(api.to_onnx(back), feed)[0])):
        err, err_ort = float(np.max(np.abs(got - want))), float(np.max(np.abs(got - ort_out)))
        print(f"{entry['name']} read back, {target}: max abs error {err:.2e} vs PyTorch, {err_ort:.2e} vs onnxruntime")
        assert err <= TOL and err_ort <= TOL


def test_a_lookalike_lengths_mask_is_refused(tmp_path):
    """Less of a range over another axis than the steps (Gather(Shape(x), [2])) is not gateport's lengths mask."""
    model = api.read(R3 / "t_gru_packed_seq__torchscript.onnx")
    proto = onnx.load(str(onnx_graph.write(model, tmp_path / "m.onnx")))
    producer = {o: n for n in proto.graph.node for o in n.output}
    less = next(n for n in proto.graph.node if n.op_type == "Less")
    squeeze = producer[producer[producer[less.input[0]].input[0]].input[1]]
    gather = producer[squeeze.input[0]]
    assert gather.op_type == "Gather"
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array([2], np.int64), "axis_two"))
    gather.input[1] = "axis_two"
    onnx.save(proto, str(tmp_path / "edited.onnx"))
    with pytest.raises(UnsupportedError, match="Range"):
        onnx_model.read(tmp_path / "edited.onnx")
