"""The attention family as Keras 3 layers: Attention / AdditiveAttention, MultiHeadAttention, Dot, Softmax.

Keras 3 computes their masks itself from the inputs' Keras masks (keras/src/layers/layer.py
``__call__`` step 6; the nodes record none): :func:`mask_call` checks that what Keras derives is what
the IR node reads, and gives the layer's output mask. MultiHeadAttention stores its EinsumDense kernels
``(in, heads, dim)`` / ``(heads, dim, out)`` under ``query_dense``, ``key_dense``, ``value_dense``,
``output_dense`` (keras/src/layers/attention/multi_head_attention.py).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Node
from ..sanitize import quote
from .keras_layers import KerasLayer

#: Keras classes written here, and what their output mask is
CLASSES = ("Attention", "AdditiveAttention", "MultiHeadAttention", "Softmax")
_WAY_OUT = "ONNX and --to torch keep it exactly"


def _base(name: str) -> dict:
    return {"name": name, "trainable": True, "dtype": "float32"}


def _roles(node: Node) -> dict[str, str]:
    return dict(zip(node.options["roles"], node.inputs))


def _call_kwargs(node: Node) -> dict:
    o = node.options
    return {k: True for k, on in (("use_causal_mask", o.get("causal")),
                                  ("return_attention_scores", o.get("return_scores"))) if on}


def attention_layer(node: Node, name: str) -> KerasLayer:
    o, w, r = node.options, node.weights, _roles(node)
    mode = o["score_mode"]
    args = [r["query"], r["value"]] + ([r["key"]] if "key" in r else [])
    if mode == "additive":
        cls, cfg = "AdditiveAttention", {**_base(name), "use_scale": "scale" in w, "dropout": 0.0}
    else:
        if mode == "concat" and "concat_score_weight" not in w:
            raise UnsupportedError("Keras 3 Attention(score_mode='concat') holds a concat_score_weight; the "
                                   "node has none", layer=node.label())
        cls = "Attention"
        cfg = {**_base(name), "use_scale": "scale" in w, "score_mode": mode, "dropout": 0.0, "seed": None}
    arrays = [np.asarray(w[k]) for k in ("scale", "concat_score_weight") if k in w]
    return KerasLayer(name, cls, cfg, args, list(node.outputs), {"": (name, arrays)}, list_input=True, node=node,
                      call_kwargs=_call_kwargs(node))


def multi_head_attention_layer(node: Node, name: str) -> KerasLayer:
    o, w, r = node.options, node.weights, _roles(node)
    heads, key_dim, value_dim = int(o["num_heads"]), int(o["key_dim"]), int(o["value_dim"])
    bias = o["use_bias"]
    # a query row is fully masked by a query mask, an attention_mask, or a causal mask over masked keys
    # (leading padding); a key mask alone masks a whole row only for a sequence with no key at all
    rows_masked = "query_mask" in r or "attention_mask" in r or \
        (o.get("causal") and ("value_mask" in r or "key_mask" in r))
    if o["masked_rows"] == "uniform" and o.get("return_scores") and rows_masked:
        raise UnsupportedError("Keras 3 MultiHeadAttention returning its scores zeroes the weights of a query "
                               "whose every key is masked; the source spreads them evenly (tf-keras); "
                               + _WAY_OUT, layer=node.label())
    variables: dict = {"": (name, [])}
    for sub, part, dim in (("query_dense", "query", key_dim), ("key_dense", "key", key_dim),
                           ("value_dense", "value", value_dim)):
        weight = np.asarray(w[f"{part}_weight"])  # (heads * dim, in)
        arrays = [np.ascontiguousarray(weight.T.reshape(weight.shape[1], heads, dim))]
        if bias:
            arrays.append(np.asarray(w[f"{part}_bias"]).reshape(heads, dim))
        variables[sub] = (part, arrays)
    out = np.asarray(w["output_weight"])  # (out, heads * value_dim)
    arrays = [np.ascontiguousarray(out.T.reshape(heads, value_dim, out.shape[0]))]
    if bias:
        arrays.append(np.asarray(w["output_bias"]))
    variables["output_dense"] = ("attention_output", arrays)
    variables["_softmax"] = ("softmax", [])
    variables["_dropout_layer"] = ("dropout", [])
    # dropout only picks Keras 3's explicit-softmax path (masked rows zeroed); inference ignores it
    zero = o.get("masked_rows") == "zero" and not o.get("return_scores")
    cfg = {**_base(name), "num_heads": heads, "key_dim": key_dim, "value_dim": value_dim,
           "dropout": 0.1 if zero else 0.0, "use_bias": bool(bias), "output_shape": int(out.shape[0]),
           "attention_axes": None}
    args = [r["query"], r["value"]] + ([r["key"]] if "key" in r else [])
    tensors = {"attention_mask": r["attention_mask"]} if "attention_mask" in r else {}
    return KerasLayer(name, "MultiHeadAttention", cfg, args, list(node.outputs), variables, node=node,
                      call_kwargs=_call_kwargs(node), tensor_kwargs=tensors)


def dot_layer(node: Node, name: str) -> KerasLayer:
    cfg = {**_base(name), "axes": [int(a) for a in node.options["axes"]],
           "normalize": bool(node.options.get("normalize"))}
    return KerasLayer(name, "Dot", cfg, list(node.inputs), list(node.outputs), {"": (name, [])}, list_input=True,
                      node=node)


def masked_softmax_layer(node: Node, name: str) -> KerasLayer:
    if not node.options.get("zero_masked"):
        raise UnsupportedError("Keras 3's Softmax zeroes masked entries after the softmax; the source "
                               "(tf-keras) does not, which differs where a whole row is masked; " + _WAY_OUT,
                               layer=node.label())
    return KerasLayer(name, "Softmax", {**_base(name), "axis": -1}, node.inputs[:1], list(node.outputs),
                      {"": (name, [])}, node=node)


LAYERS = {"attention": attention_layer, "multi_head_attention": multi_head_attention_layer, "dot": dot_layer,
          "masked_softmax": masked_softmax_layer}


def _masked_args(layer: KerasLayer) -> set[str]:
    """The IR tensors this attention-family layer reads with a mask."""
    if layer.node is None or layer.node.op not in ("attention", "multi_head_attention"):
        return set()
    r = _roles(layer.node)
    return {r[role] for role in ("query", "value", "key") if f"{role}_mask" in r}


def check_mask_stripping(layers: list[KerasLayer]) -> None:
    """Keras 3's MultiHeadAttention removes the Keras mask of the tensors it reads when it runs
    (multi_head_attention.py ``call``), so another attention layer reading one of those masked tensors
    sees a mask or not depending on Keras' run order: refused (the source computed it one way)."""
    attending = [lay for lay in layers if lay.class_name in CLASSES[:3] and lay.node is not None]
    for mha in (lay for lay in attending if lay.class_name == "MultiHeadAttention"):
        for other in attending:
            shared = set(mha.args) & set(other.args) if other is not mha else set()
            if shared & (_masked_args(mha) | _masked_args(other)):
                raise UnsupportedError(
                    f"reads a masked tensor that MultiHeadAttention {quote(mha.name)} also reads; Keras 3's "
                    "MultiHeadAttention removes that tensor's mask when it runs, so Keras 3 would mask this "
                    f"layer or not depending on its run order; {_WAY_OUT}", layer=other.node.label())


def mask_call(tracker, layer: KerasLayer, ins: list) -> tuple[list, list]:
    """``(mask tensors the call records, output masks)`` of an attention-family layer, after checking that
    the masks Keras 3 derives from its inputs are the ones the IR node reads."""
    node, cls = layer.node, layer.class_name
    assert node is not None  # every attention-family layer is written from a node
    if cls == "Softmax":
        want: dict[str, str | None] = {"mask": node.inputs[1]}
        given = layer.tensor_kwargs.get("mask")  # written out by keras_graph._explicit_masks
        have = {"mask": ins[0] if given is None else (tracker.ir_key(given), given)}
    else:
        roles = _roles(node)
        names = ("query", "value", "key")[:len(layer.args)]
        if layer.mask_list is not None:  # mask=[query_mask, value_mask] written out (keras_graph._explicit_masks)
            ins = [None if t is None else (tracker.ir_key(t), t) for t in layer.mask_list]
        have = {f"{n}_mask": m for n, m in zip(names, ins)}
        if cls != "MultiHeadAttention":
            have.pop("key_mask", None)  # Attention reads [query_mask, value_mask] only
        want = {k: roles.get(k) for k in ("query_mask", "value_mask", "key_mask") if k in have or k in roles}
    for key, mask in want.items():
        got = have.get(key)
        if tracker.ir_key(mask) != (None if got is None else got[0]):
            raise UnsupportedError(f"cannot keep this layer's {key} in Keras 3: Keras derives it from the input's "
                                   f"Keras mask, which differs from the source's (an explicit mask argument, or a "
                                   f"mask Keras 3 merges or drops otherwise); {_WAY_OUT}", layer=node.label())
    first = ins[0] if ins else None
    outs: list = [None] * len(layer.outputs)
    if cls == "Softmax":  # the output keeps the input's Keras mask (Layer.compute_mask), an explicit one or not
        return ([first[1]] if first and given is None else []), [first]
    if first is not None and cls != "MultiHeadAttention":  # compute_mask: ops.convert_to_tensor(mask[0])
        first = (first[0], tracker.op("convert_to_tensor", [first[1]]))
    outs[0] = first
    return [], outs
