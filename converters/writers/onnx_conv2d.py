"""``conv2d``, ``conv3d`` and ``pool2d`` (Keras Conv2D, Conv3D, Max/AveragePooling2D, channels last) as ONNX ``Conv``
(on 4-D or 5-D) / ``MaxPool`` / ``AveragePool`` between Transposes to channels first and back.

TensorFlow's 'same' padding puts the odd frame/row/column at the end: explicit ``pads`` (all begins, then all ends)
from the static input sizes (reference_conv_lstm.same_padding, as the ConvLSTM writer pads), else, for a dynamic
height or width, ``auto_pad=SAME_UPPER`` (the same rule; onnxruntime refuses it with a dilation above 1, which
is refused in one line: stride 1 needs no sizes, its pads are the dilated kernel's). AveragePool keeps ONNX's
default ``count_include_pad=0``: the padding is left out of the mean, as in TensorFlow; MaxPool never takes it.
"""
from __future__ import annotations


from ..errors import UnsupportedError
from ..ir import Node
from ..reference_conv2d import conv2d_weights
from ..reference_conv_lstm import same_padding
from ..sanitize import quote
from .onnx_activations import apply_activation
from .onnx_builder import GraphBuilder
from .onnx_conv_lstm import _input_shape


def _pads(g: GraphBuilder, node: Node, kernel: list[int], strides: list[int], dilation: list[int]) -> dict:
    padding, rank = node.options["padding"], len(kernel)
    if padding == "valid":
        return {"pads": [0] * 2 * rank}
    if padding != "same":
        raise UnsupportedError(f"expected padding valid or same, found {quote(padding)}", layer=node.label())
    shape = _input_shape(g, node)
    sizes: tuple = tuple(shape[:rank]) if shape is not None and len(shape) == rank + 1 else (None,) * rank
    if None in sizes and all(s == 1 for s in strides):  # stride 1: the pads do not depend on the size
        sizes = (1,) * rank
    if None not in sizes:
        begin_end = [same_padding(int(n), k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation)]
        return {"pads": [p[0] for p in begin_end] + [p[1] for p in begin_end]}
    if any(d != 1 for d in dilation):
        raise UnsupportedError(f"a 'same' {node.op} with strides {tuple(strides)} and dilation_rate "
                               f"{tuple(dilation)} on a dynamic height or width is not supported for ONNX "
                               "(onnxruntime refuses SAME_UPPER with dilation); convert to PyTorch (--to torch) "
                               "instead", layer=node.label())
    return {"auto_pad": "SAME_UPPER"}


def conv2d_to_onnx(g: GraphBuilder, node: Node) -> None:
    o = node.options
    weight, bias = conv2d_weights(node)
    kernel = [int(k) for k in weight.shape[2:]]
    rank = len(kernel)
    strides, dilation = [int(s) for s in o["strides"]], [int(d) for d in o["dilation_rate"]]
    x = g.transpose(node.inputs[0], [0, rank + 1, *range(1, rank + 1)])
    inputs = [x, g.initializer(weight, "weight")] + ([g.initializer(bias, "bias")] if bias is not None else [])
    y = g.op("Conv", inputs, kernel_shape=kernel, strides=strides, dilations=dilation, group=int(o["groups"]),
             **_pads(g, node, kernel, strides, dilation))
    done = (o.get("activation") or "linear") == "linear"
    y = g.transpose(y, [0, *range(2, rank + 2), 1], out=node.outputs[0] if done else None)
    if not done:
        apply_activation(g, o.get("activation"), y, node.outputs[0])


def pool2d_to_onnx(g: GraphBuilder, node: Node) -> None:
    o = node.options
    mode = o.get("mode")
    if mode not in ("max", "average"):
        raise UnsupportedError(f"expected mode max or average, found {quote(mode)}", layer=node.label())
    k, s = [int(v) for v in o["pool_size"]], [int(v) for v in o["strides"]]
    x = g.transpose(node.inputs[0], [0, 3, 1, 2])
    y = g.op("MaxPool" if mode == "max" else "AveragePool", [x], kernel_shape=k, strides=s,
             **_pads(g, node, k, s, [1, 1]))
    g.transpose(y, [0, 2, 3, 1], out=node.outputs[0])


def zero_pad2d_to_onnx(g: GraphBuilder, node: Node) -> None:
    """ONNX Pad (constant 0) on the channels-last tensor: begins of every axis, then ends."""
    top, bottom, left, right = (int(v) for v in node.options["padding"])
    g.op("Pad", [node.inputs[0], g.const([0, top, left, 0, 0, bottom, right, 0])], out=node.outputs[0], mode="constant")


LAYERS = {"conv2d": conv2d_to_onnx, "conv3d": conv2d_to_onnx, "pool2d": pool2d_to_onnx, "zero_pad2d": zero_pad2d_to_onnx}
