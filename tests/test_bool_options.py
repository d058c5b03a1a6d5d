"""Keras boolean options (``go_backwards``, ``use_bias``, ``mask_zero``, ``scale`` ...) are read through one
function, keras_context.flag, over one table, keras_context.BOOLEAN_OPTIONS: a JSON true or false, or one line
``<file>: <layer> (<Class>): <option>: expected true or false, found '<value>'``. Python's truth of a
stranger's ``"false"``, ``2``, ``[]`` or ``null`` is never taken. 0 and 1 are read as false and true: Keras saves
an argument as given (``LSTM(return_sequences=1)`` writes 1) and computes with its truth. Real fixtures, one
option changed each."""
import json
import re
import shutil
import zipfile
from pathlib import Path

import h5py
import pytest

from converters.cli import main
from converters.readers.keras_context import BOOLEAN_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
READERS = ROOT / "converters" / "readers"

#: what a stranger may write instead of true / false, and how the message quotes it (sanitize.quote)
BAD = [("false", "'false'"), (2, "'2'"), (-1, "'-1'"), ([], "'[]'"), ({}, "'{}'"), (0.5, "'0.5'"), (None, "'None'"),
       ("\x1b[31mtrue", "'\\x1b[31mtrue'")]


def _layer(cfg: dict, name: str) -> dict:
    (item,) = [it for it in cfg["config"]["layers"] if it.get("name", it["config"].get("name")) == name]
    return item


def _changed(tmp_path: Path, fixture: str, layer: str, path: tuple, key: str, value) -> Path:
    """A copy of ``fixture`` whose top-level ``layer``'s config (or the config found at ``path`` under it: a
    cell's, a wrapped layer's) has ``key`` set to ``value``."""
    src, dst = MODELS / fixture, tmp_path / fixture

    def change(cfg):
        config = _layer(cfg, layer)["config"]
        for step in path:
            config = config[step]
        config[key] = value
        return cfg

    if fixture.endswith(".keras"):
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename == "config.json":
                    data = json.dumps(change(json.loads(data))).encode()
                zout.writestr(info, data)
    else:
        shutil.copy(src, dst)
        with h5py.File(dst, "r+") as f:
            f.attrs["model_config"] = json.dumps(change(json.loads(f.attrs["model_config"])))
    return dst


def _refusal(capsys, path: Path) -> str:
    code = main(["inspect", str(path)])
    out = capsys.readouterr()
    assert code == 2 and out.err.count("\n") == 1 and "Traceback" not in out.err, out.err
    assert out.err.startswith(f"gateport: error: {path}: "), out.err
    return out.err


#: (fixture, top-level layer, its class as the message names it, path to the config holding the option, option)
CASES = [
    ("embedding_mask_lstm.h5", "lstm", "LSTM", (), "go_backwards"),
    ("embedding_mask_lstm.h5", "lstm", "LSTM", (), "return_sequences"),
    ("embedding_mask_lstm.h5", "lstm", "LSTM", (), "return_state"),
    ("embedding_mask_lstm.h5", "lstm", "LSTM", (), "stateful"),
    ("embedding_mask_lstm.h5", "lstm", "LSTM", (), "zero_output_for_mask"),
    ("embedding_mask_lstm.h5", "lstm", "LSTM", (), "use_bias"),
    ("embedding_mask_lstm.h5", "lstm", "LSTM", (), "time_major"),
    ("embedding_mask_lstm.h5", "embedding", "Embedding", (), "mask_zero"),
    ("activation_layers_gru.h5", "gru", "GRU", (), "reset_after"),
    ("activation_layers_gru.h5", "dense_in", "Dense", (), "use_bias"),
    ("stacked_cells_masked.h5", "stacked", "RNN", ("cell", "config", "cells", 0, "config"), "use_bias"),
    ("stacked_cells_masked.h5", "td_norm", "TimeDistributed", ("layer", "config"), "scale"),
    ("embedding_mask_layernorm_gap.h5", "layer_norm", "LayerNormalization", (), "scale"),
    ("embedding_mask_layernorm_gap.h5", "layer_norm", "LayerNormalization", (), "center"),
    ("embedding_mask_layernorm_gap.h5", "layer_norm", "LayerNormalization", (), "rms_scaling"),
    ("embedding_mask_layernorm_gap.h5", "global_avg", "GlobalAveragePooling1D", (), "keepdims"),
    ("conv_groupnorm_gru.h5", "conv", "Conv1D", (), "use_bias"),
    ("conv_groupnorm_gru.h5", "group_norm", "GroupNormalization", (), "center"),
    ("norm_lstm.h5", "normalization", "Normalization", (), "invert"),
    ("attention_variants.h5", "concat_attention", "Attention", (), "use_scale"),
    ("attention_variants.h5", "concat_attention", "Attention", (), "causal"),
    ("attention_variants.h5", "additive_attention", "AdditiveAttention", (), "use_scale"),
    ("attention_variants.h5", "mha", "MultiHeadAttention", (), "use_bias"),
    ("k3_attention_variants.keras", "mha", "MultiHeadAttention", (), "use_gate"),
    ("k3_attention_variants.keras", "any", "Any", (), "keepdims"),
    ("attention_variants.h5", "dot", "Dot", (), "normalize"),
    ("k3_conv_lstm1d_strided.keras", "conv_lstm", "ConvLSTM1D", (), "go_backwards"),
    ("k3_conv_lstm1d_strided.keras", "conv_lstm", "ConvLSTM1D", (), "stateful"),
]


def _ids(case):
    return f"{case[0].split('.')[0]}-{case[1]}-{case[4]}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_a_boolean_option_other_than_true_or_false_is_refused_in_one_line(capsys, tmp_path, case):
    fixture, layer, cls, path, key = case
    values = BAD if key == "go_backwards" else [BAD[0], BAD[1]]  # every kind once, then "false" and 2
    for value, shown in values:
        err = _refusal(capsys, _changed(tmp_path, fixture, layer, path, key, value))
        assert f": {layer} ({cls}): {key}: expected true or false, found {shown}" in err, err


@pytest.mark.parametrize("value", [0, 1])
def test_zero_and_one_read_as_false_and_true(tmp_path, value):
    """What Keras saves for ``LSTM(return_sequences=1)``, ``go_backwards=0``: the same model as true / false."""
    from converters.api import read

    def options(v, sub):
        sub.mkdir()
        model = read(str(_changed(sub, "embedding_mask_lstm.h5", "lstm", (), "go_backwards", v)))
        (node,) = [n for n in model.nodes if n.name == "lstm"]
        return node.options

    assert options(value, tmp_path / "int") == options(bool(value), tmp_path / "bool")
    assert options(value, tmp_path / "int2")["go_backwards"] is bool(value)


def test_the_fixtures_layer_names_are_the_ones_the_cases_change():
    """Each case's layer exists with its class (a renamed fixture fails here, not as a wrong refusal)."""
    for fixture, layer, cls, _, _ in CASES:
        if fixture.endswith(".keras"):
            cfg = json.loads(zipfile.ZipFile(MODELS / fixture).read("config.json"))
        else:
            with h5py.File(MODELS / fixture) as f:
                cfg = json.loads(f.attrs["model_config"])
        assert _layer(cfg, layer)["class_name"] == cls, (fixture, layer)


#: a boolean read through flag: call.flag("key", ...), flag(cfg, "key", ...), the readers' _flag(call, [args,] "key")
_READ = re.compile(r"""(?:\.flag\(|\bflag\(\w+(?:\.\w+)*, |_flag\(call, (?:args, )?)"(\w+)\"""")
_TRUTH = re.compile(r"\bbool\(\s*[\w.\[\]]*\.get\(")


def test_every_boolean_the_keras_readers_read_is_in_the_table_and_none_by_truth():
    """A static check over converters/readers/keras_*.py: each literal option read through flag is in
    BOOLEAN_OPTIONS (the table lists no option nothing reads), and no option is read as ``bool(x.get(...))``."""
    read, truthy = set(), []
    for path in sorted(READERS.glob("keras_*.py")):
        text = path.read_text()
        read |= set(_READ.findall(text))
        truthy += [f"{path.name}: {m.group(0)}" for m in _TRUTH.finditer(text)]
    # keras_layers' _affine_roles and the recurrent loops read these by a variable key
    read |= {"scale", "center", "go_backwards", "return_sequences", "return_state", "zero_output_for_mask",
             "stateful", "use_scale"}
    assert read == BOOLEAN_OPTIONS, (sorted(read - BOOLEAN_OPTIONS), sorted(BOOLEAN_OPTIONS - read))
    assert not truthy, truthy
