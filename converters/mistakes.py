"""The mistakes people make when they move recurrent weights by hand, as named transformations.

A :class:`Mistake` turns one recurrent layer's correct weights (``{"direction.gate.part": array}``,
the IR's :attr:`converters.ir.Node.weights`) into the weights that mistake produces. One table serves
two sides:

* :func:`break_model` produces a broken copy of an IR model (any writer then writes the broken
  artifact: ``--to torch-state-dict``, ``--to onnx`` ...), for tests;
* :func:`candidates` lists every mistake a layer can carry; ``gateport diff`` tries them to name
  what happened to a model's weights (:mod:`converters.diff`).

Gate orders come from :mod:`converters.gates` (never bare permutation lists), the hard_sigmoid
factor and the gates each activation drives from :mod:`converters.writers.keras_layers`.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import UnsupportedError
from .gates import GATES, LETTER, ORDER
from .ir import GATE_PARTS, Model, Node
from .writers.keras_layers import _DRIVEN as DRIVEN
from .writers.keras_layers import HARD_SIGMOID_SCALE

Weights = dict[str, np.ndarray]

#: Mistake classes :func:`break_model` produces, with what each one does.
KINDS = {
    "permuted_gates": "gate blocks packed in one framework's order and read in another's",
    "keras1_order": "Keras 1 per-gate arrays (saved i,c,f,o) concatenated as if they were i,f,c,o",
    "transposed_kernel": "a Keras kernel (in, gates*units) reshaped to (gates*units, in) instead of transposed",
    "merged_biases": "bias_hh added into bias_ih and zeroed (PyTorch's two biases merged into one)",
    "swapped_directions": "the forward and backward weights of a bidirectional layer exchanged",
    "scaled_gates": f"the sigmoid-gate weights scaled by {HARD_SIGMOID_SCALE:g} (the Keras 2 -> 3 hard_sigmoid factor) "
                    "without changing the activation",
    "missing_layer": "a recurrent layer left out",
}
#: The framework pair that :func:`break_model` uses for ``permuted_gates``: packed in the first
#: framework's order, read in the second's (the classic forgotten reorder).
PERMUTED_PAIR = {"lstm": ("keras", "onnx"), "gru": ("keras", "torch")}
#: Frameworks in the order their names are preferred when a permutation is explained.
FRAMEWORK_NAMES = {"keras1": "Keras 1 saved", "keras": "Keras", "torch": "PyTorch", "onnx": "ONNX"}


@dataclass(frozen=True)
class Mistake:
    """One named transformation of a layer's weights."""

    kind: str  # a KINDS key, or a finer class diff also names (doubled_bias, dropped_bias ...)
    text: str  # names the mistake for a person ("forward: forget and cell swapped ...")
    transform: Callable[[Weights], Weights]  # correct weights -> what the mistake makes of them
    direction: str | None = None  # the direction it touches (None = the whole layer)


# -- helpers ---------------------------------------------------------------------------------------------
def _key(direction: str, gate: str, part: str) -> str:
    return f"{direction}.{gate}.{part}"


def _letters(gates, framework: str = "keras") -> str:
    return ",".join(LETTER[framework][g] for g in gates)


def _scale(a: np.ndarray, factor: float) -> np.ndarray:
    """``a * factor`` rounded once to ``a``'s dtype (as the Keras writer scales hard_sigmoid gates)."""
    return (np.asarray(a, np.float64) * factor).astype(a.dtype)


def _unit_count(node: Node) -> tuple[int, int]:
    """``(units, input_size)`` from the weights."""
    w = node.weights[_key("forward", node.gate_names[0], "input_weights")]
    return int(w.shape[0]), int(w.shape[1])


# -- the transformations ------------------------------------------------------------------------------
def _permuted(direction: str, mapping: dict[str, str]) -> Callable[[Weights], Weights]:
    """Gate ``g`` of the result holds gate ``mapping[g]`` of the input."""
    def transform(w: Weights) -> Weights:
        out = dict(w)
        for gate, src in mapping.items():
            for part in GATE_PARTS:
                out[_key(direction, gate, part)] = w[_key(direction, src, part)]
        return out
    return transform


def _framework_mapping(op: str, packed: str, read: str) -> dict[str, str]:
    """What a reader of ``read``'s order sees in blocks packed in ``packed``'s order."""
    return dict(zip(ORDER[read][op], ORDER[packed][op]))


def _plausible(packed: str, read: str, op: str) -> bool:
    """A forgotten reorder between two frameworks; Keras 1 arrays are only ever packed, for Keras or PyTorch."""
    if packed == read or read == "keras1":
        return False
    if packed == "keras1":
        return read in ("keras", "torch") and ORDER["keras1"][op] != ORDER["keras"][op]
    return True


def _describe_permutation(op: str, mapping: dict[str, str]) -> str:
    moved = [g for g in GATES[op] if mapping[g] != g]
    if len(moved) == 2:
        what = f"{moved[0]} and {moved[1]} gates swapped"
    else:
        what = "gates permuted"
    order = ORDER["keras"][op]
    what += f": B's {_letters(order)} hold A's {_letters(mapping[g] for g in order)}"
    pairs = [(p, r) for p in FRAMEWORK_NAMES for r in FRAMEWORK_NAMES
             if _plausible(p, r, op) and _framework_mapping(op, p, r) == mapping]
    if pairs:
        p, r = pairs[0]
        what += (f" ({FRAMEWORK_NAMES[p]} order {_letters(ORDER[p][op], p)} read as "
                 f"{FRAMEWORK_NAMES[r]} order {_letters(ORDER[r][op], r)})")
    return what


def _reshaped(node: Node, direction: str, part: str) -> Callable[[Weights], Weights]:
    """The Keras kernel of ``part`` reshaped, not transposed, into the (gates*units, in) layout."""
    order = ORDER["keras"][node.op]

    def transform(w: Weights) -> Weights:
        packed = np.concatenate([w[_key(direction, g, part)] for g in order], axis=0)  # (gates*units, in)
        wrong = np.ascontiguousarray(packed.T).reshape(packed.shape)
        out = dict(w)
        for g, block in zip(order, np.split(wrong, len(order), axis=0)):
            out[_key(direction, g, part)] = block
        return out
    return transform


def _gates_transposed(direction: str, gates, part: str) -> Callable[[Weights], Weights]:
    """Each square gate block of ``part`` transposed (a per-gate slice copied without ``.T``)."""
    def transform(w: Weights) -> Weights:
        out = dict(w)
        for g in gates:
            out[_key(direction, g, part)] = np.ascontiguousarray(w[_key(direction, g, part)].T)
        return out
    return transform


def _biases(direction: str, gates, how: str) -> Callable[[Weights], Weights]:
    """Rewrite (input_bias, recurrent_bias) of every gate: merged, halved, doubled or dropped."""
    def transform(w: Weights) -> Weights:
        out = dict(w)
        for g in gates:
            bi, bh = w[_key(direction, g, "input_bias")], w[_key(direction, g, "recurrent_bias")]
            total = (bi.astype(np.float64) + bh).astype(bi.dtype)
            new = {"merged": (total, np.zeros_like(bh)),
                   "halved": (_scale(total, 0.5), _scale(total, 0.5)),
                   "doubled": (total, total),
                   "dropped": (bi, np.zeros_like(bh))}[how]
            out[_key(direction, g, "input_bias")], out[_key(direction, g, "recurrent_bias")] = new
        return out
    return transform


def _scaled(direction: str, gates, factor: float) -> Callable[[Weights], Weights]:
    def transform(w: Weights) -> Weights:
        out = dict(w)
        for g in gates:
            for part in GATE_PARTS:
                out[_key(direction, g, part)] = _scale(w[_key(direction, g, part)], factor)
        return out
    return transform


def _swap_directions(w: Weights) -> Weights:
    out = {}
    for key, value in w.items():
        direction, rest = key.split(".", 1)
        out[("backward" if direction == "forward" else "forward") + "." + rest] = value
    return out


# -- the table ---------------------------------------------------------------------------------------------
def _direction_candidates(node: Node, direction: str) -> list[Mistake]:
    op, gates = node.op, node.gate_names
    units, inputs = _unit_count(node)
    where = f"{direction}: " if node.options.get("bidirectional") else ""
    out: list[Mistake] = []
    keras1 = _framework_mapping(op, "keras1", "keras")
    for perm in itertools.permutations(gates):
        mapping = dict(zip(gates, perm))
        if all(g == s for g, s in mapping.items()):
            continue
        kind = "keras1_order" if mapping == keras1 else "permuted_gates"
        out.append(Mistake(kind, where + _describe_permutation(op, mapping), _permuted(direction, mapping),
                           direction))
    for part, size, label in (("input_weights", inputs, "kernel"), ("recurrent_weights", units, "recurrent kernel")):
        n = len(gates)
        if size > 1:
            out.append(Mistake("transposed_kernel", f"{where}Keras {label} ({size}, {n * units}) reshaped to "
                               f"({n * units}, {size}) instead of transposed",
                               _reshaped(node, direction, part), direction))
        if size == units and units > 1:
            out.append(Mistake("transposed_kernel", f"{where}each ({units}, {units}) gate block of the {label} "
                               "transposed (sliced per gate without .T)",
                               _gates_transposed(direction, gates, part), direction))
    for how, kind, text in (
            ("merged", "merged_biases", "bias_hh merged into bias_ih (and zeroed)"),
            ("halved", "halved_biases", "bias_ih and bias_hh each set to half their sum"),
            ("doubled", "doubled_bias", "the bias counted twice (the same bias in bias_ih and bias_hh)"),
            ("dropped", "dropped_bias", "bias_hh dropped (only bias_ih kept)")):
        out.append(Mistake(kind, f"{where}{text}", _biases(direction, gates, how), direction))
    driven = DRIVEN[op].get("recurrent_activation")
    if driven:
        letters = _letters(driven)
        out.append(Mistake("scaled_gates", f"{where}gates {letters} scaled by {HARD_SIGMOID_SCALE:g} (the hard_sigmoid "
                           "Keras 2 -> 3 factor applied where the activation is unchanged)",
                           _scaled(direction, driven, HARD_SIGMOID_SCALE), direction))
        out.append(Mistake("scaled_gates", f"{where}gates {letters} divided by {HARD_SIGMOID_SCALE:g} (Keras 2 "
                           "hard_sigmoid weights run under Keras 3's x/6+0.5 without the 1.2 factor)",
                           _scaled(direction, driven, 1 / HARD_SIGMOID_SCALE), direction))
    return out


def candidates(node: Node) -> list[Mistake]:
    """Every mistake the recurrent layer ``node`` can carry, most specific first."""
    out = [Mistake("swapped_directions", "forward and backward directions swapped", _swap_directions)] \
        if node.options.get("bidirectional") else []
    for direction in node.directions:
        out += _direction_candidates(node, direction)
    return out


def canonical(node: Node, kind: str) -> list[Mistake] | str:
    """The transformations :func:`break_model` applies for ``kind``, or why the layer cannot carry it."""
    op = node.op
    units, inputs = _unit_count(node)
    if kind == "swapped_directions":
        return [candidates(node)[0]] if node.options.get("bidirectional") else "the layer is not bidirectional"
    if kind in ("permuted_gates", "keras1_order"):
        packed, read = PERMUTED_PAIR.get(op, (None, None)) if kind == "permuted_gates" else ("keras1", "keras")
        if op not in ORDER.get(packed, {}) or ORDER[packed][op] == ORDER[read][op]:
            return (f"a {op} has one gate" if op == "simple_rnn" else
                    f"Keras 1 saves a {op}'s gates in the Keras order")
        mapping = _framework_mapping(op, packed, read)
        return [Mistake(kind, _describe_permutation(op, mapping), _permuted(d, mapping), d)
                for d in node.directions]
    if kind == "transposed_kernel":
        if inputs == 1 and units == 1:
            return "input size and units are 1: reshaping equals transposing"
        return [Mistake(kind, KINDS[kind], _reshaped(node, d, part), d) for d in node.directions
                for part, size in (("input_weights", inputs), ("recurrent_weights", units)) if size > 1]
    if kind == "merged_biases":
        return [Mistake(kind, KINDS[kind], _biases(d, node.gate_names, "merged"), d) for d in node.directions]
    if kind == "scaled_gates":
        driven = DRIVEN[op].get("recurrent_activation")
        if not driven:
            return f"a {op} has no sigmoid gates"
        return [Mistake(kind, KINDS[kind], _scaled(d, driven, HARD_SIGMOID_SCALE), d) for d in node.directions]
    raise ValueError(f"unknown mistake {kind!r}; expected one of {', '.join(KINDS)}")


def break_model(model: Model, kind: str, layer: str | None = None) -> Model:
    """A copy of ``model`` with mistake ``kind`` made in every recurrent layer that can carry it.

    ``layer`` limits it to one layer. ``missing_layer`` drops ``layer`` (default: the last recurrent
    layer); the result then suits writers of recurrent layers only (``--to torch-state-dict``,
    ``--to gates``). Raises :class:`UnsupportedError` naming why when no layer can carry ``kind``.
    """
    broken = copy.copy(model)
    broken.nodes = [copy.copy(n) for n in model.nodes]
    targets = [n for n in broken.nodes if n.is_recurrent and (layer is None or n.name == layer)]
    if not targets:
        raise UnsupportedError(f"no recurrent layer {layer!r}" if layer else "the model has no recurrent layer")
    if kind == "missing_layer":
        drop = targets[-1]
        broken.nodes = [n for n in broken.nodes if n is not drop]
        return broken
    reasons = []
    for node in targets:
        plan = canonical(node, kind)
        if isinstance(plan, str):
            reasons.append(f"{node.name}: {plan}")
            continue
        weights = dict(node.weights)
        for mistake in plan:
            weights = mistake.transform(weights)
        node.weights = weights
    if len(reasons) == len(targets):
        raise UnsupportedError(f"no layer can carry {kind}: " + "; ".join(reasons))
    return broken
