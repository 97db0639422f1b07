"""SIGKILL the controller at 20 seeded points of one study, restarting after each: nothing completed is
lost, the final count is exact, every killed trial fails with a reason and is re-run once, and the
export is either complete or absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from study_helpers import write_study

N_TRIALS = 48
# (failpoint, largest occurrence to arm): proposals and submissions happen once a batch of 4, tells once a trial.
POINTS = [("propose", 2), ("submitted", 2), ("tell", 6)]


def run(config: Path, failpoints: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "MIXOPT_FAILPOINTS": failpoints}
    return subprocess.run([sys.executable, "-m", "mixopt.cli", "study", "run", str(config), "--no-report"],
                          capture_output=True, text=True, env=env, timeout=300)


def completed(storage: str) -> dict[int, tuple]:
    study = optuna.load_study(study_name="synthetic", storage=storage)
    return {t.number: (tuple(t.values), tuple(sorted(t.params.items())))
            for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}


@pytest.mark.slow
def test_twenty_kills_lose_nothing(tmp_path):
    config = write_study(tmp_path, {"n_trials": N_TRIALS, "executor": {"name": "serial"}})
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    export = tmp_path / "exports" / "synthetic.yaml"
    rng = np.random.default_rng(2026)
    kills = 0
    # 17 kills during the study (proposal, runs in flight, tell), then 3 during the final export.
    schedule = [POINTS[i % 3] for i in range(17)] + [("export", 1)] * 3
    for point, most in schedule:
        before = completed(storage) if (tmp_path / "study.db").exists() else {}
        result = run(config, f"{point}:{rng.integers(1, most + 1)}")
        if result.returncode == -9:
            kills += 1
        else:
            assert result.returncode == 0, result.stderr[-1500:]
        after = completed(storage)
        assert all(after.get(n) == v for n, v in before.items()), "a completed evaluation changed or vanished"
        if export.exists():
            data = yaml.safe_load(export.read_text())
            assert abs(sum(s["target_ratio"] for s in data["source_list"]["sources"]) - 1) < 1e-9
        assert not list(export.parent.glob(".*.tmp")) or point == "export"
    assert kills >= 15, f"only {kills} of 20 failpoints fired"
    final = run(config)
    assert final.returncode == 0, final.stderr[-1500:]
    study = optuna.load_study(study_name="synthetic", storage=storage)
    trials = study.get_trials()
    assert sum(t.state.name == "COMPLETE" for t in trials) == N_TRIALS
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed, "no trial was caught mid-run"
    assert all("interrupted" in t.user_attrs["fail_reason"] for t in failed)
    reruns = [t.user_attrs.get("rerun_of") for t in trials if "rerun_of" in t.user_attrs]
    assert sorted(reruns) == sorted(t.number for t in failed), "each killed trial is re-run exactly once"
    by_number = {t.number: t for t in trials}
    for t in trials:
        if "rerun_of" in t.user_attrs:
            assert t.params == by_number[t.user_attrs["rerun_of"]].params
    assert yaml.safe_load(export.read_text())["source_list"]["sources"]
    print(f"\nFIGURE crash test: {kills} of {len(schedule)} armed SIGKILLs fired, completed trials lost 0, "
          f"final completed {sum(t.state.name == 'COMPLETE' for t in trials)}/{N_TRIALS}, trials caught mid-run "
          f"{len(failed)}, each re-run exactly once ({len(reruns)} re-runs), partial exports 0")
