"""Safe HDF5 access shared by the Keras readers: arrays, attributes, and the stored-weight record.

Only hard links to plain datasets are followed: external links, external storage and virtual
datasets could make h5py read files other than the one given, a FIFO or ``/dev/zero``
(UnsafeError). :func:`read_dataset` is the one place a Keras reader turns a dataset into an array:
storage, dtype and declared shape are checked, and the bytes taken from the file's
:class:`~converters.budget.Budget`, before anything is read.
"""
from __future__ import annotations

import math
import mmap
from dataclasses import dataclass

import h5py
import numpy as np

from .. import budget as budgets
from ..errors import FormatError, UnsafeError
from ..sanitize import quote
from .malformed import IO_ERRORS, malformed


@dataclass
class Weight:
    """One stored array and where it came from (HDF5 dataset path or .keras member path)."""

    path: str
    array: np.ndarray

    @property
    def short(self) -> str:
        """The last path component without the TF ``:0`` suffix (``kernel``, ``lstm_1_W_i``)."""
        return self.path.rsplit("/", 1)[-1].split(":")[0]


def attr_str(attrs, key: str) -> str | None:
    """A string attribute (stored as str, bytes or a 0-d array), or None."""
    if key not in attrs:
        return None
    value = attrs[key]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return _text(value, key)


def _text(value, key: str) -> str:
    """An attribute value as text; bytes and strings that are not UTF-8 (h5py keeps undecodable bytes
    as surrogates) are a damaged file."""
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        text.encode("utf-8")
    except UnicodeError:
        raise FormatError(f"attribute {quote(key)} holds text that is not UTF-8") from None
    return text


def attr_list(attrs, key: str) -> list[str]:
    """A list-of-strings attribute such as ``layer_names`` / ``weight_names``: a 1-D array, as Keras writes it
    (tf-keras legacy/saving/hdf5_format.py ``save_attributes_to_hdf5_group`` stores ``np.asarray(names)``).
    Keras's loader iterates the attribute, so a scalar string is read as its characters' codes and a 2-D
    array as rows: neither is a list of names, both are refused (a scalar was read as a one-name list).
    A list longer than an HDF5 object header holds (64,512 bytes) is stored in chunks ``key0``, ``key1`` ...
    (the same module's ``load_attributes_from_hdf5_group``): read in order, as Keras does."""
    if key in attrs:
        return _names(attrs[key], key)
    names: list[str] = []
    chunk = 0
    while f"{key}{chunk}" in attrs:  # at most one chunk per attribute the file holds
        names += _names(attrs[f"{key}{chunk}"], f"{key}{chunk}")
        chunk += 1
    return names


def _names(value, key: str) -> list[str]:
    """One stored list of names (attr_list)."""
    if not isinstance(value, np.ndarray) or value.ndim != 1:
        shape = "a scalar" if not isinstance(value, np.ndarray) or value.ndim == 0 else f"an array of shape {value.shape}"
        raise FormatError(f"attribute {quote(key)}: expected a list of names (a 1-D array), found {shape}")
    odd = next((v for v in value if not isinstance(v, (bytes, str))), None)
    if odd is not None:  # an HDF5 object reference, a number: str() of it would be taken as a name nothing has
        raise FormatError(f"attribute {quote(key)}: expected a list of names as text, found a "
                          f"{quote(type(odd).__name__)} value")
    return [_text(v, key) for v in value]


def check_link(group: h5py.Group, name: str, file: str | None = None) -> None:
    """Refuse ``group``'s link ``name`` (one component) unless it is a hard link."""
    link = group.get(name, getlink=True)
    if link is None:
        raise FormatError(f"{quote(group.name.rstrip('/') + '/' + name)} is missing", file=file)
    if not isinstance(link, h5py.HardLink):
        kind = type(link).__name__.removesuffix("Link").lower() or "user-defined"
        raise UnsafeError(f"{quote(group.name.rstrip('/') + '/' + name)} is an HDF5 {kind} link; gateport "
                          "reads only data stored in the file itself, through hard links", file=file)


def member(group: h5py.Group, name: str, file: str | None = None) -> h5py.Group | h5py.Dataset:
    """``group[name]``, each component of ``name`` (``lstm/lstm_cell/kernel:0``) a hard link: a
    soft or external link halfway would lead elsewhere, even to another file."""
    obj = group
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if not isinstance(obj, h5py.Group):
            raise FormatError(f"expected a group at {quote(obj.name)} on the way to {quote(name)}, "
                              "found a dataset", file=file)
        check_link(obj, part, file)
        obj = obj[part]
    return obj


def read_array(group: h5py.Group, name: str, budget: budgets.Budget, file: str | None = None,
               mapped: memoryview | None = None) -> np.ndarray:
    """The dataset ``group[name]`` as a numpy array (see :func:`read_dataset`)."""
    ds = member(group, name, file)
    if not isinstance(ds, h5py.Dataset):
        raise FormatError(f"expected a dataset at {quote(ds.name)}, found a group", file=file)
    return read_dataset(ds, budget, file, mapped)


def mapped_file(f: h5py.File) -> memoryview | None:
    """The bytes of the HDF5 file ``f`` (opened by path) mapped read-only through h5py's own descriptor,
    for :func:`read_dataset` to view its datasets in place; None where that cannot be done (then they are
    read). As with any mapped file, a file truncated by another process meanwhile stops gateport (SIGBUS)."""
    try:
        fd = f.id.get_vfd_handle()
        return memoryview(mmap.mmap(fd, 0, access=mmap.ACCESS_READ)) if isinstance(fd, int) else None
    except (*IO_ERRORS, ValueError, TypeError, OverflowError):
        return None


def outside_storage(dcpl) -> str | None:
    """Why a dataset's data would come from outside its file (creation property list), or None."""
    if dcpl.get_external_count() > 0:
        return "HDF5 external storage (its data lives in other files)"
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        return "an HDF5 virtual dataset (its data is mapped from other files)"
    return None


def read_dataset(ds: h5py.Dataset, budget: budgets.Budget, file: str | None = None,
                 mapped: memoryview | None = None) -> np.ndarray:
    """``ds`` as a numpy array (floats as float32 unless float64), checked before it is read.

    Refused: data outside the file (UnsafeError), a non-numeric dtype (strings, compounds,
    references: FormatError), a shape the budget does not allow, and more declared bytes than the
    file stores uncompressed (a never-written dataset reads as gigabytes of fill value).
    ``mapped``: the HDF5 file's bytes mapped in place (a stored ``.keras`` member, :func:`mapped_file`): a
    contiguous, uncompressed dataset of numbers is then a read-only view of them (the bytes HDF5 would copy).
    """
    what = f"dataset {quote(ds.name)}"
    with malformed(what, file=file, errors=(*IO_ERRORS, TypeError, ValueError)):
        dcpl = ds.id.get_create_plist()
        if why := outside_storage(dcpl):
            raise UnsafeError(f"{what} uses {why}; gateport reads only data stored in the file itself",
                              file=file)
        dtype, declared_shape = ds.dtype, ds.shape  # TypeError: a type numpy has no equivalent for
        bfloat16 = _is_bfloat16(ds, dtype)
    if not bfloat16 and not budgets.plain_numeric(dtype):
        raise FormatError(f"{what}: expected numbers (a weight), found dtype {quote(dtype)}", file=file)
    if declared_shape is None:
        raise FormatError(f"{what}: expected an array, found an empty (null) dataspace", file=file)
    dims = budgets.shape(declared_shape, what, file=file)
    declared = budgets.nbytes(dims, dtype.itemsize)
    _check_stored(ds, dcpl, declared, what, file)
    widened = 4 * declared if bfloat16 else 0  # bfloat16 -> uint32 -> float32: 8 bytes per 2 read
    budget.take(declared + widened + _chunk_buffer(dcpl, dtype), what)
    if mapped is not None and not bfloat16:
        with malformed(what, file=file, errors=(*IO_ERRORS, TypeError, ValueError)):
            view = _mapped_view(ds, dcpl, dims, declared, mapped)
        if view is not None:
            return as_float(view)
    array = np.empty(dims, dtype=dtype)
    if array.size:
        with malformed(what, file=file, errors=(*IO_ERRORS, TypeError, ValueError)):
            ds.read_direct(array)
    return _bfloat16_as_float32(array) if bfloat16 else as_float(array)


def _mapped_view(ds: h5py.Dataset, dcpl, dims: tuple[int, ...], declared: int, mapped: memoryview) -> np.ndarray | None:
    """A contiguous, unfiltered dataset of ints or floats as a view of ``mapped`` at its data's offset, or
    None (read it). Its bytes are what HDF5 copies for it: no filter, no type conversion (the file's type is
    exactly the numpy dtype h5py reports: an HDF5 float laid out otherwise than IEEE's, its fields moved or
    another exponent bias, or an integer of fewer bits at an offset, is reported as float32 / int32 all the same,
    and only HDF5's conversion reads its values; their bytes viewed as IEEE numbers are other numbers)."""
    dtype = ds.dtype
    if dtype.kind not in "iuf" or dcpl.get_layout() != h5py.h5d.CONTIGUOUS or dcpl.get_nfilters():
        return None
    if not _stored_as(ds, dtype):
        return None
    offset = ds.id.get_offset()
    if offset is None or offset < 0 or offset + declared > len(mapped):
        return None
    return np.frombuffer(mapped, dtype=dtype, count=math.prod(dims), offset=offset).reshape(dims)


def _stored_as(ds: h5py.Dataset, dtype: np.dtype) -> bool:
    """Whether ``ds``'s file type is exactly the HDF5 type of ``dtype`` (H5Tequal: size, order, fields, bias)."""
    try:
        return bool(ds.id.get_type() == h5py.h5t.py_create(dtype))
    except (*IO_ERRORS, TypeError, ValueError):
        return False


def _is_bfloat16(ds: h5py.Dataset, dtype: np.dtype) -> bool:
    """Keras 3 stores a bfloat16 variable as 2-byte opaque data with the attribute ``dtype='bfloat16'``
    (keras/src/saving/saving_lib.py, H5IOStore)."""
    if dtype.kind != "V" or dtype.itemsize != 2 or dtype.fields or dtype.subdtype:
        return False
    tag = ds.attrs.get("dtype")
    return (tag.decode("utf-8", "replace") if isinstance(tag, bytes) else tag) == "bfloat16"


def _bfloat16_as_float32(array: np.ndarray) -> np.ndarray:
    """bfloat16 bits (the high half of a float32) as float32, exactly."""
    return (array.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def _chunk_buffer(dcpl, dtype: np.dtype) -> int:
    """Bytes libhdf5 allocates to unpack one compressed chunk (chunks may exceed the dataset)."""
    if dcpl.get_layout() != h5py.h5d.CHUNKED or not dcpl.get_nfilters():
        return 0
    return budgets.nbytes(tuple(int(d) for d in dcpl.get_chunk()), dtype.itemsize)


def _check_stored(ds: h5py.Dataset, dcpl, declared: int, what: str, file: str | None) -> None:
    """Refuse a dataset that stores less than it declares without compressing it (a never-written
    dataset reads as its fill value, whatever its size) or more than the whole file holds."""
    stored = ds.id.get_storage_size()
    file_bytes = _file_bytes(ds, declared)
    if declared and not stored:
        raise UnsafeError(f"{what} declares {declared} bytes but stores none (never written)", file=file)
    if dcpl.get_nfilters():
        return  # compressed: the budget bounds what it may unpack to
    if stored < file_bytes:
        raise UnsafeError(f"{what} declares {file_bytes} bytes but stores only {stored}, uncompressed",
                          file=file)
    if file_bytes > (size := ds.file.id.get_filesize()):
        raise UnsafeError(f"{what} declares {file_bytes} bytes uncompressed, more than the whole file "
                          f"({size} bytes)", file=file)


def _file_bytes(ds: h5py.Dataset, declared: int) -> int:
    """The bytes ``ds`` takes in the file, by its file type's size: h5py reports an HDF5 float of 2 or 4 bytes it
    has no numpy type for as float32 or float64 (``declared``, what the array will take), and HDF5 converts
    each value as it reads it."""
    itemsize, size = ds.dtype.itemsize, ds.id.get_type().get_size()
    return declared if not itemsize or size == itemsize else declared // itemsize * size


def as_float(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "f" and array.dtype != np.float64 and array.dtype != np.float32:
        return array.astype(np.float32)
    return array


#: Deepest group nesting :func:`walk` follows (Keras 3 paths are about 10 deep).
MAX_DEPTH = 100


def walk(group: h5py.Group, file: str | None = None) -> dict[str, h5py.Dataset | h5py.Group]:
    """Every object under ``group`` by its path relative to ``group``, hard links only.

    The objects must form a tree: a hard link back to a group already seen (a cycle, or two
    paths to one object, which could multiply the paths without end) is a FormatError.
    """
    found: dict[str, h5py.Dataset | h5py.Group] = {}
    seen = {group.id: ""}

    def visit(g: h5py.Group, prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise FormatError(f"groups nested more than {MAX_DEPTH} deep at {quote(prefix)}", file=file)
        for key in g.keys():
            check_link(g, key, file)
            obj = g[key]
            path = f"{prefix}{key}"
            if obj.id in seen:
                raise FormatError(f"{quote(path)} links to the object already at {quote(seen[obj.id] or '/')}: "
                                  "expected a tree of groups", file=file)
            seen[obj.id] = path
            found[path] = obj
            if isinstance(obj, h5py.Group):
                visit(obj, path + "/", depth + 1)

    visit(group, "", 0)
    return found
