"""How a Keras recurrent layer maps onto PyTorch's ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: whether they compute
it exactly, their constructor arguments and their parameters. Used by the state_dict writer
(:mod:`converters.writers.torch_state`) and the model.py writer (:mod:`converters.writers.torch_code`).
"""
from __future__ import annotations

import numpy as np

from ..gates import NN_CLASS, TORCH_PARTS  # noqa: F401 - the writers' names for them
from ..ir import Node


def has_bias(node: Node) -> bool:
    """Whether the layer needs bias parameters (``use_bias``, or any non-zero bias in the IR)."""
    if node.options["use_bias"]:
        return True
    return any(np.any(w) for k, w in node.weights.items() if k.endswith("_bias"))


def nn_incompatibility(node: Node) -> str | None:
    """Why ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` cannot compute this recurrent layer exactly, or None.

    nn.LSTM and nn.GRU hard-code sigmoid gates and tanh; nn.GRU is reset_after=True; nn.RNN has
    tanh or relu (PyTorch docs; SEMANTICS.md §3.5). Masks are not considered here.
    """
    o, kind = node.options, node.op
    act = o["activation"]
    if kind == "simple_rnn":
        return None if act in ("tanh", "relu") else f"expected activation tanh or relu, found {act}"
    ract = o["recurrent_activation"]
    reasons = []
    if act != "tanh":
        reasons.append(f"expected activation tanh, found {act}")
    if ract != "sigmoid":
        reasons.append(f"expected recurrent_activation sigmoid, found {ract}")
    if kind == "gru" and not o["reset_after"]:
        reasons.append("expected reset_after=True, found False (the reset gate before the product)")
    return "; ".join(reasons) or None


def nn_params(node: Node, layer: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """The layer's weights as one layer of an nn.LSTM/GRU/RNN: ``weight_ih_l{layer}[_reverse]`` ...

    ``dtype`` (float32; float64 for a float64 module), PyTorch gate order; no biases when the layer has
    none (``bias=False``).
    """
    params = {}
    bias = has_bias(node)
    for direction in node.directions:
        sfx = f"_l{layer}" + ("_reverse" if direction == "backward" else "")
        for name, part in TORCH_PARTS.items():
            if name.startswith("bias") and not bias:
                continue
            params[name + sfx] = np.asarray(node.stacked(direction, part, "torch"), dtype=dtype)  # a view if it can
    return params


def nn_constructor(node: Node) -> dict:
    """The nn.LSTM/GRU/RNN constructor arguments of this layer (besides ``batch_first``)."""
    args = {"input_size": int(node.weights[f"forward.{node.gate_names[0]}.input_weights"].shape[1]),
            "hidden_size": int(node.options["units"])}
    if node.op == "simple_rnn" and node.options["activation"] != "tanh":
        args["nonlinearity"] = node.options["activation"]
    if not has_bias(node):
        args["bias"] = False
    if node.options.get("bidirectional"):
        args["bidirectional"] = True
    return args
