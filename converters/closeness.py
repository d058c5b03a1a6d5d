"""The one rule for "the same numbers" that verify, diff and the divergence finder share.

``|got - want| <= atol + rtol * |want|`` elementwise (torch.testing.assert_close's form); a NaN or an
infinity matches only the same NaN or infinity at the same place (a runtime that turns NaN into a finite
value, or a file whose NaN weight became a number, is a real difference; a file diffed with its own
conversion is not).
"""
from __future__ import annotations

import numpy as np


def mismatches(got, want, atol: float, rtol: float) -> np.ndarray:
    """Elements where ``|got - want| > atol + rtol * |want|``; NaN/Inf match only the same NaN/Inf."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    finite = np.isfinite(got) & np.isfinite(want)
    same = (np.isnan(got) & np.isnan(want)) | (np.isinf(got) & (got == want))
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(got - want) <= atol + rtol * np.abs(want)
    return ~np.where(finite, close, same)
