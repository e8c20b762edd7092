"""The kernel that runs a submission while it is graded: resource limits and a Python audit hook.

Started as ``python -m seqcourse_grader.sandbox -f CONNECTION_FILE`` from the grading kernelspec
(see :mod:`seqcourse_grader.classroom`). Before the kernel runs any cell, this module sets
operating-system limits (``setrlimit``, as ``prlimit`` would): address space, CPU seconds, file
size, open files and, for a non-root user, processes. Then it installs an audit hook (PEP 578)
that refuses, with a ``PermissionError`` the student sees and a line in the grader's log:

- starting processes (``subprocess``, ``os.system``, ``os.fork``, ``os.exec*``, ``posix_spawn``):
  a fork bomb stops at its first fork, and no shell command can read what the hook guards;
- network connections (``socket.connect``, ``bind``, ``sendto``, name lookups);
- reading, writing or listing protected paths: the course's gradebook, ``solutions/``, the
  submitted work of the class, other submissions' scratch folders (only the kernel's own folder is
  open), and opening SQLite databases there;
- loading native libraries from outside the Python installation (``ctypes``), the usual way
  around an audit hook.

The policy comes from the JSON file named by ``SEQCOURSE_SANDBOX_POLICY``: ``{"protected":
[paths], "allowed": [paths], "log": path, "limits": {...}}``. An audit hook is a guard against mistakes and casual
cheating inside one Python process, not a security boundary against a determined attacker with
native code: for a hostile class, also run the grader as a dedicated user in a container.
"""

from __future__ import annotations

import json
import os
import sys

_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn",
                   "os.spawn", "os.startfile", "pty.spawn"}
_NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
                   "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"}
# events whose first argument is a path to check
_PATH_EVENTS = {"open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.rmdir", "os.mkdir",
                "os.truncate", "os.chmod", "os.chown", "os.link", "os.symlink", "shutil.copyfile",
                "shutil.copytree", "shutil.rmtree", "shutil.move", "glob.glob", "sqlite3.connect",
                "os.utime", "os.walk"}


def _real(path) -> str | None:
    if isinstance(path, int):
        return None  # an already open file descriptor
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        return None
    if path in ("", ":memory:"):
        return None
    return os.path.realpath(path)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def make_hook(protected: list[str], allowed: list[str], log_fd: int | None, native_ok: list[str]):
    """Build the audit hook. Kept free of imports at call time: it runs on every audited event."""
    protected = [os.path.realpath(p) for p in protected]
    allowed = [os.path.realpath(p) for p in allowed]
    native_ok = [os.path.realpath(p) for p in native_ok]
    state = {"busy": False}

    def refuse(kind: str, detail: str):
        if log_fd is not None:
            try:
                os.write(log_fd, (json.dumps({"kind": kind, "detail": detail[:300]}) + "\n").encode())
            except OSError:
                pass
        raise PermissionError(f"not allowed while grading: {kind} ({detail[:200]})")

    def hook(event: str, args: tuple) -> None:
        if state["busy"]:
            return
        if event in _PROCESS_EVENTS:
            refuse("process", f"{event} {args[0] if args else ''}")
        if event in _NETWORK_EVENTS:
            refuse("network", f"{event} {args[1] if len(args) > 1 else ''}")
        if event == "ctypes.dlopen":
            name = args[0] if args else None
            path = _real(name) if name else None
            if path is None or not any(_inside(path, r) for r in native_ok):
                refuse("native code", f"ctypes.dlopen {name!r}")
            return
        if event in _PATH_EVENTS and args:
            state["busy"] = True  # os.path.realpath may itself raise audited events
            try:
                path = _real(args[0])
            finally:
                state["busy"] = False
            if path is None:
                return
            if any(_inside(path, r) for r in protected) and not any(_inside(path, a) for a in allowed):
                refuse("protected path", f"{event} {path}")

    return hook


def _user_tasks() -> int:
    """Processes and threads of this user now (RLIMIT_NPROC counts them all)."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if int(fields["Uid"].split()[0]) == uid:
                    count += int(fields.get("Threads", "1"))
            except (OSError, KeyError, ValueError):
                continue
    return count


def apply_limits(limits: dict) -> None:
    """Operating-system limits for this process and everything it starts."""
    import resource

    mb = 2**20
    wanted = {
        resource.RLIMIT_AS: limits.get("memory_mb", 0) * mb,
        resource.RLIMIT_CPU: limits.get("cpu_seconds", 0),
        resource.RLIMIT_FSIZE: limits.get("file_size_mb", 0) * mb,
        resource.RLIMIT_NOFILE: limits.get("open_files", 0),
    }
    if limits.get("processes") and os.path.isdir("/proc") and os.getuid() != 0:
        # Per user, not per process, so allow what the user runs already plus the budget.
        # (root is exempt from this limit; the audit hook still refuses forks.)
        wanted[resource.RLIMIT_NPROC] = _user_tasks() + limits["processes"]
    for which, value in wanted.items():
        if value:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, hard))


def install_from_env() -> None:
    policy_file = os.environ.get("SEQCOURSE_SANDBOX_POLICY")
    if not policy_file:
        return
    with open(policy_file) as f:
        policy = json.load(f)
    apply_limits(policy.get("limits", {}))
    log_fd = os.open(policy["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if policy.get("log") else None
    import sysconfig

    native_ok = sorted({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
                       | {sys.prefix, sys.base_prefix, sys.exec_prefix})
    sys.addaudithook(make_hook(policy.get("protected", []), policy.get("allowed", []), log_fd, native_ok))


def main() -> None:
    # Do what the kernel itself needs before the hook exists; none of it is the student's doing.
    # jupyter_client lists the machine's addresses (by running `ip` or `ifconfig`) and platform
    # asks `uname -p` once; both results are cached, so later calls start nothing.
    import platform

    from ipykernel import kernelapp
    from jupyter_client import localinterfaces

    localinterfaces.public_ips()
    platform.processor()
    platform.uname()
    if os.environ.get("SEQCOURSE_SANDBOX_POLICY"):
        # matplotlib's font cache is built (with `fc-list`) on first use; do it now, not in a cell.
        import matplotlib.font_manager  # noqa: F401

        # The hidden tests live in the course's autograder/ folder, which the hook locks away
        # from the submission: import them now, so the notebook's hidden-test cells find them.
        from seqcourse.hidden_tests import seal

        seal()
    install_from_env()
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
