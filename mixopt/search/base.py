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
from dataclasses import dataclass, field

import numpy as np

from mixopt.search.outcome import OutcomeConstraint
from mixopt.space import MixtureSpace


def mean_composition(sizes: list[int]) -> np.ndarray:
    """Matrix ``(m, sum(sizes))`` whose row ``o`` averages the ``o``-th consecutive block of ``sizes[o]`` parts."""
    composition = np.zeros((len(sizes), sum(sizes)))
    for row, (start, size) in enumerate(zip(np.cumsum([0, *sizes[:-1]]), sizes, strict=True)):
        composition[row, start : start + size] = 1.0 / size
    return composition


@dataclass(frozen=True)
class Parts:
    """The measured metrics that objectives average (e.g. 13 domain losses whose mean is one objective).

    ``values`` ``(n, P)`` as measured; ``composition`` ``(m, P)``: objective ``o`` is ``values @ composition[o]``
    (each row a mean over that objective's parts, so each part belongs to one objective); ``stderr``
    ``(n, P)`` or None.
    """

    values: np.ndarray
    composition: np.ndarray
    stderr: np.ndarray | None = None

    def maximized(self, signs: np.ndarray) -> np.ndarray:
        """Parts oriented like their objectives (``signs`` ``(m,)``), larger is better, shape ``(n, P)``."""
        return self.values * (signs @ (self.composition != 0))


@dataclass(frozen=True)
class History:
    """Completed evaluations at the search fidelity.

    ``weights`` ``(n, K)``; ``values`` ``(n, m)`` objective values as measured; ``stderr`` ``(n, m)`` or
    None; ``pending`` ``(p, K)`` mixtures proposed but not yet measured; ``directions`` per objective;
    ``parts`` the metrics that objectives average, when every evaluation reported them (else None);
    ``trials`` ``(n,)`` the study's trial numbers of the rows, where the history comes from a study.
    """

    weights: np.ndarray
    values: np.ndarray
    directions: tuple[str, ...]
    stderr: np.ndarray | None = None
    pending: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    parts: Parts | None = None
    trials: np.ndarray | None = None

    @classmethod
    def empty(cls, dim: int, directions: tuple[str, ...]) -> History:
        return cls(np.zeros((0, dim)), np.zeros((0, len(directions))), directions, None, np.zeros((0, dim)))

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def signs(self) -> np.ndarray:
        """+1 for objectives to maximize, -1 to minimize, shape ``(m,)``."""
        return np.array([1.0 if d == "maximize" else -1.0 for d in self.directions])

    @property
    def maximized(self) -> np.ndarray:
        """Values oriented so that larger is better for every objective, shape ``(n, m)``."""
        return self.values * self.signs


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
