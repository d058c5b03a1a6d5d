"""ONNX files written by other tools, round 6 (fixtures/make_foreign_onnx_round6.py): the heads and plumbing
real users export around a recurrent layer - torch.onnx of ``cat(h_n[-2], h_n[-1])`` classifiers, an
Embedding -> BiGRU -> sigmoid classifier, ``h0``/``c0`` as graph inputs, ``torch.zeros(layers, x.size(0), H)``
initial states, log_softmax, max over time, attention pooling, a flattened sequence, time-major models, an
``nn.RNNCell`` loop, at opsets 7..18 with and without constant folding and from the dynamo exporter;
``onnx.helper`` nodes at opsets 7 and 8 (and those files through ``onnx.version_converter``), Identity / Cast
/ Dropout chains, Squeeze/Unsqueeze with axes as attribute, input, negative or absent, a Bidirectional
written as two nodes, onnx-simplifier style folding; tf2onnx and Keras 3's exporter on Bidirectional
``merge_mode`` sum / mul / ave / None, ``go_backwards`` LSTM and GRU (``reset_after`` both ways), Masking ->
Bidirectional and stacked SimpleRNN with a softmax head.

Every file either reads, and gateport's PyTorch, ONNX and Keras models compute what onnxruntime computes on
the original file (<= TOL; files with a dynamic batch and time also on one sample and one step fewer, in
PyTorch and ONNX), or is
refused in one line naming the file, the node and what was expected.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from converters import api
from converters.cli import main
from converters.runtimes import run_keras, run_onnx, run_torch
from helpers import TOL, max_error
from test_foreign_onnx_round5 import _time_major

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

R6 = Path(__file__).resolve().parent.parent / "fixtures" / "foreign_onnx_round6"
ENTRIES = {e["name"]: e for part in ("helper", "torch", "keras") if (R6 / f"manifest_{part}.json").exists()
           for e in json.loads((R6 / f"manifest_{part}.json").read_text())["files"]}
FILES = [n for n, e in ENTRIES.items() if "file" in e]

_NO_AXES = "expected Squeeze with its axes given (without them it drops every axis of size 1, the batch too"
_UNDEFINED = "found 'ConstantFill', which no ONNX opset defines"
#: name (or the part before '__': every variant of a base) -> what the one-line refusal says
REFUSED: dict[str, str] = {
    # Dropout in training: its random mask used, or training_mode true (onnxruntime draws at random)
    "h13_lstm_dropout_mask_used": "expected Dropout's mask output unused (it is drawn at random in training), "
                                  "found 'mask' used",
    "h17_lstm_dropout_training": "expected Dropout at inference (training_mode absent or a constant false), found "
                                 "training_mode true",
    # a float16 round trip rounds the input: no identity
    "h17_gru_cast_fp16_roundtrip": "expected a Cast to float, double, int32, int64 or bool, found element type 10 "
                                   "(float16)",
    # Squeeze without axes: onnxruntime drops the batch too when it is 1 (refused even with every dim fixed)
    "h13_lstm_squeeze_no_axes": _NO_AXES,
    "h13_lstm_squeeze_no_axes_fixed": _NO_AXES,
    # torch.onnx at opsets 7 and 8 writes the experimental ConstantFill (onnxruntime refuses the file too)
    "t_gru_logsoftmax_last__op7": _UNDEFINED,
    "t_rnn_tm_bi_seq__op8": _UNDEFINED,
    # nn.RNNCell looped in Python: steps unrolled in the graph
    "t_rnncell_loop": "closest pattern unrolled_recurrence",
}


def refusal(name: str) -> str | None:
    return REFUSED.get(name, REFUSED.get(name.split("__")[0]))


READ = [n for n in FILES if refusal(n) is None]
REFUSE = [n for n in FILES if refusal(n) is not None]


def feeds_of(name: str) -> dict[str, np.ndarray]:
    data = np.load(R6 / f"{name}.npz")
    return {k[3:]: data[k] for k in data.files if k.startswith("in:")}


def shrunk(name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The inputs with every axis the file declares symbolic one shorter (one sample, one step fewer), or
    None where the file declares none."""
    proto = onnx.load(str(R6 / ENTRIES[name]["file"]), load_external_data=False)
    out, any_dynamic = {}, False
    for v in proto.graph.input:
        if v.name not in feeds:
            continue
        a = feeds[v.name]
        dims = v.type.tensor_type.shape.dim
        index = tuple(slice(0, n - 1) if d.dim_param and n > 1 else slice(None) for d, n in zip(dims, a.shape))
        any_dynamic |= any(s.stop is not None for s in index)
        out[v.name] = np.ascontiguousarray(a[index])
    return out if any_dynamic else None


def relaid(model) -> tuple[set[str], set[str]]:
    """The graph inputs and outputs gateport reads batch-first from a time-major file, as its layout note
    names them (``model.source['layout']``: "inputs 'x', 'h0' time-major in the file, ...; outputs 'y' (...)")."""
    layout = model.source.get("layout", "")
    ins = layout.split(" time-major in the file", 1)[0] if "time-major in the file" in layout else ""
    outs = layout.split("outputs ", 1)[1].split(" (", 1)[0] if "outputs " in layout else ""
    return set(re.findall(r"'([^']*)'", ins)), set(re.findall(r"'([^']*)'", outs))


def reference(name: str, model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """onnxruntime on the original file, as gateport lays it out (batch-first)."""
    sess = ort.InferenceSession(str(R6 / ENTRIES[name]["file"]), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
    moved = relaid(model)[1]
    return [_time_major(o) if out.name in moved else o for o, out in zip(outs, sess.get_outputs())]


def gateport_inputs(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    moved = relaid(model)[0]
    return [_time_major(feeds[i.name]) if i.name in moved else feeds[i.name] for i in model.inputs]


def test_every_file_has_a_verdict():
    assert len(FILES) >= 90
    for n in FILES:  # what onnxruntime cannot run is refused
        if "onnxruntime_fails" in ENTRIES[n]:
            assert refusal(n), n
    assert all(e["failed"].strip() for e in ENTRIES.values() if "failed" in e)
    assert sum((R6 / ENTRIES[n]["file"]).stat().st_size for n in FILES) < 1_000_000


@pytest.mark.parametrize("name", READ)
def test_reads_and_every_target_matches_onnxruntime(name, tmp_path):
    model = api.read(R6 / ENTRIES[name]["file"])
    torch_model, onnx_model = api.to_torch(model), api.to_onnx(model)
    api.convert(model, "keras", tmp_path / "m.keras")
    feeds = feeds_of(name)
    for run in (feeds, shrunk(name, feeds)):
        if run is None:
            continue
        want = reference(name, model, run)
        x = gateport_inputs(model, run)
        assert len(model.outputs) == len(want)
        errors = {"torch": max_error(run_torch(torch_model, x), want, "torch"),
                  "onnx": max_error(run_onnx(onnx_model, x), want, "onnx")}
        if run is feeds:  # (loading the Keras model is the slow part: once)
            errors["keras"] = max_error(run_keras(tmp_path / "m.keras", x), want, "keras")
        print(name, {k: v.shape for k, v in run.items()}, errors)
        assert all(err <= TOL for err in errors.values()), errors


@pytest.mark.parametrize("name", REFUSE)
def test_refused_in_one_line(name, tmp_path, capsys):
    path = R6 / ENTRIES[name]["file"]
    assert main(["convert", str(path), "--to", "torch", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and err.startswith("gateport: error: ") and str(path) in err
    assert re.search(r"(ONNX (node|LSTM|GRU|RNN|function)|initializer|input) '", err)
    assert refusal(name) in err
    assert not (tmp_path / "out").exists()
