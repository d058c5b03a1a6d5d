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
