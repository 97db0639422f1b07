"""``candidates: FILE``: a study that chooses among a finite set of mixtures, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mixopt.candidates import load_candidates, nearest_unused
from mixopt.config import load_config
from mixopt.space import MixtureSpace, Source
from study_helpers import run_mixopt, write_study

SOURCES = ["web", "code", "math", "qa", "books", "instructions"]
SEARCHERS = ["botorch", "random", "optuna-tpe", "optuna-gp", "optuna-nsga2"]


def candidate_rows(folder: Path, n: int = 24, seed: int = 0) -> np.ndarray:
    """``n`` feasible mixtures of the synthetic study (on its 1e-4 grid), written to ``candidates.csv`` with a key."""
    space = load_config(write_study(folder)).space()
    W = space.round(space.sample(n, seed=seed), 1e-4)
    table = pd.DataFrame(W, columns=SOURCES)
    table.insert(0, "run", [f"blend-{i}" for i in range(n)])
    table.to_csv(folder / "candidates.csv", index=False)
    return W


def is_candidate(w: np.ndarray, C: np.ndarray) -> bool:
    return bool(np.any(np.abs(C - w).sum(axis=1) <= 1e-6))


def mixtures_of(trials_json: str) -> list[np.ndarray]:
    return [np.array([t["mixture"][s] for s in SOURCES]) for t in json.loads(trials_json)]


@pytest.mark.parametrize("searcher", SEARCHERS)
def test_a_candidates_study_runs_asks_and_exports_only_candidates(tmp_path: Path, searcher: str) -> None:
    C = candidate_rows(tmp_path)
    options = {"n_init": 4, "mc_samples": 16} if searcher == "botorch" else {}  # one batch from the model
    config = write_study(tmp_path, {"candidates": "candidates.csv", "n_trials": 8,
                                    "searcher": {"name": searcher, "options": options}})
    run = run_mixopt("study", "run", config, "--no-report", cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    import optuna

    study = optuna.load_study(study_name="synthetic", storage=f"sqlite:///{tmp_path / 'study.db'}")
    measured = [np.array([t.params[s] for s in SOURCES]) for t in study.trials if t.state.name == "COMPLETE"]
    assert len(measured) >= 8
    assert all(is_candidate(w, C) for w in measured)
    search = [w for w, t in zip(measured, study.trials, strict=False) if t.user_attrs.get("fidelity") == "microanneal"]
    assert len({tuple(w) for w in search}) == len(search), "a candidate was measured twice"

    exported = run_mixopt("study", "export", config, "--format", "plain", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    weights = yaml.safe_load(exported.stdout)
    w = np.array([float(weights.get("mixture", weights).get(s, 0.0)) for s in SOURCES])
    assert is_candidate(w, C), w

    asked = run_mixopt("study", "ask", config, "-n", "3", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    batch = mixtures_of(asked.stdout)
    assert len(batch) == 3 and all(is_candidate(w, C) for w in batch)
    assert not any(np.abs(np.array(measured) - w).sum(axis=1).min() <= 1e-9 for w in batch)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda t: t.rename(columns={"qa": "papers"}), "column 'papers'"),
        (lambda t: t.assign(math=t["math"].where(t.index != 2, 0.9)), "row 3"),
        (lambda t: t.assign(web=t["web"].where(t.index != 4, t["web"] + 0.05)), "row 5"),
        (lambda t: t.drop(columns=["books"]), "source 'books'"),
    ],
    ids=["unknown source", "outside the constraints", "not summing to 1", "missing source"],
)
def test_a_bad_candidates_file_is_refused_with_one_line_naming_it(tmp_path: Path, edit, fragment: str) -> None:
    candidate_rows(tmp_path, n=6)
    table = edit(pd.read_csv(tmp_path / "candidates.csv"))
    table.to_csv(tmp_path / "candidates.csv", index=False)
    config = write_study(tmp_path, {"candidates": "candidates.csv"})
    result = run_mixopt("study", "run", config, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "study.db").exists()


def test_rows_within_the_sum_tolerance_are_renormalised_and_put_on_the_grid(tmp_path: Path) -> None:
    space = MixtureSpace(tuple(Source(s) for s in "abc"))
    (tmp_path / "c.csv").write_text("a,b,c\n0.5,0.3,0.2004\n0.2,0.2,0.6\n")
    C = load_candidates(tmp_path / "c.csv", space, 1e-4)
    assert np.allclose(C.sum(axis=1), 1.0) and np.allclose(C * 1e4, np.round(C * 1e4))
    assert is_candidate(np.array([0.2, 0.2, 0.6]), C)


def test_nearest_unused_skips_taken_and_repeated_candidates() -> None:
    C = np.array([[1.0, 0.0], [0.6, 0.4], [0.0, 1.0]])
    chosen = nearest_unused(C, np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]]), taken=C[:1])
    assert chosen.tolist() == [[0.6, 0.4], [0.0, 1.0], [1.0, 0.0]]  # all used: the nearest overall again


def test_candidates_infeasible_at_a_larger_budget_are_dropped_there(tmp_path: Path) -> None:
    candidate_rows(tmp_path)
    config = load_config(write_study(tmp_path, {"candidates": "candidates.csv"}))
    search, integration = config.space("microanneal"), config.space("integration")
    assert search.candidates is not None and integration.candidates is not None
    assert len(integration.candidates) <= len(search.candidates)
    assert all(integration.is_feasible(w, tol=1e-7) for w in integration.candidates)
