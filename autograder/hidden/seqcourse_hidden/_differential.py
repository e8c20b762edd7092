"""Differential tests: the learner's answer against the reference answer on generated inputs.

The hand-written hidden tests hold each exercise to chosen cases, with messages that name the
likely mistake. These hold it to the reference (the solution cell, from the vault) on inputs that
Hypothesis generates within what the exercise's *Graded on* states: the sizes (B = 1 and T = 1
included), both dtypes, the magnitudes it names (zeros, ordinary values, saturating ones), and
the kinds of input (a given state or none, a tuple or a list). For each input they compare
everything a call may touch, not only what it returns:

- the result: same types, shapes and dtypes, and values within the tolerance of the dtype
  (``TOLERANCE``: float64 to 1e-9 + 1e-7 * |expected|, float32 to 1e-5 + 1e-4 * |expected|, the
  same as every lesson states);
- the arguments after the call (an in-place change the reference does not make), a passed
  generator's state and torch's global random state;
- the gradients with respect to the inputs the case names;
- a module's train/eval mode.

Hypothesis runs with ``derandomize=True`` and no example database, so grading the same notebook
twice tries the same inputs; without shrinking, so a failure costs no extra time. The first
differing input is reported with what differs, through the checks' usual messages.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from torch import nn

# The unguarded checks: differential() runs the tamper guard itself, before and after its inputs;
# once per comparison it would cost more than the comparisons (hundreds per test).
from seqcourse.checks import CheckError
from seqcourse.checks import _check_close as check_close
from seqcourse.checks import _check_true as check_true
from seqcourse.guard import TamperError, verify

TOLERANCE = {torch.float64: dict(atol=1e-9, rtol=1e-7), torch.float32: dict(atol=1e-5, rtol=1e-4)}


def _without_local_constants() -> bool:
    """Hypothesis mixes constants read from the source of every "local" module loaded in the process
    into a few of its draws: a module a notebook imports from its own folder would change the
    inputs, and so a grade. Pin that pool empty (done once, when the hidden tests load; before the
    grading sandbox takes its snapshot of the libraries). False where this Hypothesis has no pool."""
    try:
        from hypothesis.internal.conjecture import providers
        empty = providers.Constants(integers=providers.SortedSet(), floats=providers.SortedSet(key=providers.float_to_int),
                                    bytes=providers.SortedSet(), strings=providers.SortedSet())
    except (ImportError, AttributeError, TypeError):
        return False
    if not callable(getattr(providers, "_get_local_constants", None)):
        return False
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()
    return True


LOCAL_CONSTANTS_PINNED = _without_local_constants()
DTYPES = (torch.float64, torch.float32)


@dataclass
class Case:
    """One generated input: the call's arguments, what it is (for messages), and the positions of
    the tensor arguments whose gradients are compared."""

    args: tuple
    label: str
    kwargs: dict = field(default_factory=dict)
    grads: tuple[int, ...] = ()


# ---------------------------------------------------------------- building blocks for strategies
SCALES = (0.0, 0.5, 1.0, 1e3)   # zero, ordinary and saturating magnitudes


def seeds():
    return st.integers(0, 2**31 - 1)


def dtypes():
    return st.sampled_from(DTYPES)


def pick(draw, options):
    """One of ``options``, spread evenly over a test's inputs: the index comes from a wide integer.
    (Derandomised, Hypothesis builds inputs by mutating earlier ones, and ``st.sampled_from`` can
    then leave one combination of choices out for hundreds of inputs: lesson 06's additive score
    in float64 never came in 150.)"""
    options = tuple(options)
    return options[_mix(draw(st.integers(0, 2**32 - 1))) % len(options)]


def _mix(n: int) -> int:
    """SplitMix64's finaliser: Hypothesis favours small and boundary integers, and a plain modulo
    of those favours the first options."""
    n = (n + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    n = ((n ^ (n >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    n = ((n ^ (n >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return n ^ (n >> 31)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def with_grad(tensors, dtype) -> tuple:
    """The tensors, requiring gradients in float64 (whose gradients are compared)."""
    return tuple(t.requires_grad_() for t in tensors) if dtype == torch.float64 else tuple(tensors)


def randn(gen: torch.Generator, *shape, dtype=torch.float64, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64).mul(scale).to(dtype)


def lengths(gen: torch.Generator, B: int, T: int) -> torch.Tensor:
    """(B,) lengths from 1 to T in any order, one of them T."""
    out = torch.randint(1, T + 1, (B,), generator=gen)
    out[int(torch.randint(0, B, (1,), generator=gen))] = T
    return out


# ---------------------------------------------------------------- copying and comparing
def _clone(value):
    """An independent copy of a call's arguments, taken together (an optimizer keeps pointing at its
    copied model's parameters); generators keep their state, tensors their requires_grad."""
    memo: dict = {}

    def generators(v):
        if isinstance(v, torch.Generator) and id(v) not in memo:
            twin = torch.Generator(device=v.device)
            twin.set_state(v.get_state())
            memo[id(v)] = twin
        elif isinstance(v, (list, tuple)):
            for item in v:
                generators(item)
        elif isinstance(v, dict):
            for item in v.values():
                generators(item)

    generators(value)
    twin = copy.deepcopy(value, memo)
    for source in _walk(value):                    # deepcopy leaves .grad behind, and gradients left
        copied = memo.get(id(source))              # by earlier code are part of the input
        if source.grad is not None and isinstance(copied, torch.Tensor):
            copied.grad = source.grad.detach().clone()
    return twin


def _walk(value):
    """Every tensor in ``value``, a module's parameters included."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, nn.Module):
        yield from value.parameters()
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)


def same(got, want, where: str, label: str, hint: str | None = None) -> None:
    """``got`` (the learner's) equals ``want`` (the reference's): types, shapes, dtypes, values."""
    __tracebackhide__ = True
    if isinstance(want, torch.Tensor):
        check_true(isinstance(got, torch.Tensor), f"{where} should be a tensor for {label}, got {type(got).__name__}",
                   hint=hint)
        check_true(got.dtype == want.dtype, f"{where} is {got.dtype} for {label}; the reference's is {want.dtype}",
                   hint="keep the inputs' dtype: make new tensors with x.new_zeros(...) or dtype=x.dtype")
        check_true(tuple(got.shape) == tuple(want.shape),
                   f"{where} has shape {tuple(got.shape)} for {label}; the reference's is {tuple(want.shape)}", hint=hint)
        if want.is_floating_point():
            undefined = torch.isnan(want.detach())       # where the reference itself is NaN, so must the answer be
            if bool(undefined.any()):
                check_true(got.is_floating_point() and torch.equal(torch.isnan(got.detach()), undefined),
                           f"{where} for {label}: NaN where the reference has none, or a value where it has NaN",
                           hint=hint)
                got, want = got.detach().masked_fill(undefined, 0), want.detach().masked_fill(undefined, 0)
            check_close(got, want, f"{where} for {label}", hint=hint, **TOLERANCE.get(want.dtype, TOLERANCE[torch.float32]))
        else:
            check_true(torch.equal(got, want), f"{where} differs from the reference's for {label}", hint=hint)
    elif isinstance(want, (list, tuple)):
        check_true(isinstance(got, (list, tuple)) and len(got) == len(want),
                   f"{where} should be a sequence of {len(want)} for {label}, got {type(got).__name__}"
                   + (f" of {len(got)}" if isinstance(got, (list, tuple)) else ""), hint=hint)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            same(g, w, f"{where}[{i}]", label, hint)
    elif isinstance(want, dict):
        check_true(isinstance(got, dict) and set(got) == set(want), f"{where} should have the keys {sorted(want)} "
                   f"for {label}", hint=hint)
        for k in want:
            same(got[k], want[k], f"{where}[{k!r}]", label, hint)
    elif isinstance(want, torch.optim.Optimizer):
        same(got.state_dict()["state"], want.state_dict()["state"], f"{where}'s state", label, hint)
    elif isinstance(want, torch.Generator):
        check_true(torch.equal(got.get_state(), want.get_state()),
                   f"{where}: the generator was advanced differently from the reference for {label}",
                   hint="draw from the generator you are given, each draw once, in the order the text states")
    elif isinstance(want, nn.Module):
        check_true(isinstance(got, nn.Module) and repr(got) == repr(want),
                   f"{where} is {got!r} for {label}; the reference's is {want!r}", hint=hint)
        check_true(got.training == want.training, f"{where}: train/eval mode {'train' if got.training else 'eval'} "
                   f"after the call for {label}; the reference leaves it {'train' if want.training else 'eval'}",
                   hint="leave the model's mode as you found it: the caller decides (no model.eval() inside)")
        mine, ref = got.state_dict(), want.state_dict()
        check_true(set(mine) == set(ref), f"{where}: its parameters {sorted(mine)} differ from the reference's "
                   f"{sorted(ref)} for {label}", hint=hint)
        for k in ref:
            same(mine[k], ref[k], f"{where}.{k}", label, hint)
    elif isinstance(want, bool) or want is None or isinstance(want, str):
        check_true(got == want and type(got) is type(want), f"{where} is {got!r} for {label}; the reference gives "
                   f"{want!r}", hint=hint)
    elif isinstance(want, int):
        check_true(type(got) is int and got == want, f"{where} is {got!r} ({type(got).__name__}) for {label}; "
                   f"the reference gives the int {want}", hint=hint)
    elif isinstance(want, float):
        check_true(isinstance(got, float), f"{where} should be a Python float for {label}, got {type(got).__name__}",
                   hint=hint)
        check_close(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
                    f"{where} for {label}", hint=hint, **TOLERANCE[torch.float64])
    else:
        check_true(got == want, f"{where} is {got!r} for {label}; the reference gives {want!r}", hint=hint)


def _projection(out, gen: torch.Generator):
    """A scalar from every floating tensor of the result, with random weights (a plain sum would let
    mistakes that cancel out pass)."""
    total = None
    tensors = [t for t in _tensors(out) if t.is_floating_point() and t.requires_grad]
    for t in tensors:
        w = torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype)
        term = (t * w).sum()
        total = term if total is None else total + term
    return total


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def compare_call(learner: Callable, reference: Callable, case: Case, what: str, hint: str | None = None,
                 outputs: bool = True) -> None:
    """One input: run both on independent copies and compare all a call may touch."""
    __tracebackhide__ = True
    mine, ref = _clone(case.args), _clone(case.args)
    mine_kw, ref_kw = _clone(case.kwargs), _clone(case.kwargs)
    state = torch.get_rng_state()
    try:
        got = learner(*mine, **mine_kw)
    except CheckError:
        raise
    except Exception as exc:   # noqa: BLE001 -- any error of the learner's code is a failure here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckError(f"{what} raised {type(exc).__name__} for {case.label}: {first}"
                         + (f"\nHint: {hint}" if hint else "")) from exc
    after_mine = torch.get_rng_state()
    torch.set_rng_state(state)
    want = reference(*ref, **ref_kw)
    after_ref = torch.get_rng_state()
    check_true(torch.equal(after_mine, after_ref), f"{what} changed torch's global random state for {case.label}, "
               "and the reference does not", hint="draw only from a generator you are given; never reseed torch")
    if outputs:
        same(got, want, f"{what}'s result", case.label, hint)
    same(list(mine), list(ref), f"{what}'s arguments after the call", case.label,
         hint="the reference leaves its arguments as they were: compute new tensors, no in-place edits")
    for i, (a, b) in enumerate(zip(_walk(list(mine)), _walk(list(ref)), strict=False)):
        check_true(a.requires_grad == b.requires_grad, f"{what} switched requires_grad of one of its arguments "
                   f"({i + 1}) {'on' if a.requires_grad else 'off'} for {case.label}",
                   hint="work on a copy: x.detach().clone().requires_grad_(), never x.requires_grad_() on the caller's tensor")
    same(mine_kw, ref_kw, f"{what}'s keyword arguments after the call", case.label)
    if case.grads:
        mine_loss = _projection(got, torch.Generator().manual_seed(7))
        ref_loss = _projection(want, torch.Generator().manual_seed(7))
        check_true(mine_loss is not None, f"{what}'s result carries no gradient for {case.label}",
                   hint="differentiable torch operations only: no .detach(), torch.no_grad() or .item() inside")
        mine_loss.backward()
        ref_loss.backward()
        for i in case.grads:
            a, b = mine[i], ref[i]
            check_true(a.grad is not None, f"no gradient reached argument {i + 1} of {what} for {case.label}",
                       hint="differentiable torch operations only: no .detach(), torch.no_grad() or .item() inside")
            same(a.grad, b.grad, f"the gradient with respect to argument {i + 1} of {what}", case.label)


def differential(learner: Callable, reference: Callable, cases, what: str, examples: int,
                 hint: str | None = None, outputs: bool = True) -> None:
    """``learner`` against ``reference`` on ``examples`` inputs drawn from the strategy ``cases``."""
    __tracebackhide__ = True

    ran = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, verbosity=Verbosity.quiet,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(cases)
    def run(case):
        ran.append(case.label)
        compare_call(learner, reference, case, what, hint, outputs)

    verify()
    try:
        run()
        verify()        # a call that replaced a function the checks rely on voids what they passed
        if not ran:     # an engine changed so that nothing runs is no pass
            raise CheckError(f"{what}: no generated input was tried (was Hypothesis changed?)")
    except (CheckError, TamperError):
        raise
    except Exception as exc:   # noqa: BLE001 -- Hypothesis's own report of a failure (e.g. flaky)
        inner = [e for e in getattr(exc, "exceptions", ()) if isinstance(e, CheckError)]
        if inner:
            raise inner[0] from None
        raise CheckError(f"{what} failed on generated inputs: {type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc


def module_call(make: Callable, args: tuple, seed: int, state: dict | None = None):
    """``make(*args)`` built under ``seed`` (the same initial weights for the learner's class and
    the reference's), then given ``state`` (the reference's weights) when there is one."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make(*args)
    if state is not None:
        model.load_state_dict(state)
    return model
