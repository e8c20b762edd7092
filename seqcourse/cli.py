"""The ``course`` command: the instructor's and the self-learner's entry point.

    course release [ID ...]        regenerate lessons/ from solutions/ (nbgrader generate_assignment)
    course check-release [ID ...]  fail if lessons/ differs from a fresh generation
    course selfgrade NOTEBOOK      grade your notebook against the hidden tests, locally
    course mistakes ID             check that every catalogued mistake loses points
    course data surnames           rebuild datasets/surnames/surnames.tsv from Faker

Everything runs nbgrader underneath; nbgrader's own commands keep working from the repo root.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import sys
import tempfile
from pathlib import Path

from seqcourse.paths import REPO_ROOT


def _ids(given: list[str]) -> list[str]:
    from seqcourse.grading.nbg import assignments

    known = assignments()
    for aid in given:
        if aid not in known:
            raise SystemExit(f"course: no lesson {aid!r}; known: {', '.join(known)}")
    return given or known


def _normalise(path: Path) -> str:
    """A lesson notebook as JSON text with keys sorted, for comparison."""
    return json.dumps(json.loads(path.read_text(encoding="utf-8")), sort_keys=True, indent=1)


def release_differences(ids: list[str]) -> list[str]:
    """Paths under lessons/ that differ from a fresh generation (missing, extra or changed)."""
    from seqcourse.grading.nbg import generate_lessons

    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_lessons(ids, Path(tmp))
        for aid in ids:
            fresh, committed = Path(tmp) / aid, REPO_ROOT / "lessons" / aid
            cmp = filecmp.dircmp(fresh, committed) if committed.is_dir() else None
            if cmp is None:
                problems.append(f"lessons/{aid}/ is missing")
                continue
            problems += [f"lessons/{aid}/{n} is missing" for n in cmp.left_only]
            problems += [f"lessons/{aid}/{n} should not be there" for n in cmp.right_only]
            for name in cmp.common_files:
                a, b = fresh / name, committed / name
                same = (_normalise(a) == _normalise(b)) if name.endswith(".ipynb") else filecmp.cmp(a, b, False)
                if not same:
                    problems.append(f"lessons/{aid}/{name} differs from a fresh generation")
    return problems


def cmd_release(args) -> int:
    from seqcourse.grading.nbg import generate_lessons

    for path in generate_lessons(_ids(args.ids), REPO_ROOT / "lessons"):
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


def cmd_check_release(args) -> int:
    problems = release_differences(_ids(args.ids))
    for p in problems:
        print(p)
    if problems:
        print("Run `course release` and commit lessons/.")
        return 1
    print("lessons/ matches solutions/")
    return 0


def cmd_selfgrade(args) -> int:
    import nbformat

    from seqcourse.grading.nbg import ScratchCourse, assignments

    nb = Path(args.notebook).resolve()
    if not nb.is_file():
        raise SystemExit(f"course selfgrade: no such file: {nb}")
    aid = args.lesson or nb.parent.name
    if aid not in assignments():
        raise SystemExit(f"course selfgrade: cannot tell the lesson of {nb} (its folder is "
                         f"{nb.parent.name!r}); pass --lesson, one of: {', '.join(assignments())}")
    try:
        nbformat.validate(nbformat.read(nb, as_version=4))
    except Exception as exc:  # invalid JSON, not a notebook, an old format...
        raise SystemExit(f"course selfgrade: {nb} is not a valid Jupyter notebook ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]}). Open it in JupyterLab, or start again "
                         f"from a fresh copy of lessons/{aid}/.") from None
    print(f"grading {nb} as lesson {aid} (the ci budget is used; this takes a minute or less)...")
    with ScratchCourse([aid]) as course:
        try:
            report = course.autograde(aid, nb, "me")
        except RuntimeError as exc:
            raise SystemExit(f"course selfgrade: grading failed, nothing was scored.\n{exc}") from None
    print(report.summary())
    return 0 if report.score == report.max_score else 1


def cmd_mistakes(args) -> int:
    from seqcourse.grading.mistakes import check_mistakes

    results = check_mistakes(args.id)
    missed = [r for r in results if not r.caught]
    for r in results:
        print(f"{'caught' if r.caught else 'MISSED'}  {r.mistake.cell}/{r.mistake.name}: {r.mistake.why}")
    print(f"{len(results) - len(missed)} of {len(results)} mistakes lose points")
    return 1 if missed else 0


def cmd_data(args) -> int:
    from seqcourse.data.surnames import build_surnames

    path, sha = build_surnames()
    print(f"wrote {path} (sha256 {sha})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="regenerate lessons/ from solutions/")
    p.add_argument("ids", nargs="*", help="lesson ids (default: all)")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("check-release", help="fail if lessons/ is out of date")
    p.add_argument("ids", nargs="*")
    p.set_defaults(func=cmd_check_release)
    p = sub.add_parser("selfgrade", help="grade a notebook locally against the hidden tests")
    p.add_argument("notebook")
    p.add_argument("--lesson", help="lesson id, if the notebook's folder does not say it")
    p.set_defaults(func=cmd_selfgrade)
    p = sub.add_parser("mistakes", help="check that each catalogued mistake loses points")
    p.add_argument("id")
    p.set_defaults(func=cmd_mistakes)
    p = sub.add_parser("data", help="rebuild a generated dataset")
    p.add_argument("name", choices=["surnames"])
    p.set_defaults(func=cmd_data)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
