"""Executors: results as they finish, a runner's exception handed back (never raised), real worker processes."""

from __future__ import annotations

import os
import time

import pytest

from mixopt.errors import ConfigError
from mixopt.executors import EXECUTORS, LocalExecutor, SerialExecutor


def square_or_fail(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative input {x}")
    time.sleep(0.05 * x)
    return x * x


def worker_facts(_: object) -> tuple[int, str, int]:
    import torch

    return os.getpid(), os.environ["OMP_NUM_THREADS"], torch.get_num_threads()


def die(_: object) -> None:
    os._exit(3)  # a worker killed mid-run (out of memory, SIGKILL)


def test_serial_executor_returns_results_and_exceptions_in_order():
    results = dict(SerialExecutor().map(square_or_fail, [2, -1, 3]))
    assert results[0] == 4 and results[2] == 9
    assert isinstance(results[1], ValueError) and str(results[1]) == "negative input -1"


# Spawned workers import torch to pin its threads: tens of seconds on 2 loaded cores.
@pytest.mark.slow
def test_local_executor_runs_in_spawned_workers_with_pinned_threads():
    executor = LocalExecutor(workers=2, threads=1)
    try:
        results = list(executor.map(square_or_fail, [3, 0, -2]))
        assert sorted(index for index, _ in results) == [0, 1, 2]
        by_index = dict(results)
        assert by_index[0] == 9 and by_index[1] == 0 and isinstance(by_index[2], ValueError)
        facts = [facts for _, facts in executor.map(worker_facts, [None, None])]
        assert all(pid != os.getpid() for pid, _, _ in facts)
        assert all(env == "1" and torch_threads == 1 for _, env, torch_threads in facts)
    finally:
        executor.close()


@pytest.mark.slow
def test_a_dead_worker_fails_its_item_and_the_next_batch_gets_a_new_pool():
    executor = LocalExecutor(workers=1)
    try:
        ((index, error),) = list(executor.map(die, [None]))
        assert index == 0 and isinstance(error, Exception)
        assert dict(executor.map(square_or_fail, [4])) == {0: 16}
    finally:
        executor.close()


def test_executors_are_registered_by_name():
    assert {"serial", "local"} <= set(EXECUTORS.names())
    assert isinstance(EXECUTORS.create("local", {"workers": 2}), LocalExecutor)
    with pytest.raises(ConfigError, match="unknown executor 'locl': did you mean 'local'?"):
        EXECUTORS.create("locl")
    with pytest.raises(ConfigError, match="executor 'local': unknown option 'gpus'"):
        EXECUTORS.create("local", {"gpus": 2})
