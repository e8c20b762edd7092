"""nbgrader's cell metadata, read in one place.

nbgrader marks cells in ``metadata.nbgrader``: ``grade_id`` names a cell, ``solution`` marks an
answer the learner writes, ``grade`` a cell that earns ``points``, ``locked`` a cell the learner
may not change. Every module that needs to know what a cell is asks here; nbgrader's own
``nbgrader.utils`` answers the same questions but imports half of nbgrader, which the student's
``course check`` does not need. Works on nbformat nodes and on plain JSON dicts alike.
"""

from __future__ import annotations

import re


def meta(cell) -> dict:
    """The cell's ``nbgrader`` metadata ({} for a cell nbgrader does not know)."""
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def grade_id(cell) -> str | None:
    return meta(cell).get("grade_id")


def is_answer(cell) -> bool:
    """A cell the learner writes (nbgrader's solution cell)."""
    return bool(meta(cell).get("solution"))


def is_test(cell) -> bool:
    """A graded cell of tests (graded, not an answer)."""
    m = meta(cell)
    return bool(m.get("grade")) and not m.get("solution")


def is_graded(cell) -> bool:
    return bool(meta(cell).get("grade"))


def is_locked(cell) -> bool:
    """A cell the instructor wrote and the learner may not change (tests included)."""
    m = meta(cell)
    return bool(m.get("locked") or (m.get("grade") and not m.get("solution")))


def points(cell) -> float:
    return float(meta(cell).get("points") or 0)


def seqcourse_meta(cell) -> dict:
    """The course's own cell metadata (``exercise``, ``reads``, ``reuses``)."""
    return (cell.get("metadata") or {}).get("seqcourse") or {}


def by_grade_id(nb) -> dict:
    """grade id -> cell, the first cell of each id."""
    out = {}
    for cell in nb["cells"]:
        gid = grade_id(cell)
        if gid and gid not in out:
            out[gid] = cell
    return out


def position(nb, gid: str) -> int:
    """Index of the cell named ``gid`` (past the end when there is none): sorts cells as the
    notebook does."""
    for i, cell in enumerate(nb["cells"]):
        if grade_id(cell) == gid:
            return i
    return len(nb["cells"])


def exercise_of_tests(cells) -> dict[str, str]:
    """Grade id of each graded test cell -> the exercise it is charged to: its
    ``seqcourse.exercise`` metadata, else the answer cell above it."""
    owner, current = {}, None
    for cell in cells:
        if is_answer(cell):
            current = grade_id(cell)
        elif is_test(cell):
            owner[grade_id(cell)] = seqcourse_meta(cell).get("exercise") or current
    return owner


def run_cells(nb, grade_ids: list[str], namespace: dict, label: str = "notebook") -> dict:
    """Execute the cells named ``grade_ids`` (in notebook order) in ``namespace`` and return it:
    benchmarks measure a lesson's own code this way."""
    found = set()
    for cell in nb["cells"]:
        gid = grade_id(cell)
        if gid in grade_ids:
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            exec(compile(source, f"<{label} cell {gid}>", "exec"), namespace)
            found.add(gid)
    missing = sorted(set(grade_ids) - found)
    if missing:
        raise RuntimeError(f"{label} has no cells {missing}")
    return namespace


def exercise_titles(nb) -> dict[str, str]:
    """grade_id of each answer cell -> the exercise above it ("exercise 5"), from the headings."""
    titles, current = {}, None
    for cell in nb["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            found = re.findall(r"^#+\s*Exercise (\d+)\b", source, re.MULTILINE)
            if found:
                current = f"exercise {found[-1]}"
        elif is_answer(cell) and current:
            titles[grade_id(cell)] = current
    return titles
