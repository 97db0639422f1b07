"""The controller: rounds of propose -> run -> tell until the study has its completed trials.

This is the one module that knows searchers, runners and executors together; none of them knows another.
One controller process owns a study's proposals. Everything it learns is written to the study's
storage as soon as it is known, so a killed controller loses nothing that had completed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixopt.config import StudyConfig
from mixopt.errors import RunFailed
from mixopt.executors import EXECUTORS, Executor
from mixopt.runners import RUNNERS
from mixopt.runners.base import RunSpec
from mixopt.search import SEARCHERS
from mixopt.study import Study


@dataclass
class Progress:
    """What the loop reports after each finished trial."""

    completed: int
    target: int
    failed: int
    trial: int
    values: list[float] | None
    error: str | None


def run_specs(study: Study, trials, output_root: Path) -> list[RunSpec]:
    """Run specs for started trials; source paths are resolved against the study's directory."""
    config = study.config
    paths = {
        s.name: tuple(str(p) if Path(p).is_absolute() else str((config.directory / p).resolve()) for p in s.paths)
        for s in config.sources
    }
    specs = []
    for trial in trials:
        fidelity = config.fidelity(trial.user_attrs["fidelity"])
        specs.append(
            RunSpec(
                trial=trial.number,
                mixture=study.space.as_dict(study.weights_of(trial)),
                fidelity=fidelity.name,
                tokens=fidelity.tokens,
                seed=trial.user_attrs["seed"],
                output_dir=str(output_root / f"trial-{trial.number:05d}"),
                model=fidelity.model,
                source_paths=paths,
                source_tokens={s.name: s.tokens for s in config.sources},
                max_repetition={s.name: s.max_repetition for s in config.sources},
            )
        )
    return specs


def propose_batch(study: Study, n: int) -> None:
    """Ask the searcher for ``n`` mixtures at the search fidelity and queue them, rounded to the grid.

    The seed is the study's seed plus its trial count, so a resumed study never replays its proposals.
    """
    config = study.config
    searcher = SEARCHERS.create(config.searcher.name, config.searcher.options)
    seed = config.seed + len(study.trials())
    proposals = searcher.propose(study.space, study.history(), n, seed=seed)
    study.enqueue(study.space.round(np.asarray(proposals), config.granularity), config.search_fidelity.name)


def run_study(
    study: Study,
    n_trials: int | None = None,
    batch_size: int | None = None,
    executor: Executor | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> int:
    """Run until ``n_trials`` trials are complete at the search fidelity; returns the completed count.

    Raises ``RunFailed`` once more than ``max_failures`` trials have failed in this call.
    """
    config: StudyConfig = study.config
    n_trials = n_trials or config.n_trials
    batch_size = batch_size or config.batch_size
    max_failures = config.max_failures if config.max_failures is not None else max(n_trials, 3)
    runner = RUNNERS.create(config.runner.name, config.runner.options)
    executor = executor or EXECUTORS.create(config.executor.name, config.executor.options)
    output_root = config.directory / "runs" / study.name
    fidelity = config.search_fidelity.name
    study.recover_stale()
    failures, last_error = 0, ""
    try:
        while (completed := study.n_complete(fidelity)) < n_trials:
            want = min(batch_size, n_trials - completed)
            if study.n_waiting() < want:
                propose_batch(study, want - study.n_waiting())
            trials = study.start(want)
            specs = run_specs(study, trials, output_root)
            for index, result in executor.map(runner.run, specs):
                number = specs[index].trial
                values, error = None, None
                if isinstance(result, BaseException):
                    error = _reason(result)
                else:
                    try:
                        values = study.tell(number, result)
                    except ValueError as exc:
                        error = str(exc)
                if error is not None:
                    study.fail(number, error)
                    failures, last_error = failures + 1, error
                if on_progress:
                    on_progress(Progress(study.n_complete(fidelity), n_trials, failures, number, values, error))
            if failures > max_failures:
                raise RunFailed(f"{failures} trials failed (more than max_failures={max_failures}); last: {last_error}")
    finally:
        executor.close()
    return study.n_complete(fidelity)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
