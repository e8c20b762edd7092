"""Grading a class: isolated, parallel autograding on nbgrader that loses nothing.

How one lesson is graded (``course autograde LESSON``):

1. A *template* scratch course is made once: the lesson's source, nbgrader ``generate_assignment``
   and its SQLite gradebook.
2. Every submission found in ``<course>/autograder/submitted/<student>/<lesson>/`` is checked before
   anything runs (missing, renamed, too large, invalid JSON, not format 4, not this lesson's
   notebook, edited or deleted test cells), then graded by a pool of worker processes. Each worker
   copies the template into a private folder, runs nbgrader's autograde there against a private
   gradebook, in a kernel that starts under :mod:`seqcourse.grading.sandbox` (memory, CPU-time,
   file-size and process limits; no network, no subprocesses, no reading of the gradebook, the
   solutions, the class's submissions or other workers' folders), and with a per-cell and a
   per-submission time limit.
3. Only the parent process writes to the course's gradebook (SQLite or PostgreSQL): the scores of
   each graded submission, and for every submission a row in ``seqcourse_grading`` with its status
   (``graded``, or ``needs review`` and why) and notes. A submission that could not be graded has
   its old scores removed, so a failed re-grade never leaves a stale score.

Grading the same submissions twice gives the same scores, statuses and notes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from seqcourse.paths import REPO_ROOT

STATUS_GRADED = "graded"
STATUS_REVIEW = "needs review"
KERNEL_NAME = "seqcourse-sandbox"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
# What nbgrader's exchange puts next to a submitted notebook (`nbgrader submit`, then `collect`).
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


@dataclass(frozen=True)
class Limits:
    """Per-submission limits. The defaults suit this course's lessons under the ci budget."""

    memory_mb: int = 3072          # address space of the grading kernel
    cpu_seconds: int = 600         # CPU time of the grading kernel
    processes: int = 64            # extra processes/threads the kernel's user may start (non-root)
    open_files: int = 256
    file_size_mb: int = 100        # largest file the kernel may write
    cell_timeout: int = 180        # seconds per cell, then the cell is interrupted
    submission_timeout: int = 900  # seconds for the whole notebook, then the kernel is killed
    max_notebook_mb: int = 50      # larger submissions are not run

    def describe(self) -> str:
        return (f"memory {self.memory_mb} MB, CPU {self.cpu_seconds} s, {self.processes} processes, "
                f"files {self.file_size_mb} MB, cell {self.cell_timeout} s, notebook "
                f"{self.submission_timeout} s, submission size {self.max_notebook_mb} MB")


@dataclass
class Result:
    """What grading one submission produced."""

    student: str
    status: str = STATUS_GRADED
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)      # grade id -> points
    max_scores: dict[str, float] = field(default_factory=dict)
    sha256: str = ""
    seconds: float = 0.0
    autograded: str | None = None                               # path in the worker's folder

    def review(self, reason: str) -> None:
        self.status = STATUS_REVIEW
        if reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def score(self) -> float | None:
        return sum(self.scores.values()) if self.scores else None


# ---------------------------------------------------------------------------------------- course
class Course:
    """An nbgrader course folder laid out as this repository is (see autograder/nbgrader_config.py)."""

    def __init__(self, root: Path | str | None = None, db_url: str | None = None):
        from seqcourse.grading.nbg import course_config

        self.root = Path(root).resolve() if root else REPO_ROOT
        self.config = course_config(self.root if root else None, db_url=db_url)
        if root and not db_url:
            self.config.CourseDirectory.db_url = f"sqlite:///{self.root / 'autograder' / 'gradebook.db'}"
        self.db_url = self.config.CourseDirectory.db_url
        cd = self.config.CourseDirectory
        self.source = self.root / cd.source_directory
        self.release = self.root / cd.release_directory
        self.submitted = self.root / cd.submitted_directory
        self.autograded = self.root / cd.autograded_directory
        self.feedback = self.root / cd.feedback_directory

    def notebook_name(self, aid: str) -> str:
        found = sorted((self.source / aid).glob("*.ipynb"))
        if len(found) != 1:
            raise FileNotFoundError(f"{self.source / aid} should hold exactly one notebook, found {len(found)}")
        return found[0].name

    def students(self, aid: str) -> list[str]:
        if not self.submitted.is_dir():
            return []
        return sorted(p.name for p in self.submitted.iterdir() if (p / aid).is_dir())

    def protected_paths(self) -> list[str]:
        paths = [self.source, self.submitted, self.autograded, self.feedback, self.root / "autograder",
                 REPO_ROOT / "solutions", REPO_ROOT / "autograder", REPO_ROOT / ".git"]
        if self.db_url.startswith("sqlite:///"):
            paths.append(Path(self.db_url.removeprefix("sqlite:///")))
        return sorted({str(Path(p).resolve()) for p in paths})


# ---------------------------------------------------------------------------------------- collect
def collect_folder(course: Course, aid: str, folder: Path | str) -> list[str]:
    """Copy a folder of submissions into the course: ``<folder>/<student>.ipynb`` files or
    ``<folder>/<student>/`` folders (copied whole; the grader deals with renamed or extra files).
    Returns the students collected."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}")
    name = course.notebook_name(aid)
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    bad = [p.name for p in entries if not STUDENT_ID.match(p.stem if p.is_file() else p.name)]
    if bad:
        raise ValueError(f"these entries do not name a student id (letters, digits, _.@+-): {bad}")
    collected = []
    for p in entries:
        if p.is_file() and p.suffix != ".ipynb":
            continue
        student = p.stem if p.is_file() else p.name
        dest = course.submitted / student / aid
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        if p.is_file():
            shutil.copy2(p, dest / name)
        else:
            shutil.copytree(p, dest, dirs_exist_ok=True)
        collected.append(student)
    return collected


# Canvas names downloads <student>_<id>_<id>_<file>; "LATE" may follow the student. nbgrader
# matches the regular expression against the whole path of each extracted file.
DEFAULT_ZIP_REGEXP = r"(?:.*[/\\])?(?P<student_id>[A-Za-z0-9.@+-]+)_(?:LATE_)?\d+_\d+_(?P<file_id>[^/\\]+)$"


def collect_zip(course: Course, aid: str, archive: Path | str, regexp: str = DEFAULT_ZIP_REGEXP) -> list[str]:
    """Collect an LMS download (a zip of notebooks) with nbgrader's ``zip_collect``; the
    regular expression names ``student_id`` and ``file_id`` in each file name."""
    from nbgrader.apps import ZipCollectApp

    from seqcourse.grading.nbg import _quiet

    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"no archive {archive}")
    downloaded = course.root / "autograder" / "downloaded"
    target = downloaded / aid / "archive"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy(archive, target / archive.name)
    def stamps():
        return {s: (course.submitted / s / aid).stat().st_mtime_ns for s in course.students(aid)}

    before = stamps()
    config = course.config.copy()
    config.ZipCollectApp.downloaded_directory = str(downloaded.relative_to(course.root))
    config.ZipCollectApp.force = True
    config.FileNameCollectorPlugin.named_regexp = regexp
    app = ZipCollectApp(config=config)
    with _quiet():
        app.initialize([aid])
        app.start()
    return sorted(s for s, t in stamps().items() if before.get(s) != t)


# ---------------------------------------------------------------------------------------- checks
def precheck(raw: bytes, release_nb, limits: Limits) -> tuple[nbformat.NotebookNode | None, list[str], list[str]]:
    """Read a submission without running it. Returns ``(notebook or None, reasons, notes)``:
    reasons make it "needs review"; with no notebook it is not run at all."""
    if len(raw) > limits.max_notebook_mb * 2**20:
        return None, [f"the notebook file is {len(raw) / 2**20:.0f} MB, over the {limits.max_notebook_mb} MB limit"], []
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, ["the notebook file is not UTF-8 text"], []
    except json.JSONDecodeError as e:
        return None, [f"the notebook file is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"], []
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        return None, ["the file is JSON but not a Jupyter notebook"], []
    major = data.get("nbformat")
    if major != 4:
        return None, [f"the notebook is in format {major}, not 4: open it in JupyterLab and save it again"], []
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # nbformat's ValidationError and friends
        return None, [f"not a valid notebook: {str(e).splitlines()[0][:200]}"], []
    return nb, [], compare_with_release(nb, release_nb)


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def compare_with_release(nb, release_nb) -> list[str]:
    """Notes on locked cells the student deleted, edited or re-labelled (nbgrader restores them
    from the release before grading, so these do not change the score)."""
    release = {_nbg(c)["grade_id"]: c for c in release_nb.cells if _nbg(c).get("grade_id")}
    submitted = {}
    for c in nb.cells:
        gid = _nbg(c).get("grade_id")
        if gid:
            submitted.setdefault(gid, c)
    notes = []
    locked = [g for g, c in release.items() if _nbg(c).get("locked") or _nbg(c).get("grade")]
    gone = [g for g in locked if g not in submitted]
    if gone:
        notes.append("deleted locked cells, restored before grading: " + ", ".join(gone))
    edited = [g for g in locked if g in submitted and submitted[g].source != release[g].source]
    if edited:
        notes.append("edited locked cells, restored before grading: " + ", ".join(edited))
    keys = ("grade", "solution", "locked", "points", "task")
    relabelled = [g for g in release if g in submitted and
                  any(_nbg(submitted[g]).get(k) != _nbg(release[g]).get(k) for k in keys)]
    if relabelled:
        notes.append("changed nbgrader cell metadata, restored before grading: " + ", ".join(relabelled))
    if not set(release) & set(submitted):
        notes.append("none of the lesson's cells were found")
    return notes


_TIMEOUT_ERRORS = ("CellTimeoutError", "KeyboardInterrupt", "TimeoutError")
_MEMORY_MARKERS = ("MemoryError", "can't allocate memory", "std::bad_alloc", "out of memory")


def inspect_outputs(nb) -> tuple[list[str], list[str]]:
    """Reasons and notes read from the autograded notebook's error outputs."""
    reasons, notes = [], []
    for i, cell in enumerate(nb.cells):
        where = _nbg(cell).get("grade_id") or f"cell {i + 1}"
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


# ---------------------------------------------------------------------------------------- worker
def _kernelspec(dest: Path, limits: Limits, policy: Path) -> None:
    spec = dest / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "seqcourse.grading.sandbox", "-f", "{connection_file}"],
        "display_name": "seqcourse grading sandbox",
        "language": "python",
        "env": {"SEQCOURSE_SANDBOX_POLICY": str(policy), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1", "TQDM_DISABLE": "1"},
    }, indent=1))


def _autograde_child(root: str, db_url: str, aid: str, student: str, jupyter_path: str,
                     limits: dict, out: str) -> None:
    """Runs in a forked process: nbgrader autograde of one student in the worker's scratch course."""
    os.setsid()
    os.environ["JUPYTER_PATH"] = jupyter_path + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    from seqcourse.grading.nbg import _api, _quiet, course_config

    config = course_config(root, db_url=db_url)
    config.Execute.kernel_name = KERNEL_NAME
    config.Execute.timeout = limits["cell_timeout"]
    api = _api(config)
    with _quiet():
        result = api.autograde(aid, student, force=True, create=True)
    Path(out).write_text(json.dumps({"success": bool(result.get("success")),
                                     "log": str(result.get("log") or "")[-4000:],
                                     "error": str(result.get("error") or "")[-4000:]}))


def grade_one(job: dict) -> Result:
    """Grade one submission in a private scratch course (runs in a worker process)."""
    started = time.perf_counter()
    limits = Limits(**job["limits"])
    student, aid, name = job["student"], job["aid"], job["notebook"]
    result = Result(student)
    work = Path(job["work"])
    release_nb = nbformat.read(job["release_notebook"], as_version=4)

    folder = Path(job["submission_dir"])
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts) \
        if folder.is_dir() else []
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    chosen = folder / name if (folder / name).is_file() else None
    if chosen is None and len(notebooks) == 1:
        chosen = notebooks[0]
        result.notes.append(f"the notebook was named {chosen.relative_to(folder)}, not {name}; graded it")
    extra = [str(p.relative_to(folder)) for p in files if p != chosen and p.name not in EXCHANGE_FILES]
    if extra:
        result.notes.append("extra files ignored: " + ", ".join(extra[:10]) + (" ..." if len(extra) > 10 else ""))
    if chosen is None:
        result.review(f"no notebook submitted (expected {name})" if not notebooks else
                      f"{len(notebooks)} notebooks and none named {name}: " +
                      ", ".join(str(p.relative_to(folder)) for p in notebooks))
        result.seconds = time.perf_counter() - started
        return result

    raw = chosen.read_bytes()
    result.sha256 = hashlib.sha256(raw).hexdigest()
    nb, reasons, notes = precheck(raw, release_nb, limits)
    result.notes += notes
    for r in reasons:
        result.review(r)
    if nb is None:
        result.seconds = time.perf_counter() - started
        return result

    # The worker's private course: a copy of the template (source, release, gradebook).
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(job["template"], work, symlinks=False)
    dest = work / "autograder" / "submitted" / student / aid
    dest.mkdir(parents=True)
    (dest / name).write_bytes(raw)
    kernel_dir = work / "autograder" / "autograded" / student / aid
    policy = work / "sandbox-policy.json"
    log = work / "sandbox.log"
    policy.write_text(json.dumps({
        "protected": job["protected"] + [str(Path(job["class_dir"]).resolve())],
        "allowed": [str(kernel_dir.resolve())],
        "log": str(log), "limits": asdict(limits)}))
    _kernelspec(work / "jupyter", limits, policy)

    status_file = work / "autograde-result.json"
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_autograde_child, args=(
        str(work), f"sqlite:///{work / 'gradebook.db'}", aid, student, str(work / "jupyter"),
        asdict(limits), str(status_file)))
    child.start()
    child.join(limits.submission_timeout)
    if child.is_alive():
        _kill_group(child.pid)
        child.join(10)
        result.review(f"grading took longer than {limits.submission_timeout} s and was stopped")
        result.seconds = time.perf_counter() - started
        return result
    outcome = json.loads(status_file.read_text()) if status_file.is_file() else \
        {"success": False, "log": "", "error": f"the grading process exited with code {child.exitcode}"}

    if log.is_file():
        seen = []
        for line in log.read_text().splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            seen.append(f"tried to {_VERB.get(event['kind'], event['kind'])}: {event['detail']}")
        for s in list(dict.fromkeys(seen))[:5]:
            result.review(s)

    graded = kernel_dir / name
    if not outcome["success"] or not graded.is_file():
        text = outcome["log"] + outcome["error"]
        if "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text:
            result.review("the kernel died (os._exit, a crash, or the memory or CPU limit); no score recorded")
        else:
            from seqcourse.grading.nbg import last_error

            result.review(f"nbgrader could not grade it: {last_error(text)}")
        result.seconds = time.perf_counter() - started
        return result

    graded_nb = nbformat.read(graded, as_version=4)
    reasons, notes = inspect_outputs(graded_nb)
    for r in reasons:
        result.review(r)
    result.notes += notes
    from nbgrader.api import Gradebook

    from seqcourse.grading.scan import scan_notebook

    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(Path(name).stem, aid, student)
        for grade in sub.grades:
            result.scores[grade.name] = float(grade.score or 0)
            result.max_scores[grade.name] = float(grade.max_score)
    for finding in scan_notebook(nb):
        result.review(f"code that changes the library or test helpers: {finding}")
    tampered = [g for g in result.scores if _guard_failed(graded_nb, g)]
    if tampered:
        result.review("the tamper guard failed in " + ", ".join(tampered))
    result.autograded = str(graded)
    result.seconds = time.perf_counter() - started
    return result



_VERB = {"process": "start a process", "network": "open a network connection",
         "protected path": "touch a protected path", "native code": "load native code"}


def _guard_failed(nb, grade_id: str) -> bool:
    for cell in nb.cells:
        if _nbg(cell).get("grade_id") == grade_id:
            return any(o.get("ename") == "TamperError" for o in cell.get("outputs", []))
    return False


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------- gradebook
STATUS_TABLE = "seqcourse_grading"


def _status_table(engine):
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
        shutil.copy(result.autograded, target / notebook_name)
    row = dict(assignment=aid, student=student, status=result.status,
               reasons="; ".join(result.reasons), notes="; ".join(result.notes),
               score=result.score, max_score=sum(result.max_scores.values()) or None,
               sha256=result.sha256, seconds=round(result.seconds, 2), graded_at=time.time())
    with gb.db.get_bind().begin() as conn:
        conn.execute(sa.delete(table).where(table.c.assignment == aid, table.c.student == student))
        conn.execute(sa.insert(table).values(**row))


# ---------------------------------------------------------------------------------------- class
def make_template(course: Course, aid: str, class_dir: Path) -> Path:
    """A scratch course with the lesson generated once; every worker copies it."""
    from seqcourse.grading.nbg import _api, _check, _quiet, course_config

    template = class_dir / "template"
    shutil.copytree(course.source / aid, template / "solutions" / aid,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    config = course_config(template)
    api = _api(config)
    with _quiet():
        _check(api.generate_assignment(aid, force=True, create=True), f"generate_assignment {aid}")
    return template


def grade_class(course: Course, aid: str, students: list[str] | None = None, workers: int | None = None,
                limits: Limits = Limits(), progress: bool = True, keep: bool = False,
                on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Autograde every submission of ``aid`` (or the named students) in parallel; record all."""
    from nbgrader.api import Gradebook
    from tqdm.auto import tqdm

    name = course.notebook_name(aid)
    students = sorted(students) if students is not None else course.students(aid)
    # Folder names already in submitted/ are graded whatever they look like (nbgrader's exchange
    # made them); only names that could leave the folder are refused.
    bad = [s for s in students if not s or s in (".", "..") or "/" in s or "\\" in s]
    if bad:
        raise ValueError(f"not usable as student ids: {bad}")
    workers = max(1, workers or os.cpu_count() or 1)
    class_dir = Path(tempfile.mkdtemp(prefix=f"seqcourse-class-{aid}-"))
    results: list[Result] = []
    try:
        template = make_template(course, aid, class_dir)
        release_notebook = template / "lessons" / aid / name
        base = dict(aid=aid, notebook=name, template=str(template), release_notebook=str(release_notebook),
                    limits=asdict(limits), protected=course.protected_paths(), class_dir=str(class_dir))
        jobs = [dict(base, student=s, submission_dir=str(course.submitted / s / aid),
                     work=str(class_dir / f"w-{i:04d}")) for i, s in enumerate(students)]
        with Gradebook(course.db_url) as gb:
            sync_assignment(gb, f"sqlite:///{template / 'gradebook.db'}", aid)
            table = _status_table(gb.db.get_bind())
            ctx = multiprocessing.get_context("spawn")
            pending, tries = list(jobs), {j["student"]: 0 for j in jobs}
            with tqdm(total=len(jobs), desc=f"grading {aid}", unit="notebook", disable=not progress) as bar:
                while pending:
                    # A worker that dies (the OOM killer, say) breaks the pool; start a new one for
                    # the submissions still pending, and give up on one only after two tries.
                    broken = []
                    with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx) as pool:
                        futures = {pool.submit(grade_one, job): job for job in pending}
                        for future in as_completed(futures):
                            job = futures[future]
                            try:
                                result = future.result()
                            except BrokenProcessPool:
                                tries[job["student"]] += 1
                                if tries[job["student"]] < 2:
                                    broken.append(job)
                                    continue
                                result = Result(job["student"])
                                result.review("the grading worker died twice on this submission")
                            except Exception as e:  # a bug in the grader: record it, grade the rest
                                result = Result(job["student"])
                                result.review(f"the grader failed on this submission: {type(e).__name__}: {e}")
                            record(course, gb, table, aid, name, result)
                            results.append(result)
                            if not keep:
                                shutil.rmtree(job["work"], ignore_errors=True)
                            bar.update(1)
                            bar.set_postfix(review=sum(r.status != STATUS_GRADED for r in results))
                            if on_result:
                                on_result(result)
                    pending = broken
    finally:
        if not keep:
            shutil.rmtree(class_dir, ignore_errors=True)
    return sorted(results, key=lambda r: r.student)


# ---------------------------------------------------------------------------------------- outputs
def grade_rows(course: Course, aid: str) -> tuple[list[str], list[dict], dict[str, float]]:
    """Per-student rows: status, reasons, notes, total, and the score of every graded cell."""
    import sqlalchemy as sa
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        table = _status_table(gb.db.get_bind())
        assignment = gb.find_assignment(aid)
        release = nbformat.read(course.release / aid / course.notebook_name(aid), as_version=4) \
            if (course.release / aid).is_dir() else None
        order = [_nbg(c)["grade_id"] for c in release.cells if _nbg(c).get("grade")] if release else []
        cells = sorted((c for nb in assignment.notebooks for c in nb.grade_cells),
                       key=lambda c: order.index(c.name) if c.name in order else len(order))
        columns = [c.name for c in cells]
        maxima = {c.name: c.max_score for c in cells}
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


def export_csv(course: Course, aid: str, path: Path | str) -> Path:
    import csv

    header, rows, _ = grade_rows(course, aid)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_scores(course: Course, aid: str, path: Path | str) -> Path:
    """One panel per graded cell: how many students earned each share of its points."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    header, rows, maxima = grade_rows(course, aid)
    cells = list(maxima)
    graded = [r for r in rows if r["score"] != ""]
    cols = min(4, len(cells) + 1)
    nrows = -(-(len(cells) + 1) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    panels = [("total", sum(maxima.values()), [float(r["score"]) for r in graded])] + \
        [(c, maxima[c], [float(r[c]) for r in graded if r[c] != ""]) for c in cells]
    for ax, (label, top, values) in zip(axes.flat, panels, strict=False):
        bins = [i * top / 10 for i in range(11)]
        ax.hist(values, bins=bins, color="tab:blue" if label != "total" else "tab:green", edgecolor="white")
        ax.set_title(f"{label} (max {top:g})", fontsize=9)
        ax.set_xlim(0, top)
        ax.set_xlabel("points", fontsize=8)
        ax.set_ylabel("students", fontsize=8)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    review = sum(r["status"] != STATUS_GRADED for r in rows)
    fig.suptitle(f"{aid}: {len(graded)} scored, {review} need review (not plotted when unscored)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _graded_hashes(course: Course, aid: str) -> dict[str, str]:
    """student -> SHA-256 of the notebook file that was graded, from the status table."""
    import sqlalchemy as sa
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        table = _status_table(gb.db.get_bind())
        with gb.db.get_bind().connect() as conn:
            return {r.student: r.sha256 for r in conn.execute(
                sa.select(table.c.student, table.c.sha256).where(table.c.assignment == aid))}


def generate_feedback(course: Course, aid: str, students: list[str] | None = None) -> dict[str, Path]:
    """nbgrader feedback HTML (hidden tests cleared) for every student with an autograded notebook.

    Written where ``nbgrader release_feedback`` looks: ``<feedback>/<student>/<lesson>/<notebook>.html``
    with the submission's ``timestamp.txt`` and ``submission_secret.txt`` next to it (release_feedback
    names the released file after a hash of the secret; that is how the student's ``nbgrader
    fetch_feedback`` finds it). nbgrader's own autograde carries those two files from submitted/
    through autograded/ to feedback/; the sandboxed grader copies only the notebook, so they are
    copied here from submitted/, and only while the notebook there is still the one that was graded.
    A student whose submission changed after grading (collected again) gets no feedback until it is
    graded again, with a warning: feedback on the old notebook would reach the new submission.
    """
    import warnings

    from seqcourse.grading.nbg import _api, _check, _quiet

    api = _api(course.config)
    students = students or sorted(p.name for p in course.autograded.iterdir()
                                  if (p / aid).is_dir()) if course.autograded.is_dir() else []
    graded = _graded_hashes(course, aid)
    out = {}
    for student in students:
        submitted = course.submitted / student / aid
        exchange_files = [submitted / f for f in EXCHANGE_FILES if (submitted / f).is_file()]
        if exchange_files and student in graded:
            hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in submitted.rglob("*.ipynb")
                      if p.is_file() and ".ipynb_checkpoints" not in p.parts}
            if graded[student] not in hashes:
                warnings.warn(f"{student}'s submission of {aid} changed after it was graded: no feedback "
                              f"written; run `course autograde {aid} --student {student}` again",
                              stacklevel=2)
                continue
        autograded = course.autograded / student / aid
        if autograded.is_dir():
            for f in EXCHANGE_FILES:  # nbgrader's generate_feedback copies them on to feedback/
                (autograded / f).unlink(missing_ok=True)
            for p in exchange_files:
                shutil.copy2(p, autograded / p.name)
        with _quiet():
            _check(api.generate_feedback(aid, student, force=True), f"generate_feedback {aid} for {student}")
        html = sorted((course.feedback / student / aid).glob("*.html"))
        if html:
            out[student] = html[0]
    return out
