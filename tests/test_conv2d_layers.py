"""Conv2D, Max/AveragePooling2D, GlobalMax/AveragePooling2D (channels last) around recurrent layers, directly and
inside TimeDistributed: each Keras 3 model (torch backend) read from its ``.keras`` file and run by every runtime
(numpy reference, .gates round trip, generated PyTorch and numpy, onnxruntime, Keras 3 loading gateport's ``.keras``) within
1e-5 of Keras' own outputs, as tests/test_layers_coverage.py does for the 1-D layers; channels_first refused in
one line. The tutorial architectures (keras.io captcha OCR, CTC ASR, CNN-LSTM video) as tf-keras and Keras 3
fixtures are checked by the fixture round trips (fixtures tagged conv2d).

'same' average pooling here pads symmetrically: Keras 3's torch backend counts an asymmetric pad (the README's
AveragePooling1D note); TensorFlow's asymmetric case is checked against the tf-keras / Keras 3 (TensorFlow) fixtures.
"""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from converters import ir_file, reference  # noqa: E402
from converters.readers import read  # noqa: E402
from converters.writers import keras_v3, numpy_code  # noqa: E402
from helpers import TOL  # noqa: E402
from test_layers_coverage import (error, floats, keras_outputs, onnx_outputs, randomize, schema_valid,  # noqa: E402
                                  seq, torch_outputs)

L = keras.layers
B, U = 3, 4


def ocr(shape=(12, 8, 1)):
    """The keras.io captcha OCR prediction model, shrunk: Conv2D(relu, same) -> MaxPooling2D twice -> Reshape to
    (width / 4, height / 4 * filters) -> Dense(relu) -> Dropout -> Bidirectional(LSTM) x2 -> Dense(softmax)."""
    return seq(L.Conv2D(4, 3, activation="relu", padding="same"), L.MaxPooling2D(),
               L.Conv2D(3, 3, activation="relu", padding="same"), L.MaxPooling2D(),
               L.Reshape((shape[0] // 4, shape[1] // 4 * 3)), L.Dense(6, activation="relu"), L.Dropout(0.2),
               L.Bidirectional(L.LSTM(U, return_sequences=True)), L.Bidirectional(L.LSTM(3, return_sequences=True)),
               L.Dense(5, activation="softmax"), shape=shape)


def asr(freq=9):
    """The keras.io CTC ASR model, shrunk: spectrogram (time dynamic) -> Reshape(-1, freq, 1) -> Conv2D(strides 2,
    same, no bias) -> BatchNormalization -> ReLU -> Conv2D(strides (1, 2)) -> BN -> ReLU -> Reshape -> BiGRU."""
    return seq(L.Reshape((-1, freq, 1)), L.Conv2D(3, (3, 5), strides=2, padding="same", use_bias=False),
               L.BatchNormalization(), L.ReLU(), L.Conv2D(2, (3, 3), strides=(1, 2), padding="same", use_bias=False),
               L.BatchNormalization(), L.ReLU(), L.Reshape((-1, 3 * 2)),
               L.Bidirectional(L.GRU(U, return_sequences=True)), L.Dense(5, activation="softmax"), shape=(None, freq))


#: (id, model builder, inputs builder)
CASES = [
    ("OCR captcha CRNN", ocr, lambda: [floats((B, 12, 8, 1))]),
    ("CTC ASR CRNN dynamic time", asr, lambda: [floats((B, 10, 9))]),
    ("Conv2D valid strides no bias", lambda: seq(L.Conv2D(4, (3, 2), strides=(2, 1), use_bias=False),
                                                 L.Reshape((-1, 4 * 4)), L.LSTM(U), shape=(9, 5, 2)),
     lambda: [floats((B, 9, 5, 2))]),
    ("Conv2D same dilated groups tanh", lambda: seq(L.Conv2D(6, 3, dilation_rate=(2, 1), groups=2, padding="same",
                                                             activation="tanh"),
                                                    L.Reshape((7, 5 * 6)), L.GRU(U), shape=(7, 5, 4)),
     lambda: [floats((B, 7, 5, 4))]),
    ("Conv2D same even kernel strides 3", lambda: seq(L.Conv2D(2, (4, 2), strides=3, padding="same"),
                                                      L.Reshape((3, 2 * 2)), L.SimpleRNN(U), shape=(8, 5, 3)),
     lambda: [floats((B, 8, 5, 3))]),
    ("MaxPooling2D same asymmetric", lambda: seq(L.MaxPooling2D((3, 2), strides=2, padding="same"),
                                                 L.Reshape((4, 5 * 2)), L.LSTM(U), shape=(7, 9, 2)),
     lambda: [floats((B, 7, 9, 2))]),
    ("AveragePooling2D valid strides", lambda: seq(L.AveragePooling2D((2, 3), strides=(1, 2)),
                                                   L.Reshape((6, 4 * 2)), L.GRU(U), shape=(7, 9, 2)),
     lambda: [floats((B, 7, 9, 2))]),
    ("AveragePooling2D same symmetric", lambda: seq(L.AveragePooling2D(3, strides=1, padding="same"),
                                                    L.Reshape((7, 9 * 2)), L.GRU(U), shape=(7, 9, 2)),
     lambda: [floats((B, 7, 9, 2))]),
    ("GlobalAveragePooling2D -> RepeatVector -> LSTM", lambda: seq(
        L.Conv2D(3, 3), L.GlobalAveragePooling2D(), L.RepeatVector(4), L.LSTM(U, return_sequences=True),
        shape=(6, 5, 2)), lambda: [floats((B, 6, 5, 2))]),
    ("ZeroPadding2D -> Conv2D valid", lambda: seq(L.ZeroPadding2D(((1, 2), (0, 1))), L.Conv2D(2, 3), L.ZeroPadding2D(1),
                                                  L.Reshape((9, 6 * 2)), L.GRU(U), shape=(6, 5, 2)),
     lambda: [floats((B, 6, 5, 2))]),
    ("TimeDistributed ZeroPadding2D", lambda: seq(L.TimeDistributed(L.ZeroPadding2D((1, 0))),
                                                  L.TimeDistributed(L.MaxPooling2D(2)), L.TimeDistributed(L.Flatten()),
                                                  L.LSTM(U), shape=(3, 5, 4, 2)), lambda: [floats((B, 3, 5, 4, 2))]),
    ("GlobalMaxPooling2D keepdims", lambda: seq(L.GlobalMaxPooling2D(keepdims=True), L.Reshape((1, 2)), L.LSTM(U),
                                                shape=(6, 5, 2)), lambda: [floats((B, 6, 5, 2))]),
    ("TimeDistributed CNN-LSTM video", lambda: seq(
        L.TimeDistributed(L.Conv2D(3, 3, activation="relu")), L.TimeDistributed(L.MaxPooling2D()),
        L.TimeDistributed(L.Flatten()), L.LSTM(U), L.Dense(2, activation="softmax"), shape=(4, 6, 6, 1)),
     lambda: [floats((B, 4, 6, 6, 1))]),
    ("TimeDistributed Conv2D same strides, GlobalAveragePooling2D, outer time dynamic", lambda: seq(
        L.TimeDistributed(L.Conv2D(4, 3, strides=2, padding="same")), L.TimeDistributed(L.AveragePooling2D(1)),
        L.TimeDistributed(L.GlobalAveragePooling2D()), L.GRU(U), shape=(None, 7, 6, 2)),
     lambda: [floats((B, 5, 7, 6, 2))]),
    ("TimeDistributed GlobalMaxPooling2D", lambda: seq(
        L.TimeDistributed(L.GlobalMaxPooling2D()), L.SimpleRNN(U), shape=(4, 5, 3, 2)),
     lambda: [floats((B, 4, 5, 3, 2))]),
]


def numpy_outputs(ir, inputs, folder):
    """Outputs of gateport's generated numpy model.py."""
    import importlib.util

    numpy_code.write(ir, folder)
    spec = importlib.util.spec_from_file_location(f"gen_np_{abs(hash(str(folder)))}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.load_model()(*inputs)
    return list(out) if isinstance(out, tuple) else [out]


def randomized(model):
    """randomize() with BatchNormalization's moving variance made positive."""
    model = randomize(model)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights([*layer.get_weights()[:-1], np.abs(layer.get_weights()[-1]) + 0.1])
    return model


def runtime_errors(model, inputs, tmp_path, onnx_run=onnx_outputs) -> dict[str, float]:
    """The largest difference from Keras' own outputs of each runtime running gateport's IR of ``model``
    (also used by tests/test_conv3d_layers.py; ``onnx_run(ir, inputs, path)`` writes and runs the ONNX file)."""
    want = keras_outputs(model, inputs)
    model.save(tmp_path / "source.keras")
    ir = read(tmp_path / "source.keras")
    schema_valid(ir)
    errors = {
        "reference": error(reference.run(ir, inputs), want),
        "gates file": error(reference.run(ir_file.load(ir_file.save(ir, tmp_path / "m.gates")), inputs), want),
        "torch": error(torch_outputs(ir, inputs, tmp_path / "torch"), want),
        "numpy": error(numpy_outputs(ir, inputs, tmp_path / "numpy_model"), want),
        "onnx": error(onnx_run(ir, inputs, tmp_path / "m.onnx"), want),
        "keras": error(keras_outputs(keras.models.load_model(keras_v3.write(ir, tmp_path / "out.keras")),
                                     inputs), want),
    }
    return errors


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_image_layer_in_every_runtime(case, tmp_path):
    _, build, make_inputs = case
    errors = runtime_errors(randomized(build()), make_inputs(), tmp_path)
    assert max(errors.values()) <= TOL, errors


REFUSED = [
    ("Conv2D channels_first", lambda: seq(L.Conv2D(2, 3, data_format="channels_first"), shape=(2, 6, 5)),
     "channels_last"),
    ("MaxPooling2D channels_first", lambda: seq(L.MaxPooling2D(data_format="channels_first"), shape=(2, 6, 4)),
     "channels_last"),
    ("MaxPooling3D", lambda: seq(L.MaxPooling3D(1), shape=(3, 3, 3, 1)), "Conv2D, Conv3D, Max/AveragePooling2D"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_in_one_line(case, tmp_path, capsys):
    from converters.cli import main

    _, build, why = case
    build().save(tmp_path / "m.keras")
    assert main(["convert", str(tmp_path / "m.keras"), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gateport: error:") and why in err[0], err
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_same_padding_is_explicit_for_static_sizes_and_same_upper_for_dynamic(tmp_path):
    """Static sizes: Conv pads with the extra row/column at the end (TensorFlow's rule); a dynamic height with
    strides: auto_pad SAME_UPPER, the same rule at run time."""
    model = randomized(asr())
    model.save(tmp_path / "source.keras")
    ir = read(tmp_path / "source.keras")
    onnx_outputs(ir, [floats((B, 10, 9))], tmp_path / "m.onnx")
    convs = [n for n in onnx.load(str(tmp_path / "m.onnx")).graph.node if n.op_type == "Conv"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in convs]
    assert [a.get("auto_pad") for a in attrs] == [b"SAME_UPPER", b"SAME_UPPER"], attrs
    model = randomize(seq(L.Conv2D(2, (4, 2), strides=3, padding="same"), shape=(8, 5, 3)))
    model.save(tmp_path / "static.keras")
    onnx_outputs(read(tmp_path / "static.keras"), [floats((B, 8, 5, 3))], tmp_path / "static.onnx")
    (conv,) = [n for n in onnx.load(str(tmp_path / "static.onnx")).graph.node if n.op_type == "Conv"]
    pads = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}["pads"]
    # height 8, kernel 4, stride 3: 3 rows out, (3 - 1) * 3 + 4 - 8 = 2 rows padded, 1 + 1; width 5, kernel 2:
    # 2 columns out, (2 - 1) * 3 + 2 - 5 = 0
    assert pads == [1, 0, 1, 0], pads
