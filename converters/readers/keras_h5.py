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
from ..sanitize import quote
from .hdf5 import Weight, attr_list, attr_str, member, read_array
from .keras_config import KerasGraph, LayerSpec
from .keras_context import flag, layer_label


class LegacyH5Weights:
    """Arrays of the per-layer groups under ``group`` (``model_weights`` or the file root)."""

    def __init__(self, group: h5py.Group, file: str | None, graph: KerasGraph | None = None,
                 mapped: memoryview | None = None):
        self.group = group
        self.file = file
        self.mapped = mapped  # the file's bytes mapped in place (hdf5.mapped_file), or None
        self.budget = Budget(file)  # what reading this file's arrays may allocate in all
        self.layer_names = attr_list(group.attrs, "layer_names")
        self.rename: dict[str, str] = {}  # top-level config layer -> stored group (match())
        # a nested model stores all its layers' weights in one group: who owns which name
        self.nested_names: dict[str, set[str]] = {}
        for spec in graph.layers if graph else []:
            if spec.scope and not spec.is_container:
                self.nested_names.setdefault(spec.scope[0], set()).add(spec.local_name)

    def stored(self, name: str, owner: str | None = None) -> list[Weight]:
        """The arrays of group ``name``; of a nested model's group, those of layer ``owner``."""
        if name not in self.group:
            return []
        g = member(self.group, name, self.file)
        if not isinstance(g, h5py.Group):
            raise FormatError(f"expected a group of weights at {g.name}, found a dataset", file=self.file)
        base = g.name.lstrip("/")
        names = attr_list(g.attrs, "weight_names")
        if owner is not None:
            inner = self.nested_names.get(name, set())
            names = [wn for wn in names
                     if next((seg for seg in wn.split("/") if seg in inner), None) == owner]
        return [Weight(f"{base}/{wn}", read_array(g, wn, self.budget, self.file, self.mapped)) for wn in names]

    def layer_weights(self, spec: LayerSpec) -> list[Weight]:
        name = spec.scope[0] if spec.scope else spec.name
        if name not in self.rename:  # a layer without weights in Keras' order
            return []
        return self.stored(self.rename[name], spec.local_name if spec.scope else None)

    def _has_weights(self, name: str) -> bool:
        """Whether group ``name`` lists weights (a listed group that is missing lists none)."""
        return name in self.group and bool(attr_list(self.group[name].attrs, "weight_names"))

    def match(self, graph: KerasGraph, holds_weights) -> None:
        """Map the config's top-level layers to the stored groups by position, as Keras does.

        tf_keras/src/saving/legacy/hdf5_format.py ``load_weights_from_hdf5_group`` (and Keras
        1.2.2 topology.py, keras/src/legacy/saving/legacy_h5_format.py): the model's layers that
        have weights are zipped, in order, with the groups of ``attrs["layer_names"]`` whose
        ``weight_names`` are not empty; the counts must agree. Names are never compared (that
        is ``by_name=True``, not the default): a config with two same-shaped layers' names
        swapped gets the weights Keras gives it. ``holds_weights(spec, graph)`` tells which
        layers have weights (None: a class gateport does not know, then as its group says).
        """
        layers = []
        for spec in graph.layers:
            if spec.scope:
                continue
            has = holds_weights(spec, graph)
            if has is None:
                has = self._has_weights(spec.name)
            if has:
                layers.append(spec.name)
        stored = [n for n in self.layer_names if self._has_weights(n)]
        if len(stored) != len(layers):
            shown = lambda names: ", ".join(quote(n) for n in names[:8]) + (" ..." if len(names) > 8 else "")  # noqa: E731
            raise FormatError(f"expected {len(layers)} saved layers with weights for the config's "
                              f"layers with weights ({shown(layers)}), found {len(stored)} "
                              f"({shown(stored)}); Keras loads them by position and refuses this",
                              file=self.file)
        self.rename = dict(zip(layers, stored))
        for spec in graph.layers:
            if spec.is_container and not spec.scope and spec.name in self.rename:
                self._check_nested_order(spec.name, graph, holds_weights)

    def _check_nested_order(self, name: str, graph: KerasGraph, holds_weights) -> None:
        """A nested model's group holds all its layers' weights; Keras assigns them by position
        (trainable ones first, layer by layer, then the frozen ones), gateport by the layer
        name inside each weight name. Both agree when the names appear in the config's order;
        otherwise (names swapped in the config) the file is refused rather than guessed."""
        owners = self.nested_names.get(name, set())
        found: list[str] = []
        for wn in attr_list(self.group[self.rename[name]].attrs, "weight_names"):
            owner = next((seg for seg in wn.split("/") if seg in owners), None)
            if owner is not None and owner not in found:
                found.append(owner)
        inner = [s for s in graph.layers if s.scope[:1] == (name,) and not s.is_copy and not s.is_container]
        has = {s.local_name: holds_weights(s, graph) for s in inner}
        inner = [s for s in inner if has[s.local_name] or (has[s.local_name] is None and s.local_name in found)]
        expected = [s.local_name for s in sorted(inner, key=lambda s: not flag(s.config, "trainable", True,
                                                                                 file=self.file, layer=layer_label(s)))]
        if found != expected:
            raise FormatError(f"nested model {quote(name)}: expected the weights of its layers in the "
                              f"config's order ({', '.join(map(quote, expected))}), found them stored in "
                              f"the order {', '.join(map(quote, found))}; Keras assigns them by position",
                              file=self.file)


def versions(*attr_sets) -> tuple[str | None, str | None]:
    """The ``keras_version`` and ``backend`` attributes, from the first set that has them."""
    version = next((v for a in attr_sets if (v := attr_str(a, "keras_version"))), None)
    backend = next((v for a in attr_sets if (v := attr_str(a, "backend"))), None)
    return version, backend


def full_model_weights(f: h5py.File) -> h5py.Group:
    if "model_weights" not in f:
        raise FormatError("expected a model_weights group next to model_config, found none",
                          file=f.filename)
    return member(f, "model_weights", f.filename)
