"""Every corpus file's generated PyTorch module against onnxruntime on gateport's ONNX of the same file.

    .venv/bin/python bench/corpus_speed.py [--budget 0.5] [--only NAME ...] [--json bench/corpus_speed.json]

Issue 16's corpus target: each file's PyTorch forward within 1.2x of its ONNX under onnxruntime where
every recurrent layer runs on an nn.* module (masked included), within 3x where one needs the step
loop. Inputs are the stored fixture inputs (fixtures/corpus/NAME.npz) tiled to the batch; the outputs
of both are compared (max abs difference) before timing; calls interleave (bench/torch_speed.py's
timed_in_turn), 1 thread, batch 1 and 32. Prints a Markdown table and writes ``--json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_speed import CORPUS, ROOT, generated, session, timed_in_turn  # noqa: E402

from converters import readers  # noqa: E402

MANIFEST = ROOT / "fixtures" / "corpus" / "manifest.json"
#: corpus files that are no whole model (weights only, no config): nothing to time
SKIPPED = {"k215_cudnnlstm_weights_textgenrnn": "weights only, no architecture"}
BOUND = {"nn.*": 1.2, "loop": 3.0, "none": 1.2}


def path_of(source: str) -> str:
    """How the generated module computes its recurrent layers: 'loop' if any needs the step loop."""
    if "Loop(" in source:
        return "loop"
    return "nn.*" if any(k in source for k in ("nn.LSTM(", "nn.GRU(", "nn.RNN(")) else "none"


def tiled(stored, names: list[str], batch: int, dtypes: list[str]) -> list[np.ndarray]:
    """The stored inputs, rows repeated to ``batch``."""
    out = []
    for name, dtype in zip(names, dtypes):
        x = stored[f"in:{name}"]
        x = np.concatenate([x] * (batch // len(x) + 1))[:batch]
        out.append(x.astype(np.int64 if "int" in dtype else np.float32))
    return out


def measure(name: str, entry: dict, args) -> list[dict]:
    model = readers.read(ROOT / entry["file"])
    stored = np.load(ROOT / entry["expected"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        module = generated(model, Path(tmp) / name)
        kind = path_of((Path(tmp) / name / "model.py").read_text())
        torch.set_num_threads(1)
        sess = session(model, 1)
        for batch in args.batches:
            xs = tiled(stored, entry["inputs"], batch, [s.dtype for s in model.inputs])
            feed = {i.name: x for i, x in zip(sess.get_inputs(), xs)}
            txs = [torch.from_numpy(x) for x in xs]
            with torch.inference_mode():
                want = sess.run(None, feed)
                got = module(*txs)
                got = [got] if isinstance(got, torch.Tensor) else list(got)
                err = max(float(np.max(np.abs(g.numpy() - w))) for g, w in zip(got, want))
                ms = timed_in_turn({"torch": lambda: module(*txs), "ort": lambda: sess.run(None, feed)},
                                   args.min_runs, args.budget)
            steps = max((x.shape[1] for x in xs if x.ndim >= 2), default=0)
            row = {"model": name, "path": kind, "batch": batch, "steps": steps, "max_abs_diff_vs_ort": err,
                   "torch_ms": ms["torch"], "ort_ms": ms["ort"], "ratio": ms["torch"] / ms["ort"],
                   "bound": BOUND[kind]}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    batches = sorted({r["batch"] for r in rows})
    lines = ["| corpus file | steps | path (bound) | " + " | ".join(f"b{b}, 1 thr ms" for b in batches)
             + " | within bound | max abs diff |",
             "| --- | ---: | --- | " + " | ".join("---:" for _ in batches) + " | --- | ---: |"]
    by = {(r["model"], r["batch"]): r for r in rows}
    for name in dict.fromkeys(r["model"] for r in rows):
        some = [by[(name, b)] for b in batches if (name, b) in by]
        cells = [f"{r['torch_ms']:.3g} / {r['ort_ms']:.3g} ({r['ratio']:.2f}×)" for r in some]
        ok = sum(r["ratio"] <= r["bound"] for r in some)
        lines.append(f"| `{name}` | {some[0]['steps']} | {some[0]['path']} ({some[0]['bound']}×) | "
                     + " | ".join(cells) + f" | {ok}/{len(some)} | "
                     + f"{max(r['max_abs_diff_vs_ort'] for r in some):.1e} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of calls per setting (at least)")
    parser.add_argument("--min-runs", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "corpus_speed.json")
    args = parser.parse_args(argv)
    if not CORPUS.exists():
        print(f"no corpus at {CORPUS}", file=sys.stderr)
        return 1
    rows, load = [], os.getloadavg()
    for name, entry in json.loads(MANIFEST.read_text()).items():
        if name in SKIPPED or (args.only and name not in args.only):
            continue
        rows += measure(name, entry, args)
    import onnxruntime

    meta = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average_start": load,
            "load_average_end": os.getloadavg(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "cpus": os.cpu_count()}
    args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    print(json.dumps(meta))
    print(table(rows))
    for name, why in SKIPPED.items():
        print(f"\n`{name}`: not timed ({why}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
