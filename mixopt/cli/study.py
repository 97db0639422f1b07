"""``mixopt study ...``: run, inspect, export, and drive a study from outside (ask/tell)."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from mixopt.cli.progress import make_console, trial_progress, width_for
from mixopt.errors import ConfigError

if TYPE_CHECKING:  # the rest of mixopt is imported by the commands that use it, so `mixopt --help` starts fast
    from mixopt.config import StudyConfig
    from mixopt.study import Study
    from mixopt.trials import Evaluation

app = typer.Typer(help="Run, inspect and export mixture studies.", no_args_is_help=True)
console = make_console(stderr=True)
out = make_console()

ConfigArg = typer.Argument(None, help="study.yaml (or its folder); default: studies/default/study.yaml here, else the packaged default study")
StorageOpt = typer.Option(None, "--storage", help="Optuna storage URL (default: SQLite beside the config)")
NameOpt = typer.Option(None, "--study-name", help="study name (default: the config's name)")


def default_config_path() -> Path | None:
    """``studies/default/study.yaml`` in the current folder; None where there is none (the packaged one)."""
    candidate = Path.cwd() / "studies" / "default" / "study.yaml"
    return candidate if candidate.is_file() else None


def default_config() -> StudyConfig:
    """The config of ``mixopt study ...`` without CONFIG: ``studies/default/study.yaml`` here, else the packaged
    default study with the current folder as its directory (storage, runs, report and exports go here)."""
    from mixopt.config import load_config, parse_config
    from mixopt.examples import example_text

    path = default_config_path()
    if path is not None:
        return load_config(path)
    console.print(f"no studies/default/study.yaml here: the packaged default study, writing in {Path.cwd()} "
                  "(copy it with `mixopt init --example default`)", markup=False, highlight=False)
    return parse_config(example_text("default"), directory=Path.cwd())


def open_study(config: Path | None, storage: str | None, study_name: str | None, create: bool) -> Study:
    """The study named by a config (created if ``create``) or by ``--storage`` and ``--study-name``."""
    from mixopt.config import load_config
    from mixopt.study import Study

    if config is None and storage is not None:
        if study_name is None:
            raise ConfigError("--storage without a CONFIG needs --study-name")
        return Study.load(storage, study_name)
    cfg = load_config(config) if config is not None else default_config()
    if create:
        study = Study.open(cfg, storage, study_name)
        if study.config_change is not None:
            console.print(study.config_change, markup=False, highlight=False)
        return study
    return Study.load(storage or cfg.storage_url, study_name or cfg.name)


@app.command(
    epilog="Example: mixopt study run studies/synthetic/study.yaml --n-trials 40 --batch-size 4",
)
def run(
    config: Path | None = ConfigArg,
    storage: str | None = StorageOpt,
    study_name: str | None = NameOpt,
    n_trials: int | None = typer.Option(None, "--n-trials", min=1, help="completed trials to reach"),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="mixtures proposed per round"),
    report: bool = typer.Option(True, "--report/--no-report", help="write the HTML report at the end"),
) -> None:
    """Run (or resume) a study until it has its configured number of completed trials, then print the
    Pareto front, write the report and export the recommended mixture."""
    from mixopt import controller
    from mixopt.study import mask_url

    study = open_study(config, storage, study_name, create=True)
    cfg = study.config
    console.print(
        f"study [bold]{study.name}[/] in {mask_url(storage or cfg.storage_url)}: {len(cfg.sources)} sources, "
        f"{len(cfg.objectives)} objectives, searcher {cfg.searcher.name}, runner {cfg.runner.name}"
    )
    completed = study.n_complete(cfg.search_fidelity.name)
    with trial_progress(console, cfg, n_trials or cfg.n_trials, completed) as on_progress:
        outcome = controller.run(study, n_trials, batch_size, on_progress=on_progress, on_reuse=print_reuse_event,
                                 on_promotion=lambda entry: print_promotion(console, entry))
    print_front(study)
    if outcome.promotion is not None:
        print_promoted(study, outcome.promotion)
    elif outcome.recommendation is not None:
        print_recommendation(study, outcome.recommendation)
    out.print(f"exported the recommended mixture to {outcome.exported}")
    if outcome.incomplete:
        console.print(f"[yellow]warning:[/] that export is incomplete: {outcome.incomplete}; its header says so. "
                      "Fix it and run `mixopt study export -o FILE`, or export --format plain")
    if report:
        write_study_report(study, outcome.recommendation)


def print_promoted(study: Study, promoted) -> None:
    """The last round's integration run (``mixopt.rounds.Promotion``) and its seed merge, if any."""
    names = [o.name for o in study.config.objectives]
    out.print(f"recommended mixture (round {promoted.round} integration run, trial {promoted.trial}): "
              + " ".join(f"{k}={v:.4f}" for k, v in promoted.mixture.items() if v > 0))
    out.print("  predicted " + " ".join(f"{n}={v:.4f}" for n, v in zip(names, promoted.predicted, strict=True)))
    if promoted.measured:
        out.print("  measured  " + " ".join(f"{n}={v:.4f}" for n, v in zip(names, promoted.measured, strict=True)))
    print_seed_merge(names, promoted.seeds, promoted.merged,
                     f"weights averaged over the {len(promoted.seeds)} seeds: {promoted.merged_checkpoint}")


def print_promotion(where, entry: dict) -> None:
    """One round's promotion checks (an entry of the promotion log): the models' out-of-fold figures, the
    candidate's distance and movement, the failed gates and what was done."""
    checks = entry["checks"]

    def number(value, spec: str = ".3g") -> str:
        return "n/a" if value is None else format(value, spec)

    models = "; ".join(f"{c['objective']}: rank corr {number(c['rank_corr'], '.2f')}, regret@1 {number(c['regret_at_1'])} "
                       f"(rank {c['rank_at_1']}), regret@5 {number(c['regret_at_5'])}, optimism {number(c['optimism'], '+.3g')}, "
                       f"slope {number(c['slope'], '.2f')}, cover80 {number(c['coverage_80'], '.2f')}, "
                       f"cover95 {number(c['coverage_95'], '.2f')}" for c in checks["objectives"])
    moved = ", ".join(f"{k} {number(v, '.3f')}" for k, v in checks["movement"].items())
    where.print(f"round {entry['round']} candidate: distance to the nearest run {number(checks['distance'], '.3f')}, "
                f"movement from refits on the first {moved}; {models}", markup=False, highlight=False)
    failed = "; ".join(entry["failures"]) or "no gate failed"
    where.print(f"round {entry['round']} promotion: {entry['action']} ({failed})", markup=False, highlight=False)


def print_reuse_event(report, applied_now: bool) -> None:
    """The reuse of an older study: its source map and counts when applied now, else one line."""
    if applied_now:
        print_reuse(report)
    else:
        out.print(f"reuse of study '{report.old_study}' was applied when this study started "
                  f"({len(report.imported)} trials imported; `mixopt study status` shows the map)")


def print_reuse(report) -> None:
    """The source map and counts of a mixture reuse (``mixopt.reuse.ReuseReport``), as plain text."""
    out.print("\n".join(report.summary()), markup=False, highlight=False)


def write_study_report(study: Study, recommendation=None) -> None:
    """The HTML report beside the config, written last (the runs are stored and the mixture exported by
    then). A folder that cannot be written is a warning; any other failure (a bug) is one error line and
    exit status 1, its traceback kept in ``report/<study>-error.txt``: the study stays complete."""
    import traceback

    from mixopt.report import write_report

    path = study.config.directory / "report" / f"{study.name}.html"
    try:
        with console.status("writing the report"):
            write_report(study, path, recommendation=recommendation)
        out.print(f"report: {path}")
    except (OSError, ConfigError) as exc:
        console.print(f"[yellow]no report:[/] {exc} (write it elsewhere with `mixopt study report -o PATH`)")
    except Exception as exc:  # noqa: BLE001 (a bug in the report must not read as a failed study)
        kept = path.with_name(f"{study.name}-error.txt")
        kept.write_text(traceback.format_exc())
        console.print(f"error: the report failed ({type(exc).__name__}: {exc}); the study's runs and export are stored. "
                  f"its traceback is in {kept}; `mixopt study report` writes the report again", markup=False, highlight=False)
        raise typer.Exit(1) from None


def print_front(study: Study, limit: int = 12) -> None:
    """A table of the observed Pareto front at the search fidelity."""
    from mixopt.analysis import observed_front

    cfg = study.config
    done, front = observed_front(study)
    if not len(done):
        out.print("no completed trials yet")
        return
    names = [o.name for o in cfg.objectives]
    shown = f", first {limit} by {names[0]}" if len(front) > limit else ""
    table = Table(title=f"Pareto front of {study.name} ({len(front)} of {len(done)} trials{shown})")
    table.add_column("trial", justify="right")
    for objective in cfg.objectives:
        table.add_column(f"{objective.name} ({'max' if objective.direction == 'maximize' else 'min'})", justify="right")
    table.add_column("mixture")
    for number, values, weights in list(zip(front.numbers, front.values, front.weights, strict=True))[:limit]:
        mix = " ".join(f"{s}={w:.3f}" for w, s in sorted(zip(weights, study.space.names, strict=True), reverse=True)
                       if w >= 0.0005)
        table.add_row(str(number), *(f"{v:.4f}" for v in values), mix)
    out.print(table, width=width_for(out))


def objective_signals(study: Study) -> list:
    """Signal and noise (``mixopt.headroom.MetricSignal``) of the metrics the objectives read."""
    from mixopt.analysis import metric_signals, study_runs

    wanted = {o.metric for o in study.config.objectives}
    return [m for m in metric_signals(study.config, study_runs(study)) if m.name in wanted]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@app.command(epilog="Example: mixopt study status studies/synthetic/study.yaml")
def status(
    config: Path | None = ConfigArg,
    storage: str | None = StorageOpt,
    study_name: str | None = NameOpt,
    output_format: str = typer.Option("table", "-f", "--format", help="table or json"),
) -> None:
    """Counts of trials by state and fidelity, failures with their reasons, and the Pareto front."""
    from mixopt.analysis import fidelity_agreement, study_runs
    from mixopt.costaware import budget_status
    from mixopt.recommend import recommend_study
    from mixopt.rounds import merge_results
    from mixopt.trials import StudyAttr
    from mixopt.trust import plain_json

    study = open_study(config, storage, study_name, create=False)
    frame = study.frame()
    failed = frame[frame.state == "FAIL"] if not frame.empty else frame
    if output_format == "json":
        summary = {
            "study": study.name,
            "states": frame.groupby("state").size().to_dict() if not frame.empty else {},
            "complete_by_fidelity": frame[frame.state == "COMPLETE"].groupby("fidelity").size().to_dict() if not frame.empty else {},
            "failures": [{"trial": int(r.trial), "reason": r.fail_reason} for r in failed.itertuples()],
            "late_results": study.late_results(),
            "seed_merges": merge_results(study),
            "budget": budget_status(study),
            "promotion_log": study.optuna.user_attrs.get(StudyAttr.PROMOTION_LOG, []),
            "decision_accuracy": plain_json({name: dataclasses.asdict(a) for name, a in
                                             fidelity_agreement(study.config, study_runs(study)).items()}),
            "recommendation": _recommendation_json(study),
            "objective_metrics": [{"metric": m.name, "mixtures": m.mixtures, "replicated": m.replicated,
                                   "signal": _finite(m.signal), "noise": _finite(m.noise), "ratio": _finite(m.ratio),
                                   "flags": list(m.flags)} for m in objective_signals(study)],
        }
        out.print_json(json.dumps(summary))
        return
    if output_format != "table":
        raise ConfigError(f"unknown format '{output_format}': use table or json")
    out.print(f"study {study.name}: {len(frame)} trials")
    if not frame.empty:
        for (state, fidelity), count in frame.groupby(["state", "fidelity"], dropna=False).size().items():
            out.print(f"  {state:<9} {fidelity or '-':<14} {count}")
    for r in failed.itertuples():
        out.print(f"  trial {r.trial} failed: {r.fail_reason}")
    for late in study.late_results():
        values = " ".join(f"{o.name}={v:.4g}" for o, v in zip(study.config.objectives, late["values"], strict=False))
        out.print(f"  trial {late['trial']} late result from {late['controller']}, kept as an extra attempt: {values} "
                  f"(run folder {late['run_folder']})", markup=False, highlight=False)
    print_front(study)
    if (budget := budget_status(study)) is not None:
        each = ", ".join(f"{name} {cost:.3g}" for name, cost in budget["run_costs"].items())
        out.print(f"budget: spent {budget['spent']:.4g} of {budget['cost']:.4g} {budget['unit']} (one run: {each})")
    names = [o.name for o in study.config.objectives]
    predicted = study.optuna.user_attrs.get(StudyAttr.PREDICTED_FRONT)
    if predicted:
        out.print(f"surrogate-predicted front at '{predicted['fidelity']}' (round {predicted['round']}):")
        for point in predicted["points"]:
            mix = " ".join(f"{k}={v:.3f}" for k, v in sorted(point["mixture"].items(), key=lambda kv: -kv[1]) if v >= 0.0005)
            out.print("  " + " ".join(f"{n}={v:.4f}" for n, v in zip(names, point["predicted"], strict=True)) + f"  {mix}")
    for entry in study.optuna.user_attrs.get(StudyAttr.PROMOTION_LOG, []):
        print_promotion(out, entry)
    cfg = study.config
    for name, accuracy in fidelity_agreement(cfg, study_runs(study)).items():
        out.print(f"decision accuracy of '{cfg.search_fidelity.name}' for '{cfg.fidelities[-1].name}', {name}: "
                  f"{accuracy.accuracy:.2f} (95% interval {accuracy.low:.2f}-{accuracy.high:.2f}) over {accuracy.pairs} "
                  f"pairs of {accuracy.mixtures} mixtures measured at both; rank correlation {accuracy.rank_corr:.2f}",
                  markup=False, highlight=False)
    for m in objective_signals(study):
        out.print(f"objective metric {m.name}: signal {m.signal:.3g}, noise {m.noise:.3g} from {m.replicated} replicated "
                  f"mixture(s), S/N {m.ratio:.3g}: {', '.join(m.flags) or 'ok'} (mixopt metrics for all metrics)",
                  markup=False, highlight=False)
    if study.n_complete(study.config.search_fidelity.name):
        print_recommendation(study, recommend_study(study))
    for merge in merge_results(study):
        out.print(f"seed runs of recommended trial {merge['trial']} and their merge:")
        print_seed_merge(names, merge["seeds"], merge["merged"], str(merge["checkpoint"]))
    from mixopt.reuse import stored_report

    if (reused := stored_report(study)) is not None:
        print_reuse(reused)


def _recommendation_json(study: Study) -> dict | None:
    """The recommendation as JSON-ready numbers, or None before any completed run."""
    from mixopt.recommend import recommend_study

    if not study.n_complete(study.config.search_fidelity.name):
        return None
    r = recommend_study(study)
    names = [o.name for o in study.config.objectives]
    return {
        "mixture": study.space.as_dict(r.weights), "rule": r.rule, "model": r.model,
        "predicted": None if r.predicted is None else dict(zip(names, map(float, r.predicted), strict=True)),
        "predicted_sd": None if r.predicted_sd is None else dict(zip(names, map(float, r.predicted_sd), strict=True)),
        "nearest_trial": r.nearest_trial, "distance": r.distance,
    }


def print_recommendation(study: Study, recommendation) -> None:
    """The recommended mixture (``mixopt.recommend.Recommendation``), its prediction and nearest run."""
    names = [o.name for o in study.config.objectives]
    weights = sorted(zip(recommendation.weights, study.space.names, strict=True), reverse=True)
    out.print(f"recommended mixture ({recommendation.model}, pick {recommendation.rule}): "
              + " ".join(f"{s}={w:.4f}" for w, s in weights if w >= 0.00005), markup=False, soft_wrap=True)
    if recommendation.predicted is not None:
        out.print("  predicted " + " ".join(f"{n}={v:.4f}+-{sd:.2g}" for n, v, sd in
                                            zip(names, recommendation.predicted, recommendation.predicted_sd, strict=True)),
                  markup=False)
    if recommendation.nearest_trial is not None:
        out.print(f"  nearest measured run: trial {recommendation.nearest_trial} "
                  f"(total-variation distance {recommendation.distance:.3f})", markup=False)


def print_seed_merge(names: list[str], seeds: list[list[float]], merged: list[float] | None, where: str) -> None:
    """One line per seed run of a recommended mixture, then its merge's values and ``where`` it lies."""
    for seed, values in enumerate(seeds, 1):
        out.print(f"  seed {seed}    " + " ".join(f"{n}={v:.4f}" for n, v in zip(names, values, strict=True)))
    if merged is not None:
        out.print("  merged    " + " ".join(f"{n}={v:.4f}" for n, v in zip(names, merged, strict=True)) + f"  ({where})",
                  markup=False, soft_wrap=True)


@app.command(
    epilog="Example: mixopt study export studies/synthetic/study.yaml --pick best:math --format plain -o mix.yaml",
)
def export(
    config: Path | None = ConfigArg,
    storage: str | None = StorageOpt,
    study_name: str | None = NameOpt,
    trial: int | None = typer.Option(None, "--trial", help="trial number to export"),
    pick: str | None = typer.Option(None, "--pick", help="recommended (default: the model's recommendation), or a measured trial by knee, best:OBJECTIVE or chebyshev:w1,w2,..."),
    dialect: str = typer.Option("olmo-core", "--format", help="olmo-core, olmo-cookbook or plain"),
    fidelity: str | None = typer.Option(None, "--fidelity", help="fidelity whose budget sets the caps (default: the last, integration)"),
    output: Path | None = typer.Option(None, "-o", "--output", help="file to write (default: stdout)"),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help="write an olmo-core or olmo-cookbook file "
                                          "its reader would refuse (sources with weight > 0 and no paths, or too few tokens for their shares), "
                                          "with a warning in its header"),
    keep_zero: bool = typer.Option(False, "--keep-zero", help="olmo-core: keep the sources of weight 0 (left out by "
                                   "default, listed in the header: OLMo-core's composable mixing refuses a ratio of 0)"),
    sequence_length: int | None = typer.Option(None, "--sequence-length", min=1, help="olmo-core: the trainer's tokens "
                                               "per instance (default: the runner's, else 4096)"),
    global_batch_size: int | None = typer.Option(None, "--global-batch-size", min=1, help="olmo-core: the trainer's "
                                                 "tokens per step, a multiple of the sequence length (default: the "
                                                 "runner's, else 4194304)"),
    audit: bool = typer.Option(False, "--audit", help="olmo-core: build the export with OLMo-core and print, per "
                               "source, the requested and realised shares, tokens and epochs (on stderr)"),
    realisable: bool = typer.Option(False, "--realisable", help="olmo-core: export the nearest mixture OLMo-core "
                                    "realises exactly (whole instances per source in whole global batches at the "
                                    "export budget; the recommendation's predictions are the snapped mixture's)"),
) -> None:
    """Export a mixture as YAML for a training stack: by default the study's recommendation (the model's
    choice at the export budget); with --trial or --pick RULE, a measured trial."""
    from mixopt import export as export_mod
    from mixopt import handoff

    if dialect not in export_mod.DIALECTS:
        raise ConfigError(f"unknown export format '{dialect}': choose one of {', '.join(export_mod.DIALECTS)}")
    study = open_study(config, storage, study_name, create=False)
    batch = None
    if (sequence_length is None) != (global_batch_size is None):
        raise ConfigError("give both --sequence-length and --global-batch-size, or neither")
    if sequence_length is not None and global_batch_size is not None:
        if global_batch_size % sequence_length:
            raise ConfigError(f"--global-batch-size {global_batch_size} is not a multiple of --sequence-length "
                              f"{sequence_length}: OLMo-core needs whole instances per batch")
        batch = (sequence_length, global_batch_size)
    if audit and dialect != "olmo-core":
        raise ConfigError("--audit builds olmo-core exports: drop --format or give --format olmo-core")
    text, what = handoff.export_choice(study, trial, pick, dialect, fidelity, allow_incomplete, keep_zero, batch,
                                       realisable)
    if audit:
        for line in export_mod.audit_lines(export_mod.olmo_core_audit(text)):
            console.print(line, markup=False, highlight=False)
    if output is None:
        sys.stdout.write(text)
    else:
        export_mod.write_atomic(output, text)
        console.print(f"wrote {what} to {output}")


@app.command(epilog="Example: mixopt study ask studies/synthetic/study.yaml -n 4 -f json > batch.json")
def ask(
    config: Path | None = ConfigArg,
    storage: str | None = StorageOpt,
    study_name: str | None = NameOpt,
    n: int = typer.Option(1, "-n", min=1, help="number of mixtures"),
    output_format: str = typer.Option("json", "-f", "--format", help="json"),
) -> None:
    """Propose mixtures and hand them out as RUNNING trials, to be told with `mixopt study tell`."""
    from mixopt import controller
    from mixopt.trials import Attr

    if output_format != "json":
        raise ConfigError(f"unknown format '{output_format}': use json")
    study = open_study(config, storage, study_name, create=True)
    trials = controller.ask(study, n)
    batch = [
        {"trial": t.number, "fidelity": t.user_attrs[Attr.FIDELITY], "seed": t.user_attrs[Attr.SEED],
         "mixture": study.space.as_dict(study.weights_of(t))}
        for t in trials
    ]
    sys.stdout.write(json.dumps(batch, indent=2) + "\n")


@app.command(
    epilog="Examples: mixopt study tell studies/synthetic/study.yaml --trial 3 --values 2.91,3.02,2.88\n\n"
    "mixopt study tell --trial 3 --file results.json   (results.json: {\"metrics\": {...}, \"stderr\": {...}})",
)
def tell(
    config: Path | None = ConfigArg,
    storage: str | None = StorageOpt,
    study_name: str | None = NameOpt,
    trial: int = typer.Option(..., "--trial", help="trial number from `mixopt study ask`"),
    values: str | None = typer.Option(None, "--values", help="objective values, comma-separated, in config order"),
    file: Path | None = typer.Option(None, "--file", help="JSON with metrics (and optional stderr, cost)"),
    fail: str | None = typer.Option(None, "--fail", help="mark the trial failed with this reason"),
) -> None:
    """Report the result of a trial handed out by `mixopt study ask`."""
    if sum(x is not None for x in (values, file, fail)) != 1:
        raise ConfigError("give exactly one of --values, --file or --fail")
    study = open_study(config, storage, study_name, create=False)
    running = {t.number for t in study.trials() if t.state.name == "RUNNING"}
    if trial not in running:
        raise ConfigError(f"trial {trial} is not running in study '{study.name}' (already told, or never asked)")
    if fail is not None:
        study.fail(trial, fail)
        console.print(f"trial {trial} marked failed")
        return
    evaluation = _evaluation_from_cli(study, values, file)
    try:
        study.tell(trial, evaluation)
    except ValueError as exc:
        raise ConfigError(f"trial {trial}: {exc}") from None
    console.print(f"trial {trial} complete")


def _evaluation_from_cli(study: Study, values: str | None, file: Path | None) -> Evaluation:
    """The evaluation of ``--values`` (objective values in config order) or ``--file`` (JSON)."""
    from mixopt.study import EXTERNAL
    from mixopt.trials import Evaluation

    objectives = study.config.objectives
    if values is not None:
        try:
            numbers = [float(v) for v in values.split(",")]
        except ValueError:
            raise ConfigError(f"--values must be numbers separated by commas (got '{values}')") from None
        if len(numbers) != len(objectives) or not all(math.isfinite(v) for v in numbers):
            raise ConfigError(f"--values needs {len(objectives)} finite numbers, one per objective {[o.name for o in objectives]}")
        return Evaluation(metrics={o.metric: v for o, v in zip(objectives, numbers, strict=True)}, runner=EXTERNAL)
    try:
        data = json.loads(Path(str(file)).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read results file {file}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ConfigError(f"{file}: expected a JSON object with a 'metrics' mapping")
    try:
        return Evaluation(
            metrics={k: float(v) for k, v in data["metrics"].items()},
            stderr={k: float(v) for k, v in data.get("stderr", {}).items()},
            cost={k: float(v) for k, v in data.get("cost", {}).items()},
            runner=str(data.get("runner", EXTERNAL)),
        )
    except (TypeError, ValueError, AttributeError):
        raise ConfigError(f"{file}: metrics, stderr and cost must map names to numbers") from None


@app.command(
    "import",
    epilog="Example: mixopt study import study.yaml --ratios swarm_ratios.csv --metrics swarm_metrics.csv --fidelity microanneal",
)
def import_runs(
    config: Path | None = ConfigArg,
    storage: str | None = StorageOpt,
    study_name: str | None = NameOpt,
    ratios: Path = typer.Option(..., "--ratios", help="CSV of mixtures: a key column and one column per source"),
    metrics: Path = typer.Option(..., "--metrics", help="CSV of results: the key column and each objective's metric"),
    fidelity: str | None = typer.Option(None, "--fidelity", help="fidelity of these runs (default: the search fidelity)"),
    key: str | None = typer.Option(None, "--key", help="join column (default: detected)"),
) -> None:
    """Load a swarm of runs measured elsewhere (e.g. RegMix or Olmix tables) as completed trials: a warm start."""
    from mixopt.tables import read_run_table

    study = open_study(config, storage, study_name, create=True)
    fidelity = study.config.fidelity(fidelity).name if fidelity else study.config.search_fidelity.name
    table = read_run_table(ratios, metrics, key)
    count = study.import_table(table, fidelity, source=f"{ratios.name} + {metrics.name}", where=(str(ratios), str(metrics)))
    skipped = [(count.duplicate, "already in the study"), (count.outside, "outside the space's constraints or missing values")]
    out.print(f"imported {count.added} of {len(table.weights)} runs into study {study.name} at fidelity {fidelity}"
              + "".join(f"; {n} {why} (skipped)" for n, why in skipped if n))
