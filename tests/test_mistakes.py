"""Every catalogued mistake loses points, in its own exercise only."""

import re

import nbformat
import pytest

from seqcourse.hidden_tests import load_hidden
from seqcourse.paths import lesson_notebook
from seqcourse_grader.catalogue import CLASSES, load_catalogue
from seqcourse_grader.mistakes import charge_report, check_mistakes
from seqcourse_grader.nbg import assignments

pytestmark = pytest.mark.pipeline
LESSONS = assignments()


def _solution_cells(aid):
    nb = nbformat.read(lesson_notebook(aid), as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")]


@pytest.mark.parametrize("aid", LESSONS)
def test_catalogue_has_three_mistakes_per_exercise(aid):
    catalogue = load_catalogue(aid)
    for cell in _solution_cells(aid):
        n = sum(m.cell == cell for m in catalogue)
        assert n >= 3, f"{aid}: exercise {cell} has {n} catalogued mistakes, needs at least 3"
    assert all(m.why and m.source.strip() for m in catalogue)


@pytest.mark.parametrize("aid", LESSONS)
def test_every_mistake_loses_points_in_its_own_exercise_only(aid):
    report = charge_report(check_mistakes(aid))
    print(f"{aid}: {report['mistakes']} mistakes, visible tests alone catch {report['visible_rate']:.0%}")
    for line in report["broken_later"]:
        print("  later cell:", line)
    assert not report["missed"], "mistakes that lose no points: " + "; ".join(report["missed"])
    assert not report["cascades"], "mistakes that cost points in another exercise: " + "; ".join(report["cascades"])


@pytest.mark.parametrize("aid", LESSONS)
def test_catalogue_covers_every_class_of_mistake(aid):
    """Mistakes nobody listed fall in classes (dtype, kinds of input, edge sizes, numerical
    extremes, side effects): every lesson's catalogue holds each class, every mistake names its own."""
    catalogue = load_catalogue(aid)
    unclassed = [f"{m.cell}/{m.name}" for m in catalogue if m.kind not in CLASSES]
    assert not unclassed, f"{aid}: mistakes without a class (kind=...): {unclassed}"
    missing = sorted(set(CLASSES) - {m.kind for m in catalogue})
    assert not missing, f"{aid}: no catalogued mistake of class {missing}"


COVERAGE_HEADER = "| exercise | dtype | input | edge | extreme | side-effect |"


@pytest.mark.parametrize("aid", LESSONS)
def test_hidden_tests_say_how_they_cover_each_class(aid):
    """Each hidden module's docstring has a table, exercise x class, naming the test that covers it
    (a function of the module) or why the class does not apply ("n/a: why")."""
    module = load_hidden("lesson" + aid[:2])
    doc = module.__doc__ or ""
    assert COVERAGE_HEADER in doc, f"{aid}: the hidden module's docstring has no table headed {COVERAGE_HEADER}"
    rows = {}
    for line in doc[doc.index(COVERAGE_HEADER):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == set(_solution_cells(aid)), f"{aid}: table rows {sorted(rows)} vs exercises {_solution_cells(aid)}"
    for exercise, entries in rows.items():
        assert len(entries) == 5, f"{aid}/{exercise}: {len(entries)} entries, expected 5"
        for kind, entry in zip(["dtype", "input", "edge", "extreme", "side-effect"], entries, strict=True):
            named = re.findall(r"\btest_\w+", entry)
            assert entry.startswith("n/a: ") and len(entry) > 10 or named, \
                f"{aid}/{exercise}/{kind}: '{entry}' names no test and gives no reason"
            for name in named:
                assert callable(getattr(module, name, None)), f"{aid}/{exercise}/{kind}: no hidden test {name}"
