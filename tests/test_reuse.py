"""Mixture reuse: the source map (same, split, renamed, removed, added), projection onto the new space,
and a new study warm-started from a finished one through the real `mixopt study run`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from optuna.trial import TrialState

from mixopt.config import load_config, parse_config
from mixopt.errors import ConfigError
from mixopt.loop import run_study
from mixopt.reuse import apply_reuse, fit_to_space, map_mixture, source_map
from mixopt.space import MixtureSpace, Source
from mixopt.study import Study
from study_helpers import run_mixopt

OLD_SOURCES = ["web", "code", "math", "books"]


# -- the source map --------------------------------------------------------------------------------
def test_same_names_carry_their_weight():
    mapping = source_map(["web", "code"], {"code": 1.0, "web": 2.0}, {})
    w, lost = map_mixture(mapping, np.array([0.7, 0.3]), 0.0)
    assert w.tolist() == [0.3, 0.7] and lost == 0.0  # new order: code, web
    assert mapping.unmapped == [] and mapping.added == []


def test_split_divides_by_tokens():
    mapping = source_map(OLD_SOURCES[:3], {"web_en": 3e11, "web_forum": 1e11, "code": 1.0, "math": 1.0},
                         {"web": ["web_en", "web_forum"]})
    w, _ = map_mixture(mapping, np.array([0.6, 0.3, 0.1]), 0.0)
    assert w == pytest.approx([0.45, 0.15, 0.3, 0.1])
    assert mapping.shares()["web"] == pytest.approx({"web_en": 0.75, "web_forum": 0.25})


def test_split_by_explicit_shares_rename_and_merge():
    new = {"web_en": None, "web_forum": None, "program": None}
    mapping = source_map(["web", "code", "math"], new,
                         {"web": {"web_en": 0.9, "web_forum": 0.1}, "code": "program", "math": "program"})
    w, _ = map_mixture(mapping, np.array([0.5, 0.3, 0.2]), 0.0)
    assert w == pytest.approx([0.45, 0.05, 0.5])


def test_removed_source_is_reported_and_its_trials_skipped_or_renormalized():
    mapping = source_map(OLD_SOURCES, {"web": 1.0, "code": 1.0, "math": 1.0}, {})
    assert mapping.unmapped == ["books"]
    skipped, lost = map_mixture(mapping, np.array([0.5, 0.2, 0.1, 0.2]), 0.0)
    assert skipped is None and lost == pytest.approx(0.2)
    kept, lost = map_mixture(mapping, np.array([0.5, 0.2, 0.1, 0.2]), 0.25)
    assert kept == pytest.approx([0.625, 0.25, 0.125]) and lost == pytest.approx(0.2)
    exact, lost = map_mixture(mapping, np.array([0.6, 0.3, 0.1, 0.0]), 0.0)
    assert exact == pytest.approx([0.6, 0.3, 0.1]) and lost == 0.0


def test_added_source_gets_weight_zero():
    mapping = source_map(["web", "code"], {"web": 1.0, "code": 1.0, "news": 1.0}, {})
    w, _ = map_mixture(mapping, np.array([0.4, 0.6]), 0.0)
    assert w.tolist() == [0.4, 0.6, 0.0] and mapping.added == ["news"]


def test_infeasible_mapped_mixture_is_projected_or_skipped():
    space = MixtureSpace((Source("web"), Source("code", max_weight=0.3), Source("math")))
    near, shift = fit_to_space(space, np.array([0.5, 0.32, 0.18]), max_projection=0.05)
    assert space.is_feasible(near) and near[1] == pytest.approx(0.3) and shift == pytest.approx(0.04)
    far, shift = fit_to_space(space, np.array([0.3, 0.6, 0.1]), max_projection=0.05)
    assert far is None and shift == pytest.approx(0.6)
    feasible = np.array([0.5, 0.2, 0.3])
    assert fit_to_space(space, feasible, 0.0)[0] is feasible


def test_unknown_old_source_in_map_is_named():
    with pytest.raises(ConfigError, match="reuse.map names 'wbe', which is not a source of the old study"):
        source_map(["web"], {"web": 1.0}, {"wbe": "web"})


@pytest.mark.parametrize("reuse, message", [
    ({"map": {"web": "web_en"}}, "name the old study with study: PATH"),
    ({"study": "o.yaml", "map": {"web": ["web_en", "wbe_forum"]}}, "'wbe_forum' is not a source of this study: did you mean 'web_forum'"),
    ({"study": "o.yaml", "map": {"web": {"web_en": 0.7, "web_forum": 0.2}}}, "shares must be numbers >= 0 that sum to 1"),
    ({"study": "o.yaml", "map": {"web": ["web_en", "code"]}}, "a split by tokens needs tokens > 0 on code"),
    ({"study": "o.yaml", "map": {"web": 3}}, "expected a new source"),
    ({"study": "o.yaml", "drop_unmapped_above": 1.0}, "drop_unmapped_above must be in"),
    ({"study": "o.yaml", "mapping": {}}, "reuse.mapping: unknown key: did you mean 'map'"),
])
def test_bad_reuse_sections_fail_with_one_clear_line(reuse, message):
    text = yaml.safe_dump({
        "name": "new", "sources": [{"name": "web_en", "tokens": 1e9}, {"name": "web_forum", "tokens": 1e9}, {"name": "code"}],
        "objectives": [{"name": "a", "metric": "a"}], "fidelities": [{"name": "m", "tokens": 1e6}],
        "runner": "synthetic", "reuse": reuse,
    })
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


# -- a study warm-started from a finished one ------------------------------------------------------
def study_config(name: str, sources: list[dict], n_trials: int, metrics: list[str], reuse: dict | None = None) -> dict:
    config = {
        "name": name, "sources": sources,
        "constraints": [{"name": "anchor", "sources": [s["name"] for s in sources if s["name"].startswith("web")], "min": 0.3}],
        "objectives": [{"name": m.split("_")[0], "metric": m} for m in metrics],
        "fidelities": [{"name": "microanneal", "tokens": 1e10}, {"name": "integration", "tokens": 1e11}],
        "runner": {"name": "synthetic", "options": {"metrics": metrics, "problem_seed": 4}},
        "executor": "serial", "searcher": "random", "batch_size": 4, "n_trials": n_trials, "seed": 0,
    }
    if reuse is not None:
        config["reuse"] = reuse
    return config


def write(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder / "study.yaml"


@pytest.fixture(scope="module")
def old_study(tmp_path_factory) -> Path:
    """A finished 12-trial study over web, code, math, books (books up to 0.3), in ``<root>/old``."""
    sources = [{"name": "web", "tokens": 4e11}, {"name": "code", "tokens": 4e10, "max_repetition": 4},
               {"name": "math", "tokens": 1e10, "max_repetition": 4}, {"name": "books", "max_weight": 0.3}]
    path = write(tmp_path_factory.mktemp("reuse") / "old", study_config("old", sources, 12, ["math_loss", "code_loss"]))
    run_study(Study.open(load_config(path)))
    return path


def new_folder(old_study: Path, name: str) -> Path:
    """A folder beside the old study's, so that ``../old/study.yaml`` names it."""
    return old_study.parent.parent / name


NEW_SOURCES = [{"name": "web_en", "tokens": 3e11}, {"name": "web_forum", "tokens": 1e11},
               {"name": "code", "tokens": 4e10, "max_repetition": 4}, {"name": "math", "tokens": 1e10, "max_repetition": 4},
               {"name": "news", "tokens": 1e10}]


@pytest.mark.slow
def test_new_study_maps_a_split_source_reports_the_removed_one_and_resumes(old_study, tmp_path):
    reuse = {"study": "../old/study.yaml", "map": {"web": ["web_en", "web_forum"]}, "drop_unmapped_above": 0.1}
    path = write(new_folder(old_study, "split"), study_config("new", NEW_SOURCES, 20, ["math_loss", "code_loss"], reuse))
    result = run_mixopt("study", "run", path, "--no-report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    old = Study.load(load_config(old_study).storage_url, "old")
    new = Study.open(load_config(path))
    old_trials = {t.number: t for t in old.trials((TrialState.COMPLETE,))}
    imported = [t for t in new.trials() if "imported_from" in t.user_attrs]
    light = {n for n, t in old_trials.items() if t.params["books"] <= 0.1}
    assert 0 < len(light) < 12, "the fixture should have trials on both sides of drop_unmapped_above"
    assert {int(t.user_attrs["imported_from"].rsplit(" ", 1)[1]) for t in imported} == light
    for trial in imported:  # web split 3:1 by tokens, books dropped and the rest renormalized, news 0
        u = old_trials[int(trial.user_attrs["imported_from"].rsplit(" ", 1)[1])].params
        kept = 1 - u["books"]
        assert trial.params["web_en"] == pytest.approx(0.75 * u["web"] / kept)
        assert trial.params["web_forum"] == pytest.approx(0.25 * u["web"] / kept)
        assert trial.params["code"] == pytest.approx(u["code"] / kept) and trial.params["news"] == 0.0
        assert trial.state == TrialState.COMPLETE and trial.values == old_trials[int(trial.user_attrs["imported_from"].rsplit(" ", 1)[1])].values
    history = new.history()  # its own 20 runs (n_trials) and the imported ones
    assert len(history) == 20 + len(imported) and {tuple(t.params.values()) for t in imported} <= {tuple(w) for w in history.weights}

    stdout = result.stdout
    assert "reuse of study 'old' (12 completed trials)" in stdout
    assert "web_en 0.750, web_forum 0.250" in stdout
    assert f"books -> unmapped (no source here); {12 - len(light)} trials that gave it weight skipped" in stdout
    assert "news" in stdout and "added (weight 0 in mapped mixtures)" in stdout
    assert f"imported {len(light)} trials as observations" in stdout and f"skipped {12 - len(light)}" in stdout

    # The old study's knee, mapped, was the first mixture the new study ran.
    first = min((t for t in new.trials() if "imported_from" not in t.user_attrs), key=lambda t: t.number)
    assert first.user_attrs["reused_from"].startswith("the recommended mixture of study 'old' trial")
    assert first.state == TrialState.COMPLETE and first.params["news"] == 0.0

    status = run_mixopt("study", "status", path, cwd=tmp_path)
    assert status.returncode == 0 and "books -> unmapped" in status.stdout
    again = run_mixopt("study", "run", path, "--no-report", "--n-trials", "22", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "was applied when this study started" in again.stdout
    assert sum("imported_from" in t.user_attrs for t in new.trials()) == len(light)
    assert sum("reused_from" in t.user_attrs for t in new.trials()) == 1
    assert new.n_complete("microanneal") == 22


def test_mapped_trials_outside_the_new_constraints_are_projected_or_skipped(old_study):
    """New cap code <= 0.2: a trial over it by e moves 2e in L1 (the excess spread over the others)."""
    sources = [dict(s, max_weight=0.2) if s["name"] == "code" else s for s in NEW_SOURCES]
    reuse = {"study": "../old/study.yaml", "map": {"web": ["web_en", "web_forum"]}, "drop_unmapped_above": 0.3,
             "max_projection": 0.1}
    study = Study.open(load_config(write(new_folder(old_study, "capped"), study_config("new", sources, 8, ["math_loss", "code_loss"], reuse))))
    report = apply_reuse(study)
    old = Study.load(load_config(old_study).storage_url, "old")
    code = {t.number: t.params["code"] / (1 - t.params["books"]) for t in old.trials((TrialState.COMPLETE,))}
    assert sorted(report.projected) == sorted(n for n, c in code.items() if 0.2 < c <= 0.25)
    assert sorted(report.imported) == sorted(n for n, c in code.items() if c <= 0.25)
    assert {s["trial"] for s in report.skipped} == {n for n, c in code.items() if c > 0.25}
    assert report.projected and report.skipped, "the fixture should have trials on each side"
    for trial in study.trials((TrialState.COMPLETE,)):
        assert trial.params["code"] <= 0.2 + 1e-9


def test_missing_objective_makes_old_mixtures_proposals_only(old_study):
    reuse = {"study": "../old/study.yaml", "map": {"web": {"web_en": 0.5, "web_forum": 0.5}}}
    path = write(new_folder(old_study, "proposals"), study_config("new", NEW_SOURCES, 8, ["math_loss", "qa_loss"], reuse))
    study = Study.open(load_config(path))
    report = apply_reuse(study)
    assert report.missing_metrics == ["qa_loss"] and report.imported == []
    waiting = study.trials((TrialState.WAITING,))
    assert 1 <= len(waiting) <= 4 and len(waiting) == len(report.proposals)
    assert waiting[0].user_attrs["reused_from"].startswith("the recommended mixture")
    assert all(study.space.is_feasible(study.weights_of(t) if t.params else study.space.from_dict(t.system_attrs["fixed_params"]))
               for t in waiting)
    assert apply_reuse(study) is None and len(study.trials()) == len(waiting)


def test_a_map_naming_an_unknown_old_source_stops_the_run_before_anything(old_study, tmp_path):
    reuse = {"study": "../old/study.yaml", "map": {"wbe": ["web_en", "web_forum"]}}
    path = write(new_folder(old_study, "unknown"), study_config("new", NEW_SOURCES, 8, ["math_loss", "code_loss"], reuse))
    result = run_mixopt("study", "run", path, "--no-report", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: reuse.map names 'wbe', which is not a source")
    assert Study.open(load_config(path)).trials() == []
