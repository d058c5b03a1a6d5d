"""The op table (converters/ops.py) covers every op, and every op it holds has a reference, a writer
for every target and a reader; failures name the op and the missing piece. The committed JSON Schema
is the one the table generates."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from converters import keras_classes, manifest_check, ops, reference, reference_rnn
from converters.readers import onnx_ops, onnx_recurrent
from converters.writers import keras_attention, keras_layers, keras_tf_ops, numpy_code, onnx_graph, torch_code
from helpers import SCHEMA_PATH

READERS = Path(reference.__file__).parent / "readers"
KERAS_WRITER = ("Keras writer (writers/keras_layers.py LAYERS or IMPLICIT, writers/keras_attention.py LAYERS, "
                "writers/keras_tf_ops.py LAYERS)")

#: Where each op gets computed or written: target -> the ops its dispatch knows.
WRITERS = {
    "reference (converters/reference.py OPS, reference_rnn)": set(reference.OPS) | set(reference_rnn.N_STATES),
    "torch writer (writers/torch_code.py EMITTERS)": set(torch_code.EMITTERS),
    "numpy writer (writers/numpy_code.py EMITTERS)": set(numpy_code.EMITTERS),
    "ONNX writer (writers/onnx_graph.py CONVERTERS)": set(onnx_graph.CONVERTERS),
    KERAS_WRITER: set(keras_layers.LAYERS) | set(keras_layers.IMPLICIT) | set(keras_attention.LAYERS)
    | set(keras_tf_ops.LAYERS),
}
#: Ops a writer may lack, with the reason.
WRITER_EXEMPT: dict[tuple[str, str], str] = {
    ("mask_lengths", KERAS_WRITER): "Keras 3 has no layer making a mask of per-sample lengths (ONNX sequence_lens): "
                                    "the Keras writer refuses it in one line (tests/test_onnx_sequence_lens.py)",
}
#: Ops the ONNX reader does not read back, with the reason (tests/roundtrip.py NOT_READ_FROM_ONNX lists
#: the fixtures holding them).
ONNX_READER_EXEMPT = {
    **dict.fromkeys(("attention", "multi_head_attention", "masked_softmax"),
                    "the attention graphs are not read back (a MatMul of two tensors is read as dot)"),
    "mask_concat": "a Concat of bool masks is not read back (the ONNX reader reads masks made by Equal/Not, And, Or)",
    "conv_lstm": "written as an unrolled Conv/Split graph or a Scan, which the reader does not read back",
    **dict.fromkeys(("conv2d", "conv3d", "pool2d", "zero_pad2d"),
                    "2-D / 3-D Conv, 2-D MaxPool/AveragePool/Pad between Transposes are not read back (the ONNX "
                    "reader reads 1-D ones only)"),
}

#: Ops no Keras file gives, with the reason.
KERAS_READER_EXEMPT = {"mask_lengths": "ONNX sequence_lens (per-sample lengths); Keras masks come from values"}


def _literal_ops(prefix: str) -> set[str]:
    """Ops the reader modules ``readers/<prefix>*.py`` create by name: ``add("op", ...)``, ``op="op"``."""
    found: set[str] = set()
    for path in READERS.glob(f"{prefix}*.py"):
        text = path.read_text()
        found |= set(re.findall(r'\badd\(\s*"([a-z0-9_]+)"', text)) | set(re.findall(r'\bop="([a-z0-9_]+)"', text))
    return found


#: The Keras class table's ops, and the ops the Keras reader adds by name (the mask_* nodes of its mask
#: propagation, masked_softmax for a masked Softmax).
KERAS_READER = {c.op for c in keras_classes.CLASSES.values() if c.op} | _literal_ops("keras_")
ONNX_READER = _literal_ops("onnx_") | set(onnx_ops._MERGE_OPS.values()) | set(onnx_recurrent.KINDS.values())


@pytest.mark.parametrize("op", sorted(ops.OPS))
def test_every_op_has_a_reference_and_a_writer_per_target(op):
    missing = [where for where, known in WRITERS.items() if op not in known and (op, where) not in WRITER_EXEMPT]
    assert not missing, f"op {op!r} has no " + "; no ".join(missing)


@pytest.mark.parametrize("op", sorted(ops.OPS))
def test_every_op_has_a_reader(op):
    assert op in KERAS_READER or op in KERAS_READER_EXEMPT, \
        f"op {op!r}: no Keras reader (converters/readers/keras_*.py) produces it"
    assert op in ONNX_READER or op in ONNX_READER_EXEMPT, \
        f"op {op!r}: the ONNX reader (converters/readers/onnx_*.py) does not produce it and it is not exempt"


def test_every_op_a_dispatch_or_reader_knows_is_in_the_table():
    keras_table = {c.op for c in keras_classes.CLASSES.values() if c.op}
    readers = {"Keras class table (converters/keras_classes.py)": keras_table, "Keras reader": KERAS_READER,
               "ONNX reader": ONNX_READER}
    for where, known in {**WRITERS, **readers}.items():
        unknown = sorted(known - set(ops.OPS))
        assert not unknown, f"{where} knows ops {unknown} that converters/ops.py has no row for"


def test_exemptions_are_still_needed():
    assert not set(ONNX_READER_EXEMPT) & ONNX_READER, "the ONNX reader reads these now: drop the exemption"
    assert not set(KERAS_READER_EXEMPT) & KERAS_READER, "the Keras reader makes these now: drop the exemption"
    stale = [key for key in WRITER_EXEMPT if key[0] in WRITERS[key[1]]]
    assert not stale, f"writers now write {stale}: drop the exemption"


def test_committed_schema_is_generated_from_the_table():
    assert SCHEMA_PATH.read_text() == manifest_check.schema_text(), \
        "run: python -m converters.manifest_check > schemas/ir-manifest.schema.json"


@pytest.mark.parametrize("op", sorted(ops.OPS))
def test_rows_are_complete(op):
    row = ops.OPS[op]
    assert row.doc and row.mask in ops.MASK_RULES, f"op {op!r}: a description and a mask rule"
    for key, option in row.options.items():
        if option.default not in (ops.REQUIRED, ops.ABSENT) and not callable(option.default):
            assert option.type.check(option.default), f"op {op!r}: default of {key} is not a {option.type.expected}"
    assert (row.states > 0) == (op in ops.STATES), f"op {op!r}: states only for recurrent ops"


def test_a_node_is_built_with_its_defaults_and_stores_what_it_was_given():
    from converters.ir import Node

    node = Node("c", "conv1d", ["x"], ["c"], {"filters": 4, "kernel_size": 3, "strides": 2})
    assert node.options == {"filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 1, "groups": 1,
                            "padding": "valid", "activation": "linear", "use_bias": True}
    node.options["padding"] = "same"  # changed after the build: stored
    assert node.given_options() == {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}
    pool = Node("p", "pool1d", ["x"], ["p"], {"mode": "max", "pool_size": 3})
    assert pool.options["strides"] == 3 and pool.options["padding"] == "valid"
