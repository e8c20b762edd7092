"""What several lessons' hidden tests share: an argument left unchanged by the call, and a call whose
exception becomes a check failure. (A lesson's data generators are never copied here: the hidden
tests ask the vault for the reference, ``EXERCISES.reference("adding_problem")``.)"""

from __future__ import annotations

import torch

from seqcourse.checks import CheckError, check_true


def snapshot(**tensors) -> dict:
    return {name: t.detach().clone() for name, t in tensors.items()}


def check_unchanged(saved: dict, now: dict, function: str, hint: str | None = None) -> None:
    for name, before in saved.items():
        after = now[name].detach()
        check_true(after.shape == before.shape and torch.equal(after, before),
                   f"{function} changed its argument {name} in place",
                   hint=hint or "work on new tensors: an in-place operation (x += ..., x.copy_(...), "
                                "x[...] = ..., a method ending in _) changes the caller's tensor")


def call(fn, *args, what: str, hint: str | None = None, **kwargs):
    """``fn(*args)``; an exception becomes a check failure that says which case raised it."""
    __tracebackhide__ = True
    try:
        return fn(*args, **kwargs)
    except CheckError:
        raise
    except Exception as exc:   # noqa: BLE001 -- any error of the learner's code is reported
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckError(f"{what} raised {type(exc).__name__}: {first}" + (f"\nHint: {hint}" if hint else "")) from exc
