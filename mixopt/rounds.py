"""Integration rounds (OLMo 3's second loop): microanneals -> surrogate -> one integration run per round.

Round ``r`` brings the study to ``r * ceil(n_trials / rounds)`` completed microanneals, refits one
surrogate per objective on every completed run (the fidelity is a feature: 0 microanneal, 1 integration),
predicts the integration outcome of many feasible mixtures, and promotes the one the pick rule chooses
on the predicted front (under the no-regression bound against ``baseline``, where given) to an
integration run, which the next round's surrogate learns from. Each promotion is a trial with
``round`` and ``predicted`` attrs, so the rounds resume like the rest of a study.

With ``merge_seeds: N``, the recommended mixture is then run N more times at the integration fidelity
(other seeds, checkpoints kept), the checkpoints are averaged (``mixopt.merge``) and the merge is
evaluated without training (a run of 0 tokens from the merged checkpoint), as OLMo 3 merged two seeds
of its midtraining run. These runs are trials of their own study ``<study>-merge`` beside the study (as
screening's are), so no searcher, surrogate or report mistakes the evaluation of a merge for a training
run; seed runs carry ``merge_for`` (the recommended trial), the merge's evaluation also ``merge_of``
(the seed trials) and the fidelity ``seed-merge``. They resume like the rest.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from optuna.trial import TrialState

from mixopt.analysis import candidate_checks, fit_objective_models, study_runs
from mixopt.config import ComponentConfig, FidelityConfig, StudyConfig
from mixopt.errors import ConfigError, RunFailed
from mixopt.loop import Progress, run_study, run_waiting
from mixopt.runners import RUNNERS
from mixopt.search.base import scalarize
from mixopt.search.designs import local_design, prior_mixture
from mixopt.search.recommend import LOCAL_CONCENTRATION, Recommendation, recommend
from mixopt.study import Study
from mixopt.trials import Attr, History, Observations, StudyAttr

CANDIDATES = 4000  # recommendation pool per part (see mixopt.search.recommend.candidate_pool)
PREDICTED_STORED = 10  # predicted-front points kept in the study for `mixopt study status`
MERGE_FIDELITY = "seed-merge"  # the evaluation of merged seed checkpoints (0 tokens from the merge)


@dataclass(frozen=True)
class Promotion:
    """The mixture promoted in the last round, with its predicted and measured integration values; with
    ``merge_seeds``, also each seed run's values, the merged checkpoint's folder and its values."""

    trial: int
    round: int
    mixture: dict[str, float]
    predicted: list[float]
    measured: list[float] | None
    seeds: list[list[float]] = field(default_factory=list)
    merged: list[float] | None = None
    merged_checkpoint: str | None = None


def promote(study: Study, round_number: int, seed: int,
            on_promotion: Callable[[dict], None] | None = None) -> bool:
    """Choose round ``round_number``'s candidate (:func:`choose`), check it (:func:`mixopt.analysis.candidate_checks`)
    and log the checks (study attr ``promotion_log``, and ``on_promotion(entry)``). A candidate that fails a
    gate of ``promote`` first gets a local batch of microanneals around it (once per round): then False,
    and the caller runs them and promotes again. Otherwise it is queued as the round's integration trial
    (True)."""
    config = study.config
    integration = config.fidelities[-1].name
    done = study_runs(study)
    chosen = choose(config, done, seed)
    checks = candidate_checks(config, done, chosen.weights, chosen.distance, lambda first: choose(config, first, seed).weights,
                              seed)
    failures = checks.failures(config.promote)
    local = bool(failures) and not _local_trials(study, round_number)
    space = config.space(integration)
    batch = config.promote.local_batch or config.batch_size
    entry = {"round": round_number, "candidate": space.as_dict(chosen.weights), "checks": checks.as_dict(),
             "failures": failures, "action": f"local batch of {batch} microanneals first" if local else "promoted"}
    study.optuna.set_user_attr(StudyAttr.PROMOTION_LOG, [*study.optuna.user_attrs.get(StudyAttr.PROMOTION_LOG, []), entry])
    if on_promotion is not None:
        on_promotion(entry)
    if local:
        _queue_local_batch(study, chosen.weights, round_number, batch, seed)
        return False
    assert chosen.predicted is not None and chosen.front_predicted is not None
    study.optuna.set_user_attr(StudyAttr.PREDICTED_FRONT, {
        "round": round_number, "fidelity": integration,
        "points": [{"mixture": space.as_dict(w), "predicted": v.tolist()}
                   for w, v in zip(chosen.front_weights[:PREDICTED_STORED], chosen.front_predicted[:PREDICTED_STORED], strict=True)],
    })
    weights = space.round(chosen.weights, config.granularity)
    study.enqueue(weights[None, :], integration, {Attr.ROUND: round_number, Attr.PREDICTED: chosen.predicted.tolist()})
    return True


def choose(config: StudyConfig, done: Observations, seed: int) -> Recommendation:
    """The integration candidate from runs ``done``: the surrogates fitted on them (fidelity as a feature),
    the study's recommendation at the integration fidelity (:func:`mixopt.search.recommend.recommend`: the
    pick rule on the predicted front, the no-regression rule), within ``promote.within`` of the best
    quarter of the measured runs where set."""
    integration = config.fidelities[-1].name
    models = fit_objective_models(config, done)
    space = config.space(integration)
    near = None
    if config.promote.within is not None:
        searched = done.at(config.search_fidelity.name)
        best = np.argsort(-scalarize(searched.values * History(searched.weights, searched.values, config.directions).signs),
                          kind="stable")[: max(1, len(searched) // 4)]
        near = (searched.weights[best], config.promote.within)
    return recommend(
        models.predictor(integration), space, History(done.weights, done.values, config.directions, trials=done.numbers),
        seed=seed, prior=prior_mixture(space, config.searcher.options.get("prior")), rule=config.pick,
        names=[o.name for o in config.objectives], epsilon=config.epsilon,
        baseline=space.from_dict(config.baseline) if config.baseline is not None else None,
        model=f"{config.surrogate.name} surrogate", pool_size=CANDIDATES, near=near,
    )


def _local_trials(study: Study, round_number: int) -> list:
    """The local-batch trials of ``round_number`` (any state)."""
    return [t for t in study.trials() if t.user_attrs.get(Attr.LOCAL_FOR) == round_number]


def _queue_local_batch(study: Study, candidate: np.ndarray, round_number: int, n: int, seed: int) -> None:
    """Queue ``n`` microanneals at the search fidelity: the candidate itself (so that it is measured at both
    fidelities) and ``n - 1`` draws around it."""
    config = study.config
    space = config.space(config.search_fidelity.name)
    draws = local_design(space, candidate[None], max(n - 1, 0), seed, LOCAL_CONCENTRATION) if n > 1 else np.zeros((0, space.dim))
    weights = space.round(np.vstack([candidate[None], draws]), config.granularity)
    weights = weights[[space.is_feasible(w, tol=1e-7) for w in weights]]
    study.enqueue(weights, config.search_fidelity.name, {Attr.LOCAL_FOR: round_number})


def run_rounds(study: Study, on_progress: Callable[[Progress], None] | None = None,
               on_promotion: Callable[[dict], None] | None = None) -> Promotion:
    """Run (or resume) every round of the study; the last round's promoted mixture is the recommendation."""
    config = study.config
    if config.rounds is None:
        raise ConfigError("run_rounds needs a config with rounds: set rounds, or run the study with run_study")
    rounds = config.rounds
    if config.merge_seeds:
        check_keeps_checkpoints(config)
    per_round = math.ceil(config.n_trials / rounds)
    for round_number in range(1, rounds + 1):
        run_study(study, n_trials=min(round_number * per_round, config.n_trials), on_progress=on_progress)
        finish_round(study, round_number, on_progress, on_promotion)
    return promoted(study, rounds, on_progress)


def finish_round(study: Study, round_number: int, on_progress: Callable[[Progress], None] | None = None,
                 on_promotion: Callable[[dict], None] | None = None) -> None:
    """Promote round ``round_number``'s candidate (unless it was), run a failed integration run of it again,
    and run what waits; ``RunFailed`` when the round still has no completed integration run."""
    integration = study.config.fidelities[-1].name
    promoted_trials = _round_trials(study, round_number)
    if not promoted_trials:
        _promote_round(study, round_number, on_progress, on_promotion)
    elif all(t.state == TrialState.FAIL for t in promoted_trials):  # its run failed earlier: run it again
        study.enqueue(study.weights_of(promoted_trials[-1])[None, :], integration,
                      {Attr.ROUND: round_number, Attr.PREDICTED: promoted_trials[-1].user_attrs[Attr.PREDICTED]})
    run_waiting(study, on_progress)
    if not any(t.state == TrialState.COMPLETE for t in _round_trials(study, round_number)):
        raise RunFailed(f"the integration run of round {round_number} failed: see `mixopt study status`, then run again")


def promoted(study: Study, round_number: int, on_progress: Callable[[Progress], None] | None = None) -> Promotion:
    """Round ``round_number``'s completed integration run as the recommendation (with ``merge_seeds``: its
    seeds run and merged)."""
    last = [t for t in _round_trials(study, round_number) if t.state == TrialState.COMPLETE][-1]
    recommendation = Promotion(
        trial=last.number, round=round_number, mixture=study.space.as_dict(study.weights_of(last)),
        predicted=list(last.user_attrs[Attr.PREDICTED]), measured=list(last.values) if last.values else None,
    )
    return merge_seeds(study, recommendation, on_progress) if study.config.merge_seeds else recommendation


def _promote_round(study: Study, round_number: int, on_progress: Callable[[Progress], None] | None,
                   on_promotion: Callable[[dict], None] | None) -> None:
    """Promote round ``round_number``'s candidate; one that fails a gate first has its local batch run (a
    local batch that a stopped controller left unfinished is finished first)."""
    seed = study.config.seed + round_number
    if _local_trials(study, round_number):
        run_waiting(study, on_progress)
    if not promote(study, round_number, seed, on_promotion):
        run_waiting(study, on_progress)
        promote(study, round_number, seed, on_promotion)


def _round_trials(study: Study, round_number: int) -> list:
    """Integration trials promoted in ``round_number`` (failed ones included; re-runs keep the round)."""
    return [t for t in study.trials() if t.user_attrs.get(Attr.ROUND) == round_number]


# -- merging seeds of the recommended mixture ---------------------------------------------------------
def check_keeps_checkpoints(config: StudyConfig) -> None:
    """``merge_seeds`` needs a runner with a ``keep_checkpoint`` option: say so before anything runs."""
    if "keep_checkpoint" not in inspect.signature(RUNNERS.load(config.runner.name)).parameters:
        raise ConfigError(
            f"merge_seeds needs a runner that keeps checkpoints (a keep_checkpoint option; it returns "
            f"artifacts['checkpoint']), such as microanneal: runner '{config.runner.name}' has none, remove merge_seeds"
        )


def merge_study(study: Study, merged: Path) -> Study:
    """The study ``<name>-merge`` of ``study``'s seed runs, seen through a config whose runner keeps
    checkpoints and whose extra fidelity ``seed-merge`` evaluates the ``merged`` folder (0 tokens)."""
    config = study.config
    view = dataclasses.replace(
        config,
        runner=ComponentConfig(config.runner.name, {**config.runner.options, "keep_checkpoint": True}),
        fidelities=[*config.fidelities, FidelityConfig(MERGE_FIDELITY, tokens=0.0, model=str(merged))],
    )
    runs = study.sibling("merge", view)
    assert runs is not None
    return runs


def merge_seeds(study: Study, recommendation: Promotion,
                on_progress: Callable[[Progress], None] | None = None) -> Promotion:
    """Run (or resume) the seed runs of the recommended mixture, merge their checkpoints, evaluate the
    merge; the recommendation with the seeds' and the merge's values."""
    config = study.config
    integration = config.fidelities[-1].name
    merged = config.directory / "runs" / f"{study.name}-merge" / f"merged-trial-{recommendation.trial:05d}"
    runs = merge_study(study, merged)
    runs.recover_stale()
    weights = study.space.from_dict(recommendation.mixture)[None, :]
    relay = None
    if on_progress is not None:  # the progress of the study, not of its merge runs
        def relay(event: Progress) -> None:
            on_progress(dataclasses.replace(event, completed=study.n_complete(config.search_fidelity.name)))

    def ours(fidelity: str, *states: TrialState) -> list:
        return [t for t in runs.trials(states or None) if t.user_attrs.get(Attr.MERGE_FOR) == recommendation.trial
                and t.user_attrs.get(Attr.FIDELITY) == fidelity]

    wanted = config.merge_seeds or 0
    seeds = _seed_runs(ours(integration, TrialState.COMPLETE))
    if len(seeds) < wanted:
        queued = len(ours(integration, TrialState.WAITING))
        for _ in range(wanted - len(seeds) - queued):
            runs.enqueue(weights, integration, {Attr.MERGE_FOR: recommendation.trial})
        run_waiting(runs, relay)
        seeds = _seed_runs(ours(integration, TrialState.COMPLETE))
        if len(seeds) < wanted:
            raise RunFailed(f"{wanted - len(seeds)} seed runs of the recommended mixture failed "
                            f"({_last_reason(ours(integration, TrialState.FAIL))}): run again to retry them")
    seeds = seeds[:wanted]
    numbers = [t.number for t in seeds]
    evaluations = [t for t in ours(MERGE_FIDELITY, TrialState.COMPLETE) if t.user_attrs.get(Attr.MERGE_OF) == numbers]
    if not evaluations:
        from mixopt.merge import merge_checkpoints  # torch: imported only by studies that merge

        merge_checkpoints([t.user_attrs[Attr.ARTIFACTS]["checkpoint"] for t in seeds], merged)
        if not ours(MERGE_FIDELITY, TrialState.WAITING):
            runs.enqueue(weights, MERGE_FIDELITY, {Attr.MERGE_FOR: recommendation.trial, Attr.MERGE_OF: numbers})
        run_waiting(runs, relay)
        evaluations = [t for t in ours(MERGE_FIDELITY, TrialState.COMPLETE) if t.user_attrs.get(Attr.MERGE_OF) == numbers]
        if not evaluations:
            raise RunFailed(f"the evaluation of the merged checkpoint {merged} failed "
                            f"({_last_reason(ours(MERGE_FIDELITY, TrialState.FAIL))}): run again to retry it")
    return dataclasses.replace(recommendation, seeds=[list(t.values) for t in seeds],
                               merged=list(evaluations[-1].values), merged_checkpoint=str(merged))


def merge_results(study: Study) -> list[dict]:
    """What the study's ``<name>-merge`` study holds, per recommended trial (oldest first):
    ``{"trial", "seeds": [values of each completed seed run], "merged": values of the merge's evaluation
    or None, "checkpoint": the merged folder or None}``; empty when the study never merged seeds."""
    runs = study.sibling("merge", create=False)
    if runs is None:
        return []
    done = runs.trials((TrialState.COMPLETE,))
    results = []
    for trial in sorted({t.user_attrs[Attr.MERGE_FOR] for t in done if Attr.MERGE_FOR in t.user_attrs}):
        ours = [t for t in done if t.user_attrs.get(Attr.MERGE_FOR) == trial]
        merges = [t for t in ours if t.user_attrs.get(Attr.FIDELITY) == MERGE_FIDELITY]
        results.append({
            "trial": trial,
            "seeds": [list(t.values) for t in ours if t.user_attrs.get(Attr.FIDELITY) != MERGE_FIDELITY],
            "merged": list(merges[-1].values) if merges else None,
            "checkpoint": merges[-1].user_attrs.get(Attr.ARTIFACTS, {}).get("checkpoint") if merges else None,
        })
    return results


def _seed_runs(trials: list) -> list:
    """Completed seed runs whose checkpoint is on disk (oldest first); ``RunFailed`` if a run returned none."""
    missing = [t.number for t in trials if "checkpoint" not in t.user_attrs.get(Attr.ARTIFACTS, {})]
    if missing:
        raise RunFailed("merge_seeds needs a runner that returns artifacts['checkpoint']: "
                        f"seed runs {missing} returned none")
    return [t for t in trials if Path(t.user_attrs[Attr.ARTIFACTS]["checkpoint"]).is_dir()]


def _last_reason(failed: list) -> str:
    return failed[-1].user_attrs.get(Attr.FAIL_REASON, "no reason stored") if failed else "no failed run stored"
