"""The attention family in generated PyTorch code: ``attention``, ``multi_head_attention``, ``dot``,
``masked_softmax`` (equations in converters/reference_attention.py).

Masked scores become -1e9 before the softmax (``masked_fill``), as the numpy reference does; the
modules are written into model.py once per kind (:data:`HELPERS`).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Node
from ..sanitize import literal, quote

_ATTENTION = '''
def keras_keep(t: int, s: int, causal: bool, device: torch.device) -> Tensor:
    """(1, t, s): all True, or Keras' causal mask (query i sees keys j <= i)."""
    keep = torch.ones(1, t, s, dtype=torch.bool, device=device)
    return keep.tril() if causal else keep


class KerasAttention(nn.Module):
    """Keras Attention (score_mode dot or concat) and AdditiveAttention: masked keys left out of the
    softmax (-1e9), outputs of masked queries zero."""

    def __init__(self, score_mode: str, causal: bool, scale: Optional[List[int]], concat_weight: bool):
        super().__init__()
        self.score_mode, self.causal = score_mode, causal
        self.scale = nn.Parameter(torch.ones(scale)) if scale is not None else None
        self.concat_score_weight = nn.Parameter(torch.ones(())) if concat_weight else None

    def forward(self, query: Tensor, value: Tensor, key: Optional[Tensor] = None,
                query_mask: Optional[Tensor] = None, value_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        key = value if key is None else key
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(-1, -2))
            if self.scale is not None:
                scores = scores * self.scale
        else:
            summed = query.unsqueeze(2) + key.unsqueeze(1)
            if self.score_mode == "additive":
                scores = (torch.tanh(summed) * (self.scale if self.scale is not None else 1.0)).sum(-1)
            else:
                scores = torch.tanh(summed * self.scale if self.scale is not None else summed).sum(-1)
                if self.concat_score_weight is not None:
                    scores = self.concat_score_weight * scores
        keep = keras_keep(scores.size(1), scores.size(2), self.causal, scores.device)
        if value_mask is not None:
            keep = keep & value_mask.unsqueeze(1)
        weights = torch.softmax(scores.masked_fill(~keep, -1e9), dim=-1)
        out = torch.matmul(weights, value)
        if query_mask is not None:
            out = torch.where(query_mask.unsqueeze(-1), out, torch.zeros_like(out))
        return out, weights
'''

_MHA = '''
class KerasMultiHeadAttention(nn.Module):
    """Keras MultiHeadAttention over time: query/key/value projections per head, scores scaled by
    1/sqrt(key_dim), the query, value, key, causal and attention masks ANDed (-1e9 where False)."""

    def __init__(self, dims: List[int], heads: int, key_dim: int, value_dim: int, out_dim: int, bias: bool,
                 causal: bool, zero_masked_rows: bool):
        super().__init__()
        self.heads, self.key_dim, self.value_dim = heads, key_dim, value_dim
        self.causal, self.zero_masked_rows = causal, zero_masked_rows
        self.query = nn.Linear(dims[0], heads * key_dim, bias=bias)
        self.key = nn.Linear(dims[1], heads * key_dim, bias=bias)
        self.value = nn.Linear(dims[2], heads * value_dim, bias=bias)
        self.output = nn.Linear(heads * value_dim, out_dim, bias=bias)

    def forward(self, query: Tensor, value: Tensor, key: Optional[Tensor] = None,
                query_mask: Optional[Tensor] = None, value_mask: Optional[Tensor] = None,
                key_mask: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        key = value if key is None else key
        b = query.size(0)
        q = self.query(query).reshape(b, -1, self.heads, self.key_dim).transpose(1, 2)
        k = self.key(key).reshape(b, -1, self.heads, self.key_dim).transpose(1, 2)
        v = self.value(value).reshape(b, -1, self.heads, self.value_dim).transpose(1, 2)
        scores = torch.matmul(q * (1.0 / float(self.key_dim) ** 0.5), k.transpose(-1, -2))
        keep = keras_keep(scores.size(2), scores.size(3), self.causal, scores.device)
        if query_mask is not None:
            keep = keep & query_mask.unsqueeze(-1)
        for mask in (value_mask, key_mask):
            if mask is not None:
                keep = keep & mask.unsqueeze(1)
        if attention_mask is not None:
            keep = keep & (attention_mask != 0)
        keep = keep.unsqueeze(1)
        weights = torch.softmax(scores.masked_fill(~keep, -1e9), dim=-1)
        if self.zero_masked_rows:
            weights = weights.masked_fill(~keep, 0.0)
        ctx = torch.matmul(weights, v).transpose(1, 2).reshape(b, -1, self.heads * self.value_dim)
        return self.output(ctx), weights
'''

_DOT = '''
def keras_dot(a: Tensor, b: Tensor, axes: List[int], normalize: bool, max_inv_norm: float) -> Tensor:
    """Keras Dot (batch_dot over ``axes``), inputs L2-normalized first when ``normalize``."""
    if normalize:
        a = a * torch.clamp(torch.rsqrt((a * a).sum(dim=axes[0], keepdim=True)), max=max_inv_norm)
        b = b * torch.clamp(torch.rsqrt((b * b).sum(dim=axes[1], keepdim=True)), max=max_inv_norm)
    a, b = a.movedim(axes[0], -1), b.movedim(axes[1], -1)
    rest = list(a.shape[1:-1]) + list(b.shape[1:-1])
    y = torch.matmul(a.reshape(a.size(0), -1, a.size(-1)), b.reshape(b.size(0), -1, b.size(-1)).transpose(1, 2))
    return y.reshape([y.size(0)] + (rest if len(rest) > 0 else [1]))
'''

#: helper name -> (source, helpers it needs); merged into torch_templates.HELPERS.
HELPERS = {
    "KerasAttention": (_ATTENTION, ()),
    "KerasMultiHeadAttention": (_MHA, ("KerasAttention",)),
    "keras_dot": (_DOT, ()),
}
FUNCTION_NAMES = ("keras_keep", "keras_dot")


def _args(w, node: Node) -> str:
    """The call's arguments by role (``query=..., value=...``)."""
    return ", ".join(f"{role}={w.var(t, node)}" for role, t in zip(node.options["roles"], node.inputs))


def _assign(w, node: Node, attr: str) -> None:
    out = w.unique(f"{node.name}_out")
    w.line(f"{out} = self.{attr}({_args(w, node)})")
    for k, tensor in enumerate(node.outputs):
        w.assign(tensor, f"{out}[{k}]")


def attention_to_torch(w, node: Node) -> None:
    o, weights = node.options, node.weights
    mode = o["score_mode"]
    if mode not in ("dot", "concat", "additive"):
        raise UnsupportedError(f"expected score_mode dot, concat or additive, found {quote(mode)}")
    params = {k: np.asarray(weights[k], np.float32) for k in ("scale", "concat_score_weight") if k in weights}
    scale = list(params["scale"].shape) if "scale" in params else None
    w.helpers.add("KerasAttention")
    ctor = (f"KerasAttention({literal(mode)}, causal={bool(o.get('causal'))}, scale={scale}, "
            f"concat_weight={'concat_score_weight' in params})")
    _assign(w, node, w.module(node, ctor, params))


def multi_head_attention_to_torch(w, node: Node) -> None:
    o, wt = node.options, node.weights
    params, dims = {}, []
    for part in ("query", "key", "value", "output"):
        params[f"{part}.weight"] = np.asarray(wt[f"{part}_weight"], np.float32)
        if o["use_bias"]:
            params[f"{part}.bias"] = np.asarray(wt[f"{part}_bias"], np.float32)
        dims.append(int(params[f"{part}.weight"].shape[1]))
    w.helpers.add("KerasMultiHeadAttention")
    ctor = (f"KerasMultiHeadAttention({dims[:3]}, heads={int(o['num_heads'])}, key_dim={int(o['key_dim'])}, "
            f"value_dim={int(o['value_dim'])}, out_dim={int(params['output.weight'].shape[0])}, "
            f"bias={bool(o.get('use_bias', True))}, causal={bool(o.get('causal'))}, "
            f"zero_masked_rows={o.get('masked_rows') == 'zero'})")
    _assign(w, node, w.module(node, ctor, params))


def dot_to_torch(w, node: Node) -> None:
    o = node.options
    w.helpers.add("keras_dot")
    axes = [int(a) for a in o["axes"]]
    a, b = (w.var(t, node) for t in node.inputs)
    w.assign(node.outputs[0], f"keras_dot({a}, {b}, {axes}, {bool(o.get('normalize'))}, "
                              f"{float(o.get('max_inv_norm', 1e7))!r})")


def masked_softmax_to_torch(w, node: Node) -> None:
    x, mask = (w.var(t, node) for t in node.inputs)
    expr = f"torch.softmax({x}.masked_fill(~{mask}, -1e9), dim=-1)"
    if node.options.get("zero_masked"):
        expr = f"{expr}.masked_fill(~{mask}, 0.0)"
    w.assign(node.outputs[0], expr)


EMITTERS = {"attention": attention_to_torch, "multi_head_attention": multi_head_attention_to_torch,
            "dot": dot_to_torch, "masked_softmax": masked_softmax_to_torch}
