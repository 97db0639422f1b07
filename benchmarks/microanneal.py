"""Throughput of the microanneal runner against a plain PyTorch run, measured in one process: whole runs
(load, select, train, evaluate) and their training loops, at the default study's size.

Both sides read the same pre-tokenized sources: the demo's six, tokenized once here into token files
(``.npy``, uint16: what a data pipeline writes), memory-mapped. A runner run is ``MicroannealRunner.run``
with the default study's runner options and microanneal budget (131,072 tokens): load the checkpoint and
tokenizer, open and split the sources, select the mixture's blocks, train, evaluate (held-out BPB per
source, the demo tasks), write its files. The plain run does the same itself, from torch and numpy: loads
the checkpoint and tokenizer, memory-maps the same files, cuts blocks and holds out the same last blocks,
draws the mixture's blocks with its own seeded permutations and gathers them into memory, trains with a
hand-written loop (AdamW, linear warmup then decay to 0, gradient clipping, bf16 autocast where the CPU
has it), and evaluates with the same evaluation functions (``microanneal_eval``), so that the evaluation
costs the same on both sides and the ratio measures what the runner adds around it.

Pairs alternate their order (runner-plain, plain-runner, ...) so that drifting load hits both alike; the
figures are the medians of the per-pair ratios plain seconds / runner seconds (above 1: the runner is
faster), for the training loop (target >= 0.95) and the whole run (target >= 0.9), by the wall clock and
by CPU time (steadier when other programs share the cores).

    python -m mixopt.benchmarks.microanneal [--repeats 4] [--tokens 131072] [--threads 1] [--model DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

MIXTURE = {"web": 0.3, "books": 0.1, "code": 0.2, "docs": 0.1, "math": 0.2, "instruct": 0.1}
DEFAULT_STUDY = Path(__file__).resolve().parents[1] / "studies" / "default" / "study.yaml"


def plain_loop(model, blocks, batch_size: int, learning_rate: float, warmup_steps: int, bf16: bool) -> None:
    """Train with a hand-written torch loop on blocks ``(steps * batch_size, L)``."""
    import torch

    steps = len(blocks) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.0)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (steps - step) / max(1, steps - warmup_steps))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    for step in range(steps):
        x = torch.from_numpy(blocks[step * batch_size : (step + 1) * batch_size]).long()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
    model.eval()


def plain_run(checkpoint: Path, token_files: dict[str, Path], tokens: float, runner, tasks_dir: Path | None,
              bf16: bool, seed: int) -> dict[str, float]:
    """A whole microanneal written plainly (see the module docstring); returns its seconds and CPU seconds,
    whole and of the training loop, and its metrics."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mixopt.runners import microanneal_eval as ev

    started, cpu_started = time.perf_counter(), time.process_time()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    length, batch = runner.block_size, runner.batch_size
    steps = int(tokens // (length * batch))
    train, heldout = {}, {}
    for name, path in token_files.items():
        ids = np.load(path, mmap_mode="r")
        blocks = ids[: len(ids) // length * length].reshape(-1, length)
        held = max(1, min(runner.heldout_blocks, len(blocks) // 10))
        train[name], heldout[name] = blocks[:-held], np.asarray(blocks[-held:], dtype=np.int32)
    rng = np.random.default_rng(seed)
    total = steps * batch
    counts = {name: int(w * total) for name, w in MIXTURE.items()}
    counts[max(MIXTURE, key=MIXTURE.__getitem__)] += total - sum(counts.values())
    rows = np.concatenate([train[n][np.sort(rng.permutation(len(train[n]))[:c])] for n, c in counts.items()])
    rows = rows[rng.permutation(len(rows))].astype(np.int32)
    torch.manual_seed(seed)
    train_started, train_cpu_started = time.perf_counter(), time.process_time()
    plain_loop(model, rows, batch, runner.learning_rate, int(runner.warmup_fraction * steps), bf16)
    train_seconds, train_cpu = time.perf_counter() - train_started, time.process_time() - train_cpu_started
    byte_lengths = ev.token_byte_lengths(tokenizer)
    metrics = {f"bpb_{n}": ev.heldout_bpb(model, h, byte_lengths, runner.eval_batch_size, bf16) for n, h in heldout.items()}
    max_length = min(model.config.max_position_embeddings, 4 * length)
    for path in sorted(tasks_dir.glob("*.jsonl")) if tasks_dir else ():
        items = ev.load_items(path, runner.task_items)
        scores = ev.score_items(model, tokenizer, items, runner.eval_batch_size, bf16, max_length)
        metrics.update({f"{path.stem}_{k}": v for k, v in scores.items()})
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
            "train_seconds": train_seconds, "train_cpu_seconds": train_cpu, **metrics}


def token_files(names, tokenizer, folder: Path) -> dict[str, Path]:
    """The demo sources tokenized once into ``<name>.npy`` token files (uint16; documents end with EOS)."""
    from mixopt.runners import microanneal_data as data
    from mixopt.runners.microanneal import default_assets

    files = {}
    for name in names:
        pieces = list(data.tokenize_documents(data.read_documents(name, [str(default_assets().source(name))]), tokenizer))
        files[name] = folder / f"{name}.npy"
        np.save(files[name], np.concatenate(pieces).astype(np.uint16))
    return files


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="runner/plain pairs (the order alternates)")
    parser.add_argument("--tokens", type=float, default=None, help="training tokens per run (default: the study's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the demo base model)")
    parser.add_argument("--study", default=str(DEFAULT_STUDY), help="the study whose runner options and budget to use")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoTokenizer

    from mixopt.config import load_config
    from mixopt.runners import RUNNERS
    from mixopt.runners.microanneal import MicroannealRunner
    from mixopt.runners.training import quiet_libraries, resolve_bf16, resolve_device
    from mixopt.trials import RunSpec

    torch.set_num_threads(args.threads)
    quiet_libraries()
    config = load_config(args.study)
    runner = RUNNERS.create(config.runner.name, {**config.runner.options, "model": args.model, "threads": args.threads})
    if not isinstance(runner, MicroannealRunner):
        raise SystemExit(f"{args.study}: the study's runner is {config.runner.name}, not microanneal")
    tokens = args.tokens or config.search_fidelity.tokens
    bf16 = resolve_bf16(runner.bf16, resolve_device(runner.device))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        probe = RunSpec(trial=0, mixture=MIXTURE, fidelity="bench", tokens=tokens, seed=0, output_dir=str(folder / "run"))
        checkpoint = runner._checkpoint(probe)
        files = token_files(MIXTURE, AutoTokenizer.from_pretrained(checkpoint), folder)
        spec = RunSpec(trial=0, mixture=MIXTURE, fidelity="bench", tokens=tokens, seed=0, output_dir=str(folder / "run"),
                       source_paths={n: (str(p),) for n, p in files.items()})
        tasks_dir = runner._tasks_dir()

        def run_plain() -> dict[str, float]:
            return plain_run(checkpoint, files, tokens, runner, tasks_dir, bf16, spec.seed)

        def run_runner() -> dict[str, float]:
            return runner.run(spec).cost

        run_runner(), run_plain()  # warm caches, imports and kernels once, unmeasured
        rows = []
        for pair in range(args.repeats):
            if pair % 2 == 0:
                ours, plain = run_runner(), run_plain()
            else:
                plain, ours = run_plain(), run_runner()
            rows.append({f"{kind}{clock}": plain[f"{kind}{clock}"] / ours[f"{kind}{clock}"]
                         for kind in ("train_", "") for clock in ("seconds", "cpu_seconds")}
                        | {"runner_seconds": ours["seconds"], "plain_seconds": plain["seconds"],
                           "runner_train_seconds": ours["train_seconds"], "plain_train_seconds": plain["train_seconds"]})
    steps = int(tokens // (runner.block_size * runner.batch_size))
    print(f"microanneal runner against a plain PyTorch run: {steps * runner.block_size * runner.batch_size:,} training "
          f"tokens per run ({steps} steps of {runner.batch_size} x {runner.block_size}), options of {args.study}, "
          f"{args.threads} thread(s), bf16 autocast {'on' if bf16 else 'off'}, token files memory-mapped by both")
    print(f"{'pair':>4} {'runner s':>9} {'plain s':>8} {'whole (wall)':>13} {'whole (CPU)':>12} "
          f"{'runner train s':>15} {'plain train s':>14} {'train (wall)':>13} {'train (CPU)':>12}")
    for i, r in enumerate(rows):
        print(f"{i:>4} {r['runner_seconds']:>9.1f} {r['plain_seconds']:>8.1f} {r['seconds']:>13.3f} {r['cpu_seconds']:>12.3f} "
              f"{r['runner_train_seconds']:>15.1f} {r['plain_train_seconds']:>14.1f} {r['train_seconds']:>13.3f} "
              f"{r['train_cpu_seconds']:>12.3f}")
    summary = {key: statistics.median(r[key] for r in rows)
               for key in ("seconds", "cpu_seconds", "train_seconds", "train_cpu_seconds")}
    print(f"median ratio plain / runner: whole run {summary['seconds']:.3f} wall-clock, {summary['cpu_seconds']:.3f} "
          f"CPU time (target >= 0.9); training loop {summary['train_seconds']:.3f} wall-clock, "
          f"{summary['train_cpu_seconds']:.3f} CPU time (target >= 0.95)")
    return {"whole": summary["seconds"], "whole_cpu": summary["cpu_seconds"], "train": summary["train_seconds"],
            "train_cpu": summary["train_cpu_seconds"], "rows": rows}


if __name__ == "__main__":
    main()
