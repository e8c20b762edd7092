"""Hidden tests of lesson 02, "Backpropagation through time".

Which test covers which class of mistake, per exercise ("n/a" says why a class does not apply).
Grading runs on the CPU: the dtype cases also catch a tensor made without the input's dtype and
device (``torch.zeros(W.shape)`` is float32 on the CPU whatever W is).

| exercise | dtype | input | edge | extreme | side-effect |
|---|---|---|---|---|---|
| bptt | test_bptt: float64 and float32 inputs, the four gradients keep the dtype | test_bptt: a given non-zero s0; a loss on the last state only | test_bptt: B = 1 with T = 1, E = H and E != H | n/a: 1 - s^2 is bounded, nothing can overflow | test_bptt: every argument unchanged (grad_states above all) |
| lag_gradient_norms | test_lag_gradient_norms: float64 and float32 inputs, norms of the same dtype | test_lag_gradient_norms: a given non-zero s0 | test_lag_gradient_norms: B = 1 with T = 1 | test_lag_gradient_norms: rho = 0.3 over 80 steps, norms down to 1e-41 compared relatively; rho = 1.3 growing | test_lag_gradient_norms: s0 (values and requires_grad) and W, U, b unchanged; the result detached |
| clip_grad_norm | test_clip_grad_norm: float64 gradients, the total returned as a float64 tensor | test_clip_grad_norm: parameters as a generator (as model.parameters() gives them) and as a list; parameters without .grad | test_clip_grad_norm: one parameter, norms below and above max_norm | test_clip_grad_norm: all-zero gradients (total 0, no NaN) | test_clip_grad_norm: .grad None kept; parameter values unchanged |
| adding_problem | test_adding_problem: float32 x and y | test_adding_problem: the generator alone decides the data, and it advances (two calls differ) | test_adding_problem: n = 1, T = 2, odd T (the second marker reaches T - 1) | n/a: bounded random data | test_adding_problem: the global random state unchanged |
| delay_task | test_delay_task: int64 x and y | test_delay_task: the generator alone decides the data | test_delay_task: n = 1, lag 0 and lag T - 1 | n/a: integer data | test_delay_task: the global random state unchanged |

The experiments re-measure the notebook's trained models on data of their own: test_adding_experiment
is charged to adding_problem, test_long_lag_failure to delay_task; each run uses no other exercise
of the learner's (the models and loops are the course's), so a shortfall is charged to its task.
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st
from torch import nn

from seqcourse import guard
from seqcourse.checks import check_close, check_shape, check_true
from seqcourse_hidden._differential import (
    DTYPES,
    SCALES,
    TOLERANCE,
    Case,
    differential,
    gen,
    pick,
    randn,
    seeds,
)
from seqcourse_hidden._isolate import Exercises, judge_experiment
from seqcourse_hidden._isolate import fails as _failure
from seqcourse_hidden._support import check_unchanged as _check_unchanged
from seqcourse_hidden._support import snapshot as _snapshot

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("02-bptt")

SHAPES = [(3, 5, 4, 6), (1, 1, 2, 3), (4, 2, 5, 5), (2, 7, 3, 2), (5, 4, 6, 6)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tol(dtype) -> dict:
    return TOLERANCE[dtype]          # the tolerance every lesson states


def _unroll(x, s0, W, U, b, retain_grad: bool = False) -> list[torch.Tensor]:
    """The lesson-01 RNN's states s_1 .. s_T, each kept for .grad when asked."""
    s, states = s0, []
    for t in range(x.shape[1]):
        s = torch.tanh(x[:, t] @ W + s @ U + b)
        if retain_grad:
            s.retain_grad()
        states.append(s)
    return states


def _problem(g: torch.Generator, B: int, T: int, E: int, H: int, u_scale: float):
    """Random float64 inputs, initial state and parameters (x, s0, W, U, b), drawn in that order."""
    def draw(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)
    return draw(B, T, E), draw(B, H) * 0.5, draw(E, H) * 0.6, draw(H, H) * u_scale, draw(H) * 0.3


def _forward(x, s0, W, U, b):
    return torch.stack(_unroll(x, s0, W, U, b), dim=1)


# ---------------------------------------------------------------- exercise 1: BPTT by hand
_BPTT_HINTS = {
    "dW": "dW sums x_t.T @ delta_a over the steps (x_t transposed). If only T > 1 is off, check what is "
          "carried to the step before: delta_a @ U.T, with U transposed, since the forward step computes "
          "s_prev @ U",
    "dU": "dU sums s_prev.T @ delta_a (transposed), with s_prev the state before step t: s0 at t = 0. "
          "What is carried to the step before is delta_a @ U.T, with U transposed",
    "db": "db sums delta_a over the batch and over the steps",
    "ds0": "ds0 is what is carried out of the first step: delta_a @ U.T, with U transposed (the forward "
           "step computes s_prev @ U)",
}


def test_bptt(bptt) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        dtype = torch.float32 if k == 2 else torch.float64
        g = _gen(1000 + k)
        problem = _problem(g, B, T, E, H, u_scale=0.6)
        grad_states = torch.randn(B, T, H, generator=g, dtype=torch.float64)
        if k == 3:
            grad_states[:, :-1] = 0  # a loss on the last state only
        x, s0, W, U, b, grad_states = (t.to(dtype) for t in (*problem, grad_states))
        params = [p.clone().requires_grad_() for p in (W, U, b, s0)]
        states = _forward(x, params[3], params[0], params[1], params[2])
        expected = torch.autograd.grad((states * grad_states).sum(), params)
        states = states.detach()
        saved = _snapshot(x=x, s0=s0, W=W, U=U, b=b, states=states, grad_states=grad_states)
        with torch.no_grad():  # by hand: no autograd inside bptt
            result = bptt(x, s0, W, U, b, states, grad_states)
        check_true(isinstance(result, tuple) and len(result) == 4,
                   "bptt must return a tuple (dW, dU, db, ds0)")
        _check_unchanged(saved, dict(x=x, s0=s0, W=W, U=U, b=b, states=states, grad_states=grad_states), "bptt",
                         hint="delta = grad_states[:, t] is a view: delta += ... writes into grad_states. "
                              "Write delta = grad_states[:, t] + carried")
        for name, got, want in zip(("dW", "dU", "db", "ds0"), result, expected, strict=True):
            check_shape(got, tuple(want.shape), f"{name} for B={B}, T={T}, E={E}, H={H}")
            check_true(got.dtype == dtype, f"bptt returned {name} as {got.dtype} for {dtype} inputs: keep the "
                       "inputs' dtype", hint="torch.zeros(W.shape) is float32: use torch.zeros_like(W)")
            check_close(got, want, f"{name} for B={B}, T={T} ({dtype}, from a given s0)", **_tol(dtype),
                        hint=_BPTT_HINTS[name])
    test_differential("bptt", bptt)


# ---------------------------------------------------------------- exercise 2: gradient norm by lag
def _reference_norms(x, s0, W, U, b):
    states = _unroll(x, s0.detach().clone().requires_grad_(), W, U, b, retain_grad=True)
    states[-1].sum().backward()
    return torch.stack([states[-1 - k].grad.norm() for k in range(len(states))])


def test_lag_gradient_norms(lag_gradient_norms) -> None:
    # exact cases: zero input and state keep tanh in its linear regime, so the norm is rho^k;
    # rho = 0.3 over 80 steps takes the norms down to about 1e-41 (compared relatively)
    exact = [(0.5, (2, 6, 4), torch.float64, 1e-9), (1.3, (3, 5, 5), torch.float32, 1e-5),
             (1.0, (1, 1, 3), torch.float64, 1e-9), (0.3, (2, 80, 3), torch.float64, 0.0)]
    for rho, (B, T, H), dtype, atol in exact:
        g = _gen(int(rho * 100) + T)
        Q, _ = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))
        U = (rho * Q).to(dtype)
        W = torch.randn(2, H, generator=g, dtype=dtype)
        norms = lag_gradient_norms(torch.zeros(B, T, 2, dtype=dtype), torch.zeros(B, H, dtype=dtype), W, U,
                                   torch.zeros(H, dtype=dtype))
        check_shape(norms, (T,), f"lag_gradient_norms output for T={T}")
        check_true(norms.dtype == dtype, f"lag_gradient_norms returned {norms.dtype} norms for {dtype} inputs",
                   hint="torch.tensor([... .item() ...]) makes float32: torch.stack the norm tensors instead")
        expected = math.sqrt(B * H) * rho ** torch.arange(T, dtype=torch.float64)
        check_close(norms, expected, f"the norms for U = {rho} x orthogonal over T={T} steps, zero input",
                    atol=atol, rtol=1e-7 if dtype == torch.float64 else 1e-4,
                    hint="norms[k] is the norm of the gradient of s_T.sum() with respect to the state k "
                         "steps before the last; each step back multiplies it by U.T")
    # general case, from a given non-zero s0, against a reference
    for k, (B, T, E, H) in enumerate(SHAPES):
        x, s0, W, U, b = _problem(_gen(1100 + k), B, T, E, H, u_scale=0.9)
        saved = _snapshot(x=x, s0=s0, W=W, U=U, b=b)
        norms = lag_gradient_norms(x, s0, W, U, b)
        check_true(not norms.requires_grad, "return plain numbers: detach the norms")
        check_true(not s0.requires_grad, "lag_gradient_norms switched on requires_grad of the caller's s0",
                   hint="start from s = s0.detach().clone().requires_grad_(), not s0.requires_grad_()")
        _check_unchanged(saved, dict(x=x, s0=s0, W=W, U=U, b=b), "lag_gradient_norms")
        check_close(norms, _reference_norms(x, s0, W, U, b),
                    f"the gradient norms by lag for B={B}, T={T} from a given s0", atol=1e-9, rtol=1e-7,
                    hint="unroll from the given s0 (not zeros); entry k is for the state k steps before the last")
    test_differential("lag_gradient_norms", lag_gradient_norms)


# ---------------------------------------------------------------- exercise 3: clipping
def _param_sets(seed: int):
    g = _gen(seed)
    shapes = [[(3, 4), (4,), (2, 2, 2)], [(5,)], [(6, 3), (3,)]]
    for shape_set in shapes:
        for scale in (0.01, 1.0, 50.0):
            params = [nn.Parameter(torch.randn(s, generator=g, dtype=torch.float64)) for s in shape_set]
            for p in params:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64) * scale
            yield params


def test_clip_grad_norm(clip_grad_norm) -> None:
    for max_norm in (0.5, 1.0, 5.0):
        for n, params in enumerate(_param_sets(int(max_norm * 10))):
            twins = [nn.Parameter(p.detach().clone()) for p in params]
            for t, p in zip(twins, params, strict=True):
                t.grad = p.grad.clone()
            values = [p.detach().clone() for p in params]
            expected_total = torch.nn.utils.clip_grad_norm_(twins, max_norm)
            given = (p for p in params) if n % 2 == 0 else params   # as model.parameters() gives them
            kind = "a generator" if n % 2 == 0 else "a list"
            total = clip_grad_norm(given, max_norm)
            check_true(torch.is_tensor(total) and total.dtype == torch.float64,
                       f"clip_grad_norm returned {type(total).__name__ if not torch.is_tensor(total) else total.dtype} "
                       "for float64 gradients: return the total as a tensor of the gradients' dtype",
                       hint="build the total from the gradients with torch operations (no float(...) or .item())")
            check_close(total, expected_total, f"the returned total norm (parameters given as {kind})",
                        atol=1e-9, rtol=1e-7,
                        hint="return the norm of all gradients together, measured before scaling")
            for i, (p, t) in enumerate(zip(params, twins, strict=True)):
                check_close(p.grad, t.grad, f"gradient {i} after clipping to {max_norm} (parameters given as {kind})",
                            atol=1e-9, rtol=1e-7,
                            hint="one factor for all tensors: max_norm / (total + 1e-6), and only when it is "
                                 "below 1. Parameters given as a generator can be gone through only once: "
                                 "make a list first")
                check_true(torch.equal(p.detach(), values[i]), "clip_grad_norm changed a parameter's values: "
                           "scale the gradients, not the parameters")
    # parameters without a gradient are skipped, not an error
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))
    a.grad = torch.full((3,), 4.0)
    total = clip_grad_norm([a, b], 1.0)
    check_close(torch.as_tensor(total, dtype=torch.float32), torch.tensor(48.0).sqrt(), "the total norm",
                atol=1e-4, hint="skip parameters whose .grad is None")
    check_true(b.grad is None, "a parameter without a gradient must keep .grad = None")
    # all-zero gradients (one parameter): the total is 0 and nothing becomes NaN
    c = nn.Parameter(torch.ones(4, dtype=torch.float64))
    c.grad = torch.zeros(4, dtype=torch.float64)
    total = clip_grad_norm((p for p in [c]), 1.0)
    check_close(total, torch.tensor(0.0, dtype=torch.float64), "the total norm of zero gradients")
    check_close(c.grad, torch.zeros(4, dtype=torch.float64), "zero gradients after clipping",
                hint="with a total of 0 the factor is max_norm / 1e-6, capped at 1: never divide by the total alone")
    test_differential("clip_grad_norm", clip_grad_norm)


# ---------------------------------------------------------------- exercise 4: the adding problem
def _check_rng_untouched(make, what: str) -> None:
    torch.manual_seed(4321)
    state = torch.get_rng_state()
    make()
    check_true(torch.equal(state, torch.get_rng_state()),
               f"{what} changed the global random state: draw only from the generator you are given "
               "(no torch.manual_seed and no draw without generator=...)")


def test_adding_problem(adding_problem) -> None:
    for n, T in [(64, 10), (1, 2), (200, 50), (7, 3), (5, 2)]:
        x, y = adding_problem(n, T, _gen(1300 + T + n))
        check_shape(x, (n, T, 2), f"x for n={n}, T={T}")
        check_shape(y, (n,), f"y for n={n}, T={T}")
        check_true(x.dtype == torch.float32 and y.dtype == torch.float32,
                   f"x and y should be float32, got {x.dtype} and {y.dtype}")
        values, markers = x[..., 0], x[..., 1]
        check_true(bool(((values >= 0) & (values <= 1)).all()), "values must lie in [0, 1]")
        check_true(bool(((markers == 0) | (markers == 1)).all()), "markers must be 0 or 1")
        check_true(bool((markers.sum(1) == 2).all()), f"every sequence needs exactly two markers (T={T})")
        half = T // 2
        check_true(bool((markers[:, :half].sum(1) == 1).all()),
                   f"the first marker must lie in the first half, positions 0 .. {half - 1} for T={T}")
        check_close(y, (values * markers).sum(1), f"y, the sum of the two marked values (T={T})", atol=1e-6)
    # the generator alone decides the data, and the global random state is left alone
    torch.manual_seed(1)
    a = adding_problem(16, 20, _gen(7))
    torch.manual_seed(2)
    b = adding_problem(16, 20, _gen(7))
    check_true(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]),
               "two calls with equally seeded generators must give the same data: pass "
               "generator=... to every torch.rand/randint call")
    c = adding_problem(16, 20, _gen(8))
    check_true(not torch.equal(a[0], c[0]), "different generator seeds gave the same data")
    _check_rng_untouched(lambda: adding_problem(4, 6, _gen(9)), "adding_problem")
    for T in (20, 21, 3):     # an even and two odd lengths: the second half is T // 2 .. T - 1
        positions = torch.stack([adding_problem(1, T, _gen(s))[0][0, :, 1].nonzero()[:, 0] for s in range(300)])
        check_true(set(positions[:, 0].tolist()) == set(range(T // 2))
                   and set(positions[:, 1].tolist()) == set(range(T // 2, T)),
                   f"marker positions should be drawn uniformly within each half: for T = {T} every position of "
                   f"0 .. {T // 2 - 1} and of {T // 2} .. {T - 1} should occur (torch.randint's upper bound is "
                   "exclusive; the second half ends at T - 1 for odd T too)")
    # the generator you are given is the one drawn from: it advances, so two calls differ
    g = _gen(11)
    first, second = adding_problem(8, 10, g), adding_problem(8, 10, g)
    check_true(not torch.equal(first[0], second[0]),
               "two calls with the same generator returned the same batch: draw from the generator you are "
               "given (generator=generator), not from a new one seeded like it, so that it advances")


# ---------------------------------------------------------------- exercise 5: the delay task
def test_delay_task(delay_task) -> None:
    for n, T, lag, K in [(8, 10, 3, 5), (1, 4, 1, 2), (16, 40, 20, 8), (3, 6, 5, 4), (5, 7, 0, 3)]:
        x, y = delay_task(n, T, lag, K, _gen(1400 + lag))
        check_shape(x, (n, T), f"x for n={n}, T={T}")
        check_shape(y, (n, T), f"y for n={n}, T={T}")
        check_true(x.dtype == torch.long and y.dtype == torch.long,
                   f"x and y should be int64 (long), got {x.dtype} and {y.dtype}")
        check_true(bool(((x >= 0) & (x < K)).all()), f"symbols must lie in 0 .. {K - 1}")
        check_true(bool((y[:, :lag] == -100).all()),
                   f"the first {lag} targets have nothing to recall and must be -100 (ignored by "
                   "the loss)")
        check_true(torch.equal(y[:, lag:], x[:, : T - lag]),
                   f"y[:, t] must equal x[:, t - {lag}] for t >= {lag} (T={T})",
                   hint="x[:, :-lag] is empty when lag = 0: slice with x[:, :T - lag]")
    torch.manual_seed(1)
    a = delay_task(4, 12, 2, 6, _gen(3))
    torch.manual_seed(2)
    b = delay_task(4, 12, 2, 6, _gen(3))
    check_true(torch.equal(a[0], b[0]), "the generator alone must decide the data")
    _check_rng_untouched(lambda: delay_task(4, 12, 2, 6, _gen(5)), "delay_task")
    check_true(len(set(delay_task(64, 30, 2, 6, _gen(4))[0].flatten().tolist())) == 6,
               "every symbol should occur")


# ---------------------------------------------------------------- the experiments
def _budget():
    from seqcourse.env import get_profile

    return get_profile().budget("02-bptt")


def _held_out_mse(run, T: int) -> float:
    """The run's trained model on fresh adding-problem data made by the reference answer."""
    if run is None or getattr(run, "model", None) is None or run.diverged:
        return float("nan")
    x, y = EXERCISES.reference("adding_problem")(1000, T, _gen(2100 + T))
    with torch.no_grad():
        return float(nn.functional.mse_loss(run.model(x), y))


def _held_out_accuracy(run, lag: int, num_symbols: int) -> float:
    """The run's trained tagger on fresh delay-task data made by the reference answer."""
    if run is None or getattr(run, "model", None) is None:
        return float("nan")
    x, y = EXERCISES.reference("delay_task")(512, lag + 20, lag, num_symbols, _gen(2200 + lag))
    with torch.no_grad():
        pred = run.model(x).argmax(-1)
    mask = y != -100
    return float((pred[mask] == y[mask]).float().mean())


def test_adding_experiment(namespace: dict) -> None:
    """The notebook's vanilla RNNs stay at the baseline on the longest sequences (and learn the
    shortest where the budget allows), re-measured here on fresh data. Charged to adding_problem."""
    from seqcourse.tasks import ADDING_BASELINE_MSE

    guard.verify()
    budget = _budget()
    own, runs, shortfall = namespace.get("adding_problem"), namespace.get("adding_runs"), None
    why = _failure(lambda: test_adding_problem(own))
    longest, shortest = max(budget.adding_lengths), min(budget.adding_lengths)
    if why:
        shortfall = f"the runs used your adding_problem, which fails its own tests ({why})"
    elif not isinstance(runs, dict) or set(runs) != set(budget.adding_lengths):
        shortfall = (f"adding_runs should hold one run for each length of the budget, {budget.adding_lengths}: "
                     "did the training cell finish?")
    else:
        long_mse = _held_out_mse(runs[longest], longest)
        if not long_mse >= budget.adding_fail_fraction * ADDING_BASELINE_MSE:
            shortfall = (f"at T={longest} the trained RNN reaches a held-out MSE of {long_mse:.4f}, below "
                         f"{budget.adding_fail_fraction} x the baseline {ADDING_BASELINE_MSE:.4f}: a vanilla "
                         "RNN should not learn a lag this long")
        elif budget.adding_learn_fraction is not None:
            short_mse = _held_out_mse(runs[shortest], shortest)
            if not short_mse <= budget.adding_learn_fraction * ADDING_BASELINE_MSE:
                shortfall = (f"at T={shortest} the trained RNN reaches a held-out MSE of {short_mse:.4f}, above "
                             f"{budget.adding_learn_fraction} x the baseline: it should learn a short lag")
    judge_experiment(shortfall, "adding_problem", lambda: test_adding_problem(own), {})


def test_long_lag_failure(namespace: dict) -> None:
    """The notebook's vanilla RNN learns the shortest delay and stays near chance at the longest,
    re-measured here on fresh sequences. Charged to delay_task."""
    guard.verify()
    budget = _budget()
    own, runs, shortfall = namespace.get("delay_task"), namespace.get("lag_runs"), None
    chance = 1 / budget.num_symbols
    short_lag, long_lag = min(budget.lags), max(budget.lags)
    why = _failure(lambda: test_delay_task(own))
    if why:
        shortfall = f"the runs used your delay_task, which fails its own tests ({why})"
    elif not isinstance(runs, dict) or set(runs) != set(budget.lags):
        shortfall = f"lag_runs should hold one run for each lag of the budget, {budget.lags}: did the training cell finish?"
    else:
        short = _held_out_accuracy(runs[short_lag], short_lag, budget.num_symbols)
        long_ = _held_out_accuracy(runs[long_lag], long_lag, budget.num_symbols)
        if not short >= budget.short_lag_min_acc:
            shortfall = (f"at lag {short_lag} the trained RNN reaches a held-out accuracy of {short:.3f}, below "
                         f"{budget.short_lag_min_acc}: it should learn a short delay")
        elif not long_ <= chance + budget.long_lag_margin:
            shortfall = (f"at lag {long_lag} the trained RNN reaches {long_:.3f}, well above chance ({chance:.3f})")
    judge_experiment(shortfall, "delay_task", lambda: test_delay_task(own), {})


# ---------------------------------------------------------------- differential tests
# The deterministic exercises against their references on generated inputs within Graded on (see
# _differential.py); EXAMPLES: how many inputs each tries (bench/differential_examples.py measures
# how many it needs). adding_problem and delay_task draw random data in an order the text leaves
# open, so their tests above check the data's properties and the generator, not a reference's draws.
EXAMPLES = {"bptt": 25, "lag_gradient_norms": 25, "clip_grad_norm": 25}


def _forward_states(x, s0, W, U, b):
    s, states = s0, []
    for t in range(x.shape[1]):
        s = torch.tanh(x[:, t] @ W + s @ U + b)
        states.append(s)
    return torch.stack(states, dim=1)


@st.composite
def _bptt_cases(draw):
    B, T, E, H = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype, scale, g = pick(draw, DTYPES), pick(draw, SCALES), gen(draw(seeds()))
    x, s0 = randn(g, B, T, E, dtype=dtype, scale=scale), randn(g, B, H, dtype=dtype, scale=0.5)
    W, U, b = randn(g, E, H, dtype=dtype, scale=0.7), randn(g, H, H, dtype=dtype, scale=0.7), randn(g, H, dtype=dtype)
    grad_states = randn(g, B, T, H, dtype=dtype)
    last_only = draw(st.booleans())
    if last_only:                                              # a loss on the last state only
        grad_states[:, :-1] = 0
    states = _forward_states(x, s0, W, U, b)
    return Case((x, s0, W, U, b, states, grad_states), f"B={B}, T={T}, E={E}, H={H}, {dtype}, inputs of size "
                f"{scale:g}" + (", a loss on the last state only" if last_only else ""))


@st.composite
def _norm_cases(draw):
    B, T, E, H = draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype, g = pick(draw, DTYPES), gen(draw(seeds()))
    rho = pick(draw, (0.3, 0.5, 1.0, 1.3))
    q, _ = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))
    x = randn(g, B, T, E, dtype=dtype, scale=pick(draw, (0.0, 0.5)))
    s0 = randn(g, B, H, dtype=dtype, scale=0.5)
    W, U, b = randn(g, E, H, dtype=dtype, scale=0.5), (rho * q).to(dtype), randn(g, H, dtype=dtype, scale=0.1)
    return Case((x, s0, W, U, b), f"B={B}, T={T}, E={E}, H={H}, {dtype}, U = {rho} times an orthogonal matrix")


@st.composite
def _clip_cases(draw):
    dtype, g = torch.float64, gen(draw(seeds()))
    shapes = draw(st.lists(st.sampled_from(((3,), (2, 4), (5,), (1, 1))), min_size=1, max_size=4))
    params = []
    for shape in shapes:
        p = nn.Parameter(randn(g, *shape, dtype=dtype))
        kind = pick(draw, ("grad", "grad", "none", "zero"))
        p.grad = None if kind == "none" else torch.zeros_like(p) if kind == "zero" else randn(g, *shape, dtype=dtype)
        params.append(p)
    max_norm = pick(draw, (0.1, 1.0, 5.0, 100.0))
    as_generator = draw(st.booleans())
    return Case((params, max_norm, as_generator), f"{len(params)} parameters of shapes {shapes}, max_norm "
                f"{max_norm} ({'a generator' if as_generator else 'a list'}), gradients: "
                + ", ".join("None" if p.grad is None else "zero" if not p.grad.any() else "random" for p in params))


def _clipping(fn):
    """clip_grad_norm as a call whose result holds the total and every gradient after it."""
    def run(params, max_norm, as_generator):
        total = fn((p for p in params) if as_generator else params, max_norm)
        return total, [p.grad for p in params]
    return run


def test_differential(exercise: str, answer) -> None:
    """``exercise``'s answer against the reference on generated inputs (see EXAMPLES)."""
    reference = EXERCISES.reference(exercise)
    strategies = {"bptt": _bptt_cases(), "lag_gradient_norms": _norm_cases(), "clip_grad_norm": _clip_cases()}
    if exercise == "clip_grad_norm":
        answer, reference = _clipping(answer), _clipping(reference)
    differential(answer, reference, strategies[exercise], exercise, EXAMPLES[exercise])
