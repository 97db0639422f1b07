"""The midtraining workflow on real microanneals: the default study's demo sources, tiny budgets,
screening and then two integration rounds, and the merge of two seeds of the recommendation, through
the real `mixopt` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_base(folder: Path, texts: list[str]) -> Path:
    """A 1-layer Llama with a small BPE trained on the demo texts (the real base takes minutes to pretrain)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mixopt.demo.base import train_tokenizer

    tokenizer = train_tokenizer(texts, vocab_size=512)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_study(folder: Path, **changes) -> Path:
    """The default study on a tiny base model with tiny budgets (serial, random search), written in ``folder``."""
    from mixopt.demo.data import ensure_data

    data = ensure_data()
    texts = [json.loads(line)["text"] for name in ("web", "code", "math")
             for line in data.source(name).read_text().splitlines()[:60]]
    model = tiny_base(folder / "base", texts)
    config = yaml.safe_load((REPO / "studies" / "default" / "study.yaml").read_text())
    config.update(
        fidelities=[{"name": "microanneal", "tokens": 4096, "model": str(model)},
                     {"name": "integration", "tokens": 8192, "model": str(model)}],
        runner={"name": "microanneal", "options": {"block_size": 64, "batch_size": 4, "learning_rate": 0.003,
                                                   "task_items": 20, "heldout_blocks": 8, "threads": 1}},
        executor={"name": "serial"}, searcher="random", surrogate="gp", **changes,
    )
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def mixopt(*args: str | Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "mixopt.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.slow
def test_screening_then_two_rounds_on_microanneals(tmp_path):
    path = tiny_study(
        tmp_path, name="midtraining-tiny", rounds=2, n_trials=4, batch_size=2,
        screening={"anchor": {"web": 1.0}, "share": 0.3, "replicates": 1, "candidates": ["math", "code"]},
    )
    mixopt("screen", path)
    result = mixopt("study", "run", path)
    assert "recommended mixture (round 2 integration run" in result.stdout
    study = optuna.load_study(study_name="midtraining-tiny", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert {r["source"] for r in study.user_attrs["screening"]} == {"math", "code"}
    rounds = [t for t in study.get_trials() if t.state.name == "COMPLETE" and "round" in t.user_attrs]
    assert sorted(t.user_attrs["round"] for t in rounds) == [1, 2]
    assert all(t.user_attrs["fidelity"] == "integration" for t in rounds)
    assert sum(t.user_attrs.get("fidelity") == "microanneal" and t.state.name == "COMPLETE" for t in study.get_trials()) == 4
    export = yaml.safe_load((tmp_path / "exports" / "midtraining-tiny.yaml").read_text())
    assert abs(sum(s["target_ratio"] for s in export["source_list"]["sources"]) - 1) < 1e-9


@pytest.mark.slow
def test_two_seeds_of_the_recommendation_are_merged_and_evaluated(tmp_path):
    import torch
    from safetensors.torch import load_file

    path = tiny_study(tmp_path, name="merge-tiny", rounds=1, n_trials=2, batch_size=2, merge_seeds=2)
    result = mixopt("study", "run", path, "--no-report")
    runs = optuna.load_study(study_name="merge-tiny-merge", storage=f"sqlite:///{tmp_path / 'study.db'}")
    seeds = [t for t in runs.get_trials() if t.user_attrs["fidelity"] == "integration"]
    (merge,) = [t for t in runs.get_trials() if t.user_attrs["fidelity"] == "seed-merge"]
    checkpoints = [Path(t.user_attrs["artifacts"]["checkpoint"]) for t in seeds]
    assert len(seeds) == 2 and all((c / "model.safetensors").is_file() for c in checkpoints)
    merged_folder = Path(merge.user_attrs["artifacts"]["checkpoint"])
    a, b = (load_file(c / "model.safetensors") for c in checkpoints)
    merged = load_file(merged_folder / "model.safetensors")
    assert merged.keys() == a.keys() and any(not torch.equal(a[key], b[key]) for key in a), "the seeds trained alike"
    for key, tensor in merged.items():
        assert torch.equal(tensor, ((a[key].double() + b[key].double()) / 2).to(tensor.dtype)), key
    # The merge was evaluated, not trained: no training metrics, no tokens, values of its own.
    assert merge.state.name == "COMPLETE" and merge.user_attrs["merge_of"] == [t.number for t in seeds]
    assert merge.user_attrs["cost"]["tokens"] == 0 and "train_loss_last" not in merge.user_attrs["metrics"]
    assert merge.values not in [t.values for t in seeds]
    printed = "  merged    " + " ".join(f"{n}={v:.4f}" for n, v in zip(["math", "code", "qa"], merge.values, strict=True))
    assert printed in result.stdout and "  seed 2    " in result.stdout
    again = mixopt("study", "run", path, "--no-report")
    assert printed in again.stdout and len(runs.get_trials()) == 3
