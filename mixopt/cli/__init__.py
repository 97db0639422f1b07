"""The ``mixopt`` command line. Exit codes: 0 ok, 2 bad input, 1 a run failed.

Every command calls the public API only. Errors meant for the user (``MixoptError``) print one line
on stderr with no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mixopt.cli import bench, demo, study
from mixopt.errors import MixoptError

app = typer.Typer(
    help="Bayesian optimization of training data mixtures.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(study.app, name="study")
app.add_typer(demo.app, name="demo")
app.command("bench", **bench.COMMAND_SETTINGS)(bench.bench)


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
