"""What the generated-code writers share (:mod:`converters.writers.torch_code`, :mod:`converters.writers.numpy_code`):
tensor shapes, option and number literals, the comments and docstring lines naming layers and notes."""
from __future__ import annotations

import math
import re
from collections import Counter

from ..errors import FormatError
from ..ir import Model, Node, int_option  # noqa: F401 (int_option: the writers read it here)
from ..keras_classes import RECURRENT_CLASS
from ..sanitize import comment, quote
from ..shapes import node_output_shapes

#: IR recurrent op -> its Keras class, for comments (converters/keras_classes.py).
KERAS_CLASS = RECURRENT_CLASS


def shapes(model: Model) -> dict[str, tuple | None]:
    """Every tensor's shape where known: they annotate the file and give BatchNormalization its rank."""
    known: dict[str, tuple | None] = {t.name: tuple(t.shape) for t in model.inputs}
    for node in model.nodes:
        try:
            outs = node_output_shapes(node, [known.get(t) for t in node.inputs])
        except (KeyError, TypeError, ValueError, IndexError):  # an option the shape needs is missing
            outs = [None] * len(node.outputs)
        known.update(zip(node.outputs, outs))
    return known


def number(value) -> str:
    """Python source for the real number ``value``; NaN and infinities as ``float('nan')`` / ``float('inf')``."""
    if isinstance(value, (str, bytes)):
        raise FormatError(f"expected a number, found {quote(value)}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise FormatError(f"expected a number, found {quote(value)}") from None
    if math.isnan(x):
        return "float('nan')"
    if math.isinf(x):
        return "float('inf')" if x > 0 else "-float('inf')"
    return repr(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def describe(node: Node) -> str:
    """A short comment for a node: ``lstm_1 (LSTM): 32 units, return_sequences``."""
    o = node.options
    name, cls = comment(node.name), comment(node.source.get("class_name") or node.op)
    if not node.is_recurrent:
        return f"# {name} ({cls})"
    kind = KERAS_CLASS[node.op]
    if o.get("bidirectional"):
        kind = f"Bidirectional({kind}, merge_mode={comment(o.get('merge_mode'))})"
    flags = [f for f in ("return_sequences", "return_state", "go_backwards") if o.get(f)]
    if node.op == "gru":
        flags.append(f"reset_after={bool(o.get('reset_after', True))}")
    acts = [o["activation"]] + ([o["recurrent_activation"]] if node.op != "simple_rnn" else [])
    flags.append(comment("/".join(map(str, acts))))
    if node.mask:
        flags.append("masked")
    return f"# {name}: {kind}, {int_option(o['units'])} units, " + ", ".join(flags)


def check_outputs(node: Node, exprs: list[str]) -> None:
    """Refuse a recurrent node whose output count is not what its code computes (y, then the states)."""
    if len(node.outputs) != len(exprs):
        raise FormatError(f"expected {len(exprs)} outputs (y and states as Keras returns them), "
                          f"found {len(node.outputs)}", layer=node.label())


def initial_states(w, node: Node, n_states: int) -> list[list[str]] | None:
    """Given initial states per direction (fw h[, c], bw h[, c]), or None; ``w`` is the writer (its ``var``)."""
    given = [w.var(t, node) for t in node.inputs[1:]]
    if not given:
        return None
    if len(given) != n_states * len(node.directions):
        raise FormatError(f"expected {n_states * len(node.directions)} initial states, found {len(given)}",
                          layer=node.label())
    return [given[k * n_states:(k + 1) * n_states] for k in range(len(node.directions))]


def shape_doc(shape) -> str:
    """``(batch, 6, None)`` for the docstring (every dimension through :func:`comment`)."""
    return "(" + ", ".join(["batch"] + [comment(d) for d in shape]) + ")"


def notes_doc(model: Model) -> str:
    """The docstring lines of the conversion's notes (:mod:`converters.notes`), or nothing."""
    lines = (model.source or {}).get("notes") or []
    return "".join(["Notes:\n"] + [f"    {comment(line, 400)}\n" for line in lines]) if lines else ""


def merge_expression(node: Node, xs: list[str], library: str) -> str:
    """add, subtract, multiply, average, maximum, minimum of the expressions ``xs``, left to right as Keras'
    Merge layers; ``library`` (``torch`` or ``np``) provides maximum/minimum."""
    if node.op == "subtract":
        if len(xs) != 2:
            raise FormatError(f"expected 2 inputs, found {len(xs)}", layer=node.label())
        return f"{xs[0]} - {xs[1]}"
    if node.op in ("add", "multiply", "average"):
        expr = (" * " if node.op == "multiply" else " + ").join(xs)
        return f"({expr}) / {len(xs)}" if node.op == "average" else expr
    expr = xs[0]
    for x in xs[1:]:
        expr = f"{library}.{node.op}({expr}, {x})"
    return expr


_SIMPLE_ASSIGNMENT = re.compile(r"([A-Za-z_]\w*) = ")
_NAME = re.compile(r"\b[A-Za-z_]\w*")


def without_unused_assignments(body: list[str], outputs: list[str]) -> list[str]:
    """``body`` without its ``name = expr`` lines whose name nothing reads (a state output the model
    never uses, say), repeated until none is left: the expressions are side-effect free, and the file
    then passes ``ruff --select F`` (tests/test_lint.py)."""
    body = list(body)
    while True:
        # every name counted in one pass (a search per line over the whole text was quadratic: a model of 10**4
        # layers took minutes, red team round 9); a maximal word starting with a letter is what \bname\b finds
        counts = Counter(_NAME.findall("\n".join(body + outputs)))
        unused = [k for k, line in enumerate(body)
                  if (m := _SIMPLE_ASSIGNMENT.match(line)) and counts[m.group(1)] == 1]
        if not unused:
            return body
        body = [line for k, line in enumerate(body) if k not in unused]
