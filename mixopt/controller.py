"""The controller: what ``mixopt study run`` does, in order, and what ``mixopt study ask`` hands out.

1. reuse: the runs of an older study imported (and its proposals queued) as the config's ``reuse`` says, once;
2. search: the cost-aware fidelity policy (:mod:`mixopt.costaware`) where the config sets it, integration
   rounds (:mod:`mixopt.rounds`) where it has ``rounds``, else the search loop (:func:`mixopt.loop.run_study`);
   all, and screening and seed merges, run their trials through one dispatch routine (:class:`mixopt.loop.Dispatch`);
3. the mixture to train for real (the promoted integration run, or the model's recommendation,
   :func:`mixopt.recommend.recommend_study`) exported beside the config (olmo-core). An export its reader
   would refuse (sources with weight > 0 and no paths, or too few tokens for their shares) does not fail the
   run: it is written with a warning line in its header, and ``Outcome.incomplete`` says why.

Everything is written to the study's storage as it is learned, so a run that stops resumes where it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mixopt.loop import Progress, propose_batch
from mixopt.study import EXTERNAL, Study

if TYPE_CHECKING:  # run() imports them: `mixopt study ask` needs none of the modelling stack (scikit-learn, ...)
    import optuna

    from mixopt.recommend import Recommendation
    from mixopt.reuse import ReuseReport
    from mixopt.rounds import Promotion


@dataclass(frozen=True)
class Outcome:
    """What a run of a study ends with: the promoted integration run (with rounds) or the model's
    recommendation (without), the file the chosen mixture was exported to, and why OLMo-core would refuse
    that export ("" when it would not; written with a warning header)."""

    promotion: Promotion | None
    recommendation: Recommendation | None
    exported: Path
    incomplete: str = ""


def run(study: Study, n_trials: int | None = None, batch_size: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_reuse: Callable[[ReuseReport, bool], None] | None = None,
        on_promotion: Callable[[dict], None] | None = None) -> Outcome:
    """Run (or resume) ``study`` to its configured number of completed trials and export its mixture.

    ``on_progress`` hears of each finished trial; ``on_reuse(report, applied_now)`` of the reuse of an
    older study (applied by this call, or found applied by an earlier one); ``on_promotion(entry)`` of each
    round's candidate checks before its integration run (an entry of the study's promotion log)."""
    from mixopt import export, handoff
    from mixopt.costaware import run_cost_aware
    from mixopt.loop import run_study
    from mixopt.recommend import recommend_study
    from mixopt.reuse import apply_reuse, stored_report
    from mixopt.rounds import run_rounds

    config = study.config
    if config.reuse is not None:
        reused = apply_reuse(study)
        report = reused or stored_report(study)
        if on_reuse is not None and report is not None:
            on_reuse(report, reused is not None)
    promotion, recommendation = None, None
    if config.fidelity_policy == "cost-aware":
        promotion = run_cost_aware(study, on_progress=on_progress, on_promotion=on_promotion)
    elif config.rounds:
        promotion = run_rounds(study, on_progress=on_progress, on_promotion=on_promotion)
    else:
        run_study(study, n_trials=n_trials or config.n_trials, batch_size=batch_size, on_progress=on_progress)
        recommendation = recommend_study(study)

    def render(allow_incomplete: bool) -> str:
        if promotion is not None:
            return handoff.export_trial(study, promotion.trial, allow_incomplete=allow_incomplete)
        assert recommendation is not None
        return handoff.export_recommendation(study, recommendation, allow_incomplete=allow_incomplete)

    incomplete = ""
    try:
        text = render(False)
    except export.IncompleteExport as exc:
        text, incomplete = render(True), exc.problem
    path = export.write_atomic(handoff.exports_path(study), text)
    return Outcome(promotion, recommendation, path, incomplete)


def ask(study: Study, n: int) -> list[optuna.trial.Trial]:
    """Propose what the queue lacks and hand ``n`` mixtures out as RUNNING trials owned from outside (to be
    told with ``Study.tell`` or ``mixopt study tell``; never judged stale)."""
    if study.n_waiting() < n:
        propose_batch(study, n - study.n_waiting())
    return study.start(n, owner=EXTERNAL)
