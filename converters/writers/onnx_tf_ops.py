"""The ops read from TensorFlow / Keras 3 calls (``slice``, ``reduce``, ``scalar``, ``binary``:
converters/ops.py) as ONNX nodes."""
from __future__ import annotations

import numpy as np

from ..ir import Node, int_option
from .onnx_activations import scalar as _scalar
from .onnx_builder import GraphBuilder
from .onnx_layers import _reduce

_ELEMENTWISE = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div", "maximum": "Max",
                "minimum": "Min", "power": "Pow"}
_REDUCE = {"mean": "ReduceMean", "sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin"}
_INT64 = np.iinfo(np.int64)


def slice_to_onnx(g: GraphBuilder, node: Node) -> None:
    """Gather for an index (the axis dropped); Slice otherwise (open bounds as int64's ends)."""
    o, x, out = node.options, node.inputs[0], node.outputs[0]
    axis = int_option(o["axis"])
    if o.get("index") is not None:
        g.gather(x, int_option(o["index"]), axis, out=out)
        return
    step = int_option(o["step"])
    if step == -1:
        g.flip(x, axis, out=out)
        return
    start = 0 if o.get("start") is None else int_option(o["start"])
    stop = _INT64.max if o.get("stop") is None else int_option(o["stop"])
    g.op("Slice", [x, g.const([start]), g.const([stop]), g.const([axis]), g.const([step])], out=out)


def reduce_to_onnx(g: GraphBuilder, node: Node) -> None:
    o = node.options
    _reduce(g, _REDUCE[o["mode"]], node.inputs[0], [int_option(a) for a in o["axes"]], bool(o["keepdims"]),
            out=node.outputs[0])


def scalar_to_onnx(g: GraphBuilder, node: Node) -> None:
    o, x = node.options, node.inputs[0]
    v = _scalar(g, float(o["value"]))
    g.op(_ELEMENTWISE[o["operation"]], [v, x] if o["reverse"] else [x, v], out=node.outputs[0],
         rank=g.ranks.get(x))


def binary_to_onnx(g: GraphBuilder, node: Node) -> None:
    g.op(_ELEMENTWISE[node.options["operation"]], node.inputs[:2], out=node.outputs[0])


LAYERS = {"slice": slice_to_onnx, "reduce": reduce_to_onnx, "scalar": scalar_to_onnx, "binary": binary_to_onnx}
