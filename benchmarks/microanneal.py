"""Throughput of the microanneal runner against a plain PyTorch training loop, measured in one process.

Both train the same checkpoint on the same blocks (the runner's own mixture of the demo sources) with
the same settings: AdamW, linear warmup then decay to 0, gradient clipping, bf16 autocast where the CPU
supports it, the same torch thread count. The plain loop is written here from torch alone. Pairs
alternate their order (runner-plain, plain-runner, ...) so that drifting load hits both alike; the
figure is the median of the per-pair ratios of training tokens per second (target >= 0.95), by the
wall clock and by CPU time (the second is steadier when other programs share the cores).

    python -m mixopt.benchmarks.microanneal [--tokens 65536] [--repeats 4] [--threads 1] [--model DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

MIXTURE = {"web": 0.3, "books": 0.1, "code": 0.2, "docs": 0.1, "math": 0.2, "instruct": 0.1}


def plain_loop(model, blocks, batch_size: int, learning_rate: float, warmup_steps: int, bf16: bool) -> tuple[float, float]:
    """Train with a hand-written torch loop; returns training (seconds, CPU seconds)."""
    import torch

    steps = len(blocks) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.0)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (steps - step) / max(1, steps - warmup_steps))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    started, cpu_started = time.perf_counter(), time.process_time()
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
    return time.perf_counter() - started, time.process_time() - cpu_started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=float, default=65536, help="training tokens per run")
    parser.add_argument("--repeats", type=int, default=4, help="runner/plain pairs (the order alternates)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the demo base model)")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mixopt.runners import microanneal_data as data
    from mixopt.runners.base import RunSpec
    from mixopt.runners.microanneal import MicroannealRunner, bf16_supported

    torch.set_num_threads(args.threads)
    runner = MicroannealRunner(model=args.model, threads=args.threads, tasks=None)
    bf16 = bf16_supported()
    with tempfile.TemporaryDirectory() as out:
        spec = RunSpec(trial=0, mixture=MIXTURE, fidelity="bench", tokens=args.tokens, seed=0, output_dir=out)
        checkpoint = runner._checkpoint(spec)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        steps = int(args.tokens // (runner.block_size * runner.batch_size))
        tokens = steps * runner.block_size * runner.batch_size
        sources = runner.load_sources(spec, tokenizer)
        limits = dict.fromkeys(MIXTURE, runner.default_max_repetition)
        blocks, _ = data.mixture_blocks(sources, MIXTURE, steps * runner.batch_size, limits, spec.seed)

        def run_plain() -> tuple[float, float]:
            model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
            torch.manual_seed(spec.seed)
            return plain_loop(model, blocks, runner.batch_size, runner.learning_rate,
                              int(runner.warmup_fraction * steps), bf16)

        def run_runner() -> tuple[float, float]:
            cost = runner.run(spec).cost
            return cost["train_seconds"], cost["train_cpu_seconds"]

        run_runner(), run_plain()  # warm caches, imports and kernels once, unmeasured
        rows = []
        for pair in range(args.repeats):
            if pair % 2 == 0:
                ours, plain = run_runner(), run_plain()
            else:
                plain, ours = run_plain(), run_runner()
            rows.append((tokens / ours[0], tokens / plain[0], plain[0] / ours[0], plain[1] / ours[1]))
    print(f"microanneal throughput, {tokens:,} training tokens per run, {args.threads} thread(s), "
          f"bf16 autocast {'on' if bf16 else 'off'}")
    print(f"{'pair':>4} {'runner tok/s':>13} {'plain tok/s':>12} {'ratio (wall)':>13} {'ratio (CPU time)':>17}")
    for i, (ours, plain, ratio, cpu_ratio) in enumerate(rows):
        print(f"{i:>4} {ours:>13,.0f} {plain:>12,.0f} {ratio:>13.3f} {cpu_ratio:>17.3f}")
    wall = statistics.median(r[2] for r in rows)
    cpu = statistics.median(r[3] for r in rows)
    print(f"median ratio runner / plain loop: {wall:.3f} wall-clock, {cpu:.3f} CPU time (target >= 0.95)")
    return {"ratio": wall, "cpu_ratio": cpu, "rows": rows}


if __name__ == "__main__":
    main()
