"""``conv2d``, ``conv3d`` and ``pool2d`` (Keras Conv2D, Conv3D, Max/AveragePooling2D, channels last) in generated
PyTorch code: nn.Conv2d / nn.Conv3d / F.max_pool2d / F.avg_pool2d on the channels-first view; TensorFlow's 'same' padding (the odd
row/column at the end) by ``keras_same_padding``, as ConvLSTM's and Conv1D's convolutions
(writers/torch_conv_lstm.py); for pooling the padding is -inf under the max and left out of the mean's count
(the pool of a padded tensor of ones divides it), as converters/reference_conv2d.py computes."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Node
from ..reference_conv2d import conv2d_weights
from ..sanitize import quote


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _same(w, node: Node, x: str, kernel: list[int], strides: list[int], dilation: list[int]) -> tuple[str, str]:
    """``(name of the channels-first input, F.pad argument)`` for TensorFlow's 'same' padding of ``x``."""
    w.helpers.add("keras_same_padding")
    t = w.unique(f"{node.name}_in")
    w.line(f"{t} = {x}")
    # F.pad lists the last axis (width) first
    return t, " + ".join(f"keras_same_padding({t}.size({2 + a}), {kernel[a]}, {strides[a]}, {dilation[a]})"
                         for a in reversed(range(len(kernel))))


def _padding(node: Node) -> str:
    padding = node.options["padding"]
    if padding not in ("valid", "same"):
        raise UnsupportedError(f"expected padding valid or same, found {quote(padding)}", layer=node.label())
    return padding


def conv2d_to_torch(w, node: Node) -> None:
    o = node.options
    weight, bias = conv2d_weights(node)
    filters, n_in, *kernel = (int(d) for d in weight.shape)
    rank = len(kernel)
    strides, dilation, groups = _ints(o["strides"]), _ints(o["dilation_rate"]), int(o["groups"])
    params = {"weight": np.asarray(weight, np.float32)}
    args = [str(n_in * groups), str(filters), str(tuple(kernel)), f"stride={tuple(strides)}",
            f"dilation={tuple(dilation)}", f"groups={groups}"]
    if bias is not None:
        params["bias"] = np.asarray(bias, np.float32)
    else:
        args.append("bias=False")
    attr = w.module(node, f"nn.Conv{rank}d({', '.join(args)})", params)
    first, last = (0, rank + 1, *range(1, rank + 1)), (0, *range(2, rank + 2), 1)
    x = f"{w.var(node.inputs[0], node)}.permute{first}"  # Keras is channels-last
    if _padding(node) == "same":
        t, pad = _same(w, node, x, kernel, strides, dilation)
        x = f"F.pad({t}, {pad})"
    w.assign(node.outputs[0], w.activation(o.get("activation"), f"self.{attr}({x}).permute{last}"))


def pool2d_to_torch(w, node: Node) -> None:
    o = node.options
    k, s = tuple(_ints(o["pool_size"])), tuple(_ints(o["strides"]))
    x = f"{w.var(node.inputs[0], node)}.permute(0, 3, 1, 2)"
    mode = o.get("mode")
    if mode not in ("max", "average"):
        raise UnsupportedError(f"expected mode max or average, found {quote(mode)}", layer=node.label())
    if _padding(node) == "same":
        t, pad = _same(w, node, x, list(k), list(s), [1, 1])
        if mode == "max":
            x = f"F.pad({t}, {pad}, value=-float('inf'))"
        else:
            count = w.unique(f"{node.name}_count")
            w.line(f"{count} = F.avg_pool2d(F.pad(torch.ones_like({t}[:, :1]), {pad}), {k}, {s})")
            w.assign(node.outputs[0], f"(F.avg_pool2d(F.pad({t}, {pad}), {k}, {s}) / {count}).permute(0, 2, 3, 1)")
            return
    fn = "F.max_pool2d" if mode == "max" else "F.avg_pool2d"
    w.assign(node.outputs[0], f"{fn}({x}, {k}, {s}).permute(0, 2, 3, 1)")


def zero_pad2d_to_torch(w, node: Node) -> None:
    top, bottom, left, right = _ints(node.options["padding"])
    # F.pad lists the last axis first: channels (none), width, height
    w.assign(node.outputs[0], f"F.pad({w.var(node.inputs[0], node)}, (0, 0, {left}, {right}, {top}, {bottom}))")


EMITTERS = {"conv2d": conv2d_to_torch, "conv3d": conv2d_to_torch, "pool2d": pool2d_to_torch, "zero_pad2d": zero_pad2d_to_torch}
