"""ONNX ``TensorProto`` -> numpy, every declared size checked before anything is allocated or read.

    tensors = TensorReader(proto, path)
    tensors.array(tensor_proto, layer) -> np.ndarray

``onnx.numpy_helper.to_array`` trusts ``dims``: a tensor declaring ``[10**9, 10**9]`` or ``[-3]``,
``raw_data`` shorter than ``dims`` say, or external data at an offset past the end of its file
gives a traceback or a huge allocation. Here ``dims`` go through :class:`converters.budget.Budget`
first, the data must hold exactly ``prod(dims)`` elements in one place (raw_data, a typed field or external
data: onnx.numpy_helper takes raw_data, another reader the typed field), and external data is read only from
regular files inside the model's folder (no NUL bytes, no absolute or escaping paths, the
offset and length inside the file).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..budget import Budget
from ..errors import FormatError, UnsafeError, UnsupportedError
from ..sanitize import quote

#: The TensorProto fields that hold values in place of raw_data (onnx/onnx.proto).
_VALUE_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")
#: ONNX element type -> (numpy dtype, the typed field that holds the values when there is no raw_data);
#: float16 (gateport's own --fp16 weights, cast to float32 where the graph starts) keeps its bit patterns
#: in int32_data (onnx/onnx.proto3 TensorProto)
#: bfloat16 likewise (weights a converter stored at half size, Cast to float before use: float32 holds each
#: exactly; numpy's type for it is ml_dtypes', which onnx itself requires, imported only for such a tensor)
DTYPES = {1: ("float32", "float_data"), 6: ("int32", "int32_data"), 7: ("int64", "int64_data"),
          9: ("bool", "int32_data"), 10: ("float16", "int32_data"), 11: ("float64", "double_data"),
          16: ("bfloat16", "int32_data")}
_HALF = ("float16", "bfloat16")
#: the names of the element types not read (onnx/onnx.proto3 TensorProto.DataType), for messages:
#: int8/uint8 from onnxruntime.quantization
_TYPE_NAMES = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 8: "string", 12: "uint32", 13: "uint64",
               14: "complex64", 15: "complex128", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
               19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1"}


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of a :data:`DTYPES` name (bfloat16: ml_dtypes', imported here, lazily)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def type_name(elem_type: int) -> str:
    """An ONNX element type for a message: its number and, where known, its name (``16 (bfloat16)``)."""
    named = DTYPES[elem_type][0] if elem_type in DTYPES else _TYPE_NAMES.get(elem_type)
    return f"{elem_type} ({named})" if named else str(elem_type)


#: TensorProto.DataLocation.EXTERNAL
_EXTERNAL = 1


class TensorReader:
    """Reads the tensors of one model under one byte budget."""

    def __init__(self, proto, path: str | None):
        self.path = path
        self.folder = Path(path).resolve().parent if path else None
        if path:
            size = Path(path).stat().st_size + self._external_bytes(proto)
        else:
            size = proto.ByteSize()
        self.budget = Budget(path, file_size=size)

    def _external_bytes(self, proto) -> int:
        """Total size of the distinct external data files the main graph names inside the folder."""
        files = set()
        tensors = list(proto.graph.initializer) + [a.t for n in proto.graph.node for a in n.attribute
                                                   if a.HasField("t")]
        for t in tensors:
            if t.data_location == _EXTERNAL:
                location = _entries(t).get("location", "")
                try:
                    files.add(self._confined(t, location))
                except (FormatError, UnsafeError):
                    pass  # refused when the tensor is read
        return sum(f.stat().st_size for f in files)

    def array(self, t, layer: str | None = None) -> np.ndarray:
        """The numbers of tensor ``t`` (FormatError / UnsafeError / UnsupportedError in one line)."""
        what = f"tensor {quote(t.name)}"
        if t.data_type not in DTYPES:
            raise UnsupportedError(f"{what}: expected element type float, float16, bfloat16, double, int32, int64 "
                                   f"or bool, found type {type_name(t.data_type)}",
                                   file=self.path, layer=layer)
        if t.HasField("segment"):
            raise UnsupportedError(f"{what}: segmented tensors are not read", file=self.path, layer=layer)
        external = t.data_location == _EXTERNAL
        raw_set = t.HasField("raw_data") and (not external or len(t.raw_data) > 0)  # external: raw_data is b""
        held = [f for f in _VALUE_FIELDS if len(getattr(t, f))] + ["raw_data"] * raw_set + ["external data"] * external
        if len(held) > 1:  # readers disagree on which one counts (onnx.proto: one or the other)
            raise FormatError(f"{what}: expected its values in one place, found {' and '.join(held)}",
                              file=self.path, layer=layer)
        dtype, field = DTYPES[t.data_type]
        itemsize = numpy_dtype(dtype).itemsize
        dims = self.budget.take_array(list(t.dims), itemsize, what, layer=layer)
        count = math.prod(dims)
        if t.data_location == _EXTERNAL:
            return self._read_external(t, dims, dtype, layer)
        raw = t.raw_data  # read once: each read of a bytes field is a copy
        if raw:
            if len(raw) != count * itemsize:
                raise FormatError(f"{what}: dims {list(dims)} need {count * itemsize} bytes of raw_data, "
                                  f"found {len(raw)}", file=self.path, layer=layer)
            return _from_bytes(raw, dtype, dims)
        values = getattr(t, field)
        if len(values) != count:
            raise FormatError(f"{what}: dims {list(dims)} hold {count} values, found {len(values)} in "
                              f"{field}", file=self.path, layer=layer)
        if dtype in _HALF:
            bits = np.asarray(values, dtype=np.int64)
            if bits.size and (bits.min() < 0 or bits.max() > 0xFFFF):
                raise FormatError(f"{what}: expected {dtype} bit patterns 0..65535 in int32_data, found "
                                  f"{int(bits.min())}..{int(bits.max())}", file=self.path, layer=layer)
            return bits.astype(np.uint16).view(numpy_dtype(dtype)).reshape(dims)
        return np.asarray(values, dtype=np.int32 if dtype == "bool" else dtype).astype(dtype).reshape(dims)

    def _confined(self, t, location: str, layer: str | None = None) -> Path:
        """The external data file of ``t``: a regular file inside the model's folder."""
        what, where = f"tensor {quote(t.name)}", {"file": self.path, "layer": layer}
        if self.folder is None:
            raise FormatError(f"{what}: external data needs the model's file (read the model by path)", **where)
        if not location or "\x00" in location or Path(location).is_absolute():
            raise UnsafeError(f"{what}: expected external data at a relative path inside the model's "
                              f"folder, found location {quote(location)}", **where)
        target = (self.folder / location).resolve()
        if not target.is_relative_to(self.folder):
            raise UnsafeError(f"{what}: external data location {quote(location)} is outside the model's "
                              f"folder", **where)
        if not target.is_file():
            raise FormatError(f"{what}: external data file {quote(location)} is missing (or not a regular "
                              f"file)", **where)
        return target

    def _read_external(self, t, dims: tuple, dtype: str, layer: str | None) -> np.ndarray:
        what = f"tensor {quote(t.name)}"
        info = _entries(t)
        target = self._confined(t, info.get("location", ""), layer)
        nbytes = math.prod(dims) * numpy_dtype(dtype).itemsize
        offset = _nonnegative(info.get("offset", "0"), what, "offset", self.path, layer)
        length = _nonnegative(info["length"], what, "length", self.path, layer) if "length" in info else nbytes
        size = target.stat().st_size
        if length != nbytes or offset + nbytes > size:
            raise FormatError(f"{what}: dims {list(dims)} need {nbytes} bytes of external data, found length "
                              f"{length} at offset {offset} of a {size}-byte file", file=self.path, layer=layer)
        buf = bytearray(nbytes)
        with open(target, "rb") as f:
            f.seek(offset)
            got = f.readinto(buf)
        if got != nbytes:
            raise FormatError(f"{what}: external data file ended after {got} of {nbytes} bytes",
                              file=self.path, layer=layer)
        return _from_bytes(buf, dtype, dims)


def _from_bytes(data, dtype: str, dims: tuple) -> np.ndarray:
    """Little-endian bytes (ONNX's raw layout) as an array; bool bytes other than 0 are True."""
    if dtype == "bool":
        return np.frombuffer(data, dtype=np.uint8).reshape(dims) != 0
    return np.frombuffer(data, dtype=numpy_dtype(dtype).newbyteorder("<")).reshape(dims)


def _entries(t) -> dict[str, str]:
    return {e.key: e.value for e in t.external_data}


def _nonnegative(text: str, what: str, key: str, path: str | None, layer: str | None) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise FormatError(f"{what}: expected a non-negative external data {key}, found {quote(text)}", file=path,
                          layer=layer)
    return value
