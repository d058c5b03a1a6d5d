"""Latency of gateport's generated PyTorch module against onnxruntime and a hand-written nn.* module.

    .venv/bin/python bench/torch_speed.py [--budget 1.0] [--only NAME ...] [--threads N ...] [--batches N ...]
                                          [--json bench/torch_speed.json]

Runs in gateport's own environment (torch, onnxruntime; no Keras). Each model is an IR graph with
fixed random weights (or a corpus file under ../shared/corpus when present), written by gateport as
``model.py`` (``--to torch``) and as ONNX (``--to onnx``, run by onnxruntime's CPU provider). A
hand-written ``nn.LSTM`` module is timed too where one computes the layer exactly (unmasked, or a
trailing mask through ``pack_padded_sequence``). For batch 1 and 32 and 1 thread and all threads,
the callables are called in turn (rotating order, so all see the same machine load) until each ran
``--min-runs`` times and ``--budget`` seconds passed; each cell is the median. The generated
module's output is checked against onnxruntime's (max abs difference) before timing.
Prints a Markdown table (the README's "PyTorch module speed" subsection) and writes ``--json``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from converters.ir import Gate, Model, Node, TensorSpec  # noqa: E402
from converters.writers import onnx_graph, torch_code, torch_state  # noqa: E402

T, F, U = 1000, 64, 128
SEED = 20261130
CORPUS = ROOT.parent / "shared" / "corpus"


# -- models ---------------------------------------------------------------------------------------
def recurrent(op: str, mask: bool, **options) -> Node:
    """One recurrent IR node on ``xm`` (or ``x``) with fixed random weights."""
    rng = np.random.default_rng(SEED)
    opts = {"units": U, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
            "return_sequences": False, "return_state": False, "go_backwards": False, "bidirectional": False,
            "merge_mode": "concat", "zero_output_for_mask": False, **options}
    node = Node(op, op, ["xm" if mask else "x"], ["y"], opts, mask="m" if mask else None)
    for direction in node.directions:
        for gate in node.gate_names:
            scale = 1 / np.sqrt(U)
            node.set_gate(direction, gate, Gate(*(rng.uniform(-scale, scale, shape).astype(np.float32)
                                                  for shape in ((U, F), (U, U), (U,), (U,)))))
    return node


def ir(name: str, node: Node) -> Model:
    """Input x (T, F) -> [Masking ->] node."""
    nodes = [node]
    if node.mask:
        nodes[:0] = [Node("mask", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True}),
                     Node("masking", "masking", ["x"], ["xm"], mask="m")]
    return Model(name, [TensorSpec("x", (None, F))], ["y"], nodes)


def keep_mask(kind: str | None, batch: int, time: int) -> np.ndarray:
    """(batch, time) keep-mask: None all kept; trailing / front padding of 0-40 %, or 30 % holes."""
    rng = np.random.default_rng(SEED + batch)
    if kind is None:
        return np.ones((batch, time), bool)
    if kind == "middle":
        return rng.uniform(size=(batch, time)) > 0.3
    lengths = (time * rng.uniform(0.6, 1.0, batch)).astype(int)
    steps = np.arange(time)[None]
    return steps < lengths[:, None] if kind == "trailing" else steps >= (time - lengths)[:, None]


#: name -> (IR node factory, mask kind, whether nn.LSTM by hand is exact).
CASES = {
    "lstm": (lambda: recurrent("lstm", False), None, True),
    "lstm_mask_trailing": (lambda: recurrent("lstm", True), "trailing", True),
    "lstm_mask_front": (lambda: recurrent("lstm", True), "front", False),
    "lstm_mask_middle": (lambda: recurrent("lstm", True), "middle", False),
    "bigru_seq_mask_middle": (lambda: recurrent("gru", True, reset_after=True, bidirectional=True,
                                                return_sequences=True), "middle", False),
    "gru_reset_before": (lambda: recurrent("gru", False, reset_after=False), None, False),
    "gru_reset_before_mask_trailing": (lambda: recurrent("gru", True, reset_after=False), "trailing", False),
    "lstm_hard_sigmoid": (lambda: recurrent("lstm", False, recurrent_activation="hard_sigmoid_keras2"), None, False),
}
#: corpus files (issue 16's examples): name -> file
CORPUS_CASES = {"k212_bigru_medaka": "k212_bigru_medaka.hdf5",
                "k231_emb_mask_bigru_td_codon": "k231_emb_mask_bigru_td_codon.h5"}


def corpus_input(name: str, batch: int) -> np.ndarray:
    """The stored fixture input tiled to ``batch`` rows."""
    stored = np.load(ROOT / "fixtures" / "corpus" / f"{name}.npz")
    x = stored[sorted(k for k in stored.files if k.startswith("in:"))[0]]
    return np.concatenate([x] * (batch // len(x) + 1))[:batch]


# -- the three runtimes ---------------------------------------------------------------------------
def generated(model: Model, folder: Path):
    """gateport's model.py, imported, weights loaded."""
    torch_code.write(model, folder)
    spec = importlib.util.spec_from_file_location(f"bench_{folder.name}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_model()


class HandLSTM(torch.nn.Module):
    """What one writes by hand: nn.LSTM, the last h; with a trailing mask, a packed sequence."""

    def __init__(self, node: Node, packed: bool):
        super().__init__()
        self.packed = packed
        self.lstm = torch.nn.LSTM(F, U, batch_first=True)
        self.lstm.load_state_dict({k: torch.from_numpy(v) for k, v in torch_state.nn_params(node).items()})

    def forward(self, x):
        if self.packed:
            lengths = (x != 0).any(2).sum(1)
            x = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return self.lstm(x)[1][0][0]


def session(model: Model, threads: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    proto = onnx_graph.deployable(model)
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def timed_in_turn(fns: dict, min_runs: int, budget: float) -> dict[str, float]:
    """Median ms of each callable, called in turn (the order rotating each round)."""
    return {n: statistics.median(v) for n, v in samples_in_turn(fns, min_runs, budget).items()}


def samples_in_turn(fns: dict, min_runs: int, budget: float) -> dict[str, list[float]]:
    """Every call's ms of each callable, called in turn (the order rotating each round) until each ran
    ``min_runs`` times and ``budget`` seconds passed."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names:
        fns[n]()
    end = time.perf_counter() + budget
    rounds = 0
    while rounds < min_runs or time.perf_counter() < end:
        for n in names[rounds % len(names):] + names[:rounds % len(names)]:
            t0 = time.perf_counter()
            fns[n]()
            times[n].append((time.perf_counter() - t0) * 1e3)
        rounds += 1
    return times


def measure(name: str, model: Model, inputs, hand, args) -> list[dict]:
    """Every (batch, threads) setting of one model."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        module = generated(model, Path(tmp) / name)
        for threads in args.threads:
            torch.set_num_threads(threads)
            sess = session(model, threads)
            for batch in args.batches:
                x = inputs(batch)
                feed = {sess.get_inputs()[0].name: x}
                tx = torch.from_numpy(x)
                with torch.inference_mode():
                    want = sess.run(None, feed)[0]
                    got = module(tx)
                    err = float(np.max(np.abs(got.numpy() - want)))
                    fns = {"torch": lambda: module(tx), "ort": lambda: sess.run(None, feed)}
                    if hand is not None:
                        fns["hand"] = lambda: hand(tx)
                    ms = timed_in_turn(fns, args.min_runs, args.budget)
                row = {"model": name, "batch": batch, "threads": threads, "max_abs_diff_vs_ort": err,
                       **{f"{k}_ms": v for k, v in ms.items()}}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def all_rows(args) -> list[dict]:
    rows = []
    for name, (make, kind, hand_exact) in CASES.items():
        if args.only and name not in args.only:
            continue
        node = make()

        def inputs(batch, kind=kind):
            x = np.random.default_rng(SEED).normal(0, 1, (batch, T, F)).astype(np.float32)
            return x * keep_mask(kind, batch, T)[..., None]

        hand = HandLSTM(node, packed=kind is not None).eval() if hand_exact else None
        rows += measure(name, ir(name, node), inputs, hand, args)
    for name, file in CORPUS_CASES.items():
        if (args.only and name not in args.only) or not (CORPUS / file).exists():
            continue
        from converters import readers

        model = readers.read(CORPUS / file)
        cast = np.int64 if model.inputs[0].dtype == "int64" else np.float32
        rows += measure(name, model, lambda batch, name=name: corpus_input(name, batch).astype(cast), None, args)
    return rows


# -- the table ------------------------------------------------------------------------------------
def cell(row: dict, other: str) -> str:
    if f"{other}_ms" not in row:
        return "–"
    return f"{row['torch_ms']:.3g} / {row[f'{other}_ms']:.3g} ({row['torch_ms'] / row[f'{other}_ms']:.2f}×)"


def table(rows: list[dict]) -> str:
    settings = sorted({(r["batch"], r["threads"]) for r in rows}, key=lambda s: (s[1], s[0]))
    head = [f"b{b}, {t} thr" for b, t in settings]
    lines = ["| model | path | vs | " + " | ".join(head) + " | max abs diff |",
             "| --- | --- | --- | " + " | ".join("---:" for _ in head) + " | ---: |"]
    by = {(r["model"], r["batch"], r["threads"]): r for r in rows}
    for name in dict.fromkeys(r["model"] for r in rows):
        path = PATHS.get(name, "")
        for other, label in (("ort", "onnxruntime"), ("hand", "nn.LSTM by hand")):
            cells = [cell(by[(name, b, t)], other) for b, t in settings if (name, b, t) in by]
            if all(c == "–" for c in cells):
                continue
            err = max(by[(name, b, t)]["max_abs_diff_vs_ort"] for b, t in settings if (name, b, t) in by)
            lines.append(f"| `{name}` | {path} | {label} | " + " | ".join(cells) + f" | {err:.1e} |")
    return "\n".join(lines)


#: how the generated module computes each model
PATHS = {
    "lstm": "nn.LSTM", "lstm_mask_trailing": "nn.LSTM, masked", "lstm_mask_front": "nn.LSTM, masked",
    "lstm_mask_middle": "nn.LSTM, masked", "bigru_seq_mask_middle": "2× nn.GRU, masked",
    "gru_reset_before": "loop", "gru_reset_before_mask_trailing": "loop, masked", "lstm_hard_sigmoid": "loop (hard_sigmoid)",
    "k212_bigru_medaka": "2× bidirectional loop (BiGRU reset_after=False, hard_sigmoid)",
    "k231_emb_mask_bigru_td_codon": "bidirectional loop, masked",
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=1.0, help="seconds of calls per setting (default 1)")
    p.add_argument("--min-runs", type=int, default=5)
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--threads", nargs="*", type=int, default=[1, os.cpu_count() or 1],
                   help="torch / onnxruntime thread counts to measure (default: 1 and all cores)")
    p.add_argument("--batches", nargs="*", type=int, default=[1, 32])
    p.add_argument("--json", default=str(ROOT / "bench" / "torch_speed.json"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    start, load = time.time(), os.getloadavg()[0]
    rows = all_rows(args)
    meta = {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(start)), "cpus": os.cpu_count(),
            "machine": platform.platform(), "torch": torch.__version__, "onnxruntime": ort.__version__,
            "load_1min_start_end": [load, os.getloadavg()[0]], "seconds": round(time.time() - start)}
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"Measured {meta['date_utc']} UTC, {meta['cpus']} cores, torch {meta['torch']}, onnxruntime "
          f"{meta['onnxruntime']}, load {load:.1f}→{meta['load_1min_start_end'][1]:.1f}, {meta['seconds']} s.\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
