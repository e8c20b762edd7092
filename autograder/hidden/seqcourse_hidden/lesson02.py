"""Hidden tests of lesson 02, "Backpropagation through time"."""

from __future__ import annotations

import math

import torch
from torch import nn

from seqcourse.checks import check_close, check_shape, check_true, check_type
from seqcourse.grading import guard
from seqcourse_hidden._isolate import Exercises

# Each graded cell isolates its exercise: the other exercises' answers are the references there.
EXERCISES = Exercises("02-bptt")

SHAPES = [(3, 5, 4, 6), (1, 1, 2, 3), (4, 2, 5, 5), (2, 7, 3, 2), (5, 4, 6, 6)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
def test_bptt(bptt) -> None:
    for k, (B, T, E, H) in enumerate(SHAPES):
        g = _gen(1000 + k)
        x, s0, W, U, b = _problem(g, B, T, E, H, u_scale=0.6)
        grad_states = torch.randn(B, T, H, generator=g, dtype=torch.float64)
        if k == 3:
            grad_states[:, :-1] = 0  # a loss on the last state only
        params = [p.clone().requires_grad_() for p in (W, U, b, s0)]
        states = _forward(x, params[3], params[0], params[1], params[2])
        expected = torch.autograd.grad((states * grad_states).sum(), params)
        with torch.no_grad():  # by hand: no autograd inside bptt
            result = bptt(x, s0, W, U, b, states.detach(), grad_states)
        check_true(isinstance(result, tuple) and len(result) == 4,
                   "bptt must return a tuple (dW, dU, db, ds0)")
        for name, got, want in zip(("dW", "dU", "db", "ds0"), result, expected, strict=True):
            check_shape(got, tuple(want.shape), f"{name} for B={B}, T={T}, E={E}, H={H}")
            check_close(got, want, f"{name} vs autograd (case {k})", atol=1e-9, rtol=1e-7)


# ---------------------------------------------------------------- exercise 2: gradient norm by lag
def _reference_norms(x, s0, W, U, b):
    states = _unroll(x, s0.detach().clone().requires_grad_(), W, U, b, retain_grad=True)
    states[-1].sum().backward()
    return torch.stack([states[-1 - k].grad.norm() for k in range(len(states))])


def test_lag_gradient_norms(lag_gradient_norms) -> None:
    # exact case: zero input and state keep tanh in its linear regime, so the norm is rho^k
    for rho, (B, T, H) in [(0.5, (2, 6, 4)), (1.3, (3, 5, 5)), (1.0, (1, 1, 3))]:
        g = _gen(int(rho * 100) + T)
        Q, _ = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))
        U = rho * Q
        W = torch.randn(2, H, generator=g, dtype=torch.float64)
        norms = lag_gradient_norms(torch.zeros(B, T, 2, dtype=torch.float64),
                                   torch.zeros(B, H, dtype=torch.float64), W, U,
                                   torch.zeros(H, dtype=torch.float64))
        check_shape(norms, (T,), "lag_gradient_norms output")
        expected = math.sqrt(B * H) * rho ** torch.arange(T, dtype=torch.float64)
        check_close(norms, expected, f"norms for U = {rho} x orthogonal, zero input", atol=1e-9,
                    rtol=1e-7, hint="norms[k] is the norm of the gradient of s_T.sum() with respect "
                                    "to the state k steps before the last")
    # general case against a reference
    for k, (B, T, E, H) in enumerate(SHAPES):
        x, s0, W, U, b = _problem(_gen(1100 + k), B, T, E, H, u_scale=0.9)
        norms = lag_gradient_norms(x, s0, W, U, b)
        check_true(not norms.requires_grad, "return plain numbers: detach the norms")
        check_close(norms, _reference_norms(x, s0, W, U, b), f"gradient norms by lag (case {k})",
                    atol=1e-9, rtol=1e-7)


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
        for params in _param_sets(int(max_norm * 10)):
            twins = [nn.Parameter(p.detach().clone()) for p in params]
            for t, p in zip(twins, params, strict=True):
                t.grad = p.grad.clone()
            expected_total = torch.nn.utils.clip_grad_norm_(twins, max_norm)
            total = clip_grad_norm(params, max_norm)
            check_close(torch.as_tensor(total, dtype=torch.float64), expected_total,
                        "returned total norm (before clipping)", atol=1e-9, rtol=1e-7,
                        hint="return the norm of all gradients together, measured before scaling")
            for i, (p, t) in enumerate(zip(params, twins, strict=True)):
                check_close(p.grad, t.grad, f"gradient {i} after clipping to {max_norm}",
                            atol=1e-9, rtol=1e-7,
                            hint="one factor for all tensors: max_norm / (total + 1e-6), and only "
                                 "when it is below 1")
    # parameters without a gradient are skipped, not an error
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))
    a.grad = torch.full((3,), 4.0)
    total = clip_grad_norm([a, b], 1.0)
    check_close(torch.as_tensor(total, dtype=torch.float32), torch.tensor(48.0).sqrt(), "total norm",
                atol=1e-4, hint="skip parameters whose .grad is None")
    check_true(b.grad is None, "a parameter without a gradient must keep .grad = None")


# ---------------------------------------------------------------- exercise 4: the adding problem
def test_adding_problem(adding_problem) -> None:
    for n, T in [(64, 10), (1, 2), (200, 50), (7, 3)]:
        x, y = adding_problem(n, T, _gen(1300 + T))
        check_shape(x, (n, T, 2), f"x for n={n}, T={T}")
        check_shape(y, (n,), "y")
        check_true(x.dtype == torch.float32 and y.dtype == torch.float32, "x and y should be float32")
        values, markers = x[..., 0], x[..., 1]
        check_true(bool(((values >= 0) & (values <= 1)).all()), "values must lie in [0, 1]")
        check_true(bool(((markers == 0) | (markers == 1)).all()), "markers must be 0 or 1")
        check_true(bool((markers.sum(1) == 2).all()), "every sequence needs exactly two markers")
        half = T // 2
        check_true(bool((markers[:, :half].sum(1) == 1).all()),
                   "the first marker must lie in the first half (positions 0 .. T//2 - 1)")
        check_close(y, (values * markers).sum(1), "y, the sum of the two marked values", atol=1e-6)
    # the generator alone decides the data
    torch.manual_seed(1)
    a = adding_problem(16, 20, _gen(7))
    torch.manual_seed(2)
    b = adding_problem(16, 20, _gen(7))
    check_true(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]),
               "two calls with equally seeded generators must give the same data: pass "
               "generator=... to every torch.rand/randint call")
    c = adding_problem(16, 20, _gen(8))
    check_true(not torch.equal(a[0], c[0]), "different generator seeds gave the same data")
    positions = torch.stack([adding_problem(1, 20, _gen(s))[0][0, :, 1].nonzero()[:, 0] for s in range(200)])
    check_true(len(set(positions[:, 0].tolist())) >= 8 and len(set(positions[:, 1].tolist())) >= 8,
               "marker positions should be drawn uniformly within each half")


# ---------------------------------------------------------------- exercise 5: the delay task
def test_delay_task(delay_task) -> None:
    for n, T, lag, K in [(8, 10, 3, 5), (1, 4, 1, 2), (16, 40, 20, 8), (3, 6, 5, 4)]:
        x, y = delay_task(n, T, lag, K, _gen(1400 + lag))
        check_shape(x, (n, T), f"x for n={n}, T={T}")
        check_shape(y, (n, T), "y")
        check_true(x.dtype == torch.long and y.dtype == torch.long, "x and y should be int64 (long)")
        check_true(bool(((x >= 0) & (x < K)).all()), f"symbols must lie in 0 .. {K - 1}")
        check_true(bool((y[:, :lag] == -100).all()),
                   f"the first {lag} targets have nothing to recall and must be -100 (ignored by "
                   "the loss)")
        check_true(torch.equal(y[:, lag:], x[:, : T - lag]),
                   f"y[:, t] must equal x[:, t - {lag}] for t >= {lag}")
    torch.manual_seed(1)
    a = delay_task(4, 12, 2, 6, _gen(3))
    torch.manual_seed(2)
    b = delay_task(4, 12, 2, 6, _gen(3))
    check_true(torch.equal(a[0], b[0]), "the generator alone must decide the data")
    check_true(len(set(delay_task(64, 30, 2, 6, _gen(4))[0].flatten().tolist())) == 6,
               "every symbol should occur")


def _budget():
    from seqcourse.env import get_profile

    return get_profile().budget("02-bptt")


def test_adding_experiment(adding_problem, runs: dict) -> None:
    """The RNN stays at the trivial baseline on long sequences (re-run here with a fixed seed)."""
    from seqcourse.tasks import ADDING_BASELINE_MSE, train_adding

    guard.verify()
    test_adding_problem(adding_problem)  # an experiment counts only on the task it claims to run
    budget = _budget()
    T = max(budget.adding_lengths)
    rerun = train_adding(adding_problem, T, budget.adding_steps, seed=11)
    check_true(rerun.score >= budget.adding_fail_fraction * ADDING_BASELINE_MSE,
               f"at T={T} the RNN reached MSE {rerun.score:.4f}, below the baseline "
               f"{ADDING_BASELINE_MSE:.4f}: is the target really the sum of the two marked values?")
    check_type(runs, dict, "adding_runs")
    check_true(set(runs) == set(budget.adding_lengths), f"run every length of the budget: {budget.adding_lengths}")


def test_long_lag_failure(delay_task) -> None:
    """A vanilla RNN learns a short delay and fails a long one: re-run here at both ends."""
    from seqcourse.tasks import train_delay

    guard.verify()
    test_delay_task(delay_task)  # an experiment counts only on the task it claims to run
    budget = _budget()
    chance = 1 / budget.num_symbols
    short_lag, long_lag = min(budget.lags), max(budget.lags)
    short = train_delay(delay_task, short_lag, budget.delay_steps, budget.hidden, budget.num_symbols,
                        seed=12).score
    check_true(short >= budget.short_lag_min_acc,
               f"at lag {short_lag} the RNN reached only {short:.3f}; it should learn a short "
               "delay. Check that y[:, t] = x[:, t - lag].")
    long_ = train_delay(delay_task, long_lag, budget.delay_steps, budget.hidden, budget.num_symbols,
                        seed=12).score
    check_true(long_ <= chance + budget.long_lag_margin,
               f"at lag {long_lag} the RNN reached {long_:.3f}, well above chance ({chance:.3f})")
