"""The OLMo-core launcher for the command runner (studies/olmo-core/train_olmo_core.py): trials of
``mixopt study run`` trained by OLMo-core's own trainer on CPU (gloo), a tiny model on raw token files."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from study_helpers import REPO, command_env, missing_component, run_mixopt

LAUNCHER = REPO / "studies" / "olmo-core" / "train_olmo_core.py"


@pytest.fixture(autouse=True)
def olmo_core():
    if importlib.util.find_spec("olmo_core") is None:
        missing_component("ai2-olmo-core is not installed: pip install -e '.[test]'")


def token_files(folder: Path) -> dict[str, Path]:
    """Raw uint16 token files (no header) of ids 0..299; 0 ends documents."""
    rng = np.random.default_rng(0)
    files = {}
    for name, n in {"web": 40_000, "code": 20_000, "math": 20_000}.items():
        files[name] = folder / f"{name}.bin"
        rng.integers(0, 300, n, dtype=np.uint16).tofile(files[name])
    return files


def test_trials_train_with_olmo_cores_trainer_through_study_run(tmp_path: Path):
    files = token_files(tmp_path)
    config = {
        "name": "olmo-core-launch",
        "sources": [{"name": "web", "tokens": 40_000, "paths": [str(files["web"])], "token_dtype": "uint16"},
                    {"name": "code", "tokens": 20_000, "max_repetition": 2, "paths": [str(files["code"])],
                     "token_dtype": "uint16"},
                    {"name": "math", "tokens": 20_000, "max_repetition": 2, "paths": [str(files["math"])],
                     "token_dtype": "uint16"}],
        "objectives": [{"name": "code", "metric": "code_loss"}, {"name": "math", "metric": "math_loss"}],
        "fidelities": [{"name": "microanneal", "tokens": 8192}],
        "searcher": "random",
        "runner": {"name": "command", "options": {
            "argv": [sys.executable, str(LAUNCHER), "{mixture}", "{spec}", "{metrics}",
                     "--model", "olmo2_1M", "--sequence-length", "64", "--global-batch-size", "1024"],
            "format": "olmo-core", "timeout": 600}},
        "executor": {"name": "serial"},
        "batch_size": 2, "n_trials": 2, "seed": 0,
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = run_mixopt("study", "run", "study.yaml", cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    study = optuna.load_study(study_name="olmo-core-launch", storage=f"sqlite:///{tmp_path / 'study.db'}")
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 2
    for trial in trials:
        folder = tmp_path / "runs" / "olmo-core-launch" / f"trial-{trial.number:05d}"
        metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
        assert set(metrics) == {"train_loss", "web_loss", "code_loss", "math_loss"}
        assert trial.values == [metrics["code_loss"], metrics["math_loss"]]
        # A vocabulary of 384 (ids 0..299 rounded up): an untrained model's loss is about ln 384 = 5.95.
        assert all(0 < v < math.log(384) + 0.5 for v in metrics.values())
        log = (folder / "run.log").read_text()
        # OLMo-core's trainer ran the trial's budget: 8,192 tokens in global batches of 1,024 is 8 steps.
        assert "Training for 8 steps" in log and "Training complete" in log and "[step=8/8" in log
        spec = json.loads((folder / "run_spec.json").read_text())
        assert spec["tokens"] == 8192


def launch(tmp_path: Path, mixture: str, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "mixture.yaml").write_text(mixture)
    (tmp_path / "run_spec.json").write_text(json.dumps({"tokens": 8192, "seed": 0, "output_dir": str(tmp_path)}))
    return subprocess.run([sys.executable, str(LAUNCHER), str(tmp_path / "mixture.yaml"), str(tmp_path / "run_spec.json"),
                           str(tmp_path / "metrics.json"), *extra], capture_output=True, text=True, env=command_env(),
                          timeout=300)


def test_the_launcher_refuses_in_one_line_what_it_cannot_train(tmp_path: Path):
    plain = launch(tmp_path, "web: 0.5\ncode: 0.5\n")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip() == (f"train_olmo_core: {tmp_path / 'mixture.yaml'} is not an olmo-core export naming "
                                    "its build call: set the command runner's format: olmo-core and the sources' "
                                    "token_dtype")
    files = token_files(tmp_path)
    header = "# load: x.build(npdtype=numpy.uint16, sequence_length=64)\n"
    body = yaml.safe_dump({"source_list": {"sources": [{"source_name": "web", "target_ratio": 1.0,
                                                        "paths": [str(files["web"])]}]},
                           "requested_tokens": 8192, "global_batch_size": 1024})
    model = launch(tmp_path, header + body, "--model", "no_such_model")
    assert model.returncode == 2 and "Traceback" not in model.stderr
    assert model.stderr.strip().splitlines()[-1] == ("train_olmo_core: model 'no_such_model' is no TransformerConfig "
                                                     "constructor in OLMo-core: name one such as olmo2_1M")
    batch = launch(tmp_path, header + body, "--global-batch-size", "1000")
    assert batch.returncode == 2 and batch.stderr.strip().endswith(
        "give --global-batch-size a multiple of it")
