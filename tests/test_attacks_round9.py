"""The red team's ninth round (tests/attacks_round9.py), a sample in CI: the cases that once failed, and a few of the
classes that did not, in their own processes (round 8's runner). The mechanisms fixed are tested beside their
modules: the recurrent-only fallback past a graph that contradicts itself (test_corpus_recurrent_only.py), a file
name holding glob characters (test_batch.py), a derived mask comparing another value than its Masking
(test_mask_arguments.py).

The full round: ``python tests/attacks_round9.py``.
"""
import pytest

from attacks_round3 import failures
from attacks_round9 import build, run_case9

#: cases that failed before their fix, and a few of the classes that did not
ONCE_FAILED = ("Absolute fed by Sum fed by Absolute (gates)", "output_layers naming a layer not in the model (gates)",
               "a broken input named with escapes (convert)", "an input named with escapes (--to torch)",
               # the Keras writer walked the graph recursively: RecursionError, a message naming no file
               "a shared Dense called 10**4 times in a chain (keras)", "10**4 Absolute nodes in a chain (keras)")
SAMPLE = ("EinsumDense its own inbound node (torch)", "verify --json an EinsumDense of 'abc,dc->abd'",
          "-o non-UTF-8 bytes (--to onnx)")


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("round9") / "cases"
    built = build(folder, groups=("graph", "cli"))
    return folder, [c for c in built if c.name in ONCE_FAILED + SAMPLE]


def test_cases_that_once_failed_and_a_sample(battery):
    folder, cases = battery
    assert sorted(c.name for c in cases) == sorted(set(ONCE_FAILED + SAMPLE))
    found = failures(cases, run_case9, folder, timeout=120)
    assert not found, "\n".join(found)
