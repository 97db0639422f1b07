"""Pareto fronts over objective values (pure functions on arrays).

``values`` are arrays of shape ``(n, m)``: one row per evaluated mixture, one column per objective, each
objective minimized or maximized as ``directions`` says. Non-dominated sets and the reference point
come from BoTorch (``is_non_dominated``, ``infer_reference_point``), hypervolumes from Optuna (exact
WFG, much faster than BoTorch's ``Hypervolume`` beyond 3 objectives); this module only orients,
normalizes and chooses.

Reference point (for hypervolumes): BoTorch's rule on the front of the given values, in the orientation
where larger is better: the nadir of the front moved back by 10% of the front's range per objective
(``nadir - 0.1 * (ideal - nadir)``; a single point is moved back by 10% of its magnitude). For minimized
losses that is "10% worse than the worst front value". Given a baseline mixture's values, the baseline
is the reference point instead whenever some front point beats it on every objective. With a single
objective the front is one point, so all rows stand in for it (the worst value, 10% of the range further).

Picking rules choose one row (a trial) from the front. Each normalizes the front's objectives to
``[0, 1]`` with 0 the best value on the front and 1 the worst, so that units do not matter:

- ``knee``: the front point farthest beyond the hyperplane through the normalized extremes (where the
  normalized objectives sum to 1), i.e. the smallest sum of normalized objectives; ties go to the point
  nearest the ideal point.
- ``best:OBJ``: the best value of one objective among the rows that regress on no objective by more than
  ``epsilon`` (objective units) against a baseline mixture's values; with no baseline, the plain best.
- ``chebyshev:w1,w2,...``: the smallest weighted Chebyshev distance ``max_j w_j * f_j`` to the ideal
  point, weights normalized to sum 1; ties go to the smaller weighted sum.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mixopt.errors import ConfigError

REFERENCE_SCALE = 0.1  # the reference point sits this fraction of the front's range beyond its nadir


def orient(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Values ``(n, m)`` flipped so that larger is better for every objective."""
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    return np.asarray(values, dtype=float) * signs


FRONT_BLOCK = 512  # rows compared at once against the front found so far (memory: front x block booleans)


def non_dominated(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask ``(n,)`` of the rows of ``values`` ``(n, m)`` that no other row dominates (equal rows
    are all kept; a row holding a NaN is not on the front).

    A sweep over the distinct rows in lexicographic order, best first: a row can only be dominated by an
    earlier one, which is already at least as good on the first objective and differs, so it dominates
    when it is at least as good on the others. A block of rows at a time is compared with the front found
    so far and with the block's earlier rows: ``O(n * front * (m - 1))`` comparisons in numpy (botorch's
    loop took over a minute on the 12k nearly flat predictions of a GP fitted to 2 runs)."""
    oriented = orient(values, directions)
    mask = np.zeros(len(oriented), dtype=bool)
    finite = ~np.isnan(oriented).any(axis=1)
    if not finite.any():
        return mask
    distinct, inverse = np.unique(oriented[finite], axis=0, return_inverse=True)  # ascending lexicographic
    rows = distinct[::-1, 1:]  # best first; the first objective is ordered already
    kept = np.zeros(len(rows), dtype=bool)
    front = rows[:0]
    for start in range(0, len(rows), FRONT_BLOCK):
        block = rows[start:start + FRONT_BLOCK]
        earlier = np.tril(np.ones((len(block), len(block)), dtype=bool), k=-1).T  # [i, j]: i before j
        dominated = np.zeros(len(block), dtype=bool)
        for against, allowed in ((front, None), (block, earlier)):
            geq = np.ones((len(against), len(block)), dtype=bool) if allowed is None else allowed.copy()
            for k in range(block.shape[1]):
                geq &= against[:, None, k] >= block[None, :, k]
            dominated |= geq.any(axis=0)
        kept[start:start + len(block)] = ~dominated
        front = np.concatenate([front, block[~dominated]])
    mask[finite] = kept[::-1][inverse.reshape(-1)]
    return mask


def reference_point(
    values: np.ndarray, directions: Sequence[str], baseline: np.ndarray | None = None
) -> np.ndarray:
    """The hypervolume reference point ``(m,)`` in objective units (rule in the module docstring)."""
    import torch
    from botorch.utils.multi_objective.hypervolume import infer_reference_point

    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        raise ConfigError("a reference point needs at least one evaluated mixture")
    oriented = orient(values, directions)
    front = oriented if values.shape[1] == 1 else oriented[non_dominated(values, directions)]
    signs = orient(np.ones((1, len(directions))), directions)[0]
    max_ref = None if baseline is None else torch.as_tensor(orient(np.atleast_2d(baseline), directions)[0])
    ref = infer_reference_point(torch.as_tensor(front), max_ref_point=max_ref, scale=REFERENCE_SCALE)
    return ref.numpy() * signs


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: np.ndarray) -> float:
    """Volume (in objective units to the power m) dominated by ``values`` ``(n, m)`` and bounded by
    ``reference`` ``(m,)``; rows no better than the reference on every objective add nothing.

    Optuna's exact WFG algorithm; its cost grows quickly with the objectives (measured on one core: a
    front of 50 points takes 0.5 s at 6 objectives, milliseconds at 2 to 4)."""
    from mixopt.compat import compute_hypervolume

    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return 0.0
    loss = -orient(values, directions)
    ref = -orient(np.atleast_2d(reference), directions)[0]
    inside = np.all(loss < ref, axis=1)
    if not inside.any():
        return 0.0
    loss = loss[inside]
    return float(compute_hypervolume(loss[non_dominated(-loss, ["maximize"] * loss.shape[1])], ref, assume_pareto=True))


def hypervolume_history(
    values: np.ndarray,
    directions: Sequence[str],
    reference: np.ndarray | None = None,
    at: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Hypervolume of the rows ``values[: i + 1]`` for each ``i`` in ``at`` (ascending; default every
    row), shape ``(len(at),)``; rows in trial order.

    The reference point is fixed over the history (default: the rule above on all rows), so the curve
    never decreases. It is recomputed only where a row since the previous index joined the front.
    """
    values = np.asarray(values, dtype=float)
    rows = np.arange(len(values)) if at is None else np.asarray(at, dtype=int)
    history = np.zeros(len(rows))
    if len(values) == 0 or len(rows) == 0:
        return history
    if np.any(np.diff(rows) <= 0) or rows[0] < 0 or rows[-1] >= len(values):
        raise ConfigError(f"hypervolume history indices must ascend within 0..{len(values) - 1}")
    reference = reference_point(values, directions) if reference is None else np.asarray(reference, float)
    current, previous = 0.0, -1
    for j, i in enumerate(rows):
        if non_dominated(values[: i + 1], directions)[previous + 1 : i + 1].any():
            current = hypervolume(values[: i + 1], directions, reference)
        history[j], previous = current, i
    return history


def best_so_far(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Per objective, the best value among the first ``i + 1`` rows, shape ``(n, m)``."""
    oriented = orient(values, directions)
    if len(oriented) == 0:
        return oriented
    return orient(np.maximum.accumulate(oriented, axis=0), directions)


def normalized(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Values ``(n, m)`` rescaled per objective to ``[0, 1]``: 0 the best row, 1 the worst (0 if all equal)."""
    loss = -orient(values, directions)
    low, high = loss.min(axis=0), loss.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (loss - low) / span


def spread_subset(values: np.ndarray, directions: Sequence[str], k: int) -> np.ndarray:
    """Indices of ``k`` rows of ``values`` ``(n, m)`` spread over the objectives: greedy farthest-point
    selection in normalized objective space, starting from the knee. All rows when ``n <= k``."""
    values = np.asarray(values, dtype=float)
    if len(values) <= k:
        return np.arange(len(values))
    scaled = normalized(values, directions)
    chosen = [pick_knee(values, directions)]
    distance = np.linalg.norm(scaled - scaled[chosen[0]], axis=1)
    while len(chosen) < k:
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(scaled - scaled[chosen[-1]], axis=1))
    return np.array(sorted(chosen))


def pick_knee(values: np.ndarray, directions: Sequence[str]) -> int:
    """Row index of the knee of the front of ``values`` ``(n, m)`` (rule in the module docstring)."""
    front = _front_indices(values, directions)
    scaled = normalized(np.asarray(values, float)[front], directions)
    order = np.lexsort((np.linalg.norm(scaled, axis=1), scaled.sum(axis=1)))
    return int(front[order[0]])


def pick_best_with_no_regression(
    values: np.ndarray,
    directions: Sequence[str],
    objective: int,
    baseline_values: np.ndarray | None = None,
    epsilon: float | Sequence[float] = 0.0,
) -> int:
    """Row index with the best value of objective ``objective`` among rows no worse than
    ``baseline_values`` ``(m,)`` by more than ``epsilon`` (scalar or ``(m,)``, objective units) on any
    objective. ``ConfigError`` if no row qualifies."""
    values = np.asarray(values, dtype=float)
    _check_values(values, directions)
    if not 0 <= objective < values.shape[1]:
        raise ConfigError(f"objective index {objective} is out of range for {values.shape[1]} objectives")
    allowed = np.ones(len(values), dtype=bool)
    if baseline_values is not None:
        baseline = orient(np.atleast_2d(baseline_values), directions)[0]
        slack = np.broadcast_to(np.asarray(epsilon, dtype=float), baseline.shape)
        if np.any(slack < 0):
            raise ConfigError(f"epsilon must be >= 0 (got {epsilon})")
        allowed = np.all(orient(values, directions) >= baseline - slack, axis=1)
        if not allowed.any():
            raise ConfigError(
                f"no trial is within epsilon={epsilon} of the baseline on every objective: raise epsilon "
                "or choose another baseline"
            )
    score = np.where(allowed, orient(values, directions)[:, objective], -np.inf)
    return int(np.argmax(score))


def pick_chebyshev(values: np.ndarray, directions: Sequence[str], weights: Sequence[float]) -> int:
    """Row index on the front of ``values`` ``(n, m)`` nearest the ideal point in weighted Chebyshev
    distance; ``weights`` ``(m,)`` are non-negative importances (normalized to sum 1)."""
    w = np.asarray(weights, dtype=float)
    values = np.asarray(values, dtype=float)
    _check_values(values, directions)
    if w.shape != (values.shape[1],):
        raise ConfigError(f"chebyshev needs {values.shape[1]} weights, one per objective (got {w.size})")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ConfigError(f"chebyshev weights must be finite, >= 0 and not all 0 (got {w.tolist()})")
    front = _front_indices(values, directions)
    scaled = normalized(values[front], directions) * (w / w.sum())
    order = np.lexsort((scaled.sum(axis=1), scaled.max(axis=1)))
    return int(front[order[0]])


@dataclass(frozen=True)
class PickRule:
    """A parsed pick rule: ``kind`` knee, best or chebyshev; ``objective`` (best: its index) and
    ``weights`` (chebyshev: one per objective). ``text`` is the rule as written."""

    text: str
    kind: str
    objective: int | None = None
    weights: tuple[float, ...] | None = None


def parse_pick_rule(rule: str | PickRule, names: Sequence[str]) -> PickRule:
    """``knee``, ``best:OBJ`` or ``chebyshev:w1,w2,...`` checked against the objective ``names``; a
    ``ConfigError`` naming the problem otherwise (so a typo fails when the config loads)."""
    if isinstance(rule, PickRule):
        return rule
    kind, _, argument = str(rule).partition(":")
    usage = "use knee, best:OBJECTIVE or chebyshev:w1,w2,... (one weight per objective)"
    if kind == "knee" and not argument:
        return PickRule(rule, "knee")
    if kind == "best" and argument:
        if argument not in names:
            hint = difflib.get_close_matches(argument, list(names), n=1)
            fix = f"did you mean 'best:{hint[0]}'?" if hint else f"this study has {list(names)}"
            raise ConfigError(f"unknown objective '{argument}' in pick rule '{rule}': {fix}")
        return PickRule(rule, "best", objective=list(names).index(argument))
    if kind == "chebyshev" and argument:
        try:
            weights = tuple(float(w) for w in argument.split(","))
        except ValueError:
            raise ConfigError(f"pick rule '{rule}': weights must be numbers separated by commas") from None
        if len(weights) != len(names):
            raise ConfigError(f"pick rule '{rule}' has {len(weights)} weights: give one per objective {list(names)}")
        return PickRule(rule, "chebyshev", weights=weights)
    raise ConfigError(f"unknown pick rule '{rule}': {usage}")


def pick(
    values: np.ndarray,
    directions: Sequence[str],
    rule: str | PickRule,
    names: Sequence[str],
    baseline_values: np.ndarray | None = None,
    epsilon: float | Sequence[float] = 0.0,
) -> int:
    """Row index chosen by ``rule``: ``knee``, ``best:OBJ`` or ``chebyshev:w1,w2,...`` (text or parsed);
    ``names`` ``(m,)`` are the objective names. ``baseline_values`` and ``epsilon`` apply to ``best:OBJ``."""
    parsed = parse_pick_rule(rule, names)
    if parsed.kind == "knee":
        return pick_knee(values, directions)
    if parsed.kind == "best":
        assert parsed.objective is not None
        return pick_best_with_no_regression(values, directions, parsed.objective, baseline_values, epsilon)
    assert parsed.weights is not None
    return pick_chebyshev(values, directions, parsed.weights)


def _check_values(values: np.ndarray, directions: Sequence[str]) -> None:
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ConfigError(f"expected values of shape (n, {len(directions)}), got {values.shape}")
    if len(values) == 0:
        raise ConfigError("there are no evaluated mixtures to pick from")
    if not np.all(np.isfinite(values)):
        raise ConfigError("objective values must be finite to pick from them")


def _front_indices(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    _check_values(values, directions)
    return np.flatnonzero(non_dominated(values, directions))
