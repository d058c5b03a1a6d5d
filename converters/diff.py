"""``gateport diff A B``: two models' weights compared layer by layer, direction by direction, gate by gate.

Both sides are read into the IR (:func:`converters.api.read`: Keras, PyTorch state_dicts, ONNX,
``.gates``), so any two formats compare. Recurrent layers are aligned by name when every layer of B
has a namesake in A, else by order (an alignment that keeps the order and pairs layers of the same
kind and shape, preferring equal weights). For each pair the per-gate arrays are compared; where
they differ, the named transformations of :mod:`converters.mistakes` are tried (greedily, up to a
few composed) to name the mistake: gates permuted, kernel reshaped instead of transposed, biases
merged/halved/doubled, Keras 1 order, directions swapped, gates scaled by hard_sigmoid's 1.2.

Biases are compared the way they compute: only ``bias_ih + bias_hh`` enters an LSTM, a SimpleRNN or a
GRU's update and reset gates, so a different split of the same sum is the same model (a note);
a GRU ``reset_after=True`` candidate gate keeps both. A side with Keras 3's hard_sigmoid is compared
with a Keras 2 side after scaling the Keras 2 side's gates by 1.2, which makes them compute the same.
Dense, Embedding and Conv1D layers are compared by name where both models have them. numpy only.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .closeness import mismatches
from .errors import FormatError, GateportError, GraphError, MissingDependencyError, UnsupportedError, check_tolerances
from .ir import GATE_PARTS, Model, Node
from .mistakes import Mistake, candidates
from .sanitize import one_line, quote

#: Two arrays are the same numbers when ``|a - b| <= ATOL + RTOL * |b|`` element-wise.
ATOL, RTOL = 1e-6, 1e-6
#: Most mistakes composed to explain one layer.
MAX_STEPS = 6
#: Options that change what a recurrent layer's weights compute.
COMPUTING = ("activation", "recurrent_activation", "reset_after")
KERAS2_HS, KERAS3_HS = "hard_sigmoid_keras2", "hard_sigmoid_keras3"
PART_LABEL = {"input_weights": "W (input)", "recurrent_weights": "R (recurrent)",
              "input_bias": "b_ih", "recurrent_bias": "b_hh", "bias": "bias"}


@dataclass
class Row:
    """Max abs difference of one array of one gate of one direction of an aligned layer pair."""

    layer: str
    layer_b: str
    direction: str
    gate: str
    part: str
    max_abs: float | None  # None: the shapes differ
    same: bool  # within the tolerance
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]


@dataclass
class Finding:
    """A named difference: ``kind`` (a mistakes.KINDS key, ``different_weights``, ``activation`` ...)."""

    kind: str
    layer: str
    text: str
    side: str = "B"  # the side that carries the mistake, relative to the other


@dataclass
class Report:
    a: str
    b: str
    a_source: str
    b_source: str
    alignment: str
    rows: list[Row] = field(default_factory=list)
    mistakes: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    atol: float = ATOL
    rtol: float = RTOL

    @property
    def ok(self) -> bool:
        """Same numbers: no difference anywhere."""
        return not self.mistakes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["kinds"] = sorted({m.kind for m in self.mistakes})
        return d


# -- reading ----------------------------------------------------------------------------------------------
def read_side(source: str | os.PathLike | Model, config=None) -> Model:
    """A model from any supported file; a Keras file whose full graph cannot be read gives its recurrent layers (not
    one whose graph contradicts itself: :class:`~converters.errors.GraphError`)."""
    if isinstance(source, Model):
        return source
    from .readers import read_file as read
    from .readers.detect import source_kind

    try:
        return read(source, config)
    except (UnsupportedError, FormatError) as full_error:
        if isinstance(full_error, GraphError) or not Path(source).is_file() or source_kind(Path(source)) != "keras":
            raise
        from .readers import read_recurrent_weights

        try:  # a weights-only file without its architecture, or a custom layer elsewhere
            return read_recurrent_weights(source, config)
        except GateportError:
            raise full_error from None


def _describe_source(model: Model) -> str:
    s = model.source
    version = f", Keras {s['keras_version']}" if s.get("keras_version") else ""
    return one_line(f"{s.get('format', '?')}{version}")


# -- alignment --------------------------------------------------------------------------------------------
def _shape(node: Node) -> tuple:
    w = node.weights[f"forward.{node.gate_names[0]}.input_weights"]
    return node.op, int(node.options["units"]), int(w.shape[1]), len(node.directions)


def _fingerprint(node: Node) -> np.ndarray:
    """Sums of |w| and w² over the weight matrices: unchanged by permutations, reshapes and swaps."""
    arrays = [np.asarray(v, np.float64) for k, v in node.weights.items() if k.endswith("_weights")]
    return np.array([sum(np.abs(a).sum() for a in arrays), sum((a * a).sum() for a in arrays)])


def _pair_score(a: Node, b: Node) -> float:
    if a.op != b.op:
        return -1.0
    if _shape(a) != _shape(b):
        return 0.25
    same = np.allclose(_fingerprint(a), _fingerprint(b), rtol=1e-6, atol=1e-9, equal_nan=True)
    return 2.0 if same else 1.0


def align(a: list[Node], b: list[Node]) -> tuple[str, list[tuple[Node, Node]]]:
    """``("name" | "order", pairs)``: by name when every layer of B has a namesake in A, else by order."""
    names_a = {n.name: n for n in a}
    if b and len({n.name for n in b}) == len(b) and all(n.name in names_a for n in b):
        return "name", [(names_a[n.name], n) for n in b]
    # order-keeping alignment maximizing the pair scores (a small dynamic program)
    score = np.zeros((len(a) + 1, len(b) + 1))
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            s = _pair_score(a[i], b[j])
            score[i, j] = max(score[i + 1, j], score[i, j + 1], s + score[i + 1, j + 1] if s > 0 else -np.inf)
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s = _pair_score(a[i], b[j])
        if s > 0 and score[i, j] == s + score[i + 1, j + 1]:
            pairs.append((a[i], b[j]))
            i, j = i + 1, j + 1
        elif score[i, j] == score[i + 1, j]:
            i += 1
        else:
            j += 1
    return "order", pairs


# -- comparing one layer ------------------------------------------------------------------------------------
def _separate_biases(node: Node, gate: str) -> bool:
    """Whether b_ih and b_hh of ``gate`` compute separately (a GRU reset_after=True candidate gate)."""
    return node.op == "gru" and bool(node.options["reset_after"]) and gate == "candidate"


def blocks(node: Node, weights: dict[str, np.ndarray]) -> dict[tuple[str, str, str], np.ndarray]:
    """``(direction, gate, part) -> array`` as they compute: biases summed where only the sum enters."""
    out = {}
    for d in node.directions:
        for g in node.gate_names:
            key = f"{d}.{g}."
            out[d, g, "input_weights"] = weights[key + "input_weights"]
            out[d, g, "recurrent_weights"] = weights[key + "recurrent_weights"]
            bi, bh = weights[key + "input_bias"], weights[key + "recurrent_bias"]
            if _separate_biases(node, g):
                out[d, g, "input_bias"], out[d, g, "recurrent_bias"] = bi, bh
            else:
                out[d, g, "bias"] = np.asarray(bi, np.float64) + np.asarray(bh, np.float64)
    return out


def _close(x: np.ndarray, y: np.ndarray, atol: float, rtol: float) -> bool:
    """Same shape, every value within the tolerance; a NaN/Inf matches only the same NaN/Inf (verify's rule,
    :func:`converters.closeness.mismatches`: a file diffed with its own conversion was 'different' wherever a
    weight was NaN, since NaN - NaN is no number <= atol)."""
    return x.shape == y.shape and not mismatches(x, y, atol, rtol).any()


def _max_abs(x: np.ndarray, y: np.ndarray) -> float | None:
    """The largest difference of the values finite in both (0.0 when none is)."""
    if x.shape != y.shape:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))
    diff = diff[np.isfinite(diff)]
    return float(diff.max()) if diff.size else 0.0


def _mismatches(node: Node, weights, target: dict, atol: float, rtol: float, seen: dict) -> int:
    """How many blocks of ``weights`` differ from ``target``.

    ``seen`` memoizes the comparisons of arrays it holds (``id -> array``, alive so their ids stay
    theirs): a permutation only moves arrays, so those pairs recur from one candidate to the next.
    """
    got = blocks(node, weights)
    count = 0
    for k, y in target.items():
        x = got[k]
        if id(x) not in seen["arrays"]:
            count += not _close(x, y, atol, rtol)
            continue
        key = (id(x), id(y))
        if key not in seen:
            seen[key] = _close(x, y, atol, rtol)
        count += not seen[key]
    return count


def explain(node: Node, a: dict, b: dict, atol: float, rtol: float) -> tuple[list[Mistake], int]:
    """The mistakes that, applied to weights ``a`` one after the other, give ``b``; and the blocks left unexplained."""
    target = blocks(node, b)
    table = candidates(node)
    current, named = a, []
    seen: dict = {"arrays": {id(v): v for v in a.values()}}
    left = _mismatches(node, current, target, atol, rtol, seen)
    for _ in range(MAX_STEPS):
        if not left:
            break
        best, best_left = None, left
        for mistake in table:
            n = _mismatches(node, mistake.transform(current), target, atol, rtol, seen)
            if n < best_left:
                best, best_left = mistake, n
        if best is None:
            break
        current, left = best.transform(current), best_left
        seen["arrays"].update((id(v), v) for v in current.values())
        named.append(best)
    return named, left


def _hard_sigmoid_normalized(a: Node, b: Node, notes: list[str]) -> tuple[Node, Node]:
    """Where one side has Keras 2's hard_sigmoid and the other Keras 3's, scale the Keras 2 side's gates by 1.2."""
    from .writers.keras_layers import scaled_recurrent

    assumed = _assumed(a) | _assumed(b)

    def fixed(node: Node, other: Node) -> Node:
        slots = [s for s in ("activation", "recurrent_activation") if s not in assumed
                 and node.options.get(s) == KERAS2_HS and other.options.get(s) == KERAS3_HS]
        if not slots or any(node.options.get(s) == KERAS2_HS for s in ("activation", "recurrent_activation")
                            if s not in slots):
            return node
        scaled, _ = scaled_recurrent(node)
        scaled.options = {**node.options, **{s: KERAS3_HS for s in slots}}
        notes.append(f"{quote(node.name)}: {', '.join(slots)} is Keras 2's hard_sigmoid on one side and Keras 3's "
                     "on the other: compared after scaling the Keras 2 side's gates by 1.2 (what makes them equal)")
        return scaled

    try:
        return fixed(a, b), fixed(b, a)
    except UnsupportedError:  # an LSTM cell activation that no weights feed: left as an option difference
        return a, b


def _assumed(node: Node) -> set[str]:
    """Options a reader assumed rather than read (a weights-only file without its architecture)."""
    return set(node.source.get("assumed") or ())


def _option_findings(a: Node, b: Node, notes: list[str]) -> list[Finding]:
    out = []
    assumed = _assumed(a) | _assumed(b)
    skipped = []
    for opt in COMPUTING:
        if opt == "reset_after" and a.op != "gru" or opt == "recurrent_activation" and a.op == "simple_rnn":
            continue
        if opt in assumed:
            skipped.append(opt)
            continue
        va, vb = a.options[opt], b.options[opt]  # same op: both hold the option (defaults filled)
        if va != vb:
            out.append(Finding("activation" if "activation" in opt else opt, a.name,
                               f"{opt} differs: A {quote(va)}, B {quote(vb)}"))
    if skipped:
        notes.append(f"{quote(a.name)}: {', '.join(skipped)} not compared: a side read without its architecture "
                     "assumes them (pass --config-a / --config-b)")
    return out


def compare_layer(a: Node, b: Node, report: Report) -> None:
    """Rows and findings of one aligned pair of recurrent layers."""
    name = a.name
    if a.op != b.op or _shape(a) != _shape(b):
        kinds = {1: "units", 2: "input size", 3: "directions"}
        sa, sb = _shape(a), _shape(b)
        what = "kind" if a.op != b.op else next(kinds[k] for k in kinds if sa[k] != sb[k])
        report.mistakes.append(Finding("shape", name, f"{what} differs: A {sa[0]} units={sa[1]} input={sa[2]} "
                                       f"directions={sa[3]}, B {sb[0]} units={sb[1]} input={sb[2]} directions={sb[3]}"))
        return
    a, b = _hard_sigmoid_normalized(a, b, report.notes)
    report.mistakes += _option_findings(a, b, report.notes)
    ba, bb = blocks(a, a.weights), blocks(a, b.weights)
    rows = []
    for (d, g, part), x in ba.items():
        y = bb[d, g, part]
        rows.append(Row(name, b.name, d, g, part, _max_abs(x, y), _close(y, x, report.atol, report.rtol),
                        x.shape, y.shape))
    report.rows += rows
    if all(r.same for r in rows):
        split = [k for k in a.weights if k.endswith("_bias") and not _close(b.weights[k], a.weights[k], report.atol,
                                                                              report.rtol)]
        if split:
            report.notes.append(f"{quote(name)}: b_ih and b_hh are split differently with the same sums "
                                "(only their sum enters these gates): same numbers")
        return
    named, left = explain(a, a.weights, b.weights, report.atol, report.rtol)
    if left:  # perhaps A is B with a mistake that has no inverse in the table (a merge, a reshape)
        named_a, left_a = explain(a, b.weights, a.weights, report.atol, report.rtol)
        if not left_a:
            report.mistakes += _merge_directions(name, named_a, "A")
            return
    report.mistakes += _merge_directions(name, named, "B")
    if not left:
        return
    report.mistakes.append(Finding("different_weights", name,
                                   f"{left} of {len(ba)} gate arrays differ in a way no known mistake explains "
                                   "(different training, or a mistake gateport does not know)"))


def _merge_directions(layer: str, named: list[Mistake], side: str) -> list[Finding]:
    """One finding per mistake; the same mistake in both directions is said once."""
    out: dict[tuple[str, str], Finding] = {}
    for m in named:
        text = m.text.split(": ", 1)[1] if m.direction and m.text.startswith(f"{m.direction}: ") else m.text
        key = (m.kind, text)
        if key in out:
            out[key].text = f"forward, backward: {text}"
        else:
            out[key] = Finding(m.kind, layer, m.text, side)
    return list(out.values())


#: Non-recurrent ops whose IR weights every format stores as they are (a batch_norm may come back folded).
COMPARED_OPS = ("dense", "embedding", "conv1d")


def _compare_others(a: Model, b: Model, report: Report) -> None:
    """Dense, Embedding and Conv1D layers, matched by name and op."""
    others = {n.name: n for n in b.nodes if n.op in COMPARED_OPS}
    for node in a.nodes:
        other = others.get(node.name)
        if node.op not in COMPARED_OPS or other is None or other.op != node.op:
            continue
        for key, x in node.weights.items():
            y = other.weights.get(key)
            if y is None:
                continue
            same = _close(np.asarray(y), np.asarray(x, np.float64), report.atol, report.rtol)
            report.rows.append(Row(node.name, other.name, "-", "-", key, _max_abs(x, y), same,
                                   tuple(x.shape), tuple(y.shape)))
            if not same:
                report.mistakes.append(Finding("different_weights", node.name, f"{node.op} weight {quote(key)} differs"))


# -- the command -----------------------------------------------------------------------------------------
def diff(a, b, *, config_a=None, config_b=None, partial: bool = False, atol: float = ATOL,
         rtol: float = RTOL) -> Report:
    """Compare models ``a`` and ``b`` (paths or IR models); B relative to A.

    ``partial``: B holds only some of A's recurrent layers (e.g. the recurrent layers of a user's
    nn.Module state_dict); A's layers without a counterpart are then not a difference.
    """
    check_tolerances(atol, rtol)
    model_a, model_b = read_side(a, config_a), read_side(b, config_b)
    rec_a, rec_b = list(model_a.recurrent_nodes()), list(model_b.recurrent_nodes())
    if not rec_a or not rec_b:
        side, model = ("A", model_a) if not rec_a else ("B", model_b)
        raise UnsupportedError(f"{side} has no LSTM, GRU or SimpleRNN layer to compare",
                               file=str(model.source.get("path", model.name)))
    how, pairs = align(rec_a, rec_b)
    report = Report(_path_of(a, model_a), _path_of(b, model_b), _describe_source(model_a),
                    _describe_source(model_b), how, atol=atol, rtol=rtol)
    for x, y in pairs:
        report.pairs.append((x.name, y.name))
        compare_layer(x, y, report)
    paired_a, paired_b = {id(x) for x, _ in pairs}, {id(y) for _, y in pairs}
    for n in rec_a:
        if id(n) not in paired_a:
            if partial:
                report.notes.append(f"{quote(n.name)}: not in B (partial model)")
            else:
                report.mistakes.append(Finding("missing_layer", n.name, f"A's {n.op} layer {quote(n.name)} has no "
                                               "counterpart in B (missing layer; --partial if B holds only some)"))
    for n in rec_b:
        if id(n) not in paired_b:
            report.mistakes.append(Finding("extra_layer", n.name, f"B's {n.op} layer {quote(n.name)} has no "
                                           "counterpart in A (extra layer)", "B"))
    _compare_others(model_a, model_b, report)
    return report


def _path_of(source, model: Model) -> str:
    return one_line(source if not isinstance(source, Model) else model.source.get("path", model.name))


# -- printing ---------------------------------------------------------------------------------------------
def _num(v: float | None) -> str:
    return "shape" if v is None else ("0" if v == 0 else f"{v:.1e}")


def render(report: Report) -> str:
    """The text ``gateport diff`` prints: one row per layer, direction and gate, then the mistakes named."""
    from .explain import _table

    lines = [f"A: {report.a} ({report.a_source})", f"B: {report.b} ({report.b_source})",
             f"recurrent layers aligned by {report.alignment}: "
             + (", ".join(one_line(x if x == y else f"{x} = {y}") for x, y in report.pairs) or "none"),
             f"same numbers: |A - B| <= {report.atol:g} + {report.rtol:g} * |A|", ""]
    table = [("layer", "direction", "gate", *[PART_LABEL[p] for p in (*GATE_PARTS[:2], "bias")], "")]
    grouped: dict[tuple, dict[str, Row]] = {}
    for r in report.rows:
        grouped.setdefault((r.layer, r.direction, r.gate), {})[r.part] = r
    for (layer, direction, gate), parts in grouped.items():
        if direction == "-":  # a non-recurrent layer: one row per weight
            for r in parts.values():
                table.append((one_line(layer), "-", one_line(r.part), _num(r.max_abs), "", "", ""))
            continue
        biases = [parts[p] for p in ("bias", "input_bias", "recurrent_bias") if p in parts]  # b_ih, b_hh: the larger
        bias = max((r.max_abs for r in biases), key=lambda v: np.inf if v is None else v)
        cells = [parts[p].max_abs for p in GATE_PARTS[:2]] + [bias]
        flag = "" if all(r.same for r in parts.values()) else "differs"
        table.append((one_line(layer), direction, gate, *map(_num, cells), flag))
    lines += _table(table)
    lines += [f"note: {n}" for n in report.notes]
    if report.mistakes:
        lines += ["", "mistakes:"]
        lines += [f"  {one_line(m.layer)}: {'(in A) ' if m.side == 'A' else ''}{m.text} [{m.kind}]"
                  for m in report.mistakes]
        lines += ["", f"different: {len(report.mistakes)} difference(s) named"]
    else:
        lines += ["", "same numbers"]
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("--plot needs matplotlib, which is not installed: pip install matplotlib") from None
    return plt


def check_plot(path: str | os.PathLike, force: bool = False) -> None:
    """Refuse ``--plot`` before any work: matplotlib missing, or an output that cannot be written."""
    from .atomic import check_writable

    _pyplot()
    check_writable(path, force)


#: Short column labels of the parts in the plot.
PART_SHORT = {"input_weights": "W", "recurrent_weights": "R", "bias": "b", "input_bias": "b_ih",
              "recurrent_bias": "b_hh"}


def plot(report: Report, path: str | os.PathLike, force: bool = False) -> Path:
    """A heatmap of max |A - B| per gate and part (columns) and layer/direction (rows), written as PNG.

    Cells a layer does not have (an LSTM row under a GRU gate) are blank; shape mismatches are the top colour.
    """
    from .atomic import atomic_path

    plt = _pyplot()
    rows = [r for r in report.rows if r.direction != "-"]
    if not rows:
        raise UnsupportedError("nothing to plot: no recurrent layer pair was compared")
    row_of = lambda r: f"{one_line(r.layer)[:40]} {r.direction}"  # noqa: E731
    col_of = lambda r: f"{r.gate}\n{PART_SHORT[r.part]}"  # noqa: E731  (gate and part names are gateport's own)
    ylabels, xlabels = list(dict.fromkeys(map(row_of, rows))), list(dict.fromkeys(map(col_of, rows)))
    grid = np.full((len(ylabels), len(xlabels)), np.nan)
    for r in rows:
        grid[ylabels.index(row_of(r)), xlabels.index(col_of(r))] = 1e3 if r.max_abs is None else r.max_abs
    shown = np.ma.masked_invalid(np.log10(np.clip(grid, 1e-12, None)))
    top = max(1.0, float(shown.max()))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(xlabels) + 3), max(2.5, 0.35 * len(ylabels) + 1.8)))
    im = ax.imshow(shown, cmap="magma_r", vmin=-12, vmax=top, aspect="auto")
    if grid.size <= 400:
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(j, i, "0" if v == 0 else f"{v:.0e}", ha="center", va="center", fontsize=5,
                        color="white" if np.log10(max(v, 1e-12)) > (top - 12) / 2 else "black")
    ax.set_xticks(range(len(xlabels)), xlabels, fontsize=6)
    ax.set_yticks(range(len(ylabels)), ylabels, fontsize=7)
    fig.colorbar(im, ax=ax, label="log10 max |A - B|")
    title = "same numbers" if report.ok else "; ".join(sorted({m.kind for m in report.mistakes}))
    ax.set_title(title[:100], fontsize=8)
    fig.tight_layout()
    with atomic_path(path, force) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)
