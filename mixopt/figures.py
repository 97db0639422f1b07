"""The report's figures: pure functions from arrays to ``plotly.graph_objects.Figure``.

Shapes: ``n`` trials, ``m`` objectives, ``K`` sources. Observed trials come as
:class:`~mixopt.trials.Observations` (numbers, weights, values); the surrogate's front as
:class:`PredictedFront` (from :func:`mixopt.analysis.predicted_front`). :mod:`mixopt.report` gathers a
study's data, fits the models and lays these figures out on one page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from scipy.stats import spearmanr

from mixopt import pareto
from mixopt.analysis import PredictedFront
from mixopt.errors import ConfigError
from mixopt.trials import Observations

EFFECT_LINES_SHOWN = 8  # sources drawn in the effects figure; the rest start hidden (click the legend)
COMPOSITION_SOURCES = 12  # sources with their own colour in the bars; the rest are "other"
FADED = "rgba(150, 150, 150, 0.35)"
FRONT = "#1f5fbf"
PREDICTED = "#e4572e"
PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Dark24 + qualitative.Light24  # 74 colours


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
def front_figure(trials: Observations, names: list[str], directions: list[str], sources: tuple[str, ...],
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


def pairs_figure(trials: Observations, names: list[str], directions: list[str], sources: tuple[str, ...],
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


def parallel_figure(trials: Observations, names: list[str], directions: list[str]) -> go.Figure:
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


def parity_figure(by_fidelity: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], names: list[str],
                  folds: int) -> go.Figure:
    """Out-of-fold predictions (``folds``-fold) against observations, one panel per objective, one colour per
    fidelity; ``by_fidelity[f] = (observed, mean, std)``, each ``(n_f, m)``. Spearman's rho in the legend."""
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
    fig.update_layout(title=f"Surrogate parity: {folds}-fold out-of-fold predictions (± 1 sd)",
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
