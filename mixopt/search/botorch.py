"""The default searcher: Gaussian processes on the mixture weights with noisy batch acquisition.

- Model: one ``SingleTaskGP`` per objective over the free weights (scaled to the unit cube by their
  bounds), per-dimension length scales with BoTorch's dimension-scaled log-normal prior (so that the
  GP still learns at 64 sources), outcomes standardized; runners' standard errors, when reported, are
  the observation noise, else a noise model fitted to replicated mixtures (:mod:`mixopt.noise`: noise
  that varies over the simplex), else one level inferred by the GP. Prior mean constant, or linear in
  the weights (``mean``). When objectives average measured parts (``History.parts``, e.g. the mean of
  13 domain losses), one GP per part instead (a composite objective): each domain loss follows its own
  weights closely, while in their mean the gains and losses of the domains cancel down to the noise.
- Acquisition: qLogNEI for one objective, qLogNEHVI for 2-4, qLogNParEGO beyond (one random
  Chebyshev scalarization per proposal), conditioned on pending trials.
- Optimizer: with at most ``continuous_max_sources`` free sources, continuous ``optimize_acqf`` with
  the polytope's constraints (sum, bounds, groups); otherwise ``optimize_acqf_discrete`` over a pool of
  feasible candidates (in a space with ``candidates``, the unused ones, whatever the number of sources): uniform samples of the polytope (space-filling), Dirichlet draws around the prior
  (data-like designs) and, as a trust region, draws around the mixtures the model currently believes
  best (several objectives: spread along the believed front).
- Initial design: the prior mixture, then uniform samples of the polytope interleaved with
  sparse-to-dense Dirichlet draws around the prior (``uniform_share`` of them uniform).
- Predictor (for :mod:`mixopt.search.recommend`): the posterior mean and standard deviation of each objective
  (with parts: their composition, the parts' posteriors being independent given the data).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from gpytorch.means import Mean

from mixopt import compat
from mixopt.candidates import unused_mask
from mixopt.errors import ConfigError
from mixopt.noise import fit_noise
from mixopt.search.base import Searcher, believed_order
from mixopt.search.designs import dirichlet_design, local_design, prior_mixture
from mixopt.space import MixtureSpace
from mixopt.trials import History

DTYPE = torch.float64
LOCAL_CONCENTRATION = 20.0  # Dirichlet concentration of the trust-region draws (per unit of mass, per source)
N_LOCAL_CENTERS = 4


SEEN_TOLERANCE = 1e-3  # largest per-source gap between a proposal and a seen (grid-rounded) mixture
# The batched fit of one GP per part runs L-BFGS until its slowest part converges; 200 iterations fit
# as well (RegMix's 13 losses, 56 runs: correlation of the predicted mean with the true mean over 2000
# uniform mixtures 0.802, against 0.799 fitted to convergence) in a quarter of the time.
PARTS_FIT_OPTIONS = {"maxiter": 200}
MEANS = ("constant", "linear", "mixing-law")  # GP prior means: BoTorch's constant, linear, or the fitted log-linear law
MIXING_LAW_DELTA, MIXING_LAW_RIDGE = 1.0, 1e-4  # Huber threshold (standard deviations) and ridge on the exponents
MAX_CANDIDATE_POOL = 8192  # candidates (of a ``candidates:`` set) scored per proposal; more are subsampled
DISCRETE_BATCH = 2048  # candidates scored at once by optimize_acqf_discrete (its default), for one GP output


class BoTorchSearcher(Searcher):
    """Options: ``n_init`` (design points before the first model), ``prior`` ({source: weight}, the
    natural distribution; default token shares or uniform), ``pool_size`` (candidates screened per
    proposal), ``continuous_max_sources``, ``mc_samples``, ``uniform_share`` (of the
    design and the candidate pool drawn uniformly from the polytope, the rest around the prior), ``threads``,
    ``outcome_constraint``, ``composite`` (model the parts of objectives that average measured metrics, when
    the history has them; default True) and ``composite_max_runs`` (beyond this many measured runs, model
    the objectives instead of their parts: the part-by-part fit and acquisition grow about as n^2 and took
    minutes at a few hundred runs; default 128, see BENCHMARKS.md). With one objective: ``local_share`` (of
    each batch drawn around the recommended mixture instead of chosen by qLogNEI) and ``recommend_surrogate`` (a surrogate name, e.g.
    ``ensemble``, whose predictions the recommendation uses instead of the GP's); both off by default, see
    BENCHMARKS.md for where they help."""

    def __init__(
        self,
        n_init: int = 16,
        prior: dict[str, float] | None = None,
        pool_size: int = 1024,
        continuous_max_sources: int = 4,
        mc_samples: int = 64,
        uniform_share: float = 0.5,
        threads: int = 1,
        local_share: float = 0.0,
        recommend_surrogate: str | None = None,
        composite: bool = True,
        composite_max_runs: int = 128,
        mean: str = "constant",
        outcome_constraint: dict | None = None,
    ) -> None:
        super().__init__(outcome_constraint)
        self.n_init = n_init
        self.prior = prior
        self.pool_size = pool_size
        self.continuous_max_sources = continuous_max_sources
        self.mc_samples = mc_samples
        self.uniform_share = uniform_share
        self.threads = threads
        if not 0.0 <= local_share <= 1.0:
            raise ConfigError(f"local_share is {local_share}: give a share of each batch between 0 and 1")
        self.local_share = local_share
        if recommend_surrogate is not None:
            from mixopt.surrogates import SURROGATES

            SURROGATES.load(recommend_surrogate)  # an unknown name fails here, before any run
        self.recommend_surrogate = recommend_surrogate
        self.composite = composite
        self.composite_max_runs = composite_max_runs
        if mean not in MEANS:
            raise ConfigError(f"mean is '{mean}': give one of {', '.join(MEANS)}")
        self.mean = mean

    # -- the contract --------------------------------------------------------------------------
    def propose(self, space: MixtureSpace, history: History, n: int, *, seed: int) -> np.ndarray:
        center = prior_mixture(space, self.prior)
        if len(history) < max(self.n_init, 2):
            return self._design(space, history, center, n, seed)
        with seeded(seed, self.threads):
            free = free_sources(space)
            model = fit_model(space, history, self._composite(history), self.mean)
            local = self._local_draws(space, history, model, n, seed)
            if len(local) == n:
                return local
            history, n = _with_pending(history, list(local)), n - len(local)
            acq = self._acquisition(space, history, model, seed)
            if free.sum() <= self.continuous_max_sources and space.candidates is None:
                X = _optimize_continuous(space, acq, n, seed)
            else:
                X = self._optimize_discrete(space, history, model, acq, center, n, seed)
        return np.vstack([local, _complete(space, X)])

    def predictor(self, space: MixtureSpace, history: History, *, seed: int):
        """The GP posterior of each objective (or, with ``recommend_surrogate`` and one objective, that
        surrogate's prediction); None before two runs are measured."""
        if len(history) < 2:
            return None
        if self.recommend_surrogate is not None and len(history.directions) == 1:
            from mixopt.surrogates import SURROGATES

            surrogate = SURROGATES.create(self.recommend_surrogate).fit(history.weights, history.values[:, 0])

            def predict_surrogate(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                mean, sd = surrogate.predict(W, return_std=True)
                return mean[:, None], sd[:, None]

            return predict_surrogate
        with seeded(seed, self.threads):
            model = fit_model(space, history, self._composite(history), self.mean)
        return lambda W: model.predict(space, W, history.signs)

    def _composite(self, history: History) -> bool:
        """Whether to model the parts of ``history`` (when it has them) rather than its objectives."""
        return self.composite and len(history) <= self.composite_max_runs

    # -- pieces ----------------------------------------------------------------------------------
    def _local_draws(self, space: MixtureSpace, history: History, model, n: int, seed: int) -> np.ndarray:
        """With one objective, ``local_share`` of the batch ``(n_local, K)``: Dirichlet draws around the
        mixture the GP recommends now (a space-filling trust region for the regression); else none."""
        from mixopt.search.recommend import recommend

        n_local = int(round(self.local_share * n)) if len(history.directions) == 1 else 0
        if n_local == 0:
            return np.zeros((0, space.dim))
        if self.recommend_surrogate is not None:
            predict = self.predictor(space, history, seed=seed)
        else:
            def predict(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return model.predict(space, W, history.signs)
        centre = recommend(predict, space, history, seed=seed, prior=prior_mixture(space, self.prior)).weights
        return local_design(space, centre[None], n_local, seed + 2, LOCAL_CONCENTRATION)

    def _design(self, space: MixtureSpace, history: History, center: np.ndarray, n: int, seed: int) -> np.ndarray:
        """The initial design: the prior (and the outcome-constraint baseline) first, then Dirichlet draws."""
        seen = np.vstack([history.weights, history.pending]) if len(history.pending) else history.weights
        firsts = [center]
        if self.outcome_constraint is not None:
            firsts.insert(0, self.outcome_constraint.baseline_weights(space))
        # Seen mixtures were rounded to the study's grid: the prior counts as seen within a few grid steps.
        firsts = [w for w in firsts if not np.any(np.all(np.abs(seen - w) <= SEEN_TOLERANCE, axis=1))]
        return np.vstack(firsts + [self._spread(space, center, n, seed)])[:n]

    def _spread(self, space: MixtureSpace, center: np.ndarray, n: int, seed: int) -> np.ndarray:
        """``n`` mixtures ``(n, K)``: a ``uniform_share`` of them uniform in the polytope (space-filling),
        the rest Dirichlet draws around the prior (data-like), interleaved so any prefix has both."""
        n_uniform = int(round(self.uniform_share * n))
        n_dirichlet = n - n_uniform
        W = np.vstack([space.sample(n_uniform, seed=seed), dirichlet_design(space, center, n_dirichlet, seed)])
        position = np.r_[np.arange(n_uniform) / max(n_uniform, 1), np.arange(n_dirichlet) / max(n_dirichlet, 1)]
        return W[np.argsort(position, kind="stable")]

    def _thresholds(self, space: MixtureSpace, history: History, model) -> np.ndarray | None:
        """Least acceptable maximized outcomes ``(m,)``: from the measured baseline, else the model's mean."""
        if self.outcome_constraint is None:
            return None
        floor = self.outcome_constraint.thresholds(space, history)
        if floor is None:
            baseline = self.outcome_constraint.baseline_weights(space)
            floor = model.mean(space, baseline[None])[0] - self.outcome_constraint.margins(len(history.directions))
        return floor

    def _acquisition(self, space: MixtureSpace, history: History, model, seed: int):
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
        from botorch.acquisition.multi_objective.objective import GenericMCMultiOutputObjective
        from botorch.acquisition.multi_objective.parego import qLogNParEGO
        from botorch.acquisition.objective import LinearMCObjective
        from botorch.sampling.normal import SobolQMCNormalSampler
        from botorch.utils.multi_objective.hypervolume import infer_reference_point
        from botorch.utils.multi_objective.pareto import is_non_dominated

        free = free_sources(space)
        X = as_tensor(history.weights[:, free])
        pending = as_tensor(history.pending[:, free]) if len(history.pending) else None
        sampler = SobolQMCNormalSampler(torch.Size([self.mc_samples]), seed=seed)
        floor = self._thresholds(space, history, model)
        A = as_tensor(model.output_map(len(history.directions)))  # model outputs -> objectives
        constraints = None if floor is None else _outcome_constraints(A, floor)
        m = len(history.directions)
        if m == 1:
            objective = None if model.composition is None else LinearMCObjective(A[0])
            return qLogNoisyExpectedImprovement(
                model.gp, X, sampler=sampler, objective=objective, X_pending=pending, prune_baseline=True,
                constraints=constraints,
            )
        objectives = None if model.composition is None else GenericMCMultiOutputObjective(_linear_map(A))
        if m <= 4:
            compat.skip_fused_hypervolume_kernel()
            Y = as_tensor(history.maximized)
            ref = infer_reference_point(Y[is_non_dominated(Y)])
            return qLogNoisyExpectedHypervolumeImprovement(
                model.gp, ref_point=ref, X_baseline=X, sampler=sampler, objective=objectives, X_pending=pending,
                prune_baseline=True, constraints=constraints,
            )
        weights = torch.tensor(np.random.default_rng(seed).dirichlet(np.ones(m)), dtype=DTYPE)
        return qLogNParEGO(
            model.gp, X, scalarization_weights=weights, sampler=sampler, objective=objectives, X_pending=pending,
            prune_baseline=True, constraints=constraints,
        )

    def _optimize_discrete(self, space, history, model, acq, center, n, seed) -> np.ndarray:
        from botorch.optim.optimize import optimize_acqf_discrete

        free = free_sources(space)
        if space.candidates is not None:
            pool = _unused_candidates(space, history, MAX_CANDIDATE_POOL, seed)
        else:
            pool = np.vstack([
                self._spread(space, center, self.pool_size // 2, seed),
                local_design(space, _best_believed(space, history, model, N_LOCAL_CENTERS), self.pool_size // 2, seed + 1,
                             LOCAL_CONCENTRATION),
            ])
        # Candidates scored at once: each holds a joint posterior per GP output, so parts take P times the memory.
        at_once = DISCRETE_BATCH if model.composition is None else max(1, DISCRETE_BATCH // model.composition.shape[1])
        if len(history.directions) > 4:  # ParEGO: a fresh scalarization for each proposal
            chosen: list[np.ndarray] = []
            for i in range(n):
                acq = self._acquisition(space, _with_pending(history, chosen), model, seed + i)
                x, _ = optimize_acqf_discrete(acq, 1, as_tensor(pool[:, free]), max_batch_size=at_once,
                                              X_avoid=as_tensor(np.array(chosen)) if chosen else None)
                chosen.append(_complete(space, x.numpy())[0])
            return np.array(chosen)[:, free]
        X, _ = optimize_acqf_discrete(acq, n, as_tensor(pool[:, free]), max_batch_size=at_once)
        return X.numpy()


# -- model helpers (pure functions of the history) ------------------------------------------------
@contextlib.contextmanager
def seeded(seed: int, threads: int):
    """Torch's random state set from ``seed`` (model fitting restarts and baseline pruning draw from it, so
    without this a proposal would depend on what the process ran before), the caller's state restored."""
    torch.set_num_threads(threads)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def _outcome_constraints(A: torch.Tensor, floor: np.ndarray) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """BoTorch outcome constraints (feasible where <= 0) for objectives ``Z @ A[o] >= floor[o]``, per objective."""

    def at_least(a: torch.Tensor, f: float) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda Z: f - Z @ a

    return [at_least(A[o], float(floor[o])) for o in range(len(floor))]


def _linear_map(A: torch.Tensor) -> Callable[..., torch.Tensor]:
    """The multi-output MC objective ``Z -> Z @ A.T`` (model outputs to objectives)."""

    def apply(Z: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        return Z @ A.T

    return apply


def free_sources(space: MixtureSpace) -> np.ndarray:
    """Mask ``(K,)`` of the sources whose weight is not pinned by their bounds."""
    return space.upper - space.lower > 1e-12


def as_tensor(a: np.ndarray) -> torch.Tensor:
    """``a`` as a torch tensor of the models' dtype (``DTYPE``), any shape."""
    return torch.as_tensor(np.asarray(a, dtype=float), dtype=DTYPE)


@dataclass(frozen=True)
class FittedModel:
    """GPs over the free weights. ``gp`` has one output per modelled outcome, maximized: the objectives,
    or with ``composition`` ``(m, P)`` the parts that the objectives average."""

    gp: Any
    composition: np.ndarray | None = None

    def output_map(self, n_objectives: int) -> np.ndarray:
        """Matrix ``(m, outputs)`` taking the GP's outputs to the maximized objectives."""
        return np.eye(n_objectives) if self.composition is None else self.composition

    def mean(self, space: MixtureSpace, W: np.ndarray) -> np.ndarray:
        """Posterior mean of the maximized objectives at mixtures ``W`` ``(n, K)`` -> ``(n, m)``."""
        X = as_tensor(W[:, free_sources(space)])
        with torch.no_grad():
            outputs = torch.cat([self.gp.posterior(chunk).mean for chunk in X.split(4096)]).numpy()
        return outputs if self.composition is None else outputs @ self.composition.T

    def predict(self, space: MixtureSpace, W: np.ndarray, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of the objectives in their own units (``signs`` ``(m,)``: +1 maximize,
        -1 minimize) at ``W`` ``(n, K)`` -> ``(n, m)`` each. Parts are independent outputs given the data, so
        the variance of their composition is ``variances @ composition**2``."""
        X = as_tensor(W[:, free_sources(space)])
        means, variances = [], []
        with torch.no_grad():
            for chunk in X.split(4096):
                posterior = self.gp.posterior(chunk)
                means.append(posterior.mean)
                variances.append(posterior.variance)
        mean, variance = torch.cat(means).numpy(), torch.cat(variances).numpy()
        if self.composition is not None:
            mean, variance = mean @ self.composition.T, variance @ (self.composition**2).T
        return mean * signs, np.sqrt(np.maximum(variance, 0.0))


def fit_model(space: MixtureSpace, history: History, composite: bool = True, mean: str = "constant") -> FittedModel:
    """GPs on the free weights fitted by marginal likelihood: with ``composite`` and measured parts, one
    batched GP over the parts; else one GP per objective (a ModelListGP if m > 1). ``mean``: the GP's
    prior mean, ``constant`` or ``linear`` in the (unit-scaled) free weights."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import ModelListGP, SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    free = free_sources(space)
    X = as_tensor(history.weights[:, free])
    bounds = as_tensor(np.stack([space.lower[free], space.upper[free]]))

    def gp(Y: torch.Tensor, stderr: np.ndarray | None):
        Yvar = _observation_noise(history.weights, Y.numpy(), stderr)
        return SingleTaskGP(
            X, Y, Yvar, input_transform=Normalize(d=X.shape[1], bounds=bounds),
            outcome_transform=Standardize(m=Y.shape[1]), mean_module=_mean_module(mean, X, Y, bounds),
        )

    parts = history.parts
    if composite and parts is not None:
        model = gp(as_tensor(parts.maximized(history.signs)), parts.stderr)
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model), optimizer_kwargs={"options": PARTS_FIT_OPTIONS})
        return FittedModel(model, parts.composition)
    Y = as_tensor(history.maximized)
    models = []
    for o in range(Y.shape[1]):
        model = gp(Y[:, o : o + 1], None if history.stderr is None else history.stderr[:, o : o + 1])
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        models.append(model)
    return FittedModel(models[0] if len(models) == 1 else ModelListGP(*models))


def _observation_noise(W: np.ndarray, Y: np.ndarray, stderr: np.ndarray | None) -> torch.Tensor | None:
    """Noise variances ``(n, m)`` of the observations ``Y`` at mixtures ``W``: the replicate noise model
    (:mod:`mixopt.noise`) where the history holds enough replicates, else the runners' standard errors
    squared when every run reported one; None (the GP infers one level) when neither is there.

    Replicates come first: a runner's standard error is often over evaluation items (lm-eval's, the SFT
    probe's), which every mixture shares, so it need not be the noise that separates mixtures; measured
    on the demo, the SFT probe's item standard error was 4x its seed-to-seed sd (BENCHMARKS.md)."""
    model = fit_noise(W, Y)
    if model is not None:
        return as_tensor(np.maximum(model.variance(W), 1e-10))
    if stderr is not None and np.all(np.isfinite(stderr)):
        return as_tensor(np.maximum(stderr**2, 1e-10))
    return None


def _mean_module(mean: str, X: torch.Tensor, Y: torch.Tensor, bounds: torch.Tensor):
    """The GP prior mean for inputs ``X`` ``(n, d)`` (raw free weights in ``bounds`` ``(2, d)``) and outcomes
    ``Y`` ``(n, m)``, in the GP's own coordinates (inputs scaled to the unit cube, outcomes standardized);
    None: BoTorch's constant mean."""
    if mean == "constant":
        return None
    if mean == "mixing-law":
        unit = (X - bounds[0]) / (bounds[1] - bounds[0])
        standardized = (Y - Y.mean(dim=0)) / Y.std(dim=0).clamp_min(1e-12)
        return MixingLawMean.fit(unit.numpy(), standardized.numpy())
    from gpytorch.means import LinearMean

    return LinearMean(X.shape[1], batch_shape=torch.Size([Y.shape[1]]) if Y.shape[1] > 1 else torch.Size())


class MixingLawMean(Mean):
    """A fixed prior mean ``c + s * exp(b + x . t)`` per output: the log-linear law of Data Mixing Laws and
    Olmix, fitted to the outcomes before the GP (:func:`mixopt.surrogates.loglinear.fit_law`: Huber loss,
    both signs tried), so that the GP models what the law leaves. It carries a domain's own trend beyond the
    measured runs, e.g. more of a source lowering that source's loss up to its bound. ``params`` ``(m, d + 2)``
    rows ``[c, b, t...]``, ``signs`` ``(m,)``; one output: plain shapes, several: batched as BoTorch's GPs."""

    def __init__(self, params: np.ndarray, signs: np.ndarray) -> None:
        super().__init__()
        batched = len(params) > 1
        p = as_tensor(params)
        self.register_buffer("offset", p[:, :1] if batched else p[0, :1])
        self.register_buffer("log_scale", p[:, 1:2] if batched else p[0, 1:2])
        self.register_buffer("rates", p[:, 2:, None] if batched else p[0, 2:, None])
        signs_ = as_tensor(signs)[:, None]
        self.register_buffer("signs", signs_ if batched else signs_[0])

    @classmethod
    def fit(cls, X: np.ndarray, Z: np.ndarray) -> MixingLawMean:
        """The law of each column of ``Z`` ``(n, m)`` (standardized outcomes) on ``X`` ``(n, d)``."""
        from mixopt.surrogates.loglinear import fit_law

        fits = [min(((*fit_law(X, z, sign, MIXING_LAW_DELTA, MIXING_LAW_RIDGE), sign) for sign in (1.0, -1.0)),
                    key=lambda fit: fit[1]) for z in Z.T]
        return cls(np.array([f[0] for f in fits]), np.array([f[2] for f in fits]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        exponent = (self.log_scale + (x @ self.rates).squeeze(-1)).clamp(-30.0, 30.0)
        return self.offset + self.signs * torch.exp(exponent)


def _best_believed(space: MixtureSpace, history: History, model, k: int) -> np.ndarray:
    """Up to ``k`` measured mixtures ``(k, K)`` the model believes best (:func:`believed_order`)."""
    return history.weights[believed_order(model.mean(space, history.weights), k)]


def _unused_candidates(space: MixtureSpace, history: History, limit: int, seed: int) -> np.ndarray:
    """The candidates ``(c, K)`` neither measured nor pending (all of them once every one is used), at most
    ``limit`` chosen at random."""
    assert space.candidates is not None
    taken = np.vstack([history.weights, history.pending]) if len(history.pending) else history.weights
    unused = unused_mask(space.candidates, taken)
    pool = space.candidates[unused] if unused.any() else space.candidates
    if len(pool) > limit:
        pool = pool[np.random.default_rng(seed).choice(len(pool), size=limit, replace=False)]
    return pool


def _with_pending(history: History, extra: list[np.ndarray]) -> History:
    if not extra:
        return history
    pending = np.vstack([history.pending, np.array(extra)]) if len(history.pending) else np.array(extra)
    return replace(history, pending=pending)


def _optimize_continuous(space: MixtureSpace, acq, n: int, seed: int) -> np.ndarray:
    """Sequential-greedy ``optimize_acqf`` over the free weights with sum, bound and group constraints."""
    from botorch.optim.optimize import optimize_acqf

    free = free_sources(space)
    idx = torch.arange(int(free.sum()))
    pinned = space.lower[~free].sum()
    equality = [(idx, torch.ones(len(idx), dtype=DTYPE), float(1.0 - pinned))]
    inequality = []
    M = space.group_matrix()
    for g, (lo, hi) in enumerate(zip(*space.group_bounds, strict=True)):
        members = torch.as_tensor(np.flatnonzero(M[g, free]))
        offset = float(M[g, ~free] @ space.lower[~free])
        if len(members) == 0:
            continue
        ones = torch.ones(len(members), dtype=DTYPE)
        if lo > 0:
            inequality.append((members, ones, float(lo - offset)))
        if hi < 1:
            inequality.append((members, -ones, float(offset - hi)))
    bounds = as_tensor(np.stack([space.lower[free], space.upper[free]]))
    X, _ = optimize_acqf(
        acq, bounds=bounds, q=n, num_restarts=2, raw_samples=128, sequential=True,
        equality_constraints=equality, inequality_constraints=inequality or None,
        options={"maxiter": 50, "seed": seed},
    )
    return X.detach().numpy()


def _complete(space: MixtureSpace, X_free: np.ndarray) -> np.ndarray:
    """Full mixtures ``(n, K)`` from free weights ``(n, k)``, pinned sources at their bound, made feasible."""
    free = free_sources(space)
    W = np.tile(space.lower, (len(X_free), 1))
    W[:, free] = X_free
    bad = [i for i in range(len(W)) if not space.is_feasible(W[i])]
    if bad:
        W[bad] = space.project(W[bad])
    return W
