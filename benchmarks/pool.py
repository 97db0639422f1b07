"""Pool replay: searchers judged on measured outcomes of real training runs, with no simulator.

A problem's candidates are a published table's real runs; "running" a mixture looks up the value that
was measured for it, and every method hands over one row of the table as its answer. Regret = that row's
measured outcome minus the best measured outcome in the pool (so never negative). Problems:

- ``regmix-pilecc``, ``regmix-mean``: RegMix's 512 training plus 256 held-out runs (768 rows, 17 Pile
  domains); the Pile-CC validation loss, and the mean of the 13 validation losses (its 13 losses are the
  runs' parts, as a study that averages them records them);
- ``olmix-mean``, ``olmix-3``: Olmix's 512 runs over 64 domains; the mean BPB over the kept tasks (parts:
  the math, code and QA family means, weighted by their number of tasks), and the three families as three
  objectives;
- ``dclm-mean``, ``dclm-3``: the same on Olmix's 127 runs over 24 DCLM topics.

Methods (``N`` runs each; paired by seed: a seed's baselines draw the same rows):

- ``botorch`` (the default) and ``random``: the product's code path. The pool is the study's candidate set
  (:attr:`MixtureSpace.candidates`, as ``candidates: FILE`` in a study config); batches come from
  :func:`mixopt.search.propose_within` with the study's batch seeds, and the answer is
  :func:`mixopt.recommend.recommend_search`, which picks among the candidates. ``random-best-measured``:
  the best measured row of the same random runs.
- ``regmix-N``: RegMix's procedure on N rows drawn at random from the pool (the RegMix table is its own
  swarm); LightGBM with its regression settings on the objective; the answer is the pool row predicted
  best. ``regmix-N-top128``: the pool row nearest to the mean of its top 128 of 100k Dirichlet(prior)
  candidates (RegMix's own final step).
- ``olmix-N``: Olmix on N random rows (:mod:`mixopt.benchmarks.olmix`: one law per task, the KL-regularised
  proposal toward the prior); the answer is the pool row nearest to its proposal.

Several objectives: the hypervolume (reference: the pool's worst value per objective) of the measured
values of the rows a method ran (``hypervolume_evaluated``) and of its recommended front (``hypervolume``).

The prior (the natural mixture a searcher and RegMix's sampler centre on) is the mean of the pool's rows.

Usage::

    python -m mixopt.benchmarks.pool quality --seeds 20 --jobs 2 --out benchmarks/results/pool.jsonl
    python -m mixopt.benchmarks.pool quality --fast           # smoke test: one problem, one seed
    python -m mixopt.benchmarks.pool summary benchmarks/results/pool.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pandas as pd

from mixopt.benchmarks import olmix
from mixopt.benchmarks.search import (
    REGMIX_LGBM,
    REGMIX_POOL,
    REGMIX_TEMPERATURE,
    REGMIX_TOP,
    dirichlet_pool,
    hypervolume,
    json_object,
    map_jobs,
    summary_lines,
)
from mixopt.benchmarks.simulators import OLMIX_META, olmix_families, olmix_runs, regmix_table, table_space
from mixopt.recommend import recommend_search
from mixopt.search import SEARCHERS, propose_within
from mixopt.seeding import batch_seed
from mixopt.space import MixtureSpace
from mixopt.trials import History, Parts

PROBLEMS = ("regmix-pilecc", "regmix-mean", "olmix-mean", "olmix-3", "dclm-mean", "dclm-3")
SIZES = (16, 32, 64, 256)
DEFAULT = "botorch"


@dataclass(frozen=True)
class Pool:
    """A table as a problem. ``space`` has the rows as its candidates; ``values`` ``(c, m)`` measured
    objectives (lower is better); ``parts`` ``(c, P)`` and ``composition`` ``(m, P)`` where an objective
    averages measured metrics; ``olmix_targets`` ``(c, T)`` and ``olmix_weights`` ``(T,)`` what Olmix fits
    its laws to and how it weighs them (its fit config's targets on the Olmix tables; the objective's
    losses on RegMix's)."""

    name: str
    space: MixtureSpace
    natural: np.ndarray
    values: np.ndarray
    parts: np.ndarray | None
    composition: np.ndarray | None
    olmix_targets: np.ndarray
    olmix_weights: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        assert self.space.candidates is not None
        return self.space.candidates

    @property
    def n_objectives(self) -> int:
        return self.values.shape[1]

    def index_of(self, W: np.ndarray) -> np.ndarray:
        """The pool row of each mixture of ``W`` ``(n, K)`` (the nearest in L1) ``(n,)``."""
        return np.array([int(np.argmin(np.abs(self.rows - w).sum(axis=1))) for w in np.atleast_2d(W)])

    def history(self, index: np.ndarray) -> History:
        """The history of having run the rows ``index``: their measured values and parts."""
        parts = None if self.parts is None else Parts(self.parts[index], self.composition)
        return History(self.rows[index], self.values[index], ("minimize",) * self.n_objectives, parts=parts)


def _normalised(W: pd.DataFrame) -> np.ndarray:
    Wn = W.to_numpy(float)
    return Wn / Wn.sum(axis=1, keepdims=True)


@cache
def load_pool(name: str) -> Pool:
    """One of :data:`PROBLEMS` (the tables in ``benchmarks/data``)."""
    if name not in PROBLEMS:
        raise KeyError(f"unknown pool problem '{name}': choose one of {', '.join(PROBLEMS)}")
    if name.startswith("regmix"):
        (W, Y), (W_test, Y_test) = regmix_table("train"), regmix_table("test")
        W, Y = pd.concat([W, W_test], ignore_index=True), pd.concat([Y, Y_test], ignore_index=True)
        losses = Y.to_numpy(float)
        if name == "regmix-pilecc":
            y = Y[["pile_cc"]].to_numpy(float)
            parts = composition = None
            targets, target_weights = y, np.ones(1)
        else:
            y = losses.mean(axis=1, keepdims=True)
            parts, composition = losses, np.full((1, losses.shape[1]), 1.0 / losses.shape[1])
            targets, target_weights = losses, composition[0]
    else:
        prefix = "dclm" if name.startswith("dclm") else "full_recomputation"
        W, M = olmix_runs(prefix)
        families = olmix_families(list(M.columns))
        family_means = np.column_stack([M[families[f]].mean(axis=1).to_numpy() for f in ("math", "code", "qa")])
        setup = olmix.published_setup(list(W.columns))
        assert setup is not None, f"{name}: Olmix publishes no setup for this table"
        metrics = M.drop(columns=[c for c in OLMIX_META if c in M.columns])
        targets, _, target_weights = olmix.olmix_targets(metrics, per_family=setup.per_family)
        if name.endswith("-mean"):
            y = M[families["mean"]].to_numpy(float).mean(axis=1, keepdims=True)
            sizes = np.array([len(families[f]) for f in ("math", "code", "qa")], float)
            parts, composition = family_means, (sizes / sizes.sum())[None]
        else:
            y, parts, composition = family_means, None, None
    rows = _normalised(W)
    space, _ = table_space(W)
    space = MixtureSpace(tuple(replace(s, max_weight=1.0) for s in space.sources), candidates=rows)
    if len(space.candidates) != len(rows):
        raise AssertionError(f"{name}: {len(rows) - len(space.candidates)} table rows are not mixtures")
    return Pool(name, space, rows.mean(axis=0), y, parts, composition, targets, target_weights)


# -- methods ----------------------------------------------------------------------------------------
def run_searcher(problem: str, searcher_name: str, seed: int, budget: int, batch: int,
                 checkpoints: tuple[int, ...], options: dict | None = None) -> list[dict]:
    """The product's search on the pool: batches from ``propose_within`` (batch ``i`` seeded
    ``batch_seed(seed, i)``), the answer from ``recommend_search`` at each checkpoint. ``options``: the
    searcher's options (a variant, labelled with them; the prior is the pool's mean row for botorch)."""
    import torch

    torch.set_num_threads(1)
    p = load_pool(problem)
    prior = {"prior": p.space.as_dict(p.natural)} if searcher_name == "botorch" else {}
    searcher = SEARCHERS.create(searcher_name, {**prior, **(options or {})})
    label = searcher_name + (" " + json.dumps(options, sort_keys=True) if options else "")
    index = np.zeros(0, dtype=int)
    records, measured = [], []
    seconds = 0.0
    for round_ in range(-(-budget // batch)):
        start = time.perf_counter()
        history = p.history(index)
        X = propose_within(searcher, p.space, history, min(batch, budget - len(index)), seed=batch_seed(seed, round_))
        seconds += time.perf_counter() - start
        index = np.concatenate([index, p.index_of(X)])
        if len(index) in checkpoints:
            history = p.history(index)
            start = time.perf_counter()
            rec = recommend_search(searcher, p.space, history, seed=seed)
            records.append(_record(p, index, p.index_of(rec.front_weights)))
            records[-1]["recommend_seconds"] = time.perf_counter() - start
            if searcher_name == "random" and p.n_objectives == 1:
                measured.append(_record(p, index, index[[int(np.argmin(p.values[index, 0]))]]))
    if len(set(index.tolist())) != len(index):
        raise AssertionError(f"{searcher_name} ran a pool row twice on {problem}")
    results = [{"problem": problem, "method": label, "seed": seed, "propose_seconds": seconds,
                "checkpoints": records}]
    if measured:
        results.append({"problem": problem, "method": "random-best-measured", "seed": seed, "checkpoints": measured})
    return results


def _record(p: Pool, ran: np.ndarray, answer: np.ndarray) -> dict:
    """Scores of a method that ran the rows ``ran`` and answers with the rows ``answer`` (one row, or a front)."""
    if p.n_objectives == 1:
        outcome = float(p.values[answer[0], 0])
        return {"n": len(ran), "outcome": outcome, "regret": outcome - float(p.values[:, 0].min()),
                "row": int(answer[0]), "best_evaluated": float(p.values[ran, 0].min())}
    ref = p.values.max(axis=0)
    return {"n": len(ran), "hypervolume": hypervolume(p.values[answer], ref),
            "hypervolume_evaluated": hypervolume(p.values[ran], ref), "front_size": int(len(answer))}


def random_rows(p: Pool, n: int, seed: int) -> np.ndarray:
    """The ``n`` pool rows a seed's baselines run ``(n,)``: the same for every baseline of that seed."""
    return np.random.default_rng(batch_seed(seed, 10_000 + n)).choice(len(p.rows), size=n, replace=False)


def run_regmix(problem: str, n: int, seed: int) -> list[dict]:
    """RegMix on ``n`` random pool rows: LightGBM on the objective; its best predicted pool row, and the pool
    row nearest its top-128 average over 100k Dirichlet(prior^0.5) candidates."""
    import lightgbm as lgb

    p = load_pool(problem)
    ran = random_rows(p, n, seed)
    model = lgb.LGBMRegressor(**REGMIX_LGBM, random_state=seed, n_jobs=1, verbose=-1).fit(p.rows[ran], p.values[ran, 0])
    best_row = int(np.argmin(model.predict(p.rows)))
    alpha = p.natural**REGMIX_TEMPERATURE
    candidates = dirichlet_pool(MixtureSpace(p.space.sources), alpha / alpha.sum(), REGMIX_POOL, batch_seed(seed, 20_000 + n))
    top = candidates[np.argsort(model.predict(candidates), kind="stable")[:REGMIX_TOP]].mean(axis=0)
    return [{"problem": problem, "method": f"regmix-{n}", "seed": seed, "checkpoints": [_record(p, ran, np.array([best_row]))]},
            {"problem": problem, "method": f"regmix-{n}-top128", "seed": seed,
             "checkpoints": [_record(p, ran, p.index_of(top))]}]


def run_olmix(problem: str, n: int, seed: int) -> list[dict]:
    """Olmix (:mod:`mixopt.benchmarks.olmix`) on ``n`` random pool rows: its laws fitted to its targets, its
    KL-regularised proposal toward the relative source sizes under its token caps where Olmix publishes them
    (the Olmix tables; on RegMix's, the pool's mean row and no caps); the pool row nearest its proposal."""
    from mixopt.errors import InfeasibleSpaceError

    p = load_pool(problem)
    ran = random_rows(p, n, seed)
    polytope = MixtureSpace(p.space.sources)
    setup = olmix.published_setup(p.space.names)
    prior = p.natural if setup is None else setup.prior
    if setup is not None:
        try:
            polytope = olmix.capped_space(polytope, olmix.token_caps(setup.tokens, setup.target_tokens,
                                                                     olmix.REPETITION_FACTOR))
        except InfeasibleSpaceError:
            pass
    proposal = olmix.olmix_recommend(polytope, prior, p.rows[ran], p.olmix_targets[ran], p.olmix_weights, seed)
    return [{"problem": problem, "method": f"olmix-{n}", "seed": seed, "checkpoints": [_record(p, ran, p.index_of(proposal))]}]


# -- the sweep ----------------------------------------------------------------------------------------
def _job(job: tuple) -> list[dict]:
    start = time.perf_counter()
    kind, *args = job
    results = {"searcher": run_searcher, "regmix": run_regmix, "olmix": run_olmix}[kind](*args)
    for r in results:
        r["wall_seconds"] = time.perf_counter() - start
    return results


def quality_jobs(problems, searchers, baselines, sizes, seeds, budget, batch, options=None) -> list[tuple]:
    """Every (method, problem, seed) job, seed by seed, the slowest first within a seed."""
    jobs = []
    for seed in seeds:
        for problem in problems:
            p = load_pool(problem)
            fits = [n for n in sizes if n <= len(p.rows) // 2]
            own_budget = max(n for n in (*fits, 0) if n <= budget) or min(budget, len(p.rows) // 2)
            checkpoints = tuple(n for n in sizes if n <= own_budget) or (own_budget,)
            jobs += [("searcher", problem, s, seed, own_budget, batch, checkpoints, options if s == DEFAULT else None)
                     for s in searchers]
            if p.n_objectives == 1:
                jobs += [(kind, problem, n, seed) for kind in baselines for n in fits]
    return jobs


def quality(args: argparse.Namespace) -> None:
    problems = args.problems or (("dclm-mean",) if args.fast else PROBLEMS)
    seeds = range(args.first_seed, args.first_seed + (1 if args.fast else args.seeds))
    sizes = (16,) if args.fast else tuple(args.sizes)
    budget = 16 if args.fast else args.budget
    jobs = quality_jobs(problems, args.searchers, args.baselines, sizes, seeds, budget, args.batch, args.options)
    start, results = time.perf_counter(), []
    with open(args.out, "a") as out:
        for batch_results in map_jobs(_job, jobs, args.jobs):
            for result in batch_results:
                out.write(json.dumps(result) + "\n")
                results.append(result)
                print(f"done {result['problem']} {result['method']} seed {result['seed']} in {result['wall_seconds']:.0f} s",
                      flush=True)
            out.flush()
    print("\n".join(summary_lines(results, DEFAULT)))
    print(f"wall time: {time.perf_counter() - start:.0f} s for {len(jobs)} jobs on {args.jobs} processes "
          f"(load average {os.getloadavg()[0]:.1f})")


def read_results(paths) -> list[dict]:
    results = []
    for path in paths:
        with open(path) as f:
            results += [json.loads(line) for line in f if line.strip()]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mixopt bench pool", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="regret (one objective) or hypervolume (several) of each method's answer")
    q.add_argument("--problems", nargs="*", choices=PROBLEMS)
    q.add_argument("--searchers", nargs="*", default=[DEFAULT, "random"], choices=sorted(SEARCHERS.names()))
    q.add_argument("--baselines", nargs="*", default=["regmix", "olmix"], choices=["regmix", "olmix"])
    q.add_argument("--sizes", nargs="*", type=int, default=list(SIZES), help="numbers of runs scored")
    q.add_argument("--budget", type=int, default=64, help="runs of the searchers (checkpoints: the sizes up to it)")
    q.add_argument("--batch", type=int, default=8)
    q.add_argument("--seeds", type=int, default=20)
    q.add_argument("--first-seed", type=int, default=0)
    q.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    q.add_argument("--out", default=os.devnull, help="append one JSON line per method and seed to this file")
    q.add_argument("--options", type=json_object, default=None,
                   help='options of the default searcher as JSON, e.g. \'{"mean": "mixing-law"}\'; results are labelled with them')
    q.add_argument("--fast", action="store_true", help="smoke test: dclm-mean, one seed, 16 runs")
    s = sub.add_parser("summary", help="medians, quartiles and paired tests from results files of quality --out")
    s.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "quality":
        quality(args)
    else:
        print("\n".join(summary_lines(read_results(args.paths), DEFAULT)))


if __name__ == "__main__":
    main()
