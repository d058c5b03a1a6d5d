"""The target table (converters/targets.py) is what the CLI, the API and batch read: one row per target."""
import subprocess
import sys
from pathlib import Path

import pytest

from converters import api, batch, targets
from converters.cli import build_parser, check_suffix
from converters.errors import UsageError
from converters.verification import TARGETS as VERIFY_TARGETS

ROOT = Path(__file__).resolve().parent.parent


def test_the_cli_offers_every_row_and_only_those():
    convert = build_parser()._subparsers._group_actions[0].choices["convert"]
    to = next(a for a in convert._actions if a.dest == "to")
    assert list(to.choices) == list(targets.TARGETS)
    assert list(VERIFY_TARGETS) == [name for name, t in targets.TARGETS.items() if t.run is not None]


@pytest.mark.parametrize("name", targets.TARGETS)
def test_each_row_names_its_outputs(name, tmp_path):
    """The batch output name, the suffix check and the paths a conversion may write come from the row."""
    row = targets.TARGETS[name]
    out = batch.output_for("ckpt/weights.07.hdf5", name, tmp_path)
    assert out == tmp_path / ("weights.07" + row.suffix)
    check_suffix(name, str(out))  # the name batch gives is one the CLI accepts
    paths = api.output_paths(name, out)
    assert paths[0] == out and len(paths) == len(set(paths))
    if row.kind == "folder":
        assert row.folder_files() and all(p.parent == out for p in paths[1:])
        with pytest.raises(UsageError, match="without a model-file suffix"):
            check_suffix(name, str(tmp_path / "out.onnx"))
    else:
        assert row.suffix and row.folder_files() is None
        with pytest.raises(UsageError, match=f"ending in {row.suffix}"):
            check_suffix(name, str(tmp_path / "out.txt"))
    if row.run is not None:
        assert row.build is not None and row.label


def test_an_unknown_target_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown target 'tflite'; expected one of gates, torch"):
        targets.get("tflite")


def test_the_table_imports_no_framework():
    """Rows hold functions that import their writer or runtime when called."""
    code = ("import sys, converters.targets, converters.cli; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("name", [n for n, t in targets.TARGETS.items() if t.suffix_required])
def test_a_name_keras_would_not_open_is_refused_before_any_work(name, tmp_path):
    """keras.models.load_model opens only a .keras file and load_weights only .weights.h5, by the name's
    ending (keras/src/saving/saving_api.py): an output without it is refused by the CLI and the API alike."""
    from converters.cli import main

    source = Path(__file__).resolve().parent.parent / "fixtures" / "models" / "k3_lstm_hard_sigmoid.keras"
    out = tmp_path / "out keras"
    with pytest.raises(UsageError, match=f"ending in {targets.TARGETS[name].suffix}"):
        check_suffix(name, str(out))
    with pytest.raises(UsageError, match="Keras opens the file by that ending"):
        api.convert(source, name, out)
    assert main(["convert", str(source), "--to", name, "-o", str(out)]) == 2
    assert not out.exists() and list(tmp_path.iterdir()) == []
