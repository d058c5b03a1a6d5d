"""Set-up every test shares. ``pythonpath = ["tests"]`` (pyproject.toml) lets tests import the helpers
that live next to them (``helpers``, ``cases``, ``fuzzing`` ...)."""
import os

import pytest

# Keras 3 runs on the torch backend in every test; set before any test module imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture
def one_torch_thread():
    """One intra-op thread for the test (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): step
    loops are latency-bound, and on a busy 2-core machine intra-op threads only contend (10x slower)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
