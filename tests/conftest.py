"""Test-suite settings: the ci profile always, and a quiet debugger in spawned kernels."""

import os

# Kernels started by nbval and by the grading tests inherit these.
os.environ["SEQCOURSE_PROFILE"] = "ci"
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
