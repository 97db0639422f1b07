"""Generated mixture spaces (bounds, pinned sources, groups) and histories for the searcher tests."""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from mixopt.errors import InfeasibleSpaceError
from mixopt.space import Group, MixtureSpace, Source
from mixopt.trials import History, Parts


@st.composite
def spaces(draw, min_sources: int = 3, max_sources: int = 6) -> MixtureSpace:
    """Feasible spaces mixing free, bounded and pinned sources, with up to two group constraints."""
    k = draw(st.integers(min_sources, max_sources))
    names = [f"s{i}" for i in range(k)]
    sources = []
    for name in names:
        kind = draw(st.sampled_from(["free", "bounded", "bounded", "fixed"]))
        if kind == "fixed":
            sources.append(Source(name, fixed_weight=draw(st.integers(0, 3)) / 20))
        elif kind == "bounded":
            lo, hi = sorted([draw(st.integers(0, 8)) / 20, draw(st.integers(2, 20)) / 20])
            sources.append(Source(name, min_weight=lo, max_weight=hi))
        else:
            sources.append(Source(name))
    groups = []
    for g in range(draw(st.integers(0, 2))):
        members = draw(st.lists(st.sampled_from(names), min_size=1, max_size=k - 1, unique=True))
        lo, hi = sorted([draw(st.integers(0, 12)) / 20, draw(st.integers(6, 20)) / 20])
        groups.append(Group(f"g{g}", tuple(members), lo, hi))
    try:
        space = MixtureSpace(tuple(sources), tuple(groups))
    except InfeasibleSpaceError:
        assume(False)
    # Spaces with a sliver of interior make every sampler degenerate; keep ones with room to search.
    assume((space.upper - space.lower).sum() > 0.2)
    return space


def toy_history(space: MixtureSpace, n: int, n_objectives: int = 1, seed: int = 0, stderr: bool = False) -> History:
    """``n`` feasible mixtures with outcomes of a smooth loss per objective (minimized)."""
    rng = np.random.default_rng(seed)
    W = space.sample(n, seed=seed)
    targets = rng.dirichlet(np.ones(space.dim), size=n_objectives)
    values = np.stack([((W - t) ** 2).sum(axis=1) for t in targets], axis=1) + rng.normal(0, 0.01, (n, n_objectives))
    return History(W, values, ("minimize",) * n_objectives, np.full((n, n_objectives), 0.01) if stderr else None)


def extend(history: History, W: np.ndarray, values: np.ndarray) -> History:
    """The history with the rows ``W`` ``(n, K)`` measured as ``values`` ``(n, m)``."""
    stderr = None if history.stderr is None else np.vstack([history.stderr, np.full(values.shape, 0.01)])
    return History(np.vstack([history.weights, W]), np.vstack([history.values, values]), history.directions, stderr)


def domain_losses(W: np.ndarray) -> np.ndarray:
    """One loss per source ``(n, K)`` that falls steeply with that source's weight: each domain's own data
    helps it, so in the mean over domains the gains and losses nearly cancel."""
    return 1.0 / (0.1 + W)


def composite_history(space: MixtureSpace, n: int, seed: int = 0, shock_sd: float = 0.6) -> History:
    """``n`` mixtures whose one objective is the mean of :func:`domain_losses`, measured with a run-level
    shock shared by every loss (sd ``shock_sd``) plus small independent noise; the losses are the parts."""
    rng = np.random.default_rng(seed)
    W = space.sample(n, seed=seed)
    parts = domain_losses(W) + rng.normal(0, shock_sd, (n, 1)) + rng.normal(0, 0.02, (n, space.dim))
    composition = np.full((1, space.dim), 1.0 / space.dim)
    return History(W, parts @ composition.T, ("minimize",), parts=Parts(parts, composition))
