"""Import layers: a lower layer never imports a higher one, and the contract modules import only the ground.

Imports are read from the sources with ``ast``: top-level, inside functions (lazy) and under
``TYPE_CHECKING`` all count. Modules are found through setuptools' ``package-dir`` mapping in
pyproject.toml (``mixopt.runners`` is runners/, ``mixopt.surrogates`` is surrogates/...). A room is a
top-level module of mixopt/ (mixopt/study.py: ``study``), a sub-package folder (mixopt/search/:
``search``) or a mapped folder (runners/: ``runners``); every room has a layer below.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mixopt"
ROOT_ROOM = "__init__"  # the package's own __init__ (``import mixopt`` for its version)

# Lowest first. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, set[str]]] = [
    ("ground", {ROOT_ROOM, "errors", "space", "compat", "cache", "registry", "failpoints", "pareto", "seeding",
                "tables", "merge", "export", "realisable", "trials", "trust", "examples", "noise", "candidates"}),
    ("surrogates", {"surrogates"}),
    ("search", {"search"}),
    ("runners", {"runners", "executors"}),
    ("study", {"study", "config", "objectives"}),
    ("application", {"loop", "rounds", "screen", "reuse", "report", "recommend", "analysis", "handoff", "demo",
                     "controller", "figures", "headroom", "scaffold", "replicates", "costaware"}),
    ("entry points", {"cli", "benchmarks", "studies"}),  # studies/: the example studies (package data)
]
# Contract and space modules: they (and what they import, transitively) import only the ground layer and
# their own room.
CONTRACTS = ["mixopt.errors", "mixopt.space", "mixopt.trials", "mixopt.runners.base", "mixopt.search.base",
             "mixopt.surrogates.base"]
# Imports that break the layers from files that other engineers are editing; each is allowed while it is
# still there and must be removed from here once gone (a test says so). ``path: {(room, imported room)}``.
PENDING: dict[str, set[tuple[str, str]]] = {}


# -- reading the sources -----------------------------------------------------------------------------------
def package_dirs(root: Path) -> dict[str, str]:
    """Package name -> folder (relative to ``root``), from pyproject.toml's ``[tool.setuptools] package-dir``."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    mapping = dict(config.get("tool", {}).get("setuptools", {}).get("package-dir", {}))
    return mapping or {PACKAGE: PACKAGE}


def module_files(root: Path, mapping: dict[str, str]) -> dict[str, Path]:
    """Every module of the package -> its file: ``a.b`` is ``<dir of a>/b.py`` or ``<dir of a>/b/__init__.py``."""
    files: dict[str, Path] = {}
    for package, folder in sorted(mapping.items(), key=lambda item: len(item[0])):
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            inner = [p for p in mapping if p != package and p.startswith(package + ".")]
            if any(name == p or name.startswith(p + ".") for p in inner) and package != name:
                continue  # a sub-package mapped elsewhere (mixopt.runners is runners/, not mixopt/runners/)
            files[name] = path
    return files


def room_of(module: str, mapping: dict[str, str]) -> str:
    """The room of a module of the package: a mapped folder's last name, else the first name under it."""
    for package in sorted(mapping, key=len, reverse=True):
        if package != PACKAGE and (module == package or module.startswith(package + ".")):
            return package.rsplit(".", 1)[-1]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_ROOM


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """``(line, module)`` of every package module that ``path`` imports, anywhere in the file. ``from a
    import b`` is module ``a.b`` when that is a module, else ``a``; relative imports are resolved."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                while name not in known and "." in name:  # an attribute of a module: the module
                    name = name.rsplit(".", 1)[0]
                found.append((node.lineno, name))
    return found


def layer_index(room: str) -> int | None:
    return next((i for i, (_, rooms) in enumerate(LAYERS) if room in rooms), None)


def layer_violations(root: Path) -> list[tuple[str, int, str, str]]:
    """``(file, line, room, imported room)`` of every import of a higher layer (and of every room that has
    no layer, as ``(file, 0, room, "")``)."""
    mapping = package_dirs(root)
    files = module_files(root, mapping)
    found = []
    for module, path in sorted(files.items()):
        room = room_of(module, mapping)
        rel = str(path.relative_to(root))
        if layer_index(room) is None:
            found.append((rel, 0, room, ""))
            continue
        for line, target in imports_of(module, path, set(files)):
            other = room_of(target, mapping)
            level = layer_index(other)
            if level is not None and level > layer_index(room) and (rel, line, room, other) not in found:
                found.append((rel, line, room, other))
    return found


def contract_violations(root: Path, contracts: list[str]) -> list[str]:
    """What each contract module reaches (transitively, the ``__init__`` of its packages included) outside
    the ground layer and its own room: ``"contract: module imports module"``."""
    mapping = package_dirs(root)
    files = module_files(root, mapping)
    bad = []
    for contract in contracts:
        home = room_of(contract, mapping)
        seen, todo = set(), [contract]
        while todo:
            module = todo.pop()
            if module in seen or module not in files:
                continue
            seen.add(module)
            parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
            for target in [m for _, m in imports_of(module, files[module], set(files))] + parents:
                room = room_of(target, mapping)
                if room == home or layer_index(room) == 0:
                    todo.append(target)
                else:
                    bad.append(f"{contract}: {module} imports {target}")
    return bad


# -- the package -------------------------------------------------------------------------------------------
def test_every_room_has_a_layer_and_no_layer_imports_a_higher_one():
    found = layer_violations(ROOT)
    unplaced = sorted({room for _, line, room, _ in found if not line})
    assert not unplaced, f"give these rooms a layer in LAYERS: {unplaced}"
    bad = [f"{path}:{line}: {room} imports {other}" for path, line, room, other in found
           if (room, other) not in PENDING.get(path, set())]
    assert not bad, "a lower layer imports a higher one (lowest first: " + " < ".join(n for n, _ in LAYERS) + f"): {bad}"


def test_pending_layer_breaks_are_still_there():
    found = {(path, (room, other)) for path, _, room, other in layer_violations(ROOT)}
    for path, pairs in PENDING.items():
        for pair in pairs:
            assert (path, pair) in found, f"{path} no longer has the {pair[0]} -> {pair[1]} import: remove it from PENDING"


def test_contract_modules_import_only_the_ground():
    assert contract_violations(ROOT, CONTRACTS) == []


def test_surrogates_import_no_study_config_loop_cli_or_search_code():
    mapping = package_dirs(ROOT)
    files = module_files(ROOT, mapping)
    banned = {"study", "config", "loop", "rounds", "cli", "search", "analysis", "report"}
    bad = [f"{path.relative_to(ROOT)}:{line}: {target}"
           for module, path in files.items() if room_of(module, mapping) == "surrogates"
           for line, target in imports_of(module, path, set(files)) if room_of(target, mapping) in banned]
    assert not bad


# -- the checker itself, on a small tree -------------------------------------------------------------------
def make_tree(root: Path, sources: dict[str, str]) -> Path:
    (root / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.setuptools]
        package-dir = { "mixopt" = "mixopt", "mixopt.runners" = "runners", "mixopt.surrogates" = "surrogates" }
    """))
    for name, text in sources.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


GOOD = {
    "mixopt/__init__.py": "__version__ = '0'\n",
    "mixopt/errors.py": "class ConfigError(Exception): ...\n",
    "mixopt/space.py": "from mixopt.errors import ConfigError\n",
    "mixopt/study.py": "from mixopt import space\nfrom mixopt.runners.base import Evaluation\n",
    "mixopt/search/__init__.py": "",
    "mixopt/search/base.py": "from ..space import MixtureSpace\nfrom . import helper\n",
    "mixopt/search/helper.py": "import mixopt.errors\n",
    "runners/__init__.py": "",
    "runners/base.py": "from mixopt.errors import ConfigError\n",
    "runners/synthetic.py": "from mixopt.runners.base import Evaluation\nfrom mixopt.search import base\n",
    "surrogates/__init__.py": "",
    "surrogates/base.py": "import numpy\n",
}


def test_the_checker_passes_a_well_layered_tree(tmp_path):
    root = make_tree(tmp_path, GOOD)
    assert layer_violations(root) == []
    assert contract_violations(root, CONTRACTS) == []
    assert room_of("mixopt.runners.synthetic", package_dirs(root)) == "runners"
    assert sorted(module_files(root, package_dirs(root)))[:3] == ["mixopt", "mixopt.errors", "mixopt.runners"]


def test_the_checker_catches_lazy_type_checking_and_relative_imports_of_higher_layers(tmp_path):
    root = make_tree(tmp_path, {
        **GOOD,
        "mixopt/space.py": """
            from mixopt.errors import ConfigError

            def f():
                from mixopt.study import Study  # lazy
        """,
        "surrogates/fitting.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from mixopt.config import Config
        """,
        "mixopt/config.py": "",
        "mixopt/search/base.py": "from ..study import Study\n",
        "runners/base.py": "from mixopt import study\n",
        "mixopt/newroom.py": "",
    })
    found = layer_violations(root)
    assert ("mixopt/space.py", 5, "space", "study") in found
    assert ("surrogates/fitting.py", 4, "surrogates", "config") in found
    assert ("mixopt/search/base.py", 1, "search", "study") in found
    assert ("runners/base.py", 1, "runners", "study") in found
    assert ("mixopt/newroom.py", 0, "newroom", "") in found  # a room with no layer
    contracts = contract_violations(root, CONTRACTS)
    assert any(c.startswith("mixopt.space: mixopt.space imports mixopt.study") for c in contracts)
    assert any(c.startswith("mixopt.runners.base: mixopt.runners.base imports mixopt.study") for c in contracts)


def test_a_contract_may_not_reach_above_the_ground_through_its_own_room(tmp_path):
    root = make_tree(tmp_path, {**GOOD, "mixopt/search/helper.py": "from mixopt.runners import base\n"})
    assert layer_violations(root) == [("mixopt/search/helper.py", 1, "search", "runners")]
    assert contract_violations(root, ["mixopt.search.base"]) == [
        "mixopt.search.base: mixopt.search.helper imports mixopt.runners.base"]
