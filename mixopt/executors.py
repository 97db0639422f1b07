"""Executors run runner calls somewhere (this process, a local pool, Ray, Slurm) and hand back handles.

The contract: ``submit_many(fn, items) -> handles``, each handle with ``done()`` and ``result()``
(``result()`` re-raises what ``fn`` raised), and ``wait(handles)`` returning the ones that finished. The
controller keeps a batch in flight and proposes new mixtures as results stream back.
"""

from __future__ import annotations

import abc
import contextlib
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixopt.compat import pool_processes, submitit_job_class
from mixopt.errors import ConfigError, RunFailed, shown
from mixopt.registry import Registry

POLL_SECONDS = 0.2


class Executor(abc.ABC):
    @abc.abstractmethod
    def submit_many(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """Start ``fn(item)`` for every item; one handle per item, in order."""

    def wait(self, handles: Sequence[Any]) -> list[Any]:
        """Block until at least one handle is done; return the done ones."""
        while True:
            done = [h for h in handles if h.done()]
            if done or not handles:
                return done
            time.sleep(POLL_SECONDS)

    def job_id(self, handle: Any) -> str | None:
        """A scheduler job id to store with the trial, where there is one."""
        return None

    def reattach(self, job_id: str) -> Any | None:
        """A handle on a job submitted by an earlier controller, or None where it cannot be followed."""
        return None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(items[index]) or the exception it raised)`` in order of completion."""
        handles = self.submit_many(fn, items)
        index = {id(h): i for i, h in enumerate(handles)}
        pending = list(handles)
        while pending:
            for handle in self.wait(pending):
                pending.remove(handle)
                yield index[id(handle)], outcome(handle)

    def close(self) -> None:  # noqa: B027 (a no-op by default: only the executors that hold workers override it)
        """Release workers."""


def outcome(handle: Any) -> Any:
    """The handle's result, or the exception its call raised (never raised here)."""
    try:
        return handle.result()
    except Exception as exc:
        return exc


def set_threads(threads: int) -> None:
    """Pin torch and BLAS thread pools (on shared cores one thread can beat two). Torch imported later reads
    ``OMP_NUM_THREADS``, so a worker whose runner never uses torch does not pay for importing it."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def describe_exit(returncode: int) -> str:
    """A process's exit status in words: ``exit code 3``, or ``killed by SIGKILL (signal 9)``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name} (signal {-returncode})"
    except ValueError:
        return f"killed by signal {-returncode}"


class SerialExecutor(Executor):
    """Runs every item in the controller process, at submit time (debugging, cheap simulators)."""

    def submit_many(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        handles = []
        for item in items:
            future: Future = Future()
            try:
                future.set_result(fn(item))
            except Exception as exc:
                future.set_exception(exc)
            handles.append(future)
        return handles


class LocalExecutor(Executor):
    """A pool of ``workers`` spawned processes, each with ``threads`` torch threads.

    A worker that dies mid-run (``os._exit``, a crash in native code, the out-of-memory killer) breaks the
    whole pool. Its own item then fails with ``RunFailed`` naming the exit status; the items that the broken
    pool took down with it (still queued, or killed by the pool's SIGTERM) run again in a new pool.
    """

    MAX_RESTARTS = 3  # times one item is re-run after other workers broke its pool

    MAX_WORKERS = 1024  # more processes than this on one machine: use the ray or slurm executor

    def __init__(self, workers: int = 1, threads: int = 1) -> None:
        for option, value, most in (("workers", workers, self.MAX_WORKERS), ("threads", threads, None)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (most and value > most):
                raise ConfigError(f"executor 'local': option {option} must be an integer from 1"
                                  f"{f' to {most}' if most else ''} (got {shown(value)}); set executor.options.{option}")
        self.workers = workers
        self.threads = threads
        self._pool: ProcessPoolExecutor | None = None
        self._markers: Path | None = None  # one file per job: the pid of the worker that started it
        self._submitted = 0
        self._exit_codes: dict[int, int | None] = {}  # pid -> exit status of the workers of broken pools

    def submit_many(self, fn, items):
        if self._markers is None:
            self._markers = Path(tempfile.mkdtemp(prefix="mixopt-workers-"))
        jobs = []
        for item in items:
            self._submitted += 1
            jobs.append(self._submit(_PoolJob(fn, item, self._markers / f"{self._submitted}.pid")))
        return jobs

    def _submit(self, job: _PoolJob) -> _PoolJob:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self.threads,),
            )
        job.pool = self._pool
        try:
            job.future = self._pool.submit(_run_marked, job.fn, job.item, str(job.marker))
        except BrokenProcessPool as exc:  # a worker died since the last wait(): it re-submits, as for queued jobs
            job.future = Future()
            job.future.set_exception(exc)
        return job

    def wait(self, handles):
        while True:
            done = [job for job in handles if job.done()]
            broken = [job for job in done if job.broken()]
            if broken:
                self._recover(broken)
                continue
            if done or not handles:
                return done
            wait_futures([job.future for job in handles], return_when=FIRST_COMPLETED)

    def _recover(self, broken: list[_PoolJob]) -> None:
        """Fail the jobs whose own worker died; re-run the others in a new pool."""
        for pool in {id(job.pool): job.pool for job in broken if job.pool is not None}.values():
            processes = pool_processes(pool)
            if processes is not None:  # not yet shut down: read its workers (pid -> Process) first
                workers = dict(processes)
                pool.shutdown(wait=True)  # the pool's own thread has terminated and joined every worker
                self._exit_codes.update({pid: process.exitcode for pid, process in workers.items()})
            if pool is self._pool:
                self._pool = None
        for job in broken:
            pid = int(job.marker.read_text()) if job.marker.exists() else None
            code = self._exit_codes.get(pid) if pid is not None else None
            if pid is not None and code is not None and code != -signal.SIGTERM:
                job.failure = RunFailed(f"the worker process running this trial died: {describe_exit(code)} (from "
                                        "os._exit, a crash in native code, or the out-of-memory killer)")
            elif job.restarts >= self.MAX_RESTARTS:
                job.failure = RunFailed(f"the worker pool broke {job.restarts + 1} times while this trial ran")
            else:
                job.restarts += 1
                job.marker.unlink(missing_ok=True)
                self._submit(job)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._markers is not None:
            shutil.rmtree(self._markers, ignore_errors=True)
            self._markers = None


@dataclass(eq=False)
class _PoolJob:
    """The handle on one item of a ``LocalExecutor``: its current future, or the failure that ends it."""

    fn: Callable[[Any], Any]
    item: Any
    marker: Path
    pool: ProcessPoolExecutor | None = None
    future: Future = field(default_factory=Future)  # replaced by the pool's future when submitted
    failure: BaseException | None = None
    restarts: int = 0

    def done(self) -> bool:
        return self.failure is not None or self.future.done()

    def broken(self) -> bool:
        """Whether the future holds the pool's BrokenProcessPool (not yet sorted out by the executor)."""
        return (self.failure is None and self.future.done() and not self.future.cancelled()
                and isinstance(self.future.exception(), BrokenProcessPool))

    def result(self) -> Any:
        if self.failure is not None:
            raise self.failure
        return self.future.result()


def _start_worker(threads: int) -> None:
    """A pool worker's setup: its thread count, and a watch on its controller. A worker whose controller died
    (SIGKILL, the out-of-memory killer) exits at once, killing its runs' process groups, instead of finishing
    a run nobody will record (its trial is failed and re-run by the next controller, in the same folder) and
    then waiting forever for work."""
    set_threads(threads)
    parent = multiprocessing.parent_process()  # spawned workers read their parent's end of a pipe
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), name="mixopt-controller-watch", daemon=True).start()


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    """Block until ``parent`` is gone, then end this process and the process groups its children lead
    (the command runner starts each program as a group leader)."""
    parent.join()
    for child in _children(os.getpid()):
        with contextlib.suppress(OSError):
            if os.getpgid(child) == child:
                os.killpg(child, signal.SIGKILL)
            else:
                os.kill(child, signal.SIGKILL)
    os._exit(1)


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux ``/proc``; none elsewhere)."""
    try:
        return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    except OSError:
        return []


def _run_marked(fn: Callable[[Any], Any], item: Any, marker: str) -> Any:
    """``fn(item)`` in a pool worker, after writing the worker's pid to ``marker``."""
    Path(marker).write_text(str(os.getpid()))
    return fn(item)


def _run_with_threads(fn: Callable[[Any], Any], item: Any, threads: int) -> Any:
    set_threads(threads)
    return fn(item)


class RayExecutor(Executor):
    """Ray tasks: a local cluster started on first use (``address=None``) or a running one (``"auto"``, a URL)."""

    def __init__(self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0, threads: int = 1,
                 init_options: dict[str, Any] | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.threads = threads
        self.init_options = init_options or {}

    def submit_many(self, fn, items):
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False, **self.init_options)
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)(_run_with_threads)
        return [task.remote(fn, item, self.threads).future() for item in items]

    def wait(self, handles):
        done, _ = wait_futures(handles, return_when=FIRST_COMPLETED)
        return list(done)


class _Requeueable:
    """A runner call that Slurm may preempt: submitit requeues it, and it runs again from the start
    (a runner that keeps checkpoints in its output folder resumes from them)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: Any) -> Any:
        return self.fn(item)

    def checkpoint(self, item: Any):
        import submitit

        return submitit.helpers.DelayedSubmission(_Requeueable(self.fn), item)


class SlurmExecutor(Executor):
    """Slurm through submitit: each batch is one job array; preempted jobs are requeued.

    ``cluster="local"`` runs the same jobs as local processes (submitit's stand-in for Slurm); other
    options (``slurm_partition``, ``timeout_min``, ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``...) go to
    ``submitit.AutoExecutor.update_parameters``.
    """

    def __init__(self, folder: str = "slurm-logs", cluster: str | None = None, max_num_timeout: int = 3,
                 **parameters: Any) -> None:
        self.folder = folder
        self.cluster = cluster
        self.max_num_timeout = max_num_timeout
        self.parameters = parameters

    def _executor(self):
        import submitit

        executor = submitit.AutoExecutor(folder=Path(self.folder) / "%j", cluster=self.cluster,
                                         slurm_max_num_timeout=self.max_num_timeout)
        executor.update_parameters(**self.parameters)
        return executor

    def submit_many(self, fn, items):
        executor = self._executor()
        with executor.batch():
            jobs = [executor.submit(_Requeueable(fn), item) for item in items]
        return jobs

    def job_id(self, handle):
        return str(handle.job_id)

    def reattach(self, job_id):
        """The job of a killed controller: followed through its folder (Slurm: also sacct) until it ends."""
        job = submitit_job_class(self._executor())(folder=Path(self.folder) / "%j", job_id=job_id)
        if job.paths.result_pickle.exists() or job.paths.submitted_pickle.exists():
            return job
        return None


EXECUTORS = Registry(
    "executor",
    {
        "serial": "mixopt.executors:SerialExecutor",
        "local": "mixopt.executors:LocalExecutor",
        "ray": "mixopt.executors:RayExecutor",
        "slurm": "mixopt.executors:SlurmExecutor",
    },
)
