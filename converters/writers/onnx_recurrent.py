"""IR ``lstm`` / ``gru`` / ``simple_rnn`` nodes as one fused ONNX LSTM / GRU / RNN node each.

Layout 0 (``[time, batch, features]``) with Transposes around the node: onnxruntime's CPU kernels
refuse ``layout=1`` (SEMANTICS.md §3.4). Weights are packed through the gate table in ONNX order
(LSTM i,o,f,c; GRU z,r,h): ``W [dirs, gates*units, in]``, ``R``, ``B = [Wb | Rb]``.

Keras' output order (SEMANTICS.md §3.6, §3.9; keras/src/layers/rnn/bidirectional.py):

* a direction processes the input reversed when it is the backward one xor ``go_backwards``;
  ONNX gives that direction's ``Y`` aligned to input time;
* Keras' sequence output is aligned to input time, flipped when ``go_backwards`` (a unidirectional
  layer returns processing order; Bidirectional flips its backward output back);
* the last output is the output of the last processed step; states come out ``[fw..., bw...]``.

Masks go through :class:`converters.writers.onnx_masks.MaskPlan` (exact for any mask).
"""
from __future__ import annotations

from ..errors import FormatError, UnsupportedError
from ..gates import gate_order
from ..ir import MERGE_MODES, Node
from ..reference_rnn import N_STATES
from ..sanitize import quote
from .onnx_activations import recurrent_activation_attrs
from .onnx_builder import GraphBuilder
from .onnx_masks import MaskPlan

def lstm_to_onnx(g: GraphBuilder, node: Node) -> None:
    """ONNX ``LSTM``: activations f (gates), g (cell input), h (cell output) = ract, act, act."""
    o = node.options
    act, ract = o.get("activation") or "tanh", o.get("recurrent_activation") or "sigmoid"
    _recurrent_to_onnx(g, node, "LSTM", [ract, act, act])


def gru_to_onnx(g: GraphBuilder, node: Node) -> None:
    """ONNX ``GRU``: activations f (gates), g (candidate); ``reset_after`` = ``linear_before_reset``."""
    o = node.options
    act, ract = o.get("activation") or "tanh", o.get("recurrent_activation") or "sigmoid"
    _recurrent_to_onnx(g, node, "GRU", [ract, act],
                       linear_before_reset=int(bool(o["reset_after"])))


def simple_rnn_to_onnx(g: GraphBuilder, node: Node) -> None:
    """ONNX ``RNN`` with the layer's activation."""
    _recurrent_to_onnx(g, node, "RNN", [node.options.get("activation") or "tanh"])


def _recurrent_to_onnx(g: GraphBuilder, node: Node, op_type: str, activations: list[str],
                       **extra) -> None:
    o = node.options
    bidirectional = bool(o.get("bidirectional"))
    go_backwards = bool(o.get("go_backwards"))
    dirs = node.directions
    # a direction processes the input reversed when it is the backward one xor go_backwards
    reverse = {d: (d == "backward") != go_backwards for d in dirs}
    # ONNX slot of each direction: 0 processes forward, 1 in reverse (bidirectional)
    slot = {d: int(reverse[d]) for d in dirs} if bidirectional else {"forward": 0}
    by_slot = sorted(dirs, key=slot.get)
    _check_signature(node, len(dirs))

    plan = MaskPlan.of(g, node.mask) if node.mask else None
    x = node.inputs[0]
    x_time_major = g.transpose(plan.compact(x) if plan else x, [1, 0, 2])
    n = N_STATES[node.op]
    given = node.inputs[1:]

    def given_state(d: str, k: int) -> str | None:  # IR order: forward h[, c], then backward
        return given[dirs.index(d) * n + k] if given else None

    initial = [_stack_directions(g, [given_state(d, k) for d in by_slot]) if given else ""
               for k in range(n)]
    attrs = recurrent_activation_attrs(activations * len(dirs))
    direction = "bidirectional" if bidirectional else ("reverse" if go_backwards else "forward")
    y_all, *state_all = g.op(
        op_type,
        [x_time_major, *_weights(g, node, by_slot), plan.lengths if plan else "", *initial],
        n_out=1 + n, hidden_size=int(o["units"]), direction=direction, **attrs, **extra)
    g.ranks.update({y_all: 4, **{state: 3 for state in state_all}})

    ys = [_keras_output(g, node, y_all, state_all[0], slot[d], reverse[d], plan) for d in dirs]
    merged = _merge(g, node, ys) if bidirectional else ys
    states = [_state(g, state_all[k], slot[d], plan, given_state(d, k))
              for d in dirs for k in range(n)] if o.get("return_state") else []
    results = merged + states
    for result, name in zip(results, node.outputs):
        g.finish(result, name)


def _check_signature(node: Node, n_dirs: int) -> None:
    """The node's inputs and outputs are those the IR promises for its options."""
    o = node.options
    n = N_STATES[node.op]
    if o.get("bidirectional") and o["merge_mode"] not in MERGE_MODES:
        raise UnsupportedError(f"expected merge_mode in {list(MERGE_MODES)}, found {quote(o['merge_mode'])}")
    n_given = len(node.inputs) - 1
    if n_given not in (0, n * n_dirs):
        raise FormatError(f"expected 0 or {n * n_dirs} initial states, found {n_given}")
    n_y = 2 if o.get("bidirectional") and o["merge_mode"] is None else 1
    n_out = n_y + (n * n_dirs if o.get("return_state") else 0)
    if len(node.outputs) != n_out:
        raise FormatError(f"expected {n_out} outputs, found {len(node.outputs)}")


def _weights(g: GraphBuilder, node: Node, by_slot: list[str]) -> list[str]:
    """``W``, ``R``, ``B`` initializers, directions in ONNX slot order, gates in ONNX order: written
    from the IR's per-gate arrays block by block, never concatenated in memory."""
    gates = gate_order("onnx", node.op)

    def blocks(*parts):
        return [node.weights[f"{d}.{gate}.{part}"] for d in by_slot for part in parts for gate in gates]

    dirs, rows = len(by_slot), len(gates) * int(node.options["units"])
    w, r = blocks("input_weights"), blocks("recurrent_weights")
    return [g.initializer_blocks(w, (dirs, rows, w[0].shape[1]), "W"),
            g.initializer_blocks(r, (dirs, rows, r[0].shape[1]), "R"),
            g.initializer_blocks(blocks("input_bias", "recurrent_bias"), (dirs, 2 * rows), "B")]


def _stack_directions(g: GraphBuilder, states: list[str]) -> str:
    """Batch-first ``(batch, units)`` states -> ONNX ``[dirs, batch, units]``."""
    parts = [g.unsqueeze(s, [0]) for s in states]
    return parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=0, rank=3)


def _keras_output(g: GraphBuilder, node: Node, y_all: str, h_all: str, slot: int, reverse: bool,
                  plan: MaskPlan | None) -> str:
    """One direction's output as Keras returns it (before a Bidirectional merge)."""
    o = node.options
    if not o.get("return_sequences") and plan is None:
        return g.gather(h_all, slot, axis=0)  # the state after the last step is its output
    y = g.transpose(g.gather(y_all, slot, axis=1), [1, 0, 2])  # (batch, steps, units), input time
    if plan is not None:
        y = plan.expand(y, reverse, bool(o.get("zero_output_for_mask")))
    if not o.get("return_sequences"):  # the output of the last processed step
        return g.gather(y, 0 if reverse else -1, axis=1)
    return g.flip(y, axis=1) if o.get("go_backwards") else y


def _merge(g: GraphBuilder, node: Node, ys: list[str]) -> list[str]:
    """Bidirectional's merge of the forward and backward outputs."""
    mode = node.options["merge_mode"]
    if mode is None:
        return ys
    if mode == "concat":
        return [g.op("Concat", ys, axis=-1)]
    if mode == "sum":
        return [g.op("Add", ys)]
    if mode == "mul":
        return [g.op("Mul", ys)]
    return [g.op("Div", [g.op("Add", ys), g.const(2.0, "float32")])]  # ave: (y + y_rev) / 2


def _state(g: GraphBuilder, state_all: str, slot: int, plan: MaskPlan | None,
           initial: str | None) -> str:
    """One final state ``(batch, units)``.

    onnxruntime returns zeros for a sequence of length 0, where Keras keeps the initial state.
    """
    state = g.gather(state_all, slot, axis=0)
    if plan is None or initial is None:
        return state
    empty = g.unsqueeze(g.op("Equal", [plan.lengths64, g.const(0)], dtype="bool"), [1])
    return g.op("Where", [empty, initial, state], rank=2)
