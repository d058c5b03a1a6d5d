"""Keras model config JSON (Keras 1, 2, tf-keras, 3) -> a normalized layer graph.

The graph lists every layer with its normalized config and its calls; each call names the
tensors it consumes as ``(layer, call_index, tensor_index)`` references. Sequential models are
turned into the same functional form. Nothing in the config is ever executed: a ``Lambda`` is
refused by name (UnsafeError) before its config is looked at.

Config formats handled (sources: tf_keras/src/engine/functional.py ``process_node``,
keras/src/models/functional.py ``functional_from_config``, Keras 1.2.2 engine/topology.py):

* Keras 1/2 inbound nodes ``[[["layer", node, tensor, {kwargs}], ...], ...]`` (3 or 4 items);
  tf-keras puts call kwargs (``mask``, ``initial_state``) in the 4th item of the first entry.
* Keras 3 inbound nodes ``[{"args": [...], "kwargs": {...}}]`` with ``__keras_tensor__`` dicts,
  and op nodes (``NotEqual``, ``Any`` ...) listed among the layers.
* Sequential configs as a bare list (Keras 1, Keras <= 2.1) or ``{"layers": [...]}``.
* Keras 1 argument names (``output_dim``, ``inner_activation``, ``p`` ...), after
  keras/legacy/interfaces.py (Keras 2.2.4) ``legacy_recurrent_support`` & co.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import budget, safe_json
from ..activations import keras_major
from ..errors import FormatError, GateportError, GraphError, UnsafeError, UnsupportedError
from ..sanitize import quote
from .malformed import malformed

#: Layer classes that hold Python code (refused without reading their config).
CODE_LAYERS = ("Lambda",)
#: Keras 3 operation classes that serialize mask computations (see keras_build.OP_NODES).
OP_CLASSES = ("NotEqual", "Any", "All", "ExpandDims", "ZerosLike", "OnesLike", "LogicalOr",
              "LogicalAnd", "Concatenate", "BroadcastTo", "ConvertToTensor", "Cast")
#: Classes that are a whole model (nested models).
MODEL_CLASSES = ("Sequential", "Functional", "Model")


@dataclass(frozen=True)
class Ref:
    """Output ``tensor`` of call ``call`` of layer ``layer``."""

    layer: str
    call: int = 0
    tensor: int = 0


@dataclass
class Call:
    """One call of a layer: the tensors it consumes, and its tensor keyword arguments."""

    inputs: list[Ref]
    #: the ``mask`` argument: a tensor, a list of tensors or None (one per input: Attention, merges)
    mask: Ref | list | None = None
    #: whether the call passed ``mask`` itself (``mask=None`` written out: tf-keras then runs it unmasked)
    mask_given: bool = False
    initial_state: list[Ref] = field(default_factory=list)
    constants: list[Any] = field(default_factory=list)  # non-tensor positional args (op nodes)
    #: other call keyword arguments: a tensor (``value``, ``key``, ``attention_mask``) as a Ref, else as stored
    kwargs: dict[str, Any] = field(default_factory=dict)
    args: list[Any] = field(default_factory=list)  # Keras 3: the positional arguments as stored (op nodes)


@dataclass
class LayerSpec:
    name: str
    class_name: str
    config: dict
    calls: list[Call] = field(default_factory=list)
    is_op: bool = False  # a Keras 3 operation node (NotEqual, Any ...), not a layer
    #: Nested models this layer sits in, outermost first (its name is ``"outer/inner"``).
    scope: tuple[str, ...] = ()
    local_name: str = ""  # the layer's own name inside its nested model
    is_copy: bool = False  # a later call of a nested model: same weights as the first copy
    is_container: bool = False  # a nested model, inlined: kept for weight paths only

    @property
    def is_input(self) -> bool:
        return self.class_name == "InputLayer"

    @property
    def weight_key(self) -> tuple[tuple[str, ...], str]:
        """What identifies this layer's stored weights: its scope and own name."""
        return self.scope, self.local_name or self.name


@dataclass
class KerasGraph:
    name: str
    layers: list[LayerSpec]
    inputs: list[Ref]
    outputs: list[Ref]
    keras_version: str | None = None  # as recorded in the file (None if it records none)
    #: the Keras whose semantics apply (hard_sigmoid, masks): recorded, or "3" for a config
    #: with Keras 3 "module" keys and no version (Keras 3 to_json / .weights.h5 record none)
    semantics_version: str | None = None
    backend: str | None = None
    #: why semantics_version differs from the recorded version (the storage layout decided)
    semantics_note: str | None = None

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise KeyError(name)


# -- built-in objects only -------------------------------------------------------------------
def is_keras_module(module: object) -> bool:
    """``module`` of a serialized object that Keras resolves inside Keras itself (or absent,
    as in Keras 1/2 configs): ``keras``, ``keras.layers``, ``keras.src...``, ``tf_keras...``."""
    return module is None or (isinstance(module, str) and (
        module in ("keras", "tf_keras") or module.startswith(("keras.", "tf_keras."))))


def check_builtin(item: dict, what: str, layer: str | None = None) -> None:
    """Refuse a serialized class Keras would not take from its own modules.

    Keras 3 deserializes ``{"module", "class_name", "registered_name"}`` by looking
    ``registered_name`` up among registered custom objects first, then importing ``module``
    (keras/src/saving/serialization_lib.py ``_retrieve_class_or_fn``): a custom class saved as
    ``LSTM`` from ``my_pkg``, or registered as ``my_pkg>LSTM``, is not Keras' LSTM.
    """
    cls, module, registered = item.get("class_name"), item.get("module"), item.get("registered_name")
    if not is_keras_module(module):
        raise UnsupportedError(f"{what} {quote(cls)} comes from module {quote(module)}: expected a "
                               "Keras built-in (module keras...), found a custom object", layer=layer)
    if registered is not None and registered != cls:
        raise UnsupportedError(f"{what} {quote(cls)} is registered as {quote(registered)}: expected "
                               f"the built-in registered name {quote(cls)} or none, found a custom "
                               "object", layer=layer)


def check_activation(value: object, layer: str | None = None) -> object:
    """The activation name of a config value; a serialized function must be Keras' own.

    Keras 3 writes ``{"module": "keras.activations" | "builtins", "class_name": "function",
    "config": "tanh", "registered_name": "tanh" | "function"}``; a custom function has its
    own module or a ``package>name`` registered name.
    """
    if not isinstance(value, dict):
        return value
    name, module, registered = value.get("config"), value.get("module"), value.get("registered_name")
    if value.get("class_name") != "function" and isinstance(name, dict):  # a layer object: Dense(activation=LeakyReLU())
        raise UnsupportedError(f"an activation given as a {quote(value.get('class_name'))} layer is not supported "
                               "here: expected an activation name (Dense reads LeakyReLU, ReLU, ELU, Softmax and "
                               "Activation layers as its activation)", layer=layer)
    if not (is_keras_module(module) or module == "builtins"):
        raise UnsupportedError(f"activation {quote(name)} comes from module {quote(module)}: expected "
                               "a Keras activation (module keras.activations), found a custom "
                               "function", layer=layer)
    if registered not in (None, "function", name):
        raise UnsupportedError(f"activation {quote(name)} is registered as {quote(registered)}: "
                               f"expected the built-in {quote(name)}, found a custom function", layer=layer)
    return value


# -- entry points --------------------------------------------------------------------------
#: Largest model config JSON gateport parses (bytes); real ones are well under a megabyte. safe_json's own
#: ceiling: json.loads makes up to 4 bytes of str per byte of text (one character past U+FFFF widens a
#: string to UCS-4), so 256 MB of config was a gigabyte before any layer was read.
MAX_CONFIG_BYTES = safe_json.MAX_BYTES


def load_config_json(text: str | bytes, file: str | None = None) -> dict:
    """A model config from JSON text: size and nesting depth limited (safe_json.py)."""
    cfg = safe_json.loads(text, what="model config", file=file, max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(cfg, dict) or "class_name" not in cfg:
        raise FormatError("expected a model config with a 'class_name', found "
                          f"{type(cfg).__name__}", file=file)
    return cfg


def parse_model(cfg: dict, keras_version: str | None = None, backend: str | None = None,
                file: str | None = None) -> KerasGraph:
    """A model config (``{"class_name": "Sequential"|"Functional"|"Model", "config": ...}``)."""
    keras_version = keras_version or cfg.get("keras_version")
    keras_version = None if keras_version is None else str(keras_version)
    backend = backend or cfg.get("backend")
    backend = None if backend is None else str(backend)
    semantics = keras_version or ("3" if "module" in cfg else None)
    major = keras_major(semantics)
    cls = cfg.get("class_name")
    body = cfg.get("config")
    try:
        check_builtin(cfg, "model class")
        with malformed("model config"):
            graph = _parse_body(cls, body, major)
    except GateportError as e:
        raise e.at(file=file)
    graph.keras_version = keras_version
    graph.semantics_version = semantics
    graph.backend = backend
    return graph


def _parse_body(cls, body, major: int) -> KerasGraph:
    if cls == "Sequential":
        graph = _parse_sequential(body, major)
    elif cls in ("Functional", "Model"):
        graph = _parse_functional(body, major)
    else:
        raise FormatError(f"expected a Sequential or Functional model config, found class {cls!r}")
    return _inline_nested(graph, major)


# -- Sequential ------------------------------------------------------------------------------
def _parse_sequential(body, major: int) -> KerasGraph:
    if isinstance(body, list):
        name, items = "sequential", body
    elif isinstance(body, dict) and isinstance(body.get("layers"), list):
        name, items = body.get("name", "sequential"), body["layers"]
    else:
        raise FormatError("expected a Sequential config with a list of layers")
    if not items:
        raise FormatError("the Sequential model has no layers")
    budget.count(len(items), "layers in the Sequential config")
    specs = [_layer_spec(item, major) for item in items]
    _check_names(specs)
    if specs[0].is_input:
        input_spec, specs = specs[0], specs[1:]
    else:
        first = specs[0]
        shape = batch_input_shape(first.config, first.class_name)
        if shape is None and isinstance(body, dict) and body.get("build_input_shape"):
            shape = list(body["build_input_shape"])
        if shape is None and isinstance(items[0].get("build_config"), dict):  # Keras 3
            shape = items[0]["build_config"].get("input_shape")
            shape = list(shape) if isinstance(shape, (list, tuple)) else None
        input_spec = LayerSpec(
            name=f"{first.name}_input",
            class_name="InputLayer",
            config={"batch_shape": shape, "dtype": _input_dtype(first.config)},
        )
    prev = Ref(input_spec.name)
    for spec in specs:
        spec.calls = [Call(inputs=[prev])]
        prev = Ref(spec.name)
    return KerasGraph(name=name, layers=[input_spec, *specs], inputs=[Ref(input_spec.name)],
                      outputs=[prev])


def batch_input_shape(config: dict, class_name: str = "") -> list | None:
    """The ``(batch, ...)`` input shape a first layer declares, in any Keras version."""
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return list(config[key])
    if config.get("input_shape") is not None:
        return [None, *config["input_shape"]]
    # Keras 1 input_dim / input_length
    if config.get("input_dim") is not None and class_name != "Embedding":
        if class_name in ("Dense",):
            return [None, config["input_dim"]]
        return [None, config.get("input_length"), config["input_dim"]]
    if class_name == "Embedding" and config.get("input_length") is not None:
        return [None, config["input_length"]]
    return None


def _input_dtype(config: dict) -> str:
    dtype = config.get("input_dtype") or config.get("dtype") or "float32"
    if isinstance(dtype, dict):  # Keras 3 DTypePolicy
        dtype = (dtype.get("config") or {}).get("name", "float32")
    return str(dtype)


# -- Functional ------------------------------------------------------------------------------
def _parse_functional(body, major: int) -> KerasGraph:
    if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
        raise FormatError("expected a Functional config with a list of layers")
    budget.count(len(body["layers"]), "layers in the Functional config")
    specs = []
    for item in body["layers"]:
        spec = _layer_spec(item, major)
        with malformed("inbound nodes", layer=f"{spec.name} ({spec.class_name})"):
            spec.calls = [_parse_call(node, spec.name) for node in item.get("inbound_nodes") or []]
        specs.append(spec)
    _check_names(specs)
    return KerasGraph(
        name=body.get("name", "model"),
        layers=specs,
        inputs=_ref_list(body.get("input_layers")),
        outputs=_ref_list(body.get("output_layers")),
    )


def _check_names(specs: list[LayerSpec]) -> None:
    """Keras refuses two layers of one name in a model (their weights are stored by name): so does gateport."""
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise GraphError(f"expected unique layer names, found {quote(spec.name)} twice")
        seen.add(spec.name)


def _ref_list(value) -> list[Ref]:
    """``input_layers``/``output_layers``: a list of triples, one bare triple, or a dict (in its keys' sorted
    order: both Kerases flatten a dict of model inputs or outputs so, ``model.inputs``/``outputs`` included)."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=str)]
    if value and isinstance(value[0], str):
        value = [value]
    refs = []
    for item in value:
        if isinstance(item, (list, tuple)) and item and isinstance(item[0], (list, tuple, dict)):
            refs.extend(_ref_list(item))
        else:
            refs.append(_as_ref(item))
    return refs


def _as_ref(item) -> Ref:
    if isinstance(item, dict):  # Keras 3 __keras_tensor__
        hist = (item.get("config") or {}).get("keras_history")
        if hist is None:
            raise GraphError(f"expected a keras tensor reference, found {item!r:.120}")
        item = hist
    if not (isinstance(item, (list, tuple)) and len(item) >= 3 and isinstance(item[0], str)):
        raise GraphError(f"expected a [layer, node, tensor] reference, found {item!r:.120}")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in item[1:3]):
        # int(0.5) read node 0 where Keras fails: a shared layer's [name, 1.9, 0] would read its second call
        raise GraphError(f"expected a [layer, node, tensor] reference of integer indices, found {quote(list(item))}")
    return Ref(item[0], item[1], item[2])


def _is_ref(item) -> bool:
    if isinstance(item, dict):
        return item.get("class_name") == "__keras_tensor__"
    return (isinstance(item, (list, tuple)) and len(item) in (3, 4) and isinstance(item[0], str)
            and item[0] != "_CONSTANT_VALUE" and isinstance(item[1], int) and isinstance(item[2], int))


def _refs_in(value) -> list[Ref]:
    """Every tensor reference in a nested structure of args/kwargs, in order."""
    if _is_ref(value):
        return [_as_ref(value)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs_in(v)]
    return []


def _flat_entries(node) -> list:
    """A Keras 1/2 inbound node's ``[layer, node, tensor(, kwargs)]`` entries in order. An RNN called with a nested
    ``initial_state`` (``RNN(StackedRNNCells)(x, initial_state=[[h, c], g])``) stores its inputs as tf-keras'
    RNN.__call__ joined them, ``[x, [h, c], g]`` (tf_keras/src/layers/rnn/base_rnn.py ``_standardize_args`` /
    ``full_input``): each nested group is read in place, flattened as Keras 3 flattens the same call's
    ``initial_state``."""
    entries = list(node)
    if entries and isinstance(entries[0], str):  # a single un-nested entry
        return [entries]
    flat: list = []
    for entry in entries:
        if isinstance(entry, (list, tuple)) and entry and isinstance(entry[0], (list, tuple)):
            flat.extend(_flat_entries(entry))
        else:
            flat.append(entry)
    return flat


def _parse_call(node, layer: str) -> Call:
    try:
        if isinstance(node, dict):  # Keras 3
            args, kwargs = node.get("args", []), node.get("kwargs", {}) or {}
            inputs = _refs_in(args)
            constants = [a for a in args if not _refs_in(a)]
        else:  # Keras 1/2: a list of [layer, node, tensor(, kwargs)]
            entries = _flat_entries(node)
            inputs, kwargs, constants = [], {}, []
            for entry in entries:
                if entry[0] == "_CONSTANT_VALUE":
                    constants.append(entry[2])
                else:
                    inputs.append(_as_ref(entry))
                if len(entry) >= 4 and entry[3]:
                    kwargs.update(entry[3])
    except (TypeError, IndexError, ValueError) as e:
        raise GraphError(f"malformed inbound node {node!r:.200} ({e})", layer=layer) from None
    call = Call(inputs=inputs, constants=constants, args=args if isinstance(node, dict) and isinstance(args, list) else [])
    if "mask" in kwargs:
        call.mask_given = True
        mask = kwargs["mask"]
        if _is_ref(mask):
            call.mask = _as_ref(mask)
        elif isinstance(mask, (list, tuple)):  # one mask (or None) per input tensor
            call.mask = [_as_ref(m) if _is_ref(m) else m for m in mask]
        else:
            call.mask = mask
    for key in ("initial_state", "constants"):
        refs = _refs_in(kwargs.get(key)) if kwargs.get(key) is not None else []
        if key == "initial_state":
            call.initial_state = refs
        elif refs:
            raise FormatError("RNN 'constants' are not supported", layer=layer)
    call.kwargs = {k: (_as_ref(v) if _is_ref(v) else v) for k, v in kwargs.items()
                   if k not in ("mask", "initial_state", "constants", "training")}
    return call


# -- one layer -------------------------------------------------------------------------------
#: Keras 3 layers whose get_config leaves out "trainable" (so their legacy .h5 entry looks like
#: an operation node's): InputLayer, and SpatialDropout1D/2D/3D (config: rate, seed, name, dtype).
_NO_TRAINABLE_LAYERS = frozenset({"InputLayer", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"})


def _layer_spec(item: dict, major: int) -> LayerSpec:
    if not isinstance(item, dict) or not isinstance(item.get("class_name"), str):
        raise FormatError(f"expected a layer config with a 'class_name', found {item!r:.120}")
    cls = item["class_name"]
    config = item.get("config")
    if not isinstance(config, dict):
        config = {}
    name = item.get("name") or config.get("name") or cls.lower()
    if not isinstance(name, str):
        raise FormatError(f"expected a layer name, found {quote(name, 80)}", layer=quote(cls))
    check_builtin(item, "layer class", layer=f"{name} ({cls})")
    if cls in CODE_LAYERS:
        raise UnsafeError(f"{cls} layers hold Python code; gateport refuses to deserialize them",
                          layer=f"{name} ({cls})")
    if cls in MODEL_CLASSES:  # a nested model: parsed and inlined by _inline_nested
        return LayerSpec(name=name, class_name=cls, config={"model": item.get("config")},
                         is_container=True)
    # Keras 3 op nodes: module keras.src.ops.*; legacy .h5 drops the module, but an op's config
    # never has the "trainable" every layer config but InputLayer's has (Softmax, Multiply ... are ops too).
    module = item.get("module")
    is_op = str(module).startswith("keras.src.ops") or (
        module is None and major >= 3 and cls not in _NO_TRAINABLE_LAYERS and "trainable" not in config)
    with malformed("layer config", layer=f"{name} ({cls})"):
        config = normalize_config(cls, config, major)
    return LayerSpec(name=name, class_name=cls, config=config, is_op=is_op)


#: Keras 1 argument names -> Keras 2 (keras/legacy/interfaces.py, Keras 2.2.4).
_KERAS1_RENAMES = {
    "inner_activation": "recurrent_activation",
    "dropout_W": "dropout",
    "dropout_U": "recurrent_dropout",
}
_UNITS_CLASSES = ("LSTM", "GRU", "SimpleRNN", "Dense", "LSTMCell", "GRUCell", "SimpleRNNCell")


def normalize_config(cls: str, config: dict, major: int) -> dict:
    """Rename Keras 1 arguments and fill version-dependent defaults; nested layers too."""
    config = dict(config)
    for old, new in _KERAS1_RENAMES.items():
        if old in config and new not in config:
            config[new] = config.pop(old)
    if cls in _UNITS_CLASSES and "units" not in config and "output_dim" in config:
        config["units"] = config.pop("output_dim")
    if cls == "Dense" and "use_bias" not in config and "bias" in config:
        config["use_bias"] = config.pop("bias")
    if cls == "Dropout" and "rate" not in config and "p" in config:
        config["rate"] = config.pop("p")
    # Version-dependent defaults (recurrent_activation, reset_after) are filled when the layer
    # is built (keras_recurrent.py), once the storage layout has decided whose Keras applies.
    for key in ("layer", "backward_layer", "cell"):
        sub = config.get(key)
        if isinstance(sub, dict) and "class_name" in sub:
            sub_cls = sub["class_name"]
            check_builtin(sub, f"{key} class", layer=f"{config.get('name')} ({cls})")
            if sub_cls in CODE_LAYERS:
                raise UnsafeError(f"{sub_cls} layers hold Python code; gateport refuses to "
                                  "deserialize them", layer=f"{config.get('name')} ({cls})")
            config[key] = {**sub, "config": normalize_config(sub_cls, sub.get("config") or {}, major)}
    return config


# -- nested models -----------------------------------------------------------------------------
def _inline_nested(graph: KerasGraph, major: int) -> KerasGraph:
    """Replace each nested model by copies of its layers, one copy per call.

    Layers of a nested model ``enc`` become ``enc/lstm`` (``enc#1/lstm`` for its second call,
    same weights). References to the nested model's outputs are redirected to its inner layers.
    Config node indices of a nested model start at 1 in Keras <= 2 when the model was built
    with an input (tf_keras functional.py ``_should_skip_first_node``), at 0 in Keras 3, except in the
    model's own ``output_layers``, where a nested Functional's (not a Sequential's) start at 1
    (keras/src/models/functional.py: ``get_config`` sets ``kept_nodes = 1`` for a Functional,
    ``functional_from_config``'s ``get_tensor`` takes 1 off; ``serialize_node`` writes inbound nodes
    unshifted): ``Model([x, y], decoder([y, *encoder(x)]))`` names ``['decoder_model', 1, 0]``.
    """
    if not any(s.is_container for s in graph.layers):
        return graph
    layers: list[LayerSpec] = []
    redirect: dict[tuple[str, int], list[Ref]] = {}
    for spec in graph.layers:
        if not spec.is_container:
            layers.append(spec)
            continue
        sub = _parse_body(spec.class_name, spec.config["model"], major)
        has_input = any(s.is_input and batch_input_shape(s.config) for s in sub.layers)
        offset = 1 if major <= 2 and (spec.class_name != "Sequential" or has_input) else 0
        layers.append(LayerSpec(spec.name, spec.class_name, {}, scope=(), is_container=True))
        inner = [s for s in sub.layers if not s.is_input]
        for k, call in enumerate(spec.calls):
            if len(call.inputs) != len(sub.inputs):
                raise FormatError(f"expected {len(sub.inputs)} inputs to the nested model, found "
                                  f"{len(call.inputs)}", layer=f"{spec.name} ({spec.class_name})")
            prefix = spec.name if k == 0 else f"{spec.name}#{k}"
            feeds = {ref.layer: outer for ref, outer in zip(sub.inputs, call.inputs)}
            _fill_input_shapes(graph, sub, call)

            def local(ref: Ref, prefix=prefix, feeds=feeds) -> Ref:
                return feeds.get(ref.layer) or Ref(f"{prefix}/{ref.layer}", ref.call, ref.tensor)

            for s in inner:
                layers.append(LayerSpec(
                    name=f"{prefix}/{s.name}", class_name=s.class_name, config=s.config,
                    calls=[_map_call(c, local) for c in s.calls], is_op=s.is_op,
                    scope=(spec.name, *s.scope), local_name=s.local_name or s.name,
                    is_copy=k > 0 or s.is_copy, is_container=s.is_container))
            redirect[(spec.name, k + offset)] = [local(r) for r in sub.outputs]

    def fix(ref: Ref) -> Ref:
        for _ in range(len(redirect) + 1):
            if (ref.layer, ref.call) not in redirect:
                return ref
            outs = redirect[(ref.layer, ref.call)]
            if not 0 <= ref.tensor < len(outs):
                raise FormatError(f"nested model {ref.layer!r} has no output {ref.tensor}")
            ref = outs[ref.tensor]
        raise FormatError("nested models refer to each other in a cycle")

    for spec in layers:
        spec.calls = [_map_call(c, fix) for c in spec.calls]
    containers = {s.name for s in layers if s.is_container and not s.scope}
    outputs = graph.outputs
    if major >= 3:  # Keras 3 counts a nested Functional's own construction as node 0 in output_layers only
        functional = {s.name for s in graph.layers if s.is_container and s.class_name == "Functional"}
        outputs = [Ref(r.layer, r.call - 1, r.tensor) if r.layer in functional else r for r in outputs]
    for ref in outputs:
        if ref.layer in containers and (ref.layer, ref.call) not in redirect:
            raise FormatError(f"call {ref.call} of nested model {ref.layer!r} is not in the model")
    return KerasGraph(graph.name, layers, graph.inputs, [fix(r) for r in outputs])


def _map_call(call: Call, fn) -> Call:
    mask = fn(call.mask) if isinstance(call.mask, Ref) else \
        [fn(m) if isinstance(m, Ref) else m for m in call.mask] if isinstance(call.mask, list) else call.mask
    return Call(inputs=[fn(r) for r in call.inputs], mask=mask, mask_given=call.mask_given,
                initial_state=[fn(r) for r in call.initial_state], constants=call.constants,
                kwargs={k: fn(v) if isinstance(v, Ref) else v for k, v in call.kwargs.items()},
                args=call.args)  # as stored: keras_tf_ops replaces its references by ``inputs`` in order


def _fill_input_shapes(graph: KerasGraph, sub: KerasGraph, call: Call) -> None:
    """A Sequential whose first layer is a nested model takes its input shape from it."""
    by_name = {s.name: s for s in graph.layers}
    sub_inputs = {s.name: s for s in sub.layers if s.is_input}
    for ref, outer in zip(sub.inputs, call.inputs):
        outer_spec, inner_spec = by_name.get(outer.layer), sub_inputs.get(ref.layer)
        if outer_spec is not None and outer_spec.is_input and inner_spec is not None \
                and batch_input_shape(outer_spec.config) is None:
            outer_spec.config = {**outer_spec.config, "batch_shape": batch_input_shape(inner_spec.config)}
