"""What a study hands to a training stack: a chosen mixture rendered as YAML (:func:`mixopt.export.render`)
under the caps of the export budget, with its provenance (trial and measured values, or the model's
prediction and the nearest measured run) in the header."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixopt.errors import ConfigError
from mixopt.export import render, trial_provenance

if TYPE_CHECKING:
    from mixopt.recommend import Recommendation
    from mixopt.study import Study


def export_trial(study: Study, number: int, dialect: str = "olmo-core", fidelity: str | None = None) -> str:
    """The YAML of trial ``number``'s mixture under the caps of ``fidelity``'s budget (default: the last)."""
    trials = {t.number: t for t in study.trials()}
    if number not in trials or not trials[number].params:
        raise ConfigError(f"study '{study.name}' has no trial {number} with a mixture")
    trial = trials[number]
    config = study.config
    space = config.space(fidelity or config.fidelities[-1].name)
    values = dict(zip([o.name for o in config.objectives], trial.values, strict=True)) if trial.values else None
    provenance = trial_provenance(study.name, number, trial.user_attrs.get("fidelity"), values, space)
    return render(space, study.weights_of(trial), dialect, config.granularity, provenance)


def export_recommendation(study: Study, recommendation: Recommendation, dialect: str = "olmo-core",
                          fidelity: str | None = None) -> str:
    """The YAML of the study's recommended mixture under the caps of ``fidelity``'s budget (default: the
    last), with its predicted values and nearest measured trial as provenance."""
    config = study.config
    space = config.space(fidelity or config.fidelities[-1].name)
    names = [o.name for o in config.objectives]
    predicted = "none (too few runs for a model)"
    if recommendation.predicted is not None and recommendation.predicted_sd is not None:
        predicted = ", ".join(f"{n}={v:.6g} +- {s:.2g}" for n, v, s in
                              zip(names, recommendation.predicted, recommendation.predicted_sd, strict=True))
    provenance = {
        "study": study.name,
        "recommended_by": f"{recommendation.model}, pick {recommendation.rule}",
        "predicted": predicted,
        "nearest_trial": "none" if recommendation.nearest_trial is None else
        f"{recommendation.nearest_trial} (total-variation distance {recommendation.distance:.3f})",
        "export_budget_tokens": int(space.token_budget) if space.token_budget else "none",
    }
    return render(space, recommendation.weights, dialect, config.granularity, provenance)
