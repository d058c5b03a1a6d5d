"""TensorFlow calls in tf.keras functional models (``TFOpLambda``, ``SlicingOpLambda``) and Keras 3
operation nodes (``keras.ops.*`` on symbolic tensors) -> IR nodes, through ONE whitelist.

tf-keras 2.x records ``tf.reduce_sum(x, axis=1)`` as a layer of class TFOpLambda with config
``{"function": "math.reduce_sum"}``, its first argument in the inbound node and the others in the
node's keyword arguments (tf_keras/src/layers/core/tf_op_layer.py); ``x[:, -1]`` as SlicingOpLambda
``__operators__.getitem`` with ``slice_spec`` (slices as ``{"start", "stop", "step"}``). Keras 3
records ``keras.ops.sum(x, axis=1)`` as an operation node (module ``keras.src.ops.numpy``, class
``Sum``) with its options in the config and its arguments, tensors and constants, in order in the
inbound node's ``args`` (slices as ``__slice__``). Both are read into the same kinds of
:data:`KINDS`; nothing is imported or called by name: a function outside :data:`TF_FUNCTIONS` /
:data:`KERAS3_OPS` is refused in one line that lists what is supported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..ops import MAX_RANK, MAX_SIZE, is_finite, is_int
from ..sanitize import quote
from .keras_config import _as_ref, _is_ref
from .keras_context import LayerCall, Tensor

#: tf-keras layer classes that hold a TensorFlow call.
TF_OP_CLASSES = ("TFOpLambda", "SlicingOpLambda")
_BINARY = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power")
#: kinds that are the IR activation of the same name
_ACTIVATIONS = ("tanh", "sigmoid", "relu", "exponential", "elu", "selu", "softplus", "softsign", "relu6", "swish",
                "abs", "sqrt", "log", "hard_sigmoid_keras3", "hard_silu", "log_sigmoid")
#: TFOpLambda/SlicingOpLambda ``function`` -> kind.
TF_FUNCTIONS = {
    "__operators__.getitem": "getitem",
    "__operators__.add": "add", "math.add": "add", "math.subtract": "subtract", "math.multiply": "multiply",
    "math.truediv": "divide", "math.divide": "divide", "math.maximum": "maximum", "math.minimum": "minimum",
    "math.pow": "power",
    "math.reduce_mean": "mean", "math.reduce_sum": "sum", "math.reduce_max": "max", "math.reduce_min": "min",
    "reverse": "flip", "math.negative": "negative", "math.square": "square", "stack": "stack", "cast": "cast",
    "nn.gelu": "gelu", "clip_by_value": "clip", "split": "split", "unstack": "unstack", "tile": "tile", "expand_dims": "expand_dims", "compat.v1.squeeze": "squeeze", "squeeze": "squeeze",
    "concat": "concat", "compat.v1.transpose": "transpose", "transpose": "transpose", "reshape": "reshape",
    "nn.softmax": "softmax", "math.softmax": "softmax", "linalg.matmul": "matmul",
    "math.tanh": "tanh", "math.sigmoid": "sigmoid", "nn.sigmoid": "sigmoid", "nn.relu": "relu",
    "math.exp": "exponential", "nn.elu": "elu", "nn.selu": "selu", "math.softplus": "softplus",
    "nn.softplus": "softplus", "nn.softsign": "softsign", "nn.relu6": "relu6", "nn.silu": "swish",
    "math.not_equal": "not_equal", "math.reduce_any": "any",
    "math.abs": "abs", "math.sqrt": "sqrt", "math.log": "log",
    "math.reduce_variance": "var", "math.reduce_std": "std", "nn.log_softmax": "log_softmax",
    "repeat": "repeat", "math.l2_normalize": "l2_normalize",
    "compat.v1.norm": "norm", "nn.leaky_relu": "leaky_relu", "math.rsqrt": "rsqrt", "math.reciprocal": "reciprocal",
    "math.log_sigmoid": "log_sigmoid",
}
#: kinds that compute a mask (``tf.not_equal(ids, 0)``, ``tf.reduce_any(..., axis=-1)``): kept symbolic, as
#: keras_build keeps Keras 3's NotEqual/Any op nodes, until a layer takes the result as its ``mask``
MASK_KINDS = ("not_equal", "any")
#: Keras 3 operation class -> kind.
KERAS3_OPS = {
    "GetItem": "getitem", "Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Divide": "divide",
    "TrueDivide": "divide", "Maximum": "maximum", "Minimum": "minimum", "Power": "power",
    "Mean": "mean", "Sum": "sum", "Max": "max", "Min": "min", "ExpandDims": "expand_dims", "Flip": "flip",
    "Negative": "negative", "Square": "square", "Stack": "stack", "Gelu": "gelu", "Clip": "clip", "Split": "split", "Unstack": "unstack", "Tile": "tile", "Squeeze": "squeeze",
    "Concatenate": "concat", "Transpose": "transpose", "Reshape": "reshape", "Softmax": "softmax",
    "Matmul": "matmul", "Tanh": "tanh", "Sigmoid": "sigmoid", "Relu": "relu", "Exp": "exponential", "Elu": "elu",
    "Selu": "selu", "Softplus": "softplus", "Softsign": "softsign", "Relu6": "relu6", "Silu": "swish",
    "Absolute": "abs", "Abs": "abs", "Sqrt": "sqrt", "Log": "log",
    "Swapaxes": "swapaxes", "Moveaxis": "moveaxis", "Repeat": "repeat", "LogSoftmax": "log_softmax",
    "Norm": "norm", "Normalize": "normalize", "Var": "var", "Std": "std",
    "HardSigmoid": "hard_sigmoid_keras3", "HardSilu": "hard_silu", "LogSigmoid": "log_sigmoid",
    "LeakyRelu": "leaky_relu", "Rsqrt": "rsqrt", "Reciprocal": "reciprocal", "Einsum": "einsum",
}


@dataclass
class Args:
    """One call's arguments, whichever Keras wrote them: positional operands (Tensor, a list of them, or
    a constant) and named parameters."""

    operands: list[Any]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    """How to read one kind: the builder, the names of its tensor operands in TensorFlow's signature
    (the first arrives in the inbound node, the others as keyword arguments), and its parameters with
    their defaults (any other parameter is refused; a tuple default lists the values accepted)."""

    build: Callable[[LayerCall, Args], Tensor | list[Tensor]]
    operands: tuple[str, ...] = ("x",)
    params: dict[str, Any] = field(default_factory=dict)


# -- argument checks ----------------------------------------------------------------------------
def _rank(call: LayerCall, x: Any, what: str = "input") -> int:
    """The rank of tensor ``x``, batch included."""
    if not isinstance(x, Tensor):
        raise call.unsupported(f"{what}: expected a tensor, found {quote(x, 80)}")
    if x.pending:
        raise call.unsupported(f"{what}: expected a data tensor, found a mask operation")
    if x.shape is None:
        raise call.unsupported(f"{what}: cannot tell its rank (no shape is known)")
    return len(x.shape) + 1


def _axis(call: LayerCall, value: object, rank: int, what: str = "axis", extra: int = 0) -> int:
    """A Keras axis (batch included; negative from the end) of a rank-``rank`` tensor, never the batch."""
    if not is_int(value):
        raise call.error(f"{what}: expected an integer, found {quote(value, 80)}")
    n = rank + extra
    if not -n <= value < n:
        raise call.error(f"{what}: expected an axis from {-n} to {n - 1} for a tensor of rank {rank}, "
                         f"found {value}")
    axis = value % n
    if axis == 0:
        raise call.unsupported(f"{what} {value} is the batch axis: only per-sample operations are supported")
    return axis


def _axes(call: LayerCall, value: object, rank: int) -> list[int]:
    if value is None:
        raise call.unsupported("axis None reduces over the batch axis too: only per-sample operations are "
                               "supported")
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > MAX_RANK:
        raise call.error(f"axis: expected 1 to {MAX_RANK} axes, found {len(items)}")
    axes = [_axis(call, a, rank) for a in items]
    if len(set(axes)) != len(axes):
        raise call.error(f"axis: expected distinct axes, found {quote(value, 80)}")
    return sorted(axes)


def _flag(call: LayerCall, args: Args, key: str) -> bool:
    return call.flag(key, False, args.params)


def _number(call: LayerCall, value: object, what: str) -> float:
    if not is_finite(value):
        raise call.unsupported(f"{what}: expected a tensor or a finite number, found {quote(value, 80)}")
    return float(value)


def _out(call: LayerCall, x: Tensor, shape: tuple | None) -> Tensor:
    return Tensor(call.out(), shape, dtype=x.dtype)


def _fresh(call: LayerCall, suffix: str) -> str:
    """A name for an intermediate tensor of this call (``<call>/<suffix>``) that no layer of the graph and no
    tensor built so far has (a stranger's layer may be named so)."""
    builder = call.builder
    taken = {s.name for s in builder.graph.layers} | {t for n in builder.nodes for t in n.outputs}
    name = f"{call.name}/{suffix}"
    while name in taken:
        name += "'"
    return name


# -- kinds ---------------------------------------------------------------------------------------
def _slice_items(call: LayerCall, key: object, rank: int) -> list:
    """The key as one item per axis (batch first): ``("all",)``, ``("index", i)``, ``("slice", a, b, s)``."""
    items = key if isinstance(key, list) else [key]
    if len(items) > MAX_RANK:
        raise call.error(f"slice: expected at most {MAX_RANK} items, found {len(items)}")
    parsed: list[tuple] = []
    for item in items:
        if isinstance(item, dict) and item.get("class_name") == "__ellipsis__":
            parsed.append(("...",))
        elif isinstance(item, dict):
            cfg = item.get("config") if item.get("class_name") == "__slice__" else item
            if not isinstance(cfg, dict) or set(cfg) - {"start", "stop", "step"}:
                raise call.error(f"slice: expected start/stop/step, found {quote(item, 80)}")
            parts = [cfg.get(k) for k in ("start", "stop", "step")]
            if any(p is not None and not (is_int(p) and -MAX_SIZE <= p <= MAX_SIZE) for p in parts):
                raise call.error(f"slice: expected integer bounds, found {quote(item, 80)}")
            parsed.append(("slice", *parts))
        elif is_int(item) and -MAX_SIZE <= item <= MAX_SIZE:
            parsed.append(("index", item))
        elif item is None:  # tf.newaxis
            parsed.append(("new",))
        else:
            raise call.unsupported(f"slice: expected integers, slices, None and ..., found {quote(item, 80)}")
    if sum(p[0] == "..." for p in parsed) > 1:
        raise call.error("slice: expected at most one ...")
    fill = rank - sum(p[0] in ("index", "slice") for p in parsed)
    if fill < 0:
        raise call.error(f"slice: expected at most {rank} items for a tensor of rank {rank}, found "
                         f"{rank - fill}")
    if ("...",) in parsed:
        k = parsed.index(("...",))
        parsed[k:k + 1] = [("all",)] * fill
    else:
        parsed += [("all",)] * fill
    return [("all",) if p[0] == "slice" and p[1:] in ((None, None, None), (None, None, 1), (0, None, None),
                                                        (0, None, 1)) else p for p in parsed]


def _slices(call: LayerCall, x: Tensor, steps: list[dict], last: bool = True) -> str:
    """``slice`` nodes applied in turn to ``x``, the last named as the call's output when ``last``."""
    name = x.name
    for k, options in enumerate(steps):
        final = last and k == len(steps) - 1
        out = call.out() if final else _fresh(call, f"axis{options['axis']}")
        call.add("slice", [name], [out], options, name=None if final else out)
        name = out
    return name


def _slice_step(call: LayerCall, axis: int, item: tuple, shape: list) -> dict:
    """The options of one axis' ``slice`` node; ``shape`` (without batch) updated."""
    d = shape[axis - 1]
    if item[0] == "index":
        if d is not None and not -d <= item[1] < d:
            raise call.error(f"slice: expected an index from {-d} to {d - 1} for axis {axis} of size {d}, "
                             f"found {item[1]}")
        del shape[axis - 1]
        return {"axis": axis, "index": item[1]}
    start, stop, step = item[1], item[2], 1 if item[3] is None else item[3]
    if step == 0:
        raise call.error("slice: expected a nonzero step, found 0")
    if step < 0 and (step != -1 or start is not None or stop is not None):
        raise call.unsupported("slice: a negative step is supported only as ::-1")
    shape[axis - 1] = None if d is None else len(range(d)[slice(start, stop, step)])
    return {"axis": axis, "start": start, "stop": stop, "step": step}


def getitem(call: LayerCall, args: Args) -> Tensor:
    """One ``slice`` node per sliced axis, last axis first (so that dropped axes leave the others' numbers);
    new axes (``None``) by a reshape at the end."""
    x = args.operands[0]
    rank = _rank(call, x)
    key = args.params.pop("slice_spec", args.operands[1] if len(args.operands) > 1 else None)
    items = _slice_items(call, key, rank)
    if items[0] != ("all",):
        raise call.unsupported("slicing the batch axis or a new axis before it is not supported")
    consumed = [p for p in items if p != ("new",)]  # one per input axis
    shape = list(x.shape)
    steps = [_slice_step(call, axis, p, shape) for axis, p in reversed(list(enumerate(consumed))) if p != ("all",)]
    new = ("new",) in items
    if not steps and not new:  # x[:] or x[...]
        call.add("identity", [x.name], [call.out()])
        return _out(call, x, x.shape)
    sliced = Tensor(_slices(call, x, steps, last=not new), tuple(shape), dtype=x.dtype)
    if not new:
        return _out(call, x, sliced.shape)
    kept = iter(shape)
    final = [1 if p == ("new",) else next(kept) for p in items[1:] if p[0] != "index"]
    if len(final) >= MAX_RANK:
        raise call.unsupported(f"slice: expected a result of rank at most {MAX_RANK}, found {len(final) + 1}")
    return _reshaped(call, sliced, final)


#: most outputs one split / unstack call may have (one slice node each)
MAX_PIECES = MAX_RANK * MAX_RANK


def _piece_count(call: LayerCall, what: str, count: int) -> None:
    """Refuse a split / unstack into more than :data:`MAX_PIECES` pieces, before their bounds are listed (a
    count may be up to 2**31 - 1)."""
    if count > MAX_PIECES:
        raise call.unsupported(f"{what}: expected at most {MAX_PIECES} pieces, found {count}")


def _pieces(call: LayerCall, x: Tensor, axis: int, bounds: list[tuple[int, int | None]], what: str) -> list[Tensor]:
    """Output ``t`` of the call: ``x`` sliced to ``bounds[t]`` on ``axis`` (``(index, None)``: one entry, axis
    dropped); at most :data:`MAX_PIECES` of them (one node each)."""
    _piece_count(call, what, len(bounds))
    outs = []
    for t, (start, stop) in enumerate(bounds):
        shape = list(x.shape or ())
        if stop is None:
            options = {"axis": axis, "index": start}
            del shape[axis - 1]
        else:
            options = {"axis": axis, "start": start, "stop": stop, "step": 1}
            shape[axis - 1] = stop - start
        call.add("slice", [x.name], [call.out(t)], options, name=call.out(t))
        outs.append(Tensor(call.out(t), tuple(shape), dtype=x.dtype))
    return outs


def _known_axis(call: LayerCall, x: Tensor, value: object) -> tuple[int, int]:
    """(axis, its size) for a split: the size must be known."""
    axis = _axis(call, 0 if value is None else value, _rank(call, x))
    size = (x.shape or ())[axis - 1]
    if size is None:
        raise call.unsupported(f"cannot split axis {axis}: its size is known only at run time")
    return axis, size


def split(call: LayerCall, args: Args) -> list[Tensor]:
    """``tf.split`` (a count or sizes) / ``ops.split`` (a count or split points): one ``slice`` per piece."""
    x, p = args.operands[0], args.params
    axis, size = _known_axis(call, x, p.get("axis"))
    spec = p.get("num_or_size_splits", p.get("indices_or_sections"))
    if is_int(spec) and 1 <= spec <= MAX_SIZE:
        if size % spec:
            raise call.error(f"split: expected a count dividing {size}, found {spec}")
        _piece_count(call, "split", spec)  # before listing its cuts
        cuts = [k * (size // spec) for k in range(spec + 1)]  # an axis of size 0: empty pieces
    elif isinstance(spec, list) and 1 <= len(spec) <= MAX_RANK and all(is_int(v) and 0 <= v <= size for v in spec):
        cuts = ([0, *spec, size] if "indices_or_sections" in p else
                [sum(spec[:k]) for k in range(len(spec) + 1)])  # Keras 3: split points; TensorFlow: sizes
        if cuts != sorted(cuts) or cuts[-1] != size:
            raise call.error(f"split: expected pieces covering the {size} entries of axis {axis}, found {spec}")
    else:
        raise call.unsupported(f"split: expected a count or a list of sizes, found {quote(spec, 80)}")
    return _pieces(call, x, axis, list(zip(cuts[:-1], cuts[1:])), "split")


def unstack(call: LayerCall, args: Args) -> list[Tensor]:
    """``tf.unstack`` / ``ops.unstack``: one ``slice`` node per entry of the axis."""
    x = args.operands[0]
    axis, size = _known_axis(call, x, args.params.get("axis"))
    num = args.params.get("num")
    if num is not None and num != size:
        raise call.error(f"unstack: expected num {size} (the size of axis {axis}), found {quote(num, 80)}")
    _piece_count(call, "unstack", size)  # before listing its entries
    return _pieces(call, x, axis, [(k, None) for k in range(size)], "unstack")


#: at most this many copies of one axis in a tile (one concatenate input each)
MAX_TILE = 1024


def tile(call: LayerCall, args: Args) -> Tensor:
    """``tf.tile`` / ``ops.tile``: per repeated axis a concatenate of that many copies (the batch kept)."""
    x, p = args.operands[0], args.params
    rank = _rank(call, x)
    reps = p.get("multiples", p.get("repeats"))
    if not isinstance(reps, list) or len(reps) != rank or not all(is_int(r) and 1 <= r <= MAX_TILE for r in reps):
        raise call.unsupported(f"tile: expected {rank} repeats from 1 to {MAX_TILE}, found {quote(reps, 80)}")
    if reps[0] != 1:
        raise call.unsupported("tile: repeating the batch axis is not supported: only per-sample operations are")
    shape = list(x.shape or ())
    call.take(math.prod(d or 1 for d in shape) * math.prod(reps), "one sample of the tiled tensor")
    todo = [(axis, r) for axis, r in enumerate(reps) if r > 1]
    if not todo:
        call.add("identity", [x.name], [call.out()])
    name = x.name
    for k, (axis, r) in enumerate(todo):
        final = k == len(todo) - 1
        out = call.out() if final else _fresh(call, f"tile{axis}")
        call.add("concatenate", [name] * r, [out], {"axis": axis}, name=None if final else out)
        name = out
        shape[axis - 1] = None if shape[axis - 1] is None else shape[axis - 1] * r
    return _out(call, x, tuple(shape))


def flip(call: LayerCall, args: Args) -> Tensor:
    """``ops.flip`` / ``tf.reverse``: one reversing ``slice`` node per axis."""
    x = args.operands[0]
    axes = _axes(call, args.params.get("axis"), _rank(call, x))
    _slices(call, x, [{"axis": axis, "step": -1} for axis in axes])
    return _out(call, x, x.shape)


def _binary(operation: str) -> Callable[[LayerCall, Args], Tensor]:
    def build(call: LayerCall, args: Args) -> Tensor:
        a, b = args.operands[:2]
        tensors = [t for t in (a, b) if isinstance(t, Tensor)]
        if not tensors:
            raise call.unsupported("expected a tensor operand, found only constants")
        if len(tensors) == 1:
            x = tensors[0]
            _rank(call, x)
            value = _number(call, b if x is a else a, "the other operand")
            call.add("scalar", [x.name], [call.out()], {"operation": operation, "value": value,
                                                         "reverse": x is b})
            return _out(call, x, x.shape)
        ra, rb = _rank(call, a, "x"), _rank(call, b, "y")
        if ra != rb:
            raise call.unsupported(f"expected operands of one rank, found ranks {ra} and {rb}")
        shape = []
        for p, q in zip(a.shape, b.shape):
            if p is not None and q is not None and p != q and 1 not in (p, q):
                raise call.error(f"shapes {('batch', *a.shape)} and {('batch', *b.shape)} do not broadcast")
            shape.append(q if p == 1 else p if q == 1 or p is not None else q)
        if a.shape == b.shape and None not in a.shape and operation in ("add", "subtract", "multiply",
                                                                           "maximum", "minimum"):
            call.add(operation, [a.name, b.name], [call.out()])  # the Keras merge, exactly
        else:
            call.add("binary", [a.name, b.name], [call.out()], {"operation": operation})
        return _out(call, a, tuple(shape))
    return build


def _reduction(mode: str) -> Callable[[LayerCall, Args], Tensor]:
    def build(call: LayerCall, args: Args) -> Tensor:
        x = args.operands[0]
        rank = _rank(call, x)
        axes, keep = _axes(call, args.params.get("axis"), rank), _flag(call, args, "keepdims")
        if rank == 3 and axes == [1] and not keep and mode in ("mean", "max"):  # the Keras global pooling
            call.add("global_pool", [x.name], [call.out()], {"mode": "average" if mode == "mean" else "max",
                                                              "axis": 1, "keepdims": False})
        else:
            call.add("reduce", [x.name], [call.out()], {"mode": mode, "axes": axes, "keepdims": keep})
        gone = {a - 1 for a in axes}
        shape = tuple(1 if i in gone else d for i, d in enumerate(x.shape)) if keep else \
            tuple(d for i, d in enumerate(x.shape) if i not in gone)
        return _out(call, x, shape)
    return build


def _reshaped(call: LayerCall, x: Tensor, shape: list, out: str | None = None) -> Tensor:
    """A reshape to ``shape`` (without batch), named ``out`` (default the call's output): exact only with at
    most one unknown dimension."""
    if sum(d is None for d in shape) > 1:
        raise call.unsupported(f"cannot reshape to {('batch', *shape)}: more than one unknown dimension")
    call.add("reshape", [x.name], [out or call.out()], {"shape": [-1 if d is None else d for d in shape]}, name=out)
    return Tensor(out or call.out(), tuple(shape), dtype=x.dtype)


def expand_dims(call: LayerCall, args: Args) -> Tensor:
    x = args.operands[0]
    rank = _rank(call, x)
    axis = _axis(call, args.params.get("axis"), rank, extra=1)
    shape = list(x.shape)
    shape.insert(axis - 1, 1)
    return _reshaped(call, x, shape)


def squeeze(call: LayerCall, args: Args) -> Tensor:
    x = args.operands[0]
    rank = _rank(call, x)
    if args.params.get("axis") is None:
        raise call.unsupported("squeeze without an axis is not supported (which axes it drops depends on sizes "
                               "known only at run time): give axis")
    axes = _axes(call, args.params["axis"], rank)
    for a in axes:
        if x.shape[a - 1] != 1:
            raise call.unsupported(f"squeeze: axis {a} has size {x.shape[a - 1]}, expected 1")
    return _reshaped(call, x, [d for i, d in enumerate(x.shape) if i + 1 not in axes])


def reshape(call: LayerCall, args: Args) -> Tensor:
    x = args.operands[0]
    _rank(call, x)
    target = args.params.get("shape")
    if not isinstance(target, list) or not 2 <= len(target) <= MAX_RANK or not all(
            is_int(d) and -1 <= d <= MAX_SIZE for d in target):
        raise call.unsupported(f"reshape: expected a list of integers, found {quote(target, 80)}")
    rest = target[1:]
    if target[0] != -1 or None in x.shape or -1 in rest or 0 in rest or math.prod(rest) != math.prod(x.shape):
        raise call.unsupported(f"reshape: expected [-1, *sizes] with sizes known and multiplying to a sample's "
                               f"{'?' if None in x.shape else math.prod(x.shape)} elements (shape {x.shape}), "
                               f"found {target}")
    return _reshaped(call, x, rest)


def _same_rank(call: LayerCall, xs: list) -> int:
    ranks = {_rank(call, t, "input") for t in xs}
    if len(ranks) != 1:
        raise call.unsupported(f"expected inputs of one rank, found ranks {sorted(ranks)}")
    return ranks.pop()


def stack(call: LayerCall, args: Args) -> Tensor:
    """``tf.stack`` / ``ops.stack``: each input given a size-1 axis (a reshape), then concatenated."""
    xs = args.operands[0] if isinstance(args.operands[0], list) else [args.operands[0]]
    if not xs:
        raise call.error("stack: expected tensors, found none")
    rank = _same_rank(call, xs)
    axis = args.params.get("axis")
    axis = _axis(call, 0 if axis is None else axis, rank, extra=1)
    if any(t.shape != xs[0].shape or None in t.shape for t in xs):
        raise call.unsupported(f"stack: expected inputs of one known shape, found "
                               f"{', '.join(str(('batch', *t.shape)) for t in xs)}")
    parts = []
    for k, t in enumerate(xs):
        shape = list(t.shape)
        shape.insert(axis - 1, 1)
        parts.append(_reshaped(call, t, shape, _fresh(call, f"item{k}")).name)
    call.add("concatenate", parts, [call.out()], {"axis": axis})
    shape = list(xs[0].shape)
    shape.insert(axis - 1, len(xs))
    return _out(call, xs[0], tuple(shape))


def negative(call: LayerCall, args: Args) -> Tensor:
    """``-x`` as ``x * -1`` (exact: a sign flip)."""
    x = args.operands[0]
    _rank(call, x)
    call.add("scalar", [x.name], [call.out()], {"operation": "multiply", "value": -1.0})
    return _out(call, x, x.shape)


def square(call: LayerCall, args: Args) -> Tensor:
    """``x * x``."""
    return _binary("multiply")(call, Args([args.operands[0], args.operands[0]]))


def cast(call: LayerCall, args: Args) -> Tensor:
    """A cast that changes no value (float32 or float64 to float64, or to the same dtype): the identity."""
    x = args.operands[0]
    _rank(call, x)
    dtype = args.params.get("dtype")
    if not (x.dtype in ("float32", "float64") and isinstance(dtype, str) and dtype in (x.dtype, "float64")):
        raise call.unsupported(f"cast from {quote(x.dtype)} to {quote(dtype, 80)} is not supported (only casts "
                               "that keep every value: float32 or float64 to float64, or to the same dtype)")
    call.add("identity", [x.name], [call.out()])
    return _out(call, x, x.shape)


def clip(call: LayerCall, args: Args) -> Tensor:
    """``tf.clip_by_value`` / ``ops.clip`` between two numbers (low <= high): ``maximum(minimum(x, high), low)``."""
    x, p = args.operands[0], args.params
    _rank(call, x)
    low = _number(call, p.get("clip_value_min", p.get("x_min")), "clip low")
    high = _number(call, p.get("clip_value_max", p.get("x_max")), "clip high")
    if low > high:
        raise call.unsupported(f"clip: expected low <= high, found {low} and {high}")
    capped = _fresh(call, "max")
    call.add("scalar", [x.name], [capped], {"operation": "minimum", "value": high}, name=capped)
    call.add("scalar", [capped], [call.out()], {"operation": "maximum", "value": low})
    return _out(call, x, x.shape)


def gelu(call: LayerCall, args: Args) -> Tensor:
    """``approximate`` (TensorFlow's default False; Keras 3 records it): the tanh form."""
    return _activation("gelu_tanh" if _flag(call, args, "approximate") else "gelu")(call, args)


def concat(call: LayerCall, args: Args) -> Tensor:
    xs = args.operands[0]
    xs = xs if isinstance(xs, list) else [xs]
    if not xs:
        raise call.error("concat: expected tensors, found none")
    rank = _same_rank(call, xs)
    if "axis" not in args.params:
        raise call.error("concat: expected an axis, found none")
    axis = _axis(call, args.params["axis"], rank)
    for t in xs[1:]:
        for i, (p, q) in enumerate(zip(xs[0].shape, t.shape)):
            if i != axis - 1 and p is not None and q is not None and p != q:
                raise call.error(f"concat: shapes {('batch', *xs[0].shape)} and {('batch', *t.shape)} differ "
                                 f"off axis {axis}")
    sizes = [t.shape[axis - 1] for t in xs]
    shape = list(xs[0].shape)
    shape[axis - 1] = None if None in sizes else sum(sizes)
    call.add("concatenate", [t.name for t in xs], [call.out()], {"axis": axis})
    return _out(call, xs[0], tuple(shape))


def transpose(call: LayerCall, args: Args) -> Tensor:
    x = args.operands[0]
    rank = _rank(call, x)
    perm = args.params.get("perm", args.params.get("axes"))
    if perm is None:
        raise call.unsupported("transpose without perm moves the batch axis: only per-sample operations are "
                               "supported")
    if not isinstance(perm, list) or not all(is_int(p) for p in perm) or sorted(perm) != list(range(rank)):
        raise call.error(f"perm: expected a permutation of 0..{rank - 1}, found {quote(perm, 80)}")
    if perm[0] != 0:
        raise call.unsupported("transpose moves the batch axis: only per-sample operations are supported")
    call.add("permute", [x.name], [call.out()], {"dims": perm[1:]})
    return _out(call, x, tuple(x.shape[p - 1] for p in perm[1:]))


def softmax(call: LayerCall, args: Args, activation: str = "softmax") -> Tensor:
    """The last axis: the softmax (or log_softmax) activation; another: permuted to the end and back (exact)."""
    x = args.operands[0]
    rank = _rank(call, x)
    axis = args.params.get("axis")
    axis = _axis(call, -1 if axis is None else axis, rank)  # tf.nn.softmax: axis None is the last
    if axis == rank - 1:
        call.add("activation", [x.name], [call.out()], {"activation": activation})
        return _out(call, x, x.shape)
    dims = list(range(1, rank))
    dims[axis - 1], dims[-1] = dims[-1], dims[axis - 1]
    moved, act = _fresh(call, "to_last"), _fresh(call, activation)
    call.add("permute", [x.name], [moved], {"dims": dims}, name=moved)
    call.add("activation", [moved], [act], {"activation": activation}, name=act)
    call.add("permute", [act], [call.out()], {"dims": dims})
    return _out(call, x, x.shape)


def matmul(call: LayerCall, args: Args) -> Tensor:
    """Batched ``a @ b`` of two rank-3 tensors: Keras Dot over the matching axes."""
    a, b = args.operands[:2]
    if _rank(call, a, "a") != 3 or _rank(call, b, "b") != 3:
        raise call.unsupported(f"matmul: expected two tensors of rank 3 (batch included), found shapes "
                               f"{('batch', *a.shape)} and {('batch', *b.shape)}")
    ta, tb = _flag(call, args, "transpose_a"), _flag(call, args, "transpose_b")
    axes = [1 if ta else 2, 2 if tb else 1]
    ka, kb = a.shape[axes[0] - 1], b.shape[axes[1] - 1]
    if ka is not None and kb is not None and ka != kb:
        raise call.error(f"matmul: inner sizes {ka} and {kb} differ")
    call.add("dot", [a.name, b.name], [call.out()], {"axes": axes})
    return _out(call, a, (a.shape[2 - axes[0]], b.shape[2 - axes[1]]))


def log_softmax(call: LayerCall, args: Args) -> Tensor:
    """``ops.log_softmax(x, axis)``: the log_softmax activation on the last axis (another axis permuted there and
    back, as softmax)."""
    return softmax(call, args, "log_softmax")


def _any_axis(call: LayerCall, value: object, rank: int, what: str) -> int:
    """A Keras axis of a rank-``rank`` tensor (batch included, negative from the end); the batch allowed (the
    permutation built from it is then refused by transpose)."""
    if not is_int(value) or not -rank <= value < rank:
        raise call.error(f"{what}: expected an axis from {-rank} to {rank - 1} for a tensor of rank {rank}, found "
                         f"{quote(value, 80)}")
    return value % rank


def swapaxes(call: LayerCall, args: Args) -> Tensor:
    """``ops.swapaxes(x, axis1, axis2)``: the transpose exchanging the two axes (the batch never moves)."""
    x, p = args.operands[0], args.params
    rank = _rank(call, x)
    perm = list(range(rank))
    a, b = (_any_axis(call, p.get(k), rank, k) for k in ("axis1", "axis2"))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(call, Args([x], {"perm": perm}))


def moveaxis(call: LayerCall, args: Args) -> Tensor:
    """``ops.moveaxis(x, source, destination)`` (ints or lists of one length): numpy's permutation, as a
    transpose (the batch never moves)."""
    x, p = args.operands[0], args.params
    rank = _rank(call, x)
    src, dst = ([v] if is_int(v) else v for v in (p.get("source"), p.get("destination")))
    if not isinstance(src, list) or not isinstance(dst, list) or len(src) != len(dst) or not src:
        raise call.error(f"moveaxis: expected source and destination axes of one count, found "
                         f"{quote(p.get('source'), 40)} and {quote(p.get('destination'), 40)}")
    src = [_any_axis(call, a, rank, "source") for a in src]
    dst = [_any_axis(call, a, rank, "destination") for a in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise call.error("moveaxis: expected distinct source and distinct destination axes")
    perm = [a for a in range(rank) if a not in src]
    for d, a in sorted(zip(dst, src)):
        perm.insert(d, a)
    return transpose(call, Args([x], {"perm": perm}))


def repeat(call: LayerCall, args: Args) -> Tensor:
    """``ops.repeat(x, repeats, axis)``: each element along ``axis`` repeated ``repeats`` times in place. A size-1
    axis is a tile; another is expand_dims after it, a tile of the new axis and a reshape merging the two."""
    x, p = args.operands[0], args.params
    rank = _rank(call, x)
    reps = p.get("repeats")
    reps = reps[0] if isinstance(reps, list) and len(reps) == 1 else reps
    if not is_int(reps) or not 1 <= reps <= MAX_TILE:
        raise call.unsupported(f"repeat: expected one count of repeats from 1 to {MAX_TILE}, found "
                               f"{quote(p.get('repeats'), 80)}")
    if p.get("axis") is None:
        raise call.unsupported("repeat without an axis flattens the batch too: only per-sample operations are "
                               "supported")
    axis = _axis(call, p["axis"], rank)
    size = x.shape[axis - 1]
    if size == 1 or reps == 1:
        return tile(call, Args([x], {"multiples": [reps if a == axis else 1 for a in range(rank)]}))
    shape = list(x.shape)
    call.take(math.prod(d or 1 for d in shape) * reps, "one sample of the repeated tensor")
    widened = _reshaped(call, x, [*shape[:axis], 1, *shape[axis:]], _fresh(call, "expand"))
    tiled = _fresh(call, "tile")
    call.add("concatenate", [widened.name] * reps, [tiled], {"axis": axis + 1}, name=tiled)
    shape[axis - 1] = None if size is None else size * reps
    return _reshaped(call, Tensor(tiled, None, dtype=x.dtype), shape)


def _sqrt_sum_squares(call: LayerCall, x: Tensor, axes: list[int], out: str) -> Tensor:
    """``sqrt(sum(x * x, axes, keepdims=True))`` named ``out``."""
    squared, summed = _fresh(call, "square"), _fresh(call, "sum")
    call.add("multiply", [x.name, x.name], [squared], name=squared)
    call.add("reduce", [squared], [summed], {"mode": "sum", "axes": axes, "keepdims": True}, name=summed)
    call.add("activation", [summed], [out], {"activation": "sqrt"}, name=None if out == call.out() else out)
    return Tensor(out, tuple(1 if i + 1 in axes else d for i, d in enumerate(x.shape or ())), dtype=x.dtype)


def norm(call: LayerCall, args: Args) -> Tensor:
    """``ops.norm(x, ord, axis, keepdims)``: the Euclidean norm (``ord`` None or 2 over one axis, None or "fro"
    over two) as sqrt(sum(x * x)); ``ord`` 1 over one axis as sum(abs(x)). Other orders are refused."""
    x, p = args.operands[0], args.params
    rank = _rank(call, x)
    axes = _axes(call, p.get("axis"), rank)
    order = p.get("ord")
    keep = p.get("keepdims") is not None and _flag(call, args, "keepdims")  # TensorFlow writes keepdims=None
    euclid = order in (None, "euclidean") or (order == 2 and not isinstance(order, bool) and len(axes) == 1) or \
        (order == "fro" and len(axes) == 2)
    if not euclid and not (order == 1 and not isinstance(order, bool) and len(axes) == 1):
        raise call.unsupported(f"norm: ord {quote(order, 40)} over {len(axes)} axes is not supported (only the "
                               "Euclidean norm: ord None or 'euclidean', 2 over one axis or 'fro' over two; and ord 1 over one "
                               "axis)")
    gone = {a - 1 for a in axes}
    shape = tuple(1 if i in gone else d for i, d in enumerate(x.shape)) if keep else \
        tuple(d for i, d in enumerate(x.shape) if i not in gone)
    if not euclid:
        magnitude = _fresh(call, "abs")
        call.add("activation", [x.name], [magnitude], {"activation": "abs"}, name=magnitude)
        call.add("reduce", [magnitude], [call.out()], {"mode": "sum", "axes": axes, "keepdims": keep})
    elif keep:
        _sqrt_sum_squares(call, x, axes, call.out())
    else:
        kept = _sqrt_sum_squares(call, x, axes, _fresh(call, "norm"))
        _reshaped(call, kept, list(shape))
    return _out(call, x, shape)


#: ``keras.backend.epsilon()``'s default, what ops.normalize uses when its ``epsilon`` is None (a
#: ``keras.config.set_epsilon`` is a process setting, not in the file)
KERAS_EPSILON = 1e-7


def normalize(call: LayerCall, args: Args) -> Tensor:
    """``ops.normalize(x, axis, order=2, epsilon)`` (keras/src/ops/nn.py ``_normalize``): ``x * min(rsqrt(sum(x *
    x)), 1 / epsilon)``, read as ``x / max(sqrt(sum(x * x)), epsilon)`` (the same number up to rounding)."""
    x, p = args.operands[0], args.params
    rank = _rank(call, x)
    axes = _axes(call, p.get("axis"), rank)
    order = p.get("order")
    if order != 2 or isinstance(order, bool):
        raise call.unsupported(f"normalize: order {quote(order, 40)} is not supported (only 2)")
    eps = KERAS_EPSILON if p.get("epsilon") is None else _number(call, p.get("epsilon"), "epsilon")
    if eps <= 0:
        raise call.unsupported(f"normalize: expected a positive epsilon, found {eps}")
    length = _sqrt_sum_squares(call, x, axes, _fresh(call, "norm"))
    capped = _fresh(call, "capped")
    call.add("scalar", [length.name], [capped], {"operation": "maximum", "value": eps}, name=capped)
    call.add("binary", [x.name, capped], [call.out()], {"operation": "divide"})
    return _out(call, x, x.shape)


def l2_normalize(call: LayerCall, args: Args) -> Tensor:
    """``tf.math.l2_normalize(x, axis, epsilon=1e-12)``: ``x * rsqrt(maximum(sum(x * x), epsilon))``, the same
    number as ops.normalize's ``x / max(sqrt(sum(x * x)), sqrt(epsilon))``."""
    eps = _number(call, args.params.get("epsilon", 1e-12), "epsilon")
    if eps <= 0:
        raise call.unsupported(f"l2_normalize: expected a positive epsilon, found {eps}")
    return normalize(call, Args(args.operands, {"axis": args.params.get("axis"), "order": 2,
                                                "epsilon": math.sqrt(eps)}))


def variance(call: LayerCall, args: Args, root: bool = False) -> Tensor:
    """``ops.var`` / ``tf.math.reduce_variance`` (the population variance: ``mean((x - mean(x)) ** 2)`` over
    ``axis``, ``keepdims``); ``root``: its sqrt, ``ops.std`` / ``reduce_std``."""
    x, p = args.operands[0], args.params
    rank = _rank(call, x)
    axes, keep = _axes(call, p.get("axis"), rank), _flag(call, args, "keepdims")
    mean, centred, squared = _fresh(call, "mean"), _fresh(call, "centred"), _fresh(call, "square")
    call.add("reduce", [x.name], [mean], {"mode": "mean", "axes": axes, "keepdims": True}, name=mean)
    call.add("binary", [x.name, mean], [centred], {"operation": "subtract"}, name=centred)
    call.add("multiply", [centred, centred], [squared], name=squared)
    var = _fresh(call, "var") if root else call.out()
    call.add("reduce", [squared], [var], {"mode": "mean", "axes": axes, "keepdims": keep},
             name=var if root else None)
    if root:
        call.add("activation", [var], [call.out()], {"activation": "sqrt"})
    gone = {a - 1 for a in axes}
    return _out(call, x, tuple(1 if i in gone else d for i, d in enumerate(x.shape or ())) if keep else
                tuple(d for i, d in enumerate(x.shape or ()) if i not in gone))


def leaky_relu(call: LayerCall, args: Args) -> Tensor:
    """``ops.leaky_relu(x, negative_slope=0.2)`` / ``tf.nn.leaky_relu(x, alpha=0.2)``: the relu op of Keras'
    LeakyReLU with that slope (a non-negative number)."""
    x, p = args.operands[0], args.params
    _rank(call, x)
    slope = _number(call, p.get("negative_slope", p.get("alpha", 0.2)), "negative_slope")
    if slope < 0:
        raise call.unsupported(f"leaky_relu: expected a non-negative slope, found {slope}")
    call.add("relu", [x.name], [call.out()], {"negative_slope": slope, "max_value": None, "threshold": 0.0})
    return _out(call, x, x.shape)


def _power_of(value: float, reverse: bool, operation: str) -> Callable[[LayerCall, Args], Tensor]:
    """``ops.rsqrt`` as ``x ** -0.5``; ``ops.reciprocal`` as ``1 / x``: one scalar node."""
    def build(call: LayerCall, args: Args) -> Tensor:
        x = args.operands[0]
        _rank(call, x)
        call.add("scalar", [x.name], [call.out()], {"operation": operation, "value": value, "reverse": reverse})
        return _out(call, x, x.shape)
    return build


_EINSUM_FORM = ("only a batched matrix product of two tensors of rank 2 or 3 is supported: the batch letter first "
                "everywhere, one letter contracted, the output the batch then each operand's other letters in order, "
                "e.g. 'btd,bsd->bts'")


def einsum(call: LayerCall, args: Args) -> Tensor:
    """``ops.einsum(subscripts, a, b)`` of a batched matrix product (attention scores ``btd,bsd->bts``, contexts
    ``bts,bsd->btd``, ``bd,btd->bt``): Keras Dot over the contracted letter's axes, the operands swapped when the
    output lists the second one's letters first. Every other equation is refused in one line."""
    subscripts = args.params.get("subscripts")
    operands = args.operands
    where = f"einsum {quote(subscripts, 80)}"
    if len(operands) != 2 or not all(isinstance(t, Tensor) for t in operands) or not isinstance(subscripts, str):
        raise call.unsupported(f"{where}: {_EINSUM_FORM}")
    spec = subscripts.replace(" ", "")
    ins, _, out = spec.partition("->")
    parts = ins.split(",")
    if not _ or len(parts) != 2 or not all(p.isalpha() and p.isascii() for p in (*parts, out)):
        raise call.unsupported(f"{where}: {_EINSUM_FORM}")
    (sa, sb), (a, b) = parts, operands
    ranks = (_rank(call, a, "a"), _rank(call, b, "b"))
    shared = set(sa[1:]) & set(sb[1:])
    ok = ranks == (len(sa), len(sb)) and all(2 <= r <= 3 for r in ranks) and len(set(sa)) == len(sa) and \
        len(set(sb)) == len(sb) and sa[0] == sb[0] == out[:1] and len(shared) == 1 and len(out) > 1
    contracted = next(iter(shared)) if ok else ""
    free_a, free_b = sa[1:].replace(contracted, ""), sb[1:].replace(contracted, "")
    if not ok or out[1:] not in (free_a + free_b, free_b + free_a) or contracted in out:
        raise call.unsupported(f"{where}: {_EINSUM_FORM}")
    if out[1:] != free_a + free_b:  # the second operand's letters first: Dot(b, a)
        (sa, a), (sb, b) = (sb, b), (sa, a)
    axes = [sa.index(contracted), sb.index(contracted)]
    ka, kb = (a.shape or ())[axes[0] - 1], (b.shape or ())[axes[1] - 1]
    if ka is not None and kb is not None and ka != kb:
        raise call.error(f"{where}: the contracted sizes {ka} and {kb} differ")
    call.add("dot", [a.name, b.name], [call.out()], {"axes": axes})
    rest = tuple(d for i, d in enumerate(a.shape or ()) if i != axes[0] - 1) + \
        tuple(d for i, d in enumerate(b.shape or ()) if i != axes[1] - 1)
    return _out(call, a, rest)


def _activation(name: str) -> Callable[[LayerCall, Args], Tensor]:
    def build(call: LayerCall, args: Args) -> Tensor:
        x = args.operands[0]
        _rank(call, x)
        call.add("activation", [x.name], [call.out()], {"activation": name})
        return _out(call, x, x.shape)
    return build


def not_equal(call: LayerCall, args: Args) -> Tensor:
    """``tf.not_equal(x, value)`` for a number ``value``: the mask ``x != value`` (a mask_not_equal node once a
    layer takes it as its mask)."""
    x, value = args.operands[:2]
    if isinstance(value, Tensor) and not isinstance(x, Tensor):
        x, value = value, x
    _rank(call, x, "x")
    if isinstance(value, Tensor) or isinstance(value, bool) or not is_finite(value):
        raise call.unsupported(f"not_equal: expected a tensor and a finite number, found {quote(value, 80)}")
    return Tensor(call.out(), x.shape, dtype="bool", pending=("not_equal", x.name, value, False))


def reduce_any(call: LayerCall, args: Args) -> Tensor:
    """``tf.reduce_any(x != value, axis=-1)``: Masking's mask (any feature differs), kept symbolic."""
    x = args.operands[0]
    if not isinstance(x, Tensor) or not x.pending or x.pending[0] != "not_equal" or x.pending[3]:
        raise call.unsupported("reduce_any: expected the result of not_equal (a mask over the last axis)")
    shape = x.shape if x.shape is not None else ()
    rank = len(shape) + 1
    axis = args.params.get("axis")
    if _flag(call, args, "keepdims") or x.shape is None or not is_int(axis) or axis % rank != rank - 1 \
            or not -rank <= axis < rank:
        raise call.unsupported(f"reduce_any: expected axis -1 of a tensor of known rank and keepdims false, "
                               f"found axis {quote(axis, 40)}")
    _, source, value, _ = x.pending
    return Tensor(call.out(), shape[:-1], dtype="bool", pending=("not_equal", source, value, True))


_REDUCE_PARAMS = {"axis": None, "keepdims": False, "initial": (None,)}
#: kind -> how to read it (see :class:`Kind`).
KINDS: dict[str, Kind] = {
    "getitem": Kind(getitem, params={"slice_spec": None}),
    **{op: Kind(_binary(op), ("x", "y")) for op in _BINARY},
    **{mode: Kind(_reduction(mode), params=_REDUCE_PARAMS) for mode in ("mean", "sum", "max", "min")},
    "expand_dims": Kind(expand_dims, params={"axis": None}),
    "flip": Kind(flip, params={"axis": None}),
    "squeeze": Kind(squeeze, params={"axis": None}),
    "reshape": Kind(reshape, params={"shape": None, "newshape": None}),
    "concat": Kind(concat, ("values",), params={"axis": None}),
    "transpose": Kind(transpose, params={"perm": None, "axes": None, "conjugate": (False,)}),
    "softmax": Kind(softmax, params={"axis": -1}),
    "log_softmax": Kind(log_softmax, params={"axis": -1}),
    "swapaxes": Kind(swapaxes, params=dict.fromkeys(("axis1", "axis2"))),
    "moveaxis": Kind(moveaxis, params=dict.fromkeys(("source", "destination"))),
    "repeat": Kind(repeat, params=dict.fromkeys(("repeats", "axis"))),
    "norm": Kind(norm, params={**dict.fromkeys(("ord", "axis", "keepdims")), "keep_dims": (None,)}),
    "normalize": Kind(normalize, params=dict.fromkeys(("axis", "order", "epsilon"))),
    "l2_normalize": Kind(l2_normalize, params={"axis": None, "epsilon": 1e-12, "dim": (None,)}),
    "var": Kind(variance, params={"axis": None, "keepdims": False}),
    "einsum": Kind(einsum, ("a",), params={"subscripts": None}),  # a or more: einsum counts them
    "leaky_relu": Kind(leaky_relu, params={"negative_slope": 0.2, "alpha": 0.2}),
    "rsqrt": Kind(_power_of(-0.5, False, "power")),
    "reciprocal": Kind(_power_of(1.0, True, "divide")),
    "std": Kind(lambda call, args: variance(call, args, root=True), params={"axis": None, "keepdims": False}),
    "matmul": Kind(matmul, ("a", "b"), params={"transpose_a": False, "transpose_b": False,
                                              **dict.fromkeys(("adjoint_a", "adjoint_b", "a_is_sparse",
                                                               "b_is_sparse"), (False,)),
                                              "output_type": (None,), "grad_a": (False,), "grad_b": (False,)}),
    **{a: Kind(_activation(a)) for a in _ACTIVATIONS},
    "gelu": Kind(gelu, params={"approximate": False}),
    "split": Kind(split, params={**dict.fromkeys(("num_or_size_splits", "indices_or_sections", "axis")),
                                 "num": (None,)}),
    "unstack": Kind(unstack, params=dict.fromkeys(("num", "axis"))),
    "tile": Kind(tile, params=dict.fromkeys(("multiples", "repeats"))),
    "clip": Kind(clip, params=dict.fromkeys(("clip_value_min", "clip_value_max", "x_min", "x_max"))),
    "negative": Kind(negative),
    "square": Kind(square),
    "stack": Kind(stack, ("values",), params={"axis": None}),
    "cast": Kind(cast, params={"dtype": None}),
    "not_equal": Kind(not_equal, ("x", "y")),
    "any": Kind(reduce_any, params={"axis": None, "keepdims": False}),
}


# -- the two dialects -----------------------------------------------------------------------------
def _function(spec) -> str | None:
    fn = spec.config.get("function")
    return fn if isinstance(fn, str) else None


def refusal(spec) -> str | None:
    """Why this TFOpLambda/SlicingOpLambda layer or Keras 3 op node cannot be read (None: it can)."""
    if spec.class_name in TF_OP_CLASSES:
        fn = _function(spec)
        if fn in TF_FUNCTIONS:
            return None
        return (f"TensorFlow function {quote(spec.config.get('function'), 80)} is not supported (supported: "
                f"{', '.join(sorted(TF_FUNCTIONS))})")
    if spec.class_name in KERAS3_OPS:
        return None
    return (f"operation {quote(spec.class_name, 80)} is not supported (supported Keras 3 operations: "
            f"{', '.join(sorted(KERAS3_OPS))})")


def _params(call: LayerCall, kind: Kind, given: dict) -> dict:
    """The named parameters, those the kind does not read refused unless they hold their one accepted value."""
    params = {}
    for key, value in given.items():
        if key == "name":
            continue
        if key not in kind.params:
            raise call.unsupported(f"parameter {quote(key, 80)} is not supported (supported: "
                                   f"{', '.join(kind.params) or 'none'})")
        allowed = kind.params[key]
        if isinstance(allowed, tuple):
            if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
                raise call.unsupported(f"{key} {quote(value, 80)} is not supported (only {allowed[0]!r})")
            continue
        params[key] = value
    return params


def _tf_args(call: LayerCall, kind: Kind) -> Args:
    """TensorFlow's call: the first operand in the inbound node (a tensor, tensors, or a constant), the
    others by name among the keyword arguments."""
    constants = call.spec.calls[call.index].constants
    if call.inputs and constants:
        raise call.unsupported("expected tensors or one constant as the first argument, found both")
    if len(constants) > 1:
        raise call.unsupported("expected one constant as the first argument, found several")
    first: Any = constants[0] if constants else call.inputs if kind.operands == ("values",) else \
        call.inputs[0] if len(call.inputs) == 1 else None
    if first is None:
        raise call.error(f"expected one input tensor, found {len(call.inputs)}")
    kwargs = dict(call.kwargs)
    operands = [first]
    for name in kind.operands[1:]:
        if name not in kwargs:
            raise call.error(f"expected argument {name}, found none")
        operands.append(kwargs.pop(name))
    return Args(operands, _params(call, kind, kwargs))


def _as_list(out: Tensor | list[Tensor]) -> list[Tensor]:
    return out if isinstance(out, list) else [out]


def read_tf_op(call: LayerCall) -> list[Tensor]:
    """A TFOpLambda / SlicingOpLambda layer call."""
    why = refusal(call.spec)
    if why:
        raise call.unsupported(why)
    kind = KINDS[TF_FUNCTIONS[_function(call.spec) or ""]]
    return _as_list(kind.build(call, _tf_args(call, kind)))


def _keras3_operands(call: LayerCall, raw: list, tensors: list[Tensor]) -> list:
    """The inbound node's ``args`` in order, each tensor reference replaced by its Tensor."""
    it = iter(tensors)

    def one(item):
        if _is_ref(item):
            _as_ref(item)
            return next(it)
        if isinstance(item, list):
            return [one(v) for v in item]
        return item
    return [one(a) for a in raw]


def read_keras3_op(call: LayerCall, raw_args: list) -> list[Tensor]:
    """A Keras 3 operation node's call (``raw_args``: its inbound node's ``args``)."""
    why = refusal(call.spec)
    if why:
        raise call.unsupported(why)
    kind = KINDS[KERAS3_OPS[call.spec.class_name]]
    if not isinstance(raw_args, list):
        raise call.error(f"expected a list of arguments, found {quote(raw_args, 80)}")
    operands = _keras3_operands(call, raw_args, call.inputs)
    if len(operands) < len(kind.operands) or (len(operands) > len(kind.operands) and kind.build not in (getitem, einsum)):
        raise call.error(f"expected {len(kind.operands)} arguments, found {len(operands)}")
    given = {**call.spec.config, **call.kwargs}
    if "newshape" in given:
        given["shape"] = given.pop("newshape")
    return _as_list(kind.build(call, Args(operands, _params(call, kind, given))))


def computes_mask(spec) -> bool:
    """Whether this TFOpLambda computes a mask (its input may be a mask, its output is one)."""
    return spec.class_name in TF_OP_CLASSES and TF_FUNCTIONS.get(_function(spec) or "") in MASK_KINDS


def keras3_data_op(spec, ins: list[Tensor]) -> bool:
    """Whether a Keras 3 op node computes data this module reads (not a mask expression keras_build keeps)."""
    return spec.class_name in KERAS3_OPS and bool(ins) and not any(t.pending for t in ins)
