"""Static shape inference over the IR: the shape (without batch, ``None`` = dynamic) of every tensor."""
from __future__ import annotations

import math

from .ir import Model, Node
from .reference_attention import output_shapes as attention_shapes

Shape = tuple


def infer_shapes(model: Model) -> dict[str, Shape]:
    """Map every tensor name of ``model`` to its shape; unknown dimensions are ``None``."""
    shapes: dict[str, Shape] = {t.name: tuple(t.shape) for t in model.inputs}
    for node in model.nodes:
        ins = [shapes.get(name) for name in node.inputs]
        outs = node_output_shapes(node, ins)
        for name, shape in zip(node.outputs, outs):
            shapes[name] = shape
    return shapes


def node_output_shapes(node: Node, ins: list) -> list:
    """The output shapes of ``node`` given its input shapes (entries may be ``None`` if unknown)."""
    o = node.options
    x = ins[0] if ins else None
    n_out = len(node.outputs)
    if x is None:
        return [None] * n_out
    if node.is_recurrent:
        units = o["units"]
        dirs = 2 if o.get("bidirectional") else 1
        merged = units * 2 if (dirs == 2 and o.get("merge_mode") == "concat") else units
        time = x[0] if len(x) >= 2 else None
        y = (time, merged) if o.get("return_sequences") else (merged,)
        y_each = (time, units) if o.get("return_sequences") else (units,)
        ys = [y_each, y_each] if dirs == 2 and o.get("merge_mode") is None else [y]
        return (ys + [(units,)] * n_out)[:n_out]
    op = node.op
    if op == "dense":
        return [x[:-1] + (o["units"],)]
    if op == "embedding":
        return [x + (o["output_dim"],)]
    if op == "mask_not_equal":
        return [x[:-1] if o.get("reduce") else x]
    if op == "repeat_vector":
        return [(o["n"],) + x]
    if op == "concatenate":
        axis = o.get("axis", -1)
        axis = axis - 1 if axis > 0 else len(x) + axis  # Keras axis counts the batch
        dims = [s[axis] if s is not None else None for s in ins]
        total = None if None in dims else sum(dims)
        return [x[:axis] + (total,) + x[axis + 1:]]
    if op == "flatten":
        return [(None if None in x else math.prod(x),)]
    if op == "reshape":
        target = tuple(o["shape"])
        if -1 in target and None not in x:
            known = math.prod(d for d in target if d != -1)
            target = tuple(math.prod(x) // known if d == -1 else d for d in target)
        return [tuple(None if d == -1 else d for d in target)]
    if op == "conv1d":
        time = x[0]
        if time is not None:
            k, s, d = o["kernel_size"], o.get("strides", 1), o.get("dilation_rate", 1)
            span = d * (k - 1) + 1
            time = (time - span) // s + 1 if o.get("padding", "valid") == "valid" else -(-time // s)
        return [(time, o["filters"])]
    if op in ("attention", "multi_head_attention", "dot"):
        return attention_shapes(node, ins)
    if op in ("global_pool", "pool1d", "permute", "crop1d", "zero_pad1d", "upsample1d"):
        return [_time_op_shape(op, o, x)]
    # element-wise and shape-keeping ops
    return [x] * n_out


def _time_op_shape(op: str, o: dict, x: Shape) -> Shape:
    """The output shape of a pooling, permuting, cropping, padding or upsampling node."""
    if op == "permute":
        return tuple(x[d - 1] for d in o["dims"])
    if op == "global_pool":
        feat = x[-1] if o.get("axis", 1) == 1 else x[0]
        if not o.get("keepdims"):
            return (feat,)
        return (1, feat) if o.get("axis", 1) == 1 else (feat, 1)
    t = x[0]
    if t is not None:
        if op == "pool1d":
            k, s = o["pool_size"], o.get("strides") or o["pool_size"]
            t = (t - k) // s + 1 if o.get("padding", "valid") == "valid" else -(-t // s)
        elif op == "crop1d":
            t -= sum(o["cropping"])
        elif op == "zero_pad1d":
            t += sum(o["padding"])
        else:
            t *= o["size"]
    return (t,) + tuple(x[1:])
