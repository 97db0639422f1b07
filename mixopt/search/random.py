"""Random search: uniform draws from the mixture polytope."""

from __future__ import annotations

import numpy as np

from mixopt.search.base import Searcher
from mixopt.space import MixtureSpace
from mixopt.trials import History


class RandomSearcher(Searcher):
    def propose(self, space: MixtureSpace, history: History, n: int, *, seed: int) -> np.ndarray:
        return space.sample(n, seed=seed)
