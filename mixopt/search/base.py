"""The searcher contract: ``Searcher.propose(space, history, n, seed=...) -> (n, K) array`` and
``Searcher.recommend(space, history, seed=...) -> (K,)``, the mixture it would train for real.

A searcher is a pure function of the history (no hidden state), so a resumed study needs nothing
but its storage. Constructors store (and may check) their options and keep no other state; every
searcher takes ``outcome_constraint`` (see :mod:`mixopt.search.outcome`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from mixopt.search.outcome import OutcomeConstraint
from mixopt.space import MixtureSpace


def mean_composition(sizes: list[int]) -> np.ndarray:
    """Matrix ``(m, sum(sizes))`` whose row ``o`` averages the ``o``-th consecutive block of ``sizes[o]`` parts."""
    composition = np.zeros((len(sizes), sum(sizes)))
    for row, (start, size) in enumerate(zip(np.cumsum([0, *sizes[:-1]]), sizes)):
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
    ``parts`` the metrics that objectives average, when every evaluation reported them (else None).
    """

    weights: np.ndarray
    values: np.ndarray
    directions: tuple[str, ...]
    stderr: np.ndarray | None = None
    pending: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    parts: Parts | None = None

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


def scalarize(maximized: np.ndarray) -> np.ndarray:
    """Equal-weight sum of per-objective z-scores of ``maximized`` ``(n, m)`` -> ``(n,)``, larger is better."""
    spread = maximized.std(axis=0)
    return ((maximized - maximized.mean(axis=0)) / np.where(spread > 0, spread, 1.0)).sum(axis=1)


class Searcher(abc.ABC):
    def __init__(self, outcome_constraint: dict | None = None) -> None:
        self.outcome_constraint = OutcomeConstraint.parse(outcome_constraint)

    @abc.abstractmethod
    def propose(self, space: MixtureSpace, history: History, n: int, *, seed: int) -> np.ndarray:
        """``n`` feasible mixtures, shape ``(n, K)``, deterministic for a given history and seed."""

    def recommend(self, space: MixtureSpace, history: History, *, seed: int) -> np.ndarray:
        """The mixture to train for real, shape ``(K,)``: by default the best measured one on the
        equal-weight scalarization, among those that meet the outcome constraint when any does."""
        if len(history) == 0:
            return space.sample(1, seed=seed)[0]
        score = scalarize(history.maximized)
        if self.outcome_constraint is not None:
            meets = self.outcome_constraint.met(space, history, history.maximized)
            if meets is not None and meets.any():
                score = np.where(meets, score, -np.inf)
        return history.weights[int(np.argmax(score))]
