"""A small training loop with a progress bar and per-epoch metrics.

The lesson's ``train_step`` (one optimisation step on one batch) is passed in, so the loop is
plumbing and the learning step stays the learner's work.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from seqcourse.text import batch_cap

Batch = tuple[torch.Tensor, ...]


def _batches(loader) -> tuple[int, object]:
    """How many batches an epoch has, and an iterator over them (any loader: at most
    :func:`seqcourse.text.batch_cap` of them)."""
    cap = batch_cap()
    n = min(len(loader), cap) if cap > 0 else len(loader)
    return n, itertools.islice(loader, n)


@dataclass
class History:
    """Per-epoch metrics; ``rows`` is a list of dicts, one per epoch."""

    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def __getitem__(self, key: str) -> list[float]:
        return [r[key] for r in self.rows]

    def last(self, key: str) -> float:
        return self.rows[-1][key]

    def best(self, key: str, mode: str = "max") -> float:
        values = self[key]
        return max(values) if mode == "max" else min(values)

    def __len__(self) -> int:
        return len(self.rows)


def to_device(batch: Batch, device: torch.device) -> Batch:
    return tuple(t.to(device) for t in batch)


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn: Callable, device: torch.device | str = "cpu"):
    """Mean loss, accuracy and the predictions over ``loader``.

    Batches are ``(tokens, lengths, labels)``; the model is called as ``model(tokens, lengths)``.
    Returns ``(loss, accuracy, predictions (N,), labels (N,))``.
    """
    was_training = model.training
    model.eval()
    total_loss, preds, golds = 0.0, [], []
    for batch in _batches(loader)[1]:
        tokens, lengths, labels = to_device(batch, torch.device(device))
        logits = model(tokens, lengths)
        total_loss += float(loss_fn(logits, labels)) * len(labels)
        preds.append(logits.argmax(dim=-1).cpu())
        golds.append(labels.cpu())
    model.train(was_training)
    if not preds:
        raise ValueError("evaluate got an empty loader")
    preds, golds = torch.cat(preds), torch.cat(golds)
    return total_loss / len(golds), float((preds == golds).float().mean()), preds, golds


def fit(model: nn.Module, train_loader, val_loader, optimizer: torch.optim.Optimizer,
        loss_fn: Callable, train_step: Callable, epochs: int,
        device: torch.device | str = "cpu", progress: bool = True, log_every: int = 1) -> History:
    """Train for ``epochs`` epochs with ``train_step(model, batch, optimizer, loss_fn) -> float``.

    Shows a progress bar over batches, prints one line of metrics per ``log_every`` epochs and
    returns a :class:`History` with ``train_loss``, ``val_loss`` and ``val_acc`` per epoch.
    Stops with a clear error if the loss becomes NaN or infinite.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    device = torch.device(device)
    model.to(device)
    history = History()
    start = time.perf_counter()
    total = epochs * _batches(train_loader)[0]
    with tqdm(total=total, desc="training", unit="batch", disable=not progress, leave=False) as bar:
        for epoch in range(1, epochs + 1):
            model.train()
            running, seen = 0.0, 0
            for batch in _batches(train_loader)[1]:
                batch = to_device(batch, device)
                loss = train_step(model, batch, optimizer, loss_fn)
                loss = float(loss)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"loss became {loss} at epoch {epoch}: lower the learning rate, or check "
                        "the model for a division by zero or a log of zero")
                n = len(batch[-1])
                running, seen = running + loss * n, seen + n
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{running / seen:.3f}")
            val_loss, val_acc, _, _ = evaluate(model, val_loader, loss_fn, device)
            row = dict(epoch=epoch, train_loss=running / seen, val_loss=val_loss, val_acc=val_acc)
            history.rows.append(row)
            if progress and (epoch % log_every == 0 or epoch == epochs):
                print(f"epoch {epoch:3d}  train loss {row['train_loss']:.3f}  "
                      f"val loss {val_loss:.3f}  val acc {val_acc:.3f}")
    history.seconds = time.perf_counter() - start
    return history


def confusion_matrix(preds: torch.Tensor, golds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (C, C): row = true class, column = predicted class."""
    idx = golds.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def fit_seq2seq(model: nn.Module, loader, epochs: int, lr: float, make_targets: Callable,
                loss_fn: Callable, bos_id: int, eos_id: int, device: torch.device | str = "cpu",
                clip: float = 1.0, amp: bool = False, desc: str = "training") -> tuple[list[float], float]:
    """Teacher-forced training of an encoder-decoder called as ``model(src, src_len, dec_in)``.

    ``make_targets(tgt, tgt_len, bos_id, eos_id) -> (dec_in, dec_out)`` and
    ``loss_fn(logits, dec_out)`` are the lesson's own (lesson 05). With ``amp`` on a CUDA device
    the forward pass runs in bfloat16 autocast (mixed precision). Returns the per-step losses and
    the seconds taken; stops with a clear error if the loss stops being finite.
    """
    device = torch.device(device)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    use_amp = amp and device.type == "cuda"
    losses, start = [], time.perf_counter()
    with tqdm(total=epochs * _batches(loader)[0], desc=desc, unit="batch", leave=False) as bar:
        for epoch in range(1, epochs + 1):
            for src, src_len, tgt, tgt_len in _batches(loader)[1]:
                dec_in, dec_out = make_targets(tgt, tgt_len, bos_id, eos_id)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits = model(src.to(device), src_len, dec_in.to(device))
                loss = loss_fn(logits.float(), dec_out.to(device))
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(f"loss became {value} in epoch {epoch}: lower the learning rate")
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimizer.step()
                losses.append(value)
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses, time.perf_counter() - start


@torch.no_grad()
def exact_match_and_outputs(model: nn.Module, data, decode: Callable, bos_id: int, eos_id: int,
                            max_len: int, device: torch.device | str = "cpu", batch_size: int = 512):
    """Greedy outputs for every pair of ``data`` (a :class:`seqcourse.text.Pairs`), the references,
    and the share of outputs equal to their reference."""
    model.eval()
    preds, golds = [], []
    cap = batch_cap()
    n = min(len(data), cap * 32) if cap > 0 else len(data)
    for start in range(0, n, batch_size):
        batch = [data[i] for i in range(start, min(start + batch_size, n))]
        src, src_len, tgt, tgt_len = data.collate(batch)
        preds += decode(model, src.to(device), src_len, bos_id, eos_id, max_len)
        golds += [tgt[i, :tgt_len[i]].tolist() for i in range(len(batch))]
    return sum(p == g for p, g in zip(preds, golds, strict=True)) / max(1, len(golds)), preds, golds
