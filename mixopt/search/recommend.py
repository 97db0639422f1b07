"""The recommendation: which mixture to train for real, from a model of the runs so far (pure of any study).

:func:`recommend` chooses inside a polytope from any predictor; :func:`recommend_search` takes the
predictor from a searcher (its posterior; one GP per objective for model-free searchers).
:mod:`mixopt.recommend` applies it to a study; the steps are described there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from mixopt import pareto
from mixopt.candidates import nearest_unused
from mixopt.search.base import Predictor, Searcher, believed_order
from mixopt.search.designs import dirichlet_design, local_design, prior_mixture
from mixopt.space import MixtureSpace
from mixopt.trials import History

POOL_SIZE = 4096  # candidates per part of the pool (half uniform / half around the prior; as many local)
TOP = 20  # single objective: candidates averaged into the recommendation
N_CENTRES = 8  # measured mixtures the local draws are centred on
LOCAL_CONCENTRATION = 20.0  # Dirichlet concentration of the local draws (per unit of mass, per source)


@dataclass(frozen=True)
class Recommendation:
    """The mixture to train for real.

    ``weights`` ``(K,)``; ``predicted`` / ``predicted_sd`` ``(m,)`` in objective units (None without a
    model: fewer than two measured runs); ``nearest`` the row of the history nearest to it (None if the
    history is empty) at total-variation ``distance`` (half the L1 distance, in [0, 1]); ``front_weights``
    ``(f, K)`` and ``front_predicted`` ``(f, m)`` the predicted front it was picked from (one objective:
    the recommendation alone); ``rule`` the pick rule; ``model`` what predicted; ``nearest_trial`` the
    study's trial number of the nearest run, where the history came from a study; ``snapped_from`` ``(K,)``
    the model's pick before it was snapped to a mixture the trainer realises (None: not snapped).
    """

    weights: np.ndarray
    predicted: np.ndarray | None
    predicted_sd: np.ndarray | None
    nearest: int | None
    distance: float | None
    front_weights: np.ndarray
    front_predicted: np.ndarray | None
    rule: str
    model: str
    nearest_trial: int | None = None
    snapped_from: np.ndarray | None = None


def recommend_search(
    searcher: Searcher,
    space: MixtureSpace,
    history: History,
    *,
    seed: int,
    within: MixtureSpace | None = None,
    rule: str = "knee",
    names: Sequence[str] | None = None,
    baseline: np.ndarray | None = None,
    epsilon: float | Sequence[float] = 0.0,
    pool_size: int = POOL_SIZE,
    snap: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Recommendation:
    """The recommendation from ``searcher``'s model of ``history`` (measured in ``space``), inside
    ``within`` (default ``space``; e.g. the export budget's polytope). With no ``baseline`` given, the
    searcher's own outcome constraint (if any) supplies the baseline and epsilon. ``snap`` maps the pick
    ``(K,)`` to the mixture a trainer realises (:mod:`mixopt.realisable`); the predicted values and the
    nearest run are then the snapped mixture's."""
    if baseline is None and searcher.outcome_constraint is not None:
        baseline = searcher.outcome_constraint.baseline_weights(space)
        epsilon = tuple(searcher.outcome_constraint.margins(len(history.directions)).tolist())
    predictor, model = searcher.predictor(space, history, seed=seed), type(searcher).__name__
    if predictor is None and len(history) >= 2:
        predictor, model = gp_predictor(history), "GaussianProcess per objective"
    picked = recommend(
        predictor, within or space, history, seed=seed, prior=prior_mixture(within or space, searcher.prior),
        rule=rule, names=names, baseline=baseline, epsilon=epsilon, model=model, pool_size=pool_size,
    )
    if snap is None:
        return picked
    weights = snap(picked.weights)
    predicted, predicted_sd = (a[0] for a in predictor(weights[None])) if predictor is not None else (None, None)
    nearest, distance = nearest_run(history.weights, weights)
    return replace(picked, weights=weights, predicted=predicted, predicted_sd=predicted_sd, nearest=nearest,
                   distance=distance, nearest_trial=_trial_of(history, nearest), snapped_from=picked.weights)


def gp_predictor(history: History) -> Predictor:
    """One GP surrogate per objective fitted to ``history`` (for searchers that keep no model)."""
    from mixopt.surrogates.gp import GaussianProcess

    models = [GaussianProcess().fit(history.weights, y) for y in history.values.T]

    def predict(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        both = [model.predict(W, return_std=True) for model in models]
        return np.column_stack([m for m, _ in both]), np.column_stack([s for _, s in both])

    return predict


def recommend(
    predictor: Predictor | None,
    space: MixtureSpace,
    history: History,
    *,
    seed: int,
    prior: np.ndarray | None = None,
    rule: str | pareto.PickRule = "knee",
    names: Sequence[str] | None = None,
    baseline: np.ndarray | None = None,
    epsilon: float | Sequence[float] = 0.0,
    model: str = "model",
    top: int = TOP,
    pool_size: int = POOL_SIZE,
    near: tuple[np.ndarray, float] | None = None,
) -> Recommendation:
    """The recommendation inside ``space`` from ``predictor`` (None: the best measured run that fits
    ``space``, else ``prior``); the steps are in the module docstring. With ``near`` = (mixtures ``(r, K)``,
    radius), only candidates within that total-variation distance of one of them are considered.
    Deterministic for a given history, predictor and seed."""
    directions = history.directions
    names = list(names) if names is not None else [f"objective {o}" for o in range(len(directions))]
    rule = pareto.parse_pick_rule(rule, names)
    prior = prior_mixture(space) if prior is None else prior
    if predictor is None:
        return _without_model(space, history, prior, rule.text)
    if space.candidates is not None:
        top = 1  # an average of candidates is not a candidate
    pool = candidate_pool(predictor, space, history, prior, baseline, seed, pool_size)
    mean, sd = predictor(pool)
    signs = history.signs
    allowed = np.ones(len(pool), dtype=bool)
    floor, baseline_values = None, None
    if baseline is not None:
        baseline_values = mean[-1]  # the baseline is the pool's last row: its prediction is already there
        floor = baseline_values * signs - np.broadcast_to(np.asarray(epsilon, float), signs.shape)
        allowed = np.all(mean * signs >= floor - 1e-12, axis=1)
        # The baseline itself (last in the pool) never regresses against itself; with candidates it is chosen
        # only if it is one.
        allowed[-1] = space.candidates is None or bool(np.any(np.abs(space.candidates - baseline).sum(axis=1) <= 1e-9))
    if near is not None:
        allowed &= _near(pool, *near, allowed)
    index = np.flatnonzero(allowed)
    if len(directions) == 1:
        score = (mean * signs)[index, 0]
        best = index[np.argsort(-score, kind="stable")[:top]]
        weights = pool[best].mean(axis=0)
        predicted, predicted_sd = (a[0] for a in predictor(weights[None]))
        if floor is not None and np.any(predicted * signs < floor - 1e-12):
            weights, predicted, predicted_sd = pool[best[0]], mean[best[0]], sd[best[0]]
        front_weights, front_predicted = weights[None], predicted[None]
    else:
        front = index[pareto.non_dominated(mean[index], directions)]
        chosen = front[pareto.pick(mean[front], directions, rule, names, baseline_values, epsilon)]
        weights, predicted, predicted_sd = pool[chosen], mean[chosen], sd[chosen]
        order = front[np.argsort(mean[front, 0], kind="stable")]
        front_weights, front_predicted = pool[order], mean[order]
    nearest, distance = nearest_run(history.weights, weights)
    return Recommendation(weights, predicted, predicted_sd, nearest, distance, front_weights, front_predicted,
                          rule.text, model, _trial_of(history, nearest))


def candidate_pool(predictor: Predictor, space: MixtureSpace, history: History, prior: np.ndarray,
                   baseline: np.ndarray | None, seed: int, size: int = POOL_SIZE) -> np.ndarray:
    """Feasible candidates ``(n, K)`` in ``space``: ``size`` / 2 uniform and ``size`` / 2 around ``prior``,
    ``size`` around the measured mixtures predicted best, the measured mixtures inside ``space``, and
    ``baseline`` last (when given). In a space with ``candidates``: those (and the baseline)."""
    if space.candidates is not None:
        return space.candidates if baseline is None else np.vstack([space.candidates, baseline[None]])
    inside = np.array([space.is_feasible(w, tol=1e-9) for w in history.weights], dtype=bool)
    measured = history.weights[inside] if len(history) else np.zeros((0, space.dim))
    parts = [space.sample(size // 2, seed=seed), dirichlet_design(space, prior, size - size // 2, seed)]
    if len(measured):
        mean = predictor(measured)[0] * history.signs
        centres = measured[believed_order(mean, N_CENTRES)]
        parts.append(local_design(space, centres, size, seed + 1, LOCAL_CONCENTRATION))
        parts.append(measured)
    if baseline is not None:
        parts.append(baseline[None])
    return np.vstack(parts)


def _near(pool: np.ndarray, anchors: np.ndarray, radius: float, allowed: np.ndarray) -> np.ndarray:
    """Rows of ``pool`` within total-variation ``radius`` of some anchor ``(r, K)``; where no allowed row
    is, the allowed rows nearest to the anchors."""
    distance = np.full(len(pool), np.inf)
    for anchor in anchors:
        distance = np.minimum(distance, 0.5 * np.abs(pool - anchor).sum(axis=1))
    within = distance <= radius + 1e-12
    return within if (within & allowed).any() else distance <= distance[allowed].min()


def nearest_run(measured: np.ndarray, w: np.ndarray) -> tuple[int | None, float | None]:
    """Row of ``measured`` ``(n, K)`` nearest to ``w`` ``(K,)`` and its total-variation distance."""
    if len(measured) == 0:
        return None, None
    tv = 0.5 * np.abs(measured - w).sum(axis=1)
    row = int(np.argmin(tv))
    return row, float(tv[row])


def _without_model(space: MixtureSpace, history: History, prior: np.ndarray, rule: str) -> Recommendation:
    """Fewer than two runs: the best measured one inside ``space``, else the prior; nothing predicted."""
    inside = [i for i, w in enumerate(history.weights) if space.is_feasible(w, tol=1e-9)]
    if inside:
        row = inside[int(np.argmax((history.maximized[inside]).sum(axis=1)))]
        weights = history.weights[row]
    elif space.candidates is not None:
        weights = nearest_unused(space.candidates, prior[None], np.zeros((0, space.dim)))[0]
    else:
        weights = prior
    nearest, distance = nearest_run(history.weights, weights)
    return Recommendation(weights, None, None, nearest, distance, weights[None], None, rule,
                          "none (fewer than 2 runs)", _trial_of(history, nearest))


def _trial_of(history: History, row: int | None) -> int | None:
    return None if row is None or history.trials is None else int(history.trials[row])
