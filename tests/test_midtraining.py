"""The midtraining workflow on real microanneals: the default study's demo sources, tiny budgets,
screening and then two integration rounds, through the real `mixopt` command."""

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


@pytest.mark.slow
def test_screening_then_two_rounds_on_microanneals(tmp_path):
    from mixopt.demo.data import ensure_data

    data = ensure_data()
    texts = [json.loads(line)["text"] for name in ("web", "code", "math")
             for line in data.source(name).read_text().splitlines()[:60]]
    model = tiny_base(tmp_path / "base", texts)
    config = yaml.safe_load((REPO / "studies" / "default" / "study.yaml").read_text())
    config.update(
        name="midtraining-tiny",
        fidelities=[{"name": "microanneal", "tokens": 4096, "model": str(model)},
                     {"name": "integration", "tokens": 8192, "model": str(model)}],
        runner={"name": "microanneal", "options": {"block_size": 64, "batch_size": 4, "learning_rate": 0.003,
                                                   "task_items": 20, "heldout_blocks": 8, "threads": 1}},
        executor={"name": "serial"}, searcher="random", surrogate="gp",
        screening={"anchor": {"web": 1.0}, "share": 0.3, "replicates": 1, "candidates": ["math", "code"]},
        rounds=2, n_trials=4, batch_size=2,
    )
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    for command in (["screen", str(path)], ["study", "run", str(path)]):
        result = subprocess.run([sys.executable, "-m", "mixopt.cli", *command], capture_output=True, text=True,
                                timeout=1200)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "recommended mixture (round 2 integration run" in result.stdout
    study = optuna.load_study(study_name="midtraining-tiny", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert {r["source"] for r in study.user_attrs["screening"]} == {"math", "code"}
    rounds = [t for t in study.get_trials() if t.state.name == "COMPLETE" and "round" in t.user_attrs]
    assert sorted(t.user_attrs["round"] for t in rounds) == [1, 2]
    assert all(t.user_attrs["fidelity"] == "integration" for t in rounds)
    assert sum(t.user_attrs.get("fidelity") == "microanneal" and t.state.name == "COMPLETE" for t in study.get_trials()) == 4
    export = yaml.safe_load((tmp_path / "exports" / "midtraining-tiny.yaml").read_text())
    assert abs(sum(s["target_ratio"] for s in export["source_list"]["sources"]) - 1) < 1e-9
