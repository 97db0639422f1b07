"""Training throughput and model FLOPs utilisation (MFU) of the runner's training loop on GPUs.

A ~124M-parameter Llama-style model (hidden 768, 12 layers, 12 heads, SwiGLU 2048, vocabulary 50,304, tied
embeddings) is built from a config (no download) and trained on random token blocks in bf16 autocast by
the runner's own code (``mixopt.runners.training.train_blocks``: AdamW, warmup then linear decay, gradient
clipping, accumulation), in one process and, when N > 1 GPUs are visible, in N processes (DDP, or FSDP with
``--strategy fsdp``) at the same global batch. Tokens/s are measured from the end of the warm-up steps to the last step (rank 0's clock;
the ranks step together).

MFU = tokens/s x FLOPs per token / (processes x peak dense bf16 FLOP/s of the device). FLOPs per token of
training (forward + backward = 3 x forward, the PaLM appendix B count): 6 N + 12 x layers x hidden x seq,
with N the parameters that take part in matrix products (all of them, minus the input embedding table
when it is not tied to the output head) and the second term the attention scores and their use
(causal masking not discounted). Peaks come from ``PEAK_BF16_TFLOPS`` by device name, or ``--peak-tflops``.

    python -m mixopt.benchmarks.gpu [--steps 300] [--seq 1024] [--micro-batch 16] [--batch B] [--peak-tflops T]
    python -m mixopt.benchmarks.gpu --tiny [--processes 1 2] [--strategy ddp fsdp]   # CPU smoke test: tiny model
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets; first match of the
# device name wins, so the more specific names come first.
PEAK_BF16_TFLOPS = [
    ("B200", 2250.0), ("H200", 989.0), ("GH200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("H800", 989.0),
    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("A10G", 70.0),
    ("A10", 125.0), ("RTX 4090", 165.0), ("RTX 6000 Ada", 364.0), ("A6000", 155.0),
]
MODEL = dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
             num_key_value_heads=12, vocab_size=50304, tie_word_embeddings=True)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            vocab_size=512, tie_word_embeddings=True)


def peak_tflops(device_name: str) -> float | None:
    """The table's dense bf16 peak for a device name (None: not in the table)."""
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key.lower() in device_name.lower()), None)


def flops_per_token(matmul_parameters: int, layers: int, hidden: int, seq: int) -> float:
    """Training FLOPs per token: 6 N + 12 x layers x hidden x seq (PaLM, appendix B)."""
    return 6.0 * matmul_parameters + 12.0 * layers * hidden * seq


def matmul_parameters(model) -> int:
    """Parameters that take part in matrix products: all, minus an untied input embedding (a lookup)."""
    total = sum(p.numel() for p in model.parameters())
    tied = model.config.tie_word_embeddings
    return total if tied else total - model.get_input_embeddings().weight.numel()


def measure(folder: Path, blocks: np.ndarray, device: str, processes: int, strategy: str, steps: int, batch: int,
            micro_batch: int, warmup_steps: int, bf16: bool, threads: int) -> dict:
    """Train the saved model in ``folder`` on ``blocks`` with the runner's loop; tokens/s after warm-up."""
    import torch
    from transformers import AutoModelForCausalLM

    from mixopt.runners.training import BlockTraining, batch_layout, train_blocks

    model = AutoModelForCausalLM.from_pretrained(folder / "model", dtype=torch.float32)
    if processes == 1:
        model.to(device)
    micro, accumulation = batch_layout(batch, processes, micro_batch)
    job = BlockTraining(str(folder / "model"), steps, batch, 6e-4, max(1, steps // 20), 0.1, bf16, device, processes,
                        micro, threads, seed=0, state=str(folder / f"state-{processes}-{strategy}.pt") if processes > 1 else None,
                        strategy=strategy)
    torch.manual_seed(0)
    trained = train_blocks(job, blocks, model, folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()  # the next layout's rank 0 shares this GPU
    measured = trained.clock[-1] - trained.clock[warmup_steps - 1]
    tokens = (steps - warmup_steps) * batch * blocks.shape[1]
    return {"processes": processes, "strategy": strategy if processes > 1 else "-", "micro_batch": micro, "accumulation": accumulation, "steps": steps,
            "tokens_per_second": tokens / measured, "loop_seconds": trained.seconds,
            "loss_first": trained.losses[0], "loss_last": trained.losses[-1]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test: a tiny model, seq 64, 8 steps")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default 300; tiny 8)")
    parser.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 1024; tiny 64)")
    parser.add_argument("--micro-batch", type=int, default=None,
                        help="sequences per forward pass and process (default 16; tiny 2)")
    parser.add_argument("--batch", type=int, default=None,
                        help="global batch in sequences, the same for every process count (default: 2 x micro-batch "
                             "x the largest process count)")
    parser.add_argument("--warmup", type=int, default=None, help="steps left out of the timing (default 10%%)")
    parser.add_argument("--processes", type=int, nargs="*", default=None,
                        help="process counts to run (default: 1, and the GPU count when above 1)")
    parser.add_argument("--strategy", nargs="+", default=["ddp"], choices=["ddp", "fsdp"],
                        help="how several processes split the run (each is measured; default ddp)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s per device (override)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args(argv)

    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    transformers.utils.logging.disable_progress_bar()
    tiny = args.tiny
    steps = args.steps or (8 if tiny else 300)
    seq = args.seq or (64 if tiny else 1024)
    micro_batch = args.micro_batch or (2 if tiny else 16)
    warmup = args.warmup if args.warmup is not None else max(1, steps // 10)
    torch.set_num_threads(args.threads)
    if tiny:
        device, name, bf16 = "cpu", "CPU", False
    elif torch.cuda.is_available():
        device, name, bf16 = "cuda", torch.cuda.get_device_name(0), torch.cuda.is_bf16_supported()
    else:
        raise SystemExit("no CUDA device is visible: run with --tiny for the CPU smoke test")
    gpus = torch.cuda.device_count() if device == "cuda" else 0
    counts = args.processes or ([1, gpus] if gpus > 1 else [1])
    batch = args.batch or 2 * micro_batch * max(counts)
    peak = args.peak_tflops or (None if tiny else peak_tflops(name))

    config = LlamaConfig(max_position_embeddings=seq, **(TINY if tiny else MODEL))
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    n_params, n_matmul = sum(p.numel() for p in model.parameters()), matmul_parameters(model)
    per_token = flops_per_token(n_matmul, config.num_hidden_layers, config.hidden_size, seq)
    blocks = np.random.default_rng(0).integers(0, config.vocab_size, size=(steps * batch, seq), dtype=np.int32)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(Path(folder) / "model")
        del model
        for processes in counts:
            for strategy in args.strategy if processes > 1 else ["ddp"]:
                row = measure(Path(folder), blocks, device, processes, strategy, steps, batch, micro_batch, warmup,
                              bf16, args.threads)
                row["mfu"] = row["tokens_per_second"] * per_token / (processes * peak * 1e12) if peak else None
                rows.append(row)
    print(f"training throughput on {name} ({max(gpus, 1)} device(s) visible), peak bf16 "
          f"{f'{peak:g} TFLOP/s' if peak else 'unknown (set --peak-tflops)'}; model: {n_matmul / 1e6:.2f}M matmul "
          f"parameters ({n_params / 1e6:.2f}M in all), seq {seq}, global batch {batch} x {seq} "
          f"tokens, bf16 autocast {'on' if bf16 else 'off'}, {per_token / 1e6:.0f} MFLOPs per token; "
          f"{steps} steps, the first {warmup} untimed")
    print(f"{'processes':>9} {'strategy':>8} {'micro x accum':>13} {'tokens/s':>12} {'tokens/s/dev':>13} {'MFU':>7} {'loss first->last':>17}")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        print(f"{r['processes']:>9} {r['strategy']:>8} {str(r['micro_batch']) + ' x ' + str(r['accumulation']):>13} "
              f"{r['tokens_per_second']:>12,.0f} {r['tokens_per_second'] / r['processes']:>13,.0f} {mfu:>7} "
              f"{r['loss_first']:>8.3f}->{r['loss_last']:.3f}")
    return {"device": name, "peak_tflops": peak, "flops_per_token": per_token, "matmul_parameters": n_matmul, "rows": rows}


if __name__ == "__main__":
    main()
