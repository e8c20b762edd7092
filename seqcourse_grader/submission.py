"""Grading one submission: a private copy of the class template, nbgrader's autograde in a forked
process, a sandboxed kernel (:mod:`seqcourse_grader.kernels`), limits and time-outs, and a
:class:`Result` that always has a status.

:func:`grade_one` takes a *task*, a plain dict that carries everything as bytes (the submission's
files and the zipped class template), so it runs the same in a local process pool and on a Dask
worker on another machine, and returns the :class:`Result` with the autograded notebook in it.
Only the caller writes to the course (see :mod:`seqcourse_grader.gradebook`).
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import tempfile
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

import nbformat

from seqcourse import cells
from seqcourse_grader.collect import choose_notebook
from seqcourse_grader.course import repository_paths
from seqcourse_grader.kernels import KERNEL_NAME, write_kernelspec, zygote
from seqcourse_grader.precheck import inspect_outputs, precheck, tamper_guard_failed
from seqcourse_grader.result import Limits, Result
from seqcourse_grader.witness import Seen, read_log

# ------------------------------------------------------------------------------ the worker's side
_TEMPLATES: dict[str, Path] = {}


def _worker_dir() -> Path:
    if "base" not in _TEMPLATES:
        _TEMPLATES["base"] = Path(tempfile.mkdtemp(prefix="seqcourse-grading-"))
    return _TEMPLATES["base"]


def _template(zipped: bytes) -> Path:
    """The class template unpacked once per worker (keyed by its hash)."""
    key = hashlib.sha256(zipped).hexdigest()[:16]
    if key not in _TEMPLATES:
        target = _worker_dir() / f"template-{key}"
        with zipfile.ZipFile(io.BytesIO(zipped)) as z:
            z.extractall(target)
        _TEMPLATES[key] = target
    return _TEMPLATES[key]


def _ipc_prefix(work: Path) -> Path | None:
    """Where the kernel's Unix sockets go, or None where the path would be too long for one."""
    prefix = work / "ipc" / "k"
    return prefix if len(str(prefix)) < 90 else None   # sun_path holds 108 bytes, with "-<port>"


def _autograde_child(root: str, aid: str, student: str, jupyter_path: str, cell_timeout: int, out: str) -> None:
    """Runs in a forked process (its own process group, so a time-out kills all of it)."""
    os.setsid()
    os.environ["JUPYTER_PATH"] = jupyter_path + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    from seqcourse_grader.nbg import course_config, nbgrader_api, quiet

    config = course_config(root)
    config.Execute.kernel_name = KERNEL_NAME
    config.Execute.timeout = cell_timeout
    ipc = _ipc_prefix(Path(root))
    if ipc:
        # Unix sockets, not TCP ports: a free port picked for the kernel can be taken by another
        # process (a Dask worker restarting, another kernel) before the kernel binds it, and the
        # kernel then dies at start, a correct notebook with no score.
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(ipc)
    with quiet():
        result = nbgrader_api(config).autograde(aid, student, force=True, create=True)
    Path(out).write_text(json.dumps({"success": bool(result.get("success")),
                                     "log": str(result.get("log") or "")[-4000:],
                                     "error": str(result.get("error") or "")[-4000:]}))


_VERB = {"process": "tried to start a process", "network": "tried to open a network connection",
         "protected path": "tried to touch a protected path", "native code": "tried to load native code",
         "writing outside its folder": "tried to write outside its folder",
         "introspection": "looked inside the interpreter", "grader code": "reached for the grader's code",
         "library changed": "changed the library", "reference answer": "used a reference answer",
         "hidden tests": "reached for the hidden tests", "graded cell": "ran graded cells out of order"}


def grade_one(task: dict) -> Result:
    """Grade one submission in a private scratch course; never raises for a bad submission."""
    started = time.perf_counter()
    result = Result(task["student"])
    try:
        _grade(task, result)
    finally:
        result.seconds = time.perf_counter() - started
    return result


def _grade(task: dict, result: Result) -> None:
    limits = Limits(**task["limits"])
    aid, name, student = task["aid"], task["notebook"], task["student"]
    chosen, reasons, notes = choose_notebook(task["files"], name)
    result.notes += notes
    for r in reasons:
        result.review(r)
    if chosen is None:
        return
    raw = task["files"][chosen]
    result.sha256 = hashlib.sha256(raw).hexdigest()
    template = _template(task["template"])
    checked = precheck(raw, nbformat.read(template / "lessons" / aid / name, as_version=4), limits.max_notebook_mb,
                       aid)
    result.notes += checked.notes
    for r in checked.reasons:
        result.review(r)
    if checked.nb is None:
        return

    work = _worker_dir() / f"w-{os.getpid()}-{hashlib.sha256(student.encode()).hexdigest()[:12]}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template, work)
    try:
        _run(task, result, checked, raw, work, limits)
    finally:
        if not task.get("keep"):
            shutil.rmtree(work, ignore_errors=True)


def _run(task, result, checked, raw, work: Path, limits: Limits) -> None:
    aid, name, student = task["aid"], task["notebook"], task["student"]
    dest = work / "autograder" / "submitted" / student / aid
    dest.mkdir(parents=True)
    (dest / name).write_bytes(nbformat.writes(checked.nb).encode() if checked.changed else raw)
    kernel_dir = work / "autograder" / "autograded" / student / aid
    policy, log = work / "sandbox-policy.json", work / "sandbox.log"
    protected = task["protected"] + [str(p) for p in repository_paths()] + [str(_worker_dir())]
    allowed = [kernel_dir.resolve()]
    ipc = _ipc_prefix(work)
    if ipc:   # the kernel removes its sockets when it stops
        ipc.parent.mkdir()
        allowed.append(ipc.parent.resolve())
    key = secrets.token_bytes(32)   # the sandbox's log lines carry an HMAC under it (witness.py)
    policy.write_text(json.dumps({"assignment": aid, "key": key.hex(), "protected": sorted(set(protected)),
                                  "allowed": [str(a) for a in allowed], "log": str(log), "limits": asdict(limits)}))
    write_kernelspec(work / "jupyter", policy, zygote() if task.get("zygote", True) else None,
                     threads=task.get("threads", 1), scratch=ipc.parent if ipc else kernel_dir,
                     shrunk_runs=task.get("shrunk_runs", False))

    status_file = work / "autograde-result.json"
    child = multiprocessing.get_context("fork").Process(target=_autograde_child, args=(
        str(work), aid, student, str(work / "jupyter"), limits.cell_timeout, str(status_file)))
    child.start()
    import seqcourse.selfcheck  # noqa: F401  (for _read_grades; it loads torch, 1 s, while the child grades)

    child.join(limits.submission_timeout)
    if child.is_alive():
        _kill_group(child.pid)
        child.join(10)
        result.review(f"grading took longer than {limits.submission_timeout} s and was stopped")
        return
    outcome = json.loads(status_file.read_text()) if status_file.is_file() else \
        {"success": False, "log": "", "error": f"the grading process exited with code {child.exitcode}"}
    seen = read_log(log, key)
    for reason in _refusals(seen, {kernel_dir: ".", work: "<grading folder>", _worker_dir(): "<grading worker>"}):
        result.review(reason)

    graded = kernel_dir / name
    if not outcome["success"] or not graded.is_file():
        text = outcome["log"] + outcome["error"]
        if "DeadKernelError" in text or "ernel died" in text:
            result.review("the kernel died (os._exit, a crash, or the memory or CPU limit); no score recorded")
        else:
            from seqcourse_grader.nbg import last_error

            result.review(f"nbgrader could not grade it: {last_error(text)}")
        return
    _read_grades(result, graded, work, aid, name, student)
    unseen = [g for g, score in result.scores.items() if score > 0 and g not in seen.finished]
    if unseen:
        result.review("graded cells earned points although the sandbox did not see their tests finish (a "
                      "failure hidden from nbgrader, or tests that never ran): " + ", ".join(unseen))
    from seqcourse_grader.scan import scan_notebook

    for finding in scan_notebook(checked.nb):
        result.review(f"code that changes the library or test helpers: {finding}")


def _read_grades(result: Result, graded: Path, work: Path, aid: str, name: str, student: str) -> None:
    from nbgrader.api import Gradebook

    from seqcourse.selfcheck import error_text

    result.autograded = graded.read_bytes()
    graded_nb = nbformat.reads(result.autograded.decode(), as_version=4)
    reasons, notes = inspect_outputs(graded_nb)
    for r in reasons:
        result.review(r)
    result.notes += notes
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        grades = gb.find_submission_notebook(Path(name).stem, aid, student).grades
        for grade in sorted(grades, key=lambda g: cells.position(graded_nb, g.name)):
            result.scores[grade.name] = float(grade.score or 0)
            result.max_scores[grade.name] = float(grade.max_score)
    for gid, cell in cells.by_grade_id(graded_nb).items():
        if gid in result.scores and error_text(cell):
            result.messages[gid] = error_text(cell)
    tampered = [g for g in result.scores if tamper_guard_failed(graded_nb, g)]
    if tampered:
        result.review("the tamper guard failed in " + ", ".join(tampered))


def _refusals(seen: Seen, names: dict[Path, str]) -> list[str]:
    """What the sandbox refused or found, at most five, with the grader's own folders named, not
    given as temporary paths (a re-grade then records the same reasons); and a log the submission
    wrote to or cut."""
    out = []
    for event in seen.findings:
        detail = str(event.get("detail", ""))
        for folder, label in names.items():   # deepest first: the kernel's folder is inside work
            detail = detail.replace(str(Path(folder).resolve()), label)
        out.append(f"{_VERB.get(event.get('kind'), event.get('kind'))}: {detail}")
    if seen.forged:
        out.append(f"the sandbox's log holds {seen.forged} lines it did not write")
    if seen.missing:
        out.append("lines of the sandbox's log were removed")
    return list(dict.fromkeys(out))[:5]


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        time.sleep(0.5)
