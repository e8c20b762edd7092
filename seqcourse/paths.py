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


def lesson_notebook(assignment: str, edition: str = "solutions", root: Path | None = None) -> Path:
    """The one notebook of a lesson: ``<root or repo>/<edition>/<assignment>/*.ipynb``.

    ``edition`` is "solutions" (instructor) or "lessons" (student). A lesson holds exactly one
    notebook; anything else is an error, not a guess.
    """
    folder = Path(root or REPO_ROOT) / edition / assignment
    found = sorted(folder.glob("*.ipynb"))
    if len(found) != 1:
        raise FileNotFoundError(f"{folder} must hold exactly one notebook, found {len(found)}")
    return found[0]
