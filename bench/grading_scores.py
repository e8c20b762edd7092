"""Autograde a lesson's solution, stub, every catalogued mistake and the tampering attempts through
nbgrader, one notebook at a time, and record each score and the time it took.

    python bench/grading_scores.py 01-rnn-cell          # writes bench/results/<id>-grading.md

CI checks the same properties faster (mistakes at the exercise level); this is the end-to-end
figure, with nbgrader's real autograde for every row.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import nbformat
import nbformat.v4
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_tampering import TAMPERING, _first_mistakes  # noqa: E402

from seqcourse.paths import REPO_ROOT, lesson_notebook  # noqa: E402
from seqcourse_grader.catalogue import load_catalogue, notebook_with  # noqa: E402
from seqcourse_grader.classroom import grade_notebook, make_template  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lesson", nargs="?", default="01-rnn-cell")
    args = parser.parse_args()
    aid = args.lesson
    rows = []
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        make_template(aid, Path(tmp) / "template")
        gen_s = time.perf_counter() - t

        def grade(label, notebook, detail=""):
            start = time.perf_counter()
            report = grade_notebook(aid, notebook, f"s{len(rows)}")
            secs = time.perf_counter() - start
            rows.append((label, detail, report.score or 0, report.max_score, report.status, secs))
            print(f"{label:<45} {report.score or 0:>4g}/{report.max_score:g}  {report.status:<12} {secs:5.1f} s",
                  flush=True)

        grade("solution", lesson_notebook(aid))
        grade("untouched stub", lesson_notebook(aid, "lessons"))
        for m in load_catalogue(aid):
            grade(f"mistake {m.cell}/{m.name}", notebook_with(aid, {m.cell: m.source}), m.why)
        wrong = _first_mistakes(aid)
        for name, code in sorted(TAMPERING.items()):
            grade(f"tamper {name} + wrong answers", notebook_with(aid, wrong, prepend=code))
        grade("tamper rebind helpers + wrong answers", notebook_with(
            aid, wrong, prepend="check_close = check_true = check_shape = check_type = lambda *a, **k: None"))
        grade("tamper patch-torch-allclose + right answers",
              notebook_with(aid, {}, prepend=TAMPERING["patch-torch-allclose"]))
        moved = notebook_with(aid, wrong)
        moved.cells.insert(0, nbformat.v4.new_code_cell(TAMPERING["patch-torch-allclose"]))
        grade("tamper patch-torch-allclose in a cell above setup + wrong answers", moved)
        grade("tamper no-op hidden tests + rebind helpers + wrong answers", notebook_with(
            aid, wrong, prepend="from seqcourse.hidden_tests import load_hidden\n"
                                f"h = load_hidden('lesson{aid[:2]}')\n"
                                "for n in dir(h):\n    if n.startswith('test_'):\n"
                                "        setattr(h, n, lambda *a, **k: None)\n"
                                "check_close = check_true = check_shape = check_type = lambda *a, **k: None"))

    times = sorted(r[5] for r in rows)
    out = REPO_ROOT / "bench" / "results" / f"{aid}-grading.md"
    lines = [f"# {aid}: scores and autograde times through nbgrader", "",
             f"Command: `python bench/grading_scores.py {aid}`  ",
             f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
             f"Python {platform.python_version()}, torch {torch.__version__}; one notebook at a time.  ",
             f"generate_assignment: {gen_s:.1f} s; autograde per notebook: median {times[len(times) // 2]:.1f} s, "
             f"min {times[0]:.1f} s, max {times[-1]:.1f} s.", "",
             "| submission | score | status | seconds |", "|---|---|---|---|"]
    for label, detail, score, max_score, status, secs in rows:
        why = f" ({detail})" if detail else ""
        lines.append(f"| {label}{why} | {score:g} / {max_score:g} | {status} | {secs:.1f} |")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
