"""Keras recurrent layers -> one ``lstm``/``gru``/``simple_rnn`` IR node each.

Handles LSTM, GRU, SimpleRNN, CuDNNLSTM, CuDNNGRU, the generic ``RNN(cell)`` wrapper and
``Bidirectional`` around any of them, with every stored layout: Keras 2/3 packed arrays,
Keras 1 per-gate arrays and cuDNN arrays (keras_legacy.py). Storage facts: SEMANTICS.md §3.1,
§3.2, §3.6; Bidirectional forces ``zero_output_for_mask = return_sequences`` on both halves in
tf_keras (tf_keras/src/layers/rnn/bidirectional.py ``force_zero_output_for_mask``) and Keras 3.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..activations import keras_major
from ..gates import GATES, LETTER, gate_order
from ..ir import set_recurrent_weights
from .hdf5 import Weight
from .keras_context import LayerCall, Tensor
from .keras_legacy import Packed, from_cudnn, from_keras1, is_cudnn_bias, is_keras1_per_gate, keras1_parts

#: Keras recurrent layer classes and their IR op.
LAYER_KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn",
               "CuDNNLSTM": "lstm", "CuDNNGRU": "gru"}
#: Cells accepted inside the generic ``RNN`` layer.
CELL_KINDS = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "simple_rnn"}
#: Options of the RNN layer itself (the rest belong to the cell).
_LAYER_KEYS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
               "time_major", "zero_output_for_mask")
#: Options that must agree between the two halves of a Bidirectional.
_SHARED_KEYS = ("units", "activation", "recurrent_activation", "use_bias", "reset_after")
_STATES = {"lstm": 2, "gru": 1, "simple_rnn": 1}
MERGE_MODES = ("concat", "sum", "mul", "ave", None)


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
        cell_class = cell.get("class_name")
        if cell_class not in CELL_KINDS:
            raise call.unsupported(f"RNN cell class {cell_class!r} is not supported "
                                   f"(supported: {', '.join(CELL_KINDS)})")
        cfg = dict(cell.get("config") or {})
        cfg.update({k: config[k] for k in _LAYER_KEYS if k in config})
        return RecurrentConfig(CELL_KINDS[cell_class], f"RNN({cell_class})", cfg)
    raise call.unsupported(f"expected a recurrent layer, found class {class_name!r}")


def _options(rc: RecurrentConfig, call: LayerCall) -> dict:
    cfg = rc.config
    if cfg.get("time_major"):
        raise call.unsupported("time_major=True is not supported (inputs must be batch-major)")
    opts = {
        "units": call.size("units", cfg.get("units")),
        "activation": call.activation(cfg.get("activation", "tanh"), elementwise=True),
    }
    # Defaults of the Keras whose semantics apply: Keras 1 and 2.0-2.2 hard_sigmoid and
    # reset-before GRUs (reset_after appeared in 2.1.5, default False); Keras 3 sigmoid, reset after.
    keras3 = keras_major(call.builder.keras_version) >= 3
    if rc.kind != "simple_rnn":
        opts["recurrent_activation"] = call.activation(
            cfg.get("recurrent_activation", "sigmoid" if keras3 else "hard_sigmoid"), elementwise=True)
    if rc.kind == "gru":
        opts["reset_after"] = bool(cfg.get("reset_after", keras3))
    opts.update(
        use_bias=bool(cfg.get("use_bias", True)),
        go_backwards=bool(cfg.get("go_backwards", False)),
        return_sequences=bool(cfg.get("return_sequences", False)),
        return_state=bool(cfg.get("return_state", False)),
        zero_output_for_mask=bool(cfg.get("zero_output_for_mask", False)),
        stateful=bool(cfg.get("stateful", False)),
    )
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
                         f"{', bias' if opts['use_bias'] else ''}), found {len(weights)}"
                         + (f": {', '.join(w.path for w in weights)}" if weights else ""))
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


def split_directions(weights: list[Weight]) -> tuple[list[Weight], list[Weight]] | None:
    """Forward and backward arrays of a Bidirectional: by the ``forward_``/``backward_`` path
    prefix when every path has exactly one, else the first and second half (as tf_keras does);
    None for an odd count."""
    def side(w: Weight) -> str | None:
        segs = w.path.replace(":", "/").split("/")
        fw = any(s.startswith("forward_") for s in segs)
        bw = any(s.startswith("backward_") for s in segs)
        return "forward" if fw and not bw else "backward" if bw and not fw else None

    sides = [side(w) for w in weights]
    if None not in sides and sides.count("forward") == sides.count("backward"):
        return ([w for w, s in zip(weights, sides) if s == "forward"],
                [w for w, s in zip(weights, sides) if s == "backward"])
    if len(weights) % 2:
        return None
    half = len(weights) // 2
    return weights[:half], weights[half:]


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
    if mask and opts["return_sequences"]:  # states never carry a mask
        n_y = 2 if opts["bidirectional"] and opts["merge_mode"] is None else 1
        for t in outputs[:n_y]:
            t.mask = mask
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


def build_recurrent(call: LayerCall) -> list[Tensor]:
    """LSTM, GRU, SimpleRNN, CuDNNLSTM, CuDNNGRU, RNN(cell)."""
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
    fw = recurrent_config(inner.get("class_name"), inner.get("config") or {}, call)
    opts = _options(fw, call)
    if opts["go_backwards"]:
        raise call.unsupported("a Bidirectional whose forward layer has go_backwards=True is not supported")
    back = cfg.get("backward_layer")
    if isinstance(back, dict):
        bw = recurrent_config(back.get("class_name"), back.get("config") or {}, call)
        bopts = _options(bw, call)
        diff = [k for k in _SHARED_KEYS if opts.get(k) != bopts.get(k)]
        if bw.kind != fw.kind or diff:
            raise call.unsupported(
                "the backward layer differs from the forward layer in "
                + (", ".join(f"{k} ({opts.get(k)!r} vs {bopts.get(k)!r})" for k in diff) or "kind")
                + "; the IR holds one set of options for both directions")
        if not bopts["go_backwards"]:
            raise call.unsupported("the backward layer has go_backwards=False")
    merge = cfg.get("merge_mode", "concat")
    if merge not in MERGE_MODES:
        raise call.unsupported(f"merge_mode {merge!r} is not supported (supported: {MERGE_MODES})")
    opts.update(bidirectional=True, merge_mode=merge,
                zero_output_for_mask=opts["return_sequences"])
    halves = split_directions(call.weights())
    if halves is None:
        raise call.error(f"expected an even number of stored arrays (forward + backward), "
                         f"found {len(call.weights())}")
    forward, backward = halves
    source = {"layer_class": fw.class_name}
    return _add_recurrent_node(call, fw, opts, {"forward": forward, "backward": backward}, source)


HANDLERS = {
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
