"""Given code that reuses an earlier lesson's answer is derived from that lesson's solution cell.

A later lesson often needs an earlier answer (lesson 04 trains lesson 01's classifier as its
baseline). Writing it twice lets the copies drift, so the given cell names its sources in its
metadata, and ``course release`` copies every top-level function and class of each source cell
(its solution markers removed) over the definition of the same name in the given cell::

    "metadata": {"seqcourse": {"reuses": ["01-rnn-cell/SurnameRNN", "03-lstm/LSTMCellScratch"]}}

Each source is ``<lesson>/<grade_id>`` of a solution cell; that cell carries the tag
``reused-later`` so whoever edits it knows a later lesson shows its answer. ``course
check-release`` fails when a given cell differs from its sources. Everything else in the given
cell (comments, imports, helpers of its own) is left as written.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from seqcourse import cells
from seqcourse.paths import REPO_ROOT, lesson_notebook

TAG = "reused-later"
_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


def without_markers(source: str) -> str:
    """A solution cell's code as the reference answer: the solution marker lines removed."""
    return _MARKER.sub("", source)


def top_level_definitions(source: str) -> dict[str, tuple[int, int]]:
    """Name -> (first line, last line), 0-based and inclusive, of each top-level def and class
    (decorators included)."""
    spans = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            spans[node.name] = (first, node.end_lineno - 1)
    return spans


@dataclass
class Reuse:
    lesson: str          # the lesson whose given cell this is
    grade_id: str        # the given cell
    source: str          # "<lesson>/<grade_id>" of the solution cell
    names: list[str]     # the definitions it provides


def _notebook(solutions: Path, lesson: str):
    path = lesson_notebook(lesson, edition=solutions.name, root=solutions.parent)
    return path, nbformat.read(path, as_version=4)


def _source_definitions(solutions: Path, ref: str, cache: dict) -> tuple[str, dict[str, str]]:
    lesson, _, grade_id = ref.partition("/")
    if lesson not in cache:
        cache[lesson] = _notebook(solutions, lesson)[1]
    found = [c for c in cache[lesson].cells if cells.grade_id(c) == grade_id]
    if len(found) != 1:
        raise ValueError(f"{ref}: no solution cell with grade_id {grade_id!r} in {lesson}")
    cell = found[0]
    if not cells.is_answer(cell):
        raise ValueError(f"{ref} is not a solution cell")
    if TAG not in cell.metadata.get("tags", []):
        raise ValueError(f"{ref} is reused by a later lesson but lacks the tag {TAG!r}")
    code = without_markers(cell.source)
    lines = code.splitlines()
    return code, {name: "\n".join(lines[a:b + 1]) for name, (a, b) in top_level_definitions(code).items()}


def derive(given: str, definitions: dict[str, str], where: str) -> str:
    """``given`` with each named top-level definition replaced by ``definitions[name]``."""
    spans = top_level_definitions(given)
    missing = sorted(set(definitions) - set(spans))
    if missing:
        raise ValueError(f"{where} must define {', '.join(missing)} (a placeholder is enough): "
                         "release replaces it with the source's text")
    lines = given.splitlines()
    for name, (a, b) in sorted(spans.items(), key=lambda kv: -kv[1][0]):
        if name in definitions:
            lines[a:b + 1] = definitions[name].splitlines()
    return "\n".join(lines)


def sync_given(solutions: Path | None = None, write: bool = False) -> tuple[list[Reuse], list[str]]:
    """Check (and with ``write``, fix) every given cell against its sources.

    Returns the reuses found and, for each given cell that differs from its sources, a line
    saying so (after ``write`` those cells are rewritten in solutions/)."""
    solutions = Path(solutions or REPO_ROOT / "solutions")
    cache: dict = {}
    reuses, drift = [], []
    for folder in sorted(p for p in solutions.iterdir() if p.is_dir() and p.name[:2].isdigit()):
        path, nb = _notebook(solutions, folder.name)
        changed = False
        for cell in nb.cells:
            refs = cell.metadata.get("seqcourse", {}).get("reuses", [])
            if not refs:
                continue
            where = f"{folder.name}/{cells.grade_id(cell)}"
            wanted = {}
            for ref in refs:
                _, defs = _source_definitions(solutions, ref, cache)
                reuses.append(Reuse(folder.name, cells.grade_id(cell), ref, sorted(defs)))
                wanted.update(defs)
            fresh = derive(cell.source, wanted, where)
            if fresh != cell.source:
                drift.append(f"solutions/{where}: the given code differs from its source "
                             f"({', '.join(refs)})")
                cell.source, changed = fresh, True
        if changed and write:
            nbformat.write(nb, path)
    return reuses, drift


def reveal_table(solutions: Path | None = None) -> str:
    """A Markdown table for the instructor guide: which earlier answers each lesson's given code
    shows, so it is released only after those lessons' deadlines."""
    solutions = Path(solutions or REPO_ROOT / "solutions")
    reuses, _ = sync_given(solutions)
    rows: dict[str, dict[str, list[str]]] = {}
    titles: dict[str, dict[str, str]] = {}
    for r in reuses:
        lesson, _, grade_id = r.source.partition("/")
        if lesson not in titles:
            titles[lesson] = cells.exercise_titles(_notebook(solutions, lesson)[1])
        what = titles[lesson].get(grade_id, grade_id)
        rows.setdefault(r.lesson, {}).setdefault(lesson, [])
        rows[r.lesson][lesson].append(f"{what} (`{'`, `'.join(r.names)}`)")
    out = ["| lesson | its given code shows the answers of | release it after the deadline of |",
           "|---|---|---|"]
    for lesson, sources in sorted(rows.items()):
        shown = "; ".join(f"{src}: {', '.join(sorted(items))}" for src, items in sorted(sources.items()))
        out.append(f"| {lesson} | {shown} | {', '.join(sorted(sources))} |")
    return "\n".join(out)
