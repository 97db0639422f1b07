"""Pool replay (``mixopt.benchmarks.pool``): problems built from the published tables, a one-seed smoke of the
command, and the committed results regenerating the committed tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixopt.benchmarks import pool

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@pytest.mark.parametrize(("name", "rows", "sources", "objectives"), [
    ("regmix-pilecc", 768, 17, 1), ("regmix-mean", 768, 17, 1), ("olmix-mean", 512, 64, 1), ("olmix-3", 512, 64, 3),
    ("dclm-mean", 127, 24, 1), ("dclm-3", 127, 24, 3),
])
def test_each_pool_is_a_table_of_real_runs(name: str, rows: int, sources: int, objectives: int) -> None:
    p = pool.load_pool(name)
    assert p.rows.shape == (rows, sources) and p.values.shape == (rows, objectives)
    assert np.allclose(p.rows.sum(axis=1), 1.0) and np.all(np.isfinite(p.values))
    assert np.array_equal(p.index_of(p.rows[[5, 3]]), [5, 3])
    if p.parts is not None:  # the objective is the composition of the measured parts
        assert np.allclose(p.parts @ p.composition.T, p.values)
    assert len(p.olmix_targets) == rows and p.olmix_targets.shape[1] == len(p.olmix_weights)
    if name.startswith("regmix"):  # Olmix fits the objective's own losses
        assert np.allclose(p.olmix_targets @ p.olmix_weights, p.values[:, 0])


def test_regret_is_measured_against_the_pools_best_row() -> None:
    p = pool.load_pool("dclm-mean")
    best = int(np.argmin(p.values[:, 0]))
    record = pool._record(p, np.arange(10), np.array([best]))
    assert record["regret"] == 0.0 and record["outcome"] == p.values[best, 0]
    assert pool._record(p, np.arange(10), np.array([0]))["regret"] >= 0.0


def test_the_default_runs_distinct_pool_rows_and_answers_with_one(tmp_path: Path) -> None:
    """A one-seed smoke of the committed command (``quality --fast``), whose results ``summary`` reprints."""
    out = tmp_path / "pool.jsonl"
    pool.main(["quality", "--fast", "--out", str(out)])
    results = pool.read_results([out])
    methods = {r["method"] for r in results}
    assert {"botorch", "random", "random-best-measured", "regmix-16", "regmix-16-top128"} <= methods
    p = pool.load_pool("dclm-mean")
    for r in results:
        (checkpoint,) = r["checkpoints"]
        assert checkpoint["n"] == 16 and 0 <= checkpoint["row"] < len(p.rows)
        assert checkpoint["regret"] == pytest.approx(p.values[checkpoint["row"], 0] - p.values[:, 0].min())


@pytest.mark.parametrize("name", sorted(path.stem for path in RESULTS.glob("*.jsonl")))
def test_committed_results_regenerate_the_committed_table(name: str, capsys) -> None:
    """``summary`` of ``benchmarks/results/NAME.jsonl`` prints ``NAME.txt`` exactly (the table in BENCHMARKS.md)."""
    pool.main(["summary", str(RESULTS / f"{name}.jsonl")])
    assert capsys.readouterr().out == (RESULTS / f"{name}.txt").read_text()
