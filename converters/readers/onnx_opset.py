"""The ONNX opset a model is read at, and the op versions the reader implements.

The default-domain opset import decides which version of each op a node is: the newest version not
above the opset (``onnx.defs.get_schema(op, opset)``, the schemas that onnx/onnx docs/Changelog.md
lists). Every node is checked against that schema (its attributes, their types, required ones,
input and output counts): a node that is not valid ONNX at the model's opset is a FormatError.

Versions whose meaning differs from what the reader implements are refused (:data:`OLDEST`), each
from onnx/onnx docs/Changelog.md (and the schemas in onnx/defs/*/old.cc):

- Add/Sub/Mul/Div-1 and -6, Equal/And/Greater-1: attributes ``broadcast`` and ``axis`` ("limited
  broadcasting": B matched from ``axis`` of A, none unless broadcast=1); -7 introduced
  Numpy-style multidirectional broadcasting. onnxruntime has no kernel below -7 to check against.
- Max/Min-1 and -6: "All inputs and outputs must have the same shape"; -8 broadcasts.
- Gemm-1 and -6: attribute ``broadcast`` for C; -7 unidirectional broadcasting.
- Cast-1: ``to`` is a type name (string); -6 an enum.
- Reshape-1: the shape is an attribute; -5 an input.
- Tile-1: inputs ``tiles`` and ``axis``; -6 ``repeats``.
- Concat-1: ``axis`` optional with default 1; -4 required.
- TopK-1: ``k`` an attribute; -10 an input; -11 adds ``largest`` / ``sorted`` (the masked plan
  needs largest=0).
- LSTM/GRU/RNN-1 (and GRU-3): attribute ``output_sequence``; -7 removed it (onnxruntime's kernels
  start at -7).

Implemented in the op handlers rather than refused: Softmax-1/-11 (input coerced to 2-D at
``axis``, default 1; -13: one axis, default -1), Slice-1 (starts/ends/axes attributes, no steps;
-10 inputs), Squeeze/Unsqueeze/ReduceSum-1/-11 (``axes`` attribute; -13 an input), Reshape-14
``allowzero``, Shape-15 ``start``/``end``, CumSum-11 ``exclusive``/``reverse``.
"""
from __future__ import annotations

from ..errors import FormatError, UnsupportedError
from ..sanitize import quote

#: op -> (oldest version read, what the older versions mean)
OLDEST = {
    **{op: (7, "attributes broadcast/axis ('limited broadcasting' of B from an axis of A)")
       for op in ("Add", "Sub", "Mul", "Div", "Equal", "And", "Greater")},
    "Max": (8, "all inputs the same shape, no broadcasting"),
    "Min": (8, "all inputs the same shape, no broadcasting"),
    "Gemm": (7, "attribute broadcast for C"),
    "Cast": (6, "'to' as a type name string"),
    "Reshape": (5, "the shape as an attribute"),
    "Tile": (6, "inputs tiles and axis"),
    "Concat": (4, "axis optional with default 1"),
    "TopK": (11, "k as an attribute, or no 'largest' attribute (always the largest)"),
    **{op: (7, "attribute output_sequence") for op in ("LSTM", "GRU", "RNN")},
}


def default_opset(onnx, proto, path: str | None) -> int:
    """The version of the default ONNX domain the model imports (FormatError/UnsupportedError)."""
    versions = {int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")}
    if len(versions) != 1:
        raise FormatError(f"expected one opset import of the default ONNX domain, found versions "
                          f"{sorted(versions)}", file=path)
    opset = versions.pop()
    newest = onnx.defs.onnx_opset_version()
    if opset < 1:
        raise FormatError(f"expected an opset version of at least 1, found {opset}", file=path)
    if opset > newest:
        raise UnsupportedError(f"expected an opset up to {newest} (the installed onnx package's newest), "
                               f"found {opset}: its ops' meaning is unknown here", file=path)
    return opset


def check_node(onnx, node, opset: int, where: str | None, path: str | None) -> int:
    """Check ``node`` against its schema at ``opset``; returns the op version it is."""
    op = node.op_type
    try:
        schema = onnx.defs.get_schema(op, opset, "")
    except onnx.defs.SchemaError:
        raise FormatError(f"{op} does not exist at opset {opset}", file=path, layer=where) from None
    version = schema.since_version
    oldest, why = OLDEST.get(op, (1, ""))
    if version < oldest:
        raise UnsupportedError(f"opset {opset} makes this {op}-{version} ({why}); gateport reads {op}-{oldest} "
                               f"and later (opset {oldest}+)", file=path, layer=where)
    _check_attributes(node, schema, opset, where, path)
    n_in, n_out = len(node.input), len(node.output)
    formal = list(schema.inputs)
    for k, name in enumerate(node.input):
        param = formal[min(k, len(formal) - 1)] if formal else None
        if not name and param is not None and param.option != param.option.Optional:
            raise FormatError(f"{op}-{version}: input {k} ({param.name}) is required, found none", file=path,
                              layer=where)
    if not schema.min_input <= n_in <= schema.max_input or not schema.min_output <= n_out <= schema.max_output:
        raise FormatError(f"{op}-{version} takes {schema.min_input} to {schema.max_input} inputs and "
                          f"{schema.min_output} to {schema.max_output} outputs, found {n_in} and {n_out}",
                          file=path, layer=where)
    return version


def _check_attributes(node, schema, opset: int, where: str | None, path: str | None) -> None:
    op, version = node.op_type, schema.since_version
    names = [a.name for a in node.attribute]
    if len(set(names)) != len(names):
        raise FormatError(f"{op}: an attribute is given twice", file=path, layer=where)
    for a in node.attribute:
        spec = schema.attributes.get(a.name)
        if spec is None:
            raise FormatError(f"{op}-{version} (opset {opset}) has no attribute {quote(a.name)}; it has "
                              f"{sorted(schema.attributes) or 'none'}", file=path, layer=where)
        if int(a.type) != int(spec.type):
            raise FormatError(f"{op}-{version}: attribute {quote(a.name)} expected type {spec.type.name}, "
                              f"found type {a.type}", file=path, layer=where)
    missing = [k for k, spec in schema.attributes.items() if spec.required and k not in names]
    if missing:
        raise FormatError(f"{op}-{version}: required attribute {quote(missing[0])} is missing",
                          file=path, layer=where)
