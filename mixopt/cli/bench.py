"""``mixopt bench NAME [ARGS...]``: the speed and quality benchmarks in ``benchmarks/`` (figures in BENCHMARKS.md)."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from mixopt.errors import ConfigError

BENCHMARKS = ("search", "pool", "surrogates", "microanneal")

COMMAND_SETTINGS: dict[str, Any] = {  # keyword arguments of app.command
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
    "epilog": "Example: mixopt bench search quality --fast (arguments after NAME go to the benchmark)",
}


def bench(ctx: typer.Context, name: str = typer.Argument(..., help=f"one of: {', '.join(BENCHMARKS)}")) -> None:
    """Run the benchmark NAME."""
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark '{name}': choose one of {', '.join(BENCHMARKS)}")
    try:
        module = importlib.import_module(f"mixopt.benchmarks.{name}")
    except ModuleNotFoundError as exc:
        raise ConfigError(f"benchmark '{name}' is not available in this installation ({exc.name})") from None
    module.main(list(ctx.args))
