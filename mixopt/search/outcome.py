"""Outcome constraint: no objective worse than a baseline mixture's by more than ``epsilon``.

Option form (any searcher): ``outcome_constraint: {baseline: {source: weight, ...}, epsilon: 0.01}``.
``epsilon`` is absolute, in each objective's own units (a loss of 2.31 may rise to 2.32), either one
number for every objective or a list with one per objective. The baseline's outcome is the mean of its
measured runs in the history (rows whose weights equal the baseline within 1e-6). Until it has been
measured, model-free searchers cannot judge the constraint and the model-based ones use their model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixopt.errors import ConfigError
from mixopt.space import MixtureSpace

SAME_MIXTURE_TOL = 1e-6


@dataclass(frozen=True)
class OutcomeConstraint:
    baseline: dict[str, float]
    epsilon: tuple[float, ...]

    @classmethod
    def parse(cls, option: dict | None) -> OutcomeConstraint | None:
        if option is None:
            return None
        if not isinstance(option, dict) or set(option) - {"baseline", "epsilon"} or "baseline" not in option:
            raise ConfigError("outcome_constraint must be {baseline: {source: weight, ...}, epsilon: number or list}")
        baseline = option["baseline"]
        if not isinstance(baseline, dict) or not baseline:
            raise ConfigError("outcome_constraint.baseline must map source names to weights")
        epsilon = option.get("epsilon", 0.0)
        epsilon = tuple(float(e) for e in (epsilon if isinstance(epsilon, (list, tuple)) else [epsilon]))
        if any(not e >= 0 for e in epsilon):
            raise ConfigError(f"outcome_constraint.epsilon must be >= 0 (got {list(epsilon)})")
        return cls({str(k): float(v) for k, v in baseline.items()}, epsilon)

    def baseline_weights(self, space: MixtureSpace) -> np.ndarray:
        """The baseline as a feasible mixture ``(K,)``; a ``ConfigError`` if it breaks a constraint."""
        w = space.from_dict(self.baseline)
        problems = space.violations(w, tol=1e-6)
        if problems:
            raise ConfigError(f"outcome_constraint.baseline is not a feasible mixture: {problems[0]}")
        return w

    def margins(self, n_objectives: int) -> np.ndarray:
        """``epsilon`` per objective, shape ``(m,)``."""
        if len(self.epsilon) not in (1, n_objectives):
            raise ConfigError(
                f"outcome_constraint.epsilon has {len(self.epsilon)} values for {n_objectives} objectives: give one or {n_objectives}"
            )
        return np.broadcast_to(np.array(self.epsilon), (n_objectives,)).copy()

    def thresholds(self, space: MixtureSpace, history) -> np.ndarray | None:
        """Least acceptable maximized value per objective ``(m,)``, or None while the baseline is unmeasured."""
        measured = history.mean_at(self.baseline_weights(space), SAME_MIXTURE_TOL)
        if measured is None:
            return None
        return measured * history.signs - self.margins(len(history.directions))

    def met(self, space: MixtureSpace, history, maximized: np.ndarray) -> np.ndarray | None:
        """Which rows of ``maximized`` ``(n, m)`` meet the constraint, or None while it cannot be judged."""
        floor = self.thresholds(space, history)
        return None if floor is None else np.all(maximized >= floor, axis=1)
