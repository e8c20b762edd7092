"""Where grading tasks run: a local process pool, or a Dask cluster (``LocalCluster`` or an existing
scheduler at ``tcp://HOST:8786``).

Either way a task (see :func:`seqcourse_grader.submission.grade_one`) carries its submission's
bytes and the zipped class template, and comes back as a :class:`Result` with the autograded
notebook; the caller alone writes the gradebook, through ``on_result``, as results arrive. A worker
that dies is retried once; the second loss is recorded as "needs review", so every task ends with
a result.

The template may be given as a function: the workers are then started first, and each starts its
kernel zygote (importing torch and the course) while the caller generates the lesson.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import subprocess
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from seqcourse_grader import quick_nbformat

quick_nbformat()   # every process that imports this one grades (the CLI, pool workers, helpers)

from seqcourse_grader.result import Result  # noqa: E402 (after quick_nbformat: it imports nbformat)
from seqcourse_grader.submission import grade_one  # noqa: E402

LOST_TWICE = "the grading worker died twice on this submission"
WORKER_LOST = "grading worker lost"


def failed(task: dict, why: str) -> Result:
    result = Result(task["student"])
    result.review(why)
    return result


def run(tasks: list[dict], template: bytes | Callable[[], bytes], on_result: Callable[[Result], None],
        scheduler: str = "pool", workers: int | None = None) -> None:
    """Grade every task; call ``on_result`` once per task, in the caller's process. ``template``:
    the zipped template, or a function that makes it (called once the workers are starting)."""
    workers = max(1, workers or os.cpu_count() or 1)
    if not tasks:
        _made(template)
        return
    if scheduler == "pool":
        _run_pool(tasks, template, on_result, workers)
    elif scheduler == "local" or scheduler.startswith(("tcp://", "tls://")):
        _run_dask(tasks, template, on_result, scheduler, workers)
    else:
        raise ValueError(f"--scheduler must be pool, local or tcp://HOST:PORT (tls:// too), not {scheduler!r}")


def _made(template: bytes | Callable[[], bytes]) -> bytes:
    return template() if callable(template) else template


def _warm() -> None:
    """A worker's first act: start its kernel zygote, which imports while the template is made."""
    from seqcourse_grader.kernels import zygote

    zygote()


def _run_pool(tasks, template, on_result, workers) -> None:
    pending, tries = list(tasks), {t["student"]: 0 for t in tasks}
    ctx = multiprocessing.get_context("spawn")
    warm = _warm if all(t.get("zygote", True) for t in tasks) else None

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx, initializer=warm)

    pool = new_pool()
    for _ in range(min(workers, len(pending))):
        pool.submit(int)   # each submit starts a worker now, before the template is ready
    try:
        template = _made(template)
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    while pending:
        # A worker that dies (the OOM killer, say) breaks the pool: start a new one for the
        # submissions still pending, and give up on one only after two tries.
        broken = []
        pool = pool or new_pool()
        with pool:
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
        pending, pool = broken, None


# ------------------------------------------------------------------------------------------- Dask
class _Helper:
    """A grading process kept by a Dask worker between tasks. Dask runs tasks in threads of a
    daemonic process, which may not start multiprocessing children, and grading forks; this plain
    subprocess may. Tasks and results travel as length-prefixed pickles over its stdin/stdout."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "seqcourse_grader.scheduler"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def stop(self, timeout: float = 30) -> None:
        try:
            self.proc.stdin.close()   # its loop ends, and it waits for its zygote as it exits
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()

    def grade(self, task: dict) -> Result:
        data = pickle.dumps(task)
        self.proc.stdin.write(len(data).to_bytes(8, "big") + data)
        self.proc.stdin.flush()
        size = int.from_bytes(self.proc.stdout.read(8) or b"\0", "big")
        if not size:
            raise EOFError(f"the grading process exited with code {self.proc.wait()}")
        return pickle.loads(self.proc.stdout.read(size))


# This worker's idle helpers: one per task thread at most, kept between tasks.
_IDLE: queue.SimpleQueue = queue.SimpleQueue()


def warm_worker() -> None:
    """Run on every worker as the cluster starts (``client.run``): a helper, importing already."""
    if _IDLE.empty():
        _IDLE.put(_Helper())


def stop_helpers() -> int:
    """Run on every worker when a class is done (``client.run``): end this worker's helpers and
    wait for them (each ends its zygote first), so that nothing the command started outlives it."""
    stopped = 0
    while True:
        try:
            helper = _IDLE.get_nowait()
        except queue.Empty:
            return stopped
        helper.stop()
        stopped += 1


def grade_on_worker(task: dict, template: bytes) -> Result:
    """A Dask task: grade in one of this worker's helper processes; a helper that dies is
    replaced once."""
    task = dict(task, template=template)
    for attempt in (1, 2):
        try:
            helper = _IDLE.get_nowait()
        except queue.Empty:
            helper = _Helper()
        try:
            result = helper.grade(task)
        except (EOFError, OSError):
            helper.proc.kill()
            if attempt == 2:
                return failed(task, LOST_TWICE)
            continue
        _IDLE.put(helper)
        return result
    raise AssertionError("unreachable")


def _serve_helper() -> None:
    """``python -m seqcourse_grader.scheduler``: the helper's loop (stdout carries only results)."""
    from seqcourse_grader.kernels import zygote

    tasks, results = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    zygote()   # importing while the first task is on its way
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
        client, cluster = Client(scheduler, timeout="30s"), None
    else:
        # A task whose worker is lost is run again once, then reported (KilledWorker). The workers'
        # own profiler samples their threads every 10 ms: it only competes with grading here.
        dask.config.set({"distributed.scheduler.allowed-failures": 1, "distributed.worker.profile.enabled": False,
                         "distributed.admin.system-monitor.gil.enabled": False})
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, worker_dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    client.run(warm_worker)
    return client, cluster


def _run_dask(tasks, template, on_result, scheduler, workers) -> None:
    from dask.distributed import as_completed as dask_completed

    # The cluster starts, and its workers' helpers start importing, while the template is made.
    with ThreadPoolExecutor(1) as starting:
        connecting = starting.submit(_client, scheduler, workers)
        try:
            template = _made(template)
        except BaseException:
            _close(*connecting.result())
            raise
        client, cluster = connecting.result()
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
        _close(client, cluster)


def _close(client, cluster) -> None:
    try:
        client.run(stop_helpers)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    _serve_helper()
