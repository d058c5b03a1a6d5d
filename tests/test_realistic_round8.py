"""Round-8 realistic models (fixtures/realistic_round8.py), built live under Keras 3 (torch backend) and saved as
``.keras`` (reference, PyTorch, ONNX and Keras 3 loading gateport's .keras against Keras' own outputs) and as legacy
``.h5`` (read, and its reference against Keras), within TOL; no fixture files: the fixture folder's byte budget is
full. The helpers are round 6's (tests/test_realistic_round6.py).

The round's sweep (41 models; live under Keras 3 torch, and ``fixtures/sweep_round4.py make OUT --round 8`` under
tf-keras 2.21 (.h5, weights-only .h5 + JSON, its .keras) and Keras 3 TensorFlow, 152 files, then ``verify --to
torch,numpy,onnx,keras``; four are Keras 3 only: Normalization(invert=True), Attention scores as an output,
GroupNormalization, the or of merged masks) found two refusals of what gateport should read, both read now:
EinsumDense with a Dense equation ("abc,cd->abd", "...c,cd->...d", "ab,bc->ac"; other equations refused in one line),
and a Keras 3 Concatenate (last axis) of a Masking sequence beside an Embedding(mask_zero) sequence before an LSTM,
which converted to PyTorch and ONNX but the Keras writer refused ("the mask Keras 3 derives for its input differs"):
its tracker keyed a Concatenate of differently masked inputs as a concatenation, not as the or the reader's mask_or
is (one key function now, keras_graph._or_key). Refused in one line: GRU(activation="selu") to ONNX (no ONNX
recurrent activation is selu; PyTorch and Keras convert it). Worst error: live, 4.8e-6 (ONNX,
``forecaster_normalize_denormalize``); the sweep's 149 passing files within 1.0e-5 (Keras 3 TensorFlow
``seq2seq_mha_cross_attention_gru``'s Keras target; 6.3e-6 in PyTorch and ONNX). tf-keras' ``tf_nmt_bigru_sum_mha`` fails verify in ONNX only, 1.64e-5 on a
logit of 7.5 (float32 rounding: the cross-attention's output reaches 27 with these seeded weights, ONNX within
1.2e-5 of the float64 reference there, TensorFlow itself 4.7e-6 off it); the other targets pass. Relu and linear
gates (``unbounded_gate_rnns``) are checked at a weight scale of 0.2: at 0.5 a GRU's state reaches ~1e4 and every
target stays within 1e-7 relative, beyond the absolute TOL.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("onnxruntime")

import test_layers_coverage as cov  # noqa: E402  (its runtimes: torch, onnx, keras)
import test_realistic_round6 as r6t  # noqa: E402  (round 6's seeded weights and every-target check)
from helpers import TOL  # noqa: E402

from converters import reference  # noqa: E402
from converters.readers import read  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fixtures"))
import realistic_round8 as r8  # noqa: E402
from fixture_inputs import floats  # noqa: E402

LIVE = [m for m in r8.ROUND8 if m.only != "tf"]


def _built(m, tmp_path):
    return r6t.live_built(m, seed=8, input_seed=13)


@pytest.mark.parametrize("m", LIVE, ids=[m.name for m in LIVE])
def test_round8_model_in_every_target(m, tmp_path):
    r6t.check_live_model(m, tmp_path, seed=8, input_seed=13)


def test_concatenate_of_masking_and_embedding_masks_is_their_or(tmp_path):
    """Keras 3's Concatenate on the last axis ORs its inputs' masks (keras/src/layers/merging/concatenate.py
    compute_mask): the Keras writer rebuilds masking_and_embedding_merged (was refused), and the inputs tell the or
    from the and (a middle step masked in the floats only): read as an and, the reference misses Keras."""
    (m,) = [m for m in r8.ROUND8 if m.name == "masking_and_embedding_merged"]
    model, inputs, want = _built(m, tmp_path)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    inputs = [x.astype(s.dtype) for x, s in zip(inputs, ir.inputs)]
    assert max(r6t._every_target(ir, inputs, want, tmp_path).values()) <= TOL
    (node,) = [n for n in ir.nodes if n.op == "mask_or"]
    node.op = "mask_and"
    assert cov.error(reference.run(ir, inputs), want) > 1e-3


def test_gru_selu_activation_refused_for_onnx_in_one_line(tmp_path):
    """GRU(activation="selu"): PyTorch and Keras match Keras; ONNX's GRU has no selu activation (onnx/defs/rnn/
    defs.cc), so the ONNX target refuses naming the layer and what it can express."""
    from converters.errors import UnsupportedError

    keras.backend.clear_session()
    L = keras.layers
    x = keras.Input((5, 3), name="x")
    model = keras.Model(x, L.GRU(3, activation="selu", reset_after=False, name="gru_selu")(x))
    r6t._live_weights(model, seed=8, scale=0.5)
    inputs = [floats(np.random.default_rng(3), (3, 5, 3), "float32")]
    want = cov.keras_outputs(model, inputs)
    model.save(tmp_path / "m.keras")
    ir = read(tmp_path / "m.keras")
    assert cov.error(cov.torch_outputs(ir, inputs, tmp_path / "torch"), want) <= TOL
    with pytest.raises(UnsupportedError, match=r"gru_selu \(GRU\): expected a recurrent activation ONNX can "
                                               r"express exactly \(.*\), found 'selu'") as caught:
        cov.onnx_outputs(ir, inputs, tmp_path / "m.onnx")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("equation, bias_axes, shape", [
    ("abc,cde->abde", None, (5, 2, 2)),  # a kernel with two output axes
    ("abc,dc->abd", None, (None, 2)),  # the kernel transposed
    ("abc,cd->abd", "b", (5, 2)),  # a bias over time
])
def test_einsum_dense_other_than_a_dense_refused_in_one_line(equation, bias_axes, shape, tmp_path):
    """EinsumDense is read as the Dense its equation is (einsum_dense_projections_rnn); any other equation or bias is
    refused naming the layer, the equation and the form expected."""
    from converters.errors import UnsupportedError

    keras.backend.clear_session()
    x = keras.Input((5, 3), name="x")
    layer = keras.layers.EinsumDense(equation, output_shape=shape, bias_axes=bias_axes, name="ed")
    keras.Model(x, layer(x)).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedError, match=r"ed \(EinsumDense\): EinsumDense equation '" + equation + r"' with "
                                               r"bias_axes .* is not supported: expected a Dense one, '<axes>c,cd->"
                                               r"<axes>d' with bias_axes 'd' or none") as caught:
        read(tmp_path / "m.keras")
    assert "\n" not in str(caught.value)
