"""The study report: every figure for 1 to 6 objectives and 3 to 64 sources, the surrogate views, the
offline HTML page (rendered in headless Chromium with the network off), PNGs, optuna-dashboard, the CLI."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import typer
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
from typer.testing import CliRunner

from mixopt import analysis, pareto, report
from mixopt.config import ComponentConfig, load_config
from mixopt.loop import run_study
from mixopt.runners.synthetic import expected_outcome, make_law
from mixopt.space import MixtureSpace, Source
from mixopt.study import Study
from study_helpers import write_study

torch.set_num_threads(1)
CHROMIUM = Path("/usr/bin/chromium")



def make_study(folder: Path, n_search: int, n_integration: int = 0) -> Study:
    """The synthetic 3-objective study (6 sources) in SQLite under ``folder``; the first ``n_integration``
    mixtures are rerun at the integration fidelity."""
    study = Study.open(load_config(write_study(folder)))
    run_study(study, n_trials=n_search, batch_size=8)
    if n_integration:
        study.enqueue(study.history().weights[:n_integration], "integration")
        run_study(study, n_trials=n_search + 1, batch_size=n_integration + 1)
    return study


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One study with enough trials for every view, and its report written once (with PNGs)."""
    folder = tmp_path_factory.mktemp("study")
    study = make_study(folder, n_search=16, n_integration=report.MIN_SURROGATE_TRIALS)
    paths = report.write_report(study, folder / "report" / "page.html", png=True)
    return study, paths


# -- figures from arrays -------------------------------------------------------------------------
def random_trials(n: int, m: int, K: int, seed: int = 0) -> report.Trials:
    rng = np.random.default_rng(seed)
    return report.Trials(np.arange(n) * 2, rng.dirichlet(np.full(K, 0.3), n), rng.normal(3.0, 0.3, (n, m)))


@pytest.mark.parametrize("K", [3, 64])
@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 6])
def test_every_figure_builds_for_1_to_6_objectives_and_3_to_64_sources(m, K):
    n = 30
    trials = random_trials(n, m, K)
    names = [f"objective{j}" for j in range(m)]
    directions = ["minimize", "maximize", "minimize", "maximize", "minimize", "minimize"][:m]
    sources = tuple(f"source{k}" for k in range(K))
    predicted = report.PredictedFront(trials.weights[:5], trials.values[:5] - 0.1, np.full((5, m), 0.02))
    on_front = pareto.non_dominated(trials.values, directions)

    front = report.front_figure(trials, names, directions, sources, predicted)
    assert f"{on_front.sum()} of {n}" in front.layout.title.text
    expected_type = {1: go.Scatter, 2: go.Scatter, 3: go.Scatter3d}.get(m, go.Parcoords)
    assert isinstance(front.data[0], expected_type)
    if m in (2, 3):
        (drawn,) = [t for t in front.data if (t.name or "").startswith("predicted")]
        np.testing.assert_allclose(drawn.error_x.array, predicted.std[:, 0])
    figures = [front]
    if m >= 2:
        pairs = report.pairs_figure(trials, names, directions, sources, predicted)
        assert len([t for t in pairs.data if t.name == "front"]) == m * (m - 1) // 2
        figures.append(pairs)
    parallel = report.parallel_figure(trials, names, directions)
    assert [d.label.split(" ")[0] for d in parallel.data[0].dimensions] == ["trial", *names]
    figures.append(parallel)

    rows = np.flatnonzero(on_front)
    bars = report.composition_figure(trials.weights[rows], sources, [f"trial {r}" for r in rows])
    stacked = np.sum([np.asarray(t.x) for t in bars.data], axis=0)
    np.testing.assert_allclose(stacked, 100.0)  # every bar is a whole mixture
    assert len(bars.data) == (K if K <= report.COMPOSITION_SOURCES + 1 else report.COMPOSITION_SOURCES + 1)
    figures.append(bars)

    at = np.arange(n)
    history = report.history_figure(trials.numbers, at, pareto.hypervolume_history(trials.values, directions), trials.values, names, directions)
    best_lines = [t for t in history.data if t.name == "best so far"]
    assert len(best_lines) == m
    figures.append(history)

    mean = trials.values + 0.05
    parity = report.parity_figure({"microanneal": (trials.values, mean, np.full((n, m), 0.1)),
                                   "integration": (trials.values[:10], mean[:10], np.full((10, m), 0.1))}, names)
    assert len([t for t in parity.data if t.legendgroup == "integration"]) == m
    figures.append(parity)

    grid = np.tile(np.linspace(0, 1, 5), (K, 1))
    effects = np.random.default_rng(1).normal(size=(m, K, 5))
    drawn_effects = report.effects_figure(grid, effects, names, sources)
    assert sum(t.visible is True for t in drawn_effects.data) == m * min(K, report.EFFECT_LINES_SHOWN)
    figures.append(drawn_effects)
    for figure in figures:
        json.loads(figure.to_json())  # what the page and optuna-dashboard store


def test_hover_shows_the_trial_and_the_whole_mixture():
    sources = ("web", "code", "math")
    weights = np.array([[0.5, 0.0002, 0.4998]])
    (text,) = report.hover_texts(np.array([7]), np.array([[2.5, 3.25]]), ["math", "code"], weights, sources)
    assert "trial 7" in text and "math 2.5" in text and "code 3.25" in text
    assert "web 50.0%" in text and "math 50.0%" in text
    assert "code 0.0%" not in text  # shares below 0.05% are left out


def test_composition_lumps_small_sources_into_other():
    sources = tuple(f"s{k}" for k in range(20))
    weights = np.full((2, 20), 0.05)
    figure = report.composition_figure(weights, sources, ["a", "b"])
    assert figure.data[-1].name == f"other ({20 - report.COMPOSITION_SOURCES} sources)"
    np.testing.assert_allclose(figure.data[-1].x, 100 * 0.05 * (20 - report.COMPOSITION_SOURCES))


# -- surrogate views -----------------------------------------------------------------------------
def law_data(n: int, seed: int = 0):
    space = MixtureSpace(tuple(Source(name) for name in ("web", "code", "math", "qa")))
    law = make_law(space.dim, 2, seed=3, noise=0.0)
    X = space.sample(n, seed)
    return space, law, X, expected_outcome(law, X)


def gp():
    """The per-dimension GP surrogate: calibrated and fast enough to fit many times in a test."""
    return analysis.make_surrogate(ComponentConfig("gp"))


@pytest.mark.slow
def test_source_effects_follow_the_mixing_law():
    space, law, X, Y = law_data(40)
    models = analysis.fit_surrogates(X, Y, gp)
    grid, effects = report.source_effects(models, space, n_base=16, n_grid=5)
    assert grid.shape == (4, 5) and effects.shape == (2, 4, 5)
    for objective in range(2):
        helper = int(np.argmin(law.t[objective]))  # the source that lowers this loss the most
        assert effects[objective, helper, -1] < effects[objective, helper, 0]


@pytest.mark.slow
def test_predicted_front_is_feasible_and_non_dominated():
    space, _, X, Y = law_data(30)
    models = analysis.fit_surrogates(X, Y, gp)
    front = report.predicted_front(models, space, ["minimize", "minimize"], n=400)
    assert 0 < len(front.mean) <= report.PREDICTED_SHOWN
    assert all(space.is_feasible(w, tol=1e-6) for w in front.weights)
    assert pareto.non_dominated(front.mean, ["minimize", "minimize"]).all()
    assert np.all(front.std > 0)


@pytest.mark.slow
def test_out_of_fold_predictions_rank_a_smooth_law():
    from scipy.stats import spearmanr

    _, _, X, Y = law_data(25)
    Y = Y[:, :1]
    mean, std = report.out_of_fold(X, Y, factory=gp)
    assert mean.shape == Y.shape == std.shape
    assert spearmanr(Y[:, 0], mean[:, 0]).statistic > 0.8


# -- reports of studies --------------------------------------------------------------------------
def test_too_few_trials_for_a_surrogate_is_a_note_not_an_error(tmp_path):
    study = make_study(tmp_path, n_search=5)
    content = report.build_report(study)
    assert set(content.figures) == {"mixopt-front", "mixopt-front-pairs", "mixopt-composition", "mixopt-history"}
    assert any("only 5 completed trials" in note for note in content.notes)
    # The recommendation needs only two runs (what `mixopt study export` writes); then the measured picks.
    assert [p.rule for p in content.picks] == ["recommended (knee on the model's front)", "knee", "best:math",
                                               "best:code", "best:qa", "chebyshev:1,1,1"]


def test_a_study_without_trials_reports_that(tmp_path):
    study = Study.open(load_config(write_study(tmp_path)))
    content = report.build_report(study)
    assert content.figures == {} and "run the study first" in content.notes[0]
    assert "run the study first" in report.render_html(content)


@pytest.mark.slow
def test_report_is_one_offline_page_with_every_view(written):
    study, paths = written
    page, script = paths[0], paths[1]
    html = page.read_text()
    assert script == page.parent / "plotly.min.js" and script.stat().st_size > 1_000_000
    assert "<script src='plotly.min.js'>" in html
    assert "cdn" not in html.lower() and "https://" not in html.split("<body>")[0]
    for key, _, _ in report.SECTIONS:
        assert f'id="{key}"' in html
    assert "recommended (knee on the model&#x27;s front)" in html and "not run" in html
    stored = get_plotly_graph_objects(study.optuna._storage.get_study_system_attrs(study.optuna._study_id))
    parity = go.Figure(json.loads(stored["mixopt-parity"]))
    assert {t.legendgroup for t in parity.data if t.legendgroup} == {"microanneal", "integration"}


@pytest.mark.slow
def test_figures_are_attached_for_optuna_dashboard(written):
    study, _ = written
    stored = get_plotly_graph_objects(study.optuna._storage.get_study_system_attrs(study.optuna._study_id))
    assert set(stored) == {key for key, _, _ in report.SECTIONS}
    front = go.Figure(json.loads(stored["mixopt-front"]))
    assert front.layout.title.text.startswith("Pareto front")


@pytest.mark.slow
def test_png_export_draws_every_figure_or_says_why_not(written):
    _, paths = written
    pngs = [p for p in paths if p.suffix == ".png"]
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        assert not pngs and report.PNG_SKIPPED in paths[0].read_text()
        return
    from PIL import Image

    assert {p.stem.removeprefix("page-") for p in pngs} == {k.removeprefix("mixopt-") for k, _, _ in report.SECTIONS}
    for png in pngs:
        image = np.asarray(Image.open(png).convert("RGB")).astype(np.int64)
        assert image.shape[1] == report.PLOT_WIDTH
        colours = np.unique(image[..., 0] << 16 | image[..., 1] << 8 | image[..., 2])
        assert len(colours) > 50, f"{png.name} looks blank"


def pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    return int(np.sum(np.all(np.abs(image.astype(int) - rgb) <= tolerance, axis=-1)))


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium_with_the_network_off(written, tmp_path):
    from PIL import Image

    _, paths = written
    shot = tmp_path / "page.png"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--proxy-server=127.0.0.1:9",  # a closed port: any network request fails
        f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--virtual-time-budget=10000",
        "--window-size=1200,2400", f"--screenshot={shot}", paths[0].resolve().as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    image = np.asarray(Image.open(shot).convert("RGB"))
    plot_area = pixels_near(image, (229, 236, 246))  # plotly's plot background, drawn only by plotly.js
    markers = pixels_near(image, (31, 95, 191))  # front points (report.FRONT)
    assert plot_area > 0.05 * image.shape[0] * image.shape[1], "the plot area is not drawn"
    assert markers > 200, "the plot area is drawn but holds no front points"


def test_cli_report_writes_the_page(tmp_path):
    from mixopt.cli.report import report as report_command

    study = make_study(tmp_path, n_search=4)
    app = typer.Typer()
    app.command()(report_command)
    output = tmp_path / "out" / "page.html"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = CliRunner().invoke(app, ["--storage", url, "--study-name", study.name, "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert output.is_file() and (output.parent / "plotly.min.js").is_file()
    assert f"wrote {output}" in result.output.replace("\n", "")
