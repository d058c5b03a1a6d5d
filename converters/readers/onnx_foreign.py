"""Nodes of a foreign ONNX file that no pattern and no handler reads, named before any tensor is read.

    refuse_foreign_nodes(proto, path)

Two kinds, both written by onnxruntime's own tools after an export:

- ops of another domain than the standard one (``com.microsoft`` ``FusedMatMul``, ``BiasGelu``,
  ``Gelu``, ``SkipLayerNormalization``, ``DynamicQuantizeLSTM``, ...): onnxruntime's graph optimizer
  writes them into ``SessionOptions.optimized_model_filepath`` at ORT_ENABLE_EXTENDED and above
  (onnxruntime/core/optimizer/graph_transformer_utils.cc: the fusions of GenerateTransformers'
  kExtended level), and ``onnxruntime.quantization.quantize_dynamic`` writes ``DynamicQuantizeLSTM``
  (onnxruntime/python/tools/quantization/operators/lstm.py);
- ops in the standard domain that are no ONNX op at all: onnxruntime registers some of its own there and
  its optimizer writes them into the saved file (``SimplifiedLayerNormalization`` from LayerNormFusion
  at ORT_ENABLE_EXTENDED: onnxruntime/core/graph/contrib_ops/onnx_function_util / ``kOnnxDomain``);
- ops no ONNX opset defines that a converter left as it found them (tf2onnx keeps a TensorFlow op it
  cannot convert at the requested opset, ``ReverseV2`` of a backward GRU at opset 9);
- the standard domain's quantized ops (``DynamicQuantizeLinear`` + ``MatMulInteger``, what
  quantize_dynamic writes for MatMul (operators/matmul.py), ``QuantizeLinear``/``DequantizeLinear``,
  ``QLinearMatMul``, ...): int8 weights and a rounding that float32 weights would not reproduce.

Without this check such a file was refused at whatever came first, often an int8 zero-point
initializer ("expected element type float, ... found type 3"), which says neither which node nor
why. Each is refused in one line naming the node, its domain and op, and the way out (the file as
exported, before optimization or quantization). Subgraphs (Loop / If / Scan bodies) are searched too.
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..sanitize import quote

#: the standard domain's quantized ops (onnx/defs/quantization/defs.cc, onnx/defs/math/defs.cc
#: MatMulInteger, onnx/defs/nn/defs.cc ConvInteger / QLinearConv)
QUANTIZED_OPS = ("DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QuantizeLinear", "DequantizeLinear",
                 "QLinearMatMul", "QLinearConv")
_STANDARD = ("", "ai.onnx")
_AS_EXPORTED = "read the file as the exporter wrote it"


def _why(onnx, node) -> str:
    domain, op = node.domain, node.op_type
    if domain not in _STANDARD:
        found = f"found {quote(op)} of domain {quote(domain)}"
        if "quantiz" in op.lower() or op.endswith("Integer"):
            return (f"expected standard ONNX ops, {found}: a quantized model (onnxruntime.quantization's int8 "
                    f"weights); {_AS_EXPORTED}, before quantization")
        if domain.startswith("com.microsoft"):
            return (f"expected standard ONNX ops, {found} (an onnxruntime contrib op: onnxruntime's graph "
                    f"optimizer writes these at ORT_ENABLE_EXTENDED and above); {_AS_EXPORTED}, or one optimized "
                    f"at ORT_ENABLE_BASIC")
        return f"expected standard ONNX ops, {found}"
    if not onnx.defs.has(op):
        return (f"expected standard ONNX ops, found {quote(op)}, which no ONNX opset defines (a converter leaves an op "
                f"it has no conversion for as it was: tf2onnx a TensorFlow op at too low an opset; onnxruntime writes "
                f"some of its own ops in the standard domain at ORT_ENABLE_EXTENDED and above); convert again at a "
                f"newer opset, or {_AS_EXPORTED}, or one optimized at ORT_ENABLE_BASIC")
    return (f"expected float ops, found {quote(op)}: a quantized model (int8 weights, as "
            f"onnxruntime.quantization writes); {_AS_EXPORTED}, before quantization")


def graphs_of(proto):
    """The model's graph, then every Loop / If / Scan body below it, breadth first, without recursion."""
    graphs = [proto.graph]
    while graphs:
        g = graphs.pop(0)
        yield g
        graphs += [a.g for n in g.node for a in n.attribute if a.HasField("g")]
        graphs += [sub for n in g.node for a in n.attribute for sub in a.graphs]


def refuse_foreign_nodes(onnx, proto, path: str | None) -> None:
    """UnsupportedError naming the first node (main graph first, then subgraphs) of another domain than
    the standard one, of no ONNX op, or a quantized standard op."""
    for g in graphs_of(proto):
        for node in g.node:
            if node.domain not in _STANDARD or node.op_type in QUANTIZED_OPS or not onnx.defs.has(node.op_type):
                where = f"ONNX node {quote(node.name or (node.output[0] if node.output else ''))} " \
                        f"({quote(node.op_type)[1:-1]})"
                raise UnsupportedError(_why(onnx, node), file=path, layer=where)
