"""A hostile config: a YAML tag that would run code under an unsafe loader is refused with one line, through
the real command, and runs nothing."""

from __future__ import annotations

import subprocess
import sys

from study_helpers import SYNTHETIC_STUDY, command_env


def test_a_yaml_tag_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    canary = tmp_path / "canary"
    config = tmp_path / "study.yaml"
    tag = "!!python/object/apply:os.system"
    config.write_text(SYNTHETIC_STUDY.read_text().replace("seed: 0", f'seed: {tag} ["touch {canary}"]'))
    result = subprocess.run([sys.executable, "-m", "mixopt.cli", "study", "run", str(config)],
                            capture_output=True, text=True, env=command_env(), timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: study config is not valid YAML")
    assert not canary.exists(), "a YAML tag ran code"
    assert not (tmp_path / "study.db").exists()
    print(f"\nFIGURE safe YAML ({tag}): exit 2, code run 0, study created 0; message: {result.stderr.strip()}")
