"""Hidden tests of lesson 07, "After attention: the recurrences of 2024".

Which test covers which class of mistake, per exercise ("n/a" says why a class does not apply).
Every case is stated in the exercise's *Graded on* paragraph, and the visible tests try a small
instance of each class. Grading runs on the CPU: the dtype cases also catch a tensor made without
the input's dtype and device (``torch.zeros(B, T, H)`` is float32 on the CPU whatever the input is).

| exercise | dtype | input | edge | extreme | side-effect |
|---|---|---|---|---|---|
| linear_attention | test_linear_attention: float64 in, float64 outputs and state (both forms); float32 too | test_linear_attention: state=None and a given (S, z), as a tuple and as a list; a sequence run in two chunks equals one run | test_linear_attention: B = 1, T = 1, d_k != d_v, d_k = 1, odd T | test_linear_attention: queries and keys near -20 (features near 1e-9: no eps in the normaliser) and near 1e3 | test_linear_attention: q, k, v and the given state unchanged; gradcheck through q, k and v for both forms |
| mingru | test_mingru: float64 in, float64 out (loop and scan); float32 too | test_mingru: h0=None (zeros) and a given positive h0 | test_mingru: T = 1, B = 1, H = 1, T = 1024 | test_mingru: gate and candidate pre-activations of +-1e3 (saturated gates): finite and equal to the loop | test_mingru: gate, cand and h0 unchanged; the scan's gradients equal the loop's (T up to 1024), gradients reach h0 |
| slstm_cell | test_slstm_cell: float64 in, float64 h, c, n, m (state=None and given); float32 too | test_slstm_cell: state=None (m = -inf) and a given (h, c, n, m), as a tuple and as a list | test_slstm_cell: B = 1, E != H, E = H, H = 1 | test_slstm_cell: pre-activations of 1e3 and 1e4 (exp overflows without the stabiliser), an input gate of -1e3 from a fresh state, a forget gate of -1e3 after an input gate of 1e3 (float64 and float32) | test_slstm_cell: x, the state and the weights unchanged; gradcheck through x, h, c, n and the weights |
| match_hidden | test_match_hidden: float64 models count like float32 ones (numbers, not bytes) | test_match_hidden: models with frozen parameters (not counted), with a shared weight (counted once), a float target | test_match_hidden: max_hidden = 1, ties (the smaller H), an exact hit, the answer max_hidden itself | test_match_hidden: a target of 0 (H = 1) and of 1e12 (H = max_hidden) | test_match_hidden: torch's random state unchanged, at most 40 calls of make_model for max_hidden = 1024 |

The experiment (section 4) is graded by test_experiment, charged to match_hidden: a shortfall
caused by a mingru or slstm_cell that fails its own tests is charged there instead.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from seqcourse import guard
from seqcourse.checks import CheckError, check_close, check_finite, check_shape, check_true
from seqcourse_hidden._differential import (
    DTYPES,
    TOLERANCE,
    Case,
    differential,
    gen,
    pick,
    randn,
    seeds,
    with_grad,
)
from seqcourse_hidden._isolate import Exercises, judge_experiment
from seqcourse_hidden._support import call, check_unchanged, snapshot

# Each graded cell isolates its exercise: the other exercises' answers are the references here.
EXERCISES = Exercises("07-modern-rnn")

TOL = TOLERANCE[torch.float64]     # the tolerances every lesson states
TOL32 = TOLERANCE[torch.float32]
DTYPE_HINT = ("make no new tensor with a fixed dtype: torch.zeros(B, T, H) is float32 whatever the input is; "
              "use x.new_zeros(...) or torch.zeros(..., dtype=x.dtype, device=x.device), or collect the steps "
              "in a list and torch.stack them")
INPLACE_HINT = ("work on new tensors: S = S + ..., c = f * c + ...; S += ..., c.mul_(...) or x[...] = ... change "
                "the caller's tensors")
_call = partial(call, hint=DTYPE_HINT)   # this lesson's exceptions are most often a dtype



def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, g, dtype=torch.float64, scale=1.0):
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


def _dtype(t, want: torch.dtype, name: str) -> None:
    check_true(torch.is_tensor(t) and t.dtype == want,
               f"{name} is {getattr(t, 'dtype', type(t).__name__)}, but the inputs were {want}", hint=DTYPE_HINT)


def _gradcheck(fn, inputs, what: str) -> None:
    try:
        ok = torch.autograd.gradcheck(fn, inputs, raise_exception=False)
    except RuntimeError as exc:   # e.g. an in-place operation on a tensor autograd needs
        raise CheckError(f"backward through {what} failed: {str(exc).splitlines()[0]}\n"
                         "Hint: no in-place operations on tensors autograd needs; do not detach") from None
    check_true(ok, f"the gradients through {what} disagree with finite differences",
               hint="keep every step in the autograd graph: no .detach(), .item(), torch.no_grad() or in-place edits")


# ---------------------------------------------------------------- exercise 1: linear attention
def _phi(x):
    return F.elu(x) + 1


def _ref_parallel(q, k, v):
    scores = _phi(q) @ _phi(k).transpose(1, 2)
    T = q.shape[1]
    scores = scores * torch.ones(T, T, dtype=q.dtype).tril()
    return (scores @ v) / scores.sum(-1, keepdim=True)


def _ref_recurrent(q, k, v, state=None):
    B, T, d_k = k.shape
    S, z = state if state is not None else (q.new_zeros(B, d_k, v.shape[-1]), q.new_zeros(B, d_k))
    out = []
    for t in range(T):
        fq, fk = _phi(q[:, t]), _phi(k[:, t])
        S = S + fk[:, :, None] * v[:, t, None, :]
        z = z + fk
        out.append(torch.einsum("bk,bkv->bv", fq, S) / (fq * z).sum(-1, keepdim=True))
    return torch.stack(out, 1), (S, z)


def _pair(result, what):
    check_true(isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], (tuple, list))
               and len(result[1]) == 2, f"{what} should return (outputs, (S, z))")
    return result


LA_SHAPES = [(2, 5, 3, 4), (1, 1, 2, 3), (3, 7, 4, 4), (1, 6, 1, 2)]   # (B, T, d_k, d_v)


def test_linear_attention(linear_attention_parallel, linear_attention_recurrent) -> None:
    for n, (B, T, d_k, d_v) in enumerate(LA_SHAPES):
        g = _gen(7000 + n)
        q, k, v = _randn(B, T, d_k, g=g), _randn(B, T, d_k, g=g), _randn(B, T, d_v, g=g)
        label = f"B={B}, T={T}, d_k={d_k}, d_v={d_v}"
        before = snapshot(q=q, k=k, v=v)
        want = _ref_parallel(q, k, v)
        par = _call(linear_attention_parallel, q, k, v, what=f"linear_attention_parallel ({label})")
        check_unchanged(before, {"q": q, "k": k, "v": v}, "linear_attention_parallel", hint=INPLACE_HINT)
        check_shape(par, (B, T, d_v), f"the parallel form's output for {label}",
                    hint="(B, T, d_v): one output per query position; squeeze no axis (B = 1, T = 1 keep theirs)")
        _dtype(par, torch.float64, "the parallel form's output")
        check_close(par, want, f"the parallel form's output for {label}", **TOL,
                    hint="mask the future (s > t) in phi(q) phi(k)^T, then divide each row of the product with v "
                         "by the sum of that (masked) row; the diagonal s = t is kept")
        out, (S, z) = _pair(_call(linear_attention_recurrent, q, k, v,
                                  what=f"linear_attention_recurrent ({label})"), "linear_attention_recurrent")
        check_unchanged(before, {"q": q, "k": k, "v": v}, "linear_attention_recurrent", hint=INPLACE_HINT)
        check_shape(out, (B, T, d_v), f"the recurrent form's output for {label}")
        check_shape(S, (B, d_k, d_v), f"the state S for {label}",
                    hint="S_t = S_{t-1} + phi(k_t) v_t^T is (d_k, d_v) per sequence: phi(k) as a column, v as a row")
        check_shape(z, (B, d_k), f"the normaliser z for {label}")
        _dtype(out, torch.float64, "the recurrent form's output")
        _dtype(S, torch.float64, "the state S")
        check_close(out, want, f"the recurrent form's output for {label}", **TOL,
                    hint="update S and z with step t first, then read: phi(q_t)^T S_t / phi(q_t)^T z_t")
        rS, rz = _ref_recurrent(q, k, v)[1]
        check_close(S, rS, f"the final state S for {label}", **TOL, hint="return the state after the last step")
        check_close(z, rz, f"the final normaliser z for {label}", **TOL)
        # a given state: the second half of the sequence from the first half's state
        if T >= 2:
            cut = T // 2
            S0, z0 = _ref_recurrent(q[:, :cut], k[:, :cut], v[:, :cut])[1]
            given = (S0, z0) if n % 2 == 0 else [S0, z0]
            before_state = snapshot(S=S0, z=z0)
            rest, (S2, z2) = _pair(_call(linear_attention_recurrent, q[:, cut:], k[:, cut:], v[:, cut:], given,
                                         what=f"linear_attention_recurrent from a given state ({label})"),
                                   "linear_attention_recurrent")
            check_unchanged(before_state, {"S": S0, "z": z0}, "linear_attention_recurrent", hint=INPLACE_HINT)
            check_close(rest, want[:, cut:], f"the recurrent form's output from a given {type(given).__name__} "
                        f"state (S, z) ({label})", **TOL,
                        hint="start from the state you are given: the second half of a sequence, run from the first "
                             "half's state, gives the same outputs as the whole sequence")
            check_close(S2, rS, f"the final state S after two chunks ({label})", **TOL)
    # float32 stays float32
    g = _gen(7010)
    q, k, v = (torch.randn(2, 4, 3, generator=g) for _ in range(3))
    want = _ref_parallel(q.double(), k.double(), v.double())
    par = linear_attention_parallel(q, k, v)
    out, (S, _) = linear_attention_recurrent(q, k, v)
    _dtype(par, torch.float32, "the parallel form's output for float32 inputs")
    _dtype(out, torch.float32, "the recurrent form's output for float32 inputs")
    check_close(out, want, "the recurrent form's output for float32 inputs", **TOL32)
    # extremes: tiny features (inputs near -20: phi ~ 1e-9) and large ones (inputs near 1e3)
    for shift, what in ((-20.0, "queries and keys near -20 (features near 1e-9)"),
                        (1e3, "queries and keys near 1e3 (features near 1e3)")):
        g = _gen(7020 + int(shift))
        q, k = _randn(2, 6, 3, g=g) + shift, _randn(2, 6, 3, g=g) + shift
        v = _randn(2, 6, 2, g=g)
        want = _ref_parallel(q, k, v)
        par = linear_attention_parallel(q, k, v)
        check_finite(par, f"the parallel form's output for {what}")
        check_close(par, want, f"the parallel form's output for {what}", **TOL,
                    hint="divide by the masked row sums exactly: an eps added to the normaliser (as some code "
                         "does) changes the result when the features are tiny")
        out = linear_attention_recurrent(q, k, v)[0]
        check_finite(out, f"the recurrent form's output for {what}")
        check_close(out, want, f"the recurrent form's output for {what}", **TOL,
                    hint="divide by phi(q_t)^T z_t exactly, with no eps added")
    # gradients through q, k and v, both forms
    g = _gen(7050)
    inputs = tuple(_randn(2, 3, d, g=g).requires_grad_() for d in (2, 2, 3))
    _gradcheck(lambda q, k, v: linear_attention_parallel(q, k, v), inputs, "linear_attention_parallel")
    _gradcheck(lambda q, k, v: linear_attention_recurrent(q, k, v)[0], inputs, "linear_attention_recurrent")
    test_differential("linear_attention_recurrent", linear_attention_recurrent)
    test_differential("linear_attention_parallel", linear_attention_parallel)


# ---------------------------------------------------------------- exercise 2: minGRU
def _g(x):
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def _ref_mingru(gate, cand, h0=None):
    z, ht = torch.sigmoid(gate), _g(cand)
    h = h0 if h0 is not None else gate.new_zeros(gate.shape[0], gate.shape[2])
    out = []
    for t in range(gate.shape[1]):
        h = (1 - z[:, t]) * h + z[:, t] * ht[:, t]
        out.append(h)
    return torch.stack(out, 1)


MG_SHAPES = [(2, 5, 3), (1, 1, 4), (3, 1024, 2), (1, 7, 1)]   # (B, T, H)


def _grads(out, wrt, weights):
    return torch.autograd.grad((out * weights).sum(), wrt, allow_unused=True)


def test_mingru(mingru_loop, mingru_scan) -> None:
    for n, (B, T, H) in enumerate(MG_SHAPES):
        g = _gen(7100 + n)
        gate, cand = _randn(B, T, H, g=g, scale=2.0), _randn(B, T, H, g=g, scale=2.0)
        h0 = torch.rand(B, H, generator=g, dtype=torch.float64) + 0.1
        label = f"B={B}, T={T}, H={H}"
        for given in (None, h0):
            with_h0 = "a given h0" if given is not None else "h0=None"
            want = _ref_mingru(gate, cand, given)
            before = snapshot(gate=gate, cand=cand, h0=h0)
            for name, fn in (("mingru_loop", mingru_loop), ("mingru_scan", mingru_scan)):
                if name == "mingru_loop" and T > 64:
                    continue     # the loop at T = 1024 is graded through the gradients below
                out = _call(fn, gate, cand, given, what=f"{name}(gate, cand, {with_h0}) for {label}")
                check_unchanged(before, {"gate": gate, "cand": cand, "h0": h0}, name, hint=INPLACE_HINT)
                check_shape(out, (B, T, H), f"{name}'s states for {label}",
                            hint="(B, T, H): the state after every step; squeeze no axis")
                _dtype(out, torch.float64, f"{name}'s states")
                hint = ("h_t = (1 - z_t) h_{t-1} + z_t g(cand_t) with z_t = sigmoid(gate_t), from h0 (zeros when "
                        "None)" if name == "mingru_loop" else
                        "log h_t = a*_t + logcumsumexp(log b - a*)_t with a*_t = cumsum(log(1 - z))_t (the current "
                        "step included) and log b_t = log z_t + log g(cand_t); a given h0 enters as one more first "
                        "step with log a = 0 and log b = log h0, dropped from the result")
                check_close(out, want, f"{name}'s states for {label}, {with_h0}", **TOL, hint=hint)
        # gradients: the scan's equal the loop's, through gate, cand and h0 (T up to 1024)
        gate_r, cand_r, h0_r = (t.clone().requires_grad_() for t in (gate, cand, h0))
        weights = _randn(B, T, H, g=g)
        want = _grads(_ref_mingru(gate_r, cand_r, h0_r), (gate_r, cand_r, h0_r), weights)
        for name, fn in (("mingru_loop", mingru_loop), ("mingru_scan", mingru_scan)):
            leaves = tuple(t.clone().requires_grad_() for t in (gate, cand, h0))
            out = _call(fn, *leaves, what=f"{name} with gradients ({label})")
            check_true(out.requires_grad, f"{name}'s states carry no gradient",
                       hint="no torch.no_grad() or .detach(): training needs the gradients")
            got = _grads(out, leaves, weights)
            for what, a, b in zip(("gate", "cand", "h0"), got, want, strict=True):
                check_true(a is not None, f"no gradient reaches {what} through {name}",
                           hint="use every input in the computation, h0 included")
                check_close(a, b, f"the gradient of {name}'s states with respect to {what} ({label}, a given h0)",
                            atol=1e-9, rtol=1e-7, hint="the scan must equal the loop in values and in gradients: "
                            "compute everything with differentiable torch operations (no torch.no_grad(), .detach())")
    # float32 stays float32
    g = _gen(7110)
    gate, cand = torch.randn(2, 6, 3, generator=g), torch.randn(2, 6, 3, generator=g)
    for name, fn in (("mingru_loop", mingru_loop), ("mingru_scan", mingru_scan)):
        out = fn(gate, cand)
        _dtype(out, torch.float32, f"{name}'s states for float32 inputs")
        check_close(out, _ref_mingru(gate.double(), cand.double()), f"{name}'s states for float32 inputs", **TOL32)
    # extremes: saturated gates and large candidates
    for scale in (1e3, 1e4):
        g = _gen(7120 + int(scale))
        gate, cand = _randn(2, 40, 3, g=g, scale=scale), _randn(2, 40, 3, g=g, scale=scale)
        h0 = torch.rand(2, 3, generator=g, dtype=torch.float64) + 0.1
        want = _ref_mingru(gate, cand, h0)
        for name, fn in (("mingru_loop", mingru_loop), ("mingru_scan", mingru_scan)):
            out = fn(gate, cand, h0)
            check_finite(out, f"{name}'s states for pre-activations of size {scale:g}",
                         hint="log z = -softplus(-gate) and log(1 - z) = -softplus(gate): torch.log(torch.sigmoid(x)) "
                              "is log 0 = -inf once sigmoid rounds to 0")
            check_close(out, want, f"{name}'s states for pre-activations of size {scale:g} (saturated gates)",
                        atol=1e-10, rtol=1e-7, hint="use F.softplus and the given log_g; no log of a sigmoid")
    test_differential("mingru_scan", mingru_scan)
    test_differential("mingru_loop", mingru_loop)


# ---------------------------------------------------------------- exercise 3: the sLSTM cell
def _ref_slstm(x, state, w_ih, w_hh, bias):
    """The stabilised sLSTM step (sigmoid forget gate, exponential input gate)."""
    B, H = x.shape[0], w_hh.shape[1]
    if state is None:
        zero = x.new_zeros(B, H)
        state = (zero, zero, zero, torch.full_like(zero, float("-inf")))
    h, c, n, m = state
    gi, gf, gz, go = (x @ w_ih.T + h @ w_hh.T + bias).chunk(4, dim=1)
    log_f = F.logsigmoid(gf)
    m_new = torch.maximum(log_f + m, gi)
    i, f = torch.exp(gi - m_new), torch.exp(log_f + m - m_new)
    c = f * c + i * torch.tanh(gz)
    n = f * n + i
    return torch.sigmoid(go) * c / n, c, n, m_new


def _plain_h(x, h, c_true, n_true, w_ih, w_hh, bias):
    """The unstabilised step in float64 (exp(i) directly): its h must equal the stabilised one's."""
    gi, gf, gz, go = (x @ w_ih.T + h @ w_hh.T + bias).chunk(4, dim=1)
    c = torch.sigmoid(gf) * c_true + torch.exp(gi) * torch.tanh(gz)
    n = torch.sigmoid(gf) * n_true + torch.exp(gi)
    return torch.sigmoid(go) * c / n


SL_SHAPES = [(3, 4, 5), (1, 2, 3), (4, 6, 6), (2, 3, 1)]   # (B, E, H)
SL_HINT = ("m_t = max(log f_t + m_{t-1}, i~_t) with log f_t = logsigmoid(f~_t); i'_t = exp(i~_t - m_t), "
           "f'_t = exp(log f_t + m_{t-1} - m_t); c_t = f' c + i' tanh(z~), n_t = f' n + i', h_t = sigmoid(o~) c_t / n_t; "
           "the four blocks of the weights are in the order i, f, z, o")


def _weights(E, H, g, scale=0.5):
    return _randn(4 * H, E, g=g, scale=scale), _randn(4 * H, H, g=g, scale=scale), _randn(4 * H, g=g, scale=scale)


def _four(result, what):
    check_true(isinstance(result, tuple) and len(result) == 4, f"{what} should return the tuple (h, c, n, m)")
    return result


def test_slstm_cell(slstm_cell) -> None:
    for k, (B, E, H) in enumerate(SL_SHAPES):
        g = _gen(7200 + k)
        w_ih, w_hh, bias = _weights(E, H, g)
        x, x2 = _randn(B, E, g=g), _randn(B, E, g=g)
        label = f"B={B}, E={E}, H={H}"
        before = snapshot(x=x, weight_ih=w_ih, weight_hh=w_hh, bias=bias)
        got = _four(_call(slstm_cell, x, None, w_ih, w_hh, bias, what=f"slstm_cell(x, None, ...) for {label}"),
                    "slstm_cell")
        check_unchanged(before, {"x": x, "weight_ih": w_ih, "weight_hh": w_hh, "bias": bias}, "slstm_cell",
                        hint=INPLACE_HINT)
        want = _ref_slstm(x, None, w_ih, w_hh, bias)
        for name, a in zip("hcnm", got, strict=True):
            check_shape(a, (B, H), f"{name} for {label}", hint="every part of the state is (B, H)")
            _dtype(a, torch.float64, f"{name} with state=None")
        check_close(got[3], want[3], f"the stabiliser m after the first step from state=None ({label})", **TOL,
                    hint="state=None means h = c = n = 0 and m = -inf (no history yet), so m_1 = i~_1 and i'_1 = 1: "
                         "torch.full_like(h, float('-inf'))")
        for name, a, b in zip("hcn", got[:3], want[:3], strict=True):
            check_close(a, b, f"{name} after one step from state=None ({label})", **TOL, hint=SL_HINT)
        # a given state (a realistic one: one step further), as a tuple and as a list
        state = want if k % 2 == 0 else list(want)
        before = snapshot(x2=x2, **{name: t for name, t in zip("hcnm", want, strict=True)})
        got = _four(_call(slstm_cell, x2, state, w_ih, w_hh, bias,
                          what=f"slstm_cell from a given {type(state).__name__} state ({label})"), "slstm_cell")
        check_unchanged(before, {"x2": x2, **dict(zip("hcnm", want, strict=True))}, "slstm_cell", hint=INPLACE_HINT)
        want2 = _ref_slstm(x2, tuple(want), w_ih, w_hh, bias)
        for name, a, b in zip("hcnm", got, want2, strict=True):
            _dtype(a, torch.float64, f"{name} from a given state")
            check_close(a, b, f"{name} from a given {type(state).__name__} state ({label})", **TOL, hint=SL_HINT)
        # the float64 reference without the stabiliser gives the same h
        c_true, n_true = want[1] * torch.exp(want[3]), want[2] * torch.exp(want[3])
        check_close(got[0], _plain_h(x2, want[0], c_true, n_true, w_ih, w_hh, bias),
                    f"h against the unstabilised float64 reference ({label})", **TOL,
                    hint="the stabiliser rescales c and n by the same factor exp(-m_t), so h = o c / n is unchanged")
    # float32 stays float32
    g = _gen(7210)
    w = [t.float() for t in _weights(3, 4, g)]
    h, c, n, m = slstm_cell(torch.randn(2, 3, generator=g), None, *w)
    for name, t in zip("hcnm", (h, c, n, m), strict=True):
        _dtype(t, torch.float32, f"{name} for float32 inputs")
    # extremes: pre-activations of 1e3 and 1e4 (exp overflows without the stabiliser); an input gate of
    # -1e3 from a fresh state
    for scale in (1e3, 1e4):
        g = _gen(7220 + int(scale))
        w_ih, w_hh, bias = _weights(3, 4, g)
        x = _randn(2, 3, g=g, scale=scale)
        state = None
        for step in range(3):
            got = _four(_call(slstm_cell, x * (1 - 0.3 * step), state, w_ih, w_hh, bias,
                              what=f"slstm_cell with pre-activations near {scale:g}"), "slstm_cell")
            want = _ref_slstm(x * (1 - 0.3 * step), state, w_ih, w_hh, bias)
            for name, a, b in zip("hcnm", got, want, strict=True):
                check_finite(a, f"{name} for pre-activations near {scale:g} (step {step + 1})",
                             hint="exp(i~) overflows for i~ > 709: use the stabiliser, exp(i~ - m_t) <= 1")
                check_close(a, b, f"{name} for pre-activations near {scale:g} (step {step + 1})", **TOL, hint=SL_HINT)
            state = want
    w_ih, w_hh, bias = _weights(2, 3, _gen(7230))
    bias = bias.clone()
    bias[:3] = -1e3                                                   # input gate pre-activation -1e3
    got = slstm_cell(_randn(2, 2, g=_gen(7231)), None, w_ih, w_hh, bias)
    want = _ref_slstm(_randn(2, 2, g=_gen(7231)), None, w_ih, w_hh, bias)
    check_finite(got[0], "h after a first step whose input gate pre-activation is -1e3",
                 hint="start m at -inf: then m_1 = i~_1, i'_1 = 1 and n_1 = 1; with m_0 = 0, i'_1 = exp(-1000) = 0 "
                      "and h = 0 / 0")
    check_close(got[0], want[0], "h after a first step whose input gate pre-activation is -1e3", **TOL)
    # a saturated forget gate (f~ = -1e3) after an input of weight e^1000: in float64 and float32 the
    # old memory still outweighs a new input of weight e^-5 (log f = logsigmoid(f~) = -1000, finite;
    # torch.log(torch.sigmoid(f~)) is log 0 = -inf and forgets it)
    for dtype in (torch.float64, torch.float32):
        eye = torch.eye(4, dtype=dtype)
        zero_hh, zero_b = torch.zeros(4, 1, dtype=dtype), torch.zeros(4, dtype=dtype)
        x1 = torch.tensor([[1e3, 0.0, math.atanh(0.5), 2.0]], dtype=dtype)      # i~, f~, z~, o~
        x2 = torch.tensor([[-5.0, -1e3, math.atanh(-0.5), 2.0]], dtype=dtype)
        state = _call(slstm_cell, x1, None, eye, zero_hh, zero_b, what="slstm_cell with an input gate of 1e3")
        got = _call(slstm_cell, x2, tuple(state), eye, zero_hh, zero_b,
                    what="slstm_cell with a forget gate pre-activation of -1e3")[0]
        keep = math.exp(-5)
        want = torch.sigmoid(torch.tensor(2.0, dtype=dtype)) * (0.5 - 0.5 * keep) / (1 + keep)
        check_close(got, want.reshape(1, 1), f"h when the forget gate saturates (f~ = -1e3, {dtype})",
                    atol=1e-6, rtol=1e-5, hint="log f = F.logsigmoid(f~) is -1000 there, finite: the old memory's "
                    "weight e^1000 e^-1000 = 1 still counts; torch.log(torch.sigmoid(f~)) is log 0 = -inf and forgets it")
    # gradients through x, h, c, n and the weights
    g = _gen(7250)
    state = _ref_slstm(_randn(2, 2, g=g), None, *_weights(2, 3, g))
    m = state[3].detach()
    inputs = (_randn(2, 2, g=g).requires_grad_(), *(t.detach().clone().requires_grad_() for t in state[:3]),
              *(t.requires_grad_() for t in _weights(2, 3, g)))
    _gradcheck(lambda x, h, c, n, wi, wh, b: torch.cat(slstm_cell(x, (h, c, n, m), wi, wh, b)[:3], -1), inputs,
               "slstm_cell")
    test_differential("slstm_cell", slstm_cell)


# ---------------------------------------------------------------- exercise 4: matching parameter counts
def _count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _best(make_model, target, max_hidden):
    counts = {H: _count(make_model(H)) for H in range(1, max_hidden + 1)}
    return min(counts, key=lambda H: (abs(counts[H] - target), H))


class _Frozen(nn.Module):
    def __init__(self, H):
        super().__init__()
        self.embed = nn.Linear(5, 7)
        self.embed.requires_grad_(False)
        self.rnn = nn.GRU(7, H)


class _Tied(nn.Module):
    def __init__(self, H):
        super().__init__()
        self.encode = nn.Linear(3, H)
        self.again = self.encode       # the same layer reachable twice: model.parameters() lists it once
        self.out = nn.Linear(H, 1)


class _Counting:
    def __init__(self, make):
        self.make, self.calls = make, 0

    def __call__(self, H):
        self.calls += 1
        return self.make(H)


def test_match_hidden(match_hidden) -> None:
    cases = [  # (label, make_model, target, max_hidden)
        ("nn.Linear(3, H): 4H parameters, an exact hit", lambda H: nn.Linear(3, H), 40, 64),
        ("nn.Linear(3, H), a tie between H = 10 and 11 (the smaller)", lambda H: nn.Linear(3, H), 42, 64),
        ("nn.Linear(3, H), a float target", lambda H: nn.Linear(3, H), 43.0, 64),
        ("nn.Linear(3, H), a float target between two counts (40 and 44)", lambda H: nn.Linear(3, H), 42.5, 64),
        ("nn.LSTM(2, H)", lambda H: nn.LSTM(2, H), 1297, 64),
        ("nn.LSTM(2, H) in float64", lambda H: nn.LSTM(2, H).double(), 5000, 64),
        ("a model with a frozen layer (not counted)", _Frozen, 900, 40),
        ("a model with one layer reachable twice (counted once)", _Tied, 61, 40),
        ("max_hidden = 1", lambda H: nn.Linear(3, H), 40, 1),
        ("a target above the count of max_hidden", lambda H: nn.Linear(3, H), 300, 20),
        ("a target of 0", lambda H: nn.GRU(2, H), 0, 32),
        ("a target of 1e12", lambda H: nn.Linear(2, H), 1e12, 48),
    ]
    for label, make, target, max_hidden in cases:
        want = _best(make, target, max_hidden)
        state = torch.get_rng_state()
        got = _call(match_hidden, make, target, max_hidden=max_hidden,
                    what=f"match_hidden for {label}", hint="count with sum(p.numel() for p in model.parameters() "
                    "if p.requires_grad), and try H only in 1 .. max_hidden")
        check_true(isinstance(got, int) and not isinstance(got, bool),
                   f"match_hidden returned {got!r} ({type(got).__name__}) for {label}: expected an int H",
                   hint="return the hidden size, a Python int, not the count or a tensor")
        check_true(torch.equal(torch.get_rng_state(), state),
                   f"match_hidden changed torch's random state ({label}): the models built afterwards get other "
                   "initial weights", hint="building a model draws random numbers: build them inside "
                   "`with torch.random.fork_rng(devices=[]):`, which puts the state back")
        check_true(got == want, f"match_hidden gives H = {got} for {label} (target {target:g}, max_hidden "
                   f"{max_hidden}); the closest count is at H = {want} ({_count(make(want))} trainable parameters"
                   + (f", yours has {_count(make(got))})" if isinstance(got, int) and 1 <= got <= max_hidden else ")"),
                   hint="count only parameters that require grad, each once (model.parameters() lists a shared one "
                        "once); the closest count wins, the smaller H on a tie; H runs from 1 to max_hidden inclusive")
    counting = _Counting(lambda H: nn.Linear(4, H))
    got = match_hidden(counting, 2000, max_hidden=1024)
    check_true(counting.calls <= 40, f"match_hidden built {counting.calls} models for max_hidden = 1024",
               hint="parameter counts grow with H: a bisection needs about log2(1024) = 10 models, not one per H")
    check_true(got == 400, f"match_hidden gives H = {got} for nn.Linear(4, H) (5H parameters) and a target of 2000; "
               "expected 400")
    test_differential("match_hidden", match_hidden)


# ---------------------------------------------------------------- the experiment (exercise 4)
def _budget():
    from seqcourse.env import get_profile

    return get_profile().budget("07-modern-rnn")


def held_out_mse(model, T: int) -> float:
    x, y = EXERCISES.reference("adding_problem")(1000, T, _gen(7500))
    device = next(model.parameters()).device
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x.to(device)).cpu(), y))


def test_experiment(namespace: dict) -> None:
    """The notebook's trained minGRU and sLSTM solve the shortest length (held-out data of the
    grader's own), with parameter counts within the tolerance of the LSTM's. A shortfall is charged
    to match_hidden unless mingru or slstm_cell fails its own tests (then it is charged there)."""
    from seqcourse.tasks import ADDING_BASELINE_MSE

    guard.verify()
    budget = _budget()
    T = min(budget.exp_lengths)
    bar = budget.max_fraction * ADDING_BASELINE_MSE
    runs = namespace.get("runs") or {}
    shortfall = None
    missing = [name for name in ("LSTM", "minGRU", "sLSTM") if getattr(runs.get((name, T)), "model", None) is None]
    if missing:
        shortfall = (f"there is no trained model in runs for {', '.join(missing)} at T = {T}: the experiment cell "
                     "stopped before it finished")
    else:
        params = {name: _count(runs[name, T].model) for name in ("LSTM", "minGRU", "sLSTM")}
        for name in ("minGRU", "sLSTM"):
            run = runs[name, T]
            if run.diverged:
                shortfall = f"the {name}'s training diverged at T = {T} (its loss became NaN or infinite)"
                break
            if abs(params[name] - params["LSTM"]) > budget.param_tolerance * params["LSTM"]:
                shortfall = (f"the {name} has {params[name]} trainable parameters, more than "
                             f"{budget.param_tolerance:.0%} away from the LSTM's {params['LSTM']}")
                break
            mse = held_out_mse(run.model, T)
            if not mse <= bar:
                shortfall = (f"the trained {name}'s held-out MSE at T = {T} is {mse:.4f}, above this profile's bar "
                             f"of {bar:.4f} ({budget.max_fraction} of the baseline 1/6)")
                break
    own = EXERCISES.learners(namespace, "match_hidden").get("match_hidden")
    mingru = EXERCISES.learners(namespace, "mingru")
    cell = EXERCISES.learners(namespace, "slstm_cell").get("slstm_cell")
    judge_experiment(shortfall, "match_hidden", lambda: test_match_hidden(own),
                     {"mingru": lambda: test_mingru(mingru.get("mingru_loop"), mingru.get("mingru_scan")),
                      "slstm_cell": lambda: test_slstm_cell(cell)})


# ---------------------------------------------------------------- differential tests
# Every exercise against its reference on generated inputs within Graded on (see _differential.py);
# EXAMPLES: how many inputs each answer tries (bench/differential_examples.py measures what each needs).
EXAMPLES = {"linear_attention_parallel": 25, "linear_attention_recurrent": 25, "mingru_loop": 25, "mingru_scan": 25,
            "slstm_cell": 30, "match_hidden": 140}


@st.composite
def _attention_cases(draw, recurrent: bool):
    B, T, dk, dv = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype, g = pick(draw, DTYPES), gen(draw(seeds()))
    level = pick(draw, (0.0, -20.0, 1e3) if dtype == torch.float64 else (0.0, 1e3))
    q = randn(g, B, T, dk, dtype=dtype, scale=0.3) + level
    k = randn(g, B, T, dk, dtype=dtype, scale=0.3) + level
    v = randn(g, B, T, dv, dtype=dtype)
    tensors = with_grad((q, k, v), dtype)
    label = f"B={B}, T={T}, d_k={dk}, d_v={dv}, {dtype}, queries and keys near {level:g}"
    grads = (0, 1, 2) if dtype == torch.float64 else ()
    if not recurrent:
        return Case(tensors, label, grads=grads)
    given, as_list = draw(st.booleans()), draw(st.booleans())
    S = randn(g, B, dk, dv, dtype=dtype).abs() if given else None
    z = randn(g, B, dk, dtype=dtype).abs() + 0.5 if given else None
    return Case((*tensors, S, z, given, as_list), label + (f", a given state as a {'list' if as_list else 'tuple'}"
                                                          if given else ", state=None"), grads=grads)


def _recurrent(fn):
    def run(q, k, v, S, z, given, as_list):
        return fn(q, k, v, ([S, z] if as_list else (S, z)) if given else None)
    return run


@st.composite
def _mingru_cases(draw):
    B, T, H = draw(st.integers(1, 3)), pick(draw, (1, 2, 5, 9, 64)), draw(st.integers(1, 4))
    dtype, g = pick(draw, DTYPES), gen(draw(seeds()))
    scale = pick(draw, (0.5, 1.0, 1e3))
    gate, cand = randn(g, B, T, H, dtype=dtype, scale=scale), randn(g, B, T, H, dtype=dtype, scale=scale)
    given = draw(st.booleans())
    h0 = torch.rand(B, H, generator=g, dtype=torch.float64).add(0.1).to(dtype)   # a positive state
    tensors = with_grad((gate, cand, h0), dtype)
    return Case((*tensors, given), f"B={B}, T={T}, H={H}, {dtype}, pre-activations of size {scale:g}, "
                + ("a given h0" if given else "h0=None"),
                grads=((0, 1, 2) if given else (0, 1)) if dtype == torch.float64 else ())


def _mingru(fn):
    def run(gate, cand, h0, given):
        return fn(gate, cand, h0 if given else None)
    return run


@st.composite
def _slstm_cases(draw):
    B, E, H = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype, g = pick(draw, DTYPES), gen(draw(seeds()))
    scale = pick(draw, (0.5, 1.0, 1e3, 1e4))
    x1, x2 = randn(g, B, E, dtype=dtype, scale=scale), randn(g, B, E, dtype=dtype, scale=scale)
    w_ih, w_hh, bias = (randn(g, 4 * H, E, dtype=dtype, scale=0.5), randn(g, 4 * H, H, dtype=dtype, scale=0.5),
                        randn(g, 4 * H, dtype=dtype, scale=0.5))
    gate = pick(draw, ("none", "input", "forget"))
    if gate != "none":                                 # a saturated gate: i~ or f~ of -1e3
        bias = bias.clone()
        bias[(0 if gate == "input" else H):(H if gate == "input" else 2 * H)] = -1e3
    two_steps, as_list = pick(draw, (True, True, False)), draw(st.booleans())   # n != 1 needs two
    tensors = with_grad((x1, x2, w_ih, w_hh, bias), dtype)
    return Case((*tensors, two_steps, as_list), f"B={B}, E={E}, H={H}, {dtype}, inputs of size {scale:g}"
                + (f", a {gate} gate of -1e3" if gate != "none" else "")
                + (f", a second step from the first's state as a {'list' if as_list else 'tuple'}" if two_steps else ""),
                grads=((0, 1, 2, 3, 4) if two_steps else (0, 2, 3, 4)) if dtype == torch.float64 and scale < 1e3 else ())


def _slstm(fn):
    def run(x1, x2, w_ih, w_hh, bias, two_steps, as_list):
        state = fn(x1, None, w_ih, w_hh, bias)
        if not two_steps:
            return state
        return fn(x2, list(state) if as_list else tuple(state), w_ih, w_hh, bias)
    return run


_MAKERS = {"nn.Linear(3, H)": lambda H: nn.Linear(3, H), "nn.GRU(2, H)": lambda H: nn.GRU(2, H),
           "nn.LSTM(2, H)": lambda H: nn.LSTM(2, H), "nn.LSTM(2, H).double()": lambda H: nn.LSTM(2, H).double(),
           "a frozen layer": _Frozen, "a layer reachable twice": _Tied}


@st.composite
def _match_cases(draw):
    label = pick(draw, sorted(_MAKERS))
    max_hidden = pick(draw, (1, 7, 20, 64))
    target = draw(st.one_of(st.integers(0, 20000), st.floats(0, 20000).map(lambda t: round(t * 2) / 2),
                            st.sampled_from((0, 10**12))))
    return Case((_MAKERS[label], target, max_hidden), f"{label}, target {target!r}, max_hidden {max_hidden}")


def test_differential(name: str, answer) -> None:
    """``name``'s answer against the reference on generated inputs (see EXAMPLES)."""
    reference = EXERCISES.reference(name)
    wraps = {"linear_attention_parallel": (_attention_cases(recurrent=False), lambda f: f),
             "linear_attention_recurrent": (_attention_cases(recurrent=True), _recurrent),
             "mingru_loop": (_mingru_cases(), _mingru), "mingru_scan": (_mingru_cases(), _mingru),
             "slstm_cell": (_slstm_cases(), _slstm), "match_hidden": (_match_cases(), lambda f: f)}
    cases, wrap = wraps[name]
    differential(wrap(answer), wrap(reference), cases, name, EXAMPLES[name])
