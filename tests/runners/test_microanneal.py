"""The microanneal runner on a tiny Llama built from a config and a tokenizer trained here (seconds)."""

from __future__ import annotations

import functools
import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from mixopt.errors import ConfigError, RunFailed
from mixopt.runners import RUNNERS
from mixopt.runners import microanneal_data as data
from mixopt.runners import microanneal_eval as ev
from mixopt.runners.microanneal import MicroannealRunner
from mixopt.space import MixtureSpace, Source
from mixopt.trials import RunSpec

BLOCK, BATCH = 32, 8
WORDS = "the king said that his horse ran over green hills and slept under old oak trees while rain fell".split()


def arithmetic_doc(rng: random.Random) -> str:
    return "\n".join(f"{a} + {b} = {a + b}" for a, b in ((rng.randint(1, 99), rng.randint(1, 99)) for _ in range(20)))


def prose_doc(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(120)) + "."


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny checkpoint and two very different sources (arithmetic lines, prose), as jsonl files."""
    from mixopt.demo.base import train_tokenizer
    from study_helpers import tiny_base_model

    root = tmp_path_factory.mktemp("micro")
    rng = random.Random(0)
    docs = {"arith": [arithmetic_doc(rng) for _ in range(300)], "prose": [prose_doc(rng) for _ in range(300)]}
    paths = {}
    for name, texts in docs.items():
        paths[name] = root / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    tokenizer = train_tokenizer(docs["arith"][:50] + docs["prose"][:50], vocab_size=400)
    model_dir = tiny_base_model(tokenizer, root / "base")
    return {"root": root, "model": str(model_dir), "paths": paths, "tokenizer": tokenizer}


@pytest.fixture(autouse=True)
def private_cache(world, monkeypatch):
    monkeypatch.setenv("MIXOPT_CACHE", str(world["root"] / "cache"))


def runner(**options) -> MicroannealRunner:
    base = dict(block_size=BLOCK, batch_size=BATCH, learning_rate=3e-3, heldout_blocks=8, tasks=None, threads=1)
    return MicroannealRunner(**{**base, **options})


def spec(world, tmp_path, mixture, tokens=BLOCK * BATCH * 30, seed=0, **extra) -> RunSpec:
    paths = {name: (str(world["paths"][name]),) for name in mixture if name in world["paths"]}
    return RunSpec(trial=0, mixture=mixture, fidelity="micro", tokens=tokens, seed=seed, output_dir=str(tmp_path / "out"),
                   model=world["model"], source_paths={**paths, **extra.pop("source_paths", {})}, **extra)


def test_registered_and_picklable():
    made = RUNNERS.create("microanneal", {"batch_size": 4})
    assert isinstance(made, MicroannealRunner) and pickle.loads(pickle.dumps(made)) == made


def test_default_assets_are_the_demos():
    from mixopt.demo.assets import DemoAssets
    from mixopt.demo.data import SOURCES
    from mixopt.runners.microanneal import default_assets

    assets = default_assets()  # named in the runner's registry: the runner never imports mixopt.demo
    assert isinstance(assets, DemoAssets) and assets.sources == SOURCES


def test_training_lowers_the_loss(world, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    result = runner().run(spec(world, tmp_path, {"arith": 0.5, "prose": 0.5}))
    assert result.metrics["train_loss_last"] < result.metrics["train_loss_first"] - 1.0
    # Held-out BPB of the untouched base model on the same blocks is far higher.
    tokenizer = world["tokenizer"]
    source = data.load_source("prose", [str(world["paths"]["prose"])], tokenizer, data.tokenizer_fingerprint(tokenizer),
                              BLOCK, 8, world["root"] / "cache" / "tokens")
    base = AutoModelForCausalLM.from_pretrained(world["model"], dtype=torch.float32).eval()
    before = ev.heldout_bpb(base, source.heldout, ev.token_byte_lengths(tokenizer), 16, bf16=False)
    assert result.metrics["bpb_prose"] < before - 0.25
    assert result.cost["tokens"] == BLOCK * BATCH * 30 and result.cost["tokens_per_second"] > 0
    assert result.runner == "microanneal"


def test_same_seed_same_metrics(world, tmp_path):
    mixture = {"arith": 0.3, "prose": 0.7}
    first = runner().run(spec(world, tmp_path, mixture, seed=5)).metrics
    second = runner().run(spec(world, tmp_path, mixture, seed=5)).metrics
    assert first == second
    other = runner().run(spec(world, tmp_path, mixture, seed=6)).metrics
    assert other != first


def test_richer_mixture_lowers_that_sources_bpb(world, tmp_path):
    """Margin: 0.1 bits per byte between a 90% and a 10% share, each way."""
    arith_rich = runner().run(spec(world, tmp_path, {"arith": 0.9, "prose": 0.1})).metrics
    prose_rich = runner().run(spec(world, tmp_path, {"arith": 0.1, "prose": 0.9})).metrics
    assert arith_rich["bpb_arith"] < prose_rich["bpb_arith"] - 0.1
    assert prose_rich["bpb_prose"] < arith_rich["bpb_prose"] - 0.1


def test_token_accounting_matches_mixture(world, tmp_path):
    mixture = {"arith": 0.237, "prose": 0.763}
    tokens = BLOCK * BATCH * 25
    result = runner().run(spec(world, tmp_path, mixture, tokens=tokens + 100))
    accounting = json.loads(open(result.artifacts["accounting"]).read())
    assert accounting["tokens"] == tokens
    for name, weight in mixture.items():
        assert abs(result.metrics[f"tokens_{name}"] - weight * tokens) <= BLOCK
        assert accounting["sources"][name]["tokens"] == result.metrics[f"tokens_{name}"]
    assert sum(result.metrics[f"tokens_{n}"] for n in mixture) == tokens


def test_source_too_small_fails_naming_it(world, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text(prose_doc(random.Random(1)) * 3)
    mixture = {"prose": 0.5, "small": 0.5}
    with pytest.raises(RunFailed, match=r"source 'small': .*max_repetition of 2"):
        capped = MixtureSpace((Source("prose"), Source("small", max_repetition=2.0)))
        runner().run(spec(world, tmp_path, mixture, source_paths={"small": (str(small),)}, space=capped))


def test_missing_path_and_unknown_demo_source_fail_clearly(world, tmp_path):
    with pytest.raises(RunFailed, match=r"source 'prose': no files at"):
        runner().run(spec(world, tmp_path, {"prose": 1.0}, source_paths={"prose": (str(tmp_path / "nope.jsonl"),)}))
    with pytest.raises(RunFailed, match=r"source 'mystery': no paths given and no demo source"):
        runner().run(spec(world, tmp_path, {"prose": 0.5, "mystery": 0.5}))


def test_every_input_format_reads_the_same_documents(world, tmp_path):
    import datasets

    texts = [json.loads(line)["text"] for line in world["paths"]["prose"].read_text().splitlines()]
    datasets.Dataset.from_dict({"text": texts}).to_parquet(str(tmp_path / "p.parquet"))
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "saved"))
    folder = tmp_path / "texts"
    folder.mkdir()
    for i, text in enumerate(texts[:3]):
        (folder / f"{i}.txt").write_text(text)
    assert list(data.read_documents("s", [str(tmp_path / "p.parquet")])) == texts
    assert list(data.read_documents("s", [str(tmp_path / "saved")])) == texts
    assert list(data.read_documents("s", [str(world["paths"]["prose"])])) == texts
    assert list(data.read_documents("s", [str(folder / f"{i}.txt") for i in range(3)])) == texts[:3]
    with pytest.raises(RunFailed, match="source 's': .*texts is a folder but not a dataset saved with save_to_disk"):
        list(data.read_documents("s", [str(folder)]))
    with pytest.raises(RunFailed, match="source 's': cannot read x.csv"):
        (tmp_path / "x.csv").write_text("a,b")
        list(data.read_documents("s", [str(tmp_path / "x.csv")]))


def test_checkpoint_is_kept_as_safetensors(world, tmp_path):
    result = runner(keep_checkpoint=True).run(spec(world, tmp_path, {"arith": 0.5, "prose": 0.5}, tokens=BLOCK * BATCH * 4))
    assert (tmp_path / "out" / "checkpoint" / "model.safetensors").is_file()
    assert result.artifacts["checkpoint"] == str(tmp_path / "out" / "checkpoint")


def test_zero_tokens_evaluates_the_checkpoint_without_training(world, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    result = runner(keep_checkpoint=True).run(spec(world, tmp_path, {"arith": 0.5, "prose": 0.5}, tokens=0))
    tokenizer = world["tokenizer"]
    source = data.load_source("arith", [str(world["paths"]["arith"])], tokenizer, data.tokenizer_fingerprint(tokenizer),
                              BLOCK, 8, world["root"] / "cache" / "tokens")
    base = AutoModelForCausalLM.from_pretrained(world["model"], dtype=torch.float32).eval()
    untrained = ev.heldout_bpb(base, source.heldout, ev.token_byte_lengths(tokenizer), 32, bf16=False)
    assert result.metrics["bpb_arith"] == pytest.approx(untrained, rel=1e-5)  # thread counts reorder sums
    assert not any(k.startswith(("train_loss", "tokens_")) for k in result.metrics)
    assert result.cost["tokens"] == 0 and result.artifacts == {"checkpoint": world["model"]}


def test_tasks_and_sft_probe_are_scored(world, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    rng = random.Random(3)
    items = []
    for _ in range(20):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        choices = [f" {a + b}", f" {a + b + 1}", f" {a + b + 10}", f" {a + b - 1}"]
        items.append({"context": f"{a} + {b} =", "choices": choices, "answer": 0})
    (tasks / "sums.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    sft = tmp_path / "sft"
    sft.mkdir()
    for split in ("train", "eval"):
        rows = [{"prompt": f"{i} + 1 =", "answer": f" {i + 1}"} for i in range(30)]
        (sft / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner(tasks=str(tasks), sft_probe=True, sft_data=str(sft), sft_steps=5).run(
        spec(world, tmp_path, {"arith": 0.9, "prose": 0.1}))
    metrics = result.metrics
    assert 0.0 <= metrics["sums_acc"] <= 1.0 and metrics["sums_bpb"] > 0
    assert metrics["sft_answer_loss"] > 0
    assert 0 < result.stderr["sft_answer_loss"] < metrics["sft_answer_loss"]  # 30 held-out pairs


def test_ratio_stderr_is_the_standard_error_of_a_ratio_estimate():
    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 0.5, 40)
    # equal denominators: the ratio is the mean, and its standard error the sample sd over sqrt(n)
    assert ev.ratio_stderr(values, np.ones(40)) == pytest.approx(values.std(ddof=1) / np.sqrt(40))
    # unequal ones: the spread of the ratio over resampled item sets, as the delta method predicts
    lengths = rng.integers(1, 9, 400).astype(float)
    losses = lengths * rng.normal(2.0, 0.4, 400)
    draws = [rng.integers(0, 400, 400) for _ in range(2000)]
    bootstrap = np.std([losses[d].sum() / lengths[d].sum() for d in draws])
    assert ev.ratio_stderr(losses, lengths) == pytest.approx(bootstrap, rel=0.1)
    assert np.isnan(ev.ratio_stderr(values[:1], np.ones(1)))


# -- pure pieces ----------------------------------------------------------------------------------------
def test_allocate_blocks_is_exact_and_proportional():
    counts = data.allocate_blocks({"a": 0.5, "b": 0.3, "c": 0.2}, 7)
    assert sum(counts.values()) == 7 and counts == {"a": 4, "b": 2, "c": 1}
    counts = data.allocate_blocks({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 1000)
    assert sorted(counts.values()) == [333, 333, 334]


def test_select_blocks_repeats_whole_epochs_first():
    chosen = data.select_blocks({"a": 25}, {"a": 10}, {"a": 3.0}, seed=0, block_size=4)
    values, repeats = np.unique(chosen["a"], return_counts=True)
    assert len(values) == 10 and set(repeats) == {2, 3}
    with pytest.raises(RunFailed, match=r"source 'a': the mixture needs 100 tokens .*2.50 epochs"):
        data.select_blocks({"a": 25}, {"a": 10}, {"a": 2.0}, seed=0, block_size=4)


def test_token_byte_lengths_sum_to_the_text_bytes(world):
    tokenizer = world["tokenizer"]
    text = "The king said 12 + 7 = 19, café naïve — done."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ev.token_byte_lengths(tokenizer)[ids].sum() == len(text.encode("utf-8"))


def test_divergence_and_bad_options_fail_clearly(world, tmp_path):
    with pytest.raises(RunFailed, match="training diverged .*lower the runner's learning_rate"):
        runner(learning_rate=1e12).run(spec(world, tmp_path, {"arith": 0.5, "prose": 0.5}, tokens=BLOCK * BATCH * 4))
    with pytest.raises(RunFailed, match="bf16 must be auto, true or false"):
        runner(bf16="yes").run(spec(world, tmp_path, {"arith": 1.0}))
    with pytest.raises(RunFailed, match="less than one step"):
        runner().run(spec(world, tmp_path, {"arith": 1.0}, tokens=10))
    with pytest.raises(ConfigError, match="strategy must be one of ddp, fsdp"):
        runner(strategy="deepspeed")


# -- preemption and processes --------------------------------------------------------------------------
RUN_FROM_PICKLE = "import pickle, sys; runner, spec = pickle.load(open(sys.argv[1], 'rb')); runner.run(spec)"


def kill_once_checkpointed(options: MicroannealRunner, run: RunSpec, folder, children: list[int] | None = None) -> int:
    """Run ``run`` in a real subprocess, SIGKILL it as soon as its training state exists, and return the
    step that state holds; ``children`` (if given) receives the pids of the subprocess's own children
    alive just before the kill."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    state = Path(run.output_dir) / "train-state.pt"
    (folder / "job.pkl").write_bytes(pickle.dumps((options, run)))
    process = subprocess.Popen([sys.executable, "-c", RUN_FROM_PICKLE, str(folder / "job.pkl")], env=dict(os.environ))
    deadline = time.monotonic() + 300
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if children is not None:
        children.extend(alive_children(process.pid))
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    return torch.load(state, weights_only=True)["step"]


def alive_children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(parent) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


CAPS = MixtureSpace((Source("arith", max_repetition=4.0), Source("prose", max_repetition=4.0)))


def test_a_run_sigkilled_mid_training_resumes_from_its_checkpoint(world, tmp_path):
    """A real subprocess is SIGKILLed once its first checkpoint exists; the same run started again on its
    folder resumes there and ends with the uninterrupted run's metrics and losses, bit for bit (CPU,
    1 thread), and leaves no training state behind."""
    steps, mixture = 200, {"arith": 0.4, "prose": 0.6}
    options = runner(checkpoint_every=5)
    straight = options.run(spec(world, tmp_path / "straight", mixture, tokens=BLOCK * BATCH * steps, space=CAPS))

    killed = spec(world, tmp_path / "killed", mixture, tokens=BLOCK * BATCH * steps, space=CAPS)
    stopped = kill_once_checkpointed(options, killed, tmp_path)
    assert 0 < stopped < steps, f"killed at step {stopped} of {steps}: not mid-training"

    resumed = options.run(killed)
    assert resumed.cost["resumed_at_step"] == stopped and "resumed_at_step" not in straight.cost
    assert resumed.metrics == straight.metrics
    losses = [json.loads(open(r.artifacts["losses"]).read()) for r in (straight, resumed)]
    assert losses[0] == losses[1] and len(losses[0]) == steps
    assert not (Path(killed.output_dir) / "train-state.pt").exists()


def test_a_requeued_trial_resumes_in_its_first_runs_folder(world, tmp_path):
    """A trial whose controller died while its run was checkpointing is re-queued; the re-run gets the first
    run's folder and seed, so it resumes from that checkpoint instead of starting again."""
    import socket
    import subprocess
    import sys

    from optuna.trial import TrialState

    from mixopt.config import load_config
    from mixopt.loop import output_root, propose_batch, run_specs, run_study
    from mixopt.study import Study

    study = Study.open(load_config(micro_study(tmp_path / "study", world, checkpoint_every=5, tokens=BLOCK * BATCH * 200,
                                               n_trials=1)))
    propose_batch(study, 1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (orphan,) = study.start(1, owner=f"{socket.gethostname()}:{gone.pid}")
    (first,) = run_specs(study, [orphan], output_root(study.config, study.name))
    options = MicroannealRunner(**study.config.runner.options)
    stopped = kill_once_checkpointed(options, first, tmp_path)
    assert 0 < stopped < 200

    assert run_study(study) == 1
    (rerun,) = study.trials((TrialState.COMPLETE,))
    assert rerun.user_attrs["rerun_of"] == orphan.number and rerun.number != orphan.number
    assert rerun.user_attrs["seed"] == orphan.user_attrs["seed"]
    assert rerun.user_attrs["cost"]["resumed_at_step"] == stopped
    assert Path(rerun.user_attrs["artifacts"]["losses"]).parent == Path(first.output_dir)


def micro_study(folder, world, tokens: int = BLOCK * BATCH * 24, n_trials: int = 2, **runner_options):
    """A two-source study of ``n_trials`` microanneals on the tiny model, written in ``folder`` (random
    search, serial executor, sources repeated up to 4 epochs)."""
    import yaml

    config = {
        "name": "tiny", "seed": 0, "n_trials": n_trials, "batch_size": 1, "searcher": "random", "surrogate": "gp",
        "sources": [{"name": n, "paths": [str(world["paths"][n])], "max_repetition": 4} for n in ("arith", "prose")],
        "objectives": [{"name": n, "metric": f"bpb_{n}", "direction": "minimize"} for n in ("arith", "prose")],
        "fidelities": [{"name": "micro", "tokens": tokens, "model": world["model"]}],
        "runner": {"name": "microanneal", "options": {"block_size": BLOCK, "batch_size": BATCH, "learning_rate": 3e-3,
                                                      "heldout_blocks": 8, "tasks": None, "threads": 1, **runner_options}},
        "executor": {"name": "serial"},
    }
    folder.mkdir()
    (folder / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder / "study.yaml"


@pytest.mark.slow
def test_two_processes_train_like_one_through_study_run(world, tmp_path):
    """`mixopt study run` with ``processes: 2`` (gloo, 2 micro-batches of 2 blocks each per process and
    step), with DDP and with FSDP, against ``processes: 1`` (one batch of 8): the same global batch, so
    the same loss curves and metrics within float rounding (the first loss within 1e-5; the curves drift
    with the gradients' reduction order, bound 2e-3)."""
    import optuna

    from study_helpers import run_mixopt

    runs = {}
    for processes, micro, strategy in ((1, None, "ddp"), (2, 2, "ddp"), (2, 2, "fsdp")):
        config = micro_study(tmp_path / f"p{processes}-{strategy}", world, processes=processes,
                             micro_batch_size=micro, strategy=strategy)
        result = run_mixopt("study", "run", config, cwd=config.parent, timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
        trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{config.parent / 'study.db'}").get_trials()
        assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
        runs[processes, strategy] = trials
    for one, two, sharded in zip(runs[1, "ddp"], runs[2, "ddp"], runs[2, "fsdp"], strict=True):
        assert one.params == two.params == sharded.params
        np.testing.assert_allclose(sharded.values, two.values, atol=1e-4)  # FSDP against DDP: same processes
        assert one.params == two.params
        curves = [json.loads(open(t.user_attrs["artifacts"]["losses"]).read()) for t in (one, two)]
        assert len(curves[0]) == 24 and curves[0][-1] < curves[0][0]
        assert abs(curves[1][0] - curves[0][0]) < 1e-5
        np.testing.assert_allclose(curves[1], curves[0], atol=2e-3)
        np.testing.assert_allclose(two.values, one.values, atol=2e-3)
        for strategy in ("ddp", "fsdp"):  # no state, blocks or result left behind
            assert not list((tmp_path / f"p2-{strategy}" / "runs").rglob("train-*"))



@pytest.mark.slow
def test_a_killed_two_process_run_leaves_no_orphans_and_resumes(world, tmp_path):
    """SIGKILL of a run training in 2 processes takes its training processes with it (Linux parent-death
    signal); started again, it resumes from its checkpoint and ends exactly like an uninterrupted 2-process
    run (two gloo processes are bitwise reproducible; against one process, rounding of the gradients'
    reduction order grows over 600 steps to 1e-2)."""
    import time

    steps, mixture = 600, {"arith": 0.5, "prose": 0.5}  # orphans would train on for 10 s or more
    options = runner(processes=2, checkpoint_every=5)
    straight = options.run(spec(world, tmp_path / "straight", mixture, tokens=BLOCK * BATCH * steps, space=CAPS))
    killed = spec(world, tmp_path / "killed", mixture, tokens=BLOCK * BATCH * steps, space=CAPS)
    children: list[int] = []
    stopped = kill_once_checkpointed(options, killed, tmp_path, children)
    assert 0 < stopped < steps
    assert len(children) >= 2, f"expected the 2 training processes, saw {children}"
    deadline = time.monotonic() + 3
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if alive(pid)], "training processes outlived their killed run"

    resumed = options.run(killed)
    assert resumed.cost["resumed_at_step"] == stopped
    curves = [json.loads(open(r.artifacts["losses"]).read()) for r in (straight, resumed)]
    assert len(curves[1]) == steps
    np.testing.assert_array_equal(curves[1], curves[0])


# -- the merge proxy -------------------------------------------------------------------------------------
EXPERT_TOKENS = BLOCK * BATCH * 20


def proxy_spec(world, tmp_path, mixture, tokens=EXPERT_TOKENS, **extra) -> RunSpec:
    return spec(world, tmp_path, mixture, tokens=tokens, proxy="merge", space=CAPS, **extra)


@pytest.fixture
def expert_cache(tmp_path, monkeypatch):
    """A cache of this test's own (experts are keyed by their inputs; no other test's may be found)."""
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "experts"


def test_a_proxy_evaluation_scores_the_merged_experts_without_an_optimizer_step(world, tmp_path, expert_cache,
                                                                                 monkeypatch):
    """Once its experts exist, a proxy evaluation never steps an optimizer; its held-out BPB is that of the
    base plus 0.8 x (the weighted sum of the experts' task vectors), merged here by hand."""
    import torch
    from transformers import AutoModelForCausalLM

    mixture = {"arith": 0.25, "prose": 0.75}
    first = runner().run(proxy_spec(world, tmp_path, mixture, merge_scale=0.8))
    assert first.cost["experts_trained"] == 2 and first.cost["expert_seconds"] > 0
    assert first.cost["tokens"] == 2 * EXPERT_TOKENS

    def no_step(*args, **kwargs):
        raise AssertionError("a proxy evaluation stepped an optimizer")

    monkeypatch.setattr(torch.optim.AdamW, "step", no_step)
    monkeypatch.setattr(torch.optim.Optimizer, "step", no_step)
    again = runner().run(proxy_spec(world, tmp_path, mixture, merge_scale=0.8))
    assert again.metrics == first.metrics and again.cost["experts_trained"] == 0 and again.cost["tokens"] == 0
    assert "train_loss_last" not in again.metrics

    load = functools.partial(AutoModelForCausalLM.from_pretrained, dtype=torch.float32)
    base = load(world["model"]).eval()
    experts = {n: load(first.artifacts[f"expert_{n}"]).state_dict() for n in mixture}
    with torch.no_grad():
        for key, tensor in base.named_parameters():  # a tied weight once
            tensor += 0.8 * sum(w * (experts[n][key] - tensor) for n, w in mixture.items())
    tokenizer = world["tokenizer"]
    for name in mixture:
        source = data.load_source(name, [str(world["paths"][name])], tokenizer, data.tokenizer_fingerprint(tokenizer),
                                  BLOCK, 8, tmp_path / "cache" / "tokens")
        by_hand = ev.heldout_bpb(base, source.heldout, ev.token_byte_lengths(tokenizer), 32, bf16=False)
        assert again.metrics[f"bpb_{name}"] == pytest.approx(by_hand, abs=1e-5)


def test_experts_are_trained_once_and_a_source_at_weight_0_loads_none(world, tmp_path, expert_cache):
    """Across mixtures and across processes, an expert is trained once; each is a complete cache folder."""
    import subprocess
    import sys

    options = runner()
    only_arith = options.run(proxy_spec(world, tmp_path, {"arith": 1.0, "prose": 0.0}))
    assert set(only_arith.artifacts) == {"expert_arith"} and only_arith.cost["experts_trained"] == 1
    both = options.run(proxy_spec(world, tmp_path, {"arith": 0.6, "prose": 0.4}))
    assert both.cost["experts_trained"] == 1  # prose only
    assert both.artifacts["expert_arith"] == only_arith.artifacts["expert_arith"]
    folders = sorted(expert_cache.glob("*/manifest.json"))
    assert len(folders) == 2 and json.loads(folders[0].read_text())["info"]["steps"] == 20
    built = {f: f.stat().st_mtime_ns for f in folders}
    (tmp_path / "job.pkl").write_bytes(pickle.dumps((options, proxy_spec(world, tmp_path, {"arith": 0.1, "prose": 0.9}))))
    subprocess.run([sys.executable, "-c", RUN_FROM_PICKLE, str(tmp_path / "job.pkl")], check=True)
    assert {f: f.stat().st_mtime_ns for f in sorted(expert_cache.glob("*/manifest.json"))} == built
    longer = options.run(proxy_spec(world, tmp_path, {"arith": 0.5, "prose": 0.5}, tokens=2 * EXPERT_TOKENS))
    assert longer.cost["experts_trained"] == 2  # another budget: other experts


def test_a_proxy_killed_while_training_an_expert_keeps_the_finished_one(world, tmp_path, expert_cache):
    """A real subprocess is SIGKILLed while it trains its second expert; started again, the evaluation
    trains only that one and scores like an uninterrupted one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tokens, mixture = BLOCK * BATCH * 300, {"arith": 0.5, "prose": 0.5}
    (tmp_path / "job.pkl").write_bytes(pickle.dumps((runner(), proxy_spec(world, tmp_path, mixture, tokens=tokens))))
    process = subprocess.Popen([sys.executable, "-c", RUN_FROM_PICKLE, str(tmp_path / "job.pkl")], env=dict(os.environ))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and not (
            list(expert_cache.glob("*/manifest.json")) and list(expert_cache.glob("*.tmp"))):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert len(list(expert_cache.glob("*/manifest.json"))) == 1
    resumed = runner().run(proxy_spec(world, tmp_path, mixture, tokens=tokens))
    assert resumed.cost["experts_trained"] == 1 and len(list(expert_cache.glob("*/manifest.json"))) == 2
    assert resumed.metrics == runner().run(proxy_spec(world, tmp_path, mixture, tokens=tokens)).metrics


def test_a_study_searches_at_the_merge_proxy_through_study_run(world, tmp_path):
    """`mixopt study run` of 3 trials whose fidelity is the merge proxy: all complete, the experts are
    trained by the first trial only; a study of another runner with a proxy is refused in one line."""
    import optuna
    import yaml

    from study_helpers import assert_one_line_error, run_mixopt, write_study

    config = micro_study(tmp_path / "proxy", world, n_trials=3)
    data_ = yaml.safe_load(config.read_text())
    data_["fidelities"][0].update(proxy="merge", merge_scale=1.0)
    config.write_text(yaml.safe_dump(data_, sort_keys=False))
    result = run_mixopt("study", "run", config, cwd=config.parent, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{config.parent / 'study.db'}").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    trained = [t.user_attrs["cost"]["experts_trained"] for t in trials]
    assert trained[0] >= 1 and sum(trained) <= 2 and all(np.isfinite(t.values).all() for t in trials)

    refused = write_study(tmp_path, {"fidelities": [{"name": "merge", "tokens": 1e10, "proxy": "merge"}]})
    assert_one_line_error(run_mixopt("study", "run", refused, cwd=tmp_path), 2,
                          "proxy: merge needs the microanneal runner", "set runner: microanneal or remove proxy")
