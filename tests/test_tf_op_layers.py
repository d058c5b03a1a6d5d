"""TensorFlow calls in tf.keras functional models (TFOpLambda, SlicingOpLambda) and keras.ops in Keras 3
functional models: read through one whitelist (converters/readers/keras_tf_ops.py) into slice, reduce,
scalar, binary and the existing ops. Live Keras 3 models (torch backend) are compared with the reference
and the generated PyTorch module; the stored tf-keras fixtures with the reference; hostile arguments and
unknown functions are refused in one line naming file, layer and function."""
import json
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from converters import reference
from converters.api import read, to_torch
from converters.cli import main
from converters.readers.keras_tf_ops import KERAS3_OPS, KINDS, TF_FUNCTIONS
from helpers import assert_close

keras = pytest.importorskip("keras")
ops, L = keras.ops, keras.layers
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def _run(model, xs):
    want = [keras.ops.convert_to_numpy(o) for o in (lambda o: o if isinstance(o, list) else [o])(model(xs[0]))]
    ir = read(model)
    for got, w in zip(reference.run(ir, xs), want):
        assert_close(got, w, "reference")
    import torch

    module = to_torch(model)
    with torch.no_grad():
        outs = module(*[torch.from_numpy(x) for x in xs])
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for got, w in zip(outs, want):
        assert_close(got.numpy(), w, "torch")
    return ir


def _seq(steps=5, features=4):
    x = keras.Input((steps, features), name="x")
    return x, L.LSTM(6, return_sequences=True, name="lstm")(x)


#: name -> a function of (x, h) giving the model's outputs (h: an LSTM's (batch, 5, 6) sequence)
CASES = {
    "index_and_slices": lambda x, h: [h[:, -2], h[:, 1:, :3], h[..., 2:4], h[:, -3:-1:2, 0], h[:, 0:9:1] * 1.0,
                                      h[:, :, None], h[:, None, -1], h[..., None, 1:3], h[:, 2, None, None]],
    "reductions": lambda x, h: [ops.mean(h, axis=(1, 2), keepdims=True), ops.min(h, axis=2),
                                ops.sum(h, axis=-1, keepdims=True), ops.max(h, axis=1)],
    "arithmetic": lambda x, h: [h * L.Dense(1, name="gate")(h), h / 3.0, 2.0 ** h, ops.maximum(h, h[:, :1]),
                                0.5 - h, ops.minimum(h, -0.1), h + h],
    "shapes": lambda x, h: [ops.expand_dims(h, -1), ops.squeeze(ops.expand_dims(h, 1), 1),
                            ops.transpose(h, (0, 2, 1)), ops.reshape(h, (-1, 30)),
                            ops.concatenate([h, h[:, ::2]], axis=1), ops.flip(h, axis=1)],
    "softmax_matmul": lambda x, h: [ops.softmax(h, axis=1), ops.matmul(h, ops.transpose(h, (0, 2, 1))),
                                    ops.tanh(ops.sum(h, axis=1)), ops.sigmoid(h), ops.relu(h - 0.1)],
    "stack_and_more": lambda x, h: [ops.stack([h[:, 0], h[:, -1]], axis=1), -h, ops.square(h),
                                    ops.gelu(h, approximate=False), ops.cast(h, "float32") * 2.0,
                                    ops.clip(h, -0.2, 0.3), *ops.split(h, [1, 4], axis=1), ops.split(h, 3, axis=2)[2],
                                    ops.unstack(h, axis=1)[4], ops.tile(h[:, :1], (1, 3, 2)), ops.tile(h, (1, 1, 1))],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras3_ops_compute_what_keras_computes(case):
    x, h = _seq()
    model = keras.Model(x, CASES[case](x, h))
    xs = [np.random.default_rng(0).uniform(-1, 1, (2, 5, 4)).astype(np.float32)]
    ir = _run(model, xs)
    assert {n.source.get("class_name") for n in ir.nodes} & set(KERAS3_OPS)


def test_dynamic_time_keeps_runtime_indexing():
    """h[:, -1] and a softmax over a dynamic time axis: negative indices resolved at run time."""
    x = keras.Input((None, 3), name="x")
    h = L.GRU(4, return_sequences=True, name="gru")(x)
    a = ops.softmax(L.Dense(1, name="score")(h), axis=1)
    model = keras.Model(x, [ops.sum(h * a, axis=1), h[:, -1], ops.expand_dims(h[:, 0], 1)])
    for steps in (2, 7):
        _run(model, [np.random.default_rng(steps).uniform(-1, 1, (3, steps, 3)).astype(np.float32)])


@pytest.mark.parametrize("name", [f"{k3}ops_{n}" for k3 in ("", "k3_")
                                  for n in ("attention", "mix", "stack", "masked_attention")])
def test_fixtures_read_to_the_stored_outputs(name):
    suffix = ".keras" if name.startswith("k3_") else ".h5"
    model = read(FIXTURES / "models" / f"{name}{suffix}")
    data = np.load(FIXTURES / "expected" / f"{name}.npz")
    outs = reference.run(model, [data[f"in:{s.name}"] for s in model.inputs])
    assert len(outs) >= 1
    for k, got in enumerate(outs):
        assert_close(got, data[f"out:{k}"], f"{name} output {k}")


def test_whitelist_is_one_table():
    assert set(TF_FUNCTIONS.values()) <= set(KINDS) and set(KERAS3_OPS.values()) <= set(KINDS)


# -- hostile files --------------------------------------------------------------------------------------
def _cli(capsys, path):
    code = main(["inspect", str(path)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"gateport: error: {path}: "), err
    assert "Traceback" not in err and "\x1b" not in err
    return err


def _h5_with(tmp_path, name: str, layer: str, change) -> Path:
    """A copy of fixture ``name`` whose layer ``layer`` went through ``change(layer_json)``."""
    path = tmp_path / f"{name}.h5"
    shutil.copy(FIXTURES / "models" / f"{name}.h5", path)
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        (item,) = [it for it in cfg["config"]["layers"] if it["name"] == layer]
        change(item)
        f.attrs["model_config"] = json.dumps(cfg)
    return path


def _kwargs(**kw):
    """Set keyword arguments of the layer's first inbound entry."""
    def change(item):
        node = item["inbound_nodes"][0]
        for entry in [node] if isinstance(node[0], str) else node:  # one entry, or one per tensor (tf.concat)
            entry[3].update(kw)
    return change


def _function(fn):
    def change(item):
        item["config"]["function"] = fn
    return change


HOSTILE_TF = [
    ("ops_attention", "tf.nn.softmax", _function("os.system\x1b[31m"), ["tf.nn.softmax (TFOpLambda)",
                                                                         "'os.system\\x1b[31m'", "supported:"]),
    ("ops_attention", "tf.nn.softmax", _function(["nn.softmax"]), ["is not supported", "math.reduce_sum"]),
    ("ops_attention", "tf.nn.softmax", _function("__import__('os').system"), ["is not supported"]),
    ("ops_attention", "tf.nn.softmax", _kwargs(axis=10**30), ["axis: expected an axis from -3 to 2"]),
    ("ops_attention", "tf.nn.softmax", _kwargs(axis=-4), ["axis: expected an axis from -3 to 2", "found -4"]),
    ("ops_attention", "tf.nn.softmax", _kwargs(axis=0), ["batch axis"]),
    ("ops_attention", "tf.nn.softmax", _kwargs(axis="1; rm -rf /"), ["axis: expected an integer"]),
    ("ops_attention", "tf.nn.softmax", _kwargs(axis=True), ["axis: expected an integer"]),
    ("ops_attention", "tf.nn.softmax", _kwargs(axis=1.0), ["axis: expected an integer"]),
    ("ops_attention", "tf.nn.softmax", _kwargs(evil=1), ["parameter 'evil' is not supported"]),
    ("ops_attention", "tf.math.reduce_sum", _kwargs(axis=None), ["batch axis"]),
    ("ops_attention", "tf.math.reduce_sum", _kwargs(axis=[1, 1]), ["distinct axes"]),
    ("ops_attention", "tf.math.reduce_sum", _kwargs(axis=list(range(40))), ["expected 1 to 32 axes"]),
    ("ops_attention", "tf.math.reduce_sum", _kwargs(keepdims="yes"), ["keepdims: expected true or false"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[{"start": None, "stop": None, "step": None},
                                                                      2**40]), ["expected integers, slices"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[{"start": None, "stop": None, "step": None},
                                                                      {"start": 0, "stop": 2, "step": 0}]),
     ["expected a nonzero step, found 0"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[{"start": None, "stop": None, "step": None},
                                                                      {"start": 0.5, "stop": 2, "step": 1}]),
     ["integer bounds"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[{"start": None, "stop": None, "step": None},
                                                                      {"start": 4, "stop": None, "step": -2}]),
     ["negative step"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[1, -1, 0]), ["slicing the batch axis"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[0, 0, 0, 0]), ["expected at most 3 items for a tensor of rank 3, found 4"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[{"start": None, "stop": None, "step": None},
                                                                      {"class_name": "__ellipsis__"},
                                                                      {"class_name": "__ellipsis__"}]),
     ["at most one ..."]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[{"start": None, "stop": None, "step": None},
                                                                      -1, 9]), ["expected an index from -8 to 7 for axis 2 of size 8, found 9"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[{"start": None, "stop": None, "step": None},
                                                                      "1:2"]), ["expected integers, slices"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[None, 0]), ["a new axis before it"]),
    ("ops_attention", "tf.__operators__.getitem", _kwargs(slice_spec=[{"start": None, "stop": None, "step": None},
                                                                      -1] + [None] * 31),
     ["slice: expected at most 32 items, found 33"]),
    ("ops_attention", "tf.concat", _kwargs(axis=0), ["batch axis"]),
    ("ops_mix", "tf.compat.v1.transpose", _kwargs(perm=[1, 0, 2]), ["moves the batch axis"]),
    ("ops_mix", "tf.compat.v1.transpose", _kwargs(perm=[0, 2, 2]), ["perm: expected a permutation of 0..2"]),
    ("ops_mix", "tf.compat.v1.transpose", _kwargs(conjugate=True), ["conjugate 'True' is not supported"]),
    ("ops_mix", "tf.linalg.matmul", _kwargs(adjoint_a=True), ["adjoint_a 'True' is not supported"]),
    ("ops_mix", "tf.math.truediv", _kwargs(y=float("nan")), ["expected a tensor or a finite number"]),
    ("ops_mix", "tf.math.truediv", _kwargs(y=[[1.0] * 7] * 7), ["expected a tensor or a finite number"]),
    ("ops_mix", "tf.math.truediv", _kwargs(y="4"), ["expected a tensor or a finite number"]),
    ("ops_mix", "tf.compat.v1.squeeze", _kwargs(axis=1), ["squeeze: axis 1 has size 7, expected 1"]),
    ("ops_mix", "tf.expand_dims", _kwargs(axis=5), ["axis: expected an axis from -4 to 3"]),
    ("ops_stack", "tf.cast", _kwargs(dtype="int32"), ["cast from 'float32' to 'int32' is not supported"]),
    ("ops_stack", "tf.cast", _kwargs(dtype={"evil": 1}), ["is not supported (only casts that keep every value"]),
    ("ops_stack", "tf.stack", _kwargs(axis=None), ["batch axis"]),
    ("ops_stack", "tf.reshape", _kwargs(shape=[-1, 47]), ["multiplying to a sample's 48 elements (shape (12, 4)), found [-1, 47]"]),
    ("ops_stack", "tf.reshape", _kwargs(shape=[-1, 2**62]), ["reshape: expected a list of integers"]),
    ("ops_stack", "tf.nn.gelu", _kwargs(approximate=2), ["approximate: expected true or false"]),
    ("ops_stack", "tf.split", _kwargs(num_or_size_splits=3), ["split: expected a count dividing 4, found 3"]),
    ("ops_stack", "tf.split", _kwargs(num_or_size_splits=[1, 2]), ["expected pieces covering the 4 entries of axis 2"]),
    ("ops_stack", "tf.split", _kwargs(num_or_size_splits=[-1, 5]), ["split: expected a count or a list of sizes"]),
    ("ops_stack", "tf.split", _kwargs(num_or_size_splits=0), ["split: expected a count or a list of sizes"]),
    ("ops_stack", "tf.split", _kwargs(num=7), ["num '7' is not supported"]),
    ("ops_stack", "tf.unstack", _kwargs(num=5), ["unstack: expected num 6 (the size of axis 1), found '5'"]),
    ("ops_stack", "tf.split", _kwargs(num_or_size_splits=2, axis=0), ["batch axis"]),
    ("ops_stack", "tf.tile", _kwargs(multiples=[1, 10**9, 1]), ["tile: expected 3 repeats from 1 to 1024"]),
    ("ops_stack", "tf.tile", _kwargs(multiples=[2, 1, 1]), ["repeating the batch axis"]),
    ("ops_stack", "tf.clip_by_value", _kwargs(clip_value_min=0.5), ["clip: expected low <= high, found 0.5 and 0.3"]),
    ("ops_stack", "tf.clip_by_value", _kwargs(clip_value_max=float("inf")), ["clip high: expected a tensor or a finite"]),
]


@pytest.mark.parametrize("name,layer,change,expect", HOSTILE_TF, ids=lambda v: v if isinstance(v, str) else "")
def test_hostile_tf_calls_are_refused_in_one_line(capsys, tmp_path, name, layer, change, expect):
    err = _cli(capsys, _h5_with(tmp_path, name, layer, change))
    for text in expect:
        assert text in err, err
    assert "supported" in err or "expected" in err or "batch" in err


def _keras_with(tmp_path, name: str, layer: str, change) -> Path:
    src = FIXTURES / "models" / f"{name}.keras"
    path = tmp_path / f"{name}.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json":
                cfg = json.loads(data)
                (item,) = [it for it in cfg["config"]["layers"] if it["name"] == layer]
                change(item)
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    return path


def _config(**kw):
    def change(item):
        item["config"].update(kw)
    return change


def _class(cls):
    def change(item):
        item["class_name"] = item["registered_name"] = cls
    return change


HOSTILE_K3 = [
    ("k3_ops_attention", "softmax", _config(axis=99), ["softmax (Softmax)", "axis: expected an axis from -3 to 2"]),
    ("k3_ops_attention", "sum", _config(axis="1"), ["axis: expected an integer"]),
    ("k3_ops_attention", "sum", _class("Eval\u202e"), ["operation 'Eval\\u202e' is not supported",
                                                        "supported Keras 3 operations:"]),
    ("k3_ops_attention", "concatenate", _config(axis=0), ["batch axis"]),
    ("k3_ops_mix", "transpose", _config(axes=[1, 0, 2]), ["moves the batch axis"]),
    ("k3_ops_mix", "max", _config(initial=5.0), ["initial '5.0' is not supported"]),
    ("k3_ops_mix", "squeeze", _config(axis=None), ["squeeze without an axis is not supported"]),
]


@pytest.mark.parametrize("name,layer,change,expect", HOSTILE_K3, ids=lambda v: v if isinstance(v, str) else "")
def test_hostile_keras3_ops_are_refused_in_one_line(capsys, tmp_path, name, layer, change, expect):
    err = _cli(capsys, _keras_with(tmp_path, name, layer, change))
    for text in expect:
        assert text in err, err


def test_keras3_legacy_h5_op_nodes_are_read_as_operations(tmp_path):
    """Keras 3's legacy .h5 drops every ``module``: an operation whose class is also a layer's (Softmax,
    Multiply, Concatenate) is told apart by its config, which has no ``trainable``."""
    x, h = _seq()
    a = ops.softmax(L.Dense(1, name="score")(h), axis=1)
    y = ops.concatenate([ops.sum(h * a, axis=1), h[:, -1]], axis=-1)
    model = keras.Model(x, y)
    path = tmp_path / "ops.h5"
    model.save(path)
    xs = np.random.default_rng(1).uniform(-1, 1, (2, 5, 4)).astype(np.float32)
    ir = read(path)
    assert [n.op for n in ir.nodes if n.source.get("class_name") == "Multiply"] == ["binary"]
    assert_close(reference.run(ir, [xs])[0], keras.ops.convert_to_numpy(model(xs)), "Keras 3 .h5")


def test_intermediate_tensors_never_take_a_strangers_layer_name(tmp_path):
    """A layer named like a call's intermediate tensor (``<layer>/axis2``): the call's tensor gets another name."""
    path = _h5_with(tmp_path, "ops_mix", "tf.math.reduce_max", lambda item: None)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = f.attrs["model_config"].replace('"tf.math.reduce_max"',
                                                                  '"tf.__operators__.getitem/axis2"')
    model = read(path)
    produced = [t for n in model.nodes for t in n.outputs]
    assert len(produced) == len(set(produced)) and "tf.__operators__.getitem/axis2'" in produced
    data = np.load(FIXTURES / "expected" / "ops_mix.npz")
    for k, got in enumerate(reference.run(model, [data["in:x"]])):
        assert_close(got, data[f"out:{k}"], f"output {k}")


# -- the bound on a split / unstack's pieces (keras_tf_ops.MAX_PIECES: one slice node each) ------------------
LONG = 1026  # time steps: over MAX_PIECES (1024) and a multiple of 6, the fixture's (its reshape keeps 48 * LONG / 6)
_ALL = {"start": None, "stop": None, "step": None}


def _edited(tmp_path, fmt: str, changes: dict) -> Path:
    """A copy of ops_stack (tf.keras TFOpLambda, .h5) or k3_ops_stack (Keras 3 op nodes, .keras) whose layers went
    through ``changes[name](layer_json)`` (names as the .h5 has them; the .keras one's are mapped)."""
    k3 = fmt == "keras"
    names = {"tf.split": "split", "tf.unstack": "unstack", "tf.reshape": "reshape",
             "tf.__operators__.getitem_3": "get_item_3"} if k3 else {}
    src = FIXTURES / "models" / ("k3_ops_stack.keras" if k3 else "ops_stack.h5")
    path = tmp_path / src.name
    if k3:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename == "config.json":
                    cfg = json.loads(data)
                    _apply(cfg, {names.get(k, k): v for k, v in changes.items()})
                    data = json.dumps(cfg).encode()
                zout.writestr(info, data)
    else:
        shutil.copy(src, path)
        with h5py.File(path, "r+") as f:
            cfg = json.loads(f.attrs["model_config"])
            _apply(cfg, changes)
            f.attrs["model_config"] = json.dumps(cfg)
    return path


def _apply(cfg: dict, changes: dict) -> None:
    layers = {it["name"]: it for it in cfg["config"]["layers"]}
    for name, change in changes.items():
        change(layers[name])


def _params(**kw):
    """Set a call's arguments as the format stores them: tf.keras in the inbound entry's kwargs, Keras 3 in the
    op node's config."""
    def change(item):
        (item["config"] if "module" in item else item["inbound_nodes"][0][3]).update(kw)
    return change


def _long_time(item):
    """The model input with LONG steps; the reshape of the concatenated (2 * LONG, 4) to [-1, 8 * LONG]."""
    if item["class_name"] == "InputLayer":
        key = "batch_shape" if "batch_shape" in item["config"] else "batch_input_shape"
        item["config"][key] = [None, LONG, 3]
    else:
        _params(**{"newshape" if "module" in item else "shape": [-1, 8 * LONG]})(item)


def _empty_time(item):
    """getitem_3 as ``h[:, 0:0]``: an axis of size 0, which any count divides."""
    if "module" in item:
        item["inbound_nodes"][0]["args"][1] = [{"class_name": "__slice__", "config": _ALL},
                                               {"class_name": "__slice__", "config": {"start": 0, "stop": 0, "step": 1}}]
    else:
        item["inbound_nodes"][0][3]["slice_spec"] = [_ALL, {"start": 0, "stop": 0, "step": 1}]


def _split_of_empty(count):
    """The split reads getitem_3's output, on axis 1, into ``count`` pieces."""
    def change(item):
        if "module" in item:
            item["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["get_item_3", 0, 0]
            item["config"].update(indices_or_sections=count, axis=1)
        else:
            item["inbound_nodes"][0][0] = "tf.__operators__.getitem_3"
            item["inbound_nodes"][0][3].update(num_or_size_splits=count, axis=1)
    return change


LONG_TIME = {"x": _long_time, "tf.reshape": _long_time}
PIECES = [
    ({**LONG_TIME}, f"tf.unstack (TFOpLambda): unstack: expected at most 1024 pieces, found {LONG}"),
    ({**LONG_TIME, "tf.split": _params(num_or_size_splits=LONG, axis=1)},
     f"tf.split (TFOpLambda): split: expected at most 1024 pieces, found {LONG}"),
    ({"tf.__operators__.getitem_3": _empty_time, "tf.split": _split_of_empty(2**31 - 1)},
     "tf.split (TFOpLambda): split: expected at most 1024 pieces, found 2147483647"),
    ({"tf.split": _params(num_or_size_splits=2**31)}, "split: expected a count or a list of sizes, found '2147483648'"),
]


@pytest.mark.parametrize("fmt", ["h5", "keras"])
@pytest.mark.parametrize("changes,expect", PIECES, ids=["unstack", "split", "split_2**31-1_of_0", "split_2**31"])
def test_splits_over_the_pieces_bound_are_refused_in_one_line(capsys, tmp_path, fmt, changes, expect):
    """The fixtures' own split / unstack calls (tf.keras TFOpLambda kwargs, Keras 3 Split / Unstack op nodes) over
    an axis of LONG steps, or a count up to 2**31 - 1 of an empty axis (which it divides): refused by the count,
    before a list of that many pieces is built (tracemalloc: a few MiB where 2**31 - 1 bounds would take 100 GiB)."""
    import tracemalloc

    path = _edited(tmp_path, fmt, changes)
    if fmt == "keras":  # Keras 3 names: split (Split), unstack (Unstack)
        expect = expect.replace("tf.split (TFOpLambda)", "split (Split)").replace("tf.unstack (TFOpLambda)",
                                                                                  "unstack (Unstack)")
    tracemalloc.start()
    try:
        err = _cli(capsys, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert expect in err, err
    assert peak < 64 * 2**20, peak
