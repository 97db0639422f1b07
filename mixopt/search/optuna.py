"""Optuna samplers as searchers: TPE, GP and NSGA-II over stick-breaking coordinates of the polytope.

Each proposal rebuilds an in-memory study from the history (so the searcher keeps no state) over
coordinates ``u`` in ``[0, 1]^(k-1)`` (k free sources) that map one-to-one onto the mixtures meeting
the sum and the source bounds (:class:`StickBreaking`). Group constraints go through Optuna's
constraints: a proposal that breaks one is told to the study as infeasible and the sampler asks again
(``max_rejections`` times, then the last one is projected onto the polytope), so proposals are always
feasible. The outcome constraint, once the baseline is measured, is a constraint on every trial.
Pending trials enter as running trials (TPE's constant liar sees them; the GP sampler, which has no
batch mode, is told a lie, the mean of the observed values, for each pending and already-chosen one).
"""

from __future__ import annotations

import abc

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from mixopt.compat import nsga2_generation_key
from mixopt.search.base import Searcher
from mixopt.space import MixtureSpace
from mixopt.trials import History

optuna.logging.set_verbosity(optuna.logging.WARNING)


class StickBreaking:
    """A bijection between ``[0, 1]^(k-1)`` and the mixtures with ``sum = 1`` and source bounds.

    Free source ``j`` takes the fraction ``f_j`` of its conditional range ``[L_j, U_j]`` given the
    weights before it; ``f_j = 1 - (1 - u_j)^(1 / (k - 1 - j))`` (a Beta(1, k-1-j) quantile), so that
    uniform ``u`` gives uniform mixtures when no bound binds. Pinned sources keep their bound.
    """

    def __init__(self, space: MixtureSpace) -> None:
        self.space = space
        self.free = np.flatnonzero(space.upper - space.lower > 1e-12)
        self.total = 1.0 - space.lower[space.upper - space.lower <= 1e-12].sum()
        self.lo, self.hi = space.lower[self.free], space.upper[self.free]
        k = len(self.free)
        self.exponent = np.array([k - 1 - j for j in range(max(k - 1, 0))], float)

    @property
    def n_coordinates(self) -> int:
        return len(self.exponent)

    def _range(self, j: int, remaining: float) -> tuple[float, float]:
        low = max(self.lo[j], remaining - self.hi[j + 1 :].sum())
        high = min(self.hi[j], remaining - self.lo[j + 1 :].sum())
        return low, max(low, high)

    def to_mixture(self, u: np.ndarray) -> np.ndarray:
        """``u`` ``(k-1,)`` -> mixture ``(K,)``."""
        w = self.space.lower.copy()
        remaining = self.total
        for j in range(self.n_coordinates):
            low, high = self._range(j, remaining)
            fraction = 1.0 - (1.0 - float(np.clip(u[j], 0.0, 1.0))) ** (1.0 / self.exponent[j])
            w[self.free[j]] = low + fraction * (high - low)
            remaining -= w[self.free[j]]
        if len(self.free):
            w[self.free[-1]] = np.clip(remaining, self.lo[-1], self.hi[-1])
        return w

    def to_unit(self, w: np.ndarray) -> np.ndarray:
        """Mixture ``(K,)`` -> ``u`` ``(k-1,)``; the inverse of :meth:`to_mixture` on feasible mixtures."""
        u = np.empty(self.n_coordinates)
        remaining = self.total
        for j in range(self.n_coordinates):
            low, high = self._range(j, remaining)
            x = w[self.free[j]]
            fraction = (x - low) / (high - low) if high - low > 1e-15 else 0.0
            u[j] = 1.0 - (1.0 - float(np.clip(fraction, 0.0, 1.0))) ** self.exponent[j]
            remaining -= x
        return u


class OptunaSearcher(Searcher):
    """Base of the Optuna searchers; subclasses choose the sampler."""

    lie_for_pending = False

    def __init__(self, max_rejections: int = 20, outcome_constraint: dict | None = None) -> None:
        super().__init__(outcome_constraint)
        self.max_rejections = max_rejections

    @abc.abstractmethod
    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        """A freshly seeded sampler."""

    def system_attrs(self, index: int) -> dict:
        """System attributes of the ``index``-th rebuilt trial (none by default)."""
        return {}

    def propose(self, space: MixtureSpace, history: History, n: int, *, seed: int) -> np.ndarray:
        coords = StickBreaking(space)
        names = [f"u{j}" for j in range(coords.n_coordinates)]
        distributions: dict[str, BaseDistribution] = {name: FloatDistribution(0.0, 1.0) for name in names}
        directions = [StudyDirection.MAXIMIZE if d == "maximize" else StudyDirection.MINIMIZE for d in history.directions]
        study = optuna.create_study(directions=directions, sampler=self.sampler(seed))
        floor = self.outcome_constraint.thresholds(space, history) if self.outcome_constraint else None
        constrained = bool(space.groups) or floor is not None
        lie = list(history.values.mean(axis=0)) if len(history) else None

        def params(w: np.ndarray) -> dict:
            return dict(zip(names, coords.to_unit(w), strict=True))

        for i, (w, y) in enumerate(zip(history.weights, history.values, strict=True)):
            constraints = None
            if constrained:
                outcome = 0.0 if floor is None else float(np.max(floor - y * history.signs))
                constraints = {"groups": 0.0, "outcome": outcome}
            study.add_trial(create_trial(
                params=params(w), distributions=distributions, values=list(y),
                system_attrs=self.system_attrs(i), constraints=constraints,
            ))
        for w in history.pending:
            self._add_pending(study, params(w), distributions, lie, constrained)

        out: list[np.ndarray] = []
        for _ in range(n):
            seen = np.vstack([history.weights.reshape(-1, space.dim), history.pending.reshape(-1, space.dim), *out])
            out.append(self._ask_feasible(space, study, coords, names, distributions, history, lie, constrained, seen)[None])
        return np.vstack(out).reshape(n, space.dim)

    def _add_pending(self, study, params: dict, distributions: dict, lie, constrained: bool) -> None:
        if self.lie_for_pending and lie is not None:
            constraints = {"groups": 0.0, "outcome": 0.0} if constrained else None
            study.add_trial(create_trial(params=params, distributions=distributions, values=lie, constraints=constraints))
        else:
            study.add_trial(create_trial(state=TrialState.RUNNING, params=params, distributions=distributions))

    def _ask_feasible(self, space, study, coords, names, distributions, history, lie, constrained, seen) -> np.ndarray:
        """Ask until the mixture meets the group constraints (rejected asks are told as infeasible, with
        the worst observed values) and differs from every ``seen`` mixture (a repeat is told as failed);
        the accepted trial stays running, or is told the lie."""
        worst = list(np.where(history.signs > 0, history.values.min(axis=0), history.values.max(axis=0))) if len(history) else None
        for _ in range(self.max_rejections):
            trial = study.ask(distributions)
            w = coords.to_mixture(np.array([trial.params[name] for name in names]))
            violation = group_violation(space, w)
            if len(seen) and np.abs(seen - w).max(axis=1).min() <= 1e-9:
                study.tell(trial, state=TrialState.FAIL)
                continue
            if violation <= 0:
                if self.lie_for_pending and lie is not None:
                    if constrained:
                        trial.set_constraint("groups", 0.0)
                        trial.set_constraint("outcome", 0.0)
                    study.tell(trial, lie)
                return w
            if worst is None:  # nothing to tell a sampler that has no observations yet
                study.tell(trial, state=TrialState.FAIL)
                continue
            trial.set_constraint("groups", violation)
            trial.set_constraint("outcome", 0.0)
            study.tell(trial, worst)
        return space.project(w)


def group_violation(space: MixtureSpace, w: np.ndarray) -> float:
    """Total amount by which the mixture ``w`` ``(K,)`` breaks the group constraints (0 if none)."""
    if not space.groups:
        return 0.0
    totals = space.group_matrix() @ w
    lo, hi = space.group_bounds
    return float(np.sum(np.maximum(lo - totals, 0.0) + np.maximum(totals - hi, 0.0)))


class TPESearcher(OptunaSearcher):
    """Multivariate TPE with the constant liar. Options: ``n_startup_trials``, ``max_rejections``."""

    def __init__(self, n_startup_trials: int = 10, max_rejections: int = 20, outcome_constraint: dict | None = None) -> None:
        super().__init__(max_rejections, outcome_constraint)
        self.n_startup_trials = n_startup_trials

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True, n_startup_trials=self.n_startup_trials
        )


class GPSearcher(OptunaSearcher):
    """Optuna's GP sampler, pending trials told the mean observed value. Options: ``n_startup_trials``."""

    lie_for_pending = True

    def __init__(self, n_startup_trials: int = 10, max_rejections: int = 20, outcome_constraint: dict | None = None) -> None:
        super().__init__(max_rejections, outcome_constraint)
        self.n_startup_trials = n_startup_trials

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup_trials, warn_independent_sampling=False)


class NSGA2Searcher(OptunaSearcher):
    """NSGA-II; rebuilt trials are assigned to generations of ``population_size`` in history order."""

    def __init__(self, population_size: int = 16, max_rejections: int = 20, outcome_constraint: dict | None = None) -> None:
        super().__init__(max_rejections, outcome_constraint)
        self.population_size = population_size

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=self.population_size)

    def system_attrs(self, index: int) -> dict:
        return {nsga2_generation_key(): index // self.population_size}
