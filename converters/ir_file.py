"""The IR as one file: a safetensors file whose tensors are ``<node>/<weight>`` and whose metadata
``gateport.manifest`` is the JSON manifest described by ``schemas/ir-manifest.schema.json``.

Arrays are stored as they are, so reading the file back gives bit-identical weights.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import manifest_check, safe_json, safetensors_io
from .atomic import atomic_path
from .errors import FormatError
from .manifest_check import FORMAT, VERSION
from .sanitize import quote
from .ir import Model, Node, TensorSpec

METADATA_KEY = "gateport.manifest"
#: Deepest nesting of a manifest: options and sources nest a few levels, ``converted_from`` one per re-conversion.
MANIFEST_DEPTH = 32


def manifest(model: Model) -> dict:
    """Everything about ``model`` but its arrays, as a JSON-ready dict."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": model.name,
        "source": model.source,
        "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in model.inputs],
        "outputs": list(model.outputs),
        "nodes": [
            {
                "name": n.name,
                "op": n.op,
                "inputs": list(n.inputs),
                "outputs": list(n.outputs),
                "mask": n.mask,
                "options": n.given_options(),
                "source": n.source,
                "weights": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in n.weights.items()},
            }
            for n in model.nodes
        ],
    }


def save(model: Model, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``model`` to ``path`` atomically."""
    tensors = {f"{n.name}/{k}": v for n in model.nodes for k, v in n.weights.items()}
    meta = {METADATA_KEY: json.dumps(manifest(model), default=_json_default)}
    with atomic_path(path, force) as tmp:
        safetensors_io.save(tmp, tensors, meta)
    return Path(path)


def load(path: str | os.PathLike) -> Model:
    """Read a file written by :func:`save`; the manifest is checked (:mod:`converters.manifest_check`),
    graph and weights included, against the header before any tensor data is read."""
    file = str(path)
    header = safetensors_io.read_header(path)
    if METADATA_KEY not in header.metadata:
        raise FormatError(f"no {quote(METADATA_KEY)} metadata: not a gateport IR file", file=file)
    m = safe_json.loads(header.metadata[METADATA_KEY], what=f"metadata {quote(METADATA_KEY)}", file=file,
                        max_depth=MANIFEST_DEPTH)
    manifest_check.check(m, file)
    manifest_check.check_graph(m, file)
    manifest_check.check_weights(m, {name: (e.shape, safetensors_io.dtype_name(e.dtype))
                                     for name, e in header.entries.items()}, file)
    tensors = safetensors_io.read_tensors(path, header)
    nodes = [Node(n["name"], n["op"], list(n["inputs"]), list(n["outputs"]), n["options"],
                  {k: tensors[f"{n['name']}/{k}"] for k in n["weights"]}, n.get("mask"), n.get("source") or {})
             for n in m["nodes"]]
    inputs = [TensorSpec(t["name"], tuple(t["shape"]), t["dtype"]) for t in m["inputs"]]
    model = Model(m["name"], inputs, m["outputs"], nodes, m.get("source") or {})
    manifest_check.check_shapes(model, file)
    return model


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")
