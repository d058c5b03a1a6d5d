"""The import structure of ``converters/``: no import cycle, and the layers import downward only.

Every module's imports are parsed (``ast``, function-level imports included: a lazy import is still a
dependency); ``from . import x`` of a submodule counts as importing that submodule, ``from .x import y``
as importing ``x``. The layers, top to bottom: the package, ``cli`` and ``batch``; ``api``; ``verify`` and
the rest; ``readers/`` and ``writers/``, which never import each other nor anything above them.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "converters"
#: above the API: what may import ``converters.api``
ABOVE_API = {"converters", "converters.__main__", "converters.cli", "converters.batch"}
#: what readers/ and writers/ must not import (the layers above them)
TOP = {"converters", "converters.__main__", "converters.cli", "converters.api", "converters.verification"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """The converters modules ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.update(f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(GRAPH):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_parser_sees_lazy_and_relative_imports():
    assert "converters.readers" in GRAPH["converters.api"]  # module level
    assert "converters.writers.torch_code" in GRAPH["converters.targets"]  # inside a function
    assert "converters.readers.torch_state" in GRAPH["converters.readers"]  # from . import submodule


def test_no_import_cycle():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("layer,forbidden", [
    ("converters.readers", {"converters.writers"}),
    ("converters.writers", {"converters.readers"}),
])
def test_readers_and_writers_import_neither_each_other_nor_the_top(layer, forbidden):
    bad = {m: sorted(i for i in GRAPH[m] if i in TOP or any(i == f or i.startswith(f + ".") for f in forbidden))
           for m in GRAPH if m == layer or m.startswith(layer + ".")}
    assert not {m: i for m, i in bad.items() if i}


def test_nothing_below_the_api_imports_it_or_the_cli():
    bad = {m: sorted(GRAPH[m] & {"converters.api", "converters.cli"}) for m in GRAPH if m not in ABOVE_API}
    assert not {m: i for m, i in bad.items() if i}


@pytest.mark.parametrize("error", [AttributeError, KeyError, RuntimeError])
def test_a_bug_in_a_layer_builder_is_not_reported_as_a_malformed_file(monkeypatch, error):
    """``malformed()`` wraps the parsing of a file's data, not whole builders: an error of gateport's own
    code while building IR surfaces as itself (the CLI calls it a gateport bug), not as a bad file. KeyError
    and RuntimeError are also what h5py raises for a damaged file: the file-level wrapper let them through."""
    from converters.errors import FormatError
    from converters.readers import keras_build, read

    def broken_builder(call):
        raise error("a gateport bug")  # was: 'malformed layer config or weights (AttributeError ...)'

    monkeypatch.setitem(keras_build.HANDLERS, "LSTM", broken_builder)
    with pytest.raises(error, match="a gateport bug") as caught:
        read(ROOT.parent / "fixtures" / "models" / "tiny_lstm.h5")
    assert not isinstance(caught.value, FormatError)
