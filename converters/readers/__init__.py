"""Keras files -> :class:`converters.ir.Model`.

``read(path, config=None)`` reads a Keras 1/2/tf-keras/Keras 3 full-model ``.h5``, a Keras 3
``.keras`` archive (or a ``.keras`` that is really HDF5), or a weights-only ``.h5`` /
``.weights.h5`` together with ``config``: a model JSON file (``model.to_json()``), a ``.keras``
or a full ``.h5`` to take the architecture from (or the parsed JSON as a dict).

``read_file(path, config=None)`` reads any model file gateport reads (Keras, a PyTorch state_dict, ONNX,
a gateport IR file), deciding the kind from the file's bytes (:func:`detect.source_kind`); the
public :func:`converters.read` is it, plus models in memory.

``read_recurrent_weights(path, config=None)`` reads only the recurrent layers (for exporting
gates or a state dict) and works where ``read`` cannot: models with custom layers, or a
weights-only file without any architecture (the layers are then inferred from array shapes).

The Keras readers use only numpy, h5py, json and zipfile; nothing in a file is ever executed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py

from .. import budget
from ..errors import FormatError, GateportError, UnsupportedError, UsageError, check_path
from ..ir import RECURRENT_OPS, Model
from ..sanitize import one_line, quote
from . import detect
from .hdf5 import attr_str, mapped_file
from .hdf5_probe import probe
from .keras_build import build_model, build_recurrent_only, holds_weights, object_path_semantics
from .keras_config import MAX_CONFIG_BYTES, KerasGraph, load_config_json, parse_model
from .keras_h5 import LegacyH5Weights, full_model_weights, versions
from .keras_infer import infer_recurrent_model
from .keras_v3 import Archive, V3Weights
from .malformed import IO_ERRORS, malformed

__all__ = ["read", "read_file", "read_recurrent_weights", "read_architecture", "check_source", "warn_non_finite"]


def read(path: str | Path, config: Any = None) -> Model:
    """The whole model as IR. ``config`` is required for weights-only files."""
    return _read(path, config, recurrent_only=False)


def read_recurrent_weights(path: str | os.PathLike, config: Any = None) -> Model:
    """Only the recurrent layers, each as a node on its own input ``<layer>_input``."""
    return _read(path, config, recurrent_only=True)


def read_file(path: str | os.PathLike, config: Any = None) -> Model:
    """Any model file as IR, its kind decided from its bytes: a gateport IR file, a PyTorch state_dict
    (``config``: an optional JSON layer description), an ONNX model, or a Keras file (``config``: the
    architecture of a weights-only file). A missing file raises ModelNotFoundError."""
    path = Path(check_path("a model file path", path))
    check_source(path)
    check_config_type(config)
    model = warn_non_finite(_read_kind(path, config))  # every reader's weights, not Keras' alone
    budget.names(((what, name) for node in model.nodes for what, name in
                  [("layer", node.name), *(("tensor", t) for t in (*node.inputs, *node.outputs))]), file=str(path))
    budget.names([*(("input", spec.name) for spec in model.inputs), *(("output", name) for name in model.outputs)],
                 file=str(path))
    recurrent = sum(node.op in RECURRENT_OPS for node in model.nodes)
    budget.count(recurrent, "recurrent layers", file=str(path), limit=budget.MAX_RECURRENT)
    # an ONNX dim_param / .gates null as the features of an input a recurrent layer reads: inputs of any width
    # met weights made for one (other inputs may leave it open: an attention mask's key steps, a per-channel op)
    fed = {node.inputs[0] for node in model.nodes if node.op in RECURRENT_OPS and node.inputs}
    for spec in model.inputs:
        if spec.name in fed and spec.dtype.startswith("float") and spec.shape and spec.shape[-1] is None:
            raise UnsupportedError("expected a fixed size on the last axis (the features its weights were made "
                                   "for), found a symbolic one", file=str(path), layer=f"input {quote(spec.name)}")
    return model


def check_config_type(config: Any) -> None:
    """A ``config`` is a path (str or os.PathLike), a dict (an architecture or a layer description in memory) or
    None: an int was taken by ``os.stat`` as a file descriptor, anything else failed as a TypeError."""
    if config is not None and not isinstance(config, (str, os.PathLike, dict)):
        raise UsageError(f"expected config a file path (str or os.PathLike), a dict or None, found "
                         f"{type(config).__name__}")
    if isinstance(config, (str, os.PathLike)):
        check_path("config a file path", config)


def _read_kind(path: Path, config: Any) -> Model:
    kind = detect.source_kind(path)
    if kind == "gates":
        from .. import ir_file

        model = ir_file.load(path)
        model.source = {"format": "gates", "path": str(path), "converted_from": model.source}
        return model
    if kind == "torch":
        from . import torch_state

        return torch_state.read(path, description=config)
    if kind == "onnx":
        from . import onnx_model

        return onnx_model.read(path)
    if path.suffix.lower() == ".pb":
        raise UnsupportedError(SAVED_MODEL, file=str(path))
    return read(path, config=config)


#: What a TensorFlow SavedModel is, and the way out.
SAVED_MODEL = ("expected a Keras model file, found a TensorFlow SavedModel (saved_model.pb), which gateport does "
               "not read: load it with tf.keras.models.load_model(FOLDER) and save it as .keras or .h5 "
               "(model.save('model.keras')), then convert that file")


def check_source(path: Path) -> None:
    """Refuse, in one line, a model path that is not a regular file: missing, a folder (a SavedModel
    is named as such), a FIFO, a device (:func:`detect.check_regular`)."""
    import contextlib

    with contextlib.suppress(OSError, ValueError):  # a name too long, a NUL: check_regular says so
        if path.is_dir() and (path / "saved_model.pb").exists():
            raise UnsupportedError(SAVED_MODEL, file=str(path))
    if detect.tf_checkpoint(path) and not path.is_file():
        raise UnsupportedError(detect.TF_CHECKPOINT, file=str(path))
    detect.check_regular(path, "a model file")


def non_finite(model: Model):
    """``(node, weight name, count)`` for every weight array of ``model`` holding NaN or Inf."""
    import numpy as np

    for node in model.nodes:
        for name, array in node.weights.items():
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                yield node, name, int(array.size - np.count_nonzero(np.isfinite(array)))


def warn_non_finite(model: Model) -> Model:
    """Warn (GateportWarning) about every weight array holding NaN or Inf; return ``model``."""
    import warnings

    from ..errors import GateportWarning

    by_node: dict[int, tuple[Any, list[str], int]] = {}
    for node, name, bad in non_finite(model):  # one line a layer, however many of its arrays hold them
        _, names, count = by_node.get(id(node), (node, [], 0))
        by_node[id(node)] = (node, [*names, name], count + bad)
    for node, names, count in by_node.values():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        weights = "weights" if len(names) > 1 else "weight"
        warnings.warn(GateportWarning(one_line(f"{model.source.get('path', model.name)}: {node.label()}: {weights} "
                                               f"{shown} hold{'s' * (len(names) == 1)} {count} NaN/Inf values")),
                      stacklevel=2)
    return model


# -- architectures ---------------------------------------------------------------------------
def read_architecture(config: Any) -> tuple[dict, str | None, str | None]:
    """``(model config dict, keras_version, backend)`` from a JSON file, .keras, full .h5 or dict."""
    if isinstance(config, dict):
        return config, config.get("keras_version"), config.get("backend")
    path = Path(config)
    file = str(path)
    kind = detect.sniff(path)
    if kind == "json":
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise FormatError(f"expected a model config of at most {MAX_CONFIG_BYTES} bytes, found "
                              f"{path.stat().st_size}", file=file)
        cfg = load_config_json(path.read_bytes(), file)
        return cfg, cfg.get("keras_version"), cfg.get("backend")
    if kind == "zip":
        archive = Archive(path)
        try:
            cfg = load_config_json(archive.config_text(), file)
            return cfg, archive.metadata().get("keras_version"), None
        finally:
            archive.close()
    with _open_h5(path) as f:
        text = attr_str(f.attrs, "model_config")
        if not text:
            raise FormatError("expected a model_config attribute (a full-model .h5) to take the "
                              "architecture from, found none", file=file)
        version, backend = versions(f.attrs, f["model_weights"].attrs if "model_weights" in f else {})
        return load_config_json(text, file), version, backend


def _graph(config: Any, version: str | None, backend: str | None, file: str) -> KerasGraph:
    cfg, cfg_version, cfg_backend = read_architecture(config)
    return parse_model(cfg, cfg_version or version, cfg_backend or backend, file=file)


def _open_h5(path: Path) -> h5py.File:
    probe(path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise FormatError(f"cannot open the HDF5 file ({e})", file=str(path)) from None


# -- dispatch --------------------------------------------------------------------------------
def _read(path: str | os.PathLike, config: Any, recurrent_only: bool) -> Model:
    path = Path(path)
    file = str(path)
    try:
        kind = detect.sniff(path)
        if kind == "json":
            raise FormatError("this is a model config without weights: pass the weights file as "
                              "the path and this file as config")
        with malformed("file", errors=IO_ERRORS):
            if kind == "zip":
                return _read_archive(path, config, recurrent_only)
            with _open_h5(path) as f:
                return _read_h5(f, path, config, recurrent_only)
    except GateportError as e:
        raise e.at(file=file)
    except _BuildBug as bug:  # gateport's own error, as itself (the CLI calls it a bug)
        raise bug.error from None


class _BuildBug(Exception):
    """Carries an error of the IR builders past the file-level ``malformed()``, which is for the file's
    storage: a KeyError in gateport's building code is a bug, not a damaged file. (The builders' reads of
    the file's data are wrapped where they happen: hdf5.py, bounded_zip.py, LayerCall.parsing.)"""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def _build(graph: KerasGraph, weights, file: str, source: dict, recurrent_only: bool) -> Model:
    build = build_recurrent_only if recurrent_only else build_model
    try:
        return build(graph, weights, file, source)
    except IO_ERRORS as e:
        raise _BuildBug(e) from e


def _source(fmt: str, graph: KerasGraph, path: Path, config: Any, **extra) -> dict:
    source = {"format": fmt, "keras_version": graph.keras_version, "backend": graph.backend,
              "path": str(path), **extra}
    if graph.semantics_version != graph.keras_version:  # no version recorded, or the layout decided
        source["assumed_keras_version"] = graph.semantics_version
    if graph.semantics_note:
        source["semantics_note"] = graph.semantics_note
    if config is not None and not isinstance(config, dict):
        source["config"] = str(config)
    return source


def _read_archive(path: Path, config: Any, recurrent_only: bool) -> Model:
    file = str(path)
    archive = Archive(path)
    handle = None
    try:
        version = archive.metadata().get("keras_version")
        if config is None:
            graph = parse_model(load_config_json(archive.config_text(), file), version, file=file)
        else:
            graph = _graph(config, version, None, file)
        object_path_semantics(graph)
        weights, handle = archive.weights(graph)
        source = _source("keras_v3", graph, path, config)
        return _build(graph, weights, file, source, recurrent_only)
    finally:
        if handle is not None:
            handle.close()
        archive.close()


def _read_h5(f: h5py.File, path: Path, config: Any, recurrent_only: bool) -> Model:
    file = str(path)
    layout = detect.hdf5_layout(f)
    if layout == "full":
        group = full_model_weights(f)
        version, backend = versions(f.attrs, group.attrs)
        if config is None:
            graph = parse_model(load_config_json(attr_str(f.attrs, "model_config"), file),
                                version, backend, file=file)
        else:
            graph = _graph(config, version, backend, file)
        weights = LegacyH5Weights(group, file, graph, mapped_file(f))
        weights.match(graph, holds_weights)
        return _build(graph, weights, file, _source("keras_h5", graph, path, config), recurrent_only)

    version, backend = versions(f.attrs)
    if config is None:
        if recurrent_only:
            return infer_recurrent_model(f, layout, path, version, backend)
        raise FormatError("this file holds weights only: pass the architecture as config "
                          "(a model JSON, a .keras or a full .h5)")
    graph = _graph(config, version, backend, file)
    if layout == "legacy_weights":
        weights = LegacyH5Weights(f, file, graph, mapped_file(f))
        weights.match(graph, holds_weights)
    else:
        object_path_semantics(graph)
        weights = V3Weights.from_h5(f, graph, file, mapped=mapped_file(f))
    source = _source("keras_weights_h5", graph, path, config,
                     layout="legacy" if layout == "legacy_weights" else "v3")
    return _build(graph, weights, file, source, recurrent_only)
