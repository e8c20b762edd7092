"""Hidden tests of lesson 05, "Seq2Seq encoder-decoder".

Every graded cell isolates its exercise (``EXERCISES.isolate``): there, the other exercises' answers
are the references, so a test judges one exercise alone. A learner's function that raises is
reported with the call that failed (``_call``), e.g. "beam_search(model, src, src_len, bos_id=2,
eos_id=3, beam_size=9, max_len=3) with a vocabulary of 6 raised RuntimeError: ...".

What the hidden tests try, per exercise and class of mistake (each entry: test function: case).
There is no GPU in grading: the dtype cases (float64 in, float64 out; int32 ids stay int32) also
catch tensors made without the input's dtype or device, e.g. ``torch.zeros(B, T, V)`` or
``torch.full((B, 1), bos_id)``.

| exercise | dtype | input | edge | extreme | side-effect |
|---|---|---|---|---|---|
| teacher_forcing | test_teacher_forcing: int64 ids stay int64, int32 ids stay int32 | test_teacher_forcing: a target wider than its longest row (padding columns only), lengths in any order | test_teacher_forcing: B = 1, T = 1, rows of length 1 and of the full width | n/a: integer ids, no arithmetic on values | test_teacher_forcing: tgt and tgt_len unchanged |
| Seq2Seq | test_seq2seq: float64 model, float64 context, state and logits; float32 too | test_seq2seq: unsorted lengths, extra source padding, step from a given state and context | test_seq2seq: B = 1, S = 1, T = 1; both directions of the encoder in the context | test_seq2seq: a saturated bridge (weights x 100) gives a state in [-1, 1] | test_seq2seq: src, src_len, dec_in, prev, state, context unchanged; gradients reach every layer |
| masked_cross_entropy | test_masked_cross_entropy: float64 loss from float64 logits, float32 from float32 | test_masked_cross_entropy: non-contiguous logits and targets (slices), pad_id = 4 | test_masked_cross_entropy: B = 1, T = 1; B = 4 rows of different lengths (one mean over the batch's tokens) | test_masked_cross_entropy: logits of the order of 1e4 (float64 and float32), huge logits at padding | test_masked_cross_entropy: logits and targets unchanged; the gradient reaches the logits, none at padding |
| greedy_decode | test_greedy_decode: tokens are Python ints; a float64 model | test_greedy_decode: a model whose context and state are tuples (lesson 06's encode returns a tuple) | test_greedy_decode: B = 1; max_len = 1; a row that ends at once; three rows ending at different steps; no <eos> before max_len | test_greedy_decode: a sharp model (logits of the order of 1e4) | test_greedy_decode: the model's train/eval mode and src unchanged |
| beam_search | test_beam_search: Python int tokens, a Python float score; a float64 model | test_beam_search: a model whose context and state are tuples | test_beam_search: beam_size = 1; beam_size larger than the vocabulary (V + 3 and V ** 4); max_len = 1 | test_beam_search: a sharp model (logits of the order of 1e4) | test_beam_search: the model's train/eval mode and src unchanged |

The trained translator (``test_trained_translator``) is charged to Seq2Seq: see its docstring.
"""

from __future__ import annotations

import itertools
import math

import torch
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from seqcourse import guard
from seqcourse.checks import check_close, check_shape, check_true, check_type
from seqcourse_hidden._differential import (
    DTYPES,
    TOLERANCE,
    Case,
    differential,
    gen,
    module_call,
    pick,
    randn,
    seeds,
)
from seqcourse_hidden._differential import lengths as random_lengths
from seqcourse_hidden._isolate import Exercises, judge_experiment
from seqcourse_hidden._support import call as checked_call

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("05-seq2seq")

BOS, EOS = 2, 3
F64 = TOLERANCE[torch.float64]     # the tolerances every lesson states
F32 = TOLERANCE[torch.float32]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _expect(condition, message: str, hint: str | None = None) -> None:
    """``check_true`` for a condition computed here: the tamper guard is verified when it fails,
    and at the start and end of every test function (``_guarded``), not at each of hundreds of
    passing conditions."""
    __tracebackhide__ = True
    if not condition:
        check_true(False, message, hint)


def _guarded(test):
    """Verify the tamper guard before and after ``test`` runs."""
    import functools

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True
        guard.verify()
        test(*args, **kwargs)
        guard.verify()
    return wrapper


def _call(fn, call: str, *args, **kwargs):
    """``fn(*args, **kwargs)``; an exception other than a failed check becomes a failure that
    names the call, so the learner can run it again."""
    __tracebackhide__ = True
    return checked_call(fn, *args, what=call, **kwargs)


def _batch(lengths: list[int], T: int, V: int, g: torch.Generator, dtype=torch.long):
    """Right-padded ids (B, T) with these row lengths (ids from 4 to V - 1), and the lengths."""
    lengths = torch.tensor(lengths)
    tokens = torch.randint(4, V, (len(lengths), T), generator=g)
    tokens[torch.arange(T)[None] >= lengths[:, None]] = 0
    return tokens.to(dtype), lengths


def _unchanged(before: dict, after: dict, call: str) -> None:
    for name, value in before.items():
        same = torch.equal(value, after[name]) if torch.is_tensor(value) else value == after[name]
        _expect(same, f"{call} changed its argument {name} in place.",
                hint="work on new tensors (torch.cat, .clone(), out-of-place operations); never "
                     "write into an argument")


# ---------------------------------------------------------------- exercise 1: teacher forcing
@_guarded
def test_teacher_forcing(teacher_forcing) -> None:
    # (row lengths, width T, extra padding columns, dtype)
    cases = [([6, 2, 4, 1], 6, 0, torch.long), ([1], 1, 0, torch.long), ([2, 1, 2], 2, 0, torch.long),
             ([3, 9, 5, 1, 7], 9, 0, torch.long), ([2, 4, 1], 4, 3, torch.long), ([3, 1], 3, 0, torch.int32)]
    for k, (lengths, T, extra, dtype) in enumerate(cases):
        tgt, tgt_len = _batch(lengths, T + extra, 14, _gen(5000 + k), dtype)
        B, W = tgt.shape
        call = (f"teacher_forcing(tgt of shape {(B, W)} ({str(dtype).replace('torch.', '')}), "
                f"tgt_len={lengths}, bos_id={BOS}, eos_id={EOS})")
        before = {"tgt": tgt.clone(), "tgt_len": tgt_len.clone()}
        dec_in, dec_out = _call(teacher_forcing, call, tgt, tgt_len, BOS, EOS)
        check_shape(dec_in, (B, W + 1), f"the decoder inputs of {call}", hint="one column more than tgt")
        check_shape(dec_out, (B, W + 1), f"the decoder targets of {call}", hint="one column more than tgt")
        _expect(dec_in.dtype == dtype and dec_out.dtype == dtype,
                f"{call} returned ids of dtypes {dec_in.dtype} and {dec_out.dtype}; they should keep "
                f"tgt's dtype, {dtype}.",
                hint="make new columns with tgt's dtype and device: torch.full((B, 1), bos_id, "
                     "dtype=tgt.dtype, device=tgt.device), not torch.zeros(B, 1)")
        for b in range(B):
            n = lengths[b]
            y = tgt[b, :n].tolist()
            _expect(dec_in[b, :n + 1].tolist() == [BOS] + y,
                    f"row {b} of the decoder inputs of {call} is {dec_in[b].tolist()}; it should start "
                    f"[<bos>, y_1 .. y_n] = {[BOS] + y}.",
                    hint="the decoder reads the previous true token: <bos> first")
            _expect(dec_out[b, :n + 1].tolist() == y + [EOS],
                    f"row {b} of the decoder targets of {call} is {dec_out[b].tolist()}; it should start "
                    f"[y_1 .. y_n, <eos>] = {y + [EOS]}.",
                    hint="<eos> goes right after each row's last real token, not at the end of the padding")
            _expect(bool((dec_out[b, n + 1:] == 0).all()) and bool((dec_in[b, n + 1:] == 0).all()),
                    f"row {b} of {call}: the positions after <eos> should be padding (0); got inputs "
                    f"{dec_in[b].tolist()} and targets {dec_out[b].tolist()}.",
                    hint="a target wider than its longest row keeps all its padding columns")
        _unchanged(before, {"tgt": tgt, "tgt_len": tgt_len}, call)
    test_differential("teacher_forcing", teacher_forcing)


# ---------------------------------------------------------------- exercise 2: the model
def _reference_encode(model, src, src_len):
    packed = pack_padded_sequence(model.src_embedding(src), src_len, batch_first=True, enforce_sorted=False)
    _, h_n = model.encoder(packed)
    context = torch.cat([h_n[0], h_n[1]], dim=-1)
    return context, torch.tanh(model.bridge(context)).unsqueeze(0)


def _reference_step(model, prev, state, context):
    out, state = model.decoder(torch.cat([model.tgt_embedding(prev), context], -1).unsqueeze(1), state)
    return model.out(torch.cat([out[:, 0], context], -1)), state


def _check_dtype(x, dtype, what: str, hint: str) -> None:
    _expect(torch.is_tensor(x) and x.dtype == dtype,
            f"{what} is {getattr(x, 'dtype', type(x).__name__)}; a {str(dtype).replace('torch.', '')} "
            f"model should give {str(dtype).replace('torch.', '')}.", hint=hint)


_NEW_TENSOR_HINT = ("a tensor made inside the model without dtype= and device= (torch.zeros(B, T, V), "
                    "torch.tensor(...)) is float32 on the CPU: build results from the layers' outputs "
                    "(torch.stack a list of logits), or pass dtype= and device= of an input")


@_guarded
def test_seq2seq(Seq2Seq) -> None:
    # (row lengths: unsorted, S, T, E, H, dtype)
    cases = [([3, 7, 1, 5], 7, 5, 6, 5, torch.float64), ([1], 1, 1, 3, 2, torch.float64),
             ([2, 4, 3], 4, 6, 4, 4, torch.float32), ([2, 5], 5, 1, 3, 3, torch.float64)]
    for k, (lengths, S, T, E, H, dtype) in enumerate(cases):
        g = _gen(5100 + k)
        torch.manual_seed(5100 + k)
        tol = F64 if dtype == torch.float64 else F32
        kind = str(dtype).replace("torch.", "")
        model = _call(lambda E=E, H=H: Seq2Seq(15, 13, E, H), f"Seq2Seq(15, 13, {E}, {H})").to(dtype).eval()
        src, src_len = _batch(lengths, S, 15, g)
        dec_in, _ = _batch([T] * len(lengths), T, 13, g)
        B = len(lengths)
        where = f"a {kind} Seq2Seq(15, 13, {E}, {H}) with B={B}, src_len={lengths}"
        args = {"src": src.clone(), "src_len": src_len.clone(), "dec_in": dec_in.clone()}
        with torch.no_grad():
            context, state = _call(model.encode, f"model.encode(src, src_len) ({where})", src, src_len)
            rc, rs = _reference_encode(model, src, src_len)
            check_shape(context, (B, 2 * H), f"the context of {where}", hint="[forward; backward] final states: 2H")
            check_shape(state, (1, B, H), f"the first decoder state of {where}",
                        hint="tanh(bridge(context)), with a layer axis in front: unsqueeze(0)")
            _check_dtype(context, dtype, f"the context of {where}", _NEW_TENSOR_HINT)
            _check_dtype(state, dtype, f"the first decoder state of {where}", _NEW_TENSOR_HINT)
            check_close(context, rc, f"the context of {where}", **tol,
                        hint="pack the source (enforce_sorted=False: lengths come in any order) so each "
                             "direction's final state is at the row's true length; forward then backward")
            check_close(state, rs, f"the first decoder state of {where}", **tol,
                        hint="d_0 = tanh(bridge(context)), shaped (1, B, H)")
            # step from encode's state, then from a given state and context
            given_state = torch.randn(1, B, H, generator=g, dtype=torch.float64).tanh().to(dtype)
            given_context = torch.randn(B, 2 * H, generator=g, dtype=torch.float64).to(dtype)
            for label, st, ctx in (("encode's state", rs, rc), ("a given state and context", given_state,
                                                                 given_context)):
                prev = dec_in[:, 0].clone()
                kept = {"prev": prev.clone(), "state": st.clone(), "context": ctx.clone()}
                call = f"model.step(prev, state, context) from {label} ({where})"
                logits, new_state = _call(model.step, call, prev, st, ctx)
                r_logits, r_state = _reference_step(model, prev, st, ctx)
                check_shape(logits, (B, 13), f"the step logits of {call}",
                            hint="output[:, 0] takes the one time step back out of the GRU's output")
                _check_dtype(logits, dtype, f"the step logits of {call}", _NEW_TENSOR_HINT)
                check_close(logits, r_logits, f"the step logits of {call}", **tol,
                            hint="decoder input [embedding(prev); context]; the output layer reads "
                                 "[output; context]; start the GRU from the state you are given")
                check_close(new_state, r_state, f"the new state of {call}", **tol)
                _unchanged(kept, {"prev": prev, "state": st, "context": ctx}, call)
            call = f"model(src, src_len, dec_in) with T={T} ({where})"
            full = _call(model, call, src, src_len, dec_in)
            check_shape(full, (B, T, 13), f"the logits of {call}", hint="(B, T, V): torch.stack(..., dim=1)")
            _check_dtype(full, dtype, f"the logits of {call}", _NEW_TENSOR_HINT)
            state, expected = rs, []
            for t in range(T):
                lt, state = _reference_step(model, dec_in[:, t], state, rc)
                expected.append(lt)
            check_close(full, torch.stack(expected, 1), f"the teacher-forced logits of {call}", **tol,
                        hint="feed dec_in[:, t] at step t and carry the decoder state from step to step")
            _unchanged(args, {"src": src, "src_len": src_len, "dec_in": dec_in}, call)
            # padding in the source changes nothing
            wider = torch.cat([src, torch.zeros(B, 3, dtype=torch.long)], dim=1)
            check_close(_call(model.encode, f"model.encode of a source with 3 extra padding columns ({where})",
                              wider, src_len)[0], rc, f"the context of a source with 3 extra padding columns "
                        f"({where})", **tol, hint="pack the source: padding must never reach the encoder")
    # a saturated bridge: the first state stays in [-1, 1]
    torch.manual_seed(5150)
    model = Seq2Seq(9, 8, 3, 4).double().eval()
    with torch.no_grad():
        model.bridge.weight.mul_(100.0)
        src, src_len = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
        _, state = _call(model.encode, "model.encode(src, src_len) with bridge weights x 100", src, src_len)
        check_close(state, _reference_encode(model, src, src_len)[1],
                    "the first decoder state of a model whose bridge weights are multiplied by 100", **F64,
                    hint="d_0 = tanh(bridge(context)) lies in [-1, 1] however large the bridge's output")
    # gradients reach every layer
    model = Seq2Seq(9, 8, 3, 4).double()
    src, src_len = torch.tensor([[4, 5, 6], [7, 0, 0]]), torch.tensor([3, 1])
    model.zero_grad()
    _call(model, "model(src, src_len, dec_in) on a float64 model in train mode", src, src_len,
          torch.tensor([[BOS, 4], [BOS, 5]])).sum().backward()
    for name in ("src_embedding", "encoder", "bridge", "tgt_embedding", "decoder", "out"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        _expect(all(gr is not None for gr in grads) and any(bool(gr.abs().sum() > 0) for gr in grads),
                f"no gradient reached the layer {name} from the sum of forward's logits.",
                hint="every layer must be on the path from the source to the logits: no .detach(), "
                     "no torch.no_grad() and no .item() inside the model, and the decoder reads the "
                     "encoder's context")
    test_differential("Seq2Seq", Seq2Seq)


# ---------------------------------------------------------------- exercise 3: the loss
_MEAN_HINT = ("one mean over every real token of the batch: the sum of their losses divided by their "
              "count, not a mean of each row's mean and not a mean over all positions")


def _reference_loss(logits, targets, pad_id):
    real = targets != pad_id
    return nn.functional.cross_entropy(logits.detach().double()[real], targets[real])


@_guarded
def test_masked_cross_entropy(masked_cross_entropy) -> None:
    # (row lengths, T, V, dtype, scale of the logits)
    cases = [([5, 2, 3], 5, 7, torch.float64, 1.0), ([1], 1, 6, torch.float64, 1.0),
             ([6, 1, 4, 2], 6, 9, torch.float64, 1.0), ([4, 2], 4, 5, torch.float32, 1.0),
             ([3, 2, 1], 3, 6, torch.float64, 1e4), ([2, 3], 3, 5, torch.float32, 1e4)]
    for k, (lengths, T, V, dtype, scale) in enumerate(cases):
        g = _gen(5200 + k)
        targets, _ = _batch(lengths, T, V, g)
        logits = (torch.randn(len(lengths), T, V, generator=g, dtype=torch.float64) * scale).to(dtype)
        logits.requires_grad_()
        kind = str(dtype).replace("torch.", "")
        call = (f"masked_cross_entropy(logits of shape {tuple(logits.shape)} ({kind}"
                f"{', values of the order of 1e4' if scale > 1 else ''}), targets with row lengths {lengths})")
        before = {"logits": logits.detach().clone(), "targets": targets.clone()}
        loss = _call(masked_cross_entropy, call, logits, targets)
        _expect(torch.is_tensor(loss) and loss.dim() == 0, f"{call} returned {type(loss).__name__} "
                f"{tuple(getattr(loss, 'shape', ()))}; it should be a scalar tensor.",
                hint="return the tensor itself (no .item()), a 0-dimensional one")
        _expect(loss.dtype == dtype, f"{call} returned a {loss.dtype} loss; it should keep the logits' "
                f"dtype, {dtype}.", hint="no .float() or .double() in the loss, and build the mask with "
                "the losses' dtype: mask.to(losses.dtype)")
        expected = _reference_loss(logits, targets, 0)
        check_close(loss, expected, f"the loss of {call}", **(F64 if dtype == torch.float64 else F32),
                    hint=_MEAN_HINT + ("; use log_softmax / cross_entropy, never log(softmax(...)), which "
                                       "underflows to log(0) for large logits" if scale > 1 else ""))
        _unchanged(before, {"logits": logits.detach(), "targets": targets}, call)
        _call(loss.backward, f"backward() through the loss of {call}")
        real = targets != 0
        _expect(logits.grad is not None, f"no gradient reached the logits through the loss of {call}.",
                hint="compute the loss with torch operations on the logits: no .item(), .detach() or "
                     "torch.tensor(...) of a computed value")
        _expect(bool(logits.grad[~real].abs().max() == 0) if bool((~real).any()) else True,
                f"padding positions got a gradient through the loss of {call}.",
                hint="multiply each position's loss by the mask before the sum")
        # huge logits at the padded positions change nothing
        noisy = logits.detach().clone()
        noisy[~real] += 100 * scale
        check_close(_call(masked_cross_entropy, f"{call} with huge logits at the padded positions", noisy, targets),
                    expected, f"the loss of {call} with huge logits at the padded positions",
                    **(F64 if dtype == torch.float64 else F32), hint="padding must add nothing to the loss")
    # non-contiguous inputs: slices of bigger tensors
    g = _gen(5250)
    big = torch.randn(3, 7, 8, generator=g, dtype=torch.float64)
    big_targets, _ = _batch([7, 5, 3], 7, 8, g)
    logits, targets = big[:, 1:6], big_targets[:, 1:6]
    call = "masked_cross_entropy(logits[:, 1:6], targets[:, 1:6]) (slices: non-contiguous tensors)"
    check_close(_call(masked_cross_entropy, call, logits, targets), _reference_loss(logits, targets, 0),
                f"the loss of {call}", **F64, hint="use .reshape (which copies when it must), not .view")
    # another padding id
    logits = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    targets = torch.tensor([[1, 2, 4], [4, 4, 4]])
    call = "masked_cross_entropy(logits, targets=[[1, 2, 4], [4, 4, 4]], pad_id=4)"
    check_close(_call(masked_cross_entropy, call, logits, targets, pad_id=4), _reference_loss(logits, targets, 4),
                f"the loss of {call}", **F64, hint="mask the pad_id you are given, not always 0")
    test_differential("masked_cross_entropy", masked_cross_entropy)


# ---------------------------------------------------------------- stub models for decoding
class TableModel(nn.Module):
    """A decoder whose next-token log-probabilities depend on the previous token and the step:
    ``table[step, prev]``. Its state counts steps. Small enough to search exhaustively."""

    def __init__(self, V: int, steps: int, seed: int, sharp: float = 2.0):
        super().__init__()
        g = _gen(seed)
        self.table = torch.randn(steps + 1, V, V, generator=g, dtype=torch.float64) * sharp
        self.table[..., 0] = -1e4 * max(1.0, sharp)     # never padding
        self.table[..., BOS] = -1e4 * max(1.0, sharp)   # never <bos>
        self.dummy = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    @property
    def V(self) -> int:
        return self.table.shape[-1]

    def encode(self, src, src_len):
        return torch.zeros(src.shape[0], 1, dtype=torch.float64), torch.zeros(src.shape[0], dtype=torch.long)

    def step(self, prev, state, context):
        return self.table[state.clamp(max=self.table.shape[0] - 1), prev], state + 1

    def forward(self, src, src_len, dec_in):
        context, state = self.encode(src, src_len)
        out = []
        for t in range(dec_in.shape[1]):
            logits, state = self.step(dec_in[:, t], state, context)
            out.append(logits)
        return torch.stack(out, 1)


class TupleModel(TableModel):
    """A TableModel whose context and state are tuples, as lesson 06's attention model's are."""

    def encode(self, src, src_len):
        context, state = super().encode(src, src_len)
        return (context, src_len.clone()), (state, state.clone())

    def step(self, prev, state, context):
        logits, steps = super().step(prev, state[0], context[0])
        return logits, (steps, steps.clone())


def _crafted() -> TableModel:
    """Greedy takes a (p .5) then a flat step (1/9 each) then <eos>: .056 in all. A width-2 beam
    keeps a and b (p .3); b's two continuations (.15 each) push every a-path out, and what follows
    them is flat again, so the beam ends at .017, below greedy."""
    V = 16
    model = TableModel(V, 3, 0)
    table = torch.full((4, V, V), -1e4, dtype=torch.float64)
    a, b, c = 4, 5, 6

    def put(t, prev, probs):
        for tok, p in probs.items():
            table[t, prev, tok] = math.log(p)

    put(0, BOS, {a: 0.5, b: 0.3, c: 0.2})
    put(1, a, {tok: 1 / 9 for tok in range(7, 16)})
    put(1, b, {8: 0.5, 9: 0.5})
    put(1, c, {EOS: 1.0})
    for prev in range(7, 16):
        put(2, prev, {EOS: 1.0} if prev == 7 else {tok: 1 / 9 for tok in range(7, 16)})
    model.table = table
    return model


def _stopping_rule_model() -> TableModel:
    """With beam_size 2 and alpha = 1: step 1 keeps <eos> (p .4, finished) and 4 (.35); step 2 keeps
    4 6 (.3395) and 4 <eos> (.0105, finished): two hypotheses have finished. Only step 3 finishes
    4 6 <eos>, whose normalised score log(.3395) / 3 beats <eos>'s log(.4) / 1."""
    V = 8
    model = TableModel(V, 4, 0)
    table = torch.full((5, V, V), -1e4, dtype=torch.float64)
    for t, prev, probs in ((0, BOS, {EOS: 0.4, 4: 0.35, 5: 0.25}), (1, 4, {6: 0.97, EOS: 0.03}),
                           (1, 5, {7: 1.0}), (2, 6, {EOS: 1.0}), (2, 7, {EOS: 1.0})):
        for tok, p in probs.items():
            table[t, prev, tok] = math.log(p)
    model.table = table
    return model


def _logp(model, tokens, max_len):
    """(log p(tokens, then <eos> unless cut off at max_len), length counting <eos>) under a table model."""
    cached = getattr(model, "_logp_cache", None)
    if cached is None or cached[0] is not model.table:
        cached = (model.table, torch.log_softmax(model.table, dim=-1).tolist())
        model._logp_cache = cached
    lp = cached[1]
    prev, total = BOS, 0.0
    seq = list(tokens) + ([EOS] if len(tokens) < max_len else [])
    for t, tok in enumerate(seq):
        total += lp[min(t, len(lp) - 1)][prev][tok]
        prev = tok
    return total, len(seq)


def _greedy_reference(model, max_len):
    prev, out = BOS, []
    for t in range(max_len):
        tok = int(model.table[min(t, model.table.shape[0] - 1), prev].argmax())
        if tok == EOS:
            break
        out.append(tok)
        prev = tok
    return out


def _ints(tokens) -> bool:
    return isinstance(tokens, list) and all(type(t) is int for t in tokens)


# ---------------------------------------------------------------- exercise 4: greedy decoding
def _greedy(greedy_decode, model, src, src_len, max_len, what: str):
    call = (f"greedy_decode(model, src, src_len={src_len.tolist()}, bos_id={BOS}, eos_id={EOS}, "
            f"max_len={max_len}) on {what}")
    kept = {"src": src.clone(), "src_len": src_len.clone()}
    mode = model.training
    out = _call(greedy_decode, call, model, src, src_len, BOS, EOS, max_len)
    check_type(out, list, f"the result of {call}", hint="a list of B lists of token ids")
    _expect(len(out) == src.shape[0] and all(_ints(row) for row in out),
            f"{call} returned {out!r}; it should be a list of {src.shape[0]} lists of Python ints.",
            hint="append int(prev[b]), not the tensor prev[b]")
    _expect(model.training == mode, f"{call} switched the model to {'train' if model.training else 'eval'} "
            "mode; the caller's mode must stay as it was.",
            hint="do not call model.eval() or model.train() inside greedy_decode: the caller decides")
    _unchanged(kept, {"src": src, "src_len": src_len}, call)
    return out, call


@_guarded
def test_greedy_decode(greedy_decode) -> None:
    src, src_len = torch.tensor([[5, 6]]), torch.tensor([2])
    for seed in range(6):
        model = TableModel(7, 6, 5300 + seed)
        model.train(seed % 2 == 1)
        out, call = _greedy(greedy_decode, model, src, src_len, 6, f"a table model (seed {seed})")
        expected = [_greedy_reference(model, 6)]
        _expect(out == expected, f"{call} returned {out}; greedy decoding gives {expected}.",
                hint="take the argmax at every step and feed it back; stop at <eos>, and leave it out")
    # rows end at different steps, in one batch; the model is a real batch of three tables
    models = [TableModel(7, 6, s) for s in (5310, 5311, 5312)]

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(1))

        def encode(self, src, src_len):
            return torch.zeros(3, 1), torch.zeros(3, dtype=torch.long)

        def step(self, prev, state, context):
            return torch.stack([m.table[min(int(state[i]), 6), int(prev[i])] for i, m in enumerate(models)]), state + 1

    out, call = _greedy(greedy_decode, Stack().eval(), torch.zeros(3, 2, dtype=torch.long), torch.tensor([2, 2, 2]),
                        6, "a batch of three rows that end at different steps")
    expected = [_greedy_reference(m, 6) for m in models]
    _expect(out == expected, f"{call} returned {out}; expected {expected}.",
            hint="each row stops at its own <eos>, with nothing after it; stop stepping when all have")
    # a model that never says <eos> stops at max_len; max_len = 1
    never = TableModel(7, 9, 5320).eval()
    never.table[..., EOS] = -1e4
    for max_len in (4, 1):
        out, call = _greedy(greedy_decode, never, src, src_len, max_len, "a model that never writes <eos>")
        _expect(len(out[0]) == max_len, f"{call} returned {len(out[0])} tokens; with no <eos>, decoding "
                f"stops after max_len={max_len} tokens.", hint="at most max_len steps")
    # a row whose first token is <eos>: an empty output
    at_once = TableModel(7, 6, 5321).eval()
    at_once.table[0, BOS, EOS] = 100.0
    out, call = _greedy(greedy_decode, at_once, src, src_len, 6, "a model whose first token is <eos>")
    _expect(out == [[]], f"{call} returned {out}; a row that writes <eos> first has an empty output [[]].")
    # a model whose context and state are tuples, and a sharp model (logits of the order of 1e4)
    for label, model in (("a model whose context and state are tuples", TupleModel(7, 6, 5330)),
                         ("a sharp model (logits of the order of 1e4)", TableModel(7, 6, 5331, sharp=1e4))):
        out, call = _greedy(greedy_decode, model.eval(), src, src_len, 6, label)
        expected = [_greedy_reference(model, 6)]
        _expect(out == expected, f"{call} returned {out}; greedy decoding gives {expected}.",
                hint="treat the context and the state as opaque: pass on what encode and step return "
                     "(B comes from src, not from the context)" if "tuple" in label else None)
    test_differential("greedy_decode", greedy_decode)


# ---------------------------------------------------------------- exercise 5: beam search
def _beam(beam_search, model, beam_size, max_len, alpha=None, what="a table model"):
    src, src_len = torch.tensor([[5, 6]]), torch.tensor([2])
    kept = {"src": src.clone(), "src_len": src_len.clone()}
    mode = model.training
    extra = {} if alpha is None else {"alpha": alpha}
    call = (f"beam_search(model, src, src_len, bos_id={BOS}, eos_id={EOS}, beam_size={beam_size}, "
            f"max_len={max_len}{f', alpha={alpha}' if alpha is not None else ''}) on {what} with a "
            f"vocabulary of {model.V}")
    result = _call(beam_search, call, model, src, src_len, BOS, EOS, beam_size, max_len, **extra)
    _expect(isinstance(result, tuple) and len(result) == 2, f"{call} returned {type(result).__name__}; "
            "it should return a pair (tokens, score).")
    tokens, score = result
    check_type(tokens, list, f"the tokens of {call}")
    _expect(_ints(tokens), f"the tokens of {call} are {tokens!r}; they should be Python ints.",
            hint="take the ids from .tolist(), or int(...) of each")
    _expect(type(score) is float, f"the score of {call} is a {type(score).__name__}; it should be a Python "
            "float.", hint="accumulate Python floats (values from .tolist()), not tensors")
    _expect(math.isfinite(score), f"the score of {call} is {score}; it should be finite.",
            hint="use log_softmax, never log(softmax(...)), which gives log(0) = -inf for large logits")
    _expect(EOS not in tokens and BOS not in tokens, f"the tokens {tokens} of {call} contain <bos> or <eos>.")
    _expect(model.training == mode, f"{call} switched the model to {'train' if model.training else 'eval'} "
            "mode; the caller's mode must stay as it was.", hint="no model.eval() inside beam_search")
    _unchanged(kept, {"src": src, "src_len": src_len}, call)
    return tokens, score, call


@_guarded
def test_beam_search(beam_search, greedy_decode, Seq2Seq, sequence_log_prob) -> None:
    V, L = 6, 4
    allowed = [1] + list(range(4, V))          # every id but padding, <bos> and <eos>
    every = [list(seq) for n_tok in range(L + 1) for seq in itertools.product(allowed, repeat=n_tok)]
    wins = 0
    for seed in range(8):
        model = TableModel(V, L, 5400 + seed, sharp=1.5)
        model.train(seed % 2 == 1)
        tokens, score, call = _beam(beam_search, model, 3, L, what=f"a table model (seed {seed})")
        logp, n = _logp(model, tokens, L)
        _expect(math.isclose(score, logp, abs_tol=1e-6),
                f"{call} returned {tokens} with the score {score:.5f}, which is not their log-probability "
                f"{logp:.5f}.", hint="add the log_softmax of every chosen token, <eos> included")
        greedy = _greedy_reference(model, L)
        g_logp, _ = _logp(model, greedy, L)
        _expect(score >= g_logp - 1e-9, f"{call} scored {score:.4f}, below greedy's {g_logp:.4f}.",
                hint="add greedy's output to the finished candidates")
        wins += score > g_logp + 1e-9
        one, _, call = _beam(beam_search, model, 1, L, what=f"a table model (seed {seed})")
        _expect(one == greedy, f"{call} returned {one}; with beam_size=1 it should give greedy's {greedy}.")
        # a beam wider than the vocabulary (every token is a candidate: topk(min(beam_size, V)))
        wide, wide_score, call = _beam(beam_search, model, V + 3, L, what=f"a table model (seed {seed})")
        _expect(math.isclose(wide_score, _logp(model, wide, L)[0], abs_tol=1e-6) and wide_score >= g_logp - 1e-9,
                f"{call} returned {wide} with the score {wide_score:.5f}; their log-probability is "
                f"{_logp(model, wide, L)[0]:.5f} and greedy's {g_logp:.5f}.",
                hint="the score is the sum of the chosen tokens' log-probabilities, <eos> included")
        if seed < 4:   # width V ** L keeps every hypothesis: it finds the exact best sequence
            best = max(every, key=lambda s: _logp(model, s, L)[0])
            wide, wide_score, call = _beam(beam_search, model, V ** L, L, what=f"a table model (seed {seed})")
            _expect(math.isclose(wide_score, _logp(model, best, L)[0], abs_tol=1e-6),
                    f"{call} found {wide} ({wide_score:.4f}); the best sequence is {best} "
                    f"({_logp(model, best, L)[0]:.4f}).",
                    hint="keep the beam_size best candidates over all beams' extensions (a beam wider than "
                         "the vocabulary takes every token: topk(min(beam_size, V))), and move finished "
                         "ones (ending in <eos>) out of the beam")
    _expect(wins > 0, "beam_search(..., beam_size=3) never scored above greedy on 8 table models: it is not "
            "searching.")
    # max_len = 1: one token at most
    model = TableModel(V, L, 5440, sharp=1.5).eval()
    tokens, score, call = _beam(beam_search, model, 3, 1, what="a table model")
    best = max([[]] + [[t] for t in allowed], key=lambda s: _logp(model, s, 1)[0])
    _expect(tokens == best and math.isclose(score, _logp(model, best, 1)[0], abs_tol=1e-6),
            f"{call} returned {tokens} ({score:.4f}); the best output of at most one token is {best} "
            f"({_logp(model, best, 1)[0]:.4f}).", hint="a hypothesis cut off at max_len has no <eos> term")
    # a model where a width-2 beam prunes the greedy path: the result must still not be worse
    crafted = _crafted().eval()
    tokens, score, call = _beam(beam_search, crafted, 2, 3, what="a model built so that the beam prunes greedy's path")
    g_logp, _ = _logp(crafted, _greedy_reference(crafted, 3), 3)
    _expect(score >= g_logp - 1e-9, f"{call} returned {tokens} scoring {score:.4f}, below greedy's "
            f"{g_logp:.4f}: the beam pruned the greedy path.",
            hint="beam search alone does not guarantee it: add the greedy hypothesis to the candidates")
    # the stopping rule stated: go on until the beam is empty or max_len, however many hypotheses have
    # finished (stopping once beam_size have finished, as some libraries do, misses a better one here)
    stops = _stopping_rule_model().eval()
    tokens, score, call = _beam(beam_search, stops, 2, 4, alpha=1.0,
                                what="a model on which two hypotheses finish before the best one")
    _expect(tokens == [4, 6] and math.isclose(score, math.log(0.35 * 0.97) / 3, abs_tol=1e-6),
            f"{call} returned {tokens} ({score:.4f}); the best normalised hypothesis, [4, 6] "
            f"({math.log(0.35 * 0.97) / 3:.4f}), finishes at step 3, after two others have finished.",
            hint="stop when the beam is empty or after max_len steps, not once beam_size hypotheses have finished")
    # length normalisation: rank and score by log p / length ** alpha (length counts <eos>)
    for seed in range(4):
        model = TableModel(V, L, 5450 + seed, sharp=1.5).eval()
        for alpha in (1.0, 0.6):
            def normalised(seq, model=model, alpha=alpha):
                logp, n = _logp(model, seq, L)
                return logp / n ** alpha
            best = max(every, key=normalised)
            tokens, score, call = _beam(beam_search, model, V ** L, L, alpha=alpha, what=f"a table model (seed {seed})")
            logp, n = _logp(model, tokens, L)
            _expect(math.isclose(score, logp / n ** alpha, abs_tol=1e-6),
                    f"{call} returned the score {score:.5f}; it should be log p / length ** alpha = "
                    f"{logp / n ** alpha:.5f} (length {n}, counting <eos>).",
                    hint="divide by len(tokens + [<eos>]) ** alpha")
            _expect(math.isclose(score, normalised(best), abs_tol=1e-6),
                    f"{call} returned {tokens} ({score:.5f}); an exhaustive beam should find the best "
                    f"normalised score {normalised(best):.5f} ({best}).",
                    hint="rank the finished hypotheses by the normalised score too")
    # tuple context and state; a sharp model: same answers as the table model
    for label, model in (("a model whose context and state are tuples", TupleModel(V, L, 5470, sharp=1.5)),
                         ("a sharp model (logits of the order of 1e4)", TableModel(V, L, 5471, sharp=1e4))):
        best = max(every, key=lambda s, model=model: _logp(model, s, L)[0])
        tokens, score, call = _beam(beam_search, model.eval(), V ** L, L, what=label)
        _expect(math.isclose(score, _logp(model, best, L)[0], rel_tol=1e-9, abs_tol=1e-6),
                f"{call} returned {tokens} ({score:.4f}); the best sequence is {best} "
                f"({_logp(model, best, L)[0]:.4f}).",
                hint="treat the context and each hypothesis's state as opaque: keep what step returns"
                     if "tuple" in label else "use log_softmax on the logits")
    # on a real (random) Seq2Seq the result never scores below greedy either
    torch.manual_seed(5460)
    s2s = Seq2Seq(10, 9, 4, 8).eval()
    for i in range(5):
        s = torch.randint(4, 10, (1, 5), generator=_gen(5461 + i))
        ln = torch.tensor([5])
        call = f"beam_search(model, src, src_len, bos_id={BOS}, eos_id={EOS}, beam_size=3, max_len=6) on a Seq2Seq"
        tokens, score = _call(beam_search, call, s2s, s, ln, BOS, EOS, 3, 6)
        g = greedy_decode(s2s, s, ln, BOS, EOS, 6)[0]
        g_score = sequence_log_prob(s2s, s, ln, g, BOS, EOS, 6)[0]
        _expect(score >= g_score - 1e-5, f"{call} scored {score:.4f}, below greedy's {g_score:.4f}.")
    test_differential("beam_search", beam_search)


# ---------------------------------------------------------------- the trained model
def held_out_exact_match(model, budget, source_vocab, target_vocab) -> float:
    """Exact match of ``model`` on the test days of ``budget`` (drawn here), with greedy decoding
    written here, through the model's ``encode``/``step`` only (lessons 05 and 06 share it)."""
    from seqcourse.data.dates import make_dates
    from seqcourse.text import Pairs

    test = make_dates(budget.days, budget.per_day, seed=0)["test"]
    data = Pairs([(e.source, e.target) for e in test], source_vocab, target_vocab)
    src, src_len, tgt, tgt_len = Pairs.collate([data[i] for i in range(len(data))])
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        memory, state = model.encode(src.to(device), src_len)
        prev = torch.full((len(data),), target_vocab.bos_id, dtype=torch.long, device=device)
        steps = []
        for _ in range(12):
            logits, state = model.step(prev, state, memory)
            prev = logits.argmax(-1)
            steps.append(prev.cpu())
    rows = torch.stack(steps, 1).tolist()
    preds = [r[:r.index(target_vocab.eos_id)] if target_vocab.eos_id in r else r for r in rows]
    return sum(p == tgt[i, :tgt_len[i]].tolist() for i, p in enumerate(preds)) / len(preds)


def test_trained_translator(namespace: dict) -> None:
    """The notebook's trained ``translator`` reaches this profile's exact-match bar on test days this
    module draws itself, decoded with its own greedy decoding (so the learner's ``greedy_decode``
    plays no part). Charged to Seq2Seq: the model is the learner's Seq2Seq. The run also used the
    learner's ``teacher_forcing`` and ``masked_cross_entropy``; a shortfall is charged to those when
    they fail their own tests while Seq2Seq passes its tests (see ``judge_experiment``)."""
    from seqcourse.env import get_profile

    guard.verify()
    budget = get_profile().budget("05-seq2seq")
    model, shortfall = namespace.get("translator"), None
    if model is None:
        shortfall = "there is no trained translator: the training cell stopped before it finished"
    else:
        try:
            acc = held_out_exact_match(model, budget, namespace["source_vocab"], namespace["target_vocab"])
        except Exception as exc:   # noqa: BLE001 -- the learner's model failed to decode
            shortfall = f"decoding the held-out dates with your translator raised {type(exc).__name__}: {exc}"
        else:
            if acc < budget.min_exact_match:
                shortfall = (f"exact match on the held-out dates is {acc:.3f}, below this profile's bar of "
                             f"{budget.min_exact_match}")
    forcing = EXERCISES.learners(namespace, "teacher_forcing").get("teacher_forcing")
    loss = EXERCISES.learners(namespace, "masked_cross_entropy").get("masked_cross_entropy")
    judge_experiment(
        shortfall, "Seq2Seq", lambda: test_seq2seq(namespace["Seq2Seq"]),
        {"teacher_forcing": lambda: test_teacher_forcing(forcing),
         "masked_cross_entropy": lambda: test_masked_cross_entropy(loss)})


# ---------------------------------------------------------------- differential tests
# Every exercise against its reference on generated inputs within Graded on (see _differential.py);
# EXAMPLES: how many inputs each answer tries (bench/differential_examples.py measures what each needs).
EXAMPLES = {"teacher_forcing": 25, "Seq2Seq": 20, "masked_cross_entropy": 40, "greedy_decode": 25,
            "beam_search": 50}


@st.composite
def _ids(draw, V: int, max_B: int = 5, max_T: int = 6, start: int = 4):
    """Right-padded ids (B, T) of rows of lengths 1 .. T in any order, sometimes with extra padding
    columns past the longest row, in int64 or int32; and the lengths."""
    B, T, extra, g = draw(st.integers(1, max_B)), draw(st.integers(1, max_T)), draw(st.integers(0, 2)), gen(draw(seeds()))
    n = random_lengths(g, B, T)
    tokens = torch.randint(start, V, (B, T + extra), generator=g)
    tokens[torch.arange(T + extra)[None] >= n[:, None]] = 0
    return tokens, n, g


@st.composite
def _forcing_cases(draw):
    tgt, n, _ = draw(_ids(V=12, max_T=9))
    tgt = tgt.to(pick(draw, (torch.int64, torch.int32)))
    return Case((tgt, n, BOS, EOS), f"targets {tgt.tolist()} ({tgt.dtype}), lengths {n.tolist()}")


@st.composite
def _model_cases(draw):
    Vs, Vt, E, H = draw(st.integers(5, 9)), draw(st.integers(5, 9)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    src, src_len, g = draw(_ids(V=Vs, max_B=3, max_T=5))
    dec_in = torch.randint(2, Vt, (src.shape[0], draw(st.integers(1, 4))), generator=g)
    double, saturated = draw(st.booleans()), draw(st.booleans())
    return Case(((Vs, Vt, E, H), src, src_len, dec_in, double, saturated, draw(seeds())),
                f"Seq2Seq({Vs}, {Vt}, {E}, {H}){'.double()' if double else ''}"
                + (" with a saturated bridge" if saturated else "") + f" on sources {src.tolist()} "
                f"(lengths {src_len.tolist()}), decoder inputs of length {dec_in.shape[1]}")


def _seq2seq_run(cls, ref_cls):
    """Everything a Seq2Seq computes on one case: encode, forward, a step from the encoded state,
    and (float64) the gradient of the logits with respect to every parameter."""
    def run(sizes, src, src_len, dec_in, double, saturated, seed):
        state = module_call(ref_cls, sizes, seed).state_dict()
        model = module_call(cls, sizes, seed, state)
        model = model.double() if double else model
        if saturated:
            with torch.no_grad():
                model.bridge.weight.mul_(1e3)
        context, d0 = model.encode(src, src_len)
        logits = model(src, src_len, dec_in)
        step_logits, step_state = model.step(dec_in[:, 0], d0, context)
        grads = []
        if double:
            params = [p for _, p in sorted(model.named_parameters())]
            weights = torch.randn(logits.shape, generator=gen(3), dtype=torch.float64)
            grads = list(torch.autograd.grad((logits * weights).sum(), params, allow_unused=True))
            grads = [torch.zeros(1) if g is None else g for g in grads]
        return context, d0, logits, step_logits, step_state, grads
    return run


@st.composite
def _loss_cases(draw):
    B, T, V = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(2, 6))
    dtype, g = pick(draw, DTYPES), gen(draw(seeds()))
    pad = pick(draw, (0, V - 1))
    n = random_lengths(g, B, T)
    targets = torch.randint(0, V, (B, T), generator=g)
    targets[targets == pad] = (pad + 1) % V                      # real positions are never pad_id
    targets[torch.arange(T)[None] >= n[:, None]] = pad
    scale = pick(draw, (0.5, 1.0, 1e4))
    wide = randn(g, B, T + 2, V, dtype=dtype, scale=scale)      # a slice of a bigger tensor: not contiguous
    wide[:, :T][torch.arange(T)[None].expand(B, T) >= n[:, None]] = 1e6    # huge logits at padding
    logits = wide[:, :T]
    if dtype == torch.float64:
        logits = logits.detach().requires_grad_()
    return Case((logits, targets, pad), f"B={B}, T={T}, V={V}, {dtype}, logits of size {scale:g}, pad_id={pad}, "
                f"lengths {n.tolist()}", grads=(0,) if dtype == torch.float64 else ())


@st.composite
def _decode_cases(draw, beam: bool = False):
    V, steps = draw(st.integers(5, 7)), draw(st.integers(1, 4))
    cls = pick(draw, (TableModel, TupleModel))
    sharp = pick(draw, (1.0, 2.0, 1e4))
    model = cls(V, steps, draw(seeds()), sharp=sharp)
    if not draw(st.booleans()):
        model.eval()
    src, src_len, _ = draw(_ids(V=V, max_B=1 if beam else 3, max_T=4))
    max_len = draw(st.integers(1, 5))
    label = (f"a {cls.__name__} (V={V}, logits of size {sharp:g}, {'train' if model.training else 'eval'} mode), "
             f"B={src.shape[0]}, max_len={max_len}")
    if not beam:
        return Case((model, src, src_len, BOS, EOS, max_len), label)
    beam_size, alpha = pick(draw, (1, 2, 3, 9)), pick(draw, (0.0, 0.6, 1.0))
    return Case((model, src, src_len, BOS, EOS, beam_size, max_len, alpha),
                f"{label}, beam_size={beam_size}, alpha={alpha}")


def test_differential(name: str, answer) -> None:
    """``name``'s answer against the reference on generated inputs (see EXAMPLES)."""
    reference = EXERCISES.reference(name)
    wraps = {"teacher_forcing": (_forcing_cases(), lambda f: f),
             "Seq2Seq": (_model_cases(), lambda f: _seq2seq_run(f, reference)),
             "masked_cross_entropy": (_loss_cases(), lambda f: f),
             "greedy_decode": (_decode_cases(), lambda f: f),
             "beam_search": (_decode_cases(beam=True), lambda f: f)}
    cases, wrap = wraps[name]
    differential(wrap(answer), wrap(reference), cases, name, EXAMPLES[name])
