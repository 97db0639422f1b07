"""Candidate sets: a study restricted to a finite list of mixtures (``candidates: FILE`` in its config).

A team often chooses among blends it has already built, or among a published table's runs (pool replay).
The file is a CSV with one column per source, named as in ``sources:`` (the ratios format ``mixopt study
import`` reads), and optionally a key column (``index``, ``run``, ``name``, ``key`` or an unnamed pandas
index), which is ignored. Rows must sum to 1 within ``SUM_TOLERANCE`` (they are renormalised) and lie inside
the study's constraints at the search fidelity; each is rounded to the study's grid, so that a queued
trial is exactly its candidate.

Searchers propose as usual; :func:`nearest_unused` maps each proposal to the nearest candidate (L1) that is
neither measured, pending nor already in the batch. The recommendation scores the candidates themselves
(:func:`mixopt.search.recommend.candidate_pool`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixopt.errors import ConfigError
from mixopt.space import MixtureSpace

SUM_TOLERANCE = 1e-3  # largest |sum - 1| of a candidate row accepted (and renormalised); beyond it: refused
KEY_COLUMNS = ("index", "run", "name", "key", "Unnamed: 0", "")


def load_candidates(path: Path, space: MixtureSpace, granularity: float) -> np.ndarray:
    """The candidate mixtures ``(c, K)`` in ``path`` (columns in ``space.names`` order), checked against
    ``space`` (a space without candidates) and rounded to ``granularity``; a ``ConfigError`` naming the
    first bad row (1-based, as in a spreadsheet after the header) otherwise."""
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"candidates: no file at {path}: give a CSV with one column per source")
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"candidates: {path} is not a readable CSV ({str(exc).splitlines()[0]})") from None
    table.columns = [str(c).strip() for c in table.columns]
    columns = [c for c in table.columns if c not in KEY_COLUMNS]
    unknown = [c for c in columns if c not in space.names]
    if unknown:
        raise ConfigError(f"candidates: column '{unknown[0]}' of {path.name} is not a source of this study "
                          f"(sources: {', '.join(space.names)}): rename or drop the column")
    missing = [n for n in space.names if n not in columns]
    if missing:
        raise ConfigError(f"candidates: {path.name} has no column for source '{missing[0]}': add it (0 where unused)")
    if table.empty:
        raise ConfigError(f"candidates: {path.name} has no rows: list at least one mixture")
    values = table[list(space.names)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    rows = []
    for i, w in enumerate(values, start=1):
        rows.append(_checked_row(w, i, path.name, space, granularity))
    return np.unique(np.array(rows), axis=0)


def _checked_row(w: np.ndarray, row: int, file: str, space: MixtureSpace, granularity: float) -> np.ndarray:
    """Row ``row`` of the file as a feasible mixture on the grid, or a ``ConfigError`` naming it."""
    where = f"candidates: row {row} of {file}"
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ConfigError(f"{where} has a missing, negative or non-numeric weight: give every source a number >= 0")
    total = float(w.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ConfigError(f"{where} sums to {total:.6g}, not 1 (tolerance {SUM_TOLERANCE}): fix or renormalise it")
    w = w / total
    problems = space.violations(w, tol=1e-6)
    if problems:
        raise ConfigError(f"{where} is outside the study's constraints: {problems[0]}; drop the row or loosen the bound")
    return space.round(w, granularity)


def unused_mask(candidates: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Which candidates ``(c, K)`` are none of the mixtures ``taken`` ``(t, K)`` (L1 within 1e-9), ``(c,)`` bool."""
    free = np.ones(len(candidates), dtype=bool)
    for w in taken:
        free &= np.abs(candidates - w).sum(axis=1) > 1e-9
    return free


def nearest_unused(candidates: np.ndarray, proposals: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Each row of ``proposals`` ``(n, K)`` replaced, in order, by the candidate ``(c, K)`` nearest to it in L1
    among those not in ``taken`` ``(t, K)`` nor chosen for an earlier row; once every candidate is used, the
    nearest candidate overall (a repeat)."""
    free = unused_mask(candidates, taken)
    chosen = []
    for w in np.atleast_2d(proposals):
        distance = np.abs(candidates - w).sum(axis=1)
        pick = int(np.argmin(np.where(free, distance, np.inf))) if free.any() else int(np.argmin(distance))
        free[pick] = False
        chosen.append(candidates[pick])
    return np.array(chosen).reshape(-1, candidates.shape[1])
