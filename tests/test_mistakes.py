"""Every catalogued mistake loses points, in its own exercise only."""

import nbformat
import pytest

from seqcourse.grading.mistakes import charge_report, check_mistakes, load_catalogue
from seqcourse.grading.nbg import assignments
from seqcourse.paths import lesson_notebook

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
