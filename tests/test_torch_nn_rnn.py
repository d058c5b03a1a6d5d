"""keras_nn_rnn (issue 16): the generated module calls nn.LSTM / nn.GRU / nn.RNN's ATen kernel itself, eagerly on
the CPU, skipping nn.RNNBase.forward's Python, and must give the same bits as that forward.

Each case's generated module is run as it is (the direct call: checked to be taken, no nn forward runs) and with
a forward pre-hook on every recurrent module (which makes keras_nn_rnn go through the module's own forward, as
nn.Module.__call__ must run the hook); outputs and gradients must be equal (torch.equal), under inference mode,
no_grad and autograd. TorchScript, torch.jit.trace, torch.export and torch.fx still see the modules' own
forward (same bits too). The helper itself: parameters swapped by torch.func.functional_call or assigned anew
are used, and what nn's forward refuses (states of another shape, another dtype) is refused with its error.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from test_torch_fast_paths import NN_MASKED, inputs, layer, load, model  # noqa: E402

NN = torch.nn
RNNS = (NN.LSTM, NN.GRU, NN.RNN)
CASES = {
    "lstm_seq_state": lambda: layer("lstm", False),
    "lstm_last_initial_states": lambda: layer("lstm", False, n_states=2, return_sequences=False, return_state=False),
    "gru_backwards_seq": lambda: layer("gru", False, reset_after=True, go_backwards=True, return_state=False),
    "gru_initial_state": lambda: layer("gru", False, n_states=1, reset_after=True),
    "simple_rnn_tanh": lambda: layer("simple_rnn", False),
    "simple_rnn_relu_initial": lambda: layer("simple_rnn", False, n_states=1, activation="relu"),
    "bi_lstm_concat_initial": lambda: layer("lstm", False, n_states=4, bidirectional=True),
    "bi_gru_last_sum": lambda: layer("gru", False, reset_after=True, bidirectional=True, merge_mode="sum",
                                     return_sequences=False),
    "bi_simple_rnn_none": lambda: layer("simple_rnn", False, bidirectional=True, merge_mode=None),
    **{f"masked_{name}": make for name, make in NN_MASKED.items()},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rnns(net) -> list:
    found = [m for m in net.modules() if isinstance(m, RNNS)]
    assert found, "no nn.LSTM / nn.GRU / nn.RNN in the module"
    return found


def outputs(net, xs) -> list:
    out = net(*xs)
    return list(out) if isinstance(out, tuple) else [out]


def assert_same(got, want, what):
    assert len(got) == len(want), what
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and torch.equal(g, w), f"{what}: output {k} differs"


class NNForward:
    """Within the block, every recurrent module of ``net`` runs its own forward (a pre-hook makes
    keras_nn_rnn call the module); ``calls`` counts those forwards either way."""

    def __init__(self, net, hooked: bool):
        self.modules, self.hooked, self.calls, self.handles = rnns(net), hooked, 0, []

    def count(self, module, args):
        self.calls += 1

    def __enter__(self):
        for m in self.modules:
            if self.hooked:
                self.handles.append(m.register_forward_pre_hook(lambda m, a: None))
            forward = type(m).forward.__get__(m)
            m.forward = lambda *a, _f=forward, **k: (self.count(None, a), _f(*a, **k))[1]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        for m in self.modules:
            del m.forward


def both(net, xs, grad: bool = False):
    """(outputs of the direct call, outputs of nn's forward[, each one's parameter gradients])."""
    results = []
    for hooked in (False, True):
        with NNForward(net, hooked) as seen:
            net.zero_grad(set_to_none=True)
            out = outputs(net, xs)
            if grad:
                sum(o.sum() for o in out).backward()
        assert seen.calls == (len(seen.modules) if hooked else 0), "direct call not taken" if not hooked else seen.calls
        results.append(out if not grad else out + [p.grad.clone() for p in net.parameters() if p.grad is not None])
    return results


@pytest.mark.parametrize("case", CASES)
def test_direct_kernel_call_gives_nn_forwards_bits(case, tmp_path):
    ir = model(CASES[case]())
    module, net = load(ir, tmp_path)
    assert hasattr(module, "keras_nn_rnn") and not hasattr(module, "KerasLoop")
    xs = [torch.from_numpy(x) for x in inputs(ir)]
    for rows in (1, len(xs[0])):
        part = [x[:rows] for x in xs]
        with torch.inference_mode():
            assert_same(*both(net, part), f"inference_mode, batch {rows}")
        with torch.no_grad():
            assert_same(*both(net, part), f"no_grad, batch {rows}")
        got, want = both(net, part, grad=True)
        assert len(got) > len(outputs(net, part))  # gradients were compared too
        assert_same(got, want, f"autograd, batch {rows}")


@pytest.mark.parametrize("case", ["lstm_last_initial_states", "bi_gru_last_sum", "simple_rnn_relu_initial",
                                  "masked_lstm_backwards_initial_states", "masked_bi_gru_seq_state_none"])
def test_script_trace_export_fx_see_the_modules(case, tmp_path):
    ir = model(CASES[case]())
    _, net = load(ir, tmp_path)
    xs = tuple(torch.from_numpy(x) for x in inputs(ir))
    with torch.no_grad():
        want = outputs(net, xs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.script(net)
            with NNForward(net, False) as seen:
                traced = torch.jit.trace(net, xs, check_trace=False)
                assert seen.calls == len(seen.modules)  # tracing went through each module's forward
        assert_same(outputs(scripted, xs), want, "jit.script")
        assert_same(outputs(traced, xs), want, "jit.trace")
        assert_same(outputs(torch.export.export(net, xs).module(), xs), want, "torch.export")
        if not case.startswith("masked"):  # KerasMaskedRNN's mask plan has data-dependent control flow
            graph = torch.fx.symbolic_trace(net)
            assert any(n.op == "call_module" and isinstance(graph.get_submodule(n.target), RNNS)
                       for n in graph.graph.nodes)
            assert_same(outputs(graph, xs), want, "torch.fx")


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    module, _ = load(model(layer("lstm", False)), tmp_path_factory.mktemp("helper"))
    return module.keras_nn_rnn


@pytest.mark.parametrize("cls", RNNS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_helper_uses_the_parameters_nn_forward_would(helper, cls, bidirectional):
    torch.manual_seed(16)
    rnn = cls(3, 4, batch_first=True, bidirectional=bidirectional).eval()
    x = torch.randn(2, 5, 3)
    swapped = {name: torch.randn_like(p) for name, p in rnn.named_parameters()}
    with torch.no_grad():
        want = torch.func.functional_call(rnn, swapped, (x,), strict=True)
        direct = torch.func.functional_call(_Call(helper, rnn), {f"rnn.{k}": v for k, v in swapped.items()}, (x,))
        assert_same([direct[0]], [want[0]], "functional_call through keras_nn_rnn")
        assert not torch.equal(direct[0], helper(rnn, x)[0])  # the swap was undone, the module's own weights used
        rnn.weight_hh_l0 = NN.Parameter(torch.randn_like(rnn.weight_hh_l0))  # assigned anew
        assert_same([helper(rnn, x)[0]], [rnn(x)[0]], "assigned parameter")


class _Call(NN.Module):
    """keras_nn_rnn(rnn, x) as a module (for functional_call)."""

    def __init__(self, helper, rnn):
        super().__init__()
        self.helper, self.rnn = helper, rnn

    def forward(self, x):
        return self.helper(self.rnn, x)


def test_helper_refuses_what_nn_forward_refuses(helper):
    lstm, gru = NN.LSTM(3, 4, batch_first=True), NN.GRU(3, 4, batch_first=True)
    x = torch.zeros(2, 5, 3)
    with pytest.raises(RuntimeError, match="Expected hidden"):
        helper(lstm, x, (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(RuntimeError, match="Expected hidden"):
        helper(gru, x, torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match="dtype"):
        helper(gru, x.double())
    with pytest.raises(RuntimeError, match="input_size"):
        helper(gru, torch.zeros(2, 5, 4))
    y, h = helper(gru, x[0])  # unbatched: nn's forward handles it
    assert np.array_equal(y.detach().numpy(), gru(x[0])[0].detach().numpy()) and h.shape == (1, 4)


class _Reversed(NN.GRU):
    """A subclass with a forward of its own."""

    def forward(self, x, hx=None):
        return super().forward(x.flip(1), hx)


def test_helper_leaves_modules_it_does_not_know_to_their_forward(helper):
    """A subclass (its own forward; parametrized weights make one) and weights that are no parameters
    (torch.nn.utils.weight_norm's) go through the module, as nn.Module.__call__ would."""
    torch.manual_seed(16)
    x = torch.randn(2, 5, 3)
    own = _Reversed(3, 4, batch_first=True)
    assert_same([helper(own, x)[0]], [own(x)[0]], "subclass")
    plain = NN.GRU(3, 4, batch_first=True)
    plain.load_state_dict(own.state_dict())
    assert not torch.equal(helper(plain, x)[0], own(x)[0])
    scaled = NN.LSTM(3, 4, batch_first=True)
    torch.nn.utils.parametrize.register_parametrization(scaled, "weight_hh_l0", _Double())
    assert type(scaled) is not NN.LSTM
    assert_same([helper(scaled, x)[0]], [scaled(x)[0]], "parametrized")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # weight_norm is deprecated for its parametrization
        normed = torch.nn.utils.weight_norm(NN.RNN(3, 4, batch_first=True), "weight_ih_l0")
    assert "weight_ih_l0" not in normed._parameters
    assert_same([helper(normed, x)[0]], [normed(x)[0]], "weight_norm")


class _Double(NN.Module):
    def forward(self, w):
        return 2 * w
