"""``gateport explain``: what each recurrent layer's weights weigh, and what each output is sensitive to.

* **Weights**: per recurrent layer, direction and gate, the L2 norm of the input weights of each
  input feature (a row of Keras' kernel slice of that gate, over the units) and, per unit, the norm
  of its input weights and of its recurrent weights. Input features are named through
  :mod:`converters.dense_sources` (``aux_input[0]``, ``embedding (unit 3)``).
* **Sensitivity** (with inputs): for each output and each float input, ``||d out[b] / d x[b, t, f]||``
  (the L2 norm over the output's elements), averaged over the batch rows. Computed by central finite
  differences through the numpy reference in float64 (step ``1e-5 * max(1, |x|)``); every
  perturbation is extra batch rows of one reference run (rows never mix). A step a Masking or
  ``mask_zero`` masks has sensitivity 0 (perturbing it would unmask it); token ids have none.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import UnsafeError
from .ir import Model, Node
from .sanitize import one_line, quote

#: Finite-difference step, relative to max(1, |x|).
STEP = 1e-5
#: Perturbed batch rows one explain may run in all (2 per input element and batch row).
MAX_ROWS = 4_000_000
#: Rows shown per table in the text output.
SHOWN = 8


@dataclass
class Report:
    """What ``explain`` found: per recurrent layer and direction the weight norms; with inputs the
    sensitivity of each output to each input."""

    model: str
    layers: list[dict] = field(default_factory=list)
    sensitivity: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inputs: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "layers": self.layers, "sensitivity": self.sensitivity,
                "notes": self.notes, "inputs": self.inputs}


# -- weights --------------------------------------------------------------------------------------
def _norms(a: np.ndarray, axis: int) -> list[float]:
    return [float(v) for v in np.linalg.norm(np.asarray(a, np.float64), axis=axis)]


def gate_norms(node: Node, direction: str) -> list[dict]:
    """Per gate of one direction: overall norms, per input feature and per unit."""
    out = []
    for name, g in node.gates(direction).items():
        out.append({"gate": name, "input_norm": float(np.linalg.norm(g.input_weights)),
                    "recurrent_norm": float(np.linalg.norm(g.recurrent_weights)),
                    "bias_norm": float(np.linalg.norm(np.asarray(g.input_bias, np.float64) + g.recurrent_bias)),
                    "per_feature": _norms(g.input_weights, 0), "per_unit_input": _norms(g.input_weights, 1),
                    "per_unit_recurrent": _norms(g.recurrent_weights, 1)})
    return out


def weights(model: Model) -> list[dict]:
    """Every recurrent layer and direction: its input features' names and :func:`gate_norms`."""
    from .dense_sources import feature_names, producers_of
    from .shapes import infer_shapes

    shapes, producers = infer_shapes(model), producers_of(model)
    layers = []
    for node in model.recurrent_nodes():
        width = node.weights[f"forward.{node.gate_names[0]}.input_weights"].shape[1]
        features = feature_names(model, node.inputs[0], width, shapes, producers)
        for d in node.directions:
            layers.append({"layer": node.name, "op": node.op, "direction": d, "features": features,
                           "gates": gate_norms(node, d)})
    return layers


# -- sensitivity ----------------------------------------------------------------------------------
def _masked(model: Model, name: str, x: np.ndarray) -> np.ndarray:
    """Where ``x`` (an input) is masked by a mask the model computes from it: those elements are True."""
    masked = np.zeros(x.shape, dtype=bool)
    for node in model.nodes:
        if node.op == "mask_not_equal" and node.inputs[:1] == [name]:
            value = node.options["value"]
            if node.options.get("reduce"):
                masked |= ~(x != value).any(axis=-1, keepdims=True)
            else:
                masked |= x == value
    return masked


def _rows_per_run(model: Model, xs: Sequence[np.ndarray], limit: int | None) -> int:
    """How many batch rows one reference run may hold within verify's activation budget."""
    from .verification import VERIFY_BYTES, VerifyBudget, check_activations

    probe = VerifyBudget(None, limit=1 << 62)
    check_activations(model, [(1, *x.shape[1:]) for x in xs], probe)
    return max(1, (VERIFY_BYTES if limit is None else limit) // max(1, probe.used))


def _input_sensitivity(model: Model, xs: list[np.ndarray], i: int, rows: int) -> list[np.ndarray]:
    """``||d out_k[b] / d x_i[b, e]||`` for every output k: arrays shaped like ``xs[i]``."""
    from .reference import run

    x = xs[i]
    batch, n = x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))
    flat = x.reshape(batch, n)
    h = STEP * np.maximum(1.0, np.abs(flat))
    sens = [np.zeros((batch, n)) for _ in model.outputs]
    per_chunk = max(1, rows // (2 * batch))
    for start in range(0, n, per_chunk):
        j = np.arange(start, min(n, start + per_chunk))
        p = len(j)
        tiled = [np.broadcast_to(a[None], (2 * p, *a.shape)).reshape(2 * p * batch, *a.shape[1:]).copy()
                 for a in xs]
        xi = tiled[i].reshape(2, p, batch, n)
        step = h[:, j].T  # (p, batch)
        xi[0, np.arange(p)[:, None], np.arange(batch)[None, :], j[:, None]] += step
        xi[1, np.arange(p)[:, None], np.arange(batch)[None, :], j[:, None]] -= step
        for k, out in enumerate(run(model, tiled)):
            o = out.reshape(2, p, batch, -1)
            grad = (o[0] - o[1]) / (2.0 * step[..., None])
            sens[k][:, j] = np.linalg.norm(grad, axis=-1).T
    masked = _masked(model, model.inputs[i].name, x).reshape(batch, n)
    return [np.where(masked, 0.0, s).reshape(x.shape) for s in sens]


def sensitivity(model: Model, xs: list[np.ndarray], limit: int | None = None) -> tuple[list[dict], list[str]]:
    """Per (output, float input): the batch mean of :func:`_input_sensitivity`; and notes."""
    xs = [np.asarray(x, np.int64 if np.dtype(s.dtype).kind in "iu" else np.float64) for s, x in zip(model.inputs, xs)]
    rows = _rows_per_run(model, xs, limit)
    floats = [i for i, s in enumerate(model.inputs) if np.dtype(s.dtype).kind == "f"]
    total = sum(2 * x.size for i, x in enumerate(xs) if i in floats)
    if total > MAX_ROWS:
        raise UnsafeError(f"explain: sensitivity needs {total} perturbed batch rows, more than {MAX_ROWS} "
                          "(pass fewer rows or time steps in --inputs)")
    if 2 * xs[0].shape[0] > rows:
        raise UnsafeError(f"explain: one perturbation of {xs[0].shape[0]} batch rows does not fit verify's "
                          "activation budget (pass fewer rows, or set GATEPORT_VERIFY_BYTES)")
    notes = [f"input {quote(model.inputs[i].name)} holds token ids: no sensitivity"
             for i in range(len(xs)) if i not in floats]
    result = []
    for i in floats:
        for k, s in enumerate(_input_sensitivity(model, xs, i, rows)):
            mean = s.mean(axis=0)
            result.append({"output": model.outputs[k], "input": model.inputs[i].name, "shape": list(mean.shape),
                           "mean": mean.tolist(), "max": float(s.max()) if s.size else 0.0})
    return result, notes


# -- the command ----------------------------------------------------------------------------------
def explain(path: str | os.PathLike, config: str | os.PathLike | None = None,
            inputs: str | os.PathLike | Sequence[np.ndarray] | None = None) -> Report:
    """Weight norms of ``path``'s recurrent layers; with ``inputs`` (an .npz keyed by input name, or
    arrays in input order) the sensitivity of each output to each input element."""
    from .readers import read_file as read
    from .verification import VerifyBudget, describe_inputs, load_inputs

    model = read(path, config)
    report = Report(str(path), weights(model))
    if not report.layers:
        report.notes.append("the model has no recurrent layer")
    if inputs is not None:
        if isinstance(inputs, (str, os.PathLike)):
            xs = load_inputs(model, inputs, VerifyBudget(str(path)))
            report.inputs = describe_inputs(model, xs, str(inputs), None)
        else:
            xs = [np.asarray(x) for x in inputs]
        report.sensitivity, notes = sensitivity(model, xs)
        report.notes += notes
    return report


def _top(values: Sequence[float], names: Sequence[str], n: int = 3) -> str:
    order = np.argsort(values)[::-1][:n]
    return ", ".join(f"{names[k]} {values[k]:.3g}" for k in order)


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _layer_lines(entry: dict) -> list[str]:
    """A table per layer and direction: the norms of each gate, its strongest inputs and unit."""
    units = [str(u) for u in range(len(entry["gates"][0]["per_unit_input"]))]
    head = [f"{one_line(entry['layer'])} ({entry['op'].upper()}, {entry['direction']}): weight norms per gate"]
    for n_inputs in (3, 2, 1):
        rows = [("gate", "|W|", "|R|", "|b|", "strongest inputs (|W| over units)", "unit (|W row|)")]
        for g in entry["gates"]:
            rows.append((g["gate"], f"{g['input_norm']:.3g}", f"{g['recurrent_norm']:.3g}",
                         f"{g['bias_norm']:.3g}", _top(g["per_feature"], entry["features"], n_inputs),
                         _top(g["per_unit_input"], units, 1)))
        lines = ["  " + r for r in _table(rows)]
        if max(map(len, lines)) <= 100:
            break
    return head + lines


def _sensitivity_lines(s: dict) -> list[str]:
    mean = np.asarray(s["mean"], np.float64)
    head = (f"{one_line(s['output'])} <- {one_line(s['input'])}: mean |d output / d input| per element "
            f"(max {s['max']:.3g})")
    if mean.ndim == 2:
        steps, feats = mean.sum(axis=1), mean.sum(axis=0)
        order = np.argsort(steps)[::-1][:SHOWN]
        lines = [head, "  by time step (summed over features): "
                 + ", ".join(f"t{t} {steps[t]:.3g}" for t in order)]
        return lines + ["  by feature (summed over time): " + ", ".join(
            f"[{f}] {feats[f]:.3g}" for f in np.argsort(feats)[::-1][:SHOWN])]
    flat = mean.reshape(-1)
    return [head, "  by element: " + ", ".join(f"[{e}] {flat[e]:.3g}" for e in np.argsort(flat)[::-1][:SHOWN])]


def render(report: Report) -> str:
    """The text ``gateport explain`` prints: lines under 100 columns."""
    import textwrap

    lines = [one_line(report.model)]
    for entry in report.layers:
        lines += [""] + _layer_lines(entry)
    for s in report.sensitivity:
        lines += [""] + _sensitivity_lines(s)
    for note in report.notes:
        lines += ["", f"note: {one_line(note)}"]
    return "\n".join(w for line in lines for w in (textwrap.wrap(line, 100, subsequent_indent="    ",
                                                                 break_long_words=False) or [""]))


def plot(report: Report, path: str | os.PathLike, force: bool = False) -> Path:
    """Heatmaps as PNG: per recurrent layer and direction |W| per gate (rows) and input feature
    (columns); with inputs, each output's sensitivity per time step (rows) and feature (columns)."""
    from .atomic import atomic_path
    from .diff import _pyplot

    plt = _pyplot()
    panels: list[tuple[str, np.ndarray, list | None, str]] = [(f"{one_line(e['layer'])[:40]} {e['direction']}: |W| per gate and input feature",
               np.array([g["per_feature"] for g in e["gates"]]), [g["gate"] for g in e["gates"]], "gate")
              for e in report.layers]
    for s in report.sensitivity:
        mean = np.asarray(s["mean"], np.float64)
        grid = mean if mean.ndim == 2 else mean.reshape(1, -1)
        title = f"{one_line(s['output'])[:30]} <- {one_line(s['input'])[:30]}: mean |d output / d input|"
        panels.append((title, grid, None, "time step" if mean.ndim == 2 else ""))
    if not panels:
        from .errors import UnsupportedError

        raise UnsupportedError("nothing to plot: no recurrent layer and no sensitivity")
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), squeeze=False)
    for ax, (title, grid, ylabels, ylabel) in zip(axes[:, 0], panels):
        im = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("input feature", fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
        if grid.shape[1] <= 40:
            ax.set_xticks(range(grid.shape[1]))
        if ylabels:
            ax.set_yticks(range(len(ylabels)), ylabels, fontsize=7)
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    with atomic_path(path, force) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)

