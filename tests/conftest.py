"""Fixtures shared by the tests (helpers they import by name are in study_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from study_helpers import write_study


@pytest.fixture
def synthetic_config(tmp_path: Path) -> Path:
    """A fresh copy of studies/synthetic/study.yaml in a temporary folder."""
    return write_study(tmp_path)
