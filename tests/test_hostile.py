"""Hostile submissions take nothing: every lesson, every channel, through ``course autograde``'s engine.

``seqcourse_grader/hostile.py`` writes, for each lesson, a notebook whose first exercise is answered
honestly and whose other answers try to take the reference answers (or hide failures) through one
channel each. Each must end graded with at most the honest notebook's points, or needs review with
a reason that the runtime (not only the static scan) gives where the channel is one it watches.
A correct notebook, graded with every core busy, keeps its full marks.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import nbformat
import pytest

from seqcourse.paths import REPO_ROOT
from seqcourse_grader.classroom import grade_class
from seqcourse_grader.course import STATUS_GRADED, STATUS_REVIEW, Course
from seqcourse_grader.hostile import CHANNELS, hostile_class
from seqcourse_grader.nbg import assignments
from seqcourse_grader.result import Limits

pytestmark = pytest.mark.pipeline
LIMITS = Limits(cell_timeout=60, submission_timeout=300)
SCAN = "code that changes the library or test helpers"
# What the sandbox itself reports for the channels it watches (the scan may report more).
RUNTIME = {"gc": "walk the interpreter's objects", "frames": "read a frame", "file": "the grader's code",
           "sys-modules": "the hidden tests", "hidden-start": "out of its place",
           "cell-rewriter": "did not see their tests finish"}


@pytest.mark.parametrize("aid", assignments())
def test_hostile_submissions_take_nothing(aid, tmp_path):
    for edition in ("solutions", "lessons"):
        shutil.copytree(REPO_ROOT / edition / aid, tmp_path / edition / aid)
    course = Course(tmp_path)
    kinds = hostile_class(aid)
    assert set(kinds) == {"correct", "honest", *CHANNELS}
    for kind, nb in kinds.items():
        folder = course.submitted / kind / aid
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / course.notebook_name(aid))
    # One class on two workers. The correct notebook keeps the full budget and is graded with every
    # core busy: the class's other worker, a process that only burns CPU (until the correct
    # notebook's result is in) and, in CI, the other test worker. Its grade must not depend on it.
    # The hostile kinds and the honest baseline are a dry run (every training run shrunk): what a
    # channel can take does not depend on how long the lesson trains, and both sides of the
    # comparison run the same way.
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    def stop_burner(result):
        if result.student == "correct" and burner.poll() is None:
            burner.kill()

    try:
        results = {r.student: r for r in grade_class(course, aid, workers=2, limits=LIMITS, progress=False,
                                                      shrunk_runs=set(kinds) - {"correct"}, on_result=stop_burner)}
    finally:
        burner.kill()
        burner.wait()
    correct = results.pop("correct")
    assert correct.status == STATUS_GRADED and correct.score == sum(correct.max_scores.values()), \
        (correct.score, correct.reasons, correct.messages)
    honest = results.pop("honest")
    assert honest.status == STATUS_GRADED and honest.score and honest.score > 0, honest.reasons
    report = []
    for kind, r in sorted(results.items()):
        runtime = [why for why in r.reasons if not why.startswith(SCAN)]
        ok = (r.status == STATUS_GRADED and r.score is not None and r.score <= honest.score) or (
            r.status == STATUS_REVIEW and r.reasons)
        if kind in RUNTIME:
            ok = ok and any(RUNTIME[kind] in why for why in runtime)
        report.append(f"{'ok ' if ok else 'BAD'} {kind}: {r.score} {r.status} {'; '.join(r.reasons)[:300]}")
    print(f"\n{aid}: honest work {honest.score}\n" + "\n".join(report))
    assert all(line.startswith("ok") for line in report), "\n".join(report)
