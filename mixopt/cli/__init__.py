"""The ``mixopt`` command line. Exit codes: 0 ok, 2 bad input, 1 a run failed.

Every command calls the public API only. Errors meant for the user (``MixoptError``) print one line
on stderr with no traceback. Command modules import the heavy stack (optuna, torch, plotly, ...) inside the
commands that use it, so ``mixopt --help``, ``study ask`` and ``study tell`` start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from mixopt.cli import bench, demo, metrics, report, study, surrogate
from mixopt.cli import init as init_command
from mixopt.cli.progress import make_console, width_for
from mixopt.errors import MixoptError

app = typer.Typer(
    help="Bayesian optimization of training data mixtures.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
study.app.command("report", epilog="Example: mixopt study report studies/synthetic/study.yaml --png")(report.report)
app.add_typer(study.app, name="study")
app.add_typer(demo.app, name="demo")
app.add_typer(surrogate.app, name="surrogate")
app.command("bench", **bench.COMMAND_SETTINGS)(bench.bench)
app.command("metrics", epilog=metrics.EPILOG)(metrics.metrics)
app.command("init", epilog=init_command.EPILOG)(init_command.init)


@app.command(epilog="Example: mixopt screen studies/default/study.yaml --replicates 3")
def screen(
    config: Path | None = study.ConfigArg,
    storage: str | None = study.StorageOpt,
    study_name: str | None = study.NameOpt,
    replicates: int | None = typer.Option(None, "--replicates", min=1, help="runs per arm (default: the config's)"),
) -> None:
    """Screen candidate sources: each on top of the anchor mixture against the anchor alone."""
    from mixopt.screen import run_screening

    ranked = run_screening(study.open_study(config, storage, study_name, create=True), replicates)
    table = Table(title="Source screening: lift over the anchor-only baseline (positive = better)")
    table.add_column("rank", justify="right")
    table.add_column("source")
    for name in ranked[0].lift if ranked else []:
        table.add_column(name, justify="right")
    table.add_column("score", justify="right")
    table.add_column("enters search")
    for rank, lift in enumerate(ranked, 1):
        cells = [f"{lift.lift[k]:+.4f} ± {lift.stderr[k]:.4f}" for k in lift.lift]
        table.add_row(str(rank), lift.source, *cells, f"{lift.score:+.2f}", "yes" if lift.enters_search else "no")
    console = make_console()
    console.print(table, width=width_for(console))


@app.command(epilog="Example: mixopt merge runs/seed-1/checkpoint runs/seed-2/checkpoint -o merged/")
def merge(
    checkpoints: list[Path] = typer.Argument(..., help="checkpoint folders (safetensors) of one architecture"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for the merged checkpoint"),
) -> None:
    """Average the weights of checkpoints (e.g. two seeds of the final mixture)."""
    from mixopt.merge import merge_checkpoints

    print(f"merged {len(checkpoints)} checkpoints into {merge_checkpoints(checkpoints, output)}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: the app in standalone mode (usage errors exit 2), user errors as one line."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="mixopt", standalone_mode=True)
    except MixoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
