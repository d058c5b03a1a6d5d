"""The Python API: read a model, convert it, inspect it, load it into a PyTorch module.

Each function is a thin path down the layers: reader -> IR -> writer. Writers and runtimes are
imported only when used, so ``import converters`` needs numpy and h5py alone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import FormatError, GateportError, UnsupportedError
from .ir import Model

#: Conversion targets: name -> (what -o names, one-line description).
TARGETS = {
    "gates": ("file", "the gate-level IR: one safetensors file with its JSON manifest"),
    "torch": ("folder", "standalone PyTorch model.py + model.safetensors"),
    "torch-state-dict": ("file", "nn.LSTM/nn.GRU/nn.RNN state_dicts of the recurrent layers (.safetensors)"),
    "onnx": ("file", "ONNX model with fused LSTM/GRU/RNN nodes"),
    "keras": ("file", "Keras 3 .keras file, loadable by keras.models.load_model"),
    "keras-weights": ("file", "Keras 3 .weights.h5 (and its architecture as FILE.json)"),
}


def source_kind(path: Path) -> str:
    """What a model file is, from its bytes: ``gates``, ``torch``, ``onnx`` or ``keras``."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: 8-byte header length, then JSON
        from . import ir_file, safetensors_io

        _, metadata = safetensors_io.load_metadata(path)
        return "gates" if ir_file.METADATA_KEY in metadata else "torch"
    if head.startswith(b"PK\x03\x04"):  # a .keras archive, or a zip-format torch.save
        import zipfile

        try:
            names = zipfile.ZipFile(path).namelist()
        except (zipfile.BadZipFile, ValueError):  # ValueError: a member name that is not its UTF-8
            return "keras"  # the Keras reader says what is wrong with it
        return "torch" if any(n.endswith("/data.pkl") for n in names) else "keras"
    if head[:1] == b"\x08" and path.suffix.lower() == ".onnx":  # ModelProto field 1, ir_version
        return "onnx"
    if head[:1] == b"\x80" and path.suffix.lower() in (".pt", ".pth", ".bin"):  # legacy torch.save
        return "torch"
    return "keras"


def read(path: str | os.PathLike, config: str | os.PathLike | None = None) -> Model:
    """Read any supported model file into the IR.

    Keras (``.h5``, ``.keras``, weights-only with ``config`` = the architecture), a PyTorch
    state_dict (``.safetensors``, ``.pt``; ``config`` = an optional JSON layer description), an
    ONNX model, or a gateport IR file. The kind is decided from the file's bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError("no such file", file=str(path))
    kind = source_kind(path)
    if kind == "gates":
        from . import ir_file

        return ir_file.load(path)
    if kind == "torch":
        from .readers import torch_state

        return torch_state.read(path, description=config)
    if kind == "onnx":
        from .readers import onnx_model

        return onnx_model.read(path)
    from .readers import read as read_keras

    return warn_non_finite(read_keras(path, config=config))


def warn_non_finite(model: Model) -> Model:
    """Warn (GateportWarning) about every weight array holding NaN or Inf; return ``model``."""
    import warnings

    import numpy as np

    from .errors import GateportWarning

    for node in model.nodes:
        for name, array in node.weights.items():
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                bad = int(array.size - np.isfinite(array).sum())
                warnings.warn(GateportWarning(f"{model.source.get('path', model.name)}: {node.label()}: "
                                              f"weight {name} holds {bad} NaN/Inf values"), stacklevel=2)
    return model


def convert(source: str | os.PathLike | Model, to: str, output: str | os.PathLike, *,
            config: str | os.PathLike | None = None, opset: int | None = None, force: bool = False) -> Path:
    """Convert ``source`` (a path or an IR model) to target ``to``, written atomically at ``output``."""
    if to not in TARGETS:
        raise UnsupportedError(f"unknown target {to!r}; expected one of {', '.join(TARGETS)}")
    check_outputs(to, output, _inputs(source, config), force)
    if to in ("gates", "torch-state-dict") and not isinstance(source, Model):
        from .readers import read_recurrent_weights

        try:
            model = read(source, config)
        except (UnsupportedError, FormatError) as full_error:
            # a custom layer elsewhere in the model, or a weights-only file without its architecture,
            # does not stop its recurrent weights from converting
            try:
                model = read_recurrent_weights(source, config)
            except GateportError:
                raise full_error from None
    else:
        model = source if isinstance(source, Model) else read(source, config)
    if to == "gates":
        from . import ir_file

        return ir_file.save(model, output, force=force)
    if to == "torch":
        from .writers import torch_code

        return torch_code.write(model, output, force=force)
    if to == "torch-state-dict":
        from .writers import torch_state

        return torch_state.write(model, output, force=force)
    if to == "keras":
        from .writers import keras_v3

        return keras_v3.write(model, output, force=force)
    if to == "keras-weights":
        from .writers import keras_v3

        return keras_v3.write_weights(model, output, force=force, architecture=architecture_path(output))
    from .writers import onnx_graph

    kwargs = {} if opset is None else {"opset": opset}
    return onnx_graph.write(model, output, force=force, **kwargs)


def _inputs(source: str | os.PathLike | Model, config) -> list:
    """The files a conversion reads (an IR model: the ones it was read from)."""
    if isinstance(source, Model):
        return [(source.source or {}).get("path"), (source.source or {}).get("config"), config]
    return [source, config]


def architecture_path(output: str | os.PathLike) -> Path:
    """Where ``--to keras-weights -o OUTPUT`` writes the architecture JSON."""
    return Path(str(output).removesuffix(".weights.h5").removesuffix(".h5") + ".json")


def output_paths(to: str, output: str | os.PathLike) -> list[Path]:
    """Every path converting to ``to`` at ``output`` may write, the main one first."""
    from .writers.torch_code import FILES

    output = Path(output)
    if to == "torch":
        return [output] + [output / name for name in FILES]
    if to == "keras-weights":
        return [output, architecture_path(output)]
    if to == "onnx":
        return [output, output.with_name(output.name + ".data")]
    return [output]


def check_outputs(to: str, output: str | os.PathLike, inputs: list, force: bool = False) -> None:
    """Before any work: refuse an output that is one of ``inputs`` (the model, its config) or a folder
    holding one, that exists (without ``force``), or that cannot be written."""
    from . import atomic
    from .writers.torch_code import FILES

    atomic.refuse_inputs(output_paths(to, output) if os.fspath(output) else [], inputs)
    for path in ([architecture_path(output)] if to == "keras-weights" else []) + [output]:
        atomic.check_output(path, force, FILES if to == "torch" else None)


def inspect(source: str | os.PathLike | Model, config: str | os.PathLike | None = None) -> dict[str, Any]:
    """The JSON-ready description ``gateport inspect --json`` prints."""
    from .explain import describe

    return describe(source if isinstance(source, Model) else read(source, config))


def verify(source, targets=("torch", "onnx"), **options):
    """Convert ``source`` in memory, run it and every artifact on the same inputs, compare.

    Returns a :class:`converters.verify.Report` (``report.ok``, ``report.rows``); options are those of
    :func:`converters.verify.verify` (inputs, expected, batch, steps, seed, atol, rtol, config, artifacts).
    """
    from .verify import verify as run_verify

    return run_verify(source, targets, **options)


def load_into(module, source, config: str | os.PathLike | None = None):
    """Copy the Keras recurrent and dense layers of ``source`` into ``module``'s matching submodules."""
    from .writers import torch_state

    model = source if isinstance(source, Model) else read(source, config)
    return torch_state.load_into(module, model)
