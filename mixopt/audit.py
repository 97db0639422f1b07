"""The mixture a trainer realises from an export, audited before launch (``mixopt study export --audit``).

OLMo-core realises a mixture only approximately: it apportions whole ``sequence_length`` instances per
path by largest remainder under each path's capacity, and fills whole global batches. The audit builds the
olmo-core export with OLMo-core's own ``SourceMixtureDatasetConfig.build`` (the apportionment a training
job will run) and compares, per source, the requested share and tokens with the realised tokens, share and
epochs (realised tokens over the tokens in its files), with the total-variation distance between the two
mixtures, the sources that get no instances and those past their repetition cap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import yaml

from mixopt.errors import ConfigError
from mixopt.export import file_tokens

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
        raise ConfigError("--audit builds the export with OLMo-core: pip install ai2-olmo-core") from None
    call = BUILD_CALL.search(text)
    data = yaml.safe_load(text)
    if call is None or "requested_tokens" not in data:
        raise ConfigError("--audit needs an olmo-core export with a token budget and a known token dtype "
                          "(set sources[].token_dtype)")
    config = SourceMixtureDatasetConfig.from_dict(data)
    config.render_tables, config.quiet = False, True
    try:
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
