"""The Python API: read a model, convert it, inspect it, load it into a PyTorch module.

Each function is a thin path down the layers: reader -> IR -> writer. Sources are paths or models
in memory (:mod:`converters.inmemory`); results are files (:func:`convert`) or objects
(:func:`to_torch`, :func:`to_onnx`, :func:`to_keras`). Writers and runtimes are imported only when
used, so ``import converters`` needs numpy and h5py alone.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from .errors import FormatError, GateportError, GraphError, ModelNotFoundError, UnsupportedError, check_path
from .ir import Model
from .readers import SAVED_MODEL, check_source, read_file, warn_non_finite  # noqa: F401 - the public names
from .readers.detect import source_kind  # noqa: F401 - the public name
from . import targets as _targets
from .targets import architecture_path  # noqa: F401 - the public name

#: A file path.
PathLike = Union[str, "os.PathLike[str]"]
#: What :func:`read` accepts: a path, an IR Model, a Keras 3 model, a torch nn.Module or state_dict,
#: an onnx.ModelProto.
Source = Union[PathLike, Model, Any]
#: The ONNX axes left symbolic by default.
DYNAMIC_AXES = ("batch", "time")

#: Conversion targets by name (:mod:`converters.targets`).
TARGETS = _targets.TARGETS


def read(source: Source, config: PathLike | None = None) -> Model:
    """Read a model into the IR: a file path, or a model in memory.

    Files: Keras (``.h5``, ``.keras``, weights-only with ``config`` = the architecture), a PyTorch
    state_dict (``.safetensors``, ``.pt``; ``config`` = an optional JSON layer description), an
    ONNX model, or a gateport IR file; the kind is decided from the file's bytes. In memory: a
    Keras 3 model, a torch ``nn.Module`` or state_dict, an ``onnx.ModelProto``, an IR Model.
    A missing file raises :class:`~converters.errors.ModelNotFoundError` (a ``FileNotFoundError``).

    >>> model = converters.read("model.h5")
    >>> [spec.name for spec in model.inputs], model.outputs
    (['x'], ['dense'])
    """
    if not isinstance(source, (str, os.PathLike)):
        from .inmemory import read_object

        return read_object(source, config)
    return read_file(source, config)


def _source_arg(source: Source) -> Source:
    """A path given as ``source`` as a plain ``str`` (:func:`converters.errors.check_path`), an object as it is."""
    return check_path("a model file path", source) if isinstance(source, (str, os.PathLike)) else source


def convert(source: Source, to: str, output: PathLike, *, config: PathLike | None = None,
            opset: int | None = None, force: bool = False, dynamic: Sequence[str] = DYNAMIC_AXES,
            input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
            weights_dtype: str = "float32") -> Path:
    """Convert ``source`` (a path or a model in memory, see :func:`read`) to target ``to``, written
    atomically at ``output``; returns the path written.

    ``to`` is one of :data:`TARGETS`. ONNX only: ``opset``, ``dynamic`` (the axes left symbolic, of
    ``batch`` and ``time``), ``input_names`` / ``output_names`` for the graph, ``weights_dtype``
    (``"float16"``: weights stored as float16, computed in float32; ``verify(..., fp16=True)`` measures
    what that costs). Each deliberate change
    (:mod:`converters.notes`) is warned as a :class:`~converters.notes.GateportNote` and recorded
    in the artifact.

    >>> converters.convert("model.h5", "onnx", "model.onnx", dynamic=["batch"], output_names=["y"])
    PosixPath('model.onnx')
    """
    _targets.get(to)  # an unknown target is a usage error, before any work
    source = _source_arg(source)
    check_outputs(to, output, _inputs(source, config), force)
    model = _with_notes(_read_for(source, to, config), to)
    try:
        return _write(model, to, output, force, opset, dynamic=dynamic, input_names=input_names,
                      output_names=output_names, weights_dtype=weights_dtype)
    except GateportError as e:  # a writer's refusal names the layer; the file is the source's
        raise e.at(file=model.source.get("path") or model.source.get("object"))


def _write(model: Model, to: str, output: PathLike, force: bool, opset: int | None, **onnx_options) -> Path:
    """Write ``model`` with the writer of target ``to`` (given the options it takes)."""
    target = _targets.get(to)
    given = {"opset": opset, **onnx_options}
    return target.write(model, output, force=force, **{k: given[k] for k in target.options if k in given})


def _read_for(source: Source, to: str, config: PathLike | None) -> Model:
    """The IR of ``source``; for targets holding recurrent layers only, a file whose other layers
    cannot be read (a custom layer, no architecture) still gives its recurrent layers; a missing file or a graph
    that contradicts itself (:class:`~converters.errors.GraphError`) does not."""
    if not _targets.get(to).recurrent_only or not isinstance(source, (str, os.PathLike)):
        return read(source, config)
    from .readers import read_recurrent_weights

    try:
        return read(source, config)
    except (UnsupportedError, FormatError) as full_error:
        if isinstance(full_error, (ModelNotFoundError, GraphError)):
            raise
        try:
            return read_recurrent_weights(source, config)
        except GateportError:
            raise full_error from None


def _with_notes(model: Model, to: str) -> Model:
    """``model`` with the notes of converting it to ``to`` in ``source["notes"]`` (warned once each)."""
    from . import notes

    lines = notes.notes(model, to)
    notes.emit(lines)
    if not lines or not _targets.get(to).records_notes:
        return model
    return dataclasses.replace(model, source={**(model.source or {}), "notes": lines})


def to_torch(source: Source, config: PathLike | None = None):
    """A ready ``torch.nn.Module`` of ``source`` (a path or a model in memory): the generated
    ``model.py`` imported from a private temporary folder, weights loaded, in eval mode.

    >>> net = converters.to_torch(keras_model)
    >>> y = net(torch.from_numpy(x))
    """
    from .inmemory import torch_module

    return torch_module(_with_notes(read(source, config), "torch"))


def to_onnx(source: Source, config: PathLike | None = None, *, opset: int | None = None,
            dynamic: Sequence[str] = DYNAMIC_AXES, input_names: Sequence[str] | None = None,
            output_names: Sequence[str] | None = None, weights_dtype: str = "float32"):
    """An ``onnx.ModelProto`` of ``source``, checked by ``onnx.checker``; options as :func:`convert`.

    >>> proto = converters.to_onnx(keras_model, input_names=["x"])
    >>> onnxruntime.InferenceSession(proto.SerializeToString()).run(None, {"x": x})
    """
    from .errors import require
    from .writers import onnx_graph

    onnx = require("onnx", "onnx")
    model = _with_notes(read(source, config), "onnx")
    proto = onnx_graph.deployable(model, opset or onnx_graph.DEFAULT_OPSET, dynamic, input_names, output_names,
                                  weights_dtype)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_keras(source: Source, config: PathLike | None = None):
    """A Keras 3 model of ``source``: the ``.keras`` gateport writes, loaded by ``keras.saving.load_model``.

    >>> keras_model = converters.to_keras("model.onnx")
    >>> y = keras_model(x)
    """
    from .inmemory import keras_model

    return keras_model(_with_notes(read(source, config), "keras"))


def _inputs(source: Source, config) -> list:
    """The files a conversion reads (an IR model: the ones it was read from; an object: none)."""
    if isinstance(source, Model):
        return [(source.source or {}).get("path"), (source.source or {}).get("config"), config]
    return [source, config] if isinstance(source, (str, os.PathLike)) else [config]


def output_paths(to: str, output: str | os.PathLike) -> list[Path]:
    """Every path converting to ``to`` at ``output`` may write, the main one first."""
    return _targets.get(to).paths(output)


def check_outputs(to: str, output: str | os.PathLike, inputs: list, force: bool = False) -> None:
    """Before any work: refuse an output that is one of ``inputs`` (the model, its config) or a folder
    holding one, that exists (without ``force``), that cannot be written, or named so that its runtime
    would not open it (``.keras`` for Keras)."""
    from . import atomic

    target = _targets.get(to)
    atomic.check_path_type(output)
    # absolute: "." or "x/.." name no file, and the paths beside the output (model.onnx.data) are built from its name
    atomic.refuse_inputs(target.paths(Path(os.path.abspath(output))) if os.fspath(output) else [], inputs)
    for path in [*target.also_writes(output), output]:
        atomic.check_output(path, force, target.folder_files())
    target.check_name(output)


def inspect(source: Source, config: PathLike | None = None) -> dict[str, Any]:
    """The JSON-ready description ``gateport inspect --json`` prints (``source`` as :func:`read`).

    >>> desc = converters.inspect("model.h5")
    >>> [layer["name"] for layer in desc["layers"]]
    ['lstm', 'dense']
    """
    from .explain import describe

    return describe(read(source, config))


def verify(source: PathLike, targets: Sequence[str] = ("torch", "onnx"), *,
           inputs: PathLike | Sequence[Any] | None = None, expected: PathLike | Sequence[Any] | None = None,
           batch: int = 2, steps: int | None = None, seed: int = 0, atol: float | None = None,
           rtol: float | None = None, config: PathLike | None = None,
           artifacts: Mapping[str, Model | PathLike] | None = None, require: str = "independent",
           timeout: float | None = None, isolate: bool = True):
    """Convert the model file ``source`` in memory, run it and every artifact on the same inputs, compare.

    Returns a :class:`converters.verification.Report` (``report.ok``, ``report.rows``, ``report.exit_status``);
    the arguments are those of :func:`converters.verification.verify` (``None``: its default).

    >>> report = converters.verify("model.h5", ["torch", "onnx"], batch=4, steps=7)
    >>> report.ok
    True
    """
    from .verification import verify as run_verify

    source = check_path("a model file path (verify reads files: convert an object with converters.convert first)",
                        source)
    given: dict[str, Any] = {"atol": atol, "rtol": rtol, "timeout": timeout}
    return run_verify(source, targets, inputs=inputs, expected=expected, batch=batch, steps=steps, seed=seed,
                      config=config, artifacts=artifacts, require=require, isolate=isolate,
                      **{k: v for k, v in given.items() if v is not None})


def load_into(module, source: Source, config: PathLike | None = None):
    """Copy the Keras recurrent and dense layers of ``source`` into ``module``'s matching submodules
    (``nn.LSTM``/``nn.GRU``/``nn.RNN``/``nn.Linear``, in registration order); returns ``module``.

    >>> net = converters.load_into(MyNet(), "model.h5")
    """
    from .errors import UsageError, require
    from .writers import torch_state

    if not isinstance(module, require("torch", "torch").nn.Module):
        raise UsageError(f"expected a torch.nn.Module to load into, found {type(module).__name__}")
    return torch_state.load_into(module, read(source, config))
