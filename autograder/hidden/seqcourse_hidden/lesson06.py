"""Hidden tests of lesson 06, "Attention".

Which test covers which class of mistake, per exercise ("n/a" says why a class does not apply).
Grading runs on the CPU: the dtype cases also catch a tensor made without the input's dtype and
device (``torch.zeros(B, S)`` is float32 on the CPU whatever the input is).

| exercise | dtype | input | edge | extreme | side-effect |
|---|---|---|---|---|---|
| attention_scores | test_attention_scores: float64 and float32 query and keys, the scores keep their dtype (every kind) | test_attention_scores: keys that are a non-contiguous view (as pad_packed_sequence returns them), a params dict holding every parameter as nn.Parameter | test_attention_scores: B = 1 with S = 1, odd sizes, Q != K for general and additive | test_attention_scores: a zero query and a zero key (cosine: 0, not NaN), a query scaled by 1e4 (cosine unchanged, additive saturated but finite) | test_attention_scores: query, keys and params unchanged; gradients reach query, keys and the kind's parameters |
| attend | test_attend: float64 and float32 scores and values, weights and context keep the dtype | test_attend: a mask with a masked position between real ones, not only trailing padding | test_attend: B = 1 with S = 1 and D = 1, odd sizes | test_attend: scores of +-1e4 at real positions and 1e6 at padded ones (no overflow); every real score near -3e4 (no finite mask constant is low enough) | test_attend: scores, mask and values unchanged; gradients reach scores and values, none reaches padded values |
| AttnSeq2Seq | test_attn_seq2seq: model.double() gives float64 logits, state and weights; float32 too | test_attn_seq2seq: source lengths in any order, step from a given state (not only encode's) | test_attn_seq2seq: B = 1 with a source of length 1 and T = 1; both directions of the encoder (compared with the reference); extra padding columns | n/a: token ids in, tanh and GRU gates inside; the extremes of scores and softmax are graded in attention_scores and attend | test_attn_seq2seq: src, src_len and dec_in unchanged, train/eval mode unchanged, gradients reach every parameter |

The trained model (section 4) is graded by test_trained_dates, charged to AttnSeq2Seq: a shortfall
caused by an attention_scores or attend that fails its own tests is charged there instead.
A fully masked row (a source of length 0) is not a valid input of attend (the lesson says so): its
softmax is 0/0; no test passes one.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqcourse import guard
from seqcourse.checks import check_close, check_finite, check_shape, check_true
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
    with_grad,
)
from seqcourse_hidden._differential import lengths as random_lengths
from seqcourse_hidden._isolate import Exercises, judge_experiment
from seqcourse_hidden._support import call as _call
from seqcourse_hidden.lesson05 import held_out_exact_match

# Each graded cell isolates its exercise: the other exercises' answers are the references here.
EXERCISES = Exercises("06-attention")

KINDS = ("dot", "general", "additive", "cosine")
TOL = TOLERANCE[torch.float64]     # the tolerances every lesson states
TOL32 = TOLERANCE[torch.float32]
DTYPE_HINT = ("make no new tensor with a fixed dtype: torch.zeros(B, S) is float32 whatever the input is; "
              "use the input's dtype and device (torch.zeros(..., dtype=x.dtype, device=x.device)), or "
              "compute the result with tensor operations on the inputs; do not call .float()")
INPLACE_HINT = "work on new tensors: x = x / n, masked_fill (not masked_fill_), no x /= n or x[...] = ..."


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _unchanged(before: dict, after: dict, who: str) -> None:
    for name, old in before.items():
        new = after[name]
        same = torch.equal(old, new) if torch.is_tensor(old) else old == new
        check_true(same, f"{who} changed its argument {name} in place", hint=INPLACE_HINT)


def _params(Q: int, K: int, A: int, g: torch.Generator) -> dict:
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return {"W": r(Q, K), "W_q": r(Q, A), "W_k": r(K, A), "v": r(A), "beta": torch.tensor(3.0, dtype=torch.float64)}


def _noncontiguous(x: torch.Tensor) -> torch.Tensor:
    """The same values laid out as pad_packed_sequence(batch_first=True) leaves them: a transposed view."""
    view = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not view.is_contiguous() or x.shape[0] == 1 or x.shape[1] == 1
    return view


def _reference_scores(q, k, kind, p):
    if kind == "dot":
        return torch.einsum("bd,bsd->bs", q, k)
    if kind == "general":
        return torch.einsum("bq,qk,bsk->bs", q, p["W"], k)
    if kind == "additive":
        return torch.einsum("bsa,a->bs", torch.tanh((q @ p["W_q"])[:, None] + k @ p["W_k"]), p["v"])
    qn = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-8)      # a zero vector scores 0
    kn = k / k.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return p["beta"] * torch.einsum("bd,bsd->bs", qn, kn)


SCORE_HINTS = {"dot": "q . k_j for every source position j",
               "general": "q W k_j, with W of shape (query size, key size)",
               "additive": "v . tanh(q W_q + k_j W_k)",
               "cosine": "beta * cos(q, k_j): divide both by their norms, clamped away from 0 (.clamp_min(1e-8))"}
OWN_PARAMS = {"dot": (), "general": ("W",), "additive": ("W_q", "W_k", "v"), "cosine": ("beta",)}


# ---------------------------------------------------------------- exercise 1: four scores
def test_attention_scores(attention_scores) -> None:
    for k, (B, S, Q, K, A) in enumerate([(3, 5, 4, 6, 7), (1, 1, 2, 3, 2), (4, 7, 5, 5, 3)]):
        g = _gen(6000 + k)
        q = torch.randn(B, Q, generator=g, dtype=torch.float64)
        keys = torch.randn(B, S, K, generator=g, dtype=torch.float64)
        same = torch.randn(B, S, Q, generator=g, dtype=torch.float64)
        p = _params(Q, K, A, g)          # every parameter, whatever the kind asks for
        for kind in KINDS:
            kk = same if kind in ("dot", "cosine") else keys
            expected = _reference_scores(q, kk, kind, p)
            before = {"query": q.clone(), "keys": kk.clone(), **{f"params[{n!r}]": t.clone() for n, t in p.items()}}
            call = f"attention_scores(query, keys, {kind!r}, params) with B = {B}, S = {S}"
            scores = _call(attention_scores, q, kk, kind, p, what=call, hint=SCORE_HINTS[kind])
            _unchanged(before, {"query": q, "keys": kk, **{f"params[{n!r}]": t for n, t in p.items()}},
                       f"attention_scores({kind!r})")
            check_shape(scores, (B, S), f"the {kind} score tensor for B = {B}, S = {S}",
                        hint="one score per source position; squeeze only the last axis (squeeze(-1)): a "
                             "batch or a source of one must keep its axis")
            check_true(scores.dtype == torch.float64,
                       f"the {kind} scores are {scores.dtype} for float64 query and keys", hint=DTYPE_HINT)
            check_close(scores, expected, f"the {kind} score tensor in case {k}", **TOL, hint=SCORE_HINTS[kind])
            # keys as the model passes them: a non-contiguous view (pad_packed_sequence's output)
            nc = _call(attention_scores, q, _noncontiguous(kk), kind, p,
                       what=f"{call}, keys a non-contiguous view",
                       hint="keys from pad_packed_sequence(..., batch_first=True) are a non-contiguous view: "
                            "use reshape or @ (matmul), not view")
            check_close(nc, expected, f"the {kind} score tensor for non-contiguous keys", **TOL)
            # float32 in, float32 out
            p32 = {n: t.float() for n, t in p.items()}
            s32 = _call(attention_scores, q.float(), kk.float(), kind, p32, what=f"{call} in float32",
                        hint=SCORE_HINTS[kind])
            check_true(s32.dtype == torch.float32, f"the {kind} scores are {s32.dtype} for float32 query and keys",
                       hint=DTYPE_HINT)
            check_close(s32, expected, f"the float32 {kind} score tensor in case {k}", **TOL32)
            # extremes: a query 1e4 times larger; a zero query and a zero key
            big = _call(attention_scores, q * 1e4, kk, kind, p, what=f"{call}, the query times 1e4",
                        hint="large inputs must not overflow")
            check_close(big, _reference_scores(q * 1e4, kk, kind, p), f"the {kind} score tensor for a query "
                        "scaled by 1e4", **TOL, hint="the additive score saturates (tanh is +-1), the cosine score "
                        "ignores the query's length")
            zq, zk = q.clone(), kk.clone()
            zq[0] = 0.0
            zk[:, 0] = 0.0
            zero = _call(attention_scores, zq, zk, kind, p, what=f"{call}, a zero query and a zero key",
                         hint="a zero vector has norm 0: clamp the norms away from 0 before dividing")
            check_close(zero, _reference_scores(zq, zk, kind, p), f"the {kind} score tensor for a zero query "
                        "and a zero key", **TOL, hint="a zero vector has norm 0: clamp the norms away from 0 "
                        "(.clamp_min(1e-8)) before dividing, and its cosine score is 0")
        cos = attention_scores(q, same, "cosine", dict(p, beta=torch.tensor(1.0, dtype=torch.float64)))
        check_true(bool(cos.abs().max() <= 1 + 1e-9), "a cosine score with beta = 1 lies outside [-1, 1]",
                   hint="divide by both norms: cos(q, k) = q . k / (|q| |k|)")
        scaled = attention_scores(q * 7.0, same, "cosine", p)
        check_close(scaled, attention_scores(q, same, "cosine", p), "the cosine score tensor of a scaled query",
                    **TOL, hint="cosine similarity ignores the vectors' lengths")
    try:
        attention_scores(torch.zeros(1, 2), torch.zeros(1, 3, 2), "scaled-banana", {})
    except ValueError:
        pass
    else:
        check_true(False, "an unknown score kind raised no ValueError", hint="end with raise ValueError(...)")
    # parameters as the model holds them (nn.Parameter); gradients reach query, keys and the kind's parameters
    for kind in KINDS:
        g = _gen(6050)
        p = {n: nn.Parameter(t) for n, t in _params(3, 4, 5, g).items()}
        q = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
        keys = torch.randn(2, 4, 3 if kind in ("dot", "cosine") else 4, generator=g, dtype=torch.float64,
                           requires_grad=True)
        scores = _call(attention_scores, q, keys, kind, p, what=f"attention_scores(query, keys, {kind!r}, params) "
                       "with inputs that require gradients", hint=INPLACE_HINT)
        check_close(scores, _reference_scores(q, keys, kind, p), f"the {kind} score tensor for nn.Parameter "
                    "parameters", **TOL)
        check_true(scores.requires_grad, f"the {kind} scores carry no gradient",
                   hint="no .detach(), .item(), torch.no_grad() or torch.tensor(...) around the result")
        scores.sum().backward()
        missing = [n for n in ("query", "keys", *OWN_PARAMS[kind])
                   if {"query": q, "keys": keys, **p}[n].grad is None]
        check_true(not missing, f"no gradient reached {', '.join(missing)} through the {kind} scores",
                   hint="compute the scores from the tensors you are given, with tensor operations")
    test_differential("attention_scores", attention_scores)


# ---------------------------------------------------------------- exercise 2: masked softmax, context
NAN_HINT = ("NaN or inf weights: exp() of a large score overflows (use torch.softmax over dim=-1, which "
            "subtracts each row's maximum), and inf * 0 or -inf * 0 is NaN (set padded scores to -inf with "
            "masked_fill, do not multiply by the mask); every row here has a real position")
AXIS_HINT = "take the softmax over the source positions: dim=-1 (the last axis); dim=0 is the batch"
SUM_HINT = ("softmax over the source positions (dim=-1) after setting the padded scores to -inf: zeroing "
            "padded weights after the softmax leaves rows that sum to less than 1")
ZERO_HINT = "set the padded scores to -inf before the softmax: scores.masked_fill(~mask, float('-inf'))"


def _check_weights(weights, scores, mask, what: str) -> None:
    """The checks of the weights, in the order that names the cause: shape, axis, finite, row sums,
    exact zeros at padding."""
    B, S = scores.shape
    check_shape(weights, (B, S), f"the weight matrix {what}", hint="one weight per source position, (B, S)")
    rows, cols = weights.detach().sum(-1), torch.nan_to_num(weights.detach()).sum(0)
    ones = lambda n: torch.ones(n, dtype=rows.dtype)  # noqa: E731
    if B > 1 and bool(mask.any(0).all()) and torch.allclose(cols, ones(S)) and not torch.allclose(rows, ones(B)):
        check_true(False, f"the weights {what} sum to 1 over the batch axis (down each column), not over the "
                          "source positions (along each row)", hint=AXIS_HINT)
    check_finite(weights, f"the weight matrix {what}", hint=NAN_HINT)
    check_close(rows, ones(B), f"the sum of each row of weights {what}", atol=1e-6 if rows.dtype == torch.float32
                else 1e-12, hint=SUM_HINT)
    check_true(bool((weights[~mask] == 0).all()), f"a weight at a padded position {what} is not exactly 0",
               hint=ZERO_HINT)


def test_attend(attend) -> None:
    cases = [(4, 6, 3, "trailing"), (1, 1, 2, "trailing"), (3, 5, 7, "trailing"), (1, 4, 1, "trailing"),
             (5, 9, 4, "hole")]
    for k, (B, S, D, pattern) in enumerate(cases):
        g = _gen(6100 + k)
        scores = torch.randn(B, S, generator=g, dtype=torch.float64) * 3
        values = torch.randn(B, S, D, generator=g, dtype=torch.float64)
        lengths = torch.randint(1, S + 1, (B,), generator=g)
        lengths[0] = S
        mask = torch.arange(S)[None] < lengths[:, None]
        if pattern == "hole":                # a masked position between real ones
            mask[1:, 1] = False
            mask[1:, 2:] = True
        what = f"for B = {B}, S = {S}, D = {D}" + (", a mask with a hole" if pattern == "hole" else "")
        before = {"scores": scores.clone(), "mask": mask.clone(), "values": values.clone()}
        context, weights = _call(attend, scores, mask, values, what=f"attend(scores, mask, values) {what}",
                                 hint="scores (B, S), mask (B, S) bool, values (B, S, D) -> (context, weights)")
        _unchanged(before, {"scores": scores, "mask": mask, "values": values}, "attend")
        check_shape(weights, (B, S), f"the weight matrix {what}", hint="one weight per source position, (B, S)")
        check_shape(context, (B, D), f"the context {what}",
                    hint="sum over the source positions only (dim=1); squeeze no other axis: B, S or D may be 1")
        check_true(weights.dtype == torch.float64 and context.dtype == torch.float64,
                   f"attend returns {weights.dtype} weights and a {context.dtype} context for float64 inputs",
                   hint=DTYPE_HINT)
        _check_weights(weights, scores, mask, what)
        expected = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        check_close(weights, expected, f"the weight matrix in case {k}", **TOL, hint=ZERO_HINT)
        check_close(context, torch.einsum("bs,bsd->bd", expected, values), f"the context in case {k}", **TOL,
                    hint="the context is the weighted sum of the values: (weights.unsqueeze(-1) * values).sum(1)")
        # gradients reach scores and values, and none reaches a padded value
        s_grad, v_grad = scores.clone().requires_grad_(), values.clone().requires_grad_()
        context, weights = _call(attend, s_grad, mask, v_grad, what=f"attend {what}, inputs that require "
                                 "gradients", hint=INPLACE_HINT)
        (context.sum() + (weights * torch.arange(S, dtype=weights.dtype)).sum()).backward()
        check_true(s_grad.grad is not None and v_grad.grad is not None, "no gradient reached the scores or the "
                   "values through attend", hint="no .detach(), torch.no_grad() or torch.tensor(...) inside")
        check_true(bool((v_grad.grad[~mask] == 0).all()), "a padded value got a gradient: its weight is not 0",
                   hint=ZERO_HINT)
        # extremes: scores of +-1e4 at real positions, 1e6 at padded ones; real scores near -3e4
        huge = (torch.randn(B, S, generator=g, dtype=torch.float64) * 1e4).masked_fill(~mask, 1e6)
        big_context, big_weights = _call(attend, huge, mask, values, what=f"attend {what}, scores of size 1e4",
                                         hint=NAN_HINT)
        _check_weights(big_weights, huge, mask, f"{what}, scores of size 1e4")
        big_expected = torch.softmax(huge.masked_fill(~mask, float("-inf")), dim=-1)
        check_close(big_weights, big_expected, "the weight matrix for scores of size 1e4", **TOL, hint=NAN_HINT)
        # every real score far below any finite "large negative" mask constant (-1e4, -1e9 added...): the
        # padded positions must still get weight 0
        low = (-3e4 + torch.randn(B, S, generator=g, dtype=torch.float64) * 1e3).masked_fill(~mask, 5.0)
        _, low_weights = _call(attend, low, mask, values, what=f"attend {what}, real scores near -3e4")
        _check_weights(low_weights, low, mask, f"{what}, real scores near -3e4")
        check_close(low_weights, torch.softmax(low.masked_fill(~mask, float("-inf")), dim=-1),
                    "the weight matrix when every real score is near -3e4", **TOL,
                    hint="mask with -inf (masked_fill(~mask, float('-inf'))): a finite constant such as -1e4 is not "
                         "below every score, and a padded position then keeps weight")
        # float32 in, float32 out
        c32, w32 = _call(attend, scores.float(), mask, values.float(), what=f"attend {what} in float32",
                         hint=DTYPE_HINT)
        check_true(w32.dtype == torch.float32 and c32.dtype == torch.float32,
                   f"attend returns {w32.dtype} weights and a {c32.dtype} context for float32 inputs",
                   hint=DTYPE_HINT)
        check_close(w32, expected, "the float32 weight matrix", **TOL32)
    test_differential("attend", attend)


# ---------------------------------------------------------------- exercise 3: the attention decoder
def _reference_encode(model, src, src_len):
    packed = pack_padded_sequence(model.src_embedding(src), src_len, batch_first=True, enforce_sorted=False)
    states, h_n = model.encoder(packed)
    states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
    mask = torch.arange(src.shape[1])[None] < src_len[:, None]
    d = torch.tanh(model.bridge(torch.cat([h_n[0], h_n[1]], -1)))[None]
    return (states, model.score.keys(states), mask), d


def _reference_step(model, prev, d, memory):
    states, keys, mask = memory
    scores = _reference_scores(d[0], keys, model.score.kind, model.score.params())
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
    c = torch.einsum("bs,bsd->bd", w, states)
    out, d = model.decoder(torch.cat([model.tgt_embedding(prev), c], -1)[:, None], d)
    return model.out(torch.cat([out[:, 0], c], -1)), d, w


def _reference(model, src, src_len, dec_in):
    memory, d = _reference_encode(model, src, src_len)
    logits, all_weights = [], []
    for t in range(dec_in.shape[1]):
        step_logits, d, w = _reference_step(model, dec_in[:, t], d, memory)
        logits.append(step_logits)
        all_weights.append(w)
    return torch.stack(logits, 1), torch.stack(all_weights, 1)


MODEL_HINT = ("score with the previous decoder state d_{i-1} as the query, mask padding, feed "
              "[embedding(y_{i-1}); c_i] to the GRU, and out([output; c_i])")
RAISE_HINT = ("squeeze only the axis you mean (output[:, 0]): a batch or a source of one keeps its axis; pack "
              "with enforce_sorted=False, since source lengths come in any order")


def test_attn_seq2seq(AttnSeq2Seq) -> None:
    cases = [(kind, 3, 6, 4, [6, 2, 4]) for kind in KINDS] + [("additive", 1, 1, 1, [1]), ("dot", 2, 5, 3, [3, 5])]
    for k, (kind, B, S, T, lengths) in enumerate(cases):
        g = _gen(6200 + k)
        torch.manual_seed(6200 + k)
        model = AttnSeq2Seq(14, 11, 5, 4, kind=kind).double().eval()
        src = torch.randint(4, 14, (B, S), generator=g)
        src_len = torch.tensor(lengths)
        src[torch.arange(S)[None] >= src_len[:, None]] = 0
        dec_in = torch.randint(4, 11, (B, T), generator=g)
        what = f"{kind} attention, B = {B}, source lengths {lengths}, T = {T}"
        before = {"src": src.clone(), "src_len": src_len.clone(), "dec_in": dec_in.clone()}
        with torch.no_grad():
            expected, weights = _reference(model, src, src_len, dec_in)
            logits = _call(model, src, src_len, dec_in, what=f"forward with {what}", hint=RAISE_HINT)
            _unchanged(before, {"src": src, "src_len": src_len, "dec_in": dec_in}, "forward")
            check_true(not model.training, "forward switched the model to training mode",
                       hint="do not call self.train() or self.eval() inside the model")
            check_shape(logits, (B, T, 11), f"the tensor of logits with {what}")
            check_true(logits.dtype == torch.float64, f"forward returns {logits.dtype} logits for a float64 model "
                       f"(model.double()), with {what}", hint=DTYPE_HINT)
            check_close(logits, expected, f"the tensor of teacher-forced logits with {what}", **TOL, hint=MODEL_HINT)
            memory, state = _call(model.encode, src, src_len, what=f"encode with {what}", hint=RAISE_HINT)
            check_true(state.dtype == torch.float64, f"encode returns a {state.dtype} state for a float64 model",
                       hint=DTYPE_HINT)
            _, _, w = _call(model.step, dec_in[:, 0], state, memory, return_weights=True,
                            what=f"step(..., return_weights=True) with {what}", hint=RAISE_HINT)
            check_close(w, weights[:, 0], f"the weight matrix of the first step with {what}", **TOL,
                        hint="return the weights attend gives, (B, S)")
            short = int(src_len.argmin())
            check_true(bool((w[short, int(src_len[short]):] == 0).all()),
                       f"{kind}: a source of {int(src_len[short])} positions gets a weight beyond its length",
                       hint="the mask is True at positions < src_len: torch.arange(S)[None, :] < src_len[:, None]")
            # a given state, not only the one encode returns
            given = torch.randn(1, B, 4, generator=g, dtype=torch.float64)
            out, new_state = _call(model.step, dec_in[:, 0], given, memory, what=f"step from a given state with "
                                   f"{what}", hint=RAISE_HINT)
            ref_logits, ref_state, _ = _reference_step(model, dec_in[:, 0], given, _reference_encode(model, src,
                                                                                                    src_len)[0])
            check_close(out, ref_logits, f"the step's logits from a given state with {what}", **TOL,
                        hint="step must use the state it is given as the query and the GRU's state")
            check_close(new_state, ref_state, f"the step's new state from a given state with {what}", **TOL)
            wider = torch.cat([src, torch.zeros(B, 3, dtype=torch.long)], 1)
            check_close(model(wider, src_len, dec_in), expected, f"the tensor of logits with extra source padding, "
                        f"{what}", **TOL, hint="pad_packed_sequence(..., total_length=src.shape[1])")
        # gradients reach every parameter; the training mode stays
        model.train()
        logits = model(src, src_len, dec_in)
        check_true(model.training, "forward switched the model to evaluation mode",
                   hint="do not call self.eval() inside the model")
        check_true(logits.requires_grad, f"forward's logits carry no gradient ({what})",
                   hint="no torch.no_grad() or .detach() in encode, step or forward (greedy_decode adds "
                        "no_grad itself)")
        logits.sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        check_true(not missing, f"no gradient reached {', '.join(missing)} ({what})",
                   hint="use every layer: both directions' final states go through the bridge, the keys through "
                        "self.score.keys, the parameters through self.score.params()")
        if k not in (0, 4):
            continue
        # float32 in, float32 out
        model32 = model.float().eval()
        with torch.no_grad():
            out32 = model32(src, src_len, dec_in)
            check_true(out32.dtype == torch.float32, f"forward returns {out32.dtype} logits for a float32 model",
                       hint=DTYPE_HINT)
            check_close(out32, _reference(model32, src, src_len, dec_in)[0], f"the float32 tensor of logits with "
                        f"{what}", **TOL32)
    test_differential("AttnSeq2Seq", AttnSeq2Seq)


# ---------------------------------------------------------------- the trained model (exercise 3)
def test_trained_dates(namespace: dict) -> None:
    """The notebook's trained ``date_model`` reaches the bar; a shortfall caused by a wrong
    ``attention_scores`` or ``attend`` is charged there (see ``judge_experiment``)."""
    from seqcourse.env import get_profile

    guard.verify()
    budget = get_profile().budget("06-attention")
    model, shortfall = namespace.get("date_model"), None
    if model is None:
        shortfall = "there is no trained date_model: the training cell stopped before it finished"
    else:
        acc = held_out_exact_match(model, budget, namespace["source_vocab"], namespace["target_vocab"])
        if acc < budget.min_exact_match:
            shortfall = (f"exact match on held-out dates is {acc:.4f}, below this profile's bar of "
                         f"{budget.min_exact_match}")
    own = EXERCISES.learners(namespace, "attention_scores").get("attention_scores")
    weights = EXERCISES.learners(namespace, "attend").get("attend")
    judge_experiment(
        shortfall, "AttnSeq2Seq", lambda: test_attn_seq2seq(namespace["AttnSeq2Seq"]),
        {"attention_scores": lambda: test_attention_scores(own),
         "attend": lambda: test_attend(weights)})


# ---------------------------------------------------------------- differential tests
# Every exercise against its reference on generated inputs within Graded on (see _differential.py);
# EXAMPLES: how many inputs each answer tries (bench/differential_examples.py measures what each needs).
EXAMPLES = {"attention_scores": 80, "attend": 25, "AttnSeq2Seq": 20}
KINDS = ("dot", "general", "additive", "cosine")


@st.composite
def _score_cases(draw):
    B, S, Q, K, A = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 4)),
                     draw(st.integers(1, 5)), draw(st.integers(1, 4)))
    kind, dtype, g = pick(draw, KINDS), pick(draw, DTYPES), gen(draw(seeds()))
    if kind in ("dot", "cosine"):
        K = Q
    scale = pick(draw, (0.0, 1.0, 1e4))
    query = randn(g, B, Q, dtype=dtype, scale=scale)
    keys = randn(g, S, B, K, dtype=dtype).transpose(0, 1)          # a non-contiguous view, as unpacked
    if draw(st.booleans()):
        keys = keys.clone()
        keys[:, 0] = 0                                             # a zero key
    params = {"W": nn.Parameter(randn(g, Q, K, dtype=dtype, scale=0.5)),
              "W_q": nn.Parameter(randn(g, Q, A, dtype=dtype, scale=0.5)),
              "W_k": nn.Parameter(randn(g, K, A, dtype=dtype, scale=0.5)),
              "v": nn.Parameter(randn(g, A, dtype=dtype, scale=0.5)), "beta": nn.Parameter(torch.tensor(5.0, dtype=dtype))}
    query, keys = with_grad((query, keys.detach()), dtype)
    return Case((query, keys, kind, params), f"{kind}, B={B}, S={S}, Q={Q}, K={K}, {dtype}, a query of size {scale:g}",
                grads=(0, 1) if dtype == torch.float64 else ())


@st.composite
def _attend_cases(draw):
    B, S, D = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    dtype, g = pick(draw, DTYPES), gen(draw(seeds()))
    n = random_lengths(g, B, S)
    mask = torch.arange(S)[None] < n[:, None]
    if S > 2 and draw(st.booleans()):                              # a masked position between real ones
        mask[:, 1] = False
        mask[:, 0] = True
    level = pick(draw, (1.0, 1e4, -3e4))
    scores = randn(g, B, S, dtype=dtype, scale=1.0 if level == 1.0 else 1e3) + (0 if level == 1.0 else level)
    scores = scores.masked_fill(~mask, 1e6 if level == 1e4 else 5.0)
    values = randn(g, B, S, D, dtype=dtype)
    scores, values = with_grad((scores, values), dtype)
    return Case((scores, mask, values), f"B={B}, S={S}, D={D}, {dtype}, mask {mask.int().tolist()}, scores near "
                f"{level:g}", grads=(0, 2) if dtype == torch.float64 else ())


@st.composite
def _attn_model_cases(draw):
    Vs, Vt, E, H = draw(st.integers(5, 8)), draw(st.integers(5, 8)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kind = pick(draw, KINDS)
    B, S, extra, g = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(0, 2)), gen(draw(seeds()))
    n = random_lengths(g, B, S)
    src = torch.randint(4, Vs, (B, S + extra), generator=g)
    src[torch.arange(S + extra)[None] >= n[:, None]] = 0
    dec_in = torch.randint(2, Vt, (B, draw(st.integers(1, 3))), generator=g)
    double, given = draw(st.booleans()), draw(st.booleans())
    return Case(((Vs, Vt, E, H, kind), src, n, dec_in, double, given, draw(seeds())),
                f"AttnSeq2Seq({Vs}, {Vt}, {E}, {H}, kind={kind!r}){'.double()' if double else ''} on sources "
                f"{src.tolist()} (lengths {n.tolist()}), decoder inputs of length {dec_in.shape[1]}"
                + (", a step from a given state" if given else ""))


def _attn_run(cls, ref_cls):
    """Everything the model computes on one case: encode, forward, a step (with its weights) and
    (float64) the gradient of the logits with respect to every parameter."""
    def run(sizes, src, src_len, dec_in, double, given, seed):
        state = module_call(ref_cls, sizes, seed).state_dict()
        model = module_call(cls, sizes, seed, state)
        model = model.double() if double else model
        memory, d0 = model.encode(src, src_len)
        logits = model(src, src_len, dec_in)
        if given:
            d0 = torch.randn(d0.shape, generator=gen(5), dtype=torch.float64).to(d0.dtype).tanh()
        step = model.step(dec_in[:, 0], d0, memory, return_weights=True)
        grads = []
        if double:
            params = [p for _, p in sorted(model.named_parameters())]
            weights = torch.randn(logits.shape, generator=gen(3), dtype=torch.float64)
            grads = [torch.zeros(1) if g is None else g
                     for g in torch.autograd.grad((logits * weights).sum(), params, allow_unused=True)]
        return memory, d0, logits, step, grads, model.training
    return run


def test_differential(name: str, answer) -> None:
    """``name``'s answer against the reference on generated inputs (see EXAMPLES)."""
    reference = EXERCISES.reference(name)
    wraps = {"attention_scores": (_score_cases(), lambda f: f), "attend": (_attend_cases(), lambda f: f),
             "AttnSeq2Seq": (_attn_model_cases(), lambda f: _attn_run(f, reference))}
    cases, wrap = wraps[name]
    differential(wrap(answer), wrap(reference), cases, name, EXAMPLES[name])
