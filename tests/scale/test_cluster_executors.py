"""Ray and Slurm executors on real local stand-ins: a local Ray cluster and submitit's local executor."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from mixopt.config import load_config
from mixopt.executors import RayExecutor, SlurmExecutor, outcome
from mixopt.loop import run_study
from mixopt.runners.command import CommandRunner
from mixopt.study import Study, open_storage
from mixopt.trials import RunSpec
from study_helpers import required_module

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
    ray = required_module("ray")
    source = Path(__file__).resolve().parents[2] / "studies" / "synthetic" / "study.yaml"
    config_path = tmp_path / "study.yaml"
    shutil.copy(source, config_path)
    config = load_config(config_path)
    study = Study.open(config)
    executor = RayExecutor(num_cpus=1, init_options={"num_cpus": 2})
    try:
        assert run_study(study, n_trials=8, batch_size=2, executor=executor) == 8
    finally:
        ray.shutdown()
    assert study.n_complete() == 8


def test_restarted_controller_reattaches_to_running_slurm_jobs(tmp_path):
    """SIGKILL the controller while its jobs run; the next controller follows them instead of re-running."""
    script = tmp_path / "train.py"
    script.write_text(SLOW_TRAINER.replace('spec["seed"] < 0', "False"))
    config = tmp_path / "study.yaml"
    config.write_text(f"""
name: reattach
sources: [{{name: web}}, {{name: code}}]
objectives: [{{name: loss, metric: loss}}]
fidelities: [{{name: micro, tokens: 1.0e+6}}]
runner: {{name: command, options: {{argv: ["{sys.executable}", "{script}", "{{spec}}", "{tmp_path / 'starts'}"]}}}}
executor: {{name: slurm, options: {{cluster: local, folder: "{tmp_path / 'jobs'}", timeout_min: 5}}}}
searcher: random
batch_size: 2
n_trials: 4
""")
    command = [sys.executable, "-m", "mixopt.cli", "study", "run", str(config)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    running = []
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        if (tmp_path / "study.db").exists():
            try:  # open_storage retries while the controller is still creating the tables
                study = optuna.load_study(study_name="reattach", storage=open_storage(f"sqlite:///{tmp_path / 'study.db'}"))
            except KeyError:  # the file exists before the controller has created the study in it
                continue
            running = [t for t in study.get_trials() if t.state.name == "RUNNING" and "job_id" in t.user_attrs]
            if running:
                break
    first.kill()
    first.wait()
    assert running, "no job was submitted before the deadline"
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    trials = optuna.load_study(study_name="reattach", storage=f"sqlite:///{tmp_path / 'study.db'}").get_trials()
    assert sum(t.state.name == "COMPLETE" for t in trials) == 4
    assert not [t for t in trials if t.state.name == "FAIL"], "a running job was failed instead of re-attached"
    assert (tmp_path / "starts").read_text().count("start") == 4, "a trial was run twice"
