"""Keras dtype policies: what a model computes in, what each artifact computes in, verify's bound.

A layer's policy is its config's ``dtype`` (a string in tf-keras, a serialized ``Policy`` /
``DTypePolicy`` dict under mixed precision and in Keras 3; :func:`readers.keras_context.dtype_policy`);
the Keras reader keeps every policy other than float32 as ``node.source["dtype_policy"]``, which a
``.gates`` file carries. ``mixed_float16`` / ``mixed_bfloat16`` keep the variables in float32 and compute
in float16 / bfloat16: ``Layer.__call__`` casts the inputs and, in an ``AutocastScope``, reads the
variables in the compute dtype (keras/src/layers/layer.py), so a recurrent cell's gates and states are
float16 too (keras/src/layers/rnn/lstm.py makes its zero states in ``compute_dtype``).

What each target computes in (``ARTIFACT_DTYPE``):

* float64 models (every layer float64): the numpy reference and the generated numpy ``model.py``
  (float64 always), the PyTorch module (float64 weights, float inputs cast to float64) and the Keras
  target (the layers keep their policy) compute in float64. ONNX computes in float32: onnxruntime's
  CPU kernels refuse double for LSTM and GRU ("LSTM operator does not support double yet") and have
  none for RNN.
* mixed_float16 / mixed_bfloat16 / float16 / bfloat16 layers: the Keras target keeps the policy (Keras
  recomputes what the source did); every other target computes in float32 with the float32 variables,
  i.e. the model without Keras' float16 rounding. ``verify`` then allows the rounding Keras itself
  makes (:func:`tolerance`).

    policy_dtypes(name) -> (compute, variable)
    describe(model) -> dict        # inspect's ``dtype`` entry
    artifact_dtype(model, target) -> str
    tolerance(model) -> (atol, rtol, why) or None
"""
from __future__ import annotations

import math
from collections import Counter

from .ir import Model, Node

#: policy name -> (compute dtype, variable dtype); a plain dtype name is both.
POLICIES = {"mixed_float16": ("float16", "float32"), "mixed_bfloat16": ("bfloat16", "float32")}
FLOATS = ("float16", "bfloat16", "float32", "float64")
#: machine epsilon (spacing of the numbers at 1) of each compute dtype.
EPSILON = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23, "float64": 2.0 ** -52}
#: Targets whose artifact computes in float64 for a model whose every layer is float64.
FLOAT64_TARGETS = ("numpy", "torch", "keras", "keras-weights", "gates")


def policy_dtypes(name: str) -> tuple[str, str]:
    """(compute dtype, variable dtype) of Keras policy ``name``; float32 for names without a float dtype
    (tf-keras' ``_infer``: the layer takes its input's dtype, float32 in a float32 graph)."""
    if name in POLICIES:
        return POLICIES[name]
    return (name, name) if name in FLOATS else ("float32", "float32")


def _policy(node: Node) -> str:
    return str(node.source.get("dtype_policy") or "float32")


def _layers(model: Model) -> list[Node]:
    """The nodes Keras layers compute (not gateport's mask helpers)."""
    return [n for n in model.nodes if not n.op.startswith("mask_")]


def compute_dtype(model: Model) -> str:
    """The least precise compute dtype of the model's layers (float32 for a model without layers)."""
    dtypes = {policy_dtypes(_policy(n))[0] for n in _layers(model)} or {"float32"}
    return max(dtypes, key=lambda d: EPSILON[d])


def all_float64(model: Model) -> bool:
    layers = _layers(model)
    return bool(layers) and all(policy_dtypes(_policy(n))[0] == "float64" for n in layers)


def artifact_dtype(model: Model, target: str) -> str:
    """The dtype the ``target`` artifact of ``model`` computes in (see the module docstring)."""
    if all_float64(model) and target in FLOAT64_TARGETS:
        return "float64"
    if target in ("keras", "keras-weights", "gates"):
        return compute_dtype(model)
    return "float64" if target == "numpy" else "float32"


def keras_policy(node: Node) -> str | None:
    """The node's Keras policy for a written ``.keras`` file, where it is a float one Keras knows (None: float32)."""
    policy = _policy(node)
    return policy if policy != "float32" and (policy in POLICIES or policy in FLOATS) else None


def describe(model: Model) -> dict:
    """The model's policy (the most common one other than float32, else float32), its compute and
    variable dtypes, and how many layers hold each policy."""
    counts = Counter(_policy(n) for n in _layers(model))
    others = [p for p, _ in counts.most_common() if p != "float32"]
    policy = others[0] if others else "float32"
    compute, variables = policy_dtypes(policy)
    return {"policy": policy, "compute_dtype": compute, "variable_dtype": variables,
            "layers": dict(sorted(counts.items()))}


def describe_line(desc: dict) -> str:
    """``mixed_float16 (compute float16, variables float32); layers: 3 mixed_float16, 1 float32``."""
    layers = ", ".join(f"{n} {p}" for p, n in desc["layers"].items())
    return (f"{desc['policy']} (compute {desc['compute_dtype']}, variables {desc['variable_dtype']})"
            + (f"; layers: {layers}" if len(desc["layers"]) > 1 else ""))


#: How many epsilons a recurrent layer computing in float16/bfloat16 counts for in verify's bound: its gates,
#: state and output are rounded at every step, and the rounding of earlier steps fades through the gates.
#: Measured (atol = rtol needed against the producer's outputs, fixtures/dtype_fixtures.json): tf_keras
#: mixed_float16 LSTM -> Conv1D -> GRU over 7 steps: 7.6 epsilons for the float32 artifacts, 17.9 for the Keras
#: target run in float16 by Keras 3 on torch; Keras 3's own file 1.4 and 1.3; mixed_bfloat16 0.9 and 2.6.
RECURRENT_EPSILONS = 6
#: verify may compare two float16 computations (the producer's, and the Keras target's on another backend).
COMPUTATIONS = 2


def tolerance(model: Model) -> tuple[float, float, str] | None:
    """verify's (atol, rtol) for ``model`` and why, when its compute dtype is float16 or bfloat16 (None:
    verify's float32 default, verification.ATOL/RTOL, holds).

    A layer computing in float16 or bfloat16 rounds its inputs, variables and outputs to that dtype, each a
    relative error up to half its epsilon: one epsilon per such layer, :data:`RECURRENT_EPSILONS` per
    recurrent one, for each of :data:`COMPUTATIONS` computations in that dtype. The bound is their sum times
    epsilon, rounded up to two significant digits, as absolute and relative tolerance: LSTM -> Conv1D -> GRU
    in float16 is 2 x 13 x 9.77e-4, 2.6e-2.
    """
    compute = compute_dtype(model)
    if compute in ("float32", "float64"):
        return None
    layers = [n for n in _layers(model) if policy_dtypes(_policy(n))[0] == compute]
    n = COMPUTATIONS * sum(RECURRENT_EPSILONS if node.is_recurrent else 1 for node in layers)
    bound = _round_up(max(n, 1) * EPSILON[compute])
    why = (f"tolerance {short(bound)} from compute dtype {compute} ({n} x epsilon {short(EPSILON[compute], 3)} "
           f"over {len(layers)} layer{'s' * (len(layers) != 1)}: Keras rounds each to {compute}, the artifacts "
           "compute in float32)")
    return bound, bound, why


def short(x: float, digits: int = 2) -> str:
    """``1.3e-2``, ``2e-3``, ``9.77e-4``: a small number as people write it."""
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _round_up(x: float) -> float:
    """``x`` rounded up to two significant digits: 1.27e-2 -> 1.3e-2."""
    scale = 10.0 ** (math.floor(math.log10(x)) - 1)
    return float(f"{math.ceil(round(x / scale, 9)) * scale:.2g}")
