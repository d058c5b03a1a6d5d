"""ONNX files written by other tools, round 10 (fixtures/make_foreign_onnx_round10.py; the TorchScript files built here
in a temporary folder, the dynamo and tf2onnx files stored): torch.onnx's TorchScript exporter (opsets 9-20) and
dynamo exporter (opsets 18-21) of ``nn.RNN(nonlinearity='relu')`` with three bidirectional layers, GRU / LSTM with
``bias=False``, ``proj_size``, time-major layers with a dynamic sequence length (or only that), three stacked layers
with ``dropout`` at eval, three bidirectional layers, sequences of one step, dot-product attention after the layer
(``bmm`` of the last step with the sequence, ``softmax`` over time, ``bmm`` back) and self-attention, a float mask
input multiplied into the input or the output (a masked mean over time), ``nn.Embedding`` with int64 ids batch-first
and time-major, ``model.half()``; onnxruntime's optimizer at ``ORT_ENABLE_ALL`` (and BASIC / EXTENDED),
``onnx.version_converter`` from opset 9 up to every opset 10-21, shape inference with data propagation; tf2onnx at
opsets 9-18 of tf-keras GRU ``reset_after`` True / False, SimpleRNN(relu), stacked Bidirectional LSTMs with
``return_state`` and stacked Bidirectional GRUs, Conv1D -> LSTM, TimeDistributed(Dense), ``inputs_as_nchw`` and
tf2onnx's optimizers off.

Every file either reads, and gateport's PyTorch, ONNX and Keras models compute what onnxruntime computes on
the original file (<= TOL; with a dynamic batch and time also on one sample and one step fewer, in PyTorch and
ONNX), or is refused in one line naming the file, the node and what was expected.

Newly read this round: a time-major ``nn.Embedding`` -> recurrent layer -> ``Linear`` on the sequence (the ids
relaid batch-first; the Transpose back to time-major after the Gather was appended at the end of the graph, so
the output was not seen as time-major and the Linear refused); tf2onnx's Bidirectional feeding the next
Bidirectional as it is (both directions' time-major sequences joined by ``Concat`` on axis 2, read as Keras'
concat merge: only axis -1 was); ``torch.bmm`` / ``matmul`` of two batch-first rank-3 tensors (Keras Dot, axes
(2, 1), or (2, 2) of a ``transpose(1, 2)``: dot-product attention and self-attention), ``Unsqueeze`` of a tensor
after its batch axis (Keras Reshape: ``mask.unsqueeze(-1)``, ``h.unsqueeze(2)``), a time-major merged sequence
transposed by [1, 2, 0] (torch folds ``y.transpose(0, 1).transpose(1, 2)``), ``Div`` of a tensor by a number or by
a tensor of its rank (``scores / sqrt(d)``, a masked sum by its count) and ``Clip`` by constant bounds
(``count.clamp(min=1)``). Refused in one line: ``model.half()`` (float16 arithmetic), the dynamo exporter's
``nn.LSTM(proj_size)`` (a plain LSTM whose initial state is not its hidden size; onnxruntime refuses it too) and
its ``nn.RNN(relu)`` unrolled into steps, onnxruntime's contrib ``FusedMatMul`` at ``ORT_ENABLE_ALL``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import foreign_onnx
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures"))
import make_foreign_onnx_round10 as round10  # noqa: E402

#: the dynamo exporter's files (it needs onnxscript) and tf2onnx's (TensorFlow): stored
STORED = {e["name"]: e for m in ("manifest_dynamo.json", "manifest_keras.json")
          for e in json.loads((round10.STORED / m).read_text())["files"]}
NAMES = round10.names() + list(STORED)

_CONTRIB = "expected standard ONNX ops, found 'FusedMatMul' of domain 'com.microsoft'"
#: name (or the part before '__': every file made from it) -> what the one-line refusal says
REFUSED: dict[str, str] = {
    # float16 arithmetic inside: every target would need float16 rounding at every op
    "t_lstm_half__op13": "expected a float32, integer or bool (mask) input, found element type 10 (float16)",
    # F.scaled_dot_product_attention: its scale 1 / sqrt(d) computed from the query's Shape at run time
    "t_lstm_sdpa__op17": "(Sqrt): expected a Keras-level (batch-first) tensor",
    # nn.MultiheadAttention: the packed in-projection split and reshaped into heads
    "t_gru_mha__op17": "(MatMul): expected MatMul of a tensor by a constant 2-D weight",
    # the mask compared and cast ((mask > 0.5).float()), then unsqueezed
    "t_gru_bool_mask_mean__op14": "(Unsqueeze): expected Unsqueeze gateport's writer emits, found Unsqueeze [-1] of a "
                                  "partial op",
    # onnxruntime's contrib op (the attention's MatMul of a Transpose fused at ALL)
    "t_lstm_attn_last__op14__ort_all": _CONTRIB,
    # the dynamo exporter writes nn.LSTM(proj_size) as a plain LSTM (onnxruntime refuses it too)
    "d_lstm_proj__op18": "nn.LSTM with proj_size, which no ONNX LSTM computes",
}
#: what the tools themselves refuse to write (the record is the tool's message)
TOOL_FAILS = {"t_lstm_proj__op14": "LSTMs with projections"}
#: the dynamo exporter writes the traced number of steps into the Reshape of a time-major Y ([T, -1, H]): the
#: file declares the time dynamic, yet onnxruntime fails on any other length (gateport pins it: _pin_traced_time)
TRACED_TIME = {"d_gru_tm_seq__op18"}


def refusal(name: str) -> str | None:
    return REFUSED.get(name) or REFUSED.get("__".join(name.split("__")[:2]))


READ = [n for n in NAMES if refusal(n) is None and n not in TOOL_FAILS]
REFUSE = [n for n in NAMES if refusal(n) is not None]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """name -> (folder, manifest entry): the files built here, and the stored ones."""
    out = tmp_path_factory.mktemp("foreign_onnx_round10")
    files = {e["name"]: (out, e) for e in round10.build(out)}
    return {**files, **{n: (round10.STORED, e) for n, e in STORED.items()}}


def test_every_file_has_a_verdict(built):
    assert list(built) == NAMES and len(NAMES) >= 80
    assert sum((round10.STORED / e["file"]).stat().st_size for e in STORED.values()) < 450_000
    assert {n for n, (_, e) in built.items() if "failed" in e} == set(TOOL_FAILS)
    assert all(TOOL_FAILS[n] in e["failed"] for n, (_, e) in built.items() if "failed" in e)
    # what onnxruntime cannot run is refused
    assert not [n for n, (_, e) in built.items() if "onnxruntime_fails" in e and not refusal(n)]
    producers = [e for _, e in built.values() if e["tool"].startswith(("torch.onnx", "tf2onnx"))
                 and "failed" not in e and "onnxruntime_fails" not in e and "onnxruntime_vs_producer" in e]
    assert len(producers) >= 50
    assert all(e["onnxruntime_vs_producer"] <= round10.PRODUCER_TOL for e in producers)


@pytest.mark.parametrize("name", READ)
def test_reads_and_every_target_matches_onnxruntime(name, built, tmp_path):
    out, entry = built[name]
    foreign_onnx.check_reads(out / entry["file"], foreign_onnx.feeds_of(out / f"{name}.npz"), tmp_path,
                             shrink=name not in TRACED_TIME)


@pytest.mark.parametrize("name", REFUSE)
def test_refused_in_one_line(name, built, tmp_path, capsys):
    out, entry = built[name]
    foreign_onnx.check_refused(out / entry["file"], refusal(name), tmp_path, capsys)
