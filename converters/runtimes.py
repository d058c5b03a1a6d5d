"""Run a model or a converted artifact in its own runtime: Keras 3, tf_keras, PyTorch, onnxruntime, numpy.

Every runner takes the inputs as a list in the model's (Keras') input order and returns the outputs
as a list of numpy arrays in Keras' output order. Frameworks are imported inside the functions; a
missing one raises :class:`~converters.errors.MissingDependencyError` naming the extra to install.

    run_reference(model, inputs)          the numpy reference (float64)
    run_keras(path, inputs)               Keras 3: safe_mode=True, compile=False
    run_tf_keras(path, inputs, config)    tf_keras (Keras 2) for legacy .h5 files
    run_torch(folder, inputs)             a generated model.py + model.safetensors, in this process
    run_torch_isolated(folder, inputs)    the same in a child process, with every recurrent submodule's
                                          input, outputs and states (what verify uses)
    run_onnx(model_or_path, inputs)       onnxruntime, CPU
    run_onnx_traced(model_or_path, ...)   the same, with every fused LSTM/GRU/RNN node's X, Y, Y_h, Y_c
"""
from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .errors import FormatError, UnsafeError, require
from .ir import Model
from .sanitize import one_line

Inputs = Sequence[np.ndarray]


def run_reference(model: Model, inputs: Inputs) -> list[np.ndarray]:
    """The numpy reference forward pass (float64)."""
    from . import reference

    return reference.run(model, list(inputs))


# -- Keras ---------------------------------------------------------------------------------------
def ensure_keras_backend() -> str | None:
    """Choose the torch backend for Keras 3 if nothing chose one; returns a note saying so, else None.

    Only when ``KERAS_BACKEND`` is unset, keras is not imported yet and torch is installed.
    """
    if "KERAS_BACKEND" in os.environ or "keras" in sys.modules or importlib.util.find_spec("torch") is None:
        return None
    os.environ["KERAS_BACKEND"] = "torch"
    return "KERAS_BACKEND was unset: gateport set it to torch"


def keras_version() -> str:
    """The installed Keras 3 version (imports keras)."""
    ensure_keras_backend()
    return require("keras", "keras").__version__


def tf_keras_version() -> str:
    """The installed tf_keras version, without importing TensorFlow."""
    from importlib.metadata import PackageNotFoundError, version

    if importlib.util.find_spec("tf_keras") is None:
        raise _missing_tf_keras()
    try:
        return version("tf_keras")
    except PackageNotFoundError:
        return version("tf-keras")


def _missing_tf_keras():
    from .errors import MissingDependencyError

    return MissingDependencyError("tf_keras is not installed: pip install tf-keras "
                                  "(Keras 3 cannot load Keras 2 .h5 files exactly)")


def _as_list(out) -> list:
    if isinstance(out, dict):
        return list(out.values())
    return list(out) if isinstance(out, (list, tuple)) else [out]


def run_keras(path: str | os.PathLike, inputs: Inputs) -> list[np.ndarray]:
    """Load a Keras 3 file (``.keras`` or a Keras 3 ``.h5``) with safe_mode=True, compile=False; run it."""
    ensure_keras_backend()
    keras = require("keras", "keras")
    model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    with one_torch_thread():
        out = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        return [np.asarray(keras.ops.convert_to_numpy(o)) for o in _as_list(out)]


def run_tf_keras(path: str | os.PathLike, inputs: Inputs, config: str | os.PathLike | None = None) -> list[np.ndarray]:
    """Load a Keras 2 file in tf_keras (a full .h5, or weights + a JSON ``config``) and run it."""
    if importlib.util.find_spec("tf_keras") is None:
        raise _missing_tf_keras()
    import tf_keras

    if config is None:
        model = tf_keras.models.load_model(str(path), compile=False, safe_mode=True)
    else:
        model = tf_keras.models.model_from_json(Path(config).read_text())
        model.load_weights(str(path))
    out = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
    return [np.asarray(o) for o in _as_list(out)]


# -- PyTorch -------------------------------------------------------------------------------------
@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block (if torch is imported), then restore.

    Like the onnxruntime sessions here: recurrent step loops do many small matmuls, which ran 60x
    slower on two threads contending for busy cores (measured: 10,000 (2, 64) x (64, 192) linears).
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_module_ids = itertools.count()


def load_torch_folder(folder: str | os.PathLike):
    """Import a generated ``model.py`` by path (not via sys.path) and return ``load_model()``."""
    require("torch", "torch")
    require("safetensors", "torch")
    source = Path(folder) / "model.py"
    if not source.is_file():
        raise FormatError("expected a folder with model.py and model.safetensors, found no model.py",
                          file=str(folder))
    spec = importlib.util.spec_from_file_location(f"_gateport_torch_{next(_module_ids)}", source)
    if spec is None or spec.loader is None:
        raise FormatError("expected a model.py Python can import, found none", file=str(folder))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_model()


def run_torch(folder_or_module, inputs: Inputs) -> list[np.ndarray]:
    """Run a generated PyTorch model (its folder, or the loaded module) on numpy inputs.

    On one intra-op thread (see :func:`one_torch_thread`).
    """
    torch = require("torch", "torch")
    module = folder_or_module
    if isinstance(folder_or_module, (str, os.PathLike)):
        module = load_torch_folder(folder_or_module)
    with one_torch_thread(), torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    return [o.detach().cpu().numpy() for o in _as_list(out)]


# -- PyTorch in a child process -------------------------------------------------------------------
#: Seconds a child torch run may take by default.
CHILD_TIMEOUT = 300.0
#: The child: gateport importable from where this file is, nothing else from the environment (-I).
_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); from converters.runtimes import torch_child; "
          "sys.exit(torch_child(sys.argv[2], sys.argv[3]))")
_STDERR_TAIL = 4096
_META_MAX = 1 << 20


class ArtifactError(Exception):
    """An artifact could not run: the runtime's first error line, or a timeout."""


def run_torch_isolated(folder: str | os.PathLike, inputs: Inputs, *, timeout: float = CHILD_TIMEOUT,
                       max_bytes: int = 1 << 30, given: bool = False) -> tuple[list[np.ndarray], list[dict]]:
    """Run a generated PyTorch folder in a child process; returns ``(outputs, records)``.

    Nothing of ``model.py`` runs in this process: the child (``python -I``) imports it, reads the
    inputs from an .npz in a temporary folder and writes the outputs there. ``records``: one per call
    of a recurrent submodule (``nn.LSTM/GRU/RNN`` or a generated ``*Loop``) in call order,
    ``{"cls", "x", "y", "states"}`` as the module received and returned them. The results may hold
    at most ``max_bytes``. Raises :class:`ArtifactError` with the child's first error line, or after
    ``timeout`` seconds (the child and its children are killed). The child may allocate
    :func:`converters.budget.child_limit` bytes (RLIMIT_DATA); past it, :class:`UnsafeError` naming the
    folder. ``given``: the folder is a user's artifact: a timeout is then an :class:`UnsafeError` too.
    """
    from .budget import child_limit

    for module in ("torch", "safetensors"):
        if importlib.util.find_spec(module) is None:
            require(module, "torch")  # raises MissingDependencyError naming the extra
    folder = Path(folder).resolve()
    if not (folder / "model.py").is_file():
        raise FormatError("expected a folder with model.py and model.safetensors, found no model.py",
                          file=str(folder))
    with tempfile.TemporaryDirectory(prefix="gateport-torch-") as tmp:
        work = Path(tmp)
        xs: dict[str, Any] = {f"x{k}": np.ascontiguousarray(x) for k, x in enumerate(inputs)}
        np.savez(work / "inputs.npz", **xs)
        root = str(Path(__file__).resolve().parent.parent)
        memory, file = child_limit(folder_bytes(folder), max_bytes), str(folder)
        code = _run_child([sys.executable, "-I", "-c", _CHILD, root, str(folder), str(work)], work, timeout,
                          memory=memory, file=file if given else None)
        _over_memory(work, code, "torch", memory, file)
        return _child_results(work, code, max_bytes)


def _run_child(argv: list[str], work: Path, timeout: float, what: str = "torch", memory: int | None = None,
               file: str | None = None) -> int:
    """Run ``argv`` in its own session with stderr to a file; kill the whole group after ``timeout``.

    ``memory``: the child's RLIMIT_DATA in bytes (``argv`` is ``[python, -I, -c, code, ...]``: the limit is set
    before ``code`` imports anything). RLIMIT_DATA, not RLIMIT_AS: it counts what the child allocates (heap,
    anonymous mappings: numpy's and onnxruntime's buffers, torch's tensors) but not address space reserved
    and never committed (glibc's per-thread arenas, CUDA's reservations) nor mapped libraries, so a legitimate
    run is not refused for its virtual size; Linux >= 4.7 enforces it on mmap (mm/mmap.c, may_expand_vm).
    ``file``: a user's artifact: a timeout is then a refusal naming it (:class:`UnsafeError`), not an
    :class:`ArtifactError`.
    """
    import signal

    if memory is not None:
        argv = [*argv[:3], f"import resource; resource.setrlimit(resource.RLIMIT_DATA, ({int(memory)}, "
                           f"{int(memory)})); " + argv[3], *argv[4:]]
    with open(work / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if file is not None:
                raise UnsafeError(f"expected an artifact that runs within --timeout {timeout:g} s, found none: "
                                  f"the {what} child process was stopped (--timeout sets the limit)",
                                  file=file) from None
            raise ArtifactError(f"no result within {timeout:g} s: the {what} child process was stopped "
                                "(--timeout sets the limit)") from None


#: What a runtime says when an allocation failed (Python, numpy, onnxruntime's arena, torch's allocator, C++).
_OUT_OF_MEMORY = ("MemoryError", "Unable to allocate", "Failed to allocate", "can't allocate memory",
                  "bad_alloc", "Cannot allocate memory", "out of memory")


def _over_memory(work: Path, code: int, what: str, memory: int | None, file: str | None) -> None:
    """Raise :class:`UnsafeError` naming ``file`` where the child ran out of its memory ceiling (an allocation
    refused, or killed by a signal: a runtime aborting on a failed allocation)."""
    if memory is None:
        return
    said = _tail(work / "error.txt") if (work / "error.txt").is_file() else _tail(work / "stderr.txt")
    if code < 0 or any(m in said for m in _OUT_OF_MEMORY):
        how = f"killed by signal {-code}" if code < 0 else "out of memory"
        raise UnsafeError(f"expected an artifact that runs within the memory ceiling of {memory} bytes "
                          f"(GATEPORT_CHILD_BYTES), found one that does not: the {what} child process was {how}",
                          file=file)


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of a file, or of the files directly in a folder (an artifact's weights)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return path.stat().st_size if path.is_file() else 0


def child_arrays(work: Path, code: int, what: str, max_bytes: int) -> tuple[dict, dict[str, np.ndarray]]:
    """What a child left in ``work``: ``(meta.json, outputs.npz's arrays)``, the arrays bounded by
    ``max_bytes``; its error line, a non-zero exit or unreadable results as an :class:`ArtifactError`."""
    if (work / "error.txt").is_file():
        raise ArtifactError(first_line(_tail(work / "error.txt")))
    if code != 0:
        last = (_tail(work / "stderr.txt").strip().splitlines() or [""])[-1]
        raise ArtifactError(f"the {what} child process exited with status {code}: {first_line(last)}")
    try:
        meta_path = work / "meta.json"
        if meta_path.stat().st_size > _META_MAX:
            raise ValueError("meta.json too large")
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("meta.json is not an object")
        return meta, _load_bounded_npz(work / "outputs.npz", max_bytes)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"the {what} child process left unreadable results ({type(e).__name__}: "
                            f"{first_line(e)})") from None


def unpack_child(what: str, unpack: Callable[[], Any]) -> Any:
    """``unpack()`` (a child's results built from its meta and arrays), a missing or mistyped entry an
    :class:`ArtifactError`."""
    try:
        return unpack()
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"the {what} child process left unreadable results ({type(e).__name__}: "
                            f"{first_line(e)})") from None


def _child_results(work: Path, code: int, max_bytes: int) -> tuple[list[np.ndarray], list[dict]]:
    """Read what the torch child left in ``work``: its error, or its outputs and records."""
    meta, arrays = child_arrays(work, code, "torch", max_bytes)
    return unpack_child("torch", lambda: (
        [arrays[f"out{k}"] for k in range(int(meta["outputs"]))],
        [{"cls": str(cls), "x": arrays.get(f"r{j}x"), "y": arrays[f"r{j}y"],
          "states": [arrays[f"r{j}s{k}"] for k in range(int(n_states))]}
         for j, (cls, n_states) in enumerate(meta["records"])]))


def _load_bounded_npz(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as z:
        declared = sum(i.file_size for i in z.infolist())
    if declared > max_bytes:
        raise UnsafeError(f"the torch child process returned {declared} bytes, more than the verify budget "
                          f"of {max_bytes} bytes")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _tail(path: Path) -> str:
    """The last few KB of a text file the child wrote."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - _STDERR_TAIL))
        return f.read().decode("utf-8", "replace")


def first_line(text: object, limit: int = 200) -> str:
    """The first non-empty line of an error message, made one line, at most ``limit`` characters."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    line = one_line(line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def child_frame(work: str, compute: Callable[[Path, list[np.ndarray]], tuple[dict[str, Any], dict[str, Any]]]) -> int:
    """A child's side of the exchange with :func:`child_arrays`: ``compute(work folder, inputs.npz's arrays
    x0, x1, ...)`` -> (arrays, meta) written as outputs.npz and meta.json, exit status 0; whatever it
    raises written to error.txt, exit status 1."""
    work_dir = Path(work)
    try:
        with np.load(work_dir / "inputs.npz", allow_pickle=False) as f:
            xs = [f[f"x{k}"] for k in range(len(f.files))]
        arrays, meta = compute(work_dir, xs)
        np.savez(work_dir / "outputs.npz", **arrays)
        (work_dir / "meta.json").write_text(json.dumps(meta))
        return 0
    except BaseException as e:  # noqa: BLE001 - whatever the artifact raises is reported, in one line
        (work_dir / "error.txt").write_text(f"{type(e).__name__}: {e}")
        return 1


def torch_child(folder: str, work: str) -> int:
    """The child side of :func:`run_torch_isolated` (runs in its own process)."""
    return child_frame(work, lambda _, xs: _torch_outputs(folder, xs))


def _torch_outputs(folder: str, xs: list[np.ndarray]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The generated module's outputs on ``xs``, and each recurrent direction's recorded run."""
    import torch

    torch.set_num_threads(1)
    module = load_torch_folder(folder)
    records: list = []
    # one direction each: a *Loop, or a KerasMasked* running its nn.* (hooked there, not inside);
    # a KerasBiLoop runs its two loops (fw, bw) itself: recorded as the two directions
    directions = [sub for sub in module.modules() if hasattr(sub, "go_backwards") and (
        type(sub).__name__.endswith("Loop") or type(sub).__name__.startswith("KerasMasked"))]
    wrapped = {id(getattr(sub, "rnn", None)) for sub in directions}
    for sub in module.modules():
        if type(sub).__name__ == "KerasBiLoop":
            sub.register_forward_hook(_bidirectional_recorder(records))
        elif any(sub is d for d in directions) or (isinstance(sub, torch.nn.RNNBase) and id(sub) not in wrapped):
            sub.register_forward_hook(_recorder(records))
    with torch.no_grad():
        out = module(*(torch.from_numpy(x) for x in xs))
    arrays: dict[str, Any] = {f"out{k}": o.detach().cpu().numpy() for k, o in enumerate(_as_list(out))}
    meta: dict[str, Any] = {"outputs": len(arrays), "records": []}
    for j, (cls, x, y, states) in enumerate(records):
        arrays.update({f"r{j}y": y, **({f"r{j}x": x} if x is not None else {}),
                       **{f"r{j}s{k}": s for k, s in enumerate(states)}})
        meta["records"].append([cls, len(states)])
    return arrays, meta


def _array(t) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _recorder(records: list):
    """A forward hook keeping a recurrent module's input, output sequence and states as numpy."""
    def hook(module, args, out):
        states = out[1]
        states = list(states) if isinstance(states, (tuple, list)) else [states]
        x = _array(args[0]) if args and hasattr(args[0], "detach") else None
        records.append((type(module).__name__, x, _array(out[0]), [_array(s) for s in states]))
    return hook


def _bidirectional_recorder(records: list):
    """A forward hook on a KerasBiLoop (outputs: forward y, backward y in processing order, their
    states): one record per direction, as two loops would have given."""
    def hook(module, args, out):
        x = _array(args[0]) if args and hasattr(args[0], "detach") else None
        for loop, y, states in ((module.fw, out[0], out[2]), (module.bw, out[1], out[3])):
            records.append((type(loop).__name__, x, _array(y), [_array(s) for s in states]))
    return hook


# -- onnxruntime ---------------------------------------------------------------------------------
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
               "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def run_onnx(model_or_path, inputs: Inputs, input_names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Run an ONNX model (a ModelProto, serialized bytes or a path) in onnxruntime on the CPU.

    Inputs are fed by ``input_names`` (the Keras names the ONNX writer keeps) or by position.
    """
    session = _onnx_session(_onnx_payload(model_or_path))
    return list(session.run(None, _onnx_feed(session, inputs, input_names)))


def run_onnx_traced(model_or_path, inputs: Inputs, input_names: Sequence[str] | None = None
                    ) -> tuple[list[np.ndarray], list[dict] | None]:
    """:func:`run_onnx`, plus one probe per fused LSTM / GRU / RNN node in graph order.

    A probe is ``{"op", "direction", "x", "y", "states"}``: the node's ``X`` (time-major), ``Y``
    ``[time, dirs, batch, units]`` and ``Y_h`` (, ``Y_c``), fetched by adding them as graph outputs.
    Probes are None where the graph cannot expose them; the outputs are still returned then.
    """
    onnx = require("onnx", "onnx")
    proto = onnx.load_model_from_string(_onnx_payload(model_or_path))
    own = [o.name for o in proto.graph.output]
    probes = _add_probe_outputs(onnx, proto)
    if not probes:
        return run_onnx(proto, inputs, input_names), None
    try:
        session = _onnx_session(proto.SerializeToString())
        feed = _onnx_feed(session, inputs, input_names)
        names = [o.name for o in proto.graph.output]
        values = {**feed, **dict(zip(names, session.run(names, feed)))}
    except Exception:  # noqa: BLE001 - the probes broke the graph: run it as it is (raises if it is broken)
        del proto.graph.output[len(own):]
        return run_onnx(proto, inputs, input_names), None
    for probe in probes:
        x, y, *states = (values.get(n) if n else None for n in probe.pop("names"))
        probe.update(x=x, y=y, states=[s for s in states if s is not None])
    return [values[n] for n in own], probes


_RNN_OPS = ("LSTM", "GRU", "RNN")


def _add_probe_outputs(onnx, proto) -> list[dict]:
    """Add every fused recurrent node's X, Y, Y_h, Y_c as graph outputs; returns ``{"op", "direction",
    "names"}`` per node (the graph's own inputs are read from the feed instead)."""
    graph = proto.graph
    taken = {o.name for o in graph.output} | {i.name for i in graph.input} | {t.name for t in graph.initializer}
    probes = []
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in _RNN_OPS:
            continue
        direction = next((a.s.decode("utf-8", "replace") for a in node.attribute if a.name == "direction"), "forward")
        names = [node.input[0] if node.input else "", *list(node.output)[:3]]
        for name in names:
            if name and name not in taken:
                graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
                taken.add(name)
        probes.append({"op": node.op_type, "direction": direction, "names": names})
    return probes


def _onnx_payload(model_or_path) -> bytes:
    if isinstance(model_or_path, (str, os.PathLike)):
        return Path(model_or_path).read_bytes()
    if isinstance(model_or_path, bytes):
        return model_or_path
    return model_or_path.SerializeToString()


def _onnx_session(payload: bytes):
    """An onnxruntime CPU session on one thread (see :func:`one_torch_thread`)."""
    ort = require("onnxruntime", "onnx")
    options = ort.SessionOptions()
    # errors only: onnxruntime writes its warnings to stderr itself, colored with raw ANSI escapes and quoting
    # node names from the file, past gateport's one-line messages and terminal escaping
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])


def _onnx_feed(session, inputs: Inputs, input_names: Sequence[str] | None) -> dict[str, np.ndarray]:
    graph_inputs = session.get_inputs()
    names = [i.name for i in graph_inputs]
    if len(names) != len(inputs):
        raise FormatError(f"expected an ONNX graph with {len(inputs)} inputs, found {len(names)}: {names}")
    if input_names is not None and sorted(names) != sorted(input_names):
        raise FormatError(f"expected ONNX inputs named {list(input_names)}, found {names}")
    order = list(input_names) if input_names is not None else names
    types = {i.name: _ORT_DTYPES.get(i.type) for i in graph_inputs}
    return {n: np.asarray(x, dtype=types[n] or np.asarray(x).dtype) for n, x in zip(order, inputs)}


# -- a user's ONNX or .keras file in a child process ------------------------------------------------------
_ARTIFACT_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); from converters.runtimes import artifact_child; "
                   "sys.exit(artifact_child(sys.argv[2], sys.argv[3], sys.argv[4]))")
#: The runtime each kind of artifact runs in (the child's name in messages).
_ARTIFACT_RUNTIMES = {"onnx": "onnxruntime", "keras": "keras"}


def run_isolated(kind: str, path: str | os.PathLike, inputs: Inputs, input_names: Sequence[str] | None = None, *,
                 timeout: float = CHILD_TIMEOUT, max_bytes: int = 1 << 30) -> tuple[list[np.ndarray], Any]:
    """Run a user's ``.onnx`` (``kind="onnx"``: :func:`run_onnx_traced`, probes and all) or ``.keras`` file
    (``"keras"``: :func:`run_keras`, records None) in a child process (``python -I``), as generated code runs
    (:func:`run_torch_isolated`): a graph whose constants make a huge tensor at run time (a Tile, Range, Resize,
    Pad or Expand to a computed shape) or a Keras config asking for a huge layer cannot exhaust this process.

    The child may allocate :func:`converters.budget.child_limit` bytes (RLIMIT_DATA) and run ``timeout``
    seconds; past either, :class:`UnsafeError` naming the file. Inputs and results travel as .npz (no pickle),
    the results bounded by ``max_bytes``. A runtime's own error is an :class:`ArtifactError` (its first line).
    """
    from .budget import child_limit

    if importlib.util.find_spec(_ARTIFACT_RUNTIMES[kind]) is None:
        require(_ARTIFACT_RUNTIMES[kind], "onnx" if kind == "onnx" else "keras")
    file = os.fsdecode(path)
    what = _ARTIFACT_RUNTIMES[kind]
    with tempfile.TemporaryDirectory(prefix=f"gateport-{kind}-") as tmp:
        work = Path(tmp)
        xs: dict[str, Any] = {f"x{k}": np.ascontiguousarray(x) for k, x in enumerate(inputs)}
        np.savez(work / "inputs.npz", **xs)
        (work / "names.json").write_text(json.dumps(None if input_names is None else list(input_names)))
        root = str(Path(__file__).resolve().parent.parent)
        memory = child_limit(folder_bytes(path), max_bytes)
        code = _run_child([sys.executable, "-I", "-c", _ARTIFACT_CHILD, root, kind, str(Path(path).resolve()),
                           str(work)], work, timeout, what, memory=memory, file=file)
        _over_memory(work, code, what, memory, file)
        meta, arrays = child_arrays(work, code, what, max_bytes)
    return unpack_child(what, lambda: (
        [arrays[f"out{k}"] for k in range(int(meta["outputs"]))],
        None if meta["probes"] is None else [
            {"op": str(op), "direction": str(direction), "x": arrays.get(f"p{j}x"), "y": arrays.get(f"p{j}y"),
             "states": [arrays[f"p{j}s{k}"] for k in range(int(n))]}
            for j, (op, direction, n) in enumerate(meta["probes"])]))


def artifact_child(kind: str, path: str, work: str) -> int:
    """The child side of :func:`run_isolated` (runs in its own process)."""
    return child_frame(work, lambda work_dir, xs: _artifact_outputs(kind, path, work_dir, xs))


def _artifact_outputs(kind: str, path: str, work_dir: Path,
                      xs: list[np.ndarray]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ONNX or .keras artifact's outputs on ``xs`` (ONNX: and its recurrent nodes' probes)."""
    names = json.loads((work_dir / "names.json").read_text())
    probes = None
    if kind == "onnx":
        outputs, probes = run_onnx_traced(path, xs, names)
    else:
        outputs = run_keras(path, xs)
    arrays: dict[str, Any] = {f"out{k}": np.asarray(o) for k, o in enumerate(outputs)}
    meta: dict[str, Any] = {"outputs": len(outputs), "probes": None}
    if probes is not None:
        meta["probes"] = []
        for j, p in enumerate(probes):
            arrays.update({**({f"p{j}x": p["x"]} if p["x"] is not None else {}),
                           **({f"p{j}y": p["y"]} if p["y"] is not None else {}),
                           **{f"p{j}s{k}": s for k, s in enumerate(p["states"])}})
            meta["probes"].append([p["op"], p["direction"], len(p["states"])])
    return arrays, meta
