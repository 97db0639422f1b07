"""The training loop's pieces: batch layouts, rank shares, checkpoints, devices (real torch, tiny models)."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

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


# -- preemption: SIGTERM saves, then the process ends as it would have -------------------------------------
class SignalAt:
    """Rows ``(n, L)`` that send SIGTERM to ``pid`` (default: this process) when row ``at`` is first read, so
    that the signal lands during a known step."""

    def __init__(self, rows: np.ndarray, at: int, pid: int | None = None) -> None:
        self.rows, self.at, self.pid, self.sent = rows, at, pid, False

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice) -> np.ndarray:
        if not self.sent and index.start <= self.at < index.stop:
            self.sent = True
            os.kill(self.pid or os.getpid(), signal.SIGTERM)
        return self.rows[index]


def signalling_rows(at: int) -> SignalAt:
    """What a spawned training process reads: rows that SIGTERM its parent (the run) at row ``at``."""
    return SignalAt(blocks_of(steps=12, batch=4), at, pid=os.getppid())


def preemption_job(state: Path, processes: int = 1) -> tr.BlockTraining:
    """12 steps of 4 blocks of ``tiny_model`` (saved beside ``state``: spawned processes load it) with no
    periodic checkpoint: any saved state comes from the SIGTERM save."""
    base = state.parent / "base"
    if not base.exists():
        tiny_model().save_pretrained(base)
    return tr.BlockTraining(str(base), steps=12, batch_size=4, learning_rate=3e-3, warmup_steps=2, processes=processes,
                            state=str(state), every=("steps", 1000.0), fingerprint="f")


PREEMPTED_RUN = """
import pickle, sys, torch
sys.path[:0] = ["tests/runners", "tests"]  # this file's module, as pytest imported it (SignalAt is pickled by it)
from test_training import tiny_model
from mixopt.runners import training as tr
job, rows, rebuild = pickle.load(open(sys.argv[1], "rb"))
torch.manual_seed(1)
tr.train_blocks(job, rows, tiny_model(), rebuild=rebuild)
print("trained to the end")
"""


def run_preempted(tmp_path: Path, job: tr.BlockTraining, rows, rebuild=None) -> subprocess.CompletedProcess:
    import pickle

    (tmp_path / "job.pkl").write_bytes(pickle.dumps((job, rows, rebuild)))
    return subprocess.run([sys.executable, "-c", PREEMPTED_RUN, str(tmp_path / "job.pkl")], capture_output=True,
                          text=True, timeout=600, cwd=Path(__file__).parents[2])


def test_sigterm_mid_run_saves_that_step_then_ends_the_process_and_the_rerun_resumes_bitwise(tmp_path):
    """SIGTERM arrives while step 3 of 12 reads its blocks: the step finishes, its state is saved (no
    periodic checkpoint is due), the process ends by SIGTERM as it would have without mixopt, and the run
    started again ends with the uninterrupted run's losses and weights, bit for bit."""
    import torch

    job = preemption_job(tmp_path / "state.pt")
    blocks = blocks_of(steps=12, batch=4)
    torch.manual_seed(1)
    straight = tiny_model()
    reference = tr.train_blocks(preemption_job(tmp_path / "straight.pt"), blocks, straight).losses

    stopped = run_preempted(tmp_path, job, SignalAt(blocks, at=2 * 4))
    assert stopped.returncode == -signal.SIGTERM, stopped.stderr[-2000:]
    assert "trained to the end" not in stopped.stdout
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 3

    torch.manual_seed(99)  # the checkpoint's RNG state replaces this
    resumed_model = tiny_model()
    resumed = tr.train_blocks(job, blocks, resumed_model)
    assert resumed.resumed_at == 3 and resumed.losses == reference
    for a, b in zip(straight.state_dict().values(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_process_whose_handler_lives_on_gets_a_preemption_failure(tmp_path):
    """Where SIGTERM does not end the process (its own handler returns), the run fails, naming the step and
    the saved state, instead of evaluating a model trained part of the way."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        with pytest.raises(RunFailed, match=r"stopped by SIGTERM \(preempted\) at step 3 of 12 .*resumes there"):
            tr.train_blocks(preemption_job(tmp_path / "state.pt"), SignalAt(blocks_of(12, 4), at=2 * 4), tiny_model())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert tr.Checkpoint(tmp_path / "state.pt", "f").load()["step"] == 3


@pytest.mark.slow
def test_sigterm_to_a_run_of_two_processes_is_forwarded_and_both_stop_at_one_saved_step(tmp_path):
    """Two gloo processes; the run's own process gets SIGTERM during step 3 (rank 0 sends it, as Slurm would):
    it forwards the signal, both ranks agree on the step, rank 0 saves it, all end by SIGTERM; started
    again, the run ends with the losses of an uninterrupted two-process run."""
    import torch

    job = preemption_job(tmp_path / "state.pt", processes=2)
    blocks = blocks_of(steps=12, batch=4)
    torch.manual_seed(1)
    reference = tr.train_blocks(preemption_job(tmp_path / "straight.pt", processes=2), blocks, tiny_model()).losses

    stopped = run_preempted(tmp_path, job, blocks, rebuild=partial(signalling_rows, 2 * 4))
    assert stopped.returncode == -signal.SIGTERM, stopped.stderr[-2000:]
    saved = torch.load(tmp_path / "state.pt", weights_only=True)["step"]
    assert saved in (3, 4)  # the step the signal arrived in, or the next if it reached the ranks after its end

    resumed = tr.train_blocks(job, blocks, tiny_model())
    assert resumed.resumed_at == saved and resumed.losses == reference


def test_fsdp_trains_like_ddp_and_its_checkpoint_resumes_in_one_process(tmp_path):
    """Two gloo processes with the model sharded by FSDP (per decoder layer and at the root), with gradient
    accumulation (2 micro-batches per process and step), against DDP on the same global batch: the same loss
    curve and weights within float rounding (sharded reduce-scatter against all-reduce; bound 1e-5). The
    checkpoint is whole and keyed by parameter name, so a run stopped under FSDP resumes in one process."""
    import torch

    blocks = blocks_of(steps=12, batch=4)
    runs = {}
    for strategy in ("ddp", "fsdp"):
        job = replace(preemption_job(tmp_path / f"{strategy}.pt", processes=2), micro_batch=1, strategy=strategy,
                      every=("steps", 4.0))
        model = tiny_model()
        runs[strategy] = (tr.train_blocks(job, blocks, model).losses, model)
    (ddp, ddp_model), (fsdp, fsdp_model) = runs["ddp"], runs["fsdp"]
    assert len(fsdp) == 12
    np.testing.assert_allclose(fsdp, ddp, atol=1e-5)
    for a, b in zip(ddp_model.state_dict().values(), fsdp_model.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)

    stopped = replace(preemption_job(tmp_path / "stopped.pt", processes=2), strategy="fsdp", every=("steps", 4.0))
    tr.train_blocks(stopped, blocks[: 6 * 4], tiny_model())  # checkpoint at step 4, the batches run out at 6
    saved = torch.load(tmp_path / "stopped.pt", weights_only=True)
    assert saved["step"] == 4 and set(saved["model"]) == set(tiny_model().state_dict())
    resumed = tr.train_blocks(replace(stopped, processes=1), blocks, tiny_model())
    assert resumed.resumed_at == 4
    np.testing.assert_allclose(resumed.losses, ddp, atol=1e-4)  # 1 process against 2: reduction order
