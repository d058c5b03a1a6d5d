"""Legacy Keras HDF5: full models (``model_config`` + ``model_weights``) and ``save_weights`` files.

Written by Keras 1, Keras 2, tf.keras / tf-keras and Keras 3 (``model.save("x.h5")``). Each
layer has a group holding ``attrs["weight_names"]``; the arrays are read in that order, which is
the layer's ``get_weights()`` order (tf_keras/src/saving/legacy/hdf5_format.py
``save_weights_to_hdf5_group``). Dataset names are never parsed for meaning except the
``forward_``/``backward_`` prefix of Bidirectional halves and Keras 1 gate suffixes.
"""
from __future__ import annotations

import h5py

from ..budget import Budget
from ..errors import FormatError
from .hdf5 import Weight, attr_list, attr_str, read_array
from .keras_config import KerasGraph, LayerSpec


class LegacyH5Weights:
    """Arrays of the per-layer groups under ``group`` (``model_weights`` or the file root)."""

    def __init__(self, group: h5py.Group, file: str | None, graph: KerasGraph | None = None):
        self.group = group
        self.file = file
        self.budget = Budget(file)  # what reading this file's arrays may allocate in all
        self.layer_names = attr_list(group.attrs, "layer_names")
        self.rename: dict[str, str] = {}  # config layer name -> stored group name
        # a nested model stores all its layers' weights in one group: who owns which name
        self.nested_names: dict[str, set[str]] = {}
        for spec in graph.layers if graph else []:
            if spec.scope and not spec.is_container:
                self.nested_names.setdefault(spec.scope[0], set()).add(spec.local_name)

    def stored(self, name: str, owner: str | None = None) -> list[Weight]:
        """The arrays of group ``name``; of a nested model's group, those of layer ``owner``."""
        if name not in self.group:
            return []
        g = self.group[name]
        if not isinstance(g, h5py.Group):
            raise FormatError(f"expected a group of weights at {g.name}, found a dataset", file=self.file)
        base = g.name.lstrip("/")
        names = attr_list(g.attrs, "weight_names")
        if owner is not None:
            inner = self.nested_names.get(name, set())
            names = [wn for wn in names
                     if next((seg for seg in wn.split("/") if seg in inner), None) == owner]
        return [Weight(f"{base}/{wn}", read_array(g, wn, self.budget, self.file)) for wn in names]

    def layer_weights(self, spec: LayerSpec) -> list[Weight]:
        if spec.scope:
            return self.stored(self.rename.get(spec.scope[0], spec.scope[0]), spec.local_name)
        return self.stored(self.rename.get(spec.name, spec.name))

    def match(self, graph: KerasGraph, weighted: set[str]) -> None:
        """Map config layers to stored groups for a weights-only file whose names may differ.

        Like Keras' ``load_weights`` (not by name): when some layer of ``weighted`` classes is
        missing by name, the k-th such layer takes the k-th stored group that holds weights.
        """
        layers = [s for s in graph.layers if s.class_name in weighted]
        if all(s.name in self.group for s in layers):
            return
        stored = [n for n in self.layer_names if attr_list(self.group[n].attrs, "weight_names")]
        if len(stored) != len(layers):
            missing = [s.name for s in layers if s.name not in self.group]
            raise FormatError(f"expected weights for layers {missing} (or {len(layers)} layers with "
                              f"weights to match by order), found groups {stored}", file=self.file)
        self.rename = {s.name: n for s, n in zip(layers, stored)}


def versions(*attr_sets) -> tuple[str | None, str | None]:
    """The ``keras_version`` and ``backend`` attributes, from the first set that has them."""
    version = next((v for a in attr_sets if (v := attr_str(a, "keras_version"))), None)
    backend = next((v for a in attr_sets if (v := attr_str(a, "backend"))), None)
    return version, backend


def full_model_weights(f: h5py.File) -> h5py.Group:
    if "model_weights" not in f:
        raise FormatError("expected a model_weights group next to model_config, found none",
                          file=f.filename)
    return f["model_weights"]
