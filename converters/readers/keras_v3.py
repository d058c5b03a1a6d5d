"""Keras 3 ``.keras`` archives and ``.weights.h5`` files (also written by tf-keras 2.13-2.15).

Weights are stored by object path, not layer name (keras/src/saving/saving_lib.py
``_save_container_state``): each layer of ``model.layers`` is ``layers/<snake_case(class)>``
with a per-class counter (``lstm``, ``lstm_1`` ...), its variables in ``vars/0, 1, ...``;
recurrent layers keep theirs in ``cell/vars``, Bidirectional in ``forward_layer``/
``backward_layer``, TimeDistributed in ``layer``. Since Keras 3.6 each ``vars`` group has
``attrs["name"]`` = the layer name, which is preferred when present. Archives written on
Windows use backslashes inside group names (``layers\\lstm\\cell/vars/0``) and Keras 2.13 used
``_layer_checkpoint_dependencies`` for ``layers``: both are normalized.
"""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from .. import safe_json
from ..budget import Budget
from ..errors import FormatError, UnsupportedError
from ..keras_classes import to_snake_case
from .bounded_zip import open_zip, read_member, read_npz, stored_member
from .hdf5 import Weight, as_float, attr_str, read_dataset, walk
from .hdf5_probe import probe
from .keras_config import MAX_CONFIG_BYTES, KerasGraph, LayerSpec
from .keras_recurrent import HANDLERS as RECURRENT_HANDLERS, stacked_cells, stacked_weight_paths

#: Largest archive member gateport unpacks (bytes), within the file's budget (budget.py).
MAX_MEMBER_BYTES = 4 << 30
_LEGACY_PREFIX = "_layer_checkpoint_dependencies"


def _normalize(path: str) -> str:
    path = path.replace("\\", "/")
    if path == _LEGACY_PREFIX or path.startswith(_LEGACY_PREFIX + "/"):
        path = "layers" + path[len(_LEGACY_PREFIX):]
    return path


class V3Weights:
    """Arrays of a Keras 3 weights tree, looked up by layer through the config's layer order."""

    def __init__(self, arrays: dict[str, object], names: dict[str, str], graph: KerasGraph,
                 file: str | None, label: str, budget: Budget | None = None, mapped: memoryview | None = None):
        self.arrays = arrays  # normalized path -> h5py.Dataset or ndarray
        self.file = file
        self.mapped = mapped  # the HDF5 file's bytes, mapped in place (hdf5.read_dataset), or None
        self.budget = budget or Budget(file)  # what reading the datasets may allocate in all
        self.label = label  # how the weight paths are shown: "model.weights.h5:" prefix etc.
        self.stored_names = names  # vars attrs['name'] by path: shown, never used to match
        self.prefix = self._assign(graph)

    @classmethod
    def from_h5(cls, root: h5py.Group, graph: KerasGraph, file: str | None, label: str = "",
                budget: Budget | None = None, mapped: memoryview | None = None) -> "V3Weights":
        objects = walk(root, file)
        arrays = {_normalize(p): o for p, o in objects.items() if isinstance(o, h5py.Dataset)}
        names = {}
        for p, o in objects.items():
            name = attr_str(o.attrs, "name") if isinstance(o, h5py.Group) else None
            if name and _normalize(p).endswith("/vars"):
                names[_normalize(p)[: -len("/vars")]] = name
        return cls(arrays, names, graph, file, label, budget, mapped)

    @staticmethod
    def _assign(graph: KerasGraph) -> dict[tuple, str]:
        """``weight_key -> path``: ``layers/<snake>[_n]`` counted per class in each model's
        layer order, nested models adding ``/layers/...``.

        Exactly what Keras loads: keras/src/saving/saving_lib.py ``_load_container_state``
        names each saveable ``_get_unique_name(naming.to_snake_case(cls.__name__))`` and
        ``H5IOStore.get`` looks up ``<path>/vars`` and nothing else. The ``vars`` group's
        ``attrs["name"]`` (Keras >= 3.6) is written for people and never read back, so it is
        never used here: a config whose layer names are swapped loads by position, as in Keras.
        """
        used: dict[tuple, dict[str, int]] = {}
        scope_path: dict[tuple, str] = {(): ""}
        prefix = {}
        for spec in graph.layers:
            if spec.is_op or spec.is_copy:
                continue
            scope, name = spec.weight_key
            base = to_snake_case(spec.class_name)
            counters = used.setdefault(scope, {})
            n = counters.get(base, 0)
            counters[base] = n + 1
            path = f"{scope_path.get(scope, '')}layers/{base}" + (f"_{n}" if n else "")
            prefix[spec.weight_key] = path
            if spec.is_container:
                scope_path[(*scope, name)] = path + "/"
        return prefix

    def _vars(self, prefix: str) -> list[Weight]:
        found = []
        pattern = re.compile(re.escape(prefix) + r"/vars/(\d+)$")
        for path in self.arrays:
            m = pattern.match(path)
            if m:
                found.append((int(m.group(1)), path))
        weights = []
        for _, path in sorted(found):
            data = self.arrays[path]
            array = read_dataset(data, self.budget, self.file, self.mapped) if isinstance(data, h5py.Dataset) \
                else as_float(np.asarray(data))
            weights.append(Weight(f"{self.label}{path}", array))
        return weights

    def _recurrent(self, prefix: str) -> list[Weight]:
        return self._vars(f"{prefix}/cell") or self._vars(prefix)

    def layer_weights(self, spec: LayerSpec) -> list[Weight]:
        prefix = self.prefix.get(spec.weight_key)
        return [] if prefix is None else self._weights_at(prefix, spec.class_name, spec.config)

    def _weights_at(self, prefix: str, class_name: object, config: dict) -> list[Weight]:
        """The arrays of a layer of ``class_name`` stored under ``prefix`` (TimeDistributed's: its layer's)."""
        if class_name == "Bidirectional":
            inner = config.get("layer")
            inner_config = inner.get("config") if isinstance(inner, dict) else None
            if isinstance(inner_config, dict) and inner.get("class_name") == "RNN" \
                    and stacked_cells(inner_config) is not None:  # each direction's cells, as an RNN's
                return [w for half in ("forward_layer", "backward_layer")
                        for w in self._weights_at(f"{prefix}/{half}", "RNN", inner_config)]
            return self._recurrent(f"{prefix}/forward_layer") + self._recurrent(f"{prefix}/backward_layer")
        if class_name == "RNN" and stacked_cells(config) is not None:
            return [w for path in stacked_weight_paths(config, to_snake_case)
                    for w in self._vars(f"{prefix}/{path}")]
        if class_name in RECURRENT_HANDLERS:
            return self._recurrent(prefix)
        if class_name == "TimeDistributed":
            inner = config.get("layer")
            inner = inner if isinstance(inner, dict) else {}
            inner_config = inner.get("config")
            return self._weights_at(f"{prefix}/layer", inner.get("class_name"),
                                    inner_config if isinstance(inner_config, dict) else {})
        if class_name == "MultiHeadAttention":  # its EinsumDense sub-layers, in build order
            return [w for sub in ("query_dense", "key_dense", "value_dense", "output_dense")  # tf_keras: _query_dense
                    for w in self._vars(f"{prefix}/{sub}") or self._vars(f"{prefix}/_{sub}")]
        return self._vars(prefix)


# -- the .keras archive ---------------------------------------------------------------------
class Archive:
    """The parts of a ``.keras`` zip gateport reads: config, metadata and the weights store.

    Every member is read within the file's budget (bounded_zip.py), the npz store inside too.
    """

    def __init__(self, path: str | Path):
        self.file = str(path)
        self.zip = open_zip(path, self.file, ".keras zip")
        self.budget = Budget(self.file)
        self.names = set(self.zip.namelist())
        if "config.json" not in self.names:
            raise FormatError(f"expected config.json in the .keras archive, found "
                              f"{sorted(self.names)[:8]}", file=self.file)

    def close(self) -> None:
        self.zip.close()

    def _member(self, name: str, limit: int):
        return read_member(self.zip, name, self.budget, limit=limit, file=self.file)

    def config_text(self) -> bytes:
        return self._member("config.json", MAX_CONFIG_BYTES).getvalue()

    def metadata(self) -> dict:
        if "metadata.json" not in self.names:
            return {}
        meta = safe_json.loads(self._member("metadata.json", MAX_CONFIG_BYTES).getvalue(),
                               what="metadata.json", file=self.file, max_bytes=MAX_CONFIG_BYTES)
        return meta if isinstance(meta, dict) else {}

    def weights(self, graph: KerasGraph) -> tuple[V3Weights, object]:
        """The weight source and the object to close after reading."""
        if "model.weights.h5" in self.names:
            data = stored_member(self.zip, "model.weights.h5", self.budget, limit=MAX_MEMBER_BYTES, file=self.file)
            mapped = data.mapped() if data is not None else None  # the arrays are then views of the file
            if data is None:  # compressed: unpacked into memory
                data = self._member("model.weights.h5", MAX_MEMBER_BYTES)
            probe(data)
            h5 = h5py.File(data, "r")
            return V3Weights.from_h5(h5, graph, self.file, "model.weights.h5:", self.budget, mapped), h5
        if "model.weights.npz" in self.names:
            arrays = read_npz(self._member("model.weights.npz", MAX_MEMBER_BYTES), self.budget, self.file)
            arrays = {_normalize(k): v for k, v in arrays.items()}
            return V3Weights(arrays, {}, graph, self.file, "model.weights.npz:", self.budget), None
        if "model.weights.json" in self.names:
            raise UnsupportedError("sharded .keras weights (model.weights.json) are not supported",
                                   file=self.file)
        raise FormatError("expected model.weights.h5 in the .keras archive, found "
                          f"{sorted(self.names)[:8]}", file=self.file)
