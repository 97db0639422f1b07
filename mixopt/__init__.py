"""mixopt: Bayesian optimization of training data mixtures."""

__version__ = "0.1.0"
