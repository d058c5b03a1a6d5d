"""The attention family in a generated numpy ``model.py``: ``attention``, ``multi_head_attention``,
``dot``, ``masked_softmax`` (the equations of converters/reference_attention.py, written out as helpers).
"""
from __future__ import annotations

import numpy as np

from ..ir import Node
from ..sanitize import literal

_KEEP = '''
def keras_masked_softmax(scores, keep, zero_masked=False):
    """Softmax over the last axis with scores where ``keep`` is False set to -1e9 (and, as Keras 3's
    Softmax layer does, their weights to 0 with ``zero_masked``)."""
    e = np.where(keep, scores, -1e9)
    e = np.exp(e - e.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return np.where(keep, y, 0.0) if zero_masked else y


def keras_causal(t, s):
    """Keras' causal mask: query i sees keys j <= i."""
    return np.arange(t)[:, None] >= np.arange(s)[None, :]
'''

_ATTENTION = '''
def keras_attention(query, value, key=None, query_mask=None, value_mask=None, score_mode="dot", causal=False,
                    scale=None, concat_score_weight=None):
    """Keras Attention (dot or concat scores) and AdditiveAttention: (outputs, weights)."""
    key = value if key is None else key
    if score_mode == "dot":
        scores = query @ np.swapaxes(key, -1, -2)
        scores = scores * scale if scale is not None else scores
    elif score_mode == "additive":
        scores = ((1.0 if scale is None else scale) * np.tanh(query[:, :, None] + key[:, None])).sum(axis=-1)
    else:
        summed = query[:, :, None] + key[:, None]
        scores = np.tanh(summed * scale if scale is not None else summed).sum(axis=-1)
        scores = concat_score_weight * scores if concat_score_weight is not None else scores
    keep = np.ones(scores.shape, bool)
    if value_mask is not None:
        keep &= value_mask[:, None, :]
    if causal:
        keep &= keras_causal(scores.shape[1], scores.shape[2])[None]
    weights = keras_masked_softmax(scores, keep)
    out = weights @ value
    if query_mask is not None:
        out = np.where(query_mask[:, :, None], out, 0.0)
    return out, weights
'''

_MHA = '''
def keras_multi_head_attention(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
                               attention_mask=None, num_heads=1, key_dim=1, causal=False, zero_masked=False,
                               **w):
    """Keras MultiHeadAttention over time: (outputs, weights (batch, heads, T, S))."""
    key = value if key is None else key

    def project(x, part):
        y = x @ w[part + "_weight"].T + w.get(part + "_bias", 0.0)
        return y.reshape(y.shape[0], y.shape[1], num_heads, -1)

    q, k, v = project(query, "query"), project(key, "key"), project(value, "value")
    scores = np.einsum("bthd,bshd->bhts", q / np.sqrt(float(key_dim)), k)
    t, s = scores.shape[2], scores.shape[3]
    keep = np.ones((1, t, s), bool)
    if query_mask is not None:
        keep = keep & query_mask[:, :, None]
    for mask in (value_mask, key_mask):
        if mask is not None:
            keep = keep & mask[:, None, :]
    if causal:
        keep = keep & keras_causal(t, s)[None]
    if attention_mask is not None:
        keep = keep & (attention_mask != 0)
    weights = keras_masked_softmax(scores, keep[:, None], zero_masked)
    ctx = np.einsum("bhts,bshd->bthd", weights, v)
    ctx = ctx.reshape(ctx.shape[0], ctx.shape[1], -1)
    return ctx @ w["output_weight"].T + w.get("output_bias", 0.0), weights
'''

_DOT = '''
def keras_dot(a, b, axes, normalize=False, max_inv_norm=1e7):
    """Keras Dot: batch_dot over ``axes`` (batch included), L2-normalized first with ``normalize``."""
    if normalize:
        with np.errstate(divide="ignore"):
            a = a * np.minimum(1.0 / np.sqrt((a * a).sum(axis=axes[0], keepdims=True)), max_inv_norm)
            b = b * np.minimum(1.0 / np.sqrt((b * b).sum(axis=axes[1], keepdims=True)), max_inv_norm)
    a, b = np.moveaxis(a, axes[0], -1), np.moveaxis(b, axes[1], -1)
    rest = a.shape[1:-1] + b.shape[1:-1]
    y = a.reshape(a.shape[0], -1, a.shape[-1]) @ np.swapaxes(b.reshape(b.shape[0], -1, b.shape[-1]), 1, 2)
    return y.reshape(y.shape[0], *(rest or (1,)))
'''

#: helper name -> (source, helpers it needs); merged into numpy_templates.HELPERS.
HELPERS = {
    "keras_masked_softmax": (_KEEP, ()),
    "keras_attention": (_ATTENTION, ("keras_masked_softmax",)),
    "keras_multi_head_attention": (_MHA, ("keras_masked_softmax",)),
    "keras_dot": (_DOT, ()),
}
FUNCTION_NAMES = ("keras_masked_softmax", "keras_causal", "keras_attention", "keras_multi_head_attention", "keras_dot")


def _float(a) -> np.ndarray:
    a = np.asarray(a)
    return a if a.dtype == np.float32 else a.astype(np.float64)


def _call(w, node: Node, fn: str, options: list[str]) -> None:
    args = [f"{role}={w.var(t, node)}" for role, t in zip(node.options["roles"], node.inputs)] + options
    if node.weights:
        args.append(f"**{w.weights(node.name, {k: _float(v) for k, v in node.weights.items()})}")
    w.helpers.add(fn)
    out = w.unique(f"{node.name}_out")
    w.line(f"{out} = {fn}({', '.join(args)})")
    for k, tensor in enumerate(node.outputs):
        w.assign(tensor, f"{out}[{k}]")


def attention_to_numpy(w, node: Node) -> None:
    o = node.options
    _call(w, node, "keras_attention", [f"score_mode={literal(str(o.get('score_mode', 'dot')))}",
                                       f"causal={bool(o.get('causal'))}"])


def multi_head_attention_to_numpy(w, node: Node) -> None:
    o = node.options
    _call(w, node, "keras_multi_head_attention",
          [f"num_heads={int(o['num_heads'])}", f"key_dim={int(o['key_dim'])}", f"causal={bool(o.get('causal'))}",
           f"zero_masked={o.get('masked_rows') == 'zero'}"])


def dot_to_numpy(w, node: Node) -> None:
    o = node.options
    a, b = (w.var(t, node) for t in node.inputs)
    w.helpers.add("keras_dot")
    axes = [int(x) for x in o["axes"]]
    w.assign(node.outputs[0], f"keras_dot({a}, {b}, {axes}, {bool(o.get('normalize'))}, "
                              f"{float(o.get('max_inv_norm', 1e7))!r})")


def masked_softmax_to_numpy(w, node: Node) -> None:
    x, mask = (w.var(t, node) for t in node.inputs)
    w.helpers.add("keras_masked_softmax")
    w.assign(node.outputs[0], f"keras_masked_softmax({x}, {mask}, {bool(node.options.get('zero_masked'))})")


EMITTERS = {"attention": attention_to_numpy, "multi_head_attention": multi_head_attention_to_numpy,
            "dot": dot_to_numpy, "masked_softmax": masked_softmax_to_numpy}
