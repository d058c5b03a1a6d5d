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

import json
import re
import sys
from typing import Any, Callable

from . import ops
from .errors import FormatError
from .activations import NUMPY
from .ir import RECURRENT_OPS, made_twice
from .ops import DIM, MAX_RANK, MAX_SIZE, Type, is_int, one_of
from .sanitize import quote

FORMAT, VERSION = "gateport-ir", 1
MAX_NAME, MAX_ITEMS, MAX_NODES = 4096, 10000, 100000
ACTIVATIONS = tuple(NUMPY)  # converters/activations.py
#: The ops a manifest may hold: the rows of converters/ops.py.
OPS = tuple(ops.OPS)
WEIGHT_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "bool")
INPUT_DTYPES = ("float32", "int64", "bool")
_RECURRENT_WEIGHT = re.compile(r"(forward|backward)\.(input|forget|cell|output|update|reset|candidate|hidden)\."
                               r"(input_weights|recurrent_weights|input_bias|recurrent_bias)")


class _Checker:
    def __init__(self, file: str | None):
        self.file = file

    def fail(self, where: str, expected: str, value: object = None, found: str | None = None):
        shown = found if found is not None else _shown(value)
        place = f"manifest {where}".rstrip()
        raise FormatError(f"{place}: expected {expected}, found {shown}", file=self.file)

    def rule(self, value: object, where: str, rule: Type) -> None:
        if not rule.check(value):
            self.fail(where, rule.expected, value)

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
                   lambda d, w: d is None or self.rule(d, w, Type(DIM.check, DIM.expected + " or null", {})),
                   hi=MAX_RANK)
        self.rule(value["dtype"], f"{where}.dtype", one_of(*INPUT_DTYPES))

    def weight(self, value: object, where: str) -> None:
        self.obj(value, where, ("shape", "dtype"), ("shape", "dtype"))
        self.array(value["shape"], f"{where}.shape", lambda d, w: self.rule(d, w, DIM), hi=MAX_RANK)
        self.rule(value["dtype"], f"{where}.dtype", one_of(*WEIGHT_DTYPES))

    def node(self, value: object, where: str) -> None:
        keys = ("name", "op", "inputs", "outputs", "options", "weights")
        self.obj(value, where, keys, keys + ("mask", "source"))
        self.name(value["name"], f"{where}.name", lo=1)
        self.rule(value["op"], f"{where}.op", one_of(*OPS))
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
        row = ops.OPS[op]
        self.obj(value, where, row.required())
        for key, option in row.options.items():
            if key in value:
                self.rule(value[key], f"{where}.{key}", option.type)


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
    if manifest["format"] != FORMAT or not is_int(manifest["version"]) or manifest["version"] != VERSION:
        c.fail("", f"{FORMAT} version {VERSION}",
               found=f"{_shown(manifest['format'])} version {_shown(manifest['version'])}")
    c.name(manifest["name"], "name")
    if "source" in manifest:
        c.source(manifest["source"], "source")
    c.array(manifest["inputs"], "inputs", c.tensor_spec, lo=1)
    c.array(manifest["outputs"], "outputs", c.name, lo=1)
    c.array(manifest["nodes"], "nodes", c.node, hi=MAX_NODES)
    return manifest


MASK_OPS = tuple(op for op, row in ops.OPS.items() if row.mask == "makes")


def _arity(node: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input counts, output counts) ``node`` may have; an empty tuple for "one or more" (converters/ops.py)."""
    return ops.OPS[node["op"]].io(node["options"])


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
    # the first node making a tensor again (ir.made_twice), refused at its place in the walk below
    twice = made_twice((spec["name"] for spec in manifest["inputs"]),
                       ((i, node["outputs"]) for i, node in enumerate(manifest["nodes"])))
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
            mask = ops.OPS[node["op"]].mask_input(node["options"], k)
            if made[t] != mask:
                c.fail(f"{where}.inputs[{k}]", "a mask" if mask else "data, not a mask", t)
        if node.get("mask") is not None and not made.get(node["mask"], False):
            c.fail(f"{where}.mask", "a mask made by an earlier mask_* node", node["mask"])
        if twice is not None and twice[2] == i:
            c.fail(f"{where}.outputs", "tensor names not made before", twice[0])
        for t in node["outputs"]:
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
    rule = ops.OPS[op].weight_shapes
    if rule is None:
        return
    wanted, required = rule(o, lambda key, axis: _dim(node, key, axis))
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
    """(rank, width) the first input of ``node`` must have (rank 0 = one or more), or None if free (the
    row's ``input_shape`` in converters/ops.py)."""
    row = ops.OPS.get(node.op)
    return row.input_shape(node) if row is not None and row.input_shape is not None else None


# -- the JSON Schema, generated from converters/ops.py -------------------------------------------
_SCHEMA_DESCRIPTION = (
    "Everything about a model but its arrays. Stored as the 'gateport.manifest' metadata of a safetensors file "
    "whose tensors are named '<node>/<weight>'. Weight matrices are (out, in); tensors are batch-first; shapes "
    "exclude the batch axis. Readers check a manifest against this schema (converters/manifest_check.py, which "
    "tests keep in agreement with it) before using it; integers are JSON integers (4.0 is refused there). "
    "Generated from the op table converters/ops.py: python -m converters.manifest_check > "
    "schemas/ir-manifest.schema.json")


def _op_schema(op: str) -> dict:
    """The ``if op then options ...`` clause of one op."""
    row = ops.OPS[op]
    options: dict[str, Any] = {"type": "object"}
    if row.required():
        options["required"] = list(row.required())
    options["properties"] = {key: o.type.schema for key, o in row.options.items()}
    then: dict[str, Any] = {"options": options}
    if op in RECURRENT_OPS:
        then["weights"] = {"propertyNames": {"pattern": f"^{_RECURRENT_WEIGHT.pattern}$"}}
    return {"if": {"properties": {"op": {"const": op}}},
            "then": {"description": row.doc, "properties": then}}


def schema() -> dict:
    """``schemas/ir-manifest.schema.json``: the manifest's frame and one clause per op of the table."""
    name = {"$ref": "#/$defs/name"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gateport.invalid/schemas/ir-manifest.schema.json",
        "title": "gateport IR manifest",
        "description": _SCHEMA_DESCRIPTION,
        "type": "object",
        "required": ["format", "version", "name", "inputs", "outputs", "nodes"],
        "additionalProperties": False,
        "properties": {
            "format": {"const": FORMAT}, "version": {"const": VERSION}, "name": name,
            "source": {"$ref": "#/$defs/source"},
            "inputs": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": {"$ref": "#/$defs/tensorSpec"}},
            "outputs": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": name},
            "nodes": {"type": "array", "maxItems": MAX_NODES, "items": {"$ref": "#/$defs/node"}},
        },
        "$defs": {
            "name": {"type": "string", "maxLength": MAX_NAME},
            "size": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
            "dim": {"type": "integer", "minimum": 0, "maximum": MAX_SIZE},
            "source": {
                "type": "object",
                "description": "Where the model came from: format, keras_version, backend, path; a model read from "
                               "a gates file keeps the file's own source as converted_from.",
                "properties": {"format": {"type": "string"}, "keras_version": {"type": ["string", "null"]},
                               "backend": {"type": ["string", "null"]}, "path": {"type": "string"},
                               "converted_from": {"$ref": "#/$defs/source"}},
            },
            "tensorSpec": {
                "type": "object", "required": ["name", "shape", "dtype"], "additionalProperties": False,
                "properties": {"name": name,
                               "shape": {"type": "array", "maxItems": MAX_RANK,
                                         "items": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SIZE}},
                               "dtype": {"enum": list(INPUT_DTYPES)}},
            },
            "activation": {
                "enum": list(ACTIVATIONS),
                "description": "hard_sigmoid_keras2 = clip(0.2x+0.5, 0, 1) (Keras 1/2, tf-keras); "
                               "hard_sigmoid_keras3 = clip(x/6+0.5, 0, 1) (Keras 3).",
            },
            "weight": {
                "type": "object", "required": ["shape", "dtype"], "additionalProperties": False,
                "properties": {"shape": {"type": "array", "maxItems": MAX_RANK, "items": {"$ref": "#/$defs/dim"}},
                               "dtype": {"enum": list(WEIGHT_DTYPES)}},
            },
            "node": {
                "type": "object",
                "required": ["name", "op", "inputs", "outputs", "options", "weights"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                    "op": {"enum": list(OPS)},
                    "inputs": {"type": "array", "maxItems": MAX_ITEMS, "items": name},
                    "outputs": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": name},
                    "mask": {"type": ["string", "null"], "maxLength": MAX_NAME,
                             "description": "A boolean (batch, time) tensor made by a mask_* node."},
                    "options": {"type": "object"},
                    "source": {"type": "object", "description": "Keras class_name and where each weight came from."},
                    "weights": {"type": "object", "maxProperties": MAX_ITEMS, "propertyNames": {"maxLength": MAX_NAME},
                                "additionalProperties": {"$ref": "#/$defs/weight"}},
                },
                "allOf": [_op_schema(op) for op in OPS],
            },
        },
    }


def schema_text() -> str:
    """The schema as committed: two-space JSON with a final newline."""
    return json.dumps(schema(), indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())
