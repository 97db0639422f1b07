"""Real kills of real processes mid-run: ``SIGKILL`` of the controller (``mixopt study run``) while its
``local`` pool workers run trials, of a single pool worker, of the controller's whole process group, and of
a Ray worker, at seeded random moments. After each kill the SQLite file passes ``PRAGMA integrity_check``
and no completed trial changed or vanished; at the end exactly ``n_trials`` are complete, every failed trial
has a reason, and no trial was run to completion twice (the runner logs every start and completion)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from faulty_runner import Event, read_events
from mixopt.study import queued_mixture
from study_helpers import command_env, required_module, write_study

HERE = Path(__file__).resolve().parent
N_TRIALS = 60
RUN_SECONDS = 1.0  # each run's sleep: kills land mid-run most of the time
# 20 kills in a seeded order: the controller alone, one pool worker, the controller's whole process group.
KILLS = {"controller": 8, "worker": 6, "group": 6}
KILLED_REASONS = ("interrupted: the controller stopped while this trial was running",
                  "the worker process running this trial died: killed by SIGKILL")


def env() -> dict[str, str]:
    return {**command_env(), "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}


def kill_study(tmp_path: Path, executor: dict, n_trials: int, batch_size: int = 2) -> tuple[Path, Path]:
    """A synthetic study whose runner logs its runs (``faulty_runner:LoggedRunner``), its config and its event log."""
    events = tmp_path / "events.log"
    runner = {"name": "faulty_runner:LoggedRunner",
              "options": {"events": str(events), "delay": RUN_SECONDS, "metrics": ["math_loss", "code_loss", "qa_loss"],
                          "problem_seed": 7, "integration": ["integration"]}}
    config = write_study(tmp_path, {"runner": runner, "n_trials": n_trials, "batch_size": batch_size,
                                     "executor": executor})
    return config, events


def start_controller(config: Path) -> subprocess.Popen:
    """``mixopt study run`` as the leader of its own process group (its output to a file: nobody reads a pipe)."""
    log = open(config.parent / "controller.log", "a")
    return subprocess.Popen([sys.executable, "-m", "mixopt.cli", "study", "run", str(config), "--no-report"],
                            cwd=config.parent, env=env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` (``/proc``); none once it is gone."""
    try:
        return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    except OSError:
        return []


def workers(pid: int) -> list[int]:
    """The process-pool workers among ``pid``'s children (not multiprocessing's resource tracker)."""
    def cmdline(child: int) -> str:
        try:
            return Path(f"/proc/{child}/cmdline").read_text()
        except OSError:
            return ""
    return [c for c in children(pid) if "spawn_main" in cmdline(c)]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def in_flight(events: list[Event]) -> list[Event]:
    """Start events of runs that have not logged their completion, whose process still lives."""
    done = {(e.trial, e.pid) for e in events if e.what == "done"}
    return [e for e in events if e.what == "start" and (e.trial, e.pid) not in done and alive(e.pid)]


def wait_for_runs(log: Path, controller: subprocess.Popen, since: int, timeout: float = 240) -> None:
    """Until a run started after event ``since`` is in flight (pool workers spawn slowly on loaded cores)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if in_flight(read_events(log)[since:]):
            return
        if controller.poll() is not None:
            pytest.fail(f"the controller ended (exit {controller.returncode}) before the kill: raise N_TRIALS; "
                        f"{(log.parent / 'controller.log').read_text()[-1500:]}")
        time.sleep(0.05)
    pytest.fail("no run started within the deadline")


def integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]


def completed(storage: str) -> dict[int, tuple]:
    study = optuna.load_study(study_name="synthetic", storage=storage)
    return {t.number: (tuple(t.values), tuple(sorted(t.params.items())))
            for t in study.get_trials(states=(TrialState.COMPLETE,))}


def check_storage(db: Path, before: dict[int, tuple]) -> dict[int, tuple]:
    """After a kill: the file is intact and every trial completed before it is still there, unchanged."""
    assert integrity(db) == "ok"
    after = completed(f"sqlite:///{db}")
    assert all(after.get(n) == v for n, v in before.items()), "a completed trial changed or vanished"
    return after


def final_checks(config: Path, events_log: Path, n_trials: int, deaths: dict[int, float],
                 reasons: tuple[str, ...] = KILLED_REASONS) -> dict:
    """The study finished: exact count, every failure with one of ``reasons``, no run completed twice, none
    completed by the workers of a dead controller (``deaths``: controller pid -> time of its kill). Returns
    the counts."""
    db = config.parent / "study.db"
    assert integrity(db) == "ok"
    status = subprocess.run([sys.executable, "-m", "mixopt.cli", "study", "status", str(config), "-f", "json"],
                            capture_output=True, text=True, env=env(), timeout=300)
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)
    assert summary["complete_by_fidelity"] == {"microanneal": n_trials}
    trials = optuna.load_study(study_name="synthetic", storage=f"sqlite:///{db}").get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n_trials
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    failed = {t.number: t.user_attrs.get("fail_reason", "") for t in trials if t.state == TrialState.FAIL}
    assert sorted(f["trial"] for f in summary["failures"]) == sorted(failed), "status must list every failure"
    assert all(f["reason"] for f in summary["failures"]), "a failure without a reason"
    assert all(reason.removeprefix("RunFailed: ").startswith(reasons) for reason in failed.values()), failed
    # Each trial interrupted with its controller is re-run exactly once, with the same mixture.
    interrupted = sorted(n for n, reason in failed.items() if reason.startswith("interrupted"))
    by_number = {t.number: t for t in trials}
    reruns = {t.user_attrs["rerun_of"]: t for t in trials if "rerun_of" in t.user_attrs}
    assert sorted(reruns) == interrupted, f"interrupted {interrupted}, re-run {sorted(reruns)}"
    # A kill while a controller claimed a trial leaves only some of its params set: compare the queued mixture.
    changed = [n for n in interrupted if queued_mixture(reruns[n]) != queued_mixture(by_number[n])]
    assert not changed, f"re-runs with another mixture than their interrupted trial: {changed}"
    events = read_events(events_log)
    done = Counter(e.trial for e in events if e.what == "done")
    duplicates = sum(count - 1 for count in done.values())
    assert duplicates == 0, f"trials run to completion twice: {[n for n, c in done.items() if c > 1]}"
    assert all(done[t.number] == 1 for t in trials if t.state == TrialState.COMPLETE), "a completion no run logged"
    orphans = [e for e in events if e.parent in deaths and e.time > deaths[e.parent] + 0.5]
    assert not orphans, f"workers of a killed controller went on running: {orphans}"
    caught = sum(1 for n in failed if done[n])  # finished, and the kill came before the result was stored
    return {"complete": n_trials, "failed": len(failed), "interrupted": len(interrupted), "caught": caught}


@pytest.mark.slow
def test_twenty_seeded_sigkills_of_controllers_workers_and_process_groups(tmp_path):
    config, log = kill_study(tmp_path, {"name": "local", "options": {"workers": 2}}, N_TRIALS)
    db = tmp_path / "study.db"
    rng = np.random.default_rng(2126)
    schedule = list(rng.permutation([kind for kind, n in KILLS.items() for _ in range(n)]))
    fired: Counter = Counter()
    deaths: dict[int, float] = {}  # controller pid -> when it was killed
    before: dict[int, tuple] = {}
    controller: subprocess.Popen | None = None
    started = time.monotonic()
    for kind in schedule:
        if controller is None:
            controller = start_controller(config)
        wait_for_runs(log, controller, since=len(read_events(log)))
        time.sleep(rng.uniform(0.0, 1.5 * RUN_SECONDS))
        assert controller.poll() is None, "the controller ended before the kill: raise N_TRIALS"
        if kind == "worker":
            pool = workers(controller.pid)
            busy = [e.pid for e in in_flight(read_events(log)) if e.pid in pool]
            victim = int(rng.choice(busy or pool))
            os.kill(victim, signal.SIGKILL)
        else:
            pool = workers(controller.pid)
            deaths[controller.pid] = time.time()
            if kind == "controller":
                os.kill(controller.pid, signal.SIGKILL)
            else:
                os.killpg(controller.pid, signal.SIGKILL)
            assert controller.wait(timeout=60) == -signal.SIGKILL
            deadline = time.monotonic() + 10
            while [p for p in pool if alive(p)] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not [p for p in pool if alive(p)], "pool workers outlived their killed controller"
            controller = None
        fired[kind] += 1
        before = check_storage(db, before)
    if controller is not None:
        assert controller.wait(timeout=600) == 0, (tmp_path / "controller.log").read_text()[-2000:]
    else:
        final = subprocess.run([sys.executable, "-m", "mixopt.cli", "study", "run", str(config), "--no-report"],
                               capture_output=True, text=True, env=env(), timeout=600)
        assert final.returncode == 0, final.stderr[-2000:]
    check_storage(db, before)
    counts = final_checks(config, log, N_TRIALS, deaths)
    assert sum(fired.values()) == 20 and counts["failed"] >= 10, "most kills should catch a run mid-flight"
    print(f"\nFIGURE kills: {sum(fired.values())} seeded SIGKILLs fired (controller {fired['controller']}, single "
          f"worker {fired['worker']}, process group {fired['group']}) with local-pool workers mid-run; completed "
          f"{counts['complete']}/{N_TRIALS} (exact), lost 0, run to completion twice 0, orphaned runs 0, integrity "
          f"ok after every kill; failed {counts['failed']} (each with its reason; {counts['interrupted']} interrupted, "
          f"each re-run once), runs finished but not yet stored at the kill {counts['caught']}; "
          f"{time.monotonic() - started:.0f} s")


@pytest.mark.slow
def test_sigkills_of_ray_workers_fail_their_trials_and_the_study_completes(tmp_path):
    required_module("ray")
    n_trials = 4
    executor = {"name": "ray", "options": {"num_cpus": 1, "init_options": {"num_cpus": 2}}}
    config, log = kill_study(tmp_path, executor, n_trials)
    db = tmp_path / "study.db"
    rng = np.random.default_rng(2127)
    controller = start_controller(config)
    before: dict[int, tuple] = {}
    victims = []
    for _ in range(2):
        wait_for_runs(log, controller, since=len(read_events(log)), timeout=400)
        time.sleep(rng.uniform(0.0, 0.5 * RUN_SECONDS))
        busy = in_flight(read_events(log))
        assert busy and controller.poll() is None
        victim = busy[int(rng.integers(len(busy)))]
        os.kill(victim.pid, signal.SIGKILL)  # a Ray worker process, mid-run
        victims.append(victim.trial)
        before = check_storage(db, before)
    assert controller.wait(timeout=600) == 0, (tmp_path / "controller.log").read_text()[-2000:]
    trials = optuna.load_study(study_name="synthetic", storage=f"sqlite:///{db}").get_trials()
    failed = {t.number: t.user_attrs.get("fail_reason", "") for t in trials if t.state == TrialState.FAIL}
    assert set(failed) == set(victims), failed
    counts = final_checks(config, log, n_trials, {}, reasons=("WorkerCrashedError",))
    print(f"\nFIGURE kills under Ray: {len(victims)} seeded SIGKILLs of Ray workers mid-run; completed "
          f"{counts['complete']}/{n_trials} (exact), lost 0, run to completion twice 0, integrity ok; failed "
          f"{counts['failed']} with the reason: {next(iter(failed.values()))[:120]}")


# A controller stand-in: a local pool running one long job; prints the worker's pid once the job runs.
POOL_OWNER = """
import sys, time
from mixopt.executors import LocalExecutor
executor = LocalExecutor(workers=1)
executor.submit_many(time.sleep, [120])
while not list(executor._markers.glob("*.pid")):
    time.sleep(0.05)
print(next(executor._markers.glob("*.pid")).read_text(), flush=True)
time.sleep(120)
"""


def test_pool_workers_exit_when_their_controller_is_killed():
    """Regression: a SIGKILLed controller's pool workers used to finish their runs (nobody records them, while
    the next controller re-runs the trial in the same folder) and then wait for work forever, orphaned."""
    owner = subprocess.Popen([sys.executable, "-c", POOL_OWNER], stdout=subprocess.PIPE, text=True, env=command_env())
    assert owner.stdout is not None
    worker = int(owner.stdout.readline())
    try:
        assert alive(worker)
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 10
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(worker), "a pool worker outlived its killed controller"
    finally:
        owner.kill()
        owner.wait()
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
