"""Folders laid out for the documented command examples (``--help`` epilogs, README's command blocks), and
the shell they run in: the synthetic study's folder, real RegMix and Olmix tables under the names the
examples use, two tiny checkpoints of one architecture."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from study_helpers import MIXOPT, command_env

DATA = resources.files("mixopt.benchmarks").joinpath("data")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
NEEDS = re.compile(r"^# needs: (?P<reason>\S.*)$")  # a tutorial block not run here, and why


def blocks(page: Path) -> list[tuple[str, str]]:
    """The fenced blocks of a Markdown page as (language, body), indentation removed (blocks in lists)."""
    found = []
    for match in FENCE.finditer(page.read_text()):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        found.append((match["lang"], body))
    return found


def shell(line: str, cwd: Path) -> subprocess.CompletedProcess:
    """``line`` run by bash in ``cwd``, with the installed console scripts (``mixopt``, ``optuna``) first on PATH."""
    env = command_env()
    env["PATH"] = f"{MIXOPT.parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def tiny_checkpoint(folder: Path, seed: int) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=64, n_positions=32)).save_pretrained(folder)


def layout(tmp_path: Path) -> dict[str, Path]:
    """The folders the groups run in, with the files their examples name."""
    study, tables, olmix, merge = (tmp_path / name for name in ("study", "tables", "olmix", "merge"))
    for folder in (study, tables, olmix, merge):
        folder.mkdir()
    regmix = DATA.joinpath("regmix")
    pd.read_csv(regmix.joinpath("train_mixture_1m.csv")).head(120).to_csv(tables / "ratios.csv", index=False)
    pd.read_csv(regmix.joinpath("train_pile_loss_1m.csv")).head(120).to_csv(tables / "metrics.csv", index=False)
    pd.read_csv(regmix.joinpath("test_mixture_1m.csv")).head(20).to_csv(tables / "candidates.csv", index=False)
    shutil.copy(regmix.joinpath("train_mixture_1m.csv"), tables / "swarm_ratios.csv")
    shutil.copy(regmix.joinpath("train_pile_loss_1m.csv"), tables / "swarm_metrics.csv")
    sources = [c for c in pd.read_csv(tables / "swarm_ratios.csv").columns if c != "index"]
    target = "metric/the_pile_pile_cc_val_loss"
    (tables / "study.yaml").write_text(yaml.safe_dump({
        "name": "swarm", "sources": [{"name": s} for s in sources], "objectives": [{"name": "pile_cc", "metric": target}],
        "fidelities": [{"name": "microanneal", "tokens": 1.0e9}], "executor": "serial", "searcher": "random",
        "runner": {"name": "synthetic", "options": {"metrics": [target]}},
    }))
    shutil.copy(DATA.joinpath("olmix", "full_recomputation_ratios.csv"), olmix / "ratios.csv")
    shutil.copy(DATA.joinpath("olmix", "full_recomputation_metrics.csv"), olmix / "metrics.csv")
    for seed in (1, 2):
        tiny_checkpoint(merge / "runs" / f"seed-{seed}" / "checkpoint", seed)
    return {"study": study, "tables": tables, "olmix": olmix, "merge": merge}
