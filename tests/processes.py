"""What a command left running: processes that carry a marker in their environment.

A grading command's processes (pool workers, Dask workers and their helpers, kernel zygotes,
kernels) inherit its environment, so a test runs the command with ``SEQCOURSE_TEST_RUN=<marker>``
and, once it has returned, lists every process still alive whose environment holds the marker.
Other tests running at the same time carry other markers, or none.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

VARIABLE = "SEQCOURSE_TEST_RUN"


def marker() -> str:
    return uuid.uuid4().hex


def still_running(mark: str) -> list[str]:
    """``pid: command line`` of each live process (zombies left out) whose environment holds ``mark``."""
    needle = f"{VARIABLE}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:      # gone meanwhile, or not ours to read
            continue
        found.append(f"{entry.name}: {command.strip()[:200]}")
    return found
