"""Every ``--help`` epilog example is executed as written (through bash, redirections included) in a folder
laid out for it, and exits 0 with what it says it does.

Each example runs in the folder of its group below, in order; a group's first steps lay out what its
examples name (the synthetic study from ``mixopt init --example``, real tables from the RegMix and Olmix
swarms under the names the examples use, two tiny checkpoints of one architecture). Examples that train
the demo's real models or run a benchmark are listed in ``ELSEWHERE`` with the test that runs the same
command and options on a study or data of its own (a smaller one); this test fails if an epilog gains an
example that is neither executed here nor listed there.
"""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest
import yaml

from example_folders import layout, shell
from study_helpers import REPO

SYNTHETIC = "studies/synthetic/study.yaml"
# Examples whose command and options other tests run on studies or data of their own (they train models).
ELSEWHERE = {
    "mixopt bench search quality --fast": "tests/search/test_benchmark.py",
    "mixopt metrics studies/default/study.yaml --choices 4 --write": "tests/cli/test_metrics_cli.py",
    "mixopt init data/web data/code data/math --tokenizer checkpoints/base --out study.yaml": "tests/test_scaffold.py",
    "mixopt screen studies/default/study.yaml --replicates 3": "tests/test_screen.py",
    "mixopt study tell --trial 3 --file results.json": "tests/cli/test_study_cli.py (tell from a file)",
}


def epilog_examples() -> list[str]:
    """Every example command line of every epilog, its remark in parentheses dropped."""
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return [example.split("  (")[0].split(" (")[0].strip()
            for _, command, _ in hooks.commands() for example in hooks.epilog_examples(command.epilog)]


@pytest.mark.slow
def test_every_epilog_example_runs_as_written(tmp_path):
    folders = layout(tmp_path)
    examples = epilog_examples()
    runs = [  # (group, example prefix): the synthetic study's life in order, then the tables and checkpoints
        ("study", "mixopt init --example synthetic"),
        ("study", f"mixopt study ask {SYNTHETIC}"),
        ("study", f"mixopt study tell {SYNTHETIC}"),
        ("study", f"mixopt study run {SYNTHETIC}"),
        ("study", f"mixopt study status {SYNTHETIC}"),
        ("study", f"mixopt study export {SYNTHETIC}"),
        ("study", f"mixopt study report {SYNTHETIC}"),
        ("tables", "mixopt study import study.yaml"),
        ("tables", "mixopt surrogate fit"),
        ("tables", "mixopt surrogate predict"),
        ("olmix", "mixopt surrogate cv"),
        ("merge", "mixopt merge"),
    ]
    executed = set()
    for group, prefix in runs:
        (example,) = [e for e in examples if e.startswith(prefix)]
        result = shell(example, folders[group])
        assert result.returncode == 0, f"{example}\n{result.stderr[-2000:]}"
        executed.add(example)
        if prefix.startswith("mixopt study tell"):  # the other asked trials too: a run waits for trials handed out
            for trial in (0, 1, 2):
                told = shell(f"mixopt study tell {SYNTHETIC} --trial {trial} --values 3.0,3.0,3.0", folders[group])
                assert told.returncode == 0, told.stderr
    assert not set(examples) - executed - set(ELSEWHERE), "examples neither run here nor listed in ELSEWHERE"
    assert not set(ELSEWHERE) - set(examples), "ELSEWHERE lists an example no epilog has any more"

    study = folders["study"]
    asked = json.loads((study / "batch.json").read_text())
    assert len(asked) == 4
    status = shell(f"mixopt study status {SYNTHETIC} -f json", study)
    summary = json.loads(status.stdout)
    assert summary["states"] == {"COMPLETE": 40}  # the 4 told and 36 run
    mix = (study / "mix.yaml").read_text()
    assert "# trial: 3\n" in mix  # best:math is the told trial 3 (math 2.91, below every synthetic run)
    assert abs(sum(yaml.safe_load(mix).values()) - 1.0) < 1e-9
    report = study / "studies" / "synthetic" / "report"  # beside the config
    assert (report / "synthetic.html").is_file() and len(list(report.glob("synthetic-*.png"))) >= 5
    tables = folders["tables"]
    assert (tables / "pile_cc.joblib").is_file() and len(pd.read_csv(tables / "preds.csv")) == 20
    assert (folders["merge"] / "merged" / "model.safetensors").is_file()
