"""Review of this session's TensorFlow calls, normalization layers and their IR ops: numbers past float's
range (JSON's ``1e400`` read as an int), and axes past a tensor's rank in a stranger's .gates manifest, are
refused in one line naming the file, never as an unexpected OverflowError, AxisError or ONNX inference error."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest

from converters.cli import main
from converters.ops import is_finite

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"
BIG = 10**400  # what json.loads makes of the digits of 1e400


def _refused(capsys, path: Path, *command: str) -> str:
    args = ["inspect", str(path)] if not command else ["convert", str(path), *command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"gateport: error: {path}: "), err
    assert "unexpected" not in err and "Traceback" not in err, err
    return err


def test_is_finite_takes_ints_past_floats_range_as_not_finite():
    assert is_finite(2**70) and is_finite(-1e308) and is_finite(0)
    assert not any(is_finite(v) for v in (BIG, -BIG, float("nan"), float("inf"), True, "1", None))


def _h5_with(tmp_path: Path, name: str, layer: str, change) -> Path:
    path = tmp_path / f"{name}.h5"
    shutil.copy(MODELS / f"{name}.h5", path)
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        (item,) = [it for it in cfg["config"]["layers"] if it["config"]["name"] == layer]
        change(item)
        f.attrs["model_config"] = json.dumps(cfg)
    return path


def _keyword(**kw):
    def change(item):
        item["inbound_nodes"][0][3].update(kw)
    return change


def _config(**kw):
    def change(item):
        item["config"].update(kw)
    return change


@pytest.mark.parametrize("name,layer,change,expect", [
    ("ops_mix", "tf.math.truediv", _keyword(y=BIG), "the other operand: expected a tensor or a finite number"),
    ("ops_stack", "tf.clip_by_value", _keyword(clip_value_max=BIG), "clip high: expected a tensor or a finite"),
    ("conv_groupnorm_gru", "group_norm", _config(epsilon=BIG), "epsilon: expected a finite number"),
    ("rescaling_gru", "rescaling", _config(scale=[1.0, BIG]), "scale: expected numbers"),
], ids=["tf_constant", "clip_bound", "epsilon", "rescaling_scale"])
def test_keras_numbers_past_floats_range_are_refused_in_one_line(capsys, tmp_path, name, layer, change, expect):
    assert expect in _refused(capsys, _h5_with(tmp_path, name, layer, change))


def _gates_with(tmp_path: Path, name: str, op: str, key: str, value) -> Path:
    """Fixture ``name`` as a .gates file whose first ``op`` node has option ``key`` set to ``value``."""
    base = tmp_path / f"{name}.gates"
    source = next(p for p in (MODELS / f"{name}.h5", MODELS / f"{name}.keras") if p.exists())
    assert main(["-q", "convert", str(source), "--to", "gates", "-o", str(base)]) == 0
    data = base.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    manifest = json.loads(header["__metadata__"]["gateport.manifest"])
    next(node for node in manifest["nodes"] if node["op"] == op)["options"][key] = value
    header["__metadata__"]["gateport.manifest"] = json.dumps(manifest)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    path = tmp_path / f"{op}_{key}.gates"
    path.write_bytes(struct.pack("<Q", len(head)) + head + data[8 + n:])
    return path


@pytest.mark.parametrize("name,op,key", [("ops_mix", "scalar", "value"), ("norm_lstm", "normalization", "epsilon"),
                                         ("conv_groupnorm_gru", "group_norm", "epsilon")])
def test_gates_numbers_past_floats_range_are_refused_in_one_line(capsys, tmp_path, name, op, key):
    err = _refused(capsys, _gates_with(tmp_path, name, op, key, BIG))
    assert f"options.{key}: expected a finite number" in err


@pytest.mark.parametrize("op,key,value", [("reduce", "axes", [7]), ("reduce", "axes", list(range(1, 31))),
                                          ("slice", "axis", 5)])
def test_gates_axes_past_the_inputs_rank_are_refused_in_one_line(capsys, tmp_path, op, key, value):
    """Before: the PyTorch and numpy writers wrote code that fails when run, ONNX failed shape inference."""
    path = _gates_with(tmp_path, "ops_mix", op, key, value)
    assert "tensor shapes the ops can compute" in _refused(capsys, path)
    _refused(capsys, path, "--to", "onnx", "-o", str(tmp_path / "m.onnx"))


def test_verify_names_the_file_when_the_reference_refuses_the_ir(capsys, tmp_path):
    """The numpy reference's refusal of a .gates IR (rms_norm over more axes than its input has) names the file."""
    path = _gates_with(tmp_path, "k3_lstm_rms_dense", "rms_norm", "axes", [-3, -2, -1])
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"gateport: error: {path}: rms_norm"), err


@pytest.mark.parametrize("command", [("--to", "torch"), ("--to", "numpy"), ("--to", "onnx"), ("--to", "keras")])
def test_gates_conv1d_transpose_output_padding_not_below_strides_is_refused(capsys, tmp_path, command):
    """Keras (and the Keras reader) refuse output_padding >= strides; a .gates IR holding it is refused by every
    writer too, not written as a .keras file Keras cannot load."""
    path = _gates_with(tmp_path, "conv_transpose_lstm", "conv1d_transpose", "output_padding", 2)  # strides 2
    out = tmp_path / ("out.onnx" if "onnx" in command else "out.keras" if "keras" in command else "out")
    assert "expected output_padding less than strides 2 (as Keras), found 2" in _refused(capsys, path, *command,
                                                                                         "-o", str(out))


def test_onnx_sequence_lens_of_floats_is_refused_naming_its_values(capsys, tmp_path):
    """A stranger's sequence_lens constant holding NaN: the refusal shows the values (was: 'cannot read this
    node (ValueError: cannot convert float NaN to integer)')."""
    onnx = pytest.importorskip("onnx")
    from test_onnx_rnn_variants import B, T, variant

    proto = variant(seq_lens=[5, 3, 1], dims=(T, B))
    (lens,) = [i for i in proto.graph.initializer if i.name == "sequence_lens"]
    lens.CopyFrom(onnx.numpy_helper.from_array(np.array([np.nan, 1, 2], np.float32), "sequence_lens"))
    path = tmp_path / "lens.onnx"
    onnx.save(proto, str(path))
    assert "sequence_lens 'sequence_lens' (constant [nan, 1.0, 2.0]" in _refused(capsys, path)


def test_gates_mask_value_past_floats_range_is_refused_in_one_line(capsys, tmp_path):
    """Options that take any number (NaN too: mask_not_equal's value, Masking's mask_value) still refuse an int
    no float holds (was: an unexpected OverflowError in the PyTorch writer)."""
    path = _gates_with(tmp_path, "embedding_mask_lstm", "mask_not_equal", "value", BIG)
    assert "options.value: expected a number" in _refused(capsys, path, "--to", "torch", "-o", str(tmp_path / "t"))
