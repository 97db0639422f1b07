"""Surrogate quality on the real RegMix and Olmix tables, beside the published regressors.

RegMix: fit on the 512 training runs (and on their first 128), Spearman on the 256 held-out runs, target
``metric/the_pile_pile_cc_val_loss``. Olmix: 512 runs x 64 domains, family targets (mean bits per byte),
``KFold(5, shuffle=True, random_state=0)``, Spearman of the pooled out-of-fold predictions. Also times one
fit of the surrogate on all 512 x 64 Olmix rows. Run: ``python -m mixopt.benchmarks.surrogates [--fast]``;
``--targets math`` and ``--regmix-sizes ''`` run a part (e.g. one process per target).
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources

import torch
from scipy.stats import spearmanr

from mixopt.surrogates import SURROGATES
from mixopt.surrogates.evaluation import cross_validated_predictions
from mixopt.tables import read_run_table, target_values

REGMIX_TARGET = "metric/the_pile_pile_cc_val_loss"
REGMIX_PUBLISHED = {"LightGBM (RegMix paper)": 0.990}
OLMIX_TARGETS = {"mean": "mean(olmix:all)", "math": "mean(olmix:math)", "code": "mean(olmix:code)", "qa": "mean(olmix:qa)"}
OLMIX_PUBLISHED = {  # 5-fold CV Spearman: ridge, Olmix log-linear law, LightGBM
    "mean": (0.816, 0.848, 0.894), "math": (0.925, 0.968, 0.962),
    "code": (0.884, 0.949, 0.951), "qa": (0.714, 0.710, 0.770),
}


def data_path(*parts: str):
    return resources.files("mixopt.benchmarks").joinpath("data", *parts)


def regmix_scores(model: str, train_sizes: tuple[int, ...]) -> dict[str, float]:
    train = read_run_table(data_path("regmix", "train_mixture_1m.csv"), data_path("regmix", "train_pile_loss_1m.csv"))
    test = read_run_table(data_path("regmix", "test_mixture_1m.csv"), data_path("regmix", "test_pile_loss_1m.csv"))
    X, y = train.weights.to_numpy(), target_values(train.metrics, REGMIX_TARGET).to_numpy()
    X_test, y_test = test.weights.to_numpy(), target_values(test.metrics, REGMIX_TARGET).to_numpy()
    scores = {}
    for n in train_sizes:
        fitted = SURROGATES.create(model).fit(X[:n], y[:n])
        scores[f"fit on first {n}"] = float(spearmanr(fitted.predict(X_test), y_test)[0])
    return scores


def olmix_scores(model: str, targets: list[str]) -> tuple[dict[str, float], float, float]:
    """Cross-validated Spearman per target, and the wall and CPU seconds of one fit on all rows."""
    table = read_run_table(data_path("olmix", "full_recomputation_ratios.csv"),
                           data_path("olmix", "full_recomputation_metrics.csv"))
    X = table.weights.to_numpy()
    scores = {}
    for name in targets:
        y = target_values(table.metrics, expression=OLMIX_TARGETS[name]).to_numpy()
        scores[name] = float(spearmanr(cross_validated_predictions(SURROGATES.create(model), X, y, 5, 0), y)[0])
    y = target_values(table.metrics, expression=OLMIX_TARGETS["mean"]).to_numpy()
    wall, cpu = time.perf_counter(), time.process_time()
    SURROGATES.create(model).fit(X, y)
    return scores, time.perf_counter() - wall, time.process_time() - cpu


BENCHMARKED = "ensemble"  # the surrogate whose figures BENCHMARKS.md reports (the product default is gp)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="mixopt bench surrogates", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=BENCHMARKED, help="surrogate name (default: %(default)s)")
    parser.add_argument("--fast", action="store_true", help="smoke mode: RegMix fit on 128 runs only, no Olmix")
    parser.add_argument("--regmix-sizes", default="512,128", help="training-set sizes for RegMix (comma list, or '')")
    parser.add_argument("--targets", default=",".join(OLMIX_TARGETS), help="Olmix targets (comma list, or '')")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = (128,) if args.fast else tuple(int(n) for n in args.regmix_sizes.split(",") if n)
    targets = [] if args.fast else [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(OLMIX_TARGETS)
    if unknown:
        parser.error(f"unknown Olmix targets {sorted(unknown)}: choose from {', '.join(OLMIX_TARGETS)}")
    regmix = regmix_scores(args.model, sizes)
    olmix, wall, cpu = olmix_scores(args.model, targets) if targets else ({}, None, None)
    result = {"model": args.model, "regmix_spearman": regmix, "olmix_cv_spearman": olmix,
              "olmix_fit_seconds": {"wall": wall, "cpu": cpu}}
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    if regmix:
        print(f"RegMix, Spearman on the 256 held-out runs ({args.model}; published LightGBM 0.990 with all 512)")
    for setting, value in regmix.items():
        print(f"  {setting:<18} {value:.4f}")
    if olmix:
        print(f"Olmix 512 x 64, 5-fold CV Spearman ({args.model} vs published ridge / log-linear law / LightGBM)")
        for name, value in olmix.items():
            ridge, law, gbm = OLMIX_PUBLISHED[name]
            print(f"  {name:<6} {value:.4f}   {ridge:.3f} / {law:.3f} / {gbm:.3f}")
        print(f"One fit on all 512 x 64 Olmix rows: {wall:.1f} s wall, {cpu:.1f} s CPU (1 thread)")
    return result


if __name__ == "__main__":
    main()
