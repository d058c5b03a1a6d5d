"""``--to keras`` (a Keras 3 ``.keras`` file) and ``--to keras-weights`` (``.weights.h5``).

Written with json, zipfile and h5py alone, in the layout keras/src/saving/saving_lib.py writes and
``keras.models.load_model`` reads with no custom objects (SEMANTICS.md §3.7):

* ``metadata.json``: ``{"keras_version", "date_saved"}``;
* ``config.json``: a ``Functional`` model whose layers are plain ``keras.layers`` objects, called as
  in the IR (Keras 3 inbound-node format); masks are left for Keras to compute, and checked
  (:mod:`converters.writers.keras_graph`);
* ``model.weights.h5``: ``vars`` of the model, then ``layers/<class in snake case>[_k]/...`` per
  layer in Keras' own ``model.layers`` order, each ``vars`` group holding ``"0"``, ``"1"`` ...

What Keras 3 cannot compute exactly is refused with an UnsupportedError naming the layer; Keras 2's
hard_sigmoid is kept by scaling the weights that feed it (:mod:`converters.writers.keras_layers`).
"""
from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path, atomic_paths
from ..errors import GateportError
from ..ir import Model
from ..keras_classes import RECURRENT_LAYERS
from ..norm_checks import check_model
from ..shapes import infer_shapes
from .keras_graph import KerasLayerGraph, build, weight_paths
from .keras_layers import KerasLayer, layer_object

#: The Keras whose file layout this writes (recorded as ``keras_version``; also what tells the
#: Keras reader that "hard_sigmoid" here is Keras 3's).
KERAS_VERSION = "3.15.1"


def _tensor(graph: KerasLayerGraph, shapes: dict, dtypes: dict, tensor: str) -> dict:
    layer, index = graph.refs[tensor]
    shape = shapes.get(tensor)
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, *shape] if shape is not None else [None, None],
                       "dtype": dtypes.get(tensor, "float32"), "keras_history": [layer, 0, index]}}


def _inbound(graph: KerasLayerGraph, layer: KerasLayer, shapes: dict, dtypes: dict) -> list[dict]:
    args = [_tensor(graph, shapes, dtypes, t) for t in layer.args]
    for position, value in sorted(layer.constants.items()):  # an operation's constants (keras_tf_ops.py)
        args.insert(position, value)
    kwargs: dict[str, Any] = {}
    if layer.class_name in RECURRENT_LAYERS:
        kwargs["training"] = False
    if layer.initial_state:
        kwargs["initial_state"] = [_tensor(graph, shapes, dtypes, t) for t in layer.initial_state]
    kwargs.update(layer.call_kwargs)
    kwargs.update({k: _tensor(graph, shapes, dtypes, t) for k, t in layer.tensor_kwargs.items()})
    if layer.mask_list is not None:
        kwargs["mask"] = [None if t is None else _tensor(graph, shapes, dtypes, t) for t in layer.mask_list]
    return [{"args": [args] if layer.list_input else args, "kwargs": kwargs}]


def _refs(graph: KerasLayerGraph, tensors: list[str]) -> list:
    refs = [[*graph.refs[t][:1], 0, graph.refs[t][1]] for t in tensors]
    return refs[0] if len(refs) == 1 else refs


def model_config(model: Model, graph: KerasLayerGraph | None = None) -> dict:
    """The ``config.json`` of ``model`` (what ``keras.saving.serialize_keras_object`` gives)."""
    graph = graph or build(model)
    shapes = infer_shapes(model)
    check_model(model, shapes)  # the normalization layers' weights against their inputs (a stranger's IR)
    dtypes = {t: graph.input_specs[t][1] for t in graph.input_specs}
    layers = []
    for name, tensor in graph.inputs:
        shape, dtype = graph.input_specs[tensor]
        cfg = {"batch_shape": [None, *shape], "dtype": dtype, "sparse": False, "ragged": False,
               "name": name, "optional": False}
        layers.append({**layer_object("InputLayer", cfg), "name": name, "inbound_nodes": []})
    for layer in graph.layers:
        obj = layer_object(layer.class_name, layer.config)
        if layer.module != obj["module"]:  # a Keras 3 operation node
            obj.update(module=layer.module, registered_name=layer.class_name)
        layers.append({**obj, "name": layer.name, "inbound_nodes": _inbound(graph, layer, shapes, dtypes)})
    return {
        "module": "keras.src.models.functional", "class_name": "Functional",
        "config": {"name": graph.name, "trainable": True, "layers": layers,
                   "input_layers": _refs(graph, [t for _, t in graph.inputs]),
                   "output_layers": _refs(graph, graph.outputs)},
        "registered_name": "Functional", "build_config": {"input_shape": None}, "compile_config": {},
    }


def _write_weights_h5(target, graph: KerasLayerGraph, model: Model) -> None:
    import h5py

    with h5py.File(target, "w") as f:
        f.create_group("vars").attrs["name"] = graph.name
        for path, item in weight_paths(graph, model):
            if isinstance(item, str):  # an input layer: no variables
                f.create_group(f"{path}/vars").attrs["name"] = item
                continue
            for sub, (name, arrays) in item.variables.items():
                group = f.create_group(f"{path}/{sub}/vars" if sub else f"{path}/vars")
                group.attrs["name"] = name
                for k, array in enumerate(arrays):
                    array = np.asarray(array)  # float64 layers keep float64 variables (dtypes.py)
                    dtype = np.float64 if array.dtype == np.float64 else np.float32
                    group.create_dataset(str(k), data=array.astype(dtype))


def _prepare(model: Model) -> KerasLayerGraph:
    try:
        return build(model)
    except GateportError as e:
        raise e.at(file=model.source.get("path"))


def write(model: Model, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``model`` as a Keras 3 ``.keras`` file at ``path``, atomically."""
    graph = _prepare(model)
    config = json.dumps(model_config(model, graph))
    notes = (model.source or {}).get("notes")  # what the conversion changed (converters.notes)
    metadata = json.dumps({"keras_version": KERAS_VERSION,
                           "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                           **({"gateport_notes": list(notes)} if notes else {})})
    weights = io.BytesIO()
    _write_weights_h5(weights, graph, model)
    with atomic_path(path, force) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr("metadata.json", metadata)
            zf.writestr("config.json", config)
            zf.writestr("model.weights.h5", weights.getvalue())
    return Path(path)


def write_weights(model: Model, path: str | os.PathLike, force: bool = False,
                  architecture: str | os.PathLike | None = None) -> Path:
    """Write ``model``'s weights as a Keras 3 ``.weights.h5`` (for ``model.load_weights``), atomically.

    The layer structure is that of :func:`model_config`; :func:`write_config` writes it as JSON, and
    so does ``architecture`` (a path), committed with the weights: both files or neither.
    """
    graph = _prepare(model)
    paths = [architecture, path] if architecture is not None else [path]
    with atomic_paths(paths, force) as tmps:
        if architecture is not None:
            tmps[0].write_text(json.dumps(model_config(model, graph), indent=1))
        _write_weights_h5(str(tmps[-1]), graph, model)
    return Path(path)


def write_config(model: Model, path: str | os.PathLike, force: bool = False) -> Path:
    """Write :func:`model_config` as JSON (what ``keras.models.model_from_json`` reads)."""
    text = json.dumps(model_config(model, _prepare(model)), indent=1)
    with atomic_path(path, force) as tmp:
        tmp.write_text(text)
    return Path(path)
