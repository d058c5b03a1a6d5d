"""Helpers shared by the reader/writer round-trip tests: fixtures, Keras 3 runs, bitwise comparisons."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from converters import reference
from helpers import TOL, max_error  # noqa: F401 - shared with the tests importing them from here
from converters.ir import Model, Node

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = json.loads((ROOT / "fixtures" / "fixtures.json").read_text())
FIXTURE = {f["name"]: f for f in FIXTURES}
CORPUS = json.loads((ROOT / "fixtures" / "corpus" / "manifest.json").read_text())
#: Fixture features whose layers gateport's ONNX reader does not read back yet (every writer and runtime
#: handles them: tests/test_layers_coverage.py); tests that read gateport's ONNX files back leave them out.
NOT_READ_FROM_ONNX = frozenset({
    "attention", "additive_attention", "multi_head_attention", "dot", "softmax_mask",
    "conv_lstm",  # an unrolled graph of Conv/Split/Mul nodes (onnx_conv_lstm.py), no recurrent node to read
    "conv2d",  # Conv2D / pooling 2-D: Conv, MaxPool, AveragePool on 4-D tensors (onnx_conv2d.py), not read back
    "tensor_ops",  # TensorFlow calls / keras.ops: Slice/Gather/Reduce*/element-wise nodes (keras_tf_ops.py)
    "masked_merge",  # Keras 3's Multiply of masked inputs: its fill of 1 as IR scalar/binary element-wise nodes
    # Concatenate of a Bidirectional's final h states: read back as the layer's merged output (the same numbers,
    # one concatenate node fewer); tests/test_realistic_round5.py reads these files back against Keras' outputs
    "state_concat"})


def read_from_onnx(entry: dict) -> bool:
    """Whether gateport's ONNX reader reads back the ONNX file gateport writes for this fixture."""
    return not NOT_READ_FROM_ONNX & set(entry["features"])


def fixture_io(entry: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(inputs in Keras order, expected outputs) of a fixture or corpus entry."""
    data = np.load(ROOT / entry["expected"])
    return ([data[f"in:{n}"] for n in entry["inputs"]],
            [data[f"out:{k}"] for k in range(entry["n_outputs"])])


def fixture_model(name: str) -> Model:
    from converters.readers import read

    entry = FIXTURE[name]
    return read(ROOT / entry["file"], ROOT / entry["config"] if entry["config"] else None)


def corpus_path(entry: dict) -> Path:
    """The real model file of a corpus entry (it lives outside the repository: skip when absent)."""
    import pytest

    path = (ROOT / entry["file"]).resolve()
    if not path.is_file():
        pytest.skip(f"corpus file {path} is not available")
    return path


def keras_run(path: str | os.PathLike, inputs: list[np.ndarray], model=None) -> list[np.ndarray]:
    """Outputs of a Keras 3 file (``keras.models.load_model``, no custom objects) or of ``model``."""
    import keras

    model = model or keras.models.load_model(path)
    out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [keras.ops.convert_to_numpy(o) for o in out]


def reference_error(a: Model, b: Model, inputs: list[np.ndarray]) -> float:
    return max_error(reference.run(b, inputs), reference.run(a, inputs))


def assert_bit_identical(a: Node, b: Node) -> None:
    """Same weight names, dtypes and bytes."""
    assert sorted(a.weights) == sorted(b.weights), f"{a.name}: {sorted(a.weights)} vs {sorted(b.weights)}"
    for key, value in a.weights.items():
        other = b.weights[key]
        assert value.dtype == other.dtype and value.shape == other.shape, f"{a.name} {key}"
        assert value.tobytes() == other.tobytes(), f"{a.name} {key}: not bit-identical"


#: recurrent options that change what a layer computes
COMPUTING_OPTIONS = ("units", "activation", "recurrent_activation", "reset_after", "go_backwards",
                     "return_sequences", "return_state", "bidirectional", "merge_mode")


def computing_options(node: Node) -> dict:
    o = {k: node.options.get(k) for k in COMPUTING_OPTIONS if k in node.options}
    if node.op == "gru":
        o.setdefault("reset_after", True)
    if not node.options.get("bidirectional"):
        o.pop("merge_mode", None)
    if node.mask:
        o["zero_output_for_mask"] = bool(node.options.get("zero_output_for_mask"))
    return o
