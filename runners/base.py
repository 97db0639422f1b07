"""The runner contract: ``Runner.run(RunSpec) -> Evaluation``, raising ``RunFailed`` with a reason."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from mixopt.errors import RunFailed
from mixopt.space import MixtureSpace

__all__ = ["Evaluation", "RunFailed", "RunSpec", "Runner"]


@dataclass(frozen=True)
class RunSpec:
    """One run to execute. ``mixture`` maps source name -> weight (sums to 1); ``tokens`` is the budget;
    ``source_paths`` the sources' data, resolved. ``space`` is the study's polytope at this run's budget,
    whole (sources with token counts and repetition caps, bounds, groups; None for a spec made by hand:
    no caps), and ``granularity`` the study's grid, so a runner that hands the mixture to a training
    program renders it exactly as ``mixopt study export`` does; ``study`` names the study."""

    trial: int
    mixture: dict[str, float]
    fidelity: str
    tokens: float
    seed: int
    output_dir: str
    model: str | None = None
    source_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    space: MixtureSpace | None = None
    granularity: float = 1e-4
    study: str = ""

    def max_repetition(self, source: str) -> float | None:
        """The epochs ``source`` may be repeated at this budget (None: no cap known)."""
        if self.space is None or source not in self.space.names:
            return None
        return self.space.sources[self.space.names.index(source)].max_repetition


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
