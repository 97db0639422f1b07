"""Surrogates: scikit-learn-style regressors from mixtures to outcomes (installed as ``mixopt.surrogates``)."""

from mixopt.registry import Registry

SURROGATES = Registry("surrogate", {})
