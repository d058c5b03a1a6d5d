"""fixtures/fixtures.json agrees with the files it lists (numpy, h5py and json only: no TensorFlow).

Checks every entry's model file, config, expected outputs, producer and recorded Keras version,
that its input names and output count match the model's own config, that its feature tags are
backed by that config and its stored inputs, and that every required feature is covered.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "fixtures" / "fixtures.json"
ENTRIES = json.loads(MANIFEST.read_text())
KEYS = {"name", "file", "config", "producer", "keras_version", "inputs", "n_outputs", "expected",
        "features", "description"}
REQUIRED_FEATURES = {
    "lstm", "gru", "reset_after=false", "hard_sigmoid", "go_backwards", "return_state", "merge=sum",
    "mask_zero", "masking", "mask_middle", "simple_rnn", "time_distributed", "repeat_vector",
    "concatenate", "add", "flatten", "embedding", "multi_input", "multi_output", "weights_only",
    "stacked", "dropout", "bidirectional",
    "merge=concat", "merge=mul", "merge=ave", "merge=None", "relu", "use_bias=false",
    # layers around the RNNs (issue 14)
    "global_average_pooling1d", "global_max_pooling1d", "max_pooling1d", "average_pooling1d", "zero_padding1d",
    "cropping1d", "upsampling1d", "permute", "layer_normalization", "unit_normalization", "leaky_relu_layer",
    "prelu", "elu_layer", "relu_layer", "gelu", "mish", "log_softmax",
    "normalization", "rescaling", "rms_normalization", "group_normalization", "conv1d_transpose",
}
#: suffix -> (producer library, weights only). Longest suffixes first.
SUFFIXES = {".weights.h5": ("keras", True), "_weights.h5": ("tf_keras", True),
            ".keras": ("keras", False), ".h5": ("tf_keras", False)}
MAX_FILE_BYTES = 600_000
MAX_TOTAL_BYTES = 5_000_000


def by_name(entry):
    return entry["name"]


def suffix_of(entry) -> str:
    return next(s for s in SUFFIXES if entry["file"].endswith(s))


def model_config(entry) -> dict:
    """The model's architecture JSON ({"class_name", "config", ...}) as the file stores it."""
    if entry["config"]:
        return json.loads((ROOT / entry["config"]).read_text())
    path = ROOT / entry["file"]
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("config.json"))
    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def layer_configs(node):
    """Every ``{"class_name", "config"}`` object nested anywhere in a config."""
    if isinstance(node, dict):
        if "class_name" in node and isinstance(node.get("config"), dict):
            yield node
        for value in node.values():
            yield from layer_configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from layer_configs(value)


def triples(value):
    """Keras' ``input_layers``/``output_layers``: a list of triples, or one flat triple (Keras 3)."""
    return [value] if value and isinstance(value[0], str) else value


def config_inputs(cfg) -> list[str]:
    inner = cfg["config"]
    if "input_layers" in inner:
        return [t[0] for t in triples(inner["input_layers"])]
    first = inner["layers"][0]
    assert first["class_name"] == "InputLayer"
    return [first["config"]["name"]]


def config_n_outputs(cfg) -> int:
    inner = cfg["config"]
    return len(triples(inner["output_layers"])) if "output_layers" in inner else 1


def recorded_keras_version(entry) -> str | None:
    path = ROOT / entry["file"]
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("metadata.json"))["keras_version"]
    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version")
        if version is not None:
            assert f.attrs["backend"] in ("tensorflow", b"tensorflow")
    return version.decode() if isinstance(version, bytes) else version


def has_option(layers, class_names, **options) -> bool:
    """Some layer of one of ``class_names`` (any if empty) has all ``options`` in its config."""
    return any((not class_names or l["class_name"] in class_names)
               and all(l["config"].get(k, object()) == v for k, v in options.items()) for l in layers)


RNN = ("LSTM", "GRU", "SimpleRNN")
#: tag -> what the config must contain for it.
TAG_CHECKS = {
    "lstm": lambda ls: has_option(ls, ("LSTM",)),
    "gru": lambda ls: has_option(ls, ("GRU",)),
    "simple_rnn": lambda ls: has_option(ls, ("SimpleRNN",)),
    "bidirectional": lambda ls: has_option(ls, ("Bidirectional",)),
    "time_distributed": lambda ls: has_option(ls, ("TimeDistributed",)),
    "repeat_vector": lambda ls: has_option(ls, ("RepeatVector",)),
    "concatenate": lambda ls: has_option(ls, ("Concatenate",)),
    "add": lambda ls: has_option(ls, ("Add",)),
    "flatten": lambda ls: has_option(ls, ("Flatten",)),
    "dropout": lambda ls: has_option(ls, ("Dropout",)),
    "embedding": lambda ls: has_option(ls, ("Embedding",)),
    "masking": lambda ls: has_option(ls, ("Masking",)),
    "mask_zero": lambda ls: has_option(ls, ("Embedding",), mask_zero=True),
    "hard_sigmoid": lambda ls: has_option(ls, RNN, recurrent_activation="hard_sigmoid"),
    "relu": lambda ls: has_option(ls, RNN, activation="relu"),
    "reset_after=false": lambda ls: has_option(ls, ("GRU",), reset_after=False),
    "go_backwards": lambda ls: has_option(ls, RNN, go_backwards=True),
    "return_state": lambda ls: has_option(ls, RNN, return_state=True),
    "return_sequences": lambda ls: has_option(ls, RNN, return_sequences=True),
    "use_bias=false": lambda ls: has_option(ls, RNN, use_bias=False),
    "keras3_op_nodes": lambda ls: has_option(ls, ("NotEqual",)) and has_option(ls, ("Any",)),
    **{f"merge={m}": (lambda m: lambda ls: has_option(ls, ("Bidirectional",), merge_mode=m))(m)
       for m in ("concat", "sum", "mul", "ave")},
    "merge=None": lambda ls: has_option(ls, ("Bidirectional",), merge_mode=None),
    **{tag: (lambda cls: lambda ls: has_option(ls, (cls,)))(cls) for tag, cls in (
        ("global_average_pooling1d", "GlobalAveragePooling1D"), ("global_max_pooling1d", "GlobalMaxPooling1D"),
        ("max_pooling1d", "MaxPooling1D"), ("average_pooling1d", "AveragePooling1D"),
        ("zero_padding1d", "ZeroPadding1D"), ("cropping1d", "Cropping1D"), ("upsampling1d", "UpSampling1D"),
        ("permute", "Permute"), ("layer_normalization", "LayerNormalization"),
        ("unit_normalization", "UnitNormalization"), ("leaky_relu_layer", "LeakyReLU"), ("prelu", "PReLU"),
        ("elu_layer", "ELU"), ("relu_layer", "ReLU"), ("normalization", "Normalization"),
        ("rescaling", "Rescaling"), ("rms_normalization", "RMSNormalization"),
        ("group_normalization", "GroupNormalization"), ("conv1d_transpose", "Conv1DTranspose"))},
    **{act: (lambda act: lambda ls: has_option(ls, (), activation=act))(act) for act in ("gelu", "mish", "log_softmax")},
}


def recurrent_layer_count(cfg) -> int:
    """How many of the model's own layers are, or wrap, a recurrent layer."""
    def recurrent(layer):
        return layer["class_name"] in RNN or (
            layer["class_name"] == "Bidirectional" and layer["config"]["layer"]["class_name"] in RNN)
    return sum(recurrent(layer) for layer in cfg["config"]["layers"])


def masked_steps(entry, cfg, x: np.ndarray) -> np.ndarray:
    """(batch, time) booleans: which stored input steps the model's first mask layer masks."""
    layers = list(layer_configs(cfg))
    if "mask_zero" in entry["features"]:
        return x == 0
    value = next(l["config"]["mask_value"] for l in layers if l["class_name"] == "Masking")
    return np.all(x == value, axis=-1)


def test_manifest_is_a_non_empty_list_of_unique_entries():
    assert isinstance(ENTRIES, list) and len(ENTRIES) >= 25
    names = [e["name"] for e in ENTRIES]
    assert len(set(names)) == len(names)
    for e in ENTRIES:
        assert set(e) == KEYS, e["name"]


def test_required_fixtures_and_features_are_covered():
    names = {e["name"] for e in ENTRIES}
    assert {"autoencoder_bilstm", "lstm_dense_activation", "two_inputs", "tiny_lstm"} <= names
    covered = set().union(*(e["features"] for e in ENTRIES))
    assert REQUIRED_FEATURES <= covered, sorted(REQUIRED_FEATURES - covered)
    producers = {e["producer"].split()[0] for e in ENTRIES}
    assert producers == {"tf_keras", "keras"}
    suffixes = {suffix_of(e) for e in ENTRIES}
    assert suffixes == set(SUFFIXES)


def test_files_are_small():
    sizes = [(ROOT / e[k]).stat().st_size for e in ENTRIES for k in ("file", "config", "expected") if e[k]]
    assert max(sizes) <= MAX_FILE_BYTES and sum(sizes) <= MAX_TOTAL_BYTES


@pytest.mark.parametrize("entry", ENTRIES, ids=by_name)
def test_entry_files_and_producer(entry):
    suffix = suffix_of(entry)
    library, weights_only = SUFFIXES[suffix]
    if "tf_keras_archive" in entry["features"]:  # tf-keras' own .keras (its saving_lib), fixtures tfk_<name>
        assert suffix == ".keras" and entry["name"].startswith("tfk_")
        library = "tf_keras"
    assert entry["file"] == f"fixtures/models/{entry['name']}{suffix}"
    assert (ROOT / entry["file"]).is_file()
    assert entry["expected"] == f"fixtures/expected/{entry['name']}.npz"
    if weights_only:
        assert entry["config"] == f"fixtures/models/{entry['name']}.json"
        assert (ROOT / entry["config"]).is_file()
        assert "weights_only" in entry["features"]
    else:
        assert entry["config"] is None and "weights_only" not in entry["features"]

    match = re.fullmatch(r"(tf_keras|keras) (\d+\.\d+\.\d+)", entry["producer"])
    assert match and match.group(1) == library, entry["producer"]
    version = match.group(2)
    assert version.split(".")[0] == ("2" if library == "tf_keras" else "3")
    recorded = recorded_keras_version(entry)
    assert recorded == entry["keras_version"]
    if suffix == ".weights.h5":  # Keras 3 weights-only files and their to_json() carry no version
        assert recorded is None and "keras_version" not in model_config(entry)
        assert model_config(entry).get("module") == "keras"
    else:
        assert recorded == version


@pytest.mark.parametrize("entry", ENTRIES, ids=by_name)
def test_entry_matches_model_config(entry):
    cfg = model_config(entry)
    assert config_inputs(cfg) == entry["inputs"]
    assert config_n_outputs(cfg) == entry["n_outputs"]
    layers = list(layer_configs(cfg))
    if "stacked" in entry["features"]:
        assert recurrent_layer_count(cfg) >= 2
    for tag in entry["features"]:
        if tag in TAG_CHECKS:
            assert TAG_CHECKS[tag](layers), f"{entry['name']}: config does not show {tag!r}"
    if len(entry["inputs"]) > 1:
        assert "multi_input" in entry["features"]
    if entry["n_outputs"] > 1:
        assert "multi_output" in entry["features"]


@pytest.mark.parametrize("entry", ENTRIES, ids=by_name)
def test_expected_outputs(entry):
    with np.load(ROOT / entry["expected"]) as npz:
        data = {k: npz[k] for k in npz.files}
    assert set(data) == {f"in:{n}" for n in entry["inputs"]} | {f"out:{k}" for k in range(entry["n_outputs"])}
    for key, array in data.items():
        assert array.shape[0] == 3, key
        assert np.all(np.isfinite(array)), key
        if key.startswith("out:"):
            assert array.dtype == np.float32, key
    x = data[f"in:{entry['inputs'][0]}"]
    if "embedding" in entry["features"]:
        # the token ids: the first input of whole numbers (a multi-input model's may be second; a tutorial's
        # Input() without dtype feeds them as float32, which Embedding casts)
        ids = [data[f"in:{n}"] for n in entry["inputs"]]
        x = next((a for a in ids if a.dtype in (np.int32, np.int64) or np.array_equal(a, np.round(a))), None)
        assert x is not None, "an Embedding model has an input of token ids"
    if {"mask_zero", "masking"} & set(entry["features"]):
        masked = masked_steps(entry, model_config(entry), x)
        assert masked[:, -1].any(), "some row should end in padding"
        assert not masked[0].any(), "row 0 should be unmasked"
        middle = (masked[:, :-1] & ~masked[:, 1:]).any()
        assert middle == ("mask_middle" in entry["features"])


def test_fixtures_readme_lists_every_fixture():
    """fixtures/README.md's table (make_fixtures.write_readme_table) has a row for every manifest entry."""
    rows = {line.split("`")[1] for line in (ROOT / "fixtures" / "README.md").read_text().splitlines()
            if line.startswith("| `")}
    assert not {e["name"] for e in ENTRIES} - rows
