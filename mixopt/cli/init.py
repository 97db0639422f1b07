"""``mixopt init``: a study.yaml from data folders (one source each, tokens counted), or an example study."""

from __future__ import annotations

from pathlib import Path

import typer

from mixopt.cli.progress import make_console
from mixopt.errors import ConfigError

EPILOG = ("Examples: mixopt init data/web data/code data/math --tokenizer checkpoints/base --out study.yaml\n\n"
          "mixopt init --example synthetic   (writes studies/synthetic/study.yaml; then: "
          "mixopt study run studies/synthetic/study.yaml)")


def init(
    folders: list[Path] = typer.Argument(None, help="data folders, one source each (with --example: at most one, "
                                         "the folder to write into; default studies/NAME)"),
    example: str | None = typer.Option(None, "--example", help="write an example study instead: default, synthetic "
                                       "or midtraining"),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="tokenizer folder (or a name in the local Hugging "
                                         "Face cache) that counts the tokens; needed for text sources"),
    model: str | None = typer.Option(None, "--model", help="the runner's base checkpoint (default: the --tokenizer "
                                     "folder when it holds a model)"),
    token_dtype: str | None = typer.Option(None, "--token-dtype", help="dtype of raw token files, uint16 or uint32 "
                                           "(default: from the tokenizer's vocabulary size)"),
    microanneal_tokens: int | None = typer.Option(None, "--microanneal-tokens", min=1, help="tokens per microanneal "
                                                  "(default: an eighth of the integration budget)"),
    integration_tokens: int | None = typer.Option(None, "--integration-tokens", min=1, help="tokens per integration "
                                                  "run (default: half of all tokens)"),
    out: Path = typer.Option(Path("study.yaml"), "--out", "-o", help="the study.yaml to write"),
    name: str | None = typer.Option(None, "--name", help="study name (default: the --out folder's name)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
) -> None:
    """Write a commented study.yaml for data folders: one source per folder (jsonl, parquet, text, datasets
    save_to_disk folders or token files .npy/.bin), its tokens counted, a suggested anchor group, held-out
    bits-per-byte objectives and two fidelities (microanneal and integration). With --example, copy an
    example study instead."""
    console = make_console(stderr=True)
    folders = folders or []
    if example is not None:
        from mixopt.examples import write_example

        if len(folders) > 1:
            raise ConfigError("--example takes at most one folder to write into")
        written = write_example(example, folders[0] if folders else Path("studies") / example, force)
        console.print(f"wrote {written}; run it with: mixopt study run {written}", markup=False)
        return
    if not folders:
        raise ConfigError("give the data folders to scan (one source each), or --example default|synthetic|midtraining")
    from mixopt.config import parse_config
    from mixopt.errors import OutputError
    from mixopt.export import write_atomic
    from mixopt.scaffold import model_positions, scan_sources, study_yaml

    if out.exists() and not force:
        raise ConfigError(f"{out} exists: choose another --out or pass --force to overwrite it")
    if token_dtype is not None and token_dtype not in ("uint16", "uint32"):
        raise ConfigError(f"--token-dtype {token_dtype}: use uint16 or uint32")
    loaded = _tokenizer(tokenizer) if tokenizer else None
    if model is None and tokenizer and model_positions(tokenizer) is not None:
        model = tokenizer
    with console.status("counting tokens"):
        sources = scan_sources(folders, loaded, token_dtype)
    base = out.resolve().parent
    text = study_yaml(sources, name=name or base.name, base=base, tokenizer_name=tokenizer, model=model,
                      microanneal_tokens=microanneal_tokens, integration_tokens=integration_tokens)
    parse_config(text, directory=base)  # what is written loads
    try:
        base.mkdir(parents=True, exist_ok=True)  # a new study's folder, as --example makes one
    except OSError as exc:
        raise OutputError.cannot_write(base, exc, "choose another --out") from None
    write_atomic(out, text)
    for s in sources:
        console.print(f"  {s.name}: {s.tokens:,} tokens ({s.kind}, {s.files} file{'s' if s.files != 1 else ''})",
                      markup=False)
    console.print(f"wrote {out}; check it, then run: mixopt study run {out}", markup=False)


def _tokenizer(name: str):
    """The transformers tokenizer at ``name`` (a folder, or a name in the local cache); a ``ConfigError`` if none."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--tokenizer {name}: cannot load a tokenizer ({str(exc).splitlines()[0]}): "
                          "give a local tokenizer or checkpoint folder") from None
