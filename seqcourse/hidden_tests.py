"""Finds the hidden tests, which live with the instructor, never in this package.

The hidden tests (``autograder/hidden/seqcourse_hidden/lessonNN.py`` in the full course repository)
hold reference answers, so they are not part of the installed ``seqcourse`` package or of the
student edition. A notebook's hidden-test block loads them with ``load_hidden(lesson)``, which
finds them:

1. already imported or on ``sys.path`` (the grading sandbox imports them before it locks the
   course's files away from the submission);
2. in ``autograder/hidden/`` of the repository this package was installed from (``course
   autograde``, ``course selfgrade``, ``nbgrader autograde`` and nbval, run in the full course);
3. nowhere: a clear error, since hidden tests only run when work is graded.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys

from seqcourse.paths import REPO_ROOT

PACKAGE = "seqcourse_hidden"
HIDDEN_DIR = REPO_ROOT / "autograder" / "hidden"


class HiddenTestsUnavailable(ImportError):
    """The hidden tests are not here: this is a student edition or an installed package."""


def _importable() -> bool:
    """Already imported, or on ``sys.path`` (the grading sandbox sealed them, or PYTHONPATH)."""
    return PACKAGE in sys.modules or importlib.util.find_spec(PACKAGE) is not None


def available() -> bool:
    """True where the hidden tests can be imported (the full course repository, or grading)."""
    return _importable() or (HIDDEN_DIR / PACKAGE / "__init__.py").is_file()


def _package():
    if not _importable():
        if not available():
            raise HiddenTestsUnavailable(
                "The hidden tests are not part of the student edition: they run when your work is "
                "graded. The visible tests in your notebook check the same ideas on small cases.")
        sys.path.insert(0, str(HIDDEN_DIR))
    return importlib.import_module(PACKAGE)


def load_hidden(lesson: str):
    """The hidden-test module of a lesson, e.g. ``load_hidden("lesson01")``."""
    package = _package()
    return importlib.import_module(f"{package.__name__}.{lesson}")


_ALL: list = []


def all_modules() -> list:
    """Every hidden-test module, imported; empty where the hidden tests are not available.

    The list is kept after the first call: the grading sandbox calls this before it locks the
    course's files, and the tamper guard calls it again later without listing the folder."""
    if not _ALL and available():
        package = _package()
        _ALL.extend(importlib.import_module(f"{package.__name__}.{info.name}")
                    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name))
    return list(_ALL)


def seal() -> None:
    """Load every hidden module, then stop Python from touching their folder again: take it off
    ``sys.path`` (imports would list it) and give ``linecache`` empty entries for their files
    (tracebacks, and ``torch.manual_seed``'s stack capture, would read them). The grading
    sandbox calls this before its audit hook forbids reading ``autograder/``; it also means no
    traceback shows a hidden test's source."""
    import linecache
    import os

    modules = all_modules()
    folder = str(HIDDEN_DIR)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != folder]
    sys.path_importer_cache.pop(folder, None)
    package = sys.modules.get(PACKAGE)
    for module in ([package] if package else []) + modules:
        filename = getattr(module, "__file__", None)
        if filename and os.path.isfile(filename):
            stat = os.stat(filename)
            linecache.cache[filename] = (stat.st_size, stat.st_mtime, [], filename)
