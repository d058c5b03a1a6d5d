"""The numpy forward pass of the IR: the oracle every writer is tested against.

Plain float64 numpy written from each op's equations (converters/ir.py lists them), independent of
any reader or writer. Recurrent ops live in :mod:`converters.reference_rnn`.

    run(model, inputs) -> Outputs: [outputs in model.outputs order], also read by name: out["dense"]
    run_node(node, values) -> [outputs of one node]
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .errors import InputsError, UnsupportedError
from .ir import Model, Node, int_option
from .ops import OPS as OPS_TABLE
from .reference_attention import OPS as ATTENTION_OPS
from .reference_norms import OPS as NORM_OPS
from .reference_conv2d import OPS as CONV2D_OPS
from .reference_conv_lstm import run_conv_lstm
from .reference_tf_ops import OPS as TF_OPS
from .reference_rnn import activation, run_recurrent
from .sanitize import quote


def _f64(a) -> np.ndarray:
    """float64, C-contiguous: equal weights give equal outputs whatever view of them the IR holds."""
    return np.asarray(a, dtype=np.float64, order="C")



def _act(node: Node, x: np.ndarray) -> np.ndarray:
    return activation(node, node.options.get("activation"))(x)


def _bias(node: Node, units: int) -> np.ndarray:
    b = node.weights.get("bias")
    return np.zeros(units) if b is None else _f64(b)


def _dense(node, x):
    w = _f64(node.weights["weight"])
    return _act(node, x @ w.T + _bias(node, w.shape[0]))


def _embedding(node, ids):
    return _f64(node.weights["embeddings"])[np.asarray(ids, dtype=np.int64)]


def _mask_not_equal(node, x):
    mask = x != node.options["value"]
    return mask.any(axis=-1) if node.options.get("reduce") else mask


def _masking(node, x, mask=None):
    """Keras ``Masking``: zero every time step whose features all equal ``mask_value``."""
    if mask is None:
        mask = (x != node.options["mask_value"]).any(axis=-1)
    return np.where(np.asarray(mask, dtype=bool)[..., None], x, 0.0)


def _batch_norm(node, x):
    o, w = node.options, node.weights
    axis = o["axis"]
    axis = axis[0] if isinstance(axis, (list, tuple)) else axis
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]

    def param(name, default):
        return _f64(w[name]).reshape(shape) if name in w else default

    mean, var = param("moving_mean", 0.0), param("moving_variance", 1.0)
    gamma, beta = param("gamma", 1.0), param("beta", 0.0)
    return (x - mean) / np.sqrt(var + o["epsilon"]) * gamma + beta


def _conv1d_padding(padding: str, length: int, span: int, stride: int) -> tuple[int, int]:
    """(left, right) zero padding of the time axis; ``span`` is the dilated kernel length."""
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    if padding == "same":  # TensorFlow's rule, which Keras 3 reproduces on every backend
        out = -(-length // stride)
        total = max((out - 1) * stride + span - length, 0)
        return total // 2, total - total // 2
    raise UnsupportedError(f"expected conv1d padding valid|same|causal, found {padding!r}")


def _conv1d(node, x):
    """Keras Conv1D, channels last: ``y[t] = sum_j x[t*s + j*d] W[:, :, j]^T + b``, per group of
    consecutive channels and filters (``groups``; a depthwise convolution has one channel per group)."""
    o = node.options
    w = _f64(node.weights["weight"])  # (filters, in, k)
    k = w.shape[2]
    stride, dilation = int_option(o.get("strides"), 1), int_option(o.get("dilation_rate"), 1)
    span = (k - 1) * dilation + 1
    try:
        left, right = _conv1d_padding(o["padding"], x.shape[1], span, stride)
    except UnsupportedError as e:
        raise e.at(layer=node.label())
    xp = np.pad(x, ((0, 0), (left, right), (0, 0)))
    n_out = (xp.shape[1] - span) // stride + 1
    groups = int_option(o["groups"], 1)
    n_in, n_out_ch = w.shape[1], w.shape[0] // groups  # channels and filters of one group
    y = np.concatenate([
        sum(xp[:, j * dilation: j * dilation + (n_out - 1) * stride + 1: stride, g * n_in:(g + 1) * n_in]
            @ w[g * n_out_ch:(g + 1) * n_out_ch, :, j].T for j in range(k))
        for g in range(groups)], axis=-1)
    return _act(node, y + _bias(node, w.shape[0]))


def _repeat_vector(node, x):
    return np.repeat(x[:, None], int(node.options["n"]), axis=1)


def _concatenate(node, *xs):
    return np.concatenate(xs, axis=int(node.options["axis"]))


def _reduce(fn):
    def merge(node, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return merge


def _relu(node, x):
    """Keras ReLU/LeakyReLU (keras/src/activations/activations.py ``ReLU.static_call``)."""
    o = node.options
    t, slope, top = float(o["threshold"]), float(o["negative_slope"]), o.get("max_value")
    y = x * (x > t) if t != 0 else np.maximum(x, 0)
    if top is not None:
        y = np.clip(y, 0.0, float(top))
    return y - slope * np.maximum(t - x, 0) if slope else y


def _prelu(node, x):
    return np.maximum(x, 0) - _f64(node.weights["alpha"]) * np.maximum(-x, 0)


def _global_pool(node, x, mask=None):
    o = node.options
    axis, keep = int(o["axis"]), bool(o.get("keepdims"))
    if o["mode"] == "max":
        return x.max(axis=axis, keepdims=keep)
    if mask is None:
        return x.mean(axis=axis, keepdims=keep)
    m = np.expand_dims(np.asarray(mask, dtype=bool), 2 if axis == 1 else 1)
    return np.where(m, x, 0.0).sum(axis=axis, keepdims=keep) / m.sum(axis=axis, keepdims=keep)


def _pool1d(node, x):
    """Windows over the time axis; ``same`` padding (TensorFlow's rule) takes no part in max or mean."""
    o = node.options
    k = int_option(o["pool_size"], 1)
    s = int_option(o.get("strides") or k, 1)
    left, right = _conv1d_padding(o["padding"], x.shape[1], k, s)
    valid = np.pad(np.ones(x.shape[1], bool), (left, right))
    xp = np.pad(x, ((0, 0), (left, right), (0, 0)))
    n_out = (xp.shape[1] - k) // s + 1
    if n_out < 1:
        raise UnsupportedError(f"expected at least pool_size {k} time steps, found {x.shape[1]}", layer=node.label())
    out = []
    for i in range(n_out):
        win, ok = xp[:, i * s: i * s + k], valid[i * s: i * s + k]
        out.append(win[:, ok].max(axis=1) if o["mode"] == "max" else win[:, ok].mean(axis=1))
    return np.stack(out, axis=1)


def _layer_norm(node, x):
    axes = tuple(node.options["axes"])
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + float(node.options["epsilon"]))
    w = node.weights
    return y * (_f64(w["gamma"]) if "gamma" in w else 1.0) + (_f64(w["beta"]) if "beta" in w else 0.0)


def _unit_norm(node, x):
    square_sum = (x * x).sum(axis=tuple(node.options["axes"]), keepdims=True)
    with np.errstate(divide="ignore"):
        return x * np.minimum(1.0 / np.sqrt(square_sum), 1e12)


def _crop1d(node, x):
    left, right = (int(v) for v in node.options["cropping"])
    return x[:, left: x.shape[1] - right]


#: op -> f(node, *input arrays) -> one array. Recurrent ops are handled by run_recurrent.
OPS = {
    "dense": _dense,
    "embedding": _embedding,
    "mask_not_equal": _mask_not_equal,
    "mask_and": lambda node, *masks: np.logical_and.reduce([np.asarray(m, dtype=bool) for m in masks]),
    "mask_or": lambda node, *masks: np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks]),
    "mask_concat": lambda node, *masks: np.concatenate([np.asarray(m, dtype=bool) for m in masks], axis=1),
    "mask_lengths": lambda node, lengths, x: np.arange(np.shape(x)[1]) < np.asarray(lengths, np.int64)[:, None],
    "masking": _masking,
    "repeat_vector": _repeat_vector,
    "concatenate": _concatenate,
    "add": _reduce(np.add),
    "subtract": lambda node, a, b: a - b,
    "multiply": _reduce(np.multiply),
    "average": lambda node, *xs: sum(xs) / len(xs),
    "maximum": _reduce(np.maximum),
    "minimum": _reduce(np.minimum),
    "activation": _act,
    "identity": lambda node, x: x,
    "flatten": lambda node, x: x.reshape(x.shape[0], -1),
    "reshape": lambda node, x: x.reshape(x.shape[0], *node.options["shape"]),
    "batch_norm": _batch_norm,
    "conv1d": _conv1d,
    "relu": _relu,
    "elu": lambda node, x: np.where(x > 0, x, float(node.options["alpha"]) * np.expm1(np.minimum(x, 0))),
    "prelu": _prelu,
    "global_pool": _global_pool,
    "pool1d": _pool1d,
    "permute": lambda node, x: x.transpose(0, *(int(d) for d in node.options["dims"])),
    "layer_norm": _layer_norm,
    "unit_norm": _unit_norm,
    "crop1d": _crop1d,
    "zero_pad1d": lambda node, x: np.pad(x, ((0, 0), tuple(int(v) for v in node.options["padding"]), (0, 0))),
    "upsample1d": lambda node, x: np.repeat(x, int(node.options["size"]), axis=1),
    "fold_time": lambda node, x: x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]),
    "unfold_time": lambda node, y, x: y.reshape(x.shape[0], x.shape[1], *y.shape[1:]),
    **ATTENTION_OPS,  # attention, multi_head_attention, dot, masked_softmax (several outputs: a list)
    **NORM_OPS,  # normalization, rescaling, rms_norm, group_norm
    **CONV2D_OPS,  # conv2d, pool2d
    "conv_lstm": run_conv_lstm,  # [y] or [y, h, c]
    **TF_OPS,  # slice, reduce, scalar, binary (TensorFlow / Keras 3 calls)
}
#: Non-recurrent ops that consume their node's ``mask`` (passed as the last argument): the op table's mask rule.
MASK_CONSUMERS = tuple(op for op, row in OPS_TABLE.items() if row.mask == "consumes" and not row.states)


def run_node(node: Node, values: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """One node's outputs, reading its inputs (and mask) by name from ``values``."""
    args = [values[name] for name in node.inputs]
    mask = values[node.mask] if node.mask else None
    if node.is_recurrent:
        return run_recurrent(node, _f64(args[0]), [_f64(s) for s in args[1:]], mask)
    if node.op not in OPS:
        raise UnsupportedError(f"expected an op of the IR ({', '.join(sorted(OPS))}), found {node.op!r}",
                               layer=node.label())
    if node.op in MASK_CONSUMERS and mask is not None and len(args) == 1:
        args.append(mask)
    out = OPS[node.op](node, *args)
    return out if isinstance(out, list) else [out]


def _bind_inputs(model: Model, inputs) -> dict[str, np.ndarray]:
    if not isinstance(inputs, Mapping):
        inputs = list(inputs) if isinstance(inputs, Sequence) else [inputs]
        if len(inputs) != len(model.inputs):
            raise InputsError(f"expected {len(model.inputs)} inputs, found {len(inputs)}")
        inputs = {spec.name: a for spec, a in zip(model.inputs, inputs)}
    values = {}
    for spec in model.inputs:
        if spec.name not in inputs:
            raise InputsError(f"expected input {quote(spec.name)}, found only {quote(sorted(map(str, inputs)))}")
        a = np.asarray(inputs[spec.name])
        # a bool input is a mask: any other dtype is cast as Keras casts a mask (nonzero is true)
        values[spec.name] = a.astype(bool if spec.dtype == "bool" else np.int64 if "int" in str(spec.dtype)
                                     else np.float64)
    return values


class Outputs(list):
    """What :func:`run` returns: the outputs as a list in ``model.outputs`` order, also read by name.

    >>> y = run(model, {"x": x})
    >>> y[0] is y["dense"], list(y.keys()), dict(y)["dense"].shape
    (True, ['dense'], (2, 3))
    """

    def __init__(self, names: Sequence[str], arrays: Sequence[np.ndarray]):
        super().__init__(arrays)
        self.names = list(names)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"expected an output of {self.names}, found {key!r}")
            return list.__getitem__(self, self.names.index(key))
        return list.__getitem__(self, key)

    def keys(self) -> list[str]:
        """The output names (so ``dict(outputs)`` is a dict keyed by output name)."""
        return list(self.names)

    def items(self) -> list[tuple[str, np.ndarray]]:
        return list(zip(self.names, self))


def run(model: Model, inputs) -> Outputs:
    """The model's outputs in float64 for ``inputs``: a dict keyed by the model's input names
    (``[s.name for s in model.inputs]``), a list in that order, or one array for a one-input model.

    Returns :class:`Outputs`: a list in ``model.outputs`` order that is also indexed by output name.
    """
    values = _bind_inputs(model, inputs)
    for node in model.nodes:
        outputs = run_node(node, values)
        if len(outputs) != len(node.outputs):
            raise UnsupportedError(f"expected {len(node.outputs)} outputs, found {len(outputs)}",
                                   layer=node.label())
        values.update(zip(node.outputs, outputs))
    return Outputs(model.outputs, [np.asarray(values[name], dtype=np.float64) for name in model.outputs])
