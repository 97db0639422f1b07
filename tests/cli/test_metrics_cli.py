"""``mixopt metrics`` as a user runs it: a synthetic study with replicated mixtures, the real command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from mixopt.config import load_config
from mixopt.headroom import BLOCK_START
from mixopt.loop import run_waiting
from mixopt.study import Study
from study_helpers import run_mixopt, write_study

PLANTED = {"saturated": "easy_acc", "noisy": "noisy_loss"}
LOSSES = ["code_loss", "math_loss", "qa_loss"]


@pytest.fixture
def replicated_study(tmp_path: Path) -> Path:
    """The synthetic study with a planted saturated accuracy and a planted noise-dominated loss among its
    three real losses: 6 mixtures (seeded polytope draws) run 3 times each at the microanneal fidelity
    (each trial has its own seed) and once each at the integration fidelity."""
    config = write_study(tmp_path, runner_options={"extra_metrics": PLANTED})
    study = Study.open(load_config(config))
    mixtures = study.space.round(study.space.sample(6, seed=0), study.config.granularity)
    for _ in range(3):
        study.enqueue(mixtures, "microanneal")
    study.enqueue(mixtures, "integration")
    run_waiting(study)
    assert study.n_complete() == 24
    return config


def test_metrics_flags_exactly_the_planted_saturated_and_noisy_metrics(replicated_study: Path):
    result = run_mixopt("metrics", replicated_study, "--format", "json", "--choices", "easy_acc=4",
                        cwd=replicated_study.parent)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_name = {m["name"]: m for m in report["metrics"]}
    assert sorted(by_name) == sorted([*LOSSES, *PLANTED.values()])
    assert {n for n, m in by_name.items() if m["flags"]} == set(PLANTED.values())
    assert by_name["easy_acc"]["flags"] == ["saturated"]
    # The noisy loss's single integration runs rank its mixtures at random too.
    assert by_name["noisy_loss"]["flags"][0] == "noise-dominated"
    for name in LOSSES:
        m = by_name[name]
        assert m["mixtures"] == 6 and m["replicated"] == 6 and m["ratio"] > 10
        assert m["rank_correlation"] > 0.5 and m["shared_mixtures"] == 6  # microanneal vs integration ranks
    assert by_name["noisy_loss"]["ratio"] < 1 and by_name["easy_acc"]["chance"] == 0.25
    assert by_name["easy_acc"]["headroom"] < 0.05 and by_name["easy_acc"]["ratio"] > 2  # a signal, no room
    assert report["suggested"] == sorted(LOSSES, key=lambda n: -by_name[n]["ratio"])
    assert report["other_fidelity"] == "integration" and report["thresholds"]["signal_to_noise_min"] == 2.0


def test_metrics_table_and_write_add_one_comment_block(replicated_study: Path):
    before = replicated_study.read_text()
    for _ in range(2):  # a second --write replaces the first block
        result = run_mixopt("metrics", replicated_study, "--write", cwd=replicated_study.parent)
        assert result.returncode == 0, result.stderr
    assert "noise-dominated" in result.stdout and "saturated" in result.stdout and "suggested objectives:" in result.stdout
    text = replicated_study.read_text()
    assert text.startswith(before) and text.count(BLOCK_START) == 1
    block = text[len(before):]
    assert all(line.startswith("#") for line in block.strip().splitlines())
    assert yaml.safe_load(text) == yaml.safe_load(before)  # comments only: the study's config is unchanged
    suggested = yaml.safe_load("\n".join(line[2:] for line in block.splitlines() if line.startswith("#   - ")))
    assert {o["metric"] for o in suggested} == set(LOSSES)
    assert all(o["direction"] == "minimize" for o in suggested)
    assert "easy_acc (saturated)" in block and "noisy_loss (noise-dominated" in block


def test_metrics_without_runs_or_with_bad_choices_is_one_line(tmp_path: Path):
    config = write_study(tmp_path)
    Study.open(load_config(config))
    empty = run_mixopt("metrics", config, cwd=tmp_path)
    assert empty.returncode == 2 and "no completed runs" in empty.stderr and len(empty.stderr.strip().splitlines()) == 1
    bad = run_mixopt("metrics", config, "--choices", "acc=1", cwd=tmp_path)
    assert bad.returncode == 2 and "--choices acc=1" in bad.stderr and "Traceback" not in bad.stderr


def test_planted_metrics_leave_the_objectives_draws_unchanged(tmp_path: Path):
    from mixopt.runners.synthetic import SyntheticRunner
    from mixopt.trials import RunSpec

    spec = RunSpec(0, {"a": 0.5, "b": 0.3, "c": 0.2}, "microanneal", 1e9, 3, str(tmp_path))
    plain = SyntheticRunner(metrics=["x", "y"]).run(spec).metrics
    planted = SyntheticRunner(metrics=["x", "y"], extra_metrics=PLANTED).run(spec).metrics
    assert planted["x"] == plain["x"] and planted["y"] == plain["y"]
    assert 0.99 <= planted["easy_acc"] <= 1.0 and abs(planted["noisy_loss"] - 2.0) < 0.3
    assert np.isfinite(list(planted.values())).all()
