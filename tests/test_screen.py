"""Source screening on the synthetic runner with planted helpful and harmful sources."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import optuna
import pytest

from mixopt.config import ScreeningConfig, load_config
from mixopt.screen import BASELINE, lifts, run_screening, screening_mixtures
from mixopt.study import Study

CONFIG = textwrap.dedent("""
    name: screen-demo
    sources: [{name: web}, {name: code}, {name: math}, {name: qa}, {name: junk}, {name: gold}]
    constraints: [{name: anchor, sources: [web], min: 0.3}]
    objectives: [{name: a, metric: a}, {name: b, metric: b}, {name: c, metric: c}]
    fidelities: [{name: micro, tokens: 1.0e+6}]
    runner: {name: synthetic, options: {metrics: [a, b, c], problem_seed: 3, effects: {gold: -3.0, junk: 4.0}}}
    executor: serial
    searcher: random
    screening: {anchor: {web: 1.0}, share: 0.3, replicates: 3}
""")


def test_arms_are_anchor_plus_candidate_share():
    arms = screening_mixtures(ScreeningConfig(anchor={"web": 0.5, "books": 0.5}, share=0.2), ["web", "books", "math"])
    assert arms[BASELINE] == {"web": 0.5, "books": 0.5, "math": 0.0}
    assert arms["math"] == pytest.approx({"web": 0.4, "books": 0.4, "math": 0.2})
    assert set(arms) == {BASELINE, "math"}


def test_lift_is_oriented_and_has_replicate_stderr():
    values = {BASELINE: np.array([[2.0, 1.0], [2.2, 1.2]]), "x": np.array([[1.0, 1.4], [1.2, 1.6]])}
    (lift,) = lifts(values, ["loss", "score"], ("minimize", "maximize"))
    assert lift.lift == pytest.approx({"loss": 1.0, "score": 0.4})
    assert lift.stderr["loss"] == pytest.approx(np.sqrt(0.02 / 2 + 0.02 / 2))
    assert lift.enters_search


def test_screening_ranks_planted_sources_and_resumes(tmp_path):
    (tmp_path / "study.yaml").write_text(CONFIG)
    result = subprocess.run([sys.executable, "-m", "mixopt.cli", "screen", str(tmp_path / "study.yaml")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    study = Study.open(load_config(tmp_path / "study.yaml"))
    ranked = study.optuna.user_attrs["screening"]
    assert ranked[0]["source"] == "gold" and ranked[-1]["source"] == "junk"
    assert ranked[0]["enters_search"] and not ranked[-1]["enters_search"]
    screen = optuna.load_study(study_name="screen-demo-screening", storage=study.config.storage_url)
    assert len(screen.get_trials()) == 6 * 3  # baseline + 5 candidates, 3 replicates each
    again = run_screening(study)
    assert len(screen.get_trials()) == 6 * 3, "a resumed screening re-ran finished arms"
    assert [r.source for r in again] == [r["source"] for r in ranked]


def test_an_unwritable_run_folder_stops_screening_before_any_run(tmp_path):
    (tmp_path / "study.yaml").write_text(CONFIG)
    (tmp_path / "runs").write_text("a file where the run folder should be")  # unwritable, even for root
    result = subprocess.run([sys.executable, "-m", "mixopt.cli", "screen", str(tmp_path / "study.yaml")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "cannot write" in result.stderr and "runs" in result.stderr
    screening = optuna.load_study(study_name="screen-demo-screening", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert screening.get_trials() == []
