"""The contract types that belong to no extension folder, and the storage schema of a trial.

- :class:`RunSpec` / :class:`Evaluation`: what a runner is asked and what it measured (the runner contract);
- :class:`History` / :class:`Parts`: what a searcher sees (the searcher contract);
- :class:`Attr`: the trial user-attribute keys a study writes (any Optuna tool reads them by these names);
- :class:`Observations`: the one read model of a study's trials, as arrays, from which searchers, the
  recommendation, the rounds, the report and the CLI read.

This module sits on the ground floor: it imports only the space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixopt.space import MixtureSpace, Source


class Attr:
    """Trial user-attribute keys. A run's request: ``FIDELITY``, ``ROUND``/``PREDICTED`` (an integration
    promotion), ``MERGE_FOR``/``MERGE_OF`` (seed runs and their merge), ``ARM``/``REPLICATE`` (screening),
    ``PROPOSAL`` (a reused study's proposal), ``LOCAL_FOR`` (a local batch around a failing candidate),
    ``REPLICATE_OF`` (a replicate of a configured mixture).
    What the run wrote (see :data:`RUN_ATTRS`): the rest."""

    FIDELITY = "fidelity"
    SEED = "seed"
    CONTROLLER = "controller"
    MACHINE = "machine"  # the claiming controller's boot id and pid namespace (mixopt.study.machine)
    JOB_ID = "job_id"
    METRICS = "metrics"
    STDERR = "stderr"
    COST = "cost"
    ARTIFACTS = "artifacts"
    RUNNER = "runner"
    FAIL_REASON = "fail_reason"
    RERUN_OF = "rerun_of"
    REQUEUED_BY = "requeued_by"  # the controller that failed and re-queued this trial (its owner was judged dead)
    IMPORTED_FROM = "imported_from"
    ROUND = "round"
    PREDICTED = "predicted"
    MERGE_FOR = "merge_for"
    MERGE_OF = "merge_of"
    ARM = "arm"
    REPLICATE = "replicate"
    PROPOSAL = "reused_from"
    LOCAL_FOR = "local_for_round"  # a microanneal run around a round's candidate that failed a gate
    REPLICATE_OF = "replicate_of"  # a replicate run of a configured mixture (mixopt.replicates label)
    PROPOSAL_SEED = "proposal_seed"  # the searcher's seed for the batch that proposed this mixture
    CHOSEN_BY = "chosen_by"  # a cost-aware study's run: "initial" (a first target run) or "cost-aware" (the model's)


# Trial attrs written by a run (not carried to its re-run); the others (fidelity, round...) are the request.
RUN_ATTRS = frozenset({Attr.SEED, Attr.CONTROLLER, Attr.MACHINE, Attr.JOB_ID, Attr.METRICS, Attr.STDERR, Attr.COST,
                       Attr.ARTIFACTS, Attr.RUNNER, Attr.FAIL_REASON, Attr.RERUN_OF, Attr.REQUEUED_BY})


def rerun_targets(trials) -> set[int]:
    """Numbers of the trials that ``trials`` (Optuna trials) hold a re-run of (their ``rerun_of``)."""
    return {t.user_attrs[Attr.RERUN_OF] for t in trials if Attr.RERUN_OF in t.user_attrs}


class StudyAttr:
    """Study user-attribute keys."""

    CONFIG = "mixopt_config"
    CONFIG_DIR = "mixopt_config_dir"
    VERSION = "mixopt_version"
    PREDICTED_FRONT = "predicted_front"
    SCREENING = "screening"
    PROMOTION_LOG = "promotion_log"
    HEARTBEAT_PREFIX = "heartbeat:"  # + a controller's id (host:pid) -> the Unix time of its last heartbeat
    REUSE = "reuse"
    LATE_PREFIX = "late:"  # + trial number:controller -> a result told after the trial was finished elsewhere


@dataclass(frozen=True)
class RunSpec:
    """One run to execute. ``mixture`` maps source name -> weight (sums to 1); ``tokens`` is the budget;
    ``source_paths`` the sources' data, resolved. ``space`` is the study's polytope at this run's budget,
    whole (sources with token counts and repetition caps, bounds, groups; None for a spec made by hand:
    no caps), and ``granularity`` the study's grid, so a runner that hands the mixture to a training
    program renders it exactly as ``mixopt study export`` does; ``study`` names the study.
    ``pool_fraction``: the share of each source's training pool this run may draw from, so that its
    epochs equal those of a larger target fidelity (repetition matching; a missing source: 1, all).
    ``proxy``: "merge" where the run scores the mixture by merging single-source experts at ``merge_scale``
    (``tokens``: each expert's budget) instead of training; None: a training run."""

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
    pool_fraction: dict[str, float] = field(default_factory=dict)
    proxy: str | None = None
    merge_scale: float = 1.0

    def source(self, name: str) -> Source | None:
        """The space's ``Source`` of that name (None: no space, or not in it)."""
        if self.space is None or name not in self.space.names:
            return None
        return self.space.sources[self.space.names.index(name)]

    def max_repetition(self, source: str) -> float | None:
        """The epochs ``source`` may be repeated at this budget (None: no cap known)."""
        found = self.source(source)
        return None if found is None else found.max_repetition


@dataclass
class Evaluation:
    """What a run measured. ``cost`` holds seconds and tokens; ``artifacts`` maps a name to a path."""

    metrics: dict[str, float]
    stderr: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    runner: str = ""


def mean_composition(sizes: list[int]) -> np.ndarray:
    """Matrix ``(m, sum(sizes))`` whose row ``o`` averages the ``o``-th consecutive block of ``sizes[o]`` parts."""
    composition = np.zeros((len(sizes), sum(sizes)))
    for row, (start, size) in enumerate(zip(np.cumsum([0, *sizes[:-1]]), sizes, strict=True)):
        composition[row, start : start + size] = 1.0 / size
    return composition


@dataclass(frozen=True)
class Parts:
    """The measured metrics that objectives average (e.g. 13 domain losses whose mean is one objective).

    ``values`` ``(n, P)`` as measured; ``composition`` ``(m, P)``: objective ``o`` is ``values @ composition[o]``
    (each row a mean over that objective's parts, so each part belongs to one objective); ``stderr``
    ``(n, P)`` or None.
    """

    values: np.ndarray
    composition: np.ndarray
    stderr: np.ndarray | None = None

    def maximized(self, signs: np.ndarray) -> np.ndarray:
        """Parts oriented like their objectives (``signs`` ``(m,)``), larger is better, shape ``(n, P)``."""
        return self.values * (signs @ (self.composition != 0))


@dataclass(frozen=True)
class History:
    """Completed evaluations at the search fidelity.

    ``weights`` ``(n, K)``; ``values`` ``(n, m)`` objective values as measured; ``stderr`` ``(n, m)`` or
    None; ``pending`` ``(p, K)`` mixtures proposed but not yet measured; ``directions`` per objective;
    ``parts`` the metrics that objectives average, when every evaluation reported them (else None);
    ``trials`` ``(n,)`` the study's trial numbers of the rows, where the history comes from a study.
    """

    weights: np.ndarray
    values: np.ndarray
    directions: tuple[str, ...]
    stderr: np.ndarray | None = None
    pending: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    parts: Parts | None = None
    trials: np.ndarray | None = None

    @classmethod
    def empty(cls, dim: int, directions: tuple[str, ...]) -> History:
        return cls(np.zeros((0, dim)), np.zeros((0, len(directions))), directions, None, np.zeros((0, dim)))

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def signs(self) -> np.ndarray:
        """+1 for objectives to maximize, -1 to minimize, shape ``(m,)``."""
        return np.array([1.0 if d == "maximize" else -1.0 for d in self.directions])

    @property
    def maximized(self) -> np.ndarray:
        """Values oriented so that larger is better for every objective, shape ``(n, m)``."""
        return self.values * self.signs

    def mean_at(self, w: np.ndarray, tol: float = 1e-6) -> np.ndarray | None:
        """Mean values ``(m,)`` of the runs of mixture ``w`` ``(K,)`` (every weight within ``tol``); None if
        it was never run."""
        rows = np.all(np.abs(self.weights - np.asarray(w)) <= tol, axis=1) if len(self) else np.zeros(0, dtype=bool)
        return self.values[rows].mean(axis=0) if rows.any() else None


@dataclass(frozen=True)
class Observations:
    """Completed trials of a study, row-aligned: ``numbers`` ``(n,)``; ``weights`` ``(n, K)`` over the
    study's sources; ``values`` ``(n, m)`` objective values as measured; ``fidelities`` ``(n,)`` names;
    ``metrics`` / ``stderr`` per row (metric name -> number); ``attrs`` per row (the trial's other user
    attrs: round, predicted, imported_from...). Made by ``Study.observations()``; pure afterwards."""

    numbers: np.ndarray
    weights: np.ndarray
    values: np.ndarray
    fidelities: np.ndarray
    metrics: tuple[dict[str, float], ...]
    stderr: tuple[dict[str, float], ...]
    attrs: tuple[dict[str, Any], ...]

    def __len__(self) -> int:
        return len(self.numbers)

    @classmethod
    def of(cls, numbers: np.ndarray, weights: np.ndarray, values: np.ndarray, fidelity: str = "") -> Observations:
        """Rows measured outside a study (a table, a test): ``numbers`` ``(n,)``, ``weights`` ``(n, K)``,
        ``values`` ``(n, m)`` at one ``fidelity``, no metrics or attrs."""
        n = len(numbers)
        return cls(np.asarray(numbers), np.asarray(weights, dtype=float), np.asarray(values, dtype=float),
                   np.full(n, fidelity, dtype=object), ({},) * n, ({},) * n, ({},) * n)

    @classmethod
    def empty(cls, dim: int, objectives: int) -> Observations:
        return cls(np.zeros(0, dtype=int), np.zeros((0, dim)), np.zeros((0, objectives)), np.zeros(0, dtype=object),
                   (), (), ())

    def where(self, mask: Sequence[bool] | np.ndarray) -> Observations:
        """The rows where ``mask`` ``(n,)`` is true."""
        return self.take(np.flatnonzero(np.asarray(mask, dtype=bool)))

    def take(self, rows: Sequence[int] | np.ndarray) -> Observations:
        """The rows ``rows`` (indices), in that order."""
        rows = np.asarray(rows, dtype=int)
        return Observations(self.numbers[rows], self.weights[rows], self.values[rows], self.fidelities[rows],
                            tuple(self.metrics[i] for i in rows), tuple(self.stderr[i] for i in rows),
                            tuple(self.attrs[i] for i in rows))

    def at(self, *fidelities: str) -> Observations:
        """The rows measured at one of ``fidelities``."""
        return self.where(np.isin(self.fidelities, list(fidelities)))

    def own(self) -> Observations:
        """The rows this study ran (not imported from a table or another study)."""
        return self.where([Attr.IMPORTED_FROM not in a for a in self.attrs])

    def metric(self, name: str) -> np.ndarray:
        """``(n,)`` values of metric ``name`` (NaN where a row has none)."""
        return np.array([m.get(name, np.nan) for m in self.metrics], dtype=float)

    def attr(self, key: str, default: Any = None) -> list[Any]:
        """Each row's user attr ``key`` (``default`` where a row has none)."""
        return [a.get(key, default) for a in self.attrs]

    def metric_errors(self, names: Sequence[str]) -> np.ndarray | None:
        """``(n, len(names))`` standard errors of metrics ``names``, or None when some row lacks one."""
        if any(name not in e for e in self.stderr for name in names):
            return None
        return np.array([[e[name] for name in names] for e in self.stderr], dtype=float).reshape(len(self), len(names))

    def metric_table(self, names: Sequence[str]) -> np.ndarray | None:
        """``(n, len(names))`` values of metrics ``names``, or None when some row lacks one."""
        if any(name not in m for m in self.metrics for name in names):
            return None
        return np.array([[m[name] for name in names] for m in self.metrics], dtype=float).reshape(len(self), len(names))
