"""An IR model as a Keras 3 functional graph: its layers, their masks, and the order Keras gives them.

* Masks: Keras computes them itself. Each layer's mask is re-derived here with Keras 3's rules
  (keras/src/layers/core/{masking,embedding}.py ``compute_mask``, rnn/rnn.py, rnn/bidirectional.py,
  merging/base_merge.py: ``logical_or`` of the inputs' masks, None if one is None;
  merging/concatenate.py) and compared with the mask the IR gives each recurrent and Masking
  node; a difference is refused (Keras 3 would compute something else).
* Order: a ``.keras`` file names a layer's weights by its class in snake case, counted in
  ``model.layers`` order (saving_lib.py ``_save_container_state``). That order is
  keras/src/ops/function.py ``map_graph``: depth from the outputs, ties broken by first visit in a
  depth-first walk over each call's tensor arguments (positional, then keyword arguments sorted by
  name, an auto-filled ``mask`` among them). :func:`keras_layer_order` replays it, the mask
  operations Keras inserts included.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..dtypes import keras_policy
from ..errors import UnsupportedError
from ..ir import Model, unique_name
from ..sanitize import quote
from .keras_attention import CLASSES as ATTENTION_CLASSES, LAYERS as ATTENTION_LAYERS, check_mask_stripping, mask_call
from ..keras_classes import MASK_ARG, MERGE_OPS, PASS_MASK, RECURRENT_CLASS, RECURRENT_LAYERS, to_snake_case
from .keras_layers import (IMPLICIT, LAYERS, MASK_ARG_LAYERS, KerasLayer, embedding_layer, operation_layer,
                           time_distributed)
from .keras_tf_ops import LAYERS as OPERATIONS, unmasked_merge  # slice, reduce, scalar, binary: Keras 3 operation nodes

#: Layers whose ``call`` takes ``mask`` (Keras fills it from the input when it is the only tensor), and
#: those that pass their input's mask on unchanged: the mask columns of converters/keras_classes.py.
_MASK_ARG = MASK_ARG
_PASS_MASK = PASS_MASK
#: Input dtypes written (as the ONNX writer takes them).
INPUT_DTYPES = ("float32", "float64", "int32", "int64", "bool")  # bool: a mask input (layer(x, mask=m))
_MERGES = tuple(MERGE_OPS)


@dataclass
class KerasLayerGraph:
    """The Keras 3 functional graph written for an IR model: its layers and which layer output holds each IR tensor."""

    name: str
    inputs: list[tuple[str, str]]  # (Keras input layer name, IR tensor)
    layers: list[KerasLayer]
    refs: dict[str, tuple[str, int]]  # IR tensor -> (Keras layer, output index)
    outputs: list[str]  # IR tensors
    input_specs: dict[str, tuple] = field(default_factory=dict)  # IR tensor -> (shape, dtype)


def _keep_policy(layer: KerasLayer, policy: str | None) -> None:
    """The source layer's dtype policy (mixed_float16, float64 ...: converters/dtypes.py) in the layer's
    config and its wrapped layers' (Bidirectional, TimeDistributed), so that Keras computes as the source did.
    float16/bfloat16 variables get zeros as recurrent initializer: Keras' default orthogonal one needs a QR
    torch has no float16 CPU kernel for (the loaded weights replace it anyway)."""
    configs = [(layer.class_name, layer.config)] if policy else []
    for cls, cfg in configs:
        cfg["dtype"] = policy
        if cls in RECURRENT_CLASS.values() and policy in ("float16", "bfloat16"):
            cfg["recurrent_initializer"] = "zeros"
        configs += [(sub.get("class_name"), sub["config"]) for sub in (cfg.get(k) for k in ("layer", "forward_layer",
                                                                                               "backward_layer"))
                    if isinstance(sub, dict) and isinstance(sub.get("config"), dict)]


def keras_name(name: str) -> str:
    """A layer name Keras 3 takes on every backend: word characters and dashes.

    Keras refuses ``/`` (keras/src/ops/operation.py); its torch backend keys parameters by
    variable path in a ``torch.nn.ParameterDict``, which refuses ``.``; control characters and
    lone surrogates cannot be stored in the weights file's attributes.
    """
    return re.sub(r"[^\w\-]", "_", str(name)) or "layer"


# -- masks ----------------------------------------------------------------------------------
def _value_key(value) -> float | str:
    """A mask value as a comparable key: NaN equals NaN here (``!=`` against it is true everywhere)."""
    x = float(value)
    return "nan" if math.isnan(x) else x


def _ir_mask_keys(model: Model) -> dict[str, tuple]:
    """IR mask tensor -> a comparable key: ("ne", tensor, value, reduce), or what it combines."""
    keys: dict[str, tuple] = {}
    for node in model.nodes:
        if node.op == "mask_not_equal":
            keys[node.outputs[0]] = ("ne", node.inputs[0], _value_key(node.options["value"]),
                                     bool(node.options.get("reduce")))
        elif node.op == "mask_and":
            parts = sorted({keys.get(m, ("?", m)) for m in node.inputs}, key=repr)
            keys[node.outputs[0]] = parts[0] if len(parts) == 1 else ("and", tuple(parts))
        elif node.op == "mask_or":  # as MaskTracker.layer_call chains a Keras 3 merge's logical_or
            keys[node.outputs[0]] = _or_key([keys.get(m, ("?", m)) for m in node.inputs])
        elif node.op == "mask_concat":  # as MaskTracker._concatenate keys a Concatenate over the time axis
            keys[node.outputs[0]] = ("concat_time", tuple(keys.get(m, ("?", m)) for m in node.inputs))
        elif node.op == "fold_time" and node.inputs[0] in keys:  # Keras 3 TimeDistributed slices the mask too
            keys[node.outputs[0]] = keys[node.inputs[0]]
    return keys


def _or_key(keys: list) -> tuple:
    """The key of Keras 3's logical_or of masks in order (a merge's or a last-axis Concatenate's compute_mask,
    keras/src/layers/merging/base_merge.py, concatenate.py): equal keys fold into one."""
    key, *rest = keys
    for other in rest:
        key = key if other == key else ("or", key, other)
    return key


def _mask_zero_ids(model: Model) -> set[str]:
    """Id tensors whose ``!= 0`` mask some node uses: their Embedding gets ``mask_zero=True``."""
    used = {n.mask for n in model.nodes if n.mask} | {
        t for n in model.nodes if n.op in ("mask_and", "mask_or", "mask_concat", "masking", "fold_time")
        for t in n.inputs[1 if n.op == "masking" else 0:]}
    return {n.inputs[0] for n in model.nodes if n.op == "mask_not_equal" and n.outputs[0] in used
            and not n.options.get("reduce") and float(n.options["value"]) == 0.0}


@dataclass
class _Op:
    """One operation of the graph Keras rebuilds (a layer, or an op computing a mask)."""

    name: str
    inputs: list[str]
    layer: KerasLayer | None = None


class _MaskTracker:
    """Keras 3's mask of every tensor, and the mask ops Keras records while rebuilding the model."""

    def __init__(self, model: Model):
        self.ir_keys = _ir_mask_keys(model)
        self.masks: dict[str, tuple[tuple, str]] = {}  # IR tensor -> (key, simulated mask tensor)
        self.ops: list[_Op] = []

    def op(self, kind: str, inputs: list[str]) -> str:
        out = f"<{kind}#{len(self.ops)}>"
        self.ops.append(_Op(out, inputs))
        return out

    def ir_key(self, mask: str | None):
        """The key of an IR mask; an empty name is no mask, as in :func:`converters.reference.run_node`."""
        return None if not mask else self.ir_keys.get(mask, ("?", mask))

    def layer_call(self, layer: KerasLayer) -> list[str]:
        """Record the layer's output masks; return the mask tensors its call takes as arguments."""
        cls, node = layer.class_name, layer.node
        if layer.module != "keras.layers":  # an operation node: takes no mask, its output has none
            return []
        ins = [self.masks.get(t) for t in layer.args]
        if cls in ATTENTION_CLASSES and node is not None and node.op in ATTENTION_LAYERS:
            extra, out_masks = mask_call(self, layer, ins)
            for t, m in zip(layer.outputs, out_masks):
                if m is not None:
                    self.masks[t] = m
            return extra
        first = ins[0] if ins else None
        extra = []
        if "mask" in layer.tensor_kwargs:  # a bool model input given as the mask: Keras takes it as it is
            first = (self.ir_key(layer.tensor_kwargs["mask"]), layer.tensor_kwargs["mask"])
        elif cls in _MASK_ARG and first is not None and not layer.initial_state:
            extra = [first[1]]
        if node is not None and node.is_recurrent:
            self._check_recurrent(layer, first)
        elif cls in MASK_ARG_LAYERS and self.ir_key(node.mask) != (None if first is None else first[0]):
            raise UnsupportedError("cannot keep this layer's mask in Keras 3: the mask Keras 3 derives for its "
                                   "input differs from the source's; ONNX and --to torch keep masks exactly",
                                   layer=node.label())
        out_masks: list = [None] * len(layer.outputs)
        if cls == "Masking":
            key = ("ne", layer.args[0], _value_key(layer.config["mask_value"]), True)
            given = node.inputs[1] if len(node.inputs) > 1 else node.mask or None
            if given is not None and self.ir_key(given) != key:
                raise UnsupportedError("cannot keep this layer's mask in Keras 3: Keras' Masking computes its mask "
                                       "from its own input and mask_value, the source gives it another (e.g. Keras 3's "
                                       "Multiply of a masked input); ONNX and --to torch keep masks exactly",
                                       layer=node.label())
            out_masks[0] = (key, self.op("any", [self.op("not_equal", [layer.args[0]])]))
        elif cls == "Embedding" and layer.config.get("mask_zero"):
            out_masks[0] = (("ne", layer.args[0], 0.0, False), self.op("not_equal", [layer.args[0]]))
        elif cls in _PASS_MASK or cls == "TimeDistributed":  # Keras 3 TimeDistributed: Layer.compute_mask
            out_masks[0] = first
        elif cls in RECURRENT_LAYERS:
            n_y = 2 if cls == "Bidirectional" and layer.config.get("merge_mode") is None else 1
            if node.options.get("return_sequences"):
                out_masks[:n_y] = [first] * n_y
        elif cls in _MERGES and all(m is not None for m in ins):
            tensor = ins[0][1]
            for m in ins[1:]:
                tensor = self.op("logical_or", [tensor, m[1]])
            out_masks[0] = (_or_key([m[0] for m in ins]), tensor)
        elif cls == "Concatenate" and any(m is not None for m in ins):
            out_masks[0] = self._concatenate(layer, ins)
        for t, m in zip(layer.outputs, out_masks):
            if m is not None:
                self.masks[t] = m
        return extra

    def _concatenate(self, layer: KerasLayer, ins: list) -> tuple:
        parts = []
        for t, m in zip(layer.args, ins):
            if m is None:
                parts.append(self.op("ones_like", [t]))
            else:
                parts.append(self.op("logical_or", [self.op("expand_dims", [m[1]]), self.op("zeros_like", [t])]))
        tensor = self.op("any", [self.op("concatenate", parts)])
        keys = [m[0] if m else None for m in ins]
        if layer.config.get("axis", -1) in (-1,) and None not in keys:  # every step's features: the masks' or
            return _or_key(keys), tensor
        if layer.config.get("axis") == 1 and None not in keys:  # sequences joined on time: the masks joined
            return ("concat_time", tuple(keys)), tensor
        return ("concat", tuple(sorted(map(repr, set(keys))))), tensor

    def _check_recurrent(self, layer: KerasLayer, first) -> None:
        node = layer.node
        want = self.ir_key(node.mask)
        have = None if first is None or (layer.initial_state and "mask" not in layer.tensor_kwargs) else first[0]
        if want != have:
            if node.mask and layer.initial_state:
                why = "Keras 3 does not pass an input's mask to an RNN called with initial_state"
            elif want is None:
                why = "Keras would pass it a mask its source does not use"
            elif want[0] == "ne" and want[1] in self.ir_keys:  # a mask reduced over a mask's last axis
                why = "its source's mask is tf-keras' TimeDistributed mask reduced over the inner steps; Keras 3 " \
                      "passes TimeDistributed's (batch, outer, steps) mask on unchanged"
            else:
                why = "the mask Keras 3 derives for its input differs from the source's " \
                      "(Keras 3 merges masks with OR, Keras 2 with AND; Flatten, Reshape, Conv1D and " \
                      "RepeatVector drop masks)"
            raise UnsupportedError(f"cannot keep this layer's mask in Keras 3: {why}; ONNX and --to torch "
                                   "keep masks exactly", layer=node.label())
        if (node.mask and node.options.get("bidirectional") and node.options.get("return_sequences")
                and not node.options.get("zero_output_for_mask")):
            raise UnsupportedError("Keras 3 Bidirectional forces zero_output_for_mask=True with "
                                   "return_sequences; the source repeats the previous output at masked steps; "
                                   "ONNX and --to torch keep it exactly", layer=node.label())


# -- the graph ------------------------------------------------------------------------------
def _fold_aliases(model: Model) -> tuple[dict[str, str], set[str]]:
    """TimeDistributed of a 1-D sequence layer: (tensor -> the tensor Keras holds for it: a fold_time's output
    is its input, an unfold_time's its folded input; the folded tensors, whose consumers Keras wraps)."""
    alias: dict[str, str] = {}
    folded: set[str] = set()
    for node in model.nodes:
        if node.op == "fold_time":
            alias[node.outputs[0]] = alias.get(node.inputs[0], node.inputs[0])
            folded.add(node.outputs[0])
        elif node.op == "unfold_time":
            alias[node.outputs[0]] = alias.get(node.inputs[0], node.inputs[0])
        elif node.op not in IMPLICIT and node.inputs and node.inputs[0] in folded:
            if len(node.inputs) != 1 or len(node.outputs) != 1:
                raise UnsupportedError("expected one input and one output for a layer inside TimeDistributed, "
                                       f"found {len(node.inputs)} and {len(node.outputs)}", layer=node.label())
            folded.update(node.outputs)
    return alias, folded


def _resolve(layer: KerasLayer, alias: dict[str, str]) -> None:
    """The layer's tensor arguments as the tensors Keras holds (:func:`_fold_aliases`)."""
    layer.args = [alias.get(t, t) for t in layer.args]
    layer.initial_state = [alias.get(t, t) for t in layer.initial_state]
    layer.tensor_kwargs = {k: alias.get(t, t) for k, t in layer.tensor_kwargs.items()}


#: IR merges whose Keras 3 layer computes another value where an input is masked (written as operations there)
_MASK_FILLING = ("multiply", "maximum", "minimum")


def _explicit_masks(model: Model, layers: list[KerasLayer], refs: dict[str, tuple[str, int]],
                    taken: set[str]) -> list[KerasLayer]:
    """``layers``, where a mask is not the one Keras 3 derives from the layer's input, with the mask written out as
    the source's call gave it: a recurrent layer's ``mask`` (a mask computed by ops, ``LSTM(x,
    mask=ops.any(ops.not_equal(x, 0), -1))``; a bool model input; a mask given to an RNN called with
    ``initial_state``), Attention's ``mask=[query_mask, value_mask]``, Softmax's ``mask`` (Luong attention written by
    hand, attention pooling under a padding-mask input). A bool model input is passed as it is; a
    mask_not_equal is computed by NotEqual (and Any over the last axis) operation nodes put before the layer, as
    Keras 3 records ``keras.ops`` calls (keras/src/ops/numpy.py). Other masks are left to the checks of
    :class:`_MaskTracker`, which refuse them."""
    makers = {n.outputs[0]: n for n in model.nodes if n.op == "mask_not_equal"}
    names = {t for n in model.nodes for t in [*n.inputs, *n.outputs]} | set(refs)
    tracker = _MaskTracker(model)
    out: list[KerasLayer] = []

    def writable(mask: str | None) -> bool:
        return mask is None or mask in refs or (mask in makers and makers[mask].inputs[0] in refs)

    def write(mask: str | None) -> None:
        if mask is not None and mask not in refs:
            out.extend(_not_equal_ops(makers[mask], refs, taken, names))

    for k, layer in enumerate(layers):
        node = layer.node
        have = [tracker.masks.get(t) for t in layer.args]
        derived = [None if h is None else h[0] for h in have]
        if (node is not None and node.op in _MASK_FILLING and layer.module == "keras.layers"
                and any(h is not None for h in have)):
            if len(layer.args) != 2:
                raise UnsupportedError(f"cannot write this {layer.class_name} of masked inputs to Keras 3: its "
                                       f"layer fills masked steps, and the plain operation takes 2 inputs, found "
                                       f"{len(layer.args)}", layer=node.label())
            layer = unmasked_merge(node, layer.name, list(layer.args))
        if node is not None and node.is_recurrent and node.mask and layer.class_name in RECURRENT_LAYERS:
            keras_mask = None if not derived or layer.initial_state else derived[0]
            if keras_mask != tracker.ir_key(node.mask) and writable(node.mask):
                write(node.mask)
                layer.tensor_kwargs["mask"] = node.mask
        elif node is not None and node.op == "attention" and layer.class_name in ("Attention", "AdditiveAttention"):
            roles = dict(zip(node.options["roles"], node.inputs))
            want = [roles.get("query_mask"), roles.get("value_mask")]
            if [tracker.ir_key(m) for m in want] != derived[:2] and all(map(writable, want)):
                for m in want:
                    write(m)
                layer.mask_list = want
        elif node is not None and node.op == "masked_softmax" and layer.class_name == "Softmax":
            want_mask = node.inputs[1] if len(node.inputs) > 1 else None
            if (want_mask is not None and tracker.ir_key(want_mask) != (derived[0] if derived else None)
                    and writable(want_mask)):
                write(want_mask)  # Softmax()(scores, mask=m): keras/src/layers/activations/softmax.py call
                layer.tensor_kwargs["mask"] = want_mask
        try:
            tracker.layer_call(layer)
        except UnsupportedError:  # refused where the model's layer order is replayed (keras_layer_order)
            return out + layers[k:]
        out.append(layer)
    return out


def _not_equal_ops(maker, refs: dict[str, tuple[str, int]], taken: set[str], names: set[str]) -> list[KerasLayer]:
    """A mask_not_equal node as Keras 3 operation nodes: NotEqual(x, value), then Any(axis=-1) where it reduces."""
    mask, x, value = maker.outputs[0], maker.inputs[0], maker.options["value"]
    reduce = bool(maker.options["reduce"])
    ne_out = unique_name(f"{mask}/not_equal", names) if reduce else mask
    name = unique_name(keras_name(f"{maker.name}_not_equal"), taken)
    ops = [operation_layer(maker, name, "NotEqual", {}, [x], {1: value}, outputs=[ne_out])]
    refs[ne_out] = (name, 0)
    if reduce:
        name = unique_name(keras_name(f"{maker.name}_any"), taken)
        ops.append(operation_layer(maker, name, "Any", {"axis": -1, "keepdims": False}, [ne_out], outputs=[mask]))
        refs[mask] = (name, 0)
    return ops


def build(model: Model) -> KerasLayerGraph:
    """The Keras layers of ``model``, named, with their masks checked against the IR."""
    taken: set[str] = set()
    refs: dict[str, tuple[str, int]] = {}
    inputs = []
    for spec in model.inputs:
        name = unique_name(keras_name(spec.name), taken)
        inputs.append((name, spec.name))
        refs[spec.name] = (name, 0)
    mask_zero = _mask_zero_ids(model)
    layers = []
    alias, folded = _fold_aliases(model)
    for node in model.nodes:
        if node.op in IMPLICIT:
            continue
        convert = LAYERS.get(node.op) or ATTENTION_LAYERS.get(node.op) or OPERATIONS.get(node.op)
        if convert is None:
            known = ", ".join([*LAYERS, *ATTENTION_LAYERS, *OPERATIONS])
            raise UnsupportedError(f"expected an op Keras 3 has a layer for ({known}), "
                                   f"found {quote(node.op)}", layer=node.label())
        name = unique_name(keras_name(node.name), taken)
        if node.op == "embedding":
            layer = embedding_layer(node, name, mask_zero=node.inputs[0] in mask_zero)
        else:
            layer = convert(node, f"{name}_step" if node.inputs[0] in folded else name)
        if node.inputs[0] in folded:
            layer = time_distributed(layer, name)
        _resolve(layer, alias)
        _keep_policy(layer, keras_policy(node))
        for k, t in enumerate(layer.outputs):
            refs[t] = (name, k)
        layers.append(layer)
    layers = _explicit_masks(model, layers, refs, taken)
    check_mask_stripping(layers)
    missing = [t for layer in layers for t in layer.args + layer.initial_state + list(layer.tensor_kwargs.values())
               + [m for m in layer.mask_list or [] if m is not None] if t not in refs]
    outputs = [alias.get(t, t) for t in model.outputs]
    missing += [t for t in outputs if t not in refs]
    if missing:
        raise UnsupportedError(f"expected every tensor to come from an input or a layer, found "
                               f"{quote(missing[0])} made by a mask op")
    bad = [s for s in model.inputs if s.dtype not in INPUT_DTYPES]
    if bad:
        raise UnsupportedError(f"expected input dtype {', '.join(INPUT_DTYPES)}, found {quote(bad[0].dtype)}",
                               layer=bad[0].name)
    specs = {s.name: (tuple(s.shape), s.dtype) for s in model.inputs}
    return KerasLayerGraph(keras_name(model.name) or "model", inputs, layers, refs, outputs, specs)


def keras_layer_order(graph: KerasLayerGraph, model: Model) -> list[KerasLayer | str]:
    """``model.layers`` of the model Keras rebuilds: input layer names and layers, in Keras' order.

    Replays keras/src/ops/function.py ``map_graph`` / ``_build_map`` on the graph Keras records,
    the mask operations it adds included (:class:`_MaskTracker`).
    """
    tracker = _MaskTracker(model)
    ops: dict[str, _Op] = {}
    producer: dict[str, _Op] = {}
    for name, tensor in graph.inputs:
        op = _Op(name, [])
        ops[name] = op
        producer[tensor] = op
    for layer in graph.layers:
        extra = tracker.layer_call(layer)
        explicit = [t for t in layer.mask_list or [] if t is not None]
        kwargs = sorted([("initial_state", layer.initial_state), ("mask", extra + explicit),
                         *((k, [t]) for k, t in layer.tensor_kwargs.items())])
        op = _Op(layer.name, list(layer.args) + [t for _, ts in kwargs for t in ts], layer)
        ops[layer.name] = op
        for t in layer.outputs:
            producer[t] = op
    for mask_op in tracker.ops:
        producer[mask_op.name] = mask_op

    # _build_map: depth-first from the outputs, operations indexed on first visit
    index: dict[int, int] = {}
    finished: set[int] = set()
    order: list[_Op] = []

    def visit(tensor: str) -> None:
        """Keras' recursive walk, with a stack of (operation, next input) instead of Python's (a chain of
        10**4 calls is no deeper than one)."""
        stack: list[tuple[_Op, int]] = []
        active: set[int] = set()
        op = producer[tensor]
        while True:
            if id(op) in active:  # the IR's graph is checked acyclic when read: never reached
                raise UnsupportedError(f"operation {quote(op.name)} feeds itself: a cycle Keras cannot write")
            if id(op) not in finished:
                index.setdefault(id(op), len(index))
                stack.append((op, 0))
                active.add(id(op))
            while stack:
                top, k = stack[-1]
                if k < len(top.inputs):
                    stack[-1] = (top, k + 1)
                    op = producer[top.inputs[k]]
                    break
                stack.pop()
                active.discard(id(top))
                finished.add(id(top))
                order.append(top)
            else:
                return

    for t in graph.outputs:
        visit(t)
    # depths: from the outputs back
    depth: dict[int, int] = {}
    for op in reversed(order):
        d = depth.setdefault(id(op), 0)
        for t in op.inputs:
            parent = producer[t]
            depth[id(parent)] = max(depth.get(id(parent), 0), d + 1)
    for name, _ in graph.inputs:  # inputs not connected to an output
        if id(ops[name]) not in depth:
            depth[id(ops[name])], index[id(ops[name])] = 0, -1
            order.append(ops[name])
    ranked = sorted({id(op): op for op in order}.values(), key=lambda op: (-depth[id(op)], index[id(op)]))
    return [op.layer if op.layer is not None else op.name for op in ranked
            if op.layer is not None or op.name in ops]


def weight_paths(graph: KerasLayerGraph, model: Model) -> list[tuple[str, KerasLayer | str]]:
    """``("layers/<snake_case>[_k]", layer or input name)`` in Keras' order."""
    used: dict[str, int] = {}
    out = []
    for item in keras_layer_order(graph, model):
        if not isinstance(item, str) and item.module != "keras.layers":
            continue  # an operation node: not in model.layers
        cls = "InputLayer" if isinstance(item, str) else item.class_name
        base = to_snake_case(cls)
        if base in used:
            used[base] += 1
            base = f"{base}_{used[base]}"
        else:
            used[base] = 0
        out.append((f"layers/{base}", item))
    return out
