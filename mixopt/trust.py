"""Trust before promotion: how far a surrogate's candidate can be believed before an integration run, and how
well a cheap fidelity orders mixtures the way an expensive one does. Pure functions of arrays.

Every figure is per objective and oriented by its direction (``larger is better`` after orientation):

- regret at k: the best measured value minus the best measured value among the ``k`` runs the model ranks
  best out of fold (0: the model's top ``k`` hold the best run), with the true rank of its top pick (1: best);
- optimism: among the runs the model ranks in its best fifth, the mean of predicted minus measured (> 0:
  the model promises more than those runs delivered, the lower tail of its errors);
- calibration: the slope of measured on predicted (1: calibrated; below 1: predictions too spread out),
  and the share of runs inside the model's central 80% and 95% intervals;
- decision accuracy: over every pair of mixtures measured at both fidelities, the share the cheap one
  orders as the expensive one does (ties in either count half), with a bootstrap interval over mixtures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

BEST_SHARE = 0.2  # the model's best fifth of the runs is where optimism is measured
INTERVALS = (0.8, 0.95)  # central predictive intervals whose coverage is reported
BOOTSTRAP = 2000  # resamples for the decision-accuracy interval


def oriented(values: np.ndarray, direction: str) -> np.ndarray:
    """``values`` ``(n,)`` with larger better."""
    return values if direction == "maximize" else -values


def top_k_regret(measured: np.ndarray, predicted: np.ndarray, direction: str, k: int) -> tuple[float, int]:
    """(regret at ``k``, true rank of the model's top pick) of runs ``measured`` ``(n,)`` predicted out of
    fold as ``predicted`` ``(n,)``; the regret is in the objective's units, >= 0."""
    y, p = oriented(measured, direction), oriented(predicted, direction)
    order = np.argsort(-p, kind="stable")
    regret = float(y.max() - y[order[:k]].max())
    rank = int(1 + np.sum(y > y[order[0]]))
    return regret, rank


def optimism(measured: np.ndarray, predicted: np.ndarray, direction: str, share: float = BEST_SHARE) -> float:
    """Mean of predicted minus measured (oriented) over the runs the model ranks in its best ``share``."""
    y, p = oriented(measured, direction), oriented(predicted, direction)
    best = np.argsort(-p, kind="stable")[: max(1, int(round(share * len(y))))]
    return float(np.mean(p[best] - y[best]))


def calibration(measured: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> tuple[float, list[float]]:
    """(slope of ``measured`` on ``mean``, coverage of each of :data:`INTERVALS`) for ``(n,)`` arrays; the
    slope is NaN when the predictions do not vary."""
    from scipy.stats import norm  # imported here: the config reads this module, and scipy.stats is slow to import

    spread = np.var(mean)
    slope = float(np.cov(mean, measured, bias=True)[0, 1] / spread) if spread > 0 else float("nan")
    z = np.abs(measured - mean) / np.maximum(sd, 1e-300)
    return slope, [float(np.mean(z <= norm.ppf(0.5 + level / 2))) for level in INTERVALS]


def tv_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total-variation distance between mixtures ``a`` ``(..., K)`` and ``b`` ``(..., K)``."""
    return 0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum(axis=-1)


def plain_json(value: Any) -> Any:
    """``value`` (dicts, lists, numbers) with every NaN or infinity (a figure that cannot be computed) as None."""
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass(frozen=True)
class ObjectiveChecks:
    """The out-of-fold checks of one objective's model (see the module docstring)."""

    objective: str
    rank_corr: float
    regret_at_1: float
    regret_at_5: float
    rank_at_1: int
    optimism: float
    slope: float
    coverage_80: float
    coverage_95: float


def objective_checks(name: str, measured: np.ndarray, mean: np.ndarray, sd: np.ndarray, direction: str) -> ObjectiveChecks:
    """The checks of one objective from measured values and out-of-fold predicted means and sds ``(n,)``."""
    regret_1, rank_1 = top_k_regret(measured, mean, direction, 1)
    regret_5, _ = top_k_regret(measured, mean, direction, 5)
    from scipy.stats import spearmanr

    slope, (cover_80, cover_95) = calibration(measured, mean, sd)
    rho = spearmanr(measured, mean).statistic if len(measured) > 2 and np.ptp(mean) > 0 else float("nan")
    return ObjectiveChecks(name, float(rho), regret_1, regret_5, rank_1, optimism(measured, mean, direction),
                           slope, cover_80, cover_95)


@dataclass(frozen=True)
class Gates:
    """Limits a candidate must meet before its integration run (None: not checked)."""

    max_distance: float | None = None
    """Largest total-variation distance from the candidate to the nearest measured run."""
    min_rank_corr: float | None = None
    """Lowest out-of-fold Spearman rank correlation of every objective's model."""
    max_movement: float | None = None
    """Largest total-variation distance the candidate moves between refits on 50/75/100% of the runs."""
    min_coverage_80: float | None = None
    """Lowest share of runs inside every model's 80% interval."""


@dataclass(frozen=True)
class PromotionChecks:
    """Everything measured about one candidate: per-objective model checks, its TV distance to the
    nearest measured run, and how far it moves when the model is refit on the first 50% and 75% of runs."""

    objectives: list[ObjectiveChecks]
    distance: float | None
    movement: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain JSON (what the promotion log stores)."""
        return plain_json(asdict(self))

    def failures(self, gates: Gates) -> list[str]:
        """Each gate the candidate fails, as a sentence with the measured value and the limit."""
        failed = []
        if gates.max_distance is not None and self.distance is not None and self.distance > gates.max_distance:
            failed.append(f"distance to the nearest run {self.distance:.3f} > max_distance {gates.max_distance}")
        for check in self.objectives:
            if gates.min_rank_corr is not None and not check.rank_corr >= gates.min_rank_corr:
                failed.append(f"{check.objective}: rank correlation {check.rank_corr:.3f} < min_rank_corr {gates.min_rank_corr}")
            if gates.min_coverage_80 is not None and not check.coverage_80 >= gates.min_coverage_80:
                failed.append(f"{check.objective}: 80% interval coverage {check.coverage_80:.2f} < "
                              f"min_coverage_80 {gates.min_coverage_80}")
        moved = max(self.movement.values(), default=0.0)
        if gates.max_movement is not None and moved > gates.max_movement:
            failed.append(f"the candidate moved {moved:.3f} between refits > max_movement {gates.max_movement}")
        return failed


@dataclass(frozen=True)
class DecisionAccuracy:
    """How often the cheap fidelity orders a pair of mixtures as the expensive one does (one objective)."""

    mixtures: int
    pairs: int
    accuracy: float
    low: float  # bootstrap 95% interval over mixtures
    high: float
    rank_corr: float


def pair_agreement(cheap: np.ndarray, expensive: np.ndarray, rows: np.ndarray | None = None) -> float:
    """Share of the pairs of ``(n,)`` values that ``cheap`` orders as ``expensive`` does (a tie in either
    counts half); with ``rows`` (a resample of indices), over the pairs of distinct original mixtures.
    NaN without a pair."""
    rows = np.arange(len(cheap)) if rows is None else rows
    i, j = np.triu_indices(len(rows), k=1)
    i, j = rows[i], rows[j]
    keep = i != j
    if not keep.any():
        return float("nan")
    agree = np.sign(cheap[i[keep]] - cheap[j[keep]]) * np.sign(expensive[i[keep]] - expensive[j[keep]])
    return float(np.mean(np.where(agree == 0, 0.5, agree > 0)))


def decision_accuracy(cheap: np.ndarray, expensive: np.ndarray, seed: int = 0) -> DecisionAccuracy:
    """:class:`DecisionAccuracy` of mixtures measured at both fidelities (``(n,)`` values each, same order)."""
    from scipy.stats import spearmanr

    n = len(cheap)
    accuracy = pair_agreement(cheap, expensive)
    rng = np.random.default_rng(seed)
    draws = [pair_agreement(cheap, expensive, rows) for rows in rng.integers(0, n, (BOOTSTRAP, n))] if n > 2 else []
    low, high = (np.nanpercentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan))
    rho = spearmanr(cheap, expensive).statistic if n > 2 else float("nan")
    return DecisionAccuracy(n, n * (n - 1) // 2, accuracy, float(low), float(high), float(rho))
