"""Where grading tasks run: a local process pool, or a Dask cluster (``LocalCluster`` or an existing
scheduler at ``tcp://HOST:8786``).

Either way a task (see :func:`seqcourse.grading.submission.grade_one`) carries its submission's
bytes and the zipped class template, and comes back as a :class:`Result` with the autograded
notebook; the caller alone writes the gradebook, through ``on_result``, as results arrive. A worker
that dies is retried once; the second loss is recorded as "needs review", so every task ends with
a result.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from seqcourse.grading.result import Result
from seqcourse.grading.submission import grade_one

LOST_TWICE = "the grading worker died twice on this submission"
WORKER_LOST = "grading worker lost"


def failed(task: dict, why: str) -> Result:
    result = Result(task["student"])
    result.review(why)
    return result


def run(tasks: list[dict], template: bytes, on_result: Callable[[Result], None],
        scheduler: str = "pool", workers: int | None = None) -> None:
    """Grade every task; call ``on_result`` once per task, in the caller's process."""
    workers = max(1, workers or os.cpu_count() or 1)
    if scheduler == "pool":
        _run_pool(tasks, template, on_result, workers)
    elif scheduler == "local" or scheduler.startswith(("tcp://", "tls://")):
        _run_dask(tasks, template, on_result, scheduler, workers)
    else:
        raise ValueError(f"--scheduler must be pool, local or tcp://HOST:PORT (tls:// too), not {scheduler!r}")


def _run_pool(tasks, template, on_result, workers) -> None:
    pending, tries = list(tasks), {t["student"]: 0 for t in tasks}
    ctx = multiprocessing.get_context("spawn")
    while pending:
        # A worker that dies (the OOM killer, say) breaks the pool: start a new one for the
        # submissions still pending, and give up on one only after two tries.
        broken = []
        with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx) as pool:
            futures = {pool.submit(grade_one, dict(task, template=template)): task for task in pending}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    tries[task["student"]] += 1
                    if tries[task["student"]] < 2:
                        broken.append(task)
                        continue
                    result = failed(task, LOST_TWICE)
                except Exception as e:  # a bug in the grader: record it, grade the rest
                    result = failed(task, f"the grader failed on this submission: {type(e).__name__}: {e}")
                on_result(result)
        pending = broken


# ------------------------------------------------------------------------------------------- Dask
class _Helper:
    """A grading process kept by a Dask worker between tasks. Dask runs tasks in threads of a
    daemonic process, which may not start multiprocessing children, and grading forks; this plain
    subprocess may. Tasks and results travel as length-prefixed pickles over its stdin/stdout."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "seqcourse.grading.scheduler"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def grade(self, task: dict) -> Result:
        data = pickle.dumps(task)
        self.proc.stdin.write(len(data).to_bytes(8, "big") + data)
        self.proc.stdin.flush()
        size = int.from_bytes(self.proc.stdout.read(8) or b"\0", "big")
        if not size:
            raise EOFError(f"the grading process exited with code {self.proc.wait()}")
        return pickle.loads(self.proc.stdout.read(size))


_HELPERS = threading.local()


def grade_on_worker(task: dict, template: bytes) -> Result:
    """A Dask task: grade in this worker's helper process; a helper that dies is replaced once."""
    task = dict(task, template=template)
    for attempt in (1, 2):
        if getattr(_HELPERS, "helper", None) is None:
            _HELPERS.helper = _Helper()
        try:
            return _HELPERS.helper.grade(task)
        except (EOFError, OSError):
            _HELPERS.helper = None
            if attempt == 2:
                return failed(task, LOST_TWICE)
    raise AssertionError("unreachable")


def _serve_helper() -> None:
    """``python -m seqcourse.grading.scheduler``: the helper's loop (stdout carries only results)."""
    tasks, results = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while header := tasks.read(8):
        task = pickle.loads(tasks.read(int.from_bytes(header, "big")))
        try:
            result = grade_one(task)
        except Exception as e:  # a bug in the grader: record it, grade the rest
            result = failed(task, f"the grader failed on this submission: {type(e).__name__}: {e}")
        data = pickle.dumps(result)
        results.write(len(data).to_bytes(8, "big") + data)
        results.flush()


def _client(scheduler: str, workers: int):
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler != "local":
        return Client(scheduler, timeout="30s"), None
    # A task whose worker is lost is run again once, then reported (KilledWorker).
    dask.config.set({"distributed.scheduler.allowed-failures": 1})
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, worker_dashboard_address=None, silence_logs=40)
    return Client(cluster), cluster


def _run_dask(tasks, template, on_result, scheduler, workers) -> None:
    from dask.distributed import as_completed as dask_completed

    client, cluster = _client(scheduler, workers)
    try:
        # The template, the same for all, is copied to every worker once. Each submission's files
        # travel inside its task: the scheduler keeps them, so a task whose worker dies can run
        # again (data scattered to one worker dies with it).
        shared = client.scatter(template, broadcast=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sending large graph")   # a large notebook
            futures = {client.submit(grade_on_worker, task, shared, key=f"grade-{task['aid']}-{task['student']}",
                                     pure=False): task for task in tasks}
        for future in dask_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except Exception as e:  # KilledWorker: lost twice; anything else: a grader bug
                lost = type(e).__name__ == "KilledWorker"
                result = failed(task, WORKER_LOST if lost else
                                f"the grader failed on this submission: {type(e).__name__}: {e}")
            on_result(result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    _serve_helper()
