"""The ops read from TensorFlow / Keras 3 calls (``slice``, ``reduce``, ``scalar``, ``binary``:
converters/ops.py) in generated PyTorch and numpy code: one expression builder per op, the library
(``torch`` or ``np``) a parameter. Every number reaches the code through codegen's int_option/number."""
from __future__ import annotations

from typing import Callable

from ..errors import UnsupportedError
from ..ir import Node
from .codegen import int_option as _int, number as _number

_INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "power": "**"}


def _bound(v) -> str:
    return "" if v is None else str(_int(v))


def slice_expression(node: Node, x: str, library: str) -> str:
    """``x[:, ..., item]`` on the node's axis; a reversal is ``torch.flip`` (torch has no negative step)."""
    o = node.options
    axis = _int(o["axis"])
    if o.get("index") is not None:
        item = str(_int(o["index"]))
    elif _int(o["step"]) == -1:
        if o.get("start") is not None or o.get("stop") is not None:
            raise UnsupportedError("expected a slice with step -1 to have no start and stop", layer=node.label())
        if library == "torch":
            return f"torch.flip({x}, dims=({axis},))"
        item = "::-1"
    else:
        item = f"{_bound(o.get('start'))}:{_bound(o.get('stop'))}:{_int(o['step'])}"
    return f"{x}[{', '.join([':'] * axis + [item])}]"


def reduce_expression(node: Node, x: str, library: str) -> str:
    o = node.options
    axes = tuple(_int(a) for a in o["axes"])
    keep = bool(o["keepdims"])
    if library == "torch":
        fn = {"mean": "torch.mean", "sum": "torch.sum", "max": "torch.amax", "min": "torch.amin"}[o["mode"]]
        return f"{fn}({x}, dim={axes}, keepdim={keep})"
    return f"np.{o['mode']}({x}, axis={axes}, keepdims={keep})"


def _apply(operation: str, a: str, b: str, library: str) -> str:
    if operation in _INFIX:
        return f"({a} {_INFIX[operation]} {b})"
    return f"{library}.{operation}({a}, {b})"


def scalar_expression(node: Node, x: str, library: str) -> str:
    """The constant in parentheses (``(-1.0) ** x``); torch's maximum/minimum with a number are clamps."""
    o = node.options
    v = f"({_number(o['value'])})"
    if library == "torch" and o["operation"] in ("maximum", "minimum"):
        return f"torch.clamp({x}, {'min' if o['operation'] == 'maximum' else 'max'}={v})"
    return _apply(o["operation"], v, x, library) if o["reverse"] else _apply(o["operation"], x, v, library)


def binary_expression(node: Node, a: str, b: str, library: str) -> str:
    return _apply(node.options["operation"], a, b, library)


def emitters(library: str) -> dict[str, Callable]:
    """IR op -> ``emit(writer, node)`` for ``library`` (``torch`` or ``np``)."""
    def unary(build):
        return lambda w, node: w.assign(node.outputs[0], build(node, w.var(node.inputs[0], node), library))

    def binary(w, node):
        a, b = (w.var(t, node) for t in node.inputs[:2])
        w.assign(node.outputs[0], binary_expression(node, a, b, library))
    return {"slice": unary(slice_expression), "reduce": unary(reduce_expression),
            "scalar": unary(scalar_expression), "binary": binary}
