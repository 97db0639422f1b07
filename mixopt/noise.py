"""Run-to-run noise over the simplex, learned from replicates (pure functions of arrays).

Repeated runs of one mixture differ by seed, and by how much depends on the mixture (in the field, up to
25x across the simplex). Where a runner reports no standard error, the noise of every observation is
estimated from the mixtures that were run more than once:

- each replicated mixture gives a sample variance per objective, ``s^2`` with ``r - 1`` degrees of freedom;
- ``log s^2`` is an unbiased-after-correction estimate of ``log sigma^2``: for Gaussian runs
  ``E[log s^2] = log sigma^2 + digamma(nu / 2) - log(nu / 2)`` with ``nu = r - 1``, so that bias is removed;
- with at least ``MIN_GROUPS_FOR_TREND`` replicated mixtures, a Gaussian process (scikit-learn; RBF plus a
  white-noise term, the latter for the sampling error of ``log s^2``, about ``2 / nu``) smooths the
  corrected log variances over the weights; with fewer, the pooled variance holds everywhere.

:func:`fit_noise` returns None with fewer than ``MIN_DOF`` replicate degrees of freedom (an accidental
repeat is not an estimate): the searcher then infers one noise level itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma

MIN_GROUPS_FOR_TREND = 3  # replicated mixtures needed before the noise may vary over the simplex
MIN_DOF = 4  # replicate degrees of freedom (runs minus one, summed) needed to estimate any noise level
MIN_VARIANCE = 1e-12  # floor of a predicted variance (objective units squared)


def mixture_ids(weights: np.ndarray, decimals: int = 9) -> np.ndarray:
    """``(n,)`` ids of the distinct mixtures among rows ``(n, K)`` (identical weights to ``decimals``)."""
    if len(weights) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.asarray(weights, dtype=float), decimals), axis=0, return_inverse=True)[1].reshape(-1)


@dataclass(frozen=True)
class ReplicateStats:
    """Per replicated mixture: ``weights`` ``(g, K)``, ``variance`` ``(g, m)`` (sample variances) and
    ``dof`` ``(g,)`` (runs minus one)."""

    weights: np.ndarray
    variance: np.ndarray
    dof: np.ndarray


def replicate_stats(W: np.ndarray, Y: np.ndarray) -> ReplicateStats:
    """Sample variances of the mixtures in ``W`` ``(n, K)`` run more than once, from values ``Y`` ``(n, m)``."""
    ids = mixture_ids(W)
    groups = [np.flatnonzero(ids == g) for g in np.unique(ids)]
    groups = [rows for rows in groups if len(rows) > 1]
    m = Y.shape[1]
    if not groups:
        return ReplicateStats(np.zeros((0, W.shape[1])), np.zeros((0, m)), np.zeros(0))
    return ReplicateStats(
        np.array([W[rows[0]] for rows in groups]),
        np.array([Y[rows].var(axis=0, ddof=1) for rows in groups]),
        np.array([len(rows) - 1 for rows in groups], dtype=float),
    )


def log_variance_bias(dof: np.ndarray) -> np.ndarray:
    """``E[log s^2] - log sigma^2`` for Gaussian runs with ``dof`` degrees of freedom ``(g,)``."""
    half = np.asarray(dof, float) / 2.0
    return digamma(half) - np.log(half)


@dataclass(frozen=True)
class NoiseModel:
    """Observation noise variance at any mixture: ``variance(W)`` ``(n, m)`` for rows ``W`` ``(n, K)``.

    ``pooled`` ``(m,)`` is the dof-weighted mean of the replicate variances; ``trends`` one fitted GP
    of the corrected log variance per objective (None: the pooled variance everywhere)."""

    pooled: np.ndarray
    trends: tuple | None
    groups: int

    def variance(self, W: np.ndarray) -> np.ndarray:
        W = np.atleast_2d(np.asarray(W, float))
        if self.trends is None:
            return np.tile(np.maximum(self.pooled, MIN_VARIANCE), (len(W), 1))
        logs = np.column_stack([gp.predict(W) for gp in self.trends])
        return np.maximum(np.exp(logs), MIN_VARIANCE)


def fit_noise(W: np.ndarray, Y: np.ndarray, seed: int = 0) -> NoiseModel | None:
    """The noise model of runs ``W`` ``(n, K)`` with values ``Y`` ``(n, m)``; None without enough replicates."""
    stats = replicate_stats(np.asarray(W, float), np.asarray(Y, float))
    if stats.dof.sum() < MIN_DOF:
        return None
    pooled = (stats.variance * stats.dof[:, None]).sum(axis=0) / stats.dof.sum()
    if len(stats.dof) < MIN_GROUPS_FOR_TREND:
        return NoiseModel(pooled, None, len(stats.dof))
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    corrected = np.log(np.maximum(stats.variance, MIN_VARIANCE)) - log_variance_bias(stats.dof)[:, None]
    sampling = float(np.mean(2.0 / stats.dof))  # variance of log s^2 about log sigma^2, roughly 2 / nu
    trends = []
    for column in corrected.T:
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * RBF(0.5, (0.05, 10.0)) + WhiteKernel(sampling, (1e-3, 10.0))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed, n_restarts_optimizer=2)
        trends.append(gp.fit(stats.weights, column))
    return NoiseModel(pooled, tuple(trends), len(stats.dof))
