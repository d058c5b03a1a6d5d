"""Keras attention layers -> IR: Attention, AdditiveAttention, MultiHeadAttention, Dot, Softmax with a mask.

Masks as Keras applies them (keras/src/layers/attention/{attention,multi_head_attention}.py, tf_keras
the same): Attention takes ``[query_mask, value_mask]`` from its inputs (the key's mask is not used),
leaves masked keys out of the softmax and zeroes the outputs of masked queries; MultiHeadAttention ANDs
the query, value and key masks, the causal mask and ``attention_mask`` into one ``(B, T, S)`` mask. Both
pass the query's mask on. Dot drops masks; Softmax consumes its mask and passes it on. The masks become
inputs of the node, named by ``options.roles``.
"""
from __future__ import annotations

import numpy as np

from ..sanitize import quote
from .keras_context import LayerCall, Tensor
from .keras_layers import activation as plain_activation

#: call keyword arguments each layer understands (others are refused by name)
_ATTENTION_KWARGS = ("use_causal_mask", "return_attention_scores")
_MHA_KWARGS = ("query", "value", "key", "attention_mask", "use_causal_mask", "return_attention_scores")


def _flag(call: LayerCall, key: str) -> bool:
    """A boolean call argument (``use_causal_mask``, ``return_attention_scores``), False where absent."""
    return call.flag(key, False, call.kwargs, what=f"call argument {key}")


def _check_kwargs(call: LayerCall, allowed: tuple[str, ...]) -> None:
    for key, value in call.kwargs.items():
        if key not in allowed and value is not None:
            raise call.unsupported(f"call argument {quote(key)} of {call.class_name} is not supported")


def _seq(call: LayerCall, x: Tensor, what: str) -> None:
    """Attention works on (batch, time, features) tensors."""
    call.expect_rank(x, 2)
    if x.shape is None:
        raise call.unsupported(f"{what} of unknown rank: expected (batch, time, features)")


def _scalar_weight(call: LayerCall, w, what: str, shape: tuple) -> np.ndarray:
    call.check_shape(what, w.array, shape)
    return w.array


def _mask_inputs(names: list[str], roles: list[str], masks: dict[str, str | None]) -> None:
    for role, mask in masks.items():
        if mask:
            names.append(mask)
            roles.append(role)


def attention(call: LayerCall) -> list[Tensor]:
    """Attention (``score_mode`` dot or concat, ``use_scale``) and AdditiveAttention; ``dropout`` is
    inference's identity; ``use_causal_mask`` and ``return_attention_scores`` from the call."""
    cfg, ins = call.config, call.inputs
    _check_kwargs(call, _ATTENTION_KWARGS)
    if not 2 <= len(ins) <= 3:
        raise call.error(f"expected [query, value] or [query, value, key], found {len(ins)} inputs")
    for t, what in zip(ins, ("query", "value", "key")):
        _seq(call, t, what)
    q, v = ins[0], ins[1]
    k = ins[2] if len(ins) > 2 else v
    additive = call.class_name == "AdditiveAttention"
    mode = "additive" if additive else cfg.get("score_mode", "dot")
    if mode not in ("dot", "concat", "additive"):
        raise call.error(f"score_mode: expected dot or concat, found {quote(mode)}")
    if q.shape[-1] is not None and k.shape[-1] is not None and q.shape[-1] != k.shape[-1]:
        raise call.error(f"query has {q.shape[-1]} features and key {k.shape[-1]}: expected the same")
    use_scale = call.flag("use_scale", additive)
    roles = ["scale"] * use_scale + ["concat_score_weight"] * (mode == "concat")
    ws = call.expect_weights(len(roles), f" ({', '.join(roles)})" if roles else "")
    dim = q.shape[-1]
    weights = {role: _scalar_weight(call, w, role, (dim,) if additive else ())
               for role, w in zip(roles, ws)}
    names, in_roles = [q.name, v.name], ["query", "value"]
    if len(ins) > 2:
        names.append(k.name)
        in_roles.append("key")
    # mask=[query_mask, value_mask] given in the call replaces the inputs' masks (Attention.call's mask)
    q_mask, v_mask = call.input_masks[:2] if call.input_masks is not None else runtime_masks(call, [q, v])
    _mask_inputs(names, in_roles, {"query_mask": q_mask, "value_mask": v_mask})
    scores = _flag(call, "return_attention_scores")
    causal = any([_flag(call, "use_causal_mask"), call.flag("causal", False)])  # both read
    outs = [call.out(0)] + ([call.out(1)] if scores else [])
    call.add("attention", names, outs, {"score_mode": mode, "causal": causal, "return_scores": scores,
                                         "roles": in_roles}, weights,
             weight_paths={role: w.path for role, w in zip(roles, ws)})
    y = Tensor(call.out(0), (q.shape[0], v.shape[-1]), q.mask if call.input_masks is None else q_mask)
    _strip(call, [y], [], q_mask)
    return [y, Tensor(call.out(1), (q.shape[0], v.shape[0]))] if scores else [y]


# -- Keras 3: MultiHeadAttention strips its inputs' masks when it runs -----------------------------
# keras/src/layers/attention/multi_head_attention.py ``call``: ``backend.set_keras_mask(query, None)`` (and
# value, key) on the tensors it is given. Attention and MultiHeadAttention take their masks from those
# tensors when they run (layers of one tensor argument use the mask recorded when the model was built),
# so one that runs after such an MHA on the same tensor sees no mask. Keras runs a layer downstream of the
# MHA after it; where neither depends on the other the order is Keras' and gateport refuses.
_STRIPPED = "_attention_stripped"  # on the builder: ids of output Tensors whose runtime mask is None


def _ancestors(builder, layer: str, index: int) -> set[tuple[str, int]]:
    specs = {s.name: s for s in builder.graph.layers}
    seen: set[tuple[str, int]] = set()
    todo = [(layer, index)]
    while todo:
        name, k = todo.pop()
        spec = specs.get(name)
        if spec is None or spec.is_input or k >= len(spec.calls):
            continue
        for ref in builder._call_deps(spec, k):
            if (ref.layer, ref.call) not in seen:
                seen.add((ref.layer, ref.call))
                todo.append((ref.layer, ref.call))
    return seen


def _attention_refs(spec, k: int) -> list:
    call = spec.calls[k]
    return list(call.inputs) + [v for key, v in call.kwargs.items() if key in ("query", "value", "key")
                                and not isinstance(v, (bool, int, float, str, type(None)))]


def runtime_masks(call: LayerCall, tensors: list[Tensor]) -> list[str | None]:
    """The masks Keras 3 gives ``tensors`` (this attention call's query, value, key) when the call runs."""
    builder = call.builder
    if not builder.keras3_masks or not hasattr(builder, "graph"):
        return [t.mask for t in tensors]
    stripped = getattr(builder, _STRIPPED, set())
    me = (call.spec.name, call.index)
    mine = _attention_refs(call.spec, call.index)
    ancestors = None
    masks = []
    for t in tensors:
        mask = None if id(t) in stripped else t.mask
        refs = [r for r in mine if builder.tensors.get(r) is t]
        for spec in builder.graph.layers:
            if mask is None or spec.class_name != "MultiHeadAttention" or spec.is_copy:
                continue
            for k in range(len(spec.calls)):
                if (spec.name, k) == me or not set(refs) & set(_attention_refs(spec, k)):
                    continue
                ancestors = _ancestors(builder, *me) if ancestors is None else ancestors
                if (spec.name, k) in ancestors:
                    mask = None  # that MHA ran first and removed the tensor's mask
                elif me not in _ancestors(builder, spec.name, k):
                    raise call.unsupported(
                        f"{quote(t.name)} is also read by MultiHeadAttention {quote(spec.name)}, which removes its "
                        "Keras mask when it runs (Keras 3); whether this layer sees the mask depends on the order "
                        "Keras runs the two, which gateport does not reproduce")
        masks.append(mask)
    return masks


def _strip(call: LayerCall, outputs: list[Tensor], tensors: list[Tensor], query_mask: str | None) -> None:
    """Record what Keras 3 does at run time: an MHA leaves its inputs unmasked, and an attention layer whose
    query ran unmasked returns an output with no mask (its recorded mask is kept for other layers)."""
    builder = call.builder
    if not builder.keras3_masks:
        return
    stripped = getattr(builder, _STRIPPED, set())
    setattr(builder, _STRIPPED, stripped)
    if call.class_name == "MultiHeadAttention":
        stripped.update(id(t) for t in tensors)
    if query_mask is None and outputs[0].mask is not None:
        stripped.add(id(outputs[0]))


def _mha_inputs(call: LayerCall) -> tuple[Tensor, Tensor, Tensor | None]:
    """(query, value, key) from positional and keyword arguments (tf-keras passes ``value=``)."""
    pos = list(call.inputs)
    args = {}
    for name in ("query", "value", "key"):
        t = call.kwargs.get(name)
        if isinstance(t, Tensor):
            args[name] = t
        elif pos:
            args[name] = pos.pop(0)
    if pos or "query" not in args or "value" not in args:
        raise call.error(f"expected query and value (and a key) tensors, found {len(call.inputs)} "
                         f"positional and {sorted(k for k in args)} named")
    return args["query"], args["value"], args.get("key")


def _dense_parts(call: LayerCall, ws, name: str, shape: tuple, use_bias: bool, bias_shape: tuple):
    kernel = ws.pop(0)
    call.check_shape(f"{name} kernel", kernel.array, shape)
    out = {"kernel": kernel}
    if use_bias:
        bias = ws.pop(0)
        call.check_shape(f"{name} bias", bias.array, bias_shape)
        out["bias"] = bias
    return out


def multi_head_attention(call: LayerCall) -> list[Tensor]:
    """MultiHeadAttention over the time axis of (batch, time, features) inputs."""
    cfg = call.config
    _check_kwargs(call, _MHA_KWARGS)
    q, v, k = _mha_inputs(call)
    for t, what in ((q, "query"), (v, "value"), (k, "key")):
        if t is not None:
            _seq(call, t, what)
    axes = cfg.get("attention_axes")
    if axes not in (None, [1], (1,), 1, [-2], -2):
        raise call.unsupported(f"attention_axes {quote(axes)} is not supported (only the time axis)")
    for key, on in (("use_gate", call.flag("use_gate", False)), ("sliding_window", cfg.get("sliding_window"))):
        if on:
            raise call.unsupported(f"MultiHeadAttention with {key}={quote(cfg[key])} is not supported")
    heads = call.size("num_heads", cfg.get("num_heads"))
    key_dim = call.size("key_dim", cfg.get("key_dim"))
    value_dim = call.size("value_dim", cfg.get("value_dim") or key_dim)
    use_bias = call.flag("use_bias", True)
    kt = k if k is not None else v
    out_shape = cfg.get("output_shape")
    if isinstance(out_shape, (list, tuple)) and len(out_shape) == 1:
        out_shape = out_shape[0]
    out_dim = q.shape[-1] if out_shape is None else call.size("output_shape", out_shape)
    ws = list(call.expect_weights(8 if use_bias else 4))
    parts = {}
    for name, x, dim in (("query", q, key_dim), ("key", kt, key_dim), ("value", v, value_dim)):
        parts[name] = _dense_parts(call, ws, name, (x.shape[-1], heads, dim), use_bias, (heads, dim))
    parts["output"] = _dense_parts(call, ws, "attention_output", (heads, value_dim, out_dim), use_bias,
                                   (out_dim,))
    for x, part in ((q, "query"), (kt, "key"), (v, "value")):
        if x.shape[-1] is None and x.is_model_input:
            x.shape = (None, int(parts[part]["kernel"].array.shape[0]))
    out_dim = int(parts["output"]["kernel"].array.shape[-1])
    weights, paths = {}, {}
    for name, p in parts.items():
        kernel = p["kernel"].array
        flat = kernel.reshape(kernel.shape[0], -1) if name != "output" else kernel.reshape(-1, kernel.shape[-1])
        weights[f"{name}_weight"] = np.ascontiguousarray(flat.T)
        paths[f"{name}_weight"] = p["kernel"].path
        if "bias" in p:
            weights[f"{name}_bias"] = np.ascontiguousarray(p["bias"].array.reshape(-1))
            paths[f"{name}_bias"] = p["bias"].path
    names, roles = [q.name, v.name], ["query", "value"]
    if k is not None:
        names.append(k.name)
        roles.append("key")
    inputs = [q, v] + ([k] if k is not None else [])
    masks = runtime_masks(call, inputs) + [None]
    _mask_inputs(names, roles, {"query_mask": masks[0], "value_mask": masks[1], "key_mask": masks[2]})
    attention_mask = call.kwargs.get("attention_mask")
    if attention_mask is not None:
        if not isinstance(attention_mask, Tensor):
            raise call.error(f"attention_mask: expected a tensor, found {quote(attention_mask)}")
        if attention_mask.shape is not None and len(attention_mask.shape) != 2:
            raise call.unsupported(f"attention_mask of shape {('batch', *attention_mask.shape)}: expected "
                                   "(batch, query time, key time)")
        names.append(attention_mask.name)
        roles.append("attention_mask")
    scores = _flag(call, "return_attention_scores")
    dropout = cfg.get("dropout") or 0.0
    # Keras 3 takes ops.dot_product_attention (masked rows: uniform) unless dropout or scores are asked
    # for, then its Softmax layer, which zeroes masked weights; tf-keras' Softmax adds -1e9 (uniform)
    zero = call.builder.keras3_masks and (scores or (isinstance(dropout, (int, float)) and dropout > 0))
    outs = [call.out(0)] + ([call.out(1)] if scores else [])
    call.add("multi_head_attention", names, outs,
             {"num_heads": heads, "key_dim": key_dim, "value_dim": value_dim, "output_dim": out_dim,
              "use_bias": use_bias, "causal": _flag(call, "use_causal_mask"), "return_scores": scores,
              "masked_rows": "zero" if zero else "uniform", "roles": roles},
             weights, weight_paths=paths)
    y = Tensor(call.out(0), (q.shape[0], out_dim), q.mask)
    _strip(call, [y], inputs, masks[0])
    return [y, Tensor(call.out(1), (heads, q.shape[0], v.shape[0]))] if scores else [y]


def dot(call: LayerCall) -> list[Tensor]:
    """Dot of two (batch, n) or (batch, time, n) tensors; Keras' compute_mask gives no mask."""
    ins = call.inputs
    if len(ins) != 2:
        raise call.error(f"expected 2 inputs to Dot, found {len(ins)}")
    for t in ins:
        if t.shape is None or len(t.shape) not in (1, 2):
            raise call.unsupported("Dot of inputs of unknown rank or rank above 3 is not supported")
    axes = call.config.get("axes")
    axes = [axes, axes] if isinstance(axes, int) and not isinstance(axes, bool) else axes
    if not isinstance(axes, (list, tuple)) or len(axes) != 2:
        raise call.error(f"axes: expected an integer or a pair, found {quote(axes)}")
    norm = []
    for a, t in zip(axes, ins):
        a = call.axis(a)
        rank = len(t.shape) + 1
        if not -rank <= a < rank or a % rank == 0:
            raise call.error(f"axes {list(axes)}: expected an axis from 1 to {rank - 1} of a rank-{rank} input")
        norm.append(a % rank)
    n1, n2 = ins[0].shape[norm[0] - 1], ins[1].shape[norm[1] - 1]
    if n1 is not None and n2 is not None and n1 != n2:
        raise call.error(f"Dot over axes {norm} of sizes {n1} and {n2}: expected equal sizes")
    normalize = call.flag("normalize", False)
    call.add("dot", [t.name for t in ins], [call.out()],
             {"axes": norm, "normalize": normalize, "max_inv_norm": 1e7 if call.builder.keras3_masks else 1e6})
    rest = tuple(d for i, d in enumerate(ins[0].shape) if i != norm[0] - 1) + \
        tuple(d for i, d in enumerate(ins[1].shape) if i != norm[1] - 1)
    return [Tensor(call.out(), rest or (1,))]


def softmax(call: LayerCall) -> list[Tensor]:
    """Softmax over the last axis; with a mask (batch, time) on a (batch, time) input, masked entries
    become -1e9 (keras/src/layers/activations/softmax.py; tf_keras/src/layers/activation/softmax.py
    adds ``(1 - mask) * -1e9``) and Keras 3 zeroes them after the softmax."""
    mask = call.input_mask
    if not mask:
        return plain_activation(call)
    x = call.single_input()
    axis = call.config.get("axis", -1)
    if axis not in (-1, [-1], (-1,)) and not (x.shape and axis in (len(x.shape), [len(x.shape)])):
        raise call.unsupported(f"Softmax over axis {quote(axis)} with a mask is not supported (only the last axis)")
    if x.shape is None or len(x.shape) != 1:
        raise call.unsupported("Softmax with a (batch, time) mask on an input of shape "
                               f"{('batch', *(x.shape or ('?',)))}: Keras lines the mask up with the last "
                               "axes, which only a (batch, time) input matches; not supported")
    call.add("masked_softmax", [x.name, mask], [call.out()], {"zero_masked": call.builder.keras3_masks})
    return [Tensor(call.out(), x.shape, mask)]


HANDLERS = {
    "Attention": attention,
    "AdditiveAttention": attention,
    "MultiHeadAttention": multi_head_attention,
    "Dot": dot,
    "Softmax": softmax,
}
