"""The conversion targets: one row per target, read by the API, ``batch``, ``verify`` and the CLI.

Each row gives its target the same verbs, so no caller branches on a target's name:

    write(model, output, force=False, **options)   the artifact at ``output`` (``options``: ``Target.options``)
    build(model, workdir)                          an artifact for a verify run (a path, or ONNX bytes)
    run(artifact, xs, input_names, timeout, max_bytes, given=False) -> (outputs, records or None)
    traces(model, records, masks)                  the records as per-layer traces (:mod:`converters.divergence`)

``build``, ``run`` and ``traces`` are None where ``verify`` cannot run the target. The verbs are small
functions here that import their writer or runtime when called: importing this module imports no
framework. A new target is one row and its verbs here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import UsageError
from .ir import Model
from .sanitize import quote

#: What a verify run returns: the outputs, and the per-layer records (None: the runtime exposes none).
RunResult = tuple[list, Any]


@dataclass(frozen=True)
class Target:
    """One conversion target."""

    name: str
    #: one line for ``--to``'s help
    summary: str
    #: the output's name for a source named ``{stem}`` (``batch`` writes this in its output folder)
    output: str
    write: Callable[..., Path]
    #: the keyword options ``write`` takes besides ``force``
    options: tuple[str, ...] = ()
    #: a folder target: the files it writes in its folder
    files: Callable[[], tuple[str, ...]] | None = None
    #: the other files writing ``output`` writes beside it (checked like ``output`` before any work)
    also_writes: Callable[[Any], list[Path]] = lambda output: []
    #: the files writing ``output`` may write beside it (ONNX: external data of a large model)
    may_write: Callable[[Path], list[Path]] = lambda output: []
    #: holds the recurrent layers only: a file whose other layers cannot be read still converts
    recurrent_only: bool = False
    #: the artifact records the conversion's notes (:mod:`converters.notes`)
    records_notes: bool = True
    #: its runtime opens the file by its name's ending, so a name without ``suffix`` is refused too:
    #: keras.models.load_model reads only ``.keras`` (or legacy ``.h5``) and Model.load_weights only
    #: ``.weights.h5`` (keras/src/saving/saving_api.py: "File format not supported")
    suffix_required: bool = False
    #: the runtime's name in verify's report; None: verify does not run this target
    label: str | None = None
    build: Callable[[Model, Path], Any] | None = None
    run: Callable[..., RunResult] | None = None
    traces: Callable[[Model, Any, Mapping], dict] | None = None

    @property
    def kind(self) -> str:
        """``folder`` or ``file``: what ``-o`` names."""
        return "folder" if self.files else "file"

    @property
    def suffix(self) -> str:
        """The ending an output file must have (``.onnx``); empty for a folder target."""
        return self.output.replace("{stem}", "")

    def check_name(self, output: str | os.PathLike) -> None:
        """Refuse an output name its runtime would not open (``suffix_required``) before any work."""
        name = os.path.basename(os.path.normpath(os.fspath(output))).lower()
        if self.suffix_required and not name.endswith(self.suffix):
            raise UsageError(f"expected an output name ending in {self.suffix} for --to {self.name} (Keras opens "
                             f"the file by that ending), found {quote(os.fspath(output))}")

    def folder_files(self) -> tuple[str, ...] | None:
        """The files a folder target writes in its folder; None for a file target."""
        return self.files() if self.files else None

    def paths(self, output: str | os.PathLike) -> list[Path]:
        """Every path writing ``output`` may create, ``output`` first."""
        output = Path(output)
        inside = [output / name for name in self.folder_files() or ()]
        return [output, *inside, *self.also_writes(output), *self.may_write(output)]


# -- write -------------------------------------------------------------------------------------------
def _write_gates(model: Model, output, force: bool = False) -> Path:
    from . import ir_file

    return ir_file.save(model, output, force=force)


def _write_torch(model: Model, output, force: bool = False) -> Path:
    from .writers import torch_code

    return torch_code.write(model, output, force=force)


def _write_numpy(model: Model, output, force: bool = False) -> Path:
    from .writers import numpy_code

    return numpy_code.write(model, output, force=force)


def _write_state_dict(model: Model, output, force: bool = False) -> Path:
    from .writers import torch_state

    return torch_state.write(model, output, force=force)


def _write_onnx(model: Model, output, force: bool = False, *, opset: int | None = None, **options) -> Path:
    from .writers import onnx_graph

    if opset is not None:  # None: the writer's default
        options["opset"] = opset
    return onnx_graph.write(model, output, force=force, **options)


def _write_keras(model: Model, output, force: bool = False) -> Path:
    from .writers import keras_v3

    return keras_v3.write(model, output, force=force)


def _write_keras_weights(model: Model, output, force: bool = False) -> Path:
    from .writers import keras_v3

    return keras_v3.write_weights(model, output, force=force, architecture=architecture_path(output))


def architecture_path(output: str | os.PathLike) -> Path:
    """Where ``--to keras-weights -o OUTPUT`` writes the architecture JSON."""
    return Path(str(output).removesuffix(".weights.h5").removesuffix(".h5") + ".json")


def _torch_files() -> tuple[str, ...]:
    from .writers.torch_code import FILES

    return FILES


def _numpy_files() -> tuple[str, ...]:
    from .writers.numpy_code import FILES

    return FILES


# -- build and run (verify) --------------------------------------------------------------------------
def _build_torch(model: Model, workdir: Path) -> Path:
    return _write_torch(model, workdir / "torch")


def _build_numpy(model: Model, workdir: Path) -> Path:
    return _write_numpy(model, workdir / "numpy")


def _build_onnx(model: Model, workdir: Path):
    from .writers import onnx_graph

    return onnx_graph.to_onnx(model)


def _build_keras(model: Model, workdir: Path) -> Path:
    path = workdir / "model.keras"
    _write_keras(model, path)
    return path


def _run_torch(artifact, xs: Sequence, input_names, timeout: float, max_bytes: int, given: bool = False) -> RunResult:
    """Generated PyTorch code in a child process, with every recurrent submodule's tensors."""
    from .runtimes import run_torch_isolated

    return run_torch_isolated(artifact, xs, timeout=timeout, max_bytes=max_bytes, given=given)


def _run_numpy(artifact, xs: Sequence, input_names, timeout: float, max_bytes: int, given: bool = False) -> RunResult:
    """A generated numpy model.py in a child process, with every layer's tensors."""
    from .writers import numpy_code

    return numpy_code.run_isolated(artifact, xs, timeout=timeout, max_bytes=max_bytes, given=given)


def _run_onnx(artifact, xs: Sequence, input_names, timeout: float, max_bytes: int, given: bool = False) -> RunResult:
    """onnxruntime, with the fused recurrent nodes' tensors as extra outputs (None if it cannot). A user's file
    (``given``) runs in a bounded child process (:func:`converters.runtimes.run_isolated`), gateport's own
    freshly written graph in this process."""
    from .runtimes import run_isolated, run_onnx_traced

    if given:
        return run_isolated("onnx", artifact, xs, input_names, timeout=timeout, max_bytes=max_bytes)
    return run_onnx_traced(artifact, xs, input_names)


def _run_keras(artifact, xs: Sequence, input_names, timeout: float, max_bytes: int, given: bool = False) -> RunResult:
    """Keras 3 (safe_mode): the outputs only. A user's file (``given``) in a bounded child process."""
    from .runtimes import run_isolated, run_keras

    if given:
        return run_isolated("keras", artifact, xs, timeout=timeout, max_bytes=max_bytes)
    return run_keras(artifact, xs), None


def _torch_traces(model: Model, records, masks: Mapping) -> dict:
    from .divergence import torch_traces

    return torch_traces(model, records)


def _numpy_traces(model: Model, records, masks: Mapping) -> dict:
    from .divergence import numpy_traces

    return numpy_traces(model, records)


def _onnx_traces(model: Model, probes, masks: Mapping) -> dict:
    from .divergence import onnx_traces

    return onnx_traces(model, probes, dict(masks))


# -- the table ---------------------------------------------------------------------------------------
#: Every target by name, in the order ``--to`` lists them.
TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("gates", "the gate-level IR: one safetensors file with its JSON manifest", "{stem}.gates",
           _write_gates, recurrent_only=True, records_notes=False),
    Target("torch", "standalone PyTorch model.py + model.safetensors", "{stem}", _write_torch,
           files=_torch_files, label="torch", build=_build_torch, run=_run_torch,
           traces=_torch_traces),
    Target("numpy", "standalone numpy model.py + model.npz: each recurrent layer as its equations", "{stem}",
           _write_numpy, files=_numpy_files, label="numpy (generated)", build=_build_numpy, run=_run_numpy,
           traces=_numpy_traces),
    Target("torch-state-dict", "nn.LSTM/nn.GRU/nn.RNN state_dicts of the recurrent layers (.safetensors)",
           "{stem}.safetensors", _write_state_dict, recurrent_only=True),
    Target("onnx", "ONNX model with fused LSTM/GRU/RNN nodes", "{stem}.onnx", _write_onnx,
           options=("opset", "dynamic", "input_names", "output_names", "weights_dtype"),
           may_write=lambda output: [output.with_name(output.name + ".data")], label="onnx",
           build=_build_onnx, run=_run_onnx, traces=_onnx_traces),
    Target("keras", "Keras 3 .keras file, loadable by keras.models.load_model", "{stem}.keras", _write_keras,
           suffix_required=True, label="keras (converted)", build=_build_keras, run=_run_keras),
    Target("keras-weights", "Keras 3 .weights.h5 (and its architecture as FILE.json)", "{stem}.weights.h5",
           _write_keras_weights, also_writes=lambda output: [architecture_path(output)], suffix_required=True),
)}

#: The targets ``verify`` can run, by name.
RUNNABLE: dict[str, Target] = {name: t for name, t in TARGETS.items() if t.run is not None}


def get(name: str) -> Target:
    """The row of target ``name``; an unknown name is a usage error naming the known ones."""
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown target {name!r}; expected one of {', '.join(TARGETS)}") from None
