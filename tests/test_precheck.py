"""Reading a submission before it runs: every locked cell a student deleted goes back where the
release has it, for every lesson; a notebook saved in format 3 is converted; nbgrader's markers in
a student's own text are noted, not processed. (Grading such notebooks end to end, through
nbgrader, is in tests/test_class_grading.py for lesson 01.)"""

import nbformat
import pytest

from seqcourse import cells
from seqcourse.paths import lesson_notebook
from seqcourse_grader.catalogue import student_submission
from seqcourse_grader.nbg import assignments
from seqcourse_grader.precheck import precheck, restore_locked_cells


def _release(aid):
    return nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)


@pytest.mark.parametrize("aid", assignments())
def test_every_deleted_locked_cell_goes_back_where_the_release_has_it(aid):
    release, full = _release(aid), student_submission(aid)
    gutted = student_submission(aid)
    gutted.cells = [c for c in gutted.cells if not cells.is_locked(c)]
    restored = restore_locked_cells(gutted, release)
    assert restored and all(cells.is_locked(cells.by_grade_id(release)[g]) for g in restored)
    assert [cells.grade_id(c) for c in gutted.cells] == [cells.grade_id(c) for c in full.cells]
    assert [c.source for c in gutted.cells] == [c.source for c in full.cells]


def test_a_restored_test_goes_after_the_students_own_cells_that_follow_its_answer():
    aid = "01-rnn-cell"
    release, nb = _release(aid), student_submission(aid)
    at = cells.position(nb, "rnn_cell")
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("def helper():\n    return 1"))   # the student's own
    nb.cells = [c for c in nb.cells if cells.grade_id(c) != "test_rnn_cell"]
    assert restore_locked_cells(nb, release) == ["test_rnn_cell"]
    order = [cells.grade_id(c) or c.source[:10] for c in nb.cells]
    assert order[at:at + 3] == ["rnn_cell", "def helper", "test_rnn_cell"], order


def test_format_3_is_converted_and_markers_in_own_text_are_noted():
    aid = "01-rnn-cell"
    release = _release(aid)
    v3 = nbformat.writes(nbformat.convert(student_submission(aid), 3), version=3).encode()
    checked = precheck(v3, release, max_mb=50)
    assert checked.nb is not None and checked.changed and not checked.reasons
    assert any("format 3" in n for n in checked.notes)
    marked = student_submission(aid, prepend="# ### BEGIN HIDDEN TESTS (my note)")
    checked = precheck(nbformat.writes(marked).encode(), release, max_mb=50)
    assert any("BEGIN HIDDEN TESTS" in n and "kept as text" in n for n in checked.notes), checked.notes
    assert precheck(b"\xff\xfe", release, max_mb=50).reasons == ["the notebook file is not UTF-8 text"]
