"""Where a collection's models run: in this process, in a pool of worker processes on this
machine, or as Ray tasks on a cluster. Every executor yields each model's result as it
finishes; a worker that dies (killed, out of memory, a node lost) has its model started
again, at most `RETRIES` more times, and then the model is recorded as failed.

An executor is a generator: closing it (the run was interrupted) stops its workers.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial

from analyzer.collection.work import Task, TaskResult
from analyzer.errors import InputError

__all__ = [
    "RETRIES",
    "Executor",
    "Finished",
    "Runner",
    "choose",
    "cores",
    "died",
    "pool",
    "ray_tasks",
    "serial",
]

RETRIES = 2  # starts after a worker's death, per model
RAY_EXTRA = "--ray needs Ray: pip install 'prunecard[ray]'"

Runner = Callable[[Task], TaskResult]
# what a model's run imports (torch, matplotlib), imported once by the forkserver instead
# of once per worker; transformers (a second more) only where models are loaded: --report
_PRELOAD = [
    "analyzer.collection.work",
    "analyzer.weights.sparsity",
    "analyzer.runtime.environment",
    "analyzer.pipeline",
    "analyzer.audit.checks",
    "analyzer.publish.figures",
    "matplotlib.pyplot",
]
_PRELOAD_REPORT = [*_PRELOAD, "transformers"]
# a generator: run_collection closes it on Ctrl-C, which stops the workers
Executor = Callable[[Sequence[Task], Runner], Generator["Finished", None, None]]


@dataclass(frozen=True)
class Finished:
    task: Task
    result: TaskResult
    attempts: int  # workers that started it


def died(task: Task, attempts: int, why: str) -> Finished:
    error = f"the worker running it died {attempts} times ({why}); out of memory?"
    return Finished(task, TaskResult(task.folder, (), None, error, {}), attempts)


def serial(tasks: Sequence[Task], runner: Runner) -> Generator[Finished, None, None]:
    """One after the other in this process (`--jobs 1`)."""
    for task in tasks:
        yield Finished(task, runner(task), 1)


def _worker_start(threads: int, env: dict[str, str]) -> None:
    """A pool worker: torch's threads split between the workers (no oversubscription), the
    driver's `env` (a forkserver's environment is the one it started with); SIGTERM unwinds
    like an exception, so the model's scratch folder is removed."""
    import torch

    os.environ.update(env)
    torch.set_num_threads(threads)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _env() -> dict[str, str]:
    """What workers take from the driver's environment: the records' fixed time, if set."""
    return {k: os.environ[k] for k in ("SOURCE_DATE_EPOCH",) if k in os.environ}


def cores() -> int:
    """The cores this process may run on (a container's or taskset's share)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def pool(tasks: Sequence[Task], runner: Runner, jobs: int) -> Generator[Finished, None, None]:
    """`jobs` worker processes; at most `jobs` models are in flight, so when a worker dies
    (which breaks the whole pool) the models it may have held are known and started again
    in a new pool."""
    import multiprocessing

    # forkserver: workers fork from a clean process (never from one whose threads torch
    # started), with the modules a model needs imported once
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        report = any(task.options.report for task in tasks)
        context.set_forkserver_preload(_PRELOAD_REPORT if report else _PRELOAD)
    threads = max(1, cores() // jobs)
    pending = deque(tasks)
    attempts: dict[str, int] = {}
    while pending:
        executor = ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_worker_start, initargs=(threads, _env())
        )
        running: dict[Future[TaskResult], Task] = {}
        try:
            while pending or running:
                broken = not _submit(executor, runner, jobs, pending, running, attempts)
                # a broken pool fails every future it holds, so waiting for all is short
                done, _ = wait(running, return_when=ALL_COMPLETED if broken else FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f].folder):
                    task = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        pending.appendleft(task)
                        continue
                    yield Finished(task, result, attempts[task.folder])
                if broken:  # every model in flight goes back; the pool is made again
                    for task in running.values():
                        pending.appendleft(task)
                    running.clear()
                    yield from _given_up(pending, attempts, "its process was killed")
                    break
        finally:
            _stop(executor)


def _submit(
    executor: ProcessPoolExecutor,
    runner: Runner,
    jobs: int,
    pending: deque[Task],
    running: dict[Future[TaskResult], Task],
    attempts: dict[str, int],
) -> bool:
    """Start models until `jobs` are in flight; False if the pool broke since the last wait
    (a worker died after its neighbour's model finished): the model stays queued, unstarted."""
    while pending and len(running) < jobs:
        task = pending[0]
        try:
            future = executor.submit(runner, task)
        except BrokenProcessPool:
            return False
        pending.popleft()
        attempts[task.folder] = attempts.get(task.folder, 0) + 1
        running[future] = task
    return True


def _given_up(pending: deque[Task], attempts: dict[str, int], why: str) -> Iterator[Finished]:
    """Models whose workers died RETRIES + 1 times leave the queue as failed."""
    for task in [t for t in pending if attempts.get(t.folder, 0) > RETRIES]:
        pending.remove(task)
        yield died(task, attempts[task.folder], why)


def _stop(executor: ProcessPoolExecutor) -> None:
    """Shut the pool down now: queued models cancelled, running ones' workers ended."""
    processes = list(getattr(executor, "_processes", {}).values())  # before shutdown clears it
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def ray_tasks(
    tasks: Sequence[Task], runner: Runner, address: str
) -> Generator[Finished, None, None]:
    """One Ray task per model, on whichever node has a free CPU; the task fetches its model
    into that node's Hub cache and returns only the records. Ray is joined at `address`
    ("auto": the cluster this machine belongs to) unless this process has joined one."""
    try:
        import ray
        from ray.exceptions import RayError, RayTaskError
    except ImportError:
        raise InputError(None, RAY_EXTRA) from None
    joined = not ray.is_initialized()
    if joined:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    env = _env()
    remote = ray.remote(num_cpus=1, max_retries=0)(runner).options(
        runtime_env={"env_vars": env} if env else None
    )
    attempts = {task.folder: 1 for task in tasks}
    refs = {remote.remote(task): task for task in tasks}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            task = refs.pop(ready[0])
            try:
                yield Finished(task, ray.get(ready[0]), attempts[task.folder])
            except RayTaskError as exc:  # the runner raised: a bug, reported as the model's
                error = f"internal error: {str(exc).splitlines()[0][:300]}"
                result = TaskResult(task.folder, (), None, error, {})
                yield Finished(task, result, attempts[task.folder])
            except RayError as exc:  # the worker or its node died
                if attempts[task.folder] > RETRIES:
                    yield died(task, attempts[task.folder], type(exc).__name__)
                    continue
                attempts[task.folder] += 1
                refs[remote.remote(task)] = task
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        if joined:
            ray.shutdown()


def choose(jobs: int, ray_address: str | None) -> tuple[Executor, str]:
    """The executor the options ask for, and how collection.json names it."""
    if ray_address:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise InputError(None, RAY_EXTRA)
        return partial(ray_tasks, address=ray_address), f"ray at {ray_address}"
    if jobs == 1:
        return serial, "serial"
    return partial(pool, jobs=jobs), f"pool of {jobs}"
