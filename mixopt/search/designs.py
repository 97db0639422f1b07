"""Feasible designs and candidate pools on the mixture polytope (pure functions of arrays and seeds).

Real mixture studies draw their runs near a "natural" distribution (token shares, or a team's current
mix) with Dirichlet noise of varied concentration, so that designs range from sparse to dense
mixtures. Draws that leave the polytope are pulled back along the segment towards a feasible anchor,
which keeps them feasible without a per-row optimization. Anchors are nudged off the boundary (a tenth
of the way to an interior point): a draw pulled towards an anchor on a face would collapse onto it.
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
    blocks = [np.eye(space.dim), -np.eye(space.dim)]
    bounds = [space.upper, -space.lower]
    if space.groups:
        G, h = space.linear_constraints()
        blocks.append(G)
        bounds.append(h)
    A, b = np.vstack(blocks), np.concatenate(bounds)
    step = (W - anchor) @ A.T  # (n, c): growth of each constraint along the segment
    room = np.maximum(b - A @ anchor, 0.0)  # (c,)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(step > 1e-15, room / step, np.inf)
    t = np.clip(ratio.min(axis=1), 0.0, 1.0)[:, None]
    return anchor + t * (W - anchor)


def interior_point(space: MixtureSpace) -> np.ndarray:
    """A point in the relative interior of the polytope ``(K,)``: the mean of uniform samples."""
    return space.sample(256, seed=0).mean(axis=0)


def _anchor(space: MixtureSpace, center: np.ndarray) -> np.ndarray:
    return 0.9 * center + 0.1 * interior_point(space)


def _dirichlet_around(
    space: MixtureSpace, centers: np.ndarray, concentration: np.ndarray, rng, extra: float = 0.0
) -> np.ndarray:
    """One draw per row of ``centers`` ``(n, K)``, centred on it: the lower bounds plus the free mass
    spread by Dirichlet(max(concentration * k * share, 1e-3) + extra) over the k unpinned sources."""
    free = space.upper - space.lower > 1e-12
    mass = 1.0 - space.lower.sum()
    share = np.clip(centers[:, free] - space.lower[free], 0.0, None)
    share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
    G = rng.gamma(np.maximum(concentration * free.sum() * share, 1e-3) + extra)
    total = G.sum(axis=1, keepdims=True)
    W = np.tile(space.lower, (len(centers), 1))
    W[:, free] += mass * np.where(total > 0, G / np.where(total > 0, total, 1.0), share)
    return W


def dirichlet_design(
    space: MixtureSpace, center: np.ndarray, n: int, seed: int, concentration: tuple[float, float] = CONCENTRATION_RANGE
) -> np.ndarray:
    """``n`` feasible mixtures ``(n, K)`` drawn around ``center`` with a Dirichlet concentration c
    log-uniform in ``concentration`` (per unit of mass, per source): small c gives sparse mixtures,
    large c mixtures close to ``center``."""
    rng = np.random.default_rng(seed)
    c = np.exp(rng.uniform(np.log(concentration[0]), np.log(concentration[1]), size=(n, 1)))
    draws = _dirichlet_around(space, np.tile(center, (n, 1)), c, rng)
    return pull_into(space, draws, _anchor(space, center))


def local_design(space: MixtureSpace, centers: np.ndarray, n: int, seed: int, concentration: float) -> np.ndarray:
    """``n`` feasible mixtures ``(n, K)`` near the feasible rows of ``centers`` ``(c, K)``, cycling over them."""
    rng = np.random.default_rng(seed)
    base = centers[np.arange(n) % len(centers)]
    draws = _dirichlet_around(space, base, np.full((n, 1), concentration), rng, extra=0.05)
    out = np.empty_like(draws)
    inside = interior_point(space)
    for i, center in enumerate(centers):
        rows = np.arange(i, n, len(centers))
        out[rows] = pull_into(space, draws[rows], 0.9 * center + 0.1 * inside)
    return out
