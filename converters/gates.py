"""The gate-order table: which gate sits in which block of a packed weight, per framework.

Every reader and writer packs and unpacks gates through this one table, and the tests read it
too. Sources (see ../shared/SEMANTICS.md §3.1, §3.2):

* Keras 2/3 LSTM ``i,f,c,o`` (keras/src/layers/rnn/lstm.py splits ``z`` in that order);
  GRU ``z,r,h`` (keras/src/layers/rnn/gru.py).
* PyTorch ``nn.LSTM`` ``i,f,g,o``; ``nn.GRU`` ``r,z,n`` (torch.nn.LSTM / torch.nn.GRU docs).
* ONNX ``LSTM`` ``i,o,f,c``; ``GRU`` ``z,r,h`` (onnx/defs/rnn/defs.cc).
* cuDNN as stored by Keras 2 ``CuDNNLSTM``/``CuDNNGRU``: the Keras order ``i,f,c,o`` / ``z,r,h``.
* Keras 1 per-gate weights are *saved* as ``i,c,f,o`` for LSTM (trainable_weights order in
  keras 1.2.2 recurrent.py) and ``z,r,h`` for GRU.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .errors import LayoutError

#: Canonical gate names of each recurrent kind, in the IR's own order.
GATES: dict[str, tuple[str, ...]] = {
    "lstm": ("input", "forget", "cell", "output"),
    "gru": ("update", "reset", "candidate"),
    "simple_rnn": ("hidden",),
}

#: PyTorch's module for each recurrent kind (``nn.LSTM`` ...) and its parameters per direction and layer,
#: in their order, with the IR part each holds (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0).
NN_CLASS: dict[str, str] = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
TORCH_PARTS: dict[str, str] = {"weight_ih": "input_weights", "weight_hh": "recurrent_weights",
                               "bias_ih": "input_bias", "bias_hh": "recurrent_bias"}

#: Packed gate order per framework and kind.
ORDER: dict[str, dict[str, tuple[str, ...]]] = {
    "keras": {
        "lstm": ("input", "forget", "cell", "output"),
        "gru": ("update", "reset", "candidate"),
        "simple_rnn": ("hidden",),
    },
    "keras1": {
        "lstm": ("input", "cell", "forget", "output"),
        "gru": ("update", "reset", "candidate"),
        "simple_rnn": ("hidden",),
    },
    "cudnn": {
        "lstm": ("input", "forget", "cell", "output"),
        "gru": ("update", "reset", "candidate"),
    },
    "torch": {
        "lstm": ("input", "forget", "cell", "output"),
        "gru": ("reset", "update", "candidate"),
        "simple_rnn": ("hidden",),
    },
    "onnx": {
        "lstm": ("input", "output", "forget", "cell"),
        "gru": ("update", "reset", "candidate"),
        "simple_rnn": ("hidden",),
    },
}

#: The letter each framework uses for a gate (what its docs and sources call it).
LETTER: dict[str, dict[str, str]] = {
    "keras": {"input": "i", "forget": "f", "cell": "c", "output": "o",
              "update": "z", "reset": "r", "candidate": "h", "hidden": "h"},
    "torch": {"input": "i", "forget": "f", "cell": "g", "output": "o",
              "update": "z", "reset": "r", "candidate": "n", "hidden": "h"},
    "onnx": {"input": "i", "forget": "f", "cell": "c", "output": "o",
             "update": "z", "reset": "r", "candidate": "h", "hidden": "h"},
}
LETTER["keras1"] = LETTER["keras"]
LETTER["cudnn"] = LETTER["keras"]

#: Gate name from the Keras 1 per-gate suffix (``W_i``, ``U_z`` ...).
KERAS1_SUFFIX: dict[str, str] = {
    "i": "input", "f": "forget", "c": "cell", "o": "output",
    "z": "update", "r": "reset", "h": "candidate",
}


def gate_order(framework: str, kind: str) -> tuple[str, ...]:
    """The packed gate order of ``kind`` in ``framework``."""
    try:
        return ORDER[framework][kind]
    except KeyError:
        raise KeyError(f"no gate order for {kind!r} in {framework!r}") from None


def gate_slice(framework: str, kind: str, gate: str, units: int) -> slice:
    """The rows (or columns) of ``gate`` in a packed array of ``framework``."""
    k = gate_order(framework, kind).index(gate)
    return slice(k * units, (k + 1) * units)


def split_gates(packed: np.ndarray, framework: str, kind: str, axis: int = 0) -> dict[str, np.ndarray]:
    """Split a packed array into ``{gate: block}`` along ``axis``, by ``framework``'s order."""
    order = gate_order(framework, kind)
    if packed.shape[axis] % len(order):
        raise LayoutError(f"expected {len(order)} gates of equal size along axis {axis}, found shape "
                          f"{packed.shape} (not a multiple of {len(order)})")
    blocks = np.split(packed, len(order), axis=axis)
    return dict(zip(order, blocks))


def join_gates(gates: Mapping[str, np.ndarray], framework: str, kind: str, axis: int = 0) -> np.ndarray:
    """Concatenate ``{gate: block}`` along ``axis`` in ``framework``'s order."""
    return np.concatenate([gates[g] for g in gate_order(framework, kind)], axis=axis)


def reorder(packed: np.ndarray, kind: str, source: str, target: str, axis: int = 0) -> np.ndarray:
    """Repack gate blocks from ``source`` order to ``target`` order."""
    return join_gates(split_gates(packed, source, kind, axis), target, kind, axis)
