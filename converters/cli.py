"""The ``gateport`` command: argument parsing and printing only; the work is in :mod:`converters.api`.

Any :class:`~converters.errors.GateportError` becomes one line
``gateport: error: <file>: <layer>: <what>`` and exit status 2 (``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import glob
import json
import sys

from . import __version__
from .errors import GateportError
from .sanitize import one_line

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    from .api import TARGETS

    p = argparse.ArgumentParser(prog="gateport", description=(
        "Move trained Keras LSTM/GRU/SimpleRNN models to PyTorch and ONNX, gate by gate, verified."))
    p.add_argument("--version", action="version", version=f"gateport {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ins = sub.add_parser("inspect", help="show layers, shapes, options and where each gate sits in "
                                         "Keras, PyTorch and ONNX")
    ins.add_argument("model", help="Keras .h5 / .keras / .weights.h5 file, or a gateport IR file")
    ins.add_argument("--config", help="architecture for a weights-only file (model JSON, .keras or full .h5)")
    ins.add_argument("--json", action="store_true", help="print stable JSON for scripts")
    ins.add_argument("--layer", help="show only this layer")
    ins.add_argument("--gate", help="with --layer and -o: extract this gate (e.g. forget) to an .npz")
    ins.add_argument("-o", "--output", help="with --layer --gate: the .npz file to write")
    ins.add_argument("--force", action="store_true", help="overwrite an existing output")

    conv = sub.add_parser("convert", help="convert a model to another format")
    conv.add_argument("model", nargs="+", help="a Keras .h5 / .keras / .weights.h5, PyTorch .safetensors / .pt, ONNX or gateport IR file; "
                                               "several files or a quoted glob ('ckpt/*.hdf5') convert into the -o folder")
    conv.add_argument("--to", required=True, choices=list(TARGETS),
                      help="; ".join(f"{k}: {v[1]}" for k, v in TARGETS.items()))
    conv.add_argument("-o", "--output", required=True, help="output file (or folder for --to torch)")
    conv.add_argument("--config", help="architecture for a weights-only Keras file (model JSON, .keras or full "
                      ".h5), or a JSON layer description for a PyTorch state_dict")
    conv.add_argument("--opset", type=int, help="ONNX opset (default: the writer's)")
    conv.add_argument("--force", action="store_true", help="overwrite an existing output")
    conv.add_argument("--json", action="store_true", help="print the result as JSON")
    conv.add_argument("-j", "--jobs", type=int, default=1, help="worker processes for several files (default: 1)")

    from .verify import ATOL, DEFAULT_STEPS, DEFAULT_TARGETS, RTOL, TARGETS as VERIFY_TARGETS
    from .verify import DEFAULT_TIMEOUT as VERIFY_TIMEOUT, REQUIRE as VERIFY_REQUIRE

    ver = sub.add_parser("verify", help="convert in memory, run the source and every artifact on the same "
                                        "inputs, compare (exit 0 proven, 1 a mismatch, 2 bad input or a runtime "
                                        "error, 3 unproven: nothing compared or no independent reference)")
    ver.add_argument("model", help="Keras .h5 / .keras / .weights.h5 file, or a gateport IR file")
    ver.add_argument("--to", default=",".join(DEFAULT_TARGETS),
                     help=f"comma-separated targets from {', '.join(VERIFY_TARGETS)} (default: %(default)s)")
    ver.add_argument("--config", help="architecture for a weights-only file (model JSON, .keras or full .h5)")
    ver.add_argument("--inputs", help="inputs .npz, keys = Keras input names (or in:<name>); default random")
    ver.add_argument("--expected", help="stored outputs .npz (keys out:0, out:1 ...) to use as the reference")
    ver.add_argument("--batch", type=int, default=2, help="random inputs: batch size (default: %(default)s)")
    ver.add_argument("--steps", type=int, help=f"random inputs: length of dynamic time axes (default: {DEFAULT_STEPS})")
    ver.add_argument("--seed", type=int, default=0, help="random inputs: seed (default: %(default)s)")
    ver.add_argument("--atol", type=float, default=ATOL, help="absolute tolerance (default: %(default)g)")
    ver.add_argument("--rtol", type=float, default=RTOL, help="relative tolerance (default: %(default)g)")
    ver.add_argument("--artifact", action="append", default=[], metavar="TARGET=PATH",
                     help="run an artifact converted earlier instead of converting (torch folder, .onnx or "
                          ".keras file); adds TARGET to --to; repeatable")
    ver.add_argument("--require", choices=VERIFY_REQUIRE, default=VERIFY_REQUIRE[0],
                     help="independent (default): exit 0 only if an artifact matched Keras or --expected, not "
                          "only gateport's own reading of the file (that gives exit 3); any: either reference")
    ver.add_argument("--timeout", type=float, default=VERIFY_TIMEOUT,
                     help="seconds the generated PyTorch code may run in its child process (default: %(default)g)")
    ver.add_argument("--json", action="store_true", help="print the report as JSON (no progress on stderr)")

    dif = sub.add_parser("diff", help="compare two models' weights per layer, direction and gate, and name the "
                                      "mistake (exit 0 same numbers, 1 different, 2 bad input)")
    dif.add_argument("a", help="the reference: any supported model file (Keras, PyTorch state_dict, ONNX, .gates)")
    dif.add_argument("b", help="the model to check against A, in any supported format")
    dif.add_argument("--config-a", help="A's architecture (weights-only Keras) or layer description (state_dict)")
    dif.add_argument("--config-b", help="B's architecture or layer description, as --config-a")
    dif.add_argument("--partial", action="store_true", help="B holds only some of A's recurrent layers")
    dif.add_argument("--atol", type=float, default=1e-6, help="absolute tolerance (default: %(default)g)")
    dif.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (default: %(default)g)")
    dif.add_argument("--json", action="store_true", help="print the report as JSON")
    dif.add_argument("--plot", metavar="FILE.png", help="also draw a heatmap of max |A-B| per gate and layer "
                                                       "(needs matplotlib)")
    dif.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    return p


def cmd_inspect(args) -> int:
    from . import api
    from .atomic import atomic_path, check_output, refuse_inputs
    from .explain import extract_gate, render

    if args.gate or args.output is not None:
        if not (args.layer and args.gate and args.output is not None):
            raise GateportError("--gate needs --layer and -o FILE.npz")
        refuse_inputs([args.output], [args.model, args.config])
        check_output(args.output, args.force)
    model = api.read(args.model, args.config)
    if args.gate or args.output is not None:
        import numpy as np

        try:
            arrays = extract_gate(model, args.layer, args.gate)
        except (KeyError, ValueError) as e:
            raise GateportError(str(e).strip("'"), file=args.model, layer=args.layer) from None
        with atomic_path(args.output, args.force) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        print(f"wrote {args.output}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())}")
        return EXIT_OK
    desc = api.inspect(model)
    if args.layer and not any(e["name"] == args.layer for e in desc["layers"]):
        raise GateportError(f"no layer {args.layer!r}; layers: "
                            f"{', '.join(e['name'] for e in desc['layers'])}", file=args.model)
    if args.json:
        if args.layer:
            desc["layers"] = [e for e in desc["layers"] if e["name"] == args.layer]
        print(json.dumps(desc, indent=2))
    else:
        print(render(desc, args.layer))
    return EXIT_OK


def cmd_convert(args) -> int:
    from . import api, batch

    options = dict(config=args.config, opset=args.opset, force=args.force)
    if len(args.model) == 1 and not glob.has_magic(args.model[0]):  # one file: -o names the output
        (source,) = args.model
        out = api.convert(source, args.to, args.output, **options)
        print(json.dumps({"input": source, "to": args.to, "output": str(out)}) if args.json else f"wrote {out}")
        return EXIT_OK
    sources = batch.expand(args.model)

    def progress(done: int, total: int, r) -> None:
        if not args.json:
            width = 30
            bar = "#" * (width * done // total)
            status = "ok    " if r.ok else "FAILED"
            print(f"[{bar:<{width}}] {done}/{total} {status} {r.source}", file=sys.stderr, flush=True)

    results = batch.convert_many(sources, args.to, args.output, jobs=args.jobs, progress=progress, **options)
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps([{"input": r.source, "output": r.output, "error": r.error} for r in results], indent=2))
    else:
        width = max(len(r.source) for r in results)
        print(f"{'file':<{width}}  result")
        for r in results:
            print(f"{r.source:<{width}}  {'-> ' + r.output if r.ok else 'FAILED: ' + r.error}")
        print(f"{len(results) - len(failed)} converted, {len(failed)} failed")
    return EXIT_BAD_INPUT if failed else EXIT_OK


def cmd_verify(args) -> int:
    from .verify import render, verify

    targets = [t.strip() for t in args.to.split(",") if t.strip()]
    artifacts = {}
    for item in args.artifact:
        target, sep, path = item.partition("=")
        if not sep or not path:
            raise GateportError(f"expected --artifact TARGET=PATH, found {item!r}")
        artifacts[target] = path
        targets += [target] if target not in targets else []
    progress = None
    if not args.json and sys.stderr.isatty():
        def progress(line: str) -> None:
            print(f"gateport: verify: {line}", file=sys.stderr, flush=True)
    report = verify(args.model, targets, inputs=args.inputs, expected=args.expected, batch=args.batch,
                    steps=args.steps, seed=args.seed, atol=args.atol, rtol=args.rtol, config=args.config,
                    artifacts=artifacts, require=args.require, timeout=args.timeout, progress=progress)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    return report.exit_status


def cmd_diff(args) -> int:
    from .diff import check_plot, diff, plot, render

    if args.plot:
        check_plot(args.plot, args.force)
    report = diff(args.a, args.b, config_a=args.config_a, config_b=args.config_b, partial=args.partial,
                  atol=args.atol, rtol=args.rtol)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    if args.plot:
        print(f"wrote {plot(report, args.plot, args.force)}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_MISMATCH


COMMANDS = {"inspect": cmd_inspect, "convert": cmd_convert, "verify": cmd_verify, "diff": cmd_diff}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gateport: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import warnings

    from .errors import GateportWarning

    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning if not args.debug else warnings.showwarning
    warnings.simplefilter("always", GateportWarning)
    try:
        return COMMANDS[args.command](args)
    except GateportError as e:
        if args.debug:
            raise
        print(f"gateport: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `gateport inspect ... | head`
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("gateport: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError, RecursionError) as e:  # disk full, permission, exhausted: one line
        if args.debug:
            raise
        print(f"gateport: error: {one_line(_describe(e))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # a case gateport did not foresee: still one line, never a traceback
        if args.debug:
            raise
        print(f"gateport: error: unexpected {type(e).__name__}: {one_line(e)} "
              "(a gateport bug; --debug shows the traceback)", file=sys.stderr)
        return EXIT_BAD_INPUT


def _describe(e: BaseException) -> str:
    """``[Errno 28] No space left on device: 'out.onnx'`` -> ``out.onnx: No space left on device``."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    if isinstance(e, MemoryError):
        return "out of memory (the input declares more than this machine holds)"
    if isinstance(e, RecursionError):
        return "input nested too deeply"
    return f"{type(e).__name__}: {e}"


if __name__ == "__main__":
    sys.exit(main())
