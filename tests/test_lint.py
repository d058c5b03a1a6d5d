"""The generated code passes the linter the project itself passes (`ruff check --select E9,F`: syntax,
unused imports and variables, undefined names), for every fixture, PyTorch and numpy targets."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from converters.api import convert

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = json.loads((ROOT / "fixtures" / "fixtures.json").read_text())


@pytest.mark.parametrize("target", ["torch", "numpy"])
def test_generated_code_passes_the_projects_linter(target, tmp_path):
    folders = []
    for fx in FIXTURES:
        out = tmp_path / fx["name"]
        convert(ROOT / fx["file"], target, out, config=ROOT / fx["config"] if fx.get("config") else None)
        folders.append(str(out / "model.py"))
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E9,F",
                        "--output-format", "concise", *folders], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
