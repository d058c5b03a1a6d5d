"""The Python API: objects in and out (Keras 3 model, nn.Module/state_dict, ModelProto), typed and
documented public names, standard exceptions, the README's Python block, notes and ONNX options.

Every comparison runs the real runtimes (Keras 3 on torch, PyTorch, onnxruntime) at 1e-5."""
import json
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import keras  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

import converters  # noqa: E402
from converters import reference  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
from helpers import assert_close  # noqa: E402


def ort_run(proto, feeds):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.fixture(scope="module")
def keras_model():
    """A small Keras 3 model with LSTM, bidirectional GRU and Dense, built in the test."""
    keras.utils.set_random_seed(1)
    x = keras.Input((None, 5), name="x")
    h = keras.layers.LSTM(6, return_sequences=True, name="lstm")(x)
    h = keras.layers.Bidirectional(keras.layers.GRU(4, name="gru"), name="bigru")(h)
    y = keras.layers.Dense(3, activation="softmax", name="y")(h)
    return keras.Model(x, y, name="small")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((2, 7, 5)).astype("float32")


def keras_out(model, x):
    return keras.ops.convert_to_numpy(model(x))


def test_every_public_name_exists_and_has_a_docstring_with_an_example():
    assert len(set(converters.__all__)) == len(converters.__all__)
    for name in converters.__all__:
        obj = getattr(converters, name)
        doc = obj.__doc__ or ""
        assert ">>>" in doc, f"converters.{name} has no example in its docstring"


def test_readme_python_block_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Python API\n"):readme.index("## The IR\n")]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md (Python API)", "exec"), scope)
    want = keras_out(scope["keras_model"], scope["x"])
    assert_close(scope["y_torch"], want, "README to_torch")
    assert_close(scope["y_onnx"], want, "README to_onnx")
    assert_close(scope["y"]["y"], want, "README reference.run")
    assert_close(keras_out(scope["back"], scope["x"]), want, "README to_keras from the .onnx file")
    assert (tmp_path / "model.onnx").is_file() and scope["desc"]["layers"]


def test_keras_model_in_objects_out(keras_model, x):
    want = keras_out(keras_model, x)
    net = converters.to_torch(keras_model)
    assert isinstance(net, torch.nn.Module) and not net.training
    with torch.no_grad():
        assert_close(net(torch.from_numpy(x)).numpy(), want, "to_torch")
    proto = converters.to_onnx(keras_model)
    assert isinstance(proto, onnx.ModelProto)
    assert_close(ort_run(proto, {"x": x})[0], want, "to_onnx under onnxruntime")
    back = converters.to_keras(keras_model)
    assert isinstance(back, keras.Model)
    assert_close(keras_out(back, x), want, "to_keras")
    model = converters.read(keras_model)
    assert model.source["object"] == "<keras.Model small>" and "path" not in model.source
    assert_close(reference.run(model, {"x": x})["y"], want, "read(keras model) + reference")


def test_keras_model_converts_to_files(keras_model, x, tmp_path):
    want = keras_out(keras_model, x)
    out = converters.convert(keras_model, "onnx", tmp_path / "m.onnx")
    assert_close(ort_run(onnx.load(str(out)), {"x": x})[0], want, "convert(keras model) -> .onnx")
    folder = converters.convert(keras_model, "torch", tmp_path / "pt")
    assert (folder / "model.py").is_file() and (folder / "model.safetensors").is_file()


def test_onnx_modelproto_in(keras_model, x):
    proto = converters.to_onnx(keras_model)
    net = converters.to_torch(proto)
    with torch.no_grad():
        assert_close(net(torch.from_numpy(x)).numpy(), keras_out(keras_model, x), "ModelProto -> torch")
    assert converters.read(proto).source["object"].startswith("<onnx.ModelProto")


def test_torch_module_and_state_dict_in(x):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        want = lstm(torch.from_numpy(x))[0].numpy()
    for source in (lstm, lstm.state_dict()):
        proto = converters.to_onnx(source)
        assert_close(ort_run(proto, {proto.graph.input[0].name: x})[0], want, f"{type(source).__name__} -> onnx")


def test_state_dict_linear_tensors_dropped_is_a_note_recorded_in_the_artifact(x):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(5, 4, batch_first=True)
            self.fc = torch.nn.Linear(4, 2)

    with pytest.warns(converters.GateportNote, match="'fc.weight', 'fc.bias'"):
        proto = converters.to_onnx(Net())
    props = {p.key: p.value for p in proto.metadata_props}
    assert "fc.weight" in json.loads(props["gateport.notes"])[0]
    assert props["gateport.source"] == "<torch.nn.Module Net>"


def test_hard_sigmoid_scaling_is_a_note_in_the_keras_metadata(tmp_path):
    with pytest.warns(converters.GateportNote, match="hard_sigmoid.*1.2"):
        out = converters.convert(MODELS / "lstm_hard_sigmoid.h5", "keras", tmp_path / "m.keras")
    meta = json.loads(zipfile.ZipFile(out).read("metadata.json"))
    assert any("1.2" in line for line in meta["gateport_notes"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", converters.GateportNote)  # no scaling: no note
        converters.convert(MODELS / "lstm_hard_sigmoid.h5", "onnx", tmp_path / "m.onnx")


def test_stateful_layer_exported_stateless_is_a_note_in_model_py(tmp_path):
    keras.utils.set_random_seed(2)
    inp = keras.Input(batch_shape=(2, 4, 3), name="x")
    model = keras.Model(inp, keras.layers.LSTM(3, stateful=True, name="s")(inp))
    with pytest.warns(converters.GateportNote, match="stateful layer exported stateless"):
        folder = converters.convert(model, "torch", tmp_path / "pt")
    text = (folder / "model.py").read_text()
    assert "Notes:" in text and "stateful layer exported stateless" in text


def test_missing_file_is_file_not_found_and_format_error(tmp_path):
    for kind in (FileNotFoundError, converters.FormatError, converters.ModelNotFoundError):
        with pytest.raises(kind) as info:
            converters.read(tmp_path / "missing.h5")
        assert info.value.filename == str(tmp_path / "missing.h5") and "no such file" in str(info.value)
    with pytest.raises(FileNotFoundError):
        converters.convert(tmp_path / "missing.h5", "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_not_a_model_object_is_a_usage_error():
    with pytest.raises(converters.UsageError, match="found int"):
        converters.read(42)


def test_writer_refusal_names_the_source_file(tmp_path):
    with pytest.raises(converters.UnsupportedError) as info:
        converters.convert(MODELS / "lstm_hard_sigmoid.h5", "torch-state-dict", tmp_path / "m.safetensors")
    assert info.value.file == str(MODELS / "lstm_hard_sigmoid.h5")


def test_reference_run_takes_names_and_returns_outputs_by_name():
    model = converters.read(MODELS / "two_inputs.h5")
    rng = np.random.default_rng(3)
    feeds = {s.name: rng.standard_normal((2, *[d or 4 for d in s.shape])) for s in model.inputs}
    by_name = reference.run(model, feeds)
    by_list = reference.run(model, [feeds[s.name] for s in model.inputs])
    assert list(by_name.keys()) == model.outputs and isinstance(by_list, list)
    for name, array in dict(by_name).items():
        assert by_name[name] is by_name[model.outputs.index(name)]
        np.testing.assert_array_equal(array, by_list[model.outputs.index(name)])
    with pytest.raises(KeyError):
        by_name["no such output"]


def test_onnx_names_dynamic_axes_and_provenance(x):
    path = MODELS / "tiny_lstm.h5"
    model = converters.read(path)
    feed = np.random.default_rng(4).standard_normal((1, *model.inputs[0].shape)).astype("float32")
    want = reference.run(model, [feed])[0]
    proto = converters.to_onnx(path, dynamic=[], input_names=["seq"], output_names=["out"])
    dims = [[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in (proto.graph.input[0], proto.graph.output[0])]
    assert dims[0] == [1, *model.inputs[0].shape] and dims[1][0] == 1, dims
    assert_close(ort_run(proto, {"seq": feed})[0], want, "fixed batch, renamed")
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["gateport.source"] == "tiny_lstm.h5" and props["gateport.version"] == converters.__version__
    assert props["gateport.keras_version"] == model.source["keras_version"]


def test_onnx_time_axis_named_and_refused_static_when_undeclared(keras_model, x):
    proto = converters.to_onnx(keras_model)
    assert [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim[:2]] == ["batch", "time"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[2].dim_value == 5
    with pytest.raises(converters.UsageError, match="keep time dynamic"):
        converters.to_onnx(keras_model, dynamic=["batch"])
    with pytest.raises(converters.UsageError, match="expected 1 distinct"):
        converters.to_onnx(keras_model, input_names=["a", "b"])


def test_importing_the_verification_module_keeps_the_verify_function():
    """`converters.verify` is the API function even after its module is imported (a module named verify.py
    replaced the function on the package, and tests failed depending on their order)."""
    import importlib

    import converters

    importlib.import_module("converters.verification")
    assert callable(converters.verify) and converters.verify.__module__ == "converters.api"
