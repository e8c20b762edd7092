"""Release by schedule: a lesson whose given code shows an earlier lesson's answers reaches a class
only once that lesson's deadline has passed.

Lesson 02's given cells show lesson 01's ``rnn_cell`` and ``rnn_forward`` (each given definition is
copied from its source solution cell, see :mod:`seqcourse_grader.reuse`), so a class that gets
lesson 02 while lesson 01 is still open gets lesson 01's answers. The class's deadlines live in
``autograder/schedule.toml``::

    [deadlines]
    "01-rnn-cell" = 2027-02-01T23:59:00Z

``course student-edition OUT --lessons 01 02`` (or ``--through 02``) and ``nbgrader
release_assignment 02-bptt`` (through :class:`ReleaseOnSchedule`, set in
``autograder/nbgrader_config.py``) refuse a lesson that shows the answers of a lesson whose
deadline is later or not set, unless told otherwise (``--reveal-early``, or
``SEQCOURSE_REVEAL_EARLY=1`` for nbgrader). A self-learner's edition (``--all``) holds every lesson.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import tomllib

from seqcourse.paths import REPO_ROOT

SCHEDULE = REPO_ROOT / "autograder" / "schedule.toml"
REVEAL_EARLY = "SEQCOURSE_REVEAL_EARLY"


def deadlines(path: Path | None = None) -> dict[str, datetime.datetime]:
    """Lesson id -> its deadline (timezone-aware; a date alone is the end of that day, UTC)."""
    path = Path(path or SCHEDULE)
    if not path.is_file():
        return {}
    table = tomllib.loads(path.read_text(encoding="utf-8")).get("deadlines", {})
    out = {}
    for lesson, when in table.items():
        if isinstance(when, datetime.datetime):
            out[lesson] = when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)
        elif isinstance(when, datetime.date):
            out[lesson] = datetime.datetime.combine(when, datetime.time(23, 59, 59), datetime.timezone.utc)
        else:
            raise ValueError(f"{path}: the deadline of {lesson} must be a TOML date or date-time, not {when!r}")
    return out


def reveals(solutions: Path | None = None) -> dict[str, dict[str, list[str]]]:
    """Lesson -> {earlier lesson whose answers its given code shows: the names shown}."""
    from seqcourse_grader.reuse import sync_given

    out: dict[str, dict[str, list[str]]] = {}
    for r in sync_given(solutions)[0]:
        source = r.source.partition("/")[0]
        out.setdefault(r.lesson, {}).setdefault(source, []).extend(r.names)
    return out


def held_back(lessons: list[str], now: datetime.datetime | None = None, schedule: Path | None = None,
              solutions: Path | None = None) -> list[str]:
    """Why each of ``lessons`` may not be released now: one line per lesson it reveals too early."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    due, shown, lines = deadlines(schedule), reveals(solutions), []
    for lesson in lessons:
        for source, names in sorted(shown.get(lesson, {}).items()):
            deadline = due.get(source)
            if deadline is None or deadline > now:
                when = f"is {deadline:%Y-%m-%d %H:%M %Z}" if deadline else "is not set in autograder/schedule.toml"
                lines.append(f"{lesson}'s given code shows the answers of {source} ({', '.join(sorted(set(names)))}), "
                             f"whose deadline {when}: release {lesson} after it")
    return lines


def resolve(given: list[str], known: list[str]) -> list[str]:
    """Lesson ids from what an instructor typed: full ids or their numbers ("02")."""
    out = []
    for g in given:
        match = [k for k in known if k == g or k.split("-", 1)[0] == g.zfill(2)]
        if len(match) != 1:
            raise ValueError(f"no lesson {g!r}; the lessons: {', '.join(known)}")
        out.append(match[0])
    return sorted(set(out), key=known.index)


def _release_assignment_base():
    from nbgrader.exchange.default.release_assignment import ExchangeReleaseAssignment

    return ExchangeReleaseAssignment


class ReleaseOnSchedule(_release_assignment_base()):
    """``nbgrader release_assignment`` that refuses a lesson released before its sources' deadlines."""

    def init_src(self):
        why = [] if os.environ.get(REVEAL_EARLY) else held_back([self.coursedir.assignment_id])
        if why:
            self.fail("; ".join(why) + f". To release it anyway, set {REVEAL_EARLY}=1.")
        super().init_src()
