"""The kernel that runs a submission while it is graded: resource limits, an audit hook, the vault.

Started as ``python -m seqcourse_grader.sandbox -f CONNECTION_FILE`` from the grading kernelspec,
or forked from a kernel zygote (:mod:`seqcourse_grader.kernels`). Before the kernel runs any cell,
this module sets operating-system limits (``setrlimit``, as ``prlimit`` would): address space, CPU
seconds, file size, open files and, for a non-root user, processes. It loads the lesson's
reference answers and hidden tests into a vault (:mod:`seqcourse_grader.vault`) and installs an
audit hook (PEP 578) that holds the vault, no Python object referring to either. The hook answers
the graded cells' requests to the vault, and refuses, with a ``PermissionError`` the student sees
and an authenticated line in the grader's log (:mod:`seqcourse_grader.witness`):

- starting processes (``subprocess``, ``os.system``, ``os.fork``, ``os.exec*``, ``posix_spawn``):
  a fork bomb stops at its first fork, and no shell command can read what the hook guards;
- network connections (``socket.connect``, ``bind``, ``sendto``, name lookups);
- reading or listing protected paths (the course's gradebook, ``solutions/``, ``autograder/``,
  the class's submissions, other submissions' folders), and writing, while a cell runs, anywhere
  but the kernel's own folder;
- loading native libraries from outside the Python installation (``ctypes``);
- from notebook code (directly, or through ``inspect``, ``traceback`` or ``dis``): reading frames
  (``sys._getframe``, a traceback's or generator's frame, ``sys._current_frames``), walking the
  interpreter's objects (``gc.get_objects``, ``get_referrers``, ``get_referents``), tracing
  (``sys.settrace``, ``setprofile``), raw memory (``ctypes`` calls, ``string_at``), reading the
  code of the grader's functions or the references (``__code__``, defaults), building code or
  functions from them, importing the grader's modules, and changing the classes of the library
  (``torch.Tensor.x = ...``).

Besides, at every request of a graded cell, it compares the library's modules (``torch``,
``numpy``, ``builtins``, the course's ``seqcourse``...) with what they held when the kernel started
and records a function set, replaced or added on them. A finding never changes a score by itself:
the grader marks the submission for review, with the reason.

The policy comes from the JSON file named by ``SEQCOURSE_SANDBOX_POLICY``: ``{"assignment": id,
"key": hex, "protected": [paths], "allowed": [paths the kernel may write], "log": path,
"limits": {...}}``. An audit hook is a guard against mistakes and cheating inside one Python
process, not a security boundary against a determined attacker with native code: for a hostile
class, also run the grader as a dedicated user in a container.
"""

from __future__ import annotations

import json
import os
import sys
import types
from _thread import get_ident

_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn",
                   "os.spawn", "os.startfile", "pty.spawn"}
_NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
                   "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"}
# events whose first argument is a path to check; the second set only writes
_READ_EVENTS = {"open", "os.listdir", "os.scandir", "glob.glob", "sqlite3.connect", "os.walk"}
_WRITE_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown",
                 "os.link", "os.symlink", "shutil.copyfile", "shutil.copytree", "shutil.rmtree",
                 "shutil.move", "os.utime"}
# refused when notebook code asks for them (see _from_notebook)
_INTROSPECTION = {"sys._getframe": "read a frame (sys._getframe)",
                  "sys._current_frames": "read every thread's frame (sys._current_frames)",
                  "gc.get_objects": "walk the interpreter's objects (gc.get_objects)",
                  "gc.get_referrers": "walk the interpreter's objects (gc.get_referrers)",
                  "gc.get_referents": "walk the interpreter's objects (gc.get_referents)",
                  "sys.settrace": "trace the interpreter (sys.settrace)",
                  "sys.setprofile": "trace the interpreter (sys.setprofile)",
                  "ctypes.call_function": "call native code through ctypes",
                  "ctypes.cdata": "read raw memory through ctypes",
                  "ctypes.cdata/buffer": "read raw memory through ctypes",
                  "ctypes.string_at": "read raw memory through ctypes",
                  "ctypes.wstring_at": "read raw memory through ctypes",
                  "ctypes.addressof": "read raw memory through ctypes"}
_FRAME_ATTRS = {"tb_frame", "gi_frame", "cr_frame", "ag_frame"}
_CODE_ATTRS = {"__code__", "__defaults__", "__kwdefaults__"}
_LOOKED_AT = _FRAME_ATTRS | _CODE_ATTRS
_CODE_EVENTS = {"function.__new__", "code.__new__", "compile", "exec"}
_WATCHED = (_PROCESS_EVENTS | _NETWORK_EVENTS | _READ_EVENTS | _WRITE_EVENTS | set(_INTROSPECTION) | _CODE_EVENTS
            | {"ctypes.dlopen", "object.__getattr__", "object.__setattr__", "object.__delattr__", "import"})
# Library modules whose functions a submission has no reason to set; and stdlib modules that only
# wrap introspection (a call through them counts as the caller's own).
# Libraries a submission may not change: what the tests compute with, and Hypothesis, which
# generates the differential tests' inputs (an engine told to run nothing would pass them all).
_LIBRARY = ("builtins", "math", "random", "numpy", "torch", "seqcourse", "hypothesis")
_HELPERS = ("inspect.py", "traceback.py", "dis.py", "bdb.py", "pdb.py", "linecache.py", "types.py", "functools.py",
            "operator.py", "ctypes/__init__.py")
# Names IPython itself puts in builtins while a cell runs.
_IPYTHON_BUILTINS = {"_", "__", "___", "display", "get_ipython", "exit", "quit", "__IPYTHON__",
                     "__IPYTHON__active", "dreload", "help", "input", "raw_input", "execfile", "runfile"}


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


def _writes(event: str, args: tuple) -> bool:
    if event in _WRITE_EVENTS:
        return True
    if event != "open" or len(args) < 3:
        return False
    mode, flags = args[1], args[2]
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool(isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))


class ModuleWatch:
    """The library's modules as the kernel started; :meth:`changes` names every function set,
    replaced or added on them since (data a library caches for itself is not a finding)."""

    def __init__(self):
        self._saved = {name: dict(vars(m)) for name, m in list(sys.modules.items())
                       if m is not None and name.split(".")[0] in _LIBRARY and not name.startswith("torch._")}
        self._told: set[str] = set()

    def changes(self) -> list[str]:
        out = []
        for name, saved in self._saved.items():
            module = sys.modules.get(name)
            now = vars(module) if module is not None else {}
            for key in set(saved) | set(now):
                old, new = saved.get(key), now.get(key)
                if old is new or (name == "builtins" and key in _IPYTHON_BUILTINS):
                    continue
                if not (_is_function(old) or _is_function(new)) or isinstance(new, types.ModuleType):
                    continue
                where = f"{name}.{key}"
                if where not in self._told:
                    self._told.add(where)
                    out.append(where)
        return out


def _is_function(value) -> bool:
    return callable(value) and not isinstance(value, types.ModuleType)


def make_hook(protected: list[str], allowed: list[str], witness, native_ok: list[str], vault=None,
              watch: ModuleWatch | None = None):
    """Build the audit hook around the vault. It runs on every audited event: the events it does
    not watch return at once."""
    from seqcourse.hidden_tests import EVENT
    from seqcourse_grader.gates import REFERENCE_FILE, is_cell

    protected = [os.path.realpath(p) for p in protected]
    allowed = [os.path.realpath(p) for p in allowed]
    native_ok = [os.path.realpath(p) for p in native_ok]
    import sysconfig

    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    helpers = {os.path.join(stdlib, *h.split("/")) for h in _HELPERS}
    here = os.path.realpath(__file__)
    busy: set[int] = set()   # threads inside the hook: what it does itself is not checked
    getframe = sys._getframe

    def grader_file(filename) -> bool:
        return isinstance(filename, str) and (filename.startswith(REFERENCE_FILE) or filename == here
                                             or (vault is not None and filename in vault.grader_files))

    def from_notebook(frame) -> bool:
        """The event comes from notebook code: the first frame below it that is not a helper
        (inspect, traceback...) is a cell's."""
        while frame is not None and frame.f_code.co_filename in helpers:
            frame = frame.f_back
        return frame is not None and is_cell(frame.f_code.co_filename)

    def during_notebook_code(frame) -> bool:
        """Notebook code is anywhere on the stack (what the kernel does for itself between cells,
        such as IPython's own files, is not the submission's doing)."""
        while frame is not None:
            if is_cell(frame.f_code.co_filename):
                return True
            frame = frame.f_back
        return False

    def refuse(kind: str, detail: str):
        witness.record(kind, detail)
        raise PermissionError(f"not allowed while grading: {kind} ({detail[:200]})")

    def answer(event: str, args: tuple) -> None:
        """A request to the vault: answered outside ``busy``, so that the hidden tests it runs,
        and the learner's code they call, are watched as everything else."""
        op, request, box = args
        tid = get_ident()
        busy.add(tid)
        try:
            asker = getframe(2)
            problems = watch.changes() if watch is not None and op in ("start", "call", "done") else []
        finally:
            busy.discard(tid)
        for where in problems:
            witness.record("library changed", f"{where} was set, replaced or added by the notebook")
        box.append(vault.handle(op, request, asker))

    def check(event: str, args: tuple, frame) -> None:
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
        if (event in _READ_EVENTS or event in _WRITE_EVENTS) and args:
            path = _real(args[0])
            if path is None:
                return
            if any(_inside(path, r) for r in protected) and not any(_inside(path, a) for a in allowed):
                refuse("protected path", f"{event} {path}")
            if _writes(event, args) and not (path == os.devnull or any(_inside(path, a) for a in allowed)) \
                    and during_notebook_code(frame):
                refuse("writing outside its folder", f"{event} {path}")
            return
        if event in _INTROSPECTION:
            if from_notebook(frame):
                refuse("introspection", _INTROSPECTION[event])
            return
        if event == "object.__getattr__":
            obj, name = args[0], args[1]
            if name in _FRAME_ATTRS and from_notebook(frame):
                refuse("introspection", f"read a frame (.{name})")
            if name in _CODE_ATTRS and from_notebook(frame):
                func = getattr(obj, "__func__", obj)
                code = getattr(func, "__code__", None)
                if code is not None and grader_file(code.co_filename):
                    refuse("grader code", f"read the {name} of the grader's {getattr(func, '__qualname__', '?')}")
            return
        if event in ("object.__setattr__", "object.__delattr__"):
            obj, name = args[0], args[1]
            if isinstance(obj, type) and str(getattr(obj, "__module__", "")).split(".")[0] in _LIBRARY \
                    and from_notebook(frame):
                refuse("library changed", f"set {obj.__module__}.{obj.__qualname__}.{name}")
            if isinstance(obj, types.ModuleType) and from_notebook(frame):
                refuse("library changed", f"set {getattr(obj, '__name__', '?')}.{name}")
            if name == "__code__" and from_notebook(frame):
                code = getattr(obj, "__code__", None)
                if code is not None and grader_file(code.co_filename):
                    refuse("grader code", f"replaced the code of the grader's {getattr(obj, '__qualname__', '?')}")
            return
        if event in _CODE_EVENTS:
            filename = (args[0].co_filename if event in ("function.__new__", "exec") and isinstance(args[0], types.CodeType)
                        else args[1] if len(args) > 1 else None)
            if grader_file(filename) and from_notebook(frame):
                refuse("grader code", f"{event} of the grader's code ({filename})")
            return
        if event == "import":
            module = str(args[0]) if args else ""
            if module.split(".")[0] in ("seqcourse_hidden", "seqcourse_grader") and from_notebook(frame):
                refuse("grader code", f"imports the grader's module {module}")

    def hook(event: str, args: tuple) -> None:
        if event == EVENT and vault is not None and len(args) == 3 and isinstance(args[2], list):
            answer(event, args)
            return
        if event not in _WATCHED:
            return
        if event == "object.__getattr__" and args[1] not in _LOOKED_AT:
            return    # f_code, __defaults__ of the library's own functions...: frequent, and harmless
        if event in ("object.__setattr__", "object.__delattr__") and not (
                args[1] == "__code__" or isinstance(args[0], (type, types.ModuleType))):
            return
        tid = get_ident()
        if tid in busy:
            return
        busy.add(tid)   # os.path.realpath, frame attributes... raise events of their own
        try:
            check(event, args, getframe(1))
        finally:
            busy.discard(tid)

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
    """Limits, the vault and the audit hook, as the policy says (nothing without a policy)."""
    policy_file = os.environ.get("SEQCOURSE_SANDBOX_POLICY")
    if not policy_file:
        return
    with open(policy_file) as f:
        policy = json.load(f)
    apply_limits(policy.get("limits", {}))
    import sysconfig

    from seqcourse_grader.vault import Vault
    from seqcourse_grader.witness import Witness

    log_fd = os.open(policy["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if policy.get("log") else None
    witness = Witness(log_fd, bytes.fromhex(policy.get("key", "")))
    vault = Vault(sandboxed=True, report=witness.record)
    if policy.get("assignment"):
        vault.load(policy["assignment"])     # before the hook: it reads solutions/ and autograder/
    native_ok = sorted({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
                       | {sys.prefix, sys.base_prefix, sys.exec_prefix})
    sys.addaudithook(make_hook(policy.get("protected", []), policy.get("allowed", []), witness, native_ok,
                               vault, ModuleWatch()))
    # The grader's modules leave sys.modules: what the hook needs it holds itself, and a submission
    # that imports one again is refused (the "import" event) and reported.
    for name in [n for n in sys.modules if n == "seqcourse_grader" or n.startswith("seqcourse_grader.")]:
        del sys.modules[name]


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
    install_from_env()
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
