"""The default searcher's pieces: acquisition by number of objectives, noise from standard errors,
the continuous path with group constraints, and recommending from the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.acquisition.objective import LinearMCObjective
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood

from mixopt.recommend import recommend_search
from mixopt.search.base import believed_order
from mixopt.search.botorch import BoTorchSearcher, fit_model
from mixopt.space import Group, MixtureSpace, Source
from mixopt.trials import History
from tests.search.conftest import composite_history, domain_losses, toy_history

SPACE = MixtureSpace(tuple(Source(f"s{k}") for k in range(6)), (Group("first", ("s0", "s1"), 0.2, 0.5),))


@pytest.mark.parametrize(
    "n_objectives, kind", [(1, qLogNoisyExpectedImprovement), (3, qLogNoisyExpectedHypervolumeImprovement), (5, qLogNParEGO)]
)
def test_acquisition_follows_the_number_of_objectives(n_objectives, kind):
    history = toy_history(SPACE, 12, n_objectives)
    searcher = BoTorchSearcher(mc_samples=16)
    assert isinstance(searcher._acquisition(SPACE, history, fit_model(SPACE, history), seed=0), kind)


def test_reported_standard_errors_are_the_observation_noise():
    with_se = fit_model(SPACE, toy_history(SPACE, 10, stderr=True))
    without = fit_model(SPACE, toy_history(SPACE, 10))
    assert isinstance(with_se.gp.likelihood, FixedNoiseGaussianLikelihood)
    assert not isinstance(without.gp.likelihood, FixedNoiseGaussianLikelihood)


def test_replicates_measure_the_noise_before_reported_standard_errors():
    """Runs that report a standard error over shared evaluation items (0.5) but whose replicates differ by
    0.01: the GP's observation noise is the replicates' (the noise that separates mixtures)."""
    from mixopt.search.botorch import _observation_noise

    W = np.repeat(SPACE.sample(4, seed=0), 3, axis=0)
    Y = W[:, :1] + np.random.default_rng(0).normal(0, 0.01, (12, 1))
    variance = _observation_noise(W, Y, stderr=np.full((12, 1), 0.5)).numpy()
    assert np.all((variance > 0.003**2) & (variance < 0.03**2))
    alone = _observation_noise(W[::3], Y[::3], stderr=np.full((4, 1), 0.5)).numpy()
    np.testing.assert_allclose(alone, 0.25)  # no replicates: the reported errors


def test_each_objective_gets_its_own_gp_with_per_source_length_scales():
    model = fit_model(SPACE, toy_history(SPACE, 12, n_objectives=2))
    assert len(model.gp.models) == 2
    for gp in model.gp.models:
        assert gp.covar_module.lengthscale.shape[-1] == SPACE.dim


def test_continuous_and_discrete_paths_meet_the_group_constraint():
    history = toy_history(SPACE, 10, seed=1)
    for limit in (10, 0):  # 6 free sources: continuous when allowed, else the discrete pool
        batch = BoTorchSearcher(n_init=4, continuous_max_sources=limit, pool_size=128, mc_samples=16).propose(
            SPACE, history, 3, seed=2
        )
        assert all(SPACE.is_feasible(w, tol=1e-7) for w in batch)
        assert len(np.unique(batch.round(6), axis=0)) == 3


def test_recommendation_comes_from_the_model_not_the_noisiest_lucky_draw():
    """A lucky noisy draw far from the optimum does not fool the model's recommendation."""
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(4)))
    optimum = np.array([0.4, 0.3, 0.2, 0.1])
    W = space.sample(40, seed=0)
    values = ((W - optimum) ** 2).sum(axis=1, keepdims=True) + np.random.default_rng(0).normal(0, 0.002, (40, 1))
    lucky = np.argmax(((W - optimum) ** 2).sum(axis=1))
    values[lucky] = values.min() - 0.01  # the worst mixture reads, once, as the best
    history = History(W, values, ("minimize",))
    recommended = recommend_search(BoTorchSearcher(pool_size=512), space, history, seed=0).weights
    assert space.is_feasible(recommended)
    assert np.argmin(values[:, 0]) == lucky  # the best observed run
    assert ((recommended - optimum) ** 2).sum() < ((W[lucky] - optimum) ** 2).sum() / 4


def test_posterior_mean_is_oriented_so_that_larger_is_better():
    history = toy_history(SPACE, 12)
    model = fit_model(SPACE, history)
    mean = model.mean(SPACE, history.weights)[:, 0]
    assert np.corrcoef(mean, history.values[:, 0])[0, 1] < -0.5


def test_design_does_not_repeat_the_prior_once_it_was_run_on_the_grid():
    """A study stores grid-rounded mixtures; the design must still recognise the prior among them."""
    space = MixtureSpace(tuple(Source(n, tokens=t) for n, t in zip("abcd", (3e6, 2e6, 7e5, 1e5), strict=True)))
    searcher = BoTorchSearcher(n_init=6)
    first = searcher.propose(space, History.empty(space.dim, ("minimize",)), 1, seed=0)[0]
    rounded = space.round(first, 1e-4)
    after = History(rounded[None, :], np.array([[1.0]]), ("minimize",), None, np.zeros((0, space.dim)))
    following = searcher.propose(space, after, 3, seed=1)
    assert not np.any(np.all(np.abs(following - rounded) <= 1e-3, axis=1)), "the prior was proposed again"
    pending = History.empty(space.dim, ("minimize",))
    pending = History(pending.weights, pending.values, ("minimize",), None, rounded[None, :])
    assert not np.any(np.all(np.abs(searcher.propose(space, pending, 2, seed=2) - rounded) <= 1e-3, axis=1))


def test_proposals_do_not_depend_on_what_the_process_drew_before():
    """Noisy, flat outcomes make baseline pruning and fitting draw random numbers: the seed alone decides."""
    import torch

    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(10)))
    W = space.sample(48, seed=5)
    history = History(W, np.random.default_rng(5).normal(0.0, 1.0, (48, 1)), ("minimize",))
    searcher = BoTorchSearcher(pool_size=256, mc_samples=16)
    first = searcher.propose(space, history, 4, seed=3)
    torch.rand(11)
    np.testing.assert_array_equal(first, searcher.propose(space, history, 4, seed=3))


def test_local_share_draws_the_batch_around_the_recommended_mixture():
    """One objective: the local draws sit near the recommendation, inside every constraint; the rest of
    the batch is still the acquisition's, and several objectives ignore the option."""
    history = toy_history(SPACE, 16, seed=4)
    searcher = BoTorchSearcher(n_init=4, pool_size=256, mc_samples=16, continuous_max_sources=0, local_share=1.0)
    batch = searcher.propose(SPACE, history, 6, seed=5)
    centre = recommend_search(BoTorchSearcher(n_init=4, pool_size=256), SPACE, history, seed=5).weights
    assert all(SPACE.is_feasible(w, tol=1e-7) for w in batch)
    spread_draws = SPACE.sample(200, seed=0)
    assert np.abs(batch - centre).sum(axis=1).mean() < np.abs(spread_draws - centre).sum(axis=1).mean() / 2
    half = BoTorchSearcher(n_init=4, pool_size=256, mc_samples=16, continuous_max_sources=0, local_share=0.5)
    np.testing.assert_allclose(half.propose(SPACE, history, 6, seed=5)[:3], batch[:3])
    several = toy_history(SPACE, 16, n_objectives=2, seed=4)
    plain = BoTorchSearcher(n_init=4, pool_size=256, mc_samples=16, continuous_max_sources=0)
    np.testing.assert_array_equal(searcher.propose(SPACE, several, 3, seed=5), plain.propose(SPACE, several, 3, seed=5))


def test_recommend_surrogate_picks_the_recommendation():
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(4)))
    optimum = np.array([0.4, 0.3, 0.2, 0.1])
    W = space.sample(60, seed=0)
    values = ((W - optimum) ** 2).sum(axis=1, keepdims=True) + np.random.default_rng(0).normal(0, 0.002, (60, 1))
    history = History(W, values, ("minimize",))
    by_trees = recommend_search(BoTorchSearcher(pool_size=512, recommend_surrogate="gbm"), space, history, seed=0).weights
    by_gp = recommend_search(BoTorchSearcher(pool_size=512), space, history, seed=0).weights
    assert space.is_feasible(by_trees)
    assert not np.allclose(by_trees, by_gp)
    assert ((by_trees - optimum) ** 2).sum() < ((W - optimum) ** 2).sum(axis=1).mean() / 4


@pytest.mark.parametrize("options, problem", [({"local_share": 1.5}, "local_share"), ({"recommend_surrogate": "ensamble"}, "ensemble")])
def test_bad_single_objective_options_fail_when_the_searcher_is_built(options, problem):
    from mixopt.errors import ConfigError

    with pytest.raises(ConfigError, match=problem):
        BoTorchSearcher(**options)


def test_believed_order_when_every_point_is_on_the_front():
    """All measured points non-dominated and fewer than k: the front alone, as integer indices."""
    mean = np.array([[2.0, 1.0], [0.0, 3.0], [3.0, 0.0], [1.0, 2.0]])
    order = believed_order(mean, 8)
    assert order.dtype.kind == "i"
    np.testing.assert_array_equal(order, [1, 3, 0, 2])
    np.testing.assert_array_equal(believed_order(np.vstack([mean, [[0.5, 0.5]]]), 8), [1, 3, 0, 2, 4])


def test_an_objective_with_parts_is_modelled_part_by_part():
    """One GP output per part; the objective's mean is their average; the acquisition averages samples."""
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(5)))
    history = composite_history(space, 20)
    model = fit_model(space, history)
    assert model.gp.num_outputs == 5
    parts_mean = model.gp.posterior(torch.as_tensor(history.weights, dtype=torch.float64)).mean.detach().numpy()
    np.testing.assert_allclose(model.mean(space, history.weights)[:, 0], parts_mean.mean(axis=1))
    acq = BoTorchSearcher(mc_samples=16)._acquisition(space, history, model, seed=0)
    assert isinstance(acq.objective, LinearMCObjective)
    assert fit_model(space, history, composite=False).composition is None


def test_parts_give_a_better_recommendation_than_their_mean_alone():
    """The run-level shock drowns the mean of steep per-domain losses; modelling the parts comes closer to
    the balanced optimum (every weight 1/5) on each of four fixed histories, and by more than half on average."""
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(5)))
    optimum = domain_losses(np.full((1, 5), 0.2)).mean()
    regret = {True: [], False: []}
    for seed in range(4):
        history = composite_history(space, 40, seed=seed)
        for composite in regret:
            searcher = BoTorchSearcher(pool_size=256, composite=composite)
            w = recommend_search(searcher, space, history, seed=seed, pool_size=1024).weights
            assert space.is_feasible(w)
            regret[composite].append(domain_losses(w[None]).mean() - optimum)
    assert all(c < p for c, p in zip(regret[True], regret[False], strict=True))
    assert np.mean(regret[True]) < np.mean(regret[False]) / 2


def test_composite_proposals_are_feasible_and_deterministic():
    history = composite_history(SPACE, 16, seed=2)
    searcher = BoTorchSearcher(n_init=4, pool_size=128, mc_samples=16, continuous_max_sources=0)
    batch = searcher.propose(SPACE, history, 4, seed=7)
    assert all(SPACE.is_feasible(w, tol=1e-7) for w in batch)
    np.testing.assert_array_equal(batch, searcher.propose(SPACE, history, 4, seed=7))


def test_a_linear_prior_mean_follows_a_trend_beyond_the_measured_runs():
    """Runs that all keep s0 below 0.4 under an outcome that rises with s0: the linear mean's
    recommendation goes further towards s0's bound than the constant mean's (which reverts to the mean
    away from the runs), and it predicts more there."""
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(4)))
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(4), size=60)
    W = W[W[:, 0] < 0.4][:24]
    values = (W[:, :1] + 0.01 * rng.standard_normal((len(W), 1)))
    history = History(W, values, ("maximize",))
    s0 = {mean: recommend_search(BoTorchSearcher(mean=mean), space, history, seed=0).weights[0] for mean in ("constant", "linear")}
    assert s0["linear"] > max(s0["constant"], 0.6)


def test_a_linear_mean_has_one_trend_per_part():
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(5)))
    model = fit_model(space, composite_history(space, 20), mean="linear")
    assert model.gp.mean_module.weights.shape[0] == 5  # one linear trend per part (batched outputs)


def test_an_unknown_mean_fails_when_the_searcher_is_built():
    from mixopt.errors import ConfigError

    with pytest.raises(ConfigError, match="mean is 'quadratic'"):
        BoTorchSearcher(mean="quadratic")


def test_the_mixing_law_mean_recovers_a_planted_law_and_follows_it_to_a_bound():
    """Loss = 2 + exp(0.5 - 2 w_0 + 1 w_1 + 0 w_2 + 0 w_3): most of source 0 is best. The mean, fitted to 40
    noisy runs that keep w_0 <= 0.5, recovers the exponents (in the GP's unit-cube coordinates, here the
    weights themselves) and predicts the loss at the untried vertex w_0 = 1 far better than a constant mean."""
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(4)))
    rates = np.array([-2.0, 1.0, 0.0, 0.0])

    def loss(W):
        return 2.0 + np.exp(0.5 + W @ rates)

    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(4), size=200)
    W = W[W[:, 0] <= 0.5][:40]
    history = History(W, (loss(W) + rng.normal(scale=0.01, size=len(W)))[:, None], ("minimize",))
    law = fit_model(space, history, mean="mixing-law").gp.mean_module
    t = law.rates.squeeze(-1).numpy()
    assert np.allclose(t - t.mean(), rates - rates.mean(), atol=0.15), t  # on the simplex t is known up to a shift
    vertex = np.array([[1.0, 0.0, 0.0, 0.0]])
    errors = {}
    for mean in ("mixing-law", "constant"):
        predicted, _ = fit_model(space, history, mean=mean).predict(space, vertex, history.signs)
        errors[mean] = abs(predicted[0, 0] - loss(vertex)[0])
    assert errors["mixing-law"] < 0.05 and errors["mixing-law"] < errors["constant"] / 5, errors
