"""The Olmix baseline (mixopt.benchmarks.olmix): its swarm against the published tables, its law fit on
planted laws, its proposer, and the targets its fit configs define."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.benchmarks import olmix
from mixopt.benchmarks.simulators import olmix_runs, table_space
from mixopt.space import Group, MixtureSpace, Source

# Tolerances of the swarm against a table (the swarm drawn with as many runs as the table holds, one seed):
# the mean number of nonzero domains per run within 10% of the table's (the DCLM table's own standard
# error is 0.12 domains, 4% of its 3.26; the seeds of the swarm spread 3.35 to 3.59 there) and the share
# of weights below 1e-3 within 0.02.
NONZERO_RELATIVE = 0.10
SHARE_ABSOLUTE = 0.02


@pytest.fixture(scope="module", params=["full_recomputation", "dclm"])
def table(request):
    """A published table: its mixtures (rows renormalised), metrics and Olmix setup."""
    W, M = olmix_runs(request.param)
    real = W.to_numpy(float)
    real = real / real.sum(axis=1, keepdims=True)
    setup = olmix.published_setup(list(W.columns))
    assert setup is not None and setup.name == request.param
    return W, M, real, setup


def test_sources_are_the_names_before_the_first_colon():
    names = ["arxiv", "dclm:politics", "dclm:health", "stack-edu:C", "wikipedia", "dclm:a:b"]
    assert olmix.hierarchy_of(names) == {"arxiv": [0], "dclm": [1, 2, 5], "stack-edu": [3], "wikipedia": [4]}
    assert olmix.hierarchy_of(["politics", "health"]) == {"politics": [0], "health": [1]}


def test_the_published_setups_are_found_by_their_domains(table):
    W, _, _, setup = table
    names = list(W.columns)
    reordered = olmix.published_setup(names[::-1])
    assert reordered is not None and reordered.names == tuple(names[::-1])
    np.testing.assert_allclose(reordered.prior, setup.prior[::-1])
    assert setup.prior.sum() == pytest.approx(1.0) and (setup.prior > 0).all() and (setup.tokens > 1e8).all()
    assert olmix.published_setup(names[:-1]) is None


def test_the_swarm_matches_the_table_statistics(table):
    W, _, real, setup = table
    names = list(W.columns)
    # the space Olmix drew in: the simplex with the proxy runs' token caps (factor 1)
    space = olmix.capped_space(MixtureSpace(tuple(Source(n) for n in names)),
                               olmix.token_caps(setup.tokens, olmix.PROXY_TOKENS, olmix.SWARM_REPETITION))
    S = olmix.swarm(space, setup.prior, olmix.hierarchy_of(names), len(real), seed=0, settings=setup.swarm)
    got, want = olmix.swarm_statistics(S), olmix.swarm_statistics(real)
    assert got["nonzero_per_run"] == pytest.approx(want["nonzero_per_run"], rel=NONZERO_RELATIVE), (got, want)
    assert got["share_below_1e-3"] == pytest.approx(want["share_below_1e-3"], abs=SHARE_ABSOLUTE), (got, want)
    assert all(space.is_feasible(w) for w in S)
    assert len(np.unique(S.round(6), axis=0)) == len(S)
    if setup.name == "dclm":  # minimum weight 0.05 at both levels: multiples of 0.05, renormalised (k / sum k)
        for w in S:
            assert any(np.allclose(w * units, np.round(w * units), atol=1e-6) for units in range(15, 26))
    else:  # every source present; each topic at least 5% of its source
        for idx in olmix.hierarchy_of(names).values():
            totals = S[:, idx].sum(axis=1)
            assert (totals > 1e-4).all()
            shares = S[:, idx] / totals[:, None]
            assert (shares[shares > 0] >= 0.05 - 1e-9).all()


def test_the_swarm_is_feasible_in_the_benchmark_space(table):
    W, _, _, setup = table
    space, _ = table_space(W)
    S = olmix.swarm(space, setup.prior, olmix.hierarchy_of(list(W.columns)), 64, seed=3, settings=setup.swarm)
    assert S.shape == (64, len(W.columns))
    assert all(space.is_feasible(w) for w in S)


def test_the_law_fit_recovers_planted_parameters():
    rng = np.random.default_rng(0)
    K = 6
    truth = olmix.Law(np.log(1.2), np.array([-1.5, 0.8, -0.4, 1.2, 0.0, -0.9]))
    W = rng.dirichlet(np.ones(K), 160)
    y = truth.predict(W) + rng.normal(0, 0.005, len(W))
    y[:4] += 0.5  # a few wild runs: the Huber loss shrugs them off
    (law,) = olmix.fit_laws(W, y[:, None], seed=0)
    assert law.log_c == pytest.approx(truth.log_c, abs=0.05)
    np.testing.assert_allclose(law.t, truth.t, atol=0.1)
    test = rng.dirichlet(np.ones(K), 1000)
    assert np.abs(law.predict(test) - truth.predict(test)).max() < 0.02
    assert olmix.huber_loss(law, W, y) <= olmix.huber_loss(truth, W, y) + 1e-9


def _objective(laws, weights, prior, kl_reg):
    return lambda w: olmix.predicted_objective(laws, weights, w[None])[0] + kl_reg * olmix.kl_divergence(w, prior)


def test_the_proposal_is_feasible_optimal_and_lowers_the_predicted_objective():
    space = MixtureSpace(
        tuple(Source(f"s{k}", max_weight=0.5) for k in range(5)),
        groups=(Group("g", ("s0", "s1"), max_weight=0.6),),
    )
    laws = [olmix.Law(0.0, np.array([-3.0, -2.0, 0.5, 1.0, 1.5])), olmix.Law(0.1, np.array([0.5, -1.0, -2.0, 0.3, 0.0]))]
    weights = np.array([0.7, 0.3])
    prior = np.array([0.1, 0.1, 0.2, 0.3, 0.3])
    divergences = []
    for kl_reg in (0.0, 0.05, 0.5, 5.0):
        w = olmix.propose(space, prior, laws, weights, seed=0, kl_reg=kl_reg)
        assert space.is_feasible(w), space.violations(w)
        f = _objective(laws, weights, prior, kl_reg)
        rng = np.random.default_rng(1)
        nearby = space.project(np.clip(w + rng.normal(0, 0.01, (100, 5)), 0, None))
        assert min(f(x) for x in nearby) >= f(w) - 1e-7  # no feasible neighbour does better: the optimum
        divergences.append(olmix.kl_divergence(w, prior))
        if kl_reg == olmix.KL_REG:
            start = space.project(prior)
            assert olmix.predicted_objective(laws, weights, w[None])[0] < olmix.predicted_objective(laws, weights, start[None])[0] - 0.05
    assert all(a >= b - 1e-6 for a, b in zip(divergences, divergences[1:], strict=False)), divergences
    assert divergences[0] > 2 * divergences[-1]


def test_the_fit_config_targets():
    _, M = olmix_runs("full_recomputation")
    metrics = M.drop(columns=[c for c in ("Unnamed: 0", "name", "index") if c in M.columns])
    Y, tasks, weights = olmix.olmix_targets(metrics, per_family=False)
    assert Y.shape == (512, 52) and len(tasks) == 52  # 53 other tasks + 4 MMLU categories - 5 dropped
    assert tasks[-4:] == ["mmlu_stem", "mmlu_other", "mmlu_social_sciences", "mmlu_humanities"]
    assert not set(tasks) & set(olmix.DROPPED_METRICS)
    np.testing.assert_allclose(weights, 1 / 52)
    stem = olmix.MMLU_QUESTIONS["stem"]
    expected = sum(metrics[f"mmlu_{s}:rc::olmes"] * k for s, k in stem.items()) / sum(stem.values())
    np.testing.assert_allclose(Y[:, tasks.index("mmlu_stem")], expected.to_numpy())
    Y3, families, w3 = olmix.olmix_targets(metrics, per_family=True)
    assert families == ["math", "code", "qa"] and Y3.shape == (512, 3)
    np.testing.assert_allclose(w3, [7 / 52, 19 / 52, 26 / 52])
    math = [c for c in metrics.columns if c.startswith("minerva_math_")]
    np.testing.assert_allclose(Y3[:, 0], metrics[math].mean(axis=1).to_numpy())


def test_olmix_recommends_a_feasible_mixture_from_runs_of_the_dclm_table():
    W, M = olmix_runs("dclm")
    names = list(W.columns)
    setup = olmix.published_setup(names)
    metrics = M.drop(columns=[c for c in ("Unnamed: 0", "name", "index") if c in M.columns])
    Y, _, weights = olmix.olmix_targets(metrics, per_family=setup.per_family)
    rows = W.to_numpy(float)
    rows = rows / rows.sum(axis=1, keepdims=True)
    space = olmix.capped_space(MixtureSpace(tuple(Source(n) for n in names)),
                               olmix.token_caps(setup.tokens, setup.target_tokens, olmix.REPETITION_FACTOR))
    w = olmix.olmix_recommend(space, setup.prior, rows[:64], Y[:64], weights, seed=0)
    assert space.is_feasible(w)
    laws = olmix.fit_laws(rows[:64], Y[:64], seed=0)
    start = space.project(setup.prior)
    assert olmix.predicted_objective(laws, weights, w[None])[0] < olmix.predicted_objective(laws, weights, start[None])[0]
