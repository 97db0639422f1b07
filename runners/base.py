"""The runner contract: ``Runner.run(RunSpec) -> Evaluation``, raising ``RunFailed`` with a reason (the
contract types live in :mod:`mixopt.trials`; they are re-exported here for runner authors)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mixopt.errors import RunFailed
from mixopt.trials import Evaluation, RunSpec

if TYPE_CHECKING:
    from mixopt.export import TrainerLayout
    from mixopt.space import Source

__all__ = ["Evaluation", "RunFailed", "RunSpec", "Runner"]


class Runner(abc.ABC):
    """Evaluates mixtures. Constructors only store options; instances must pickle (executors ship them)."""

    @abc.abstractmethod
    def run(self, spec: RunSpec) -> Evaluation:
        """Train and evaluate ``spec.mixture``; raise ``RunFailed(reason)`` when that is impossible."""

    def token_files(self, sources: Sequence[Source], model: str | None = None,
                    ) -> tuple[dict[str, tuple[str, ...]], TrainerLayout] | None:
        """The token files this runner trains on for ``sources`` (by name) and how it reads them, for an
        export a trainer builds (``model``: the export fidelity's); None where the runner does not know."""
        return None
