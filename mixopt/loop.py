"""The controller: rounds of propose -> run -> tell until the study has its completed trials.

This is the one module that knows searchers, runners and executors together; none of them knows another.
One controller process owns a study's proposals. Everything it learns is written to the study's
storage as soon as it is known, so a killed controller loses nothing that had completed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixopt import replicates
from mixopt.config import StudyConfig
from mixopt.errors import LateResult, OutputError, RunFailed
from mixopt.executors import EXECUTORS, Executor, outcome
from mixopt.failpoints import failpoint
from mixopt.runners import RUNNERS, Runner
from mixopt.search import SEARCHERS, propose_within
from mixopt.seeding import batch_seed
from mixopt.study import Study
from mixopt.trials import Attr, Evaluation, RunSpec

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
        pool_fraction=config.pool_fraction(fid.name), proxy=fid.proxy, merge_scale=fid.merge_scale,
    )


def run_specs(study: Study, trials, root: Path) -> list[RunSpec]:
    """Run specs for started trials, each in ``root/trial-NNNNN``. A re-run of a trial whose controller
    died (``rerun_of``) runs as that trial: in its folder and with its seed (stored on the re-run), so a
    runner that checkpoints (``checkpoint_every``) resumes where the first run was stopped."""
    specs = []
    for t in trials:
        number, seed = _first_run(study, t)
        if seed != t.user_attrs[Attr.SEED]:
            study.set_trial_attr(t.number, Attr.SEED, seed)
        specs.append(make_spec(study.config, t.number, study.space.as_dict(study.weights_of(t)),
                               t.user_attrs[Attr.FIDELITY], seed, root / f"trial-{number:05d}", study.name))
    return specs


def _first_run(study: Study, trial) -> tuple[int, int]:
    """The number and seed of the first started run in ``trial``'s chain of re-runs (``trial``'s own if none)."""
    number, seed, earlier = trial.number, trial.user_attrs[Attr.SEED], trial.user_attrs.get(Attr.RERUN_OF)
    by_number = {t.number: t for t in study.trials()} if earlier is not None else {}
    while earlier is not None:
        previous = by_number[earlier]
        if Attr.SEED in previous.user_attrs:  # a trial killed while being claimed never started
            number, seed = previous.number, previous.user_attrs[Attr.SEED]
        earlier = previous.user_attrs.get(Attr.RERUN_OF)
    return number, seed


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

    The proposal seed (stored on each trial) is drawn from the study's seed stream at index = its trial
    count (:func:`mixopt.seeding.batch_seed`), so a resumed study never replays its proposals and studies
    with other seeds never replay each other's. Controllers sharing the study propose one at a time (under
    its claim lock): each sees the others' proposals as pending and a trial count of its own, so two never
    draw the same seed and propose the same mixtures (a lock lost with its connection meanwhile: again).
    """
    config = study.config
    n -= queue_replicates(study)
    if n <= 0:
        return
    searcher = SEARCHERS.create(config.searcher.name, config.searcher.options)
    while True:
        with study.claim_lock() as held:
            seed = batch_seed(config.seed, len(study.trials()))
            proposals = propose_within(searcher, study.space, study.history(), n, seed=seed)
            failpoint("propose")
            if held():  # else another controller may have drawn the same seed meanwhile: propose again
                study.enqueue(study.space.round(np.asarray(proposals), config.granularity), config.search_fidelity.name,
                              {Attr.PROPOSAL_SEED: seed})
                return


def queue_replicates(study: Study) -> int:
    """Queue the config's replicates that are due (:mod:`mixopt.replicates`); returns how many runs.
    Under the study's claim lock, so that controllers sharing the study queue each replicate once."""
    config = study.config
    if config.replicates is None:
        return 0
    from mixopt.recommend import recommend_study

    fidelity = config.search_fidelity.name
    with study.claim_lock():
        queued = {t.user_attrs[Attr.REPLICATE_OF] for t in study.trials() if Attr.REPLICATE_OF in t.user_attrs}
        todo = replicates.due(config.replicates, study.n_complete(fidelity), config.n_trials, queued)
        if not todo:
            return 0
        rows, labels = replicates.replicate_rows(
            config.replicates, todo, study.space, prior=config.searcher.options.get("prior"),
            baseline=study.space.from_dict(config.baseline) if config.baseline is not None else None,
            incumbent=lambda: recommend_study(study, fidelity).weights, granularity=config.granularity,
        )
        for w, label in zip(rows, labels, strict=True):
            study.enqueue(w, fidelity, {Attr.REPLICATE_OF: label})
    return len(rows)


Recorder = Callable[[RunSpec, object], "str | None"]  # stores one outcome; returns the failure reason or None


@dataclass
class Dispatch:
    """The one routine that runs specs, for the search loop, the rounds, seed merges and screening:
    submit them to the executor, wait for any to finish, store each outcome with ``record`` (an
    :class:`Evaluation`, or the exception the run raised) and tell ``on_finished`` (spec, failure reason)."""

    runner: Runner
    executor: Executor
    record: Recorder
    on_finished: Callable[[RunSpec, str | None], None] | None = None
    in_flight: list[tuple[object, RunSpec]] = field(default_factory=list)
    failures: int = 0
    last_error: str = ""

    def submit(self, specs: list[RunSpec]) -> list[tuple[object, RunSpec]]:
        """Start ``specs``; returns (handle, spec) pairs, also kept as in flight."""
        pairs = list(zip(self.executor.submit_many(self.runner.run, specs), specs, strict=True)) if specs else []
        self.in_flight.extend(pairs)
        return pairs

    def collect(self) -> None:
        """Wait until some runs in flight finish, and record each."""
        done = self.executor.wait([handle for handle, _ in self.in_flight])
        for handle, spec in [pair for pair in self.in_flight if pair[0] in done]:
            self.in_flight.remove((handle, spec))
            error = self.record(spec, outcome(handle))
            if error is not None:
                self.failures, self.last_error = self.failures + 1, error
            if self.on_finished is not None:
                self.on_finished(spec, error)

    def drain(self) -> None:
        """Wait for every run in flight."""
        while self.in_flight:
            self.collect()


def study_dispatch(study: Study, executor: Executor | None, on_progress: Callable[[Progress], None] | None,
                   target: int) -> Dispatch:
    """A :class:`Dispatch` that tells ``study`` each outcome (or fails the trial) and reports progress
    toward ``target`` completed trials at the search fidelity."""
    config = study.config
    dispatch = Dispatch(RUNNERS.create(config.runner.name, config.runner.options),
                        executor or EXECUTORS.create(config.executor.name, config.executor.options),
                        lambda spec, result: record_outcome(study, spec.trial, result, spec.output_dir))
    if on_progress is not None:
        def finished(spec: RunSpec, error: str | None) -> None:
            values = study.values_of(spec.trial) if error is None else None
            completed = study.n_complete(config.search_fidelity.name)
            on_progress(Progress(completed, target, dispatch.failures, spec.trial, values, error))

        dispatch.on_finished = finished
    return dispatch


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
    dispatch = study_dispatch(study, executor, on_progress, n_trials)
    runs = output_root(config, study.name)
    fidelity = config.search_fidelity.name

    def adopt(trial) -> bool:
        """Re-attach to the scheduler job of a trial whose controller died, if it still exists."""
        job = trial.user_attrs.get(Attr.JOB_ID)
        handle = dispatch.executor.reattach(job) if job is not None else None
        if handle is not None:
            dispatch.in_flight.append((handle, run_specs(study, [trial], runs)[0]))
        return handle is not None

    study.recover_stale(adopt)
    try:
        with study.heartbeat():
            _search(study, dispatch, runs, n_trials, batch_size, max_failures, adopt)
    finally:
        dispatch.executor.close()
    return study.n_complete(fidelity)


def _search(study: Study, dispatch: Dispatch, runs: Path, n_trials: int, batch_size: int, max_failures: int,
            adopt: Callable[[object], bool]) -> None:
    """The search loop: keep ``batch_size`` runs in flight until ``n_trials`` are complete at the search fidelity."""
    fidelity = study.config.search_fidelity.name
    while (completed := study.n_complete(fidelity)) < n_trials or dispatch.in_flight:
        free = batch_size - len(dispatch.in_flight)
        if free > 0 and completed < n_trials:
            _submit(study, dispatch, runs, min(free, n_trials - completed - study.n_running(fidelity)), n_trials)
        if not dispatch.in_flight:
            time.sleep(WAIT_FOR_OTHERS_SECONDS)  # the remaining trials run in other controllers...
            study.recover_stale(adopt)  # ...unless one died meanwhile, or was killed claiming a trial
            continue
        dispatch.collect()
        if dispatch.failures > max_failures:
            raise RunFailed(f"{dispatch.failures} trials failed (more than max_failures={max_failures}); "
                            f"last: {dispatch.last_error}")


def _submit(study: Study, dispatch: Dispatch, runs: Path, wanted: int, limit: int) -> None:
    """Propose what is missing, start ``wanted`` trials (never past ``limit`` at the search fidelity) and
    submit them; the scheduler's job ids are stored so that another controller can re-attach."""
    missing = wanted - study.n_waiting()
    if missing > 0:
        propose_batch(study, missing)
    pairs = dispatch.submit(run_specs(study, study.start(wanted, limit=limit), runs))
    for handle, spec in pairs:
        job = dispatch.executor.job_id(handle)
        if job is not None:
            study.set_trial_attr(spec.trial, Attr.JOB_ID, job)
    if pairs:
        failpoint("submitted")


def run_waiting(study: Study, on_progress: Callable[[Progress], None] | None = None,
                executor: Executor | None = None) -> None:
    """Run every WAITING trial (e.g. promoted integration runs) to completion or failure."""
    dispatch = study_dispatch(study, executor, on_progress, study.config.n_trials)
    try:
        with study.heartbeat():
            dispatch.submit(run_specs(study, study.start(study.n_waiting()), output_root(study.config, study.name)))
            dispatch.drain()
    finally:
        dispatch.executor.close()


def record_outcome(study: Study, number: int, result: object, run_folder: str | None = None) -> str | None:
    """Tell a result, or fail the trial with the reason; returns the reason or None. A result that came after
    another controller finished or failed the trial is kept as an extra attempt (``Study.tell``): its one
    line is returned, and the trial is left as it is."""
    if isinstance(result, BaseException):
        error = failure_reason(result)
    elif not isinstance(result, Evaluation):
        error = f"the runner returned {type(result).__name__}, not an Evaluation"
    else:
        try:
            study.tell(number, result, run_folder)
            return None
        except LateResult as late:
            return str(late)
        except ValueError as exc:
            error = str(exc)
    try:
        study.fail(number, error)
    except LateResult as late:
        return str(late)
    return error


def failure_reason(exc: BaseException) -> str:
    """The first line of an exception, with its type: what a failed trial stores."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
