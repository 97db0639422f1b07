"""Several controllers on one study: exactly the configured count completes and no trial runs twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import optuna
import pytest

from mixopt.errors import StorageError
from mixopt.study import open_storage

COUNTING_TRAINER = textwrap.dedent(
    """
    import json, os, sys
    spec = json.load(open(sys.argv[1]))
    with open(sys.argv[2], "a") as log:          # one line per execution, appended atomically
        log.write(f"{spec['trial']}\\n")
    w = list(spec["mixture"].values())
    json.dump({"metrics": {"a": 1 - w[0], "b": w[0] ** 2}}, open(spec["metrics_file"], "w"))
    """
)


def write_study(tmp_path: Path, n_trials: int) -> Path:
    (tmp_path / "train.py").write_text(COUNTING_TRAINER)
    config = tmp_path / "study.yaml"
    config.write_text(textwrap.dedent(f"""
        name: shared
        sources: [{{name: web}}, {{name: code}}, {{name: math, max_weight: 0.5}}]
        objectives: [{{name: a, metric: a}}, {{name: b, metric: b}}]
        fidelities: [{{name: micro, tokens: 1.0e+6}}]
        runner:
          name: command
          options: {{argv: ["{sys.executable}", "{tmp_path / 'train.py'}", "{{spec}}", "{tmp_path / 'executions.log'}"]}}
        executor: serial
        searcher: random
        batch_size: 4
        n_trials: {n_trials}
    """))
    return config


def run_controllers(config: Path, storage: str, count: int) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-m", "mixopt.cli.__main__", "study", "run", str(config), "--storage", storage, "--no-report"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert b"s3cret-pw" not in out + err, "the storage password leaked into the output"
        if "@" in storage:
            assert b"***@" in err  # the URL is printed, masked


def check_exact(tmp_path: Path, storage: str, n_trials: int) -> None:
    study = optuna.load_study(study_name="shared", storage=storage)
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == n_trials
    executions = Counter((tmp_path / "executions.log").read_text().split())
    assert max(executions.values()) == 1, "a trial was evaluated twice"
    assert {int(k) for k in executions} >= {t.number for t in complete}
    assert len({t.user_attrs["controller"] for t in complete}) > 1, "only one controller did any work"


@pytest.mark.slow
def test_four_controllers_on_postgresql(tmp_path, postgres_url):
    config = write_study(tmp_path, n_trials=200)
    run_controllers(config, postgres_url, 4)
    check_exact(tmp_path, postgres_url, 200)


@pytest.mark.slow
def test_four_controllers_on_sqlite_wal(tmp_path):
    config = write_study(tmp_path, n_trials=60)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    run_controllers(config, storage, 4)
    check_exact(tmp_path, storage, 60)
    journal = subprocess.run(["python", "-c", f"import sqlite3; print(sqlite3.connect('{tmp_path / 'shared.db'}').execute('pragma journal_mode').fetchone()[0])"],
                             capture_output=True, text=True).stdout.strip()
    assert journal == "wal"


def test_unreachable_postgresql_is_one_clear_error():
    with pytest.raises(StorageError, match=r"cannot open storage postgresql\+psycopg://u:\*\*\*@127.0.0.1:9/db"):
        open_storage("postgresql+psycopg://u:hunter2@127.0.0.1:9/db")
