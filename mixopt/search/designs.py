"""Feasible designs and candidate pools on the mixture polytope (pure functions of arrays and seeds).

Real mixture studies draw their runs near a "natural" distribution (token shares, or a team's current
mix) with Dirichlet noise of varied concentration, so that designs range from sparse to dense
mixtures. Draws that leave the polytope are pulled back along the segment towards a feasible anchor,
which keeps them feasible without a per-row optimization.
"""

from __future__ import annotations

import numpy as np

from mixopt.errors import ConfigError
from mixopt.space import MixtureSpace

# Dirichlet concentration per unit of prior mass: log-uniform between sparse and dense draws.
CONCENTRATION_RANGE = (0.3, 30.0)


def prior_mixture(space: MixtureSpace, prior: dict[str, float] | None = None) -> np.ndarray:
    """The natural distribution ``(K,)``: ``prior`` if given, else token shares when every source has
    ``tokens``, else uniform; normalized and projected onto the polytope."""
    if prior is not None:
        w = space.from_dict(prior)
        if np.any(w < 0) or w.sum() <= 0:
            raise ConfigError("prior weights must be >= 0 with a positive sum")
    elif all(s.tokens for s in space.sources):
        w = np.array([s.tokens for s in space.sources], float)
    else:
        w = np.ones(space.dim)
    return space.project(w / w.sum())


def pull_into(space: MixtureSpace, W: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """Move each row of ``W`` ``(n, K)`` (rows summing to 1) towards the feasible ``anchor`` ``(K,)``
    just enough to satisfy every bound and group constraint (largest feasible step, ratio test)."""
    A = [np.eye(space.dim), -np.eye(space.dim)]
    b = [space.upper, -space.lower]
    if space.groups:
        G, h = space.linear_constraints()
        A.append(G)
        b.append(h)
    A, b = np.vstack(A), np.concatenate(b)
    step = (W - anchor) @ A.T  # (n, c): growth of each constraint along the segment
    room = np.maximum(b - A @ anchor, 0.0)  # (c,)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(step > 1e-15, room / step, np.inf)
    t = np.clip(ratio.min(axis=1), 0.0, 1.0)[:, None]
    return anchor + t * (W - anchor)


def dirichlet_design(
    space: MixtureSpace, center: np.ndarray, n: int, seed: int, concentration: tuple[float, float] = CONCENTRATION_RANGE
) -> np.ndarray:
    """``n`` feasible mixtures ``(n, K)`` drawn as Dirichlet(c * K * center) with c log-uniform in
    ``concentration``: small c gives sparse mixtures, large c mixtures close to ``center``."""
    rng = np.random.default_rng(seed)
    c = np.exp(rng.uniform(np.log(concentration[0]), np.log(concentration[1]), size=(n, 1)))
    alpha = np.maximum(c * space.dim * center, 1e-3)
    G = rng.gamma(alpha)
    draws = G / np.maximum(G.sum(axis=1, keepdims=True), 1e-300)
    # Rows whose gamma draws all underflowed fall back to the center.
    draws[~np.isfinite(draws).all(axis=1) | (G.sum(axis=1) <= 0)] = center
    return pull_into(space, draws, center)


def local_design(space: MixtureSpace, centers: np.ndarray, n: int, seed: int, concentration: float) -> np.ndarray:
    """``n`` feasible mixtures ``(n, K)`` near the feasible rows of ``centers`` ``(c, K)``:
    Dirichlet(concentration * K * center + 0.05) draws, cycling over the centers."""
    rng = np.random.default_rng(seed)
    base = centers[np.arange(n) % len(centers)]
    G = rng.gamma(concentration * space.dim * base + 0.05)
    draws = G / G.sum(axis=1, keepdims=True)
    out = np.empty_like(draws)
    for i, center in enumerate(centers):
        rows = np.arange(i, n, len(centers))
        out[rows] = pull_into(space, draws[rows], center)
    return out
