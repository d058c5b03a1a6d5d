"""The one-row-per-fact tables are complete and consistent, and every column computes what its row says.

converters/activations.py: one row per IR activation (numpy, Keras 2/3 spellings, torch, numpy code,
ONNX op, ONNX recurrent name); every column is filled or says NOT_EXPRESSIBLE, the reverse maps the
readers use round-trip, and each spelling is run in its own runtime against the numpy definition.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from converters import activations as act
from converters.activations import COMPOSED, NOT_EXPRESSIBLE, TABLE
from converters.writers import numpy_templates, onnx_activations, torch_templates
from helpers import assert_close

ROOT = Path(__file__).resolve().parent.parent
#: Points around every kink of the activations (0, +-0.5, +-1, +-2.5, +-3, 6) and both tails.
X = np.concatenate([np.linspace(-8.0, 8.0, 161), [-3.0, -2.5, -1.0, -0.5, 0.5, 1.0, 2.5, 3.0, 6.0]])
COLUMNS = ("numpy", "keras2", "keras3", "torch", "numpy_code", "onnx", "onnx_recurrent")


@pytest.mark.parametrize("name", list(TABLE))
def test_every_activation_fills_every_column_or_says_not_expressible(name):
    row = TABLE[name]
    assert row.name == name and callable(row.numpy)
    for field in COLUMNS:
        assert getattr(row, field) is not None, f"{name}.{field}: a value or NOT_EXPRESSIBLE"
    expr, module, helper = row.torch
    assert "{}" in expr and module.endswith(")") and (helper is None or helper in torch_templates.HELPERS)
    expr, helper = row.numpy_code
    assert "{}" in expr and (helper is None or helper in numpy_templates.HELPERS)
    assert row.onnx == COMPOSED and name in onnx_activations.COMPOSED or (
        isinstance(row.onnx, tuple) and name not in onnx_activations.COMPOSED
        and set(row.onnx[1]) <= set(act.ONNX_OP_DEFAULTS.get(row.onnx[0], {})))
    if row.onnx_recurrent is not NOT_EXPRESSIBLE:
        rec, alpha, beta = row.onnx_recurrent
        assert not row.axis_wise
        takes = act.ONNX_RECURRENT_ARGS.get(rec, (None, None))
        assert (alpha is None) == (takes[0] is None) and (beta is None) == (takes[1] is None), name


@pytest.mark.parametrize("name", list(TABLE))
def test_reverse_maps_round_trip(name):
    row = TABLE[name]
    if row.keras2 is not NOT_EXPRESSIBLE:
        assert act.from_keras(row.keras2, "2.2.4") == name
        assert act.from_keras(row.keras2, None) == name  # Keras 1
    if row.keras3 is not NOT_EXPRESSIBLE:
        assert act.from_keras(row.keras3, "3.15.1") == name
    if isinstance(row.onnx, tuple):
        assert act.from_onnx_op(*row.onnx) == name
    if row.onnx_recurrent is not NOT_EXPRESSIBLE:
        assert act.from_onnx_recurrent(*row.onnx_recurrent) == name


def test_keras_spellings_by_version_and_refusals():
    assert act.from_keras("hard_sigmoid", "2.21.0") == "hard_sigmoid_keras2"
    assert act.from_keras("hard_sigmoid", "3.0.1") == "hard_sigmoid_keras3"
    assert act.from_keras("silu", "2.21.0") == act.from_keras("swish", "3.1") == "swish"
    assert act.from_keras({"class_name": "function", "config": "tanh"}, "3.1") == "tanh"
    for ir_only in ("hard_sigmoid_keras2", "hard_sigmoid_keras3", "gelu_tanh"):
        with pytest.raises(act.UnsupportedError, match="not supported"):
            act.from_keras(ir_only, "3.1")
    with pytest.raises(act.UnsupportedError, match="halves the last axis"):
        act.from_keras("glu", "3.1")


def test_onnx_reverse_maps_refuse_other_arguments():
    assert act.from_onnx_op("LeakyRelu", {}) is None  # ONNX's default alpha 0.01, Keras' 0.2
    assert act.from_onnx_op("HardSigmoid", {"alpha": 0.25}) is None
    assert act.from_onnx_op("Elu", {"alpha": "1"}) is None  # a stranger's string is not a number
    assert act.from_onnx_op("Selu", {}) == "selu"  # ONNX's defaults are SELU's constants in float32
    with pytest.raises(act.UnsupportedError, match=r"found 'Bogus'"):
        act.from_onnx_recurrent("Bogus", None, None)
    with pytest.raises(act.UnsupportedError, match=r"found HardSigmoid\(alpha=0.3, beta=0.5\)"):
        act.from_onnx_recurrent("HardSigmoid", 0.3, 0.5)


def test_selu_constants_are_written_once():
    hits = [p for p in (ROOT / "converters").rglob("*.py") if "1.673263242354377" in p.read_text()]
    assert [p.name for p in hits] == ["activations.py"]


def _inputs(row) -> np.ndarray:
    """X, or for a function defined on positive numbers only (sqrt, log: NaN below, alike in every runtime) |X| + 0.1."""
    with np.errstate(invalid="ignore", divide="ignore"):
        x = X if np.isfinite(row.numpy(X)).all() else np.abs(X) + 0.1
    return x.reshape(1, -1) if row.axis_wise else x


@pytest.mark.parametrize("name", list(TABLE))
def test_torch_and_numpy_code_compute_the_definition(name):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch import nn

    row, x = TABLE[name], _inputs(TABLE[name])
    want = row.numpy(x)
    expr, module, helper = row.torch
    scope = {"torch": torch, "F": F, "nn": nn, "Tensor": torch.Tensor}
    exec(torch_templates.helper_source({helper}) if helper else "", scope)
    scope["t"] = t = torch.tensor(x)
    assert_close(eval(expr.format("t"), scope), want, f"{name} torch expression")
    assert_close(eval(module, scope)(t), want, f"{name} torch module")
    expr, helper = row.numpy_code
    scope = {"np": np, "math": __import__("math")}
    exec(numpy_templates.helper_source({helper}) if helper else "", scope)
    assert_close(eval(expr.format("x"), {**scope, "x": x}), want, f"{name} numpy code")


def test_onnx_ops_compute_the_definition():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper, numpy_helper

    from converters.writers.onnx_builder import GraphBuilder

    g = GraphBuilder(17)
    g.ranks["x"], g.dtypes["x"] = 2, "float32"
    outs = {name: onnx_activations.apply_activation(g, name, "x", out=f"y_{k}") for k, name in enumerate(TABLE)}
    f32 = onnx.TensorProto.FLOAT
    graph = helper.make_graph(g.nodes, "t", [helper.make_tensor_value_info("x", f32, None)],
                              [helper.make_tensor_value_info(o, f32, None) for o in outs.values()],
                              initializer=[numpy_helper.from_array(a, n) for n, a in g.weights.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": X.reshape(1, -1).astype(np.float32)})
    for name, y in zip(outs, got):
        with np.errstate(invalid="ignore", divide="ignore"):
            want = TABLE[name].numpy(X.reshape(1, -1))
        defined = np.isfinite(want)  # sqrt, log: NaN / -inf outside their domain, in onnxruntime the same
        assert np.array_equal(np.isfinite(y), defined), f"{name}: onnxruntime's undefined points differ"
        scale = np.maximum(1.0, np.abs(want[defined]))  # float32 runs: exp(8) ~ 2981 holds 3e-4 of rounding
        assert_close(y[defined] / scale, want[defined] / scale, f"{name} onnx (relative above 1)")


def test_onnx_recurrent_names_compute_the_definition():
    """An ONNX RNN node with identity weights (one unit per input) applies the activation to x."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper, numpy_helper

    names = list(onnx_activations.RECURRENT)
    x = X.astype(np.float32).reshape(1, -1, 1)  # one time step, batch of points, one feature
    f32 = onnx.TensorProto.FLOAT
    nodes, inits, outputs = [], [numpy_helper.from_array(np.ones((1, 1, 1), np.float32), "W"),
                                 numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "R")], []
    for k, name in enumerate(names):
        nodes.append(helper.make_node("RNN", ["x", "W", "R"], [f"y{k}"], hidden_size=1,
                                      **onnx_activations.recurrent_activation_attrs([name])))
        outputs.append(helper.make_tensor_value_info(f"y{k}", f32, None))
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", f32, None)], outputs, inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for name, y in zip(names, got):
        assert_close(y.reshape(-1), TABLE[name].numpy(X), f"{name} in an ONNX RNN")


def test_keras3_spellings_compute_the_definition():
    keras = pytest.importorskip("keras")
    for name, spelling in act.column("keras3").items():
        x = _inputs(TABLE[name])
        got = keras.ops.convert_to_numpy(keras.activations.get(spelling)(keras.ops.convert_to_tensor(x)))
        assert_close(got, TABLE[name].numpy(x), f"{name} as Keras 3 {spelling!r}")


def test_no_module_spells_the_activation_list_again():
    """The writers' and readers' activation dicts are columns of the table: no module maps an IR
    activation to a spelling (a string or a tuple of strings) but activations.py."""
    pattern = re.compile(r'"(hard_sigmoid_keras[23]|sparse_sigmoid|swish|selu)":\s*\(?["\']')
    spelled = [p.relative_to(ROOT).as_posix() for p in (ROOT / "converters").rglob("*.py")
               if pattern.search(p.read_text()) and p.name != "activations.py"]
    assert spelled == []


# -- converters/keras_classes.py ---------------------------------------------------------------
from converters import keras_classes as kc  # noqa: E402
from converters.keras_classes import CLASSES  # noqa: E402


def test_every_class_the_keras_readers_dispatch_has_a_row():
    from converters.readers.keras_build import HANDLERS
    from converters.readers.keras_layers import IDENTITY_CLASSES, MERGE_OPS
    from converters.readers.keras_recurrent import CELL_KINDS, LAYER_KINDS

    missing = sorted(set(HANDLERS) - set(CLASSES))
    assert not missing, f"add rows to converters/keras_classes.py for {missing}"
    assert (LAYER_KINDS, CELL_KINDS, IDENTITY_CLASSES, MERGE_OPS) == (
        kc.LAYER_KINDS, kc.CELL_KINDS, kc.IDENTITY_CLASSES, kc.MERGE_OPS)


def test_every_class_the_keras_writer_writes_has_a_row_with_its_mask_rule():
    from converters.writers.keras_layers import LAYERS
    from converters.writers.keras_tf_ops import LAYERS as OPERATIONS  # Keras 3 operation nodes, no layer class

    ops = set(LAYERS) - {"identity"} - set(OPERATIONS)
    written = {c.op for c in CLASSES.values() if c.written}
    assert ops <= written | {"global_pool", "pool1d"}, sorted(ops - written)
    for c in CLASSES.values():
        if c.written:
            assert c.mask_out is not None, c.name
            assert c.mask_arg in (None, "uses", "ignores") and c.weights in (True, False, None)
    assert kc.WRITTEN_CLASS["identity"] == "Dropout" and kc.RECURRENT_CLASS["simple_rnn"] == "SimpleRNN"


def test_class_columns_round_trip_and_storage_names():
    for op, cls in kc.WRITTEN_CLASS.items():
        assert CLASSES[cls].op == op
    for cls, op in {**kc.LAYER_KINDS, **kc.CELL_KINDS}.items():
        assert op in kc.RECURRENT_CLASS and CLASSES[cls].weights is True
    # keras/src/utils/naming.py to_snake_case, as a .keras file names the groups
    assert [CLASSES[c].storage for c in ("LSTM", "SimpleRNN", "GRUCell", "GlobalAveragePooling1D", "PReLU")] == [
        "lstm", "simple_rnn", "gru_cell", "global_average_pooling1d", "p_re_lu"]
    for c in CLASSES.values():
        for option, default in c.version_defaults.items():
            assert option in ("recurrent_activation", "reset_after") and callable(default), c.name


@pytest.mark.parametrize("version,activation,reset_after", [
    (None, "hard_sigmoid", False), ("1.2.2", "hard_sigmoid", False), ("2.0.8", "hard_sigmoid", False),
    ("2.1.6", "hard_sigmoid", False), ("2.2.5", "hard_sigmoid", False), ("2.2.4-tf", "hard_sigmoid", False),
    ("2.3.1", "sigmoid", False), ("2.4.0", "sigmoid", True), ("2.21.0", "sigmoid", True),
    ("3.15.1", "sigmoid", True)])
def test_version_dependent_defaults(version, activation, reset_after):
    """SEMANTICS.md §3.3: Keras 1 and 2.0-2.2 hard_sigmoid; 2.3 sigmoid; GRU reset after from tf.keras 2.4."""
    assert kc.version_default("LSTM", "recurrent_activation", version) == activation
    assert kc.version_default("GRUCell", "recurrent_activation", version) == activation
    assert kc.version_default("GRU", "reset_after", version) is reset_after
    # ConvLSTM kept hard_sigmoid through tf-keras 2.x (tf_keras/src/layers/rnn/conv_lstm2d.py)
    conv = "sigmoid" if version and version.startswith("3") else "hard_sigmoid"
    assert kc.version_default("ConvLSTM2D", "recurrent_activation", version) == conv


def test_a_config_without_recurrent_activation_gets_its_versions_default(tmp_path):
    """The Keras reader and the weights-only inference agree: a tf-keras 2.21 LSTM config that omits
    recurrent_activation is sigmoid (it was hard_sigmoid for every Keras 2 before the table)."""
    import json

    import h5py

    from converters.readers import read as read_h5

    for version, want in (("2.21.0", "sigmoid"), ("2.2.4", "hard_sigmoid_keras2")):
        config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3, 2], "name": "x"}},
            {"class_name": "LSTM", "config": {"name": "lstm", "units": 1}}]}}
        path = tmp_path / f"m{version}.h5"
        with h5py.File(path, "w") as f:
            f.attrs["model_config"] = json.dumps(config)
            f.attrs["keras_version"] = version
            g = f.create_group("model_weights")
            g.attrs["layer_names"] = [b"lstm"]
            lstm = g.create_group("lstm")
            lstm.attrs["weight_names"] = [b"lstm/kernel:0", b"lstm/recurrent_kernel:0", b"lstm/bias:0"]
            lstm.create_dataset("lstm/kernel:0", data=np.zeros((2, 4), np.float32))
            lstm.create_dataset("lstm/recurrent_kernel:0", data=np.zeros((1, 4), np.float32))
            lstm.create_dataset("lstm/bias:0", data=np.zeros(4, np.float32))
        node = next(n for n in read_h5(str(path)).nodes if n.op == "lstm")
        assert node.options["recurrent_activation"] == want, version


def _onnx_round_trip(model, tmp_path):
    from converters.readers import onnx_model
    from converters.writers import onnx_graph

    path = tmp_path / f"{model.name}.onnx"
    onnx_graph.write(model, path)
    return onnx_model.read(path)


def test_every_onnx_spelling_reads_back_as_its_activation(tmp_path):
    """The writer's column and the readers' computed reverse agree on every row ONNX can express."""
    from converters.ir import Model, Node, TensorSpec, set_recurrent_weights

    rng = np.random.default_rng(0)
    elementwise = [n for n, a in TABLE.items() if isinstance(a.onnx, tuple)]
    nodes = [Node(f"a{k}", "activation", ["x"], [f"y{k}"], {"activation": n}) for k, n in enumerate(elementwise)]
    back = _onnx_round_trip(Model("elementwise", [TensorSpec("x", (None, 3, 2))], [f"y{k}" for k in range(len(nodes))],
                                  nodes), tmp_path)
    assert [n.options["activation"] for n in back.nodes if n.op == "activation"] == elementwise
    for name in onnx_activations.RECURRENT:
        node = Node("rnn", "simple_rnn", ["x"], ["y"], {"units": 2, "input_size": 2, "activation": name,
                                                        "return_sequences": True})
        set_recurrent_weights(node, "forward", "keras", rng.normal(size=(2, 2)), rng.normal(size=(2, 2)),
                              rng.normal(size=2))
        back = _onnx_round_trip(Model(f"rnn_{name}", [TensorSpec("x", (None, 3, 2))], ["y"], [node]), tmp_path)
        assert [n.options["activation"] for n in back.nodes if n.op == "simple_rnn"] == [name]
