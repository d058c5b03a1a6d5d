"""A few hundred mutated fixture files in CI; `python tests/fuzz_readers.py --cases 10000` runs longer."""
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import SEEDS, check_case, make_case


@pytest.mark.parametrize("seed_file", SEEDS, ids=lambda p: p.name)
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_mutated_files_give_a_model_or_one_clear_error(tmp_path, seed_file, seed):
    path = make_case(seed_file, random.Random(seed), tmp_path / f"case{seed}")
    try:
        assert check_case(path) is None
    finally:
        path.unlink()


@pytest.mark.parametrize("seed", [22472, 21680])
def test_fuzz_regressions(tmp_path, seed):
    """22472: libhdf5 crashes (SIGSEGV) reading an attribute: the probe child's death is a refusal, not a
    pass; 21680: a weight_names attribute that is not UTF-8 (h5py's surrogates) is one line."""
    seed_file = SEEDS[seed % len(SEEDS)]
    path = make_case(seed_file, random.Random(seed), tmp_path / f"case{seed}")
    assert check_case(path) is None
