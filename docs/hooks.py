"""mkdocs hooks: the reference pages, generated at build time from the code itself.

- ``reference/config.md``: every key of the study config classes (``mixopt.config``), with its type,
  default and attribute docstring; the registered component names beside ``runner``, ``searcher``, ...
  A key without a docstring stops the build (``UndocumentedKey``).
- ``reference/cli.md``: every ``mixopt`` command from the typer app: usage, help, arguments and options
  (type, default, help) and the epilog's examples.
- ``reference/api.md``: one mkdocstrings block per public name (``mixopt.__all__`` and the extension points).

The tests import this module by path (tests/docs) to check the pages and the epilog examples.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import shlex
import types
import typing
from collections.abc import Iterator
from typing import Any

CONFIG_PAGE = "reference/config.md"
CLI_PAGE = "reference/cli.md"
API_PAGE = "reference/api.md"
# Extension points beside __all__. mixopt.runners.Runner and mixopt.surrogates.Surrogate are left out: runners/
# and surrogates/ are installed into mixopt by setuptools' package-dir, which griffe's static reader cannot
# follow, and its import-based inspection of the whole package would run mixopt/cli/__main__.py.
EXTENSION_POINTS = ("mixopt.trials.RunSpec", "mixopt.trials.Evaluation", "mixopt.search.Searcher",
                    "mixopt.executors.Executor")


class UndocumentedKey(Exception):
    """A config key with no attribute docstring: document it in mixopt/config.py."""


# -- the config reference ------------------------------------------------------------------------------
def type_name(tp: Any) -> str:
    """A config field's type as a reader writes it in YAML terms (``list[SourceConfig]`` -> list of mappings)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(inner) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"mapping {type_name(args[0])} → {type_name(args[1])}"
    if tp is Any:
        return "any"
    if dataclasses.is_dataclass(tp):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return {"str": "string", "float": "number", "int": "integer", "bool": "boolean"}.get(tp.__name__, tp.__name__)


def attribute_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings (a string literal right after a field) of ``cls`` and its dataclass bases."""
    import ast

    docs: dict[str, str] = {}
    for klass in reversed([c for c in cls.__mro__ if dataclasses.is_dataclass(c)]):
        tree = ast.parse(inspect.getsource(klass))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, after in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "**required**"
    if dataclasses.is_dataclass(value):
        value = {k: v for k, v in dataclasses.asdict(value).items() if v not in (None, {}, [])} or "(all defaults)"
        if hasattr(value, "keys") and set(value) == {"name"}:
            value = value["name"]
    return "`null`" if value is None else f"`{value!r}`" if not isinstance(value, str) else f"`{value}`"


def config_classes() -> list[type]:
    """``StudyConfig`` and every dataclass reachable from its fields, in the order they are met."""
    from mixopt.config import StudyConfig

    seen: list[type] = []

    def visit(cls: type) -> None:
        if cls in seen:
            return
        seen.append(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            stack = [hints[f.name]]
            while stack:
                t = stack.pop()
                stack.extend(typing.get_args(t))
                if isinstance(t, type) and dataclasses.is_dataclass(t):
                    visit(t)

    visit(StudyConfig)
    return seen


def component_names() -> dict[str, list[str]]:
    """The registered names of each component key of a study config."""
    from mixopt.executors import EXECUTORS
    from mixopt.runners import RUNNERS
    from mixopt.search import SEARCHERS
    from mixopt.surrogates import SURROGATES

    return {"runner": RUNNERS.names(), "searcher": SEARCHERS.names(), "executor": EXECUTORS.names(),
            "surrogate": SURROGATES.names()}


def config_reference() -> str:
    """The config reference page (Markdown)."""
    names = component_names()
    lines = ["# Config reference", "",
             "Generated from the config classes in `mixopt/config.py` when the site is built: every key a "
             "`study.yaml` may hold, its type, its default and its documentation. Loading is strict: an unknown "
             "key is an error with a did-you-mean, and constraints that admit no mixture are refused before "
             "anything runs. Component keys (`runner`, `searcher`, `executor`, `surrogate`) take a name or "
             "`{name: ..., options: {...}}`.", ""]
    for cls in config_classes():
        hints = typing.get_type_hints(cls)
        docs = attribute_docs(cls)
        title = "StudyConfig: the top level" if cls.__name__ == "StudyConfig" else cls.__name__
        lines += [f"## {title}" if cls.__name__ != "StudyConfig" else "## StudyConfig", ""]
        if cls.__name__ == "StudyConfig":
            lines += ["The top level of a `study.yaml`.", ""]
        if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
            lines += [inspect.cleandoc(cls.__doc__), ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            if f.name not in docs:
                raise UndocumentedKey(f"{cls.__name__}.{f.name} has no docstring: add one under the field in "
                                      "mixopt/config.py")
            doc = docs[f.name].replace("\n", " ").replace("|", "\\|")
            if cls.__name__ == "StudyConfig" and f.name in names:
                doc += " Registered: " + ", ".join(f"`{n}`" for n in names[f.name]) + "."
            lines.append(f"| `{f.name}` | {type_name(hints[f.name])} | {default_text(f)} | {doc} |")
        lines.append("")
    return "\n".join(lines)


# -- the CLI reference ---------------------------------------------------------------------------------
def cli_root():
    """The ``mixopt`` command (typer's click group) and a context for it."""
    import typer

    from mixopt.cli import app

    root = typer.main.get_command(app)
    return root, root.context_class(root, info_name="mixopt")


def commands() -> Iterator[tuple[list[str], Any, Any]]:
    """Every leaf command as (path, command, context), depth first in the order ``--help`` lists them."""
    def walk(command, path, ctx):
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not getattr(sub, "hidden", False):
                    yield from walk(sub, [*path, name], sub.context_class(sub, info_name=name, parent=ctx))
        else:
            yield path, command, ctx

    root, ctx = cli_root()
    yield from walk(root, ["mixopt"], ctx)


def epilog_examples(epilog: str | None) -> list[str]:
    """The example command lines of an epilog ("Example: CMD" or "Examples: CMD" and more lines)."""
    if not epilog:
        return []
    text = re.sub(r"^Examples?:\s*", "", epilog.strip())
    return [line.strip() for line in re.split(r"\n\s*\n|\n", text) if line.strip().startswith("mixopt ")]


def example_argv(example: str) -> list[str]:
    """An example's arguments after ``mixopt``, up to a shell operator or a parenthetical remark."""
    argv: list[str] = []
    for token in shlex.split(example)[1:]:
        if token in (">", "|", "&&", ";", "<") or token.startswith("("):
            break
        argv.append(token)
    return argv


def param_row(param, ctx) -> str:
    """A table row of an argument or option: its ``--help`` record (names and type; help with the default)."""
    names, help_text = param.get_help_record(ctx) or (param.name, "")
    return f"| `{names}` | {help_text.replace('|', chr(92) + '|')} |"


def cli_reference() -> str:
    """The CLI reference page (Markdown)."""
    lines = ["# CLI reference", "",
             "Generated from the typer app (`mixopt.cli`) when the site is built. Exit codes: 0 ok, 2 bad input "
             "(one line on stderr naming the problem and the fix), 1 a run failed.", ""]
    for path, command, ctx in commands():
        lines += [f"## {' '.join(path)}", ""]
        if command.help:
            lines += [inspect.cleandoc(command.help), ""]
        lines += ["```text", command.get_usage(ctx).strip(), "```", ""]
        params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
        if params:
            lines += ["| argument or option | help |", "| --- | --- |"]
            lines += [param_row(p, ctx) for p in params]
            lines.append("")
        examples = epilog_examples(command.epilog)
        if examples:
            lines += ["Example" + ("s" if len(examples) > 1 else "") + ":", "", "```bash", *examples, "```", ""]
    return "\n".join(lines)


# -- the API reference ---------------------------------------------------------------------------------
def public_names() -> list[str]:
    """Dotted paths of the public names: ``mixopt.__all__`` (where each lives) and the extension points."""
    import mixopt

    located = [f"{mixopt._PUBLIC[name]}.{name}" for name in mixopt.__all__ if name in mixopt._PUBLIC]
    return located + [name for name in EXTENSION_POINTS if name not in located]


def api_reference() -> str:
    """The API reference page (Markdown with one mkdocstrings block per public name)."""
    import mixopt

    lines = ["# Python API reference", "",
             f"The public names of mixopt {mixopt.__version__} (`mixopt.__all__`, imported lazily, so "
             "`import mixopt` stays cheap) and the extension points a plug-in subclasses. Generated from "
             "the docstrings when the site is built.", ""]
    for dotted in public_names():
        lines += [f"::: {dotted}", "    options:", "      heading_level: 2", ""]
    return "\n".join(lines)


# -- the mkdocs hook -----------------------------------------------------------------------------------
def on_files(files, config):
    """Add the generated reference pages to the site."""
    from mkdocs.structure.files import File

    for uri, build in ((CONFIG_PAGE, config_reference), (CLI_PAGE, cli_reference), (API_PAGE, api_reference)):
        files.append(File.generated(config, uri, content=build()))
    return files
