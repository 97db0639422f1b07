"""Integration rounds on the synthetic runner: promotions learn from every run and get better; seeds of
the recommendation are merged and the merge evaluated."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from safetensors import safe_open
from safetensors.torch import save_file

from mixopt.config import load_config
from mixopt.errors import ConfigError, RunFailed
from mixopt.rounds import merge_results, run_rounds
from mixopt.runners.synthetic import SyntheticRunner, expected_outcome
from mixopt.study import Study
from mixopt.trials import Evaluation, RunSpec
from study_helpers import run_mixopt

CONFIG = textwrap.dedent("""
    name: rounds
    sources: [{name: web}, {name: code}, {name: math}, {name: qa}, {name: books}]
    constraints: [{name: anchor, sources: [web, books], min: 0.3}]
    objectives: [{name: loss, metric: loss}]
    fidelities: [{name: micro, tokens: 1.0e+6}, {name: integration, tokens: 1.0e+7}]
    runner: {name: synthetic, options: {metrics: [loss], problem_seed: PROBLEM, noise: 0.02}}
    executor: serial
    searcher: random
    batch_size: 4
    n_trials: 20
    rounds: 5
    pick: best:loss
    surrogate: loglinear
    seed: PROBLEM
""")


@pytest.mark.slow
@pytest.mark.parametrize("problem", [1, 2, 3])
def test_five_rounds_improve_on_round_one(tmp_path, problem):
    (tmp_path / "study.yaml").write_text(CONFIG.replace("PROBLEM", str(problem)))
    config = load_config(tmp_path / "study.yaml")
    study = Study.open(config)
    recommendation = run_rounds(study)
    promoted = sorted((t.user_attrs["round"], t) for t in study.trials((TrialState.COMPLETE,)) if "round" in t.user_attrs)
    assert [r for r, _ in promoted] == [1, 2, 3, 4, 5]
    assert study.n_complete("micro") == 20
    law = SyntheticRunner(metrics=["loss"], problem_seed=problem).law(list(study.space.names))
    truth = [expected_outcome(law, study.weights_of(t), integration=True)[0, 0] for _, t in promoted]
    assert truth[-1] < truth[0], f"round 5 ({truth[-1]:.4f}) is not better than round 1 ({truth[0]:.4f})"
    assert recommendation.round == 5 and recommendation.measured is not None
    assert recommendation.trial == promoted[-1][1].number
    stored = study.optuna.user_attrs["predicted_front"]
    assert stored["round"] == 5 and 0 < len(stored["points"]) <= 10
    assert all(study.config.space("integration").is_feasible(study.space.from_dict(p["mixture"]), tol=1e-6)
               for p in stored["points"])
    # Resuming a finished study promotes nothing new.
    run_rounds(study)
    assert len([t for t in study.trials() if "round" in t.user_attrs]) == 5


def test_rounds_need_an_integration_fidelity(tmp_path):
    text = CONFIG.replace("PROBLEM", "1").replace(", {name: integration, tokens: 1.0e+7}", "")
    (tmp_path / "study.yaml").write_text(text)
    with pytest.raises(ConfigError, match="integration fidelity"):
        load_config(tmp_path / "study.yaml")


def test_merge_seeds_needs_rounds_and_two_seeds(tmp_path):
    for text, message in ((CONFIG.replace("rounds: 5", "merge_seeds: 2"), "merge_seeds needs rounds"),
                          (CONFIG + "merge_seeds: 1\n", "merge_seeds must be >= 2")):
        (tmp_path / "study.yaml").write_text(text.replace("PROBLEM", "1"))
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / "study.yaml")


# -- merging seeds of the recommended mixture ---------------------------------------------------------
class CheckpointRunner(SyntheticRunner):
    """The synthetic runner that also writes a checkpoint when asked (one tensor filled with the run's
    seed); a run of 0 tokens evaluates ``spec.model`` instead: every metric is the mean of its tensor."""

    def __init__(self, keep_checkpoint: bool = False, **options) -> None:
        super().__init__(**options)
        self.keep_checkpoint = keep_checkpoint

    def run(self, spec: RunSpec) -> Evaluation:
        if spec.tokens == 0:
            with safe_open(str(Path(spec.model) / "model.safetensors"), framework="pt") as weights:
                value = weights.get_tensor("w").double().mean().item()
            return Evaluation(metrics={m: value for m in self.metrics}, artifacts={"checkpoint": spec.model})
        evaluation = super().run(spec)
        if self.keep_checkpoint:
            folder = Path(spec.output_dir) / "checkpoint"
            folder.mkdir(parents=True, exist_ok=True)
            save_file({"w": torch.full((4,), float(spec.seed))}, str(folder / "model.safetensors"))
            evaluation.artifacts["checkpoint"] = str(folder)
        return evaluation


class ForgetfulRunner(CheckpointRunner):
    """Has the keep_checkpoint option but never returns a checkpoint."""

    def run(self, spec: RunSpec) -> Evaluation:
        return SyntheticRunner.run(self, spec)


def merge_config(folder: Path, runner: str) -> Study:
    """A two-round study with ``merge_seeds: 2`` in ``folder`` on ``runner``."""
    folder.mkdir(exist_ok=True)
    text = (CONFIG.replace("PROBLEM", "1").replace("n_trials: 20", "n_trials: 8").replace("rounds: 5", "rounds: 2")
            .replace("name: synthetic", f"name: '{runner}'") + "merge_seeds: 2\n")
    (folder / "study.yaml").write_text(text)
    return Study.open(load_config(folder / "study.yaml"))


def test_merge_seeds_runs_merges_and_evaluates_the_recommendation_once(tmp_path):
    study = merge_config(tmp_path, f"{CheckpointRunner.__module__}:CheckpointRunner")
    recommendation = run_rounds(study)
    runs = optuna.load_study(study_name="rounds-merge", storage=study.config.storage_url)
    seeds = [t for t in runs.get_trials() if t.user_attrs["fidelity"] == "integration"]
    (merge,) = [t for t in runs.get_trials() if t.user_attrs["fidelity"] == "seed-merge"]
    assert [t.state for t in seeds] == [TrialState.COMPLETE] * 2
    assert all(t.user_attrs["merge_for"] == recommendation.trial and t.params == recommendation.mixture for t in seeds)
    assert seeds[0].user_attrs["seed"] != seeds[1].user_attrs["seed"]
    assert merge.user_attrs["merge_of"] == [t.number for t in seeds]
    assert merge.user_attrs["artifacts"]["checkpoint"] == recommendation.merged_checkpoint
    # The merge's evaluation read the average of the two seed checkpoints (each tensor is its seed).
    assert recommendation.merged == [sum(t.user_attrs["seed"] for t in seeds) / 2]
    assert recommendation.seeds == [t.values for t in seeds] and recommendation.measured is not None
    assert not any("merge_for" in t.user_attrs for t in study.trials()), "merge runs belong to their own study"
    assert run_rounds(study) == recommendation and len(runs.get_trials()) == 3, "a finished merge ran again"
    stored = {"trial": recommendation.trial, "seeds": recommendation.seeds, "merged": recommendation.merged,
              "checkpoint": recommendation.merged_checkpoint}
    assert merge_results(study) == [stored]
    status = run_mixopt("study", "status", "study.yaml", "-f", "json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["seed_merges"] == [stored]


def test_merge_seeds_refuses_a_runner_without_checkpoints_before_running(tmp_path):
    study = merge_config(tmp_path, "synthetic")
    assert merge_results(study) == []  # nothing merged yet
    with pytest.raises(ConfigError, match="merge_seeds needs a runner that keeps checkpoints .* runner 'synthetic' has none"):
        run_rounds(study)
    assert study.trials() == []
    study = merge_config(tmp_path / "forgetful", f"{ForgetfulRunner.__module__}:ForgetfulRunner")
    with pytest.raises(RunFailed, match=r"returns artifacts\['checkpoint'\]: seed runs \[0, 1\] returned none"):
        run_rounds(study)


GATED = CONFIG.replace("PROBLEM", "1").replace("n_trials: 20", "n_trials: 8").replace("rounds: 5", "rounds: 1") + \
    "promote: {max_distance: 0.0, local_batch: 4}\n"  # no candidate off a measured run passes: a local batch first


@pytest.mark.slow
def test_a_failed_gate_runs_the_local_batch_first_through_the_cli_and_resumes(tmp_path):
    import os

    (tmp_path / "study.yaml").write_text(GATED)
    os.environ["MIXOPT_FAILPOINTS"] = "tell:10"  # SIGKILL at the second told run of the local batch
    try:
        killed = run_mixopt("study", "run", tmp_path / "study.yaml", cwd=tmp_path)
    finally:
        del os.environ["MIXOPT_FAILPOINTS"]
    assert killed.returncode == -9, killed.stderr
    assert "round 1 promotion: local batch of 4 microanneals first (distance to the nearest run" in killed.stderr
    resumed = run_mixopt("study", "run", tmp_path / "study.yaml", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name="rounds", storage=f"sqlite:///{tmp_path / 'study.db'}")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    local = [t for t in complete if t.user_attrs.get("local_for_round") == 1]
    (integration,) = [t for t in complete if t.user_attrs.get("round") == 1]
    assert len(local) == 4 and all(t.user_attrs["fidelity"] == "micro" for t in local)
    assert max(t.number for t in local) < integration.number  # every local run before the integration run
    log = study.user_attrs["promotion_log"]
    assert [e["action"] for e in log] == ["local batch of 4 microanneals first", "promoted"]
    assert all(e["failures"] for e in log)  # the gate still fails; the log says so, and the round goes on
    # The first candidate is among the local runs: it is measured at both fidelities.
    first = log[0]["candidate"]
    assert any(all(abs(t.params[k] - v) < 1e-3 for k, v in first.items()) for t in local)
    checks = log[-1]["checks"]
    assert set(checks) == {"objectives", "distance", "movement"} and set(checks["movement"]) == {"50%", "75%"}
    assert "round 1 promotion: promoted" in resumed.stderr
    status = run_mixopt("study", "status", tmp_path / "study.yaml", "-f", "json", cwd=tmp_path)
    assert [e["action"] for e in json.loads(status.stdout)["promotion_log"]] == [e["action"] for e in log]
    page = (tmp_path / "report" / "rounds.html").read_text()
    assert "Trust before promotion" in page and "round 1: local batch of 4 microanneals first" in page
