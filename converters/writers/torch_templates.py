"""Source text of the small helpers a generated ``model.py`` may need, and which ones need which.

:mod:`converters.writers.torch_code` emits only the helpers a model uses, in the order of
:data:`HELPERS`. The loops follow Keras' generic ``backend.rnn`` (keras/src/backend/torch/rnn.py,
tf_keras/src/backend.py ``rnn``) and the cells of keras/src/layers/rnn/{lstm,gru,simple_rnn}.py.
"""
from __future__ import annotations

_HARD_SIGMOID_KERAS2 = '''
def hard_sigmoid_keras2(x: Tensor) -> Tensor:
    """Keras 1/2 and tf.keras hard_sigmoid: clip(0.2 * x + 0.5, 0, 1)."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class HardSigmoidKeras2(nn.Module):
    """hard_sigmoid_keras2 as a module (Keras 3's hard_sigmoid is nn.Hardsigmoid)."""

    def forward(self, x: Tensor) -> Tensor:
        return hard_sigmoid_keras2(x)
'''

_EXPONENTIAL = '''
class Exponential(nn.Module):
    """Keras' exponential activation as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(x)
'''


def _function_helper(name: str, cls: str, doc: str, body: str) -> str:
    """Source of an activation function ``name(x)`` and its module ``cls``."""
    return f'''
def {name}(x: Tensor) -> Tensor:
    """{doc}"""
    return {body}


class {cls}(nn.Module):
    """{name} as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return {name}(x)
'''


_SPARSE_PLUS = _function_helper(
    "keras_sparse_plus", "SparsePlus", "Keras' sparse_plus: 0 below -1, (x + 1)^2 / 4 up to 1, x above.",
    "torch.where(x <= -1, torch.zeros_like(x), torch.where(x < 1, 0.25 * (x + 1) ** 2, x))")
_SPARSE_SIGMOID = _function_helper(
    "keras_sparse_sigmoid", "SparseSigmoid", "Keras' sparse_sigmoid: clip((x + 1) / 2, 0, 1).",
    "torch.clamp(0.5 * (x + 1), 0.0, 1.0)")
_SQUAREPLUS = _function_helper(
    "keras_squareplus", "Squareplus", "Keras' squareplus with b = 4: (x + sqrt(x^2 + 4)) / 2.",
    "(x + torch.sqrt(x * x + 4.0)) / 2")
#: Function names the helpers define at module level (generated variables must not shadow them).
FUNCTION_NAMES = ("hard_sigmoid_keras2", "keras_same_padding", "keras_sparse_plus", "keras_sparse_sigmoid",
                  "keras_squareplus")

_PRELU = '''
class KerasPReLU(nn.Module):
    """Keras PReLU: relu(x) - alpha * relu(-x), alpha shaped like one sample (1 on shared axes)."""

    def __init__(self, shape: Tuple[int, ...]):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(shape))

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x) - self.alpha * torch.relu(-x)
'''

_KERAS_LOOP = '''
class KerasLoop(nn.Module):
    """One direction of a Keras recurrent layer, computed step by step as Keras does.

    Used where nn.LSTM / nn.GRU / nn.RNN cannot compute the layer exactly: other activations,
    GRU reset_after=False, or a mask. At a masked step the states keep their previous values and
    the output repeats the previous output (zeros before the first step), or is zeros with
    zero_output_for_mask. go_backwards reverses the input and the mask; the outputs stay in
    processing order, as in Keras. Weights are laid out as in nn.LSTM / nn.GRU / nn.RNN.
    """

    def __init__(self, input_size: int, hidden_size: int, gates: int, go_backwards: bool,
                 zero_output_for_mask: bool):
        super().__init__()
        self.hidden_size = hidden_size
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.weight_ih = nn.Parameter(torch.zeros(gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.zeros(gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(gates * hidden_size))

    def initial_states(self, x: Tensor) -> List[Tensor]:
        return [x.new_zeros(x.size(0), self.hidden_size)]

    def cell(self, x_t: Tensor, states: List[Tensor]) -> List[Tensor]:
        """One step: the input projection of this step and the states -> the new states."""
        raise NotImplementedError

    def forward(self, x: Tensor, mask: Optional[Tensor] = None,
                states: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        """x (batch, time, input_size) -> (outputs (batch, time, hidden_size), final states)."""
        if states is None:
            states = self.initial_states(x)
        if self.go_backwards:
            x = x.flip(1)
            if mask is not None:
                mask = mask.flip(1)
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)  # the input part of every step at once
        output = torch.zeros_like(states[0])
        outputs: List[Tensor] = []
        for t in range(x.size(1)):
            new_states = self.cell(x_proj[:, t], states)
            if mask is None:
                states = new_states
                output = new_states[0]
            else:
                keep = mask[:, t].unsqueeze(1)
                if self.zero_output_for_mask:
                    output = torch.zeros_like(output)
                output = torch.where(keep, new_states[0], output)
                kept: List[Tensor] = []
                for k in range(len(states)):
                    kept.append(torch.where(keep, new_states[k], states[k]))
                states = kept
            outputs.append(output)
        return torch.stack(outputs, 1), states
'''

_LSTM_LOOP = '''
class LSTMLoop(KerasLoop):
    """Keras LSTM cell (gates i, f, g, o as in nn.LSTM) with any activations."""

    def __init__(self, input_size: int, hidden_size: int, activation: nn.Module,
                 recurrent_activation: nn.Module, go_backwards: bool = False,
                 zero_output_for_mask: bool = False):
        super().__init__(input_size, hidden_size, 4, go_backwards, zero_output_for_mask)
        self.activation = activation
        self.recurrent_activation = recurrent_activation

    def initial_states(self, x: Tensor) -> List[Tensor]:
        h = x.new_zeros(x.size(0), self.hidden_size)
        return [h, h]

    def cell(self, x_t: Tensor, states: List[Tensor]) -> List[Tensor]:
        h, c = states[0], states[1]
        i, f, g, o = (x_t + F.linear(h, self.weight_hh, self.bias_hh)).chunk(4, 1)
        c = self.recurrent_activation(f) * c + self.recurrent_activation(i) * self.activation(g)
        h = self.recurrent_activation(o) * self.activation(c)
        return [h, c]
'''

_GRU_LOOP = '''
class GRULoop(KerasLoop):
    """Keras GRU cell (gates r, z, n as in nn.GRU) with any activations.

    reset_after=True is nn.GRU's n = act(x_n + r * (W_hn h + b_hn)); reset_after=False (Keras 1,
    Keras 2 default) applies the reset gate before the product: n = act(x_n + W_hn (r * h) + b_hn).
    """

    def __init__(self, input_size: int, hidden_size: int, activation: nn.Module,
                 recurrent_activation: nn.Module, reset_after: bool = True,
                 go_backwards: bool = False, zero_output_for_mask: bool = False):
        super().__init__(input_size, hidden_size, 3, go_backwards, zero_output_for_mask)
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.reset_after = reset_after

    def cell(self, x_t: Tensor, states: List[Tensor]) -> List[Tensor]:
        h = states[0]
        u = self.hidden_size
        x_r, x_z, x_n = x_t.chunk(3, 1)
        h_r, h_z = F.linear(h, self.weight_hh[: 2 * u], self.bias_hh[: 2 * u]).chunk(2, 1)
        r = self.recurrent_activation(x_r + h_r)
        z = self.recurrent_activation(x_z + h_z)
        if self.reset_after:
            h_n = r * F.linear(h, self.weight_hh[2 * u:], self.bias_hh[2 * u:])
        else:
            h_n = F.linear(r * h, self.weight_hh[2 * u:], self.bias_hh[2 * u:])
        n = self.activation(x_n + h_n)
        return [z * h + (1 - z) * n]
'''

_SIMPLE_RNN_LOOP = '''
class SimpleRNNLoop(KerasLoop):
    """Keras SimpleRNN cell with any activation."""

    def __init__(self, input_size: int, hidden_size: int, activation: nn.Module,
                 go_backwards: bool = False, zero_output_for_mask: bool = False):
        super().__init__(input_size, hidden_size, 1, go_backwards, zero_output_for_mask)
        self.activation = activation

    def cell(self, x_t: Tensor, states: List[Tensor]) -> List[Tensor]:
        return [self.activation(x_t + F.linear(states[0], self.weight_hh, self.bias_hh))]
'''

_SAME_PADDING = '''
def keras_same_padding(length: int, kernel_size: int, stride: int, dilation: int) -> List[int]:
    """Keras 'same' padding of a strided convolution: [left, right], the extra step on the right."""
    span = dilation * (kernel_size - 1) + 1
    total = max((-(-length // stride) - 1) * stride + span - length, 0)
    return [total // 2, total - total // 2]
'''

#: helper name -> (source, helpers it needs). Emitted in this order.
HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "HardSigmoidKeras2": (_HARD_SIGMOID_KERAS2, ()),
    "Exponential": (_EXPONENTIAL, ()),
    "SparsePlus": (_SPARSE_PLUS, ()),
    "SparseSigmoid": (_SPARSE_SIGMOID, ()),
    "Squareplus": (_SQUAREPLUS, ()),
    "KerasPReLU": (_PRELU, ()),
    "keras_same_padding": (_SAME_PADDING, ()),
    "KerasLoop": (_KERAS_LOOP, ()),
    "LSTMLoop": (_LSTM_LOOP, ("KerasLoop",)),
    "GRULoop": (_GRU_LOOP, ("KerasLoop",)),
    "SimpleRNNLoop": (_SIMPLE_RNN_LOOP, ("KerasLoop",)),
}

#: IR activation -> (expression with ``{}`` for the argument, module constructor, helper needed).
ACTIVATIONS: dict[str, tuple[str, str, str | None]] = {
    "linear": ("{}", "nn.Identity()", None),
    "sigmoid": ("torch.sigmoid({})", "nn.Sigmoid()", None),
    "tanh": ("torch.tanh({})", "nn.Tanh()", None),
    "relu": ("torch.relu({})", "nn.ReLU()", None),
    "hard_sigmoid_keras2": ("hard_sigmoid_keras2({})", "HardSigmoidKeras2()", "HardSigmoidKeras2"),
    "hard_sigmoid_keras3": ("F.hardsigmoid({})", "nn.Hardsigmoid()", None),
    "softmax": ("torch.softmax({}, dim=-1)", "nn.Softmax(dim=-1)", None),
    "softsign": ("F.softsign({})", "nn.Softsign()", None),
    "softplus": ("F.softplus({})", "nn.Softplus()", None),
    "elu": ("F.elu({})", "nn.ELU()", None),
    "selu": ("F.selu({})", "nn.SELU()", None),
    "exponential": ("torch.exp({})", "Exponential()", "Exponential"),
    "swish": ("F.silu({})", "nn.SiLU()", None),
    "gelu": ("F.gelu({})", "nn.GELU()", None),
    "gelu_tanh": ("F.gelu({}, approximate='tanh')", "nn.GELU(approximate='tanh')", None),
    "leaky_relu": ("F.leaky_relu({}, 0.2)", "nn.LeakyReLU(0.2)", None),
    "relu6": ("F.relu6({})", "nn.ReLU6()", None),
    "mish": ("F.mish({})", "nn.Mish()", None),
    "hard_silu": ("F.hardswish({})", "nn.Hardswish()", None),
    "log_softmax": ("torch.log_softmax({}, dim=-1)", "nn.LogSoftmax(dim=-1)", None),
    "celu": ("F.celu({})", "nn.CELU()", None),
    "hard_tanh": ("F.hardtanh({})", "nn.Hardtanh()", None),
    "log_sigmoid": ("F.logsigmoid({})", "nn.LogSigmoid()", None),
    "hard_shrink": ("F.hardshrink({}, 0.5)", "nn.Hardshrink(0.5)", None),
    "soft_shrink": ("F.softshrink({}, 0.5)", "nn.Softshrink(0.5)", None),
    "tanh_shrink": ("F.tanhshrink({})", "nn.Tanhshrink()", None),
    "sparse_plus": ("keras_sparse_plus({})", "SparsePlus()", "SparsePlus"),
    "sparse_sigmoid": ("keras_sparse_sigmoid({})", "SparseSigmoid()", "SparseSigmoid"),
    "squareplus": ("keras_squareplus({})", "Squareplus()", "Squareplus"),
}


def with_dependencies(names: set[str]) -> list[str]:
    """``names`` plus the helpers they need, in emission order."""
    wanted = set(names)
    for name in list(names):
        wanted.update(HELPERS[name][1])
    return [n for n in HELPERS if n in wanted]


def helper_source(names: set[str]) -> str:
    """The source of the helpers ``names`` (and what they need), ready to paste into model.py."""
    return "".join("\n" + HELPERS[n][0] for n in with_dependencies(names))
