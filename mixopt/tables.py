"""Tables of past runs: mixture ratios and metrics read from CSV, joined on a key, and a target chosen.

Every problem with a table (a missing file or column, NaNs, text in a numeric column, weights that do not
sum to 1) is a one-line ``ConfigError`` naming the file, the column or row, and the fix.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt.errors import ConfigError

META_COLUMNS = ("Unnamed: 0", "run", "name", "index", "id", "key")
"""Columns that identify a run rather than measure it; never weights or metrics."""
KEY_PREFERENCE = ("run", "id", "key", "index", "name")

OLMIX_DROPPED_TASKS = ("qasper_yesno", "sciriff_yesno", "lab_bench_dbqa", "lab_bench_protocolqa", "medqa_en")
"""Tasks the Olmix fit configs leave out."""
OLMIX_FAMILIES = {
    "math": ("minerva_math_*", "basic_skills_arithmetic*"),
    "code": ("codex_*", "mbpp*", "mt_mbpp*", "basic_skills_coding*"),
}
"""Olmix task families by metric-name prefix; ``qa`` is every other kept task, ``all`` every kept task."""


@dataclass(frozen=True)
class RunTable:
    """``weights`` ``(n, K)`` indexed by the key; ``metrics`` ``(n, M)`` on the same index."""

    weights: pd.DataFrame
    metrics: pd.DataFrame


def read_csv(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"table {path}: no such file; pass the path of a CSV file")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"table {path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if table.empty:
        raise ConfigError(f"table {path}: has no rows")
    return table


def detect_key(ratios: pd.DataFrame, metrics: pd.DataFrame, key: str | None = None) -> str:
    """The column that joins the two tables: ``key`` if given, else a shared column with unique values."""
    if key is not None:
        for name, table in (("ratios", ratios), ("metrics", metrics)):
            if key not in table.columns:
                raise ConfigError(f"key column '{key}' is not in the {name} table; pass --key with a shared column")
        return key
    shared = [c for c in ratios.columns if c in metrics.columns and not c.startswith("Unnamed")]
    unique = [c for c in shared if ratios[c].is_unique and metrics[c].is_unique]
    ranked = sorted(unique, key=lambda c: KEY_PREFERENCE.index(c) if c in KEY_PREFERENCE else len(KEY_PREFERENCE))
    if not ranked:
        raise ConfigError("the ratios and metrics tables share no column with unique values; pass --key COLUMN")
    return ranked[0]


def numeric_columns(table: pd.DataFrame, columns: list[str], source: str) -> pd.DataFrame:
    """``table[columns]`` as floats; text cells, NaNs or infinities (``inf``, ``1e400``) are a ``ConfigError``
    naming the first bad cell."""
    values = table[columns].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(float))
    if bad.any():
        column = columns[int(bad.any(axis=0).argmax())]
        row = int(np.flatnonzero(bad[:, columns.index(column)])[0])
        cell = table[column].iloc[row]
        text = repr(cell) if isinstance(cell, str) else str(cell)  # 'x' from the file, inf once read as a number
        what = ("is empty (NaN)" if pd.isna(cell) else f"is infinite ({text})" if np.isinf(values[column].iloc[row])
                else f"is not a number ({text})")
        where = f"row {row + 1}" if isinstance(table.index, pd.RangeIndex) else f"run {table.index[row]!r}"
        raise ConfigError(f"{source}: column '{column}' {where} {what}; fix or drop that row")
    return values.astype(float)


def weight_frame(ratios: pd.DataFrame, key: str | None, source: str, tolerance: float = 0.01) -> pd.DataFrame:
    """Mixture weights of a ratios table (all columns but the key and meta columns), rows summing to 1."""
    columns = [c for c in ratios.columns if c != key and c not in META_COLUMNS]
    if not columns:
        raise ConfigError(f"{source}: no weight columns besides the key and meta columns {list(META_COLUMNS)}")
    weights = numeric_columns(ratios, columns, source)
    if (weights.to_numpy() < 0).any():
        raise ConfigError(f"{source}: negative weights; every mixture weight must be >= 0")
    sums = weights.sum(axis=1).to_numpy()
    off = np.flatnonzero(np.abs(sums - 1.0) > tolerance)
    if off.size:
        raise ConfigError(
            f"{source}: weights of row {off[0] + 1} sum to {sums[off[0]]:.4g}, not 1 (tolerance {tolerance}); "
            "normalize the rows or check that every column is a source"
        )
    if key is not None:
        weights.index = ratios[key].to_numpy()
    return weights


def read_run_table(ratios_path, metrics_path, key: str | None = None, tolerance: float = 0.01) -> RunTable:
    """Ratios and metrics CSVs joined on their key (rows present in both, in the ratios' order)."""
    ratios, metrics = read_csv(ratios_path), read_csv(metrics_path)
    key = detect_key(ratios, metrics, key)
    weights = weight_frame(ratios, key, str(ratios_path), tolerance)
    metric_frame = metrics.drop(columns=[c for c in metrics.columns if c in META_COLUMNS or c == key])
    metric_frame.index = metrics[key].to_numpy()
    shared = weights.index[weights.index.isin(metric_frame.index)]
    if shared.empty:
        raise ConfigError(f"no '{key}' value appears in both {ratios_path} and {metrics_path}; pass --key COLUMN")
    return RunTable(weights.loc[shared], metric_frame.loc[shared])


def family_columns(columns: list[str], family: str) -> list[str]:
    """Kept Olmix metric columns of ``family`` (``math``, ``code``, ``qa`` or ``all``)."""
    kept = [c for c in columns if not c.startswith(OLMIX_DROPPED_TASKS)]
    if family == "all":
        return kept
    if family == "qa":
        other = {c for fam in OLMIX_FAMILIES for c in family_columns(columns, fam)}
        return [c for c in kept if c not in other]
    if family not in OLMIX_FAMILIES:
        raise ConfigError(f"unknown Olmix family 'olmix:{family}': choose olmix:math, olmix:code, olmix:qa or olmix:all")
    return [c for c in kept if any(fnmatch.fnmatchcase(c, pattern) for pattern in OLMIX_FAMILIES[family])]


_EXPRESSION = re.compile(r"^\s*mean\((?P<args>[^()]*)\)\s*$")


def expression_columns(columns: list[str], expression: str) -> list[str]:
    """Columns selected by ``mean(PATTERN, ...)``: each pattern a glob over the metric names or ``olmix:FAMILY``."""
    match = _EXPRESSION.match(expression)
    if not match or not match["args"].strip():
        raise ConfigError(f"target expression {expression!r}: write mean(GLOB, ...), e.g. 'mean(minerva_math_*)' or 'mean(olmix:code)'")
    selected: list[str] = []
    for pattern in (p.strip() for p in match["args"].split(",")):
        found = (
            family_columns(columns, pattern.removeprefix("olmix:")) if pattern.startswith("olmix:")
            else [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        )
        if not found:
            raise ConfigError(f"target expression {expression!r}: '{pattern}' matches no metric column")
        selected += [c for c in found if c not in selected]
    return selected


def target_values(metrics: pd.DataFrame, column: str | None = None, expression: str | None = None,
                  source: str = "metrics") -> pd.Series:
    """One target per row: a metric column, or the row mean of the columns an expression selects."""
    if (column is None) == (expression is None):
        raise ConfigError("choose the target with exactly one of --target COLUMN or --target-expr 'mean(GLOB)'")
    if column is not None:
        if column not in metrics.columns:
            raise ConfigError(f"{source}: no column '{column}'; choose one of the metric columns or use --target-expr")
        return numeric_columns(metrics, [column], source)[column].rename(column)
    assert expression is not None  # exactly one of column and expression, checked above
    selected = expression_columns(list(metrics.columns), expression)
    return numeric_columns(metrics, selected, source).mean(axis=1).rename(expression)
