"""Runners: execute one mixture at one fidelity and report its metrics (installed as ``mixopt.runners``)."""

from mixopt.registry import Registry
from mixopt.runners.base import Runner
from mixopt.trials import Evaluation, RunSpec

RUNNERS = Registry(
    "runner",
    {
        "synthetic": "mixopt.runners.synthetic:SyntheticRunner",
        "microanneal": "mixopt.runners.microanneal:MicroannealRunner",
        "command": "mixopt.runners.command:CommandRunner",
    },
)

__all__ = ["RUNNERS", "Evaluation", "RunSpec", "Runner"]
