"""The synthetic mixing-law runner: real tradeoffs, heteroscedastic noise, an imperfect integration fidelity."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
from scipy.stats import spearmanr

from mixopt.pareto import non_dominated
from mixopt.runners import RUNNERS
from mixopt.runners.synthetic import SyntheticRunner, expected_outcome, make_law, noise_sd
from mixopt.space import MixtureSpace, Source
from mixopt.trials import RunSpec

METRICS = ["math_loss", "code_loss", "qa_loss"]
NAMES = ["web", "code", "math", "qa", "books", "instructions"]
SIMPLEX = MixtureSpace(tuple(Source(n) for n in NAMES))


def spec(w: np.ndarray, seed: int = 0, fidelity: str = "microanneal") -> RunSpec:
    return RunSpec(trial=0, mixture=dict(zip(NAMES, map(float, w), strict=True)), fidelity=fidelity, tokens=1e10, seed=seed, output_dir="unused")


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    return SIMPLEX.sample(4000, seed=3)


@pytest.mark.parametrize("problem_seed", [0, 7, 13])
def test_objectives_trade_off(samples: np.ndarray, problem_seed: int):
    law = make_law(len(NAMES), 3, seed=problem_seed)
    losses = expected_outcome(law, samples)
    best = [samples[np.argmin(losses[:, o])] for o in range(3)]
    # Each objective's best mixture is clearly worse on the others than their own best.
    for o in range(3):
        for other in range(3):
            if other != o:
                assert expected_outcome(law, best[o])[0, other] > losses[:, other].min() + 0.05
    assert non_dominated(losses[:1000], ["minimize"] * 3).sum() >= 20
    correlations = np.corrcoef(losses.T)[np.triu_indices(3, 1)]
    assert (correlations < 0).all()


@pytest.mark.parametrize("problem_seed", [0, 7, 13])
def test_noise_spread_varies_across_the_simplex_by_a_large_factor(problem_seed: int):
    law = make_law(len(NAMES), 3, seed=problem_seed)
    vertices = noise_sd(law, np.eye(len(NAMES)))
    assert vertices.max() / vertices.min() > 5
    assert vertices.max() / vertices.min() < 25  # bounded by the design's 25x


def test_observed_spread_matches_the_reported_standard_error():
    runner = SyntheticRunner(metrics=METRICS, problem_seed=7)
    law = runner.law(list(NAMES))
    sd = noise_sd(law, np.eye(len(NAMES)))
    quiet, loud = np.eye(len(NAMES))[np.argmin(sd)], np.eye(len(NAMES))[np.argmax(sd)]
    spreads = {}
    for name, w in (("quiet", quiet), ("loud", loud)):
        runs = [runner.run(spec(w, seed)) for seed in range(300)]
        observed = np.array([[r.metrics[m] for m in METRICS] for r in runs])
        spreads[name] = observed.std(axis=0)
        assert runs[0].stderr["math_loss"] == pytest.approx(noise_sd(law, w)[0])
        np.testing.assert_allclose(spreads[name], runs[0].stderr["math_loss"], rtol=0.2)
        np.testing.assert_allclose(observed.mean(axis=0), expected_outcome(law, w)[0], atol=4 * sd.max() / np.sqrt(300))
    assert spreads["loud"].mean() / spreads["quiet"].mean() > 5


def test_integration_is_a_monotone_but_imperfect_transform(samples: np.ndarray):
    law = make_law(len(NAMES), 3, seed=7)
    micro, integration = expected_outcome(law, samples), expected_outcome(law, samples, integration=True)
    for o in range(3):
        assert 0.99 < spearmanr(micro[:, o], integration[:, o])[0] < 0.99999
        # Near the optimum, where the choice is made, the ranks disagree noticeably.
        top = np.argsort(micro[:, o])[: len(samples) // 10]
        assert 0.85 < spearmanr(micro[top, o], integration[top, o])[0] < 0.995
    assert noise_sd(law, samples[:5], integration=True) == pytest.approx(0.3 * noise_sd(law, samples[:5]))


def test_same_seed_same_metrics_and_integration_fidelity_by_name():
    runner = RUNNERS.create("synthetic", {"metrics": METRICS, "problem_seed": 7, "integration": ["full"]})
    w = np.array([0.3, 0.1, 0.2, 0.2, 0.1, 0.1])
    first, again, other = runner.run(spec(w, 4)), runner.run(spec(w, 4)), runner.run(spec(w, 5))
    assert first.metrics == again.metrics and first.metrics != other.metrics
    assert set(first.metrics) == set(METRICS) and first.runner == "synthetic"
    assert first.cost["tokens"] == 1e10
    full = runner.run(spec(w, 4, fidelity="full")).metrics
    law = runner.law(list(NAMES))
    assert full["qa_loss"] == pytest.approx(expected_outcome(law, w, integration=True)[0, 2], abs=5 * noise_sd(law, w)[0])
    clone = pickle.loads(pickle.dumps(runner))  # executors ship runners to other processes
    assert clone.run(spec(w, 4)).metrics == first.metrics


def test_delay_makes_a_run_take_that_long():
    start = time.perf_counter()
    result = SyntheticRunner(delay=0.2).run(spec(np.full(len(NAMES), 1 / len(NAMES))))
    assert time.perf_counter() - start >= 0.2
    assert result.cost["seconds"] >= 0.2
