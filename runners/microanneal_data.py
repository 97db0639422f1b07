"""Data for the microanneal runner: a source's files -> token blocks -> a mixture's training blocks.

A source is either token files (flat token ids, documents separated by an end-of-text id, as Dolma and
OLMo write them: see :mod:`mixopt.runners.token_files`) or text (jsonl, parquet, text files or
``save_to_disk`` folders). Text is tokenized once (documents joined by the end-of-text token) into the
same token-file format, in the cache under a key of the tokenizer and the files' identity (path, size,
modification time), and then read like any token file. Token files are memory-mapped and cut into
fixed-length blocks of ``block_size`` tokens, so a mixture weight is a share of *tokens*, not of
documents; the last blocks of each source are held out for evaluation and never trained on.

A run reads only the blocks it trains on: what it holds follows its own budget (12 bytes of index per
training block, plus the held-out blocks), not the sources' sizes.

Arrays: blocks ``(n_blocks, block_size)`` of token ids (int32).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixopt.cache import MANIFEST, build_once
from mixopt.errors import RunFailed, check_path_name
from mixopt.runners.token_files import TOKEN_SUFFIXES, Blocks, has_numpy_header, open_token_file, token_dtype_for

TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py")
TOKENIZE_BATCH = 64  # documents per tokenizer call
TOKENS_FILE = "tokens.bin"  # a tokenized text source's token file, in its cache folder
FULL_PERMUTATION_MAX_BLOCKS = 1 << 20  # larger sources are sampled without a permutation of all their blocks


@dataclass(frozen=True)
class PackedSource:
    """A source's blocks: ``train`` (a memory-mapped ``(n, L)`` view) and ``heldout`` ``(m, L)`` int32."""

    name: str
    train: Blocks
    heldout: np.ndarray


def expand_globs(paths: Sequence[str]) -> list[str]:
    """Each path, or the sorted matches of a glob pattern (``data/*.npy``)."""
    import glob

    return [match for raw in paths for match in (sorted(glob.glob(raw)) if any(c in raw for c in "*?[") else [raw])]


def source_files(name: str, paths: Sequence[str]) -> list[Path]:
    """Every file of a source: files, glob matches, and the files under folders, sorted per path."""
    files: list[Path] = []
    for raw in expand_globs(paths):
        path = Path(raw)
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else [])
    if not files:
        raise RunFailed(f"source '{name}': no files at {list(paths)}: fix sources[].paths")
    return files


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


def tokenize_documents(documents: Iterator[str], tokenizer) -> Iterator[np.ndarray]:
    """Token ids ``(t,)`` int32 of consecutive batches of documents, each document followed by the end-of-text token."""
    eos = tokenizer.eos_token_id

    def encode(batch: list[str]) -> np.ndarray:
        return np.concatenate([np.asarray(ids + [eos], dtype=np.int32)
                               for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]])

    batch: list[str] = []
    for text in documents:
        if text:
            batch.append(text)
        if len(batch) == TOKENIZE_BATCH:
            yield encode(batch)
            batch = []
    if batch:
        yield encode(batch)


def file_identity(path: Path) -> list:
    """What a cache key knows of a file: its resolved path, size and modification time (not its bytes)."""
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def tokenized_text(name: str, paths: Sequence[str], files: Sequence[Path], tokenizer, tokenizer_key: str,
                   cache: Path) -> Path:
    """The cache folder holding a text source's token file (``tokens.bin``, written once, streamed) and a
    manifest whose ``info`` gives its dtype, end-of-text id and token count. The key covers the tokenizer and
    each file's resolved path, size and modification time (not its bytes: a run never re-reads the text)."""
    identity = [file_identity(f) for f in files]
    key = hashlib.sha256(json.dumps([tokenizer_key, identity]).encode()).hexdigest()[:24]

    def build(folder: Path) -> dict:
        dtype, count = token_dtype_for(len(tokenizer)), 0
        with open(folder / TOKENS_FILE, "wb") as handle:
            for ids in tokenize_documents(read_documents(name, expand_globs(paths)), tokenizer):
                handle.write(ids.astype(dtype).tobytes())
                count += len(ids)
        return {"source": name, "dtype": dtype, "eos_token_id": tokenizer.eos_token_id, "tokens": count,
                "tokenizer": tokenizer_key, "files": identity}

    return build_once(cache / f"{check_path_name(name, 'source')}-{key}", build)  # never a folder outside the cache


def raw_token_file(name: str, path: Path, token_dtype: str | None, cache: Path) -> tuple[Path, str | None]:
    """A token file as a trainer that reads raw ids (OLMo-core, Dolma) needs it, and its dtype: a raw file as
    it is (``token_dtype``, the source's), a ``.npy`` with a numpy header as a raw copy of its ids in the cache
    (written once, keyed by the file's resolved path, size and modification time; dtype from the header)."""
    if not has_numpy_header(path):
        return path, token_dtype
    opened = open_token_file(name, path, None)
    identity = file_identity(path)
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]

    def build(folder: Path) -> dict:
        opened.tokens.tofile(folder / TOKENS_FILE)
        return {"source": name, "dtype": opened.tokens.dtype.name, "tokens": len(opened.tokens), "file": identity}

    folder = build_once(cache / f"{check_path_name(name, 'source')}-raw-{key}", build)
    return folder / TOKENS_FILE, opened.tokens.dtype.name


def heldout_count(n_blocks: int, heldout_blocks: int, max_fraction: float = 0.1) -> int:
    """Blocks held out of a source of ``n_blocks``: ``heldout_blocks``, at most ``max_fraction`` of it, at least one."""
    return max(1, min(heldout_blocks, int(n_blocks * max_fraction)))


def load_source(name: str, paths: Sequence[str], tokenizer, tokenizer_key: str, block_size: int,
                heldout_blocks: int, cache: Path, *, token_dtype: str | None = None,
                eos_token_id: int | None = None) -> PackedSource:
    """One source's training blocks (memory-mapped) and held-out blocks (its last ones, read).

    Token files (``.npy``/``.bin``) are read as they are (``token_dtype`` for raw files; their end-of-text id
    ``eos_token_id``, default the tokenizer's, is read as the tokenizer's); text is tokenized once into the
    cache (:func:`tokenized_text`) first."""
    files = source_files(name, paths)
    token_paths = [f for f in files if f.suffix in TOKEN_SUFFIXES]
    if token_paths and len(token_paths) < len(files):
        other = next(f for f in files if f.suffix not in TOKEN_SUFFIXES)
        raise RunFailed(f"source '{name}': mixes token files ({token_paths[0].name}) with other files ({other.name}): "
                        "give a source either token files (.npy, .bin) or text")
    if token_paths:
        opened = [open_token_file(name, f, token_dtype) for f in token_paths]
        file_eos = tokenizer.eos_token_id if eos_token_id is None else eos_token_id
    else:
        folder = tokenized_text(name, paths, files, tokenizer, tokenizer_key, cache)
        info = json.loads((folder / MANIFEST).read_text())["info"]
        opened, file_eos = [open_token_file(name, folder / TOKENS_FILE, info["dtype"])], info["eos_token_id"]
    blocks = Blocks(name, opened, block_size, eos_ids=(file_eos, tokenizer.eos_token_id), vocab_size=len(tokenizer))
    if len(blocks) < 2:
        raise RunFailed(f"source '{name}': only {len(blocks)} block(s) of {block_size} tokens: add data")
    train, heldout = blocks.split(heldout_count(len(blocks), heldout_blocks))
    return PackedSource(name, train, heldout[:])


def tokenizer_fingerprint(tokenizer) -> str:
    """A key that changes whenever the tokenizer's vocabulary or rules change."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


# -- a mixture's training blocks ------------------------------------------------------------------------
def allocate_blocks(mixture: dict[str, float], total_blocks: int) -> dict[str, int]:
    """Blocks per source, proportional to the weights, summing exactly to ``total_blocks`` (largest remainder)."""
    names = list(mixture)
    exact = np.array([mixture[n] for n in names], dtype=float) * total_blocks
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total_blocks - counts.sum()]] += 1
    return dict(zip(names, counts.tolist(), strict=True))


def distinct(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``k`` distinct indices of ``range(n)`` in random order, int64 ``(k,)``: the first ``k`` of a permutation
    (up to ``FULL_PERMUTATION_MAX_BLOCKS``), else numpy's choice without replacement, whose memory follows
    ``k`` (Floyd's method while ``k < n / 50``; above, at most ``50 k``), not ``n``."""
    if n <= FULL_PERMUTATION_MAX_BLOCKS:
        return rng.permutation(n)[:k]
    return rng.choice(n, k, replace=False)


def pool_size(n_blocks: int, fraction: float) -> int:
    """Blocks in a source's training pool at a fidelity that may draw from ``fraction`` of its ``n_blocks``."""
    return n_blocks if fraction >= 1 else int(round(fraction * n_blocks))


def draw(rng: np.random.Generator, n: int, pool: int, count: int) -> np.ndarray:
    """``count`` rows of a source's ``n`` training blocks, from a seeded pool of ``pool`` of them: whole
    permutations of the pool (epochs), then part of one, so no block repeats more than once beyond the
    others. A run that reads no more than the pool reads ``count`` distinct blocks, a uniform subset of a
    uniform pool, so it draws them from all ``n`` directly (memory follows ``count``, not the pool)."""
    if pool < n and count <= pool:
        return distinct(rng, n, count)
    members = distinct(rng, n, pool) if pool < n else None
    laps, rest = divmod(count, pool)
    parts = [rng.permutation(pool) for _ in range(laps)] + ([distinct(rng, pool, rest)] if rest else [])
    rows = np.concatenate(parts)
    return rows if members is None else members[rows]


def select_blocks(counts: dict[str, int], available: dict[str, int], max_repetition: dict[str, float],
                  seed: int, block_size: int, pool_fraction: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Row indices into each source's training blocks (:func:`draw`), a source's pool being
    ``pool_fraction`` of its blocks (repetition matching; missing: all). Raises ``RunFailed`` naming a source
    whose share would repeat its pool more than its ``max_repetition`` epochs."""
    rng = np.random.default_rng(seed)
    fractions = pool_fraction or {}
    chosen = {}
    for name, count in counts.items():
        if count == 0:
            chosen[name] = np.zeros(0, dtype=np.int64)
            continue
        n, limit, fraction = available[name], max_repetition[name], fractions.get(name, 1.0)
        pool = pool_size(n, fraction)
        if pool < 1:
            raise RunFailed(f"source '{name}': its pool at this fidelity ({fraction:g} of its {n} training blocks) "
                            "holds no block: add data or lower block_size")
        epochs = count / pool
        if epochs > limit + 1e-9:
            where = f" in this fidelity's pool ({fraction:g} of them, repetition matching)" if pool < n else ""
            raise RunFailed(
                f"source '{name}': the mixture needs {count * block_size:,} tokens but the source has "
                f"{pool * block_size:,} training tokens{where} ({epochs:.2f} epochs, above its max_repetition of "
                f"{limit:g}): lower its weight or the budget, raise max_repetition, or add data"
            )
        chosen[name] = draw(rng, n, pool, count)
    return chosen


class MixtureBlocks:
    """A mixture's training blocks ``(n, L)`` in training order, read from the sources' memory maps only
    when rows are asked for (by a slice, an index array or an int): the run holds each block's source
    and row (12 bytes), not its tokens."""

    def __init__(self, sources: dict[str, Blocks], chosen: dict[str, np.ndarray], seed: int) -> None:
        self.names = list(chosen)
        self.sources = sources
        self.block_size = next(iter(sources.values())).block_size
        source_of = np.concatenate([np.full(len(rows), i, dtype=np.int32) for i, rows in enumerate(chosen.values())])
        row_of = np.concatenate(list(chosen.values())).astype(np.int64)
        order = np.random.default_rng(seed).permutation(len(row_of))
        self.source_of, self.row_of = source_of[order], row_of[order]  # (n,) each

    def __len__(self) -> int:
        return len(self.row_of)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.block_size

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """All the blocks, read (``np.asarray(blocks)``): as much memory as the run's tokens."""
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            picked = np.arange(*index.indices(len(self)))
        elif isinstance(index, (int, np.integer)):
            return self[np.array([index % len(self)])][0]
        else:
            picked = np.asarray(index)
        out = np.empty((len(picked), self.block_size), dtype=np.int32)
        sources, rows = self.source_of[picked], self.row_of[picked]
        for i, name in enumerate(self.names):
            mask = sources == i
            if mask.any():
                out[mask] = self.sources[name].take(rows[mask])
        return out


def mixture_blocks(sources: dict[str, PackedSource], mixture: dict[str, float], total_blocks: int,
                   max_repetition: dict[str, float], seed: int,
                   pool_fraction: dict[str, float] | None = None) -> tuple[MixtureBlocks, dict[str, int]]:
    """A mixture's training blocks ``(total_blocks, L)`` in a seeded order (read lazily), and the blocks per source."""
    weights = {name: w for name, w in mixture.items() if w > 0}
    block_size = next(iter(sources.values())).train.shape[1]
    counts = allocate_blocks(weights, total_blocks)
    chosen = select_blocks(counts, {n: len(sources[n].train) for n in weights}, max_repetition, seed, block_size,
                           pool_fraction)
    return MixtureBlocks({n: sources[n].train for n in weights}, chosen, seed), counts


# -- accounting (pure) -------------------------------------------------------------------------------------
def accounting(sources: dict[str, PackedSource], mixture: dict[str, float], counts: dict[str, int],
               pool_fraction: dict[str, float] | None = None, tolerance: float | None = None) -> dict:
    """Requested against achieved tokens, shares and epochs per source of a run of ``sum(counts)`` blocks
    (what ``accounting.json`` holds). Requested: ``weight x tokens`` over the pool ``pool_fraction x``
    training tokens; achieved: whole blocks over the pool of whole blocks. Raises ``RunFailed`` naming the
    first source whose achieved share is farther than ``tolerance`` from its weight (None: one block's
    share, what rounding to whole blocks can cost)."""
    block_size = next(iter(sources.values())).train.shape[1]
    total = sum(counts.values())
    trained = total * block_size
    tolerance = 1 / total if tolerance is None else tolerance
    fractions = pool_fraction or {}
    rows = {}
    for name, weight in mixture.items():
        available, fraction = len(sources[name].train), fractions.get(name, 1.0)
        pool = pool_size(available, fraction)
        requested, tokens = weight * trained, counts.get(name, 0) * block_size
        share = tokens / trained
        if abs(share - weight) > tolerance + 1e-12:
            raise RunFailed(f"source '{name}': achieved share {share:.6g} differs from the requested {weight:.6g} by "
                            f"more than the tolerance {tolerance:.3g}: raise the fidelity's tokens or lower block_size "
                            f"(shares are whole blocks of {block_size} tokens), or raise the runner's share_tolerance")
        exact_pool = min(1.0, fraction) * available * block_size
        rows[name] = {
            "weight": weight, "requested_tokens": requested, "tokens": tokens, "requested_share": weight, "share": share,
            "train_tokens_available": available * block_size, "pool_fraction": min(1.0, fraction),
            "pool_tokens": pool * block_size, "requested_epochs": requested / exact_pool if exact_pool else 0.0,
            "epochs": tokens / (pool * block_size) if pool else 0.0,
        }
    return {"tokens": trained, "share_tolerance": tolerance, "sources": rows}


def accounting_metrics(report: dict) -> dict[str, float]:
    """The achieved ``tokens_<source>``, ``share_<source>`` and ``epochs_<source>`` of an :func:`accounting`
    report, as run metrics (the study stores them with the trial)."""
    return {f"{key}_{name}": float(row[key]) for name, row in report["sources"].items()
            for key in ("tokens", "share", "epochs")}
