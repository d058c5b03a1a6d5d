"""Outputs are never destroyed or mixed: an input is never overwritten, a multi-file output is
committed whole or not at all, racing conversions cannot both win, and every output failure is one
line naming the path, with no temporary left behind."""
import errno
import os
import shutil
import threading
from pathlib import Path

import pytest

from converters import api, atomic, targets
from converters.cli import main
from converters.errors import OutputError

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
TINY = MODELS / "tiny_lstm.h5"
OTHER = MODELS / "autoencoder_bilstm.h5"
TARGETS = list(targets.TARGETS)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *expect):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("gateport: error: ") and "Traceback" not in err, err
    for text in expect:
        assert text in err, err


def snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` with its bytes (folders as None): any change shows."""
    return {p.relative_to(folder): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def no_temporaries(folder: Path):
    left = [p for p in folder.rglob(".*")]
    assert not left, f"temporaries left behind: {left}"


# -- an output that is an input ---------------------------------------------------------------------

def _same(d):
    return d / "m.h5"


def _symlink(d):
    (d / "link.h5").symlink_to(d / "m.h5")
    return d / "link.h5"


def _hardlink(d):
    os.link(d / "m.h5", d / "hard.h5")
    return d / "hard.h5"


def _dotdot(d):
    (d / "sub").mkdir()
    return d / "sub" / ".." / "m.h5"


def _linked_folder(d):
    (d / "elsewhere").symlink_to(d)
    return d / "elsewhere" / "m.h5"


@pytest.mark.parametrize("make_output", [_same, _symlink, _hardlink, _dotdot, _linked_folder])
@pytest.mark.parametrize("to", ["keras", "onnx"])
def test_output_that_is_the_input_is_refused(capsys, tmp_path, make_output, to):
    shutil.copy(TINY, tmp_path / "m.h5")
    output = make_output(tmp_path)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "convert", tmp_path / "m.h5", "--to", to, "-o", output, "--force")
    one_line_error(code, err, "is the input", "m.h5")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("output", [".", ".."])
def test_torch_folder_holding_the_input_is_refused(capsys, tmp_path, monkeypatch, output):
    (tmp_path / "work").mkdir()
    shutil.copy(TINY, tmp_path / "work" / "m.h5")
    monkeypatch.chdir(tmp_path / "work")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "convert", "m.h5", "--to", "torch", "-o", output, "--force")
    one_line_error(code, err, "is a folder holding the input m.h5")
    assert snapshot(tmp_path) == before


def test_torch_file_hard_linked_to_the_input_is_refused(capsys, tmp_path):
    shutil.copy(TINY, tmp_path / "m.h5")
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "m.h5", tmp_path / "out" / "model.safetensors")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "convert", tmp_path / "m.h5", "--to", "torch", "-o", tmp_path / "out", "--force")
    one_line_error(code, err, "model.safetensors is the input")
    assert snapshot(tmp_path) == before


def test_architecture_json_that_is_the_config_is_refused(capsys, tmp_path):
    """--to keras-weights -o X.weights.h5 also writes X.json: that must not be the --config read."""
    shutil.copy(MODELS / "weights_only_gru_lstm.json", tmp_path / "arch.json")
    shutil.copy(MODELS / "weights_only_gru_lstm_weights.h5", tmp_path / "w.h5")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "convert", tmp_path / "w.h5", "--config", tmp_path / "arch.json",
                       "--to", "keras-weights", "-o", tmp_path / "arch.weights.h5", "--force")
    one_line_error(code, err, "arch.json is the input")
    assert snapshot(tmp_path) == before


def test_batch_into_the_input_folder_is_refused(capsys, tmp_path, monkeypatch):
    for name in ("k3_masking_lstm.keras", "k3_lstm_hard_sigmoid.keras"):
        shutil.copy(MODELS / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "convert", "*.keras", "--to", "keras", "-o", ".", "--force")
    one_line_error(code, err, "is the input")
    assert snapshot(tmp_path) == before


def test_gate_extract_onto_the_input_is_refused(capsys, tmp_path):
    shutil.copy(TINY, tmp_path / "m.h5")
    before = snapshot(tmp_path)
    layer = api.inspect(tmp_path / "m.h5")["layers"][-1]["name"]
    code, _, err = run(capsys, "inspect", tmp_path / "m.h5", "--layer", layer, "--gate", "forget",
                       "-o", tmp_path / "m.h5", "--force")
    one_line_error(code, err, "is the input")
    assert snapshot(tmp_path) == before


# -- batch outputs that collide ---------------------------------------------------------------------

@pytest.mark.parametrize("second", ["x.h5", "X.h5", "x.hdf5"])
def test_batch_outputs_with_one_name_are_refused_before_writing(capsys, tmp_path, second):
    for folder, name in (("a", "x.h5"), ("b", second)):
        (tmp_path / folder).mkdir()
        shutil.copy(TINY, tmp_path / folder / name)
    code, _, err = run(capsys, "convert", tmp_path / "a" / "x.h5", tmp_path / "b" / second,
                       "--to", "onnx", "-o", tmp_path / "out", "--force")
    one_line_error(code, err, str(tmp_path / "a" / "x.h5"), str(tmp_path / "b" / second), "would both be written")
    assert not (tmp_path / "out").exists()


# -- two files committed together ------------------------------------------------------------------

def _fail_on_commit(monkeypatch, number):
    """Make the ``number``-th rename of a commit fail as a full disk would."""
    calls = []

    def failing(real):
        def wrapper(*args):
            calls.append(args)
            if len(calls) == number:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args)
        return wrapper

    monkeypatch.setattr(atomic, "_create", failing(atomic._create))
    monkeypatch.setattr(atomic, "_exchange", failing(atomic._exchange))
    return calls


@pytest.mark.parametrize("renameat2", [True, False])
@pytest.mark.parametrize("to, names", [
    ("keras-weights", ["out.weights.h5", "out.json"]),
    ("torch", ["out/model.py", "out/model.safetensors", "out/notes.txt"]),  # a folder with a file of the user
])
def test_failure_between_the_two_files_keeps_the_old_output(capsys, tmp_path, monkeypatch, to, names, renameat2):
    if not renameat2:  # the fallback: old aside, new in, old back
        monkeypatch.setattr(atomic, "_renameat2_fn", None)
    output = tmp_path / ("out" if to == "torch" else "out.weights.h5")
    assert run(capsys, "convert", TINY, "--to", to, "-o", output)[0] == 0
    if to == "torch":
        (output / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    calls = _fail_on_commit(monkeypatch, 2)
    code, _, err = run(capsys, "convert", OTHER, "--to", to, "-o", output, "--force")
    one_line_error(code, err, "No space left on device", str(output))
    assert len(calls) == 3  # the first file committed, the second failed, the first put back
    assert snapshot(tmp_path) == before
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(names)
    no_temporaries(tmp_path)


@pytest.mark.parametrize("to", ["keras-weights", "torch"])
def test_failure_between_the_two_files_leaves_no_new_output(capsys, tmp_path, monkeypatch, to):
    output = tmp_path / ("out" if to == "torch" else "out.weights.h5")
    if to == "torch":
        output.mkdir()
        (output / "notes.txt").write_text("mine")  # so the two files are committed one by one
    before = snapshot(tmp_path)
    _fail_on_commit(monkeypatch, 2)
    code, _, err = run(capsys, "convert", TINY, "--to", to, "-o", output)
    one_line_error(code, err, "No space left on device")
    assert snapshot(tmp_path) == before
    no_temporaries(tmp_path)


def test_failing_second_write_of_torch_keeps_the_old_folder(capsys, tmp_path, monkeypatch):
    output = tmp_path / "out"
    assert run(capsys, "convert", TINY, "--to", "torch", "-o", output)[0] == 0
    before = snapshot(tmp_path)

    def full(self, *args, **kwargs):  # model.py is written after model.safetensors
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", full)
    code, _, err = run(capsys, "convert", OTHER, "--to", "torch", "-o", output, "--force")
    one_line_error(code, err, f"{output}: cannot write: No space left on device")
    assert snapshot(tmp_path) == before
    no_temporaries(tmp_path)


@pytest.mark.parametrize("renameat2", [True, False])
def test_forced_torch_folder_is_swapped_whole(capsys, tmp_path, monkeypatch, renameat2):
    if not renameat2:
        monkeypatch.setattr(atomic, "_renameat2_fn", None)
    output = tmp_path / "out"
    assert run(capsys, "convert", TINY, "--to", "torch", "-o", output)[0] == 0
    old = snapshot(output)
    assert run(capsys, "convert", OTHER, "--to", "torch", "-o", output, "--force")[0] == 0
    new = snapshot(output)
    assert set(new) == set(old) and all(new[k] != old[k] for k in old)
    assert new[Path("model.safetensors")] == written(tmp_path / "ref", "torch", "out", OTHER)["model.safetensors"]
    no_temporaries(tmp_path)


def test_torch_into_an_existing_empty_folder_needs_no_force(capsys, tmp_path):
    (tmp_path / "out" / "__pycache__").mkdir(parents=True)
    assert run(capsys, "convert", TINY, "--to", "torch", "-o", tmp_path / "out")[0] == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.py", "model.safetensors"]
    no_temporaries(tmp_path)


def test_torch_into_the_working_folder_keeps_the_folder(capsys, tmp_path, monkeypatch):
    """``cd out && gateport convert ../m.h5 -o . --force``: the shell's folder must stay the folder."""
    shutil.copy(TINY, tmp_path / "m.h5")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")
    assert run(capsys, "convert", "../m.h5", "--to", "torch", "-o", ".")[0] == 0
    inode = os.stat(".").st_ino
    assert run(capsys, "convert", OTHER, "--to", "torch", "-o", ".", "--force")[0] == 0
    assert os.stat(".").st_ino == inode and os.path.samefile(".", tmp_path / "out")
    assert sorted(os.listdir(".")) == ["model.py", "model.safetensors"]
    no_temporaries(tmp_path)


# -- racing conversions ------------------------------------------------------------------------------

@pytest.mark.parametrize("lock", [True, False])
@pytest.mark.parametrize("renameat2", [True, False])
@pytest.mark.parametrize("to, name", [("gates", "out.gates"), ("torch", "out"),
                                      ("keras-weights", "out.weights.h5")])
def test_two_racing_conversions_exactly_one_wins(tmp_path, monkeypatch, lock, renameat2, to, name):
    """Both pass the early "exists?" check, then commit at once: one succeeds, one gets "exists".
    Also with the folder lock and renameat2 taken away (the no-overwrite renames alone)."""
    barrier = threading.Barrier(2, timeout=30)
    real_locked = atomic._locked

    def meet_then_lock(folder):
        barrier.wait()
        return real_locked(folder) if lock else _unlocked()

    monkeypatch.setattr(atomic, "_locked", meet_then_lock)
    if not renameat2:
        monkeypatch.setattr(atomic, "_renameat2_fn", None)
    results = []

    def convert(source):
        try:
            api.convert(source, to, tmp_path / name)
            results.append(("ok", source))
        except OutputError as e:
            results.append((str(e), source))

    threads = [threading.Thread(target=convert, args=(s,)) for s in (TINY, OTHER)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    outcomes = sorted(r for r, _ in results)
    assert len(outcomes) == 2 and outcomes[1] == "ok" and "exists; pass --force" in outcomes[0], outcomes
    winner = next(s for r, s in results if r == "ok")
    assert written(tmp_path, to, name) == written(tmp_path / "ref", to, name, winner)  # whole, not mixed
    no_temporaries(tmp_path)


def written(folder: Path, to: str, name: str, source: Path | None = None) -> dict:
    """The files of output ``name`` in ``folder`` (converting ``source`` there first): their bytes,
    the HDF5 file by size (libhdf5 stamps it)."""
    if source is not None:
        folder.mkdir()
        api.convert(source, to, folder / name)
    paths = api.output_paths(to, folder / name)
    return {p.name: len(p.read_bytes()) if p.suffix == ".h5" else p.read_bytes()
            for p in paths if p.is_file()}


class _unlocked:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# -- one line for every failure to write ---------------------------------------------------------------

@pytest.mark.parametrize("output, expect", [
    ("", "expected an output path, found an empty one"),
    ("/proc/x.onnx", "/proc/x.onnx"),
    ("{tmp}/missing/x.onnx", "does not exist"),
    ("/dev/null", "not a regular file"),
    ("{tmp}", "is a folder"),
])
def test_unwritable_output_is_one_line(capsys, tmp_path, output, expect):
    output = output.format(tmp=tmp_path)
    code, _, err = run(capsys, "convert", TINY, "--to", "onnx", "-o", output, "--force")
    one_line_error(code, err, expect)
    no_temporaries(tmp_path)


def test_empty_output_folder_in_batch_is_one_line(capsys, tmp_path):
    shutil.copy(TINY, tmp_path / "a.h5")
    code, _, err = run(capsys, "convert", tmp_path / "*.h5", "--to", "onnx", "-o", "")
    one_line_error(code, err, "found an empty one")


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES, errno.EROFS])
@pytest.mark.parametrize("to", TARGETS)
def test_commit_error_is_one_line_naming_the_output(capsys, tmp_path, monkeypatch, error, to):
    """The rename fails (disk full, permission, read-only): one line, nothing left behind."""
    row = targets.TARGETS[to]
    output = tmp_path / ("out" + (row.suffix if row.suffix_required else ""))  # Keras opens by the suffix

    def failing_commit(pairs, force):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(atomic, "_commit", failing_commit)
    code, _, err = run(capsys, "convert", TINY, "--to", to, "-o", output)
    one_line_error(code, err, str(output), os.strerror(error))
    assert not any(tmp_path.iterdir())


def test_disk_full_during_a_write_is_one_line(capsys, tmp_path, monkeypatch):
    from converters import safetensors_io

    def full(path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors_io, "save", full)
    code, _, err = run(capsys, "convert", TINY, "--to", "gates", "-o", tmp_path / "m.gates")
    one_line_error(code, err, f"{tmp_path / 'm.gates'}: cannot write: No space left on device")
    assert not any(tmp_path.iterdir())


FILE_SIZE_LIMIT = """
import resource, signal, sys
from converters.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
for to, output in zip(sys.argv[2::2], sys.argv[3::2]):
    main(["convert", sys.argv[1], "--to", to, "-o", output, "--force"])
"""


def test_real_write_failure_in_every_writer_keeps_the_old_outputs(capsys, tmp_path):
    """Every writer (numpy, safetensors, zip, protobuf, libhdf5) hits a real write error (a file size
    limit, as a full disk would): one line per target, the previous outputs untouched, no temporaries."""
    import subprocess
    import sys

    outputs = {to: tmp_path / (f"out_{to}" + (targets.TARGETS[to].suffix if targets.TARGETS[to].suffix_required else ""))
               for to in TARGETS}
    for to, output in outputs.items():
        assert run(capsys, "convert", TINY, "--to", to, "-o", output)[0] == 0
    before = snapshot(tmp_path)
    argv = [str(a) for pair in outputs.items() for a in pair]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"}
    proc = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT, str(OTHER), *argv], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.splitlines()
    assert lines == [f"gateport: error: {outputs[to]}: cannot write: File too large" for to in TARGETS], proc.stderr
    assert snapshot(tmp_path) == before
    no_temporaries(tmp_path)
