"""ONNX files written by other tools, round 7 (fixtures/make_foreign_onnx_round7.py, built here in a temporary
folder: nothing is stored): onnxruntime's offline optimizer at ORT_ENABLE_BASIC and EXTENDED (its transpose
optimizer pushes torch's Transpose back to batch-first through ``ReduceMean``, whose axes become ``[0]``; at
EXTENDED a ``Gemm`` + ``Relu`` becomes the contrib ``FusedGemm``), external data beside the model and in a
subfolder, float16 / bfloat16 weights with Cast nodes and a whole-float16 graph, ``layout=1`` nodes (onnxruntime's
CPU kernels refuse them: the reference is onnx's own ``ReferenceEvaluator``), every activation of the spec with
alpha/beta, ``clip``, ``input_forget``, peepholes, initial states as graph inputs and as nonzero constants,
``sequence_lens`` a graph input, stacked nodes, the last step by Gather/Slice, Reduce over time (keepdims both
ways), Gemm ``alpha``/``transB`` and MatMul+Add heads, Flatten, symbolic dims named differently, hostile-but-valid
doc strings / metadata / value_info, opsets 9-23 (``onnx.version_converter`` to 21-23), torch.onnx exports and
tf2onnx (stored: GlobalMax/AveragePooling1D after a Bidirectional, a Conv1D before a GRU, initial states as inputs,
a GRU with Keras 2's hard_sigmoid left as a Loop whose body clips each gate with Max/Min).

Every file either reads, and gateport's PyTorch, ONNX and Keras models compute what onnxruntime computes on
the original file (<= TOL; with a dynamic batch and time also on one sample and one step fewer, in PyTorch and
ONNX), or is refused in one line naming the file, the node and what was expected.

The round (105 files): onnx.helper 57 (42 read), onnxruntime's optimizer 18 (15), tf2onnx 18 (14), torch.onnx 5 (5),
external data 4 (4), version_converter 3 (3); 83 read, worst error PyTorch 6.0e-7, ONNX 2.7e-7, Keras 9.5e-7 (the
two sequence_lens files: Keras refused, as for every lengths input). Newly read: Reduce over time of a time-major
sequence or merge (onnxruntime's and tf2onnx's transpose optimizers), Gemm alpha/beta, bfloat16 weights, a Conv1D's
output made time-major by one Transpose, tf-keras' hard_sigmoid GRU Loop.
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
import make_foreign_onnx_round7 as round7  # noqa: E402

#: tf2onnx's files (it runs in /work/fxenv only: stored under fixtures/foreign_onnx_round7)
STORED = {e["name"]: e for e in json.loads((round7.STORED / "manifest_keras.json").read_text())["files"]}
NAMES = round7.names() + list(STORED)

_ACTIVATION = "expected a recurrent activation the IR has"
_CONSTANT_STATE = "found 'h0c': a nonzero constant"
_ONE_DIRECTION = "expected Slice reversing a sequence in time or taking one direction's half"
#: name (or the part before '__': every variant of a base) -> what the one-line refusal says
REFUSED: dict[str, str] = {
    # activations with alpha / beta the IR's activations do not have (Keras and PyTorch neither)
    "h14_lstm_hardsigmoid_ab": _ACTIVATION + " (Affine(1, 0)",
    "h14_bilstm_hardsigmoid_ab": _ACTIVATION,
    "h14_lstm_affine_g": _ACTIVATION,
    "h14_lstm_scaledtanh": _ACTIVATION,
    "h14_rnn_thresholdedrelu": _ACTIVATION,
    "h14_rnn_elu": _ACTIVATION,
    "h14_lstm_mixed_gh": "expected the LSTM activations g and h equal (Keras uses one activation for both), found "
                         "g=tanh, h=relu",
    # what a Keras or PyTorch cell does not compute
    "h14_lstm_clip": "expected no clip attribute, found clip=0.7",
    "h14_lstm_clip_huge": "expected no clip attribute, found clip=1e+30",
    "h14_lstm_input_forget": "expected input_forget=0, found input_forget=1",
    "h14_lstm_peepholes": "expected P (peepholes) absent or all zero, found nonzero peephole weights",
    # a nonzero initial state of a fixed batch: the IR's initial states are model inputs
    "h14_lstm_state_consts": _CONSTANT_STATE,
    "h14_bigru_state_consts": _CONSTANT_STATE,
    # one direction's final state sliced out and concatenated with the next node's: no Keras layer gives it
    "h14_lstm_stacked_bidir_reshape": _ONE_DIRECTION,
    # tf2onnx: LSTM(unroll=True) (Split into steps), Cropping1D of the time-major sequence (a Slice of every axis,
    # then Flatten)
    "k_lstm_unroll": "(Split): expected Split on axis 0 of stacked states",  # (closest pattern unrolled_recurrence)
    "k_lstm_lastslice_dense": "(Slice): expected Slice reversing a sequence in time or taking one direction's half",
    # onnxruntime's contrib op
    "h13_gru_gemm_relu_head__ort_extended": "expected standard ONNX ops, found 'FusedGemm' of domain 'com.microsoft'",
    # a float16 graph
    "h14_lstm_all_fp16": "expected a float32, integer or bool (mask) input, found element type 10 (float16)",
}
#: read, and written in PyTorch and ONNX; Keras has no layer making a mask from lengths (tests/test_onnx_sequence_lens.py)
KERAS_REFUSED = {"h14_lstm_seq_lens_input": "found 'mask_lengths'", "h14_bigru_seq_lens_input": "found 'mask_lengths'"}
#: onnxruntime's CPU kernels refuse layout=1 (deep_cpu_lstm.h "Batchwise recurrent operations (layout == 1) are
#: not supported"): onnx's ReferenceEvaluator (onnx/reference/ops/op_lstm.py, op_gru.py, op_rnn.py) is the reference
LAYOUT1 = "Batchwise recurrent operations (layout == 1)"


def refusal(name: str) -> str | None:
    return REFUSED.get(name, REFUSED.get(name.split("__")[0]))


READ = [n for n in NAMES if refusal(n) is None]
REFUSE = [n for n in NAMES if refusal(n) is not None]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """name -> (folder, manifest entry): the files built here, and the stored tf2onnx ones."""
    out = tmp_path_factory.mktemp("foreign_onnx_round7")
    files = {e["name"]: (out, e) for e in round7.build(out)}
    return {**files, **{n: (round7.STORED, e) for n, e in STORED.items()}}


def reference_evaluator(path: Path, feeds: dict) -> tuple[list[str], list]:
    from onnx.reference import ReferenceEvaluator

    proto = onnx.load(str(path))
    return [o.name for o in proto.graph.output], ReferenceEvaluator(proto).run(None, feeds)


def test_every_file_has_a_verdict(built):
    assert list(built) == NAMES and len(NAMES) >= 60
    assert not [n for n, (_, e) in built.items() if "failed" in e]
    for n, (_, e) in built.items():  # what onnxruntime cannot run is refused, but for layout=1
        if "onnxruntime_fails" in e:
            assert refusal(n) or LAYOUT1 in e["onnxruntime_fails"], (n, e["onnxruntime_fails"])
    out = built[NAMES[0]][0]
    assert (out / "data" / "bilstm.weights").is_file() and (out / "weights.bin").is_file()
    assert sum((round7.STORED / e["file"]).stat().st_size for e in STORED.values()) < 200_000


@pytest.mark.parametrize("name", READ)
def test_reads_and_every_target_matches_onnxruntime(name, built, tmp_path):
    out, entry = built[name]
    run = reference_evaluator if LAYOUT1 in entry.get("onnxruntime_fails", "") else foreign_onnx.ort_outputs
    foreign_onnx.check_reads(out / entry["file"], foreign_onnx.feeds_of(out / f"{name}.npz"), tmp_path, run,
                             KERAS_REFUSED.get(name))


@pytest.mark.parametrize("name", REFUSE)
def test_refused_in_one_line(name, built, tmp_path, capsys):
    out, entry = built[name]
    foreign_onnx.check_refused(out / entry["file"], refusal(name), tmp_path, capsys)
