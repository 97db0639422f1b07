"""Surrogates fitted once per objective: a registered surrogate by name, fitted to every column of ``Y``.

The surrogates are the ground floor: nothing here knows a study or its config. The study-aware helpers
(the surrogate that a study's config names) are in ``mixopt.analysis``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def make_surrogate(name: str | None = None, options: dict[str, Any] | None = None):
    """A fresh surrogate (``fit(X, y)``, ``predict(X, return_std=True)``) from the registry: ``name`` with
    ``options`` where given, else the default."""
    from mixopt.surrogates import DEFAULT_SURROGATE, SURROGATES

    return SURROGATES.create(name or DEFAULT_SURROGATE, options)


def fit_surrogates(X: np.ndarray, Y: np.ndarray, factory=None) -> list:
    """One fitted surrogate per objective, from mixtures ``X`` ``(n, K)`` and values ``Y`` ``(n, m)``;
    ``factory()`` makes each (default: ``make_surrogate``)."""
    factory = factory or make_surrogate
    return [factory().fit(X, Y[:, j]) for j in range(Y.shape[1])]


def predict(models: list, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted means and standard deviations ``(n, m)`` of every objective's model at ``X`` ``(n, K)``."""
    pairs = [model.predict(X, return_std=True) for model in models]
    return np.column_stack([p[0] for p in pairs]), np.column_stack([p[1] for p in pairs])
