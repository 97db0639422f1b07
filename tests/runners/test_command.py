"""The command runner with small real programs: success, failure, timeout, bad metrics, hostile names."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from mixopt.errors import ConfigError
from mixopt.runners.base import RunFailed
from mixopt.runners.command import CommandRunner
from mixopt.space import MixtureSpace, Source
from mixopt.trials import RunSpec

TRAIN = textwrap.dedent(
    """
    import json, sys
    spec = json.load(open(sys.argv[1]))
    mode = sys.argv[2]
    if mode == "fail":
        print("CUDA out of memory (pretend)", file=sys.stderr)
        sys.exit(3)
    if mode == "hang":
        import time
        time.sleep(60)
    if mode == "garbage":
        open(spec["metrics_file"], "w").write("{not json")
        sys.exit(0)
    if mode == "nan":
        open(spec["metrics_file"], "w").write('{"metrics": {"loss": NaN}}')
        sys.exit(0)
    if mode == "silent":
        sys.exit(0)
    if mode == "linger":  # record its pid, and a SIGTERM when one comes, while it trains for a minute
        import os, signal, time
        folder = spec["output_dir"]
        def stop(signum, frame):
            open(os.path.join(folder, "terminated"), "w").write("SIGTERM")
            sys.exit(143)
        signal.signal(signal.SIGTERM, stop)
        open(os.path.join(folder, "pid"), "w").write(str(os.getpid()))
        time.sleep(60)
    mix = spec["mixture"]
    loss = 3.0 - sum(w * (i + 1) for i, w in enumerate(mix.values()))
    json.dump({"metrics": {"loss": loss}, "stderr": {"loss": 0.01}}, open(spec["metrics_file"], "w"))
    print("trained on", sorted(mix))
    print("extra arguments:", len(sys.argv) - 3)
    """
)


def make_spec(tmp_path: Path, mixture: dict[str, float]) -> RunSpec:
    return RunSpec(
        trial=3, mixture=mixture, fidelity="microanneal", tokens=1e6, seed=7,
        output_dir=str(tmp_path / "trial-3"), source_paths={k: (f"/data/{k}.jsonl",) for k in mixture},
        space=MixtureSpace(tuple(Source(k, tokens=1e9, max_repetition=2.0) for k in mixture), token_budget=1e6),
    )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    return path


def runner(script: Path, mode: str, **options) -> CommandRunner:
    return CommandRunner(argv=[sys.executable, str(script), "{spec}", mode], **options)


def test_success_writes_mixture_and_spec_and_reads_metrics(tmp_path, script):
    spec = make_spec(tmp_path, {"web": 0.6, "code": 0.4})
    result = runner(script, "ok", format="olmo-cookbook").run(spec)
    assert result.metrics["loss"] == pytest.approx(3.0 - (0.6 + 0.8))
    assert result.stderr == {"loss": 0.01}
    mixture = yaml.safe_load(Path(result.artifacts["mixture"]).read_text())
    assert {s["name"]: s["target_ratio"] for s in mixture["dataset"]["sources"]} == {"web": 0.6, "code": 0.4}
    assert "trained on ['code', 'web']" in Path(result.artifacts["log"]).read_text()
    assert json.loads(Path(result.artifacts["spec"]).read_text())["seed"] == 7


def test_the_spec_file_passes_each_sources_pool_fraction_on(tmp_path, script):
    """At a fidelity with match_repetition the program must subsample each source's pool to that share."""
    from dataclasses import replace

    spec = replace(make_spec(tmp_path, {"web": 0.6, "code": 0.4}), pool_fraction={"web": 0.25, "code": 0.25})
    written = json.loads(Path(runner(script, "ok").run(spec).artifacts["spec"]).read_text())
    assert written["pool_fraction"] == {"web": 0.25, "code": 0.25}
    whole = json.loads(Path(runner(script, "ok").run(make_spec(tmp_path, {"web": 1.0})).artifacts["spec"]).read_text())
    assert whole["pool_fraction"] == {"web": 1.0}


def test_nonzero_exit_fails_with_reason_and_log(tmp_path, script):
    with pytest.raises(RunFailed, match=r"exit code 3: CUDA out of memory \(pretend\); log: .*run.log"):
        runner(script, "fail").run(make_spec(tmp_path, {"web": 1.0}))


def test_timeout_kills_the_program(tmp_path, script):
    with pytest.raises(RunFailed, match="timed out after 1 s"):
        runner(script, "hang", timeout=1).run(make_spec(tmp_path, {"web": 1.0}))


def test_a_program_that_cannot_start_fails_in_one_line(tmp_path):
    with pytest.raises(RunFailed, match=r"exit code 127: cannot start 'no-such-trainer': No such file or directory"):
        CommandRunner(argv=["no-such-trainer", "{spec}"]).run(make_spec(tmp_path, {"web": 1.0}))


def test_the_program_of_a_sigkilled_serial_controller_is_terminated(tmp_path, script):
    """`mixopt study run` with the serial executor (the program is the controller's own child) is SIGKILLed
    while the program trains: the program gets SIGTERM (the parent-death signal armed by the launcher) and
    ends, instead of training on as an orphan. Without the launcher it would sleep out its minute."""
    import os
    import signal
    import time

    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({
        "name": "orphans", "sources": [{"name": "web"}, {"name": "code"}],
        "objectives": [{"name": "loss", "metric": "loss"}], "fidelities": [{"name": "micro", "tokens": 1.0e6}],
        "runner": {"name": "command", "options": {"argv": [sys.executable, str(script), "{spec}", "linger"]}},
        "executor": "serial", "searcher": "random", "batch_size": 1, "n_trials": 1,
    }))
    controller = subprocess.Popen([sys.executable, "-m", "mixopt.cli.__main__", "study", "run", str(config),
                                   "--no-report"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (pids := list((tmp_path / "runs").rglob("pid"))) and time.monotonic() < deadline:
        assert controller.poll() is None, controller.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    assert pids, "the program never started"
    program = int(pids[0].read_text())
    controller.kill()
    controller.wait()
    deadline = time.monotonic() + 20
    while (pids[0].parent / "terminated").exists() is False and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (pids[0].parent / "terminated").read_text() == "SIGTERM"
    while time.monotonic() < deadline:
        try:
            os.kill(program, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(program, signal.SIGKILL)
        raise AssertionError("the program outlived its controller")


@pytest.mark.parametrize(
    ("mode", "message"),
    [("garbage", "not valid JSON"), ("nan", "finite numbers"), ("silent", "wrote no metrics file")],
)
def test_bad_metrics_fail_the_trial(tmp_path, script, mode, message):
    with pytest.raises(RunFailed, match=message):
        runner(script, mode).run(make_spec(tmp_path, {"web": 1.0}))


def test_shell_metacharacters_in_names_are_inert(tmp_path, script):
    from dataclasses import replace

    canary = tmp_path / "pwned"
    hostile = f"web; touch {canary} #$(touch {canary})`touch {canary}`"
    # The hostile text reaches the program's argv through placeholders (the fidelity, the model path), so a
    # runner that handed argv to a shell would run it: the control below shows that a shell does.
    spec = replace(make_spec(tmp_path, {hostile: 0.5, "code|rm -rf /": 0.5}), fidelity=hostile, model=hostile)
    result = CommandRunner(argv=[sys.executable, str(script), "{spec}", "ok", "{fidelity}", "{model}"]).run(spec)
    assert not canary.exists()
    assert hostile in json.loads(Path(result.artifacts["spec"]).read_text())["mixture"]
    assert "extra arguments: 2" in Path(result.artifacts["log"]).read_text()  # each arrived as one argument
    subprocess.run(f"echo {hostile}", shell=True, cwd=tmp_path, capture_output=True)  # the control: a shell
    assert canary.exists()


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="argv"):
        CommandRunner(argv="python train.py")
    with pytest.raises(ConfigError, match="unknown format"):
        CommandRunner(argv=["x"], format="megatron")


@pytest.mark.parametrize("dialect", ["olmo-core", "olmo-cookbook", "plain"])
def test_the_mixture_file_is_byte_identical_to_study_export(tmp_path, script, dialect):
    """The training program reads what `mixopt study export --trial N --fidelity F` writes for that trial:
    the same caps (max_source_fraction at the run's budget), grid, paths and header."""
    from mixopt.config import load_config
    from mixopt.handoff import export_trial
    from mixopt.loop import propose_batch, run_specs
    from mixopt.study import Study
    from study_helpers import write_study

    study = Study.open(load_config(write_study(tmp_path, {"executor": "serial"})))
    propose_batch(study, 1)
    spec = run_specs(study, study.start(1), tmp_path / "runs")[0]
    result = runner(script, "ok", format=dialect).run(spec)
    written = Path(result.artifacts["mixture"]).read_bytes()
    assert written == export_trial(study, spec.trial, dialect, fidelity=spec.fidelity, allow_incomplete=True).encode()
    if dialect != "plain":
        assert b"max_repetition_ratio" in written or b"repetition_factor" in written
