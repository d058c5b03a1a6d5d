"""Keras recurrent layers as PyTorch ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` parameters.

* :func:`state_dict` / :func:`write`: the recurrent layers' weights under PyTorch's own key names
  (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``), for people
  who already have their PyTorch model. One recurrent layer gives bare keys; several are prefixed
  with the layer name made a unique ASCII identifier (``encoder.weight_ih_l0``;
  :func:`converters.sanitize.identifier`), the metadata keeping the Keras name.
* :func:`load_into`: copy the Keras recurrent and dense layers into the matching submodules of a
  user's ``nn.Module``, in order, checking every shape and that nn.* computes what Keras does.

Mapping (SEMANTICS.md §3.1, §3.5; keras/src/backend/torch/rnn.py ``prepare_lstm_params`` /
``prepare_gru_params``): ``weight_ih = kernel.T``, ``weight_hh = recurrent_kernel.T`` in PyTorch's
gate order (GRU z,r,h -> r,z,n, through :mod:`converters.gates`); Keras' single bias goes to
``bias_ih`` with ``bias_hh`` zero; GRU ``reset_after=True`` / CuDNN double biases split exactly.
torch is imported only inside :func:`load_into`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import MismatchError, UnsupportedError
from ..ir import Model, Node
from ..sanitize import identifier, quote
from .nn_layout import NN_CLASS, TORCH_PARTS, has_bias, nn_constructor, nn_incompatibility, nn_params  # noqa: F401


def _check_exact(nodes: list[Node]) -> None:
    problems = [f"{n.label()}: nn.{NN_CLASS[n.op]} cannot compute this layer exactly: {why}"
                for n in nodes if (why := nn_incompatibility(n))]
    if problems:
        raise UnsupportedError("; ".join(problems) + " (use --to torch for an exact module)")


def _prefixed(model: Model) -> list[tuple[Node, str]]:
    """The recurrent nodes and their key prefixes: ``""`` for one layer, else ``<identifier>.``, unique."""
    nodes = list(model.recurrent_nodes())
    if len(nodes) == 1:
        return [(nodes[0], "")]
    taken: set[str] = set()
    prefixed = []
    for n in nodes:
        name = identifier(n.name, taken, fallback="layer")
        taken.add(name)
        prefixed.append((n, f"{name}."))
    return prefixed


def state_dict(model: Model) -> dict[str, np.ndarray]:
    """The recurrent layers' nn.* parameters: bare keys for one layer, ``<layer>.`` prefixed for several
    (arrays of their own, writable).

    Raises UnsupportedError for a layer nn.* would compute differently (see :func:`nn_incompatibility`).
    """
    return {k: np.array(v, order="C") for k, v in _parameters(model).items()}


def _parameters(model: Model) -> dict[str, np.ndarray]:
    """:func:`state_dict`'s arrays as the IR holds them: views of the weights read where they can be (no copy)."""
    nodes = list(model.recurrent_nodes())
    if not nodes:
        raise UnsupportedError("the model has no LSTM, GRU or SimpleRNN layer")
    _check_exact(nodes)
    return {prefix + k: v for n, prefix in _prefixed(model) for k, v in nn_params(n).items()}


def _layers_metadata(model: Model) -> list[dict]:
    """Per layer: its key prefix, the nn module to build, and the Keras options the weights cannot say."""
    entries = []
    for n, prefix in _prefixed(model):
        o = n.options
        entry = {"layer": n.name, "prefix": prefix,
                 "module": f"nn.{NN_CLASS[n.op]}", **nn_constructor(n), "batch_first": True,
                 **{k: bool(o.get(k)) for k in ("go_backwards", "return_sequences", "return_state")}}
        if o.get("bidirectional"):
            entry["merge_mode"] = o.get("merge_mode")
        entries.append(entry)
    return entries


def write(model: Model, path: str | os.PathLike, force: bool = False) -> Path:
    """Write :func:`state_dict` to ``path`` (safetensors), atomically; the metadata describes each module."""
    from ..atomic import atomic_path
    from ..safetensors_io import save

    tensors = _parameters(model)  # each written from its array (safetensors_io.write_array): no copy of them all
    metadata = {"format": "pt", "gateport.layers": json.dumps(_layers_metadata(model))}
    with atomic_path(path, force) as tmp:
        save(tmp, tensors, metadata)
    return Path(path)


# -- load_into --------------------------------------------------------------------------------

def _torch_rnn_modules(module, nn) -> tuple[list, list]:
    """(recurrent, linear) submodules of ``module`` as ``(qualified name, module)`` in registration order."""
    rnns, linears = [], []
    for name, sub in module.named_modules():
        if isinstance(sub, (nn.LSTM, nn.GRU, nn.RNN)):
            rnns.append((name or "<module>", sub))
        elif isinstance(sub, nn.Linear):
            linears.append((name or "<module>", sub))
    return rnns, linears


def _describe(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


def _match_recurrent(nodes: list[Node], rnns: list) -> tuple[list, list[str]]:
    """Pair Keras layers with torch modules in order; a module with num_layers=k takes k layers."""
    pairs, problems, i = [], [], 0
    for mname, mod in rnns:
        for layer in range(mod.num_layers):
            if i >= len(nodes):
                problems.append(f"{mname} layer {layer} has no Keras recurrent layer left")
                break
            node = nodes[i]
            i += 1
            where = f"{node.label()} -> {mname}" + (f" layer {layer}" if mod.num_layers > 1 else "")
            kind = type(mod).__name__
            if kind != NN_CLASS[node.op]:
                problems.append(f"{where}: expected nn.{NN_CLASS[node.op]}, found nn.{kind}")
                continue
            if mod.bidirectional != bool(node.options.get("bidirectional")):
                problems.append(f"{where}: expected bidirectional={bool(node.options.get('bidirectional'))}, "
                                f"found {mod.bidirectional}")
                continue
            if getattr(mod, "proj_size", 0):
                problems.append(f"{where}: expected proj_size=0, found {mod.proj_size}")
                continue
            why = nn_incompatibility(node)
            if why:
                problems.append(f"{where}: nn.{kind} cannot compute this layer: {why}")
                continue
            act = node.options["activation"]
            if kind == "RNN" and mod.nonlinearity != act:
                problems.append(f"{where}: expected nonlinearity={quote(act)}, found {quote(mod.nonlinearity)}")
                continue
            pairs.append((node, mod, layer, where))
    if i < len(nodes):
        problems.append(f"Keras recurrent layer(s) {_describe([n.label() for n in nodes[i:]])} have no "
                        f"matching nn.LSTM/nn.GRU/nn.RNN (module has {_describe([n for n, _ in rnns])})")
    return pairs, problems


def _assignments_recurrent(pairs: list) -> tuple[list, list[str]]:
    todo, problems = [], []
    for node, mod, layer, where in pairs:
        problem = None
        for name, value in nn_params(node, layer).items():
            param = getattr(mod, name, None)
            if param is None:
                problem = f"{where}: expected parameter {name}, found bias=False"
            elif tuple(param.shape) != value.shape:
                problem = f"{where}.{name}: expected {tuple(value.shape)}, found {tuple(param.shape)}"
            if problem:  # the first difference says it; the others follow from it
                problems.append(problem)
                break
            todo.append((param, value))
        if problem:
            continue
        if mod.bias and not has_bias(node):  # Keras use_bias=False: the torch biases become zeros
            for direction in node.directions:
                sfx = f"_l{layer}" + ("_reverse" if direction == "backward" else "")
                for name in ("bias_ih", "bias_hh"):
                    param = getattr(mod, name + sfx)
                    todo.append((param, np.zeros(tuple(param.shape), np.float32)))
    return todo, problems


def _assignments_dense(nodes: list[Node], linears: list) -> tuple[list, list[str]]:
    todo, problems = [], []
    if len(nodes) != len(linears):
        problems.append(f"Keras dense layers ({_describe([n.label() for n in nodes])}) do not match the "
                        f"module's nn.Linear ({_describe([n for n, _ in linears])}): expected {len(nodes)}, "
                        f"found {len(linears)}")
    for node, (mname, lin) in zip(nodes, linears):
        where = f"{node.label()} -> {mname}"
        weight = np.asarray(node.weights["weight"], np.float32)
        if tuple(lin.weight.shape) != weight.shape:
            problems.append(f"{where}.weight: expected {weight.shape}, found {tuple(lin.weight.shape)}")
            continue
        todo.append((lin.weight, weight))
        bias = node.weights.get("bias")
        if lin.bias is None:
            if bias is not None and np.any(bias):
                problems.append(f"{where}: expected a bias, found bias=False")
        else:
            todo.append((lin.bias, np.zeros(weight.shape[0], np.float32) if bias is None
                         else np.asarray(bias, np.float32)))
    return todo, problems


def load_into(module, model: Model):
    """Copy the Keras recurrent and dense layers into ``module``'s nn.LSTM/GRU/RNN and nn.Linear.

    Keras recurrent layers go, in model order, to the module's nn.LSTM / nn.GRU / nn.RNN in
    registration order (a module with ``num_layers=k`` takes k consecutive layers); Keras dense
    layers go to its nn.Linear in order. Every shape and every layer kind is checked before
    anything is copied; a mismatch raises :class:`MismatchError` with one line naming the layers
    and both shapes. Returns ``[(keras layer, torch module)]`` pairs. ``model`` is IR: the API
    (:func:`converters.load_into`) reads files and models in memory.
    """
    from ..errors import require

    torch = require("torch", "torch")
    nn = torch.nn
    rnns, linears = _torch_rnn_modules(module, nn)
    pairs, problems = _match_recurrent(list(model.recurrent_nodes()), rnns)
    todo, more = _assignments_recurrent(pairs)
    problems += more
    dense = [n for n in model.nodes if n.op == "dense"]
    todo_dense, more = _assignments_dense(dense, linears)
    problems += more
    if problems:
        raise MismatchError("; ".join(problems))
    with torch.no_grad():
        for param, value in todo + todo_dense:
            param.copy_(torch.from_numpy(np.array(value)).to(param.dtype))  # a copy: the weights read may be read-only views
    return [(node.name, where.split(" -> ")[1]) for node, _, _, where in pairs] + \
        [(n.name, m) for n, (m, _) in zip(dense, linears)]
