"""The Study facade over real Optuna SQLite storage: enqueue, start, tell, fail, views and stale recovery."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

import mixopt
from mixopt.config import load_config
from mixopt.errors import ConfigError, StorageError
from mixopt.study import EXTERNAL, Study, controller_id, mask_url, open_storage, weight_column
from mixopt.trials import Evaluation
from study_helpers import write_study

MIX = np.array([0.3, 0.1, 0.2, 0.2, 0.1, 0.1])  # web, code, math, qa, books, instructions: feasible
OTHER = np.array([0.4, 0.1, 0.1, 0.2, 0.1, 0.1])


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return Study.open(load_config(write_study(tmp_path)))


def evaluation(math: float, code: float, qa: float) -> Evaluation:
    return Evaluation(
        metrics={"math_loss": math, "code_loss": code, "qa_loss": qa, "extra": 1.5},
        stderr={"math_loss": 0.01, "code_loss": 0.02, "qa_loss": 0.03},
        cost={"seconds": 2.0, "tokens": 1e10}, runner="test",
    )


def test_open_records_config_metric_names_and_weight_distributions(study: Study, tmp_path: Path):
    stored = optuna.load_study(study_name="synthetic", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert stored.metric_names == ["math", "code", "qa"]
    assert stored.user_attrs["mixopt_config"] == (tmp_path / "study.yaml").read_text()
    assert stored.user_attrs["mixopt_version"] == mixopt.__version__
    # One FloatDistribution per source spanning its bounds at every fidelity (math is capped at 0.4).
    assert study.distributions["math"] == FloatDistribution(0.0, 0.4)
    assert list(study.distributions) == list(study.space.names)


def test_enqueue_start_tell_stores_weights_values_and_attrs(study: Study):
    study.enqueue(np.stack([MIX, OTHER]), "microanneal", extra_attrs={"origin": "test"})
    assert study.n_waiting() == 2
    first, second = study.start(2)
    assert study.n_waiting() == 0 and len(study.trials((TrialState.RUNNING,))) == 2
    np.testing.assert_allclose(study.weights_of(first), MIX)
    assert first.user_attrs["seed"] == study.config.seed + first.number
    assert first.user_attrs["controller"] == controller_id()
    assert study.tell(first.number, evaluation(3.1, 2.9, 3.3)) == [3.1, 2.9, 3.3]
    frozen = study.trials((TrialState.COMPLETE,))[0]
    assert frozen.values == [3.1, 2.9, 3.3]
    assert frozen.params == study.space.as_dict(MIX)
    assert frozen.user_attrs["metrics"]["extra"] == 1.5
    assert frozen.user_attrs["stderr"]["qa_loss"] == 0.03
    assert frozen.user_attrs["cost"] == {"seconds": 2.0, "tokens": 1e10}
    assert frozen.user_attrs["fidelity"] == "microanneal" and frozen.user_attrs["origin"] == "test"
    assert study.n_complete() == 1 and study.n_complete("integration") == 0


def test_enqueue_refuses_an_infeasible_mixture(study: Study):
    with pytest.raises(ConfigError, match="group 'anchor'"):
        study.enqueue(np.array([0.1, 0.3, 0.2, 0.2, 0.1, 0.1]), "microanneal")  # web + books = 0.2 < 0.3
    with pytest.raises(ConfigError, match="unknown fidelity"):
        study.enqueue(MIX, "full")
    assert study.n_waiting() == 0


def test_start_takes_only_waiting_trials(study: Study):
    assert study.start(3) == []  # never invents a mixture when the queue is empty
    study.enqueue(MIX, "microanneal")
    assert len(study.start(3)) == 1
    assert len(study.trials()) == 1


def test_a_missing_metric_is_refused_and_fail_records_the_reason(study: Study):
    study.enqueue(MIX, "microanneal")
    (trial,) = study.start(1)
    with pytest.raises(ValueError, match="metric 'qa_loss' is missing"):
        study.tell(trial.number, Evaluation(metrics={"math_loss": 1.0, "code_loss": 1.0}))
    with pytest.raises(ValueError, match="metric 'code_loss' is nan"):
        study.tell(trial.number, Evaluation(metrics={"math_loss": 1.0, "code_loss": float("nan"), "qa_loss": 1.0}))
    study.fail(trial.number, "runner crashed")
    (failed,) = study.trials((TrialState.FAIL,))
    assert failed.user_attrs["fail_reason"] == "runner crashed"
    assert study.n_failed() == 1


def test_history_holds_completed_runs_at_a_fidelity_and_pending_mixtures(study: Study):
    other = OTHER
    study.enqueue(np.stack([MIX, other, MIX]), "microanneal")
    study.enqueue(other, "integration")
    a, b, c, d = study.start(4)
    study.tell(a.number, evaluation(3.0, 2.0, 1.0))
    study.tell(d.number, evaluation(9.0, 9.0, 9.0))
    study.fail(b.number, "boom")
    study.enqueue(other, "microanneal")

    history = study.history()
    np.testing.assert_allclose(history.weights, [MIX])
    np.testing.assert_allclose(history.values, [[3.0, 2.0, 1.0]])
    np.testing.assert_allclose(history.stderr, [[0.01, 0.02, 0.03]])
    assert history.directions == ("minimize",) * 3
    # Pending: the running trial c and the waiting one, whatever their fidelity.
    assert sorted(map(tuple, history.pending.round(6))) == sorted([tuple(MIX), tuple(other)])
    np.testing.assert_allclose(study.history("integration").values, [[9.0, 9.0, 9.0]])


def test_an_objective_with_parts_checks_them_and_the_history_carries_them(tmp_path: Path):
    """qa averages two task losses: both must be reported and qa must be their mean; the history holds
    the parts of every objective (math and code are their own single parts) and how they compose."""
    objectives = [{"name": "math", "metric": "math_loss"}, {"name": "code", "metric": "code_loss"},
                  {"name": "qa", "metric": "qa_loss", "parts": ["qa_trivia", "qa_science"]}]
    study = Study.open(load_config(write_study(tmp_path, {"objectives": objectives})))
    study.enqueue(np.stack([MIX, OTHER]), "microanneal")
    first, second = study.start(2)
    base = {"math_loss": 3.0, "code_loss": 2.0}
    with pytest.raises(ValueError, match="part 'qa_science' is missing"):
        study.tell(first.number, Evaluation(metrics={**base, "qa_loss": 1.0, "qa_trivia": 1.0}))
    with pytest.raises(ValueError, match="metric 'qa_loss' is 1.5 but the mean of its parts is 1: report their mean"):
        study.tell(first.number, Evaluation(metrics={**base, "qa_loss": 1.5, "qa_trivia": 0.5, "qa_science": 1.5}))
    study.tell(first.number, Evaluation(metrics={**base, "qa_loss": 1.0, "qa_trivia": 0.5, "qa_science": 1.5}))
    # Left out, the objective's metric is the mean of its parts, stored with the other metrics.
    assert study.tell(second.number, Evaluation(metrics={**base, "qa_trivia": 1.0, "qa_science": 3.0},
                                                stderr={"qa_trivia": 0.1})) == [3.0, 2.0, 2.0]
    assert study.frame()["metric:qa_loss"].tolist() == [1.0, 2.0]
    parts = study.history().parts
    np.testing.assert_allclose(parts.values, [[3.0, 2.0, 0.5, 1.5], [3.0, 2.0, 1.0, 3.0]])
    np.testing.assert_allclose(parts.values @ parts.composition.T, study.history().values)
    assert parts.stderr is None  # not every part has a standard error
    # A run imported from a table has no parts: the searcher then models the objectives themselves.
    study.import_runs(MIX[None], np.array([[3.0, 2.0, 1.0]]), "microanneal", "table.csv")
    assert study.history().parts is None


def test_frame_has_one_row_per_trial_with_weights_values_metrics_and_reasons(study: Study):
    study.enqueue(np.stack([MIX, MIX]), "microanneal")
    a, b = study.start(2)
    study.tell(a.number, evaluation(3.0, 2.0, 1.0))
    study.fail(b.number, "out of memory")
    frame = study.frame().set_index("trial")
    assert list(frame.state) == ["COMPLETE", "FAIL"]
    assert frame.loc[a.number, weight_column("math")] == pytest.approx(0.2)
    assert frame.loc[a.number, "qa"] == 1.0 and frame.loc[a.number, "metric:extra"] == 1.5
    assert frame.loc[a.number, "seconds"] == 2.0
    assert frame.loc[b.number, "fail_reason"] == "out of memory" and np.isnan(frame.loc[b.number, "math"])


def exited_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_recover_stale_fails_dead_controllers_trials_and_requeues_their_mixtures(study: Study):
    other = OTHER
    study.enqueue(np.stack([MIX, other, other, other]), "microanneal")
    host = socket.gethostname()
    dead = study.start(1, owner=f"{host}:{exited_pid()}")[0]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = study.start(1, owner=f"{host}:{sleeper.pid}")[0]
        external = study.start(1, owner=EXTERNAL)[0]
        remote = study.start(1, owner="some-other-host:1")[0]
        assert study.recover_stale() == [dead.number]
    finally:
        sleeper.kill()
        sleeper.wait()
    states = {t.number: t for t in study.trials()}
    assert states[dead.number].state == TrialState.FAIL
    assert "interrupted" in states[dead.number].user_attrs["fail_reason"]
    for kept in (alive, external, remote):
        assert states[kept.number].state == TrialState.RUNNING
    (requeued,) = study.trials((TrialState.WAITING,))
    assert requeued.user_attrs == {"fidelity": "microanneal", "rerun_of": dead.number}
    (rerun,) = study.start(1)
    np.testing.assert_allclose(study.weights_of(rerun), MIX)
    # Now the sleeper is gone too: its trial is recovered on the next pass.
    assert study.recover_stale() == [alive.number]


def test_a_recovery_killed_between_its_two_writes_is_finished_without_a_second_rerun(study: Study):
    """The re-run is queued before the trial is failed: a controller killed in between leaves the trial
    RUNNING with its re-run queued; the next recovery fails it and queues nothing more."""
    study.enqueue(MIX[None, :], "microanneal")
    dead = study.start(1, owner=f"{socket.gethostname()}:{exited_pid()}")[0]
    study.enqueue(MIX[None, :], "microanneal", {"rerun_of": dead.number})  # what the killed recovery had written
    assert study.recover_stale() == [dead.number]
    assert {t.number: t.state for t in study.trials()}[dead.number] == TrialState.FAIL
    (requeued,) = study.trials((TrialState.WAITING,))
    assert requeued.user_attrs["rerun_of"] == dead.number


def test_load_reads_the_stored_config_and_rejects_unknown_studies(study: Study, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    loaded = Study.load(url, "synthetic")
    assert loaded.config.text == study.config.text and loaded.space.names == study.space.names
    with pytest.raises(StorageError, match=r"study 'nope' does not exist in .*existing studies are \['synthetic'\]"):
        Study.load(url, "nope")
    missing = tmp_path / "typo.db"
    with pytest.raises(StorageError, match=r"no storage file .*typo\.db: check --storage"):
        Study.load(f"sqlite:///{missing}", "synthetic")
    assert not missing.exists()  # looking must not create an empty storage


def test_reopening_with_other_objective_directions_is_refused(tmp_path: Path):
    Study.open(load_config(write_study(tmp_path)))
    flipped = write_study(tmp_path, {"objectives": [
        {"name": "math", "metric": "math_loss", "direction": "maximize"},
        {"name": "code", "metric": "code_loss"}, {"name": "qa", "metric": "qa_loss"},
    ]})
    with pytest.raises(ConfigError, match="was created with directions"):
        Study.open(load_config(flipped))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////no/such/folder/study.db", "folder /no/such/folder does not exist"),
        ("nosuchdialect://host/db", "cannot open storage nosuchdialect://host/db"),
    ],
)
def test_storage_that_cannot_be_opened_is_one_clear_error(url: str, message: str):
    with pytest.raises(StorageError, match=message) as caught:
        open_storage(url)
    assert "\n" not in str(caught.value)


def test_mask_url_hides_passwords():
    assert mask_url("postgresql://user:secret@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert mask_url("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"


# -- controllers on other hosts ---------------------------------------------------------------------------
def test_a_controller_on_another_host_is_dead_once_its_heartbeat_is_stale(synthetic_config):
    import time

    from mixopt.study import HEARTBEAT_STALE_SECONDS
    from mixopt.trials import Attr

    study = Study.open(load_config(synthetic_config))
    study.enqueue(study.space.sample(3, 0), study.config.search_fidelity.name)
    beating, silent, never = study.start(3, owner="host-a:11")
    for trial in (beating, silent, never):  # claimed on other machines: their pids mean nothing here
        study.set_trial_attr(trial.number, Attr.MACHINE, {"boot": "another-boot-id", "pidns": "pid:[4026531836]"})
    study.set_trial_attr(silent.number, Attr.CONTROLLER, "host-b:22")
    study.set_trial_attr(never.number, Attr.CONTROLLER, "host-c:33")  # no heartbeat: judged by its start
    study.optuna.set_user_attr("heartbeat:host-a:11", time.time())
    study.optuna.set_user_attr("heartbeat:host-b:22", time.time() - HEARTBEAT_STALE_SECONDS - 5)
    assert study.recover_stale() == [silent.number]  # the other two may still be working
    requeued = study.trials((TrialState.WAITING,))
    assert [t.user_attrs[Attr.RERUN_OF] for t in requeued] == [silent.number]


def test_a_running_controller_keeps_its_heartbeat_fresh(synthetic_config):
    import time

    study = Study.open(load_config(synthetic_config))
    key = f"heartbeat:{controller_id()}"
    with study.heartbeat(every=0.05):
        first = study.optuna.user_attrs[key]
        time.sleep(0.4)
        later = optuna.load_study(study_name=study.name, storage=study.config.storage_url).user_attrs[key]
    assert time.time() - 5 < first < later  # written on entry, then again by the thread


def test_run_study_writes_the_controllers_heartbeat(synthetic_config):
    import time

    from mixopt.loop import run_study

    study = Study.open(load_config(synthetic_config))
    run_study(study, n_trials=2, batch_size=2)
    assert time.time() - study.optuna.user_attrs[f"heartbeat:{controller_id()}"] < 120
