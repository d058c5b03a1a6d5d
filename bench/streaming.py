"""Large-model conversion against a warm file copy: whole-process time and peak memory, as ratios.

    .venv/bin/python bench/streaming.py [--runs 3] [--model large] [--json bench/streaming.json]

Runs in gateport's own environment. The model is ``bench/models/NAME.keras`` (built by
``bench/models.py`` in the bench venv, see bench/run.sh). In one run, interleaved: ``cp`` of the
.keras file (the source read from the page cache, as for every row) and ``gateport convert`` to
``onnx``, ``torch`` and ``gates``, each a fresh process (interpreter start, imports, read, convert,
write), the ``converters`` package byte-compiled first (as installed). Each conversion process reports
its own peak resident memory (``VmHWM`` of /proc/self/status, read at exit: ``ru_maxrss`` would survive
exec and report a parent's peak) and its resident memory after the imports; the parent times the whole process, wall clock and CPU (user + system from
``wait4``: on a loaded machine the CPU ratio moves less than the wall-clock one). Cells are medians. Prints a Markdown table
(the README's "Streaming writers" rows) and writes ``--json``. ``--before DIR`` adds rows for the
``converters`` package in DIR (e.g. ``git archive <commit> converters schemas | tar -x -C DIR``), same rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("onnx", "torch", "gates")

#: The child: imports what ``gateport convert`` imports, converts, reports times and memory as JSON.
CHILD = """
import json, sys, time
t0 = time.perf_counter()
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024
from converters import cli
after = status("VmRSS")
t1 = time.perf_counter()
rc = cli.main(["convert", sys.argv[1], "--to", sys.argv[2], "-o", sys.argv[3], "--force"])
print(json.dumps({"rc": rc, "import_s": t1 - t0, "work_s": time.perf_counter() - t1,
                  "rss_after_import_mb": after, "peak_mb": status("VmHWM")}))
"""


def weight_bytes(name: str) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from models import weight_bytes as from_spec

    return from_spec(name)


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def timed(cmd: list[str], cwd: Path = ROOT) -> tuple[float, float, str]:
    """Run ``cmd``: (wall seconds, its CPU seconds (user + system, from wait4), its stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:3])} failed: {err.read()[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, out.read()


def remove(out: Path) -> None:
    """Delete the previous output first, as before each ``cp``: its page-cache pages are then free
    for the new file (writing into a full page cache first reclaims other pages, which here took
    up to 1.5 s for 235 MB and would swamp the comparison)."""
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink(missing_ok=True)


def copy_once(src: Path, out: Path) -> dict:
    remove(out)
    warm(src)
    wall, cpu, _ = timed(["cp", str(src), str(out)])
    return {"wall_s": wall, "cpu_s": cpu}


def convert_once(src: Path, to: str, out: Path, code: Path = ROOT) -> dict:
    """One conversion in a fresh process importing the ``converters`` package found in ``code``."""
    remove(out)
    warm(src)
    wall, cpu, stdout = timed([sys.executable, "-c", CHILD, str(src), to, str(out)], cwd=code)
    return {"wall_s": wall, "cpu_s": cpu, **json.loads(stdout.strip().splitlines()[-1])}


def output_bytes(out: Path) -> int:
    return sum(f.stat().st_size for f in out.rglob("*")) if out.is_dir() else out.stat().st_size


def compiled(code: Path) -> None:
    """Byte-compile the ``converters`` package in ``code``, as installing it does: the runs then time the
    conversion, not the compiling of modules whose ``.pyc`` is missing or stale (a checkout being edited,
    or PYTHONDONTWRITEBYTECODE set: about 0.04 s a process here)."""
    import compileall

    compileall.compile_dir(str(code / "converters"), quiet=1)


def measure(src: Path, runs: int, before: Path | None) -> dict:
    """``runs`` rounds of cp + every target (+ every target with the code in ``before``), interleaved;
    the median of each measure."""
    codes = {"": ROOT, **({"before ": before} if before else {})}
    for code in codes.values():
        compiled(code)
    rows: dict[str, list[dict]] = {"copy": [], **{f"{c}{t}": [] for c in codes for t in TARGETS}}
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        for i in range(runs):
            rows["copy"].append(copy_once(src, Path(tmp) / "copy.keras"))
            for (label, code), to in ((c, t) for c in codes.items() for t in TARGETS):
                out = Path(tmp) / f"out.{to}"
                key = f"{label}{to}"
                rows[key].append({**convert_once(src, to, out, code), "output_bytes": output_bytes(out)})
                print(f"run {i + 1}/{runs} {key}: {rows[key][-1]}", file=sys.stderr, flush=True)
    return {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in rows.items()}


def table(res: dict, weights: int) -> str:
    copy, mb = res["copy"], weights / 2**20
    lines = ["| | whole process s | × copy | CPU s | × copy CPU | read + convert + write s | peak MB | "
             "peak / weights | growth / weights |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| `cp` of the .keras file | {copy['wall_s']:.3f} | 1.0× | {copy['cpu_s']:.3f} | 1.0× | – | – | – | – |"]
    for key, r in res.items():
        if key == "copy":
            continue
        label, to = key.rsplit(" ", 1) if " " in key else ("", key)
        lines.append(f"| gateport `--to {to}`{' (' + label + ')' if label else ''} | {r['wall_s']:.3f} | "
                     f"{r['wall_s'] / copy['wall_s']:.1f}× | {r['cpu_s']:.3f} | {r['cpu_s'] / copy['cpu_s']:.1f}× | "
                     f"{r['work_s']:.3f} | {r['peak_mb']:,.0f} | {r['peak_mb'] / mb:.2f}× | "
                     f"{(r['peak_mb'] - r['rss_after_import_mb']) / mb:.2f}× |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="large")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", default=str(ROOT / "bench" / "streaming.json"))
    p.add_argument("--before", type=Path, help="a folder holding an older converters package to compare")
    args = p.parse_args(argv)
    src = ROOT / "bench" / "models" / f"{args.model}.keras"
    if not src.exists():
        raise SystemExit(f"{src} is missing: build it with bench/models.py --only {args.model} (bench venv)")
    weights = weight_bytes(args.model)
    res = measure(src, args.runs, args.before)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    meta = {"model": args.model, "weight_bytes": weights, "runs": args.runs, "commit": commit,
            "before": str(args.before) if args.before else None,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "load_avg": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(args.json).write_text(json.dumps({"meta": meta, "results": res}, indent=1))
    print(table(res, weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
