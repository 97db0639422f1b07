"""Plug-ins named ``module:Class``: a user's own runner or searcher loads; a module or class that cannot be
imported, or a class of the wrong kind, is one ConfigError naming the fix."""

from __future__ import annotations

import textwrap

import pytest

from mixopt.errors import ConfigError
from mixopt.runners import RUNNERS
from mixopt.search import SEARCHERS

PLUGINS = textwrap.dedent(
    """
    from mixopt.runners.base import Runner
    from mixopt.trials import Evaluation
    from mixopt.search.random import RandomSearcher

    class ConstantRunner(Runner):
        def __init__(self, loss=1.0):
            self.loss = loss

        def run(self, spec):
            return Evaluation(metrics={"loss": self.loss})

    class MySearcher(RandomSearcher):
        pass

    class NotARunner:
        pass
    """
)


@pytest.fixture
def plugins(tmp_path, monkeypatch) -> str:
    """The name of a module of plug-ins importable from a temporary folder."""
    (tmp_path / "lab_plugins.py").write_text(PLUGINS)
    (tmp_path / "lab_broken.py").write_text("import lab_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "lab_plugins"


def test_a_users_runner_and_searcher_load_by_module_and_class(plugins):
    runner = RUNNERS.create(f"{plugins}:ConstantRunner", {"loss": 2.5})
    assert type(runner).__name__ == "ConstantRunner" and runner.loss == 2.5
    assert type(SEARCHERS.create(f"{plugins}:MySearcher")).__name__ == "MySearcher"


@pytest.mark.parametrize("name, message", [
    ("lab_nowhere:MyRunner", "runner 'lab_nowhere:MyRunner': cannot import module 'lab_nowhere' (No module named "
                             "'lab_nowhere'): install it, or add the folder that holds it to PYTHONPATH"),
    ("lab_broken:MyRunner", "runner 'lab_broken:MyRunner': importing 'lab_broken' failed: ModuleNotFoundError: "
                            "No module named 'lab_missing_dependency'"),
    ("lab_plugins:ConstantRuner", "runner 'lab_plugins:ConstantRuner': module 'lab_plugins' has no 'ConstantRuner': "
                                  "did you mean 'lab_plugins:ConstantRunner'?"),
    ("lab_plugins:NotARunner", "runner 'lab_plugins:NotARunner': 'NotARunner' is not a subclass of "
                               "mixopt.runners.base.Runner: derive it from that base class"),
    ("lab_plugins:", "runner 'lab_plugins:': write a plug-in as module:Class"),
])
def test_a_plugin_that_cannot_be_used_is_one_clear_line(plugins, name, message):
    with pytest.raises(ConfigError) as error:
        RUNNERS.load(name)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_runner_is_not_a_searcher(plugins):
    with pytest.raises(ConfigError, match="is not a subclass of mixopt.search.base.Searcher"):
        SEARCHERS.load(f"{plugins}:ConstantRunner")


def test_options_are_checked_against_the_constructor_with_a_did_you_mean():
    with pytest.raises(ConfigError, match="searcher 'botorch': unknown option 'n_inti': did you mean 'n_init'"):
        SEARCHERS.create("botorch", {"n_inti": 8})
    with pytest.raises(ConfigError, match="runner 'command': missing option 'argv'"):
        RUNNERS.check("command", {})


def test_an_error_inside_a_constructor_is_not_called_a_bad_option(tmp_path, monkeypatch):
    """A bug in a plug-in's constructor surfaces as itself, not as 'bad options'."""
    (tmp_path / "buggy_plugin.py").write_text(
        "from mixopt.search.base import Searcher\n"
        "class Buggy(Searcher):\n"
        "    def __init__(self, n=1):\n"
        "        super().__init__()\n"
        "        len(n)  # TypeError: a bug, not an option problem\n"
        "    def propose(self, space, history, n, *, seed):\n"
        "        raise NotImplementedError\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="has no len"):
        SEARCHERS.create("buggy_plugin:Buggy", {"n": 3})
