"""The red team's eighth round (tests/attacks_round8.py), a sample in CI: every case that once failed, and a few of
each class, in their own processes (round 7's runner); the mechanisms themselves are also called in-process, and
the Python API is given hostile objects here (the runner runs the command line).

The full round: ``python tests/attacks_round8.py``.
"""
import collections.abc
import os
import warnings

import numpy as np
import pytest

import converters
from attacks_round3 import failures
from attacks_round4 import TINY
from attacks_round8 import build, run_case8
from converters.diff import diff
from converters.errors import FormatError, GateportError, UsageError

#: cases that failed before their fix (name patterns), and a few of the classes that did not
ONCE_FAILED = ("layer 1 of hidden 5 under layer 0 of 4 (onnx)", "layer 1 of a bidirectional module without its "
               "reverse (verify)", "NaN weights: diff .h5 with its .gates", "+Inf weights: diff .h5 with its ONNX")
SAMPLE = ("weight_hh 3-D (onnx)", "NaN weights (gates) convert onnx", "3e38 weights (safetensors) verify",
          "NaN weights (safetensors) verify")


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round8") / "cases"
    built = build(folder, groups=("state", "finite"))
    return folder, [c for c in built if c.name in ONCE_FAILED + SAMPLE]


def test_cases_that_once_failed_and_a_sample(battery):
    folder, cases = battery
    assert sorted(c.name for c in cases) == sorted(set(ONCE_FAILED + SAMPLE))
    found = failures(cases, run_case8, folder, timeout=120)
    assert not found, "\n".join(found)


def _state_dict(**kw):
    import torch

    torch.manual_seed(0)
    return {f"rnn.{k}": v.detach().clone() for k, v in torch.nn.LSTM(3, 4, **kw).state_dict().items()}


def test_the_layers_of_one_module_share_their_sizes():
    """nn.LSTM/GRU/RNN give every layer one mode, hidden_size, bias and bidirectional (torch/nn/modules/rnn.py,
    RNNBase.__init__): a state_dict whose layer 1 has hidden 5 under a layer 0 of 4, or a reverse direction in one
    layer only, is no module torch builds; it was read as one (and converted). Refused naming the layer and what
    layer 0 has."""
    import torch

    sd = _state_dict(num_layers=2)
    sd.update({"rnn.weight_ih_l1": torch.zeros(20, 4), "rnn.weight_hh_l1": torch.zeros(20, 5),
               "rnn.bias_ih_l1": torch.zeros(20), "rnn.bias_hh_l1": torch.zeros(20)})
    with pytest.raises(FormatError, match=r"expected hidden_size=4 as in layer 0 .* found hidden_size=5") as info:
        converters.read(sd)
    assert "rnn_l1" in str(info.value)
    sd = {k: v for k, v in _state_dict(num_layers=2, bidirectional=True).items() if not k.endswith("l1_reverse")}
    with pytest.raises(FormatError, match="expected bidirectional=True as in layer 0"):
        converters.read(sd)
    assert len(converters.read(_state_dict(num_layers=3, bidirectional=True)).nodes) == 3  # a real one: read


def test_non_finite_weights_warn_for_every_reader(tmp_path):
    """NaN/Inf weights were warned about for Keras files only: a state_dict, ONNX or .gates file of NaN weights
    converted silently. Every reader warns now, one line a layer however many of its arrays hold them."""
    from safetensors.numpy import save_file

    sd = {k: v.numpy() for k, v in _state_dict().items()}
    sd["rnn.weight_ih_l0"][0, 0] = np.nan
    sd["rnn.weight_hh_l0"][:, 1] = np.inf
    src = tmp_path / "nan.safetensors"
    save_file(sd, str(src))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converters.read(src)
    lines = [str(w.message) for w in caught if isinstance(w.message, converters.errors.GateportWarning)]
    assert len(lines) == 1 and "nan.safetensors: rnn (nn.LSTM)" in lines[0], lines
    assert "holds" not in lines[0] and "hold 17 NaN/Inf values" in lines[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gates = converters.convert(src, "gates", tmp_path / "nan.gates")
    with pytest.warns(converters.errors.GateportWarning, match="hold 17 NaN/Inf values"):
        converters.read(gates)


def test_diff_of_a_file_with_its_own_conversion_holding_nan_is_the_same(tmp_path):
    """diff compared with |a - b| <= tol, false for NaN - NaN: a file with a NaN weight was 'different' from its own
    .gates (exit 1). Now verify's rule (closeness.mismatches): NaN/Inf match only the same NaN/Inf."""
    import shutil

    import h5py

    src = tmp_path / "nan.h5"
    shutil.copy(TINY, src)
    with h5py.File(src, "r+") as f:
        d = f["model_weights/lstm/lstm/lstm_cell/kernel:0"]
        a = d[()]
        a[0, 0] = np.nan
        d[...] = a
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gates = converters.convert(src, "gates", tmp_path / "nan.gates")
        assert diff(src, gates).ok
        other = converters.read(gates)
    other.nodes[0].weights["forward.forget.input_weights"][0, 0] = np.nan  # NaN where the other has a number
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not diff(src, other).ok


class _RaisingPath(os.PathLike):
    def __fspath__(self):
        raise RuntimeError("the caller's own bug")


class _BytesPath:
    def __fspath__(self):
        return b"model.h5"


class _RaisingStr(str):
    def __str__(self):
        raise RuntimeError("str")


class _RaisingMapping(collections.abc.Mapping):
    def __getitem__(self, key):
        raise RuntimeError("getitem")

    def __iter__(self):
        return iter(["rnn.weight_ih_l0"])

    def __len__(self):
        return 1


def _raising_module():
    import torch

    class Raising(torch.nn.LSTM):
        def state_dict(self, *args, **kwargs):
            raise RuntimeError("state_dict")

    return Raising(3, 4)


HOSTILE = {"a PathLike whose __fspath__ raises": _RaisingPath, "a PathLike giving bytes": _BytesPath,
           "a path holding NUL": lambda: "a\x00b.h5", "a mapping whose items raise": _RaisingMapping,
           "a module whose state_dict() raises": _raising_module}


@pytest.mark.parametrize("call", ["read", "convert", "inspect", "verify", "to_torch"])
@pytest.mark.parametrize("make", list(HOSTILE.values()), ids=list(HOSTILE))
def test_the_api_given_hostile_sources_raises_gateport_errors(tmp_path, call, make):
    """Each failed as the TypeError, ValueError or RuntimeError of wherever it was first touched (verify of an
    object: 'expected str, bytes or os.PathLike object'); now one GateportError saying what was expected."""
    source = make()
    calls = {"read": lambda: converters.read(source), "inspect": lambda: converters.inspect(source),
             "convert": lambda: converters.convert(source, "onnx", tmp_path / "m.onnx"),
             "verify": lambda: converters.verify(source, ["onnx"]), "to_torch": lambda: converters.to_torch(source)}
    with pytest.raises(GateportError, match="expected"):
        calls[call]()


def test_a_str_subclass_path_is_read_as_its_text(tmp_path):
    """A ``str`` subclass is a path: read as plain text (its own ``__str__`` raised from inside Path)."""
    assert converters.read(_RaisingStr(str(TINY))).nodes
    assert converters.convert(_RaisingStr(str(TINY)), "gates", tmp_path / "m.gates").exists()


@pytest.mark.parametrize("bad", [None, 5, "torch", _RaisingPath()], ids=["None", "int", "str", "PathLike"])
def test_verify_targets_and_onnx_axes_must_be_lists_of_names(tmp_path, bad):
    """``targets`` and ``dynamic`` were iterated as given: a number or None raised TypeError, a str was taken
    letter by letter."""
    with pytest.raises(UsageError, match="expected verify targets"):
        converters.verify(TINY, bad)
    if bad is None:  # dynamic=None: no axis left symbolic
        assert converters.convert(TINY, "onnx", tmp_path / "m.onnx", dynamic=None).exists()
    else:
        with pytest.raises(UsageError, match="expected dynamic"):
            converters.convert(TINY, "onnx", tmp_path / "m.onnx", dynamic=bad)
        assert not (tmp_path / "m.onnx").exists()
