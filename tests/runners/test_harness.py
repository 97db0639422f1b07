"""lm-evaluation-harness tasks made by the tests (a jsonl dataset and a task YAML in ``tmp_path``) on the
demo base model: the harness agrees with mixopt's own likelihood scoring item by item, and a task runs
through ``mixopt study run`` with the microanneal runner into the study's trials."""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from mixopt.errors import ConfigError, RunFailed
from mixopt.runners.harness import HarnessEval, metric_name, task_metrics


def arithmetic_items(n: int, seed: int = 0) -> list[dict]:
    """Multiple-choice items in mixopt's task format (``context``, ``choices``, ``answer``), as the demo's."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        right = a + b
        wrong = rng.sample([right + d for d in (-11, -10, -2, -1, 1, 2, 10, 11)], 3)
        choices = [f" {v}" for v in [right, *wrong]]
        rng.shuffle(choices)
        items.append({"context": f"Problem: What is {a} + {b}?\nAnswer:", "choices": choices,
                      "answer": choices.index(f" {right}")})
    return items


def texts(n: int) -> list[str]:
    """Short held-out-like documents (well under the model's 512 positions)."""
    from mixopt.demo.data import ensure_data

    lines = ensure_data().source("web").read_text().splitlines()[-n:]
    return [json.loads(line)["text"][:300] for line in lines]


def write_tasks(folder: Path, items: list[dict], documents: list[str]) -> Path:
    """``toy_mc`` (multiple choice: the items' choices right after the context, no delimiter) and ``toy_ppl``
    (loglikelihood_rolling over documents) as lm-eval task YAMLs over local jsonl files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mc.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    (folder / "ppl.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in documents))
    local = {"dataset_path": "json", "test_split": "test"}
    (folder / "toy_mc.yaml").write_text(yaml.safe_dump({
        "task": "toy_mc", **local, "dataset_kwargs": {"data_files": {"test": str(folder / "mc.jsonl")}},
        "output_type": "multiple_choice", "doc_to_text": "{{context}}", "doc_to_choice": "{{choices}}",
        "doc_to_target": "answer", "target_delimiter": "",
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_bytes")],
    }))
    (folder / "toy_ppl.yaml").write_text(yaml.safe_dump({
        "task": "toy_ppl", **local, "dataset_kwargs": {"data_files": {"test": str(folder / "ppl.jsonl")}},
        "output_type": "loglikelihood_rolling", "doc_to_text": "", "doc_to_target": "{{text}}",
        "metric_list": [{"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False}],
    }))
    return folder


@pytest.fixture(scope="module")
def base():
    """The demo base model and tokenizer (built once into the cache), one torch thread."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mixopt.demo.base import ensure_base

    torch.set_num_threads(1)
    folder = ensure_base()
    return folder, AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), AutoTokenizer.from_pretrained(folder)


# -- naming and options (pure) ------------------------------------------------------------------------------
def test_metric_names_and_standard_errors_from_lm_eval_results():
    results = {"arc:easy": {"alias": "arc:easy", "sample_len": 20, "acc,none": 0.5, "acc_stderr,none": 0.1,
                            "exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": "N/A"},
               "wiki": {"bits_per_byte,none": 1.5, "bits_per_byte_stderr,none": "N/A", "name": "wiki"}}
    metrics, stderr = task_metrics(results)
    assert metrics == {"arc_easy_acc": 0.5, "arc_easy_exact_match_strict_match": 0.25, "wiki_bits_per_byte": 1.5}
    assert stderr == {"arc_easy_acc": 0.1}
    assert metric_name("t", "alias") is None and metric_name("t", "acc_stderr,none") is None


@pytest.mark.parametrize(("options", "message"), [
    ({"tasks": []}, "eval.tasks"),
    ({"tasks": ["x"], "harness": "olmes"}, "eval.harness"),
    ({"tasks": ["x"], "shots": 5}, "unknown key 'shots'"),
    ({"tasks": ["x"], "limit": 0}, "eval.limit"),
    ({"tasks": ["x"], "num_fewshot": -1}, "eval.num_fewshot"),
    ({"tasks": ["x"], "include_path": "/no/such/folder"}, "eval.include_path"),
    ("arc_easy", "expected a mapping"),
])
def test_bad_eval_options_are_one_line_config_errors(options, message):
    from mixopt.runners import RUNNERS

    with pytest.raises(ConfigError, match=message):
        RUNNERS.create("microanneal", {"eval": options})


def test_an_unknown_task_is_a_run_failure_naming_it(base, tmp_path):
    from mixopt.runners import harness

    folder = write_tasks(tmp_path / "tasks", arithmetic_items(2), texts(1))
    with pytest.raises(RunFailed, match="task 'toy_nope' not found in"):
        harness.run(base[1], base[2], HarnessEval(tasks=("toy_nope",), include_path=str(folder)), 8)


# -- agreement with mixopt's own scoring ---------------------------------------------------------------------
def test_multiple_choice_agrees_with_mixopts_scoring_item_by_item(base, tmp_path):
    """With the document boundary mixopt scores after (add_bos_token: the demo's BOS is its end of text),
    every choice's log-likelihood matches mixopt's (float32 batches: within 1e-4 nats), lm-eval's
    ``acc_bytes`` (log-likelihood per byte) marks exactly the items mixopt's ranking gets right, and the
    task's metric is mixopt's ``acc``."""
    from mixopt.runners import harness
    from mixopt.runners import microanneal_eval as ev

    _, model, tokenizer = base
    items = arithmetic_items(40)
    folder = write_tasks(tmp_path / "tasks", items, texts(1))
    results = harness.run(model, tokenizer, HarnessEval(tasks=("toy_mc",), include_path=str(folder), add_bos_token=True), 16,
                          log_samples=True)
    samples = sorted(results["samples"]["toy_mc"], key=lambda s: s["doc_id"])
    assert len(samples) == len(items)

    ours = ev.choice_logprobs(model, tokenizer, items, 16, False, 512)
    theirs = [np.array([r[0] for r in s["filtered_resps"]]) for s in samples]
    for mine, harness_lls in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(harness_lls, mine, atol=1e-4)
    right = ev.predicted_choices(items, ours) == np.array([i["answer"] for i in items])
    assert [bool(s["acc_bytes"]) for s in samples] == right.tolist()
    assert 0 < right.sum() < len(items)  # a real ranking, not all right or all wrong
    metrics, stderr = harness.task_metrics(results["results"])
    assert metrics["toy_mc_acc_bytes"] == pytest.approx(ev.score_items(model, tokenizer, items, 16, False, 512)["acc"])
    n = len(items)
    p = metrics["toy_mc_acc_bytes"]
    assert stderr["toy_mc_acc_bytes"] == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)))  # lm-eval's sample stderr


def test_perplexity_task_on_a_checkpoint_folder_is_mixopts_bits_per_byte(base, tmp_path):
    """A loglikelihood_rolling task on the saved checkpoint: each document conditioned on the end-of-text
    token, as mixopt's continuation scoring after an empty context; bits per byte over all documents."""
    from mixopt.runners import harness
    from mixopt.runners import microanneal_eval as ev

    folder, model, tokenizer = base
    documents = texts(6)
    tasks = write_tasks(tmp_path / "tasks", arithmetic_items(2), documents)
    metrics, _ = harness.evaluate_checkpoint(folder, HarnessEval(tasks=("toy_ppl",), include_path=str(tasks)))
    logprob, _ = ev.continuation_logprobs(model, tokenizer, [("", t) for t in documents], 8, False, 512)
    expected = -logprob.sum() / math.log(2) / sum(len(t.encode("utf-8")) for t in documents)
    assert metrics == {"toy_ppl_bits_per_byte": pytest.approx(expected, rel=1e-5)}


# -- through the product ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_harness_task_runs_through_study_run_into_the_study(tmp_path):
    """`mixopt study run` of two tiny microanneals (web + math, 16 steps) on the demo base model, with the
    test's two tasks as the runner's ``eval`` and one of their metrics as an objective, with the hub
    unreachable: every trial stores the tasks' metrics and standard errors."""
    import optuna

    from mixopt.demo.base import ensure_base
    from study_helpers import REPO, run_mixopt

    folder = write_tasks(tmp_path / "tasks", arithmetic_items(16), texts(3))
    config = yaml.safe_load((REPO / "studies" / "default" / "study.yaml").read_text())
    config.update(
        name="harness", n_trials=2, batch_size=1, searcher="random", executor={"name": "serial"},
        sources=[{"name": "web", "tokens": 800000}, {"name": "math", "tokens": 850000}],
        constraints=[],
        objectives=[{"name": "math", "metric": "bpb_math", "direction": "minimize"},
                    {"name": "toy", "metric": "toy_mc_acc_bytes", "direction": "maximize"}],
        fidelities=[{"name": "microanneal", "tokens": 64 * 4 * 16, "model": str(ensure_base())}],
        runner={"name": "microanneal", "options": {
            "block_size": 64, "batch_size": 4, "heldout_blocks": 4, "tasks": None, "threads": 1,
            "eval": {"harness": "lm-eval", "tasks": ["toy_mc", "toy_ppl"], "include_path": str(folder), "limit": 10}}},
    )
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # the child's hub: nothing listens there
    try:
        result = run_mixopt("study", "run", path, "--no-report", cwd=tmp_path, timeout=900)
    finally:
        del os.environ["HF_ENDPOINT"]
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="harness", storage=f"sqlite:///{tmp_path / 'study.db'}").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        metrics, stderr = trial.user_attrs["metrics"], trial.user_attrs["stderr"]
        assert {"toy_mc_acc", "toy_mc_acc_bytes", "toy_ppl_bits_per_byte", "bpb_math"} <= set(metrics)
        assert trial.values[1] == metrics["toy_mc_acc_bytes"] and metrics["toy_mc_acc_bytes"] in np.arange(11) / 10
        assert 0 < metrics["toy_ppl_bits_per_byte"] < 8 and "toy_mc_acc_bytes" in stderr
    # The anneals moved the model: the two mixtures' perplexities differ.
    assert trials[0].user_attrs["metrics"]["toy_ppl_bits_per_byte"] != trials[1].user_attrs["metrics"]["toy_ppl_bits_per_byte"]


def test_lm_eval_is_imported_only_when_a_run_evaluates_with_it():
    import subprocess
    import sys

    code = ("import sys; from mixopt.runners import RUNNERS; "
            "RUNNERS.create('microanneal', {'eval': {'tasks': ['x']}}); import mixopt.cli; "
            "assert 'lm_eval' not in sys.modules, 'lm_eval imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
