"""The public face: the names users import from ``mixopt`` and its extension packages."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mixopt


@pytest.mark.parametrize("name", [n for n in mixopt.__all__ if n != "__version__"])
def test_every_public_name_resolves_to_its_object(name):
    value = getattr(mixopt, name)
    assert value.__name__ == name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Studdy'"):
        mixopt.Studdy  # noqa: B018


def test_importing_mixopt_does_not_import_the_heavy_stack():
    code = "import sys, mixopt; print(any(m in sys.modules for m in ('torch', 'optuna', 'botorch', 'pandas')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_extension_points_are_importable_from_their_packages():
    from mixopt.runners import Evaluation, Runner, RunSpec
    from mixopt.search import Searcher
    from mixopt.surrogates import Surrogate

    assert all(isinstance(c, type) for c in (Evaluation, Runner, RunSpec, Searcher, Surrogate))
