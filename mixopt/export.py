"""Export a mixture as YAML a training stack reads: ``olmo-core``, ``olmo-cookbook`` or ``plain``.

Weights are written as decimals on the study's grid (e.g. 4 places for a granularity of 1e-4) whose
sum is exactly 1; provenance goes in a header comment so strict readers still load the file.
A structured dialect is written only when its reader would accept it: OLMo-core's ``SourceMixtureConfig``
and olmo-cookbook's source list refuse a source with weight > 0 and no ``paths``. Such an export is refused
(:class:`IncompleteExport`) unless ``allow_incomplete``, which writes it with a warning as its first line.
Files are written atomically: a reader sees the old file or the whole new one, never a part.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import mixopt
from mixopt.errors import ConfigError, OutputError
from mixopt.failpoints import failpoint
from mixopt.space import MixtureSpace

DIALECTS = ("olmo-core", "olmo-cookbook", "plain")
# Per structured dialect: source-name key, repetition key, max-fraction key, (outer, inner) nesting of the
# source list, token-budget key.
DIALECT_KEYS = {
    "olmo-core": ("source_name", "max_repetition_ratio", "max_source_fraction", ("source_list", "sources"), "requested_tokens"),
    "olmo-cookbook": ("name", "repetition_factor", "max_source_ratio", ("dataset", "sources"), "max_tokens"),
}
READERS = {"olmo-core": "OLMo-core's SourceMixtureConfig", "olmo-cookbook": "olmo-cookbook"}


class IncompleteExport(ConfigError):
    """A structured export that its reader would refuse: ``sources`` (weight > 0) have no paths."""

    def __init__(self, dialect: str, sources: Sequence[str]) -> None:
        self.dialect, self.sources = dialect, tuple(sources)
        super().__init__(f"{dialect} export refused: {missing_paths_text(dialect, self.sources)}: set sources[].paths "
                         "in the config, export --format plain, or pass --allow-incomplete to write it with a warning")


def missing_paths_text(dialect: str, sources: Sequence[str]) -> str:
    """The words for sources with weight > 0 and no paths, which ``dialect``'s reader refuses."""
    return (f"source{'s' if len(sources) > 1 else ''} {', '.join(sources)} ha{'ve' if len(sources) > 1 else 's'} "
            f"weight > 0 and no paths, which {READERS[dialect]} refuses (paths must not be empty)")


def grid_decimals(weights: np.ndarray, granularity: float) -> list[float]:
    """Weights as floats whose shortest decimal forms are multiples of ``granularity`` summing to exactly 1."""
    places = max(0, round(-math.log10(granularity)))
    units = np.round(np.asarray(weights) / granularity).astype(np.int64)
    if units.sum() != round(1 / granularity):
        raise ConfigError("export needs a mixture rounded to the study's grid (weights must sum to 1)")
    return [round(int(u) * granularity, places) for u in units]


def render(
    space: MixtureSpace,
    weights: np.ndarray | Sequence[float],
    dialect: str = "olmo-core",
    granularity: float = 1e-4,
    provenance: dict[str, Any] | None = None,
    allow_incomplete: bool = False,
) -> str:
    """The YAML text of one mixture ``(K,)`` in ``dialect``, with a provenance header. A structured dialect
    whose reader would refuse it (sources with weight > 0 and no paths) raises ``IncompleteExport``, or with
    ``allow_incomplete`` is written with a ``# WARNING`` line first."""
    if dialect not in DIALECTS:
        raise ConfigError(f"unknown export format '{dialect}': choose one of {', '.join(DIALECTS)}")
    weights = np.asarray(weights, dtype=float)
    problems = space.violations(weights, tol=1e-6)
    if problems:
        at = f" at a budget of {space.token_budget:.4g} tokens" if space.token_budget else ""
        raise ConfigError(f"cannot export this mixture{at}: {problems[0]} (choose another fidelity or trial)")
    weights = space.round(weights, granularity)
    ratios = grid_decimals(weights, granularity)
    budget = int(space.token_budget) if space.token_budget else None
    if dialect == "plain":
        body: Any = {s.name: r for s, r in zip(space.sources, ratios, strict=True)}
    else:
        name_key, repetition_key, fraction_key, (outer, inner), budget_key = DIALECT_KEYS[dialect]
        sources = []
        for s, r, upper in zip(space.sources, ratios, space.upper, strict=True):
            entry: dict[str, Any] = {name_key: s.name, "target_ratio": r, "paths": list(s.paths)}
            if s.max_repetition is not None:
                entry[repetition_key] = s.max_repetition
            entry[fraction_key] = float(upper)
            sources.append(entry)
        body = {outer: {inner: sources}}
        if budget:
            body[budget_key] = budget
    missing = [s.name for s, r in zip(space.sources, ratios, strict=True) if r > 0 and not s.paths]
    warning = ""
    if dialect in READERS and missing:
        if not allow_incomplete:
            raise IncompleteExport(dialect, missing)
        warning = f"# WARNING: incomplete, not loadable as it is: {missing_paths_text(dialect, missing)}; fill them in\n"
    header = {"mixopt_version": mixopt.__version__, "dialect": dialect, **(provenance or {})}
    comment = warning + "".join(f"# {key}: {value}\n" for key, value in header.items())
    return comment + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def trial_provenance(study: str, trial: int, fidelity: str | None, values: dict[str, float] | None,
                     space: MixtureSpace) -> dict[str, Any]:
    """The header of a trial's export: its study, number and fidelity, its measured objective ``values``
    (None or empty: not measured yet) and the token budget whose caps the export meets."""
    return {
        "study": study,
        "trial": trial,
        "fidelity": fidelity,
        "objectives": ", ".join(f"{k}={v:.6g}" for k, v in (values or {}).items()) or "none",
        **budget_provenance(space),
    }


def budget_provenance(space: MixtureSpace) -> dict[str, Any]:
    """The header line naming the token budget whose repetition caps an export meets."""
    return {"export_budget_tokens": int(space.token_budget) if space.token_budget else "none"}


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic rename.

    A folder that cannot be written (read-only, full) is an ``OutputError`` naming the path and the fix;
    ``path`` is then unchanged and no temporary file is left.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError.cannot_write(path, exc, "choose another path") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text[: len(text) // 2])
            failpoint("export")  # a crash here must leave no partial export behind the final name
            handle.write(text[len(text) // 2 :])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError.cannot_write(path, exc, "choose another path") from None
    return path

