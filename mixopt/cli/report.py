"""``mixopt study report``: the study's offline HTML report (Pareto fronts, mixtures, surrogate)."""

from __future__ import annotations

from pathlib import Path

import typer

from mixopt.cli.study import ConfigArg, NameOpt, StorageOpt, console, open_study, out


def report(
    config: Path | None = ConfigArg,
    storage: str | None = StorageOpt,
    study_name: str | None = NameOpt,
    output: Path | None = typer.Option(
        None, "-o", "--output", help="HTML file to write (default: report/<study>.html beside the config)"
    ),
    open_: bool = typer.Option(False, "--open", help="open the report in the default browser"),
    png: bool = typer.Option(False, "--png", help="also write one PNG per figure (needs Chromium for kaleido)"),
) -> None:
    """Write an offline HTML report of the study: fronts, mixtures, history, surrogate parity and effects.

    plotly.min.js is written beside the page (no network needed); the figures are also attached to the
    study, so optuna-dashboard shows them.
    """
    from mixopt.report import PNG_SKIPPED, write_report

    study = open_study(config, storage, study_name, create=False)
    if output is None:
        folder = study.config.directory if study.config.directory.is_dir() else Path.cwd()
        output = folder / "report" / f"{study.name}.html"
    with console.status("building the report (fitting the surrogate)"):
        written = write_report(study, output, png=png, open_browser=open_)
    for path in written:
        out.print(f"wrote {path}")
    if png and not any(p.suffix == ".png" for p in written):
        console.print(f"[yellow]{PNG_SKIPPED}[/]")
