"""Keras non-recurrent layers -> IR nodes, one small builder per layer kind.

Each builder checks the stored arrays against the config, converts them to the IR orientation
(``(out, in)`` matrices), infers the output shape and propagates the Keras mask the way the
layer's ``compute_mask`` does: pass-through for Dropout & friends, Activation, ReLU & co, Dense,
TimeDistributed, Batch/Layer/UnitNormalization; the logical and for merges; consumed by
GlobalAveragePooling1D; dropped by every layer without ``supports_masking`` (Flatten, Reshape,
RepeatVector, Conv1D, pooling, Permute, Cropping1D, ZeroPadding1D, UpSampling1D: Keras 3 warns and
drops it); created by Embedding(mask_zero) and Masking.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import keras_classes
from ..budget import MAX_RANK
from ..ops import conv1d_transpose_edges, is_finite
from ..errors import UnsafeError
from ..sanitize import quote
from .hdf5 import Weight
from .keras_context import LayerCall, Tensor, dtype_policy
from .keras_conv2d import HANDLERS as CONV2D_HANDLERS, time_distributed_global_pooling2d
from .keras_recurrent import HANDLERS as RECURRENT_HANDLERS
from .keras_tf_ops import Args, softmax as softmax_over_axis

#: Layers that are the identity at inference.
IDENTITY_CLASSES = keras_classes.IDENTITY_CLASSES  # converters/keras_classes.py
#: Keras merge layer -> IR op.
MERGE_OPS = keras_classes.MERGE_OPS
#: Keras 1 ``Merge(mode=...)`` -> Keras 2 class.
KERAS1_MERGE_MODES = {"sum": "Add", "mul": "Multiply", "ave": "Average", "max": "Maximum",
                      "concat": "Concatenate"}


def _zeros(n: int, like: np.ndarray) -> np.ndarray:
    return np.zeros(n, dtype=like.dtype)


def _refuse_quantized(call: LayerCall) -> None:
    cfg = call.config
    with call.parsing("dtype policy"):
        policy = dtype_policy(cfg)
    if cfg.get("quantization_config") or policy.startswith(("int8", "int4", "float8")):
        raise call.unsupported(f"quantized layers are not supported (dtype policy {policy!r})")
    if cfg.get("lora_rank"):
        raise call.unsupported("LoRA-enabled layers are not supported (lora_rank set)")


def identity(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    call.add("identity", [x.name], [call.out()])
    return [Tensor(call.out(), x.shape, x.mask)]


def activation(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    if call.class_name == "Softmax":
        axis = call.config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if isinstance(axis, list):
            raise call.unsupported(f"Softmax over several axes {quote(axis, 80)} is not supported (one axis only)")
        if axis != -1 and not (x.shape and axis == len(x.shape)):  # another axis: moved last and back
            t = softmax_over_axis(call, Args([x], {"axis": axis}))
            return [Tensor(t.name, t.shape, x.mask)]
        act = "softmax"
    else:
        act = call.activation(call.config.get("activation", "linear"))
    call.add("activation", [x.name], [call.out()], {"activation": act})
    return [Tensor(call.out(), x.shape, x.mask)]


def _number(call: LayerCall, key: str, value: object, default: float | None) -> float | None:
    """A finite real option of the config (``alpha``, ``max_value`` ...); None stays None where allowed."""
    if value is None and default is None:
        return None
    value = default if value is None else value
    if not is_finite(value):
        raise call.error(f"{key}: expected a finite number, found {quote(value)}")
    return float(value)


#: The largest float32: a config number past it is infinite once Keras casts it to the layer's float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _mask_value(call: LayerCall, value: object) -> float:
    """Masking's ``mask_value``: a number that float32 holds, or an infinity. Keras compares the inputs with it in
    their dtype; a bool or a string ('0.5', which float() took) is no number, NaN equals nothing (and Keras'
    outputs hold NaN), and a value past float32's range is infinite in Keras but was compared as itself in the
    numpy reference (its NaN outputs were reported as a mismatch)."""
    infinite = isinstance(value, float) and math.isinf(value)
    if not infinite and not (is_finite(value) and abs(float(value)) <= FLOAT32_MAX):
        raise call.error(f"mask_value: expected a number within float32's range or an infinity, found "
                         f"{quote(value)}")
    return float(value)  # type: ignore[arg-type]


def relu(call: LayerCall) -> list[Tensor]:
    """ReLU(max_value, negative_slope, threshold) and LeakyReLU (tf-keras ``alpha``, Keras 3
    ``negative_slope``, default 0.3): plain ``relu`` / ``relu6`` activations where the options allow."""
    x, cfg = call.single_input(), call.config
    if call.class_name == "LeakyReLU":
        slope = _number(call, "negative_slope", cfg.get("negative_slope", cfg.get("alpha")), 0.3)
        opts = {"negative_slope": slope, "max_value": None, "threshold": 0.0}
    else:
        opts = {"negative_slope": _number(call, "negative_slope", cfg.get("negative_slope"), 0.0),
                "max_value": _number(call, "max_value", cfg.get("max_value"), None),
                "threshold": _number(call, "threshold", cfg.get("threshold"), 0.0)}
    for key in ("negative_slope", "max_value", "threshold"):  # what Keras' ReLU refuses too
        if opts[key] is not None and opts[key] < 0:
            raise call.error(f"{key}: expected a number >= 0, found {opts[key]}")
    plain = {(0.0, None, 0.0): "relu", (0.0, 6.0, 0.0): "relu6", (0.2, None, 0.0): "leaky_relu"}
    act = plain.get((opts["negative_slope"], opts["max_value"], opts["threshold"]))
    if act:
        call.add("activation", [x.name], [call.out()], {"activation": act})
    else:
        call.add("relu", [x.name], [call.out()], opts)
    return [Tensor(call.out(), x.shape, x.mask)]


def elu(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    alpha = _number(call, "alpha", call.config.get("alpha"), 1.0)
    if alpha == 1.0:
        call.add("activation", [x.name], [call.out()], {"activation": "elu"})
    else:
        call.add("elu", [x.name], [call.out()], {"alpha": alpha})
    return [Tensor(call.out(), x.shape, x.mask)]


def prelu(call: LayerCall) -> list[Tensor]:
    """``relu(x) - alpha * relu(-x)``; ``alpha`` has the input's shape (batch excluded) with 1 on
    ``shared_axes``."""
    x, cfg = call.single_input(), call.config
    (w,) = call.expect_weights(1, " (alpha)")
    shared = cfg.get("shared_axes") or []
    shared = [shared] if isinstance(shared, int) else shared
    with call.parsing("shared_axes"):
        axes = [call.axis(a) for a in shared]
    alpha = w.array
    if x.shape is not None:
        rank = len(x.shape)
        if any(not 1 <= a <= rank for a in axes):
            raise call.error(f"shared_axes {axes}: expected axes from 1 to {rank}")
        call.check_shape("alpha", alpha, tuple(1 if i + 1 in axes else d for i, d in enumerate(x.shape)))
    elif x.is_model_input:
        x.shape = tuple(None if i + 1 in axes else int(d) for i, d in enumerate(alpha.shape))
    call.add("prelu", [x.name], [call.out()], {"shared_axes": sorted(axes)}, {"alpha": alpha},
             weight_paths={"alpha": w.path})
    return [Tensor(call.out(), x.shape, x.mask)]


def dense(call: LayerCall) -> list[Tensor]:
    _refuse_quantized(call)
    x = call.single_input()
    cfg = call.config
    units = call.size("units", cfg.get("units"))
    use_bias = call.flag("use_bias", True)
    ws = call.expect_weights(2 if use_bias else 1, " (kernel, bias)" if use_bias else " (kernel)")
    kernel = ws[0].array
    call.check_shape("kernel", kernel, (x.last_dim, units))
    if x.shape is None and x.is_model_input:
        x.shape = (int(kernel.shape[0]),)
    bias = ws[1].array if use_bias else _zeros(units, kernel)
    if use_bias:
        call.check_shape("bias", bias, (units,))
    act = cfg.get("activation", "linear")
    act_layer = _activation_layer(act)
    out = call.out() if act_layer is None else f"{call.name}/linear"
    call.add("dense", [x.name], [out],
             {"units": units, "activation": "linear" if act_layer else call.activation(act), "use_bias": use_bias},
             {"weight": np.ascontiguousarray(kernel.T), "bias": bias},
             weight_paths={role: w.path for role, w in zip(("kernel", "bias"), ws)})
    shape = (*x.shape[:-1], units) if x.shape else None
    if act_layer is None:
        return [Tensor(call.out(), shape, x.mask)]
    cls, inner_cfg = act_layer
    inner = _StepCall(call.builder, call.spec, call.index, [Tensor(out, shape, x.mask)], class_name=cls,
                      config=inner_cfg, step_out=call.out())
    HANDLERS[cls](inner)
    return [Tensor(call.out(), shape, x.mask)]


#: EinsumDense equations that are a Dense: the kernel ``cd`` contracts the input's last axis ``c`` and the output's last
#: axis is ``d``, every other axis passed through in order (keras/src/layers/core/einsum_dense.py; what
#: ``EinsumDense("abc,cd->abd", output_shape=(None, d), bias_axes="d")`` in production transformer code computes)
_DENSE_EQUATION = re.compile(r"(\.\.\.|[a-z]*)([a-z]),([a-z])([a-z])->(\.\.\.|[a-z]*)([a-z])")


def einsum_dense(call: LayerCall) -> list[Tensor]:
    """EinsumDense whose equation is a Dense (:data:`_DENSE_EQUATION`): read as that Dense (``bias_axes`` the output
    axis or none); any other equation is refused naming it and the form expected."""
    cfg, x = call.config, call.single_input()
    equation, bias_axes, shape = cfg.get("equation"), cfg.get("bias_axes"), cfg.get("output_shape")
    match = _DENSE_EQUATION.fullmatch(equation) if isinstance(equation, str) else None
    kept, c, c2, d, kept2, d2 = match.groups() if match else ("", "", "?", "", "", "")
    letters = "" if kept == "..." else kept
    dense_like = (kept == kept2 and c == c2 and d == d2 and len(set(letters + c + d)) == len(letters) + 2
                  and (x.shape is None or kept == "..." or len(kept) == len(x.shape)))
    if not dense_like or bias_axes not in (None, "", d):
        raise call.unsupported(f"EinsumDense equation {quote(equation, 60)} with bias_axes {quote(bias_axes, 20)} is "
                               "not supported: expected a Dense one, '<axes>c,cd-><axes>d' with bias_axes 'd' or "
                               "none")
    units = shape[-1] if isinstance(shape, (list, tuple)) and shape else shape
    if isinstance(units, bool) or not isinstance(units, int):
        raise call.error(f"output_shape: expected the output's last axis as an integer, found {quote(shape, 60)}")
    (y,) = dense(call.inner(call.class_name, {**cfg, "units": units, "use_bias": bool(bias_axes)}))
    return [Tensor(y.name, y.shape)]  # no supports_masking: the mask stops here


#: Activation layers a Dense may be given as its activation (``Dense(8, activation=LeakyReLU(0.1))``: Keras calls the
#: layer on the output; the config holds the layer's serialization, keras/src/layers/core/dense.py, activations.get)
_ACTIVATION_LAYERS = ("LeakyReLU", "ReLU", "ELU", "Softmax", "Activation")


def _activation_layer(value: object) -> tuple[str, dict] | None:
    """``(class, config)`` of an activation given as one of :data:`_ACTIVATION_LAYERS` (a Keras layer), or None."""
    if (isinstance(value, dict) and value.get("class_name") in _ACTIVATION_LAYERS
            and value.get("module") in ("keras.layers", None) and isinstance(value.get("config"), dict)):
        return str(value["class_name"]), value["config"]
    return None


#: Layers that act on each step's trailing axes only: TimeDistributed of one is the layer applied to
#: the whole sequence (its positive axes shifted past the time axis).
_PER_STEP = ("Dense", "Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "LayerNormalization",
             "UnitNormalization", "BatchNormalization", *IDENTITY_CLASSES)


def _shift_axes(value: object) -> object:
    """A wrapped layer's ``axis`` (int or list) as an axis of the sequence: positive ones + 1."""
    shift = lambda a: a + 1 if isinstance(a, int) and not isinstance(a, bool) and a > 0 else a  # noqa: E731
    return [shift(a) for a in value] if isinstance(value, (list, tuple)) else shift(value)


def time_distributed(call: LayerCall) -> list[Tensor]:
    """TimeDistributed(layer): per-step layers applied to the sequence as they are, Flatten/Reshape as a
    reshape of each step; the input mask passes through (Keras 3 supports_masking, tf-keras
    TimeDistributed.compute_mask for inner layers that make no mask)."""
    with call.parsing("wrapped layer config"):
        inner = call.config.get("layer") or {}
        cls, config = inner.get("class_name"), dict(inner.get("config") or {})
    if cls in ("Flatten", "Reshape"):
        return _step_reshape(call.inner(cls, config))
    if keras_classes.CLASSES.get(cls) is not None and keras_classes.CLASSES[cls].op == "reduce":
        return time_distributed_global_pooling2d(call.inner(cls, config))
    if cls in _FOLDED:
        return _folded(call, cls, config, HANDLERS[cls])
    if cls in _FOLDED_RECURRENT:
        _check_folded_recurrent(call, cls, config)
        return _folded(call, cls, config, RECURRENT_HANDLERS[cls])
    if cls == "Embedding":
        return _time_distributed_embedding(call, config)
    if cls in _NESTED_MODELS:
        raise call.unsupported(f"TimeDistributed of a nested model ({quote(cls)}) is not supported: expected "
                               "one layer inside TimeDistributed (wrap each of the model's layers instead)")
    if cls not in _PER_STEP:
        raise call.unsupported(f"TimeDistributed({quote(cls)}) is not supported: only layers acting on each "
                               "step's last axes (Dense, activations, normalizations, Dropout ...), "
                               "Flatten/Reshape, the 1-D sequence layers (Conv1D, pooling, padding ...) and the "
                               "recurrent layers (LSTM, GRU, SimpleRNN, RNN, Bidirectional) are")
    if "axis" in config:
        config["axis"] = _shift_axes(config["axis"])
    return HANDLERS[cls](call.inner(cls, config))


#: 1-D sequence layers (their own time axis): TimeDistributed of one folds the outer time axis into the batch.
_FOLDED = tuple(c.name for c in keras_classes.CLASSES.values()
                if c.op in ("conv1d", "pool1d", "global_pool", "zero_pad1d", "crop1d", "upsample1d", "conv2d", "pool2d",
                            "zero_pad2d"))
#: Recurrent layers (keras_recurrent.py): folded the same way, each outer step a sample of the recurrence.
_FOLDED_RECURRENT = (*keras_classes.LAYER_KINDS, "RNN", "Bidirectional")
#: Nested-model classes a TimeDistributed config may wrap.
_NESTED_MODELS = ("Sequential", "Functional", "Model")


def _check_folded_recurrent(call: LayerCall, cls: str, config: dict) -> None:
    """Refuse what TimeDistributed(recurrent layer) cannot carry exactly: returned states (Keras nests
    them per outer step), stateful layers (states kept across batches of folded samples), two outputs
    of Bidirectional(merge_mode=None)."""
    with call.parsing("wrapped layer config"):
        layers = [config, *(dict(config.get(k) or {}).get("config") or {}
                            for k in ("layer", "backward_layer") if cls == "Bidirectional")]
        flags = {k: any(call.flag(k, False, c) for c in layers) for k in ("return_state", "stateful")}
        merge_none = cls == "Bidirectional" and "merge_mode" in config and config["merge_mode"] is None
    for key, value in flags.items():
        if value:
            raise call.unsupported(f"TimeDistributed({quote(cls)}) with {key}=True is not supported: expected "
                                   f"{key}=False inside TimeDistributed")
    if merge_none:
        raise call.unsupported(f"TimeDistributed({quote(cls)}) with merge_mode=None is not supported: expected "
                               "one output (merge_mode concat, sum, mul or ave)")


def _time_distributed_embedding(call: LayerCall, config: dict) -> list[Tensor]:
    """TimeDistributed(Embedding) on ids (batch, outer, inner ...): a lookup per id, the Embedding on the whole id
    tensor (the character embedding of NER models: the depends-on-the-definition char+word tagger). Its mask
    differs by Keras: tf-keras reshapes the inner Embedding's ``ids != 0`` back to (batch, outer, inner)
    (tf_keras/src/layers/rnn/time_distributed.py ``compute_mask``: Embedding is a built-in layer, so the reshape
    path); Keras 3's TimeDistributed has no ``compute_mask`` and passes its input's mask on
    (keras/src/layers/rnn/time_distributed.py, ``supports_masking``), so ``mask_zero`` has no effect there."""
    x = call.single_input()
    if x.mask:
        raise call.unsupported("TimeDistributed('Embedding') of a masked input is not supported: expected token "
                               "ids without a mask")
    if call.builder.keras3_masks:
        config = {**config, "mask_zero": False}
    return embedding(call.inner("Embedding", config))


@dataclass
class _StepCall(LayerCall):
    """The wrapped layer of a folding TimeDistributed: its output is ``step_out`` (unfolded after)."""

    step_out: str = ""

    def out(self, t: int = 0) -> str:
        return self.step_out if t == 0 else f"{self.step_out}:{t}"


def _named_node(call: LayerCall, name: str, inputs: list[str], out: str | None = None, *, op: str,
                options: dict | None = None) -> str:
    """A node of ``call`` named ``name`` (with a ' added should that name be taken) whose output is ``out``,
    or its name; returns its output."""
    node = call.add(op, inputs, [out or name], options, name=name)
    node.outputs = [out or node.name]
    return node.outputs[0]


def _folded(call: LayerCall, cls: str, config: dict, handler) -> list[Tensor]:
    """TimeDistributed(Conv1D | pooling | padding | LSTM ...) on ``(batch, outer, steps, features)``: fold_time
    into ``(batch * outer, steps, features)``, the layer (``handler``), unfold_time back to ``(batch, outer, ...)``."""
    x, mask = call.single_input(), call.input_mask
    if (x.mask or mask) and cls not in _FOLDED_RECURRENT:
        raise call.unsupported(f"TimeDistributed({quote(cls)}) of a masked input is not supported: expected "
                               "an unmasked input (masks are folded for the recurrent layers only)")
    image = cls in CONV2D_HANDLERS
    if not x.shape or len(x.shape) != (4 if image else 3):
        expected = "height, width, channels" if image else "steps, features"
        raise call.unsupported(f"TimeDistributed({quote(cls)}) needs an input (batch, outer time, {expected}), "
                               f"found shape {quote(('batch', *(x.shape or ('?',))))}")
    folded = _named_node(call, f"{call.name}/fold", [x.name], op="fold_time")
    inner = _StepCall(call.builder, call.spec, call.index, [Tensor(folded, x.shape[1:])],
                      input_mask=mask and _named_node(call, f"{call.name}/fold_mask", [mask], op="fold_time"),
                      class_name=cls, config=config, step_out=f"{call.name}/step")
    (y,) = handler(inner)
    _named_node(call, f"{call.name}/unfold", [y.name, x.name], call.out(), op="unfold_time")
    return [Tensor(call.out(), (x.shape[0], *y.shape) if y.shape else None,
                   mask and _unfolded_mask(call, cls, mask, sequences=len(y.shape or ()) == 2))]


def _unfolded_mask(call: LayerCall, cls: str, mask: str, sequences: bool) -> str:
    """The mask out of TimeDistributed(recurrent layer) given ``mask (batch, outer, steps)``: the same with
    return_sequences; without, tf-keras' TimeDistributed.compute_mask reduces it to ``any`` over the steps
    (the inner RNN makes no mask), while Keras 3 passes the 3-D mask on unchanged (Layer.compute_mask),
    which no later layer of the model can use (Keras itself fails there)."""
    if sequences:
        return mask
    if call.builder.keras3_masks:
        raise call.unsupported(f"TimeDistributed({quote(cls)}) of a masked input without return_sequences is not "
                               "supported under Keras 3: it passes the (batch, outer, steps) mask on unchanged to "
                               "a (batch, outer, units) output; expected return_sequences=True or no mask")
    return call.builder.mask_not_equal(mask, 0, True, owner=call.name)


def _step_reshape(call: LayerCall) -> list[Tensor]:
    """TimeDistributed(Flatten | Reshape): ``(batch, time, *step)`` -> ``(batch, time, *target)``."""
    x = call.single_input()
    step = x.shape[1:] if x.shape else None
    if not step or None in step:
        raise call.unsupported("TimeDistributed(Flatten/Reshape) needs the size of each step, which the "
                               f"input shape {quote(('batch', *(x.shape or ('?',))))} does not fix")
    size = math.prod(step)
    if call.class_name == "Flatten":
        target = [size]
    else:
        target = list(call.dims("target_shape", call.config.get("target_shape"), unknown=(-1,)))
        known = math.prod(n for n in target if n != -1)
        if target.count(-1) > 1 or (known == 0 or size % known if -1 in target else known != size):
            raise call.error(f"cannot reshape each step {step} to {tuple(target)}")
        target = [size // known if n == -1 else n for n in target]
    call.add("reshape", [x.name], [call.out()], {"shape": [-1, *target]})
    return [Tensor(call.out(), (x.shape[0], *target), x.mask)]


def embedding(call: LayerCall) -> list[Tensor]:
    _refuse_quantized(call)
    x = call.single_input()
    cfg = call.config
    (w,) = call.expect_weights(1, " (embeddings)")
    call.check_shape("embeddings", w.array, (call.size("input_dim", cfg.get("input_dim")),
                                             call.size("output_dim", cfg.get("output_dim"))))
    input_dim, output_dim = (int(n) for n in w.array.shape)
    call.mark_int(x)
    if x.shape is None and x.is_model_input:
        length = cfg.get("input_length")
        x.shape = (None if length is None else call.size("input_length", length),)
    mask = call.mask_not_equal(x, 0, reduce=False) if call.flag("mask_zero", False) else None
    call.add("embedding", [x.name], [call.out()], {"input_dim": input_dim, "output_dim": output_dim},
             {"embeddings": w.array}, weight_paths={"embeddings": w.path})
    shape = (*x.shape, output_dim) if x.shape is not None else None
    return [Tensor(call.out(), shape, mask)]


def masking(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    value = _mask_value(call, call.config.get("mask_value", 0.0))
    mask = call.mask_not_equal(x, value, reduce=True)
    call.add("masking", [x.name], [call.out()], {"mask_value": value}, mask=mask)
    return [Tensor(call.out(), x.shape, mask)]


def repeat_vector(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    n = call.size("n", call.config.get("n"), minimum=0)
    call.expect_rank(x, 1, None)
    call.take(n * ((x.shape[0] if x.shape else None) or 1), f"RepeatVector(n={n}) output")
    call.add("repeat_vector", [x.name], [call.out()], {"n": n})
    return [Tensor(call.out(), (n, *x.shape) if x.shape else None)]


def flatten(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    if call.config.get("data_format") == "channels_first" and x.shape and len(x.shape) > 1:
        raise call.unsupported("Flatten with data_format='channels_first' is not supported")
    call.add("flatten", [x.name], [call.out()])
    size = math.prod(x.shape) if x.shape and None not in x.shape else None
    return [Tensor(call.out(), (size,))]


def reshape(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    target = list(call.dims("target_shape", call.config.get("target_shape"), unknown=(-1,)))
    call.take(math.prod(n for n in target if n != -1), f"Reshape target_shape {target}")
    if target.count(-1) > 1:
        raise call.error(f"target_shape {target} has more than one -1")
    shape = tuple(target)
    if -1 in target:
        known = math.prod(n for n in target if n != -1)
        total = math.prod(x.shape) if x.shape and None not in x.shape else None
        shape = tuple((total // known if total is not None else None) if n == -1 else n for n in target)
    elif x.shape and None not in x.shape and math.prod(x.shape) != math.prod(target):
        raise call.error(f"cannot reshape {('batch', *x.shape)} to {('batch', *target)}")
    call.add("reshape", [x.name], [call.out()], {"shape": target})
    return [Tensor(call.out(), shape)]


def _merged_mask(call: LayerCall, inputs: list[Tensor]) -> str | None:
    """The mask of a merge (Concatenate, Add ...) of ``inputs``.

    tf-keras / Keras 2: the and of the masks that exist, unmasked inputs counting as all-true
    (tf_keras/src/layers/merging/concatenate.py and base_merge.py ``compute_mask``). Keras 3
    takes the *or*: any unmasked input makes the mask all-true, i.e. no mask, different masks
    give a mask_or (keras/src/layers/merging/concatenate.py, base_merge.py).
    """
    masks = [t.mask for t in inputs]
    if not call.builder.keras3_masks:
        return call.mask_and(masks)
    if any(m is None for m in masks):
        return None
    return call.mask_or(masks)


def concatenate(call: LayerCall) -> list[Tensor]:
    ins = call.inputs
    if len(ins) < 2:
        raise call.error(f"expected at least 2 inputs to concatenate, found {len(ins)}")
    axis = call.axis(call.config.get("axis", call.config.get("concat_axis", -1)))
    shapes = [t.shape for t in ins]
    shape = None
    if all(s is not None for s in shapes):
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise call.error(f"cannot concatenate shapes {[('batch', *s) for s in shapes]}")
        a = axis - 1 if axis > 0 else rank + axis
        if not 0 <= a < rank:
            raise call.unsupported(f"concatenation over axis {axis} is not supported")
        sizes = [s[a] for s in shapes]
        shape = tuple((None if None in sizes else sum(sizes)) if i == a else shapes[0][i]
                      for i in range(rank))
        is_last, is_time = a == rank - 1, a == 0 and rank >= 2
    else:
        is_last, is_time = axis == -1, False
    mask = None
    if any(t.mask for t in ins) and not is_last:
        masks = [t.mask for t in ins]
        if not is_time or None in masks:
            raise call.unsupported(f"concatenating masked tensors over axis {axis} is not supported: expected "
                                   "masked inputs joined over the last axis, or every input masked and joined over "
                                   "the time axis (axis 1)")
        # sequences joined on time: Keras joins their masks in order (concatenate.py compute_mask, both Kerases)
        mask = f"{call.out()}/mask"
        call.add("mask_concat", [str(m) for m in masks], [mask], name=mask, class_name="mask", mask_of=call.name)
        axis = 1
    elif any(t.mask for t in ins):
        mask = _merged_mask(call, ins)
    call.add("concatenate", [t.name for t in ins], [call.out()], {"axis": axis})
    return [Tensor(call.out(), shape, mask)]


def merge(call: LayerCall) -> list[Tensor]:
    ins = call.inputs
    if len(ins) < 2 or (call.class_name == "Subtract" and len(ins) != 2):
        raise call.error(f"expected {'2' if call.class_name == 'Subtract' else 'at least 2'} "
                         f"inputs, found {len(ins)}")
    shapes = [t.shape for t in ins if t.shape is not None]
    shape = None
    if shapes:
        rank = max(len(s) for s in shapes)
        full = [s for s in shapes if len(s) == rank]
        shape = tuple(next((s[i] for s in full if s[i] is not None), None) for i in range(rank))
    mask = _merged_mask(call, ins)
    names = [t.name for t in ins]
    masked_values = call.builder.keras3_masks and any(t.mask for t in ins)
    if masked_values and call.class_name in ("Maximum", "Minimum"):
        raise call.unsupported(f"Keras 3 {call.class_name} of masked inputs takes each masked step from the other "
                               "input (base_merge.py _apply_merge_op_and_or_mask), which is not supported; "
                               "expected unmasked inputs")
    if masked_values and call.class_name == "Multiply":
        names = [_keras3_factor(call, t, k) if t.mask else t.name for k, t in enumerate(ins)]
    if masked_values and call.class_name == "Multiply" and mask:  # every input masked: masked steps are 0
        product = _merged_step(call, "product", "multiply", names)
        call.add("masking", [product, mask], [call.out()], {"mask_value": 0.0}, mask=mask)
    else:
        call.add(MERGE_OPS[call.class_name], names, [call.out()])
    return [Tensor(call.out(), shape, mask)]


def _merged_step(call: LayerCall, part: str, op: str, inputs: list[str], options: dict | None = None,
                 mask: str | None = None) -> str:
    """One helper node ``<layer>/<part>`` of a merge; returns its output."""
    node = call.add(op, inputs, [f"{call.name}/{part}"], options, mask=mask, name=f"{call.name}/{part}")
    node.outputs = [node.name]
    return node.name


def _keras3_factor(call: LayerCall, x: Tensor, k: int) -> str:
    """Keras 3 Multiply's factor for a masked input ``x``: ``where(mask, x, 1)`` (keras/src/layers/merging/
    multiply.py ``_merge_function`` replaces masked steps by 1 whether or not the other inputs are masked; tf-keras
    multiplies the values as they are). Built exactly as ``where(mask, x, 0) + (1 - where(mask, 1, 0))``."""
    if x.shape is None or len(x.shape) != 2:
        raise call.unsupported(f"Keras 3 Multiply of a masked input of shape {quote(('batch', *(x.shape or ('?',))))}"
                               " is not supported: expected (batch, time, features)")
    assert x.mask is not None
    kept = _merged_step(call, f"kept{k}", "masking", [x.name, x.mask], {"mask_value": 0.0}, mask=x.mask)
    zeros = _merged_step(call, f"zeros{k}", "scalar", [x.name], {"operation": "multiply", "value": 0.0})
    ones = _merged_step(call, f"ones{k}", "scalar", [zeros], {"operation": "add", "value": 1.0})
    steps = _merged_step(call, f"steps{k}", "masking", [ones, x.mask], {"mask_value": 0.0}, mask=x.mask)
    fill = _merged_step(call, f"fill{k}", "scalar", [steps], {"operation": "subtract", "value": 1.0, "reverse": True})
    return _merged_step(call, f"factor{k}", "binary", [kept, fill], {"operation": "add"})


def keras1_merge(call: LayerCall) -> list[Tensor]:
    if call.config.get("mode_type") == "lambda" or call.config.get("output_shape_type") == "lambda":
        raise call.error("Keras 1 Merge with a Python function as mode holds code; gateport "
                         "refuses to deserialize it", UnsafeError)
    if call.config.get("layers"):
        raise call.unsupported("Keras 1 Merge of sub-models is not supported")
    mode = call.config.get("mode", "sum")
    cls = KERAS1_MERGE_MODES.get(mode) if isinstance(mode, str) else None
    if cls is None:
        raise call.unsupported(f"Merge mode {mode!r} is not supported "
                               f"(supported: {', '.join(KERAS1_MERGE_MODES)})")
    return HANDLERS[cls](call.inner(cls, call.config))


def batch_normalization(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    cfg = call.config
    if cfg.get("mode", 0) != 0:
        raise call.unsupported(f"Keras 1 BatchNormalization mode {cfg['mode']} is not supported")
    if call.flag("renorm", False):
        raise call.unsupported("BatchNormalization with renorm=True is not supported")
    axis = cfg.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise call.unsupported(f"BatchNormalization over axes {axis} is not supported")
        axis = axis[0]
    axis = call.axis(axis)
    if x.shape is not None and axis > 0:
        axis -= len(x.shape) + 1  # as a negative axis, batch included
    roles = _affine_roles(call)
    roles += ["moving_mean", "moving_variance"]
    ws = call.expect_weights(len(roles), f" ({', '.join(roles)})")
    channels = x.shape[axis] if x.shape is not None and -len(x.shape) <= axis < 0 else None
    if channels is None and ws[0].array.ndim == 1:  # unknown input: the four must still agree
        channels = int(ws[0].array.shape[0])
    arrays = {}
    for role, w in zip(roles, ws):
        call.check_shape(role, w.array, (channels,))
        arrays[role] = w.array
    n = arrays["moving_mean"].shape[0]
    like = arrays["moving_mean"]
    arrays.setdefault("gamma", np.ones(n, dtype=like.dtype))
    arrays.setdefault("beta", _zeros(n, like))
    call.add("batch_norm", [x.name], [call.out()], {"epsilon": _epsilon(call, 1e-3), "axis": axis}, arrays,
             weight_paths={role: w.path for role, w in zip(roles, ws)})
    return [Tensor(call.out(), x.shape, x.mask)]


def _one(value, what: str, call: LayerCall) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise call.error(f"expected one {what} for {call.class_name}, found {quote(value)}")
        value = value[0]
    return call.size(what, value)


def _conv_options(call: LayerCall) -> dict:
    """kernel_size, strides, dilation_rate, padding of a Conv1D / DepthwiseConv1D / SeparableConv1D config."""
    cfg = call.config
    _channels_last(call)
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same", "causal"):
        raise call.unsupported(f"{call.class_name} padding {quote(padding)} is not supported")
    return {"kernel_size": _one(cfg.get("kernel_size"), "kernel size", call),
            "strides": _one(cfg.get("strides", 1), "stride", call),
            "dilation_rate": _one(cfg.get("dilation_rate", 1), "dilation rate", call), "padding": padding}


def _conv_steps(steps: int | None, o: dict) -> int | None:
    """Output time steps of a conv1d node with options ``o`` (TensorFlow's rule for valid/same/causal)."""
    if steps is None:
        return None
    span = o["dilation_rate"] * (o["kernel_size"] - 1) + 1
    return (steps - span) // o["strides"] + 1 if o["padding"] == "valid" else -(-steps // o["strides"])


def _add_conv(call: LayerCall, x: Tensor, out: str, conv: dict, kernel: np.ndarray, bias, paths: dict,
              groups: int, activation: str) -> Tensor:
    """One ``conv1d`` node from a Keras kernel ``(k, in / groups, filters)``; the IR keeps ``(filters, in / groups, k)``."""
    filters = int(kernel.shape[2])
    use_bias = bias is not None
    options = {"filters": filters, **conv, "activation": activation, "use_bias": use_bias}
    if groups != 1:
        options["groups"] = groups
    node = call.add("conv1d", [x.name], [out], options,
                    {"weight": np.ascontiguousarray(kernel.transpose(2, 1, 0)),
                     "bias": bias if use_bias else _zeros(filters, kernel)}, weight_paths=paths)
    if out != call.out():  # a second node of the layer (SeparableConv1D's depthwise step): its own name
        call.builder.nodes.remove(node)
        node.name = out
        call.builder.add_node(node)  # renamed with a ' should a hostile config hold that name already
        out = node.outputs[0] = node.name
    return Tensor(out, (_conv_steps(x.shape[0] if x.shape else None, conv), filters))


def conv1d(call: LayerCall) -> list[Tensor]:
    """Conv1D with strides, dilation_rate, padding valid/same/causal and groups (Keras splits the
    channels and the filters into ``groups`` consecutive blocks, as ``nn.Conv1d`` and ONNX Conv do)."""
    x, cfg = call.single_input(), call.config
    conv = _conv_options(call)
    groups = call.size("groups", cfg.get("groups", 1))
    filters = call.size("filters", cfg.get("filters"))
    use_bias = call.flag("use_bias", True)
    ws = call.expect_weights(2 if use_bias else 1)
    kernel = ws[0].array
    call.check_shape("kernel", kernel, (conv["kernel_size"], None, filters))
    n_in = int(kernel.shape[1]) * groups
    if filters % groups:
        raise call.error(f"filters {filters} is not a multiple of groups {groups}")
    call.expect_rank(x, 2, n_in)
    if x.last_dim != n_in:
        raise call.error(f"kernel has shape {tuple(kernel.shape)}, expected ({conv['kernel_size']}, "
                         f"{x.last_dim} / groups {groups}, {filters}) from the config")
    if use_bias:
        call.check_shape("bias", ws[1].array, (filters,))
    paths = {role: w.path for role, w in zip(("kernel", "bias"), ws)}
    act = call.activation(cfg.get("activation", "linear"))
    return [_add_conv(call, x, call.out(), conv, kernel, ws[1].array if use_bias else None, paths, groups, act)]


def _depthwise(call: LayerCall, x: Tensor, out: str, conv: dict, kernel: Weight, bias: Weight | None,
               activation: str) -> Tensor:
    """A depthwise kernel ``(k, in, depth_multiplier)`` as a conv1d with ``groups = in``: output channel
    ``c * depth_multiplier + m`` is input channel ``c`` under kernel ``[:, c, m]``, as in Keras."""
    k = kernel.array
    call.check_shape("depthwise_kernel", k, (conv["kernel_size"], x.last_dim, None))
    n_in, mult = int(k.shape[1]), int(k.shape[2])
    if bias is not None:
        call.check_shape("bias", bias.array, (n_in * mult,))
    paths = {"weight": kernel.path, **({"bias": bias.path} if bias is not None else {})}
    grouped = k.reshape(k.shape[0], 1, n_in * mult)  # (k, 1, in * mult): channel c*mult + m
    return _add_conv(call, x, out, conv, grouped, None if bias is None else bias.array, paths, n_in, activation)


def conv1d_transpose(call: LayerCall) -> list[Tensor]:
    """Conv1DTranspose(filters, kernel_size, strides, padding valid/same, output_padding, dilation_rate): kernel
    ``(k, filters, in)`` stored as ``(in, filters, k)``; output steps and crop as TensorFlow computes them
    (ops.conv1d_transpose_edges). No supports_masking: the mask stops."""
    x, cfg = call.single_input(), call.config
    conv = _conv_options(call)
    if conv["padding"] == "causal":
        raise call.unsupported("Conv1DTranspose padding 'causal' is not supported (Keras refuses it too)")
    out_pad = cfg.get("output_padding")
    if isinstance(out_pad, (list, tuple)) and len(out_pad) == 1:
        out_pad = out_pad[0]
    conv["output_padding"] = None if out_pad is None else call.size("output_padding", out_pad, minimum=0)
    if conv["output_padding"] is not None and conv["output_padding"] >= conv["strides"]:
        raise call.error(f"output_padding {conv['output_padding']}: expected less than strides {conv['strides']}")
    if conv["strides"] > 1 and conv["dilation_rate"] > 1:
        raise call.unsupported("Conv1DTranspose with both strides and dilation_rate above 1 is not supported")
    filters = call.size("filters", cfg.get("filters"))
    use_bias = call.flag("use_bias", True)
    ws = call.expect_weights(2 if use_bias else 1, " (kernel, bias)" if use_bias else " (kernel)")
    call.check_shape("kernel", ws[0].array, (conv["kernel_size"], filters, x.last_dim))
    call.expect_rank(x, 2, int(ws[0].array.shape[2]))
    if use_bias:
        call.check_shape("bias", ws[1].array, (filters,))
    options = {**conv, "filters": filters, "use_bias": use_bias,
               "activation": call.activation(cfg.get("activation", "linear"))}
    steps, before, after = (x.shape[0] if x.shape else None), *conv1d_transpose_edges(options)
    span = (conv["kernel_size"] - 1) * conv["dilation_rate"] + 1
    # one sample of the full output (two input steps where the time is not known) against the budget
    call.take(((1 if steps is None else steps - 1) * conv["strides"] + span) * filters, "Conv1DTranspose output")
    steps = None if steps is None else (steps - 1) * conv["strides"] + span - before + after
    arrays = {"weight": np.ascontiguousarray(ws[0].array.transpose(2, 1, 0)),
              **({"bias": ws[1].array} if use_bias else {})}
    call.add("conv1d_transpose", [x.name], [call.out()], options, arrays,
             weight_paths={role: w.path for role, w in zip(("weight", "bias"), ws)})
    return [Tensor(call.out(), (steps, filters))]


def depthwise_conv1d(call: LayerCall) -> list[Tensor]:
    """DepthwiseConv1D(kernel_size, depth_multiplier, strides, dilation_rate, padding, activation, use_bias)."""
    x, cfg = call.single_input(), call.config
    conv = _conv_options(call)
    call.expect_rank(x, 2)
    use_bias = call.flag("use_bias", True)
    ws = call.expect_weights(2 if use_bias else 1, " (depthwise_kernel, bias)")
    call.check_shape("depthwise_kernel", ws[0].array,
                     (conv["kernel_size"], x.last_dim, call.size("depth_multiplier", cfg.get("depth_multiplier", 1))))
    call.expect_rank(x, 2, int(ws[0].array.shape[1]))
    act = call.activation(cfg.get("activation", "linear"))
    return [_depthwise(call, x, call.out(), conv, ws[0], ws[1] if use_bias else None, act)]


def separable_conv1d(call: LayerCall) -> list[Tensor]:
    """SeparableConv1D as Keras computes it: a depthwise conv1d (strides, dilation, padding, no bias) into
    ``<name>/depthwise``, then a pointwise (kernel 1) conv1d with the bias and the activation."""
    x, cfg = call.single_input(), call.config
    conv = _conv_options(call)
    use_bias = call.flag("use_bias", True)
    ws = call.expect_weights(3 if use_bias else 2, " (depthwise_kernel, pointwise_kernel, bias)")
    filters = call.size("filters", cfg.get("filters"))
    mult = call.size("depth_multiplier", cfg.get("depth_multiplier", 1))
    call.expect_rank(x, 2, int(ws[0].array.shape[1]) if ws[0].array.ndim == 3 else None)
    call.check_shape("depthwise_kernel", ws[0].array, (conv["kernel_size"], x.last_dim, mult))
    call.check_shape("pointwise_kernel", ws[1].array, (1, int(ws[0].array.shape[1]) * mult, filters))
    mid = _depthwise(call, x, f"{call.name}/depthwise", conv, ws[0], None, "linear")
    point = {"kernel_size": 1, "strides": 1, "dilation_rate": 1, "padding": "valid"}
    paths = {"weight": ws[1].path, **({"bias": ws[2].path} if use_bias else {})}
    if use_bias:
        call.check_shape("bias", ws[2].array, (filters,))
    act = call.activation(cfg.get("activation", "linear"))
    return [_add_conv(call, mid, call.out(), point, ws[1].array, ws[2].array if use_bias else None, paths, 1, act)]


def _time_steps(call: LayerCall, x: Tensor) -> int | None:
    call.expect_rank(x, 2)
    return x.shape[0] if x.shape else None


def _channels_last(call: LayerCall) -> None:
    fmt = call.config.get("data_format") or "channels_last"
    if fmt != "channels_last":
        raise call.error(f"data_format: expected channels_last or channels_first, found {quote(fmt)}")


def channels_first_1d(handler: Callable[[LayerCall], list[Tensor]]) -> Callable[[LayerCall], list[Tensor]]:
    """A 1-D conv or pooling layer with ``data_format="channels_first"`` (input ``(batch, channels, time)``, as code
    ported from PyTorch writes it) computes the channels_last layer's numbers on the transposed input, transposed
    back (keras/src/backend/torch/nn.py ``conv`` / ``max_pool`` only move the channel axis), and is read so:
    Permute((2, 1)) into ``<layer>/channels_last``, the channels_last layer, Permute((2, 1)) back to the layer's
    output. No mask passes (none of these layers supports masking)."""

    def read(call: LayerCall) -> list[Tensor]:
        if (call.config.get("data_format") or "channels_last") != "channels_first":
            return handler(call)
        x = call.single_input()
        call.expect_rank(x, 2)
        into = _named_node(call, f"{call.name}/channels_last", [x.name], op="permute", options={"dims": [2, 1]})
        inner = _StepCall(call.builder, call.spec, call.index, [Tensor(into, x.shape[::-1] if x.shape else None)],
                          class_name=call.class_name, config={**call.config, "data_format": "channels_last"},
                          step_out=f"{call.name}/step")
        (y,) = handler(inner)
        _named_node(call, f"{call.name}/channels_first", [y.name], call.out(), op="permute", options={"dims": [2, 1]})
        return [Tensor(call.out(), y.shape[::-1] if y.shape else None)]

    read.__doc__ = f"{handler.__doc__}\n\n    channels_first: {channels_first_1d.__doc__}"
    return read


def global_pooling(call: LayerCall) -> list[Tensor]:
    """GlobalMax/AveragePooling1D over the time axis. Only the average takes the mask (masked steps
    left out of sum and count, keras/src/layers/pooling/global_average_pooling1d.py); the max ignores
    it, as Keras does. Neither passes a mask on."""
    x, cfg = call.single_input(), call.config
    fmt = cfg.get("data_format") or "channels_last"
    if fmt not in ("channels_last", "channels_first"):
        raise call.error(f"data_format: expected channels_last or channels_first, found {quote(fmt)}")
    call.expect_rank(x, 2)
    axis = 1 if fmt == "channels_last" else 2
    keepdims = call.flag("keepdims", False)
    mode = "average" if "Average" in call.class_name else "max"
    mask = call.input_mask if mode == "average" else None
    call.add("global_pool", [x.name], [call.out()], {"mode": mode, "axis": axis, "keepdims": keepdims},
             mask=mask)
    shape = None
    if x.shape:
        feat = x.shape[1] if axis == 1 else x.shape[0]
        shape = ((1, feat) if axis == 1 else (feat, 1)) if keepdims else (feat,)
    return [Tensor(call.out(), shape)]


def pooling(call: LayerCall) -> list[Tensor]:
    """Max/AveragePooling1D: windows of ``pool_size`` every ``strides`` steps; ``same`` pads as
    TensorFlow does, the padding left out of the max and the average."""
    x, cfg = call.single_input(), call.config
    _channels_last(call)
    k = _one(cfg.get("pool_size", 2), "pool size", call)
    strides = _one(cfg.get("strides") or k, "stride", call)
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise call.unsupported(f"{call.class_name} padding {quote(padding)} is not supported")
    steps = _time_steps(call, x)
    if steps is not None:
        steps = (steps - k) // strides + 1 if padding == "valid" else -(-steps // strides)
        if steps < 1:
            raise call.error(f"pool_size {k} is longer than the {x.shape[0]} input steps")
    mode = "average" if "Average" in call.class_name else "max"
    call.add("pool1d", [x.name], [call.out()], {"mode": mode, "pool_size": k, "strides": strides,
                                                  "padding": padding})
    return [Tensor(call.out(), (steps, x.shape[1]) if x.shape else None)]


def permute(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    dims = [call.axis(d) for d in call.dims("dims", call.config.get("dims"))]
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise call.error(f"dims {dims}: expected a permutation of 1..{len(dims)}")
    call.expect_rank(x, len(dims))
    call.add("permute", [x.name], [call.out()], {"dims": dims})
    return [Tensor(call.out(), tuple(x.shape[d - 1] for d in dims) if x.shape else None)]


def _norm_axes(call: LayerCall, x: Tensor, value: object) -> list[int]:
    """Keras axes (batch included) as negative axes, sorted; they must be the trailing ones."""
    axes = value if isinstance(value, (list, tuple)) else [value]
    axes = [call.axis(a) for a in axes]
    if x.shape is None:
        if any(a >= 0 for a in axes):
            raise call.unsupported(f"{call.class_name} over axes {axes} of an input of unknown rank")
        return sorted(axes)
    rank = len(x.shape) + 1
    if any(not -rank <= a < rank for a in axes):
        raise call.error(f"axis {axes}: expected axes of a rank-{rank} input")
    norm = sorted({a % rank - rank for a in axes})
    if len(norm) != len(axes):  # Keras would build its weights with that axis twice
        raise call.error(f"axis {axes}: expected distinct axes")
    if -rank in norm or norm != list(range(-len(norm), 0)):
        raise call.unsupported(f"{call.class_name} over axes {axes} is not supported (only the last "
                               "axes, batch excluded)")
    return norm


def layer_normalization(call: LayerCall) -> list[Tensor]:
    x, cfg = call.single_input(), call.config
    if call.flag("rms_scaling", False):  # Keras 3: x * rsqrt(var(x) + epsilon) * gamma, no beta (keras/src/ops/nn.py)
        _rms(call, x, _epsilon(call, 1e-3), True, "gamma")
        return [Tensor(call.out(), x.shape, x.mask)]
    axes = _norm_axes(call, x, cfg.get("axis", -1))
    roles = _affine_roles(call)
    ws = call.expect_weights(len(roles), f" ({', '.join(roles)})")
    dims = tuple(x.shape[a] for a in axes) if x.shape else None
    arrays = {}
    for role, w in zip(roles, ws):
        call.check_shape(role, w.array, dims if dims is not None else (None,) * w.array.ndim)
        arrays[role] = w.array
    call.add("layer_norm", [x.name], [call.out()],
             {"axes": axes, "epsilon": _number(call, "epsilon", cfg.get("epsilon"), 1e-3)}, arrays,
             weight_paths={role: w.path for role, w in zip(roles, ws)})
    return [Tensor(call.out(), x.shape, x.mask)]


def unit_normalization(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    axes = _norm_axes(call, x, call.config.get("axis", -1))
    call.add("unit_norm", [x.name], [call.out()], {"axes": axes})
    return [Tensor(call.out(), x.shape, x.mask)]


# -- normalization and scaling layers (IR normalization, rescaling, rms_norm, group_norm) -------------
def _array_dims(call: LayerCall, key: str, value: object) -> tuple[int, ...]:
    """The shape of a nested list of numbers from the config (every row the same length), or a one-line error."""
    dims, level = [], value
    while isinstance(level, list):
        dims.append(len(level))
        if len(dims) > MAX_RANK or not level:
            raise call.error(f"{key}: expected a number or a nested list of numbers, found {quote(value)}")
        level = level[0]
    return call.builder.budget.take_array(dims, 8, f"{key} in the config", layer=call.label)


def _numbers_only(call: LayerCall, key: str, value: object) -> None:
    """Every leaf of ``value`` a number (numpy would read "0.5" as one; Keras' cast refuses a string)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
        elif not (isinstance(item, float) or is_finite(item)):  # NaN/inf refused after; an int past float's range here
            raise call.error(f"{key}: expected numbers, found {quote(item)}")


def _config_array(call: LayerCall, key: str, value: object) -> np.ndarray:
    """A number or (nested) list of numbers the config holds (also Keras 3's ``{"class_name": "__numpy__",
    "config": {"value": ...}}``), as float32 as Keras casts it; its size counted against the file's budget."""
    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__"):
        value = (value.get("config") or {}).get("value")
    dims = _array_dims(call, key, value)
    _numbers_only(call, key, value)
    with call.parsing(key):
        array = np.array(value, dtype=np.float64)
    if array.shape != dims or not np.all(np.isfinite(array)):
        raise call.error(f"{key}: expected finite numbers in rows of equal length, found {quote(value)}")
    if array.size and float(np.abs(array).max()) > FLOAT32_MAX:  # infinite once cast: Keras' outputs are +-inf/NaN
        raise call.error(f"{key}: expected numbers within float32's range (+-{FLOAT32_MAX:.4g}), found a magnitude of "
                         f"{float(np.abs(array).max()):.4g}")
    return array.astype(np.float32)


def _keras_axes(call: LayerCall, x: Tensor, value: object) -> tuple[int, ...]:
    """Normalization's kept axes (batch included, sorted, non-negative) from ``axis`` (int, list, None)."""
    axes = [] if value is None else value if isinstance(value, (list, tuple)) else [value]
    axes = [call.axis(a) for a in axes]
    rank = len(x.shape) + 1
    if any(not -rank <= a < rank for a in axes):
        raise call.error(f"axis {axes}: expected axes of a rank-{rank} input")
    keep = tuple(sorted({a % rank for a in axes}))
    if 0 in keep:
        raise call.unsupported(f"Normalization over the batch axis (axis {axes}) is not supported: each "
                               "sample would be normalized by its position in the batch")
    if any(x.shape[a - 1] is None for a in keep):
        raise call.error(f"axis {axes}: Keras needs the kept axes' sizes, found input shape "
                         f"{quote(('batch', *x.shape))}")
    return keep


def _known_input(call: LayerCall) -> Tensor:
    x = call.single_input()
    if not x.shape:
        raise call.unsupported(f"{call.class_name} needs the input's shape (batch, ...), which is not known here")
    return x


def _kept_mask(call: LayerCall, x: Tensor) -> str | None:
    """Keras 3's Normalization and Rescaling pass the mask on (supports_masking); tf-keras' do not."""
    return x.mask if call.builder.keras3_masks else None


def normalization(call: LayerCall) -> list[Tensor]:
    """Normalization with adapted ``mean``/``variance`` (``count`` ignored) or ``mean``/``variance`` in the
    config (broadcast to the kept axes from the right, as Keras 3's build and tf-keras' ``mean * ones`` do)."""
    x, cfg = _known_input(call), call.config
    keep = _keras_axes(call, x, cfg.get("axis", -1))
    kept = tuple(x.shape[a - 1] for a in keep)
    given = cfg.get("mean") is not None or cfg.get("variance") is not None
    if given:
        if cfg.get("mean") is None or cfg.get("variance") is None:
            raise call.error("expected both mean and variance in the config, found one")
        mean, var = (_config_array(call, k, cfg.get(k)) for k in ("mean", "variance"))
        if mean.shape != var.shape or mean.ndim > len(kept) or \
                any(m not in (1, k) for m, k in zip(mean.shape[::-1], kept[::-1])):
            raise call.error(f"mean {mean.shape} and variance {var.shape}: expected equal shapes that broadcast "
                             f"to the kept axes' {kept}")
        mean, var, paths = np.broadcast_to(mean, kept), np.broadcast_to(var, kept), {}
    else:
        ws = call.expect_weights((2, 3), " (mean, variance, count)")
        for role, w in zip(("mean", "variance"), ws):
            call.check_shape(role, w.array, kept)
        mean, var, paths = ws[0].array, ws[1].array, {"mean": ws[0].path, "variance": ws[1].path}
    with call.parsing("mean and variance"):
        bad = not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var >= 0))
    if bad:
        raise call.error("mean and variance: expected finite numbers and a variance >= 0 (Keras would output NaN)")
    sample = tuple(x.shape[i] if i + 1 in keep else 1 for i in range(len(x.shape)))
    arrays = {"mean": np.ascontiguousarray(mean).reshape(sample), "variance": np.ascontiguousarray(var).reshape(sample)}
    call.add("normalization", [x.name], [call.out()], {"invert": call.flag("invert", False), "epsilon": 1e-7},
             arrays, weight_paths=paths)
    return [Tensor(call.out(), x.shape, _kept_mask(call, x))]


def _broadcast_param(call: LayerCall, x: Tensor, key: str, value: object) -> np.ndarray:
    """Rescaling's ``scale`` / ``offset`` against one sample: numpy's right-aligned broadcasting, leading size-1
    axes (over the batch) dropped; each size 1 or the input's (Keras keeps the input's shape)."""
    array = _config_array(call, key, value)
    while array.ndim > len(x.shape) and array.shape[0] == 1:
        array = array[0]
    if array.ndim > len(x.shape) or any(a != 1 and a != d for a, d in zip(array.shape[::-1], x.shape[::-1])):
        raise call.unsupported(f"{key} of shape {array.shape} does not broadcast to the input's "
                               f"{quote(('batch', *x.shape))} without changing its shape")
    return array.reshape(array.shape or (1,))


def rescaling(call: LayerCall) -> list[Tensor]:
    x, cfg = _known_input(call), call.config
    if cfg.get("scale") is None:
        raise call.error("expected scale in the config, found none")
    arrays = {key: _broadcast_param(call, x, key, cfg.get(key, default))
              for key, default in (("scale", None), ("offset", 0.0))}
    call.add("rescaling", [x.name], [call.out()], {}, arrays)
    return [Tensor(call.out(), x.shape, _kept_mask(call, x))]


def _affine_roles(call: LayerCall) -> list[str]:
    """The learned ``gamma`` / ``beta`` a normalization stores, in Keras' order: where ``scale`` / ``center``."""
    return [role for role, key in (("gamma", "scale"), ("beta", "center")) if call.flag(key, True)]


def _epsilon(call: LayerCall, default: float) -> float:
    """The config's ``epsilon``: a finite number >= 0 (a negative one could take a root of a negative)."""
    epsilon = _number(call, "epsilon", call.config.get("epsilon"), default)
    if epsilon < 0:
        raise call.error(f"epsilon: expected a number >= 0, found {epsilon}")
    return epsilon


def _rms(call: LayerCall, x: Tensor, epsilon: float, centered: bool, role: str) -> None:
    axes = _norm_axes(call, x, call.config.get("axis", -1))
    (w,) = call.expect_weights(1, f" ({role})")
    call.check_shape(role, w.array, tuple(x.shape[a] for a in axes) if x.shape else (None,) * w.array.ndim)
    call.add("rms_norm", [x.name], [call.out()], {"axes": axes, "epsilon": epsilon, "centered": centered},
             {"scale": w.array}, weight_paths={"scale": w.path})


def rms_normalization(call: LayerCall) -> list[Tensor]:
    """Keras 3.9+ RMSNormalization: ``x * rsqrt(mean(x^2) + epsilon) * scale``; no supports_masking: the mask stops."""
    x = call.single_input()
    _rms(call, x, _epsilon(call, 1e-6), False, "scale")
    return [Tensor(call.out(), x.shape)]


def group_normalization(call: LayerCall) -> list[Tensor]:
    """GroupNormalization(groups, axis=-1) of (batch, [time, ...,] channels). Keras 3 passes the mask on and
    ignores it; tf-keras weighs the moments by the mask broadcast against the input: refused there."""
    x, cfg = _known_input(call), call.config
    rank = len(x.shape) + 1
    axis = call.axis(cfg.get("axis", -1))
    if axis not in (-1, rank - 1):
        raise call.unsupported(f"GroupNormalization over axis {axis} is not supported (only the last axis)")
    if (x.mask or call.input_mask) and not call.builder.keras3_masks:
        raise call.unsupported("tf-keras GroupNormalization of a masked input is not supported (it weighs the "
                               "moments by the mask broadcast against the input)")
    channels = x.shape[-1]
    if channels is None:
        raise call.error("GroupNormalization needs the channels' size, which the input shape does not fix")
    groups = cfg.get("groups", 32)
    groups = channels if groups == -1 else call.size("groups", groups)
    if groups > channels or channels % groups:
        raise call.error(f"groups {groups}: expected a divisor of the {channels} channels")
    roles = _affine_roles(call)
    ws = call.expect_weights(len(roles), f" ({', '.join(roles)})")
    for role, w in zip(roles, ws):
        call.check_shape(role, w.array, (channels,))
    call.add("group_norm", [x.name], [call.out()],
             {"groups": groups, "epsilon": _epsilon(call, 1e-3)},
             {role: w.array for role, w in zip(roles, ws)}, weight_paths={role: w.path for role, w in zip(roles, ws)})
    return [Tensor(call.out(), x.shape, x.mask)]


def _pair(call: LayerCall, key: str, default) -> list[int]:
    value = call.config.get(key, default)
    value = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise call.error(f"{key}: expected an integer or a pair, found {quote(value)}")
    return [call.size(key, v, minimum=0) for v in value]


def cropping(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    left, right = _pair(call, "cropping", (1, 1))
    steps = _time_steps(call, x)
    if steps is not None:
        steps -= left + right
        if steps < 0:
            raise call.error(f"cropping {left}+{right} steps of {x.shape[0]}")
    call.add("crop1d", [x.name], [call.out()], {"cropping": [left, right]})
    return [Tensor(call.out(), (steps, x.shape[1]) if x.shape else None)]


def zero_padding(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    _channels_last(call)
    left, right = _pair(call, "padding", 1)
    steps = _time_steps(call, x)
    call.take((left + right) * ((x.shape[1] if x.shape else None) or 1), "ZeroPadding1D output")
    call.add("zero_pad1d", [x.name], [call.out()], {"padding": [left, right]})
    return [Tensor(call.out(), (None if steps is None else steps + left + right, x.shape[1]) if x.shape else None)]


def upsampling(call: LayerCall) -> list[Tensor]:
    x = call.single_input()
    size = _one(call.config.get("size", 2), "size", call)
    steps = _time_steps(call, x)
    call.take(size * math.prod(d or 1 for d in (x.shape or ())), f"UpSampling1D(size={size}) output")
    call.add("upsample1d", [x.name], [call.out()], {"size": size})
    return [Tensor(call.out(), (None if steps is None else steps * size, x.shape[1]) if x.shape else None)]


HANDLERS = {
    **{cls: identity for cls in IDENTITY_CLASSES},
    "Activation": activation,
    "Softmax": activation,
    "ReLU": relu,
    "LeakyReLU": relu,
    "ELU": elu,
    "PReLU": prelu,
    "GlobalMaxPooling1D": global_pooling,
    "GlobalAveragePooling1D": global_pooling,
    "GlobalMaxPool1D": global_pooling,
    "GlobalAvgPool1D": global_pooling,
    "MaxPooling1D": channels_first_1d(pooling),
    "AveragePooling1D": channels_first_1d(pooling),
    "MaxPool1D": channels_first_1d(pooling),
    "AvgPool1D": channels_first_1d(pooling),
    "Permute": permute,
    "LayerNormalization": layer_normalization,
    "UnitNormalization": unit_normalization,
    "Normalization": normalization,
    "Rescaling": rescaling,
    "RMSNormalization": rms_normalization,
    "GroupNormalization": group_normalization,
    "Cropping1D": cropping,
    "ZeroPadding1D": zero_padding,
    "UpSampling1D": upsampling,
    "Dense": dense,
    "EinsumDense": einsum_dense,
    "TimeDistributed": time_distributed,
    "Embedding": embedding,
    "Masking": masking,
    "RepeatVector": repeat_vector,
    "Flatten": flatten,
    "Reshape": reshape,
    "Concatenate": concatenate,
    **{cls: merge for cls in MERGE_OPS},
    "Merge": keras1_merge,
    "BatchNormalization": batch_normalization,
    "Conv1D": channels_first_1d(conv1d),
    "DepthwiseConv1D": channels_first_1d(depthwise_conv1d),
    "SeparableConv1D": channels_first_1d(separable_conv1d),
    "SeparableConvolution1D": channels_first_1d(separable_conv1d),
    "Conv1DTranspose": channels_first_1d(conv1d_transpose),
    "Convolution1DTranspose": channels_first_1d(conv1d_transpose),
    **CONV2D_HANDLERS,
}

_TWO_D = ("only 1-D sequence layers (batch, time, features) and Conv2D, Conv3D, "
          "Max/AveragePooling2D, GlobalMax/AveragePooling2D, ZeroPadding2D of images are supported")
#: Keras layer classes gateport refuses on purpose, with the reason (README, "Keras layers still refused").
REFUSED = {
    "GroupQueryAttention": "grouped-query attention is not supported yet (Attention, AdditiveAttention and "
                           "MultiHeadAttention are)",
    "ConvLSTM3D": "ConvLSTM3D is not supported (ConvLSTM1D and ConvLSTM2D are)",
    # RNN of LSTMCell | GRUCell | SimpleRNNCell or a stack of them is read; keras_build names the others
    "RNN": "only RNN of LSTMCell, GRUCell, SimpleRNNCell or a StackedRNNCells / list of them is supported "
           "(custom cells hold Python code)",
    "Lambda": "a Lambda layer holds Python code, which gateport refuses to deserialize",
    **{cls: _TWO_D for cls in
       ("MaxPooling3D", "AveragePooling3D", "GlobalMaxPooling3D", "GlobalAveragePooling3D",
        "Cropping2D", "Cropping3D", "ZeroPadding3D", "UpSampling2D", "UpSampling3D",
        "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D")},
    **{cls: "preprocessing layers are not supported: apply them to the data before the model" for cls in
       ("TextVectorization", "StringLookup", "IntegerLookup", "Hashing", "Discretization", "CategoryEncoding",
        "Resizing")},
    "LocallyConnected1D": "this convolution is not supported yet (Conv1D and Conv1DTranspose are)",
    "SpectralNormalization": "this normalization is not supported yet (Batch/Layer/Unit/Group/RMSNormalization "
                             "are)",
}
