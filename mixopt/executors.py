"""Executors run runner calls somewhere (this process, a local pool, Ray, Slurm) and hand back handles.

The contract: ``submit_many(fn, items) -> handles``, each handle with ``done()`` and ``result()``
(``result()`` re-raises what ``fn`` raised), and ``wait(handles)`` returning the ones that finished. The
controller keeps a batch in flight and proposes new mixtures as results stream back.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

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

    def close(self) -> None:
        """Release workers."""


def outcome(handle: Any) -> Any:
    """The handle's result, or the exception its call raised (never raised here)."""
    try:
        return handle.result()
    except Exception as exc:
        return exc


def set_threads(threads: int) -> None:
    """Pin torch and BLAS thread pools (on shared cores one thread can beat two)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


class SerialExecutor(Executor):
    """Runs every item in the controller process, at submit time (debugging, cheap simulators)."""

    def submit_many(self, fn, items):
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
    """A pool of ``workers`` spawned processes, each with ``threads`` torch threads."""

    def __init__(self, workers: int = 1, threads: int = 1) -> None:
        self.workers = workers
        self.threads = threads
        self._pool: ProcessPoolExecutor | None = None

    def submit_many(self, fn, items):
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=set_threads, initargs=(self.threads,),
            )
        return [self._pool.submit(fn, item) for item in items]

    def wait(self, handles):
        done, _ = wait_futures(handles, return_when=FIRST_COMPLETED)
        if any(f.exception() is not None and "BrokenProcessPool" in type(f.exception()).__name__ for f in done):
            self.close()  # a worker died (killed, out of memory): later submissions get a new pool
        return list(done)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


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
        job = self._executor()._executor.job_class(folder=Path(self.folder) / "%j", job_id=job_id)
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
