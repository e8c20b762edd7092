"""Checks several lessons' hidden tests share: an argument left unchanged by the call."""

from __future__ import annotations

import torch

from seqcourse.checks import check_true


def snapshot(**tensors) -> dict:
    return {name: t.detach().clone() for name, t in tensors.items()}


def check_unchanged(saved: dict, now: dict, function: str, hint: str | None = None) -> None:
    for name, before in saved.items():
        after = now[name].detach()
        check_true(after.shape == before.shape and torch.equal(after, before),
                   f"{function} changed its argument {name} in place",
                   hint=hint or "work on new tensors: an in-place operation (x += ..., x.copy_(...), "
                                "x[...] = ..., a method ending in _) changes the caller's tensor")
