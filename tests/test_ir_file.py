"""The IR file: bit-identical round trip, readable by the safetensors library, manifest valid."""
import json

import numpy as np
import pytest

from converters import ir_file, safetensors_io
from converters.errors import FormatError, OutputError
from converters.ir import Model, Node, TensorSpec, set_recurrent_weights
from helpers import SCHEMA_PATH


def small_model(rng):
    lstm = Node("lstm_1", "lstm", ["x"], ["lstm_1"], {
        "units": 3, "input_size": 2, "activation": "tanh", "recurrent_activation": "hard_sigmoid_keras2",
        "use_bias": True, "go_backwards": False, "return_sequences": False, "return_state": False,
        "bidirectional": True, "merge_mode": "concat", "zero_output_for_mask": False, "stateful": False},
        source={"class_name": "Bidirectional"})
    for d in ("forward", "backward"):
        set_recurrent_weights(lstm, d, "keras", rng.standard_normal((12, 2)).astype(np.float32),
                              rng.standard_normal((12, 3)).astype(np.float32),
                              rng.standard_normal(12).astype(np.float32))
    dense = Node("dense", "dense", ["lstm_1"], ["dense"], {"units": 1, "activation": "linear", "use_bias": True},
                 {"weight": rng.standard_normal((1, 6)).astype(np.float32), "bias": np.float32([0.5])})
    return Model("m", [TensorSpec("x", (None, 2))], ["dense"], [lstm, dense], {"format": "test"})


def test_round_trip_is_bit_identical(tmp_path):
    model = small_model(np.random.default_rng(0))
    path = ir_file.save(model, tmp_path / "m.gates")
    back = ir_file.load(path)
    assert ir_file.manifest(back) == ir_file.manifest(model)
    for a, b in zip(model.nodes, back.nodes):
        assert a.weights.keys() == b.weights.keys()
        for k in a.weights:
            assert a.weights[k].dtype == b.weights[k].dtype
            assert a.weights[k].tobytes() == b.weights[k].tobytes()


def test_file_reads_with_the_safetensors_library(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = small_model(np.random.default_rng(1))
    path = ir_file.save(model, tmp_path / "m.safetensors")
    tensors = safetensors_numpy.load_file(str(path))
    assert np.array_equal(tensors["dense/weight"], model.node("dense").weights["weight"])
    # and the other way round: a file the library wrote reads here
    safetensors_numpy.save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp_path / "lib.st"),
                                metadata={"k": "v"})
    tensors, meta = safetensors_io.load(tmp_path / "lib.st")
    assert meta == {"k": "v"} and np.array_equal(tensors["a"], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_manifest_matches_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(ir_file.manifest(small_model(np.random.default_rng(2))), schema)


def test_existing_output_needs_force(tmp_path):
    model = small_model(np.random.default_rng(3))
    path = ir_file.save(model, tmp_path / "m.gates")
    with pytest.raises(OutputError, match="--force"):
        ir_file.save(model, path)
    ir_file.save(model, path, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m.gates"]  # no temp file left behind


@pytest.mark.parametrize("blob", [b"", b"\x05\x00\x00\x00\x00\x00\x00\x00{", b"\xff" * 16,
                                  b"\x02\x00\x00\x00\x00\x00\x00\x00{}"])
def test_broken_files_are_format_errors(tmp_path, blob):
    p = tmp_path / "bad.gates"
    p.write_bytes(blob)
    with pytest.raises(FormatError):
        ir_file.load(p)
