"""Search benchmark: every searcher on the same problems, equal budgets, paired seeds.

Problems: synthetic mixing laws (``syn-<K>x<m>``: K sources, m objectives, heteroscedastic noise with
reported standard errors; ``het-<K>x1``: the same laws with the standard errors withheld, as from a
microanneal, the problem for ``--replicates``) and simulators fit to the real RegMix and Olmix tables
(:mod:`mixopt.benchmarks.simulators`; no standard errors reported). Each run proposes batches of
``--batch`` mixtures (batch ``i`` of seed ``s`` seeded ``batch_seed(s, i)``, as the study controller
does) until ``--budget`` evaluations; at each checkpoint it scores the product's own answer,
``mixopt.recommend.recommend_search`` (what ``mixopt study run`` / ``export`` hand to a user):

- single objective: the simulated (noise-free) outcome of the recommended mixture, and its regret
  against the best mixture found by a large reference screen of the simulator;
- several objectives: the hypervolume of the noise-free outcomes of the recommended (predicted) front,
  against a fixed reference point (the worst outcome of 4096 uniform mixtures); ``hypervolume_evaluated``
  is that of every mixture evaluated so far.

Common random numbers: the noise of the j-th evaluation of seed s is the stream ``(s, j)`` for every
method (whatever mixture it measures), so that paired differences between methods are not noise.

Baselines, as their authors run them (single objective; ``N`` training runs, scored by the noise-free
outcome of the mixture they hand over):

- ``regmix-N``: RegMix's sampler (``mixture_config/synthesize_mixture.py`` of sail-sg/regmix: prior =
  the natural mixture tempered by 0.5; per draw a strength from 15 log-spaced values in [0.1, 5];
  Dirichlet(prior x strength); rejection above min(15 x untempered prior, 1) and outside the polytope;
  weights below 2e-4 zeroed, renormalised and rounded to that grid; 100x oversampling; deduplicated; N
  chosen at random), LightGBM on the N noisy runs (RegMix's regression settings: 1000 rounds, learning
  rate 0.01, LightGBM defaults otherwise, no early stopping: its notebook stopped early on the test
  runs), 100k candidates from Dirichlet(prior) inside the polytope, the mean of the top 128 by
  prediction, projected into the polytope. ``regmix-512-per-loss`` (where runs report several losses):
  one regression per loss, the objective predicted as their composition. ``regmix-dense-512``: the
  earlier in-house variant (this package's Dirichlet design, a tuned LightGBM, top 100).
- ``olmix-N``: Olmix as allenai/olmix runs it (:mod:`mixopt.benchmarks.olmix`): its source-then-topic
  swarm (prior: the relative source sizes its fit configs publish for the Olmix tables, else the
  problem's natural mixture; the swarm settings and proxy-run token caps of the table, else its
  defaults), one law ``y = exp(log_c) + exp(t . w)`` per measured metric fit with Huber loss (delta 0.02):
  the parts where runs report them, else the objective (the simulators report family means, not
  Olmix's per-task metrics), then the minimiser of the weighted predicted objective + 0.05 KL(w ||
  prior) within the polytope and, on the Olmix tables, its token caps (4 x tokens / target tokens).
- ``random``: random search, scored like every searcher (its recommendation through the product path, a
  GP per objective on its random runs), and ``random-best-measured``: the best noisy run of the same
  random runs (the naive answer). ``random-512``: the hypervolume of 512 uniform mixtures (the
  multi-objective bar).

``summary`` prints, per problem and number of runs: median and quartiles per method and, for the
default (``botorch``) against each other method, per-seed wins, a two-sided sign test, a Wilcoxon
signed-rank test and a bootstrap 95% interval of the median paired difference; an interval that covers
0 is a tie. ``noise`` prints the simulators' run noise (out of fold). ``timing`` measures proposal time.

Usage::

    python -m mixopt.benchmarks.search quality --seeds 20 --jobs 2 --out /tmp/search.jsonl
    python -m mixopt.benchmarks.search quality --fast          # smoke test
    python -m mixopt.benchmarks.search timing                  # batch of 8 at 64 sources, 500 runs, with/without 13 parts
    python -m mixopt.benchmarks.search noise                   # run noise of each simulator
    python -m mixopt.benchmarks.search summary /tmp/search.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from functools import cache

import numpy as np

import mixopt.recommend as recommend_mod
from mixopt import replicates as replicate_plan
from mixopt.config import ReplicatesConfig
from mixopt.search import SEARCHERS
from mixopt.search.designs import dirichlet_design, local_design
from mixopt.seeding import batch_seed
from mixopt.space import MixtureSpace, Source
from mixopt.trials import History, Parts, mean_composition

SYNTHETIC = tuple(f"syn-{K}x{m}" for K in (5, 17, 64) for m in (1, 2, 3))
HIDDEN_NOISE = ("het-5x1", "het-17x1")  # the syn- laws with standard errors withheld (replicates' problem)
REAL = ("regmix-mean", "regmix-pilecc", "olmix-mean", "olmix-3", "dclm-mean", "dclm-3")
SEARCHER_NAMES = ("botorch", "optuna-tpe", "optuna-gp", "optuna-nsga2", "random")
DEFAULT = "botorch"
BASELINES = ("regmix", "regmix-dense", "regmix-per-loss", "olmix", "random-ref")
BASELINE_SIZES = (64, 128, 512)
REGMIX_DENSE_SIZE = REGMIX_PER_LOSS_SIZE = 512
REPLICATE_GRID = 1e-4  # replicate mixtures are rounded to a study's default grid, as a study rounds them
RANDOM_REFERENCE = 512  # the hypervolume of this many random mixtures is the multi-objective bar

# RegMix (sail-sg/regmix, mixture_config/synthesize_mixture.py and its regression notebook)
SWARM_STRENGTHS = np.logspace(np.log10(0.1), np.log10(5.0), 15)
REGMIX_TEMPERATURE, REGMIX_MINIMUM, REGMIX_MULTIPLIER, REGMIX_USAGE = 0.5, 2e-4, 100, 15.0
REGMIX_POOL, REGMIX_TOP = 100_000, 128
REGMIX_LGBM = {"n_estimators": 1000, "learning_rate": 0.01}
REGMIX_DENSE_TOP = 100


@dataclass
class Problem:
    """Noise-free ``expected(W) -> (n, m)`` losses, noisy ``observe(W, seed, start)``, a space and a prior;
    ``composition`` ``(m, P)`` when objectives average losses that runs report (else None)."""

    name: str
    space: MixtureSpace
    n_objectives: int
    natural: np.ndarray
    expected: object
    # (W, seed, start) -> (values (n, m), stderr (n, m) or None, parts (n, P) or None); row i of W is
    # evaluation start + i of the seed, its noise the stream (seed, start + i) (common random numbers)
    observe: object
    composition: np.ndarray | None = None

    @property
    def directions(self) -> tuple[str, ...]:
        return ("minimize",) * self.n_objectives


@cache
def load_problem(name: str) -> Problem:
    from mixopt.benchmarks.simulators import crn_normal

    if name.startswith(("syn-", "het-")):
        from mixopt.runners.synthetic import expected_outcome, make_law, noise_sd

        K, m = (int(x) for x in name[4:].split("x"))
        law = make_law(K, m, seed=0)
        space = MixtureSpace(tuple(Source(f"s{k}") for k in range(K)))
        reported = name.startswith("syn-")

        def observe(W: np.ndarray, seed: int, start: int = 0):
            mean, sd = expected_outcome(law, W), noise_sd(law, W)[:, None]
            stderr = np.broadcast_to(sd, mean.shape).copy() if reported else None
            return mean + crn_normal(seed, range(start, start + len(W)), m) * sd, stderr, None

        return Problem(name, space, m, np.full(K, 1.0 / K), lambda W: expected_outcome(law, W), observe)
    from mixopt.benchmarks.simulators import load_simulator

    sim = load_simulator(name)

    def observe_simulated(W: np.ndarray, seed: int, start: int = 0):
        parts = sim.observe_parts(W, seed, np.arange(start, start + len(W)))
        return parts @ sim.composition.T, None, parts if sim.reports_parts else None

    composition = sim.composition if sim.reports_parts else None
    return Problem(name, sim.space, len(sim.objectives), sim.natural, sim.expected, observe_simulated, composition)


@cache
def reference(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per objective, the best simulated outcome found by a large screen ``(m,)`` of every sampler a method
    here draws from (uniform, this package's Dirichlet design, RegMix's sparse swarm), refined around the best;
    and the hypervolume reference point (worst outcome of 4096 uniform mixtures) ``(m,)``."""
    p = load_problem(name)
    uniform = p.space.sample(4096, seed=12345)
    ref_point = p.expected(uniform).max(axis=0)
    pool = np.vstack([p.space.sample(20_000, seed=1), dirichlet_design(p.space, p.natural, 20_000, seed=2),
                      regmix_swarm(p.space, p.natural, 20_000, seed=3)])
    values = p.expected(pool)
    best = values.min(axis=0)
    if p.n_objectives == 1:  # refine around the best screened mixtures
        top = pool[np.argsort(values[:, 0])[:20]]
        for round_ in range(3):
            local = local_design(p.space, top, 5_000, seed=4 + round_, concentration=50.0 * (round_ + 1))
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

    Y = -torch.as_tensor(np.atleast_2d(losses), dtype=torch.float64)
    Y = Y[(Y > -torch.as_tensor(ref_point)).all(dim=1)]
    if len(Y) == 0:
        return 0.0
    return float(Hypervolume(-torch.as_tensor(ref_point, dtype=torch.float64)).compute(Y[is_non_dominated(Y)]))


def _extend(p: Problem, history: History, X: np.ndarray, values, stderr, parts) -> History:
    return History(
        np.vstack([history.weights, X]), np.vstack([history.values, values]), history.directions,
        None if stderr is None else (stderr if history.stderr is None else np.vstack([history.stderr, stderr])),
        parts=None if parts is None else Parts(
            parts if history.parts is None else np.vstack([history.parts.values, parts]), p.composition
        ),
    )


def run_searcher(problem: str, searcher_name: str, seed: int, budget: int, batch: int, checkpoints: tuple[int, ...],
                 options: dict, replicates: dict | None = None) -> list[dict]:
    """One search of ``budget`` evaluations; the record of each checkpoint. Random search also yields
    ``random-best-measured`` (the best noisy run of the same runs). ``replicates``: a config
    ``replicates`` section, scheduled as a study does (:mod:`mixopt.replicates`; counted in the budget)."""
    import torch

    torch.set_num_threads(1)
    p = load_problem(problem)
    best, ref_point = reference(problem)
    if searcher_name == "botorch":
        options = {"prior": p.space.as_dict(p.natural), **options}
    searcher = SEARCHERS.create(searcher_name, options)
    plan = ReplicatesConfig(**replicates) if replicates is not None else None
    history = History.empty(p.space.dim, p.directions)
    records, measured, seconds, queued = [], [], 0.0, set()
    waiting = np.zeros((0, p.space.dim))  # replicate runs queued and not yet run, first in first out (as a study's)
    for round_ in range(-(-budget // batch)):
        start = time.perf_counter()
        n = min(batch, budget - len(history))
        if plan is not None:
            todo = replicate_plan.due(plan, len(history), budget, queued)
            queued.update(todo)
            rows, _ = replicate_plan.replicate_rows(
                plan, todo, p.space, prior=options.get("prior"), baseline=None, granularity=REPLICATE_GRID,
                incumbent=lambda h=history: recommend_mod.recommend_search(searcher, p.space, h, seed=seed).weights)
            waiting = np.vstack([waiting, rows])
        X, waiting = waiting[:n], waiting[n:]
        if len(X) < n:
            X = np.vstack([X, searcher.propose(p.space, history, n - len(X), seed=batch_seed(seed, round_))])
        seconds += time.perf_counter() - start
        if not all(p.space.is_feasible(x, tol=1e-7) for x in X):
            raise AssertionError(f"{searcher_name} proposed an infeasible mixture on {problem}")
        history = _extend(p, history, X, *p.observe(X, seed, len(history)))
        if len(history) in checkpoints:
            start = time.perf_counter()
            records.append(_record(p, history, searcher, seed, best, ref_point))
            records[-1]["recommend_seconds"] = time.perf_counter() - start
            if searcher_name == "random" and p.n_objectives == 1:
                measured.append(_outcome_record(p, len(history), history.weights[np.argmin(history.values[:, 0])], best))
    results = [{"problem": problem, "method": searcher_name, "seed": seed, "propose_seconds": seconds, "checkpoints": records}]
    if measured:
        results.append({"problem": problem, "method": "random-best-measured", "seed": seed, "checkpoints": measured})
    return results


def _record(p: Problem, history: History, searcher, seed: int, best: np.ndarray, ref_point: np.ndarray) -> dict:
    """The product's recommendation (``recommend_search``, looked up at call time) scored noise-free."""
    rec = recommend_mod.recommend_search(searcher, p.space, history, seed=seed)
    if p.n_objectives == 1:
        record = _outcome_record(p, len(history), rec.weights, best)
        record["best_evaluated"] = float(p.expected(history.weights)[:, 0].min())
        return record
    return {
        "n": len(history),
        "hypervolume": hypervolume(p.expected(rec.front_weights), ref_point),
        "hypervolume_evaluated": hypervolume(p.expected(history.weights), ref_point),
        "front_size": int(len(rec.front_weights)),
        "extrapolated": _extrapolated(p, rec.front_weights),
    }


def _outcome_record(p: Problem, n: int, w: np.ndarray, best: np.ndarray) -> dict:
    outcome = float(p.expected(np.asarray(w)[None])[0, 0])
    return {"n": n, "outcome": outcome, "regret": outcome - float(best[0]), "weights": np.round(w, 6).tolist(),
            "extrapolated": _extrapolated(p, np.asarray(w)[None])}


def _extrapolated(p: Problem, W: np.ndarray) -> int:
    """How many mixtures of ``W`` lie beyond the support of the table a simulator was fitted to (0 on the
    synthetic laws, which are defined everywhere)."""
    from mixopt.benchmarks.simulators import extrapolated

    return 0 if p.name.startswith(("syn-", "het-")) else int(extrapolated(p.name, W).sum())


# -- baselines: samplers ------------------------------------------------------------------------------
def _feasible_rows(space: MixtureSpace, W: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Mask ``(n,)`` of the rows of ``W`` ``(n, K)`` inside the polytope (bounds, groups, sum 1)."""
    ok = np.all((W >= space.lower - tol) & (W <= space.upper + tol), axis=1) & (np.abs(W.sum(axis=1) - 1.0) <= 1e-7)
    if space.groups:
        A, b = space.linear_constraints()
        ok &= np.all(W @ A.T <= b + tol, axis=1)
    return ok


def deduplicate(W: np.ndarray, threshold: float = 1e-5) -> np.ndarray:
    """RegMix's ``sort_and_deduplicate``: rows sorted lexicographically, a row dropped when its L1
    distance to the last kept row is at most ``threshold``."""
    if len(W) == 0:
        return W
    W = W[np.lexsort(W.T)]
    keep = [0]
    for i in range(1, len(W)):
        if np.abs(W[i] - W[keep[-1]]).sum() > threshold:
            keep.append(i)
    return W[keep]


def strength_swarm(space: MixtureSpace, prior: np.ndarray, n: int, seed: int, *, temperature: float, minimum: float,
                   multiplier: int, usage: float | None = None, grid: float | None = None) -> np.ndarray:
    """The RegMix / Olmix swarm: ``n`` distinct feasible mixtures ``(n, K)``.

    ``prior`` (the natural mixture) tempered by ``temperature`` and renormalised; per draw a strength
    picked at random from 15 log-spaced values in [0.1, 5], Dirichlet(tempered prior x strength); draws
    with a weight above ``min(usage x prior, 1)`` (untempered prior; ``usage`` None: no such cap) or
    outside the polytope rejected; weights below ``minimum`` zeroed and the rest renormalised (and
    rounded to multiples of ``grid``, renormalised, when given); ``multiplier`` x ``n`` draws,
    deduplicated, ``n`` of them chosen at random (more rounds of draws if too few survive)."""
    rng = np.random.default_rng(seed)
    base = np.clip(np.asarray(prior, float), 0.0, None)
    base = base / base.sum()
    alpha = base**temperature
    alpha = alpha / alpha.sum()
    cap = np.minimum(usage * base, 1.0) if usage is not None else np.ones_like(base)
    kept = np.zeros((0, len(base)))
    for _ in range(20):
        strength = rng.choice(SWARM_STRENGTHS, size=n * multiplier)
        G = rng.gamma(np.maximum(alpha * strength[:, None], 1e-300))
        total = G.sum(axis=1)
        D = G[total > 0] / total[total > 0, None]
        D = D[np.all(D <= cap, axis=1)]
        D = np.where(D < minimum, 0.0, D)
        D = D / D.sum(axis=1, keepdims=True)
        if grid is not None:
            D = np.round(D / grid) * grid
            D = D / D.sum(axis=1, keepdims=True)
        kept = deduplicate(np.vstack([kept, D[_feasible_rows(space, D)]]))
        if len(kept) >= n:
            break
    if len(kept) < n:
        raise RuntimeError(f"the swarm found only {len(kept)} distinct feasible mixtures of {n}")
    return kept[rng.choice(len(kept), size=n, replace=False)]


def regmix_swarm(space: MixtureSpace, natural: np.ndarray, n: int, seed: int) -> np.ndarray:
    """RegMix's sampler (see the module docstring) around ``natural``."""
    return strength_swarm(space, natural, n, seed, temperature=REGMIX_TEMPERATURE, minimum=REGMIX_MINIMUM,
                          multiplier=REGMIX_MULTIPLIER, usage=REGMIX_USAGE, grid=REGMIX_MINIMUM)


def dirichlet_pool(space: MixtureSpace, alpha: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` draws of Dirichlet(``alpha``) inside the polytope (rejection; fewer if the polytope is tiny)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(50):
        D = rng.dirichlet(np.maximum(alpha, 1e-12), size=n)
        out.append(D[_feasible_rows(space, D, tol=1e-12)])
        if sum(len(o) for o in out) >= n:
            break
    return np.vstack(out)[:n]


# -- baselines: RegMix --------------------------------------------------------------------------------
def regmix_recommend(space: MixtureSpace, natural: np.ndarray, W: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                     seed: int) -> np.ndarray:
    """RegMix's answer from runs ``W`` ``(n, K)`` with measured ``targets`` ``(n, P)``: one LightGBM per
    column, the objective predicted as ``targets @ weights``, on 100k Dirichlet(prior) candidates; the
    mean of the top 128, projected into the polytope."""
    import lightgbm as lgb

    alpha = natural**REGMIX_TEMPERATURE
    alpha = alpha / alpha.sum()
    pool = dirichlet_pool(space, alpha, REGMIX_POOL, seed)
    predicted = np.zeros(len(pool))
    for y, weight in zip(targets.T, weights, strict=True):
        model = lgb.LGBMRegressor(**REGMIX_LGBM, random_state=seed, n_jobs=1, verbose=-1).fit(W, y)
        predicted += weight * model.predict(pool)
    return space.project(pool[np.argsort(predicted, kind="stable")[:REGMIX_TOP]].mean(axis=0))


def run_regmix(problem: str, n_runs: int, seed: int, variant: str = "regmix") -> list[dict]:
    """A RegMix baseline with ``n_runs`` training runs (single objective): ``regmix`` (as RegMix runs
    it), ``regmix-per-loss`` (one regression per reported loss) or ``regmix-dense`` (the in-house variant)."""
    p = load_problem(problem)
    best, _ = reference(problem)
    seed_ = batch_seed(seed, 10_000 + n_runs)
    if variant == "regmix-dense":
        final = _regmix_dense(p, n_runs, seed)
        method = f"regmix-dense-{n_runs}"
    else:
        W = regmix_swarm(p.space, p.natural, n_runs, seed_)
        values, _, parts = p.observe(W, seed, 0)
        if variant == "regmix-per-loss":
            final = regmix_recommend(p.space, p.natural, W, parts, p.composition[0], seed_)
            method = f"regmix-{n_runs}-per-loss"
        else:
            final = regmix_recommend(p.space, p.natural, W, values, np.ones(1), seed_)
            method = f"regmix-{n_runs}"
    return [{"problem": problem, "method": method, "seed": seed, "checkpoints": [_outcome_record(p, n_runs, final, best)]}]


def _regmix_dense(p: Problem, n_runs: int, seed: int) -> np.ndarray:
    """The earlier in-house RegMix-like procedure: this package's Dirichlet design, a tuned LightGBM,
    the mean of the top 100 of 100k Dirichlet-design candidates."""
    import lightgbm as lgb

    W = dirichlet_design(p.space, p.natural, n_runs, seed=seed * 7919)
    values, _, _ = p.observe(W, seed, 0)
    pool = dirichlet_design(p.space, p.natural, REGMIX_POOL, seed=seed * 7919 + 1)
    model = lgb.LGBMRegressor(
        n_estimators=500, learning_rate=0.03, num_leaves=15, min_child_samples=5, subsample=0.8,
        subsample_freq=1, random_state=seed, n_jobs=1, verbose=-1,
    ).fit(W, values[:, 0])
    return pool[np.argsort(model.predict(pool))[:REGMIX_DENSE_TOP]].mean(axis=0)


# -- baselines: Olmix ---------------------------------------------------------------------------------
def run_olmix(problem: str, n_runs: int, seed: int) -> list[dict]:
    """Olmix with ``n_runs`` swarm runs (single objective), through :mod:`mixopt.benchmarks.olmix`: its
    swarm, laws per measured metric (the parts where runs report them), its KL-regularised constrained
    proposal (the module docstring above says what each problem gives it)."""
    from mixopt.benchmarks import olmix
    from mixopt.errors import InfeasibleSpaceError

    p = load_problem(problem)
    best, _ = reference(problem)
    seed_ = batch_seed(seed, 20_000 + n_runs)
    setup = olmix.published_setup(p.space.names)
    prior = p.natural if setup is None else setup.prior

    def capped(budget: float, factor: float) -> MixtureSpace:
        if setup is None:
            return p.space
        try:
            return olmix.capped_space(p.space, olmix.token_caps(setup.tokens, budget, factor))
        except InfeasibleSpaceError:
            return p.space

    settings = olmix.SwarmSettings() if setup is None else setup.swarm
    W = olmix.swarm(capped(olmix.PROXY_TOKENS, olmix.SWARM_REPETITION), prior, olmix.hierarchy_of(p.space.names),
                    n_runs, seed_, settings)
    values, _, parts = p.observe(W, seed, 0)
    targets, weights = (parts, p.composition[0]) if parts is not None else (values, np.ones(1))
    final = olmix.olmix_recommend(capped(setup.target_tokens if setup else 0.0, olmix.REPETITION_FACTOR), prior, W,
                                  targets, weights, seed_)
    return [{"problem": problem, "method": f"olmix-{n_runs}", "seed": seed, "checkpoints": [_outcome_record(p, n_runs, final, best)]}]


def run_random_reference(problem: str, seed: int) -> list[dict]:
    """Hypervolume of ``RANDOM_REFERENCE`` uniform mixtures (the multi-objective bar)."""
    p = load_problem(problem)
    _, ref_point = reference(problem)
    W = p.space.sample(RANDOM_REFERENCE, seed=seed * 31 + 7)
    record = {"n": RANDOM_REFERENCE, "hypervolume": hypervolume(p.expected(W), ref_point)}
    return [{"problem": problem, "method": f"random-{RANDOM_REFERENCE}", "seed": seed, "checkpoints": [record]}]


def _job(job: tuple) -> list[dict]:
    kind, *args = job
    start = time.perf_counter()
    results = {"searcher": run_searcher, "regmix": run_regmix, "olmix": run_olmix, "random-ref": run_random_reference}[kind](*args)
    for result in results:
        result["wall_seconds"] = (time.perf_counter() - start) / len(results)
    return results


def quality_jobs(problems, searchers, baselines, sizes, seeds: int, budget: int, batch: int, checkpoints, options,
                 replicates: dict | None = None) -> list[tuple]:
    jobs = []
    for problem in problems:
        loaded = load_problem(problem)
        single = loaded.n_objectives == 1
        for seed in range(seeds):
            jobs += [("searcher", problem, s, seed, budget, batch, checkpoints, options if s == "botorch" else {}, replicates)
                     for s in searchers]
            if single and "regmix" in baselines:
                jobs += [("regmix", problem, n, seed) for n in sizes]
            if single and "olmix" in baselines:
                jobs += [("olmix", problem, n, seed) for n in sizes]
            if single and "regmix-dense" in baselines:
                jobs.append(("regmix", problem, REGMIX_DENSE_SIZE, seed, "regmix-dense"))
            if single and "regmix-per-loss" in baselines and loaded.composition is not None:
                jobs.append(("regmix", problem, REGMIX_PER_LOSS_SIZE, seed, "regmix-per-loss"))
            if not single and "random-ref" in baselines:
                jobs.append(("random-ref", problem, seed))
    # Seed by seed, and within a seed the expensive jobs first: a run stopped early holds complete paired seeds.
    jobs.sort(key=lambda j: (_job_seed(j), j[0] != "searcher", j[2] not in ("botorch", "optuna-gp")))
    return jobs


def _job_seed(job: tuple) -> int:
    """The seed of a quality job (its fourth field; the third of a ``random-ref`` job)."""
    return job[2] if job[0] == "random-ref" else job[3]


def quality(args: argparse.Namespace) -> None:
    problems = args.problems or (("syn-5x1",) if args.fast else REAL + SYNTHETIC)
    searchers = args.searchers or (SEARCHER_NAMES if not args.fast else ("botorch", "random"))
    budget, batch = (16, 8) if args.fast else (args.budget, args.batch)
    checkpoints = tuple(sorted({c for c in (*args.checkpoints, budget) if c <= budget})) if not args.fast else (16,)
    options = {"n_init": 8, "pool_size": 256, "continuous_max_sources": 0} if args.fast else {}
    options.update(args.options)
    baselines = (("regmix", "olmix") if args.fast else BASELINES) if args.baselines is None else tuple(args.baselines)
    sizes = (16,) if args.fast else tuple(args.sizes)
    jobs = quality_jobs(problems, searchers, baselines, sizes, args.seeds, budget, batch, checkpoints, options,
                        args.replicates)
    results = []
    with open(args.out, "a") as out:
        for batch_results in map_jobs(_job, jobs, args.jobs):
            for result in batch_results:
                if args.options and result["method"] == "botorch":  # a variant is not the default
                    result["method"] += " " + json.dumps(args.options, sort_keys=True)
                if args.replicates and result["method"] in (*searchers, "random-best-measured"):
                    result["method"] += " +replicates " + json.dumps(args.replicates, sort_keys=True)
                out.write(json.dumps(result) + "\n")
                results.append(result)
                print(f"done {result['problem']} {result['method']} seed {result['seed']} in {result['wall_seconds']:.0f} s", flush=True)
            out.flush()
    print_summary(results)


def map_jobs(run, jobs: list, n_jobs: int):
    """``run(job)`` of each job, in this process or in ``n_jobs`` spawned workers (results as they finish);
    ``run`` must be a module-level function (workers import it by name)."""
    if n_jobs <= 1:
        yield from map(run, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(n_jobs) as pool:
        yield from pool.imap_unordered(run, jobs)


# -- statistics ---------------------------------------------------------------------------------------
def quartiles(x) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of ``x``."""
    q1, q2, q3 = np.percentile(np.asarray(x, float), [25, 50, 75])
    return float(q1), float(q2), float(q3)


def paired_comparison(default, other, *, lower_is_better: bool, n_boot: int = 4000, seed: int = 0) -> dict:
    """The default method against another on the same seeds (``default[i]``, ``other[i]`` from seed i).

    ``diff`` = how much better the default is per seed (``other - default`` when lower is better, else
    ``default - other``). Returns ``wins`` / ``losses`` / ``ties`` (seeds where the default is strictly
    better / worse / equal), ``sign_p`` (two-sided sign test on wins vs losses, ties dropped),
    ``wilcoxon_p`` (two-sided Wilcoxon signed-rank on ``diff``; 1.0 when every difference is 0),
    ``median_diff`` and ``ci`` (percentile bootstrap 95% interval of the median difference over seeds),
    and ``verdict``: "tie" when the interval covers 0, else "better" / "worse" for the default."""
    from scipy.stats import binomtest, wilcoxon

    a, b = np.asarray(default, float), np.asarray(other, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError("paired samples must be non-empty 1-d arrays of the same length")
    diff = (b - a) if lower_is_better else (a - b)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    sign_p = float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    wilcoxon_p = float(wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
    rng = np.random.default_rng(seed)
    boot = np.median(diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))], axis=1)
    lo, hi = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    verdict = "tie" if lo <= 0.0 <= hi else ("better" if lo > 0 else "worse")
    return {"n": len(diff), "wins": wins, "losses": losses, "ties": len(diff) - wins - losses, "sign_p": sign_p,
            "wilcoxon_p": wilcoxon_p, "median_diff": float(np.median(diff)), "ci": (lo, hi), "verdict": verdict}


def _table(results: list[dict]):
    import pandas as pd

    rows = [{"problem": r["problem"], "method": r["method"], "seed": r["seed"], **{k: v for k, v in c.items() if k != "weights"}}
            for r in results for c in r["checkpoints"]]
    if not rows:
        return None
    return pd.DataFrame(rows).drop_duplicates(["problem", "method", "seed", "n"], keep="last")


def summary_lines(results: list[dict], default: str = DEFAULT) -> list[str]:
    """The summary's text: per problem and number of runs, every method's median [quartiles] of the
    figure (regret for one objective, lower is better; hypervolume of the recommended front for
    several, higher is better) and the default's paired comparison against it (on the seeds both have;
    against the default at the largest n not above the method's when the default has no such n)."""
    table = _table(results)
    if table is None:
        return []
    lines = []
    for problem, rows in table.groupby("problem", sort=True):
        figure = "regret" if "regret" in rows and rows["regret"].notna().any() else "hypervolume"
        lower = figure == "regret"
        ours = rows[rows["method"] == default]
        lines.append(f"== {problem}: {figure} ({'lower' if lower else 'higher'} is better); median [q1, q3] over seeds ==")
        lines.append(f"{'n':>5}  {'method':<28}{'seeds':>6}  {'median':>10}  {'[q1, q3]':<23}{'vs ' + default:<18}"
                     f"{'wins-losses':>12}{'sign p':>9}{'wilcoxon p':>11}  {'median diff [95% CI]':<34}verdict")
        for n, at_n in rows.groupby("n", sort=True):
            for method, group in sorted(at_n.groupby("method"), key=lambda kv: (kv[0] != default, kv[0])):
                values = group.set_index("seed")[figure].dropna()
                if values.empty:
                    continue
                q1, med, q3 = quartiles(values)
                extra = ""
                if figure == "hypervolume" and "hypervolume_evaluated" in group and group["hypervolume_evaluated"].notna().any():
                    extra = f"  (all evaluated: {group['hypervolume_evaluated'].median():.4f})"
                if "extrapolated" in group and group["extrapolated"].notna().any():
                    scored = group["front_size"].sum() if "front_size" in group and group["front_size"].notna().all() else len(group)
                    extra += f"  [{int(group['extrapolated'].sum())} of {int(scored)} scored mixtures extrapolated]"
                line = f"{n:>5}  {method:<28}{len(values):>6}  {med:>10.4f}  [{q1:.4f}, {q3:.4f}]".ljust(83)
                if method != default and not ours.empty:
                    ns = sorted(v for v in ours["n"].unique() if v <= n)
                    if ns:
                        mine = ours[ours["n"] == ns[-1]].set_index("seed")[figure].dropna()
                        seeds = sorted(set(mine.index) & set(values.index))
                        if len(seeds) >= 2:
                            c = paired_comparison(mine.loc[seeds].to_numpy(), values.loc[seeds].to_numpy(), lower_is_better=lower)
                            against = f"@{ns[-1]}" if ns[-1] != n else ""
                            line += (f"{against:<18}{c['wins']:>5}-{c['losses']:<6}{c['sign_p']:>9.3g}{c['wilcoxon_p']:>11.3g}  "
                                     f"{c['median_diff']:+.4f} [{c['ci'][0]:+.4f}, {c['ci'][1]:+.4f}]".ljust(34 + 45)
                                     + (f"{default} {c['verdict']}" if c["verdict"] != "tie" else "tie"))
                lines.append(line.rstrip() + extra)
        lines.append("")
    return lines


def print_summary(results: list[dict]) -> None:
    print("\n".join(summary_lines(results)))


# -- noise, timing ------------------------------------------------------------------------------------
def noise(args: argparse.Namespace) -> None:
    """Each simulator's run noise per objective: the sd it uses (nearest pairs around out-of-fold
    predictions), the same with in-sample predictions, the residual sds, and the outcomes' spread."""
    from mixopt.benchmarks.simulators import load_simulator

    print(f"{'problem':<15}{'objective':<10}{'noise (used)':>13}{'in-sample':>11}{'OOF resid sd':>14}"
          f"{'in-sample resid':>17}{'spread':>9}")
    for name in args.problems or REAL:
        sim = load_simulator(name)
        for objective, r in (sim.noise_report or {}).items():
            print(f"{name:<15}{objective:<10}{r['nearest_pair']:>13.4f}{r['nearest_pair_in_sample']:>11.4f}"
                  f"{r['residual_sd']:>14.4f}{r['residual_sd_in_sample']:>17.4f}{r['spread']:>9.4f}")
    print("noise (used): nearest-pair estimate around 5-fold out-of-fold predictions of the simulator's mean model; "
          "OOF resid sd includes model error (an upper bound).")
    from mixopt.benchmarks.simulators import heldout_spearman, support

    print(f"\n{'problem':<15}{'objective':<10}{'held out':>15}{'Spearman':>10}{'support radius (TV)':>21}")
    for name in args.problems or REAL:
        radius = support(name)[1]
        for objective, (held, rho) in heldout_spearman(name).items():
            print(f"{name:<15}{objective:<10}{held:>15}{rho:>10.3f}{radius:>21.3f}")
    print("support radius: the median distance from a table row to its nearest other row; a scored mixture farther "
          "than that from every row is counted as extrapolated in quality's summary.")


def parts_history(history: History, n_parts: int, seed: int = 0) -> History:
    """``history`` with ``n_parts`` parts per run whose mean is the objective: noisy perturbations of it."""
    rng = np.random.default_rng(seed)
    e = rng.normal(scale=0.05 * history.values.std(), size=(len(history), n_parts))
    parts = history.values[:, :1] + e - e.mean(axis=1, keepdims=True)
    return History(history.weights, history.values, history.directions, history.stderr,
                   parts=Parts(parts, mean_composition([n_parts])))


def timing(args: argparse.Namespace) -> None:
    """Seconds to propose a batch of ``--batch`` at 64 sources with ``--observations`` runs, botorch vs
    random in the same process, without and with ``--parts`` parts per run."""
    import torch

    torch.set_num_threads(1)
    p = load_problem("syn-64x1")
    W = p.space.sample(args.observations, seed=0)
    values, stderr, _ = p.observe(W, 0, 0)
    plain = History(W, values, p.directions, stderr)
    for label, history in (("no parts", plain), (f"{args.parts} parts", parts_history(plain, args.parts))):
        seconds = {}
        for name in ("random", "botorch"):
            searcher = SEARCHERS.create(name)
            wall, cpu = time.perf_counter(), time.process_time()
            searcher.propose(p.space, history, args.batch, seed=1)
            seconds[name] = (time.perf_counter() - wall, time.process_time() - cpu)
            print(f"[{label}] {name}: {seconds[name][0]:.3f} s wall, {seconds[name][1]:.3f} s CPU for a batch of {args.batch} "
                  f"at 64 sources with {args.observations} runs (load average {os.getloadavg()[0]:.1f})", flush=True)
        ratio = [b / max(r, 1e-9) for b, r in zip(seconds["botorch"], seconds["random"], strict=True)]
        print(f"[{label}] ratio botorch / random: {ratio[0]:.0f}x wall, {ratio[1]:.0f}x CPU", flush=True)


def json_object(text: str) -> dict:
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
    q.add_argument("--problems", nargs="*", choices=REAL + SYNTHETIC + HIDDEN_NOISE)
    q.add_argument("--searchers", nargs="*", choices=SEARCHER_NAMES)
    q.add_argument("--baselines", nargs="*", choices=BASELINES, help="default: all (none with an empty list)")
    q.add_argument("--sizes", nargs="*", type=int, default=list(BASELINE_SIZES), help="runs of the regmix-N / olmix-N baselines")
    q.add_argument("--seeds", type=int, default=5)
    q.add_argument("--budget", type=int, default=64)
    q.add_argument("--batch", type=int, default=8)
    q.add_argument("--checkpoints", nargs="*", type=int, default=[32], help="also score at these numbers of runs")
    q.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    q.add_argument("--out", default=os.devnull, help="append one JSON line per run to this file")
    q.add_argument("--options", type=json_object, default={},
                   help='options of the botorch searcher as JSON, e.g. \'{"local_share": 1.0}\'; its results are labelled with them')
    q.add_argument("--replicates", type=json_object, default=None,
                   help='a config replicates section as JSON, e.g. \'{"mixtures": ["prior", "incumbent"], "seeds": 3}\', '
                        'scheduled as a study does (counted in the budget); results are labelled with it')
    q.add_argument("--fast", action="store_true", help="smoke test: one small problem, one seed, 16 evaluations")
    t = sub.add_parser("timing", help="proposal time at 64 sources, without and with parts")
    t.add_argument("--observations", type=int, default=500)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--parts", type=int, default=13)
    nz = sub.add_parser("noise", help="run noise of each simulator (out of fold)")
    nz.add_argument("--problems", nargs="*", choices=REAL)
    s = sub.add_parser("summary", help="medians, quartiles and paired tests of results files written by quality --out")
    s.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "quality":
        quality(args)
    elif args.command == "timing":
        timing(args)
    elif args.command == "noise":
        noise(args)
    else:
        results = []
        for path in args.paths:
            with open(path) as f:
                results += [json.loads(line) for line in f if line.strip()]
        print_summary(results)


if __name__ == "__main__":
    main()
