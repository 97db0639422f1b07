"""Cost of the merge proxy against a microanneal at the default study's model, options and budget.

The proxy's experts (the demo base annealed on each of the six demo sources alone, 131,072 tokens each)
are built once first, timed, in a cache of this benchmark's own (the demo's model and data linked in from
mixopt's cache). Then microanneals and proxy evaluations of one mixture alternate (``--repeats`` each):
wall and CPU seconds per run, medians. Peak resident memory (``ru_maxrss``) is read in a fresh process
per kind: a proxy evaluation, a microanneal, and an evaluation of the base model alone (0 tokens).

    python -m mixopt.benchmarks.merge_proxy [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from mixopt.benchmarks.microanneal import DEFAULT_STUDY, MIXTURE

KINDS = ("proxy", "microanneal", "evaluation")


def specs(folder: Path, threads: int):
    """The default study's runner (``threads`` threads) and a microanneal spec of ``MIXTURE`` in ``folder``."""
    from mixopt.config import load_config
    from mixopt.runners import RUNNERS
    from mixopt.trials import RunSpec

    config = load_config(DEFAULT_STUDY)
    fidelity = config.search_fidelity
    runner = RUNNERS.create(config.runner.name, {**config.runner.options, "threads": threads})
    return runner, RunSpec(trial=0, mixture=MIXTURE, fidelity=fidelity.name, tokens=fidelity.tokens, seed=0,
                           output_dir=str(folder / "run"), space=config.space(fidelity.name))


def run_kind(kind: str, folder: Path, threads: int) -> dict[str, float]:
    """One run of ``kind`` (see ``KINDS``); its cost dict."""
    runner, spec = specs(folder, threads)
    if kind == "proxy":
        spec = replace(spec, proxy="merge")
    elif kind == "evaluation":
        spec = replace(spec, tokens=0)
    return runner.run(spec).cost


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="microanneal/proxy pairs (the order alternates)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peak-of", choices=KINDS, help=argparse.SUPPRESS)  # the child process of a peak reading
    args = parser.parse_args(argv)
    if args.peak_of:
        run_kind(args.peak_of, Path(tempfile.mkdtemp()), args.threads)
        print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return {}

    from mixopt.cache import cache_dir
    from mixopt.runners.microanneal import default_assets

    assets = default_assets()  # the demo's model and sources, built in mixopt's cache if missing
    assets.base_model()
    for name in MIXTURE:
        assets.source(name)
    shared = cache_dir()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for entry in ("demo-base-v1", "demo-data-v1", "tokens"):
            (folder / "cache").mkdir(exist_ok=True)
            (folder / "cache" / entry).symlink_to(shared / entry)
        os.environ["MIXOPT_CACHE"] = str(folder / "cache")
        built = run_kind("proxy", folder, args.threads)
        rows = []
        for pair in range(args.repeats):
            order = ("microanneal", "proxy") if pair % 2 == 0 else ("proxy", "microanneal")
            rows.append({kind: run_kind(kind, folder, args.threads) for kind in order})
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        peaks = {kind: json.loads(subprocess.run(
            [sys.executable, "-m", "mixopt.benchmarks.merge_proxy", "--peak-of", kind, "--threads", str(args.threads)],
            env=env, check=True, capture_output=True, text=True).stdout.splitlines()[-1])["peak_mib"] for kind in KINDS}
    summary = {f"{kind}_{clock}": statistics.median(r[kind][clock] for r in rows)
               for kind in ("microanneal", "proxy") for clock in ("seconds", "cpu_seconds")}
    summary.update(expert_build_seconds=built["expert_seconds"], experts=built["experts_trained"],
                   **{f"{kind}_peak_mib": peak for kind, peak in peaks.items()})
    print(f"default study, {args.threads} thread(s), mixture {MIXTURE}")
    print(f"experts: {summary['experts']:.0f} built in {summary['expert_build_seconds']:.1f} s")
    for kind in ("microanneal", "proxy"):
        runs = ", ".join(f"{r[kind]['seconds']:.1f}" for r in rows)
        print(f"{kind:>12}: median {summary[kind + '_seconds']:.1f} s wall, {summary[kind + '_cpu_seconds']:.1f} s CPU "
              f"(runs: {runs} s)")
    print("peak resident memory (MiB): " + ", ".join(f"{kind} {peak:.0f}" for kind, peak in peaks.items()))
    return summary


if __name__ == "__main__":
    main()
