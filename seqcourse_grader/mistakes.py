"""The check that each catalogued mistake (:mod:`seqcourse_grader.catalogue`) costs points in its
own exercise and nowhere else.

One kernel runs the solution notebook once. At each solution cell it first tries that cell's
mistakes. Each mistake is followed through the *rest of the notebook*: every later cell that reads a
name the mistake changed (directly, through a function or class that reads it, or through
``globals()``) runs, with the later cells that make what those read; later solution cells keep their
reference answers; cells that cannot see the mistake are skipped, and so are graded cells of other
exercises that see it only through definitions (they isolate their exercise, see
``seqcourse_hidden._isolate``), except for the first mistake of each exercise, which checks that. For every failing graded cell the
runner records whether its visible part or only its hidden tests failed; every failing ordinary cell
(a demo, a training run) is recorded too. Then the kernel's globals and random number generators go
back to what they were before the mistake, and the reference run goes on.

Training while following a mistake uses ``budget.shrunk()`` (one epoch, a tenth of the steps) and
at most ``SHRUNK_BATCHES`` batches an epoch in ``seqcourse.train``'s loops, so
the whole catalogue runs in minutes. A graded cell that reads what a shrunk run made can still show
a cascade (it must pass for a mistake in another exercise: its hidden test then charges the
shortfall to the exercise at fault), but its failure never counts as catching a mistake: every
mistake must be caught by a test that does not depend on how long something trained.

A graded cell belongs to the exercise named in its metadata (``seqcourse.exercise``), else to the
solution cell before it. :func:`charge_report` turns the results into the check: caught in its
own exercise, charged to no other.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from seqcourse import cells as nbcells
from seqcourse.paths import lesson_notebook
from seqcourse_grader.catalogue import Mistake, load_catalogue
from seqcourse_grader.cellnames import EVERYTHING, cell_names, reads_shrunk_budget, source_names

SHRUNK_BATCHES = 3
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


@dataclass
class CellFailure:
    cell: str          # grade id, or "cell N" for an ordinary cell
    exercise: str      # the exercise it is charged to ("" for an ordinary cell)
    visible: bool      # its visible part failed (a learner would see it without the hidden tests)
    error: str
    trusted: bool = True   # False: it read what a shrunk training run made (see the module's doc)


@dataclass
class MistakeResult:
    mistake: Mistake
    failures: list[CellFailure] = field(default_factory=list)
    raised: str = ""   # the mistake's own cell raised
    seconds: float = 0.0

    @property
    def graded(self) -> list[CellFailure]:
        return [f for f in self.failures if f.exercise]

    @property
    def caught(self) -> bool:
        """It loses points in its own exercise."""
        return bool(self.raised) or any(f.exercise == self.mistake.cell and f.trusted for f in self.graded)

    @property
    def caught_by_visible(self) -> bool:
        return bool(self.raised) or any(f.exercise == self.mistake.cell and f.visible and f.trusted
                                        for f in self.graded)

    @property
    def cascades(self) -> list[CellFailure]:
        """Graded cells of *other* exercises that fail: points it costs outside its exercise."""
        return [f for f in self.graded if f.exercise != self.mistake.cell]

    @property
    def broken_later(self) -> list[CellFailure]:
        return [f for f in self.failures if not f.exercise]

    # Kept for the CLI and older callers.
    @property
    def failed_cells(self) -> list[str]:
        return [f.cell for f in self.graded]

    @property
    def detail(self) -> str:
        return self.raised or next((f.error for f in self.failures), "")


class _Kernel:
    """A kernel we send code to and read the first error back from."""

    def __init__(self, env: dict[str, str], cwd: Path):
        from jupyter_client.manager import KernelManager

        # Unix sockets, not TCP ports another process could take before the kernel binds them
        self.sockets = tempfile.TemporaryDirectory(prefix="seqcourse-mistakes-")
        self.km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(self.sockets.name, "k"))
        self.km.start_kernel(env=env, cwd=str(cwd), extra_arguments=["--HistoryManager.hist_file=:memory:"])
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=60)
        except RuntimeError:
            self.close()
            raise

    def run(self, code: str, timeout: float) -> str | None:
        """Execute ``code``; return ``None`` on success, else ``"Ename: message"``."""
        errors: list[str] = []

        def on_output(msg):
            if msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=on_output,
                                            store_history=False)
        if reply["content"]["status"] != "ok" and not errors:
            errors.append(f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")
        return errors[0] if errors else None

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        self.sockets.cleanup()


def _with_visible_marker(source: str) -> str:
    """The test cell with a flag set once its visible part has passed: before the hidden block that
    ends the cell (a hidden block at the top only sets the cell up)."""
    lines = source.rstrip().splitlines()
    tail = len(lines)
    if lines and lines[-1].strip() == HIDDEN_END:
        tail = max(i for i, ln in enumerate(lines) if ln.strip() == HIDDEN_BEGIN)
    return "\n".join(["_seqcourse_visible_ok = False", *lines[:tail], "_seqcourse_visible_ok = True",
                      *lines[tail:]])


_SNAPSHOT = """
import random as _seqcourse_random, numpy as _seqcourse_np, torch as _seqcourse_torch
_seqcourse_snapshot = (dict(globals()), _seqcourse_torch.get_rng_state(), _seqcourse_random.getstate(),
                       _seqcourse_np.random.get_state())
"""
_RESTORE = """
def _seqcourse_restore(saved=_seqcourse_snapshot):
    import random, numpy, torch
    names = globals()
    for name in [n for n in names if n not in saved[0]]:
        del names[name]
    names.update(saved[0])
    torch.set_rng_state(saved[1]); random.setstate(saved[2]); numpy.random.set_state(saved[3])
_seqcourse_restore()
"""


def check_mistakes(assignment: str, mistakes: list[Mistake] | None = None,
                   root: Path | None = None, timeout: float = 300,
                   progress: Callable[[str], None] | None = None) -> list[MistakeResult]:
    """Follow every mistake through the notebook; return one result per mistake.

    Raises if the unmodified solution fails any of its own cells in this harness, since then a
    "caught" mistake would prove nothing.
    """
    mistakes = load_catalogue(assignment) if mistakes is None else mistakes
    nb_path = lesson_notebook(assignment, root=root)
    nb = nbformat.read(nb_path, as_version=4)
    numbers = [k for k, c in enumerate(nb.cells) if c.cell_type == "code"]   # notebook cell numbers
    cells = [nb.cells[k] for k in numbers]
    solution_ids = {nbcells.grade_id(c) for c in cells if nbcells.is_answer(c)}
    unknown = {m.cell for m in mistakes} - solution_ids
    if unknown:
        raise ValueError(f"mistakes name cells that are not solution cells: {sorted(unknown)}")
    owner = nbcells.exercise_of_tests(cells)
    names = [cell_names(c) for c in cells]

    # one thread: the runner's kernel shares the machine with pytest's other worker
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", PYDEVD_DISABLE_FILE_VALIDATION="1", OMP_NUM_THREADS="1")
    kernel = _Kernel(env, nb_path.parent)
    results: list[MistakeResult] = []
    try:
        for i, cell in enumerate(cells):
            for k, m in enumerate(m for m in mistakes if nbcells.is_answer(cell) and m.cell == nbcells.grade_id(cell)):
                result = _follow(kernel, m, cells, names, i, owner, timeout, numbers, thorough=k == 0)
                results.append(result)
                if progress:
                    charged = ", ".join(sorted({f.exercise for f in result.cascades}))
                    progress(f"{'caught ' if result.caught else 'MISSED '} {m.cell}/{m.name}"
                             + (f"  CASCADES into {charged}" if charged else "")
                             + f"  ({result.seconds:.1f} s)")
            err = kernel.run(cell.source, timeout)
            if err:
                raise RuntimeError(f"the solution itself fails cell {nbcells.grade_id(cell) or i}: {err}")
    finally:
        kernel.close()
    return results


def _cells_to_run(m: Mistake, cells, names, i: int, owner: dict, thorough: bool) -> list[int]:
    """Later cells that can see the mistake, and the later cells that make what those read.

    The mistake changes names of its exercise; a later answer that calls them changes too. A graded
    cell of another exercise cannot see either: it swaps the reference answers in for every name
    of another exercise (``EXERCISES.isolate``), so it runs only when it reads what a later
    ordinary cell computed with the mistake (a trained model, say). ``thorough`` runs those
    graded cells anyway, which checks the isolation itself (done for one mistake per exercise)."""
    defs = source_names(m.source)[1] | names[i][1]        # definitions that now behave differently
    products: set[str] = set()                      # values computed with them
    run = set()
    for j in range(i + 1, len(names)):
        reads, writes = names[j]
        sees_defs, sees_products = EVERYTHING in reads or reads & defs, EVERYTHING in reads or reads & products
        if not (sees_defs or sees_products):
            continue
        if nbcells.is_answer(cells[j]):
            defs |= writes
        elif not nbcells.is_test(cells[j]) or owner[nbcells.grade_id(cells[j])] == m.cell or sees_products or thorough:
            products |= writes
        else:
            continue
        run.add(j)
    pending = sorted(run)
    while pending:                                  # producers: the last earlier writer of each read,
        j = pending.pop()                           # and theirs, until nothing new is needed
        for name in names[j][0] - {EVERYTHING}:
            writer = next((k for k in range(j - 1, i, -1) if name in names[k][1]), None)
            if writer is not None and writer not in run:
                run.add(writer)
                pending.append(writer)
    return sorted(run)


def _follow(kernel: _Kernel, m: Mistake, cells, names, i: int, owner: dict, timeout: float,
            numbers: list[int], thorough: bool) -> MistakeResult:
    start = time.perf_counter()
    result = MistakeResult(m)
    kernel.run(_SNAPSHOT, timeout)
    err = kernel.run(m.source, timeout)
    if err:
        result.raised = f"the mistake itself raised {err}"
    kernel.run("budget = budget.shrunk() if 'budget' in globals() else None\n"
               f"__import__('os').environ['SEQCOURSE_MAX_BATCHES'] = '{SHRUNK_BATCHES}'", timeout)
    shrunk: set[str] = set()    # names made by cells that trained on the shrunk budget
    for j in _cells_to_run(m, cells, names, i, owner, thorough):
        later, (reads, writes) = cells[j], names[j]
        untrusted = reads_shrunk_budget(later.source) or bool(reads & shrunk) or EVERYTHING in reads and bool(shrunk)
        if untrusted:
            shrunk |= writes
        if nbcells.is_answer(later):
            err = kernel.run(later.source, timeout)
            if err:
                raise RuntimeError(f"{m.cell}/{m.name}: the reference answer {nbcells.grade_id(later)} fails: {err}")
        elif nbcells.is_test(later):
            err = kernel.run(_with_visible_marker(later.source), timeout)
            if err:
                visible = kernel.run("assert _seqcourse_visible_ok", timeout) is not None
                result.failures.append(CellFailure(nbcells.grade_id(later), owner[nbcells.grade_id(later)], visible, err,
                                                   trusted=not untrusted))
        else:
            err = kernel.run(later.source, timeout)
            if err:
                result.failures.append(CellFailure(f"cell {numbers[j]}", "", True, err, trusted=not untrusted))
    kernel.run(_RESTORE + "\n__import__('os').environ.pop('SEQCOURSE_MAX_BATCHES', None)", timeout)
    result.seconds = time.perf_counter() - start
    return result


def charge_report(results: list[MistakeResult]) -> dict:
    """What the catalogue shows: missed mistakes, cascades, visible-only catch rate, later breaks."""
    n = len(results)
    return {
        "mistakes": n,
        "missed": [f"{r.mistake.cell}/{r.mistake.name} ({r.mistake.why})" for r in results if not r.caught],
        "cascades": [f"{r.mistake.cell}/{r.mistake.name} also fails "
                     + ", ".join(f"{f.cell} (exercise {f.exercise})" for f in r.cascades)
                     for r in results if r.cascades],
        "visible_rate": sum(r.caught_by_visible for r in results) / n if n else 0.0,
        "broken_later": [f"{r.mistake.cell}/{r.mistake.name} breaks " + ", ".join(f.cell for f in r.broken_later if f.trusted)
                         for r in results if any(f.trusted for f in r.broken_later)],
    }
