"""Replicates: which are due when, how a study queues and runs them (ordinary trials, counted in
n_trials, one mixture per label), and the searcher's model taking its noise from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from optuna.trial import TrialState

from mixopt.config import ReplicatesConfig, load_config
from mixopt.errors import ConfigError
from mixopt.loop import run_study
from mixopt.replicates import due, labels
from mixopt.search.botorch import fit_model
from mixopt.space import MixtureSpace, Source
from mixopt.study import Study
from mixopt.trials import Attr, History
from study_helpers import write_study

PLAN = {"mixtures": ["prior", {"web": 0.5, "books": 0.2, "code": 0.1, "math": 0.1, "qa": 0.05, "instructions": 0.05},
                     "incumbent"], "seeds": 3, "incumbent_at": 0.5}


def test_everything_but_the_incumbent_is_due_at_once_and_the_incumbent_at_its_share():
    plan = ReplicatesConfig(**PLAN)
    assert labels(plan) == ["prior", "mixture 1", "incumbent"]
    assert due(plan, 0, 20, set()) == ["prior", "mixture 1"]
    assert due(plan, 9, 20, {"prior", "mixture 1"}) == []
    assert due(plan, 10, 20, {"prior", "mixture 1"}) == ["incumbent"]
    assert due(plan, 15, 20, {"prior", "mixture 1", "incumbent"}) == []


def test_a_study_runs_each_replicate_seeds_times_inside_n_trials(tmp_path: Path):
    """Synthetic runner without standard errors, 16 trials in batches of 4: the prior and the fixed mixture
    run 3 times each from the start, the incumbent 3 times once 8 are complete; each label is one mixture
    on the grid, each run its own seed, and exactly 16 trials complete."""
    config = load_config(write_study(tmp_path, {"executor": {"name": "serial"}, "n_trials": 16, "batch_size": 4,
                                                "replicates": PLAN}, {"report_stderr": False}))
    study = Study.open(config)
    assert run_study(study) == 16
    done = study.trials((TrialState.COMPLETE,))
    assert len(done) == 16
    by_label: dict[str, list] = {}
    for t in done:
        if Attr.REPLICATE_OF in t.user_attrs:
            by_label.setdefault(t.user_attrs[Attr.REPLICATE_OF], []).append(t)
    assert sorted(by_label) == ["incumbent", "mixture 1", "prior"]
    for label, trials in by_label.items():
        assert len(trials) == 3
        weights = np.array([study.weights_of(t) for t in trials])
        np.testing.assert_array_equal(weights, np.repeat(weights[:1], 3, axis=0))
        assert len({t.user_attrs[Attr.SEED] for t in trials}) == 3, label
    assert max(t.number for t in by_label["prior"] + by_label["mixture 1"]) < 6  # queued before any proposal
    assert min(t.number for t in by_label["incumbent"]) >= 8  # queued once half were complete
    np.testing.assert_allclose(study.weights_of(by_label["mixture 1"][0]), study.space.from_dict(PLAN["mixtures"][1]))


@pytest.mark.parametrize("change, problem", [
    ({"seeds": 1}, "seeds must be >= 2"),
    ({"incumbent_at": 1.0}, "incumbent_at must be in"),
    ({"mixtures": ["prior", "priors"]}, "give one of prior, baseline, incumbent"),
    ({"mixtures": ["baseline"]}, "no baseline"),
    ({"mixtures": ["prior", "prior"]}, "each name at most once"),
    ({"mixtures": [{"web": "half"}]}, "weights must be numbers"),
    ({"mixtures": [{"math": 1.0}]}, "math"),
])
def test_bad_replicates_are_refused_with_the_fix(tmp_path: Path, change: dict, problem: str):
    with pytest.raises(ConfigError, match=problem):
        load_config(write_study(tmp_path, {"replicates": {**PLAN, **change}}))


def test_the_searchers_model_takes_its_noise_from_replicates_when_runs_report_none():
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(4)))
    rng = np.random.default_rng(0)
    W = np.vstack([rng.dirichlet(np.ones(4), size=10), np.repeat(rng.dirichlet(np.ones(4), size=2), 3, axis=0)])
    values = W[:, :1] + 0.05 * rng.standard_normal((len(W), 1))
    replicated = fit_model(space, History(W, values, ("minimize",)))
    assert isinstance(replicated.gp.likelihood, FixedNoiseGaussianLikelihood)
    single = fit_model(space, History(W[:10], values[:10], ("minimize",)))
    assert not isinstance(single.gp.likelihood, FixedNoiseGaussianLikelihood)
