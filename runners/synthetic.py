"""A simulator of microanneal outcomes with a known optimum, for tests, demos and benchmarks.

Per objective ``o`` (a loss, lower is better) the expected microanneal outcome follows the Data Mixing
Laws / Olmix log-linear form plus a diminishing-returns term (repeating one source helps less and less):

    L_o(w) = c_o + k_o * exp(t_o . w) + r * sum_j w_j**2

Coefficients are drawn from ``problem_seed``: each objective has "home" sources with strongly negative
``t`` (math data helps math) and others with mildly positive ``t``, so objectives trade off. Observation
noise is Gaussian with a standard deviation that depends on the mixture, ``sigma(w) = noise * exp(s . w)``
with ``s_j`` in ``[0, ln 25]`` (repeated real runs differ up to 25x in spread across the simplex). The
integration fidelity is a monotone but imperfect transform of the microanneal one:

    I_o(w) = a_o + b_o * (L_o(w) - min L_o)**0.8 + d_o . w
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from mixopt.errors import ConfigError
from mixopt.runners.base import Runner
from mixopt.trials import Evaluation, RunSpec

INTEGRATION_NOISE_FACTOR = 0.3
# Planted metrics with no headroom (``extra_metrics``), for metric selection: an accuracy pinned just
# under its ceiling of 1 (range SATURATED_RANGE, seed sd SATURATED_SD: a clear signal, nowhere to go)
# and a loss whose spread across mixtures (NOISY_RANGE) is far below its seed sd (NOISY_SD).
SATURATED_LOW, SATURATED_RANGE, SATURATED_SD = 0.99, 0.009, 2e-4
NOISY_LEVEL, NOISY_RANGE, NOISY_SD = 2.0, 0.002, 0.05


@dataclass(frozen=True)
class MixingLaw:
    """Coefficients: ``c``, ``k`` ``(m,)``; ``t`` ``(m, K)``; ``noise_exponent`` ``(K,)``; ``a``, ``b`` ``(m,)``; ``d`` ``(m, K)``."""

    c: np.ndarray
    k: np.ndarray
    t: np.ndarray
    curvature: float
    noise: float
    noise_exponent: np.ndarray
    a: np.ndarray
    b: np.ndarray
    d: np.ndarray
    floor: np.ndarray

    @property
    def n_objectives(self) -> int:
        return len(self.c)


def make_law(n_sources: int, n_objectives: int, seed: int = 0, noise: float = 0.01, curvature: float = 0.3) -> MixingLaw:
    """Seeded coefficients with real tradeoffs between objectives."""
    rng = np.random.default_rng(seed)
    m, K = n_objectives, n_sources
    home = rng.permutation(np.arange(K) % m)  # every source helps one objective most
    t = rng.uniform(0.0, 1.0, size=(m, K))
    t[home, np.arange(K)] = -rng.uniform(1.5, 3.0, size=K)
    c = rng.uniform(2.0, 3.0, size=m)
    k = rng.uniform(0.5, 1.0, size=m)
    # Expected minimum of the microanneal law over the simplex (at a vertex, ignoring curvature) anchors
    # the integration transform so that its base stays positive.
    floor = c + k * np.exp(t.min(axis=1))
    return MixingLaw(
        c=c, k=k, t=t, curvature=curvature, noise=noise,
        noise_exponent=rng.uniform(0.0, np.log(25.0), size=K),
        a=c - rng.uniform(0.2, 0.4, size=m), b=rng.uniform(0.8, 1.2, size=m),
        d=rng.normal(0.0, 0.03, size=(m, K)), floor=floor,
    )


def expected_outcome(law: MixingLaw, W: np.ndarray, integration: bool = False) -> np.ndarray:
    """Noise-free outcomes of mixtures ``W`` ``(n, K)`` -> ``(n, m)`` losses."""
    W = np.atleast_2d(W)
    micro = law.c + law.k * np.exp(W @ law.t.T) + law.curvature * np.sum(W**2, axis=1, keepdims=True)
    if not integration:
        return micro
    return law.a + law.b * np.maximum(micro - law.floor, 0.0) ** 0.8 + W @ law.d.T


def noise_sd(law: MixingLaw, W: np.ndarray, integration: bool = False) -> np.ndarray:
    """Standard deviation of one observation of each mixture, shape ``(n,)``."""
    sd = law.noise * np.exp(np.atleast_2d(W) @ law.noise_exponent) / 5.0
    return sd * (INTEGRATION_NOISE_FACTOR if integration else 1.0)


def planted_metrics(law: MixingLaw, w: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """One observation of the planted ``saturated`` accuracy and ``noisy`` loss of mixture ``w`` ``(K,)``:
    each moves with ``w`` along the first objective's exponents, scaled to ``[0, 1]`` over the sources."""
    t = law.t[0]
    position = float(w @ (t - t.min()) / (t.max() - t.min()))
    saturated = SATURATED_LOW + SATURATED_RANGE * position + rng.normal(0.0, SATURATED_SD)
    noisy = NOISY_LEVEL + NOISY_RANGE * position + rng.normal(0.0, NOISY_SD)
    return float(min(saturated, 1.0)), float(noisy)


class SyntheticRunner(Runner):
    """Options: ``metrics`` (one name per objective), ``problem_seed``, ``noise``, ``curvature``,
    ``integration`` (fidelity names simulated as integration runs), ``delay`` (seconds a run sleeps),
    ``effects`` (source name -> a shift of its ``t`` for every objective: negative plants a source that
    helps everything, positive one that hurts everything), ``extra_metrics`` (``{saturated: NAME, noisy:
    NAME}``: also report a planted saturated accuracy and a noise-dominated loss under those names; see
    :func:`planted_metrics`; the objectives' metrics are drawn as without them)."""

    def __init__(
        self,
        metrics: list[str] | None = None,
        problem_seed: int = 0,
        noise: float = 0.01,
        curvature: float = 0.3,
        integration: list[str] | None = None,
        delay: float = 0.0,
        report_stderr: bool = True,
        effects: dict[str, float] | None = None,
        extra_metrics: dict[str, str] | None = None,
    ) -> None:
        self.metrics = list(metrics or ["loss"])
        self.problem_seed = problem_seed
        self.noise = noise
        self.curvature = curvature
        self.integration = list(integration or ["integration"])
        self.delay = delay
        self.report_stderr = report_stderr
        self.effects = dict(effects or {})
        self.extra_metrics = dict(extra_metrics or {})
        unknown = sorted(set(self.extra_metrics) - {"saturated", "noisy"})
        if unknown:
            raise ConfigError(f"runner option extra_metrics: unknown kind '{unknown[0]}' (known: saturated, noisy)")

    def law(self, source_names: list[str]) -> MixingLaw:
        law = make_law(len(source_names), len(self.metrics), self.problem_seed, self.noise, self.curvature)
        if not self.effects:
            return law
        shift = np.array([self.effects.get(name, 0.0) for name in source_names])
        return dataclasses.replace(law, t=law.t + shift)

    def run(self, spec: RunSpec) -> Evaluation:
        start = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        w = np.array(list(spec.mixture.values()))
        law = self.law(list(spec.mixture))
        integration = spec.fidelity in self.integration
        mean = expected_outcome(law, w, integration)[0]
        sd = float(noise_sd(law, w, integration)[0])
        rng = np.random.default_rng(spec.seed)
        observed = mean + rng.normal(0.0, sd, size=mean.shape)
        metrics = {name: float(v) for name, v in zip(self.metrics, observed, strict=True)}
        if self.extra_metrics:
            planted = dict(zip(("saturated", "noisy"), planted_metrics(law, w, rng), strict=True))
            metrics.update({name: planted[kind] for kind, name in self.extra_metrics.items()})
        return Evaluation(
            metrics=metrics,
            stderr={name: sd for name in self.metrics} if self.report_stderr else {},
            cost={"seconds": time.perf_counter() - start, "tokens": float(spec.tokens)},
            runner="synthetic",
        )
