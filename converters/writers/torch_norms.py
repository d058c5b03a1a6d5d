"""The normalization and scaling ops in generated PyTorch code (equations: converters/reference_norms.py).

``normalization``, ``rescaling`` and ``rms_norm`` are small modules written into model.py once per kind
(:data:`HELPERS`); ``group_norm`` is ``nn.GroupNorm`` over the channels moved to axis 1 (the same
moments, each group over its channels and every step). Each weight's shape is checked against the
input's before anything is written (converters/norm_checks.py).
"""
from __future__ import annotations

import numpy as np

from ..ir import Node
from ..ops import conv1d_transpose_edges
from .codegen import number as _number
from ..norm_checks import check_weights, conv1d_transpose_weights, group_channels, input_shape, trailing_dims

_NORMALIZATION = '''
class KerasNormalization(nn.Module):
    """Keras Normalization: (x - mean) / max(sqrt(variance), epsilon); invert: mean + x * max(...)."""

    def __init__(self, shape: List[int], invert: bool, epsilon: float):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(shape), requires_grad=False)
        self.variance = nn.Parameter(torch.ones(shape), requires_grad=False)
        self.invert, self.epsilon = invert, epsilon

    def forward(self, x: Tensor) -> Tensor:
        scale = torch.clamp(torch.sqrt(self.variance), min=self.epsilon)
        return self.mean + x * scale if self.invert else (x - self.mean) / scale
'''

_RESCALING = '''
class KerasRescaling(nn.Module):
    """Keras Rescaling: x * scale + offset."""

    def __init__(self, scale: List[int], offset: List[int]):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(scale), requires_grad=False)
        self.offset = nn.Parameter(torch.zeros(offset), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.offset
'''

_RMS_NORM = '''
class KerasRMSNorm(nn.Module):
    """Keras RMSNormalization: x * rsqrt(mean(x^2) + epsilon) * scale over the trailing ``axes``; centered
    (LayerNormalization(rms_scaling=True)): the variance instead of mean(x^2)."""

    def __init__(self, shape: List[int], epsilon: float, centered: bool):
        super().__init__()
        self.axes = list(range(-len(shape), 0))
        self.epsilon, self.centered = epsilon, centered
        self.scale = nn.Parameter(torch.ones(shape))

    def forward(self, x: Tensor) -> Tensor:
        squares = (x - x.mean(dim=self.axes, keepdim=True)) ** 2 if self.centered else x * x
        return x * torch.rsqrt(squares.mean(dim=self.axes, keepdim=True) + self.epsilon) * self.scale
'''

HELPERS = {"KerasNormalization": (_NORMALIZATION, ()), "KerasRescaling": (_RESCALING, ()),
           "KerasRMSNorm": (_RMS_NORM, ())}


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64 if np.asarray(a).dtype == np.float64 else np.float32)


def _module(w, node: Node, helper: str, ctor: str, params: dict) -> None:
    w.helpers.add(helper)
    attr = w.module(node, ctor, {k: _f32(v) for k, v in params.items()})
    w.assign(node.outputs[0], f"self.{attr}({w.var(node.inputs[0], node)})")


def normalization_to_torch(w, node: Node) -> None:
    params = {k: node.weights[k] for k in ("mean", "variance")}
    check_weights(node, input_shape(w, node))
    ctor = (f"KerasNormalization({list(np.shape(params['mean']))}, {bool(node.options['invert'])}, "
            f"{_number(node.options['epsilon'])})")
    _module(w, node, "KerasNormalization", ctor, params)


def rescaling_to_torch(w, node: Node) -> None:
    params = {k: node.weights[k] for k in ("scale", "offset")}
    check_weights(node, input_shape(w, node))
    _module(w, node, "KerasRescaling",
            f"KerasRescaling({list(np.shape(params['scale']))}, {list(np.shape(params['offset']))})", params)


def rms_norm_to_torch(w, node: Node) -> None:
    axes = [int(a) for a in node.options["axes"]]
    params = {"scale": node.weights["scale"]} if "scale" in node.weights else {}
    dims = trailing_dims(node, input_shape(w, node), axes, params)
    params = params or {"scale": np.ones(dims, np.float32)}
    ctor = f"KerasRMSNorm({list(dims)}, {_number(node.options['epsilon'])}, {bool(node.options['centered'])})"
    _module(w, node, "KerasRMSNorm", ctor, params)


def group_norm_to_torch(w, node: Node) -> None:
    """nn.GroupNorm over ``x.movedim(-1, 1)`` (channels first); gamma/beta left out become ones/zeros."""
    shape = input_shape(w, node)
    n = group_channels(node, shape)
    params = {"weight": _f32(node.weights.get("gamma", np.ones(n, np.float32))),
              "bias": _f32(node.weights.get("beta", np.zeros(n, np.float32)))}
    attr = w.module(node, f"nn.GroupNorm({int(node.options['groups'])}, {n}, eps={_number(node.options['epsilon'])})",
                    params)
    x = w.var(node.inputs[0], node)
    w.assign(node.outputs[0], f"self.{attr}({x})" if len(shape) == 1 else f"self.{attr}({x}.movedim(-1, 1)).movedim(1, -1)")


EMITTERS = {"normalization": normalization_to_torch, "rescaling": rescaling_to_torch, "rms_norm": rms_norm_to_torch,
            "group_norm": group_norm_to_torch}


# -- conv1d_transpose (Keras Conv1DTranspose) ------------------------------------------------------


def conv1d_transpose_to_torch(w, node: Node) -> None:
    """F.conv_transpose1d with nn.ConvTranspose1d's weight and bias, no padding: TensorFlow's zero steps at the
    end are its ``output_padding`` (they get the bias only; always < strides), its crop a slice
    (ops.conv1d_transpose_edges)."""
    weight, bias, k, s, d = conv1d_transpose_weights(node, input_shape(w, node))
    n_in, filters = weight.shape[:2]
    params = {"weight": _f32(weight), **({"bias": _f32(bias)} if bias is not None else {})}
    ctor = f"nn.ConvTranspose1d({n_in}, {filters}, {k}, stride={s}, dilation={d}{'' if bias is not None else ', bias=False'})"
    attr = w.module(node, ctor, params)
    before, after = conv1d_transpose_edges(node.options)
    y = w.unique(f"{node.name}_full")
    w.line(f"{y} = F.conv_transpose1d({w.var(node.inputs[0], node)}.transpose(1, 2), self.{attr}.weight, "
           f"self.{attr}.bias, {s}, 0, {max(after, 0)}, 1, {d})")
    expr = f"{y}[:, :, {before}:{y}.size(2) + {after}]" if after < 0 else f"{y}[:, :, {before}:]" if before else y
    w.assign(node.outputs[0], w.activation(node.options.get("activation"), f"{expr}.transpose(1, 2)"))


EMITTERS["conv1d_transpose"] = conv1d_transpose_to_torch
