"""The runner contract: ``Runner.run(RunSpec) -> Evaluation``, raising ``RunFailed`` with a reason."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from mixopt.errors import RunFailed

__all__ = ["Evaluation", "RunFailed", "RunSpec", "Runner"]


@dataclass(frozen=True)
class RunSpec:
    """One run to execute. ``mixture`` maps source name -> weight (sums to 1); ``tokens`` is the budget."""

    trial: int
    mixture: dict[str, float]
    fidelity: str
    tokens: float
    seed: int
    output_dir: str
    model: str | None = None
    source_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source_tokens: dict[str, float | None] = field(default_factory=dict)
    max_repetition: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Evaluation:
    """What a run measured. ``cost`` holds seconds and tokens; ``artifacts`` maps a name to a path."""

    metrics: dict[str, float]
    stderr: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    runner: str = ""


class Runner(abc.ABC):
    """Evaluates mixtures. Constructors only store options; instances must pickle (executors ship them)."""

    @abc.abstractmethod
    def run(self, spec: RunSpec) -> Evaluation:
        """Train and evaluate ``spec.mixture``; raise ``RunFailed(reason)`` when that is impossible."""
