"""Keras' name lists split into chunks: tf-keras stores ``layer_names`` / ``weight_names`` longer than an
HDF5 object header holds (64,512 bytes) as ``layer_names0``, ``layer_names1`` ... (tf-keras
legacy/saving/hdf5_format.py ``save_attributes_to_hdf5_group``; its ``load_attributes_from_hdf5_group``
reads them in order). A model of a few thousand layers gets them; here the real fixtures' lists are
split the same way and must read as the unsplit file does."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from converters.errors import FormatError
from converters.readers import read

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"


def _split(path: Path, group: str, key: str, parts: int) -> None:
    """Store ``group``'s attribute ``key`` as ``parts`` chunks ``key0`` ..., as tf-keras does for long lists."""
    with h5py.File(path, "r+") as f:
        g = f[group] if group else f
        names = np.asarray(g.attrs[key])
        del g.attrs[key]
        for k, chunk in enumerate(np.array_split(names, parts)):
            g.attrs[f"{key}{k}"] = chunk


def _same(a, b) -> None:
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes]
    for x, y in zip(a.nodes, b.nodes):
        assert x.weights.keys() == y.weights.keys() and all(np.array_equal(x.weights[k], y.weights[k]) for k in x.weights)


@pytest.mark.parametrize("fixture, group", [("add_lstm_gru.h5", "model_weights"),
                                            ("weights_only_gru_lstm_weights.h5", "")])
def test_chunked_layer_names_read_as_one_list(fixture, group, tmp_path):
    source = MODELS / fixture
    config = MODELS / fixture.replace("_weights.h5", ".json") if group == "" else None
    if config is not None and not config.exists():
        pytest.skip(f"no architecture for {fixture}")
    split = tmp_path / fixture
    shutil.copy(source, split)
    _split(split, group, "layer_names", 3)
    _same(read(source, config), read(split, config))


def test_chunked_weight_names_read_as_one_list(tmp_path):
    source = MODELS / "add_lstm_gru.h5"
    split = tmp_path / "split.h5"
    shutil.copy(source, split)
    with h5py.File(split, "r") as f:
        layer = next(n for n in f["model_weights"].attrs["layer_names"]
                     if len(f["model_weights"][n].attrs["weight_names"]) >= 2)
    _split(split, f"model_weights/{layer.decode() if isinstance(layer, bytes) else layer}", "weight_names", 2)
    _same(read(source), read(split))


def test_a_chunk_of_another_shape_is_refused(tmp_path):
    split = tmp_path / "bad.h5"
    shutil.copy(MODELS / "add_lstm_gru.h5", split)
    _split(split, "model_weights", "layer_names", 2)
    with h5py.File(split, "r+") as f:
        f["model_weights"].attrs["layer_names1"] = "lstm"
    with pytest.raises(FormatError, match="layer_names1.*expected a list of names"):
        read(split)
