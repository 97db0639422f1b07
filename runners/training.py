"""The training loop of continued training, on a CPU or GPUs, in one process or several: what a microanneal
run and the demo's base-model pretraining both run, so both train the same way.

``anneal`` trains with AdamW, a linear warmup, then a linear decay of the learning rate to 0 (the OLMo
midtraining anneal), gradient clipping, optional bf16 autocast and gradient accumulation; ``block_batches``
and ``sft_batches`` feed it causal-LM batches of packed token blocks and of instruction pairs (loss on the
answers only). ``train_blocks`` runs one anneal of packed blocks in ``processes`` processes under
``torch.distributed`` (gloo on CPU, nccl on CUDA, spawned here) and checkpoints it for resume. The
``strategy`` is DDP (a whole model per process, gradients all-reduced) or FSDP (``fully_shard`` per decoder
layer and at the root: parameters, gradients and AdamW state split across processes, for a model that does
not fit one device); both train the same steps on the same blocks.

The global batch is the same whatever the process count: ``batch_size`` blocks per optimizer step =
processes x micro-batch x accumulation. Step ``s`` trains on blocks ``[s * batch_size, (s + 1) * batch_size)``;
rank ``r`` takes the ``r``-th contiguous ``batch_size / processes`` of them, in micro-batches, so N
processes see exactly the blocks one process sees at every step.

A checkpoint (``Checkpoint``) holds the model, AdamW and schedule states (whole, keyed by parameter name,
whatever the strategy and process count), the step reached (the data position: the block order is a pure
function of the run's inputs), the losses so far and every rank's RNG state, with a fingerprint of the
run's inputs; it is written to a temporary file and renamed over the previous one, so a kill at any
moment leaves a whole checkpoint or none.

Preemption (Slurm sends SIGTERM some time before SIGKILL): while an anneal with a checkpoint runs, SIGTERM
lets the current step finish, every rank agrees to stop at that step, the state is saved, and then the
signal takes its usual course (the previous handler, by default the process ends). A spawned run's parent
forwards the signal to its training processes. Running the trial again resumes from the saved step.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixopt.errors import RunFailed
from mixopt.runners.parent_death import die_with

__all__ = ["STRATEGIES", "Checkpoint", "Trained", "BlockTraining", "anneal", "batch_layout", "bf16_supported",
           "block_batches", "parse_every", "quiet_libraries", "resolve_bf16", "resolve_device", "sft_batches",
           "train_blocks"]

DEVICES = ("auto", "cpu", "cuda")
STRATEGIES = ("ddp", "fsdp")  # how several processes split one run
STATE_FORMAT = 2  # checkpoints keyed by parameter name (torch.distributed.checkpoint's full state dicts)
Rows = Any  # blocks (n, L): an int array, or an object whose slices and index arrays give int arrays
EVERY_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def quiet_libraries() -> None:
    """No per-file progress bars from transformers and datasets inside runs (the CLI shows progress)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


# -- where and how to train (pure) -------------------------------------------------------------------------
def bf16_supported() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX)."""
    from mixopt.compat import mkldnn_bf16_supported

    return mkldnn_bf16_supported()


def resolve_device(option: str) -> str:
    """``"cpu"`` or ``"cuda"`` for the runner option ``device`` (auto: CUDA when a device is visible)."""
    import torch

    if option not in DEVICES:
        raise RunFailed(f"runner option device must be auto, cpu or cuda (got {option!r})")
    if option == "cuda" and not torch.cuda.is_available():
        raise RunFailed("runner option device is cuda but no CUDA device is visible: use device: auto or cpu")
    return "cuda" if option == "cuda" or (option == "auto" and torch.cuda.is_available()) else "cpu"


def resolve_bf16(option: bool | str, device: str) -> bool:
    """Whether to autocast to bf16: ``option`` true/false, or "auto" (where the device runs bf16 natively)."""
    import torch

    if option not in ("auto", True, False):
        raise RunFailed(f"runner option bf16 must be auto, true or false (got {option!r})")
    if option != "auto":
        return bool(option)
    return torch.cuda.is_bf16_supported() if device == "cuda" else bf16_supported()


def autocast(enabled: bool, device: str = "cpu"):
    """bf16 autocast on ``device`` (a device type: "cpu" or "cuda") when ``enabled``."""
    import torch

    return torch.autocast(device, dtype=torch.bfloat16) if enabled else nullcontext()


def batch_layout(batch_size: int, processes: int, micro_batch_size: int | None) -> tuple[int, int]:
    """``(micro_batch, accumulation)`` with processes x micro_batch x accumulation = ``batch_size`` blocks
    (micro_batch None: ``batch_size / processes``, no accumulation)."""
    if processes < 1:
        raise RunFailed(f"runner option processes must be at least 1 (got {processes})")
    if batch_size % processes:
        raise RunFailed(f"runner option batch_size {batch_size} is not a multiple of processes {processes}: "
                        "make the global batch divisible by the process count")
    share = batch_size // processes
    micro = share if micro_batch_size is None else micro_batch_size
    if micro < 1 or share % micro:
        raise RunFailed(f"runner option micro_batch_size {micro_batch_size} does not divide the {share} blocks "
                        f"per process and step (batch_size {batch_size} / processes {processes})")
    return micro, share // micro


def parse_every(value: int | str | None) -> tuple[str, float] | None:
    """``checkpoint_every`` as ``("steps", n)`` (an integer) or ``("seconds", s)`` ("90s", "10m", "1h")."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return "steps", float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh])\s*", value) if isinstance(value, str) else None
    if match is None or float(match[1]) <= 0:
        raise RunFailed(f"runner option checkpoint_every must be a positive number of steps or a duration such "
                        f"as 600s, 10m or 1h (got {value!r})")
    return "seconds", float(match[1]) * EVERY_UNITS[match[2]]


# -- batches -----------------------------------------------------------------------------------------------
def block_batches(blocks: Rows, batch_size: int, *, micro_batch: int | None = None, rank: int = 0,
                  processes: int = 1, start_step: int = 0) -> Iterator[dict]:
    """Causal-LM micro-batches ``(micro_batch, L)`` (labels = inputs) of rank ``rank``, step after step from
    ``start_step``: its contiguous share of each step's ``batch_size`` blocks of ``blocks`` ``(n, L)``."""
    import torch

    share = batch_size // processes
    micro = micro_batch or share
    for step in range(start_step, len(blocks) // batch_size):
        first = step * batch_size + rank * share
        for start in range(first, first + share, micro):
            x = torch.from_numpy(np.array(blocks[start : start + micro], dtype=np.int64))  # a copy: memmaps too
            yield {"input_ids": x, "labels": x}


def sft_batches(tokenizer, rows: Sequence[dict], batch_size: int, max_length: int) -> Iterator[dict]:
    """Endless padded batches of ``prompt + answer`` with the loss on answer tokens only."""
    import torch

    encoded = []
    for row in rows:
        prompt = [tokenizer.eos_token_id] + tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        answer = tokenizer(row["answer"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt + answer)[-max_length:]
        encoded.append((ids, max(0, len(ids) - len(answer))))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    while True:
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, (ids, n_prompt) in enumerate(chunk):
                input_ids[r, : len(ids)] = torch.tensor(ids)
                labels[r, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
                mask[r, : len(ids)] = 1
            yield {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


# -- checkpoints -------------------------------------------------------------------------------------------
def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


@dataclass
class Checkpoint:
    """The resume state of one anneal in ``path``, saved every ``every`` (``parse_every``; None: only at
    the end) by rank 0. ``fingerprint`` names the run's inputs: a saved state of other inputs is ignored."""

    path: Path
    fingerprint: str
    every: tuple[str, float] | None = None
    _last: float = field(default_factory=time.monotonic, repr=False)

    def load(self) -> dict | None:
        """The saved state of this run (None: none, or one of other inputs)."""
        import torch

        if not self.path.is_file():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        same = state.get("fingerprint") == self.fingerprint and state.get("format") == STATE_FORMAT
        return state if same else None

    def discard_partial(self) -> None:
        """Remove the temporary files of saves that were killed midway (each as large as a checkpoint)."""
        for stale in self.path.parent.glob(f"{self.path.name}*.tmp"):
            stale.unlink(missing_ok=True)

    def due(self, done: int, steps: int) -> bool:
        """Whether to save after ``done`` of ``steps`` steps (the same answer on every rank)."""
        if done == steps:
            return True
        if self.every is None:
            return False
        unit, amount = self.every
        if unit == "steps":
            return done % int(amount) == 0
        due = time.monotonic() - self._last >= amount
        if _distributed():  # rank 0's clock decides for all
            import torch
            import torch.distributed as dist

            flag = torch.tensor([float(due)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
            dist.broadcast(flag, 0)
            due = bool(flag.item())
        return due

    def save(self, done: int, losses: list[float], model, optimizer, schedule) -> None:
        """Write the state after ``done`` steps atomically (a temporary file renamed over the old one); every
        rank calls it (the states are gathered to rank 0, which writes)."""
        import torch
        import torch.distributed as dist
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}
        rngs: list[Any] = [rng]
        whole = StateDictOptions(full_state_dict=True, cpu_offload=True)  # rank 0 gets it all, in CPU memory
        model_state, optimizer_state = get_state_dict(model, optimizer, options=whole)
        if _distributed():
            rngs = [None] * dist.get_world_size()
            dist.all_gather_object(rngs, {k: v if v is None else v.cpu() for k, v in rng.items()})
            if dist.get_rank() != 0:
                return
        state = {"fingerprint": self.fingerprint, "format": STATE_FORMAT, "step": done, "losses": list(losses),
                 "model": model_state, "optimizer": optimizer_state, "schedule": schedule.state_dict(), "rng": rngs}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(state, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        self._last = time.monotonic()


def _restore(state: dict, model, optimizer, schedule) -> list[float]:
    """Load a checkpoint's model, optimizer, schedule and this rank's RNG state; returns its losses."""
    import torch
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                   options=StateDictOptions(full_state_dict=True))  # each rank keeps its shard under FSDP
    schedule.load_state_dict(state["schedule"])
    rank, world = (dist.get_rank(), dist.get_world_size()) if _distributed() else (0, 1)
    if len(state["rng"]) == world:  # another process layout keeps its fresh seeds (no dropout: no effect)
        torch.set_rng_state(state["rng"][rank]["cpu"])
        if state["rng"][rank]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["rng"][rank]["cuda"])
    return list(state["losses"])


# -- preemption ------------------------------------------------------------------------------------------
_SIGTERM = threading.Event()  # set by the handler of ``on_sigterm``: stop after this step


@contextmanager
def on_sigterm(forward: Callable[[], list[int]] | None = None):
    """While active, SIGTERM only sets a flag (``forward``: pids to pass it on to); on leaving, a SIGTERM
    that arrived is delivered again under the previous handler (by default: the process ends), and the
    yielded ``[arrived]`` says so to a caller that lives on. Outside the main thread (where Python cannot
    install handlers) it does nothing."""
    arrived = [False]  # what the caller may check after the block, if the previous handler let it run on
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return

    def handler(signum, frame) -> None:
        _SIGTERM.set()
        for pid in forward() if forward is not None else []:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield arrived
    finally:
        signal.signal(signal.SIGTERM, previous)
        if _SIGTERM.is_set():
            _SIGTERM.clear()
            arrived[0] = True
            signal.raise_signal(signal.SIGTERM)


def _stop_requested() -> bool:
    """Whether SIGTERM arrived at any rank (a collective when distributed: every rank stops at one step)."""
    stop = _SIGTERM.is_set()
    if _distributed():
        import torch
        import torch.distributed as dist

        flag = torch.tensor([float(stop)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        stop = bool(flag.item())
    return stop


# -- the loop ----------------------------------------------------------------------------------------------
def anneal(model, batches: Sequence[dict] | Iterator[dict], steps: int, learning_rate: float, warmup_steps: int,
           weight_decay: float = 0.0, bf16: bool = False, clip: float = 1.0, *, accumulation: int = 1,
           checkpoint: Checkpoint | None = None, resume: dict | None = None,
           clock: list[float] | None = None) -> list[float]:
    """Train ``model`` (plain, DDP-wrapped or FSDP-sharded) to ``steps`` optimizer steps with AdamW, linear
    warmup then linear decay to 0; returns the loss of every step (mean over the global batch).

    Each step takes ``accumulation`` micro-batches from ``batches`` (moved to the model's device). With
    ``resume`` (a ``Checkpoint.load`` state) training continues from its step, and ``batches`` must start
    there; ``checkpoint`` saves when due, after the last step, and after the step in which SIGTERM arrived
    (under :func:`on_sigterm`; training then stops). ``clock`` (if given) receives the
    ``time.perf_counter`` at the end of each step."""
    import torch
    import torch.distributed as dist
    from transformers import get_linear_schedule_with_warmup

    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup_steps, steps)
    losses = _restore(resume, model, optimizer, schedule) if resume is not None else []
    world = dist.get_world_size() if _distributed() else 1
    batches = iter(batches)
    model.train()
    for _ in range(len(losses), steps):
        micro_batches = list(itertools.islice(batches, accumulation))
        if len(micro_batches) < accumulation:
            break  # the batches ran out
        total = torch.zeros((), device=device)
        for index, batch in enumerate(micro_batches):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with _gradient_sync(model, index == accumulation - 1):
                with autocast(bf16, device.type):
                    loss = model(**batch).loss
                (loss / accumulation).backward()
            total += loss.detach()
        if world > 1:
            dist.all_reduce(total)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append((total / (accumulation * world)).item())
        if clock is not None:
            clock.append(time.perf_counter())
        if checkpoint is not None:
            stop = _stop_requested()
            if stop or checkpoint.due(len(losses), steps):
                checkpoint.save(len(losses), losses, model, optimizer, schedule)
            if stop:
                break  # preempted: the caller's on_sigterm delivers the signal again
    model.eval()
    return losses


@contextmanager
def _gradient_sync(model, enabled: bool):
    """Within it, backward passes reduce gradients across processes only if ``enabled`` (a step's last
    micro-batch): DDP's ``no_sync``, FSDP's ``set_requires_gradient_sync``; a plain model has nothing to skip."""
    if enabled or not _distributed():
        yield
    elif hasattr(model, "no_sync"):
        with model.no_sync():
            yield
    else:
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)


def _parallel(model, job: BlockTraining, rank: int):
    """``model`` set up for ``job.processes`` processes: DDP, or FSDP sharded per decoder layer (the
    classes transformers keeps whole on one device) and at the root."""
    if job.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[rank] if job.device == "cuda" else None)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from mixopt.compat import decoder_layer_classes

    mesh = init_device_mesh(job.device, (job.processes,))
    layers = decoder_layer_classes(model)
    for module in list(model.modules()):
        if type(module).__name__ in layers:
            fully_shard(module, mesh=mesh)
    return fully_shard(model, mesh=mesh)


# -- one anneal of blocks, in one process or several -------------------------------------------------------
@dataclass(frozen=True)
class BlockTraining:
    """One anneal of packed blocks: what each training process needs (picklable, for spawned processes).

    ``model``: the checkpoint folder to start from; ``steps`` of ``batch_size`` blocks (the global batch);
    ``processes`` x ``micro_batch`` x ``accumulation`` = ``batch_size`` (``batch_layout``); ``device``
    "cpu" or "cuda" (rank r uses GPU r); ``threads``: torch threads per process; ``state``: the checkpoint
    file (None: no checkpoints), ``every`` its period (``parse_every``), ``fingerprint`` the run's inputs;
    ``strategy``: how several processes split the run, "ddp" or "fsdp" (``STRATEGIES``)."""

    model: str
    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    weight_decay: float = 0.0
    bf16: bool = False
    device: str = "cpu"
    processes: int = 1
    micro_batch: int | None = None
    threads: int = 1
    seed: int = 0
    state: str | None = None
    every: tuple[str, float] | None = None
    fingerprint: str = ""
    strategy: str = "ddp"

    @property
    def accumulation(self) -> int:
        return batch_layout(self.batch_size, self.processes, self.micro_batch)[1]

    def checkpoint(self) -> Checkpoint | None:
        return None if self.state is None else Checkpoint(Path(self.state), self.fingerprint, self.every)


@dataclass
class Trained:
    """What an anneal of blocks did: ``losses`` per step (all of the run's, resumed ones included),
    ``seconds`` of this process's training loop, ``clock`` (seconds from the loop's start at each step
    trained here), ``resumed_at`` (the step a checkpoint resumed from; 0: a fresh start)."""

    losses: list[float]
    seconds: float
    clock: list[float]
    resumed_at: int = 0


def train_blocks(job: BlockTraining, blocks: Rows, model, folder: Path | None = None,
                 rebuild: Callable[[], Rows] | None = None) -> Trained:
    """Run ``job`` on ``blocks`` (``(steps * batch_size, L)`` rows: an array, or any object whose slices are
    arrays). One process: in this process, on ``model`` (already loaded). Several: spawned processes train
    and ``model`` gets the trained weights; each process gets its rows from ``rebuild`` (a picklable
    function that makes ``blocks`` again, e.g. memory maps and indices: nothing is copied), or else from
    a copy of ``blocks`` written in ``folder`` (default: the checkpoint's) and memory-mapped. A run with a
    checkpoint file resumes from it when it holds the state of the same ``job.fingerprint``."""
    checkpoint = job.checkpoint()
    if checkpoint is not None:
        checkpoint.discard_partial()
    if job.processes == 1:
        return _train(job, blocks, model, rank=0)
    import torch
    import torch.multiprocessing as mp

    if job.state is None:
        raise RunFailed("several training processes hand their model over through a checkpoint file: set job.state")
    if job.device == "cuda" and torch.cuda.device_count() < job.processes:
        raise RunFailed(f"runner option processes is {job.processes} but {torch.cuda.device_count()} CUDA "
                        "device(s) are visible: lower processes")
    folder = Path(folder or Path(job.state).parent)
    folder.mkdir(parents=True, exist_ok=True)
    shared = folder / "train-blocks.npy"
    if rebuild is None:
        np.save(shared, np.asarray(blocks))
    result = folder / "train-result.json"
    try:
        context = mp.start_processes(_worker, args=(job, rebuild or str(shared), str(result), _free_port(), os.getpid()),
                                     nprocs=job.processes, join=False, start_method="spawn")
        with on_sigterm(forward=lambda: [p.pid for p in context.processes if p.pid is not None]):
            while not context.join():
                pass
    except mp.ProcessRaisedException as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        raise RunFailed(f"training process {exc.error_index} failed: {lines[-1] if lines else exc}") from None
    except mp.ProcessExitedException as exc:
        if exc.signal_name == "SIGTERM":
            raise RunFailed(f"training process {exc.error_index} was stopped by SIGTERM (preempted) after saving its "
                            f"state to {job.state}: running the trial again resumes there") from None
        raise RunFailed(f"training process {exc.error_index} exited with status {exc.exit_code}") from None
    finally:
        shared.unlink(missing_ok=True)
    trained = Trained(**json.loads(result.read_text()))
    result.unlink()
    state = Checkpoint(Path(job.state), job.fingerprint).load()
    if state is None:
        raise RunFailed(f"the training processes ended without saving their final state to {job.state}")
    model.load_state_dict(state["model"])
    return trained


def _train(job: BlockTraining, blocks: Rows, model, rank: int) -> Trained:
    """This rank's share of ``job``: resume from its checkpoint if there is one, train, save at the end."""
    import torch

    checkpoint = job.checkpoint()
    resume = checkpoint.load() if checkpoint is not None else None
    start = resume["step"] if resume is not None else 0
    micro, accumulation = batch_layout(job.batch_size, job.processes, job.micro_batch)
    batches = block_batches(blocks, job.batch_size, micro_batch=micro, rank=rank, processes=job.processes,
                            start_step=start)
    if job.processes > 1:
        model = _parallel(model, job, rank)
    clock: list[float] = []
    started = time.perf_counter()
    with on_sigterm() if checkpoint is not None else nullcontext([False]) as preempted:
        losses = anneal(model, batches, job.steps, job.learning_rate, job.warmup_steps, job.weight_decay, job.bf16,
                        accumulation=accumulation, checkpoint=checkpoint, resume=resume, clock=clock)
    if preempted[0]:  # SIGTERM arrived and this process's handler let it live: the run is not finished
        raise RunFailed(f"stopped by SIGTERM (preempted) at step {len(losses)} of {job.steps} after saving its state "
                        f"to {job.state}: running the trial again resumes there")
    if job.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return Trained(losses, seconds, [t - started for t in clock], start)


def _worker(rank: int, job: BlockTraining, blocks: str | Callable[[], Rows], result: str, port: int,
            parent: int) -> None:
    """A spawned training process: joins the process group, trains its share, rank 0 writes the result."""
    import torch
    import torch.distributed as dist
    import transformers
    from transformers import AutoModelForCausalLM

    die_with(parent)
    transformers.utils.logging.disable_progress_bar()  # (datasets is not used here: not imported)
    torch.set_num_threads(job.threads)
    if job.device == "cuda":
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if job.device == "cuda" else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=job.processes)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(job.model, dtype=torch.float32)
        model.to(torch.device("cuda", rank) if job.device == "cuda" else "cpu")
        torch.manual_seed(job.seed)
        rows = np.load(blocks, mmap_mode="r") if isinstance(blocks, str) else blocks()
        trained = _train(job, rows, model, rank)
        if rank == 0:
            Path(result).write_text(json.dumps(asdict(trained)))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    """A TCP port free on this host now (for the process group's rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
