"""ONNX files written by other tools, round 5 (fixtures/make_foreign_onnx_round5.py): the recurrent ops
themselves and what surrounds them - peepholes, clip, input_forget, layout 1, activation lists with
alpha/beta, reverse, GRU linear_before_reset 0/1, RNN Relu, optional inputs '' in the middle, initial
states as graph inputs and Constant nodes, sequence_lens as a graph input, Y_h or Y_c only, batch 1, the
node inside model-local functions, metadata_props and doc_strings with control characters, value_info
that disagrees with the weights, onnx-simplifier style rewrites; torch.onnx of 3-layer bidirectional
batch_first nn.LSTM / nn.GRU / nn.RNN at opsets 9..20 (dropout exported in eval and in training mode,
proj_size, batch 1), tf2onnx at opsets 9..18 with inputs_as_nchw.

Every file either reads, and gateport's PyTorch, ONNX and Keras models compute what onnxruntime computes
on the original file (<= TOL; a layout-1 file, which onnxruntime's kernels refuse, against its layout-0
twin with the inputs transposed), or is refused in one line naming the file, the node (or input) and
what was expected. A file onnxruntime itself cannot run is refused.
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
from converters.runtimes import run_keras, run_onnx, run_torch
from helpers import TOL, max_error

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

R5 = Path(__file__).resolve().parent.parent / "fixtures" / "foreign_onnx_round5"
ENTRIES = {e["name"]: e for part in ("helper", "torch", "keras") if (R5 / f"manifest_{part}.json").exists()
           for e in json.loads((R5 / f"manifest_{part}.json").read_text())["files"]}
FILES = [n for n, e in ENTRIES.items() if "file" in e]

_PEEP = "expected P (peepholes) absent or all zero, found nonzero peephole weights"
_CLIP = "expected no clip attribute, found clip="
_NO_ACT = "expected a recurrent activation the IR has"
#: name (or the part before '__': every variant of a base) -> what the one-line refusal says
REFUSED = {
    "lstm_peep_init": _PEEP,
    "lstm_peep_const": _PEEP,
    "fn_lstm_peepholes": _PEEP,
    "lstm_peep_input": "expected P as an initializer or constant, found 'P'",
    "lstm_clip_big": _CLIP + "1e+09",
    "gru_clip_reverse": _CLIP + "2",
    "meta_control_refused_node_name": _CLIP + "1",
    "bilstm_input_forget": "expected input_forget=0, found input_forget=1",
    "rnn_leaky_0p1": f"{_NO_ACT} (Affine(1, 0), Sigmoid, Tanh, Relu, HardSigmoid(0.2, 0.5) or (0.166667, 0.5), "
                     "Softsign, Softplus, Elu(1), LeakyRelu(0.2) or (0), ScaledTanh(1, 1), ThresholdedRelu(0)), "
                     "found LeakyRelu(alpha=0.1)",
    "rnn_thresholded_relu_0p5": "ThresholdedRelu(alpha=0.5)",
    "gru_scaled_tanh_1p7159": "ScaledTanh(alpha=1.7159, beta=0.666)",
    "lstm_affine_recurrent": "Affine(alpha=0.5, beta=0.5)",
    "lstm_hard_sigmoid_0p25": "HardSigmoid(alpha=0.25, beta=0.5)",
    "gru_elu_alpha_0p5": "Elu(alpha=0.5)",
    "gru_initial_nonzero_constant": "found 'initial_h': a nonzero constant",
    # onnxruntime refuses these too: the declared input shapes are not the weights'
    "vi_input_features": "W: expected 7 input columns (the input's size), found 4",
    "vi_initial_h_shape": "found 'initial_h': a tensor of shape [1, 'batch', 7]",
    # local functions: the spec forbids recursion (onnxruntime is not given the file), a call inlining past
    # the node budget (16 nested functions each calling the one below twice), a call of no function
    "fn_recursive": "expected model-local functions that do not call themselves, found 'Block'",
    "fn_blowup": "ONNX nodes once inlined: expected at most 30000, found 32767",
    "fn_undefined": "expected standard ONNX ops, found 'Block' of domain 'local.rnn'",
    # torch's dynamo exporter writes nn.LSTM(proj_size) as a plain LSTM onnxruntime refuses too
    "t_lstm_proj_bi": "expected initial state 'val_19' of the node's hidden size 3, found zeros of width 5",
    # tf2onnx at opset 9 keeps TensorFlow's ReverseV2 (onnxruntime refuses the file too)
    "k_bigru_back__op9": "found 'ReverseV2', which no ONNX opset defines",
    "k_bigru_back__op9_nchw": "found 'ReverseV2', which no ONNX opset defines",
    # a declared feature size past the byte budget: refused before anything is allocated
    "vi_input_features_huge": "found '[0, 0, 1099511627776]'",
}


def refusal(name: str) -> str | None:
    return REFUSED.get(name, REFUSED.get(name.split("__")[0]))


#: files onnxruntime cannot run that gateport reads all the same, and what it is compared with instead
ORT_CANNOT = {"lstm_opset20_no_hidden_attr": "onnxruntime's LSTM kernel requires hidden_size (lstm_base.h:24)"}
#: files whose model reads (PyTorch and ONNX match onnxruntime) but the Keras writer refuses, and its line:
#: sequence_lens given at run time is a per-sample mask (IR mask_lengths), which no Keras 3 layer builds
#: from lengths
KERAS_REFUSES = {n: "found 'mask_lengths'" for n in ("lstm_seq_lens_input_reverse", "bigru_seq_lens_input_initial")}
READ = [n for n in FILES if refusal(n) is None]
REFUSE = [n for n in FILES if refusal(n) is not None]


def feeds_of(name: str) -> dict[str, np.ndarray]:
    data = np.load(R5 / f"{name}.npz")
    return {k[3:]: data[k] for k in data.files if k.startswith("in:")}


def _time_major(a: np.ndarray) -> np.ndarray:
    """[time | dirs, batch, ...] -> [batch, time | dirs, ...] (Y [time, dirs, batch, hidden] -> [batch, time,
    dirs, hidden]); 1-d (sequence_lens) unchanged."""
    if a.ndim == 4:
        return a.transpose(2, 0, 1, 3)
    return a.transpose(1, 0, *range(2, a.ndim)) if a.ndim >= 2 else a


def relaid(model) -> tuple[bool, set[str]]:
    """Whether gateport reads the file's inputs time-major -> batch-first, and which outputs it reads
    batch-first (the reader says so in ``model.source['layout']``, README "ONNX files from other tools")."""
    layout = model.source.get("layout", "")
    outputs = layout.split("outputs ", 1)[1].split(" (", 1)[0] if "outputs " in layout else ""
    return "time-major in the file" in layout, set(re.findall(r"'([^']*)'", outputs))


def reference(name: str, model) -> list[np.ndarray]:
    """onnxruntime on the original file, as gateport lays it out (batch-first), or on its layout-0 twin."""
    e, feeds = ENTRIES[name], feeds_of(name)
    if "twin" in e:
        sess = ort.InferenceSession(str(R5 / e["twin"]), providers=["CPUExecutionProvider"])
        twin_feeds = {k: v.transpose(1, 0, 2) if v.ndim == 3 else v for k, v in feeds.items()}
        return [_time_major(o) for o in sess.run(None, twin_feeds)]
    if name in ORT_CANNOT:  # the same node with hidden_size written
        proto = onnx.load(str(R5 / e["file"]))
        for n in proto.graph.node:
            if n.op_type in ("LSTM", "GRU", "RNN"):
                n.attribute.append(onnx.helper.make_attribute("hidden_size", 5))
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    else:
        sess = ort.InferenceSession(str(R5 / e["file"]), providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    moved = relaid(model)[1]
    return [_time_major(o) if out.name in moved else o for o, out in zip(outs, sess.get_outputs())]


def gateport_inputs(name: str, model) -> list[np.ndarray]:
    feeds, time_major = feeds_of(name), relaid(model)[0]
    return [_time_major(feeds[i.name]) if time_major else feeds[i.name] for i in model.inputs]


def test_every_file_has_a_verdict():
    assert len(FILES) >= 100
    # what onnxruntime cannot run is refused, or compared with a twin / a fixed copy named above
    for n in FILES:
        if "onnxruntime_fails" in ENTRIES[n]:
            assert refusal(n) or "twin" in ENTRIES[n] or n in ORT_CANNOT, n
    assert all(refusal(n) for n in FILES if "onnxruntime_not_run" in ENTRIES[n])
    assert all(ENTRIES[n]["onnxruntime_vs_producer"] <= 1e-5 for n in READ if "onnxruntime_vs_producer" in ENTRIES[n])
    assert all(e["failed"].strip() for e in ENTRIES.values() if "failed" in e)


@pytest.mark.parametrize("name", READ)
def test_reads_and_every_target_matches_onnxruntime(name, tmp_path):
    model = api.read(R5 / ENTRIES[name]["file"])
    want = reference(name, model)
    x = gateport_inputs(name, model)
    assert len(model.outputs) == len(want)
    errors = {"torch": max_error(run_torch(api.to_torch(model), x), want, "torch"),
              "onnx": max_error(run_onnx(api.to_onnx(model), x), want, "onnx")}
    if name in KERAS_REFUSES:
        with pytest.raises(UnsupportedError, match=re.escape(KERAS_REFUSES[name])):
            api.convert(model, "keras", tmp_path / "m.keras")
    else:
        api.convert(model, "keras", tmp_path / "m.keras")
        errors["keras"] = max_error(run_keras(tmp_path / "m.keras", x), want, "keras")
    print(name, errors)
    assert all(err <= TOL for err in errors.values()), errors


@pytest.mark.parametrize("name", REFUSE)
def test_refused_in_one_line(name, tmp_path, capsys):
    path = R5 / ENTRIES[name]["file"]
    assert main(["convert", str(path), "--to", "torch", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and err.startswith("gateport: error: ") and str(path) in err
    assert re.search(r"(ONNX (node|LSTM|GRU|RNN|function)|initializer|input) '", err)
    assert refusal(name) in err
    assert not (tmp_path / "out").exists()


def test_control_characters_in_metadata_never_reach_the_terminal(capsys):
    """producer_name, metadata_props and doc_strings holding terminal escapes, CR, NUL and a right-to-left
    override (meta_control) are shown escaped: ``inspect``'s output holds no control character but newlines,
    and the refusal of a node whose name holds them stays one line (meta_control_refused_node_name)."""
    assert main(["inspect", str(R5 / "meta_control.onnx")]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "tool\\x1b[2J" in text
    assert not [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"]


def test_local_functions_are_named_where_the_producer_is_shown():
    model = api.read(R5 / "fn_bilstm_nested.onnx")
    assert "model-local functions 'Encoder', 'RecurrentBlock' inlined" in model.source["producer"]
    assert "functions" not in api.read(R5 / "lstm_Yc_only.onnx").source


@pytest.mark.parametrize("change, expected", [
    ("kernel", "expected the axis Unsqueeze added convolved by 1 (kernel 1, stride 1, no padding), found W of shape "
               "[6, 4, 2, 3]"),
    ("pads", "found W of shape [6, 4, 1, 3], kernel_shape [1, 3], strides [1, 1], dilations [1, 1], pads [1, 1, 0, 1]"),
    ("bias", "expected a bias of shape (6, 1) (one float per filter) added to a Conv1D's (batch, filters, time) "
             "output, found a float32 constant of shape [6]"),
    ("squeeze", "expected Squeeze of the axis 2 the 2-D Conv of a Conv1D was given, found axes [3]"),
])
def test_tf2onnx_conv1d_other_than_its_form_is_refused(change, expected, tmp_path, capsys):
    """tf2onnx's Conv1D (k_conv_lstm_state: ExpandDims, a 2-D Conv with a (1, k) kernel, Squeeze, the bias added
    as (filters, 1)) changed where the 1-D Conv it reads as would compute something else: a kernel, or padding,
    on the added axis, a bias broadcast over time (the file's 6 steps) rather than filters, the other axis
    squeezed. Each is refused in one line naming the node."""
    proto = onnx.load(str(R5 / "k_conv_lstm_state__op13.onnx"))
    inits = {i.name: i for i in proto.graph.initializer}
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    attrs = {a.name: a for a in conv.attribute}
    if change == "kernel":
        w = onnx.numpy_helper.to_array(inits[conv.input[1]])
        inits[conv.input[1]].CopyFrom(onnx.numpy_helper.from_array(np.concatenate([w, w], 2), conv.input[1]))
        attrs["kernel_shape"].ints[:] = [2, 3]
    elif change == "pads":
        attrs["pads"].ints[:] = [1, 1, 0, 1]
    elif change == "bias":
        add = next(n for n in proto.graph.node if n.op_type == "Add")
        b = onnx.numpy_helper.to_array(inits[add.input[1]])
        inits[add.input[1]].CopyFrom(onnx.numpy_helper.from_array(b.reshape(-1), add.input[1]))
    else:
        squeeze = next(n for n in proto.graph.node if n.op_type == "Squeeze" and n.input[0] == conv.output[0])
        axes = onnx.numpy_helper.from_array(np.array([3], np.int64), "other_axis")
        proto.graph.initializer.append(axes)
        squeeze.input[1] = "other_axis"
    path = tmp_path / "conv.onnx"
    onnx.save(proto, str(path))
    assert main(["convert", str(path), "--to", "torch", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and "ONNX node '" in err and expected in err, err
