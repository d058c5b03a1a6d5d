"""ONNX files written by other tools, round 9 (fixtures/make_foreign_onnx_round9.py; the torch files built here in
a temporary folder, nothing stored): torch.onnx (TorchScript exporter, opsets 7-20) of the PyTorch recurrent idioms
rounds 3-8 did not have - ``h_n.squeeze(0)``, ``h_n.permute(1, 0, 2).reshape(batch, -1)``, every layer's final
state flattened, ``cat(h_n[0], h_n[1])``, ``h_n.view(L, 2, B, H)`` with ``cat(v[-1, 0], v[-1, 1])``, ``out[:, -1]``
of a bidirectional sequence, ``out[-1]`` time-major, a Conv1d (+ MaxPool1d) front end, a Linear + tanh input
projection, LayerNorm of the input, ``torch.flip`` of the input and output, ``x.new_zeros`` / ``torch.zeros``
initial states, a bidirectional LSTM feeding a GRU, an encoder-decoder (the encoder's ``(h, c)`` the decoder's
initial state), two outputs, log_softmax and ReLU-MLP heads, LSTMCell / GRUCell loops over a fixed T,
``pack_padded_sequence`` (``enforce_sorted=False``, time-major, with ``h0``/``c0``, bidirectional) - and the export
options people set: no ``dynamic_axes``, a dynamic batch only, ``keep_initializers_as_inputs=True``,
``do_constant_folding=False`` (the gate reordering of the weights left in the graph), opsets 7 and 8; then
onnxruntime's offline optimizer, ``onnx.version_converter`` (up to 15-21), ``onnx.compose``, shape inference with
metadata and unusual names, initializers as ``Constant`` nodes (make_foreign_onnx_round8.transform); tf2onnx at
opsets 13, 17 and 18 (stored) of tf-keras models with masks (Masking, Embedding(mask_zero)), ``go_backwards``
(also inside Bidirectional), Bidirectional concat / sum / ave, ``reset_after=False``, ``stateful=False`` with
``return_state``, encoder-decoders (``initial_state=`` the encoder's states, two inputs).

Every file either reads, and gateport's PyTorch, ONNX and Keras models compute what onnxruntime computes on
the original file (<= TOL; with a dynamic batch and time also on one sample and one step fewer, in PyTorch and
ONNX), or is refused in one line naming the file, the node and what was expected.

The round (97 files): torch.onnx 48 (44 read), onnxruntime's optimizer 22 (20), tf2onnx 13 (13), version_converter 6
(6), shape inference + metadata + names 4 (4), onnx.compose 2 (2), Constant-node initializers 2 (2); 91 read, worst
error PyTorch 4.8e-7 (the bidirectional RNN seq2seq), ONNX 2.4e-7, Keras 3.6e-7 (the eleven packed-sequence files:
Keras refused, as for every lengths input). Newly read: a 1-D pooling's channels-first output made time-major by one
Transpose [2, 0, 1] (Conv1d -> MaxPool1d -> nn.LSTM), a recurrent node's initial state taken from another node's
final state (encoder-decoders: torch.onnx and tf2onnx), ``pack_padded_sequence(enforce_sorted=False)`` of one or
stacked (bidirectional) layers (pattern ``sorted_batch``), onnxruntime EXTENDED's one Split of a stacked ``h0`` /
``c0`` into the layers' initial states (GatherSliceToSplitFusion; read as the Slices it replaces). Refused:
LSTMCell / GRUCell loops (unrolled: their Split of the input into steps), the ConstantFill of opsets 7-8
(onnxruntime refuses it too) and onnxruntime's FusedConv.
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
import make_foreign_onnx_round9 as round9  # noqa: E402

#: tf2onnx's files (it runs in /work/fxenv only: stored under fixtures/foreign_onnx_round9)
STORED = {e["name"]: e for e in json.loads((round9.STORED / "manifest_keras.json").read_text())["files"]}
NAMES = round9.names() + list(STORED)

_CONTRIB = "expected standard ONNX ops, found 'FusedConv' of domain 'com.microsoft'"
_UNROLLED = "(Split): expected Split on axis 0 of stacked states"
_CONSTANT_FILL = "expected standard ONNX ops, found 'ConstantFill', which no ONNX opset defines"
#: name (or the part before '__': every file made from it) -> what the one-line refusal says
REFUSED: dict[str, str] = {
    # an nn.LSTMCell / nn.GRUCell called in a Python loop: the steps unrolled (torch splits x into the T steps)
    "t_lstmcell_states_loop__op13": _UNROLLED,
    "t_grucell_stack_seq__op17": _UNROLLED,
    # opsets 7 and 8: torch writes the zero initial state as ConstantFill (removed from ONNX; onnxruntime refuses too)
    "t_lstm_last__op7": _CONSTANT_FILL,
    "t_bigru_seq__op8": _CONSTANT_FILL,
    # onnxruntime's contrib op (Conv + Relu fused at EXTENDED)
    "t_cnn_gru__op13__ort_extended": _CONTRIB,
    "t_cnn_pool_bilstm__op17__ort_extended": _CONTRIB,
}

#: read, and written in PyTorch and ONNX; Keras has no layer making a mask from lengths (tests/test_onnx_sequence_lens.py)
KERAS_REFUSED = {n: "found 'mask_lengths'" for n in round9.names() if "_packed_" in n}


def refusal(name: str) -> str | None:
    return REFUSED.get(name) or REFUSED.get("__".join(name.split("__")[:2]))


READ = [n for n in NAMES if refusal(n) is None]
REFUSE = [n for n in NAMES if refusal(n) is not None]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """name -> (folder, manifest entry): the files built here, and the stored tf2onnx ones."""
    out = tmp_path_factory.mktemp("foreign_onnx_round9")
    files = {e["name"]: (out, e) for e in round9.build(out)}
    return {**files, **{n: (round9.STORED, e) for n, e in STORED.items()}}


def test_every_file_has_a_verdict(built):
    assert list(built) == NAMES and len(NAMES) >= 80
    assert sum((round9.STORED / e["file"]).stat().st_size for e in STORED.values()) < 180_000
    assert not [n for n, (_, e) in built.items() if "failed" in e]
    # what onnxruntime cannot run (ConstantFill at opsets 7 and 8) is refused
    assert not [n for n, (_, e) in built.items() if "onnxruntime_fails" in e and not refusal(n)]
    producers = [e for _, e in built.values() if e["tool"].startswith(("torch.onnx", "tf2onnx"))]
    assert len(producers) == len(round9.TORCH_NETS) + len(STORED)
    assert all(e["onnxruntime_vs_producer"] <= round9.PRODUCER_TOL for e in producers if "onnxruntime_fails" not in e)


@pytest.mark.parametrize("name", READ)
def test_reads_and_every_target_matches_onnxruntime(name, built, tmp_path):
    out, entry = built[name]
    foreign_onnx.check_reads(out / entry["file"], foreign_onnx.feeds_of(out / f"{name}.npz"), tmp_path,
                             keras_refused=KERAS_REFUSED.get(name))


@pytest.mark.parametrize("name", REFUSE)
def test_refused_in_one_line(name, built, tmp_path, capsys):
    out, entry = built[name]
    foreign_onnx.check_refused(out / entry["file"], refusal(name), tmp_path, capsys)
