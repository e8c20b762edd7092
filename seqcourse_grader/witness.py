"""What the grading sandbox saw, written where the submission cannot forge it, and read back.

The sandbox's audit hook (:mod:`seqcourse_grader.sandbox`) and its vault
(:mod:`seqcourse_grader.vault`) record, one JSON line each, every refusal and finding (a process,
a protected path, reading frames, a reference called outside its cell...) and two attestations per
graded cell: it *started* its hidden tests, and it *finished* them (the last hidden call returned).
Each line carries an HMAC under a key that only the grading process and the hook hold (the key
travels in the sandbox's policy file, which the hook locks away before the first cell runs), and a
running number: a line the submission wrote, or lines it removed, show. The grader
(:mod:`seqcourse_grader.submission`) marks for review every finding, a forged or missing line,
and every graded cell that earned points without the vault seeing it finish: a failure hidden
from nbgrader (a custom exception handler, a replaced test) cannot earn points.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ATTESTATIONS = ("started", "finished")


class Witness:
    """The kernel's side: appends authenticated lines to an open file descriptor."""

    def __init__(self, fd: int | None, key: bytes):
        self._fd, self._key, self._n = fd, key, 0

    def record(self, kind: str, detail: str) -> None:
        if self._fd is None:
            return
        self._n += 1
        line = json.dumps({"n": self._n, "kind": kind, "detail": str(detail)[:300]}, sort_keys=True)
        mac = hmac.new(self._key, line.encode(), "sha256").hexdigest()
        try:
            os.write(self._fd, f"{mac} {line}\n".encode())
        except OSError:     # closed by the submission: the missing lines are the finding
            pass


@dataclass
class Seen:
    """What a log shows: findings (``{"kind", "detail"}``), attested cells, and tampering."""

    findings: list[dict] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    forged: int = 0          # lines whose HMAC does not match
    missing: bool = False    # numbers skipped: lines removed


def read_log(path: Path, key: bytes) -> Seen:
    seen, expected = Seen(), 1
    if not path.is_file():
        return seen
    for raw in path.read_bytes().decode(errors="replace").splitlines():
        mac, _, line = raw.partition(" ")
        if not hmac.compare_digest(mac, hmac.new(key, line.encode(), "sha256").hexdigest()):
            seen.forged += 1
            continue
        entry = json.loads(line)
        seen.missing |= entry["n"] != expected
        expected = entry["n"] + 1
        if entry["kind"] == "started":
            seen.started.append(entry["detail"])
        elif entry["kind"] == "finished":
            seen.finished.add(entry["detail"])
        else:
            seen.findings.append({"kind": entry["kind"], "detail": entry["detail"]})
    return seen
