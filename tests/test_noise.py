"""The replicate noise model: the synthetic runner's planted heteroscedastic noise is recovered from
replicates run through the runner itself; too few replicates give no model; few give the pooled level."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from mixopt.noise import MIN_DOF, fit_noise, log_variance_bias, mixture_ids, replicate_stats
from mixopt.runners.synthetic import SyntheticRunner, noise_sd
from mixopt.trials import RunSpec

NAMES = [f"s{k}" for k in range(5)]


def replicated_runs(runner: SyntheticRunner, W: np.ndarray, seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Each mixture of ``W`` run ``seeds`` times by ``runner`` (different seeds): rows and loss values."""
    rows, values = [], []
    for i, w in enumerate(W):
        for s in range(seeds):
            spec = RunSpec(trial=i * seeds + s, mixture=dict(zip(NAMES, w.tolist(), strict=True)), fidelity="micro",
                           tokens=1e9, seed=1000 * i + s, output_dir="")
            rows.append(w)
            values.append(runner.run(spec).metrics["loss"])
    return np.array(rows), np.array(values)[:, None]


def test_the_planted_noise_is_recovered_from_replicates():
    """16 mixtures, 6 seeds each, without reported standard errors: at 200 fresh mixtures the model's sd
    ranks like the true sd (Spearman > 0.8) and is within a factor 1.5 of it at the median."""
    runner = SyntheticRunner(noise=0.05, report_stderr=False)
    rng = np.random.default_rng(0)
    W, Y = replicated_runs(runner, rng.dirichlet(np.ones(5), size=16), seeds=6)
    model = fit_noise(W, Y)
    assert model is not None and model.trends is not None and model.groups == 16
    fresh = rng.dirichlet(np.ones(5), size=200)
    truth = noise_sd(runner.law(NAMES), fresh)
    predicted = np.sqrt(model.variance(fresh)[:, 0])
    assert spearmanr(predicted, truth).statistic > 0.8
    assert np.exp(np.median(np.abs(np.log(predicted / truth)))) < 1.5
    assert truth.max() / truth.min() > 4  # the planted noise does vary over the simplex (4.7x here)


def test_without_enough_replicates_there_is_no_model_and_with_few_the_pooled_level():
    W = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8], [0.9, 0.1]])
    Y = np.array([[1.0], [1.2], [3.0], [0.0]])
    assert MIN_DOF > 1 and fit_noise(W, Y) is None  # one accidental repeat is not an estimate
    W2 = np.vstack([W, [[0.5, 0.5]] * 2, [[0.2, 0.8]] * 2])
    Y2 = np.vstack([Y, [[1.1], [0.9]], [[3.1], [2.9]]])
    model = fit_noise(W2, Y2)
    stats = replicate_stats(W2, Y2)
    pooled = (stats.variance[:, 0] * stats.dof).sum() / stats.dof.sum()
    assert model is not None and model.trends is None
    np.testing.assert_allclose(model.variance(np.array([[0.3, 0.7], [0.6, 0.4]])), pooled)


def test_the_log_variance_bias_is_that_of_gaussian_sample_variances():
    rng = np.random.default_rng(1)
    for dof in (1, 3, 8):
        s2 = rng.standard_normal((200_000, dof + 1)).var(axis=1, ddof=1)
        assert np.log(s2).mean() == pytest.approx(log_variance_bias(np.array([dof]))[0], abs=0.02)


def test_rows_with_identical_weights_are_one_mixture():
    ids = mixture_ids(np.array([[0.5, 0.5], [0.2, 0.8], [0.5, 0.5 + 1e-12], [0.2, 0.8]]))
    assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]
