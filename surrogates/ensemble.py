"""The default surrogate: members stacked with non-negative weights fitted on out-of-fold predictions.

Each member predicts every training row without having seen it (K-fold refits; the GP uses its exact
leave-one-out formula), the stack weights are the non-negative least-squares fit of ``y`` on those
predictions (plus an intercept), then every member is refitted on all rows.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls
from sklearn.base import clone

from mixopt.surrogates.base import Surrogate

DEFAULT_MEMBERS = ("gp", "gbm", "loglinear")


class Ensemble(Surrogate):
    """Options: ``members`` (surrogate names or unfitted surrogates), ``cv`` folds for the stack weights."""

    def __init__(self, members: tuple = DEFAULT_MEMBERS, cv: int = 5, random_state: int | None = 0) -> None:
        self.members = members
        self.cv = cv
        self.random_state = random_state

    def _member_estimators(self) -> list[Surrogate]:
        from mixopt.surrogates import SURROGATES

        return [SURROGATES.create(m) if isinstance(m, str) else clone(m) for m in self.members]

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        estimators = self._member_estimators()
        n_splits = min(self.cv, len(y))
        seed = 0 if self.random_state is None else self.random_state
        if n_splits >= 2:
            oof = np.column_stack([e.out_of_fold_predict(X, y, n_splits, seed) for e in estimators])
            self.weights_, self.intercept_ = stack_weights(oof, y)
        else:
            self.weights_, self.intercept_ = np.full(len(estimators), 1.0 / len(estimators)), 0.0
        self.estimators_ = [e.fit(X, y) for e in estimators]

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pairs = [e.predict(X, return_std=True) for e in self.estimators_]
        means, stds = np.column_stack([m for m, _ in pairs]), np.column_stack([s for _, s in pairs])
        mean = means @ self.weights_ + self.intercept_
        share = self.weights_ / max(self.weights_.sum(), 1e-12)
        variance = (stds**2 + (means - (means @ share)[:, None]) ** 2) @ share * self.weights_.sum() ** 2
        return mean, np.sqrt(variance)


def stack_weights(predictions: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative weights ``(M,)`` and intercept so that ``predictions @ w + b`` fits ``y`` ``(n,)``."""
    centered = predictions - predictions.mean(axis=0)
    weights, _ = nnls(centered, y - y.mean())
    if not weights.any():
        weights = np.full(predictions.shape[1], 1.0 / predictions.shape[1])
    return weights, float(y.mean() - predictions.mean(axis=0) @ weights)
