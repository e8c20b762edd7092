"""The whole path through nbgrader: release, stubs, solution, a mistake, and tampering.

Each autograde runs the notebook in a fresh kernel under nbgrader, with the ci budget, in a
scratch course (its own gradebook), exactly as an instructor's `nbgrader autograde` would.
"""

import subprocess
import sys

import pytest

from seqcourse.cli import release_differences
from seqcourse.grading.mistakes import load_catalogue, notebook_with
from seqcourse.grading.nbg import ScratchCourse, assignments
from seqcourse.paths import REPO_ROOT, lesson_notebook

pytestmark = pytest.mark.pipeline
LESSONS = assignments()


@pytest.fixture(scope="module")
def course():
    with ScratchCourse(LESSONS) as c:
        yield c


def test_lessons_match_a_fresh_generation():
    assert release_differences(LESSONS) == []


@pytest.mark.parametrize("aid", LESSONS)
def test_solution_gets_full_marks(course, aid):
    nb = lesson_notebook(aid)
    report = course.autograde(aid, nb, "solution")
    assert report.max_score > 0
    assert report.score == report.max_score, report.summary()
    assert report.status == "graded", report.summary()


@pytest.mark.parametrize("aid", LESSONS)
def test_untouched_stub_scores_zero(course, aid):
    stub = lesson_notebook(aid, "lessons")
    report = course.autograde(aid, stub, "stub")
    assert report.score == 0, report.summary()
    assert all(c.score == 0 for c in report.cells)
    assert "NotImplementedError" in report.cells[0].message


@pytest.mark.parametrize("aid", LESSONS)
def test_nbgrader_validate_from_repo_root(aid):
    """nbgrader's own command, with the repo's config, finds every test failing on the stub."""
    stub = lesson_notebook(aid, "lessons")
    run = subprocess.run([sys.executable, "-m", "nbgrader", "validate", "--invert", str(stub)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert "Success! The notebook does not pass any tests." in run.stdout, run.stdout + run.stderr


def test_a_catalogued_mistake_loses_points_end_to_end(course):
    mistake = next(m for m in load_catalogue("01-rnn-cell") if m.name == "last-padded-position")
    report = course.autograde("01-rnn-cell", notebook_with("01-rnn-cell", {mistake.cell: mistake.source}), "mistake")
    scores = {c.grade_id: c.score for c in report.cells}
    assert scores["test_SurnameRNN"] == 0, report.summary()
    assert report.score < report.max_score
    assert scores["test_rnn_cell"] > 0  # the other exercises keep their points


def test_feedback_hides_hidden_tests_and_export_works(course, tmp_path):
    mistake = next(m for m in load_catalogue("01-rnn-cell") if m.name == "no-bias")
    report = course.autograde("01-rnn-cell", notebook_with("01-rnn-cell", {mistake.cell: mistake.source}), "feedback")
    html = course.feedback("01-rnn-cell", "feedback").read_text(encoding="utf-8")
    assert "Exercise 1: visible tests passed." in html  # the student's own results are shown
    assert "BEGIN HIDDEN TESTS" not in html and "hidden.test_rnn_cell" not in html
    assert report.score < report.max_score
    csv = course.export_csv(tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert "feedback" in csv and "01-rnn-cell" in csv


def test_formgrader_finds_the_course_from_the_repo_root(tmp_path):
    """JupyterLab's formgrader, started from the repo root, reads the course's nbgrader config."""
    import json
    import os
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, SEQCOURSE_GRADEBOOK=f"sqlite:///{tmp_path / 'gradebook.db'}",
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=t0k3n"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/formgrader/api/assignments",
                                         headers={"Authorization": "token t0k3n"})
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    assignments_seen = json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
        by_name = {a["name"]: a for a in assignments_seen}
        for aid in LESSONS:
            assert aid in by_name, f"formgrader lists {sorted(by_name)}"
        # found in solutions/, the source directory the course config names
        assert all(by_name[aid]["source_path"] for aid in LESSONS)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_selfgrade_refuses_a_broken_notebook_clearly(tmp_path, capsys):
    from seqcourse.cli import main

    broken = tmp_path / "01-rnn-cell" / "01-rnn-cell.ipynb"
    broken.parent.mkdir()
    broken.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(SystemExit, match="not a valid Jupyter notebook"):
        main(["selfgrade", str(broken)])
    with pytest.raises(SystemExit, match="pass --lesson"):
        main(["selfgrade", str(REPO_ROOT / "README.md")])
