"""How long a learner waits for `course selfgrade`, per lesson: the command as a learner runs it,
on a finished notebook (the student edition with the reference answers), in a fresh process.

    python bench/selfgrade_times.py [--repeats 2] [lesson ...]    # writes bench/results/selfgrade.md

Each lesson is timed on a quiet machine and again while another process keeps one core busy (a
learner's browser, another notebook): the goal holds for both.
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
            quiet, last = _times(course, path, aid, args.repeats, busy=False)
            busy, last_busy = _times(course, path, aid, args.repeats, busy=True)
            rows.append((aid, statistics.median(quiet), statistics.median(busy), last.strip(), last_busy.strip()))
            print(f"{aid}: median {rows[-1][1]:.1f} s quiet, {rows[-1][2]:.1f} s with a core busy  {last}", flush=True)
    lines = ["# `course selfgrade` per lesson: how long a learner waits", "",
             f"Command: `python bench/selfgrade_times.py --repeats {args.repeats}`. Machine: {platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}. Each run is a fresh `course selfgrade` "
             "process on a finished notebook: the lesson is generated, a kernel zygote starts beside it, the "
             "notebook runs under the ci budget with one torch thread, and the report is printed. *Busy*: the "
             "same while another process keeps one core busy (`while True: pass`).", "",
             f"| lesson | quiet, median (s) | one core busy, median (s) | within {GOAL_S} s | result (quiet) | "
             "result (busy) |", "|---|---|---|---|---|---|"]
    for aid, quiet, busy, last, last_busy in rows:
        within = "yes" if max(quiet, busy) <= GOAL_S else "no"
        lines.append(f"| {aid} | {quiet:.1f} | {busy:.1f} | {within} | {last} | {last_busy} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


def _times(course: list[str], path: Path, aid: str, repeats: int, busy: bool) -> tuple[list[float], str]:
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        times, last = [], ""
        for _ in range(repeats):
            start = time.perf_counter()
            run = subprocess.run(course + ["selfgrade", str(path)], capture_output=True, text=True, timeout=900)
            times.append(time.perf_counter() - start)
            last = next((ln for ln in run.stdout.splitlines() if ln.startswith(aid)), run.stdout[-200:])
        return times, last
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()


if __name__ == "__main__":
    main()
