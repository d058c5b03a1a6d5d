"""Recurrences that tf2onnx / Keras 3's exporter left as an ONNX ``Loop`` -> one fused ``RNN`` / ``GRU`` node.

    found = loop_recurrence(vg, node)   # a Rewrite, or a str saying what was not recognized

TensorFlow's ``while_loop`` of a Keras ``SimpleRNN`` or ``GRU`` (Keras 3 layers, ``reset_after=False``)
becomes a ``Loop`` whose body reads step ``t`` of a time-major input (``Gather(X, t)``), carries one
state, the loop counter and the weights, and emits the new state as its scan output. The cell is read
from the body's structure: the kernel is what ``MatMul`` multiplies step ``t`` by, the recurrent kernel
what it multiplies the state by (through ``Slice``), the bias the remaining float constant of ``units *
gates`` (or ``2 x units * gates``: GRU ``reset_after``), the gate count ``kernel columns / units``, the
activations from the body's activation ops. The candidate Keras cell is then checked, not assumed:
the body is run step by step in numpy (the ops below only; anything else is named and refused) on
seeded inputs over the whole sequence, loop condition included, and must give the candidate's
states and stop after exactly ``T`` steps. An LSTM loop carries two states (``h``, ``c``).

A masked Bidirectional leaves two such loops, the backward one reading the sequence and the mask both
reversed in time (Keras' ``go_backwards``); the pair is read as one bidirectional node in the masked plan
once both bodies, run on seeded sequences and masks (the backward one's reversed), give what that plan
computes for their direction (:func:`converters.readers.onnx_mask_plan.plan_in_numpy`).

A masked Keras layer's loop also reads step ``t`` of a time-major mask and carries the previous output:
its body selects (``Where``, or the ``Cast``/``Mul``/``Add`` tf2onnx lowers ``SelectV2`` to) the new
states where the step is unmasked and the old ones elsewhere, and the new output or the previous one
(zeros with ``zero_output_for_mask``). The check runs it on seeded masks too, and the rewrite is the
fused node inside gateport's exact masked plan (:mod:`converters.readers.onnx_mask_plan`), the mask taken
from the tensor the loop reads it from.
"""
from __future__ import annotations

import numpy as np

from ..sanitize import quote
from .onnx_mask_plan import PlanNodes, masked_node, plan_in_numpy
from .onnx_rewrite import FLIP_END, Rewrite, fresh, same_value, time_flip_source, zeros
from .onnx_value_graph import ValueGraph, shown

#: ops the body may use (numpy semantics below); analytic or piecewise-linear, so a numeric check on
#: seeded inputs tells two cells apart
_ACT = {"Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Tanh": np.tanh, "Relu": lambda x: np.maximum(x, 0)}
_CAST = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64}
_BIN = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Less": np.less,
        "Greater": np.greater, "And": np.logical_and, "Or": np.logical_or,
        "Max": np.maximum, "Min": np.minimum}  # Max / Min: Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1)
#: the recurrent activations a loop's gates may use: ONNX's name -> the numpy function (Keras 2's hard_sigmoid
#: is ONNX's HardSigmoid with alpha 0.2, beta 0.5; tf_keras/src/activations.py hard_sigmoid)
_GATE = {"Sigmoid": _ACT["Sigmoid"], "HardSigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1)}
#: the check runs the body once per step of a static time axis up to this long
_MAX_STEPS = 4096
_ATOL = 1e-5
#: bounds of the check's work: op runs (steps x body nodes) and numbers one op may make
_MAX_WORK = 2_000_000
_MAX_ELEMENTS = 1 << 22


#: the cell a kernel of this many gate blocks belongs to
_KINDS = {1: "simple_rnn", 3: "gru", 4: "lstm"}


class NotRecognized(Exception):
    """What in the loop was not recognized (the reason of a refusal)."""


def loop_recurrence(vg: ValueGraph, node):
    """The Rewrite of a recognized recurrence Loop (with its twin when it is one of the two loops of a
    masked Bidirectional), a one-line reason, or None for a forward loop whose backward twin does not
    pair with it (that loop's refusal says why)."""
    try:
        parts, cell = _recognized(vg, node)
        role, twin = _twin(vg, node, parts) if parts["mask"] else (None, None)
        if role == "forward":
            found = loop_recurrence(vg, twin)
            return found if isinstance(found, Rewrite) else None
        if role == "backward":
            return _pair(vg, twin, node, parts, cell)
        if role == "go_backwards":
            _check_direction(parts, cell, True)
            adds, inits = _fused_backward(vg, node, parts, cell, twin)
            return Rewrite(f"masked_backward_loop_{cell['kind']}", [node], adds, inits)
        adds, inits = _fused(vg, node, parts, cell)
    except NotRecognized as e:
        return str(e)
    except _RUN_ERRORS as e:
        return f"running its body in numpy failed ({type(e).__name__}: {quote(str(e), 120)})"
    return Rewrite(("masked_loop_" if parts["mask"] else "loop_") + cell["kind"], [node], adds, inits)


_RUN_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, FloatingPointError)


def _recognized(vg: ValueGraph, node) -> tuple[dict, dict]:
    """The loop's parts and its Keras cell, checked by running the body."""
    parts = _parts(vg, node)
    cell = _candidate(vg, parts)
    _check(vg, node, parts, cell)
    return parts, cell


# -- a masked Bidirectional: two loops, the backward one on the sequence and mask reversed in time -----
#: the most other loops searched for a twin (a bound on the work)
_MAX_TWINS = 64


def _twin(vg: ValueGraph, node, p: dict):
    """``("forward", backward loop)``, ``("backward", forward loop)``, ``("go_backwards", (sequence, mask))``
    or ``(None, None)`` for a masked loop. Keras' backward layer of a Bidirectional runs ``go_backwards``:
    TensorFlow reverses its input and its mask in time (keras/src/backend/tensorflow/rnn.py ``rnn``:
    ``tf.reverse(input_, [0])``, ``mask = tf.reverse(mask, [0])``), so its loop reads both reversed. A
    loop reading both reversed with no forward loop on that sequence is a masked layer of its own with
    ``go_backwards=True`` (the sequence and mask it reads reversed returned)."""
    flipped_x, flipped_mask = time_flip_source(vg, p["x"]), time_flip_source(vg, p["mask"])
    if flipped_x is None and flipped_mask is None:
        back = next((n for n, q in _masked_loops(vg, node, True) if _reads_flipped(vg, q["x"], p["x"])), None)
        return ("forward", back) if back is not None else (None, None)
    if flipped_x is None or flipped_mask is None:
        raise NotRecognized(f"expected a backward loop of a masked Bidirectional to read both its sequence and "
                            f"its mask reversed in time, found only its {'sequence' if flipped_x else 'mask'} "
                            f"reversed")
    fronts = [(n, q) for n, q in _masked_loops(vg, node, False) if same_value(vg, q["x"], flipped_x)]
    if not fronts:
        return "go_backwards", (flipped_x, flipped_mask)
    front = next((n for n, q in fronts if same_value(vg, q["mask"], flipped_mask)), None)
    if front is None:
        raise NotRecognized(f"expected the mask it reads reversed in time to be the mask its forward loop "
                            f"{quote(fronts[0][0].name)} reads (a masked Bidirectional), found another mask")
    return "backward", front


def _reads_flipped(vg: ValueGraph, x: str, source: str) -> bool:
    flipped = time_flip_source(vg, x)
    return flipped is not None and same_value(vg, flipped, source)


def _masked_loops(vg: ValueGraph, node, flipped: bool) -> list[tuple]:
    """The other loops that read one step of a sequence and of a mask, and something reversed in time
    (``flipped``) or nothing: ``(loop, its parts)``."""
    found = []
    loops = [n for n in vg.nodes if n.op_type == "Loop" and n is not node and _reads_a_flip(vg, n) == flipped]
    for other in loops[:_MAX_TWINS]:
        try:
            q = _parts(vg, other)
        except (NotRecognized, *_RUN_ERRORS):
            continue
        if q["mask"]:
            found.append((other, q))
    return found


def _reads_a_flip(vg: ValueGraph, loop) -> bool:
    """Whether the loop's body reads a tensor of the outer graph reversed in time."""
    body = vg.attr(loop, "body")
    names = {i for n in getattr(body, "node", ()) for i in n.input if i in vg.producer}
    return any(time_flip_source(vg, name) is not None for name in names)


def _pair(vg: ValueGraph, front, back, bp: dict, bcell: dict) -> Rewrite:
    """The two loops of a masked Bidirectional -> one bidirectional fused node in the exact masked plan,
    checked first: both bodies run in numpy on seeded sequences and masks must give what the plan
    computes (the backward one fed both reversed, its outputs in its processing order)."""
    try:
        fp, fcell = _recognized(vg, front)
    except NotRecognized as e:
        raise NotRecognized(f"its forward loop {quote(front.name)} was not recognized: {e}") from None
    keys = ("kind", "units", "activation", "gate", "reset_after", "zero_output_for_mask")
    if any(fcell.get(k) != bcell.get(k) for k in keys):
        raise NotRecognized(f"expected the same cell as its forward loop {quote(front.name)}, found "
                            f"{[bcell.get(k) for k in keys]} and {[fcell.get(k) for k in keys]}")
    _check_pair(fp, fcell, bp, bcell)
    adds, inits = _fused_pair(vg, (front, fp, fcell), (back, bp, bcell))
    return Rewrite(f"masked_bidirectional_loop_{fcell['kind']}", [front, back], adds, inits)


def _check_pair(fp: dict, fcell: dict, bp: dict, bcell: dict) -> None:
    """Each body against :func:`plan_in_numpy` of its direction, on the seeded masks, their reversals
    (a row that starts masked in either order, with masked steps between unmasked runs) and a row all
    masked."""
    for p, cell, reverse in ((fp, fcell, False), (bp, bcell, True)):
        _check_direction(p, cell, reverse, "a masked Bidirectional")


def _check_direction(p: dict, cell: dict, reverse: bool, what: str = "a masked go_backwards layer") -> None:
    """One loop's body against :func:`plan_in_numpy` of its direction (``reverse``: the body fed the
    sequences and masks reversed, its outputs in its processing order), on the seeded masks, their
    reversals (a row that starts masked in either order, with masked steps between unmasked runs) and a
    row all masked."""
    steps, width, units = p["x_dims"][0], p["x_dims"][2], cell["units"]
    rng = np.random.default_rng(1)
    seeded = _check_masks(rng, steps)
    masks = np.concatenate([seeded, seeded[::-1], np.zeros((steps, 1, 1), bool)], axis=1)
    xs = rng.uniform(-2, 2, (steps, masks.shape[1], width)).astype(np.float32)
    zero = [np.zeros((masks.shape[1], units), np.float32)] * 2
    one = [np.zeros((1, units), np.float32)] * 2
    order = slice(None, None, -1) if reverse else slice(None)
    runs = _run_body(p, xs[order], zero, masks[order])
    got = np.stack([r[0] for r in runs])[order]
    want, finals = plan_in_numpy(masks, lambda t, b: _cell_steps(cell, cell, xs[t, b:b + 1], one, None),
                                 units, reverse, cell["zero_output_for_mask"])
    states = [np.stack([f[k] if f is not None else np.zeros(units, np.float32) for f in finals])
              for k in range(len(runs[-1]) - 1)]
    err = max([float(np.max(np.abs(got - want)))]
              + [float(np.max(np.abs(a - b))) for a, b in zip(runs[-1][1:], states)])
    if err > _ATOL:
        raise NotRecognized(f"the {'backward' if reverse else 'forward'} loop does not compute the "
                            f"{'reversed ' if reverse else ''}direction of {what} "
                            f"{cell['kind']} (differs by {err:.2g})")


# -- reading the loop's structure ---------------------------------------------------------------------
def _parts(vg: ValueGraph, node) -> dict:
    body = vg.attr(node, "body")
    carried = len(node.input) - 2
    if len(body.input) != carried + 2 or len(body.output) != carried + 2:
        raise NotRecognized(f"expected one scan output (the sequence), found {len(body.output) - 1 - carried}")
    local = {t.name: vg.tensors.array(t, f"Loop body initializer {quote(t.name)}") for t in body.initializer}
    for n in body.node:
        if n.op_type == "Constant" and any(a.name == "value" for a in n.attribute):
            local[n.output[0]] = vg.tensors.array(vg.attr(n, "value"), f"Loop body Constant {quote(n.output[0])}")
    bad = sorted({n.op_type for n in body.node if n.op_type not in _OPS})
    if bad:
        raise NotRecognized(f"its body uses {', '.join(quote(b) for b in bad)}, which no SimpleRNN, GRU or LSTM "
                            f"step needs")
    states, consts = [], {}
    for k in range(carried):
        outer, inner = node.input[k + 2], body.input[k + 2].name
        value = vg.const(outer)
        if value is not None:
            consts[inner] = value
        elif _resolved(body, body.output[k + 1].name) == inner and zeros(vg, outer):
            # loop-invariant run-time zeros (tf2onnx's zeros_like of zero_output_for_mask, carried through):
            # zeros of any shape broadcast as the body's check runs it
            consts[inner] = np.float32(0)
        else:
            states.append(k)
    produced, inner_inputs = _produced(body), {i.name for i in body.input}
    gathers = [n for n in body.node if n.op_type == "Gather" and int(vg.attr(n, "axis", 0)) == 0
               and n.input[0] not in local and n.input[0] not in inner_inputs and n.input[0] not in produced]
    reads_x = [g for g in gathers if any(n.op_type == "MatMul" and g.output[0] in n.input for n in body.node)]
    if len(reads_x) != 1 or len(gathers) > 2:
        raise NotRecognized(f"expected the body to read one step of one outer sequence (and of a mask), found "
                            f"{len(gathers)} reads")
    x, mask = reads_x[0], next((g for g in gathers if g is not reads_x[0]), None)
    xd = vg.dims(x.input[0])
    if xd is None or len(xd) != 3 or not isinstance(xd[0], int) or not isinstance(xd[2], int):
        raise NotRecognized(f"expected a time-major sequence of static length and width, found dims {shown(xd)}")
    for k in list(states):  # the loop's bound carried through: the steps of the sequence it reads
        inner = body.input[k + 2].name
        dtype = _steps_of(vg, node.input[k + 2], x.input[0])
        if dtype is not None and _resolved(body, body.output[k + 1].name) == inner:
            consts[inner] = np.asarray(xd[0], dtype)
            states.remove(k)
    scan = body.output[carried + 1].name
    roles = _state_roles(body, states, scan, mask is not None)
    return {"body": body, "local": local, "consts": consts, "x": x.input[0], "x_dims": xd,
            "step": x.output[0], "mask": mask.input[0] if mask is not None else None,
            "mask_step": mask.output[0] if mask is not None else None, "scan": scan, "carried": carried, **roles}


def _steps_of(vg: ValueGraph, name: str, x: str):
    """The integer dtype of ``name`` when it is ``Squeeze(Slice(Cast?(Shape(x)), [0], [1]), [0])``: the number
    of steps of the time-major ``x`` (tf2onnx's ``strided_slice`` of a TensorFlow while loop's bound); else None."""
    squeeze = vg.producer.get(name)
    if squeeze is None or squeeze.op_type != "Squeeze" or len(squeeze.input) != 2 \
            or [int(a) for a in np.asarray(vg.const(squeeze.input[1]) if vg.const(squeeze.input[1]) is not None
                                           else [-1]).reshape(-1)] != [0]:
        return None
    sl = vg.producer.get(squeeze.input[0])
    if sl is None or sl.op_type != "Slice" or len(sl.input) < 3:
        return None
    bounds = [vg.const(i) for i in sl.input[1:]]
    if any(b is None or np.asarray(b).size != 1 for b in bounds) \
            or [int(np.asarray(b).reshape(-1)[0]) for b in bounds[:2]] != [0, 1] \
            or len(bounds) > 2 and int(np.asarray(bounds[2]).reshape(-1)[0]) != 0 \
            or len(bounds) > 3 and int(np.asarray(bounds[3]).reshape(-1)[0]) != 1:
        return None
    source, dtype = vg.producer.get(sl.input[0]), np.int64
    if source is not None and source.op_type == "Cast" and vg.attr(source, "to", 0) in (6, 7):
        dtype = np.int32 if vg.attr(source, "to", 0) == 6 else np.int64
        source = vg.producer.get(source.input[0])
    if source is None or source.op_type != "Shape" or len(source.attribute) or source.input[0] != x:
        return None
    return dtype


def _resolved(body, name: str) -> str:
    """``name`` followed back through ``Identity`` nodes of the body."""
    producer = {o: n for n in body.node for o in n.output}
    for _ in range(8):
        n = producer.get(name)
        if n is None or n.op_type != "Identity":
            return name
        name = n.input[0]
    return name


def _state_roles(body, states: list[int], scan: str, masked: bool) -> dict:
    """Which carried value is ``h``, which ``c`` (LSTM), which the previous output (a masked loop)."""
    want = 1 + masked
    if len(states) not in (want, want + 1):
        raise NotRecognized(f"expected {want} or {want + 1} carried states (h[, c]{', the previous output' if masked else ''}), "
                            f"found {len(states)}")
    h_ins = {n.input[0] for n in body.node if n.op_type == "MatMul"}
    out = [k for k in states if _resolved(body, body.output[k + 1].name) == _resolved(body, scan)] if masked else []
    h = [k for k in states if body.input[k + 2].name in h_ins and k not in out]
    if len(h) != 1 or masked and len(out) != 1:
        raise NotRecognized("expected one carried state multiplied by the recurrent kernel"
                            + (" and one carried output emitted as the sequence" if masked else ""))
    c = [k for k in states if k not in h + out]
    return {"state": h[0], "h_in": body.input[h[0] + 2].name, "h_out": body.output[h[0] + 1].name,
            "c": c[0] if c else None, "out": out[0] if out else None}


def _produced(body) -> set[str]:
    return {o for n in body.node for o in n.output}


def _source(body, name: str, values: dict) -> str | None:
    """The constant a MatMul operand comes from (through Slice / Identity / Cast)."""
    producer = {o: n for n in body.node for o in n.output}
    for _ in range(8):
        if name in values:
            return name
        n = producer.get(name)
        if n is None or n.op_type not in ("Slice", "Identity", "Cast"):
            return None
        name = n.input[0]
    return None


def _candidate(vg: ValueGraph, p: dict) -> dict:
    body, values = p["body"], {**p["local"], **p["consts"]}
    for n in body.node:  # outer constants the body reads directly
        for i in n.input:
            if i and i not in values and i not in _produced(body) and vg.const(i) is not None:
                values[i] = vg.const(i)
    p["values"] = values
    kernel = recurrent = None
    for n in body.node:
        if n.op_type == "MatMul":
            src = _source(body, n.input[1], values)
            if n.input[0] == p["step"]:
                kernel = src
            elif n.input[0] == p["h_in"] and recurrent is None:
                recurrent = src
    if kernel is None or recurrent is None:
        raise NotRecognized("expected MatMuls of the step by a constant kernel and of the state by a constant "
                            "recurrent kernel")
    k, r = values[kernel], values[recurrent]
    units = r.shape[0] if r.ndim == 2 else 0
    if k.ndim != 2 or k.shape[0] != p["x_dims"][2] or not units or r.shape[1] != k.shape[1] \
            or k.shape[1] % units or k.shape[1] // units not in (1, 3, 4):
        raise NotRecognized(f"expected a kernel (input, gates*units) and recurrent kernel (units, gates*units) of "
                            f"1 (SimpleRNN), 3 (GRU) or 4 (LSTM) gates, found {list(k.shape)} and {list(r.shape)}")
    gates = k.shape[1] // units
    if (gates == 4) != (p["c"] is not None):
        raise NotRecognized(f"expected a cell state carried exactly when the cell has 4 gates (LSTM), found "
                            f"{gates} gates and {'a' if p['c'] is not None else 'no'} second state")
    biases = [v for name, v in values.items() if name not in (kernel, recurrent) and v.dtype.kind == "f"
              and v.shape in ((gates * units,), (2, gates * units))]
    halves = len(biases) == 2 and all(b.shape == (gates * units,) for b in biases)
    if len(biases) > 1 and not halves:
        raise NotRecognized(f"expected one bias (or its input and recurrent halves), found {len(biases)} float "
                            f"constants of its shape")
    if halves:  # tf-keras GRU(reset_after): input and recurrent biases apart; which is which is checked
        biases = [np.stack(biases), np.stack(biases[::-1])]
    acts = [n.op_type for n in body.node if n.op_type in _ACT]
    clips = sum(n.op_type == "Min" for n in body.node)  # a clip's upper bound: one per hard_sigmoid gate
    return {"kind": _KINDS[gates], "kernel": k, "recurrent": r, "units": units,
            "biases": biases or [np.zeros(gates * units, np.float32)], "acts": acts, "clips": clips}


# -- checking it: the body run in numpy against the candidate cell -------------------------------------
def _check(vg: ValueGraph, node, p: dict, cell: dict) -> None:
    steps, width = p["x_dims"][0], p["x_dims"][2]
    if steps > _MAX_STEPS or steps < 1:
        raise NotRecognized(f"expected 1 to {_MAX_STEPS} static steps, found {steps}")
    rng = np.random.default_rng(0)
    xs = rng.uniform(-2, 2, (steps, 3, width)).astype(np.float32)
    start = [rng.uniform(-1, 1, (3, cell["units"])).astype(np.float32) for _ in range(2)]
    masks = _check_masks(rng, steps) if p["mask"] else None
    options = _options(cell)
    if not options:
        raise NotRecognized(f"expected the activations of a Keras cell, found {cell['acts'] or 'none'}")
    trip = vg.const(node.input[0]) if node.input[0] else None
    if trip is not None and int(np.asarray(trip).reshape(-1)[0]) < steps:
        raise NotRecognized(f"expected a trip count of at least the {steps} steps, found {int(np.asarray(trip).reshape(-1)[0])}")
    if p["out"] is not None and not zeros(vg, node.input[p["out"] + 2]):
        raise NotRecognized("expected the previous output to start as zeros")
    runs = _run_body(p, xs, start, masks)
    errors = []
    for bias in cell["biases"]:
        for option in options:
            want = _cell_steps({**cell, "bias": bias}, option, xs, start, masks)
            err = max(float(np.max(np.abs(a - b))) for run, ref in zip(runs, want) for a, b in zip(run, ref))
            if err <= _ATOL:
                cell.update(option, bias=bias)
                return
            errors.append(err)
    raise NotRecognized(f"the body does not compute a Keras {cell['kind']} step{' (masked)' if p['mask'] else ''} "
                        f"with these weights (closest differs by {min(errors):.2g})")


def _check_masks(rng, steps: int) -> np.ndarray:
    """``(steps, 3, 1)`` masks: a row with every step, one starting masked with masked steps between runs
    of unmasked ones (t % 3 == 0 masked), one random."""
    t = np.arange(steps)
    return np.stack([np.ones(steps, bool), t % 3 != 0, rng.uniform(size=steps) < 0.5], axis=1)[:, :, None]


def _options(cell: dict) -> list[dict]:
    acts, kind = cell["acts"], cell["kind"]
    if kind == "simple_rnn":
        found = [{"activation": a} for a in dict.fromkeys(acts)] if len(set(acts)) == 1 else []
    else:
        sigmoids = {"gru": 2, "lstm": 3}[kind]
        rest = 1 if kind == "gru" else 2
        if acts.count("Sigmoid") >= sigmoids and len(acts) == sigmoids + rest:
            gate = "Sigmoid"
        elif "Sigmoid" not in acts and cell.get("clips") == sigmoids and len(acts) == rest:
            gate = "HardSigmoid"  # each gate clipped by Max/Min: the numpy check decides whether it is Keras 2's
        else:
            return []
        other = [a for a in acts if a != "Sigmoid"]  # (a HardSigmoid cell has no Sigmoid at all)
        if len(set(other)) > 1:
            return []
        found = [{"activation": other[0] if other else "Sigmoid", "gate": gate}]
    if kind == "gru":
        found = [{**o, "reset_after": ra} for o in found for ra in (True, False)]
    return [{**o, "zero_output_for_mask": z} for o in found for z in (False, True)]


def _run_body(p: dict, xs: np.ndarray, start: list, masks) -> list[list[np.ndarray]]:
    """Per step, what the loop emits and carries (output, h[, c]); a NotRecognized unless it stops after
    exactly len(xs) steps."""
    body, carried = p["body"], p["carried"]
    if len(xs) * len(body.node) > _MAX_WORK:
        raise NotRecognized(f"expected a body small enough to check ({len(body.node)} nodes x {len(xs)} steps)")
    with np.errstate(all="ignore"):
        return _steps(p, body, carried, xs, start, masks)


def _steps(p: dict, body, carried: int, xs: np.ndarray, start: list, masks) -> list[list[np.ndarray]]:
    env_carried = {body.input[k + 2].name: p["consts"].get(body.input[k + 2].name) for k in range(carried)}
    env_carried[p["h_in"]] = start[0]
    if p["c"] is not None:
        env_carried[body.input[p["c"] + 2].name] = start[1]
    if p["out"] is not None:
        env_carried[body.input[p["out"] + 2].name] = np.zeros_like(start[0])
    reads = {p["step"]: xs, p["mask_step"]: masks}
    outs = []
    for t in range(len(xs)):
        env = {**p["values"], **env_carried, body.input[0].name: np.int64(t), body.input[1].name: np.bool_(True)}
        for n in body.node:
            if n.op_type == "Gather" and n.output[0] in reads:
                index = env[n.input[1]]
                if int(np.asarray(index).reshape(-1)[0]) != t:
                    raise NotRecognized(f"expected step {t} read at iteration {t}")
                env[n.output[0]] = reads[n.output[0]][t]
                continue
            args = [env.get(i) for i in n.input]
            _check_size(n, args)
            for name, value in zip(n.output, _OPS[n.op_type](n, args, p)):
                env[name] = value
        kept = [env[body.output[k + 1].name] for k in (p["state"], p["c"]) if k is not None]
        if p["out"] is None and not np.array_equal(env[p["scan"]], kept[0]):
            raise NotRecognized("expected the scan output to be the new state")
        if p["out"] is not None and not np.array_equal(env[p["scan"]], env[body.output[p["out"] + 1].name]):
            raise NotRecognized("expected the scan output to be the carried output")
        outs.append([env[p["scan"]], *kept])
        go_on = bool(np.asarray(env[body.output[0].name]).reshape(-1)[0])
        if go_on != (t < len(xs) - 1):
            raise NotRecognized(f"expected the loop to stop after {len(xs)} steps, found its condition "
                                f"{go_on} after step {t + 1}")
        env_carried = {body.input[k + 2].name: env[body.output[k + 1].name] for k in range(carried)}
    return outs


def _cell_steps(cell: dict, option: dict, xs: np.ndarray, start: list, masks) -> list[list[np.ndarray]]:
    """Keras' SimpleRNN / GRU / LSTM step (keras/src/layers/rnn/{simple_rnn,gru,lstm}.py) on float32 arrays,
    masked as keras/src/backend/tensorflow/rnn.py masks: per step (output, h[, c])."""
    k, r, b, u = cell["kernel"], cell["recurrent"], cell["bias"], cell["units"]
    act = _ACT[option["activation"]]
    sig = _GATE[option.get("gate", "Sigmoid")]
    b_in, b_rec = (b[0], b[1]) if b.ndim == 2 else (b, np.zeros_like(b))
    h, c, prev = start[0], start[1], np.zeros_like(start[0])
    outs = []
    for t, x in enumerate(xs):
        new_c = c
        if cell["kind"] == "simple_rnn":
            new_h = act(x @ k + b_in + h @ r + b_rec)
        elif cell["kind"] == "lstm":
            i, f, g, o = np.split(x @ k + b_in + h @ r + b_rec, 4, axis=-1)
            new_c = sig(f) * c + sig(i) * act(g)
            new_h = sig(o) * act(new_c)
        else:
            xz, xr, xh = np.split(x @ k + b_in, 3, axis=-1)
            if option["reset_after"]:
                rz, rr, rh = np.split(h @ r + b_rec, 3, axis=-1)
                z, rg = sig(xz + rz), sig(xr + rr)
                hh = act(xh + rg * rh)
            else:
                z, rg = sig(xz + h @ r[:, :u]), sig(xr + h @ r[:, u:2 * u])
                hh = act(xh + (rg * h) @ r[:, 2 * u:])
            new_h = z * h + (1 - z) * hh
        m = masks[t] if masks is not None else np.ones((len(x), 1), bool)
        out = np.where(m, new_h, 0 if option["zero_output_for_mask"] else prev)
        h, c, prev = np.where(m, new_h, h), np.where(m, new_c, c), out
        outs.append([a.astype(np.float32) for a in [out, h] + ([c] if cell["kind"] == "lstm" else [])])
    return outs


def _check_size(n, args: list) -> None:
    """Refuse an op whose result would exceed :data:`_MAX_ELEMENTS` (broadcasting, MatMul)."""
    arrays = [np.asarray(a) for a in args if a is not None]
    if n.op_type in _BIN and len(arrays) == 2:
        size = int(np.prod(np.broadcast_shapes(arrays[0].shape, arrays[1].shape), dtype=np.int64))
    elif n.op_type == "MatMul" and len(arrays) == 2 and arrays[0].ndim >= 1 and arrays[1].ndim >= 1:
        size = int(np.prod(arrays[0].shape[:-1], dtype=np.int64)) * int(arrays[1].shape[-1])
    else:
        return
    if size > _MAX_ELEMENTS:
        raise NotRecognized(f"expected the body's {n.op_type} to make at most {_MAX_ELEMENTS} numbers, found {size}")


# -- the fused node --------------------------------------------------------------------------------
#: Keras' LSTM gate blocks (i, f, c, o) in ONNX's order (i, o, f, c)
_LSTM_TO_ONNX = [0, 3, 1, 2]


def _fused(vg: ValueGraph, node, p: dict, cell: dict) -> tuple[list, list]:
    """(new nodes, new initializers): the ONNX RNN/GRU/LSTM computing the loop's states (inside the
    exact masked plan for a masked loop)."""
    plan = PlanNodes(vg.onnx, lambda hint: fresh(vg, hint), f"{node.name or 'loop'}/fused", vg.opset)
    weights = [plan.const(_onnx_gates(a, cell["kind"], cell["units"])[None], np.float32) for a in _cell_arrays(cell)]
    make_node = _node_maker(plan, cell, weights, _initial_states(vg, node, p, plan), "forward")
    if p["mask"] is not None:
        (out,), states = masked_node(plan, _batch_first_mask(vg, p["mask"], plan), p["x"], make_node,
                                     cell["zero_output_for_mask"])
        seq = plan.op("Transpose", [out], perm=[1, 0, 2])
    else:
        y, *states = make_node(p["x"], "")
        seq = plan.op("Squeeze", [y, plan.const([1], np.int64)])
    _loop_outputs(vg, plan, node, p, seq, lambda k, out: plan.op("Squeeze", [states[k], plan.const([0], np.int64)],
                                                                 out=out))
    return plan.nodes, plan.inits


def _fused_pair(vg: ValueGraph, front: tuple, back: tuple) -> tuple[list, list]:
    """(new nodes, new initializers): one bidirectional node in the exact masked plan (slot 0 the forward
    loop, slot 1 the backward one, processing the steps from the end); each loop's outputs from its
    direction, the backward one's in its processing order (reversed in time)."""
    (fw, fp, cell), (bw, bp, bcell) = front, back
    plan = PlanNodes(vg.onnx, lambda hint: fresh(vg, hint), f"{fw.name or 'loop'}/bidirectional", vg.opset)
    arrays = zip(_cell_arrays(cell), _cell_arrays(bcell))
    weights = [plan.const(np.stack([_onnx_gates(a, cell["kind"], cell["units"]) for a in pair]), np.float32)
               for pair in arrays]
    for node, p in ((fw, fp), (bw, bp)):
        _initial_states(vg, node, p, plan)  # zeros (else refused)
    make_node = _node_maker(plan, cell, weights, [], "bidirectional")
    outs, states = masked_node(plan, _batch_first_mask(vg, fp["mask"], plan), fp["x"], make_node,
                               cell["zero_output_for_mask"], reverse=(False, True))
    i64 = np.int64
    flipped = plan.op("Slice", [outs[1], *(plan.const([v], i64) for v in (-1, FLIP_END, 1, -1))])
    for slot, (node, p, out) in enumerate(((fw, fp, outs[0]), (bw, bp, flipped))):
        seq = plan.op("Transpose", [out], perm=[1, 0, 2])
        _loop_outputs(vg, plan, node, p, seq,
                      lambda k, name, slot=slot: plan.op("Gather", [states[k], plan.const(slot, i64)], out=name, axis=0))
    return plan.nodes, plan.inits


def _fused_backward(vg: ValueGraph, node, p: dict, cell: dict, sources: tuple) -> tuple[list, list]:
    """(new nodes, new initializers): a masked ``go_backwards`` layer's loop (reading the sequence and mask
    ``sources`` reversed in time) as one ``reverse`` node in the exact masked plan on them; its scan output
    in its processing order (reversed in time), as Keras returns it."""
    x, mask = sources
    plan = PlanNodes(vg.onnx, lambda hint: fresh(vg, hint), f"{node.name or 'loop'}/fused", vg.opset)
    weights = [plan.const(_onnx_gates(a, cell["kind"], cell["units"])[None], np.float32) for a in _cell_arrays(cell)]
    make_node = _node_maker(plan, cell, weights, _initial_states(vg, node, p, plan), "reverse")
    (out,), states = masked_node(plan, _batch_first_mask(vg, mask, plan), x, make_node,
                                 cell["zero_output_for_mask"], reverse=(True,))
    i64 = np.int64
    flipped = plan.op("Slice", [out, *(plan.const([v], i64) for v in (-1, FLIP_END, 1, -1))])
    seq = plan.op("Transpose", [flipped], perm=[1, 0, 2])
    _loop_outputs(vg, plan, node, p, seq, lambda k, out: plan.op("Squeeze", [states[k], plan.const([0], i64)],
                                                                 out=out))
    return plan.nodes, plan.inits


def _node_maker(plan: PlanNodes, cell: dict, weights: list[str], initial: list[str], direction: str):
    """``make_node(X, lengths)``: adds the fused node of ``cell`` and returns ``[Y, Y_h(, Y_c)]``."""
    kind, act, gate = cell["kind"], cell["activation"], cell.get("gate", "Sigmoid")
    acts = {"gru": [gate, act], "simple_rnn": [act], "lstm": [gate, act, act]}[kind]
    dirs = 2 if direction == "bidirectional" else 1
    attrs: dict = {"hidden_size": cell["units"], "activations": acts * dirs}
    if gate == "HardSigmoid":  # alpha/beta consumed only by the activations that take them (Tanh, Relu: none)
        attrs.update(activation_alpha=[0.2] * dirs, activation_beta=[0.5] * dirs)
    if direction != "forward":
        attrs["direction"] = direction
    if kind == "gru":
        attrs["linear_before_reset"] = int(cell["reset_after"])
    op = {"gru": "GRU", "simple_rnn": "RNN", "lstm": "LSTM"}[kind]

    def make_node(x: str, lengths: str) -> list[str]:
        return plan.op(op, [x, *weights, lengths, *initial], n_out=2 + (kind == "lstm"), **attrs)
    return make_node


def _loop_outputs(vg: ValueGraph, plan: PlanNodes, node, p: dict, seq: str, state) -> None:
    """The loop's used outputs: its scan output ``seq`` (time-major) and its final states,
    ``state(k, name)`` adding the final state ``k`` (0 = h, 1 = c) named ``name``."""
    outs = {p["carried"]: None, p["state"]: 0}
    if p["c"] is not None:
        outs[p["c"]] = 1
    for j, o in enumerate(node.output):
        if o and (vg.consumers.get(o) or o in vg.outputs) and j not in outs:
            raise NotRecognized(f"expected only the outputs and states of the loop used, found {quote(o)} used too")
    for j, k in outs.items():
        name = node.output[j] if j < len(node.output) else ""
        if name and j == p["carried"]:
            plan.op("Identity", [seq], out=name)
        elif name and (vg.consumers.get(name) or name in vg.outputs):
            state(k, name)


def _cell_arrays(cell: dict) -> list[np.ndarray]:
    """W, R, B of the cell in Keras' layout (columns: gates x units)."""
    b = cell["bias"]
    b_in, b_rec = (b[0], b[1]) if b.ndim == 2 else (b, np.zeros_like(b))
    return [cell["kernel"].T, cell["recurrent"].T, np.concatenate([b_in, b_rec])]


def _onnx_gates(a: np.ndarray, kind: str, units: int) -> np.ndarray:
    """Rows of gate blocks (per bias half for B) reordered from Keras' gate order to ONNX's."""
    if kind != "lstm":
        return np.ascontiguousarray(a, np.float32)
    halves = np.split(a, a.shape[0] // (4 * units), axis=0)
    return np.concatenate([np.concatenate([np.split(h, 4, axis=0)[g] for g in _LSTM_TO_ONNX]) for h in halves])


def _initial_states(vg: ValueGraph, node, p: dict, plan: PlanNodes) -> list[str]:
    """``initial_h`` (and ``initial_c``) for the fused node: absent when zeros."""
    given = [node.input[k + 2] for k in (p["state"], p["c"]) if k is not None]
    if all(zeros(vg, g) for g in given):
        return []
    if p["mask"] is not None:
        raise NotRecognized("expected zero initial states in a masked loop")
    return [plan.op("Unsqueeze", [g, plan.const([0], np.int64)]) for g in given]


def _batch_first_mask(vg: ValueGraph, mask_tm: str, plan: PlanNodes) -> str:
    """The ``(batch, time)`` boolean mask whose time-major ``[time, batch, 1]`` form the loop reads."""
    tr = vg.producer.get(mask_tm)
    if tr is None or tr.op_type != "Transpose" or [int(q) for q in vg.attr(tr, "perm", [])] != [1, 0, 2]:
        raise NotRecognized("expected the mask read as Transpose(mask[..., None], [1, 0, 2])")
    src = vg.producer.get(tr.input[0])
    if src is not None and src.op_type == "Unsqueeze" and vg.axes(src) in ([2], [-1]):
        return src.input[0]
    if src is None or src.op_type != "Greater" or (vg.dims(tr.input[0]) or ())[-1:] != (1,):
        found = f"a {quote(src.op_type)[1:-1]}" if src is not None else "an input"
        raise NotRecognized(f"expected the layer's mask, one value per step (Unsqueeze of a mask, or Keras Masking's "
                            f"Greater), found {found}")
    return plan.op("Squeeze", [tr.input[0], plan.const([-1], np.int64)])


# -- numpy semantics of the body ops ---------------------------------------------------------------
def _ints(v) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _split(n, a, p):
    x = a[0]
    axis = int(_attr(n, "axis", 0))
    sizes = _ints(a[1]) if len(a) > 1 and a[1] is not None else _attr(n, "split", None)
    if sizes is None:
        return np.split(x, len(n.output), axis=axis)
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _slice(n, a, p):
    x = a[0]
    starts, ends = _ints(a[1]), _ints(a[2])
    axes = _ints(a[3]) if len(a) > 3 and a[3] is not None else list(range(len(starts)))
    steps = _ints(a[4]) if len(a) > 4 and a[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[ax] = slice(s, e, st)
    return [x[tuple(index)]]


def _axes(n, a):
    v = _attr(n, "axes", None)
    return [int(i) for i in v] if v is not None else _ints(a[1])


def _attr(n, key, default):
    for at in n.attribute:
        if at.name == key:
            import onnx

            return onnx.helper.get_attribute_value(at)
    return default


_OPS = {
    **{op: (lambda fn: lambda n, a, p: [fn(a[0], a[1])])(fn) for op, fn in _BIN.items()},
    **{op: (lambda fn: lambda n, a, p: [fn(a[0]).astype(a[0].dtype)])(fn) for op, fn in _ACT.items()},
    "MatMul": lambda n, a, p: [np.matmul(a[0], a[1])],
    "Identity": lambda n, a, p: [a[0]],
    "Not": lambda n, a, p: [np.logical_not(a[0])],
    "Where": lambda n, a, p: [np.where(a[0], a[1], a[2])],
    "Cast": lambda n, a, p: [np.asarray(a[0]).astype(_CAST[int(_attr(n, "to", 1))])],
    "Split": _split,
    "Slice": _slice,
    "Squeeze": lambda n, a, p: [np.squeeze(a[0], axis=tuple(_axes(n, a)))],
    "Unsqueeze": lambda n, a, p: [np.expand_dims(a[0], tuple(_axes(n, a)))],
    "Gather": lambda n, a, p: [np.take(a[0], a[1], axis=int(_attr(n, "axis", 0)))],
    "Constant": lambda n, a, p: [p["local"][n.output[0]]],
}
