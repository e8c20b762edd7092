"""Students hand in through nbgrader's exchange, and get their feedback back through it.

Everything happens under pytest's tmp_path: an exchange folder, an instructor's course folder (the
lesson's source and student edition, an ``nbgrader_config.py`` that loads the repository's
``autograder/nbgrader_config.py`` and re-roots it there, with its own SQLite gradebook) and two
student homes, each holding ``autograder/student_nbgrader_config.py`` as its ``nbgrader_config.py``.
The real commands run as subprocesses, in the order an instructor and the students use them:

    instructor  nbgrader release_assignment 01-rnn-cell
    students    nbgrader fetch_assignment 01-rnn-cell; answer; nbgrader submit 01-rnn-cell
    instructor  nbgrader list --inbound; nbgrader collect 01-rnn-cell
                course autograde 01-rnn-cell --course DIR; course feedback 01-rnn-cell --course DIR
                nbgrader release_feedback 01-rnn-cell
    students    nbgrader fetch_feedback 01-rnn-cell

Each student has their own HOME (nbgrader keeps the submission's cache there, which is how
``fetch_feedback`` finds their feedback), USER and LOGNAME. nbgrader takes the student id from the
Unix account running ``submit`` (``pwd.getpwuid(os.getuid())``, not $USER), and the test runs as one
user, so ``submit`` names the student with ``--student``; with one account per student, as on a
shared machine or a hub, it is not needed. Last, a submission collected again after grading gets no
feedback from the old grading.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from seqcourse.grading.course import STATUS_GRADED, Course
from seqcourse.grading.feedback import generate_feedback
from seqcourse.grading.gradebook import grade_rows
from seqcourse.grading.mistakes import load_catalogue, student_submission
from seqcourse.paths import REPO_ROOT

pytestmark = pytest.mark.pipeline
AID = "01-rnn-cell"
NAME = f"{AID}.ipynb"
FULL = 18.0
COURSE_ID = "seqcourse"
LEAKS = ("BEGIN HIDDEN TESTS", "load_hidden", "seqcourse_hidden")

# The instructor's course folder: the repository's settings, re-rooted in the course folder, with
# the gradebook where `course ... --course DIR` keeps it.
COURSE_CONFIG = f"""\
import os

c = get_config()  # noqa: F821
load_subconfig({str(REPO_ROOT / "autograder" / "nbgrader_config.py")!r})  # noqa: F821
HERE = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = HERE
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "autograder", "gradebook.db")
"""


def _course_command() -> list[str]:
    script = Path(sys.executable).parent / "course"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "seqcourse.cli"]


def _tail(text: str, n: int = 3000) -> str:
    return text[-n:] if text else "(nothing)"


class Steps:
    """Runs each command as a subprocess, times it, and fails with what the command said."""

    def __init__(self):
        self.started = time.perf_counter()

    def run(self, what: str, argv: list[str], cwd: Path, env: dict[str, str],
            timeout: float = 120) -> str:
        start = time.perf_counter()
        try:
            done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"{what}: `{' '.join(argv)}` ran past {timeout} s\nstdout: {_tail(str(e.stdout))}\n"
                        f"stderr: {_tail(str(e.stderr))}")
        seconds = time.perf_counter() - start
        print(f"{seconds:6.1f} s  {what}")
        assert done.returncode == 0, (
            f"{what}: `{' '.join(argv)}` (in {cwd}) exited with {done.returncode}\n"
            f"stdout: {_tail(done.stdout)}\nstderr: {_tail(done.stderr)}")
        return done.stdout + done.stderr


def _clean_env(exchange: Path) -> dict[str, str]:
    # Nothing of the caller's own setup: Jupyter's folders follow HOME, the course's defaults apply.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER")) and k not in (
        "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "SEQCOURSE_GRADEBOOK", "SEQCOURSE_COURSE_ID")}
    env["SEQCOURSE_EXCHANGE"] = str(exchange)
    return env


def _as_user(env: dict[str, str], home: Path, name: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return dict(env, HOME=str(home), USER=name, LOGNAME=name)


def _answers(replacements: dict[str, str] | None = None) -> dict[str, str]:
    """Answer cell sources by grade id: the reference answers, with ``replacements`` swapped in."""
    solved = student_submission(AID, replacements)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in solved.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def _answer_in_place(path: Path, answers: dict[str, str]) -> None:
    """Write the answers into the fetched notebook, the way a student types them in."""
    nb = nbformat.read(path, as_version=4)
    filled = 0
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            cell.source = answers[gid]
            filled += 1
    assert filled == len(answers), f"{path}: filled {filled} of {len(answers)} answer cells"
    nbformat.write(nb, path)


def test_students_submit_and_get_feedback_through_the_exchange(tmp_path, monkeypatch):
    steps = Steps()
    exchange = tmp_path / "exchange"
    monkeypatch.setenv("SEQCOURSE_EXCHANGE", str(exchange))  # for the course read in this process too
    course_dir = tmp_path / "course"
    for edition in ("solutions", "lessons"):
        shutil.copytree(REPO_ROOT / edition / AID, course_dir / edition / AID)
    (course_dir / "nbgrader_config.py").write_text(COURSE_CONFIG)
    (course_dir / "autograder").mkdir()  # the gradebook's folder: `nbgrader collect` opens it
    base = _clean_env(exchange)
    instructor = _as_user(base, tmp_path / "home" / "instructor", "instructor")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    wrong_rnn_cell = next(m.source for m in load_catalogue(AID) if m.cell == "rnn_cell")
    students = {"alice": _answers(), "bob": _answers({"rnn_cell": wrong_rnn_cell})}
    homes = {s: tmp_path / "home" / s for s in students}
    envs = {s: _as_user(base, homes[s], s) for s in students}
    for home in homes.values():
        shutil.copy(REPO_ROOT / "autograder" / "student_nbgrader_config.py", home / "nbgrader_config.py")

    # The instructor releases the student edition (lessons/) into the exchange; no gradebook entry
    # is needed for that. nbgrader creates the exchange folder, world-writable.
    steps.run("instructor: nbgrader release_assignment", nbgrader + ["release_assignment", AID],
              course_dir, instructor)
    assert (exchange / COURSE_ID / "outbound" / AID / NAME).is_file(), sorted(map(str, exchange.rglob("*")))
    listed = steps.run("student: nbgrader list", nbgrader + ["list"], homes["alice"], envs["alice"])
    assert f"{COURSE_ID} {AID}" in listed, f"nbgrader list (student) does not show the release:\n{listed}"

    # The students work at the same time, each in their own home.
    def hand_in(student: str) -> str:
        home, env = homes[student], envs[student]
        steps.run(f"{student}: nbgrader fetch_assignment", nbgrader + ["fetch_assignment", AID], home, env)
        fetched = home / AID / NAME
        assert fetched.is_file(), f"fetch_assignment left no {fetched}: {sorted(map(str, home.rglob('*')))}"
        text = fetched.read_text(encoding="utf-8")
        assert not any(leak in text for leak in LEAKS), f"{student} fetched a notebook with the hidden tests"
        _answer_in_place(fetched, students[student])
        out = steps.run(f"{student}: nbgrader submit", nbgrader + ["submit", AID, "--student", student],
                        home, env)
        assert "Submitted as" in out, f"nbgrader submit for {student} did not say it submitted:\n{out}"
        cached = sorted((home / ".local" / "share" / "jupyter" / "nbgrader_cache" / COURSE_ID)
                        .glob(f"{student}+{AID}+*"))
        assert len(cached) == 1, f"{student}'s submission is not in their nbgrader cache: {cached}"
        return (cached[0] / "timestamp.txt").read_text().strip()

    with ThreadPoolExecutor(len(students)) as pool:
        submitted_at = dict(zip(students, pool.map(hand_in, students), strict=True))

    inbound = steps.run("instructor: nbgrader list --inbound", nbgrader + ["list", "--inbound"],
                        course_dir, instructor)
    for student in students:
        assert f"{COURSE_ID} {student} {AID}" in inbound, \
            f"nbgrader list --inbound does not list {student}'s submission:\n{inbound}"

    steps.run("instructor: nbgrader collect", nbgrader + ["collect", AID], course_dir, instructor)
    course = Course(course_dir)
    assert course.students(AID) == sorted(students), f"collected: {course.students(AID)}"
    for student in students:
        folder = course.submitted / student / AID
        assert (folder / NAME).is_file() and (folder / "timestamp.txt").is_file(), sorted(folder.iterdir())

    out = steps.run("instructor: course autograde", _course_command() + [
        "autograde", AID, "--course", str(course_dir), "--workers", "2"], course_dir, instructor, timeout=600)
    rows = {r["student"]: r for r in grade_rows(course, AID)[1]}
    assert sorted(rows) == sorted(students), f"graded: {sorted(rows)}\n{out}"
    for student, row in rows.items():
        assert row["status"] == STATUS_GRADED, f"{student}: {row}\n{out}"
    assert float(rows["alice"]["score"]) == FULL, f"alice: {rows['alice']}\n{out}"
    assert float(rows["bob"]["score"]) < FULL, f"bob: {rows['bob']}\n{out}"
    assert float(rows["bob"]["test_rnn_cell"]) < float(rows["alice"]["test_rnn_cell"]), rows["bob"]

    out = steps.run("instructor: course feedback", _course_command() + [
        "feedback", AID, "--course", str(course_dir)], course_dir, instructor)
    assert f"feedback for {len(students)} students" in out, out
    out = steps.run("instructor: nbgrader release_feedback", nbgrader + ["release_feedback", AID],
                    course_dir, instructor)
    released = sorted((exchange / COURSE_ID / "feedback").glob("*.html"))
    assert len(released) == len(students), f"release_feedback released {released}\n{out}"

    def fetch_feedback(student: str) -> None:
        home = homes[student]
        out = steps.run(f"{student}: nbgrader fetch_feedback", nbgrader + ["fetch_feedback", AID],
                        home, envs[student])
        found = sorted((home / AID / "feedback").glob("*/*.html"))
        assert [p.relative_to(home).as_posix() for p in found] == \
            [f"{AID}/feedback/{submitted_at[student]}/{AID}.html"], \
            f"{student}'s fetched feedback: {found}\n{_tail(out)}"
        html = found[0].read_text(encoding="utf-8")
        score = float(rows[student]["score"])
        shown = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", html)  # the first is the total
        assert shown, f"{student}'s feedback shows no score"
        assert (float(shown.group(1)), float(shown.group(2))) == (score, FULL), \
            f"{student}'s feedback shows {shown.group(0)}, the gradebook says {score} / {FULL}"
        for leak in LEAKS:
            assert leak not in html, f"{student}'s feedback contains {leak!r}"

    with ThreadPoolExecutor(len(students)) as pool:
        list(pool.map(fetch_feedback, students))

    # bob hands in again and the instructor collects it, but has not graded it yet: feedback on
    # the old notebook must not be written for the new submission (release_feedback would send it).
    (course.submitted / "bob" / AID / NAME).write_text(
        (homes["bob"] / AID / NAME).read_text(encoding="utf-8") + "\n", encoding="utf-8")
    again = generate_feedback(course, AID, ["bob"])
    assert not again.written and "changed after it was graded" in again.skipped["bob"]

    total = time.perf_counter() - steps.started
    print(f"{total:6.1f} s  in all")
