"""The red team's sixth round (tests/attacks_round6.py), a sample in CI: every case that once failed, and a few
of each class, in their own processes (round 5's runner: one line naming the file, no traceback, no raw
escape, bounded time and memory, inputs unchanged, exit 2 for a refusal); the mechanisms themselves are also
called in-process.

The full round: ``python tests/attacks_round6.py``.
"""
import json
import os

import h5py
import numpy as np
import pytest

import converters
from attacks_round3 import failures
from attacks import K3_GRU, read_keras, write_keras
from attacks_round4 import TINY
from attacks_round6 import WIDE, build, run_case5
from converters.errors import FormatError, GateportError, OutputError, UnsafeError

#: cases that failed before their fix (name patterns), and a few of the classes that did not
ONCE_FAILED = ("a torch folder named not UTF-8", "layer_names a scalar string (inspect)")
SAMPLE = ("a layer name a lone surrogate (inspect)", "units an integer of 5,000 digits (inspect)",
          "a hard link from a layer group to model_weights (inspect)", "10**9 leaves of shared lists (inspect)",
          "-o the torch folder holding the input --force")


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round6") / "cases"
    built = build(folder, groups=("unicode", "json", "h5attr", "pickle", "paths"))
    return folder, [c for c in built if c.name in ONCE_FAILED + SAMPLE]


def test_cases_that_once_failed_and_a_sample(battery):
    folder, cases = battery
    assert sorted(c.name for c in cases) == sorted(set(ONCE_FAILED + SAMPLE))
    found = failures(cases, run_case5, folder, timeout=120)
    assert not found, "\n".join(found)


def test_output_paths_must_be_utf8(tmp_path):
    """A folder named in bytes that are not UTF-8 was written, and its model.py could not load its own weights
    (safetensors opens paths as UTF-8 text): refused before any work, naming the path escaped."""
    bad = tmp_path / os.fsdecode(b"out\xe9")
    with pytest.raises(OutputError, match="UTF-8") as info:
        converters.convert(TINY, "torch", bad)
    assert "\\udce9" in str(info.value)
    assert not os.path.lexists(bad)


@pytest.mark.parametrize("value", [np.bytes_(b"lstm"), np.array([[b"input_1", b"lstm"]]), h5py.Empty("S4")],
                         ids=["scalar", "2-D", "empty dataspace"])
def test_name_lists_are_one_dimensional(tmp_path, value):
    """Keras writes layer_names / weight_names as 1-D arrays and iterates them when loading: a scalar was read as
    a one-name list."""
    import shutil

    src = tmp_path / "m.h5"
    shutil.copy(TINY, src)
    with h5py.File(src, "r+") as f:
        del f["model_weights"].attrs["layer_names"]
        f["model_weights"].attrs["layer_names"] = value
    with pytest.raises(FormatError, match="layer_names.*1-D") as info:
        converters.read(src)
    assert isinstance(info.value, GateportError) and "m.h5" in str(info.value)


@pytest.mark.parametrize("kind", ["references", "numbers"])
def test_name_lists_hold_text(tmp_path, kind):
    """layer_names holding HDF5 object references (or numbers) is refused saying names as text were expected (red
    team round 7: str() of a reference was taken as a name, 'found 0 saved layers')."""
    import shutil

    src = tmp_path / "m.h5"
    shutil.copy(TINY, src)
    with h5py.File(src, "r+") as f:
        group = f["model_weights"]
        count = len(group.attrs["layer_names"])
        del group.attrs["layer_names"]
        if kind == "references":
            group.attrs.create("layer_names", [group.ref] * count, dtype=h5py.ref_dtype)
        else:
            group.attrs["layer_names"] = np.arange(count)
    with pytest.raises(FormatError, match="attribute 'layer_names': expected a list of names as text, found a") as info:
        converters.read(src)
    assert "m.h5" in str(info.value) and "\n" not in str(info.value)


def test_names_are_normalized_from_a_bounded_prefix():
    """identifier() and comment() ran NFKD over the whole name: U+FDFA is 18 characters after it, so a 24 MB layer
    name took 1.5 GB before its 60 kept characters were cut."""
    from converters.sanitize import MAX_SCAN, comment, identifier

    wide = WIDE * (4 << 20)
    assert identifier(wide) == identifier(wide[:MAX_SCAN])
    assert comment(wide) == comment(wide[:200]) and comment(wide).endswith("...")
    import re
    import unicodedata

    def whole(text: str, limit: int = 120) -> str:  # comment() as it was: the whole text normalized
        safe = re.sub(r"[^A-Za-z0-9 _.,:;=+*/()\[\]<>@%&!?^|~$-]", "?",
                      unicodedata.normalize("NFKD", text).encode("ascii", "replace").decode("ascii"))
        return safe if len(safe) <= limit else safe[: limit - 3] + "..."

    for text in ("é" * 119, "é" * 60, "e" * 120, "e" * 121, "x" * 119 + WIDE, WIDE * 7, "a\u202eb" * 50):
        assert comment(text) == whole(text), text


def test_json_values_and_config_size_are_bounded(tmp_path):
    """60 MB of floats in a config (32 bytes of memory each once parsed) refused before json.loads; a 151 MB
    config.json (the Keras ceiling was 256 MB, 4 bytes of str per byte of text) refused for its size; the scan
    itself works in chunks: the same depth and counts as one pass, a backslash run crossing a chunk included."""
    from converters import safe_json

    with pytest.raises(FormatError, match="values"):
        safe_json.loads("[" + "0.5," * (safe_json.MAX_VALUES + 1) + "0.5]", what="t")
    text = json.dumps({"a": ["x\\\"[" * 3, [{"b": "]]]"}]]})
    chunk = safe_json._CHUNK
    try:
        expected = safe_json._scan(text)
        for size in (1, 2, 3, 7):
            safe_json._CHUNK = size
            assert safe_json._scan(text) == expected == (4, 4, 1)
    finally:
        safe_json._CHUNK = chunk
    members = read_keras(K3_GRU)
    cfg = members["config.json"].decode().replace('"units": 6', '"units": 6, "pad": "' + "x" * (70 << 20) + '"', 1)
    src = write_keras(tmp_path / "big.keras", {**members, "config.json": cfg.encode()})
    with pytest.raises(GateportError, match="more than the 67108864"):
        converters.read(src)


def test_long_names_are_refused_before_any_writer(tmp_path):
    """A 12 MB layer name was copied into every ONNX node and value it names: a 201 MB file, 2 GB to write."""
    from converters.budget import MAX_NAME

    members = read_keras(K3_GRU)
    for length, refused in ((MAX_NAME, False), (MAX_NAME + 1, True)):
        name = "n" * length
        src = write_keras(tmp_path / f"n{length}.keras",
                          {**members, "config.json": members["config.json"].replace(b'"encoder"', f'"{name}"'.encode())})
        if refused:
            with pytest.raises(UnsafeError, match=f"at most {MAX_NAME} characters") as info:
                converters.read(src)
            assert len(str(info.value)) < 400
        else:
            assert any(node.name == name for node in converters.read(src).nodes)


def test_hdf5_names_that_are_not_utf8(tmp_path):
    """A group named in bytes that are not UTF-8 failed inside h5py's iteration as a SystemError ('FastRLock.__exit__
    returned a result with an exception set'), and that was the user's one line: now what was expected."""
    import shutil

    src = tmp_path / "m.h5"
    shutil.copy(TINY, src)
    with h5py.File(src, "r+") as f:
        f["model_weights"].move(b"lstm", b"lstm\xff\xfe")
    with pytest.raises(FormatError, match="expected HDF5 object names that are UTF-8 text") as info:
        converters.read(src)
    assert "SystemError" not in str(info.value) and "m.h5" in str(info.value)


def test_onnx_names_that_are_not_utf8(tmp_path):
    """protobuf's upb parser gives a proto2 string that is not UTF-8 as bytes: a node so named was 'cannot read this
    node (TypeError: a bytes-like object is required)', a graph input so named was written as the name "b'...'"."""
    import onnx

    model = onnx.load(str(converters.convert(TINY, "onnx", tmp_path / "good.onnx")))
    next(n for n in model.graph.node if n.op_type == "LSTM").name = "Q" * 8
    model.graph.doc_string = "D" * 8
    data = model.SerializeToString()
    for field, blob in (("name", data.replace(b"Q" * 8, b"\xff\xfe" * 4, 1)),
                        ("doc_string", data.replace(b"D" * 8, b"\xc3" * 8, 1))):
        src = tmp_path / f"{field}.onnx"
        src.write_bytes(blob)
        with pytest.raises(FormatError, match=f"expected UTF-8 text in every name and string of the model, found "
                                              f"{field}") as info:
            converters.read(src)
        assert f"{field}.onnx" in str(info.value)


def test_an_integer_past_pythons_digit_limit_is_named():
    """json.loads refuses an integer of more than 4,300 digits with 'use sys.set_int_max_str_digits() to increase
    the limit', which reached the user's line: now what was expected."""
    from converters import safe_json

    with pytest.raises(FormatError, match="expected integers of at most 4300 digits") as info:
        safe_json.loads('{"units": ' + "9" * 5000 + "}", what="model config")
    assert "set_int_max_str_digits" not in str(info.value)
