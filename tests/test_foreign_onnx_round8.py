"""ONNX files written by other tools, round 8 (fixtures/make_foreign_onnx_round8.py, built here in a temporary
folder: nothing is stored): torch.onnx (TorchScript exporter, opsets 9-20) of the PyTorch recurrent idioms rounds
3-7 did not have - ``h0``/``c0`` model inputs with ``h_n``/``c_n`` returned (batch-first and time-major, stacked,
bidirectional, ``bias=False``), ``torch.cat((h_n[-2], h_n[-1]), 1)``, ``out[:, -1, :H]`` with ``out[:, 0, H:]``,
``h_n.view(layers, dirs, batch, H)[-1]``, max / sum / mean+max over time, attention pooling, LayerNorm, a residual
Linear, ``nn.Embedding(padding_idx=0)``, one module applied twice (shared initializers), two modules in
sequence - and what the ONNX tools then do to them: onnxruntime's offline optimizer (BASIC, EXTENDED, and of
a file with external data, writing its initializers external), ``onnx.version_converter`` (up to 11-21, down
to 9), ``onnx.compose`` (a normalizer merged before, a softmax after; every name prefixed), shape inference's
value_info with metadata / doc strings / names with spaces, slashes and non-ASCII letters, initializers as
``Constant`` nodes, and a float16 graph with Cast at its float inputs and outputs; tf2onnx at opsets 9, 11 and
15 (stored) of tf-keras models with options earlier rounds did not use: ``Bidirectional(LSTM, return_state)``,
``SimpleRNN(return_sequences, return_state)``, ``GRU(stateful=True)`` (its state variable a zero constant),
``Bidirectional(GRU, merge_mode='sum')`` on the sequence, a wider ``LSTM(48)``, the graph input named
``input 1/x`` (a space and a slash).

Every file either reads, and gateport's PyTorch, ONNX and Keras models compute what onnxruntime computes on
the original file (<= TOL; with a dynamic batch and time also on one sample and one step fewer, in PyTorch and
ONNX), or is refused in one line naming the file, the node and what was expected.

The round (93 files): torch.onnx 35 (34 read), onnxruntime's optimizer 21 (20), tf2onnx 13 (13), version_converter
7 (7), onnx.compose 5 (5), shape inference + metadata + names 5 (5), Constant-node initializers 5 (4), float16 with
Cast at io 2 (0); 88 read, worst error PyTorch 1.9e-6, ONNX 3.6e-7, Keras 1.9e-6 (the relu RNN). Newly read:
``h_n.view(layers, dirs, batch, H)[k]`` (pattern ``layer_view_gather``) and ``cat(out[:, -1, :H], out[:, 0, H:])``
(one direction's half of one step of a bidirectional sequence). Refused: a slice of a one-direction sequence's
features (``y[..., :I]``: no Keras layer takes one) and float16 arithmetic inside.
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
import make_foreign_onnx_round8 as round8  # noqa: E402

#: tf2onnx's files (it runs in /work/fxenv only: stored under fixtures/foreign_onnx_round8)
STORED = {e["name"]: e for e in json.loads((round8.STORED / "manifest_keras.json").read_text())["files"]}
NAMES = round8.names() + list(STORED)

_FEATURE_SLICE = "expected Slice reversing a sequence in time or taking one direction's half"
#: name, its torch file (every file made from it) or '__<what was done>' -> what the one-line refusal says
REFUSED: dict[str, str] = {
    # a slice of the features of one direction's sequence (y[..., :I]): no Keras layer or IR op takes one
    "t_gru_twice__op14": _FEATURE_SLICE + " (closest pattern slice_one_squeeze: expected one index (step 1), "
                                          "found [0:4:1] on axis 2)",
    # float16 arithmetic inside (a float32 file rounds differently): refused at the first Cast to it
    "__fp16_io": "(Cast): expected a Cast to float, double, int32, int64 or bool, found element type 10 (float16)",
}
#: read, and written in PyTorch and ONNX; Keras refuses (name -> what its one line says)
KERAS_REFUSED: dict[str, str] = {}


def refusal(name: str) -> str | None:
    parts = name.split("__")
    return REFUSED.get(name) or REFUSED.get("__".join(parts[:2])) or REFUSED.get(f"__{parts[-1]}")


READ = [n for n in NAMES if refusal(n) is None]
REFUSE = [n for n in NAMES if refusal(n) is not None]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """name -> (folder, manifest entry): the files built here, and the stored tf2onnx ones."""
    out = tmp_path_factory.mktemp("foreign_onnx_round8")
    files = {e["name"]: (out, e) for e in round8.build(out)}
    return {**files, **{n: (round8.STORED, e) for n, e in STORED.items()}}


def test_every_file_has_a_verdict(built):
    assert list(built) == NAMES and len(NAMES) >= 90
    assert sum((round8.STORED / e["file"]).stat().st_size for e in STORED.values()) < 200_000
    assert not [n for n, (_, e) in built.items() if "failed" in e]
    assert not [n for n, (_, e) in built.items() if "onnxruntime_fails" in e and not refusal(n)]
    producers = [e for _, e in built.values() if e["tool"].startswith(("torch.onnx", "tf2onnx"))]
    assert len(producers) == len(round8.TORCH_NETS) + len(STORED)
    assert all(e["onnxruntime_vs_producer"] <= round8.PRODUCER_TOL for e in producers)


@pytest.mark.parametrize("name", READ)
def test_reads_and_every_target_matches_onnxruntime(name, built, tmp_path):
    out, entry = built[name]
    foreign_onnx.check_reads(out / entry["file"], foreign_onnx.feeds_of(out / f"{name}.npz"), tmp_path,
                             keras_refused=KERAS_REFUSED.get(name))


@pytest.mark.parametrize("name", REFUSE)
def test_refused_in_one_line(name, built, tmp_path, capsys):
    out, entry = built[name]
    foreign_onnx.check_refused(out / entry["file"], refusal(name), tmp_path, capsys)
