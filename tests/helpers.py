"""What every test compares with: one tolerance and one ``assert_close``."""
from __future__ import annotations

import numpy as np

#: Largest |got - want| allowed between two runtimes on the same model (and verify's default atol):
#: the runtimes compute in float32 and differ from each other and from the float64 reference by
#: rounding only (the README's corpus table: errors of 1e-9 to a few 1e-6), while a conversion
#: mistake (a swapped gate, a missing bias) moves outputs by orders of magnitude more.
TOL = 1e-5


def _as_outputs(x) -> list:
    """A list of numpy arrays from one array, a torch tensor, or a list / tuple of them."""
    items = list(x) if isinstance(x, (list, tuple)) else [x]
    return [np.asarray(i.detach().cpu().numpy() if hasattr(i, "detach") else i) for i in items]


def output_errors(got, want, what: str = "", *, dtype=None, nonfinite: bool = False) -> list[float]:
    """The max abs error of each output of ``got`` against ``want`` (asserting the same count and shapes).

    ``got`` / ``want``: an array (or torch tensor) or a list of them. ``dtype``: the dtype every output
    of ``got`` must have. ``nonfinite``: NaN and infinities must sit where ``want`` has them (and are
    then equal); without it a NaN or infinity makes the error NaN or infinite.
    """
    got, want = _as_outputs(got), _as_outputs(want)
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    errors = []
    for k, (g, w) in enumerate(zip(got, want)):
        if dtype is not None:
            assert g.dtype == dtype, f"{what} output {k}: dtype {g.dtype}, expected {np.dtype(dtype)}"
        g, w = g.astype(np.float64), w.astype(np.float64)
        assert g.shape == w.shape, f"{what} output {k}: shape {g.shape}, expected {w.shape}"
        same = np.zeros(g.shape, bool)
        if nonfinite:
            same = (g == w) | (np.isnan(g) & np.isnan(w))
            assert np.all(same | np.isfinite(g) & np.isfinite(w)), f"{what} output {k}: NaN/inf differ"
        with np.errstate(invalid="ignore"):  # inf - inf where both are inf: masked out by `same`
            errors.append(float(np.max(np.abs(np.where(same, 0.0, g - w)))) if g.size else 0.0)
    return errors


def max_error(got, want, what: str = "", **options) -> float:
    """The largest error of :func:`output_errors` (0.0 for no outputs); NaN if any output has a NaN."""
    errors = output_errors(got, want, what, **options)
    return max(errors, key=lambda e: (e != e, e), default=0.0)


def assert_close(got, want, what: str = "", *, tol: float = TOL, **options) -> float:
    """Every output of ``got`` equals ``want``'s within ``tol`` (options: :func:`output_errors`); returns
    the largest error. Each error is printed (shown with -rP or -s)."""
    errors = output_errors(got, want, what, **options)
    for k, err in enumerate(errors):
        print(f"{what} output {k}: max abs error {err:.2e}")
        assert err <= tol, f"{what} output {k}: max abs error {err}"
    return max(errors, default=0.0)
