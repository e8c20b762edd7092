"""RNN, LSTM and GRU on the long-lag tasks of lessons 02 and 03, at several lags, same budget.

    python bench/long_lag.py [--steps 2000] [--delay-steps 1000]   # writes bench/results/long_lag.md

Both tasks are lesson 02's own solution cells, run here (the lessons' answers never live in the
library and are never copied); tests/test_release.py checks that they behave as those cells do.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import nbformat
import torch

from seqcourse.cells import run_cells
from seqcourse.paths import lesson_notebook
from seqcourse.tasks import ADDING_BASELINE_MSE, train_adding, train_delay

_LESSON_02 = run_cells(nbformat.read(lesson_notebook("02-bptt"), as_version=4), ["adding_problem", "delay_task"],
                       {"torch": torch}, label="02-bptt")
adding_problem, delay_task = _LESSON_02["adding_problem"], _LESSON_02["delay_task"]

OUT = Path(__file__).resolve().parent / "results" / "long_lag.md"


def forget_bias_one(lstm):
    H = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p[H:2 * H] = 1.0
            elif name.startswith("bias_hh"):
                p[H:2 * H] = 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000, help="training steps, adding problem")
    parser.add_argument("--delay-steps", type=int, default=1000, help="training steps, delay task")
    args = parser.parse_args()
    cells = ("rnn", "lstm", "gru")
    lines = ["# Long-lag tasks: RNN, LSTM and GRU under the same budget", "",
             f"Command: `python bench/long_lag.py --steps {args.steps} --delay-steps {args.delay_steps}`  ",
             f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}. "
             "Hidden size 32 (adding) and 64 (delay), Adam, batch 64, seed 0; LSTM forget-gate bias 1.", "",
             f"## Adding problem: held-out MSE after {args.steps} steps (baseline {ADDING_BASELINE_MSE:.4f})", "",
             "| T | " + " | ".join(c.upper() for c in cells) + " | seconds (all three) |", "|---|---|---|---|---|"]
    for T in (10, 25, 50, 100, 200):
        start = time.perf_counter()
        scores = [train_adding(adding_problem, T, args.steps, hidden=32, cell=c, lr=1e-2,
                               init=forget_bias_one if c == "lstm" else None).score for c in cells]
        secs = time.perf_counter() - start
        lines.append(f"| {T} | " + " | ".join(f"{s:.4f}" for s in scores) + f" | {secs:.0f} |")
        print(lines[-1], flush=True)
    lines += ["", f"## Delay task (8 symbols, chance 0.125): held-out accuracy after {args.delay_steps} steps", "",
              "| lag | " + " | ".join(c.upper() for c in cells) + " | seconds (all three) |", "|---|---|---|---|---|"]
    for lag in (1, 4, 8, 12, 16, 24, 32):
        start = time.perf_counter()
        scores = [train_delay(delay_task, lag, args.delay_steps, 64, 8, cell=c).score for c in cells]
        secs = time.perf_counter() - start
        lines.append(f"| {lag} | " + " | ".join(f"{s:.3f}" for s in scores) + f" | {secs:.0f} |")
        print(lines[-1], flush=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
