"""Student material and grader material are apart by construction.

- The installed package (the wheel) holds no hidden-test module and no function or class whose
  body is a solution cell's answer.
- The student edition (`course student-edition OUT`) holds no solutions, hidden tests, mistakes
  catalogue or benches, installs in a fresh venv from its own files, runs every lesson's setup
  cell, and its self-check runs the visible tests and says that hidden tests run at grading.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from seqcourse.paths import REPO_ROOT
from seqcourse_grader.answers import answers_in, definitions, solution_answers
from seqcourse_grader.edition import FORBIDDEN, build_student_edition, forbidden_hits
from seqcourse_grader.reuse import without_markers

HIDDEN_MODULES = sorted(p.stem for p in (REPO_ROOT / "autograder" / "hidden" / "seqcourse_hidden").glob("lesson*.py"))


def test_the_answer_matcher_sees_renamed_and_reformatted_copies():
    answers = solution_answers()
    assert len(answers) >= 30, "the solutions should hold dozens of answers"
    cell = next(c for c in nbformat.read(REPO_ROOT / "solutions/05-seq2seq/05-seq2seq.ipynb", as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "masked_cross_entropy")
    copy = without_markers(cell.source).replace("def masked_cross_entropy(", "def _loss(")
    copy = '"""A helper."""\n\n\n' + copy.replace("\n", "\n\n")
    assert answers_in({"fake.py": copy}, answers), "a renamed copy of an answer must be found"


@pytest.mark.pipeline
def test_the_wheel_holds_no_hidden_tests_and_no_answers(tmp_path):
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path),
                    str(REPO_ROOT)], check=True, capture_output=True, text=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("seqcourse-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        sources = {n: z.read(n).decode("utf-8") for n in names if n.endswith(".py")}
    hidden = [n for n in names if "seqcourse_hidden" in n or "/hidden/" in n
              or Path(n).stem in HIDDEN_MODULES]
    assert hidden == [], f"hidden-test modules in the wheel: {hidden}"
    assert not [n for n in names if n.startswith(("solutions/", "autograder/", "bench/", "tests/"))]
    answers = solution_answers()
    found = answers_in(sources, answers)
    assert found == [], "the wheel holds reference answers:\n" + "\n".join(found)
    defs = sum(len(definitions(t)) for t in sources.values())
    print(f"\nwheel {wheel.name}: {len(names)} files, {len(sources)} modules, {defs} functions and "
          f"classes compared with {len(answers)} solution answers: 0 match; no hidden-test module "
          f"({time.perf_counter() - started:.1f} s)")


# ------------------------------------------------------------------ the student edition
@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    return build_student_edition(tmp_path_factory.mktemp("edition") / "seqcourse-student")


def test_the_edition_holds_what_a_student_needs_and_nothing_else(edition):
    top = sorted(p.name for p in edition.iterdir())
    assert top == [".gitignore", "LICENSE", "README.md", "constraints.txt", "datasets", "environment.yml",
                   "lessons", "nbgrader_config.py", "pyproject.toml", "seqcourse"]
    lessons = sorted(p.name for p in (edition / "lessons").iterdir())
    assert lessons == sorted(p.name for p in (REPO_ROOT / "lessons").iterdir())
    assert forbidden_hits(edition) == [], f"{FORBIDDEN} must appear nowhere"
    text = {str(p.relative_to(edition)): p.read_text(encoding="utf-8") for p in edition.rglob("*")
            if p.is_file() and p.suffix in (".py", ".md", ".toml", ".yml", ".ipynb", ".txt", ".tsv")}
    for module in HIDDEN_MODULES:
        assert not [n for n in text if Path(n).stem == module], f"a hidden module {module} was copied"
    assert not [n for n in text if "mistakes" in n or n.startswith(("bench", "tests", "solutions", "autograder"))]
    code = {n: t for n, t in text.items() if n.endswith(".py")}
    for name, nb in ((n, t) for n, t in text.items() if n.endswith(".ipynb")):
        cells = [c for c in nbformat.reads(nb, as_version=4).cells if c.cell_type == "code"]
        code.update({f"{name} cell {i}": c.source for i, c in enumerate(cells)
                     if c.metadata.get("nbgrader", {}).get("solution")})
    # Given cells show earlier lessons' answers on purpose (README: release after the deadline);
    # the library and the exercise stubs must not.
    found = answers_in(code, solution_answers())
    assert found == [], "\n".join(found)
    readme = text["README.md"]
    for must in ("python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e .",
                 ".venv/bin/jupyter lab lessons/", "course check", "Hidden tests run when your work is graded",
                 "Submit"):
        assert must in readme, f"the student README should say {must!r}"
    assert "[tool.pytest" not in text["pyproject.toml"]


def test_the_edition_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "x").write_text("mine")
    with pytest.raises(FileExistsError):
        build_student_edition(tmp_path)


def _fresh_venv(edition: Path, tmp_path: Path) -> Path:
    """A new venv with the edition installed from its own files. The heavy dependencies (torch,
    JupyterLab...) come from this test run's environment through a .pth file, to keep CI short:
    the edition's own package, entry point and data are what is installed and used."""
    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "-e", str(edition)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


SETUP_CELLS = """
import json, os, sys
import nbformat
for path in sorted(sys.argv[1:]):
    nb = nbformat.read(path, as_version=4)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    os.chdir(os.path.dirname(path))
    exec(compile(setup.source, path + " setup", "exec"), {"__name__": "__main__"})
    print("SETUP OK", os.path.basename(path), flush=True)
import seqcourse
from seqcourse import hidden_tests
print("PACKAGE", os.path.dirname(seqcourse.__file__))
try:
    hidden_tests.load_hidden("lesson01")
except hidden_tests.HiddenTestsUnavailable as e:
    print("HIDDEN", e)
"""


@pytest.mark.pipeline
def test_the_edition_installs_and_runs_in_a_fresh_venv(edition, tmp_path):
    started = time.perf_counter()
    venv = _fresh_venv(edition, tmp_path)
    installed = time.perf_counter() - started
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SEQCOURSE_PROFILE": "ci", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    notebooks = sorted(str(p) for p in (edition / "lessons").glob("*/*.ipynb"))
    run = subprocess.run([str(venv / "bin" / "python"), "-c", SETUP_CELLS, *notebooks], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert run.stdout.count("SETUP OK") == len(notebooks)
    assert f"PACKAGE {edition / 'seqcourse'}" in run.stdout, "the edition's own library must be imported"
    assert "HIDDEN The hidden tests are not part of the student edition" in run.stdout

    # the self-check, as the README says, on an untouched lesson: visible tests fail, and it says so
    check = subprocess.run([str(venv / "bin" / "course"), "selfgrade", "lessons/01-rnn-cell/01-rnn-cell.ipynb"],
                           cwd=edition, capture_output=True, text=True, env=env, timeout=300)
    out = check.stdout
    assert check.returncode == 1, out + check.stderr[-2000:]
    assert "student edition" in out and "visible tests pass in 0 of 6 test cells; graded runs reach their bars in 0 of 1" \
        in out, out + check.stderr[-3000:]
    assert "FAIL test_trained_classifier" in out and "a run graded at submission" in out \
        and "the run did not reach its checks" in out, out
    assert "running over TCP" not in out + check.stderr, "course check's kernel should use Unix sockets"
    assert "FAIL test_rnn_cell" in out and "NotImplementedError" in out, out
    assert "Hidden tests run when your work is graded" in out
    assert "release" not in subprocess.run([str(venv / "bin" / "course"), "--help"], capture_output=True,
                                           text=True, env=env).stdout, "instructor commands in a student edition"
    print(f"\nstudent edition: installed in {installed:.1f} s (--no-deps), {len(notebooks)} setup cells "
          f"and a self-check in {time.perf_counter() - started - installed:.1f} s")


def test_selfgrade_in_the_full_course_still_uses_the_hidden_tests():
    from seqcourse.hidden_tests import available, load_hidden

    assert available()
    assert load_hidden("lesson01").__name__ == "seqcourse_hidden.lesson01"
