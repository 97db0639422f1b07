"""Controllers on several machines: one killed on another host (its own UTS namespace, so its trials carry
another hostname) must not leave the survivors waiting forever for its RUNNING trials."""

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
from optuna.trial import TrialState

from study_helpers import command_env, finish, missing_component, run_mixopt, write_study

OTHER_HOST = "mixopt-host-a"


def require_other_host() -> None:
    """Another host is simulated with a UTS namespace: missing where the system refuses one."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-ru", "true"]).returncode != 0:
        missing_component("another host is simulated with a UTS namespace (unshare -ru), which this system refuses")


def start_on_other_host(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``mixopt study run`` in a new UTS namespace whose hostname is ``OTHER_HOST`` (its own process group;
    ``unshare`` and ``sh`` exec it in place, so its pid is the controller's)."""
    script = f'hostname {OTHER_HOST} && exec "$0" -m mixopt.cli study run "$1"'
    return subprocess.Popen(["unshare", "-ru", "sh", "-c", script, sys.executable, str(config)], cwd=config.parent,
                            env=env or command_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def running_on(study: optuna.Study, host: str) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(states=(TrialState.RUNNING,))
            if str(t.user_attrs.get("controller", "")).startswith(f"{host}:")]


@pytest.mark.slow
def test_a_controller_killed_on_another_host_is_replaced_once_its_heartbeat_is_stale(tmp_path):
    require_other_host()
    from mixopt.study import HEARTBEAT_STALE_SECONDS

    config = write_study(tmp_path, {"n_trials": 10, "batch_size": 3, "executor": {"name": "local"}},
                         runner_options={"delay": 1.5})
    other = start_on_other_host(config)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    deadline = time.time() + 600  # a loaded machine starts the pool workers slowly
    while time.time() < deadline:
        try:
            study = optuna.load_study(study_name="synthetic", storage=storage)
            done = len(study.get_trials(states=(TrialState.COMPLETE,)))
            if done >= 2 and running_on(study, OTHER_HOST):
                break
        except KeyError:
            pass
        time.sleep(0.3)
    else:
        pytest.fail(f"the other host's controller never had trials running: {finish(other, 5).stderr}")
    os.killpg(other.pid, signal.SIGKILL)  # the controller and its workers: the machine is gone
    other.wait()
    # Its running trials, labelled with its host, and any it had claimed but not yet labelled.
    stranded = [t.number for t in study.get_trials(states=(TrialState.RUNNING,))]
    assert running_on(study, OTHER_HOST)
    (owner,) = {t.user_attrs["controller"] for t in running_on(study, OTHER_HOST)}
    beat = study.user_attrs[f"heartbeat:{owner}"]
    assert time.time() - beat < 60  # it was beating while it ran
    # Ten minutes later (its heartbeat aged, nothing else changed), a controller here finishes the study.
    study.set_user_attr(f"heartbeat:{owner}", beat - HEARTBEAT_STALE_SECONDS - 60)
    survivor = run_mixopt("study", "run", config, "--no-report", cwd=tmp_path, timeout=600)
    assert survivor.returncode == 0, survivor.stderr
    trials = optuna.load_study(study_name="synthetic", storage=storage).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 10
    failed = {t.number: t.user_attrs.get("fail_reason", "") for t in trials if t.state == TrialState.FAIL}
    assert set(failed) == set(stranded) and all("interrupted" in reason for reason in failed.values())
    assert not [t for t in trials if t.state == TrialState.RUNNING]
