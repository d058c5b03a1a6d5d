"""One ONNX ``LSTM`` / ``GRU`` / ``RNN`` node -> one IR recurrent node.

The ONNX attributes and initializers give the cell (onnx/defs/rnn/defs.cc; SEMANTICS.md §3.4):
``W [dirs, G*H, in]``, ``R [dirs, G*H, H]``, ``B [dirs, 2*G*H] = [Wb | Rb]`` in ONNX gate order
(LSTM i,o,f,c; GRU z,r,h), read through :mod:`converters.gates`; ``activations`` with
``activation_alpha``/``activation_beta`` consumed as onnxruntime does (only by activations that
take them, rnn_helpers.cc ``NameToArgUsageMap``); ``linear_before_reset`` is ``reset_after``;
``layout`` 0 or 1; ``direction`` forward, reverse or bidirectional.

How the outputs are used gives the rest: a direction's sequence used (``return_sequences``), its
final states (``return_state``), both directions merged as Keras' Bidirectional merges them
(``merge_mode``), the reverse direction flipped back or not (``go_backwards``). The reader records
those uses (:meth:`RecurrentNode.request`) while it walks the graph and builds the IR node at the end.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..activations import ONNX_RECURRENT_ARGS, from_onnx_recurrent
from ..errors import FormatError, UnsupportedError
from ..gates import GATES
from ..ir import Node, set_recurrent_weights
from ..ops import STATES
from ..sanitize import quote

KINDS = {"LSTM": "lstm", "GRU": "gru", "RNN": "simple_rnn"}
#: ONNX activations per direction of each op, and their defaults.
DEFAULT_ACTIVATIONS = {"lstm": ("Sigmoid", "Tanh", "Tanh"), "gru": ("Sigmoid", "Tanh"), "simple_rnn": ("Tanh",)}
N_STATES = STATES  # converters/ops.py


#: the activation names of the spec (onnx/defs/rnn/defs.cc); onnxruntime lower-cases a name before looking
#: it up (rnn_helpers.cc ``NormalizeActivationArgumentAndGetAlphaBetaCount``), so any case is read
SPEC_ACTIVATIONS = {n.lower(): n for n in ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
                                           "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus")}
#: activations whose omitted alpha/beta onnxruntime fills with the ONNX operator's default (rnn_helpers.cc
#: ``NameToArgDefaultsMap``); for the others it uses 0, where the spec says the operator's default
ORT_DEFAULTS = ("LeakyRelu", "HardSigmoid", "Elu")


def parse_activations(names: list[str], alphas: list[float], betas: list[float]) -> list[str]:
    """IR activation names, consuming alpha/beta lists as onnxruntime does."""
    ia = ib = 0
    out = []
    for name in names:
        name = SPEC_ACTIVATIONS.get(name.lower(), name)
        alpha = beta = None
        if name in ONNX_RECURRENT_ARGS:
            da, db = ONNX_RECURRENT_ARGS[name]
            if da is not None:
                alpha, ia = (alphas[ia] if ia < len(alphas) else da), ia + 1
            if db is not None:
                beta, ib = (betas[ib] if ib < len(betas) else db), ib + 1
            if (ia > len(alphas) or ib > len(betas)) and name not in ORT_DEFAULTS:
                raise UnsupportedError(
                    f"expected activation_alpha/activation_beta values for {name}, found too few: the spec's "
                    f"default (the {name} operator's) and onnxruntime's (0, rnn_helpers.cc) differ")
        out.append(from_onnx_recurrent(name, alpha, beta))  # the table's onnx_recurrent, reversed
    return out


class RecurrentNode:
    """One ONNX recurrent node being read: its cell, its input, and the uses of its outputs."""

    def __init__(self, name: str, op_type: str, attrs: dict[str, Any], weights: dict[str, np.ndarray],
                 x: str, mask: str | None, initial: list[list[str]] | None, input_size: int | None,
                 input_flipped: bool = False, lengths: str | None = None):
        self.name = name
        self.kind = KINDS[op_type]
        self.attrs = attrs
        self.x, self.mask, self.initial = x, mask, initial
        self.input_flipped = input_flipped  # X is the IR input reversed in time
        #: ``mask`` is ``sequence_lens`` as a mask (IR mask_lengths): X is the IR input itself (not compacted),
        #: ``Y`` Keras' masked output with zero_output_for_mask, ``Y_h``/``Y_c`` the states at each length
        self.lengths = lengths  # the IR tensor of sequence_lens, or None
        #: IR nodes after the recurrent node (the final states zeroed where sequence_lens is 0, :meth:`_zeroed`)
        self.after: list[Node] = []
        self.hidden = self._hidden_size(weights)
        self.direction = attrs.get("direction", "forward")
        if self.direction not in ("forward", "reverse", "bidirectional"):
            raise FormatError(f"expected direction forward|reverse|bidirectional, found {quote(self.direction)}")
        self.n_dirs = 2 if self.direction == "bidirectional" else 1
        self.layout = int(attrs.get("layout", 0))
        self._check_attrs()
        self.activations = self._activations()
        self.weights = self._check_weights(weights, input_size)
        self.uses: dict[tuple, list[str]] = {}
        self.aliases: list[tuple[str, str]] = []

    # -- parsing (onnx/defs/rnn/defs.cc: the attributes and input shapes of LSTM-14, GRU-14, RNN-14) --------
    def _hidden_size(self, weights: dict[str, np.ndarray]) -> int:
        """``hidden_size`` (a positive int; from R's shape when absent); W and R must be given."""
        for key in ("W", "R"):
            if weights.get(key) is None:
                raise FormatError(f"expected input {key} as an initializer, found none")
        if "hidden_size" not in self.attrs:
            r = weights["R"]
            if r.ndim != 3:
                raise FormatError(f"R: expected shape (directions, gates * hidden, hidden), found {r.shape}")
            return int(r.shape[-1])
        hidden = self.attrs["hidden_size"]
        if not isinstance(hidden, int) or hidden < 1:
            raise FormatError(f"expected hidden_size a positive integer, found {hidden!r}")
        return hidden

    def _check_attrs(self) -> None:
        for flag in ("input_forget", "linear_before_reset"):
            if self.attrs.get(flag, 0) not in (0, 1):
                raise FormatError(f"expected {flag} 0 or 1, found {self.attrs[flag]!r}")
        if self.attrs.get("clip") is not None:
            raise UnsupportedError(f"expected no clip attribute, found clip={self.attrs['clip']:g}: Keras and PyTorch "
                                   "cells do not clip the activations' inputs")
        if self.attrs.get("input_forget"):
            raise UnsupportedError("expected input_forget=0, found input_forget=1: coupled input and forget gates "
                                   "have no Keras or PyTorch equivalent")
        if self.layout not in (0, 1):
            raise FormatError(f"expected layout 0 or 1, found {self.layout}")

    def _activations(self) -> dict[str, str]:
        per_dir = len(DEFAULT_ACTIVATIONS[self.kind])
        names = [a.decode("utf-8", "replace") if isinstance(a, bytes) else a
                 for a in self.attrs.get("activations", DEFAULT_ACTIVATIONS[self.kind] * self.n_dirs)]
        if len(names) != per_dir * self.n_dirs:  # the spec: 3 (6 if bidirectional) for LSTM, 2 (4) GRU, 1 (2) RNN
            raise FormatError(f"expected {per_dir * self.n_dirs} activations ({per_dir} per direction, "
                              f"{self.direction}), found {len(names)}")
        acts = parse_activations(names, list(self.attrs.get("activation_alpha") or []),
                                 list(self.attrs.get("activation_beta") or []))
        if acts[:per_dir] != acts[per_dir:] and self.n_dirs == 2:
            raise UnsupportedError(f"expected the two directions' activations equal (a Keras Bidirectional layer "
                                   f"has one set), found {acts[:per_dir]} and {acts[per_dir:]}")
        if self.kind == "lstm":
            f, g, h = acts[:3]
            if g != h:
                raise UnsupportedError(f"expected the LSTM activations g and h equal (Keras uses one activation "
                                       f"for both), found g={g}, h={h}")
            return {"recurrent_activation": f, "activation": g}
        if self.kind == "gru":
            return {"recurrent_activation": acts[0], "activation": acts[1]}
        return {"activation": acts[0]}

    def _check_weights(self, w: dict[str, np.ndarray], input_size: int) -> dict[str, np.ndarray]:
        g, h, d = len(GATES[self.kind]), self.hidden, self.n_dirs
        expected = {"W": (d, g * h, None), "R": (d, g * h, h), "B": (d, 2 * g * h), "P": (d, 3 * h)}
        for key, shape in expected.items():
            if key not in w:
                continue  # W and R: checked by _hidden_size
            a = w[key]
            if a.ndim != len(shape) or any(e is not None and e != s for e, s in zip(shape, a.shape)) \
                    or key == "W" and a.shape[2] < 1:
                shown = tuple("input_size" if e is None else e for e in shape)
                raise FormatError(f"{key}: expected shape {shown} (hidden_size {h}, {self.direction}), found "
                                  f"{a.shape}")
            if a.dtype != np.float32:
                raise FormatError(f"{key}: expected float32 weights (the type of X), found {a.dtype}")
        if input_size is not None and w["W"].shape[2] != input_size:
            raise FormatError(f"W: expected {input_size} input columns (the input's size), found {w['W'].shape[2]}")
        if w.get("P") is not None and np.any(w["P"]):
            raise UnsupportedError("expected P (peepholes) absent or all zero, found nonzero peephole weights: "
                                   "Keras and PyTorch LSTM cells have no peepholes")
        return w

    # -- uses ----------------------------------------------------------------------------------
    def reversed(self, slot: int) -> bool:
        """Whether ONNX direction ``slot`` processes the IR input from its end."""
        return (self.direction == "reverse" or slot == 1) != self.input_flipped

    def forward_slot(self, go_backwards: bool) -> int:
        """The ONNX direction that is the IR forward direction of a layer with ``go_backwards``."""
        return next(s for s in range(self.n_dirs) if self.reversed(s) == go_backwards)

    def request(self, key: tuple, name: str, exact: bool = False) -> str:
        """The IR tensor for output ``key``: the first name it was given, or ``name`` when ``exact``
        (a graph output) - further names of one output become Identity aliases."""
        names = self.uses.setdefault(key, [])
        if names and not exact:
            return names[0]
        if name not in names:
            names.append(name)
        return name

    # -- the IR node ---------------------------------------------------------------------------
    def build(self, taken: set[str]) -> Node:
        """The IR node that computes every requested use."""
        plan = self._plan(taken)
        o = {"units": self.hidden, "input_size": int(self.weights["W"].shape[2]), **self.activations,
             "use_bias": bool("B" in self.weights and np.any(self.weights["B"])),
             "go_backwards": plan["go_backwards"], "return_sequences": plan["return_sequences"],
             "return_state": plan["return_state"], "bidirectional": self.n_dirs == 2,
             "zero_output_for_mask": plan["zero"], "stateful": False}
        if self.kind == "gru":
            o["reset_after"] = bool(self.attrs.get("linear_before_reset", 0))
        if self.n_dirs == 2:
            o["merge_mode"] = plan["merge_mode"]
        slots = plan["slots"]  # IR direction -> ONNX slot
        inputs = [self.x]
        if self.initial:
            inputs += [self.initial[k][slot] for slot in slots.values() for k in range(N_STATES[self.kind])]
        outputs = self._outputs(plan["outputs"], taken)
        if self.lengths and self.initial and plan["return_state"]:
            n_y = len(plan["outputs"]) - len(slots) * N_STATES[self.kind]
            outputs[n_y:] = [self._zeroed(name, taken) for name in outputs[n_y:]]
        node = Node(self.name, self.kind, inputs, outputs, o, mask=self.mask,
                    source={"class_name": f"ONNX {self.attrs['op_type']}", "direction": self.direction,
                            "layout": self.layout})
        w = self.weights
        g_h = len(GATES[self.kind]) * self.hidden
        for direction, slot in slots.items():
            b = w["B"][slot] if "B" in w else np.zeros(2 * g_h, w["W"].dtype)
            set_recurrent_weights(node, direction, "onnx", w["W"][slot], w["R"][slot], b[:g_h], b[g_h:])
        return node

    def _zeroed(self, name: str, taken: set[str]) -> str:
        """The name the IR node gives final state ``name``, whose readers get it zeroed where ``sequence_lens``
        is 0 (:attr:`after`).

        With initial states, onnxruntime gives a sample of length 0 zero ``Y_h``/``Y_c`` in every direction
        (deep_cpu_lstm.cc, deep_cpu_gru.cc, rnn.cc; measured for LSTM, GRU and RNN, forward, reverse and
        bidirectional), where the IR's masked layer (Keras') keeps the initial state; for a length ``L > 0`` both
        give the state after step ``L`` (the reverse direction starts at step ``L - 1``). The state ``(batch,
        units)`` is viewed as one step ``(batch, 1, units)``, ``mask_lengths`` of that step is ``length > 0``,
        ``masking`` zeroes the other rows exactly (a Where, no product)."""
        def fresh(hint: str) -> str:
            out, k = hint, 1
            while out in taken:
                out, k = f"{hint}_{k}", k + 1
            taken.add(out)
            return out

        kept, step, ran, zeroed = (fresh(f"{name}/{part}") for part in ("kept", "step", "ran", "zeroed"))
        source = {"class_name": f"ONNX {self.attrs['op_type']} (sequence_lens 0: zero final state)"}
        self.after += [
            Node(step, "reshape", [kept], [step], {"shape": [1, self.hidden]}, source=source),
            Node(ran, "mask_lengths", [self.lengths, step], [ran], source=source),
            Node(zeroed, "masking", [step, ran], [zeroed], {"mask_value": 0.0}, mask=ran, source=source),
            Node(name, "reshape", [zeroed], [name], {"shape": [self.hidden]}, source=source)]
        return kept

    def _outputs(self, keys: list[tuple], taken: set[str]) -> list[str]:
        """One name per output key (the first requested, else a new one); the other requested names
        of a key are kept in ``self.aliases`` as ``(alias, name)``."""
        names = []
        for k, key in enumerate(keys):
            given = self.uses.get(key) or []
            if given:
                name = given[0]
            else:
                base = self.name if k == 0 else f"{self.name}:{k}"
                name, n = base, 1
                while name in taken:
                    name, n = f"{base}_{n}", n + 1
            taken.add(name)
            names.append(name)
            self.aliases += [(alias, name) for alias in given[1:]]
        return names

    def _plan(self, taken: set[str]) -> dict:
        """go_backwards, return_sequences ... and the output keys in Keras' order, from the uses."""
        uses = list(self.uses)
        zeros = {k[-1] for k in uses if k[0] in ("seq", "last", "merge") and k[-1] is not None}
        if len(zeros) > 1:
            raise UnsupportedError("its outputs zero-fill masked steps in some places and not in others")
        zero = zeros.pop() if zeros else False
        merges = [k for k in uses if k[0] == "merge"]
        seqs = [k for k in uses if k[0] == "seq"]
        lasts = [k for k in uses if k[0] == "last"]
        states = [k for k in uses if k[0] == "state"]
        if self.n_dirs == 1:
            g = self.reversed(0)
            if any(k[2] != g for k in seqs):
                raise UnsupportedError(
                    "the reverse direction's output is used aligned to input time; Keras' go_backwards "
                    "returns it in processing order" if g else
                    "the output is used reversed in time, which Keras computes only with go_backwards")
            return_sequences = bool(seqs)
            y_keys = [("seq", 0, g, zero if self.mask else None) if return_sequences
                      else ("last", 0, zero if self.mask else None)]
            slots = {"forward": 0}
            merge_mode = None
        else:
            g, merge_mode, return_sequences, y_keys = self._bidirectional_plan(merges, seqs, lasts, zero, taken)
            fw = self.forward_slot(g)
            slots = {"forward": fw, "backward": 1 - fw}
            states = [k for k in self.uses if k[0] == "state"]  # (the joined final h moved onto the states)
        if return_sequences and lasts:
            self._lasts_as_states(lasts)
            states = [k for k in self.uses if k[0] == "state"]
        return_state = bool(states)
        state_keys = [("state", slot, k) for slot in slots.values() for k in range(N_STATES[self.kind])]
        if not return_sequences and not self.mask:  # the last output is the final h: share the names
            for y_key in y_keys:
                h_names = self.uses.get(("state", y_key[1], 0)) if y_key[0] == "last" else None
                if h_names and not self.uses.get(y_key):
                    self.uses[y_key] = [h_names.pop(0)]
            if not any(self.uses.get(k) for k in state_keys):
                return_state = False
        if not self.mask and self.n_dirs == 2:
            zero = return_sequences  # what Keras' Bidirectional sets; without a mask it changes nothing
        return {"go_backwards": g, "return_sequences": return_sequences, "return_state": return_state,
                "merge_mode": merge_mode, "zero": bool(zero), "slots": slots,
                "outputs": y_keys + (state_keys if return_state else [])}

    def _bidirectional_plan(self, merges, seqs, lasts, zero, taken: set[str]) -> tuple:
        z = zero if self.mask else None
        if merges and not seqs and self.mask is None and len({k[1:3] for k in merges if k[2] == "seq"}) == 1:
            merges = self._joined_last_as_states(merges, taken)
        if merges:
            modes = {k[1] for k in merges}
            kinds = {k[2] for k in merges}
            if len(modes) > 1 or len(kinds) > 1 or seqs:
                raise UnsupportedError("both directions are used in ways one Keras Bidirectional layer "
                                       "cannot give at once")
            mode, kind = modes.pop(), kinds.pop()
            first_slot, flipped = merges[0][3], merges[0][4]
            g = bool(flipped) if kind == "seq" else self.reversed(first_slot)
            fw = self.forward_slot(g)
            if mode == "concat" and first_slot != fw:
                raise UnsupportedError("the directions are concatenated backward first; Keras' "
                                       "Bidirectional puts the forward direction first")
            key = ("merge", mode, kind, fw, g if kind == "seq" else None, z)
            for k in merges:  # a commutative merge may list the directions either way
                if k != key:
                    self.uses.setdefault(key, []).extend(self.uses.pop(k))
            return g, mode, kind == "seq", [key]
        if seqs:
            flips = {k[2] for k in seqs}
            if len(flips) > 1:
                raise UnsupportedError("its two directions' outputs are used with different time orders")
            g = flips.pop()
            fw = self.forward_slot(g)
            return g, None, True, [("seq", fw, g, z), ("seq", 1 - fw, g, z)]
        # each direction's last output on its own (merge_mode None); Keras lists the forward one
        # first, so the first h state asked for (or the first last output) is the forward direction's
        firsts = [k[1] for k in self.uses if k[0] == "last" or k[0] == "state" and k[2] == 0]
        fw = firsts[0] if firsts else self.forward_slot(False)
        return self.reversed(fw), None, False, [("last", fw, z), ("last", 1 - fw, z)]

    def _joined_last_as_states(self, merges: list[tuple], taken: set[str]) -> list[tuple]:
        """With the merged sequence also used, the final h of both directions concatenated forward first (a
        ``Reshape(Transpose(Y_h), [batch, 2 * hidden])``: onnx-simplifier's form of torch's ``cat(h_n[-2],
        h_n[-1])``) is Keras' Bidirectional ``return_state`` forward and backward h, concatenated after the
        layer (:attr:`after`). Returns the merges left (the sequence's)."""
        seq = next(k for k in merges if k[2] == "seq")
        fw = self.forward_slot(bool(seq[4]))
        joined = [k for k in merges if k[2] == "last"]
        if any(k[1] != "concat" or k[3] != fw for k in joined) or len(joined) + 1 < len(merges):
            return merges
        for key in joined:
            for name in self.uses.pop(key):
                parts = []
                for slot in (fw, 1 - fw):
                    part, n = f"{name}/{'forward' if slot == fw else 'backward'}_h", 1
                    while part in taken:
                        part, n = f"{name}/h{n}", n + 1
                    taken.add(part)
                    self.uses.setdefault(("state", slot, 0), []).append(part)
                    parts.append(part)
                self.after.append(Node(name, "concatenate", parts, [name], {"axis": -1},
                                       source={"class_name": f"ONNX {self.attrs['op_type']} (Y_h joined)"}))
        return [k for k in merges if k[2] != "last"]

    def _lasts_as_states(self, lasts: list[tuple]) -> None:
        """With return_sequences the last output is only available as the final h (no mask)."""
        if self.mask is not None:
            raise UnsupportedError("both the masked sequence and its last output are used; Keras returns "
                                   "one of them")
        for key in lasts:
            self.uses.setdefault(("state", key[1], 0), []).extend(self.uses.pop(key))
