"""Olmix, as allenai/olmix runs it: the source-then-topic swarm, one log-linear law per task, and the
KL-regularised constrained proposer. Pure functions over numpy arrays and a
:class:`~mixopt.space.MixtureSpace`, for the ``olmix-N`` baselines of the benchmarks.

Read from allenai/olmix (Apache-2.0, Allen Institute for AI) at commit 9586977; each default below names
the file or config it comes from. The code here is written from that reading, not copied.

The pipeline, upstream and here:

1. **Swarm** (``olmix/generate/synthesize_mixture.py``, ``generate_weights_dirichlet``). Domains are
   grouped under sources (``dclm:politics`` is topic ``politics`` of source ``dclm``; ``wikipedia`` is a
   source without topics). The prior is the domains' relative sizes: the source prior is the sum of its
   topics', each source's topic prior its topics' sizes renormalised. One draw: for each of 15 strengths
   log-spaced in [``min_strength``, ``max_strength``], a source vector ~ Dirichlet(source prior x
   strength) and, for every source, a topic vector ~ Dirichlet(topic prior x strength) at the same
   strength; leaf weight = source weight x topic share. Of the 15 leaf vectors, those within the
   weight bounds (upstream: the token caps ``min(tokens x repetition_factor / max_tokens, 1)``; here the
   space's bounds, so a space built with :func:`capped_space` carries the caps) and holding the required
   ``nonzero`` sources, one is chosen at random. Then small weights are zeroed: with one minimum for
   both levels (the default) weights below it are zeroed, renormalised, rounded to multiples of it and
   renormalised; with separate minima a source without topics is zeroed below ``minimum_source_weight``
   and a topic below ``minimum_topic_weight`` x its source's total, then the whole is renormalised. A
   draw that now breaks the bounds is discarded. ``sample_multiplier`` x ``n`` draws, deduplicated
   (weights within 1e-5), ``n`` chosen at random.
2. **Laws** (``olmix/fit/utils.py`` ``LogLinearRegressor``, ``mixing_law``; ``olmix/fit/law.py``). One law
   per task metric, ``y = exp(log_c) + exp(t . w)``, fit by L-BFGS on the summed Huber loss (delta 0.02)
   from many starts (``log_c`` on 10 points of [-2, 1.5]; ``t`` uniform in [0, 0.1] with one entry
   uniform in [-1, 0], at the domain whose index is the task's index), the start of least loss kept.
   With ``aggregate_task_families`` (the DCLM per-family config) one law per family, fit to the family's
   mean, weighted in the objective.
3. **Proposer** (``olmix/fit/utils.py`` ``LogLinearExactProposer``): ``argmin_w sum_t a_t exp(t_t . w) +
   kl_reg KL(w || q)`` over the simplex with ``w <= tokens x repetition_factor / target_tokens``
   (``constraints`` of the fit configs), where ``q`` is the relative source sizes and ``a_t`` the task
   weights (``1/T`` without ``obj_weights``). The constants ``exp(log_c)`` do not move the argmin.

Deviations, each for a stated reason:

- the law fit minimises the same summed Huber loss with scipy's trust-region least squares (its
  ``huber`` loss at ``f_scale = delta`` is exactly torch's ``huber_loss``; upstream: torch's L-BFGS in
  float32, 100 outer steps of 20 iterations), and by default from ``STARTS = 1`` start (drawn as
  upstream draws its starts, ``log_c`` = -2) instead of upstream's 300 (10 values of ``log_c`` x 30
  random slopes): one start takes about 0.5 s on 128 runs of the 64-domain table, so 300 starts x 52
  tasks would take hours per fit, and on the published tables every start tried (3 to 10 per task,
  spread over upstream's ``log_c`` range) reached the same Huber loss to 5 digits; ``starts`` restores
  more;
- the proposer solves the same convex problem with SLSQP (upstream: cvxpy with ECOS, not a dependency
  here) from the projected prior and two seeded starts, inside the space (bounds and group constraints
  too), and keeps the best feasible answer;
- the swarm draws more rounds when fewer than ``n`` distinct mixtures survive (upstream raises), and
  checks the space's group constraints as well as its bounds;
- the full-recomputation table's generation config is not published: :data:`FULL_RECOMPUTATION_SWARM`
  holds settings read off the table: every run holds all 7 sources, no source without topics below
  1e-4, no topic below 5% of its source's total, weights not on a grid; that is separate minima
  (``minimum_source_weight`` 1e-4, ``minimum_topic_weight`` 0.05) with every source required
  (``nonzero_weight``, as the published ``2_add_more_sources`` generate config requires its sources),
  at the default strengths. With the fit config's relative sizes as the prior, this reproduces the
  table's nonzero domains per run (17.0) and its topics per source (median 5 of DCLM's 24, 4 of
  s2pdf's 21, 4 of stack-edu's 15); the sources' typical totals differ (s2pdf's median 0.08 against
  the table's 0.19, finemath's 0.04 against 0.01), so the swarm's own prior was likely another one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from mixopt.space import MixtureSpace

# -- upstream defaults ------------------------------------------------------------------------------------
# olmix/aliases.py SwarmConfig and olmix/generate/synthesize_mixture.py ConfigDefaults
MIN_STRENGTH, MAX_STRENGTH = 0.1, 5.0  # SwarmConfig.min_strength / max_strength
N_STRENGTHS = 15  # generate_weights_dirichlet: np.logspace(log10(min), log10(max), 15)
MINIMUM_WEIGHT = 2e-3  # ConfigDefaults.minimum_weight (source and topic alike unless set apart)
SAMPLE_MULTIPLIER = 10  # ConfigDefaults.sample_multiplier
MIX_TEMPERATURE = 1.0  # SwarmConfig.mix_temperature (below 1 flattens the prior)
SWARM_REPETITION = 1.0  # SwarmConfig.repetition_factor: a proxy run reads a domain at most once
PROXY_TOKENS = 2_910_233_600  # max_tokens of configs/mixture_reuse_case_study/generate/*.yaml (30M proxies)
DEDUPLICATION = 1e-5  # sort_and_deduplicate: np.allclose(..., atol=1e-5)
# olmix/fit/utils.py LogLinearRegressor.fit and init_params_log_linear_law
HUBER_DELTA = 0.02
LOG_C_STARTS = np.linspace(-2.0, 1.5, 10)
UPSTREAM_STARTS = 300  # 10 values of log_c x 30 random slopes each
STARTS = 1  # here (see the module docstring)
# configs/examples/fit/*.yaml: proposer.kl_reg and constraints (enabled, repetition_factor)
KL_REG = 0.05
REPETITION_FACTOR = 4.0
# filtering.drop_metrics of every fit config (the first two are not in the published tables)
DROPPED_METRICS = ("ultrachat_masked_ppl", "wildchat_masked_ppl", "qasper_yesno:rc::olmes", "sciriff_yesno:rc::olmes",
                   "lab_bench_dbqa", "lab_bench_protocolqa", "medqa_en:rc::none")
# configs/examples/fit/dclm_per_family.yaml filtering.obj_weights (tasks per family after MMLU's
# aggregation into 4 categories and the drops: 7 math, 19 code, 26 QA)
FAMILY_WEIGHTS = {"math": 7 / 52, "code": 19 / 52, "qa": 26 / 52}


@dataclass(frozen=True)
class SwarmSettings:
    """The swarm knobs of a generate config (``swarm:`` section of ``olmix/aliases.py`` GenerationConfig).
    ``nonzero``: sources every run must hold (``nonzero_weight``, source level); ``None``: none."""

    min_strength: float = MIN_STRENGTH
    max_strength: float = MAX_STRENGTH
    minimum_source_weight: float = MINIMUM_WEIGHT
    minimum_topic_weight: float = MINIMUM_WEIGHT
    sample_multiplier: int = SAMPLE_MULTIPLIER
    temperature: float = MIX_TEMPERATURE
    nonzero: tuple[str, ...] | None = None


# configs/mixture_reuse_case_study/generate/0_dclm.yaml: minimum_weight 0.05, the other knobs default
# (the DCLM table's weights are multiples of 0.05, renormalised).
DCLM_SWARM = SwarmSettings(minimum_source_weight=0.05, minimum_topic_weight=0.05)
# The full-recomputation swarm: config not published; read off the table (module docstring).
FULL_RECOMPUTATION_SWARM = SwarmSettings(
    minimum_source_weight=1e-4, minimum_topic_weight=0.05,
    nonzero=("arxiv", "dclm", "finemath-3plus", "pes2o", "s2pdf", "stack-edu", "wikipedia"),
)


@dataclass(frozen=True)
class Setup:
    """What Olmix's configs say for one published table, arrays in the order of ``names``: ``prior`` the
    relative source sizes (the KL's ``q`` and the swarm's prior), ``tokens`` the token counts,
    ``target_tokens`` the proposer's token budget (caps ``tokens x 4 / target_tokens``),
    ``per_family`` whether the fit config fits one law per family (else one per task)."""

    name: str
    names: tuple[str, ...]
    prior: np.ndarray = field(repr=False)
    tokens: np.ndarray = field(repr=False)
    swarm: SwarmSettings
    target_tokens: float
    per_family: bool


def published_setup(names: Sequence[str]) -> Setup | None:
    """The published Olmix setup whose domains are exactly ``names`` (any order), else None.

    - the 64-domain full-recomputation table: priors of ``configs/examples/fit/full_recomputation.yaml``,
      per-task laws, ``target_tokens`` 1e12; swarm :data:`FULL_RECOMPUTATION_SWARM`;
    - the 24-topic DCLM table: priors of ``configs/examples/fit/dclm_per_family.yaml``, per-family laws
      weighted :data:`FAMILY_WEIGHTS`, ``target_tokens`` 6e12; swarm :data:`DCLM_SWARM` (its topics are
      named without the ``dclm:`` prefix, so each is its own source, as in ``generate/0_dclm.yaml``).
    """
    tables = (("full_recomputation", FULL_RECOMPUTATION_PRIORS, FULL_RECOMPUTATION_SWARM, 1e12, False),
              ("dclm", DCLM_PRIORS, DCLM_SWARM, 6e12, True))
    for name, priors, settings, target, per_family in tables:
        if set(names) == set(priors) and len(names) == len(priors):
            prior = np.array([priors[n][0] for n in names])
            return Setup(name, tuple(names), prior / prior.sum(), np.array([float(priors[n][1]) for n in names]),
                         settings, target, per_family)
    return None


# -- sources and caps -----------------------------------------------------------------------------------
def hierarchy_of(names: Sequence[str]) -> dict[str, list[int]]:
    """Sources of the domains ``names``: ``{source: [column indices]}`` in order of first appearance.

    ``source:topic`` belongs to ``source``; a name without ``:`` is its own source, as Olmix's
    ``leaf_to_source`` splits at the first ``:`` (``synthesize_mixture.py``)."""
    out: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        out.setdefault(name.split(":", 1)[0], []).append(k)
    return out


def token_caps(tokens: np.ndarray, budget: float, repetition_factor: float) -> np.ndarray:
    """Olmix's weight caps ``min(tokens x repetition_factor / budget, 1)`` ``(K,)``: the swarm's with
    ``budget`` = the proxy run's ``max_tokens`` and factor 1 (``generate_weights_dirichlet``), the
    proposer's with ``target_tokens`` and factor 4 (``LogLinearExactProposer``)."""
    return np.minimum(np.asarray(tokens, float) * repetition_factor / budget, 1.0)


def capped_space(space: MixtureSpace, caps: np.ndarray) -> MixtureSpace:
    """``space`` with each source's maximum lowered to ``caps[k]`` (never raised): Olmix's token caps as
    bounds. Raises :class:`~mixopt.errors.InfeasibleSpaceError` when the caps leave no mixture."""
    sources = tuple(replace(s, max_weight=float(min(s.max_weight, cap))) for s, cap in zip(space.sources, caps, strict=True))
    return replace(space, sources=sources)


def _feasible(space: MixtureSpace, W: np.ndarray, tol: float) -> np.ndarray:
    """Rows of ``W`` ``(n, K)`` inside ``space`` (sum, bounds and groups) within ``tol``."""
    ok = np.all((W >= space.lower - tol) & (W <= space.upper + tol), axis=1) & (np.abs(W.sum(axis=1) - 1.0) <= tol)
    if space.groups:
        A, b = space.linear_constraints()
        ok &= np.all(W @ A.T <= b + tol, axis=1)
    return ok


# -- the swarm ------------------------------------------------------------------------------------------
def swarm(space: MixtureSpace, source_sizes: np.ndarray, hierarchy: dict[str, list[int]], n: int, seed: int,
          settings: SwarmSettings = SwarmSettings(), max_rounds: int = 20) -> np.ndarray:
    """Olmix's hierarchical source-then-topic swarm: ``n`` distinct mixtures ``(n, K)`` feasible in ``space``.

    ``source_sizes`` ``(K,)``: the domains' relative sizes (the prior); ``hierarchy``: :func:`hierarchy_of`
    the space's names; ``settings``: the generate config's knobs (defaults: ``SwarmConfig`` and
    ``ConfigDefaults``: strengths 15 log-spaced in [0.1, 5], minimum weight 2e-3 at both levels, 10x
    oversampling, temperature 1). The token caps are the space's bounds (:func:`capped_space` with
    :func:`token_caps` at :data:`PROXY_TOKENS`, factor 1). The algorithm is the module docstring's step 1."""
    rng = np.random.default_rng(seed)
    q = np.clip(np.asarray(source_sizes, float), 1e-300, None)
    q = q / q.sum()
    K = space.dim
    groups = list(hierarchy.values())
    source_prior = np.array([q[idx].sum() for idx in groups])
    topic_priors = [q[idx] / q[idx].sum() for idx in groups]
    if settings.temperature < 1.0:
        source_prior = source_prior**settings.temperature
        topic_priors = [p**settings.temperature for p in topic_priors]
    source_prior = source_prior / source_prior.sum()
    topic_priors = [p / p.sum() for p in topic_priors]
    if settings.min_strength == settings.max_strength:
        strengths = np.array([settings.min_strength])
    else:
        strengths = np.logspace(np.log10(settings.min_strength), np.log10(settings.max_strength), N_STRENGTHS)
    single_leaf = np.zeros(K, bool)  # "source" level: a source without topics (its name has no ':')
    for idx in groups:
        if len(idx) == 1:
            single_leaf[idx[0]] = True
    required = [groups[list(hierarchy).index(s)] for s in (settings.nonzero or ()) if s in hierarchy]
    same_minimum = settings.minimum_source_weight == settings.minimum_topic_weight

    kept = np.zeros((0, K))
    for _ in range(max_rounds):
        m = n * settings.sample_multiplier
        S = np.stack([rng.dirichlet(source_prior * s, size=m) for s in strengths], axis=1)  # (m, S, G)
        C = np.zeros((m, len(strengths), K))
        share = np.ones((m, len(strengths), K))  # each leaf's share of its source
        for g, idx in enumerate(groups):
            if len(idx) == 1:
                C[:, :, idx[0]] = S[:, :, g]
                continue
            T = np.stack([rng.dirichlet(topic_priors[g] * s, size=m) for s in strengths], axis=1)
            C[:, :, idx] = S[:, :, g, None] * T
            share[:, :, idx] = T
        ok = np.all((C >= space.lower - 1e-12) & (C <= space.upper + 1e-12), axis=2) & np.isfinite(C).all(axis=2)
        for idx in required:  # nonzero_weight: the source's surviving topics must exceed the source minimum
            total = C[:, :, idx].sum(axis=2, keepdims=True)
            alive = np.where(C[:, :, idx] >= settings.minimum_topic_weight * total, C[:, :, idx], 0.0)
            ok &= alive.sum(axis=2) > settings.minimum_source_weight
        keys = np.where(ok, rng.random(ok.shape), -1.0)
        rows = np.flatnonzero(ok.any(axis=1))
        pick = keys[rows].argmax(axis=1)
        X, X_share = C[rows, pick], share[rows, pick]
        if same_minimum:
            floor = settings.minimum_source_weight
            X = np.where(X < floor, 0.0, X)
            X = X / X.sum(axis=1, keepdims=True)
            X = np.round(X / floor) * floor
        else:
            X = np.where(single_leaf & (X < settings.minimum_source_weight), 0.0, X)
            X = np.where(~single_leaf & (X_share < settings.minimum_topic_weight), 0.0, X)
        total = X.sum(axis=1)
        X = X[total > 0] / total[total > 0, None]
        X = X[_feasible(space, X, 1e-9)]
        kept = _deduplicate(np.vstack([kept, X]))
        if len(kept) >= n:
            break
    if len(kept) < n:
        raise RuntimeError(f"the Olmix swarm found {len(kept)} distinct feasible mixtures, fewer than {n}")
    return kept[np.sort(rng.choice(len(kept), size=n, replace=False))]


def _deduplicate(W: np.ndarray) -> np.ndarray:
    """The rows of ``W`` without repeats (weights equal within :data:`DEDUPLICATION`), first kept, in order."""
    _, first = np.unique(np.round(W / DEDUPLICATION).astype(np.int64), axis=0, return_index=True)
    return W[np.sort(first)]


def swarm_statistics(W: np.ndarray) -> dict[str, float]:
    """The statistics the tests compare with a table: mean number of nonzero domains per run and the
    share of weights below 1e-3."""
    W = np.asarray(W, float)
    return {"nonzero_per_run": float((W > 0).sum(axis=1).mean()), "share_below_1e-3": float((W < 1e-3).mean())}


# -- the laws -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Law:
    """Olmix's mixing law of one task ``y = exp(log_c) + exp(W @ t)`` (``olmix/fit/utils.py`` ``mixing_law``)."""

    log_c: float
    t: np.ndarray

    def predict(self, W: np.ndarray) -> np.ndarray:
        return np.exp(self.log_c) + np.exp(np.clip(np.atleast_2d(W) @ self.t, -50.0, 50.0))


def _residual(p: np.ndarray, W: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.exp(np.clip(p[0], -50.0, 50.0)) + np.exp(np.clip(W @ p[1:], -50.0, 50.0)) - y


def _jacobian(p: np.ndarray, W: np.ndarray, y: np.ndarray) -> np.ndarray:
    e = np.exp(np.clip(W @ p[1:], -50.0, 50.0))
    return np.column_stack([np.full(len(y), np.exp(np.clip(p[0], -50.0, 50.0))), W * e[:, None]])


def huber_loss(law: Law, W: np.ndarray, y: np.ndarray, delta: float = HUBER_DELTA) -> float:
    """The summed Huber loss of ``law`` on runs ``(W, y)``: ``r^2 / 2`` where ``|r| <= delta``, else
    ``delta (|r| - delta / 2)`` (torch's ``huber_loss``, ``reduction="sum"``, as ``olmix/fit/law.py``)."""
    r = np.abs(law.predict(W) - y)
    return float(np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)).sum())


def fit_law(W: np.ndarray, y: np.ndarray, seed: int = 0, task_index: int = 0, delta: float = HUBER_DELTA,
            starts: int = STARTS) -> Law:
    """One task's law fit as Olmix fits it (module docstring, step 2): the least summed Huber loss
    (``delta`` 0.02) over ``starts`` starts drawn as upstream's (``log_c`` spread over [-2, 1.5]; upstream
    300 starts). Minimised by scipy's trust-region least squares with its ``huber`` loss at ``f_scale =
    delta``, which is the same objective (upstream: torch's L-BFGS)."""
    from scipy.optimize import least_squares

    W, y = np.asarray(W, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    K = W.shape[1]
    best, best_cost = None, np.inf
    for log_c in np.resize(np.linspace(LOG_C_STARTS[0], LOG_C_STARTS[-1], min(starts, len(LOG_C_STARTS))), starts):
        t = rng.random(K) * 0.1
        if task_index < K:  # upstream puts the negative slope at the domain indexed like the task
            t[task_index] = -rng.random()
        result = least_squares(_residual, np.concatenate([[log_c], t]), jac=_jacobian, args=(W, y), loss="huber",
                               f_scale=delta, method="trf", max_nfev=1000)
        if np.isfinite(result.cost) and result.cost < best_cost:
            best, best_cost = result.x, float(result.cost)
    assert best is not None
    return Law(float(best[0]), best[1:].copy())


def fit_laws(W: np.ndarray, Y: np.ndarray, seed: int = 0, delta: float = HUBER_DELTA, starts: int = STARTS) -> list[Law]:
    """One law per column of ``Y`` ``(n, T)`` (per-task metrics, lower is better) on mixtures ``W``
    ``(n, K)``, as Olmix fits them: :func:`fit_law` with Huber delta 0.02, task ``j`` seeded ``seed + j``."""
    from threadpoolctl import threadpool_limits

    Y = np.asarray(Y, float).reshape(len(W), -1)
    with threadpool_limits(1):  # small matrices: threads only contend (10x slower on a busy machine)
        return [fit_law(W, y, seed=seed + j, task_index=j, delta=delta, starts=starts) for j, y in enumerate(Y.T)]


def predicted_objective(laws: Sequence[Law], task_weights: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``sum_t task_weights[t] * laws[t](W)`` for mixtures ``W`` ``(n, K)``: shape ``(n,)``."""
    return np.sum([a * law.predict(W) for law, a in zip(laws, task_weights, strict=True)], axis=0)


# -- the proposer ---------------------------------------------------------------------------------------
def kl_divergence(w: np.ndarray, prior: np.ndarray) -> float:
    """``KL(w || prior)`` with ``0 log 0 = 0``."""
    w = np.asarray(w, float)
    return float(np.sum(np.where(w > 0, w * np.log(np.clip(w, 1e-300, None) / prior), 0.0)))


def propose(space: MixtureSpace, prior: np.ndarray, laws: Sequence[Law], task_weights: np.ndarray, seed: int = 0,
            kl_reg: float = KL_REG) -> np.ndarray:
    """Olmix's proposal ``(K,)``: the minimiser of ``sum_t task_weights[t] exp(t_t . w) + kl_reg KL(w ||
    prior)`` inside ``space`` (upstream ``LogLinearExactProposer``: the simplex and the token caps
    ``tokens x 4 / target_tokens``, here whatever bounds and groups ``space`` holds: pass
    :func:`capped_space` for the caps). ``prior``: the relative source sizes (the KL's ``q``, floored at
    1e-12 and renormalised as upstream); ``task_weights``: upstream ``obj_weights``, else ``1/T`` each;
    ``kl_reg`` 0.05 as in every published fit config. Solved by SLSQP from the projected prior and two
    seeded starts; the best feasible answer is kept."""
    from threadpoolctl import threadpool_limits

    q = np.clip(np.asarray(prior, float), 1e-12, None)
    q = q / q.sum()
    A = np.array([law.t for law in laws])
    a = np.asarray(task_weights, float)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        e = a * np.exp(np.clip(A @ w, -50.0, 50.0))
        safe = np.clip(w, 1e-12, None)
        value = float(e.sum()) + kl_reg * float(np.sum(np.where(w > 0, w * np.log(safe / q), 0.0)))
        return value, A.T @ e + kl_reg * (np.log(safe / q) + 1.0)

    constraints = [{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}]
    if space.groups:
        G, b = space.linear_constraints()
        constraints.append({"type": "ineq", "fun": lambda w: b - G @ w, "jac": lambda w: -G})
    bounds = list(zip(space.lower, space.upper, strict=True))
    rng = np.random.default_rng(seed)
    starts = [space.project(q)] + [space.project(rng.dirichlet(q * space.dim + 1e-3)) for _ in range(2)]
    best, best_value = starts[0], objective(starts[0])[0]
    for x0 in starts:
        with threadpool_limits(1):
            result = minimize(objective, x0, jac=True, method="SLSQP", bounds=bounds, constraints=constraints,
                              options={"maxiter": 1000, "ftol": 1e-12})
        w = np.clip(result.x, space.lower, space.upper)
        w = w if _feasible(space, w[None], 1e-9)[0] else space.project(w)
        value = objective(w)[0]
        if space.is_feasible(w, tol=1e-9) and value < best_value:
            best, best_value = w, value
    return best


def olmix_recommend(space: MixtureSpace, prior: np.ndarray, W: np.ndarray, Y: np.ndarray,
                    task_weights: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Olmix's answer ``(K,)`` from runs ``W`` ``(n, K)`` with per-task metrics ``Y`` ``(n, T)`` (lower is
    better): :func:`fit_laws` then :func:`propose` (``task_weights`` None: ``1/T`` each, as upstream
    without ``obj_weights``)."""
    laws = fit_laws(W, Y, seed=seed)
    weights = np.full(len(laws), 1.0 / len(laws)) if task_weights is None else np.asarray(task_weights, float)
    return propose(space, prior, laws, weights, seed=seed)


# -- the targets of a fit config ------------------------------------------------------------------------
def olmix_targets(metrics: pd.DataFrame, per_family: bool) -> tuple[np.ndarray, list[str], np.ndarray]:
    """What Olmix fits from a published metrics table (``run_fit`` in ``olmix/fit/core.py``): ``(Y (n, T),
    task names, task weights (T,))``. ``metrics``: one column per task (other columns are ignored if not
    numeric task columns: pass the metric columns only).

    - MMLU's 57 subjects become 4 category columns (``mmlu_stem``, ``mmlu_other``,
      ``mmlu_social_sciences``, ``mmlu_humanities``), question-weighted (``aggregate_mmlu``);
    - per task (``per_family=False``, the full-recomputation config): every column, then
      :data:`DROPPED_METRICS` removed; weights ``1/T``;
    - per family (the DCLM config): math = ``minerva_math_*``, code = ``codex_*``, ``mbpp*``, ``mt_mbpp*``,
      QA = the other tasks of its ``eval.tasks`` list; each family the row mean of its tasks still among
      the columns after MMLU's aggregation, so, as upstream computes it, QA leaves out MMLU (its
      subjects were replaced by the category columns, which no family lists) and keeps the five dropped
      tasks (drops apply to fitted metrics by name, and no family is named like them); weights
      :data:`FAMILY_WEIGHTS`.
    """
    M = metrics.copy()
    columns = list(M.columns)
    subjects = {s: next((c for c in columns if c.startswith(f"mmlu_{s}:")), None)
                for category in MMLU_QUESTIONS.values() for s in category}
    if all(subjects.values()) and "mmlu_stem" not in columns:
        for category, counts in MMLU_QUESTIONS.items():
            total = sum(counts.values())
            M[f"mmlu_{category}"] = sum(M[subjects[s]] * (k / total) for s, k in counts.items())
        M = M.drop(columns=list(subjects.values()))
    tasks = list(M.columns)
    if not per_family:
        kept = [c for c in tasks if c not in DROPPED_METRICS]
        return M[kept].to_numpy(float), kept, np.full(len(kept), 1.0 / len(kept))
    listed = [c for c in columns if c in tasks]  # the eval list is every original column; MMLU subjects are gone
    math = [c for c in listed if c.startswith("minerva_math_")]
    code = [c for c in listed if c.startswith(("codex_", "mbpp", "mt_mbpp"))]
    qa = [c for c in listed if c not in math and c not in code]
    Y = np.column_stack([M[cols].to_numpy(float).mean(axis=1) for cols in (math, code, qa)])
    return Y, list(FAMILY_WEIGHTS), np.array(list(FAMILY_WEIGHTS.values()))


# Published priors: name -> (relative size, token count). Full recomputation: configs/examples/fit/
# full_recomputation.yaml (priors from the Olmix Hugging Face data set's full_recomputation/meta.json);
# DCLM: configs/examples/fit/dclm_per_family.yaml (same values as mixture_reuse_case_study/fit/0_dclm.yaml).
FULL_RECOMPUTATION_PRIORS: dict[str, tuple[float, int]] = {
    "arxiv": (0.04081632653, 20773846846),
    "dclm:adult_content": (0.007260008378781617, 67760078203),
    "dclm:art_and_design": (0.007570683427890269, 70659711995),
    "dclm:crime_and_law": (0.018228312297343258, 170130914779),
    "dclm:education_and_jobs": (0.01978829923464438, 184690792861),
    "dclm:electronics_and_hardware": (0.008589486615330858, 80168541745),
    "dclm:entertainment": (0.04733229233020377, 441768061760),
    "dclm:fashion_and_beauty": (0.0039917720905245065, 37256539512),
    "dclm:finance_and_business": (0.033247920811400884, 310313927581),
    "dclm:food_and_dining": (0.01135042496619488, 105937299687),
    "dclm:games": (0.024642052681790323, 229992491702),
    "dclm:health": (0.04216031012418717, 393496227836),
    "dclm:history_and_geography": (0.017255327084508186, 161049719459),
    "dclm:home_and_hobbies": (0.013597583283321514, 126910777314),
    "dclm:industrial": (0.004668443619570556, 43572140450),
    "dclm:literature": (0.03908939408990015, 364834344848),
    "dclm:politics": (0.06548551394749036, 611198130192),
    "dclm:religion": (0.029761813843007766, 277776929208),
    "dclm:science_math_and_technology": (0.04576404153537389, 427131054341),
    "dclm:social_life": (0.023435554405540723, 218731841124),
    "dclm:software": (0.011575647859110355, 108039380021),
    "dclm:software_development": (0.023934104386801644, 223384974282),
    "dclm:sports_and_fitness": (0.021081428501823974, 196759999355),
    "dclm:transportation": (0.009727854235711368, 90793306202),
    "dclm:travel_and_tourism": (0.0061760159495475595, 57642815530),
    "finemath-3plus": (0.1020408163, 34057973953),
    "pes2o": (0.02040816327, 58552461187),
    "s2pdf:adult": (2.9834951769534685e-05, 303073226),
    "s2pdf:art_design": (0.0007003987723587315, 6833185034),
    "s2pdf:crime_law": (0.004304497877255197, 42538674743),
    "s2pdf:education_jobs": (0.013423914190223355, 138127926093),
    "s2pdf:entertainment": (0.0005735046619634145, 6069602783),
    "s2pdf:fashion_beauty": (5.652756872639283e-05, 557917820),
    "s2pdf:finance_business": (0.005875381689656523, 61150044703),
    "s2pdf:food_dining": (0.00023137752229735462, 2322982204),
    "s2pdf:games": (0.0002379401441074673, 2486095532),
    "s2pdf:health": (0.01188453277839032, 108215933374),
    "s2pdf:home_hobbies": (0.000365144166266438, 3924579643),
    "s2pdf:industrial": (0.0027110519108453452, 29389278657),
    "s2pdf:literature": (0.0032599235022842247, 31886391090),
    "s2pdf:politics": (0.004002747743592977, 39234116889),
    "s2pdf:religion": (0.0024809398443353067, 24729732953),
    "s2pdf:science_tech": (0.04479499276302395, 424245385160),
    "s2pdf:software": (0.0008012257357437738, 9146853216),
    "s2pdf:software_dev": (0.00395883882022922, 41841278724),
    "s2pdf:sports_fitness": (0.0005310539609999115, 5450913796),
    "s2pdf:transportation": (0.0016066058929999894, 17149342957),
    "s2pdf:travel": (0.00021038180293057342, 2102425717),
    "stack-edu:C": (0.0061786719102295004, 4735074247),
    "stack-edu:CSharp": (0.00940099268591905, 7204525343),
    "stack-edu:Cpp": (0.01635064398307945, 12530445761),
    "stack-edu:Go": (0.0018249894127522247, 1398595118),
    "stack-edu:Java": (0.04090481020788093, 31347725888),
    "stack-edu:JavaScript": (0.011596372856026719, 8886972357),
    "stack-edu:Markdown": (0.03773213389237864, 28916320218),
    "stack-edu:PHP": (0.009649581453994433, 7395033318),
    "stack-edu:Python": (0.023510988448010806, 18017832560),
    "stack-edu:Ruby": (0.001809566706914491, 1386775805),
    "stack-edu:Rust": (0.0018508937755699767, 1418447132),
    "stack-edu:SQL": (0.009216937068389422, 7063472860),
    "stack-edu:Shell": (0.0033178202487746814, 2542637875),
    "stack-edu:Swift": (0.0019703834928440217, 1510019025),
    "stack-edu:TypeScript": (0.003256642457235611, 2495753789),
    "wikipedia": (0.02040816327, 10067758073),
}
DCLM_PRIORS: dict[str, tuple[float, int]] = {
    "adult_content": (0.011426145559378242, 67760078203),
    "art_and_design": (0.017115279947642753, 70659711995),
    "crime_and_law": (0.03760251381333424, 170130914779),
    "education_and_jobs": (0.03819063764260111, 184690792861),
    "electronics_and_hardware": (0.02252846927808186, 80168541745),
    "entertainment": (0.09499472729589659, 441768061760),
    "fashion_and_beauty": (0.009181677850877463, 37256539512),
    "finance_and_business": (0.06572786800235751, 310313927581),
    "food_and_dining": (0.020291659593193807, 105937299687),
    "games": (0.0510904592313224, 229992491702),
    "health": (0.10085821548021548, 393496227836),
    "history_and_geography": (0.028007795295185975, 161049719459),
    "home_and_hobbies": (0.034621890011029464, 126910777314),
    "industrial": (0.010640504851475604, 43572140450),
    "literature": (0.05367136256765137, 364834344848),
    "politics": (0.09838421860766539, 611198130192),
    "religion": (0.04030199076983852, 277776929208),
    "science_math_and_technology": (0.06933979163830614, 427131054341),
    "social_life": (0.04443687756758139, 218731841124),
    "software": (0.025134154331657502, 108039380021),
    "software_development": (0.04835767747466825, 223384974282),
    "sports_and_fitness": (0.03455368961865927, 196759999355),
    "transportation": (0.02686612455867175, 90793306202),
    "travel_and_tourism": (0.01667626901270792, 57642815530),
}

# MMLU test questions per subject, by category: Olmix aggregates the 57 subjects into 4 category columns
# weighted by these counts (olmix/fit/utils.py aggregate_mmlu; its weights are these counts over each
# category's total, checked equal).
MMLU_QUESTIONS: dict[str, dict[str, int]] = {
    "stem": {"abstract_algebra": 100, "astronomy": 152, "college_biology": 144, "college_chemistry": 100,
             "college_computer_science": 100, "college_mathematics": 100, "college_physics": 102,
             "computer_security": 100, "conceptual_physics": 235, "electrical_engineering": 145,
             "elementary_mathematics": 378, "high_school_biology": 310, "high_school_chemistry": 203,
             "high_school_computer_science": 100, "high_school_mathematics": 270, "high_school_physics": 151,
             "high_school_statistics": 216, "machine_learning": 112},
    "other": {"anatomy": 135, "business_ethics": 100, "clinical_knowledge": 265, "college_medicine": 173,
              "global_facts": 100, "human_aging": 223, "management": 103, "marketing": 234,
              "medical_genetics": 100, "miscellaneous": 783, "nutrition": 306, "professional_accounting": 282,
              "professional_medicine": 272, "virology": 166},
    "social_sciences": {"econometrics": 114, "high_school_geography": 198,
                        "high_school_government_and_politics": 193, "high_school_macroeconomics": 390,
                        "high_school_microeconomics": 238, "high_school_psychology": 545, "human_sexuality": 131,
                        "professional_psychology": 612, "public_relations": 110, "security_studies": 245,
                        "sociology": 201, "us_foreign_policy": 100},
    "humanities": {"formal_logic": 126, "high_school_european_history": 165, "high_school_us_history": 204,
                   "high_school_world_history": 237, "international_law": 121, "jurisprudence": 108,
                   "logical_fallacies": 163, "moral_disputes": 346, "moral_scenarios": 895, "philosophy": 311,
                   "prehistory": 324, "professional_law": 1534, "world_religions": 171},
}
