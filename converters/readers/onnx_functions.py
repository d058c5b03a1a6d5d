"""Model-local functions (``ModelProto.functions``, IR 8+) inlined before any node is read.

    proto, names = inline_local_functions(onnx, proto, path)

onnxscript and torch's dynamo exporter write a module as a ``FunctionProto`` called from the main graph (a
node whose domain and op name a local function); onnxruntime runs such a file by inlining the calls
(onnxruntime/core/graph/graph.cc ``InlineFunctionsAOT``). gateport does the same with onnx's own inliner
(``onnx.inliner.inline_local_functions``, onnx/inliner/inliner.cc: the formal inputs, outputs and attribute
references bound per call, the body's names made unique), after two checks the inliner does not make:

- no function calls itself, directly or through others (the spec forbids it; the inliner would not end);
- the inlined graph holds at most :data:`budget.MAX_NODES` nodes, counted before anything is inlined: a
  function calling another ``k`` times, nested ``d`` deep, is ``k ** d`` nodes from a small file.

A call of a function the file does not define stays a node of its domain, refused by name as before
(:mod:`onnx_foreign`). A function in the standard domain is refused earlier (``onnx_model.check_structure``).
"""
from __future__ import annotations

from .. import budget
from ..errors import FormatError
from ..sanitize import quote
from .onnx_foreign import graphs_of


def _key(node) -> tuple[str, str, str]:
    return node.domain, node.op_type, getattr(node, "overload", "")


def _bodies(nodes):
    """The nodes of ``nodes`` and of every subgraph (If / Loop / Scan attribute) below them."""
    stack = list(nodes)
    while stack:
        n = stack.pop()
        yield n
        for a in n.attribute:
            if a.HasField("g"):
                stack += a.g.node
            for g in a.graphs:
                stack += g.node


def inlined_size(proto, path: str | None) -> int:
    """The node count of ``proto`` once every local function call is inlined (each call replaced by its
    body); FormatError for a function that calls itself."""
    funcs = {(f.domain, f.name, getattr(f, "overload", "")): f for f in proto.functions}
    sizes: dict[tuple, int] = {}
    for start in funcs:  # depth-first without recursion: a function's size once its callees' are known
        stack, on_path = [start], {start}
        while stack:
            key = stack[-1]
            if key in sizes:
                stack.pop()
                on_path.discard(key)
                continue
            callees = [k for k in (_key(n) for n in _bodies(funcs[key].node)) if k in funcs]
            pending = [k for k in callees if k not in sizes]
            loop = next((k for k in pending if k in on_path), None)
            if loop is not None:
                raise FormatError(f"expected model-local functions that do not call themselves, found "
                                  f"{quote(loop[1])} (domain {quote(loop[0])}) called from {quote(key[1])}", file=path,
                                  layer=f"ONNX function {quote(key[1])}")
            if pending:
                stack.append(pending[0])
                on_path.add(pending[0])
                continue
            total = 0
            for n in _bodies(funcs[key].node):
                total += sizes[_key(n)] if _key(n) in funcs else 1
                budget.count(total, "ONNX nodes once inlined", file=path, layer=f"ONNX function {quote(key[1])}")
            sizes[key] = total
            stack.pop()
            on_path.discard(key)
    total = 0
    for g in graphs_of(proto):
        for n in g.node:
            total += sizes.get(_key(n), 1)
            budget.count(total, "ONNX nodes once the model-local functions are inlined", file=path,
                         layer=f"ONNX node {quote(n.name or (n.output[0] if n.output else ''))} ({quote(n.op_type)[1:-1]})")
    return total


def inline_local_functions(onnx, proto, path: str | None):
    """``proto`` with every call of a model-local function replaced by the function's body, and the names
    of the functions inlined (none: ``proto`` itself)."""
    if not proto.functions:
        return proto, []
    inlined_size(proto, path)
    from onnx import inliner

    try:
        out = inliner.inline_local_functions(proto, False)
    except Exception as e:  # noqa: BLE001 - onnx's inliner refuses a malformed function in its own words
        raise FormatError(f"expected model-local functions onnx's inliner accepts, found one it refuses "
                          f"({type(e).__name__}: {quote(str(e), 200)})", file=path) from None
    return out, sorted({f.name for f in proto.functions})
