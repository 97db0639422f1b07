"""The controller: rounds of propose -> run -> tell until the study has its completed trials.

This is the one module that knows searchers, runners and executors together; none of them knows another.
One controller process owns a study's proposals. Everything it learns is written to the study's
storage as soon as it is known, so a killed controller loses nothing that had completed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixopt.config import StudyConfig
from mixopt.errors import OutputError, RunFailed
from mixopt.executors import EXECUTORS, Executor, outcome
from mixopt.failpoints import failpoint
from mixopt.runners import RUNNERS
from mixopt.runners.base import Evaluation, RunSpec
from mixopt.search import SEARCHERS
from mixopt.seeding import batch_seed
from mixopt.study import Study

WAIT_FOR_OTHERS_SECONDS = 1.0


@dataclass
class Progress:
    """What the loop reports after each finished trial."""

    completed: int
    target: int
    failed: int
    trial: int
    values: list[float] | None
    error: str | None


def make_spec(config: StudyConfig, trial: int, mixture: dict[str, float], fidelity: str, seed: int,
              output_dir: Path, study: str | None = None) -> RunSpec:
    """The run spec of one mixture; source and model paths are resolved against the study's folder."""
    fid = config.fidelity(fidelity)
    return RunSpec(
        trial=trial, mixture=mixture, fidelity=fid.name, tokens=fid.tokens, seed=seed,
        output_dir=str(output_dir), model=_resolve(config.directory, fid.model),
        source_paths={s.name: tuple(_resolve_path(config.directory, p) for p in s.paths) for s in config.sources},
        space=config.space(fid.name), granularity=config.granularity, study=study or config.name,
    )


def run_specs(study: Study, trials, root: Path) -> list[RunSpec]:
    """Run specs for started trials, each in ``root/trial-NNNNN``."""
    return [
        make_spec(study.config, t.number, study.space.as_dict(study.weights_of(t)), t.user_attrs["fidelity"],
                  t.user_attrs["seed"], root / f"trial-{t.number:05d}", study.name)
        for t in trials
    ]


def _resolve(directory: Path, path: str | None) -> str | None:
    """A config path made absolute against the study's folder (URLs and absolute paths kept); None kept."""
    return None if path is None else _resolve_path(directory, path)


def _resolve_path(directory: Path, path: str) -> str:
    """``path`` made absolute against ``directory`` (URLs and absolute paths kept)."""
    if "://" in path or Path(path).is_absolute():
        return path
    return str((directory / path).resolve())


def output_root(config: StudyConfig, study_name: str) -> Path:
    """``runs/<study>/`` beside the config, created and checked writable before any trial starts: a read-only
    or full folder stops the study with one ``OutputError`` line instead of failing every trial."""
    root = config.directory / "runs" / study_name
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise OutputError.cannot_write(root, exc, "run a copy of the study folder from a writable place") from None
    return root


def propose_batch(study: Study, n: int) -> None:
    """Ask the searcher for ``n`` mixtures at the search fidelity and queue them, rounded to the grid.

    The proposal seed is drawn from the study's seed stream at index = its trial count
    (:func:`mixopt.seeding.batch_seed`), so a resumed study never replays its proposals and studies
    with other seeds never replay each other's.
    """
    config = study.config
    searcher = SEARCHERS.create(config.searcher.name, config.searcher.options)
    seed = batch_seed(config.seed, len(study.trials()))
    proposals = searcher.propose(study.space, study.history(), n, seed=seed)
    failpoint("propose")
    study.enqueue(study.space.round(np.asarray(proposals), config.granularity), config.search_fidelity.name)


def run_study(
    study: Study,
    n_trials: int | None = None,
    batch_size: int | None = None,
    executor: Executor | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> int:
    """Run until ``n_trials`` trials are complete at the search fidelity; returns the completed count.

    Up to ``batch_size`` runs are in flight; as each finishes, it is told and a new mixture is proposed
    with the running ones as pending points. Raises ``RunFailed`` once more than ``max_failures`` trials
    failed in this call.
    """
    config: StudyConfig = study.config
    n_trials = n_trials or config.n_trials
    batch_size = batch_size or config.batch_size
    max_failures = config.max_failures if config.max_failures is not None else max(n_trials, 3)
    runner = RUNNERS.create(config.runner.name, config.runner.options)
    executor = executor or EXECUTORS.create(config.executor.name, config.executor.options)
    runs = output_root(config, study.name)
    fidelity = config.search_fidelity.name
    in_flight: list[tuple[object, RunSpec]] = []

    def adopt(trial) -> bool:
        """Re-attach to the scheduler job of a trial whose controller died, if it still exists."""
        job = trial.user_attrs.get("job_id")
        handle = executor.reattach(job) if job is not None else None
        if handle is not None:
            in_flight.append((handle, run_specs(study, [trial], runs)[0]))
        return handle is not None

    study.recover_stale(adopt)
    failures, last_error = 0, ""
    try:
        while True:
            completed = study.n_complete(fidelity)
            if completed >= n_trials and not in_flight:
                break
            free = batch_size - len(in_flight)
            if free > 0 and completed < n_trials:
                wanted = min(free, n_trials - completed - study.n_running(fidelity))
                in_flight.extend(_submit(study, runner, executor, runs, wanted, n_trials))
            if not in_flight:
                time.sleep(WAIT_FOR_OTHERS_SECONDS)  # the remaining trials run in other controllers...
                study.recover_stale(adopt)  # ...unless one died meanwhile, or was killed claiming a trial
                continue
            done = executor.wait([handle for handle, _ in in_flight])
            for handle, spec in [pair for pair in in_flight if pair[0] in done]:
                in_flight.remove((handle, spec))
                error = _record(study, spec.trial, outcome(handle))
                if error is not None:
                    failures, last_error = failures + 1, error
                _report(on_progress, study, spec.trial, error, n_trials, failures)
            if failures > max_failures:
                raise RunFailed(f"{failures} trials failed (more than max_failures={max_failures}); last: {last_error}")
    finally:
        executor.close()
    return study.n_complete(fidelity)


def _submit(study: Study, runner, executor: Executor, runs: Path, wanted: int, limit: int) -> list[tuple[object, RunSpec]]:
    """Propose what is missing, start ``wanted`` trials (never past ``limit`` at the search fidelity) and
    submit them; the scheduler's job ids are stored so that another controller can re-attach."""
    missing = wanted - study.n_waiting()
    if missing > 0:
        propose_batch(study, missing)
    specs = run_specs(study, study.start(wanted, limit=limit), runs)
    handles = executor.submit_many(runner.run, specs) if specs else []
    for handle, spec in zip(handles, specs, strict=True):
        job = executor.job_id(handle)
        if job is not None:
            study.set_trial_attr(spec.trial, "job_id", job)
    if specs:
        failpoint("submitted")
    return list(zip(handles, specs, strict=True))


def run_waiting(study: Study, on_progress: Callable[[Progress], None] | None = None) -> None:
    """Run every WAITING trial (e.g. promoted integration runs) to completion or failure."""
    config = study.config
    runner = RUNNERS.create(config.runner.name, config.runner.options)
    executor = EXECUTORS.create(config.executor.name, config.executor.options)
    specs = run_specs(study, study.start(study.n_waiting()), output_root(config, study.name))
    failures = 0
    try:
        for index, result in executor.map(runner.run, specs):
            error = _record(study, specs[index].trial, result)
            failures += error is not None
            _report(on_progress, study, specs[index].trial, error, config.n_trials, failures)
    finally:
        executor.close()


def _report(on_progress: Callable[[Progress], None] | None, study: Study, number: int, error: str | None,
            target: int, failures: int) -> None:
    """Tell ``on_progress`` (if any) that trial ``number`` finished: its values, or ``error``."""
    if on_progress is not None:
        values = study.values_of(number) if error is None else None
        completed = study.n_complete(study.config.search_fidelity.name)
        on_progress(Progress(completed, target, failures, number, values, error))


def _record(study: Study, number: int, result: object) -> str | None:
    """Tell a result, or fail the trial with the reason; returns the reason or None."""
    if isinstance(result, BaseException):
        error = _reason(result)
    elif not isinstance(result, Evaluation):
        error = f"the runner returned {type(result).__name__}, not an Evaluation"
    else:
        try:
            study.tell(number, result)
            return None
        except ValueError as exc:
            error = str(exc)
    study.fail(number, error)
    return error


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
