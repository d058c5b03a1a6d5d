"""Hostile inputs, red team round 9: what rounds 1-8 (attacks.py, attacks_more.py, attacks_round3.py ...
attacks_round8.py) do not build, or built thinly: the readers of the layers added lately, ONNX topology around
the new patterns, .keras graphs whose numbers and references lie, and command-line combinations.

Same :class:`attacks.Case` contract and runner as round 8 (:func:`attacks_round8.run_case8`: one line naming the
file, no traceback, no raw escape on stderr, nothing read outside the input's folder, bounded time and memory,
inputs unchanged, no output left behind on a refusal, exit 2 where a refusal is due, never 'a gateport bug', a
verify never reports a mismatch, ``--json`` refusals held to the one-line checks). ``python
tests/attacks_round9.py`` runs them through :func:`attack_run.run_battery`.

Classes: ``layers9`` (the readers of EinsumDense equations, keras.ops Absolute/Sqrt/Log nodes, tf-keras
TFOpLambda math.abs/sqrt/log, Concatenate of differently masked inputs (mask_or), channels_first Conv1D and
pooling, Normalization(invert=True): every sizing or choosing field given as text, a float, -1, 2**63, null, a
list, an object; equations empty, of 10**6 letters, holding Python code or escapes, of other forms; op nodes
given extra arguments or operands), ``names9`` (the new layers' names holding escapes, path separators, Python
code, 10**6 characters, a lone surrogate), ``graph9`` (.keras configs whose references lie: a layer its own
inbound node, two op nodes feeding each other, keras_history node and tensor indices of 2**63 or -1, a shared
Dense called 10**4 times in a chain, 10**4 op nodes, output_layers naming nothing), ``onnx9`` (ONNX topology: a
node using its own output, 10**5 Abs nodes, initializers shadowing the graph input, an output no node
produces, ir_version 0 and 2**63-1, opset domains with odd names, PyTorch's h_n.view(...)[k]
(layer_view_gather) with k out of range, negative, a float, a list, a view of another product, Sqrt/Log/Abs
given two inputs or junk attributes), ``cli9`` (``--json`` with every subcommand on this round's bad files,
``-o`` paths holding control characters, 4,000-character paths, 300-character names, non-UTF-8 bytes in the
input's and the output's name).

``python tests/attacks_round9.py`` (2026-12-02, 2 shared cores, load 6-8, groups in parallel): 496 attacks (layers9
221, cli9 83, onnx9 78, graph9 72, names9 42), 496 passed, peak memory 247 MiB (onnx9; layers9 246, graph9 194, cli9
99, names9 64; 385 MiB in layers9's first run). Before this round's fixes: ``--to gates`` / ``torch-state-dict`` and ``diff`` of a .keras whose
graph contradicts itself (a layer its own input, Absolute fed by Sum fed by Absolute, a call index of 2**63, an
output naming no layer) fell back to its recurrent layers, silently, exit 0 (errors.GraphError: the fallback
re-raises it); a Concatenate of differently masked inputs whose Masking's ``mask_value`` differs from the
NotEqual constant Keras recorded for its mask was read with the Masking's value, and verify found every target
0.146 away from Keras (keras_build._check_derived refuses it); a single input whose name holds ``[`` (an escape
sequence ``\x1b[2J``, ``model[v2].h5``) was taken for a glob pattern: a batch of one, ``-o out.onnx`` a folder
(batch.is_pattern: a file that exists is that file); ``inspect`` of a shared Dense called 10**4 times ran past 60 s
(explain built the index of producers again per Dense: 3.6 s now) and ``--to torch`` searched the generated text
once per line (codegen: 7 s now). Cases first written as refusals and read as Keras reads them:
a keras_history of more than 3 fields (Keras' deserialize_node reads history[0:3]), node or tensor index -1, an
op node called twice, an op of no parameters whose config is null or a list, ``input_layers`` naming an
intermediate tensor (Keras 3 clones the graph from it) under a recurrent-only target; the exporter's zero initial
state Expand(0, Shape(x)[k]) is read as zeros for any k within the rank (a k past it is refused, as onnxruntime
refuses it: onnx_value_graph's Gather of a shape; tests/test_onnx_trust.py). Left: verify
of a shared Dense called 10**4 times in a chain takes 127 s under load (Keras itself cannot load it: RecursionError,
so verify says unproven; convert --to onnx 46 s): the graph9 case converts and inspects it, verifies it not.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import h5py

from attacks import MODELS, Case, edited_keras, read_keras, replace_strings, write_keras
from attacks_round3 import Case3, _case, _convert, build_groups
from attacks_round4 import TINY, _written
from attacks_round8 import NOT_NUMBERS, _h5_config, run_case8

ROOT = Path(__file__).resolve().parent.parent
#: the values a number or a choice is given instead (round 8's, plus 2**63 and a negative)
BAD_VALUES = {**NOT_NUMBERS, "2**63": 2 ** 63, "-3": -3}
#: names a layer is given: escapes, path separators, Python code, a lone surrogate, 10**6 characters
BAD_NAMES = {"escapes": "\x1b[31mred\x1b[0m\nfake: line\r", "path separators": "../../etc/passwd",
             "a Windows path": "..\\..\\x:evil", "Python code": "__import__('os').system('touch MARKER')",
             "bidi and NUL": "\u202egnp.exe\x00", "10**6 characters": "n" * 10 ** 6, "a lone surrogate": "x\udc80y"}


def run_case9(case: Case, marker: Path, timeout: float) -> tuple[list[str], dict]:
    """Round 8's checks; with ``--json`` the file may be named as JSON writes it (its escapes' backslashes
    doubled)."""
    if "--json" in case.argv and isinstance(case, Case3) and case.names:
        case = dataclasses.replace(case, names=case.names + tuple(json.dumps(n)[1:-1] for n in case.names))
    return run_case8(case, marker, timeout)


def build(folder: Path, groups: tuple[str, ...] | None = None) -> list[Case]:
    """Every case (or those of the builders named in ``groups``)."""
    return build_groups(folder, (layers_cases, names_cases, graph_cases, onnx_cases, cli_cases), groups)


# -- base models, built live under Keras 3 ---------------------------------------------------------------------
def _model(kind: str):
    import keras

    L, ops = keras.layers, keras.ops
    keras.backend.clear_session()
    if kind == "siamese":  # keras.ops.abs of a shared LSTM's two outputs (MaLSTM)
        a, b = keras.Input((6, 4), name="left"), keras.Input((6, 4), name="right")
        lstm = L.LSTM(5, name="shared")
        d = ops.sum(ops.abs(ops.subtract(lstm(a), lstm(b))), axis=1, keepdims=True)
        return keras.Model([a, b], ops.exp(ops.negative(d)))
    if kind == "sqrtlog":  # absolute, sqrt, log, and a Concatenate of them
        x = keras.Input((7, 3), name="x")
        h = L.Dense(4, name="proj")(L.GRU(6, return_sequences=True, name="gru")(x))
        shifted = ops.add(ops.absolute(h), 1.0)
        return keras.Model(x, L.Dense(2, name="out")(L.Concatenate(name="cat")([ops.sqrt(shifted), ops.log(shifted),
                                                                                   h])))
    if kind == "einsum":
        x = keras.Input((5, 3), name="x")
        h = L.LSTM(4, return_sequences=True, name="lstm")(x)
        h = L.EinsumDense("abc,cd->abd", output_shape=(None, 6), bias_axes="d", name="proj")(h)
        return keras.Model(x, L.EinsumDense("ab,bc->ac", output_shape=2, name="head")(L.GRU(3, name="gru")(h)))
    if kind == "conv_cf":  # channels_first Conv1D and MaxPooling1D before an LSTM
        x = keras.Input((3, 10), name="x")
        h = L.Conv1D(4, 3, data_format="channels_first", name="conv")(x)
        h = L.MaxPooling1D(2, data_format="channels_first", name="pool")(h)
        return keras.Model(x, L.LSTM(2, name="lstm")(L.Permute((2, 1), name="perm")(h)))
    if kind == "norm_invert":
        x = keras.Input((5, 3), name="x")
        h = L.Normalization(mean=[0.5, -1.0, 2.0], variance=[1.0, 4.0, 0.25], invert=True, name="norm")(x)
        return keras.Model(x, L.LSTM(2, name="lstm")(h))
    if kind == "masked_concat":  # Masking floats beside Embedding(mask_zero) ids: the masks' or
        f, ids = keras.Input((6, 2), name="f"), keras.Input((6,), name="ids")
        h = L.Concatenate(name="cat")([L.Masking(0.0, name="mask")(f),
                                       L.Embedding(9, 3, mask_zero=True, name="emb")(ids)])
        return keras.Model([f, ids], L.LSTM(3, name="lstm")(h))
    if kind == "shared_chain":  # one Dense(4 -> 4) called 3 times in a chain
        x = keras.Input((5, 4), name="x")
        d = L.Dense(4, name="sh")
        h = d(d(d(x)))
        return keras.Model(x, L.LSTM(2, name="lstm")(h))
    raise KeyError(kind)


def _base(folder: Path, kind: str) -> Path:
    path = folder / f"base_{kind}.keras"
    if not path.exists():
        _model(kind).save(path)
    return path


def _layer(cfg: dict, name: str) -> dict:
    return next(entry for entry in cfg["config"]["layers"] if entry["name"] == name)


def _keras_edit(folder: Path, src: Path, stem: str, edit) -> Path:
    return edited_keras(src, folder / f"{stem}.keras", edit)


def _both(K: str, label: str, src: Path, folder: Path, expect: str = "refuse", to: str = "onnx",
          verify: bool = False) -> list[Case]:
    """``convert --to to`` (and ``inspect``, or ``verify`` when asked) of ``src``."""
    out = folder / (f"{src.stem}_{to}" if to in ("torch", "numpy") else f"{src.stem}_out.{to}")
    cases = [_case(K, f"{label} ({to})", _convert(src, to, out), src, output=out, expect=expect,
                   importable=to == "torch")]
    if verify:
        cases.append(_case(K, f"{label} (verify)", ["verify", src, "--to", "torch,onnx"], src, expect=expect))
    else:
        cases.append(_case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect))
    return cases


def _one(K: str, label: str, src: Path, folder: Path, to: str, expect: str = "refuse") -> Case:
    """One command on ``src``: ``convert --to to``, or ``verify`` / ``inspect`` when ``to`` names them."""
    if to == "verify":
        return _case(K, f"{label} (verify)", ["verify", src, "--to", "torch,onnx"], src, expect=expect)
    if to == "inspect":
        return _case(K, f"{label} (inspect)", ["inspect", src], src, expect=expect)
    out = folder / (f"{src.stem}_{to}" if to in ("torch", "numpy") else f"{src.stem}_out.{to}")
    return _case(K, f"{label} ({to})", _convert(src, to, out), src, output=out, expect=expect,
                 importable=to == "torch")


# -- the readers of the layers added lately ---------------------------------------------------------------------
#: layer -> config fields that size or choose something (the fields a hostile value goes into)
_FIELDS = {
    "einsum": {"proj": ("equation", "output_shape", "bias_axes"), "head": ("equation", "output_shape")},
    "conv_cf": {"conv": ("filters", "kernel_size", "strides", "dilation_rate", "data_format", "padding", "groups"),
                "pool": ("pool_size", "strides", "data_format", "padding")},
    "norm_invert": {"norm": ("invert", "axis", "mean", "variance")},
    "masked_concat": {"cat": ("axis",), "mask": ("mask_value",), "emb": ("mask_zero", "input_dim")},
    "sqrtlog": {"cat": ("axis",)},
    "siamese": {"sum": ("axis", "keepdims")},
}
#: values that are no equation
_EQUATIONS = {"empty": "", "10**6 letters": "a" * 10 ** 6 + ",cd->abd", "Python code": "__import__('os')",
              "escapes": "\x1b[2Jab\nc,cd->abd", "a transposed kernel": "abc,dc->abd",
              "an output axis from nowhere": "abc,cd->abe", "three operands": "abc,cd,de->abe",
              "no arrow": "abc,cd", "two arrows": "abc,cd->abd->ab", "ellipsis twice": "...c...,cd->...d",
              "a repeated axis": "aac,cd->aad", "upper case": "ABC,CD->ABD", "a contraction on the batch":
              "abc,ad->bd", "unicode letters": "αβγ,γδ->αβδ"}


def layers_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "layers9"
    i = 0
    for kind, layers in _FIELDS.items():
        src = _base(folder, kind)
        cfg = json.loads(read_keras(src)["config.json"])
        for name, fields in layers.items():
            for key in fields:
                if key not in _layer(cfg, name)["config"]:
                    continue
                # half of the values for each field, the other half for the next (every value, every layer)
                values = dict(list(BAD_VALUES.items())[i % 2::2])
                if key == "equation":
                    values = {**{k: v for k, v in BAD_VALUES.items() if k in ("null", "a list", "10**9")},
                              **_EQUATIONS}
                for what, bad in values.items():
                    def edit(c, name=name, key=key, bad=bad):
                        _layer(c, name)["config"][key] = bad
                    dst = _keras_edit(folder, src, f"l{i}", edit)
                    to = ("onnx", "torch", "keras", "verify", "inspect")[i % 5]
                    i += 1
                    # a choice given its value's twin (true for 1, a list of one size) may be read as Keras does
                    cases.append(_one(K, f"{kind} {name}.{key} {what}", dst, folder, to, expect="any"))
    # op nodes given extra arguments, operands, or keyword arguments of another op
    siamese = _base(folder, "siamese")
    sqrtlog = _base(folder, "sqrtlog")
    tensor = {"class_name": "__keras_tensor__", "config": {"shape": [None, 5], "dtype": "float32",
                                                           "keras_history": ["subtract", 0, 0]}}
    ops_edits = {
        "Absolute given two operands": (siamese, "absolute", lambda e: e["inbound_nodes"][0]["args"].append(tensor)),
        "Absolute given no operand": (siamese, "absolute", lambda e: e["inbound_nodes"][0].update(args=[])),
        "Absolute given kwargs axis=1": (siamese, "absolute",
                                         lambda e: e["inbound_nodes"][0]["kwargs"].update(axis=1)),
        "Absolute given a constant operand": (siamese, "absolute", lambda e: e["inbound_nodes"][0].update(args=[3.0])),
        "Absolute given a text operand": (siamese, "absolute", lambda e: e["inbound_nodes"][0].update(args=["x"])),
        "Absolute as Abs": (siamese, "absolute", lambda e: e.update(class_name="Abs", registered_name="Abs")),
        "Absolute module os": (siamese, "absolute", lambda e: e.update(module="os", registered_name="system")),
        "Absolute class Sqrt with config of Sum": (siamese, "absolute",
                                                   lambda e: e.update(class_name="Sqrt", config={"name": "absolute",
                                                                                                 "axis": 1})),
        "Sqrt given two inbound nodes": (sqrtlog, "sqrt", lambda e: e["inbound_nodes"].append(e["inbound_nodes"][0])),
        "Sqrt with no inbound node": (sqrtlog, "sqrt", lambda e: e.update(inbound_nodes=[])),
        "Log given inbound_nodes null": (sqrtlog, "log", lambda e: e.update(inbound_nodes=None)),
        "Log given inbound_nodes an object": (sqrtlog, "log", lambda e: e.update(inbound_nodes={"args": []})),
        "Log as a class Logarithm": (sqrtlog, "log", lambda e: e.update(class_name="Logarithm")),
        "Log config null": (sqrtlog, "log", lambda e: e.update(config=None)),
        "Sqrt config a list": (sqrtlog, "sqrt", lambda e: e.update(config=["sqrt"])),
        "Concatenate of one input": (sqrtlog, "cat", lambda e: e["inbound_nodes"][0]["args"][0].__delitem__(
            slice(1, None))),
        "Concatenate of 10**4 inputs": (sqrtlog, "cat", lambda e: e["inbound_nodes"][0]["args"][0].extend(
            e["inbound_nodes"][0]["args"][0][:1] * 10 ** 4)),
    }
    for j, (label, (src, name, edit)) in enumerate(ops_edits.items()):
        dst = _keras_edit(folder, src, f"op{j}", lambda c, name=name, edit=edit: edit(_layer(c, name)))
        # a second inbound node is a second call (Keras makes one node per call); an op of no parameters is read
        # whatever its config holds (lenient, as _layer_spec takes a config that is no object as {})
        expect = "any" if label in ("Absolute as Abs", "Sqrt given two inbound nodes", "Log config null",
                                    "Sqrt config a list") else "refuse"
        cases += _both(K, label, dst, folder, expect=expect, to=("onnx", "torch")[j % 2], verify=j % 3 == 0)
    # tf-keras TFOpLambda: an op of ops_mix.h5 made math.abs / sqrt / log, and given what they do not take
    mix = MODELS / "ops_mix.h5"
    with h5py.File(mix) as f:
        text = f.attrs["model_config"]
    mix_cfg = json.loads(text.decode() if isinstance(text, bytes) else text)
    unary = next(e for e in mix_cfg["config"]["layers"] if e["class_name"] == "TFOpLambda"
                 and e["config"]["function"] in ("math.tanh", "math.sigmoid", "math.exp", "nn.relu",
                                                 "math.negative", "math.square"))

    def tf_op(function, call_kwargs=None, extra_args=None):
        def edit(c):
            e = next(x for x in c["config"]["layers"] if x["name"] == unary["name"])
            e["config"]["function"] = function
            node = e["inbound_nodes"][0]  # TFOpLambda's [name, node, tensor, kwargs]
            if call_kwargs is not None:
                node[3] = call_kwargs
            if extra_args is not None:
                e["inbound_nodes"].extend(extra_args)
        return edit

    tf_edits = {
        "math.abs": (tf_op("math.abs"), "any"), "math.sqrt": (tf_op("math.sqrt"), "any"),
        "math.log": (tf_op("math.log"), "any"),
        "math.abs with name='x' kwarg": (tf_op("math.abs", {"name": "\x1b[31m"}), "any"),
        "math.sqrt with an axis kwarg": (tf_op("math.sqrt", {"axis": 1}), "refuse"),
        "math.log with a tensor kwarg": (tf_op("math.log", {"y": ["x", 0, 0]}), "refuse"),
        "math.abs called a second time": (tf_op("math.abs", extra_args=[[unary["inbound_nodes"][0][0], 0, 0,
                                                                         {}]]), "any"),
        "math.abs\\x1b": (tf_op("math.abs\x1b[2J"), "refuse"), "math.sqrt of 10**5 letters": (
            tf_op("math.sqrt" + "t" * 10 ** 5), "refuse"),
        "os.system": (tf_op("os.system"), "refuse"), "__builtins__.eval": (tf_op("__builtins__.eval"), "refuse"),
        "function null": (tf_op(None), "refuse"), "function a list": (tf_op(["math.abs"]), "refuse"),
        "function 7": (tf_op(7), "refuse"),
    }
    for j, (label, (edit, expect)) in enumerate(tf_edits.items()):
        dst = _h5_config(folder / f"tf{j}.h5", mix, edit)
        cases += _both(K, f"TFOpLambda {label}", dst, folder, expect=expect, to=("onnx", "torch")[j % 2],
                       verify=expect == "any")
    return cases


# -- names of the new layers ------------------------------------------------------------------------------------
def names_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "names9"
    targets = {"einsum": "proj", "siamese": "absolute", "sqrtlog": "sqrt", "conv_cf": "conv", "norm_invert": "norm",
               "masked_concat": "cat"}
    i = 0
    for kind, layer_name in targets.items():
        src = _base(folder, kind)
        members = read_keras(src)
        cfg = json.loads(members["config.json"])
        for what, new in BAD_NAMES.items():
            m = dict(members)
            text = json.dumps(replace_strings(cfg, layer_name, new))
            m["config.json"] = text.encode("utf-8", "surrogatepass")
            dst = write_keras(folder / f"n{i}.keras", m)
            to = ("onnx", "torch", "keras", "gates", "inspect")[i % 5]
            i += 1
            # a name is only a name: read (sanitized wherever it is shown) or refused in one line
            cases.append(_one(K, f"{kind} {layer_name} named with {what}", dst, folder, to, expect="any"))
    return cases


# -- .keras configs whose references lie ------------------------------------------------------------------------
def graph_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "graph9"
    siamese = _base(folder, "siamese")
    chain = _base(folder, "shared_chain")
    einsum = _base(folder, "einsum")

    def history(entry: dict, value) -> None:
        entry["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = value

    def absolute_history(value):
        return lambda c: history(_layer(c, "absolute"), value)

    def proj_history(value):
        return lambda c: history(_layer(c, "proj"), value)

    def two_op_cycle(c):
        history(_layer(c, "absolute"), ["sum", 0, 0])

    def chain_calls(n):
        def edit(c):
            sh = _layer(c, "sh")
            node = sh["inbound_nodes"][1]
            sh["inbound_nodes"] = sh["inbound_nodes"][:1] + [json.loads(json.dumps(node).replace(
                '"keras_history": ["sh", 0, 0]', f'"keras_history": ["sh", {k}, 0]')) for k in range(n)]
            history(_layer(c, "lstm"), ["sh", n, 0])
        return edit

    def many_ops(n):
        def edit(c):
            layers = c["config"]["layers"]
            template = _layer(c, "absolute")
            at = layers.index(template)
            prev = "absolute"
            extra = []
            for k in range(n):
                e = json.loads(json.dumps(template))
                e["name"] = e["config"]["name"] = f"abs_{k}"
                history(e, [prev, 0, 0])
                prev = e["name"]
                extra.append(e)
            layers[at + 1:at + 1] = extra
            history(_layer(c, "sum"), [prev, 0, 0])
        return edit

    numbers = {"text '0'": "0", "1.0": 1.0, "-1": -1, "2**63": 2 ** 63, "null": None, "true": True}
    edits: dict[str, tuple[Path, object, str]] = {}
    for what, bad in numbers.items():
        # -1: Keras indexes layer._inbound_nodes[-1], the one call of a layer called once (read or refused)
        expect = "any" if what == "-1" else "refuse"
        edits[f"Absolute's keras_history node index {what}"] = (siamese, absolute_history(["subtract", bad, 0]),
                                                                expect)
        edits[f"Absolute's keras_history tensor index {what}"] = (siamese, absolute_history(["subtract", 0, bad]),
                                                                  expect)
        edits[f"EinsumDense's keras_history node index {what}"] = (einsum, proj_history(["lstm", bad, 0]), expect)
    edits.update({
        "Absolute its own inbound node": (siamese, absolute_history(["absolute", 0, 0]), "refuse"),
        "EinsumDense its own inbound node": (einsum, proj_history(["proj", 0, 0]), "refuse"),
        "Absolute fed by Sum fed by Absolute": (siamese, two_op_cycle, "refuse"),
        "Absolute fed by a layer not in the model": (siamese, absolute_history(["nowhere", 0, 0]), "refuse"),
        "Absolute's keras_history of 2 fields": (siamese, absolute_history(["subtract", 0]), "refuse"),
        # Keras' deserialize_node reads history[0:3] and ignores the rest (keras/src/models/functional.py)
        "Absolute's keras_history of 10**5 fields": (siamese, absolute_history(["subtract"] + [0] * 10 ** 5),
                                                     "any"),
        "Absolute's keras_history a text": (siamese, absolute_history("subtract"), "refuse"),
        "the shared LSTM's second call index 10**6": (siamese, lambda c: history(_layer(c, "subtract"), [
            "shared", 10 ** 6, 0]), "refuse"),
        "output_layers naming a layer not in the model": (siamese, lambda c: c["config"].update(
            output_layers=[["nowhere", 0, 0]]), "refuse"),
        "output_layers naming an input": (siamese, lambda c: c["config"].update(output_layers=[["left", 0, 0]]),
                                          "any"),
        "output_layers 10**4 times the output": (siamese, lambda c: c["config"].update(
            output_layers=[["exp", 0, 0]] * 10 ** 4), "any"),
        # Keras 3 takes an intermediate tensor as a model input (Functional clones the graph from it): refused by
        # the full read (an input made by a layer), a recurrent-only target may still give the recurrent layers
        "input_layers naming the output": (siamese, lambda c: c["config"].update(input_layers=[["exp", 0, 0]]),
                                           "any"),
        "a shared Dense called 10**4 times in a chain": (chain, chain_calls(10 ** 4), "any"),
        "a shared Dense's call fed by its own later call": (chain, lambda c: _layer(c, "sh")["inbound_nodes"][1][
            "args"][0]["config"].update(keras_history=["sh", 2, 0]), "refuse"),
        "10**4 Absolute nodes in a chain": (siamese, many_ops(10 ** 4), "any"),
        "config.layers null": (siamese, lambda c: c["config"].update(layers=None), "refuse"),
        "config.layers an object": (siamese, lambda c: c["config"].update(layers={"a": 1}), "refuse"),
        "the shared LSTM listed twice": (siamese, lambda c: c["config"]["layers"].insert(
            3, json.loads(json.dumps(_layer(c, "shared")))), "refuse"),
    })
    for j, (label, (src, edit, expect)) in enumerate(edits.items()):
        dst = _keras_edit(folder, src, f"g{j}", edit)
        # verify of 10**4 calls runs Keras, PyTorch and onnxruntime on 10**4 layers: minutes under load (reported)
        cases += _both(K, label, dst, folder, expect=expect, to=("onnx", "torch", "gates")[j % 3],
                       verify=j % 5 == 0 and "10**4" not in label)
        if "in a chain" in label:  # the Keras writer's walk of 10**4 calls (once recursive: RecursionError)
            cases.append(_one(K, label, dst, folder, to="keras", expect=expect))
    return cases


# -- ONNX topology -----------------------------------------------------------------------------------------------
def _onnx_models(folder: Path):
    """(TINY's ONNX, a 2-layer PyTorch LSTM's ``h_n.view(2, 1, B, H)[-1]`` exported by torch.onnx's TorchScript
    exporter: the layer_view_gather pattern) as ModelProtos."""
    import onnx
    import torch

    good = onnx.load(str(_written(folder, "onnx")))
    path = folder / "view_hn.onnx"
    if not path.exists():
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)

            def forward(self, x):
                _, (h, _) = self.rnn(x)
                return h.view(2, 1, x.shape[0], 4)[-1]

        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Net().eval(), (torch.zeros(2, 5, 3),), str(path), dynamo=False, opset_version=17,
                              input_names=["x"], output_names=["y"])
    return good, [onnx.load(str(path))]


def onnx_cases(folder: Path) -> list[Case]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cases: list[Case] = []
    K = "onnx9"
    good, views = _onnx_models(folder)
    out_name = good.graph.output[0].name
    in_name = good.graph.input[0].name

    def copy(m):
        c = onnx.ModelProto()
        c.CopyFrom(m)
        return c

    def tail(m, op: str, inputs=None, attrs=None):
        """``op`` applied to the graph output (renamed): a new last node."""
        last = next(n for n in m.graph.node if out_name in n.output)
        last.output[list(last.output).index(out_name)] = "pre"
        m.graph.node.append(helper.make_node(op, inputs or ["pre"], [out_name], **(attrs or {})))

    def self_loop(op):
        def edit(m):
            tail(m, op, inputs=[out_name])
        return edit

    def abs_chain(n):
        def edit(m):
            last = next(x for x in m.graph.node if out_name in x.output)
            last.output[list(last.output).index(out_name)] = "a0"
            m.graph.node.extend(helper.make_node("Abs", [f"a{k}"], [f"a{k + 1}"]) for k in range(n))
            m.graph.node.append(helper.make_node("Identity", [f"a{n}"], [out_name]))
        return edit

    def shadow_input(m):
        w = next(t for t in m.graph.initializer if len(t.dims) >= 2)
        dims = [d.dim_value or 1 for d in m.graph.input[0].type.tensor_type.shape.dim]
        import numpy as np

        t = numpy_helper.from_array(np.zeros(dims, np.float32), in_name)
        m.graph.initializer.append(t)
        del w

    def unproduced_output(m):
        m.graph.output.append(helper.make_tensor_value_info("nobody_makes_me", TensorProto.FLOAT, [1, 4]))

    def only_unproduced(m):
        m.graph.output[0].name = "nobody_makes_me"

    def ir(v):
        return lambda m: setattr(m, "ir_version", v)

    def domain(name):
        def edit(m):
            m.opset_import.append(helper.make_opsetid(name, 1))
        return edit

    def node_domain(name):
        def edit(m):
            tail(m, "Abs")
            m.graph.node[-1].domain = name
            m.opset_import.append(helper.make_opsetid(name, 1))
        return edit

    def opset_lie(v):
        def edit(m):
            for o in m.opset_import:
                if o.domain in ("", "ai.onnx"):
                    o.version = v
        return edit

    edits = {
        "Abs using its own output": (self_loop("Abs"), "refuse"),
        "Sqrt using its own output": (self_loop("Sqrt"), "refuse"),
        "Log using its own output": (self_loop("Log"), "refuse"),
        "10**5 Abs nodes in a chain": (abs_chain(10 ** 5), "any"),
        "an initializer shadowing the graph input": (shadow_input, "any"),
        "an output no node produces beside the real one": (unproduced_output, "refuse"),
        "the only output produced by no node": (only_unproduced, "refuse"),
        "ir_version 0": (ir(0), "any"), "ir_version 2**63-1": (ir(2 ** 63 - 1), "any"),
        "opset domain 'ai.onnx\\x00x'": (domain("ai.onnx\x00x"), "any"),
        "opset domain '../../etc'": (domain("../../etc"), "any"),
        "opset domain of 10**5 letters": (domain("d" * 10 ** 5), "any"),
        "opset domain with escapes": (domain("\x1b]0;title\x07"), "any"),
        "Abs in domain 'com.microsoft\\n'": (node_domain("com.microsoft\n"), "refuse"),
        "Abs in domain 'ai.onnx.ml'": (node_domain("ai.onnx.ml"), "refuse"),
        "Abs in domain of Python code": (node_domain("__import__('os')"), "refuse"),
        "default opset 1 (older than LSTM's)": (opset_lie(1), "refuse"),
        "default opset 2**62": (opset_lie(2 ** 62), "refuse"),
        "Sqrt given two inputs": (lambda m: tail(m, "Sqrt", inputs=["pre", "pre"]), "refuse"),
        "Log given an attribute": (lambda m: tail(m, "Log", attrs={"axis": 1}), "refuse"),
        "Abs given a graph attribute": (lambda m: tail(m, "Abs", attrs={"body": helper.make_graph([], "g", [], [])}),
                                        "refuse"),
        "Abs with two outputs": (lambda m: (tail(m, "Abs"), m.graph.node[-1].output.append("extra")), "refuse"),
        "Abs with an empty input name": (lambda m: tail(m, "Abs", inputs=[""]), "refuse"),
    }
    for j, (label, (edit, expect)) in enumerate(edits.items()):
        m = copy(good)
        edit(m)
        p = folder / f"o{j}.onnx"
        p.write_bytes(m.SerializeToString())
        cases += _both(K, label, p, folder, expect=expect, to=("torch", "onnx", "keras")[j % 3], verify=j % 4 == 0)
    # PyTorch's h_n.view(num_layers, dirs, B, H)[k]: the Gather index and the view's shape lying
    for v, base in enumerate(views):
        gathers = [n for n in base.graph.node if n.op_type == "Gather"]
        if not gathers:
            continue

        def set_index(m, value, dtype=TensorProto.INT64, dims=(), shape_gather=False):
            reshaped = {n.output[0] for n in m.graph.node if n.op_type == ("Shape" if shape_gather else "Reshape")}
            g = next(n for n in m.graph.node if n.op_type == "Gather" and n.input[0] in reshaped)
            idx = g.input[1]
            const = next((n for n in m.graph.node if idx in n.output and n.op_type == "Constant"), None)
            tensor = helper.make_tensor(idx, dtype, list(dims), value if isinstance(value, list) else [value])
            if const is not None:
                del const.attribute[:]
                const.attribute.append(helper.make_attribute("value", tensor))
            else:
                init = [t for t in m.graph.initializer if t.name == idx]
                for t in init:
                    m.graph.initializer.remove(t)
                m.graph.initializer.append(tensor)

        def set_view(m, shape):
            r = [n for n in m.graph.node if n.op_type == "Reshape"][-1]
            name = r.input[1]
            tensor = helper.make_tensor(name, TensorProto.INT64, [len(shape)], shape)
            const = next((n for n in m.graph.node if name in n.output and n.op_type == "Constant"), None)
            if const is not None:
                del const.attribute[:]
                const.attribute.append(helper.make_attribute("value", tensor))
            else:
                for t in [t for t in m.graph.initializer if t.name == name]:
                    m.graph.initializer.remove(t)
                m.graph.initializer.append(tensor)

        view_edits = {
            "index 5 of 2 layers": lambda m: set_index(m, 5), "index -3 of 2 layers": lambda m: set_index(m, -3),
            "index -1 (the last layer)": lambda m: set_index(m, -1), "index 2**63-1": lambda m: set_index(m, 2 ** 63 - 1),
            "index a float": lambda m: set_index(m, 1.0, TensorProto.FLOAT),
            "index a list [0, 1]": lambda m: set_index(m, [0, 1], dims=(2,)),
            "index of int32": lambda m: set_index(m, 1, TensorProto.INT32),
            "a view of 3 layers": lambda m: set_view(m, [3, 1, -1, 4]),
            "a view of -1 layers": lambda m: set_view(m, [-1, 1, 2, 4]),
            "a view of 0 everywhere": lambda m: set_view(m, [0, 0, 0, 0]),
            "a view of 2**62 x 2**62": lambda m: set_view(m, [2 ** 62, 2 ** 62, -1, 4]),
            "a view of rank 1": lambda m: set_view(m, [-1]),
            # the exporter's zero initial state, Expand(0, [1, Shape(x)[1], H]): gateport reads the zeros for an index
            # within the rank (onnxruntime's batch check aside) and refuses one past it, as onnxruntime does
            "the zero state's batch taken at index 5 of Shape(x)": lambda m: set_index(m, 5, shape_gather=True),
            "the zero state's batch taken at a float index": lambda m: set_index(m, 1.0, TensorProto.FLOAT,
                                                                              shape_gather=True),
            "the zero initial state made of ones": lambda m: _set_constant(m, "/rnn/Constant_output_0", 1.0),
            "the zero initial state made of NaN": lambda m: _set_constant(m, "/rnn/Constant_1_output_0",
                                                                          float("nan")),
        }
        for j, (label, edit) in enumerate(view_edits.items()):
            m = copy(base)
            edit(m)
            p = folder / f"view{v}_{j}.onnx"
            p.write_bytes(m.SerializeToString())
            expect = "any" if label.startswith(("index -1", "index of int32", "the zero")) \
                and "index 5 of Shape" not in label else "refuse"
            cases += _both(K, f"h_n.view(...)[k]: {label}", p, folder, expect=expect, to=("torch", "onnx")[j % 2],
                           verify=expect == "any")
    return cases


def _set_constant(m, name: str, value: float) -> None:
    """The Constant node giving ``name`` made to give ``value`` (same shape and type)."""
    from onnx import numpy_helper

    node = next(n for n in m.graph.node if n.op_type == "Constant" and name in n.output)
    old = numpy_helper.to_array(node.attribute[0].t)
    node.attribute[0].t.CopyFrom(numpy_helper.from_array(old * 0 + old.dtype.type(value), node.attribute[0].t.name))


# -- command-line combinations -----------------------------------------------------------------------------------
def cli_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    K = "cli9"
    siamese = _base(folder, "siamese")
    bad: dict[str, Path] = {
        "an Absolute its own inbound": _keras_edit(folder, siamese, "self_abs", lambda c: _layer(c, "absolute")[
            "inbound_nodes"][0]["args"][0]["config"].update(keras_history=["absolute", 0, 0])),
        "an EinsumDense of 'abc,dc->abd'": _keras_edit(folder, _base(folder, "einsum"), "einsum_t", lambda c: _layer(
            c, "proj")["config"].update(equation="abc,dc->abd")),
        "a Conv1D data_format 'channels_middle'": _keras_edit(folder, _base(folder, "conv_cf"), "cf_mid", lambda c:
                                                              _layer(c, "conv")["config"].update(
                                                                  data_format="channels_middle")),
        "a Normalization invert 'yes'": _keras_edit(folder, _base(folder, "norm_invert"), "inv_yes", lambda c: _layer(
            c, "norm")["config"].update(invert="yes")),
        "an empty file": folder / "empty.keras",
    }
    bad["an empty file"].write_bytes(b"")
    for label, p in bad.items():
        cases.append(_case(K, f"convert --json {label}", ["convert", "--json", p, "--to", "onnx", "-o",
                                                           folder / f"{p.stem}_j.onnx"], p,
                           output=folder / f"{p.stem}_j.onnx"))
        cases.append(_case(K, f"inspect --json {label}", ["inspect", "--json", p], p))
        cases.append(_case(K, f"inspect --json --layer absolute {label}", ["inspect", "--json", "--layer", "absolute",
                                                                            p], p))
        cases.append(_case(K, f"verify --json {label}", ["verify", "--json", p, "--to", "torch,onnx"], p))
        # diff reads a Keras file it cannot read whole as its recurrent layers: against itself, 'same' or refused
        cases.append(_case(K, f"diff --json {label} itself", ["diff", "--json", p, p], [p], expect="any"))
        cases.append(_case(K, f"explain --json {label}", ["explain", "--json", p], p))
        # a batch reports in its table (stdout); -q: one error line per file that failed
        cases.append(_case(K, f"convert -q a batch of {label} and a good file",
                           ["-q", "convert", TINY, p, "--to", "gates", "-o", folder / f"batch_{p.stem}"],
                           [TINY, p], named=False, expect="any"))
    # -o paths: control characters, 4,000 characters, 300-character names, non-UTF-8 bytes
    odd_out = {"an escape and a newline": "out\x1b[31m\nfake.onnx", "a carriage return": "out\rx.onnx",
               "a tab and DEL": "o\tu\x7ft.onnx", "bidi override": "out\u202exnno.onnx",
               "a 300-character name": "o" * 300 + ".onnx", "non-UTF-8 bytes": os.fsdecode(b"out\xff\xfe.onnx"),
               "a lone surrogate byte sequence": os.fsdecode(b"\xed\xa0\x80.onnx")}
    for label, name in odd_out.items():
        for to in ("onnx", "torch", "gates"):
            out = folder / (name if to == "onnx" else name.removesuffix(".onnx") + ("_t" if to == "torch" else
                                                                                     ".gates"))
            expect = "refuse" if label.startswith("a 300") else "any"
            cases.append(_case(K, f"-o {label} (--to {to})", _convert(TINY, to, out), TINY, output=out,
                               expect=expect, named=False, importable=to == "torch" and expect == "any"))
    deep = folder / "/".join(["d" * 200] * 20)
    cases.append(_case(K, "-o a 4,000-character path (--to onnx)", _convert(TINY, "onnx", deep / "m.onnx"), TINY,
                       output=deep / "m.onnx", named=False))
    cases.append(_case(K, "inspect a 4,000-character path", ["inspect", deep / "m.h5"], TINY, named=False))
    cases.append(_case(K, "--config a 4,000-character path", ["inspect", TINY, "--config", deep / "c.json"], TINY,
                       named=False))
    # inputs whose names are no UTF-8, hold escapes, or are 250 bytes
    for label, raw in {"non-UTF-8 bytes": b"in\xff\xfe.h5", "escapes": b"in\x1b[2J\n.h5",
                       "a lone surrogate encoded": b"in\xed\xb2\x80.h5", "250 bytes": b"i" * 247 + b".h5"}.items():
        p = folder / os.fsdecode(raw)
        shutil.copy(TINY, p)
        for to in ("onnx", "torch"):
            out = folder / f"from_{len(cases)}{'.onnx' if to == 'onnx' else ''}"
            cases.append(_case(K, f"an input named with {label} (--to {to})", _convert(p, to, out), p, output=out,
                               expect="any", importable=to == "torch"))
        cases.append(_case(K, f"an input named with {label} (inspect --json)", ["inspect", "--json", p], p,
                           expect="any"))
        cases.append(_case(K, f"an input named with {label} (verify --json)", ["verify", "--json", p, "--to", "onnx"],
                           p, expect="any"))
        broken = folder / os.fsdecode(raw.replace(b".h5", b"_x.keras"))
        broken.write_bytes(b"PK\x03\x04 not a zip")
        cases.append(_case(K, f"a broken input named with {label} (convert)",
                           _convert(broken, "onnx", folder / f"b{len(cases)}.onnx"), broken,
                           output=folder / f"b{len(cases)}.onnx"))
        cases.append(_case(K, f"a broken input named with {label} (diff --json)", ["diff", "--json", broken, TINY],
                           [broken, TINY]))
    return cases


def main() -> int:
    """``python tests/attacks_round9.py [--group NAME] [--match TEXT] [--json FILE]``: build and run every case."""
    import attack_run

    return attack_run.battery_main(build, run_case9, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
