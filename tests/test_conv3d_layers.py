"""Conv3D (channels last) over the frames a ConvLSTM2D stack returns, as the keras.io "Next-frame video prediction
with Convolutional LSTMs" tutorial ends (examples/vision/conv_lstm.py: ConvLSTM2D x3 with BatchNormalization,
then Conv3D(1, (3, 3, 3), sigmoid, same)), and Conv3D alone: each Keras 3 model (torch backend) built here, read
from its ``.keras`` file and run by every runtime (numpy reference, .gates round trip, generated PyTorch and numpy,
onnxruntime, Keras 3 loading gateport's ``.keras``) within 1e-5 of Keras' own outputs (tests/test_conv2d_layers.py's
runtime_errors); channels_first refused in one line. TensorFlow's 'same' rule (the odd frame/row/column at the
end) is the one Keras 3 reproduces on the torch backend (keras/src/backend/torch/nn.py, _apply_same_padding).
"""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from collections import Counter  # noqa: E402

from converters.writers import onnx_graph  # noqa: E402
from helpers import TOL  # noqa: E402
from test_conv2d_layers import randomized, runtime_errors, test_refused_in_one_line as refused_in_one_line  # noqa: E402
from test_layers_coverage import floats, seq  # noqa: E402

L = keras.layers
B = 2


def next_frame(frames=None, size=6):
    """The tutorial model shrunk: 4 filters instead of 64, 6x6 frames; the frame count dynamic as there."""
    return seq(L.ConvLSTM2D(4, (5, 5), padding="same", return_sequences=True, activation="relu"),
               L.BatchNormalization(),
               L.ConvLSTM2D(4, (3, 3), padding="same", return_sequences=True, activation="relu"),
               L.BatchNormalization(),
               L.ConvLSTM2D(4, (1, 1), padding="same", return_sequences=True, activation="relu"),
               L.Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same"), shape=(frames, size, size, 1))


def tamed(model):
    """randomized(), the ConvLSTM2D weights scaled by 1/4: random normal 5x5 kernels through three relu ConvLSTMs
    and BatchNormalizations otherwise reach ~1e3 before the Conv3D, where float32 itself (Keras) is off by 1e-4."""
    model = randomized(model)
    for layer in model.layers:
        if isinstance(layer, L.ConvLSTM2D):
            layer.set_weights([w / 4 for w in layer.get_weights()])
    return model


def conv3d(layer, shape):
    """Conv3D alone on ``shape`` (no batch), randomized."""
    return randomized(seq(layer, shape=shape))


#: (id, randomized model builder, input shape with batch)
CASES = [
    ("next-frame ConvLSTM2D -> BatchNormalization -> Conv3D, frames static", lambda: tamed(next_frame(5)),
     (B, 5, 6, 6, 1)),
    ("Conv3D valid strides no bias", lambda: conv3d(L.Conv3D(3, (2, 3, 2), strides=(2, 1, 2), use_bias=False),
                                                    (5, 6, 7, 2)), (B, 5, 6, 7, 2)),
    ("Conv3D same even kernel strides (odd pad at the end)", lambda: conv3d(
        L.Conv3D(2, (2, 4, 3), strides=(2, 3, 2), padding="same", activation="relu"), (5, 8, 7, 3)),
     (B, 5, 8, 7, 3)),
    ("Conv3D same dilated groups tanh", lambda: conv3d(
        L.Conv3D(4, 3, dilation_rate=(1, 2, 2), groups=2, padding="same", activation="tanh"), (4, 7, 6, 2)),
     (B, 4, 7, 6, 2)),
    ("Conv3D valid dilated", lambda: conv3d(L.Conv3D(2, (2, 2, 3), dilation_rate=(2, 1, 2)), (5, 4, 7, 1)),
     (B, 5, 4, 7, 1)),
    ("Conv3D same strides, depth dynamic", lambda: conv3d(L.Conv3D(2, 3, strides=2, padding="same"), (None, 6, 5, 2)),
     (B, 5, 6, 5, 2)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_conv3d_in_every_runtime(case, tmp_path):
    _, build, shape = case
    errors = runtime_errors(build(), [floats(shape)], tmp_path)
    assert max(errors.values()) <= TOL, errors


def scan_onnx_outputs(ir, inputs, path):
    """onnxruntime's outputs of a model whose ConvLSTMs see a dynamic frame count: one Scan each (the Conv3D's
    'same' pads need no sizes at stride 1)."""
    onnx_graph.write(ir, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    counts = Counter(n.op_type for n in proto.graph.node)
    assert counts["Scan"] == 3 and counts["Conv"] >= 1, counts
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {ir.inputs[0].name: inputs[0]})


@pytest.mark.parametrize("frames", [1, 5])
def test_next_frame_model_with_dynamic_frames(frames, tmp_path):
    """The tutorial's Input((None, H, W, 1)): every runtime, the ONNX ConvLSTMs as Scans; frames in [0, 1) as the
    tutorial's (pixels / 255)."""
    x = np.abs(floats((B, frames, 6, 6, 1))) % 1
    errors = runtime_errors(tamed(next_frame()), [x], tmp_path, scan_onnx_outputs)
    assert max(errors.values()) <= TOL, errors


REFUSED = [
    ("Conv3D channels_first", lambda: seq(L.Conv3D(2, 2, data_format="channels_first"), shape=(2, 3, 4, 4)),
     "channels_last"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_conv3d_refused_in_one_line(case, tmp_path, capsys):
    refused_in_one_line(case, tmp_path, capsys)
