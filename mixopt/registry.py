"""Name -> class registries for the extension points (searchers, runners, surrogates, executors).

Entries are ``"module:Class"`` strings imported on first use, so naming a light component never
imports a heavy one (torch, transformers).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from mixopt.errors import ConfigError


class Registry:
    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self.entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def load(self, name: str) -> type:
        if name not in self.entries:
            hint = difflib.get_close_matches(name, self.names(), n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"choose one of: {', '.join(self.names())}"
            raise ConfigError(f"unknown {self.kind} '{name}': {fix}")
        module, _, attr = self.entries[name].partition(":")
        return getattr(importlib.import_module(module), attr)

    def create(self, name: str, options: dict[str, Any] | None = None) -> Any:
        """An instance built from config options; a bad option is a ``ConfigError`` naming it."""
        cls = self.load(name)
        try:
            return cls(**(options or {}))
        except TypeError as exc:
            raise ConfigError(f"{self.kind} '{name}': bad options: {exc}") from None
