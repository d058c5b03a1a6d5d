"""``--to numpy``: one standalone, readable ``model.py`` that computes the model with numpy alone.

The file holds, per recurrent layer, a cell function written out as Keras' equations, the gates
sliced by name in Keras' order (``i, f, c, o`` / ``z, r, h``) with the slice in a comment; the
weights are stored next to it in ``model.npz`` in Keras' own layout (``kernel (in, gates*units)``,
``recurrent_kernel``, ``bias``), one ``LAYER.NAME`` entry per array. ``load_model()`` returns a
callable taking the inputs in Keras' order and returning the outputs in Keras' order, in float64.

Every op of the numpy reference (:mod:`converters.reference`) is written; the generated code
reuses its equations but imports nothing of gateport. Text from the input reaches the file only
through :mod:`converters.sanitize`. :func:`run_isolated` runs a written folder in a child process.
"""
from __future__ import annotations

import keyword
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..version import __version__
from ..errors import FormatError, UnsupportedError
from ..gates import LETTER, gate_order, gate_slice
from ..ir import Model, Node
from ..ops import MASK_LOGIC, STATES
from ..sanitize import comment, identifier, literal, quote
from .numpy_attention import EMITTERS as ATTENTION_EMITTERS, FUNCTION_NAMES as ATTENTION_FUNCTIONS
from .numpy_conv_lstm import EMITTERS as CONV_LSTM_EMITTERS, FUNCTION_NAMES as CONV_LSTM_FUNCTIONS
from .numpy_conv2d import EMITTERS as CONV2D_EMITTERS, FUNCTION_NAMES as CONV2D_FUNCTIONS
from .numpy_norms import EMITTERS as NORM_EMITTERS
from .numpy_templates import ACTIVATIONS, HELPERS, helper_source
from .tf_ops_code import emitters as tf_ops_emitters
from .codegen import (check_outputs as _check_outputs, describe as _describe, initial_states as _initial_states,
                      int_option as _int, merge_expression, notes_doc as _notes, number as _number,
                      shape_doc as _shape, shapes as _shapes,
                      without_unused_assignments as _without_unused_assignments)

#: Names the generated code binds itself, and builtins it calls.
_RESERVED = set(keyword.kwlist) | set(HELPERS) | set(ATTENTION_FUNCTIONS) | set(CONV_LSTM_FUNCTIONS) | set(CONV2D_FUNCTIONS) | {
    "np", "os", "math", "soft_shrink", "self", "w", "weights", "Model", "load_model", "path", "model", "_",
    "range", "zip",
    "sum", "max", "len", "list", "tuple", "float", "int", "open",
}
#: Merge of a Bidirectional layer's two directions.
_MERGES = {
    "concat": "np.concatenate([{a}, {b}], axis=-1)",
    "sum": "{a} + {b}",
    "mul": "{a} * {b}",
    "ave": "({a} + {b}) / 2.0",
}
#: What each gate is called in the cell's comments, and the variable holding its activation.
_GATE_TEXT = {"input": ("input gate", "i"), "forget": ("forget gate", "f"), "cell": ("cell candidate", "c_tilde"),
              "output": ("output gate", "o"), "update": ("update gate", "z"), "reset": ("reset gate", "r"),
              "candidate": ("candidate", "h_tilde")}
_PADDINGS = ("valid", "same", "causal")
_POOL_MODES = ("max", "average")


class _Writer:
    """Collects the cell functions, the call's lines, the weights and helpers of one model."""

    def __init__(self, model: Model):
        self.model = model
        self.shapes = _shapes(model)
        self.vars: dict[str, str] = {}  # IR tensor -> python variable (or expression)
        self.read = model.read_tensors()  # tensors something reads (an output nobody reads gets no line)
        self.taken: set[str] = set(_RESERVED)  # every name the file binds: locals and functions
        self.keys: set[str] = set()  # layer keys of model.npz
        self.body: list[str] = []
        self.cells: list[str] = []
        self.tensors: dict[str, np.ndarray] = {}
        self.helpers: set[str] = set()

    def unique(self, base: str) -> str:
        name = identifier(base, self.taken)
        self.taken.add(name)
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

    def weights(self, base: str, arrays: dict[str, np.ndarray]) -> str:
        """Store ``arrays`` as ``KEY.NAME`` in model.npz; returns ``w["KEY"]`` for the code."""
        key = identifier(base, self.keys)
        self.keys.add(key)
        self.tensors.update({f"{key}.{name}": np.ascontiguousarray(a) for name, a in arrays.items()})
        return f"w[{literal(key)}]"

    def activation(self, name: str | None, expr: str) -> str:
        name = name or "linear"
        if name not in ACTIVATIONS:
            raise UnsupportedError(f"expected an IR activation ({', '.join(ACTIVATIONS)}), found {quote(name)}")
        fmt, helper = ACTIVATIONS[name]
        if helper:
            self.helpers.add(helper)
        return fmt.format(expr)


def _float(a) -> np.ndarray:
    """float32 weights stay float32 (as Keras holds them); anything else becomes float64."""
    a = np.asarray(a)
    return a if a.dtype == np.float32 else a.astype(np.float64)


def _summed(a, b) -> np.ndarray:
    """``a + b`` in float64, or ``a`` as it is when ``b`` is all zeros (Keras has one bias there)."""
    return _float(a) if not np.any(b) else np.asarray(a, np.float64) + np.asarray(b, np.float64)


# -- recurrent layers ----------------------------------------------------------------------

def keras_weights(node: Node, direction: str) -> dict[str, np.ndarray]:
    """One direction's weights in Keras' layout: ``kernel``, ``recurrent_kernel``, ``bias``.

    GRU ``reset_after=True`` keeps Keras' ``bias (2, 3u)`` (input row, recurrent row); elsewhere
    Keras has one bias, so a recurrent bias (from a PyTorch or ONNX source) is added to it.
    """
    def part(name: str) -> np.ndarray:
        return node.stacked(direction, name, "keras")

    arrays = {"kernel": _float(part("input_weights").T), "recurrent_kernel": _float(part("recurrent_weights").T)}
    b_in, b_rec = part("input_bias"), part("recurrent_bias")
    if node.op == "gru" and node.options["reset_after"]:
        arrays["bias"] = _float(np.stack([b_in, b_rec]))
    else:
        arrays["bias"] = _summed(b_in, b_rec)
    return arrays


def _gate_lines(w: _Writer, node: Node, pre: Callable[[str, str], str]) -> list[str]:
    """One line per gate, in Keras' order: ``i = sigmoid(z[:, 0:8])  # i: input gate, columns 0:8 ...``;
    ``pre(gate, cols)`` is the gate's pre-activation."""
    o, units = node.options, _int(node.options["units"])
    lines = []
    for gate in gate_order("keras", node.op):
        text, var = _GATE_TEXT[gate]
        s = gate_slice("keras", node.op, gate, units)
        main = gate in ("cell", "candidate")
        act = o["activation"] if main else o["recurrent_activation"]
        cols = f"{s.start}:{s.stop}"
        expr = w.activation(act, pre(gate, cols))
        lines.append(f"{var} = {expr}  # {LETTER['keras'][gate]} ({text}): columns {cols}")
    return lines


def _lstm_cell(w: _Writer, node: Node) -> tuple[list[str], list[str]]:
    body = ["# gates in Keras' order i, f, c, o: columns of kernel, recurrent_kernel and bias",
            "z = x_t @ kernel + h @ recurrent_kernel + bias"]
    body += _gate_lines(w, node, lambda gate, cols: f"z[:, {cols}]")
    act = node.options["activation"]
    body += ["c = f * c + i * c_tilde", f"h = o * {w.activation(act, 'c')}", "return h, [h, c]"]
    return ["h", "c"], body


def _gru_reset_after(gate: str, cols: str) -> str:
    if gate == "candidate":  # the reset gate scales the recurrent product (with its bias)
        return f"x_part[:, {cols}] + r * h_part[:, {cols}]"
    return f"x_part[:, {cols}] + h_part[:, {cols}]"


def _gru_reset_before(gate: str, cols: str) -> str:
    if gate == "candidate":  # the reset gate scales the state before the product
        return f"x_part[:, {cols}] + (r * h) @ recurrent_kernel[:, {cols}]"
    return f"x_part[:, {cols}] + h @ recurrent_kernel[:, {cols}]"


def _gru_cell(w: _Writer, node: Node) -> tuple[list[str], list[str]]:
    if node.options["reset_after"]:
        body = ["# gates in Keras' order z, r, h: columns of kernel, recurrent_kernel and bias",
                "x_part = x_t @ kernel + bias[0]  # bias[0]: the input bias",
                "h_part = h @ recurrent_kernel + bias[1]  # bias[1]: the recurrent bias"]
        body += _gate_lines(w, node, _gru_reset_after)
    else:
        body = ["# gates in Keras' order z, r, h: columns of kernel, recurrent_kernel and bias",
                "x_part = x_t @ kernel + bias"]
        body += _gate_lines(w, node, _gru_reset_before)
    body += ["h = z * h + (1.0 - z) * h_tilde", "return h, [h]"]
    return ["h"], body


def _simple_rnn_cell(w: _Writer, node: Node) -> tuple[list[str], list[str]]:
    act = node.options["activation"]
    return ["h"], [f"h = {w.activation(act, 'x_t @ kernel + h @ recurrent_kernel + bias')}", "return h, [h]"]


_CELLS = {"lstm": _lstm_cell, "gru": _gru_cell, "simple_rnn": _simple_rnn_cell}


def _cell_function(w: _Writer, node: Node) -> str:
    """Write the layer's cell function; returns its name."""
    name = w.unique(f"{node.name}_cell")
    states, body = _CELLS[node.op](w, node)
    args = ", ".join(["x_t", *states, "kernel", "recurrent_kernel", "bias"])
    doc = f"One time step of {_describe(node)[2:]}."
    w.cells.append(f"\n\ndef {name}({args}):\n    \"\"\"{doc}\"\"\"\n" + "".join(f"    {ln}\n" for ln in body))
    return name


def recurrent_to_numpy(w: _Writer, node: Node) -> None:
    """LSTM / GRU / SimpleRNN, plain or Bidirectional: the cell run by Keras' loop per direction."""
    o = node.options
    n_states, units, bi = STATES[node.op], _int(o["units"]), bool(o.get("bidirectional"))
    init = _initial_states(w, node, n_states)
    w.line(_describe(node))
    cell = _cell_function(w, node)
    x = w.var(node.inputs[0], node)
    mask = w.var(node.mask, node) if node.mask else None
    ys, states = [], []
    for k, direction in enumerate(node.directions):
        suffix = f"_{direction}" if bi else ""
        args = [cell, w.weights(node.name + suffix, keras_weights(node, direction)), x,
                f"[{', '.join(init[k])}]" if init else _zeros(x, units, n_states)]
        if bool(o.get("go_backwards")) != (direction == "backward"):
            args.append("go_backwards=True")
        if mask:
            args.append(f"mask={mask}")
            if o.get("zero_output_for_mask"):
                args.append("zero_output_for_mask=True")
        w.helpers.add("keras_rnn")
        seq, st = w.unique(f"{node.name}{suffix}_seq"), w.unique(f"{node.name}{suffix}_states")
        _call(w, f"{seq}, {st} = keras_rnn(", args)
        if not o.get("return_sequences"):
            ys.append(f"{seq}[:, -1]")
        else:  # Bidirectional flips the backward sequence back to input time
            ys.append(f"{seq}[:, ::-1]" if direction == "backward" else seq)
        states += [f"{st}[{j}]" for j in range(n_states)]
    if bi:
        ys = _merge(node, ys[0], ys[1])
    exprs = ys + (states if o.get("return_state") else [])
    _check_outputs(node, exprs)
    for tensor, expr in zip(node.outputs, exprs):
        if tensor in w.read or expr.isidentifier():  # an output nothing reads needs no line (e.g. seq[:, -1])
            w.assign(tensor, expr)


def _call(w: _Writer, head: str, args: list[str], width: int = 90) -> None:
    """``head`` + the arguments + ``)`` on one line, or wrapped under ``head`` where it is long."""
    line = head + ", ".join(args) + ")"
    if len(line) <= width:
        w.line(line)
        return
    w.line(head)
    rows = [""]
    for arg in args:
        if rows[-1] and len(rows[-1]) + len(arg) + 2 > width - 4:
            rows.append("")
        rows[-1] += (", " if rows[-1] else "") + arg
    for k, row in enumerate(rows):
        w.line("    " + row + ("," if k < len(rows) - 1 else ")"))


def _zeros(x: str, units: int, n_states: int) -> str:
    """The initial states Keras uses: zeros, ``(batch, units)`` each."""
    zeros = f"np.zeros(({x}.shape[0], {units}))"
    return f"[{zeros}]" if n_states == 1 else f"[{zeros}] * {n_states}"


def _merge(node: Node, fw: str, bw: str) -> list[str]:
    mode = node.options["merge_mode"]
    if mode is None:
        return [fw, bw]
    if mode not in _MERGES:
        raise UnsupportedError(f"expected merge_mode in {list(_MERGES)} or None, found {quote(mode)}",
                               layer=node.label())
    return [_MERGES[mode].format(a=fw, b=bw)]


# -- other layers --------------------------------------------------------------------------

def _bias(node: Node, n: int) -> np.ndarray:
    return _float(node.weights.get("bias", np.zeros(n, np.float32)))


def dense_to_numpy(w: _Writer, node: Node) -> None:
    weight = node.weights["weight"]
    p = w.weights(node.name, {"kernel": _float(np.asarray(weight).T), "bias": _bias(node, weight.shape[0])})
    expr = f"{w.var(node.inputs[0], node)} @ {p}['kernel'] + {p}['bias']"
    w.line(_describe(node))
    w.assign(node.outputs[0], w.activation(node.options.get("activation"), expr))


def embedding_to_numpy(w: _Writer, node: Node) -> None:
    p = w.weights(node.name, {"embeddings": _float(node.weights["embeddings"])})
    w.assign(node.outputs[0], f"{p}['embeddings'][{w.var(node.inputs[0], node)}]")


def mask_not_equal_to_numpy(w: _Writer, node: Node) -> None:
    o = node.options
    expr = f"{w.var(node.inputs[0], node)} != {_number(o.get('value', o.get('mask_value', 0)))}"
    w.assign(node.outputs[0], f"({expr}).any(axis=-1)" if o.get("reduce") else expr)


def mask_and_to_numpy(w: _Writer, node: Node) -> None:
    """mask_and / mask_or: the input masks joined by ``&`` / ``|``."""
    w.assign(node.outputs[0], f" {MASK_LOGIC[node.op]} ".join(f"{w.var(t, node)}.astype(bool)" for t in node.inputs))


def mask_concat_to_numpy(w: _Writer, node: Node) -> None:
    """mask_concat: the input masks joined on the time axis."""
    w.assign(node.outputs[0], f"np.concatenate([{', '.join(f'{w.var(t, node)}.astype(bool)' for t in node.inputs)}], "
                              "axis=1)")


def mask_lengths_to_numpy(w: _Writer, node: Node) -> None:
    lengths, x = (w.var(t, node) for t in node.inputs)
    w.assign(node.outputs[0], f"np.arange({x}.shape[1]) < np.asarray({lengths}, np.int64)[:, None]")


def masking_to_numpy(w: _Writer, node: Node) -> None:
    """Keras' Masking: ``where(mask, x, 0)`` (not ``x * mask``: inf * 0 is NaN)."""
    x = w.var(node.inputs[0], node)
    if len(node.inputs) > 1:
        mask = w.var(node.inputs[1], node)
    elif node.mask:
        mask = w.var(node.mask, node)
    else:
        mask = f"({x} != {_number(node.options.get('mask_value', 0))}).any(axis=-1)"
    w.assign(node.outputs[0], f"np.where({mask}[..., None], {x}, 0.0)")


def repeat_vector_to_numpy(w: _Writer, node: Node) -> None:
    w.assign(node.outputs[0], f"np.repeat({w.var(node.inputs[0], node)}[:, None], {_int(node.options['n'])}, axis=1)")


def concatenate_to_numpy(w: _Writer, node: Node) -> None:
    parts = ", ".join(w.var(t, node) for t in node.inputs)
    w.assign(node.outputs[0], f"np.concatenate([{parts}], axis={_int(node.options.get('axis', -1))})")


def merge_to_numpy(w: _Writer, node: Node) -> None:
    """add, subtract, multiply, average, maximum, minimum: left to right, as Keras' Merge layers."""
    w.assign(node.outputs[0], merge_expression(node, [w.var(t, node) for t in node.inputs], "np"))


def activation_to_numpy(w: _Writer, node: Node) -> None:
    w.assign(node.outputs[0], w.activation(node.options.get("activation"), w.var(node.inputs[0], node)))


def identity_to_numpy(w: _Writer, node: Node) -> None:
    w.vars[node.outputs[0]] = w.var(node.inputs[0], node)  # Dropout and friends at inference


def flatten_to_numpy(w: _Writer, node: Node) -> None:
    x = w.var(node.inputs[0], node)
    w.assign(node.outputs[0], f"{x}.reshape({x}.shape[0], -1)")


def reshape_to_numpy(w: _Writer, node: Node) -> None:
    x = w.var(node.inputs[0], node)
    dims = ", ".join(str(_int(d)) for d in node.options["shape"])
    w.assign(node.outputs[0], f"{x}.reshape({x}.shape[0], {dims})")


def batch_norm_to_numpy(w: _Writer, node: Node) -> None:
    wts = node.weights
    mean = _float(wts["moving_mean"])
    n = mean.shape[0]
    p = w.weights(node.name, {"gamma": _float(wts.get("gamma", np.ones(n))),
                              "beta": _float(wts.get("beta", np.zeros(n))),
                              "moving_mean": mean, "moving_variance": _float(wts["moving_variance"])})
    w.helpers.add("batch_norm")
    axis, eps = _int(node.options["axis"]), _number(node.options["epsilon"])
    w.assign(node.outputs[0], f"batch_norm({w.var(node.inputs[0], node)}, {axis}, {eps}, **{p})")


def conv1d_to_numpy(w: _Writer, node: Node) -> None:
    o = node.options
    weight = np.asarray(node.weights["weight"])  # (filters, in, k)
    padding = o["padding"]
    if padding not in _PADDINGS:
        raise UnsupportedError(f"expected padding valid, same or causal, found {quote(padding)}", layer=node.label())
    p = w.weights(node.name, {"kernel": _float(weight.transpose(2, 1, 0)), "bias": _bias(node, weight.shape[0])})
    w.helpers.add("conv1d")
    groups = _int(o["groups"])
    args = [w.var(node.inputs[0], node), f"{p}['kernel']", f"{p}['bias']", str(_int(o["strides"])),
            str(_int(o["dilation_rate"])), literal(padding)] + ([f"groups={groups}"] if groups != 1 else [])
    w.assign(node.outputs[0], w.activation(o.get("activation"), f"conv1d({', '.join(args)})"))


def relu_to_numpy(w: _Writer, node: Node) -> None:
    """Keras ReLU/LeakyReLU: ``clip(x * (x > t), 0, max) - negative_slope * relu(t - x)``."""
    o, x = node.options, w.var(node.inputs[0], node)
    t, slope, top = _number(o["threshold"]), _number(o["negative_slope"]), o.get("max_value")
    expr = f"np.maximum({x}, 0.0)" if float(t) == 0 else f"{x} * ({x} > {t})"
    if top is not None:
        expr = f"np.clip({expr}, 0.0, {_number(top)})"
    if float(slope):
        expr = f"{expr} - {slope} * np.maximum({t} - {x}, 0.0)"
    w.assign(node.outputs[0], expr)


def elu_to_numpy(w: _Writer, node: Node) -> None:
    x, alpha = w.var(node.inputs[0], node), _number(node.options["alpha"])
    w.assign(node.outputs[0], f"np.where({x} > 0, {x}, {alpha} * np.expm1(np.minimum({x}, 0)))")


def prelu_to_numpy(w: _Writer, node: Node) -> None:
    x, p = w.var(node.inputs[0], node), w.weights(node.name, {"alpha": _float(node.weights["alpha"])})
    w.assign(node.outputs[0], f"np.maximum({x}, 0) - {p}['alpha'] * np.maximum(-{x}, 0)")


def _mode(node: Node) -> str:
    mode = node.options.get("mode")
    if mode not in _POOL_MODES:
        raise UnsupportedError(f"expected mode max or average, found {quote(mode)}", layer=node.label())
    return mode


def global_pool_to_numpy(w: _Writer, node: Node) -> None:
    """Global max/mean over the time axis; a masked mean leaves masked steps out of sum and count."""
    x, axis, keep = w.var(node.inputs[0], node), _int(node.options["axis"]), bool(node.options.get("keepdims"))
    if _mode(node) == "max":
        expr = f"{x}.max(axis={axis}, keepdims={keep})"
    elif node.mask:
        m = w.unique(f"{node.name}_mask")
        w.line(f"{m} = np.expand_dims({w.var(node.mask, node)}, {2 if axis == 1 else 1})")
        expr = f"np.where({m}, {x}, 0.0).sum(axis={axis}, keepdims={keep}) / {m}.sum(axis={axis}, keepdims={keep})"
    else:
        expr = f"{x}.mean(axis={axis}, keepdims={keep})"
    w.assign(node.outputs[0], expr)


def pool1d_to_numpy(w: _Writer, node: Node) -> None:
    o = node.options
    padding = o["padding"]
    if padding not in _PADDINGS[:2]:
        raise UnsupportedError(f"expected padding valid or same, found {quote(padding)}", layer=node.label())
    k = _int(o["pool_size"])
    w.helpers.add("pool1d")
    args = [w.var(node.inputs[0], node), literal(_mode(node)), str(k), str(_int(o.get("strides") or k)),
            literal(padding)]
    w.assign(node.outputs[0], f"pool1d({', '.join(args)})")


def _axes(node: Node) -> str:
    return "(" + "".join(f"{_int(a)}, " for a in node.options["axes"]) + ")"


def layer_norm_to_numpy(w: _Writer, node: Node) -> None:
    params = {k: _float(node.weights[k]) for k in ("gamma", "beta") if k in node.weights}
    w.helpers.add("layer_norm")
    args = [w.var(node.inputs[0], node), _axes(node), _number(node.options["epsilon"])]
    if params:
        args.append(f"**{w.weights(node.name, params)}")
    w.assign(node.outputs[0], f"layer_norm({', '.join(args)})")


def unit_norm_to_numpy(w: _Writer, node: Node) -> None:
    w.helpers.add("unit_norm")
    w.assign(node.outputs[0], f"unit_norm({w.var(node.inputs[0], node)}, {_axes(node)})")


def permute_to_numpy(w: _Writer, node: Node) -> None:
    dims = ", ".join(str(_int(d)) for d in node.options["dims"])
    w.assign(node.outputs[0], f"{w.var(node.inputs[0], node)}.transpose(0, {dims})")


def crop1d_to_numpy(w: _Writer, node: Node) -> None:
    x = w.var(node.inputs[0], node)
    left, right = (_int(v) for v in node.options["cropping"])
    w.assign(node.outputs[0], f"{x}[:, {left}:{x}.shape[1] - {right}]")


def zero_pad1d_to_numpy(w: _Writer, node: Node) -> None:
    left, right = (_int(v) for v in node.options["padding"])
    w.assign(node.outputs[0], f"np.pad({w.var(node.inputs[0], node)}, ((0, 0), ({left}, {right}), (0, 0)))")


def upsample1d_to_numpy(w: _Writer, node: Node) -> None:
    w.assign(node.outputs[0], f"np.repeat({w.var(node.inputs[0], node)}, {_int(node.options['size'])}, axis=1)")


def fold_time_to_numpy(w: _Writer, node: Node) -> None:
    x = w.var(node.inputs[0], node)
    w.assign(node.outputs[0], f"{x}.reshape({x}.shape[0] * {x}.shape[1], *{x}.shape[2:])")


def unfold_time_to_numpy(w: _Writer, node: Node) -> None:
    y, x = (w.var(t, node) for t in node.inputs[:2])
    w.assign(node.outputs[0], f"{y}.reshape({x}.shape[0], {x}.shape[1], *{y}.shape[1:])")


#: IR op -> the function that writes its code.
EMITTERS: dict[str, Callable[[_Writer, Node], None]] = {
    "lstm": recurrent_to_numpy, "gru": recurrent_to_numpy, "simple_rnn": recurrent_to_numpy,
    "dense": dense_to_numpy, "embedding": embedding_to_numpy,
    "mask_not_equal": mask_not_equal_to_numpy, "mask_and": mask_and_to_numpy, "mask_or": mask_and_to_numpy,
    "mask_concat": mask_concat_to_numpy,
    "masking": masking_to_numpy,
    "mask_lengths": mask_lengths_to_numpy,
    "repeat_vector": repeat_vector_to_numpy, "concatenate": concatenate_to_numpy,
    **{op: merge_to_numpy for op in ("add", "subtract", "multiply", "average", "maximum", "minimum")},
    "activation": activation_to_numpy, "identity": identity_to_numpy, "flatten": flatten_to_numpy,
    "reshape": reshape_to_numpy, "batch_norm": batch_norm_to_numpy, "conv1d": conv1d_to_numpy,
    "relu": relu_to_numpy, "elu": elu_to_numpy, "prelu": prelu_to_numpy, "global_pool": global_pool_to_numpy,
    "pool1d": pool1d_to_numpy, "layer_norm": layer_norm_to_numpy, "unit_norm": unit_norm_to_numpy,
    "permute": permute_to_numpy, "crop1d": crop1d_to_numpy, "zero_pad1d": zero_pad1d_to_numpy,
    "upsample1d": upsample1d_to_numpy, "fold_time": fold_time_to_numpy, "unfold_time": unfold_time_to_numpy,
    **ATTENTION_EMITTERS,  # attention, multi_head_attention, dot, masked_softmax
    **tf_ops_emitters("np"),  # slice, reduce, scalar, binary
    **CONV_LSTM_EMITTERS,  # conv_lstm
    **CONV2D_EMITTERS,  # conv2d, pool2d
    **NORM_EMITTERS,  # normalization, rescaling, rms_norm, group_norm
}


# -- the file ------------------------------------------------------------------------------

def _build(model: Model) -> tuple[str, dict[str, np.ndarray]]:
    w = _Writer(model)
    args = []
    for spec in model.inputs:
        name = w.unique(spec.name)
        w.vars[spec.name] = name
        args.append(name)
        dtype = "bool" if spec.dtype == "bool" else "np.int64" if "int" in str(spec.dtype) else "np.float64"
        w.line(f"{name} = np.asarray({name}, dtype={dtype})")
    for node in model.nodes:
        emit = EMITTERS.get(node.op)
        if emit is None:
            raise UnsupportedError(f"expected an op the numpy writer knows ({', '.join(EMITTERS)}), "
                                   f"found {quote(node.op)}", layer=node.label())
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
    ins = "\n".join(f"    {a}: {comment(s.dtype)} {_shape(s.shape)}" + ("  token ids" if "int" in str(s.dtype) else "")
                    for a, s in zip(args, model.inputs))
    outs = "\n".join(f"    {comment(t)}: {_shape(w.shapes[t]) if w.shapes.get(t) is not None else '?'}"
                     for t in model.outputs)
    name = comment(model.name)
    body = "\n".join(f"        {line}" for line in _without_unused_assignments(w.body, outputs))
    doc = f'''"""numpy port of the Keras model {name}{f" ({origin})" if origin else ""}, generated by gateport {__version__}.

Standalone: needs numpy only; the weights are in model.npz next to this file, in Keras' layout
(kernel (in, gates * units), recurrent_kernel (units, gates * units), bias), keyed LAYER.NAME.

    model = load_model()
    outputs = model(*inputs)  # numpy arrays in Keras' order, batch first; computed in float64

Inputs:
{ins}
Outputs (in Keras' order):
{outs}
{_notes(model)}"""
'''
    imports = "import math\nimport os" if "gelu" in w.helpers else "import os"
    return doc + f'''{imports}

import numpy as np
{helper_source(w.helpers)}{"".join(w.cells)}

class Model:
    """{name}, layer by layer as in Keras."""

    def __init__(self, weights):
        self.weights = weights  # {{layer: {{name: array}}}}, as in model.npz

    def __call__(self, {", ".join(args)}):
        w = self.weights
{body}
        return {", ".join(outputs)}


def load_model(path=None):
    """A Model with the weights of ``path`` (default: model.npz next to this file)."""
    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.npz")
    weights = {{}}
    with np.load(path, allow_pickle=False) as f:
        for key in f.files:
            layer, name = key.rsplit(".", 1)
            weights.setdefault(layer, {{}})[name] = f[key].astype(np.float64)
    return Model(weights)
'''


def generate_source(model: Model) -> str:
    """The text of ``model.py`` for ``model``."""
    return _build(model)[0]


#: What ``write`` puts in the output folder, the weights first (committed in this order).
FILES = ("model.npz", "model.py")


def write(model: Model, out_dir: str | os.PathLike, force: bool = False) -> Path:
    """Write ``out_dir/model.py`` and ``out_dir/model.npz``, both or neither; returns ``out_dir``."""
    from ..atomic import atomic_dir

    source, tensors = _build(model)
    with atomic_dir(out_dir, FILES, force) as tmp:
        np.savez(tmp / "model.npz", **tensors)
        (tmp / "model.py").write_text(source)
    return Path(out_dir)


# -- running a written folder --------------------------------------------------------------

#: The child: imports model.py from the folder and nothing of gateport (-I: no environment). Every
#: call of the file's ``keras_rnn`` (one direction of one recurrent layer) is recorded.
_CHILD = r"""
import importlib.util, json, sys
import numpy as np
folder, work = sys.argv[1], sys.argv[2]
try:
    spec = importlib.util.spec_from_file_location("gateport_numpy_model", folder + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    records = []
    loop = getattr(module, "keras_rnn", None)
    if loop is not None:
        def keras_rnn(cell, weights, x, states, *args, **kwargs):
            y, final = loop(cell, weights, x, states, *args, **kwargs)
            records.append((x, y, list(final)))
            return y, final
        module.keras_rnn = keras_rnn
    with np.load(work + "/inputs.npz", allow_pickle=False) as f:
        xs = [f["x%d" % k] for k in range(len(f.files))]
    out = module.load_model()(*xs)
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    arrays = {"out%d" % k: np.asarray(o) for k, o in enumerate(out)}
    for j, (x, y, final) in enumerate(records):
        arrays.update({"r%dx" % j: x, "r%dy" % j: y, **{"r%ds%d" % (j, k): s for k, s in enumerate(final)}})
    np.savez(work + "/outputs.npz", **arrays)
    with open(work + "/meta.json", "w") as f:
        json.dump({"outputs": len(out), "records": [len(r[2]) for r in records]}, f)
except BaseException as e:
    with open(work + "/error.txt", "w") as f:
        f.write(type(e).__name__ + ": " + str(e))
    sys.exit(1)
"""


def run_isolated(folder: str | os.PathLike, inputs: Sequence[np.ndarray], *, timeout: float = 300.0,
                 max_bytes: int = 1 << 30, given: bool = False) -> tuple[list[np.ndarray], list[dict]]:
    """Run a written numpy folder in a child process (``python -I``) on ``inputs``: ``(outputs, records)``,
    a record ``{"x", "y", "states"}`` per call of its ``keras_rnn`` (one direction of one layer), in order.

    Nothing of ``model.py`` runs in this process. Raises :class:`converters.runtimes.ArtifactError`
    with the child's first error line, or after ``timeout`` seconds. The child may allocate
    :func:`converters.budget.child_limit` bytes (RLIMIT_DATA); past it, :class:`UnsafeError` naming the
    folder. ``given``: the folder is a user's artifact: a timeout is then an :class:`UnsafeError` too.
    """
    from ..budget import child_limit
    from ..runtimes import _over_memory, _run_child, child_arrays, folder_bytes, unpack_child

    folder = Path(folder).resolve()
    if not (folder / "model.py").is_file():
        raise FormatError("expected a folder with model.py and model.npz, found no model.py", file=str(folder))
    with tempfile.TemporaryDirectory(prefix="gateport-numpy-") as tmp:
        work = Path(tmp)
        np.savez(work / "inputs.npz", **{f"x{k}": np.ascontiguousarray(x) for k, x in enumerate(inputs)})
        memory, file = child_limit(folder_bytes(folder), max_bytes), str(folder)
        code = _run_child([sys.executable, "-I", "-c", _CHILD, str(folder), str(work)], work, timeout, "numpy",
                          memory=memory, file=file if given else None)
        _over_memory(work, code, "numpy", memory, file)
        meta, arrays = child_arrays(work, code, "numpy", max_bytes)
    return unpack_child("numpy", lambda: (
        [arrays[f"out{k}"] for k in range(int(meta["outputs"]))],
        [{"x": arrays[f"r{j}x"], "y": arrays[f"r{j}y"], "states": [arrays[f"r{j}s{k}"] for k in range(int(n))]}
         for j, n in enumerate(meta["records"])]))
