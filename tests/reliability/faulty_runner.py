"""A runner plugged in as ``faulty_runner:FaultyRunner`` (this folder on PYTHONPATH), for the faulty-runner
tests: the synthetic runner, except that trial ``n`` suffers the fault ``cycle[n % len(cycle)]``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mixopt.runners.synthetic import SyntheticRunner
from mixopt.trials import Evaluation, RunSpec

FAULTS = ("raise", "nan", "exit", "garbage")


class FaultyRunner(SyntheticRunner):
    """Faults: ``raise`` (an exception), ``nan`` (a NaN objective metric), ``exit`` (the worker process ends with
    ``os._exit(3)``), ``garbage`` (returns a dict, not an ``Evaluation``); ``None`` runs normally. Every start
    appends ``trial`` to ``starts`` (a file), so a test can count re-runs; each run takes ``seconds``."""

    def __init__(self, cycle: list[str | None], starts: str, seconds: float = 0.0, **options) -> None:
        super().__init__(**options)
        self.cycle = cycle
        self.starts = starts
        self.seconds = seconds

    def run(self, spec: RunSpec) -> Evaluation:
        with open(self.starts, "a") as log:
            log.write(f"{spec.trial}\n")
        time.sleep(self.seconds)
        fault = self.cycle[spec.trial % len(self.cycle)]
        if fault == "raise":
            raise RuntimeError(f"CUDA error: an illegal memory access (pretend, trial {spec.trial})")
        if fault == "exit":
            os._exit(3)
        evaluation = super().run(spec)
        if fault == "nan":
            evaluation.metrics["math_loss"] = float("nan")
        if fault == "garbage":
            return {"math_loss": 1.0}  # type: ignore[return-value]
        return evaluation


def start_counts(starts: str | Path) -> dict[int, int]:
    """How many times each trial was started."""
    counts: dict[int, int] = {}
    for line in Path(starts).read_text().split():
        counts[int(line)] = counts.get(int(line), 0) + 1
    return counts
