"""Tampering earns nothing: patched comparisons, patched library checks, rebound helpers.

Each case is a real autograde of lesson 01 by the course's engine, in a scratch course. The runtime guard fails
every test cell, and the static scan marks module patches "needs review".
"""

import pytest

from seqcourse_grader.catalogue import load_catalogue, notebook_with
from seqcourse_grader.classroom import grade_notebook

pytestmark = pytest.mark.pipeline


AID = "01-rnn-cell"


def grade(nb, student):
    report = grade_notebook(AID, nb, student)
    report.text = report.summary(AID)
    return report


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
def test_tampering_with_wrong_answers_earns_nothing(attack):
    nb = notebook_with("01-rnn-cell", _first_mistakes("01-rnn-cell"), prepend=TAMPERING[attack])
    report = grade(nb, attack)
    assert report.score == 0, report.text
    assert report.status == "needs review", report.text


def test_rebinding_test_helpers_in_the_notebook_earns_nothing():
    """Visible tests call names from the notebook; hidden tests import their own and still fail."""
    nb = notebook_with("01-rnn-cell", _first_mistakes("01-rnn-cell"),
                       prepend="check_close = check_true = check_shape = check_type = lambda *a, **k: None")
    report = grade(nb, "rebind")
    assert report.score == 0, report.text
    assert report.status == "needs review", report.text


def test_replacing_hidden_tests_is_flagged_for_review():
    """The strongest attack inside one kernel: no-op hidden tests and no-op visible helpers.

    Every name a test cell looks up can be rebound by code in the same kernel, so the runtime
    guard cannot stop this one; the static scan must flag it, and the grader must review it.
    """
    attack = ("from seqcourse.hidden_tests import load_hidden; h = load_hidden('lesson01')\n"
              "for n in dir(h):\n"
              "    if n.startswith('test_'):\n"
              "        setattr(h, n, lambda *a, **k: None)\n"
              "check_close = check_true = check_shape = check_type = lambda *a, **k: None")
    nb = notebook_with("01-rnn-cell", _first_mistakes("01-rnn-cell"), prepend=attack)
    report = grade(nb, "hidden-replaced")
    assert report.status == "needs review", report.text
    assert any("setattr" in r for r in report.reasons), report.text


def test_tampering_with_right_answers_earns_nothing():
    nb = notebook_with("01-rnn-cell", {}, prepend=TAMPERING["patch-torch-allclose"])
    report = grade(nb, "tamper-right")
    assert report.score == 0, report.text
    assert "replaced" in report.messages[next(iter(report.scores))], report.text


def test_patch_placed_before_the_setup_cell_earns_nothing():
    """Locked cells cannot be edited but can be moved: code above the setup cell runs first."""
    from nbformat.v4 import new_code_cell

    nb = notebook_with("01-rnn-cell", _first_mistakes("01-rnn-cell"))
    nb.cells.insert(0, new_code_cell(TAMPERING["patch-torch-allclose"]))
    report = grade(nb, "before-setup")
    assert report.score == 0, report.text
    assert report.status == "needs review", report.text
