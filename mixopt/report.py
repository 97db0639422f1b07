"""The study report: one offline HTML page of the figures in :mod:`mixopt.figures`.

``build_report`` reads the study (:meth:`~mixopt.study.Study.observations`), fits its models
(:mod:`mixopt.analysis`: one surrogate per objective on every fidelity, the fidelity a feature) and
builds the figures; ``render_html`` lays them out; ``write_report`` writes the page with ``plotly.min.js``
once beside it (never a CDN), optional PNGs through kaleido (needs a Chromium binary), and attaches the
figures to the study so that optuna-dashboard shows them (``optuna_dashboard.save_plotly_graph_object``,
under ids ``mixopt-*``).

The surrogate-predicted front: the models predict many polytope samples at the search fidelity; the
non-dominated set of the predicted means is the front, with the predicted standard deviations as error
bars. The effect of a source (partial dependence along Cox's direction): its weight moves over its
bounds while the other weights keep their proportions; the prediction is averaged over polytope samples
(these moves may leave group constraints).
"""

from __future__ import annotations

import html
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from mixopt import analysis, headroom, pareto
from mixopt.errors import ConfigError
from mixopt.failpoints import failpoint
from mixopt.figures import (
    Pick,
    composition_figure,
    effects_figure,
    front_figure,
    history_figure,
    mixture_text,
    pairs_figure,
    parity_figure,
)
from mixopt.recommend import Recommendation, recommend_study
from mixopt.space import MixtureSpace
from mixopt.study import Study
from mixopt.trials import Observations, StudyAttr

MIN_SURROGATE_TRIALS = 8  # fewer completed trials at a fidelity: no surrogate, a note in the report
HISTORY_POINTS = 40  # trial indices at which the hypervolume history is computed
COMPOSITION_ROWS = 40  # front mixtures shown as bars, knee and best ones first
PLOT_WIDTH = 1100  # pixels of PNG exports
PNG_SKIPPED = "PNG export skipped: kaleido needs a Chromium browser (on Debian: apt-get install chromium)"


# -- the report ----------------------------------------------------------------------------------
@dataclass
class ReportContent:
    """What a report shows: figures by id, the picks table, and notes about what could not be shown."""

    study_name: str
    names: list[str]  # objectives
    sources: tuple[str, ...]
    n_trials: int
    figures: dict[str, go.Figure]
    picks: list[Pick]
    notes: list[str]
    trust: list[str] = field(default_factory=list)  # promotion checks and decision accuracy, one line each
    metrics: list[headroom.MetricSignal] = field(default_factory=list)  # signal and noise at the search fidelity
    objective_metrics: tuple[str, ...] = ()


def build_report(study: Study, seed: int = 0, recommendation: Recommendation | None = None) -> ReportContent:
    """Every figure of the report of ``study``, built from its storage (``recommendation``: the study's, when
    the caller has it already; else it is computed)."""
    config = study.config
    names, directions, sources = [o.name for o in config.objectives], list(config.directions), study.space.names
    fidelity = config.search_fidelity.name
    runs = analysis.study_runs(study)
    trials = runs.at(fidelity)
    content = ReportContent(study.name, names, sources, len(trials), {}, [], [], trust_lines(study, runs),
                            analysis.metric_signals(config, runs), tuple(o.metric for o in config.objectives))
    if not len(trials):
        content.notes.append(f"no completed trials at the search fidelity '{fidelity}' yet: run the study first")
        return content
    models = _models(study, runs, content.notes)
    predictor = models.predictor(fidelity) if models is not None else None
    predicted = analysis.predicted_front(predictor, study.space, directions, seed=seed) if predictor else None
    content.figures["mixopt-front"] = front_figure(trials, names, directions, sources, predicted)
    if len(names) >= 3:
        content.figures["mixopt-front-pairs"] = pairs_figure(trials, names, directions, sources, predicted)
    content.picks = _picks(study, trials, content.notes, recommendation)
    on_front = np.flatnonzero(pareto.non_dominated(trials.values, directions))
    content.figures["mixopt-composition"] = _composition(trials, on_front, content.picks, names, sources)
    at = np.unique(np.linspace(0, len(trials) - 1, min(HISTORY_POINTS, len(trials))).astype(int))
    hv = pareto.hypervolume_history(trials.values, directions, at=at)
    content.figures["mixopt-history"] = history_figure(trials.numbers, at, hv, trials.values, names, directions)
    if predictor is not None:
        content.figures["mixopt-parity"] = parity_figure(_parity(study, runs, seed, content.notes), names,
                                                         analysis.PARITY_FOLDS)
        grid, effects = analysis.source_effects(predictor, study.space, seed=seed)
        content.figures["mixopt-effects"] = effects_figure(grid, effects, names, sources)
    return content


def trust_lines(study: Study, runs: Observations) -> list[str]:
    """What the rounds checked before each integration run (the promotion log), and how the search fidelity
    orders the mixtures measured at both fidelities."""
    config = study.config
    lines = []
    for entry in study.optuna.user_attrs.get(StudyAttr.PROMOTION_LOG, []):
        checks = entry["checks"]
        per_objective = ", ".join(f"{c['objective']} rank corr {_figure(c['rank_corr'])}, 80% coverage "
                                  f"{_figure(c['coverage_80'])}, regret@1 {_figure(c['regret_at_1'])}"
                                  for c in checks["objectives"])
        lines.append(f"round {entry['round']}: {entry['action']}; distance {_figure(checks['distance'])}, movement "
                     f"{', '.join(f'{k} {_figure(v)}' for k, v in checks['movement'].items())}; {per_objective}; "
                     f"{'; '.join(entry['failures']) or 'no gate failed'}")
    for name, accuracy in analysis.fidelity_agreement(config, runs).items():
        lines.append(f"decision accuracy of '{config.search_fidelity.name}' for '{config.fidelities[-1].name}', {name}: "
                     f"{accuracy.accuracy:.2f} ({_figure(accuracy.low)}-{_figure(accuracy.high)}) over {accuracy.pairs} pairs")
    return lines


def _figure(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3g}"


def _models(study: Study, runs: Observations, notes: list[str]) -> analysis.ObjectiveModels | None:
    """The study's models, or None (with a note) when there are too few runs or they cannot be fit."""
    fidelity = study.config.search_fidelity.name
    searched = len(runs.at(fidelity))
    if searched < MIN_SURROGATE_TRIALS:
        notes.append(f"only {searched} completed trials at '{fidelity}' (the surrogate needs {MIN_SURROGATE_TRIALS}): "
                     "no predicted front, parity or effects yet")
        return None
    try:
        return analysis.fit_objective_models(study.config, runs)
    except Exception as exc:  # a surrogate that cannot fit degrades the report, never stops it
        notes.append(f"the surrogate could not be fit ({type(exc).__name__}: {exc}): no predicted front or effects")
        return None


def _parity(study: Study, runs: Observations, seed: int,
            notes: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per fidelity with enough runs: observed values and out-of-fold predicted means and sds ``(n_f, m)``."""
    config = study.config
    X = analysis.model_features(config, runs.weights, runs.fidelities)
    mean, std = analysis.out_of_fold(X, runs.values, analysis.surrogate_factory(config.surrogate), seed=seed)
    parity = {}
    for fid in config.fidelities:
        rows = runs.fidelities == fid.name
        if rows.sum() >= MIN_SURROGATE_TRIALS:
            parity[fid.name] = (runs.values[rows], mean[rows], std[rows])
        elif rows.any():
            notes.append(f"fidelity '{fid.name}' has {rows.sum()} completed trials: too few for its parity plot")
    return parity


def _picks(study: Study, trials: Observations, notes: list[str], recommendation: Recommendation | None) -> list[Pick]:
    """The suggested mixtures of ``study`` (:func:`suggested_picks`); what could not be suggested becomes a note."""
    config = study.config
    try:
        recommendation = recommendation or recommend_study(study)
    except Exception as exc:  # as for the surrogate: a model that cannot fit degrades the report only
        notes.append(f"no recommendation ({type(exc).__name__}: {exc})")
    export_fidelity = config.fidelities[-1].name
    picks = suggested_picks(trials, [o.name for o in config.objectives], list(config.directions), recommendation,
                            config.space(export_fidelity))
    if not any(p.trial is not None for p in picks):
        notes.append(f"no completed trial fits the repetition caps at the '{export_fidelity}' budget: nothing to export "
                     "by rule (export with --fidelity and a smaller budget, or --trial N)")
    return picks


def suggested_picks(trials: Observations, names: list[str], directions: list[str],
                    recommendation: Recommendation | None, export_space: MixtureSpace) -> list[Pick]:
    """The mixture ``mixopt study export`` hands out (the recommendation, first), then those ``--pick RULE``
    would choose: each rule applied to the trials whose mixture fits the export budget's caps."""
    fits = np.array([export_space.is_feasible(w, tol=1e-6) for w in trials.weights])
    rules = ["knee"] + [f"best:{n}" for n in names]
    if len(names) > 1:
        rules.append("chebyshev:" + ",".join("1" for _ in names))
    picks = []
    if recommendation is not None and recommendation.predicted is not None:
        picks.append(Pick(f"recommended ({recommendation.rule} on the model's front)", None, recommendation.predicted,
                          recommendation.weights, recommendation.predicted_sd))
    if fits.any():
        rows = np.flatnonzero(fits)
        for rule in rules:
            i = rows[pareto.pick(trials.values[rows], directions, rule, names)]
            picks.append(Pick(rule, int(trials.numbers[i]), trials.values[i], trials.weights[i]))
    return picks


def _composition(trials: Observations, on_front: np.ndarray, picks: list[Pick], names: list[str],
                 sources: tuple[str, ...]) -> go.Figure:
    """Bars for the front trials: picked ones first (labelled with their rule), then by the first objective."""
    rules: dict[int, list[str]] = {}
    for p in picks:
        if p.trial is not None:
            rules.setdefault(p.trial, []).append(p.rule)
    index = {int(n): i for i, n in enumerate(trials.numbers)}
    picked = [index[t] for t in rules]
    rest = [i for i in on_front[np.argsort(trials.values[on_front, 0], kind="stable")] if i not in picked]
    rows = (picked + rest)[:COMPOSITION_ROWS]
    labels = [f"trial {trials.numbers[i]}" + (f" ({', '.join(rules[int(trials.numbers[i])])})" if int(trials.numbers[i]) in rules else "")
              for i in rows]
    hover = [" · ".join(f"{n} {trials.values[i, j]:.4g}" for j, n in enumerate(names)) for i in rows]
    fig = composition_figure(trials.weights[rows], sources, labels, hover)
    total = len(picked) + len(rest)
    if total > len(rows):
        fig.update_layout(title=f"Mixtures on the front: {len(rows)} of {total} (% of tokens per source)")
    return fig


SECTIONS = (
    ("mixopt-front", "Pareto front", "Each point is a completed trial; hover for its mixture. Faded points are dominated."),
    ("mixopt-front-pairs", "Objectives in pairs", "Two objectives at a time; blue points are on the front of all objectives."),
    ("mixopt-composition", "Mixtures on the front", "Share of each source; the suggested mixtures come first."),
    ("mixopt-history", "Progress", "Hypervolume of the observed front (reference point: 10% beyond the front's worst values) and the best value so far."),
    ("mixopt-parity", "Surrogate parity", "Out-of-fold predictions against observations: points near the diagonal mean the surrogate can be trusted."),
    ("mixopt-effects", "Effect of each source", "Predicted objective as one source's weight moves and the others keep their proportions."),
)


def render_html(content: ReportContent, script: str = "plotly.min.js") -> str:
    """The report page: a header, the picks table, notes and every figure (plotly.js from ``script``)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>mixopt report: {esc(content.study_name)}</title>",
        f"<script src='{esc(script)}'></script>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1180px;margin:0 auto;padding:16px;color:#222}"
        "table{border-collapse:collapse;font-size:14px;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;"
        "text-align:left;vertical-align:top}td.num{text-align:right;white-space:nowrap}.note{background:#fff4d6;"
        "padding:6px 10px;margin:6px 0;border-left:4px solid #e0a800}.figure{margin:8px 0 28px}p.caption{color:#555}"
        "</style></head><body>",
        f"<h1>Study {esc(content.study_name)}</h1>",
        f"<p>{content.n_trials} completed trials at the search fidelity; objectives "
        f"{esc(', '.join(content.names))}; {len(content.sources)} sources.</p>",
    ]
    parts += [f"<div class='note'>{esc(n)}</div>" for n in content.notes]
    if content.trust:
        parts.append("<h2>Trust before promotion</h2><ul>" + "".join(f"<li>{esc(line)}</li>" for line in content.trust)
                     + "</ul>")
    if content.metrics:
        parts.append(metrics_table(content.metrics, content.objective_metrics))
    if content.picks:
        header = "".join(f"<th>{esc(n)}</th>" for n in content.names)
        parts.append(f"<h2>Suggested mixtures</h2><table><tr><th>rule</th><th>trial</th>{header}<th>mixture</th></tr>")
        for p in content.picks:
            values = "".join(
                f"<td class='num'>{v:.4g}" + (f" ± {p.std[j]:.2g}" if p.std is not None else "") + "</td>"
                for j, v in enumerate(p.values)
            )
            trial = str(p.trial) if p.trial is not None else "not run"
            mixture = mixture_text(p.weights, content.sources, per_line=len(content.sources), separator="")
            parts.append(f"<tr><td>{esc(p.rule)}</td><td>{trial}</td>{values}<td>{esc(mixture)}</td></tr>")
        parts.append("</table><p class='caption'>The recommended mixture (predicted values, not run) is what "
                     "<code>mixopt study export</code> writes. The rules below it apply to the measured trials whose "
                     "mixture fits the repetition caps of the last fidelity's budget; export one with "
                     "<code>mixopt study export --pick RULE</code> (knee, best:OBJECTIVE or chebyshev:w1,w2,...).</p>")
    for key, title, caption in SECTIONS:
        if key in content.figures:
            body = pio.to_html(content.figures[key], include_plotlyjs=False, full_html=False, div_id=key,
                               config={"displaylogo": False, "responsive": True})
            parts.append(f"<h2>{esc(title)}</h2><p class='caption'>{esc(caption)}</p><div class='figure'>{body}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def metrics_table(signals: list[headroom.MetricSignal], objectives: tuple[str, ...]) -> str:
    """The report's section on signal and noise: one row per metric, objectives marked, flags spelled out."""
    esc = html.escape
    rows = ["<h2>Signal and noise of the metrics</h2><table><tr><th>metric</th><th>mixtures / replicated</th>"
            "<th>signal</th><th>noise</th><th>S/N</th><th>flags</th></tr>"]
    for m in signals:
        name = f"<b>{esc(m.name)}</b> (objective)" if m.name in objectives else esc(m.name)
        rows.append(f"<tr><td>{name}</td><td class='num'>{m.mixtures} / {m.replicated}</td>"
                    f"<td class='num'>{_figure(m.signal)}</td><td class='num'>{_figure(m.noise)}</td>"
                    f"<td class='num'>{_figure(m.ratio)}</td><td>{esc(', '.join(m.flags)) or 'ok'}</td></tr>")
    rows.append(f"</table><p class='caption'>Signal: the spread of the metric across the study's mixtures; noise: "
                f"the seed spread of mixtures run more than once (a <code>replicates</code> section runs some); a metric "
                f"with S/N below {headroom.SIGNAL_TO_NOISE_MIN:g} cannot rank mixtures. <code>mixopt metrics</code> "
                f"gives the details and suggests objectives.</p>")
    return "".join(rows)


def write_report(study: Study, path: str | Path, png: bool = False, attach: bool = True,
                 open_browser: bool = False, recommendation: Recommendation | None = None) -> list[Path]:
    """Write the report of ``study`` to ``path`` (HTML) with ``plotly.min.js`` beside it; with ``png``,
    one PNG per figure beside it (skipped with a note in the report when no Chromium is installed); with
    ``attach``, the figures are saved in the study for optuna-dashboard. Returns the written paths."""
    path = Path(path)
    if not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the report folder {path.parent}: {exc.strerror}") from None
    failpoint("report")  # a bug here must not lose the study: its runs and export are stored by now
    content = build_report(study, recommendation=recommendation)
    written = [_write_plotlyjs(path.parent)]
    if png and content.figures:
        written += _write_pngs(content, path)
    if attach:
        from optuna_dashboard import save_plotly_graph_object

        for key, figure in content.figures.items():
            save_plotly_graph_object(study.optuna, figure, graph_object_id=key)
    path.write_text(render_html(content), encoding="utf-8")
    written.insert(0, path)
    if open_browser:
        webbrowser.open(path.resolve().as_uri())
    return written


def _write_plotlyjs(folder: Path) -> Path:
    """``plotly.min.js`` of the installed plotly, written once per folder (and again if plotly changed)."""
    from plotly.offline import get_plotlyjs

    target = folder / "plotly.min.js"
    script = get_plotlyjs()
    if not target.is_file() or target.stat().st_size != len(script.encode()):
        target.write_text(script, encoding="utf-8")
    return target


def _write_pngs(content: ReportContent, path: Path) -> list[Path]:
    """One PNG per figure, named ``<report>-<figure>.png``; a missing Chromium adds a note instead."""
    keys = list(content.figures)
    files = [path.with_name(f"{path.stem}-{key.removeprefix('mixopt-')}.png") for key in keys]
    figures = [content.figures[k] for k in keys]
    try:
        pio.write_images(figures, files, width=PLOT_WIDTH, height=[f.layout.height for f in figures])
    except Exception as exc:
        if not _chrome_missing(exc):
            raise
        content.notes.append(PNG_SKIPPED)
        return []
    return files


def _chrome_missing(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised while handling, kaleido's ``ChromeNotFoundError`` (plotly 6.1 and
    later re-raise it as a ``RuntimeError``; the class moved between kaleido and choreographer releases)."""
    while exc is not None:
        if type(exc).__name__ == "ChromeNotFoundError":
            return True
        exc = exc.__cause__ or exc.__context__
    return False
