"""Test-suite settings, for every path pytest collects (tests/ and the nbval run on solutions/):
the ci profile always, one thread per kernel, and a quiet debugger in spawned kernels."""

import os

import pytest

# Kernels started by nbval and by the grading tests inherit these.
os.environ["SEQCOURSE_PROFILE"] = "ci"
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Two pytest workers each run kernels on a 2-core machine: with torch's default of one thread per
# core, OpenMP threads spin against each other and a 20 s job took over 3 min. One thread each.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"


# .ci/run distributes tests over two workers by file (a notebook's cells share one kernel, a
# module's fixture is built once), except the per-lesson runs of the mistakes catalogue and of the
# hostile submissions: independent, and the longest tests, they spread over the workers. The
# longest files go first, so that no worker is left with a long one at the end.
SPREAD = ("test_every_mistake_loses_points_in_its_own_exercise_only", "test_hostile_submissions_take_nothing")
LONGEST_FIRST = ("tests/test_mistakes.py", "tests/test_hostile.py", "tests/test_class_grading.py", "tests/test_hub.py",
                 "tests/test_pipeline.py", "solutions/06-attention/06-attention.ipynb",
                 "solutions/05-seq2seq/05-seq2seq.ipynb", "solutions/03-lstm/03-lstm.ipynb",
                 "solutions/04-deep-rnn/04-deep-rnn.ipynb", "solutions/07-modern-rnn/07-modern-rnn.ipynb",
                 "solutions/02-bptt/02-bptt.ipynb")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)   # stable: a notebook's cells keep their order


@pytest.hookimpl(optionalhook=True)   # only where xdist runs the tests
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByFileExceptMistakes(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return nodeid if any(name in nodeid for name in SPREAD) else nodeid.split("::", 1)[0]

    return ByFileExceptMistakes(config, log)
