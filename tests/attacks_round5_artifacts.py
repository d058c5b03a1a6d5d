"""Hostile inputs, red team round 5: ``verify --artifact`` files that make a huge tensor or run for ever.

Round 4 bounded what an artifact declares (file sizes, a Loop, a ConstantOfShape / Expand to a constant shape);
an ONNX graph whose constants make a huge tensor only at run time still went to onnxruntime in gateport's own
process, and a ``.keras`` config asking for a huge layer to Keras: a Tile with big repeats, a Range to a
computed limit, a Resize by big scales, a Pad by big pads, an Expand to a computed shape, a long MatMul chain,
an LSTM of 14,000 units. Each of those is about 3 GiB (under onnxruntime's own 4 GiB cap per tensor, above
the child's memory ceiling of :func:`converters.budget.child_limit`), and must be refused in one line naming
the file, exit 2, no traceback, the whole run (the child included) under 1 GiB of peak memory
(round 3's runner, :func:`attacks_round4.run_case4`). gateport's own artifacts go through the same child and
still verify.

Classes: ``artifact5`` (the hostile artifacts), ``artifact5_good`` (the written artifacts, expected ok).

``python tests/attacks_round5_artifacts.py`` runs them all and prints one line per case.
"""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from attacks import Case
from attacks_round3 import _case
from attacks_round4 import TINY, _onnx_like_tiny, _written, run_case4

ROOT = Path(__file__).resolve().parent.parent
#: TINY's stored inputs and outputs: the good artifacts are compared with an independent reference.
STORED = ROOT / "fixtures" / "expected" / "tiny_lstm.npz"
#: --timeout of the MatMul chain (it runs minutes unbounded).
CHAIN_TIMEOUT = 4
#: Elements of a float32 tensor of about 3 GiB (TINY's input is (batch 2, 3, 1)).
BIG = 800_000_000


def _const(name: str, values, dtype) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, dtype), name)


def onnx_bombs(folder: Path) -> dict[str, Path]:
    """Every hostile ONNX artifact by label (``x``: TINY's input (batch, 3, 1); ``y``: its output (batch, 3))."""
    from onnx import helper

    def out(node_output: str) -> list:  # (batch, 3): the output's shape whatever the bomb made
        return [helper.make_node("ReduceSum", [node_output], ["s"], keepdims=0),
                helper.make_node("ReduceMean", ["x"], ["m"], axes=[2], keepdims=0),
                helper.make_node("Add", ["m", "s"], ["y"])]

    zero_sum = [helper.make_node("ReduceSum", ["x"], ["xs"], keepdims=0), helper.make_node("Mul", ["xs", "zero"], ["z"])]
    bombs = {
        # 2 x 12,288 x 32,768 float32 from the input: 3 GiB
        "a Tile of the input by (1, 4096, 32768)": [
            [helper.make_node("Tile", ["x", "reps"], ["big"]), *out("big")],
            [_const("reps", [1, 1 << 12, 1 << 15], np.int64)]],
        # a constant tiled to 4 GiB: shape inference declares it, refused before any runtime
        "a Tile of a constant to 4 GiB": [
            [helper.make_node("Tile", ["one", "reps"], ["big"]), *out("big")],
            [_const("one", np.ones((1, 1, 1)), np.float32), _const("reps", [1 << 10, 1 << 10, 1 << 10], np.int64)]],
        # Range(0, 8e8 + 0 * sum(x), 1): its length known only at run time
        "a Range to a computed limit of 8e8": [
            [*zero_sum, helper.make_node("Add", ["z", "limit"], ["lim"]),
             helper.make_node("Range", ["start", "lim", "delta"], ["big"]), *out("big")],
            [_const("zero", 0, np.float32), _const("limit", BIG, np.float32), _const("start", 0, np.float32),
             _const("delta", 1, np.float32)]],
        # sum(x) expanded to Shape(x) * (1, 4096, 32768)
        "an Expand to a computed shape": [
            [helper.make_node("ReduceSum", ["x"], ["one"], keepdims=1), helper.make_node("Shape", ["x"], ["sh"]),
             helper.make_node("Mul", ["sh", "k"], ["shape"]), helper.make_node("Expand", ["one", "shape"], ["big"]),
             *out("big")],
            [_const("k", [1, 1 << 12, 1 << 15], np.int64)]],
        # nearest-neighbour Resize by (1, 4096, 32768)
        "a Resize by scales (1, 4096, 32768)": [
            [helper.make_node("Resize", ["x", "", "scales"], ["big"], mode="nearest"), *out("big")],
            [_const("scales", [1, 1 << 12, 1 << 15], np.float32)]],
        # 400 million zeros padded after the time axis
        "a Pad of 4e8 steps": [
            [helper.make_node("Pad", ["x", "pads"], ["big"]), *out("big")],
            [_const("pads", [0, 0, 0, 0, BIG // 2, 0], np.int64)]],
        # (1024, 1, 1) x (1, 1024, 1) x (1, 1, 768) ones broadcast by two Muls: 3 GiB from three 4 KB constants
        "a chain of Muls broadcasting to 3 GiB": [
            [helper.make_node("ConstantOfShape", [f"d{k}"], [f"o{k}"]) for k in range(3)] + [
                helper.make_node("Mul", ["o0", "o1"], ["o01"]), helper.make_node("Mul", ["o01", "o2"], ["big"]),
                *out("big")],
            [_const("d0", [1024, 1, 1], np.int64), _const("d1", [1, 1024, 1], np.int64),
             _const("d2", [1, 1, 768], np.int64)]],
    }
    # a 2048 x 2048 matrix multiplied by itself 200 times (1.7 TFLOP: minutes on one thread)
    chain = [*zero_sum, helper.make_node("Expand", ["z", "square"], ["m0"])]
    for i in range(200):
        chain.append(helper.make_node("MatMul", [f"m{i}", f"m{i}"], [f"m{i + 1}"]))
    bombs["a chain of 200 MatMuls of 2048 x 2048"] = [
        [*chain, *out("m200")], [_const("zero", 0, np.float32), _const("square", [2048, 2048], np.int64)]]
    return {label: _onnx_like_tiny(folder, f"bomb{k}.onnx", nodes, inits)
            for k, (label, (nodes, inits)) in enumerate(bombs.items())}


def keras_bomb(folder: Path) -> Path:
    """gateport's .keras of TINY with its LSTM grown to 14,000 units: Keras builds a 14,000 x 56,000 recurrent
    kernel (3 GiB) before it loads a weight."""
    good = _written(folder, "keras")
    path = folder / "lstm_14000_units.keras"
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "LSTM":
            layer["config"]["units"] = 14_000
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def build(folder: Path) -> list[Case]:
    """Every case: the hostile artifacts (refused), then the good ones (verified through the same child)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    for label, path in onnx_bombs(folder).items():
        extra = ["--timeout", str(CHAIN_TIMEOUT)] if "MatMul" in label else []
        cases.append(_case("artifact5", f"verify --artifact onnx=<{label}>",
                           ["verify", TINY, "--to", "onnx", "--artifact", f"onnx={path}", *extra], path))
    bomb = keras_bomb(folder)
    cases.append(_case("artifact5", "verify --artifact keras=<an LSTM of 14,000 units>",
                       ["verify", TINY, "--to", "keras", "--artifact", f"keras={bomb}"], bomb))
    for target in ("onnx", "keras"):
        good = _written(folder, target)
        cases.append(_case("artifact5_good", f"verify --artifact {target}=<the written artifact>",
                           ["verify", TINY, "--to", target, "--artifact", f"{target}={good}", "--inputs", STORED,
                            "--expected", STORED, "--json"], good, expect="any", named=False))
    return cases


def main() -> int:
    import tempfile

    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cases"
        for case in build(folder):
            problems, measured = run_case4(case, Path(tmp) / "MARKER", timeout=120)
            failed += bool(problems)
            print(f"{'FAIL' if problems else 'ok  '} {case.name}: exit {measured.get('exit')}, "
                  f"{measured.get('rss_mib')} MiB, {measured.get('seconds')} s {'; '.join(problems)}", flush=True)
            print(f"     {measured.get('stderr', '')[:200]!r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
