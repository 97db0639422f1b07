"""The one place where mixopt reaches private attributes of other libraries.

Each function below wraps one private name of Optuna, the standard library, submitit or torch, says what
it reaches and why no public API does the job, and is covered by ``tests/test_compat.py``, which runs it
against the installed library and fails when that library changes the private name or its behaviour.
No other module of mixopt, runners/ or surrogates/ may touch another library's private attribute (a test
reads the sources and fails if one does): upgrading a library then means reading this file only.

The libraries are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing.process import BaseProcess

    import numpy as np
    import optuna
    from sqlalchemy.engine import Engine


# -- Optuna ------------------------------------------------------------------------------------------------
def compute_hypervolume(loss_values: np.ndarray, reference: np.ndarray, assume_pareto: bool = False) -> float:
    """The exact (WFG) hypervolume of ``loss_values`` ``(n, m)`` (every objective minimized) bounded by
    ``reference`` ``(m,)``; with ``assume_pareto`` the rows must be mutually non-dominated.

    Reaches ``optuna._hypervolume.compute_hypervolume``: Optuna's exact algorithm is fast at up to 6
    objectives and public Optuna exposes it only inside its samplers and visualizations."""
    from optuna._hypervolume import compute_hypervolume as wfg

    return float(wfg(loss_values, reference, assume_pareto=assume_pareto))


def pop_waiting_trial_id(study: optuna.Study) -> int | None:
    """Take the oldest WAITING (enqueued) trial of ``study`` and mark it RUNNING; its trial id, or None when
    the queue is empty.

    Reaches ``optuna.Study._pop_waiting_trial_id``, the first step of ``study.ask()``: atomic across
    processes sharing a storage, and unlike ``ask()`` it never creates a new trial (with parameters
    sampled off the polytope) when the queue is empty."""
    return study._pop_waiting_trial_id()


# RDBStorage methods that Optuna's caching wrapper (``_CachedStorage``, which calls some private ones on its
# backend) and mixopt call: the storage of :func:`retrying_rdb_storage` retries each.
RDB_STORAGE_CALLS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "set_trial_param", "_set_trial_param", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials", "get_best_trial",
    "_get_best_trial_id", "record_heartbeat", "_get_stale_trial_ids", "get_heartbeat_interval",
    "get_heartbeat_stale_trial_callback",
)
CREATE_TOKEN = "mixopt:create_token"  # system attr of a trial created by a retrying storage from a template


def retrying_rdb_storage(url: str, engine_kwargs: dict[str, Any],
                         retry: Callable[[Callable[[], Any], Callable[[], None]], Any]) -> optuna.storages.RDBStorage:
    """An ``RDBStorage`` whose every call runs as ``retry(call, reset)`` (mixopt retries lost connections:
    a database server restarted, failed over or cut off; ``reset`` drops the thread's broken session).

    Reaches the private methods of ``RDBStorage`` that Optuna's caching wrapper calls (in
    :data:`RDB_STORAGE_CALLS`), and overrides ``_create_new_trial``, which creates every trial: creating one
    is not idempotent (a commit whose answer was lost with the connection may have created it), so a trial
    made from a template (enqueued or added) carries a token in its system attrs, and a retry first looks
    for a trial with that token."""
    import copy
    import uuid

    import optuna

    base = optuna.storages.RDBStorage

    def retried(name: str) -> Callable[..., Any]:
        method = getattr(base, name)

        def call(self: optuna.storages.RDBStorage, *args: Any, **kwargs: Any) -> Any:
            return retry(lambda: method(self, *args, **kwargs), self.remove_session)
        return call

    def create_new_trial(self: optuna.storages.RDBStorage, study_id: int,
                         template_trial: optuna.trial.FrozenTrial | None = None) -> optuna.trial.FrozenTrial:
        create = base._create_new_trial
        if template_trial is None:
            return retry(lambda: create(self, study_id, None), self.remove_session)
        template, token, tried = copy.deepcopy(template_trial), uuid.uuid4().hex, list[bool]()
        template.system_attrs = {**template.system_attrs, CREATE_TOKEN: token}

        def attempt() -> optuna.trial.FrozenTrial:
            if tried:
                made = [t for t in self.get_all_trials(study_id, deepcopy=False) if t.system_attrs.get(CREATE_TOKEN) == token]
                if made:
                    return made[0]
            tried.append(True)
            return create(self, study_id, template)
        return retry(attempt, self.remove_session)

    methods: dict[str, Any] = {name: retried(name) for name in RDB_STORAGE_CALLS}
    methods["_create_new_trial"] = create_new_trial
    return type("RetryingRDBStorage", (base,), methods)(url, engine_kwargs=engine_kwargs)


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage object ``study`` reads and writes (for an RDB URL: Optuna's caching wrapper around the
    ``RDBStorage``).

    Reaches ``optuna.Study._storage``: mixopt writes several trial attributes of a finished trial before
    telling it (``FrozenTrial`` is read-only, and a ``Trial`` object of a trial started by another
    controller cannot be rebuilt without it), and opens sibling studies (screening, seed merges) in the
    same storage."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The storage's integer id of ``study`` (trial numbers are per study, trial ids per storage).

    Reaches ``optuna.Study._study_id``: storage methods take ids, and ``Study`` keeps its id private."""
    return study._study_id


def storage_engine(storage: optuna.storages.BaseStorage) -> Engine | None:
    """The SQLAlchemy engine under ``storage`` when it is (or wraps) an ``RDBStorage``, else None.

    Reaches ``optuna.storages._CachedStorage._backend``: ``optuna.create_study`` and ``load_study`` wrap an
    ``RDBStorage`` in a private cache whose ``_backend`` is the ``RDBStorage``; its engine tells the
    database (for the claim lock: a PostgreSQL advisory lock or a file lock beside the SQLite file) and
    its URL identifies the storage."""
    import optuna

    backend = getattr(storage, "_backend", storage)
    return backend.engine if isinstance(backend, optuna.storages.RDBStorage) else None


def nsga2_generation_key() -> str:
    """The trial system attribute in which ``NSGAIISampler`` records a trial's generation.

    Reaches ``optuna.samplers.NSGAIISampler._get_generation_key``: the NSGA-II searcher rebuilds trials from
    the history in a fresh study and assigns them to generations itself."""
    import optuna

    return optuna.samplers.NSGAIISampler._get_generation_key()


# -- concurrent.futures ------------------------------------------------------------------------------------
def pool_processes(pool: ProcessPoolExecutor) -> Mapping[int, BaseProcess] | None:
    """The worker processes of ``pool`` (pid -> process), or None once the pool has been shut down.

    Reaches ``ProcessPoolExecutor._processes``: when a worker dies the pool only says "broken"; the exit
    status of each worker (the out-of-memory killer's SIGKILL, a crash's SIGSEGV, ``os._exit(3)``) tells
    the trial whose worker died from the trials that the broken pool took down with it."""
    return pool._processes


# -- submitit ----------------------------------------------------------------------------------------------
def submitit_job_class(executor: Any) -> type:
    """The ``submitit.Job`` subclass of the cluster that a ``submitit.AutoExecutor`` submits to (Slurm's,
    or the local stand-in's).

    Reaches ``AutoExecutor._executor``: re-attaching to the job of a killed controller needs a job object
    built from the job id and folder, and ``AutoExecutor`` keeps the cluster's executor private."""
    return executor._executor.job_class


# -- transformers ------------------------------------------------------------------------------------------
def decoder_layer_classes(model: Any) -> set[str]:
    """Class names of the blocks a transformers ``model`` must keep whole on one device (its decoder
    layers, e.g. ``{"LlamaDecoderLayer"}``): the unit FSDP shards by.

    Reaches ``PreTrainedModel._no_split_modules``: transformers names a model's layer classes only there
    (accelerate's FSDP wrapping policy reads it too); empty for a model that names none."""
    return set(getattr(model, "_no_split_modules", None) or ())


# -- BoTorch -----------------------------------------------------------------------------------------------
def skip_fused_hypervolume_kernel() -> None:
    """Make BoTorch's qLogNEHVI take its pure-PyTorch path instead of compiling its fused C++ kernel.

    Reaches ``botorch.acquisition.multi_objective.logei._load_attempted`` (and reads its ``_C``): BoTorch 0.18
    JIT-compiles that kernel (``torch.utils.cpp_extension.load``, ``-march=native``) in the first process that
    builds a qLogNEHVI and finds no prebuilt one. Measured here it stalled a study's first multi-objective
    proposal for minutes on 2 cores, every other process waiting on its file lock, and the build is tied to the
    machine it ran on; BoTorch has no public switch. With the flag set BoTorch never tries (older BoTorch,
    which has no kernel, ignores the flag)."""
    from botorch.acquisition.multi_objective import logei

    if getattr(logei, "_C", None) is None:
        logei._load_attempted = True


# -- torch -------------------------------------------------------------------------------------------------
def mkldnn_bf16_supported() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX) through oneDNN.

    Reaches ``torch.ops.mkldnn._is_mkldnn_bf16_supported``: torch has no public check, and bf16 autocast on
    a CPU without it is slower than float32."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
