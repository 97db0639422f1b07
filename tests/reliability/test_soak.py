"""The chaos soak (``soak.py``): its checker must report each kind of broken history, and a seeded soak of
30 faults on three controllers sharing a PostgreSQL study must leave none. Also the two storage behaviours
the soak depends on: a tell during a database restart is retried, and a controller cut off past the retry
limit exits 1 with one line, its run folder intact."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from pg_server import PostgresServer
from soak import KINDS, History, Proxy, check, soak
from test_kills import env

from mixopt.config import load_config
from mixopt.study import Study
from mixopt.trials import Evaluation
from study_helpers import write_study

SOAK_EVENTS, SOAK_SEED, SOAK_TRIALS = 30, 2126, 80


def trial(number: int, state: str, host: str, mixture: float, **attrs) -> dict:
    return {"number": number, "state": state, "mixture": {"web": mixture, "code": 1 - mixture}, "seed": number,
            "proposal_seed": 1000 + number, "rerun_of": None, "replicate_of": None, "fail_reason": None,
            "controller": f"{host}:pidns-1:1", **attrs}


def sound_history() -> History:
    """Trial 1 was stranded on soak-1-1 (paused), failed, re-run as trial 2; its late result was kept."""
    return History(
        n_trials=3,
        trials=[trial(0, "COMPLETE", "soak-0-1", 0.1),
                trial(1, "FAIL", "soak-1-1", 0.2, fail_reason="interrupted: the controller stopped"),
                trial(2, "COMPLETE", "soak-2-1", 0.2, seed=1, rerun_of=1),
                trial(3, "COMPLETE", "soak-0-1", 0.3)],
        late=[{"trial": 1, "controller": "soak-1-1:pidns-1:1", "run_folder": "runs/trial-00001"}],
        results=[{"trial": n, "host": host, "folder": f"runs/trial-{n:05d}"}
                 for n, host in ((0, "soak-0-1"), (1, "soak-1-1"), (2, "soak-2-1"), (3, "soak-0-1"))],
    )


def doctored(history: History, change) -> History:
    broken = copy.deepcopy(history)
    change(broken)
    return broken


def test_the_checker_reports_each_kind_of_violation():
    history = sound_history()
    assert check(history) == []
    cases = {
        "lost completion": (lambda h: h.trials.pop(0), ["2 trials complete, not n_trials=3",
                                                         "result of trial 0 on soak-0-1 (runs/trial-00000) lost"]),
        "late result dropped": (lambda h: h.late.clear(), ["result of trial 1 on soak-1-1"]),
        "duplicate mixture": (lambda h: h.trials[3].update(mixture=h.trials[0]["mixture"]),
                              ["mixture (('code', 0.9), ('web', 0.1)) used by trials [0, 3]"]),
        "repeated run seed": (lambda h: h.trials[3].update(seed=0), ["run seed 0 used by trials [0, 3]"]),
        "repeated proposal seed": (lambda h: h.trials[3].update(proposal_seed=1000),
                                   ["proposal seed 1000 used by trials [0, 3]"]),
        "second re-run": (lambda h: h.trials.append(trial(4, "COMPLETE", "soak-0-1", 0.2, seed=1, rerun_of=1)),
                          ["trial 1 re-run 2 times"]),
        "stranded, never re-run": (lambda h: h.trials[2].update(rerun_of=None, mixture={"web": 0.5, "code": 0.5}),
                                   ["trial 1 interrupted and never re-run"]),
        "failure without a reason": (lambda h: h.trials[1].update(fail_reason=""), ["trial 1 failed without a reason"]),
        "left running": (lambda h: h.trials.append(trial(4, "RUNNING", "soak-0-1", 0.6)), ["trial 4 left RUNNING"]),
        "controller crash": (lambda h: h.exits.append(("soak-0-1", 1, "ValueError: boom")),
                             ["controller on soak-0-1 exited 1: ValueError: boom"]),
    }
    for name, (change, expected) in cases.items():
        violations = check(doctored(history, change))
        for fragment in expected:
            assert any(fragment in v for v in violations), (name, fragment, violations)
    # A controller SIGKILLed loses the result it had in flight, and one started during an outage refuses in
    # one line: not violations.
    assert check(doctored(history, lambda h: h.exits.append(
        ("soak-0-2", 2, "error: cannot open storage postgresql+psycopg://mixopt:***@127.0.0.1:1/mixopt: refused")))) == []
    assert check(doctored(history, lambda h: (h.trials.pop(0), h.killed.add("soak-0-1"), setattr(h, "n_trials", 2)))) == []


@pytest.mark.slow
def test_a_chaos_soak_of_three_controllers_on_postgresql_violates_no_invariant(tmp_path):
    result = soak(tmp_path, SOAK_EVENTS, SOAK_SEED, SOAK_TRIALS, say=lambda line: None)
    print(f"\nFIGURE {result.summary()}")
    assert sum(result.faults.values()) == SOAK_EVENTS and set(result.faults) == set(KINDS), result.faults
    assert result.violations == []
    # The same history, doctored: each break is reported.
    history = result.history
    done = [t for t in history.trials if t["state"] == "COMPLETE" and t["rerun_of"] is None]
    kept = next(t for t in done if t["controller"].split(":")[0] not in history.killed)
    reported = check(doctored(history, lambda h: h.trials.remove(next(t for t in h.trials if t["number"] == kept["number"]))))
    assert f"{SOAK_TRIALS - 1} trials complete, not n_trials={SOAK_TRIALS}" in reported
    assert any(v.startswith(f"result of trial {kept['number']} ") for v in reported), reported
    twice = doctored(history, lambda h: next(t for t in h.trials if t["number"] == done[1]["number"]).update(
        mixture=done[2]["mixture"], seed=done[2]["seed"], proposal_seed=done[2]["proposal_seed"]))
    reported = check(twice)
    for label in ("mixture", "run seed", "proposal seed"):
        assert any(v.startswith(label) for v in reported), (label, reported)


@pytest.fixture(scope="module")
def server():
    server = PostgresServer()
    yield server
    server.close()


def test_a_tell_during_a_database_restart_is_retried(tmp_path, server):
    config = load_config(write_study(tmp_path, {"n_trials": 1}))
    study = Study.open(config, server.url, "restart")
    study.enqueue(study.space.sample(1, seed=0), "microanneal")
    (started,) = study.start(1)
    server.stop()
    restart = threading.Timer(2.0, server.start)
    restart.start()
    begun = time.monotonic()
    study.tell(started.number, Evaluation(metrics={"math_loss": 1.0, "code_loss": 2.0, "qa_loss": 3.0}))
    restart.join()
    assert time.monotonic() - begun >= 1.5, "the tell should have waited for the server"
    assert Study.load(server.url, "restart").values_of(started.number) == [1.0, 2.0, 3.0]


@pytest.mark.slow
def test_a_controller_cut_off_past_the_retry_limit_exits_1_with_one_line(tmp_path, server):
    proxy = Proxy(server.port)
    runner = {"name": "faulty_runner:ResultFileRunner", "options": {
        "delay": 3.0, "metrics": ["math_loss", "code_loss", "qa_loss"], "problem_seed": 7, "integration": ["integration"]}}
    config = write_study(tmp_path, {"runner": runner, "n_trials": 2, "batch_size": 1})
    controller = subprocess.Popen(
        [sys.executable, "-m", "mixopt.cli", "study", "run", str(config), "--storage", server.url_via(proxy.port),
         "--study-name", "cutoff", "--no-report"], cwd=tmp_path, env={**env(), "MIXOPT_STORAGE_RETRY_SECONDS": "4"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        folder = tmp_path / "runs" / "cutoff" / "trial-00000"
        deadline = time.monotonic() + 120
        while not folder.exists():  # the first run started
            assert time.monotonic() < deadline and controller.poll() is None, controller.communicate()[1][-2000:]
            time.sleep(0.05)
        proxy.cut()
        out, err = controller.communicate(timeout=120)
    finally:
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
        proxy.close()
    assert controller.returncode == 1, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lost the connection to storage" in errors[0] and "for 4 s" in errors[0], err[-2000:]
    assert "s3cret-pw" not in err
    assert list(folder.glob("result-0-*.json")), "the run folder lost its result"


# -- bugs the soak found (each test fails on the code before its fix) ------------------------------------------
def test_controllers_proposing_together_never_draw_the_same_seed(tmp_path):
    """Two controllers that proposed at the same trial count drew the same seed and queued the same mixtures."""
    from mixopt.loop import propose_batch
    from mixopt.trials import Attr

    config = load_config(write_study(tmp_path, {"n_trials": 16}))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    Study.open(config, storage)
    barrier = threading.Barrier(2)

    def controller() -> None:
        study = Study.open(config, storage)
        for _ in range(6):
            barrier.wait()
            propose_batch(study, 1)

    threads = [threading.Thread(target=controller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trials = Study.load(storage, "synthetic").trials()
    assert len(trials) == 12
    assert len({tuple(sorted(t.system_attrs["fixed_params"].items())) for t in trials}) == 12
    assert len({t.user_attrs[Attr.PROPOSAL_SEED] for t in trials}) == 12


def test_a_stale_trial_told_by_its_controller_while_being_recovered_is_left_complete(tmp_path, monkeypatch):
    """A paused controller that told its trial between the recovery's re-queue and its fail made the
    recovering controller die (``LateResult`` out of ``recover_stale``); now the re-run is withdrawn."""
    from optuna.trial import TrialState

    from mixopt.study import StudyAttr

    config = load_config(write_study(tmp_path))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = Study.open(config, storage)
    study.enqueue(study.space.sample(1, seed=0), "microanneal")
    (paused,) = study.start(1, owner="other-host:1")
    study.set_trial_attr(paused.number, "machine", {"boot": "another machine's", "pidns": ""})  # judged by heartbeat
    study.optuna.set_user_attr(f"{StudyAttr.HEARTBEAT_PREFIX}other-host:1", time.time() - 100_000)
    owner = Study.load(storage, "synthetic")
    enqueue = study.optuna.enqueue_trial

    def requeue_then_the_owner_tells(*args, **kwargs):
        enqueue(*args, **kwargs)
        owner.tell(paused.number, Evaluation(metrics={"math_loss": 1.0, "code_loss": 2.0, "qa_loss": 3.0}))

    monkeypatch.setattr(study.optuna, "enqueue_trial", requeue_then_the_owner_tells)
    assert study.recover_stale() == []
    states = {t.number: t for t in Study.load(storage, "synthetic").trials()}
    assert states[paused.number].state == TrialState.COMPLETE
    (rerun,) = [t for t in states.values() if t.user_attrs.get("rerun_of") == paused.number]
    assert rerun.state == TrialState.FAIL and rerun.user_attrs["fail_reason"].startswith("withdrawn")


def test_a_trial_failed_elsewhere_just_before_this_controller_tells_it_is_a_late_result(tmp_path, monkeypatch):
    """Optuna raises ``ValueError`` (not ``UpdateFinishedTrialError``) when the trial was finished after the
    attribute writes that precede a tell or a fail: the controller died with a traceback."""
    from mixopt.errors import LateResult

    config = load_config(write_study(tmp_path))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = Study.open(config, storage)
    study.enqueue(study.space.sample(2, seed=0), "microanneal")
    first, second = study.start(2)
    tell = study.optuna.tell

    def failed_elsewhere_first(number, *args, **kwargs):
        Study.load(storage, "synthetic").fail(number, "interrupted: the controller stopped while this trial was running")
        return tell(number, *args, **kwargs)

    monkeypatch.setattr(study.optuna, "tell", failed_elsewhere_first)
    with pytest.raises(LateResult, match="kept as an extra attempt"):
        study.tell(first.number, Evaluation(metrics={"math_loss": 1.0, "code_loss": 2.0, "qa_loss": 3.0}))
    with pytest.raises(LateResult, match="late failure"):
        study.fail(second.number, "RunFailed: boom")
    assert [a["trial"] for a in study.late_results()] == [first.number]
