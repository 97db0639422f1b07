"""The searcher contract: ``Searcher.propose(space, history, n, seed=...) -> (n, K) array`` and, for a
searcher that keeps a model, ``Searcher.predictor(space, history, seed=...)``: its posterior, from which
:mod:`mixopt.recommend` chooses the mixture to train for real.

A searcher is a pure function of the history (no hidden state), so a resumed study needs nothing
but its storage. Constructors store (and may check) their options and keep no other state; every
searcher takes ``outcome_constraint`` (see :mod:`mixopt.search.outcome`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import numpy as np

from mixopt.candidates import nearest_unused
from mixopt.search.outcome import OutcomeConstraint
from mixopt.space import MixtureSpace
from mixopt.trials import History

# Predicted (mean, sd) of each objective, in the objective's own units, at mixtures W (n, K) -> (n, m) each.
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def scalarize(maximized: np.ndarray) -> np.ndarray:
    """Equal-weight sum of per-objective z-scores of ``maximized`` ``(n, m)`` -> ``(n,)``, larger is better."""
    spread = maximized.std(axis=0)
    return ((maximized - maximized.mean(axis=0)) / np.where(spread > 0, spread, 1.0)).sum(axis=1)


class Searcher(abc.ABC):
    prior: dict[str, float] | None = None  # the natural distribution, where the searcher takes one

    def __init__(self, outcome_constraint: dict | None = None) -> None:
        self.outcome_constraint = OutcomeConstraint.parse(outcome_constraint)

    @abc.abstractmethod
    def propose(self, space: MixtureSpace, history: History, n: int, *, seed: int) -> np.ndarray:
        """``n`` feasible mixtures, shape ``(n, K)``, deterministic for a given history and seed."""

    def predictor(self, space: MixtureSpace, history: History, *, seed: int) -> Predictor | None:
        """The searcher's model of ``history`` as a :data:`Predictor`, or None for a model-free searcher
        (the recommendation then fits its own). Deterministic for a given history and seed."""
        return None


def propose_within(searcher: Searcher, space: MixtureSpace, history: History, n: int, *, seed: int) -> np.ndarray:
    """The batch ``(n, K)`` a study queues: ``searcher``'s proposals; in a space with candidates, each mapped to
    the nearest candidate not measured, pending or earlier in the batch (:func:`mixopt.candidates.nearest_unused`)."""
    W = searcher.propose(space, history, n, seed=seed)
    if space.candidates is None:
        return W
    taken = np.vstack([history.weights, history.pending]) if len(history.pending) else history.weights
    return nearest_unused(space.candidates, W, taken)


def believed_order(mean: np.ndarray, k: int) -> np.ndarray:
    """Indices of up to ``k`` rows of the maximized means ``(n, m)``, best first: with one objective by
    mean; with several, points spread along the non-dominated front (sorted by the first objective),
    then the rest by the equal-weight scalarization."""
    from mixopt.pareto import non_dominated

    ranked = np.argsort(-scalarize(mean), kind="stable")
    if mean.shape[1] > 1:
        front = np.flatnonzero(non_dominated(mean, ("maximize",) * mean.shape[1]))
        front = front[np.argsort(mean[front, 0], kind="stable")]
        spread = front[np.unique(np.linspace(0, len(front) - 1, min(k, len(front))).round().astype(int))]
        ranked = np.concatenate([spread, ranked[~np.isin(ranked, spread)]])
    return ranked[:k]
