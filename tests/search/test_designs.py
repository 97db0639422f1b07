"""Designs and candidate pools: feasible for every constraint type, centred where asked, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixopt.errors import ConfigError
from mixopt.search.designs import dirichlet_design, local_design, prior_mixture, pull_into
from mixopt.space import MixtureSpace, Source
from tests.search.conftest import spaces

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def feasible_rows(space, W: np.ndarray) -> np.ndarray:
    return np.array([space.is_feasible(w, tol=1e-9) for w in W])


@SETTINGS
@given(space=spaces(), seed=st.integers(0, 10_000))
def test_dirichlet_and_local_designs_are_feasible(space, seed):
    center = prior_mixture(space)
    assert space.is_feasible(center, tol=1e-9)
    design = dirichlet_design(space, center, 64, seed)
    assert feasible_rows(space, design).all()
    local = local_design(space, design[:3], 32, seed, concentration=20.0)
    assert feasible_rows(space, local).all()


@SETTINGS
@given(space=spaces(), seed=st.integers(0, 10_000))
def test_pull_into_moves_only_as_far_as_needed(space, seed):
    anchor = space.sample(1, seed=seed)[0]
    draws = np.random.default_rng(seed).dirichlet(np.ones(space.dim), size=32)
    pulled = pull_into(space, draws, anchor)
    assert feasible_rows(space, pulled).all()
    already = feasible_rows(space, draws)
    np.testing.assert_allclose(pulled[already], draws[already])


def test_dirichlet_design_spans_sparse_to_dense_mixtures_around_the_center():
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(10)))
    center = np.linspace(1, 3, 10) / np.linspace(1, 3, 10).sum()
    design = dirichlet_design(space, center, 4000, seed=0)
    np.testing.assert_allclose(design.mean(axis=0), center, atol=0.01)
    active = (design > 1e-3).sum(axis=1)
    assert active.min() <= 4 and active.max() == 10
    np.testing.assert_array_equal(design, dirichlet_design(space, center, 4000, seed=0))


def test_local_design_stays_near_its_centers():
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(8)))
    centers = space.sample(2, seed=1)
    local = local_design(space, centers, 200, seed=2, concentration=50.0)
    nearest = np.abs(local[:, None, :] - centers[None]).sum(axis=2).min(axis=1)
    far = np.abs(space.sample(200, seed=3)[:, None, :] - centers[None]).sum(axis=2).min(axis=1)
    assert np.median(nearest) < 0.5 * np.median(far)


def test_prior_uses_given_weights_then_token_shares_then_uniform():
    space = MixtureSpace((Source("a", tokens=3.0), Source("b", tokens=1.0)))
    np.testing.assert_allclose(prior_mixture(space), [0.75, 0.25])
    np.testing.assert_allclose(prior_mixture(space, {"a": 1, "b": 1}), [0.5, 0.5])
    np.testing.assert_allclose(prior_mixture(MixtureSpace((Source("a"), Source("b", max_weight=0.2)))), [0.8, 0.2])
    with pytest.raises(ConfigError, match="unknown sources"):
        prior_mixture(space, {"c": 1.0})
