"""The study's models for the report, the integration rounds and the notebooks: one surrogate per objective
(the one the config names), fitted on every completed run with one fidelity convention, and what is read
off them (the predicted front, out-of-fold predictions, source effects). The surrogates themselves, in
``mixopt.surrogates``, know no study.

Fidelity convention: where a study has more than one fidelity, the model's features are the weights
``(n, K)`` and then one column, 1.0 for a run at the integration (last) fidelity and 0.0 below it (the
``multifidelity`` surrogate's ``target_fidelity``); a study with one fidelity has the weights only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import KFold

from mixopt import headroom, pareto
from mixopt.config import ComponentConfig, StudyConfig
from mixopt.space import MixtureSpace
from mixopt.surrogates.fitting import fit_surrogates, make_surrogate, predict
from mixopt.trials import Observations
from mixopt.trust import DecisionAccuracy, PromotionChecks, decision_accuracy, objective_checks, tv_distance

if TYPE_CHECKING:
    from mixopt.study import Study

__all__ = ["ObjectiveModels", "PredictedFront", "candidate_checks", "fit_objective_models", "model_features", "out_of_fold", "predicted_front",
           "source_effects", "surrogate_factory"]

N_CANDIDATES = 2000  # polytope samples screened for the predicted front
PREDICTED_SHOWN = 40  # predicted front points kept, spread over the front
PARITY_FOLDS = 3  # each fold refits the surrogates (the stacked ensemble is itself cross-validated): kept small
EFFECT_GRID = 21  # weights per source in the partial dependence
EFFECT_BASE = 48  # polytope samples averaged over in the partial dependence
MOVEMENT_SHARES = (0.5, 0.75)  # a promotion candidate is recomputed from these first shares of the runs

Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # W (n, K) -> mean, sd (n, m)


@dataclass(frozen=True)
class PredictedFront:
    """The surrogate's front: ``weights`` ``(p, K)``, predicted ``mean`` and ``std`` ``(p, m)``."""

    weights: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def surrogate_factory(component: ComponentConfig) -> Callable[[], Any]:
    """Makes a fresh surrogate of ``component`` (fitted once per objective)."""
    return lambda: make_surrogate(component.name, component.options)


def model_features(config: StudyConfig, weights: np.ndarray, fidelities: np.ndarray | list[str]) -> np.ndarray:
    """The surrogates' features of runs ``weights`` ``(n, K)`` at ``fidelities`` ``(n,)`` names:
    ``(n, K)``, or ``(n, K + 1)`` with the integration column where the study has several fidelities."""
    if len(config.fidelities) < 2:
        return weights
    return np.column_stack([weights, np.asarray(fidelities) == config.fidelities[-1].name]).astype(float)


@dataclass(frozen=True)
class ObjectiveModels:
    """One fitted surrogate per objective, with the study's fidelity convention."""

    models: list
    config: StudyConfig

    def predictor(self, fidelity: str) -> Predictor:
        """Predicted mean and sd ``(n, m)`` of each objective at mixtures ``W`` ``(n, K)`` run at ``fidelity``."""
        return lambda W: predict(self.models, model_features(self.config, W, [fidelity] * len(W)))


def fit_objective_models(config: StudyConfig, done: Observations) -> ObjectiveModels:
    """The config's surrogate fitted per objective on ``done`` (runs at any of the study's fidelities)."""
    X = model_features(config, done.weights, done.fidelities)
    return ObjectiveModels(fit_surrogates(X, done.values, surrogate_factory(config.surrogate)), config)


def study_runs(study: Study) -> Observations:
    """The study's completed runs at its fidelities (imported ones included): what its models learn from."""
    return study.observations().at(*[f.name for f in study.config.fidelities])


def candidate_checks(config: StudyConfig, done: Observations, candidate: np.ndarray, distance: float | None,
                     refit: Callable[[Observations], np.ndarray], seed: int = 0) -> PromotionChecks:
    """The checks of a promotion candidate ``(K,)`` (:mod:`mixopt.trust`): each objective's model out of fold
    on ``done`` (every fidelity, as :func:`fit_objective_models` fits them), the candidate's TV ``distance``
    to the nearest measured run, and how far it moves when ``refit(first runs) -> candidate`` sees only the
    first 50% and 75% of the runs (trial order)."""
    X = model_features(config, done.weights, done.fidelities)
    mean, sd = out_of_fold(X, done.values, surrogate_factory(config.surrogate), seed=seed)
    objectives = [objective_checks(o.name, done.values[:, j], mean[:, j], sd[:, j], o.direction)
                  for j, o in enumerate(config.objectives)]
    order = np.argsort(done.numbers, kind="stable")
    movement = {f"{share:.0%}": float(tv_distance(candidate, refit(done.take(order[: math.ceil(share * len(done))]))))
                for share in MOVEMENT_SHARES}
    return PromotionChecks(objectives, distance, movement)


def fidelity_agreement(config: StudyConfig, done: Observations) -> dict[str, DecisionAccuracy]:
    """Per objective, how the search fidelity orders the mixtures measured at both it and the integration
    (last) fidelity, against the integration runs (:func:`mixopt.trust.decision_accuracy`; mixtures matched
    on the study's grid, replicates averaged); empty with fewer than two such mixtures."""
    cheap, expensive = done.at(config.search_fidelity.name), done.at(config.fidelities[-1].name)
    if len(config.fidelities) < 2:
        return {}

    def by_mixture(runs: Observations) -> dict[tuple, np.ndarray]:
        groups: dict[tuple, list[np.ndarray]] = {}
        for w, v in zip(runs.weights, runs.values, strict=True):
            groups.setdefault(tuple(np.round(w / config.granularity).astype(int)), []).append(v)
        return {key: np.mean(rows, axis=0) for key, rows in groups.items()}

    low, high = by_mixture(cheap), by_mixture(expensive)
    both = sorted(set(low) & set(high))
    if len(both) < 2:
        return {}
    return {o.name: decision_accuracy(np.array([low[k][j] for k in both]), np.array([high[k][j] for k in both]))
            for j, o in enumerate(config.objectives)}


def metric_signals(config: StudyConfig, runs: Observations) -> list[headroom.MetricSignal]:
    """Every metric's signal, noise and flags at the search fidelity (:func:`mixopt.headroom.assess`), with
    the rank correlation against the last fidelity where there are two; empty before any run there."""
    at = config.search_fidelity.name
    other = config.fidelities[-1].name if len(config.fidelities) > 1 else None
    if not (runs.fidelities == at).any():
        return []
    return headroom.assess(runs, at, other, objectives={o.metric: o.direction for o in config.objectives})


def observed_front(study: Study) -> tuple[Observations, Observations]:
    """The completed runs at the search fidelity, and those on their Pareto front sorted by the first objective."""
    done = study.observations().at(study.config.search_fidelity.name)
    if not len(done):
        return done, done
    front = done.where(pareto.non_dominated(done.values, study.config.directions))
    return done, front.take(np.argsort(front.values[:, 0], kind="stable"))


def out_of_fold(X: np.ndarray, Y: np.ndarray, factory: Callable[[], Any], folds: int = PARITY_FOLDS,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predicted means and sds ``(n, m)`` of features ``X`` ``(n, F)`` with values ``Y`` ``(n, m)``
    from ``folds``-fold cross-validation, each fold's surrogates (``factory()``) fitted on the others."""
    mean, std = np.zeros_like(Y, dtype=float), np.zeros_like(Y, dtype=float)
    for train, test in KFold(min(folds, len(X)), shuffle=True, random_state=seed).split(X):
        mean[test], std[test] = predict(fit_surrogates(X[train], Y[train], factory), X[test])
    return mean, std


def predicted_front(predictor: Predictor, space: MixtureSpace, directions: list[str], n: int = N_CANDIDATES,
                    seed: int = 0) -> PredictedFront:
    """Up to ``PREDICTED_SHOWN`` points spread over the non-dominated predicted means of ``n`` uniform
    polytope samples."""
    candidates = space.sample(n, seed)
    mean, std = predictor(candidates)
    front = np.flatnonzero(pareto.non_dominated(mean, directions))
    keep = front[pareto.spread_subset(mean[front], directions, PREDICTED_SHOWN)]
    return PredictedFront(candidates[keep], mean[keep], std[keep])


def source_effects(predictor: Predictor, space: MixtureSpace, n_base: int = EFFECT_BASE, n_grid: int = EFFECT_GRID,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Partial dependence along Cox's direction: ``grid`` ``(K, G)`` weights between each source's bounds
    and the mean prediction ``(m, K, G)`` over ``n_base`` polytope samples rescaled to each weight."""
    base = space.sample(n_base, seed)
    K = space.dim
    grid = np.linspace(space.lower, space.upper, n_grid).T  # (K, G)
    rows = []
    for k in range(K):
        others = 1.0 - base[:, k : k + 1]
        for g in grid[k]:
            scale = np.divide(1.0 - g, others, out=np.zeros_like(others), where=others > 1e-12)
            moved = base * scale
            moved[:, k] = g
            rows.append(moved)
    mean, _ = predictor(np.concatenate(rows))
    effects = mean.reshape(K, n_grid, n_base, -1).mean(axis=2)  # (K, G, m)
    return grid, np.transpose(effects, (2, 0, 1))
