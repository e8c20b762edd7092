"""Driving nbgrader from Python: the course's settings, scratch courses, and grading one notebook.

Every operation here runs in a scratch course folder (a temporary root with its own SQLite
gradebook), so self-grading and the test suite never touch the instructor's gradebook.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config, PyFileConfigLoader

from seqcourse.paths import REPO_ROOT, lesson_notebook

CONFIG_FILE = REPO_ROOT / "autograder" / "nbgrader_config.py"


def course_config(root: Path | str | None = None, db_url: str | None = None) -> Config:
    """The course's nbgrader settings, optionally re-rooted in another folder."""
    loader = PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent))
    config = loader.load_config()
    if root is not None:
        config.CourseDirectory.root = str(Path(root).resolve())
        config.CourseDirectory.db_url = db_url or f"sqlite:///{Path(root).resolve() / 'gradebook.db'}"
    elif db_url:
        config.CourseDirectory.db_url = db_url
    return config


def _api(config: Config):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    # nbgrader logs to the root logger; keep grading quiet unless something fails.
    api.log.setLevel(logging.WARNING)
    return api


def _error_lines(log: str) -> list[str]:
    """The exception lines of an nbgrader log, without nbgrader's own wrapper ("see the above")."""
    return [m.group(1).strip()[:200]
            for m in re.finditer(r"^\s*((?:\w+\.)*\w*(?:Error|Exception): .+)$", log, re.M)
            if "NbGraderException" not in m.group(1)]


def last_error(log: str) -> str:
    """The most specific error line of an nbgrader log, else its last line."""
    found = _error_lines(log)
    if found:
        return found[-1]
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no log"


def nbgrader_error(result: dict) -> str:
    """What went wrong in an nbgrader API call, from its log.

    nbgrader's own exception only says "see the above traceback"; the traceback and the real
    error are in the log it captured, from its first ``[ERROR]`` line on.
    """
    log = str(result.get("log") or "")
    start = log.find("[ERROR]")
    text = (log[start:] if start >= 0 else "").strip() or str(result.get("error") or "").strip()
    causes = _error_lines(text)
    return (f"cause: {causes[-1]}\n" if causes else "") + (text or "nbgrader gave no message")


def _check(result: dict, what: str) -> None:
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {what} failed. {nbgrader_error(result)}")


@dataclass
class CellScore:
    grade_id: str
    score: float
    max_score: float
    message: str = ""


@dataclass
class GradeReport:
    """One notebook's grade: per test cell, and the tamper scan's findings."""

    assignment: str
    cells: list[CellScore] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    autograded: Path | None = None

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cells)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells)

    @property
    def status(self) -> str:
        return "needs review" if self.findings else "graded"

    def summary(self) -> str:
        lines = [f"{self.assignment}: {self.score:g} / {self.max_score:g} points ({self.status})"]
        for c in self.cells:
            mark = "ok  " if c.score == c.max_score else "FAIL"
            lines.append(f"  {mark} {c.grade_id:<28} {c.score:g}/{c.max_score:g}")
            if c.message and c.score < c.max_score:
                lines.extend("         " + ln for ln in c.message.strip().splitlines()[:14])   # the call first
        for f in self.findings:
            lines.append(f"  needs review: {f}")
        return "\n".join(lines)


class ScratchCourse:
    """A temporary nbgrader course holding copies of the given assignments' sources."""

    def __init__(self, assignments: list[str], solutions_dir: Path | None = None, keep: bool = False):
        self.root = Path(tempfile.mkdtemp(prefix="seqcourse-grade-"))
        self.keep = keep
        src = Path(solutions_dir) if solutions_dir else REPO_ROOT / "solutions"
        for aid in assignments:
            if not (src / aid).is_dir():
                known = ", ".join(sorted(p.name for p in src.iterdir() if p.is_dir()))
                raise FileNotFoundError(f"no assignment {aid!r} in {src} (known: {known})")
            shutil.copytree(src / aid, self.root / "solutions" / aid,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        self.config = course_config(self.root)
        self.api = _api(self.config)
        self._generated: set[str] = set()

    def __enter__(self) -> ScratchCourse:
        return self

    def __exit__(self, *exc) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def generate(self, assignment: str) -> Path:
        """Release the student edition into the scratch course; return its folder."""
        if assignment not in self._generated:
            with _quiet():
                _check(self.api.generate_assignment(assignment, force=True, create=True),
                       f"generate_assignment {assignment}")
            self._generated.add(assignment)
        return self.root / "lessons" / assignment

    def autograde(self, assignment: str, notebook: Path | str | nbformat.NotebookNode,
                  student: str = "student") -> GradeReport:
        """Autograde one submission (a notebook file or object) for ``student``; read the scores back."""
        from nbgrader.api import Gradebook

        from seqcourse.grading.scan import scan_notebook
        from seqcourse.grading.selfcheck import error_text

        self.generate(assignment)
        name = lesson_notebook(assignment, root=self.root).name
        dest = self.root / "autograder" / "submitted" / student / assignment
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        if isinstance(notebook, nbformat.NotebookNode):
            nbformat.write(notebook, dest / name)
        else:
            shutil.copy(notebook, dest / name)
        with _quiet():
            _check(self.api.autograde(assignment, student, force=True, create=True),
                   f"autograde {assignment} for {student}")
        graded = self.root / "autograder" / "autograded" / student / assignment / name
        nb = nbformat.read(graded, as_version=4)
        messages = {}
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid and error_text(cell):
                messages[gid] = error_text(cell)
        report = GradeReport(assignment, autograded=graded)
        with Gradebook(self.config.CourseDirectory.db_url) as gb:
            sub = gb.find_submission_notebook(Path(name).stem, assignment, student)
            for grade in sorted(sub.grades, key=lambda g: _cell_order(nb, g.name)):
                report.cells.append(CellScore(grade.name, float(grade.score or 0),
                                              float(grade.max_score), messages.get(grade.name, "")))
        submitted = nbformat.read(dest / name, as_version=4)
        report.findings = [str(f) for f in scan_notebook(submitted)]
        return report


    def feedback(self, assignment: str, student: str) -> Path:
        """Generate the HTML feedback for an autograded submission; return its path."""
        with _quiet():
            _check(self.api.generate_feedback(assignment, student, force=True),
                   f"generate_feedback {assignment} for {student}")
        html = sorted((self.root / "autograder" / "feedback" / student / assignment).glob("*.html"))
        if not html:
            raise RuntimeError(f"nbgrader wrote no feedback for {student}/{assignment}")
        return html[0]

    def export_csv(self, path: Path) -> Path:
        """Export the gradebook as nbgrader's grades CSV."""
        from nbgrader.apps import ExportApp

        app = ExportApp(config=self.config)
        app.config.CsvExportPlugin.to = str(path)
        with _quiet():
            app.initialize([])
            app.start()
        return Path(path)


def _cell_order(nb, grade_id: str) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    return len(nb.cells)


@contextlib.contextmanager
def _quiet():
    """Silence nbgrader's chatter on stdout/stderr; errors still come back in the result."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def generate_lessons(assignments: list[str], out_dir: Path) -> list[Path]:
    """Generate the student edition of ``assignments`` into ``out_dir/<assignment>``."""
    with ScratchCourse(assignments) as course:
        written = []
        for aid in assignments:
            released = course.generate(aid)
            target = Path(out_dir) / aid
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(released, target)
            written.extend(sorted(target.rglob("*.ipynb")))
        return written


def assignments(solutions_dir: Path | None = None) -> list[str]:
    """Assignment ids: the folders of solutions/ named NN-something."""
    src = Path(solutions_dir) if solutions_dir else REPO_ROOT / "solutions"
    return sorted(p.name for p in src.iterdir() if p.is_dir() and p.name[:2].isdigit())


os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets a debugger warning in kernels


def run_lesson_cells(assignment: str, grade_ids: list[str], namespace: dict) -> dict:
    """Execute the solution notebook's cells named ``grade_ids`` (in notebook order) in
    ``namespace`` and return it: benchmarks measure the lesson's own code this way."""
    nb = nbformat.read(lesson_notebook(assignment), as_version=4)
    found = set()
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in grade_ids:
            exec(compile(cell.source, f"<{assignment} cell {gid}>", "exec"), namespace)
            found.add(gid)
    missing = sorted(set(grade_ids) - found)
    if missing:
        raise RuntimeError(f"{assignment}'s solution notebook has no cells {missing}")
    return namespace
