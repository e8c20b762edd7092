"""Where the course's files are, found from the package, never from the working directory.

Autograding runs a notebook in another folder, so notebooks must not use relative paths.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def datasets_dir() -> Path:
    """The repo's ``datasets/`` folder; ``SEQCOURSE_DATASETS`` overrides it."""
    override = os.environ.get("SEQCOURSE_DATASETS")
    path = Path(override) if override else REPO_ROOT / "datasets"
    if not path.is_dir():
        raise FileNotFoundError(
            f"datasets folder not found at {path}. Install the course with `pip install -e .` from "
            "a clone of the repository, or point SEQCOURSE_DATASETS at a copy of its datasets/.")
    return path
