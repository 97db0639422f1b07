"""The study report: Pareto fronts, mixtures, history and surrogate diagnostics as plotly figures.

Figures are pure functions from arrays to ``plotly.graph_objects.Figure`` (shapes below: ``n`` trials,
``m`` objectives, ``K`` sources). ``write_report`` gathers the data of a study, fits the surrogate, and
writes one offline HTML page with ``plotly.min.js`` written once beside it (never a CDN), optional PNGs
through kaleido (needs a Chromium binary), and attaches the figures to the study so that
optuna-dashboard shows them (``optuna_dashboard.save_plotly_graph_object``, under ids ``mixopt-*``).

The surrogate-predicted front: one surrogate per objective, fit on the completed trials at the search
fidelity, predicts many polytope samples; the non-dominated set of the predicted means is the front,
with the predicted standard deviations as error bars. The effect of a source (partial dependence along
Cox's direction): its weight moves over its bounds while the other weights keep their proportions;
the surrogate's prediction is averaged over polytope samples (these moves may leave group constraints).
"""

from __future__ import annotations

import html
import webbrowser
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from scipy.stats import spearmanr
from sklearn.model_selection import KFold

from mixopt import pareto
from mixopt.analysis import fit_surrogates, predict, surrogate_factory
from mixopt.errors import ConfigError
from mixopt.recommend import Recommendation, recommend_study
from mixopt.space import MixtureSpace
from mixopt.study import Study, weight_column

MIN_SURROGATE_TRIALS = 8  # fewer completed trials at a fidelity: no surrogate, a note in the report
N_CANDIDATES = 2000  # polytope samples screened for the predicted front
PREDICTED_SHOWN = 40  # predicted front points drawn, spread over the front
PARITY_FOLDS = 3  # each fold refits the stacked ensemble (itself cross-validated): kept small
EFFECT_GRID = 21  # weights per source in the partial dependence
EFFECT_BASE = 48  # polytope samples averaged over in the partial dependence
EFFECT_LINES_SHOWN = 8  # sources drawn in the effects figure; the rest start hidden (click the legend)
HISTORY_POINTS = 40  # trial indices at which the hypervolume history is computed
COMPOSITION_ROWS = 40  # front mixtures shown as bars, knee and best ones first
COMPOSITION_SOURCES = 12  # sources with their own colour in the bars; the rest are "other"
FADED = "rgba(150, 150, 150, 0.35)"
FRONT = "#1f5fbf"
PREDICTED = "#e4572e"
PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Dark24 + qualitative.Light24  # 74 colours
PLOT_WIDTH = 1100  # pixels of PNG exports
PNG_SKIPPED = "PNG export skipped: kaleido needs a Chromium browser (on Debian: apt-get install chromium)"


@dataclass(frozen=True)
class Trials:
    """Completed trials at one fidelity in trial order: ``numbers`` ``(n,)``, ``weights`` ``(n, K)``,
    ``values`` ``(n, m)``."""

    numbers: np.ndarray
    weights: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class PredictedFront:
    """The surrogate's front: ``weights`` ``(p, K)``, predicted ``mean`` and ``std`` ``(p, m)``."""

    weights: np.ndarray
    mean: np.ndarray
    std: np.ndarray


@dataclass(frozen=True)
class Pick:
    """One row of the table of suggested mixtures."""

    rule: str
    trial: int | None  # None for a mixture the surrogate predicts but no trial ran
    values: np.ndarray
    weights: np.ndarray
    std: np.ndarray | None = None


# -- text ----------------------------------------------------------------------------------------
def mixture_text(weights: np.ndarray, sources: tuple[str, ...], per_line: int = 4, separator: str = "<br>") -> str:
    """A mixture ``(K,)`` as ``source share%`` entries, largest first, ``per_line`` to a line; shares
    below 0.05% are left out."""
    order = [k for k in np.argsort(-weights, kind="stable") if weights[k] >= 0.0005]
    entries = [f"{sources[k]} {100 * weights[k]:.1f}%" for k in order]
    lines = [" · ".join(entries[i : i + per_line]) for i in range(0, len(entries), per_line)]
    return separator.join(lines)


def hover_texts(numbers: np.ndarray | None, values: np.ndarray, names: list[str], weights: np.ndarray,
                sources: tuple[str, ...], std: np.ndarray | None = None) -> list[str]:
    """Hover labels: trial number (``numbers`` ``(n,)``; None for predicted mixtures), objective values
    ``(n, m)`` (± ``std``) and the whole mixture ``(n, K)``."""
    texts = []
    for i in range(len(values)):
        title = f"<b>trial {numbers[i]}</b>" if numbers is not None else "<b>predicted (not run)</b>"
        parts = [
            f"{name} {values[i, j]:.4g}" + (f" ± {std[i, j]:.2g}" if std is not None else "")
            for j, name in enumerate(names)
        ]
        texts.append(f"{title}<br>{' · '.join(parts)}<br>{mixture_text(weights[i], sources)}")
    return texts


def _axis_title(name: str, direction: str) -> str:
    return f"{name} ({'lower' if direction == 'minimize' else 'higher'} is better)"


# -- figures -------------------------------------------------------------------------------------
def front_figure(trials: Trials, names: list[str], directions: list[str], sources: tuple[str, ...],
                 predicted: PredictedFront | None = None) -> go.Figure:
    """The observed front (dominated trials faded) and the predicted one with error bars: a strip over
    trials for 1 objective, a 2-D or 3-D scatter for 2 or 3, parallel coordinates beyond."""
    m = len(names)
    if m >= 4:
        return parallel_figure(trials, names, directions)
    on_front = pareto.non_dominated(trials.values, directions)
    hover = np.array(hover_texts(trials.numbers, trials.values, names, trials.weights, sources), dtype=object)
    fig = go.Figure()
    groups = (("dominated", ~on_front, FADED, 7), ("observed front", on_front, FRONT, 9))
    if m == 1:
        for label, mask, colour, size in groups:
            fig.add_scatter(x=trials.numbers[mask], y=trials.values[mask, 0], mode="markers", name=label,
                            marker=dict(color=colour, size=size), hovertext=hover[mask], hoverinfo="text")
        fig.update_layout(xaxis_title="trial", yaxis_title=_axis_title(names[0], directions[0]))
    elif m == 2:
        for label, mask, colour, size in groups:
            fig.add_scatter(x=trials.values[mask, 0], y=trials.values[mask, 1], mode="markers", name=label,
                            marker=dict(color=colour, size=size), hovertext=hover[mask], hoverinfo="text")
        order = np.argsort(trials.values[on_front, 0])  # the staircase bounding the dominated region
        fig.add_scatter(x=trials.values[on_front, 0][order], y=trials.values[on_front, 1][order], mode="lines",
                        line=dict(color=FRONT, width=1, shape="hv" if directions[0] == "minimize" else "vh"),
                        hoverinfo="skip", showlegend=False)
        if predicted is not None and len(predicted.mean):
            fig.add_scatter(
                x=predicted.mean[:, 0], y=predicted.mean[:, 1], mode="markers", name="predicted front (± 1 sd)",
                marker=dict(color=PREDICTED, size=7, symbol="diamond"),
                error_x=dict(array=predicted.std[:, 0], color=PREDICTED, thickness=1, width=0),
                error_y=dict(array=predicted.std[:, 1], color=PREDICTED, thickness=1, width=0),
                hovertext=hover_texts(None, predicted.mean, names, predicted.weights, sources, predicted.std),
                hoverinfo="text",
            )
        fig.update_layout(xaxis_title=_axis_title(names[0], directions[0]),
                          yaxis_title=_axis_title(names[1], directions[1]))
    else:
        for label, mask, colour, size in groups:
            fig.add_scatter3d(x=trials.values[mask, 0], y=trials.values[mask, 1], z=trials.values[mask, 2],
                              mode="markers", name=label, marker=dict(color=colour, size=size / 2),
                              hovertext=hover[mask], hoverinfo="text")
        if predicted is not None and len(predicted.mean):
            fig.add_scatter3d(
                x=predicted.mean[:, 0], y=predicted.mean[:, 1], z=predicted.mean[:, 2], mode="markers",
                name="predicted front (± 1 sd)", marker=dict(color=PREDICTED, size=3.5, symbol="diamond"),
                error_x=dict(array=predicted.std[:, 0], color=PREDICTED, thickness=1, width=0),
                error_y=dict(array=predicted.std[:, 1], color=PREDICTED, thickness=1, width=0),
                error_z=dict(array=predicted.std[:, 2], color=PREDICTED, thickness=1, width=0),
                hovertext=hover_texts(None, predicted.mean, names, predicted.weights, sources, predicted.std),
                hoverinfo="text",
            )
        fig.update_layout(scene=dict(xaxis_title=names[0], yaxis_title=names[1], zaxis_title=names[2]),
                          scene_camera=dict(eye=dict(x=1.6, y=1.6, z=1.1)))
    n_front = int(on_front.sum())
    fig.update_layout(title=f"Pareto front: {n_front} of {len(on_front)} trials", height=560,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return fig


def pairs_figure(trials: Trials, names: list[str], directions: list[str], sources: tuple[str, ...],
                 predicted: PredictedFront | None = None) -> go.Figure:
    """Every pair of objectives as a 2-D panel (lower triangle), the front of all ``m`` objectives
    highlighted: the readable static view of 3 or more objectives."""
    m = len(names)
    if m < 2:
        raise ConfigError("a pairs plot needs at least 2 objectives")
    on_front = pareto.non_dominated(trials.values, directions)
    hover = np.array(hover_texts(trials.numbers, trials.values, names, trials.weights, sources), dtype=object)
    size = m - 1
    fig = make_subplots(rows=size, cols=size, horizontal_spacing=0.06, vertical_spacing=0.06)
    for row in range(1, m):
        for col in range(row):
            first = row == 1 and col == 0
            for label, mask, colour, marker_size in (("dominated", ~on_front, FADED, 5), ("front", on_front, FRONT, 7)):
                fig.add_scatter(x=trials.values[mask, col], y=trials.values[mask, row], mode="markers", name=label,
                                legendgroup=label, showlegend=first, marker=dict(color=colour, size=marker_size),
                                hovertext=hover[mask], hoverinfo="text", row=row, col=col + 1)
            if predicted is not None and len(predicted.mean):
                fig.add_scatter(
                    x=predicted.mean[:, col], y=predicted.mean[:, row], mode="markers", name="predicted front",
                    legendgroup="predicted", showlegend=first, marker=dict(color=PREDICTED, size=5, symbol="diamond"),
                    error_x=dict(array=predicted.std[:, col], color=PREDICTED, thickness=1, width=0),
                    error_y=dict(array=predicted.std[:, row], color=PREDICTED, thickness=1, width=0),
                    hovertext=hover_texts(None, predicted.mean, names, predicted.weights, sources, predicted.std),
                    hoverinfo="text", row=row, col=col + 1,
                )
            if row == m - 1:
                fig.update_xaxes(title_text=names[col], row=row, col=col + 1)
            if col == 0:
                fig.update_yaxes(title_text=names[row], row=row, col=col + 1)
    fig.update_layout(title="Objectives in pairs (front of all objectives in blue)", height=max(420, 260 * size),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1.0))
    return fig


def parallel_figure(trials: Trials, names: list[str], directions: list[str]) -> go.Figure:
    """Parallel coordinates over the objectives (any ``m``); front trials in blue, the rest faded."""
    on_front = pareto.non_dominated(trials.values, directions).astype(float)
    dimensions = [dict(label="trial", values=trials.numbers)] + [
        dict(label=f"{name} ({'min' if d == 'minimize' else 'max'})", values=trials.values[:, j])
        for j, (name, d) in enumerate(zip(names, directions, strict=True))
    ]
    fig = go.Figure(go.Parcoords(
        dimensions=dimensions,
        line=dict(color=on_front, colorscale=[[0, "rgb(200, 200, 200)"], [1, FRONT]], cmin=0, cmax=1),
    ))
    fig.update_layout(title=f"Pareto front in parallel coordinates: {int(on_front.sum())} of {len(on_front)} trials (blue)",
                      height=480,
                      margin=dict(l=60, r=60, t=100, b=40))
    return fig


def composition_figure(weights: np.ndarray, sources: tuple[str, ...], labels: list[str],
                       hover: list[str] | None = None) -> go.Figure:
    """Stacked horizontal bars, one per mixture ``weights`` ``(r, K)`` labelled by ``labels`` ``(r,)``;
    the ``COMPOSITION_SOURCES`` largest sources get their own colour, the rest are summed as "other"."""
    weights = np.asarray(weights, dtype=float)
    order = np.argsort(-weights.max(axis=0), kind="stable") if len(weights) else np.arange(len(sources))
    shown = list(order[:COMPOSITION_SOURCES]) if len(sources) > COMPOSITION_SOURCES + 1 else list(order)
    rest = [k for k in range(len(sources)) if k not in shown]
    columns = [(sources[k], weights[:, k], PALETTE[k % len(PALETTE)]) for k in sorted(shown)]
    if rest:
        columns.append((f"other ({len(rest)} sources)", weights[:, rest].sum(axis=1), "rgb(190, 190, 190)"))
    fig = go.Figure()
    for name, share, colour in columns:
        fig.add_bar(
            y=labels, x=100 * share, name=name, orientation="h", marker=dict(color=colour, line=dict(width=0.5, color="white")),
            text=[f"{100 * s:.0f}" if s >= 0.045 else "" for s in share], textposition="inside", textangle=0,
            insidetextanchor="middle",
            hovertext=hover, hoverinfo="text+name" if hover else "x+name",
        )
    fig.update_layout(
        barmode="stack", title="Mixtures on the front (% of tokens per source)", height=140 + 26 * max(len(labels), 3),
        xaxis=dict(title="% of tokens", range=[0, 100]), yaxis=dict(autorange="reversed", type="category"),
        uniformtext=dict(minsize=9, mode="hide"), legend=dict(traceorder="normal", title="source"),
        margin=dict(l=150),
    )
    return fig


def history_figure(numbers: np.ndarray, hv_at: np.ndarray, hypervolumes: np.ndarray, values: np.ndarray,
                   names: list[str], directions: list[str]) -> go.Figure:
    """Hypervolume over trials (evaluated at ``hv_at`` ``(h,)`` indices into ``numbers`` ``(n,)``) and,
    per objective, every observed value with the best so far."""
    m = len(names)
    cols = 2 if m >= 1 else 1
    rows = (m + 1 + cols - 1) // cols
    titles = ["hypervolume of the observed front"] + [_axis_title(n, d) for n, d in zip(names, directions, strict=True)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=0.5 / rows, horizontal_spacing=0.1)
    fig.add_scatter(x=numbers[hv_at], y=hypervolumes, mode="lines+markers", line=dict(shape="hv", color=FRONT),
                    marker=dict(size=4), name="hypervolume", showlegend=False, row=1, col=1)
    best = pareto.best_so_far(values, directions)
    for j in range(m):
        row, col = divmod(j + 1, cols)
        fig.add_scatter(x=numbers, y=values[:, j], mode="markers", marker=dict(color=FADED, size=5),
                        name="observed", legendgroup="observed", showlegend=j == 0, row=row + 1, col=col + 1)
        fig.add_scatter(x=numbers, y=best[:, j], mode="lines", line=dict(shape="hv", color=FRONT),
                        name="best so far", legendgroup="best", showlegend=j == 0, row=row + 1, col=col + 1)
    fig.update_xaxes(title_text="trial", row=rows)
    fig.update_layout(title="Progress over trials", height=140 + 260 * rows, margin=dict(t=130),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0 + 70 / (260 * rows), xanchor="right", x=1.0))
    return fig


def parity_figure(by_fidelity: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], names: list[str]) -> go.Figure:
    """Out-of-fold predictions against observations, one panel per objective, one colour per fidelity;
    ``by_fidelity[f] = (observed, mean, std)``, each ``(n_f, m)``. Spearman's rho in the legend."""
    m = len(names)
    cols = min(m, 3)
    rows = (m + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.08, vertical_spacing=0.55 / rows)
    for f, (fidelity, (observed, mean, std)) in enumerate(by_fidelity.items()):
        colour = PALETTE[f]
        for j in range(m):
            row, col = divmod(j, cols)
            rho = spearmanr(observed[:, j], mean[:, j]).statistic if len(observed) > 2 else float("nan")
            fig.add_scatter(
                x=observed[:, j], y=mean[:, j], mode="markers", name=f"{fidelity} ({names[j]}: rho {rho:.2f})",
                legendgroup=fidelity, marker=dict(color=colour, size=6),
                error_y=dict(array=std[:, j], color=colour, thickness=1, width=0), row=row + 1, col=col + 1,
            )
    for j in range(m):
        row, col = divmod(j, cols)
        both = np.concatenate([np.concatenate([o[:, j], p[:, j]]) for o, p, _ in by_fidelity.values()] or [np.zeros(1)])
        low, high = float(np.nanmin(both)), float(np.nanmax(both))
        fig.add_scatter(x=[low, high], y=[low, high], mode="lines", line=dict(color="black", dash="dot", width=1),
                        hoverinfo="skip", showlegend=False, row=row + 1, col=col + 1)
        fig.update_xaxes(title_text="observed", row=row + 1, col=col + 1)
        fig.update_yaxes(title_text="predicted", row=row + 1, col=col + 1)
    fig.update_layout(title=f"Surrogate parity: {PARITY_FOLDS}-fold out-of-fold predictions (± 1 sd)",
                      height=120 + 330 * rows)
    return fig


def effects_figure(grid: np.ndarray, effects: np.ndarray, names: list[str], sources: tuple[str, ...]) -> go.Figure:
    """Predicted objective against each source's weight: ``grid`` ``(K, G)`` weights, ``effects``
    ``(m, K, G)`` predictions. The ``EFFECT_LINES_SHOWN`` sources with the largest effects are drawn;
    the others start hidden (click them in the legend)."""
    m, K, _ = effects.shape
    spread = (effects.max(axis=2) - effects.min(axis=2)).max(axis=0)  # (K,) largest effect over objectives
    shown = set(np.argsort(-spread, kind="stable")[:EFFECT_LINES_SHOWN])
    cols = min(m, 3)
    rows = (m + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.08, vertical_spacing=0.55 / rows)
    for j in range(m):
        row, col = divmod(j, cols)
        for k in range(K):
            fig.add_scatter(x=grid[k], y=effects[j, k], mode="lines", name=sources[k], legendgroup=sources[k],
                            showlegend=j == 0, visible=True if k in shown else "legendonly",
                            line=dict(color=PALETTE[k % len(PALETTE)], width=2),
                            hovertemplate=f"{sources[k]} %{{x:.3f}}<br>{names[j]} %{{y:.4g}}<extra></extra>",
                            row=row + 1, col=col + 1)
        fig.update_xaxes(title_text="weight of the source", row=row + 1, col=col + 1)
    fig.update_layout(title="Effect of each source (surrogate; other sources keep their proportions)",
                      height=120 + 330 * rows, legend=dict(title="source"))
    return fig


# -- data from a study ---------------------------------------------------------------------------
def completed(study: Study, fidelity: str) -> Trials:
    """The completed trials of ``study`` at ``fidelity``, in trial order."""
    frame = study.frame()
    if frame.empty:
        done = frame
    else:
        done = frame[(frame.state == "COMPLETE") & (frame.fidelity == fidelity)].sort_values("trial")
    names = [o.name for o in study.config.objectives]
    K = study.space.dim
    if done.empty:
        return Trials(np.zeros(0, int), np.zeros((0, K)), np.zeros((0, len(names))))
    return Trials(
        done.trial.to_numpy(int),
        done[[weight_column(s) for s in study.space.names]].to_numpy(float),
        done[names].to_numpy(float),
    )


def predicted_front(models: list, space: MixtureSpace, directions: list[str], n: int = N_CANDIDATES,
                    seed: int = 0) -> PredictedFront:
    """Up to ``PREDICTED_SHOWN`` points spread over the non-dominated predicted means of ``n`` uniform
    polytope samples."""
    candidates = space.sample(n, seed)
    mean, std = predict(models, candidates)
    front = np.flatnonzero(pareto.non_dominated(mean, directions))
    keep = front[pareto.spread_subset(mean[front], directions, PREDICTED_SHOWN)]
    return PredictedFront(candidates[keep], mean[keep], std[keep])


def out_of_fold(X: np.ndarray, Y: np.ndarray, folds: int = PARITY_FOLDS, seed: int = 0,
                factory=None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predicted means and standard deviations ``(n, m)`` from ``folds``-fold cross-validation."""
    mean, std = np.zeros_like(Y, dtype=float), np.zeros_like(Y, dtype=float)
    for train, test in KFold(min(folds, len(X)), shuffle=True, random_state=seed).split(X):
        mean[test], std[test] = predict(fit_surrogates(X[train], Y[train], factory), X[test])
    return mean, std


def source_effects(models: list, space: MixtureSpace, n_base: int = EFFECT_BASE, n_grid: int = EFFECT_GRID,
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
    mean, _ = predict(models, np.concatenate(rows))
    effects = mean.reshape(K, n_grid, n_base, -1).mean(axis=2)  # (K, G, m)
    return grid, np.transpose(effects, (2, 0, 1))


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


def build_report(study: Study, seed: int = 0) -> ReportContent:
    """Every figure of the report of ``study``, built from its storage."""
    config = study.config
    names = [o.name for o in config.objectives]
    directions = list(config.directions)
    sources = study.space.names
    fidelity = config.search_fidelity.name
    trials = completed(study, fidelity)
    notes: list[str] = []
    figures: dict[str, go.Figure] = {}
    if len(trials.values) == 0:
        notes.append(f"no completed trials at the search fidelity '{fidelity}' yet: run the study first")
        return ReportContent(study.name, names, sources, 0, figures, [], notes)

    models, predicted = None, None
    if len(trials.values) >= MIN_SURROGATE_TRIALS:
        try:
            models = fit_surrogates(trials.weights, trials.values, surrogate_factory(study))
            predicted = predicted_front(models, study.space, directions, seed=seed)
        except Exception as exc:  # a surrogate that cannot fit degrades the report, never stops it
            notes.append(f"the surrogate could not be fit ({type(exc).__name__}: {exc}): no predicted front or effects")
            models = None
    else:
        notes.append(
            f"only {len(trials.values)} completed trials at '{fidelity}' (the surrogate needs {MIN_SURROGATE_TRIALS}): "
            "no predicted front, parity or effects yet"
        )

    figures["mixopt-front"] = front_figure(trials, names, directions, sources, predicted)
    if len(names) >= 3:
        figures["mixopt-front-pairs"] = pairs_figure(trials, names, directions, sources, predicted)
    on_front = np.flatnonzero(pareto.non_dominated(trials.values, directions))
    export_fidelity = config.fidelities[-1].name
    recommendation = None
    try:
        recommendation = recommend_study(study)
    except Exception as exc:  # as for the surrogate: a model that cannot fit degrades the report only
        notes.append(f"no recommendation ({type(exc).__name__}: {exc})")
    picks = _picks(trials, names, directions, recommendation, config.space(export_fidelity))
    if not any(p.trial is not None for p in picks):
        notes.append(f"no completed trial fits the repetition caps at the '{export_fidelity}' budget: nothing to export "
                     "by rule (export with --fidelity and a smaller budget, or --trial N)")
    figures["mixopt-composition"] = _composition(trials, on_front, picks, names, sources)
    at = np.unique(np.linspace(0, len(trials.values) - 1, min(HISTORY_POINTS, len(trials.values))).astype(int))
    hv = pareto.hypervolume_history(trials.values, directions, at=at)
    figures["mixopt-history"] = history_figure(trials.numbers, at, hv, trials.values, names, directions)
    if models is not None:
        parity = {}
        for fid in config.fidelities:
            done = completed(study, fid.name)
            if len(done.values) >= MIN_SURROGATE_TRIALS:
                parity[fid.name] = (done.values, *out_of_fold(done.weights, done.values, seed=seed,
                                                              factory=surrogate_factory(study)))
            elif len(done.values):
                notes.append(f"fidelity '{fid.name}' has {len(done.values)} completed trials: too few for its parity plot")
        figures["mixopt-parity"] = parity_figure(parity, names)
        grid, effects = source_effects(models, study.space, seed=seed)
        figures["mixopt-effects"] = effects_figure(grid, effects, names, sources)
    return ReportContent(study.name, names, sources, len(trials.values), figures, picks, notes)


def _picks(trials: Trials, names: list[str], directions: list[str], recommendation: Recommendation | None,
           export_space: MixtureSpace) -> list[Pick]:
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


def _composition(trials: Trials, on_front: np.ndarray, picks: list[Pick], names: list[str],
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


def write_report(study: Study, path: str | Path, png: bool = False, attach: bool = True,
                 open_browser: bool = False) -> list[Path]:
    """Write the report of ``study`` to ``path`` (HTML) with ``plotly.min.js`` beside it; with ``png``,
    one PNG per figure beside it (skipped with a note in the report when no Chromium is installed); with
    ``attach``, the figures are saved in the study for optuna-dashboard. Returns the written paths."""
    path = Path(path)
    if not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the report folder {path.parent}: {exc.strerror}") from None
    content = build_report(study)
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
    from choreographer.errors import ChromeNotFoundError

    keys = list(content.figures)
    files = [path.with_name(f"{path.stem}-{key.removeprefix('mixopt-')}.png") for key in keys]
    figures = [content.figures[k] for k in keys]
    try:
        pio.write_images(figures, files, width=PLOT_WIDTH, height=[f.layout.height for f in figures])
    except ChromeNotFoundError:
        content.notes.append(PNG_SKIPPED)
        return []
    return files
