"""A hub with several graders keeps its gradebook in PostgreSQL: grade a class into a real server.

The test starts a throwaway PostgreSQL server (Debian's ``postgresql`` package) on loopback, grades
into it with two workers, reads the result back through nbgrader and the export, and stops it.
Where no server can be started it is skipped, and says why.
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from test_class_grading import AID, KINDS, LIMITS, _put, make_course

from seqcourse.grading.classroom import grade_class
from seqcourse.grading.collect import collect_folder
from seqcourse.grading.course import STATUS_GRADED, STATUS_REVIEW
from seqcourse.grading.reports import export_csv

pytestmark = pytest.mark.pipeline


def _binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install -e .[hub])")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries: install Debian's `postgresql` package to run this test")
    # Not under pytest's temporary folder: the server's user must be able to reach its files.
    base = Path(tempfile.mkdtemp(prefix="seqcourse-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to start the server as")
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    port = _free_port()

    def run(*cmd, timeout=60):
        return subprocess.run(prefix + list(cmd), capture_output=True, text=True, timeout=timeout)

    made = run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    if made.returncode:
        pytest.skip(f"initdb failed, so no server could be started: {made.stderr.strip()[-300:]}")
    started = run(pg_ctl, "-D", str(data), "-w", "-l", str(base / "server.log"), "-o",
                  f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    if started.returncode:
        pytest.skip(f"the PostgreSQL server did not start: {started.stderr.strip()[-300:]}")
    try:
        import psycopg2

        for _ in range(50):
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE gradebook")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/gradebook"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_grading_into_postgresql(postgres, tmp_path):
    from nbgrader.api import Gradebook

    from seqcourse.grading.course import Course

    make_course(tmp_path / "course")
    course = Course(tmp_path / "course", db_url=postgres)
    kinds = ["correct", "wrong-answers", "invalid-json", "untouched-stub"]
    for kind in kinds:
        _put(tmp_path / "in" / kind, KINDS[kind][0](course))
    collect_folder(course, AID, tmp_path / "in")
    results = {r.student: r for r in grade_class(course, AID, workers=2, limits=LIMITS, progress=False)}
    assert results["correct"].status == STATUS_GRADED and results["correct"].score == 18
    assert results["invalid-json"].status == STATUS_REVIEW and results["invalid-json"].score is None
    with Gradebook(postgres) as gb:  # what the formgrader would read
        assert gb.find_submission(AID, "correct").score == 18
        assert {s.id for s in gb.students} == set(kinds)
    rows = {r["student"]: r for r in csv.DictReader(export_csv(course, AID, tmp_path / "g.csv").open())}
    assert rows["correct"]["score"] == "18.0" and rows["untouched-stub"]["score"] == "0.0"
    assert rows["invalid-json"]["status"] == STATUS_REVIEW and rows["invalid-json"]["score"] == ""
    # a second grader (another process) re-grading part of the class sees and keeps the same rows
    again = grade_class(Course(tmp_path / "course", db_url=postgres), AID, students=["correct"], workers=1,
                        limits=LIMITS, progress=False)
    assert again[0].scores == results["correct"].scores
    assert Path(tmp_path / "course" / "autograder" / "autograded" / "correct" / AID).is_dir()
