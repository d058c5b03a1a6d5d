"""Recurrent layers of a weights-only file with no architecture, inferred from array shapes.

A layer is taken as recurrent when it stores ``kernel (in, G*u)``, ``recurrent_kernel (u, G*u)``
and optionally a bias (or Keras 1 per-gate arrays): G = 4 is an LSTM, 3 a GRU, 1 a SimpleRNN.
The bias tells cuDNN (``2*G*u``) and GRU ``reset_after`` (``(2, 3u)``) apart. What arrays cannot
tell - activations, return_sequences - is assumed (cuDNN layers have fixed activations;
others get the Keras defaults of the file's version) and listed in ``node.source["assumed"]``.
"""
from __future__ import annotations

from pathlib import Path

import h5py

from ..gates import GATES
from ..keras_classes import CLASSES, RECURRENT_CLASS
from ..ir import Model
from .hdf5 import Weight
from .keras_build import build_recurrent_only, object_path_semantics
from .keras_config import KerasGraph, LayerSpec
from .keras_h5 import LegacyH5Weights
from .keras_legacy import KERAS1_COUNTS, keras1_parts
from .keras_recurrent import split_directions
from .keras_v3 import V3Weights

#: gates per unit -> the recurrent class that stores them (4 LSTM, 3 GRU, 1 SimpleRNN)
_KINDS = {len(GATES[op]): cls for op, cls in RECURRENT_CLASS.items()}
_ASSUMED = ["activation", "recurrent_activation", "return_sequences", "go_backwards"]


def _recurrent_class(weights: list[Weight]) -> tuple[str, dict] | None:
    """``(class_name, config)`` of a recurrent layer that would store ``weights``, or None."""
    arrays = [w.array for w in weights]
    for kind, count in KERAS1_COUNTS.items():
        if len(arrays) == count and all(a.ndim in (1, 2) for a in arrays):
            cls = RECURRENT_CLASS[kind]
            parts = keras1_parts(kind, [w.path for w in weights])
            units = next(a.shape[-1] for (p, _), a in zip(parts, arrays) if p == "U")
            return cls, {"units": int(units), "reset_after": False}
    if len(arrays) not in (2, 3) or arrays[0].ndim != 2 or arrays[1].ndim != 2:
        return None
    kernel, recurrent = arrays[0], arrays[1]
    units = recurrent.shape[0]
    if units == 0 or recurrent.shape[1] % units or recurrent.shape[1] != kernel.shape[1]:
        return None
    gates = recurrent.shape[1] // units
    if gates not in _KINDS:
        return None
    cls = _KINDS[gates]
    config = {"units": int(units), "use_bias": len(arrays) == 3}
    if len(arrays) == 3:
        bias = arrays[2]
        if bias.shape == (2 * gates * units,) and gates > 1:
            return "CuDNN" + cls, config
        if cls == "GRU":
            config["reset_after"] = bias.ndim == 2
    elif cls == "GRU":
        config["reset_after"] = True
    return cls, config


def _spec(name: str, weights: list[Weight], version: str | None) -> LayerSpec | None:
    halves = None
    sides = {s for w in weights for s in w.path.split("/") if s.startswith(("forward_", "backward_"))}
    if sides and len(weights) % 2 == 0:
        halves = split_directions(weights)
    found = _recurrent_class(halves[0] if halves else weights)
    if found is None:
        return None
    cls, config = found
    config.setdefault("activation", "tanh")
    default_ract = CLASSES[cls].version_defaults.get("recurrent_activation")  # cuDNN cells have fixed ones
    if default_ract is not None:
        config["recurrent_activation"] = default_ract(version)
    config["return_sequences"] = True
    layer = {"class_name": cls, "config": {"name": name, **config}}
    if halves:
        return LayerSpec(name, "Bidirectional", {"name": name, "layer": layer, "merge_mode": "concat"})
    return LayerSpec(name, cls, layer["config"])


def infer_recurrent_model(f: h5py.File, layout: str, path: Path, version: str | None,
                          backend: str | None) -> Model:
    file = str(path)
    specs = []
    semantics = KerasGraph("model", [], [], [], keras_version=version, semantics_version=version)
    if layout != "legacy_weights":
        object_path_semantics(semantics)  # defaults below are those of the Keras that wrote it
    version_for_defaults = semantics.semantics_version
    if layout == "legacy_weights":
        source = LegacyH5Weights(f, file)
        source.rename = {n: n for n in source.layer_names}  # the layers are the stored groups
        for name in source.layer_names:
            spec = _spec(name, source.stored(name), version_for_defaults)
            if spec:
                specs.append(spec)
    else:
        graph = KerasGraph("model", [], [], [])
        source = V3Weights.from_h5(f, graph, file)
        tops = sorted({"/".join(p.split("/")[:2]) for p in source.arrays if p.startswith("layers/")})
        for top in tops:
            name = top.split("/", 1)[1]
            probe = LayerSpec(name, "Bidirectional", {})
            source.prefix[((), name)] = top
            weights = source.layer_weights(probe) or source._recurrent(top)
            spec = _spec(name, weights, version_for_defaults)
            if spec:
                specs.append(spec)
    graph = KerasGraph(name=path.stem, layers=specs, inputs=[], outputs=[], keras_version=version,
                       semantics_version=version_for_defaults, backend=backend,
                       semantics_note=semantics.semantics_note)
    model = build_recurrent_only(graph, source, file, {
        "format": "keras_weights_h5", "keras_version": version, "backend": backend,
        "path": file, "layout": "legacy" if layout == "legacy_weights" else "v3",
        "architecture": "inferred from weight shapes"})
    for node in model.nodes:
        fixed = node.source.get("class_name", "").startswith("CuDNN") or \
            node.source.get("layer_class", "").startswith("CuDNN")
        node.source["assumed"] = _ASSUMED[2:] if fixed else list(_ASSUMED)
    return model
