"""The course's gradebook (nbgrader's, in SQLite or PostgreSQL) and the course's own table of
statuses, ``seqcourse_grading``: one row per submission with its status (``graded``, or ``needs
review`` and why), notes, score and the hash of the file graded.

Only the process that runs a class writes here. A submission that could not be graded has its old
scores removed, so a failed re-grade never leaves a stale score.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat

from seqcourse import cells
from seqcourse_grader.course import Course
from seqcourse_grader.result import Result

STATUS_TABLE = "seqcourse_grading"


def status_table(engine):
    import sqlalchemy as sa

    meta = sa.MetaData()
    table = sa.Table(
        STATUS_TABLE, meta,
        sa.Column("assignment", sa.String(128), primary_key=True),
        sa.Column("student", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("max_score", sa.Float, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("graded_at", sa.Float, nullable=False),
    )
    meta.create_all(engine)
    return table


def sync_assignment(gb, template_db: str, aid: str) -> None:
    """Copy the assignment's notebooks and cells from the template gradebook into ``gb``."""
    from nbgrader.api import Gradebook

    with Gradebook(template_db) as src:
        assignment = src.find_assignment(aid)
        gb.update_or_create_assignment(aid)
        for notebook in assignment.notebooks:
            gb.update_or_create_notebook(notebook.name, aid)
            for c in notebook.grade_cells:
                gb.update_or_create_grade_cell(c.name, notebook.name, aid, max_score=c.max_score,
                                               cell_type=c.cell_type)
            for c in notebook.solution_cells:
                gb.update_or_create_solution_cell(c.name, notebook.name, aid)
            for c in notebook.task_cells:
                gb.update_or_create_task_cell(c.name, notebook.name, aid, max_score=c.max_score,
                                              cell_type=c.cell_type)
            for c in notebook.source_cells:
                gb.update_or_create_source_cell(c.name, notebook.name, aid, source=c.source,
                                                checksum=c.checksum, cell_type=c.cell_type, locked=c.locked)


def record(course: Course, gb, table, aid: str, notebook_name: str, result: Result) -> None:
    """Write one result: scores (or none), the autograded copy, and the status row."""

    import warnings

    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        # nbgrader's remove_submission leaves objects SQLAlchemy warns about; the rows are right.
        warnings.simplefilter("ignore", SAWarning)
        _record(course, gb, table, aid, notebook_name, result)


def _record(course: Course, gb, table, aid: str, notebook_name: str, result: Result) -> None:
    import sqlalchemy as sa

    student = result.student
    gb.update_or_create_student(student)
    try:
        gb.remove_submission(aid, student)       # never leave a stale score behind
    except Exception:  # MissingEntry: no earlier submission
        gb.db.rollback()
    target = course.autograded / student / aid
    if target.exists():
        shutil.rmtree(target)
    if result.scores:
        gb.add_submission(aid, student)
        sub = gb.find_submission_notebook(Path(notebook_name).stem, aid, student)
        for grade in sub.grades:
            if grade.name in result.scores:
                grade.auto_score = result.scores[grade.name]
                grade.needs_manual_grade = False
        gb.db.commit()
    if result.autograded:
        target.mkdir(parents=True)
        (target / notebook_name).write_bytes(result.autograded)
    row = dict(assignment=aid, student=student, status=result.status,
               reasons="; ".join(result.reasons), notes="; ".join(result.notes),
               score=result.score, max_score=sum(result.max_scores.values()) or None,
               sha256=result.sha256, seconds=round(result.seconds, 2), graded_at=time.time())
    with gb.db.get_bind().begin() as conn:
        conn.execute(sa.delete(table).where(table.c.assignment == aid, table.c.student == student))
        conn.execute(sa.insert(table).values(**row))


def grade_rows(course: Course, aid: str) -> tuple[list[str], list[dict], dict[str, float]]:
    """Per-student rows: status, reasons, notes, total, and the score of every graded cell."""
    import sqlalchemy as sa
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        table = status_table(gb.db.get_bind())
        assignment = gb.find_assignment(aid)
        release = nbformat.read(course.release / aid / course.notebook_name(aid), as_version=4) \
            if (course.release / aid).is_dir() else None
        order = [cells.grade_id(c) for c in release.cells if cells.is_graded(c)] if release else []
        graded = sorted((c for nb in assignment.notebooks for c in nb.grade_cells),
                        key=lambda c: order.index(c.name) if c.name in order else len(order))
        columns = [c.name for c in graded]
        maxima = {c.name: c.max_score for c in graded}
        with gb.db.get_bind().connect() as conn:
            statuses = {r.student: r for r in conn.execute(sa.select(table).where(table.c.assignment == aid))}
        rows = []
        for student in sorted(statuses):
            st = statuses[student]
            row = dict(student=student, status=st.status, reasons=st.reasons, notes=st.notes,
                       score="" if st.score is None else round(st.score, 4), max_score=sum(maxima.values()))
            scores = {}
            if st.score is not None:
                for nb in assignment.notebooks:
                    try:
                        sub = gb.find_submission_notebook(nb.name, aid, student)
                    except Exception:
                        continue
                    scores.update({g.name: g.score for g in sub.grades})
            for c in columns:
                row[c] = "" if scores.get(c) is None else round(float(scores[c]), 4)
            rows.append(row)
    header = ["student", "status", "reasons", "notes", "score", "max_score"] + columns
    return header, rows, maxima


def graded_hashes(course: Course, aid: str) -> dict[str, str]:
    """student -> SHA-256 of the notebook file that was graded, from the status table."""
    import sqlalchemy as sa
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        table = status_table(gb.db.get_bind())
        with gb.db.get_bind().connect() as conn:
            return {r.student: r.sha256 for r in conn.execute(
                sa.select(table.c.student, table.c.sha256).where(table.c.assignment == aid))}
