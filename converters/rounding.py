"""How far float32 arithmetic alone can move a model's outputs: verify's allowance for models that amplify it.

A float32 runtime computes a dot product of ``n`` terms with rounding errors equal to perturbing its weights by
about ``sqrt(n)`` roundings each (backward error analysis, the typical case: Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., section 3.1 and the probabilistic bound of section 2.8). Most models barely move
under one rounding of every weight (1e-8 on the corpus); a recurrent layer whose recurrent weights are large
amplifies it step after step: the corpus' ``k204`` (GRU, recurrent weights up to 4.6, Keras 2 hard sigmoid)
moves 0.8-4.6e-6 at its 21st step on verify's random inputs, and every exact float32 runtime departs from the
float64 reference by about that much times the sum lengths (onnxruntime 4.0e-6, Keras 9.5e-6, PyTorch 1.1e-5:
past the fixed 1e-5). :func:`allowance` measures that sensitivity on the inputs verify uses.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from .ir import Model

#: float32's unit roundoff: one rounding changes a value by at most this much of itself.
UNIT_ROUNDOFF = 2.0 ** -24
#: Allowance = this many sqrt(n) times the measured departure (a margin of 2 over the typical sqrt(n) case).
MARGIN = 2.0


def perturbed(model: Model, seed: int = 0) -> Model:
    """``model`` with every float weight multiplied by ``1 + u * UNIT_ROUNDOFF``, ``u`` uniform in [-1, 1]
    (seeded): one float32 rounding of each, made differently. The original's arrays are not touched."""
    rng = np.random.default_rng(seed)

    def nudge(w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        if w.dtype.kind != "f":
            return w
        return w.astype(np.float64) * (1.0 + rng.uniform(-1.0, 1.0, w.shape) * UNIT_ROUNDOFF)

    nodes = [dataclasses.replace(node, weights={k: nudge(w) for k, w in node.weights.items()})
             for node in model.nodes]
    return dataclasses.replace(model, nodes=nodes)


def longest_sum(model: Model) -> int:
    """An upper bound of the terms in any one of the model's sums: its longest weight axis (at least 1)."""
    return max([1, *(max(np.shape(w)) for node in model.nodes for w in node.weights.values() if np.ndim(w))])


def factor(model: Model) -> float:
    """``MARGIN * sqrt(n)``, ``n`` the model's :func:`longest_sum`: roundings per weight the allowance covers."""
    return MARGIN * math.sqrt(longest_sum(model))


def allowance(model: Model, xs: Sequence[np.ndarray],
              reference_outputs: Sequence[np.ndarray] | None = None) -> list[float]:
    """Per output: ``MARGIN * sqrt(n)`` times the largest departure of the float64 reference on ``xs`` when
    every weight is rounded once differently (:func:`perturbed`; ``n``: :func:`longest_sum`): what an exact
    float32 run may depart by. One reference run, two when ``reference_outputs`` (the model's own on ``xs``)
    are not given."""
    from . import reference

    if reference_outputs is None:
        reference_outputs = reference.run(model, xs)
    moved = reference.run(perturbed(model), xs)
    scale = factor(model)
    out = []
    for a, b in zip(reference_outputs, moved):
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
        finite = diff[np.isfinite(diff)]
        out.append(scale * float(finite.max()) if finite.size else 0.0)
    return out
