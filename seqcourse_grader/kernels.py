"""Grading kernels that start in milliseconds: a zygote per grading worker.

Starting a kernel for every submission costs seconds before the learner's first line runs: Python,
ipykernel, torch, matplotlib and the course's library are imported again each time. A *zygote*
(``python -m seqcourse_grader.kernels SOCKET``) imports them once, before any submission code
exists, and then forks one kernel per submission. The kernelspec's process is a tiny launcher
(:mod:`seqcourse_grader._kernel_launcher`) that asks the zygote for a kernel and relays signals
to it, so nbclient and nbgrader drive it as any kernel. Each forked kernel applies its own
submission's sandbox (:mod:`seqcourse_grader.sandbox`: limits and the audit hook) before it runs
a cell, and exits when its launcher does. A kernel is a fresh fork of a zygote that never ran
submission code, so nothing passes from one submission to the next.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

KERNEL_NAME = "seqcourse-sandbox"
LAUNCHER = Path(__file__).with_name("_kernel_launcher.py")
# Imported once by the zygote: what every grading kernel needs, and what the lessons import.
PRELOAD = ("ipykernel.kernelapp", "IPython", "numpy", "torch", "torch.nn", "torch.optim", "torch._dynamo",
           "matplotlib.pyplot", "matplotlib.font_manager", "tqdm.auto", "seqcourse", "seqcourse.env", "seqcourse.checks",
           "seqcourse.train", "seqcourse.text", "seqcourse.plots", "seqcourse.tasks", "seqcourse.data.surnames",
           "seqcourse.data.dates", "seqcourse.data.tatoeba", "seqcourse.guard", "seqcourse.hidden_tests",
           "hypothesis", "hypothesis.strategies", "seqcourse_grader.gates", "seqcourse_grader.vault", "seqcourse_grader.witness", "babel.dates", "sacrebleu")
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
              "PYDEVD_DISABLE_FILE_VALIDATION": "1", "TQDM_DISABLE": "1"}


def write_kernelspec(jupyter_dir: Path, policy: Path, zygote: str | None, threads: int = 1,
                     scratch: Path | None = None, shrunk_runs: bool = False) -> None:
    """The grading kernelspec in ``jupyter_dir/kernels``: through the zygote when there is one.
    ``threads``: torch's threads in the kernel (one per kernel when a class fills every core);
    ``scratch``: a folder the kernel may write, for Hypothesis's cache (the hidden tests' inputs);
    ``shrunk_runs``: a dry run, every training run on the shrunk budget (``seqcourse.env``)."""
    spec = Path(jupyter_dir) / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-S", str(LAUNCHER)] if zygote else [sys.executable, "-m", "seqcourse_grader.sandbox"]
    env = {**KERNEL_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "SEQCOURSE_SANDBOX_POLICY": str(policy)}
    if zygote:
        env["SEQCOURSE_ZYGOTE"] = zygote
    if scratch is not None:
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(Path(scratch) / ".hypothesis")
    if shrunk_runs:
        env["SEQCOURSE_SHRUNK_RUNS"] = "1"   # seqcourse.env.SHRUNK_RUNS (not imported: it loads torch)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": argv + ["-f", "{connection_file}"], "display_name": "seqcourse grading sandbox",
        "language": "python", "env": env}, indent=1))


_ZYGOTE: dict = {}


def zygote() -> str | None:
    """This worker's zygote socket, started on first use (it keeps importing while the first
    submission is prepared; launchers wait for it). None where fork is not available."""
    if not hasattr(os, "fork") or os.environ.get("SEQCOURSE_NO_ZYGOTE"):
        return None
    proc = _ZYGOTE.get("proc")
    if proc is None or proc.poll() is not None:
        folder = tempfile.mkdtemp(prefix="seqcourse-zygote-")
        path = os.path.join(folder, "kernels.sock")
        log = open(os.path.join(folder, "zygote.log"), "ab")   # noqa: SIM115 (lives with the zygote)
        # stdin is the zygote's lifeline: it exits when this worker does.
        proc = subprocess.Popen([sys.executable, "-m", "seqcourse_grader.kernels", path],
                                stdin=subprocess.PIPE, stdout=log, stderr=log, env={**os.environ, **KERNEL_ENV})
        Path(path + ".pid").write_text(str(proc.pid))   # launchers wait only while it lives
        if not _ZYGOTE:
            atexit.register(stop_zygote)
        _ZYGOTE.update(proc=proc, path=path)
    return _ZYGOTE["path"]


def stop_zygote(timeout: float = 10) -> None:
    """End this process's zygote and wait for it (it kills the kernels it forked): nothing a
    grading command started outlives it. Called at exit; a zygote also ends on its own when the
    process that started it goes away (its stdin closes)."""
    proc = _ZYGOTE.pop("proc", None)
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.stdin.close()
        proc.wait(timeout)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------ the zygote itself
def _preload() -> None:
    import platform

    from jupyter_client import localinterfaces

    localinterfaces.public_ips()   # cached: no kernel starts `ip` or `uname` under the audit hook
    platform.processor()
    platform.uname()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    try:
        from hypothesis.internal.entropy import deterministic_PRNG
        with deterministic_PRNG():
            pass
    except ImportError:
        pass


def _kernel(conn: socket.socket, request: dict) -> None:
    """In the forked child: become this submission's sandboxed kernel; never returns."""
    try:
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)

        def lifeline():          # the launcher is gone (killed with its grading process): stop
            while conn.recv(64):
                pass
            os._exit(1)

        threading.Thread(target=lifeline, daemon=True).start()
        import torch
        from ipykernel import kernelapp

        from seqcourse_grader.sandbox import install_from_env

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))   # read at import, in the zygote
        install_from_env()
        # parent_handle 1: no parent poller (the lifeline above does its job) and no console banner
        kernelapp.IPKernelApp.launch_instance(argv=[*request["argv"], "--IPKernelApp.parent_handle=1"])
    except BaseException as e:  # noqa: BLE001 (report and leave: this is a child process)
        print(f"seqcourse grading kernel failed to start: {e!r}", file=sys.stderr)
        os._exit(1)
    os._exit(0)


def serve(path: str) -> None:
    try:
        _serve(path)
    finally:   # launchers that find no zygote start their kernel the slow way
        for suffix in ("", ".ready", ".pid"):
            Path(path + suffix).unlink(missing_ok=True)


def _serve(path: str) -> None:
    _preload()
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    Path(path + ".ready").touch()
    children: dict[int, socket.socket] = {}
    while True:
        ready, _, _ = select.select([server, sys.stdin, wake_r], [], [], 5)
        if wake_r in ready:
            os.read(wake_r, 4096)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn:
                try:
                    conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass
                conn.close()
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            return
        if server in ready:
            conn, _ = server.accept()
            request = json.loads(conn.makefile("r").readline())
            pid = os.fork()
            if pid == 0:
                for other in (server, *children.values()):
                    other.close()
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(wake_r)
                os.close(wake_w)
                _kernel(conn, request)
            conn.sendall(f"pid {pid}\n".encode())
            children[pid] = conn


if __name__ == "__main__":
    serve(sys.argv[1])
