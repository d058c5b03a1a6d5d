"""The op table: one row per IR op, the one place that says what an op is.

A row (:class:`Op`) holds the op's description, its options (type and default), the weights it
holds and the shapes they take, the rule for its output shapes, what it does with a mask, and
for a recurrent op its number of states. The IR conventions shared by every op are in
:mod:`converters.ir`. Everything else reads this table:

* :class:`converters.ir.Node` fills the defaults of its options when built
  (:func:`normalized_options`), so code downstream indexes ``options["activation"]``;
* :mod:`converters.shapes` computes output shapes with the rows' ``shape`` rules;
* :mod:`converters.manifest_check` checks a ``.gates`` manifest's options and weights with the rows,
  and ``schemas/ir-manifest.schema.json`` is generated from them
  (``python -m converters.manifest_check > schemas/ir-manifest.schema.json``; a test keeps it equal).

A new op is one row here (its reference, readers and writers are named by tests/test_ops_table.py).
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TypeGuard

from .activations import NUMPY
from .gates import GATES

MAX_SIZE, MAX_RANK = 2**31 - 1, 32

#: Keras' Bidirectional merge modes (``None``: both directions returned, forward first).
MERGE_MODES = ("concat", "sum", "mul", "ave", None)
#: Recurrent ops and the states each direction carries (``h``, and ``c`` for an LSTM).
STATES = {"lstm": 2, "gru": 1, "simple_rnn": 1}
#: What an op does with the ``mask`` of its input.
MASK_RULES = {
    "consumes": "the node's mask changes what it computes (masked steps skipped or left out)",
    "propagates": "the output carries the input's mask; the op ignores it",
    "drops": "the output has no mask",
    "merges": "the output's mask combines the inputs' masks",
    "makes": "the op computes a mask tensor (readers make these nodes for Keras' mask propagation)",
    "inputs": "masks arrive as explicit inputs (by role)",
}
#: The Python operator of each mask-combining op, for the generated PyTorch and NumPy code.
MASK_LOGIC = {"mask_and": "&", "mask_or": "|"}


# -- option types ------------------------------------------------------------------------------
def is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_finite(v: object) -> TypeGuard[int | float]:
    """A real number (not a bool) that is finite as a float: JSON's ``1e400`` as an int is not."""
    return _is_number(v) and (math.isfinite(v) if isinstance(v, float) else abs(v) <= sys.float_info.max)


@dataclass(frozen=True)
class Type:
    """An option's type: a check (stricter than JSON Schema on floats), the words a message uses for
    what it expects, and its JSON Schema."""

    check: Callable[[Any], bool]
    expected: str
    schema: dict


def one_of(*choices) -> Type:
    return Type(lambda v: (v is None or isinstance(v, str)) and v in choices,
                "one of " + ", ".join("null" if c is None else c for c in choices), {"enum": list(choices)})


def int_range(lo: int, hi: int, schema: dict | None = None) -> Type:
    return Type(lambda v: is_int(v) and lo <= v <= hi, f"an integer from {lo} to {hi}",
                schema or {"type": "integer", "minimum": lo, "maximum": hi})


def _int_list(lo: int, hi: int, min_items: int = 0, max_items: int = MAX_RANK, **extra) -> dict:
    return {"type": "array", **({"minItems": min_items} if min_items else {}), "maxItems": max_items,
            "items": {"type": "integer", "minimum": lo, "maximum": hi}, **extra}


def _finite_at_least_0(v: object) -> bool:
    return is_finite(v) and v >= 0


SIZE = int_range(1, MAX_SIZE, {"$ref": "#/$defs/size"})
DIM = int_range(0, MAX_SIZE, {"$ref": "#/$defs/dim"})
AXIS = int_range(-MAX_RANK - 1, MAX_RANK)
BOOL = Type(lambda v: isinstance(v, bool), "true or false", {"type": "boolean"})
NUMBER = Type(lambda v: isinstance(v, float) or is_finite(v), "a number", {"type": "number"})  # NaN/inf, no 10**400
FINITE = Type(is_finite, "a finite number", {"type": "number"})
NON_NEGATIVE = Type(_finite_at_least_0, "a finite number >= 0", {"type": "number", "minimum": 0})
OPTIONAL_NON_NEGATIVE = Type(lambda v: v is None or _finite_at_least_0(v), "null or a finite number >= 0",
                             {"type": ["number", "null"], "minimum": 0})
ACTIVATION = Type(lambda v: isinstance(v, str) and v in NUMPY, "one of " + ", ".join(NUMPY),
                  {"$ref": "#/$defs/activation"})
MERGE_MODE = one_of(*MERGE_MODES)
POOL_MODE = one_of("max", "average")
TARGET_SHAPE = Type(lambda v: isinstance(v, list) and len(v) <= MAX_RANK and all(is_int(d) and -1 <= d <= MAX_SIZE
                                                                                 for d in v),
                    f"a list of at most {MAX_RANK} integers from -1 to {MAX_SIZE}", _int_list(-1, MAX_SIZE))
PAIR = Type(lambda v: isinstance(v, list) and len(v) == 2 and all(is_int(d) and 0 <= d <= MAX_SIZE for d in v),
            f"two integers from 0 to {MAX_SIZE}", _int_list(0, MAX_SIZE, 2, 2))
AXES = Type(lambda v: isinstance(v, list) and 1 <= len(v) <= MAX_RANK and v == list(range(-len(v), 0)),
            "the last axes as a list of negative integers, e.g. [-2, -1]",
            _int_list(-MAX_RANK, -1, 1, description="The trailing axes, negative and increasing: [-2, -1]."))
DIMS = Type(lambda v: isinstance(v, list) and 1 <= len(v) <= MAX_RANK and all(is_int(d) for d in v)
            and sorted(v) == list(range(1, len(v) + 1)), "a permutation of 1..n",
            _int_list(1, MAX_RANK, 1, description="A permutation of 1..n (Keras' axes without batch)."))
SHARED_AXES = Type(lambda v: isinstance(v, list) and len(v) <= MAX_RANK and all(is_int(d) and 1 <= d <= MAX_RANK
                                                                                for d in v),
                   "a list of axes >= 1", _int_list(1, MAX_RANK))
#: The masks an attention node reads as inputs, by role.
#: roles whose input is a (batch, time) mask made by a mask_* node; ``attention_mask`` is data (any
#: (batch, T, S) tensor, nonzero = attend), as Keras casts it to bool
MASK_ROLES = ("query_mask", "value_mask", "key_mask")
ROLES = ("query", "value", "key", *MASK_ROLES, "attention_mask")
ROLE_LIST = Type(lambda v: isinstance(v, list) and len(v) <= len(ROLES) and all(isinstance(r, str) and r in ROLES
                                                                                  for r in v),
                 "a list of roles from " + ", ".join(ROLES), {"type": "array", "maxItems": len(ROLES),
                                                               "items": {"enum": list(ROLES)}})
AXIS_PAIR = Type(lambda v: isinstance(v, list) and len(v) == 2 and all(is_int(d) and 1 <= d <= MAX_RANK for d in v),
                 f"two axes from 1 to {MAX_RANK}", _int_list(1, MAX_RANK, 2, 2))
POSITIVE = Type(lambda v: is_finite(v) and v > 0, "a finite number > 0",
                {"type": "number", "exclusiveMinimum": 0})


# -- rows ----------------------------------------------------------------------------------------
class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: An option without a default: every node states it.
REQUIRED = _Marker("REQUIRED")
#: An optional option with no default: typed when present, never filled in.
ABSENT = _Marker("ABSENT")


@dataclass(frozen=True)
class Option:
    """One option: its type, its default (a value, a function of the other options, REQUIRED or
    ABSENT), and whether a ``.gates`` manifest must state it even so (``stored``)."""

    type: Type
    default: Any = REQUIRED
    stored: bool = False

    @property
    def in_manifest(self) -> bool:
        """Whether a manifest must hold this option."""
        return self.stored or self.default is REQUIRED


#: ``weights(options, dim) -> (shapes, required)``: the arrays an op holds, with the shape each takes
#: (from the options; ``dim(name, axis)`` is the given array's size on ``axis``) and those it must hold.
WeightRule = Callable[[dict, Callable[[str, int], Any]], tuple[dict[str, list], set[str]]]
#: ``io(options) -> (input counts, output counts)`` a node may have (``()``: one or more); the options
#: are a manifest's, as stored (only the required ones surely present).
IORule = Callable[[dict], tuple[tuple[int, ...], tuple[int, ...]]]
#: ``shape(node, input_shapes) -> output_shapes`` (shapes without batch; the first input is known).
ShapeRule = Callable[[Any, list], list]


def _same_shape(node, ins: list) -> list:
    return [ins[0]] * len(node.outputs)


@dataclass(frozen=True)
class Op:
    """One IR op: what it computes, its options, weights, output shapes, mask rule and states."""

    doc: str
    options: dict[str, Option] = field(default_factory=dict)
    weights: tuple[str, ...] = ()  # the arrays it may hold (``direction.gate.part`` for recurrent ops)
    weight_shapes: WeightRule | None = None  # checked by manifest_check; None: shapes follow the input
    shape: ShapeRule = _same_shape
    mask: str = "propagates"
    states: int = 0  # states per direction (recurrent ops)
    io: IORule = lambda o: ((1,), (1,))
    mask_input: Callable[[dict, int], bool] = lambda o, k: False  # whether input k is a mask (not data)
    #: whether input k is data that may be a bool model input as it is (read as nonzero = true, as Keras casts it)
    bool_data: Callable[[dict, int], bool] = lambda o, k: False
    #: ``(rank, width)`` the first input must have (rank 0: one or more; width None: any), from the IR
    #: node; None: not checked (manifest_check.check_shapes)
    input_shape: Callable[[Any], tuple[int, int | None]] | None = None

    def required(self) -> tuple[str, ...]:
        """The options a manifest must state."""
        return tuple(k for k, o in self.options.items() if o.in_manifest)


# -- input/output counts ---------------------------------------------------------------------------
def _io(ins: tuple[int, ...]) -> IORule:
    """Input counts ``ins`` (``()``: one or more), one output."""
    return lambda o: (ins, (1,))


def _recurrent_io(op: str) -> IORule:
    def io(o: dict) -> tuple:
        dirs = 2 if o["bidirectional"] else 1
        states = STATES[op] * dirs
        n_y = 2 if dirs == 2 and "merge_mode" in o and o["merge_mode"] is None else 1
        return (1, 1 + states), (n_y + (states if o["return_state"] else 0),)
    return io


def _roles_io(o: dict) -> tuple:
    """One input per role; ``[y, scores]`` with ``return_scores``."""
    return (len(o["roles"]),), ((2,) if o.get("return_scores") else (1,))


def _second(o: dict, k: int) -> bool:
    return k == 1


def _mask_role(o: dict, k: int) -> bool:
    return o["roles"][k] in MASK_ROLES


def _attention_mask_role(o: dict, k: int) -> bool:
    return o["roles"][k] == "attention_mask"


# -- shape rules ---------------------------------------------------------------------------------
def _recurrent_shape(node, ins: list) -> list:
    o, x, n_out = node.options, ins[0], len(node.outputs)
    units, two = o["units"], o["bidirectional"]
    merged = units * 2 if two and o["merge_mode"] == "concat" else units
    time = x[0] if len(x) >= 2 else None
    y = (time, merged) if o["return_sequences"] else (merged,)
    y_each = (time, units) if o["return_sequences"] else (units,)
    ys = [y_each, y_each] if two and o["merge_mode"] is None else [y]
    return (ys + [(units,)] * n_out)[:n_out]


def _concatenate_shape(node, ins: list) -> list:
    x, axis = ins[0], node.options["axis"]
    axis = axis - 1 if axis > 0 else len(x) + axis  # Keras axis counts the batch
    dims = [s[axis] if s is not None else None for s in ins]
    total = None if None in dims else sum(d for d in dims if d is not None)
    return [x[:axis] + (total,) + x[axis + 1:]]


def _reshape_shape(node, ins: list) -> list:
    x, target = ins[0], tuple(node.options["shape"])
    if -1 in target and None not in x:
        known = math.prod(d for d in target if d != -1)
        target = tuple(math.prod(x) // known if d == -1 else d for d in target)
    return [tuple(None if d == -1 else d for d in target)]


def _steps(time, k: int, s: int, padding: str):
    """Output steps of a window ``k`` at stride ``s``: ``valid`` drops the partial windows, else ``ceil``."""
    if time is None:
        return None
    return (time - k) // s + 1 if padding == "valid" else -(-time // s)


def _conv1d_shape(node, ins: list) -> list:
    o = node.options
    span = o["dilation_rate"] * (o["kernel_size"] - 1) + 1
    return [(_steps(ins[0][0], span, o["strides"], o["padding"]), o["filters"])]


def _global_pool_shape(node, ins: list) -> list:
    x, o = ins[0], node.options
    feat = x[-1] if o["axis"] == 1 else x[0]
    if not o["keepdims"]:
        return [(feat,)]
    return [(1, feat) if o["axis"] == 1 else (feat, 1)]


def _time_shape(steps: Callable[[Any, dict], Any]) -> ShapeRule:
    """The rule of an op that changes the number of time steps only (``steps(t, options)``, t known)."""
    def rule(node, ins: list) -> list:
        x = ins[0]
        return [(None if x[0] is None else steps(x[0], node.options),) + tuple(x[1:])]
    return rule


def _dot_shape(node, ins: list) -> list:
    """Both inputs' axes but the two contracted ones (``axes`` count the batch)."""
    a, b = ins
    if b is None:
        return [None]
    ax1, ax2 = (int(x) for x in node.options["axes"])
    rest = tuple(d for i, d in enumerate(a) if i != ax1 - 1) + tuple(d for i, d in enumerate(b) if i != ax2 - 1)
    return [rest or (1,)]


def _attention_shape(node, ins: list) -> list:
    """``[y, scores]`` of an attention node from its inputs by role (y: query steps; width: value's, or
    ``output_dim``; scores ``(t, s)``, per head for multi_head_attention)."""
    o = node.options
    r = dict(zip(o["roles"], ins))
    q, v = r.get("query"), r.get("value")
    t, s = (q[0] if q else None), (v[0] if v else None)
    if node.op == "attention":
        return [(t, v[-1] if v else None), (t, s)][:len(node.outputs)]
    return [(t, o["output_dim"]), (o["num_heads"], t, s)][:len(node.outputs)]


# -- input shape rules --------------------------------------------------------------------------
def _time_input(node) -> tuple[int, None]:
    return 2, None


def _recurrent_input(node) -> tuple[int, int]:
    return 2, node.options["input_size"]


# -- weight rules --------------------------------------------------------------------------------
GATE_PARTS = ("input_weights", "recurrent_weights", "input_bias", "recurrent_bias")
DIRECTIONS = ("forward", "backward")


def _recurrent_weights(op: str) -> WeightRule:
    def rule(o: dict, dim) -> tuple[dict, set]:
        units, n_in = o["units"], o["input_size"]
        shapes = {"input_weights": [units, n_in], "recurrent_weights": [units, units],
                  "input_bias": [units], "recurrent_bias": [units]}
        directions = DIRECTIONS if o["bidirectional"] else DIRECTIONS[:1]
        wanted = {f"{d}.{g}.{p}": shapes[p] for d in directions for g in GATES[op] for p in GATE_PARTS}
        return wanted, set(wanted)
    return rule


def _dense_weights(o: dict, dim) -> tuple[dict, set]:
    return {"weight": [o["units"], dim("weight", 1)], "bias": [o["units"]]}, {"weight"}


def _embedding_weights(o: dict, dim) -> tuple[dict, set]:
    return {"embeddings": [o["input_dim"], o["output_dim"]]}, {"embeddings"}


def _conv1d_weights(o: dict, dim) -> tuple[dict, set]:
    return {"weight": [o["filters"], dim("weight", 1), o["kernel_size"]], "bias": [o["filters"]]}, {"weight"}


def _batch_norm_weights(o: dict, dim) -> tuple[dict, set]:
    n = dim("moving_mean", 0)
    return {k: [n] for k in ("gamma", "beta", "moving_mean", "moving_variance")}, set()


# -- the table -----------------------------------------------------------------------------------
def _recurrent(op: str, doc: str) -> Op:
    gated = op != "simple_rnn"
    options = {
        "units": Option(SIZE), "input_size": Option(SIZE),
        "activation": Option(ACTIVATION, "tanh", stored=True),
        "recurrent_activation": Option(ACTIVATION, "sigmoid", stored=True) if gated else Option(ACTIVATION, ABSENT),
        "reset_after": Option(BOOL, True, stored=True) if op == "gru" else Option(BOOL, ABSENT),
        "use_bias": Option(BOOL, True, stored=True), "go_backwards": Option(BOOL, False, stored=True),
        "return_sequences": Option(BOOL, False, stored=True), "return_state": Option(BOOL, False, stored=True),
        "bidirectional": Option(BOOL, False, stored=True), "merge_mode": Option(MERGE_MODE, "concat"),
        "zero_output_for_mask": Option(BOOL, False), "stateful": Option(BOOL, False),
    }
    return Op(doc, options, weights=("direction.gate.part",), weight_shapes=_recurrent_weights(op),
              shape=_recurrent_shape, mask="consumes", states=STATES[op], io=_recurrent_io(op),
              input_shape=_recurrent_input)


_RECURRENT_DOC = (
    "Keras {cls} (also inside Bidirectional: ``bidirectional``, ``merge_mode``; ``merge_mode`` None "
    "returns both directions). weights ``{{direction}}.{{gate}}.{{part}}`` (direction forward/backward, "
    "gate from converters.gates.GATES, part one of ir.GATE_PARTS); inputs ``[x, *initial_states]`` "
    "(forward states then backward{states}); outputs Keras' order ``[y, *states]``, with "
    "``merge_mode=None`` ``[y_fw, y_bw, *states]``.")
_MERGE_DOC = "Keras {cls}: the element-wise {what} of its inputs (same shapes)."


OPS: dict[str, Op] = {
    "lstm": _recurrent("lstm", _RECURRENT_DOC.format(cls="LSTM", states=", ``h`` then ``c``")),
    "gru": _recurrent("gru", _RECURRENT_DOC.format(cls="GRU (``reset_after`` as Keras)", states="")),
    "simple_rnn": _recurrent("simple_rnn", _RECURRENT_DOC.format(cls="SimpleRNN", states="")),
    "dense": Op("Keras Dense on the last axis (so TimeDistributed(Dense) is a plain dense): "
                "``activation(x @ weight.T + bias)``; weights ``weight (units, in)``, ``bias (units)``.",
                {"units": Option(SIZE), "activation": Option(ACTIVATION, "linear"), "use_bias": Option(BOOL, True)},
                ("weight", "bias"), _dense_weights, lambda node, ins: [ins[0][:-1] + (node.options["units"],)],
                input_shape=lambda node: (0, int(node.weights["weight"].shape[1]))),
    "embedding": Op("Keras Embedding: rows of ``embeddings (input_dim, output_dim)`` by token id "
                    "(mask_zero: the reader adds a mask_not_equal node on its input).",
                    {"input_dim": Option(SIZE), "output_dim": Option(SIZE)}, ("embeddings",), _embedding_weights,
                    lambda node, ins: [ins[0] + (node.options["output_dim"],)], mask="drops"),
    "mask_not_equal": Op("A boolean mask ``x != value`` (``reduce``: ``any`` over the last axis).",
                         {"value": Option(NUMBER, 0), "reduce": Option(BOOL, False)},
                         shape=lambda node, ins: [ins[0][:-1] if node.options["reduce"] else ins[0]], mask="makes"),
    "mask_and": Op("The logical and of its input masks.", mask="makes", io=_io(()), mask_input=lambda o, k: True),
    "mask_or": Op("The logical or of its input masks (Keras 3's mask of a merge of differently masked inputs: "
                  "keras/src/layers/merging/base_merge.py and concatenate.py ``compute_mask``).", mask="makes",
                  io=_io(()), mask_input=lambda o, k: True),
    "mask_concat": Op("The masks of sequences joined on the time axis, concatenated over it (Keras' mask of a "
                      "Concatenate(axis=1) of masked sequences, keras/src/layers/merging/concatenate.py and tf_keras' "
                      "``compute_mask``: each input's mask beside the next, in order).", mask="makes", io=_io(()),
                      shape=lambda node, ins: [(sum(s[0] for s in ins),) if all(
                          s is not None and len(s) == 1 and s[0] is not None for s in ins) else None],
                      mask_input=lambda o, k: True),
    "mask_lengths": Op("A (batch, time) boolean mask ``arange(time) < lengths[:, None]`` from inputs ``[lengths, x]``: "
                       "``lengths`` (batch,) integers, ``time`` the second axis of ``x`` (batch, time, ...); what ONNX "
                       "LSTM/GRU/RNN ``sequence_lens`` means (a length past ``time`` keeps every step, one below 1 "
                       "none; onnxruntime refuses both at run time).",
                       shape=lambda node, ins: [None if ins[1] is None else tuple(ins[1][:1])], mask="makes",
                       io=_io((2,))),
    "masking": Op("Keras Masking's output ``x * mask[..., None]``; its mask is ``mask``. Inputs ``[x]`` "
                  "or ``[x, mask]``.", {"mask_value": Option(NUMBER, 0.0)}, mask="consumes", io=_io((1, 2)),
                  mask_input=_second),
    "repeat_vector": Op("Keras RepeatVector: ``(batch, n, features)`` from ``(batch, features)``.",
                        {"n": Option(SIZE)}, shape=lambda node, ins: [(node.options["n"],) + ins[0]], mask="drops",
                        input_shape=lambda node: (1, None)),
    "concatenate": Op("Keras Concatenate along ``axis`` (Keras' axis, batch included, may be negative).",
                      {"axis": Option(AXIS, -1, stored=True)}, shape=_concatenate_shape, mask="merges", io=_io(())),
    "add": Op(_MERGE_DOC.format(cls="Add", what="sum"), mask="merges", io=_io(())),
    "subtract": Op("Keras Subtract: ``x0 - x1``.", mask="merges", io=_io((2,))),
    "multiply": Op(_MERGE_DOC.format(cls="Multiply", what="product"), mask="merges", io=_io(())),
    "average": Op(_MERGE_DOC.format(cls="Average", what="mean"), mask="merges", io=_io(())),
    "maximum": Op(_MERGE_DOC.format(cls="Maximum", what="maximum"), mask="merges", io=_io(())),
    "minimum": Op(_MERGE_DOC.format(cls="Minimum", what="minimum"), mask="merges", io=_io(())),
    "activation": Op("Keras Activation: ``activation`` (a name from converters.activations).",
                     {"activation": Option(ACTIVATION, "linear", stored=True)}),
    "identity": Op("Dropout and friends at inference: the input unchanged."),
    "flatten": Op("Keras Flatten: ``(batch, -1)``.",
                  shape=lambda node, ins: [(None if None in ins[0] else math.prod(ins[0]),)], mask="drops"),
    "reshape": Op("Keras Reshape to ``shape`` (without batch, may hold one ``-1``).",
                  {"shape": Option(TARGET_SHAPE)}, shape=_reshape_shape, mask="drops"),
    "batch_norm": Op("Keras BatchNormalization at inference on ``axis``: "
                     "``(x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta`` (each optional).",
                     {"epsilon": Option(NON_NEGATIVE, 1e-3), "axis": Option(AXIS, -1)},
                     ("gamma", "beta", "moving_mean", "moving_variance"), _batch_norm_weights),
    "conv1d": Op("Keras Conv1D, channels last, ``padding`` valid|same|causal; weights ``weight (filters, in / "
                 "groups, k)``, ``bias``. DepthwiseConv1D is ``groups = in``; SeparableConv1D a depthwise node "
                 "``<name>/depthwise`` then a kernel-1 node ``<name>``.",
                 {"filters": Option(SIZE), "kernel_size": Option(SIZE), "strides": Option(SIZE, 1),
                  "dilation_rate": Option(SIZE, 1), "groups": Option(SIZE, 1),
                  "padding": Option(one_of("valid", "same", "causal"), "valid"),
                  "activation": Option(ACTIVATION, "linear"), "use_bias": Option(BOOL, True)},
                 ("weight", "bias"), _conv1d_weights, _conv1d_shape, mask="drops",
                 input_shape=lambda node: (2, int(node.weights["weight"].shape[1]) * int(node.options["groups"]))),
    "relu": Op("Keras ReLU/LeakyReLU: ``clip(x * (x > t), 0, max) - negative_slope * relu(t - x)`` "
               "(keras/src/activations), ``max_value`` None for no clip.",
               {"negative_slope": Option(NON_NEGATIVE, 0.0, stored=True),
                "max_value": Option(OPTIONAL_NON_NEGATIVE, None),
                "threshold": Option(NON_NEGATIVE, 0.0, stored=True)}),
    "elu": Op("Keras ELU: ``x if x > 0 else alpha * (exp(x) - 1)``.", {"alpha": Option(FINITE, 1.0)}),
    "prelu": Op("Keras PReLU: ``relu(x) - alpha * relu(-x)``; weights ``alpha`` (input shape, 1 on "
                "``shared_axes``).", {"shared_axes": Option(SHARED_AXES, [])}, ("alpha",)),
    "global_pool": Op("Keras GlobalMax/AveragePooling1D: ``mode`` max|average over time, ``axis`` 1 "
                      "(channels_last) or 2 (channels_first); an ``average`` with a ``mask`` leaves masked "
                      "steps out of the sum and the count.",
                      {"mode": Option(POOL_MODE), "axis": Option(int_range(1, 2), 1, stored=True),
                       "keepdims": Option(BOOL, False)}, shape=_global_pool_shape, mask="consumes", input_shape=_time_input),
    "pool1d": Op("Keras Max/AveragePooling1D: ``mode`` max|average, ``pool_size``, ``strides`` (default "
                 "pool_size), ``padding`` valid|same; ``same`` pads as TensorFlow (the odd step at the end) "
                 "and leaves padding out of max and mean.",
                 {"mode": Option(POOL_MODE), "pool_size": Option(SIZE),
                  "strides": Option(SIZE, lambda o: o["pool_size"]),
                  "padding": Option(one_of("valid", "same"), "valid")},
                 shape=_time_shape(lambda t, o: _steps(t, o["pool_size"], o["strides"], o["padding"])),
                 mask="drops", input_shape=_time_input),
    "permute": Op("Keras Permute: ``dims`` (Keras' 1-based axes without batch).", {"dims": Option(DIMS)},
                  shape=lambda node, ins: [tuple(ins[0][d - 1] for d in node.options["dims"])], mask="drops",
                  input_shape=lambda node: (len(node.options["dims"]), None)),
    "layer_norm": Op("Keras LayerNormalization over ``axes`` (negative, the trailing axes): "
                     "``(x - mean) / sqrt(var + epsilon) * gamma + beta``, ``gamma``, ``beta`` optional.",
                     {"axes": Option(AXES), "epsilon": Option(NON_NEGATIVE, 1e-3)}, ("gamma", "beta")),
    "unit_norm": Op("Keras UnitNormalization over ``axes``: ``x * min(1 / sqrt(sum(x^2)), 1e12)``.",
                    {"axes": Option(AXES)}),
    "crop1d": Op("Keras Cropping1D: ``cropping [left, right]`` time steps dropped.", {"cropping": Option(PAIR)},
                 shape=_time_shape(lambda t, o: t - sum(o["cropping"])), mask="drops",
                 input_shape=_time_input),
    "zero_pad1d": Op("Keras ZeroPadding1D: ``padding [left, right]`` zero time steps added.",
                     {"padding": Option(PAIR)}, shape=_time_shape(lambda t, o: t + sum(o["padding"])), mask="drops",
                     input_shape=_time_input),
    "upsample1d": Op("Keras UpSampling1D: each time step repeated ``size`` times.", {"size": Option(SIZE)},
                     shape=_time_shape(lambda t, o: t * o["size"]), mask="drops",
                     input_shape=_time_input),
    "fold_time": Op("TimeDistributed's folding of the outer time axis into the batch: ``(batch, outer, *rest)`` -> "
                    "``(batch * outer, *rest)`` (a wrapped Conv1D, pooling ... then sees each outer step as a sample).",
                    shape=lambda node, ins: [ins[0][1:]], mask="drops", input_shape=lambda node: (0, None)),
    "unfold_time": Op("The inverse of fold_time: inputs ``[y, x]`` with ``y (batch * outer, *rest)`` and ``x`` the "
                      "fold_time's input ``(batch, outer, ...)``; output ``(batch, outer, *rest)`` (the batch and "
                      "outer sizes read from ``x``'s shape at run time).",
                      shape=lambda node, ins: [((ins[1][0] if ins[1] else None),) + tuple(ins[0])], mask="drops",
                      io=_io((2,))),
    "attention": Op("Keras Attention (``score_mode`` dot|concat) / AdditiveAttention (``additive``); inputs by "
                    "``roles`` (query, value, key, query_mask, value_mask); weights ``scale`` (``()``, additive "
                    "``(dim,)``), ``concat_score_weight`` ``()``; outputs ``[y]`` or ``[y, scores]``.",
                    {"score_mode": Option(one_of("dot", "concat", "additive"), "dot"), "causal": Option(BOOL, False),
                     "return_scores": Option(BOOL, False), "roles": Option(ROLE_LIST, ["query", "value"])},
                    shape=_attention_shape, mask="inputs", io=_roles_io, mask_input=_mask_role),
    "multi_head_attention": Op("Keras MultiHeadAttention over time: inputs by ``roles`` (query, value, key, "
                               "masks); outputs ``[y]`` or ``[y, scores (heads, t, s)]``.",
                               {"num_heads": Option(SIZE), "key_dim": Option(SIZE), "value_dim": Option(SIZE, ABSENT),
                                "output_dim": Option(SIZE), "use_bias": Option(BOOL, True),
                                "causal": Option(BOOL, False), "return_scores": Option(BOOL, False),
                                "masked_rows": Option(one_of("zero", "uniform"), "uniform"),
                                "roles": Option(ROLE_LIST, ["query", "value"])},
                               shape=_attention_shape, mask="inputs", io=_roles_io, mask_input=_mask_role,
                               bool_data=_attention_mask_role),
    "dot": Op("Keras Dot of two tensors over ``axes`` (batch included; ``normalize``: l2 first, "
              "``max_inv_norm`` caps 1 / norm).",
              {"axes": Option(AXIS_PAIR), "normalize": Option(BOOL, False), "max_inv_norm": Option(POSITIVE, 1e7)},
              shape=_dot_shape, mask="drops", io=_io((2,))),
    "masked_softmax": Op("Keras Softmax over the last axis of a (batch, time) input with a mask input: masked "
                         "entries -1e9 (``zero_masked``: zeroed after, as Keras 3).",
                         {"zero_masked": Option(BOOL, False)}, mask="inputs", io=_io((2,)),
                         mask_input=_second),
}

#: conv_lstm (reference_conv_lstm.py): a kernel/stride/dilation list, one entry per spatial axis.
SIZES = Type(lambda v: isinstance(v, list) and 1 <= len(v) <= 2 and all(is_int(d) and 1 <= d <= MAX_SIZE for d in v),
             f"1 or 2 integers from 1 to {MAX_SIZE}", _int_list(1, MAX_SIZE, 1, 2))


def _conv_lstm_weights(o: dict, dim) -> tuple[dict, set]:
    gates, k = 4 * o["filters"], list(o["kernel_size"])
    return ({"kernel": [gates, dim("kernel", 1), *k], "recurrent_kernel": [gates, o["filters"], *k],
             "bias": [gates]}, {"kernel", "recurrent_kernel"})


def conv_lstm_sizes(o: dict, sizes: tuple) -> tuple:
    """The spatial sizes of a conv_lstm's states and outputs for input ``sizes`` (None stays None)."""
    return tuple(_steps(n, d * (k - 1) + 1, s, o["padding"])
                 for n, k, s, d in zip(sizes, o["kernel_size"], o["strides"], o["dilation_rate"]))


def conv_lstm_shapes(node, ins: list) -> list:
    """``[y, h, c]`` without batch: y ``(time, *sizes, filters)`` or ``(*sizes, filters)``."""
    x, o = ins[0], node.options
    state = (*conv_lstm_sizes(o, tuple(x[1:-1])), o["filters"])
    y = (x[0], *state) if o["return_sequences"] else state
    return [y, state, state][:len(node.outputs)]


OPS["conv_lstm"] = Op(
    "Keras ConvLSTM1D/2D, channels last (``rank`` 1|2 spatial axes): per step ``z = conv(x_t, kernel) + bias + "
    "conv(h, recurrent_kernel; stride 1, same)``, gates i, f, c, o as LSTM; weights ``kernel (4 filters, in, "
    "*kernel_size)``, ``recurrent_kernel (4 filters, filters, *kernel_size)``, ``bias``; inputs ``[x]`` or "
    "``[x, h0, c0]``; outputs ``[y]`` or ``[y, h, c]``.",
    {"rank": Option(int_range(1, 2)), "filters": Option(SIZE), "kernel_size": Option(SIZES),
     "strides": Option(SIZES), "dilation_rate": Option(SIZES), "padding": Option(one_of("valid", "same"), "valid"),
     "activation": Option(ACTIVATION, "tanh", stored=True),
     "recurrent_activation": Option(ACTIVATION, "sigmoid", stored=True), "use_bias": Option(BOOL, True),
     "go_backwards": Option(BOOL, False), "return_sequences": Option(BOOL, False), "return_state": Option(BOOL, False)},
    ("kernel", "recurrent_kernel", "bias"), _conv_lstm_weights, conv_lstm_shapes, mask="drops",
    io=lambda o: ((1, 3), ((1, 3) if "return_state" not in o else (3,) if o["return_state"] else (1,))))



# -- 2-D / 3-D convolution and 2-D pooling (Keras Conv2D, Conv3D, Max/AveragePooling2D), channels last -----------
#: a (height, width) kernel / stride / dilation / pool size
SIZE_PAIR = Type(lambda v: isinstance(v, list) and len(v) == 2 and all(is_int(d) and 1 <= d <= MAX_SIZE for d in v),
                 f"2 integers from 1 to {MAX_SIZE}", _int_list(1, MAX_SIZE, 2, 2))
#: a (depth, height, width) kernel / stride / dilation
SIZE_TRIPLE = Type(lambda v: isinstance(v, list) and len(v) == 3 and all(is_int(d) and 1 <= d <= MAX_SIZE for d in v),
                   f"3 integers from 1 to {MAX_SIZE}", _int_list(1, MAX_SIZE, 3, 3))


def window_sizes(sizes: tuple, kernel, strides, dilation, padding: str) -> tuple:
    """Output spatial sizes of a window op (one per kernel axis) on input ``sizes`` (None stays None):
    TensorFlow's rule."""
    return tuple(_steps(n, d * (k - 1) + 1, s, padding) for n, k, s, d in zip(sizes, kernel, strides, dilation))


def _conv_shape(node, ins: list) -> list:
    o, x = node.options, ins[0]
    rank = len(o["kernel_size"])
    return [(*window_sizes(tuple(x[:rank]), o["kernel_size"], o["strides"], o["dilation_rate"], o["padding"]),
             o["filters"])]


def _pool2d_shape(node, ins: list) -> list:
    o, x = node.options, ins[0]
    return [(*window_sizes(tuple(x[:2]), o["pool_size"], o["strides"], (1, 1), o["padding"]), x[2])]


def _conv_weights(o: dict, dim) -> tuple[dict, set]:
    return {"weight": [o["filters"], dim("weight", 1), *o["kernel_size"]], "bias": [o["filters"]]}, {"weight"}


def _conv_op(rank: int, layout: str, odd: str, kernel: str) -> Op:
    """conv2d / conv3d: one table row per spatial rank, the same options on ``rank`` axes."""
    sizes = SIZE_PAIR if rank == 2 else SIZE_TRIPLE
    return Op(
        f"Keras Conv{rank}D, channels last ``(batch, {layout}, channels)``: ``padding`` valid|same (TensorFlow's "
        f"'same': the odd {odd} at the end), ``strides``, ``dilation_rate``, ``groups`` (consecutive blocks of "
        f"channels and filters); weights ``weight (filters, in / groups, {kernel})`` (nn.Conv{rank}d's), ``bias``.",
        {"filters": Option(SIZE), "kernel_size": Option(sizes), "strides": Option(sizes, [1] * rank),
         "dilation_rate": Option(sizes, [1] * rank), "groups": Option(SIZE, 1),
         "padding": Option(one_of("valid", "same"), "valid"), "activation": Option(ACTIVATION, "linear"),
         "use_bias": Option(BOOL, True)},
        ("weight", "bias"), _conv_weights, _conv_shape, mask="drops",
        input_shape=lambda node: (rank + 1, int(node.weights["weight"].shape[1]) * int(node.options["groups"])))


OPS["conv2d"] = _conv_op(2, "height, width", "row/column", "kh, kw")
OPS["conv3d"] = _conv_op(3, "depth, height, width", "frame/row/column", "kd, kh, kw")
OPS["pool2d"] = Op(
    "Keras Max/AveragePooling2D, channels last: ``mode`` max|average, ``pool_size``, ``strides`` (default "
    "pool_size), ``padding`` valid|same; ``same`` pads as TensorFlow (the odd row/column at the end) and leaves "
    "the padding out of max and mean.",
    {"mode": Option(POOL_MODE), "pool_size": Option(SIZE_PAIR), "strides": Option(SIZE_PAIR, lambda o: list(o["pool_size"])),
     "padding": Option(one_of("valid", "same"), "valid")},
    shape=_pool2d_shape, mask="drops", input_shape=lambda node: (3, None))

#: ZeroPadding2D's rows and columns added: [top, bottom, left, right]
EDGES = Type(lambda v: isinstance(v, list) and len(v) == 4 and all(is_int(d) and 0 <= d <= MAX_SIZE for d in v),
             f"4 integers from 0 to {MAX_SIZE} (top, bottom, left, right)", _int_list(0, MAX_SIZE, 4, 4))


def _zero_pad2d_shape(node, ins: list) -> list:
    x, (top, bottom, left, right) = ins[0], node.options["padding"]
    return [(None if x[0] is None else x[0] + top + bottom, None if x[1] is None else x[1] + left + right, x[2])]


OPS["zero_pad2d"] = Op("Keras ZeroPadding2D, channels last: ``padding [top, bottom, left, right]`` zero rows and "
                       "columns added.", {"padding": Option(EDGES)}, shape=_zero_pad2d_shape, mask="drops",
                       input_shape=lambda node: (3, None))


# -- TensorFlow / Keras 3 ops in functional models (converters/readers/keras_tf_ops.py) ----------------
KERAS_AXIS = int_range(1, MAX_RANK)
OPTIONAL_INDEX = Type(lambda v: v is None or (is_int(v) and -MAX_SIZE <= v <= MAX_SIZE),
                      f"null or an integer from {-MAX_SIZE} to {MAX_SIZE}",
                      {"type": ["integer", "null"], "minimum": -MAX_SIZE, "maximum": MAX_SIZE})
INDEX = int_range(-MAX_SIZE, MAX_SIZE)
STEP = Type(lambda v: is_int(v) and (v == -1 or 1 <= v <= MAX_SIZE), f"-1 or an integer from 1 to {MAX_SIZE}",
            {"type": "integer", "minimum": -1, "maximum": MAX_SIZE, "not": {"const": 0}})
KERAS_AXES = Type(lambda v: isinstance(v, list) and 1 <= len(v) <= MAX_RANK and all(is_int(d) for d in v)
                  and v == sorted(set(v)) and v[0] >= 1 and v[-1] <= MAX_RANK,
                  "increasing axes from 1 (Keras' axes, batch included)",
                  _int_list(1, MAX_RANK, 1, uniqueItems=True))
ELEMENTWISE = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power")


def _slice_len(d, o: dict):
    """How many entries of a dimension of size ``d`` (None: unknown) a slice keeps."""
    if d is None:
        return None
    return len(range(d)[slice(o.get("start"), o.get("stop"), o["step"])])


def _sample_index(x: tuple, axis: int) -> int:
    """Keras axis ``axis`` (batch included) as an index of the sample shape ``x`` (ValueError past its rank)."""
    if not 1 <= axis <= len(x):
        raise ValueError(f"axis {axis} of a tensor of rank {len(x) + 1}")
    return axis - 1


def _slice_shape(node, ins: list) -> list:
    x, o = ins[0], node.options
    a = _sample_index(x, o["axis"])
    if o.get("index") is not None:
        return [x[:a] + x[a + 1:]]
    return [x[:a] + (_slice_len(x[a], o),) + x[a + 1:]]


def _reduce_shape(node, ins: list) -> list:
    x, o = ins[0], node.options
    axes = {_sample_index(x, a) for a in o["axes"]}
    if o["keepdims"]:
        return [tuple(1 if i in axes else d for i, d in enumerate(x))]
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def _broadcast_shape(node, ins: list) -> list:
    a, b = ins[0], ins[1] if len(ins) > 1 else None
    if b is None or len(a) != len(b):
        return [None if b is None else a]
    return [tuple(q if p == 1 else p if q == 1 else p if p is not None else q for p, q in zip(a, b))]


OPS.update({
    "slice": Op("``x[..., start:stop:step, ...]`` on Keras axis ``axis`` (batch included, >= 1), Python's "
                "rules for negative and out-of-range bounds; ``step`` -1 only with no start and stop (a "
                "reversal); with ``index`` the one entry ``index`` (negative from the end), axis dropped.",
                {"axis": Option(KERAS_AXIS), "start": Option(OPTIONAL_INDEX, None), "stop": Option(OPTIONAL_INDEX, None),
                 "step": Option(STEP, 1), "index": Option(OPTIONAL_INDEX, None)},
                shape=_slice_shape, mask="drops"),
    "reduce": Op("The ``mode`` (mean|sum|max|min) of ``x`` over Keras ``axes`` (batch included, >= 1); "
                 "``keepdims`` keeps them as size 1.",
                 {"mode": Option(one_of("mean", "sum", "max", "min")), "axes": Option(KERAS_AXES),
                  "keepdims": Option(BOOL, False)}, shape=_reduce_shape, mask="drops"),
    "scalar": Op("``x <operation> value`` element-wise (``reverse``: ``value <operation> x``); operations "
                 + ", ".join(ELEMENTWISE) + " (``x ** value`` for power).",
                 {"operation": Option(one_of(*ELEMENTWISE)), "value": Option(FINITE),
                  "reverse": Option(BOOL, False)}, mask="drops"),
    "binary": Op("``x0 <operation> x1`` element-wise with numpy broadcasting of inputs of one rank (a size-1 "
                 "axis against any); operations " + ", ".join(ELEMENTWISE) + ".",
                 {"operation": Option(one_of(*ELEMENTWISE))}, shape=_broadcast_shape, mask="drops", io=_io((2,))),
})

# -- normalization and scaling layers (Keras Normalization, Rescaling, RMSNormalization, GroupNormalization) --
def _given_shape(dim, key: str) -> list:
    """The shape of the stored array ``key`` (its own: the reader checked it against the input)."""
    shape: list = []
    while len(shape) <= MAX_RANK and dim(key, len(shape)) is not None:
        shape.append(dim(key, len(shape)))
    return shape


def _normalization_weights(o: dict, dim) -> tuple[dict, set]:
    shape = _given_shape(dim, "mean")
    return {"mean": shape, "variance": shape}, {"mean", "variance"}


def _rescaling_weights(o: dict, dim) -> tuple[dict, set]:
    return {k: _given_shape(dim, k) for k in ("scale", "offset")}, {"scale", "offset"}


def _group_norm_weights(o: dict, dim) -> tuple[dict, set]:
    n = dim("gamma", 0) if dim("gamma", 0) is not None else dim("beta", 0)
    return {"gamma": [n], "beta": [n]}, set()


def _normalization_input(node) -> tuple[int, int | None]:
    mean = node.weights["mean"].shape
    return len(mean), (int(mean[-1]) if mean and mean[-1] != 1 else None)


OPS.update({
    "normalization": Op("Keras Normalization (preprocessing): ``(x - mean) / max(sqrt(variance), epsilon)``, with "
                        "``invert`` ``mean + x * max(sqrt(variance), epsilon)`` (epsilon: Keras' backend.epsilon()); "
                        "weights ``mean``, ``variance`` shaped like one sample, 1 on the reduced axes.",
                        {"invert": Option(BOOL, False), "epsilon": Option(NON_NEGATIVE, 1e-7, stored=True)},
                        ("mean", "variance"), _normalization_weights, input_shape=_normalization_input),
    "rescaling": Op("Keras Rescaling: ``x * scale + offset``; weights ``scale``, ``offset`` broadcast against one "
                    "sample from the right (shape (1,) for a scalar).", {}, ("scale", "offset"), _rescaling_weights),
    "rms_norm": Op("Keras RMSNormalization over ``axes`` (negative, the trailing axes): ``x * rsqrt(mean(x^2) + "
                   "epsilon) * scale``; ``centered`` (LayerNormalization(rms_scaling=True)) uses the variance "
                   "``mean((x - mean(x))^2)`` instead of ``mean(x^2)``; weight ``scale`` optional.",
                   {"axes": Option(AXES), "epsilon": Option(NON_NEGATIVE, 1e-6, stored=True),
                    "centered": Option(BOOL, False)}, ("scale",)),
    "group_norm": Op("Keras GroupNormalization on the last axis of ``(batch, channels)`` or ``(batch, time, "
                     "channels)``: the channels split into ``groups`` consecutive blocks, each normalized over its "
                     "channels and every step, ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` (each optional).",
                     {"groups": Option(SIZE), "epsilon": Option(NON_NEGATIVE, 1e-3, stored=True)},
                     ("gamma", "beta"), _group_norm_weights),
})


# -- transposed convolution (Keras Conv1DTranspose) ------------------------------------------------
OPTIONAL_DIM = Type(lambda v: v is None or (is_int(v) and 0 <= v <= MAX_SIZE), f"null or an integer from 0 to {MAX_SIZE}",
                    {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SIZE})


def conv1d_transpose_edges(o: dict) -> tuple[int, int]:
    """``(before, after)``: the output is the full transposed convolution ``full[before : len(full) + after]``
    (``after`` > 0: that many zero steps appended), as TensorFlow crops and pads for Keras' output length
    (keras/src/backend/common/backend_utils.py ``_get_output_shape_given_tf_padding``)."""
    k, s, p = (o["kernel_size"] - 1) * o["dilation_rate"] + 1, o["strides"], o["output_padding"]
    if o["padding"] == "valid":
        return 0, (max(k, s) - k if p is None else p)
    if p is None:
        before = max(k - s, 0) // 2
        return before, s - k + before
    before = max(k - k % 2 - p, 0) // 2
    return before, k % 2 + p - k + before


def _conv1d_transpose_shape(node, ins: list) -> list:
    o, t = node.options, ins[0][0] if len(ins[0]) >= 2 else None
    before, after = conv1d_transpose_edges(o)
    full = None if t is None else (t - 1) * o["strides"] + (o["kernel_size"] - 1) * o["dilation_rate"] + 1
    return [(None if full is None else full - before + after, o["filters"])]


def _conv1d_transpose_weights(o: dict, dim) -> tuple[dict, set]:
    return {"weight": [dim("weight", 0), o["filters"], o["kernel_size"]], "bias": [o["filters"]]}, {"weight"}


OPS["conv1d_transpose"] = Op(
    "Keras Conv1DTranspose, channels last: ``full[t * strides + j * dilation_rate] += x[t] @ weight[:, :, j]``, "
    "then ``full[before : len(full) + after]`` (conv1d_transpose_edges: TensorFlow's crop for ``padding`` "
    "valid|same and ``output_padding``), ``+ bias``, ``activation``; weights ``weight (in, filters, k)`` "
    "(nn.ConvTranspose1d's), ``bias``.",
    {"filters": Option(SIZE), "kernel_size": Option(SIZE), "strides": Option(SIZE, 1), "dilation_rate": Option(SIZE, 1),
     "padding": Option(one_of("valid", "same"), "valid"), "output_padding": Option(OPTIONAL_DIM, None),
     "activation": Option(ACTIVATION, "linear"), "use_bias": Option(BOOL, True)},
    ("weight", "bias"), _conv1d_transpose_weights, _conv1d_transpose_shape, mask="drops",
    input_shape=lambda node: (2, int(node.weights["weight"].shape[0])))


def row(op: str) -> Op:
    """The row of ``op`` (KeyError for an op the table does not know)."""
    return OPS[op]


def normalized_options(op: str, options: dict) -> dict[str, Any]:
    """Fill the defaults ``options`` (of a node of ``op``) lacks, in place; returns a copy of what it filled."""
    spec = OPS.get(op)
    if spec is None:
        return {}
    filled = {}
    for key, opt in spec.options.items():
        if key in options or opt.default is REQUIRED or opt.default is ABSENT:
            continue
        if callable(opt.default):
            try:
                options[key] = opt.default(options)
            except (KeyError, TypeError):
                continue  # what it derives from is missing: the manifest check names that
        else:
            options[key] = copy.deepcopy(opt.default)
        filled[key] = copy.deepcopy(options[key])
    return filled


def merge_modes_text() -> str:
    return ", ".join("None" if m is None else m for m in MERGE_MODES)
