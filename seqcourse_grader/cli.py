"""The ``course`` command of the full course: the instructor's and the self-learner's entry point.

    course release [ID ...]        rewrite given code from its source lessons, regenerate lessons/
    course check-release [ID ...]  fail if given code drifted or lessons/ differs from a fresh generation
    course collect ID SOURCE       copy submissions (a folder, or an LMS zip) into autograder/submitted/
    course autograde ID            grade every submission: isolated, limited, in parallel
    course feedback ID             feedback HTML per student (no hidden tests in it)
    course export ID               grades CSV per exercise with each status, and a score plot
                                   (--format canvas --roster R.csv: a Canvas gradebook import)
    course selfgrade NOTEBOOK      grade your notebook against the hidden tests, locally
    course check NOTEBOOK          run your notebook's visible tests (the student edition's self-check)
    course student-edition OUT     write the student edition (no solutions, no hidden tests)
    course site OUT                build the course site (Sphinx, offline, no answers; en ru fa th)
    course translations status     which translated cells show the English (stale or missing)
    course mistakes ID             check that every catalogued mistake loses points, in its own exercise only
    course run-solution ID ...     re-run solution notebooks in place (--profile cpu|gpu) to store real outputs
    course data surnames           rebuild datasets/surnames/surnames.tsv from Faker

Everything runs nbgrader underneath; nbgrader's own commands keep working from the repo root.
The student edition's ``course`` (:mod:`seqcourse.cli`) has only ``check``, ``selfgrade`` (the
visible tests there) and ``data``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import sys
import tempfile
from pathlib import Path

from seqcourse.cli import student_commands, valid_notebook
from seqcourse.paths import REPO_ROOT, lesson_notebook


def _ids(given: list[str]) -> list[str]:
    from seqcourse_grader.nbg import assignments

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
    from seqcourse_grader.nbg import generate_lessons

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
    from seqcourse_grader.nbg import generate_lessons
    from seqcourse_grader.reuse import sync_given

    ids = _ids(args.ids)
    for line in sync_given(write=True)[1]:
        print(line.replace("differs from", "was rewritten from"))
    for path in generate_lessons(ids, REPO_ROOT / "lessons"):
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


def cmd_check_release(args) -> int:
    from seqcourse_grader.reuse import sync_given

    ids = _ids(args.ids)
    problems = sync_given(write=False)[1] + release_differences(ids)
    for p in problems:
        print(p)
    if problems:
        print("Run `course release` and commit lessons/.")
        return 1
    print("lessons/ matches solutions/")
    from seqcourse_grader.translations import message_status, status

    stale = status() + message_status()
    if stale:   # not a failure: a stale cell is shown in English with a notice, never out of date
        print("translations that show some cells in English (update them with `course translations "
              "update`, then translate the entries marked fuzzy or empty):")
        for line in stale:
            print("  " + line)
    else:
        print("every translation is current")
    return 0


def cmd_translations(args) -> int:
    from seqcourse_grader.nbg import assignments
    from seqcourse_grader.translations import (
        LANGUAGES,
        message_status,
        status,
        update,
        update_messages,
    )

    if args.action == "update":
        for lang in args.language or list(LANGUAGES):
            for aid in assignments():
                added, changed, removed = update(lang, aid)
                if added or changed or removed:
                    print(f"translations/{lang}/{aid}.po: {added} new, {changed} changed (marked fuzzy), "
                          f"{removed} removed (obsolete)")
            added, removed = update_messages(lang)
            if added or removed:
                print(f"seqcourse/locale/{lang}.po: {added} new check messages, {removed} removed (obsolete)")
    lines = status() + message_status()
    for line in lines:
        print(line)
    if not lines:
        print("every translation is current")
    return 0


def cmd_selfgrade(args) -> int:
    from seqcourse_grader.kernels import zygote

    zygote()   # first: it imports torch and the course while this process imports nbgrader
    from seqcourse_grader.classroom import grade_notebook
    from seqcourse_grader.nbg import assignments

    nb = Path(args.notebook).resolve()
    if not nb.is_file():
        raise SystemExit(f"course selfgrade: no such file: {nb}")
    aid = args.lesson or nb.parent.name
    if aid not in assignments():
        raise SystemExit(f"course selfgrade: cannot tell the lesson of {nb} (its folder is "
                         f"{nb.parent.name!r}); pass --lesson, one of: {', '.join(assignments())}")
    valid_notebook(nb, "selfgrade", f"lessons/{aid}/")
    print(f"grading {nb} as lesson {aid} (the ci budget, in the grading sandbox)...")
    try:
        # One thread, as in class grading: the lessons' small tensors gain nothing from a second one,
        # and torch's threads spin against any other busy process (lesson 07 took 191 s instead of
        # 11 s with one core busy and two threads; 12 s with one thread).
        result = grade_notebook(aid, nb, "me", threads=1)
    except RuntimeError as exc:   # the lesson itself could not be generated: nbgrader's own error
        raise SystemExit(f"course selfgrade: grading failed, nothing was scored.\n{exc}") from None
    print(result.summary(aid))
    if result.score is None:
        print("nothing was scored: see the reasons above")
    return 0 if result.score is not None and result.score == result.max_score else 1


def _course(args):
    from seqcourse_grader.course import Course
    from seqcourse_grader.nbg import assignments

    course = Course(args.course, db_url=args.db_url)
    if not (course.source / args.id).is_dir():
        known = ", ".join(assignments(course.source)) if course.source.is_dir() else "none"
        raise SystemExit(f"course: no lesson {args.id!r} in {course.source}; known: {known}")
    return course


def cmd_collect(args) -> int:
    from seqcourse_grader.collect import DEFAULT_ZIP_REGEXP, collect_folder, collect_zip

    course = _course(args)
    source = Path(args.source)
    if source.suffix == ".zip":
        got = collect_zip(course, args.id, source, args.regexp or DEFAULT_ZIP_REGEXP)
    elif source.is_dir():
        got = collect_folder(course, args.id, source)
    else:
        raise SystemExit(f"course collect: {source} is neither a folder nor a .zip file")
    print(f"collected {len(got)} submissions of {args.id} into {course.submitted}: {', '.join(got)}")
    if not got:
        print("nothing matched: for a zip, check --regexp against its file names")
    return 0 if got else 1


def cmd_autograde(args) -> int:
    from seqcourse_grader.classroom import grade_class
    from seqcourse_grader.course import STATUS_GRADED
    from seqcourse_grader.result import Limits

    course = _course(args)
    limits = Limits(memory_mb=args.memory_mb, cpu_seconds=args.cpu_seconds, processes=args.processes,
                    cell_timeout=args.cell_timeout, submission_timeout=args.submission_timeout,
                    max_notebook_mb=args.max_notebook_mb)
    students = args.student or None
    if not (students or course.students(args.id)):
        raise SystemExit(f"course autograde: no submissions of {args.id} in {course.submitted}; "
                         "run `course collect` first")
    print(f"grading {args.id} on {args.scheduler} with {args.workers or 'all'} workers; limits: {limits.describe()}")
    results = grade_class(course, args.id, students=students, workers=args.workers, limits=limits,
                          keep=args.keep, scheduler=args.scheduler)
    width = max(len(r.student) for r in results)
    for r in results:
        score = "  -  " if r.score is None else f"{r.score:5g}"
        why = "; ".join(r.reasons) if r.status != STATUS_GRADED else "; ".join(r.notes)
        print(f"{r.student:<{width}}  {score}  {r.status:<12}  {why[:150]}")
    review = sum(r.status != STATUS_GRADED for r in results)
    print(f"{len(results)} submissions recorded in {course.db_url}: {len(results) - review} graded, "
          f"{review} need review (`course export {args.id}` writes the table)")
    return 1 if review else 0


def cmd_feedback(args) -> int:
    from seqcourse_grader.feedback import generate_feedback

    course = _course(args)
    run = generate_feedback(course, args.id, args.student or None)
    for student, path in run.written.items():
        print(f"{student}: {path}")
    for student, why in run.skipped.items():
        print(f"{student}: SKIPPED: {why}")
    for student, why in run.failed.items():
        print(f"{student}: FAILED: {why}")
    print(f"feedback for {len(run.written)} students (hidden tests cleared); {len(run.skipped)} skipped, "
          f"{len(run.failed)} failed")
    return 1 if run.failed or run.skipped else 0


def _export_canvas(course, args, roster: list[dict], out: Path) -> int:
    """Write the Canvas import CSV; 1 when a submitter is missing from the roster."""
    from seqcourse_grader.gradebook import grade_rows
    from seqcourse_grader.lms import canvas_table, write_table

    _, rows, maxima = grade_rows(course, args.id)
    try:
        export = canvas_table(rows, roster, args.column or args.id, sum(maxima.values()), args.match)
    except ValueError as exc:
        raise SystemExit(f"course export: {exc}") from None
    print(f"wrote {write_table(export.table, out)}: {export.scored} scores; blank: "
          f"{len(export.review)} submissions that need review, {len(export.missing)} roster "
          "students without a submission")
    if export.unmatched:
        print(f"WARNING: {len(export.unmatched)} submitters are not in the roster (by --match "
              f"{args.match}), so not in {out}: {', '.join(export.unmatched)}")
    return 1 if export.unmatched else 0


def cmd_export(args) -> int:
    from seqcourse_grader.lms import read_roster
    from seqcourse_grader.reports import export_csv, plot_scores

    roster = None
    if args.format == "canvas":
        if not args.roster:
            raise SystemExit("course export: --format canvas needs --roster ROSTER.csv, the CSV from "
                             "Canvas's Grades > Export > Export Entire Gradebook")
        try:
            roster = read_roster(args.roster)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"course export: {exc}") from None
    course = _course(args)
    code = 0
    if roster is not None:
        out = Path(args.output or f"{args.id}-canvas.csv")
        code = _export_canvas(course, args, roster, out)
    else:
        out = Path(args.output or f"{args.id}-grades.csv")
        print(f"wrote {export_csv(course, args.id, out)}")
    if args.plot != "none":
        print(f"wrote {plot_scores(course, args.id, args.plot or out.with_suffix('.png'))}")
    return code


def cmd_student_edition(args) -> int:
    from seqcourse_grader.edition import build_student_edition
    from seqcourse_grader.nbg import assignments
    from seqcourse_grader.schedule import resolve

    known = assignments()
    try:
        if args.all:
            lessons = None
        elif args.through:
            last = resolve([args.through], known)[0]
            lessons = known[: known.index(last) + 1]
        elif args.lessons:
            lessons = resolve(args.lessons, known)
        else:
            raise SystemExit("course student-edition: say which lessons: --lessons 01 02 (or --through 02) "
                             "for a class, following autograder/schedule.toml; --all for a self-learner")
        out = build_student_edition(Path(args.out), lessons, reveal_early=args.reveal_early,
                                    site_url=args.site_url, language=args.language)
    except (ValueError, PermissionError) as exc:
        raise SystemExit(f"course student-edition: {exc}") from None
    files = sorted(p for p in out.rglob("*") if p.is_file())
    print(f"wrote the student edition to {out}: {len(files)} files "
          f"({sum(p.stat().st_size for p in files) / 2**20:.1f} MB); see its README.md")
    return 0


def cmd_site(args) -> int:
    from seqcourse_grader.nbg import assignments
    from seqcourse_grader.schedule import resolve
    from seqcourse_grader.site import build_site

    lessons = resolve(args.lessons, assignments()) if args.lessons else None
    try:
        report = build_site(Path(args.out), lessons, args.languages)
    except (ValueError, FileExistsError, RuntimeError) as exc:
        raise SystemExit(f"course site: {exc}") from None
    stubs = "; ".join(f"{aid}: {', '.join(names)}" for aid, names in report.placeholders.items() if names)
    print(f"wrote the course site to {report.out} ({len(report.lessons)} lessons, {report.seconds:.0f} s); "
          f"open {report.out / 'index.html'}")
    if stubs:
        print(f"earlier lessons' answers shown as stubs: {stubs}")
    return 0


def cmd_mistakes(args) -> int:
    from seqcourse_grader.mistakes import charge_report, check_mistakes

    results = check_mistakes(args.id, progress=print)
    report = charge_report(results)
    for r in results:
        charged = sorted({f.exercise for f in r.cascades})
        print(f"{'caught' if r.caught else 'MISSED'}{' (visible)' if r.caught_by_visible else ''}  "
              f"{r.mistake.cell}/{r.mistake.name} [{r.mistake.kind or '-'}]: {r.mistake.why}"
              + (f"\n    ALSO COSTS POINTS IN: {', '.join(charged)}" if charged else ""))
    for line in report["broken_later"]:
        print("later cell broken:", line)
    print(f"{report['mistakes'] - len(report['missed'])} of {report['mistakes']} mistakes lose points; "
          f"{len(report['cascades'])} cost points in another exercise; the visible tests alone catch "
          f"{report['visible_rate']:.0%}")
    return 1 if report["missed"] or report["cascades"] else 0


def cmd_run_solution(args) -> int:
    import time

    from seqcourse_grader.outputs import run_solution

    for aid in args.ids:
        path, start = lesson_notebook(aid), time.perf_counter()
        print(f"running {path} under the {args.profile} profile...")
        bars = run_solution(path, args.profile)
        print(f"  stored its outputs in {time.perf_counter() - start:.0f} s ({bars} progress bars kept as "
              f"their final text); now run `course release {aid}`")
    return 0


def _instructor_commands(sub) -> None:
    """Commands that need the grading tools and the full course (not in a student edition)."""
    from seqcourse.i18n import LANGUAGES

    p = sub.add_parser("release", help="regenerate lessons/ from solutions/")
    p.add_argument("ids", nargs="*", help="lesson ids (default: all)")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("check-release", help="fail if lessons/ is out of date")
    p.add_argument("ids", nargs="*")
    p.set_defaults(func=cmd_check_release)
    from seqcourse_grader.result import Limits

    def course_args(p):
        p.add_argument("id", help="lesson id, e.g. 01-rnn-cell")
        p.add_argument("--course", help="course folder (default: this repository)")
        p.add_argument("--db-url", help="gradebook (default: SEQCOURSE_GRADEBOOK or "
                                        "autograder/gradebook.db); e.g. postgresql://user@host/db")

    p = sub.add_parser("collect", help="copy submissions into the course")
    course_args(p)
    p.add_argument("source", help="a folder of <student>.ipynb files or <student>/ folders, or an LMS .zip")
    p.add_argument("--regexp", help="for a zip: a regular expression naming student_id and file_id in "
                                    "each file name (default: Canvas's <student>_<n>_<n>_<file>)")
    p.set_defaults(func=cmd_collect)
    p = sub.add_parser("autograde", help="grade the class: isolated, limited, in parallel",
                       description="Grade every collected submission in its own limited kernel; "
                                   "statuses and scores go to the gradebook.")
    course_args(p)
    d = Limits()
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--workers", type=int, help="worker processes (default: the number of cores)")
    p.add_argument("--scheduler", default="pool",
                   help="pool: processes on this machine (default); local: a Dask LocalCluster; "
                        "tcp://HOST:8786 (or tls://): an existing Dask cluster (see the README)")
    p.add_argument("--memory-mb", type=int, default=d.memory_mb, help="kernel address space (MB)")
    p.add_argument("--cpu-seconds", type=int, default=d.cpu_seconds, help="kernel CPU time")
    p.add_argument("--processes", type=int, default=d.processes, help="extra processes (non-root users)")
    p.add_argument("--cell-timeout", type=int, default=d.cell_timeout, help="seconds per cell")
    p.add_argument("--submission-timeout", type=int, default=d.submission_timeout,
                   help="seconds per notebook")
    p.add_argument("--max-notebook-mb", type=int, default=d.max_notebook_mb,
                   help="larger notebook files are not run")
    p.add_argument("--keep", action="store_true", help="keep the scratch folders (for debugging)")
    p.set_defaults(func=cmd_autograde)
    p = sub.add_parser("feedback", help="feedback HTML for graded students")
    course_args(p)
    p.add_argument("--student", action="append")
    p.set_defaults(func=cmd_feedback)
    p = sub.add_parser("export", help="grades CSV per exercise, with status, and a score plot",
                       description="Write the grades CSV (per exercise, with each status) or, with "
                                   "--format canvas, a Canvas gradebook-import CSV: a score for each "
                                   "graded submission, a blank for one that needs review or is "
                                   "missing. Exits 1 when a submitter is not in the roster.")
    course_args(p)
    p.add_argument("--format", choices=["nbgrader", "canvas"], default="nbgrader",
                   help="nbgrader: per-exercise CSV (default); canvas: Canvas gradebook import")
    p.add_argument("--roster", help="for canvas: the CSV from Canvas's Grades > Export > Export "
                                    "Entire Gradebook")
    p.add_argument("--column", help="for canvas: the assignment column (default: the lesson id); "
                                    "Canvas matches an existing assignment by 'Name (canvas id)', "
                                    "e.g. 'RNN cell (123456)', as in its export; another name "
                                    "creates a new assignment")
    p.add_argument("--match", choices=["sis_login", "sis_user", "id"], default="sis_login",
                   help="for canvas: the roster column holding nbgrader's student ids: SIS Login ID "
                        "(default), SIS User ID or ID (Canvas's user id)")
    p.add_argument("-o", "--output", help="CSV path (default: <id>-grades.csv, or <id>-canvas.csv)")
    p.add_argument("--plot", help="PNG path (default: next to the CSV; 'none' for no plot)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("student-edition", help="write the student edition: lessons, library, data",
                       description="Write what students get. A class gets the lessons released so far "
                                   "(--lessons or --through); a lesson whose given code shows the answers "
                                   "of a lesson whose deadline (autograder/schedule.toml) has not passed is "
                                   "refused. A self-learner gets every lesson (--all).")
    p.add_argument("out", help="a new or empty folder")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--lessons", nargs="+", metavar="ID", help="these lessons (ids or numbers: 01 02)")
    which.add_argument("--through", metavar="ID", help="every lesson up to this one")
    which.add_argument("--all", action="store_true", help="every lesson: a self-learner's edition")
    p.add_argument("--reveal-early", action="store_true",
                   help="release lessons whose given code shows answers before those lessons' deadlines")
    p.add_argument("--language", choices=("en", *LANGUAGES), default="en",
                   help="the language of the lessons' prose (code, grade ids and grading stay the same)")
    p.add_argument("--site-url", metavar="URL", help="where the class reads the course site (course site OUT, "
                                                      "published): the edition's README links it")
    p.set_defaults(func=cmd_student_edition)
    p = sub.add_parser("translations", help="the lessons' translations: status, or update the catalogues",
                       description="status: which cells of which translation show the English (stale or "
                                   "missing). update: bring translations/<lang>/<lesson>.po up to lessons/ "
                                   "(new cells empty, changed cells fuzzy with the previous English).")
    p.add_argument("action", choices=("status", "update"))
    p.add_argument("--language", nargs="+", choices=tuple(LANGUAGES))
    p.set_defaults(func=cmd_translations)
    p = sub.add_parser("site", help="build the course site (HTML, offline, no answers)",
                       description="Build the course as a website with Sphinx and myst-nb: a home page with "
                                   "the lessons table and a page per lesson with the stored cpu run's outputs. "
                                   "It holds no answer of any lesson and loads nothing from the network.")
    p.add_argument("out", help="a new or empty folder")
    p.add_argument("--lessons", nargs="+", metavar="ID", help="only these lessons (default: every lesson)")
    p.add_argument("--languages", nargs="+", choices=("en", *LANGUAGES),
                   help="English and these translations (default: all four)")
    p.set_defaults(func=cmd_site)
    p = sub.add_parser("mistakes", help="check that each catalogued mistake loses points, in its own "
                                        "exercise only")
    p.add_argument("id")
    p.set_defaults(func=cmd_mistakes)
    p = sub.add_parser("run-solution", help="re-run a solution notebook in place to store real outputs "
                                            "(progress bars kept as their final text)")
    p.add_argument("ids", nargs="+", help="lesson ids")
    p.add_argument("--profile", default="cpu", choices=("ci", "cpu", "gpu"), help="the budget (default: cpu)")
    p.set_defaults(func=cmd_run_solution)


def main(argv: list[str] | None = None) -> int:
    from seqcourse_grader import quick_nbformat

    quick_nbformat()
    parser = argparse.ArgumentParser(prog="course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    student_commands(sub, selfgrade=cmd_selfgrade)
    _instructor_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
