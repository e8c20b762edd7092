"""A class of synthetic students on lesson 01: plain serial `nbgrader autograde` against
`course autograde` on the process pool and on a Dask LocalCluster, on the same machine in the same
run.

    python bench/grade_class.py [--students 40] [--workers N] [--cell-timeout 30] [--repeats 3]
    # writes bench/results/grade_class.md

The pool and Dask are run in turn (pool, Dask, pool, Dask, ...) ``--repeats`` times each, so a
drift in the machine's speed hits both; the figures are medians, and the Dask/pool ratio is taken
pair by pair.

The class mixes correct notebooks, wrong answers (catalogued mistakes), untouched stubs and
submissions that are bad in ways plain nbgrader survives (invalid JSON, os._exit, an infinite loop
after correct answers, sys.exit). Memory and fork bombs are left out on purpose: without limits
they would take the machine down, which is the point of the sandbox but not a benchmark. Both
runs use one thread per kernel and the same cell timeout.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_class_grading import AID, NAME, _after_answers, make_course  # noqa: E402

from seqcourse_grader.catalogue import load_catalogue, student_submission  # noqa: E402
from seqcourse_grader.classroom import grade_class  # noqa: E402
from seqcourse_grader.collect import collect_folder  # noqa: E402
from seqcourse_grader.course import STATUS_GRADED, Course  # noqa: E402
from seqcourse_grader.result import Limits  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "grade_class.md"


def make_class(n: int) -> dict[str, object]:
    """n submissions: 50% correct, 30% one wrong answer each, 10% stubs, 10% bad files."""
    mistakes = load_catalogue(AID)
    stub = nbformat.read(Path(__file__).resolve().parents[1] / "lessons" / AID / NAME, 4)
    bad = [("invalid-json", b'{"cells": ['), ("os-exit", _after_answers("import os\nos._exit(1)")),
           ("loop", _after_answers("while True:\n    pass")), ("sys-exit", _after_answers("import sys\nsys.exit()"))]
    subs = {}
    for i in range(n):
        r = i % 10
        if r < 5:
            subs[f"s{i:03d}-correct"] = student_submission(AID)
        elif r < 8:
            m = mistakes[i % len(mistakes)]
            subs[f"s{i:03d}-wrong"] = student_submission(AID, {m.cell: m.source})
        elif r == 8:
            subs[f"s{i:03d}-stub"] = stub
        else:
            kind, item = bad[(i // 10) % len(bad)]
            subs[f"s{i:03d}-{kind}"] = item
    return subs


def write_class(course: Course, subs: dict) -> None:
    inbox = course.root / "inbox"
    for student, item in subs.items():
        folder = inbox / student
        folder.mkdir(parents=True)
        if isinstance(item, bytes):
            (folder / NAME).write_bytes(item)
        else:
            nbformat.write(item, folder / NAME)
    collect_folder(course, AID, inbox)


def plain_nbgrader(course: Course, cell_timeout: int) -> float:
    """`nbgrader autograde` as an instructor runs it: one command, every student, one at a time."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", AID, "--force",
                    f"--CourseDirectory.root={course.root}", f"--CourseDirectory.db_url={course.db_url}",
                    f"--Execute.timeout={cell_timeout}", "--log-level=ERROR"],
                   cwd=course.root, env=env, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--cell-timeout", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each scheduler, in turn")
    args = parser.parse_args()
    subs = make_class(args.students)
    work = Path(tempfile.mkdtemp(prefix="seqcourse-bench-class-"))
    try:
        plain = make_course(work / "plain")
        write_class(plain, subs)
        # the course's nbgrader settings, as the repository's root nbgrader_config.py loads them
        (plain.root / "nbgrader_config.py").write_text(
            f"c = get_config()\nload_subconfig({str(Path(__file__).resolve().parents[1] / 'autograder' / 'nbgrader_config.py')!r})\n")
        # plain nbgrader needs the assignment in its gradebook: generate it as an instructor would
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", AID, "--force",
                        f"--CourseDirectory.root={plain.root}", f"--CourseDirectory.db_url={plain.db_url}",
                        "--log-level=ERROR"],
                       cwd=plain.root, check=True, capture_output=True)
        print(f"plain nbgrader autograde, {len(subs)} students, serial ...", flush=True)
        plain_s = plain_nbgrader(plain, args.cell_timeout)
        plain_done = len([p for p in plain.autograded.glob(f"*/{AID}/{NAME}")])

        seconds, outcomes = {"pool": [], "local": []}, {"pool": [], "local": []}
        for repeat in range(args.repeats):
            for scheduler in ("pool", "local"):
                ours = make_course(work / f"{scheduler}-{repeat}")
                write_class(ours, subs)
                print(f"course autograde --scheduler {scheduler}, {args.workers} workers, run {repeat + 1} ...", flush=True)
                start = time.perf_counter()
                got = grade_class(ours, AID, workers=args.workers, limits=Limits(cell_timeout=args.cell_timeout),
                                  progress=True, scheduler=scheduler)
                seconds[scheduler].append(time.perf_counter() - start)
                outcomes[scheduler].append([(r.student, r.status, r.score, r.reasons, r.notes) for r in got])
                if scheduler == "pool":
                    results = got   # the table below lists the pool's outcomes
        ours_s, dask_s = statistics.median(seconds["pool"]), statistics.median(seconds["local"])
        ratios = [d / p for p, d in zip(seconds["pool"], seconds["local"], strict=True)]
        same = all(o == outcomes["pool"][0] for o in outcomes["pool"] + outcomes["local"])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    statuses = Counter(r.status for r in results)
    per_min = lambda n, s: 60 * n / s  # noqa: E731
    lines = [f"| {r.student} | {'-' if r.score is None else f'{r.score:g}'} | {r.status} | "
             f"{'; '.join(r.reasons) or '; '.join(r.notes) or ''} |" for r in results]
    text = f"""# Grading a class of {len(subs)} on lesson 01

Command: `python bench/grade_class.py --students {args.students} --workers {args.workers} --cell-timeout {args.cell_timeout} --repeats {args.repeats}`.
Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; one thread per kernel
in both runs; cell timeout {args.cell_timeout} s in both. Mix: 50% correct, 30% one catalogued mistake,
10% untouched stubs, 10% bad files (invalid JSON, os._exit, an infinite loop after correct answers,
sys.exit).

| run | seconds (median) | submissions per minute | notebooks with a result |
|---|---|---|---|
| plain `nbgrader autograde` (serial, no limits) | {plain_s:.0f} | {per_min(len(subs), plain_s):.1f} | {plain_done} autograded; {len(subs) - plain_done} failed, which `nbgrader export` shows as 0 |
| `course autograde --workers {args.workers}` (process pool, sandboxed) | {ours_s:.0f} | {per_min(len(subs), ours_s):.1f} | {len(results)} with a status: {statuses[STATUS_GRADED]} graded, {len(subs) - statuses[STATUS_GRADED]} need review |
| `course autograde --workers {args.workers} --scheduler local` (Dask LocalCluster) | {dask_s:.0f} | {per_min(len(subs), dask_s):.1f} | {len(results)} with a status; {"every run the same statuses, scores, reasons and notes as the pool" if same else "DIFFERENT from the pool"} |

Runs, in turn: pool {", ".join(f"{x:.1f}" for x in seconds["pool"])} s; Dask {", ".join(f"{x:.1f}" for x in seconds["local"])} s.

Speed ratio (pool / plain): **{plain_s / ours_s:.2f}x** (goal: at least 3x). Dask against the pool,
pair by pair: **{statistics.median(ratios):.2f}x** the pool's time (median; {min(ratios):.2f} to {max(ratios):.2f}; goal: within 1.10x). On {os.cpu_count()} cores, parallel
grading alone gives at most {os.cpu_count()}x; the rest is the kernel zygote (each kernel is forked from a
process that has imported torch and the course once, see `seqcourse_grader/kernels.py`), against
the sandbox's template copy per submission. Dask's figure includes starting the cluster.

## Every submission's outcome with `course autograde`

| student | score | status | reasons or notes |
|---|---|---|---|
""" + "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text[:1500])
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
