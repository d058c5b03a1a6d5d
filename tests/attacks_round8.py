"""Hostile inputs, red team round 8: what rounds 1-7 (attacks.py, attacks_more.py, attacks_round3.py ...
attacks_round7.py) do not build, or built thinly.

Same :class:`attacks.Case` contract and runner as round 7 (:func:`attacks_round7.run_case7`: one line naming the
file, no traceback, no raw escape on stderr, nothing read outside the input's folder, bounded time and memory,
inputs unchanged, no output left behind on a refusal, exit 2 where a refusal is due, never 'a gateport bug', a
verify never reports a mismatch; ``diff`` exits 0 or 2 only: a diff of a file with its own conversion is 'same
numbers'). ``python tests/attacks_round8.py`` runs them through :func:`attack_run.run_battery`.

Classes: ``gates8`` (every option of a ``.gates`` manifest, of an LSTM, a bidirectional GRU, an embedding and a
dense layer, given as a string, a bool, a float, null, a list, an object, -1 and 10**9; tensors of the weights
file declaring shapes of 2**31 x 2**31; converted to ``gates`` again, ``torch``, ``onnx``, ``inspect --json``,
``explain``), ``state8`` (state_dicts whose layers or directions disagree: a layer of another hidden size, mode
or bias, a reverse direction in one layer only, a reverse of another size, 3-D or 0-wide matrices, ``weight_hr``
of the wrong shape), ``finite8`` (NaN, Inf, subnormal and 3e38 weights in .h5, .keras, .safetensors, .gates and
ONNX, under convert, verify, diff against its own conversion, explain, inspect --json), ``legacy8`` (Keras 1
configs whose sizing fields are text, bools, floats, null, huge; Keras 1 and CuDNN weights of the wrong shape:
a CuDNN bias of one set, a kernel transposed, a recurrent kernel of another width, Keras 1 gate matrices
swapped or cut), ``weights8`` (weights-only .h5 with a hostile ``--config``: other units, one layer more or
less, a list, a Lambda, a Sequential nested in a Functional, 10**4 layers, sizes as text), ``nested8`` (Keras
configs nested: Sequential in Functional in Bidirectional, Bidirectional of Bidirectional, TimeDistributed of
TimeDistributed, Sequentials 200 deep), ``out8`` (``--force -o`` at the input, its folder, its hard link or
symlink, the ``--config``, for every target; ``-o`` in a folder of a full disk or read-only),
``cmds8`` (``diff`` / ``inspect --json`` / ``explain`` / ``verify --artifact`` on this round's files). The
Python API with hostile objects is tested in-process (tests/test_attacks_round8.py).

``python tests/attacks_round8.py`` (2026-12-02, 2 shared cores, load 7-10, groups in parallel): 511 attacks
(finite8 120, legacy8 102, gates8 64, out8 62, state8 49, nested8 40, cmds8 40, weights8 34), 511 passed, peak
memory 251 MiB. Before this round's fixes: a state_dict whose layer 1 had another hidden size than layer 0, or a
reverse direction in one layer only, was read and converted (no nn.LSTM has it: torch_state now checks that the
layers of one module share mode, hidden_size, bias and bidirectional); ``diff`` of a file with a NaN weight and its
own conversion said 'different', exit 1 (diff now compares by verify's rule, closeness.mismatches); NaN/Inf
weights were warned about for Keras files only (every reader now, one line a layer). The Python API (in-process,
tests/test_attacks_round8.py): 79 of 518 calls with 37 hostile objects raised TypeError, ValueError or the object's
own RuntimeError (verify of an object, targets / dynamic of a number or None, a PathLike whose ``__fspath__`` raises
or gives bytes, a NUL in the source path, a module whose ``state_dict()`` raises); now a GateportError each
(errors.check_path, check_names, inmemory._calling). Cases first written as refusals and read as Keras reads them:
a CuDNN bias of one set or a GRU bias of (2, 3u) (tf-keras's _convert_rnn_weights tells layouts by the bias),
Keras 1 ``input_dim`` / ``input_length`` beside a ``batch_input_shape``, a batch written into its inputs' folder.
With ``--json`` a refusal is one JSON object on stdout (documented): run_case8 holds it to the one-line checks.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np

from attacks import K3_GRU, MODELS, WEIGHTS_ONLY, WEIGHTS_ONLY_JSON, Case, read_keras, write_keras
from attacks_round3 import _case, _convert, build_groups
from attacks_round4 import TINY, _written
from attacks_round7 import _READ_ONLY, run_case7

ROOT = Path(__file__).resolve().parent.parent
_KERNEL = "model_weights/lstm/lstm/lstm_cell/kernel:0"
#: The values a field that sizes something is given instead of its number.
NOT_NUMBERS = {"text '4'": "4", "true": True, "4.5": 4.5, "null": None, "a list": [4], "an object": {"n": 4},
               "-1": -1, "10**9": 10 ** 9}


def run_case8(case: Case, marker: Path, timeout: float) -> tuple[list[str], dict]:
    """Round 7's checks (``diff`` exit 1, 'different', is already a failure: the runner allows 0 and 2). With
    ``--json`` a refusal is one JSON object on stdout (README, CLI reference): the command's stdout is its stderr
    here, so that object is held to every check of the one error line (one line, naming the file, no raw
    escape)."""
    import attack_run

    wrapper = attack_run.WRAPPER
    if "--json" in case.argv:
        attack_run.WRAPPER = wrapper.replace("from converters.cli import main",
                                             "from converters.cli import main\nsys.stdout = sys.stderr", 1)
    try:
        return run_case7(case, marker, timeout)
    finally:
        attack_run.WRAPPER = wrapper


def build(folder: Path, groups: tuple[str, ...] | None = None) -> list[Case]:
    """Every case (or those of the builders named in ``groups``)."""
    return build_groups(folder, (gates_cases, state_cases, finite_cases, legacy_cases, weights_cases, nested_cases,
                                 out_cases, cmds_cases), groups)


def _set(obj, path: tuple, value) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def _leaves(obj, path: tuple = ()):
    """The paths of every number, bool and short text in ``obj`` (a JSON value)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    elif isinstance(obj, (int, float)) or isinstance(obj, str) and len(obj) < 40:
        yield path


# -- .gates IR files ---------------------------------------------------------------------------------------------
def _gates_of(folder: Path, src: Path, name: str) -> tuple[dict, dict, bytes]:
    """``src`` converted to .gates: (safetensors header, manifest, data)."""
    out = folder / f"{name}.gates"
    if not out.exists():
        from converters.cli import main

        assert main(["-q", "convert", str(src), "--to", "gates", "-o", str(out)]) == 0
    raw = out.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    return header, json.loads(header["__metadata__"]["gateport.manifest"]), raw[8 + n:]


def _gates_file(dst: Path, header: dict, manifest: dict, data: bytes) -> Path:
    h = json.loads(json.dumps(header))
    h["__metadata__"]["gateport.manifest"] = json.dumps(manifest)
    text = json.dumps(h).encode()
    text += b" " * (-len(text) % 8)
    dst.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return dst


def gates_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "gates8"
    sources = {"tiny": TINY, "embedding_bigru": MODELS / "k3_embedding_bigru.keras"}
    commands = ("gates", "torch", "onnx", "inspect --json", "explain")
    i = 0
    for label, src in sources.items():
        header, manifest, data = _gates_of(folder, src, label)
        for n, node in enumerate(manifest["nodes"]):
            for key, value in node["options"].items():
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                for what, bad in NOT_NUMBERS.items():
                    m = json.loads(json.dumps(manifest))
                    m["nodes"][n]["options"][key] = bad
                    g = _gates_file(folder / f"g{i}.gates", header, m, data)
                    cmd = commands[i % len(commands)]
                    i += 1
                    name = f"{label} {node['op']} option {key} {what} ({cmd})"
                    # -1 / 10**9 / 4.5 of a size: refused by the schema; an option that is no size may be read
                    expect = "any"
                    if cmd in ("gates", "torch", "onnx"):
                        out = folder / (f"{g.stem}_out" if cmd == "torch" else f"{g.stem}_out.{cmd}")
                        cases.append(_case(K, name, _convert(g, cmd, out), g, output=out, expect=expect,
                                           importable=cmd == "torch"))
                    elif cmd == "explain":
                        cases.append(_case(K, name, ["explain", g], g, expect=expect))
                    else:
                        cases.append(_case(K, name, ["inspect", "--json", g], g, expect=expect))
        # a tensor declaring 2**31 x 2**31 (its bytes, the manifest's shape unchanged)
        h = json.loads(json.dumps(header))
        first = next(k for k in h if k != "__metadata__")
        h[first]["shape"] = [2 ** 31, 2 ** 31]
        g = _gates_file(folder / f"huge_{label}.gates", h, manifest, data)
        for cmd in ("inspect", "verify"):
            argv = ["inspect", g] if cmd == "inspect" else ["verify", g, "--to", "onnx"]
            cases.append(_case(K, f"{label}: a tensor declaring 2**31 x 2**31 ({cmd})", argv, g))
        # every input's shape declaring 10**9 steps and rows: verify budgets what it would allocate
        m = json.loads(json.dumps(manifest))
        for spec in m["inputs"]:
            spec["shape"] = [10 ** 9, 10 ** 9] + list(spec["shape"][2:])
        g = _gates_file(folder / f"steps_{label}.gates", header, m, data)
        cases.append(_case(K, f"{label}: inputs of 10**9 rows and steps (verify)", ["verify", g, "--to", "onnx"], g,
                           expect="any"))
        # the file converted from itself 40 times over (converted_from nested past the manifest's depth)
        m = json.loads(json.dumps(manifest))
        for _ in range(40):
            m["source"] = {"format": "gates", "path": "x.gates", "converted_from": m["source"]}
        g = _gates_file(folder / f"deep_{label}.gates", header, m, data)
        out = folder / f"deep_{label}_out.gates"
        cases.append(_case(K, f"{label}: converted_from nested 40 deep (gates)", _convert(g, "gates", out), g,
                           output=out, expect="refuse"))
    return cases


# -- state_dicts whose layers or directions disagree -------------------------------------------------------------
def _sd(mod, prefix: str = "rnn") -> dict:
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in mod.state_dict().items()}


def state_cases(folder: Path) -> list[Case]:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    cases: list[Case] = []
    K = "state8"
    two = _sd(torch.nn.LSTM(3, 4, num_layers=2))
    bi = _sd(torch.nn.LSTM(3, 4, bidirectional=True))
    bi2 = _sd(torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True))
    gru2 = _sd(torch.nn.GRU(3, 4, num_layers=2))

    def edited(base: dict, **changes) -> dict:
        out = dict(base)
        for k, v in changes.items():
            if v is None:
                out.pop(f"rnn.{k}", None)
            else:
                out[f"rnn.{k}"] = v
        return out

    z = torch.zeros
    layer1_hidden5 = edited(two, weight_ih_l1=z(20, 4), weight_hh_l1=z(20, 5), bias_ih_l1=z(20), bias_hh_l1=z(20))
    files = {
        "layer 1 of hidden 5 under layer 0 of 4": layer1_hidden5,
        "layer 1 a GRU under an LSTM layer 0": edited(two, weight_ih_l1=z(12, 4), weight_hh_l1=z(12, 4),
                                                      bias_ih_l1=z(12), bias_hh_l1=z(12)),
        "layer 1 without biases, layer 0 with": edited(two, bias_ih_l1=None, bias_hh_l1=None),
        "layer 1 of a bidirectional module without its reverse": {k: v for k, v in bi2.items()
                                                                  if not k.endswith("l1_reverse")},
        "layer 1 reverse only (layer 0 one direction)": {**two, **{k.replace("l1", "l1_reverse"): v for k, v in
                                                                  two.items() if k.endswith("_l1")}},
        "a reverse direction of hidden 5": edited(bi, weight_ih_l0_reverse=z(20, 3), weight_hh_l0_reverse=z(20, 5),
                                                  bias_ih_l0_reverse=z(20), bias_hh_l0_reverse=z(20)),
        "a reverse direction of input 6": edited(bi, weight_ih_l0_reverse=z(16, 6)),
        "a reverse direction of 3 gates": edited(bi, weight_ih_l0_reverse=z(12, 3), weight_hh_l0_reverse=z(12, 4),
                                                 bias_ih_l0_reverse=z(12), bias_hh_l0_reverse=z(12)),
        "layer 1 reading 4 where a bidirectional layer 0 gives 8": edited(bi2, weight_ih_l1=z(16, 4),
                                                                          weight_ih_l1_reverse=z(16, 4)),
        "a GRU layer 1 of hidden 5": edited(gru2, weight_ih_l1=z(15, 4), weight_hh_l1=z(15, 5), bias_ih_l1=z(15),
                                            bias_hh_l1=z(15)),
        "weight_hh 3-D": edited(two, weight_hh_l0=z(16, 4, 1)),
        "weight_ih 0 wide": edited(two, weight_ih_l0=z(16, 0)),
        "bias 2-D": edited(two, bias_ih_l0=z(16, 1)),
        "weight_hr of the wrong shape": {**_sd(torch.nn.LSTM(3, 4, proj_size=2)), "rnn.weight_hr_l0": z(3, 4)},
        "layers l0 and l2 (no l1)": {**{k: v for k, v in two.items() if k.endswith("_l0")},
                                     **{k.replace("_l1", "_l2"): v for k, v in two.items() if k.endswith("_l1")}},
        "a second module of hidden 5 fed the first's 4": {**two, **_sd(torch.nn.LSTM(7, 5), "rnn2")},
    }
    for i, (label, sd) in enumerate(files.items()):
        sd = {k: v.clone() for k, v in sd.items()}  # no two keys sharing storage (safetensors refuses it)
        p = folder / f"s{i}.safetensors"
        save_file(sd, str(p))
        expect = "any" if label.startswith("a second module") else "refuse"
        out = folder / f"s{i}.onnx"
        cases.append(_case(K, f"{label} (onnx)", _convert(p, "onnx", out), p, output=out, expect=expect))
        cases.append(_case(K, f"{label} (verify)", ["verify", p, "--to", "torch,onnx"], p, expect=expect))
        pt = folder / f"s{i}.pt"
        torch.save(sd, pt)
        out = folder / f"s{i}_torch"
        cases.append(_case(K, f"{label} (.pt, torch)", _convert(pt, "torch", out), pt, output=out, expect=expect,
                           importable=True))
    # a description that agrees with layer 0 while layer 1 disagrees
    p = folder / "s_desc.safetensors"
    save_file(layer1_hidden5, str(p))
    desc = folder / "desc.json"
    desc.write_text(json.dumps({"layers": [{"prefix": "rnn.", "kind": "lstm", "hidden_size": 4, "num_layers": 2}]}))
    cases.append(_case(K, "layer 1 of hidden 5, a description of hidden 4 (onnx)",
                       _convert(p, "onnx", folder / "sd.onnx", "--config", desc), [p, desc],
                       output=folder / "sd.onnx"))
    return cases


# -- NaN, Inf, subnormal and huge weights ------------------------------------------------------------------------
def finite_cases(folder: Path) -> list[Case]:
    import torch
    from safetensors.torch import save_file

    cases: list[Case] = []
    K = "finite8"
    values = {"NaN": np.nan, "+Inf": np.inf, "-Inf": -np.inf, "subnormal 1e-45": 1e-45, "3e38": 3e38}
    for i, (label, v) in enumerate(values.items()):
        finite = np.isfinite(v)
        h5 = folder / f"f{i}.h5"
        shutil.copy(TINY, h5)
        with h5py.File(h5, "r+") as f:
            d = f[_KERNEL]
            a = d[()]
            a[0, :] = v
            d[...] = a
        sd = _sd(torch.nn.LSTM(3, 4))
        sd["rnn.bias_hh_l0"][:4] = float(v)
        st = folder / f"f{i}.safetensors"
        save_file(sd, str(st))
        gates = folder / f"f{i}.gates"
        from converters.cli import main

        assert main(["-q", "convert", str(h5), "--to", "gates", "-o", str(gates)]) == 0
        onnx_file = folder / f"f{i}_src.onnx"
        assert main(["-q", "convert", str(h5), "--to", "onnx", "-o", str(onnx_file)]) == 0
        # NaN/Inf weights: torch and numpy put NaN where the reference does (pass, shown); onnxruntime's LSTM turns
        # NaN pre-activations into finite values, a real difference verify reports (test_verify_verdicts), so
        # onnx is verified on finite weights only
        verify_to = "torch,numpy,onnx" if finite else "torch,numpy"
        for kind, src in (("h5", h5), ("safetensors", st), ("gates", gates), ("onnx", onnx_file)):
            name = f"{label} weights ({kind})"
            for to in ("torch", "onnx"):
                out = folder / (f"{src.stem}_{kind}_t" if to == "torch" else f"{src.stem}_{kind}_o.onnx")
                cases.append(_case(K, f"{name} convert {to}", _convert(src, to, out), src, output=out, expect="any",
                                   importable=to == "torch"))
            cases.append(_case(K, f"{name} verify", ["verify", src, "--to", verify_to], src, expect="any"))
            cases.append(_case(K, f"{name} explain", ["explain", src], src, expect="any"))
            cases.append(_case(K, f"{name} inspect --json", ["inspect", "--json", src], src, expect="any"))
        # a file diffed with its own conversion: same numbers (exit 0), NaN at the same places included
        cases.append(_case(K, f"{label} weights: diff .h5 with its .gates", ["diff", h5, gates], [h5, gates],
                           expect="any"))
        cases.append(_case(K, f"{label} weights: diff .h5 with its ONNX", ["diff", h5, onnx_file], [h5, onnx_file],
                           expect="any"))
        cases.append(_case(K, f"{label} weights: diff .safetensors with itself", ["diff", st, st], [st],
                           expect="any"))
        st_onnx = folder / f"f{i}_st.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(["-q", "convert", str(st), "--to", "onnx", "-o", str(st_onnx)]) == 0
        cases.append(_case(K, f"{label} weights: diff .safetensors with its ONNX", ["diff", st, st_onnx],
                           [st, st_onnx], expect="any"))
    return cases


# -- Keras 1 and CuDNN -------------------------------------------------------------------------------------------
def _h5_config(dst: Path, src: Path, edit) -> Path:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        text = f.attrs["model_config"]
        c = json.loads(text.decode() if isinstance(text, bytes) else text)
        edit(c)
        f.attrs["model_config"] = json.dumps(c)
    return dst


def _h5_dataset(dst: Path, src: Path, name: str, make) -> Path:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        ds = next(k for k in _datasets(f) if k.endswith(name))
        old = f[ds][()]
        del f[ds]
        f[ds] = make(old)
    return dst


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names


def legacy_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "legacy8"
    i = 0
    sized = {"keras1_lstm.h5": ("output_dim", "input_dim", "input_length"),
             "keras1_embedding_lstm.h5": ("output_dim", "input_dim", "input_length"),
             "keras1_bidirectional_lstm.h5": ("output_dim",),
             "cudnn_lstm_gru.h5": ("units",)}
    for fname, keys in sized.items():
        src = MODELS / fname
        with h5py.File(src) as f:
            text = f.attrs["model_config"]
        cfg = json.loads(text.decode() if isinstance(text, bytes) else text)
        paths = [p for p in _leaves(cfg) if p[-1] in keys]
        for p in paths[:2]:
            for what, bad in NOT_NUMBERS.items():
                dst = _h5_config(folder / f"l{i}.h5", src, lambda c, p=p, bad=bad: _set(c, p, bad))
                i += 1
                # input_dim / input_length beside a batch_input_shape: Keras 1 takes the shape (any)
                expect = "any" if p[-1] in ("input_dim", "input_length") else "refuse"
                label = f"{fname} {'.'.join(map(str, p[-3:]))} {what}"
                out = folder / f"{dst.stem}.onnx"
                cases.append(_case(K, f"{label} (onnx)", _convert(dst, "onnx", out), dst, output=out, expect=expect))
                if what in ("text '4'", "true"):
                    cases.append(_case(K, f"{label} (verify)", ["verify", dst, "--to", "torch,onnx"], dst,
                                       expect=expect))
    # weights of the wrong shape: CuDNN's one bias set (Keras stores 2), a kernel transposed, another width
    cudnn = MODELS / "cudnn_lstm_gru.h5"
    keras1 = MODELS / "keras1_lstm.h5"
    gpu = MODELS / "keras1_lstm_consume_less_gpu.h5"
    shapes = {
        "CuDNN LSTM bias of one set (32, not 64)": (cudnn, "rnn_1/bias:0", lambda a: a[:32]),
        "CuDNN LSTM bias of three sets": (cudnn, "rnn_1/bias:0", lambda a: np.concatenate([a, a[:32]])),
        "CuDNN LSTM kernel transposed": (cudnn, "rnn_1/kernel:0", lambda a: a.T.copy()),
        "CuDNN LSTM recurrent kernel one unit short": (cudnn, "rnn_1/recurrent_kernel:0", lambda a: a[:7]),
        "CuDNN GRU bias as one (18,) set": (cudnn, "rnn_2/bias:0", lambda a: a[:18]),
        "CuDNN GRU bias 2-D (2, 18)": (cudnn, "rnn_2/bias:0", lambda a: a.reshape(2, 18)),
        "CuDNN GRU kernel 3-D": (cudnn, "rnn_2/kernel:0", lambda a: a[None]),
        "CuDNN GRU kernel of float64": (cudnn, "rnn_2/kernel:0", lambda a: a.astype("f8")),
        "Keras 1 W_i transposed": (keras1, "lstm_1_W_i:0", lambda a: a.T.copy()),
        "Keras 1 U_f of 4 units": (keras1, "lstm_1_U_f:0", lambda a: a[:4, :4]),
        "Keras 1 b_o 2-D": (keras1, "lstm_1_b_o:0", lambda a: a[None]),
        "Keras 1 W_c a scalar": (keras1, "lstm_1_W_c:0", lambda a: np.float32(1)),
        "Keras 1 consume_less=gpu W of 3 gates": (gpu, "lstm_1_W:0", lambda a: a[:, :12]),
        "Keras 1 consume_less=gpu U transposed": (gpu, "lstm_1_U:0", lambda a: a.T.copy()),
        "Keras 1 consume_less=gpu b of 17": (gpu, "lstm_1_b:0", lambda a: np.concatenate([a, a[:1]])),
    }
    for j, (label, (src, name, make)) in enumerate(shapes.items()):
        dst = _h5_dataset(folder / f"w{j}.h5", src, name, make)
        for to in ("torch", "onnx"):
            out = folder / (f"w{j}_t" if to == "torch" else f"w{j}.onnx")
            # a bias of one set is the Keras LSTM/GRU layout: read as tf-keras reads it (_convert_rnn_weights
            # tells CuDNN weights by the bias length; a GRU's (2, 3u) is Keras' reset_after layout), as is a float64
            # kernel
            readable = "float64" in label or "one set" in label or "one (18,) set" in label or "(2, 18)" in label
            cases.append(_case(K, f"{label} ({to})", _convert(dst, to, out), dst, output=out,
                               expect="any" if readable else "refuse", importable=to == "torch"))
    # the consume_less label contradicting the storage: the storage decides
    for label, value in (("'gpu' on separate matrices", "gpu"), ("'cpu' on fused matrices", "cpu")):
        src = keras1 if value == "gpu" else gpu
        dst = _h5_config(folder / f"cl_{value}.h5", src, lambda c, v=value: c["config"][0]["config"].update(
            consume_less=v))
        cases.append(_case(K, f"consume_less {label} (verify)", ["verify", dst, "--to", "torch,onnx"], dst,
                           expect="any"))
    return cases


# -- weights-only files with a hostile --config ------------------------------------------------------------------
def weights_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "weights8"
    w = folder / "w.weights.h5"
    shutil.copy(WEIGHTS_ONLY, w)
    base = json.loads(WEIGHTS_ONLY_JSON.read_text())
    legacy_w = folder / "legacy_weights.h5"
    shutil.copy(MODELS / "weights_only_gru_lstm_weights.h5", legacy_w)
    legacy = json.loads((MODELS / "weights_only_gru_lstm.json").read_text())

    def layers(c):
        return c["config"]["layers"]

    def recurrent(c):
        return next(l for l in layers(c) if l["class_name"] in ("LSTM", "GRU"))

    def more_units(c):
        recurrent(c)["config"]["units"] += 1

    def one_more(c):
        extra = json.loads(json.dumps(recurrent(c)))
        extra["config"]["name"] = extra["name"] = "extra_rnn"
        layers(c).insert(layers(c).index(recurrent(c)) + 1, extra)

    def one_less(c):
        layers(c).remove(recurrent(c))

    def as_list(c):
        return [c]

    def lam(c):
        recurrent(c).update(class_name="Lambda")
        recurrent(c)["config"]["function"] = ["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMEAAAAfABTACkBTqkAKQHaAXhyAQAAAHIBAAAA"]

    def nested(c):
        inner = {"class_name": "Sequential", "config": {"name": "inner", "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 5, 3], "name": "inner_in"}},
            json.loads(json.dumps(recurrent(c)))]}}
        layers(c)[layers(c).index(recurrent(c))] = inner

    def ten_thousand(c):
        dense = {"class_name": "Dense", "config": {"name": "d", "units": 1}}
        layers(c).extend(dict(dense, config=dict(dense["config"], name=f"d{k}")) for k in range(10000))

    def units_text(c):
        recurrent(c)["config"]["units"] = str(recurrent(c)["config"]["units"])

    def units_true(c):
        recurrent(c)["config"]["units"] = True

    def units_huge(c):
        recurrent(c)["config"]["units"] = 2 ** 31

    def class_gru(c):
        r = recurrent(c)
        r["class_name"] = "GRU" if r["class_name"] == "LSTM" else "LSTM"

    def no_layers(c):
        c["config"]["layers"] = []

    def config_null(c):
        c["config"] = None

    edits = {"units one more": more_units, "one recurrent layer more": one_more, "one recurrent layer less": one_less,
             "the config a list": as_list, "a Lambda in place of the LSTM": lam,
             "the LSTM in a Sequential nested in the model": nested, "10**4 Dense layers more": ten_thousand,
             "units as text": units_text, "units true": units_true, "units 2**31": units_huge,
             "the LSTM's class GRU": class_gru, "no layers": no_layers, "config null": config_null}
    for i, (label, edit) in enumerate(edits.items()):
        for kind, weights, cfg in (("k3", w, base), ("legacy", legacy_w, legacy)):
            if kind == "legacy" and label in ("the LSTM in a Sequential nested in the model", "a Lambda in place of "
                                              "the LSTM", "10**4 Dense layers more"):
                continue
            c = json.loads(json.dumps(cfg))
            try:
                result = edit(c)
            except (StopIteration, KeyError, ValueError):
                continue
            p = folder / f"c{i}_{kind}.json"
            p.write_text(json.dumps(result if result is not None else c))
            out = folder / f"c{i}_{kind}.onnx"
            expect = "any" if label == "the LSTM in a Sequential nested in the model" else "refuse"
            cases.append(_case(K, f"{kind}: {label} (onnx)", _convert(weights, "onnx", out, "--config", p),
                               [weights, p], output=out, expect=expect, named=False))
            if i % 3 == 0:
                cases.append(_case(K, f"{kind}: {label} (verify)", ["verify", weights, "--config", p, "--to", "onnx"],
                                   [weights, p], expect=expect, named=False))
    # --config the weights file of another model, a .keras of another model
    for label, cfgp in (("--config another model's .keras", MODELS / "k3_embedding_bigru.keras"),
                        ("--config a Keras 1 .h5", MODELS / "keras1_lstm.h5"),
                        ("--config a .gates file", _gates_of(folder, TINY, "tiny")[0] and folder / "tiny.gates")):
        out = folder / f"other{len(cases)}.onnx"
        cases.append(_case(K, f"{label} (onnx)", _convert(w, "onnx", out, "--config", cfgp), [w, cfgp], output=out,
                           named=False))
    return cases


# -- nested Keras configs ----------------------------------------------------------------------------------------
def nested_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "nested8"
    members = read_keras(K3_GRU)
    cfg = json.loads(members["config.json"])
    lstm = next(l for l in cfg["config"]["layers"] if l["class_name"] == "LSTM")
    gru = next(l for l in cfg["config"]["layers"] if l["class_name"] == "GRU")

    def wrap(layer: dict, how: str) -> dict:
        inner = json.loads(json.dumps(layer))
        if how == "Bidirectional":
            return {"module": "keras.layers", "class_name": "Bidirectional", "registered_name": None,
                    "config": {"name": f"bi_{inner['config']['name']}", "layer": inner, "merge_mode": "concat"},
                    "name": f"bi_{inner['config']['name']}"}
        if how == "TimeDistributed":
            return {"module": "keras.layers", "class_name": "TimeDistributed", "registered_name": None,
                    "config": {"name": f"td_{inner['config']['name']}", "layer": inner},
                    "name": f"td_{inner['config']['name']}"}
        if how == "Sequential":
            return {"module": "keras", "class_name": "Sequential", "registered_name": None,
                    "config": {"name": f"seq_{inner['config']['name']}", "layers": [inner]},
                    "name": f"seq_{inner['config']['name']}"}
        if how == "Functional":
            name = f"fn_{inner['config']['name']}"
            inp = {"class_name": "InputLayer", "config": {"batch_shape": [None, None, 4], "name": f"{name}_in"},
                   "name": f"{name}_in", "inbound_nodes": []}
            return {"module": "keras", "class_name": "Functional", "registered_name": None, "name": name,
                    "config": {"name": name, "layers": [inp, inner], "input_layers": [[f"{name}_in", 0, 0]],
                               "output_layers": [[inner["config"]["name"], 0, 0]]}}
        raise ValueError(how)

    chains = {
        "Bidirectional(Sequential(LSTM))": ("Sequential", "Bidirectional"),
        "Bidirectional(Functional(LSTM))": ("Functional", "Bidirectional"),
        "Bidirectional(Bidirectional(LSTM))": ("Bidirectional", "Bidirectional"),
        "TimeDistributed(TimeDistributed(LSTM))": ("TimeDistributed", "TimeDistributed"),
        "TimeDistributed(Bidirectional(LSTM))": ("Bidirectional", "TimeDistributed"),
        "Bidirectional(TimeDistributed(LSTM))": ("TimeDistributed", "Bidirectional"),
        "Sequential(Functional(Bidirectional(Sequential(LSTM))))": ("Sequential", "Bidirectional", "Functional",
                                                                    "Sequential"),
        "Sequential 200 deep": ("Sequential",) * 200,
        "Bidirectional 50 deep": ("Bidirectional",) * 50,
        "Functional 60 deep": ("Functional",) * 60,
    }
    i = 0
    for label, hows in chains.items():
        for which, target in (("LSTM", lstm), ("GRU", gru)):
            c = json.loads(members["config.json"])
            layer = target
            for how in hows:
                layer = wrap(layer, how)
            for k, entry in enumerate(c["config"]["layers"]):
                if entry["config"]["name"] == target["config"]["name"]:
                    layer["inbound_nodes"] = entry.get("inbound_nodes", [])
                    layer["name"] = layer["config"]["name"] = target["config"]["name"]
                    c["config"]["layers"][k] = layer
            src = write_keras(folder / f"n{i}.keras", {**members, "config.json": json.dumps(c).encode()})
            i += 1
            name = label.replace("LSTM", which)
            out = folder / f"{src.stem}.onnx"
            cases.append(_case(K, f"{name} (onnx)", _convert(src, "onnx", out), src, output=out, expect="refuse"))
            cases.append(_case(K, f"{name} (inspect --json)", ["inspect", "--json", src], src, expect="refuse"))
    return cases


# -- outputs aimed at the inputs ---------------------------------------------------------------------------------
def out_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "out8"
    targets = {"gates": ".gates", "torch": "", "numpy": "", "torch-state-dict": ".safetensors", "onnx": ".onnx",
               "keras": ".keras", "keras-weights": ".weights.h5"}
    for j, (to, ext) in enumerate(targets.items()):
        sub = folder / f"t{j}"
        sub.mkdir(exist_ok=True)
        src = sub / "m.h5"
        shutil.copy(TINY, src)
        hard = sub / f"hard{ext or '_dir'}"
        if not hard.exists():
            os.link(src, hard)
        sym = sub / f"sym{ext or '_dir'}"
        if not os.path.lexists(sym):
            sym.symlink_to("m.h5")
        for label, out in (("the input itself", src), ("the input's folder", sub), ("a hard link to the input", hard),
                           ("a symlink to the input", sym), ("the input's folder through ..", sub / "x" / ".."),
                           ("the folder above the input's", folder)):
            cases.append(_case(K, f"--to {to} --force -o {label}", _convert(src, to, out, "--force"), [src],
                               named=False))
        # an ONNX, gates or keras file converted onto itself under its own name
        if to in ("gates", "onnx", "keras"):
            own = _written(sub, to) if to != "gates" else _gates_of(sub, TINY, "own") and sub / "own.gates"
            cases.append(_case(K, f"--to {to} --force -o the {to} input itself", _convert(own, to, own, "--force"),
                               [own], named=False))
    # keras-weights writes FILE.json beside: aimed at the --config by name, by hard link, by symlink
    w = folder / "w.weights.h5"
    shutil.copy(WEIGHTS_ONLY, w)
    cfg = folder / "w.json"
    shutil.copy(WEIGHTS_ONLY_JSON, cfg)
    hard_cfg = folder / "hc.json"
    if not hard_cfg.exists():
        os.link(cfg, hard_cfg)
    sym_cfg = folder / "sc.json"
    if not os.path.lexists(sym_cfg):
        sym_cfg.symlink_to("w.json")
    for label, out in (("named like the --config", folder / "w.weights.h5"), ("its .json a hard link to the --config",
                                                                              folder / "hc.weights.h5"),
                       ("its .json a symlink to the --config", folder / "sc.weights.h5")):
        cases.append(_case(K, f"--to keras-weights --force -o {label}",
                           _convert(w, "keras-weights", out, "--config", cfg, "--force"), [w, cfg], named=False))
    # a batch into the folder holding the inputs
    b1, b2 = folder / "b1.h5", folder / "b2.h5"
    shutil.copy(TINY, b1)
    shutil.copy(TINY, b2)
    # the folder a batch writes into is no output to destroy: new files beside the inputs, which stay unchanged
    cases.append(_case(K, "a batch --force -o the folder of its inputs",
                       ["convert", b1, b2, "--to", "onnx", "-o", folder, "--force"], [b1, b2], named=False,
                       expect="any"))
    cases.append(_case(K, "a batch --force -o the folder of its inputs, to gates of their own names",
                       ["convert", b1, b2, "--to", "gates", "-o", folder, "--force"], [b1, b2],
                       named=False, expect="any"))
    # a batch of .gates files to gates into their own folder: each output would be its input
    g1, g2 = _gates_of(folder, TINY, "g1") and folder / "g1.gates", folder / "g2.gates"
    shutil.copy(g1, g2)
    cases.append(_case(K, "a batch of .gates --to gates --force -o their own folder",
                       ["convert", g1, g2, "--to", "gates", "-o", folder, "--force"], [g1, g2], named=False))
    # read-only folders, for every target
    ro = folder / "ro"
    ro.mkdir(exist_ok=True)
    for to, ext in targets.items():
        out = ro / f"m{ext or '_' + to}"
        cases.append(_case(K, f"-o a read-only folder (--to {to})", _convert(TINY, to, out), [TINY], output=out,
                           expect=_READ_ONLY, named=False))
    ro.chmod(0o555)
    # a full disk: /dev/full as every target's output
    for to in ("gates", "onnx", "torch-state-dict", "keras"):
        cases.append(_case(K, f"-o /dev/full --force (--to {to})", _convert(TINY, to, "/dev/full", "--force"), [TINY],
                           named=False))
    return cases


# -- diff / inspect --json / explain / verify --artifact on this round's files -----------------------------------
def cmds_cases(folder: Path) -> list[Case]:
    import torch
    from safetensors.torch import save_file

    cases: list[Case] = []
    K = "cmds8"
    good_onnx = _written(folder, "onnx")
    tiny = folder / "tiny.h5"
    shutil.copy(TINY, tiny)
    two = _sd(torch.nn.LSTM(3, 4, num_layers=2))
    hostile: dict[str, Path] = {}
    mixed = {**two, "rnn.weight_hh_l1": torch.zeros(20, 5), "rnn.weight_ih_l1": torch.zeros(20, 4),
             "rnn.bias_ih_l1": torch.zeros(20), "rnn.bias_hh_l1": torch.zeros(20)}
    p = folder / "mixed.safetensors"
    save_file(mixed, str(p))
    hostile["a state_dict of two hidden sizes"] = p
    header, manifest, data = _gates_of(folder, TINY, "tiny")
    m = json.loads(json.dumps(manifest))
    m["nodes"][0]["options"]["units"] = "3"
    hostile["a .gates of units '3'"] = _gates_file(folder / "units_text.gates", header, m, data)
    h = json.loads(json.dumps(header))
    first = next(k for k in h if k != "__metadata__")
    h[first]["shape"] = [2 ** 31, 2 ** 31]
    hostile["a .gates tensor of 2**31 x 2**31"] = _gates_file(folder / "huge.gates", h, manifest, data)
    p = _h5_dataset(folder / "cudnn_bias.h5", MODELS / "cudnn_lstm_gru.h5", "rnn_1/bias:0",
                    lambda a: np.concatenate([a, a[:32]]))
    hostile["a CuDNN bias of three sets"] = p
    p = _h5_config(folder / "k1_text.h5", MODELS / "keras1_lstm.h5",
                   lambda c: c["config"][0]["config"].update(output_dim="5"))
    hostile["a Keras 1 output_dim '5'"] = p
    for label, bad in hostile.items():
        ref = good_onnx
        cases.append(_case(K, f"diff good {label}", ["diff", ref, bad], [ref, bad], named=False))
        cases.append(_case(K, f"diff {label} itself", ["diff", bad, bad], [bad]))
        cases.append(_case(K, f"diff --json {label}", ["diff", "--json", bad, ref], [ref, bad], named=False))
        cases.append(_case(K, f"inspect --json {label}", ["inspect", "--json", bad], [bad]))
        cases.append(_case(K, f"inspect --json --layer {label}", ["inspect", "--json", "--layer", "lstm", bad],
                           [bad]))
        cases.append(_case(K, f"explain {label}", ["explain", bad], [bad]))
        cases.append(_case(K, f"explain --json {label}", ["explain", "--json", bad], [bad]))
        cases.append(_case(K, f"verify --artifact gates={label}" if bad.suffix == ".gates" else
                           f"verify --artifact onnx={label}", ["verify", tiny, "--to", "onnx", "--artifact",
                                                              f"onnx={bad}"], [tiny, bad], named=False))
    return cases


def main() -> int:
    """``python tests/attacks_round8.py [--group NAME] [--match TEXT] [--json FILE]``: build and run every case."""
    import attack_run

    return attack_run.battery_main(build, run_case8, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
