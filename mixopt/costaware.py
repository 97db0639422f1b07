"""The cost-aware fidelity policy (``fidelity_policy: cost-aware``): a multi-fidelity model chooses both the
mixture and the fidelity of every run under a total budget, then the study promotes once, as a round does.

1. Initial design: ``budget.initial`` mixtures from the study's searcher at the search fidelity; the first
   ``budget.initial_target`` of them are also run at the target (last) fidelity, the model's first look at it.
2. Batches of up to ``batch_size`` runs chosen by :func:`mixopt.search.multifidelity.choose_runs` (cost-
   weighted multi-fidelity max-value entropy over every fidelity the budget can still pay for), while the
   budget, less the cost of the final run, pays for them.
3. One promotion (:func:`mixopt.rounds.finish_round`, round 1: the study's surrogate with its fidelity
   feature, the pick rule, the checks and gates of ``promote``) to a run at the target fidelity. That
   measured run is the recommendation, exported as a round's is.

Costs (``budget.unit``): ``tokens``, a run costs its fidelity's tokens; ``seconds``, each fidelity's mean
measured run time (``cost["seconds"]`` of its completed runs; a fidelity not yet run is estimated from
the seconds per token of the fidelities that were). Every trial queued or run counts, failed ones too (a
run interrupted with its controller is replaced by its re-run, counted once). All of
it is read back from the study's trials, so a stopped run resumes where it was.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from optuna.trial import TrialState

from mixopt.analysis import study_runs
from mixopt.config import StudyConfig, initial_runs
from mixopt.errors import ConfigError
from mixopt.loop import Progress, run_study, run_waiting
from mixopt.rounds import Promotion, check_keeps_checkpoints, finish_round, promoted
from mixopt.search.designs import prior_mixture
from mixopt.search.multifidelity import choose_runs
from mixopt.seeding import batch_seed
from mixopt.study import Study
from mixopt.trials import Attr, History, rerun_targets

ROUND = 1  # the policy's single promotion is its round 1
INITIAL, CHOSEN = "initial", "cost-aware"  # Attr.CHOSEN_BY of the initial target runs and of the model's choices


def fidelity_levels(config: StudyConfig) -> np.ndarray:
    """Each fidelity's level ``(F,)``: its tokens over the target (last) fidelity's, so the target is 1."""
    return np.array([f.tokens for f in config.fidelities]) / config.fidelities[-1].tokens


def run_costs(config: StudyConfig, trials: list) -> np.ndarray:
    """The cost ``(F,)`` of one run at each fidelity, in ``budget.unit`` (measured on ``trials`` for seconds)."""
    assert config.budget is not None
    tokens = np.array([f.tokens for f in config.fidelities], dtype=float)
    if config.budget.unit == "tokens":
        return tokens
    seconds: dict[str, list[float]] = {}
    for t in trials:
        measured = t.user_attrs.get(Attr.COST, {}).get("seconds") if t.state == TrialState.COMPLETE else None
        if measured is not None:
            seconds.setdefault(t.user_attrs.get(Attr.FIDELITY), []).append(float(measured))
    mean = np.array([np.mean(seconds[f.name]) if f.name in seconds else np.nan for f in config.fidelities])
    known = np.isfinite(mean)
    if not known.any():
        return tokens / tokens[-1]  # nothing measured yet: relative sizes only (the initial design runs regardless)
    per_token = float(np.sum(mean[known]) / np.sum(tokens[known]))
    return np.where(known, mean, tokens * per_token)


def spent(config: StudyConfig, trials: list, costs: np.ndarray) -> float:
    """What the study's runs at its fidelities cost so far (``costs`` ``(F,)``): every trial queued or run
    counts, a failed one too, except a trial interrupted with its controller, which its re-run replaces."""
    names = [f.name for f in config.fidelities]
    replaced = rerun_targets(trials)
    total = 0.0
    for t in trials:
        fidelity = t.user_attrs.get(Attr.FIDELITY)
        if fidelity not in names or t.number in replaced:
            continue
        measured = t.user_attrs.get(Attr.COST, {}).get("seconds")
        use_measured = config.budget is not None and config.budget.unit == "seconds" and measured is not None
        total += float(measured) if use_measured else float(costs[names.index(fidelity)])
    return total


def budget_status(study: Study) -> dict | None:
    """A cost-aware study's budget: ``{"unit", "cost", "spent", "run_costs": {fidelity: one run's cost}}``
    (None for another policy), for ``mixopt study status``."""
    config = study.config
    if config.budget is None:
        return None
    trials = study.trials()
    costs = run_costs(config, trials)
    return {"unit": config.budget.unit, "cost": config.budget.cost, "spent": spent(config, trials, costs),
            "run_costs": {f.name: float(c) for f, c in zip(config.fidelities, costs, strict=True)}}


def run_cost_aware(study: Study, on_progress: Callable[[Progress], None] | None = None,
                   on_promotion: Callable[[dict], None] | None = None) -> Promotion:
    """Run (or resume) a cost-aware study to its budget; its promoted, measured mixture is the recommendation."""
    config = study.config
    if config.fidelity_policy != "cost-aware" or config.budget is None:
        raise ConfigError("run_cost_aware needs fidelity_policy: cost-aware and a budget in the config")
    if config.merge_seeds:
        check_keeps_checkpoints(config)
    run_study(study, n_trials=initial_runs(config), on_progress=on_progress)
    _queue_initial_targets(study)
    run_waiting(study, on_progress)
    while _queue_choices(study):
        run_waiting(study, on_progress)
    finish_round(study, ROUND, on_progress, on_promotion)
    return promoted(study, ROUND, on_progress)


def _queue_initial_targets(study: Study) -> None:
    """Queue the first ``budget.initial_target`` initial mixtures at the target fidelity (once)."""
    config = study.config
    assert config.budget is not None
    if any(t.user_attrs.get(Attr.CHOSEN_BY) == INITIAL for t in study.trials()):
        return
    first = study_runs(study).at(config.search_fidelity.name)
    order = np.argsort(first.numbers, kind="stable")[: config.budget.initial_target]
    if len(order):
        study.enqueue(first.weights[order], config.fidelities[-1].name, {Attr.CHOSEN_BY: INITIAL})


def _queue_choices(study: Study) -> bool:
    """Queue the model's next batch, as much of it as the budget left (less the final run) pays for;
    False when it pays for no run."""
    config = study.config
    assert config.budget is not None
    trials = study.trials()
    costs = run_costs(config, trials)
    left = config.budget.cost - spent(config, trials, costs) - costs[-1]
    affordable = np.flatnonzero(costs <= left + 1e-9)
    done = study_runs(study)
    if not len(affordable) or len(done) < 2:
        return False
    levels = fidelity_levels(config)
    names = np.array([f.name for f in config.fidelities], dtype=object)
    space = config.space(config.fidelities[-1].name)  # feasible at the target: the caps there are the tightest
    history = History(done.weights, done.values, config.directions)
    noise = _single_objective_noise(config, done)
    choices = choose_runs(
        space, done.weights, levels[[list(names).index(f) for f in done.fidelities]], history.maximized,
        levels[affordable], costs[affordable], config.batch_size, seed=batch_seed(config.seed, len(trials)),
        prior=prior_mixture(space, config.searcher.options.get("prior")), noise=noise,
    )
    queued = False
    for choice in choices:
        level = affordable[choice.level]
        if costs[level] > left + 1e-9:
            continue
        left -= costs[level]
        study.enqueue(space.round(choice.weights, config.granularity)[None, :], str(names[level]), {Attr.CHOSEN_BY: CHOSEN})
        queued = True
    return queued


def _single_objective_noise(config: StudyConfig, done) -> np.ndarray | None:
    """The runs' reported variances of a single objective's metric (None: several objectives, or a run
    without one: the GP infers the noise)."""
    if len(config.objectives) != 1:
        return None
    metric = config.objectives[0].metric
    stderr = np.array([row.get(metric, np.nan) for row in done.stderr], dtype=float)
    return stderr**2 if len(stderr) and np.all(np.isfinite(stderr)) else None
