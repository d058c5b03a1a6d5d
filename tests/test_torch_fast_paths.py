"""The generated PyTorch module's fast paths (issue 16) against the numpy reference, without Keras.

* A masked layer that nn.LSTM / nn.GRU / nn.RNN computes runs on that kernel over each sample's
  unmasked steps gathered to the front (KerasMaskedRNN): exact for masks at the front, in the middle,
  trailing, all masked and none, both directions, zero_output_for_mask and initial states; no loop.
* The step loops (KerasLoop) run masked layers without per-step mask work, compile themselves with
  TorchScript on their first eager call, and give the same numbers scripted and exported; a hard
  sigmoid folded into the gate weights (one clamp a step) and a Bidirectional layer's two directions
  in one loop (KerasBiLoop) give the reference's numbers too.
* torch.export fixes the time axis to the example's length: nn.GRU itself does not export with a
  dynamic one in torch 2.13 (checked here), and a loop is unrolled (the prototype ``torch.scan``,
  the symbolic loop export would need, gave wrong numbers in torch 2.13). The batch axis stays
  dynamic; jit.script keeps both dynamic, and ``--to onnx`` gives a file with a dynamic time axis.
"""
from __future__ import annotations

import importlib.util
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from converters import reference  # noqa: E402
from converters.ir import Gate, Model, Node, TensorSpec  # noqa: E402
from converters.writers import torch_code  # noqa: E402

B, T, F, U = 4, 7, 3, 5
TOL = 1e-6
#: keep-masks: trailing padding, holes in the middle, front padding, nothing kept
KEEP = np.array([[1, 1, 1, 1, 1, 0, 0],
                 [1, 0, 1, 1, 0, 1, 0],
                 [0, 0, 0, 1, 1, 1, 1],
                 [0, 0, 0, 0, 0, 0, 0]], dtype=bool)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def layer(op: str, masked: bool, n_states: int = 0, **options) -> Node:
    rng = np.random.default_rng(zlib.crc32(repr((op, n_states, sorted(options.items()))).encode()))
    opts = {"units": U, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
            "return_sequences": True, "return_state": True, "go_backwards": False, "bidirectional": False,
            "merge_mode": "concat", "zero_output_for_mask": False, **options}
    n_dirs = 2 if opts["bidirectional"] else 1
    per_dir = 2 if op == "lstm" else 1
    outputs = ["y"] + [f"s{k}" for k in range(per_dir * n_dirs)] * bool(opts["return_state"])
    if opts["bidirectional"] and opts["merge_mode"] is None:
        outputs = ["y", "y_bw"] + outputs[1:]
    node = Node(op, op, ["xm" if masked else "x"] + [f"h{k}" for k in range(n_states)], outputs, opts,
                mask="m" if masked else None)
    for direction in node.directions:
        for gate in node.gate_names:
            node.set_gate(direction, gate, Gate(*(rng.uniform(-0.6, 0.6, shape) for shape in ((U, F), (U, U), U, U))))
    return node


def model(node: Node) -> Model:
    nodes = [node]
    if node.mask:
        nodes[:0] = [Node("mask", "mask_not_equal", ["x"], ["m"], {"value": 0.0, "reduce": True}),
                     Node("masking", "masking", ["x"], ["xm"], mask="m")]
    states = [TensorSpec(name, (U,)) for name in node.inputs[1:]]
    return Model("fast", [TensorSpec("x", (None, F)), *states], list(node.outputs), nodes)


def inputs(ir: Model, time: int = T, keep: np.ndarray = KEEP) -> list[np.ndarray]:
    rng = np.random.default_rng(time)
    x = rng.normal(0, 1.5, (B, time, F)).astype(np.float32) * keep[:, :time, None]
    return [x] + [rng.normal(0, 1, (B, U)).astype(np.float32) for _ in ir.inputs[1:]]


def load(ir: Model, tmp_path: Path):
    torch_code.write(ir, tmp_path / "m")
    spec = importlib.util.spec_from_file_location(f"fast_{abs(hash(str(tmp_path)))}", tmp_path / "m" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.load_model()


def run(net, xs) -> list[np.ndarray]:
    with torch.no_grad():
        out = net(*(torch.from_numpy(x) for x in xs))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def assert_matches(got, want, what):
    assert len(got) == len(want), what
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"{what} output {k}: {g.shape} vs {w.shape}"
        err = float(np.max(np.abs(g - w))) if g.size else 0.0
        assert err <= TOL, f"{what} output {k}: max abs error {err}"


def scripted(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(net)


NN_MASKED = {
    "lstm_seq": lambda: layer("lstm", True, return_state=False),
    "lstm_last_zero_output": lambda: layer("lstm", True, return_sequences=False, return_state=False,
                                           zero_output_for_mask=True),
    "lstm_backwards_initial_states": lambda: layer("lstm", True, n_states=2, go_backwards=True, return_state=False),
    "gru_seq_state": lambda: layer("gru", True, reset_after=True),
    "gru_backwards_last_zero_output": lambda: layer("gru", True, reset_after=True, go_backwards=True,
                                                    return_sequences=False, zero_output_for_mask=True),
    "bi_gru_seq_state_none": lambda: layer("gru", True, reset_after=True, bidirectional=True, merge_mode=None),
    "bi_lstm_last_sum": lambda: layer("lstm", True, bidirectional=True, merge_mode="sum", return_sequences=False,
                                      return_state=False),
    "bi_simple_rnn_relu_seq_initial": lambda: layer("simple_rnn", True, n_states=2, activation="relu",
                                                    bidirectional=True),
}


@pytest.mark.parametrize("case", NN_MASKED)
def test_masked_layer_runs_on_the_native_kernel(case, tmp_path):
    ir = model(NN_MASKED[case]())
    module, net = load(ir, tmp_path)
    assert not hasattr(module, "KerasLoop")  # no loop helper generated at all
    assert any(isinstance(m, (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN)) for m in net.modules())
    xs = inputs(ir)
    want = reference.run(ir, xs)
    assert_matches(run(net, xs), want, "eager")
    assert_matches(run(scripted(net), xs), want, "jit.script")


def test_export_time_axis_is_fixed_as_nn_grus_own(tmp_path):
    """torch.export (torch 2.13) cannot keep nn.GRU's own time axis dynamic (it unrolls the kernel),
    so neither can the module; it exports with a dynamic batch, and jit.script keeps both dynamic."""
    plain = torch.nn.GRU(F, U, batch_first=True)
    time = torch.export.Dim("time", min=2, max=64)
    with pytest.raises(torch._dynamo.exc.UserError, match="specialized"):
        torch.export.export(plain, (torch.zeros(B, 6, F),), dynamic_shapes=({1: time},))
    ir = model(layer("gru", True, reset_after=True, bidirectional=True))
    _, net = load(ir, tmp_path)
    example = tuple(torch.from_numpy(x) for x in inputs(ir))
    with pytest.raises(torch._dynamo.exc.UserError, match="specialized"):
        torch.export.export(net, example, dynamic_shapes=({1: time},))
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(net, example, dynamic_shapes=({0: batch},)).module()
    script = scripted(net)
    for rows, steps in ((4, 7), (8, 7), (8, 14)):
        keep = np.tile(KEEP, (2, 2))[:rows, :steps]
        xs = [np.tile(inputs(ir, steps, np.tile(KEEP, (1, 2)))[0], (2, 1, 1))[:rows] * keep[..., None]]
        want = reference.run(ir, xs)
        if steps == T:
            assert_matches(run(exported, xs), want, f"export {rows}x{steps}")
        assert_matches(run(script, xs), want, f"jit.script {rows}x{steps}")


LOOPS = {
    "lstm_hard_sigmoid_masked_state": lambda: layer("lstm", True, recurrent_activation="hard_sigmoid_keras2"),
    "lstm_masked_returns_c": lambda: layer("lstm", True, n_states=2),
    "gru_reset_before_masked_backwards": lambda: layer("gru", True, reset_after=False, go_backwards=True),
    "gru_reset_after_softsign": lambda: layer("gru", False, reset_after=True, activation="softsign"),
    "bi_gru_reset_before_masked_zero_output": lambda: layer("gru", True, reset_after=False, bidirectional=True,
                                                            zero_output_for_mask=True),
    "simple_rnn_elu_masked": lambda: layer("simple_rnn", True, activation="elu"),
    # hard sigmoids folded into the gate weights (one clamp a step): Keras 2's 0.2 x + 0.5, Keras 3's x / 6 + 0.5
    "lstm_hard_sigmoid_keras3_initial_states": lambda: layer("lstm", False, n_states=2,
                                                             recurrent_activation="hard_sigmoid_keras3"),
    "gru_reset_before_hard_sigmoid": lambda: layer("gru", False, reset_after=False,
                                                   recurrent_activation="hard_sigmoid_keras2"),
    "gru_reset_after_hard_sigmoid_keras3_masked": lambda: layer("gru", True, reset_after=True,
                                                                recurrent_activation="hard_sigmoid_keras3"),
    # recurrent activations applied in place on the step's gate buffer (relu_, tanh_, nothing for linear)
    "lstm_recurrent_relu_masked": lambda: layer("lstm", True, recurrent_activation="relu"),
    "gru_reset_after_recurrent_tanh_masked": lambda: layer("gru", True, reset_after=True, recurrent_activation="tanh",
                                                           activation="relu"),
    # Bidirectional: both directions in one loop (KerasBiLoop)
    "bi_lstm_hard_sigmoid_masked_initial_states_none": lambda: layer(
        "lstm", True, n_states=4, bidirectional=True, merge_mode=None, recurrent_activation="hard_sigmoid_keras2"),
    "bi_lstm_relu_last_sum": lambda: layer("lstm", False, bidirectional=True, merge_mode="sum", activation="relu",
                                           return_sequences=False),
    "bi_gru_reset_before_hard_sigmoid_go_backwards_ave": lambda: layer(
        "gru", False, reset_after=False, bidirectional=True, merge_mode="ave", go_backwards=True,
        recurrent_activation="hard_sigmoid_keras2"),
    "bi_gru_reset_after_softsign_masked_initial_states": lambda: layer(
        "gru", True, n_states=2, reset_after=True, bidirectional=True, activation="softsign"),
    "bi_simple_rnn_elu_masked_mul": lambda: layer("simple_rnn", True, bidirectional=True, merge_mode="mul",
                                                  activation="elu"),
}


def running_loops(module, net) -> list:
    """The loops whose steps run: each KerasLoop, a KerasBiLoop's through its forward direction's."""
    bi = [m for m in net.modules() if isinstance(m, getattr(module, "KerasBiLoop", ()))]
    inner = {id(m) for b in bi for m in (b.fw, b.bw)}
    return [b.fw for b in bi] + [m for m in net.modules() if isinstance(m, module.KerasLoop) and id(m) not in inner]


@pytest.mark.parametrize("case", LOOPS)
def test_loops_scripted_eagerly_exported_fixed_length(case, tmp_path):
    ir = model(LOOPS[case]())
    module, net = load(ir, tmp_path)
    loops = running_loops(module, net)
    assert loops
    if ir.nodes[-1].options["bidirectional"]:  # one loop for both directions
        assert len(loops) == 1 and isinstance(getattr(net, ir.nodes[-1].name), module.KerasBiLoop)
    xs = inputs(ir)
    want = reference.run(ir, xs)
    assert_matches(run(net, xs), want, "eager")
    assert all(isinstance(module._SCRIPTED.get(m), torch.jit.ScriptModule) for m in loops), "not compiled"
    recorded = net(*(torch.from_numpy(x) for x in xs))  # autograd records: each step's tensors are new
    assert_matches([o.detach().numpy() for o in recorded], want, "eager, autograd recording")
    assert_matches(run(scripted(net), xs), want, "jit.script")
    exported = torch.export.export(net, tuple(torch.from_numpy(x) for x in xs)).module()
    assert_matches(run(exported, xs), want, "export")
    longer = inputs(ir, 9, np.concatenate([KEEP, KEEP], axis=1))
    assert_matches(run(net, longer), reference.run(ir, longer), "eager, 9 steps")


@pytest.mark.parametrize("case", ["gru_reset_before_hard_sigmoid", "bi_lstm_hard_sigmoid_masked_initial_states_none"])
def test_loop_weights_laid_out_again_only_when_a_parameter_changes(case, tmp_path):
    """Eager calls reuse a loop's laid-out weights (a KerasBiLoop's stacked ones) until a parameter is
    edited in place, loaded, cast or autograd records them; jit.script lays them out on every call."""
    ir = model(LOOPS[case]())
    module, net = load(ir, tmp_path)
    owner = getattr(net, ir.nodes[-1].name)
    xs = inputs(ir)
    assert_matches(run(net, xs), reference.run(ir, xs), "first call")
    layout = module._LAID_OUT[owner][2]
    first = run(net, xs)
    assert module._LAID_OUT[owner][2] is layout, "laid out again with the same parameters"
    script = scripted(net)  # shares the parameters
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.5)
    edited = run(net, xs)
    assert module._LAID_OUT[owner][2] is not layout
    assert all(np.array_equal(a, b) for a, b in zip(edited, run(script, xs))), "in-place edit not seen"
    assert not np.array_equal(edited[0], first[0])
    net.load_state_dict({k: v * -2 for k, v in net.state_dict().items()})
    loaded = run(net, xs)
    assert all(np.array_equal(a, b) for a, b in zip(loaded, run(script, xs))), "load_state_dict not seen"
    net.double()
    doubled = run(net, [x.astype(np.float64) for x in xs])
    assert doubled[0].dtype == np.float64 and np.allclose(doubled[0], loaded[0], atol=1e-5)
    net.float()
    for _ in range(2):  # autograd: laid out each call, gradients reach the parameters
        out = net(*(torch.from_numpy(x) for x in xs))[0]
        grad, = torch.autograd.grad(out.sum(), [owner.fw.weight_hh if hasattr(owner, "fw") else owner.weight_hh])
        assert float(grad.abs().sum()) > 0
    with torch.inference_mode():
        net(*(torch.from_numpy(x) for x in xs))
    net.requires_grad_(False)  # cached in inference mode, then a differentiable input outside it
    x = torch.from_numpy(xs[0]).requires_grad_()
    out = net(x, *(torch.from_numpy(v) for v in xs[1:]))[0]
    assert float(torch.autograd.grad(out.sum(), [x])[0].abs().sum()) > 0


def test_gates_activated_in_place_give_the_same_bits(tmp_path):
    """sigmoid_, tanh_, relu_ and nothing for linear on a step's gate buffer: bit for bit the
    activation module's own output (the generic path), for LSTM and both GRU resets."""
    module, _ = load(model(LOOPS["gru_reset_before_masked_backwards"]()), tmp_path)
    (tmp_path / "lstm").mkdir()
    module_lstm, _ = load(model(LOOPS["lstm_masked_returns_c"]()), tmp_path / "lstm")
    x = torch.from_numpy(inputs(model(layer("lstm", False)))[0])
    for act in (torch.nn.Sigmoid(), torch.nn.Tanh(), torch.nn.ReLU(), torch.nn.Identity()):
        for make in (lambda a: module_lstm.LSTMLoop(F, U, torch.nn.Tanh(), a),
                     lambda a: module.GRULoop(F, U, torch.nn.Tanh(), a, reset_after=False),
                     lambda a: module.GRULoop(F, U, torch.nn.Tanh(), a, reset_after=True)):
            fast, generic = make(act), make(act)
            assert fast.inplace_gates
            generic.inplace_gates = ""  # before its first call compiles it
            with torch.no_grad():
                for p in fast.parameters():
                    p.uniform_(-0.6, 0.6)
                generic.load_state_dict(fast.state_dict())
                got, want = fast(x), generic(x)
            assert torch.equal(got[0], want[0]) and all(map(torch.equal, got[1], want[1])), (act, fast)
