"""Objective evaluation: what a run's metrics mean for the study's objectives (``ObjectiveConfig``).

:func:`objective_values` turns one :class:`~mixopt.trials.Evaluation` into objective values, checking
every metric and part; :func:`objective_parts` gathers the measured parts of many runs for the searcher.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from mixopt.config import ObjectiveConfig
from mixopt.trials import Evaluation, Observations, Parts, mean_composition

PARTS_TOLERANCE = 1e-6  # relative gap allowed between an objective's metric and the mean of its parts


def objective_values(evaluation: Evaluation, objectives: Sequence[ObjectiveConfig]) -> list[float]:
    """The value of each objective's metric in ``evaluation``; ``ValueError`` naming the first metric that is
    missing, not a number, or not finite (NaN, inf), or whose standard error is not a finite number >= 0;
    likewise for an objective's parts. An objective with parts is their mean: its metric, when reported,
    must equal it; when not reported, it is computed."""
    if not isinstance(evaluation.metrics, dict) or not isinstance(evaluation.stderr, dict):
        raise ValueError("the evaluation's metrics and stderr must be mappings from metric name to number")
    values = []
    for objective in objectives:
        computed = bool(objective.parts) and objective.metric not in evaluation.metrics  # the parts' mean, computed here
        for metric in objective.parts if computed else (objective.metric, *objective.parts):
            problem = _metric_problem(evaluation, metric)
            if problem is not None:
                role = "metric" if metric == objective.metric else "part"
                raise ValueError(f"objective '{objective.name}': {role} '{metric}' {problem}")
        mean = float(np.mean([evaluation.metrics[part] for part in objective.parts])) if objective.parts else None
        value = mean if computed and mean is not None else float(evaluation.metrics[objective.metric])
        if mean is not None and abs(value - mean) > PARTS_TOLERANCE * max(1.0, abs(mean)):
            raise ValueError(f"objective '{objective.name}': metric '{objective.metric}' is {value:.6g} but the "
                             f"mean of its parts is {mean:.6g}: report their mean as '{objective.metric}', or leave it out")
        values.append(value)
    return values


def objective_parts(done: Observations, objectives: Sequence[ObjectiveConfig]) -> Parts | None:
    """The measured parts of ``done``'s objectives (an objective without parts is its own single part), or
    None when no objective has parts or some run lacks one (e.g. a run imported from a table)."""
    if not any(o.parts for o in objectives) or not len(done):
        return None
    names = [part for o in objectives for part in (o.parts or [o.metric])]
    values = done.metric_table(names)
    if values is None:
        return None
    return Parts(values, mean_composition([len(o.parts) or 1 for o in objectives]), done.metric_errors(names))


def _metric_problem(evaluation: Evaluation, metric: str) -> str | None:
    """What is wrong with ``metric`` in ``evaluation`` (missing, not a finite number, bad standard error), or None."""
    value = evaluation.metrics.get(metric)
    error = evaluation.stderr.get(metric, 0.0)
    if value is None:
        return "is missing"
    if not _is_number(value):
        return f"is not a number ({value!r})"
    if not math.isfinite(value):
        return f"is {value} (not finite)"
    if not _is_number(error) or not math.isfinite(error) or error < 0:
        return f"has a standard error of {error!r} (must be a finite number >= 0)"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
