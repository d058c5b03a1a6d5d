"""README.zh-CN.md stays true: every `$ gateport ...` example in it runs and prints what it shows
(lines other than `...` must appear in the real output, in order), and the English README links it."""
import re
import shlex
from pathlib import Path

import pytest

from converters.cli import main

ROOT = Path(__file__).resolve().parent.parent
ZH = (ROOT / "README.zh-CN.md").read_text()


def examples():
    """(command, shown lines) for every fenced block that starts with `$ gateport`."""
    for block in re.findall(r"```\n(\$ gateport[^\n]*\n.*?)```", ZH, re.S):
        command, *shown = block.rstrip("\n").split("\n")
        yield command[2:], [line for line in shown if line.strip() and line.strip() != "..."]


@pytest.mark.parametrize("command,shown", list(examples()), ids=lambda v: v if isinstance(v, str) else "")
def test_chinese_readme_example_runs_and_prints_what_it_shows(command, shown, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    argv = [a.replace("build/", f"{tmp_path}/") for a in shlex.split(command)[1:]]
    assert main(argv) == 0
    out = capsys.readouterr().out.replace(f"{tmp_path}/", "build/")
    lines, at = out.splitlines(), 0
    for want in shown:
        found = next((i for i in range(at, len(lines)) if " ".join(lines[i].split()) == " ".join(want.split())), None)
        assert found is not None, f"{want!r} not printed by {command!r}:\n{out}"
        at = found + 1


def test_there_are_examples_and_the_readme_links_the_translation():
    assert len(list(examples())) >= 5
    assert "README.zh-CN.md" in (ROOT / "README.md").read_text()
