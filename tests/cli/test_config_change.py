"""A study and its config must agree: a config edited after the study started is compared with the one the
study stores on every `mixopt study run`. Changed sources are refused in one line (exit 2, the study
untouched); a changed space runs on, with one line counting the completed trials now outside it. A config
that is not UTF-8, or not YAML, is one line and exit 2."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from study_helpers import assert_one_line_error, run_mixopt, write_study

STARTED = 4  # completed trials before the config is edited


def snapshot(db: Path) -> tuple:
    """Every trial (number, state) and every study attribute, read straight from the SQLite tables."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        trials = connection.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
        attrs = connection.execute("SELECT key, value_json FROM study_user_attributes ORDER BY key").fetchall()
    return trials, attrs


def math_weights(db: Path) -> list[float]:
    """The weight of the source 'math' in each completed trial."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return [w for (w,) in connection.execute(
            "SELECT p.param_value FROM trial_params p JOIN trials t ON p.trial_id = t.trial_id "
            "WHERE p.param_name = 'math' AND t.state = 'COMPLETE'")]


@pytest.fixture(scope="module")
def started(tmp_path_factory) -> Path:
    """A synthetic study with ``STARTED`` completed trials (its config, study.db beside it)."""
    folder = tmp_path_factory.mktemp("started")
    config = write_study(folder, {"n_trials": STARTED, "batch_size": 2})
    result = run_mixopt("study", "run", config, "--no-report", cwd=folder)
    assert result.returncode == 0, result.stderr
    return config


def edited(config: Path, edit) -> Path:
    """``config`` with ``edit`` applied to its data, written back in place (the study beside it is shared)."""
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump(edit(data), sort_keys=False))
    return config


SOURCE_EDITS = {
    "a source added": (lambda d: {**d, "sources": [*d["sources"], {"name": "papers", "tokens": 1.0e10}]},
                       ["this config adds 'papers'"]),
    "a source removed": (lambda d: {**d, "sources": d["sources"][:-1]}, ["this config removes 'instructions'"]),
    "a source renamed": (lambda d: {**d, "sources": [*d["sources"][:-1], {**d["sources"][-1], "name": "chat"}]},
                         ["this config adds 'chat'; removes 'instructions'"]),
}


@pytest.mark.parametrize("case", list(SOURCE_EDITS))
def test_changed_sources_are_refused_in_one_line_and_the_study_is_untouched(started, case):
    original = started.read_text()
    db = started.parent / "study.db"
    before = snapshot(db)
    edit, fragments = SOURCE_EDITS[case]
    try:
        result = run_mixopt("study", "run", edited(started, edit), "--no-report", cwd=started.parent)
    finally:
        started.write_text(original)
    assert_one_line_error(result, 2, "study 'synthetic' was started with sources", *fragments,
                          "give the edited config a new name", "reuse:")
    assert snapshot(db) == before


def test_a_lowered_bound_runs_on_with_one_line_and_outside_trials_are_never_recommended(tmp_path):
    config = write_study(tmp_path, {"n_trials": STARTED, "batch_size": 2})
    assert run_mixopt("study", "run", config, "--no-report", cwd=tmp_path).returncode == 0
    weights = sorted(math_weights(tmp_path / "study.db"))
    bound = round((weights[-1] + weights[-2]) / 2, 4)  # below the heaviest trial's math weight
    outside = sum(w > bound + 1e-6 for w in weights)

    def lowered(data: dict) -> dict:
        data["sources"][2]["max_weight"] = bound
        return {**data, "n_trials": STARTED + 2}

    result = run_mixopt("study", "run", edited(config, lowered), "--no-report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "changed since study" in line]
    assert lines == [f"the config's bounds changed since study 'synthetic' started: {outside} of {STARTED} completed "
                     "trials fall outside the new space; they are kept as observations and never recommended"]
    status = run_mixopt("study", "status", config, "-f", "json", cwd=tmp_path)
    summary = json.loads(status.stdout)
    assert summary["complete_by_fidelity"] == {"microanneal": STARTED + 2}
    assert summary["recommendation"]["mixture"]["math"] <= bound + 1e-6
    again = run_mixopt("study", "run", config, "--no-report", cwd=tmp_path)  # the study now stores the new config
    assert again.returncode == 0 and "changed since study" not in again.stderr, again.stderr


@pytest.mark.parametrize(("text", "fragments"), [
    (b"name: synthetic\ndescription: caf\xe9 au lait\n", ["is not UTF-8 text (byte 32: b'\\xe9')", "save the study config as UTF-8"]),
    (b"\xff\xfe\x00n\x00a", ["is not UTF-8 text (byte 0"]),
    (b"name: [synthetic\n", ["study config is not valid YAML"]),
    (b"just words, no mapping\n", ["study config must be a YAML mapping"]),
])
def test_a_config_that_is_not_utf8_or_not_yaml_is_one_line_and_exit_2(tmp_path, text, fragments):
    config = tmp_path / "study.yaml"
    config.write_bytes(text)
    result = run_mixopt("study", "run", config, cwd=tmp_path)
    assert_one_line_error(result, 2, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]
