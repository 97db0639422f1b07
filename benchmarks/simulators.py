"""Simulators of training outcomes fit to the real mixture tables in ``benchmarks/data``.

A simulator maps a mixture ``w`` ``(K,)`` to expected outcomes ``(m,)`` (losses or bits per byte, lower is
better) and adds Gaussian observation noise at the level of repeated runs. Its mean is the average of two
models fit to every row of the table, so that neither model's quirks decide the optimum alone:

- a bagged LightGBM ensemble (5 models, different row and feature subsamples), the RegMix regressor;
- the Olmix log-linear law ``y = c + exp(b + t . w)`` fit by nonlinear least squares.

The search space of a simulator bounds each source by the largest weight the table ever gave it, so that
no searcher is rewarded for exploiting extrapolation far outside the measured runs.

The law of a mean of several losses (RegMix's mean of 13) is the mean of one law per loss: a single
exponential cannot follow a U-shaped mean (Spearman 0.62 against 0.96 for one domain's loss).

Noise level. The tables hold no repeated mixtures, so the run-to-run noise is estimated from pairs of
runs whose mixtures are nearest neighbours: ``d = (y_i - y_j) - (f(w_i) - f(w_j))`` removes the part of
the difference that the fitted mean ``f`` explains, and ``sqrt(median(d^2 / 2))`` over the closest
decile of pairs estimates the noise sd (:func:`nearest_pair_noise`; the benchmark prints the figures).

Data attribution: RegMix (Liu et al., ICLR 2025; MIT, Sea AI Lab) and Olmix (Allen Institute for AI;
Apache-2.0); see ``benchmarks/data/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from mixopt.space import MixtureSpace, Source

OLMIX_META = ["Unnamed: 0", "run", "name", "index"]
OLMIX_DROPPED = ["qasper_yesno", "sciriff_yesno", "lab_bench_dbqa", "lab_bench_protocolqa", "medqa_en"]
N_TREES_MODELS = 5


def _data_path(*parts: str):
    return resources.files("mixopt.benchmarks").joinpath("data", *parts)


# -- tables --------------------------------------------------------------------------------------
def regmix_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    """RegMix's 512 training runs: mixtures ``(512, 17)`` and validation losses ``(512, 13)``, joined on index."""
    W = pd.read_csv(_data_path("regmix", "train_mixture_1m.csv")).set_index("index")
    Y = pd.read_csv(_data_path("regmix", "train_pile_loss_1m.csv")).set_index("index").loc[W.index]
    W.columns = [c.removeprefix("train_the_pile_") for c in W.columns]
    Y.columns = [c.removeprefix("metric/the_pile_").removesuffix("_val_loss") for c in Y.columns]
    return W, Y


def olmix_families(columns: list[str]) -> dict[str, list[str]]:
    """Task families of the Olmix metric columns, as defined in data/README.md (dropped tasks excluded)."""
    kept = [c for c in columns if c not in OLMIX_META and not any(c.startswith(d) for d in OLMIX_DROPPED)]
    math = [c for c in kept if c.startswith(("minerva_math_", "basic_skills_arithmetic"))]
    code = [c for c in kept if c.startswith(("codex_", "mbpp", "mt_mbpp", "basic_skills_coding"))]
    qa = [c for c in kept if c not in math and c not in code]
    return {"math": math, "code": code, "qa": qa, "mean": kept}


def olmix_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Olmix's 512 runs: mixtures ``(512, 64)`` and family mean BPB (math, code, qa, mean) ``(512, 4)``."""
    R = pd.read_csv(_data_path("olmix", "full_recomputation_ratios.csv"))
    M = pd.read_csv(_data_path("olmix", "full_recomputation_metrics.csv")).set_index("run").loc[R["run"]]
    W = R.drop(columns=OLMIX_META).set_index(R["run"])
    families = olmix_families(list(M.columns))
    Y = pd.DataFrame({name: M[cols].mean(axis=1).to_numpy() for name, cols in families.items()}, index=W.index)
    return W, Y


# -- models ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogLinearLaw:
    """``y = c + exp(b + W @ t)`` for ``W`` ``(n, K)``; ``t`` ``(K,)``."""

    c: float
    b: float
    t: np.ndarray

    def predict(self, W: np.ndarray) -> np.ndarray:
        return self.c + np.exp(np.clip(self.b + W @ self.t, -50, 50))


@dataclass(frozen=True)
class MeanOfLaws:
    """The mean of several laws' predictions (an objective that averages several losses)."""

    laws: tuple[LogLinearLaw, ...]

    def predict(self, W: np.ndarray) -> np.ndarray:
        return np.mean([law.predict(W) for law in self.laws], axis=0)


def fit_log_linear(W: np.ndarray, y: np.ndarray) -> LogLinearLaw:
    """Least-squares fit of the Olmix law, started from a log-linear regression below the smallest outcome."""
    c0 = y.min() - 0.5 * y.std()
    X = np.column_stack([np.ones(len(W)), W])
    init = np.linalg.lstsq(X, np.log(y - c0), rcond=None)[0]

    def residual(p: np.ndarray) -> np.ndarray:
        return p[0] + np.exp(np.clip(p[1] + W @ p[2:], -50, 50)) - y

    result = least_squares(residual, np.concatenate([[c0], init]), method="trf", x_scale="jac")
    return LogLinearLaw(float(result.x[0]), float(result.x[1]), result.x[2:])


def fit_trees(W: np.ndarray, y: np.ndarray, seed: int = 0) -> list:
    """A bagged LightGBM ensemble (regressors with different subsample seeds)."""
    import lightgbm as lgb

    models = []
    for i in range(N_TREES_MODELS):
        model = lgb.LGBMRegressor(
            n_estimators=400, learning_rate=0.03, num_leaves=15, min_child_samples=10,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
            random_state=seed + i, n_jobs=1, verbose=-1,
        )
        models.append(model.fit(W, y))
    return models


def nearest_pair_noise(W: np.ndarray, y: np.ndarray, fitted: np.ndarray, fraction: float = 0.1) -> float:
    """Run-to-run noise sd from the closest ``fraction`` of nearest-neighbour pairs of rows of ``W`` ``(n, K)``.

    ``y`` ``(n,)`` measured, ``fitted`` ``(n,)`` a model's mean; the model removes the local variation.
    """
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(W).query(W, k=2)
    rows = np.argsort(dist[:, 1])[: max(3, int(fraction * len(W)))]
    pairs = idx[rows, 1]
    d = (y[rows] - y[pairs]) - (fitted[rows] - fitted[pairs])
    return float(np.sqrt(np.median(d**2 / 2.0)))


# -- the simulator ---------------------------------------------------------------------------------
@dataclass
class TableSimulator:
    """Expected outcomes ``(n, m)`` of mixtures ``(n, K)``, fit to a table; ``noise`` ``(m,)`` in outcome units."""

    name: str
    space: MixtureSpace
    objectives: tuple[str, ...]
    laws: list[MeanOfLaws]
    trees: list[list]
    noise: np.ndarray
    natural: np.ndarray

    def expected(self, W: np.ndarray) -> np.ndarray:
        W = np.atleast_2d(W)
        out = np.empty((len(W), len(self.objectives)))
        for o, (law, models) in enumerate(zip(self.laws, self.trees)):
            trees = np.mean([m.predict(W) for m in models], axis=0)
            out[:, o] = 0.5 * (law.predict(W) + trees)
        return out

    def observe(self, W: np.ndarray, seed: int) -> np.ndarray:
        """One noisy observation per mixture, shape ``(n, m)``."""
        mean = self.expected(W)
        return mean + np.random.default_rng(seed).normal(size=mean.shape) * self.noise


def fit_simulator(name: str, W: pd.DataFrame, Y: pd.DataFrame, objectives: dict[str, list[str]]) -> TableSimulator:
    """Fit a simulator over the sources of ``W``; each objective is the mean of its list of ``Y`` columns."""
    Wn = W.to_numpy(float)
    Wn = Wn / Wn.sum(axis=1, keepdims=True)
    sources = tuple(Source(n, max_weight=float(min(1.0, hi))) for n, hi in zip(W.columns, Wn.max(axis=0)))
    laws, trees, noise = [], [], []
    for columns in objectives.values():
        y = Y[columns].mean(axis=1).to_numpy(float)
        law = MeanOfLaws(tuple(fit_log_linear(Wn, Y[c].to_numpy(float)) for c in columns))
        models = fit_trees(Wn, y)
        fitted = 0.5 * (law.predict(Wn) + np.mean([m.predict(Wn) for m in models], axis=0))
        laws.append(law)
        trees.append(models)
        noise.append(nearest_pair_noise(Wn, y, fitted))
    return TableSimulator(
        name=name, space=MixtureSpace(sources), objectives=tuple(objectives), laws=laws, trees=trees,
        noise=np.array(noise), natural=Wn.mean(axis=0),
    )


@lru_cache(maxsize=None)
def load_simulator(name: str) -> TableSimulator:
    """``regmix-mean`` (mean of the 13 losses), ``regmix-pilecc``, ``olmix-mean``, ``olmix-3`` (math, code, QA)."""
    if name.startswith("regmix"):
        W, Y = regmix_table()
        objectives = {"regmix-mean": {"mean": list(Y.columns)}, "regmix-pilecc": {"pile_cc": ["pile_cc"]}}[name]
    elif name.startswith("olmix"):
        W, Y = olmix_table()
        families = {"olmix-mean": ["mean"], "olmix-3": ["math", "code", "qa"]}[name]
        objectives = {f: [f] for f in families}
    else:
        raise KeyError(name)
    return fit_simulator(name, W, Y, objectives)


SIMULATORS = ("regmix-mean", "regmix-pilecc", "olmix-mean", "olmix-3")
