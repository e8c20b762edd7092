"""Plumbing for lesson 07: one training run of a sequence regressor on a generated task.

The recurrences themselves (linear attention, minGRU, sLSTM) are the lesson's exercises and never
live here; the runner takes a model that is already built and a task generator as arguments, so
the same loop trains lesson 03's LSTM and the learner's minGRU and sLSTM on the same batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm


@dataclass
class RegressionRun:
    """What one run produced: losses per step, the held-out MSE, the seconds it trained."""

    losses: list[float] = field(default_factory=list)
    score: float = float("nan")   # mean squared error on held-out sequences
    seconds: float = 0.0
    diverged: bool = False
    model: nn.Module | None = field(default=None, repr=False)


def train_regressor(model: nn.Module, task: Callable, T: int, steps: int, lr: float = 1e-2, batch: int = 64,
                    seed: int = 0, held_out: int = 1000, device: torch.device | str = "cpu",
                    desc: str | None = None) -> RegressionRun:
    """Train ``model`` (x (B, T, F) -> (B,)) with Adam on ``task(n, T, generator)`` for ``steps``
    batches; return the run with its held-out MSE on ``held_out`` fresh sequences.

    Every model given the same ``seed`` sees the same batches. A run whose loss becomes NaN or
    infinite stops and is marked ``diverged``.
    """
    device = torch.device(device)
    model = model.to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run = RegressionRun(model=model)
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc=desc, disable=desc is None, leave=False):
        x, y = task(batch, T, gen)
        loss = nn.functional.mse_loss(model(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = loss.item()
        run.losses.append(value)
        if not math.isfinite(value):
            run.diverged = True
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    run.seconds = time.perf_counter() - start
    if not run.diverged:
        x, y = task(held_out, T, torch.Generator().manual_seed(seed + 10_000))
        with torch.no_grad():
            run.score = float(nn.functional.mse_loss(model(x.to(device)), y.to(device)))
    return run
