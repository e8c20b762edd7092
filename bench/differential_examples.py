"""How many generated inputs each exercise's differential test needs to catch its catalogued mistakes.

    python bench/differential_examples.py [--lessons 01 02] [--most 200]   # writes bench/results/differential_examples.md

For every lesson whose hidden tests define ``EXAMPLES`` (inputs per answer name) and
``test_differential`` (see ``autograder/hidden/seqcourse_hidden/_differential.py``), this runs the
solution notebook's cells up to each exercise, then, for each catalogued mistake of that exercise,
the differential tests of its names alone (no hand-written test) with up to ``--most`` inputs, and
records at which input one first fails. An exercise needs at least the largest of those numbers; ``EXAMPLES`` is set above it, and
the table says by how much. A mistake the differential test never catches is caught by a
hand-written test (``course mistakes`` checks that every mistake is caught by some test).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("SEQCOURSE_PROFILE", "ci")
os.environ.setdefault("MPLBACKEND", "Agg")

import nbformat  # noqa: E402

from seqcourse import cells  # noqa: E402
from seqcourse.hidden_tests import load_hidden  # noqa: E402
from seqcourse.paths import lesson_notebook  # noqa: E402
from seqcourse_grader.catalogue import load_catalogue  # noqa: E402
from seqcourse_grader.nbg import assignments  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "differential_examples.md"


class Counted:
    """The learner's function, counting the inputs it was called on (one call per input)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def namespace_before(nb, answer_id: str) -> dict:
    """The notebook's namespace just before ``answer_id``'s cell: every earlier code cell run, graded
    cells and their hidden blocks left out."""
    ns: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cells.grade_id(cell) == answer_id:
            break
        if cells.is_test(cell):
            continue
        exec(compile(cell.source, f"<cell {cells.grade_id(cell) or '?'}>", "exec"), ns)   # noqa: S102
    return ns


def first_failure(module, name: str, learner, most: int, references: dict) -> tuple[int | None, str]:
    """The number of inputs the differential test of ``name`` tried when it first failed (None:
    never). ``references``: the solution's definitions, as the vault gives them in a graded cell."""
    counted = Counted(learner)
    saved = module.EXAMPLES[name]
    module.EXAMPLES[name] = most
    module.EXERCISES.reference = references.__getitem__
    try:
        module.test_differential(name, counted)
    except AssertionError as exc:
        return counted.calls or None, str(exc).splitlines()[0][:120]
    finally:
        module.EXAMPLES[name] = saved
        del module.EXERCISES.reference
    return None, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="*", help="lesson numbers or ids (default: every lesson with differential tests)")
    parser.add_argument("--most", type=int, default=200, help="inputs tried at most per mistake")
    args = parser.parse_args()
    rows, started = [], time.perf_counter()
    for aid in assignments():
        if args.lessons and not any(aid == x or aid.startswith(x.zfill(2)) for x in args.lessons):
            continue
        module = load_hidden(f"lesson{aid[:2]}")
        if not hasattr(module, "EXAMPLES"):
            continue
        nb = nbformat.read(lesson_notebook(aid), as_version=4)
        exercises = [c for c in nb.cells if c.cell_type == "code" and cells.is_answer(c)]
        for cell in exercises:
            exercise = cells.grade_id(cell)
            names = [n for n in module.EXERCISES.names(exercise) if n in module.EXAMPLES]
            if not names:
                continue
            ns = namespace_before(nb, exercise)
            solved = namespace_after(nb, exercise, ns)
            caught, missed, worst = [], [], 0
            for m in (m for m in load_catalogue(aid) if m.cell == exercise):
                trial = dict(ns)
                exec(compile(m.source, f"<mistake {m.name}>", "exec"), trial)   # noqa: S102
                found = [at for name in names if name in trial
                         for at in [first_failure(module, name, trial[name], args.most, solved)[0]] if at]
                at = min(found) if found else None
                (caught if at else missed).append(f"{m.name} ({at})" if at else m.name)
                worst = max(worst, at or 0)
            t0 = time.perf_counter()
            for name in names:
                at, why = first_failure(module, name, solved[name], module.EXAMPLES[name], solved)
                if at:
                    raise SystemExit(f"{aid} {name}: the solution itself fails its differential test: {why}")
            seconds = time.perf_counter() - t0
            chosen = " + ".join(str(module.EXAMPLES[n]) for n in names)
            rows.append((aid, exercise, worst, chosen, seconds, caught, missed))
            print(f"{aid} {exercise}: needs {worst}, runs {chosen} in {seconds:.2f} s; caught {len(caught)}, "
                  f"only by hand-written tests {len(missed)}", flush=True)
    lines = ["# Generated inputs each differential test needs", "",
             f"Command: `python bench/differential_examples.py --most {args.most}`. Machine: {platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}; {time.perf_counter() - started:.0f} s.", "",
             "| lesson | exercise | needs | runs | seconds (correct answer, all inputs) | mistakes caught (at input) | "
             "caught only by hand-written tests |", "|---|---|---|---|---|---|---|"]
    for aid, exercise, worst, chosen, seconds, caught, missed in rows:
        lines.append(f"| {aid} | `{exercise}` | {worst} | {chosen} | {seconds:.2f} | {', '.join(caught) or '-'} | "
                     f"{', '.join(missed) or '-'} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


def namespace_after(nb, exercise: str, before: dict) -> dict:
    """``before`` with the solution's own answer cell run: the correct answer, for timing."""
    ns = dict(before)
    cell = next(c for c in nb.cells if cells.grade_id(c) == exercise)
    exec(compile(cell.source, f"<answer {exercise}>", "exec"), ns)   # noqa: S102
    return ns


if __name__ == "__main__":
    main()
