"""``mixopt surrogate``: cross-validate, fit and apply surrogates on tables of past runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mixopt.errors import ConfigError
from mixopt.surrogates import DEFAULT_SURROGATE

app = typer.Typer(help="Fit and score surrogates on tables of past runs (an Olmix or RegMix swarm, a spreadsheet).",
                  no_args_is_help=True)

RatiosOpt = typer.Option(..., "--ratios", help="CSV of mixture weights, one row per run, one column per source")
MetricsOpt = typer.Option(..., "--metrics", help="CSV of outcomes, one row per run")
TargetOpt = typer.Option(None, "--target", help="metric column to predict")
ExprOpt = typer.Option(None, "--target-expr", help="row mean of metric columns: 'mean(GLOB, ...)'; olmix:math|code|qa|all name the Olmix families")
ModelOpt = typer.Option(DEFAULT_SURROGATE, "--model", help="surrogate: gp, ensemble, gbm, loglinear")
KeyOpt = typer.Option(None, "--key", help="join column (default: detected: a shared column with unique values)")
ToleranceOpt = typer.Option(0.01, "--tolerance", help="how far a row's weights may sum from 1")


def _training_data(ratios, metrics, target, target_expr, key, tolerance):
    from mixopt.tables import read_run_table, target_values

    table = read_run_table(ratios, metrics, key, tolerance)
    y = target_values(table.metrics, target, target_expr, str(metrics))
    return table.weights, y


def _surrogate(name: str):
    from mixopt.surrogates import SURROGATES

    if name == "multifidelity":
        raise ConfigError("--model multifidelity needs a fidelity column; choose ensemble, gp, gbm or loglinear")
    return SURROGATES.create(name)


@app.command(epilog="Example: mixopt surrogate cv --ratios ratios.csv --metrics metrics.csv "
             "--target-expr 'mean(minerva_math_*)' --folds 5 -f json")
def cv(
    ratios: Path = RatiosOpt, metrics: Path = MetricsOpt, target: str | None = TargetOpt,
    target_expr: str | None = ExprOpt, model: str = ModelOpt, key: str | None = KeyOpt,
    folds: int = typer.Option(5, "--folds", min=2, help="K-fold splits (shuffled, seeded)"),
    seed: int = typer.Option(0, "--seed", help="fold shuffling seed"),
    top_k: int = typer.Option(5, "--top-k", min=1, help="regret of the best of the k best-predicted runs"),
    maximize: bool = typer.Option(False, "--maximize", help="larger target is better (default: a loss)"),
    tolerance: float = ToleranceOpt,
    output_format: str = typer.Option("table", "-f", "--format", help="table or json"),
) -> None:
    """Cross-validated Spearman, Pearson, RMSE and top-k regret of a surrogate on a table."""
    from mixopt.surrogates.evaluation import cross_validated_predictions, prediction_scores

    if output_format not in ("table", "json"):
        raise ConfigError(f"--format {output_format!r}: choose table or json")
    weights, y = _training_data(ratios, metrics, target, target_expr, key, tolerance)
    if len(y) < folds:
        raise ConfigError(f"{len(y)} runs cannot be split into {folds} folds; lower --folds")
    predictions = cross_validated_predictions(_surrogate(model), weights.to_numpy(), y.to_numpy(), folds, seed)
    scores = prediction_scores(y.to_numpy(), predictions, min(top_k, len(y)), maximize)
    report = {"model": model, "target": str(y.name), "runs": len(y), "sources": weights.shape[1], "folds": folds, **scores}
    if output_format == "json":
        typer.echo(json.dumps(report))
    else:
        typer.echo("\n".join(f"{name:<10} {value:.4f}" if isinstance(value, float) else f"{name:<10} {value}"
                             for name, value in report.items()))


@app.command(epilog="Example: mixopt surrogate fit --ratios ratios.csv --metrics metrics.csv "
             "--target 'metric/the_pile_pile_cc_val_loss' --save pile_cc.joblib")
def fit(
    ratios: Path = RatiosOpt, metrics: Path = MetricsOpt, target: str | None = TargetOpt,
    target_expr: str | None = ExprOpt, model: str = ModelOpt, key: str | None = KeyOpt,
    tolerance: float = ToleranceOpt,
    save: Path = typer.Option(..., "--save", help="file to write the fitted surrogate to (joblib)"),
) -> None:
    """Fit a surrogate on every run of a table and save it for `mixopt surrogate predict`."""
    import joblib

    import mixopt

    weights, y = _training_data(ratios, metrics, target, target_expr, key, tolerance)
    surrogate = _surrogate(model).fit(weights.to_numpy(), y.to_numpy())
    save.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"surrogate": surrogate, "sources": list(weights.columns), "target": str(y.name),
                 "mixopt": mixopt.__version__}, save)
    typer.echo(f"saved {model} for {y.name} ({len(y)} runs, {weights.shape[1]} sources) to {save}")


@app.command(epilog="Example: mixopt surrogate predict --model pile_cc.joblib --ratios candidates.csv -o preds.csv")
def predict(
    model: Path = typer.Option(..., "--model", help="file written by `mixopt surrogate fit --save`"),
    ratios: Path = RatiosOpt, key: str | None = KeyOpt, tolerance: float = ToleranceOpt,
    output: Path = typer.Option(..., "-o", "--output", help="CSV to write: key, prediction, std"),
) -> None:
    """Predict the saved surrogate's target (mean and std) for each mixture of a ratios table."""
    import joblib
    import numpy as np
    import pandas as pd

    from mixopt.tables import META_COLUMNS, read_csv, weight_frame

    if not model.is_file():
        raise ConfigError(f"model {model}: no such file; write one with `mixopt surrogate fit --save`")
    try:
        saved = joblib.load(model)
        sources, surrogate, target = saved["sources"], saved["surrogate"], saved["target"]
    except Exception as exc:  # any unpickling failure means the file is not ours
        raise ConfigError(f"model {model}: not a saved mixopt surrogate ({type(exc).__name__})") from None
    table = read_csv(ratios)
    missing = [s for s in sources if s not in table.columns]
    if missing:
        raise ConfigError(f"{ratios}: missing source columns {missing[:3]}{'...' if len(missing) > 3 else ''}; "
                          "the table must have the columns the model was fitted on")
    extra = [c for c in table.columns if c not in sources and c not in META_COLUMNS and c != key]
    if extra:
        raise ConfigError(f"{ratios}: columns {extra[:3]} are not sources of the model; drop them or pass --key")
    weights = weight_frame(table[[c for c in table.columns if c in sources]], None, str(ratios), tolerance)[sources]
    mean, std = surrogate.predict(weights.to_numpy(), return_std=True)
    ids = [c for c in (key, *META_COLUMNS) if c is not None and c in table.columns]
    out = table[ids[:1]].copy() if ids else pd.DataFrame({"row": np.arange(1, len(table) + 1)})
    out[f"predicted {target}"], out["std"] = mean, std
    output.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(output, index=False)
    typer.echo(f"wrote {len(out)} predictions of {target} to {output}")
