"""The demo's tokenizer and base model: a byte-level BPE trained locally and a tiny Llama-style model
"pretrained" from scratch on the demo's web, books and code sources, cached as a transformers checkpoint
folder (safetensors) that the microanneal runner continues from.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TypedDict

import numpy as np

from mixopt.cache import build_once, cache_dir, verify
from mixopt.demo.data import ensure_data

VERSION = "v1"
VOCAB_SIZE = 8192
TOKENIZER_BYTES = 12_000_000  # text the tokenizer is trained on, spread over all sources
EOS, PAD = "<|endoftext|>", "<|pad|>"


class ModelShape(TypedDict):
    """``LlamaConfig`` arguments of the base model (stored in its manifest)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int


class Pretraining(TypedDict):
    """How the base model is pretrained (stored in its manifest)."""

    mixture: dict[str, float]
    tokens: int
    block_size: int
    batch_size: int
    learning_rate: float
    warmup_fraction: float
    seed: int


MODEL = ModelShape(hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=4, max_position_embeddings=512)
PRETRAIN = Pretraining(mixture={"web": 0.4, "books": 0.3, "code": 0.3}, tokens=1_000_000, block_size=128,
                       batch_size=16, learning_rate=3e-3, warmup_fraction=0.05, seed=0)


def base_dir() -> Path:
    return cache_dir() / f"demo-base-{VERSION}"


def ensure_base(force: bool = False, threads: int = 1) -> Path:
    """The base checkpoint folder (tokenizer included), trained first when missing."""
    root = build_once(base_dir(), lambda tmp: _build(tmp, threads), rebuild=force, what="the demo base model")
    verify(root)
    return root


def train_tokenizer(texts, vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE as a transformers fast tokenizer (end-of-text and pad special tokens)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD],
                            show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, pad_token=PAD)


def _sample_texts(paths: list[Path], budget: int):
    """Documents from each file in turn until each has given ``budget / len(paths)`` characters."""
    share = budget // len(paths)
    for path in paths:
        taken = 0
        with open(path) as handle:
            for line in handle:
                text = json.loads(line)["text"]
                yield text[: share - taken]
                taken += len(text)
                if taken >= share:
                    break


def _build(root: Path, threads: int) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mixopt.runners import microanneal_data as data
    from mixopt.runners.microanneal import MicroannealRunner
    from mixopt.runners.training import anneal, bf16_supported, block_batches, quiet_libraries

    torch.set_num_threads(threads)
    quiet_libraries()
    demo = ensure_data()
    started, cpu_started = time.perf_counter(), time.process_time()
    tokenizer = train_tokenizer(_sample_texts([demo.source(s) for s in ("web", "books", "code", "docs", "math",
                                                                        "instruct")], TOKENIZER_BYTES))
    tokenizer_seconds = time.perf_counter() - started

    p = PRETRAIN
    config = LlamaConfig(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True, **MODEL)
    torch.manual_seed(p["seed"])
    model = LlamaForCausalLM(config)
    key = data.tokenizer_fingerprint(tokenizer)
    steps = p["tokens"] // (p["block_size"] * p["batch_size"])
    # The runner's default held-out blocks stay unseen (a run holding out more would see part of them).
    heldout = MicroannealRunner.heldout_blocks
    sources = {name: data.load_source(name, [str(demo.source(name))], tokenizer, key, p["block_size"], heldout,
                                      cache_dir() / "tokens") for name in p["mixture"]}
    blocks, _ = data.mixture_blocks(sources, p["mixture"], steps * p["batch_size"],
                                    dict.fromkeys(p["mixture"], 1.0), p["seed"])
    started = time.perf_counter()
    losses = anneal(model, block_batches(blocks, p["batch_size"]), steps, p["learning_rate"],
                    int(p["warmup_fraction"] * steps), bf16=bf16_supported())
    train_seconds = time.perf_counter() - started
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return {"model": MODEL, "parameters": sum(t.numel() for t in model.parameters()), "pretrain": p,
            "tokenizer_seconds": tokenizer_seconds, "train_seconds": train_seconds,
            "cpu_seconds": time.process_time() - cpu_started,
            "tokens_per_second": steps * p["block_size"] * p["batch_size"] / train_seconds,
            "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:]))}
