"""The surrogate contract: scikit-learn regressors from mixture weights to one outcome.

``fit(X, y) -> self`` with ``X`` ``(n, K)`` mixture weights (rows on the simplex) and ``y`` ``(n,)``;
``predict(X, return_std=False)`` -> ``(m,)`` means, or ``(means, stds)``. Constructors only store their
arguments; learned attributes end in ``_``.
"""

from __future__ import annotations

import abc

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from mixopt.surrogates.evaluation import cross_validated_predictions


class Surrogate(RegressorMixin, BaseEstimator, abc.ABC):
    """Base of every surrogate; subclasses implement ``_fit`` and ``_predict`` on validated arrays."""

    def fit(self, X, y) -> Surrogate:
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        self._fit(X, y)
        return self

    def predict(self, X, return_std: bool = False):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        mean, std = self._predict(X)
        return (mean, std) if return_std else mean

    def out_of_fold_predict(self, X, y, n_splits: int, seed: int) -> np.ndarray:
        """Predictions ``(n,)`` for each training row from a copy fitted without its fold."""
        return cross_validated_predictions(self, np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64),
                                           n_splits, seed)

    @abc.abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means and standard deviations, each ``(m,)``."""
