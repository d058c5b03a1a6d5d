"""Keras recurrent layers -> one ``lstm``/``gru``/``simple_rnn`` IR node each.

Handles LSTM, GRU, SimpleRNN, CuDNNLSTM, CuDNNGRU, the generic ``RNN(cell)`` wrapper and
``Bidirectional`` around any of them, with every stored layout: Keras 2/3 packed arrays,
Keras 1 per-gate arrays and cuDNN arrays (keras_legacy.py). Storage facts: SEMANTICS.md §3.1,
§3.2, §3.6; Bidirectional forces ``zero_output_for_mask = return_sequences`` on both halves in
tf_keras (tf_keras/src/layers/rnn/bidirectional.py ``force_zero_output_for_mask``) and Keras 3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .. import keras_classes
from ..gates import GATES, LETTER, gate_order
from ..sanitize import quote
from ..ir import Node, set_recurrent_weights
from ..ops import MERGE_MODES, STATES
from ..ops import conv_lstm_shapes
from .hdf5 import Weight
from .keras_context import LayerCall, Tensor, found_arrays
from .keras_legacy import Packed, from_cudnn, from_keras1, is_cudnn_bias, is_keras1_per_gate, keras1_parts

#: Keras recurrent layer classes and their IR op; the cells accepted inside the generic ``RNN`` layer
#: (converters/keras_classes.py).
LAYER_KINDS, CELL_KINDS = keras_classes.LAYER_KINDS, keras_classes.CELL_KINDS
#: Options of the RNN layer itself (the rest belong to the cell).
_LAYER_KEYS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
               "time_major", "zero_output_for_mask")
#: Options that must agree between the two halves of a Bidirectional.
_SHARED_KEYS = ("units", "activation", "recurrent_activation", "use_bias", "reset_after")
_STATES = STATES  # converters/ops.py (MERGE_MODES too)


@dataclass
class RecurrentConfig:
    """A recurrent layer's kind and its layer+cell config merged."""

    kind: str
    class_name: str
    config: dict


def recurrent_config(class_name: str, config: dict, call: LayerCall) -> RecurrentConfig:
    """The kind and config of a recurrent layer or ``RNN(cell)``; a malformed config is a FormatError."""
    with call.parsing("recurrent layer config"):
        return _recurrent_config(class_name, config, call)


def _recurrent_config(class_name: str, config: dict, call: LayerCall) -> RecurrentConfig:
    if class_name in LAYER_KINDS:
        cfg = dict(config)
        if class_name.startswith("CuDNN"):
            # cuDNN cells are fixed: tanh, sigmoid, biases on both sides, GRU reset after.
            cfg.update(activation="tanh", recurrent_activation="sigmoid", use_bias=True, reset_after=True)
        return RecurrentConfig(LAYER_KINDS[class_name], class_name, cfg)
    if class_name == "RNN":
        cell = config.get("cell")
        if not isinstance(cell, dict):
            raise call.unsupported("expected one cell in RNN, found a list of cells (stacked cells)")
        return _cell_config(cell, config, call)
    raise call.unsupported(f"expected a recurrent layer, found class {class_name!r}")


def _cell_config(cell: dict, config: dict, call: LayerCall) -> RecurrentConfig:
    """One ``LSTMCell``/``GRUCell``/``SimpleRNNCell`` config merged with its RNN layer's options."""
    cell_class = cell.get("class_name")
    if cell_class not in CELL_KINDS:
        raise call.unsupported(f"RNN cell class {quote(cell_class)} is not supported "
                               f"(supported: {', '.join(CELL_KINDS)})")
    cfg = dict(cell.get("config") or {})
    cfg.update({k: config[k] for k in _LAYER_KEYS if k in config})
    return RecurrentConfig(CELL_KINDS[cell_class], f"RNN({cell_class})", cfg)


def stacked_cells(config: dict) -> list | None:
    """The cell configs of ``RNN(StackedRNNCells([...]))`` / ``RNN([cell, ...])``; None for one cell."""
    cell = config.get("cell")
    if isinstance(cell, list):
        return cell
    if isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells":
        cells = (cell.get("config") or {}).get("cells")
        return cells if isinstance(cells, list) else []
    return None


def rnn_refusal(config: dict) -> str | None:
    """Why an ``RNN`` layer cannot be read (its cell classes), None when it can; no weights read."""
    cells = stacked_cells(config)
    cells = [config.get("cell")] if cells is None else cells
    classes = [c.get("class_name") if isinstance(c, dict) else None for c in cells]
    bad = [c for c in classes if c not in CELL_KINDS]
    if not cells:
        return "RNN of StackedRNNCells without a list of cells: expected 'cells' to list the stacked cells"
    if bad:
        return (f"RNN of {quote(bad[0])}: only RNN of LSTMCell, GRUCell, SimpleRNNCell "
                "or a StackedRNNCells / list of them is supported (custom cells hold Python code)")
    return None


def stacked_weight_paths(config: dict, snake) -> list[str]:
    """Keras 3 ``.keras`` paths (under the RNN's own) of each stacked cell's ``vars``, in cell order:
    ``cell/cells/<snake_class>[_n]`` counted per class, as keras/src/saving/saving_lib.py names a
    list's saveables."""
    used: dict[str, int] = {}
    paths = []
    for cell in stacked_cells(config) or []:
        base = snake(str(cell.get("class_name")))
        n = used.get(base, -1) + 1
        used[base] = n
        paths.append(f"cell/cells/{base}" + (f"_{n}" if n else ""))
    return paths


def _options(rc: RecurrentConfig, call: LayerCall) -> dict:
    cfg = rc.config
    if call.flag("time_major", False, cfg):
        raise call.unsupported("time_major=True is not supported (inputs must be batch-major)")
    opts = {
        "units": call.size("units", cfg.get("units")),
        "activation": call.activation(cfg.get("activation", "tanh"), elementwise=True),
    }
    # Defaults of the Keras whose semantics apply (the version_defaults of converters/keras_classes.py).
    version = call.builder.keras_version
    if rc.kind != "simple_rnn":
        opts["recurrent_activation"] = call.activation(
            cfg.get("recurrent_activation", keras_classes.default_recurrent_activation(version)), elementwise=True)
    if rc.kind == "gru":
        opts["reset_after"] = call.flag("reset_after", keras_classes.default_reset_after(version), cfg)
    opts["use_bias"] = call.flag("use_bias", True, cfg)
    opts.update({k: call.flag(k, False, cfg) for k in ("go_backwards", "return_sequences", "return_state",
                                                       "zero_output_for_mask", "stateful")})
    return opts


# -- weights of one direction ------------------------------------------------------------------
def _part_names(parts: list[tuple[str, str]]) -> str:
    """``W_i, U_i, b_i, W_c ...``: Keras 1 array names of ``(part, gate)`` pairs."""
    return ", ".join(f"{part}_{LETTER['keras'][gate]}" for part, gate in parts)


def decode_direction(kind: str, opts: dict, weights: list[Weight], input_size: int | None,
                     call: LayerCall, direction: str) -> tuple[Packed, dict[str, str]]:
    """Keras-ordered packed arrays of one direction, and which stored array each came from."""
    units, gates = opts["units"], len(GATES[kind])
    where = "" if direction == "forward" and not opts.get("bidirectional") else f"{direction} "
    arrays = [w.array for w in weights]
    if is_keras1_per_gate(kind, len(weights)):
        parts = keras1_parts(kind, [w.path for w in weights])
        saved = [(part, gate) for gate in gate_order("keras1", kind) for part in ("W", "U", "b")]
        if parts != saved:
            # Keras 1 sets them by position (trainable_weights order) and so does tf_keras'
            # preprocess_weights_for_loading (w[0], w[6], w[3], w[9]): names that disagree
            # with the position mean two readers would load different numbers.
            raise call.error(f"expected Keras 1 {where}arrays in the saved order {_part_names(saved)}, "
                             f"found them named {_part_names(parts)}; Keras loads them by position")
        for (part, _), w in zip(parts, weights):
            expected = {"W": (input_size, units), "U": (units, units), "b": (units,)}[part]
            call.check_shape(f"{where}{w.short}", w.array, expected)
        packed = from_keras1(kind, [w.path for w in weights], arrays)
        roles = [f"{part}_{LETTER['keras'][gate]}" for part, gate in parts]
        return packed, {role: w.path for role, w in zip(roles, weights)}

    n_expected = 3 if opts["use_bias"] else 2
    if len(weights) != n_expected:
        raise call.error(f"expected {n_expected} stored {where}arrays (kernel, recurrent_kernel"
                         f"{', bias' if opts['use_bias'] else ''}), found {found_arrays(weights)}")
    kernel, recurrent = arrays[0], arrays[1]
    call.check_shape(f"{where}kernel", kernel, (input_size, gates * units))
    call.check_shape(f"{where}recurrent_kernel", recurrent, (units, gates * units))
    paths = {role: w.path for role, w in zip(("kernel", "recurrent_kernel", "bias"), weights)}
    bias = arrays[2] if opts["use_bias"] else None
    if bias is None:
        return Packed(kernel, recurrent, None, None, "keras"), paths
    if is_cudnn_bias(kind, units, bias):
        if kind == "gru" and not opts["reset_after"]:
            raise call.error(f"{where}bias has shape {bias.shape} (CuDNNGRU), which needs "
                             "reset_after=True, but the config says reset_after=False")
        return from_cudnn(kind, kernel, recurrent, bias), paths
    if kind == "gru" and opts["reset_after"]:
        call.check_shape(f"{where}bias", bias, (2, gates * units))
        return Packed(kernel, recurrent, bias[0], bias[1], "keras"), paths
    call.check_shape(f"{where}bias", bias, (gates * units,))
    return Packed(kernel, recurrent, bias, None, "keras"), paths


def split_directions(weights: list[Weight],
                     counts: tuple[int, int] | None = None) -> tuple[list[Weight], list[Weight]] | None:
    """Forward and backward arrays of a Bidirectional: by the ``forward_``/``backward_`` path
    prefix when every path has exactly one, else the first and second half (as tf_keras does);
    None for an odd count. With ``counts`` (each direction's own array count: a ``backward_layer``
    whose ``use_bias`` differs stores 3 and 2) the directions must hold exactly those, split at the
    forward count when the paths do not say; None otherwise."""
    def side(w: Weight) -> str | None:
        segs = w.path.replace(":", "/").split("/")
        fw = any(s.startswith("forward_") for s in segs)
        bw = any(s.startswith("backward_") for s in segs)
        return "forward" if fw and not bw else "backward" if bw and not fw else None

    sides = [side(w) for w in weights]
    want = counts or (len(weights) // 2,) * 2
    if None not in sides and (sides.count("forward"), sides.count("backward")) == want:
        return ([w for w, s in zip(weights, sides) if s == "forward"],
                [w for w, s in zip(weights, sides) if s == "backward"])
    if len(weights) != sum(want):
        return None
    return weights[:want[0]], weights[want[0]:]


# -- building -------------------------------------------------------------------------------
def _add_recurrent_node(call: LayerCall, rc: RecurrentConfig, opts: dict,
                        directions: dict[str, list[Weight]], source: dict) -> list[Tensor]:
    if not call.inputs:
        raise call.error("expected an input tensor, found none")
    x = call.inputs[0]
    kind = rc.kind
    first = next(iter(directions.values()))
    input_size = x.last_dim if x.shape else None
    if input_size is None and first:
        input_size = int(first[0].array.shape[0])  # kernel rows (or Keras 1 W_i rows)
    call.expect_rank(x, 2, input_size)

    n_states = _STATES[kind] * len(directions)
    states = call.initial_state
    if states and len(states) != n_states:
        raise call.error(f"expected {n_states} initial state tensors, found {len(states)}")
    for s in states:
        if s.shape is not None and tuple(s.shape) != (opts["units"],):
            raise call.error(f"initial state {s.name} has shape {('batch', *s.shape)}, expected "
                             f"(batch, {opts['units']})")

    opts["input_size"] = input_size
    mask = call.input_mask
    outputs = _outputs(call, kind, opts, x)
    node = call.add(kind, [x.name, *[s.name for s in states]], [t.name for t in outputs],
                    options=opts, mask=mask, **source)
    weight_paths = {}
    for direction, weights in directions.items():
        packed, paths = decode_direction(kind, opts, weights, input_size, call, direction)
        set_recurrent_weights(node, direction, "keras", packed.kernel.T, packed.recurrent_kernel.T,
                              packed.input_bias, packed.recurrent_bias)
        weight_paths[direction] = paths
        if packed.layout != "keras":
            node.source.setdefault("layout", packed.layout)
    node.source["weight_paths"] = weight_paths
    # Keras 3 runs an RNN given initial_state unmasked (keras_build), yet marks its sequence output with the
    # input's mask: layer.py __call__ falls back to the first argument's mask as previous_mask, and
    # RNN.compute_mask passes it on with return_sequences (keras/src/layers/layer.py, rnn/rnn.py); the attention
    # or pooling after the decoder of a masked seq2seq model reads it
    carried = mask or (x.mask if call.builder.keras3_masks and states else None)
    if carried and opts["return_sequences"]:  # states never carry a mask
        n_y = 2 if opts["bidirectional"] and opts["merge_mode"] is None else 1
        for t in outputs[:n_y]:
            t.mask = carried
    return outputs


def _outputs(call: LayerCall, kind: str, opts: dict, x: Tensor) -> list[Tensor]:
    """``[y, *states]`` (``[y_fw, y_bw, *states]`` with merge_mode=None), Keras' order."""
    units, seq = opts["units"], opts["return_sequences"]
    time = x.shape[0] if x.shape else None
    bidirectional = opts.get("bidirectional", False)
    merge = opts.get("merge_mode")
    width = 2 * units if bidirectional and merge == "concat" else units
    n_y = 2 if bidirectional and merge is None else 1
    y_shape = (time, width) if seq else (width,)
    outs = [Tensor(call.out(t), y_shape) for t in range(n_y)]
    if opts["return_state"]:
        n_states = _STATES[kind] * (2 if bidirectional else 1)
        outs += [Tensor(call.out(n_y + t), (units,)) for t in range(n_states)]
    return outs


def _part(call: LayerCall, part: str, x: Tensor, states: list[Tensor]) -> LayerCall:
    """The same call seen as one part of the layer (a stacked cell, a Bidirectional half): its nodes
    are named ``<layer>/<part>``; errors still name the layer."""
    spec = replace(call.spec, name=f"{call.spec.name}/{part}", local_name=call.spec.local_name or call.spec.name)
    sub = LayerCall(call.builder, spec, call.index, [x], states, call.input_mask)
    sub.error = call.error  # type: ignore[method-assign]
    return sub


def _split_states(call: LayerCall, kinds: list[str]) -> list[list[Tensor]]:
    """The call's initial states, ``_STATES[kind]`` per part in order (none given: none each)."""
    states, counts = call.initial_state, [_STATES[k] for k in kinds]
    if not states:
        return [[] for _ in kinds]
    if len(states) != sum(counts):
        raise call.error(f"expected {sum(counts)} initial state tensors, found {len(states)}")
    ends = [sum(counts[:i + 1]) for i in range(len(counts))]
    return [states[end - n:end] for n, end in zip(counts, ends)]


def build_stacked(call: LayerCall, cells: list) -> list[Tensor]:
    """``RNN(StackedRNNCells([...]))`` / ``RNN([cell, ...])`` as one recurrent node per cell.

    Exact: at step t cell k reads cell k-1's output of step t (StackedRNNCells.call), which is
    cell k-1's ``return_sequences`` output in processing order; a masked step keeps every cell's
    states and repeats the last cell's output, as each masked node does. ``go_backwards`` reverses
    the first node's input only (its outputs are in processing order already); with a mask the
    later nodes would need the reversed mask, which the IR has no op for. States come out as
    Keras returns them: each cell's, in cell order."""
    if not cells:
        raise call.error("expected at least one cell in StackedRNNCells, found none")
    cfg = call.config
    with call.parsing("recurrent layer config"):
        configs = [_cell_config(cell, cfg, call) for cell in cells]
    if call.flag("go_backwards", False) and call.input_mask:
        raise call.unsupported("stacked cells with go_backwards=True on a masked input are not supported "
                               "(each later cell would need the reversed mask)")
    weights, counts = call.weights(), [3 if call.flag("use_bias", True, c.config) else 2 for c in configs]
    if len(weights) != sum(counts):
        raise call.error(f"expected {sum(counts)} stored arrays for {len(cells)} stacked cells "
                         f"({' + '.join(map(str, counts))}), found {found_arrays(weights)}")
    x, ys, states_out = call.single_input(), [], []
    initial = _split_states(call, [c.kind for c in configs])
    last = len(configs) - 1
    for k, rc in enumerate(configs):
        opts = _options(rc, call)
        opts.update(bidirectional=False, go_backwards=opts["go_backwards"] and k == 0)
        if k < last:
            opts.update(return_sequences=True, zero_output_for_mask=False)
        part = call if k == last else _part(call, f"cell_{k}", x, initial[k])
        if k == last:
            part.inputs, part.initial_state = [x], initial[k]
        start = sum(counts[:k])
        outs = _add_recurrent_node(part, rc, opts, {"forward": weights[start:start + counts[k]]},
                                   {"cell_class": rc.class_name, "stacked_cell": k})
        x = outs[0]
        ys.append(outs[0])
        states_out += outs[1:]
    return [ys[-1], *states_out]


def build_recurrent(call: LayerCall) -> list[Tensor]:
    """LSTM, GRU, SimpleRNN, CuDNNLSTM, CuDNNGRU, RNN(cell), RNN(StackedRNNCells)."""
    cells = stacked_cells(call.config) if call.class_name == "RNN" else None
    if cells is not None:
        return build_stacked(call, cells)
    rc = recurrent_config(call.class_name, call.config, call)
    opts = _options(rc, call)
    opts["bidirectional"] = False
    source = {"cell_class": rc.class_name} if rc.class_name != call.spec.class_name else {}
    return _add_recurrent_node(call, rc, opts, {"forward": call.weights()}, source)


def build_bidirectional(call: LayerCall) -> list[Tensor]:
    cfg = call.config
    inner = cfg.get("layer")
    if not isinstance(inner, dict):
        raise call.error("expected a wrapped 'layer' in the Bidirectional config")
    cells = stacked_cells(inner.get("config") or {}) if inner.get("class_name") == "RNN" else None
    if cells is not None:
        return _build_bidirectional_stacked(call, inner.get("config") or {}, cells)
    fw = recurrent_config(inner.get("class_name"), inner.get("config") or {}, call)
    opts = _options(fw, call)
    if opts["go_backwards"]:
        raise call.unsupported("a Bidirectional whose forward layer has go_backwards=True is not supported")
    back = cfg.get("backward_layer")
    if isinstance(back, dict):
        bw = recurrent_config(back.get("class_name"), back.get("config") or {}, call)
        bopts = _options(bw, call)
        if not bopts["go_backwards"]:
            raise call.unsupported("the backward layer has go_backwards=False")
    merge = cfg.get("merge_mode", "concat")
    if merge not in MERGE_MODES:
        raise call.unsupported(f"merge_mode {quote(merge)} is not supported (supported: {MERGE_MODES})")
    if isinstance(back, dict) and (bw.kind != fw.kind or any(opts.get(k) != bopts.get(k) for k in _SHARED_KEYS)):
        return _build_halves(call, (fw, opts), (bw, bopts), merge)
    opts.update(bidirectional=True, merge_mode=merge,
                zero_output_for_mask=opts["return_sequences"])
    halves = split_directions(call.weights())
    if halves is None:
        raise call.error(f"expected an even number of stored arrays (forward + backward), "
                         f"found {found_arrays(call.weights())}")
    forward, backward = halves
    source = {"layer_class": fw.class_name}
    return _add_recurrent_node(call, fw, opts, {"forward": forward, "backward": backward}, source)


def _array_count(call: LayerCall, rc: RecurrentConfig) -> int:
    """The arrays a Keras 2/3 recurrent layer stores: kernel, recurrent kernel and, with ``use_bias``, bias."""
    return 3 if call.flag("use_bias", True, rc.config) else 2


#: Bidirectional merge_mode -> the IR merge op of two halves.
_MERGE_OPS = {"concat": "concatenate", "sum": "add", "mul": "multiply", "ave": "average"}


def _build_halves(call: LayerCall, forward: tuple, backward: tuple, merge: str | None) -> list[Tensor]:
    """A Bidirectional whose backward layer has its own options (activation, units, kind ...):
    a forward node, a backward node and a merge node.

    Keras flips the backward output back to input time when it returns sequences; the IR's
    bidirectional node is the op that does that flip, so the backward half is a bidirectional node
    of the backward layer (both directions its weights) whose second output alone is used. Without
    sequences no flip is needed and it is one ``go_backwards`` node. Both halves get
    ``zero_output_for_mask = return_sequences``, as Bidirectional forces."""
    (fw, opts), (bw, bopts) = forward, backward
    counts = (_array_count(call, fw), _array_count(call, bw))
    halves = split_directions(call.weights(), counts)
    if halves is None:
        raise call.error(f"expected the forward and backward arrays ({counts[0]} and {counts[1]}), "
                         f"found {found_arrays(call.weights())}")
    x, seq = call.single_input(), opts["return_sequences"]
    if bopts["return_sequences"] != seq or bopts["return_state"] != opts["return_state"]:
        raise call.error("the backward layer's return_sequences / return_state differ from the forward layer's")
    initial = _split_states(call, [fw.kind, bw.kind])
    opts.update(bidirectional=False, zero_output_for_mask=seq)
    y_fw, *s_fw = _add_recurrent_node(_part(call, "forward", x, initial[0]), fw, opts,
                                      {"forward": halves[0]}, {"layer_class": fw.class_name})
    n_bw = _STATES[bw.kind]
    if seq:
        bopts.update(bidirectional=True, merge_mode=None, go_backwards=False, zero_output_for_mask=True)
        outs = _add_recurrent_node(_part(call, "backward", x, initial[1] * 2), bw, bopts,
                                   {"forward": halves[1], "backward": halves[1]}, {"layer_class": bw.class_name})
        y_bw, s_bw = outs[1], outs[2 + n_bw:]
    else:
        bopts.update(bidirectional=False, zero_output_for_mask=False)
        y_bw, *s_bw = _add_recurrent_node(_part(call, "backward", x, initial[1]), bw, bopts,
                                          {"forward": halves[1]}, {"layer_class": bw.class_name})
    return _merged_halves(call, y_fw, y_bw, merge, [*s_fw, *s_bw])


def _build_bidirectional_stacked(call: LayerCall, inner: dict, cells: list) -> list[Tensor]:
    """``Bidirectional(RNN(StackedRNNCells([...])))``: each direction a chain of one node per cell, as
    build_stacked reads one RNN of them; the backward chain's first node runs ``go_backwards`` (the later
    cells read its outputs in processing order, as the backward copy's StackedRNNCells does), its
    sequence flipped back to input time as Bidirectional does; then the merge. A mask (the later
    backward cells would need it reversed), initial states, ``return_state`` and a ``backward_layer``
    are refused in one line."""
    cfg = call.config
    with call.parsing("recurrent layer config"):
        configs = [_cell_config(cell, inner, call) for cell in cells]
    if not configs:
        raise call.error("expected at least one cell in StackedRNNCells, found none")
    last = _options(configs[-1], call)
    refused = ("a mask on its input" if call.input_mask else "initial states" if call.initial_state else
               "return_state=True" if last["return_state"] else "go_backwards=True" if last["go_backwards"] else
               "a backward_layer of other options" if _own_backward(cfg.get("backward_layer"), inner) else None)
    if refused:
        raise call.unsupported(f"a Bidirectional of stacked cells with {refused} is not supported (without it "
                               "each direction is a chain of one recurrent node per cell)")
    merge = cfg.get("merge_mode", "concat")
    if merge not in MERGE_MODES:
        raise call.unsupported(f"merge_mode {quote(merge)} is not supported (supported: {MERGE_MODES})")
    halves = split_directions(call.weights())
    counts = [3 if call.flag("use_bias", True, c.config) else 2 for c in configs]
    if halves is None or any(len(h) != sum(counts) for h in halves):
        raise call.error(f"expected {2 * sum(counts)} stored arrays for {len(configs)} stacked cells in two "
                         f"directions, found {found_arrays(call.weights())}")
    ends: dict[str, Tensor] = {}
    for direction, weights in zip(("forward", "backward"), halves):
        x = call.single_input()
        for k, rc in enumerate(configs):
            opts = _options(rc, call)
            opts.update(bidirectional=False, go_backwards=direction == "backward" and k == 0,
                        zero_output_for_mask=False, return_state=False,
                        return_sequences=opts["return_sequences"] or k < len(configs) - 1)
            start = sum(counts[:k])
            x = _add_recurrent_node(_part(call, f"{direction}_cell_{k}", x, []), rc, opts,
                                    {"forward": weights[start:start + counts[k]]},
                                    {"cell_class": rc.class_name, "stacked_cell": k, "layer_class": "RNN"})[0]
        ends[direction] = x
    y_bw = ends["backward"]
    if last["return_sequences"]:
        flip = _part(call, "backward_flip", y_bw, [])
        flip.add("slice", [y_bw.name], [flip.out()], {"axis": 1, "step": -1})
        y_bw = Tensor(flip.out(), y_bw.shape)
    return _merged_halves(call, ends["forward"], y_bw, merge, [])


def _own_backward(back: object, inner: dict) -> bool:
    """Whether a stacked Bidirectional's ``backward_layer`` (Keras 3 always writes one: the forward layer's copy
    with go_backwards=True) differs from the forward layer but for names and go_backwards."""
    if back is None:
        return False
    if not isinstance(back, dict) or back.get("class_name") != "RNN":
        return True

    def plain(value: object) -> object:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k not in ("name", "go_backwards")}
        return [plain(v) for v in value] if isinstance(value, list) else value
    config = back.get("config") or {}
    return not (isinstance(config, dict) and config.get("go_backwards") is True and plain(config) == plain(inner))


def _merged_halves(call: LayerCall, y_fw: Tensor, y_bw: Tensor, merge: str | None, states: list[Tensor]) \
        -> list[Tensor]:
    """The two directions' outputs merged by ``merge`` (None: both returned), then the states."""
    if merge is None:
        return [y_fw, y_bw, *states]
    shape = y_fw.shape
    if merge == "concat" and shape:
        shape = (*shape[:-1], shape[-1] + y_bw.shape[-1])
    elif y_fw.shape != y_bw.shape:
        raise call.unsupported(f"merge_mode {merge!r} of halves of shapes {y_fw.shape} and {y_bw.shape}")
    call.add(_MERGE_OPS[merge], [y_fw.name, y_bw.name], [call.out()], {"axis": -1} if merge == "concat" else {})
    return [Tensor(call.out(), shape, y_fw.mask), *states]


#: Keras convolutional LSTM classes and their spatial rank.
CONV_LSTM_RANKS = {"ConvLSTM1D": 1, "ConvLSTM2D": 2}


def _conv_tuple(call: LayerCall, key: str, rank: int, default: int, minimum: int = 1) -> list[int]:
    """A ConvLSTM option that is one int or ``rank`` ints (``kernel_size``, ``strides``, ``dilation_rate``)."""
    value = call.config.get(key, default)
    value = [value] * rank if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(value, (list, tuple)) or len(value) != rank:
        raise call.error(f"{key}: expected an integer or a list of {rank} (one per spatial axis), found {quote(value)}")
    return [call.size(key, v, minimum) for v in value]


def _conv_lstm_options(call: LayerCall, rank: int) -> dict:
    cfg = call.config
    if (cfg.get("data_format") or "channels_last") != "channels_last":
        raise call.unsupported(f"data_format {quote(cfg.get('data_format'))} is not supported (only channels_last)")
    padding = cfg.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise call.error(f"padding: expected valid or same, found {quote(padding)}")
    default_ract = keras_classes.version_default(call.class_name, "recurrent_activation", call.builder.keras_version)
    opts = {"rank": rank, "filters": call.size("filters", cfg.get("filters")),
            "kernel_size": _conv_tuple(call, "kernel_size", rank, 0), "strides": _conv_tuple(call, "strides", rank, 1),
            "dilation_rate": _conv_tuple(call, "dilation_rate", rank, 1), "padding": padding,
            "activation": call.activation(cfg.get("activation", "tanh"), elementwise=True),
            "recurrent_activation": call.activation(cfg.get("recurrent_activation", default_ract), elementwise=True),
            "use_bias": call.flag("use_bias", True)}
    opts.update({k: call.flag(k, False) for k in ("go_backwards", "return_sequences", "return_state")})
    if call.flag("stateful", False):
        raise call.unsupported("a stateful ConvLSTM is not supported")
    return opts


def build_conv_lstm(call: LayerCall) -> list[Tensor]:
    """ConvLSTM1D / ConvLSTM2D (channels last) -> one ``conv_lstm`` node (reference_conv_lstm.py)."""
    rank = CONV_LSTM_RANKS[call.class_name]
    with call.parsing("ConvLSTM config"):
        opts = _conv_lstm_options(call, rank)
    if call.input_mask:
        raise call.unsupported("a mask on a ConvLSTM input is not supported")
    filters, kernel_size = opts["filters"], tuple(opts["kernel_size"])
    ws = call.expect_weights(3 if opts["use_bias"] else 2,
                             " (kernel, recurrent_kernel, bias)" if opts["use_bias"] else " (kernel, recurrent_kernel)")
    kernel, recurrent = ws[0].array, ws[1].array
    call.check_shape("kernel", kernel, (*kernel_size, None, 4 * filters))
    call.check_shape("recurrent_kernel", recurrent, (*kernel_size, filters, 4 * filters))
    x = call.inputs[0] if call.inputs else call.single_input()
    call.expect_rank(x, rank + 2, int(kernel.shape[rank]))
    if x.last_dim != kernel.shape[rank]:
        raise call.error(f"kernel has shape {tuple(kernel.shape)}, expected {(*kernel_size, x.last_dim, 4 * filters)}")
    order = (rank + 1, rank, *range(rank))  # (*k, in, out) -> (out, in, *k)
    weights = {"kernel": np.ascontiguousarray(kernel.transpose(order)),
               "recurrent_kernel": np.ascontiguousarray(recurrent.transpose(order))}
    if opts["use_bias"]:
        call.check_shape("bias", ws[2].array, (4 * filters,))
        weights["bias"] = ws[2].array
    node = Node("", "conv_lstm", [], ["y", "h", "c"][:3 if opts["return_state"] else 1], opts)
    shapes = conv_lstm_shapes(node, [x.shape])
    for shape in shapes:
        call.take(math.prod(d or 1 for d in shape), "ConvLSTM output")
    states = call.initial_state
    if states and (len(states) != 2 or any(s.shape is not None and tuple(s.shape) != shapes[1] for s in states)):
        raise call.error(f"expected 2 initial states of shape {('batch', *shapes[1])}, found "
                         f"{[('batch', *(s.shape or ('?',))) for s in states]}")
    outputs = [Tensor(call.out(t), shape) for t, shape in enumerate(shapes)]
    call.add("conv_lstm", [x.name, *[s.name for s in states]], [t.name for t in outputs], opts, weights,
             weight_paths={role: w.path for role, w in zip(("kernel", "recurrent_kernel", "bias"), ws)})
    return outputs


HANDLERS = {
    **{cls: build_conv_lstm for cls in CONV_LSTM_RANKS},
    **{cls: build_recurrent for cls in LAYER_KINDS},
    "RNN": build_recurrent,
    "Bidirectional": build_bidirectional,
}


def stores_keras1_layout(spec, weights: list[Weight]) -> bool:
    """Whether a recurrent layer's stored arrays are Keras 1 per-gate ones (``W_i, U_i, b_i ...``)."""
    cls, cfg, n = spec.class_name, spec.config, len(weights)
    if cls == "Bidirectional":
        inner = cfg.get("layer")
        cls, cfg, n = (inner.get("class_name"), inner.get("config") or {}, n // 2) if isinstance(inner, dict) \
            else (None, {}, n)
    if cls == "RNN":
        cell = cfg.get("cell")
        cls = cell.get("class_name") if isinstance(cell, dict) else None
    kind = (LAYER_KINDS.get(cls) or CELL_KINDS.get(cls)) if isinstance(cls, str) else None  # a config's class
    return kind is not None and n > 0 and is_keras1_per_gate(kind, n)


def is_recurrent_class(class_name: str) -> bool:
    return class_name in HANDLERS
