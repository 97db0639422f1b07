"""Export a mixture as YAML a training stack reads: ``olmo-core``, ``olmo-cookbook`` or ``plain``.

Weights are written as decimals on the study's grid (e.g. 4 places for a granularity of 1e-4) whose
sum is exactly 1; provenance goes in a header comment so strict readers still load the file.
A structured dialect is written only when its reader would accept it: OLMo-core's ``SourceMixtureConfig``
and olmo-cookbook's source list refuse a source with weight > 0 and no ``paths``, and OLMo-core's
``SourceMixtureDatasetConfig.build`` refuses a source whose token files hold too few tokens for its share at
its ``max_repetition_ratio`` (:func:`olmo_core_shortfalls`, counted from the files as OLMo-core counts them).
Such an export is refused (:class:`IncompleteExport`) unless ``allow_incomplete``, which writes it with a
warning as its first line. Files are written atomically: a reader sees the old file or the whole new one.

The olmo-core file is a whole ``SourceMixtureDatasetConfig`` (``source_list``, ``requested_tokens``,
``global_batch_size``); its header names the ``build`` arguments (token dtype, sequence length). Sources of
weight 0 are left out unless ``keep_zero`` (OLMo-core's composable mixing API refuses a ratio of 0), and the
header lists them.

The audit (:func:`olmo_core_audit`, ``mixopt study export --audit``) builds an olmo-core export with
OLMo-core's own ``SourceMixtureDatasetConfig.build``, the apportionment a training job runs (whole
``sequence_length`` instances per path by largest remainder under each path's capacity, whole global
batches), and compares, per source, the requested share and tokens with the realised tokens, share and
epochs, with the total-variation distance between the two mixtures, the sources that get no instances and
those past their repetition cap.
"""

from __future__ import annotations

import contextlib
import glob
import io
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import mixopt
from mixopt.errors import ConfigError, OutputError
from mixopt.failpoints import failpoint
from mixopt.space import MixtureSpace, Source

DIALECTS = ("olmo-core", "olmo-cookbook", "plain")
# Per structured dialect: source-name key, repetition key, max-fraction key, (outer, inner) nesting of the
# source list, token-budget key. OLMo-core's max_source_fraction caps the share of a source's *files* used
# (tokens x fraction x repetition), not its share of the mixture, so the olmo-core file leaves it at 1.
DIALECT_KEYS = {
    "olmo-core": ("source_name", "max_repetition_ratio", None, ("source_list", "sources"), "requested_tokens"),
    "olmo-cookbook": ("name", "repetition_factor", "max_source_ratio", ("dataset", "sources"), "max_tokens"),
}
# Paths OLMo-core cannot read as token ids: text a source may name (the microanneal runner tokenizes it).
TEXT_SUFFIXES = (".jsonl", ".json", ".parquet", ".txt", ".md", ".rst", ".py", ".gz", ".zst", ".arrow")
READERS = {"olmo-core": "OLMo-core's SourceMixtureConfig", "olmo-cookbook": "olmo-cookbook"}


@dataclass(frozen=True)
class TrainerLayout:
    """How OLMo-core reads an export: every source's token files as raw ``dtype`` arrays (None: unknown, so
    nothing is counted), cut into ``sequence_length``-token instances, ``global_batch_size`` tokens a step;
    ``tokenizer`` names what made the files (None: not known to mixopt)."""

    dtype: str | None = None
    sequence_length: int = 4096
    global_batch_size: int = 4_194_304
    tokenizer: str | None = None

    def instances(self, budget: float) -> int:
        """The instances N (of ``sequence_length`` tokens) OLMo-core trains on at ``budget`` tokens: the whole
        global batches that cover it."""
        if self.global_batch_size % self.sequence_length:
            raise ConfigError(f"global batch size {self.global_batch_size} is not a multiple of sequence length "
                              f"{self.sequence_length}: OLMo-core needs whole instances per batch")
        return math.ceil(budget / self.global_batch_size) * (self.global_batch_size // self.sequence_length)


def sources_layout(sources: Sequence[Source]) -> TrainerLayout:
    """The default layout of ``sources``' files: read as the ``token_dtype`` they share (None if they differ)."""
    dtypes = {s.token_dtype for s in sources if s.token_dtype}
    return TrainerLayout(dtypes.pop() if len(dtypes) == 1 else None)


class IncompleteExport(ConfigError):
    """A structured export that its reader would refuse: ``sources`` (weight > 0) have no paths, or (with
    ``problem``) hold too few tokens for their shares; ``problem`` and ``fix`` say which and what to do."""

    def __init__(self, dialect: str, sources: Sequence[str], problem: str | None = None, fix: str | None = None) -> None:
        self.dialect, self.sources = dialect, tuple(sources)
        self.problem = problem or missing_paths_text(dialect, self.sources)
        fix = fix or "set sources[].paths in the config, export --format plain"
        super().__init__(f"{dialect} export refused: {self.problem}: {fix}, or pass --allow-incomplete to write it with a warning")


def missing_paths_text(dialect: str, sources: Sequence[str]) -> str:
    """The words for sources with weight > 0 and no paths, which ``dialect``'s reader refuses."""
    return (f"source{'s' if len(sources) > 1 else ''} {', '.join(sources)} ha{'ve' if len(sources) > 1 else 's'} "
            f"weight > 0 and no paths, which {READERS[dialect]} refuses (paths must not be empty)")


def grid_decimals(weights: np.ndarray, granularity: float) -> list[float]:
    """Weights as the floats nearest to whole multiples u of ``granularity`` = 1 / U summing to exactly 1 (u / U:
    for a granularity of 1e-4, floats whose shortest decimal forms have 4 places)."""
    total = round(1 / granularity)
    units = np.round(np.asarray(weights) * total).astype(np.int64)
    if units.sum() != total:
        raise ConfigError("export needs a mixture rounded to the study's grid (weights must sum to 1)")
    return [int(u) / total for u in units]


def file_tokens(path: str, dtype: str) -> int | None:
    """Tokens in the local files a source path names (a file or a glob), counted as OLMo-core counts them:
    each file's bytes // the dtype's size. None for a remote path (``s3://``...), which is not counted; a
    local path that matches no file is a ``ConfigError``."""
    if "://" in path and not path.startswith("file://"):
        return None
    local = path.removeprefix("file://")
    files = sorted(glob.glob(local)) if "*" in local else [local] if os.path.isfile(local) else []
    if not files:
        raise ConfigError(f"source path {path} matches no file: fix sources[].paths (OLMo-core would stop on it)")
    size = np.dtype(dtype).itemsize
    return sum(os.path.getsize(f) // size for f in files)


def olmo_core_shortfalls(entries: Sequence[dict[str, Any]], requested_tokens: int, dtype: str) -> dict[str, str]:
    """The sources of an olmo-core ``source_list`` whose files are too small for their shares (name -> the
    words of a refusal), found as ``SourceMixtureDatasetConfig.build`` finds them: a source needs
    ``int(requested_tokens * target_ratio)`` tokens and may give ``int(tokens * max_source_fraction *
    max_repetition_ratio)``. Sources with a remote path are not counted."""
    out = {}
    for e in entries:
        counts = [file_tokens(p, dtype) for p in e["paths"]]
        if not e["target_ratio"] or None in counts:
            continue
        tokens = sum(c for c in counts if c is not None)
        repetition = e.get("max_repetition_ratio", 1.0)
        needed = int(requested_tokens * e["target_ratio"])
        if int(tokens * e.get("max_source_fraction", 1.0) * repetition) < needed:
            out[e["source_name"]] = (f"source {e['source_name']} has {tokens:,} {dtype} tokens in its files, too few for "
                                     f"its share {e['target_ratio']} of {requested_tokens:,} tokens ({needed:,}) at "
                                     f"max_repetition_ratio {repetition:g}")
    return out


def olmo_core_refusal(entries: Sequence[dict[str, Any]], budget: int | None, dtype: str | None) -> IncompleteExport | None:
    """Why OLMo-core would refuse or misread an olmo-core ``source_list`` (None: it would not): a source naming
    text files or folders (read as token ids), or (with a budget and a dtype) sources too small for their shares."""
    text = {e["source_name"]: p for e in entries for p in e["paths"] if e["target_ratio"] and
            (p.lower().endswith(TEXT_SUFFIXES) or os.path.isdir(p))}
    if text:
        named = ", ".join(f"{name} ({path})" for name, path in text.items())
        return IncompleteExport("olmo-core", list(text), f"sources name text files or folders, which OLMo-core reads as "
                                f"token ids: {named}", "name their token files (the microanneal runner tokenizes text "
                                "into them), export --format plain")
    short = olmo_core_shortfalls(entries, budget, dtype) if budget and dtype else {}
    if short:
        return IncompleteExport("olmo-core", list(short), "; ".join(short.values()),
                                "lower its share, raise its max_repetition or add data")
    return None


def render(
    space: MixtureSpace,
    weights: np.ndarray | Sequence[float],
    dialect: str = "olmo-core",
    granularity: float = 1e-4,
    provenance: dict[str, Any] | None = None,
    allow_incomplete: bool = False,
    layout: TrainerLayout | None = None,
    keep_zero: bool = False,
    realisable: bool = False,
) -> str:
    """The YAML text of one mixture ``(K,)`` in ``dialect``, with a provenance header. A structured dialect
    whose reader would refuse it (sources with weight > 0 and no paths; for olmo-core, a source too small for
    its share, counted from its files read as ``layout.dtype``, default :func:`sources_layout`) raises
    ``IncompleteExport``, or with ``allow_incomplete`` is written with a ``# WARNING`` line first. olmo-core
    leaves sources of weight 0 out unless ``keep_zero``. ``realisable`` (olmo-core, a mixture from
    :func:`mixopt.realisable.realisable_mixture`): ratios on the grid of ``layout``'s N instances at the
    budget, asking for the N x sequence_length tokens the run reads, so that OLMo-core realises them exactly."""
    if dialect not in DIALECTS:
        raise ConfigError(f"unknown export format '{dialect}': choose one of {', '.join(DIALECTS)}")
    weights = np.asarray(weights, dtype=float)
    problems = space.violations(weights, tol=1e-6)
    if problems:
        at = f" at a budget of {space.token_budget:.4g} tokens" if space.token_budget else ""
        raise ConfigError(f"cannot export this mixture{at}: {problems[0]} (choose another fidelity or trial)")
    budget = int(space.token_budget) if space.token_budget else None
    layout = layout or sources_layout(space.sources)
    if realisable:
        if dialect != "olmo-core" or budget is None:
            raise ConfigError("a realisable export is an olmo-core export at a token budget (the fidelity's tokens)")
        granularity = 1 / layout.instances(budget)
        budget = layout.instances(budget) * layout.sequence_length
    weights = space.round(weights, granularity)
    ratios = grid_decimals(weights, granularity)
    left_out = [s.name for s, r in zip(space.sources, ratios, strict=True) if r == 0 and dialect == "olmo-core" and not keep_zero]
    if dialect == "plain":
        body: Any = {s.name: r for s, r in zip(space.sources, ratios, strict=True)}
    else:
        name_key, repetition_key, fraction_key, (outer, inner), budget_key = DIALECT_KEYS[dialect]
        sources = []
        for s, r, upper in zip(space.sources, ratios, space.upper, strict=True):
            if s.name in left_out:
                continue
            entry: dict[str, Any] = {name_key: s.name, "target_ratio": r, "paths": list(s.paths)}
            if s.max_repetition is not None:
                entry[repetition_key] = s.max_repetition
            if fraction_key:
                entry[fraction_key] = float(upper)
            sources.append(entry)
        body = {outer: {inner: sources}}
        if budget:
            body[budget_key] = budget
        if dialect == "olmo-core":
            body["global_batch_size"] = layout.global_batch_size
    missing = [s.name for s, r in zip(space.sources, ratios, strict=True) if r > 0 and not s.paths]
    refused: IncompleteExport | None = None
    if dialect in READERS and missing:
        refused = IncompleteExport(dialect, missing)
    elif dialect == "olmo-core":
        refused = olmo_core_refusal(sources, budget, layout.dtype)
    warning = ""
    if refused is not None:
        if not allow_incomplete:
            raise refused
        warning = f"# WARNING: incomplete, not loadable as it is: {refused.problem}; fix it first\n"
    header = {"mixopt_version": mixopt.__version__, "dialect": dialect, **(provenance or {})}
    if dialect == "olmo-core":
        header.update(olmo_core_header(layout, left_out, round(1 / granularity) if realisable else None))
    comment = warning + "".join(f"# {key}: {value}\n" for key, value in header.items())
    return comment + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def olmo_core_header(layout: TrainerLayout, left_out: Sequence[str], instances: int | None = None) -> dict[str, Any]:
    """The olmo-core file's header lines: how to build it, what made its token files, what it leaves out and,
    for a realisable export, the ``instances`` whose whole numbers its ratios count."""
    dtype = f"numpy.{layout.dtype}" if layout.dtype else "<the token files' dtype>"
    lines: dict[str, Any] = {"load": "olmo_core.data.source_mixture.SourceMixtureDatasetConfig.from_yaml(this file)"
                             f".build(npdtype={dtype}, sequence_length={layout.sequence_length})"}
    if layout.tokenizer:
        lines["tokenizer"] = layout.tokenizer
    if left_out:
        lines["left_out_weight_0"] = ", ".join(left_out)
    if instances:
        lines["realisable"] = (f"ratios are whole instances of {instances:,} ({instances // (layout.global_batch_size // layout.sequence_length)}"
                               f" global batches of {layout.global_batch_size:,} tokens): OLMo-core realises them exactly")
    return lines


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


# -- the audit: what OLMo-core realises from an olmo-core export ----------------------------------------------
BUILD_CALL = re.compile(r"\.build\(npdtype=numpy\.(\w+), sequence_length=(\d+)\)")


@dataclass(frozen=True)
class SourceAudit:
    """One source: requested share and tokens; realised tokens, share and epochs; its cap (epochs)."""

    name: str
    requested_share: float
    requested_tokens: int
    realised_tokens: int
    realised_share: float
    epochs: float
    cap: float


@dataclass(frozen=True)
class Audit:
    """A built export: its sources, the total-variation distance requested vs realised, and the sources
    requested but given no instances, or given more epochs than their cap."""

    sources: tuple[SourceAudit, ...]
    total_variation: float
    zero_instances: tuple[str, ...]
    over_cap: tuple[str, ...]


def olmo_core_audit(text: str) -> Audit:
    """Build the olmo-core export ``text`` with OLMo-core (on the token files its paths name, read with the
    dtype and sequence length its header names) and compare what it realises with what was requested.
    Sources the file leaves out (weight 0) are requested and realised at 0, so they add no distance."""
    try:
        from olmo_core.data.source_mixture import SourceMixtureDatasetConfig
        from olmo_core.exceptions import OLMoConfigurationError
    except ImportError:
        raise ConfigError("--audit and --realisable build the export with OLMo-core: pip install ai2-olmo-core") from None
    call = BUILD_CALL.search(text)
    data = yaml.safe_load(text)
    if call is None or "requested_tokens" not in data:
        raise ConfigError("--audit needs an olmo-core export with a token budget and a known token dtype "
                          "(set sources[].token_dtype)")
    config = SourceMixtureDatasetConfig.from_dict(data)
    config.render_tables, config.quiet = False, True
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its progress bars print blank lines even when quiet
            dataset = config.build(npdtype=getattr(np, call[1]), sequence_length=int(call[2]))
    except OLMoConfigurationError as exc:
        raise ConfigError(f"OLMo-core refuses this export: {exc}") from None
    realised = {s.name: sum(p.tokens for p in s.path_tokens) for s in dataset.sources}
    total = sum(realised.values())
    rows = []
    for entry in data["source_list"]["sources"]:
        name, share = entry["source_name"], entry["target_ratio"]
        population = sum(file_tokens(path, call[1]) or 0 for path in entry["paths"])
        rows.append(SourceAudit(name, share, int(config.requested_tokens * share), realised[name], realised[name] / total,
                                realised[name] / population if population else float("inf"),
                                entry.get("max_repetition_ratio", 1.0)))
    distance = 0.5 * sum(abs(r.realised_share - r.requested_share) for r in rows)
    return Audit(tuple(rows), distance, tuple(r.name for r in rows if r.realised_tokens == 0 and r.requested_share),
                 tuple(r.name for r in rows if r.epochs > r.cap))


def audit_lines(audit: Audit) -> list[str]:
    """The audit as a table and three summary lines."""
    lines = [f"{'source':<14}{'requested':>10}{'tokens':>14}{'realised':>10}{'tokens':>14}{'epochs':>8}{'cap':>6}"]
    for r in audit.sources:
        lines.append(f"{r.name:<14}{r.requested_share:>10.4f}{r.requested_tokens:>14,}{r.realised_share:>10.4f}"
                     f"{r.realised_tokens:>14,}{r.epochs:>8.3f}{r.cap:>6g}")
    lines.append(f"total-variation distance, requested vs realised: {audit.total_variation:.4f}")
    lines.append(f"sources with zero instances: {', '.join(audit.zero_instances) or 'none'}")
    lines.append(f"repetition caps exceeded: {', '.join(audit.over_cap) or 'none'}")
    return lines
