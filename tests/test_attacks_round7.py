"""The red team's seventh round (tests/attacks_round7.py), a sample in CI: every case that once failed, and a few
of each class, in their own processes (round 6's runner plus: a verify never reports a mismatch); the mechanisms
themselves are also called in-process.

The full round: ``python tests/attacks_round7.py``.
"""
import json
import struct

import numpy as np
import pytest

import converters
from attacks_round3 import failures
from attacks import K3_GRU, lstm_keys, read_keras, safetensors_bytes, write_keras
from attacks_round4 import TINY
from attacks_round7 import build, run_case7
from converters.errors import FormatError

#: cases that failed before their fix (name patterns), and a few of the classes that did not
ONCE_FAILED = ("a tensor named twice in the header (torch)", "the graph input listed twice (torch)")
SAMPLE = ("the pickle holding INST os.system (onnx)", "storage 0 one float short (onnx)",
          "members with data descriptors (onnx)", "the legacy tar format (onnx)",
          "weight_ih of dtype 'F8_E4M3' (torch)", "tensors overlapping by 4 bytes (torch)",
          "-o a dangling symlink", "-o a FIFO (onnx)")


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round7") / "cases"
    built = build(folder, groups=("torch", "safetensors", "onnx", "cli"))
    return folder, [c for c in built if c.name in ONCE_FAILED + SAMPLE]


def test_cases_that_once_failed_and_a_sample(battery):
    folder, cases = battery
    assert sorted(c.name for c in cases) == sorted(set(ONCE_FAILED + SAMPLE))
    found = failures(cases, run_case7, folder, timeout=120)
    assert not found, "\n".join(found)


def _header(keys: dict) -> tuple[dict, int]:
    header, off = {}, 0
    for k, shape in keys.items():
        n = int(np.prod(shape)) * 4
        header[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    return header, off


def test_a_json_key_given_twice_is_refused(tmp_path):
    """Python's json keeps a key's last value, other readers the first: a safetensors header naming one tensor twice
    was read (the last entry tiled the data), a checker and a loader could see different tensors. Every JSON text
    gateport reads goes through safe_json: refused wherever the key is, naming it."""
    from converters import safe_json

    with pytest.raises(FormatError, match="expected each key once in an object, found 'b' twice"):
        safe_json.loads('{"a": {"c": [{"b": 1, "b": 2}]}}', what="t")
    assert safe_json.loads('{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}', what="t") == \
        {"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}
    header, off = _header(lstm_keys("rnn"))
    first = next(iter(header))
    text = json.dumps(header).replace("{", '{"%s": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, ' % first, 1)
    src = tmp_path / "dup.safetensors"
    src.write_bytes(struct.pack("<Q", len(text)) + text.encode() + bytes(off))
    with pytest.raises(FormatError, match="found 'rnn.weight_ih_l0' twice") as info:
        converters.read(src)
    assert "dup.safetensors" in str(info.value)
    src.write_bytes(safetensors_bytes(header, bytes(off)))  # the same header, each key once: read
    assert converters.read(src).nodes
    members = read_keras(K3_GRU)
    cfg = members["config.json"].replace(b'"class_name": "Functional"',
                                         b'"class_name": "Functional", "class_name": "Sequential"', 1)
    with pytest.raises(FormatError, match="'class_name' twice"):
        converters.read(write_keras(tmp_path / "dup.keras", {**members, "config.json": cfg}))


def test_an_onnx_graph_input_listed_twice_is_refused(tmp_path):
    """A graph input listed twice was read as one: a caller's feed would go to either (the spec names each value
    once)."""
    import onnx

    model = onnx.load(str(converters.convert(TINY, "onnx", tmp_path / "good.onnx")))
    twice = onnx.ValueInfoProto()
    twice.CopyFrom(model.graph.input[0])
    model.graph.input.append(twice)
    src = tmp_path / "twice.onnx"
    src.write_bytes(model.SerializeToString())
    with pytest.raises(FormatError, match="expected each graph input named once") as info:
        converters.read(src)
    assert "twice.onnx" in str(info.value)


def _pt_with(tmp_path, name: str, opcodes: bytes):
    """A torch.save zip whose ``extra`` value is the pickle ``opcodes`` (spliced in for a placeholder string)."""
    import zipfile

    import torch

    sd = {f"rnn.{k}": v.detach() for k, v in torch.nn.LSTM(3, 4).state_dict().items()}
    place = b"PLACEHOLDER_0123"
    src = tmp_path / name
    torch.save({**sd, "extra": place.decode()}, src)
    with zipfile.ZipFile(src) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    old = b"X" + struct.pack("<I", len(place)) + place
    with zipfile.ZipFile(src, "w") as z:
        for n, d in members:
            z.writestr(n, d.replace(old, opcodes, 1) if n.endswith("data.pkl") else d)
    return src


@pytest.mark.parametrize("opcodes, reason", [(b"cposix\nsystem\nX\x04\x00\x00\x00true\x85R", "posix.system"),
                                             (b"(cbuiltins\neval\nX\x01\x00\x00\x001o", "eval"),
                                             (b"\x82\x01", "Unsupported operand 130")],
                         ids=["GLOBAL posix.system", "OBJ eval", "EXT1"])
def test_a_refused_pickle_says_why_without_torchs_advice(tmp_path, opcodes, reason):
    """torch >= 2.6 wraps a weights-only refusal in 'Re-running torch.load with weights_only set to False will likely
    succeed': that advice reached the user's line for every hostile pickle. Now the reason alone, and what was
    expected."""
    from converters.errors import UnsafeError

    src = _pt_with(tmp_path, "m.pt", opcodes)
    with pytest.raises(FormatError if "operand" in reason else UnsafeError) as info:
        converters.read(src)
    text = str(info.value)
    assert "expected a state_dict of tensors" in text and reason in text and "m.pt" in text
    assert "weights_only` set to `False" not in text and "Re-running" not in text


def test_a_zip_named_pt_without_a_pickle(tmp_path):
    """An .npz named .pt was read as a .keras ('expected config.json in the .keras archive')."""
    src = tmp_path / "w.pt"
    with open(src, "wb") as f:
        np.savez(f, a=np.zeros(3, np.float32))
    with pytest.raises(FormatError, match="expected a zip-format torch.save archive") as info:
        converters.read(src)
    assert "w.pt" in str(info.value)


def test_an_onnx_artifact_with_external_data_is_refused_naming_it(tmp_path):
    """The runtimes load an artifact from its bytes, where onnxruntime reads no external data: verify reported an
    ERROR row and exit 2 with no line naming the file. Refused before any runtime, naming the tensor."""
    import onnx

    from converters.errors import UnsupportedError
    from converters.verification import check_artifact

    model = onnx.load(str(converters.convert(TINY, "onnx", tmp_path / "good.onnx")))
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = onnx.TensorProto.EXTERNAL
    w.external_data.add(key="location", value="w.bin")
    (tmp_path / "w.bin").write_bytes(bytes(4096))
    src = tmp_path / "ext.onnx"
    src.write_bytes(model.SerializeToString())
    with pytest.raises(UnsupportedError, match="holding its tensors inline.*external data in 'w.bin'") as info:
        check_artifact("onnx", src)
    assert "ext.onnx" in str(info.value)
    check_artifact("onnx", tmp_path / "good.onnx")


def test_a_quantized_weight_is_named_and_torchs_warnings_stay_inside(tmp_path):
    """A quantized weight was refused as 'found layout torch.strided, device cpu', after torch's own 'TypedStorage is
    deprecated' warning reached the user as a gateport warning line ahead of the error."""
    import warnings

    import torch

    from converters.errors import UnsupportedError

    sd = {f"rnn.{k}": v.detach() for k, v in torch.nn.LSTM(3, 4).state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sd["rnn.weight_ih_l0"] = torch.quantize_per_tensor(sd["rnn.weight_ih_l0"], 0.1, 0, torch.qint8)
    torch.save(sd, tmp_path / "q.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UnsupportedError, match="'rnn.weight_ih_l0': expected a dense CPU tensor of floats, "
                                                   "found a quantized tensor"):
            converters.read(tmp_path / "q.pt")
    assert not [w for w in caught if "torch" in str(w.filename)], [str(w.message) for w in caught]
