"""A course folder as nbgrader lays it out (see ``autograder/nbgrader_config.py``): where the
lessons' sources, releases, submissions, autograded copies and feedback live, and the gradebook."""

from __future__ import annotations

from pathlib import Path

from seqcourse.paths import REPO_ROOT
from seqcourse_grader.nbg import course_config

STATUS_GRADED = "graded"
STATUS_REVIEW = "needs review"


class Course:
    """An nbgrader course folder laid out as this repository is. ``root`` defaults to this
    repository; ``db_url`` (``sqlite:///...`` or ``postgresql://...``) to its gradebook."""

    def __init__(self, root: Path | str | None = None, db_url: str | None = None):
        self.root = Path(root).resolve() if root else REPO_ROOT
        self.config = course_config(self.root if root else None, db_url=db_url)
        if root and not db_url:
            self.config.CourseDirectory.db_url = f"sqlite:///{self.root / 'autograder' / 'gradebook.db'}"
        self.db_url = self.config.CourseDirectory.db_url
        cd = self.config.CourseDirectory
        self.source = self.root / cd.source_directory
        self.release = self.root / cd.release_directory
        self.submitted = self.root / cd.submitted_directory
        self.autograded = self.root / cd.autograded_directory
        self.feedback = self.root / cd.feedback_directory

    def notebook_name(self, aid: str) -> str:
        return notebook_name(self.source, aid)

    def students(self, aid: str) -> list[str]:
        if not self.submitted.is_dir():
            return []
        return sorted(p.name for p in self.submitted.iterdir() if (p / aid).is_dir())

    def protected_paths(self) -> list[str]:
        """What a grading kernel may not touch: the course's sources, submissions, grading
        folders and gradebook, and this repository's solutions, hidden tests and history."""
        paths = [self.source, self.submitted, self.autograded, self.feedback, self.root / "autograder",
                 *repository_paths()]
        if self.db_url.startswith("sqlite:///"):
            paths.append(Path(self.db_url.removeprefix("sqlite:///")))
        return sorted({str(Path(p).resolve()) for p in paths})


def notebook_name(source: Path, aid: str) -> str:
    """The file name of lesson ``aid``'s one notebook in a source folder (``solutions/``)."""
    found = sorted((Path(source) / aid).glob("*.ipynb"))
    if len(found) != 1:
        raise FileNotFoundError(f"{Path(source) / aid} should hold exactly one notebook, found {len(found)}")
    return found[0].name


def repository_paths() -> list[Path]:
    """The grader material of the repository this package runs from (on every grading machine)."""
    return [REPO_ROOT / "solutions", REPO_ROOT / "autograder", REPO_ROOT / ".git"]
