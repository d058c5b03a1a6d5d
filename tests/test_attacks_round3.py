"""The red team's third round (tests/attacks_round3.py), a sample in CI: every case that once failed.

The full round: ``python tests/attacks_round3.py`` (same runner as attack_run.py, plus: no raw
control/bidi character on stderr, the refusal names its file, no file outside the input's folder
opened). Here the cases that failed before their fix run in their own processes, and the mechanisms
get unit checks: the .npz reader (never ``np.load``), the regular-file check before any open, the
terminal stream.
"""
import io
import os
import shutil
import zipfile

import numpy as np
import pytest

from attacks_round3 import build, failures, run_case3
from converters import npz_file
from converters.errors import FormatError, UnsafeError
from converters.readers.detect import check_regular
from converters.sanitize import TerminalStream, terminal

#: cases that failed before their fix (name patterns)
ONCE_FAILED = ("verify --inputs raw .npy member named like the key", "explain --inputs raw bytes member named like",
               "verify --expected raw out member named like", "verify --expected out .npy deflated",
               "verify --inputs a FIFO", "verify --expected a FIFO", "inspect --config a FIFO",
               "convert --config a FIFO", "diff --config-a a FIFO", "verify --inputs /dev/zero",
               "valid model named with escapes (-v convert")


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round3") / "cases"
    built = build(folder, groups=("npz", "fifo", "message"))
    yield folder, [c for c in built if any(p in c.name for p in ONCE_FAILED)]
    shutil.rmtree(folder.parent, ignore_errors=True)  # GBs of cases and outputs: not kept even when a test fails


def test_cases_that_once_failed(battery):
    folder, cases = battery
    assert all(any(p in c.name for c in cases) for p in ONCE_FAILED)
    found = failures(cases, run_case3, folder, timeout=60)
    assert not found, "\n".join(found)


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name), data)
    return path


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_npz_reader_refuses_what_np_load_would_read_unchecked(tmp_path):
    x = np.arange(6, dtype="f4").reshape(1, 3, 2)
    good = _zip(tmp_path / "good.npz", [("in:x.npy", _npy(x))])
    assert npz_file.headers(good) == {"in:x": ((1, 3, 2), np.dtype("f4"))}
    np.testing.assert_array_equal(npz_file.arrays(good, ["in:x"])["in:x"], x)
    import warnings
    warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
    for members, match in [([("in:x.npy", _npy(x)), ("in:x", b"raw")], "only NAME.npy"),
                           ([("in:x.npy", _npy(x)), ("in:x.npy", _npy(x))], "twice"),
                           ([("in:x.npy", _npy(np.array(["a"])))], "numeric dtype")]:
        bad = _zip(tmp_path / "bad.npz", members)
        with pytest.raises((FormatError, UnsafeError), match=match):
            npz_file.headers(bad)


def test_npz_members_are_budgeted(tmp_path):
    from converters import budget
    from converters.readers.bounded_zip import open_zip, read_member

    big = np.zeros((1, 1 << 19, 2), "f4")  # 4 MiB, a few KB deflated
    p = tmp_path / "big.npz"
    np.savez_compressed(p, **{"in:x": big})
    assert npz_file.headers(p)["in:x"][0] == big.shape
    spent = budget.Budget(file=str(p), limit=1 << 20)
    with pytest.raises(UnsafeError, match="budget"):
        with open_zip(str(p), str(p)) as z:
            read_member(z, "in:x.npy", spent, file=str(p))


def test_every_named_file_is_checked_regular_before_it_is_opened(tmp_path):
    fifo = tmp_path / "f.npz"
    os.mkfifo(fifo)
    for path, found in [(fifo, "a FIFO"), ("/dev/zero", "a device"), (tmp_path, "a folder")]:
        with pytest.raises(FormatError, match=found):
            check_regular(path, "an .npz of arrays")
    with pytest.raises(FormatError, match="a FIFO"):
        npz_file.headers(fifo)
    from converters.readers import read_architecture
    with pytest.raises(FormatError, match="a FIFO"):
        read_architecture(fifo)
    with pytest.raises(FileNotFoundError):
        check_regular(tmp_path / "missing.npz")


def test_terminal_stream_escapes_what_a_message_forgot():
    assert terminal("ok\tline\n") == "ok\tline\n"
    assert terminal("\x1b[2J\u202eevil\x07\r") == "\\x1b[2J\\u202eevil\\x07\\r"
    buf = io.StringIO()
    s = TerminalStream(buf)
    print("wrote /tmp/\x1b[31mred\u2066.onnx", file=s)
    assert buf.getvalue() == "wrote /tmp/\\x1b[31mred\\u2066.onnx\n"


def test_cli_output_lines_escape_paths(tmp_path, capsys):
    import shutil

    from attacks import K3
    from converters.cli import main

    src = tmp_path / "m\x1b[2J\u202e.keras"
    shutil.copy(K3, src)
    out = tmp_path / "o\x1b[31m\nx.onnx"
    assert main(["convert", str(src), "--to", "onnx", "-o", str(out), "-v"]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\u202e" not in captured.out + captured.err
    assert "\\x1b[31m\\nx.onnx" in captured.out  # ('[' makes it a glob: the batch table and progress lines)


def test_python_api_refuses_odd_arguments_with_gateport_errors(tmp_path):
    """The API's entry points answer every odd argument with a GateportError (what the CLI turns into
    one line), never a TypeError/OSError/AttributeError from deep inside."""
    import converters
    from attacks import MODELS
    from converters.errors import GateportError

    model = MODELS / "tiny_lstm.h5"
    fifo = tmp_path / "cfg.json"
    os.mkfifo(fifo)
    calls = [lambda: converters.read("a" * 5000 + ".h5"), lambda: converters.read("x\x00y.h5"),
             lambda: converters.read(os.fsencode(model)), lambda: converters.read(0),
             lambda: converters.read(MODELS / "k3_weights_only_lstm_hard_sigmoid.weights.h5", config=fifo),
             lambda: converters.convert(model, "onnx", None), lambda: converters.convert(model, "onnx", b"/tmp/x.onnx"),
             lambda: converters.convert(model, "onnx", tmp_path / "x.onnx", opset=True),
             lambda: converters.load_into(None, model)]
    for call in calls:
        with pytest.raises(GateportError):
            call()


def test_a_symbolic_feature_axis_is_refused_by_every_reader(tmp_path):
    """An ONNX input whose last (feature) axis is a dim_param let verify feed 6 features to weights made
    for 1 (the numpy reference failed as 'a gateport bug'): read_file refuses it for every format."""
    from attacks_round3 import _onnx_base
    from converters.errors import UnsupportedError
    from converters.readers import read_file

    m = _onnx_base(tmp_path)
    m.graph.input[0].type.tensor_type.shape.dim[-1].dim_param = "features"
    src = tmp_path / "symbolic_features.onnx"
    src.write_bytes(m.SerializeToString())
    with pytest.raises(UnsupportedError, match="fixed size on the last axis"):
        read_file(src)
