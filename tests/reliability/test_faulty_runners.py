"""Faulty runners through the real ``mixopt study run``: runs that raise, return NaN, hang past their timeout,
or whose process dies hit some trials; the study still ends with exactly ``n_trials`` completed, and
``mixopt study status -f json`` lists every failed trial with a reason naming its fault."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest

from faulty_runner import FaultyRunner, start_counts
from mixopt.errors import RunFailed
from mixopt.executors import LocalExecutor
from mixopt.runners.command import CommandRunner
from mixopt.trials import RunSpec
from study_helpers import command_env, write_study

HERE = Path(__file__).resolve().parent
N_TRIALS = 4
METRICS = ["math_loss", "code_loss", "qa_loss"]

# The command runner's program: trial n suffers PROGRAM_FAULTS[n % 8] (None: trains normally).
PROGRAM_FAULTS = ["raise", None, "nan", None, "hang", None, "sigkill", None]
PROGRAM = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    spec = json.load(open(sys.argv[1]))
    fault = json.loads(sys.argv[2])[spec["trial"] % 8]
    w = list(spec["mixture"].values())
    metrics = {"math_loss": 3 - w[0], "code_loss": 2 + w[1], "qa_loss": 1 + w[2] ** 2}
    if fault in ("hang", "sigkill"):  # a child in the program's process group, e.g. a data-loader worker
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open(os.path.join(spec["output_dir"], "child.pid"), "w").write(str(child.pid))
    if fault == "raise":
        raise ValueError("loss diverged at step 12")
    if fault == "hang":
        time.sleep(120)
    if fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "nan":
        metrics["math_loss"] = float("nan")
    json.dump({"metrics": metrics}, open(spec["metrics_file"], "w"))
    """
)
PROGRAM_REASONS = {
    "raise": ["exit code 1", "ValueError: loss diverged at step 12"],
    "nan": ["metrics 'math_loss' is nan", "finite numbers"],
    "hang": ["timed out after 3 s"],
    "sigkill": ["killed by SIGKILL (signal 9)"],
}

# The in-process runner (tests/reliability/faulty_runner.py) under the local executor.
RUNNER_FAULTS = ["raise", None, "nan", None, "exit", None, "garbage", None]
RUNNER_REASONS = {
    "raise": ["RuntimeError: CUDA error: an illegal memory access"],
    "nan": ["metric 'math_loss' is nan (not finite)"],
    "exit": ["the worker process running this trial died: exit code 3"],
    "garbage": ["the runner returned dict, not an Evaluation"],
}


def mixopt(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixopt.cli", *map(str, args)], capture_output=True, text=True,
                          env=env or command_env(), timeout=300)


def run_and_check(config: Path, faults: list[str | None], reasons: dict[str, list[str]], env: dict[str, str]) -> list[dict]:
    """Run the study to the end and check the completed count and each listed failure; returns the failures."""
    result = mixopt("study", "run", config, "--no-report", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    status = mixopt("study", "status", config, "-f", "json", env=env)
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)
    study = optuna.load_study(study_name="synthetic", storage=f"sqlite:///{config.parent / 'study.db'}")
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == N_TRIALS and summary["complete_by_fidelity"] == {"microanneal": N_TRIALS}
    assert all(math.isfinite(v) for t in complete for v in t.values), "a bad value was stored"
    assert all(faults[t.number % len(faults)] is None for t in complete)
    failed = sorted(t.number for t in trials if t.state.name == "FAIL")
    assert failed == [n for n in range(len(trials)) if faults[n % len(faults)] is not None], "a healthy trial failed"
    assert sorted(f["trial"] for f in summary["failures"]) == failed, "status must list every failure"
    for failure in summary["failures"]:
        for phrase in reasons[faults[failure["trial"] % len(faults)]]:
            assert phrase in failure["reason"], failure
    return summary["failures"]


def is_running(pid: int, grace: float = 5.0) -> bool:
    """Whether ``pid`` is still a live process after ``grace`` seconds (SIGKILL takes effect asynchronously;
    a zombie, dead but not yet reaped, counts as gone)."""
    deadline = time.monotonic() + grace
    while True:
        try:
            alive = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            alive = False
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


# Through the real command (two CLI starts and a hang of 3 s each): over 10 s on 2 loaded cores.
@pytest.mark.slow
def test_command_runner_faults_fail_their_trials_and_the_study_completes(tmp_path):
    (tmp_path / "train.py").write_text(PROGRAM)
    runner = {"name": "command", "options": {
        "argv": [sys.executable, str(tmp_path / "train.py"), "{spec}", json.dumps(PROGRAM_FAULTS)], "timeout": 3}}
    config = write_study(tmp_path, {"runner": runner, "n_trials": N_TRIALS, "batch_size": 2, "max_failures": 20,
                                    "executor": "serial"})
    failures = run_and_check(config, PROGRAM_FAULTS, PROGRAM_REASONS, command_env())
    children = [int(p.read_text()) for p in (tmp_path / "runs" / "synthetic").glob("trial-*/child.pid")]
    assert len(children) == 2, "the hang and the SIGKILL each leave a child in the program's process group"
    assert not [pid for pid in children if is_running(pid)], "the program's process group outlived the trial"
    print(f"\nFIGURE command runner: {len(failures)} faulty runs (raise, NaN, hang past timeout, SIGKILL), "
          f"{N_TRIALS}/{N_TRIALS} trials completed, {len(failures)} failures listed with their reason, "
          f"{len(children)} leftover children killed")


@pytest.mark.slow
def test_in_process_runner_faults_and_a_dying_worker_under_the_local_executor(tmp_path):
    starts = tmp_path / "starts.log"
    runner = {"name": "faulty_runner:FaultyRunner",
              "options": {"cycle": RUNNER_FAULTS, "starts": str(starts), "seconds": 0.5, "metrics": METRICS}}
    config = write_study(tmp_path, {"runner": runner, "n_trials": N_TRIALS, "batch_size": 2, "max_failures": 20,
                                    "executor": {"name": "local", "options": {"workers": 2}}})
    env = {**command_env(), "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    failures = run_and_check(config, RUNNER_FAULTS, RUNNER_REASONS, env)
    counts = start_counts(starts)
    exits = [n for n in counts if RUNNER_FAULTS[n % len(RUNNER_FAULTS)] == "exit"]
    assert all(counts[n] == 1 for n in exits), "a trial whose worker died must not be run again"
    rerun = sum(count - 1 for count in counts.values())
    print(f"\nFIGURE local executor: {len(failures)} faulty runs (raise, NaN, os._exit, not an Evaluation), "
          f"{N_TRIALS}/{N_TRIALS} trials completed, {len(failures)} failures listed with their reason, "
          f"healthy runs cut short by a dying worker and re-run in a new pool: {rerun}")


# -- the same faults one level down, fast ------------------------------------------------------------------
def spec(tmp_path: Path, trial: int) -> RunSpec:
    return RunSpec(trial=trial, mixture={"web": 0.5, "code": 0.2, "math": 0.1, "qa": 0.1, "books": 0.05,
                                         "instructions": 0.05},
                   fidelity="microanneal", tokens=1e10, seed=trial, output_dir=str(tmp_path / f"trial-{trial}"))


def test_a_dying_worker_fails_only_its_own_run_and_the_pool_is_replaced(tmp_path):
    runner = FaultyRunner(cycle=[None, "exit", None, None], starts=str(tmp_path / "starts.log"), seconds=0.3,
                          metrics=METRICS)
    executor = LocalExecutor(workers=2)
    try:
        results = dict(executor.map(runner.run, [spec(tmp_path, n) for n in range(4)]))
        again = dict(executor.map(runner.run, [spec(tmp_path, 4)]))
    finally:
        executor.close()
    assert isinstance(results[1], RunFailed) and "died: exit code 3" in str(results[1])
    assert all(set(results[n].metrics) == set(METRICS) for n in (0, 2, 3)), results
    assert set(again[0].metrics) == set(METRICS), "the executor must go on with a new pool"
    assert start_counts(tmp_path / "starts.log")[1] == 1, "the run whose worker died must not run again"


def test_a_program_that_kills_itself_fails_with_the_signal_and_its_children_die(tmp_path):
    (tmp_path / "train.py").write_text(PROGRAM)
    runner = CommandRunner(argv=[sys.executable, str(tmp_path / "train.py"), "{spec}", json.dumps(PROGRAM_FAULTS)])
    with pytest.raises(RunFailed, match=r"killed by SIGKILL \(signal 9\)"):
        runner.run(spec(tmp_path, PROGRAM_FAULTS.index("sigkill")))
    child = int((tmp_path / f"trial-{PROGRAM_FAULTS.index('sigkill')}" / "child.pid").read_text())
    assert not is_running(child), "a child of the killed program outlived it"
