"""``--to torch``: a readable, standalone PyTorch ``model.py`` mirroring the Keras graph, plus its weights.

The generated file imports only torch (and safetensors to read ``model.safetensors``). It holds
``class Model(nn.Module)`` with one submodule per Keras layer, a ``forward`` that reads like the
Keras graph (inputs in Keras' order, batch-first; one tensor or a tuple in Keras' output order),
and ``load_model(path=None)``.

Recurrent layers become ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (one module with
``bidirectional=True`` for a Bidirectional layer, the merge applied after) wherever those compute
exactly what Keras does; otherwise, and for masked layers, a small exact step loop
(:mod:`converters.writers.torch_templates`) is generated into the file, once per kind. Eagerly on the CPU,
the nn.* modules are called through ``keras_nn_rnn``: their ATen kernel with their own parameters, the same
bits as their forward without its per-call Python (issue 16); TorchScript, tracing and export call the module.
torch is never imported here.
"""
from __future__ import annotations

import ast
import json
import keyword
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..version import __version__
from ..errors import FormatError, UnsupportedError
from ..ir import Model, Node
from ..ops import MASK_LOGIC, STATES
from ..sanitize import comment, identifier, quote
from ..dtypes import artifact_dtype
from .tf_ops_code import emitters as tf_ops_emitters
from .codegen import (check_outputs as _check_outputs, describe as _describe, initial_states as _initial_states,
                      int_option as _int, merge_expression, notes_doc as _notes, number as _number,
                      shape_doc as _shape, shapes as _shapes,
                      without_unused_assignments as _without_unused_assignments)
from .nn_layout import NN_CLASS, nn_constructor, nn_incompatibility, nn_params
from .torch_attention import EMITTERS as ATTENTION_EMITTERS
from .torch_conv_lstm import EMITTERS as CONV_LSTM_EMITTERS
from .torch_conv2d import EMITTERS as CONV2D_EMITTERS
from .torch_norms import EMITTERS as NORM_EMITTERS
from .torch_templates import ACTIVATIONS, FUNCTION_NAMES, helper_source

#: Names the generated code uses itself, and nn.Module's own attributes.
_RESERVED = set(keyword.kwlist) | {
    "self", "torch", "nn", "F", "Tensor", "List", "Optional", "Tuple", "os", "Model", "load_model",
    "path", "model", "_", "warnings", "weakref", "_SCRIPTED", "_LAID_OUT", "_NN_KERNELS", "hard_sigmoid_keras2",
    "keras_same_padding", "training", "forward",
    "add_module", "apply", "bfloat16", "buffers", "children", "compile", "cpu", "cuda", "double", "eval",
    "extra_repr", "float", "half", "modules", "parameters", "state_dict", "to", "train", "type",
    "zero_grad", "load_state_dict", "named_modules", "named_parameters", "named_buffers",
    "named_children", "register_buffer", "register_parameter", "register_module", "requires_grad_",
    "get_submodule", "get_parameter", "get_buffer", "share_memory", "to_empty", "xpu", "ipu", "mtia",
    "call_super_init", "dump_patches", "T_destination", "set_submodule", "get_extra_state",
    "set_extra_state", "print", "len", "range", "max", "min", "list", "int", *FUNCTION_NAMES,
}
_MERGES = {
    "concat": "torch.cat([{a}, {b}], dim=-1)",
    "sum": "{a} + {b}",
    "mul": "{a} * {b}",
    "ave": "({a} + {b}) / 2",
}


class _Writer:
    """Collects the submodules, forward lines, weights and helpers of one model."""

    def __init__(self, model: Model):
        self.model = model
        self.shapes = _shapes(model)
        self.vars: dict[str, str] = {}  # IR tensor -> python variable (or expression)
        self.read = model.read_tensors()  # tensors something reads (an output nobody reads gets no line)
        self.taken: set[str] = set(_RESERVED)  # local variable names
        self.attrs: set[str] = set(_RESERVED)  # submodule names
        self.init: list[str] = []
        self.body: list[str] = []
        self.tensors: dict[str, np.ndarray] = {}
        self.helpers: set[str] = set()
        #: the dtype the module computes in: float64 for a model whose every layer is float64 (dtypes.py)
        self.dtype = artifact_dtype(model, "torch")

    # -- names -----------------------------------------------------------------------------
    def unique(self, base: str, taken: set[str] | None = None) -> str:
        """A new identifier like ``base`` (a local variable unless ``taken`` says otherwise)."""
        taken = self.taken if taken is None else taken
        name = identifier(base, taken)
        taken.add(name)
        return name

    def var(self, tensor: str, node: Node | None = None) -> str:
        try:
            return self.vars[tensor]
        except KeyError:
            raise FormatError(f"expected tensor {quote(tensor)} to be computed before it is used, found it is not",
                              layer=node.label() if node else None) from None

    def assign(self, tensor: str, expr: str) -> None:
        """Bind ``tensor`` to ``expr``: by name if ``expr`` is already a variable, else by a line."""
        if expr.isidentifier() and expr not in self.vars.values() and expr in self.taken:
            self.vars[tensor] = expr
            return
        name = self.unique(tensor)
        self.line(f"{name} = {expr}")
        self.vars[tensor] = name

    def line(self, text: str) -> None:
        self.body.append(text)

    # -- modules and weights ---------------------------------------------------------------
    def module(self, node: Node, ctor: str, params: dict[str, np.ndarray], suffix: str = "") -> str:
        attr = self.unique(node.name + suffix, self.attrs)
        self.init.append(f"self.{attr} = {ctor}")
        for key, value in params.items():
            value = np.asarray(value)
            # kept as it is (a view of the weights read, when it can be): laid out while written (safetensors_io)
            self.tensors[f"{attr}.{key}"] = np.asarray(value, self.dtype if value.dtype.kind == "f" else None)
        return attr

    def activation(self, name: str | None, expr: str) -> str:
        fmt, _, helper = self._activation(name)
        if helper:
            self.helpers.add(helper)
        return fmt.format(expr)

    def activation_module(self, name: str | None) -> str:
        _, ctor, helper = self._activation(name)
        if helper:
            self.helpers.add(helper)
        return ctor

    @staticmethod
    def _activation(name: str | None):
        name = name or "linear"
        if name not in ACTIVATIONS:
            raise UnsupportedError(f"expected an IR activation ({', '.join(ACTIVATIONS)}), found {quote(name)}")
        return ACTIVATIONS[name]


def _f32(a) -> np.ndarray:
    """float32, or float64 where the weights are (the module's dtype decides what is stored: _Writer.module)."""
    return np.asarray(a, dtype=np.float64 if np.asarray(a).dtype == np.float64 else np.float32)


# -- recurrent layers ----------------------------------------------------------------------

def _merge(node: Node, fw: str, bw: str) -> list[str]:
    mode = node.options["merge_mode"]
    if mode is None:
        return [fw, bw]
    if mode not in _MERGES:
        raise UnsupportedError(f"expected merge_mode in {list(_MERGES)} or None, found {quote(mode)}", layer=node.label())
    return [_MERGES[mode].format(a=fw, b=bw)]


def recurrent_to_torch(w: _Writer, node: Node) -> None:
    """LSTM / GRU / SimpleRNN, plain or Bidirectional: nn.* where exact (masked: over the unmasked
    steps, KerasMaskedRNN), else a loop (KerasLoop; also a masked LSTM returning its c)."""
    o, n_states = node.options, STATES[node.op]
    init = _initial_states(w, node, n_states)
    w.line(_describe(node))
    if nn_incompatibility(node) is not None or (node.op == "lstm" and node.mask and o.get("return_state")):
        ys, states = _recurrent_loop(w, node, n_states, init, _loop_module)
    elif node.mask:
        ys, states = _recurrent_loop(w, node, n_states, init, _masked_nn_module)
    else:
        ys, states = _recurrent_nn(w, node, n_states, init)
    exprs = ys + (states if node.options.get("return_state") else [])
    _check_outputs(node, exprs)
    for tensor, expr in zip(node.outputs, exprs):
        if tensor in w.read or expr.isidentifier():  # an output nothing reads needs no line (e.g. seq[:, -1])
            w.assign(tensor, expr)


def _recurrent_nn(w: _Writer, node: Node, n_states: int, init) -> tuple[list[str], list[str]]:
    o = node.options
    bi, units = bool(o.get("bidirectional")), _int(o["units"])
    args = nn_constructor(node)
    ctor = ", ".join([str(args.pop("input_size")), str(args.pop("hidden_size")), "batch_first=True"]
                     + [f"{k}={v!r}" for k, v in args.items()])
    attr = w.module(node, f"nn.{NN_CLASS[node.op]}({ctor})", nn_params(node, dtype=w.dtype))
    x = w.var(node.inputs[0], node)
    x_in = f"{x}.flip(1)" if o.get("go_backwards") else x
    hx = ""
    if init:
        packed = []
        for k in range(n_states):
            parts = [d[k] for d in init]
            packed.append(f"torch.stack([{', '.join(parts)}])" if bi else f"{parts[0]}.unsqueeze(0)")
        hx = ", " + (f"({packed[0]}, {packed[1]})" if n_states == 2 else packed[0])
    seq_whole = o.get("return_sequences") and (not bi or o.get("merge_mode") == "concat")
    base = identifier(node.name)
    seq = w.unique(node.outputs[0] if seq_whole else f"{base}_seq") if o.get("return_sequences") else "_"
    need_states = o.get("return_state") or not o.get("return_sequences")
    h_n = w.unique(f"{base}_h") if need_states else "_"
    c_n = w.unique(f"{base}_c") if need_states and n_states == 2 and o.get("return_state") else "_"
    states_lhs = f"({h_n}, {c_n})" if n_states == 2 and need_states else h_n
    w.helpers.add("keras_nn_rnn")
    w.line(f"{seq}, {states_lhs} = self.{attr}({x_in}{hx}) if torch.jit.is_scripting() "
           f"else keras_nn_rnn(self.{attr}, {x_in}{hx})")
    if o.get("return_sequences"):
        if seq_whole:
            ys = [seq]
        else:
            ys = _merge(node, f"{seq}[:, :, :{units}]", f"{seq}[:, :, {units}:]") if bi else [seq]
    else:
        ys = _merge(node, f"{h_n}[0]", f"{h_n}[1]") if bi else [f"{h_n}[0]"]
    states = [f"{(h_n, c_n)[k]}[{d}]" for d in range(len(node.directions)) for k in range(n_states)]
    return ys, states


def _loop_params(node: Node, direction: str) -> dict[str, np.ndarray]:
    """One direction's weights as a KerasLoop holds them (nn.* layout, biases always present)."""
    return {name: _f32(node.stacked(direction, part, "torch"))
            for name, part in (("weight_ih", "input_weights"), ("weight_hh", "recurrent_weights"),
                               ("bias_ih", "input_bias"), ("bias_hh", "recurrent_bias"))}


def _direction_flags(node: Node, direction: str) -> list[str]:
    """The go_backwards / zero_output_for_mask arguments of one direction's module."""
    o, flags = node.options, []
    if bool(o.get("go_backwards")) != (direction == "backward"):
        flags.append("go_backwards=True")
    if node.mask and o.get("zero_output_for_mask"):
        flags.append("zero_output_for_mask=True")
    return flags


def _loop_module(w: _Writer, node: Node, direction: str) -> tuple[str, dict[str, np.ndarray]]:
    """One direction as an LSTMLoop / GRULoop / SimpleRNNLoop: (constructor, parameters)."""
    o = node.options
    cls = {"lstm": "LSTMLoop", "gru": "GRULoop", "simple_rnn": "SimpleRNNLoop"}[node.op]
    w.helpers.add(cls)
    n_in = node.weights[f"forward.{node.gate_names[0]}.input_weights"].shape[1]
    args = [str(n_in), str(_int(o["units"])), w.activation_module(o["activation"])]
    if node.op != "simple_rnn":
        args.append(w.activation_module(o["recurrent_activation"]))
    if node.op == "gru" and not o["reset_after"]:
        args.append("reset_after=False")
    return f"{cls}({', '.join(args + _direction_flags(node, direction))})", _loop_params(node, direction)


def _masked_nn_module(w: _Writer, node: Node, direction: str) -> tuple[str, dict[str, np.ndarray]]:
    """One masked direction as KerasMaskedRNN around a one-direction nn.*: (constructor, parameters)."""
    cls = "KerasMaskedLSTM" if node.op == "lstm" else "KerasMaskedRNN"
    w.helpers.add(cls)
    args = nn_constructor(node)
    args.pop("bidirectional", None)
    rnn = ", ".join([str(args.pop("input_size")), str(args.pop("hidden_size")), "batch_first=True"]
                    + [f"{k}={v!r}" for k, v in args.items()])
    suffix = "_reverse" if direction == "backward" else ""
    params = {f"rnn.{k[:-len(suffix)] if suffix else k}": v for k, v in nn_params(node, dtype=w.dtype).items()
              if k.endswith("_reverse") == bool(suffix)}
    ctor = ", ".join([f"nn.{NN_CLASS[node.op]}({rnn})"] + _direction_flags(node, direction))
    return f"{cls}({ctor})", params


def _recurrent_loop(w: _Writer, node: Node, n_states: int, init, make: Callable) -> tuple[list[str], list[str]]:
    """One module per direction (``make(w, node, direction)`` -> constructor, parameters), or for a
    Bidirectional loop one KerasBiLoop running both in one loop; each direction gives (outputs in
    processing order, states); the Bidirectional flip and merge after."""
    o = node.options
    x = w.var(node.inputs[0], node)
    mask = w.var(node.mask, node) if node.mask else None
    base = identifier(node.name)
    args = [x] + ([mask or "None"] if mask or init else [])
    states_in = [f"[{', '.join(states)}]" for states in init or []]  # per direction, when given
    seqs, sts = [], []
    if o.get("bidirectional") and make is _loop_module:
        parts = [make(w, node, direction) for direction in node.directions]
        w.helpers.add("KerasBiLoop")
        params = {f"{d}.{k}": v for d, (_, p) in zip(("fw", "bw"), parts) for k, v in p.items()}
        attr = w.module(node, f"KerasBiLoop({parts[0][0]}, {parts[1][0]})", params)
        seqs = [w.unique(f"{base}_{direction}_seq") for direction in node.directions]
        sts = [w.unique(f"{base}_{direction}_states") if o.get("return_state") else "_" for direction in node.directions]
        w.line(f"{', '.join(seqs + sts)} = self.{attr}({', '.join(args + states_in)})")
    else:
        for k, direction in enumerate(node.directions):
            suffix = f"_{direction}" if o.get("bidirectional") else ""
            attr = w.module(node, *make(w, node, direction), suffix)
            seq_whole = o.get("return_sequences") and not o.get("bidirectional")
            seqs.append(w.unique(node.outputs[0] if seq_whole else f"{base}{suffix}_seq"))
            sts.append(w.unique(f"{base}{suffix}_states") if o.get("return_state") else "_")
            w.line(f"{seqs[-1]}, {sts[-1]} = self.{attr}({', '.join(args + states_in[k:k + 1])})")
    ys, states = [], []
    for seq, st, direction in zip(seqs, sts, node.directions):
        if not o.get("return_sequences"):
            ys.append(f"{seq}[:, -1]")
        elif direction == "backward":
            ys.append(f"{seq}.flip(1)")  # Bidirectional flips the backward sequence back to input time
        else:
            ys.append(seq)
        states += [f"{st}[{j}]" for j in range(n_states)]
    if o.get("bidirectional"):
        ys = _merge(node, ys[0], ys[1])
    return ys, states


# -- other layers --------------------------------------------------------------------------

def dense_to_torch(w: _Writer, node: Node) -> None:
    weight = _f32(node.weights["weight"])
    params = {"weight": weight}
    args = f"{weight.shape[1]}, {weight.shape[0]}"
    if node.options["use_bias"] or np.any(node.weights.get("bias", 0)):
        params["bias"] = _f32(node.weights.get("bias", np.zeros(weight.shape[0])))
    else:
        args += ", bias=False"
    attr = w.module(node, f"nn.Linear({args})", params)
    x = w.var(node.inputs[0], node)
    w.assign(node.outputs[0], w.activation(node.options.get("activation"), f"self.{attr}({x})"))


def embedding_to_torch(w: _Writer, node: Node) -> None:
    table = _f32(node.weights["embeddings"])
    attr = w.module(node, f"nn.Embedding({table.shape[0]}, {table.shape[1]})", {"weight": table})
    w.assign(node.outputs[0], f"self.{attr}({w.var(node.inputs[0], node)})")


def mask_not_equal_to_torch(w: _Writer, node: Node) -> None:
    o = node.options
    value = o["value"]
    expr = f"{w.var(node.inputs[0], node)} != {_number(value)}"
    w.assign(node.outputs[0], f"({expr}).any(dim=-1)" if o.get("reduce") else expr)


def mask_and_to_torch(w: _Writer, node: Node) -> None:
    """mask_and / mask_or: the input masks joined by ``&`` / ``|``."""
    w.assign(node.outputs[0], f" {MASK_LOGIC[node.op]} ".join(w.var(t, node) for t in node.inputs))


def mask_concat_to_torch(w: _Writer, node: Node) -> None:
    """mask_concat: the input masks joined on the time axis."""
    w.assign(node.outputs[0], f"torch.cat([{', '.join(w.var(t, node) for t in node.inputs)}], dim=1)")


def mask_lengths_to_torch(w: _Writer, node: Node) -> None:
    """ONNX ``sequence_lens`` as a mask: ``arange(time) < lengths[:, None]``."""
    lengths, x = (w.var(t, node) for t in node.inputs)
    w.assign(node.outputs[0], f"torch.arange({x}.shape[1], device={lengths}.device) < {lengths}.long()[:, None]")


def masking_to_torch(w: _Writer, node: Node) -> None:
    """Keras' Masking: ``where(mask, x, 0)`` (keras/src/layers/core/masking.py; not ``x * mask``: inf * 0 is NaN)."""
    x = w.var(node.inputs[0], node)
    if len(node.inputs) > 1:
        mask = w.var(node.inputs[1], node)
    elif node.mask:
        mask = w.var(node.mask, node)
    else:
        mask = f"({x} != {_number(node.options.get('mask_value', 0))}).any(dim=-1)"
    w.assign(node.outputs[0], f"torch.where({mask}.unsqueeze(-1), {x}, torch.zeros_like({x}))")


def repeat_vector_to_torch(w: _Writer, node: Node) -> None:
    w.assign(node.outputs[0], f"{w.var(node.inputs[0], node)}.unsqueeze(1).repeat(1, {_int(node.options['n'])}, 1)")


def concatenate_to_torch(w: _Writer, node: Node) -> None:
    parts = ", ".join(w.var(t, node) for t in node.inputs)
    w.assign(node.outputs[0], f"torch.cat([{parts}], dim={_int(node.options.get('axis', -1))})")


def merge_to_torch(w: _Writer, node: Node) -> None:
    """add, subtract, multiply, average, maximum, minimum: left to right, as Keras' Merge layers."""
    w.assign(node.outputs[0], merge_expression(node, [w.var(t, node) for t in node.inputs], "torch"))


def activation_to_torch(w: _Writer, node: Node) -> None:
    w.assign(node.outputs[0], w.activation(node.options.get("activation"), w.var(node.inputs[0], node)))


def identity_to_torch(w: _Writer, node: Node) -> None:
    w.vars[node.outputs[0]] = w.var(node.inputs[0], node)  # Dropout and friends at inference


def flatten_to_torch(w: _Writer, node: Node) -> None:
    w.assign(node.outputs[0], f"{w.var(node.inputs[0], node)}.flatten(1)")


def reshape_to_torch(w: _Writer, node: Node) -> None:
    x = w.var(node.inputs[0], node)
    dims = ", ".join(str(_int(d)) for d in node.options["shape"])
    w.assign(node.outputs[0], f"{x}.reshape({x}.size(0), {dims})")


def batch_norm_to_torch(w: _Writer, node: Node) -> None:
    shape = w.shapes.get(node.inputs[0])
    if shape is None:
        raise UnsupportedError("expected a known input rank for BatchNormalization, found none", layer=node.label())
    rank = len(shape) + 1
    axis = _int(node.options["axis"]) % rank
    if axis == 0 or rank > 5:
        raise UnsupportedError(f"expected a feature axis of a rank 2-5 tensor, found axis {axis} of rank {rank}",
                               layer=node.label())
    wts = node.weights
    mean = _f32(wts["moving_mean"])
    n = mean.shape[0]
    params = {"weight": _f32(wts.get("gamma", np.ones(n))), "bias": _f32(wts.get("beta", np.zeros(n))),
              "running_mean": mean, "running_var": _f32(wts["moving_variance"]),
              "num_batches_tracked": np.zeros((), np.int64)}
    cls = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}[rank]
    eps = _number(node.options["epsilon"])
    attr = w.module(node, f"nn.{cls}({n}, eps={eps})", params)
    x = w.var(node.inputs[0], node)
    if axis == 1:
        expr = f"self.{attr}({x})"
    elif rank == 3:
        expr = f"self.{attr}({x}.transpose(1, 2)).transpose(1, 2)"
    else:
        expr = f"self.{attr}({x}.movedim({axis}, 1)).movedim(1, {axis})"
    w.assign(node.outputs[0], expr)


def conv1d_to_torch(w: _Writer, node: Node) -> None:
    o = node.options
    weight = _f32(node.weights["weight"])
    filters, n_in, k = weight.shape
    stride, dilation, groups = (_int(o.get(key, 1)) for key in ("strides", "dilation_rate", "groups"))
    params = {"weight": weight}
    args = [str(n_in * groups), str(filters), str(k)] + [
        f"{name}={v}" for name, v in (("stride", stride), ("dilation", dilation), ("groups", groups)) if v != 1]
    if o["use_bias"] or np.any(node.weights.get("bias", 0)):
        params["bias"] = _f32(node.weights.get("bias", np.zeros(filters)))
    else:
        args.append("bias=False")
    attr = w.module(node, f"nn.Conv1d({', '.join(args)})", params)
    x = f"{w.var(node.inputs[0], node)}.transpose(1, 2)"  # Keras is channels-last
    padding, span = o["padding"], dilation * (k - 1)
    if padding == "causal":
        x = f"F.pad({x}, ({span}, 0))"
    elif padding == "same" and stride == 1 and span:
        x = f"F.pad({x}, ({span // 2}, {span - span // 2}))"
    elif padding == "same" and stride != 1:
        w.helpers.add("keras_same_padding")
        t = w.unique(f"{node.name}_in")
        w.line(f"{t} = {x}")
        x = f"F.pad({t}, keras_same_padding({t}.size(2), {k}, {stride}, {dilation}))"
    elif padding not in ("valid", "same"):
        raise UnsupportedError(f"expected padding valid, same or causal, found {quote(padding)}", layer=node.label())
    w.assign(node.outputs[0], w.activation(o.get("activation"), f"self.{attr}({x}).transpose(1, 2)"))


def relu_to_torch(w: _Writer, node: Node) -> None:
    """Keras ReLU/LeakyReLU: ``clip(x * (x > t), 0, max) - negative_slope * relu(t - x)``."""
    o, x = node.options, w.var(node.inputs[0], node)
    t, slope, top = float(o["threshold"]), float(o["negative_slope"]), o.get("max_value")
    expr = f"{x} * ({x} > {_number(t)}).to({x}.dtype)" if t != 0 else f"torch.relu({x})"
    if top is not None:
        expr = f"torch.clamp({expr}, 0.0, {_number(top)})"
    if slope:
        expr = f"{expr} - {_number(slope)} * torch.relu({_number(t)} - {x})"
    w.assign(node.outputs[0], expr)


def elu_to_torch(w: _Writer, node: Node) -> None:
    alpha = _number(node.options["alpha"])
    w.assign(node.outputs[0], f"F.elu({w.var(node.inputs[0], node)}, alpha={alpha})")


def prelu_to_torch(w: _Writer, node: Node) -> None:
    alpha = _f32(node.weights["alpha"])
    w.helpers.add("KerasPReLU")
    attr = w.module(node, f"KerasPReLU({tuple(int(d) for d in alpha.shape)})", {"alpha": alpha})
    w.assign(node.outputs[0], f"self.{attr}({w.var(node.inputs[0], node)})")


def global_pool_to_torch(w: _Writer, node: Node) -> None:
    """Global max/mean over the time axis; a masked mean leaves masked steps out of sum and count."""
    o, x = node.options, w.var(node.inputs[0], node)
    dim, keep = _int(o["axis"]), bool(o.get("keepdims"))
    if o.get("mode") == "max":
        expr = f"{x}.amax(dim={dim}, keepdim={keep})"
    elif node.mask:
        m = w.unique(f"{node.name}_mask")
        w.line(f"{m} = {w.var(node.mask, node)}.unsqueeze({2 if dim == 1 else 1})")
        expr = (f"torch.where({m}, {x}, torch.zeros_like({x})).sum(dim={dim}, keepdim={keep}) "
                f"/ {m}.to({x}.dtype).sum(dim={dim}, keepdim={keep})")
    else:
        expr = f"{x}.mean(dim={dim}, keepdim={keep})"
    w.assign(node.outputs[0], expr)


def pool1d_to_torch(w: _Writer, node: Node) -> None:
    """F.max_pool1d / F.avg_pool1d channels-first; ``same`` padding as TensorFlow pads (the padding
    is -inf for the max and left out of the mean's count)."""
    o = node.options
    k = _int(o["pool_size"])
    s = _int(o.get("strides") or k)
    x = f"{w.var(node.inputs[0], node)}.transpose(1, 2)"
    if o["padding"] == "same":
        w.helpers.add("keras_same_padding")
        t = w.unique(f"{node.name}_in")
        w.line(f"{t} = {x}")
        pad = f"keras_same_padding({t}.size(2), {k}, {s}, 1)"
        if o.get("mode") == "max":
            x = f"F.pad({t}, {pad}, value=-float('inf'))"
        else:
            ones = w.unique(f"{node.name}_count")
            w.line(f"{ones} = F.avg_pool1d(F.pad(torch.ones_like({t}[:, :1]), {pad}), {k}, {s})")
            x = f"F.pad({t}, {pad})"
            w.assign(node.outputs[0], f"(F.avg_pool1d({x}, {k}, {s}) / {ones}).transpose(1, 2)")
            return
    elif o["padding"] != "valid":
        raise UnsupportedError(f"expected padding valid or same, found {quote(o.get('padding'))}", layer=node.label())
    fn = "F.max_pool1d" if o.get("mode") == "max" else "F.avg_pool1d"
    w.assign(node.outputs[0], f"{fn}({x}, {k}, {s}).transpose(1, 2)")


def permute_to_torch(w: _Writer, node: Node) -> None:
    dims = ", ".join(str(_int(d)) for d in node.options["dims"])
    w.assign(node.outputs[0], f"{w.var(node.inputs[0], node)}.permute(0, {dims})")


def layer_norm_to_torch(w: _Writer, node: Node) -> None:
    """nn.LayerNorm over the trailing axes (gamma/beta left out by Keras become ones/zeros)."""
    axes = [_int(a) for a in node.options["axes"]]
    shape = w.shapes.get(node.inputs[0])
    if shape is None or any(shape[a] is None for a in axes) or axes != list(range(-len(axes), 0)):
        raise UnsupportedError(f"expected LayerNormalization over known trailing axes, found axes {axes} of "
                               f"shape {shape}", layer=node.label())
    dims = tuple(int(shape[a]) for a in axes)
    params = {"weight": _f32(node.weights.get("gamma", np.ones(dims))),
              "bias": _f32(node.weights.get("beta", np.zeros(dims)))}
    eps = _number(node.options["epsilon"])
    attr = w.module(node, f"nn.LayerNorm({dims}, eps={eps})", params)
    w.assign(node.outputs[0], f"self.{attr}({w.var(node.inputs[0], node)})")


def unit_norm_to_torch(w: _Writer, node: Node) -> None:
    """Keras UnitNormalization: ``x * min(rsqrt(sum(x^2)), 1e12)`` (keras/src/ops/nn.py ``_normalize``)."""
    x = w.var(node.inputs[0], node)
    dims = tuple(_int(a) for a in node.options["axes"])
    w.assign(node.outputs[0], f"{x} * torch.clamp(torch.rsqrt(({x} * {x}).sum(dim={dims}, keepdim=True)), max=1e12)")


def crop1d_to_torch(w: _Writer, node: Node) -> None:
    left, right = (_int(v) for v in node.options["cropping"])
    x = w.var(node.inputs[0], node)
    w.assign(node.outputs[0], f"{x}[:, {left}:{x}.size(1) - {right}]")


def zero_pad1d_to_torch(w: _Writer, node: Node) -> None:
    left, right = (_int(v) for v in node.options["padding"])
    w.assign(node.outputs[0], f"F.pad({w.var(node.inputs[0], node)}, (0, 0, {left}, {right}))")


def upsample1d_to_torch(w: _Writer, node: Node) -> None:
    w.assign(node.outputs[0], f"{w.var(node.inputs[0], node)}.repeat_interleave({_int(node.options['size'])}, dim=1)")


def fold_time_to_torch(w: _Writer, node: Node) -> None:
    w.assign(node.outputs[0], f"{w.var(node.inputs[0], node)}.flatten(0, 1)")


def unfold_time_to_torch(w: _Writer, node: Node) -> None:
    y, x = (w.var(t, node) for t in node.inputs[:2])
    w.assign(node.outputs[0], f"{y}.unflatten(0, ({x}.size(0), {x}.size(1)))")


#: IR op -> the function that writes its code.
EMITTERS: dict[str, Callable[[_Writer, Node], None]] = {
    "lstm": recurrent_to_torch, "gru": recurrent_to_torch, "simple_rnn": recurrent_to_torch,
    "dense": dense_to_torch, "embedding": embedding_to_torch,
    "mask_not_equal": mask_not_equal_to_torch, "mask_and": mask_and_to_torch, "mask_or": mask_and_to_torch,
    "mask_concat": mask_concat_to_torch,
    "masking": masking_to_torch,
    "mask_lengths": mask_lengths_to_torch,
    "repeat_vector": repeat_vector_to_torch, "concatenate": concatenate_to_torch,
    **{op: merge_to_torch for op in ("add", "subtract", "multiply", "average", "maximum", "minimum")},
    "activation": activation_to_torch, "identity": identity_to_torch, "flatten": flatten_to_torch,
    "reshape": reshape_to_torch, "batch_norm": batch_norm_to_torch, "conv1d": conv1d_to_torch,
    "relu": relu_to_torch, "elu": elu_to_torch, "prelu": prelu_to_torch, "global_pool": global_pool_to_torch,
    "pool1d": pool1d_to_torch, "permute": permute_to_torch, "layer_norm": layer_norm_to_torch,
    "unit_norm": unit_norm_to_torch, "crop1d": crop1d_to_torch, "zero_pad1d": zero_pad1d_to_torch,
    "upsample1d": upsample1d_to_torch, "fold_time": fold_time_to_torch, "unfold_time": unfold_time_to_torch,
    **ATTENTION_EMITTERS,  # attention, multi_head_attention, dot, masked_softmax
    **CONV_LSTM_EMITTERS,  # conv_lstm
    **CONV2D_EMITTERS,  # conv2d, pool2d
    **NORM_EMITTERS,  # normalization, rescaling, rms_norm, group_norm
    **tf_ops_emitters("torch"),  # slice, reduce, scalar, binary
}


# -- the file ------------------------------------------------------------------------------

#: What the generated file may import: ``(import line, names it binds)``; only lines whose names
#: the code uses are written.
_IMPORTS = (
    ("import os", ("os",)),
    ("import warnings", ("warnings",)),
    ("import weakref", ("weakref",)),
    ("from typing import {}", ("List", "Optional", "Tuple")),
    ("", ()),
    ("import torch", ("torch",)),
    ("from torch import {}", ("Tensor", "nn")),
    ("from torch.nn import functional as F", ("F",)),
)


def _imports(code: str) -> str:
    """The import lines ``code`` needs: those of :data:`_IMPORTS` binding a name it uses."""
    used = {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
    lines = []
    for line, names in _IMPORTS:
        wanted = [n for n in names if n in used]
        if not names or wanted:
            lines.append(line.format(", ".join(wanted)))
    return "\n".join(lines).strip("\n").replace("\n\n\n", "\n\n")


def _build(model: Model) -> tuple[str, dict[str, np.ndarray]]:
    w = _Writer(model)
    args = []
    for spec in model.inputs:
        name = w.unique(spec.name)
        w.vars[spec.name] = name
        args.append(name)
        if spec.dtype != w.dtype and spec.dtype.startswith("float"):  # float64 inputs of a float32 model, or back
            w.line(f"{name} = {name}.to(torch.{w.dtype})")
        elif spec.dtype == "bool":  # a mask input: nonzero is true, as Keras casts a mask
            w.line(f"{name} = {name}.to(torch.bool)")
    for node in model.nodes:
        emit = EMITTERS.get(node.op)
        if emit is None:
            raise UnsupportedError(f"expected an op the PyTorch writer knows, found {quote(node.op)}", layer=node.label())
        try:
            emit(w, node)
        except (FormatError, UnsupportedError) as e:
            raise e.at(layer=node.label())
    outputs = [w.var(t) for t in model.outputs]
    return _source(model, w, args, outputs), w.tensors


def _source(model: Model, w: _Writer, args: list[str], outputs: list[str]) -> str:
    src = model.source or {}
    origin = ", ".join(p for p in (comment(os.path.basename(str(src["path"]))) if src.get("path") else "",
                                   f"Keras {comment(src['keras_version'])}" if src.get("keras_version") else "") if p)
    ins = "\n".join(f"    {a}: {comment(s.dtype)} {_shape(s.shape)}" + ("  token ids" if s.dtype == "int64" else "  mask (true: step used)" if s.dtype == "bool" else "")
                    for a, s in zip(args, model.inputs))
    outs = "\n".join(f"    {comment(t)}: {_shape(w.shapes[t]) if w.shapes.get(t) is not None else '?'}"
                     for t in model.outputs)
    name = comment(model.name)
    returns = "Tensor" if len(outputs) == 1 else f"Tuple[{', '.join(['Tensor'] * len(outputs))}]"
    signature = ", ".join(["self"] + [f"{a}: Tensor" for a in args])
    helpers = helper_source(w.helpers)
    init = "\n".join(f"        {line}" for line in w.init) or "        pass"
    body = "\n".join(f"        {line}" for line in _without_unused_assignments(w.body, outputs))
    doc = f'''"""PyTorch port of the Keras model {name}{f" ({origin})" if origin else ""}, generated by gateport {__version__}.

Standalone: needs torch, and safetensors to read the weights stored next to this file.

    model = load_model()  # weights from model.safetensors next to this file, in eval mode
    outputs = model(*inputs)  # inputs in Keras' order, batch first, {w.dtype} (int64 token ids)

Inputs:
{ins}
Outputs (in Keras' order):
{outs}
{_notes(model)}"""
'''
    code = f'''{helpers}

class Model(nn.Module):
    """{name}, layer by layer as in Keras."""

    def __init__(self):
        super().__init__()
{init}

    def forward({signature}) -> {returns}:
{body}
        return {", ".join(outputs)}


def load_model(path: Optional[str] = None) -> Model:
    """A Model with the weights of ``path`` (default: model.safetensors next to this file), in eval mode."""
    from safetensors.torch import load_file

    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.safetensors")
    model = Model(){".double()" if w.dtype == "float64" else ""}
    model.load_state_dict(load_file(path))
    return model.eval()
'''
    return doc + _imports(code) + "\n" + code


def generate_source(model: Model) -> str:
    """The text of ``model.py`` for ``model``."""
    return _build(model)[0]


def state_dict(model: Model) -> dict[str, np.ndarray]:
    """The generated Model's state_dict, as numpy arrays of their own (writable; :func:`write` writes the
    IR's arrays, views of the weights read, without this copy)."""
    return {k: np.array(v, order="C") for k, v in _build(model)[1].items()}


#: What ``write`` puts in the output folder, the weights first (committed in this order).
FILES = ("model.safetensors", "model.py")


def write(model: Model, out_dir: str | os.PathLike, force: bool = False) -> Path:
    """Write ``out_dir/model.py`` and ``out_dir/model.safetensors``, both or neither; returns ``out_dir``.

    Other files already in ``out_dir`` are kept (:func:`converters.atomic.atomic_dir`).
    """
    from ..atomic import atomic_dir
    from ..safetensors_io import save

    source, tensors = _build(model)
    metadata = {"format": "pt", "gateport.model": model.name, "gateport.version": __version__,
                "gateport.source": json.dumps(model.source or {}, default=str)}
    with atomic_dir(out_dir, FILES, force) as tmp:
        save(tmp / "model.safetensors", tensors, metadata)
        (tmp / "model.py").write_text(source)
    return Path(out_dir)
