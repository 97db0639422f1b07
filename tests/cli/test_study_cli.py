"""``mixopt study ...`` as a user runs it: real subprocesses, real SQLite, Optuna's own CLI reading the result."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState

from mixopt.config import load_config
from study_helpers import (
    FLAKY_IMPORT_ROOT,
    FLAKY_RUNNER,
    assert_one_line_error,
    command_env,
    finish,
    run_mixopt,
    start_mixopt,
    trial_states,
    write_study,
)

SOURCES = ["web", "code", "math", "qa", "books", "instructions"]


def load(folder: Path, name: str = "synthetic") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}")


# -- the 40-trial synthetic study, run once for the tests that read it ----------------------------------
def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, float, float]:
    """The synthetic study run by ``mixopt study run``, with its wall and CPU seconds."""
    folder = tmp_path_factory.mktemp("synthetic")
    config = write_study(folder)
    cpu, start = child_cpu_seconds(), time.perf_counter()
    result = run_mixopt("study", "run", config, cwd=folder)
    return folder, result, time.perf_counter() - start, child_cpu_seconds() - cpu


# The 40-trial study and the kill/resume test spend tens of seconds in subprocesses: marked slow.
@pytest.mark.slow
def test_run_completes_the_40_trial_three_objective_study(finished_study):
    folder, result, wall, cpu = finished_study
    assert result.returncode == 0, result.stderr
    # CPU seconds measure the command; wall seconds also count other work on the shared cores.
    assert cpu < 30, f"the 40-trial synthetic study used {cpu:.1f} CPU seconds ({wall:.1f} s wall)"
    assert wall < 120, f"the 40-trial synthetic study took {wall:.1f} s wall"
    study = load(folder)
    assert study.metric_names == ["math", "code", "qa"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 40 and len(study.trials) == 40
    assert "Pareto front of synthetic" in result.stdout
    assert (folder / "exports" / "synthetic.yaml").is_file()


@pytest.mark.slow
def test_without_a_terminal_progress_is_plain_lines_and_nothing_is_wrapped(finished_study):
    folder, result, _, _ = finished_study
    lines = [line for line in result.stderr.splitlines() if line.startswith("trial ")]
    assert len(lines) == 40 and all(" done math=" in line for line in lines), result.stderr
    assert "(1/40 complete" in lines[0] and "(40/40 complete" in lines[-1]
    assert all("eta " in line for line in lines[1:-1])  # an estimate once one trial has finished
    exported = f"exported the recommended mixture to {folder / 'exports' / 'synthetic.yaml'}"
    assert len(exported) > 80 and exported in result.stdout.splitlines()  # one line, however long
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert rows and not [row for row in rows if row.split("│")[1].strip() == ""]  # no row of the front wrapped
    header = [line for line in result.stdout.splitlines() if line.startswith("recommended mixture (")]
    assert len(header) == 1 and "predicted" in result.stdout.splitlines()[result.stdout.splitlines().index(header[0]) + 1]


@pytest.mark.slow
def test_optuna_cli_lists_40_complete_trials_whose_params_are_the_weights(finished_study):
    folder = finished_study[0]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("optuna")), "trials", "--storage", f"sqlite:///{folder / 'study.db'}",
         "--study-name", "synthetic", "-f", "json"],
        capture_output=True, text=True, env=command_env(), timeout=120,
    )
    assert result.returncode == 0, result.stderr
    trials = json.loads(result.stdout)
    assert len(trials) == 40 and {t["state"] for t in trials} == {"COMPLETE"}
    for trial in trials:
        assert set(trial["params"]) == set(SOURCES)
        assert sum(Decimal(repr(w)) for w in trial["params"].values()) == 1  # grid decimals, exactly
        assert set(trial["values"]) == {"math", "code", "qa"}
    space = load_config(folder / "study.yaml").space()
    assert all(space.is_feasible(space.from_dict(t["params"])) for t in trials)


@pytest.mark.slow
def test_status_and_exports_of_the_finished_study(finished_study):
    folder = finished_study[0]
    config = load_config(folder / "study.yaml")
    integration = config.space("integration")
    commands = {"status": start_mixopt("study", "status", "study.yaml", "-f", "json", cwd=folder)}
    for dialect in ("olmo-core", "olmo-cookbook", "plain"):
        commands[dialect] = start_mixopt(
            "study", "export", "study.yaml", "--pick", "best:code", "--format", dialect, "--allow-incomplete",
            "-o", f"{dialect}.yaml", cwd=folder
        )
    results = {name: finish(process) for name, process in commands.items()}
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stderr}"
    status = json.loads(results["status"].stdout)
    assert status["states"] == {"COMPLETE": 40} and status["complete_by_fidelity"] == {"microanneal": 40}
    metrics = {m["metric"]: m for m in status["objective_metrics"]}
    assert set(metrics) == {"math_loss", "code_loss", "qa_loss"}  # the objectives' metrics, nothing replicated
    assert all(m["mixtures"] == 40 and m["noise"] is None and "no replicates" in m["flags"] for m in metrics.values())

    # The pick is the best code loss among the mixtures that fit the integration budget's repetition caps.
    complete = load(folder).get_trials(states=(TrialState.COMPLETE,))
    fits = [t for t in complete if integration.is_feasible(integration.from_dict(t.params), tol=1e-6)]
    assert 0 < len(fits) < len(complete)  # some microanneal mixtures break the caps at 1e11 tokens
    best = min(fits, key=lambda t: t.values[1])
    exported = {}
    for dialect in ("olmo-core", "olmo-cookbook", "plain"):
        text = (folder / f"{dialect}.yaml").read_text()
        assert f"# trial: {best.number}\n" in text
        body = yaml.load(text, Loader=yaml.BaseLoader)  # every scalar as written
        if dialect == "plain":
            ratios = body
        else:
            listed = body["source_list"]["sources"] if dialect == "olmo-core" else body["dataset"]["sources"]
            ratios = {s["source_name" if dialect == "olmo-core" else "name"]: s["target_ratio"] for s in listed}
        decimals = {name: Decimal(r) for name, r in ratios.items()}
        assert sum(decimals.values()) == 1
        assert yaml.safe_load(text)  # strict readers load it too
        weights = np.array([float(decimals[s]) for s in SOURCES])
        assert integration.violations(weights, tol=1e-12) == []
        exported[dialect] = decimals
    assert exported["olmo-core"] == exported["olmo-cookbook"] == exported["plain"]


@pytest.mark.slow
def test_export_without_a_pick_is_the_recommendation(finished_study):
    """`mixopt study export` with no pick, `study run`'s export and `study status` all hand out the one
    recommendation (``mixopt.recommend.recommend_search``, the function the search benchmark scores)."""
    from mixopt import recommend as recommend_module
    from mixopt.study import Study

    folder, run_result = finished_study[0], finished_study[1]
    assert "recommended mixture (" in run_result.stdout and "nearest measured run: trial" in run_result.stdout
    result = run_mixopt("study", "export", "study.yaml", "--allow-incomplete", "-o", "recommended.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    text = (folder / "recommended.yaml").read_text()
    assert "# recommended_by: GaussianProcess per objective, pick knee" in text and "# nearest_trial: " in text
    assert (folder / "exports" / "synthetic.yaml").read_text().split("\n", 3)[3] == text.split("\n", 3)[3]

    config = load_config(folder / "study.yaml")
    study = Study.load(config.storage_url, config.name)
    recommendation = recommend_module.recommend_study(study)
    ratios = {s["source_name"]: float(s["target_ratio"]) for s in yaml.safe_load(text)["source_list"]["sources"]}
    expected = study.space.round(recommendation.weights, config.granularity)
    np.testing.assert_allclose([ratios[s] for s in study.space.names], expected, atol=1e-12)
    assert config.space("integration").is_feasible(expected, tol=1e-9)
    status = json.loads(run_mixopt("study", "status", "study.yaml", "-f", "json", cwd=folder).stdout)
    np.testing.assert_allclose([status["recommendation"]["mixture"][s] for s in study.space.names],
                               recommendation.weights)
    assert set(status["recommendation"]["predicted"]) == {"math", "code", "qa"}


def test_the_cli_recommendation_goes_through_recommend_search(tmp_path, monkeypatch):
    """The study's recommendation is ``recommend_search`` on its searcher, history and export polytope."""
    from mixopt import recommend as recommend_module
    from mixopt.loop import run_study
    from mixopt.study import Study

    config = load_config(write_study(tmp_path, {"n_trials": 6, "batch_size": 3, "executor": "serial",
                                                "searcher": "random"}))
    study = Study.open(config)
    run_study(study)
    original, calls = recommend_module.recommend_search, []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(recommend_module, "recommend_search", spy)
    first = recommend_module.recommend_study(study)
    assert len(calls) == 1 and calls[0]["within"].token_budget == config.space("integration").token_budget
    np.testing.assert_array_equal(first.weights, recommend_module.recommend_study(study).weights)  # deterministic
    assert config.space("integration").is_feasible(first.weights, tol=1e-9)
    assert first.predicted is not None and first.nearest_trial in {t.number for t in study.trials()}


# -- SIGKILL mid-study, then resume -------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_study_resumes_to_exactly_its_trial_count_losing_nothing(tmp_path: Path):
    config = write_study(tmp_path, {"n_trials": 12, "batch_size": 4, "executor": "serial"}, {"delay": 0.4})
    db = tmp_path / "study.db"
    process = start_mixopt("study", "run", config, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            states = trial_states(db)
            if states.get("COMPLETE", 0) >= 3 and states.get("RUNNING", 0) >= 1:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the study ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL

    killed = load(tmp_path)
    done_before = {t.number: (t.values, t.params) for t in killed.get_trials(states=(TrialState.COMPLETE,))}
    interrupted = {t.number: t.params for t in killed.get_trials(states=(TrialState.RUNNING,))}
    assert len(done_before) >= 3 and interrupted

    result = run_mixopt("study", "run", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    resumed = load(tmp_path)
    complete = resumed.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 12
    assert {t.number: (t.values, t.params) for t in complete if t.number in done_before} == done_before
    assert not resumed.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    failed = {t.number: t for t in resumed.get_trials(states=(TrialState.FAIL,))}
    assert set(failed) == set(interrupted)
    for number, params in interrupted.items():
        assert "interrupted" in failed[number].user_attrs["fail_reason"]
        reruns = [t for t in complete if t.user_attrs.get("rerun_of") == number]
        # The same mixture (a trial killed while being claimed may have had only some weights set).
        assert len(reruns) == 1 and params.items() <= reruns[0].params.items()
        assert sum(reruns[0].params.values()) == pytest.approx(1.0)


# -- bad input: one line on stderr, exit code 2 -------------------------------------------------------
BAD_CONFIGS = {
    "a config name with a slash": ({"name": "team/mix"}, ["study name 'team/mix' must be one plain file name"]),
    "infeasible bounds": (
        {"sources": [{"name": "web", "min_weight": 0.6}, {"name": "code", "min_weight": 0.6}], "constraints": []},
        ["minimum weights sum to 1.2 > 1"],
    ),
    "unknown source in a group": (
        {"constraints": [{"name": "anchor", "sources": ["web", "bokos"], "min": 0.3}]},
        ["group 'anchor' names unknown source 'bokos'", "did you mean 'books'?"],
    ),
    "negative tokens": (
        {"sources": [{"name": "web", "tokens": -1.0e9}, {"name": "code"}], "constraints": []},
        ["source 'web': tokens must be a finite number >= 0"],
    ),
    "unknown key": ({"batch_sise": 4}, ["batch_sise: unknown key", "did you mean 'batch_size'?"]),
}


@pytest.fixture(scope="module")
def bad_input_results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every bad-input command started at once (each is a fresh interpreter), then collected."""
    good = write_study(tmp_path_factory.mktemp("good"))
    runs = {}
    for case, (changes, _) in BAD_CONFIGS.items():
        folder = tmp_path_factory.mktemp("bad")
        runs[case] = start_mixopt("study", "run", write_study(folder, changes), cwd=folder)
    runs["storage that cannot be opened"] = start_mixopt(
        "study", "run", good, "--storage", "sqlite:////no/such/folder/study.db", cwd=good.parent
    )
    runs["unknown storage dialect"] = start_mixopt("study", "status", "--storage", "nosuch://x", "--study-name", "s", cwd=good.parent)
    runs["status of a study never run"] = start_mixopt("study", "status", good, "--study-name", "nope", cwd=good.parent)
    runs["a study name that escapes its folders"] = start_mixopt("study", "run", good, "--study-name", "../../escaped",
                                                                 cwd=good.parent)
    return {case: finish(process) for case, process in runs.items()}


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        *[(case, fragments) for case, (_, fragments) in BAD_CONFIGS.items()],
        ("storage that cannot be opened", ["cannot open storage sqlite:////no/such/folder/study.db"]),
        ("unknown storage dialect", ["cannot open storage nosuch://x"]),
        ("status of a study never run", ["no storage file", "study.db", "mixopt study run CONFIG"]),
        ("a study name that escapes its folders", ["study name '../../escaped' must be one plain file name"]),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(bad_input_results, case, fragments):
    assert_one_line_error(bad_input_results[case], 2, *fragments)


def test_a_study_name_that_escapes_creates_nothing_outside(bad_input_results, tmp_path_factory):
    assert bad_input_results["a study name that escapes its folders"].returncode == 2
    base = tmp_path_factory.getbasetemp()
    assert not list(base.parent.glob("escaped*")) and not list(base.glob("escaped*"))


def test_status_of_a_study_never_run_creates_no_storage(bad_input_results, tmp_path_factory):
    assert bad_input_results["status of a study never run"].returncode == 2
    assert not list(tmp_path_factory.getbasetemp().glob("good*/*.db"))


# -- ask / tell --------------------------------------------------------------------------------------
def test_ask_then_tell_with_values_and_with_a_file(tmp_path: Path):
    config = write_study(tmp_path)
    asked = run_mixopt("study", "ask", config, "-n", "2", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    batch = json.loads(asked.stdout)
    assert [b["trial"] for b in batch] == [0, 1]
    space = load_config(config).space()
    for b in batch:
        assert space.is_feasible(space.from_dict(b["mixture"])) and b["fidelity"] == "microanneal"

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"metrics": {"math_loss": 2.5, "code_loss": 2.6, "qa_loss": 2.7, "extra": 9.0},
                                   "stderr": {"math_loss": 0.01}, "cost": {"seconds": 30}}))
    told = [
        start_mixopt("study", "tell", config, "--trial", "0", "--values", "3.1,3.2,3.3", cwd=tmp_path),
        start_mixopt("study", "tell", config, "--trial", "1", "--file", results, cwd=tmp_path),
    ]
    for result in map(finish, told):
        assert result.returncode == 0, result.stderr
    again = run_mixopt("study", "tell", config, "--trial", "0", "--values", "1,1,1", cwd=tmp_path)
    assert_one_line_error(again, 2, "trial 0 is not running")

    study = load(tmp_path)
    first, second = study.get_trials(states=(TrialState.COMPLETE,))
    assert first.values == [3.1, 3.2, 3.3] and second.values == [2.5, 2.6, 2.7]
    assert first.params == batch[0]["mixture"] and second.params == batch[1]["mixture"]
    assert second.user_attrs["metrics"]["extra"] == 9.0 and second.user_attrs["cost"] == {"seconds": 30.0}


@pytest.mark.slow
def test_tell_rejects_malformed_results(tmp_path: Path):
    config = write_study(tmp_path)
    assert run_mixopt("study", "ask", config, cwd=tmp_path).returncode == 0
    (tmp_path / "bad.json").write_text("[1, 2]")
    runs = {
        "count": start_mixopt("study", "tell", config, "--trial", "0", "--values", "1,2", cwd=tmp_path),
        "file": start_mixopt("study", "tell", config, "--trial", "0", "--file", "bad.json", cwd=tmp_path),
        "both": start_mixopt("study", "tell", config, "--trial", "0", "--values", "1,2,3", "--fail", "x", cwd=tmp_path),
    }
    results = {name: finish(process) for name, process in runs.items()}
    assert_one_line_error(results["count"], 2, "--values needs 3 finite numbers")
    assert_one_line_error(results["file"], 2, "expected a JSON object with a 'metrics' mapping")
    assert_one_line_error(results["both"], 2, "give exactly one of --values, --file or --fail")
    failed = run_mixopt("study", "tell", config, "--trial", "0", "--fail", "node lost", cwd=tmp_path)
    assert failed.returncode == 0, failed.stderr
    (trial,) = load(tmp_path).trials
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == "node lost"


# -- failing runs: exit code 1, completed runs kept ---------------------------------------------------
FLAKY_MAIN = f"""
import sys
from mixopt.runners import RUNNERS
RUNNERS.entries["flaky"] = {FLAKY_RUNNER!r}
from mixopt.cli import main
main(sys.argv[1:])
"""


def test_runs_failing_beyond_max_failures_exit_1_and_keep_completed_runs(tmp_path: Path):
    runner = {"name": "flaky", "options": {"fail_every": 2, "metrics": ["math_loss", "code_loss", "qa_loss"]}}
    config = write_study(tmp_path, {"runner": runner, "n_trials": 20, "batch_size": 2, "max_failures": 2, "executor": "serial"})
    env = {**command_env(), "PYTHONPATH": os.pathsep.join([str(FLAKY_IMPORT_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", FLAKY_MAIN, "study", "run", str(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 3 trials failed (more than max_failures=2); last: RunFailed: flaky runner refuses trial 4")
    assert "Traceback" not in result.stderr
    study = load(tmp_path)
    assert [t.number for t in study.get_trials(states=(TrialState.COMPLETE,))] == [1, 3, 5]
    assert all(t.user_attrs["fail_reason"].startswith("RunFailed") for t in study.get_trials(states=(TrialState.FAIL,)))


def test_a_report_that_cannot_be_written_warns(tmp_path, monkeypatch, capsys):
    import mixopt.report
    from mixopt.cli import study as cli_study
    from mixopt.study import Study

    study = Study.open(load_config(write_study(tmp_path)))

    def unwritable(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "report"))

    monkeypatch.setattr(mixopt.report, "write_report", unwritable)
    cli_study.write_study_report(study)  # the study is done: a warning only
    assert "no report:" in capsys.readouterr().err


def test_a_report_bug_after_study_run_is_one_line_and_exit_1_with_the_study_complete(tmp_path):
    import os

    config = write_study(tmp_path, {"n_trials": 8})
    os.environ["MIXOPT_FAILPOINTS"] = "report:1:raise"  # an unexpected exception inside write_report
    try:
        result = run_mixopt("study", "run", config, cwd=tmp_path)
    finally:
        del os.environ["MIXOPT_FAILPOINTS"]
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the report failed (RuntimeError: failpoint report raised); the study's runs and export are stored")
    assert "Traceback (most recent" not in result.stderr and "Traceback (most recent" in (tmp_path / "report" / "synthetic-error.txt").read_text()
    assert len(load(tmp_path).get_trials(states=(TrialState.COMPLETE,))) == 8
    assert (tmp_path / "exports" / "synthetic.yaml").is_file()
    again = run_mixopt("study", "report", config, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "report" / "synthetic.html").is_file()


@pytest.mark.slow
def test_without_a_terminal_tables_are_not_wrapped_at_80_columns(finished_study):
    folder, _, _, _ = finished_study
    env = {k: v for k, v in command_env().items() if k != "COLUMNS"}  # rich's default without a terminal: 80
    result = subprocess.run([sys.executable, "-m", "mixopt.cli", "study", "status", str(folder / "study.yaml")],
                            cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert rows and not [row for row in rows if row.split("│")[1].strip() == ""]  # no row of the front wrapped
    assert max(len(row) for row in rows) > 80
