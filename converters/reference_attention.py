"""The numpy forward pass of the attention family: ``attention``, ``multi_head_attention``, ``dot``,
``masked_softmax`` (float64, from the equations in converters/ir.py).

Masked scores are *replaced* by :data:`MASK_FILL` before the softmax. Keras subtracts 1e9 (Attention:
keras/src/layers/attention/attention.py ``_apply_scores`` ``where(padding_mask, scores - 1e9, scores)``,
tf_keras/src/layers/attention/base_dense_attention.py ``scores -= 1e9 * padding_mask``) or replaces
(Softmax: keras/src/layers/activations/softmax.py ``where(mask, x, -1e9)``; MultiHeadAttention through
``ops.dot_product_attention``: ``where(mask, logits, -0.7 * 3.38953e38)``); in float32 every one of these
gives the same weights: exactly 0 for a masked key of a row with an unmasked key, and a uniform row
where every key is masked (``s - 1e9`` rounds to ``-1e9`` for ``|s| < 32``).
"""
from __future__ import annotations

import numpy as np

#: What a masked score becomes before the softmax.
MASK_FILL = -1e9


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def roles(node, args) -> dict:
    """The node's inputs by role (``options.roles``: query, value, key, query_mask, ...)."""
    return dict(zip(node.options.get("roles") or ("query", "value"), args))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def causal(t: int, s: int) -> np.ndarray:
    """Keras' causal mask ``(t, s)``: query i sees keys j <= i (``cumsum`` rows >= ``cumsum`` cols)."""
    return np.arange(t)[:, None] >= np.arange(s)[None, :]


def _scores(node, q, k) -> np.ndarray:
    o, w = node.options, node.weights
    mode = o["score_mode"]
    scale = _f64(w["scale"]) if "scale" in w else None
    if mode == "dot":
        s = q @ np.swapaxes(k, -1, -2)
        return s * scale if scale is not None else s
    summed = q[:, :, None, :] + k[:, None, :, :]
    if mode == "additive":
        return ((scale if scale is not None else 1.0) * np.tanh(summed)).sum(axis=-1)
    inner = np.tanh(scale * summed if scale is not None else summed).sum(axis=-1)
    return _f64(w["concat_score_weight"]) * inner if "concat_score_weight" in w else inner


def attention(node, *args):
    """Keras Attention / AdditiveAttention (keras/src/layers/attention/attention.py ``call``)."""
    r = {k: (np.asarray(v) != 0 if k.endswith("_mask") else _f64(v)) for k, v in roles(node, args).items()}
    q, v = r["query"], r["value"]
    k = r.get("key", v)
    s = _scores(node, q, k)
    keep = np.ones(s.shape, bool)
    if "value_mask" in r:
        keep &= r["value_mask"][:, None, :]
    if node.options.get("causal"):
        keep &= causal(s.shape[1], s.shape[2])[None]
    weights = softmax(np.where(keep, s, MASK_FILL))
    y = weights @ v
    if "query_mask" in r:
        y = np.where(r["query_mask"][:, :, None], y, 0.0)
    return [y, weights] if node.options.get("return_scores") else y


def mha_mask(node, r: dict, t: int, s: int) -> np.ndarray:
    """MultiHeadAttention ``_compute_attention_mask``: query (B,T,1) & value, key (B,1,S) & causal &
    attention_mask (B,T,S), as ``(B, 1, T, S)``."""
    keep = np.ones((1, t, s), bool)
    if "query_mask" in r:
        keep = keep & r["query_mask"][:, :, None]
    for key in ("value_mask", "key_mask"):
        if key in r:
            keep = keep & r[key][:, None, :]
    if node.options.get("causal"):
        keep = keep & causal(t, s)[None]
    if "attention_mask" in r:
        keep = keep & r["attention_mask"]
    return keep[:, None]


def _project(x, w, b, heads):
    y = x @ _f64(w).T + (0.0 if b is None else _f64(b))
    return y.reshape(*y.shape[:-1], heads, -1)


def multi_head_attention(node, *args):
    """Keras MultiHeadAttention on (batch, time, features) with attention over time."""
    o, w = node.options, node.weights
    r = {k: (np.asarray(v) != 0 if k.endswith("_mask") else _f64(v)) for k, v in roles(node, args).items()}
    heads = int(o["num_heads"])
    q = _project(r["query"], w["query_weight"], w.get("query_bias"), heads)
    k = _project(r.get("key", r["value"]), w["key_weight"], w.get("key_bias"), heads)
    v = _project(r["value"], w["value_weight"], w.get("value_bias"), heads)
    s = np.einsum("bthd,bshd->bhts", q / np.sqrt(float(o["key_dim"])), k)
    keep = mha_mask(node, r, s.shape[2], s.shape[3])
    weights = softmax(np.where(keep, s, MASK_FILL))
    if o.get("masked_rows") == "zero":
        weights = np.where(keep, weights, 0.0)
    ctx = np.einsum("bhts,bshd->bthd", weights, v)
    ctx = ctx.reshape(*ctx.shape[:2], -1)
    y = ctx @ _f64(w["output_weight"]).T + _f64(w.get("output_bias", 0.0))
    return [y, weights] if o.get("return_scores") else y


def l2_normalize(x, axis: int, max_inv_norm: float) -> np.ndarray:
    """``x * min(rsqrt(sum(x^2)), max_inv_norm)`` (Keras 3: 1/epsilon = 1e7; tf-keras l2_normalize: 1e6)."""
    with np.errstate(divide="ignore"):
        return x * np.minimum(1.0 / np.sqrt((x * x).sum(axis=axis, keepdims=True)), max_inv_norm)


def dot(node, a, b):
    """Keras Dot of two rank-2 or rank-3 tensors over ``axes`` (batch included): ``batch_dot``,
    ``(B, *ra, F) . (B, *rb, F) -> (B, *ra, *rb)``, ``(B, 1)`` when both are rank 2."""
    a, b = _f64(a), _f64(b)
    ax1, ax2 = (int(x) for x in node.options["axes"])
    if node.options.get("normalize"):
        limit = float(node.options["max_inv_norm"])
        a, b = l2_normalize(a, ax1, limit), l2_normalize(b, ax2, limit)
    a, b = np.moveaxis(a, ax1, -1), np.moveaxis(b, ax2, -1)
    rest = a.shape[1:-1] + b.shape[1:-1]
    y = a.reshape(a.shape[0], -1, a.shape[-1]) @ np.swapaxes(b.reshape(b.shape[0], -1, b.shape[-1]), 1, 2)
    return y.reshape(y.shape[0], *(rest or (1,)))


def masked_softmax(node, x, mask):
    """Keras Softmax(axis=-1) called with a mask: masked entries become -1e9; Keras 3 also zeroes them
    after the softmax (``zero_masked``), tf-keras does not."""
    keep = np.asarray(mask, bool)
    y = softmax(np.where(keep, _f64(x), MASK_FILL))
    return np.where(keep, y, 0.0) if node.options.get("zero_masked") else y


#: op -> f(node, *inputs); merged into converters.reference.OPS.
OPS = {"attention": attention, "multi_head_attention": multi_head_attention, "dot": dot,
       "masked_softmax": masked_softmax}
