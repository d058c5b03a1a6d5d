"""The red team's fifth round (tests/attacks_round5.py), a sample in CI: every case that once failed, and the
Python API given arguments of the wrong type.

The full round: ``python tests/attacks_round5.py``. Here the cases that failed before their fix run in their
own processes (round 4's runner: one line naming the file, no traceback, no raw escape, bounded time and
memory, inputs unchanged, exit 2 for a refusal); the API checks call converters.* in-process: each wrong
argument is one GateportError (a UsageError where the call itself is wrong), never a TypeError,
AttributeError or ValueError from deep inside, and nothing is written.
"""
import json
import zipfile

import numpy as np
import pytest

import converters
from attacks_round3 import failures
from attacks import read_keras, write_keras
from attacks_round4 import TINY
from attacks_round5 import K3_GRU, build, run_case5
from converters.errors import FormatError, GateportError, UnsupportedError, UsageError

#: cases that failed before their fix (name patterns)
ONCE_FAILED = ("verify --steps 2**63", "verify --to ',,,'", "dtype policy int8 (inspect)",
               "dtype policy object (onnx)", "dtype policy with escapes (inspect)", "-o . (onnx)",
               "Masking mask_value NaN (verify)", "Masking mask_value -1e308 (verify)",
               "Rescaling offset -1e308 (verify)", "an initializer with raw_data and float_data (inspect)")


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round5") / "cases"
    built = build(folder, groups=("options", "config", "numbers", "onnx", "output"))
    return folder, [c for c in built if any(c.name == p or c.name.startswith(p + " ") for p in ONCE_FAILED)]


def test_cases_that_once_failed(battery):
    folder, cases = battery
    assert all(any(c.name == p or c.name.startswith(p + " ") for c in cases) for p in ONCE_FAILED)
    found = failures(cases, run_case5, folder, timeout=120)
    assert not found, "\n".join(found)


def test_convert_refuses_arguments_of_the_wrong_type(tmp_path):
    """force="no" (a non-empty string: true) overwrote the user's file; a NUL in the output path was a
    ValueError; a name list given as a string or holding a number was written as it came."""
    existing = tmp_path / "exists.onnx"
    existing.write_bytes(b"keep")
    with pytest.raises(UsageError, match="force"):
        converters.convert(TINY, "onnx", existing, force="no")
    assert existing.read_bytes() == b"keep"
    with pytest.raises(UsageError, match="NUL"):
        converters.convert(TINY, "onnx", str(tmp_path / "a\x00b.onnx"))
    for kwargs in ({"input_names": "ab"}, {"output_names": [1]}, {"output_names": b"y"}):
        with pytest.raises(UsageError, match="names"):
            converters.convert(TINY, "onnx", tmp_path / "n.onnx", **kwargs)
    with pytest.raises(UsageError, match="config"):
        converters.read(TINY, 5)  # os.stat(5) is a file descriptor's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.onnx"]


def test_verify_refuses_arguments_of_the_wrong_type():
    """steps='3' was a TypeError deep in numpy, artifacts as a list an AttributeError, object arrays as inputs
    a TypeError in the reference; an empty target list ran nothing and said 'unproven' (exit 3)."""
    for kwargs in ({"steps": "3"}, {"batch": True}, {"batch": 2.5}, {"steps": 2 ** 63}, {"batch": 0}):
        with pytest.raises(UsageError, match="--batch|--steps"):
            converters.verify(TINY, ["numpy"], **kwargs)
    with pytest.raises(UsageError, match="artifact"):
        converters.verify(TINY, ["onnx"], artifacts=["onnx.onnx"])
    with pytest.raises(UsageError, match="target"):
        converters.verify(TINY, [])
    model = converters.read(TINY)
    shape = (2, *model.inputs[0].shape)
    for bad in (np.full(shape, object(), dtype=object), np.zeros(shape, "c8"), np.full(shape, "1")):
        with pytest.raises(FormatError, match="numbers"):
            converters.verify(TINY, ["numpy"], inputs=[bad])


def test_dtype_policies_are_checked(tmp_path):
    """A policy name that is no dtype (text, 'object') was read as float32; an integer policy on a layer with
    weights (Keras computes it in int8) was converted as float32: refused, naming the layer."""
    members = read_keras(K3_GRU)
    for name, error, match in [("int8", UnsupportedError, "quantized or integer"),
                               ("object", FormatError, "dtype policy"),
                               ("float32\x1b[31m", FormatError, "dtype policy")]:
        cfg = json.loads(members["config.json"])
        layer = next(e for e in cfg["config"]["layers"] if e["name"] == "encoder")
        layer["config"]["dtype"] = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
                                    "registered_name": None}
        src = write_keras(tmp_path / "m.keras", {**members, "config.json": json.dumps(cfg).encode()})
        with pytest.raises(error, match=match) as info:
            converters.read(src)
        assert info.value.layer and "encoder" in info.value.layer
    # the quantized policies Keras writes stay refused as quantized, the mixed ones read
    from converters.readers.keras_context import dtype_policy

    assert dtype_policy({"dtype": "int8_from_mixed_bfloat16"}) == "int8_from_mixed_bfloat16"
    assert dtype_policy({"dtype": {"config": {"name": "mixed_float16"}}}) == "mixed_float16"
    with pytest.raises(GateportError):
        dtype_policy({"dtype": ["float32"]})


def test_an_empty_npz_is_refused(tmp_path):
    empty = tmp_path / "e.npz"
    with zipfile.ZipFile(empty, "w"):
        pass
    with pytest.raises(GateportError):
        converters.verify(TINY, ["numpy"], inputs=empty)
