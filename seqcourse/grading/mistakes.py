"""The mistakes catalogue and the check that every catalogued mistake loses points.

Checking each mistake with a full nbgrader autograde would rerun training dozens of times. Instead
one kernel runs the solution notebook once; at each solution cell it first tries that cell's
mistakes, each followed by the cells up to the next solution cell (the exercise's tests, and any
training in between) until a test cell fails, and records whether one did. Names a mistake defined are removed
before the next one runs, so one mistake cannot leave state that makes another pass or fail.
"""

from __future__ import annotations

import os
import runpy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from seqcourse.paths import REPO_ROOT, lesson_notebook

CATALOGUE_DIR = REPO_ROOT / "autograder" / "mistakes"


@dataclass(frozen=True)
class Mistake:
    cell: str      # grade id of the solution cell it replaces
    name: str      # short id, unique within its exercise
    why: str       # what a learner was thinking
    source: str    # the whole replacement cell source


@dataclass
class MistakeResult:
    mistake: Mistake
    caught: bool
    failed_cells: list[str]
    detail: str
    seconds: float


def load_catalogue(assignment: str) -> list[Mistake]:
    path = CATALOGUE_DIR / f"{assignment}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no mistakes catalogue for {assignment} at {path}")
    mistakes = runpy.run_path(str(path))["MISTAKES"]
    keys = [f"{m.cell}/{m.name}" for m in mistakes]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise ValueError(f"{path}: mistake names must be unique per exercise, repeated: {sorted(dupes)}")
    return mistakes


class _Kernel:
    """A kernel we send code to and read the first error back from."""

    def __init__(self, env: dict[str, str], cwd: Path):
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(cwd),
                                            extra_arguments=["--HistoryManager.hist_file=:memory:"])

    def run(self, code: str, timeout: float) -> str | None:
        """Execute ``code``; return ``None`` on success, else ``"Ename: message"``."""
        errors: list[str] = []

        def on_output(msg):
            if msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=on_output,
                                            store_history=False)
        if reply["content"]["status"] != "ok" and not errors:
            errors.append(f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")
        return errors[0] if errors else None

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _is_solution(cell) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("solution"))


def _is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def check_mistakes(assignment: str, mistakes: list[Mistake] | None = None,
                   root: Path | None = None, timeout: float = 300,
                   progress: Callable[[str], None] | None = None) -> list[MistakeResult]:
    """Run every mistake at the exercise level; return one result per mistake.

    Raises if the unmodified solution fails any of its own tests in this harness, since then a
    "caught" mistake would prove nothing.
    """
    mistakes = load_catalogue(assignment) if mistakes is None else mistakes
    nb_path = lesson_notebook(assignment, root=root)
    nb = nbformat.read(nb_path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    solution_ids = {_grade_id(c) for c in cells if _is_solution(c)}
    unknown = {m.cell for m in mistakes} - solution_ids
    if unknown:
        raise ValueError(f"mistakes name cells that are not solution cells: {sorted(unknown)}")

    env = dict(os.environ, NBGRADER_EXECUTION="autograde", PYDEVD_DISABLE_FILE_VALIDATION="1")
    kernel = _Kernel(env, nb_path.parent)
    results: list[MistakeResult] = []
    try:
        for i, cell in enumerate(cells):
            if _is_solution(cell):
                group = []
                for later in cells[i + 1:]:
                    if _is_solution(later):
                        break
                    group.append(later)
                kernel.run("_seqcourse_names_before = set(globals())", timeout)
                for m in (m for m in mistakes if m.cell == _grade_id(cell)):
                    start = time.perf_counter()
                    failed, detail = [], ""
                    err = kernel.run(m.source, timeout)
                    if err:
                        failed, detail = [m.cell], f"the mistake itself raised {err}"
                    for g in group if not failed else ():
                        err = kernel.run(g.source, timeout)
                        if err and _is_test(g):
                            # Caught: the rest of the group (often training) need not run; the
                            # main loop below runs the solution and every cell after it anyway.
                            failed.append(_grade_id(g))
                            detail = detail or err
                            break
                    kernel.run("for _n in set(globals()) - _seqcourse_names_before - "
                               "{'_seqcourse_names_before'}:\n    del globals()[_n]", timeout)
                    results.append(MistakeResult(m, bool(failed), failed, detail,
                                                 time.perf_counter() - start))
                    if progress:
                        progress(f"{'caught ' if failed else 'MISSED '} {m.cell}/{m.name}")
            err = kernel.run(cell.source, timeout)
            if err:
                raise RuntimeError(f"the solution itself fails cell {_grade_id(cell) or i}: {err}")
    finally:
        kernel.close()
    return results


def notebook_with(assignment: str, replacements: dict[str, str], prepend: str = "",
                  root: Path | None = None):
    """The solution notebook with solution cells replaced (grade id -> source).

    ``prepend`` is put before the first solution cell's source, the way a student would add code
    to the first cell they may edit. Used to build wrong or tampered submissions for tests.
    """
    nb = nbformat.read(lesson_notebook(assignment, root=root), as_version=4)
    unknown = set(replacements) - {_grade_id(c) for c in nb.cells if _is_solution(c)}
    if unknown:
        raise ValueError(f"not solution cells of {assignment}: {sorted(unknown)}")
    first = True
    for cell in nb.cells:
        if cell.cell_type != "code" or not _is_solution(cell):
            continue
        if _grade_id(cell) in replacements:
            cell.source = replacements[_grade_id(cell)].strip("\n")
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
    answers = {_grade_id(c): _answer_only(c.source) for c in solved.cells
               if c.cell_type == "code" and _is_solution(c)}
    base = Path(root) if root else REPO_ROOT
    nb = nbformat.read(lesson_notebook(assignment, edition="lessons", root=base), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and _is_solution(cell):
            cell.source = answers[_grade_id(cell)]
    return nb
