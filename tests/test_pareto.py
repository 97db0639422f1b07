"""Fronts, hypervolumes and picking rules against cases worked out by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mixopt import pareto
from mixopt.errors import ConfigError

MIN2 = ["minimize", "minimize"]


def test_non_dominated_keeps_ties_and_drops_dominated_rows():
    values = np.array([[1, 3], [2, 2], [3, 1], [3, 3], [2, 2]])
    assert pareto.non_dominated(values, MIN2).tolist() == [True, True, True, False, True]


def test_non_dominated_respects_directions():
    values = np.array([[1, 3], [2, 2], [3, 3]])
    # Maximizing both, (3, 3) dominates the rest. Maximizing the first and minimizing the second, (3, 3) and
    # (2, 2) trade off and both dominate (1, 3).
    assert pareto.non_dominated(values, ["maximize", "maximize"]).tolist() == [False, False, True]
    assert pareto.non_dominated(values, ["maximize", "minimize"]).tolist() == [False, True, True]


def test_hypervolume_2d_staircase():
    front = np.array([[1, 3], [2, 2], [3, 1]])
    # Columns of width 1 above each point up to the reference 4: heights 1, 2, 3.
    assert pareto.hypervolume(front, MIN2, np.array([4, 4])) == pytest.approx(6.0)
    # A dominated row and a row outside the reference box add nothing.
    more = np.vstack([front, [[3, 3], [5, 0.5]]])
    assert pareto.hypervolume(more, MIN2, np.array([4, 4])) == pytest.approx(6.0)


def test_hypervolume_with_a_maximized_objective():
    values = np.array([[-1, 3], [-2, 2], [-3, 1]])  # the first objective negated and maximized
    assert pareto.hypervolume(values, ["maximize", "minimize"], np.array([-4, 4])) == pytest.approx(6.0)


def test_hypervolume_3d_by_inclusion_exclusion():
    ref = np.array([2, 2, 2])
    min3 = ["minimize"] * 3
    # Two boxes of volume 2 overlapping in a unit cube.
    assert pareto.hypervolume(np.array([[0, 1, 1], [1, 0, 1]]), min3, ref) == pytest.approx(3.0)
    # Three such boxes: 3 * 2 - 3 pairwise overlaps of 1 + the triple overlap of 1.
    assert pareto.hypervolume(np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]), min3, ref) == pytest.approx(4.0)


def test_hypervolume_of_nothing_is_zero():
    assert pareto.hypervolume(np.zeros((0, 2)), MIN2, np.array([1, 1])) == 0.0
    assert pareto.hypervolume(np.array([[5, 5]]), MIN2, np.array([1, 1])) == 0.0


def test_reference_point_is_the_front_nadir_moved_back_a_tenth_of_the_range():
    values = np.array([[1, 3], [2, 2], [3, 1], [5, 5]])  # (5, 5) is dominated and ignored
    ref = pareto.reference_point(values, MIN2)
    np.testing.assert_allclose(ref, [3.2, 3.2])
    # Columns: 1 x 0.2, 1 x 1.2, 0.2 x 2.2.
    assert pareto.hypervolume(values, MIN2, ref) == pytest.approx(0.2 + 1.2 + 0.44)
    np.testing.assert_allclose(pareto.reference_point(-values, ["maximize", "maximize"]), [-3.2, -3.2])


def test_reference_point_is_the_baseline_when_the_front_beats_it():
    values = np.array([[1, 3], [2, 2], [3, 1]])
    np.testing.assert_allclose(pareto.reference_point(values, MIN2, baseline=np.array([2.5, 2.5])), [2.5, 2.5])


def test_single_objective_reference_uses_every_row():
    values = np.array([[3.0], [1.0], [2.0]])
    ref = pareto.reference_point(values, ["minimize"])
    np.testing.assert_allclose(ref, [3.2])
    assert pareto.hypervolume(values, ["minimize"], ref) == pytest.approx(2.2)


def test_hypervolume_history_in_trial_order():
    values = np.array([[3, 1], [5, 5], [1, 3], [2, 2]])
    ref = np.array([4, 4])
    # 1 x 3; unchanged (outside); two 3-boxes overlapping in a unit square; the full staircase.
    np.testing.assert_allclose(pareto.hypervolume_history(values, MIN2, ref), [3, 3, 5, 6])
    np.testing.assert_allclose(pareto.hypervolume_history(values, MIN2, ref, at=[1, 3]), [3, 6])
    with pytest.raises(ConfigError, match="ascend"):
        pareto.hypervolume_history(values, MIN2, ref, at=[3, 1])


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(2, 3)), elements=st.floats(0, 1)))
def test_hypervolume_history_never_decreases_and_ends_at_the_total(values):
    directions = ["minimize"] * values.shape[1]
    ref = np.full(values.shape[1], 1.1)
    history = pareto.hypervolume_history(values, directions, ref)
    assert np.all(np.diff(history) >= -1e-12)
    assert history[-1] == pytest.approx(pareto.hypervolume(values, directions, ref))


def test_best_so_far_per_objective():
    values = np.array([[3, 1], [1, 5], [2, 0]])
    expected = [[3, 1], [1, 5], [1, 5]]
    np.testing.assert_allclose(pareto.best_so_far(values, ["minimize", "maximize"]), expected)


def test_knee_is_the_bulge_of_the_front():
    values = np.array([[0, 1], [0.2, 0.3], [1, 0], [0.5, 0.5]])
    assert pareto.pick_knee(values, MIN2) == 1
    # Units do not matter: the objectives are normalized over the front first.
    assert pareto.pick_knee(values * [1000, 1], MIN2) == 1


def test_knee_on_a_straight_front_is_the_point_nearest_the_ideal():
    values = np.array([[0, 1], [1, 0], [0.5, 0.5]])
    assert pareto.pick_knee(values, MIN2) == 2


def test_best_with_no_regression_against_a_baseline():
    values = np.array([[1.0, 5.0], [2.0, 3.0], [3.0, 2.9]])
    baseline = np.array([2.5, 3.0])
    assert pareto.pick_best_with_no_regression(values, MIN2, 0) == 0
    # Row 0 loses 2.0 on the second objective, row 2 loses 0.5 on the first: row 1 is the best allowed.
    assert pareto.pick_best_with_no_regression(values, MIN2, 0, baseline, epsilon=0.0) == 1
    assert pareto.pick_best_with_no_regression(values, MIN2, 0, baseline, epsilon=2.0) == 0
    assert pareto.pick_best_with_no_regression(values, MIN2, 0, baseline, epsilon=[0.0, 2.0]) == 0
    assert pareto.pick_best_with_no_regression(values, MIN2, 1, baseline, epsilon=0.5) == 2
    with pytest.raises(ConfigError, match="raise epsilon"):
        pareto.pick_best_with_no_regression(values, MIN2, 0, np.array([0.5, 2.0]), epsilon=0.1)


def test_best_with_no_regression_on_maximized_objectives():
    values = np.array([[0.9, 0.1], [0.8, 0.5]])
    maxed = ["maximize", "maximize"]
    assert pareto.pick_best_with_no_regression(values, maxed, 0) == 0
    assert pareto.pick_best_with_no_regression(values, maxed, 0, np.array([0.5, 0.4]), 0.0) == 1


def test_chebyshev_follows_the_weights():
    values = np.array([[0, 1], [0.2, 0.3], [1, 0], [0.5, 0.5]])
    assert pareto.pick_chebyshev(values, MIN2, [1, 1]) == 1
    assert pareto.pick_chebyshev(values, MIN2, [9, 1]) == 0  # max(0, .1) beats max(.18, .03)
    assert pareto.pick_chebyshev(values, MIN2, [0, 1]) == 2
    assert pareto.pick_chebyshev(values, MIN2, [1, 0]) == 0


def test_chebyshev_ties_go_to_the_smaller_weighted_sum():
    values = np.array([[0, 1, 1], [1, 0, 0], [0.5, 0.5, 1]])  # all on the front, each with a normalized max of 1
    assert pareto.pick_chebyshev(values, ["minimize"] * 3, [1, 1, 1]) == 1


@pytest.mark.parametrize(
    "weights, problem",
    [([1], "2 weights"), ([-1, 1], ">= 0"), ([0, 0], "not all 0"), ([np.inf, 1], "finite")],
)
def test_chebyshev_rejects_bad_weights(weights, problem):
    with pytest.raises(ConfigError, match=problem):
        pareto.pick_chebyshev(np.array([[0, 1], [1, 0]]), MIN2, weights)


def test_pick_parses_rules():
    values = np.array([[0, 1], [0.2, 0.3], [1, 0]])
    names = ["math", "code"]
    assert pareto.pick(values, MIN2, "knee", names) == 1
    assert pareto.pick(values, MIN2, "best:code", names) == 2
    assert pareto.pick(values, MIN2, "chebyshev:9,1", names) == 0
    assert pareto.pick(values, MIN2, "best:math", names, baseline_values=np.array([0.5, 0.5]), epsilon=0.0) == 1


@pytest.mark.parametrize(
    "rule, problem",
    [
        ("nearest", "unknown pick rule 'nearest'"),
        ("knee:2", "unknown pick rule"),
        ("best:", "unknown pick rule"),
        ("best:qa", "unknown objective 'qa'"),
        ("chebyshev:1", "has 1 weights"),
        ("chebyshev:a,b", "must be numbers"),
    ],
)
def test_pick_rejects_bad_rules_with_one_clear_line(rule, problem):
    with pytest.raises(ConfigError, match=problem) as info:
        pareto.pick(np.array([[0, 1], [1, 0]]), MIN2, rule, ["math", "code"])
    assert "\n" not in str(info.value)


def test_pick_needs_finite_values():
    with pytest.raises(ConfigError, match="no evaluated mixtures"):
        pareto.pick(np.zeros((0, 2)), MIN2, "knee", ["a", "b"])
    with pytest.raises(ConfigError, match="finite"):
        pareto.pick(np.array([[np.nan, 1.0]]), MIN2, "knee", ["a", "b"])
