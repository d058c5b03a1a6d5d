"""A ``.gates`` manifest checked before anything uses it, without jsonschema at runtime.

:func:`check` applies the rules of ``schemas/ir-manifest.schema.json`` by hand (the tests keep the
two in agreement) and is stricter where JSON Schema cannot be: an integer is a JSON integer
(``4.0`` is refused), a number with a range is finite. :func:`check_graph` and
:func:`check_weights` add what a schema cannot say: every tensor a node reads exists before it,
names are unique, and the weights the manifest lists are exactly the file's tensors, with their
shapes and dtypes, and agree with ``units``, ``input_size`` and the other sizes of the options.
Every failure is one :class:`~converters.errors.FormatError`:
``<file>: manifest nodes[3].options.units: expected an integer from 1 to 2147483647, found '4.0'``.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from .errors import FormatError
from .gates import GATES
from .activations import NUMPY
from .ir import DIRECTIONS, GATE_PARTS, RECURRENT_OPS
from .sanitize import quote

FORMAT, VERSION = "gateport-ir", 1
MAX_NAME, MAX_SIZE, MAX_RANK, MAX_ITEMS, MAX_NODES = 4096, 2**31 - 1, 32, 10000, 100000
ACTIVATIONS = tuple(NUMPY)  # converters/activations.py
OPS = ("lstm", "gru", "simple_rnn", "dense", "embedding", "mask_not_equal", "mask_and", "masking", "repeat_vector",
       "concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum", "activation", "identity",
       "flatten", "reshape", "batch_norm", "conv1d", "relu", "elu", "prelu", "global_pool", "pool1d", "permute",
       "layer_norm", "unit_norm", "crop1d", "zero_pad1d", "upsample1d")
#: ops on a (batch, time, features) tensor
TIME_OPS = ("global_pool", "pool1d", "crop1d", "zero_pad1d", "upsample1d")
WEIGHT_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "bool")
INPUT_DTYPES = ("float32", "int64")
_RECURRENT_WEIGHT = re.compile(r"(forward|backward)\.(input|forget|cell|output|update|reset|candidate|hidden)\."
                               r"(input_weights|recurrent_weights|input_bias|recurrent_bias)")

Rule = tuple[Callable[[Any], bool], str]


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _one_of(*choices) -> Rule:
    return (lambda v: (v is None or isinstance(v, str)) and v in choices,
            "one of " + ", ".join("null" if c is None else c for c in choices))


def _int_range(lo: int, hi: int) -> Rule:
    return (lambda v: _is_int(v) and lo <= v <= hi), f"an integer from {lo} to {hi}"


SIZE = _int_range(1, MAX_SIZE)
DIM = _int_range(0, MAX_SIZE)
AXIS = _int_range(-33, 32)
BOOL: Rule = (lambda v: isinstance(v, bool), "true or false")
NUMBER: Rule = (_is_number, "a number")
EPSILON: Rule = (lambda v: _is_number(v) and math.isfinite(v) and v >= 0, "a finite number >= 0")
ACTIVATION = _one_of(*ACTIVATIONS)
TARGET_SHAPE: Rule = (lambda v: isinstance(v, list) and len(v) <= MAX_RANK
                      and all(_is_int(d) and -1 <= d <= MAX_SIZE for d in v),
                      f"a list of at most {MAX_RANK} integers from -1 to {MAX_SIZE}")

FINITE: Rule = (lambda v: _is_number(v) and math.isfinite(v), "a finite number")
NON_NEGATIVE: Rule = (lambda v: _is_number(v) and math.isfinite(v) and v >= 0, "a finite number >= 0")
PAIR: Rule = (lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(d) and 0 <= d <= MAX_SIZE for d in v),
              f"two integers from 0 to {MAX_SIZE}")
AXES: Rule = (lambda v: isinstance(v, list) and 1 <= len(v) <= MAX_RANK and v == list(range(-len(v), 0)),
              "the last axes as a list of negative integers, e.g. [-2, -1]")
DIMS: Rule = (lambda v: isinstance(v, list) and 1 <= len(v) <= MAX_RANK and all(_is_int(d) for d in v)
              and sorted(v) == list(range(1, len(v) + 1)), "a permutation of 1..n")
SHARED_AXES: Rule = (lambda v: isinstance(v, list) and len(v) <= MAX_RANK and all(_is_int(d) and 1 <= d <= MAX_RANK
                                                                                for d in v), "a list of axes >= 1")
POOL_MODE = _one_of("max", "average")

_RECURRENT_RULES = {
    "units": SIZE, "input_size": SIZE, "activation": ACTIVATION, "recurrent_activation": ACTIVATION,
    "reset_after": BOOL, "use_bias": BOOL, "go_backwards": BOOL, "return_sequences": BOOL, "return_state": BOOL,
    "bidirectional": BOOL, "merge_mode": _one_of("concat", "sum", "mul", "ave", None), "zero_output_for_mask": BOOL,
    "stateful": BOOL,
}
_RECURRENT_REQUIRED = ("units", "input_size", "activation", "use_bias", "go_backwards", "return_sequences",
                       "return_state", "bidirectional")
#: op -> (required option keys, rules of the option keys it types); other keys are free.
OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Rule]]] = {
    "lstm": (_RECURRENT_REQUIRED + ("recurrent_activation",), _RECURRENT_RULES),
    "gru": (_RECURRENT_REQUIRED + ("recurrent_activation", "reset_after"), _RECURRENT_RULES),
    "simple_rnn": (_RECURRENT_REQUIRED, _RECURRENT_RULES),
    "dense": (("units",), {"units": SIZE, "activation": ACTIVATION, "use_bias": BOOL}),
    "embedding": (("input_dim", "output_dim"), {"input_dim": SIZE, "output_dim": SIZE}),
    "repeat_vector": (("n",), {"n": SIZE}),
    "concatenate": (("axis",), {"axis": AXIS}),
    "activation": (("activation",), {"activation": ACTIVATION}),
    "reshape": (("shape",), {"shape": TARGET_SHAPE}),
    "mask_not_equal": ((), {"value": NUMBER, "reduce": BOOL}),
    "masking": ((), {"mask_value": NUMBER}),
    "batch_norm": ((), {"epsilon": EPSILON, "axis": AXIS}),
    "relu": (("negative_slope", "threshold"), {"negative_slope": NON_NEGATIVE, "threshold": NON_NEGATIVE,
                                                "max_value": (lambda v: v is None or NON_NEGATIVE[0](v),
                                                              "null or a finite number >= 0")}),
    "elu": ((), {"alpha": FINITE}),
    "prelu": ((), {"shared_axes": SHARED_AXES}),
    "global_pool": (("mode", "axis"), {"mode": POOL_MODE, "axis": _int_range(1, 2), "keepdims": BOOL}),
    "pool1d": (("mode", "pool_size"), {"mode": POOL_MODE, "pool_size": SIZE, "strides": SIZE,
                                       "padding": _one_of("valid", "same")}),
    "permute": (("dims",), {"dims": DIMS}),
    "layer_norm": (("axes",), {"axes": AXES, "epsilon": EPSILON}),
    "unit_norm": (("axes",), {"axes": AXES}),
    "crop1d": (("cropping",), {"cropping": PAIR}),
    "zero_pad1d": (("padding",), {"padding": PAIR}),
    "upsample1d": (("size",), {"size": SIZE}),
    "conv1d": (("filters", "kernel_size"), {
        "filters": SIZE, "kernel_size": SIZE, "strides": SIZE, "dilation_rate": SIZE, "groups": SIZE,
        "padding": _one_of("valid", "same", "causal"), "activation": ACTIVATION, "use_bias": BOOL}),
}


class _Checker:
    def __init__(self, file: str | None):
        self.file = file

    def fail(self, where: str, expected: str, value: object = None, found: str | None = None):
        shown = found if found is not None else _shown(value)
        place = f"manifest {where}".rstrip()
        raise FormatError(f"{place}: expected {expected}, found {shown}", file=self.file)

    def rule(self, value: object, where: str, rule: Rule) -> None:
        if not rule[0](value):
            self.fail(where, rule[1], value)

    def obj(self, value: object, where: str, required=(), allowed=None) -> dict:
        """An object with the ``required`` keys and, if ``allowed`` is given, no others."""
        if not isinstance(value, dict):
            self.fail(where, "an object", value)
        for key in required:
            if key not in value:
                self.fail(where, f"the key {quote(key)}", found="none")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.fail(where, f"only the keys {', '.join(allowed)}", found=quote(key))
        return value

    def array(self, value: object, where: str, item: Callable[[object, str], None], lo: int = 0,
              hi: int = MAX_ITEMS) -> list:
        if not isinstance(value, list) or not lo <= len(value) <= hi:
            self.fail(where, f"a list of {lo} to {hi} items", value)
        for i, v in enumerate(value):
            item(v, f"{where}[{i}]")
        return value

    def name(self, value: object, where: str, lo: int = 0) -> None:
        if not isinstance(value, str) or not lo <= len(value) <= MAX_NAME:
            self.fail(where, f"a string of {lo} to {MAX_NAME} characters", value)

    # -- the schema's definitions ----------------------------------------------------------
    def source(self, value: object, where: str) -> None:
        self.obj(value, where)
        for key, nullable in (("format", False), ("keras_version", True), ("backend", True), ("path", False)):
            if key in value and not (isinstance(value[key], str) or nullable and value[key] is None):
                self.fail(f"{where}.{key}", "a string" + (" or null" if nullable else ""), value[key])
        if "converted_from" in value:
            self.source(value["converted_from"], f"{where}.converted_from")

    def tensor_spec(self, value: object, where: str) -> None:
        self.obj(value, where, ("name", "shape", "dtype"), ("name", "shape", "dtype"))
        self.name(value["name"], f"{where}.name")
        self.array(value["shape"], f"{where}.shape",
                   lambda d, w: d is None or self.rule(d, w, (DIM[0], DIM[1] + " or null")), hi=MAX_RANK)
        self.rule(value["dtype"], f"{where}.dtype", _one_of(*INPUT_DTYPES))

    def weight(self, value: object, where: str) -> None:
        self.obj(value, where, ("shape", "dtype"), ("shape", "dtype"))
        self.array(value["shape"], f"{where}.shape", lambda d, w: self.rule(d, w, DIM), hi=MAX_RANK)
        self.rule(value["dtype"], f"{where}.dtype", _one_of(*WEIGHT_DTYPES))

    def node(self, value: object, where: str) -> None:
        keys = ("name", "op", "inputs", "outputs", "options", "weights")
        self.obj(value, where, keys, keys + ("mask", "source"))
        self.name(value["name"], f"{where}.name", lo=1)
        self.rule(value["op"], f"{where}.op", _one_of(*OPS))
        self.array(value["inputs"], f"{where}.inputs", self.name)
        self.array(value["outputs"], f"{where}.outputs", self.name, lo=1)
        if "mask" in value and value["mask"] is not None:
            self.name(value["mask"], f"{where}.mask")
        self.obj(value.get("source", {}), f"{where}.source")
        self.options(value["op"], value["options"], f"{where}.options")
        weights = self.obj(value["weights"], f"{where}.weights")
        if len(weights) > MAX_ITEMS:
            self.fail(f"{where}.weights", f"at most {MAX_ITEMS} weights", found=str(len(weights)))
        for key, w in weights.items():
            if len(key) > MAX_NAME:
                self.fail(f"{where}.weights", f"weight names of at most {MAX_NAME} characters", key)
            if value["op"] in RECURRENT_OPS and not _RECURRENT_WEIGHT.fullmatch(key):
                self.fail(f"{where}.weights", "names direction.gate.part", key)
            self.weight(w, f"{where}.weights[{quote(key)}]")

    def options(self, op: str, value: object, where: str) -> None:
        self.obj(value, where)
        required, rules = OPTIONS.get(op, ((), {}))
        self.obj(value, where, required)
        for key, rule in rules.items():
            if key in value:
                self.rule(value[key], f"{where}.{key}", rule)


def _shown(value: object) -> str:
    """A JSON value for a message: scalars quoted, containers by their type."""
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else f"a list of {len(value)} items"
    return quote(value)


def check(manifest: object, file: str | None = None) -> dict:
    """``manifest`` as the schema describes it, or a one-line FormatError naming the first misfit."""
    c = _Checker(file)
    keys = ("format", "version", "name", "inputs", "outputs", "nodes")
    c.obj(manifest, "", keys, keys + ("source",))
    if manifest["format"] != FORMAT or not _is_int(manifest["version"]) or manifest["version"] != VERSION:
        c.fail("", f"{FORMAT} version {VERSION}",
               found=f"{_shown(manifest['format'])} version {_shown(manifest['version'])}")
    c.name(manifest["name"], "name")
    if "source" in manifest:
        c.source(manifest["source"], "source")
    c.array(manifest["inputs"], "inputs", c.tensor_spec, lo=1)
    c.array(manifest["outputs"], "outputs", c.name, lo=1)
    c.array(manifest["nodes"], "nodes", c.node, hi=MAX_NODES)
    return manifest


#: ops reading one tensor (masking: x and maybe its mask); the merges read one or more (subtract two);
#: recurrent ops read x and maybe initial states.
_UNARY = ("dense", "embedding", "repeat_vector", "activation", "identity", "flatten", "reshape",
          "batch_norm", "conv1d", "mask_not_equal", *OPS[OPS.index("relu"):])
MASK_OPS = ("mask_not_equal", "mask_and")


def _arity(node: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input counts, output counts) ``node`` may have; an empty tuple for "one or more"."""
    op, o = node["op"], node["options"]
    if op in RECURRENT_OPS:
        dirs = 2 if o["bidirectional"] else 1
        states = (2 if op == "lstm" else 1) * dirs
        n_y = 2 if dirs == 2 and "merge_mode" in o and o["merge_mode"] is None else 1
        return (1, 1 + states), (n_y + (states if o["return_state"] else 0),)
    if op in _UNARY:
        return (1,), (1,)
    if op == "masking":
        return (1, 2), (1,)
    return ((2,) if op == "subtract" else ()), (1,)


def check_graph(manifest: dict, file: str | None = None) -> None:
    """Unique names; each node reads tensors made before it (masks only from mask_* nodes, data never
    from them) in the number its op takes; the model's outputs are made and are data."""
    c = _Checker(file)
    made: dict[str, bool] = {}  # tensor -> whether it is a mask
    for i, spec in enumerate(manifest["inputs"]):
        if spec["name"] in made:
            c.fail(f"inputs[{i}].name", "a name not used before", spec["name"])
        made[spec["name"]] = False
    names: set[str] = set()
    for i, node in enumerate(manifest["nodes"]):
        where = f"nodes[{i}]"
        if node["name"] in names:
            c.fail(f"{where}.name", "a node name not used before", node["name"])
        names.add(node["name"])
        ins, outs = _arity(node)
        if ins and len(node["inputs"]) not in ins or not node["inputs"]:
            c.fail(f"{where}.inputs", f"{' or '.join(map(str, ins)) or 'one or more'} inputs for {node['op']}",
                   found=str(len(node["inputs"])))
        if len(node["outputs"]) not in outs:
            c.fail(f"{where}.outputs", f"{outs[0]} outputs for {node['op']} with these options",
                   found=str(len(node["outputs"])))
        for k, t in enumerate(node["inputs"]):
            if t not in made:
                c.fail(f"{where}.inputs", "tensors made by an earlier node or model inputs", t)
            mask = node["op"] == "mask_and" or node["op"] == "masking" and k == 1
            if made[t] != mask:
                c.fail(f"{where}.inputs[{k}]", "a mask" if mask else "data, not a mask", t)
        if node.get("mask") is not None and not made.get(node["mask"], False):
            c.fail(f"{where}.mask", "a mask made by an earlier mask_* node", node["mask"])
        for t in node["outputs"]:
            if t in made:
                c.fail(f"{where}.outputs", "tensor names not made before", t)
            made[t] = node["op"] in MASK_OPS
    inputs = {spec["name"] for spec in manifest["inputs"]}
    for i, t in enumerate(manifest["outputs"]):
        if made.get(t, True) or t in inputs:
            c.fail(f"outputs[{i}]", "a data tensor some node makes", t)


def check_weights(manifest: dict, tensors: dict[str, tuple[tuple[int, ...], str]], file: str | None = None) -> None:
    """The manifest's weights are exactly ``tensors`` (``"<node>/<weight>" -> (shape, dtype)``) and fit the options."""
    c = _Checker(file)
    listed = set()
    for i, node in enumerate(manifest["nodes"]):
        for key, w in node["weights"].items():
            name = f"{node['name']}/{key}"
            listed.add(name)
            if name not in tensors:
                c.fail(f"nodes[{i}].weights", "tensors the file holds", name)
            if (tuple(w["shape"]), w["dtype"]) != tensors[name]:
                c.fail(f"nodes[{i}].weights[{quote(key)}]", f"the file's shape {list(tensors[name][0])} and dtype "
                       f"{tensors[name][1]}", found=f"{w['shape']} {quote(w['dtype'])}")
        _check_sizes(c, node, f"nodes[{i}]")
    extra = sorted(set(tensors) - listed)
    if extra:
        c.fail("nodes", "every tensor of the file listed as a weight", extra[0])


def _check_sizes(c: _Checker, node: dict, where: str) -> None:
    """Float weights of the shapes an op's options imply; the arrays the writers need are present."""
    o, op, weights = node["options"], node["op"], node["weights"]
    if op in RECURRENT_OPS:
        units, n_in = o["units"], o["input_size"]
        shapes = {"input_weights": [units, n_in], "recurrent_weights": [units, units],
                  "input_bias": [units], "recurrent_bias": [units]}
        directions = DIRECTIONS if o["bidirectional"] else DIRECTIONS[:1]
        wanted = {f"{d}.{g}.{p}": shapes[p] for d in directions for g in GATES[op] for p in GATE_PARTS}
        required = set(wanted)
    elif op == "dense":
        wanted, required = {"weight": [o["units"], _dim(node, "weight", 1)], "bias": [o["units"]]}, {"weight"}
    elif op == "embedding":
        wanted, required = {"embeddings": [o["input_dim"], o["output_dim"]]}, {"embeddings"}
    elif op == "conv1d":
        wanted = {"weight": [o["filters"], _dim(node, "weight", 1), o["kernel_size"]], "bias": [o["filters"]]}
        required = {"weight"}
    elif op == "batch_norm":
        n = _dim(node, "moving_mean", 0)
        wanted, required = {k: [n] for k in ("gamma", "beta", "moving_mean", "moving_variance")}, set()
    else:
        return
    for key in sorted(required - set(weights)):
        c.fail(f"{where}.weights", f"the arrays {', '.join(sorted(required))} of {op}", found=f"no {quote(key)}")
    for key, w in weights.items():
        if key not in wanted:
            c.fail(f"{where}.weights", f"only {', '.join(wanted)}", key)
        if w["shape"] != wanted[key]:
            c.fail(f"{where}.weights[{quote(key)}]", f"shape {wanted[key]} (from the options)", found=str(w["shape"]))
        if not w["dtype"].startswith("float"):
            c.fail(f"{where}.weights[{quote(key)}].dtype", "a float dtype", w["dtype"])


def _dim(node: dict, key: str, axis: int) -> int | None:
    shape = node["weights"].get(key, {}).get("shape", [])
    return shape[axis] if len(shape) > axis else None


def check_shapes(model, file: str | None = None) -> None:
    """Each recurrent, dense, conv1d and repeat_vector node of the IR ``model`` reads a tensor of the
    rank its op takes and, where known, the width its weights take (shapes from :mod:`converters.shapes`)."""
    from .shapes import infer_shapes

    c = _Checker(file)
    try:
        shapes = infer_shapes(model)
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as e:
        c.fail("nodes", "tensor shapes the ops can compute", found=type(e).__name__)
    for i, node in enumerate(model.nodes):
        x = shapes.get(node.inputs[0])
        wanted = _input_shape(node)
        if x is None or wanted is None:
            continue
        rank, width = wanted
        if (len(x) != rank if rank else not x) or width is not None and x[-1] not in (None, width):
            shown = "(" + ", ".join("None" if d is None else str(d) for d in x) + ")"
            expected = f"rank {rank}" if rank else "rank 1 or more"
            c.fail(f"nodes[{i}].inputs[0]", f"a tensor of {expected}" + (f" and width {width}" if width else ""),
                   found=f"shape {shown}")


def _input_shape(node) -> tuple[int, int | None] | None:
    """(rank, width) the first input of ``node`` must have (rank 0 = one or more), or None if free."""
    if node.op in RECURRENT_OPS:
        return 2, node.options["input_size"]
    if node.op == "dense":
        return 0, int(node.weights["weight"].shape[1])
    if node.op == "conv1d":
        return 2, int(node.weights["weight"].shape[1]) * int(node.options.get("groups", 1))
    if node.op == "repeat_vector":
        return 1, None
    if node.op in TIME_OPS:
        return 2, None
    if node.op == "permute":
        return len(node.options["dims"]), None
    return None
