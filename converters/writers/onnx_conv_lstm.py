"""``conv_lstm`` (Keras ConvLSTM1D/2D) as ONNX: no fused op fits (ONNX LSTM is dense), so a plain graph.

The input convolution of all steps is one ``Conv`` over the ``(batch * time)`` frames. For a static
time length the loop is unrolled: per step a ``Gather`` of its slice, the recurrent ``Conv`` (stride 1,
'same'), ``Split`` into the gates i, f, c, o and the element-wise LSTM update (14 nodes a step), as
converters/reference_conv_lstm.py; a zero initial state skips the first step's recurrent terms (they
add exact zeros). A dynamic or long (> UNROLL_MAX_STEPS) time length is one ``Scan`` whose body is that
step (no fused op fits: ONNX LSTM is dense): measured, the unrolled graph runs a little faster for short
sequences, the Scan as fast from ~50 steps on and its file and load time stay flat.
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..ir import Node
from ..ops import conv_lstm_sizes
from ..reference_conv_lstm import same_padding
from ..shapes import infer_shapes
from .onnx_activations import apply_activation
from .onnx_builder import GraphBuilder, as_array


#: Up to this many (static) steps the loop is unrolled; longer or dynamic sequences are one Scan. Measured
#: (ConvLSTM2D 8 filters 3x3 on 16x16x4, batch 2, onnxruntime 1 thread): T=10 unrolled 141 nodes, load 45 ms,
#: run 3.6 ms vs Scan 14 nodes, 2 ms, 4.6 ms; T=50 unrolled 701 nodes, 156 ms, 15.3 ms vs Scan 2 ms, 13.6 ms.
UNROLL_MAX_STEPS = 32


def _pads(sizes, kernel, strides, dilation, same: bool) -> dict:
    """Conv ``pads`` (all begins, then all ends): TensorFlow's 'same' from the static sizes, else 0."""
    if not same:
        return {"pads": [0] * (2 * len(kernel))}
    begin_end = [same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation)]
    return {"pads": [p[0] for p in begin_end] + [p[1] for p in begin_end]}


def _sizes(node: Node, x_shape: tuple | None) -> tuple[int | None, tuple, tuple]:
    """(time or None, input spatial sizes, output spatial sizes); spatial sizes and channels must be static."""
    if x_shape is None or None in x_shape[1:]:
        raise UnsupportedError("a ConvLSTM input with dynamic spatial sizes or channels is not supported for ONNX; "
                               "convert to PyTorch (--to torch) instead")
    sizes = tuple(x_shape[1:-1])
    return x_shape[0], sizes, conv_lstm_sizes(node.options, sizes)


def _input_shape(g: GraphBuilder, node: Node) -> tuple | None:
    """The static shape (without batch) of the node's input, from the IR's shape inference (once per graph)."""
    if "shapes" not in g.memo:
        g.memo["shapes"] = infer_shapes(g.memo["model"]) if "model" in g.memo else {}
    return g.memo["shapes"].get(node.inputs[0])


def _cell(g: GraphBuilder, node: Node, z: str, h: str | None, c: str | None, recurrent: str) -> tuple[str, str]:
    """One step: ``z`` (the input conv of the step) plus the recurrent conv of ``h``, then the LSTM update;
    ``h`` None is the zero state (its terms add exact zeros, so they are left out)."""
    o, rank = node.options, len(node.options["kernel_size"])
    kernel = [int(k) for k in o["kernel_size"]]
    act, ract = o["activation"], o["recurrent_activation"]
    if h is not None:
        pads = _pads([1] * rank, kernel, [1] * rank, [1] * rank, True)  # stride 1: the same for any size
        z = g.op("Add", [z, g.op("Conv", [h, recurrent], kernel_shape=kernel, **pads)])
    zi, zf, zc, zo = g.op("Split", [z, g.const([int(o["filters"])] * 4)], n_out=4, axis=1)
    i, f, o_gate = (apply_activation(g, ract, t) for t in (zi, zf, zo))
    candidate = g.op("Mul", [i, apply_activation(g, act, zc)])
    c = candidate if c is None else g.op("Add", [g.op("Mul", [f, c]), candidate])
    return g.op("Mul", [o_gate, apply_activation(g, act, c)]), c


def _input_conv(g: GraphBuilder, node: Node, time: int | None, sizes: tuple, out_sizes: tuple, channels: int) -> str:
    """The input convolution of every step at once, ``(batch, time, 4 filters, *out_sizes)``."""
    o, wt, rank = node.options, node.weights, len(sizes)
    kernel = [int(k) for k in o["kernel_size"]]
    frames = g.op("Reshape", [node.inputs[0], g.const([-1, *sizes, channels])], rank=rank + 2)
    frames = g.transpose(frames, [0, rank + 1, *range(1, rank + 1)])
    conv = dict(kernel_shape=kernel, strides=[int(s) for s in o["strides"]],
                dilations=[int(d) for d in o["dilation_rate"]])
    inputs = [frames, g.initializer(wt["kernel"], "kernel")] + ([g.initializer(wt["bias"], "bias")]
                                                               if "bias" in wt else [])
    z_x = g.op("Conv", inputs, **conv, **_pads(sizes, kernel, conv["strides"], conv["dilations"],
                                              o["padding"] == "same"))
    tail = [4 * int(o["filters"]), *out_sizes]
    if time is not None:
        shape = g.const([-1, time, *tail])
    else:  # (batch, time) of the input, then the static rest
        head = g.op("Slice", [g.op("Shape", [node.inputs[0]], rank=1), g.const([0]), g.const([2])], rank=1)
        shape = g.op("Concat", [head, g.const(tail)], axis=0, rank=1)
    return g.op("Reshape", [z_x, shape], rank=rank + 3)


def _unrolled(g: GraphBuilder, node: Node, z_x: str, time: int, states: tuple, recurrent: str) -> tuple:
    """Per step a Gather of its input conv and :func:`_cell`: ``(hs in processing order, h, c)``."""
    h, c = states
    hs = []
    for k in range(time):
        z = g.gather(z_x, time - 1 - k if node.options["go_backwards"] else k, axis=1)
        h, c = _cell(g, node, z, h, c, recurrent)
        hs.append(g.unsqueeze(h, [1]))
    y = g.op("Concat", hs, axis=1, rank=len(node.options["kernel_size"]) + 3) if len(hs) > 1 else hs[0]
    return y, h, c


def _scanned(g: GraphBuilder, node: Node, z_x: str, states: tuple, recurrent: str, out_sizes: tuple) -> tuple:
    """A ``Scan`` over the time axis (dynamic length): the body is :func:`_cell`; ``go_backwards`` scans
    the input in reverse and appends the outputs in processing order, as Keras. The recurrent kernel
    enters as a loop-carried value passed through unchanged (an initializer the graph's pruning keeps)."""
    onnx, o, rank = g.onnx, node.options, len(out_sizes)
    h, c = states
    if h is None:  # zeros (batch, filters, *sizes) from the input conv's shape
        first = g.gather(z_x, 0, axis=1)
        dims = g.op("Concat", [g.op("Slice", [g.op("Shape", [first], rank=1), g.const([0]), g.const([1])], rank=1),
                               g.const([int(o["filters"]), *out_sizes])], axis=0, rank=1)
        zero = onnx.helper.make_tensor("value", onnx.TensorProto.FLOAT, [1], [0.0])
        h = c = g.op("ConstantOfShape", [dims], value=zero, rank=rank + 2)
    body = GraphBuilder(g.opset)
    body.reserve(g._taken)  # a subgraph may not reuse an outer name (its constants included)
    body.scope = g.fresh("scan_body")
    h_in, c_in, r_in, z_in = (body.fresh(n) for n in ("h", "c", "recurrent", "z"))
    for name in (h_in, c_in, z_in):
        body.ranks[name] = rank + 2
    h_out, c_out = _cell(body, node, z_in, h_in, c_in, r_in)
    outs = [body.identity(h_out, body.fresh("h_next")), body.identity(c_out, body.fresh("c_next")),
            body.op("Identity", [r_in]), body.identity(h_out, body.fresh("y"))]
    def value(name: str) -> object:  # rank known, sizes left to the outer graph
        return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [None] * (rank + 2))

    graph = onnx.helper.make_graph(body.nodes, body.scope, [value(n) for n in (h_in, c_in, r_in, z_in)],
                                   [value(n) for n in outs],
                                   [onnx.numpy_helper.from_array(as_array(a), n) for n, a in body.weights.items()])
    backwards = int(bool(o["go_backwards"]))
    h, c, _, y = g.op("Scan", [h, c, recurrent, z_x], n_out=4, body=graph, num_scan_inputs=1,
                      scan_input_axes=[1], scan_input_directions=[backwards], scan_output_axes=[1])
    for name, r in ((h, rank + 2), (c, rank + 2), (y, rank + 3)):
        g.ranks[name] = r
    return y, h, c


def conv_lstm_to_onnx(g: GraphBuilder, node: Node) -> None:
    x_shape = _input_shape(g, node)
    time, sizes, out_sizes = _sizes(node, x_shape)
    rank = len(sizes)
    z_x = _input_conv(g, node, time, sizes, out_sizes, int(x_shape[-1]))
    recurrent = g.initializer(node.weights["recurrent_kernel"], "recurrent_kernel")
    first = [0, rank + 1, *range(1, rank + 1)]  # channels last -> first, on one frame
    states = tuple(g.transpose(s, first) for s in node.inputs[1:]) if len(node.inputs) == 3 else (None, None)
    if time is not None and time <= UNROLL_MAX_STEPS:
        y, h, c = _unrolled(g, node, z_x, time, states, recurrent)
    else:
        y, h, c = _scanned(g, node, z_x, states, recurrent, out_sizes)
    last = [0, *range(2, rank + 2), 1]
    names = node.outputs
    if node.options["return_sequences"]:
        g.transpose(y, [0, 1, *range(3, rank + 3), 2], out=names[0])
    else:
        g.transpose(h, last, out=names[0])
    if len(names) == 3:
        g.transpose(h, last, out=names[1])
        g.transpose(c, last, out=names[2])


LAYERS = {"conv_lstm": conv_lstm_to_onnx}
