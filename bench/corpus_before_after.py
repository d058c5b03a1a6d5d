"""The generated PyTorch module of every corpus file on an nn.* path: this checkout's against another's (before).

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/corpus_before_after.py --before /tmp/before [--budget 1.0] [--only NAME ...]

The other checkout writes its ``model.py`` in a subprocess (its own ``converters``); both modules are imported
here, their outputs must be the same bits (``torch.equal``) before anything is timed, and then the two and
onnxruntime (on this checkout's ONNX of the file) are called in turn (the order rotating each round, as
bench/torch_speed.py's timed_in_turn: all three see the same machine load), 1 thread, batch 1 and 32, inputs as
bench/corpus_speed.py tiles them. Prints a Markdown table: before ms, after ms (medians), after / before (of the
medians, and of the 10th percentiles: on a loaded machine the low percentile is the steadier), after / onnxruntime.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_speed import MANIFEST, SKIPPED, path_of, tiled  # noqa: E402
from torch_speed import ROOT, generated, samples_in_turn, session  # noqa: E402

from converters import readers  # noqa: E402

_WRITE = "import sys; from converters import readers; from converters.writers import torch_code; " \
         "torch_code.write(readers.read(sys.argv[1]), sys.argv[2])"


def generated_by(checkout: Path, file: Path, folder: Path):
    """``checkout``'s model.py of ``file`` (written by its own converters in a subprocess), imported, weights loaded."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    subprocess.run([sys.executable, "-c", _WRITE, str(file), str(folder)], cwd=checkout, env=env, check=True)
    spec = importlib.util.spec_from_file_location(f"before_{folder.name}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_model()


def low(samples: list[float]) -> float:
    """The 10th percentile."""
    return statistics.quantiles(samples, n=10)[0]


def outputs(module, xs) -> list[torch.Tensor]:
    got = module(*xs)
    return [got] if isinstance(got, torch.Tensor) else list(got)


def measure(name: str, entry: dict, args) -> list[dict]:
    file = ROOT / entry["file"]
    model = readers.read(file)
    stored = np.load(ROOT / entry["expected"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        after = generated(model, Path(tmp) / name)
        if path_of((Path(tmp) / name / "model.py").read_text()) != "nn.*":
            return []
        before = generated_by(args.before, file, Path(tmp) / f"before_{name}")
        torch.set_num_threads(1)
        sess = session(model, 1)
        for batch in args.batches:
            xs = tiled(stored, entry["inputs"], batch, [s.dtype for s in model.inputs])
            feed = {i.name: x for i, x in zip(sess.get_inputs(), xs)}
            txs = [torch.from_numpy(x) for x in xs]
            with torch.inference_mode():
                same = all(torch.equal(a, b) for a, b in zip(outputs(before, txs), outputs(after, txs)))
                t = samples_in_turn({"before": lambda: before(*txs), "after": lambda: after(*txs),
                           "ort": lambda: sess.run(None, feed)}, args.min_runs, args.budget)
            ms = {k: statistics.median(v) for k, v in t.items()}
            row = {"model": name, "batch": batch, "same_bits": same, "runs": len(t["after"]),
                   "before_ms": ms["before"], "after_ms": ms["after"], "ort_ms": ms["ort"],
                   "after_over_before": ms["after"] / ms["before"],
                   "after_over_before_p10": low(t["after"]) / low(t["before"]), "after_over_ort": ms["after"] / ms["ort"]}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| corpus file | batch | before ms | after ms | after / before (median, p10) | after / onnxruntime "
             "| same bits |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['batch']} | {r['before_ms']:.3g} | {r['after_ms']:.3g} | "
                     f"{r['after_over_before']:.2f}, {r['after_over_before_p10']:.2f} | {r['after_over_ort']:.2f} | "
                     f"{'yes' if r['same_bits'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="root of the other checkout (git worktree)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of calls per setting (at least)")
    parser.add_argument("--min-runs", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.before = args.before.resolve()
    rows, load = [], os.getloadavg()
    for name, entry in json.loads(MANIFEST.read_text()).items():
        if name in SKIPPED or (args.only and name not in args.only):
            continue
        rows += measure(name, entry, args)
    meta = {"load_average_start": load, "load_average_end": os.getloadavg(), "torch": torch.__version__}
    if args.json:
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    print(json.dumps(meta))
    print(table(rows))
    return 0 if all(r["same_bits"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
