"""Integration rounds (OLMo 3's second loop): microanneals -> surrogate -> one integration run per round.

Round ``r`` brings the study to ``r * ceil(n_trials / rounds)`` completed microanneals, refits one
surrogate per objective on every completed run (the fidelity is a feature: 0 microanneal, 1 integration),
predicts the integration outcome of many feasible mixtures, and promotes the one the pick rule chooses
on the predicted front (under the no-regression bound against ``baseline``, where given) to an
integration run, which the next round's surrogate learns from. Each promotion is a trial with
``round`` and ``predicted`` attrs, so the rounds resume like the rest of a study.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from optuna.trial import TrialState

from mixopt import pareto
from mixopt.errors import RunFailed
from mixopt.loop import Progress, run_study, run_waiting
from mixopt.study import Study
from mixopt.surrogates.fitting import fit_surrogates, predict, surrogate_factory

CANDIDATES = 4000
PREDICTED_STORED = 10  # predicted-front points kept in the study for `mixopt study status`


@dataclass(frozen=True)
class Recommendation:
    """The mixture promoted in the last round, with its predicted and measured integration values."""

    trial: int
    round: int
    mixture: dict[str, float]
    predicted: list[float]
    measured: list[float] | None


def promote(study: Study, round_number: int, seed: int) -> None:
    """Fit the surrogates and queue the picked mixture as an integration trial of ``round_number``."""
    config = study.config
    integration = config.fidelities[-1]
    done = [t for t in study.trials((TrialState.COMPLETE,)) if t.user_attrs.get("fidelity") in {f.name for f in config.fidelities}]
    X = np.array([[*study.weights_of(t), float(t.user_attrs["fidelity"] == integration.name)] for t in done])
    Y = np.array([t.values for t in done], dtype=float)
    models = fit_surrogates(X, Y, surrogate_factory(study))
    space = config.space(integration.name)
    candidates = space.sample(CANDIDATES, seed=seed)
    mean, _ = predict(models, np.column_stack([candidates, np.ones(len(candidates))]))
    front = np.flatnonzero(pareto.non_dominated(mean, config.directions))
    baseline_values = None
    if config.baseline is not None:
        baseline = space.from_dict(config.baseline)
        baseline_values = predict(models, np.append(baseline, 1.0)[None, :])[0][0]
    names = [o.name for o in config.objectives]
    chosen = front[pareto.pick(mean[front], config.directions, config.pick, names, baseline_values, config.epsilon)]
    weights = space.round(candidates[chosen], config.granularity)
    shown = front[np.argsort(mean[front, 0])][:PREDICTED_STORED]
    study.optuna.set_user_attr("predicted_front", {
        "round": round_number, "fidelity": integration.name,
        "points": [{"mixture": space.as_dict(candidates[i]), "predicted": mean[i].tolist()} for i in shown],
    })
    study.enqueue(weights[None, :], integration.name, {"round": round_number, "predicted": mean[chosen].tolist()})


def run_rounds(study: Study, on_progress: Callable[[Progress], None] | None = None) -> Recommendation:
    """Run (or resume) every round of the study; the last round's promoted mixture is the recommendation."""
    config = study.config
    integration = config.fidelities[-1].name
    per_round = math.ceil(config.n_trials / config.rounds)
    for round_number in range(1, config.rounds + 1):
        run_study(study, n_trials=min(round_number * per_round, config.n_trials), on_progress=on_progress)
        promoted = _round_trials(study, round_number)
        if not promoted:
            promote(study, round_number, seed=config.seed + round_number)
        elif all(t.state == TrialState.FAIL for t in promoted):  # its run failed earlier: run it again
            study.enqueue(study.weights_of(promoted[-1])[None, :], integration,
                          {"round": round_number, "predicted": promoted[-1].user_attrs["predicted"]})
        run_waiting(study, on_progress)
        if not any(t.state == TrialState.COMPLETE for t in _round_trials(study, round_number)):
            raise RunFailed(f"the integration run of round {round_number} failed: see `mixopt study status`, then run again")
    last = [t for t in _round_trials(study, config.rounds) if t.state == TrialState.COMPLETE][-1]
    return Recommendation(
        trial=last.number, round=config.rounds, mixture=study.space.as_dict(study.weights_of(last)),
        predicted=list(last.user_attrs["predicted"]), measured=list(last.values) if last.values else None,
    )


def _round_trials(study: Study, round_number: int) -> list:
    """Integration trials promoted in ``round_number`` (failed ones included; re-runs keep the round)."""
    return [t for t in study.trials() if t.user_attrs.get("round") == round_number]
