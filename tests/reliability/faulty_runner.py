"""Runners plugged in from this folder (on PYTHONPATH): ``faulty_runner:FaultyRunner`` for the faulty-runner
tests (the synthetic runner, except that trial ``n`` suffers the fault ``cycle[n % len(cycle)]``),
``faulty_runner:LoggedRunner`` for the kill tests (the synthetic runner, logging each run's start and end), and
``faulty_runner:ResultFileRunner`` for the chaos soak (the synthetic runner, leaving each result in its run folder)."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
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


class LoggedRunner(SyntheticRunner):
    """Appends ``start TRIAL PID PPID TIME`` before a run and ``done TRIAL PID PPID TIME`` once it has its
    result to the file ``events`` (PID: the worker; PPID: its parent, the controller under ``local``; TIME:
    Unix seconds); one ``write`` per line, so concurrent workers never interleave."""

    def __init__(self, events: str, **options) -> None:
        super().__init__(**options)
        self.events = events

    def _log(self, what: str, spec: RunSpec) -> None:
        fd = os.open(self.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{what} {spec.trial} {os.getpid()} {os.getppid()} {time.time():.6f}\n".encode())
        finally:
            os.close(fd)

    def run(self, spec: RunSpec) -> Evaluation:
        self._log("start", spec)
        evaluation = super().run(spec)
        self._log("done", spec)
        return evaluation


@dataclass(frozen=True)
class Event:
    what: str  # "start" or "done"
    trial: int
    pid: int
    parent: int
    time: float


def read_events(path: str | Path) -> list[Event]:
    """The events logged so far, complete lines only (none while the file does not exist)."""
    path = Path(path)
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [Event(what, int(trial), int(pid), int(parent), float(at))
            for what, trial, pid, parent, at in (line.split() for line in lines)]


class ResultFileRunner(SyntheticRunner):
    """The synthetic runner, writing each result it produces into the run folder as ``result-<trial>-<host>.json``
    (trial, host, metrics) before returning it: the soak checks that no result a run produced was lost."""

    def run(self, spec: RunSpec) -> Evaluation:
        evaluation = super().run(spec)
        folder, host = Path(spec.output_dir), socket.gethostname()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"result-{spec.trial}-{host}.json").write_text(
            json.dumps({"trial": spec.trial, "host": host, "metrics": evaluation.metrics}))
        return evaluation
