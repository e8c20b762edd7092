"""The mistakes catalogue (``autograder/mistakes/<lesson>.py``) and submissions built from the
solution: the reference answers, with chosen cells replaced, as a student hands them in. The
tests, the benchmarks and ``course mistakes`` build their submissions here."""

from __future__ import annotations

import runpy
from dataclasses import dataclass
from pathlib import Path

import nbformat

from seqcourse import cells as nbcells
from seqcourse.paths import REPO_ROOT, lesson_notebook

CATALOGUE_DIR = REPO_ROOT / "autograder" / "mistakes"


@dataclass(frozen=True)
class Mistake:
    cell: str      # grade id of the solution cell it replaces
    name: str      # short id, unique within its exercise
    why: str       # what a learner was thinking
    source: str    # the whole replacement cell source
    kind: str = ""  # the class of mistake: see CLASSES


# The classes of mistake the catalogue covers (issue "mistakes nobody listed").
CLASSES = {
    "maths": "the formula, an axis, an order or an off-by-one",
    "dtype": "float64 in, float32 kept; a device or dtype not followed",
    "input": "another kind of input: a generator for a list, a given initial state",
    "edge": "edge sizes: a batch of one, length one, odd lengths, every direction or layer",
    "extreme": "numerical extremes: large logits, low temperatures, zero vectors, saturation",
    "side-effect": "arguments changed in place, in-place edits that break autograd, later cells broken",
}



def load_catalogue(assignment: str) -> list[Mistake]:
    path = CATALOGUE_DIR / f"{assignment}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no mistakes catalogue for {assignment} at {path}")
    mistakes = runpy.run_path(str(path))["MISTAKES"]
    keys = [f"{m.cell}/{m.name}" for m in mistakes]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise ValueError(f"{path}: mistake names must be unique per exercise, repeated: {sorted(dupes)}")
    unknown = sorted(f"{m.cell}/{m.name}: {m.kind!r}" for m in mistakes if m.kind and m.kind not in CLASSES)
    if unknown:
        raise ValueError(f"{path}: unknown mistake classes {unknown}; known: {sorted(CLASSES)}")
    return mistakes


def notebook_with(assignment: str, replacements: dict[str, str], prepend: str = "",
                  root: Path | None = None):
    """The solution notebook with solution cells replaced (grade id -> source).

    ``prepend`` is put before the first solution cell's source, the way a student would add code
    to the first cell they may edit. Used to build wrong or tampered submissions for tests.
    """
    nb = nbformat.read(lesson_notebook(assignment, root=root), as_version=4)
    unknown = set(replacements) - {nbcells.grade_id(c) for c in nb.cells if nbcells.is_answer(c)}
    if unknown:
        raise ValueError(f"not solution cells of {assignment}: {sorted(unknown)}")
    first = True
    for cell in nb.cells:
        if cell.cell_type != "code" or not nbcells.is_answer(cell):
            continue
        if nbcells.grade_id(cell) in replacements:
            cell.source = replacements[nbcells.grade_id(cell)].strip("\n")
        if first and prepend:
            cell.source = prepend.strip("\n") + "\n\n" + cell.source
        first = False
        cell.outputs = []
    return nb


def _answer_only(source: str) -> str:
    """A solution cell as a student would hand it in: the nbgrader markers removed."""
    return "\n".join(ln for ln in source.splitlines()
                     if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def student_submission(assignment: str, replacements: dict[str, str] | None = None, prepend: str = "",
                       root: Path | None = None):
    """The student edition (lessons/) with every stub answered: by the reference answer, or by
    ``replacements`` (grade id -> source). ``prepend`` goes before the first answer, as in
    :func:`notebook_with`. This is what a real submission looks like: no hidden tests in it."""
    solved = notebook_with(assignment, replacements or {}, prepend=prepend, root=root)
    answers = {nbcells.grade_id(c): _answer_only(c.source) for c in solved.cells
               if c.cell_type == "code" and nbcells.is_answer(c)}
    base = Path(root) if root else REPO_ROOT
    nb = nbformat.read(lesson_notebook(assignment, edition="lessons", root=base), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and nbcells.is_answer(cell):
            cell.source = answers[nbcells.grade_id(cell)]
    return nb
