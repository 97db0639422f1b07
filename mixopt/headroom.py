"""Metric selection: which metrics a study's runs report can rank mixtures (OLMo 3's "Base Main" idea).

For every metric of the completed runs at one fidelity:

- **signal**: the spread across the study's mixtures, the standard deviation (ddof 1) of the per-mixture
  means (rows with identical weights are one mixture);
- **noise**: the pooled seed standard deviation of the replicates (mixtures run more than once),
  ``sqrt(sum_g sum_i (x_gi - mean_g)^2 / sum_g (n_g - 1))``;
- **signal-to-noise**: their ratio (a metric whose mixtures differ less than two seeds of one mixture
  cannot rank them);
- **saturation** (accuracies, ``*_acc``, ``*_acc_norm``, ``*_acc_bytes``: ceiling 1 and, with ``k``
  choices, chance ``1/k``): the share of the range from chance (else 0) to the ceiling left above the
  mean, and the share of it the mean sits above chance; losses and bits per byte have no ceiling;
- **monotonicity** between two fidelities: the Spearman rank correlation of the per-mixture means of
  the mixtures measured at both.

Metrics are flagged by the thresholds below; the rest, ranked by signal-to-noise, are the suggested
objectives. Pure functions on :class:`mixopt.trials.Observations`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mixopt.noise import mixture_ids
from mixopt.trials import Observations

SIGNAL_TO_NOISE_MIN = 2.0  # below: noise-dominated
SATURATION_MARGIN = 0.05  # less than this share of the chance-to-ceiling range left (above or below): saturated / at chance
RANK_CORRELATION_MIN = 0.5  # below (with at least RANK_CORRELATION_MIXTURES shared mixtures): fidelities disagree
RANK_CORRELATION_MIXTURES = 4
# The microanneal runner's bookkeeping (tokens, shares and epochs per source: the mixture itself; the
# training loss on the mixture's own data): reported as metrics, never evaluations of a mixture.
BOOKKEEPING = ("tokens_", "share_", "epochs_", "train_loss_")
ACCURACY = re.compile(r"(^|_)acc(_norm|_bytes)?$")
LOWER_IS_BETTER = re.compile(r"(^bpb_|(^|_)(bpb|loss|bits_per_byte|perplexity)$)")

FLAGS = ("saturated", "at chance", "noise-dominated", "fidelities disagree", "no replicates")


@dataclass(frozen=True)
class MetricSignal:
    """One metric at one fidelity. ``rows``: runs that report it; ``mixtures``: distinct mixtures among them;
    ``replicated``: mixtures run more than once; ``mean`` over the rows; ``signal`` / ``noise`` (NaN when
    not measurable: one mixture, no replicates); ``headroom``: share of the chance-to-ceiling range above
    the mean and ``above_chance``: share below it (None without a ceiling / a chance level);
    ``rank_correlation`` with the other fidelity (None: no other fidelity or fewer than 2 shared
    mixtures); ``direction``: ``minimize``/``maximize`` (None: unknown)."""

    name: str
    direction: str | None
    rows: int
    mixtures: int
    replicated: int
    mean: float
    signal: float
    noise: float
    chance: float | None
    headroom: float | None
    above_chance: float | None
    rank_correlation: float | None
    shared_mixtures: int
    flags: tuple[str, ...]

    @property
    def ratio(self) -> float:
        """Signal-to-noise (inf for a metric that varies across mixtures but not across seeds)."""
        if not np.isfinite(self.noise) or not np.isfinite(self.signal):
            return float("nan")
        if self.noise == 0:
            return float("inf") if self.signal > 0 else float("nan")
        return self.signal / self.noise


def group_means(values: np.ndarray, ids: np.ndarray) -> dict[int, float]:
    """Mean of ``values`` ``(n,)`` per mixture id ``(n,)``."""
    return {int(g): float(values[ids == g].mean()) for g in np.unique(ids)}


def signal_and_noise(values: np.ndarray, ids: np.ndarray) -> tuple[float, float, int]:
    """``(signal, noise, replicated mixtures)`` of one metric's values ``(n,)`` at mixture ids ``(n,)``."""
    means = np.array(list(group_means(values, ids).values()))
    signal = float(np.std(means, ddof=1)) if len(means) > 1 else float("nan")
    squares, dof, replicated = 0.0, 0, 0
    for g in np.unique(ids):
        x = values[ids == g]
        if len(x) > 1:
            squares += float(np.sum((x - x.mean()) ** 2))
            dof += len(x) - 1
            replicated += 1
    return signal, (float(np.sqrt(squares / dof)) if dof else float("nan")), replicated


def rank_correlation(values_a: np.ndarray, ids_a: np.ndarray, values_b: np.ndarray,
                     ids_b: np.ndarray) -> tuple[float | None, int]:
    """Spearman correlation of the per-mixture means at two fidelities over the mixtures measured at both,
    and their number (None below 2 mixtures, or when one side is constant)."""
    from scipy.stats import spearmanr

    a, b = group_means(values_a, ids_a), group_means(values_b, ids_b)
    shared = sorted(set(a) & set(b))
    if len(shared) < 2:
        return None, len(shared)
    x, y = [a[g] for g in shared], [b[g] for g in shared]
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, len(shared)
    return float(spearmanr(x, y).statistic), len(shared)


def metric_direction(name: str, objectives: Mapping[str, str]) -> str | None:
    """The configured direction of an objective's metric, else by name: accuracies up, losses and BPB down."""
    if name in objectives:
        return objectives[name]
    if ACCURACY.search(name):
        return "maximize"
    return "minimize" if LOWER_IS_BETTER.search(name) else None


def chance_of(name: str, choices: Mapping[str, int]) -> float | None:
    """``1/k`` for an accuracy with ``k`` choices (``choices`` by metric name, or ``"*"`` for every accuracy)."""
    if not ACCURACY.search(name):
        return None
    k = choices.get(name, choices.get("*"))
    return 1.0 / k if k else None


def assess(observations: Observations, fidelity: str, other: str | None = None,
           choices: Mapping[str, int] | None = None, objectives: Mapping[str, str] | None = None) -> list[MetricSignal]:
    """Every evaluation metric the completed runs at ``fidelity`` report, in name order, measured and
    flagged; ``other``: a second fidelity for the rank correlation; ``choices``: items' choice counts of
    accuracies (see :func:`chance_of`); ``objectives``: metric -> configured direction."""
    choices, objectives = choices or {}, objectives or {}
    ids = mixture_ids(observations.weights)
    here = observations.fidelities == fidelity
    there = observations.fidelities == other if other else np.zeros(len(observations), dtype=bool)
    names = sorted({k for row, m in zip(here, observations.metrics, strict=True) if row for k in m
                    if not k.startswith(BOOKKEEPING)})
    found = []
    for name in names:
        values = observations.metric(name)
        at = here & np.isfinite(values)
        signal, noise, replicated = signal_and_noise(values[at], ids[at])
        correlation, shared = (None, 0)
        if there.any():
            far = there & np.isfinite(values)
            correlation, shared = rank_correlation(values[at], ids[at], values[far], ids[far])
        chance = chance_of(name, choices)
        mean = float(values[at].mean())
        headroom = above = None
        if ACCURACY.search(name):
            floor = chance or 0.0
            headroom = (1.0 - mean) / (1.0 - floor)
            above = (mean - floor) / (1.0 - floor) if chance is not None else None
        found.append(_flagged(MetricSignal(
            name, metric_direction(name, objectives), int(at.sum()), len(np.unique(ids[at])), replicated, mean,
            signal, noise, chance, headroom, above, correlation, shared, ())))
    return found


def _flagged(m: MetricSignal) -> MetricSignal:
    flags = []
    if m.headroom is not None and m.headroom < SATURATION_MARGIN:
        flags.append("saturated")
    if m.above_chance is not None and m.above_chance < SATURATION_MARGIN:
        flags.append("at chance")
    if not m.replicated:
        flags.append("no replicates")
    elif not m.ratio >= SIGNAL_TO_NOISE_MIN:  # NaN (constant metric) counts as noise-dominated
        flags.append("noise-dominated")
    if (m.rank_correlation is not None and m.shared_mixtures >= RANK_CORRELATION_MIXTURES
            and m.rank_correlation < RANK_CORRELATION_MIN):
        flags.append("fidelities disagree")
    return dataclasses.replace(m, flags=tuple(flags))


def suggest(signals: Sequence[MetricSignal], top: int) -> list[MetricSignal]:
    """Up to ``top`` unflagged metrics with a known direction, highest signal-to-noise first."""
    passing = [m for m in signals if not m.flags and m.direction is not None]
    return sorted(passing, key=lambda m: -m.ratio)[:top]


BLOCK_START = "# >>> mixopt metrics: suggested objectives"
BLOCK_END = "# <<< mixopt metrics"


def suggestion_block(signals: Sequence[MetricSignal], suggested: Sequence[MetricSignal], fidelity: str) -> str:
    """A YAML comment block: the suggested objectives (ready to uncomment) and the flagged metrics, why."""
    lines = [BLOCK_START + f" at fidelity {fidelity}, by signal-to-noise (written by `mixopt metrics --write`;",
             "# replace the objectives with these to use them: a new study, since a study's objectives are fixed)",
             "# objectives:"]
    lines += [f"#   - {{name: {m.name}, metric: {m.name}, direction: {m.direction}}}  # S/N {m.ratio:.3g}"
              for m in suggested]
    if not suggested:
        lines.append("#   (none passes: run replicates of a few mixtures, or add metrics with headroom)")
    flagged = [m for m in signals if m.flags]
    if flagged:
        lines.append("# flagged: " + "; ".join(f"{m.name} ({', '.join(m.flags)})" for m in flagged))
    return "\n".join([*lines, BLOCK_END]) + "\n"


def with_block(text: str, block: str) -> str:
    """``text`` (a config) with ``block`` in place of an earlier block, else appended after a blank line."""
    start, end = text.find(BLOCK_START), text.find(BLOCK_END)
    if start >= 0 and end > start:
        tail = text[end + len(BLOCK_END):]
        return text[:start] + block + tail.lstrip("\n")
    return text.rstrip("\n") + "\n\n" + block
