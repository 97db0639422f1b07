"""CLI start-up: wall seconds of the commands that drive a study from outside, against ``python -c pass``.

Each command runs ``--repeats`` times in a fresh process (``python -m mixopt.cli``, what the ``mixopt``
console script runs), interleaved so machine load falls on all alike; the table gives the median, the
quartiles and the median minus the median of ``python -c pass`` in the same run. The study is the
packaged synthetic example (random searcher, 6 sources, 3 objectives), written by ``mixopt init
--example synthetic`` into a temporary folder, with ``--told`` trials asked and told first, so ``study
status`` has a recommendation to compute (one GP per objective: that is work, not start-up).

    python -m mixopt.benchmarks.cli_start [--repeats 7] [--told 4] [--pythonpath TREE]

``--pythonpath`` puts another tree first on the commands' path (e.g. an older checkout laid out as
installed), to time another version with the same script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _env(pythonpath: str | None) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    return env


def _mixopt(*args: str) -> list[str]:
    return [sys.executable, "-m", "mixopt.cli", *args]


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of one run of ``argv`` and its stdout; a failed run stops the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return seconds, result.stdout


def _asked(config: str, env: dict[str, str], cwd: Path) -> int:
    """The trial number ``mixopt study ask -n 1`` hands out."""
    import json

    return int(json.loads(_run(_mixopt("study", "ask", config, "-n", "1"), env, cwd)[1])[0]["trial"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs of each command (median reported)")
    parser.add_argument("--told", type=int, default=4, help="trials asked and told before timing")
    parser.add_argument("--pythonpath", default=None, help="a tree put first on the commands' PYTHONPATH")
    args = parser.parse_args(argv)
    env = _env(args.pythonpath)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="cli-start-") as folder:
        cwd = Path(folder)
        from mixopt.examples import write_example

        config = str(write_example("synthetic", cwd / "synthetic"))
        for _ in range(args.told):
            _run(_mixopt("study", "tell", config, "--trial", str(_asked(config, env, cwd)), "--values", "3.1,3.0,3.2"), env, cwd)
        commands = {
            "python -c pass": lambda: [sys.executable, "-c", "pass"],
            "mixopt --help": lambda: _mixopt("--help"),
            "mixopt study export --help": lambda: _mixopt("study", "export", "--help"),
            "mixopt study ask CONFIG -n 1": lambda: _mixopt("study", "ask", config, "-n", "1"),
            "mixopt study tell CONFIG --trial N --values ...": lambda: _mixopt(
                "study", "tell", config, "--trial", str(_asked(config, env, cwd)), "--values", "3.1,3.0,3.2"),
            "mixopt study status CONFIG": lambda: _mixopt("study", "status", config),
        }
        for _ in range(args.repeats):
            for name, command in commands.items():
                times.setdefault(name, []).append(_run(command(), env, cwd)[0])  # tell's ask is outside the timing
    base = statistics.median(times["python -c pass"])
    width = max(map(len, times))
    print(f"CLI start-up: median wall seconds of {args.repeats} runs each, interleaved; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end; {args.told} completed trials")
    print(f"{'command':<{width}}  median     q1     q3  minus `python -c pass`")
    for name, values in times.items():
        q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
        median = statistics.median(values)
        print(f"{name:<{width}}  {median:6.2f} {q1:6.2f} {q3:6.2f}  {median - base:+6.2f}")


if __name__ == "__main__":
    main()
