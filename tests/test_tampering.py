"""Tampering earns nothing: patched comparisons, patched library checks, rebound helpers.

Each case is a real nbgrader autograde of lesson 01 in a scratch course. The runtime guard fails
every test cell, and the static scan marks module patches "needs review".
"""

import pytest

from seqcourse.grading.mistakes import load_catalogue, notebook_with
from seqcourse.grading.nbg import ScratchCourse

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def course():
    with ScratchCourse(["01-rnn-cell"]) as c:
        yield c


def _first_mistakes(aid):
    chosen = {}
    for m in load_catalogue(aid):
        chosen.setdefault(m.cell, m.source)
    return chosen


TAMPERING = {
    "patch-torch-allclose": "import torch\ntorch.allclose = lambda *a, **k: True",
    "patch-library-checks": ("import seqcourse.checks\n"
                             "seqcourse.checks.check_close = lambda *a, **k: None\n"
                             "seqcourse.checks.check_true = lambda *a, **k: None\n"
                             "seqcourse.checks.check_shape = lambda *a, **k: None"),
    "patch-tensor-comparison": ("import torch\ntorch.Tensor.__le__ = lambda a, b: torch.ones_like(a, dtype=torch.bool)\n"
                                "torch.Tensor.all = lambda self, *a, **k: torch.tensor(True)"),
}


@pytest.mark.parametrize("attack", sorted(TAMPERING))
def test_tampering_with_wrong_answers_earns_nothing(course, attack):
    nb = notebook_with("01-rnn-cell", _first_mistakes("01-rnn-cell"), prepend=TAMPERING[attack])
    report = course.autograde("01-rnn-cell", nb, attack)
    assert report.score == 0, report.summary()
    assert report.status == "needs review", report.summary()


def test_rebinding_test_helpers_in_the_notebook_earns_nothing(course):
    """Visible tests call names from the notebook; hidden tests import their own and still fail."""
    nb = notebook_with("01-rnn-cell", _first_mistakes("01-rnn-cell"),
                       prepend="check_close = check_true = check_shape = check_type = lambda *a, **k: None")
    report = course.autograde("01-rnn-cell", nb, "rebind")
    assert report.score == 0, report.summary()
    assert report.status == "needs review", report.summary()


def test_replacing_hidden_tests_is_flagged_for_review(course):
    """The strongest attack inside one kernel: no-op hidden tests and no-op visible helpers.

    Every name a test cell looks up can be rebound by code in the same kernel, so the runtime
    guard cannot stop this one; the static scan must flag it, and the grader must review it.
    """
    attack = ("from seqcourse.grading.hidden_tests import load_hidden; h = load_hidden('lesson01')\n"
              "for n in dir(h):\n"
              "    if n.startswith('test_'):\n"
              "        setattr(h, n, lambda *a, **k: None)\n"
              "check_close = check_true = check_shape = check_type = lambda *a, **k: None")
    nb = notebook_with("01-rnn-cell", _first_mistakes("01-rnn-cell"), prepend=attack)
    report = course.autograde("01-rnn-cell", nb, "hidden-replaced")
    assert report.status == "needs review", report.summary()
    assert any("setattr" in f for f in report.findings)


def test_tampering_with_right_answers_earns_nothing(course):
    nb = notebook_with("01-rnn-cell", {}, prepend=TAMPERING["patch-torch-allclose"])
    report = course.autograde("01-rnn-cell", nb, "tamper-right")
    assert report.score == 0, report.summary()
    assert "replaced" in report.cells[0].message


def test_patch_placed_before_the_setup_cell_earns_nothing(course):
    """Locked cells cannot be edited but can be moved: code above the setup cell runs first."""
    from nbformat.v4 import new_code_cell

    nb = notebook_with("01-rnn-cell", _first_mistakes("01-rnn-cell"))
    nb.cells.insert(0, new_code_cell(TAMPERING["patch-torch-allclose"]))
    report = course.autograde("01-rnn-cell", nb, "before-setup")
    assert report.score == 0, report.summary()
    assert report.status == "needs review", report.summary()
