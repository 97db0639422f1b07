"""Replicates: chosen mixtures run with several seeds at the search fidelity, for the noise model.

The config's ``replicates`` section names the mixtures: ``prior`` (the searcher's natural mixture),
``baseline`` (the config's), explicit ``{source: weight}`` mixtures, all due at the start, and
``incumbent`` (the recommendation once ``incumbent_at`` of ``n_trials`` are complete). Each is run
``seeds`` times as ordinary trials (counted in ``n_trials``) marked with ``Attr.REPLICATE_OF``; the
searcher's model then learns the noise of every observation from them (:mod:`mixopt.noise`).

:func:`due` says which are due; :func:`replicate_rows` turns them into rows. The study controller
(:func:`mixopt.loop.propose_batch`) and the search benchmark both call these two, so the benchmark
measures what a study runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from mixopt.candidates import nearest_unused
from mixopt.config import ReplicatesConfig
from mixopt.search.designs import prior_mixture
from mixopt.space import MixtureSpace

INCUMBENT = "incumbent"


def labels(replicates: ReplicatesConfig) -> list[str]:
    """One label per configured mixture: ``prior``, ``baseline``, ``incumbent`` or ``mixture N`` (a mapping)."""
    return [entry if isinstance(entry, str) else f"mixture {i}" for i, entry in enumerate(replicates.mixtures)]


def due(replicates: ReplicatesConfig, completed: int, n_trials: int, queued: Collection[str]) -> list[str]:
    """Labels of the replicates to queue now, given ``completed`` runs at the search fidelity (of
    ``n_trials``) and the labels ``queued`` before: all but the incumbent at once, the incumbent once
    ``incumbent_at * n_trials`` runs are complete."""
    ready = [label for label in labels(replicates) if label not in queued]
    return [label for label in ready if label != INCUMBENT or completed >= replicates.incumbent_at * n_trials]


def replicate_rows(replicates: ReplicatesConfig, todo: list[str], space: MixtureSpace, *,
                   prior: dict[str, float] | None, baseline: np.ndarray | None,
                   incumbent: Callable[[], np.ndarray], granularity: float) -> tuple[np.ndarray, list[str]]:
    """Rows ``(len(todo) * seeds, K)`` on the grid for the labels ``todo`` (each repeated ``seeds`` times)
    and the label of each row. ``prior``: the searcher's ``prior`` option; ``incumbent``: computes the
    current recommendation (called only when it is due)."""
    entries = dict(zip(labels(replicates), replicates.mixtures, strict=True))
    rows, names = [], []
    for label in todo:
        entry = entries[label]
        if isinstance(entry, dict):
            w = space.from_dict(entry)
        elif label == "prior":
            w = prior_mixture(space, prior)
        elif label == "baseline":
            assert baseline is not None, "config validation requires a baseline for baseline replicates"
            w = baseline
        else:
            w = incumbent()
        w = space.round(np.asarray(w, float)[None], granularity)[0]
        if space.candidates is not None:  # replicate the candidate nearest to it (repeats are the point)
            w = nearest_unused(space.candidates, w[None], np.zeros((0, space.dim)))[0]
        rows += [w] * replicates.seeds
        names += [label] * replicates.seeds
    return (np.array(rows) if rows else np.zeros((0, space.dim))), names
