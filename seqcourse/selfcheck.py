"""``course check NOTEBOOK``: run a notebook's visible tests, as a learner would, and report them.

This is the self-check of the student edition, which holds no hidden tests and no solutions: it
runs the notebook top to bottom in a fresh kernel (the ``ci`` budget, so it takes a minute or
less), never changes the file, and reports each graded test cell. A graded cell that grades a run
(a training run that must reach a bar, graded at submission) is reported with the claims the run
showed (:func:`seqcourse.checks.check_bar`): each bar, the value reached, and the exercise its
points are charged to. Passing every visible test is necessary, not sufficient: hidden tests run
when the work is graded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from seqcourse import cells
from seqcourse.checks import CLAIM

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
    claims: list = field(default_factory=list)   # a graded run's claims (check_bar's records)
    suspects: list = field(default_factory=list)  # for a run: the exercises it uses that fail their tests

    @property
    def ok(self) -> bool:
        """Its visible tests pass; for a graded run, every claim of the run reached its bar."""
        if self.at_submission:
            return bool(self.claims) and all(c["passed"] for c in self.claims)
        return self.passed


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
    import tempfile

    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    # Unix sockets: no TCP port (and no "running over TCP without encryption" warning)
    with tempfile.TemporaryDirectory(prefix="seqcourse-check-") as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "k"))
        client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute(env={**os.environ, "SEQCOURSE_PROFILE": "ci"})  # the small, fast budget
        finally:
            if km.has_kernel:      # a kernel manager we made is ours to shut down
                km.shutdown_kernel(now=True)
    claims: dict[str, list] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            record = out.get("data", {}).get(CLAIM) if out.get("output_type") == "display_data" else None
            if record:
                claims.setdefault(record["graded"], []).append(record)
    results = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cells.is_graded(cell):
            gid = cells.grade_id(cell) or "?"
            error = error_text(cell)
            results.append(CellResult(gid, cells.points(cell), not error, error, submission_only(cell.source),
                                      claims.get(gid, [])))
    # A run that falls short is charged to its own exercise, unless an exercise it uses fails its
    # own tests (the hidden tests then charge the shortfall there): name those.
    owner, titles = cells.exercise_of_tests(nb.cells), cells.exercise_titles(nb)
    failing = {owner[r.grade_id] for r in results if not r.at_submission and not r.passed}
    for r, cell in zip(results, [c for c in nb.cells if c.cell_type == "code" and cells.is_graded(c)], strict=True):
        if r.at_submission and not r.ok:
            uses = cells.seqcourse_meta(cell).get("reads", [])
            r.suspects = [f"{titles.get(ex, ex)} ({ex})" for ex in uses if ex in failing and ex != owner[r.grade_id]]
    return results


def _claim(record: dict) -> str:
    sign = "<=" if record["below"] else ">="
    verdict = "reached" if record["passed"] else f"MISSED by {abs(record['value'] - record['bar']):.4g}"
    return f"{record['what']}: {record['value']:.4g}, bar {sign} {record['bar']:.4g}: {verdict}"


def report(path: Path | str, results: list[CellResult]) -> str:
    tested = [r for r in results if not r.at_submission]
    runs = [r for r in results if r.at_submission]
    lines = [f"{Path(path).name}: visible tests pass in {sum(r.ok for r in tested)} of {len(tested)} test cells"
             + (f"; graded runs reach their bars in {sum(r.ok for r in runs)} of {len(runs)}" if runs else "")]
    for r in results:
        mark = "ok  " if r.ok else "FAIL"
        if r.at_submission:
            charged = r.claims[0]["exercise"] if r.claims else ""
            lines.append(f"  {mark} {r.grade_id:<28} ({r.points:g} points, a run graded at submission"
                         + (f", charged to {charged})" if charged else ")"))
            lines.extend(f"         {_claim(c)}" for c in r.claims)
            if not r.claims:
                lines.append("         the run did not reach its checks: see the first error above it")
            if r.suspects:
                lines.append(f"         the run used your {', '.join(r.suspects)}, which fails its visible tests: fix "
                             "it first (a shortfall it causes is charged to it, not here)")
            continue
        lines.append(f"  {mark} {r.grade_id:<28} ({r.points:g} points)")
        if not r.passed:
            lines.extend("         " + ln for ln in r.message.splitlines()[:14])   # the call first
    lines.append(HIDDEN_NOTE)
    return "\n".join(lines)
