"""ONNX files written by other tools, round 4 (fixtures/make_foreign_onnx_round4.py): recurrent models
after the exporter (onnxruntime's optimizer at BASIC / EXTENDED / ALL, onnx's version converter, external
data, float16 / bfloat16 / float64 rewrites, onnxruntime's dynamic quantization) and exporter options
the first rounds left out (torch.onnx opsets 9..20, no constant folding, keep_initializers_as_inputs,
export_params=False, dynamo; tf2onnx opsets 9..16); then hand-edited recurrent nodes (activations, clip,
input_forget, layouts, optional inputs left out in several positions, zero initial states as
initializers).

Every file either reads, and every target (PyTorch and ONNX; the generated numpy model and Keras too
for one file per kind) computes what onnxruntime computes on the file itself (<= TOL) and the producer's stored
output, or is refused in one line naming the file, the node (or tensor) and why. A file onnxruntime
itself cannot run is refused.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from converters import api
from converters.cli import main
from converters.runtimes import run_onnx, run_torch
from helpers import TOL, max_error

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
R4 = ROOT / "fixtures" / "foreign_onnx_round4"
MODELS = [m for f in ("manifest_torch.json", "manifest_keras.json") if (R4 / f).exists()
          for m in json.loads((R4 / f).read_text())["models"]]
FILES = [(m["base"], e["variant"]) for m in MODELS for e in m["files"] if "file" in e]
ENTRY = {(m["base"], e["variant"]): e for m in MODELS for e in m["files"]}
EXPECTED = {m["base"]: m["expected"] for m in MODELS}

#: variant (or (base, variant)) -> what the one-line refusal says
REFUSED = {
    # export_params=False: the weights are graph inputs onnxruntime needs fed
    "ts_noparams": "expected W as an initializer or constant, found ",
    # the whole graph retyped: the input's element type (float16 10, float64 11, bfloat16 16), or the Cast after
    # the input to bfloat16 (bfloat16 weights Cast to float are read: round 7)
    "fp16_graph": "input 'x': expected a float32, integer or bool (mask) input, found element type 10",
    "fp64_graph": "input 'x': expected a float32, integer or bool (mask) input, found element type 11",
    "bf16_graph": "input 'x': expected a float32, integer or bool (mask) input, found element type 16 (bfloat16)",
    "bf16_keep_io": "(Cast): expected a Cast to float, double, int32, int64 or bool, found element type 16 (bfloat16)",
    # float32 in and out, float16 inside: the Cast after the input
    "fp16_keep_io": "(Cast): expected a Cast to float, double, int32, int64 or bool, found element type 10",
    # float64 inside (onnxruntime's LSTM/GRU/RNN kernels are float32 only)
    "fp64_keep_io": "expected float32 weights (the type of X), found float64",
    # onnxruntime.quantization.quantize_dynamic: DynamicQuantizeLSTM (com.microsoft) or MatMulInteger
    "qdyn": "a quantized model",
    "qdyn_per_channel": "a quantized model",
}
#: (base, variant) -> refusal, where the base decides: onnxruntime's fused contrib ops, and heads the
#: reader does not read in any file
_CONTRIB = "of domain 'com.microsoft' (an onnxruntime contrib op: onnxruntime's graph optimizer writes these at " \
           "ORT_ENABLE_EXTENDED and above)"
REFUSED_FILES: dict[tuple[str, str], str] = {
    **{("lstm_gelu", v): f"found 'BiasGelu' {_CONTRIB}" for v in ("ort_extended", "ort_all", "ort_extended_op13")},
    **{("gru_scaled_matmul", v): f"found 'FusedMatMul' {_CONTRIB}"
       for v in ("ort_extended", "ort_all", "ort_extended_op13")},
    # LayerNormFusion of the opset-13 (decomposed) LayerNorm: an onnxruntime op written in the standard domain
    ("lstm_layernorm", "ort_extended_op13"): "found 'SimplifiedLayerNormalization', which no ONNX opset defines",
}


def refusal(base: str, variant: str) -> str | None:
    return REFUSED_FILES.get((base, variant)) or REFUSED.get(variant)


READ = [c for c in FILES if refusal(*c) is None]
REFUSE = [c for c in FILES if refusal(*c) is not None]
#: one file per kind also run as the generated numpy model (api.verify) and converted to Keras
EVERY_TARGET = {("lstm_seq", "ts_op9"), ("gru2_last_h", "ort_extended"), ("bilstm_last_out", "vc9_op21"),
         ("rnn_relu_seq", "ext_per_tensor"), ("gru2_last_h", "ts_kiai"), ("lstm_seq", "dynamo_op20"),
         ("k_bilstm", "tf2onnx_op9"), ("k_gru_seq", "vc9_op21")}


def ids(cases):
    return [f"{b}-{v}" for b, v in cases]


def path_of(base: str, variant: str) -> Path:
    return R4 / ENTRY[(base, variant)]["file"]


def producer_io(base: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(R4 / EXPECTED[base])
    return data["in:0"], data["out:0"]


#: onnxruntime's refusals of valid files: its shape inference does not read int64 constants kept as
#: external data (tf2onnx's Slice starts/ends saved with size_threshold=0): such a file is read, and
#: compared with onnxruntime on the same model with its external data loaded (onnx.load)
ORT_LIMITS = ("Cannot parse data from external tensors",)


def ort_limited(case) -> bool:
    """onnxruntime refuses the file (the manifest's line is cut: asked again) for one of ORT_LIMITS."""
    if "onnxruntime_fails" not in ENTRY[case]:
        return False
    try:
        ort.InferenceSession(str(path_of(*case)), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's own refusal, read for its reason
        return any(s in str(e) for s in ORT_LIMITS)
    return False


def ort_on_file(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime on the file itself (by path: external data resolved next to it), or on the model
    onnx.load makes of it (external data inlined) where onnxruntime cannot load the file (ORT_LIMITS)."""
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - only the limits named above fall back
        if not any(s in str(e) for s in ORT_LIMITS):
            raise
        sess = ort.InferenceSession(onnx.load(str(path)).SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_every_file_has_a_verdict():
    assert len(FILES) >= 150 and MODELS
    # a file onnxruntime refuses (or dies on) is one gateport refuses
    # (the refused ones are not loaded here: onnxruntime 1.32 dies of a segmentation fault on some)
    assert all(ort_limited(c) for c in FILES if "onnxruntime_fails" in ENTRY[c] and not refusal(*c))
    # what the tools could not make is recorded with their line; nothing else is missing
    failed = {c: e["failed"] for c, e in ENTRY.items() if "failed" in e}
    assert all(line.strip() for line in failed.values())
    assert all(ENTRY[c]["onnxruntime_vs_producer"] <= 1e-5 for c in READ if "onnxruntime_fails" not in ENTRY[c])


@pytest.mark.parametrize("base,variant", READ, ids=ids(READ))
def test_reads_and_every_target_matches_onnxruntime(base, variant, tmp_path):
    path = path_of(base, variant)
    x, want = producer_io(base)
    ref = ort_on_file(path, x)
    assert float(np.max(np.abs(ref - want))) <= 1e-5
    model = api.read(path)
    assert [i.name for i in model.inputs] == ["x"]  # initializers listed as inputs are read as constants
    torch_model = api.to_torch(model)
    assert max_error(run_torch(torch_model, [x]), [ref], "torch") <= TOL
    assert max_error(run_onnx(api.to_onnx(model), [x]), [ref], "onnx") <= TOL
    if (base, variant) in EVERY_TARGET:  # the generated numpy model and Keras too (slower: child processes)
        from converters.runtimes import run_keras

        report = api.verify(path, ["torch", "numpy", "onnx"], inputs=[x], expected=[ref])
        assert report.ok, report.rows
        api.convert(model, "keras", tmp_path / "m.keras")
        assert max_error(run_keras(tmp_path / "m.keras", [x]), [ref], "keras") <= TOL
    # the exporters' dynamic batch (and time, where the file has it): two samples, three steps
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(path), load_external_data=False)
            .graph.input[0].type.tensor_type.shape.dim]
    if isinstance(dims[0], str):
        short = x[:2, :3] if isinstance(dims[1], str) else x[:2]
        got = run_torch(torch_model, [short])[0]
        assert max_error([got], [ort_on_file(path, short)], "torch, other sizes") <= TOL


@pytest.mark.parametrize("base,variant", REFUSE, ids=ids(REFUSE))
def test_refused_in_one_line(base, variant, tmp_path, capsys):
    path = path_of(base, variant)
    assert main(["convert", str(path), "--to", "torch", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and err.startswith("gateport: error: ") and str(path) in err
    assert re.search(r"(ONNX (node|LSTM|GRU|RNN)|initializer|input) '", err)
    assert refusal(base, variant) in err
    assert not (tmp_path / "out").exists()


def test_keep_initializers_as_inputs_reads_the_initializers(tmp_path):
    """keep_initializers_as_inputs=True lists every weight as a graph input too (an input onnxruntime
    lets a caller override): gateport reads the initializers as constants, says so where it names the
    producer (``inspect``), its model takes only ``x``, and the converted model computes what onnxruntime
    computes when nothing overrides them."""
    path = path_of("lstm_seq", "ts_kiai")
    proto = onnx.load(str(path))
    weights = {t.name for t in proto.graph.initializer}
    assert weights and weights <= {i.name for i in proto.graph.input}
    x, want = producer_io("lstm_seq")
    model = api.read(path)
    assert [i.name for i in model.inputs] == ["x"]
    assert f"{len(weights)} initializers also listed as graph inputs read as the file's constants" \
        in model.source["producer"]
    assert "initializer_inputs" not in api.read(path_of("lstm_seq", "ts_op17")).source
    assert max_error(run_torch(api.to_torch(model), [x]), [want], "torch") <= TOL
    # an override changes onnxruntime's answer: it is the caller's, not part of the model read
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    bias = next(t for t in proto.graph.initializer if t.name == "out.bias")
    moved = sess.run(None, {"x": x, "out.bias": onnx.numpy_helper.to_array(bias) + 1})[0]
    assert np.allclose(moved, want + 1, atol=1e-5)


def _external_copy(tmp_path: Path, location: str) -> Path:
    """ext_all (every tensor in one file) copied to ``tmp_path/model/`` with its tensors' location set."""
    src = path_of("lstm_seq", "ext_all")
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(src.with_name(src.name + ".data"), folder / (src.name + ".data"))
    proto = onnx.load(str(src), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    out = folder / "m.onnx"
    onnx.save(proto, str(out))
    return out


@pytest.mark.parametrize("where", ["../secret.data", "/etc/hostname", "link.data", "sub/../../secret.data"])
def test_external_data_outside_the_folder_is_refused(where, tmp_path, capsys):
    """The external data files onnx.save_model writes are read from the model's folder only: a location
    leading out (``..``, absolute, a symlink to a file outside) is refused in one line, nothing read."""
    path = _external_copy(tmp_path, where)
    (tmp_path / "secret.data").write_bytes((path.parent / "lstm_seq__ext_all.onnx.data").read_bytes())
    os.symlink(tmp_path / "secret.data", path.parent / "link.data")
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert "outside the model's folder" in err or "relative path inside the model's folder" in err


def test_external_data_in_a_subfolder_reads(tmp_path):
    """Tensors saved one file each under a subfolder (location ``<stem>_weights/<tensor>``) read when the
    model is moved together with its folder."""
    src = path_of("rnn_relu_seq", "ext_per_tensor")
    shutil.copy(src, tmp_path / src.name)
    shutil.copytree(src.parent / f"{src.stem}_weights", tmp_path / f"{src.stem}_weights")
    x, want = producer_io("rnn_relu_seq")
    assert max_error(run_torch(api.to_torch(api.read(tmp_path / src.name)), [x]), [want], "torch") <= TOL


# -- hand-edited recurrent nodes ----------------------------------------------------------------------
from test_onnx_rnn_variants import B, H, NODE, check_read, numpy_helper, variant  # noqa: E402


def _zero_initial_initializers(options: dict):
    """The variant with initial_h (initial_c) given as all-zero initializers (as exporters fold zeros)."""
    proto = variant(**options)
    node = next(n for n in proto.graph.node if n.name == NODE)
    dirs = 2 if options.get("direction") == "bidirectional" else 1
    names = ["initial_h"] + (["initial_c"] if node.op_type == "LSTM" else [])
    ins = list(node.input) + [""] * (8 - len(node.input))
    for k, name in zip((5, 6), names):
        proto.graph.initializer.append(numpy_helper.from_array(np.zeros((dirs, B, H), np.float32), name))
        ins[k] = name
    while ins[-1] == "":
        ins.pop()
    node.input[:] = ins
    return proto


def _blank_inputs(options: dict, blanks: tuple[int, ...]):
    """The variant with the optional inputs at positions ``blanks`` (3 B, 4 sequence_lens, 5 initial_h,
    6 initial_c, 7 P) written as "" explicitly, later ones kept."""
    proto = variant(**options)
    node = next(n for n in proto.graph.node if n.name == NODE)
    ins = list(node.input) + [""] * (8 - len(node.input))
    for k in blanks:
        ins[k] = ""
    node.input[:] = ins[:8 if node.op_type == "LSTM" else 6]
    return proto


#: id -> (proto maker, onnxruntime's twin maker or None for the file itself): read exactly
HAND_READ = {
    "lstm_zero_initial_initializers": (lambda: _zero_initial_initializers({}), None),
    "bigru_zero_initial_initializer_lbr1": (lambda: _zero_initial_initializers(
        {"op": "GRU", "direction": "bidirectional", "linear_before_reset": 1}), None),
    "lstm_all_optional_blank_B_input_states": (lambda: _blank_inputs({"initial": "input"}, (3, 4, 7)), None),
    "gru_blank_B_and_lens_initial_input": (lambda: _blank_inputs({"op": "GRU", "initial": "input"}, (3, 4)), None),
    "rnn_all_blank_trailing": (lambda: _blank_inputs({"op": "RNN"}, (3, 4, 5)), None),
    "lstm_hard_sigmoid_relu_bidirectional_layout1": (
        lambda: variant(layout=1, opset=14, direction="bidirectional", initial="input",
                        activations=["HardSigmoid", "Relu", "Relu"] * 2, activation_alpha=[0.2, 0.2],
                        activation_beta=[0.5, 0.5]),
        lambda: variant(layout=0, opset=14, direction="bidirectional", initial="input",
                        activations=["HardSigmoid", "Relu", "Relu"] * 2, activation_alpha=[0.2, 0.2],
                        activation_beta=[0.5, 0.5])),
    "gru_lbr0_reverse_layout1_initial": (
        lambda: variant(op="GRU", layout=1, opset=14, direction="reverse", initial="input", linear_before_reset=0),
        lambda: variant(op="GRU", layout=0, opset=14, direction="reverse", initial="input", linear_before_reset=0)),
    "rnn_relu_bidirectional_layout1": (
        lambda: variant(op="RNN", layout=1, opset=14, direction="bidirectional", activations=["Relu", "Relu"]),
        lambda: variant(op="RNN", layout=0, opset=14, direction="bidirectional", activations=["Relu", "Relu"])),
    "lstm_affine_identity_g_h": (lambda: variant(activations=["Sigmoid", "Affine", "Affine"],
                                                 activation_alpha=[1.0, 1.0], activation_beta=[0.0, 0.0]), None),
    "lstm_input_forget_0_explicit_clip_absent_opset22": (lambda: variant(opset=22, input_forget=0), None),
}


@pytest.mark.parametrize("name", list(HAND_READ))
def test_hand_edited_node_reads_exactly(name, tmp_path):
    make, twin = HAND_READ[name]
    proto = make()
    onnx.checker.check_model(proto, full_check=True)
    check_read(proto, twin() if twin else proto, tmp_path, False)


#: id -> (proto maker, what the one-line refusal names besides the file and the node)
HAND_REFUSED = {
    "lstm_hard_sigmoid_with_clip": (lambda: variant(activations=["HardSigmoid", "Tanh", "Tanh"],
                                                    activation_alpha=[0.2], activation_beta=[0.5], clip=1.0),
                                    "clip=1"),
    # ScaledTanh(1, 1) is tanh and reads (activations.ONNX_RECURRENT_SAME): a scale of 2 does not
    "lstm_scaled_tanh_g": (lambda: variant(activations=["Sigmoid", "ScaledTanh", "Tanh"], activation_alpha=[2.0],
                                           activation_beta=[1.0]), "ScaledTanh(alpha=2, beta=1)"),
    "lstm_affine_scaled_g_h": (lambda: variant(activations=["Sigmoid", "Affine", "Affine"],
                                               activation_alpha=[2.0, 2.0], activation_beta=[0.0, 0.0]),
                               "Affine(alpha=2"),
    "lstm_input_forget_1_layout1": (lambda: variant(input_forget=1, layout=1, opset=14), "input_forget=1"),
    "gru_clip_bidirectional": (lambda: variant(op="GRU", clip=0.5, direction="bidirectional"), "clip=0.5"),
    "lstm_nonzero_initial_h_initializer_blank_c": (
        lambda: _blank_inputs({"initial": "const"}, (6,)), "found 'initial_h': a nonzero constant"),
}


@pytest.mark.parametrize("name", list(HAND_REFUSED))
def test_hand_edited_node_is_refused_in_one_line(name, tmp_path, capsys):
    make, named = HAND_REFUSED[name]
    path = tmp_path / f"{name}.onnx"
    onnx.save(make(), str(path))
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and err.startswith("gateport: error: ") and str(path) in err
    assert NODE in err and named in err

