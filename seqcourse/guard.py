"""Tamper guard: detect functions that a student cell replaced.

Student code runs in the same kernel as the tests, so it can rebind ``torch.allclose`` or any
helper a test calls. This module snapshots the objects behind the names that tests rely on the
first time it is imported, which is in the notebook's locked setup cell, before any student
cell runs. ``verify()`` compares every name with its snapshot and fails with a clear message.
It is one layer of three: the checks in :mod:`seqcourse.checks` use the captured references
themselves, and :mod:`seqcourse_grader.scan` flags such assignments statically.
"""

from __future__ import annotations

import builtins
import importlib
import math
import os
import sys

import numpy
import torch
import torch.nn.functional  # noqa: F401  (imported so its attributes can be snapshotted)
import torch.testing  # noqa: F401

# (module, attribute names) the tests depend on, directly or through seqcourse.checks.
_WATCHED: dict[str, tuple[str, ...]] = {
    "builtins": ("abs", "all", "any", "bool", "float", "int", "isinstance", "len", "max", "min",
                 "print", "range", "round", "sum", "zip", "AssertionError", "Exception",
                 "getattr", "callable", "repr", "str", "type"),
    "math": ("isclose", "isfinite", "isnan"),
    "numpy": ("allclose", "isclose", "array_equal", "abs", "max", "asarray"),
    "numpy.testing": ("assert_allclose", "assert_array_equal", "assert_equal"),
    "torch": ("allclose", "isclose", "equal", "abs", "max", "all", "any", "isfinite", "tanh",
              "sigmoid", "softmax", "log_softmax", "tensor", "as_tensor", "zeros", "ones", "randn",
              "rand", "randint", "manual_seed", "no_grad", "is_tensor", "matmul", "cat", "stack",
              "where", "argmax", "exp", "log", "sum", "mean", "full"),
    "torch.testing": ("assert_close",),
    "torch.nn.functional": ("cross_entropy", "softmax", "log_softmax", "embedding", "linear"),
    "torch.Tensor": ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__sub__",
                     "__add__", "__mul__", "__matmul__", "__truediv__", "__abs__", "__bool__",
                     "__float__", "__getitem__", "abs", "max", "min", "sum", "mean", "item", "all",
                     "any", "allclose", "equal", "isclose", "float", "double", "detach", "clone",
                     "tolist", "numpy", "backward", "argmax", "size", "dim", "numel", "shape",
                     "dtype", "grad", "sub", "le", "ge", "eq", "isfinite"),
    "torch.nn.Module": ("__call__", "parameters", "named_parameters", "state_dict", "eval",
                        "train", "zero_grad"),
    "seqcourse.checks": ("check_close", "check_shape", "check_true", "check_type", "check_finite",
                         "CheckError", "_fail", "_close", "_prepare", "_check_true", "_check_close"),
    "seqcourse.guard": ("verify", "replaced", "capture", "_get", "_resolve"),
    "seqcourse.hidden_tests": ("hidden", "ask", "_Hidden", "_audit", "_package"),
    "seqcourse.train": ("evaluate", "fit", "confusion_matrix"),
}

_SNAPSHOT: dict[tuple[str, str], object] = {}


class TamperError(AssertionError):
    """Raised when a function that the tests rely on was replaced."""


_MODULES = sys.modules   # the interpreter's own dict, even if a cell rebinds sys.modules


def _resolve(path: str):
    if path == "torch.Tensor":
        return torch.Tensor
    if path == "torch.nn.Module":
        return torch.nn.Module
    # A dict lookup first: verify() runs at every check, hundreds of times in a differential test,
    # and import_module takes the import lock each time. A module taken out of sys.modules is
    # imported afresh, so its functions are new objects and count as replaced.
    module = _MODULES.get(path)
    return module if module is not None else importlib.import_module(path)


def _get(owner, name):
    # Class attributes are read from the class __dict__ chain without invoking descriptors, so a
    # replaced property or method is seen as the new object.
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if name in klass.__dict__:
                return klass.__dict__[name]
        return None
    return owner.__dict__.get(name) if hasattr(owner, "__dict__") else getattr(owner, name, None)


def _is_cell(filename: str) -> bool:
    """A frame of notebook code: IPython names cells ``<ipython-input-...>`` or, in ipykernel,
    ``/tmp/ipykernel_<pid>/<hash>.py``."""
    return filename.startswith("<ipython-input") or "ipykernel_" in filename


def _visible_frames(tb):
    """The traceback without frames that set ``__tracebackhide__`` (the checks): IPython hides
    such frames itself, except the last one, where a failed check is raised."""
    import types

    kept = []
    while tb is not None:
        if not tb.tb_frame.f_locals.get("__tracebackhide__"):
            kept.append(tb)
        tb = tb.tb_next
    trimmed = None
    for frame in reversed(kept):
        trimmed = types.TracebackType(trimmed, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return trimmed


def failing_lines(tb) -> list[str]:
    """Where a failure happened, in notebook code only: the test cell's line that raised, and the
    deepest line of the learner's own code below it, if the error came from there."""
    import linecache

    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if _is_cell(code.co_filename):
            frames.append((code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    if not frames:
        return []
    filename, lineno, _ = frames[0]
    lines = [f"failed at: {linecache.getline(filename, lineno).strip()}"]
    if len(frames) > 1:
        filename, lineno, func = frames[-1]
        lines.append(f"in your code: {linecache.getline(filename, lineno).strip()} (in {func}, line {lineno})")
    return lines


def _short_tracebacks_while_grading() -> None:
    """While nbgrader runs the notebook, a failure prints only where it happened in notebook code
    (``failing_lines``) and its message: no library or hidden-test source, which a full
    traceback's context lines would put in the feedback. Elsewhere the learner gets IPython's full
    traceback of a failed check, ending in the test cell: the checks' own frames are left out."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    if not os.environ.get("NBGRADER_EXECUTION"):
        # A failed check is a CheckError, an AssertionError (named here without importing the checks).
        def without_library_frames(shell, etype, value, tb, tb_offset=None):
            stb = shell.InteractiveTB.structured_traceback(etype, value, _visible_frames(tb), tb_offset=tb_offset)
            shell._showtraceback(etype, value, stb)   # IPython leaves showing it to the handler
            return stb

        shell.set_custom_exc((AssertionError,), without_library_frames)
        return

    def short(shell, etype, value, tb, tb_offset=None):
        stb = failing_lines(tb) + [f"{etype.__name__}: {value}"]
        shell._showtraceback(etype, value, stb)
        return stb

    shell.run_line_magic("xmode", "Minimal")      # for what the handler below does not catch
    shell.set_custom_exc((Exception,), short)


def capture() -> None:
    """Snapshot the watched names (only the first call records anything); shorten tracebacks
    while grading."""
    _short_tracebacks_while_grading()
    if _SNAPSHOT:
        return
    # torch patches some of its own functions when these are first imported (torch._dynamo wraps
    # torch.manual_seed, and the optimisers import it lazily): let that happen before the snapshot.
    # The watched modules are named, not imported here: seqcourse.checks imports this module.
    for path in ("torch._dynamo", "torch.optim", *_WATCHED):
        _resolve(path)
    for path, names in _WATCHED.items():
        owner = _resolve(path)
        for name in names:
            _SNAPSHOT[(path, name)] = _get(owner, name)


def _from_notebook(obj) -> bool:
    """True for a function written in the notebook (a cell), not in a library.

    This catches a replacement made before the setup cell ran (a student can move a cell above
    the locked setup cell), which a snapshot alone would take for the original.
    """
    for candidate in (obj, getattr(obj, "fget", None), getattr(obj, "__func__", None)):
        if candidate is None:
            continue
        if getattr(candidate, "__module__", None) == "__main__":
            return True
        filename = getattr(getattr(candidate, "__code__", None), "co_filename", "")
        if filename.startswith("<ipython-input") or "/ipykernel_" in filename:
            return True
    return False


def replaced() -> list[str]:
    """Names whose current object is not the one captured, or was written in the notebook."""
    out, owners = [], {}
    for (path, name), original in _SNAPSHOT.items():
        try:
            if path not in owners:
                owners[path] = _resolve(path)
            current = _get(owners[path], name)
        except Exception:  # a module removed from sys.modules, say
            current = None
        if current is not original or _from_notebook(current):
            out.append(f"{path}.{name}")
    return out


def verify() -> None:
    """Fail if any function the tests rely on was replaced since the setup cell ran."""
    __tracebackhide__ = True
    if not _SNAPSHOT:
        raise TamperError("the tamper guard holds no snapshot: run the notebook's setup cell first")
    changed = replaced()
    if changed:
        raise TamperError(
            "these functions were replaced after the setup cell ran: " + ", ".join(changed) +
            ". Tests cannot be trusted while they are; restart the kernel and do not reassign "
            "library functions in your code.")


# Keep pristine references for our own use, taken before anything else can run.
ORIGINAL_BUILTINS = {name: getattr(builtins, name) for name in _WATCHED["builtins"]}
ORIGINAL_ISFINITE = math.isfinite
ORIGINAL_NUMPY_ALLCLOSE = numpy.allclose
