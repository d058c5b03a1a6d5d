"""Walk a :class:`KerasGraph` in topological order and build the IR with a weight source.

The weight source is what differs between formats (legacy HDF5 groups, .keras archives,
weights-only files): anything with ``layer_weights(spec) -> list[Weight]``. Masks are made
explicit here: mask nodes are shared (one per distinct ``x != value``) and unused nodes are
pruned at the end.
"""
from __future__ import annotations

import math
from typing import Protocol

from ..activations import keras_major
from ..budget import Budget
from ..errors import FormatError, GraphError, UnsupportedError
from ..keras_classes import WEIGHTED
from ..sanitize import quote
from ..ir import Model, Node, TensorSpec, made_twice
from ..ops import OPS
from .hdf5 import Weight
from .malformed import malformed
from .keras_config import OP_CLASSES, KerasGraph, LayerSpec, Ref, batch_input_shape
from .keras_context import LayerCall, Tensor, declared_dims, flag, layer_label
from .keras_attention import HANDLERS as ATTENTION_HANDLERS
from .keras_layers import HANDLERS as LAYER_HANDLERS, REFUSED
from .keras_recurrent import HANDLERS as RECURRENT_HANDLERS, rnn_refusal, stores_keras1_layout
from .keras_tf_ops import TF_OP_CLASSES, computes_mask as tf_computes_mask, keras3_data_op, read_keras3_op, read_tf_op, refusal as tf_op_refusal

HANDLERS = {**LAYER_HANDLERS, **ATTENTION_HANDLERS, **RECURRENT_HANDLERS, **dict.fromkeys(TF_OP_CLASSES, read_tf_op)}
#: Keras 3 operation nodes accepted in configs: the mask computations Keras 3 serializes
#: (Masking's ``any(not_equal(x, v), -1)``, Concatenate's compute_mask ...). They only feed the
#: ``mask`` argument of layers; ``not_equal``/``any`` become mask nodes, the rest stand for the
#: mask gateport propagates itself.
OP_NODES = OP_CLASSES
#: Layer classes that always have weights (Keras gives them variables whatever their config).
WEIGHTED_CLASSES = WEIGHTED  # converters/keras_classes.py
_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


class WeightSource(Protocol):
    def layer_weights(self, spec: LayerSpec) -> list[Weight]: ...


def holds_weights(spec: LayerSpec, graph: KerasGraph) -> bool | None:
    """Whether Keras gives this top-level layer weights (``_legacy_weights(layer)`` non-empty),
    None for a class gateport does not know. A nested model holds the weights of its layers."""
    if spec.is_input or spec.is_op:
        return False
    if spec.is_container:
        inner = [holds_weights(s, graph) for s in graph.layers
                 if s.scope[:1] == (spec.name,) and not s.is_copy and not s.is_container]
        return True if any(inner) else None if None in inner else False
    cls, cfg = spec.class_name, spec.config
    if cls == "TimeDistributed":  # the wrapped layer's class and config
        inner = spec.config.get("layer")
        cls = inner.get("class_name") if isinstance(inner, dict) else None
        cfg = inner.get("config") if isinstance(inner, dict) and isinstance(inner.get("config"), dict) else {}
    if not isinstance(cls, str):  # a wrapped layer's class as the config has it
        return None
    if cls in WEIGHTED_CLASSES:
        return True
    label = layer_label(spec)
    if cls in ("Attention", "AdditiveAttention"):  # scale, concat_score_weight
        return flag(cfg, "use_scale", cls == "AdditiveAttention", file=None, layer=label) \
            or cfg.get("score_mode") == "concat"
    if cls in ("LayerNormalization", "GroupNormalization"):  # gamma and beta only where scale / center (rms_scaling)
        return any(flag(cfg, key, default, file=None, layer=label)
                   for key, default in (("scale", True), ("center", True), ("rms_scaling", False)))
    if cls == "Normalization":  # adapted mean, variance, count unless the config gives mean and variance
        return spec.config.get("mean") is None
    return False if cls in HANDLERS else None


def supported_classes() -> list[str]:
    return sorted(HANDLERS)


#: At most this many unsupported layers are named in one message.
MAX_REFUSALS_SHOWN = 20


def check_supported(graph: KerasGraph, file: str | None) -> None:
    """Name every layer gateport cannot build, in one error (``; `` between them), before any weight
    is read; the supported classes are listed once at the end."""
    refusals: list[tuple[LayerSpec, str]] = []  # (layer, why)
    lists: dict[str, str] = {}
    for spec in graph.layers:
        if spec.is_input or spec.is_container:
            continue
        if spec.is_op:
            if spec.class_name not in OP_NODES and tf_op_refusal(spec):
                refusals.append((spec, tf_op_refusal(spec)))
        elif spec.class_name in TF_OP_CLASSES and tf_op_refusal(spec):
            refusals.append((spec, tf_op_refusal(spec)))
        elif spec.class_name == "RNN" and rnn_refusal(spec.config):
            refusals.append((spec, rnn_refusal(spec.config)))
        elif spec.class_name not in HANDLERS:
            why = REFUSED.get(spec.class_name)
            refusals.append((spec, why or f"layer class {quote(spec.class_name)} is not supported"))
            if not why:
                lists["layers"] = ", ".join(supported_classes())
    if not refusals:
        return
    supported = "; ".join(f"supported {what}: {names}" for what, names in lists.items())
    supported = f" ({supported})" if supported else ""
    if len(refusals) == 1:  # one layer: named as every other error names it
        spec, why = refusals[0]
        raise UnsupportedError(why + supported, file=file, layer=f"{spec.name} ({spec.class_name})")
    shown = "; ".join(f"{quote(spec.name)} ({quote(spec.class_name)}): {why}"
                      for spec, why in refusals[:MAX_REFUSALS_SHOWN])
    if len(refusals) > MAX_REFUSALS_SHOWN:
        shown += f"; and {len(refusals) - MAX_REFUSALS_SHOWN} more"
    raise UnsupportedError(f"{len(refusals)} layers cannot be converted: {shown}{supported}", file=file)


class KerasIRBuilder:
    """The graph walk: tensors, IR nodes, shared masks and weights of one Keras graph (a LayerCall's Builder)."""

    def __init__(self, graph: KerasGraph, weights: WeightSource, file: str | None):
        self.graph = graph
        self.weight_source = weights
        self.file = file
        #: what the config's declared (not stored) sizes may make one sample allocate
        self.budget = Budget(file)
        self._semantics(graph.semantics_version or graph.keras_version)
        self.nodes: list[Node] = []
        self._node_names: set[str] = set()
        self.tensors: dict[Ref, Tensor] = {}
        self._masks: dict[tuple, str] = {}
        self._weights: dict[tuple, list[Weight]] = {}

    def _semantics(self, version: str | None) -> None:
        self.keras_version = version
        #: Keras 3 merges masks with a logical or (tf-keras with an and)
        self.keras3_masks = keras_major(version) >= 3

    def layout_semantics(self) -> None:
        """Keras 1 per-gate arrays (``W_i, U_i, b_i ...``) mean Keras 1 semantics (hard_sigmoid
        ``0.2x + 0.5``, and-merged masks) whatever version the file records: only Keras 1 wrote
        them, and no later Keras loads them as they are (tf_keras converts them only for files
        without a version, ``preprocess_weights_for_loading``; Keras 3 never)."""
        if keras_major(self.keras_version) == 1:
            return
        found = next((s for s in self.graph.layers if s.class_name in RECURRENT_HANDLERS and not s.is_copy
                      and stores_keras1_layout(s, self.layer_weights(s))), None)
        if found is None:
            return
        self.graph.semantics_note = (f"layer {quote(found.name)} stores Keras 1 per-gate arrays, so Keras 1 "
                                     f"semantics apply although the file records Keras "
                                     f"{quote(self.keras_version)}")
        self.graph.semantics_version = "1"
        self._semantics("1")

    # -- services for LayerCall --------------------------------------------------------------
    def layer_weights(self, spec: LayerSpec) -> list[Weight]:
        key = spec.weight_key  # the calls of a nested model share its layers' weights
        if key not in self._weights:
            self._weights[key] = self.weight_source.layer_weights(spec)
        return self._weights[key]

    def add_node(self, node: Node) -> None:
        if node.name in self._node_names:  # rare: the set may also hold a node since removed from the list
            self._node_names = {n.name for n in self.nodes}
        while node.name in self._node_names:  # only mask helpers can collide (e.g. two masks of one layer)
            node.name += "'"
            node.outputs = [node.name] if node.op.startswith("mask_") else node.outputs
        self.nodes.append(node)
        self._node_names.add(node.name)  # a set beside the list: n layers cost n steps, not n**2

    def mask_not_equal(self, x: str, value, reduce: bool, owner: str) -> str:
        key = ("not_equal", x, float(value), bool(reduce))
        if key not in self._masks:
            node = Node(name=f"{owner}/mask", op="mask_not_equal", inputs=[x], outputs=[],
                        options={"value": value, "reduce": bool(reduce)},
                        source={"class_name": "mask", "mask_of": owner})
            node.outputs = [node.name]
            self.add_node(node)
            self._masks[key] = node.outputs[0]
        return self._masks[key]

    def mask_and(self, masks: list[str | None], owner: str, op: str = "mask_and") -> str | None:
        """The and (``op`` mask_or: the or) of the masks present, one node per distinct combination."""
        present = list(dict.fromkeys(m for m in masks if m))
        if len(present) <= 1:
            return present[0] if present else None
        key = (op, *present)
        if key not in self._masks:
            node = Node(name=f"{owner}/mask", op=op, inputs=present, outputs=[],
                        source={"class_name": "mask", "mask_of": owner})
            node.outputs = [node.name]
            self.add_node(node)
            self._masks[key] = node.outputs[0]
        return self._masks[key]

    # -- the walk -----------------------------------------------------------------------------
    def build(self) -> tuple[list[TensorSpec], list[str], list[Node]]:
        check_supported(self.graph, self.file)
        self.layout_semantics()
        for spec in self.graph.layers:
            if spec.is_input:
                with malformed("input layer config", file=self.file, layer=spec.name):
                    self._input(spec)
        for spec, index in self._ordered_calls():
            self._build_call(spec, index)
        outputs = [self._resolve(ref, "model output") for ref in self.graph.outputs]
        for t in outputs:
            if t.pending:
                raise UnsupportedError(f"model output {t.name} is a mask operation", file=self.file)
        model_inputs = [self._resolve(ref, "model input") for ref in self.graph.inputs]
        specs = []
        for t in model_inputs:
            if t.shape is None:
                raise FormatError(f"cannot tell the shape of input {t.name!r}: the config declares "
                                  "none and no layer fixes it", file=self.file)
            dtype = "int64" if t.dtype in _INT_DTYPES else "float64" if t.dtype == "float64" else \
                "bool" if t.dtype == "bool" else "float32"
            specs.append(TensorSpec(t.name, tuple(t.shape), dtype))
        _check_one_maker(specs, self.nodes, self.file)
        _check_ends(specs, [t.name for t in outputs], self.file)
        live = self._live_nodes([t.name for t in outputs])
        _check_bool_inputs(specs, live, self.file)
        return specs, [t.name for t in outputs], live

    def _input(self, spec: LayerSpec) -> None:
        shape = batch_input_shape(spec.config, "InputLayer")
        if shape is not None:
            shape = declared_dims(shape, "input shape in the config", file=self.file, layer=spec.name)
            self.budget.take(8 * math.prod(d or 1 for d in shape[1:]), "one sample of the declared input",
                             layer=spec.name)
        dtype = spec.config.get("dtype") or spec.config.get("input_dtype") or "float32"
        if isinstance(dtype, dict):
            dtype = (dtype.get("config") or {}).get("name", "float32")
        t = Tensor(spec.name, tuple(shape[1:]) if shape is not None else None, dtype=str(dtype),
                   is_model_input=True)
        self.tensors[Ref(spec.name, 0, 0)] = t

    def _call_deps(self, spec: LayerSpec, index: int) -> list[Ref]:
        call = spec.calls[index]
        refs = [*call.inputs, *call.initial_state, *(v for v in call.kwargs.values() if isinstance(v, Ref))]
        if isinstance(call.mask, Ref):
            refs.append(call.mask)
        elif isinstance(call.mask, list):
            refs.extend(m for m in call.mask if isinstance(m, Ref))
        return refs

    def _ordered_calls(self) -> list[tuple[LayerSpec, int]]:
        """Every call, each after the calls producing its inputs (stable Kahn's algorithm)."""
        inputs = {s.name for s in self.graph.layers if s.is_input}
        pending = [(s, k) for s in self.graph.layers if not s.is_input for k in range(len(s.calls))]
        known = {s.name: s for s in self.graph.layers}
        done: set[tuple[str, int]] = set()
        order = []
        while pending:
            for i, (spec, k) in enumerate(pending):
                deps = self._call_deps(spec, k)
                for ref in deps:
                    if ref.layer not in known:
                        raise GraphError(f"input tensor {ref.layer!r} (call {ref.call}) is not in the "
                                          "model", file=self.file, layer=f"{spec.name} ({spec.class_name})")
                if all(ref.layer in inputs or (ref.layer, ref.call) in done for ref in deps):
                    order.append((spec, k))
                    done.add((spec.name, k))
                    del pending[i]
                    break
            else:
                names = ", ".join(s.name for s, _ in pending[:5])
                raise GraphError(f"the model graph has a cycle or a missing call among: {names}",
                                  file=self.file)
        return order

    def _resolve(self, ref: Ref, what: str) -> Tensor:
        try:
            return self.tensors[ref]
        except KeyError:
            raise GraphError(f"{what} refers to tensor {ref.tensor} of call {ref.call} of layer "
                              f"{ref.layer!r}, which does not exist", file=self.file) from None

    def _build_call(self, spec: LayerSpec, index: int) -> None:
        call = spec.calls[index]
        label = f"{spec.name} ({spec.class_name})"
        ins = [self._resolve(r, f"{label} input") for r in call.inputs]
        if spec.is_op and keras3_data_op(spec, ins):  # keras.ops on data tensors (keras_tf_ops.py)
            ctx = LayerCall(self, spec, index, ins)
            ctx.kwargs = {k: v for k, v in call.kwargs.items() if not isinstance(v, Ref)}
            outs = read_keras3_op(ctx, call.args)
        elif spec.is_op:
            outs = [self._op_node(spec, ins, call.constants)]
        else:
            for t in ins:
                if t.pending and not tf_computes_mask(spec):
                    raise UnsupportedError(f"input {t.name} is a mask operation", file=self.file, layer=label)
            states = [self._resolve(r, f"{label} initial state") for r in call.initial_state]
            if spec.class_name in RECURRENT_HANDLERS:  # tf-keras passes states as [x, *states]
                ins, states = ins[:1], ins[1:] + states
            ctx = LayerCall(self, spec, index, ins, states)
            ctx.kwargs = {k: self._resolve(v, f"{label} {k}") if isinstance(v, Ref) else v
                          for k, v in call.kwargs.items()}
            auto = ins[0].mask if ins else None
            if self.keras3_masks and states:
                # Keras 3 fills in `mask` only for a call with one tensor argument (layer.py
                # __call__, step 6): an RNN given initial_state runs unmasked; tf-keras masks it.
                auto = None
            if isinstance(call.mask, list):
                ctx.input_mask, ctx.input_masks = auto, self._explicit_masks(call.mask, ins, label)
                if ctx.input_masks is not None and spec.class_name not in ("Attention", "AdditiveAttention"):
                    raise UnsupportedError("mask: expected the inputs' own masks (a list of masks is read for "
                                           "Attention and AdditiveAttention)", file=self.file, layer=label)
            elif call.mask is not None:
                ctx.input_mask = self._explicit_mask(call.mask, label, auto, ins[0] if ins else None)
            else:  # mask=None written out: tf-keras runs the layer unmasked (base_layer.py __call__ fills the
                # mask in only when the call does not pass one); Keras 3 fills it in (layer.py __call__, step 6)
                ctx.input_mask = None if call.mask_given and not self.keras3_masks else auto
            outs = HANDLERS[spec.class_name](ctx)
        for t, out in enumerate(outs):
            self.tensors[Ref(spec.name, index, t)] = out

    def _explicit_masks(self, masks: list, ins: list[Tensor], label: str) -> list[str | None] | None:
        """``mask=[m0, m1 ...]``, one per input (Attention's ``[query_mask, value_mask]``, a merge's): the IR
        mask of each; None when they are the inputs' own masks (what Keras fills in by itself)."""
        if len(masks) > len(ins) or any(m is not None and not isinstance(m, Ref) for m in masks):
            raise UnsupportedError(f"mask: expected one mask tensor or None per input ({len(ins)}), found "
                                   f"{quote(masks, 80)}", file=self.file, layer=label)
        own = [t.mask for t in ins]
        given = [None if m is None else self._explicit_mask(m, label, own[k], ins[k])
                 for k, m in enumerate(masks)]
        given += [None] * (len(ins) - len(given))
        return None if given == own else given

    def _explicit_mask(self, mask, label: str, propagated: str | None, x: Tensor | None = None) -> str | None:
        """The mask a call passes explicitly (Keras 3 configs record the automatic one too) to a layer whose
        (first) input is ``x``: a mask operation's, a mask layer's, or a model input's (a bool input is the
        mask itself; another dtype is cast to bool as Keras casts it, ``m != 0``)."""
        if not isinstance(mask, Ref):
            raise UnsupportedError(f"mask: expected a tensor or None, found {quote(mask, 80)}", file=self.file,
                                   layer=label)
        t = self._resolve(mask, f"{label} mask")
        if t.pending and t.pending[0] == "derived":
            self._check_derived(t, label)
            return propagated
        if t.pending:
            _, source, value, reduce = t.pending
            return self.mask_not_equal(source, value, reduce, owner=mask.layer)
        if t.name in self._masks.values():
            return t.name
        if t.is_model_input:
            return self._input_mask(t, label, x)
        raise UnsupportedError(f"mask tensor {quote(t.name)} is not made by Masking, Embedding(mask_zero), a "
                               "not_equal operation or a model input: expected one of those", file=self.file,
                               layer=label)

    def _input_mask(self, t: Tensor, label: str, x: Tensor | None) -> str:
        """A model input given as a layer's mask: a (batch, time) tensor whose time is the layer input's."""
        steps = x.shape[0] if x is not None and x.shape else None
        if t.shape is None or len(t.shape) != 1 or None not in (steps, t.shape[0]) and steps != t.shape[0]:
            shape = "unknown" if t.shape is None else f"(batch, {', '.join(str(d) for d in t.shape)})"  # ints, None
            raise UnsupportedError(f"mask input {quote(t.name)} has shape {shape}: expected (batch, time) with "
                                   f"the time of the layer's input ({'unknown' if steps is None else steps})",
                                   file=self.file, layer=label)
        if t.dtype == "bool":
            return t.name
        return self.mask_not_equal(t.name, 0, False, owner=t.name)

    def _op_node(self, spec: LayerSpec, ins: list[Tensor], constants: list) -> Tensor:
        """Keras 3 op nodes that only build masks: kept symbolic until a layer uses them."""
        cls, cfg = spec.class_name, spec.config
        if cls == "NotEqual" and len(ins) == 1 and len(constants) == 1 \
                and isinstance(constants[0], (int, float)) and not ins[0].pending:
            x = ins[0]
            return Tensor(spec.name, x.shape, pending=("not_equal", x.name, constants[0], False))
        src = ins[0] if len(ins) == 1 else None
        if cls == "Cast" and src is not None and not src.pending and _exact_cast(src.dtype, cfg.get("dtype")):
            return src  # a float64 Masking casts its float32 input first: the same values, the same mask
        if cls == "Any" and src is not None and src.pending and src.pending[0] == "not_equal" \
                and not src.pending[3] and cfg.get("axis") in (-1, [-1]) \
                and not flag(cfg, "keepdims", False, file=self.file, layer=layer_label(spec)):
            _, x, value, _ = src.pending  # Masking's mask: any(x != value, axis=-1)
            return Tensor(spec.name, src.shape[:-1] if src.shape else None,
                          pending=("not_equal", x, value, True))
        compared = frozenset().union(*(t.pending[1] if t.pending[0] == "derived" else {_compared(t.pending)}
                                       for t in ins if t.pending))
        return Tensor(spec.name, None, pending=("derived", compared))

    def _check_derived(self, t: Tensor, label: str) -> None:
        """A mask the config computes with operations that stand for the mask gateport propagates (Concatenate's
        or of its inputs' masks ...): each comparison in them must be one a mask layer made (Masking's
        ``any(x != mask_value, -1)``, Embedding's ``ids != 0``). Keras runs the operations, not the layers'
        configs: a NotEqual of another value than the Masking's ``mask_value`` was read as the Masking's mask,
        and every target computed other numbers than Keras."""
        for source, value, reduce in sorted(t.pending[1], key=repr):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or ("not_equal", source, float(value), bool(reduce)) not in self._masks:
                raise UnsupportedError(f"mask: its operations compare {quote(source)} with {quote(value)}"
                                       f"{' over the last axis' if reduce else ''}, which no Masking or "
                                       "Embedding(mask_zero) of the model does: expected the mask its layers "
                                       "make", file=self.file, layer=label)

    def _live_nodes(self, outputs: list[str]) -> list[Node]:
        needed = set(outputs)
        live = []
        for node in reversed(self.nodes):
            if needed.intersection(node.outputs):
                live.append(node)
                needed.update(node.inputs)
                if node.mask:
                    needed.add(node.mask)
        return live[::-1]


def _compared(pending: tuple) -> tuple:
    """A pending ``not_equal`` mask as the (tensor, value, over the last axis) it compares, hashable whatever the
    config gave as the value."""
    _, source, value, reduce = pending
    return source, value if isinstance(value, (int, float)) else repr(value), bool(reduce)


def _check_one_maker(inputs: list[TensorSpec], nodes: list[Node], file: str | None) -> None:
    """Each tensor made once: a layer named like another layer's extra output (``lstm:1``) would make a
    second tensor of that name, which every target would wire to the wrong producer."""
    twice = made_twice((spec.name for spec in inputs), ((node, node.outputs) for node in nodes))
    if twice is not None:
        t, first, node = twice
        earlier = f"model input {quote(t)}" if first is None else f"layer {quote(first.name)}"
        raise FormatError(f"its output {quote(t)} is also an output of {earlier}: a layer name must not be "
                          "another layer's name followed by ':<output index>'", file=file, layer=node.name)


def _check_ends(inputs: list[TensorSpec], outputs: list[str], file: str | None) -> None:
    """The model's ``input_layers`` / ``output_layers`` as Keras' Functional needs them: at least one of
    each, each input once, no output that is an input itself. An empty ``output_layers`` was written as an
    ONNX graph of no nodes and no outputs with exit 0; no inputs, an input listed twice or an input passed
    straight out failed inside the ONNX checker ('a gateport bug')."""
    names = [spec.name for spec in inputs]
    if not names or not outputs:
        which = "input (input_layers)" if not names else "output (output_layers)"
        raise FormatError(f"expected at least one model {which}, found none", file=file)
    twice = next((n for k, n in enumerate(names) if n in names[:k]), None)
    if twice is not None:
        raise FormatError(f"expected each model input once in input_layers, found {quote(twice)} twice", file=file)
    straight = next((n for n in outputs if n in names), None)
    if straight is not None:
        raise UnsupportedError(f"model output {quote(straight)} is the model input itself (no layer between): "
                               "expected every output computed by a layer", file=file)


def _check_bool_inputs(inputs: list[TensorSpec], nodes: list[Node], file: str | None) -> None:
    """A bool model input is a mask (``layer(x, mask=m)``): every node reads it as a mask (a recurrent
    node's ``mask``, a mask input of the op table's rule) or as data the op table's ``bool_data`` rule lets
    be bool (MultiHeadAttention's ``attention_mask``, nonzero = attend); one that reads it as other data is
    refused."""
    bools = {spec.name for spec in inputs if spec.dtype == "bool"}
    for node in nodes:
        row = OPS[node.op]
        for k, t in enumerate(node.inputs):
            if t in bools and not (row.mask_input(node.options, k) or row.bool_data(node.options, k)):
                raise UnsupportedError(f"model input {quote(t)} is bool: expected it only as a layer's mask "
                                       "(layer(x, mask=...)) or a MultiHeadAttention's attention_mask, found it "
                                       "as data", file=file, layer=node.label())


def _exact_cast(source: str, target: object) -> bool:
    """Whether a Keras 3 ``Cast`` op changes no value: float32 or float64 to float64, or to the same dtype."""
    return source in ("float32", "float64") and target in (source, "float64")


def object_path_semantics(graph: KerasGraph) -> None:
    """Weights stored by object path (``layers/<class>/vars``) were written by Keras 3 or by
    tf-keras >= 2.13 (keras_v3.py): a version older than that, or none, cannot have written
    them, and Keras 3 semantics apply (hard_sigmoid ``x/6 + 0.5``, or-merged masks)."""
    version = graph.semantics_version
    major = keras_major(version)
    try:
        minor = int(str(version).split(".")[1]) if major == 2 else 0
    except (IndexError, ValueError):
        minor = 0
    if major >= 3 or (major == 2 and minor >= 13):
        return
    recorded = f"records Keras {quote(version)}" if version else "records no version"
    graph.semantics_note = ("the weights use the Keras 3 object-path layout (layers/.../vars), so Keras 3 "
                            f"semantics apply although the file {recorded}")
    graph.semantics_version = "3"


def with_semantics(source: dict, graph: KerasGraph) -> dict:
    """``source`` saying whose semantics apply when the storage layout overrode the version."""
    if not graph.semantics_note:
        return source
    return {**source, "assumed_keras_version": graph.semantics_version,
            "semantics_note": graph.semantics_note}


def build_model(graph: KerasGraph, weights: WeightSource, file: str | None, source: dict) -> Model:
    inputs, outputs, nodes = KerasIRBuilder(graph, weights, file).build()
    return Model(name=graph.name, inputs=inputs, outputs=outputs, nodes=nodes,
                 source=with_semantics(source, graph))


def check_other_weights(graph: KerasGraph, weights: WeightSource, file: str | None) -> None:
    """Check the stored arrays of the non-recurrent layers gateport knows against their configs
    (the checks of their builders, on an input of unknown shape, in a scratch graph): a file
    whose Embedding or Dense disagrees with the config is refused even when only the recurrent
    layers are converted. Unsupported options there do not matter."""
    scratch = KerasIRBuilder(graph, weights, file)
    for spec in graph.layers:
        if spec.is_op or spec.is_copy or spec.class_name not in LAYER_HANDLERS \
                or not holds_weights(spec, graph) or not scratch.layer_weights(spec):
            continue
        try:
            LAYER_HANDLERS[spec.class_name](LayerCall(scratch, spec, 0, [Tensor(f"{spec.name}_input", None)]))
        except UnsupportedError:
            pass


def build_recurrent_only(graph: KerasGraph, weights: WeightSource, file: str | None,
                         source: dict) -> Model:
    """Only the recurrent layers, each on its own input (``<layer>_input``); other layers,
    supported or not, are skipped. Layers with no stored weights are skipped too."""
    builder = KerasIRBuilder(graph, weights, file)
    builder.layout_semantics()
    check_other_weights(graph, weights, file)
    inputs, outputs = [], []
    for spec in graph.layers:
        if spec.is_op or spec.is_copy or spec.class_name not in RECURRENT_HANDLERS \
                or not builder.layer_weights(spec):
            continue
        x = Tensor(f"{spec.name}_input", None, is_model_input=True)
        outs = RECURRENT_HANDLERS[spec.class_name](LayerCall(builder, spec, 0, [x]))
        inputs.append(TensorSpec(x.name, tuple(x.shape), "float32"))
        outputs.extend(t.name for t in outs)
    return Model(name=graph.name, inputs=inputs, outputs=outputs, nodes=builder.nodes,
                 source=with_semantics(source, graph))
