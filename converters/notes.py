"""What a conversion changes on purpose, said out loud.

Some conversions are exact only after a deliberate change (Keras 2's hard_sigmoid kept in Keras 3 by
scaling weights), or drop something the target cannot hold (a stateful layer's carried state, a
state_dict's non-recurrent tensors). :func:`notes` lists them for a model and a target, one line
each; :func:`converters.api.convert` warns each as a :class:`GateportNote` (the CLI prints
``gateport: note: ...``) and records them in the artifact (``model.source["notes"]``: the ONNX
``metadata_props``, the generated ``model.py`` docstring, the ``.keras`` ``metadata.json``).

    notes(model, to) -> list[str]
    emit(lines) -> None
"""
from __future__ import annotations

import warnings

from .errors import GateportWarning
from .ir import Model, Node
from .sanitize import quote

KERAS_TARGETS = ("keras", "keras-weights")
#: How many ignored state_dict keys a note names.
SHOWN_KEYS = 6


class GateportNote(GateportWarning):
    """A deliberate change a conversion made (``gateport: note: ...`` on the command line).

    >>> with warnings.catch_warnings(record=True) as caught:
    ...     converters.convert("lstm_hard_sigmoid.h5", "keras", "m.keras")
    >>> [str(w.message) for w in caught if w.category is converters.GateportNote]
    ["'lstm' ('LSTM'): Keras 2 hard_sigmoid clip(0.2x+0.5) kept exact in Keras 3 ... by 1.2"]
    """


def _where(node: Node) -> str:
    cls = node.source.get("class_name")
    return f"{quote(node.name)} ({quote(cls)})" if cls else quote(node.name)


def _node_notes(node: Node, to: str) -> list[str]:
    out = []
    scaled = [k for k in ("activation", "recurrent_activation") if node.options.get(k) == "hard_sigmoid_keras2"]
    if to in KERAS_TARGETS and scaled:
        out.append(f"{_where(node)}: Keras 2 hard_sigmoid clip(0.2x+0.5) kept exact in Keras 3 "
                   f"(clip(x/6+0.5)) by scaling the weights feeding its {' and '.join(scaled)} by 1.2")
    if node.options.get("stateful") and to != "gates":
        out.append(f"{_where(node)}: stateful layer exported stateless: each call starts from zero "
                   "states (pass the states as initial-state inputs to carry them)")
    if to == "torch-state-dict" and not node.is_recurrent and node.weights:
        out.append(f"{_where(node)}: not in the state_dict (--to torch-state-dict keeps the recurrent "
                   "layers only; --to torch writes the whole model)")
    return out


def _dtype_notes(model: Model, to: str) -> list[str]:
    """A note per Keras dtype policy the ``to`` artifact does not compute in (converters/dtypes.py says
    what each target computes in): float64 in ONNX, float16/bfloat16 anywhere but Keras."""
    from .dtypes import artifact_dtype, policy_dtypes

    if to in ("gates", "torch-state-dict"):
        return []
    computes = artifact_dtype(model, to)
    by_policy: dict[str, list[Node]] = {}
    for node in model.nodes:
        policy = node.source.get("dtype_policy")
        if policy and policy_dtypes(str(policy))[0] != computes:
            by_policy.setdefault(str(policy), []).append(node)
    why = {"float64": " on float32 inputs (onnxruntime's CPU LSTM/GRU/RNN kernels have no float64)" if to == "onnx"
           else "",
           "float16": " with the float32 variables", "bfloat16": " with the float32 variables"}
    return [f"{len(nodes)} layer{'s' * (len(nodes) != 1)} ({_where(nodes[0])}{', ...' if len(nodes) > 1 else ''}) "
            f"compute in Keras dtype policy {quote(policy)} ({policy_dtypes(policy)[0]}); the artifact computes in "
            f"{computes}{why.get(policy_dtypes(policy)[0], '')}, so its outputs differ from Keras' by that rounding"
            for policy, nodes in by_policy.items()]


def notes(model: Model, to: str) -> list[str]:
    """One line per deliberate change converting ``model`` to target ``to`` makes (may be empty)."""
    out = [line for node in model.nodes for line in _node_notes(node, to)] + _dtype_notes(model, to)
    ignored = (model.source or {}).get("ignored_keys") or []
    if ignored:
        shown = ", ".join(quote(k) for k in ignored[:SHOWN_KEYS]) + (" ..." if len(ignored) > SHOWN_KEYS else "")
        out.append(f"{len(ignored)} state_dict tensors that are not nn.LSTM/nn.GRU/nn.RNN parameters were "
                   f"ignored (nn.Linear and others): {shown}")
    return out


def emit(lines: list[str]) -> None:
    """Warn each line as a :class:`GateportNote`."""
    for line in lines:
        warnings.warn(GateportNote(line), stacklevel=3)
