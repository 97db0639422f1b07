"""Cost-aware multi-fidelity acquisition: which mixture to run next, and at which fidelity (pure of any study).

- Model: BoTorch's ``SingleTaskMultiFidelityGP`` over the free weights (unit-scaled by their bounds) and
  one fidelity column ``s`` in (0, 1], a run's tokens over the target fidelity's (1 at the target), with
  its linear truncated fidelity kernel (the correlation between fidelities grows as ``s`` nears 1);
  outcome standardized and maximized. Several objectives: one augmented Chebyshev scalarization of them,
  drawn per batch (ParEGO's way of covering the front).
- Acquisition: BoTorch's multi-fidelity max-value entropy search (``qMultiFidelityMaxValueEntropy``):
  the information a run at ``(w, s)`` gives about the maximum at the target fidelity, divided by the
  run's cost (``InverseCostWeightedUtility``). It is scored on a pool of feasible mixtures at every
  fidelity; a batch is chosen greedily, each choice pending (fantasized) for the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mixopt.search.botorch import DTYPE, as_tensor, free_sources, seeded
from mixopt.search.designs import dirichlet_design, local_design
from mixopt.space import MixtureSpace

POOL_SIZE = 512  # candidate mixtures scored per choice: a quarter uniform, a quarter around the prior, half local
# Fantasy models of the pending runs in a batch: the pending-aware score costs about this many times the
# plain one (17 sources, 60 runs, 1024 candidates: 0.12 s plain, 0.8 s with 4 fantasies, 6 s with 16).
NUM_FANTASIES = 4
LOCAL_CONCENTRATION = 20.0  # Dirichlet concentration of the draws around the best believed runs
N_CENTRES = 4  # measured mixtures (best believed at the target) the local draws are centred on
SCORED_AT_ONCE = 512  # candidates per acquisition call (memory: each carries its fantasy models)
CHEBYSHEV_AUGMENT = 0.05  # the augmented Chebyshev scalarization's linear term (ParEGO's value)


@dataclass(frozen=True)
class Choice:
    """One run to make: mixture ``weights`` ``(K,)`` at fidelity ``level`` (an index into the levels), with
    the acquisition ``value`` (information per unit of cost) that chose it."""

    weights: np.ndarray
    level: int
    value: float


def scalarized(maximized: np.ndarray, seed: int) -> np.ndarray:
    """``maximized`` ``(n, m)`` as one column ``(n,)`` to maximize: itself for one objective, else the
    augmented Chebyshev scalarization of the objectives scaled to [0, 1], weights drawn from ``seed``."""
    if maximized.shape[1] == 1:
        return maximized[:, 0]
    low, high = maximized.min(axis=0), maximized.max(axis=0)
    scaled = (maximized - low) / np.where(high > low, high - low, 1.0)
    weights = np.random.default_rng(seed).dirichlet(np.ones(maximized.shape[1]))
    return (scaled * weights).min(axis=1) + CHEBYSHEV_AUGMENT * scaled @ weights


def fit_multifidelity_gp(space: MixtureSpace, weights: np.ndarray, levels: np.ndarray, y: np.ndarray,
                         noise: np.ndarray | None = None):
    """The multi-fidelity GP of maximized outcomes ``y`` ``(n,)`` at mixtures ``weights`` ``(n, K)`` run at
    fidelity levels ``levels`` ``(n,)`` in (0, 1]; ``noise``: observation variances ``(n,)`` (None: inferred)."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskMultiFidelityGP
    from botorch.models.transforms import Normalize, Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    free = free_sources(space)
    X = as_tensor(np.column_stack([weights[:, free], levels]))
    bounds = as_tensor(np.column_stack([np.stack([space.lower[free], space.upper[free]]), [0.0, 1.0]]))
    model = SingleTaskMultiFidelityGP(
        X, as_tensor(y[:, None]), None if noise is None else as_tensor(np.maximum(noise, 1e-10)[:, None]),
        data_fidelities=[X.shape[1] - 1], input_transform=Normalize(d=X.shape[1], bounds=bounds),
        outcome_transform=Standardize(m=1),
    )
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def choose_runs(space: MixtureSpace, weights: np.ndarray, levels: np.ndarray, maximized: np.ndarray,
                fidelity_levels: np.ndarray, costs: np.ndarray, n: int, *, seed: int,
                prior: np.ndarray, noise: np.ndarray | None = None, threads: int = 1,
                pool_size: int = POOL_SIZE) -> list[Choice]:
    """``n`` runs to make next from the runs so far (``weights`` ``(r, K)`` at ``levels`` ``(r,)`` with
    ``maximized`` ``(r, m)``): mixtures of ``space`` at one of ``fidelity_levels`` ``(F,)`` (the last is
    the target, 1.0) whose runs cost ``costs`` ``(F,)`` (any unit), by cost-weighted MF-MES. ``noise``:
    observation variances ``(r,)`` of a single objective (None: inferred). Deterministic for a given seed."""
    from botorch.acquisition.cost_aware import InverseCostWeightedUtility
    from botorch.acquisition.max_value_entropy_search import qMultiFidelityMaxValueEntropy
    from botorch.acquisition.utils import project_to_target_fidelity
    from botorch.models.deterministic import GenericDeterministicModel

    free = free_sources(space)
    d = int(free.sum())
    levels_t, costs_t = as_tensor(fidelity_levels), as_tensor(costs)

    def cost_of(X: torch.Tensor) -> torch.Tensor:  # (..., q, d + 1) -> (..., q, 1): the cost of each run's level
        nearest = (X[..., -1:].unsqueeze(-1) - levels_t).abs().argmin(dim=-1)
        return costs_t[nearest]

    with seeded(seed, threads):
        y = scalarized(maximized, seed)
        model = fit_multifidelity_gp(space, weights, levels, y, noise if maximized.shape[1] == 1 else None)
        pool = candidate_mixtures(space, model, weights, prior, seed, pool_size)
        target = as_tensor(np.column_stack([pool[:, free], np.ones(len(pool))]))
        acquisition = qMultiFidelityMaxValueEntropy(
            model, candidate_set=target, num_fantasies=NUM_FANTASIES, cost_aware_utility=InverseCostWeightedUtility(GenericDeterministicModel(cost_of, 1)),
            project=lambda X: project_to_target_fidelity(X, {d: 1.0}, d + 1),
        )
        grid = torch.cat([torch.cat([target[:, :-1], torch.full((len(pool), 1), float(level), dtype=DTYPE)], dim=1)
                          for level in fidelity_levels])  # (F * P, d + 1): every mixture at every level
        chosen: list[int] = []
        choices: list[Choice] = []
        for _ in range(n):
            with torch.no_grad():
                values = torch.cat([acquisition(chunk.unsqueeze(1)) for chunk in grid.split(SCORED_AT_ONCE)])
            values[chosen] = -torch.inf
            best = int(values.argmax())
            chosen.append(best)
            choices.append(Choice(pool[best % len(pool)], best // len(pool), float(values[best])))
            acquisition.set_X_pending(grid[chosen])
    return choices


def candidate_mixtures(space: MixtureSpace, model, weights: np.ndarray, prior: np.ndarray, seed: int,
                       size: int) -> np.ndarray:
    """Feasible mixtures ``(size, K)``: ``size`` / 4 uniform in the polytope, ``size`` / 4 around the
    prior, ``size`` / 2 around the measured mixtures the model believes best at the target fidelity; in a
    space with ``candidates``, those."""
    if space.candidates is not None:
        return space.candidates
    free = free_sources(space)
    X = as_tensor(np.column_stack([weights[:, free], np.ones(len(weights))]))
    with torch.no_grad():
        mean = model.posterior(X).mean[:, 0].numpy()
    centres = weights[np.argsort(-mean, kind="stable")[:N_CENTRES]]
    quarter = size // 4
    return np.vstack([space.sample(quarter, seed=seed), dirichlet_design(space, prior, quarter, seed),
                      local_design(space, centres, size - 2 * quarter, seed + 1, LOCAL_CONCENTRATION)])
