"""Random search: uniform draws from the mixture polytope."""

from __future__ import annotations

import numpy as np

from mixopt.search.base import History, Searcher
from mixopt.space import MixtureSpace


class RandomSearcher(Searcher):
    def propose(self, space: MixtureSpace, history: History, n: int, *, seed: int) -> np.ndarray:
        return space.sample(n, seed=seed)
