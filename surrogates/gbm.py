"""Gradient-boosted trees (LightGBM) bagged over seeds: the mean of the bag predicts, its spread is the std.

LightGBM over scikit-learn's HistGradientBoostingRegressor, by measurement (5-fold CV on the 512 RegMix
training rows, same trees and leaves): Spearman 0.9872 against 0.9852, in a quarter of the CPU time; row and
column subsampling per tree is what HistGradientBoosting lacks. Four bags: 0.9879, and a spread to use as std.
"""

from __future__ import annotations

import lightgbm
import numpy as np

from mixopt.surrogates.base import Surrogate


class GradientBoosting(Surrogate):
    """Options: ``n_bags`` models with different seeds; per model ``n_estimators`` trees of ``num_leaves``
    leaves at ``learning_rate``, each tree on ``subsample`` of the rows and ``colsample`` of the columns."""

    def __init__(
        self,
        n_bags: int = 4,
        n_estimators: int = 1500,
        learning_rate: float = 0.015,
        num_leaves: int = 15,
        min_child_samples: int = 5,
        subsample: float = 0.8,
        colsample: float = 0.7,
        random_state: int | None = 0,
    ) -> None:
        self.n_bags = n_bags
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample = colsample
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        seeds = np.random.default_rng(self.random_state).integers(0, 2**31 - 1, size=self.n_bags)
        self.models_ = [
            lightgbm.LGBMRegressor(
                n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                min_child_samples=min(self.min_child_samples, max(len(y) // 2, 1)), subsample=self.subsample,
                subsample_freq=1, colsample_bytree=self.colsample, random_state=int(seed), n_jobs=1, verbose=-1,
            ).fit(X, y)
            for seed in seeds
        ]

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        predictions = np.stack([model.predict(X) for model in self.models_])
        return predictions.mean(axis=0), predictions.std(axis=0)
