"""Study-aware surrogate helpers: the surrogate that a study's config names, for the report, the integration
rounds and the notebooks (the surrogates themselves, in ``mixopt.surrogates``, know no study)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mixopt.config import ComponentConfig
from mixopt.surrogates import fitting
from mixopt.surrogates.fitting import fit_surrogates, predict

if TYPE_CHECKING:
    from mixopt.study import Study

__all__ = ["fit_surrogates", "make_surrogate", "predict", "surrogate_factory"]


def make_surrogate(component: ComponentConfig | None = None) -> Any:
    """A fresh surrogate (``fit(X, y)``, ``predict(X, return_std=True)``) from the registry: the study
    config's ``surrogate`` component where given, else the default."""
    if component is None:
        return fitting.make_surrogate()
    return fitting.make_surrogate(component.name, component.options)


def surrogate_factory(study: Study) -> Callable[[], Any]:
    """Makes the surrogate the study's config names (fitted once per objective)."""
    return lambda: make_surrogate(study.config.surrogate)
