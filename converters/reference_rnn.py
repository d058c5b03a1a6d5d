"""Numpy forward pass of the recurrent ops (``lstm``, ``gru``, ``simple_rnn``), from the equations.

Written after Keras 3's generic loop, which every backend shares on CPU (the cuDNN paths are
skipped with masks on CPU): keras/src/backend/{tensorflow,torch}/rnn.py ``rnn()``, and
tf_keras/src/backend.py ``rnn()`` which behaves the same:

* ``go_backwards`` reverses the input *and* the mask; the sequence output stays in processing order
  (index 0 is the step of the last input).
* At a masked step the states keep their previous values; the output is the previous step's
  (already masked) output, which starts as **zeros** (not the initial state), or zeros when
  ``zero_output_for_mask``. The last output is the output of the last processed step.

Bidirectional (keras/src/layers/rnn/bidirectional.py): the backward direction is the same layer
with ``go_backwards`` flipped; with ``return_sequences`` its output is flipped back to input time,
then merged; states come out ``[fw..., bw...]``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .activations import NUMPY
from .errors import LayoutError, UnsupportedError
from .ir import Gate, Node
from .ops import STATES

#: How many states each kind carries (h, or h and c): the op table's.
N_STATES = STATES


def _pre(gate: Gate, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``x W^T + b + h R^T + rb``: a gate's pre-activation."""
    return x @ gate.input_weights.T + gate.input_bias + h @ gate.recurrent_weights.T + gate.recurrent_bias


def _lstm_cell(node: Node, gates: dict[str, Gate]) -> Callable:
    act, ract = _activations(node)

    def step(x, h, c):
        i = ract(_pre(gates["input"], x, h))
        f = ract(_pre(gates["forget"], x, h))
        c_tilde = act(_pre(gates["cell"], x, h))
        o = ract(_pre(gates["output"], x, h))
        c = f * c + i * c_tilde
        h = o * act(c)
        return h, (h, c)

    return step


def _gru_cell(node: Node, gates: dict[str, Gate]) -> Callable:
    act, ract = _activations(node)
    reset_after = node.options["reset_after"]
    cand = gates["candidate"]

    def step(x, h):
        z = ract(_pre(gates["update"], x, h))
        r = ract(_pre(gates["reset"], x, h))
        x_h = x @ cand.input_weights.T + cand.input_bias
        if reset_after:  # Keras reset_after=True = ONNX linear_before_reset=1 = torch nn.GRU
            hh = act(x_h + r * (h @ cand.recurrent_weights.T + cand.recurrent_bias))
        else:  # reset before the recurrent product (Keras 1, Keras 2 default)
            hh = act(x_h + (r * h) @ cand.recurrent_weights.T + cand.recurrent_bias)
        h = z * h + (1.0 - z) * hh
        return h, (h,)

    return step


def _simple_rnn_cell(node: Node, gates: dict[str, Gate]) -> Callable:
    act = _activation(node, "activation", "tanh")

    def step(x, h):
        h = act(_pre(gates["hidden"], x, h))
        return h, (h,)

    return step


CELLS = {"lstm": _lstm_cell, "gru": _gru_cell, "simple_rnn": _simple_rnn_cell}


def activation(node: Node, name: str | None) -> Callable:
    """The numpy function of IR activation ``name`` (``None`` = linear) for ``node``."""
    name = name or "linear"
    if name not in NUMPY:
        raise UnsupportedError(f"expected an IR activation ({', '.join(NUMPY)}), found {name!r}",
                               layer=node.label())
    return NUMPY[name]


def _activation(node: Node, key: str, default: str) -> Callable:
    return activation(node, node.options.get(key) or default)


def _activations(node: Node) -> tuple[Callable, Callable]:
    return _activation(node, "activation", "tanh"), _activation(node, "recurrent_activation", "sigmoid")


def _gates64(node: Node, direction: str) -> dict[str, Gate]:
    """One direction's gates in float64, C-contiguous (the IR may hold transposed views of the arrays read:
    the layout must not change the order BLAS sums in, so equal weights give equal outputs)."""
    return {name: Gate(*(np.asarray(a, dtype=np.float64, order="C") for a in (g.input_weights, g.recurrent_weights,
                                                                   g.input_bias, g.recurrent_bias)))
            for name, g in node.gates(direction).items()}


def scan(step: Callable, x: np.ndarray, states: tuple, mask: np.ndarray | None,
         go_backwards: bool, zero_output_for_mask: bool) -> tuple[np.ndarray, tuple]:
    """Keras' ``backend.rnn``: run ``step`` over time; returns (outputs in processing order, states)."""
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    prev_output = None
    outputs = []
    for t in steps:
        output, new_states = step(x[:, t], *states)
        if mask is not None:
            keep = mask[:, t, None]
            if prev_output is None or zero_output_for_mask:
                prev_output = np.zeros_like(output)
            output = np.where(keep, output, prev_output)
            new_states = tuple(np.where(keep, new, old) for new, old in zip(new_states, states))
        outputs.append(output)
        prev_output, states = output, new_states
    return np.stack(outputs, axis=1), states


def _direction(node: Node, direction: str, x, states, mask) -> tuple[np.ndarray, tuple]:
    """One direction as a Keras RNN layer: (its output, its final states)."""
    o = node.options
    go_backwards = bool(o.get("go_backwards")) != (direction == "backward")
    step = CELLS[node.op](node, _gates64(node, direction))
    outputs, states = scan(step, x, states, mask, go_backwards, bool(o.get("zero_output_for_mask")))
    return (outputs if o.get("return_sequences") else outputs[:, -1]), states


def _initial_states(node: Node, x: np.ndarray, given: list[np.ndarray]) -> list[tuple]:
    """Per direction, the initial states: the given ones (fw h[, c], bw h[, c]) or zeros."""
    n, dirs = N_STATES[node.op], node.directions
    if not given:
        zeros = np.zeros((x.shape[0], node.options["units"]))
        return [(zeros,) * n for _ in dirs]
    if len(given) != n * len(dirs):
        raise LayoutError(f"expected {n * len(dirs)} initial states, found {len(given)}", layer=node.label())
    return [tuple(given[k * n:(k + 1) * n]) for k in range(len(dirs))]


MERGES = {
    "concat": lambda a, b: np.concatenate([a, b], axis=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2.0,
}


def run_recurrent(node: Node, x: np.ndarray, initial_states: list[np.ndarray],
                  mask: np.ndarray | None) -> list[np.ndarray]:
    """A recurrent node's outputs in Keras' order: ``[y, *states]`` (``[y_fw, y_bw, *states]``)."""
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
    results = [_direction(node, d, x, s, mask)
               for d, s in zip(node.directions, _initial_states(node, x, initial_states))]
    states = [s for _, direction_states in results for s in direction_states]
    if not node.options.get("bidirectional"):
        y = results[0][0]
        return [y, *states] if node.options.get("return_state") else [y]
    y_fw, y_bw = results[0][0], results[1][0]
    if node.options.get("return_sequences"):
        y_bw = np.flip(y_bw, axis=1)
    merge_mode = node.options["merge_mode"]
    if merge_mode is not None and merge_mode not in MERGES:
        raise UnsupportedError(f"expected merge_mode in {list(MERGES)} or None, found {merge_mode!r}",
                               layer=node.label())
    ys = [y_fw, y_bw] if merge_mode is None else [MERGES[merge_mode](y_fw, y_bw)]
    return ys + states if node.options.get("return_state") else ys
