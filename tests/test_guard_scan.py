"""The tamper guard and the static scan, in this process."""

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from seqcourse import checks, guard
from seqcourse_grader.scan import scan_notebook, scan_source

guard.capture()


@pytest.fixture
def restore():
    saved = {}

    def patch(owner, name, value):
        saved[(owner, name)] = guard._get(owner, name)
        setattr(owner, name, value)

    yield patch
    for (owner, name), value in saved.items():
        if isinstance(owner, type) and name not in owner.__dict__:
            delattr(owner, name)  # it was inherited: removing ours restores it
        else:
            setattr(owner, name, value)
    assert guard.replaced() == []


@pytest.mark.parametrize("owner,name", [
    (torch, "allclose"), (torch.testing, "assert_close"), (torch.Tensor, "__sub__"),
    (torch.Tensor, "abs"), (checks, "check_close"), (torch, "manual_seed"),
])
def test_replacing_a_watched_function_is_detected(restore, owner, name):
    restore(owner, name, lambda *a, **k: True)
    with pytest.raises(guard.TamperError, match=name):
        guard.verify()
    with pytest.raises(guard.TamperError):
        checks.check_shape(torch.ones(2), (2,))


def test_hidden_test_functions_are_watched():
    """The vault, not the student's guard, watches the hidden tests: a test replaced through a
    function's globals is refused at the next request."""
    from seqcourse_grader.vault import GradingRefused, Vault

    vault = Vault()
    lesson = vault.load("01-rnn-cell")
    original = lesson.module.test_rnn_cell
    lesson.module.test_rnn_cell = lambda f: None
    try:
        with pytest.raises(GradingRefused, match="lesson01.test_rnn_cell"):
            vault._check_intact(lesson)
    finally:
        lesson.module.test_rnn_cell = original
    vault._check_intact(lesson)


def test_checks_survive_a_replaced_verify(restore):
    restore(guard, "verify", lambda: None)
    # checks kept their own reference to the real verify, which now reports the replacement
    with pytest.raises(guard.TamperError, match="guard.verify"):
        checks.check_close(torch.ones(2), torch.ones(2))


def test_check_close_messages():
    a = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    checks.check_close(a, a.clone())
    with pytest.raises(checks.CheckError, match="shape"):
        checks.check_close(a.T, a)
    with pytest.raises(checks.CheckError, match="tanh"):
        checks.check_close(a, torch.tanh(a))
    with pytest.raises(checks.CheckError, match="2 times"):
        checks.check_close(2 * a, a)
    with pytest.raises(checks.CheckError, match=r"first at index \(1, 2\)"):
        b = a.clone()
        b[1, 2] += 1
        checks.check_close(b, a)
    with pytest.raises(checks.CheckError, match="NaN"):
        checks.check_close(a.log(), a)
    with pytest.raises(checks.CheckError, match="torch.Tensor"):
        checks.check_close([1.0], torch.ones(1))
    with pytest.raises(checks.CheckError, match="before updating"):
        x = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
        checks.check_close(torch.cat([torch.zeros(2, 1, 3), x[:, :-1]], 1), x)


def test_check_shape_and_true():
    checks.check_shape(torch.zeros(2, 3), (2, None))
    with pytest.raises(checks.CheckError, match="another order"):
        checks.check_shape(torch.zeros(3, 2), (2, 3))
    checks.check_true(torch.tensor(True), "fine")
    with pytest.raises(checks.CheckError, match="nope"):
        checks.check_true(False, "nope", hint="look here")


@pytest.mark.parametrize("src", [
    "import torch\ntorch.allclose = lambda *a, **k: True",
    "setattr(torch, 'equal', lambda *a: True)",
    "import seqcourse.checks as c\nc.check_close = print",
    "torch.Tensor.__eq__ = lambda a, b: True",
    "__builtins__['abs'] = lambda x: 0",
    "import builtins\nbuiltins.all = lambda x: True",
    "from seqcourse import guard",
    "import sys\nsys.modules['torch'].allclose = None",
    "np.testing.assert_allclose = lambda *a, **k: None",
    "hidden.test_rnn_cell = lambda f: None",
    "get_ipython().events.callbacks['post_run_cell'].clear()",
    "ip = __import__('IPython').get_ipython()\nip.events.unregister('post_run_cell', f)",
    "hidden.EXERCISES.isolate = lambda *a: None",
    "import seqcourse_hidden",
    "a, torch.equal = 1, None",
    "torch.nn.functional.__dict__['relu'] = None",
])
def test_scan_flags_tampering(src):
    assert scan_source(src, modules={"hidden"}), src


@pytest.mark.parametrize("src", [
    "def rnn_cell(x, s, W, U, b):\n    return torch.tanh(x @ W + s @ U + b)",
    "class M(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.rnn = nn.RNN(2, 3)",
    "%timeit x = 1\nmodel.out = nn.Linear(2, 3)",
    "marks[rows, torch.randint(0, 5, (3,))] = 1\nx, y[torch.arange(2)] = 1, 2",
])
def test_scan_passes_honest_code(src):
    assert scan_source(src) == []


def test_scan_notebook_reads_only_student_cells():
    nb = new_notebook(cells=[
        new_code_cell("import torch"),
        new_code_cell("torch.allclose = None", metadata={"nbgrader": {"grade": True, "locked": True}}),
        new_code_cell("torch.equal = None", metadata={"nbgrader": {"solution": True, "grade_id": "ex"}}),
        new_code_cell("torch.isclose = None"),  # a cell the student added
    ])
    found = scan_notebook(nbformat.from_dict(nb))
    assert [f.cell for f in found] == ["ex", "cell 3"]


def test_scan_flags_rebinding_setup_names():
    setup = new_code_cell("from seqcourse.checks import check_close\nbudget = object()\n"
                          "def helper(n):\n    values = n\n    return values",
                          metadata={"nbgrader": {"locked": True, "grade_id": "setup"}})
    honest = new_code_cell("def rnn_cell(x, W):\n    budget = 3\n    return x @ W",
                           metadata={"nbgrader": {"solution": True, "grade_id": "ex"}})
    sneaky = new_code_cell("check_close = lambda *a, **k: None\nclass budget: min_test_accuracy = 0\n"
                           "values = [1]  # a local name of the setup cell's function: fine")
    found = scan_notebook(nbformat.from_dict(new_notebook(cells=[setup, honest, sneaky])))
    assert [f.what for f in found] == ["rebinds check_close, which the locked setup cell defines",
                                       "redefines budget, which the locked setup cell defines"]


def test_a_patch_made_before_the_snapshot_is_still_caught(restore):
    """A student may move a cell above the setup cell; its replacement is then in the snapshot."""
    fake = eval("lambda *a, **k: True", {"__name__": "__main__"})  # as if defined in a notebook cell
    restore(torch, "isclose", fake)
    saved = dict(guard._SNAPSHOT)
    guard._SNAPSHOT[("torch", "isclose")] = fake  # as if captured after the patch
    try:
        with pytest.raises(guard.TamperError, match="torch.isclose"):
            guard.verify()
    finally:
        guard._SNAPSHOT.clear()
        guard._SNAPSHOT.update(saved)


def test_a_differential_test_guards_its_unguarded_checks(restore):
    """The differential hidden tests compare with the checks' unguarded core and run the guard
    once before and once after their inputs: an answer that replaces a function the checks rely
    on while it is called still fails, with the replacement named."""
    from hypothesis import strategies as st

    from seqcourse_grader.vault import Vault

    Vault().load("01-rnn-cell")          # puts the hidden-test package on the path
    from seqcourse_hidden._differential import Case, differential

    cases = st.builds(lambda n: Case((torch.ones(n, dtype=torch.float64),), label=f"n = {n}"),
                      st.integers(1, 3))
    differential(torch.tanh, torch.tanh, cases, "tanh", examples=5)          # an honest answer passes

    def tampering(x):
        if guard._get(torch, "allclose") is guard._SNAPSHOT[("torch", "allclose")]:   # once
            restore(torch, "allclose", lambda *a, **k: True)
        return torch.tanh(x)

    with pytest.raises(guard.TamperError, match="torch.allclose"):
        differential(tampering, torch.tanh, cases, "tanh", examples=5)
