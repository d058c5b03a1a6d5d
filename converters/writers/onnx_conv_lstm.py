"""``conv_lstm`` (Keras ConvLSTM1D/2D) as ONNX: no fused op fits (ONNX LSTM is dense), so a plain graph.

For a static time length the loop is unrolled: the input convolution of all steps is one ``Conv``
over the ``(batch * time)`` frames, then per step a ``Gather`` of its slice, the recurrent ``Conv``
(stride 1, 'same'), ``Split`` into the gates i, f, c, o and the element-wise LSTM update, as
converters/reference_conv_lstm.py. A zero initial state skips the first step's recurrent terms
(they add exact zeros). A dynamic time length is refused in one line (a ``Loop`` is not written).
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..ir import Node
from ..reference_conv_lstm import output_sizes, same_padding
from ..shapes import infer_shapes
from .onnx_activations import apply_activation
from .onnx_builder import GraphBuilder


def _pads(sizes, kernel, strides, dilation, same: bool) -> dict:
    """Conv ``pads`` (all begins, then all ends): TensorFlow's 'same' from the static sizes, else 0."""
    if not same:
        return {"pads": [0] * (2 * len(kernel))}
    if None in sizes:
        if any(s != 1 for s in strides):
            raise UnsupportedError("ConvLSTM padding 'same' with strides > 1 needs static spatial sizes for ONNX")
        sizes = [1] * len(kernel)  # stride 1: the padding does not depend on the size
    begin_end = [same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation)]
    return {"pads": [p[0] for p in begin_end] + [p[1] for p in begin_end]}


def _shape(node: Node, x_shape: tuple) -> tuple[int, tuple, tuple]:
    """(time, input spatial sizes, output spatial sizes); the time length must be static."""
    if x_shape is None or x_shape[0] is None:
        raise UnsupportedError("a ConvLSTM over a dynamic number of time steps is not supported for ONNX "
                               "(the loop is unrolled); declare the time length, or convert to PyTorch (--to torch)")
    if None in x_shape[1:-1] or x_shape[-1] is None:
        raise UnsupportedError("a ConvLSTM input with dynamic spatial sizes or channels is not supported for ONNX")
    sizes = tuple(x_shape[1:-1])
    return x_shape[0], sizes, output_sizes(node, sizes)


def _input_shape(g: GraphBuilder, node: Node) -> tuple | None:
    """The static shape (without batch) of the node's input, from the IR's shape inference (once per graph)."""
    if "shapes" not in g.memo:
        g.memo["shapes"] = infer_shapes(g.memo["model"]) if "model" in g.memo else {}
    return g.memo["shapes"].get(node.inputs[0])


def conv_lstm_to_onnx(g: GraphBuilder, node: Node) -> None:
    o, wt = node.options, node.weights
    x_shape = _input_shape(g, node)
    time, sizes, out_sizes = _shape(node, x_shape)
    rank, filters, kernel = len(sizes), int(o["filters"]), [int(k) for k in o["kernel_size"]]
    channels = int(x_shape[-1])
    first = [0, rank + 1, *range(1, rank + 1)]  # channels last -> first, on one frame
    frames = g.op("Reshape", [node.inputs[0], g.const([-1, *sizes, channels])], rank=rank + 2)
    frames = g.transpose(frames, first)
    conv = dict(kernel_shape=kernel, strides=[int(s) for s in o["strides"]],
                dilations=[int(d) for d in o["dilation_rate"]])
    inputs = [frames, g.initializer(wt["kernel"], "kernel")] + ([g.initializer(wt["bias"], "bias")]
                                                               if "bias" in wt else [])
    z_x = g.op("Conv", inputs, **conv, **_pads(sizes, kernel, conv["strides"], conv["dilations"],
                                              o.get("padding") == "same"))
    z_x = g.op("Reshape", [z_x, g.const([-1, time, 4 * filters, *out_sizes])], rank=rank + 3)
    recurrent = g.initializer(wt["recurrent_kernel"], "recurrent_kernel")
    rec_pads = _pads(out_sizes, kernel, [1] * rank, [1] * rank, True)
    split = g.const([filters] * 4)
    act, ract = o["activation"], o["recurrent_activation"]
    h = c = None
    if len(node.inputs) == 3:
        h, c = (g.transpose(s, first) for s in node.inputs[1:])
    hs = []
    for k in range(time):
        z = g.gather(z_x, time - 1 - k if o.get("go_backwards") else k, axis=1)
        if h is not None:
            z = g.op("Add", [z, g.op("Conv", [h, recurrent], kernel_shape=kernel, **rec_pads)])
        zi, zf, zc, zo = g.op("Split", [z, split], n_out=4, axis=1)
        i, f, o_gate = (apply_activation(g, ract, t) for t in (zi, zf, zo))
        candidate = g.op("Mul", [i, apply_activation(g, act, zc)])
        c = candidate if c is None else g.op("Add", [g.op("Mul", [f, c]), candidate])
        h = g.op("Mul", [o_gate, apply_activation(g, act, c)])
        hs.append(h)
    last = [0, *range(2, rank + 2), 1]
    names = node.outputs
    if o.get("return_sequences"):
        steps = [g.unsqueeze(t, [1]) for t in hs]
        y = g.op("Concat", steps, axis=1, rank=rank + 3) if len(steps) > 1 else steps[0]
        g.transpose(y, [0, 1, *range(3, rank + 3), 2], out=names[0])
    else:
        g.transpose(h, last, out=names[0])
    if len(names) == 3:
        g.transpose(h, last, out=names[1])
        g.transpose(c, last, out=names[2])


LAYERS = {"conv_lstm": conv_lstm_to_onnx}
