"""The runner contract: ``Runner.run(RunSpec) -> Evaluation``, raising ``RunFailed`` with a reason (the
contract types live in :mod:`mixopt.trials`; they are re-exported here for runner authors)."""

from __future__ import annotations

import abc

from mixopt.errors import RunFailed
from mixopt.trials import Evaluation, RunSpec

__all__ = ["Evaluation", "RunFailed", "RunSpec", "Runner"]


class Runner(abc.ABC):
    """Evaluates mixtures. Constructors only store options; instances must pickle (executors ship them)."""

    @abc.abstractmethod
    def run(self, spec: RunSpec) -> Evaluation:
        """Train and evaluate ``spec.mixture``; raise ``RunFailed(reason)`` when that is impossible."""
