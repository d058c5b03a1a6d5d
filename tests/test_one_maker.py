"""Each tensor made once: one check (converters/ir.py made_twice) behind the Keras reader, the ONNX reader and
the ``.gates`` manifest check, each refusing a second maker of a name in its own one line."""
import copy

import numpy as np
import pytest

from converters import ir_file, manifest_check
from converters.errors import FormatError
from converters.ir import made_twice
from converters.readers import onnx_model
from test_ir_file import small_model


def test_made_twice_names_the_first_name_made_again_and_both_makers():
    assert made_twice(["x"], [("a", ["h"]), ("b", ["y", "z"])]) is None
    assert made_twice(["x"], [("a", ["h"]), ("b", ["y", "h"]), ("c", ["y"])]) == ("h", "a", "b")
    assert made_twice(["x", "w"], [("a", ["h"]), ("b", ["w"])]) == ("w", None, "b")
    assert made_twice([], [("a", ["h", "h"])]) == ("h", "a", "a")  # one maker naming two outputs alike
    assert made_twice(["x", "x"], []) is None  # given names are not checked against each other


# -- the .gates manifest ---------------------------------------------------------------------------------------
def _manifest():
    return ir_file.manifest(small_model(np.random.default_rng(0)))  # x -> lstm_1 -> dense


def test_a_manifest_node_making_a_tensor_again_is_refused():
    m = _manifest()
    m["nodes"][1]["outputs"] = ["lstm_1"]
    with pytest.raises(FormatError, match=r"^m\.gates: manifest nodes\[1\]\.outputs: expected tensor names not "
                                          r"made before, found 'lstm_1'$"):
        manifest_check.check_graph(m, "m.gates")
    m = _manifest()
    m["nodes"][0]["outputs"] = ["x"]  # a model input's name
    with pytest.raises(FormatError, match=r"manifest nodes\[0\]\.outputs: expected tensor names not made before, "
                                          r"found 'x'"):
        manifest_check.check_graph(m, "m.gates")


def test_the_manifest_walk_reports_the_first_fault_in_node_order():
    """A node reading a tensor nobody made, before the node making one again: the read is reported (the check
    runs where the walk reaches the second maker, as it did inline)."""
    m = _manifest()
    m["nodes"][0]["inputs"] = ["nowhere"]
    m["nodes"][1]["outputs"] = ["lstm_1"]
    with pytest.raises(FormatError, match=r"manifest nodes\[0\]\.inputs: expected tensors made by an earlier node"):
        manifest_check.check_graph(copy.deepcopy(m), "m.gates")
    m["nodes"][0]["inputs"] = ["x"]
    m["nodes"][1]["inputs"] = ["nowhere"]  # the same node: its inputs are checked before its outputs
    with pytest.raises(FormatError, match=r"manifest nodes\[1\]\.inputs: expected tensors made by an earlier node"):
        manifest_check.check_graph(m, "m.gates")


# -- ONNX ------------------------------------------------------------------------------------------------------
onnx = pytest.importorskip("onnx")
helper, TP = onnx.helper, onnx.TensorProto


def _proto(nodes, inits=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [1, 3])], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)


W = helper.make_tensor("w", TP.FLOAT, [3], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("nodes,inits,name,maker", [
    ([helper.make_node("Relu", ["x"], ["t"], name="n1"), helper.make_node("Relu", ["x"], ["t"], name="n2"),
      helper.make_node("Relu", ["t"], ["y"], name="n3")], (), "t", "n2"),
    ([helper.make_node("Relu", ["x"], ["w"], name="n1"), helper.make_node("Add", ["w", "x"], ["y"], name="n2")],
     (W,), "w", "n1"),
    ([helper.make_node("Relu", ["x"], ["x"], name="n1"), helper.make_node("Relu", ["x"], ["y"], name="n2")],
     (), "x", "n1"),
])
def test_an_onnx_value_computed_again_is_refused(nodes, inits, name, maker):
    op = next(n.op_type for n in nodes if n.name == maker)
    with pytest.raises(FormatError, match=rf"^m\.onnx: expected each value named once, found '{name}' computed "
                                          rf"again by node '{maker}' \('{op}'\)$"):
        onnx_model.check_structure(onnx, _proto(nodes, inits), "m.onnx")


def test_optional_outputs_left_out_are_no_values():
    """Several nodes may leave an optional output out (an empty name): none of them makes a value."""
    nodes = [helper.make_node("Dropout", ["x"], ["t", ""], name="d1"),
             helper.make_node("Dropout", ["t"], ["y", ""], name="d2")]
    onnx_model.check_structure(onnx, _proto(nodes), "m.onnx")
