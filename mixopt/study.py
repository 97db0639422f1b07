"""A thin facade over ``optuna.Study``: mixtures in, evaluations out, everything in Optuna storage.

Trial params are the mixture weights (one ``FloatDistribution`` per source, named by source); the
fidelity, seed, metrics, standard errors, cost, runner id and failure reasons are trial user attrs;
the config text and mixopt version are study user attrs. Any Optuna tool can read a mixopt study.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState

import mixopt
from mixopt.compat import pop_waiting_trial_id, retrying_rdb_storage, storage_engine, study_id, study_storage
from mixopt.config import StudyConfig, parse_config
from mixopt.errors import ConfigError, LateResult, StorageError, StorageLost, check_path_name
from mixopt.failpoints import failpoint
from mixopt.objectives import objective_parts, objective_values
from mixopt.trials import RUN_ATTRS, Attr, Evaluation, History, Observations, StudyAttr, rerun_targets

if TYPE_CHECKING:  # pandas is imported where it is used: `mixopt study tell` never needs it
    import pandas as pd

    from mixopt.tables import RunTable

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

UNLABELLED_GRACE_SECONDS = 30  # a claimed trial left unlabelled this long was claimed by a controller that died
# A running controller writes its heartbeat this often, and one on another host silent for the stale limit is
# taken for dead; both can be set (in seconds) through the environment for clusters, and for the chaos soak.
HEARTBEAT_SECONDS = float(os.environ.get("MIXOPT_HEARTBEAT_SECONDS", 30.0))
HEARTBEAT_STALE_SECONDS = float(os.environ.get("MIXOPT_HEARTBEAT_STALE_SECONDS", 600.0))
# A database server out of reach this long mid-study ends the controller (exit 1, one line).
STORAGE_RETRY_SECONDS = float(os.environ.get("MIXOPT_STORAGE_RETRY_SECONDS", 120.0))
EXTERNAL = "external"  # owner of trials handed out by `mixopt study ask`: told from outside, never stale


@dataclass
class ImportCount:
    """What :meth:`Study.import_runs` did with each row: added, skipped as already imported, or skipped as
    outside the space (or with a missing value)."""

    added: int = 0
    duplicate: int = 0
    outside: int = 0


def mask_url(url: str) -> str:
    """The storage URL with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, create: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna RDB storage; a URL that cannot be opened is a ``StorageError`` (one line). With ``create``
    False, a SQLite file that does not exist is one too (looking must not leave an empty database)."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if not create and not path.is_file():
            raise StorageError(f"no storage file {path}: check --storage, or start the study with `mixopt study run CONFIG`")
        if not path.parent.is_dir():
            raise StorageError(f"cannot open storage {mask_url(url)}: folder {path.parent} does not exist")
        filesystem = _filesystem_type(path.parent)
        if filesystem in NETWORK_FILESYSTEMS:
            raise StorageError(
                f"SQLite on a network filesystem ({filesystem}) cannot be shared safely: use a PostgreSQL URL "
                "(postgresql+psycopg://user:pass@host/db) or a local path"
            )
        engine_kwargs = {"connect_args": {"timeout": 60}}
    try:
        storage = _create_rdb_storage(url, engine_kwargs)
        if url.startswith("sqlite:"):
            # WAL lets readers (status, dashboards) work while a controller writes; it persists in the file.
            with storage.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        return storage
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError(f"cannot open storage {mask_url(url)}: {reason}") from None


def _create_rdb_storage(url: str, engine_kwargs: dict[str, Any], attempts: int = 5) -> optuna.storages.RDBStorage:
    """``RDBStorage`` (retrying lost connections, for a database server), retried when controllers starting
    together race to create its tables."""
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            if url.startswith("sqlite:"):
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
            return retrying_rdb_storage(url, engine_kwargs, lambda call, reset: retry_lost_connection(call, url, reset))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError):
            # PostgreSQL: duplicate key / relation exists; SQLite: "table studies already exists", "locked".
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _connection_lost(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the connection to the database server failed."""
    import sqlalchemy.exc

    while exc is not None:
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and (
                exc.connection_invalidated or isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))):
            return True
        exc = exc.__cause__ or exc.__context__  # Optuna's clean-up after a lost connection raises its own error
    return False


def retry_lost_connection(call: Callable[[], Any], url: str, reset: Callable[[], None] = lambda: None) -> Any:
    """``call()``, retried with backoff (0.1 s doubling to 5 s) while the database server is out of reach
    (restarted, failed over, the network cut), for up to ``STORAGE_RETRY_SECONDS``; then ``StorageLost``.
    ``reset()`` runs before each retry."""
    deadline, delay = None, 0.1
    while True:
        try:
            return call()
        except Exception as exc:
            if not _connection_lost(exc):
                raise
            now = time.monotonic()
            deadline = deadline or now + STORAGE_RETRY_SECONDS
            if now >= deadline:
                reason = str(exc.__cause__ or exc).splitlines()[0]
                raise StorageLost(f"lost the connection to storage {mask_url(url)} for {STORAGE_RETRY_SECONDS:.0f} s, "
                                  f"giving up: {reason}; completed trials and run folders are kept: run the "
                                  "same command again once the database is back") from None
            time.sleep(min(delay, deadline - now))
            delay = min(2 * delay, 5.0)
            reset()


NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "lustre", "gpfs", "beegfs", "9p"}


def _filesystem_type(folder: Path) -> str:
    """The type of the mount holding ``folder`` (from /proc/mounts; "" where unknown)."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return ""
    folder = folder.resolve()
    best = max((m for m in mounts if folder.is_relative_to(m[0])), key=lambda m: len(m[0]), default=None)
    return best[1] if best else ""


class Study:
    """One mixture study in Optuna storage. Create with ``Study.open`` or ``Study.load``."""

    def __init__(self, optuna_study: optuna.Study, config: StudyConfig) -> None:
        self.optuna = optuna_study
        self.config = config
        self.space = config.space()
        self.distributions = self._distributions(config)
        self.config_change: str | None = None  # set by ``open``: how a changed config's space treats the trials

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, config: StudyConfig, storage: str | None = None, study_name: str | None = None) -> Study:
        """Create the study, or load it if it exists (then its stored objectives must match the config)."""
        url = storage or config.storage_url
        name = check_path_name(study_name or config.name)
        store = open_storage(url)
        directions = [o.direction for o in config.objectives]
        try:
            study = optuna.create_study(storage=store, study_name=name, directions=optuna_directions(directions),
                                        load_if_exists=True)
        except ValueError as exc:
            raise StorageError(f"study '{name}' exists with other objectives: {exc}") from None
        stored_directions = ["maximize" if d == optuna.study.StudyDirection.MAXIMIZE else "minimize" for d in study.directions]
        if stored_directions != directions:
            raise ConfigError(
                f"study '{name}' was created with directions {stored_directions}, the config has {directions}: "
                "use another --study-name"
            )
        if StudyAttr.CONFIG not in study.user_attrs:
            study.set_metric_names([o.name for o in config.objectives])
            study.set_user_attr(StudyAttr.VERSION, mixopt.__version__)
            _store_config(study, config)
            return cls(study, config)
        stored = stored_config(study)
        check_same_sources(name, stored, config)
        opened = cls(study, config)
        if changed := space_changes(stored, config):
            opened.config_change = (
                f"the config's {', '.join(changed)} changed since study '{name}' started: {opened.n_outside()} of "
                f"{len(opened.trials((TrialState.COMPLETE,)))} completed trials fall outside the new space; they "
                "are kept as observations and never recommended")
            _store_config(study, config)
        return opened

    @classmethod
    def load(cls, storage: str, study_name: str) -> Study:
        """Load an existing study with the config stored in it (never creates a storage file)."""
        store = open_storage(storage, create=False)
        try:
            study = optuna.load_study(study_name=study_name, storage=store)
        except KeyError:
            names = [s.study_name for s in optuna.get_all_study_summaries(store)]
            raise StorageError(
                f"study '{study_name}' does not exist in {mask_url(storage)}"
                + (f": existing studies are {names}" if names else ": it holds no studies")
            ) from None
        if StudyAttr.CONFIG not in study.user_attrs:
            raise StorageError(f"study '{study_name}' was not created by mixopt (no stored config)")
        return cls(study, stored_config(study))

    @property
    def name(self) -> str:
        return self.optuna.study_name

    def sibling(self, suffix: str, config: StudyConfig | None = None, create: bool = True) -> Study | None:
        """The study ``<name>-<suffix>`` in the same storage (screening runs, seed merges), seen through
        ``config`` (default: this study's); created if missing when ``create``, else None when missing."""
        name, storage = f"{self.name}-{suffix}", study_storage(self.optuna)
        if create:
            runs = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                       directions=optuna_directions(self.config.directions))
        else:
            try:
                runs = optuna.load_study(study_name=name, storage=storage)
            except KeyError:
                return None
        return Study(runs, config or self.config)

    @staticmethod
    def _distributions(config: StudyConfig) -> dict[str, FloatDistribution]:
        """Per-source ``FloatDistribution(lo, hi)`` spanning the bounds at every fidelity."""
        spaces = [config.space(f.name) for f in config.fidelities]
        lower = np.min([s.lower for s in spaces], axis=0)
        upper = np.max([s.upper for s in spaces], axis=0)
        return {
            name: FloatDistribution(float(lo), float(max(hi, lo)))
            for name, lo, hi in zip(spaces[0].names, lower, upper, strict=True)
        }

    # -- trials ------------------------------------------------------------------------------
    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[optuna.trial.FrozenTrial]:
        return self.optuna.get_trials(deepcopy=False, states=states)

    def n_complete(self, fidelity: str | None = None) -> int:
        """Completed runs of this study (at ``fidelity``); imported ones (``mixopt study import``, reuse) are
        extra, so ``n_trials`` always counts the study's own runs."""
        return sum(1 for t in self.trials((TrialState.COMPLETE,)) if _counted(t, fidelity))

    def n_running(self, fidelity: str | None = None) -> int:
        return sum(1 for t in self.trials((TrialState.RUNNING,)) if fidelity is None or t.user_attrs.get(Attr.FIDELITY) == fidelity)

    def n_waiting(self) -> int:
        return len(self.trials((TrialState.WAITING,)))

    def n_failed(self) -> int:
        return len(self.trials((TrialState.FAIL,)))

    def enqueue(self, weights: np.ndarray, fidelity: str, extra_attrs: dict[str, Any] | None = None) -> None:
        """Queue mixtures ``(n, K)`` as WAITING trials; they are run by ``start``."""
        self.config.fidelity(fidelity)
        for w in np.atleast_2d(weights):
            self.config.space(fidelity).check(w, tol=1e-7)
            self.optuna.enqueue_trial(self.space.as_dict(w), user_attrs={Attr.FIDELITY: fidelity, **(extra_attrs or {})})

    def start(self, n: int, owner: str | None = None, limit: int | None = None) -> list[optuna.trial.Trial]:
        """Take up to ``n`` WAITING trials (oldest first) and mark them RUNNING by ``owner`` (a controller on this
        :func:`machine`; default: this process).

        With ``limit``, never more than ``limit`` trials at the search fidelity are complete or running
        at once: controllers sharing a study take trials under a lock, so together they stop exactly there.
        """
        started: list[optuna.trial.Trial] = []
        with self.claim_lock():
            if limit is not None:
                fidelity = self.config.search_fidelity.name
                busy = sum(1 for t in self.trials((TrialState.COMPLETE, TrialState.RUNNING)) if _counted(t, fidelity))
                n = min(n, limit - busy)
            for _ in range(max(n, 0)):
                # Optuna's own queue pop (what study.ask does first): atomic across processes, and it
                # never creates a trial with sampled (off-polytope) params when the queue is empty.
                trial_id = pop_waiting_trial_id(self.optuna)
                if trial_id is None:
                    break
                trial = optuna.trial.Trial(self.optuna, trial_id)
                try:
                    for name, dist in self.distributions.items():
                        trial.suggest_float(name, dist.low, dist.high)
                    trial.set_user_attr(Attr.SEED, self.config.seed + trial.number)
                    trial.set_user_attr(Attr.CONTROLLER, owner or controller_id())
                    trial.set_user_attr(Attr.MACHINE, machine())
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue  # recovered by another controller while this one was cut off claiming it
                started.append(trial)
        return started

    @contextlib.contextmanager
    def claim_lock(self):
        """Serialize trial claims across controllers: a PostgreSQL advisory lock, or a file lock for SQLite.
        Yields a function that says whether the lock is still held: a PostgreSQL lock is lost with its
        connection (the server restarted, the network cut) while the block runs on."""
        engine = storage_engine(study_storage(self.optuna))
        if engine is not None and engine.dialect.name == "postgresql":
            def lock():
                connection = engine.connect()
                try:
                    transaction = connection.begin()
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (study_id(self.optuna) + 0x6D69786F,))
                except BaseException:
                    connection.close()
                    raise
                return connection, transaction

            connection, transaction = retry_lost_connection(lock, str(engine.url))

            def held() -> bool:
                try:
                    connection.exec_driver_sql("SELECT 1")
                    return True
                except Exception as exc:
                    if _connection_lost(exc):
                        return False
                    raise

            try:
                yield held
            finally:
                with contextlib.suppress(Exception):  # a lost connection has released the lock already
                    transaction.commit()
                connection.close()
        elif engine is not None and engine.dialect.name == "sqlite" and engine.url.database:
            with open(f"{engine.url.database}.lock", "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield lambda: True
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        else:
            yield lambda: True

    def weights_of(self, trial: optuna.trial.BaseTrial) -> np.ndarray:
        return np.array([trial.params[name] for name in self.space.names])

    def tell(self, number: int, evaluation: Evaluation, run_folder: str | None = None) -> list[float]:
        """Record a completed evaluation. A missing, non-numeric or non-finite objective metric (or standard
        error) raises ``ValueError`` naming it, and nothing is stored: the caller fails the trial instead.

        A trial that another controller already finished or failed (this one was paused or cut off past the
        stale limit) is not changed: the result is kept as an extra attempt of its mixture
        (:meth:`late_results`, with ``run_folder``) and ``LateResult`` says so in one line."""
        values = objective_values(evaluation, self.config.objectives)
        metrics = {**evaluation.metrics, **{o.metric: v for o, v in zip(self.config.objectives, values, strict=True)}}
        storage, trial_id = self._storage_and_id(number)
        try:
            for key, value in (
                (Attr.METRICS, metrics), (Attr.STDERR, evaluation.stderr), (Attr.COST, evaluation.cost),
                (Attr.ARTIFACTS, evaluation.artifacts), (Attr.RUNNER, evaluation.runner),
            ):
                storage.set_trial_user_attr(trial_id, key, _jsonable(value))
            failpoint("tell")  # a crash here leaves the trial RUNNING: it is failed and re-run on resume
            self._tell_optuna(number, values=values)
        except optuna.exceptions.UpdateFinishedTrialError:
            raise LateResult(self._keep_late(number, evaluation, values, metrics, run_folder)) from None
        return values

    def _keep_late(self, number: int, evaluation: Evaluation, values: list[float], metrics: dict[str, float],
                   run_folder: str | None) -> str:
        """Store a result that came after trial ``number`` was finished elsewhere as an extra attempt of its
        mixture (a study user attr, one per trial and controller); returns the one line that says so."""
        storage, trial_id = self._storage_and_id(number)
        trial = storage.get_trial(trial_id)
        attempt = {"trial": number, "controller": controller_id(), "mixture": queued_mixture(trial),
                   "fidelity": trial.user_attrs.get(Attr.FIDELITY), "values": values, "metrics": metrics,
                   "stderr": evaluation.stderr, "cost": evaluation.cost, "artifacts": evaluation.artifacts,
                   "runner": evaluation.runner, "run_folder": run_folder, "told_at": time.time()}
        self.optuna.set_user_attr(f"{StudyAttr.LATE_PREFIX}{number}:{controller_id()}", _jsonable(attempt))
        rerun = next((t.number for t in self.trials() if t.user_attrs.get(Attr.RERUN_OF) == number), None)
        by = trial.user_attrs.get(Attr.REQUEUED_BY, "another controller")
        fate = (f"failed and re-queued as trial {rerun} by {by}" if rerun is not None
                else f"already {trial.state.name.lower()} elsewhere")
        return (f"late result for trial {number} refused: the trial was {fate} while this controller was paused or "
                "cut off; kept as an extra attempt of its mixture (see mixopt study status)")

    def late_results(self) -> list[dict[str, Any]]:
        """Results told after their trial was finished elsewhere (see :meth:`tell`), by trial, oldest first."""
        attempts = [v for k, v in self.optuna.user_attrs.items() if k.startswith(StudyAttr.LATE_PREFIX)]
        return sorted(attempts, key=lambda a: (a["trial"], a["told_at"]))

    def n_outside(self) -> int:
        """Completed trials outside this study's space at their fidelity (bounds or constraints tightened, or
        their fidelity gone since they ran): kept as observations, never recommended."""
        names = {f.name for f in self.config.fidelities}
        return sum(1 for t in self.trials((TrialState.COMPLETE,))
                   if t.user_attrs.get(Attr.FIDELITY) not in names
                   or not self.config.space(t.user_attrs[Attr.FIDELITY]).is_feasible(self.weights_of(t), tol=1e-6))

    def set_trial_attr(self, number: int, key: str, value: Any) -> None:
        storage, trial_id = self._storage_and_id(number)
        storage.set_trial_user_attr(trial_id, key, _jsonable(value))

    def values_of(self, number: int) -> list[float] | None:
        storage, trial_id = self._storage_and_id(number)
        return storage.get_trial(trial_id).values

    def import_runs(self, weights: np.ndarray, values: np.ndarray, fidelity: str, source: str) -> ImportCount:
        """Add completed runs measured elsewhere (``weights`` ``(n, K)``, ``values`` ``(n, m)``) as trials at
        ``fidelity``. Rows outside this study's space, with missing values, or already imported (the same
        mixture, values and fidelity: a table imported twice) are skipped."""
        space = self.config.space(fidelity)
        distributions: dict[str, BaseDistribution] = dict(self.distributions)
        count = ImportCount()
        weights = weights / weights.sum(axis=1, keepdims=True)  # tables round weights (RegMix rows: 1 +- 0.004)
        seen = {_import_identity(self.space.from_dict(t.params), t.values, t.user_attrs.get(Attr.FIDELITY))
                for t in self.trials((TrialState.COMPLETE,)) if Attr.IMPORTED_FROM in t.user_attrs}
        for w, v in zip(weights, values, strict=True):
            if not space.is_feasible(w, tol=1e-6) or not np.all(np.isfinite(v)):
                count.outside += 1
                continue
            identity = _import_identity(w, v, fidelity)
            if identity in seen:
                count.duplicate += 1
                continue
            seen.add(identity)
            self.optuna.add_trial(optuna.trial.create_trial(
                params=self.space.as_dict(w), distributions=distributions, values=[float(x) for x in v],
                user_attrs={Attr.FIDELITY: fidelity, Attr.IMPORTED_FROM: source,
                            Attr.METRICS: {o.metric: float(x) for o, x in zip(self.config.objectives, v, strict=True)}},
            ))
            count.added += 1
        return count

    def import_table(self, table: RunTable, fidelity: str, source: str, where: tuple[str, str]) -> ImportCount:
        """:meth:`import_runs` of a run table (``mixopt.tables.read_run_table``) whose weight columns must be
        this study's sources and whose metrics hold each objective's metric; ``where`` names the ratios
        and metrics files in errors."""
        from mixopt.tables import target_values

        missing = [s for s in self.space.names if s not in table.weights.columns]
        extra = [c for c in table.weights.columns if c not in self.space.names]
        if missing or extra:
            raise ConfigError(f"{where[0]}: columns must be this study's sources; missing {missing}, unknown {extra}")
        weights = table.weights[list(self.space.names)].to_numpy(float)
        values = np.column_stack([target_values(table.metrics, column=o.metric, source=where[1]).to_numpy(float)
                                  for o in self.config.objectives])
        return self.import_runs(weights, values, fidelity, source)

    def fail(self, number: int, reason: str) -> None:
        """Fail a running trial with ``reason``; one that another controller already finished or failed is
        left as it is (``LateResult``)."""
        storage, trial_id = self._storage_and_id(number)
        try:
            storage.set_trial_user_attr(trial_id, Attr.FAIL_REASON, reason)
            self._tell_optuna(number, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            state = storage.get_trial(trial_id).state.name.lower()
            raise LateResult(f"late failure of trial {number} not stored ({reason}): the trial was already {state} "
                             "elsewhere while this controller was paused or cut off") from None

    def _tell_optuna(self, number: int, **outcome: Any) -> None:
        """``optuna.Study.tell``; a trial finished elsewhere is always ``UpdateFinishedTrialError`` (Optuna
        raises ``ValueError`` instead when it reads the trial already finished)."""
        try:
            self.optuna.tell(number, **outcome)
        except ValueError:
            storage, trial_id = self._storage_and_id(number)
            if storage.get_trial(trial_id).state.is_finished():
                raise optuna.exceptions.UpdateFinishedTrialError(f"trial {number} is already finished") from None
            raise

    def _storage_and_id(self, number: int) -> tuple[optuna.storages.BaseStorage, int]:
        storage = study_storage(self.optuna)
        return storage, storage.get_trial_id_from_study_id_trial_number(study_id(self.optuna), number)

    @contextlib.contextmanager
    def heartbeat(self, every: float = HEARTBEAT_SECONDS):
        """While the ``with`` block runs, a thread writes this controller's heartbeat (study user attr
        ``heartbeat:<host:pid>``, Unix seconds) every ``every`` seconds, so controllers on other hosts can
        tell it alive; once and first on entry."""
        key, stop = f"{StudyAttr.HEARTBEAT_PREFIX}{controller_id()}", threading.Event()
        self.optuna.set_user_attr(key, time.time())

        def beat() -> None:
            while not stop.wait(every):
                with contextlib.suppress(Exception):  # a storage hiccup costs one beat, never the run
                    self.optuna.set_user_attr(key, time.time())

        thread = threading.Thread(target=beat, name="mixopt-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def recover_stale(self, adopt: Callable[[optuna.trial.FrozenTrial], bool] | None = None) -> list[int]:
        """Fail RUNNING trials whose controller died and re-queue their mixtures: its heartbeat (or, with none,
        the trial's start) is older than ``HEARTBEAT_STALE_SECONDS``; or, where the trial was claimed on this
        machine (the same boot and pid namespace), its process is gone.

        Returns the failed trial numbers. Trials of live controllers (e.g. sharing a PostgreSQL study)
        are left alone. A stale trial for which ``adopt(trial)`` is true (its scheduler job still runs and
        this controller re-attached to it) becomes this controller's instead of failing.
        """
        with self.claim_lock():  # controllers recovering together queue one re-run per trial
            return self._recover_stale(adopt)

    def _recover_stale(self, adopt: Callable[[optuna.trial.FrozenTrial], bool] | None) -> list[int]:
        recovered = []
        beats = {k.removeprefix(StudyAttr.HEARTBEAT_PREFIX): v for k, v in self.optuna.user_attrs.items()
                 if k.startswith(StudyAttr.HEARTBEAT_PREFIX)}
        requeued: set[int] | None = None  # trials with a re-run queued: read once a stale trial is found
        for trial in self.trials((TrialState.RUNNING,)):
            owner = trial.user_attrs.get(Attr.CONTROLLER)
            if owner is None:
                # Claimed but not yet labelled (a controller between two writes), unless it stayed so.
                started = trial.datetime_start or datetime.datetime.now()
                if (datetime.datetime.now() - started).total_seconds() < UNLABELLED_GRACE_SECONDS:
                    continue
            elif owner == EXTERNAL or not _controller_is_dead(owner, beats, trial):
                continue
            if adopt is not None and adopt(trial):
                self.set_trial_attr(trial.number, Attr.CONTROLLER, controller_id())
                self.set_trial_attr(trial.number, Attr.MACHINE, machine())
                continue
            # Re-queued before it is failed, once: a controller killed between the two writes leaves the
            # trial RUNNING with its re-run queued, and the next recovery only fails it.
            if requeued is None:
                requeued = rerun_targets(self.trials())
            if trial.number not in requeued:
                kept = {k: v for k, v in trial.user_attrs.items() if k not in RUN_ATTRS}
                mixture = queued_mixture(trial)
                self.optuna.enqueue_trial(
                    {name: mixture[name] for name in self.space.names if name in mixture},
                    user_attrs={Attr.FIDELITY: self.config.search_fidelity.name, **kept, Attr.RERUN_OF: trial.number},
                )
            try:
                self.set_trial_attr(trial.number, Attr.REQUEUED_BY, controller_id())
                self.fail(trial.number, "interrupted: the controller stopped while this trial was running; re-queued")
            except (LateResult, optuna.exceptions.UpdateFinishedTrialError):
                # Its controller was paused or cut off, not dead, and told it meanwhile (or another recovered it).
                self._withdraw_rerun(trial.number)
                continue
            recovered.append(trial.number)
        return recovered

    def _withdraw_rerun(self, number: int) -> None:
        """Fail the queued re-run of trial ``number`` if that trial completed after all (a re-run already
        claimed runs on, as an extra attempt of its mixture)."""
        storage, trial_id = self._storage_and_id(number)
        if storage.get_trial(trial_id).state != TrialState.COMPLETE:
            return
        for rerun in self.trials((TrialState.WAITING,)):  # (claims wait for the claim lock, held here)
            if rerun.user_attrs.get(Attr.RERUN_OF) == number:
                _, rerun_id = self._storage_and_id(rerun.number)
                storage.set_trial_user_attr(rerun_id, Attr.FAIL_REASON,
                                            f"withdrawn: trial {number} was completed by its controller after all")
                storage.set_trial_state_values(rerun_id, TrialState.FAIL)

    # -- views -------------------------------------------------------------------------------
    def observations(self) -> Observations:
        """Every completed trial, row-aligned arrays in trial order (the study's one read model)."""
        done = self.trials((TrialState.COMPLETE,))
        if not done:
            return Observations.empty(self.space.dim, len(self.config.objectives))
        return Observations(
            numbers=np.array([t.number for t in done], dtype=int),
            weights=np.stack([self.weights_of(t) for t in done]),
            values=np.array([t.values for t in done], dtype=float),
            fidelities=np.array([t.user_attrs.get(Attr.FIDELITY) for t in done], dtype=object),
            metrics=tuple(t.user_attrs.get(Attr.METRICS, {}) for t in done),
            stderr=tuple(t.user_attrs.get(Attr.STDERR, {}) for t in done),
            attrs=tuple(t.user_attrs for t in done),
        )

    def history(self, fidelity: str | None = None) -> History:
        """Completed evaluations at ``fidelity`` (default: the search fidelity), plus RUNNING/WAITING as pending."""
        done = self.observations().at(fidelity or self.config.search_fidelity.name)
        objectives = self.config.objectives
        pending = [t for t in self.trials((TrialState.RUNNING, TrialState.WAITING)) if t.params or t.system_attrs]
        pending_w = [w for w in (self._pending_weights(t) for t in pending) if w is not None]
        return History(
            weights=done.weights, values=done.values, directions=self.config.directions,
            stderr=done.metric_errors([o.metric for o in objectives]) if len(done) else None,
            pending=np.stack(pending_w) if pending_w else np.zeros((0, self.space.dim)),
            parts=objective_parts(done, objectives), trials=done.numbers,
        )

    def _pending_weights(self, trial: optuna.trial.FrozenTrial) -> np.ndarray | None:
        params = trial.params or trial.system_attrs.get("fixed_params", {})
        if not all(name in params for name in self.space.names):
            return None
        return np.array([params[name] for name in self.space.names])

    def frame(self) -> pd.DataFrame:
        """One row per trial: number, state, fidelity, weights (``w:<source>``), objective values (by name),
        metrics (``metric:<name>``), seconds and the failure reason."""
        import pandas as pd

        rows = []
        for t in self.trials():
            row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "fidelity": t.user_attrs.get(Attr.FIDELITY)}
            params = t.params or t.system_attrs.get("fixed_params", {})
            row.update({weight_column(name): params.get(name, np.nan) for name in self.space.names})
            values = t.values if t.values is not None else [np.nan] * len(self.config.objectives)
            row.update({o.name: v for o, v in zip(self.config.objectives, values, strict=True)})
            row.update({f"metric:{k}": v for k, v in t.user_attrs.get(Attr.METRICS, {}).items()})
            row["seconds"] = t.user_attrs.get(Attr.COST, {}).get("seconds", np.nan)
            row["fail_reason"] = t.user_attrs.get(Attr.FAIL_REASON)
            rows.append(row)
        return pd.DataFrame(rows)


def optuna_directions(directions: Sequence[str]) -> list[StudyDirection]:
    """Optuna's directions for ours (``minimize`` or ``maximize``, checked when the config loads)."""
    return [StudyDirection.MAXIMIZE if d == "maximize" else StudyDirection.MINIMIZE for d in directions]


def _store_config(study: optuna.Study, config: StudyConfig) -> None:
    """Store ``config``'s text and folder in ``study``: what ``Study.load`` reads it with."""
    study.set_user_attr(StudyAttr.CONFIG, config.text)
    study.set_user_attr(StudyAttr.CONFIG_DIR, str(config.directory.resolve()))


def stored_config(study: optuna.Study) -> StudyConfig:
    """The config a mixopt study stores (its text, read against the folder it was run from)."""
    return parse_config(study.user_attrs[StudyAttr.CONFIG], directory=Path(study.user_attrs.get(StudyAttr.CONFIG_DIR, ".")))


def check_same_sources(name: str, stored: StudyConfig, config: StudyConfig) -> None:
    """A ``ConfigError`` when ``config`` adds, removes or renames a source of the study ``name`` (started with
    ``stored``): its trials hold one weight per source, so the sources of a study never change."""
    old, new = [s.name for s in stored.sources], [s.name for s in config.sources]
    added, removed = [n for n in new if n not in old], [n for n in old if n not in new]
    if added or removed:
        change = "; ".join(f"{what} {', '.join(repr(n) for n in names)}" for what, names in
                           (("adds", added), ("removes", removed)) if names)
        raise ConfigError(f"study '{name}' was started with sources {old}, this config {change}: a study's sources "
                          "cannot change; give the edited config a new name (or --study-name), with `reuse: {study: "
                          "<the old config>}` to warm-start it from this study's runs")


def space_changes(stored: StudyConfig, config: StudyConfig) -> list[str]:
    """What of the space differs between ``stored`` and ``config``: "bounds", "constraints", "fidelities"."""
    def bounds(c: StudyConfig) -> dict:
        return {s.name: (s.tokens, s.min_weight, s.max_weight, s.max_repetition, s.fixed_weight) for s in c.sources}

    def fidelities(c: StudyConfig) -> list:
        return [(f.name, f.tokens, f.match_repetition) for f in c.fidelities]

    parts = {"bounds": bounds, "constraints": lambda c: c.constraints, "fidelities": fidelities}
    return [what for what, of in parts.items() if of(stored) != of(config)]


def queued_mixture(trial: optuna.trial.FrozenTrial) -> dict[str, float]:
    """The weights a trial was queued with (Optuna's ``fixed_params``), whole even when a controller killed
    while claiming the trial set only some of its params; a trial never queued: its params."""
    return trial.system_attrs.get("fixed_params") or trial.params


def weight_column(source: str) -> str:
    """The frame column holding a source's weight (prefixed: a source may share an objective's name)."""
    return f"w:{source}"


def _import_identity(weights: np.ndarray, values, fidelity: str | None) -> tuple:
    """What makes two imported runs the same run: mixture (to 1e-9), values (to 12 digits) and fidelity."""
    return (fidelity, tuple(np.round(weights, 9)), tuple(float(f"{v:.12g}") for v in values))


def _counted(trial: optuna.trial.FrozenTrial, fidelity: str | None) -> bool:
    """Whether ``trial`` counts toward ``n_trials``: run by this study, at ``fidelity`` (any if None)."""
    return Attr.IMPORTED_FROM not in trial.user_attrs and (fidelity is None or trial.user_attrs.get(Attr.FIDELITY) == fidelity)


INITIAL_PID_NAMESPACE = "pid:[4026531836]"  # the kernel's own (PROC_PID_INIT_INO): a host's processes, no container


def controller_id() -> str:
    """``host:pid`` of this process, stored on the trials it runs; ``host:pidns-<inode>:pid`` in a pid namespace
    of its own (a container), where another controller under the same hostname may have the same pid."""
    namespace = _read_link("/proc/self/ns/pid")
    inside = f"pidns-{namespace[5:-1]}:" if namespace and namespace != INITIAL_PID_NAMESPACE else ""
    return f"{socket.gethostname()}:{inside}{os.getpid()}"


def machine() -> dict[str, str]:
    """Where this process's pids mean something: the kernel's boot id and the pid namespace ("" where unknown).
    Stored on the trials a controller claims: another controller judges its liveness by its pid only when
    both are its own; else by its heartbeat (a hostname alone is shared by containers)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return {"boot": boot, "pidns": _read_link("/proc/self/ns/pid")}


def _read_link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _controller_is_dead(owner: str, beats: dict[str, float], trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the controller ``owner`` (:func:`controller_id`) of running ``trial`` is gone: its last heartbeat
    in ``beats`` (or the trial's start) is stale; or, when the trial was claimed on this :func:`machine`,
    its process has exited."""
    pid = owner.rpartition(":")[2]
    if trial.user_attrs.get(Attr.MACHINE) != machine() or not pid.isdigit():
        started = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
        return time.time() - beats.get(owner, started) > HEARTBEAT_STALE_SECONDS
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars and paths become floats and strings)."""
    return json.loads(json.dumps(value, default=lambda x: x.item() if hasattr(x, "item") else str(x)))
