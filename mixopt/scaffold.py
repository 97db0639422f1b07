"""A study scaffolded from data folders: what ``mixopt init SOURCES_DIR...`` scans and writes.

Each folder is one source, named after the folder, holding one of:

- token files (``.npy`` with or without a numpy header, ``.bin``): pre-tokenized ids as the microanneal
  runner reads them (:mod:`mixopt.runners.token_files`); counted without reading them: a header's shape,
  or file size / itemsize for raw files (dtype from ``token_dtype``, else the tokenizer's vocabulary size);
- text: ``.jsonl``/``.json`` (a ``text`` field), ``.parquet`` (a ``text`` column), plain text files;
- a folder written by ``datasets``' ``save_to_disk``.

Text is counted as the microanneal runner trains on it: each non-empty document's ids plus one end-of-text
token (:func:`mixopt.runners.microanneal_data.tokenize_documents`, the runner's own reader and tokenizer
call). :func:`study_yaml` writes a commented ``study.yaml`` (sources, a suggested anchor group, objectives
from the runner's metrics, two fidelities) that :func:`mixopt.load_config` loads; nothing here runs a trial.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixopt.errors import ConfigError, RunFailed

TOKEN_KIND, TEXT_KIND, DATASET_KIND = "token files", "text", "saved dataset"
TABLE_SUFFIXES = (".jsonl", ".json", ".parquet")  # text in a field or column named ``text``
DATASET_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")  # what save_to_disk writes
ANCHOR_SHARE = 0.25  # the suggested anchor's minimum weight
INTEGRATION_SHARE = 0.5  # default integration budget: this share of all tokens
MICROANNEAL_SHARE = 0.125  # default microanneal budget: this share of the integration budget
MAX_BLOCK_SIZE = 1024  # tokens per training block at most (less when the model has fewer positions)
BATCH_SIZE = 16  # blocks per optimizer step


@dataclass(frozen=True)
class ScannedSource:
    """One data folder as a source: its ``paths`` as the runner reads them, ``files`` found, ``tokens``
    counted, and for raw token files their ``token_dtype``."""

    name: str
    kind: str
    paths: tuple[str, ...]
    files: int
    tokens: int
    token_dtype: str | None = None


def _files(folder: Path) -> list[Path]:
    """The visible files under ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".")
                                                                      for part in p.relative_to(folder).parts))


def scan_source(folder: str | Path, tokenizer=None, token_dtype: str | None = None) -> ScannedSource:
    """The source in data folder ``folder`` with its tokens counted (``tokenizer``: a transformers tokenizer,
    needed for text and for raw token files without ``token_dtype``)."""
    from mixopt.runners.microanneal_data import TEXT_SUFFIXES, read_documents, tokenize_documents
    from mixopt.runners.token_files import TOKEN_SUFFIXES, has_numpy_header, open_token_file, token_dtype_for

    folder = Path(folder)
    name = folder.resolve().name
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder: give one folder per source")
    dataset = any((folder / marker).is_file() for marker in DATASET_MARKERS)
    files = [folder] if dataset else _files(folder)
    if not files:
        raise ConfigError(f"source '{name}': {folder} holds no files")
    tokens_files = [f for f in files if f.suffix in TOKEN_SUFFIXES]
    if tokens_files and len(tokens_files) < len(files):
        other = next(f for f in files if f.suffix not in TOKEN_SUFFIXES)
        raise ConfigError(f"source '{name}': {folder} mixes token files ({tokens_files[0].name}) with other files "
                          f"({other.name}): put them in two folders, one per source")
    if tokens_files:
        raw = [f for f in files if not has_numpy_header(f)]
        if raw and token_dtype is None:
            if tokenizer is None:
                raise ConfigError(f"source '{name}': {raw[0].name} is a raw token file: pass --token-dtype (uint16 or "
                                  "uint32) or --tokenizer (its vocabulary size gives the dtype)")
            token_dtype = token_dtype_for(len(tokenizer))
        try:  # the source's dtype applies to all its files, as in the runner; raw files are counted by size
            count = sum(len(open_token_file(name, f, token_dtype).tokens) for f in files)
        except RunFailed as exc:
            raise ConfigError(str(exc)) from None
        return ScannedSource(name, TOKEN_KIND, (str(folder.resolve()),), len(files), count, token_dtype)
    if not dataset:
        unknown = [f for f in files if f.suffix not in TABLE_SUFFIXES + TEXT_SUFFIXES]
        if unknown:
            kinds = ", ".join((*TOKEN_SUFFIXES, *TABLE_SUFFIXES, *TEXT_SUFFIXES))
            raise ConfigError(f"source '{name}': cannot read {unknown[0]}: a source folder holds {kinds} files "
                              "or a datasets save_to_disk folder")
    if tokenizer is None:
        raise ConfigError(f"source '{name}' is {DATASET_KIND if dataset else TEXT_KIND}: pass --tokenizer to count its tokens")
    paths = (str(folder.resolve()),) if dataset else _patterns(files)
    try:
        count = sum(len(ids) for ids in tokenize_documents(read_documents(name, _expand(paths)), tokenizer))
    except RunFailed as exc:
        raise ConfigError(str(exc)) from None
    return ScannedSource(name, DATASET_KIND if dataset else TEXT_KIND, paths, len(files), count)


def _patterns(files: Sequence[Path]) -> tuple[str, ...]:
    """Glob patterns ``<folder>/*<suffix>`` covering exactly ``files`` (every file of its folder and suffix)."""
    return tuple(dict.fromkeys(str(f.resolve().parent / f"*{f.suffix}") for f in files))


def _expand(paths: Sequence[str]) -> list[str]:
    from mixopt.runners.microanneal_data import expand_globs

    return expand_globs(paths)


def scan_sources(folders: Sequence[str | Path], tokenizer=None, token_dtype: str | None = None) -> list[ScannedSource]:
    """:func:`scan_source` of each folder; two folders of one name are a ``ConfigError``."""
    sources = [scan_source(folder, tokenizer, token_dtype) for folder in folders]
    names = [s.name for s in sources]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ConfigError(f"two source folders are named {doubled[0]}: source names are folder names, rename one")
    return sources


def model_positions(model: str | Path | None) -> int | None:
    """``max_position_embeddings`` of the checkpoint folder ``model`` (None: no such folder or field)."""
    config = Path(model) / "config.json" if model else None
    if config is None or not config.is_file():
        return None
    return json.loads(config.read_text()).get("max_position_embeddings")


def default_budgets(sources: Sequence[ScannedSource], step_tokens: int) -> tuple[int, int]:
    """(microanneal, integration) token budgets: :data:`INTEGRATION_SHARE` of all tokens and
    :data:`MICROANNEAL_SHARE` of that, each a whole number of optimizer steps (at least one)."""
    integration = max(step_tokens, int(sum(s.tokens for s in sources) * INTEGRATION_SHARE) // step_tokens * step_tokens)
    micro = max(step_tokens, int(integration * MICROANNEAL_SHARE) // step_tokens * step_tokens)
    return micro, integration


def _flow(value: Any) -> str:
    """A YAML flow value (JSON is YAML)."""
    return json.dumps(value)


def _where(path: str, base: Path) -> str:
    """``path`` relative to the config's folder ``base`` when it lies under it, else absolute."""
    try:
        return os.path.relpath(path, base) if Path(path).resolve().is_relative_to(base.resolve()) else path
    except ValueError:  # another drive
        return path


def study_yaml(sources: Sequence[ScannedSource], *, name: str, base: Path, tokenizer_name: str | None,
               model: str | None, microanneal_tokens: int | None = None, integration_tokens: int | None = None) -> str:
    """The commented ``study.yaml`` text for ``sources``, to be written in folder ``base`` (paths under it are
    written relative to it). ``model``: the runner's base checkpoint (None: the demo's, named in a comment)."""
    positions = model_positions(model)
    block = min(MAX_BLOCK_SIZE, positions) if positions else 128
    micro, integration = default_budgets(sources, block * BATCH_SIZE)
    micro, integration = microanneal_tokens or micro, integration_tokens or integration
    anchor = max(sources, key=lambda s: s.tokens)
    anchor_min = min(ANCHOR_SHARE, round(0.5 * anchor.tokens / integration, 2))  # half its cap at integration: feasible
    counted = f"with the tokenizer {tokenizer_name}" if tokenizer_name else "from the token files"
    lines = [
        f"# A study scaffolded by `mixopt init` from {len(sources)} data folders; check every value, then run it:",
        "#   mixopt study run study.yaml",
        f"# Tokens counted {counted}.",
        "# Text counts as the microanneal runner trains on it (each document's tokens plus one end-of-text token),",
        "# token files by their ids. The runner holds out each source's last blocks (at most 10%) for the",
        "# bits-per-byte objectives, so a mixture at a source's repetition cap may lack them.",
        f"name: {_flow(name)}",
        f"description: {_flow('Mixture of ' + ', '.join(s.name for s in sources))}",
        "sources:  # one per folder, named after it; max_repetition: epochs of it a run may take",
    ]
    for s in sources:
        lines.append(f"  - name: {_flow(s.name)}  # {s.kind}, {s.files} file{'s' if s.files != 1 else ''}")
        lines.append(f"    paths: {_flow([_where(p, base) for p in s.paths])}")
        lines.append(f"    tokens: {s.tokens}")
        lines.append("    max_repetition: 1")
        if s.token_dtype:
            lines.append(f"    token_dtype: {s.token_dtype}  # raw token files: the dtype they were written with")
    lines += [
        "constraints:",
        f"  # Suggested anchor, not a measurement: {anchor.name}, the largest source ({anchor.tokens:,} tokens), in",
        f"  # every mixture at {anchor_min:g} or more, to keep the base model's general ability. Change or remove it.",
        f"  - {{name: anchor, sources: [{_flow(anchor.name)}], min: {anchor_min:g}}}",
        "objectives:",
        "  # From the microanneal runner's metrics: held-out bits per byte of each source (bpb_<source>, lower is",
        "  # better; the held-out blocks are never trained on). It also reports <task>_bpb and <task>_acc with",
        "  # `tasks:` (a folder of <task>.jsonl) and lm-evaluation-harness metrics with `eval:`; after a few runs,",
        "  # `mixopt metrics study.yaml` tells which metrics rank mixtures above their noise.",
        *[f"  - {{name: {_flow(s.name)}, metric: {_flow('bpb_' + s.name)}, direction: minimize}}" for s in sources],
        "fidelities:",
        "  # microanneal: the cheap runs the search makes; integration: the long run of the chosen mixture, whose",
        "  # budget sets the repetition caps of the export. Defaults: half of all tokens, and an eighth of that.",
        f"  - {{name: microanneal, tokens: {micro}}}",
        f"  - {{name: integration, tokens: {integration}}}",
        "searcher: botorch",
        "runner:",
        "  name: microanneal",
        "  options:",
        f"    model: {_flow(_where(model, base))}  # the base checkpoint: its tokenizer counted the tokens above"
        if model else "    # model: /path/to/checkpoint  # the base checkpoint (unset: the demo's tiny model, another tokenizer)",
        f"    block_size: {block}  # tokens per training block{' (the model has ' + str(positions) + ' positions)' if positions else ''}",
        f"    batch_size: {BATCH_SIZE}  # blocks per optimizer step",
        "    learning_rate: 0.001",
        "    tasks: null  # no task folder: the objectives are the sources' held-out bits per byte",
        "    threads: 1",
        "executor: {name: serial}  # one run at a time here; local (workers: N), slurm or ray run several",
        "batch_size: 4",
        "n_trials: 16",
        "seed: 0",
    ]
    return "\n".join(lines) + "\n"
