"""Names stay inside their folders: every user-given name that may become part of a path (study, sources,
objectives, fidelities, reuse maps) is refused at load when it holds a separator, is '.' or '..', holds NUL
or has surrounding spaces: exit 2, one line, and nothing written anywhere (the study folder holds only its
config). The token cache refuses such a source name too, for run specs made by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mixopt.errors import ConfigError
from mixopt.runners.microanneal_data import tokenized_text
from study_helpers import SYNTHETIC_STUDY, assert_one_line_error, finish, start_mixopt


def renamed_source(data: dict, name: str) -> dict:
    """The synthetic study with its source ``web`` (and the group naming it) renamed to ``name``."""
    data["sources"][0]["name"] = name
    data["constraints"][0]["sources"] = [name, "books"]
    return data


CASES = {
    "a source that climbs out": (lambda d: renamed_source(d, "../x"), "source '../x'"),
    "a source with a separator": (lambda d: renamed_source(d, "web/cc"), "source 'web/cc'"),
    "a source with a backslash": (lambda d: renamed_source(d, "web\\cc"), "source 'web\\\\cc'"),
    "a source with a leading space": (lambda d: renamed_source(d, " web"), "source ' web'"),
    "an objective named ..": (lambda d: {**d, "objectives": [{**d["objectives"][0], "name": ".."}, *d["objectives"][1:]]},
                              "objective '..'"),
    "a fidelity named .": (lambda d: {**d, "fidelities": [{**d["fidelities"][0], "name": "."}, *d["fidelities"][1:]]},
                           "fidelity '.'"),
    "a study name with a trailing space": (lambda d: {**d, "name": "synthetic "}, "study name 'synthetic '"),
    "a reuse map that climbs out": (lambda d: {**d, "reuse": {"study": "old/study.yaml", "map": {"../old": "web"}}},
                                    "reuse.map source '../old'"),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """Each case's study folder (inside a folder of its own) and its `mixopt study run`, all started at once."""
    started = {}
    for case, (change, _) in CASES.items():
        outer = tmp_path_factory.mktemp("outer")
        folder = outer / "study"
        folder.mkdir()
        config = folder / "study.yaml"
        config.write_text(yaml.safe_dump(change(yaml.safe_load(SYNTHETIC_STUDY.read_text())), sort_keys=False))
        started[case] = (outer, start_mixopt("study", "run", config, cwd=folder))
    return {case: (outer, finish(process)) for case, (outer, process) in started.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_a_name_that_would_leave_its_folder_is_refused_at_load_and_nothing_is_written(refusals, case):
    outer, result = refusals[case]
    assert_one_line_error(result, 2, f"{CASES[case][1]} must be one plain file name")
    assert sorted(str(p.relative_to(outer)) for p in outer.rglob("*")) == ["study", "study/study.yaml"]


def test_the_token_cache_refuses_a_source_name_that_leaves_it(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("some words\n")
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(ConfigError, match="source '../x' must be one plain file name"):
        tokenized_text("../x", [str(text)], [text], tokenizer=None, tokenizer_key="k", cache=cache)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["text.txt"]
