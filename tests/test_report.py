"""The study report: every figure for 1 to 6 objectives and 3 to 64 sources, the surrogate views, the
offline HTML page (rendered in headless Chromium with the network off), PNGs, optuna-dashboard, the CLI."""

import json
import re
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

from mixopt import report
from mixopt.config import load_config
from mixopt.loop import run_study
from mixopt.study import Study
from study_helpers import missing_component, write_study

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
    # Nothing loaded from a network ("cdn" alone may occur inside the figures' base64 data).
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?(https?:)?//", html) and "cdn.plot.ly" not in html
    assert "https://" not in html.split("<body>")[0]
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
        missing_component("no Chromium: the report says PNG export was skipped (apt-get install chromium)")
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
def test_report_renders_in_headless_chromium_with_the_network_off(written, tmp_path):
    if not CHROMIUM.exists():
        missing_component("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
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
    markers = pixels_near(image, (31, 95, 191))  # front points (mixopt.figures.FRONT)
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


def test_the_report_shows_each_metrics_signal_and_noise_from_replicates(tmp_path):
    """Two mixtures replicated 3 times among 10 runs: every reported metric gets a row with its noise
    measured from them; the objectives' metrics are marked; without replicates a metric says so."""
    plan = {"mixtures": ["prior", {"web": 0.5, "books": 0.2, "code": 0.1, "math": 0.1, "qa": 0.1}], "seeds": 3}
    (tmp_path / "replicated").mkdir()
    (tmp_path / "plain").mkdir()
    study = Study.open(load_config(write_study(tmp_path / "replicated", {"n_trials": 10, "replicates": plan})))
    run_study(study)
    content = report.build_report(study)
    by_name = {m.name: m for m in content.metrics}
    assert set(by_name) == {"math_loss", "code_loss", "qa_loss"}
    assert all(m.replicated == 2 and m.noise > 0 and m.mixtures == 6 for m in by_name.values())
    page = report.render_html(content)
    assert "Signal and noise of the metrics" in page and "<b>math_loss</b> (objective)" in page
    unreplicated = report.build_report(make_study(tmp_path / "plain", n_search=5))
    assert all("no replicates" in m.flags for m in unreplicated.metrics)
