"""Surrogates fitted once per objective: how the report and the integration rounds use the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mixopt.config import ComponentConfig

if TYPE_CHECKING:
    from mixopt.study import Study


def make_surrogate(component: ComponentConfig | None = None):
    """A fresh surrogate (``fit(X, y)``, ``predict(X, return_std=True)``) from the registry: the study
    config's ``surrogate`` where given, else the default."""
    from mixopt.surrogates import DEFAULT_SURROGATE, SURROGATES

    component = component or ComponentConfig(DEFAULT_SURROGATE)
    return SURROGATES.create(component.name, component.options)


def surrogate_factory(study: Study):
    """Makes the surrogate the study's config names (fitted once per objective)."""
    return lambda: make_surrogate(study.config.surrogate)


def fit_surrogates(X: np.ndarray, Y: np.ndarray, factory=None) -> list:
    """One fitted surrogate per objective, from mixtures ``X`` ``(n, K)`` and values ``Y`` ``(n, m)``;
    ``factory()`` makes each (default: ``make_surrogate``)."""
    factory = factory or make_surrogate
    return [factory().fit(X, Y[:, j]) for j in range(Y.shape[1])]


def predict(models: list, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted means and standard deviations ``(n, m)`` of every objective's model at ``X`` ``(n, K)``."""
    pairs = [model.predict(X, return_std=True) for model in models]
    return np.column_stack([p[0] for p in pairs]), np.column_stack([p[1] for p in pairs])
