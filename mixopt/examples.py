"""The example studies installed with mixopt (package data ``mixopt.studies``: studies/ in a checkout).

``mixopt init --example NAME [DEST]`` copies one into a folder; ``mixopt study run`` with no config and no
``studies/default/study.yaml`` in the current folder runs the packaged ``default`` with the current folder
as its directory, so its storage, runs, report and exports are written there, never into the installation.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from mixopt.errors import ConfigError, OutputError

if TYPE_CHECKING:
    from importlib.abc import Traversable  # importlib.resources.abc from Python 3.11 on

EXAMPLES = ("default", "synthetic", "midtraining")
CONFIG_FILE = "study.yaml"


def example_folder(name: str) -> Traversable:
    """The installed folder of example ``name`` (its ``study.yaml`` and README)."""
    if name not in EXAMPLES:
        raise ConfigError(f"unknown example '{name}': choose one of {', '.join(EXAMPLES)}")
    return files("mixopt.studies") / name


def example_text(name: str) -> str:
    """The ``study.yaml`` text of example ``name``."""
    return (example_folder(name) / CONFIG_FILE).read_text(encoding="utf-8")


def write_example(name: str, dest: Path, force: bool = False) -> Path:
    """Copy example ``name``'s files into folder ``dest`` (created); returns the written ``study.yaml``.

    An existing ``study.yaml`` there is kept (a ``ConfigError``) unless ``force``."""
    folder = example_folder(name)
    target = dest / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError(f"{target} exists: choose another folder or pass --force to overwrite it")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for item in folder.iterdir():
            if item.is_file() and not item.name.startswith(("_", ".")):
                (dest / item.name).write_text(item.read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        raise OutputError.cannot_write(dest, exc, "choose another folder") from None
    return target
