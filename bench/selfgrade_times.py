"""How long a learner waits for `course selfgrade`, per lesson: the command as a learner runs it,
on a finished notebook (the student edition with the reference answers), in a fresh process.

    python bench/selfgrade_times.py [--repeats 2] [lesson ...]    # writes bench/results/selfgrade.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "selfgrade.md"
GOAL_S = 20

from seqcourse_grader.catalogue import student_submission  # noqa: E402
from seqcourse_grader.nbg import assignments  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lessons", nargs="*")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    course = [str(Path(sys.executable).parent / "course")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for aid in args.lessons or assignments():
            path = Path(tmp) / aid / f"{aid}.ipynb"
            path.parent.mkdir()
            nbformat.write(student_submission(aid), path)
            times, last = [], ""
            for _ in range(args.repeats):
                start = time.perf_counter()
                run = subprocess.run(course + ["selfgrade", str(path)], capture_output=True, text=True, timeout=900)
                times.append(time.perf_counter() - start)
                last = next((ln for ln in run.stdout.splitlines() if ln.startswith(aid)), run.stdout[-200:])
            rows.append((aid, statistics.median(times), min(times), last.strip()))
            print(f"{aid}: median {rows[-1][1]:.1f} s  {last}", flush=True)
    lines = ["# `course selfgrade` per lesson: how long a learner waits", "",
             f"Command: `python bench/selfgrade_times.py --repeats {args.repeats}`. Machine: {platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}. Each run is a fresh `course selfgrade` "
             "process on a finished notebook: the lesson is generated, a kernel zygote starts beside it, the "
             "notebook runs under the ci budget with one torch thread, and the report is printed.", "",
             f"| lesson | median (s) | fastest (s) | within {GOAL_S} s | result |", "|---|---|---|---|---|"]
    for aid, med, best, last in rows:
        lines.append(f"| {aid} | {med:.1f} | {best:.1f} | {'yes' if med <= GOAL_S else 'no'} | {last} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
