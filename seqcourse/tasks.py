"""Training runs on the long-lag tasks of Hochreiter and Schmidhuber (1997).

The task generators are exercises (lesson 02); these runners take a generator as an argument,
so lesson 02 can show a vanilla RNN failing and lesson 03 can run an LSTM on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _recurrent(cell: str, input_size: int, hidden: int) -> nn.Module:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    return CELLS[cell](input_size, hidden, batch_first=True)


class SymbolTagger(nn.Module):
    """Symbols (B, T) -> one prediction per step (B, T, K)."""

    def __init__(self, num_symbols: int, hidden: int, cell: str = "rnn", emb: int = 16):
        super().__init__()
        self.embedding = nn.Embedding(num_symbols, emb)
        self.rnn = _recurrent(cell, emb, hidden)
        self.out = nn.Linear(hidden, num_symbols)

    def forward(self, x):
        return self.out(self.rnn(self.embedding(x))[0])


class SequenceRegressor(nn.Module):
    """Vectors (B, T, F) -> one number per sequence, read from the last state."""

    def __init__(self, features: int, hidden: int, cell: str = "rnn"):
        super().__init__()
        self.rnn = _recurrent(cell, features, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.out(self.rnn(x)[0][:, -1]).squeeze(-1)


@dataclass
class TaskRun:
    """What one training run produced: losses per step and the final held-out score."""

    losses: list[float] = field(default_factory=list)
    score: float = float("nan")  # accuracy (delay task) or mean squared error (adding problem)
    diverged: bool = False
    model: nn.Module | None = field(default=None, repr=False)


def train_delay(delay_task: Callable, lag: int, steps: int, hidden: int = 64, num_symbols: int = 8,
                cell: str = "rnn", seed: int = 0, lr: float = 3e-3, batch: int = 64,
                extra: int = 20, progress: bool = False) -> TaskRun:
    """Train a tagger on ``delay_task(n, T, lag, K, generator)`` with T = lag + extra; return the
    held-out accuracy over the positions that have a target."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SymbolTagger(num_symbols, hidden, cell)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run = TaskRun(model=model)
    T = lag + extra
    for _ in tqdm(range(steps), desc=f"{cell}, lag {lag}", disable=not progress, leave=False):
        x, y = delay_task(batch, T, lag, num_symbols, gen)
        loss = nn.functional.cross_entropy(model(x).reshape(-1, num_symbols), y.reshape(-1),
                                           ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.losses.append(loss.item())
    x, y = delay_task(512, T, lag, num_symbols, gen)
    with torch.no_grad():
        pred = model(x).argmax(-1)
    mask = y != -100
    run.score = float((pred[mask] == y[mask]).float().mean())
    return run


def train_adding(adding_problem: Callable, T: int, steps: int, hidden: int = 32, cell: str = "rnn",
                 seed: int = 0, lr: float = 1e-3, batch: int = 64, optimizer: str = "adam",
                 clip: Callable | None = None, max_norm: float = 1.0, init_scale: float | None = None,
                 init: Callable | None = None, progress: bool = False) -> TaskRun:
    """Train a regressor on ``adding_problem(n, T, generator)``; return the held-out MSE.

    ``clip(parameters, max_norm)`` is called between backward and step when given.
    ``init_scale`` rescales the recurrent weights so their spectral radius equals it;
    ``init(recurrent_module)`` is called after that, e.g. to set the LSTM's forget-gate bias.
    A run whose loss becomes NaN or infinite stops and is marked ``diverged``.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SequenceRegressor(2, hidden, cell)
    if init_scale is not None:
        with torch.no_grad():
            for name, p in model.rnn.named_parameters():
                if name.startswith("weight_hh"):
                    radius = torch.linalg.eigvals(p.double()).abs().max().item()
                    p.mul_(init_scale / radius)
    if init is not None:
        init(model.rnn)
    opt = (torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=lr))
    run = TaskRun(model=model)
    for _ in tqdm(range(steps), desc=f"{cell}, T={T}", disable=not progress, leave=False):
        x, y = adding_problem(batch, T, gen)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            clip(list(model.parameters()), max_norm)
        opt.step()
        value = loss.item()
        run.losses.append(value)
        if not math.isfinite(value):
            run.diverged = True
            return run
    x, y = adding_problem(1000, T, gen)
    with torch.no_grad():
        run.score = float(nn.functional.mse_loss(model(x), y))
    return run


ADDING_BASELINE_MSE = 1 / 6  # always answering 1.0: the variance of the sum of two U(0, 1) values
