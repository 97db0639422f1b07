"""The strict study config loader: types, required keys, defaults, errors that name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mixopt.config import ComponentConfig, StudyConfig, load_config, parse_config
from mixopt.errors import ConfigError, InfeasibleSpaceError
from study_helpers import SYNTHETIC_STUDY

MINIMAL = """
name: tiny
sources:
  - {name: web}
  - {name: code, max_weight: 0.5}
objectives:
  - {name: code, metric: code_loss}
fidelities:
  - {name: microanneal, tokens: 1e9}
runner: synthetic
"""


def with_changes(**changes) -> str:
    data = yaml.safe_load(MINIMAL)
    data.update(changes)
    return yaml.safe_dump(data)


def test_synthetic_study_loads_with_typed_fields():
    config = load_config(SYNTHETIC_STUDY)
    assert isinstance(config, StudyConfig)
    assert [s.name for s in config.sources] == ["web", "code", "math", "qa", "books", "instructions"]
    assert config.sources[2].tokens == 1e10 and isinstance(config.sources[2].tokens, float)
    assert [o.direction for o in config.objectives] == ["minimize"] * 3
    assert config.search_fidelity.name == "microanneal"
    assert config.fidelity("integration").tokens == 1e11
    assert config.runner == ComponentConfig("synthetic", {"metrics": ["math_loss", "code_loss", "qa_loss"],
                                                          "problem_seed": 7, "integration": ["integration"]})
    assert (config.batch_size, config.n_trials, config.seed) == (4, 40, 0)
    assert config.directory == SYNTHETIC_STUDY.parent
    assert config.text == SYNTHETIC_STUDY.read_text()


def test_defaults_and_shorthands():
    config = parse_config(MINIMAL)
    assert config.runner == ComponentConfig("synthetic")  # a bare name is a component without options
    assert config.searcher == ComponentConfig("botorch")  # the default searcher (issue 4)
    assert config.executor == ComponentConfig("local")
    assert config.objectives[0].direction == "minimize"
    assert config.fidelities[0].tokens == 1e9  # YAML 1.1 reads 1e9 as a string; the loader takes it as a number
    assert (config.batch_size, config.n_trials, config.granularity, config.max_failures) == (4, 20, 1e-4, None)
    assert config.constraints == []


def test_default_storage_is_sqlite_beside_the_config(tmp_path: Path):
    path = tmp_path / "study.yaml"
    path.write_text(MINIMAL)
    config = load_config(tmp_path)  # a folder holding study.yaml works too
    assert config.storage_url == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    explicit = parse_config(with_changes(storage="postgresql://u:p@host/db"))
    assert explicit.storage_url == "postgresql://u:p@host/db"


def test_space_uses_each_fidelitys_budget_for_repetition_caps():
    config = load_config(SYNTHETIC_STUDY)
    micro, integration = config.space("microanneal"), config.space("integration")
    math = config.space().names.index("math")
    assert micro.upper[math] == pytest.approx(0.4)  # max_weight 0.4 binds at 1e10 tokens
    assert integration.upper[config.space().names.index("instructions")] == pytest.approx(0.2)  # 4 x 5e9 / 1e11
    assert integration.upper[config.space().names.index("books")] == pytest.approx(0.6)  # 2 x 3e10 / 1e11
    assert config.space().groups[0].sources == ("web", "books")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (with_changes(n_trails=3), "n_trails: unknown key: did you mean 'n_trials'?"),
        (with_changes(sources=[{"name": "web", "max_wieght": 0.5}]), "sources[0].max_wieght: unknown key: did you mean 'max_weight'?"),
        (with_changes(batch_size="four"), "batch_size: expected an integer, got str 'four'"),
        (with_changes(batch_size=2.5), "batch_size: expected an integer"),
        (with_changes(n_trials=True), "n_trials: expected an integer, got bool"),
        (with_changes(sources={"name": "web"}), "sources: expected a list"),
        (with_changes(sources=[{"name": "web", "tokens": "lots"}]), "sources[0].tokens: expected a finite number"),
        (with_changes(sources=[{"name": "web", "tokens": -5}, {"name": "b"}]), "source 'web': tokens must be a finite number >= 0"),
        (with_changes(objectives=[{"name": "x", "metric": "m", "direction": "up"}]), "direction must be minimize or maximize"),
        (with_changes(objectives=[]), "objectives: list at least one objective"),
        (with_changes(objectives=[{"name": "x", "metric": "m", "parts": ["a"]}]), "parts must list two or more distinct metrics"),
        (with_changes(objectives=[{"name": "x", "metric": "m", "parts": ["a", "a"]}]), "parts must list two or more distinct metrics"),
        (with_changes(objectives=[{"name": "x", "metric": "m", "parts": ["m", "a"]}]), "parts lists its own metric 'm'"),
        (with_changes(objectives=[{"name": "x", "metric": "m", "parts": ["a", "b"]}, {"name": "y", "metric": "n", "parts": ["b", "c"]}]),
         "part 'b' is already a part of objective 'x'"),
        (with_changes(objectives=[{"name": "x", "metric": "m", "parts": "a, b"}]), "objectives[0].parts: expected a list"),
        (with_changes(fidelities=[{"name": "f", "tokens": 0}]), "fidelity 'f': tokens must be > 0"),
        (with_changes(batch_size=0), "batch_size must be >= 1"),
        (with_changes(granularity=0.3), "granularity must be in (0, 0.1]"),
        (with_changes(constraints=[{"name": "g", "sources": ["wbe"], "min": 0.2}]), "unknown source 'wbe': did you mean 'web'?"),
        (with_changes(fidelities=[{"name": "micro", "tokens": 1e9, "match_repetition": "integraton"},
                                  {"name": "integration", "tokens": 1e10}]),
         "fidelity 'micro': match_repetition names unknown fidelity 'integraton': did you mean 'integration'?"),
        (with_changes(fidelities=[{"name": "micro", "tokens": 1e9, "match_repetition": "small"},
                                  {"name": "small", "tokens": 1e8}]),
         "fidelity 'micro': match_repetition names 'small' of 1e+08 tokens, not more than its own 1e+09"),
        (with_changes(fidelities=[{"name": "a", "tokens": 1e8, "match_repetition": "b"},
                                  {"name": "b", "tokens": 1e9, "match_repetition": "c"}, {"name": "c", "tokens": 1e10}]),
         "fidelity 'a': match_repetition names 'b', which matches 'c' itself: name the final target"),
        (with_changes(sources=[{"name": "web", "token_dtype": "unit16"}]),
         "source 'web': unknown token_dtype 'unit16': did you mean 'uint16'?"),
        (with_changes(sources=[{"name": "web", "eos_token_id": -1}]), "source 'web': eos_token_id must be a token id >= 0"),
        (with_changes(fidelities=[{"name": "m", "tokens": 1e9, "proxy": "merge"}]),
         "fidelity 'm': proxy: merge needs the microanneal runner (runner 'synthetic' cannot merge checkpoints): "
         "set runner: microanneal or remove proxy"),
        (with_changes(fidelities=[{"name": "m", "tokens": 1e9, "proxy": "soup"}], runner="microanneal"),
         "fidelity 'm': unknown proxy 'soup': the one proxy is merge"),
        (with_changes(fidelities=[{"name": "m", "tokens": 1e9, "proxy": "merge", "merge_scale": 0}], runner="microanneal"),
         "fidelity 'm': merge_scale must be > 0"),
        (with_changes(fidelities=[{"name": "m", "tokens": 1e9, "merge_scale": 0.5}]),
         "fidelity 'm': merge_scale is the scale of a merge proxy: add proxy: merge or remove merge_scale"),
        ("name: x\nsources: [{name: a}]\n", "missing required key 'objectives'"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: [unclosed\n", "not valid YAML at line"),
    ],
)
def test_bad_configs_name_the_key_and_the_fix(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_fidelity_matching_the_targets_repetition_has_its_pools_and_caps():
    text = with_changes(
        sources=[{"name": "web"}, {"name": "code", "tokens": 2e9, "max_repetition": 2, "token_dtype": "uint32",
                                   "eos_token_id": 100257}],
        fidelities=[{"name": "micro", "tokens": 1e9, "match_repetition": "integration"},
                    {"name": "plain", "tokens": 1e9}, {"name": "integration", "tokens": 1e10}],
    )
    config = parse_config(text)
    assert config.pool_fraction("micro") == {"web": 0.1, "code": 0.1}
    assert config.pool_fraction("integration") == {} and config.pool_fraction("plain") == {}
    code = config.space("micro").names.index("code")
    # Each source's pool at micro is a tenth of it, so its cap is the integration run's: 2 x 2e9 / 1e10.
    assert config.space("micro").upper[code] == pytest.approx(0.4) == config.space("integration").upper[code]
    assert config.space("plain").upper[code] == 1.0  # the same budget without matching: 2 x 2e9 / 1e9 > 1
    assert config.space("micro").token_budget == 1e9  # the export budget stays the fidelity's own
    source = config.space("micro").sources[code]
    assert (source.token_dtype, source.eos_token_id) == ("uint32", 100257)


def test_infeasible_space_is_rejected_at_load_time_at_every_fidelity():
    # 1e9 tokens x 1 epoch caps 'code' at 0.1 of the 1e10 integration budget, below its minimum 0.3.
    text = with_changes(
        sources=[{"name": "web"}, {"name": "code", "tokens": 1e9, "max_repetition": 1, "min_weight": 0.3}],
        fidelities=[{"name": "micro", "tokens": 1e9}, {"name": "integration", "tokens": 1e10}],
    )
    with pytest.raises(InfeasibleSpaceError, match="source 'code': min weight 0.3 is above its repetition cap 0.1"):
        parse_config(text)


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no study config at"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_fidelity_lookup_names_the_choices():
    with pytest.raises(ConfigError, match=r"unknown fidelity 'full': this study has \['microanneal'\]"):
        parse_config(MINIMAL).fidelity("full")


def test_a_config_loaded_by_a_relative_path_has_an_absolute_folder(tmp_path: Path, monkeypatch):
    """Paths built from the study's folder (run outputs, merged checkpoints) must not depend on the working
    directory: a relative one was resolved twice against the folder (runs/x -> study/study/runs/x)."""
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "study.yaml").write_text(SYNTHETIC_STUDY.read_text())
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("study/study.yaml"))
    assert config.directory == tmp_path / "study" and config.directory.is_absolute()
