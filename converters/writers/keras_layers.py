"""IR nodes as Keras 3 layers: class, config, variables and call, one small function per op.

Variables are listed per sub-object path in ``Layer.save_own_variables`` order (trainable, then
non-trainable): an RNN holds none, its ``cell`` holds ``kernel (in, G*u)``, ``recurrent_kernel
(u, G*u)``, ``bias``; a Bidirectional holds its ``forward_layer`` and ``backward_layer``
(keras/src/layers/rnn/{lstm,gru,simple_rnn,bidirectional}.py, SEMANTICS.md §3.7).

Keras 3 cannot express every IR activation the way it is named. Keras 2's hard_sigmoid
``clip(0.2x + 0.5)`` equals Keras 3's ``clip(x/6 + 0.5)`` of ``1.2x``, so wherever the activation's
argument is an affine function of the weights (the gates a recurrent activation drives: LSTM i, f, o
and GRU z, r; a GRU candidate; a SimpleRNN; a Dense or Conv1D), those weights and biases are scaled
by 1.2 and the layer uses ``"hard_sigmoid"``: exact in real arithmetic. Elsewhere (an LSTM's cell
activation, which also acts on the cell state; an Activation layer) it is refused.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..activations import column
from ..errors import UnsupportedError
from ..keras_classes import CLASSES, MASK_USERS, PASS_MASK, RECURRENT_CLASS, to_snake_case
from ..ir import Node, int_option
from ..ops import MERGE_MODES
from ..sanitize import quote

#: IR activation -> the Keras 3 name of the same function (converters/activations.py ``keras3`` column).
KERAS3_ACTIVATIONS = column("keras3")
#: IR activation Keras has no name for -> its Keras 3 operation class (``keras.ops.sqrt``: ``Sqrt``), in OPS_MODULE
KERAS3_OPERATIONS = column("keras3_op")
#: where Keras 3 defines the operations gateport writes (writers/keras_tf_ops.py and the functions above)
OPS_MODULE = "keras.src.ops.numpy"
KERAS2_HARD_SIGMOID = "hard_sigmoid_keras2"
#: Keras 2 hard_sigmoid(z) = Keras 3 hard_sigmoid(HARD_SIGMOID_SCALE * z)
HARD_SIGMOID_SCALE = 1.2
RNN_CLASS = RECURRENT_CLASS  # converters/keras_classes.py
#: Which gates each activation slot of a recurrent kind drives; None = not an affine argument.
_DRIVEN = {
    "lstm": {"recurrent_activation": ("input", "forget", "output"), "activation": None},
    "gru": {"recurrent_activation": ("update", "reset"), "activation": ("candidate",)},
    "simple_rnn": {"activation": ("hidden",)},
}


@dataclass
class KerasLayer:
    """One Keras layer, called once: what config.json and model.weights.h5 need about it."""

    name: str
    class_name: str
    config: dict[str, Any]
    args: list[str]  # IR tensors passed positionally (a merge takes them as one list)
    outputs: list[str]  # IR tensors it returns, in Keras' order
    #: sub-object path ("" = the layer itself) -> (name stored in attrs, variables in order)
    variables: dict[str, tuple[str, list[np.ndarray]]] = field(default_factory=dict)
    initial_state: list[str] = field(default_factory=list)
    list_input: bool = False
    #: what the mask check needs: "masking" value, "mask_zero" ids ...
    mask_role: tuple | None = None
    node: Node | None = None
    call_kwargs: dict[str, Any] = field(default_factory=dict)  # plain call arguments (use_causal_mask ...)
    module: str = "keras.layers"  # keras.src.ops.numpy: an operation node (writers/keras_tf_ops.py), not a layer
    constants: dict[int, Any] = field(default_factory=dict)  # an operation's constant arguments, by position
    tensor_kwargs: dict[str, str] = field(default_factory=dict)  # IR tensors passed by keyword (attention_mask)
    #: Attention's ``mask=[query_mask, value_mask]`` written out (IR mask tensors, None: no mask)
    mask_list: list[str | None] | None = None


def keras_activation(name: str | None, node: Node, where: str = "activation") -> str:
    """The Keras 3 name of IR activation ``name``; hard_sigmoid_keras2 must be scaled by the caller."""
    name = name or "linear"
    if name == KERAS2_HARD_SIGMOID:
        raise UnsupportedError(
            f"{where} is Keras 2's hard_sigmoid clip(0.2x+0.5); Keras 3's hard_sigmoid is clip(x/6+0.5) "
            "and no weights feed this activation that could be scaled by 1.2 to keep the numbers; "
            "convert to ONNX or to PyTorch (--to torch), which keep it exactly",
            layer=node.label())
    if name not in KERAS3_ACTIVATIONS:
        raise UnsupportedError(f"{where}: expected an activation Keras 3 has "
                               f"({', '.join(KERAS3_ACTIVATIONS)}), found {quote(name)}; convert to PyTorch "
                               "(--to torch) instead", layer=node.label())
    return KERAS3_ACTIVATIONS[name]


def _scale(a: np.ndarray, factor: float) -> np.ndarray:
    """``a * factor`` rounded once to ``a``'s dtype (float64 product, then cast)."""
    return (np.asarray(a, dtype=np.float64) * factor).astype(np.asarray(a).dtype)


def _activation_and_factor(name: str | None, node: Node, where: str) -> tuple[str, float]:
    """(Keras 3 activation, factor for the weights feeding it)."""
    if (name or "linear") == KERAS2_HARD_SIGMOID:
        return "hard_sigmoid", HARD_SIGMOID_SCALE
    return keras_activation(name, node, where), 1.0


# -- recurrent --------------------------------------------------------------------------------
def scaled_recurrent(node: Node) -> tuple[Node, dict[str, str]]:
    """A copy of ``node`` with hard_sigmoid_keras2-driven gates scaled, and its Keras activations."""
    o = node.options
    defaults = {"activation": "tanh", "recurrent_activation": "sigmoid"}
    names: dict[str, str] = {}
    node = copy.copy(node)
    node.weights = dict(node.weights)
    for slot, gates in _DRIVEN[node.op].items():
        ir_name = o.get(slot) or defaults[slot]
        if ir_name == KERAS2_HARD_SIGMOID and gates is None:
            keras_activation(ir_name, node, f"{slot} (it also acts on the LSTM cell state)")
        names[slot], factor = _activation_and_factor(ir_name, node, slot)
        if factor != 1.0:
            for key in [k for k in node.weights if k.split(".")[1] in gates]:
                node.weights[key] = _scale(node.weights[key], factor)
    return node, names


def _has_bias(node: Node) -> bool:
    return bool(node.options["use_bias"]) or any(
        np.any(w) for k, w in node.weights.items() if k.endswith("_bias"))


def _sum_biases(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``, returning one operand unchanged when the other is all zeros (bit-exact)."""
    if not np.any(b):
        return a
    if not np.any(a):
        return b
    return (a + b).astype(a.dtype)


def cell_variables(node: Node, direction: str) -> list[np.ndarray]:
    """``[kernel, recurrent_kernel, (bias)]`` of one direction in Keras' layout and gate order."""
    kernel = np.ascontiguousarray(node.stacked(direction, "input_weights", "keras").T)
    recurrent = np.ascontiguousarray(node.stacked(direction, "recurrent_weights", "keras").T)
    if not _has_bias(node):
        return [kernel, recurrent]
    b_in = node.stacked(direction, "input_bias", "keras")
    b_rec = node.stacked(direction, "recurrent_bias", "keras")
    if node.op == "gru" and node.options["reset_after"]:
        bias = np.stack([b_in, b_rec])  # (2, 3u): input bias row, recurrent bias row
    else:
        # one bias: Keras adds it to x W (LSTM, SimpleRNN) or, for a reset-before GRU candidate,
        # outside the reset product, where the IR's recurrent bias also sits (reference_rnn.py)
        bias = _sum_biases(b_in, b_rec)
    return [kernel, recurrent, np.ascontiguousarray(bias)]


def rnn_config(node: Node, names: dict[str, str], go_backwards: bool, name: str) -> dict:
    o = node.options
    cfg = {"name": name, "trainable": True, "dtype": "float32",
           "return_sequences": bool(o.get("return_sequences")), "return_state": bool(o.get("return_state")),
           "go_backwards": go_backwards, "stateful": False, "unroll": False,
           "zero_output_for_mask": bool(o.get("zero_output_for_mask")),
           "units": int(o["units"]), "activation": names["activation"], "use_bias": _has_bias(node)}
    if node.op != "simple_rnn":
        cfg["recurrent_activation"] = names["recurrent_activation"]
    if node.op == "gru":
        cfg["reset_after"] = bool(o["reset_after"])
    cfg.update(dropout=0.0, recurrent_dropout=0.0)
    return cfg


def recurrent_layer(node: Node, name: str) -> KerasLayer:
    o = node.options
    scaled, names = scaled_recurrent(node)
    cls = RNN_CLASS[node.op]
    cell = f"{to_snake_case(cls)}_cell"
    go_backwards = bool(o.get("go_backwards"))
    if not o.get("bidirectional"):
        return KerasLayer(name, cls, rnn_config(scaled, names, go_backwards, name), node.inputs[:1],
                          list(node.outputs), {"": (name, []), "cell": (cell, cell_variables(scaled, "forward"))},
                          initial_state=node.inputs[1:], node=node)
    if o["merge_mode"] not in MERGE_MODES:
        raise UnsupportedError(f"expected merge_mode concat|sum|mul|ave|None, found {quote(o['merge_mode'])}",
                               layer=node.label())
    subs = {"forward_layer": (f"forward_{name}", go_backwards),
            "backward_layer": (f"backward_{name}", not go_backwards)}
    config = {"name": name, "trainable": True, "dtype": "float32", "merge_mode": o["merge_mode"]}
    variables = {"": (name, [])}
    for (key, (sub_name, backwards)), direction in zip(subs.items(), ("forward", "backward")):
        sub_cfg = rnn_config(scaled, names, backwards, sub_name)
        sub_cfg["zero_output_for_mask"] = sub_cfg["return_sequences"]  # what Bidirectional forces
        config["layer" if key == "forward_layer" else "backward_layer"] = layer_object(cls, sub_cfg)
        variables[key] = (sub_name, [])
        variables[f"{key}/cell"] = (cell, cell_variables(scaled, direction))
    return KerasLayer(name, "Bidirectional", config, node.inputs[:1], list(node.outputs), variables,
                      initial_state=node.inputs[1:], node=node)


# -- other ops ---------------------------------------------------------------------------------
def layer_object(class_name: str, config: dict) -> dict:
    """A serialized Keras object (what ``keras.saving.serialize_keras_object`` writes)."""
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}


def _base(name: str) -> dict:
    return {"name": name, "trainable": True, "dtype": "float32"}


def _plain(class_name: str, **config) -> Callable[[Node, str], KerasLayer]:
    def convert(node: Node, name: str) -> KerasLayer:
        cfg = {**_base(name), **{k: v(node) if callable(v) else v for k, v in config.items()}}
        return KerasLayer(name, class_name, cfg, list(node.inputs[:1]), list(node.outputs),
                          {"": (name, [])}, node=node)
    return convert


def _merge(class_name: str, **config) -> Callable[[Node, str], KerasLayer]:
    def convert(node: Node, name: str) -> KerasLayer:
        cfg = {**_base(name), **{k: v(node) if callable(v) else v for k, v in config.items()}}
        return KerasLayer(name, class_name, cfg, list(node.inputs), list(node.outputs),
                          {"": (name, [])}, list_input=True, node=node)
    return convert


def dense_layer(node: Node, name: str) -> KerasLayer:
    w, b = node.weights["weight"], node.weights.get("bias")
    act, factor = _activation_and_factor(node.options.get("activation"), node, "activation")
    kernel = np.ascontiguousarray(np.asarray(w).T)
    arrays = [_scale(kernel, factor) if factor != 1.0 else kernel]
    if b is not None:
        arrays.append(_scale(b, factor) if factor != 1.0 else np.asarray(b))
    cfg = {**_base(name), "units": int(np.shape(w)[0]), "activation": act, "use_bias": b is not None}
    return KerasLayer(name, "Dense", cfg, node.inputs[:1], list(node.outputs), {"": (name, arrays)}, node=node)


def conv1d_layer(node: Node, name: str) -> KerasLayer:
    o, w, b = node.options, node.weights["weight"], node.weights.get("bias")
    act, factor = _activation_and_factor(o.get("activation"), node, "activation")
    kernel = np.ascontiguousarray(np.transpose(w, (2, 1, 0)))  # (filters, in, k) -> (k, in, filters)
    arrays = [_scale(kernel, factor) if factor != 1.0 else kernel]
    if b is not None:
        arrays.append(_scale(b, factor) if factor != 1.0 else np.asarray(b))
    cfg = {**_base(name), "filters": int(np.shape(w)[0]), "kernel_size": [int(np.shape(w)[2])],
           "strides": [int_option(o["strides"])], "padding": _choice(o, "padding", "valid", ("valid", "same", "causal")),
           "data_format": "channels_last", "dilation_rate": [int_option(o["dilation_rate"])],
           "groups": int_option(o["groups"]), "activation": act, "use_bias": b is not None}
    return KerasLayer(name, "Conv1D", cfg, node.inputs[:1], list(node.outputs), {"": (name, arrays)}, node=node)


def conv2d_layer(node: Node, name: str) -> KerasLayer:
    """Conv2D / Conv3D; the IR weight (filters, in / groups, *kernel_size) back to Keras' kernel
    (*kernel_size, in / groups, filters)."""
    from ..reference_conv2d import conv2d_weights

    o = node.options
    w, b = conv2d_weights(node)
    act, factor = _activation_and_factor(o.get("activation"), node, "activation")
    kernel = np.ascontiguousarray(np.transpose(w, (*range(2, w.ndim), 1, 0)))
    arrays = [_scale(kernel, factor) if factor != 1.0 else kernel]
    if b is not None:
        arrays.append(_scale(b, factor) if factor != 1.0 else np.asarray(b))
    cfg = {**_base(name), "filters": int(w.shape[0]), "kernel_size": [int(k) for k in w.shape[2:]],
           "strides": [int(s) for s in o["strides"]], "padding": _choice(o, "padding", "valid", ("valid", "same")),
           "data_format": "channels_last", "dilation_rate": [int(d) for d in o["dilation_rate"]],
           "groups": int_option(o["groups"]), "activation": act, "use_bias": b is not None}
    return KerasLayer(name, f"Conv{w.ndim - 2}D", cfg, node.inputs[:1], list(node.outputs), {"": (name, arrays)}, node=node)


def conv_lstm_layer(node: Node, name: str) -> KerasLayer:
    """ConvLSTM1D/2D: IR ``(4f, in, *k)`` kernels back to Keras' ``(*k, in, 4f)``; a Keras 2 hard_sigmoid
    recurrent activation becomes Keras 3's with the i, f, o gate blocks scaled by 1.2 (as for LSTM)."""
    o, wt = node.options, node.weights
    act = keras_activation(o["activation"], node, "activation (it also acts on the cell state)")
    ract, factor = _activation_and_factor(o["recurrent_activation"], node, "recurrent_activation")
    rank, filters = len(o["kernel_size"]), int(o["filters"])
    scale = np.full(4 * filters, factor)
    scale[2 * filters:3 * filters] = 1.0  # the cell candidate is driven by `activation`

    def gates_scaled(a) -> np.ndarray:  # gate blocks i, f, c, o on axis 0
        a = np.asarray(a)
        return a if factor == 1.0 else (a.astype(np.float64) * scale.reshape(-1, *[1] * (a.ndim - 1))).astype(a.dtype)

    order = (*range(2, rank + 2), 1, 0)  # (4f, in, *k) -> (*k, in, 4f)
    arrays = [np.ascontiguousarray(np.transpose(gates_scaled(wt[k]), order)) for k in ("kernel", "recurrent_kernel")]
    if "bias" in wt:
        arrays.append(gates_scaled(wt["bias"]))
    cfg = {**_base(name), "filters": filters, "kernel_size": [int(k) for k in o["kernel_size"]],
           "strides": [int(v) for v in o["strides"]], "padding": _choice(o, "padding", "valid", ("valid", "same")),
           "data_format": "channels_last", "dilation_rate": [int(v) for v in o["dilation_rate"]],
           "activation": act, "recurrent_activation": ract, "use_bias": "bias" in wt,
           "return_sequences": bool(o.get("return_sequences")), "return_state": bool(o.get("return_state")),
           "go_backwards": bool(o.get("go_backwards")), "stateful": False, "dropout": 0.0, "recurrent_dropout": 0.0}
    return KerasLayer(name, f"ConvLSTM{rank}D", cfg, node.inputs[:1], list(node.outputs),
                      {"": (name, []), "cell": ("conv_lstm_cell", arrays)}, initial_state=node.inputs[1:], node=node)


def _choice(options: dict, key: str, default: str, allowed: tuple[str, ...]) -> str:
    """``options[key]`` if it is one of ``allowed`` (Keras would refuse the file otherwise)."""
    value = options.get(key, default)
    if value not in allowed:
        raise UnsupportedError(f"expected {key} {'|'.join(allowed)}, found {quote(value)}")
    return value


def embedding_layer(node: Node, name: str, mask_zero: bool = False) -> KerasLayer:
    emb = np.asarray(node.weights["embeddings"])
    cfg = {**_base(name), "input_dim": int(emb.shape[0]), "output_dim": int(emb.shape[1]),
           "mask_zero": bool(mask_zero)}
    return KerasLayer(name, "Embedding", cfg, node.inputs[:1], list(node.outputs), {"": (name, [emb])},
                      node=node)


def batch_norm_layer(node: Node, name: str) -> KerasLayer:
    w, o = node.weights, node.options
    axis = o["axis"]
    cfg = {**_base(name), "axis": int_option(axis), "epsilon": float(o["epsilon"]),
           "momentum": 0.99, "center": "beta" in w, "scale": "gamma" in w}
    size = next(iter(w.values())).shape[0]
    arrays = [w[k] for k in ("gamma", "beta") if k in w]
    arrays += [w.get("moving_mean", np.zeros(size, np.float32)), w.get("moving_variance", np.ones(size, np.float32))]
    return KerasLayer(name, "BatchNormalization", cfg, node.inputs[:1], list(node.outputs),
                      {"": (name, [np.asarray(a) for a in arrays])}, node=node)


def operation_layer(node: Node, name: str, class_name: str, config: dict, args: list[str],
                    constants: dict | None = None, outputs: list[str] | None = None) -> KerasLayer:
    """A Keras 3 operation node (what ``keras.ops.*`` on a symbolic tensor records: class ``class_name`` of
    OPS_MODULE, its options in the config, its constants among the call's arguments); no variables."""
    return KerasLayer(name, class_name, {"name": name, **config}, args,
                      list(node.outputs) if outputs is None else outputs, {}, node=node, module=OPS_MODULE,
                      constants=constants or {})


def activation_layer(node: Node, name: str) -> KerasLayer:
    """An Activation layer; a function Keras has no activation name for (``sqrt``) as its Keras 3 operation."""
    op = KERAS3_OPERATIONS.get(node.options.get("activation"))
    if op is not None:
        return operation_layer(node, name, op, {}, node.inputs[:1])
    act = keras_activation(node.options.get("activation"), node)
    return _plain("Activation", activation=act)(node, name)


def masking_layer(node: Node, name: str) -> KerasLayer:
    return _plain("Masking", mask_value=float(node.options["mask_value"]))(node, name)


def prelu_layer(node: Node, name: str) -> KerasLayer:
    cfg = {**_base(name), "alpha_initializer": "zeros", "alpha_regularizer": None, "alpha_constraint": None,
           "shared_axes": [int(a) for a in node.options.get("shared_axes") or []] or None}
    return KerasLayer(name, "PReLU", cfg, node.inputs[:1], list(node.outputs),
                      {"": (name, [np.asarray(node.weights["alpha"])])}, node=node)


def layer_norm_layer(node: Node, name: str) -> KerasLayer:
    w = node.weights
    cfg = {**_base(name), "axis": [int(a) for a in node.options["axes"]],
           "epsilon": float(node.options["epsilon"]), "center": "beta" in w, "scale": "gamma" in w}
    arrays = [np.asarray(w[k]) for k in ("gamma", "beta") if k in w]
    return KerasLayer(name, "LayerNormalization", cfg, node.inputs[:1], list(node.outputs), {"": (name, arrays)},
                      node=node)


def normalization_layer(node: Node, name: str) -> KerasLayer:
    """Normalization with ``mean``/``variance`` in the config over the axes the weights keep (size != 1): exact,
    float32 values written as the doubles they are."""
    mean, var = np.asarray(node.weights["mean"]), np.asarray(node.weights["variance"])
    keep = [i for i, d in enumerate(mean.shape) if d != 1]
    kept = tuple(mean.shape[i] for i in keep)
    cfg = {**_base(name), "axis": [i + 1 for i in keep], "invert": bool(node.options["invert"]),
           "mean": mean.reshape(kept).tolist(), "variance": var.reshape(kept).tolist()}
    return KerasLayer(name, "Normalization", cfg, node.inputs[:1], list(node.outputs), {"": (name, [])}, node=node)


def _scalar_or_list(a) -> float | list:
    a = np.asarray(a)
    return float(a.reshape(())) if a.size == 1 and a.ndim <= 1 else a.tolist()


def rms_norm_layer(node: Node, name: str) -> KerasLayer:
    """RMSNormalization, or LayerNormalization(rms_scaling=True) for ``centered`` (Keras 3's variance form)."""
    axes = [int(a) for a in node.options["axes"]]
    cfg = {**_base(name), "axis": axes, "epsilon": float(node.options["epsilon"])}
    scale = node.weights.get("scale")
    if scale is None:
        raise UnsupportedError("expected the weight scale, found none", layer=node.label())
    if node.options["centered"]:
        cfg.update(center=False, scale=True, rms_scaling=True)
    cls = "LayerNormalization" if node.options["centered"] else "RMSNormalization"
    return KerasLayer(name, cls, cfg, node.inputs[:1], list(node.outputs), {"": (name, [np.asarray(scale)])},
                      node=node)


def conv1d_transpose_layer(node: Node, name: str) -> KerasLayer:
    """Conv1DTranspose; the IR weight (in, filters, k) back to Keras' kernel (k, filters, in)."""
    o, w = node.options, node.weights
    cfg = {**_base(name), "filters": int(o["filters"]), "kernel_size": [int(o["kernel_size"])],
           "strides": [int(o["strides"])], "padding": _choice(o, "padding", "valid", ("valid", "same")),
           "output_padding": None if o["output_padding"] is None else [int(o["output_padding"])],
           "data_format": "channels_last", "dilation_rate": [int(o["dilation_rate"])],
           "activation": keras_activation(o.get("activation"), node), "use_bias": "bias" in w}
    arrays = [np.ascontiguousarray(np.asarray(w["weight"]).transpose(2, 1, 0))] + \
        ([np.asarray(w["bias"])] if "bias" in w else [])
    return KerasLayer(name, "Conv1DTranspose", cfg, node.inputs[:1], list(node.outputs), {"": (name, arrays)},
                      node=node)


def group_norm_layer(node: Node, name: str) -> KerasLayer:
    w = node.weights
    cfg = {**_base(name), "groups": int(node.options["groups"]), "axis": -1,
           "epsilon": float(node.options["epsilon"]), "center": "beta" in w, "scale": "gamma" in w}
    arrays = [np.asarray(w[k]) for k in ("gamma", "beta") if k in w]
    return KerasLayer(name, "GroupNormalization", cfg, node.inputs[:1], list(node.outputs), {"": (name, arrays)},
                      node=node)


def _data_format(node: Node) -> str:
    return "channels_last" if int(node.options["axis"]) == 1 else "channels_first"


def _pool_class(prefix: str, rank: int = 1) -> Callable[[Node], str]:
    return lambda node: f"{prefix}{'Max' if node.options.get('mode') == 'max' else 'Average'}Pooling{rank}D"


def _by_class(class_of: Callable[[Node], str], **config) -> Callable[[Node, str], KerasLayer]:
    """A layer whose class depends on the node (max or average pooling)."""
    return lambda node, name: _plain(class_of(node), **config)(node, name)


LAYERS: dict[str, Callable[[Node, str], KerasLayer]] = {
    "lstm": recurrent_layer,
    "gru": recurrent_layer,
    "simple_rnn": recurrent_layer,
    "dense": dense_layer,
    "conv1d": conv1d_layer,
    "conv_lstm": conv_lstm_layer,
    "embedding": embedding_layer,
    "batch_norm": batch_norm_layer,
    "activation": activation_layer,
    "masking": masking_layer,
    "relu": _plain("ReLU", max_value=lambda n: n.options.get("max_value"),
                   negative_slope=lambda n: float(n.options["negative_slope"]),
                   threshold=lambda n: float(n.options["threshold"])),
    "elu": _plain("ELU", alpha=lambda n: float(n.options["alpha"])),
    "prelu": prelu_layer,
    "global_pool": _by_class(_pool_class("Global"), data_format=_data_format,
                             keepdims=lambda n: bool(n.options.get("keepdims"))),
    "pool1d": _by_class(_pool_class(""), pool_size=lambda n: [int_option(n.options["pool_size"])],
                        strides=lambda n: [int_option(n.options.get("strides") or n.options["pool_size"])],
                        padding=lambda n: _choice(n.options, "padding", "valid", ("valid", "same")),
                        data_format="channels_last"),
    "conv2d": conv2d_layer,
    "conv3d": conv2d_layer,
    "pool2d": _by_class(_pool_class("", 2), pool_size=lambda n: [int(v) for v in n.options["pool_size"]],
                        strides=lambda n: [int(v) for v in n.options["strides"]],
                        padding=lambda n: _choice(n.options, "padding", "valid", ("valid", "same")),
                        data_format="channels_last"),
    "zero_pad2d": _plain("ZeroPadding2D", padding=lambda n: [[int(v) for v in n.options["padding"][:2]],
                                                             [int(v) for v in n.options["padding"][2:]]],
                         data_format="channels_last"),
    "permute": _plain("Permute", dims=lambda n: [int(d) for d in n.options["dims"]]),
    "layer_norm": layer_norm_layer,
    "unit_norm": _plain("UnitNormalization", axis=lambda n: [int(a) for a in n.options["axes"]]),
    "normalization": normalization_layer,
    "rescaling": _plain("Rescaling", scale=lambda n: _scalar_or_list(n.weights["scale"]),
                        offset=lambda n: _scalar_or_list(n.weights["offset"])),
    "rms_norm": rms_norm_layer,
    "group_norm": group_norm_layer,
    "conv1d_transpose": conv1d_transpose_layer,
    "crop1d": _plain("Cropping1D", cropping=lambda n: [int(v) for v in n.options["cropping"]]),
    "zero_pad1d": _plain("ZeroPadding1D", padding=lambda n: [int(v) for v in n.options["padding"]],
                         data_format="channels_last"),
    "upsample1d": _plain("UpSampling1D", size=lambda n: int(n.options["size"])),
    "identity": _plain("Dropout", rate=0.0),
    "flatten": _plain("Flatten", data_format="channels_last"),
    "reshape": _plain("Reshape", target_shape=lambda n: [int(d) for d in n.options["shape"]]),
    "repeat_vector": _plain("RepeatVector", n=lambda n: int(n.options["n"])),
    "concatenate": _merge("Concatenate", axis=lambda n: int_option(n.options["axis"])),
    "add": _merge("Add"),
    "subtract": _merge("Subtract"),
    "multiply": _merge("Multiply"),
    "average": _merge("Average"),
    "maximum": _merge("Maximum"),
    "minimum": _merge("Minimum"),
}
#: Layers written here whose result depends on the mask their ``call`` takes (the recurrent ones
#: aside), and those that pass it on unchanged: the mask columns of converters/keras_classes.py.
MASK_ARG_LAYERS = tuple(c for c in MASK_USERS if CLASSES[c].mask_out != "sequence")
PASS_MASK_LAYERS = PASS_MASK
#: IR ops Keras computes by itself (masks; TimeDistributed's folding of the outer time axis into the batch,
#: :func:`time_distributed`): no layer is written for them.
FOLDS = ("fold_time", "unfold_time")
IMPLICIT = ("mask_not_equal", "mask_and", "mask_or", "mask_concat", *FOLDS)


def time_distributed(inner: KerasLayer, name: str) -> KerasLayer:
    """``inner`` (written for a node between fold_time and unfold_time) as ``TimeDistributed(inner)`` named
    ``name``: its variables under the wrapper's ``layer``."""
    variables = {"": (name, [])}
    variables.update({f"layer/{sub}" if sub else "layer": v for sub, v in inner.variables.items()})
    config = {**_base(name), "layer": layer_object(inner.class_name, inner.config)}
    return KerasLayer(name, "TimeDistributed", config, inner.args, inner.outputs, variables, node=inner.node)
