"""The searcher contract: ``Searcher.propose(space, history, n, seed=...) -> (n, K) array``.

A searcher is a pure function of the history (no hidden state), so a resumed study needs nothing
but its storage. Constructors only store options.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from mixopt.space import MixtureSpace


@dataclass(frozen=True)
class History:
    """Completed evaluations at the search fidelity.

    ``weights`` ``(n, K)``; ``values`` ``(n, m)`` objective values as measured; ``stderr`` ``(n, m)`` or
    None; ``pending`` ``(p, K)`` mixtures proposed but not yet measured; ``directions`` per objective.
    """

    weights: np.ndarray
    values: np.ndarray
    directions: tuple[str, ...]
    stderr: np.ndarray | None = None
    pending: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

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


class Searcher(abc.ABC):
    @abc.abstractmethod
    def propose(self, space: MixtureSpace, history: History, n: int, *, seed: int) -> np.ndarray:
        """``n`` feasible mixtures, shape ``(n, K)``, deterministic for a given history and seed."""
