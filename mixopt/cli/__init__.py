"""The ``mixopt`` command line. Exit codes: 0 ok, 2 bad input, 1 a run failed.

Every command calls the public API only. Errors meant for the user (``MixoptError``) print one line
on stderr with no traceback.
"""

from __future__ import annotations

import sys

import click
import typer

from mixopt.cli import study
from mixopt.errors import MixoptError

app = typer.Typer(
    help="Bayesian optimization of training data mixtures.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(study.app, name="study")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and maps errors to one line and an exit code."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="mixopt", standalone_mode=False)
    except MixoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: completed trials are saved; run the same command again to resume", file=sys.stderr)
        sys.exit(130)
