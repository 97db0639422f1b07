"""What a study hands to a training stack: a chosen mixture rendered as YAML (:func:`mixopt.export.render`)
under the caps of the export budget, with its provenance (trial and measured values, or the model's
prediction and the nearest measured run) in the header. An olmo-core export names the token files the
study's runner trains on (:meth:`mixopt.runners.Runner.token_files`: for the microanneal runner, the token
files that text and the demo's sources are tokenized into), so OLMo-core reads what the study measured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mixopt.errors import ConfigError, OutputError
from mixopt.export import TrainerLayout, budget_provenance, render, sources_layout, trial_provenance
from mixopt.realisable import file_populations, olmo_core_realised, realisable_mixture
from mixopt.space import MixtureSpace
from mixopt.trials import Attr
from mixopt.trust import tv_distance

if TYPE_CHECKING:
    from mixopt.recommend import Recommendation
    from mixopt.study import Study

RECOMMENDED = "recommended"  # the --pick that exports the model's recommendation (the default)


def export_space(study: Study, dialect: str, fidelity: str | None,
                 batch: tuple[int, int] | None = None) -> tuple[MixtureSpace, TrainerLayout]:
    """The space an export is rendered in, under the caps of ``fidelity``'s budget (default: the last), and
    how its trainer reads it. For olmo-core, each source's paths are the token files the runner trains on
    where it knows them, read as it reads them; otherwise the config's paths, read as their common dtype.
    ``batch``: the trainer's (sequence length, global batch size in tokens), else the runner's or the default."""
    from mixopt.runners import RUNNERS

    config = study.config
    fid = config.fidelity(fidelity or config.fidelities[-1].name)
    space = config.space(fid.name)
    layout = sources_layout(space.sources)
    found = None
    if dialect == "olmo-core":
        found = RUNNERS.create(config.runner.name, config.runner.options).token_files(space.sources, fid.model)
    if found is not None:
        files, layout = found
        space = replace(space, sources=tuple(replace(s, paths=files.get(s.name, s.paths)) for s in space.sources))
    if batch is not None:
        layout = replace(layout, sequence_length=batch[0], global_batch_size=batch[1])
    return space, layout


def realisable_snap(space: MixtureSpace, layout: TrainerLayout) -> Callable[[np.ndarray], np.ndarray]:
    """The map of a mixture ``(K,)`` to the nearest one OLMo-core realises exactly in ``space`` at its budget
    in ``layout``'s batches, its sources' populations counted from their files once, checked with OLMo-core's
    own build (:func:`mixopt.realisable.realisable_mixture`)."""
    populations = file_populations(space, layout)
    return lambda w: realisable_mixture(space, w, layout, populations, lambda v: olmo_core_realised(space, v, layout))


def snapped_line(requested: np.ndarray, snapped: np.ndarray, what: str) -> dict[str, str]:
    """The header line of a realisable export: how far (total variation) the mixture moved from ``what``."""
    return {"snapped": f"to whole instances, total-variation distance {tv_distance(snapped, requested):.4f} "
                       f"from {what}"}


def export_trial(study: Study, number: int, dialect: str = "olmo-core", fidelity: str | None = None,
                 allow_incomplete: bool = False, keep_zero: bool = False, batch: tuple[int, int] | None = None,
                 realisable: bool = False) -> str:
    """The YAML of trial ``number``'s mixture under the caps of ``fidelity``'s budget (default: the last);
    ``allow_incomplete``: written with a warning where the dialect's reader would refuse it (else refused);
    ``keep_zero``: olmo-core keeps the sources of weight 0; ``batch``: as for :func:`export_space`;
    ``realisable``: snapped to the nearest mixture OLMo-core realises exactly (:mod:`mixopt.realisable`)."""
    trials = {t.number: t for t in study.trials()}
    if number not in trials or not trials[number].params:
        raise ConfigError(f"study '{study.name}' has no trial {number} with a mixture")
    trial = trials[number]
    config = study.config
    space, layout = export_space(study, dialect, fidelity, batch)
    values = dict(zip([o.name for o in config.objectives], trial.values, strict=True)) if trial.values else None
    provenance = trial_provenance(study.name, number, trial.user_attrs.get(Attr.FIDELITY), values, space)
    weights = study.weights_of(trial)
    if realisable:
        weights, requested = realisable_snap(space, layout)(weights), weights
        provenance.update(snapped_line(requested, weights, f"trial {number}'s mixture"))
    return render(space, weights, dialect, config.granularity, provenance, allow_incomplete, layout, keep_zero,
                  realisable)


def export_recommendation(study: Study, recommendation: Recommendation, dialect: str = "olmo-core",
                          fidelity: str | None = None, allow_incomplete: bool = False, keep_zero: bool = False,
                          batch: tuple[int, int] | None = None) -> str:
    """The YAML of the study's recommended mixture under the caps of ``fidelity``'s budget (default: the
    last), with its predicted values and nearest measured trial as provenance; a recommendation snapped to a
    mixture OLMo-core realises (``snapped_from``) is written as a realisable export."""
    config = study.config
    space, layout = export_space(study, dialect, fidelity, batch)
    snapped = recommendation.snapped_from is not None
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
        **budget_provenance(space),
    }
    if recommendation.snapped_from is not None:
        provenance.update(snapped_line(recommendation.snapped_from, recommendation.weights, "the model's recommendation"))
    return render(space, recommendation.weights, dialect, config.granularity, provenance, allow_incomplete, layout,
                  keep_zero, snapped)


def export_choice(study: Study, trial: int | None = None, pick: str | None = None, dialect: str = "olmo-core",
                  fidelity: str | None = None, allow_incomplete: bool = False, keep_zero: bool = False,
                  batch: tuple[int, int] | None = None, realisable: bool = False) -> tuple[str, str]:
    """The YAML ``mixopt study export`` writes, and what it holds (for the message): trial ``trial``, the
    measured trial that rule ``pick`` chooses, or (neither given, or ``pick`` "recommended") the study's
    recommendation, under the caps of ``fidelity``'s budget (default: the last); ``realisable``: snapped
    to the nearest mixture OLMo-core realises exactly in the trainer's batches (olmo-core only)."""
    from mixopt.recommend import pick_measured, recommend_study

    if trial is not None and pick is not None:
        raise ConfigError("give at most one of --trial N or --pick recommended|knee|best:OBJECTIVE|chebyshev:w1,w2,...")
    if realisable and dialect != "olmo-core":
        raise ConfigError("--realisable snaps olmo-core exports: drop --format or give --format olmo-core")
    if trial is None and pick in (None, RECOMMENDED):
        snap = realisable_snap(*export_space(study, dialect, fidelity, batch)) if realisable else None
        recommendation = recommend_study(study, fidelity, snap)
        text = export_recommendation(study, recommendation, dialect, fidelity, allow_incomplete, keep_zero, batch)
        return text, "the recommended mixture"
    number = trial if trial is not None else pick_measured(study, str(pick), export_fidelity=fidelity)
    return (export_trial(study, number, dialect, fidelity, allow_incomplete, keep_zero, batch, realisable),
            f"trial {number}")


def exports_path(study: Study) -> Path:
    """``exports/<study>.yaml`` beside the config, its folder created (an unwritable one is one error line)."""
    path = study.config.directory / "exports" / f"{study.name}.yaml"
    try:
        path.parent.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError.cannot_write(path.parent, exc, "export elsewhere with `mixopt study export -o`") from None
    return path
