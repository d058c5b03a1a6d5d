"""The attack run: `python tests/attack_run.py [--quick] [--class NAME] [--timeout 60] [--json FILE]`.

Builds every hostile input of attacks.py in a temporary folder and runs the `gateport` command on
each in its own process. A case fails when it: prints a traceback; exits with anything but 0 or 2
(verify: 0-3) (or 0 where a refusal is required); prints more than one error line; runs past the timeout; peaks
above 1 GB of memory; creates the marker file (code ran); changes an input; leaves a temporary or
partial output behind; or writes a torch folder whose model.py, imported in a fresh process, runs
anything (the marker) or fails to load its weights. Prints one line per failure and a summary per
class; exit 1 if anything failed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from attacks import Case, build  # noqa: E402

MAX_RSS_BYTES = 1 << 30
#: The command, wrapped so that it writes its own peak memory (and its children's) to a file at exit.
WRAPPER = """import atexit, resource, sys
rss_file = sys.argv.pop(1)
def _rss():  # VmHWM: ru_maxrss survives exec and would report the (pytest) parent's peak
    own = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    peak = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    open(rss_file, "w").write(str(peak * 1024))
atexit.register(_rss)
from converters.cli import main
sys.exit(main(sys.argv[1:]))
"""

def digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def run_case(case: Case, marker: Path, timeout: float) -> tuple[list[str], dict]:
    """Run one case; the list of problems (empty = passed) and what was measured."""
    if marker.exists():
        marker.unlink()
    before = {p: digest(p) for p in case.inputs}
    start = time.time()
    rss_file = marker.with_name("rss")
    rss_file.unlink(missing_ok=True)
    cwd = marker.with_name("cwd")  # an empty working folder: a payload that ran with a mangled path leaves a file here
    shutil.rmtree(cwd, ignore_errors=True)
    cwd.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, str(rss_file)] + case.argv, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(HERE.parent)})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return [f"hang: no exit within {timeout:.0f} s"], {"seconds": timeout}
    seconds = time.time() - start
    rss = int(rss_file.read_text()) if rss_file.exists() else 0
    stderr = err.decode("utf-8", "replace")
    problems = []
    error_lines = [line for line in stderr.splitlines() if line and not line.startswith("gateport: warning:")
                   and not line.startswith("[")]  # progress bars
    if "Traceback" in stderr:
        problems.append("traceback: " + stderr.strip().splitlines()[-1][:200])
    allowed = (0, 1, 2, 3) if case.argv[0] == "verify" else (0, 2)  # verify: ok, fail, error, unproven
    if proc.returncode not in allowed:
        problems.append(f"exit {proc.returncode}: {stderr.strip()[-200:]!r}")
    if proc.returncode == 0 and case.expect == "refuse" and case.argv[0] != "verify":
        problems.append("accepted where a refusal was required")
    if proc.returncode == 2 and len(error_lines) != 1:
        problems.append(f"{len(error_lines)} error lines: {stderr[:300]!r}")
    if rss > MAX_RSS_BYTES:
        problems.append(f"peak memory {rss / 2**20:.0f} MiB")
    if marker.exists():
        problems.append("CODE EXECUTED (marker file created)")
    for p, d in before.items():
        if digest(p) != d:
            problems.append(f"input changed: {p}")
    problems += _check_output(case, proc.returncode, marker, cwd)
    if any(cwd.iterdir()):
        problems.append(f"CODE EXECUTED? files appeared in the working folder: {sorted(p.name for p in cwd.iterdir())[:3]}")
    return problems, {"seconds": round(seconds, 2), "rss_mib": round(rss / 2**20), "exit": proc.returncode,
                      "stderr": stderr.strip()[:300]}


def _check_output(case: Case, code: int | None, marker: Path, cwd: Path) -> list[str]:
    problems = []
    if not case.output:
        return problems
    out = Path(case.output)
    parent = out.parent if str(out) else Path(".")
    if parent.is_dir():
        leftovers = [p.name for p in parent.iterdir() if p.name.startswith(f".{out.name[:100]}") and
                     (p.name.endswith(".tmp") or ".old" in p.name)]
        if leftovers:
            problems.append(f"temporary files left: {leftovers[:3]}")
    if code != 0 and os.path.lexists(out) and case.expect == "refuse" and not any(case.output == i for i in case.inputs):
        problems.append(f"refused but an output exists: {out}")
    if code == 0 and case.importable:
        check = ("import sys; sys.path.insert(0, sys.argv[1]); import model; model.load_model(); print('ok')")
        r = subprocess.run([sys.executable, "-c", check, str(out)], capture_output=True, text=True, timeout=120,
                           cwd=cwd)
        if r.returncode != 0:
            problems.append(f"model.py does not load: {r.stderr.strip().splitlines()[-1][:200] if r.stderr else ''}")
        if marker.exists():
            problems.append("CODE EXECUTED by importing model.py")
    return problems


def run_battery(cases: list, run, folder: Path, timeout: float = 60.0, json_path: str | None = None) -> int:
    """Run ``cases`` with ``run`` (a round's ``run_case``): one line per failure, a summary per class, and the
    number that failed (the shared loop of every round's ``main``)."""
    per_class: dict[str, Counter] = defaultdict(Counter)
    results, failed, peak, start = [], 0, 0, time.time()
    for case in cases:
        problems, measured = run(case, folder / "MARKER", timeout)
        peak = max(peak, measured.get("rss_mib", 0))
        per_class[case.klass]["failed" if problems else "passed"] += 1
        results.append({"class": case.klass, "name": case.name, "problems": problems, **measured})
        if problems:
            failed += 1
            print(f"FAIL [{case.klass}] {case.name!r}: {'; '.join(problems)}", flush=True)
    for klass, counts in per_class.items():
        print(f"{klass:24s} {counts['passed']:4d} passed {counts['failed']:4d} failed")
    print(f"{len(cases)} attacks: {len(cases) - failed} passed, {failed} failed; peak memory {peak} MiB, "
          f"{time.time() - start:.0f} s")
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))
    return failed


def battery_main(build, run, argv: list[str]) -> int:
    """A round's command line: ``[--group NAME] [--match TEXT] [--timeout S] [--json FILE]``; builds the round's
    cases (``build(folder, groups)``) in a temporary folder and runs them with :func:`run_battery`."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--group")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--match", default="")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cases"
        cases = [c for c in build(folder, groups=(args.group,) if args.group else None) if args.match in c.name]
        return 1 if run_battery(cases, run, folder, args.timeout, args.json) else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small sample (what CI runs)")
    ap.add_argument("--class", dest="klass", help="only this class of attacks")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--json", help="write every case's result to this file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = [c for c in build(folder, quick=args.quick) if not args.klass or c.klass == args.klass]
        cases = cases[::4] if args.quick else cases
        marker = folder / "MARKER"
        results, failed, per_class = [], 0, defaultdict(Counter)
        start = time.time()
        for i, case in enumerate(cases, 1):
            problems, measured = run_case(case, marker, args.timeout)
            per_class[case.klass]["failed" if problems else "passed"] += 1
            results.append({"class": case.klass, "name": case.name, "problems": problems, **measured})
            if problems:
                failed += 1
                print(f"FAIL [{case.klass}] {case.name!r}: {'; '.join(problems)}", flush=True)
            if i % 20 == 0:
                print(f"{i}/{len(cases)} cases, {failed} failed, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
        for klass, counts in per_class.items():
            print(f"{klass:24s} {counts['passed']:4d} passed {counts['failed']:4d} failed")
        peak = max((r.get("rss_mib", 0) for r in results), default=0)
        print(f"{len(cases)} attacks: {len(cases) - failed} passed, {failed} failed; peak memory {peak} MiB, "
              f"{time.time() - start:.0f} s")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
