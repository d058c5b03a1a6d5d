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
states and stop after exactly ``T`` steps. Masked loops (``Not``/``Where`` of a mask in the body) and
loops carrying two states (LSTM) are refused, naming what was found.
"""
from __future__ import annotations

import numpy as np

from ..sanitize import quote
from .onnx_rewrite import Rewrite, fresh, zeros
from .onnx_value_graph import ValueGraph, shown

#: ops the body may use (numpy semantics below); analytic or piecewise-linear, so a numeric check on
#: seeded inputs tells two cells apart
_ACT = {"Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Tanh": np.tanh, "Relu": lambda x: np.maximum(x, 0)}
_CAST = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64}
_BIN = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Less": np.less,
        "Greater": np.greater, "And": np.logical_and, "Or": np.logical_or}
#: the check runs the body once per step of a static time axis up to this long
_MAX_STEPS = 4096
_ATOL = 1e-5
#: bounds of the check's work: op runs (steps x body nodes) and numbers one op may make
_MAX_WORK = 2_000_000
_MAX_ELEMENTS = 1 << 22


class NotRecognized(Exception):
    """What in the loop was not recognized (the reason of a refusal)."""


def loop_recurrence(vg: ValueGraph, node):
    """The Rewrite of a recognized recurrence Loop, or a one-line reason."""
    try:
        parts = _parts(vg, node)
        cell = _candidate(vg, parts)
        _check(vg, node, parts, cell)
    except NotRecognized as e:
        return str(e)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, FloatingPointError) as e:
        return f"running its body in numpy failed ({type(e).__name__}: {quote(str(e), 120)})"
    try:
        adds, inits = _fused(vg, node, parts, cell)
    except NotRecognized as e:
        return str(e)
    return Rewrite("loop_" + cell["kind"], [node], adds, inits)


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
    if {"Not", "Where"} & set(bad):
        raise NotRecognized("its body selects between the new and the previous state by a mask (a masked Keras "
                            "layer); masked recurrences are not read from a Loop")
    if bad:
        raise NotRecognized(f"its body uses {', '.join(quote(b) for b in bad)}, which no SimpleRNN or GRU step needs")
    states, consts = [], {}
    for k in range(carried):
        outer, inner = node.input[k + 2], body.input[k + 2].name
        value = vg.const(outer)
        if value is not None:
            consts[inner] = value
        else:
            states.append(k)
    if len(states) != 1:
        raise NotRecognized(f"expected one carried state (SimpleRNN or GRU), found {len(states)} "
                            f"(an LSTM carries two; they are read when the exporter fuses them)")
    k = states[0]
    gathers = [n for n in body.node if n.op_type == "Gather" and int(vg.attr(n, "axis", 0)) == 0
               and n.input[0] not in local
               and n.input[0] not in {i.name for i in body.input} and n.input[0] not in _produced(body)]
    if len(gathers) != 1:
        raise NotRecognized(f"expected the body to read one step of one outer sequence, found {len(gathers)} reads")
    x = gathers[0].input[0]
    xd = vg.dims(x)
    if xd is None or len(xd) != 3 or not isinstance(xd[0], int) or not isinstance(xd[2], int):
        raise NotRecognized(f"expected a time-major sequence of static length and width, found dims {shown(xd)}")
    return {"body": body, "local": local, "consts": consts, "state": k, "x": x, "x_dims": xd,
            "step": gathers[0].output[0], "h_in": body.input[k + 2].name, "h_out": body.output[k + 1].name,
            "scan": body.output[carried + 1].name, "carried": carried}


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
            or k.shape[1] % units or k.shape[1] // units not in (1, 3):
        raise NotRecognized(f"expected a kernel (input, gates*units) and recurrent kernel (units, gates*units) of "
                            f"1 (SimpleRNN) or 3 (GRU) gates, found {list(k.shape)} and {list(r.shape)}")
    gates = k.shape[1] // units
    biases = [v for name, v in values.items() if name not in (kernel, recurrent) and v.dtype.kind == "f"
              and v.shape in ((gates * units,), (2, gates * units))]
    if len(biases) > 1:
        raise NotRecognized(f"expected one bias, found {len(biases)} float constants of its shape")
    acts = [n.op_type for n in body.node if n.op_type in _ACT]
    return {"kind": "gru" if gates == 3 else "simple_rnn", "kernel": k, "recurrent": r, "units": units,
            "bias": biases[0] if biases else np.zeros(gates * units, np.float32), "acts": acts}


# -- checking it: the body run in numpy against the candidate cell -------------------------------------
def _check(vg: ValueGraph, node, p: dict, cell: dict) -> None:
    steps, width = p["x_dims"][0], p["x_dims"][2]
    if steps > _MAX_STEPS or steps < 1:
        raise NotRecognized(f"expected 1 to {_MAX_STEPS} static steps, found {steps}")
    rng = np.random.default_rng(0)
    xs = rng.uniform(-2, 2, (steps, 2, width)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (2, cell["units"])).astype(np.float32)
    options = _options(cell)
    if not options:
        raise NotRecognized(f"expected the activations of a Keras cell, found {cell['acts'] or 'none'}")
    trip = vg.const(node.input[0]) if node.input[0] else None
    if trip is not None and int(np.asarray(trip).reshape(-1)[0]) < steps:
        raise NotRecognized(f"expected a trip count of at least the {steps} steps, found {int(np.asarray(trip).reshape(-1)[0])}")
    runs = _run_body(p, xs, h0)
    errors = []
    for option in options:
        want = _cell_steps(cell, option, xs, h0)
        err = max(float(np.max(np.abs(a - b))) for a, b in zip(runs, want))
        if err <= _ATOL:
            cell.update(option)
            return
        errors.append(err)
    raise NotRecognized(f"the body does not compute a Keras {cell['kind']} step with these weights "
                        f"(closest differs by {min(errors):.2g})")


def _options(cell: dict) -> list[dict]:
    acts = cell["acts"]
    if cell["kind"] == "simple_rnn":
        return [{"activation": a} for a in dict.fromkeys(acts)] if len(set(acts)) == 1 else []
    if acts.count("Sigmoid") != 2 or len(acts) != 3:
        return []
    act = next(a for a in acts if a != "Sigmoid") if set(acts) != {"Sigmoid"} else "Sigmoid"
    return [{"activation": act, "reset_after": ra} for ra in (True, False)]


def _run_body(p: dict, xs: np.ndarray, h0: np.ndarray) -> list[np.ndarray]:
    """The states the loop emits, and a NotRecognized unless it stops after exactly len(xs) steps."""
    body, carried = p["body"], p["carried"]
    if len(xs) * len(body.node) > _MAX_WORK:
        raise NotRecognized(f"expected a body small enough to check ({len(body.node)} nodes x {len(xs)} steps)")
    with np.errstate(all="ignore"):
        return _steps(p, body, carried, xs, h0)


def _steps(p: dict, body, carried: int, xs: np.ndarray, h0: np.ndarray) -> list[np.ndarray]:
    env_carried = {body.input[k + 2].name: p["consts"].get(body.input[k + 2].name) for k in range(carried)}
    env_carried[p["h_in"]] = h0
    outs = []
    for t in range(len(xs)):
        env = {**p["values"], **env_carried, body.input[0].name: np.int64(t), body.input[1].name: np.bool_(True)}
        for n in body.node:
            if n.op_type == "Gather" and n.output[0] == p["step"]:
                index = env[n.input[1]]
                if int(np.asarray(index).reshape(-1)[0]) != t:
                    raise NotRecognized(f"expected step {t} read at iteration {t}")
                env[n.output[0]] = xs[t]
                continue
            args = [env.get(i) for i in n.input]
            _check_size(n, args)
            for name, value in zip(n.output, _OPS[n.op_type](n, args, p)):
                env[name] = value
        if not np.array_equal(env[p["scan"]], env[p["h_out"]]):
            raise NotRecognized("expected the scan output to be the new state")
        outs.append(env[p["h_out"]])
        go_on = bool(np.asarray(env[body.output[0].name]).reshape(-1)[0])
        if go_on != (t < len(xs) - 1):
            raise NotRecognized(f"expected the loop to stop after {len(xs)} steps, found its condition "
                                f"{go_on} after step {t + 1}")
        env_carried = {body.input[k + 2].name: env[body.output[k + 1].name] for k in range(carried)}
    return outs


def _cell_steps(cell: dict, option: dict, xs: np.ndarray, h: np.ndarray) -> list[np.ndarray]:
    """Keras' SimpleRNN / GRU step (keras/src/layers/rnn/{simple_rnn,gru}.py) on float32 arrays."""
    k, r, b, u = cell["kernel"], cell["recurrent"], cell["bias"], cell["units"]
    act = _ACT[option["activation"]]
    sig = _ACT["Sigmoid"]
    b_in, b_rec = (b[0], b[1]) if b.ndim == 2 else (b, np.zeros_like(b))
    outs = []
    for x in xs:
        if cell["kind"] == "simple_rnn":
            h = act(x @ k + b_in + h @ r + b_rec)
        else:
            xz, xr, xh = np.split(x @ k + b_in, 3, axis=-1)
            if option["reset_after"]:
                rz, rr, rh = np.split(h @ r + b_rec, 3, axis=-1)
                z, rg = sig(xz + rz), sig(xr + rr)
                hh = act(xh + rg * rh)
            else:
                z, rg = sig(xz + h @ r[:, :u]), sig(xr + h @ r[:, u:2 * u])
                hh = act(xh + (rg * h) @ r[:, 2 * u:])
            h = z * h + (1 - z) * hh
        outs.append(h.astype(np.float32))
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
def _fused(vg: ValueGraph, node, p: dict, cell: dict) -> tuple[list, list]:
    """(new nodes, new initializers): the ONNX RNN/GRU computing the loop's states."""
    h, u, kind = vg.onnx.helper, cell["units"], cell["kind"]
    k, r, b = cell["kernel"], cell["recurrent"], cell["bias"]
    b_in, b_rec = (b[0], b[1]) if b.ndim == 2 else (b, np.zeros_like(b))
    names = [fresh(vg, f"{node.name or 'loop'}/{part}") for part in ("W", "R", "B", "Y", "Y_h", "h0", "axis0", "axis1")]
    w_name, r_name, b_name, y, y_h, h0, axis0, axis1 = names
    weights = ((k.T[None], w_name), (r.T[None], r_name), (np.concatenate([b_in, b_rec])[None], b_name))
    inits = [vg.onnx.numpy_helper.from_array(np.ascontiguousarray(a, np.float32), n) for a, n in weights]
    inits += [vg.onnx.numpy_helper.from_array(np.array([a], np.int64), n) for a, n in ((0, axis0), (1, axis1))]
    init_h = node.input[p["state"] + 2]
    adds = []
    if zeros(vg, init_h):
        state_input = ""
    else:
        adds.append(h.make_node("Unsqueeze", [init_h, axis0], [h0], name=h0))
        state_input = h0
    attrs = {"hidden_size": u, "activations": ["Sigmoid", cell["activation"]] if kind == "gru" else [cell["activation"]]}
    if kind == "gru":
        attrs["linear_before_reset"] = int(cell["reset_after"])
    op = "GRU" if kind == "gru" else "RNN"
    adds.append(h.make_node(op, [p["x"], w_name, r_name, b_name, "", state_input], [y, y_h],
                            name=f"{node.name}/{op}", **attrs))
    scan_out, state_out = node.output[p["carried"]], node.output[p["state"]]
    used = [o for j, o in enumerate(node.output) if o and (vg.consumers.get(o) or o in vg.outputs)
            and o not in (scan_out, state_out)]
    if used:
        raise_used = f"expected only the states of the loop used, found {quote(used[0])} used too"
        raise NotRecognized(raise_used)
    adds.append(h.make_node("Squeeze", [y, axis1], [scan_out], name=scan_out))
    if state_out and (vg.consumers.get(state_out) or state_out in vg.outputs):
        adds.append(h.make_node("Squeeze", [y_h, axis0], [state_out], name=state_out))
    return adds, inits


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
    "Cast": lambda n, a, p: [np.asarray(a[0]).astype(_CAST[int(_attr(n, "to", 1))])],
    "Split": _split,
    "Slice": _slice,
    "Squeeze": lambda n, a, p: [np.squeeze(a[0], axis=tuple(_axes(n, a)))],
    "Unsqueeze": lambda n, a, p: [np.expand_dims(a[0], tuple(_axes(n, a)))],
    "Gather": lambda n, a, p: [np.take(a[0], a[1], axis=int(_attr(n, "axis", 0)))],
    "Constant": lambda n, a, p: [p["local"][n.output[0]]],
}
