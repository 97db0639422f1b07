"""The study's models: source effects, the predicted front and out-of-fold predictions on a known mixing law,
and the fidelity convention of the features."""

import numpy as np
import pytest
import torch

from mixopt import analysis, pareto
from mixopt.config import load_config
from mixopt.runners.synthetic import expected_outcome, make_law
from mixopt.space import MixtureSpace, Source
from mixopt.surrogates import fitting
from study_helpers import write_study

torch.set_num_threads(1)


# -- surrogate views -----------------------------------------------------------------------------
def law_data(n: int, seed: int = 0):
    space = MixtureSpace(tuple(Source(name) for name in ("web", "code", "math", "qa")))
    law = make_law(space.dim, 2, seed=3, noise=0.0)
    X = space.sample(n, seed)
    return space, law, X, expected_outcome(law, X)


def gp():
    """The per-dimension GP surrogate: calibrated and fast enough to fit many times in a test."""
    return fitting.make_surrogate("gp")


@pytest.mark.slow
def test_source_effects_follow_the_mixing_law():
    space, law, X, Y = law_data(40)
    models = fitting.fit_surrogates(X, Y, gp)
    grid, effects = analysis.source_effects(lambda W: fitting.predict(models, W), space, n_base=16, n_grid=5)
    assert grid.shape == (4, 5) and effects.shape == (2, 4, 5)
    for objective in range(2):
        helper = int(np.argmin(law.t[objective]))  # the source that lowers this loss the most
        assert effects[objective, helper, -1] < effects[objective, helper, 0]


@pytest.mark.slow
def test_predicted_front_is_feasible_and_non_dominated():
    space, _, X, Y = law_data(30)
    models = fitting.fit_surrogates(X, Y, gp)
    front = analysis.predicted_front(lambda W: fitting.predict(models, W), space, ["minimize", "minimize"], n=400)
    assert 0 < len(front.mean) <= analysis.PREDICTED_SHOWN
    assert all(space.is_feasible(w, tol=1e-6) for w in front.weights)
    assert pareto.non_dominated(front.mean, ["minimize", "minimize"]).all()
    assert np.all(front.std > 0)


@pytest.mark.slow
def test_out_of_fold_predictions_rank_a_smooth_law():
    from scipy.stats import spearmanr

    _, _, X, Y = law_data(25)
    Y = Y[:, :1]
    mean, std = analysis.out_of_fold(X, Y, gp)
    assert mean.shape == Y.shape == std.shape
    assert spearmanr(Y[:, 0], mean[:, 0]).statistic > 0.8


# -- the fidelity convention -----------------------------------------------------------------------
def test_the_fidelity_is_a_feature_only_where_a_study_has_several(tmp_path):
    several = load_config(write_study(tmp_path))
    names = [f.name for f in several.fidelities]
    assert len(names) >= 2
    W = np.full((3, len(several.sources)), 1.0 / len(several.sources))
    X = analysis.model_features(several, W, [names[0], names[-1], names[0]])
    np.testing.assert_array_equal(X[:, :-1], W)
    np.testing.assert_array_equal(X[:, -1], [0.0, 1.0, 0.0])  # 1 at the integration (last) fidelity

    (tmp_path / "one").mkdir()
    one = load_config(write_study(tmp_path / "one", {"fidelities": [{"name": names[0], "tokens": 1e6}]}))
    np.testing.assert_array_equal(analysis.model_features(one, W, [names[0]] * 3), W)


@pytest.mark.slow
def test_the_multifidelity_surrogate_predicts_through_the_convention(tmp_path):
    from mixopt.loop import run_study
    from mixopt.study import Study

    study = Study.open(load_config(write_study(tmp_path, {"surrogate": {"name": "multifidelity",
                                                                        "options": {"micro_model": "gp"}}})))
    run_study(study, n_trials=10, batch_size=5)
    integration = study.config.fidelities[-1].name
    study.enqueue(study.history().weights[:4], integration)
    run_study(study, n_trials=11, batch_size=5)
    runs = analysis.study_runs(study)
    models = analysis.fit_objective_models(study.config, runs)
    at_integration = runs.at(integration)
    mean, sd = models.predictor(integration)(at_integration.weights)
    assert mean.shape == sd.shape == at_integration.values.shape
    # The correction is fitted on the integration runs: it reproduces them far better than the microanneal
    # model alone does where the two fidelities differ.
    micro, _ = models.predictor(study.config.search_fidelity.name)(at_integration.weights)
    assert np.abs(mean - at_integration.values).mean() < np.abs(micro - at_integration.values).mean()


def test_decision_accuracy_pairs_the_mixtures_measured_at_both_fidelities(tmp_path):
    from mixopt.trials import Observations

    config = load_config(write_study(tmp_path))
    micro, integration = config.fidelities[0].name, config.fidelities[-1].name
    K, m = len(config.sources), len(config.objectives)
    W = np.random.default_rng(0).dirichlet(np.ones(K), 6)
    expensive = np.arange(6, dtype=float)[:, None] * np.ones(m)

    def runs(cheap: np.ndarray) -> Observations:
        values = np.vstack([cheap, expensive, cheap[:1] + 100])  # the last micro run has no integration twin
        weights = np.vstack([W, W, np.full((1, K), 1.0 / K)])
        fidelities = np.array([micro] * 6 + [integration] * 6 + [micro], dtype=object)
        return Observations(np.arange(13), weights, values, fidelities, ({},) * 13, ({},) * 13, ({},) * 13)

    same = analysis.fidelity_agreement(config, runs(expensive * 0.5))
    assert set(same) == {o.name for o in config.objectives}
    assert all(a.accuracy == 1.0 and a.mixtures == 6 and a.pairs == 15 for a in same.values())
    reversed_ = analysis.fidelity_agreement(config, runs(-expensive))
    assert all(a.accuracy == 0.0 for a in reversed_.values())
    assert analysis.fidelity_agreement(config, runs(expensive).at(micro)) == {}  # nothing measured at both
