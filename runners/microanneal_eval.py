"""Evaluation for the microanneal runner: held-out bits per byte and likelihood-ranked multiple choice.

Bits per byte (BPB) = summed next-token loss in nats / ln 2 / bytes of the predicted text; a special token
(end of text) counts as one byte. Multiple-choice items (``{"context", "choices", "answer"}``) are scored
as OLMES scores base models: each choice's summed log-likelihood after the context; accuracy ranks the
choices by log-likelihood per byte, and the task's BPB is that of the correct choice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mixopt.runners.training import autocast


def token_byte_lengths(tokenizer) -> np.ndarray:
    """Bytes of text each token id stands for, shape ``(V,)``; special tokens count as one.

    Exact for byte-level BPE (each character of a token names one byte); other tokenizers are measured by
    decoding each token alone, which miscounts tokens that hold part of a character."""
    from tokenizers import decoders
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    special = set(tokenizer.all_special_ids)
    byte_level = isinstance(tokenizer.backend_tokenizer.decoder, decoders.ByteLevel)
    byte_chars = set(bytes_to_unicode().values())
    lengths = np.ones(len(tokenizer), dtype=np.int64)
    for token_id, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if token_id in special:
            continue
        if byte_level and set(token) <= byte_chars:
            lengths[token_id] = len(token)
        else:
            lengths[token_id] = len(tokenizer.decode([token_id]).encode("utf-8"))
    return lengths


@torch.no_grad()
def heldout_bpb(model, blocks: np.ndarray, byte_lengths: np.ndarray, batch_size: int, bf16: bool) -> float:
    """BPB of the model on held-out blocks ``(n, L)``: every token but each block's first is predicted."""
    nats, n_bytes = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(blocks[start : start + batch_size])).long()
        with autocast(bf16, model.device.type):
            logits = model(input_ids=x.to(model.device)).logits
        losses = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), x[:, 1:].to(model.device), reduction="sum")
        nats += float(losses)
        n_bytes += int(byte_lengths[x[:, 1:].numpy()].sum())
    return nats / math.log(2) / n_bytes


def load_items(path: Path, limit: int | None = None) -> list[dict]:
    with open(path) as handle:
        items = [json.loads(line) for line in handle if line.strip()]
    return items[:limit] if limit else items


@torch.no_grad()
def continuation_logprobs(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int, bf16: bool,
                          max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-probability ``(n,)`` and token count ``(n,)`` of each continuation after its context.

    Contexts are cut from the left so that context + continuation fit in ``max_length`` tokens."""
    encoded = []
    for context, continuation in pairs:
        ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"][:max_length - 1]
        ctx = [tokenizer.eos_token_id] + ctx  # a document boundary before the context, as in training
        ctx = ctx[max(0, len(ctx) + len(cont) - max_length) :]
        encoded.append((ctx + cont, len(ctx)))
    order = np.argsort([len(ids) for ids, _ in encoded], kind="stable")
    logprob, count = np.zeros(len(pairs)), np.zeros(len(pairs), dtype=np.int64)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(encoded[i][0]) for i in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            seq = encoded[i][0]
            ids[r, : len(seq)] = torch.tensor(seq)
            mask[r, : len(seq)] = 1
        ids, mask = ids.to(model.device), mask.to(model.device)
        with autocast(bf16, model.device.type):
            logits = model(input_ids=ids, attention_mask=mask).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(2, ids[:, 1:, None])[..., 0].cpu()
        for r, i in enumerate(rows):
            seq, n_ctx = encoded[i]
            logprob[i] = float(logp[r, n_ctx - 1 : len(seq) - 1].sum())
            count[i] = len(seq) - n_ctx
    return logprob, count


def choice_logprobs(model, tokenizer, items: Sequence[dict], batch_size: int, bf16: bool,
                    max_length: int) -> list[np.ndarray]:
    """Each multiple-choice item's summed log-likelihood of every choice after its context, ``(k_i,)`` per item."""
    pairs = [(item["context"], choice) for item in items for choice in item["choices"]]
    logprob, _ = continuation_logprobs(model, tokenizer, pairs, batch_size, bf16, max_length)
    return np.split(logprob, np.cumsum([len(item["choices"]) for item in items])[:-1])


def predicted_choices(items: Sequence[dict], logprobs: Sequence[np.ndarray]) -> np.ndarray:
    """The choice each item ranks first by log-likelihood per byte of the choice, shape ``(n,)``."""
    return np.array([int(np.argmax(lp / [len(c.encode("utf-8")) for c in item["choices"]]))
                     for item, lp in zip(items, logprobs, strict=True)], dtype=np.int64)


def score_items(model, tokenizer, items: Sequence[dict], batch_size: int, bf16: bool, max_length: int) -> dict[str, float]:
    """``{"acc": ..., "bpb": ...}`` over multiple-choice items (mean over items)."""
    logprobs = choice_logprobs(model, tokenizer, items, batch_size, bf16, max_length)
    answers = np.array([item["answer"] for item in items])
    bpb = [-lp[item["answer"]] / math.log(2) / len(item["choices"][item["answer"]].encode("utf-8"))
           for item, lp in zip(items, logprobs, strict=True)]
    return {"acc": float(np.mean(predicted_choices(items, logprobs) == answers)), "bpb": float(np.mean(bpb))}


def answer_loss(model, tokenizer, rows: Sequence[dict], batch_size: int, bf16: bool,
                max_length: int) -> tuple[float, float]:
    """Loss in nats per answer token over ``{"prompt", "answer"}`` rows (summed over rows, divided by
    their answer tokens) and its standard error over the rows (``ratio_stderr``)."""
    logprob, count = continuation_logprobs(
        model, tokenizer, [(r["prompt"], r["answer"]) for r in rows], batch_size, bf16, max_length
    )
    return float(-logprob.sum() / count.sum()), ratio_stderr(-logprob, count)


def ratio_stderr(numerators: np.ndarray, denominators: np.ndarray) -> float:
    """Standard error of ``sum(numerators) / sum(denominators)`` over ``(n,)`` sampled items (the delta
    method for a ratio of sums, as lm-eval's per-token metrics treat items); NaN below two items."""
    n = len(numerators)
    if n < 2:
        return float("nan")
    ratio = numerators.sum() / denominators.sum()
    residuals = numerators - ratio * denominators
    return float(np.sqrt(n / (n - 1) * np.sum(residuals**2)) / denominators.sum())
