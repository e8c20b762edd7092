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


# .ci/run distributes tests with `--dist loadgroup`: everything in one file stays on one worker (a
# notebook's cells share a kernel, a module's fixture is built once), except the mistakes runs of
# separate lessons, which are independent and the longest tests, so they spread over the workers.
# The longest groups go first, so that no worker is left with a long one at the end.
SPREAD = "test_every_mistake_loses_points_in_its_own_exercise_only"
LONGEST_FIRST = ("tests/test_mistakes.py", "tests/test_class_grading.py", "tests/test_hub.py",
                 "tests/test_exchange.py", "tests/test_pipeline.py", "tests/test_postgres_gradebook.py")


@pytest.hookimpl(tryfirst=True)   # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)   # stable: a notebook's cells keep their order
    for item in items:
        spread = getattr(item, "originalname", None) == SPREAD
        item.add_marker(pytest.mark.xdist_group(item.nodeid if spread else item.nodeid.split("::")[0]))
