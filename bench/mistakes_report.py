"""The mistakes catalogue, lesson by lesson: its size per class of mistake, what the hidden and the
visible tests catch, cascades into other exercises, and later cells a mistake breaks.

Usage: python bench/mistakes_report.py [LESSON ...]   (default: every lesson)
Writes bench/results/mistakes.md. Each lesson runs its solution notebook once in one kernel and
follows every catalogued mistake through the rest of it (seqcourse_grader.mistakes).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections import Counter

os.environ.setdefault("SEQCOURSE_PROFILE", "ci")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from seqcourse.paths import REPO_ROOT  # noqa: E402
from seqcourse_grader.catalogue import CLASSES, load_catalogue  # noqa: E402
from seqcourse_grader.mistakes import charge_report, check_mistakes  # noqa: E402
from seqcourse_grader.nbg import assignments  # noqa: E402

OUT = REPO_ROOT / "bench" / "results" / "mistakes.md"


def main(lessons: list[str]) -> None:
    sizes, rows, details = [], [], []
    for aid in lessons:
        counts = Counter(m.kind for m in load_catalogue(aid))
        sizes.append(f"| {aid} | " + " | ".join(str(counts.get(k, 0)) for k in CLASSES)
                     + f" | {sum(counts.values())} |")
        start = time.perf_counter()
        results = check_mistakes(aid)
        seconds = time.perf_counter() - start
        report = charge_report(results)
        hidden_only = [f"{r.mistake.cell}/{r.mistake.name}" for r in results if r.caught and not r.caught_by_visible]
        rows.append(f"| {aid} | {report['mistakes']} | {report['mistakes'] - len(report['missed'])} | "
                    f"{len(report['cascades'])} | {report['visible_rate']:.0%} | {seconds:.0f} |")
        details.append(f"### {aid}\n\nCaught by the hidden tests only: "
                       + (", ".join(f"`{h}`" for h in hidden_only) or "none") + ".\n"
                       + "".join(f"\n- missed: {x}" for x in report["missed"])
                       + "".join(f"\n- cascade: {x}" for x in report["cascades"])
                       + "".join(f"\n- breaks a later cell: {x}" for x in report["broken_later"]) + "\n")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# The mistakes catalogue: what the tests catch, and where it costs points",
        "",
        "Command: `python bench/mistakes_report.py`  ",
        f"Machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        "the ci profile; mistakes followed through the rest of the notebook with shrunk training.",
        "",
        "## Catalogue size per class",
        "",
        "| lesson | " + " | ".join(CLASSES) + " | total |",
        "|---|" + "---|" * (len(CLASSES) + 1),
        *sizes,
        "",
        "Classes: " + "; ".join(f"**{k}**: {v}" for k, v in CLASSES.items()) + ".",
        "",
        "## What the tests catch",
        "",
        "*caught*: the mistake loses points in its own exercise; *cascades*: mistakes that also cost points "
        "in another exercise (must be 0); *visible alone*: the share a learner's visible tests catch "
        "without the hidden ones.",
        "",
        "| lesson | mistakes | caught | cascades | visible alone | seconds |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        *details,
    ])
    OUT.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:] or assignments())
