"""Every searcher: proposals meet every constraint type, are deterministic, and a resumed study moves on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixopt.recommend import recommend_search
from mixopt.search import SEARCHERS
from tests.search.conftest import composite_history, extend, spaces, toy_history

FAST_OPTIONS = {
    "random": {},
    "botorch": {"n_init": 4, "pool_size": 128, "mc_samples": 16, "continuous_max_sources": 0},
    "optuna-tpe": {"n_startup_trials": 4},
    "optuna-gp": {"n_startup_trials": 4},
    "optuna-nsga2": {"population_size": 4},
}
NAMES = sorted(FAST_OPTIONS)


def make(name: str, **extra):
    return SEARCHERS.create(name, {**FAST_OPTIONS[name], **extra})


def assert_feasible(space, W: np.ndarray) -> None:
    assert W.shape[1] == space.dim
    for w in W:
        assert space.violations(w, tol=1e-7) == [], (w, space.violations(w, tol=1e-7))


def check_proposals_are_feasible(name, space, n_objectives, data_seed):
    searcher = make(name)
    for n_seen in (0, 6):  # the initial design and the model-based phase
        history = toy_history(space, n_seen, n_objectives, seed=data_seed)
        proposals = searcher.propose(space, history, 3, seed=data_seed)
        assert proposals.shape == (3, space.dim)
        assert_feasible(space, proposals)
    assert_feasible(space, recommend_search(searcher, space, history, seed=data_seed).weights[None])


GENERATED = dict(space=spaces(), n_objectives=st.sampled_from([1, 2]), data_seed=st.integers(0, 100))
HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much]


@pytest.mark.parametrize("name", ["random", "optuna-tpe", "optuna-nsga2"])
@settings(max_examples=12, deadline=None, suppress_health_check=HEALTH)
@given(**GENERATED)
def test_proposals_meet_bounds_fixed_weights_and_groups(name, space, n_objectives, data_seed):
    check_proposals_are_feasible(name, space, n_objectives, data_seed)


@pytest.mark.parametrize("name", ["botorch", "optuna-gp"])
@settings(max_examples=3, deadline=None, suppress_health_check=HEALTH)
@given(**GENERATED)
def test_model_based_proposals_meet_every_constraint(name, space, n_objectives, data_seed):
    """Fewer examples: each fits models."""
    check_proposals_are_feasible(name, space, n_objectives, data_seed)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=2, deadline=None, suppress_health_check=HEALTH)
@given(space=spaces(), data_seed=st.integers(0, 100))
def test_proposals_from_a_history_with_parts_meet_every_constraint(name, space, data_seed):
    """An objective averaging measured parts (BoTorch models each part; the others use the objective)."""
    searcher = make(name)
    for n_seen in (0, 6):
        history = composite_history(space, n_seen, seed=data_seed)
        assert_feasible(space, searcher.propose(space, history, 3, seed=data_seed))
    assert_feasible(space, recommend_search(searcher, space, history, seed=data_seed).weights[None])


@pytest.mark.parametrize("name", NAMES)
def test_proposals_are_deterministic_for_a_seed_and_history(name):
    space = spaces_example()
    history = toy_history(space, 8, seed=3)
    first = make(name).propose(space, history, 4, seed=11)
    torch.rand(7), np.random.rand(3)  # whatever the process drew before must not matter
    again = make(name).propose(space, history, 4, seed=11)
    np.testing.assert_array_equal(first, again)
    recommended = recommend_search(make(name), space, history, seed=11).weights
    torch.rand(5)
    np.testing.assert_array_equal(recommended, recommend_search(make(name), space, history, seed=11).weights)
    assert not np.allclose(first, make(name).propose(space, history, 4, seed=12))


@pytest.mark.parametrize("name", NAMES)
def test_a_resumed_study_does_not_repeat_proposals(name):
    """The controller reseeds from the trial count; after telling a batch, the next batch is new."""
    space = spaces_example()
    history = toy_history(space, 8, seed=4)
    searcher = make(name)
    seen = [history.weights]
    for round_ in range(3):
        batch = searcher.propose(space, history, 4, seed=len(history))
        for earlier in seen:
            distances = np.abs(batch[:, None, :] - earlier[None, :, :]).max(axis=2)
            assert distances.min() > 1e-6, f"round {round_} repeated a mixture"
        seen.append(batch)
        history = extend(history, batch, ((batch - 0.2) ** 2).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("name", NAMES)
def test_pending_mixtures_are_not_proposed_again(name):
    space = spaces_example()
    base = toy_history(space, 8, seed=5)
    pending = make(name).propose(space, base, 4, seed=1)
    with_pending = type(base)(base.weights, base.values, base.directions, base.stderr, pending)
    batch = make(name).propose(space, with_pending, 4, seed=2)  # the controller reseeds from the trial count
    assert np.abs(batch[:, None, :] - pending[None, :, :]).max(axis=2).min() > 1e-6


def spaces_example():
    from mixopt.space import Group, MixtureSpace, Source

    return MixtureSpace(
        (Source("web", min_weight=0.2), Source("code", max_weight=0.4), Source("math", max_weight=0.3),
         Source("qa"), Source("pinned", fixed_weight=0.05)),
        (Group("technical", ("code", "math"), 0.1, 0.5),),
    )
