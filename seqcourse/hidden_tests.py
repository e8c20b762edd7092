"""The hidden tests' handle in a notebook: ``hidden``.

A graded cell of the instructor's edition holds two hidden blocks; nbgrader strips both from what a
student gets. The first starts the cell and isolates its exercise, the last runs the hidden tests::

    from seqcourse.hidden_tests import hidden; hidden.start("01-rnn-cell", "test_rnn_cell", globals())
    ...  the visible tests ...
    hidden.test_rnn_cell(rnn_cell)          # or hidden.done() in a cell without hidden tests

The hidden tests hold the reference answers, so they are not in this package or in the student
edition. Where they run:

- **in the grading sandbox** (``course autograde``, ``course selfgrade``): every call goes through
  one audit event (``sys.audit``, PEP 578) to the sandbox's vault, which lives only inside the
  sandbox's audit hook: no module, global or object the learner's code can reach holds the hidden
  tests or the reference answers. The vault checks that each call comes from the graded cell it
  belongs to, in the release's order, and witnesses each cell that runs to its end;
- **in the full course without a sandbox** (nbval on ``solutions/``, the mistakes runner, a
  notebook opened in the repository): from ``autograder/hidden/``, in this process;
- **nowhere else**: a clear error, since hidden tests run only when work is graded.
"""

from __future__ import annotations

import importlib
import sys

from seqcourse.paths import REPO_ROOT

PACKAGE = "seqcourse_hidden"
HIDDEN_DIR = REPO_ROOT / "autograder" / "hidden"
EVENT = "seqcourse.grader"   # the audit event the sandbox's vault answers
_audit = sys.audit            # kept: a learner who replaces sys.audit cannot reroute the calls


class HiddenTestsUnavailable(ImportError):
    """The hidden tests are not here: this is a student edition or an installed package."""


def available() -> bool:
    """True where the hidden tests can be imported (the full course repository)."""
    return (HIDDEN_DIR / PACKAGE / "__init__.py").is_file()


def _package():
    if PACKAGE not in sys.modules:
        if not available():
            raise HiddenTestsUnavailable(
                "The hidden tests are not part of the student edition: they run when your work is "
                "graded. The visible tests in your notebook check the same ideas on small cases.")
        if str(HIDDEN_DIR) not in sys.path:
            sys.path.insert(0, str(HIDDEN_DIR))
    return importlib.import_module(PACKAGE)


def load_hidden(lesson: str):
    """The hidden-test module of a lesson (``"lesson01"``), for the instructor's own tools; graded
    cells use ``hidden`` instead."""
    return importlib.import_module(f"{_package().__name__}.{lesson}")


def ask(op: str, *args):
    """One request to the grader: the sandbox's vault where there is one, else the hidden tests
    of this repository, in this process."""
    box: list = []
    _audit(EVENT, op, args, box)
    if box:
        return box[0]
    return _package().direct_vault().handle(op, args, sys._getframe(0))


class _Hidden:
    """``hidden`` in a graded cell: ``start`` isolates the cell's exercise, ``done`` closes a cell
    without hidden tests, and any other name runs that hidden test (``hidden.test_rnn_cell(f)``)."""

    def start(self, assignment: str, grade_id: str, namespace: dict) -> None:
        ask("start", assignment, grade_id, namespace)

    def done(self) -> None:
        ask("done")

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def run_hidden_test(*args, **kwargs):
            return ask("call", name, args, kwargs)

        run_hidden_test.__name__ = name
        return run_hidden_test

    def __repr__(self) -> str:
        return "<the hidden tests: they run when your work is graded>"


hidden = _Hidden()
