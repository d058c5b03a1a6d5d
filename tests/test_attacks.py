"""A sample of the attack run in CI (every 4th case of `attack_run.py --quick`); the full run is
`python tests/attack_run.py` (README: Guarantees on bad input)."""
import pytest

from attack_run import run_case
from attacks import build


def _cases(tmp_root):
    return build(tmp_root, quick=True)[::4]


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    return folder, _cases(folder)


def test_every_sampled_attack_is_refused_in_one_line_or_written_safely(battery):
    folder, cases = battery
    failures = []
    for case in cases:
        problems, measured = run_case(case, folder / "MARKER", timeout=120)
        if problems:
            failures.append(f"[{case.klass}] {case.name!r}: {'; '.join(problems)}")
    assert len(cases) >= 30
    assert not failures, "\n".join(failures)
