"""Plotting helpers shared by the lessons. Each returns the matplotlib Figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def plot_history(history, title: str = "training", metrics=("train_loss", "val_loss"),
                 acc_metric: str | None = "val_acc"):
    """Losses per epoch on the left axis, accuracy on the right."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    epochs = history["epoch"]
    for m in metrics:
        ax.plot(epochs, history[m], marker="o", ms=3, label=m.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title)
    lines, labels = ax.get_legend_handles_labels()
    if acc_metric:
        ax2 = ax.twinx()
        ax2.plot(epochs, history[acc_metric], color="tab:green", ls="--", label=acc_metric.replace("_", " "))
        ax2.set_ylabel("accuracy")
        ax2.set_ylim(0, 1)
        l2, lab2 = ax2.get_legend_handles_labels()
        lines, labels = lines + l2, labels + lab2
    # Below the axes: inside, it would cover one of the curves whatever corner it took.
    ax.legend(lines, labels, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=len(labels),
              frameon=False)
    fig.tight_layout()
    return fig


def plot_confusion(matrix, labels: Sequence[str], title: str = "confusion matrix", normalize: bool = True):
    """Rows are true classes, columns predicted; rows are normalised to sum to 1 by default."""
    m = np.asarray(matrix, dtype=float)
    if normalize:
        m = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(0.42 * len(labels) + 2, 0.42 * len(labels) + 1.5))
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_states(states, tokens: Sequence[str], title: str = "hidden state over time", max_units: int = 16):
    """Heatmap of a (T, H) state sequence: one column per input character."""
    s = np.asarray(states, dtype=float)[:, :max_units]
    fig, ax = plt.subplots(figsize=(0.45 * len(tokens) + 2, 3.2))
    im = ax.imshow(s.T, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(tokens)), list(tokens))
    ax.set_xlabel("input character (time)")
    ax.set_ylabel("hidden unit")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig
