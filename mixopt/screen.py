"""Source screening (OLMo 3's first loop): is a candidate source worth a place in the mixture search?

Each candidate is measured as a microanneal of ``(1 - share) * anchor + share * candidate`` against the
compute-matched anchor-only baseline (same fidelity, same token budget), with replicates. The lift of a
source on an objective is the mean improvement over the baseline (positive = better, whatever the
direction), with its standard error from the replicate spread. Runs live in their own Optuna study
(``<study>-screening``) beside the study, so screening resumes like a study; the summary is stored in
the study's user attrs (``screening``) for status and the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import TrialState

from mixopt.config import ScreeningConfig, StudyConfig
from mixopt.errors import ConfigError, RunFailed
from mixopt.executors import EXECUTORS, Executor
from mixopt.loop import Dispatch, failure_reason, make_spec, output_root
from mixopt.objectives import objective_values
from mixopt.runners import RUNNERS
from mixopt.study import Study
from mixopt.trials import Attr, Evaluation, RunSpec, StudyAttr

BASELINE = "(anchor only)"
ENTER_Z = 1.0  # a source enters the search when it lifts some objective by more than this many standard errors


@dataclass(frozen=True)
class SourceLift:
    """Lift of one candidate: per objective mean improvement over the baseline and its standard error."""

    source: str
    lift: dict[str, float]
    stderr: dict[str, float]
    score: float
    enters_search: bool


def screening_mixtures(screening: ScreeningConfig, names: list[str]) -> dict[str, dict[str, float]]:
    """Arm name -> mixture over ``names``: the baseline and one arm per candidate."""
    anchor = np.array([screening.anchor.get(n, 0.0) for n in names])
    candidates = screening.candidates or [n for n in names if screening.anchor.get(n, 0.0) == 0.0]
    arms = {BASELINE: anchor}
    for source in candidates:
        arms[source] = (1 - screening.share) * anchor + screening.share * (np.array(names) == source)
    return {arm: dict(zip(names, w.tolist(), strict=True)) for arm, w in arms.items()}


def lifts(values: dict[str, np.ndarray], objectives: list[str], directions: tuple[str, ...]) -> list[SourceLift]:
    """Lifts from replicate values (arm -> ``(r, m)``), ranked best first.

    The score is the mean over objectives of the lift in units of the baseline's spread (or of its
    standard error where the baseline has one replicate), so objectives on different scales count alike.
    """
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    base = values[BASELINE] * signs
    base_mean, base_var = base.mean(axis=0), base.var(axis=0, ddof=1) if len(base) > 1 else np.zeros(base.shape[1])
    results = []
    for arm, arm_values in values.items():
        if arm == BASELINE:
            continue
        oriented = arm_values * signs
        var = oriented.var(axis=0, ddof=1) if len(oriented) > 1 else np.zeros(oriented.shape[1])
        lift = oriented.mean(axis=0) - base_mean
        se = np.sqrt(var / len(oriented) + base_var / len(base))
        scale = np.where(se > 0, se, np.maximum(np.abs(lift), 1e-12))
        results.append(SourceLift(
            source=arm,
            lift=dict(zip(objectives, lift.tolist(), strict=True)),
            stderr=dict(zip(objectives, se.tolist(), strict=True)),
            score=float(np.mean(lift / scale)),
            enters_search=bool(np.any(lift > ENTER_Z * se) if np.any(se > 0) else np.any(lift > 0)),
        ))
    return sorted(results, key=lambda r: r.score, reverse=True)


def run_screening(study: Study, replicates: int | None = None, executor: Executor | None = None) -> list[SourceLift]:
    """Run (or resume) the screening arms of ``study``'s config; store and return the ranked lifts."""
    config: StudyConfig = study.config
    if config.screening is None:
        raise ConfigError("this study has no screening section: add screening: {anchor: {SOURCE: 1.0}, ...}")
    replicates = replicates or config.screening.replicates
    arms = screening_mixtures(config.screening, [s.name for s in config.sources])
    screen = study.sibling("screening")
    assert screen is not None
    done = {(t.user_attrs[Attr.ARM], t.user_attrs[Attr.REPLICATE]) for t in screen.trials((TrialState.COMPLETE,))}
    todo = [(arm, r) for arm in arms for r in range(replicates) if (arm, r) not in done]
    runs = output_root(config, screen.name)
    fidelity = config.search_fidelity.name
    specs = [make_spec(config, index, arms[arm], fidelity, config.seed + 1000 * r + index, runs / f"{_slug(arm)}-r{r}")
             for index, (arm, r) in enumerate(todo)]
    dispatch = Dispatch(RUNNERS.create(config.runner.name, config.runner.options),
                        executor or EXECUTORS.create(config.executor.name, config.executor.options),
                        lambda spec, result: _record_arm(screen, config, spec, result, *todo[spec.trial]))
    try:
        dispatch.submit(specs)
        dispatch.drain()
    finally:
        dispatch.executor.close()
    by_arm: dict[str, list[list[float]]] = {}
    for t in screen.trials((TrialState.COMPLETE,)):
        by_arm.setdefault(t.user_attrs[Attr.ARM], []).append(list(t.values))
    missing = [arm for arm in arms if len(by_arm.get(arm, [])) == 0]
    if missing:
        raise RunFailed(f"screening has no completed run for {missing}; see `mixopt study status` and run again")
    ranked = lifts({a: np.array(v) for a, v in by_arm.items() if a in arms},
                   [o.name for o in config.objectives], config.directions)
    study.optuna.set_user_attr(StudyAttr.SCREENING, [asdict(r) for r in ranked])
    return ranked


def _record_arm(screen: Study, config: StudyConfig, spec: RunSpec, result: object, arm: str, replicate: int) -> str | None:
    """Store one screening run as a trial of ``screen`` (complete with its objective values, or failed with
    the reason); the arm's mixture may lie outside the search space, so it is added, not asked."""
    attrs = {Attr.ARM: arm, Attr.REPLICATE: replicate, Attr.FIDELITY: spec.fidelity}
    distributions: dict[str, BaseDistribution] = {n: FloatDistribution(0.0, 1.0) for n in spec.mixture}
    error = failure_reason(result) if isinstance(result, BaseException) else None
    if isinstance(result, Evaluation):
        try:
            values = objective_values(result, config.objectives)
        except ValueError as exc:
            error = failure_reason(exc)
        else:
            screen.optuna.add_trial(optuna.trial.create_trial(
                params=spec.mixture, distributions=distributions, values=values,
                user_attrs={**attrs, Attr.METRICS: result.metrics}))
            return None
    elif error is None:
        error = f"the runner returned {type(result).__name__}, not an Evaluation"
    screen.optuna.add_trial(optuna.trial.create_trial(
        params=spec.mixture, distributions=distributions, state=TrialState.FAIL,
        user_attrs={**attrs, Attr.FAIL_REASON: error}))
    return error


def _slug(arm: str) -> str:
    return "baseline" if arm == BASELINE else "".join(c if c.isalnum() or c in "-_." else "_" for c in arm)
