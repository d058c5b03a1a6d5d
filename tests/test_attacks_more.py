"""The red team's second round (tests/attacks_more.py), a sample in CI: every class that failed once.

The full round is ``python tests/attack_run.py``-style: build(folder) and run each case with
attack_run.run_case; here only the cases that once failed (and one per class around them) run, plus
the mechanisms' own unit checks (one_line's cap, JSON container and depth scan, node counts).
"""
import json
import time

import pytest

from attack_run import run_case
from attacks_more import build
from converters import budget, safe_json
from converters.errors import FormatError, UnsafeError
from converters.sanitize import MAX_LINE, one_line

#: cases that failed before their fix (name patterns), each run in its own process
ONCE_FAILED = ("dup_outputs (torch)", "dup_initializer (inspect)", "no_outputs (torch)", "ir_version_huge (inspect)",
               "functions (inspect)", "many_nodes (inspect)", "metadata huge (inspect)", "config layers 1e6",
               "verify --inputs empty batch", "explain --inputs empty batch", "verify --expected string outputs",
               "verify --inputs complex inputs", "dup_seq_names[14] (inspect)", "dup_layer_names[12] (inspect)",
               "convert --dynamic evil", "convert -j 10**18", "-o a name with 255-byte name")


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks_more")
    built = build(folder, groups=("onnx", "json", "h5", "npz", "output", "command"))
    return folder, [c for c in built if any(c.name.startswith(p) or p in c.name for p in ONCE_FAILED)]


def test_cases_that_once_failed_are_refused_in_one_line(battery):
    folder, cases = battery
    assert all(any(p in c.name for c in cases) for p in ONCE_FAILED)
    failures = []
    for case in cases:
        problems, measured = run_case(case, folder / "MARKER", timeout=60)
        if "a gateport bug" in measured.get("stderr", ""):
            problems.append("refused as a gateport bug")
        if problems:
            failures.append(f"[{case.klass}] {case.name!r}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)


def test_one_line_is_cut():
    assert len(one_line("3" * (10 << 20))) == MAX_LINE and one_line("3" * (10 << 20)).endswith("...")
    assert one_line("a\nb\x1b") == "a\\nb\\x1b"
    assert len(one_line("\x00" * 5000)) == MAX_LINE


def test_json_container_count_and_depth_scan_are_fast():
    text = "[" + ",".join(["{}"] * (safe_json.MAX_CONTAINERS + 1)) + "]"
    start = time.process_time()
    with pytest.raises(FormatError, match="arrays and objects"):
        safe_json.loads(text, what="t")
    assert time.process_time() - start < 5  # a scan, not json.loads of 10**6 objects
    long_string = json.dumps({"v": "[" * (8 << 20) + '\\"\\\\'})
    assert safe_json.depth(long_string) == 1
    for text, want in [('["a\\\\\\"b[[", {"x": "\\u00e9"}]', 2), ('"[[["', 0), ('["\\\\", ["]"]]', 2), ("", 0)]:
        assert safe_json.depth(text) == want, text


def test_node_count():
    budget.count(budget.MAX_NODES, "nodes")
    with pytest.raises(UnsafeError, match="at most"):
        budget.count(budget.MAX_NODES + 1, "nodes", file="f")


def test_a_state_dict_of_thousands_of_modules_is_refused_before_it_is_built(tmp_path):
    from attacks import lstm_keys, state_dict_file
    from converters import read

    keys = {}
    for i in range(budget.MAX_RECURRENT + 1):
        keys.update(lstm_keys(f"m{i}", units=1, n_in=1))
    state_dict_file(tmp_path / "many.safetensors", keys)
    with pytest.raises(UnsafeError, match="recurrent layers in the state_dict: expected at most"):
        read(tmp_path / "many.safetensors")
