"""Shared test helpers: study configs copied into ``tmp_path``, the real ``mixopt`` command, a flaky runner.

(Imported by name from the tests, so they live here rather than in a conftest: pytest loads several
conftest modules under the one name ``conftest``.)

Tests never write into the repository: every study config is a copy in a temporary folder, so its
SQLite storage (``study.db`` beside the config) lives there too.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
import yaml

from mixopt.errors import RunFailed
from mixopt.runners.synthetic import SyntheticRunner
from mixopt.trials import Evaluation, RunSpec

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_STUDY = REPO / "studies" / "synthetic" / "study.yaml"
MIXOPT = Path(sys.executable).with_name("mixopt")


def command_env() -> dict[str, str]:
    """The environment of a child process: one thread per library on the shared cores."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", COLUMNS="200")
    return env


def start_mixopt(*args: str | Path, cwd: Path) -> subprocess.Popen:
    """Start the installed ``mixopt`` console script (output captured); several can run at once."""
    return subprocess.Popen(
        [str(MIXOPT), *map(str, args)], cwd=cwd, env=command_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 180) -> subprocess.CompletedProcess:
    """Wait for a started command and return it as a completed process."""
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_mixopt(*args: str | Path, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the installed ``mixopt`` console script and capture its output."""
    return finish(start_mixopt(*args, cwd=cwd), timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    """``result`` exited ``code`` with one ``error:`` line on stderr holding every fragment, and no traceback."""
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def write_study(folder: Path, changes: dict | None = None, runner_options: dict | None = None) -> Path:
    """A copy of the synthetic study config in ``folder`` with top-level ``changes`` and runner options merged in."""
    data = yaml.safe_load(SYNTHETIC_STUDY.read_text())
    data.update(changes or {})
    if runner_options:
        data["runner"] = {**data["runner"], "options": {**data["runner"].get("options", {}), **runner_options}}
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def trial_states(db: Path) -> dict[str, int]:
    """Counts of trials by state, read straight from Optuna's SQLite tables (a plain reader, no Optuna);
    empty while the file or its tables do not exist yet."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as connection:
            return dict(connection.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())
    except sqlite3.OperationalError:
        return {}


class FlakyRunner(SyntheticRunner):
    """The synthetic runner, except that trials whose number is a multiple of ``fail_every`` raise ``RunFailed``."""

    def __init__(self, fail_every: int = 2, **options) -> None:
        super().__init__(**options)
        self.fail_every = fail_every

    def run(self, spec: RunSpec) -> Evaluation:
        if spec.trial % self.fail_every == 0:
            raise RunFailed(f"flaky runner refuses trial {spec.trial}")
        return super().run(spec)


FLAKY_RUNNER = f"{FlakyRunner.__module__}:FlakyRunner"
# The sys.path entry from which this module imports under its own name (tests/ or the repository root).
FLAKY_IMPORT_ROOT = Path(__file__).resolve().parents[FlakyRunner.__module__.count(".")]


def missing_component(reason: str) -> NoReturn:
    """Skip a test whose real component (a browser, a database server, a kernel feature) is missing here;
    under ``CI=true``, where .ci/run installs them, fail instead: CI cannot go green by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a test whose real component is missing fails)")
    pytest.skip(reason)


def required_module(name: str) -> ModuleType:
    """The module ``name`` (Ray, submitit...), whose absence is a :func:`missing_component`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing_component(f"{name} is not installed (pip install -e '.[test]')")


def tiny_base_model(tokenizer, folder: Path) -> Path:
    """A one-layer Llama (hidden size 32) for ``tokenizer``, seeded, saved with the tokenizer in ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
