"""Controllers on several machines: one killed on another host (namespaces of its own, so its trials carry
another hostname) must not leave the survivors waiting forever for its RUNNING trials; and two controllers
in containers that share a hostname (their own pid namespaces, each pid 1) judge each other by heartbeat,
never by a pid that means another process here."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import optuna
import pytest
from optuna.trial import TrialState
from test_kills import children

from study_helpers import command_env, finish, missing_component, run_mixopt, write_study

OTHER_HOST = "mixopt-host-a"


def require_other_host() -> None:
    """Another machine is simulated with user, UTS, mount and pid namespaces (a container): missing where the
    system refuses them."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", *CONTAINER, "true"]).returncode != 0:
        missing_component("another machine is simulated with namespaces (unshare -rumpf --mount-proc), which this "
                          "system refuses")


CONTAINER = ["-rumpf", "--mount-proc"]  # unshare: own user, UTS, mount and pid namespaces (pid 1 inside), own /proc


def start_in_container(config: Path, env: dict[str, str] | None = None, hostname: str | None = None,
                       args: tuple[str, ...] = (), output: IO | None = None) -> subprocess.Popen:
    """``mixopt study run config *args`` in namespaces of its own (:data:`CONTAINER`), named ``hostname``
    (default: this host's name), leading its own process group; its output piped, or both streams to the file
    ``output``. Its pid is ``unshare``'s: see :func:`controller_pid`."""
    rename = f"hostname {hostname} && " if hostname else ""
    script = f'{rename}exec "$0" -m mixopt.cli study run "$@"'
    streams = {"stdout": output, "stderr": subprocess.STDOUT} if output else {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen(["unshare", *CONTAINER, "sh", "-c", script, sys.executable, str(config), *args],
                            cwd=config.parent, env=env or command_env(), text=True, start_new_session=True, **streams)


def start_on_other_host(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``mixopt study run`` on another simulated machine named ``OTHER_HOST``."""
    return start_in_container(config, env, OTHER_HOST)


def controller_pid(container: subprocess.Popen) -> int:
    """The pid (here) of the controller that ``unshare`` forked into its namespaces (pid 1 there)."""
    deadline = time.monotonic() + 60
    while not (found := children(container.pid)):
        assert time.monotonic() < deadline and container.poll() is None, "the container's controller never started"
        time.sleep(0.05)
    return found[0]


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


@pytest.mark.slow
def test_controllers_in_separate_pid_namespaces_under_one_hostname_are_judged_by_heartbeat(tmp_path):
    require_other_host()
    from mixopt.study import HEARTBEAT_STALE_SECONDS, Study

    n_trials = 4
    config = write_study(tmp_path, {"n_trials": n_trials, "batch_size": 1, "executor": {"name": "local"}},
                         runner_options={"delay": 6.0})
    dead, live = start_in_container(config), start_in_container(config)
    namespaces = {process: os.readlink(f"/proc/{controller_pid(process)}/ns/pid")[5:-1] for process in (dead, live)}
    owners = {process: f"{socket.gethostname()}:pidns-{ns}:1" for process, ns in namespaces.items()}
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    deadline = time.time() + 600  # a loaded machine starts the pool workers slowly
    while time.time() < deadline:
        try:
            study = optuna.load_study(study_name="synthetic", storage=storage)
            running = {t.user_attrs.get("controller") for t in study.get_trials(states=(TrialState.RUNNING,))}
            if set(owners.values()) <= running:
                break
        except KeyError:
            pass
        time.sleep(0.3)
    else:
        pytest.fail(f"both controllers never had trials running: {[finish(p, 5).stderr[-500:] for p in (dead, live)]}")
    os.killpg(dead.pid, signal.SIGKILL)  # the container is gone
    dead.wait()
    stranded = [t.number for t in study.get_trials(states=(TrialState.RUNNING,)) if t.user_attrs["controller"] == owners[dead]]
    assert stranded
    here = Study.load(storage, "synthetic")  # a third controller, on this host's pid namespace
    assert here.recover_stale() == [], "pid 1 means another process here: only the heartbeat may judge"
    beat = study.user_attrs[f"heartbeat:{owners[dead]}"]
    study.set_user_attr(f"heartbeat:{owners[dead]}", beat - HEARTBEAT_STALE_SECONDS - 60)  # ten minutes later
    running_live = [t.number for t in study.get_trials(states=(TrialState.RUNNING,)) if t.user_attrs["controller"] == owners[live]]
    assert here.recover_stale() == stranded
    trials = optuna.load_study(study_name="synthetic", storage=storage).get_trials()
    assert all(trials[n].state != TrialState.FAIL for n in running_live), "the live controller's trial was failed"
    survivor = finish(live, 600)
    assert survivor.returncode == 0, survivor.stderr[-2000:]
    trials = optuna.load_study(study_name="synthetic", storage=storage).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n_trials
    assert [t.number for t in trials if t.state == TrialState.FAIL] == stranded
    assert sorted(t.user_attrs["rerun_of"] for t in trials if "rerun_of" in t.user_attrs) == stranded
