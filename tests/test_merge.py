"""Checkpoint merging: exact averages of real transformers checkpoints, and clear refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mixopt.errors import ConfigError
from mixopt.merge import add_task_vectors, merge_checkpoints


def tiny_checkpoint(path, seed: int, hidden: int = 16, tied: bool = False):
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=hidden, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=tied)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    return model


def test_merge_of_two_seeds_is_exactly_their_average(tmp_path):
    a = tiny_checkpoint(tmp_path / "a", seed=1)
    b = tiny_checkpoint(tmp_path / "b", seed=2)
    result = subprocess.run(
        [sys.executable, "-m", "mixopt.cli", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "m")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    merged = LlamaForCausalLM.from_pretrained(tmp_path / "m")
    state_a, state_b = a.state_dict(), b.state_dict()
    for key, tensor in merged.state_dict().items():
        expected = ((state_a[key].double() + state_b[key].double()) / 2).to(tensor.dtype)
        assert torch.equal(tensor, expected), key
    assert not torch.equal(merged.state_dict()["lm_head.weight"], state_a["lm_head.weight"])


def test_weighted_merge(tmp_path):
    a = tiny_checkpoint(tmp_path / "a", seed=1)
    b = tiny_checkpoint(tmp_path / "b", seed=2)
    merge_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "m", weights=[0.25, 0.75])
    merged = LlamaForCausalLM.from_pretrained(tmp_path / "m").state_dict()
    key = "model.embed_tokens.weight"
    expected = (0.25 * a.state_dict()[key].double() + 0.75 * b.state_dict()[key].double()).float()
    assert torch.equal(merged[key], expected)


def test_different_architectures_are_refused(tmp_path):
    tiny_checkpoint(tmp_path / "a", seed=1, hidden=16)
    tiny_checkpoint(tmp_path / "b", seed=2, hidden=32)
    with pytest.raises(ConfigError, match="different shapes"):
        merge_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    result = subprocess.run([sys.executable, "-m", "mixopt.cli", "merge", str(tmp_path / "a"), str(tmp_path / "nope"),
                             "-o", str(tmp_path / "m")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no safetensors" in result.stderr


@pytest.mark.parametrize("tied", [False, True])
def test_task_arithmetic_is_the_hand_computed_sum(tmp_path, tied):
    """theta_base + scale * sum_k w_k (theta_k - theta_base), on the base model's own tensors (a tied
    embedding, stored once, is changed once)."""
    base = tiny_checkpoint(tmp_path / "base", seed=0, tied=tied).state_dict()
    a = tiny_checkpoint(tmp_path / "a", seed=1, tied=tied).state_dict()
    b = tiny_checkpoint(tmp_path / "b", seed=2, tied=tied).state_dict()
    model = LlamaForCausalLM.from_pretrained(tmp_path / "base")
    add_task_vectors(model.state_dict(), [(tmp_path / "a", 0.3), (tmp_path / "b", 0.7)], scale=0.5)
    for key, tensor in model.state_dict().items():
        expected = base[key].double() + 0.5 * (0.3 * (a[key].double() - base[key]) + 0.7 * (b[key].double() - base[key]))
        assert torch.allclose(tensor.double(), expected, atol=1e-6), key
    assert not torch.equal(model.lm_head.weight, base["lm_head.weight"])
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr() or not tied


def test_task_arithmetic_refuses_another_architecture(tmp_path):
    tiny_checkpoint(tmp_path / "base", seed=0)
    tiny_checkpoint(tmp_path / "wide", seed=1, hidden=32)
    model = LlamaForCausalLM.from_pretrained(tmp_path / "base")
    with pytest.raises(ConfigError, match="has shape"):
        add_task_vectors(model.state_dict(), [(tmp_path / "wide", 1.0)])
