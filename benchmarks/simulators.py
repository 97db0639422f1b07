"""Simulators of training outcomes fit to the real mixture tables in ``benchmarks/data``.

A simulator maps a mixture ``w`` ``(K,)`` to expected outcomes ``(m,)`` (losses or bits per byte, lower is
better) and adds Gaussian observation noise at the level of repeated runs. An objective that averages
several measured losses (RegMix's mean of 13 domain losses) is simulated loss by loss, and its runs
report every loss (its *parts*), as real runs do. The mean of each simulated loss is the average of two
models fit to every row of the table, so that neither model's quirks decide the optimum alone:

- a bagged LightGBM ensemble (5 models, different row and feature subsamples), the RegMix regressor;
- the Olmix log-linear law ``y = c + exp(b + t . w)`` fit by nonlinear least squares.

The search space of a simulator bounds each source by the largest weight the table ever gave it, so that
no searcher is rewarded for exploiting extrapolation far outside the measured runs.

(A single exponential law cannot follow a U-shaped mean of several losses: Spearman 0.62 against 0.96
for one domain's loss; the mean of one law per loss can.)

Noise level. The tables hold no repeated mixtures, so the run-to-run noise is estimated from pairs of
runs whose mixtures are nearest neighbours: ``d = (y_i - y_j) - (f(w_i) - f(w_j))`` removes the part of
the difference that the mean ``f`` explains, and ``sqrt(median(d^2 / 2))`` over the closest decile of
pairs estimates the noise sd (:func:`nearest_pair_noise`). ``f`` is the *out-of-fold* prediction of the
same mean model (5-fold cross-validation, :func:`out_of_fold`): a flexible model's in-sample fit has
absorbed part of each row's noise, and in-sample residuals understate it. ``python -m
mixopt.benchmarks.search noise`` prints the estimates (out-of-fold and, for comparison, in-sample).
The noise of the losses of one run is correlated (:func:`nearest_pair_noise_cov`): each loss keeps its
own sd, their Spearman correlations over the same pairs give the correlation, and the whole is scaled so
that the noise of their mean matches that of the measured mean.

Data attribution: RegMix (Liu et al., ICLR 2025; MIT, Sea AI Lab) and Olmix (Allen Institute for AI;
Apache-2.0); see ``benchmarks/data/README.md``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from mixopt.space import MixtureSpace, Source
from mixopt.trials import mean_composition

OLMIX_META = ["Unnamed: 0", "run", "name", "index"]
OLMIX_DROPPED = ["qasper_yesno", "sciriff_yesno", "lab_bench_dbqa", "lab_bench_protocolqa", "medqa_en"]
N_TREES_MODELS = 5


def data_path(*parts: str):
    """A file or folder of ``benchmarks/data`` (as installed)."""
    return resources.files("mixopt.benchmarks").joinpath("data", *parts)


# -- tables --------------------------------------------------------------------------------------
def regmix_table(split: str = "train") -> tuple[pd.DataFrame, pd.DataFrame]:
    """RegMix's runs (``train``: the 512 training runs; ``test``: the 256 held out): mixtures ``(n, 17)`` and
    validation losses ``(n, 13)``, joined on index."""
    W = pd.read_csv(data_path("regmix", f"{split}_mixture_1m.csv")).set_index("index")
    Y = pd.read_csv(data_path("regmix", f"{split}_pile_loss_1m.csv")).set_index("index").loc[W.index]
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


def olmix_table(prefix: str = "full_recomputation") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Olmix's runs: mixtures and family mean BPB (math, code, qa, mean). ``full_recomputation``: 512 runs
    over 64 domains; ``dclm``: 127 runs over 24 DCLM web topics (same metric columns and families)."""
    W, M = olmix_runs(prefix)
    families = olmix_families(list(M.columns))
    Y = pd.DataFrame({name: M[cols].mean(axis=1).to_numpy() for name, cols in families.items()}, index=W.index)
    return W, Y


def olmix_runs(prefix: str = "full_recomputation") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Olmix's runs as published: mixtures ``(n, K)`` and every task metric column ``(n, tasks)``, indexed by run."""
    R = pd.read_csv(data_path("olmix", f"{prefix}_ratios.csv"))
    M = pd.read_csv(data_path("olmix", f"{prefix}_metrics.csv")).set_index("run").loc[R["run"]]
    return R.drop(columns=OLMIX_META).set_index(R["run"]), M


# -- models ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogLinearLaw:
    """``y = c + exp(b + W @ t)`` for ``W`` ``(n, K)``; ``t`` ``(K,)``."""

    c: float
    b: float
    t: np.ndarray

    def predict(self, W: np.ndarray) -> np.ndarray:
        return self.c + np.exp(np.clip(self.b + W @ self.t, -50, 50))


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


def fit_mean(W: np.ndarray, y: np.ndarray) -> tuple[LogLinearLaw, list]:
    """The simulator's mean model of one loss: a log-linear law and a bagged tree ensemble."""
    return fit_log_linear(W, y), fit_trees(W, y)


def predict_mean(model: tuple[LogLinearLaw, list], W: np.ndarray) -> np.ndarray:
    law, trees = model
    return 0.5 * (law.predict(W) + np.mean([m.predict(W) for m in trees], axis=0))


def out_of_fold(W: np.ndarray, Y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions ``(n, P)`` of the mean model of each column of ``Y`` ``(n, P)``: each row
    predicted by models fit without it (KFold(folds, shuffle=True, random_state=seed))."""
    from sklearn.model_selection import KFold

    out = np.zeros_like(Y, dtype=float)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(W):
        for p in range(Y.shape[1]):
            out[test, p] = predict_mean(fit_mean(W[train], Y[train, p]), W[test])
    return out


def _nearest_pair_residuals(W: np.ndarray, Y: np.ndarray, fitted: np.ndarray, fraction: float) -> np.ndarray:
    """Differences of the closest ``fraction`` of nearest-neighbour pairs of rows of ``W`` ``(n, K)`` in
    ``Y - fitted`` ``(n, P)``, divided by sqrt(2) (one run's noise): shape ``(pairs, P)``."""
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(W).query(W, k=2)
    rows = np.argsort(dist[:, 1])[: max(3, int(fraction * len(W)))]
    residual = Y - fitted
    return (residual[rows] - residual[idx[rows, 1]]) / np.sqrt(2.0)


def nearest_pair_noise(W: np.ndarray, y: np.ndarray, fitted: np.ndarray, fraction: float = 0.1) -> float:
    """Run-to-run noise sd from the closest ``fraction`` of nearest-neighbour pairs of rows of ``W`` ``(n, K)``.

    ``y`` ``(n,)`` measured, ``fitted`` ``(n,)`` a model's mean; the model removes the local variation.
    """
    d = _nearest_pair_residuals(W, y[:, None], fitted[:, None], fraction)[:, 0]
    return float(np.sqrt(np.median(d**2)))


def nearest_pair_noise_cov(W: np.ndarray, Y: np.ndarray, fitted: np.ndarray, mean_sd: float, fraction: float = 0.1) -> np.ndarray:
    """Noise covariance ``(P, P)`` of the losses ``Y`` ``(n, P)`` of one run: robust sds and Spearman
    correlations of nearest-pair residuals, scaled so that the sd of the losses' mean is ``mean_sd``."""
    d = _nearest_pair_residuals(W, Y, fitted, fraction)
    sd = np.sqrt(np.median(d**2, axis=0))
    corr = 2.0 * np.sin(np.pi / 6.0 * pd.DataFrame(d).corr("spearman").to_numpy())  # Spearman -> Pearson (Gaussian)
    eigenvalues, vectors = np.linalg.eigh(corr)  # nearest positive definite correlation
    corr = (vectors * np.clip(eigenvalues, 1e-6, None)) @ vectors.T
    corr /= np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
    cov = corr * np.outer(sd, sd)
    return cov * (mean_sd / (np.sqrt(cov.sum()) / len(sd))) ** 2


def crn_normal(seed: int, indices, size: int) -> np.ndarray:
    """Standard normal draws ``(len(indices), size)``: row ``i`` from the stream seeded ``(seed, indices[i])``."""
    return np.array([np.random.default_rng([seed, int(j)]).standard_normal(size) for j in indices]).reshape(-1, size)


# -- the simulator ---------------------------------------------------------------------------------
@dataclass
class TableSimulator:
    """Expected losses of mixtures, fit to a table: ``parts`` the simulated losses ``(P,)``, each with its
    law and trees; ``composition`` ``(m, P)`` makes each objective the mean of its parts; ``noise_chol``
    ``(P, P)`` the Cholesky factor of the noise covariance of one run, in loss units."""

    name: str
    space: MixtureSpace
    objectives: tuple[str, ...]
    parts: tuple[str, ...]
    composition: np.ndarray
    laws: list[LogLinearLaw]
    trees: list[list]
    noise_chol: np.ndarray
    natural: np.ndarray
    noise_report: dict | None = None

    @property
    def reports_parts(self) -> bool:
        """Whether some objective averages several losses (then runs report the losses, not just the mean)."""
        return self.composition.shape[1] > self.composition.shape[0]

    @property
    def noise(self) -> np.ndarray:
        """Noise sd of each objective ``(m,)``."""
        cov = self.noise_chol @ self.noise_chol.T
        return np.sqrt(np.diag(self.composition @ cov @ self.composition.T))

    def expected_parts(self, W: np.ndarray) -> np.ndarray:
        """Noise-free losses ``(n, P)`` of mixtures ``W`` ``(n, K)``."""
        W = np.atleast_2d(W)
        return np.column_stack([
            0.5 * (law.predict(W) + np.mean([m.predict(W) for m in models], axis=0))
            for law, models in zip(self.laws, self.trees, strict=True)
        ])

    def expected(self, W: np.ndarray) -> np.ndarray:
        """Noise-free objectives ``(n, m)``."""
        return self.expected_parts(W) @ self.composition.T

    def observe_parts(self, W: np.ndarray, seed: int, indices: np.ndarray | None = None) -> np.ndarray:
        """One noisy run per mixture: its losses, shape ``(n, P)``. With ``indices`` ``(n,)``, the noise of
        row ``i`` is the stream ``(seed, indices[i])`` (:func:`crn_normal`: common random numbers, the
        same noise for the j-th evaluation of a seed whatever mixture it measures)."""
        mean = self.expected_parts(W)
        z = np.random.default_rng(seed).normal(size=mean.shape) if indices is None else crn_normal(seed, indices, mean.shape[1])
        return mean + z @ self.noise_chol.T

    def observe(self, W: np.ndarray, seed: int) -> np.ndarray:
        """One noisy observation of the objectives per mixture, shape ``(n, m)``."""
        return self.observe_parts(W, seed) @ self.composition.T


def table_space(W: pd.DataFrame) -> tuple[MixtureSpace, np.ndarray]:
    """A table's search space (each source bounded by the largest weight the table gave it) and its
    natural mixture (the mean of the table's rows, renormalised)."""
    Wn = W.to_numpy(float)
    Wn = Wn / Wn.sum(axis=1, keepdims=True)
    sources = tuple(Source(n, max_weight=float(min(1.0, hi))) for n, hi in zip(W.columns, Wn.max(axis=0), strict=True))
    return MixtureSpace(sources), Wn.mean(axis=0)


def _robust_sd(x: np.ndarray) -> float:
    """1.4826 x the median absolute deviation (the law's rare out-of-fold blow-ups would swamp an sd)."""
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def fit_simulator(name: str, W: pd.DataFrame, Y: pd.DataFrame, objectives: dict[str, list[str]],
                  out_of_fold_noise: bool = True) -> TableSimulator:
    """Fit a simulator over the sources of ``W``; each objective is the mean of its list of ``Y`` columns
    (its parts; no column in two objectives). Noise is independent between objectives, estimated from
    nearest pairs around out-of-fold predictions (``out_of_fold_noise=False``: in-sample, the old way).
    ``noise_report`` keeps, per objective, the noise sd used (``nearest_pair``), the in-sample variant,
    robust out-of-fold and in-sample residual sds (these include model error) and the outcomes' spread."""
    space, natural = table_space(W)
    Wn = W.to_numpy(float)
    Wn = Wn / Wn.sum(axis=1, keepdims=True)
    parts = [c for columns in objectives.values() for c in columns]
    measured = Y[parts].to_numpy(float)
    laws = [fit_log_linear(Wn, y) for y in measured.T]
    trees = [fit_trees(Wn, y) for y in measured.T]
    in_sample = np.column_stack([predict_mean((law, models), Wn) for law, models in zip(laws, trees, strict=True)])
    fitted = out_of_fold(Wn, measured) if out_of_fold_noise else in_sample
    composition = mean_composition([len(columns) for columns in objectives.values()])
    cov = np.zeros((len(parts), len(parts)))
    report = {}
    for name_o, columns in objectives.items():
        cols = [parts.index(c) for c in columns]
        y = measured[:, cols].mean(axis=1)
        mean_sd = nearest_pair_noise(Wn, y, fitted[:, cols].mean(axis=1))
        cov[np.ix_(cols, cols)] = nearest_pair_noise_cov(Wn, measured[:, cols], fitted[:, cols], mean_sd)
        report[name_o] = {
            "nearest_pair": mean_sd,
            "nearest_pair_in_sample": nearest_pair_noise(Wn, y, in_sample[:, cols].mean(axis=1)),
            "residual_sd": _robust_sd(y - fitted[:, cols].mean(axis=1)),
            "residual_sd_in_sample": _robust_sd(y - in_sample[:, cols].mean(axis=1)),
            "spread": float(np.std(y)),
        }
    return TableSimulator(
        name=name, space=space, objectives=tuple(objectives), parts=tuple(parts),
        composition=composition, laws=laws, trees=trees, noise_chol=np.linalg.cholesky(cov), natural=natural,
        noise_report=report,
    )


def _cache_file(name: str) -> Path:
    """A pickle of the fitted simulator, keyed by this module's source and the data folder's files (so an
    edit to either refits); ``MIXOPT_BENCH_CACHE`` sets the folder (default ~/.cache/mixopt/benchmarks)."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for folder in ("regmix", "olmix"):
        for entry in sorted(data_path(folder).iterdir(), key=lambda e: e.name):
            digest.update(f"{entry.name}:{len(entry.read_bytes())}".encode())
    root = Path(os.environ.get("MIXOPT_BENCH_CACHE", Path.home() / ".cache" / "mixopt" / "benchmarks"))
    return root / f"{name}-{digest.hexdigest()[:16]}.pkl"


@cache
def load_simulator(name: str) -> TableSimulator:
    """``regmix-mean`` (mean of the 13 losses), ``regmix-pilecc``, ``olmix-mean``, ``olmix-3`` (math, code,
    QA), ``dclm-mean``, ``dclm-3`` (the same families on the 24-topic DCLM swarm). Cached on disk."""
    if name not in SIMULATORS:
        raise KeyError(name)
    path = _cache_file(name)
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        pass
    if name.startswith("regmix"):
        W, Y = regmix_table()
        objectives = {"regmix-mean": {"mean": list(Y.columns)}, "regmix-pilecc": {"pile_cc": ["pile_cc"]}}[name]
    else:
        W, Y = olmix_table("dclm" if name.startswith("dclm") else "full_recomputation")
        families = ["mean"] if name.endswith("-mean") else ["math", "code", "qa"]
        objectives = {f: [f] for f in families}
    sim = fit_simulator(name, W, Y, objectives)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(sim, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return sim


SIMULATORS = ("regmix-mean", "regmix-pilecc", "olmix-mean", "olmix-3", "dclm-mean", "dclm-3")


# -- where a simulator has data ----------------------------------------------------------------------
def _fitted_table(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table a simulator was fitted to: mixtures and its objective columns (RegMix: the 512 training runs)."""
    if name.startswith("regmix"):
        return regmix_table("train")
    return olmix_table("dclm" if name.startswith("dclm") else "full_recomputation")


def total_variation(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Total-variation distance ``(n,)`` from each row of ``A`` ``(n, K)`` to its nearest row of ``B`` ``(r, K)``."""
    return np.array([0.5 * np.abs(B - a).sum(axis=1).min() for a in np.atleast_2d(A)])


@cache
def support(name: str) -> tuple[np.ndarray, float]:
    """The rows ``(r, K)`` a simulator was fitted to and its support radius: the median total-variation
    distance from a row to its nearest other row (leave one out). A mixture farther than that from every
    row is *extrapolated*: its simulated outcome rests on the models' shape, not on data."""
    W, _ = _fitted_table(name)
    rows = W.to_numpy(float)
    rows = rows / rows.sum(axis=1, keepdims=True)
    nearest = [np.partition(0.5 * np.abs(rows - r).sum(axis=1), 1)[1] for r in rows]
    return rows, float(np.median(nearest))


def extrapolated(name: str, W: np.ndarray) -> np.ndarray:
    """Whether each mixture of ``W`` ``(n, K)`` lies beyond the support radius of ``name``'s table ``(n,)``."""
    rows, radius = support(name)
    return total_variation(W, rows) > radius


def heldout_spearman(name: str) -> dict[str, tuple[str, float]]:
    """Per objective, how well the simulator ranks real runs it never saw: RegMix's 256 held-out runs for
    the RegMix simulators; 5-fold out-of-fold predictions of the same mean models for the Olmix tables
    (which hold no held-out runs). Values: (what was held out, Spearman)."""
    from scipy.stats import spearmanr

    sim = load_simulator(name)
    if name.startswith("regmix"):
        W, Y = regmix_table("test")
        Wn = W.to_numpy(float) / W.to_numpy(float).sum(axis=1, keepdims=True)
        predicted, measured, held = sim.expected(Wn), Y[list(sim.parts)].to_numpy(float) @ sim.composition.T, "256 test runs"
    else:
        W, Y = _fitted_table(name)
        Wn = W.to_numpy(float) / W.to_numpy(float).sum(axis=1, keepdims=True)
        parts = Y[list(sim.parts)].to_numpy(float)
        predicted, measured, held = out_of_fold(Wn, parts) @ sim.composition.T, parts @ sim.composition.T, "5-fold"
    return {o: (held, float(spearmanr(predicted[:, i], measured[:, i]).statistic)) for i, o in enumerate(sim.objectives)}
