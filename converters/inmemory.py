"""Models in memory, in and out: a Keras 3 model, a torch ``nn.Module`` or state_dict, an ONNX
``ModelProto`` become the IR; the IR becomes a ready ``nn.Module``, ``ModelProto`` or Keras model.

Every object goes through the same readers and writers as a file does. Where those need a file
(Keras' own saving, the generated ``model.py``), it lives in a private temporary folder
(``tempfile.TemporaryDirectory``: mode 0700, removed on return).

    kind(obj) -> "model" | "keras" | "torch-module" | "state-dict" | "onnx" | None
    read_object(obj, config=None) -> Model
    torch_module(model) -> torch.nn.Module
    keras_model(model) -> keras.Model
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import FormatError, GateportError, UsageError, require
from .ir import Model
from .sanitize import comment, quote


def kind(obj: Any) -> str | None:
    """What in-memory model ``obj`` is, or None (a path, or something gateport does not read)."""
    if isinstance(obj, Model):
        return "model"
    keras, torch, onnx = (sys.modules.get(m) for m in ("keras", "torch", "onnx"))
    if keras is not None and isinstance(obj, keras.Model):
        return "keras"
    if torch is not None and isinstance(obj, torch.nn.Module):
        return "torch-module"
    if onnx is not None and isinstance(obj, onnx.ModelProto):
        return "onnx"
    if isinstance(obj, Mapping) and obj and torch is not None and any(
            isinstance(v, (torch.Tensor, Mapping)) for v in obj.values()):
        return "state-dict"
    return None


def _label(what: str, name: object) -> str:
    """How messages and provenance name an in-memory model: ``<keras.Model encoder>``."""
    return f"<{what} {comment(name, 60)}>"


def read_object(obj: Any, config: Any = None) -> Model:
    """The IR of an in-memory model (see :func:`kind`); ``config``: a state_dict's layer description."""
    found = _calling(lambda: kind(obj), obj, "values()")
    if found == "model":
        return obj
    if found == "keras":
        return _read_keras(obj)
    if found in ("torch-module", "state-dict"):
        module = found == "torch-module"
        state = _calling(obj.state_dict, obj, "state_dict()") if module else obj
        return _read_state_dict(state, config,
                                _label("torch.nn.Module", type(obj).__name__) if module else "<state_dict>")
    if found == "onnx":
        from .readers.onnx_model import from_proto

        return _relabel(from_proto(obj), _label("onnx.ModelProto", obj.graph.name or "model"))
    raise UsageError(f"expected a model file path, an IR Model, a Keras 3 model, a torch nn.Module or "
                     f"state_dict, or an onnx.ModelProto; found {type(obj).__name__}")


def _calling(call, obj: Any, what: str):
    """``call()``, code of the caller's object (a module's ``state_dict()``, a mapping's items): an exception it
    raises is one UsageError naming the object and the exception (it passed as the object's own error, a
    RuntimeError from deep inside gateport); gateport's own errors pass through."""
    try:
        return call()
    except GateportError:
        raise
    except Exception as e:
        raise UsageError(f"expected a model object gateport can read, found a {type(obj).__name__} whose {what} "
                         f"raised {type(e).__name__}: {quote(str(e), 200)}") from e


def _relabel(model: Model, label: str) -> Model:
    """``model`` whose source names the object it was read from instead of a file."""
    model.source = {k: v for k, v in (model.source or {}).items() if k != "path"}
    model.source["object"] = label
    return model


def _read_keras(obj) -> Model:
    """A Keras 3 model, saved by Keras itself to a private temporary ``.keras`` and read back."""
    from .readers import read_file as read

    label = _label("keras.Model", obj.name)
    with tempfile.TemporaryDirectory(prefix="gateport-") as tmp:
        path = Path(tmp) / "model.keras"
        try:
            obj.save(path)
        except Exception as e:  # a subclassed model without get_config, an unserializable layer
            raise UsageError(f"Keras could not save this model ({type(e).__name__}: {quote(str(e), 200)}); "
                             "gateport reads functional and Sequential models", file=label) from None
        try:
            model = read(path)
        except GateportError as e:
            e.file = label
            raise
    return _relabel(model, label)


def _read_state_dict(state: Mapping, config: Any, label: str) -> Model:
    """A state_dict (or an nn.Module's) of nn.LSTM/nn.GRU/nn.RNN tensors, as the file reader reads it."""
    from .budget import MAX_BYTES, Budget
    from .readers import torch_state

    torch = require("torch", "torch")
    try:
        tensors = torch_state._flatten(_calling(lambda: dict(state), state, "items"), torch,
                                       Budget(label, limit=MAX_BYTES))
        desc = torch_state.load_description(config, {})
        return _relabel(torch_state.to_model(tensors, desc), label)
    except GateportError as e:
        raise e.at(file=label)


def _import_file(path: Path, name: str):
    """Execute the Python file ``path`` as a fresh module (not registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FormatError(f"expected a Python file, found {quote(str(path))}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_module(model: Model):
    """The generated PyTorch model of ``model``, weights loaded, in eval mode."""
    from .writers import torch_code

    require("torch", "torch")
    with tempfile.TemporaryDirectory(prefix="gateport-") as tmp:
        folder = torch_code.write(model, Path(tmp) / "model")
        module = _import_file(folder / "model.py", f"gateport_generated_{id(model):x}")
        return module.load_model(str(folder / "model.safetensors"))


def keras_model(model: Model):
    """``model`` as a Keras 3 model: the ``.keras`` file gateport writes, loaded by Keras."""
    from .writers import keras_v3

    keras = require("keras", "keras")
    with tempfile.TemporaryDirectory(prefix="gateport-") as tmp:
        path = keras_v3.write(model, Path(tmp) / "model.keras")
        return keras.saving.load_model(path)
