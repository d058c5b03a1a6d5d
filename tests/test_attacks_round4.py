"""The red team's fourth round (tests/attacks_round4.py), a sample in CI: every case that once failed.

The full round: ``python tests/attacks_round4.py``. Here the cases that failed before their fix run in
their own processes (round 3's runner: one line naming the file, no traceback, no raw escape, bounded
time and memory, inputs unchanged), plus the mechanisms' unit checks through the Python API.
"""
import numpy as np
import pytest

from attacks_round3 import failures
from attacks_round4 import MULTI, TINY, build, run_case4
from converters.errors import FormatError, GateportError, UnsupportedError, UsageError

#: cases that failed before their fix (name patterns); the slow ones (hangs, a 2 GiB ConstantOfShape, a 3 GB
#: file, a 1.5 GiB zip member) only in the full round
ONCE_FAILED = ("verify --artifact onnx=<a FIFO>", "verify --artifact onnx=</dev/zero>",
               "verify --artifact onnx=<a folder>", "verify --artifact keras=<a FIFO>",
               "verify --artifact torch=<a FIFO>", "verify --seed -1", "verify --atol nan", "verify --rtol -1e-3",
               "verify --atol inf", "diff A A --atol nan", "verify --inputs one NaN",
               "explain --inputs float64 1e300", "output_layers empty (onnx)", "input_layers empty (torch)",
               "an input listed twice (onnx)", "output_layers empty (torch)", "an output that is an input (onnx)",
               "keras_history node index 0.5 (inspect)", "output_layers node index 0.0 (torch)",
               "verify --artifact onnx=<the written artifact>", "the same as --artifact onnx (verify)")


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round4") / "cases"
    built = build(folder, groups=("artifact", "options", "npz", "functional", "ortlog"))
    return folder, [c for c in built if any(c.name == p or c.name.startswith(p + " ") for p in ONCE_FAILED)]


def test_cases_that_once_failed(battery):
    folder, cases = battery
    assert all(any(c.name == p or c.name.startswith(p + " ") for c in cases) for p in ONCE_FAILED)
    found = failures(cases, run_case4, folder, timeout=120)
    assert not found, "\n".join(found)


def test_verify_and_diff_refuse_tolerances_and_seeds_that_decide_the_verdict():
    """A NaN or negative tolerance failed every comparison (diff called a model different from itself), an
    infinite one passed every comparison; a negative seed was 'a gateport bug'."""
    import converters
    from converters.diff import diff

    for kwargs in ({"atol": float("nan")}, {"rtol": -1.0}, {"atol": float("inf")}, {"seed": -1}, {"seed": 0.5},
                   {"seed": True}):
        with pytest.raises(UsageError):
            converters.verify(TINY, ["numpy"], **kwargs)
    for kwargs in ({"atol": float("nan")}, {"rtol": float("inf")}, {"atol": -1e-9}):
        with pytest.raises(UsageError):
            diff(MULTI, MULTI, **kwargs)


def test_verify_refuses_inputs_that_are_not_finite():
    """NaN/Inf inputs (or float64 values beyond float32's range) made verify blame a runtime for a mismatch."""
    import converters
    from converters.readers import read_file

    model = read_file(TINY)
    x = np.zeros((2, *model.inputs[0].shape), "f4")
    x[1, 0, 0] = np.nan
    with pytest.raises(FormatError, match="finite"):
        converters.verify(TINY, ["numpy"], inputs=[x])


def test_verify_artifacts_are_checked_like_models(tmp_path):
    """A given artifact is a file from a stranger: of the target's kind, and read by gateport's own reader
    before onnxruntime or Keras loads it."""
    import converters

    with pytest.raises(FormatError, match="a device"):
        converters.verify(TINY, ["onnx"], artifacts={"onnx": "/dev/zero"})
    with pytest.raises(FormatError, match="a folder"):
        converters.verify(TINY, ["onnx"], artifacts={"onnx": tmp_path})
    onnx_file = tmp_path / "m.onnx"
    converters.convert(TINY, "onnx", onnx_file)
    with pytest.raises(FormatError, match="found a file"):
        converters.verify(TINY, ["torch"], artifacts={"torch": onnx_file})
    from attacks_round4 import artifact_cases

    hostile = tmp_path / "hostile"
    hostile.mkdir()
    artifact_cases(hostile)
    with pytest.raises(UnsupportedError, match="Loop"):
        converters.verify(TINY, ["onnx"], artifacts={"onnx": hostile / "loop_2_62.onnx"})
    with pytest.raises(GateportError, match="budget"):
        converters.verify(TINY, ["onnx"], artifacts={"onnx": hostile / "constant_2gib.onnx"})
    with pytest.raises(GateportError, match="budget"):
        converters.verify(TINY, ["keras"], artifacts={"keras": hostile / "config_bomb.keras"})
    not_onnx = tmp_path / "x.onnx"
    not_onnx.write_bytes(b"\x08" * 100)
    with pytest.raises(GateportError):
        converters.verify(TINY, ["onnx"], artifacts={"onnx": not_onnx})


def test_functional_inputs_and_outputs_are_checked(tmp_path):
    """output_layers [] was written as an ONNX graph of no outputs (exit 0); an output that is an input failed
    in the ONNX checker."""
    import json

    from attacks import read_keras, write_keras
    from converters.readers import read_file

    members = read_keras(MULTI)
    for edit, error, match in [({"output_layers": []}, FormatError, "at least one model output"),
                               ({"input_layers": []}, FormatError, "at least one model input"),
                               ({"output_layers": [["sequence_a", 0, 0]]}, UnsupportedError, "model input itself")]:
        cfg = json.loads(members["config.json"])
        cfg["config"].update(edit)
        src = write_keras(tmp_path / "m.keras", {**members, "config.json": json.dumps(cfg).encode()})
        with pytest.raises(error, match=match):
            read_file(src)


def test_onnxruntime_logs_nothing_raw_to_the_terminal(tmp_path):
    """onnxruntime's warnings (here: an unused initializer named with escapes) went to stderr raw, colored,
    past gateport's terminal escaping: its sessions log errors only."""
    import subprocess
    import sys

    code = """import numpy as np
from onnx import TensorProto, helper
from converters.runtimes import run_onnx
g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                      [helper.make_tensor("unused\\x1b[31m\\u202e", TensorProto.FLOAT, [1], [1.0])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
print(run_onnx(m, [np.ones(1, "f4")])[0][0])
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**__import__("os").environ, "PYTHONPATH": str(TINY.parent.parent.parent)})
    assert r.returncode == 0 and r.stdout.strip() == "1.0", r.stderr[-500:]
    assert "\x1b" not in r.stderr and "Removing initializer" not in r.stderr
