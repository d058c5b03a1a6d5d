"""PyTorch ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` state_dicts -> IR recurrent nodes.

Sources: ``.safetensors`` (read with :mod:`converters.safetensors_io`, no torch needed) or
``.pt`` / ``.pth`` (``torch.load(weights_only=True)`` only, never pickle).

Keys are PyTorch's own (torch/nn/modules/rnn.py ``_flat_weights_names``):
``<prefix>weight_ih_l<k>[_reverse]``, ``weight_hh``, ``bias_ih``, ``bias_hh``. One prefix is one
module; a module with ``num_layers=n`` becomes ``n`` chained IR nodes. The kind comes from the gate
multiple ``weight_hh.shape[0] / weight_hh.shape[1]`` (4 LSTM, 3 GRU, 1 RNN); nn.GRU is
``reset_after=True`` with split biases (SEMANTICS.md §3.5). What the weights cannot say comes from a
description, given as a dict or a JSON file, or from the ``gateport.layers`` metadata that
:mod:`converters.writers.torch_state` writes::

    {"layers": [{"prefix": "rnn.", "kind": "rnn", "nonlinearity": "relu",
                 "go_backwards": false, "merge_mode": "concat",
                 "return_sequences": true, "return_state": false}],
     "chain": true}

Listed modules are read in the listed order, and one whose ``input_size`` equals the previous
module's output width reads that output (``"chain": false`` keeps every module on its own input).
Without a description each module has its own input. An ``nn.RNN`` needs its ``nonlinearity``
from the description or the metadata: the weights do not tell tanh from relu. Every value of a
description is type-checked, unknown keys are refused, and what the weights also tell
(``input_size``, ``hidden_size``/``units``, ``num_layers``, ``bias``, ``bidirectional``) must agree
with them: it is checked, never applied.

Nothing is trusted before it is checked: a ``.pt`` must be a zip-format ``torch.save`` whose members
fit the file's budget (:mod:`converters.budget`) before ``torch.load`` sees it, anything
``torch.load`` raises becomes one line, dicts are walked without recursion and every tensor's
bytes are budgeted (a zero-stride view can declare far more than it stores).
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import budget, safe_json
from ..budget import Budget
from ..errors import FormatError, GateportError, UnsafeError, UnsupportedError, require
from ..gates import GATES, NN_CLASS, TORCH_PARTS
from ..ir import MERGE_MODES, Model, Node, TensorSpec, set_recurrent_weights, unique_name
from ..ops import STATES
from ..sanitize import quote
from .bounded_zip import open_zip

_KEY = re.compile(r"^(?P<prefix>.*?)(?P<part>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                  r"_l(?P<layer>\d+)(?P<reverse>_reverse)?$")
#: gates per kind -> IR op
_KIND_OF_GATES = {len(gates): op for op, gates in GATES.items()}
#: names a description or metadata may use for a kind
_KIND_NAMES = {"lstm": "lstm", "gru": "gru", "rnn": "simple_rnn", "simple_rnn": "simple_rnn",
               "nn.LSTM": "lstm", "nn.GRU": "gru", "nn.RNN": "simple_rnn"}
#: IR options a description entry may set on a module's last layer
_OVERRIDES = ("go_backwards", "merge_mode", "return_sequences", "return_state", "zero_output_for_mask")
METADATA_KEY = "gateport.layers"


@dataclass
class ModuleSpec:
    """What a description (or the writer's metadata) says about one module."""

    prefix: str
    kind: str | None = None
    nonlinearity: str | None = None
    name: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    #: sizes and flags the weights also tell (input_size, hidden_size, ...): checked, never applied
    declared: dict[str, Any] = field(default_factory=dict)


@dataclass
class Description:
    modules: list[ModuleSpec]
    chain: bool = True


# -- loading ---------------------------------------------------------------------------------
#: Largest ``data.pkl`` of a ``.pt`` (a state_dict pickles in a few hundred bytes per tensor).
MAX_PICKLE = 8 << 20
#: Deepest dict nesting of a ``.pt`` (a checkpoint wraps its state_dict once or twice).
MAX_NESTING = 8
#: Most tensors one state_dict may hold.
MAX_TENSORS = 100_000


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(name -> array, metadata)`` of a ``.safetensors`` or ``.pt``/``.pth`` state_dict."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(path):
        from ..safetensors_io import load

        return load(path)
    return _load_torch(path), {}


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _load_torch(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a zip-format ``torch.save`` file, its member sizes checked before loading."""
    torch = require("torch", "torch")
    file = str(path)
    _check_archive(path)
    try:
        with warnings.catch_warnings():  # torch's own notes on what the file holds (TypedStorage is deprecated,
            # quantized tensors are deprecated ...) are not the user's: the file is refused or read below
            warnings.simplefilter("ignore")
            obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError, RecursionError, MemoryError ...
        raise _load_error(e, file) from None
    tensors = _flatten(obj, torch, Budget(file))
    if not tensors:
        raise FormatError(f"expected a state_dict of tensors, found {type(obj).__name__} with none", file=file)
    return tensors


def _check_archive(path: Path) -> None:
    """A zip-format torch.save (PyTorch >= 1.6) whose members fit the file's budget, pickle included."""
    file = str(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise UnsupportedError("expected a zip-format torch.save file (PyTorch >= 1.6); the legacy format sizes "
                               "its storages from the pickle alone: re-save it with a current torch.save or as "
                               ".safetensors", file=file)
    budget = Budget(file)
    with open_zip(path, file, "torch.save archive") as z:
        for info in z.infolist():
            what = f"archive member {quote(info.filename)}"
            if info.filename.endswith(".pkl") and info.file_size > MAX_PICKLE:
                raise UnsafeError(f"{what}: expected a pickle of at most {MAX_PICKLE} bytes, found "
                                  f"{info.file_size}", file=file)
            budget.take(info.file_size, what)
        if not any(n.endswith("/data.pkl") for n in z.namelist()):
            raise FormatError("expected a zip-format torch.save archive (<name>/data.pkl and its storages), found "
                              f"members {quote(z.namelist()[:3])}", file=file)


def _load_error(e: Exception, file: str) -> GateportError:
    """One line for whatever ``torch.load`` raised on a foreign or hostile file."""
    text = str(e)
    reason = _unpickler_reason(text)
    if reason is not None and re.search(r"unsupported (global|class)|is blocked|not an allowed global", reason,
                                        re.IGNORECASE):
        return UnsafeError("expected a state_dict of tensors; torch.load(weights_only=True) refused what the pickle "
                           f"calls ({quote(reason, 160)}): save model.state_dict() instead", file=file)
    if reason is not None:
        return FormatError("expected a state_dict of tensors; torch.load(weights_only=True) refused the pickle "
                           f"({quote(reason, 200)})", file=file)
    detail = text.strip().splitlines()
    return FormatError("expected a state_dict of tensors that torch.load(weights_only=True) reads, found a file it "
                       f"fails on ({type(e).__name__}: {quote(detail[0] if detail else '', 200)})", file=file)


def _unpickler_reason(text: str) -> str | None:
    """The reason of a weights-only unpickler refusal, without torch's advice around it.

    torch >= 2.6 wraps the reason in 'Weights only load failed. ... Re-running `torch.load` with `weights_only` set
    to `False` will likely succeed, but it can result in arbitrary code execution ...' and a documentation link
    (torch/serialization.py, ``_get_wo_message``); older ones prefix it with 'WeightsUnpickler error:'. That advice,
    for a file from a stranger, must not reach the user's line (red team round 7: it did, for every pickle refused)."""
    if "WeightsUnpickler error:" in text:
        lines = text.split("WeightsUnpickler error:")[-1].strip().splitlines()
        return _first_sentence(lines[0]) if lines else ""
    if not text.startswith("Weights only load failed"):
        return None
    for line in text.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith(("Check the documentation", "Please file an issue", "Weights only load",
                                         "In PyTorch", "Re-running")):
            return _first_sentence(line)
    return ""


def _first_sentence(reason: str) -> str:
    """The reason's first sentence: torch follows a refused global with advice on the same line, 'Please use
    `torch.serialization.add_safe_globals([subprocess.Popen])` or the `torch.serialization.safe_globals([...])`
    context manager to allowlist this global if you trust this class/function' (red team round 10: that advice,
    to allow what a stranger's file calls, reached the user's line for every global but os / posix ones)."""
    return re.split(r"(?<=[.!?])\s+(?=[A-Z`])", reason, maxsplit=1)[0]


def _flatten(obj, torch, budget: Budget) -> dict[str, np.ndarray]:
    """Tensors of a (possibly nested, e.g. ``{"state_dict": ...}``) dict, keys joined by dots.

    Walked without recursion, at most :data:`MAX_NESTING` dicts deep; values that are neither
    dicts nor tensors (an epoch number, a list) are skipped.
    """
    out: dict[str, np.ndarray] = {}
    stack = [(obj, "", 0)]
    while stack:
        value, prefix, depth = stack.pop()
        if isinstance(value, torch.Tensor):
            if len(out) >= MAX_TENSORS:
                raise UnsafeError(f"expected at most {MAX_TENSORS} tensors, found more", file=budget.file)
            out[prefix] = _to_numpy(value, prefix, torch, budget)
        elif isinstance(value, dict):
            if depth >= MAX_NESTING:
                raise FormatError(f"expected a state_dict nested at most {MAX_NESTING} dicts deep, found "
                                  f"deeper (at {quote(prefix)})", file=budget.file)
            for key, item in reversed(list(value.items())):
                name = str(key)
                if name in ("state_dict", "model", "model_state_dict") and isinstance(item, dict):
                    name = ""  # a checkpoint wrapping the state_dict: keep the inner names
                stack.append((item, f"{prefix}.{name}" if prefix and name else prefix or name, depth + 1))
    return out


def _to_numpy(t, key: str, torch, budget: Budget) -> np.ndarray:
    """A dense CPU tensor as numpy (bfloat16 widened to float32, exactly), its bytes taken from the budget."""
    what = f"tensor {quote(key)}"
    if t.layout != torch.strided or t.is_quantized or t.device.type != "cpu":
        found = "a quantized tensor" if t.is_quantized else f"layout {t.layout}, device {t.device.type}"
        raise UnsupportedError(f"{what}: expected a dense CPU tensor of floats, found {found}", file=budget.file)
    budget.take(t.numel() * t.element_size(), what)  # a zero-stride view can declare far more than it stores
    try:
        t = t.detach().resolve_conj().resolve_neg()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
            t = t.float()
        return t.numpy()
    except (TypeError, RuntimeError) as e:
        raise UnsupportedError(f"{what}: dtype {t.dtype} has no numpy equivalent ({type(e).__name__})",
                               file=budget.file) from None


# -- descriptions ----------------------------------------------------------------------------
#: Largest description file or metadata text.
MAX_DESCRIPTION = 1 << 20
#: {"layers": [{"options": {...}}]}: 4 levels.
DESCRIPTION_DEPTH = 4
#: Longest prefix or name a description may give.
MAX_NAME = 1000
#: What a description entry may say, and of what type; ``_DECLARED`` ones are checked against the weights.
_BOOL_KEYS = ("go_backwards", "return_sequences", "return_state", "zero_output_for_mask", "bias",
              "bidirectional", "batch_first")
_SIZE_KEYS = ("input_size", "hidden_size", "units", "num_layers")
_DECLARED = ("input_size", "hidden_size", "units", "num_layers", "bias", "bidirectional")
_ENTRY_KEYS = frozenset(("prefix", "kind", "module", "nonlinearity", "name", "layer", "options", "merge_mode",
                         *_BOOL_KEYS, *_SIZE_KEYS))
_OPTION_KEYS = frozenset((*_OVERRIDES, *_DECLARED))


def load_description(description, metadata: dict[str, str]) -> Description | None:
    """The description given (dict, JSON file), else the writer's metadata, else None."""
    if description is None:
        if METADATA_KEY not in metadata:
            return None
        entries = safe_json.loads(metadata[METADATA_KEY], what=f"metadata {quote(METADATA_KEY)}",
                                  max_depth=DESCRIPTION_DEPTH, max_bytes=MAX_DESCRIPTION)
        if not isinstance(entries, list):
            raise FormatError(f"metadata {quote(METADATA_KEY)}: expected a list of layer entries, found "
                              f"{type(entries).__name__}")
        return Description(_module_specs(entries))
    if isinstance(description, (str, os.PathLike)):
        try:
            return _description(_read_description_file(Path(description)))
        except GateportError as e:
            raise e.at(file=str(description))
    return _description(description)


def _description(description) -> Description:
    """A parsed description ``{"layers": [...], "chain": bool}``, every entry checked."""
    if not isinstance(description, dict) or not isinstance(description.get("layers"), list):
        raise FormatError('expected a description {"layers": [{"prefix": ..., "kind": ...}, ...]}, found '
                          f"{type(description).__name__} without a list of layers")
    extra = sorted(set(description) - {"layers", "chain"})
    if extra:
        raise FormatError(f"description: expected only the keys layers and chain, found {quote(extra[0])}")
    chain = description.get("chain", True)
    if not isinstance(chain, bool):
        raise FormatError(f"description: expected chain true or false, found {type(chain).__name__}")
    return Description(_module_specs(description["layers"]), chain)


def _read_description_file(path: Path):
    """A description JSON file, its size and nesting checked before parsing."""
    file = str(path)
    if not path.is_file():  # a FIFO would block, a device never end
        raise FormatError("description is not a regular file", file=file)
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_DESCRIPTION + 1)
    except OSError as e:
        raise FormatError(f"description is not a readable file ({e.strerror or type(e).__name__})",
                          file=file) from None
    return safe_json.loads(text, what="description", max_depth=DESCRIPTION_DEPTH, max_bytes=MAX_DESCRIPTION)


def _module_specs(entries: list) -> list[ModuleSpec]:
    if len(entries) > MAX_TENSORS:
        raise FormatError(f"description: expected at most {MAX_TENSORS} layer entries, found {len(entries)}")
    specs = [_module_spec(e) for e in entries]
    prefixes = [s.prefix for s in specs]
    for prefix in prefixes:
        if prefixes.count(prefix) > 1:
            raise FormatError(f"description: module prefix {quote(prefix)} is listed twice")
    return specs


def _module_spec(entry) -> ModuleSpec:
    """One description entry, every value's type and range checked."""
    if not isinstance(entry, dict) or not isinstance(entry.get("prefix"), str) or len(entry["prefix"]) > MAX_NAME:
        raise FormatError('description: expected each layer entry to be an object with a "prefix" string '
                          f"of at most {MAX_NAME} characters, found {type(entry).__name__}")
    prefix = entry["prefix"]
    layer = quote(prefix) if prefix else None
    options = entry.get("options") or {}
    if not isinstance(options, dict):
        raise FormatError(f"description: expected options to be an object, found {type(options).__name__}",
                          layer=layer)
    unknown = sorted(set(entry) - _ENTRY_KEYS) + sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise FormatError(f"description: unknown key {quote(unknown[0])}; expected some of "
                          f"{', '.join(sorted(_ENTRY_KEYS))}", layer=layer)
    fields = {**{k: v for k, v in entry.items() if k != "options"}, **options}
    for key, value in fields.items():
        _check_field(key, value, layer)
    kind = fields.get("kind", fields.get("module"))
    nonlinearity = fields.get("nonlinearity")
    if kind == "nn.RNN" and nonlinearity is None:
        nonlinearity = "tanh"  # the writer records nonlinearity only when it is not tanh
    overrides = {k: fields[k] for k in _OVERRIDES if k in fields}
    declared = {k: fields[k] for k in _DECLARED if k in fields}
    return ModuleSpec(prefix, _KIND_NAMES.get(kind), nonlinearity, fields.get("name", fields.get("layer")),
                      overrides, declared)


def _check_field(key: str, value, layer: str | None) -> None:
    """One description value of the right type and range, or a one-line FormatError."""
    if key in ("kind", "module"):
        ok, expected = value is None or (isinstance(value, str) and value in _KIND_NAMES), "lstm, gru or rnn"
    elif key == "nonlinearity":
        ok, expected = value is None or value in ("tanh", "relu") and isinstance(value, str), "tanh or relu"
    elif key == "merge_mode":
        ok, expected = value is None or isinstance(value, str) and value in MERGE_MODES, \
            f"one of {', '.join(str(m) for m in MERGE_MODES)}"
    elif key in ("name", "layer"):
        ok, expected = value is None or isinstance(value, str) and 0 < len(value) <= MAX_NAME, \
            f"a name of 1 to {MAX_NAME} characters"
    elif key in _BOOL_KEYS:
        ok, expected = isinstance(value, bool), "true or false"
    elif key in _SIZE_KEYS:
        ok, expected = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1 << 31, \
            "an integer from 1 to 2**31"
    else:  # prefix, checked by the caller
        return
    if not ok:
        shown = value if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
        raise FormatError(f"description: expected {key} {expected}, found {quote(shown)}", layer=layer)


# -- grouping keys into modules -----------------------------------------------------------------
@dataclass
class TorchModule:
    """The parameters of one nn.LSTM/GRU/RNN: ``layers[k][direction][part]``."""

    prefix: str
    layers: dict[int, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return len(self.layers)


def group_modules(tensors: dict[str, np.ndarray]) -> tuple[dict[str, TorchModule], list[str]]:
    """Recurrent parameters by module prefix (first-seen order), and the keys that are not."""
    modules: dict[str, TorchModule] = {}
    others = []
    for key, value in tensors.items():
        m = _KEY.match(key)
        if not m:
            others.append(key)
            continue
        if m["part"] == "weight_hr":
            raise UnsupportedError("nn.LSTM proj_size (weight_hr) has no equivalent in Keras or the IR",
                                   layer=quote(m["prefix"]) if m["prefix"] else None)
        if len(m["layer"]) > 4:
            raise FormatError(f"key {quote(key)}: expected a layer index below 10000, found {len(m['layer'])} digits")
        module = modules.setdefault(m["prefix"], TorchModule(m["prefix"]))
        direction = "backward" if m["reverse"] else "forward"
        module.layers.setdefault(int(m["layer"]), {}).setdefault(direction, {})[m["part"]] = value
    return modules, others


# -- building nodes ---------------------------------------------------------------------------
def _float(a: np.ndarray, key: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise FormatError(f"{quote(key)}: expected floating-point weights, found {a.dtype}")
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def _shown(key: str) -> str:
    """A state_dict key for a message: escaped and cut by :func:`quote`, without the quotes."""
    return quote(key)[1:-1]


def _check_layer(module: TorchModule, k: int) -> tuple[str, int, int, bool, bool]:
    """(kind, hidden, input_size, bidirectional, bias) of layer ``k``, checking every key and shape."""
    p = _shown(module.prefix)
    dirs = module.layers[k]
    if "forward" not in dirs:
        raise FormatError(f"expected {p}weight_ih_l{k} next to {p}weight_ih_l{k}_reverse, found none")
    fw = dirs["forward"]
    for part in ("weight_ih", "weight_hh"):
        if part not in fw:
            raise FormatError(f"expected {p}{part}_l{k}, found only {sorted(fw)}")
    w_hh = fw["weight_hh"]
    if w_hh.ndim != 2 or w_hh.shape[1] == 0 or w_hh.shape[0] % w_hh.shape[1]:
        raise FormatError(f"{p}weight_hh_l{k}: expected shape (gates*hidden, hidden), found {w_hh.shape}")
    hidden = w_hh.shape[1]
    n_gates = w_hh.shape[0] // hidden
    if n_gates not in _KIND_OF_GATES:
        raise FormatError(f"{p}weight_hh_l{k}: expected 4 (LSTM), 3 (GRU) or 1 (RNN) gate blocks "
                          f"of {hidden} rows, found {n_gates}")
    w_ih = fw["weight_ih"]
    if w_ih.ndim != 2 or w_ih.shape[1] == 0:
        raise FormatError(f"{p}weight_ih_l{k}: expected shape ({n_gates * hidden}, input_size >= 1), "
                          f"found {w_ih.shape}")
    input_size = w_ih.shape[1]
    bias = "bias_ih" in fw or "bias_hh" in fw
    expected = {"weight_ih": (n_gates * hidden, input_size), "weight_hh": (n_gates * hidden, hidden),
                "bias_ih": (n_gates * hidden,), "bias_hh": (n_gates * hidden,)}
    for direction, parts in dirs.items():
        sfx = f"_l{k}" + ("_reverse" if direction == "backward" else "")
        wanted = [part for part in TORCH_PARTS if bias or part.startswith("weight")]
        if sorted(parts) != sorted(wanted):
            raise FormatError(f"{p}*{sfx}: expected {', '.join(wanted)}, found {', '.join(sorted(parts))}")
        for part, value in parts.items():
            if value.shape != expected[part]:
                raise FormatError(f"{p}{part}{sfx}: expected shape {expected[part]}, found {value.shape}")
    return _KIND_OF_GATES[n_gates], hidden, input_size, "backward" in dirs, bias


def _check_declared(spec: ModuleSpec, module: TorchModule, k: int, hidden: int, input_size: int,
                    bidirectional: bool, bias: bool) -> None:
    """What a description says about sizes and flags must be what the weights of layer ``k`` say."""
    found = {"hidden_size": hidden, "units": hidden, "num_layers": module.num_layers, "bias": bias,
             "bidirectional": bidirectional}
    if k == 0:
        found["input_size"] = input_size
    for key, said in spec.declared.items():
        if key in found and said != found[key]:
            raise FormatError(f"description says {key}={said}, the weights have {key}={found[key]}",
                              layer=quote(spec.prefix) if spec.prefix else None)


def _base_name(module: TorchModule, spec: ModuleSpec | None) -> str:
    if spec and spec.name:
        return str(spec.name)
    return module.prefix.rstrip(".").replace(".", "_") or "rnn"


#: What every layer of one nn.LSTM / nn.GRU / nn.RNN shares (torch/nn/modules/rnn.py, RNNBase.__init__: one
#: mode, hidden_size, bias and bidirectional for all num_layers; only layer 0's input size differs).
_SHARED = ("mode", "hidden_size", "bidirectional", "bias")


def _check_shared(module: TorchModule, k: int, found: tuple, first: tuple, name: str) -> None:
    """Layer ``k`` of a module has layer 0's kind, hidden size, directions and bias, as every nn.* layer does: a
    state_dict mixing them (layer 1 of hidden 5 under layer 0 of 4, a reverse direction in one layer only) is no
    module torch builds, whatever the reader made of it."""
    for what, mine, zeroth in zip(_SHARED, found, first):
        if mine != zeroth:
            raise FormatError(f"{_shown(module.prefix)}*_l{k}: expected {what}={zeroth} as in layer 0 (the layers of "
                              f"one nn.LSTM/nn.GRU/nn.RNN share {', '.join(_SHARED)}), found {what}={mine}",
                              layer=quote(name))


def _module_nodes(module: TorchModule, spec: ModuleSpec | None, x: str, x_width: int | None) -> list[Node]:
    """The chained IR nodes of one module reading tensor ``x``."""
    if sorted(module.layers) != list(range(module.num_layers)):
        raise FormatError(f"{_shown(module.prefix)}: expected layers l0..l{module.num_layers - 1}, "
                          f"found {', '.join('l%d' % k for k in sorted(module.layers)[:8])}"
                          f"{' ...' if module.num_layers > 8 else ''}")
    base = _base_name(module, spec)
    nodes = []
    first = None
    for k in range(module.num_layers):
        kind, hidden, input_size, bidirectional, bias = _check_layer(module, k)
        name = base if module.num_layers == 1 else f"{base}_l{k}"
        first = first or (kind, hidden, bidirectional, bias)
        _check_shared(module, k, (kind, hidden, bidirectional, bias), first, name)
        if spec:
            _check_declared(spec, module, k, hidden, input_size, bidirectional, bias)
        if spec and spec.kind and spec.kind != kind:
            raise FormatError(f"description says {spec.kind}, the weights have {len(GATES[kind])} gate "
                              f"blocks ({kind})", layer=quote(name))
        if x_width is not None and input_size != x_width:
            raise FormatError(f"weight_ih_l{k}: expected {x_width} input columns (the previous layer's "
                              f"output width), found {input_size}", layer=quote(name))
        options: dict[str, Any] = {
            "units": hidden, "input_size": input_size, "activation": "tanh", "use_bias": bias,
            "go_backwards": False, "return_sequences": True, "return_state": False,
            "bidirectional": bidirectional, "zero_output_for_mask": False, "stateful": False,
        }
        if kind != "simple_rnn":
            options["recurrent_activation"] = "sigmoid"
        if kind == "gru":
            options["reset_after"] = True
        if bidirectional:
            options["merge_mode"] = "concat"
        if kind == "simple_rnn":
            if not (spec and spec.nonlinearity):
                raise UnsupportedError(
                    "nn.RNN weights do not say whether its nonlinearity is tanh or relu; pass a "
                    f'description {{"layers": [{{"prefix": "{_shown(module.prefix)}", "kind": "rnn", '
                    '"nonlinearity": "tanh"}]}', layer=quote(name))
            options["activation"] = spec.nonlinearity
        last = k == module.num_layers - 1
        if spec and spec.overrides:
            if not last and spec.overrides.get("go_backwards"):
                raise UnsupportedError("go_backwards on a multi-layer module has no nn.* meaning", layer=quote(name))
            if last:
                options.update(spec.overrides)
                if not bidirectional:
                    options.pop("merge_mode", None)
        if bidirectional and "zero_output_for_mask" not in (spec.overrides if spec else {}):
            options["zero_output_for_mask"] = bool(options["return_sequences"])  # as Keras' Bidirectional
        node = Node(name, kind, [x], [name], options,
                    source={"class_name": f"nn.{NN_CLASS[kind]}", "module": module.prefix, "layer": k})
        for direction, parts in module.layers[k].items():
            sfx = f"_l{k}" + ("_reverse" if direction == "backward" else "")
            arrays = {part: _float(parts[part], f"{module.prefix}{part}{sfx}") if part in parts else None
                      for part in TORCH_PARTS}
            set_recurrent_weights(node, direction, "torch", *arrays.values())
        node.outputs = _outputs(node)
        nodes.append(node)
        x = node.outputs[0]
        x_width = hidden * (2 if bidirectional and options.get("merge_mode") == "concat" else 1)
    return nodes


def _outputs(node: Node) -> list[str]:
    """Keras' output order: ``[y]`` (``[y_fw, y_bw]`` with merge_mode None), then states."""
    o, name = node.options, node.name
    n_y = 2 if o.get("bidirectional") and o.get("merge_mode") is None else 1
    n_states = STATES[node.op] * len(node.directions) if o.get("return_state") else 0
    return [name] + [f"{name}:{t}" for t in range(1, n_y + n_states)]


def _output_width(node: Node) -> int | None:
    o = node.options
    if not o.get("return_sequences") or (o.get("bidirectional") and o.get("merge_mode") is None):
        return None  # not a sequence another recurrent layer can read
    return o["units"] * (2 if o.get("bidirectional") and o.get("merge_mode") == "concat" else 1)


def to_model(tensors: dict[str, np.ndarray], description: Description | None, name: str = "torch_model",
             source: dict | None = None) -> Model:
    """The IR model of a state_dict's recurrent modules."""
    modules, others = group_modules(tensors)
    if not modules:
        raise FormatError("expected nn.LSTM/nn.GRU/nn.RNN parameters (weight_ih_l0, weight_hh_l0 ...), "
                          f"found {', '.join(sorted(tensors)[:6]) or 'no tensors'}")
    budget.count(sum(len(m.layers) for m in modules.values()), "recurrent layers in the state_dict",
                 limit=budget.MAX_RECURRENT)  # before building them: each costs milliseconds
    specs = {s.prefix: s for s in description.modules} if description else {}
    missing = [p for p in specs if p not in modules]
    if missing:
        raise FormatError(f"description names module prefix {quote(missing[0])}; the state_dict has "
                          f"{', '.join(quote(p) for p in list(modules)[:6])}{' ...' if len(modules) > 6 else ''}")
    order = [s.prefix for s in description.modules] if description else []
    order += [p for p in modules if p not in order]
    chain = bool(description and description.chain)
    inputs, nodes, taken = [], [], set()
    prev_width, prev_out = None, None
    for prefix in order:
        module, spec = modules[prefix], specs.get(prefix)
        input_size = _check_layer(module, min(module.layers))[2]
        if chain and prev_out is not None and prev_width == input_size:
            x = prev_out
        else:
            x = unique_name(f"{_base_name(module, spec)}_input", taken)
            inputs.append(TensorSpec(x, (None, input_size)))
        new = _module_nodes(module, spec, x, None)
        for node in new:
            if node.name in taken:
                raise FormatError(f"two modules map to the IR node name {node.name!r}; name them in a "
                                  "description", layer=quote(module.prefix))
            taken.update([node.name, *node.outputs])
        nodes += new
        prev_out, prev_width = new[-1].outputs[0], _output_width(new[-1])
    consumed = {t for n in nodes for t in n.inputs}
    outputs = [t for n in nodes for t in n.outputs if t not in consumed]
    return Model(name, inputs, outputs, nodes,
                 {"format": "torch-state-dict", **(source or {}), **({"ignored_keys": others} if others else {})})


def read(path: str | os.PathLike, description=None) -> Model:
    """Read a PyTorch state_dict file into the IR (see the module docstring for ``description``)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError("no such file", file=str(path))
    try:
        tensors, metadata = load_tensors(path)
        desc = load_description(description, metadata)
        return to_model(tensors, desc, name=path.stem.split(".")[0] or "torch_model",
                        source={"path": str(path)})
    except GateportError as e:
        raise e.at(file=str(path))
