"""A paused controller: ``mixopt study run`` SIGSTOPped mid-trial past the stale limit, its trial failed,
re-queued and finished by a second controller, then SIGCONTed. Its late result must be refused in one line
and kept as an extra attempt, and the controller must carry on, never die with a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState
from test_hosts import OTHER_HOST, controller_pid, require_other_host, running_on, start_on_other_host
from test_kills import env, kill_study, wait_for_runs

from faulty_runner import read_events
from study_helpers import finish


def mixopt(*args: str, config) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixopt.cli", *args], cwd=config.parent, capture_output=True,
                          text=True, env=env(), timeout=600)


@pytest.mark.slow
def test_a_controller_paused_past_the_stale_limit_keeps_its_late_result_as_an_extra_attempt(tmp_path):
    require_other_host()  # the paused controller runs on another (simulated) machine: liveness by heartbeat
    from mixopt.study import HEARTBEAT_STALE_SECONDS

    n_trials = 3
    config, log = kill_study(tmp_path, {"name": "local", "options": {"workers": 1}}, n_trials, batch_size=1)
    paused = start_on_other_host(config, env())
    try:
        wait_for_runs(log, paused, since=0)
        time.sleep(0.3)  # past the controller's writes that follow a submit
        controller = controller_pid(paused)
        os.kill(controller, signal.SIGSTOP)
        storage = f"sqlite:///{tmp_path / 'study.db'}"
        study = optuna.load_study(study_name="synthetic", storage=storage)
        (trial,) = running_on(study, OTHER_HOST)
        owner = trial.user_attrs["controller"]
        # Ten minutes pass: its heartbeat ages past the stale limit while it is stopped.
        study.set_user_attr(f"heartbeat:{owner}", time.time() - HEARTBEAT_STALE_SECONDS - 60)
        second = mixopt("study", "run", str(config), "--no-report", config=config)
        assert second.returncode == 0, second.stderr[-2000:]
        deadline = time.monotonic() + 120  # the paused controller's worker was not stopped: it finishes the run
        while not [e for e in read_events(log) if e.what == "done" and e.trial == trial.number]:  # (its re-run has another)
            assert time.monotonic() < deadline, "the paused controller's worker never finished its run"
            time.sleep(0.1)
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
    first = finish(paused, 600)
    assert "Traceback" not in first.stderr, first.stderr[-3000:]
    assert first.returncode == 0, first.stderr[-2000:]
    late_lines = [line for line in first.stderr.splitlines() if "late result" in line]
    assert len(late_lines) == 1, first.stderr
    assert f"trial {trial.number} refused" in late_lines[0] and "re-queued as trial" in late_lines[0], late_lines

    trials = optuna.load_study(study_name="synthetic", storage=storage).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n_trials
    assert trials[trial.number].state == TrialState.FAIL
    (rerun,) = [t for t in trials if t.user_attrs.get("rerun_of") == trial.number]
    assert rerun.state == TrialState.COMPLETE
    status = mixopt("study", "status", str(config), "-f", "json", config=config)
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)
    assert summary["complete_by_fidelity"] == {"microanneal": n_trials}
    (late,) = summary["late_results"]
    assert late["trial"] == trial.number and late["controller"] == owner
    assert late["mixture"] == {k: pytest.approx(v) for k, v in trial.params.items()}
    assert set(late["metrics"]) >= {"math_loss", "code_loss", "qa_loss"} and late["cost"]
    assert late["run_folder"].endswith(f"trial-{trial.number:05d}")
    table = mixopt("study", "status", str(config), config=config)
    assert f"trial {trial.number} late result from {owner}, kept as an extra attempt" in table.stdout
