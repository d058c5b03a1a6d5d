"""``conv_lstm`` (Keras ConvLSTM1D/2D) in generated PyTorch code: an exact loop over time.

The input convolution of every step runs as one ``F.conv1d``/``F.conv2d`` over ``(batch * time)``
frames (per frame the same sum), the recurrent one per step (stride 1, 'same'); gates i, f, c, o and
TensorFlow's 'same' padding (the odd step on the right) as converters/reference_conv_lstm.py.
"""
from __future__ import annotations

import numpy as np

from ..ir import Node

_CONV_LSTM = '''
class KerasConvLSTM(nn.Module):
    """Keras ConvLSTM1D/2D, channels last: z = conv(x_t) + bias + conv(h; stride 1, same), gates i, f, c, o."""

    def __init__(self, shape: List[int], bias: bool, strides: List[int], dilation: List[int], same: bool,
                 activation: nn.Module, recurrent_activation: nn.Module, go_backwards: bool, return_sequences: bool):
        super().__init__()
        self.rank, self.kernel = len(shape) - 2, shape[2:]
        self.strides, self.dilation, self.same = strides, dilation, same
        self.weight = nn.Parameter(torch.zeros(shape))
        self.recurrent_weight = nn.Parameter(torch.zeros([shape[0], shape[0] // 4] + shape[2:]))
        self.bias = nn.Parameter(torch.zeros(shape[0])) if bias else None
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.go_backwards, self.return_sequences = go_backwards, return_sequences

    def conv(self, x: Tensor, w: Tensor, b: Optional[Tensor], strides: List[int], dilation: List[int],
             same: bool) -> Tensor:
        if same:
            pads: List[int] = []
            for a in range(self.rank - 1, -1, -1):  # F.pad lists the last axis first
                pads += keras_same_padding(x.size(2 + a), self.kernel[a], strides[a], dilation[a])
            x = F.pad(x, pads)
        if self.rank == 1:
            return F.conv1d(x, w, b, strides, 0, dilation)
        return F.conv2d(x, w, b, strides, 0, dilation)

    def forward(self, x: Tensor, h0: Optional[Tensor] = None, c0: Optional[Tensor] = None
                ) -> Tuple[Tensor, Tensor, Tensor]:
        b, t = x.size(0), x.size(1)
        last = [0] + list(range(2, self.rank + 2)) + [1]  # channels first -> last
        frames = x.reshape([b * t] + list(x.shape[2:])).movedim(-1, 1)
        z_x = self.conv(frames, self.weight, self.bias, self.strides, self.dilation, self.same)
        z_x = z_x.reshape([b, t] + list(z_x.shape[1:]))
        if h0 is None or c0 is None:
            h = z_x.new_zeros([b, z_x.size(2) // 4] + list(z_x.shape[3:]))
            c = h
        else:
            h, c = h0.movedim(-1, 1), c0.movedim(-1, 1)
        ones = [1] * self.rank
        hs: List[Tensor] = []
        for k in range(t):
            z = z_x[:, t - 1 - k if self.go_backwards else k]
            z = z + self.conv(h, self.recurrent_weight, None, ones, ones, True)
            i, f, g, o = z.chunk(4, 1)
            c = self.recurrent_activation(f) * c + self.recurrent_activation(i) * self.activation(g)
            h = self.recurrent_activation(o) * self.activation(c)
            hs.append(h)
        y = torch.stack(hs, 1).permute([0, 1] + [d + 1 for d in last[1:]]) if self.return_sequences \\
            else h.permute(last)
        return y, h.permute(last), c.permute(last)
'''

HELPERS = {"KerasConvLSTM": (_CONV_LSTM, ("keras_same_padding",))}


def conv_lstm_to_torch(w, node: Node) -> None:
    o = node.options
    params = {"weight": np.asarray(node.weights["kernel"], np.float32),
              "recurrent_weight": np.asarray(node.weights["recurrent_kernel"], np.float32)}
    if "bias" in node.weights:
        params["bias"] = np.asarray(node.weights["bias"], np.float32)
    w.helpers.add("KerasConvLSTM")
    ints = lambda key: [int(v) for v in o[key]]  # noqa: E731
    ctor = (f"KerasConvLSTM({list(params['weight'].shape)}, {'bias' in params}, {ints('strides')}, "
            f"{ints('dilation_rate')}, {o.get('padding') == 'same'}, {w.activation_module(o.get('activation', 'tanh'))}, "
            f"{w.activation_module(o.get('recurrent_activation', 'sigmoid'))}, {bool(o.get('go_backwards'))}, "
            f"{bool(o.get('return_sequences'))})")
    attr = w.module(node, ctor, params)
    out = w.unique(f"{node.name}_out")
    w.line(f"{out} = self.{attr}({', '.join(w.var(t, node) for t in node.inputs)})")
    for k, tensor in enumerate(node.outputs):
        w.assign(tensor, f"{out}[{k}]")


EMITTERS = {"conv_lstm": conv_lstm_to_torch}
