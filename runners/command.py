"""Run any training program (OLMo-core, olmo-cookbook, torchtitan, Megatron, a script) as a runner.

For each trial the runner writes, into the trial's output folder:

- ``mixture.yaml``: the mixture in the chosen export dialect;
- ``run_spec.json``: trial, mixture, fidelity, token budget, seed, model, source paths, the share of
  each source's training pool the run may draw from (``pool_fraction``: below 1 at a fidelity with
  ``match_repetition``, where the program should subsample each source's pool, by the seed, to that
  share so that its epochs equal the target's), and where to write metrics;

then runs ``argv`` with no shell: each argument may hold placeholders ``{mixture}``, ``{spec}``,
``{metrics}``, ``{output_dir}``, ``{trial}``, ``{seed}``, ``{tokens}``, ``{fidelity}``, ``{model}``,
replaced as whole values (never pasted into a shell string). The program writes a JSON object
``{"metrics": {name: number}, "stderr": {...}?}`` (or a flat ``{name: number}``) to ``{metrics}``.
stdout and stderr go to ``run.log``. A non-zero exit, a timeout, or missing or invalid metrics fail
the trial with the reason and the log path.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from mixopt import export
from mixopt.errors import ConfigError
from mixopt.executors import describe_exit
from mixopt.runners.base import RunFailed, Runner
from mixopt.runners.parent_death import launcher
from mixopt.space import MixtureSpace, Source
from mixopt.trials import Evaluation, RunSpec

PLACEHOLDER = re.compile(r"\{(mixture|spec|metrics|output_dir|trial|seed|tokens|fidelity|model)\}")


class CommandRunner(Runner):
    """Options: ``argv`` (list of strings with placeholders), ``format`` (export dialect),
    ``timeout`` (seconds), ``env`` (extra environment variables), ``cwd``. The mixture file is what
    ``mixopt study export --trial N --fidelity F --format FORMAT`` writes for the same (unmeasured) trial:
    the spec's whole space at its budget, the study's grid and the same provenance header."""

    def __init__(
        self,
        argv: list[str],
        format: str = "olmo-core",
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ConfigError("runner 'command': argv must be a non-empty list of strings, e.g. [python, train.py, '{spec}']")
        if format not in export.DIALECTS:
            raise ConfigError(f"runner 'command': unknown format '{format}': choose one of {', '.join(export.DIALECTS)}")
        self.argv = argv
        self.format = format
        self.timeout = timeout
        self.env = env or {}
        self.cwd = cwd

    def run(self, spec: RunSpec) -> Evaluation:
        out = Path(spec.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "mixture": out / "mixture.yaml",
            "spec": out / "run_spec.json",
            "metrics": out / "metrics.json",
            "log": out / "run.log",
        }
        files["metrics"].unlink(missing_ok=True)
        space = spec.space or MixtureSpace(tuple(Source(name) for name in spec.mixture), token_budget=spec.tokens)
        export.write_atomic(files["mixture"], export.render(
            space, space.from_dict(spec.mixture), self.format, spec.granularity,
            export.trial_provenance(spec.study, spec.trial, spec.fidelity, None, space),
            allow_incomplete=True,  # the training program may know sources by name: a warning header, not a failed run
        ))
        export.write_atomic(files["spec"], json.dumps({
            "trial": spec.trial, "mixture": spec.mixture, "fidelity": spec.fidelity, "tokens": spec.tokens,
            "seed": spec.seed, "model": spec.model, "output_dir": str(out),
            "source_paths": {k: list(v) for k, v in spec.source_paths.items()},
            "pool_fraction": {name: spec.pool_fraction.get(name, 1.0) for name in spec.mixture},
            "mixture_file": str(files["mixture"]), "metrics_file": str(files["metrics"]),
        }, indent=2))
        values = {
            "mixture": str(files["mixture"]), "spec": str(files["spec"]), "metrics": str(files["metrics"]),
            "output_dir": str(out), "trial": str(spec.trial), "seed": str(spec.seed),
            "tokens": str(int(spec.tokens)), "fidelity": spec.fidelity, "model": spec.model or "",
        }
        argv = [PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in self.argv]
        start = time.perf_counter()
        returncode = self._execute(argv, files["log"])
        seconds = time.perf_counter() - start
        if returncode is None:
            raise RunFailed(f"timed out after {self.timeout:g} s; log: {files['log']}")
        if returncode != 0:
            raise RunFailed(f"{describe_exit(returncode)}: {_last_line(files['log'])}; log: {files['log']}")
        metrics, stderr = read_metrics(files["metrics"], files["log"])
        return Evaluation(
            metrics=metrics, stderr=stderr, cost={"seconds": seconds, "tokens": float(spec.tokens)},
            artifacts={k: str(v) for k, v in files.items()}, runner="command",
        )

    def _execute(self, argv: list[str], log: Path) -> int | None:
        """Run ``argv`` in its own process group; the exit code, or None after a timeout. When the program
        ends or times out, whatever is left of its group (e.g. data-loader workers) is killed. If this
        process dies first (a SIGKILLed controller), the program gets SIGTERM (``parent_death``: a launcher
        such as torchrun passes it on to its workers), so no orphan trains on."""
        with open(log, "wb") as handle:
            try:
                process = subprocess.Popen(
                    launcher(os.getpid(), signal.SIGTERM, argv), stdout=handle, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, cwd=self.cwd, env={**os.environ, **self.env}, start_new_session=True,
                )
            except OSError as exc:
                raise RunFailed(f"cannot start {argv[0]!r}: {exc.strerror}") from None
            exited = _wait_unreaped(process.pid, self.timeout)
            # The leader is running or a zombie, so its pid still names this group and no other.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            returncode = process.wait()
            return returncode if exited else None


def _wait_unreaped(pid: int, timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds (None: forever) for child ``pid`` to exit, without reaping it; whether it did."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.01
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(2 * delay, 0.5)
    return True


def read_metrics(path: Path, log: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics and standard errors from the program's JSON; ``RunFailed`` naming what is wrong."""
    if not path.is_file():
        raise RunFailed(f"the program exited 0 but wrote no metrics file {path}; log: {log}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunFailed(f"metrics file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); log: {log}") from None
    if not isinstance(data, dict):
        raise RunFailed(f"metrics file {path} must hold a JSON object; log: {log}")
    metrics = data.get("metrics", data)
    stderr = data.get("stderr", {}) if "metrics" in data else {}
    for name, table in (("metrics", metrics), ("stderr", stderr)):
        if not isinstance(table, dict):
            raise RunFailed(f"metrics file {path}: {name} must map names to finite numbers; log: {log}")
        for key, value in table.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise RunFailed(f"metrics file {path}: {name} '{key}' is {value!r} ({name} must map names to "
                                f"finite numbers); log: {log}")
    return {k: float(v) for k, v in metrics.items()}, {k: float(v) for k, v in stderr.items()}


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
