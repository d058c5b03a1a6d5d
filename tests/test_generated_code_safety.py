"""Names and strings from an input never become code, and never break an output.

Every layer name, tensor name, the model name, ``keras_version`` and the input file's name come
from a stranger. For arbitrary Unicode (line breaks, quotes, triple quotes, backslashes, NUL, bidi
controls, ``x²``, ``ﬁlter`` next to ``filter``, keywords, dunders, code that would create a marker
file) every writer's output must work: ``model.py`` parses, imports, loads its weights and matches
the numpy reference; the ``.onnx`` passes the checker and runs in onnxruntime; the ``.keras`` loads in
``keras.saving.load_model(safe_mode=True)``; and the marker file never appears. Masking with a NaN or
infinite ``mask_value`` is checked against Keras 3 itself.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import itertools
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("safetensors")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from converters import reference  # noqa: E402
from converters.errors import FormatError, UnsupportedError  # noqa: E402
from converters.ir import Gate, Model, Node, TensorSpec  # noqa: E402
from converters.writers import keras_v3, numpy_code, onnx_graph, torch_code, torch_state  # noqa: E402
from cases import KEEP, B, F, T, U, keras, keras_outputs, node_of, randomize  # noqa: E402

L = keras.layers
import helpers  # noqa: E402

assert_close = functools.partial(helpers.assert_close, nonfinite=True)  # NaN and infinities only where Keras has them
#: Created by any payload that runs; it must never exist.
MARKER = Path(tempfile.gettempdir()) / f"gateport-generated-code-ran-{os.getpid()}"
RUN = f'__import__("builtins").open({str(MARKER)!r}, "w").close()'
PAYLOADS = [
    f"\n{RUN}\n", f"\r{RUN}\r", f"\r\n{RUN}#", f'"""\n{RUN}\n"""', f"'''\n{RUN}\n'''", f'"+{RUN}+"',
    f"'+{RUN}+'", f"');{RUN};#", f'");{RUN};#', f"x\\\n{RUN}", RUN, f"{{{RUN}}}", f"\u2028{RUN}",
    f"\x0c\n{RUN}", f"\\N{{x}}\n{RUN}", f"\x00\n{RUN}", f'3"""\n{RUN}\n"""',
]
TRICKY = ["", " ", "\\", "\x00", "\u202e", "\u2066x\u2069", "x²", "ﬁlter", "filter", "class", "None", "match",
          "_", "__init__", "__class__", "forward", "self", "torch", "F", "nn", "Tensor", "os", "float", "Model",
          "load_model", "1x", "a/b", "/", "a.b", ".", "é", "e\u0301", "𝔁", "٣", "\ud800", "a" * 300]
NAME = st.one_of(st.sampled_from(PAYLOADS + TRICKY), st.text(max_size=12))
#: Tensor names of the test model: inputs first, then what the nodes make.
TENSORS = ("x", "x2", "m", "xm", "y1", "y2", "s", "out")
LAYERS = 6
FIELDS = ("model", "keras_version", "path")


@st.composite
def names(draw) -> dict:
    """Names for every slot of :func:`build`: tensors distinct (a graph needs it), layers anything."""
    tensors = draw(st.lists(NAME, min_size=len(TENSORS), max_size=len(TENSORS), unique=True))
    return {"tensors": tensors, "layers": draw(st.lists(NAME, min_size=LAYERS, max_size=LAYERS)),
            **{f: draw(NAME) for f in FIELDS}}


def fixed(tensors, layers, text) -> dict:
    """An explicit example: tensor and layer names cycled from lists, ``text`` for the other slots."""
    tensors = [f"{t}#{k}" if tensors.count(t) > 1 else t for k, t in enumerate(tensors[:len(TENSORS)])]
    return {"tensors": tensors, "layers": list(itertools.islice(itertools.cycle(layers), LAYERS)),
            **{f: text for f in FIELDS}}


EXAMPLES = [
    fixed(["ﬁlter", "filter", "x²", "x2", "class", "__init__", "forward", "self"], ["ﬁlter", "filter"], "x²"),
    fixed(PAYLOADS[:8], PAYLOADS[8:], PAYLOADS[0]),
    fixed([PAYLOADS[3], PAYLOADS[4], "", " ", "\\", "\x00", "\u202e", "a/b"], ["", "a/b", "/", "\x00"],
          PAYLOADS[3]),
    fixed(list(TENSORS), ["lstm"], PAYLOADS[-1]),  # ran its code on import before names were sanitized
    fixed(["\ud800", "\udfff", "m", "xm", "\ud800y", "y2", "s", "out"], ["\ud800"], "\ud800"),  # JSON "\ud800"
]


def with_examples(test):
    """``test`` run on every explicit example of :data:`EXAMPLES` as well."""
    for n in reversed(EXAMPLES):
        test = example(n)(test)
    return test


# -- the model -----------------------------------------------------------------------------------
def _recurrent(op: str, name: str, x: str, out: str, seed: int, mask: str | None = None) -> Node:
    rng = np.random.default_rng(seed)
    options = {"units": U, "input_size": F, "activation": "tanh", "use_bias": True, "return_sequences": True,
               "return_state": False, "go_backwards": False, "bidirectional": False, "zero_output_for_mask": False}
    if op != "simple_rnn":
        options["recurrent_activation"] = "sigmoid"
    if op == "gru":
        options["reset_after"] = True
    node = Node(name, op, [x], [out], options, mask=mask)
    for gate in node.gate_names:
        node.set_gate("forward", gate, Gate(*(rng.uniform(-0.8, 0.8, shape).astype(np.float32)
                                              for shape in ((U, F), (U, U), (U,), (U,)))))
    return node


def build(n: dict) -> Model:
    """Masking -> masked LSTM (a step loop), GRU (nn.GRU) on a second input, Add, Dense; two outputs."""
    x, x2, m, xm, y1, y2, s, out = n["tensors"]
    layer = n["layers"]
    rng = np.random.default_rng(7)
    dense = Node(layer[5], "dense", [s], [out], {"units": 2, "activation": "linear", "use_bias": True},
                 {"weight": rng.uniform(-1, 1, (2, U)).astype(np.float32),
                  "bias": rng.uniform(-1, 1, 2).astype(np.float32)})
    nodes = [
        Node(layer[0], "mask_not_equal", [x], [m], {"value": 0.0, "reduce": True}),
        Node(layer[1], "masking", [x], [xm], {"mask_value": 0.0}, mask=m),
        _recurrent("lstm", layer[2], xm, y1, 1, mask=m),
        _recurrent("gru", layer[3], x2, y2, 2),
        Node(layer[4], "add", [y1, y2], [s]),
        dense,
    ]
    for node in nodes:
        node.source = {"class_name": node.name}  # a Keras class name is input text too
    return Model(n["model"], [TensorSpec(x, (T, F)), TensorSpec(x2, (T, F))], [out, y2], nodes,
                 {"format": "keras", "keras_version": n["keras_version"], "path": f"/models/{n['path']}.keras"})


def inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    x = (rng.normal(0, 1.5, (B, T, F)) * KEEP[..., None]).astype(np.float32)
    return [x, rng.normal(0, 1.5, (B, T, F)).astype(np.float32)]


@pytest.fixture(autouse=True)
def no_marker():
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a name from the input ran as code"


def payload_ran() -> bool:
    return MARKER.exists()


# -- PyTorch ----------------------------------------------------------------------------------------
def import_generated(folder: Path):
    spec = importlib.util.spec_from_file_location(f"gen_{abs(hash(str(folder)))}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unused_imports(source: str) -> set[str]:
    tree = ast.parse(source)
    bound = {(a.asname or a.name).split(".")[0] for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
             for a in node.names}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return bound - used


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names())
@with_examples
def test_torch_code_is_safe_and_exact(n):
    ir = build(n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "out"
        torch_code.write(ir, folder)
        module = import_generated(folder)  # parses, imports
        assert not payload_ran()
        source = (folder / "model.py").read_text()
        assert source.isascii()
        assert not unused_imports(source)
        model = module.load_model()  # load_state_dict(strict) with every key
        assert all(re.fullmatch(r"[A-Za-z_]\w*(\.\w+)+", k) and k.isascii() for k in model.state_dict())
        with torch.no_grad():
            got = model(*(torch.from_numpy(a) for a in inputs()))
    assert_close([o.numpy() for o in got], reference.run(ir, inputs()), "torch")
    assert not payload_ran()


@settings(max_examples=15, deadline=None)
@given(st.lists(NAME, min_size=2, max_size=3))
@example(["ﬁlter", "filter"])
@example([PAYLOADS[0], PAYLOADS[3], "a.b"])
def test_torch_state_keys_are_unique_identifiers(layer_names):
    nodes = [_recurrent("gru", name, "x", f"y{k}", k) for k, name in enumerate(layer_names)]
    for k in range(1, len(nodes)):
        nodes[k].inputs = [f"y{k - 1}"]
        nodes[k].weights = {key: (w if w.shape[-1] != F or w.ndim == 1 else np.resize(w, (U, U)))
                            for key, w in nodes[k].weights.items()}
    ir = Model("m", [TensorSpec("x", (T, F))], [f"y{len(nodes) - 1}"], nodes)
    sd = torch_state.state_dict(ir)
    prefixes = {k.rsplit(".", 1)[0] for k in sd}
    assert len(prefixes) == len(nodes) and all(p.isidentifier() and p.isascii() for p in prefixes)
    assert len(sd) == 4 * len(nodes)
    with tempfile.TemporaryDirectory() as tmp:
        path = torch_state.write(ir, Path(tmp) / "s.safetensors")
        from safetensors import safe_open

        with safe_open(path, "np") as f:
            layers = json.loads(f.metadata()["gateport.layers"])
            assert [e["layer"] for e in layers] == layer_names  # the Keras names, kept as data
            for entry in layers:  # each prefix loads into the nn.GRU the metadata describes
                gru = torch.nn.GRU(entry["input_size"], entry["hidden_size"], batch_first=True)
                gru.load_state_dict({k[len(entry["prefix"]):]: torch.from_numpy(f.get_tensor(k))
                                     for k in f.keys() if k.startswith(entry["prefix"])})


# -- numpy ---------------------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names())
@with_examples
def test_numpy_code_is_safe_and_exact(n):
    ir = build(n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "out"
        numpy_code.write(ir, folder)
        module = import_generated(folder)  # parses, imports
        assert not payload_ran()
        source = (folder / "model.py").read_text()
        assert source.isascii()
        assert not unused_imports(source)
        with np.load(folder / "model.npz", allow_pickle=False) as f:
            assert all(re.fullmatch(r"[A-Za-z_]\w*\.\w+", k) and k.isascii() for k in f.files)
        got = module.load_model()(*inputs())
    assert_close(list(got), reference.run(ir, inputs()), "numpy")
    assert not payload_ran()


# -- ONNX ---------------------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names())
@with_examples
def test_onnx_is_valid_and_exact(n):
    ir = build(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = onnx_graph.write(ir, Path(tmp) / "m.onnx")  # runs onnx.checker (full_check)
        onnx.checker.check_model(str(path), full_check=True)
        proto = onnx.load(str(path))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph_inputs = [i.name for i in session.get_inputs()]
    assert len(set(graph_inputs)) == 2 and all(graph_inputs)
    kept = [spec.name for spec in ir.inputs if spec.name and spec.name.encode("utf-8", "ignore").decode() == spec.name]
    assert [name for name in graph_inputs if name in kept] == kept  # Keras' names wherever ONNX can hold them
    names_made = [o for node in proto.graph.node for o in node.output]
    assert len(names_made) == len(set(names_made)) and all(names_made)
    got = session.run(None, dict(zip(graph_inputs, inputs())))
    assert_close(got, reference.run(ir, inputs()), "onnxruntime")


# -- Keras --------------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names())
@with_examples
def test_keras_file_loads_safely_and_is_exact(n):
    ir = build(n)
    with tempfile.TemporaryDirectory() as tmp:
        if not ir.nodes[2].mask:  # "" is no mask in the IR, but Keras' Masking would mask the LSTM
            with pytest.raises(UnsupportedError, match="mask"):
                keras_v3.write(ir, Path(tmp) / "m.keras")
            return
        path = keras_v3.write(ir, Path(tmp) / "m.keras")
        model = keras.saving.load_model(path, safe_mode=True)
    assert all("/" not in layer.name for layer in model.layers)
    assert_close(keras_outputs(model, inputs()), reference.run(ir, inputs()), "keras")


# -- numbers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value", [("units", "4)\nimport os#"), ("units", 4.5), ("units", None)])
def test_non_integer_option_is_refused(key, value):
    ir = build(fixed(list(TENSORS), ["a"], "m"))
    ir.nodes[2].options[key] = value
    with pytest.raises(FormatError):
        torch_code.generate_source(ir)


def test_non_number_mask_value_is_refused():
    ir = build(fixed(list(TENSORS), ["a"], "m"))
    ir.nodes[0].options["value"] = "0) or __import__('os')"
    with pytest.raises(FormatError):
        torch_code.generate_source(ir)


@pytest.mark.parametrize("mask_value", [float("nan"), float("inf"), -float("inf")])
def test_masking_with_nan_or_inf_mask_value_matches_keras(mask_value, tmp_path):
    """Keras: ``any(x != mask_value)``: NaN != NaN, so a NaN mask_value masks nothing; an infinite one
    masks the steps that are all that infinity, and Masking outputs 0 there (``where``, not ``x * 0``)."""
    x_in = keras.Input((T, F), name="x")
    xm = L.Masking(mask_value)(x_in)
    lstm = L.LSTM(U, return_sequences=True)
    model = keras.Model(x_in, [xm, lstm(xm)])
    randomize(model)
    x = np.random.default_rng(4).normal(0, 1.5, (B, T, F)).astype(np.float32)
    x[~KEEP] = mask_value
    x[0, 1, 0] = mask_value  # a step only partly equal to mask_value is kept
    ir = Model("nan_mask", [TensorSpec("x", (T, F))], ["xm", "y"], [
        Node("mask", "mask_not_equal", ["x"], ["m"], {"value": mask_value, "reduce": True}),
        Node("masking", "masking", ["x"], ["xm"], {"mask_value": mask_value}, mask="m"),
        node_of(lstm, ["xm"], ["y"], mask="m"),
    ])
    want = keras_outputs(model, [x])
    keras_mask = keras.ops.convert_to_numpy(model.layers[1].compute_mask(x))
    assert keras_mask.all() if np.isnan(mask_value) else np.array_equal(keras_mask, KEEP)
    if np.isinf(mask_value):
        assert np.all(want[0][~KEEP] == 0.0)  # Keras zeroes the masked steps
    assert_close(reference.run(ir, [x]), want, "reference")
    mask_only = Model("mask", ir.inputs, ["m"], ir.nodes[:1])

    source = torch_code.generate_source(ir)
    assert "float('nan')" in source if np.isnan(mask_value) else "float('inf')" in source
    with torch.no_grad():
        got = import_generated_from(ir, tmp_path / "torch").load_model()(torch.from_numpy(x))
        mask = import_generated_from(mask_only, tmp_path / "torch_mask").load_model()(torch.from_numpy(x))
    assert_close([o.numpy() for o in got], want, "torch")
    assert np.array_equal(mask.numpy(), keras_mask)

    session = ort.InferenceSession(str(onnx_graph.write(ir, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})
    if np.isnan(mask_value):  # onnxruntime's LSTM kernel turns NaN inputs finite (saturating activations)
        got[1] = np.where(np.isnan(want[1]), want[1], got[1])
    assert_close(got, want, "onnxruntime")
    session = ort.InferenceSession(str(onnx_graph.write(mask_only, tmp_path / "mask.onnx")),
                                   providers=["CPUExecutionProvider"])
    assert np.array_equal(session.run(None, {"x": x})[0], keras_mask)

    loaded = keras.saving.load_model(keras_v3.write(ir, tmp_path / "m.keras"), safe_mode=True)
    assert_close(keras_outputs(loaded, [x]), want, "keras file")


def import_generated_from(ir: Model, folder: Path):
    torch_code.write(ir, folder)
    return import_generated(folder)


@pytest.mark.parametrize("carrier, suffix", [("gates", ".gates"), ("onnx", ".onnx")])
def test_names_carried_by_a_file_do_not_run(carrier, suffix, tmp_path):
    """The same hostile names read back from a .gates manifest or an ONNX graph, then --to torch."""
    import converters

    ir = build(EXAMPLES[1])
    carried = converters.convert(ir, carrier, tmp_path / f"m{suffix}")
    converters.convert(carried, "torch", tmp_path / "torch")
    module = import_generated(tmp_path / "torch")
    assert not payload_ran()
    with torch.no_grad():
        got = module.load_model()(*(torch.from_numpy(a) for a in inputs()))
    assert_close([o.numpy() for o in got], reference.run(ir, inputs()), f"{carrier} -> torch")


@pytest.mark.parametrize("carrier, suffix", [("gates", ".gates"), ("onnx", ".onnx")])
def test_names_carried_by_a_file_do_not_run_in_numpy_code(carrier, suffix, tmp_path):
    """The same hostile names read back from a .gates manifest or an ONNX graph, then --to numpy."""
    import converters

    ir = build(EXAMPLES[1])
    carried = converters.convert(ir, carrier, tmp_path / f"m{suffix}")
    converters.convert(carried, "numpy", tmp_path / "numpy")
    module = import_generated(tmp_path / "numpy")
    assert not payload_ran()
    assert_close(list(module.load_model()(*inputs())), reference.run(ir, inputs()), f"{carrier} -> numpy")


@pytest.mark.parametrize("where, value", [("dtype", "float32\"); import os #"), ("padding", "valid\n")])
def test_keras_writer_refuses_what_keras_would_not_load(where, value, tmp_path):
    """An option Keras 3 would refuse on load is refused before anything is written."""
    ir = build(fixed(list(TENSORS), ["a"], "m"))
    if where == "dtype":
        ir.inputs[1].dtype = value
    else:
        ir.nodes.append(Node("conv", "conv1d", [ir.outputs[0]], ["c"], {"padding": value, "activation": "linear"},
                             {"weight": np.ones((2, 2, 1), np.float32)}))
        ir.outputs = ["c"]
    with pytest.raises(UnsupportedError, match=where):
        keras_v3.write(ir, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
