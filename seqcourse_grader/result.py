"""What grading one submission produced (:class:`Result`, always with a status) and the limits it
ran under (:class:`Limits`): plain data, sent between processes and machines."""

from __future__ import annotations

from dataclasses import dataclass, field

from seqcourse_grader.course import STATUS_GRADED, STATUS_REVIEW


@dataclass(frozen=True)
class Limits:
    """Per-submission limits. The defaults suit this course's lessons under the ci budget."""

    memory_mb: int = 3072          # address space of the grading kernel
    cpu_seconds: int = 600         # CPU time of the grading kernel
    processes: int = 64            # extra processes/threads the kernel's user may start (non-root)
    open_files: int = 256
    file_size_mb: int = 100        # largest file the kernel may write
    cell_timeout: int = 180        # seconds per cell, then the cell is interrupted
    submission_timeout: int = 900  # seconds for the whole notebook, then the kernel is killed
    max_notebook_mb: int = 50      # larger submissions are not run

    def describe(self) -> str:
        return (f"memory {self.memory_mb} MB, CPU {self.cpu_seconds} s, {self.processes} processes, "
                f"files {self.file_size_mb} MB, cell {self.cell_timeout} s, notebook "
                f"{self.submission_timeout} s, submission size {self.max_notebook_mb} MB")


@dataclass
class Result:
    """What grading one submission produced."""

    student: str
    status: str = STATUS_GRADED
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)      # grade id -> points, notebook order
    max_scores: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)      # grade id -> where and why it failed
    sha256: str = ""
    seconds: float = 0.0
    autograded: bytes | None = field(default=None, repr=False)  # the autograded notebook

    def review(self, reason: str) -> None:
        self.status = STATUS_REVIEW
        if reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def score(self) -> float | None:
        return sum(self.scores.values()) if self.scores else None

    @property
    def max_score(self) -> float:
        return sum(self.max_scores.values())

    def summary(self, title: str) -> str:
        """Per graded cell: points, and for a failure where and why (the call first)."""
        score = "no score" if self.score is None else f"{self.score:g} / {self.max_score:g} points"
        lines = [f"{title}: {score} ({self.status})"]
        for gid, points in self.scores.items():
            top = self.max_scores[gid]
            lines.append(f"  {'ok  ' if points == top else 'FAIL'} {gid:<28} {points:g}/{top:g}")
            if points < top and self.messages.get(gid):
                lines.extend("         " + ln for ln in self.messages[gid].strip().splitlines()[:14])
        lines += [f"  needs review: {r}" for r in self.reasons] + [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
