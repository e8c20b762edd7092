"""One exercise per graded cell: the other exercises' answers are the references there.

A graded cell of exercise k starts with a hidden block that calls ``hidden.isolate("k", globals())``.
From then until the cell ends, every name that another exercise's answer defines (``attend``,
``Seq2Seq``, ...) is the reference answer, so the cell's visible checks and its hidden tests judge
exercise k alone: a softmax over the wrong axis in ``attend`` costs points in ``attend``'s tests
and nowhere else. After the cell, IPython's ``post_run_cell`` event puts the learner's own names
back, whether the cell passed or failed, so the rest of the notebook runs the learner's code.

The references are the solution cells of ``solutions/`` (markers removed), read once when this
module is imported: each answer is written once, in its notebook, and the grader uses that text.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Callable
from contextlib import contextmanager

from seqcourse import cells
from seqcourse.paths import lesson_notebook

_MISSING = object()
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
                ast.Assign, ast.AnnAssign)
# Module names a notebook's setup cell imports; a learner who rebinds one in their namespace
# must not change what the references compute.
_MODULES = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "math": "math"}


def _answer(source: str) -> str:
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _definitions(source: str, label: str):
    """The cell's top-level definitions only (no prints or demos), compiled, and the names they bind."""
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if isinstance(node, _DEFINITIONS)]
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return compile(tree, f"<reference answer: {label}>", "exec"), names


class Exercises:
    """The exercises of one lesson, in notebook order, with their reference answers."""

    def __init__(self, assignment: str):
        self.assignment = assignment
        # Plain JSON, not nbformat: its schema validator takes seconds to import, in every graded kernel.
        nb = json.loads(lesson_notebook(assignment).read_text(encoding="utf-8"))
        self._cells = []   # (grade id, code, names)
        self._saved: dict[int, dict] = {}   # id(namespace) -> the learner's names while isolated
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and cells.is_answer(cell):
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                code, names = _definitions(_answer(source), cells.grade_id(cell))
                self._cells.append((cells.grade_id(cell), code, names))

    @property
    def ids(self) -> list[str]:
        return [gid for gid, _, _ in self._cells]

    def names(self, exercise: str) -> list[str]:
        self._known(exercise)
        return next(names for gid, _, names in self._cells if gid == exercise)

    def _known(self, exercise: str) -> None:
        if exercise not in self.ids:
            raise KeyError(f"{self.assignment} has no exercise {exercise!r}; its exercises: {self.ids}")

    def references(self, namespace: dict, but: str | None = None) -> dict:
        """Every exercise's answer except ``but``'s, defined over a copy of ``namespace`` (which
        holds the setup and given cells), so a reference that calls another calls its reference."""
        scope = dict(namespace)
        scope.update({name: sys.modules[module] for name, module in _MODULES.items() if module in sys.modules})
        for gid, code, _ in self._cells:
            if gid != but:
                exec(code, scope)   # noqa: S102 -- the course's own solution text
        return {name: scope[name] for gid, _, names in self._cells if gid != but for name in names}

    @contextmanager
    def only(self, exercise: str, namespace: dict):
        """Within the block, every other exercise's names in ``namespace`` are the references."""
        restore = self._swap(exercise, namespace)
        try:
            yield
        finally:
            restore()

    def isolate(self, exercise: str, namespace: dict) -> None:
        """``only`` for a notebook cell: the learner's names come back when the cell ends."""
        restore = self._swap(exercise, namespace)
        shell = _ipython()
        if shell is None:
            raise RuntimeError("isolate() needs IPython, which restores the names after the cell; "
                               "use `with exercises.only(...)` elsewhere")

        def after_cell(*_):
            shell.events.unregister("post_run_cell", after_cell)
            restore()

        shell.events.register("post_run_cell", after_cell)

    def learners(self, namespace: dict, exercise: str) -> dict:
        """The learner's own definitions of ``exercise``'s names, also while references stand in
        for them; a name the learner never defined is left out."""
        saved = self._saved.get(id(namespace), {})
        own = {name: saved.get(name, namespace.get(name, _MISSING)) for name in self.names(exercise)}
        return {name: value for name, value in own.items() if value is not _MISSING}

    def _swap(self, exercise: str, namespace: dict):
        self._known(exercise)
        saved = {}
        for name, value in self.references(namespace, but=exercise).items():
            saved[name] = namespace.get(name, _MISSING)
            namespace[name] = value
        self._saved[id(namespace)] = saved

        def restore():
            self._saved.pop(id(namespace), None)
            for name, value in saved.items():
                if value is _MISSING:
                    namespace.pop(name, None)
                else:
                    namespace[name] = value
        return restore


def _ipython():
    shell_module = sys.modules.get("IPython")
    return shell_module.get_ipython() if shell_module else None


def fails(test: Callable[[], None]) -> str | None:
    """The first line of the error a test raises, or None when it passes."""
    try:
        test()
    except Exception as exc:   # noqa: BLE001 -- any failure of a test counts
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def judge_experiment(shortfall: str | None, exercise: str, own_test: Callable[[], None],
                     dependency_tests: dict[str, Callable[[], None]]) -> None:
    """The verdict of an experiment's graded cell, charged to ``exercise`` alone.

    ``shortfall`` is ``None`` when the learner's own run reached the bar; else it says what fell
    short. A shortfall is charged here unless an exercise the experiment relies on fails its own
    tests (``dependency_tests``, run on the learner's code) while ``exercise`` passes its tests with
    the reference answers (``own_test``): then those exercises already lost the points.
    """
    from seqcourse.checks import CheckError

    if shortfall is None:
        return
    failing = {name: why for name, test in dependency_tests.items() if (why := fails(test))}
    if not failing:
        raise CheckError(shortfall)
    why_own = fails(own_test)
    if why_own:
        raise CheckError(f"{shortfall}\nYour {exercise} also fails its own tests with the reference "
                         f"answers of the other exercises: {why_own}")
    print(f"{shortfall}\nThis is not charged to {exercise}: it passes its tests with the reference "
          f"answers, and the run used your {', '.join(failing)}, which fail their own tests "
          f"({'; '.join(f'{k}: {v}' for k, v in failing.items())}). Those exercises lose the points.")
