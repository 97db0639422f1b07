"""Fuzzing that reaches the loaders and past them: 1000+ seeded mutations of the studies' configs
(tests/reliability/fuzz_cases.py), each either refused with one ``ConfigError`` line or loaded and run for two
trials with the synthetic runner (the search loop that ``mixopt study run`` runs; a seeded sample through the
whole of :func:`mixopt.controller.run`, recommendation and export included); 1000+ mutations of valid run
tables, each refused with one line or imported into a study and fitted. Any other exception (a traceback) is
a failure, reported with its case; so are a case over its time bound and a case over its memory bound. A
seeded sample of refusals goes through the real command: exit 2, one stderr line, no traceback. Config files
with damaged bytes (not only YAML values) go through the same, read as the command reads them; and a study's
config edited between two of its runs either runs on or is refused in one line, its completed trials kept."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from fuzz_cases import Case, TableCase, byte_case, config_case, table_case

from mixopt import controller
from mixopt.config import ComponentConfig, StudyConfig, load_config, parse_config
from mixopt.errors import ConfigError, MixoptError
from mixopt.loop import run_study
from mixopt.study import Study
from study_helpers import REPO, command_env

N_CASES = 1000
BYTE_CASES = 400  # configs with damaged bytes (each refused at once, or loaded and run for two trials)
EDIT_CASES = 40  # studies whose config is edited between two runs (two trials each run)
CASE_SECONDS = 60  # per case: load, two trials (or a table's import and fit); a loaded 2-core machine
CASE_MEGABYTES = 1280  # per case: growth of the peak resident size (a whole run of a botorch study grew it 768-950 MB: the recommendation over 12k candidates)
PROCESS_MEGABYTES = 3072  # the whole test process's peak resident size (torch, botorch, optuna loaded)
FULL_RUN_EVERY = 50  # every 50th loaded config also runs the whole controller (recommendation, export)
CLI_REFUSALS = 8  # refusals checked again through `mixopt study run`
BASES = ["synthetic", "default", "midtraining", "olmo-cookbook"]
SYNTHETIC = (REPO / "studies" / "synthetic" / "study.yaml").read_text()


PEAKS: list[float] = []  # the process's peak resident size (MB) in each case (Linux; the per-case reset hides it from getrusage)


class CaseTimeout(BaseException):
    """Raised in a case that ran past ``CASE_SECONDS`` (a BaseException: no ``except Exception`` eats it)."""


def bounded_case(label: str, folder: Path, run: Callable[[], str], failures: list[str]) -> tuple[str, float, float] | None:
    """One fuzz case in its own ``folder`` (made, then removed) under :func:`bounded`: ``(outcome, seconds,
    megabytes)``, or None when it raised; a traceback, a timeout or a peak resident growth above
    ``CASE_MEGABYTES`` is appended to ``failures`` under ``label``."""
    folder.mkdir()
    try:
        outcome, seconds, megabytes = bounded(run)
    except BaseException as exc:  # noqa: B036 (a traceback or a timeout is this test's finding)
        failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:300]}")
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if megabytes > CASE_MEGABYTES:
        failures.append(f"{label}: its peak resident size grew {megabytes:.0f} MB")
    return outcome, seconds, megabytes


def bounded(fn: Callable[[], str]) -> tuple[str, float, float]:
    """``fn()`` under the time bound, with its seconds and the growth of the process's peak resident size
    (MB) over its start: Linux's peak (``VmHWM``) reset through ``/proc/self/clear_refs`` first (tracemalloc
    would slow the cases down 4 to 6 times); elsewhere tracemalloc's peak of Python allocations."""
    def expire(signum, frame):
        raise CaseTimeout(f"over {CASE_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    proc = _reset_peak()
    if not proc:
        tracemalloc.start()
    before = _status_kb("VmRSS") if proc else 0
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        outcome = fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if proc:
            peak = _status_kb("VmHWM")
            grown = (peak - before) / 1024
            PEAKS.append(peak / 1024)
        else:
            grown = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    return outcome, time.perf_counter() - start, grown


def _reset_peak() -> bool:
    """Reset this process's peak resident size to its current one; whether the system allows it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in kB."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1])


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, f"not one line: {message!r}"
    return message


def cheapest(config: StudyConfig, case: Case) -> StudyConfig:
    """The loaded config at its cheapest: two trials, batches of at most 2, one round, two seeds merged; the
    synthetic runner reporting every objective's metric and parts (unless the runner is the synthetic one);
    runs in this process (unless the case changed the executor)."""
    metrics = [m for o in config.objectives for m in (o.metric, *o.parts)]
    runner = config.runner if config.runner.name == "synthetic" else ComponentConfig("synthetic", {"metrics": metrics})
    executor = config.executor if case.path[:1] == ("executor",) else ComponentConfig("serial")
    return dataclasses.replace(
        config, n_trials=2, batch_size=min(config.batch_size, 2), runner=runner, executor=executor,
        rounds=min(config.rounds, 1) if config.rounds else config.rounds,
        merge_seeds=min(config.merge_seeds, 2) if config.merge_seeds else config.merge_seeds,
    )


def run_config_case(case: Case, folder: Path, storage: str, loaded: Counter) -> str:
    """``ran`` or ``ran whole`` (every ``FULL_RUN_EVERY``-th loaded config, counted in ``loaded``), ``refused``
    (at load) or ``refused at run``; anything else raised is a traceback. Unless the case sets its own
    storage, its study is one of many in ``storage`` (one SQLite file: creating Optuna's tables for every case
    would cost more than its two trials), named after the config with the case's number appended."""
    try:
        config = parse_config(case.text, directory=folder)
    except ConfigError as exc:
        one_line(exc)
        return "refused"
    loaded["configs"] += 1
    full = loaded["configs"] % FULL_RUN_EVERY == 1
    config = cheapest(config, case)
    try:
        study = Study.open(config, None if config.storage else storage, f"{config.name}-{loaded['configs']}")
        if full:
            controller.run(study)
        else:
            run_study(study, n_trials=2)
        assert study.n_complete(config.search_fidelity.name) >= 2 or config.rounds
    except MixoptError as exc:  # a run-time refusal (a bad runner option, every run failing): one line too
        one_line(exc)
        return "refused at run"
    return "ran whole" if full else "ran"


@pytest.mark.slow
def test_mutated_configs_load_and_run_or_are_refused_with_one_line(tmp_path):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(21)
    bases = {name: (REPO / "studies" / name / "study.yaml").read_text() for name in BASES}
    parsed = {name: yaml.safe_load(text) for name, text in bases.items()}
    root = scratch(tmp_path)
    storage = f"sqlite:///{root / 'configs.db'}"
    # One whole run of the unchanged synthetic study first: the modelling stack's imports and caches (torch,
    # botorch: hundreds of MB) are then not charged to the first case that needs them.
    (root / "warm-up").mkdir()
    warm_up = f"sqlite:///{root / 'warm-up' / 'study.db'}"
    assert run_config_case(Case(bases["synthetic"], "unchanged"), root / "warm-up", warm_up, Counter()) == "ran whole"
    outcomes: Counter = Counter()
    failures: list[str] = []
    refusals: list[Case] = []
    slowest, heaviest, loaded = 0.0, 0.0, Counter()
    for i in range(N_CASES):
        name = BASES[i % len(BASES)]
        case = config_case(rng, parsed[name], bases[name])
        folder = root / f"case-{i}"
        result = bounded_case(f"case {i} ({name}: {case.what})", folder,
                              functools.partial(run_config_case, case, folder, storage, loaded), failures)
        if result is None:
            continue
        outcome, seconds, megabytes = result
        outcomes[outcome] += 1
        slowest, heaviest = max(slowest, seconds), max(heaviest, megabytes)
        if outcome == "refused" and len(refusals) < CLI_REFUSALS and rng.random() < 0.05:
            refusals.append(case)
    assert not failures, f"{len(failures)} cases failed:\n" + "\n".join(failures[:40])
    for case in refusals:
        check_refused_by_the_command(tmp_path, case.what, case.text)
    rss = max(PEAKS, default=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    assert rss < PROCESS_MEGABYTES
    ran = outcomes["ran"] + outcomes["ran whole"]
    print(f"\nFIGURE fuzz configs: tried {N_CASES}, loaded {ran + outcomes['refused at run']}, "
          f"ran {ran} (two trials each; {outcomes['ran whole']} through the whole controller run), refused "
          f"{outcomes['refused']} at load + {outcomes['refused at run']} at run, tracebacks 0; slowest case "
          f"{slowest:.1f} s (bound {CASE_SECONDS}), peak resident growth {heaviest:.0f} MB (bound {CASE_MEGABYTES}), "
          f"process peak RSS {rss:.0f} MB (bound {PROCESS_MEGABYTES}); through the command: {len(refusals)} "
          "refusals, exit 2, one line")


def check_refused_by_the_command(tmp_path: Path, what: str, content: str | bytes) -> None:
    """``mixopt study run`` on a config file holding ``content``: exit 2, one line, no study made."""
    folder = tmp_path / "cli"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "study.yaml").write_bytes(content if isinstance(content, bytes) else content.encode())
    result = subprocess.run([sys.executable, "-m", "mixopt.cli", "study", "run", str(folder / "study.yaml")],
                            capture_output=True, text=True, env=command_env(), timeout=300, cwd=folder)
    assert result.returncode == 2, (what, result.stderr[-2000:])
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), (what, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert not (folder / "study.db").exists(), "a refused config must not create a study"


def run_byte_case(content: bytes, what: str, folder: Path, storage: str, loaded: Counter) -> str:
    """A config file holding ``content``, read as the command reads it (:func:`load_config`): ``refused`` in
    one line, or whatever its text does as a case of :func:`run_config_case`."""
    (folder / "study.yaml").write_bytes(content)
    try:
        load_config(folder / "study.yaml")
    except ConfigError as exc:
        one_line(exc)
        return "refused"
    return run_config_case(Case(content.decode("utf-8"), what), folder, storage, loaded)


@pytest.mark.slow
def test_configs_with_damaged_bytes_load_and_run_or_are_refused_with_one_line(tmp_path):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(22)
    bases = {name: (REPO / "studies" / name / "study.yaml").read_bytes() for name in BASES}
    root = scratch(tmp_path)
    storage = f"sqlite:///{root / 'bytes.db'}"
    outcomes: Counter = Counter()
    failures: list[str] = []
    refusals: list[tuple[str, bytes]] = []
    loaded: Counter = Counter()
    for i in range(BYTE_CASES):
        name = BASES[i % len(BASES)]
        content, what = byte_case(rng, bases[name])
        folder = root / f"bytes-{i}"
        result = bounded_case(f"case {i} ({name}: {what})", folder,
                              functools.partial(run_byte_case, content, what, folder, storage, loaded), failures)
        if result is not None:
            outcomes[result[0]] += 1
            if result[0] == "refused" and len(refusals) < CLI_REFUSALS and rng.random() < 0.1:
                refusals.append((what, content))
    assert not failures, f"{len(failures)} cases failed:\n" + "\n".join(failures[:40])
    assert outcomes["refused"] > BYTE_CASES // 4 and outcomes["ran"] + outcomes["ran whole"] > BYTE_CASES // 10
    for what, content in refusals:
        check_refused_by_the_command(tmp_path, what, content)
    print(f"\nFIGURE fuzz config bytes: tried {BYTE_CASES}, refused {outcomes['refused']} at load + "
          f"{outcomes['refused at run']} at run, ran {outcomes['ran'] + outcomes['ran whole']}, tracebacks 0; "
          f"through the command: {len(refusals)} refusals, exit 2, one line")


def completed(study: Study) -> dict[int, tuple]:
    """Each completed trial's number -> (its mixture, its values)."""
    return {t.number: (t.params, t.values) for t in study.trials((optuna.trial.TrialState.COMPLETE,))}


def run_edited_case(case: Case, first: StudyConfig, folder: Path, storage: str, name: str) -> str:
    """A study run for two trials under ``first``, then opened and run again under the edited config
    ``case``: ``refused`` (at load, at open or at run, one line each) or ``ran on``; either way the trials
    completed under ``first`` are all still there, unchanged."""
    study = Study.open(first, storage, name)
    run_study(study, n_trials=2)
    before = completed(study)
    try:
        edited = cheapest(parse_config(case.text, directory=folder), case)
        again = Study.open(edited, storage, name)
        run_study(again, n_trials=4)
        outcome = "ran on"
    except MixoptError as exc:
        one_line(exc)
        outcome = "refused"
    after = completed(Study.open(first, storage, name) if outcome == "refused" else again)
    lost = {n: trial for n, trial in before.items() if after.get(n) != trial}
    assert not lost, f"completed trials lost or changed: {sorted(lost)}"
    return outcome


@pytest.mark.slow
def test_a_config_edited_between_two_runs_runs_on_or_is_refused_and_keeps_the_completed_trials(tmp_path):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(23)
    base = yaml.safe_load(SYNTHETIC)
    root = scratch(tmp_path)
    storage = f"sqlite:///{root / 'edits.db'}"
    first = cheapest(parse_config(SYNTHETIC, directory=root), Case(SYNTHETIC, "unchanged"))
    outcomes: Counter = Counter()
    failures: list[str] = []
    for i in range(EDIT_CASES):
        case = config_case(rng, base, SYNTHETIC)
        folder = root / f"edit-{i}"
        result = bounded_case(f"case {i} ({case.what})", folder,
                              functools.partial(run_edited_case, case, first, folder, storage, f"edit-{i}"), failures)
        if result is not None:
            outcomes[result[0]] += 1
    assert not failures, f"{len(failures)} cases failed:\n" + "\n".join(failures[:40])
    assert outcomes["ran on"] and outcomes["refused"]
    print(f"\nFIGURE fuzz config edits between two runs: tried {EDIT_CASES}, ran on {outcomes['ran on']}, refused "
          f"{outcomes['refused']} (one line each), completed trials lost or changed 0, tracebacks 0")


# -- tables ------------------------------------------------------------------------------------------------
FIT_GP_EVERY = 20  # every 20th imported table is also fitted with the default surrogate (a GP); all with loglinear
REGMIX_ROWS = 12
REGMIX_OBJECTIVES = ["metric/the_pile_arxiv_val_loss", "metric/the_pile_github_val_loss"]


def table_bases(tmp_path: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, StudyConfig]]:
    """Valid pairs of tables and the study each imports into: 8 runs of the synthetic study (its mixing law's
    expected values) and the first RegMix rows (17 Pile domains) with a study over those domains."""
    from mixopt.config import load_config
    from mixopt.runners.synthetic import SyntheticRunner, expected_outcome

    synthetic = load_config(REPO / "studies" / "synthetic" / "study.yaml")
    synthetic = dataclasses.replace(synthetic, directory=tmp_path)
    weights = np.round(synthetic.space().sample(8, seed=0), 6)
    runner = SyntheticRunner(metrics=["math_loss", "code_loss", "qa_loss"], problem_seed=7)
    values = expected_outcome(runner.law(list(synthetic.space().names)), weights)
    runs = [f"run-{i}" for i in range(len(weights))]
    ratios = pd.DataFrame({"run": runs, **dict(zip(synthetic.space().names, weights.T, strict=True))})
    metrics = pd.DataFrame({"run": runs, **dict(zip(runner.metrics, values.T, strict=True))})
    data = REPO / "benchmarks" / "data" / "regmix"
    regmix_ratios = pd.read_csv(data / "train_mixture_1m.csv").head(REGMIX_ROWS)
    regmix_metrics = pd.read_csv(data / "train_pile_loss_1m.csv").head(REGMIX_ROWS)[["index", *REGMIX_OBJECTIVES]]
    sources = [c for c in regmix_ratios.columns if c != "index"]
    regmix = parse_config(yaml.safe_dump({
        "name": "regmix", "sources": [{"name": s} for s in sources],
        "objectives": [{"name": f"loss{i}", "metric": m} for i, m in enumerate(REGMIX_OBJECTIVES)],
        "fidelities": [{"name": "1m", "tokens": 1.0e9}], "runner": "synthetic", "searcher": "random",
    }), directory=tmp_path)
    return {"synthetic": (ratios, metrics, synthetic), "regmix": (regmix_ratios, regmix_metrics, regmix)}


def run_table_case(case: TableCase, folder: Path, config: StudyConfig, storage: str, loaded: Counter) -> str:
    """``imported`` (read, imported into a fresh study, fitted: loglinear always, the default GP on every
    ``FIT_GP_EVERY``-th) or ``refused``; anything else raised is a traceback."""
    from mixopt.surrogates import DEFAULT_SURROGATE, SURROGATES
    from mixopt.tables import read_run_table, target_values

    ratios, metrics = folder / "ratios.csv", folder / "metrics.csv"
    for path, text in ((ratios, case.ratios), (metrics, case.metrics)):
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    try:
        table = read_run_table(ratios, metrics)
        loaded["tables"] += 1
        study = Study.open(config, storage, f"{config.name}-{loaded['tables']}")
        count = study.import_table(table, config.search_fidelity.name, "fuzz", (str(ratios), str(metrics)))
        assert count.added + count.outside + count.duplicate == len(table.weights)
        assert len(study.observations()) == count.added
        y = target_values(table.metrics, column=config.objectives[0].metric, source=str(metrics)).to_numpy()
        models = ["loglinear"] + ([DEFAULT_SURROGATE] if loaded["tables"] % FIT_GP_EVERY == 1 else [])
        for name in models:
            SURROGATES.create(name).fit(table.weights.to_numpy(), y).predict(table.weights.to_numpy())
    except ConfigError as exc:
        one_line(exc)
        return "refused"
    return "imported"


@pytest.mark.slow
def test_mutated_run_tables_import_and_fit_or_are_refused_with_one_line(tmp_path):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(22)
    bases = table_bases(tmp_path)
    root = scratch(tmp_path)
    storage = f"sqlite:///{root / 'tables.db'}"
    outcomes: Counter = Counter()
    failures: list[str] = []
    slowest, heaviest, loaded = 0.0, 0.0, Counter()
    for i in range(N_CASES):
        name = list(bases)[i % len(bases)]
        ratios, metrics, config = bases[name]
        case = table_case(rng, ratios, metrics)
        folder = root / f"table-{i}"
        result = bounded_case(f"case {i} ({name}: {case.what})", folder,
                              functools.partial(run_table_case, case, folder, config, storage, loaded), failures)
        if result is None:
            continue
        outcome, seconds, megabytes = result
        outcomes[outcome] += 1
        slowest, heaviest = max(slowest, seconds), max(heaviest, megabytes)
    assert not failures, f"{len(failures)} cases failed:\n" + "\n".join(failures[:40])
    gp = (outcomes["imported"] + FIT_GP_EVERY - 1) // FIT_GP_EVERY
    print(f"\nFIGURE fuzz tables: tried {N_CASES}, loaded {outcomes['imported']}, imported and fitted "
          f"{outcomes['imported']} (loglinear each, the default GP {gp}), refused {outcomes['refused']}, tracebacks 0; "
          f"slowest case {slowest:.1f} s (bound {CASE_SECONDS}), peak resident growth {heaviest:.0f} MB "
          f"(bound {CASE_MEGABYTES})")


def scratch(tmp_path: Path) -> Path:
    """A folder for the cases: in memory (/dev/shm) where there is one, as SQLite writes there cost nothing."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(dir=shm, prefix="mixopt-fuzz-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return folder
    return tmp_path


# -- what the fuzzing found, one fast regression test each ---------------------------------------------------
def test_an_alias_bomb_is_refused_at_once_with_a_short_line():
    """Found: a billion-laughs bomb where a string belongs hung the loader (the error message took the
    repr of all 9**9 leaves)."""
    text = SYNTHETIC.replace("name: synthetic", "name: [&a [lol, lol, lol, lol, lol, lol, lol, lol, lol], "
                             + ", ".join(f"&a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 9)}]" for i in range(8))
                             + "]", 1)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"^name: expected a string, got list \[\[") as caught:
        parse_config(text)
    assert time.perf_counter() - start < 5 and len(str(caught.value)) < 200


def test_a_character_yaml_forbids_is_one_line_naming_its_position():
    """Found: YAML's reader error (a NUL byte) came out as two lines."""
    with pytest.raises(ConfigError) as caught:
        parse_config(SYNTHETIC.replace("seed: 0", "seed: \x00", 1))
    assert "\n" not in str(caught.value) and "at character" in str(caught.value)


@pytest.mark.parametrize(("old", "new"), [("name: books", 'name: "bo\\nok"'), ("name: serial", 'name: "se\\nrial"'),
                                          ("metric: qa_loss", 'metric: "qa\\tloss"')])
def test_a_name_with_a_line_break_is_refused_in_one_line(old, new):
    """Found: a source or executor name holding a line break was echoed into a two-line error."""
    with pytest.raises(ConfigError, match="holds a control character") as caught:
        parse_config(SYNTHETIC.replace(old, new, 1))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("options", [{"workers": 0}, {"workers": 2**63}, {"workers": "two"}, {"threads": 0}])
def test_bad_local_executor_options_are_a_config_error(options):
    """Found: workers 0 or 2**63 raised ValueError / OverflowError from the process pool mid-run."""
    from mixopt.executors import LocalExecutor

    with pytest.raises(ConfigError, match=r"executor 'local': option (workers|threads) must be an integer"):
        LocalExecutor(**options)


def test_an_infinite_metric_in_a_table_is_refused_naming_the_cell(tmp_path):
    """Found: ``inf`` or ``1e400`` in a metrics column passed the reader, and the surrogate fit raised."""
    from mixopt.tables import read_run_table, target_values

    (tmp_path / "r.csv").write_text("run,a,b\nx,0.5,0.5\ny,1,0\n")
    (tmp_path / "m.csv").write_text("run,loss\nx,1e400\ny,2\n")
    table = read_run_table(tmp_path / "r.csv", tmp_path / "m.csv")
    with pytest.raises(ConfigError, match=r"column 'loss' run 'x' is infinite \(inf\)"):
        target_values(table.metrics, column="loss", source="m.csv")


def test_the_front_of_a_two_run_studys_flat_predictions_is_found_fast_and_exactly():
    """Found: a study of two trials spent 130 s of its 150 s on the recommendation's Pareto front (botorch's
    loop over 12k nearly flat GP predictions, nearly all on the front). Checked against the definition."""
    from mixopt.pareto import non_dominated

    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.integers(0, 4, size=(int(rng.integers(0, 40)), int(rng.integers(1, 4)))).astype(float)
        directions = list(rng.choice(["minimize", "maximize"], size=values.shape[1]))
        signs = np.where(np.array(directions) == "maximize", 1.0, -1.0)
        better = values * signs
        dominated = [any((better[j] >= better[i]).all() and (better[j] > better[i]).any() for j in range(len(values)))
                     for i in range(len(values))]
        assert non_dominated(values, directions).tolist() == [not d for d in dominated]
    flat = rng.dirichlet(np.ones(3), size=12000)  # every row on the front
    start = time.perf_counter()
    assert non_dominated(flat, ["minimize"] * 3).all()
    assert time.perf_counter() - start < 3  # numpy sweep 0.2 s; botorch loop 9 s here, over 60 s in the study
