"""Checkpoint folders: many files in one command, a broken one reported, the others written."""
import json
import shutil
from pathlib import Path

import pytest

from converters.cli import main

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "fixtures" / "models" / "lstm_dense_activation.h5"


@pytest.fixture
def checkpoints(tmp_path):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    for epoch in range(1, 21):
        shutil.copy(CHECKPOINT, folder / f"weights.{epoch:02d}.hdf5")
    broken = folder / "weights.07.hdf5"
    broken.write_bytes(broken.read_bytes()[:3000])  # truncated mid-write
    return folder


@pytest.mark.parametrize("jobs", [1, 2])
def test_twenty_checkpoints_one_corrupted(checkpoints, tmp_path, capsys, jobs):
    out = tmp_path / "out"
    code = main(["convert", str(checkpoints / "*.hdf5"), "--to", "onnx", "-o", str(out), "-j", str(jobs)])
    captured = capsys.readouterr()
    assert code == 2
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 19 and "weights.07.onnx" not in written
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind
    assert "19 converted, 1 failed" in captured.out
    assert "weights.07.hdf5" in captured.out and "FAILED" in captured.out
    assert "20/20" in captured.err  # progress


def test_batch_json(checkpoints, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["convert", str(checkpoints / "weights.0*.hdf5"), "--to", "gates", "-o", str(out), "--json"])
    results = json.loads(capsys.readouterr().out)
    assert code == 2 and len(results) == 9
    assert [r["input"].endswith("weights.07.hdf5") for r in results if r["error"]] == [True]


def test_no_match_is_one_line(tmp_path, capsys):
    code = main(["convert", str(tmp_path / "*.h5"), "--to", "onnx", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no file matches" in err


def test_output_folder_that_is_a_file_is_one_line(checkpoints, tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    code = main(["convert", str(checkpoints / "*.hdf5"), "--to", "onnx", "-o", str(blocker)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot create the output folder" in err, err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("name", ["model[v2].h5", "run*1.h5", "what?.h5", "in\x1b[2J\n.h5"])
def test_one_file_whose_name_holds_glob_characters_is_that_file(tmp_path, capsys, name):
    """Red team round 9: a single model argument holding ``[``, ``*`` or ``?`` was a glob pattern even where it named
    a file: ``model[v2].h5`` matched model2.h5 or modelv.h5 ('no file matches'), and a name whose ``[`` has no ``]``
    matched itself as a batch of one, so ``-o out.onnx`` became a folder. A file that exists is that file: -o names
    the output; a pattern naming no file still expands."""
    src = tmp_path / name
    shutil.copy(ROOT / "fixtures" / "models" / "tiny_lstm.h5", src)
    out = tmp_path / "out.onnx"
    assert main(["-q", "convert", str(src), "--to", "onnx", "-o", str(out)]) == 0
    assert out.is_file()
    (tmp_path / "more").mkdir()
    shutil.copy(src, tmp_path / "more" / "a.h5")
    shutil.copy(src, tmp_path / "more" / "b.h5")
    assert main(["-q", "convert", str(tmp_path / "more" / "[ab].h5"), "--to", "gates", "-o", str(tmp_path / "g")]) == 0
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["a.gates", "b.gates"]
