"""The demo as the microanneal runner's default assets (``mixopt.runners.microanneal.Assets``): its base
model, sources, tasks and SFT pairs, each built on first use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mixopt.demo.base import ensure_base
from mixopt.demo.data import SOURCES, ensure_data


class DemoAssets:
    """Registered as the runner's ``"demo"`` assets (``mixopt.runners.microanneal.ASSETS``)."""

    sources: tuple[str, ...] = SOURCES

    def base_model(self) -> Path:
        return ensure_base()

    def source(self, name: str) -> Path:
        return ensure_data(check=False).source(name)

    def tasks_dir(self) -> Path:
        return ensure_data(check=False).tasks_dir

    def sft_dir(self) -> Path:
        return ensure_data(check=False).root / "sft"


if TYPE_CHECKING:  # mypy checks that the demo provides what the runner asks for
    from mixopt.runners.microanneal import Assets

    _checked: Assets = DemoAssets()
