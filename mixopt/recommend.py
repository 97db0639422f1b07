"""The recommendation: which mixture to train for real, from the model of every run so far.

One function answers it for everything that hands a mixture to a user: ``mixopt study run`` (printed and
exported at the end), ``mixopt study export`` (its default, ``--pick recommended``), ``mixopt study
status``, the report, the integration rounds (which promote it) and the search benchmark (which scores
it). The model is the searcher's posterior (:meth:`Searcher.predictor`); a model-free searcher (random,
Optuna's samplers) gets one GP per objective fitted to the history instead. The best *measured* run is
not the answer: under run noise it is optimistic, and often not the best mixture.

How (``recommend``):

1. a candidate pool inside ``space`` (the polytope at the export budget, so the repetition caps of the
   integration fidelity hold): uniform polytope samples, Dirichlet draws around the prior, draws around
   the measured mixtures the model believes best, the measured mixtures that fit, and the baseline;
2. the model's predicted mean and standard deviation of every objective at each candidate;
3. the no-regression rule: with a ``baseline`` mixture, only candidates predicted no worse than the
   baseline's prediction by more than ``epsilon`` (objective units) on any objective;
4. one objective: the average of the ``top`` best allowed candidates by predicted mean (a convex
   combination of feasible mixtures, so feasible; averaging steadies the pick against model wiggles),
   or the best single one if the average breaks the rule; several objectives: the pick rule (knee,
   best:OBJ, chebyshev) applied to the predicted front of the allowed candidates;
5. its predicted values with uncertainty, and the nearest measured run (total-variation distance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mixopt import pareto
from mixopt.errors import ConfigError
from mixopt.search.outcome import SAME_MIXTURE_TOL
from mixopt.search.recommend import Recommendation, recommend_search
from mixopt.trials import History

if TYPE_CHECKING:
    from mixopt.study import Study

__all__ = ["Recommendation", "pick_measured", "recommend_search", "recommend_study"]


def recommend_study(study: Study, fidelity: str | None = None,
                    snap: Callable[[np.ndarray], np.ndarray] | None = None) -> Recommendation:
    """The study's recommendation inside the polytope at ``fidelity``'s budget (default: the last, the
    integration run), from the configured searcher's model of the search fidelity's runs, under the
    config's pick rule and no-regression rule (``baseline``, ``epsilon``), seeded by the config's seed;
    ``snap``: as for :func:`recommend_search`."""
    from mixopt.search import SEARCHERS

    config = study.config
    export = config.fidelity(fidelity) if fidelity else config.fidelities[-1]
    searcher = SEARCHERS.create(config.searcher.name, config.searcher.options)
    baseline = study.space.from_dict(config.baseline) if config.baseline is not None else None
    return recommend_search(
        searcher, study.space, study.history(), seed=config.seed, within=config.space(export.name),
        rule=config.pick, names=[o.name for o in config.objectives], baseline=baseline, epsilon=config.epsilon,
        snap=snap,
    )


def pick_measured(study: Study, rule: str, fidelity: str | None = None, export_fidelity: str | None = None) -> int:
    """The trial chosen by an observed-trial ``rule`` (knee, best:OBJ, chebyshev:w1,...) among completed
    trials at ``fidelity`` (default: the search fidelity) that fit the polytope at ``export_fidelity``'s
    budget (default: the last): the same candidate filter as the recommendation. best:OBJ honours the
    config's baseline and epsilon against the baseline's measured runs."""
    config = study.config
    names = [o.name for o in config.objectives]
    parsed = pareto.parse_pick_rule(rule, names)
    fidelity = fidelity or config.search_fidelity.name
    history = study.history(fidelity)
    if len(history) == 0:
        raise ConfigError(f"study '{study.name}' has no completed trials at fidelity '{fidelity}' to pick from")
    export_fidelity = export_fidelity or config.fidelities[-1].name
    space = config.space(export_fidelity)
    inside = np.array([space.is_feasible(w, tol=1e-6) for w in history.weights], dtype=bool)
    if not inside.any():
        raise ConfigError(
            f"no completed trial at fidelity '{fidelity}' fits the repetition caps at the '{export_fidelity}' budget: "
            "pass --fidelity with a smaller budget, or --trial N"
        )
    baseline_values = None
    if config.baseline is not None and parsed.kind == "best":
        baseline_values = _measured_baseline(study.space.from_dict(config.baseline), history)
    values = history.values[inside]
    index = pareto.pick(values, config.directions, parsed, names, baseline_values, config.epsilon)
    assert history.trials is not None
    return int(history.trials[inside][index])


def _measured_baseline(baseline: np.ndarray, history: History) -> np.ndarray:
    """Mean values ``(m,)`` of the history's runs of the ``baseline`` mixture ``(K,)``."""
    measured = history.mean_at(baseline, SAME_MIXTURE_TOL)
    if measured is None:
        raise ConfigError("the baseline mixture has no completed run to compare against: run it first "
                          "(mixopt study ask/tell, or a trial with exactly its weights)")
    return measured
