"""The whole path through nbgrader: release, stubs, solution, a mistake, and tampering.

Each notebook is graded by the course's one engine (``grade_notebook``, what ``course selfgrade``
and ``course autograde`` run): nbgrader's autograde in a sandboxed kernel with the ci budget, in a
scratch course with its own gradebook.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from seqcourse.paths import REPO_ROOT, lesson_notebook
from seqcourse_grader.catalogue import load_catalogue, notebook_with
from seqcourse_grader.classroom import grade_notebook
from seqcourse_grader.cli import release_differences
from seqcourse_grader.nbg import assignments

pytestmark = pytest.mark.pipeline
LESSONS = assignments()


def test_lessons_match_a_fresh_generation():
    assert release_differences(LESSONS) == []


# Full marks for a solution and zero for an untouched stub, through nbgrader and the engine, are
# kinds of tests/test_class_grading.py's class (lesson 01); nbval runs every solution's visible and
# hidden tests, and tests/test_mistakes.py every catalogued mistake.


def test_nbgrader_validate_from_repo_root():
    """nbgrader's own command, with the repo's config, finds every test failing on the stub.
    (One lesson: the command and the config are the same for all; every stub's zero score is
    checked above, through the same nbgrader execution.)"""
    stub = lesson_notebook("01-rnn-cell", "lessons")
    run = subprocess.run([sys.executable, "-m", "nbgrader", "validate", "--invert", str(stub)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    # every test fails, except the experiment's, which has no visible test: it is graded at submission
    passed = run.stdout.split("The following cell passed:")[1:] if "NOTEBOOK PASSED ON" in run.stdout else []
    assert "Success! The notebook does not pass any tests." in run.stdout or (
        len(passed) == 1 and passed[0].strip().startswith("# Graded at submission")), run.stdout + run.stderr


def test_a_mistake_costs_points_in_its_own_exercise_only_through_nbgrader():
    """Lesson 01 with a classifier that reads the last padded position: the training step and the
    trained classifier are graded with the reference model, so only its own exercise loses points,
    and the feedback names the call that failed. (Every catalogued mistake of every lesson is
    followed in tests/test_mistakes.py with the same hidden preamble; this is the nbgrader path.)"""
    mistake = next(m for m in load_catalogue("01-rnn-cell") if m.name == "last-padded-position")
    report = grade_notebook("01-rnn-cell", notebook_with("01-rnn-cell", {mistake.cell: mistake.source}), "mistake")
    lost = {g: report.messages.get(g, "") for g, s in report.scores.items() if s < report.max_scores[g]}
    assert list(lost) == ["test_SurnameRNN"], report.summary("01-rnn-cell")
    assert report.status == "graded" and report.scores["test_SurnameRNN"] == 0, report.summary("01-rnn-cell")
    assert lost["test_SurnameRNN"].startswith("failed at: "), lost   # the call that failed is shown


# The README's commands name `.venv/bin/...` and nothing is activated: nbgrader must still find its
# helper programs (`alembic`), which live next to the venv's Python.
UNACTIVATED_PATH = "/usr/bin:/bin"
VENV_BIN = Path(sys.executable).parent


def test_formgrader_works_from_the_repo_root_without_an_activated_venv(tmp_path):
    """`.venv/bin/jupyter lab` from the repo root, with a PATH that lacks .venv/bin: the formgrader
    reads the course's config, answers 200, and creates a complete gradebook."""
    import json
    import os
    import socket
    import sqlite3
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gradebook = tmp_path / "gradebook.db"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=UNACTIVATED_PATH, HOME=str(tmp_path), SEQCOURSE_GRADEBOOK=f"sqlite:///{gradebook}",
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(VENV_BIN / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=t0k3n"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/formgrader/api/assignments",
                                         headers={"Authorization": "token t0k3n"})
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(request, timeout=20) as response:
                    status = response.status
                    assignments_seen = json.load(response)
                break
            except urllib.error.HTTPError as e:
                raise AssertionError(f"formgrader answered {e.code}; server log:\n"
                                     f"{(tmp_path / 'server.log').read_text()[-3000:]}") from None
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
        assert status == 200
        by_name = {a["name"]: a for a in assignments_seen}
        for aid in LESSONS:
            assert aid in by_name, f"formgrader lists {sorted(by_name)}"
        # found in solutions/, the source directory the course config names
        assert all(by_name[aid]["source_path"] for aid in LESSONS)
        with sqlite3.connect(gradebook) as db:
            versions = db.execute("SELECT version_num FROM alembic_version").fetchall()
        assert len(versions) == 1, "nbgrader's `alembic stamp` did not run: the gradebook has no version"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_selfgrade_works_without_an_activated_venv(tmp_path):
    """The README's `.venv/bin/course selfgrade ...`, exactly as written, in a fresh shell."""
    import os

    from processes import VARIABLE, marker, still_running

    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    mark = marker()
    env.update(PATH=UNACTIVATED_PATH, HOME=str(tmp_path), **{VARIABLE: mark})
    done = subprocess.run([str(VENV_BIN / "course"), "selfgrade", "lessons/01-rnn-cell/01-rnn-cell.ipynb"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert still_running(mark) == [], "selfgrade left processes running (its zygote, a kernel?)"
    # the untouched lesson: graded (0 points, exit 1), where it used to fail before grading
    assert "01-rnn-cell: 0 / 18 points (graded)" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 1
    # every failed test shows the call that failed, and the line of the learner's code it came from
    failed = [ln for ln in done.stdout.splitlines() if ln.strip().startswith("FAIL")]
    assert failed and done.stdout.count("failed at: ") == len(failed), done.stdout
    assert "in your code: raise NotImplementedError()" in done.stdout, done.stdout


def test_selfgrade_prints_nbgrader_s_real_error(tmp_path, monkeypatch):
    """When nbgrader fails, the learner reads its actual error, not "see the above traceback"."""
    # nbgrader cannot stamp the new gradebook: the error it met when `alembic` was not on PATH
    import nbgrader.api

    from seqcourse_grader import classroom
    from seqcourse_grader.cli import main

    def no_alembic():
        raise FileNotFoundError(2, "No such file or directory", "alembic")

    monkeypatch.setattr(nbgrader.api, "get_alembic_version", no_alembic)
    monkeypatch.setattr(classroom, "_TEMPLATES", {})    # generate the lesson again, here
    with pytest.raises(SystemExit) as failed:
        main(["selfgrade", str(lesson_notebook("01-rnn-cell", "lessons"))])
    message = str(failed.value)
    assert "cause: FileNotFoundError" in message and "alembic" in message, message
    assert "see the above traceback" not in message.splitlines()[0]


def test_selfgrade_refuses_a_broken_notebook_clearly(tmp_path, capsys):
    from seqcourse_grader.cli import main

    broken = tmp_path / "01-rnn-cell" / "01-rnn-cell.ipynb"
    broken.parent.mkdir()
    broken.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(SystemExit, match="not a valid Jupyter notebook"):
        main(["selfgrade", str(broken)])
    with pytest.raises(SystemExit, match="pass --lesson"):
        main(["selfgrade", str(REPO_ROOT / "README.md")])


def test_gradebooks_are_stamped_with_the_revision_alembic_names():
    """The in-process schema head (nbg.gradebook_schema_head) is the one `alembic heads` prints."""
    from nbgrader.dbutil import _temp_alembic_ini

    from seqcourse_grader.nbg import gradebook_schema_head

    with _temp_alembic_ini("sqlite:////nonexistent/gradebook.db") as ini:
        printed = subprocess.check_output([str(VENV_BIN / "alembic"), "-c", ini, "heads"], text=True)
    assert printed.split()[0] == gradebook_schema_head(), printed
