"""The documentation site: built in strict mode, its generated reference complete, and every command
block of the tutorials executed.

A tutorial's ``bash`` blocks run in order, each with ``bash -euo pipefail``, in one fresh folder per page
(so a page's later blocks see what its earlier ones wrote), with the installed ``mixopt`` first on PATH.
A block whose first line is ``# needs: REASON`` (a cluster, a database server shared by machines) is not
run; the test checks that it names its reason. Blocks of other languages (yaml, text) are not commands.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from example_folders import NEEDS, blocks
from study_helpers import MIXOPT, REPO, command_env, missing_component

DOCS = REPO / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
MKDOCS = Path(sys.executable).with_name("mkdocs")
# Pages whose blocks train real models on the demo (built once into $MIXOPT_CACHE): the slow lane.
SLOW_PAGES = {"default-study.md", "own-data.md"}
BLOCK_TIMEOUT = 1800  # seconds; the demo's first build is the longest step


def load_hooks():
    spec = importlib.util.spec_from_file_location("mixopt_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tutorial_is_on_the_site_and_holds_commands():
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    listed = {Path(p).name for section in nav if "Tutorials" in section for item in section["Tutorials"]
              for p in item.values()}
    assert listed == {p.name for p in TUTORIALS}
    for page in TUTORIALS:
        assert any(lang == "bash" for lang, _ in blocks(page)), f"{page.name} has no command block"


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_marked_blocks_name_what_they_need_and_yaml_blocks_parse(page):
    for lang, body in blocks(page):
        first = body.splitlines()[0] if body.strip() else ""
        if lang == "bash" and first.startswith("# needs"):
            assert NEEDS.match(first), f"{page.name}: write the marker as '# needs: REASON': {first!r}"
        if lang == "yaml":
            yaml.safe_load(body)  # a snippet the reader pastes must at least be YAML


def run_page(page: Path, folder: Path) -> None:
    env = command_env()
    env["PATH"] = f"{MIXOPT.parent}{os.pathsep}{env['PATH']}"
    commands = [body for lang, body in blocks(page) if lang == "bash" and not NEEDS.match(body.splitlines()[0])]
    if any(re.search(r"\bmixopt init\b", body) for body in commands):
        probe = subprocess.run([str(MIXOPT), "init", "--help"], capture_output=True, text=True, env=env)
        if probe.returncode != 0:
            missing_component(f"{page.name} runs `mixopt init`, which this tree does not have yet (issue 22 "
                              "item 3): its blocks are not run")
    for number, body in enumerate(commands, 1):
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=BLOCK_TIMEOUT)
        assert done.returncode == 0, (f"{page.name}, command block {number} exited {done.returncode}:\n{body}\n"
                                      f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")


@pytest.mark.parametrize("page", [pytest.param(p, marks=[pytest.mark.slow] if p.name in SLOW_PAGES else [])
                                  for p in TUTORIALS], ids=[p.stem for p in TUTORIALS])
def test_tutorial_commands_run(page, tmp_path):
    run_page(page, tmp_path)


# -- the site ----------------------------------------------------------------------------------------
def require_mkdocs() -> None:
    if not MKDOCS.exists():
        missing_component("mkdocs is not installed (pip install 'mixopt[docs]')")
    for module in ("material", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module) is None:
            missing_component(f"{module} is not installed (pip install 'mixopt[docs]')")


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(MKDOCS), "build", "--strict", "-f", str(root / "mkdocs.yml"), "-d", str(site)],
                          cwd=root, env=command_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require_mkdocs()
    site = tmp_path_factory.mktemp("site")
    done = build(REPO, site)
    assert done.returncode == 0, done.stderr[-4000:]
    return site


def test_site_builds_in_strict_mode_with_the_generated_reference(site):
    for page in ["index", "concepts", *(f"tutorials/{p.stem}" for p in TUTORIALS), "reference/config",
                 "reference/cli", "reference/api"]:
        assert (site / page / "index.html").is_file() or (site / f"{page}.html").is_file() or \
            (page == "index" and (site / "index.html").is_file()), page
    api = (site / "reference" / "api" / "index.html").read_text()
    hooks = load_hooks()
    for dotted in hooks.public_names():
        assert f'id="{dotted}"' in api, f"{dotted} is not in the API reference"


def test_a_broken_reference_fails_the_strict_build(tmp_path):
    """A copy of the site whose concepts page links to a page that does not exist does not build."""
    require_mkdocs()
    root = tmp_path / "copy"
    root.mkdir()
    shutil.copy(REPO / "mkdocs.yml", root)
    shutil.copytree(DOCS, root / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    concepts = root / "docs" / "concepts.md"
    concepts.write_text(concepts.read_text() + "\nSee [the missing page](tutorials/no-such-page.md).\n")
    done = build(root, tmp_path / "site")
    assert done.returncode != 0 and "no-such-page.md" in done.stderr


def test_config_reference_documents_every_key_of_every_config_class():
    import dataclasses

    hooks = load_hooks()
    page = hooks.config_reference()
    for cls in hooks.config_classes():
        for f in dataclasses.fields(cls):
            if not f.metadata.get("internal"):
                row = re.search(rf"^\| `{f.name}` \| (.+?) \| (.+?) \| (.+) \|$", page, re.M)
                assert row and row[3].strip(), f"{cls.__name__}.{f.name} is missing from the config reference"
    assert "| `batch_size` | integer | `4` |" in page and "| `runner` | [ComponentConfig](#componentconfig) | **required** |" in page
    assert "Registered: " in page and "`botorch`" in page


def test_an_undocumented_config_key_stops_the_reference(monkeypatch):
    import dataclasses

    hooks = load_hooks()
    original = hooks.attribute_docs
    monkeypatch.setattr(hooks, "attribute_docs", lambda cls: {k: v for k, v in original(cls).items() if k != "seed"})
    with pytest.raises(hooks.UndocumentedKey, match="StudyConfig.seed"):
        hooks.config_reference()
    assert dataclasses.is_dataclass(hooks.config_classes()[0])


def test_cli_reference_lists_every_command_with_its_options():
    hooks = load_hooks()
    page = hooks.cli_reference()
    paths = [" ".join(path) for path, _, _ in hooks.commands()]
    assert {"mixopt study run", "mixopt study export", "mixopt screen", "mixopt surrogate cv"} <= set(paths)
    for path in paths:
        assert f"## {path}\n" in page
    assert "`--n-trials <int range>`" in page and "`--format <str>`" in page


def test_every_epilog_example_parses_against_its_command():
    """The examples in ``--help`` epilogs name a real command and only options it takes."""
    hooks = load_hooks()
    checked = 0
    for path, command, ctx in hooks.commands():
        for example in hooks.epilog_examples(command.epilog):
            argv = hooks.example_argv(example)
            assert argv[: len(path) - 1] == path[1:], f"{' '.join(path)}: its example runs another command: {example}"
            try:
                command.make_context(path[-1], argv[len(path) - 1:], parent=ctx.parent).close()
            except Exception as exc:  # typer's vendored click raises its own UsageError classes
                raise AssertionError(f"{' '.join(path)}: example does not parse ({exc}): {example}") from None
            checked += 1
    assert checked >= 10
