"""Pareto fronts over objective values (pure functions on arrays)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def orient(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Values ``(n, m)`` flipped so that larger is better for every objective."""
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    return np.asarray(values, dtype=float) * signs


def non_dominated(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask ``(n,)`` of the rows of ``values`` ``(n, m)`` that no other row dominates."""
    import torch
    from botorch.utils.multi_objective.pareto import is_non_dominated

    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return is_non_dominated(torch.as_tensor(orient(values, directions)), deduplicate=False).numpy()
