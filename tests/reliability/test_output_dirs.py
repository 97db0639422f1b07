"""Unwritable output folders through the real command: an export into a read-only or a full folder, and a
study whose run folder (``runs/<study>/``) is read-only. Each is exit 2 with one stderr line naming the
path and the fix, no traceback, nothing left in the folder, and the study storage unchanged; once the
folder is writable again the same command succeeds.

Root ignores permission bits, so folders are made read-only or full inside a private mount namespace
(``unshare -rm``: a read-only bind mount, or a 64 KiB tmpfs filled up). Without one, a read-only folder
falls back to ``chmod`` where that binds (not root); otherwise the test skips and says why.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from mixopt.config import load_config
from mixopt.errors import OutputError
from mixopt.export import write_atomic
from mixopt.loop import output_root
from study_helpers import command_env, missing_component, write_study

# Shell steps run inside the namespace before mixopt, on the folder "$1".
MAKE = {
    "read-only": 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"',
    "full": 'mount -t tmpfs -o size=64k tmpfs "$1" && { head -c 1048576 /dev/zero > "$1/filler" 2>/dev/null; true; }',
}
# After mixopt: anything it left in the folder (besides the filler) is reported on stderr.
LEFTOVERS = 'rc=$?; ls -A "$folder" | grep -vx filler | sed "s/^/left in the folder: /" >&2; exit $rc'


@functools.cache
def namespace_mounts_work() -> bool:
    """Whether this process may make a private mount namespace and mount a tmpfs in it."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$1"', "sh", "/tmp"],
                           capture_output=True)
    return probe.returncode == 0


def mixopt(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixopt.cli", *map(str, args)], capture_output=True, text=True,
                          env=command_env(), timeout=300)


def mixopt_with(kind: str, folder: Path, *args: object) -> subprocess.CompletedProcess:
    """``mixopt ARGS`` while ``folder`` is read-only or full (``kind``); the folder is back to normal afterwards."""
    if namespace_mounts_work():
        script = f'{MAKE[kind]} && folder="$1" && shift && "$@"; {LEFTOVERS}'
        argv = ["unshare", "-rm", "sh", "-c", script, "sh", str(folder), sys.executable, "-m", "mixopt.cli", *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, env=command_env(), timeout=300)
    if kind == "read-only" and os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return mixopt(*args)
        finally:
            folder.chmod(0o755)
    missing_component(f"a {kind} folder needs a private mount namespace (unshare -rm), which this system refuses"
                + (", and root ignores permission bits" if kind == "read-only" else ""))


def completed_trials(config: Path) -> dict[int, tuple]:
    """Completed trials by number: (values, params) read straight from the study's storage; {} if none."""
    study = optuna.load_study(study_name="synthetic", storage=f"sqlite:///{config.parent / 'study.db'}")
    return {t.number: (tuple(t.values), tuple(sorted(t.params.items())))
            for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}


def assert_one_line_error(result: subprocess.CompletedProcess, *phrases: str, progress: bool = False) -> str:
    """Exit 2 and one ``error:`` line holding ``phrases``, no traceback; with ``progress``, the study's header
    and progress bar may come before it."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and (progress or len(lines) == 1), result.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> Path:
    """A synthetic study with 4 completed trials (run once; tests copy it)."""
    folder = tmp_path_factory.mktemp("finished")
    config = write_study(folder, {"n_trials": 4, "executor": "serial"})
    result = mixopt("study", "run", config, "--no-report")
    assert result.returncode == 0, result.stderr[-2000:]
    return folder


@pytest.fixture
def study(finished_study: Path, tmp_path: Path) -> Path:
    """A private copy of the finished study; returns its config."""
    shutil.copytree(finished_study, tmp_path / "study")
    return tmp_path / "study" / "study.yaml"


# Each runs the real command two or three times (5 s a start on 2 loaded cores): slow.
@pytest.mark.slow
@pytest.mark.parametrize("kind, reason", [
    ("read-only", ("Read-only file system", "Permission denied")),
    ("full", ("No space left on device",)),
])
def test_export_into_an_unwritable_folder_is_one_line_and_changes_nothing(study, tmp_path, kind, reason):
    target = tmp_path / "out"
    target.mkdir()
    before = completed_trials(study)
    result = mixopt_with(kind, target, "study", "export", study, "--trial", "0", "--allow-incomplete", "-o", target / "mix.yaml")
    line = assert_one_line_error(result, f"cannot write {target / 'mix.yaml'}", str(target), "or choose another path")
    assert any(r in line for r in reason), line
    assert not list(target.iterdir()) and "left in the folder" not in result.stderr
    assert completed_trials(study) == before
    fixed = mixopt("study", "export", study, "--trial", "0", "--allow-incomplete", "-o", target / "mix.yaml")
    assert fixed.returncode == 0, fixed.stderr
    sources = yaml.safe_load((target / "mix.yaml").read_text())["source_list"]["sources"]
    assert abs(sum(s["target_ratio"] for s in sources) - 1) < 1e-9
    print(f"\nFIGURE export into a {kind} folder: exit {result.returncode}, stderr lines 1, tracebacks 0, "
          f"files left 0, completed trials before/after {len(before)}/{len(completed_trials(study))}; message: {line}")


@pytest.mark.slow
def test_a_read_only_run_folder_stops_the_study_before_any_trial(study):
    runs = study.parent / "runs" / "synthetic"
    assert runs.is_dir(), "the first run creates its run folder"
    before = completed_trials(study)
    result = mixopt_with("read-only", runs, "study", "run", study, "--n-trials", "6", "--no-report")
    line = assert_one_line_error(result, f"cannot write {runs}", "run a copy of the study folder from a writable place",
                                 progress=True)
    states = optuna.load_study(study_name="synthetic", storage=f"sqlite:///{study.parent / 'study.db'}").get_trials()
    assert completed_trials(study) == before and len(states) == len(before), "no trial may start, fail or vanish"
    fixed = mixopt("study", "run", study, "--n-trials", "6", "--no-report")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    after = completed_trials(study)
    assert len(after) == 6 and all(after[n] == v for n, v in before.items())
    print(f"\nFIGURE read-only run folder: exit {result.returncode}, error lines 1, tracebacks 0, trials started 0, "
          f"completed trials before/after {len(before)}/{len(before)}, after fixing {len(after)}/6; message: {line}")


# -- fast, in process: real OSErrors that need no privileges -------------------------------------------------
def test_a_run_folder_that_cannot_be_created_is_an_output_error(tmp_path):
    config = load_config(write_study(tmp_path))
    (tmp_path / "runs").write_text("a file where the runs folder should be")
    with pytest.raises(OutputError, match=rf"cannot write {tmp_path / 'runs' / 'synthetic'}: .*check {tmp_path / 'runs'}, "
                                          "or run a copy of the study folder from a writable place"):
        output_root(config, "synthetic")


def test_an_export_onto_a_folder_is_an_output_error_and_leaves_no_temporary(tmp_path):
    (tmp_path / "mix.yaml").mkdir()
    with pytest.raises(OutputError, match="cannot write .*mix.yaml: Is a directory; .*or choose another path"):
        write_atomic(tmp_path / "mix.yaml", "web: 1.0\n")
    assert [p.name for p in tmp_path.iterdir()] == ["mix.yaml"]


@pytest.mark.parametrize("code, fix", [
    (errno.ENOSPC, "free space on the filesystem of /data/out"),
    (errno.EROFS, "/data/out is on a read-only filesystem: remount it read-write"),
    (errno.EACCES, "make /data/out writable (chmod u+w)"),
])
def test_output_errors_name_the_path_and_the_fix(code, fix):
    error = OutputError.cannot_write("/data/out/mix.yaml", OSError(code, os.strerror(code)), "choose another path")
    assert str(error) == f"cannot write /data/out/mix.yaml: {os.strerror(code)}; {fix}, or choose another path"
