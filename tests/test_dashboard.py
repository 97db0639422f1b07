"""optuna-dashboard for real: a study finished by ``mixopt study run`` is served by the ``optuna-dashboard``
command on a loopback port and loaded in headless Chromium with the network off apart from loopback. The
rendered pages hold the trials, the objective names and mixopt's attached figures (drawn, not just named),
and Chromium's network log shows that the page asked nothing of any other host."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mixopt import report
from study_helpers import MIXOPT, command_env, missing_component, run_mixopt, write_study

CHROMIUM = Path("/usr/bin/chromium")
DASHBOARD = MIXOPT.with_name("optuna-dashboard")
N_TRIALS = 10  # enough for the surrogate figures (report.MIN_SURROGATE_TRIALS)
# Objective names that are no source name, so finding them in a page means the dashboard shows objectives.
OBJECTIVES = {"loss_of_math": "math_loss", "loss_of_code": "code_loss", "loss_of_qa": "qa_loss"}
PLOT_BACKGROUND = (229, 236, 246)  # plotly's default plot background: mixopt's figures (the dashboard's own are white)
FRONT = (31, 95, 191)  # front points (mixopt.figures.FRONT)
# Chromium with no way out but loopback: names resolve nowhere and every non-loopback request goes to a closed port.
OFFLINE = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PageText(HTMLParser):
    """The visible text of an HTML document (no scripts or styles), one string per text node."""

    def __init__(self) -> None:
        super().__init__()
        self.strings: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs) -> None:
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag) -> None:
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data) -> None:
        if not self._hidden and data.strip():
            self.strings.append(data.strip())


def page_text(html: str) -> list[str]:
    parser = PageText()
    parser.feed(html)
    return parser.strings


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A finished synthetic study and the dashboard serving it: (base URL, study id, folder)."""
    if not CHROMIUM.exists():
        missing_component("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    if not DASHBOARD.exists():
        missing_component(f"needs the optuna-dashboard command beside mixopt ({DASHBOARD})")
    folder = tmp_path_factory.mktemp("dashboard")
    objectives = [{"name": name, "metric": metric, "direction": "minimize"} for name, metric in OBJECTIVES.items()]
    config = write_study(folder, {"objectives": objectives, "n_trials": N_TRIALS})
    done = run_mixopt("study", "run", config, cwd=folder, timeout=600)
    assert done.returncode == 0, done.stderr
    port = free_port()
    server = subprocess.Popen([str(DASHBOARD), f"sqlite:///{folder / 'study.db'}", "--host", "127.0.0.1",
                               "--port", str(port)], env=command_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=5) as response:
                    studies = json.load(response)["study_summaries"]
                break
            except OSError:
                assert server.poll() is None, f"optuna-dashboard exited: {server.stdout.read()}"
                assert time.monotonic() < deadline, "optuna-dashboard did not answer within 120 s"
                time.sleep(0.5)
        (study_id,) = [s["study_id"] for s in studies if s["study_name"] == "synthetic"]
        yield base, study_id, folder
    finally:
        server.terminate()
        server.wait(timeout=30)


def chromium(url: str, folder: Path, name: str, *output: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Load ``url`` in headless Chromium (JS given 15 s of virtual time) with the network off; returns the
    run (stdout: the DOM with --dump-dom) and the URL requests of its network log."""
    net_log = folder / f"{name}-net.json"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-features=AutofillServerCommunication", *OFFLINE,
        f"--user-data-dir={folder / (name + '-profile')}", f"--log-net-log={net_log}",
        "--virtual-time-budget=15000", "--window-size=1400,5000", *output, url,
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = [e["params"] for e in log["events"] if e["type"] == start and "url" in e.get("params", {})]
    return run, requests


def page_requests(requests: list[dict]) -> list[str]:
    """The URLs the page asked for: requests keyed to the page's site (network isolation key of
    http://127.0.0.1). Chromium's own background services (time sync, accounts) also appear in the log
    under other keys; the flags above refuse them. (Autofill's server queries, keyed to the page although
    the browser sends them, are switched off.)"""
    return [r["url"] for r in requests if r.get("network_isolation_key", "").startswith("http://127.0.0.1 ")]


def test_dashboard_shows_the_trials_in_the_browser(dashboard):
    base, study_id, folder = dashboard
    run, requests = chromium(f"{base}/dashboard/studies/{study_id}/trials", folder, "trials", "--dump-dom")
    text = page_text(run.stdout)
    assert f"{N_TRIALS} Trials" in text
    listed = [s for s in text if re.fullmatch(r"Trial \d+", s)]
    assert {f"Trial {n}" for n in range(N_TRIALS)} <= set(listed)
    assert text.count("Complete") >= N_TRIALS
    # The selected trial's mixture: its weights under the sources' names.
    assert {"web", "code", "math", "qa", "books", "instructions"} <= {s.split()[0] for s in text}
    assert any(u.startswith(f"{base}/api/studies/{study_id}") for u in page_requests(requests))


def test_dashboard_names_the_objectives_and_draws_mixopts_figures(dashboard):
    from PIL import Image

    base, study_id, folder = dashboard
    url = f"{base}/dashboard/studies/{study_id}"
    run, requests = chromium(url, folder, "top", "--dump-dom")
    html = run.stdout
    text = page_text(html)
    # The dashboard's own Pareto front and history plots choose among the objectives by their names.
    position = text.index("Objective X:")
    assert text[position + 1] in OBJECTIVES and set(OBJECTIVES) <= set(text)
    # Every figure the report attaches is on the page with its title, and plotly.js drew data into it:
    # SVG traces, or a WebGL canvas for the 3-D front.
    figures = dict(re.findall(r'id="user-defined-plot:(mixopt-[a-z-]+)"(.*?)(?=id="user-defined-plot:|$)', html, re.S))
    assert set(figures) == {key for key, _, _ in report.SECTIONS}
    for key, title, _ in report.SECTIONS:
        titles = re.findall(r'class="gtitle"[^>]*>([^<]*)<', figures[key])
        assert titles and titles[0].startswith(title.split()[0]), (key, titles)
        drawn = len(re.findall(r'class="trace ', figures[key])) + figures[key].count("<canvas")
        assert drawn > 0, f"{key} is on the page but plotly drew nothing into it"

    shot = folder / "top.png"
    chromium(url, folder, "shot", f"--screenshot={shot}")
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    def near(rgb: tuple[int, int, int]) -> int:
        return int(np.sum(np.all(np.abs(image - rgb) <= 12, axis=-1)))

    assert near(PLOT_BACKGROUND) > 0.03 * image.shape[0] * image.shape[1], "mixopt's plot areas are not drawn"
    assert near(FRONT) > 200, "the plot areas are drawn but hold no front points"

    asked = page_requests(requests)
    assert f"{base}/static/bundle.js" in asked
    assert all(u.startswith(f"{base}/") for u in asked), f"the page asked for other hosts: {asked}"
