"""The Data Mixing Laws / Olmix log-linear law ``y = c + s * exp(b + t . w)``, fitted robustly.

``s`` is +1 when the outcome falls as helpful data is added (a loss) and -1 when it rises (a score); both
signs are fitted and the better one kept. The fit minimizes a Huber loss on the standardized outcome plus a
small ridge penalty on ``t`` (64 free exponents on a few hundred runs need it), by L-BFGS with exact gradients.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from mixopt.surrogates.base import Surrogate

_EXP_CLIP = 30.0


def law_values(params: np.ndarray, sign: float, X: np.ndarray) -> np.ndarray:
    """``c + sign * exp(b + X @ t)`` for ``params = [c, b, t...]``; ``X`` ``(n, K)`` -> ``(n,)``."""
    return params[0] + sign * np.exp(np.clip(params[1] + X @ params[2:], -_EXP_CLIP, _EXP_CLIP))


def huber_objective(params, sign, X, z, delta, alpha):
    """Mean Huber loss of the law on standardized outcomes ``z`` plus ``alpha * |t|^2``, and its gradient."""
    e = sign * np.exp(np.clip(params[1] + X @ params[2:], -_EXP_CLIP, _EXP_CLIP))
    r = params[0] + e - z
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    dr = np.where(small, r, delta * np.sign(r)) / len(z)
    grad = np.empty_like(params)
    grad[0] = dr.sum()
    grad[1] = dr @ e
    grad[2:] = (dr * e) @ X + 2.0 * alpha * params[2:]
    return loss.mean() + alpha * params[2:] @ params[2:], grad


def fit_law(X: np.ndarray, z: np.ndarray, sign: float, delta: float, alpha: float) -> tuple[np.ndarray, float]:
    """Parameters and objective value of the law for one sign, started from a log-linear least-squares fit."""
    n, K = X.shape
    c0 = z.min() - 0.5 if sign > 0 else z.max() + 0.5
    design = np.c_[np.ones(n), X]
    start = np.linalg.solve(design.T @ design + 1e-3 * np.eye(K + 1), design.T @ np.log(np.abs(z - c0)))
    result = minimize(
        huber_objective, np.r_[c0, start], args=(sign, X, z, delta, alpha), jac=True, method="L-BFGS-B",
        options={"maxiter": 5000},
    )
    return result.x, float(result.fun)


class LogLinearLaw(Surrogate):
    """Options: ``alpha`` (ridge on the exponents, in standardized units), ``delta`` (Huber threshold in
    standard deviations of ``y``). ``predict(..., return_std=True)`` returns the residual scale."""

    def __init__(self, alpha: float = 1e-4, delta: float = 1.0) -> None:
        self.alpha = alpha
        self.delta = delta

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.y_mean_) / self.y_scale_
        fits = [(*fit_law(X, z, sign, self.delta, self.alpha), sign) for sign in (1.0, -1.0)]
        self.params_, _, self.sign_ = min(fits, key=lambda fit: fit[1])
        residuals = law_values(self.params_, self.sign_, X) - z
        self.residual_sd_ = float(1.4826 * np.median(np.abs(residuals - np.median(residuals)))) * self.y_scale_

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = self.y_mean_ + self.y_scale_ * law_values(self.params_, self.sign_, X)
        return mean, np.full(len(X), self.residual_sd_)
