"""Convert many files in one command (the per-epoch checkpoints ModelCheckpoint writes).

Each file converts on its own: a broken one is reported and the others are still written. Outputs
that would collide, or overwrite an input, refuse the whole command before anything is written. With
``jobs > 1`` the files are spread over worker processes. Progress goes to a callback, one call per
finished file, so the CLI can draw it.
"""
from __future__ import annotations

import glob
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import GateportError, OutputError, UsageError
from .sanitize import quote
from .targets import get as target

@dataclass
class Result:
    """How one file went: ``output`` on success, ``error`` (one line) on failure."""

    source: str
    output: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def is_pattern(arg: str) -> bool:
    """Whether a command-line model argument is a glob pattern: it holds ``*``, ``?`` or ``[`` and names no file
    itself. ``model[v2].h5`` or a name holding an escape sequence (``\x1b[2J``) is that file, as the shell left it
    (glob read the first as a pattern matching model2.h5 or modelv.h5, and convert took one such file for a batch:
    ``-o out.onnx`` became a folder)."""
    return glob.has_magic(arg) and not os.path.lexists(arg)


def expand(patterns: Iterable[str]) -> list[str]:
    """Paths from arguments that may be glob patterns (quoted so the shell left them alone)."""
    paths: list[str] = []
    for p in patterns:
        matches = sorted(glob.glob(p)) if is_pattern(p) else [p]
        if not matches:
            raise UsageError(f"no file matches {quote(p)}")
        paths += [m for m in matches if m not in paths]
    return paths


def output_for(source: str, to: str, out_dir: str | os.PathLike) -> Path:
    """The output path of ``source`` in ``out_dir``: the file's name without its extension(s)."""
    name = Path(source).name
    stem = name[: -len(".weights.h5")] if name.endswith(".weights.h5") else Path(name).stem
    return Path(out_dir) / target(to).output.format(stem=stem)


def check_outputs(sources: list[str], to: str, out_dir: Path, config: str | None = None) -> None:
    """Before anything is written: refuse two inputs whose outputs share a name (also differing only
    in case, which collide on macOS and Windows), and an output that is one of the inputs."""
    from .api import output_paths
    from .atomic import refuse_inputs

    owner: dict[str, str] = {}
    outputs = []
    for source in sources:
        for path in output_paths(to, output_for(source, to, out_dir)):
            first = owner.setdefault(os.path.normcase(str(path)).casefold(), source)
            if first != source:
                raise OutputError(f"{first} and {source} would both be written to {path}; "
                                  "convert them into different folders")
            outputs.append(path)
    refuse_inputs(outputs, [*sources, config])


def convert_one(source: str, to: str, output: str, options: dict) -> Result:
    """Convert one file; any error becomes the result's one-line message."""
    from .api import convert

    try:
        return Result(source, output=str(convert(source, to, output, **options)))
    except GateportError as e:
        return Result(source, error=str(e))
    except Exception as e:  # a bug or an unforeseen file: report it, keep converting the others
        return Result(source, error=f"{source}: unexpected {type(e).__name__}: {e}")


def convert_many(sources: list[str], to: str, out_dir: str | os.PathLike, *, jobs: int = 1,
                 progress: Callable[[int, int, Result], None] | None = None, **options) -> list[Result]:
    """Convert every file in ``sources`` into ``out_dir``; results in the order of ``sources``."""
    if not os.fspath(out_dir):
        raise OutputError("expected an output folder, found an empty one")
    out_dir = Path(out_dir)
    check_outputs(sources, to, out_dir, options.get("config"))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the output folder: {e.strerror or e}", file=str(out_dir)) from None
    tasks = [(s, to, str(output_for(s, to, out_dir)), options) for s in sources]
    results: dict[str, Result] = {}

    def done(r: Result) -> None:
        results[r.source] = r
        if progress:
            progress(len(results), len(tasks), r)

    jobs = min(jobs, len(tasks))  # never more workers than files (-j 10**18 is not a C int)
    if jobs <= 1:
        for t in tasks:
            done(convert_one(*t))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for fut in as_completed([pool.submit(convert_one, *t) for t in tasks]):
                done(fut.result())
    return [results[s] for s in sources]
