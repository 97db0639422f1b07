"""The training loop of continued training on CPU (or any torch device): what a microanneal run and the
demo's base-model pretraining both run, so both train the same way.

``anneal`` trains with AdamW, a linear warmup, then a linear decay of the learning rate to 0 (the OLMo
midtraining anneal), gradient clipping and optional bf16 autocast; ``block_batches`` and ``sft_batches``
feed it causal-LM batches of packed token blocks and of instruction pairs (loss on the answers only).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["anneal", "bf16_supported", "block_batches", "quiet_libraries", "sft_batches"]


def quiet_libraries() -> None:
    """No per-file progress bars from transformers and datasets inside runs (the CLI shows progress)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def bf16_supported() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX)."""
    from mixopt.compat import mkldnn_bf16_supported

    return mkldnn_bf16_supported()


def block_batches(blocks: np.ndarray, batch_size: int) -> Iterator[dict]:
    """Consecutive ``(batch_size, L)`` batches of blocks ``(n, L)`` as causal-LM inputs (labels = inputs)."""
    import torch

    for start in range(0, len(blocks) - batch_size + 1, batch_size):
        x = torch.from_numpy(np.ascontiguousarray(blocks[start : start + batch_size])).long()
        yield {"input_ids": x, "labels": x}


def anneal(model, batches: Sequence[dict] | Iterator[dict], steps: int, learning_rate: float, warmup_steps: int,
           weight_decay: float = 0.0, bf16: bool = False, clip: float = 1.0) -> list[float]:
    """Train ``model`` for ``steps`` batches with AdamW, linear warmup then linear decay to 0; returns the
    loss of every step."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from mixopt.runners.microanneal_eval import autocast

    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup_steps, steps)
    model.train()
    losses = []
    for _, batch in zip(range(steps), batches, strict=False):
        with autocast(bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach().item())
    model.eval()
    return losses


def sft_batches(tokenizer, rows: Sequence[dict], batch_size: int, max_length: int) -> Iterator[dict]:
    """Endless padded batches of ``prompt + answer`` with the loss on answer tokens only."""
    import torch

    encoded = []
    for row in rows:
        prompt = [tokenizer.eos_token_id] + tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        answer = tokenizer(row["answer"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt + answer)[-max_length:]
        encoded.append((ids, max(0, len(ids) - len(answer))))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    while True:
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, (ids, n_prompt) in enumerate(chunk):
                input_ids[r, : len(ids)] = torch.tensor(ids)
                labels[r, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
                mask[r, : len(ids)] = 1
            yield {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
