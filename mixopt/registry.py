"""Name -> class registries for the extension points (searchers, runners, surrogates, executors).

Entries are ``"module:Class"`` strings imported on first use, so naming a light component never
imports a heavy one (torch, transformers). A name that is itself ``"module:Class"`` (e.g.
``runner: {name: "my_lab.runners:ClusterRunner"}``) plugs in a user's own class: the module must be
importable (installed, or on ``PYTHONPATH``; workers import it too) and the class must subclass the
extension point's base class.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

from mixopt.errors import ConfigError

# The base class that a plugged-in class of each kind must subclass.
PLUGIN_BASES = {
    "runner": "mixopt.runners.base:Runner",
    "searcher": "mixopt.search.base:Searcher",
    "surrogate": "mixopt.surrogates.base:Surrogate",
    "executor": "mixopt.executors:Executor",
}


class Registry:
    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self.entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def load(self, name: str) -> type:
        """The class registered as ``name``, or the user's class that ``name`` (``module:Class``) points to."""
        if name in self.entries:
            return _import(self.entries[name])
        if ":" in name:
            return self._load_plugin(name)
        hint = difflib.get_close_matches(name, self.names(), n=1)
        fix = f"did you mean '{hint[0]}'?" if hint else f"choose one of: {', '.join(self.names())}, or module:Class"
        raise ConfigError(f"unknown {self.kind} '{name}': {fix}")

    def _load_plugin(self, name: str) -> type:
        module_name, _, class_name = name.partition(":")
        if not module_name or not class_name:
            raise ConfigError(f"{self.kind} '{name}': write a plug-in as module:Class, e.g. my_lab.{self.kind}s:My{self.kind.title()}")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            missing = getattr(exc, "name", None)
            if isinstance(exc, ModuleNotFoundError) and missing and f"{module_name}.".startswith(f"{missing}."):
                raise ConfigError(
                    f"{self.kind} '{name}': cannot import module '{module_name}' ({exc}): install it, or add the "
                    "folder that holds it to PYTHONPATH"
                ) from None
            # The module exists but raised while importing (a syntax error, an import of its own that fails...).
            raise ConfigError(f"{self.kind} '{name}': importing '{module_name}' failed: {type(exc).__name__}: {exc}") from None
        cls = getattr(module, class_name, None)
        base = _import(PLUGIN_BASES[self.kind]) if self.kind in PLUGIN_BASES else object
        if cls is None:
            classes = [n for n, c in vars(module).items() if inspect.isclass(c) and issubclass(c, base)]
            hint = difflib.get_close_matches(class_name, classes, n=1)
            fix = f"did you mean '{module_name}:{hint[0]}'?" if hint else f"its {self.kind} classes are: {', '.join(sorted(classes)) or 'none'}"
            raise ConfigError(f"{self.kind} '{name}': module '{module_name}' has no '{class_name}': {fix}")
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise ConfigError(
                f"{self.kind} '{name}': '{class_name}' is not a subclass of {base.__module__}.{base.__qualname__}: "
                f"derive it from that base class"
            )
        return cls

    def check(self, name: str, options: dict[str, Any] | None = None) -> type:
        """The class of ``name``, once ``options`` fit its constructor's signature: an unknown option (with a
        did-you-mean) or a missing required one is a ``ConfigError`` naming it."""
        cls = self.load(name)
        options = options or {}
        signature = inspect.signature(cls)  # the constructor's parameters, without self
        parameters = [p for p in signature.parameters.values()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        known = [p.name for p in parameters]
        for option in options:
            if option not in known and not takes_any:
                hint = difflib.get_close_matches(option, known, n=1)
                fix = f"did you mean '{hint[0]}'?" if hint else f"its options are: {', '.join(known) or 'none'}"
                raise ConfigError(f"{self.kind} '{name}': unknown option '{option}': {fix}")
        missing = [p.name for p in parameters if p.default is p.empty and p.name not in options]
        if missing:
            raise ConfigError(f"{self.kind} '{name}': missing option {', '.join(repr(m) for m in missing)}: set it under options")
        return cls

    def create(self, name: str, options: dict[str, Any] | None = None) -> Any:
        """An instance built from config options, checked first (:meth:`check`); an error raised inside the
        constructor itself is not disguised as a bad option."""
        return self.check(name, options)(**(options or {}))


def _import(entry: str) -> Any:
    """The object that a ``"module:attr"`` entry names."""
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)
