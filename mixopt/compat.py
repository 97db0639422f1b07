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
    from collections.abc import Mapping
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
