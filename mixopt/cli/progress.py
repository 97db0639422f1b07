"""Progress of a running study on the terminal: a rich bar with a TTY, plain lines without one (a batch job,
a script, a pipe), so long runs are never silent and no line is wrapped for a reader that parses them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from mixopt.config import StudyConfig
    from mixopt.loop import Progress as TrialFinished

WIDE = 100_000  # columns when there is no terminal: rich never wraps a line


def make_console(stderr: bool = False) -> Console:
    """A console that soft-wraps on a terminal and never wraps without one (tables too: rich caps a table at
    the console's width, 80 columns when there is no terminal)."""
    console = Console(stderr=stderr, soft_wrap=True)
    return console if console.is_terminal else Console(stderr=stderr, soft_wrap=True, width=WIDE)


def width_for(console: Console) -> int | None:
    """The width to render tables at: the terminal's, or unlimited without a terminal."""
    return None if console.is_terminal else WIDE


@contextmanager
def trial_progress(console: Console, config: StudyConfig, target: int, completed: int) -> Iterator[Callable[[TrialFinished], None]]:
    """A callback for each finished trial of a study going to ``target`` completed trials (``completed``
    done already), with the best value of each objective so far: a live bar on a terminal, else one line
    per trial with the elapsed time and an estimate of the time left."""
    best: dict[str, float] = {}

    def remember(event: TrialFinished) -> str:
        for objective, value in zip(config.objectives, event.values or [], strict=False):
            better = max if objective.direction == "maximize" else min
            best[objective.name] = better(best.get(objective.name, value), value)
        return "best " + " ".join(f"{k}={v:.4g}" for k, v in best.items()) if best else ""

    if console.is_terminal:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[best]}")]
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("trials", total=target, completed=completed, best="")

            def on_bar(event: TrialFinished) -> None:
                if event.values is None:
                    bar.console.print(f"[yellow]trial {event.trial} failed:[/] {event.error}")
                bar.update(task, completed=event.completed, best=remember(event))

            yield on_bar
        return
    started, first = time.monotonic(), completed

    def on_line(event: TrialFinished) -> None:
        elapsed = time.monotonic() - started
        done = event.completed - first
        eta = f", eta {timedelta(seconds=round(elapsed / done * (target - event.completed)))}" if 0 < done else ""
        head = f"trial {event.trial} " + ("done" if event.values is not None else f"failed: {event.error}")
        values = " ".join(f"{o.name}={v:.4g}" for o, v in zip(config.objectives, event.values or [], strict=False))
        console.print(f"{head} {values} ({event.completed}/{target} complete, {timedelta(seconds=round(elapsed))} "
                      f"elapsed{eta}) {remember(event)}".replace("  ", " "), markup=False, highlight=False)

    yield on_line
