"""Reading, joining and validating run tables; targets from columns and expressions."""

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from mixopt.errors import ConfigError
from mixopt.tables import detect_key, expression_columns, family_columns, read_run_table, target_values


def write_tables(tmp_path, ratios: dict, metrics: dict):
    r, m = tmp_path / "ratios.csv", tmp_path / "metrics.csv"
    pd.DataFrame(ratios).to_csv(r, index=False)
    pd.DataFrame(metrics).to_csv(m, index=False)
    return r, m


GOOD_RATIOS = {"run": ["a", "b", "c"], "web": [0.5, 0.2, 1.0], "code": [0.5, 0.8, 0.0]}
GOOD_METRICS = {"run": ["c", "a", "x"], "loss_web": [3.0, 2.0, 9.0], "loss_code": [5.0, 1.0, 9.0]}


def test_tables_join_on_the_detected_key_in_the_ratios_order(tmp_path):
    table = read_run_table(*write_tables(tmp_path, GOOD_RATIOS, GOOD_METRICS))
    assert list(table.weights.index) == ["a", "c"] and list(table.weights.columns) == ["web", "code"]
    assert table.metrics.loc["c", "loss_web"] == 3.0
    assert target_values(table.metrics, expression="mean(loss_*)").tolist() == [1.5, 4.0]


def test_key_detection_prefers_a_run_column_and_honours_an_explicit_key():
    ratios = pd.DataFrame({"Unnamed: 0": [0, 1], "name": ["x", "y"], "run": ["r1", "r2"]})
    assert detect_key(ratios, ratios.copy()) == "run"
    assert detect_key(ratios, ratios.copy(), key="name") == "name"
    with pytest.raises(ConfigError, match="key column 'id' is not in the ratios table"):
        detect_key(ratios, ratios.copy(), key="id")


@pytest.mark.parametrize(
    "ratios, metrics, message",
    [
        ({**GOOD_RATIOS, "web": [0.5, 0.3, 1.0]}, GOOD_METRICS, "row 2 sum to 1.1, not 1"),
        ({**GOOD_RATIOS, "web": [0.5, None, 1.0]}, GOOD_METRICS, "column 'web' row 2 is empty"),
        ({**GOOD_RATIOS, "web": [0.5, "lots", 1.0]}, GOOD_METRICS, "column 'web' row 2 is not a number"),
        ({**GOOD_RATIOS, "run": ["p", "q", "r"]}, GOOD_METRICS, "no 'run' value appears in both"),
        ({"web": [1.0], "code": [0.0]}, GOOD_METRICS, "share no column with unique values"),
    ],
)
def test_bad_tables_give_one_line_naming_the_problem(tmp_path, ratios, metrics, message):
    with pytest.raises(ConfigError, match=message) as error:
        read_run_table(*write_tables(tmp_path, ratios, metrics))
    assert "\n" not in str(error.value)


def test_bad_targets_and_files(tmp_path):
    table = read_run_table(*write_tables(tmp_path, GOOD_RATIOS, {**GOOD_METRICS, "loss_code": [5.0, None, 9.0]}))
    with pytest.raises(ConfigError, match="column 'loss_code' run 'a' is empty"):
        target_values(table.metrics, "loss_code")
    assert target_values(table.metrics, "loss_web").tolist() == [2.0, 3.0]  # a NaN elsewhere does not matter
    with pytest.raises(ConfigError, match="no column 'acc'"):
        target_values(table.metrics, "acc")
    with pytest.raises(ConfigError, match="exactly one of --target"):
        target_values(table.metrics, "loss_web", "mean(loss_*)")
    with pytest.raises(ConfigError, match="'acc_\\*' matches no metric column"):
        target_values(table.metrics, expression="mean(acc_*)")
    with pytest.raises(ConfigError, match="write mean\\(GLOB"):
        target_values(table.metrics, expression="max(loss_*)")
    with pytest.raises(ConfigError, match="no such file"):
        read_run_table(tmp_path / "missing.csv", tmp_path / "metrics.csv")


def test_olmix_families_match_the_published_protocol():
    path = resources.files("mixopt.benchmarks").joinpath("data", "olmix", "full_recomputation_metrics.csv")
    columns = [c for c in pd.read_csv(path, nrows=1).columns if c not in ("Unnamed: 0", "run", "name", "index")]
    kept, math, code, qa = (family_columns(columns, f) for f in ("all", "math", "code", "qa"))
    assert (len(columns), len(kept), len(math), len(code), len(qa)) == (110, 105, 8, 20, 77)
    assert "medqa_en:rc::none" not in kept and "basic_skills_coding:rc::olmes" in code
    assert expression_columns(columns, "mean(olmix:math)") == math
    assert expression_columns(columns, "mean(minerva_math_*, codex_*)") == [
        c for c in math if c.startswith("minerva")
    ] + ["codex_humaneval:3shot::none"]


def test_real_regmix_tables_join_and_sum_to_one():
    folder = resources.files("mixopt.benchmarks").joinpath("data", "regmix")
    table = read_run_table(folder / "train_mixture_1m.csv", folder / "train_pile_loss_1m.csv")
    assert table.weights.shape == (512, 17) and table.metrics.shape == (512, 13)
    np.testing.assert_allclose(table.weights.sum(axis=1), 1.0, atol=0.005)
