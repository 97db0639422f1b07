"""The two-fidelity benchmark problems: rank correlation as built, a runner that simulates each fidelity,
studies of equal total cost, and the paired summary."""

from __future__ import annotations

import numpy as np
import yaml
from scipy.stats import spearmanr

from mixopt.benchmarks import fidelity
from mixopt.config import parse_config
from mixopt.trials import RunSpec


def test_the_cheap_fidelity_ranks_like_the_target_only_in_part_and_its_best_is_not_the_targets():
    p = fidelity.load_problem("synthetic-2f")
    W = p.space.sample(3000, seed=5)
    assert abs(spearmanr(p.cheap(W), p.target(W))[0] - fidelity.RANK_CORR) < 0.05
    assert p.target(W[np.argmin(p.cheap(W))][None])[0] - fidelity.best_target("synthetic-2f") > 5 * p.noise * fidelity.TARGET_NOISE_FACTOR
    assert fidelity.best_target("synthetic-2f") <= p.target(W).min()


def test_the_runner_measures_each_fidelity_with_its_noise():
    p = fidelity.load_problem("synthetic-2f")
    w = p.space.sample(1, seed=0)[0]
    runner = fidelity.TwoFidelityRunner("synthetic-2f")
    mixture = p.space.as_dict(w)

    def observed(name: str, seed: int) -> float:
        spec = RunSpec(trial=0, mixture=mixture, fidelity=name, tokens=1.0, seed=seed, output_dir="")
        return runner.run(spec).metrics["loss"]

    for name, mean, sd in (("cheap", p.cheap(w[None])[0], p.noise), ("target", p.target(w[None])[0], p.noise * 0.3)):
        draws = np.array([observed(name, seed) for seed in range(400)])
        assert abs(draws.mean() - mean) < 4 * sd / 20 and abs(draws.std() / sd - 1) < 0.15


def test_every_method_gets_the_same_total_cost():
    budget, target = 8, fidelity.TARGET_TOKENS
    for method in fidelity.METHODS:
        config = parse_config(yaml.safe_dump(fidelity.study_config("synthetic-2f", method, 0, budget)))
        tokens = {f.name: f.tokens for f in config.fidelities}
        if method == "single":
            cost = config.n_trials * tokens["target"]
        elif method == "rounds":
            cost = config.n_trials * tokens["cheap"] + fidelity.ROUNDS * tokens["target"]
        else:
            assert config.budget is not None
            cost = config.budget.cost
        assert cost == budget * target, method


def test_the_summary_pairs_seeds_and_reports_a_tie_inside_the_noise():
    rows = [{"problem": "synthetic-2f", "method": m, "seed": s, "budget": 8, "regret": r, "runs": {"cheap": 1, "target": 1},
             "seconds": 1.0} for s in range(6) for m, r in (("single", 0.01 + 0.001 * (s % 2)), ("rounds", 0.02),
                                                             ("cost-aware", 0.01 + 0.001 * ((s + 1) % 2)))]
    lines = fidelity.summary(rows)
    assert any("cost-aware vs single: better on 3/6 (worse 3)" in line and line.endswith(": tie") for line in lines)
    assert any("cost-aware vs rounds: better on 6/6" in line and line.endswith(": better") for line in lines)
