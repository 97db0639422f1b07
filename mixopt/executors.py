"""Executors run a function over run specs and yield results as they finish.

``Executor.map(fn, items)`` yields ``(index, result)`` pairs where ``result`` is ``fn(items[index])`` or
the exception it raised; one failing item never stops the others.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mixopt.registry import Registry


class Executor(abc.ABC):
    @abc.abstractmethod
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(items[index]) or the exception raised)`` in order of completion."""

    def close(self) -> None:
        """Release workers."""


def set_threads(threads: int) -> None:
    """Pin torch and BLAS thread pools (on shared cores one thread can beat two)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


class SerialExecutor(Executor):
    """Runs every item in the controller process, one after another (debugging, cheap simulators)."""

    def map(self, fn, items):
        for index, item in enumerate(items):
            try:
                yield index, fn(item)
            except Exception as exc:  # the runner's failure is reported, never raised into the loop
                yield index, exc


class LocalExecutor(Executor):
    """A pool of ``workers`` spawned processes, each with ``threads`` torch threads."""

    def __init__(self, workers: int = 1, threads: int = 1) -> None:
        self.workers = workers
        self.threads = threads
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=set_threads, initargs=(self.threads,),
            )
        return self._pool

    def map(self, fn, items):
        futures = {self._get_pool().submit(fn, item): index for index, item in enumerate(items)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool):
                    self.close()  # a worker died (killed, out of memory): the next batch gets a new pool
                    exc = RuntimeError("the worker process died while running this trial")
                yield futures[future], exc if exc is not None else future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


EXECUTORS = Registry(
    "executor",
    {
        "serial": "mixopt.executors:SerialExecutor",
        "local": "mixopt.executors:LocalExecutor",
    },
)
