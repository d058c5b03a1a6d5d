"""Which rows of a Dense kernel come from which upstream tensor and feature.

A Dense (or TimeDistributed Dense) multiplies its input's last axis by Keras' ``kernel (in, units)``:
row ``r`` weighs input feature ``r``. Walking back from the Dense input through the layers that only
move features along the last axis gives, for each span of rows, the tensor that made them:

* Concatenate on the last axis: each input in turn; Dropout and other identities, Masking and
  RepeatVector pass features through unchanged;
* Flatten of ``(time, features)``: one span per time step (``lstm (units 0-127) at step 3``); a
  Reshape that keeps whole feature vectors together: the step offset within each row;
* Bidirectional with ``merge_mode='concat'``: the forward units, then the backward units;
* anything else (a model input, an LSTM, a Dense, an Add ...) is where the rows come from.

Where the mapping is not exact (a Reshape that splits feature vectors, an unknown width) the walk
stops at that layer and says why.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .ir import Model, Node
from .sanitize import one_line
from .shapes import infer_shapes

#: The walk stops this many layers up, and past this many spans (a Flatten of a very long sequence).
MAX_DEPTH, MAX_SPANS = 200, 20000
#: Layers that pass the features of their first input through unchanged.
_PASS = ("identity", "masking", "repeat_vector")


@dataclass
class Span:
    """Kernel rows ``start:stop`` weigh features ``first:first + (stop - start)`` of ``tensor``."""

    start: int
    stop: int
    tensor: str
    layer: str | None  # the layer making ``tensor``; None for a model input
    first: int = 0
    direction: str | None = None  # forward / backward half of a Bidirectional concat
    step: int | None = None  # the time step (Flatten), or the step offset in a row (Reshape)
    absolute_step: bool = True  # step is the time step itself (Flatten), not an offset
    stopped: str | None = None  # why the walk did not go further up, where it could not

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if (v is not None or k == "layer") and k != "absolute_step"}
        if self.step is not None:
            d["absolute_step"] = self.absolute_step
        d["source"] = self.label()
        return d

    def moved(self, offset: int, **changes) -> "Span":
        return Span(**{**asdict(self), "start": self.start + offset, "stop": self.stop + offset, **changes})

    def label(self) -> str:
        """``lstm (units 0-127)``, ``aux_input[0]``, ``bi forward (units 0-31) at step 2``."""
        last = self.first + self.stop - self.start - 1
        if self.layer is None:
            text = one_line(self.tensor) + (f"[{self.first}]" if last == self.first else f"[{self.first}:{last + 1}]")
        else:
            word = "unit" if last == self.first else "units"
            units = f"{self.first}" if last == self.first else f"{self.first}-{last}"
            text = f"{one_line(self.layer)}{' ' + self.direction if self.direction else ''} ({word} {units})"
        if self.step is not None:
            text += f" at step {self.step}" if self.absolute_step else f" at step offset {self.step}"
        return text + (f" [{self.stopped}]" if self.stopped else "")


def producers_of(model: Model) -> dict[str, tuple[Node, int]]:
    """Each tensor's producing node and output index: built once per model by a caller walking every layer (built
    per layer, inspect of 10**4 Dense calls took minutes: red team round 9)."""
    return {t: (n, k) for n in model.nodes for k, t in enumerate(n.outputs)}


def kernel_rows(model: Model, node: Node, shapes: dict | None = None,
                producers: dict[str, tuple[Node, int]] | None = None) -> list[Span]:
    """The sources of the rows of ``node``'s Keras kernel (a ``dense`` node), in row order."""
    rows = int(node.weights["weight"].shape[1])
    shapes = infer_shapes(model) if shapes is None else shapes
    producers = producers_of(model) if producers is None else producers
    spans = _spans(node.inputs[0], rows, shapes, producers, 0)
    if sum(s.stop - s.start for s in spans) != rows:  # a shape the walk misread: say only what is sure
        return [_leaf(node.inputs[0], rows, producers, "its width differs from the kernel's rows")]
    return spans


def feature_names(model: Model, tensor: str, width: int, shapes: dict | None = None,
                  producers: dict[str, tuple[Node, int]] | None = None) -> list[str]:
    """A label per feature of ``tensor``'s last axis: ``aux_input[0]``, ``bi backward (unit 1) at step 2``."""
    shapes = infer_shapes(model) if shapes is None else shapes
    producers = producers_of(model) if producers is None else producers
    spans = _spans(tensor, width, shapes, producers, 0)
    if sum(s.stop - s.start for s in spans) != width:
        spans = [_leaf(tensor, width, producers)]
    return [Span(0, 1, s.tensor, s.layer, s.first + k, s.direction, s.step, s.absolute_step).label()
            for s in spans for k in range(s.stop - s.start)]


def _leaf(tensor: str, width: int, producers: dict, stopped: str | None = None) -> Span:
    node = producers.get(tensor, (None,))[0]
    return Span(0, width, tensor, node.name if node else None, stopped=stopped)


def _width(shapes: dict, tensor: str) -> int | None:
    shape = shapes.get(tensor)
    return shape[-1] if shape else None


def _spans(tensor: str, width: int, shapes: dict, producers: dict, depth: int) -> list[Span]:
    """The spans of ``tensor``'s last axis (``width`` features)."""
    if tensor not in producers:
        return [_leaf(tensor, width, producers)]
    node, index = producers[tensor]
    if depth > MAX_DEPTH:
        return [_leaf(tensor, width, producers, f"more than {MAX_DEPTH} layers up")]
    if node.op in _PASS and index == 0:
        return _spans(node.inputs[0], width, shapes, producers, depth + 1)
    if node.op == "concatenate" and index == 0:
        return _concatenated(node, tensor, width, shapes, producers, depth)
    if node.op in ("flatten", "reshape"):
        return _reshaped(node, tensor, width, shapes, producers, depth)
    o = node.options
    if node.is_recurrent and o.get("bidirectional") and o.get("merge_mode") == "concat" and index == 0:
        half = width // 2
        return [Span(0, half, tensor, node.name, direction="forward"),
                Span(half, width, tensor, node.name, direction="backward")]
    return [_leaf(tensor, width, producers)]


def _concatenated(node: Node, tensor: str, width: int, shapes: dict, producers: dict, depth: int) -> list[Span]:
    rank = len(shapes.get(tensor) or ()) + 1  # Keras axes count the batch
    axis = node.options["axis"]
    widths = [_width(shapes, t) for t in node.inputs]
    if not isinstance(axis, int) or rank < 2 or axis % rank != rank - 1:
        return [_leaf(tensor, width, producers, "concatenated on another axis than the features")]
    if None in widths or sum(widths) != width:
        return [_leaf(tensor, width, producers, "the widths of its inputs are not known")]
    out, offset = [], 0
    for t, w in zip(node.inputs, widths):
        out += [s.moved(offset) for s in _spans(t, w, shapes, producers, depth + 1)]
        offset += w
    return out


def _reshaped(node: Node, tensor: str, width: int, shapes: dict, producers: dict, depth: int) -> list[Span]:
    """Flatten / Reshape of ``(time, features)`` whose rows hold whole feature vectors."""
    shape_in = shapes.get(node.inputs[0])
    if not shape_in or len(shape_in) != 2 or None in shape_in or width % shape_in[1]:
        return [_leaf(tensor, width, producers, "the reshape splits feature vectors")]
    features, group = shape_in[1], width // shape_in[1]
    inner = _spans(node.inputs[0], features, shapes, producers, depth + 1)
    if any(s.step is not None for s in inner) or group * len(inner) > MAX_SPANS:
        return [_leaf(tensor, width, producers, "the mapping is too involved to list")]
    absolute = len(shapes.get(tensor) or ()) == 1 and group == shape_in[0]  # one row = the whole sequence
    return [s.moved(k * features, step=k, absolute_step=absolute) for k in range(group) for s in inner]


def render_rows(spans: list[dict], limit: int = 40) -> list[str]:
    """``kernel[0:128]  <- lstm (units 0-127)`` lines for ``inspect --layer``, at most ``limit``."""
    rows = [(f"kernel[{s['start']}:{s['stop']}]", "<- " + s["source"]) for s in spans]
    widths = max(len(r[0]) for r in rows) if rows else 0
    lines = [f"{a.ljust(widths)}  {b}" for a, b in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more spans (--json lists them all)")
    return lines

