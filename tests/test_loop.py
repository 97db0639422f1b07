"""The controller loop in this process: propose -> run -> tell on real SQLite storage, resume, failures."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState

from mixopt.config import load_config
from mixopt.errors import RunFailed
from mixopt.loop import Progress, propose_batch, run_study
from mixopt.runners import RUNNERS
from mixopt.seeding import batch_seed
from mixopt.study import Study
from study_helpers import FLAKY_RUNNER, write_study

SERIAL = {"executor": {"name": "serial"}}


def open_study(folder: Path, changes: dict | None = None, runner_options: dict | None = None) -> Study:
    return Study.open(load_config(write_study(folder, {**SERIAL, **(changes or {})}, runner_options)))


def completed_mixtures(study: Study) -> np.ndarray:
    return np.stack([study.weights_of(t) for t in study.trials((TrialState.COMPLETE,))])


def test_run_study_completes_the_configured_trials_with_feasible_grid_mixtures(tmp_path: Path):
    study = open_study(tmp_path, {"n_trials": 6, "batch_size": 3, "seed": 5})
    events: list[Progress] = []
    assert run_study(study, on_progress=events.append) == 6
    assert study.n_complete("microanneal") == 6 and len(study.trials()) == 6
    for trial in study.trials():
        w = study.weights_of(trial)
        assert study.space.is_feasible(w)
        np.testing.assert_allclose(w * 1e4, np.round(w * 1e4), atol=1e-6)  # on the study's 1e-4 grid
        assert trial.user_attrs["seed"] == 5 + trial.number
        assert set(trial.user_attrs["metrics"]) == {"math_loss", "code_loss", "qa_loss"}
    assert [e.completed for e in events] == [1, 2, 3, 4, 5, 6]
    assert all(e.error is None and len(e.values) == 3 for e in events)


def test_an_objective_averaging_parts_runs_with_the_composite_botorch_searcher(tmp_path: Path):
    """The synthetic runner reports three losses; the one objective is their mean, computed and stored by
    the study, and the default searcher proposes from one GP per loss once its design is done."""
    mean_of_losses = {"name": "mean", "metric": "mean_loss", "parts": ["math_loss", "code_loss", "qa_loss"]}
    study = open_study(tmp_path, {"objectives": [mean_of_losses], "n_trials": 8, "batch_size": 4,
                                  "searcher": {"name": "botorch", "options": {"n_init": 4, "pool_size": 128, "mc_samples": 16}}})
    assert run_study(study) == 8
    frame = study.frame()
    np.testing.assert_allclose(frame["mean"], frame[["metric:math_loss", "metric:code_loss", "metric:qa_loss"]].mean(axis=1))
    np.testing.assert_allclose(frame["metric:mean_loss"], frame["mean"])
    history = study.history()
    np.testing.assert_allclose(history.parts.values @ history.parts.composition.T, history.values)


def test_proposals_are_seeded_from_the_config_seed_stream_at_the_trial_count(tmp_path: Path):
    study = open_study(tmp_path, {"seed": 11})
    space, granularity = study.space, study.config.granularity
    propose_batch(study, 3)
    np.testing.assert_allclose(study.history().pending, space.round(space.sample(3, seed=batch_seed(11, 0)), granularity))
    propose_batch(study, 2)  # three trials exist now: the seed moves on, nothing is replayed
    waiting = study.history().pending
    np.testing.assert_allclose(waiting[3:], space.round(space.sample(2, seed=batch_seed(11, 3)), granularity))
    assert len(np.unique(waiting.round(6), axis=0)) == 5


def test_studies_whose_seeds_differ_by_a_batch_size_do_not_replay_each_other(tmp_path: Path):
    """With seed + trial count, seed 3's first batch was seed 0's second (batches of 3)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = open_study(tmp_path / "a", {"seed": 0})
    other = open_study(tmp_path / "b", {"seed": 3})
    propose_batch(first, 3)
    propose_batch(first, 3)
    propose_batch(other, 3)
    seen = {tuple(w) for w in first.history().pending.round(6)}
    assert not seen & {tuple(w) for w in other.history().pending.round(6)}


def test_a_resumed_study_keeps_its_results_and_does_not_replay_proposals(tmp_path: Path):
    study = open_study(tmp_path, {"n_trials": 8, "batch_size": 4})
    run_study(study, n_trials=4)
    before = {t.number: (t.values, t.params) for t in study.trials((TrialState.COMPLETE,))}
    resumed = Study.open(load_config(tmp_path / "study.yaml"))  # a new controller on the same storage
    assert run_study(resumed) == 8
    after = {t.number: (t.values, t.params) for t in resumed.trials((TrialState.COMPLETE,))}
    assert {n: after[n] for n in before} == before
    assert len(np.unique(completed_mixtures(resumed).round(6), axis=0)) == 8


def test_failed_runs_are_recorded_and_completed_runs_survive(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(RUNNERS.entries, "flaky", FLAKY_RUNNER)
    runner = {"name": "flaky", "options": {"fail_every": 3, "metrics": ["math_loss", "code_loss", "qa_loss"]}}
    study = open_study(tmp_path, {"runner": runner, "n_trials": 6, "batch_size": 2, "max_failures": 10})
    assert run_study(study) == 6
    failed = study.trials((TrialState.FAIL,))
    assert [t.number % 3 for t in failed] == [0] * len(failed) and len(failed) >= 2
    assert failed[0].user_attrs["fail_reason"] == f"RunFailed: flaky runner refuses trial {failed[0].number}"
    assert all(t.number % 3 for t in study.trials((TrialState.COMPLETE,)))


def test_more_failures_than_allowed_stop_the_loop_with_run_failed(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(RUNNERS.entries, "flaky", FLAKY_RUNNER)
    runner = {"name": "flaky", "options": {"fail_every": 2, "metrics": ["math_loss", "code_loss", "qa_loss"]}}
    study = open_study(tmp_path, {"runner": runner, "n_trials": 20, "batch_size": 2, "max_failures": 1})
    with pytest.raises(RunFailed, match=r"2 trials failed \(more than max_failures=1\); last: RunFailed: flaky"):
        run_study(study)
    complete = study.trials((TrialState.COMPLETE,))
    assert [t.number for t in complete] == [1, 3]
    assert all(t.values and len(t.values) == 3 for t in complete)
    assert not study.trials((TrialState.RUNNING,))  # nothing is left looking as if it still ran


def test_a_missing_objective_metric_fails_the_trial_with_the_reason(tmp_path: Path):
    study = open_study(tmp_path, {"n_trials": 2, "batch_size": 2, "max_failures": 1}, {"metrics": ["math_loss", "code_loss", "other"]})
    with pytest.raises(RunFailed, match="metric 'qa_loss' is missing"):
        run_study(study)
    assert [t.user_attrs["fail_reason"] for t in study.trials()] == ["objective 'qa': metric 'qa_loss' is missing"] * 2


def test_run_study_recovers_trials_of_a_dead_controller_first(tmp_path: Path):
    study = open_study(tmp_path, {"n_trials": 3, "batch_size": 3})
    propose_batch(study, 1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (orphan,) = study.start(1, owner=f"{socket.gethostname()}:{gone.pid}")
    assert run_study(study) == 3
    reruns = [t for t in study.trials((TrialState.COMPLETE,)) if t.user_attrs.get("rerun_of") == orphan.number]
    assert len(reruns) == 1 and reruns[0].params == orphan.params
    assert study.trials((TrialState.FAIL,))[0].number == orphan.number


def test_a_trial_claimed_by_a_controller_killed_before_labelling_it_is_recovered_while_waiting(tmp_path: Path, monkeypatch):
    """A controller SIGKILLed between claiming a trial and labelling it leaves a RUNNING trial with no owner;
    a controller that started within the grace period must not wait for it forever."""
    import threading

    import mixopt.study

    monkeypatch.setattr(mixopt.study, "UNLABELLED_GRACE_SECONDS", 1.0)
    study = open_study(tmp_path, {"n_trials": 3, "batch_size": 3})
    propose_batch(study, 1)
    (queued,) = study.trials((TrialState.WAITING,))
    orphan_id = study.optuna._pop_waiting_trial_id()  # claimed (RUNNING), never labelled, no params set yet
    orphan = next(t for t in study.trials() if t._trial_id == orphan_id)
    assert orphan.params == {}
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(run_study(study)), daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert result == [3], "run_study kept waiting for a trial nobody runs"
    assert [t.number for t in study.trials((TrialState.FAIL,))] == [orphan.number]
    (rerun,) = [t for t in study.trials((TrialState.COMPLETE,)) if t.user_attrs.get("rerun_of") == orphan.number]
    assert rerun.params == queued.system_attrs["fixed_params"]  # the whole queued mixture, not what was set
