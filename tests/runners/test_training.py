"""The training loop's pieces: batch layouts, rank shares, checkpoints, devices (real torch, tiny models)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mixopt.errors import RunFailed
from mixopt.runners import training as tr


def tiny_model(seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=32, tie_word_embeddings=True)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def blocks_of(steps: int, batch: int, length: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 97, size=(steps * batch, length)).astype(np.int32)


def test_batch_layout_keeps_the_global_batch():
    assert tr.batch_layout(16, 1, None) == (16, 1)
    assert tr.batch_layout(16, 2, None) == (8, 1)
    assert tr.batch_layout(16, 2, 2) == (2, 4)
    for processes, micro in ((1, None), (2, None), (2, 2), (4, 1), (1, 4)):
        m, a = tr.batch_layout(16, processes, micro)
        assert processes * m * a == 16
    with pytest.raises(RunFailed, match="batch_size 16 is not a multiple of processes 3"):
        tr.batch_layout(16, 3, None)
    with pytest.raises(RunFailed, match="micro_batch_size 3 does not divide the 8 blocks"):
        tr.batch_layout(16, 2, 3)
    with pytest.raises(RunFailed, match="processes must be at least 1"):
        tr.batch_layout(16, 0, None)


def test_parse_every_reads_steps_and_durations():
    assert tr.parse_every(None) is None
    assert tr.parse_every(50) == ("steps", 50.0)
    assert tr.parse_every("90s") == ("seconds", 90.0)
    assert tr.parse_every("10m") == ("seconds", 600.0)
    assert tr.parse_every("1.5h") == ("seconds", 5400.0)
    for bad in (0, -3, "10", "5 days", True, 2.5):
        with pytest.raises(RunFailed, match="checkpoint_every must be a positive number of steps or a duration"):
            tr.parse_every(bad)


def test_ranks_read_disjoint_shares_that_make_up_each_step():
    """Per optimizer step, the micro-batches of every rank are exactly the one-process batch's blocks."""
    blocks = blocks_of(steps=5, batch=8)
    whole = [b["input_ids"].numpy() for b in tr.block_batches(blocks, 8)]
    assert len(whole) == 5
    for processes, micro in ((2, None), (2, 2), (4, 1), (1, 2)):
        m, accumulation = tr.batch_layout(8, processes, micro)
        per_rank = [list(tr.block_batches(blocks, 8, micro_batch=m, rank=r, processes=processes))
                    for r in range(processes)]
        for step in range(5):
            parts = [b["input_ids"].numpy() for r in range(processes)
                     for b in per_rank[r][step * accumulation : (step + 1) * accumulation]]
            assert all(p.shape == (m, 16) for p in parts)
            np.testing.assert_array_equal(np.concatenate(parts), whole[step])
    later = [b["input_ids"].numpy() for b in tr.block_batches(blocks, 8, start_step=3)]
    np.testing.assert_array_equal(np.stack(later), np.stack(whole[3:]))


def test_accumulation_gives_the_same_steps_as_one_batch():
    """Gradient accumulation of 4 micro-batches of 2 blocks against one batch of 8: the same loss curve
    and weights up to float rounding (measured max loss gap ~2e-6; bound 1e-4)."""
    blocks = blocks_of(steps=12, batch=8)
    runs = {}
    for micro in (None, 2):
        model = tiny_model()
        job = tr.BlockTraining("unused", steps=12, batch_size=8, learning_rate=3e-3, warmup_steps=2, micro_batch=micro)
        runs[micro] = (tr.train_blocks(job, blocks, model).losses, model)
    (one, model_one), (acc, model_acc) = runs[None], runs[2]
    assert len(one) == len(acc) == 12 and one[-1] < one[0]
    np.testing.assert_allclose(acc, one, atol=1e-4)
    for a, b in zip(model_one.state_dict().values(), model_acc.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


def test_a_checkpoint_resumes_bitwise(tmp_path):
    """Stopped after 5 of 12 steps (the batches run out) and resumed from its checkpoint, a run ends with the
    same losses and weights, bit for bit, as one that never stopped."""
    import torch

    blocks = blocks_of(steps=12, batch=4)
    base = tiny_model()
    job = tr.BlockTraining("unused", steps=12, batch_size=4, learning_rate=3e-3, warmup_steps=2,
                           state=str(tmp_path / "state.pt"), every=("steps", 5.0), fingerprint="f")
    torch.manual_seed(1)
    straight = copy.deepcopy(base)
    reference = tr.train_blocks(job, blocks, straight).losses

    (tmp_path / "state.pt").unlink()
    torch.manual_seed(1)
    tr.train_blocks(job, blocks[: 7 * 4], copy.deepcopy(base))  # checkpoint at step 5, stops at 7
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 5
    torch.manual_seed(99)  # the checkpoint's RNG state replaces this
    (tmp_path / "state.pt.killed-mid-save.tmp").write_bytes(b"half a checkpoint")
    resumed_model = copy.deepcopy(base)
    resumed = tr.train_blocks(job, blocks, resumed_model)
    assert not list(tmp_path.glob("*.tmp"))  # a save killed midway is cleared
    assert resumed.resumed_at == 5 and len(resumed.clock) == 7
    assert resumed.losses == reference
    for a, b in zip(straight.state_dict().values(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = tr.Checkpoint(tmp_path / "state.pt", "another run's inputs")
    assert other.load() is None  # a state of other inputs is not resumed


def test_checkpoints_are_written_whole(tmp_path):
    """A save goes to a temporary file renamed over the old one: no temporary is left, and a stale one
    (a save killed midway) does not stop the next save or the load."""
    import torch

    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    (tmp_path / "state.pt.12345.tmp").write_bytes(b"half a checkpoint")
    checkpoint = tr.Checkpoint(tmp_path / "state.pt", "f", ("steps", 2.0))
    assert not checkpoint.due(1, 10) and checkpoint.due(2, 10) and checkpoint.due(10, 10)
    checkpoint.save(2, [1.0, 0.5], model, optimizer, schedule)
    checkpoint.save(4, [1.0, 0.5, 0.4, 0.3], model, optimizer, schedule)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt", "state.pt.12345.tmp"]
    state = checkpoint.load()
    assert state["step"] == 4 and state["losses"] == [1.0, 0.5, 0.4, 0.3]
    assert tr.Checkpoint(tmp_path / "missing.pt", "f").load() is None


def test_seconds_checkpoints_follow_the_clock(tmp_path):
    checkpoint = tr.Checkpoint(tmp_path / "state.pt", "f", ("seconds", 3600.0))
    assert not checkpoint.due(1, 10)
    checkpoint._last -= 3601
    assert checkpoint.due(2, 10)


def test_devices_and_bf16_options():
    import torch

    assert tr.resolve_device("cpu") == "cpu"
    assert tr.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RunFailed, match="device is cuda but no CUDA device is visible"):
            tr.resolve_device("cuda")
    with pytest.raises(RunFailed, match="device must be auto, cpu or cuda"):
        tr.resolve_device("tpu")
    assert tr.resolve_bf16(True, "cpu") is True and tr.resolve_bf16(False, "cuda") is False
    assert tr.resolve_bf16("auto", "cpu") == tr.bf16_supported()
    with pytest.raises(RunFailed, match="bf16 must be auto, true or false"):
        tr.resolve_bf16("yes", "cpu")
