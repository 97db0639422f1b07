"""The microanneal runner: continued training of a causal LM on a mixture, then evaluation.

A run loads a base checkpoint (any local transformers checkpoint folder; by default the demo's tiny
Llama-style model, built on first use), trains it on ``spec.tokens`` tokens drawn from the sources in
the mixture's token shares, with the learning rate warmed up briefly and then annealed linearly to 0
(the OLMo midtraining anneal), and evaluates (a budget of 0 tokens evaluates the checkpoint as it is,
e.g. a merge of seeds; then there are no training metrics):

- ``bpb_<source>``: held-out bits per byte on each source's last blocks (never trained on);
- ``<task>_acc`` / ``<task>_bpb``: multiple-choice tasks (a folder of ``<task>.jsonl``; the demo's are
  math, code, qa and instruct) scored by likelihood over ranked choices;
- ``sft_answer_loss`` (when ``sft_probe`` is on): the post-trainability probe, a short SFT of a copy of
  the annealed model on held-out instruction pairs, then its loss per answer token on other pairs;
- ``train_loss_first`` / ``train_loss_last`` (mean of the first / last tenth of steps) and
  ``tokens_<source>`` (exact tokens trained per source; the full accounting is in ``accounting.json``).

Sources come from ``spec.source_paths`` (jsonl, parquet, text files or ``save_to_disk`` folders); a
source listed without paths is the demo source of that name.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mixopt.registry import Registry
from mixopt.runners.base import Evaluation, RunFailed, Runner, RunSpec
from mixopt.runners.training import anneal, bf16_supported, block_batches, quiet_libraries, sft_batches

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


def default_assets() -> Assets:
    return ASSETS.create(DEFAULT_ASSETS)


@dataclass
class MicroannealRunner(Runner):
    """Options (from ``runner.options`` in the study config; see the module docstring for the metrics).

    ``model``: default checkpoint folder when the fidelity names none (None: the demo base model).
    ``block_size``/``batch_size``: tokens per block and blocks per step. ``learning_rate``: peak rate;
    ``warmup_fraction`` of the steps warm up, the rest anneal linearly to 0. ``bf16``: "auto" (autocast
    where the CPU supports it), true or false. ``threads``: torch threads per run. ``heldout_blocks``:
    blocks per source held out for BPB. ``tasks``: "demo", a folder of ``<task>.jsonl`` or None;
    ``task_items``: items per task (None: all). ``sft_probe``: run the post-trainability probe on
    ``sft_data`` ("demo" or a folder with train.jsonl/eval.jsonl of prompt/answer rows).
    ``default_max_repetition``: epochs allowed for a source whose config sets no max_repetition.
    ``keep_checkpoint``: save the annealed model (safetensors) in the trial's output folder.
    """

    model: str | None = None
    block_size: int = 128
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 0.0
    bf16: bool | str = "auto"
    threads: int = 1
    heldout_blocks: int = 16
    eval_batch_size: int = 32
    tasks: str | None = "demo"
    task_items: int | None = None
    sft_probe: bool = False
    sft_data: str = "demo"
    sft_steps: int = 20
    sft_learning_rate: float = 5e-4
    default_max_repetition: float = 1.0
    keep_checkpoint: bool = False

    # -- the run -----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> Evaluation:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started, cpu_started = time.perf_counter(), time.process_time()
        torch.set_num_threads(self.threads)
        quiet_libraries()
        if self.bf16 not in ("auto", True, False):
            raise RunFailed(f"runner option bf16 must be auto, true or false (got {self.bf16!r})")
        bf16 = bf16_supported() if self.bf16 == "auto" else bool(self.bf16)
        out = Path(spec.output_dir)
        out.mkdir(parents=True, exist_ok=True)

        checkpoint = self._checkpoint(spec)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
        if self.block_size > model.config.max_position_embeddings:
            raise RunFailed(f"block_size {self.block_size} exceeds the model's {model.config.max_position_embeddings} positions")

        step_tokens = self.block_size * self.batch_size
        steps = int(spec.tokens // step_tokens)
        if steps < 1 and spec.tokens != 0:
            raise RunFailed(f"fidelity '{spec.fidelity}': {spec.tokens:g} tokens is less than one step ({step_tokens} tokens)")
        sources = self.load_sources(spec, tokenizer)
        metrics, cost = self._train(model, spec, sources, steps, bf16, out) if steps else ({}, {})
        metrics.update(self._evaluate(model, tokenizer, sources, bf16))
        artifacts = {"accounting": str(out / "accounting.json")} if steps else {}
        if self.keep_checkpoint and steps:
            model.save_pretrained(out / "checkpoint")
            tokenizer.save_pretrained(out / "checkpoint")
            artifacts["checkpoint"] = str(out / "checkpoint")
        elif self.keep_checkpoint:  # evaluated as it was: the checkpoint is the one loaded
            artifacts["checkpoint"] = str(checkpoint)
        trained = steps * step_tokens
        cost.update(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu_started,
                    tokens=float(trained))
        return Evaluation(metrics=metrics, cost=cost, artifacts=artifacts, runner="microanneal")

    def _train(self, model, spec: RunSpec, sources: dict, steps: int, bf16: bool,
               out: Path) -> tuple[dict[str, float], dict[str, float]]:
        """Anneal ``model`` for ``steps`` steps on the mixture and write ``accounting.json`` in ``out``;
        returns the training metrics and costs (seconds, CPU seconds, tokens per second)."""
        import torch

        from mixopt.runners import microanneal_data as data

        limits = {n: spec.max_repetition(n) or self.default_max_repetition for n in spec.mixture}
        blocks, counts = data.mixture_blocks(sources, spec.mixture, steps * self.batch_size, limits, spec.seed)
        torch.manual_seed(spec.seed)
        started, cpu_started = time.perf_counter(), time.process_time()
        losses = anneal(model, block_batches(blocks, self.batch_size), steps, self.learning_rate,
                        int(self.warmup_fraction * steps), self.weight_decay, bf16)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if not np.all(np.isfinite(losses)):
            raise RunFailed(f"training diverged (loss {losses[-1]}): lower the runner's learning_rate")
        trained = steps * self.batch_size * self.block_size
        tokens = {n: counts.get(n, 0) * self.block_size for n in spec.mixture}
        (out / "accounting.json").write_text(json.dumps({
            "block_size": self.block_size, "steps": steps, "tokens": trained,
            "sources": {n: {"weight": spec.mixture[n], "tokens": tokens[n], "share": tokens[n] / trained,
                            "train_tokens_available": len(sources[n].train) * self.block_size,
                            "epochs": tokens[n] / (len(sources[n].train) * self.block_size)} for n in spec.mixture},
        }, indent=1))
        tenth = max(1, steps // 10)
        metrics = {"train_loss_first": float(np.mean(losses[:tenth])), "train_loss_last": float(np.mean(losses[-tenth:])),
                   **{f"tokens_{n}": float(t) for n, t in tokens.items()}}
        return metrics, {"train_seconds": seconds, "train_cpu_seconds": cpu_seconds, "tokens_per_second": trained / seconds}

    # -- pieces -------------------------------------------------------------------------------------
    def load_sources(self, spec: RunSpec, tokenizer) -> dict:
        """Every source of the spec, tokenized, packed and split (``PackedSource`` by name)."""
        from mixopt.cache import cache_dir
        from mixopt.runners import microanneal_data as data

        key = data.tokenizer_fingerprint(tokenizer)
        return {
            name: data.load_source(name, self._paths(spec, name), tokenizer, key, self.block_size,
                                   self.heldout_blocks, cache_dir() / "tokens")
            for name in spec.mixture
        }

    def _checkpoint(self, spec: RunSpec) -> Path:
        path = spec.model or self.model
        if path is None:
            return default_assets().base_model()
        if not (Path(path) / "config.json").is_file():
            raise RunFailed(f"fidelity '{spec.fidelity}': no transformers checkpoint (config.json) at {path}")
        return Path(path)

    def _paths(self, spec: RunSpec, name: str) -> tuple[str, ...]:
        paths = spec.source_paths.get(name) or ()
        if paths:
            return tuple(paths)
        assets = default_assets()
        if name not in assets.sources:
            raise RunFailed(f"source '{name}': no paths given and no demo source of that name: set sources[].paths")
        return (str(assets.source(name)),)

    def _evaluate(self, model, tokenizer, sources: dict, bf16: bool) -> dict[str, float]:
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
        if self.sft_probe:
            metrics["sft_answer_loss"] = self._sft_probe(model, tokenizer, bf16, max_length)
        return metrics

    def _tasks_dir(self) -> Path | None:
        if self.tasks is None:
            return None
        if self.tasks == "demo":
            return default_assets().tasks_dir()
        if not Path(self.tasks).is_dir():
            raise RunFailed(f"runner option tasks: no folder at {self.tasks}")
        return Path(self.tasks)

    def _sft_probe(self, model, tokenizer, bf16: bool, max_length: int) -> float:
        """Fine-tune a copy on instruction pairs (loss on answers only), then its answer loss on others."""
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
