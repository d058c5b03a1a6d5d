"""What ``gateport inspect`` shows: every layer, and for each recurrent layer and direction where each
gate sits in the Keras arrays, in PyTorch's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` parameters and in the
ONNX ``W``/``R``/``B`` inputs. Everything comes from :mod:`converters.gates`; nothing here imports a
framework.
"""
from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from . import dtypes
from .gates import LETTER, TORCH_PARTS, gate_order, gate_slice
from .ir import Model, Node
from .dense_sources import kernel_rows, producers_of, render_rows
from .errors import UsageError
from .sanitize import one_line, quote
from .shapes import infer_shapes

def keras_layout(model: Model, node: Node) -> str:
    """How the Keras file packs this layer's gates: ``keras``, ``keras1``, ``keras1_packed`` or ``cudnn``.

    The reader records ``keras1`` (per-gate ``W_i``...) and ``cudnn`` layouts; Keras 1's packed
    ``consume_less='gpu'`` arrays are told by their stored names (``lstm_1_W``, ``lstm_1_U``).
    """
    layout = node.source.get("layout")
    if node.source.get("class_name", "").startswith("CuDNN") or layout == "cudnn":
        return "cudnn"
    if layout == "keras1":
        return "keras1"
    paths = node.source.get("weight_paths", {}).get("forward", {})
    stored = [p.rsplit("/", 1)[-1].split(":")[0] for p in paths.values()]
    return "keras1_packed" if any(name.endswith(("_W", "_U")) for name in stored) else "keras"


def _span(s: slice) -> str:
    return f"{s.start}:{s.stop}"


def keras_location(node: Node, layout: str, gate: str) -> dict[str, str]:
    """Where ``gate`` lives in the Keras arrays of one direction."""
    kind, units = node.op, node.options["units"]
    letter = LETTER["keras"][gate]
    if layout == "keras1" and kind != "simple_rnn":
        return {"input_weights": f"W_{letter}", "recurrent_weights": f"U_{letter}", "bias": f"b_{letter}"}
    # Keras 1 consume_less='gpu' packs W, U, b in Keras 2's order (SEMANTICS.md §3.1)
    names = ("W", "U", "b") if layout.startswith("keras1") else ("kernel", "recurrent_kernel", "bias")
    cols = _span(gate_slice("keras", kind, gate, units))
    loc = {"input_weights": f"{names[0]}[:, {cols}]", "recurrent_weights": f"{names[1]}[:, {cols}]"}
    if layout == "cudnn":  # each gate block is stored flattened as cuDNN reads it (SEMANTICS.md §3.2)
        loc = {k: v + " (cuDNN order: block.T.reshape(block.shape, order='F'))" if k == "input_weights"
               else v + " (cuDNN order: block transposed)" for k, v in loc.items()}
    if not node.options["use_bias"]:
        return loc
    if layout == "cudnn":
        n = len(gate_order("cudnn", kind)) * units
        s = gate_slice("cudnn", kind, gate, units)
        loc["input_bias"] = f"bias[{s.start}:{s.stop}]"
        loc["recurrent_bias"] = f"bias[{n + s.start}:{n + s.stop}]"
    elif kind == "gru" and node.options.get("reset_after"):
        loc["input_bias"] = f"bias[0, {cols}]"
        loc["recurrent_bias"] = f"bias[1, {cols}]"
    else:
        loc["bias"] = f"{names[2]}[{cols}]"
    return loc


def torch_location(node: Node, direction: str, gate: str) -> dict[str, str]:
    """Where ``gate`` lands in PyTorch's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` parameters (layer 0)."""
    rows = _span(gate_slice("torch", node.op, gate, node.options["units"]))
    sfx = "_l0_reverse" if direction == "backward" else "_l0"
    return {p: f"{p}{sfx}[{rows}]" for p in TORCH_PARTS}


def onnx_location(node: Node, direction: str, gate: str) -> dict[str, str]:
    """Where ``gate`` lands in the ONNX ``W``, ``R`` and ``B`` inputs."""
    units = node.options["units"]
    s = gate_slice("onnx", node.op, gate, units)
    d = 1 if direction == "backward" else 0
    n = len(gate_order("onnx", node.op)) * units
    return {"W": f"W[{d}, {s.start}:{s.stop}]", "R": f"R[{d}, {s.start}:{s.stop}]",
            "B_input": f"B[{d}, {s.start}:{s.stop}]", "B_recurrent": f"B[{d}, {n + s.start}:{n + s.stop}]"}


def keras_array_shapes(node: Node, layout: str) -> dict[str, list[int]]:
    """Shapes of the Keras arrays of one direction, as Keras stores them."""
    kind, units, n_in = node.op, node.options["units"], node.options["input_size"]
    n = len(gate_order("keras", kind))
    if layout == "keras1" and kind != "simple_rnn":
        shapes = {}
        for g in gate_order("keras1", kind):
            letter = LETTER["keras"][g]
            shapes.update({f"W_{letter}": [n_in, units], f"U_{letter}": [units, units], f"b_{letter}": [units]})
        return shapes
    names = ("W", "U", "b") if layout.startswith("keras1") else ("kernel", "recurrent_kernel", "bias")
    shapes = {names[0]: [n_in, n * units], names[1]: [units, n * units]}
    if node.options["use_bias"]:
        if layout == "cudnn":
            shapes[names[2]] = [2 * n * units]
        elif kind == "gru" and node.options.get("reset_after"):
            shapes[names[2]] = [2, n * units]
        else:
            shapes[names[2]] = [n * units]
    return shapes


def describe(model: Model) -> dict[str, Any]:
    """The stable, JSON-ready description of ``model`` that ``inspect --json`` prints."""
    shapes, producers = infer_shapes(model), producers_of(model)
    layers = []
    for node in model.nodes:
        entry: dict[str, Any] = {
            "name": node.name,
            "op": node.op,
            "class_name": node.source.get("class_name"),
            "inputs": node.inputs,
            "outputs": node.outputs,
            "mask": node.mask,
            "output_shapes": [_shape(shapes.get(t)) for t in node.outputs],
            "options": node.given_options(),
        }
        if node.is_recurrent:
            layout = keras_layout(model, node)
            entry["keras_layout"] = layout
            entry["directions"] = [
                {
                    "direction": d,
                    "keras_arrays": keras_array_shapes(node, layout),
                    "keras_paths": node.source.get("weight_paths", {}).get(d, {}),
                    "gates": [
                        {
                            "gate": g,
                            "letters": {fw: LETTER[fw][g] for fw in ("keras", "torch", "onnx")},
                            "keras": keras_location(node, layout, g),
                            "torch": torch_location(node, d, g),
                            "onnx": onnx_location(node, d, g),
                        }
                        for g in node.gate_names
                    ],
                }
                for d in node.directions
            ]
        else:
            entry["weights"] = {k: list(v.shape) for k, v in node.weights.items()}
        if node.op == "dense" and "weight" in node.weights:
            entry["kernel_rows"] = [s.to_dict() for s in kernel_rows(model, node, shapes, producers)]
        layers.append(entry)
    return {
        "name": model.name,
        "source": model.source,
        "inputs": [{"name": t.name, "shape": _shape(t.shape), "dtype": t.dtype} for t in model.inputs],
        "outputs": [{"name": o, "shape": _shape(shapes.get(o))} for o in model.outputs],
        "dtype": dtypes.describe(model),
        "layers": layers,
    }


def _shape(s) -> list | None:
    return None if s is None else [d for d in s]


#: Width of ``inspect``'s text lines.
WIDTH = 100

#: What each source format is, for the first line of ``inspect``.
FORMAT_NAMES = {
    "keras_h5": "Keras full-model HDF5",
    "keras_v3": "Keras 3 .keras archive",
    "keras_weights_h5": "Keras weights-only HDF5",
    "torch-state-dict": "PyTorch state_dict",
    "onnx": "ONNX model",
    "gates": "gateport IR file",
}

#: Printed under the gate tables: what the letters and layouts mean.
LEGEND = textwrap.fill(
    "legend: each gate row gives the slice of every array of that framework holding the gate; the letters "
    "after a gate name are its symbol in Keras / PyTorch / ONNX (Keras calls the LSTM cell gate c, PyTorch g; "
    "the GRU candidate is h in Keras and ONNX, n in PyTorch). keras layout: keras = Keras 2/3 packed kernels; "
    "keras1 = Keras 1 per-gate W_i/U_i/b_i arrays; keras1_packed = Keras 1 consume_less='gpu' W/U/b; "
    "cudnn = CuDNNLSTM/CuDNNGRU (each kernel block stored flattened in cuDNN's order, both biases kept).",
    WIDTH, subsequent_indent="  ")


def producer(source: dict[str, Any]) -> str:
    """Who wrote the file, as far as the file says: ``Keras 2.21.0``, ``ONNX (pytorch 2.13, opset 17)``."""
    fmt = source.get("format", "?")
    name = FORMAT_NAMES.get(fmt, fmt)
    if fmt == "gates":
        origin = source.get("converted_from") or {}
        return f"{name} (converted by gateport from {one_line(origin.get('path', '?'))}, {producer(origin)})"
    if fmt == "onnx":
        parts = [one_line(source["producer"])] if source.get("producer") else []
        parts += [f"opset {source['opset']}"] if source.get("opset") else []
        return f"{name} ({', '.join(parts) or 'no producer recorded'})"
    if fmt == "torch-state-dict":
        return f"{name} (no producer recorded)"
    if source.get("keras_version"):
        return f"{name}, written by Keras {one_line(source['keras_version'])}"
    if source.get("assumed_keras_version"):
        return (f"{name}, written by Keras {one_line(source['assumed_keras_version'])} "
                "(no version recorded; assumed from the file's layout)")
    return f"{name}, no Keras version recorded"


def render(desc: dict[str, Any], layer: str | None = None) -> str:
    """A readable table of ``describe()``'s output for people: lines under 100 columns, names escaped."""
    src = desc["source"]
    lines = textwrap.wrap(f"{one_line(src.get('path', desc['name']))}: {producer(src)}", WIDTH,
                          subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)
    fmt = lambda s: "(" + ", ".join("?" if d is None else str(d) for d in (s or [])) + ")"  # noqa: E731
    lines.append("inputs:  " + ", ".join(f"{one_line(t['name'])} {fmt(t['shape'])} {t['dtype']}" for t in desc["inputs"]))
    lines.append("outputs: " + ", ".join(f"{one_line(t['name'])} {fmt(t['shape'])}" for t in desc["outputs"]))
    if desc.get("dtype", {}).get("layers", {}).keys() - {"float32"}:  # a float32 model says nothing more
        lines.append("dtype:   " + one_line(dtypes.describe_line(desc["dtype"])))
    lines.append("")
    rows = [("layer", "op", "class", "output shape")]
    options = {}
    for e in desc["layers"]:
        if layer and e["name"] != layer:
            continue
        rows.append((one_line(e["name"]), e["op"], one_line(e["class_name"] or ""),
                     " ".join(fmt(s) for s in e["output_shapes"])))
        options[len(rows) - 1] = _brief_options(e)
    for i, row in enumerate(_table(rows)):
        lines.append(row)
        if options.get(i):
            lines += textwrap.wrap(options[i], WIDTH, initial_indent="    ", subsequent_indent="    ")
    for e in desc["layers"] if layer else ():
        if e["name"] == layer and e.get("kernel_rows"):
            lines += ["", f"{one_line(e['name'])}: kernel rows by source"]
            lines += ["  " + r for r in render_rows(e["kernel_rows"])]
    shown = [e for e in desc["layers"] if "directions" in e and (not layer or e["name"] == layer)]
    for e in shown:
        lines.append("")
        lines += _recurrent_lines(e, paths=bool(layer))
    if shown:
        lines += ["", LEGEND]
    return "\n".join(lines)


def _recurrent_lines(e: dict[str, Any], paths: bool) -> list[str]:
    """One recurrent layer: per direction its Keras arrays (with their stored paths if ``paths``) and a
    table per framework of gate slices."""
    o = e["options"]
    head = f"{one_line(e['name'])}: {e['op'].upper()} units={o['units']} input={o['input_size']} keras layout={e['keras_layout']}"
    if e["op"] == "gru":
        head += f" reset_after={o.get('reset_after')}"
    lines = [head]
    no_torch = e["op"] == "gru" and not o.get("reset_after")
    for d in e["directions"]:
        arrays = ", ".join(f"{k} {tuple(v)}" for k, v in d["keras_arrays"].items())
        lines += textwrap.wrap(f"{d['direction']}: {arrays}", WIDTH, initial_indent="  ", subsequent_indent="    ")
        for k, p in d["keras_paths"].items() if paths else ():
            lines.append(f"    {k}: {one_line(p)}")
        for fw in ("keras", "torch", "onnx"):
            if fw == "torch" and no_torch:
                lines += textwrap.wrap("pytorch: no nn.GRU equivalent (reset_after=False applies the reset gate "
                                       "before the recurrent matmul); --to torch generates an exact loop", WIDTH,
                                       initial_indent="    ", subsequent_indent="      ")
                continue
            lines += ["    " + r for r in _gate_table(d["gates"], fw)]
    return lines


def _gate_table(gates: list[dict[str, Any]], fw: str) -> list[str]:
    """Rows ``gate | slice ...`` for one framework, the array names in the header where all gates share
    them (Keras 1's per-gate arrays have a name per gate: then the cells hold the names)."""
    label = {"keras": "keras", "torch": "pytorch", "onnx": "onnx"}[fw]
    locs = [list(g[fw].values()) for g in gates]
    names = [[loc.split("[")[0] for loc in row] for row in locs]
    shared = all("[" in loc for row in locs for loc in row) and all(row == names[0] for row in names)
    if fw == "onnx":
        header = ["W", "R", "B (input)", "B (recurrent)"]
    else:
        header = names[0] if shared else [k.replace("_", " ") for k in gates[0][fw]]
        if len(set(header)) < len(header):  # cuDNN and reset_after GRU biases: two arrays named bias
            header = [f"{h} ({k.split('_')[0]})" if header.count(h) > 1 else h for h, k in zip(header, gates[0][fw])]
    rows = [(label, *header)]
    for g, row in zip(gates, locs):
        letters = g["letters"]
        name = f"{g['gate']} ({letters['keras']}/{letters['torch']}/{letters['onnx']})" if fw == "keras" else g["gate"]
        cells = ["[" + loc.split("[", 1)[1] if shared or fw == "onnx" else loc for loc in row]
        rows.append((name, *(c.split(" (cuDNN")[0] for c in cells)))
    return _table(rows)


def _brief_options(e: dict[str, Any]) -> str:
    o = e["options"]
    skip = {"units", "input_size"}
    parts = []
    if e["op"] == "gru" and "reset_after" in o:
        parts.append(f"reset_after={o['reset_after']}")
        skip = skip | {"reset_after"}
    for k, v in o.items():
        if k in skip or v in (False, None) and k not in ("merge_mode",):
            continue
        if k == "merge_mode" and not o.get("bidirectional"):
            continue
        parts.append(f"{k}={v}")
    if e.get("mask"):
        parts.append(f"mask={one_line(e['mask'])}")
    return one_line(" ".join(parts))


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def extract_gate(model: Model, layer: str, gate: str) -> dict[str, np.ndarray]:
    """One gate's arrays of every direction: IR orientation ``(units, in)`` plus Keras' ``(in, units)``."""
    node = next((n for n in model.nodes if n.name == layer), None)
    if node is None:
        raise UsageError(f"expected a layer of the model, found {quote(layer)}")
    if not node.is_recurrent:
        raise UsageError(f"expected a recurrent layer, found a {node.op}", layer=node.label())
    if gate not in node.gate_names:
        raise UsageError(f"expected one of the {node.op} gates {', '.join(node.gate_names)}, found {quote(gate)}",
                         layer=node.label())
    out = {}
    for d in node.directions:
        g = node.gate(d, gate)
        out[f"{d}/input_weights"] = g.input_weights
        out[f"{d}/recurrent_weights"] = g.recurrent_weights
        out[f"{d}/input_bias"] = g.input_bias
        out[f"{d}/recurrent_bias"] = g.recurrent_bias
        out[f"{d}/keras_kernel_columns"] = g.input_weights.T
        out[f"{d}/keras_recurrent_kernel_columns"] = g.recurrent_weights.T
    return out
