"""Every command block of README.md is executed as written, in order, and exits 0 with what it says it does.

A block runs line by line through bash in the folder laid out for it (``example_folders.layout``: the
synthetic study from ``mixopt init --example``, real RegMix tables under the names the lines use); blocks
that need a fresh machine or a shared database server are listed in ``ELSEWHERE`` with what runs them.
The test fails when README gains a block that is neither run here nor listed there.
"""

from __future__ import annotations

import json

import pytest
import yaml

from example_folders import blocks, layout, shell
from study_helpers import REPO

README = REPO / "README.md"
# The blocks' first lines, and what runs them instead.
ELSEWHERE = {
    "make run    # sets up .venv and runs the default study":
        ".ci/run runs `make test` from a clean checkout; the default study's commands (mixopt study run of the "
        "default example, on 4 trials) run in tests/docs/test_tutorials.py (default-study page)",
    "mixopt study run study.yaml --storage postgresql+psycopg://user:password@db-host/mixopt   # on each machine":
        "tests/reliability/test_hosts.py (controllers on a real PostgreSQL server, with host identities)",
}
# The folder each run block's lines need, by the block's first line.
FOLDERS = {
    "mixopt study run studies/synthetic/study.yaml            # run, or resume, a study": "study",
    "mixopt surrogate cv --ratios ratios.csv": "tables",
}


def command_blocks() -> list[str]:
    return [body for lang, body in blocks(README) if lang == "bash"]


def folder_of(block: str) -> str | None:
    first = block.splitlines()[0]
    return next((folder for prefix, folder in FOLDERS.items() if first.startswith(prefix)), None)


def test_every_block_is_run_here_or_listed_elsewhere():
    for block in command_blocks():
        first = block.splitlines()[0]
        assert folder_of(block) or first in ELSEWHERE, f"README block neither run here nor listed: {first!r}"
    firsts = {b.splitlines()[0] for b in command_blocks()}
    assert set(ELSEWHERE) <= firsts, "ELSEWHERE lists a block README no longer has"


@pytest.mark.slow
def test_readme_command_blocks_run_as_written(tmp_path):
    folders = layout(tmp_path)
    init = shell("mixopt init --example synthetic", folders["study"])  # what the block's study is
    assert init.returncode == 0, init.stderr
    for block in command_blocks():
        group = folder_of(block)
        if group is None:
            continue
        for line in block.splitlines():
            if line.strip():
                result = shell(line, folders[group])
                assert result.returncode == 0, f"README: {line}\n{result.stderr[-2000:]}"

    study = folders["study"]
    asked = json.loads((study / "batch.json").read_text())
    assert [t["trial"] for t in asked] == [40, 41, 42, 43]  # after the 40 trials run: the block tells trial 40
    status = json.loads(shell("mixopt study status studies/synthetic/study.yaml -f json", study).stdout)
    assert status["states"] == {"COMPLETE": 41, "RUNNING": 3}
    mix = yaml.safe_load((study / "mix.yaml").read_text())
    assert abs(sum(mix.values()) - 1.0) < 1e-9
    tables = folders["tables"]
    assert (tables / "model.joblib").is_file() and (tables / "preds.csv").read_text().count("\n") == 21
