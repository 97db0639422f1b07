"""Data for the microanneal runner: documents -> token blocks per source -> a mixture's training blocks.

Each source is tokenized once (documents joined by the end-of-text token) and packed into fixed-length
blocks of ``block_size`` tokens, so a mixture weight is a share of *tokens*, not of documents. The last
blocks of each source are held out for evaluation. Packed sources are cached as ``.npy`` files keyed by
the tokenizer, the files' checksums and the block size.

Arrays: blocks ``(n_blocks, block_size)`` of token ids (int32).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixopt.cache import locked, sha256_file
from mixopt.errors import RunFailed

TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py")
TOKENIZE_BATCH = 64  # documents per tokenizer call


@dataclass(frozen=True)
class PackedSource:
    """A source's blocks: ``train`` ``(n, L)`` and ``heldout`` ``(m, L)``, both int32."""

    name: str
    train: np.ndarray
    heldout: np.ndarray


def read_documents(name: str, paths: Sequence[str]) -> Iterator[str]:
    """The texts of a source's files: ``.jsonl``/``.json`` (a ``text`` field), ``.parquet`` (a ``text``
    column), plain text files (one document each) or folders saved with ``datasets.save_to_disk``."""
    import datasets

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            try:
                table = datasets.load_from_disk(str(path))
            except FileNotFoundError:
                raise RunFailed(f"source '{name}': {path} is a folder but not a dataset saved with save_to_disk") from None
        elif not path.is_file():
            raise RunFailed(f"source '{name}': no file or folder at {path}: fix sources[].paths")
        elif path.suffix in (".jsonl", ".json"):
            table = datasets.Dataset.from_json(str(path))
        elif path.suffix == ".parquet":
            table = datasets.Dataset.from_parquet(str(path))
        elif path.suffix in TEXT_SUFFIXES:
            yield path.read_text("utf-8", "replace")
            continue
        else:
            raise RunFailed(f"source '{name}': cannot read {path.name}: use .jsonl, .parquet, text files or a saved dataset")
        if isinstance(table, datasets.DatasetDict):
            table = table[next(iter(table))]
        if "text" not in table.column_names:
            raise RunFailed(f"source '{name}': {path} has no 'text' column (columns: {table.column_names})")
        yield from table["text"]


def tokenize_documents(documents: Iterator[str], tokenizer) -> np.ndarray:
    """One stream ``(T,)`` of token ids: every document followed by the end-of-text token."""
    eos = tokenizer.eos_token_id
    pieces: list[np.ndarray] = []
    batch: list[str] = []

    def flush() -> None:
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            pieces.append(np.asarray(ids + [eos], dtype=np.int32))
        batch.clear()

    for text in documents:
        if text:
            batch.append(text)
        if len(batch) == TOKENIZE_BATCH:
            flush()
    if batch:
        flush()
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)


def pack(stream: np.ndarray, block_size: int) -> np.ndarray:
    """Cut a token stream ``(T,)`` into ``(T // block_size, block_size)`` blocks (the tail is dropped)."""
    n = len(stream) // block_size
    return stream[: n * block_size].reshape(n, block_size)


def split_heldout(blocks: np.ndarray, heldout_blocks: int, max_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The last ``heldout_blocks`` blocks (at most ``max_fraction`` of the source, at least one) are held out."""
    n_heldout = max(1, min(heldout_blocks, int(len(blocks) * max_fraction)))
    return blocks[:-n_heldout], blocks[-n_heldout:]


def load_source(name: str, paths: Sequence[str], tokenizer, tokenizer_key: str, block_size: int,
                heldout_blocks: int, cache: Path) -> PackedSource:
    """Tokenized, packed and split blocks of one source (cached; the cache key covers every input)."""
    files = sorted(p for raw in paths for p in ([Path(raw)] if Path(raw).is_file() else sorted(Path(raw).rglob("*"))) if p.is_file())
    if not files:
        raise RunFailed(f"source '{name}': no files at {list(paths)}: fix sources[].paths")
    key = hashlib.sha256(json.dumps([tokenizer_key, block_size, [sha256_file(f) for f in files]]).encode()).hexdigest()[:24]
    path = cache / f"{name}-{key}.npy"
    with locked(cache / f"{name}-{key}.lock"):
        if not path.is_file():
            blocks = pack(tokenize_documents(read_documents(name, paths), tokenizer), block_size)
            np.save(path.with_suffix(".tmp.npy"), blocks)
            path.with_suffix(".tmp.npy").rename(path)
    blocks = np.load(path)
    if len(blocks) < 2:
        raise RunFailed(f"source '{name}': only {len(blocks)} block(s) of {block_size} tokens: add data")
    train, heldout = split_heldout(blocks, heldout_blocks)
    return PackedSource(name, train, heldout)


def tokenizer_fingerprint(tokenizer) -> str:
    """A key that changes whenever the tokenizer's vocabulary or rules change."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


# -- a mixture's training blocks (pure) -------------------------------------------------------------------
def allocate_blocks(mixture: dict[str, float], total_blocks: int) -> dict[str, int]:
    """Blocks per source, proportional to the weights, summing exactly to ``total_blocks`` (largest remainder)."""
    names = list(mixture)
    exact = np.array([mixture[n] for n in names], dtype=float) * total_blocks
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total_blocks - counts.sum()]] += 1
    return dict(zip(names, counts.tolist(), strict=True))


def select_blocks(counts: dict[str, int], available: dict[str, int], max_repetition: dict[str, float],
                  seed: int, block_size: int) -> dict[str, np.ndarray]:
    """Row indices into each source's training blocks: whole seeded permutations (epochs) then a partial
    one, so no block repeats more than once beyond the others. Raises ``RunFailed`` naming a source whose
    share would repeat it more than its ``max_repetition`` epochs."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for name, count in counts.items():
        if count == 0:
            chosen[name] = np.zeros(0, dtype=np.int64)
            continue
        n, limit = available[name], max_repetition[name]
        epochs = count / n
        if epochs > limit + 1e-9:
            raise RunFailed(
                f"source '{name}': the mixture needs {count * block_size:,} tokens but the source has "
                f"{n * block_size:,} training tokens ({epochs:.2f} epochs, above its max_repetition of {limit:g}): "
                "lower its weight or the budget, raise max_repetition, or add data"
            )
        laps = -(-count // n)
        chosen[name] = np.concatenate([rng.permutation(n) for _ in range(laps)])[:count]
    return chosen


def mixture_blocks(sources: dict[str, PackedSource], mixture: dict[str, float], total_blocks: int,
                   max_repetition: dict[str, float], seed: int) -> tuple[np.ndarray, dict[str, int]]:
    """A mixture's training blocks ``(total_blocks, L)`` in a seeded order, and the blocks per source."""
    weights = {name: w for name, w in mixture.items() if w > 0}
    block_size = next(iter(sources.values())).train.shape[1]
    counts = allocate_blocks(weights, total_blocks)
    chosen = select_blocks(counts, {n: len(sources[n].train) for n in weights}, max_repetition, seed, block_size)
    blocks = np.concatenate([sources[n].train[chosen[n]] for n in weights])
    return blocks[np.random.default_rng(seed).permutation(len(blocks))], counts
