"""ONNX ops -> the IR's non-recurrent layer ops (pool1d, global_pool (masked average too), zero_pad1d,
crop1d, upsample1d, permute, relu / elu / prelu, the gelu / mish / log_softmax activations, layer_norm,
rms_norm, unit_norm; conv1d as tf2onnx writes it, a 2-D Conv of an added axis), as gateport's ONNX writer
emits them (converters/writers/onnx_layers.py, onnx_activations.py, onnx_norms.py) and as torch.onnx (TorchScript and dynamo exporters), tf2onnx and Keras 3's
exporter write the same layers (fixtures/make_foreign_onnx_layers.py, tests/test_foreign_onnx_layers.py).

A layer written as several ONNX ops (LayerNormalization as ReduceMean/Sub/Mul/Sqrt/Div, Keras ReLU as
Relu/Sub/Mul, gelu as Erf, ...) is read op by op: each op of the form gives a :class:`Pending` value naming
what it has seen, the op that completes the layer gives the IR node, and a partial form used any other way is
refused (``OnnxReader._finish_pending``); the IR nodes the first ops made and nothing uses are pruned.

Each handler reads one ONNX op and either gives the IR op or returns None when the op is not one of its
forms; :func:`layer_handlers` puts them in front of the reader's other handlers (onnx_ops.py,
onnx_mask_ops.py), which then read the op as before. Every attribute a form depends on is checked: what
the IR op cannot compute exactly (a dilated pooling, a padding counted in a mean, a last partial window of
``ceil_mode``, a ``SAME_LOWER`` odd step at the start) is refused in one line, never approximated.

What the forms compute (onnx/docs/Operators.md): MaxPool / AveragePool output
``floor((T + pads - k) / s) + 1`` steps (``ceil`` with ``ceil_mode``), ``SAME_UPPER`` ``ceil(T / s)`` with the
odd padding step at the end (TensorFlow's ``same``: tensorflow/python/ops/nn_ops.py, Keras'
keras/src/layers/pooling/base_pooling.py), MaxPool ignoring the padding, AveragePool counting it only with
``count_include_pad``; Pad-11+ ``pads`` ``[x1_begin, x2_begin, ..., x1_end, ...]``, Pad-18 ``axes``.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import FormatError, UnsupportedError
from ..ops import conv1d_transpose_edges
from ..sanitize import quote
from .onnx_values import onnx_consumers, onnx_producer, only_read_by, IR, Const, MaskRef, Merged, Pending, Plan, ShapeOf, View, Zeros, axes_of, ints, out_name, scalar

Handler = Callable
_BIG = 2**31 - 1  # an end at or past this is "to the end" (torch and gateport write int64 max)


def _finite(r, name: str, v) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(float(v)):
        raise FormatError(f"expected a finite {name}, found {quote(v, 40)}")
    return float(np.float32(v))  # a float32 attribute, as the Keras reader keeps a float32 config value


def _rank(r, x) -> int | None:
    return r.ranks.get(x.name, x.rank) if isinstance(x, IR) else None


def _ir3(r, v):
    """``v`` as a float (batch, time, features) IR tensor, or None."""
    x = r.as_ir(v)
    if isinstance(x, IR) and x.dtype.startswith("float") and _rank(r, x) == 3:
        return x
    return None


# -- pooling ---------------------------------------------------------------------------------------
def _attr_ints(r, attrs: dict, key: str, n: int, default: int) -> list[int]:
    value = attrs.get(key)
    if value is None:
        return [default] * n
    value = [int(v) for v in value]
    if len(value) != n:
        raise FormatError(f"expected {key} of {n} value{'s' if n > 1 else ''} (a 1-D pooling), found {value}")
    return value


def _pool(r, node, args, attrs):
    """MaxPool / AveragePool of ``Transpose(x, [0, 2, 1])``: a pending pool1d, finished by the Transpose
    back (or, as dynamo writes a 1-D pooling as 2-D, by the Squeeze of the axis an Unsqueeze added)."""
    x = args[0]
    added = None
    if isinstance(x, View) and x.kind == "channels_first_unsq":
        x, added = View("channels_first", x.of), x.mask
    if not (isinstance(x, View) and x.kind == "channels_first" and _ir3(r, x.of) is not None):
        raise r.unsupported(f"expected {node.op_type} of Transpose(x, [0, 2, 1]) of a (batch, time, features) "
                            f"tensor (a Keras 1-D pooling), found {node.op_type} of a {x.what}")
    if len([o for o in node.output if o]) > 1:
        raise r.unsupported("expected MaxPool without its Indices output")
    n = 1 if added is None else 2
    k, s, d = (_attr_ints(r, attrs, key, n, dflt) for key, dflt in (("kernel_shape", 0), ("strides", 1),
                                                                     ("dilations", 1)))
    pads = _attr_ints(r, attrs, "pads", 2 * n, 0)
    if added is not None:  # the 2-D pooling of (batch, features, time, 1) or (batch, features, 1, time)
        one = added - 2  # the added axis among the two spatial ones
        if k[one] != 1 or s[one] != 1 or d[one] != 1 or pads[one] or pads[n + one]:
            raise r.unsupported(f"expected the axis Unsqueeze added pooled by 1 (kernel 1, stride 1, no padding), "
                                f"found kernel_shape {k}, strides {s}, dilations {d}, pads {pads}")
        keep = 1 - one
        k, s, d, pads = [k[keep]], [s[keep]], [d[keep]], [pads[keep], pads[n + keep]]
    k0, s0 = k[0], s[0]
    if k0 < 1 or s0 < 1 or d[0] < 1 or min(pads) < 0:
        raise FormatError(f"expected kernel_shape, strides and dilations >= 1 and pads >= 0, found {k}, {s}, {d}, "
                          f"{pads}")
    if d[0] != 1:
        raise r.unsupported(f"expected a pooling without dilation (Keras pools contiguous steps), found dilations {d}")
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode("utf-8", "replace") if isinstance(auto, bytes) else str(auto)
    if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise FormatError(f"expected auto_pad NOTSET, VALID, SAME_UPPER or SAME_LOWER, found {quote(auto, 40)}")
    if int(attrs.get("storage_order", 0)) not in (0, 1):
        raise FormatError(f"expected storage_order 0 or 1, found {attrs.get('storage_order')}")
    ceil = int(attrs.get("ceil_mode", 0))
    if ceil not in (0, 1):
        raise FormatError(f"expected ceil_mode 0 or 1, found {ceil}")
    count_pad = int(attrs.get("count_include_pad", 0))
    t = r.dim(x.of.name, 1)
    same = _same_pads(t, k0, s0)
    if auto == "SAME_UPPER":
        padding = "same"
    elif auto == "SAME_LOWER":
        if same is None or (same[0] + same[1]) % 2:
            raise r.unsupported("expected SAME_UPPER (TensorFlow's odd padding step at the end), found SAME_LOWER "
                                f"with {'an unknown number of steps' if same is None else 'an odd padding'}")
        padding = "same"
    elif auto == "VALID" or pads == [0, 0]:
        padding = "valid"
        if t is not None and k0 > t:
            raise FormatError(f"expected a pooling window of at most the {t} steps, found kernel_shape {k}")
    elif same is not None and pads == list(same):
        padding = "same"
    else:
        raise r.unsupported(f"expected pads [0, 0] or TensorFlow's 'same' padding (the odd step at the end, "
                            f"for {t if t is not None else 'an unknown number of'} steps: "
                            f"{list(same) if same else '?'}), found pads {pads}")
    if padding == "same" and node.op_type == "AveragePool" and count_pad and same != (0, 0):
        raise r.unsupported("expected count_include_pad=0 with padding (Keras leaves the padding out of the "
                            "mean), found count_include_pad=1")
    if ceil and auto in ("NOTSET", "VALID"):
        p = sum(pads) if auto == "NOTSET" else 0
        if t is None or (t + p - k0) % s0:
            raise r.unsupported(f"expected ceil_mode=0, or ceil_mode=1 where no window is partial, found ceil_mode=1 "
                                f"with kernel {k0}, stride {s0}, pads {pads} on "
                                f"{t if t is not None else 'an unknown number of'} steps (a partial last window)")
    options = {"mode": "max" if node.op_type == "MaxPool" else "average", "pool_size": k0, "strides": s0,
               "padding": padding}
    return [Pending("pool", (x.of, options, added))]


def _same_pads(t: int | None, k: int, s: int) -> tuple[int, int] | None:
    """TensorFlow's ``same`` padding (before, after) of ``t`` steps, the odd step at the end."""
    if t is None:
        return None
    total = max((-(-t // s) - 1) * s + k - t, 0)
    return total // 2, total - total // 2


def _finish_pool(r, node, pending: Pending):
    x, options, _ = pending.args
    return r.add("pool1d", [x.name], out_name(node), options, rank=3)


# -- layout: Transpose, Unsqueeze, Squeeze ----------------------------------------------------------
def _transpose(r, node, args, attrs):
    x, perm = args[0], [int(p) for p in attrs.get("perm", ())]
    if isinstance(x, Pending) and x.kind == "pool" and x.args[2] is None and perm in ([0, 2, 1], [2, 0, 1]):
        pooled = _finish_pool(r, node, x)  # [2, 0, 1]: torch's Conv1d -> MaxPool1d -> transpose(1, 2) -> nn.LSTM
        return [pooled if perm == [0, 2, 1] else View("time_major", pooled)]  # (its time-major Transpose folded in)
    if isinstance(x, View) and x.kind in ("unsqueeze1", "unsqueeze2") and perm == [0, 3, 1, 2] \
            and _ir3(r, x.of) is not None:  # tf2onnx's 1-D pooling as 2-D: (batch, features, time, 1) or (.., 1, time)
        return [View("channels_first_unsq", _ir3(r, x.of), 3 if x.kind == "unsqueeze2" else 2)]
    if isinstance(x, Pending) and x.kind == "deconv" and not x.args[8] and perm == [0, 2, 1]:
        return [_deconv_step(r, x, batch_first=True)]
    if isinstance(x, Pending) and x.kind == "resized" and perm == [0, 2, 1]:
        return [r.add("upsample1d", [x.args[0].name], out_name(node), {"size": x.args[1]}, rank=3)]
    if isinstance(x, View) and x.kind == "channels_first" and perm == [0, 2, 1] and _ir3(r, x.of) is not None:
        return [_ir3(r, x.of)]  # Transpose(Transpose(y, [0, 2, 1]), [0, 2, 1]) is y (a Conv1D's activation between)
    if len(perm) < 3 or perm[0] != 0 or sorted(perm) != list(range(len(perm))) or perm == sorted(perm) \
            or perm in ([0, 2, 1], [1, 0, 2]) or isinstance(x, (Const, View, Pending)):
        return None  # layouts onnx_ops.py reads (a rank-3 swap: a Conv / pooling layout, else Permute when used)
    ir = r.as_ir(x)
    if not isinstance(ir, IR) or _rank(r, ir) != len(perm):
        return None
    return [r.add("permute", [ir.name], out_name(node), {"dims": perm[1:]}, rank=len(perm))]


def _unsqueeze(r, node, args, attrs):
    x, axes = args[0], axes_of(node, args, attrs)
    if isinstance(x, View) and x.kind == "channels_first" and axes in ([2], [3], [-1], [-2]) \
            and _ir3(r, x.of) is not None:
        return [View("channels_first_unsq", x.of, axes[0] % 4)]  # dynamo's 1-D pooling as 2-D
    if axes in ([2], [-2]) and _ir3(r, x) is not None:
        return [View("unsqueeze2", _ir3(r, x))]  # UpSampling1D as gateport writes it
    if axes == [-3] and _ir3(r, x) is not None:
        return [View("unsqueeze1", _ir3(r, x))]  # tf2onnx's ExpandDims(x, -3) before a Conv1D (axis 1 of 4)
    return None


def _squeeze(r, node, args, attrs):
    x, axes = args[0], axes_of(node, args, attrs)
    if isinstance(x, Pending) and x.kind == "conv_unsq":
        if axes is None or len(axes) != 1 or axes[0] % 4 != x.args[1]:
            raise r.unsupported(f"expected Squeeze of the axis {x.args[1]} the 2-D Conv of a Conv1D was given, "
                                f"found axes {axes}")
        return [x.args[0]]
    if isinstance(x, Pending) and x.kind == "pool" and x.args[2] is not None and axes is not None \
            and len(axes) == 1 and axes[0] % 4 == x.args[2]:
        return [Pending("pool", (*x.args[:2], None))]
    return None


# -- time axis: Pad, Slice, Tile + Reshape --------------------------------------------------------
def _pad(r, node, args, attrs):
    """Pad of the time axis with zeros: zero_pad1d (negative pads: crop1d); zero steps after a transposed
    convolution already past its end: its output_padding."""
    deconv = args[0] if isinstance(args[0], Pending) and args[0].kind == "deconv" and args[0].args[8] else None
    x = _ir3(r, args[0]) if deconv is None else deconv.args[0]
    if x is None:
        raise r.unsupported(f"expected Pad of a (batch, time, features) tensor, found Pad of a {args[0].what}")
    mode = attrs.get("mode", b"constant")
    mode = mode.decode("utf-8", "replace") if isinstance(mode, bytes) else str(mode)
    if r.op_version < 11:  # Pad-2: pads and value attributes
        pads, value = [int(p) for p in attrs.get("pads", [])], float(attrs.get("value", 0.0))
    else:
        pads = ints(args[1]) if len(args) > 1 and args[1] is not None else None
        value_arg = args[2] if len(args) > 2 else None
        value = 0.0 if value_arg is None else scalar(value_arg)
        axes = ints(args[3]) if len(args) > 3 and args[3] is not None else None
        if pads is not None and axes is not None:  # Pad-18: pads for the given axes only
            if len(pads) != 2 * len(axes) or any(not -3 <= a < 3 for a in axes) or len({a % 3 for a in axes}) \
                    != len(axes):
                raise FormatError(f"expected Pad axes of a rank-3 tensor with 2 pads each, found axes {axes}, "
                                  f"pads {pads}")
            full = [0] * 6
            for i, a in enumerate(axes):
                full[a % 3], full[3 + a % 3] = pads[i], pads[len(axes) + i]
            pads = full
    if pads is None or value is None:
        raise r.unsupported("expected Pad with constant pads and a constant value")
    if len(pads) != 6:
        raise FormatError(f"expected 6 pads for a rank-3 tensor, found {pads}")
    if mode != "constant" or value != 0.0:
        raise r.unsupported(f"expected Pad with zeros (mode constant, value 0), found mode {quote(mode, 20)}, "
                            f"value {value}")
    if any(pads[a] or pads[3 + a] for a in (0, 2)):
        raise r.unsupported(f"expected Pad of the time axis only, found pads {pads}")
    left, right = pads[1], pads[4]
    if deconv is not None:
        if left or right < 0 or deconv.args[7] < 0:
            raise r.unsupported(f"expected zero steps added at the end of a transposed convolution cut no shorter "
                                f"than its full length, found pads {pads}")
        return [_deconv_step(r, deconv, after=deconv.args[7] + right)]
    if left >= 0 and right >= 0:
        return [r.add("zero_pad1d", [x.name], out_name(node), {"padding": [left, right]}, rank=3)]
    if left <= 0 and right <= 0:
        return [_crop(r, node, x, -left, -right)]
    raise r.unsupported(f"expected Pad adding or removing steps at both ends, found pads {pads}")


def _crop(r, node, x: IR, left: int, right: int) -> IR:
    t = r.dim(x.name, 1)
    if t is not None and left + right > t:
        raise FormatError(f"expected a crop of at most the {t} steps, found {left} + {right}")
    return r.add("crop1d", [x.name], out_name(node), {"cropping": [left, right]}, rank=3)


def _slice(r, node, args, attrs):
    """Slice of the time axis at step 1 (the other axes whole): crop1d; a Bidirectional's merged output
    reversed in time (tf2onnx's ReverseV2 before a go_backwards layer): that tensor, flipped."""
    if r.op_version < 10 or len(args) < 3:
        return None
    if isinstance(args[0], Merged) and not args[0].time_major:
        from .onnx_ops import _is_time_flip  # the reader's own test of x[:, ::-1]

        flip = [ints(a) if a is not None else None for a in (args + [None] * 5)[1:5]]
        if _is_time_flip(*flip):  # only then made a tensor: any other Slice of it is the reader's own case
            merged = r.as_ir(args[0])
            if isinstance(merged, IR) and merged.rank == 3:
                return [View("flipped", merged)]
    if isinstance(args[0], (Const, View, Zeros, ShapeOf)) or isinstance(args[0], Pending) \
            and args[0].kind != "deconv":
        return None
    starts, ends = ints(args[1]), ints(args[2])
    axes = ints(args[3]) if len(args) > 3 and args[3] is not None else None
    steps = ints(args[4]) if len(args) > 4 and args[4] is not None else None
    if starts is None or ends is None or len(starts) != len(ends):
        return None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if len(axes) != len(starts) or len(steps) != len(starts) or any(not -3 <= a < 3 for a in axes):
        return None
    time = None
    for a, start, end, step in zip(axes, starts, ends, steps):
        if a % 3 == 1:
            time = (start, end, step)
        elif not (start == 0 and end >= _BIG and step == 1):
            return None  # another axis sliced: onnx_ops.py's forms (a direction's half) or its refusal
    if isinstance(args[0], Pending) and time is not None and time[2] == 1:
        return [_deconv_slice(r, args[0], time[0], time[1])]
    x = _ir3(r, args[0]) if time is not None and time[2] == 1 else None
    if x is None:
        return None
    start, end, _ = time
    t = r.dim(x.name, 1)
    if start < 0 or end < 0 and end > -_BIG or 0 <= end < _BIG:
        if t is None:
            raise r.unsupported(f"expected a time slice [start:end] with start >= 0 and end negative or to the end "
                                f"when the number of steps is unknown, found [{start}:{end}]")
        first, stop, _ = slice(start, end).indices(t)
        return [_crop(r, node, x, first, t - max(stop, first))]
    return [_crop(r, node, x, start, -end if end < 0 else 0)]


def _tile(r, node, args, attrs):
    """``Tile`` (or ``Expand``) of ``Unsqueeze(x, 2)`` by ``[1, 1, n, 1]``: steps repeated, pending the Reshape."""
    x, reps = args[0], ints(args[1]) if len(args) > 1 else None
    if isinstance(x, View) and x.kind == "unsqueeze2" and reps is not None and len(reps) == 4 \
            and reps[0] == reps[1] == reps[3] == 1 and reps[2] >= 1:
        return [Pending("repeat_steps", (x.of, reps[2]))]
    return None


def _reshape(r, node, args, attrs):
    """``Reshape(Tile(Unsqueeze(x, 2), [1, 1, n, 1]), shape)`` with ``shape`` Shape(x) * [1, n, 1] (gateport's
    writer) or a constant ``(batch, time * n, features)``: upsample1d."""
    x = args[0]
    if isinstance(x, Pending) and x.kind == "group_normed":
        return [_ungrouped(r, node, x, args[1])]
    grouped = _grouped(r, x, ints(args[1]))
    if grouped is not None:
        return [grouped]
    if not (isinstance(x, Pending) and x.kind == "repeat_steps"):
        return None
    src, n = x.args
    shape = ints(args[1])
    if int(attrs.get("allowzero", 0)) and (shape is None or 0 in shape):
        raise r.unsupported("expected Reshape without allowzero (or without a 0 in its shape) after a Tile of steps")
    t, f = r.dim(src.name, 1), r.dim(src.name, 2)
    if shape is not None:
        ok = len(shape) == 3 and shape[0] in (0, -1) and shape[2] in (0, f) and shape[2] != -1 \
            and (shape[1] == -1 and shape[0] == 0 or t is not None and shape[1] == t * n)
        ok = ok and (shape[0] == 0 or f is not None and t is not None)
    else:
        ok = _shape_times(r, node.input[1], src, n) or _batch_rest_features(r, node)
    if not ok:
        raise r.unsupported(f"expected the repeated steps reshaped to (batch, time * {n}, features), found shape "
                            f"{shape if shape is not None else quote(node.input[1])}")
    return [r.add("upsample1d", [src.name], out_name(node), {"size": n}, rank=3)]


def _shape_times(r, name: str, src: IR, n: int) -> bool:
    """``name`` is ``Mul(Shape(s), [1, n, 1])`` with ``s`` the IR tensor ``src``."""

    mul = onnx_producer(r, name)
    if mul is None or mul.op_type != "Mul" or len(mul.input) != 2:
        return False
    shape = onnx_producer(r, mul.input[0])
    if shape is None or shape.op_type != "Shape" or len(shape.attribute) or ints(r.env.get(mul.input[1])) != [1, n, 1]:
        return False
    of = r.env.get(shape.input[0])
    return of is not None and r.as_ir(of) is not None and getattr(r.as_ir(of), "name", None) == src.name


def _batch_rest_features(r, node) -> bool:
    """The shape input is ``Concat(Shape(t)[0:1], [-1], Shape(t)[3:4])`` of the tiled tensor ``t`` (torch's
    repeat_interleave): (batch, -1, features)."""

    def part(name: str) -> tuple | None:  # Slice(Shape(t), [start], [end]) (axes [0], steps [1] if given)
        sl = onnx_producer(r, name)
        shape = onnx_producer(r, sl.input[0]) if sl is not None and sl.op_type == "Slice" else None
        if shape is None or shape.op_type != "Shape" or len(shape.attribute) or not 3 <= len(sl.input) <= 5:
            return None
        bounds = [ints(r.env.get(i)) or [] for i in sl.input[1:]]
        if any(len(b) != 1 for b in bounds) or bounds[2:] not in ([], [[0]], [[0], [1]]):
            return None
        return shape.input[0], bounds[0][0], bounds[1][0]

    cat = onnx_producer(r, node.input[1])
    if cat is None or cat.op_type != "Concat" or len(cat.input) != 3:
        return False
    return part(cat.input[0]) == (node.input[0], 0, 1) and ints(r.env.get(cat.input[1])) == [-1] \
        and part(cat.input[2]) == (node.input[0], 3, 4)


def _resize(r, node, args, attrs):
    """Resize (nearest, asymmetric, floor) of ``Transpose(x, [0, 2, 1])`` by a whole number on the time axis:
    pending until the Transpose back, then upsample1d (each step repeated; torch's nn.Upsample)."""
    x = args[0]
    if not (isinstance(x, View) and x.kind == "channels_first" and _ir3(r, x.of) is not None):
        raise r.unsupported(f"expected Resize of Transpose(x, [0, 2, 1]) of a (batch, time, features) tensor, found "
                            f"Resize of a {x.what}")
    text = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in attrs.items()}
    mode, coords = text.get("mode", "nearest"), text.get("coordinate_transformation_mode", "half_pixel")
    rounding = text.get("nearest_mode", "round_prefer_floor")
    scales = args[1] if r.op_version < 11 else (args[2] if len(args) > 2 else None)
    sizes = args[3] if len(args) > 3 else None
    axes = [int(a) for a in attrs["axes"]] if "axes" in attrs else None
    t = r.dim(x.of.name, 1)
    if isinstance(scales, Const) and scales.value.size:
        factors = [float(f) for f in scales.value.reshape(-1)]
    elif isinstance(sizes, Const) and t is not None:
        got = [int(v) for v in sizes.value.reshape(-1)]
        factors = [got[-1] / t] if axes is not None else [1.0, 1.0, got[-1] / t] if len(got) == 3 and \
            got[1] in (r.dim(x.of.name, 2),) else []
    else:
        raise r.unsupported("expected Resize by constant scales (or constant sizes with a known number of steps)")
    if axes is not None and [a % 3 for a in axes] != [2] or axes is None and (len(factors) != 3 or factors[:2] !=
                                                                             [1.0, 1.0]):
        raise r.unsupported(f"expected Resize of the time axis only, found scales {factors} (axes {axes})")
    n = factors[-1]
    if mode != "nearest" or coords != "asymmetric" or not (rounding == "floor" or rounding == "round_prefer_floor"
                                                           and n == 2.0) or int(attrs.get("antialias", 0)):
        raise r.unsupported(f"expected Resize mode nearest, asymmetric coordinates, nearest_mode floor (each step "
                            f"repeated), found {quote(mode, 20)}, {quote(coords, 30)}, {quote(rounding, 30)}")
    if n != int(n) or n < 1:
        raise r.unsupported(f"expected Resize of the time axis by a whole number, found {n:g}")
    return [Pending("resized", (x.of, int(n)))]


def _concat(r, node, args, attrs):
    """Concat of constants where some are ConstantOfShape zeros of a constant shape (torch's padding sizes)."""
    if not any(isinstance(a, Zeros) for a in args) or not all(isinstance(a, (Const, Zeros)) for a in args):
        return None

    values = []
    for name, a in zip(node.input, args):
        if isinstance(a, Zeros):
            p = onnx_producer(r, name)
            shape = ints(r.env.get(p.input[0])) if p is not None and p.op_type == "ConstantOfShape" else None
            if shape is None or len(shape) > 1 or any(d < 0 for d in shape):
                return None
            dtype = r.array(p.attribute[0].t).dtype if p.attribute else np.float32
            r.fold(tuple(shape), dtype)
            a = Const(np.zeros(shape, dtype))
        values.append(a.value)
    axis = int(attrs["axis"])
    return [Const(np.concatenate(values, axis=axis))]


# -- global pooling -------------------------------------------------------------------------------
_GLOBAL = {"ReduceMax": "max", "ReduceMean": "average"}


def _global_pool(r, node, args, attrs):
    """ReduceMax / ReduceMean over the time axis of a (batch, time, features) tensor: global_pool."""
    x = _ir3(r, args[0])
    axes = axes_of(node, args, attrs)
    if x is None or axes is None or len(axes) != 1 or axes[0] % 3 != 1 or not -3 <= axes[0] < 3:
        return None
    keep = int(attrs.get("keepdims", 1))
    return [r.add("global_pool", [x.name], out_name(node), {"mode": _GLOBAL[node.op_type], "axis": 1,
                                                             "keepdims": bool(keep)}, rank=3 if keep else 2)]


# -- activation layers ----------------------------------------------------------------------------
def _producer(r, v, op: str, **options):
    """The IR node computing ``v`` when it is an ``op`` node with these options, else None."""
    if not isinstance(v, IR):
        return None
    p = r.producer.get(v.name)
    if p is None or p.op != op or any(p.options.get(k) != o for k, o in options.items()):
        return None
    return p


def _name(r, v) -> str | None:
    """The IR tensor holding ``v`` when it is a plain or viewed (permuted) tensor, else None."""
    if isinstance(v, View) and v.kind == "channels_first":
        return r.tensor(v)
    v = r.as_ir(v)
    return v.name if isinstance(v, IR) else None


def _relu_of(r, v) -> tuple[str, dict] | None:
    """``(x, options)`` when ``v`` is a relu of ``x`` without a negative slope: an activation relu, or a relu
    node (threshold, max_value) this module made."""
    p = _producer(r, v, "activation", activation="relu")
    if p is not None:
        return p.inputs[0], {"negative_slope": 0.0, "max_value": None, "threshold": 0.0}
    p = _producer(r, v, "relu", negative_slope=0.0)
    return (p.inputs[0], dict(p.options)) if p is not None else None


def _relu_plus(r, node, y, part: Pending) -> IR:
    """``relu(x) + c * relu(t - x)`` (tf2onnx): Keras ReLU with negative_slope ``-c`` (c a number), or PReLU
    with alpha ``-c`` (c a constant shaped like a sample, t 0)."""
    found = _relu_of(r, r.as_ir(y))
    x = part.args[0]
    if found is None or found[0] != x.name or found[1]["threshold"] != part.args[1]:
        raise r.unsupported("expected relu(x) + c * relu(t - x) of one tensor x (Keras ReLU / PReLU)")
    if part.kind == "negative_weights":
        if part.args[1] != 0.0 or found[1] != {"negative_slope": 0.0, "max_value": None, "threshold": 0.0}:
            raise r.unsupported("expected relu(x) + c * relu(-x) (Keras PReLU) without threshold or max_value")
        return _prelu_node(r, node, x, -part.args[2])
    slope = -part.args[2]
    if slope < 0:
        raise r.unsupported(f"expected a non-negative slope of Keras ReLU's negative part, found {slope:g}")
    return _relu_node(r, node, x.name, {**found[1], "negative_slope": slope})


def _relu_node(r, node, x: str, options: dict) -> IR:
    return r.add("relu", [x], out_name(node), {"negative_slope": 0.0, "max_value": None, "threshold": 0.0,
                                               **options}, rank=r.ranks.get(x))


def _sub(r, node, args, attrs):
    """``t - x`` (Pending: the negative part of a Keras ReLU / LeakyReLU), or ``relu - slope * relu(t - x)``."""
    a, b = args
    t = scalar(a) if isinstance(a, Const) else None
    if t is not None and a.value.size == 1 and a.value.ndim == 0 and not isinstance(b, Const) \
            and only_read_by(r, node.output[0], "Relu"):
        x = r.as_ir(b)
        if isinstance(x, IR):
            return [Pending("rsub", (x, _finite(r, "threshold", t)))]
    if isinstance(a, Pending) and a.kind == "grouped" and isinstance(b, Pending) and b.kind == "group_mean" \
            and a.args == b.args:
        return [Pending("group_centered", a.args)]
    if isinstance(b, Const) and b.value.dtype.kind == "f" and isinstance(a, IR):
        return [Pending("centered_const", (a, b.value))]  # Keras Normalization's x - mean, pending its Div
    if isinstance(b, Pending) and b.kind == "negative_part":
        x, t, slope = b.args
        found = _relu_of(r, r.as_ir(a))
        if found is None or found[0] != x.name or found[1]["threshold"] != t:
            raise r.unsupported(f"expected relu(x) - {slope:g} * relu({t:g} - x) of one tensor x (Keras ReLU with a "
                                "negative slope)")
        if slope < 0:
            raise r.unsupported(f"expected a non-negative slope of Keras ReLU's negative part, found {slope:g}")
        return [_relu_node(r, node, x.name, {**found[1], "negative_slope": slope})]
    return None


def _neg(r, node, args, attrs):
    """``-x``: the start of ``relu(t - x)`` as tf2onnx writes Keras ReLU / PReLU (``Neg``, then ``Add t``)."""
    x = r.as_ir(args[0])
    out = node.output[0]
    if isinstance(x, IR) and x.dtype.startswith("float") and (only_read_by(r, out, "Relu") or (
            only_read_by(r, out, "Add") and all(only_read_by(r, n.output[0], "Relu") for n in onnx_consumers(r, out)))):
        return [Pending("rsub", (x, 0.0))]
    raise r.unsupported(f"expected Neg of a float tensor (the negative part of a ReLU), found Neg of a {x.what}")


def _thresholded_relu(r, node, args, attrs):
    """ThresholdedRelu: ``x if x > alpha else 0``, Keras ReLU's threshold."""
    t = _finite(r, "ThresholdedRelu alpha", float(attrs.get("alpha", 1.0)))
    if t < 0:
        raise r.unsupported(f"expected a ThresholdedRelu alpha >= 0 (Keras' threshold), found {t:g}")
    return [_relu_node(r, node, r.tensor(args[0], out_name(node)), {"threshold": t})]


def _relu(r, node, args, attrs):
    x = args[0]
    if isinstance(x, Pending) and x.kind == "conv":  # tf2onnx: Conv1D's relu before the Transpose back
        from .onnx_ops import _conv1d  # the Conv1D node as the reader makes it for gateport's own form

        return [View("channels_first", _activation(r, node, _conv1d(r, None, *x.args), "relu"))]
    if isinstance(x, Pending) and x.kind == "rsub":
        return [Pending("relu_below", x.args)]
    return None


def _mul(r, node, args, attrs):
    """The factors of Keras ReLU's parts, Mish ``x * tanh(softplus(x))``, UnitNormalization's ``x * inv``."""
    if len(args) != 2:
        return None
    if node.input[0] == node.input[1] and isinstance(args[0], Pending) and args[0].kind == "group_centered":
        return [Pending("group_sq", args[0].args)]
    if node.input[0] == node.input[1] and not isinstance(args[0], (Const, Pending)) \
            and isinstance(r.as_ir(args[0]), IR):  # x * x (a recurrent output too: not a merge of two directions)
        x = r.as_ir(args[0])
        return [r.add("multiply", [x.name, x.name], out_name(node), rank=x.rank)]
    for a, b in (args, args[::-1]):
        if isinstance(a, Pending) and a.kind == "relu_below" and isinstance(b, Const) and b.value.size == 1 \
                and b.value.ndim == 0:
            x, t = a.args
            return [Pending("negative_part", (x, t, _finite(r, "negative slope", float(b.value))))]
        if isinstance(a, Pending) and a.kind == "relu_below" and isinstance(b, Const) and b.value.dtype.kind == "f":
            return [Pending("negative_weights", (*a.args, b.value))]
        if isinstance(a, Pending) and a.kind == "above_float" and _name(r, b) == a.args[0].name:
            x, t = a.args
            if t < 0:
                raise r.unsupported(f"expected x * (x > t) with a threshold t >= 0 (Keras ReLU), found {t:g}")
            return [_relu_node(r, node, x.name, {"threshold": t})]
        if isinstance(a, Pending) and a.kind == "inv_norm" and _name(r, b) == a.args[0]:
            x, axes = a.args
            return [r.add("unit_norm", [x], out_name(node), {"axes": axes}, rank=r.ranks.get(x))]
    for a, b in (args, args[::-1]):
        found = _gelu_mul(r, node, a, b)
        if found is not None:
            return [found]
        if isinstance(a, Pending) and a.kind == "normalized" and isinstance(b, Const):
            return [_with_weight(r, a, "gamma", b.value)]
        if isinstance(a, Pending) and a.kind == "inv_std" and not isinstance(b, (Const, Pending)):
            return [_normalized(r, node, b, Pending("std", a.args))]
    a, b = args  # plain tensors only: a recurrent output stays symbolic for onnx_ops.py (Bidirectional merges)
    for x, t in ((a, b), (b, a)):
        soft = r.producer.get(r.producer[t.name].inputs[0]) if _producer(r, t, "activation", activation="tanh") \
            else None
        if isinstance(x, IR) and soft is not None and soft.op == "activation" \
                and soft.options["activation"] == "softplus" and soft.inputs == [x.name]:
            return [r.add("activation", [x.name], out_name(node), {"activation": "mish"}, rank=x.rank)]
    return None


def _greater(r, node, args, attrs):
    """``x > t`` of a float tensor and a number: Keras ReLU's threshold (Pending until its Cast and Mul)."""
    x, t = r.as_ir(args[0]), args[1]
    if isinstance(x, IR) and x.dtype.startswith("float") and isinstance(t, Const) and t.value.size == 1 \
            and t.value.ndim == 0:
        return [Pending("above", (x, _finite(r, "threshold", float(t.value))))]
    return None


def _cast(r, node, args, attrs):
    x = args[0]
    if isinstance(x, Pending) and x.kind == "above" and int(attrs.get("to", 0)) == 1:
        return [Pending("above_float", x.args)]
    return None


def _bound(r, node, args, attrs, k: int, key: str):
    if r.op_version < 11:
        return attrs.get(key)
    return scalar(args[k]) if len(args) > k and isinstance(args[k], Const) and args[k].value.size == 1 else \
        (None if len(args) <= k or args[k] is None else "run-time")


def _clip(r, node, args, attrs):
    """``Clip(relu, 0, m)``: Keras ReLU's max_value on a relu of x (a clip of any other tensor: onnx_ops.py)."""
    found = _relu_of(r, r.as_ir(args[0]))
    lo, hi = _bound(r, node, args, attrs, 1, "min"), _bound(r, node, args, attrs, 2, "max")
    if found is None or found[1]["max_value"] is not None or lo != 0.0 or not isinstance(hi, float):
        return _clip_bounds(r, node, args, lo, hi)
    top = _finite(r, "Clip max", hi)
    if top < 0:
        raise r.unsupported(f"expected a Clip max >= 0 after a relu, found {top:g}")
    return [_relu_node(r, node, found[0], {**found[1], "max_value": top})]


def _clip_bounds(r, node, args, lo, hi):
    """Clip of a tensor by constant bounds (torch's ``clamp(min=1.0)`` of a count before a division): the IR's
    element-wise ``maximum`` then ``minimum`` by each bound given, as ONNX computes ``min(max(x, lo), hi)``."""
    x = r.as_ir(args[0])
    if not isinstance(x, IR) or "run-time" in (lo, hi) or (lo, hi) == (None, None):
        return None
    name = x.name
    bounds = [(op, _finite(r, f"Clip {key}", v)) for op, key, v in (("maximum", "min", lo), ("minimum", "max", hi))
              if v is not None]
    for k, (op, v) in enumerate(bounds):
        last = k == len(bounds) - 1
        name = r.add("scalar", [name], out_name(node) if last else r.fresh(f"{out_name(node)}/{op}"),
                     {"operation": op, "value": v}, rank=x.rank).name
    return [IR(name, x.rank)]


def _leaky_relu(r, node, args, attrs):
    """LeakyRelu: the activation leaky_relu (alpha 0.2, onnx_ops.py), else Keras' LeakyReLU layer (relu op)."""
    alpha = _finite(r, "LeakyRelu alpha", float(attrs.get("alpha", 0.01)))
    if np.float32(alpha) == np.float32(0.2):
        return None
    if alpha < 0:
        raise r.unsupported(f"expected a LeakyRelu alpha >= 0 (Keras' negative_slope), found {alpha:g}")
    return [_relu_node(r, node, r.tensor(args[0], out_name(node)), {"negative_slope": alpha})]


def _elu(r, node, args, attrs):
    """Elu: the activation elu (alpha 1, onnx_ops.py), else Keras' ELU layer (elu op)."""
    alpha = _finite(r, "Elu alpha", float(attrs.get("alpha", 1.0)))
    if np.float32(alpha) == np.float32(1.0):
        return None
    x = r.tensor(args[0], out_name(node))
    return [r.add("elu", [x], out_name(node), {"alpha": alpha}, rank=r.ranks.get(x))]


def _prelu(r, node, args, attrs):
    """PRelu with a constant slope broadcast to the input (unidirectionally): Keras PReLU, alpha shaped like one
    sample with 1 on the shared axes."""
    x, slope = r.as_ir(args[0]), args[1]
    if not isinstance(x, IR) or _rank(r, x) is None or not isinstance(slope, Const) or slope.value.dtype.kind != "f":
        raise r.unsupported("expected PRelu of a tensor of known rank by a constant float slope")
    return [_prelu_node(r, node, x, slope.value)]


def _prelu_node(r, node, x: IR, s: np.ndarray) -> IR:
    rank = _rank(r, x) or 0
    if rank < 2:
        raise r.unsupported(f"expected PRelu of a tensor with axes after the batch, found rank {rank}")
    if s.ndim > rank or s.ndim == rank and s.shape[0] != 1:
        raise r.unsupported(f"expected a PRelu slope shaped like one sample (1 on the batch axis), found shape "
                            f"{list(s.shape)} for a rank-{rank} input")
    dims = (1,) * (rank - 1 - s.ndim) + s.shape[-(rank - 1):] if s.ndim else (1,) * (rank - 1)
    shared = []
    for axis, d in enumerate(dims, start=1):
        size = r.dim(x.name, axis)
        if d == 1 and size != 1:
            shared.append(axis)
        elif d != size:
            raise r.unsupported(f"expected a PRelu slope of shape {['1' if n is None else n for n in r.shapes.get(x.name, ())]}"
                                f" or 1 on shared axes, found {list(s.shape)}")
    alpha = np.ascontiguousarray(s.reshape(dims).astype(np.float32))
    return r.add("prelu", [x.name], out_name(node), {"shared_axes": shared}, {"alpha": alpha}, rank=rank)


def _mish(r, node, args, attrs):
    x = r.tensor(args[0], out_name(node))
    return [r.add("activation", [x], out_name(node), {"activation": "mish"}, rank=r.ranks.get(x))]


# -- UnitNormalization: x * min(1 / sqrt(sum(x^2)), 1e12) ------------------------------------------
def _sqrt(r, node, args, attrs):
    """``sqrt(sum(x * x))`` over the last axes: UnitNormalization's norm; any other tensor's: the activation ``sqrt``
    (``tf.sqrt`` / ``keras.ops.sqrt``: converters/activations.py)."""
    total = _producer(r, r.as_ir(args[0]), "reduce", mode="sum", keepdims=True)
    square = r.producer.get(total.inputs[0]) if total is not None else None
    if square is None or square.op != "multiply" or len(square.inputs) != 2 or square.inputs[0] != square.inputs[1]:
        from .onnx_ops import HANDLERS as base  # the element-wise activation (onnx_ops imports this module's users)

        return base["Sqrt"](r, node, args, attrs)
    x, rank = square.inputs[0], r.ranks.get(square.inputs[0])
    axes = [a - rank for a in total.options["axes"]] if rank else []
    if not axes or axes != list(range(-len(axes), 0)):
        raise r.unsupported(f"expected the sum of squares over the last axes (Keras UnitNormalization), found Keras "
                            f"axes {total.options['axes']} of a rank-{rank} tensor")
    return [Pending("norm", (x, axes))]


def _reciprocal(r, node, args, attrs):
    if isinstance(args[0], Pending) and args[0].kind == "norm":
        return [Pending("inv_norm_uncapped", args[0].args)]
    if isinstance(args[0], Pending) and args[0].kind == "std":
        return [Pending("inv_std", args[0].args)]  # rsqrt(variance + eps) (dynamo's RMSNorm), pending its Mul
    raise r.unsupported("expected Reciprocal of the norm sqrt(sum(x^2)) (Keras UnitNormalization)")


def _max(r, node, args, attrs):
    """``max(min(relu(x), m), 0)`` (tf2onnx's clip_by_value after a relu): Keras ReLU's max_value;
    ``max(sqrt(variance), epsilon)``: Keras Normalization's scale."""
    if len(args) == 2 and isinstance(args[0], Pending) and args[0].kind == "sqrt_const" and scalar(args[1]) is not None:
        eps = _finite(r, "epsilon", scalar(args[1]))
        if eps < 0:
            raise r.unsupported(f"expected an epsilon >= 0, found {eps:g}")
        return [Pending("norm_scale", (args[0].args[0], _decimal(eps)))]
    if len(args) == 2 and isinstance(args[0], Pending) and args[0].kind == "relu_min" and scalar(args[1]) == 0.0:
        x, options, top = args[0].args
        return [_relu_node(r, node, x, {**options, "max_value": top})]
    return None


def _min(r, node, args, attrs):
    if len(args) == 2 and isinstance(args[1], Const) and args[1].value.size == 1 and not isinstance(args[0], Pending):
        found = _relu_of(r, r.as_ir(args[0]))
        if found is not None and found[1]["max_value"] is None:
            top = _finite(r, "max_value", float(args[1].value.reshape(-1)[0]))
            if top >= 0:
                return [Pending("relu_min", (found[0], found[1], top))]
    if len(args) == 2 and isinstance(args[0], Pending) and args[0].kind == "inv_norm_uncapped":
        if scalar(args[1]) is None or np.float32(scalar(args[1])) != np.float32(1e12):
            raise r.unsupported(f"expected 1 / norm capped at 1e12 (Keras UnitNormalization), found a cap of "
                                f"{args[1].what}")
        return [Pending("inv_norm", args[0].args)]
    return None


# -- Gelu, LogSoftmax ------------------------------------------------------------------------------
_GELU = {"none": "gelu", "tanh": "gelu_tanh"}


def _activation(r, node, x_value, name: str) -> IR:
    x = r.tensor(x_value, out_name(node))
    return r.add("activation", [x], out_name(node), {"activation": name}, rank=r.ranks.get(x))


def _gelu(r, node, args, attrs):
    """Gelu-20: ``approximate`` none (erf) or tanh."""
    how = attrs.get("approximate", b"none")
    how = how.decode("utf-8", "replace") if isinstance(how, bytes) else str(how)
    if how not in _GELU:
        raise FormatError(f"expected Gelu approximate 'none' or 'tanh', found {quote(how, 20)}")
    return [_activation(r, node, args[0], _GELU[how])]


def _log_softmax(r, node, args, attrs):
    """LogSoftmax over the last axis (LogSoftmax-13: ``axis`` default -1; before, default 1, the input coerced to
    2-D at ``axis``: the last axis only when ``axis`` is the last)."""
    x = r.tensor(args[0], out_name(node))
    rank = r.ranks.get(x)
    axis = int(attrs.get("axis", -1 if r.op_version >= 13 else 1))
    if rank is None or not -rank <= axis < rank:
        raise r.unsupported(f"expected LogSoftmax of a tensor of known rank on one of its axes, found axis {axis}")
    if axis % rank != rank - 1:
        raise r.unsupported(f"expected LogSoftmax on the last axis (Keras' log_softmax), found axis {axis} of a "
                            f"rank-{rank} tensor")
    return [r.add("activation", [x], out_name(node), {"activation": "log_softmax"}, rank=rank)]


def _erf(r, node, args, attrs):
    """``erf(x / sqrt 2)`` (``x * 0.70710677`` gateport's writer, ``x / 1.4142135`` torch): part of gelu."""

    p = onnx_producer(r, node.input[0])
    if p is None or p.op_type not in ("Mul", "Div") or len(p.input) != 2:
        raise r.unsupported("expected Erf of x / sqrt(2) (gelu)")
    x, c = (r.env.get(i) for i in p.input)
    if p.op_type == "Mul" and isinstance(x, Const):
        x, c = c, x
    want = np.float32(0.5 ** 0.5) if p.op_type == "Mul" else np.float32(2 ** 0.5)
    x = r.as_ir(x)
    if not isinstance(x, IR) or not isinstance(c, Const) or c.value.size != 1 or np.float32(c.value.reshape(-1)[0]) \
            != want:
        raise r.unsupported(f"expected Erf of x {'*' if p.op_type == 'Mul' else '/'} {want} (gelu), found another "
                            f"{p.op_type}")
    return [Pending("erf_gelu", (x,))]


def _div(r, node, args, attrs):
    """``x / number`` read by Erf alone (torch's gelu): left to Erf; ``x / sqrt(var + eps)``; a masked mean."""
    a, b = args
    uses = onnx_consumers(r, out_name(node))
    if isinstance(a, IR) and isinstance(b, Const) and b.value.size == 1 and uses \
            and all(u.op_type == "Erf" for u in uses):
        return [Pending("erf_input", (a,))]  # _erf reads the Div node itself
    if isinstance(b, Pending) and b.kind == "std":
        return [_normalized(r, node, a, b)]
    if isinstance(a, Pending) and a.kind == "group_centered" and isinstance(b, Pending) and b.kind == "group_std" \
            and a.args == b.args[:2]:
        return [Pending("group_normed", b.args)]
    if isinstance(a, Pending) and a.kind == "centered_const" and isinstance(b, Pending) and b.kind == "norm_scale":
        return [_normalization(r, node, *a.args, *b.args)]
    if isinstance(b, Pending) and b.kind == "mask_count":
        return [_masked_average(r, node, a, *b.args)]
    return None


def _add(r, node, args, attrs):
    if len(args) != 2:
        return None
    a, b = args
    if isinstance(b, Pending) and not isinstance(a, Pending):
        a, b = b, a
    if isinstance(a, Pending) and a.kind == "rsub" and a.args[1] == 0.0 and isinstance(b, Const) \
            and b.value.size == 1 and b.value.ndim <= 1:
        return [Pending("rsub", (a.args[0], _finite(r, "threshold", float(b.value.reshape(-1)[0]))))]
    if isinstance(a, Pending) and a.kind in ("negative_part", "negative_weights") and not isinstance(b, Pending):
        return [_relu_plus(r, node, b, a)]
    if isinstance(a, Pending) and a.kind == "deconv" and a.args[8] and a.args[2] is None and isinstance(b, Const):
        filters = a.args[1].shape[1]
        if b.value.dtype.kind != "f" or b.value.size != filters or b.value.ndim > 3 \
                or b.value.ndim and b.value.shape[-1] != filters:
            raise r.unsupported(f"expected a bias of one float per filter ({filters},) after a transposed convolution, "
                                f"found a {b.value.dtype} constant of shape {list(b.value.shape)}")
        return [_deconv_step(r, a, bias=np.ascontiguousarray(b.value.reshape(-1)))]
    if isinstance(a, Pending) and a.kind == "conv" and a.args[2] is None and isinstance(b, Const):
        return [_conv_bias(r, a, b.value)]
    if isinstance(a, Pending) and a.kind == "group_var" and scalar(b) is not None:
        eps = _finite(r, "epsilon", scalar(b))
        if eps < 0:
            raise r.unsupported(f"expected an epsilon >= 0 added to the variance, found {eps:g}")
        return [Pending("group_var_eps", (*a.args, _decimal(eps)))]
    if isinstance(a, Pending) and a.kind == "scale" and isinstance(b, Const):
        found = _rescaling(r, node, a, b.value)
        if found is not None:
            return [found]
    if isinstance(a, Pending) and a.kind == "erf_gelu" and isinstance(b, Const) and b.value.size == 1 \
            and float(b.value.reshape(-1)[0]) == 1.0:
        return [Pending("erf_gelu_1", a.args)]
    if isinstance(a, Pending) and a.kind == "normalized" and isinstance(b, Const):
        return [_norm_node(r, out_name(node), _with_weight(r, a, "beta", b.value))]
    if isinstance(b, Const) and b.value.size == 1 and b.value.ndim <= 1 and isinstance(a, IR):
        found = _variance(r, a)
        if found is not None:
            eps = _finite(r, "epsilon", float(b.value.reshape(-1)[0]))
            if eps < 0:
                raise r.unsupported(f"expected an epsilon >= 0 added to the variance, found {eps:g}")
            return [Pending("variance_eps", (*found, _decimal(eps)))]
    return None


def _decimal(v: float) -> float:
    """A float32 number as the shortest decimal that is that float32 (``0.001`` for 0.0010000000475): an
    epsilon as a Keras config states it."""
    return float(np.format_float_scientific(np.float32(v), unique=True))


def _gelu_mul(r, node, a, b):
    """``x * (1 + erf)`` then ``* 0.5`` (torch), ``x * (0.5 * (1 + erf))`` (torch's dynamo exporter at opset
    18) or ``(x * 0.5) * (1 + erf)`` (gateport's writer): gelu (a product by 0.5 is exact in any order)."""
    if isinstance(a, Pending) and a.kind == "erf_gelu_1" and _name(r, b) == a.args[0].name:
        return Pending("gelu_x", a.args)
    if isinstance(a, Pending) and a.kind == "erf_gelu_1" and isinstance(b, Const) and b.value.size == 1 \
            and float(b.value.reshape(-1)[0]) == 0.5:
        return Pending("gelu_half", a.args)
    if isinstance(a, Pending) and a.kind == "gelu_half" and _name(r, b) == a.args[0].name:
        return _activation(r, node, a.args[0], "gelu")
    if isinstance(a, Pending) and a.kind == "gelu_x" and isinstance(b, Const) and b.value.size == 1 \
            and float(b.value.reshape(-1)[0]) == 0.5:
        return _activation(r, node, a.args[0], "gelu")
    if isinstance(a, Pending) and a.kind == "erf_gelu_1" and isinstance(b, Pending) and b.kind == "scale":
        x, (_, vector) = b.args
        if x.name == a.args[0].name and vector.size and np.all(vector == np.float32(0.5)):
            return _activation(r, node, x, "gelu")
    return None


# -- LayerNormalization, RMSNormalization: the op and the ReduceMean graphs -------------------------
def _variance(r, v: IR) -> tuple | None:
    """``(kind, x, c, axes)`` when ``v`` is ``mean(c * c)`` (keepdims) over the last axes: kind ``var`` when ``c``
    is ``x - mean(x)`` over the same axes, ``ms`` (mean square of ``x = c``) otherwise."""
    mean = _producer(r, v, "reduce", mode="mean", keepdims=True)
    square = r.producer.get(mean.inputs[0]) if mean is not None else None
    if square is None or square.op != "multiply" or len(square.inputs) != 2 or square.inputs[0] != square.inputs[1]:
        return None
    c = square.inputs[0]
    rank = r.ranks.get(c)
    axes = [a - rank for a in mean.options["axes"]] if rank else []
    if not axes or axes != list(range(-len(axes), 0)):
        return None
    sub = r.producer.get(c)
    centre = r.producer.get(sub.inputs[1]) if sub is not None and sub.op == "subtract" else None
    if centre is not None and centre.op == "reduce" and centre.options == {**mean.options} \
            and centre.inputs == sub.inputs[:1]:
        return "var", sub.inputs[0], c, axes
    return "ms", c, c, axes


def _normalized(r, node, num, std: Pending) -> Pending:
    """``num / sqrt(variance + eps)``: layer_norm (``num`` the centred x), rms_norm (``num`` x; centred
    when the variance is x's)."""
    kind, x, c, axes, eps = std.args
    name = _name(r, num)
    if name == c and kind == "var":
        return Pending("normalized", ("layer_norm", x, {"axes": axes, "epsilon": eps}, {}))
    if name == x:
        return Pending("normalized", ("rms_norm", x, {"axes": axes, "epsilon": eps, "centered": kind == "var"}, {}))
    raise r.unsupported("expected x - mean(x) (LayerNormalization) or x (RMSNormalization) divided by "
                        "sqrt(variance + epsilon)")


_WEIGHT = {("layer_norm", "gamma"): "gamma", ("layer_norm", "beta"): "beta", ("rms_norm", "gamma"): "scale",
           ("group_norm", "gamma"): "gamma", ("group_norm", "beta"): "beta"}


def _with_weight(r, p: Pending, role: str, w: np.ndarray) -> Pending:
    op, x, options, weights = p.args
    key = _WEIGHT.get((op, role))
    dims = tuple(r.dim(x, a) for a in options.get("axes", [-1]))  # group_norm: (channels,)
    shape = tuple(w.shape)
    while len(shape) > len(dims) and shape[0] == 1:
        shape = shape[1:]
    if key is None or key in weights or (op != "rms_norm" and role == "gamma" and "beta" in weights) \
            or w.dtype.kind != "f" or shape != dims:
        raise r.unsupported(f"expected {'a scale' if op == 'rms_norm' else 'a scale then a shift'} of the "
                            f"normalized axes' shape {['?' if d is None else d for d in dims]} after {op}, found a "
                            f"{w.dtype} constant of shape {list(w.shape)}")
    return Pending("normalized", (op, x, options, {**weights, key: np.ascontiguousarray(w.reshape(dims))}))


def _norm_node(r, name: str, p: Pending) -> IR:
    op, x, options, weights = p.args
    if op == "layer_norm":
        return r.add("layer_norm", [x], name, dict(options), dict(weights), rank=r.ranks.get(x))
    if op == "group_norm":
        return r.add("group_norm", [x], name, dict(options), dict(weights), rank=r.ranks.get(x))
    return r.add("rms_norm", [x], name, dict(options), dict(weights), rank=r.ranks.get(x))


def _sqrt_of_variance(r, node, args, attrs):
    v = args[0]
    if isinstance(v, Pending) and v.kind == "variance_eps":
        return [Pending("std", v.args)]
    if isinstance(v, Pending) and v.kind == "group_var_eps":
        return [Pending("group_std", v.args)]
    if isinstance(v, Const) and v.value.dtype.kind == "f":
        return [Pending("sqrt_const", (v.value,))]  # Keras Normalization's sqrt(variance), pending its max
    return _sqrt(r, node, args, attrs)


def _pow(r, node, args, attrs):
    """``c ** 2`` of a float tensor as ``c * c`` (torch's LayerNorm graph)."""
    x, e = r.as_ir(args[0]), args[1]
    if isinstance(x, IR) and isinstance(e, Const) and e.value.size == 1 and float(e.value.reshape(-1)[0]) == 2.0:
        return [r.add("multiply", [x.name, x.name], out_name(node), rank=x.rank)]
    raise r.unsupported("expected Pow of a tensor by 2 (a variance)")


def _layer_norm_op(r, node, args, attrs):
    """LayerNormalization-17: over the axes from ``axis`` on, Scale (and B) of the normalized shape."""
    x = r.as_ir(args[0])
    rank = _rank(r, x)
    if rank is None:
        raise r.unsupported("expected LayerNormalization of a tensor of known rank")
    if len([o for o in node.output if o]) > 1:
        raise r.unsupported("expected LayerNormalization without its Mean and InvStdDev outputs")
    axis = int(attrs.get("axis", -1))
    if not -rank < axis < rank or axis % rank == 0:
        raise r.unsupported(f"expected a LayerNormalization axis after the batch axis of a rank-{rank} tensor, "
                            f"found {axis}")
    if int(attrs.get("stash_type", 1)) != 1:
        raise r.unsupported(f"expected stash_type 1 (float32 moments), found {attrs.get('stash_type')}")
    eps = _finite(r, "epsilon", float(attrs.get("epsilon", 1e-5)))
    if eps < 0:
        raise FormatError(f"expected an epsilon >= 0, found {eps:g}")
    axes = list(range(axis % rank - rank, 0))
    p = Pending("normalized", ("layer_norm", x.name, {"axes": axes, "epsilon": _decimal(eps)}, {}))
    for role, w in (("gamma", args[1]), ("beta", args[2] if len(args) > 2 else None)):
        if w is None:
            continue
        if not isinstance(w, Const):
            raise r.unsupported(f"expected LayerNormalization {'Scale' if role == 'gamma' else 'B'} as a constant")
        p = _with_weight(r, p, role, w.value)
    return [_norm_node(r, out_name(node), p)]


#: the pending kinds of this module that are whole values when used as they are (:func:`finish`)
KINDS = ("normalized", "deconv")


#: what each partial form of this module waits for, for the refusal when it is used any other way
_PARTIAL = {
    "pool": "a 1-D pooling transposed back to (batch, time, features)",
    "conv_unsq": "the 2-D Conv of a Conv1D squeezed back to (batch, filters, time)",
    "resized": "a Resize transposed back to (batch, time, features)",
    "repeat_steps": "repeated steps reshaped to (batch, time * n, features) (UpSampling1D)",
    "rsub": "t - x inside relu(t - x) (the negative part of Keras ReLU / PReLU)",
    "relu_below": "relu(t - x) scaled and subtracted from relu(x) (Keras ReLU / PReLU)",
    "negative_part": "slope * relu(t - x) subtracted from relu(x) (Keras ReLU)",
    "negative_weights": "c * relu(-x) added to relu(x) (Keras PReLU)",
    "above": "x > t cast to float and multiplied by x (Keras ReLU's threshold)",
    "above_float": "x > t as a float multiplied by x (Keras ReLU's threshold)",
    "relu_min": "min(relu(x), m) then max(., 0) (Keras ReLU's max_value)",
    "erf_input": "x / sqrt(2) inside erf (gelu)", "erf_gelu": "erf(x / sqrt(2)) + 1 (gelu)",
    "erf_gelu_1": "x * (1 + erf(x / sqrt(2))) * 0.5 (gelu)", "gelu_x": "x * (1 + erf(x / sqrt(2))) * 0.5 (gelu)",
    "gelu_half": "x * (0.5 * (1 + erf(x / sqrt(2)))) (gelu)",
    "variance_eps": "sqrt(variance + epsilon) dividing x (LayerNormalization / RMSNormalization)",
    "std": "x divided by sqrt(variance + epsilon) (LayerNormalization / RMSNormalization)",
    "inv_std": "x multiplied by 1 / sqrt(variance + epsilon) (RMSNormalization)",
    "norm": "1 / sqrt(sum(x^2)) capped at 1e12 multiplying x (UnitNormalization)",
    "inv_norm_uncapped": "1 / sqrt(sum(x^2)) capped at 1e12 multiplying x (UnitNormalization)",
    "inv_norm": "x * min(1 / sqrt(sum(x^2)), 1e12) (UnitNormalization)",
    "centered_const": "(x - mean) / max(sqrt(variance), epsilon) (Keras Normalization)",
    "sqrt_const": "max(sqrt(variance), epsilon) dividing x - mean (Keras Normalization)",
    "norm_scale": "(x - mean) / max(sqrt(variance), epsilon) (Keras Normalization)",
    **dict.fromkeys(("grouped", "group_mean", "group_centered", "group_sq", "group_var", "group_var_eps", "group_std",
                     "group_normed"), "the grouped channels normalized and reshaped back (GroupNormalization)"),
    "masked_x": "the masked sum over time divided by the mask's count (GlobalAveragePooling1D)",
    "masked_sum": "the masked sum over time divided by the mask's count (GlobalAveragePooling1D)",
    "mask_count": "the mask's count dividing the masked sum over time (GlobalAveragePooling1D)",
}


def finish(r, v: Pending, name: str) -> str | None:
    """The IR tensor of a pending value of this module used as it is (a LayerNormalization without its shift,
    an RMSNormalization), or None for the kinds of other modules."""
    if v.kind == "normalized":
        return _norm_node(r, name, v).name
    if v.kind == "deconv":
        return _deconv_node(r, v, name).name
    if v.kind in _PARTIAL:
        raise r.unsupported(f"expected {_PARTIAL[v.kind]}, found part of it used otherwise")
    return None


# -- GroupNormalization: Reshape to (..., groups, channels / groups), moments over all but batch and group ---
def _grouped(r, v, shape: list[int] | None) -> Pending | None:
    """``Reshape(x, [0, ..., 0, groups, channels / groups])`` of a float tensor with a known last axis."""
    x = r.as_ir(v) if not isinstance(v, (Const, Pending, View)) else None
    rank = _rank(r, x)
    if not isinstance(x, IR) or rank is None or rank < 2 or shape is None or len(shape) != rank + 1 \
            or any(shape[:rank - 1]) or min(shape[-2:]) < 1:
        return None
    channels = r.dim(x.name, -1)
    if channels is None or shape[-2] * shape[-1] != channels:
        return None
    if sorted(u.op_type for u in onnx_consumers(r, out_name(r.onnx_node))) != ["ReduceMean", "Sub"]:
        return None  # a reshape of its own (onnx_ops.py): only the moments and the centring read the groups
    return Pending("grouped", (x, shape[-2]))


def _group_axes(r, p: Pending, axes: list[int] | None) -> bool:
    """``axes`` of the grouped tensor (rank + 1 axes) are every axis but the batch and the groups'."""
    rank = _rank(r, p.args[0]) or 0
    if axes is None or any(not -rank - 1 <= a <= rank for a in axes):
        return False
    return sorted(a % (rank + 1) for a in axes) == [*range(1, rank - 1), rank]


_GROUP_STEPS = {"grouped": "group_mean", "group_sq": "group_var"}


def _reduce_mean(r, node, args, attrs):
    """ReduceMean: GroupNormalization's moments, else a global average over time (:func:`_global_pool`)."""
    x = args[0]
    if isinstance(x, Pending) and x.kind in _GROUP_STEPS:
        if not _group_axes(r, x, axes_of(node, args, attrs)) or not int(attrs.get("keepdims", 1)):
            raise r.unsupported("expected the mean over every axis but the batch and the groups, keepdims (Keras "
                                "GroupNormalization)")
        return [Pending(_GROUP_STEPS[x.kind], x.args)]
    return _global_pool(r, node, args, attrs)


def _ungrouped(r, node, x: Pending, shape) -> Pending:
    """``Reshape(normalized groups, Shape(x))``: the group_norm of x, pending its gamma and beta."""
    src, groups, eps = x.args
    if not (isinstance(shape, ShapeOf) and isinstance(shape.of, IR) and shape.of.name == src.name):
        raise r.unsupported("expected the normalized groups reshaped back to Shape(x) (Keras GroupNormalization)")
    return Pending("normalized", ("group_norm", src.name, {"groups": groups, "epsilon": eps}, {}))


# -- Conv1DTranspose: ConvTranspose between Transposes, TensorFlow's crop (Slice) and zero steps (Pad), bias ----
def _conv_transpose(r, node, args, attrs):
    """ConvTranspose of ``Transpose(x, [0, 2, 1])`` with a constant weight ``(in, filters, k)`` (group 1): the full
    transposed convolution cut to ``full[before : len(full) + after]`` (``after`` > 0: zero steps), pending the
    Transpose back and what follows (ONNX: ``pads`` crop, ``output_padding`` adds steps at the end)."""
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    if not (isinstance(x, View) and x.kind == "channels_first" and _ir3(r, x.of) is not None) \
            or not isinstance(w, Const) or w.value.ndim != 3 or w.value.dtype.kind != "f" \
            or b is not None and not isinstance(b, Const):
        raise r.unsupported("expected a 1-D ConvTranspose of Transpose(x, [0, 2, 1]) with constant weights")
    text = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in attrs.items()}
    if int(attrs.get("group", 1)) != 1 or text.get("auto_pad", "NOTSET") != "NOTSET" or "output_shape" in attrs:
        raise r.unsupported(f"expected ConvTranspose with group 1, explicit pads and no output_shape, found group "
                            f"{attrs.get('group', 1)}, auto_pad {quote(text.get('auto_pad', 'NOTSET'), 20)}")
    k = int(w.value.shape[2])
    kernel = _attr_ints(r, attrs, "kernel_shape", 1, k)
    s, d = _attr_ints(r, attrs, "strides", 1, 1)[0], _attr_ints(r, attrs, "dilations", 1, 1)[0]
    pads, extra = _attr_ints(r, attrs, "pads", 2, 0), _attr_ints(r, attrs, "output_padding", 1, 0)[0]
    if kernel != [k] or s < 1 or d < 1 or min(pads) < 0 or extra < 0:
        raise FormatError(f"expected kernel_shape {[k]} (W's), strides and dilations >= 1, pads and output_padding "
                          f">= 0, found {kernel}, {s}, {d}, {pads}, {extra}")
    if r.dim(x.of.name, 2) not in (None, w.value.shape[0]):
        raise FormatError(f"expected W of {r.dim(x.of.name, 2)} input channels, found shape {list(w.value.shape)}")
    bias = None if b is None else b.value.reshape(-1)
    if bias is not None and bias.shape != (w.value.shape[1],):
        raise FormatError(f"expected B of shape [{w.value.shape[1]}], found {list(b.value.shape)}")
    return [Pending("deconv", (x.of, w.value, bias, k, s, d, pads[0], extra - pads[1], False, r.where()))]


def _deconv_step(r, p: Pending, **changes) -> Pending:
    x, w, bias, k, s, d, before, after, batch_first, where = p.args
    values = {"bias": bias, "before": before, "after": after, "batch_first": batch_first, **changes}
    return Pending("deconv", (x, w, values["bias"], k, s, d, values["before"], values["after"],
                              values["batch_first"], where))


def _deconv_slice(r, p: Pending, start: int, end: int) -> Pending:
    """``y[:, start:end]`` of the batch-first transposed convolution (start >= 0, end negative or to the end)."""
    before, after = p.args[6], p.args[7]
    if not p.args[8]:
        raise r.unsupported("expected the transposed convolution transposed back to (batch, time, filters) before "
                            "its crop")
    if start < 0 or -_BIG < end and end >= 0:
        raise r.unsupported(f"expected a crop [start:end] (start >= 0, end negative or to the end) of a transposed "
                            f"convolution, found [{start}:{end}]")
    return _deconv_step(r, p, before=before + start, after=after + (end if end < 0 else 0))


def _deconv_node(r, p: Pending, name: str) -> IR:
    """The conv1d_transpose whose TensorFlow crop (padding, output_padding) gives ``(before, after)``."""
    x, w, bias, k, s, d, before, after, batch_first, where = p.args
    if not batch_first:
        raise r.unsupported("expected the transposed convolution transposed back to (batch, time, filters)")
    options = {"filters": int(w.shape[1]), "kernel_size": k, "strides": s, "dilation_rate": d,
               "activation": "linear", "use_bias": bias is not None}
    span = (k - 1) * d + 1
    for padding in ("valid", "same"):
        for extra in (None, *range(max(span, s) + 1)):
            if conv1d_transpose_edges({**options, "padding": padding, "output_padding": extra}) == (before, after):
                weights = {"weight": np.ascontiguousarray(w), **({"bias": bias} if bias is not None else {})}
                return r.add("conv1d_transpose", [x.name], name, {**options, "padding": padding,
                                                                  "output_padding": extra}, weights, rank=3)
    raise UnsupportedError(f"expected the steps [{before}, len + {after}) of the full transposed convolution "
                           f"that Keras' padding (valid or same) and output_padding give, found another crop",
                           file=r.path, layer=r.where() or where)


# -- Conv1D as tf2onnx writes it: a 2-D Conv of an added axis ----------------------------------------------
def _conv_2d(r, node, args, attrs):
    """tf2onnx's Conv1D (tensorflow/python/ops/nn_ops.py conv1d: ExpandDims, Conv2D with a (1, k) kernel,
    Squeeze): ``Conv`` of ``Transpose(Unsqueeze(x, 1), [0, 3, 1, 2])`` (``x`` channels last) or of
    ``Unsqueeze(x, 2)`` (``x`` already (batch, channels, time): a Permute((2, 1)) folded in), its kernel,
    stride, dilation and padding on the added axis 1 / 1 / 1 / 0. Read as the 1-D Conv of gateport's own form
    (the reader's Conv handler) pending the Squeeze of that axis; the bias tf2onnx adds after the Squeeze and a
    Relu before the Transpose back are read by :func:`_add` and :func:`_relu`."""
    x, w = args[0], args[1]
    if isinstance(x, View) and x.kind == "unsqueeze2" and _ir3(r, x.of) is not None:
        x = View("channels_first_unsq", r.add("permute", [x.of.name], r.fresh(f"{out_name(node)}/channels_last"),
                                              {"dims": [2, 1]}, rank=3), 2)
    if not (isinstance(x, View) and x.kind == "channels_first_unsq" and _ir3(r, x.of) is not None) \
            or not isinstance(w, Const) or w.value.ndim != 4:
        return None
    added = int(x.mask)
    one = added - 2  # the added axis among the two spatial ones
    k, s, d = (_attr_ints(r, attrs, key, 2, dflt) for key, dflt in (("kernel_shape", w.value.shape[added]),
                                                                     ("strides", 1), ("dilations", 1)))
    pads = _attr_ints(r, attrs, "pads", 4, 0)
    if w.value.shape[added] != 1 or k[one] != 1 or s[one] != 1 or d[one] != 1 or pads[one] or pads[2 + one]:
        raise r.unsupported(f"expected the axis Unsqueeze added convolved by 1 (kernel 1, stride 1, no padding), "
                            f"found W of shape {list(w.value.shape)}, kernel_shape {k}, strides {s}, dilations {d}, "
                            f"pads {pads}")
    keep = 1 - one
    flat = {**attrs, "kernel_shape": [k[keep]], "strides": [s[keep]], "dilations": [d[keep]],
            "pads": [pads[keep], pads[2 + keep]]}
    from .onnx_ops import HANDLERS as base  # the reader's 1-D Conv (onnx_ops imports this module's users)

    w3 = Const(np.ascontiguousarray(w.value.reshape(w.value.shape[:2] + (int(w.value.shape[2 + keep]),))))
    conv = base["Conv"](r, node, [View("channels_first", x.of), w3, *args[2:]], flat)
    return [Pending("conv_unsq", (conv[0], added))]


def _conv_bias(r, p: Pending, b: np.ndarray) -> Pending:
    """A Conv1D's bias added to its (batch, filters, time) output: one float per filter on the filters axis."""
    filters = p.args[1].shape[0]
    if b.dtype.kind != "f" or b.size != filters or b.ndim not in (2, 3) or b.shape[-2:] != (filters, 1):
        raise r.unsupported(f"expected a bias of shape ({filters}, 1) (one float per filter) added to a Conv1D's "
                            f"(batch, filters, time) output, found a {b.dtype} constant of shape {list(b.shape)}")
    return Pending("conv", (*p.args[:2], np.ascontiguousarray(b.reshape(-1)), *p.args[3:]))


# -- Keras Normalization and Rescaling: (x - mean) / max(sqrt(variance), eps), x * scale + offset --------
def _sample_broadcast(r, x: IR, arrays: dict, same_rank: bool) -> None:
    """Each constant broadcasts against one sample of ``x`` from the right without changing it."""
    shape = r.shapes.get(x.name)
    for key, a in arrays.items():
        bad = shape is None or a.dtype.kind != "f" or a.ndim > len(shape) or same_rank and a.ndim != len(shape) \
            or any(d != 1 and d != n for d, n in zip(a.shape[::-1], shape[::-1]))
        if bad:
            raise r.unsupported(f"expected {key} to broadcast against one sample of shape "
                                f"{['?' if n is None else n for n in shape or ()]}"
                                f"{' (of its rank)' if same_rank else ''}, found a {a.dtype} constant of shape "
                                f"{list(a.shape)}")


def _normalization(r, node, x: IR, mean: np.ndarray, variance: np.ndarray, eps: float) -> IR:
    if mean.shape != variance.shape:
        raise r.unsupported(f"expected the mean and the variance of one shape, found {list(mean.shape)} and "
                            f"{list(variance.shape)}")
    _sample_broadcast(r, x, {"mean": mean, "variance": variance}, True)
    return r.add("normalization", [x.name], out_name(node), {"invert": False, "epsilon": eps},
                 {"mean": mean, "variance": variance}, rank=x.rank)


def _rescaling(r, node, scaled: Pending, offset: np.ndarray) -> IR | None:
    """``x * c + d`` as Keras Rescaling (weights the constants as they are) when ``c`` and ``d`` are not one
    batch_norm's per-channel vectors (onnx_ops.py reads those): of other shapes, or both one number on more
    than one channel; None otherwise."""

    mul = onnx_producer(r, node.input[0] if isinstance(r.env.get(node.input[0]), Pending) else node.input[1])
    if mul is None or mul.op_type != "Mul" or len(mul.input) != 2:
        return None
    x, c = (r.env.get(i) for i in mul.input)
    if isinstance(x, Const):
        x, c = c, x
    if not isinstance(x, IR) or not isinstance(c, Const) or x.name != scaled.args[0].name:
        return None
    scale = c.value
    if scale.shape == offset.shape and not (scale.size == 1 and r.dim(x.name, -1) != 1):
        return None
    weights = {"scale": scale.reshape(scale.shape or (1,)), "offset": offset.reshape(offset.shape or (1,))}
    _sample_broadcast(r, x, weights, False)
    return r.add("rescaling", [x.name], out_name(node), {}, weights, rank=x.rank)


# -- masked GlobalAveragePooling1D: sum(where(mask, x, 0)) / sum(mask) over time ----------------------
def _reduce_sum(r, node, args, attrs):
    """ReduceSum over time of a float mask with a feature axis added (``Cast(Unsqueeze(mask, 2))``): the count
    of a masked average (pending its Div)."""
    m, axes = args[0], axes_of(node, args, attrs)
    if isinstance(m, Pending) and m.kind == "masked_x":
        if axes is None or len(axes) != 1 or axes[0] % 3 != 1:
            raise r.unsupported(f"expected the masked sum over time (axis 1), found axes {axes}")
        return [Pending("masked_sum", (*m.args, bool(attrs.get("keepdims", 1))))]
    if isinstance(m, MaskRef) and m.float_ and m.unsq and axes is not None and [a % 3 for a in axes] == [1] \
            and len(axes) == 1:
        return [Pending("mask_count", (m.name, bool(attrs.get("keepdims", 1))))]
    return None


def _masked_average(r, node, total, mask: str, keepdims: bool) -> IR:
    """``sum / count``: global_pool average of ``x`` with ``mask`` when ``sum`` is the ReduceSum over time (same
    keepdims) of ``x`` with its masked steps zeroed by ``mask`` (:func:`_where`)."""
    if not (isinstance(total, Pending) and total.kind == "masked_sum" and total.args[1] == mask
            and total.args[2] == keepdims):
        raise r.unsupported("expected the sum over time of x with its masked steps zeroed, divided by the mask's "
                            "count (a masked GlobalAveragePooling1D)")
    x = r.tensor(total.args[0], out_name(node))
    return r.add("global_pool", [x], out_name(node), {"mode": "average", "axis": 1, "keepdims": keepdims},
                 mask=mask, rank=3 if keepdims else 2)


def _where(r, node, args, attrs):
    """``Where(Unsqueeze(mask, 2), x, 0)`` whose only use is a ReduceSum over time divided by the mask's count
    (gateport's masked GlobalAveragePooling1D): x as it is (a recurrent output keeps its own masked steps:
    the average leaves them out), pending the sum."""

    cond, x, zero = args
    if not (isinstance(cond, Plan) and cond.role == "mask^" and scalar(zero) == 0.0):
        return None
    uses = onnx_consumers(r, out_name(node))
    if len(uses) != 1 or uses[0].op_type != "ReduceSum" or len(onnx_consumers(r, uses[0].output[0])) != 1:
        return None
    div = onnx_consumers(r, uses[0].output[0])[0]
    count = onnx_producer(r, div.input[1]) if div.op_type == "Div" and div.input[0] == uses[0].output[0] else None
    cast = onnx_producer(r, count.input[0]) if count is not None and count.op_type == "ReduceSum" else None
    if cast is None or cast.op_type != "Cast" or cast.input[0] != node.input[0]:
        return None
    return [Pending("masked_x", (x, r.mask_name(cond.mask, "mask")))]



# -- the table ------------------------------------------------------------------------------------
OWN = {"MaxPool": _pool, "AveragePool": _pool, "Pad": _pad, "PRelu": _prelu, "Mish": _mish,
       "Reciprocal": _reciprocal, "Gelu": _gelu, "LogSoftmax": _log_softmax, "Erf": _erf, "Pow": _pow,
       "Sqrt": _sqrt_of_variance, "LayerNormalization": _layer_norm_op, "Resize": _resize,
       "Neg": _neg, "ThresholdedRelu": _thresholded_relu,
       "ConvTranspose": _conv_transpose}
#: ops read here first, then by the reader's other handler when the form is not one of these
FIRST = {"ReduceMean": _reduce_mean, "Transpose": _transpose, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Slice": _slice, "Tile": _tile,
         "Expand": _tile,
         "Reshape": _reshape, "Concat": _concat, "ReduceMax": _global_pool,
         "Sub": _sub, "Relu": _relu, "Mul": _mul, "Greater": _greater, "Cast": _cast, "Clip": _clip,
         "LeakyRelu": _leaky_relu, "Elu": _elu, "Min": _min, "Max": _max, "Div": _div, "Add": _add, "ReduceSum": _reduce_sum,
         "Where": _where, "Conv": _conv_2d}


def _first(mine: Handler, other: Handler | None) -> Handler:
    def handler(r, node, args, attrs):
        found = mine(r, node, args, attrs)
        if found is not None:
            return found
        if other is None:
            raise r.unsupported(f"expected a form of {node.op_type} gateport reads")
        return other(r, node, args, attrs)
    handler.__doc__ = mine.__doc__
    return handler


def layer_handlers(handlers: dict[str, Handler]) -> dict[str, Handler]:
    """``handlers`` with this module's ops added and its forms read before theirs."""
    out = dict(handlers)
    out.update(OWN)
    for op, mine in FIRST.items():
        out[op] = _first(mine, handlers.get(op))
    return out
