"""The search benchmark end to end (fast mode), and the default searcher's margin over random search."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixopt.benchmarks.search import hypervolume, main, run_searcher

SEEDS = range(5)


def test_fast_mode_prints_medians_and_writes_one_record_per_run(tmp_path, capsys):
    out = tmp_path / "runs.jsonl"
    main(["quality", "--fast", "--seeds", "1", "--out", str(out)])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["method"] for r in records) == ["botorch", "random"]
    for record in records:
        (checkpoint,) = record["checkpoints"]
        assert checkpoint["n"] == 16 and checkpoint["regret"] >= -1e-9
    assert "regret" in capsys.readouterr().out


def test_a_variant_of_the_default_is_run_and_labelled_with_its_options(tmp_path, capsys):
    out = tmp_path / "runs.jsonl"
    main(["quality", "--fast", "--seeds", "1", "--searchers", "botorch", "--options", '{"local_share": 1.0}', "--out", str(out)])
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["method"] == 'botorch {"local_share": 1.0}'
    with pytest.raises(SystemExit) as bad:
        main(["quality", "--fast", "--options", "local_share=1"])
    assert bad.value.code == 2 and "not JSON" in capsys.readouterr().err


def test_hypervolume_of_a_known_front():
    losses = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0]])
    assert hypervolume(losses, np.array([4.0, 4.0])) == pytest.approx(3 + 2 + 1)
    assert hypervolume(losses, np.array([0.5, 0.5])) == 0.0


@pytest.mark.slow
def test_default_beats_random_search_on_a_known_optimum():
    """5 sources, one objective, 16 evaluations (8 design + 8 model-based), seeds 0-4: the default's
    recommended mixture has at most half the median regret of random search's, and wins on 4 of 5 seeds."""
    options = {"n_init": 8, "pool_size": 512}
    regret = {
        name: np.array([
            run_searcher("syn-5x1", name, seed, 16, 8, (16,), options if name == "botorch" else {})["checkpoints"][0]["regret"]
            for seed in SEEDS
        ])
        for name in ("botorch", "random")
    }
    assert np.median(regret["botorch"]) <= 0.5 * np.median(regret["random"]), regret
    assert (regret["botorch"] < regret["random"]).sum() >= 4, regret


def test_a_simulated_mean_of_losses_reports_each_loss_with_correlated_run_noise():
    """Fit to a table whose three losses share a run-level shock: the objective is their mean, a run
    reports all three, their noise is positively correlated, and the mean's noise matches the table's."""
    import pandas as pd

    from mixopt.benchmarks.simulators import fit_simulator, nearest_pair_noise

    rng = np.random.default_rng(0)
    W = pd.DataFrame(rng.dirichlet(np.ones(4), 300), columns=list("abcd"))
    clean = np.column_stack([1.0 / (0.2 + W[c]) for c in "abc"])
    Y = pd.DataFrame(clean + rng.normal(0, 0.05, (300, 1)) + rng.normal(0, 0.02, (300, 3)), columns=["la", "lb", "lc"])
    sim = fit_simulator("toy", W, Y, {"mean": ["la", "lb", "lc"]})
    assert sim.reports_parts and sim.parts == ("la", "lb", "lc")
    np.testing.assert_allclose(sim.composition, [[1 / 3] * 3])
    cov = sim.noise_chol @ sim.noise_chol.T
    assert (cov[np.triu_indices(3, 1)] > 0).all()
    fitted = sim.expected(W.to_numpy())[:, 0]
    assert sim.noise[0] == pytest.approx(nearest_pair_noise(W.to_numpy(), Y.mean(axis=1).to_numpy(), fitted), rel=1e-6)
    w = np.full((2000, 4), 0.25)
    parts = sim.observe_parts(w, seed=1)
    np.testing.assert_allclose(parts.mean(axis=0), sim.expected_parts(w[:1])[0], atol=4 * parts.std(axis=0).max() / np.sqrt(2000))
    np.testing.assert_allclose(sim.observe(w[:5], seed=1), parts[:5] @ sim.composition.T)
