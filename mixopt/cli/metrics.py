"""``mixopt metrics CONFIG``: which metrics of a study's runs can rank its mixtures (``mixopt.headroom``)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.table import Table

from mixopt.cli.progress import make_console, width_for
from mixopt.cli.study import ConfigArg, NameOpt, StorageOpt, default_config_path, open_study
from mixopt.errors import ConfigError, OutputError

if TYPE_CHECKING:  # imported by the command: it reads scipy, which `mixopt --help` need not
    from mixopt import headroom

EPILOG = ("Example: mixopt metrics studies/default/study.yaml --choices 4 --write   (replicates: enqueue a mixture "
          "several times; seeds differ per trial)")


def parse_choices(values: list[str]) -> dict[str, int]:
    """``--choices`` values: ``K`` (every accuracy metric) or ``METRIC=K`` -> ``{"*" or METRIC: K}``."""
    choices: dict[str, int] = {}
    for value in values:
        name, _, count = value.rpartition("=")
        if not count.isdigit() or int(count) < 2:
            raise ConfigError(f"--choices {value}: give K (2 or more choices per item) or METRIC=K, e.g. --choices math_acc=4")
        choices[name or "*"] = int(count)
    return choices


def metrics(
    config: Path | None = ConfigArg,
    storage: str | None = StorageOpt,
    study_name: str | None = NameOpt,
    fidelity: str | None = typer.Option(None, "--fidelity", help="fidelity to measure at (default: the search fidelity)"),
    choices: list[str] = typer.Option([], "--choices", help="choices per item of accuracy metrics (*_acc): K for all, "
                                      "or METRIC=K (repeatable); gives their chance level 1/K"),
    top: int = typer.Option(3, "--top", min=1, help="objectives to suggest"),
    write: bool = typer.Option(False, "--write", help="add the suggestion to the config as a comment block (replacing "
                               "an earlier one); the objectives themselves are left as they are"),
    output_format: str = typer.Option("table", "-f", "--format", help="table or json"),
) -> None:
    """For every metric the study's completed runs report: its spread across mixtures (signal), the seed
    spread of replicated mixtures (noise), their ratio, how close it is to its ceiling or chance level,
    and its rank correlation between fidelities; flags metrics that cannot rank mixtures and suggests
    the objectives with the most headroom."""
    from mixopt import headroom

    if output_format not in ("table", "json"):
        raise ConfigError(f"unknown format '{output_format}': use table or json")
    if write and config is None and storage is not None:
        raise ConfigError("--write needs the CONFIG file to write the suggestion into")
    study = open_study(config, storage, study_name, create=False)
    cfg = study.config
    at = cfg.fidelity(fidelity).name if fidelity else cfg.search_fidelity.name
    other = next((f.name for f in reversed(cfg.fidelities) if f.name != at), None)
    signals = headroom.assess(study.observations(), at, other, parse_choices(choices),
                              {o.metric: o.direction for o in cfg.objectives})
    if not signals:
        raise ConfigError(f"study '{study.name}' has no completed runs at fidelity '{at}': run some first")
    suggested = headroom.suggest(signals, top)
    if output_format == "json":
        print(json.dumps({"fidelity": at, "other_fidelity": other, "thresholds": thresholds(),
                          "metrics": [{**_jsonable(dataclasses.asdict(m)), "ratio": _number(m.ratio)} for m in signals],
                          "suggested": [m.name for m in suggested]}, indent=1))
    else:
        print_table(signals, suggested, at, other)
    if write:
        path = _config_file(config)
        text = headroom.with_block(path.read_text(), headroom.suggestion_block(signals, suggested, at))
        try:
            path.write_text(text)
        except OSError as exc:
            raise OutputError.cannot_write(path, exc, "copy the block printed by --format table by hand") from None
        make_console(stderr=True).print(f"wrote the suggestion into {path} (a comment block; objectives unchanged)")


def thresholds() -> dict[str, float]:
    from mixopt import headroom

    return {"signal_to_noise_min": headroom.SIGNAL_TO_NOISE_MIN, "saturation_margin": headroom.SATURATION_MARGIN,
            "rank_correlation_min": headroom.RANK_CORRELATION_MIN,
            "rank_correlation_mixtures": headroom.RANK_CORRELATION_MIXTURES}


def print_table(signals: list[headroom.MetricSignal], suggested: list[headroom.MetricSignal], at: str,
                other: str | None) -> None:
    """One row per metric: mixtures/replicated, mean, signal, noise, S/N, headroom to the ceiling (and the
    share above chance), rank correlation with the other fidelity (shared mixtures), flags; then the
    flagged metrics and the suggestion as lines (a narrow terminal cuts the table)."""
    from mixopt import headroom

    console = make_console()
    versus = f"; rank correlation with '{other}'" if other else ""
    table = Table(title=f"Metrics at '{at}': signal (sd of mixture means) vs noise (pooled seed sd){versus}",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("metric", "mix/rep", "mean", "signal", "noise", "S/N", "room/chance", "corr", "flags"):
        left = column in ("metric", "flags")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)

    def cell(value: float | None, spec: str = ".3g") -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)

    for m in signals:
        room = "-" if m.headroom is None else f"{m.headroom:.3f}/{cell(m.above_chance, '.2f')}"
        corr = "-" if m.rank_correlation is None else f"{m.rank_correlation:.2f} ({m.shared_mixtures})"
        table.add_row(m.name, f"{m.mixtures}/{m.replicated}", cell(m.mean, ".4g"), cell(m.signal), cell(m.noise),
                      cell(m.ratio), room, corr, ", ".join(m.flags) or "ok")
    console.print(table, width=width_for(console))
    console.print(f"thresholds: S/N >= {headroom.SIGNAL_TO_NOISE_MIN:g}; saturated / at chance below "
                  f"{headroom.SATURATION_MARGIN:g} of the chance-to-ceiling range; rank correlation >= "
                  f"{headroom.RANK_CORRELATION_MIN:g} over {headroom.RANK_CORRELATION_MIXTURES}+ shared mixtures",
                  markup=False, highlight=False)
    flagged = "; ".join(f"{m.name} ({', '.join(m.flags)})" for m in signals if m.flags)
    console.print(f"flagged: {flagged or 'none'}", markup=False, highlight=False)
    names = ", ".join(f"{m.name} ({m.direction}, S/N {m.ratio:.3g})" for m in suggested)
    console.print(f"suggested objectives: {names or 'none passes (run replicates of a few mixtures)'}",
                  markup=False, highlight=False)


def _config_file(config: Path | None) -> Path:
    path = config or default_config_path()
    if path is None:
        raise ConfigError("--write needs a config file: the packaged default study is read-only "
                          "(copy it with `mixopt init --example default` and pass its study.yaml)")
    return path / "study.yaml" if path.is_dir() else path


def _number(value: float | None) -> float | str | None:
    """A float for JSON: infinities and NaN as strings (JSON has neither)."""
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _jsonable(row: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else (_number(v) if isinstance(v, float) else v) for k, v in row.items()}
