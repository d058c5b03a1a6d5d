"""What a layer builder sees of one Keras layer call: its tensors, config, weights and helpers.

Builders (keras_layers.py, keras_recurrent.py) take a :class:`LayerCall`, add IR nodes through
it and return the :class:`Tensor` s the call produces. The graph walk (keras_build.py) owns
the tensors, nodes, masks and weight source behind it.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .. import activations, budget
from ..keras_classes import WEIGHTED
from ..errors import FormatError, GateportError, UnsupportedError
from ..sanitize import quote
from ..budget import Budget
from ..ir import Node
from .hdf5 import Weight
from .keras_config import KerasGraph, LayerSpec, check_activation
from .malformed import malformed

Shape = tuple  # without batch; entries int or None


def declared_dims(value: object, what: str, *, file: str | None, layer: str | None,
                  unknown: tuple = (None,)) -> tuple:
    """A shape the config declares (``batch_shape``, ``target_shape``): a list whose entries are
    non-negative ints (budget.shape: no floats, bools, inf) or one of ``unknown``."""
    if not isinstance(value, (list, tuple)):
        raise FormatError(f"{what}: expected a list of dimensions, found {quote(value)}", file=file, layer=layer)
    known = [d for d in value if not (d is None and None in unknown) and not (type(d) is int and d in unknown)]
    budget.shape(known, what, file=file, layer=layer)
    return tuple(value)


#: Every Keras boolean option the readers read, each through :func:`flag`: from a layer config (recurrent layers
#: and cells, ConvLSTM, Dense and the convolutions, Embedding, pooling, the normalizations, the attentions, Dot;
#: ``trainable`` orders a nested model's weights), a TensorFlow call's or a Keras 3 op node's arguments
#: (``keepdims``, ``approximate``, ``transpose_a/b``) or a layer call's keyword arguments (``use_causal_mask``,
#: ``return_attention_scores``). Keras writes each as a JSON true or false: its get_config passes the
#: constructor's value through (Keras 1.2.2 keras/layers/recurrent.py Recurrent.get_config, tf-keras and Keras 3
#: the same), and the 27 corpus files and the fixtures hold no other value for any of them; 0, 1, "false",
#: null, [] or {} are refused rather than taken as Python's truth of them.
BOOLEAN_OPTIONS = frozenset({
    # recurrent layers (the RNN layer's own and its cell's), ConvLSTM
    "use_bias", "go_backwards", "return_sequences", "return_state", "stateful", "zero_output_for_mask",
    "reset_after", "time_major",
    # Embedding, global pooling, Normalization, BatchNormalization, LayerNormalization, GroupNormalization
    "mask_zero", "keepdims", "invert", "scale", "center", "rms_scaling", "renorm",
    # Attention, AdditiveAttention, MultiHeadAttention, Dot; call arguments
    "use_scale", "causal", "use_gate", "normalize", "use_causal_mask", "return_attention_scores",
    # TensorFlow calls and Keras 3 ops
    "approximate", "transpose_a", "transpose_b",
    # every layer
    "trainable",
})


def flag(options: Mapping, key: str, default: bool, *, file: str | None, layer: str | None,
         what: str | None = None) -> bool:
    """The boolean option ``key`` of ``options`` (a layer config, a call's arguments), ``default`` where it is
    absent: a JSON true or false (or 0 / 1, which Keras saves as given and reads as false / true), else one FormatError ``<file>: <layer>: <key>: expected true or false, found
    '<value>'`` (``what`` in place of the key where given)."""
    if key not in BOOLEAN_OPTIONS:  # a reader's mistake, not the file's: never wrapped as malformed data
        raise AssertionError(f"{key!r} is read as a boolean option but is not in BOOLEAN_OPTIONS")
    value = options.get(key, default)
    if isinstance(value, int) and value in (0, 1):  # True/False, or 0/1 as `LSTM(return_sequences=1)` saves it
        return bool(value)
    raise FormatError(f"{what or key}: expected true or false, found {quote(value)}", file=file, layer=layer)


def layer_label(spec: LayerSpec) -> str:
    """How messages name a layer: ``name (ClassName)``."""
    return f"{spec.name} ({spec.class_name})"


def dtype_policy(config: dict) -> str:
    """A layer's Keras dtype policy name (``float32``, ``float64``, ``mixed_float16`` ...): the config's
    ``dtype`` string, or the ``name`` of a serialized policy (tf-keras ``Policy``, Keras 3 ``DTypePolicy``)."""
    value = config.get("dtype")
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name")
    if not value:
        return "float32"
    if not isinstance(value, str) or not _known_policy(value):
        raise FormatError(f"expected a Keras dtype policy (float32, float64, float16, bfloat16, mixed_float16, "
                          f"mixed_bfloat16, an integer or bool dtype, or a quantized policy), found {quote(value)}")
    return value


#: Every dtype policy name Keras writes (keras/src/dtype_policies/dtype_policy.py: a dtype name, mixed_*, _infer,
#: the quantized int8_from_* / int4_from_* / float8_from_*); anything else (text, 'object') is no policy.
_DTYPE_NAMES = frozenset(("float16", "bfloat16", "float32", "float64", "bool", "int8", "int16", "int32", "int64",
                          "uint8", "uint16", "uint32", "uint64", "_infer", "mixed_float16", "mixed_bfloat16"))


def _known_policy(name: str) -> bool:
    if name in _DTYPE_NAMES:
        return True
    quantized, sep, source = name.partition("_from_")
    return bool(sep) and quantized in ("int8", "int4", "float8") and source in _DTYPE_NAMES


def refuse_integer_weights(policy: str, has_weights: bool) -> str | None:
    """Why a layer holding weights cannot be read under ``policy``: an integer, bool or quantized policy
    computes in integers (Keras keeps such weights as integers, with scales), which no artifact reproduces."""
    if has_weights and not (policy in _DTYPE_NAMES and policy.startswith(("float", "bfloat", "mixed", "_infer"))):
        return f"quantized or integer layers are not supported (dtype policy {quote(policy)})"
    return None


@dataclass
class Tensor:
    """A tensor flowing between layers: IR name, shape without batch (None = unknown), mask."""

    name: str
    shape: Shape | None
    mask: str | None = None
    dtype: str = "float32"
    is_model_input: bool = False
    pending: tuple | None = None  # a Keras 3 op-node mask expression not materialized yet

    @property
    def last_dim(self) -> int | None:
        return self.shape[-1] if self.shape else None


class Builder(Protocol):
    """What a :class:`LayerCall` uses of the graph walk building the IR (keras_build.KerasIRBuilder)."""

    file: str | None
    keras_version: str | None
    keras3_masks: bool
    budget: Budget
    graph: KerasGraph
    nodes: list[Node]  # the IR nodes built so far

    def layer_weights(self, spec: LayerSpec) -> list[Weight]: ...

    def add_node(self, node: Node) -> None: ...

    def mask_not_equal(self, x: str, value, reduce: bool, owner: str) -> str: ...

    def mask_and(self, masks: list[str | None], owner: str, op: str = "mask_and") -> str | None: ...


def found_arrays(ws: list[Weight]) -> str:
    """What a layer stores, for a refusal of its array count: their paths, or none and the usual cause."""
    if ws:
        return f"{len(ws)} ({', '.join(w.path for w in ws)})"
    return ("none (a model saved before it was built stores no weights: build it, e.g. model.build(input_shape) "
            "or one call on data, then save it again)")


@dataclass
class LayerCall:
    builder: Builder
    spec: LayerSpec
    index: int  # which call of the layer
    inputs: list[Tensor]
    initial_state: list[Tensor] = field(default_factory=list)
    input_mask: str | None = None  # the mask the layer receives (explicit or automatic)
    class_name: str = ""
    config: dict = field(default_factory=dict)
    #: the call's other keyword arguments (a tensor argument resolved to its Tensor)
    kwargs: dict = field(default_factory=dict)
    #: ``mask=[...]`` given one per input, other than the inputs' own masks (Attention's [query, value])
    input_masks: list[str | None] | None = None

    def __post_init__(self):
        self.class_name = self.class_name or self.spec.class_name
        self.config = self.config or self.spec.config

    # -- naming ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The IR node name: the Keras layer name (``name#k`` for the k-th call of a shared layer)."""
        return self.spec.name if self.index == 0 else f"{self.spec.name}#{self.index}"

    @property
    def label(self) -> str:
        return layer_label(self.spec)

    def out(self, t: int = 0) -> str:
        return self.name if t == 0 else f"{self.name}:{t}"

    def inner(self, class_name: str, config: dict) -> "LayerCall":
        """The same call seen as a wrapped layer (TimeDistributed's inner Dense)."""
        return LayerCall(self.builder, self.spec, self.index, self.inputs, self.initial_state,
                         self.input_mask, class_name, config)

    # -- errors ----------------------------------------------------------------------------
    def error(self, message: str, cls: type[GateportError] = FormatError) -> GateportError:
        return cls(message, file=self.builder.file, layer=self.label)

    def unsupported(self, message: str) -> GateportError:
        return self.error(message, UnsupportedError)

    def parsing(self, what: str = "layer config"):
        """A context in which plain-Python errors (KeyError, TypeError ...) of reading this layer's config
        or arrays are a malformed file: wraps the parsing of data only, never the building of IR."""
        return malformed(what, file=self.builder.file, layer=self.label)

    # -- inputs ----------------------------------------------------------------------------
    def single_input(self) -> Tensor:
        if len(self.inputs) != 1:
            raise self.error(f"expected 1 input tensor, found {len(self.inputs)}")
        return self.inputs[0]

    def expect_rank(self, x: Tensor, rank: int, last: int | None = None) -> None:
        """Check ``x`` has ``rank`` dims (without batch); fill an unknown model-input shape."""
        if x.shape is None:
            if x.is_model_input:
                x.shape = (None,) * (rank - 1) + (last,)
            return
        if len(x.shape) != rank:
            raise self.error(f"expected an input of rank {rank + 1} (batch included), found "
                             f"shape {('batch', *x.shape)}")

    def check_shape(self, what: str, array: np.ndarray, expected: tuple) -> None:
        """``expected`` may hold None for 'any size'."""
        ok = array.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, array.shape))
        if not ok:
            shown = tuple("?" if e is None else e for e in expected)
            raise self.error(f"{what} has shape {tuple(array.shape)}, expected {shown} from the config")

    # -- declared sizes ----------------------------------------------------------------------
    def size(self, what: str, value: object, minimum: int = 1) -> int:
        """A size the config declares (``units``, ``n``, ``filters`` ...): an int >= ``minimum``
        (budget.shape refuses floats, bools, inf and negatives), or a one-line error."""
        if value is None:
            raise self.error(f"expected {what} in the config, found none")
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise self.error(f"{what}: expected an integer >= {minimum}, found {quote(value)}")
        (n,) = budget.shape(value, f"{what} in the config", file=self.builder.file, layer=self.label)
        return n

    def flag(self, key: str, default: bool, options: Mapping | None = None, what: str | None = None) -> bool:
        """A boolean option of the config (or of ``options``: a cell's merged config, a call's arguments): a
        JSON true or false (:func:`flag`, :data:`BOOLEAN_OPTIONS`), as :meth:`size` reads an int."""
        return flag(self.config if options is None else options, key, default, file=self.builder.file,
                    layer=self.label, what=what)

    def axis(self, value: object) -> int:
        """An axis from the config: a Python int (negative allowed), never a float or bool."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"axis: expected an integer, found {quote(value)}")
        return value

    def dims(self, what: str, value: object, unknown: tuple = (None,)) -> tuple:
        return declared_dims(value, f"{what} in the config", file=self.builder.file, layer=self.label,
                             unknown=unknown)

    def take(self, elements: int, what: str) -> None:
        """Count what one sample of a declared size allocates at run time (float64) against the
        file's budget, before anything is built with it."""
        self.builder.budget.take(elements * 8, what, layer=self.label)

    # -- weights ---------------------------------------------------------------------------
    def weights(self) -> list[Weight]:
        return self.builder.layer_weights(self.spec)

    def expect_weights(self, count: int | tuple[int, ...], roles: str = "") -> list[Weight]:
        ws = self.weights()
        counts = (count,) if isinstance(count, int) else count
        if len(ws) not in counts:
            raise self.error(f"expected {' or '.join(map(str, counts))} stored arrays{roles}, found {found_arrays(ws)}")
        return ws

    # -- options ---------------------------------------------------------------------------
    def activation(self, name: Any, elementwise: bool = False) -> str:
        try:
            with self.parsing("activation"):
                act = activations.from_keras(check_activation(name), self.builder.keras_version)
        except GateportError as e:
            raise e.at(file=self.builder.file, layer=self.label)
        if elementwise and act not in activations.ELEMENTWISE:
            raise self.unsupported(f"expected an element-wise activation here, found {act!r}")
        return act

    # -- graph -----------------------------------------------------------------------------
    def add(self, op: str, inputs: list[str], outputs: list[str], options: dict | None = None,
            weights: dict | None = None, mask: str | None = None, name: str | None = None, **source) -> Node:
        """A node of this layer (named ``name``, default the layer's; a ' added should that name be taken)."""
        if self.class_name != self.spec.class_name:  # a wrapped layer: TimeDistributed(Dense)
            source.setdefault("layer_class", self.class_name)
        with self.parsing("dtype policy"):
            policy = dtype_policy(self.spec.config)
        why = refuse_integer_weights(policy, bool(weights) or self.class_name in WEIGHTED)
        if why:
            raise self.unsupported(why)
        if policy != "float32":  # every artifact computes in float32 (notes.py)
            source.setdefault("dtype_policy", policy)
        node = Node(name=name or self.name, op=op, inputs=inputs, outputs=outputs, options=options or {},
                    weights=weights or {}, mask=mask,
                    source={"class_name": self.spec.class_name, **source})
        self.builder.add_node(node)
        return node

    def mask_not_equal(self, x: Tensor, value, reduce: bool) -> str:
        return self.builder.mask_not_equal(x.name, value, reduce, owner=self.name)

    def mask_and(self, masks: list[str | None]) -> str | None:
        return self.builder.mask_and(masks, owner=self.name, op="mask_and")

    def mask_or(self, masks: list[str | None]) -> str | None:
        return self.builder.mask_and(masks, owner=self.name, op="mask_or")

    def mark_int(self, x: Tensor) -> None:
        """``x`` holds token ids (fed to an Embedding)."""
        x.dtype = "int64"
