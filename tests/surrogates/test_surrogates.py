"""Each surrogate on data with a known answer: a log-linear law, a stack, a multi-fidelity simulator."""

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from mixopt.errors import ConfigError
from mixopt.runners.synthetic import expected_outcome, make_law, noise_sd
from mixopt.surrogates import SURROGATES
from mixopt.surrogates.ensemble import Ensemble, stack_weights
from mixopt.surrogates.gbm import GradientBoosting
from mixopt.surrogates.gp import GaussianProcess
from mixopt.surrogates.loglinear import LogLinearLaw
from mixopt.surrogates.multifidelity import MultiFidelity

LIGHT = {
    "loglinear": LogLinearLaw(),
    "gbm": GradientBoosting(n_bags=2, n_estimators=200, learning_rate=0.05),
    "gp": GaussianProcess(optimizer_steps=30),
    "ensemble": Ensemble(members=(LogLinearLaw(), GradientBoosting(n_bags=1, n_estimators=60, learning_rate=0.2)), cv=3),
}


def law_data(n: int, seed: int, sources: int = 5):
    """Mixtures ``(n, K)`` and noisy outcomes of an exactly log-linear law (no curvature term)."""
    law = make_law(sources, 1, seed=7, noise=0.001, curvature=0.0)
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.full(sources, 0.7), size=n)
    return W, expected_outcome(law, W)[:, 0] + rng.normal(0, 1, n) * noise_sd(law, W), law


@pytest.mark.parametrize("name", sorted(LIGHT))
def test_recovers_a_log_linear_law(name):
    W, y, law = law_data(150, seed=0)
    W_new, _, _ = law_data(300, seed=1)
    predicted, std = clone(LIGHT[name]).fit(W, y).predict(W_new, return_std=True)
    assert spearmanr(predicted, expected_outcome(law, W_new)[:, 0])[0] >= 0.95
    assert std.shape == predicted.shape == (300,) and np.all(std >= 0)


def test_registry_builds_every_surrogate_with_default_options():
    for name in SURROGATES.names():
        estimator = SURROGATES.create(name)
        assert clone(estimator).get_params() == estimator.get_params()


def test_log_linear_fit_shrugs_off_outliers():
    W, y, law = law_data(150, seed=2)
    y[:8] += 5 * y.std()  # eight crashed runs reporting huge losses
    truth = expected_outcome(law, W[8:])[:, 0]
    rmse = lambda model: np.sqrt(np.mean((model.fit(W, y).predict(W[8:]) - truth) ** 2))  # noqa: E731
    assert rmse(LogLinearLaw()) < 0.5 * rmse(LogLinearLaw(delta=1e6))  # Huber against least squares


def test_stack_weights_recover_a_known_blend():
    rng = np.random.default_rng(0)
    predictions = rng.normal(size=(200, 3))
    y = 0.7 * predictions[:, 0] + 0.3 * predictions[:, 2] + 4.0
    weights, intercept = stack_weights(predictions, y)
    np.testing.assert_allclose(weights, [0.7, 0.0, 0.3], atol=1e-9)
    assert intercept == pytest.approx(4.0)


def test_ensemble_prefers_the_member_that_fits():
    W, y, law = law_data(120, seed=3)
    ensemble = Ensemble(members=(LogLinearLaw(), GradientBoosting(n_bags=1, n_estimators=50)), cv=4).fit(W, y)
    assert ensemble.weights_[0] > ensemble.weights_[1] >= 0


def test_gp_leave_one_out_matches_refitting_at_fixed_hyperparameters():
    W, y, _ = law_data(40, seed=4)
    gp = GaussianProcess(optimizer_steps=20)
    loo = gp.out_of_fold_predict(W, y, n_splits=5, seed=0)
    model = gp.model_
    import torch
    from botorch.models import SingleTaskGP

    keep = np.arange(1, 40)
    refit = SingleTaskGP(model.train_inputs[0][keep], model.train_targets[keep, None],
                         covar_module=model.covar_module, mean_module=model.mean_module,
                         likelihood=model.likelihood)
    refit.eval()
    with torch.no_grad():
        standardized = refit.posterior(model.train_inputs[0][:1]).mean.item()
    transform = model.outcome_transform
    assert loo[0] == pytest.approx(standardized * transform.stdvs.item() + transform.means.item(), rel=1e-5)


def multi_fidelity_data(seed: int, n_micro: int = 120, n_integration: int = 12):
    law = make_law(5, 1, seed=3)
    rng = np.random.default_rng(seed)

    def observe(W, integration):
        return expected_outcome(law, W, integration)[:, 0] + rng.normal(0, 1, len(W)) * noise_sd(law, W, integration)

    W_micro, W_int = rng.dirichlet(np.ones(5), n_micro), rng.dirichlet(np.ones(5), n_integration)
    X = np.r_[np.c_[W_micro, np.zeros(n_micro)], np.c_[W_int, np.ones(n_integration)]]
    return X, np.r_[observe(W_micro, False), observe(W_int, True)], law


def test_multifidelity_beats_a_microanneal_only_surrogate():
    X, y, law = multi_fidelity_data(seed=0)
    micro = X[:, -1] == 0
    W_new = np.random.default_rng(9).dirichlet(np.ones(5), 400)
    truth = expected_outcome(law, W_new, integration=True)[:, 0]
    multi = MultiFidelity().fit(X, y)
    both = multi.predict(np.c_[W_new, np.ones(400)])
    micro_only = GaussianProcess().fit(X[micro, :-1], y[micro]).predict(W_new)
    rmse = lambda p: np.sqrt(np.mean((p - truth) ** 2))  # noqa: E731
    assert rmse(both) < 0.2 * rmse(micro_only)
    assert spearmanr(both, truth)[0] > spearmanr(micro_only, truth)[0]
    assert 0.5 < multi.fidelity_spearman_ <= 1.0 and -1.0 <= multi.corrected_spearman_ <= 1.0


def test_multifidelity_needs_runs_at_both_fidelities():
    X, y, _ = multi_fidelity_data(seed=1)
    with pytest.raises(ConfigError, match="integration runs"):
        MultiFidelity().fit(X[X[:, -1] == 0], y[X[:, -1] == 0])


@pytest.mark.slow
@parametrize_with_checks([LIGHT["loglinear"], LIGHT["gbm"], LIGHT["gp"], LIGHT["ensemble"]])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
