"""``course check NOTEBOOK``: run a notebook's visible tests, as a learner would, and report them.

This is the self-check of the student edition, which holds no hidden tests and no solutions: it
runs the notebook top to bottom in a fresh kernel (the ``ci`` budget, so it takes a minute or
less), never changes the file, and reports each graded test cell. Passing every visible test is
necessary, not sufficient: hidden tests run when the work is graded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from seqcourse import cells

HIDDEN_NOTE = ("Hidden tests run when your work is graded: they try more cases (other shapes, "
               "dtypes and edge cases stated in each exercise), so passing every visible test is "
               "necessary, not sufficient.")


@dataclass
class CellResult:
    grade_id: str
    points: float
    passed: bool
    message: str = ""
    at_submission: str = ""   # a graded cell with no visible test (an experiment): what it grades


def submission_only(source: str) -> str:
    """A graded cell holding only comments in this edition is graded at submission (its hidden
    test checks an experiment, see the lesson's text): its first comment line, else ""."""
    lines = [ln.strip() for ln in source.splitlines() if ln.strip()]
    if lines and all(ln.startswith("#") for ln in lines):
        return lines[0].lstrip("# ")
    return ""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ARROW = re.compile(r"^-+> *\d+ (.*)$")


def error_text(cell) -> str:
    """Where a cell failed and why: the failing call in the cell, the line of the learner's own code
    it came from (if any), and ``"Name: message"``; "" when the cell ran cleanly.

    While grading, the tracebacks hold only those lines (``guard.failing_lines``); elsewhere the
    call is read from IPython's traceback, whose frames in notebook cells start with "Cell In[".
    """
    for out in cell.get("outputs", []):
        if out.get("output_type") != "error":
            continue
        message = f"{out['ename']}: {out['evalue']}".strip()
        frames = [_ANSI.sub("", ln) for ln in out.get("traceback", [])]
        where = [ln for ln in frames if ln.startswith(("failed at:", "in your code:"))]
        if not where:
            calls = [next((m.group(1).strip() for ln in frame.splitlines() if (m := _ARROW.match(ln))), None)
                     for frame in frames if frame.startswith("Cell In[")]
            calls = [c for c in calls if c]
            where = [f"failed at: {calls[0]}"] if calls else []
            if len(calls) > 1:
                where.append(f"in your code: {calls[-1]}")
        return "\n".join(where + [message])
    return ""


def run_visible_tests(path: Path | str, timeout: int = 300) -> list[CellResult]:
    """Execute a copy of the notebook and return one result per graded test cell, in order."""
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env={**os.environ, "SEQCOURSE_PROFILE": "ci"})  # the small, fast budget
    results = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cells.is_graded(cell):
            error = error_text(cell)
            results.append(CellResult(cells.grade_id(cell) or "?", cells.points(cell),
                                      not error, error, submission_only(cell.source)))
    return results


def report(path: Path | str, results: list[CellResult]) -> str:
    tested = [r for r in results if not r.at_submission]
    passed = [r for r in tested if r.passed]
    lines = [f"{Path(path).name}: visible tests pass in {len(passed)} of {len(tested)} test cells"]
    for r in results:
        if r.at_submission:
            lines.append(f"  ---- {r.grade_id:<28} ({r.points:g} points) {r.at_submission}")
            continue
        lines.append(f"  {'ok  ' if r.passed else 'FAIL'} {r.grade_id:<28} ({r.points:g} points)")
        if not r.passed:
            lines.extend("         " + ln for ln in r.message.splitlines()[:14])   # the call first
    lines.append(HIDDEN_NOTE)
    return "\n".join(lines)
