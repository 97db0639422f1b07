"""Wrapper between mixopt's command runner and an olmo-cookbook-style launcher.

mixopt runs:  python train_cookbook.py RUN_SPEC.json [--dry-run]
It reads the trial's run spec and its mixture (olmo-cookbook dialect), writes the full experiment
config (base_config.yaml + this mixture + the token budget) beside them, launches it, and writes
the metrics JSON mixopt reads. Set COOKBOOK_LAUNCH to the launch command (the config path is appended),
e.g. "olmo-cookbook launch -c"; --dry-run skips the launch and scores the mixture with a toy formula so
the example runs anywhere.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    dry_run = "--dry-run" in sys.argv[2:]
    base = yaml.safe_load((Path(__file__).parent / "base_config.yaml").read_text())
    mixture = yaml.safe_load(Path(spec["mixture_file"]).read_text())
    config = {
        **base,
        "name": f"{base['name']}-trial{spec['trial']}",
        "seed": spec["seed"],
        "max_tokens": int(spec["tokens"]),
        "dataset": mixture["dataset"],
    }
    if spec.get("model"):
        config["load_path"] = spec["model"]
    config_path = Path(spec["output_dir"]) / "cookbook.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    if dry_run:
        weights = spec["mixture"]
        metrics = {
            "math_bpb": 1.0 - 0.5 * weights.get("math", 0.0) + 0.2 * weights.get("web", 0.0),
            "code_bpb": 1.0 - 0.5 * weights.get("code", 0.0) + 0.1 * weights.get("math", 0.0),
        }
    else:
        launch = shlex.split(os.environ.get("COOKBOOK_LAUNCH", "olmo-cookbook launch -c"))
        subprocess.run([*launch, str(config_path)], check=True)
        # The launcher's evaluation writes per-task bits-per-byte; point METRICS_FROM at that JSON.
        metrics = json.loads(Path(os.environ["METRICS_FROM"]).read_text())
    Path(spec["metrics_file"]).write_text(json.dumps({"metrics": metrics}))
    print(f"trial {spec['trial']}: wrote {config_path}")


if __name__ == "__main__":
    main()
