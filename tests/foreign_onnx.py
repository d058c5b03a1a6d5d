"""What the foreign ONNX rounds share (tests/test_foreign_onnx_round6.py, round 7): a file's inputs, the same
inputs one sample and one step shorter, the layout gateport reports, the reference (onnxruntime on the file,
laid out as gateport lays it out), and the checks that a file reads and matches it in every target or is
refused in one line."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from converters import api
from converters.errors import GateportError
from converters.cli import main
from converters.runtimes import run_keras, run_onnx, run_torch
from helpers import TOL, max_error


def time_major(a: np.ndarray) -> np.ndarray:
    """[time | dirs, batch, ...] -> [batch, time | dirs, ...] (Y [time, dirs, batch, hidden] -> [batch, time,
    dirs, hidden]); 1-d (sequence_lens) unchanged."""
    if a.ndim == 4:
        return a.transpose(2, 0, 1, 3)
    return a.transpose(1, 0, *range(2, a.ndim)) if a.ndim >= 2 else a


def feeds_of(npz: Path) -> dict[str, np.ndarray]:
    data = np.load(npz)
    return {k[3:]: data[k] for k in data.files if k.startswith("in:")}


def shrunk(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The inputs with every axis the file declares symbolic one shorter (one sample, one step fewer), or
    None where the file declares none."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    out, any_dynamic = {}, False
    for v in proto.graph.input:
        if v.name not in feeds:
            continue
        a = feeds[v.name]
        dims = v.type.tensor_type.shape.dim
        index = tuple(slice(0, n - 1) if d.dim_param and n > 1 else slice(None) for d, n in zip(dims, a.shape))
        any_dynamic |= any(s.stop is not None for s in index)
        out[v.name] = np.ascontiguousarray(a[index])
    return out if any_dynamic else None


def relaid(model) -> tuple[set[str], set[str]]:
    """The graph inputs and outputs gateport reads batch-first from a time-major file, as its layout note
    names them (``model.source['layout']``: "inputs 'x', 'h0' time-major in the file, ...; outputs 'y' (...)")."""
    layout = model.source.get("layout", "")
    ins = layout.split(" time-major in the file", 1)[0] if "time-major in the file" in layout else ""
    outs = layout.split("outputs ", 1)[1].split(" (", 1)[0] if "outputs " in layout else ""
    return set(re.findall(r"'([^']*)'", ins)), set(re.findall(r"'([^']*)'", outs))


def ort_outputs(path: Path, feeds: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """onnxruntime on the file: its output names and values."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [o.name for o in sess.get_outputs()], sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})


def reference(path: Path, model, feeds: dict[str, np.ndarray], run: Callable = ort_outputs) -> list[np.ndarray]:
    """``run`` (onnxruntime) on the original file, as gateport lays it out (batch-first)."""
    names, outs = run(path, feeds)
    moved = relaid(model)[1]
    return [time_major(o) if name in moved else o for o, name in zip(outs, names)]


def gateport_inputs(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    moved = relaid(model)[0]
    return [time_major(feeds[i.name]) if i.name in moved else feeds[i.name] for i in model.inputs]


def check_reads(path: Path, feeds: dict[str, np.ndarray], tmp_path: Path, run: Callable = ort_outputs,
                keras_refused: str | None = None, shrink: bool = True) -> dict:
    """The file reads, and gateport's PyTorch, ONNX and Keras models compute what ``run`` computes on it
    (<= TOL), on ``feeds`` and on :func:`shrunk` feeds (PyTorch and ONNX); returns the errors on ``feeds``.
    ``keras_refused``: the Keras target is refused in one line saying that instead (and nothing written).
    ``shrink=False``: the file computes only at the traced sizes (onnxruntime itself fails on others)."""
    model = api.read(path)
    torch_model, onnx_model = api.to_torch(model), api.to_onnx(model)
    if keras_refused is None:
        api.convert(model, "keras", tmp_path / "m.keras")
    else:
        with pytest.raises(GateportError) as refused:
            api.convert(model, "keras", tmp_path / "m.keras")
        assert keras_refused in str(refused.value) and "\n" not in str(refused.value)
        assert not (tmp_path / "m.keras").exists()
    first: dict = {}
    for data in (feeds, shrunk(path, feeds) if shrink else None):
        if data is None:
            continue
        want = reference(path, model, data, run)
        x = gateport_inputs(model, data)
        assert len(model.outputs) == len(want)
        errors = {"torch": max_error(run_torch(torch_model, x), want, "torch"),
                  "onnx": max_error(run_onnx(onnx_model, x), want, "onnx")}
        if data is feeds and keras_refused is None:  # (loading the Keras model is the slow part: once)
            errors["keras"] = max_error(run_keras(tmp_path / "m.keras", x), want, "keras")
        first = first or errors
        print(path.name, {k: v.shape for k, v in data.items()}, errors)
        assert all(err <= TOL for err in errors.values()), errors
    return first


def check_refused(path: Path, expected: str, tmp_path: Path, capsys) -> str:
    """``gateport convert`` refuses the file in one line naming it, a node (or initializer / input) and
    ``expected``, and writes nothing."""
    assert main(["convert", str(path), "--to", "torch", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and err.startswith("gateport: error: ") and str(path) in err
    assert re.search(r"(ONNX (node|LSTM|GRU|RNN|function)|initializer|input) '", err)
    assert expected in err
    assert not (tmp_path / "out").exists()
    return err
