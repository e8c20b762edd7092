"""Every catalogued mistake must lose points: the hidden tests' mutation score is 100%."""

import nbformat
import pytest

from seqcourse.grading.mistakes import check_mistakes, load_catalogue
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
def test_every_mistake_loses_points(aid):
    results = check_mistakes(aid)
    missed = [f"{r.mistake.cell}/{r.mistake.name} ({r.mistake.why})" for r in results if not r.caught]
    score = (len(results) - len(missed)) / len(results)
    print(f"{aid}: mutation score {score:.0%} over {len(results)} mistakes")
    assert not missed, "mistakes that lose no points: " + "; ".join(missed)
