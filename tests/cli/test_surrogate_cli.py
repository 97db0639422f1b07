"""`mixopt surrogate cv / fit / predict` on the real RegMix table (first rows) and on bad input."""

import json
from importlib import resources

import pandas as pd
import pytest
from typer.testing import CliRunner

from mixopt.cli.surrogate import app
from mixopt.errors import ConfigError

REGMIX = resources.files("mixopt.benchmarks").joinpath("data", "regmix")
TARGET = "metric/the_pile_pile_cc_val_loss"


@pytest.fixture
def small_regmix(tmp_path):
    """The first 80 RegMix training runs, as a user's own pair of tables."""
    ratios, metrics = tmp_path / "ratios.csv", tmp_path / "metrics.csv"
    pd.read_csv(REGMIX / "train_mixture_1m.csv").head(80).to_csv(ratios, index=False)
    pd.read_csv(REGMIX / "train_pile_loss_1m.csv").head(80).to_csv(metrics, index=False)
    return ratios, metrics


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cv_prints_scores_as_json(small_regmix):
    ratios, metrics = small_regmix
    result = invoke("cv", "--ratios", ratios, "--metrics", metrics, "--target", TARGET,
                    "--model", "loglinear", "--folds", 4, "-f", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["runs"] == 80 and report["sources"] == 17 and report["folds"] == 4
    assert report["spearman"] > 0.8 and report["rmse"] > 0 and report["top5_regret"] >= 0


def test_fit_then_predict_round_trip(small_regmix, tmp_path):
    ratios, metrics = small_regmix
    saved = tmp_path / "model.joblib"
    fitted = invoke("fit", "--ratios", ratios, "--metrics", metrics, "--target-expr", "mean(metric/*pile_cc*)",
                    "--model", "loglinear", "--save", saved)
    assert fitted.exit_code == 0, fitted.output
    candidates = tmp_path / "candidates.csv"
    pd.read_csv(REGMIX / "test_mixture_1m.csv").head(30).to_csv(candidates, index=False)
    out = tmp_path / "preds.csv"
    predicted = invoke("predict", "--model", saved, "--ratios", candidates, "-o", out)
    assert predicted.exit_code == 0, predicted.output
    table = pd.read_csv(out)
    truth = pd.read_csv(REGMIX / "test_pile_loss_1m.csv").head(30)
    assert list(table["index"]) == list(truth["index"])
    assert table.iloc[:, 1].corr(truth[TARGET], method="spearman") > 0.8
    assert (table["std"] > 0).all()


def test_bad_input_is_a_config_error_naming_the_fix(small_regmix, tmp_path):
    ratios, metrics = small_regmix
    broken = tmp_path / "broken.csv"
    frame = pd.read_csv(ratios)
    frame.loc[3, "train_the_pile_arxiv"] = 0.5
    frame.to_csv(broken, index=False)
    result = invoke("cv", "--ratios", broken, "--metrics", metrics, "--target", TARGET)
    assert isinstance(result.exception, ConfigError) and "row 4 sum to" in str(result.exception)
    result = invoke("cv", "--ratios", ratios, "--metrics", metrics, "--target", "acc")
    assert isinstance(result.exception, ConfigError) and "no column 'acc'" in str(result.exception)
    result = invoke("predict", "--model", metrics, "--ratios", ratios, "-o", tmp_path / "p.csv")
    assert isinstance(result.exception, ConfigError) and "not a saved mixopt surrogate" in str(result.exception)


def test_every_command_has_an_example_in_its_help():
    for command in ("cv", "fit", "predict"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Example: mixopt surrogate " + command in result.output
