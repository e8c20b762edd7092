"""Lesson 07's measured tables, from the stored outputs of its solution notebook.

The numbers are those of a real run of the notebook: `course run-solution 07-modern-rnn --profile cpu`
re-executes it in place (the speed table of section 2 and the experiment of section 4 are printed
by its cells); this script turns what those cells printed into Markdown, with the machine and the
versions, under bench/results/:

- `modern_rnn_speed.md`: minGRU, the loop against the log-space scan, forward and forward + backward;
- `modern_rnn_experiment.md`: LSTM, minGRU and sLSTM on the adding problem at one budget.

Usage: python bench/modern_rnn.py [--run]   (--run first re-runs the notebook under the cpu profile)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import torch

from seqcourse.paths import REPO_ROOT, lesson_notebook

LESSON = "07-modern-rnn"
RESULTS = REPO_ROOT / "bench" / "results"


def _printed(nb: dict, marker: str) -> str:
    """The text a code cell printed, for the first cell whose source contains ``marker``."""
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and marker in source:
            return "".join("".join(o["text"]) if isinstance(o["text"], list) else o["text"]
                           for o in cell.get("outputs", []) if o["output_type"] == "stream" and o["name"] == "stdout")
    raise SystemExit(f"no cell with {marker!r} in {LESSON}: did the notebook change?")


def _machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores shared with other work (the notebook ran with one "
            f"torch thread, as `course run-solution` sets), no GPU; torch {torch.__version__}, Python "
            f"{platform.python_version()}. The timings are of one run on a shared machine: compare them within "
            "the table, not across machines")


def speed_table(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = lines[0]
    rows = [ln.split("|") for ln in lines[2:] if ln.count("|") == 2]
    out = [f"_{head}_", "",
           "| T | loop forward (ms) | scan forward (ms) | loop / scan | loop forward + backward (ms) | "
           "scan forward + backward (ms) | loop / scan |", "|---|---|---|---|---|---|---|"]
    for t, fwd, both in rows:
        out.append("| " + " | ".join([t.strip(), *fwd.split(), *both.split()]) + " |")
    out += ["", *[ln for ln in lines if ln.startswith(("forward only", "forward and backward"))]]
    return "\n".join(out)


def experiment_table(text: str, verdicts: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = next(ln for ln in lines if " runs of " in ln)
    start = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["T", "model"])
    out = [f"_{head}_", "", "| T | model | H | trainable parameters | held-out MSE | seconds to train |",
           "|---|---|---|---|---|---|"]
    for ln in lines[start + 1:]:
        parts = ln.split()
        if len(parts) != 6 or not parts[0].isdigit():
            break
        out.append("| " + " | ".join(parts) + " |")
    out += ["", "Verdicts printed by the notebook (solved: held-out MSE at most 0.1 x the baseline 1/6):", ""]
    out += [f"- {ln}" for ln in verdicts.splitlines() if ln.startswith("T = ")]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="re-run the notebook under the cpu profile first")
    args = parser.parse_args()
    if args.run:
        subprocess.run([sys.executable, "-m", "seqcourse_grader.cli", "run-solution", LESSON, "--profile", "cpu"], check=True)
    nb = json.loads(lesson_notebook(LESSON).read_text(encoding="utf-8"))
    budget = next(ln for ln in _printed(nb, "guard.capture()").splitlines() if ln.startswith("Budget["))
    source = (f"Source: the stored outputs of `solutions/{LESSON}/{LESSON}.ipynb`, produced by `course run-solution "
              f"{LESSON} --profile cpu` (then `python bench/modern_rnn.py`). Budget: `{budget}`. "
              f"Machine: {_machine()}.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "modern_rnn_speed.md").write_text(
        "# minGRU: the loop against the log-space scan (lesson 07, section 2)\n\n" + source + "\n\n"
        "Median of the profile's repeats after one warm-up run; random pre-activations of shape (B, T, H), "
        "float32; forward only under `torch.no_grad()`, forward + backward through `.sum()`. Ratios above 1 "
        "mean the scan is faster.\n\n" + speed_table(_printed(nb, "def time_mingru")) + "\n", encoding="utf-8")
    (RESULTS / "modern_rnn_experiment.md").write_text(
        "# LSTM, minGRU and sLSTM on the adding problem at one budget (lesson 07, section 4)\n\n" + source
        + "\n\nEach model matched by `match_hidden` to the parameter count of an `nn.LSTM` with `exp_hidden` "
        "units, PyTorch's default initialisation (no forget-gate bias trick), Adam, the same batches (seed 0), "
        "held-out MSE on 1,000 fresh sequences; the baseline that always answers 1.0 scores 1/6 = 0.1667.\n\n"
        + experiment_table(_printed(nb, "hidden_sizes = {"), _printed(nb, "solved = budget")) + "\n",
        encoding="utf-8")
    print(f"wrote {RESULTS / 'modern_rnn_speed.md'} and {RESULTS / 'modern_rnn_experiment.md'}")


if __name__ == "__main__":
    main()
