"""Build-once cache folders with checksums."""

from __future__ import annotations

import pytest

from mixopt.cache import build_once, cache_dir, verify
from mixopt.errors import ConfigError


def test_builds_once_then_verifies(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "a.txt").write_text("alpha")
        (folder / "sub").mkdir()
        (folder / "sub" / "b.txt").write_text("beta")
        return {"n": 2}

    target = tmp_path / "thing"
    assert build_once(target, build) == target
    assert build_once(target, build) == target
    assert len(calls) == 1
    assert verify(target) == {"n": 2}
    build_once(target, build, rebuild=True)
    assert len(calls) == 2 and not (tmp_path / "thing.tmp").exists()


def test_verify_names_a_changed_file(tmp_path):
    target = build_once(tmp_path / "thing", lambda folder: (folder / "a.txt").write_text("alpha") and {})
    (target / "a.txt").write_text("tampered")
    with pytest.raises(ConfigError, match=r"a.txt is missing or changed since it was built: rebuild with --force"):
        verify(target)
    with pytest.raises(ConfigError, match="not a built cache folder"):
        verify(tmp_path / "elsewhere")


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    def broken(folder):
        (folder / "half.txt").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        build_once(tmp_path / "thing", broken)
    assert not (tmp_path / "thing").exists()


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MIXOPT_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "mixopt")
