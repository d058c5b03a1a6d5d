"""Source text of the small helpers a generated ``model.py`` may need, and which ones need which.

:mod:`converters.writers.torch_code` emits only the helpers a model uses, in the order of
:data:`HELPERS`. The loops follow Keras' generic ``backend.rnn`` (keras/src/backend/torch/rnn.py,
tf_keras/src/backend.py ``rnn``) and the cells of keras/src/layers/rnn/{lstm,gru,simple_rnn}.py.
"""
from __future__ import annotations

from ..activations import column
from .torch_attention import FUNCTION_NAMES as ATTENTION_FUNCTIONS, HELPERS as ATTENTION_HELPERS
from .torch_conv_lstm import HELPERS as CONV_LSTM_HELPERS
from .torch_norms import HELPERS as NORM_HELPERS

_HARD_SIGMOID_KERAS2 = '''
def hard_sigmoid_keras2(x: Tensor) -> Tensor:
    """Keras 1/2 and tf.keras hard_sigmoid: clip(0.2 * x + 0.5, 0, 1)."""
    return x.mul(0.2).add_(0.5).clamp_(0.0, 1.0)


class HardSigmoidKeras2(nn.Module):
    """hard_sigmoid_keras2 as a module (Keras 3's hard_sigmoid is nn.Hardsigmoid)."""

    #: clip(a * x + b, 0, 1): a loop folds a and b into its gate weights (keras_hard_gates)
    affine = (0.2, 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return hard_sigmoid_keras2(x)
'''

def _module_helper(cls: str, doc: str, body: str) -> str:
    """Source of an element-wise activation module ``cls`` computing ``body`` of ``x``."""
    return f'''
class {cls}(nn.Module):
    """{doc}"""

    def forward(self, x: Tensor) -> Tensor:
        return {body}
'''


_EXPONENTIAL = _module_helper("Exponential", "Keras' exponential activation as a module.", "torch.exp(x)")
#: the element-wise math functions of converters/activations.py (rows with a Keras 3 operation) as modules
_MATH_MODULES = {cls: (_module_helper(cls, f"{name} as a module.", expr.format("x")), ())
                 for name, (expr, _, cls) in column("torch").items() if name in column("keras3_op")}


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
FUNCTION_NAMES = ("hard_sigmoid_keras2", "keras_same_padding", "keras_tracing", "keras_nn_rnn", "keras_mask_plan",
                  "keras_compact",
                  "keras_hard_gates", "keras_stack", "keras_laid_out",
                  "keras_unmask", "keras_final_states", "keras_sparse_plus", "keras_sparse_sigmoid",
                  "keras_squareplus", *ATTENTION_FUNCTIONS)

_PRELU = '''
class KerasPReLU(nn.Module):
    """Keras PReLU: relu(x) - alpha * relu(-x), alpha shaped like one sample (1 on shared axes)."""

    def __init__(self, shape: Tuple[int, ...]):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(shape))

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x) - self.alpha * torch.relu(-x)
'''

_TRACING = '''
@torch.jit.unused
def keras_tracing() -> bool:
    """Whether torch.export / torch.compile (torch.compiler.is_compiling, torch 2.3+) or torch.jit.trace
    (torch.onnx's TorchScript exporter) is tracing this call."""
    if torch.jit.is_tracing():
        return True
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling is not None and is_compiling())
'''

_NN_RNN = '''
#: nn.LSTM / nn.GRU / nn.RNN's ATen kernel by the module's mode, as nn.RNNBase.forward calls it
_NN_KERNELS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}


@torch.jit.unused
def keras_nn_rnn(rnn: nn.Module, x: Tensor, hx=None) -> tuple:
    """``rnn(x, hx)`` for a batch-first nn.LSTM / nn.GRU / nn.RNN: eagerly on the CPU, the ATen kernel its
    forward calls (torch/nn/modules/rnn.py), with its own parameters and the same arguments, so the same bits,
    without that forward's Python (weight refresh, argument checks, zeros for hx: a quarter of a small layer's
    time). Anything else goes through ``rnn(x, hx)``: tracing, exporting or compiling, another device, a tensor
    subclass, a subclass of the module (its own forward, or parametrized weights), hooks, weights that are no
    parameters, input or states of a shape or dtype it would refuse. TorchScript calls ``rnn`` (the call sites
    test torch.jit.is_scripting())."""
    try:  # torch's own internals (2.3 to 2.14): another torch that lacks one runs rnn(x, hx)
        params = rnn._parameters
        weights = [params.get(name) for name in rnn._flat_weights_names]  # what rnn.forward would use
        g = torch.nn.modules.module  # nn.Module.__call__ runs only forward without any of these hooks
        other = (type(rnn) not in (nn.LSTM, nn.GRU, nn.RNN) or rnn.proj_size or any(w is None for w in weights)
                 or type(x) is not Tensor or not x.is_cpu or x.dim() != 3 or x.shape[2] != rnn.input_size
                 or x.dtype != weights[0].dtype or rnn._compiled_call_impl is not None
                 or rnn._forward_hooks or rnn._forward_pre_hooks or rnn._backward_hooks or rnn._backward_pre_hooks
                 or g._global_forward_hooks or g._global_forward_pre_hooks or g._global_backward_hooks
                 or g._global_backward_pre_hooks or keras_tracing())
    except AttributeError:
        other = True
    if other:
        return rnn(x, hx)
    lstm = rnn.mode == "LSTM"
    batch = x.shape[0 if rnn.batch_first else 1]
    shape = (rnn.num_layers * (2 if rnn.bidirectional else 1), batch, rnn.hidden_size)
    if hx is None:
        h = x.new_zeros(shape)  # never written: h and c can share it
        hx = (h, h) if lstm else h
    elif any(type(h) is not Tensor or h.shape != shape for h in (hx if lstm else (hx,))):
        return rnn(x, hx)
    out = _NN_KERNELS[rnn.mode](x, hx, weights, rnn.bias, rnn.num_layers, rnn.dropout, rnn.training,
                                rnn.bidirectional, rnn.batch_first)
    return out[0], (out[1:] if lstm else out[1])
'''

_MASK_PLAN = '''
def keras_mask_plan(mask: Tensor, reverse: bool = False) -> Tuple[Tensor, Tensor]:
    """A (batch, time) mask -> (order, count): order (batch, steps) lists the unmasked steps first,
    in order; count[b, t] is the number of unmasked steps up to and including t. With ``reverse``
    the mask is already flipped and order indexes the unflipped input."""
    steps = mask.to(torch.int64)
    count = steps.cumsum(1)
    time = torch.arange(mask.size(1), device=mask.device)
    order = torch.argsort(time + (1 - steps) * mask.size(1), dim=1)
    if torch.jit.is_scripting() or not keras_tracing():
        # only as many steps as the longest sample has (torch.export keeps them all: no data-dependent shape)
        order = order[:, :max(int(count[:, -1].max()), 1)]
    return (mask.size(1) - 1 - order if reverse else order), count


def keras_compact(x: Tensor, order: Tensor) -> Tensor:
    """x (batch, time, features) with the unmasked steps moved to the front (keras_mask_plan's order)."""
    return x.gather(1, order.unsqueeze(2).expand(-1, -1, x.size(2)))


def keras_unmask(y: Tensor, count: Tensor, mask: Tensor, zero_output_for_mask: bool) -> Tensor:
    """Outputs of the compacted steps back at their time steps, as Keras gives them: a masked step
    repeats the output of the step before (zeros before the first), or is zeros."""
    index = (count - 1).clamp(min=0)
    keep = mask if zero_output_for_mask else count > 0
    out = y.gather(1, index.unsqueeze(2).expand(-1, -1, y.size(2)))
    return torch.where(keep.unsqueeze(2), out, out.new_zeros(()))


def keras_final_states(every: List[Tensor], count: Tensor, initial: List[Tensor]) -> List[Tensor]:
    """The states after each sample's last unmasked step (its initial states when it has none),
    from every compacted step's states (batch, time, units)."""
    length = count[:, -1]
    index = (length - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, every[0].size(2))
    done = (length > 0).unsqueeze(1)
    final: List[Tensor] = []
    for k in range(len(every)):
        final.append(torch.where(done, every[k].gather(1, index).squeeze(1), initial[k]))
    return final
'''

_MASKED_NN = '''
class KerasMaskedRNN(nn.Module):
    """One direction of a masked Keras layer that nn.LSTM / nn.GRU / nn.RNN computes exactly.

    Keras' masked step keeps the states and repeats (or zeros) the output, so the layer equals
    the unmasked one run over each sample's unmasked steps: they are gathered to the front, run
    by the native kernel, and the outputs put back at their time steps (keras_unmask). The
    states returned are h only (an LSTM's c after the last unmasked step is not in nn.LSTM's output;
    a layer that returns it uses LSTMLoop).
    """

    def __init__(self, rnn: nn.Module, go_backwards: bool = False, zero_output_for_mask: bool = False):
        super().__init__()
        self.rnn = rnn
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask

    def initial_states(self, x: Tensor) -> List[Tensor]:
        return [x.new_zeros(x.size(0), self.rnn.hidden_size)]

    def run(self, x: Tensor, states: List[Tensor]) -> Tensor:
        h = states[0].unsqueeze(0)
        return (self.rnn(x, h) if torch.jit.is_scripting() else keras_nn_rnn(self.rnn, x, h))[0]

    def forward(self, x: Tensor, mask: Tensor,
                states: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        """x (batch, time, input_size) -> (outputs in processing order, [h])."""
        if states is None:
            states = self.initial_states(x)
        if self.go_backwards:
            mask = mask.flip(1)
        order, count = keras_mask_plan(mask, self.go_backwards)
        y = self.run(keras_compact(x, order), states)
        return keras_unmask(y, count, mask, self.zero_output_for_mask), keras_final_states([y], count, states[:1])
'''

_MASKED_LSTM = '''

class KerasMaskedLSTM(KerasMaskedRNN):
    """KerasMaskedRNN of an nn.LSTM (initial states h and c)."""

    def initial_states(self, x: Tensor) -> List[Tensor]:
        h = x.new_zeros(x.size(0), self.rnn.hidden_size)
        return [h, h]

    def run(self, x: Tensor, states: List[Tensor]) -> Tensor:
        hc = (states[0].unsqueeze(0), states[1].unsqueeze(0))
        return (self.rnn(x, hc) if torch.jit.is_scripting() else keras_nn_rnn(self.rnn, x, hc))[0]
'''

_KERAS_LOOP = '''
#: Each KerasLoop's TorchScript copy (sharing its parameters), made on its first eager call.
_SCRIPTED: "weakref.WeakKeyDictionary[nn.Module, nn.Module]" = weakref.WeakKeyDictionary()
#: Each KerasLoop's / KerasBiLoop's laid-out weights of its last eager call: (key, parameters, layout).
_LAID_OUT: "weakref.WeakKeyDictionary[nn.Module, Tuple[tuple, list, tuple]]" = weakref.WeakKeyDictionary()


def keras_stack(weights: List[Tuple[Tensor, Tensor, Tensor, Tensor]]) -> Tuple[List[Tensor], List[Tensor], Tensor, Tensor]:
    """Each direction's weights() -> (input weights, input biases, recurrent weights and recurrent
    biases stacked by direction) as KerasLoop.directions() uses them."""
    return ([w[0] for w in weights], [w[1] for w in weights], torch.stack([w[2] for w in weights]),
            torch.stack([w[3] for w in weights]).unsqueeze(1))


@torch.jit.unused
def keras_laid_out(owner: nn.Module, loops: List[nn.Module]) -> Tuple[List[Tensor], List[Tensor], Tensor, Tensor]:
    """keras_stack of the loops' weights(), made again only when a parameter changed (in place, by
    load_state_dict, moved or cast: each one's version, address, device and dtype) or inference mode was
    entered or left; laid out anew each call while autograd records the parameters."""
    params = [p for loop in loops for p in (loop.weight_ih, loop.weight_hh, loop.bias_ih, loop.bias_hh)]
    if torch.is_grad_enabled() and any(p.requires_grad for p in params):
        return keras_stack([loop.weights() for loop in loops])
    try:
        key = (torch.is_inference_mode_enabled(), *[(p._version, p.data_ptr(), p.device, p.dtype) for p in params])
    except RuntimeError:  # inference tensors have no version counter
        return keras_stack([loop.weights() for loop in loops])
    hit = _LAID_OUT.get(owner)
    if hit is not None and hit[0] == key:
        return hit[2]
    layout = keras_stack([loop.weights() for loop in loops])
    # the parameters' tensors are kept, so that no new tensor takes their address while cached
    _LAID_OUT[owner] = (key, [p.detach() for p in params], layout)
    return layout


def keras_hard_gates(activation: Optional[nn.Module]) -> Optional[Tuple[float, float]]:
    """(a, b) when ``activation`` is a hard sigmoid clip(a * x + b, 0, 1), else None."""
    if isinstance(activation, nn.Hardsigmoid):
        return 1.0 / 6.0, 0.5
    return getattr(activation, "affine", None)


class KerasLoop(nn.Module):
    """One direction of a Keras recurrent layer, computed step by step as Keras does.

    Used where nn.LSTM / nn.GRU / nn.RNN cannot compute the layer exactly: other activations,
    GRU reset_after=False (or an LSTM returning its c under a mask). The input part of every step is
    one matmul before the loop; each step does one recurrent matmul (two for GRU reset_after=False).
    A mask costs nothing per step: Keras' masked step keeps the states and repeats the previous
    output (zeros before the first step), or gives zeros with zero_output_for_mask, so the loop runs
    over each sample's unmasked steps gathered to the front and puts the outputs back
    (keras_mask_plan). go_backwards reverses the input and the mask; the outputs stay in processing
    order, as in Keras. Weights are stored as in nn.LSTM / nn.GRU / nn.RNN; weights() lays them out for
    the loop (eager calls reuse it while the parameters stay the same): the gates of the recurrent
    activation side by side, one in-place activation call a step, and a hard sigmoid's a * z + b folded
    into them, so that it is one clamp a step. Without autograd a step writes its gates into buffers made
    once per call. The loop runs over a leading axis of directions, so that KerasBiLoop runs a
    Bidirectional layer's two in one; eagerly, the whole of directions() runs in a TorchScript copy.
    """

    #: fixed per layer: TorchScript compiles them as constants, so a step runs no test of them
    __constants__ = ["hard_gates", "inplace_gates"]

    def __init__(self, input_size: int, hidden_size: int, gates: int, go_backwards: bool,
                 zero_output_for_mask: bool, recurrent_activation: Optional[nn.Module] = None):
        super().__init__()
        self.hidden_size = hidden_size
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.weight_ih = nn.Parameter(torch.zeros(gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.zeros(gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(gates * hidden_size))
        affine = keras_hard_gates(recurrent_activation)
        self.hard_gates = affine is not None
        self.gate_scale, self.gate_shift = affine if affine is not None else (1.0, 0.0)
        self.inplace_gates = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu",
                              nn.Identity: "identity"}.get(type(recurrent_activation), "")

    def initial_states(self, x: Tensor) -> List[Tensor]:
        return [x.new_zeros(x.size(0), self.hidden_size)]

    def gate_rows(self, t: Tensor, order: List[int], gated: int, shift: float) -> Tensor:
        """The gate blocks of a weight or bias (nn.* order) in ``order``; with hard gates the first
        ``gated`` blocks scaled by a (plus ``shift``), so clamp(0, 1) of the sum gives clip(a * z + b, 0, 1)."""
        blocks = t.split(self.hidden_size, 0)
        rows = [blocks[k] for k in order]
        if self.hard_gates:
            rows = [torch.cat(rows[:gated]) * self.gate_scale + shift] + rows[gated:]
        return torch.cat(rows)

    def gate_weights(self, order: List[int], gated: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) with the gate blocks in ``order`` (gate_rows)."""
        return (self.gate_rows(self.weight_ih, order, gated, 0.0), self.gate_rows(self.weight_hh, order, gated, 0.0),
                self.gate_rows(self.bias_ih, order, gated, self.gate_shift),
                self.gate_rows(self.bias_hh, order, gated, 0.0))

    def weights(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(input weight, input bias, recurrent weight transposed (units, gates), bias added to the
        recurrent product (empty unless the cell needs one)) as steps() uses them."""
        raise NotImplementedError

    def recording(self, tensors: List[Tensor]) -> bool:
        """Whether autograd records ops on ``tensors``: then each step makes new tensors (out= buffers,
        reused by every step otherwise, are not differentiable)."""
        if not torch.is_grad_enabled():
            return False
        for t in tensors:
            if t.requires_grad:
                return True
        return False

    def gates_(self, z: Tensor) -> Tensor:
        """The recurrent activation of the gates' pre-activations ``z`` (a view of a step's buffer), in place:
        a hard sigmoid is one clamp (its a and b are in the weights), a sigmoid one sigmoid_, and so on."""
        if self.hard_gates:
            return z.clamp_(0.0, 1.0)
        if self.inplace_gates == "sigmoid":
            return z.sigmoid_()
        if self.inplace_gates == "tanh":
            return z.tanh_()
        if self.inplace_gates == "relu":
            return z.relu_()
        if self.inplace_gates == "identity":
            return z
        return z.copy_(self.recurrent_activation(z))

    def steps(self, x_proj: Tensor, w_hh: Tensor, b_hh: Tensor, states: List[Tensor],
              every: bool) -> Tuple[Tensor, List[Tensor]]:
        """Every step of x_proj (time, directions, batch, gates), with weights() stacked by direction
        and states (directions, batch, units) -> (outputs (directions, batch, time, units), the final
        states, or with ``every`` each state at every step (directions, batch, time, units))."""
        raise NotImplementedError

    def run(self, x: Tensor, mask: Optional[Tensor], weights: Tuple[List[Tensor], List[Tensor], Tensor, Tensor],
            states: List[List[Tensor]], backwards: List[bool],
            zero_output: List[bool]) -> Tuple[List[Tensor], List[List[Tensor]]]:
        """directions(); called eagerly, through a TorchScript copy of this module (a faster loop)."""
        if torch.jit.is_scripting() or keras_tracing():
            return self.directions(x, mask, weights, states, backwards, zero_output)
        return self.scripted_directions(x, mask, weights, states, backwards, zero_output)

    @torch.jit.unused
    def scripted_directions(self, x: Tensor, mask: Optional[Tensor],
                            weights: Tuple[List[Tensor], List[Tensor], Tensor, Tensor], states: List[List[Tensor]],
                            backwards: List[bool], zero_output: List[bool]) -> Tuple[List[Tensor], List[List[Tensor]]]:
        compiled = _SCRIPTED.get(self)
        if compiled is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch.jit is deprecated in torch 2.x
                    compiled = torch.jit.script(self)
            except Exception:  # e.g. no source file to compile: run the loop as it is
                compiled = self
            _SCRIPTED[self] = compiled
        return compiled.directions(x, mask, weights, states, backwards, zero_output)

    def layout(self) -> Tuple[List[Tensor], List[Tensor], Tensor, Tensor]:
        """keras_stack([weights()]); eager calls reuse it while the parameters stay the same (keras_laid_out)."""
        if torch.jit.is_scripting() or keras_tracing():
            return keras_stack([self.weights()])
        return self.laid_out()

    @torch.jit.unused
    def laid_out(self) -> Tuple[List[Tensor], List[Tensor], Tensor, Tensor]:
        return keras_laid_out(self, [self])

    def directions(self, x: Tensor, mask: Optional[Tensor], weights: Tuple[List[Tensor], List[Tensor], Tensor, Tensor],
                   states: List[List[Tensor]], backwards: List[bool],
                   zero_output: List[bool]) -> Tuple[List[Tensor], List[List[Tensor]]]:
        """One loop over the directions of a layer (their weights as keras_stack gives them, each one's states,
        go_backwards and zero_output_for_mask) -> (each one's outputs (batch, time, units) in processing order,
        its final states)."""
        w_ih, b_ih, w_hh, b_hh = weights
        projected: List[Tensor] = []
        masks: List[Tensor] = []
        counts: List[Tensor] = []
        for d in range(len(w_ih)):
            if mask is None:
                x_d = x.flip(1) if backwards[d] else x
            else:
                mask_d = mask.flip(1) if backwards[d] else mask
                order, count = keras_mask_plan(mask_d, backwards[d])
                x_d = keras_compact(x, order)
                masks.append(mask_d)
                counts.append(count)
            projected.append(F.linear(x_d.transpose(0, 1), w_ih[d], b_ih[d]))
        x_proj = projected[0].unsqueeze(1) if len(projected) == 1 else torch.stack(projected, 1)
        y, final = self.steps(x_proj, w_hh, b_hh, [torch.stack([s[k] for s in states]) for k in range(len(states[0]))],
                              mask is not None)
        ys: List[Tensor] = []
        out: List[List[Tensor]] = []
        for d in range(len(w_ih)):
            if mask is None:
                ys.append(y[d])
                out.append([s[d] for s in final])
            else:
                ys.append(keras_unmask(y[d], counts[d], masks[d], zero_output[d]))
                out.append(keras_final_states([s[d] for s in final], counts[d], states[d]))
        return ys, out

    def forward(self, x: Tensor, mask: Optional[Tensor] = None,
                states: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        """x (batch, time, input_size) -> (outputs (batch, time, hidden_size), final states)."""
        if states is None:
            states = self.initial_states(x)
        ys, out = self.run(x, mask, self.layout(), [states], [self.go_backwards], [self.zero_output_for_mask])
        return ys[0], out[0]
'''

_BI_LOOP = '''
class KerasBiLoop(nn.Module):
    """Both directions of a Bidirectional layer (two KerasLoops of one kind) in one loop: each step is
    one batched matmul and one call of each op for both directions, half the calls of two loops."""

    def __init__(self, fw: nn.Module, bw: nn.Module):
        super().__init__()
        self.fw = fw
        self.bw = bw

    def forward(self, x: Tensor, mask: Optional[Tensor] = None, states_fw: Optional[List[Tensor]] = None,
                states_bw: Optional[List[Tensor]] = None) -> Tuple[Tensor, Tensor, List[Tensor], List[Tensor]]:
        """x (batch, time, input_size) -> (forward outputs, backward outputs in processing order, their states)."""
        if states_fw is None:
            states_fw = self.fw.initial_states(x)
        if states_bw is None:
            states_bw = self.bw.initial_states(x)
        ys, out = self.fw.run(x, mask, self.layout(), [states_fw, states_bw],
                                     [self.fw.go_backwards, self.bw.go_backwards],
                                     [self.fw.zero_output_for_mask, self.bw.zero_output_for_mask])
        return ys[0], ys[1], out[0], out[1]

    def layout(self) -> Tuple[List[Tensor], List[Tensor], Tensor, Tensor]:
        """keras_stack of both directions' weights(), reused by eager calls as KerasLoop.layout()."""
        if torch.jit.is_scripting() or keras_tracing():
            return keras_stack([self.fw.weights(), self.bw.weights()])
        return self.laid_out()

    @torch.jit.unused
    def laid_out(self) -> Tuple[List[Tensor], List[Tensor], Tensor, Tensor]:
        return keras_laid_out(self, [self.fw, self.bw])
'''

_LSTM_LOOP = '''
class LSTMLoop(KerasLoop):
    """Keras LSTM cell (gates i, f, g, o stored as in nn.LSTM, run as i, f, o, g) with any activations."""

    def __init__(self, input_size: int, hidden_size: int, activation: nn.Module,
                 recurrent_activation: nn.Module, go_backwards: bool = False,
                 zero_output_for_mask: bool = False):
        super().__init__(input_size, hidden_size, 4, go_backwards, zero_output_for_mask, recurrent_activation)
        self.activation = activation
        self.recurrent_activation = recurrent_activation

    def initial_states(self, x: Tensor) -> List[Tensor]:
        h = x.new_zeros(x.size(0), self.hidden_size)
        return [h, h]

    def weights(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        w_ih, w_hh, b_ih, b_hh = self.gate_weights([0, 1, 3, 2], 3)
        return w_ih, b_ih + b_hh, w_hh.t(), b_hh[:0]

    def steps(self, x_proj: Tensor, w_hh: Tensor, b_hh: Tensor, states: List[Tensor],
              every: bool) -> Tuple[Tensor, List[Tensor]]:
        u = self.hidden_size
        h, c = states[0], states[1]
        hs: List[Tensor] = []
        cs: List[Tensor] = []
        recording = self.recording([x_proj, w_hh, h, c])
        z = x_proj.new_empty(x_proj.shape[1:])  # every step's gates (unless recording), views made once
        ifo, g = z.narrow(2, 0, 3 * u), z.narrow(2, 3 * u, u)
        i, f, o = ifo.chunk(3, 2)
        for x_t in x_proj.unbind(0):
            if recording:
                z = torch.baddbmm(x_t, h, w_hh)
                g = z.narrow(2, 3 * u, u)
                i, f, o = self.gates_(z.narrow(2, 0, 3 * u)).chunk(3, 2)
            else:
                torch.baddbmm(x_t, h, w_hh, out=z)
                self.gates_(ifo)
            c = (f * c).addcmul_(i, self.activation(g))
            h = o * self.activation(c)
            hs.append(h)
            if every:
                cs.append(c)
        y = torch.stack(hs, 2) if len(hs) else h.new_zeros(h.size(0), h.size(1), 0, u)
        if every:
            return y, [y, torch.stack(cs, 2) if len(cs) else y]
        return y, [h, c]
'''

_GRU_LOOP = '''
class GRULoop(KerasLoop):
    """Keras GRU cell (gates r, z, n as in nn.GRU) with any activations.

    reset_after=True is nn.GRU's n = act(x_n + r * (W_hn h + b_hn)); reset_after=False (Keras 1,
    Keras 2 default) applies the reset gate before the product: n = act(x_n + W_hn (r * h) + b_hn).
    Then h = z * h + (1 - z) * n.
    """

    __constants__ = [*KerasLoop.__constants__, "reset_after"]

    def __init__(self, input_size: int, hidden_size: int, activation: nn.Module,
                 recurrent_activation: nn.Module, reset_after: bool = True,
                 go_backwards: bool = False, zero_output_for_mask: bool = False):
        super().__init__(input_size, hidden_size, 3, go_backwards, zero_output_for_mask, recurrent_activation)
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.reset_after = reset_after

    def weights(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        u = self.hidden_size
        w_ih, w_hh, b_ih, b_hh = self.gate_weights([0, 1, 2], 2)
        if not self.reset_after:
            return w_ih, b_ih + b_hh, w_hh.t(), b_hh[:0]
        b_rz, b_n = b_hh.split([2 * u, u])  # b_hn stays inside r * (W_hn h + b_hn)
        return (w_ih, b_ih + torch.cat([b_rz, torch.zeros_like(b_n)]), w_hh.t(),
                torch.cat([torch.zeros_like(b_rz), b_n]))

    def steps(self, x_proj: Tensor, w_hh: Tensor, b_hh: Tensor, states: List[Tensor],
              every: bool) -> Tuple[Tensor, List[Tensor]]:
        u = self.hidden_size
        w_rz, w_n = w_hh.narrow(2, 0, 2 * u), w_hh.narrow(2, 2 * u, u)
        h = states[0]
        hs: List[Tensor] = []
        recording = self.recording([x_proj, w_hh, b_hh, h])
        # every step's r, z and recurrent product (unless recording), views made once
        rz, hh = x_proj.new_empty(x_proj.size(1), x_proj.size(2), 2 * u), x_proj.new_empty(x_proj.shape[1:])
        r, z = rz.chunk(2, 2)
        h_rz, h_n = hh.narrow(2, 0, 2 * u), hh.narrow(2, 2 * u, u)
        for x_rz, x_n in zip(x_proj.narrow(3, 0, 2 * u).unbind(0), x_proj.narrow(3, 2 * u, u).unbind(0)):
            if recording and self.reset_after:
                h_rz, h_n = torch.baddbmm(b_hh, h, w_hh).split([2 * u, u], 2)
                rz = x_rz + h_rz
            elif recording:
                rz = torch.baddbmm(x_rz, h, w_rz)
            elif self.reset_after:
                torch.baddbmm(b_hh, h, w_hh, out=hh)
                torch.add(x_rz, h_rz, out=rz)
            else:
                torch.baddbmm(x_rz, h, w_rz, out=rz)
            self.gates_(rz)
            if recording:
                r, z = rz.chunk(2, 2)
            if self.reset_after:
                n = self.activation(torch.addcmul(x_n, r, h_n))
            else:
                n = self.activation(torch.baddbmm(x_n, r * h, w_n))
            h = torch.lerp(n, h, z)
            hs.append(h)
        y = torch.stack(hs, 2) if len(hs) else h.new_zeros(h.size(0), h.size(1), 0, u)
        return y, [y] if every else [h]
'''

_SIMPLE_RNN_LOOP = '''
class SimpleRNNLoop(KerasLoop):
    """Keras SimpleRNN cell with any activation."""

    def __init__(self, input_size: int, hidden_size: int, activation: nn.Module,
                 go_backwards: bool = False, zero_output_for_mask: bool = False):
        super().__init__(input_size, hidden_size, 1, go_backwards, zero_output_for_mask)
        self.activation = activation

    def weights(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.weight_ih, self.bias_ih + self.bias_hh, self.weight_hh.t(), self.bias_hh[:0]

    def steps(self, x_proj: Tensor, w_hh: Tensor, b_hh: Tensor, states: List[Tensor],
              every: bool) -> Tuple[Tensor, List[Tensor]]:
        h = states[0]
        hs: List[Tensor] = []
        for x_t in x_proj.unbind(0):
            h = self.activation(torch.baddbmm(x_t, h, w_hh))
            hs.append(h)
        y = torch.stack(hs, 2) if len(hs) else h.new_zeros(h.size(0), h.size(1), 0, self.hidden_size)
        return y, [y] if every else [h]
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
    **_MATH_MODULES,
    "SparsePlus": (_SPARSE_PLUS, ()),
    "SparseSigmoid": (_SPARSE_SIGMOID, ()),
    "Squareplus": (_SQUAREPLUS, ()),
    "KerasPReLU": (_PRELU, ()),
    "keras_same_padding": (_SAME_PADDING, ()),
    "keras_tracing": (_TRACING, ()),
    "keras_nn_rnn": (_NN_RNN, ("keras_tracing",)),
    "keras_mask_plan": (_MASK_PLAN, ("keras_tracing",)),
    "KerasMaskedRNN": (_MASKED_NN, ("keras_mask_plan", "keras_nn_rnn")),
    "KerasMaskedLSTM": (_MASKED_LSTM, ("KerasMaskedRNN",)),
    "KerasLoop": (_KERAS_LOOP, ("keras_mask_plan",)),
    "KerasBiLoop": (_BI_LOOP, ("KerasLoop",)),
    "LSTMLoop": (_LSTM_LOOP, ("KerasLoop",)),
    "GRULoop": (_GRU_LOOP, ("KerasLoop",)),
    "SimpleRNNLoop": (_SIMPLE_RNN_LOOP, ("KerasLoop",)),
    **ATTENTION_HELPERS,
    **CONV_LSTM_HELPERS,
    **NORM_HELPERS,
}

#: IR activation -> (expression with ``{}`` for the argument, module constructor, helper needed):
#: the ``torch`` column of converters/activations.py.
ACTIVATIONS: dict[str, tuple[str, str, str | None]] = column("torch")


def with_dependencies(names: set[str]) -> list[str]:
    """``names`` plus the helpers they need, in emission order."""
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(HELPERS[name][1])
    return [n for n in HELPERS if n in wanted]


def helper_source(names: set[str]) -> str:
    """The source of the helpers ``names`` (and what they need), ready to paste into model.py."""
    return "".join("\n" + HELPERS[n][0] for n in with_dependencies(names))
