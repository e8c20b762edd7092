"""Grades for an LMS: one lesson's scores as a Canvas gradebook-import CSV.

Canvas imports a CSV laid out like its own gradebook export (Grades > Export > Export Entire
Gradebook): the columns Student, ID, SIS User ID, SIS Login ID and Section name each student, then
one column per assignment, whose header is the assignment's name, or "Name (canvas id)" to update an
existing assignment (a header Canvas does not know creates a new assignment). The export is the
roster here: its identity columns are copied, in its order, and one assignment column is added,
with a "Points Possible" row under the header.

A cell holds a score only for a submission graded without problems. It is blank for a submission
that needs review and for a roster student without a submission: a blank is "no grade from the
autograder", to be settled by hand in Canvas, never a silent 0. Submitters missing from the roster
are returned, not dropped, so that the caller can name them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from seqcourse_grader.course import STATUS_GRADED

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"  # the Student cell of Canvas's own second row
MATCH_COLUMNS = {"sis_login": "SIS Login ID", "sis_user": "SIS User ID", "id": "ID"}


@dataclass
class CanvasExport:
    """The CSV as rows of cells (header, points possible, one row per roster student) and a tally."""

    table: list[list[str]]
    scored: int = 0  # roster students given a score
    review: list[str] = field(default_factory=list)  # matched submitters left blank for review
    missing: list[str] = field(default_factory=list)  # roster students without a submission
    unmatched: list[str] = field(default_factory=list)  # submitters not in the roster


def _number(value) -> str:
    return f"{float(value):g}"


def read_roster(path: Path | str) -> list[dict[str, str]]:
    """The students of a Canvas gradebook export (a UTF-8 BOM, the Points Possible row and any other
    row without a student name are skipped). ValueError names any missing identity column."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CANVAS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}: use the CSV from Canvas's "
                             "Grades > Export > Export Entire Gradebook")
        return [r for r in reader if (r["Student"] or "").strip() not in ("", POINTS_POSSIBLE.strip())]


def canvas_table(rows: list[dict], roster: list[dict[str, str]], column: str, points_possible: float,
                 match: str = "sis_login") -> CanvasExport:
    """The Canvas CSV for grade_rows' ``rows``: roster students matched to nbgrader student ids by the
    roster column ``match`` names (compared without case or surrounding spaces)."""
    if match not in MATCH_COLUMNS:
        raise ValueError(f"match must be one of {', '.join(MATCH_COLUMNS)}, not {match!r}")
    key = MATCH_COLUMNS[match]
    by_key: dict[str, dict] = {}
    for r in rows:
        by_key[str(r["student"]).strip().casefold()] = r
    export = CanvasExport(table=[CANVAS_COLUMNS + [column],
                                 [POINTS_POSSIBLE, "", "", "", "", _number(points_possible)]])
    seen: set[str] = set()
    for person in roster:
        k = (person.get(key) or "").strip().casefold()
        if k and k in seen:
            raise ValueError(f"two roster students share the {key} {person[key]!r}; match on another column")
        seen.add(k)
        row, cell = by_key.get(k) if k else None, ""
        if row is None:
            export.missing.append(person["Student"])
        elif row["status"] == STATUS_GRADED and row["score"] not in ("", None):
            cell = _number(row["score"])
            export.scored += 1
        else:
            export.review.append(row["student"])
        export.table.append([person.get(c) or "" for c in CANVAS_COLUMNS] + [cell])
    export.unmatched = sorted(r["student"] for k, r in by_key.items() if k not in seen)
    return export


def write_table(table: list[list[str]], out: Path | str) -> Path:
    """Write the rows of a CanvasExport (UTF-8, as Canvas asks)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(table)
    return out
