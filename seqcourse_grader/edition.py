"""``course student-edition OUT``: the repository a student is given.

It holds what a student needs to work through the course and nothing an instructor keeps: the
generated ``lessons/``, the ``seqcourse`` library, ``datasets/``, the install files, a student's
nbgrader settings (course id and exchange) and its own README. There is no ``solutions/``, no
hidden tests, no mistakes catalogue, no ``bench/`` and no ``tests/``: they are never copied, and
the edition is searched for solution and hidden-test markers before it is reported done.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from seqcourse.paths import REPO_ROOT

# The repository's files a student gets, as they are (folders are copied whole).
COPIED = ["lessons", "seqcourse", "datasets", "environment.yml", "constraints.txt", "LICENSE"]
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info", ".*")
# `seqcourse/` is the student's package whole (checks, tamper guard, `course check`); the grader
# (`seqcourse_grader/`) is a package of its own that is never copied, so no grading module can slip in.
# Text that must never reach a student: solution and hidden-test markers, hidden modules' names.
FORBIDDEN = ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
             "seqcourse_hidden.", "from seqcourse_grader", "import seqcourse_grader"]
STUDENT_CONFIG = REPO_ROOT / "autograder" / "student_nbgrader_config.py"


def readme_lessons_table() -> tuple[list[str], dict[str, str]]:
    """The course README's lessons table (written once, there): its two header lines, and lesson
    id -> its row."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Lessons", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("|")]
    by_lesson = {m.group(1): ln for ln in rows[2:] if (m := re.search(r"lessons/([^/]+)/", ln))}
    return rows[:2], by_lesson


def _lessons_table(lessons: list[str]) -> str:
    """The README's lessons table with only ``lessons``' rows."""
    head, rows = readme_lessons_table()
    return "\n".join(head + [row for aid, row in rows.items() if aid in lessons])


def _pyproject() -> str:
    """pyproject.toml for the student's package alone: the student's ``course`` command, only
    ``seqcourse`` installed, and none of the course's own test settings (they name files a student
    lacks)."""
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = re.sub(r"\n\[tool\.pytest\.ini_options\]\n.*?(?=\n\[|\Z)", "\n", text, flags=re.S)
    text, scripts = re.subn(r'course = "seqcourse_grader\.cli:main"', 'course = "seqcourse.cli:main"', text)
    text, packages = re.subn(r"include = \[[^\]]*\]", 'include = ["seqcourse", "seqcourse.*"]', text)
    if scripts != 1 or packages != 1:
        raise RuntimeError("pyproject.toml no longer names the grader's command and packages as the "
                           "student edition expects: update seqcourse_grader/edition.py")
    return text


README = """\
# seqcourse: from the RNN cell to Seq2Seq with attention (student edition)

An autograded PyTorch course. It takes you from a single recurrent cell, through backpropagation
through time and LSTM gates, to a Seq2Seq translator with attention. Each lesson is a notebook with
prose, maths, plots and graded exercises; each exercise states its goal, the tensor shapes, the
cases it is graded on and a hint, and has visible tests that tell you what is wrong.

You need Python 3.10 or newer and basic PyTorch (tensors, `nn.Module`, autograd). No GPU is needed.

## Set up (two commands)

```bash
python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e . --extra-index-url https://download.pytorch.org/whl/cpu
.venv/bin/jupyter lab lessons/
```

The first installs the course and its packages (PyTorch, JupyterLab, nbgrader...) into `.venv`,
with PyTorch's small CPU build (about 200 MB instead of several GB of CUDA libraries): every lesson
runs on a CPU. With an NVIDIA GPU you want to use, leave out `--extra-index-url ...`: pip then takes
PyPI's build with CUDA. The second command opens the lessons. `constraints.txt` pins the PyTorch
version the course was tested with: keep `-c constraints.txt` on every `pip install`. With conda:
`conda env create -f environment.yml`, then `pip install -e . --no-deps`.

## Lessons

{released}

{site}

{lessons}

Work through them in order: later lessons build on earlier ones, and some give you, ready made, the
code you wrote in an earlier lesson.

## Check your work

Every exercise has visible tests right below it: run them as you go. To run a whole notebook from
top to bottom in a fresh kernel and list each test:

```bash
.venv/bin/course check lessons/01-rnn-cell/01-rnn-cell.ipynb
```

It never changes your notebook. Hidden tests run when your work is graded: they try more cases
(other shapes, dtypes and edge cases, each stated in the exercise's text), so passing every visible
test is necessary, not sufficient. Before you submit, restart the kernel and run all cells.

## Submit

- **Through JupyterLab's Assignments tab** (classes that use nbgrader's exchange): *Fetch* the
  lesson, work in the fetched copy, then *Submit*; later, *Fetch Feedback* shows your graded
  notebook. `nbgrader_config.py` here names the course (`seqcourse`) and the exchange folder;
  your instructor tells you if it is not the default (set `SEQCOURSE_EXCHANGE`, or
  `SEQCOURSE_COURSE_ID` for another course id, before starting JupyterLab).
- **Through your learning platform** (Canvas, Moodle...): upload the `.ipynb` file as it is.

Either way: keep the notebook's file name, write your answers where it says `YOUR CODE HERE`, and do
not edit or delete the test cells (they are restored when your work is graded). Code that changes
library or test functions is flagged for your instructor to review.

## Licences

Code and lessons: MIT. Data: see `datasets/README.md`. The Tatoeba English-French sentence pairs
used from lesson 05 on are CC-BY 2.0 FR (Tatoeba contributors, https://tatoeba.org); they are
downloaded on your machine, never stored here.
"""


def _translate(out: Path, lessons: list[str], language: str) -> None:
    import nbformat

    from seqcourse_grader.translations import translate_notebook

    for aid in lessons:
        for path in sorted((out / "lessons" / aid).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            translate_notebook(nb, language, aid)
            nbformat.write(nb, path)


def forbidden_hits(root: Path) -> list[str]:
    """``path: marker`` for every file under ``root`` that holds a marker from FORBIDDEN."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        hits += [f"{path.relative_to(root)}: {m!r}" for m in FORBIDDEN if m in text]
    return hits


SITE = ("The lessons are also a website, with the figures and maths of a real run and a search box: {link}. "
        "It shows the same text and exercises; you work and submit in the notebooks here.")
NO_SITE = ("Your instructor can also give you the lessons as a website (built with `course site` in the "
           "full course), with the figures and maths of a real run and a search box.")


def build_student_edition(out: Path | str, lessons: list[str] | None = None, reveal_early: bool = False,
                          now=None, site_url: str | None = None, language: str | None = None) -> Path:
    """Write the student edition into ``out`` (new or empty); return its path. ``lessons``: the
    lessons a class has been given so far (None: every lesson, a self-learner's edition); a lesson
    whose given code shows the answers of a lesson whose deadline has not passed
    (``autograder/schedule.toml``) is refused unless ``reveal_early``. ``site_url``: where the
    class reads the course site (``course site``); the README links it. ``language``: ``ru``, ``fa``
    or ``th`` translates the lessons' prose (:mod:`seqcourse_grader.translations`); the code, grade
    ids and code cells' checksums stay the English edition's."""
    from seqcourse_grader.nbg import assignments
    from seqcourse_grader.schedule import held_back

    known = assignments()
    chosen = known if lessons is None else lessons
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"no lessons {unknown}; the lessons: {', '.join(known)}")
    why = [] if lessons is None or reveal_early else held_back(chosen, now=now)
    if why:
        raise PermissionError("not released, by the schedule:\n" + "\n".join(why)
                              + "\n(--reveal-early releases them anyway)")
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: give a new or empty folder")
    if out == REPO_ROOT or REPO_ROOT in out.parents:
        raise ValueError(f"{out} is inside the course repository: write the edition elsewhere")
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = REPO_ROOT / name
        if name == "lessons":
            for aid in chosen:
                shutil.copytree(src / aid, out / name / aid, ignore=SKIPPED)
        elif src.is_dir():
            shutil.copytree(src, out / name, ignore=SKIPPED)
        else:
            shutil.copy2(src, out / name)
    if language and language != "en":
        _translate(out, chosen, language)
        (out / "LANGUAGE").write_text(language + "\n", encoding="utf-8")   # the checks speak it (seqcourse.i18n)
    (out / "pyproject.toml").write_text(_pyproject(), encoding="utf-8")
    released = ("Every lesson of the course is here." if lessons is None else
                f"The lessons your class has been given so far ({len(chosen)} of {len(known)}); your "
                "instructor releases the next ones as the class reaches them.")
    site = SITE.format(link=f"<{site_url}>") if site_url else NO_SITE
    (out / "README.md").write_text(README.format(lessons=_lessons_table(chosen), released=released, site=site),
                                   encoding="utf-8")
    if STUDENT_CONFIG.is_file():
        shutil.copy2(STUDENT_CONFIG, out / "nbgrader_config.py")
    (out / ".gitignore").write_text(".venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\n")
    hits = forbidden_hits(out)
    if hits:
        shutil.rmtree(out)
        raise RuntimeError("the student edition would hold instructor material, so none was written:\n"
                           + "\n".join(hits))
    return out
