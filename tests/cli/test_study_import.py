"""`mixopt study import`: a real RegMix swarm becomes completed trials that a study then builds on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import yaml

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "regmix"
TARGET = "metric/the_pile_pile_cc_val_loss"


def mixopt(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixopt.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_import_regmix_swarm_then_continue(tmp_path):
    sources = [c for c in pd.read_csv(DATA / "train_mixture_1m.csv").columns if c != "index"]
    config = {
        "name": "warm", "sources": [{"name": s} for s in sources],
        "objectives": [{"name": "pile_cc", "metric": TARGET}],
        "fidelities": [{"name": "micro", "tokens": 1.0e9}],
        "runner": {"name": "synthetic", "options": {"metrics": [TARGET]}}, "executor": "serial", "searcher": "random",
        "n_trials": 4, "batch_size": 4,
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    result = mixopt("study", "import", "study.yaml", "--ratios", DATA / "train_mixture_1m.csv",
                    "--metrics", DATA / "train_pile_loss_1m.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported 512 of 512" in result.stdout
    study = optuna.load_study(study_name="warm", storage=f"sqlite:///{tmp_path / 'study.db'}")
    trials = study.get_trials()
    losses = pd.read_csv(DATA / "train_pile_loss_1m.csv")[TARGET].to_numpy()
    assert sorted(t.values[0] for t in trials) == sorted(losses)
    assert all(abs(sum(t.params.values()) - 1) < 1e-9 for t in trials)
    again = mixopt("study", "import", "study.yaml", "--ratios", DATA / "train_mixture_1m.csv",
                   "--metrics", DATA / "train_pile_loss_1m.csv", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stdout.split())  # the console wraps long lines
    assert "imported 0 of 512" in said and "512 already in the study (skipped)" in said
    assert len(optuna.load_study(study_name="warm", storage=f"sqlite:///{tmp_path / 'study.db'}").get_trials()) == 512
    assert mixopt("study", "run", "study.yaml", cwd=tmp_path).returncode == 0  # n_trials counts its own runs only
    trials = optuna.load_study(study_name="warm", storage=f"sqlite:///{tmp_path / 'study.db'}").get_trials()
    assert len(trials) == 516 and sum("imported_from" not in t.user_attrs for t in trials) == 4


def test_import_with_missing_source_columns_is_one_line(tmp_path):
    config = {"name": "bad", "sources": [{"name": "web"}, {"name": "code"}],
              "objectives": [{"name": "pile_cc", "metric": TARGET}], "fidelities": [{"name": "micro", "tokens": 1.0e9}],
              "runner": "synthetic"}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    result = mixopt("study", "import", "study.yaml", "--ratios", DATA / "train_mixture_1m.csv",
                    "--metrics", DATA / "train_pile_loss_1m.csv", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "missing ['web', 'code']" in result.stderr
