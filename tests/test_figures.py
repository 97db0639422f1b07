"""The report's figures from arrays: every figure for 1 to 6 objectives and 3 to 64 sources, hover texts and
the composition bars."""

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from mixopt import figures, pareto
from mixopt.analysis import PredictedFront
from mixopt.trials import Observations


# -- figures from arrays -------------------------------------------------------------------------
def random_trials(n: int, m: int, K: int, seed: int = 0) -> Observations:
    rng = np.random.default_rng(seed)
    return Observations.of(np.arange(n) * 2, rng.dirichlet(np.full(K, 0.3), n), rng.normal(3.0, 0.3, (n, m)))


@pytest.mark.parametrize("K", [3, 64])
@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 6])
def test_every_figure_builds_for_1_to_6_objectives_and_3_to_64_sources(m, K):
    n = 30
    trials = random_trials(n, m, K)
    names = [f"objective{j}" for j in range(m)]
    directions = ["minimize", "maximize", "minimize", "maximize", "minimize", "minimize"][:m]
    sources = tuple(f"source{k}" for k in range(K))
    predicted = PredictedFront(trials.weights[:5], trials.values[:5] - 0.1, np.full((5, m), 0.02))
    on_front = pareto.non_dominated(trials.values, directions)

    front = figures.front_figure(trials, names, directions, sources, predicted)
    assert f"{on_front.sum()} of {n}" in front.layout.title.text
    expected_type = {1: go.Scatter, 2: go.Scatter, 3: go.Scatter3d}.get(m, go.Parcoords)
    assert isinstance(front.data[0], expected_type)
    if m in (2, 3):
        (predicted_trace,) = [t for t in front.data if (t.name or "").startswith("predicted")]
        np.testing.assert_allclose(predicted_trace.error_x.array, predicted.std[:, 0])
    drawn = [front]
    if m >= 2:
        pairs = figures.pairs_figure(trials, names, directions, sources, predicted)
        assert len([t for t in pairs.data if t.name == "front"]) == m * (m - 1) // 2
        drawn.append(pairs)
    parallel = figures.parallel_figure(trials, names, directions)
    assert [d.label.split(" ")[0] for d in parallel.data[0].dimensions] == ["trial", *names]
    drawn.append(parallel)

    rows = np.flatnonzero(on_front)
    bars = figures.composition_figure(trials.weights[rows], sources, [f"trial {r}" for r in rows])
    stacked = np.sum([np.asarray(t.x) for t in bars.data], axis=0)
    np.testing.assert_allclose(stacked, 100.0)  # every bar is a whole mixture
    assert len(bars.data) == (K if K <= figures.COMPOSITION_SOURCES + 1 else figures.COMPOSITION_SOURCES + 1)
    drawn.append(bars)

    at = np.arange(n)
    history = figures.history_figure(trials.numbers, at, pareto.hypervolume_history(trials.values, directions), trials.values, names, directions)
    best_lines = [t for t in history.data if t.name == "best so far"]
    assert len(best_lines) == m
    drawn.append(history)

    mean = trials.values + 0.05
    parity = figures.parity_figure({"microanneal": (trials.values, mean, np.full((n, m), 0.1)),
                                   "integration": (trials.values[:10], mean[:10], np.full((10, m), 0.1))}, names, folds=3)
    assert len([t for t in parity.data if t.legendgroup == "integration"]) == m
    drawn.append(parity)

    grid = np.tile(np.linspace(0, 1, 5), (K, 1))
    effects = np.random.default_rng(1).normal(size=(m, K, 5))
    drawn_effects = figures.effects_figure(grid, effects, names, sources)
    assert sum(t.visible is True for t in drawn_effects.data) == m * min(K, figures.EFFECT_LINES_SHOWN)
    drawn.append(drawn_effects)
    for figure in drawn:
        json.loads(figure.to_json())  # what the page and optuna-dashboard store


def test_hover_shows_the_trial_and_the_whole_mixture():
    sources = ("web", "code", "math")
    weights = np.array([[0.5, 0.0002, 0.4998]])
    (text,) = figures.hover_texts(np.array([7]), np.array([[2.5, 3.25]]), ["math", "code"], weights, sources)
    assert "trial 7" in text and "math 2.5" in text and "code 3.25" in text
    assert "web 50.0%" in text and "math 50.0%" in text
    assert "code 0.0%" not in text  # shares below 0.05% are left out


def test_composition_lumps_small_sources_into_other():
    sources = tuple(f"s{k}" for k in range(20))
    weights = np.full((2, 20), 0.05)
    figure = figures.composition_figure(weights, sources, ["a", "b"])
    assert figure.data[-1].name == f"other ({20 - figures.COMPOSITION_SOURCES} sources)"
    np.testing.assert_allclose(figure.data[-1].x, 100 * 0.05 * (20 - figures.COMPOSITION_SOURCES))
