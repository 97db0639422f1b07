"""Integration rounds on the synthetic runner: promotions learn from every run and get better."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from optuna.trial import TrialState

from mixopt.config import load_config
from mixopt.errors import ConfigError
from mixopt.rounds import run_rounds
from mixopt.runners.synthetic import SyntheticRunner, expected_outcome
from mixopt.study import Study

CONFIG = textwrap.dedent("""
    name: rounds
    sources: [{name: web}, {name: code}, {name: math}, {name: qa}, {name: books}]
    constraints: [{name: anchor, sources: [web, books], min: 0.3}]
    objectives: [{name: loss, metric: loss}]
    fidelities: [{name: micro, tokens: 1.0e+6}, {name: integration, tokens: 1.0e+7}]
    runner: {name: synthetic, options: {metrics: [loss], problem_seed: PROBLEM, noise: 0.02}}
    executor: serial
    searcher: random
    batch_size: 4
    n_trials: 20
    rounds: 5
    pick: best:loss
    surrogate: loglinear
    seed: PROBLEM
""")


@pytest.mark.slow
@pytest.mark.parametrize("problem", [1, 2, 3])
def test_five_rounds_improve_on_round_one(tmp_path, problem):
    (tmp_path / "study.yaml").write_text(CONFIG.replace("PROBLEM", str(problem)))
    config = load_config(tmp_path / "study.yaml")
    study = Study.open(config)
    recommendation = run_rounds(study)
    promoted = sorted((t.user_attrs["round"], t) for t in study.trials((TrialState.COMPLETE,)) if "round" in t.user_attrs)
    assert [r for r, _ in promoted] == [1, 2, 3, 4, 5]
    assert study.n_complete("micro") == 20
    law = SyntheticRunner(metrics=["loss"], problem_seed=problem).law(list(study.space.names))
    truth = [expected_outcome(law, study.weights_of(t), integration=True)[0, 0] for _, t in promoted]
    assert truth[-1] < truth[0], f"round 5 ({truth[-1]:.4f}) is not better than round 1 ({truth[0]:.4f})"
    assert recommendation.round == 5 and recommendation.measured is not None
    assert recommendation.trial == promoted[-1][1].number
    stored = study.optuna.user_attrs["predicted_front"]
    assert stored["round"] == 5 and 0 < len(stored["points"]) <= 10
    assert all(study.config.space("integration").is_feasible(study.space.from_dict(p["mixture"]), tol=1e-6)
               for p in stored["points"])
    # Resuming a finished study promotes nothing new.
    run_rounds(study)
    assert len([t for t in study.trials() if "round" in t.user_attrs]) == 5


def test_rounds_need_an_integration_fidelity(tmp_path):
    text = CONFIG.replace("PROBLEM", "1").replace(", {name: integration, tokens: 1.0e+7}", "")
    (tmp_path / "study.yaml").write_text(text)
    with pytest.raises(ConfigError, match="integration fidelity"):
        load_config(tmp_path / "study.yaml")
