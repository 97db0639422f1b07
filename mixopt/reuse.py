"""Mixture reuse (Olmix's answer to a data pool that changes): warm-start a study from an older one whose
sources differ (added, removed, renamed or split).

An old mixture ``u`` ``(K_old,)`` maps to the new sources as ``u @ M`` with ``M`` ``(K_old, K_new)``:

- an old source with a new source of its name carries its weight (a 1 in that column);
- an old source mapped to one new source is renamed; several old sources mapped to one are merged;
- an old source mapped to several new sources (a split) divides its weight among them in proportion to
  their ``tokens``, or by explicit shares;
- an old source with no counterpart is *unmapped* (a row of zeros): a trial that gave it more than
  ``drop_unmapped_above`` weight cannot be mapped and is skipped; up to that, its weight is dropped and
  the rest renormalized;
- a new source with no old counterpart (*added*) gets weight 0.

A mapped mixture outside the new space (bounds, groups, repetition caps at its fidelity) is projected
onto it when that moves it by at most ``max_projection`` (L1), else skipped. Old completed trials become
completed trials of the new study (``imported_from`` names the old study and trial) when the old study
measured every new objective's metric, so the searcher starts from them; fidelities match by name.
The old study's recommended mixture (its last round's integration run, else its ``pick`` rule), mapped,
is queued as the new study's first proposal. When the old study lacks an objective's metric, nothing is
imported: its recommended and Pareto-front mixtures, mapped, are queued as proposals (up to
``batch_size``). Reuse runs once: its report is stored in the study's user attr ``reuse``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from mixopt import pareto
from mixopt.compat import storage_engine, study_storage
from mixopt.config import ReuseConfig, load_config
from mixopt.errors import ConfigError
from mixopt.space import MixtureSpace
from mixopt.study import Study
from mixopt.trials import Attr, StudyAttr


# -- pure mapping ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceMap:
    """How old sources become new ones: ``matrix`` ``(K_old, K_new)``, each row summing to 1 (mapped) or 0."""

    old: tuple[str, ...]
    new: tuple[str, ...]
    matrix: np.ndarray

    @property
    def unmapped(self) -> list[str]:
        """Old sources with no counterpart."""
        return [name for name, row in zip(self.old, self.matrix, strict=True) if not row.any()]

    @property
    def added(self) -> list[str]:
        """New sources that no old source maps to (weight 0 in mapped mixtures)."""
        return [name for name, column in zip(self.new, self.matrix.T, strict=True) if not column.any()]

    def shares(self) -> dict[str, dict[str, float]]:
        """Old source -> {new source: share of its weight} (empty for an unmapped source)."""
        return {o: {n: float(x) for n, x in zip(self.new, row, strict=True) if x > 0} for o, row in zip(self.old, self.matrix, strict=True)}


def source_map(old: list[str], new_tokens: dict[str, float | None], rules: dict[str, Any]) -> SourceMap:
    """The map from ``old`` source names to the new sources (``new_tokens``: name -> tokens, in order),
    by ``rules`` (old name -> new name, list of new names, or {new name: share}); see the module docstring."""
    unknown = [name for name in rules if name not in old]
    if unknown:
        raise ConfigError(f"reuse.map names '{unknown[0]}', which is not a source of the old study "
                          f"(its sources: {', '.join(old)})")
    new = list(new_tokens)
    matrix = np.zeros((len(old), len(new)))
    for i, name in enumerate(old):
        rule = rules.get(name, name if name in new_tokens else None)
        if rule is None:
            continue
        if isinstance(rule, str):
            rule = [rule]
        if isinstance(rule, list):
            total = sum(new_tokens[n] or 0.0 for n in rule) if len(rule) > 1 else 1.0
            rule = {n: (new_tokens[n] or 0.0) / total if len(rule) > 1 else 1.0 for n in rule}
        for target, share in rule.items():
            matrix[i, new.index(target)] = share
    return SourceMap(tuple(old), tuple(new), matrix)


def map_mixture(source_map: SourceMap, u: np.ndarray, drop_unmapped_above: float) -> tuple[np.ndarray | None, float]:
    """The new mixture ``(K_new,)`` of old mixture ``u`` ``(K_old,)`` and the weight ``u`` put on unmapped
    sources; the mixture is None when that weight exceeds ``drop_unmapped_above`` (or is everything)."""
    mapped = u @ source_map.matrix
    lost = float(u.sum() - mapped.sum())
    if lost > drop_unmapped_above + 1e-9 or mapped.sum() <= 0:
        return None, lost
    return mapped / mapped.sum(), lost


def fit_to_space(space: MixtureSpace, w: np.ndarray, max_projection: float) -> tuple[np.ndarray | None, float]:
    """``w`` itself if feasible, else its projection onto ``space`` when that is within ``max_projection``
    (L1) of it, else None; with the L1 distance moved."""
    if space.is_feasible(w, tol=1e-6):
        return w, 0.0
    projected = space.project(w)
    shift = float(np.abs(projected - w).sum())
    return (projected if shift <= max_projection else None), shift


# -- the report ------------------------------------------------------------------------------------
@dataclass
class ReuseReport:
    """What reuse did. Trial numbers are the old study's. ``skipped`` rows are ``{trial, reason}`` (plus
    ``unmapped``: the unmapped sources used, when that is the reason); ``weight_lost`` sums the weight the
    skipped trials put on unmapped sources; ``proposals`` are the queued mixtures (``{"from", "mixture"}``);
    ``missing_metrics``: new objectives' metrics the old study lacks (then nothing is imported)."""

    old_study: str
    old_trials: int
    shares: dict[str, dict[str, float]]
    unmapped: list[str]
    added: list[str]
    imported: list[int] = field(default_factory=list)
    projected: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    weight_lost: float = 0.0
    proposals: list[dict[str, Any]] = field(default_factory=list)
    missing_metrics: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """A few lines for the terminal: the source map, then what was imported, skipped and proposed."""
        lines = [f"reuse of study '{self.old_study}' ({self.old_trials} completed trials):"]
        width = max(len(name) for name in [*self.shares, *self.added])
        for old, shares in self.shares.items():
            if not shares:
                lost = sum(1 for s in self.skipped if old in s.get("unmapped", ()))
                lines.append(f"  {old:<{width}} -> unmapped (no source here); {lost} trials that gave it weight skipped")
            elif list(shares) == [old]:
                lines.append(f"  {old:<{width}} -> {old}")
            else:
                lines.append(f"  {old:<{width}} -> " + ", ".join(f"{n} {x:.3f}" for n, x in shares.items()))
        for new in self.added:
            lines.append(f"  {new:<{width}} <- added (weight 0 in mapped mixtures)")
        if self.missing_metrics:
            lines.append(f"  the old study has no {', '.join(self.missing_metrics)}: its mixtures are proposals only")
        else:
            lines.append(f"  imported {len(self.imported)} trials as observations ({len(self.projected)} projected onto "
                         f"the constraints); skipped {len(self.skipped)}"
                         + (f" (weight lost on unmapped sources: {self.weight_lost:.3f})" if self.weight_lost else ""))
        for proposal in self.proposals:
            lines.append(f"  queued: {proposal['from']}")
        return lines


# -- the entry point -------------------------------------------------------------------------------
def apply_reuse(study: Study) -> ReuseReport | None:
    """Import and queue what the config's ``reuse`` section names, once; returns the report, or None when
    this study has no reuse section or applied it earlier (see ``stored_report``)."""
    config = study.config
    if config.reuse is None or StudyAttr.REUSE in study.optuna.user_attrs:
        return None
    old = open_old_study(config.reuse, config.directory)
    if old.name == study.name and _storage_url(old) == _storage_url(study):
        raise ConfigError("reuse names this study itself: point it at the older study")
    mapping = source_map(list(old.space.names), {s.name: s.tokens for s in config.sources}, config.reuse.map)
    done = [t for t in old.trials((TrialState.COMPLETE,)) if all(n in t.params for n in old.space.names)]
    report = ReuseReport(old_study=old.name, old_trials=len(done), shares=mapping.shares(),
                         unmapped=mapping.unmapped, added=mapping.added,
                         missing_metrics=_missing_metrics(old, done, [o.metric for o in config.objectives]))
    if not report.missing_metrics:
        _import_observations(study, old, done, mapping, report)
    _queue_proposals(study, old, done, mapping, report)
    study.optuna.set_user_attr(StudyAttr.REUSE, dataclasses.asdict(report))
    return report


def stored_report(study: Study) -> ReuseReport | None:
    """The report of the reuse applied to ``study``, if any."""
    stored = study.optuna.user_attrs.get(StudyAttr.REUSE)
    return ReuseReport(**stored) if stored else None


def open_old_study(reuse: ReuseConfig, directory: Path) -> Study:
    """The old study named by the ``reuse`` section (its storage must exist: it is never created here)."""
    storage, name = reuse.storage, reuse.study_name
    if reuse.study is not None:
        path = Path(reuse.study) if Path(reuse.study).is_absolute() else directory / reuse.study
        old_config = load_config(path)
        storage, name = storage or old_config.storage_url, name or old_config.name
    if storage is None or name is None:  # validate_reuse requires study, or storage and study_name
        raise ConfigError("reuse: name the old study with study: PATH/study.yaml, or with storage: URL and study_name: NAME")
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).is_file():
        raise ConfigError(f"reuse: the old study's storage {storage} does not exist: run the old study first")
    return Study.load(storage, name)


def _storage_url(study: Study) -> str:
    storage = study_storage(study.optuna)
    engine = storage_engine(storage)
    return str(engine.url) if engine is not None else repr(storage)  # mixopt opens only RDB URLs


def _metric_value(old: Study, trial: FrozenTrial, metric: str) -> float | None:
    """A trial's value of ``metric``: from its stored metrics, else from the old objective measuring it."""
    value = trial.user_attrs.get(Attr.METRICS, {}).get(metric)
    if value is None and trial.values is not None:
        for objective, v in zip(old.config.objectives, trial.values, strict=True):
            if objective.metric == metric:
                value = v
    return None if value is None or not np.isfinite(value) else float(value)


def _missing_metrics(old: Study, done: list[FrozenTrial], metrics: list[str]) -> list[str]:
    return [m for m in metrics if not any(_metric_value(old, t, m) is not None for t in done)]


def _provenance(old: Study, number: int) -> str:
    return f"study '{old.name}' trial {number}"


def _import_observations(study: Study, old: Study, done: list[FrozenTrial], mapping: SourceMap,
                         report: ReuseReport) -> None:
    """Old completed trials as completed trials of ``study`` (through ``Study.import_runs``), skipping
    those that cannot be mapped; trials imported before an interruption are not imported again."""
    already = {t.user_attrs.get(Attr.IMPORTED_FROM) for t in study.trials()}
    for trial in done:
        mapped = _observation(study, old, trial, mapping)
        if isinstance(mapped, dict):
            report.skipped.append(mapped)
            report.weight_lost += mapped.pop("lost", 0.0)
            continue
        mixture, values, fidelity, shift = mapped
        source = _provenance(old, trial.number)
        if source not in already and study.import_runs(mixture[None, :], np.array([values]), fidelity, source).outside:
            report.skipped.append({"trial": trial.number, "reason": "outside this study's space"})
            continue
        report.imported.append(trial.number)
        if shift > 0:
            report.projected.append(trial.number)


def _observation(study: Study, old: Study, trial: FrozenTrial,
                 mapping: SourceMap) -> tuple[np.ndarray, list[float], str, float] | dict[str, Any]:
    """An old trial as (mixture ``(K_new,)``, objective values, fidelity, L1 distance projected), or the
    skipped row saying why it cannot be (with ``lost``: the weight on unmapped sources, where that is why)."""
    config, reuse = study.config, study.config.reuse
    if reuse is None:
        raise ConfigError("this study has no reuse section")
    fidelity = trial.user_attrs.get(Attr.FIDELITY)
    if fidelity not in {f.name for f in config.fidelities}:
        return {"trial": trial.number, "reason": f"fidelity '{fidelity}' is not in this study"}
    weights = old.weights_of(trial)
    mixture, lost = map_mixture(mapping, weights, reuse.drop_unmapped_above)
    if mixture is None:
        used = [n for n, x in zip(old.space.names, weights, strict=True) if x > 0 and n in mapping.unmapped]
        return {"trial": trial.number, "reason": f"weight {lost:.3f} on unmapped {', '.join(used)}",
                "unmapped": used, "lost": lost}
    measured = [(o.metric, _metric_value(old, trial, o.metric)) for o in config.objectives]
    values = [v for _, v in measured if v is not None]
    if len(values) < len(measured):
        return {"trial": trial.number, "reason": f"no value of {next(m for m, v in measured if v is None)}"}
    fitted, shift = fit_to_space(config.space(fidelity), mixture, reuse.max_projection)
    if fitted is None:
        return {"trial": trial.number, "reason": f"moves {shift:.3f} (L1) to fit this study's constraints, more than max_projection"}
    return fitted, values, fidelity, shift


def recommended_trial(old: Study, done: list[FrozenTrial]) -> FrozenTrial | None:
    """The old study's recommendation: its last round's integration run, else the trial its ``pick``
    rule chooses among completed trials at its search fidelity."""
    rounds = [t for t in done if Attr.ROUND in t.user_attrs]
    if rounds:
        return max(rounds, key=lambda t: (t.user_attrs[Attr.ROUND], t.number))
    searched = _searched(old, done)
    if not searched:
        return None
    values = np.array([t.values for t in searched], dtype=float)
    names = [o.name for o in old.config.objectives]
    return searched[pareto.pick(values, old.config.directions, old.config.pick, names)]


def _searched(old: Study, done: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials of ``done`` at the old study's search fidelity."""
    return [t for t in done if t.user_attrs.get(Attr.FIDELITY) == old.config.search_fidelity.name]


def _queue_proposals(study: Study, old: Study, done: list[FrozenTrial], mapping: SourceMap,
                     report: ReuseReport) -> None:
    """Queue the mapped recommendation first (and, when nothing was imported, the mapped Pareto front, up
    to ``batch_size`` mixtures), rounded onto this study's grid at its search fidelity."""
    config = study.config
    candidates = []
    best = recommended_trial(old, done)
    if best is not None:
        candidates.append((best, f"the recommended mixture of {_provenance(old, best.number)}, mapped"))
    if report.missing_metrics:
        searched = _searched(old, done)
        if searched:
            front = pareto.non_dominated(np.array([t.values for t in searched], dtype=float), old.config.directions)
            candidates += [(t, f"the Pareto-front mixture of {_provenance(old, t.number)}, mapped")
                           for t, on_front in zip(searched, front, strict=True) if on_front and t is not best]
    queued = [t.user_attrs[Attr.PROPOSAL] for t in study.trials() if Attr.PROPOSAL in t.user_attrs]
    chosen: list[np.ndarray] = []
    for trial, label in candidates:
        if len(chosen) == config.batch_size:
            break
        mixture, _ = map_mixture(mapping, old.weights_of(trial), drop_unmapped_above=1.0)
        if mixture is None:
            continue
        weights = study.space.round(mixture, config.granularity)
        if any(np.allclose(weights, other) for other in chosen):
            continue
        chosen.append(weights)
        if label not in queued:
            study.enqueue(weights[None, :], config.search_fidelity.name, {Attr.PROPOSAL: label})
        report.proposals.append({"from": label, "mixture": study.space.as_dict(weights)})
