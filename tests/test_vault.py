"""The vault's rules in this process (no sandbox): which references a graded cell gets, and gates
that let a reference run only inside the graded cell that installed it."""

from __future__ import annotations

import ast

import pytest

from seqcourse_grader.gates import (
    GateEveryFunction,
    caller_gate,
    compile_gated,
    reference_gate,
    with_gate,
)
from seqcourse_grader.vault import GradingRefused, Lesson, _CellRun


def test_a_graded_cell_gets_only_finished_exercises():
    lesson = Lesson.read("05-seq2seq")
    names = lambda gid: [a.grade_id for a in lesson.done_before(gid)]  # noqa: E731
    # Seq2Seq still has its experiment (test_trained_translator) to run: not before that
    assert names("test_masked_cross_entropy") == ["teacher_forcing"]
    assert "Seq2Seq" not in names("test_greedy_decode")
    assert names("test_beam_search") == ["teacher_forcing", "Seq2Seq", "masked_cross_entropy", "greedy_decode"]
    assert names("test_teacher_forcing") == []                      # never its own, never a later one


SOURCE = '''
class Model:
    def forward(self, x):
        scale = lambda v: v * 2
        return scale(x)

def make():
    def inner():
        return 7
    return inner
'''


def _gated(run):
    breaches = []

    def breach(kind, detail):
        breaches.append(detail)
        raise GradingRefused(detail)

    code = compile_gated(GateEveryFunction().visit(ast.parse(SOURCE)), "<reference answer: test/Model>")
    scope = {}
    exec(with_gate(code, reference_gate(run, "test/Model", breach)), scope)  # noqa: S102
    return scope, breaches


def test_a_reference_runs_in_its_cell_and_nowhere_else():
    namespace = {"__name__": "__main__"}
    run = _CellRun("<ipython-input-1-test>", None, "test_x", namespace, {})
    scope, breaches = _gated(run)
    namespace.update(scope)
    # inside the cell (a module-level frame of the cell's code, in its namespace): it runs
    cell = compile("kept = make()\nresult = (Model().forward(3), kept())", "<ipython-input-1-test>", "exec")
    exec(cell, namespace)  # noqa: S102
    assert namespace["result"] == (6, 7) and breaches == []
    run.restored = True                          # the cell has ended: a method, a nested function
    for later in (lambda: scope["Model"]().forward(1), namespace["kept"], scope["make"]):   # kept past it
        with pytest.raises(GradingRefused, match="outside the graded cell"):
            later()
    # another cell (another file name) is not the installing one, even while the run is current
    run.restored = False
    with pytest.raises(GradingRefused):
        exec(compile("Model().forward(1)", "<ipython-input-2-other>", "exec"), namespace)  # noqa: S102
    assert len(breaches) == 4


def test_a_hidden_function_refuses_notebook_callers():
    calls = []

    def breach(kind, detail):
        raise GradingRefused(detail)

    tree = ast.parse("def helper():\n    return 42\n")
    from seqcourse_grader.gates import GateTopFunctions

    code = compile_gated(GateTopFunctions().visit(tree), "/grader/hidden.py")
    scope = {}
    exec(with_gate(code, caller_gate(frozenset({"/grader/hidden.py", __file__}), breach, "helper")), scope)  # noqa: S102
    calls.append(scope["helper"]())                             # from grader code (this file): fine
    with pytest.raises(GradingRefused, match="notebook code called"):
        exec(compile("helper()", "<ipython-input-3-x>", "exec"), scope)  # noqa: S102
    assert calls == [42]


@pytest.mark.parametrize("assignment", ["02-bptt", "04-deep-rnn", "06-attention", "07-modern-rnn"])
def test_given_definitions_are_functions_and_classes_only(assignment, capsys):
    """A given cell may be the setup cell too: defining the references over it must not rerun its
    calls (get_profile prints; seed_everything would reset torch's random state mid-notebook)."""
    import torch

    lesson = Lesson.read(assignment)
    assert lesson.given, f"{assignment} has no given definitions"
    state = torch.get_rng_state()
    scope = {"__name__": "given", "torch": torch, "nn": torch.nn, "F": torch.nn.functional}   # the setup's imports
    for code in dict.fromkeys(lesson.given.values()):
        exec(with_gate(code, lambda: None), scope)  # noqa: S102
    assert torch.equal(torch.get_rng_state(), state), "defining the given code drew random numbers"
    assert capsys.readouterr().out == ""
    assert all(callable(scope[name]) for name in lesson.given)
