"""Scores of predictions against outcomes, and cross-validated predictions of a surrogate."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.model_selection import KFold


def cross_validated_predictions(surrogate, X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions ``(n,)`` with ``KFold(folds, shuffle=True, random_state=seed)``."""
    out = np.empty(len(y))
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        out[test] = clone(surrogate).fit(X[train], y[train]).predict(X[test])
    return out


def top_k_regret(y_true: np.ndarray, y_pred: np.ndarray, k: int, maximize: bool = False) -> float:
    """How much worse than the best row the best of the ``k`` rows ranked best by ``y_pred`` is (>= 0)."""
    sign = -1.0 if maximize else 1.0
    picked = np.argsort(sign * y_pred, kind="stable")[:k]
    return float(np.min(sign * y_true[picked]) - np.min(sign * y_true))


def prediction_scores(y_true: np.ndarray, y_pred: np.ndarray, k: int = 5, maximize: bool = False) -> dict[str, float]:
    """Spearman, Pearson, RMSE and top-``k`` regret of ``y_pred`` against ``y_true`` (both ``(n,)``)."""
    return {
        "spearman": float(spearmanr(y_true, y_pred)[0]),
        "pearson": float(pearsonr(y_true, y_pred)[0]),
        "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))),
        f"top{k}_regret": top_k_regret(y_true, y_pred, k, maximize),
    }
