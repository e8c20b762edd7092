"""What an instructor reads after grading: the grades as CSV (a row per student, a column per
graded cell, with statuses and reasons) and a plot of how the points fell per exercise."""

from __future__ import annotations

from pathlib import Path

from seqcourse_grader.course import STATUS_GRADED, Course
from seqcourse_grader.gradebook import grade_rows


def export_csv(course: Course, aid: str, path: Path | str) -> Path:
    import csv

    header, rows, _ = grade_rows(course, aid)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_scores(course: Course, aid: str, path: Path | str) -> Path:
    """One panel per graded cell: how many students earned each share of its points."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    header, rows, maxima = grade_rows(course, aid)
    cells = list(maxima)
    graded = [r for r in rows if r["score"] != ""]
    cols = min(4, len(cells) + 1)
    nrows = -(-(len(cells) + 1) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    panels = [("total", sum(maxima.values()), [float(r["score"]) for r in graded])] + \
        [(c, maxima[c], [float(r[c]) for r in graded if r[c] != ""]) for c in cells]
    for ax, (label, top, values) in zip(axes.flat, panels, strict=False):
        bins = [i * top / 10 for i in range(11)]
        ax.hist(values, bins=bins, color="tab:blue" if label != "total" else "tab:green", edgecolor="white")
        ax.set_title(f"{label} (max {top:g})", fontsize=9)
        ax.set_xlim(0, top)
        ax.set_xlabel("points", fontsize=8)
        ax.set_ylabel("students", fontsize=8)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    review = sum(r["status"] != STATUS_GRADED for r in rows)
    fig.suptitle(f"{aid}: {len(graded)} scored, {review} need review (not plotted when unscored)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
