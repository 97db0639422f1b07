"""Cost-aware fidelity choice against single-fidelity search and fixed rounds, at equal total cost (#20).

Problems: two fidelities, the cheap run ``1 / COST_RATIO`` of the target's tokens, one loss (lower is
better), and a cheap fidelity that ranks mixtures like the target only in part (Spearman ``RANK_CORR``
over uniform mixtures of the space):

- ``synthetic-2f``: the target is the synthetic runner's mixing law (:mod:`mixopt.runners.synthetic`, 6
  sources, one loss, problem seed 0); the cheap fidelity is that law plus a smooth discrepancy.
- ``regmix-2f``: the cheap fidelity is the RegMix 1M simulator (:mod:`mixopt.benchmarks.simulators`:
  the mean of 13 domain losses, 17 sources, fit to the real table); the target, a simulated larger scale,
  is that mean plus a smooth discrepancy. A construction, not a measurement: no table of both scales
  for the same mixtures is public here.

The discrepancy is ``delta(w) = u . w + (w - c)' A (w - c)`` (``u`` normal, ``A = B'B / K`` with ``B``
normal, ``c`` a uniform mixture; drawn from the problem's seed), scaled by bisection until the two
fidelities' rank correlation is ``RANK_CORR``: the best cheap mixture is then not the best target one.
Noise: Gaussian, the base law's sd at the cheap fidelity and ``TARGET_NOISE_FACTOR`` of it at the target.

Methods, each a study run through :func:`mixopt.controller.run` (what ``mixopt study run`` does; serial
executor, ``gp`` surrogate, botorch searcher, batches of ``BATCH``) with a total cost of ``budget``
target runs:

- ``single``: one fidelity, the target; ``n_trials = budget``; the study's recommendation is scored.
- ``rounds``: ``ROUNDS`` integration rounds, ``n_trials = (budget - ROUNDS) x COST_RATIO`` microanneals;
  the last promoted mixture is scored.
- ``cost-aware``: ``fidelity_policy: cost-aware``, ``budget.cost = budget x target tokens``; its
  promoted mixture is scored.

Score: regret, the target's noise-free loss at the exported mixture minus the best of a large screen of
the space (refined locally), per seed; seeds are paired (the study seed is the seed, the problem fixed).
``python -m mixopt.benchmarks.fidelity --seeds 10 --out results.json`` runs it; ``--summary`` prints.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import spearmanr

from mixopt.runners.base import Runner
from mixopt.search.designs import local_design
from mixopt.space import MixtureSpace, Source
from mixopt.trials import Evaluation, RunSpec

COST_RATIO = 16  # target tokens over cheap tokens
RANK_CORR = 0.7  # Spearman correlation of the two fidelities over uniform mixtures
TARGET_NOISE_FACTOR = 0.3  # target noise sd over cheap noise sd (longer runs vary less between seeds)
ROUNDS = 2
BATCH = 8
TARGET_TOKENS = 1.6e10
PROBLEMS = ("synthetic-2f", "regmix-2f")
METHODS = ("single", "rounds", "cost-aware")
SCREEN = 20_000  # uniform mixtures screened for the reference optimum (then refined locally)


@dataclass(frozen=True)
class TwoFidelity:
    """A problem: ``space``; noise-free ``cheap(W)`` and ``target(W)`` ``(n,)`` for ``W`` ``(n, K)``; the
    cheap fidelity's noise sd ``noise``; ``best`` the reference optimum of the target."""

    name: str
    space: MixtureSpace
    base: object
    delta_u: np.ndarray
    delta_a: np.ndarray
    delta_c: np.ndarray
    scale: float
    noise: float
    target_is_base: bool

    def _base(self, W: np.ndarray) -> np.ndarray:
        if self.name == "synthetic-2f":
            from mixopt.runners.synthetic import expected_outcome

            return expected_outcome(self.base, W)[:, 0]
        return self.base.expected(W)[:, 0]

    def _delta(self, W: np.ndarray) -> np.ndarray:
        centred = W - self.delta_c
        return W @ self.delta_u + np.einsum("ni,ij,nj->n", centred, self.delta_a, centred)

    def cheap(self, W: np.ndarray, scale: float | None = None) -> np.ndarray:
        W = np.atleast_2d(W)
        shift = (self.scale if scale is None else scale) * self._delta(W)
        return self._base(W) + (shift if self.target_is_base else 0.0)

    def target(self, W: np.ndarray, scale: float | None = None) -> np.ndarray:
        W = np.atleast_2d(W)
        shift = (self.scale if scale is None else scale) * self._delta(W)
        return self._base(W) + (0.0 if self.target_is_base else shift)


@cache
def load_problem(name: str) -> TwoFidelity:
    """The named problem, its discrepancy scaled to ``RANK_CORR`` (deterministic)."""
    rng = np.random.default_rng(0)
    if name == "synthetic-2f":
        from mixopt.runners.synthetic import make_law

        K = 6
        base, space, noise, target_is_base = make_law(K, 1, seed=0), MixtureSpace(tuple(Source(f"s{i}") for i in range(K))), 0.01, True
    elif name == "regmix-2f":
        from mixopt.benchmarks.simulators import load_simulator

        sim = load_simulator("regmix-mean")
        base, space, noise, target_is_base = sim, sim.space, float(sim.noise[0]), False
        K = space.dim
    else:
        raise KeyError(f"unknown problem {name}: choose one of {', '.join(PROBLEMS)}")
    B = rng.normal(size=(K, K))
    problem = TwoFidelity(name, space, base, rng.normal(size=K), B.T @ B / K, space.sample(1, seed=7)[0], 0.0, noise,
                          target_is_base)
    W = space.sample(2000, seed=11)
    low, high = 0.0, 1.0
    while spearmanr(problem.cheap(W, high), problem.target(W, high))[0] > RANK_CORR:
        high *= 2
    for _ in range(40):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if spearmanr(problem.cheap(W, mid), problem.target(W, mid))[0] > RANK_CORR else (low, mid)
    return TwoFidelity(**{**problem.__dict__, "scale": 0.5 * (low + high)})


@cache
def best_target(name: str) -> float:
    """The reference optimum of the problem's target: a uniform screen refined by local draws."""
    p = load_problem(name)
    pool = p.space.sample(SCREEN, seed=1)
    values = p.target(pool)
    top = pool[np.argsort(values)[:20]]
    best = float(values.min())
    for round_ in range(3):
        both = np.vstack([top, local_design(p.space, top, 5_000, seed=3 + round_, concentration=50.0 * (round_ + 1))])
        v = p.target(both)
        top, best = both[np.argsort(v)[:20]], min(best, float(v.min()))
    return best


class TwoFidelityRunner(Runner):
    """Runs of a :class:`TwoFidelity` problem: ``problem`` its name; ``target`` the fidelity name simulated
    as the target (any other is cheap). Reports ``loss`` (no standard error, as a real run)."""

    def __init__(self, problem: str = "synthetic-2f", target: str = "target") -> None:
        self.problem = problem
        self.target = target

    def run(self, spec: RunSpec) -> Evaluation:
        p = load_problem(self.problem)
        w = p.space.from_dict(spec.mixture)[None, :]
        at_target = spec.fidelity == self.target
        mean = p.target(w)[0] if at_target else p.cheap(w)[0]
        sd = p.noise * (TARGET_NOISE_FACTOR if at_target else 1.0)
        observed = mean + np.random.default_rng(spec.seed).normal(0.0, sd)
        return Evaluation(metrics={"loss": float(observed)}, cost={"tokens": float(spec.tokens)}, runner="two-fidelity")


def study_config(problem: str, method: str, seed: int, budget: int) -> dict:
    """The study of ``method`` on ``problem`` at a total cost of ``budget`` target runs (a YAML mapping)."""
    p = load_problem(problem)
    cheap = {"name": "cheap", "tokens": TARGET_TOKENS / COST_RATIO}
    target = {"name": "target", "tokens": TARGET_TOKENS}
    config = {
        "name": f"{problem}-{method}-{seed}", "seed": seed, "batch_size": BATCH, "searcher": "botorch", "surrogate": "gp",
        "sources": [{"name": s.name, "max_weight": float(s.max_weight)} for s in p.space.sources],
        "objectives": [{"name": "loss", "metric": "loss", "direction": "minimize"}],
        "runner": {"name": "mixopt.benchmarks.fidelity:TwoFidelityRunner", "options": {"problem": problem}},
        "executor": {"name": "serial"},
    }
    if method == "single":
        return {**config, "fidelities": [target], "n_trials": budget}
    if method == "rounds":
        return {**config, "fidelities": [cheap, target], "rounds": ROUNDS, "n_trials": (budget - ROUNDS) * COST_RATIO}
    return {**config, "fidelities": [cheap, target], "fidelity_policy": "cost-aware",
            "budget": {"cost": budget * TARGET_TOKENS, "unit": "tokens"}}


def run_method(problem: str, method: str, seed: int, budget: int) -> dict:
    """One study, run as ``mixopt study run`` runs it, in a temporary folder; its regret and its runs."""
    from mixopt import controller
    from mixopt.config import parse_config
    from mixopt.study import Study

    p = load_problem(problem)
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(yaml.safe_dump(study_config(problem, method, seed, budget)), directory=Path(folder))
        study = Study.open(config)
        start = time.perf_counter()
        outcome = controller.run(study)
        seconds = time.perf_counter() - start
        mixture = outcome.promotion.mixture if outcome.promotion is not None else None
        if mixture is None:
            assert outcome.recommendation is not None
            weights = outcome.recommendation.weights
        else:
            weights = p.space.from_dict(mixture)
        trials = study.trials()
        counts = {f.name: sum(t.user_attrs.get("fidelity") == f.name for t in trials) for f in config.fidelities}
    regret = float(p.target(weights[None])[0] - best_target(problem))
    return {"problem": problem, "method": method, "seed": seed, "budget": budget, "regret": regret,
            "regret_sd": regret / (p.noise * TARGET_NOISE_FACTOR), "runs": counts, "seconds": seconds,
            "weights": weights.tolist()}


def summary(results: list[dict]) -> list[str]:
    """Per problem: each method's median regret (quartiles) and the cost-aware policy against the others
    on paired seeds (:func:`mixopt.benchmarks.search.paired_comparison`)."""
    from mixopt.benchmarks.search import paired_comparison, quartiles

    lines = []
    for problem in sorted({r["problem"] for r in results}):
        by = {m: {r["seed"]: r for r in results if r["problem"] == problem and r["method"] == m} for m in METHODS}
        p = load_problem(problem)
        lines.append(f"{problem} (K={p.space.dim}, cheap/target rank corr {RANK_CORR}, cost ratio {COST_RATIO}, "
                     f"target noise sd {p.noise * TARGET_NOISE_FACTOR:.4f})")
        for method, rows in by.items():
            if rows:
                q1, q2, q3 = quartiles([r["regret"] for r in rows.values()])
                runs = np.mean([[r["runs"].get("cheap", 0), r["runs"]["target"]] for r in rows.values()], axis=0)
                lines.append(f"  {method:<11} n={len(rows):>2} regret median {q2:.4f} [{q1:.4f}, {q3:.4f}]  mean runs "
                             f"cheap {runs[0]:.0f} target {runs[1]:.1f}  {np.mean([r['seconds'] for r in rows.values()]):.0f} s")
        for other in ("single", "rounds"):
            seeds = sorted(set(by["cost-aware"]) & set(by[other]))
            if len(seeds) >= 2:
                c = paired_comparison([by["cost-aware"][s]["regret"] for s in seeds], [by[other][s]["regret"] for s in seeds],
                                      lower_is_better=True)
                lines.append(f"  cost-aware vs {other}: better on {c['wins']}/{c['n']} (worse {c['losses']}), median gain "
                             f"{c['median_diff']:.4f} CI [{c['ci'][0]:.4f}, {c['ci'][1]:.4f}], sign p={c['sign_p']:.3f}, "
                             f"Wilcoxon p={c['wilcoxon_p']:.3f}: {c['verdict']}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=8, help="total cost, in target runs")
    parser.add_argument("--out", type=Path, help="JSON lines file: results appended as they come, and reused")
    parser.add_argument("--summary", action="store_true", help="print the summary of --out and stop")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out and args.out.exists() else []
    if not args.summary:
        done = {(r["problem"], r["method"], r["seed"], r["budget"]) for r in results}
        for seed in range(args.seeds):  # seed-major: a stopped run holds complete paired seeds
            for problem in args.problems:
                for method in args.methods:
                    if (problem, method, seed, args.budget) in done:
                        continue
                    result = run_method(problem, method, seed, args.budget)
                    results.append(result)
                    print(f"{problem} {method} seed {seed}: regret {result['regret']:.4f} runs {result['runs']} "
                          f"{result['seconds']:.0f} s", flush=True)
                    if args.out:
                        with open(args.out, "a") as f:
                            f.write(json.dumps(result) + "\n")
    print("\n".join(summary([r for r in results if r["budget"] == args.budget])))


if __name__ == "__main__":
    main()
