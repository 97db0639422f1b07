"""The cost-aware fidelity policy through `mixopt study run`: the budget holds, both fidelities are chosen
by the model, the study ends with a measured run at the target fidelity, and a killed run resumes."""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from mixopt.config import parse_config
from mixopt.costaware import fidelity_levels, run_costs, spent
from mixopt.errors import ConfigError
from study_helpers import run_mixopt

MICRO, TARGET = 1.0e6, 1.6e7
CONFIG = textwrap.dedent(f"""
    name: costaware
    sources: [{{name: web}}, {{name: code}}, {{name: math}}, {{name: qa}}]
    objectives: [{{name: loss, metric: loss}}]
    fidelities: [{{name: micro, tokens: {MICRO}}}, {{name: integration, tokens: {TARGET}}}]
    runner: {{name: synthetic, options: {{metrics: [loss], problem_seed: 3, noise: 0.02}}}}
    executor: serial
    searcher: random
    surrogate: gp
    batch_size: 4
    fidelity_policy: cost-aware
    budget: {{cost: BUDGET, unit: tokens, initial: 5, initial_target: 1}}
""")


def write(tmp_path, budget: float = 6 * TARGET, extra: str = "") -> None:
    (tmp_path / "study.yaml").write_text(CONFIG.replace("BUDGET", repr(budget)) + extra)


def test_a_cost_aware_study_spends_its_budget_and_ends_measured_at_the_target_and_resumes(tmp_path):
    write(tmp_path)
    os.environ["MIXOPT_FAILPOINTS"] = "tell:12"  # SIGKILL in the model's second batch or so
    try:
        killed = run_mixopt("study", "run", tmp_path / "study.yaml", cwd=tmp_path)
    finally:
        del os.environ["MIXOPT_FAILPOINTS"]
    assert killed.returncode == -9, killed.stderr
    resumed = run_mixopt("study", "run", tmp_path / "study.yaml", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "recommended mixture (round 1 integration run" in resumed.stdout
    study = optuna.load_study(study_name="costaware", storage=f"sqlite:///{tmp_path / 'study.db'}")
    trials = study.get_trials()
    failed = {t.number for t in trials if t.state == TrialState.FAIL}  # the batch the kill interrupted
    assert failed and failed == {t.user_attrs["rerun_of"] for t in trials if "rerun_of" in t.user_attrs}
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number not in failed)
    tokens = {"micro": MICRO, "integration": TARGET}
    total = sum(tokens[t.user_attrs["fidelity"]] for t in trials if t.number not in failed)  # each re-run once
    assert total <= 6 * TARGET and total > 6 * TARGET - TARGET - MICRO * 4  # spent, up to what a batch could not use
    chosen = [t for t in trials if t.user_attrs.get("chosen_by") == "cost-aware"]
    assert {t.user_attrs["fidelity"] for t in chosen} <= {"micro", "integration"} and chosen
    initial = [t for t in trials if t.user_attrs.get("chosen_by") == "initial"]
    assert len(initial) == 1 and initial[0].user_attrs["fidelity"] == "integration"  # queued once, not again on resume
    (final,) = [t for t in trials if t.user_attrs.get("round") == 1]
    assert final.user_attrs["fidelity"] == "integration" and final.number == max(t.number for t in trials)
    again = run_mixopt("study", "run", tmp_path / "study.yaml", cwd=tmp_path)
    assert again.returncode == 0 and len(study.get_trials()) == len(trials)  # done: nothing more is spent
    status = run_mixopt("study", "status", tmp_path / "study.yaml", "-f", "json", cwd=tmp_path)
    budget = json.loads(status.stdout)["budget"]
    assert budget["spent"] == total and budget["cost"] == 6 * TARGET
    assert budget["run_costs"] == {"micro": MICRO, "integration": TARGET}
    table = run_mixopt("study", "status", tmp_path / "study.yaml", cwd=tmp_path)
    assert f"budget: spent {total:.4g} of {6 * TARGET:.4g} tokens (one run: micro 1e+06, integration 1.6e+07)" in table.stdout


@pytest.mark.parametrize(("extra", "message"), [
    ("rounds: 2\n", "remove rounds"),
    ("fidelity_policy: cost-awre\n", "did you mean 'cost-aware'"),
    ("surrogate: multifidelity\n", "set budget.initial_target to 3 or more"),
])
def test_policy_conflicts_are_refused_in_one_line(tmp_path, extra, message):
    text = CONFIG.replace("BUDGET", repr(6 * TARGET))
    if extra.startswith("fidelity_policy"):
        text = text.replace("fidelity_policy: cost-aware\n", extra)
    elif extra.startswith("surrogate"):
        text = text.replace("surrogate: gp\n", extra)
    else:
        text += extra
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_a_budget_that_cannot_pay_for_the_design_and_the_final_run_is_refused():
    # 5 microanneals + 1 initial target run + the final target run: 3.7e7 tokens
    with pytest.raises(ConfigError, match=r"does not pay for the initial design and the final run at 'integration' \(3.7e\+07 tokens\)"):
        parse_config(CONFIG.replace("BUDGET", "3.0e+7"))
    parse_config(CONFIG.replace("BUDGET", "3.7e+7"))


def test_budget_without_the_policy_and_the_policy_without_two_fidelities_are_refused():
    plain = CONFIG.replace("fidelity_policy: cost-aware\n", "").replace("BUDGET", "1.0e+8")
    with pytest.raises(ConfigError, match="budget is the total cost of a fidelity_policy: cost-aware study"):
        parse_config(plain)
    one = CONFIG.replace(f", {{name: integration, tokens: {TARGET}}}", "").replace("BUDGET", "1.0e+8")
    with pytest.raises(ConfigError, match="list at least two"):
        parse_config(one)


class FakeTrial:
    """What the cost functions read of a trial: number, state, fidelity, measured seconds, rerun_of."""

    def __init__(self, fidelity: str, seconds: float | None, state=TrialState.COMPLETE, number: int = 0, **attrs) -> None:
        self.number, self.state = number, state
        self.user_attrs = {"fidelity": fidelity, **({"cost": {"seconds": seconds}} if seconds is not None else {}), **attrs}


def test_seconds_are_measured_per_fidelity_and_estimated_per_token_where_none_ran():
    config = parse_config(CONFIG.replace("unit: tokens", "unit: seconds").replace("BUDGET", "100.0"))
    np.testing.assert_allclose(fidelity_levels(config), [MICRO / TARGET, 1.0])
    np.testing.assert_allclose(run_costs(config, []), [MICRO / TARGET, 1.0])  # relative sizes before any run
    micro_only = [FakeTrial("micro", 2.0), FakeTrial("micro", 4.0)]
    np.testing.assert_allclose(run_costs(config, micro_only), [3.0, 3.0 * TARGET / MICRO])
    both = [*micro_only, FakeTrial("integration", 30.0)]
    np.testing.assert_allclose(run_costs(config, both), [3.0, 30.0])
    running = FakeTrial("integration", None, TrialState.RUNNING, number=7)  # started, not measured: its estimate counts
    assert spent(config, [*both, running], run_costs(config, both)) == pytest.approx(2 + 4 + 30 + 30)
    interrupted = FakeTrial("micro", None, TrialState.FAIL, number=8)
    rerun = FakeTrial("micro", 5.0, number=9, rerun_of=8)  # the interrupted run is counted once, by its re-run
    assert spent(config, [*both, interrupted, rerun], run_costs(config, both)) == pytest.approx(2 + 4 + 30 + 5)
