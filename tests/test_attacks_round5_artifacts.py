"""Red team round 5 (tests/attacks_round5_artifacts.py): a user's ONNX or .keras artifact runs in a bounded child.

Every hostile artifact (a Tile, Range, Expand, Resize or Pad making 3 GiB at run time, Muls broadcasting to
3 GiB, a 200-MatMul chain under --timeout, an LSTM of 14,000 units) is refused by ``gateport verify`` in its
own process: exit 2, one line naming the file and what was expected, no traceback, peak memory (its child's
included) under 1 GiB; gateport's own artifacts, given the same way, still verify ok.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from attacks_round4 import run_case4
from attacks_round5_artifacts import TINY, build, onnx_bombs

from converters.errors import UnsafeError


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round5") / "cases"
    return folder, build(folder)


def test_hostile_artifacts_are_refused_in_one_line(cases):
    folder, built = cases
    hostile = [c for c in built if c.klass == "artifact5"]
    assert len(hostile) == 9
    failures = []
    for case in hostile:
        problems, measured = run_case4(case, folder / "MARKER", timeout=120)
        stderr = measured.get("stderr", "")
        if measured.get("exit") != 2 or "expected" not in stderr or stderr.count("\n"):
            problems.append(f"not one refusal line: exit {measured.get('exit')}, {stderr[:200]!r}")
        if problems:
            failures.append(f"{case.name!r}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)


def test_written_artifacts_still_verify_through_the_child(cases, tmp_path):
    import subprocess

    folder, built = cases
    good = [c for c in built if c.klass == "artifact5_good"]
    assert [c.name for c in good] == ["verify --artifact onnx=<the written artifact>",
                                      "verify --artifact keras=<the written artifact>"]
    for case in good:
        problems, measured = run_case4(case, folder / "MARKER", timeout=300)
        assert not problems and measured["exit"] == 0, (case.name, problems, measured)
    # the report: the artifact's row compared with the stored outputs and passed
    argv = [str(a) for a in good[0].argv]
    out = subprocess.run([sys.executable, "-m", "converters", *argv], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parent.parent)
    report = json.loads(out.stdout)
    rows = [r for r in report["rows"] if r["runtime"] == "onnx"]
    assert rows and all(r["status"] == "pass" for r in rows) and report["verdict"] == "ok"


def test_api_refuses_a_run_time_bomb_with_the_file_named(tmp_path):
    from converters.verification import verify

    bombs = onnx_bombs(tmp_path)
    path = bombs["a Pad of 4e8 steps"]
    with pytest.raises(UnsafeError) as e:
        verify(TINY, ("onnx",), artifacts={"onnx": str(path)})
    assert e.value.file == str(path) and "memory ceiling" in str(e.value)


def test_child_results_match_the_in_process_run(tmp_path):
    """The child's outputs and fused-node probes are the in-process run's, bit for bit."""
    from converters.runtimes import run_isolated, run_onnx_traced

    from attacks_round4 import _written

    good = _written(tmp_path, "onnx")
    xs = [np.random.default_rng(0).standard_normal((2, 3, 1)).astype(np.float32)]
    got, got_probes = run_isolated("onnx", good, xs)
    want, want_probes = run_onnx_traced(good, xs)
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert want_probes and len(got_probes) == len(want_probes)
    for g, w in zip(got_probes, want_probes):
        assert (g["op"], g["direction"]) == (w["op"], w["direction"])
        assert np.array_equal(g["x"], w["x"]) and np.array_equal(g["y"], w["y"])
        assert len(g["states"]) == len(w["states"]) and all(
            np.array_equal(a, b) for a, b in zip(g["states"], w["states"]))


@pytest.mark.parametrize("to", ["numpy", "torch"])
def test_a_given_code_folder_past_the_memory_ceiling_is_refused(to, tmp_path):
    """A user's numpy or torch folder whose model.py allocates past the child's ceiling (RLIMIT_DATA): one
    UnsafeError naming the folder, as an ONNX artifact's (the numpy child had no ceiling)."""
    from attacks_round4 import _written
    from converters.verification import verify

    folder = _written(tmp_path, to)
    code = folder / "model.py"
    code.write_text(code.read_text() + "\n_BOMB = bytearray(64 << 30)\n")
    with pytest.raises(UnsafeError) as e:
        verify(TINY, (to,), artifacts={to: str(folder)})
    assert e.value.file == str(folder.resolve()) and "memory ceiling" in str(e.value), str(e.value)


def test_isolate_is_a_flag_the_api_passes_on(tmp_path):
    """converters.verify(isolate=...) reaches verification.verify; a value that is not a bool is refused
    (isolate="no", a non-empty string, would have run a user's file in process)."""
    import converters
    from converters.errors import UsageError

    with pytest.raises(UsageError, match="expected isolate True or False"):
        converters.verify(TINY, ("onnx",), isolate="no")
    bombs = onnx_bombs(tmp_path)
    with pytest.raises(UnsafeError):
        converters.verify(TINY, ("onnx",), artifacts={"onnx": str(bombs["a Pad of 4e8 steps"])}, isolate=True)
