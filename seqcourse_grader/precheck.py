"""Reading a submission before it runs, and reading the autograded notebook after.

``precheck`` refuses what cannot be graded (too large, not UTF-8 or JSON, not a notebook), converts
a notebook saved in format 3, puts back every locked cell the student deleted at its place in the
release (nbgrader would restore a deleted test cell elsewhere, where it can run before the cells it
checks), and notes what it changed or ignored. ``inspect_outputs`` reads time-outs, memory errors
and dead kernels from the autograded notebook.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import nbformat

from seqcourse import cells

# nbgrader's region markers (its default delimiters); in a student's own cells they are only text.
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")


@dataclass
class Checked:
    """What ``precheck`` made of a submission: the notebook to grade (None: do not run it), the
    reasons it needs review, notes, and whether the notebook differs from the bytes received."""

    nb: nbformat.NotebookNode | None = None
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: bool = False


def precheck(raw: bytes, release_nb, max_mb: float, aid: str | None = None) -> Checked:
    if len(raw) > max_mb * 2**20:
        return Checked(reasons=[f"the notebook file is {len(raw) / 2**20:.0f} MB, over the {max_mb:g} MB limit"])
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        return Checked(reasons=["the notebook file is not UTF-8 text"])
    except json.JSONDecodeError as e:
        return Checked(reasons=[f"the notebook file is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"])
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        return Checked(reasons=["the file is JSON but not a Jupyter notebook"])
    major, out = data.get("nbformat"), Checked()
    if major not in (3, 4):
        return Checked(reasons=[f"the notebook is in format {major}, not 4: open it in JupyterLab and save it again"])
    try:
        nb = nbformat.reads(text, as_version=4)    # converts format 3
        nbformat.validate(nb)
    except Exception as e:  # nbformat's ValidationError and friends
        return Checked(reasons=[f"not a valid notebook: {str(e).splitlines()[0][:200]}"])
    if major == 3:
        out.notes.append("the notebook was saved in format 3 (an old Jupyter); converted to format 4 and graded")
        out.changed = True
    out.notes += compare_with_release(nb, release_nb, aid)
    restored = restore_locked_cells(nb, release_nb)
    out.changed |= bool(restored)
    out.notes += marker_notes(nb)
    out.nb = nb
    return out


def compare_with_release(nb, release_nb, aid: str | None = None) -> list[str]:
    """Notes on locked cells the student deleted, edited or re-labelled (all are restored from
    the release before grading, so none of these changes the score). A Markdown cell as the
    notebook's translated edition shows it (``aid`` and the notebook's language) is no edit."""
    release, submitted = cells.by_grade_id(release_nb), cells.by_grade_id(nb)
    notes = []
    locked = [g for g, c in release.items() if cells.is_locked(c) or cells.is_graded(c)]
    gone = [g for g in locked if g not in submitted]
    if gone:
        notes.append("deleted locked cells, restored before grading: " + ", ".join(gone))
    edited = [g for g in locked if g in submitted and submitted[g].source != release[g].source
              and not _translated(submitted[g], release[g], aid, nb)]
    if edited:
        notes.append("edited locked cells, restored before grading: " + ", ".join(edited))
    keys = ("grade", "solution", "locked", "points", "task")
    relabelled = [g for g in release if g in submitted and
                  any(cells.meta(submitted[g]).get(k) != cells.meta(release[g]).get(k) for k in keys)]
    if relabelled:
        notes.append("changed nbgrader cell metadata, restored before grading: " + ", ".join(relabelled))
    if not set(release) & set(submitted):
        notes.append("none of the lesson's cells were found")
    return notes


def _translated(cell, release_cell, aid: str | None, nb) -> bool:
    language = (nb.metadata.get("seqcourse") or {}).get("language")
    if not aid or not language or cell.cell_type != "markdown":
        return False
    from seqcourse_grader.translations import is_current_translation

    return is_current_translation(cell.source, release_cell, aid, language)


def restore_locked_cells(nb, release_nb) -> list[str]:
    """Insert every locked cell of the release that the submission lacks, in release order, each
    just before the next cell of the release that the submission still has (found by grade id, or
    by its unchanged text for a cell without one): so after the student's own cells that follow
    the answer it tests. Returns the grade ids restored."""
    restored = []
    for r, cell in enumerate(release_nb.cells):
        gid = cells.grade_id(cell)
        if not gid or not cells.is_locked(cell) or gid in cells.by_grade_id(nb):
            continue
        found = _where(nb, release_nb)
        anchor = next((found[k] for k in range(r + 1, len(release_nb.cells)) if k in found), len(nb.cells))
        nb.cells.insert(anchor, copy.deepcopy(cell))
        restored.append(gid)
    return restored


def _where(nb, release_nb) -> dict[int, int]:
    """Release cell index -> index in the submission, for the release cells it still has."""
    ids = {cells.grade_id(c): i for i, c in reversed(list(enumerate(nb.cells))) if cells.grade_id(c)}
    found, after = {}, -1
    for r, cell in enumerate(release_nb.cells):
        gid = cells.grade_id(cell)
        if gid:
            if gid in ids:
                found[r] = after = ids[gid]
            continue
        same = next((i for i in range(after + 1, len(nb.cells))
                     if not cells.grade_id(nb.cells[i]) and nb.cells[i].source == cell.source), None)
        if same is not None:
            found[r] = after = same
    return found


def marker_notes(nb) -> list[str]:
    """Cells the student writes whose text holds one of nbgrader's markers: kept as text (grading
    and feedback process markers only in the instructor's locked cells)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cells.is_locked(cell):
            continue
        hits = [m for m in MARKERS if m in cell.source]
        if hits:
            found.append(f"{cells.grade_id(cell) or f'cell {i + 1}'} ({', '.join(hits)})")
    return ["nbgrader markers in your own text, kept as text: " + ", ".join(found)] if found else []


_TIMEOUT_ERRORS = ("CellTimeoutError", "KeyboardInterrupt", "TimeoutError")
_MEMORY_MARKERS = ("MemoryError", "can't allocate memory", "std::bad_alloc", "out of memory")


def inspect_outputs(nb) -> tuple[list[str], list[str]]:
    """Reasons and notes read from the autograded notebook's error outputs."""
    reasons, notes = [], []
    for i, cell in enumerate(nb.cells):
        where = cells.grade_id(cell) or f"cell {i + 1}"
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            ename, evalue = out.get("ename", ""), str(out.get("evalue", ""))
            text = f"{ename}: {evalue}"
            if ename in _TIMEOUT_ERRORS:
                reasons.append(f"{where} ran past the cell time limit and was interrupted")
            elif any(m in text for m in _MEMORY_MARKERS):
                reasons.append(f"{where} reached the memory limit")
            elif ename == "SystemExit":
                notes.append(f"{where} called sys.exit(); the kernel carried on")
            elif ename == "DeadKernelError":
                reasons.append(f"the kernel died in {where} (os._exit, a crash, or the CPU limit)")
    return list(dict.fromkeys(reasons)), list(dict.fromkeys(notes))


def tamper_guard_failed(nb, gid: str) -> bool:
    cell = cells.by_grade_id(nb).get(gid)
    return bool(cell) and any(o.get("ename") == "TamperError" for o in cell.get("outputs", []))
