"""Token files: a source's token ids on disk, read through memory maps and cut into fixed-length blocks.

A token file holds flat token ids, documents separated by an end-of-text id, as Dolma and OLMo's data
pipeline write them: ``.npy`` with a numpy header (its dtype is read from the header) or a raw array
(``.bin``, or ``.npy`` without a header, as OLMo writes them) whose dtype the source names
(``token_dtype``: uint16 or uint32). Nothing is loaded: each file is a read-only memory map and
:class:`Blocks` reads only the rows asked for, so what a run holds does not grow with the files.

Reading blocks at random from a memory map maps whole page-cache folios into the process; ``Blocks``
unmaps them after each read (:meth:`TokenFile.release`), so a run's resident memory stays bounded by
what one read touches.

Shapes: a file is ``(T,)`` token ids; its blocks are ``(T // L, L)`` rows of ``L = block_size`` tokens
(the tail of each file, ``T mod L`` tokens, is dropped); rows are handed out as int32.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixopt.errors import RunFailed
from mixopt.space import TOKEN_DTYPES

TOKEN_SUFFIXES = (".npy", ".bin")
NUMPY_MAGIC = b"\x93NUMPY"
READ_ROWS = 16  # blocks read between two unmaps: a read maps at most 16 page-cache folios (32 MB)


def token_dtype_for(vocab_size: int) -> str:
    """The smallest unsigned dtype that holds every id of a vocabulary of ``vocab_size`` tokens."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


@dataclass(frozen=True)
class TokenFile:
    """A token file's ids ``(T,)`` (read-only), backed by the memory map ``map`` (None: an array in memory)."""

    tokens: np.ndarray
    map: mmap.mmap | None = None

    def release(self) -> None:
        """Unmap the pages read so far; they stay in the page cache for the next read. The kernel maps a
        whole page-cache folio (up to 2 MB) per block read at random, so without this a process's resident
        memory would grow by megabytes per block it has ever read."""
        if self.map is not None:
            self.map.madvise(mmap.MADV_DONTNEED)


def has_numpy_header(path: Path) -> bool:
    """Whether a token file starts with a numpy header (``np.save``), not raw ids."""
    with open(path, "rb") as handle:
        return handle.read(len(NUMPY_MAGIC)) == NUMPY_MAGIC


def open_token_file(source: str, path: Path, dtype: str | None) -> TokenFile:
    """The ``(T,)`` token ids of one file, memory-mapped (``dtype``: None reads it from a numpy header; a raw
    file needs it). ``RunFailed`` names the file and the fix when the two disagree."""
    headed = has_numpy_header(path)
    with open(path, "rb") as handle:
        if headed:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, header_dtype = read_header(handle)
            offset, count = handle.tell(), math.prod(shape)
            if header_dtype.kind not in "iu" or (fortran and len(shape) > 1):
                raise RunFailed(f"source '{source}': {path} holds {header_dtype} values{' in Fortran order' if fortran else ''}: "
                                "a token file holds integer token ids in C order")
            if dtype is not None and np.dtype(dtype) != header_dtype:
                raise RunFailed(f"source '{source}': {path} holds {header_dtype} token ids but token_dtype is {dtype}: "
                                "fix sources[].token_dtype or leave it out for .npy files with a header")
            dtype = header_dtype.str
        elif dtype is None:
            raise RunFailed(f"source '{source}': {path} is a raw token file (no numpy header): set sources[].token_dtype "
                            f"to the dtype it was written with ({' or '.join(TOKEN_DTYPES[:2])})")
        elif dtype not in TOKEN_DTYPES:
            raise RunFailed(f"source '{source}': token_dtype {dtype!r} is not one of {', '.join(TOKEN_DTYPES)}")
        else:
            size, itemsize = path.stat().st_size, np.dtype(dtype).itemsize
            if size % itemsize:
                raise RunFailed(f"source '{source}': {path} has {size:,} bytes, not a whole number of {dtype} tokens: "
                                "check sources[].token_dtype")
            offset, count = 0, size // itemsize
        if count == 0:  # mmap cannot map an empty file
            return TokenFile(np.zeros(0, dtype=dtype))
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return TokenFile(np.frombuffer(mapped, dtype=dtype, count=count, offset=offset), mapped)


class Blocks:
    """Rows ``[start, stop)`` of the blocks ``(n, L)`` of one or more token files, in file order.

    ``take(rows)`` reads those rows from the memory maps as int32 ``(k, L)`` (and unmaps what it read); ids equal to ``eos_ids[0]`` (the
    files' end-of-text id) become ``eos_ids[1]`` (the model's) when the two differ, and an id outside
    ``[0, vocab_size)`` is a ``RunFailed`` (the files were tokenized with another tokenizer).
    """

    def __init__(self, source: str, files: Sequence[TokenFile], block_size: int, *, eos_ids: tuple[int, int] | None = None,
                 vocab_size: int | None = None, start: int = 0, stop: int | None = None) -> None:
        self.source, self.files, self.block_size = source, tuple(files), block_size
        self.eos_ids, self.vocab_size = eos_ids, vocab_size
        self._views = [f.tokens[: len(f.tokens) // block_size * block_size].reshape(-1, block_size) for f in self.files]
        self._ends = np.cumsum([len(v) for v in self._views], dtype=np.int64)  # (n_files,) block ends
        total = int(self._ends[-1]) if len(self._ends) else 0
        self.start, self.stop = start, total if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.block_size

    def __getitem__(self, index) -> np.ndarray:
        """Rows by a slice or an array of indices (``(k, L)``), or one row by an int (``(L,)``)."""
        if isinstance(index, slice):
            return self.take(np.arange(*index.indices(len(self))))
        if isinstance(index, (int, np.integer)):
            return self.take(np.array([index % len(self)]))[0]
        return self.take(np.asarray(index))

    def split(self, n_tail: int) -> tuple[Blocks, Blocks]:
        """The first ``len - n_tail`` rows and the last ``n_tail``, as views of the same files."""
        cut = self.stop - n_tail
        return self._view(self.start, cut), self._view(cut, self.stop)

    def _view(self, start: int, stop: int) -> Blocks:
        return Blocks(self.source, self.files, self.block_size, eos_ids=self.eos_ids, vocab_size=self.vocab_size,
                      start=start, stop=stop)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``(k,)`` (indices into this view) -> their blocks ``(k, L)`` int32, read from the files."""
        absolute = np.asarray(rows, dtype=np.int64) + self.start
        out = np.empty((len(absolute), self.block_size), dtype=np.int32)
        which = np.searchsorted(self._ends, absolute, side="right")  # (k,) the file of each row
        for f in np.unique(which):
            (where,) = np.nonzero(which == f)
            first = int(self._ends[f - 1]) if f else 0
            for chunk in range(0, len(where), READ_ROWS):  # each chunk maps at most READ_ROWS folios, then unmaps them
                part = where[chunk : chunk + READ_ROWS]
                out[part] = self._views[f][absolute[part] - first]
                self.files[f].release()
        if self.eos_ids is not None and self.eos_ids[0] != self.eos_ids[1]:
            out[out == self.eos_ids[0]] = self.eos_ids[1]
        if self.vocab_size is not None and out.size and (out.min() < 0 or out.max() >= self.vocab_size):
            bad = int(out.max() if out.max() >= self.vocab_size else out.min())
            raise RunFailed(f"source '{self.source}': token id {bad} is outside the model's vocabulary of "
                            f"{self.vocab_size}: tokenize the files with the model's tokenizer")
        return out
