"""lm-evaluation-harness tasks as a runner's evaluation (runner option ``eval: {harness: lm-eval, ...}``).

lm-eval runs in process through its Python API (``lm_eval.simple_evaluate`` on an ``HFLM`` that wraps the
annealed model and its tokenizer, or a checkpoint folder loaded from disk), and each task's metrics come
back as trial metrics named ``<task>_<metric>`` with their standard errors under the same names
(``acc,none`` -> ``acc``; a filter other than ``none`` is kept: ``exact_match,strict-match`` ->
``exact_match_strict_match``). lm-eval is an optional dependency (``pip install 'mixopt[lm-eval]'``),
imported only when a run evaluates with it.

Offline: tasks read local data files (a task YAML with ``dataset_path: json`` and
``dataset_kwargs: {data_files: {test: items.jsonl}}``, in a folder named by ``include_path``);
``HF_HUB_OFFLINE`` and ``HF_DATASETS_OFFLINE`` are set for the libraries lm-eval imports.

Conditioning, against mixopt's own scoring (``microanneal_eval``): mixopt puts a document boundary (the
end-of-text token) before each multiple-choice context; lm-eval does the same with ``add_bos_token: true``
when the tokenizer's BOS is its end-of-text token (the demo's), and its ``acc_bytes`` ranks choices by
log-likelihood per byte as mixopt's ``acc`` does. lm-eval's ``loglikelihood_rolling`` (perplexity) tasks
condition the first token on that token by themselves, and with ``add_bos_token: true`` also score the BOS
token itself: leave it off for perplexity tasks.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixopt.errors import ConfigError, RunFailed

HARNESS = "lm-eval"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
INSTALL = "pip install 'mixopt[lm-eval]'"


@dataclass(frozen=True)
class HarnessEval:
    """The ``eval`` runner option. ``tasks``: lm-eval task (or group) names. ``include_path``: a folder of
    task YAMLs (None: lm-eval's built-in tasks only, whose data must then be in the local datasets cache).
    ``builtin_tasks``: also index lm-eval's built-in tasks (None: only when no ``include_path`` is given;
    indexing them takes seconds). ``limit``: items per task (an int, or a fraction below 1; None: all).
    ``num_fewshot``: shots (None: each task's own). ``batch_size``: None: the runner's ``eval_batch_size``.
    ``add_bos_token``: passed to lm-eval (None: the tokenizer's default; see the module docstring).
    ``bootstrap_iters``: resamples for the standard errors of metrics that lm-eval bootstraps."""

    tasks: tuple[str, ...]
    harness: str = HARNESS
    include_path: str | None = None
    builtin_tasks: bool | None = None
    limit: int | float | None = None
    num_fewshot: int | None = None
    batch_size: int | None = None
    add_bos_token: bool | None = None
    bootstrap_iters: int = 1000

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> HarnessEval:
        """The option as given in a study config; a bad one raises ``ConfigError`` naming it and the fix."""
        if not isinstance(options, Mapping):
            raise ConfigError(f"runner option eval: expected a mapping like {{harness: {HARNESS}, tasks: [...]}}, "
                              f"got {options!r}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"runner option eval: unknown key '{unknown[0]}' (known: {', '.join(known)})")
        if options.get("harness", HARNESS) != HARNESS:
            raise ConfigError(f"runner option eval.harness: '{options['harness']}' is not supported: use {HARNESS}")
        tasks = options.get("tasks")
        if isinstance(tasks, str):
            tasks = [tasks]
        if not tasks or not all(isinstance(t, str) and t for t in tasks):
            raise ConfigError("runner option eval.tasks: give a list of lm-eval task names, e.g. tasks: [arc_easy]")
        include = options.get("include_path")
        if include is not None and not Path(include).is_dir():
            raise ConfigError(f"runner option eval.include_path: no folder at {include}: give the folder of your task YAMLs")
        limit = options.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0):
            raise ConfigError(f"runner option eval.limit: {limit!r} is not a positive number of items (or fraction)")
        for key in ("num_fewshot", "batch_size"):
            value = options.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < (key == "batch_size")):
                raise ConfigError(f"runner option eval.{key}: {value!r} is not a {'positive' if key == 'batch_size' else 'non-negative'} integer")
        return cls(**{**options, "tasks": tuple(tasks)})


def metric_name(task: str, key: str) -> str | None:
    """``<task>_<metric>`` for an lm-eval result key ``metric,filter`` (``acc,none`` -> ``<task>_acc``), with
    every run of characters other than letters, digits and ``_`` made one ``_``; None for a key that is
    not a metric (``alias``, ``name``, ``sample_len``, standard errors)."""
    if "," not in key or "_stderr," in key:
        return None
    metric, filter_name = key.split(",", 1)
    name = f"{task}_{metric}" if filter_name == "none" else f"{task}_{metric}_{filter_name}"
    return re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_")


def task_metrics(results: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Trial metrics and standard errors from lm-eval's ``results["results"]`` (task -> ``{"acc,none": ...,
    "acc_stderr,none": ...}``). A standard error lm-eval did not compute (``"N/A"``) is left out."""
    metrics: dict[str, float] = {}
    stderr: dict[str, float] = {}
    for task, scores in results.items():
        for key, value in scores.items():
            name = metric_name(task, key)
            if name is None or not _number(value):
                continue
            metrics[name] = float(value)
            metric, filter_name = key.split(",", 1)
            error = scores.get(f"{metric}_stderr,{filter_name}")
            if isinstance(error, int | float) and not isinstance(error, bool) and math.isfinite(error):
                stderr[name] = float(error)
    return metrics, stderr


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def evaluate(model, tokenizer, options: HarnessEval, batch_size: int) -> tuple[dict[str, float], dict[str, float]]:
    """Trial metrics and standard errors of ``model`` (a transformers causal LM, on its device) on the
    tasks of ``options``; ``batch_size`` is used when the option names none."""
    return task_metrics(run(model, tokenizer, options, batch_size)["results"])


def evaluate_checkpoint(folder: str | Path, options: HarnessEval, batch_size: int = 32,
                        device: str = "cpu") -> tuple[dict[str, float], dict[str, float]]:
    """:func:`evaluate` on a checkpoint folder (a local transformers checkpoint with its tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(folder) / "config.json").is_file():
        raise RunFailed(f"no transformers checkpoint (config.json) at {folder}")
    model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    model.to(device)
    return evaluate(model, AutoTokenizer.from_pretrained(folder, local_files_only=True), options, batch_size)


def run(model, tokenizer, options: HarnessEval, batch_size: int, log_samples: bool = False) -> dict[str, Any]:
    """lm-eval's whole results dict (``results``, and ``samples`` per task with ``log_samples``)."""
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise RunFailed(f"runner option eval needs lm-eval ({exc}): {INSTALL}") from None
    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # per-task notes on defaulted aggregations

    builtin = options.builtin_tasks if options.builtin_tasks is not None else options.include_path is None
    manager = TaskManager(include_path=options.include_path, include_defaults=builtin)
    missing = [t for t in options.tasks if t not in manager.task_index]
    if missing:
        where = f"in {options.include_path}" if options.include_path else "among lm-eval's tasks"
        raise RunFailed(f"lm-eval task '{missing[0]}' not found {where}: check eval.tasks and eval.include_path")
    if options.add_bos_token is not None and tokenizer.add_bos_token != options.add_bos_token:
        import copy

        tokenizer = copy.deepcopy(tokenizer)  # the run's own tokenizer keeps encoding as it did
        tokenizer.add_bos_token = options.add_bos_token
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=options.batch_size or batch_size,
              add_bos_token=options.add_bos_token)
    results = lm_eval.simple_evaluate(
        model=lm, tasks=list(options.tasks), num_fewshot=options.num_fewshot, limit=options.limit,
        task_manager=manager, bootstrap_iters=options.bootstrap_iters, log_samples=log_samples,
    )
    if results is None:  # only when lm-eval thinks this process is not rank 0
        raise RunFailed("lm-eval returned no results (not rank 0): run the evaluation in one process")
    return results
