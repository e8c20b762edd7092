"""Feedback for students: nbgrader's HTML of the autograded notebook, hidden tests cleared.

``generate_feedback`` writes it where ``nbgrader release_feedback`` looks, student by student: one
student's failure is reported with its cause and the rest still get theirs. The feedback settings
(``autograder/nbgrader_config.py``) clear hidden tests with :class:`ClearInstructorHiddenTests`,
which reads nbgrader's markers only in the instructor's locked cells: a student who writes
"BEGIN HIDDEN TESTS" in an answer or a note gets feedback like everyone else.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests

from seqcourse import cells
from seqcourse_grader.collect import EXCHANGE_FILES
from seqcourse_grader.course import Course


class ClearInstructorHiddenTests(ClearHiddenTests):
    """nbgrader's ClearHiddenTests, applied only to locked cells (the instructor's text)."""

    def preprocess_cell(self, cell, resources, cell_index):
        if not cells.is_locked(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)


@dataclass
class FeedbackRun:
    written: dict[str, Path] = field(default_factory=dict)    # student -> HTML
    failed: dict[str, str] = field(default_factory=dict)      # student -> why
    skipped: dict[str, str] = field(default_factory=dict)     # student -> why (not an error)


def generate_feedback(course: Course, aid: str, students: list[str] | None = None) -> FeedbackRun:
    """nbgrader feedback HTML for every student with an autograded notebook (or those named).

    Written as ``<feedback>/<student>/<lesson>/<notebook>.html`` with the submission's
    ``timestamp.txt`` and ``submission_secret.txt`` next to it: ``release_feedback`` names the
    released file after a hash of the secret, which is how the student's ``fetch_feedback`` finds
    it. The grader copies only the notebook to autograded/, so the two files are copied here from
    submitted/, and only while the notebook there is still the one that was graded: a student whose
    submission changed after grading gets no feedback until it is graded again.
    """
    from seqcourse_grader.gradebook import graded_hashes
    from seqcourse_grader.nbg import nbgrader_api, nbgrader_error, quiet

    api = nbgrader_api(course.config)
    if students is None:
        students = sorted(p.name for p in course.autograded.iterdir()
                          if (p / aid).is_dir()) if course.autograded.is_dir() else []
    graded, run = graded_hashes(course, aid), FeedbackRun()
    for student in students:
        submitted = course.submitted / student / aid
        exchange_files = [submitted / f for f in EXCHANGE_FILES if (submitted / f).is_file()]
        if exchange_files and student in graded:
            hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in submitted.rglob("*.ipynb")
                      if p.is_file() and ".ipynb_checkpoints" not in p.parts}
            if graded[student] not in hashes:
                run.skipped[student] = (f"the submission changed after it was graded: run `course autograde "
                                        f"{aid} --student {student}` again")
                continue
        autograded = course.autograded / student / aid
        if not autograded.is_dir():
            run.failed[student] = "no autograded notebook (not graded, or it could not be graded)"
            continue
        for f in EXCHANGE_FILES:  # nbgrader's generate_feedback copies them on to feedback/
            (autograded / f).unlink(missing_ok=True)
        for p in exchange_files:
            shutil.copy2(p, autograded / p.name)
        with quiet():
            result = api.generate_feedback(aid, student, force=True)
        html = sorted((course.feedback / student / aid).glob("*.html"))
        if result.get("success") and html:
            run.written[student] = html[0]
        else:
            cause = nbgrader_error(result).splitlines()[0] if not result.get("success") else "no HTML written"
            run.failed[student] = f"nbgrader generate_feedback failed: {cause}"
    return run
