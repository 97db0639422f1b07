"""The outcome constraint: parsing, thresholds from the measured baseline, and its effect on searchers."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.errors import ConfigError
from mixopt.recommend import recommend_search
from mixopt.search import SEARCHERS
from mixopt.search.outcome import OutcomeConstraint
from mixopt.space import MixtureSpace, Source
from mixopt.trials import History

SPACE = MixtureSpace((Source("web"), Source("math"), Source("code")))
BASELINE = {"web": 0.6, "math": 0.2, "code": 0.2}


def history_with_baseline() -> History:
    """Two objectives (web loss, math loss); mixtures rich in math trade web loss for math loss."""
    W = np.array([[0.6, 0.2, 0.2], [0.6, 0.2, 0.2], [0.2, 0.7, 0.1], [0.45, 0.35, 0.2], [0.9, 0.05, 0.05]])
    values = np.column_stack([2.0 + 0.5 * (1 - W[:, 0]), 2.0 + 0.5 * (1 - W[:, 1])])
    return History(W, values, ("minimize", "minimize"))


@pytest.mark.parametrize(
    "option, message",
    [
        ({"epsilon": 0.1}, "baseline"),
        ({"baseline": {}, "epsilon": 0.1}, "map source names"),
        ({"baseline": BASELINE, "epsilon": -1}, ">= 0"),
        ({"baseline": BASELINE, "margin": 0.1}, "outcome_constraint must be"),
    ],
)
def test_bad_options_are_config_errors(option, message):
    with pytest.raises(ConfigError, match=message):
        OutcomeConstraint.parse(option)


def test_unknown_or_infeasible_baselines_are_named():
    with pytest.raises(ConfigError, match="unknown sources"):
        OutcomeConstraint.parse({"baseline": {"wiki": 1.0}}).baseline_weights(SPACE)
    with pytest.raises(ConfigError, match="sum to"):
        OutcomeConstraint.parse({"baseline": {"web": 0.5}}).baseline_weights(SPACE)


def test_thresholds_come_from_the_mean_of_the_baseline_runs():
    constraint = OutcomeConstraint.parse({"baseline": BASELINE, "epsilon": [0.1, 0.05]})
    history = history_with_baseline()
    floor = constraint.thresholds(SPACE, history)
    np.testing.assert_allclose(floor, -np.array([2.2, 2.4]) - [0.1, 0.05])
    met = constraint.met(SPACE, history, history.maximized)
    np.testing.assert_array_equal(met, [True, True, False, True, False])
    assert constraint.thresholds(SPACE, History(history.weights[2:], history.values[2:], history.directions)) is None
    with pytest.raises(ConfigError, match="3 values for 2 objectives"):
        OutcomeConstraint.parse({"baseline": BASELINE, "epsilon": [0.1, 0.1, 0.1]}).margins(2)


def test_the_recommendation_respects_the_constraint():
    """Best web loss: unconstrained, nearly all web (math loss 2.5); under the constraint (math loss at most
    the baseline's 2.4 + 0.05, by the model), a mixture that keeps math near the baseline's share."""
    history = history_with_baseline()

    def law(w: np.ndarray) -> np.ndarray:  # the history's (web loss, math loss)
        return 2.0 + 0.5 * (1 - w[:2])

    kwargs = {"seed": 0, "rule": "best:web", "names": ["web", "math"]}
    free = recommend_search(SEARCHERS.create("random"), SPACE, history, **kwargs)
    assert law(free.weights)[1] > 2.45
    option = {"outcome_constraint": {"baseline": BASELINE, "epsilon": [0.1, 0.05]}}
    constrained = recommend_search(SEARCHERS.create("random", option), SPACE, history, **kwargs)
    floor = law(np.array([0.6, 0.2, 0.2])) + [0.1, 0.05]
    assert np.all(constrained.predicted <= floor + 1e-9)
    assert np.all(law(constrained.weights) <= floor)
    assert law(constrained.weights)[0] < law(np.array([0.6, 0.2, 0.2]))[0]  # still better on web than the baseline


@pytest.mark.parametrize("name", ["botorch", "optuna-tpe"])
def test_unmeasured_baseline_is_proposed_or_judged_by_the_model(name):
    option = {"outcome_constraint": {"baseline": BASELINE, "epsilon": 0.01}}
    if name == "botorch":
        searcher = SEARCHERS.create(name, {"n_init": 4, "pool_size": 64, **option})
        first = searcher.propose(SPACE, History.empty(3, ("minimize",)), 3, seed=0)
        np.testing.assert_allclose(first[0], [0.6, 0.2, 0.2])
    else:
        searcher = SEARCHERS.create(name, option)
    history = history_with_baseline()
    assert searcher.propose(SPACE, history, 2, seed=1).shape == (2, 3)
