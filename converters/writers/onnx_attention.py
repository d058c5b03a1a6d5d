"""The attention family as plain ONNX ops (MatMul, Softmax, Where ...; no Loop), opset 13 and up:
``attention``, ``multi_head_attention``, ``dot``, ``masked_softmax`` (equations in
converters/reference_attention.py; masked scores become -1e9 before the Softmax).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Node
from ..reference_attention import MASK_FILL
from ..sanitize import quote
from .onnx_activations import scalar
from .onnx_builder import GraphBuilder


def _dim(g: GraphBuilder, x: str, axis: int) -> str:
    """``shape(x)[axis]`` as a 1-D int64 tensor."""
    return g.op("Gather", [g.op("Shape", [x], rank=1, dtype="int64"), g.const([axis])], rank=1, dtype="int64")


def _causal(g: GraphBuilder, q: str, v: str) -> str:
    """Keras' causal mask ``(1, T, S)``: query i sees keys j <= i."""
    def steps(x: str) -> str:
        n = g.op("Squeeze", [_dim(g, x, 1), g.const([0])], rank=0, dtype="int64")
        return g.op("Range", [g.const(0), n, g.const(1)], rank=1, dtype="int64")
    rows = g.unsqueeze(steps(q), [0, 2])
    cols = g.unsqueeze(steps(v), [0, 1])
    return g.op("GreaterOrEqual", [rows, cols], rank=3, dtype="bool")


def _and(g: GraphBuilder, keep: str | None, mask: str) -> str:
    return mask if keep is None else g.op("And", [keep, mask], rank=max(g.ranks.get(keep, 3), g.ranks.get(mask, 3)),
                                          dtype="bool")


def _masked_softmax(g: GraphBuilder, scores: str, keep: str | None, zero: bool, out: str | None = None) -> str:
    if keep is None:
        return g.op("Softmax", [scores], axis=-1, out=out)
    filled = g.op("Where", [keep, scores, scalar(g, MASK_FILL)], rank=g.rank(scores))
    if not zero:
        return g.op("Softmax", [filled], axis=-1, out=out)
    return g.op("Where", [keep, g.op("Softmax", [filled], axis=-1), scalar(g, 0.0)], out=out, rank=g.rank(scores))


def _roles(node: Node) -> dict[str, str]:
    return dict(zip(node.options["roles"], node.inputs))


def _scores(g: GraphBuilder, node: Node, q: str, k: str) -> str:
    o, w = node.options, node.weights
    mode = o["score_mode"]
    scale = g.initializer(np.asarray(w["scale"], np.float32), "scale") if "scale" in w else None
    if mode == "dot":
        s = g.op("MatMul", [q, g.transpose(k, [0, 2, 1])])
        return g.op("Mul", [s, scale]) if scale else s
    if mode not in ("concat", "additive"):
        raise UnsupportedError(f"expected score_mode dot, concat or additive, found {quote(mode)}")
    summed = g.op("Add", [g.unsqueeze(q, [2]), g.unsqueeze(k, [1])], rank=4)
    if mode == "additive":
        t = g.op("Tanh", [summed])
        t = g.op("Mul", [t, scale]) if scale else t
    else:
        t = g.op("Tanh", [g.op("Mul", [summed, scale]) if scale else summed])
    s = g.op("ReduceSum", [t, g.const([-1])], keepdims=0, rank=3)
    if "concat_score_weight" in w:
        s = g.op("Mul", [g.initializer(np.asarray(w["concat_score_weight"], np.float32), "concat_score_weight"), s],
                 rank=3)
    return s


def attention_to_onnx(g: GraphBuilder, node: Node) -> None:
    r = _roles(node)
    q, v = r["query"], r["value"]
    k = r.get("key", v)
    scores = _scores(g, node, q, k)
    keep = g.unsqueeze(r["value_mask"], [1]) if "value_mask" in r else None
    if node.options.get("causal"):
        keep = _and(g, keep, _causal(g, q, v))
    return_scores = bool(node.options.get("return_scores"))
    weights = _masked_softmax(g, scores, keep, False, out=node.outputs[1] if return_scores else None)
    y_out = None if "query_mask" in r else node.outputs[0]
    y = g.op("MatMul", [weights, v], out=y_out, rank=3)
    if "query_mask" in r:
        g.op("Where", [g.unsqueeze(r["query_mask"], [2]), y, scalar(g, 0.0)], out=node.outputs[0], rank=3)


def _project(g: GraphBuilder, node: Node, x: str, part: str, heads: int, perm: list[int]) -> str:
    """``x W^T + b`` split into heads: (B, T, H, d) transposed by ``perm``."""
    w = node.weights
    y = g.op("MatMul", [x, g.initializer(np.asarray(w[f"{part}_weight"]).T, f"{part}_kernel")], rank=3)
    if f"{part}_bias" in w:
        y = g.op("Add", [y, g.initializer(w[f"{part}_bias"], f"{part}_bias")])
    y = g.op("Reshape", [y, g.const([0, 0, heads, -1])], rank=4)
    return g.transpose(y, perm)


def multi_head_attention_to_onnx(g: GraphBuilder, node: Node) -> None:
    o, r = node.options, _roles(node)
    heads = int(o["num_heads"])
    q = _project(g, node, r["query"], "query", heads, [0, 2, 1, 3])  # (B, H, T, dk)
    k = _project(g, node, r.get("key", r["value"]), "key", heads, [0, 2, 3, 1])  # (B, H, dk, S)
    v = _project(g, node, r["value"], "value", heads, [0, 2, 1, 3])  # (B, H, S, dv)
    q = g.op("Mul", [q, scalar(g, 1.0 / float(np.sqrt(float(o["key_dim"]))))])
    scores = g.op("MatMul", [q, k], rank=4)
    keep = g.unsqueeze(r["query_mask"], [2]) if "query_mask" in r else None
    for role in ("value_mask", "key_mask"):
        if role in r:
            keep = _and(g, keep, g.unsqueeze(r[role], [1]))
    if o.get("causal"):
        keep = _and(g, keep, _causal(g, r["query"], r["value"]))
    if "attention_mask" in r:
        am = r["attention_mask"]
        zero = g.const(0, g.dtypes.get(am, "float32"))
        keep = _and(g, keep, g.op("Not", [g.op("Equal", [am, zero], dtype="bool")], dtype="bool"))
    if keep is not None:
        keep = g.unsqueeze(keep, [1])
    return_scores = bool(o.get("return_scores"))
    weights = _masked_softmax(g, scores, keep, o.get("masked_rows") == "zero",
                              out=node.outputs[1] if return_scores else None)
    ctx = g.transpose(g.op("MatMul", [weights, v], rank=4), [0, 2, 1, 3])
    ctx = g.op("Reshape", [ctx, g.const([0, 0, -1])], rank=3)
    w = node.weights
    y = g.op("MatMul", [ctx, g.initializer(np.asarray(w["output_weight"]).T, "output_kernel")],
             out=None if "output_bias" in w else node.outputs[0], rank=3)
    if "output_bias" in w:
        g.op("Add", [y, g.initializer(w["output_bias"], "output_bias")], out=node.outputs[0])


def _l2_normalize(g: GraphBuilder, x: str, axis: int, limit: float) -> str:
    square_sum = g.op("ReduceSum", [g.op("Mul", [x, x]), g.const([axis])], keepdims=1, rank=g.rank(x))
    inv = g.op("Min", [g.op("Reciprocal", [g.op("Sqrt", [square_sum])]), scalar(g, limit)])
    return g.op("Mul", [x, inv])


def dot_to_onnx(g: GraphBuilder, node: Node) -> None:
    """batch_dot of rank-2/3 tensors: the contracted axis moved last (a) and first after batch (b), MatMul,
    the unit axes of rank-2 operands squeezed."""
    o = node.options
    a, b = node.inputs
    ax1, ax2 = (int(x) for x in o["axes"])
    r1, r2 = g.rank(a), g.rank(b)
    if r1 not in (2, 3) or r2 not in (2, 3):
        raise UnsupportedError(f"expected Dot of rank-2 or rank-3 tensors, found ranks {r1} and {r2}")
    if o.get("normalize"):
        limit = float(o["max_inv_norm"])
        a, b = _l2_normalize(g, a, ax1, limit), _l2_normalize(g, b, ax2, limit)
    a = g.unsqueeze(a, [1]) if r1 == 2 else (g.transpose(a, [0, 2, 1]) if ax1 == 1 else a)
    b = g.unsqueeze(b, [2]) if r2 == 2 else (g.transpose(b, [0, 2, 1]) if ax2 == 2 else b)
    out = node.outputs[0]
    if r1 == 3 and r2 == 3:
        g.op("MatMul", [a, b], out=out, rank=3)
        return
    y = g.op("MatMul", [a, b], rank=3)
    squeeze = {(2, 2): [2], (2, 3): [1], (3, 2): [2]}[(r1, r2)]
    g.op("Squeeze", [y, g.const(squeeze)], out=out, rank=2)


def masked_softmax_to_onnx(g: GraphBuilder, node: Node) -> None:
    x, mask = node.inputs
    _masked_softmax(g, x, mask, bool(node.options.get("zero_masked")), out=node.outputs[0])


LAYERS = {"attention": attention_to_onnx, "multi_head_attention": multi_head_attention_to_onnx,
          "dot": dot_to_onnx, "masked_softmax": masked_softmax_to_onnx}
