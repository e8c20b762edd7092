"""Test-suite settings, for every path pytest collects (tests/ and the nbval run on solutions/):
the ci profile always, one thread per kernel, and a quiet debugger in spawned kernels."""

import os

# Kernels started by nbval and by the grading tests inherit these.
os.environ["SEQCOURSE_PROFILE"] = "ci"
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Two pytest workers each run kernels on a 2-core machine: with torch's default of one thread per
# core, OpenMP threads spin against each other and a 20 s job took over 3 min. One thread each.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
