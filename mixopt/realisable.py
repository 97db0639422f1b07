"""Mixtures a trainer realises exactly (``mixopt study export --realisable``).

OLMo-core trains on whole global batches of whole instances: at a budget of B tokens, ``sequence_length``
L and ``global_batch_size`` G (tokens), it reads ceil(B / G) batches, N = ceil(B / G) x G / L instances,
and gives each source a whole number of them (``SourceMixtureDatasetConfig.build``). The mixtures it
realises exactly are n / N, n whole instances per source summing to N. :func:`realisable_mixture` maps a
mixture to the nearest of them (L1, as :meth:`MixtureSpace.round` rounds) inside the space's bounds and
groups, every source within its repetition cap at the N x L tokens the run reads. An olmo-core export of
it asks for N x L tokens, so that OLMo-core's apportionment gives each source its n instances; where it
does not (a source read over several epochs or from several files loses each one's leftover tokens to the
batch's rounding), rounds of OLMo-core's own build move it to a mixture OLMo-core builds as written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from mixopt.errors import ConfigError
from mixopt.export import TrainerLayout, file_tokens, olmo_core_audit, render
from mixopt.space import MixtureSpace

MAX_ROUNDS = 200  # rounds of taking what OLMo-core realises, before giving up (or on meeting a mixture again)


def file_populations(space: MixtureSpace, layout: TrainerLayout) -> list[int | None]:
    """Per source, the tokens its local files hold read as ``layout.dtype`` (None: no dtype, no paths, or a
    remote path, so the config's ``tokens`` stands)."""
    if layout.dtype is None:
        return [None] * space.dim
    counts = [[file_tokens(p, layout.dtype) for p in s.paths] for s in space.sources]
    return [None if not c or None in c else sum(n for n in c if n is not None) for c in counts]


def realisable_mixture(space: MixtureSpace, weights: np.ndarray | Sequence[float], layout: TrainerLayout,
                       populations: Sequence[int | None] | None = None,
                       realise: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """The mixture ``(K,)`` nearest to ``weights`` ``(K,)`` that OLMo-core realises exactly at
    ``space.token_budget`` tokens in ``layout``'s instances and batches: n / N with whole instances n, inside
    the space's bounds, groups and caps, each source's n x L tokens within ``max_repetition`` epochs of its
    ``populations`` tokens (None, or a source's None: the config's ``tokens``). With ``realise`` (a mixture
    ``(K,)`` -> the one OLMo-core builds from it, :func:`olmo_core_realised`), the point is then moved, by
    rounds of taking what OLMo-core realises, to one it realises as written (a source read over several
    epochs, or from several files, loses the leftover of each to the batch's rounding). Idempotent. No such
    mixture is a one-line ``ConfigError``."""
    budget = space.token_budget
    if not budget:
        raise ConfigError("a realisable mixture needs a token budget: give the export fidelity `tokens`")
    n = layout.instances(budget)
    read = n * layout.sequence_length
    populations = populations or [None] * space.dim
    # Caps at the tokens the run reads, on the files' counts, and never looser than the space's own at its budget.
    sources = tuple(s if p is None else replace(s, tokens=p if s.tokens is None else min(p, s.tokens * read / budget))
                    for s, p in zip(space.sources, populations, strict=True))
    where = f"({n:,} instances of {layout.sequence_length} tokens, {read:,} tokens in batches of {layout.global_batch_size:,})"
    try:
        grid = replace(space, sources=sources, token_budget=read, candidates=None)
        w = grid.round(np.asarray(weights, dtype=float), 1 / n)
    except ConfigError as exc:
        raise ConfigError(f"no mixture OLMo-core realises exactly {where} fits this space: {str(exc).split(':')[0]}") from None
    if realise is None:
        return w
    seen = set()
    for _ in range(MAX_ROUNDS):
        units = tuple(np.round(w * n).astype(int))
        got = grid.round(realise(w), 1 / n)
        if np.array_equal(np.round(got * n), units):
            return w
        if units in seen:
            break
        seen.add(units)
        w = got
    raise ConfigError(f"OLMo-core realises no mixture exactly near this one {where}: its apportionment moves "
                      "instances between sources; choose another batch size or audit the export (--audit)")


def olmo_core_realised(space: MixtureSpace, weights: np.ndarray, layout: TrainerLayout) -> np.ndarray:
    """The mixture ``(K,)`` that OLMo-core's ``SourceMixtureDatasetConfig.build`` realises from the realisable
    olmo-core export of ``weights`` ``(K,)`` (on the grid of ``layout``'s instances): the audit's shares."""
    audit = olmo_core_audit(render(space, weights, "olmo-core", allow_incomplete=True, layout=layout, realisable=True))
    shares = {r.name: r.realised_share for r in audit.sources}
    return np.array([shares.get(name, 0.0) for name in space.names])
