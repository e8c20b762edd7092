"""Collecting submissions into a course: a folder of notebooks or of student folders, an LMS zip
(nbgrader's ``zip_collect``), and choosing the notebook to grade inside one student's folder.
(nbgrader's exchange fills ``submitted/`` itself: ``nbgrader collect``.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from seqcourse_grader.course import Course

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
# What nbgrader's exchange puts next to a submitted notebook (`nbgrader submit`, then `collect`).
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")
# Canvas names downloads <student>_<id>_<id>_<file>; "LATE" may follow the student. nbgrader
# matches the regular expression against the whole path of each extracted file.
DEFAULT_ZIP_REGEXP = r"(?:.*[/\\])?(?P<student_id>[A-Za-z0-9.@+-]+)_(?:LATE_)?\d+_\d+_(?P<file_id>[^/\\]+)$"


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


def collect_zip(course: Course, aid: str, archive: Path | str, regexp: str = DEFAULT_ZIP_REGEXP) -> list[str]:
    """Collect an LMS download (a zip of notebooks) with nbgrader's ``zip_collect``; the
    regular expression names ``student_id`` and ``file_id`` in each file name."""
    from nbgrader.apps import ZipCollectApp

    from seqcourse_grader.nbg import quiet

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
    with quiet():
        app.initialize([aid])
        app.start()
    return sorted(s for s, t in stamps().items() if before.get(s) != t)


def read_folder(folder: Path) -> dict[str, bytes]:
    """A submission folder as ``{relative path: bytes}`` (checkpoints left out): what a grading
    task carries, so a worker needs no shared filesystem."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".ipynb_checkpoints" not in p.parts}


def choose_notebook(files: dict[str, bytes], name: str) -> tuple[str | None, list[str], list[str]]:
    """Which file of a submission to grade: ``(path or None, reasons, notes)``. The lesson's
    notebook by name, else the only notebook there is; other files are noted and ignored."""
    notebooks = [p for p in files if p.endswith(".ipynb")]
    chosen = name if name in files else None
    notes, reasons = [], []
    if chosen is None and len(notebooks) == 1:
        chosen = notebooks[0]
        notes.append(f"the notebook was named {chosen}, not {name}; graded it")
    extra = [p for p in files if p != chosen and Path(p).name not in EXCHANGE_FILES]
    if extra:
        notes.append("extra files ignored: " + ", ".join(extra[:10]) + (" ..." if len(extra) > 10 else ""))
    if chosen is None:
        reasons.append(f"no notebook submitted (expected {name})" if not notebooks else
                       f"{len(notebooks)} notebooks and none named {name}: " + ", ".join(notebooks))
    return chosen, reasons, notes
