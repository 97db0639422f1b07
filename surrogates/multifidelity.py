"""Integration outcomes from many microanneals and a few integration runs (autoregressive correction).

``X`` is ``(n, K + 1)``: the mixture weights, then the fidelity (``target_fidelity`` marks integration
runs, any other value a microanneal). A surrogate ``f_micro`` is fitted on the microanneals; on the
integration runs a Bayesian ridge regression fits ``y ~ rho * f_micro(w) + delta . w + c``, which is the
autoregressive co-kriging form with a linear discrepancy (a few integration runs support no more).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.linear_model import BayesianRidge
from sklearn.model_selection import LeaveOneOut, cross_val_predict

from mixopt.errors import ConfigError
from mixopt.surrogates.base import Surrogate


class MultiFidelity(Surrogate):
    """Options: ``micro_model`` (surrogate name or unfitted surrogate for the microanneals),
    ``target_fidelity`` (value of the fidelity column for integration runs).

    Learned: ``rho_`` and ``delta_``, ``fidelity_spearman_`` (rank correlation between the microanneal
    model's predictions and the integration outcomes) and ``corrected_spearman_`` (the same for the
    corrected model, leave-one-out over the integration runs)."""

    def __init__(self, micro_model="gp", target_fidelity: float = 1.0) -> None:
        self.micro_model = micro_model
        self.target_fidelity = target_fidelity

    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return X[:, :-1], X[:, -1] == self.target_fidelity

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from mixopt.surrogates import SURROGATES

        W, high = self._split(X)
        if high.sum() < 3 or (~high).sum() < 3:
            raise ConfigError(
                f"multifidelity surrogate: needs at least 3 microanneal and 3 integration runs (fidelity "
                f"{self.target_fidelity}); got {(~high).sum()} and {high.sum()}"
            )
        base = self.micro_model
        self.micro_ = (SURROGATES.create(base) if isinstance(base, str) else clone(base)).fit(W[~high], y[~high])
        features = self._correction_features(W[high])
        self.correction_ = BayesianRidge().fit(features, y[high])
        self.rho_, self.delta_ = float(self.correction_.coef_[0]), self.correction_.coef_[1:]
        self.fidelity_spearman_ = float(spearmanr(features[:, 0], y[high])[0])
        loo = cross_val_predict(BayesianRidge(), features, y[high], cv=LeaveOneOut())
        self.corrected_spearman_ = float(spearmanr(loo, y[high])[0])

    def _correction_features(self, W: np.ndarray) -> np.ndarray:
        return np.column_stack([self.micro_.predict(W), W])

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        W, high = self._split(X)
        mean, std = self.micro_.predict(W, return_std=True)
        if high.any():
            corrected, corrected_std = self.correction_.predict(self._correction_features(W[high]), return_std=True)
            mean[high] = corrected
            std[high] = np.sqrt(corrected_std**2 + (self.rho_ * std[high]) ** 2)
        return mean, std
