"""A class on a JupyterHub on 127.0.0.1 (hub/jupyterhub_config.py), with the proxy from npm, nbgrader's
exchange and a PostgreSQL gradebook, from fetch to feedback.

    hub        jupyterhub -f hub/jupyterhub_config.py, as root; users alice, bob (students) and
               teacher (instructor), each with their own JupyterLab server
    instructor nbgrader release_assignment 01-rnn-cell
    students   through the hub's proxy and nbgrader's server extension, as JupyterLab's Assignments
               tab does: list, fetch, answer (the contents API), submit
    instructor nbgrader list --inbound; nbgrader collect (and carol's unreadable file, by folder);
               course autograde --db-url postgresql://...; the gradebook and the export read back;
               course feedback; nbgrader release_feedback
    students   fetch_feedback, then read their feedback through the contents API: the score the
               gradebook holds, no hidden test
    instructor bob's newer submission is collected but not graded: no feedback is written for it

Each student is a Unix account of their own, made for the test and removed after it, and their
server runs as that account (the config's default spawner, "local"): nbgrader's exchange keeps them
apart by file permissions. The accounts need a Python they can run with the course installed; the
test makes one, a venv of the system's Python of the same version that reads this environment's
packages (a class installs the course where every account can read it instead, e.g. /opt). Where
accounts cannot be made or no such Python exists, the servers run as the hub's account, each in its
own home ("shared"), and the test says why. It skips, saying why, without root, npm's proxy,
JupyterHub or a PostgreSQL server.
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from postgres import free_port, postgres  # noqa: F401  (a fixture)
from processes import VARIABLE, marker, still_running

from seqcourse.paths import REPO_ROOT
from seqcourse_grader.catalogue import load_catalogue, student_submission
from seqcourse_grader.collect import collect_folder
from seqcourse_grader.course import STATUS_GRADED, STATUS_REVIEW, Course
from seqcourse_grader.feedback import generate_feedback
from seqcourse_grader.gradebook import grade_rows
from seqcourse_grader.reports import export_csv

pytestmark = pytest.mark.pipeline
BIN = Path(sys.executable).parent
PROXY = REPO_ROOT / ".venv" / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
AID = "01-rnn-cell"
NAME = f"{AID}.ipynb"
FULL = 18.0
STUDENTS = ("alice", "bob")
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
    return [str(script)] if script.is_file() else [sys.executable, "-m", "seqcourse_grader.cli"]


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


def _answers(replacements: dict[str, str] | None = None) -> dict[str, str]:
    """Answer cell sources by grade id: the reference answers, with ``replacements`` swapped in."""
    solved = student_submission(AID, replacements)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in solved.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


class Hub:
    """The hub's REST API (as the course's service) and each user's server behind the proxy."""

    def __init__(self, url: str, token: str, log: Path):
        import requests

        self.url, self.log, self.http = url, log, requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def api(self, method: str, path: str, **kw):
        r = self.http.request(method, f"{self.url}/hub/api/{path}", timeout=60, **kw)
        assert r.status_code < 400, \
            f"{method} /hub/api/{path}: {r.status_code} {r.text[:500]}\nthe hub's log:\n{self.log.read_text()[-3000:]}"
        return r.json() if r.text else None

    def wait(self, proc: subprocess.Popen, seconds: float = 90) -> None:
        log = self.log
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the hub exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                if self.http.get(f"{self.url}/hub/api/", timeout=5).status_code == 200:
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(0.5)
        pytest.fail(f"the hub did not answer in {seconds} s:\n{log.read_text()[-3000:]}")

    def start_server(self, user: str, seconds: float = 120) -> None:
        self.api("POST", f"users/{user}/server")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if (self.api("GET", f"users/{user}").get("servers", {}).get("", {}) or {}).get("ready"):
                return
            time.sleep(0.5)
        pytest.fail(f"{user}'s server did not start in {seconds} s")

    def as_user(self, user: str) -> UserServer:
        return UserServer(self.url, user, self.api("POST", f"users/{user}/tokens", json={"note": "test"})["token"])


class UserServer:
    """What JupyterLab's Assignments tab and file browser call on one user's server."""

    def __init__(self, url: str, user: str, token: str):
        import requests

        self.base, self.http = f"{url}/user/{user}", requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def call(self, method: str, path: str, **kw):
        r = self.http.request(method, f"{self.base}/{path}", timeout=120, **kw)
        assert r.status_code < 400, f"{method} {self.base}/{path}: {r.status_code} {r.text[:800]}"
        return r.json() if r.text else None

    def assignment(self, action: str):
        """nbgrader's server extension: fetch, submit, fetch_feedback; returns the listing."""
        listing = self.call("POST", f"assignments/{action}", data={"course_id": COURSE_ID, "assignment_id": AID})
        assert not (isinstance(listing, dict) and listing.get("success") is False), f"{action}: {listing}"
        return listing


def _requirements() -> None:
    if os.geteuid() != 0:
        pytest.skip("the hub starts users' servers: run as root")
    if not (BIN / "jupyterhub").is_file():
        pytest.skip("JupyterHub is not installed (pip install -e .[hub])")
    if not PROXY.is_file() and not shutil.which("configurable-http-proxy"):
        pytest.skip("no configurable-http-proxy: `npm install --prefix .venv/proxy configurable-http-proxy` "
                    "(.ci/install does it where npm is installed)")


def _as_account(name: str, argv: list[str]) -> subprocess.CompletedProcess:
    account = pwd.getpwnam(name)
    return subprocess.run(argv, user=account.pw_uid, group=account.pw_gid, extra_groups=[], capture_output=True,
                          text=True, timeout=120, cwd="/", env={"HOME": account.pw_dir, "PATH": "/usr/bin:/bin"})


def _python_for_everyone(folder: Path, account: str) -> tuple[str | None, str]:
    """A Python that ``account`` can run, seeing this environment's packages: a venv of the system's
    Python of the same version, whose site-packages adds ours. ``(path, "")``, or ``(None, why)``."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    bases = [b for b in (f"/usr/bin/{version}", f"/usr/local/bin/{version}") if os.path.isfile(b)]
    usable = [b for b in bases if _as_account(account, [b, "-c", "pass"]).returncode == 0]
    if not usable:
        return None, f"no system {version} that another account can run (found: {bases or 'none'})"
    made = subprocess.run([usable[0], "-m", "venv", "--without-pip", str(folder)], capture_output=True, text=True)
    if made.returncode:
        return None, f"{usable[0]} -m venv failed: {made.stderr.strip()[-300:]}"
    site = folder / "lib" / version / "site-packages"
    (site / "seqcourse-course.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    for shared in ("etc", "share"):   # Jupyter's settings and JupyterLab's files live under sys.prefix
        if (Path(sys.prefix) / shared).is_dir():
            (folder / shared).symlink_to(Path(sys.prefix) / shared)
    python = str(folder / "bin" / "python")
    tried = _as_account(account, [python, "-c", "import jupyterhub.singleuser, nbgrader.server_extensions, seqcourse"])
    if tried.returncode:
        return None, f"the course's packages cannot be read by another account: {tried.stderr.strip()[-300:]}"
    return python, ""


@pytest.fixture
def hub_accounts(tmp_path):
    """The students' hub names, an exchange every account can use, and the spawner's settings:
    Unix accounts of their own where this machine allows it, else one shared account (and why)."""
    public = Path(tempfile.mkdtemp(prefix="seqcourse-hub-"))
    public.chmod(0o755)
    exchange = public / "exchange"
    exchange.mkdir()
    exchange.chmod(0o1777)    # as the README's setup: anyone may write, only owners delete
    suffix = secrets.token_hex(2)
    names, made, why = {s: f"{s}{suffix}" for s in STUDENTS}, [], ""
    try:
        if not shutil.which("useradd"):
            why = "no useradd on this machine"
        for name in names.values():
            if why:
                break
            added = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], capture_output=True, text=True)
            if added.returncode:
                why = f"useradd {name} failed: {added.stderr.strip()}"
            else:
                made.append(name)
        python = None
        if not why:
            python, why = _python_for_everyone(public / "python", made[0])
        if why:
            names = {s: s for s in STUDENTS}
            settings = dict(SEQCOURSE_HUB_SPAWNER="shared", SEQCOURSE_HUB_HOMES=str(tmp_path / "homes"))
            print(f"servers run as the hub's account, a home each ('shared'): {why}")
        else:
            settings = dict(SEQCOURSE_HUB_SPAWNER="local", SEQCOURSE_HUB_PYTHON=python)
            print(f"servers run as the Unix accounts {', '.join(made)} ('local'), with {python}")
        yield names, exchange, settings
    finally:
        for name in made:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        shutil.rmtree(public, ignore_errors=True)


def test_a_class_on_a_hub(postgres, hub_accounts, tmp_path):  # noqa: F811  (the fixture)
    _requirements()
    steps = Steps()
    names, exchange, spawner = hub_accounts
    alice, bob = names["alice"], names["bob"]
    state = tmp_path / "hub"
    state.mkdir()
    course_dir = tmp_path / "course"
    for edition in ("solutions", "lessons"):
        shutil.copytree(REPO_ROOT / edition / AID, course_dir / edition / AID)
    (course_dir / "nbgrader_config.py").write_text(COURSE_CONFIG)
    (course_dir / "autograder").mkdir()
    wrong = next(m.source for m in load_catalogue(AID) if m.cell == "rnn_cell")
    students = {alice: _answers(), bob: _answers({"rnn_cell": wrong})}
    token, port = secrets.token_hex(16), free_port()
    env = dict(_clean_env(exchange), SEQCOURSE_HUB_PORT=str(port), SEQCOURSE_HUB_API_PORT=str(free_port()),
               SEQCOURSE_PROXY_API_PORT=str(free_port()), SEQCOURSE_HUB_USERS=",".join(students),
               SEQCOURSE_HUB_INSTRUCTORS="teacher", SEQCOURSE_HUB_API_TOKEN=token, **spawner)
    instructor = dict(env, HOME=str(tmp_path / "teacher"))
    nbgrader = [sys.executable, "-m", "nbgrader"]
    log = state / "hub.log"
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(REPO_ROOT / "hub" / "jupyterhub_config.py")],
                                cwd=state, env=env, stdout=out, stderr=subprocess.STDOUT)
    hub = Hub(f"http://127.0.0.1:{port}", token, log)
    try:
        hub.wait(proc)
        print(f"{time.perf_counter() - start:6.1f} s  hub: up on 127.0.0.1:{port}")
        steps.run("instructor: nbgrader release_assignment", nbgrader + ["release_assignment", AID],
                  course_dir, instructor)

        def hand_in(student: str) -> None:
            began = time.perf_counter()
            hub.start_server(student)
            user = hub.as_user(student)
            print(f"{time.perf_counter() - began:6.1f} s  {student}: server started, token issued")
            listed = user.call("GET", "assignments", params={"course_id": COURSE_ID})
            assert any(a["assignment_id"] == AID for a in listed["value"]), listed
            user.assignment("fetch")
            got = user.call("GET", f"api/contents/{AID}/{NAME}")
            text = json.dumps(got["content"])
            assert not any(leak in text for leak in LEAKS), f"{student} fetched the hidden tests"
            nb = nbformat.from_dict(got["content"])
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if cell.metadata.get("nbgrader", {}).get("solution") and gid in students[student]:
                    cell.source = students[student][gid]
            user.call("PUT", f"api/contents/{AID}/{NAME}", json={"type": "notebook", "format": "json",
                                                                   "content": nb})
            listing = user.assignment("submit")
            assert any(a["status"] == "submitted" for a in listing["value"]), listing
            print(f"{time.perf_counter() - began:6.1f} s  {student}: fetched, answered, submitted")

        with ThreadPoolExecutor(len(students)) as pool:
            list(pool.map(hand_in, students))

        inbound = steps.run("instructor: nbgrader list --inbound", nbgrader + ["list", "--inbound"],
                            course_dir, instructor)
        for student in students:
            assert f"{COURSE_ID} {student} {AID}" in inbound, f"{student} is not in the inbound list:\n{inbound}"
        if spawner["SEQCOURSE_HUB_SPAWNER"] == "local":
            # each submission was written by its student's own account, and no student can list
            # the others' (nbgrader's inbound folder is write-only for students)
            folder = exchange / COURSE_ID / "inbound"
            owners = {p.name.split("+")[0]: pwd.getpwuid(p.stat().st_uid).pw_name for p in folder.iterdir()}
            assert owners == {s: s for s in students}, f"inbound submissions and their owners: {owners}"
            peek = _as_account(alice, ["ls", str(folder)])
            assert peek.returncode != 0, f"{alice} can list every submission in the inbound folder:\n{peek.stdout}"
        steps.run("instructor: nbgrader collect", nbgrader + ["collect", AID], course_dir, instructor)
        course = Course(course_dir, db_url=postgres)
        (tmp_path / "by-mail" / "carol").mkdir(parents=True)    # handed in by mail: not a notebook
        (tmp_path / "by-mail" / "carol" / NAME).write_bytes(b'{"cells": [')
        collect_folder(course, AID, tmp_path / "by-mail")
        mark = marker()
        out = subprocess.run(_course_command() + ["autograde", AID, "--course", str(course_dir), "--db-url", postgres,
                                                  "--workers", "1"], cwd=course_dir, env={**instructor, VARIABLE: mark},
                             capture_output=True, text=True, timeout=600)
        assert still_running(mark) == [], "course autograde left processes running (a worker, a zygote, a kernel?)"
        print(f"{time.perf_counter() - start:6.1f} s  instructor: course autograde into PostgreSQL")
        assert out.returncode == 1 and "1 need review" in out.stdout, out.stdout + out.stderr  # carol's file
        rows = {r["student"]: r for r in grade_rows(course, AID)[1]}
        assert rows[alice]["status"] == STATUS_GRADED and float(rows[alice]["score"]) == FULL, rows[alice]
        assert float(rows[bob]["score"]) < FULL and rows[bob]["status"] == STATUS_GRADED, rows[bob]
        assert rows["carol"]["status"] == STATUS_REVIEW and rows["carol"]["score"] == "", rows["carol"]
        exported = {r["student"]: r for r in csv.DictReader(export_csv(course, AID, tmp_path / "g.csv").open())}
        assert exported["carol"]["score"] == "" and float(exported[alice]["score"]) == FULL
        steps.run("instructor: course feedback", _course_command() + [
            "feedback", AID, "--course", str(course_dir), "--db-url", postgres, "--student", alice,
            "--student", bob], course_dir, instructor)
        steps.run("instructor: nbgrader release_feedback", nbgrader + [
            "release_feedback", AID, f"--CourseDirectory.db_url={postgres}"], course_dir, instructor)

        for student in students:
            user = hub.as_user(student)
            user.assignment("fetch_feedback")
            found = user.call("GET", f"api/contents/{AID}/feedback")["content"]
            assert len(found) == 1, f"{student}: feedback folders after fetch_feedback: {found}"
            page = user.call("GET", f"api/contents/{found[0]['path']}/{AID}.html",
                             params={"type": "file", "format": "text"})["content"]
            assert not any(leak in page for leak in LEAKS), f"{student}'s feedback shows hidden tests"
            shown = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", page)   # the first is the total
            assert shown and (float(shown.group(1)), float(shown.group(2))) == (float(rows[student]["score"]), FULL), \
                f"{student}'s feedback shows {shown and shown.group(0)}, the gradebook {rows[student]['score']}"
            print(f"{time.perf_counter() - start:6.1f} s  {student}: feedback fetched through the hub")

        # bob hands in again and it is collected, not yet graded: no feedback on the old notebook
        # may be written for the new submission (release_feedback would send it)
        newer = course.submitted / bob / AID / NAME
        newer.write_text(newer.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        again = generate_feedback(course, AID, [bob])
        assert not again.written and "changed after it was graded" in again.skipped[bob]
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"{time.perf_counter() - start:6.1f} s  in all")
