"""Where the time of one lesson-01 autograde goes, with a fresh kernel per notebook (as plain
nbgrader starts one) and with a kernel forked from the grading worker's zygote.

    python bench/profile_autograde.py [--repeats 3]      # writes bench/results/autograde_profile.md

Stages: copying the class template and the submission; nbgrader's conversion (its preprocessors
other than the execution); the gradebook (nbgrader's autograde bookkeeping and reading the scores);
starting the kernel (until the first cell runs); the setup cell (imports: torch, the course's
library, the data); the learner's cells and the tests; everything else (forking the grading
process, nbgrader's application). Timers wrap the engine's own functions; nothing else changes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from seqcourse_grader import submission  # noqa: E402
from seqcourse_grader.catalogue import student_submission  # noqa: E402
from seqcourse_grader.classroom import make_template  # noqa: E402
from seqcourse_grader.result import Limits  # noqa: E402
from seqcourse_grader.submission import grade_one  # noqa: E402

AID, NAME = "01-rnn-cell", "01-rnn-cell.ipynb"
OUT = REPO / "bench" / "results" / "autograde_profile.md"
LOG = Path(tempfile.mkdtemp()) / "stages.jsonl"


def _timed(owner, name, stage):
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with LOG.open("a") as f:
                f.write(json.dumps({"stage": stage, "s": time.perf_counter() - start}) + "\n")
    setattr(owner, name, wrapper)


def _instrument() -> None:
    import nbgrader.converters.base as base
    import nbgrader.preprocessors as pre
    from nbgrader.converters.autograde import Autograde

    _timed(base.BaseConverter, "convert_single_notebook", "nbgrader conversion, all")
    _timed(pre.Execute, "preprocess", "execution, all")
    _timed(pre.SaveAutoGrades, "preprocess", "gradebook")
    _timed(Autograde, "init_single_notebook_resources", "gradebook")
    _timed(submission, "_read_grades", "gradebook")
    _timed(submission.shutil, "copytree", "copying")


def _cells(nb_bytes: bytes) -> tuple[float, float]:
    """(setup cell seconds, other cells seconds) from nbclient's timings in the notebook."""
    nb = json.loads(nb_bytes)
    spans = []
    for cell in nb["cells"]:
        t = cell.get("metadata", {}).get("execution", {})
        if "iopub.status.busy" in t and "shell.execute_reply" in t:
            a, b = (datetime.fromisoformat(t[k].replace("Z", "+00:00")).timestamp()
                    for k in ("iopub.status.busy", "shell.execute_reply"))
            spans.append((a, b - a))
    return spans[0][1], sum(s for _, s in spans[1:])


def profile(task: dict, zygote: bool) -> dict:
    LOG.unlink(missing_ok=True)
    task = dict(task, zygote=zygote)
    start = time.perf_counter()
    result = grade_one(task)
    total = time.perf_counter() - start
    assert result.score == result.max_score, result.summary(AID)
    stages: dict[str, float] = {}
    for line in LOG.read_text().splitlines():
        e = json.loads(line)
        stages[e["stage"]] = stages.get(e["stage"], 0) + e["s"]
    setup, rest = _cells(result.autograded)
    execution = stages.pop("execution, all")
    kernel = max(0.0, execution - setup - rest)   # start, stop, and the messages around each cell
    conversion = stages.pop("nbgrader conversion, all") - execution
    row = {"copying": stages.get("copying", 0), "nbgrader conversion": conversion,
           "gradebook": stages.get("gradebook", 0), "kernel start and stop": kernel,
           "setup cell (imports, data)": setup, "learner's cells and tests": rest}
    row["other (fork, nbgrader app)"] = total - sum(row.values())
    row["total"] = total
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    _instrument()
    with tempfile.TemporaryDirectory() as tmp:
        template = make_template(AID, Path(tmp) / "template")
    import nbformat

    raw = nbformat.writes(student_submission(AID)).encode()
    task = dict(aid=AID, notebook=NAME, student="s", limits=asdict(Limits()), protected=[],
                files={NAME: raw}, template=template)
    grade_one(dict(task, zygote=True))     # starts the zygote; not measured
    rows = {"fresh kernel": [], "zygote kernel": []}
    for _ in range(args.repeats):
        rows["fresh kernel"].append(profile(task, zygote=False))
        rows["zygote kernel"].append(profile(task, zygote=True))
    med = {k: {s: statistics.median(r[s] for r in v) for s in v[0]} for k, v in rows.items()}
    stages = list(med["fresh kernel"])
    lines = [f"# One lesson-01 autograde, stage by stage (median of {args.repeats})", "",
             f"Command: `python bench/profile_autograde.py --repeats {args.repeats}`. Machine: "
             f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; one thread "
             "per kernel; one notebook at a time; a correct submission.", "",
             "| stage | fresh kernel (s) | zygote kernel (s) |", "|---|---|---|"]
    for s in stages:
        lines.append(f"| {s} | {med['fresh kernel'][s]:.2f} | {med['zygote kernel'][s]:.2f} |")
    f, z = med["fresh kernel"]["total"], med["zygote kernel"]["total"]
    lines += ["", f"Per notebook the zygote saves {f - z:.1f} s of {f:.1f} s ({f / z:.2f}x). The kernel start and "
              "the setup cell's imports are what it removes; the learner's cells and the tests are untouched."]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
