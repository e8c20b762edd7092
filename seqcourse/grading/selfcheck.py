"""``course check NOTEBOOK``: run a notebook's visible tests, as a learner would, and report them.

This is the self-check of the student edition, which holds no hidden tests and no solutions: it
runs the notebook top to bottom in a fresh kernel (the ``ci`` budget, so it takes a minute or
less), never changes the file, and reports each graded test cell. Passing every visible test is
necessary, not sufficient: hidden tests run when the work is graded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nbformat

HIDDEN_NOTE = ("Hidden tests run when your work is graded: they try more cases (other shapes, "
               "dtypes and edge cases stated in each exercise), so passing every visible test is "
               "necessary, not sufficient.")


@dataclass
class CellResult:
    grade_id: str
    points: float
    passed: bool
    message: str = ""


def error_text(cell) -> str:
    """``"Name: message"`` of a cell's first error output; "" when it ran cleanly."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out['ename']}: {out['evalue']}".strip()
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
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            error = error_text(cell)
            results.append(CellResult(meta.get("grade_id", "?"), float(meta.get("points", 0)),
                                      not error, error))
    return results


def report(path: Path | str, results: list[CellResult]) -> str:
    passed = [r for r in results if r.passed]
    lines = [f"{Path(path).name}: visible tests pass in {len(passed)} of {len(results)} test cells"]
    for r in results:
        lines.append(f"  {'ok  ' if r.passed else 'FAIL'} {r.grade_id:<28} ({r.points:g} points)")
        if not r.passed:
            lines.extend("         " + ln for ln in r.message.splitlines()[-6:])
    lines.append(HIDDEN_NOTE)
    return "\n".join(lines)
