"""A quick command line: the CLI and the commands that drive a study from outside (ask, tell) leave the heavy
stack unimported (checked in fresh processes through sys.modules; the seconds are in BENCHMARKS.md, measured
by ``python -m mixopt.benchmarks.cli_start``, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

from study_helpers import command_env, write_study

HEAVY = ("torch", "botorch", "gpytorch", "plotly", "transformers", "datasets", "sklearn", "pandas", "scipy.optimize",
         "scipy.stats", "scipy.special", "lightgbm")


def imported_after(code: str, cwd) -> list[str]:
    """The HEAVY modules in sys.modules after ``code`` runs in a fresh interpreter."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, env=command_env(),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def command(*args: str) -> str:
    """Code that runs ``mixopt ARGS`` in process (as the console script does) and survives its exit."""
    return f"from mixopt.cli import main\ntry:\n    main({list(args)!r})\nexcept SystemExit as exc:\n    assert not exc.code, exc.code"


def test_importing_the_cli_and_help_import_none_of_the_heavy_stack(tmp_path):
    assert imported_after("import mixopt.cli", tmp_path) == []
    assert imported_after(command("study", "export", "--help"), tmp_path) == []


def test_ask_and_tell_import_none_of_the_heavy_stack(tmp_path):
    """On the synthetic study (random searcher, an anchor group): optuna and numpy, but no model or solver."""
    config = write_study(tmp_path, {"executor": "serial"})
    asked = subprocess.run([sys.executable, "-m", "mixopt.cli", "study", "ask", str(config), "-n", "2"],
                           capture_output=True, text=True, cwd=tmp_path, env=command_env(), timeout=120)
    assert asked.returncode == 0, asked.stderr
    first, second = (t["trial"] for t in json.loads(asked.stdout))
    assert imported_after(command("study", "ask", str(config), "-n", "1"), tmp_path) == []
    assert imported_after(command("study", "tell", str(config), "--trial", str(first), "--values", "3.1,3.0,3.2"),
                          tmp_path) == []
    assert imported_after(command("study", "tell", str(config), "--trial", str(second), "--fail", "oom"), tmp_path) == []
