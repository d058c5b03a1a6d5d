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
from pathlib import Path

import foreign_onnx
import numpy as np
import pytest

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
    return foreign_onnx.feeds_of(R6 / f"{name}.npz")


def test_every_file_has_a_verdict():
    assert len(FILES) >= 90
    for n in FILES:  # what onnxruntime cannot run is refused
        if "onnxruntime_fails" in ENTRIES[n]:
            assert refusal(n), n
    assert all(e["failed"].strip() for e in ENTRIES.values() if "failed" in e)
    assert sum((R6 / ENTRIES[n]["file"]).stat().st_size for n in FILES) < 1_000_000


@pytest.mark.parametrize("name", READ)
def test_reads_and_every_target_matches_onnxruntime(name, tmp_path):
    foreign_onnx.check_reads(R6 / ENTRIES[name]["file"], feeds_of(name), tmp_path)


@pytest.mark.parametrize("name", REFUSE)
def test_refused_in_one_line(name, tmp_path, capsys):
    foreign_onnx.check_refused(R6 / ENTRIES[name]["file"], refusal(name), tmp_path, capsys)
