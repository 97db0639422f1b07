"""Stick-breaking coordinates: a bijection onto the bounded simplex, uniform where no bound binds."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixopt.search.optuna import StickBreaking, group_violation
from mixopt.space import Group, MixtureSpace, Source
from tests.search.conftest import spaces


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(space=spaces(), seed=st.integers(0, 10_000))
def test_stick_breaking_maps_the_cube_onto_the_bounds_and_back(space, seed):
    coords = StickBreaking(space)
    rng = np.random.default_rng(seed)
    for u in rng.uniform(size=(20, coords.n_coordinates)):
        w = coords.to_mixture(u)
        assert abs(w.sum() - 1) < 1e-9
        assert np.all(w >= space.lower - 1e-9) and np.all(w <= space.upper + 1e-9)
        np.testing.assert_allclose(coords.to_mixture(coords.to_unit(w)), w, atol=1e-9)
    # every feasible mixture has coordinates (onto)
    for w in space.sample(10, seed=seed):
        np.testing.assert_allclose(coords.to_mixture(coords.to_unit(w)), w, atol=1e-9)


def test_uniform_coordinates_give_uniform_mixtures_on_the_simplex():
    space = MixtureSpace(tuple(Source(f"s{k}") for k in range(6)))
    coords = StickBreaking(space)
    W = np.array([coords.to_mixture(u) for u in np.random.default_rng(0).uniform(size=(6000, 5))])
    np.testing.assert_allclose(W.mean(axis=0), np.full(6, 1 / 6), atol=0.01)
    # Dirichlet(1) marginals: P(w_k > 0.5) = 0.5 ** 5
    np.testing.assert_allclose((W > 0.5).mean(axis=0), np.full(6, 0.5**5), atol=0.012)


def test_group_violation_measures_the_distance_outside_the_group_bounds():
    space = MixtureSpace((Source("a"), Source("b"), Source("c")), (Group("ab", ("a", "b"), 0.3, 0.6),))
    assert group_violation(space, np.array([0.2, 0.2, 0.6])) == 0.0
    assert np.isclose(group_violation(space, np.array([0.1, 0.1, 0.8])), 0.1)
    assert np.isclose(group_violation(space, np.array([0.5, 0.4, 0.1])), 0.3)
