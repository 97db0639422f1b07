"""Search benchmark: every searcher on the same problems, equal budgets, several seeds.

Problems: synthetic mixing laws (``syn-<K>x<m>``: K sources, m objectives, heteroscedastic noise with
reported standard errors) and simulators fit to the real RegMix and Olmix tables
(:mod:`mixopt.benchmarks.simulators`; no standard errors reported). Each run proposes batches of
``--batch`` mixtures until ``--budget`` evaluations; at each checkpoint it records

- single objective: the simulated (noise-free) outcome of the mixture the searcher *recommends*, and
  its regret against the best mixture found by a large reference screen of the simulator;
- several objectives: the hypervolume of the noise-free outcomes of every mixture evaluated so far,
  against a fixed reference point (the worst outcome of 4096 uniform mixtures).

Baselines: random search, and the RegMix procedure (``regmix-N``: N Dirichlet mixtures around the
natural distribution -> a LightGBM regression on their noisy outcomes -> the mean of the top 100 of
100k simulated mixtures by prediction -> one final run, whose simulated outcome is reported). Where an
objective is the mean of several losses (``regmix-mean``), runs report every loss (History.parts) and
``regmix-512-per-loss`` gives the RegMix procedure the same: one regression per loss, their predictions averaged.

Usage::

    python -m mixopt.benchmarks.search quality --seeds 5 --jobs 2 --out /tmp/search.jsonl
    python -m mixopt.benchmarks.search quality --fast          # smoke test, seconds
    python -m mixopt.benchmarks.search timing                  # batch of 8 at 64 sources, 500 observations
    python -m mixopt.benchmarks.search summary /tmp/search.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mixopt.search import SEARCHERS
from mixopt.search.base import History, Parts
from mixopt.search.designs import dirichlet_design, local_design
from mixopt.space import MixtureSpace, Source

SYNTHETIC = tuple(f"syn-{K}x{m}" for K in (5, 17, 64) for m in (1, 2, 3))
REAL = ("regmix-mean", "regmix-pilecc", "olmix-mean", "olmix-3")
SEARCHER_NAMES = ("botorch", "optuna-tpe", "optuna-gp", "optuna-nsga2", "random")
REGMIX_SIZES = (64, 128, 512)
RANDOM_REFERENCE = 512  # the hypervolume of this many random mixtures is the multi-objective bar
REGMIX_POOL, REGMIX_TOP = 100_000, 100
REGMIX_PER_LOSS_SIZE = 512


@dataclass
class Problem:
    """Noise-free ``expected(W) -> (n, m)`` losses, noisy ``observe(W, seed)``, a space and a prior;
    ``composition`` ``(m, P)`` when objectives average losses that runs report (else None)."""

    name: str
    space: MixtureSpace
    n_objectives: int
    natural: np.ndarray
    expected: object
    observe: object  # (W, seed) -> (values (n, m), stderr (n, m) or None, parts (n, P) or None)
    composition: np.ndarray | None = None

    @property
    def directions(self) -> tuple[str, ...]:
        return ("minimize",) * self.n_objectives


@lru_cache(maxsize=None)
def load_problem(name: str) -> Problem:
    if name.startswith("syn-"):
        from mixopt.runners.synthetic import expected_outcome, make_law, noise_sd

        K, m = (int(x) for x in name[4:].split("x"))
        law = make_law(K, m, seed=0)
        space = MixtureSpace(tuple(Source(f"s{k}") for k in range(K)))

        def observe(W: np.ndarray, seed: int):
            mean, sd = expected_outcome(law, W), noise_sd(law, W)[:, None]
            stderr = np.broadcast_to(sd, mean.shape).copy()
            return mean + np.random.default_rng(seed).normal(size=mean.shape) * sd, stderr, None

        return Problem(name, space, m, np.full(K, 1.0 / K), lambda W: expected_outcome(law, W), observe)
    from mixopt.benchmarks.simulators import load_simulator

    sim = load_simulator(name)

    def observe_simulated(W: np.ndarray, seed: int):
        parts = sim.observe_parts(W, seed)
        return parts @ sim.composition.T, None, parts if sim.reports_parts else None

    composition = sim.composition if sim.reports_parts else None
    return Problem(name, sim.space, len(sim.objectives), sim.natural, sim.expected, observe_simulated, composition)


@lru_cache(maxsize=None)
def reference(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per objective, the best simulated outcome found by a large screen ``(m,)``, and the hypervolume
    reference point (worst outcome of 4096 uniform mixtures) ``(m,)``."""
    p = load_problem(name)
    uniform = p.space.sample(4096, seed=12345)
    ref_point = p.expected(uniform).max(axis=0)
    pool = np.vstack([p.space.sample(20_000, seed=1), dirichlet_design(p.space, p.natural, 20_000, seed=2)])
    values = p.expected(pool)
    best = values.min(axis=0)
    if p.n_objectives == 1:  # refine around the best screened mixtures
        top = pool[np.argsort(values[:, 0])[:20]]
        for round_ in range(3):
            local = local_design(p.space, top, 5_000, seed=3 + round_, concentration=50.0 * (round_ + 1))
            both = np.vstack([top, local])
            v = p.expected(both)[:, 0]
            top = both[np.argsort(v)[:20]]
            best = np.minimum(best, v.min())
    return best, ref_point


def hypervolume(losses: np.ndarray, ref_point: np.ndarray) -> float:
    """Hypervolume dominated by ``losses`` ``(n, m)`` (minimized) up to ``ref_point`` ``(m,)``."""
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume
    from botorch.utils.multi_objective.pareto import is_non_dominated

    Y = -torch.as_tensor(losses, dtype=torch.float64)
    Y = Y[(Y > -torch.as_tensor(ref_point)).all(dim=1)]
    if len(Y) == 0:
        return 0.0
    return float(Hypervolume(-torch.as_tensor(ref_point, dtype=torch.float64)).compute(Y[is_non_dominated(Y)]))


def run_searcher(problem: str, searcher_name: str, seed: int, budget: int, batch: int, checkpoints: tuple[int, ...], options: dict) -> dict:
    """One search of ``budget`` evaluations; the record of each checkpoint."""
    import torch

    torch.set_num_threads(1)
    p = load_problem(problem)
    best, ref_point = reference(problem)
    if searcher_name == "botorch":
        options = {"prior": p.space.as_dict(p.natural), **options}
    searcher = SEARCHERS.create(searcher_name, options)
    history = History.empty(p.space.dim, p.directions)
    records, seconds = [], 0.0
    for round_ in range(-(-budget // batch)):
        start = time.perf_counter()
        X = searcher.propose(p.space, history, min(batch, budget - len(history)), seed=seed * 1000 + round_)
        seconds += time.perf_counter() - start
        if not all(p.space.is_feasible(x, tol=1e-7) for x in X):
            raise AssertionError(f"{searcher_name} proposed an infeasible mixture on {problem}")
        values, stderr, parts = p.observe(X, seed * 1_000_003 + round_)
        history = History(
            np.vstack([history.weights, X]), np.vstack([history.values, values]), history.directions,
            None if stderr is None else (stderr if history.stderr is None else np.vstack([history.stderr, stderr])),
            parts=None if parts is None else Parts(
                parts if history.parts is None else np.vstack([history.parts.values, parts]), p.composition
            ),
        )
        if len(history) in checkpoints:
            records.append(_record(p, history, searcher, seed, best, ref_point))
    return {"problem": problem, "method": searcher_name, "seed": seed, "propose_seconds": seconds, "checkpoints": records}


def _record(p: Problem, history: History, searcher, seed: int, best: np.ndarray, ref_point: np.ndarray) -> dict:
    true = p.expected(history.weights)
    record = {"n": len(history), "hypervolume": hypervolume(true, ref_point)}
    if p.n_objectives == 1:
        outcome = float(p.expected(searcher.recommend(p.space, history, seed=seed))[0, 0])
        record.update(outcome=outcome, regret=outcome - float(best[0]), best_evaluated=float(true.min()))
    return record


def run_regmix(problem: str, n_runs: int, seed: int, per_loss: bool = False) -> dict:
    """The RegMix procedure with ``n_runs`` training runs (single objective only); ``per_loss``: one
    regression per reported loss, the objective predicted as their mean."""
    import lightgbm as lgb

    p = load_problem(problem)
    best, ref_point = reference(problem)
    W = dirichlet_design(p.space, p.natural, n_runs, seed=seed * 7919)
    values, _, parts = p.observe(W, seed * 1_000_003)
    targets = parts if per_loss else values
    pool = dirichlet_design(p.space, p.natural, REGMIX_POOL, seed=seed * 7919 + 1)
    predicted = np.zeros(len(pool))
    for y in targets.T:
        model = lgb.LGBMRegressor(
            n_estimators=500, learning_rate=0.03, num_leaves=15, min_child_samples=5, subsample=0.8,
            subsample_freq=1, random_state=seed, n_jobs=1, verbose=-1,
        ).fit(W, y)
        predicted += model.predict(pool) / len(targets.T)
    top = pool[np.argsort(predicted)[:REGMIX_TOP]]
    final = top.mean(axis=0)
    outcome = float(p.expected(final)[0, 0])
    record = {"n": n_runs + 1, "outcome": outcome, "regret": outcome - float(best[0])}
    method = f"regmix-{n_runs}" + ("-per-loss" if per_loss else "")
    return {"problem": problem, "method": method, "seed": seed, "checkpoints": [record]}


def run_random_reference(problem: str, seed: int) -> dict:
    """Hypervolume of ``RANDOM_REFERENCE`` uniform mixtures (the multi-objective bar)."""
    p = load_problem(problem)
    _, ref_point = reference(problem)
    W = p.space.sample(RANDOM_REFERENCE, seed=seed * 31 + 7)
    record = {"n": RANDOM_REFERENCE, "hypervolume": hypervolume(p.expected(W), ref_point)}
    return {"problem": problem, "method": f"random-{RANDOM_REFERENCE}", "seed": seed, "checkpoints": [record]}


def _job(job: tuple) -> dict:
    kind, *args = job
    start = time.perf_counter()
    result = {"searcher": run_searcher, "regmix": run_regmix, "random-ref": run_random_reference}[kind](*args)
    result["wall_seconds"] = time.perf_counter() - start
    return result


def quality(args: argparse.Namespace) -> None:
    problems = args.problems or (("syn-5x1",) if args.fast else REAL + SYNTHETIC)
    searchers = args.searchers or (SEARCHER_NAMES if not args.fast else ("botorch", "random"))
    budget, batch = (16, 8) if args.fast else (args.budget, args.batch)
    checkpoints = tuple(sorted({c for c in (32, budget) if c <= budget})) if not args.fast else (16,)
    options = {"n_init": 8, "pool_size": 256, "continuous_max_sources": 0} if args.fast else {}
    options.update(args.options)
    jobs = []
    for problem in problems:
        loaded = load_problem(problem)
        m = loaded.n_objectives
        for seed in range(args.seeds):
            jobs += [("searcher", problem, s, seed, budget, batch, checkpoints, options if s == "botorch" else {}) for s in searchers]
            if m == 1 and not args.fast:
                jobs += [("regmix", problem, n, seed) for n in REGMIX_SIZES]
                if loaded.composition is not None:
                    jobs.append(("regmix", problem, REGMIX_PER_LOSS_SIZE, seed, True))
            if m > 1:
                jobs.append(("random-ref", problem, seed))
    # Expensive jobs first so that the pool ends evenly.
    jobs.sort(key=lambda j: (j[0] != "searcher", j[2] not in ("botorch", "optuna-gp")))
    results = []
    with open(args.out, "a") as out:
        for result in _map(jobs, args.jobs):
            if args.options and result["method"] == "botorch":  # a variant is not the default
                result["method"] += " " + json.dumps(args.options, sort_keys=True)
            out.write(json.dumps(result) + "\n")
            out.flush()
            results.append(result)
            print(f"done {result['problem']} {result['method']} seed {result['seed']} in {result['wall_seconds']:.0f} s", flush=True)
    print_summary(results)


def _map(jobs: list, n_jobs: int):
    if n_jobs <= 1:
        yield from map(_job, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(n_jobs) as pool:
        yield from pool.imap_unordered(_job, jobs)


def print_summary(results: list[dict]) -> None:
    """Medians over seeds of every figure, per problem, method and number of evaluations."""
    import pandas as pd

    rows = [
        {"problem": r["problem"], "method": r["method"], "seed": r["seed"], **c} for r in results for c in r["checkpoints"]
    ]
    if not rows:
        return
    table = pd.DataFrame(rows).drop_duplicates(["problem", "method", "seed", "n"], keep="last")
    figures = [c for c in ("outcome", "regret", "hypervolume") if c in table]
    summary = table.groupby(["problem", "method", "n"])[figures].median()
    summary["seeds"] = table.groupby(["problem", "method", "n"]).size()
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                           "display.max_colwidth", 120, "display.float_format", "{:.4f}".format):
        print(summary)


def timing(args: argparse.Namespace) -> None:
    """Seconds to propose a batch of 8 at 64 sources with 500 observations, default vs random."""
    import torch

    torch.set_num_threads(1)
    p = load_problem("syn-64x1")
    W = p.space.sample(args.observations, seed=0)
    values, stderr, _ = p.observe(W, 0)
    history = History(W, values, p.directions, stderr)
    seconds = {}
    for name in ("random", "botorch"):
        searcher = SEARCHERS.create(name)
        wall, cpu = time.perf_counter(), time.process_time()
        searcher.propose(p.space, history, args.batch, seed=1)
        seconds[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        print(
            f"{name}: {seconds[name][0]:.3f} s wall, {seconds[name][1]:.3f} s CPU for a batch of {args.batch} "
            f"at 64 sources with {args.observations} observations (load average {os.getloadavg()[0]:.1f})"
        )
    ratio = [b / max(r, 1e-9) for b, r in zip(seconds["botorch"], seconds["random"])]
    print(f"ratio botorch / random: {ratio[0]:.0f}x wall, {ratio[1]:.0f}x CPU")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): write an object such as '{{\"n_init\": 32}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("write an object such as '{\"n_init\": 32}'")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mixopt bench search", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="regret and hypervolume against the number of evaluations")
    q.add_argument("--problems", nargs="*", choices=REAL + SYNTHETIC)
    q.add_argument("--searchers", nargs="*", choices=SEARCHER_NAMES)
    q.add_argument("--seeds", type=int, default=5)
    q.add_argument("--budget", type=int, default=64)
    q.add_argument("--batch", type=int, default=8)
    q.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    q.add_argument("--out", default=os.devnull, help="append one JSON line per run to this file")
    q.add_argument("--options", type=_json_object, default={},
                   help='options of the botorch searcher as JSON, e.g. \'{"local_share": 1.0}\'; its results are labelled with them')
    q.add_argument("--fast", action="store_true", help="smoke test: one small problem, one seed, 16 evaluations")
    t = sub.add_parser("timing", help="proposal time at 64 sources")
    t.add_argument("--observations", type=int, default=500)
    t.add_argument("--batch", type=int, default=8)
    s = sub.add_parser("summary", help="medians of results files written by quality --out")
    s.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "quality":
        quality(args)
    elif args.command == "timing":
        timing(args)
    else:
        results = []
        for path in args.paths:
            with open(path) as f:
                results += [json.loads(line) for line in f if line.strip()]
        print_summary(results)


if __name__ == "__main__":
    main()
