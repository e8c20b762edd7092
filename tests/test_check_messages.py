"""What a learner reads when a check fails: a sentence, the likely cause, and a traceback that
ends in their own code (a visible check in JupyterLab) or only the failing call (while grading)."""

import os

import nbformat
import pytest
import torch
from nbclient import NotebookClient

from seqcourse import guard
from seqcourse.checks import CheckError, check_close, check_shape, check_type
from seqcourse.selfcheck import error_text

guard.capture()   # the checks need the tamper guard's snapshot, as after a notebook's setup cell


def _message(check, *args, **kwargs) -> str:
    with pytest.raises(CheckError) as failed:
        check(*args, **kwargs)
    return str(failed.value)


def test_nan_gets_its_own_message_with_likely_causes_and_the_exercise_hint():
    weights = torch.tensor([[float("nan"), 0.5, float("inf")]])
    message = _message(check_close, weights, torch.tensor([[0.5, 0.5, 0.0]]), "the attention weights",
                       hint="mask the scores with -inf before the softmax")
    assert message.startswith("NaN or infinite values in the attention weights: 1 NaN and 1 infinite of 3")
    assert "wrong axis" in message and "overflow" in message and "division by zero" in message
    assert "F.logsigmoid" in message and "clamp" not in message   # log space, never a clamp inside a formula
    assert message.rstrip().endswith("Hint: mask the scores with -inf before the softmax")   # the exercise's own hint


def test_a_scale_factor_is_named_only_when_it_is_a_clean_one():
    expected = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert "1/2 of the expected one: a scale factor" in _message(check_close, expected / 2, expected, "the loss")
    assert "3 times the expected one" in _message(check_close, expected * 3, expected, "the loss")
    assert "scale factor" not in _message(check_close, expected * 0.8334, expected, "the loss")   # a mean of means


@pytest.mark.parametrize("check, args, start", [
    (check_close, (torch.ones(2), torch.zeros(2), "the sum of each step's weights"),
     "Wrong values in the sum of each step's weights: 2 of 2 elements differ from the expected ones."),
    (check_shape, (torch.ones(2, 3), (3, 2), "the weights"), "Wrong shape for the weights: got (2, 3), expected (3, 2)."),
    (check_type, ([1.0], torch.Tensor, "the context"), "Wrong type for the context: expected a Tensor, got list."),
])
def test_every_message_reads_as_a_sentence_whatever_the_name(check, args, start):
    assert _message(check, *args).startswith(start)


def test_swapped_axes_are_named():
    expected = torch.arange(36.0).reshape(3, 3, 4)       # B = T: the shapes cannot tell
    assert "axes 0 and 1 swapped (batch and time" in _message(check_close, expected.transpose(0, 1), expected, "the states")
    square = torch.arange(9.0).reshape(1, 3, 3)
    assert "axes 1 and 2 swapped" in _message(check_close, square.transpose(1, 2), square, "the products")
    matrix = torch.arange(6.0).reshape(2, 3)
    assert "transposed" in _message(check_close, matrix.T.contiguous(), matrix.T.T, "W")   # shapes differ
    assert "transposed" in _message(check_close, torch.arange(4.0).reshape(2, 2).T, torch.arange(4.0).reshape(2, 2), "U")


def _run(cells: list[str], grading: bool):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    env = dict(os.environ, NBGRADER_EXECUTION="autograde") if grading else {
        k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
    NotebookClient(nb, allow_errors=True, kernel_name="python3", timeout=120).execute(env=env)
    return nb.cells


SETUP = "from seqcourse import guard; guard.capture()\nfrom seqcourse.checks import check_close\nimport torch"
LEARNER = "def rnn_cell(x):\n    return x @ torch.ones(5, 5)"
TEST = "x = torch.ones(2, 3)\ncheck_close(x.T, torch.zeros(2, 3), 'the states')\nrnn_cell(x)"
CRASH = "x = torch.ones(2, 3)\nrnn_cell(x)"


@pytest.mark.parametrize("grading", [False, True], ids=["learner", "grading"])
def test_tracebacks_end_in_the_learners_code_and_reports_show_the_failing_call(grading):
    _, _, failed_check, crashed = _run([SETUP, LEARNER, TEST, CRASH], grading)
    error = next(o for o in failed_check.outputs if o.output_type == "error")
    frames = "\n".join(error.traceback)
    assert "checks.py" not in frames and "guard.py" not in frames, frames   # no library frame
    assert error_text(failed_check).splitlines()[0] == "failed at: check_close(x.T, torch.zeros(2, 3), 'the states')"
    lines = error_text(crashed).splitlines()
    assert lines[0] == "failed at: rnn_cell(x)"
    assert lines[1].startswith("in your code: return x @ torch.ones(5, 5)")
    assert lines[-1].startswith("RuntimeError: mat1 and mat2 shapes cannot be multiplied")
    if grading:   # while grading: only those lines, no source of any library or hidden test
        assert error.traceback == error_text(failed_check).splitlines()
