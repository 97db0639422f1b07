"""The mixture space: a polytope of weight vectors over data sources.

A mixture is a vector ``w`` of shape ``(K,)`` with ``sum(w) == 1`` and, per source,
``lower_k <= w_k <= upper_k``. The bounds combine the source's own min/max (or its fixed weight)
with the repetition cap ``w_k * budget <= max_repetition_k * tokens_k`` at a token budget.
Group constraints bound the total weight of a named set of sources (e.g. anchor web data >= 0.3).

Arrays of mixtures have shape ``(n, K)``, columns in the order of ``MixtureSpace.names``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace

import numpy as np

from mixopt.errors import ConfigError, InfeasibleSpaceError

FEASIBILITY_TOL = 1e-9
TOKEN_DTYPES = ("uint16", "uint32", "int32", "int64")  # dtypes of raw token files (mixopt.runners.token_files)


@dataclass(frozen=True)
class Source:
    """A data source. ``tokens`` is what is available (tokens); ``max_repetition`` in epochs. ``paths`` hold
    its data; for token files, ``token_dtype`` is the dtype of raw files and ``eos_token_id`` the id that
    separates their documents (None: a numpy header's dtype, the model tokenizer's end-of-text id)."""

    name: str
    tokens: float | None = None
    min_weight: float = 0.0
    max_weight: float = 1.0
    max_repetition: float | None = None
    fixed_weight: float | None = None
    paths: tuple[str, ...] = ()
    token_dtype: str | None = None
    eos_token_id: int | None = None


@dataclass(frozen=True)
class Group:
    """A bound on the total weight of a named set of sources."""

    name: str
    sources: tuple[str, ...]
    min_weight: float = 0.0
    max_weight: float = 1.0


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.4g}"


@dataclass(frozen=True)
class MixtureSpace:
    """The feasible mixtures; construction fails with an ``InfeasibleSpaceError`` if there are none."""

    sources: tuple[Source, ...]
    groups: tuple[Group, ...] = ()
    token_budget: float | None = None
    # A finite set of mixtures ``(c, K)`` to choose among (``candidates:``), or None: the whole polytope.
    # Rows infeasible at this space's budget are dropped; sampling draws from the rest.
    candidates: np.ndarray | None = field(default=None, repr=False, compare=False)
    lower: np.ndarray = field(init=False, repr=False, compare=False)
    upper: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "groups", tuple(self.groups))
        self._check_sources()
        lower, upper = source_bounds(self.sources, self.token_budget)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        self._check_feasible()
        if self.candidates is not None:
            object.__setattr__(self, "candidates", self._feasible_candidates(np.asarray(self.candidates, float)))

    # -- basic views -------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sources)

    @property
    def dim(self) -> int:
        return len(self.sources)

    def with_budget(self, token_budget: float | None) -> MixtureSpace:
        """The same space with repetition caps computed for ``token_budget`` tokens."""
        return replace(self, token_budget=token_budget)

    def as_dict(self, w: np.ndarray) -> dict[str, float]:
        return {name: float(x) for name, x in zip(self.names, w, strict=True)}

    def from_dict(self, weights: dict[str, float]) -> np.ndarray:
        unknown = set(weights) - set(self.names)
        if unknown:
            raise ConfigError(f"unknown sources {sorted(unknown)}; this space has {list(self.names)}")
        return np.array([float(weights.get(n, 0.0)) for n in self.names])

    def group_matrix(self) -> np.ndarray:
        """Membership matrix of shape ``(n_groups, K)`` (1 where the source is in the group)."""
        index = {n: i for i, n in enumerate(self.names)}
        M = np.zeros((len(self.groups), self.dim))
        for g, group in enumerate(self.groups):
            M[g, [index[s] for s in group.sources]] = 1.0
        return M

    @property
    def group_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([g.min_weight for g in self.groups]), np.array([g.max_weight for g in self.groups]))

    def linear_constraints(self) -> tuple[np.ndarray, np.ndarray]:
        """Group constraints as ``A @ w <= b`` with ``A`` of shape ``(2 * n_groups, K)``."""
        M = self.group_matrix()
        lo, hi = self.group_bounds
        return np.vstack([-M, M]), np.concatenate([-lo, hi])

    # -- feasibility -------------------------------------------------------------------------
    def violations(self, w: np.ndarray, tol: float = FEASIBILITY_TOL) -> list[str]:
        """Each constraint that ``w`` (shape ``(K,)``) violates, as a sentence naming it."""
        w = np.asarray(w, dtype=float)
        out = []
        if w.shape != (self.dim,):
            return [f"mixture has {w.size} weights, the space has {self.dim} sources"]
        if not np.all(np.isfinite(w)):
            return ["mixture has non-finite weights"]
        if abs(w.sum() - 1.0) > tol:
            out.append(f"weights sum to {w.sum():.10g}, not 1")
        for k, s in enumerate(self.sources):
            if w[k] < self.lower[k] - tol:
                out.append(f"source '{s.name}': weight {_fmt(w[k])} is below its lower bound {_fmt(self.lower[k])}")
            if w[k] > self.upper[k] + tol:
                out.append(f"source '{s.name}': weight {_fmt(w[k])} is above its upper bound {_fmt(self.upper[k])}")
        M = self.group_matrix()
        for g, group in enumerate(self.groups):
            total = float(M[g] @ w)
            if total < group.min_weight - tol:
                out.append(f"group '{group.name}': total {_fmt(total)} is below its minimum {_fmt(group.min_weight)}")
            if total > group.max_weight + tol:
                out.append(f"group '{group.name}': total {_fmt(total)} is above its maximum {_fmt(group.max_weight)}")
        return out

    def is_feasible(self, w: np.ndarray, tol: float = FEASIBILITY_TOL) -> bool:
        return not self.violations(w, tol)

    def check(self, w: np.ndarray, tol: float = FEASIBILITY_TOL) -> None:
        """Raise a ``ConfigError`` naming the first violated constraint."""
        problems = self.violations(w, tol)
        if problems:
            raise ConfigError(f"infeasible mixture: {problems[0]}")

    # -- sampling, projection, rounding --------------------------------------------------------
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` points drawn uniformly from the polytope (hit-and-run), shape ``(n, K)``; with candidates,
        ``n`` of them at random (distinct while there are enough)."""
        if self.candidates is not None:
            rng = np.random.default_rng(seed)
            return self.candidates[rng.choice(len(self.candidates), size=n, replace=n > len(self.candidates))]
        return sample_polytope(self, n, seed)

    def project(self, x: np.ndarray) -> np.ndarray:
        """Nearest feasible mixture(s) in Euclidean distance; ``x`` of shape ``(K,)`` or ``(n, K)``."""
        lo, hi = self.group_bounds
        return project_onto_polytope(x, self.lower, self.upper, self.group_matrix(), lo, hi)

    def round(self, w: np.ndarray, granularity: float = 1e-4) -> np.ndarray:
        """Feasible mixture(s) on the grid of ``granularity`` (e.g. 1e-4) nearest to ``w``.

        The result's weights are integer multiples of ``granularity`` whose decimals sum to
        exactly 1 and satisfy every constraint.
        """
        w = np.asarray(w, dtype=float)
        if w.ndim == 2:
            return np.stack([self.round(row, granularity) for row in w]) if len(w) else w.reshape(0, self.dim)
        units = round(1.0 / granularity)
        if units < 1 or abs(units * granularity - 1.0) > 1e-12:
            raise ConfigError(f"granularity {granularity} must divide 1 exactly (e.g. 1e-3, 1e-4)")
        lo_u = np.ceil(self.lower * units - 1e-9).astype(np.int64)
        hi_u = np.floor(self.upper * units + 1e-9).astype(np.int64)
        off_grid = [s.name for s, lo, hi in zip(self.sources, lo_u, hi_u, strict=True) if lo > hi]
        if off_grid or lo_u.sum() > units or hi_u.sum() < units:
            which = f" (source '{off_grid[0]}' has no grid value within its bounds)" if off_grid else ""
            raise InfeasibleSpaceError(
                f"no mixture on a grid of {granularity} fits the source bounds{which}: use a finer granularity"
            )
        target = self.project(w) * units
        candidate = largest_remainder(target, lo_u, hi_u, units) / units
        if self.is_feasible(candidate):
            return candidate
        # Rounding broke a group bound: the grid point nearest in L1 that meets every constraint (a small MILP).
        g_lo, g_hi = self.group_bounds
        units_found = nearest_grid_point(
            target, lo_u, hi_u, units, self.group_matrix(),
            np.ceil(g_lo * units - 1e-9), np.floor(g_hi * units + 1e-9),
        )
        if units_found is None:
            raise InfeasibleSpaceError(
                f"no mixture on a grid of {granularity} meets the group constraints: use a finer granularity"
            )
        return units_found / units

    # -- validation ----------------------------------------------------------------------------
    def _feasible_candidates(self, C: np.ndarray) -> np.ndarray:
        """The rows of ``C`` ``(c, K)`` feasible in this space; an ``InfeasibleSpaceError`` if none is."""
        if C.ndim != 2 or C.shape[1] != self.dim:
            raise ConfigError(f"candidates must be an array of shape (c, {self.dim}), got {C.shape}")
        kept = C[[self.is_feasible(w, tol=1e-7) for w in C]] if len(C) else C
        if len(kept) == 0:
            budget = f" at a budget of {self.token_budget:.4g} tokens" if self.token_budget else ""
            raise InfeasibleSpaceError(f"none of the {len(C)} candidate mixtures is feasible{budget}: "
                                       "add candidates within the repetition caps, or loosen the bounds")
        return kept

    def _check_sources(self) -> None:
        if not self.sources:
            raise ConfigError("a mixture space needs at least one source")
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"duplicate source names {dupes}: give each source a unique name")
        for s in self.sources:
            if s.tokens is not None and not (s.tokens >= 0 and math.isfinite(s.tokens)):
                raise ConfigError(f"source '{s.name}': tokens must be a finite number >= 0 (got {s.tokens})")
            if s.max_repetition is not None and not s.max_repetition > 0:
                raise ConfigError(f"source '{s.name}': max_repetition must be > 0 epochs (got {s.max_repetition})")
            if not 0.0 <= s.min_weight <= s.max_weight <= 1.0:
                raise ConfigError(
                    f"source '{s.name}': need 0 <= min_weight <= max_weight <= 1 "
                    f"(got min {s.min_weight}, max {s.max_weight})"
                )
            if s.fixed_weight is not None and not 0.0 <= s.fixed_weight <= 1.0:
                raise ConfigError(f"source '{s.name}': fixed_weight must be in [0, 1] (got {s.fixed_weight})")
        if self.token_budget is not None and not self.token_budget > 0:
            raise ConfigError(f"token budget must be > 0 (got {self.token_budget})")
        for group in self.groups:
            for name in group.sources:
                if name not in names:
                    hint = difflib.get_close_matches(name, names, n=1)
                    fix = f"did you mean '{hint[0]}'?" if hint else f"known sources: {', '.join(names)}"
                    raise ConfigError(f"group '{group.name}' names unknown source '{name}': {fix}")
            if not group.sources:
                raise ConfigError(f"group '{group.name}' has no sources")
            if not 0.0 <= group.min_weight <= group.max_weight <= 1.0:
                raise InfeasibleSpaceError(
                    f"group '{group.name}': need 0 <= min <= max <= 1 (got min {group.min_weight}, max {group.max_weight})"
                )

    def _check_feasible(self) -> None:
        for k, s in enumerate(self.sources):
            if s.fixed_weight is not None and s.fixed_weight > self.upper[k] + FEASIBILITY_TOL:
                raise InfeasibleSpaceError(
                    f"source '{s.name}': fixed weight {_fmt(s.fixed_weight)} is above its cap {_fmt(self.upper[k])} "
                    f"(max_repetition x tokens / budget of {_fmt(self.token_budget)} tokens): lower it or raise max_repetition"
                )
            if s.fixed_weight is None and self.lower[k] > self.upper[k] + FEASIBILITY_TOL:
                raise InfeasibleSpaceError(
                    f"source '{s.name}': min weight {_fmt(self.lower[k])} is above its repetition cap "
                    f"{_fmt(self.upper[k])} at a budget of {_fmt(self.token_budget)} tokens: lower it or raise max_repetition"
                )
        if self.lower.sum() > 1 + FEASIBILITY_TOL:
            listed = ", ".join(f"{s.name} {_fmt(lo)}" for s, lo in zip(self.sources, self.lower, strict=True) if lo > 0)
            raise InfeasibleSpaceError(f"minimum weights sum to {_fmt(self.lower.sum())} > 1 ({listed}): lower them")
        if self.upper.sum() < 1 - FEASIBILITY_TOL:
            listed = ", ".join(f"{s.name} {_fmt(u)}" for s, u in zip(self.sources, self.upper, strict=True))
            raise InfeasibleSpaceError(
                f"maximum weights sum to {_fmt(self.upper.sum())} < 1 ({listed}): raise them, the available tokens "
                "or max_repetition"
            )
        M = self.group_matrix()
        for g, group in enumerate(self.groups):
            members = ", ".join(group.sources)
            if M[g] @ self.upper < group.min_weight - FEASIBILITY_TOL:
                raise InfeasibleSpaceError(
                    f"group '{group.name}' needs at least {_fmt(group.min_weight)} but its sources ({members}) "
                    f"can reach only {_fmt(M[g] @ self.upper)}: lower the group minimum or raise their bounds"
                )
            if M[g] @ self.lower > group.max_weight + FEASIBILITY_TOL:
                raise InfeasibleSpaceError(
                    f"group '{group.name}' allows at most {_fmt(group.max_weight)} but its sources ({members}) "
                    f"need at least {_fmt(M[g] @ self.lower)}: raise the group maximum or lower their bounds"
                )
        if self.groups and not self._groups_hold():
            names = ", ".join(f"'{g.name}'" for g in self.groups)
            raise InfeasibleSpaceError(
                f"the group constraints {names} cannot hold together with the source bounds: loosen one of them"
            )

    def _groups_hold(self) -> bool:
        """Whether the groups hold together with the source bounds and the sum to 1. Disjoint groups (the usual
        anchor groups) need no solver: each group's total ranges over ``[max(min, its sources' lower sum),
        min(max, their upper sum)]`` and every source outside groups over its own
        bounds, so a mixture exists iff the ranges' lows sum to at most 1 and their highs to at least 1.
        Overlapping groups are an LP (scipy.optimize, slow to import: only here)."""
        M = self.group_matrix()
        if (M.sum(axis=0) <= 1).all():
            g_lo, g_hi = self.group_bounds
            alone = M.sum(axis=0) == 0
            lows, highs = np.maximum(g_lo, M @ self.lower), np.minimum(g_hi, M @ self.upper)
            low, high = lows.sum() + self.lower[alone].sum(), highs.sum() + self.upper[alone].sum()
            return bool((lows <= highs + FEASIBILITY_TOL).all() and low <= 1 + FEASIBILITY_TOL
                        and high >= 1 - FEASIBILITY_TOL)
        from scipy.optimize import linprog

        A, b = self.linear_constraints()
        result = linprog(np.zeros(self.dim), A_ub=A, b_ub=b, A_eq=np.ones((1, self.dim)), b_eq=[1.0],
                         bounds=list(zip(self.lower, self.upper, strict=True)), method="highs")
        return bool(result.status == 0)


def repetition_caps(sources: tuple[Source, ...], token_budget: float | None) -> np.ndarray:
    """Per-source weight caps ``max_repetition * tokens / token_budget``, shape ``(K,)`` (inf where unset)."""
    caps = np.full(len(sources), np.inf)
    if token_budget:
        for k, s in enumerate(sources):
            if s.tokens is not None and s.max_repetition is not None:
                caps[k] = s.max_repetition * s.tokens / token_budget
    return caps


def source_bounds(sources: tuple[Source, ...], token_budget: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-source (lower, upper) weights, each shape ``(K,)``, repetition caps at ``token_budget`` included."""
    lower = np.array([s.fixed_weight if s.fixed_weight is not None else s.min_weight for s in sources], float)
    upper = np.array([s.fixed_weight if s.fixed_weight is not None else s.max_weight for s in sources], float)
    return lower, np.minimum(upper, repetition_caps(sources, token_budget))


def largest_remainder(target: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: int) -> np.ndarray:
    """Integers in ``[lo, hi]`` summing to ``total`` that round ``target`` (shape ``(K,)``) by largest remainder."""
    target = np.clip(target, lo, hi)
    units = np.clip(np.floor(target + 1e-9), lo, hi).astype(np.int64)
    remainder = target - units
    deficit = int(total - units.sum())
    order = np.argsort(-remainder, kind="stable") if deficit > 0 else np.argsort(remainder, kind="stable")
    step = 1 if deficit > 0 else -1
    while deficit != 0:
        moved = False
        for k in order:
            if deficit == 0:
                break
            if lo[k] <= units[k] + step <= hi[k]:
                units[k] += step
                deficit -= step
                moved = True
        if not moved:
            raise InfeasibleSpaceError("no rounding of the mixture fits the bounds: use a finer granularity")
    return units


def project_onto_polytope(
    x: np.ndarray, lower: np.ndarray, upper: np.ndarray, groups: np.ndarray, g_lo: np.ndarray, g_hi: np.ndarray
) -> np.ndarray:
    """Euclidean projection of ``x`` (``(K,)`` or ``(n, K)``) onto {sum w = 1, bounds, g_lo <= groups @ w <= g_hi}."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        return np.stack([project_onto_polytope(row, lower, upper, groups, g_lo, g_hi) for row in x])
    x = np.where(np.isfinite(x), x, 0.0)
    box = _project_box_simplex(x, lower, upper)
    if groups.size == 0 or (np.all(groups @ box >= g_lo - 1e-12) and np.all(groups @ box <= g_hi + 1e-12)):
        return box
    # SLSQP over the coordinates that can move (it stalls on bounds with lower == upper).
    free = upper - lower > 1e-12
    offset = groups[:, ~free] @ lower[~free]
    w = lower.copy()
    w[free] = _slsqp_projection(
        x[free], lower[free], upper[free], 1.0 - lower[~free].sum(), groups[:, free], g_lo - offset, g_hi - offset
    )
    totals = groups @ w
    if abs(w.sum() - 1.0) <= 1e-12 and np.all(totals >= g_lo - 1e-10) and np.all(totals <= g_hi + 1e-10):
        return w
    # SLSQP can still stop short on degenerate polytopes: the feasible point nearest in L1 (an LP) instead.
    return _nearest_l1(x, lower, upper, groups, g_lo, g_hi)


def _slsqp_projection(
    x: np.ndarray, lower: np.ndarray, upper: np.ndarray, total: float, groups: np.ndarray, g_lo: np.ndarray, g_hi: np.ndarray
) -> np.ndarray:
    """Euclidean projection of ``x`` ``(k,)`` onto {sum w = total, bounds, groups} by SLSQP (best effort)."""
    from scipy.optimize import minimize
    start = _project_box_simplex(x / total, lower / total, upper / total) * total if total > 0 else lower
    constraints = [
        {"type": "eq", "fun": lambda w: w.sum() - total, "jac": lambda w: np.ones_like(w)},
        {"type": "ineq", "fun": lambda w: groups @ w - g_lo, "jac": lambda w: groups},
        {"type": "ineq", "fun": lambda w: g_hi - groups @ w, "jac": lambda w: -groups},
    ]
    result = minimize(
        lambda w: 0.5 * np.sum((w - x) ** 2), start, jac=lambda w: w - x, method="SLSQP",
        bounds=list(zip(lower, upper, strict=True)), constraints=constraints, options={"ftol": 1e-14, "maxiter": 500},
    )
    w = np.clip(result.x, lower, upper)
    if total > 0 and abs(w.sum() - total) > 1e-12:
        w = _project_box_simplex(w / total, lower / total, upper / total) * total
    return w


def _nearest_l1(
    x: np.ndarray, lower: np.ndarray, upper: np.ndarray, groups: np.ndarray, g_lo: np.ndarray, g_hi: np.ndarray
) -> np.ndarray:
    """The feasible mixture minimizing ``sum |w - x|``: an LP over ``(w, t)`` with ``t >= |w - x|``."""
    from scipy.optimize import linprog
    k = len(x)
    eye = np.eye(k)
    zeros = np.zeros_like(groups)
    a_ub = np.vstack([np.hstack([eye, -eye]), np.hstack([-eye, -eye]), np.hstack([groups, zeros]), np.hstack([-groups, zeros])])
    b_ub = np.concatenate([x, -x, g_hi, -g_lo])
    result = linprog(
        np.concatenate([np.zeros(k), np.ones(k)]), A_ub=a_ub, b_ub=b_ub,
        A_eq=np.concatenate([np.ones(k), np.zeros(k)])[None, :], b_eq=[1.0],
        bounds=[*zip(lower, upper, strict=True), *[(0, None)] * k], method="highs",
    )
    if result.status != 0:
        raise InfeasibleSpaceError("the constraints admit no mixture")
    return np.clip(result.x[:k], lower, upper)


def nearest_grid_point(
    target: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: int, groups: np.ndarray, g_lo: np.ndarray, g_hi: np.ndarray
) -> np.ndarray | None:
    """Integers ``u`` in ``[lo, hi]`` summing to ``total`` with ``g_lo <= groups @ u <= g_hi`` that minimize
    ``sum |u - target|`` (a MILP solved by HiGHS), shape ``(K,)``; None when there are none."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    k = len(target)
    eye = np.eye(k)
    zeros = np.zeros_like(groups)
    constraints = [
        LinearConstraint(np.hstack([eye, -eye]), -np.inf, target),  # u - t <= target
        LinearConstraint(np.hstack([-eye, -eye]), -np.inf, -target),  # -u - t <= -target
        LinearConstraint(np.concatenate([np.ones(k), np.zeros(k)])[None, :], total, total),
    ]
    if groups.size:
        constraints.append(LinearConstraint(np.hstack([groups, zeros]), g_lo, g_hi))
    result = milp(
        np.concatenate([np.zeros(k), np.ones(k)]), constraints=constraints,
        integrality=np.concatenate([np.ones(k), np.zeros(k)]),
        bounds=Bounds(np.concatenate([lo, np.zeros(k)]), np.concatenate([hi, np.full(k, np.inf)])),
    )
    if result.status != 0:
        return None
    return np.round(result.x[:k]).astype(np.int64)


def _project_box_simplex(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Projection onto {sum w = 1, lower <= w <= upper}: w = clip(x - tau) with tau found by bisection."""
    lo_tau, hi_tau = float(np.min(x - upper)), float(np.max(x - lower))
    for _ in range(200):
        tau = 0.5 * (lo_tau + hi_tau)
        if np.clip(x - tau, lower, upper).sum() > 1.0:
            lo_tau = tau
        else:
            hi_tau = tau
    w = np.clip(x - 0.5 * (lo_tau + hi_tau), lower, upper)
    # Spread the last rounding error over coordinates with room, so the sum is 1 to machine precision.
    slack = 1.0 - w.sum()
    room = (upper - w) if slack > 0 else (w - lower)
    if room.sum() > 0:
        w = w + slack * room / room.sum()
    return w


def sample_polytope(space: MixtureSpace, n: int, seed: int = 0) -> np.ndarray:
    """``n`` mixtures drawn uniformly from the feasible polytope, shape ``(n, K)``.

    Dirichlet(1) draws on the simplex shifted by the lower bounds are uniform on it; keeping those that
    meet the upper bounds and groups is exactly uniform on the polytope. Where fewer than 5% survive
    (tight bounds), botorch's hit-and-run sampler walks the polytope instead.
    """
    rng = np.random.default_rng(seed)
    free = space.upper - space.lower > 1e-12
    if n == 0 or not free.any():
        return np.tile(space.lower, (n, 1))
    kept: list[np.ndarray] = []
    drawn = 0
    while sum(len(k) for k in kept) < n:
        batch = max(1024, 4 * n)
        candidates = np.tile(space.lower, (batch, 1))
        candidates[:, free] += (1.0 - space.lower.sum()) * rng.dirichlet(np.ones(free.sum()), size=batch)
        drawn += batch
        kept.append(candidates[_feasible_rows(space, candidates)])
        if sum(len(k) for k in kept) < 0.05 * drawn:
            return _hit_and_run(space, n, seed)
    return np.concatenate(kept)[:n]


def _feasible_rows(space: MixtureSpace, W: np.ndarray, tol: float = FEASIBILITY_TOL) -> np.ndarray:
    """Boolean mask of the rows of ``W`` (shape ``(n, K)``) that satisfy every constraint."""
    ok = np.all(W <= space.upper + tol, axis=1) & np.all(W >= space.lower - tol, axis=1)
    ok &= np.abs(W.sum(axis=1) - 1.0) <= tol
    if space.groups:
        totals = W @ space.group_matrix().T
        g_lo, g_hi = space.group_bounds
        ok &= np.all(totals >= g_lo - tol, axis=1) & np.all(totals <= g_hi + tol, axis=1)
    return ok


HIT_AND_RUN_STEPS = 50_000  # most steps one draw of hit-and-run may take after burn-in (about 5 s)


def _thinning(n: int, dim: int) -> int:
    """Hit-and-run steps between kept points: ``10 * dim`` (a batch of 8 in 19 dimensions is then about as
    spread as independent draws; with dim / 4 it was half as spread), fewer for large draws such as
    candidate pools, whose points need not be independent, so that a draw stays within the step budget."""
    return max(10, min(10 * dim, HIT_AND_RUN_STEPS // max(n, 1)))


def _hit_and_run(space: MixtureSpace, n: int, seed: int) -> np.ndarray:
    """Hit-and-run samples (botorch) over the free coordinates, shape ``(n, K)``."""
    import torch
    from botorch.utils.sampling import HitAndRunPolytopeSampler

    free = space.upper - space.lower > 1e-12
    idx = np.flatnonzero(free)
    pinned = space.lower[~free].sum()
    M = space.group_matrix()
    g_lo, g_hi = space.group_bounds
    offset = M[:, ~free] @ space.lower[~free]
    A = np.vstack([-M[:, idx], M[:, idx]])
    b = np.concatenate([-(g_lo - offset), g_hi - offset])
    dt = torch.float64
    out = np.tile(space.lower, (n, 1))
    try:
        sampler = HitAndRunPolytopeSampler(
            inequality_constraints=(torch.tensor(A, dtype=dt), torch.tensor(b, dtype=dt).unsqueeze(-1)) if len(b) else None,
            equality_constraints=(torch.ones(1, idx.size, dtype=dt), torch.tensor([[1.0 - pinned]], dtype=dt)),
            bounds=torch.tensor(np.stack([space.lower[idx], space.upper[idx]]), dtype=dt),
            n_burnin=max(500, 10 * idx.size), n_thinning=_thinning(n, idx.size), seed=seed,
        )
        out[:, idx] = sampler.draw(n).numpy()
    except ValueError:
        # A polytope with no interior (bounds that pin the sum): Dirichlet draws projected onto it.
        out[:, idx] = np.random.default_rng(seed).dirichlet(np.ones(idx.size), size=n) * (1.0 - pinned)
        return space.project(out)
    # Hit-and-run is exact up to float error; projecting the rare stray row makes every sample feasible.
    bad = ~_feasible_rows(space, out)
    if bad.any():
        out[bad] = space.project(out[bad])
    return out
