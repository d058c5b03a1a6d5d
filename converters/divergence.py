"""Where a runtime departs from gateport's numpy reference: the first recurrent layer, direction and step.

Every runtime gives, for each recurrent layer, a :class:`LayerTrace` in one canonical form: the
layer's input as Keras sees it, and per direction the output the cell produced when it processed
input time step ``t`` (``(batch, time, units)``), and the final states. Steps a mask skips are not
compared. :func:`first_departure` walks the layers in graph order and names the first input, output
or state that differs beyond the tolerance, and the first step *in that direction's processing order*.

    reference_run(model, xs)            numpy outputs, traces and masks
    torch_traces(model, records)        from the recurrent submodules' forward hooks (child process)
    onnx_traces(model, probes, masks)   from the fused nodes' X / Y / Y_h / Y_c (extra graph outputs)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .closeness import mismatches
from .ir import Model, Node
from .sanitize import one_line, quote

#: Names of each op's states, in the IR's order.
STATE_NAMES = {"lstm": ("h", "c"), "gru": ("h",), "simple_rnn": ("h",)}
_TORCH_NN = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
_TORCH_LOOP = {"lstm": "LSTMLoop", "gru": "GRULoop", "simple_rnn": "SimpleRNNLoop"}
#: Generated modules that run one direction of a masked layer on nn.* over its unmasked steps.
_TORCH_MASKED = ("KerasMaskedRNN", "KerasMaskedLSTM")
_ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


class TraceUnavailable(Exception):
    """A runtime's intermediates cannot be matched to the model's recurrent layers (the reason)."""


@dataclass
class LayerTrace:
    """One recurrent layer in one runtime (canonical form, see the module docstring)."""

    x: np.ndarray | None
    ys: dict[str, np.ndarray]
    states: dict[str, list[np.ndarray]]


@dataclass
class Departure:
    """The first place a runtime differs: ``tensor`` is ``input``, ``output`` or ``state h|c``; or, where
    no trace localises it, ``weights`` (:func:`weight_departures`)."""

    layer: str
    tensor: str
    direction: str | None = None
    step: int | None = None  # in the direction's processing order
    time: int | None = None  # input time index
    batch: int | None = None
    max_abs: float | None = None
    gates: list[str] | None = None  # the gates whose weights differ from the source's (:func:`name_mistakes`)
    mistakes: list[dict] | None = None  # what diff names: ``{"kind", "text"}``

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        where = f"layer {quote(self.layer)}"
        if self.direction:
            where += f", {self.direction} direction"
        if self.tensor == "weights":
            what = "its weights differ from the source's"
        elif self.tensor == "input":
            what = (f"its input already differs at time {self.time} (batch row {self.batch}): the departure "
                    "is before this layer")
        elif self.step is not None:
            what = f"{self.tensor} first differs at step {self.step} (input time {self.time}, batch row {self.batch})"
        else:
            what = f"final {self.tensor} differs"
        text = f"{where}: {what}, max abs {self.max_abs:.2e}" if self.max_abs is not None else f"{where}: {what}"
        return text + self._named()

    def _named(self) -> str:
        """``; gates ...: mistake [kind]``, once :func:`name_mistakes` has run."""
        if self.gates is None:
            return ""
        if not self.gates and not self.mistakes:
            return "; its weights equal the source's (not a weight mistake: the runtime or the code around them)"
        named = "; ".join(f"{m['text']} [{m['kind']}]" for m in self.mistakes or ()) or "no known mistake explains it"
        gates = f"gate{'s' * (len(self.gates) != 1)} {', '.join(self.gates)}: " if self.gates else ""
        return f"; {gates}{one_line(named)}"


# -- comparing -------------------------------------------------------------------------------------
def _max_abs(got, want, where) -> float | None:
    diff = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))[where]
    diff = diff[np.isfinite(diff)]
    return float(diff.max()) if diff.size else None


def _reverses(node: Node, direction: str) -> bool:
    """Whether ``direction`` processes the input from its last step to its first."""
    return bool(node.options.get("go_backwards")) != (direction == "backward")


def _first_step(bad: np.ndarray, reverse: bool) -> tuple[int, int, int] | None:
    """``bad (batch, time)`` -> (processing step, input time, batch row) of the earliest bad step."""
    steps = bad.shape[1]
    order = bad[:, ::-1] if reverse else bad
    rows = order.any(axis=0)
    if not rows.any():
        return None
    step = int(np.argmax(rows))
    time = steps - 1 - step if reverse else step
    return step, time, int(np.argmax(bad[:, time]))


def _sequence_departure(got, want, valid, atol, rtol) -> np.ndarray | None:
    """``(batch, time)`` bad steps of two ``(batch, time, features)`` arrays, or None if shapes differ."""
    if got is None or want is None or np.shape(got) != np.shape(want):
        return None
    return mismatches(got, want, atol, rtol).any(axis=-1) & valid


def _layer_departures(node: Node, ref: LayerTrace, got: LayerTrace, valid: np.ndarray,
                      atol: float, rtol: float) -> list[Departure]:
    """What differs in one layer: its input, else each direction's outputs, else its final states."""
    bad = _sequence_departure(got.x, ref.x, valid, atol, rtol)
    if bad is not None and bad.any():
        _, time, batch = _first_step(bad, False)
        return [Departure(node.name, "input", time=time, batch=batch,
                          max_abs=_max_abs(got.x[:, time], ref.x[:, time], slice(None)))]
    found = []
    for d in node.directions:
        bad = _sequence_departure(got.ys.get(d), ref.ys[d], valid, atol, rtol)
        if bad is None:
            found.append(Departure(node.name, "output", d))  # shapes differ: the whole sequence
            continue
        first = _first_step(bad, _reverses(node, d))
        if first is not None:
            step, time, batch = first
            found.append(Departure(node.name, "output", d, step, time, batch,
                                   _max_abs(got.ys[d][:, time], ref.ys[d][:, time], slice(None))))
            continue
        # a row whose every step is masked ran nothing: its final state is the initial one, which a fused
        # ONNX node (sequence_lens 0 zeroes Y_h) leaves to the graph around it; compared only on the outputs
        ran = valid.any(axis=1)
        for name, g, w in zip(STATE_NAMES[node.op], got.states.get(d, []), ref.states[d]):
            if np.shape(g) != np.shape(w) or mismatches(np.asarray(g)[ran], np.asarray(w)[ran], atol, rtol).any():
                same_shape = np.shape(g) == np.shape(w)
                found.append(Departure(node.name, f"state {name}", d,
                                       max_abs=_max_abs(g, w, ran) if same_shape else None))
                break
    return found


def first_departure(model: Model, ref: dict[str, LayerTrace], got: dict[str, LayerTrace],
                    masks: dict[str, np.ndarray | None], atol: float, rtol: float) -> list[Departure]:
    """The departures in the first recurrent layer (graph order) that differs; [] when none differs."""
    for node in model.recurrent_nodes():
        if node.name not in ref or node.name not in got:
            continue
        y = ref[node.name].ys[node.directions[0]]
        mask = masks.get(node.name)
        valid = np.ones(y.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        found = _layer_departures(node, ref[node.name], got[node.name], valid, atol, rtol)
        if found:
            return found
    return []


# -- the numpy reference ---------------------------------------------------------------------------
def reference_run(model: Model, xs: Sequence[np.ndarray]
                  ) -> tuple[list[np.ndarray], dict[str, LayerTrace], dict[str, np.ndarray | None]]:
    """The numpy reference's outputs, every recurrent layer's trace and mask (by node name)."""
    from . import reference

    values = reference._bind_inputs(model, list(xs))
    traces, masks = {}, {}
    for node in model.nodes:
        if node.is_recurrent:
            masks[node.name] = np.asarray(values[node.mask], dtype=bool) if node.mask else None
            traces[node.name] = _reference_trace(node, values, masks[node.name])
        outputs = reference.run_node(node, values)
        values.update(zip(node.outputs, outputs))
    return [np.asarray(values[n], dtype=np.float64) for n in model.outputs], traces, masks


def _reference_trace(node: Node, values: dict, mask: np.ndarray | None) -> LayerTrace:
    from .reference_rnn import CELLS, _gates64, _initial_states, scan

    x = np.asarray(values[node.inputs[0]], dtype=np.float64)
    given = [np.asarray(values[s], dtype=np.float64) for s in node.inputs[1:]]
    ys, states = {}, {}
    for d, init in zip(node.directions, _initial_states(node, x, given)):
        reverse = _reverses(node, d)
        step = CELLS[node.op](node, _gates64(node, d))
        out, final = scan(step, x, init, mask, reverse, bool(node.options.get("zero_output_for_mask")))
        ys[d] = out[:, ::-1] if reverse else out
        states[d] = list(final)
    return LayerTrace(x, ys, states)


# -- PyTorch ---------------------------------------------------------------------------------------
def torch_traces(model: Model, records: list[dict]) -> dict[str, LayerTrace]:
    """Traces from the generated module's recurrent submodule calls (:func:`runtimes.run_torch_isolated`).

    An ``nn.LSTM/GRU/RNN`` holds every direction of one layer and gets the input flipped when
    ``go_backwards``; a generated ``*Loop`` or ``KerasMasked*`` (a masked direction on nn.*) is one
    direction and returns outputs in processing order (``KerasMaskedLSTM``: and ``h`` only).
    """
    traces, k = {}, 0
    for node in model.recurrent_nodes():
        if k >= len(records):
            raise TraceUnavailable(f"the module ran {len(records)} recurrent submodules, fewer than the "
                                   "model's recurrent layers")
        if records[k]["cls"] == _TORCH_NN[node.op]:
            traces[node.name] = _from_nn(node, records[k])
            k += 1
        elif all(r["cls"] in (_TORCH_LOOP[node.op], *_TORCH_MASKED) for r in records[k:k + len(node.directions)]):
            traces[node.name] = _from_loops(node, records[k:k + len(node.directions)])
            k += len(node.directions)
        else:
            raise TraceUnavailable(f"expected a {_TORCH_NN[node.op]} submodule for layer {quote(node.name)}, "
                                   f"found {quote(records[k]['cls'])}")
    return traces


def _flip(a: np.ndarray | None, flip: bool) -> np.ndarray | None:
    return a[:, ::-1] if flip and a is not None else a


def _from_nn(node: Node, record: dict) -> LayerTrace:
    back = bool(node.options.get("go_backwards"))
    units = int(node.options["units"])
    y = record["y"]
    ys = {d: _flip(y[..., k * units:(k + 1) * units], back) for k, d in enumerate(node.directions)}
    n = len(STATE_NAMES[node.op])
    states = {d: [record["states"][j][k] for j in range(min(n, len(record["states"])))]
              for k, d in enumerate(node.directions)}
    return LayerTrace(_flip(record["x"], back), ys, states)


def _from_loops(node: Node, records: list[dict]) -> LayerTrace:
    ys = {d: _flip(r["y"], _reverses(node, d)) for d, r in zip(node.directions, records)}
    states = {d: list(r["states"]) for d, r in zip(node.directions, records)}
    return LayerTrace(records[0]["x"], ys, states)


# -- ONNX ------------------------------------------------------------------------------------------
def onnx_traces(model: Model, probes: list[dict], masks: dict[str, np.ndarray | None]) -> dict[str, LayerTrace]:
    """Traces from the fused nodes' ``X``, ``Y``, ``Y_h``, ``Y_c`` (:func:`runtimes.run_onnx_traced`).

    ``Y`` is aligned to input time in both directions; under a mask the node ran on the compacted
    sequence (the processed steps first, :class:`~converters.writers.onnx_masks.MaskPlan`), so its
    rows go back to their time steps here.
    """
    nodes = list(model.recurrent_nodes())
    ops = [p["op"] for p in probes]
    if ops != [_ONNX_OP[n.op] for n in nodes]:
        raise TraceUnavailable(f"expected fused nodes {[_ONNX_OP[n.op] for n in nodes]}, found {ops}")
    return {node.name: _from_onnx(node, probe, masks.get(node.name)) for node, probe in zip(nodes, probes)}


def _from_onnx(node: Node, probe: dict, mask: np.ndarray | None) -> LayerTrace:
    bidirectional = bool(node.options.get("bidirectional"))
    if (probe["direction"] == "bidirectional") != bidirectional or probe["y"] is None:
        raise TraceUnavailable(f"the fused node of layer {quote(node.name)} does not match its directions")
    slot = {d: int(_reverses(node, d)) if bidirectional else 0 for d in node.directions}
    x = None if probe["x"] is None else _batch_first(probe["x"], mask)
    ys = {d: _batch_first(probe["y"][:, slot[d]], mask) for d in node.directions}
    states = {d: [s[slot[d]] for s in probe["states"]] for d in node.directions}
    return LayerTrace(x, ys, states)


def _batch_first(a: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """A time-major ``(time, batch, features)`` array at input time; compacted rows put back under a mask."""
    a = np.swapaxes(a, 0, 1)
    if mask is None:
        return a
    out = np.full(a.shape, np.nan, dtype=np.float64)
    for b in range(a.shape[0]):
        steps = np.flatnonzero(mask[b])
        out[b, steps] = a[b, :len(steps)]
    return out


# -- naming the gate and the mistake ------------------------------------------------------------------
#: Weight markers: element ``k`` of the marked layer holds ``MARK + k``, exact in float32 while ``k < MARK``.
MARK = float(1 << 23)


class ReadBackUnavailable(Exception):
    """An artifact's weights cannot be read back into the IR (the reason)."""


def read_back(model: Model, layer: str, target: str, artifact) -> Node:
    """Layer ``layer`` of ``artifact`` (an IR, an ``.onnx`` file, a torch folder, a ``.keras`` file) as an IR node.

    A file goes through gateport's reader (:func:`converters.api.read`); a torch folder, or an ONNX
    file the reader refuses, is mapped through the writer: ``model`` is written again with the
    layer's weights replaced by markers, and each marker's place in the written tensors says which
    weight the artifact holds there. Raises :class:`ReadBackUnavailable` with the reason.
    """
    from .errors import GateportError

    if artifact is None:
        raise ReadBackUnavailable("this run converted the artifact from gateport's reading of the file, so its "
                                  "weights are that reading's: the departure is not a weight mistake")
    node = next(n for n in model.recurrent_nodes() if n.name == layer)
    try:
        return _read_back(model, node, target, artifact)
    except (ReadBackUnavailable, GateportError) as e:
        raise ReadBackUnavailable(f"the artifact's weights cannot be read back: {_brief(e)}") from None


def _read_back(model: Model, node: Node, target: str, artifact) -> Node:
    from pathlib import Path

    from .readers import read_file as read
    from .errors import GateportError

    if isinstance(artifact, Model):
        return _counterpart(model, node, artifact)
    path = Path(artifact)
    if target == "torch":
        return _through_writer(model, node, _torch_tensors(path), _torch_layout)
    try:
        return _counterpart(model, node, read(path))
    except GateportError as e:
        if target != "onnx":
            raise
        first = e
    try:
        return _through_writer(model, node, _onnx_tensors(path), _onnx_layout)
    except (ReadBackUnavailable, GateportError) as e:
        raise ReadBackUnavailable(f"the ONNX reader refuses it ({_brief(first)}) and {_brief(e)}") from None


def _brief(e: BaseException) -> str:
    return one_line(e)[:200]


def _counterpart(model: Model, node: Node, artifact: Model) -> Node:
    """The artifact's recurrent layer aligned with ``node`` (:func:`converters.diff.align`)."""
    from .diff import align

    _, pairs = align(list(model.recurrent_nodes()), list(artifact.recurrent_nodes()))
    found = [b for a, b in pairs if a is node]
    if not found:
        raise ReadBackUnavailable(f"the artifact has no recurrent layer matching {quote(node.name)}")
    return found[0]


def _marked(model: Model, node: Node) -> tuple[Model, dict[str, tuple[int, int]]]:
    """A copy of ``model`` whose ``node`` holds markers, and each weight's marker range."""
    import copy

    from .writers.nn_layout import has_bias

    marked = copy.copy(model)
    marked.nodes = [copy.copy(n) for n in model.nodes]
    target = marked.nodes[model.nodes.index(node)]
    weights, spans, k = dict(node.weights), {}, 0
    keep_biases = not has_bias(node)  # a layer without biases is written without them
    for key in sorted(weights):
        if keep_biases and key.endswith("_bias"):
            continue
        size = int(np.size(weights[key]))
        weights[key] = (MARK + np.arange(k, k + size, dtype=np.float64)).reshape(np.shape(weights[key]))
        spans[key] = (k, k + size)
        k += size
    if k >= MARK:
        raise ReadBackUnavailable(f"layer {quote(node.name)} has too many weights to map ({k})")
    target.weights = weights
    return marked, spans


def _through_writer(model: Model, node: Node, tensors: dict[str, np.ndarray], layout) -> Node:
    """``node`` with the weights ``tensors`` (an artifact's) hold where the writer puts each of its weights."""
    import copy

    marked, spans = _marked(model, node)
    written, plain = layout(marked), layout(model)
    total = max((b for _, b in spans.values()), default=0)
    flat = np.full(total, np.nan)
    for name, values in written.items():
        values = np.asarray(values, dtype=np.float64)
        if name in plain and np.array_equal(values, np.asarray(plain[name], dtype=np.float64)):
            continue  # another layer's tensor
        got = tensors.get(name)
        if got is None or np.shape(got) != values.shape:
            raise ReadBackUnavailable(f"its tensor {quote(name)} is not the {values.shape} gateport writes "
                                      "for this model")
        index = values.ravel() - MARK
        if not np.all((index >= 0) & (index < total) & (index == np.round(index))):
            raise ReadBackUnavailable(f"the writer transforms layer {quote(node.name)}'s weights in {quote(name)}")
        flat[index.astype(np.int64)] = np.asarray(got, dtype=np.float64).ravel()
    out = copy.copy(node)
    out.weights = dict(node.weights)
    for key, (a, b) in spans.items():
        if np.isnan(flat[a:b]).any():
            raise ReadBackUnavailable(f"the written tensors do not hold weight {quote(key)}")
        out.weights[key] = flat[a:b].reshape(np.shape(node.weights[key])).astype(node.weights[key].dtype)
    return out


def _torch_layout(model: Model) -> dict[str, np.ndarray]:
    from .writers import torch_code

    return torch_code.state_dict(model)


def _torch_tensors(folder) -> dict[str, np.ndarray]:
    from .safetensors_io import load

    path = folder / "model.safetensors"
    if not path.is_file():
        raise ReadBackUnavailable("the torch folder has no model.safetensors")
    return load(path)[0]


def _onnx_layout(model: Model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    from .writers import onnx_graph

    return {t.name: numpy_helper.to_array(t) for t in onnx_graph.to_onnx(model).graph.initializer}


def _onnx_tensors(path) -> dict[str, np.ndarray]:
    import onnx

    from .readers.onnx_tensors import TensorReader

    proto = onnx.load(str(path), load_external_data=False)
    reader = TensorReader(proto, str(path))
    return {t.name: reader.array(t) for t in proto.graph.initializer}


def name_mistakes(model: Model, departures: list[Departure], artifact: Node) -> None:
    """Fill each departure's ``gates`` and ``mistakes``: :mod:`converters.diff` on its layer against ``artifact``."""
    from . import diff

    node = next(n for n in model.recurrent_nodes() if n.name == departures[0].layer)
    report = diff.Report("source", "artifact", "", "", "verify")
    diff.compare_layer(node, artifact, report)
    for d in departures:
        if d.tensor == "input":
            continue
        d.gates = list(dict.fromkeys(r.gate for r in report.rows if not r.same and r.direction == d.direction))
        others = [f"{o}: " for o in node.directions if o != d.direction]
        d.mistakes = [{"kind": m.kind, "text": m.text} for m in report.mistakes
                      if not any(m.text.startswith(o) for o in others)]


def weight_departures(model: Model, target: str, artifact) -> list[Departure]:
    """Where no trace localises a departure: the first recurrent layer whose weights in ``artifact``
    (read back, :func:`read_back`) differ from the source's, per direction; [] when every layer's agree."""
    for node in model.recurrent_nodes():
        found = [Departure(node.name, "weights", d) for d in node.directions]
        name_mistakes(model, found, read_back(model, node.name, target, artifact))
        differing = [d for d in found if d.gates]
        if differing:
            return differing
        if found[0].mistakes:  # an option, not a weight: the layer as a whole
            found[0].direction = None if len(found) > 1 else found[0].direction
            return found[:1]
    return []


def numpy_traces(model: Model, records: list[dict]) -> dict[str, LayerTrace]:
    """Per recurrent layer, the trace of a generated numpy ``model.py`` (``--to numpy``): each
    ``keras_rnn`` call it recorded is one direction, like a generated PyTorch ``*Loop``."""
    kinds = [node.op for node in model.recurrent_nodes() for _ in node.directions]
    if len(kinds) != len(records):
        raise TraceUnavailable(f"the generated numpy code ran {len(records)} recurrent loops, expected {len(kinds)}")
    return torch_traces(model, [dict(r, cls=_TORCH_LOOP[op]) for op, r in zip(kinds, records)])
