"""IR :class:`~converters.ir.Model` -> ONNX ``ModelProto``, and writing it to a ``.onnx`` file.

One fused LSTM / GRU / RNN node per recurrent layer (no Loop or Scan), batch and time dynamic,
weights as initializers, graph inputs and outputs with the Keras names in Keras' order. Models
whose weights pass ~2 GB keep them in ``<file>.data`` next to the file (ONNX external data).

Any string is a legal ONNX name, with two exceptions an input can bring: the empty string (ONNX's
"no tensor") and text that is not UTF-8 (lone surrogates from JSON ``"\\ud800"``). Such tensors get a
unique name of their own (:func:`onnx_names`); every other name stays as Keras wrote it.

    to_onnx(model, opset=DEFAULT_OPSET) -> onnx.ModelProto
    deployable(model, opset, dynamic=("batch", "time"), input_names=None, output_names=None) -> onnx.ModelProto
    write(model, path, opset=DEFAULT_OPSET, force=False, dynamic=..., input_names=..., output_names=...) -> Path
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_paths
from ..errors import GateportError, UnsupportedError, UsageError, check_names, require
from ..ir import Model, unique_name
from ..safetensors_io import open_output, write_array
from ..sanitize import comment, one_line, quote
from .onnx_builder import Blocks, GraphBuilder, as_array
from .onnx_layers import LAYERS
from .onnx_masks import (mask_and_to_onnx, mask_concat_to_onnx, mask_lengths_to_onnx, mask_not_equal_to_onnx,
                         masking_to_onnx)
from .onnx_recurrent import gru_to_onnx, lstm_to_onnx, simple_rnn_to_onnx
from .onnx_conv_lstm import LAYERS as CONV_LSTM_LAYERS
from .onnx_conv2d import LAYERS as CONV2D_LAYERS
from .onnx_norms import LAYERS as NORM_LAYERS
from .onnx_tf_ops import LAYERS as TF_OPS_LAYERS

#: Opset 17 (ONNX 1.12, 2022): every op used here has its current semantics there (LSTM/GRU/RNN-14
#: differ from -22 only by bfloat16) and onnxruntime has run it since 1.12.
DEFAULT_OPSET = 17
#: Unsqueeze/ReduceSum with axes as inputs and per-axis Softmax start at opset 13.
MIN_OPSET = 13
#: Above this many bytes of weights the file keeps them as external data (protobuf stops at 2 GiB).
EXTERNAL_DATA_ABOVE = 2**31 - 2**26
#: An initializer moves to the external data file from this size on (bytes).
EXTERNAL_TENSOR_MIN = 1024

CONVERTERS = {
    **LAYERS,
    **CONV_LSTM_LAYERS,  # conv_lstm
    **CONV2D_LAYERS,  # conv2d, pool2d
    **NORM_LAYERS,  # normalization, rescaling, rms_norm, group_norm
    **TF_OPS_LAYERS,  # slice, reduce, scalar, binary
    "lstm": lstm_to_onnx,
    "gru": gru_to_onnx,
    "simple_rnn": simple_rnn_to_onnx,
    "mask_not_equal": mask_not_equal_to_onnx,
    "mask_and": mask_and_to_onnx,
    "mask_or": mask_and_to_onnx,
    "mask_concat": mask_concat_to_onnx,
    "mask_lengths": mask_lengths_to_onnx,
    "masking": masking_to_onnx,
}


def to_onnx(model: Model, opset: int = DEFAULT_OPSET):
    """The ONNX model of ``model`` (not checked; :func:`write` checks it)."""
    return _with_weights(*_skeleton(model, opset))


def _skeleton(model: Model, opset: int):
    """``(proto, weights)``: the ONNX model of ``model`` without initializers, and the initializers
    (name -> array or :class:`~.onnx_builder.Blocks`, in graph order) to add to it or
    stream after it."""
    onnx = require("onnx", "onnx")
    where = model.source.get("path")
    _check_opset(onnx, opset, where)
    model = onnx_names(model)
    g = GraphBuilder(opset)
    own_names = {t.name for t in model.inputs} | {n for node in model.nodes for n in node.outputs}
    g.reserve(own_names)
    g.memo["model"] = model  # for converters needing static shapes (onnx_conv_lstm)
    inputs = [_graph_input(g, spec, where) for spec in model.inputs]
    for node in model.nodes:
        g.scope = utf8(node.name)
        convert = CONVERTERS.get(node.op)
        try:
            if convert is None:
                raise UnsupportedError(f"expected an op of the IR ({', '.join(sorted(CONVERTERS))}), "
                                       f"found {quote(node.op)}")
            convert(g, node)
        except GateportError as e:
            raise e.at(file=where, layer=node.label())
    g.prune(model.outputs)
    g.fold_identities(keep=own_names)
    outputs = [onnx.helper.make_tensor_value_info(name, g.elem_type(g.dtypes.get(name, "float32")), None)
               for name in model.outputs]
    graph = onnx.helper.make_graph(g.nodes, utf8(model.name) or "model", inputs, outputs)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="gateport", producer_version=_version())
    proto.ir_version = onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    if _weight_bytes(g.weights) <= EXTERNAL_DATA_ABOVE:
        _declare_output_shapes(onnx, proto, g.weights)
    return proto, g.weights


def _with_weights(proto, weights: dict):
    """``proto`` with ``weights`` as its initializers (their data copied into the protobuf)."""
    from onnx import numpy_helper

    proto.graph.initializer.extend(numpy_helper.from_array(as_array(a), name) for name, a in weights.items())
    return proto


#: The axes ``--dynamic`` may name; both are dynamic by default wherever the model allows.
DYNAMIC_AXES = ("batch", "time")


#: What ``weights_dtype`` may be: float32 (exact) or float16 (half the file, computed in float32).
WEIGHT_DTYPES = ("float32", "float16")


def deployable(model: Model, opset: int = DEFAULT_OPSET, dynamic: Sequence[str] = DYNAMIC_AXES,
               input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
               weights_dtype: str = "float32"):
    """:func:`to_onnx` ready for deployment: graph inputs/outputs renamed, ``dynamic`` axes symbolic
    (``batch``, ``time``), the others fixed (batch 1, time the model's declared length), provenance
    and the conversion's notes in ``metadata_props``; ``weights_dtype="float16"``: see
    :func:`_float16_weights`."""
    return _with_weights(*_deployable_skeleton(model, opset, dynamic, input_names, output_names, weights_dtype))


def _deployable_skeleton(model: Model, opset: int, dynamic: Sequence[str],
                         input_names: Sequence[str] | None, output_names: Sequence[str] | None,
                         weights_dtype: str = "float32"):
    """:func:`_skeleton` made deployable (see :func:`deployable`): ``(proto, weights)``."""
    onnx = require("onnx", "onnx")
    where = model.source.get("path")
    dynamic = check_names("dynamic", dynamic) or []  # a str, a number: no list of axis names
    unknown = [a for a in dynamic if a not in DYNAMIC_AXES]
    if unknown:
        raise UsageError(f"expected dynamic axes from {', '.join(DYNAMIC_AXES)} (or none), found {quote(unknown[0])}",
                         file=where)
    proto, weights = _skeleton(model, opset)
    _rename(proto, proto.graph.input, input_names, "input", where, weights)
    _rename(proto, proto.graph.output, output_names, "output", where, weights)
    if weights_dtype not in WEIGHT_DTYPES:
        raise UsageError(f"expected weights dtype {' or '.join(WEIGHT_DTYPES)}, found {quote(weights_dtype)}",
                         file=where)
    if _fix_axes(proto, set(dynamic), where) and _weight_bytes(weights) <= EXTERNAL_DATA_ABOVE:
        _declare_output_shapes(onnx, proto, weights)
    props = provenance(model)
    if weights_dtype == "float16":
        weights = _float16_weights(onnx, proto, weights)
        props[WEIGHTS_DTYPE_PROP] = "float16"
        props["gateport.notes"] = json.dumps([*json.loads(props.get("gateport.notes", "[]")), FLOAT16_NOTE])
    onnx.helper.set_model_props(proto, props)
    return proto, weights


#: The ``metadata_props`` key naming the stored weights' dtype (absent: float32).
WEIGHTS_DTYPE_PROP = "gateport.weights_dtype"
FLOAT16_NOTE = ("weights stored as float16 (--fp16: half the file), each cast to float32 where the graph starts: "
                "the model computes in float32 but its weights are rounded; gateport verify --fp16 reports the "
                "error this costs")


#: Float32 initializers smaller than this stay float32 (scalars and small constants: a Cast costs more).
FLOAT16_MIN_SIZE = 16


def _float16_weights(onnx, proto, weights: dict) -> dict:
    """``weights`` with every float32 weight stored as float16 under a new name, and a ``Cast`` to
    float32 at the start of ``proto``'s graph giving it back under its own name: only the file's weights
    change (rounded to float16, a relative error up to 2**-11); every node still computes in float32.
    Small constants and arrays that float16 cannot hold (a value beyond +-65504, such as a -1e9 mask
    constant) stay float32."""
    taken = _tensor_names(proto, weights)
    out, casts = {}, []
    limit = float(np.finfo(np.float16).max)
    for name, a in weights.items():
        array = as_array(a) if a.dtype == np.float32 and int(np.prod(a.shape)) >= FLOAT16_MIN_SIZE else None
        if array is None or not np.all(np.abs(array[np.isfinite(array)]) <= limit):
            out[name] = a
            continue
        half = unique_name(f"{name}_float16", taken)
        out[half] = np.ascontiguousarray(array, dtype=np.float16)
        casts.append(onnx.helper.make_node("Cast", [half], [name], name=unique_name(f"{name}_to_float32", taken),
                                           to=onnx.TensorProto.FLOAT))
    nodes = [*casts, *proto.graph.node]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return out


def provenance(model: Model) -> dict[str, str]:
    """What ``metadata_props`` records: the source file's basename, its Keras version, gateport's version
    and the conversion's notes (JSON list); names pass through :mod:`converters.sanitize`."""
    src = model.source or {}
    props = {"gateport.version": _version()}
    if src.get("path"):
        props["gateport.source"] = comment(os.path.basename(str(src["path"])))
    elif src.get("object"):
        props["gateport.source"] = comment(src["object"])
    if src.get("keras_version"):
        props["gateport.keras_version"] = comment(src["keras_version"])
    if src.get("notes"):
        props["gateport.notes"] = json.dumps([one_line(n) for n in src["notes"]])
    return props


def _rename(proto, values, names: Sequence[str] | None, what: str, where: str | None, weights: dict) -> None:
    """Give the graph's inputs (or outputs) ``names``, in order, everywhere they are used."""
    names = check_names(f"{what}_names", names)
    if names is None:
        return
    old = [v.name for v in values]
    if len(names) != len(old) or len(set(names)) != len(names) or not all(names):
        raise UsageError(f"expected {len(old)} distinct non-empty {what} names ({', '.join(quote(n) for n in old)}), "
                         f"found {len(names)}: {', '.join(quote(n) for n in names)}", file=where)
    graph = proto.graph
    taken = _tensor_names(proto, weights)
    clash = [n for n, o in zip(names, old) if n != o and n in taken - set(old)]
    if clash:
        raise UsageError(f"{what} name {quote(clash[0])} is already a tensor of the graph; choose another",
                         file=where)
    new = dict(zip(old, names))
    for node in graph.node:
        node.input[:] = [new.get(t, t) for t in node.input]
        node.output[:] = [new.get(t, t) for t in node.output]
    for v in [*graph.input, *graph.output, *graph.value_info]:
        v.name = new.get(v.name, v.name)


def _tensor_names(proto, weights: dict) -> set[str]:
    """Every tensor name ``proto``'s graph uses: node inputs and outputs, ``weights``, graph inputs and outputs."""
    graph = proto.graph
    taken = {t for n in graph.node for t in [*n.input, *n.output]} | set(weights)
    return taken | {v.name for v in [*graph.input, *graph.output]}


def _time_axis(value) -> int | None:
    """The time axis of a graph input: axis 1 of (batch, time, features...) or of int token ids."""
    rank = len(value.type.tensor_type.shape.dim)
    integer = value.type.tensor_type.elem_type != 1  # not FLOAT: int32/int64 token ids
    return 1 if rank >= 3 or (rank == 2 and integer) else None


def _fix_axes(proto, dynamic: set[str], where: str | None) -> bool:
    """Name the dynamic batch/time axes of the graph inputs, fix the others; True if a size was fixed."""
    timed = [v for v in proto.graph.input if _time_axis(v) is not None]
    fixed = False
    for v in proto.graph.input:
        dims = v.type.tensor_type.shape.dim
        if "batch" not in dynamic:
            dims[0].dim_value, fixed = 1, True
        axis = _time_axis(v)
        if axis is None or dims[axis].HasField("dim_value"):
            continue
        if "time" not in dynamic:
            raise UsageError("expected a fixed time length to make time static, found none declared by the "
                             "model: keep time dynamic (--dynamic batch,time)", file=where, layer=quote(v.name))
        dims[axis].dim_param = "time" if len(timed) == 1 else f"{v.name}_time"
    return fixed


def write(model: Model, path: str | os.PathLike, opset: int = DEFAULT_OPSET, force: bool = False,
          external_data_above: int = EXTERNAL_DATA_ABOVE, dynamic: Sequence[str] = DYNAMIC_AXES,
          input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
          weights_dtype: str = "float32") -> Path:
    """Write ``model`` as ONNX at ``path`` atomically; returns the path.

    The graph is :func:`deployable`'s (``dynamic``, ``input_names``, ``output_names``, ``weights_dtype``).
    ``onnx.checker.check_model(full_check=True)`` runs on the graph with its large initializers as
    typed inputs before anything is written; then the graph is written without weights and each
    initializer streamed from its array into the file (:func:`_stream`): the bytes are those of
    ``deployable(...).SerializeToString()``, without the model ever held whole in protobuf.
    Weights over ``external_data_above`` bytes go to ``<name>.data`` next to the file.
    """
    onnx = require("onnx", "onnx")
    proto, weights = _deployable_skeleton(model, opset, dynamic, input_names, output_names, weights_dtype)
    path = Path(path)
    external = _weight_bytes(weights) > external_data_above
    data_path = path.with_name(path.name + ".data")
    with atomic_paths([data_path, path] if external else [path], force) as tmps:  # both or neither
        tmp = tmps[-1]
        if not external:
            onnx.checker.check_model(_without_large_weights(onnx, proto, weights), full_check=True)
            with open_output(tmp) as f:
                _stream(onnx, proto, weights, f)
            return path
        _write_weights_out(onnx, proto, weights, tmps[0])
        tmp.write_bytes(proto.SerializeToString())
        onnx.checker.check_model(str(tmp), full_check=True)  # finds the data next to it
        _set_location(proto, data_path.name)
        tmp.write_bytes(proto.SerializeToString())
    return path


# -- streaming: protobuf's wire format, written field by field ------------------------------------
#: Field numbers of onnx.proto: ModelProto.graph, GraphProto.initializer, TensorProto.raw_data.
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


def _varint(n: int) -> bytes:
    """``n`` as a protobuf base-128 varint."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_head(number: int, size: int) -> bytes:
    """Tag and length of a length-delimited field (wire type 2) of ``size`` bytes."""
    return _varint(number << 3 | 2) + _varint(size)


def _split(message, number: int) -> tuple[bytes, bytes]:
    """``message`` serialized as two parts: its fields numbered below ``number``, and above it
    (field ``number`` itself in neither).

    Serialization writes known fields in field-number order, so a field ``number`` written between
    the two parts sits where ``SerializeToString`` would put it."""
    before, after = type(message)(), type(message)()
    before.CopyFrom(message)
    after.CopyFrom(message)
    for field, _ in message.ListFields():
        if field.number <= number:
            after.ClearField(field.name)
        if field.number >= number:
            before.ClearField(field.name)
    return before.SerializeToString(), after.SerializeToString()


def _write_data(f, weight) -> None:
    """An initializer's data, little-endian, from its array or block by block, each laid out while written."""
    if isinstance(weight, Blocks):
        for block in weight.blocks:
            write_array(f, block, weight.dtype)
    else:
        write_array(f, weight)


def _tensor_head(onnx, name: str, array: np.ndarray) -> bytes:
    """An initializer's ``TensorProto`` up to its data: dims, data type, name, raw_data's tag and length
    (the fields ``numpy_helper.from_array`` sets, in the order they serialize)."""
    t = onnx.TensorProto()
    t.dims.extend(array.shape)
    t.data_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    t.name = name
    return t.SerializeToString() + _field_head(_TENSOR_RAW_DATA, array.nbytes)


def _stream(onnx, proto, weights: dict, f) -> None:
    """Write ``proto`` with ``weights`` as its initializers to the file ``f``: the model's fields up to
    the graph, the graph's up to its initializers, each initializer with its data straight from
    its array, then the rest of the graph and of the model."""
    if proto.graph.initializer:
        raise ValueError("the skeleton already holds initializers")
    heads = {name: _tensor_head(onnx, name, a) for name, a in weights.items()}
    graph_before, graph_after = _split(proto.graph, _GRAPH_INITIALIZER)
    pieces = [_field_head(_GRAPH_INITIALIZER, len(heads[name]) + a.nbytes) for name, a in weights.items()]
    graph_size = (len(graph_before) + len(graph_after)
                  + sum(len(p) + len(heads[name]) + a.nbytes for p, (name, a) in zip(pieces, weights.items())))
    model_before, model_after = _split(proto, _MODEL_GRAPH)
    f.write(model_before)
    f.write(_field_head(_MODEL_GRAPH, graph_size))
    f.write(graph_before)
    for piece, (name, a) in zip(pieces, weights.items()):
        f.write(piece)
        f.write(heads[name])
        _write_data(f, a)
    f.write(graph_after)
    f.write(model_after)


def utf8(text: str) -> str:
    """``text`` if it is UTF-8 (what protobuf strings hold), else with its lone surrogates escaped."""
    text = str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def onnx_names(model: Model) -> Model:
    """``model`` with every tensor name ONNX cannot hold (empty, or not UTF-8) replaced by a unique one.

    An empty ``mask`` stays "no mask", as everywhere in the IR (:func:`converters.reference.run_node`).
    """
    names = [t.name for t in model.inputs] + list(model.outputs) + [
        t for node in model.nodes for t in [*node.inputs, *node.outputs, node.mask or None] if t is not None]
    bad = [t for t in dict.fromkeys(names) if not t or utf8(t) != t]
    if not bad:
        return model
    taken = set(names) - set(bad)
    new = {t: unique_name(utf8(t) or "tensor", taken) for t in bad}

    def name(t):
        return new.get(t, t)

    nodes = [dataclasses.replace(node, inputs=[name(t) for t in node.inputs], outputs=[name(t) for t in node.outputs],
                                 mask=name(node.mask) if node.mask else None) for node in model.nodes]
    inputs = [dataclasses.replace(spec, name=name(spec.name)) for spec in model.inputs]
    return dataclasses.replace(model, inputs=inputs, outputs=[name(t) for t in model.outputs], nodes=nodes)


def _check_opset(onnx, opset: int, where: str | None) -> None:
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise UnsupportedError(f"expected an ONNX opset from {MIN_OPSET} to {newest} "
                               f"(default {DEFAULT_OPSET}), found {opset!r}", file=where)


def _graph_input(g: GraphBuilder, spec, where: str | None):
    """A graph input: batch axis ``batch``, other unknown axes named after the input."""
    dtype = "float32" if spec.dtype == "float64" else str(spec.dtype)  # the graph computes in float32 (dtypes.py)
    if dtype not in ("float32", "int32", "int64", "bool"):  # bool: a mask input (layer(x, mask=m))
        raise UnsupportedError(f"expected input dtype float32, int32, int64 or bool, found {dtype}",
                               file=where, layer=spec.name)
    g.dtypes[spec.name] = dtype
    g.ranks[spec.name] = len(spec.shape) + 1
    dims = ["batch"] + [d if d is not None else f"{spec.name}_dim{i + 1}" for i, d in enumerate(spec.shape)]
    return g.helper.make_tensor_value_info(spec.name, g.elem_type(dtype), dims)


def _declare_output_shapes(onnx, proto, weights: dict) -> None:
    """Give the graph outputs the shapes ONNX infers; axis 0 is ``batch``, other unknown axes
    stay anonymous."""
    inferred = onnx.shape_inference.infer_shapes(_without_large_weights(onnx, proto, weights))
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in proto.graph.output:
        if out.name not in known or not known[out.name].type.tensor_type.HasField("shape"):
            continue
        out.type.CopyFrom(known[out.name].type)
        for axis, dim in enumerate(out.type.tensor_type.shape.dim):
            if not dim.HasField("dim_value"):
                dim.Clear()
                if axis == 0:
                    dim.dim_param = "batch"


def _without_large_weights(onnx, proto, weights: dict):
    """``proto`` (without initializers) with ``weights``: each large one as a typed graph input, the
    same shapes for shape inference and the checker without the weights' bytes (small constants
    such as Reshape targets stay initializers)."""
    helper = onnx.helper
    small = [onnx.numpy_helper.from_array(as_array(a), name) for name, a in weights.items()
             if a.nbytes < EXTERNAL_TENSOR_MIN]
    large = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
             for name, a in weights.items() if a.nbytes >= EXTERNAL_TENSOR_MIN]
    graph = helper.make_graph(proto.graph.node, proto.graph.name, list(proto.graph.input) + large,
                              proto.graph.output, small)
    return helper.make_model(graph, opset_imports=proto.opset_import, ir_version=proto.ir_version)


def _weight_bytes(weights: dict) -> int:
    return sum(a.nbytes for a in weights.values())


def _write_weights_out(onnx, proto, weights: dict, data_file: Path) -> None:
    """Add ``weights`` to ``proto``'s graph: each of at least EXTERNAL_TENSOR_MIN bytes written to
    ``data_file`` (page-aligned, as onnx's own writer does) and referenced there, the rest inline."""
    from onnx.external_data_helper import set_external_data

    offset = 0
    with open_output(data_file) as f:
        for name, a in weights.items():
            if a.nbytes < EXTERNAL_TENSOR_MIN:
                proto.graph.initializer.append(onnx.numpy_helper.from_array(as_array(a), name))
                continue
            pad = -offset % 4096
            f.write(b"\0" * pad)
            offset += pad
            tensor = onnx.TensorProto()
            tensor.dims.extend(a.shape)
            tensor.data_type = onnx.helper.np_dtype_to_tensor_dtype(a.dtype)
            tensor.name = name
            tensor.raw_data = b""  # set_external_data wants the field present; it is cleared below
            set_external_data(tensor, location=data_file.name, offset=offset, length=a.nbytes)
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            proto.graph.initializer.append(tensor)
            _write_data(f, a)
            offset += a.nbytes


def _set_location(proto, location: str) -> None:
    """Point every external initializer at the data file ``location`` (relative to the model)."""
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location


def _version() -> str:
    from ..version import __version__

    return __version__


__all__ = ["DEFAULT_OPSET", "DYNAMIC_AXES", "MIN_OPSET", "deployable", "to_onnx", "write"]
