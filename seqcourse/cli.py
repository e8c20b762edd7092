"""The ``course`` command of the student edition: check your own work.

    course check NOTEBOOK          run your notebook's visible tests in a fresh kernel and list them
    course selfgrade NOTEBOOK      the same here: the hidden tests are not part of the student edition
    course data surnames           rebuild datasets/surnames/surnames.tsv from Faker

The full course repository installs the instructor's ``course`` command instead
(:mod:`seqcourse_grader.cli`), which adds grading, releasing and the mistakes catalogue and whose
``selfgrade`` runs the hidden tests; it builds on the functions here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def valid_notebook(nb: Path, command: str, hint: str) -> None:
    """Exit with a clear message unless ``nb`` is a readable Jupyter notebook."""
    import nbformat

    if not nb.is_file():
        raise SystemExit(f"course {command}: no such file: {nb}")
    try:
        nbformat.validate(nbformat.read(nb, as_version=4))
    except Exception as exc:  # invalid JSON, not a notebook, an old format...
        raise SystemExit(f"course {command}: {nb} is not a valid Jupyter notebook ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]}). Open it in JupyterLab, or start again "
                         f"from a fresh copy of {hint}.") from None


def cmd_check(args) -> int:
    from seqcourse.selfcheck import report, run_visible_tests

    nb = Path(args.notebook).resolve()
    valid_notebook(nb, "check", f"lessons/{nb.parent.name}/")
    print(f"running {nb} with its visible tests (the ci budget; a minute or less)...")
    results = run_visible_tests(nb)
    print(report(nb, results))
    return 0 if results and all(r.ok for r in results) else 1


def cmd_selfgrade_student(args) -> int:
    print("This is the student edition: it has no hidden tests, so `course selfgrade` runs your "
          "notebook's visible tests (`course check`).")
    return cmd_check(args)


def cmd_data(args) -> int:
    from seqcourse.data.surnames import build_surnames

    path, sha = build_surnames()
    print(f"wrote {path} (sha256 {sha})")
    return 0


def student_commands(sub, selfgrade=cmd_selfgrade_student) -> None:
    """The commands every edition has; ``selfgrade`` is the full course's own where it has one."""
    p = sub.add_parser("selfgrade", help="grade a notebook locally (hidden tests in the full course)")
    p.add_argument("notebook")
    p.add_argument("--lesson", help="lesson id, if the notebook's folder does not say it")
    p.set_defaults(func=selfgrade)
    p = sub.add_parser("check", help="run a notebook's visible tests (what a student edition has)")
    p.add_argument("notebook")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("data", help="rebuild a generated dataset")
    p.add_argument("name", choices=["surnames"])
    p.set_defaults(func=cmd_data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.split("\n\n")[0])
    student_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
