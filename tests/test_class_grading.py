"""Grading a class: every bad submission ends with a status and a score (or none), never a silent 0.

One class of lesson 01 submissions, one of each kind below, is graded on a two-worker Dask
LocalCluster in a scratch course (its own folder and SQLite gradebook), and one of the workers is
killed while it grades; each kind has an expected status and score. It is then graded again on the
process pool, which must record exactly the same rows: the two schedulers agree, a lost worker
changes nothing, and a re-grade is identical.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from seqcourse.paths import REPO_ROOT
from seqcourse_grader.catalogue import load_catalogue, student_submission
from seqcourse_grader.classroom import grade_class
from seqcourse_grader.collect import collect_folder, collect_zip
from seqcourse_grader.course import STATUS_GRADED, STATUS_REVIEW, Course
from seqcourse_grader.feedback import generate_feedback
from seqcourse_grader.gradebook import grade_rows
from seqcourse_grader.reports import export_csv, plot_scores
from seqcourse_grader.result import Limits

pytestmark = pytest.mark.pipeline
AID = "01-rnn-cell"
NAME = f"{AID}.ipynb"
FULL = 18.0
LIMITS = Limits(cell_timeout=6, submission_timeout=240)


def _wrong_answers():
    chosen = {}
    for m in load_catalogue(AID):
        chosen.setdefault(m.cell, m.source)
    return chosen


def _after_answers(code: str):
    """A correct notebook with ``code`` run at the end of the first answer cell (after its def)."""
    nb = student_submission(AID)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source += "\n\n" + code
            return nb
    raise AssertionError("no answer cell")


def _edited(grade_id, source=None, **meta):
    nb = student_submission(AID)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            if source is not None:
                c.source = source
            c.metadata["nbgrader"].update(meta)
    return nb


def _with_outputs(megabytes: int):
    nb = student_submission(AID)
    text = ("spam " * 200 + "\n") * (megabytes * 1000)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return nb


def _every_locked_cell_deleted():
    from seqcourse import cells

    nb = student_submission(AID)
    nb.cells = [c for c in nb.cells if not cells.is_locked(c)]
    return nb


def _v3() -> bytes:
    nb3 = nbformat.convert(student_submission(AID), 3)
    return nbformat.writes(nb3, version=3).encode()


# kind -> (what the folder holds, expected status, expected score: a number, "partial", or None)
# A builder returns a notebook, raw bytes, or a dict {file name: notebook | bytes}.
KINDS = {
    "correct": (lambda c: student_submission(AID), STATUS_GRADED, FULL),
    "untouched-stub": (lambda c: nbformat.read(REPO_ROOT / "lessons" / AID / NAME, 4), STATUS_GRADED, 0.0),
    "wrong-answers": (lambda c: student_submission(AID, {"rnn_cell": _wrong_answers()["rnn_cell"]}),
                      STATUS_GRADED, "partial"),
    "infinite-loop-in-function": (lambda c: student_submission(AID, {"rnn_cell": (
        "def rnn_cell(x_t, s_prev, W, U, b):\n    while True:\n        pass")}), STATUS_REVIEW, "partial"),
    "infinite-loop-outside-function": (lambda c: _after_answers("while True:\n    pass"), STATUS_REVIEW, FULL),
    "memory-bomb": (lambda c: _after_answers("hog = bytearray(64 * 2**30)"), STATUS_REVIEW, FULL),
    "fork-bomb": (lambda c: _after_answers("import os\nwhile True:\n    os.fork()"), STATUS_REVIEW, FULL),
    "os-exit": (lambda c: _after_answers("import os\nos._exit(1)"), STATUS_REVIEW, None),
    "sys-exit": (lambda c: _after_answers("import sys\nsys.exit('done')"), STATUS_GRADED, FULL),
    "edited-test-cell": (lambda c: _edited("test_rnn_cell", source="pass  # tests are for others"),
                         STATUS_GRADED, FULL),
    "changed-cell-metadata": (lambda c: _edited("test_rnn_cell", points=100), STATUS_GRADED, FULL),
    "test-cell-made-answer": (lambda c: _edited("test_rnn_forward", source="pass", grade=False, solution=True,
                                                locked=False), STATUS_REVIEW, None),
    "patched-torch-allclose": (lambda c: student_submission(
        AID, _wrong_answers(), prepend="import torch\ntorch.allclose = lambda *a, **k: True"), STATUS_REVIEW, 0.0),
    "patched-assert-helpers": (lambda c: student_submission(
        AID, _wrong_answers(), prepend="import seqcourse.checks as sc\nsc.check_close = sc.check_true = "
                                       "lambda *a, **k: None"), STATUS_REVIEW, 0.0),
    "invalid-json": (lambda c: b'{"cells": [{"cell_type": "code", ', STATUS_REVIEW, None),
    "nbformat-3": (lambda c: _v3(), STATUS_GRADED, FULL),
    "every-locked-cell-deleted": (lambda c: _every_locked_cell_deleted(), STATUS_GRADED, FULL),
    "markers-in-own-text": (lambda c: student_submission(
        AID, prepend="### BEGIN HIDDEN TESTS\n# (my notes: ### END SOLUTION)"), STATUS_GRADED, FULL),
    "not-a-notebook": (lambda c: b'{"hello": "world"}', STATUS_REVIEW, None),
    "huge-outputs": (lambda c: _with_outputs(8), STATUS_GRADED, FULL),
    "over-size-limit": (lambda c: _with_outputs(60), STATUS_REVIEW, None),
    "print-flood": (lambda c: _after_answers("for i in range(50_000):\n    print(i)"), STATUS_GRADED, FULL),
    "missing-notebook": (lambda c: {"README.txt": b"I forgot to attach it"}, STATUS_REVIEW, None),
    "renamed-notebook": (lambda c: {"my work (final).ipynb": student_submission(AID)}, STATUS_GRADED, FULL),
    "extra-files": (lambda c: {NAME: student_submission(AID), "data.csv": b"1,2\n", "helper.py": b"x = 1\n"},
                    STATUS_GRADED, FULL),
    "reads-gradebook": (lambda c: _after_answers(
        f"import sqlite3\nsqlite3.connect({c.db_url.removeprefix('sqlite:///')!r}).execute('select 1')"),
        STATUS_REVIEW, FULL),
    "reads-solutions": (lambda c: _after_answers(
        f"print(open({str(REPO_ROOT / 'solutions' / AID / NAME)!r}).read()[:100])"), STATUS_REVIEW, FULL),
    "reads-other-student": (lambda c: _after_answers(
        f"print(open({str(c.submitted / 'correct' / AID / NAME)!r}).read()[:100])"), STATUS_REVIEW, FULL),
    "shell-command": (lambda c: _after_answers("import os\nos.system('cat /etc/hostname')"), STATUS_REVIEW, FULL),
    "network-connection": (lambda c: _after_answers(
        "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)"), STATUS_REVIEW, FULL),
}


def _put(folder: Path, content) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    plain = isinstance(content, dict) and not isinstance(content, nbformat.NotebookNode)
    files = content if plain else {NAME: content}
    for name, item in files.items():
        if isinstance(item, bytes):
            (folder / name).write_bytes(item)
        else:
            nbformat.write(item, folder / name)


def make_course(root: Path) -> Course:
    for edition in ("solutions", "lessons"):
        shutil.copytree(REPO_ROOT / edition / AID, root / edition / AID)
    return Course(root)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    course = make_course(root)
    inbox = root / "inbox"
    for kind, (build, _, _) in KINDS.items():
        _put(inbox / kind, build(course))
    assert sorted(collect_folder(course, AID, inbox)) == sorted(KINDS)
    killed = []

    def kill_a_worker(result):
        """At the first result, kill one Dask worker while it grades (both are busy then): its task
        must run again elsewhere and end exactly as on the pool."""
        if not killed:
            worker = _dask_worker_of_a_grading_helper()
            os.kill(worker, signal.SIGKILL)
            killed.append(worker)

    started = time.time()
    results = {r.student: r for r in grade_class(course, AID, workers=2, limits=LIMITS, progress=False,
                                                 scheduler="local", on_result=kill_a_worker)}
    assert killed
    assert _started_since(started) == [], "the Dask class left grading processes running"
    return course, results


def _started_since(when: float) -> list[str]:
    """Grading processes below this one, started since ``when``, still running."""
    import psutil

    left = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.create_time() >= when - 1 and p.status() != psutil.STATUS_ZOMBIE and \
                    any("seqcourse" in part or "dask" in part for part in p.cmdline()):
                left.append(" ".join(p.cmdline())[:200])
        except psutil.NoSuchProcess:
            continue
    return left


def _dask_worker_of_a_grading_helper() -> int:
    """The pid of a Dask worker process of this test: the parent of a grading helper (the process
    ``seqcourse_grader.scheduler`` keeps in each worker) that descends from this process."""
    def parent(pid):
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])

    def ours(pid):
        while pid > 1:
            if pid == os.getpid():
                return True
            pid = parent(pid)
        return False

    helpers = {}   # pid -> parent pid
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"seqcourse_grader.scheduler" in f.read() and ours(int(entry)):
                    helpers[int(entry)] = parent(int(entry))
        except (OSError, ValueError):   # not a process, or it has just ended
            continue
    # A helper's forked autograde child has the same command line: its parent is a helper, not a
    # Dask worker, and killing it would test the helper's retry instead of Dask's.
    workers = sorted(set(helpers.values()) - set(helpers))
    assert workers, "no grading helper found under this test"
    return workers[0]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_gets_its_status_and_score(graded, kind):
    course, results = graded
    _, status, expected = KINDS[kind]
    r = results[kind]
    detail = f"{kind}: {r.status} {r.score} reasons={r.reasons} notes={r.notes}"
    assert r.status == status, detail
    if status == STATUS_REVIEW:
        assert r.reasons, detail          # a reason, always
    if expected is None:
        assert r.score is None, detail    # no score at all, never a plain 0
    elif expected == "partial":
        assert r.score is not None and 0 < r.score < FULL, detail
    else:
        assert r.score == expected, detail


def test_reasons_and_notes_say_what_happened(graded):
    _, r = graded
    said = {k: " ".join(v.reasons + v.notes) for k, v in r.items()}
    assert "time limit" in said["infinite-loop-outside-function"]
    assert "memory limit" in said["memory-bomb"]
    assert "start a process" in said["fork-bomb"] and "os.fork" in said["fork-bomb"]
    assert "kernel died" in said["os-exit"]
    assert "sys.exit" in said["sys-exit"]
    assert "deleted locked cells" in said["every-locked-cell-deleted"]
    assert "edited locked cells" in said["edited-test-cell"]
    assert "metadata" in said["changed-cell-metadata"]
    assert "Inconsistent checksums" in said["test-cell-made-answer"]   # nbgrader refuses it
    assert "not valid JSON" in said["invalid-json"]
    assert "format 3" in said["nbformat-3"] and "converted" in said["nbformat-3"]
    assert "markers" in said["markers-in-own-text"]
    assert "limit" in said["over-size-limit"]
    assert "no notebook submitted" in said["missing-notebook"]
    assert "my work (final).ipynb" in said["renamed-notebook"]
    assert "data.csv" in said["extra-files"] and "helper.py" in said["extra-files"]
    for kind in ("reads-gradebook", "reads-solutions", "reads-other-student"):
        assert "protected path" in said[kind], said[kind]
    assert "network" in said["network-connection"]
    assert "tamper" in said["patched-torch-allclose"] or "library" in said["patched-torch-allclose"]
    # nothing a correct notebook does is flagged
    assert not r["correct"].reasons and not r["correct"].notes


def test_export_has_a_row_per_student_and_a_column_per_exercise(graded, tmp_path):
    course, results = graded
    path = export_csv(course, AID, tmp_path / "grades.csv")
    rows = list(csv.DictReader(path.open()))
    assert sorted(r["student"] for r in rows) == sorted(KINDS)
    header = rows[0].keys()
    assert {"status", "reasons", "notes", "score", "max_score", "test_rnn_cell", "test_trained_classifier"} <= set(header)
    by = {r["student"]: r for r in rows}
    assert by["correct"]["score"] == "18.0" and by["correct"]["test_rnn_cell"] == "3.0"
    assert by["invalid-json"]["score"] == "" and by["invalid-json"]["status"] == STATUS_REVIEW
    assert by["untouched-stub"]["score"] == "0.0"       # a real zero is a zero
    stub = results["untouched-stub"]   # every test fails, and says why
    assert stub.scores and not any(stub.scores.values())
    assert "NotImplementedError" in stub.messages[next(iter(stub.scores))]
    png = plot_scores(course, AID, tmp_path / "scores.png")
    assert png.stat().st_size > 10_000


def test_feedback_has_scores_but_no_hidden_tests(graded):
    course, _ = graded
    run = generate_feedback(course, AID, ["correct", "wrong-answers", "markers-in-own-text", "invalid-json"])
    assert set(run.written) == {"correct", "wrong-answers", "markers-in-own-text"}, run
    assert list(run.failed) == ["invalid-json"] and "no autograded notebook" in run.failed["invalid-json"]
    text = run.written["wrong-answers"].read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "load_hidden" not in text and "seqcourse_hidden" not in text
    assert "EXERCISES.isolate" not in text
    assert "test_rnn_cell" in text and "Exercise 1: visible tests passed." in text
    # the student's own text keeps its words; the instructor's hidden tests are still cleared
    mine = run.written["markers-in-own-text"].read_text()
    assert "my notes" in mine and "seqcourse_hidden" not in mine


def test_the_pool_regrades_the_dask_class_identically_and_a_failed_regrade_leaves_no_stale_score(graded):
    course, first = graded
    before = {r["student"]: r for r in grade_rows(course, AID)[1]}
    again = grade_class(course, AID, workers=2, limits=LIMITS, progress=False, scheduler="pool")
    assert sorted(r.student for r in again) == sorted(first)
    for r in again:
        old = first[r.student]
        assert (r.status, r.score, r.reasons, r.notes, r.scores) == \
            (old.status, old.score, old.reasons, old.notes, old.scores), r.student
    after = {r["student"]: r for r in grade_rows(course, AID)[1]}
    assert after == before
    # "correct" hands in a broken file: its old 18 must not survive
    target = course.submitted / "correct" / AID / NAME
    target.write_bytes(b"not json")
    (r,) = grade_class(course, AID, students=["correct"], workers=1, limits=LIMITS, progress=False)
    row = {x["student"]: x for x in grade_rows(course, AID)[1]}["correct"]
    assert r.status == STATUS_REVIEW and row["score"] == "" and row["test_rnn_cell"] == ""
    assert not (course.autograded / "correct" / AID).exists()


def test_zip_collection_from_an_lms_download(tmp_path):
    course = make_course(tmp_path / "course")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"ada_1234_5678_{NAME}", nbformat.writes(student_submission(AID)))
        z.writestr(f"grace_LATE_1235_5679_{NAME}", nbformat.writes(student_submission(AID)))
    archive = tmp_path / "submissions.zip"
    archive.write_bytes(buf.getvalue())
    assert collect_zip(course, AID, archive) == ["ada", "grace"]
    assert (course.submitted / "ada" / AID / NAME).is_file()


def test_collect_refuses_names_that_are_not_student_ids(tmp_path):
    course = make_course(tmp_path / "course")
    bad = tmp_path / "in2"
    (bad / "a b").mkdir(parents=True)
    with pytest.raises(ValueError, match="student id"):
        collect_folder(course, AID, bad)


def test_command_line(graded, tmp_path, capsys):
    from seqcourse_grader.cli import main

    course, _ = graded
    assert main(["export", AID, "--course", str(course.root), "-o", str(tmp_path / "g.csv")]) == 0
    assert (tmp_path / "g.csv").is_file() and (tmp_path / "g.png").is_file()
    for command in ("collect", "autograde", "feedback", "export"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
    assert "--memory-mb" in capsys.readouterr().out
    # one student's feedback cannot be written: it is said, the others still get theirs, exit 1
    assert main(["feedback", AID, "--course", str(course.root), "--student", "invalid-json",
                 "--student", "wrong-answers"]) == 1
    said = capsys.readouterr().out
    assert "invalid-json: FAILED: no autograded notebook" in said and "wrong-answers: " in said
    assert "feedback for 1 students" in said and "1 failed" in said
    empty = make_course(tmp_path / "empty")
    with pytest.raises(SystemExit, match="no submissions"):
        main(["autograde", AID, "--course", str(empty.root)])
    with pytest.raises(SystemExit, match="no lesson"):
        main(["autograde", "99-nothing", "--course", str(empty.root)])
