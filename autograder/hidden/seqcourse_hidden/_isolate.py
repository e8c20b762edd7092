"""The hidden tests' side of isolation: what a test asks the vault for, and experiments' verdicts.

Every graded cell starts with ``hidden.start(...)`` (:mod:`seqcourse.hidden_tests`): until the cell
ends, each name that an *earlier, finished* exercise's answer defines is that exercise's reference
answer, gated to the cell (:mod:`seqcourse_grader.vault`), so a mistake costs points only in its
own exercise. The hidden tests ask the vault, never a module of their own, for a reference
(``EXERCISES.reference``) and for the learner's own definitions while references stand in for
them (``EXERCISES.learners``): in the grading sandbox the vault answers only requests that come
from these methods, called by the hidden tests' own code.
"""

from __future__ import annotations

from collections.abc import Callable

from seqcourse.hidden_tests import ask


class Exercises:
    """The exercises of one lesson, as the vault knows them."""

    def __init__(self, assignment: str):
        self.assignment = assignment

    def reference(self, name: str):
        """The reference answer (or this lesson's given definition) ``name``; it runs only during the
        graded cell that runs now."""
        return ask("reference", self.assignment, name)

    def learners(self, namespace: dict, exercise: str) -> dict:
        """The learner's own definitions of ``exercise``'s names, also while references stand in
        for them; a name the learner never defined is left out."""
        return ask("learners", self.assignment, namespace, exercise)

    def names(self, exercise: str) -> list[str]:
        return ask("names", self.assignment, exercise)


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
