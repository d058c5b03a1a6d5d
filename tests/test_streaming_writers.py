"""The streaming writers write what the whole-model writers wrote, byte for byte.

``onnx_graph.write`` streams each initializer from its array after a weight-free graph; the file
must equal ``deployable(...).SerializeToString()`` (the model built whole in protobuf) on every
fixture. ``safetensors_io.save`` writes each tensor from its array; the IR file and the PyTorch
weights read back bit-identical through the safetensors library.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

from converters import ir_file, read, safetensors_io  # noqa: E402
from converters.errors import GateportError  # noqa: E402
from converters.writers import onnx_graph, torch_code  # noqa: E402
from converters.writers.onnx_builder import Blocks  # noqa: E402

onnx = pytest.importorskip("onnx")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = json.loads((ROOT / "fixtures" / "fixtures.json").read_text())


def fixture_models():
    """``(name, IR)`` of every fixture gateport reads whole."""
    for fx in FIXTURES:
        config = ROOT / fx["config"] if fx.get("config") else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield fx["name"], read(ROOT / fx["file"], config)
        except GateportError:
            continue


@pytest.fixture(scope="module")
def models():
    found = list(fixture_models())
    assert len(found) >= 40, [name for name, _ in found]
    return found


def test_onnx_file_is_the_whole_models_serialization(models, tmp_path):
    for name, ir in models:
        path = onnx_graph.write(ir, tmp_path / f"{name}.onnx")
        assert path.read_bytes() == onnx_graph.deployable(ir).SerializeToString(), name


def test_onnx_options_streamed_alike(models, tmp_path):
    """Renamed inputs/outputs and a fixed batch axis change the graph, not the streaming."""
    name, ir = next((n, m) for n, m in models if n == "embedding_mask_bigru")
    options = dict(dynamic=("time",), input_names=["tokens"], output_names=["scores"])
    path = onnx_graph.write(ir, tmp_path / "m.onnx", **options)
    expected = onnx_graph.deployable(ir, onnx_graph.DEFAULT_OPSET, **options)
    assert path.read_bytes() == expected.SerializeToString()
    onnx.checker.check_model(str(path), full_check=True)
    assert [v.name for v in onnx.load(str(path)).graph.input] == ["tokens"]


def test_external_data_holds_the_same_tensors(models, tmp_path):
    name, ir = next((n, m) for n, m in models if n == "bidir_stacked_concat")
    path = onnx_graph.write(ir, tmp_path / "m.onnx", external_data_above=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    onnx.checker.check_model(str(path), full_check=True)
    loaded, whole = onnx.load(str(path)), onnx_graph.deployable(ir)
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in loaded.graph.initializer}
    assert list(arrays) == [t.name for t in whole.graph.initializer]
    for t in whole.graph.initializer:
        expected = onnx.numpy_helper.to_array(t)
        assert arrays[t.name].dtype == expected.dtype and arrays[t.name].tobytes() == expected.tobytes()
    for graph in (loaded.graph, whole.graph):
        graph.ClearField("initializer")
    assert loaded == whole


def test_failed_stream_leaves_nothing(models, tmp_path, monkeypatch):
    """The output is atomic: an error while streaming the weights leaves no file and no temporary."""
    _, ir = models[0]

    def broken(f, weight):
        raise OSError("disk full")

    monkeypatch.setattr(onnx_graph, "_write_data", broken)
    with pytest.raises(Exception, match="disk full"):
        onnx_graph.write(ir, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_ir_file_and_torch_weights_read_back_bit_identical(models, tmp_path):
    for name, ir in models[::3]:
        gates = ir_file.save(ir, tmp_path / f"{name}.gates")
        stored = safetensors_numpy.load_file(str(gates))
        expected = {f"{n.name}/{k}": v for n in ir.nodes for k, v in n.weights.items()}
        _assert_same_arrays(stored, expected, name)
        folder = torch_code.write(ir, tmp_path / name)
        _assert_same_arrays(safetensors_numpy.load_file(str(folder / "model.safetensors")),
                            torch_code.state_dict(ir), name)


def _assert_same_arrays(got: dict, expected: dict, name: str) -> None:
    assert sorted(got) == sorted(expected), name
    for k, v in expected.items():
        v = np.asarray(v)
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and got[k].tobytes() == v.tobytes(), (name, k)


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.float32).reshape(3, 4).T,  # a transposed view
    np.arange(6, dtype=">i8").reshape(2, 3),  # big-endian
    np.zeros((0, 3), np.float32),
    np.array([True, False]),
    np.float64(2.5) * np.ones(()),
], ids=["transposed", "big_endian", "empty", "bool", "scalar"])
def test_safetensors_save_writes_each_layout(array, tmp_path):
    safetensors_io.save(tmp_path / "t.st", {"a": array, "b": np.ones(3, np.float32)})
    tensors, _ = safetensors_io.load(tmp_path / "t.st")
    assert tensors["a"].shape == array.shape and np.array_equal(tensors["a"], array)
    assert tensors["a"].dtype == array.dtype.newbyteorder("=")
    assert np.array_equal(safetensors_numpy.load_file(str(tmp_path / "t.st"))["a"], array)


def test_blocks_are_their_concatenation():
    parts = [np.full((2, 3), k, np.float64) for k in range(4)]
    b = Blocks(parts, (2, 4, 3))
    assert b.nbytes == 96 and b.array().dtype == np.float32
    assert np.array_equal(b.array(), np.concatenate(parts).astype(np.float32).reshape(2, 4, 3))
    with pytest.raises(ValueError, match="cannot fill"):
        Blocks(parts, (2, 4, 4))


# -- the .keras weights store read in place ------------------------------------------------------------
KERAS_FILE = ROOT / "fixtures" / "models" / "k3_lstm_hard_sigmoid.keras"


def _rezip(src: Path, dst: Path, compression: int, damage: bool = False) -> Path:
    """``src`` rewritten with its members ``compression``; ``damage`` flips one byte of the weights
    store after the archive is written (its CRC then no longer matches)."""
    import zipfile

    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", compression) as out:
        for info in z.infolist():
            out.writestr(info.filename, z.read(info))
    if damage:
        data = bytearray(dst.read_bytes())
        at = data.index(b"\x89HDF") + 600
        data[at] ^= 0xFF
        dst.write_bytes(bytes(data))
    return dst


def test_stored_and_compressed_weights_read_alike(tmp_path):
    import zipfile

    stored = read(_rezip(KERAS_FILE, tmp_path / "stored.keras", zipfile.ZIP_STORED))
    packed = read(_rezip(KERAS_FILE, tmp_path / "packed.keras", zipfile.ZIP_DEFLATED))
    assert ir_file.manifest(stored)["nodes"] == ir_file.manifest(packed)["nodes"]
    for a, b in zip(stored.nodes, packed.nodes):
        for k in a.weights:
            assert a.weights[k].tobytes() == b.weights[k].tobytes(), k


def test_damaged_stored_weights_are_refused(tmp_path):
    import zipfile

    from converters.errors import FormatError

    bad = _rezip(KERAS_FILE, tmp_path / "bad.keras", zipfile.ZIP_STORED, damage=True)
    with pytest.raises(FormatError, match="bad CRC-32"):
        read(bad)


def test_fast_crc_gives_zlib_values_chunk_by_chunk():
    """ISA-L's CRC-32 (used for large members when installed) chains across chunks to zlib's value."""
    import zlib

    from converters.readers import bounded_zip

    pytest.importorskip("isal")
    fast = bounded_zip.crc32_function(bounded_zip.FAST_CRC_FROM)
    assert fast is not zlib.crc32 and bounded_zip.crc32_function(bounded_zip.FAST_CRC_FROM - 1) is zlib.crc32
    data = np.random.default_rng(0).integers(0, 256, 3 * (1 << 20) + 17, dtype=np.uint8).tobytes()
    found = 0
    for start in range(0, len(data), 1 << 20):
        found = fast(memoryview(data)[start:start + (1 << 20)], found)
    assert found == zlib.crc32(data)


@pytest.mark.parametrize("damage", [False, True])
def test_large_member_crc_path_reads_and_refuses(tmp_path, monkeypatch, damage):
    """With every member taken as large (ISA-L's CRC where installed), a stored archive reads as before
    and a damaged one is refused."""
    import zipfile

    from converters.errors import FormatError
    from converters.readers import bounded_zip

    expected = read(KERAS_FILE)
    monkeypatch.setattr(bounded_zip, "FAST_CRC_FROM", 0)
    path = _rezip(KERAS_FILE, tmp_path / "m.keras", zipfile.ZIP_STORED, damage=damage)
    if damage:
        with pytest.raises(FormatError, match="bad CRC-32"):
            read(path)
        return
    model = read(path)
    for a, b in zip(expected.nodes, model.nodes):
        for k in a.weights:
            assert a.weights[k].tobytes() == b.weights[k].tobytes(), k
