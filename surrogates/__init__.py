"""Surrogates: scikit-learn-style regressors from mixtures to outcomes (installed as ``mixopt.surrogates``)."""

from mixopt.registry import Registry
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

DEFAULT_SURROGATE = "ensemble"

__all__ = ["DEFAULT_SURROGATE", "SURROGATES", "Surrogate"]
