"""The ops read from TensorFlow / Keras 3 calls (``slice``, ``reduce``, ``scalar``, ``binary``:
converters/ops.py) as Keras 3 operation nodes (what ``keras.ops.*`` on a symbolic tensor records:
module ``keras.src.ops.numpy``, its options in the config, its constants among the call's arguments).
They hold no variables and are not in ``model.layers`` (keras_graph.weight_paths leaves them out)."""
from __future__ import annotations

from ..ir import Node, int_option
from .keras_layers import KerasLayer, operation_layer as _op
_CLASSES = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply", "divide": "Divide",
            "maximum": "Maximum", "minimum": "Minimum", "power": "Power"}
_REDUCE = {"mean": "Mean", "sum": "Sum", "max": "Max", "min": "Min"}


def _slice_item(v: int | None) -> int | None:
    return None if v is None else int_option(v)


def slice_op(node: Node, name: str) -> KerasLayer:
    """``x[:, ..., item]`` as GetItem; a reversal as Flip (Keras' torch backend has no negative step)."""
    o = node.options
    axis = int_option(o["axis"])
    if o.get("index") is None and int_option(o["step"]) == -1:
        return _op(node, name, "Flip", {"axis": axis}, node.inputs[:1])
    everything = {"class_name": "__slice__", "config": {"start": None, "stop": None, "step": None}}
    item: int | dict
    if o.get("index") is not None:
        item = int_option(o["index"])
    else:
        item = {"class_name": "__slice__", "config": {"start": _slice_item(o.get("start")),
                                                      "stop": _slice_item(o.get("stop")),
                                                      "step": int_option(o["step"])}}
    return _op(node, name, "GetItem", {}, node.inputs[:1], {1: [everything] * axis + [item]})


def reduce_op(node: Node, name: str) -> KerasLayer:
    o = node.options
    config = {"axis": [int_option(a) for a in o["axes"]], "keepdims": bool(o["keepdims"])}
    return _op(node, name, _REDUCE[o["mode"]], config, node.inputs[:1])


def scalar_op(node: Node, name: str) -> KerasLayer:
    o = node.options
    return _op(node, name, _CLASSES[o["operation"]], {}, node.inputs[:1],
               {0 if o["reverse"] else 1: float(o["value"])})


def binary_op(node: Node, name: str) -> KerasLayer:
    return _op(node, name, _CLASSES[node.options["operation"]], {}, node.inputs[:2])


def unmasked_merge(node: Node, name: str, args: list[str]) -> KerasLayer:
    """An IR multiply/maximum/minimum of two inputs as the Keras 3 operation (``keras.ops.multiply``): the Multiply,
    Maximum and Minimum layers of Keras 3 replace the masked steps of a masked input (by 1, or by the other input:
    keras/src/layers/merging/multiply.py, base_merge.py ``_apply_merge_op_and_or_mask``), which the IR op, like
    tf-keras, does not; the operation takes no mask."""
    return _op(node, name, _CLASSES[node.op], {}, args)


LAYERS = {"slice": slice_op, "reduce": reduce_op, "scalar": scalar_op, "binary": binary_op}
