"""Trust before promotion: each check against hand-made cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixopt import trust


def test_regret_at_k_and_the_true_rank_of_the_top_pick():
    measured = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert trust.top_k_regret(measured, measured, "maximize", 1) == (0.0, 1)  # a perfect model
    assert trust.top_k_regret(measured, -measured, "maximize", 1) == (4.0, 5)  # a reversed one picks the worst
    assert trust.top_k_regret(measured, -measured, "maximize", 5) == (0.0, 5)  # its top 5 hold everything
    assert trust.top_k_regret(measured, measured, "minimize", 1) == (0.0, 1)  # oriented by the direction
    assert trust.top_k_regret(measured, -measured, "minimize", 1) == (4.0, 5)


def test_optimism_is_what_the_best_ranked_runs_were_promised_beyond_what_they_gave():
    measured = np.arange(10, dtype=float)
    promised = measured.copy()
    promised[-2:] += 1.5  # the model over-promises its two best (the top fifth of 10 runs)
    assert trust.optimism(measured, promised, "maximize") == pytest.approx(1.5)
    assert trust.optimism(measured, measured, "maximize") == 0.0


def test_calibration_of_a_calibrated_and_of_an_overconfident_model():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=4000)
    measured = mean + rng.normal(scale=0.3, size=4000)
    slope, (cover_80, cover_95) = trust.calibration(measured, mean, np.full(4000, 0.3))
    assert slope == pytest.approx(1.0, abs=0.03)
    assert cover_80 == pytest.approx(0.80, abs=0.02) and cover_95 == pytest.approx(0.95, abs=0.01)
    _, (overconfident_80, _) = trust.calibration(measured, mean, np.full(4000, 0.03))
    assert overconfident_80 < 0.15
    spread_slope, _ = trust.calibration(measured, 2 * mean, np.full(4000, 0.3))  # predictions twice too spread
    assert spread_slope == pytest.approx(0.5, abs=0.02)


def checks(distance: float, coverage_80: float = 0.8, rank_corr: float = 0.9, moved: float = 0.0) -> trust.PromotionChecks:
    one = trust.ObjectiveChecks("loss", rank_corr, 0.0, 0.0, 1, 0.0, 1.0, coverage_80, 0.95)
    return trust.PromotionChecks([one], distance, {"50%": moved, "75%": moved / 2})


def test_gates_fail_with_the_measured_value_and_the_limit():
    gates = trust.Gates(max_distance=0.3, min_rank_corr=0.5, max_movement=0.2, min_coverage_80=0.6)
    assert checks(0.1).failures(gates) == []
    assert checks(0.45).failures(gates) == ["distance to the nearest run 0.450 > max_distance 0.3"]
    assert checks(0.1, coverage_80=0.2).failures(gates) == ["loss: 80% interval coverage 0.20 < min_coverage_80 0.6"]
    assert checks(0.1, rank_corr=float("nan")).failures(gates)[0].startswith("loss: rank correlation nan")
    assert checks(0.1, moved=0.5).failures(gates) == ["the candidate moved 0.500 between refits > max_movement 0.2"]
    assert checks(0.9).failures(trust.Gates()) == []  # no gates: checks are logged only


def test_checks_are_stored_as_plain_json():
    stored = checks(0.1, rank_corr=float("nan")).as_dict()
    assert stored["objectives"][0]["rank_corr"] is None and stored["distance"] == 0.1


def test_decision_accuracy_of_a_perfect_a_reversed_and_a_noisy_fidelity():
    rng = np.random.default_rng(1)
    expensive = rng.normal(size=40)
    perfect = trust.decision_accuracy(2 * expensive + 1, expensive)
    assert (perfect.accuracy, perfect.low, perfect.high, perfect.rank_corr) == (1.0, 1.0, 1.0, 1.0)
    assert perfect.mixtures == 40 and perfect.pairs == 780
    assert trust.decision_accuracy(-expensive, expensive).accuracy == 0.0
    noisy = trust.decision_accuracy(expensive + rng.normal(scale=1.0, size=40), expensive)
    assert 0.55 < noisy.accuracy < 0.95 and noisy.low < noisy.accuracy < noisy.high
    assert math.isnan(trust.decision_accuracy(expensive[:1], expensive[:1]).accuracy)


def test_ties_count_half():
    assert trust.pair_agreement(np.array([1.0, 1.0]), np.array([1.0, 2.0])) == 0.5
