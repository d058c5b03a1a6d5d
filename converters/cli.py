"""The ``gateport`` command: argument parsing and printing only; the work is in :mod:`converters.api`.

Any :class:`~converters.errors.GateportError` becomes one line
``gateport: error: <file>: <layer>: <what>`` and exit status 2 (``--debug`` shows the traceback);
with ``--json`` it is one JSON object on stdout, ``{"error", "kind", "file", "layer"}``. Notes of a
conversion (:mod:`converters.notes`) print as ``gateport: note: ...``; ``-q`` hides them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from . import __version__
from .errors import GateportError, UsageError
from .sanitize import TerminalStream, one_line, quote
from .targets import RUNNABLE, TARGETS

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


EXAMPLES = """examples:
  gateport inspect model.h5                          layers, shapes and where each gate sits
  gateport convert model.h5 --to onnx -o model.onnx  one fused LSTM/GRU node per layer
  gateport convert model.h5 --to torch -o model_pt   a folder: model.py + model.safetensors
  gateport convert 'ckpt/*.hdf5' --to onnx -o out/ -j 4
  gateport verify model.h5 --to torch,onnx           run Keras, PyTorch and onnxruntime, compare
  gateport diff model.h5 model.onnx                  name the mistake between two models

--debug, -q and -v go anywhere on the line. With --json, an error (a usage error too) is one JSON
object on stdout:
{"error": "...", "kind": "FormatError", "file": ..., "layer": ...} (exit status 2).
"""
#: The ONNX axes --dynamic may name.
DYNAMIC_AXES = ("batch", "time")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, found {value}")
    return value


def names(text: str) -> list[str]:
    """argparse type: comma-separated names."""
    return [n.strip() for n in text.split(",")]


def axes(text: str) -> list[str]:
    """argparse type: --dynamic's comma-separated axes (``none``: no axis)."""
    found = [a.strip() for a in text.split(",") if a.strip() and a.strip() != "none"]
    wrong = [a for a in found if a not in DYNAMIC_AXES]
    if wrong:
        raise argparse.ArgumentTypeError(f"expected axes from {', '.join(DYNAMIC_AXES)} or none, found {wrong[0]!r}")
    return found


def _common_options(parser: argparse.ArgumentParser, default) -> None:
    """--debug, -q and -v, accepted before and after the subcommand (a subcommand's own copy only
    sets them when given, so it never hides the value given before it)."""
    kw = {} if default is None else {"default": default}
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors", **kw)
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print only errors (no notes, warnings, "
                      "progress or 'wrote' lines)", **kw)
    loud.add_argument("-v", "--verbose", action="store_true", help="also list every file written, with its size", **kw)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a JSON object on stdout when ``--json`` was given."""

    json_errors = False

    def error(self, message: str):
        if not _Parser.json_errors:  # one line like every other error (argparse prints the usage block first)
            self.exit(EXIT_BAD_INPUT, f"gateport: error: {one_line(f'{self.prog}: {message}')} (--help shows the usage)\n")
        print(json.dumps({"error": f"{self.prog}: {message}", "kind": "UsageError", "file": None, "layer": None}))
        self.exit(EXIT_BAD_INPUT)


class _Subparsers:
    """``add_parser`` that gives every subcommand the common options."""

    def __init__(self, action):
        self.action = action

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        parser = self.action.add_parser(name, **kwargs)
        _common_options(parser, argparse.SUPPRESS)
        return parser


def build_parser() -> argparse.ArgumentParser:

    p = _Parser(prog="gateport", description=(
        "Move trained Keras LSTM/GRU/SimpleRNN models to PyTorch and ONNX, gate by gate, verified."),
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"gateport {__version__}")
    _common_options(p, None)
    sub = _Subparsers(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))

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
                      help="; ".join(f"{k}: {t.summary}" for k, t in TARGETS.items()))
    conv.add_argument("-o", "--output", required=True, help="output file (or folder for --to torch)")
    conv.add_argument("--config", help="architecture for a weights-only Keras file (model JSON, .keras or full "
                      ".h5), or a JSON layer description for a PyTorch state_dict")
    conv.add_argument("--opset", type=int, help="ONNX opset (default: the writer's)")
    conv.add_argument("--force", action="store_true", help="overwrite an existing output")
    conv.add_argument("--json", action="store_true", help="print the result as JSON")
    conv.add_argument("-j", "--jobs", type=positive_int, default=1,
                      help="worker processes for several files (default: 1)")
    conv.add_argument("--dynamic", type=axes, default=",".join(DYNAMIC_AXES), metavar="AXES",
                      help="ONNX: comma-separated axes left symbolic, of batch and time, or 'none'; an axis left "
                           "out is fixed (batch 1, time the model's declared length) (default: %(default)s)")
    conv.add_argument("--input-names", type=names, metavar="A,B", help="ONNX: names of the graph inputs, in order")
    conv.add_argument("--output-names", type=names, metavar="A,B", help="ONNX: names of the graph outputs, in order")
    conv.add_argument("--fp16", action="store_true",
                      help="ONNX: store the weights as float16 (half the file; the graph casts them to float32 and "
                           "computes in float32); the rounding changes the outputs: gateport verify --fp16 reports by how much")

    from .verify_defaults import ATOL, DEFAULT_STEPS, DEFAULT_TARGETS, RTOL
    from .verify_defaults import DEFAULT_TIMEOUT as VERIFY_TIMEOUT, REQUIRE as VERIFY_REQUIRE

    ver = sub.add_parser("verify", help="convert in memory, run the source and every artifact on the same "
                                        "inputs, compare (exit 0 proven, 1 a mismatch, 2 bad input or a runtime "
                                        "error, 3 unproven: nothing compared or no independent reference)")
    ver.add_argument("model", help="Keras .h5 / .keras / .weights.h5 file, or a gateport IR file")
    ver.add_argument("--to", default=",".join(DEFAULT_TARGETS),
                     help=f"comma-separated targets from {', '.join(RUNNABLE)} (default: %(default)s)")
    ver.add_argument("--config", help="architecture for a weights-only file (model JSON, .keras or full .h5)")
    ver.add_argument("--inputs", help="inputs .npz, keys = Keras input names (or in:<name>); default random")
    ver.add_argument("--expected", help="stored outputs .npz (keys out:0, out:1 ...) to use as the reference; "
                                                 "the inputs they came from are --inputs, or in:<name> arrays of this file")
    ver.add_argument("--batch", type=int, default=2, help="random inputs: batch size (default: %(default)s)")
    ver.add_argument("--steps", type=int, help=f"random inputs: length of dynamic time axes (default: {DEFAULT_STEPS})")
    ver.add_argument("--seed", type=int, default=0, help="random inputs: seed (default: %(default)s)")
    ver.add_argument("--atol", type=float, default=None,
                     help=f"absolute tolerance (default: {ATOL:g}; float16/bfloat16 models: from the compute dtype)")
    ver.add_argument("--rtol", type=float, default=None,
                     help=f"relative tolerance (default: {RTOL:g}; float16/bfloat16 models: from the compute dtype)")
    ver.add_argument("--artifact", action="append", default=[], metavar="TARGET=PATH",
                     help="run an artifact converted earlier instead of converting (torch folder, .onnx or "
                          ".keras file); adds TARGET to --to; repeatable")
    ver.add_argument("--require", choices=VERIFY_REQUIRE, default=VERIFY_REQUIRE[0],
                     help="independent (default): exit 0 only if an artifact matched Keras or --expected, not "
                          "only gateport's own reading of the file (that gives exit 3); any: either reference")
    ver.add_argument("--timeout", type=float, default=VERIFY_TIMEOUT,
                     help="seconds the generated PyTorch code may run in its child process (default: %(default)g)")
    ver.add_argument("--fp16", action="store_true",
                     help="check the ONNX artifact with float16 weights (convert --fp16): held to 1e-2, the error "
                          "it costs is reported (an --artifact onnx=FILE with float16 weights is treated the same)")
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

    exp = sub.add_parser("explain", help="what the weights weigh: per recurrent layer and gate the weight norms "
                                         "per input feature and unit; with --inputs each output's sensitivity "
                                         "to each input time step and feature")
    exp.add_argument("model", help="any supported model file (Keras, PyTorch state_dict, ONNX, .gates)")
    exp.add_argument("--config", help="architecture for a weights-only file (model JSON, .keras or full .h5)")
    exp.add_argument("--inputs", help="inputs .npz (keys = Keras input names): adds the sensitivities, by finite "
                                      "differences through the numpy reference")
    exp.add_argument("--json", action="store_true", help="print the report as JSON (every norm and sensitivity)")
    exp.add_argument("--plot", metavar="FILE.png", help="also draw the heatmaps (needs matplotlib)")
    exp.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    return p


def cmd_inspect(args) -> int:
    from . import api
    from .explain import render

    if args.gate or args.output is not None:
        return _extract_gate(args)
    desc = api.inspect(api.read(args.model, args.config))
    if args.layer and not any(e["name"] == args.layer for e in desc["layers"]):
        raise UsageError(f"no layer {args.layer!r}; layers: "
                            f"{', '.join(e['name'] for e in desc['layers'])}", file=args.model)
    if args.json:
        if args.layer:
            desc["layers"] = [e for e in desc["layers"] if e["name"] == args.layer]
        print(json.dumps(desc, indent=2))
    else:
        print(render(desc, args.layer))
    return EXIT_OK


def _extract_gate(args) -> int:
    """``inspect --layer L --gate G -o FILE.npz``: one gate's arrays to an .npz."""
    import numpy as np

    from . import api
    from .atomic import atomic_path, check_output, refuse_inputs
    from .explain import extract_gate

    if not (args.layer and args.gate and args.output is not None):
        raise UsageError("--gate needs --layer and -o FILE.npz")
    refuse_inputs([args.output], [args.model, args.config])
    check_output(args.output, args.force)
    model = api.read(args.model, args.config)
    try:
        arrays: dict[str, Any] = extract_gate(model, args.layer, args.gate)
    except GateportError as e:
        raise e.at(file=args.model)
    with atomic_path(args.output, args.force) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    print(f"wrote {one_line(args.output)}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())}")
    return EXIT_OK


def cmd_convert(args) -> int:
    from . import api

    options = dict(config=args.config, opset=args.opset, force=args.force)
    onnx_options = dict(dynamic=args.dynamic, input_names=args.input_names, output_names=args.output_names)
    if args.fp16:
        onnx_options["weights_dtype"] = "float16"
    if "dynamic" not in TARGETS[args.to].options and (
            args.input_names or args.output_names or args.dynamic != list(DYNAMIC_AXES) or args.fp16):
        raise UsageError(f"--dynamic, --input-names, --output-names and --fp16 apply to --to onnx, "
                         f"found --to {args.to}")
    from .batch import is_pattern  # a file named model[v2].h5 is that file, not a pattern

    if len(args.model) == 1 and not is_pattern(args.model[0]):  # one file: -o names the output
        (source,) = args.model
        api.check_outputs(args.to, args.output, [source, args.config], args.force)  # graver mistakes first
        check_suffix(args.to, args.output)
        out = api.convert(source, args.to, args.output, **options, **onnx_options)
        if args.json:
            print(json.dumps({"input": source, "to": args.to, "output": str(out)}))
        elif not args.quiet:
            print(f"wrote {one_line(out)}")
        if args.verbose:
            _list_written(args.to, out)
        return EXIT_OK
    from . import batch  # many files: a process pool (concurrent.futures)

    options.update({k: v for k, v in onnx_options.items() if v != list(DYNAMIC_AXES)})
    sources = batch.expand(args.model)

    def progress(done: int, total: int, r) -> None:
        if not args.json and not args.quiet:
            width = 30
            bar = "#" * (width * done // total)
            status = "ok    " if r.ok else "FAILED"
            print(f"[{bar:<{width}}] {done}/{total} {status} {one_line(r.source)}", file=sys.stderr, flush=True)

    results = batch.convert_many(sources, args.to, args.output, jobs=args.jobs, progress=progress, **options)
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps([{"input": r.source, "output": r.output, "error": r.error} for r in results], indent=2))
    elif args.quiet:
        for r in failed:
            print(f"gateport: error: {r.error}", file=sys.stderr)
    else:
        width = max(len(one_line(r.source)) for r in results)
        print(f"{'file':<{width}}  result")
        for r in results:
            print(f"{one_line(r.source):<{width}}  "
                  f"{f'-> {one_line(r.output)}' if r.ok else f'FAILED: {one_line(r.error)}'}")
        print(f"{len(results) - len(failed)} converted, {len(failed)} failed")
    return EXIT_BAD_INPUT if failed else EXIT_OK


def check_suffix(to: str, output: str) -> None:
    """Refuse an output name whose suffix is not the target's (``--to onnx -o out.h5``: gateport could
    not read it back as what it is). A name without a suffix is taken as it is (but where Keras opens the
    file by its ending: Target.check_name), and a folder
    (``--to torch``) may have any suffix but a model file's."""
    target, name = TARGETS[to], os.path.basename(os.path.normpath(output)).lower()
    files = tuple(t.suffix for t in TARGETS.values() if t.kind == "file")
    if target.kind == "file" and os.path.splitext(name)[1] and not name.endswith(target.suffix):
        raise UsageError(f"expected an output name ending in {target.suffix} for --to {to}, found {quote(output)}")
    target.check_name(output)
    if target.kind == "folder" and name.endswith(files + (".h5", ".hdf5", ".pt", ".pth")):
        raise UsageError(f"expected a folder name without a model-file suffix for --to {to} (it writes a folder: "
                         f"model.py and its weights), found {quote(output)}")


def _list_written(to: str, out) -> None:
    """-v: every file the conversion wrote, with its size."""
    from .api import output_paths

    for path in output_paths(to, out):
        if path.is_file():
            print(f"  {one_line(path)}  {path.stat().st_size} bytes")


def cmd_verify(args) -> int:
    from .verification import render, summary, verify

    targets = [t.strip() for t in args.to.split(",") if t.strip()]
    artifacts = {}
    for item in args.artifact:
        target, sep, path = item.partition("=")
        if not sep or not path:
            raise UsageError(f"expected --artifact TARGET=PATH, found {item!r}")
        artifacts[target] = path
        targets += [target] if target not in targets else []
    progress = None
    if not args.json and not args.quiet and sys.stderr.isatty():
        def progress(line: str) -> None:
            print(f"gateport: verify: {line}", file=sys.stderr, flush=True)
    report = verify(args.model, targets, inputs=args.inputs, expected=args.expected, batch=args.batch,
                    steps=args.steps, seed=args.seed, atol=args.atol, rtol=args.rtol, config=args.config,
                    artifacts=artifacts, require=args.require, timeout=args.timeout, progress=progress,
                    fp16=args.fp16)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    if report.verdict in ("fail", "error"):  # the report is on stdout: stderr gets its one line too
        kind = "mismatch" if report.verdict == "fail" else "error"
        print(f"gateport: {kind}: {one_line(report.model)}: {one_line(summary(report))}", file=sys.stderr)
    return report.exit_status


def cmd_diff(args) -> int:
    from .diff import check_plot, diff, plot, render

    if args.plot:
        check_plot(args.plot, args.force)
    report = diff(args.a, args.b, config_a=args.config_a, config_b=args.config_b, partial=args.partial,
                  atol=args.atol, rtol=args.rtol)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    if args.plot:
        print(f"wrote {one_line(plot(report, args.plot, args.force))}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_MISMATCH


def cmd_explain(args) -> int:
    from .diff import check_plot
    from .explain_weights import explain, plot, render

    if args.plot:
        check_plot(args.plot, args.force)
    report = explain(args.model, args.config, args.inputs)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    if args.plot:
        print(f"wrote {one_line(plot(report, args.plot, args.force))}", file=sys.stderr)
    return EXIT_OK


COMMANDS = {"inspect": cmd_inspect, "convert": cmd_convert, "verify": cmd_verify, "diff": cmd_diff,
            "explain": cmd_explain}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from .notes import GateportNote

    kind = "note" if issubclass(category, GateportNote) else "warning"
    print(f"gateport: {kind}: {one_line(message)}", file=sys.stderr)


def _error(args, e: BaseException, text: str) -> int:
    """One line on stderr, or with --json one JSON object on stdout; exit status 2."""
    if getattr(args, "json", False):
        print(json.dumps({"error": text, "kind": type(e).__name__, "file": getattr(e, "file", None),
                          "layer": getattr(e, "layer", None)}))
    else:
        print(f"gateport: error: {text}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalStream(out), TerminalStream(err)  # no raw escape reaches the terminal
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv: list[str] | None) -> int:
    import warnings

    from .errors import GateportWarning

    _Parser.json_errors = "--json" in (sys.argv[1:] if argv is None else [str(a) for a in argv])
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning if not args.debug else warnings.showwarning
    warnings.simplefilter("ignore" if args.quiet else "always", GateportWarning)
    try:
        return COMMANDS[args.command](args)
    except GateportError as e:
        if args.debug:
            raise
        return _error(args, e, str(e))
    except BrokenPipeError:  # `gateport inspect ... | head`
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("gateport: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError, RecursionError) as e:  # disk full, permission, exhausted: one line
        if args.debug:
            raise
        text, inputs = one_line(_describe(e)), _input_named(args)
        if inputs and not (isinstance(e, OSError) and e.filename):  # the error names no file of its own
            text = f"{inputs}: {text}"
        return _error(args, e, text)
    except Exception as e:  # a case gateport did not foresee: still one line, never a traceback
        if args.debug:
            raise
        return _error(args, e, f"unexpected {type(e).__name__}: {one_line(e)} "
                               "(a gateport bug; --debug shows the traceback)")


def _input_named(args) -> str:
    """The command's input file(s), quoted, for a message that names no file of its own."""
    files = getattr(args, "model", None) or [getattr(args, "a", None), getattr(args, "b", None)]
    return ", ".join(quote(str(f)) for f in ([files] if isinstance(files, str) else files) if f)


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
