"""Surrogates: scikit-learn-style regressors from mixtures to outcomes (installed as ``mixopt.surrogates``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mixopt.registry import Registry

if TYPE_CHECKING:
    from mixopt.surrogates.base import Surrogate

SURROGATES = Registry(
    "surrogate",
    {
        "loglinear": "mixopt.surrogates.loglinear:LogLinearLaw",
        "gbm": "mixopt.surrogates.gbm:GradientBoosting",
        "gp": "mixopt.surrogates.gp:GaussianProcess",
        "ensemble": "mixopt.surrogates.ensemble:Ensemble",
        "multifidelity": "mixopt.surrogates.multifidelity:MultiFidelity",
    },
)

DEFAULT_SURROGATE = "gp"  # the config's and the CLI's: calibrated, and fast enough to refit per round and per fold
# (the stacked "ensemble" ranks slightly better and fits about 10x slower; BENCHMARKS.md, "Surrogates")

__all__ = ["DEFAULT_SURROGATE", "SURROGATES", "Surrogate"]


def __getattr__(name: str) -> Any:
    """``Surrogate`` imported on first use: the registry and the default name stay cheap to import (config)."""
    if name == "Surrogate":
        from mixopt.surrogates.base import Surrogate

        return Surrogate
    raise AttributeError(f"module 'mixopt.surrogates' has no attribute '{name}'")
