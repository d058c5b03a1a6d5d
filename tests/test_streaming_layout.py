"""The IR keeps the arrays read (a Keras kernel's gates are views of it) and the writers lay each one out
while writing it, block by block: the bytes are those of the whole array copied first, and writing adds
no copy of the weights (numpy's allocations are traced by tracemalloc)."""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest

from converters import ir_file, safetensors_io
from converters.ir import Model, Node, TensorSpec, contiguous, joined_rows, set_recurrent_weights
from converters.writers import onnx_graph, torch_code, torch_state

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("array", [
    RNG.standard_normal((300, 1100)).astype(np.float32).T,  # transposed, tiled (above the tiling size)
    RNG.standard_normal((900, 4 * 300)).astype(np.float32)[:, 300:600].T,  # one gate of a Keras kernel
    RNG.standard_normal((5, 7)).T,  # small float64, transposed
    RNG.standard_normal((64, 2000))[:, ::3],  # strided columns
    np.arange(24, dtype=">i4").reshape(4, 6).T,  # big-endian
    np.zeros((0, 5), np.float32).T,
    RNG.standard_normal((3, 4, 5)).astype(np.float32).transpose(2, 0, 1),  # 3-D
], ids=["transposed", "keras_gate", "small", "strided", "big_endian", "empty", "3d"])
def test_write_array_gives_the_copied_bytes(array):
    for dtype in [None, np.float32] if array.dtype.kind == "f" else [None]:  # as is, and cast as ONNX stores it
        f = io.BytesIO()
        safetensors_io.write_array(f, array, dtype)
        expected = np.ascontiguousarray(array, dtype=np.dtype(dtype or array.dtype).newbyteorder("<"))
        assert f.getvalue() == expected.tobytes()


def test_blocked_transpose_is_exact_at_every_tile_edge():
    a = RNG.standard_normal((1037, 523)).astype(np.float32)
    assert np.array_equal(contiguous(a.T), np.ascontiguousarray(a.T))
    out = np.empty((523, 1037), np.float64)
    from converters.ir import copy_2d

    copy_2d(out, a.T)
    assert np.array_equal(out, a.T.astype(np.float64))


@pytest.mark.parametrize("shape", [(1037, 523), (1024, 512), (300, 700), (17, 5000), (5000, 20), (4096, 20)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int8])
def test_tiled_copy_is_bit_exact(shape, dtype):
    """copy_2d of a transposed view gives the same bits as numpy's copy, NaN payloads and signed zeros
    included, at every edge of the tiles."""
    from converters.ir import copy_2d

    bits = RNG.integers(0, 256, size=(shape[0], shape[1] * np.dtype(dtype).itemsize), dtype=np.uint8)
    a = bits.view(dtype)  # every bit pattern: NaNs with payloads, -0.0, subnormals
    for view in (a.T, a[3:, 1:].T, a[:, ::2].T):  # transposed, offset, a gate-like column range
        out = np.empty(view.shape, dtype)
        copy_2d(out, view)
        assert out.tobytes() == np.ascontiguousarray(view).tobytes()


def test_joined_rows_is_a_view_only_of_adjacent_blocks():
    kernel_t = RNG.standard_normal((3, 8)).T  # a Keras kernel (in, gates * units) transposed
    blocks = [kernel_t[i:i + 2] for i in range(0, 8, 2)]  # its gates, as split_gates makes them
    joined = joined_rows(blocks)
    assert joined is not None and np.shares_memory(joined, kernel_t) and np.array_equal(joined, kernel_t)
    assert joined_rows([blocks[1], blocks[0], *blocks[2:]]) is None  # another gate order: a copy
    assert joined_rows([blocks[0], blocks[2]]) is None
    assert joined_rows([b.copy() for b in blocks]) is None


def _lstm_model(units=128, features=256) -> tuple[Model, int]:
    """Two LSTM layers whose weights are transposed views of Keras-layout arrays, as the Keras reader leaves them."""
    nodes, x = [], "x"
    for k, n_in in enumerate((features, units)):
        node = Node(f"lstm{k}", "lstm", [x], [f"y{k}"], options={"units": units, "return_sequences": True})
        kernel = RNG.standard_normal((n_in, 4 * units)).astype(np.float32)
        recurrent = RNG.standard_normal((units, 4 * units)).astype(np.float32)
        set_recurrent_weights(node, "forward", "keras", kernel.T, recurrent.T,
                              RNG.standard_normal(4 * units).astype(np.float32))
        assert np.shares_memory(node.weights["forward.input.input_weights"], kernel)  # a view, no copy
        nodes.append(node)
        x = f"y{k}"
    model = Model("m", [TensorSpec("x", (5, features))], [x], nodes)
    return model, sum(w.nbytes for n in nodes for w in n.weights.values())


def _peak(write) -> int:
    tracemalloc.start()
    try:
        write()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("target", ["onnx", "gates", "torch", "state_dict"])
def test_writers_add_no_copy_of_the_weights(target, tmp_path):
    """Writing takes less than half the weights' size: one block buffer (at most one array here) and the
    blocked transpose's two tiles (about 140 KB, whatever the model), so the model is a few MB."""
    model, weight_bytes = _lstm_model(units=256)
    write = {"onnx": lambda: onnx_graph.write(model, tmp_path / "m.onnx"),
             "gates": lambda: ir_file.save(model, tmp_path / "m.gates"),
             "torch": lambda: torch_code.write(model, tmp_path / "m"),
             "state_dict": lambda: torch_state.write(model, tmp_path / "m.safetensors")}[target]
    write()  # imports and caches out of the measure
    for p in tmp_path.iterdir():
        p.unlink() if p.is_file() else [q.unlink() for q in p.iterdir()]
    peak = _peak(write)
    assert peak < weight_bytes / 2, (peak, weight_bytes)


def test_streamed_onnx_of_views_is_the_whole_serialization(tmp_path):
    model, _ = _lstm_model(units=24, features=40)
    path = onnx_graph.write(model, tmp_path / "m.onnx")
    assert path.read_bytes() == onnx_graph.deployable(model).SerializeToString()


# -- the .keras weights store mapped in place ------------------------------------------------------------
def _stored_and_deflated(tmp_path):
    import zipfile

    from test_streaming_writers import KERAS_FILE, _rezip

    return (_rezip(KERAS_FILE, tmp_path / "stored.keras", zipfile.ZIP_STORED),
            _rezip(KERAS_FILE, tmp_path / "deflated.keras", zipfile.ZIP_DEFLATED))


def test_stored_weights_are_views_of_the_mapped_file(tmp_path):
    """A stored (uncompressed) weights store: each array is a read-only view of the file's bytes, no copy;
    the same numbers as the compressed store unpacked and read by HDF5."""
    from converters import read

    stored, deflated = (read(p) for p in _stored_and_deflated(tmp_path))
    views = [a for n in stored.nodes if n.is_recurrent for k, a in n.weights.items() if k.endswith("weights")]
    assert views and all(not a.flags.writeable and not a.flags.owndata for a in views)
    for a, b in zip(stored.nodes, deflated.nodes):
        assert a.weights.keys() == b.weights.keys()
        for k in a.weights:
            assert a.weights[k].dtype == b.weights[k].dtype and a.weights[k].tobytes() == b.weights[k].tobytes(), k


def test_mapped_datasets_still_take_their_declared_size_from_the_budget(tmp_path, monkeypatch):
    """The budget is taken before a dataset is viewed: a file whose arrays exceed it is refused, naming one."""
    from converters import budget, read
    from converters.errors import UnsafeError

    stored, _ = _stored_and_deflated(tmp_path)
    import zipfile

    with zipfile.ZipFile(stored) as z:
        members = sum(info.file_size for info in z.infolist())
    monkeypatch.setattr(budget, "EXPLICIT", True)
    monkeypatch.setattr(budget, "MAX_BYTES", members + 64)  # the members fit, the arrays in the store do not
    with pytest.raises(UnsafeError, match="dataset .* declares"):
        read(stored)


def test_mapped_view_is_where_hdf5_puts_the_data_after_a_userblock(tmp_path):
    """HDF5 offsets count an optional user block at the start of the file: a weights store with one reads
    the same numbers as the original (HDF5's own read of each dataset)."""
    import h5py
    from attacks import K3, read_keras, write_keras

    from converters import read

    members = read_keras(K3)
    original, moved = tmp_path / "original.h5", tmp_path / "moved.h5"
    original.write_bytes(members["model.weights.h5"])
    with h5py.File(original, "r") as src, h5py.File(moved, "w", userblock_size=4096) as dst:
        for key in src:
            src.copy(src[key], dst, name=key)
        for key, value in src.attrs.items():
            dst.attrs[key] = value
    expected = read(K3)
    members["model.weights.h5"] = moved.read_bytes()
    got = read(write_keras(tmp_path / "userblock.keras", members))
    for a, b in zip(got.nodes, expected.nodes):
        for k in a.weights:
            assert a.weights[k].tobytes() == b.weights[k].tobytes(), (a.name, k)
    assert any(not a.flags.writeable for n in got.nodes for a in n.weights.values())  # the mapped path ran


@pytest.mark.parametrize("name", ["bidir_stacked_concat.h5", "cudnn_lstm_gru.h5", "float64_lstm_conv_gru.h5"])
def test_h5_datasets_are_views_of_the_mapped_file(name, monkeypatch):
    """A Keras ``.h5`` is mapped read-only too: its contiguous datasets are views of the file, the same
    numbers as HDF5's own read (the mapping switched off)."""
    from pathlib import Path

    from converters import read, readers

    path = Path(__file__).resolve().parent.parent / "fixtures" / "models" / name
    mapped = read(path)
    monkeypatch.setattr(readers, "mapped_file", lambda f: None)
    copied = read(path)
    arrays = [(a, b) for m, c in zip(mapped.nodes, copied.nodes) for a, b in zip(m.weights.values(), c.weights.values())]
    assert arrays and any(not a.flags.writeable for a, _ in arrays)  # the mapped path ran
    for a, b in arrays:
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_public_state_dicts_are_arrays_of_their_own(tmp_path):
    """``state_dict()`` hands out writable arrays of their own even where the IR holds read-only views of a
    mapped file (the writers write the views themselves)."""
    from attacks import K3

    from converters import read

    model = read(K3)
    assert any(not a.flags.writeable for n in model.nodes for a in n.weights.values())
    for sd in (torch_state.state_dict(model), torch_code.state_dict(model)):
        assert sd and all(a.flags.writeable and a.flags.c_contiguous and a.flags.owndata for a in sd.values())


def test_open_output_starts_every_file_empty(tmp_path):
    """The writers' output is opened without truncating the empty temporary (ext4 would flush it when closed),
    yet a file holding bytes is emptied first, and a missing one is created."""
    for before in (b"", b"old bytes, longer than the new ones", None):
        path = tmp_path / "out.bin"
        path.unlink(missing_ok=True)
        if before is not None:
            path.write_bytes(before)
        with safetensors_io.open_output(path) as f:
            f.write(b"new")
        assert path.read_bytes() == b"new"
