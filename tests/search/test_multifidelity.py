"""Cost-aware multi-fidelity choices: feasible, deterministic, and cost-aware (the cheap fidelity when it
is informative and cheap, the target when their costs are level)."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.search.multifidelity import choose_runs, scalarized
from mixopt.space import Group, MixtureSpace, Source

SPACE = MixtureSpace((Source("a", max_weight=0.6), Source("b"), Source("c"), Source("d", min_weight=0.05)),
                     groups=(Group("ab", ("a", "b"), 0.2, 0.9),))
LEVELS = np.array([1 / 16, 1.0])


def runs(seed: int = 0):
    """12 cheap runs and 3 target runs of a smooth loss whose cheap fidelity is shifted (maximized)."""
    W = SPACE.sample(15, seed=seed)
    levels = np.r_[np.full(12, LEVELS[0]), np.ones(3)]
    y = -((W - 0.25) ** 2).sum(axis=1) - 0.1 * (1 - levels) * W[:, 0]
    return W, levels, y[:, None] + np.random.default_rng(seed).normal(0, 0.005, (15, 1))


def test_choices_are_feasible_distinct_and_deterministic():
    W, levels, y = runs()
    first = choose_runs(SPACE, W, levels, y, LEVELS, np.array([1.0, 16.0]), 3, seed=4, prior=np.full(4, 0.25))
    again = choose_runs(SPACE, W, levels, y, LEVELS, np.array([1.0, 16.0]), 3, seed=4, prior=np.full(4, 0.25))
    assert len(first) == 3 and all(SPACE.is_feasible(c.weights, tol=1e-9) for c in first)
    assert [c.level for c in first] == [c.level for c in again]
    np.testing.assert_array_equal(np.array([c.weights for c in first]), np.array([c.weights for c in again]))
    keys = {(tuple(c.weights.round(9)), c.level) for c in first}
    assert len(keys) == 3


@pytest.mark.parametrize(("costs", "expected"), [((1.0, 1000.0), 0), ((1.0, 1.0), 1)])
def test_the_fidelity_follows_the_cost(costs, expected):
    """Cheap runs 1000x cheaper: information per unit cost is the cheap fidelity's; level costs: the target's
    own runs say most about the target's maximum."""
    W, levels, y = runs(1)
    (choice,) = choose_runs(SPACE, W, levels, y, LEVELS, np.array(costs), 1, seed=0, prior=np.full(4, 0.25))
    assert choice.level == expected and choice.value > 0


def test_scalarized_is_the_objective_alone_or_a_chebyshev_scalarization():
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.0, 0.0]])
    np.testing.assert_array_equal(scalarized(Y[:, :1], seed=0), Y[:, 0])
    s = scalarized(Y, seed=0)
    assert s[2] > s[3] and s[2] > min(s[0], s[1])  # the balanced point beats the worst and an extreme
    assert np.argmin(s) == 3
