"""Ray and Slurm executors on real local stand-ins: a local Ray cluster and submitit's local executor."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from mixopt.config import load_config
from mixopt.executors import RayExecutor, SlurmExecutor, outcome
from mixopt.loop import run_study
from mixopt.runners.base import RunSpec
from mixopt.runners.command import CommandRunner
from mixopt.study import Study


SLOW_TRAINER = """
import json, sys, time
spec = json.load(open(sys.argv[1]))
import os
with open(sys.argv[2], "a") as handle:
    handle.write(f"start {os.getppid()}\\n")  # the parent is the job's Python process
time.sleep(3)
if spec["seed"] < 0:
    sys.exit("negative seed")
json.dump({"metrics": {"loss": spec["seed"] ** 2}}, open(spec["metrics_file"], "w"))
"""


def slow_runs(tmp_path: Path, seeds: list[int]) -> tuple[CommandRunner, list[RunSpec]]:
    """A real training-program stand-in (writes a start marker, works 3 s) and one spec per seed."""
    script = tmp_path / "train.py"
    script.write_text(SLOW_TRAINER)
    runner = CommandRunner(argv=[sys.executable, str(script), "{spec}", str(tmp_path / "starts")])
    specs = [RunSpec(trial=i, mixture={"web": 1.0}, fidelity="micro", tokens=1e6, seed=seed,
                     output_dir=str(tmp_path / f"trial-{i}")) for i, seed in enumerate(seeds)]
    return runner, specs


def test_slurm_batch_with_submitit_local(tmp_path):
    executor = SlurmExecutor(folder=str(tmp_path / "logs"), cluster="local", timeout_min=5)
    runner, specs = slow_runs(tmp_path, [2, 3, -1])
    handles = executor.submit_many(runner.run, specs)
    # submitit's local stand-in runs a batch as separate jobs; on Slurm the same batch is one job array.
    assert len({executor.job_id(h) for h in handles}) == 3
    results = [outcome(h) for h in handles]
    assert results[0].metrics["loss"] == 4 and results[1].metrics["loss"] == 9
    assert isinstance(results[2], Exception) and "negative seed" in str(results[2])


def test_slurm_preempted_job_is_requeued_and_finishes(tmp_path):
    executor = SlurmExecutor(folder=str(tmp_path / "logs"), cluster="local", timeout_min=5)
    runner, specs = slow_runs(tmp_path, [7])
    (job,) = executor.submit_many(runner.run, specs)
    marker = tmp_path / "starts"
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    job_pid = int(marker.read_text().split()[1])
    os.kill(job_pid, signal.SIGUSR2)  # what Slurm sends before preempting a job submitit launched
    assert job.result().metrics["loss"] == 49
    assert marker.read_text().count("start") == 2, "the job should have run again after the requeue"


@pytest.mark.slow
def test_ray_local_cluster_runs_a_study_with_two_workers(tmp_path):
    pytest.importorskip("ray")
    source = Path(__file__).resolve().parents[2] / "studies" / "synthetic" / "study.yaml"
    config_path = tmp_path / "study.yaml"
    shutil.copy(source, config_path)
    config = load_config(config_path)
    study = Study.open(config)
    executor = RayExecutor(num_cpus=1, init_options={"num_cpus": 2})
    try:
        assert run_study(study, n_trials=8, batch_size=2, executor=executor) == 8
    finally:
        import ray

        ray.shutdown()
    assert study.n_complete() == 8
