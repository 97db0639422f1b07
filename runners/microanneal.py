"""The microanneal runner: continued training of a causal LM on a mixture, then evaluation.

A run loads a base checkpoint (any local transformers checkpoint folder; by default the demo's tiny
Llama-style model, built on first use), trains it on ``spec.tokens`` tokens drawn from the sources in
the mixture's token shares, with the learning rate warmed up briefly and then annealed linearly to 0
(the OLMo midtraining anneal), and evaluates (a budget of 0 tokens evaluates the checkpoint as it is,
e.g. a merge of seeds; then there are no training metrics):

- ``bpb_<source>``: held-out bits per byte on each source's last blocks (never trained on);
- ``<task>_acc`` / ``<task>_bpb``: multiple-choice tasks (a folder of ``<task>.jsonl``; the demo's are
  math, code, qa and instruct) scored by likelihood over ranked choices;
- ``<task>_<metric>`` (when ``eval`` names lm-evaluation-harness tasks; see ``harness``), with standard errors;
- ``sft_answer_loss`` (when ``sft_probe`` is on): the post-trainability probe, a short SFT of a copy of
  the annealed model on held-out instruction pairs, then its loss per answer token on other pairs, with
  its standard error over those pairs (the item-sampling noise; seed noise comes from replicates);
- ``train_loss_first`` / ``train_loss_last`` (mean of the first / last tenth of steps) and
  ``tokens_<source>``, ``share_<source>``, ``epochs_<source>`` (trained per source; requested against
  achieved, and the pools, are in ``accounting.json``).

Sources come from ``spec.source_paths``: token files (``.npy``/``.bin``, memory-mapped; see
``microanneal_data``) or text (jsonl, parquet, text files or ``save_to_disk`` folders, tokenized once
into token files); a source listed without paths is the demo source of that name. With
``spec.pool_fraction`` (repetition matching) each source's training pool is a seeded subsample.

With ``spec.proxy == "merge"`` (a ``proxy: merge`` fidelity) the run trains nothing: the mixture is scored by
merging cached single-source experts into the base (task arithmetic, ``merge_scale``) and evaluating it as
above (no training metrics); see ``MicroannealRunner.expert``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mixopt.errors import ConfigError
from mixopt.registry import Registry
from mixopt.runners.base import RunFailed, Runner
from mixopt.runners.training import (
    STRATEGIES,
    BlockTraining,
    anneal,
    batch_layout,
    bf16_supported,
    block_batches,
    parse_every,
    quiet_libraries,
    resolve_bf16,
    resolve_device,
    sft_batches,
    train_blocks,
)
from mixopt.space import Source
from mixopt.trials import Evaluation, RunSpec

if TYPE_CHECKING:
    from mixopt.export import TrainerLayout

__all__ = ["ASSETS", "Assets", "MicroannealRunner", "anneal", "bf16_supported", "block_batches", "quiet_libraries",
           "sft_batches"]


class Assets(Protocol):
    """What a run uses where the study names nothing: a base checkpoint, sources by name, task and SFT
    folders. Each method builds what it returns on first use (safely from several processes at once)."""

    sources: tuple[str, ...]  # the names that ``source`` knows

    def base_model(self) -> Path: ...

    def source(self, name: str) -> Path: ...

    def tasks_dir(self) -> Path: ...

    def sft_dir(self) -> Path: ...


# The runner's default assets are the offline demo's. The demo sits above the runners (it pretrains its base
# model with their training loop), so the runner names its provider here, as the other registries do,
# instead of importing it.
ASSETS = Registry("assets", {"demo": "mixopt.demo.assets:DemoAssets"})
DEFAULT_ASSETS = "demo"


STATE = "train-state.pt"  # the training state a preempted run resumes from, in the trial's output folder
EXPERT_SEED = 0  # every merge-proxy expert's seed: one set of experts serves every trial of a study


def default_assets() -> Assets:
    return ASSETS.create(DEFAULT_ASSETS)


def training_fingerprint(job: BlockTraining, blocks, sample: int = 4096) -> str:
    """A key of what decides an anneal's result: the starting checkpoint, the schedule and optimizer
    settings, the autocast, and the training blocks ``(n, L)`` (their count and up to ``sample`` of them,
    evenly spaced in training order: another mixture or seed moves them). Not the process layout, the
    device, the threads or the strategy: a run resumed on another layout continues, equal within float rounding."""
    settings = {k: v for k, v in asdict(job).items() if k in ("model", "steps", "batch_size", "learning_rate",
                                                            "warmup_steps", "weight_decay", "bf16", "seed")}
    digest = hashlib.blake2b(json.dumps([settings, len(blocks)], sort_keys=True).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(blocks[np.linspace(0, len(blocks) - 1, min(sample, len(blocks))).astype(np.int64)],
                                       dtype=np.int64).tobytes())
    return digest.hexdigest()


def _training_rows(runner: MicroannealRunner, spec: RunSpec, checkpoint: str, steps: int):
    """The run's training blocks, made again in a training process (sources are cached: memory maps)."""
    from transformers import AutoTokenizer

    return runner.mixture_blocks(spec, runner.load_sources(spec, AutoTokenizer.from_pretrained(checkpoint)), steps)[0]


@dataclass
class MicroannealRunner(Runner):
    """Options (from ``runner.options`` in the study config; see the module docstring for the metrics).

    ``model``: default checkpoint folder when the fidelity names none (None: the demo base model).
    ``block_size``/``batch_size``: tokens per block and blocks per optimizer step (the global batch,
    ``block_size * batch_size`` tokens, whatever ``processes``). ``learning_rate``: peak rate;
    ``warmup_fraction`` of the steps warm up, the rest anneal linearly to 0. ``device``: "auto" (CUDA
    when a device is visible), "cpu" or "cuda". ``bf16``: "auto" (autocast where the device runs bf16
    natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16/AMX), true or false.
    ``processes``: training processes of one run (spawned by the run; gloo on CPU, nccl on CUDA, one GPU
    each); ``strategy``: how they split it, "ddp" (a whole model each) or "fsdp" (parameters, gradients
    and optimizer state sharded by decoder layer, for a model too large for one device); ``micro_batch_size``: blocks per forward pass per process (None: ``batch_size /
    processes``), the rest is gradient accumulation. ``threads``: torch threads per process.
    ``checkpoint_every``: save the training state in the trial's output folder every N steps, or every
    "600s"/"10m"/"1h" (None: never); a run whose folder holds the state of the same inputs resumes from
    it, and the state is removed when the run succeeds. ``heldout_blocks``:
    blocks per source held out for BPB. ``tasks``: "demo", a folder of ``<task>.jsonl`` or None;
    ``task_items``: items per task (None: all). ``sft_probe``: run the post-trainability probe on
    ``sft_data`` ("demo" or a folder with train.jsonl/eval.jsonl of prompt/answer rows).
    ``default_max_repetition``: epochs allowed for a source whose config sets no max_repetition.
    ``share_tolerance``: a run whose trained share of a source is farther than this from its weight fails
    (None: one block's share, the rounding to whole blocks).
    ``keep_checkpoint``: save the annealed model (safetensors) in the trial's output folder.
    ``eval``: lm-evaluation-harness tasks run on the annealed model too, ``{harness: lm-eval, tasks: [...],
    include_path: ..., limit: ..., num_fewshot: ...}`` (see ``harness.HarnessEval``): metrics
    ``<task>_<metric>`` with their standard errors (needs ``pip install 'mixopt[lm-eval]'``).
    """

    model: str | None = None
    block_size: int = 128
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 0.0
    bf16: bool | str = "auto"
    device: str = "auto"
    processes: int = 1
    strategy: str = "ddp"
    micro_batch_size: int | None = None
    threads: int = 1
    checkpoint_every: int | str | None = None
    heldout_blocks: int = 16
    eval_batch_size: int = 32
    tasks: str | None = "demo"
    task_items: int | None = None
    sft_probe: bool = False
    sft_data: str = "demo"
    sft_steps: int = 20
    sft_learning_rate: float = 5e-4
    default_max_repetition: float = 1.0
    share_tolerance: float | None = None
    keep_checkpoint: bool = False
    eval: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"runner option strategy must be one of {', '.join(STRATEGIES)} (got {self.strategy!r})")
        if self.eval is not None:  # a bad option stops the study before any run, not every run
            from mixopt.runners.harness import HarnessEval

            HarnessEval.parse(self.eval)

    # -- the run -----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> Evaluation:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started, cpu_started = time.perf_counter(), time.process_time()
        torch.set_num_threads(self.threads)
        quiet_libraries()
        device = resolve_device(self.device)
        bf16 = resolve_bf16(self.bf16, device)
        batch_layout(self.batch_size, self.processes, self.micro_batch_size)
        every = parse_every(self.checkpoint_every)
        out = Path(spec.output_dir)
        out.mkdir(parents=True, exist_ok=True)

        checkpoint = self._checkpoint(spec)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        model: Any = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
        if self.block_size > model.config.max_position_embeddings:
            raise RunFailed(f"block_size {self.block_size} exceeds the model's {model.config.max_position_embeddings} positions")

        step_tokens = self.block_size * self.batch_size
        steps = int(spec.tokens // step_tokens)
        if steps < 1 and spec.tokens != 0:
            raise RunFailed(f"fidelity '{spec.fidelity}': {spec.tokens:g} tokens is less than one step ({step_tokens} tokens)")
        if spec.proxy is not None:
            return self._merge_proxy(spec, model, tokenizer, checkpoint, steps, device, bf16, started, cpu_started)
        sources = self.load_sources(spec, tokenizer)
        job = self._job(checkpoint, steps, bf16, device, spec.seed, out if every or self.processes > 1 else None, every)
        metrics, cost = self._train(model, job, spec, sources, out) if steps else ({}, {})
        model.to(device)
        scores, stderr = self._evaluate(model, tokenizer, sources, bf16)
        metrics.update(scores)
        artifacts = {"accounting": str(out / "accounting.json"), "losses": str(out / "train_losses.json")} if steps else {}
        if self.keep_checkpoint and steps:
            model.save_pretrained(out / "checkpoint")
            tokenizer.save_pretrained(out / "checkpoint")
            artifacts["checkpoint"] = str(out / "checkpoint")
        elif self.keep_checkpoint:  # evaluated as it was: the checkpoint is the one loaded
            artifacts["checkpoint"] = str(checkpoint)
        trained = steps * step_tokens
        cost.update(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu_started,
                    tokens=float(trained))
        (out / STATE).unlink(missing_ok=True)  # the run is done: nothing to resume
        return Evaluation(metrics=metrics, stderr=stderr, cost=cost, artifacts=artifacts, runner="microanneal")

    def _train(self, model, job: BlockTraining, spec: RunSpec, sources: dict,
               out: Path) -> tuple[dict[str, float], dict[str, float]]:
        """Anneal ``model`` as ``job`` says on the mixture, resuming from a checkpoint of the same inputs in
        ``out``, and write ``accounting.json`` and ``train_losses.json`` there; returns the training metrics
        and costs (seconds, CPU seconds, tokens per second; ``resumed_at_step`` when it resumed)."""
        import torch

        from mixopt.runners import microanneal_data as data

        steps = job.steps
        blocks, counts = self.mixture_blocks(spec, sources, steps)
        report = data.accounting(sources, spec.mixture, counts, spec.pool_fraction, self.share_tolerance)
        job = replace(job, fingerprint=training_fingerprint(job, blocks))
        torch.manual_seed(spec.seed)
        if job.processes == 1:
            model.to(job.device)
        started, cpu_started = time.perf_counter(), time.process_time()
        rebuild = functools.partial(_training_rows, self, spec, job.model, steps)  # each process reads its own rows
        trained_run = train_blocks(job, blocks, model, out, rebuild)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        losses = trained_run.losses
        if not np.all(np.isfinite(losses)):
            raise RunFailed(f"training diverged (loss {losses[-1]}): lower the runner's learning_rate")
        (out / "train_losses.json").write_text(json.dumps(losses))
        (out / "accounting.json").write_text(json.dumps({"block_size": self.block_size, "steps": steps, **report}, indent=1))
        tenth = max(1, steps // 10)
        metrics = {"train_loss_first": float(np.mean(losses[:tenth])), "train_loss_last": float(np.mean(losses[-tenth:])),
                   **data.accounting_metrics(report)}
        here = (steps - trained_run.resumed_at) * self.batch_size * self.block_size  # trained by this run
        cost = {"train_seconds": seconds, "train_cpu_seconds": cpu_seconds, "tokens_per_second": here / seconds}
        if trained_run.resumed_at:
            cost["resumed_at_step"] = float(trained_run.resumed_at)
        return metrics, cost

    # -- the merge proxy ----------------------------------------------------------------------------
    def _merge_proxy(self, spec: RunSpec, model, tokenizer, checkpoint: Path, steps: int, device: str, bf16: bool,
                     started: float, cpu_started: float) -> Evaluation:
        """Score ``spec.mixture`` without training: ``model`` (the base, loaded once) becomes
        ``theta_base + merge_scale * sum_k w_k (theta_k - theta_base)`` in place, one expert read at a time
        (sources at weight 0 are never loaded), and is evaluated as a microanneal is. Experts missing from the
        cache are trained first: ``cost`` holds ``expert_seconds`` and ``experts_trained`` (this evaluation's),
        ``seconds`` all of it, ``tokens`` the tokens those experts trained."""
        from mixopt.merge import add_task_vectors

        if spec.proxy != "merge":
            raise RunFailed(f"fidelity '{spec.fidelity}': unknown proxy {spec.proxy!r}: the microanneal runner merges (merge)")
        if steps < 1:
            raise RunFailed(f"fidelity '{spec.fidelity}': a merge proxy's tokens are each expert's budget: set tokens > 0")
        sources = self.load_sources(spec, tokenizer)
        experts, artifacts, expert_seconds, trained = [], {}, 0.0, 0
        for name, weight in spec.mixture.items():
            if weight > 0:
                folder, seconds = self.expert(spec, name, checkpoint, sources, steps, device, bf16)
                experts.append((folder, weight))
                artifacts[f"expert_{name}"] = str(folder)
                expert_seconds, trained = expert_seconds + seconds, trained + (seconds > 0)
        add_task_vectors(model.state_dict(), experts, spec.merge_scale)
        model.to(device)
        metrics, stderr = self._evaluate(model, tokenizer, sources, bf16)
        cost = {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
                "tokens": float(trained * steps * self.block_size * self.batch_size),
                "expert_seconds": expert_seconds, "experts_trained": float(trained)}
        return Evaluation(metrics=metrics, stderr=stderr, cost=cost, artifacts=artifacts, runner="microanneal")

    def expert(self, spec: RunSpec, name: str, checkpoint: Path, sources: dict, steps: int, device: str,
               bf16: bool) -> tuple[Path, float]:
        """The merge proxy's expert of source ``name``: the base annealed ``steps`` steps on it alone (seed
        ``EXPERT_SEED``, whatever the trial's), a build-once cache folder ``experts/<name>-<key>`` (weights,
        ``accounting.json``, ``train_losses.json``) keyed by the training fingerprint (base, schedule,
        optimizer, autocast, blocks) and the base's weight files; and the seconds spent training it here (0:
        cached). A build killed midway starts that expert again; finished experts stay."""
        from mixopt.cache import build_once, cache_dir

        expert_spec = replace(spec, mixture={name: 1.0}, seed=EXPERT_SEED, proxy=None)
        blocks, _ = self.mixture_blocks(expert_spec, sources, steps)
        job = self._job(checkpoint, steps, bf16, device, EXPERT_SEED, None, None)
        digest = hashlib.blake2b(training_fingerprint(job, blocks).encode(), digest_size=8)
        for file in sorted(checkpoint.glob("*.safetensors")):  # the base's weights, by size and time
            digest.update(f"{file.name}:{file.stat().st_size}:{file.stat().st_mtime_ns}".encode())
        spent = 0.0

        def build(folder: Path) -> dict:
            nonlocal spent
            import torch
            from transformers import AutoModelForCausalLM

            began = time.perf_counter()
            model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
            state = folder if self.processes > 1 else None
            metrics, cost = self._train(model, self._job(checkpoint, steps, bf16, device, EXPERT_SEED, state, None),
                                        expert_spec, {name: sources[name]}, folder)
            model.save_pretrained(folder)
            (folder / STATE).unlink(missing_ok=True)
            spent = time.perf_counter() - began
            return {"source": name, "steps": steps, "seconds": spent, **metrics, **cost}

        folder = build_once(cache_dir() / "experts" / f"{name}-{digest.hexdigest()}", build,
                            what=f"the merge-proxy expert of source '{name}'")
        return folder, spent

    # -- pieces -------------------------------------------------------------------------------------
    def _job(self, checkpoint: Path, steps: int, bf16: bool, device: str, seed: int, state: Path | None,
             every) -> BlockTraining:
        """The anneal of ``steps`` steps from ``checkpoint`` with the runner's options (``state``: the folder of
        its resumable training state, None: none; ``every``: checkpoint interval)."""
        return BlockTraining(str(checkpoint), steps, self.batch_size, self.learning_rate,
                             int(self.warmup_fraction * steps), self.weight_decay, bf16, device, self.processes,
                             self.micro_batch_size, self.threads, seed, str(state / STATE) if state else None, every,
                             strategy=self.strategy)

    def mixture_blocks(self, spec: RunSpec, sources: dict, steps: int) -> tuple:
        """The run's training blocks ``(steps * batch_size, L)`` in training order, and blocks per source."""
        from mixopt.runners import microanneal_data as data

        limits = {n: spec.max_repetition(n) or self.default_max_repetition for n in spec.mixture}
        return data.mixture_blocks(sources, spec.mixture, steps * self.batch_size, limits, spec.seed,
                                   spec.pool_fraction)

    def load_sources(self, spec: RunSpec, tokenizer) -> dict:
        """Every source of the spec, tokenized, packed and split (``PackedSource`` by name)."""
        from mixopt.cache import cache_dir
        from mixopt.runners import microanneal_data as data

        key = data.tokenizer_fingerprint(tokenizer)
        described = {name: spec.source(name) or Source(name) for name in spec.mixture}  # token file dtype, eos id
        return {
            name: data.load_source(name, self._paths(spec, name), tokenizer, key, self.block_size,
                                   self.heldout_blocks, cache_dir() / "tokens", token_dtype=source.token_dtype,
                                   eos_token_id=source.eos_token_id)
            for name, source in described.items()
        }

    def token_files(self, sources: Sequence[Source], model: str | None = None,
                    ) -> tuple[dict[str, tuple[str, ...]], TrainerLayout]:
        """The token files a run reads for each source, as raw ids (raw token files by name, folders and globs
        expanded; a ``.npy`` with a numpy header, text, or a path-less demo source as the ``tokens.bin`` it
        is copied or tokenized into in the cache, made now if missing; a path-less
        source of another name is left out), read as the one dtype they share (None if they differ) in
        ``block_size``-token instances, ``block_size * batch_size`` tokens a step."""
        from transformers import AutoTokenizer

        from mixopt.cache import cache_dir
        from mixopt.export import TrainerLayout
        from mixopt.runners import microanneal_data as data

        checkpoint = self._checkpoint_of(model, "the export fidelity")
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        key = data.tokenizer_fingerprint(tokenizer)
        files: dict[str, tuple[str, ...]] = {}
        dtypes = {s.token_dtype for s in sources if s.token_dtype}
        for source in sources:
            if not source.paths and source.name not in default_assets().sources:
                continue  # nothing to name: the export stays refused for its missing paths
            paths = self._source_paths(source.name, source.paths)
            found = data.source_files(source.name, paths)
            if all(f.suffix in data.TOKEN_SUFFIXES for f in found):  # each file by name, headed .npy copied raw
                raw = [data.raw_token_file(source.name, f, source.token_dtype, cache_dir() / "tokens") for f in found]
                files[source.name] = tuple(str(path) for path, _ in raw)
                dtypes.update(dtype for _, dtype in raw if dtype)
                continue
            folder = data.tokenized_text(source.name, paths, found, tokenizer, key, cache_dir() / "tokens")
            files[source.name] = (str(folder / data.TOKENS_FILE),)
            dtypes.add(data.token_dtype_for(len(tokenizer)))
        dtype = dtypes.pop() if len(dtypes) == 1 else None
        return files, TrainerLayout(dtype, self.block_size, self.block_size * self.batch_size, str(checkpoint))

    def _checkpoint(self, spec: RunSpec) -> Path:
        return self._checkpoint_of(spec.model, f"fidelity '{spec.fidelity}'")

    def _checkpoint_of(self, model: str | None, what: str) -> Path:
        path = model or self.model
        if path is None:
            return default_assets().base_model()
        if not (Path(path) / "config.json").is_file():
            raise RunFailed(f"{what}: no transformers checkpoint (config.json) at {path}")
        return Path(path)

    def _paths(self, spec: RunSpec, name: str) -> tuple[str, ...]:
        return self._source_paths(name, spec.source_paths.get(name) or ())

    def _source_paths(self, name: str, paths: Sequence[str]) -> tuple[str, ...]:
        if paths:
            return tuple(paths)
        assets = default_assets()
        if name not in assets.sources:
            raise RunFailed(f"source '{name}': no paths given and no demo source of that name: set sources[].paths")
        return (str(assets.source(name)),)

    def _evaluate(self, model, tokenizer, sources: dict,
                  bf16: bool) -> tuple[dict[str, float], dict[str, float]]:
        """The evaluation metrics (see the module docstring) and the standard errors of those that have one."""
        from mixopt.runners import microanneal_eval as ev

        byte_lengths = ev.token_byte_lengths(tokenizer)
        metrics = {f"bpb_{name}": ev.heldout_bpb(model, s.heldout, byte_lengths, self.eval_batch_size, bf16)
                   for name, s in sources.items()}
        max_length = min(model.config.max_position_embeddings, 4 * self.block_size)
        tasks_dir = self._tasks_dir()
        for path in sorted(tasks_dir.glob("*.jsonl")) if tasks_dir else ():
            scores = ev.score_items(model, tokenizer, ev.load_items(path, self.task_items), self.eval_batch_size,
                                    bf16, max_length)
            metrics.update({f"{path.stem}_{k}": v for k, v in scores.items()})
        stderr: dict[str, float] = {}
        if self.eval is not None:
            from mixopt.runners import harness

            scores, stderr = harness.evaluate(model, tokenizer, harness.HarnessEval.parse(self.eval),
                                              self.eval_batch_size)
            clash = sorted(set(scores) & set(metrics))
            if clash:
                raise RunFailed(f"lm-eval metric '{clash[0]}' has the name of a metric of the runner's own tasks: "
                                "rename the lm-eval task or set the runner option tasks: null")
            metrics.update(scores)
        if self.sft_probe:
            metrics["sft_answer_loss"], stderr["sft_answer_loss"] = self._sft_probe(model, tokenizer, bf16, max_length)
        return metrics, stderr

    def _tasks_dir(self) -> Path | None:
        if self.tasks is None:
            return None
        if self.tasks == "demo":
            return default_assets().tasks_dir()
        if not Path(self.tasks).is_dir():
            raise RunFailed(f"runner option tasks: no folder at {self.tasks}")
        return Path(self.tasks)

    def _sft_probe(self, model, tokenizer, bf16: bool, max_length: int) -> tuple[float, float]:
        """Fine-tune a copy on instruction pairs (loss on answers only), then its answer loss on others
        and that loss's standard error over the held-out pairs."""
        from mixopt.runners import microanneal_eval as ev

        if self.sft_data == "demo":
            folder = default_assets().sft_dir()
        else:
            folder = Path(self.sft_data)
        train, held = ev.load_items(folder / "train.jsonl"), ev.load_items(folder / "eval.jsonl")
        probe = copy.deepcopy(model)
        anneal(probe, sft_batches(tokenizer, train, self.batch_size, max_length), self.sft_steps,
               self.sft_learning_rate, 0, bf16=bf16)
        return ev.answer_loss(probe, tokenizer, held, self.eval_batch_size, bf16, max_length)
