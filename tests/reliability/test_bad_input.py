"""Bad input never gives a traceback: 1000 generated configs and 1000 generated tables either load or
raise one clear ``ConfigError`` line; through the real command, that is one stderr line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixopt.config import parse_config
from mixopt.errors import ConfigError
from mixopt.tables import read_run_table, target_values

REPO = Path(__file__).resolve().parents[2]
VALID = yaml.safe_load((REPO / "studies" / "synthetic" / "study.yaml").read_text())

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.integers(-2, 2), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@st.composite
def mutated_configs(draw) -> dict:
    """The synthetic study with a few keys replaced by junk, removed, misspelt, or given hostile numbers."""
    config = yaml.safe_load(yaml.safe_dump(VALID))
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(sorted(config)))
        action = draw(st.sampled_from(["junk", "drop", "misspell", "source", "group"]))
        if action == "junk":
            config[section] = draw(junk)
        elif action == "drop":
            config.pop(section, None)
        elif action == "misspell":
            config[section + draw(st.sampled_from(["s", "_", "x"]))] = config.pop(section)
        elif action == "source" and isinstance(config.get("sources"), list) and config["sources"]:
            source = draw(st.sampled_from(config["sources"]))
            if isinstance(source, dict):
                key = draw(st.sampled_from(["tokens", "min_weight", "max_weight", "max_repetition", "fixed_weight", "name", "pathz"]))
                source[key] = draw(st.one_of(junk, st.floats(-2, 2)))
        elif action == "group":
            config["constraints"] = [{"name": "g", "sources": draw(st.lists(st.sampled_from(["web", "code", "nope"]), max_size=3)),
                                      "min": draw(st.floats(-1, 2)), "max": draw(st.floats(-1, 2))}]
        if not config:
            break
    return config


# (kind, outcome) -> examples, printed as figures when the module ends (any other exception fails a test).
OUTCOMES: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def print_figures():
    yield
    for kind in ("config", "table"):
        loaded, rejected = OUTCOMES[kind, "loaded"], OUTCOMES[kind, "rejected"]
        if loaded + rejected:
            print(f"\nFIGURE bad input: {loaded + rejected} generated {kind}s: {loaded} loaded, "
                  f"{rejected} rejected with one ConfigError line")


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_configs())
def test_generated_configs_load_or_fail_with_one_clear_line(config):
    try:
        parse_config(yaml.safe_dump(config))
        OUTCOMES["config", "loaded"] += 1
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        OUTCOMES["config", "rejected"] += 1


cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.text(max_size=5), st.just(""))


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    ratios=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=0, max_size=4),
    metrics=st.lists(st.lists(cells, min_size=2, max_size=2), min_size=0, max_size=4),
    ratio_header=st.lists(st.sampled_from(["run", "a", "b", "c", "", "run "]), min_size=3, max_size=3),
    metric_header=st.lists(st.sampled_from(["run", "loss", "acc", ""]), min_size=2, max_size=2),
    target=st.sampled_from(["loss", "nope", None]),
)
def test_generated_tables_load_or_fail_with_one_clear_line(tmp_path_factory, ratios, metrics, ratio_header, metric_header, target):
    folder = tmp_path_factory.mktemp("tables")
    for name, header, rows in (("r.csv", ratio_header, ratios), ("m.csv", metric_header, metrics)):
        (folder / name).write_text("\n".join([",".join(header)] + [",".join(map(str, row)) for row in rows]) + "\n")
    try:
        table = read_run_table(folder / "r.csv", folder / "m.csv")
        target_values(table.metrics, column=target, expression=None if target else "mean(l*)")
        OUTCOMES["table", "loaded"] += 1
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        OUTCOMES["table", "rejected"] += 1


@pytest.mark.parametrize("change", [
    {"sources": [{"name": "a", "max_weight": 0.2}, {"name": "b", "max_weight": 0.2}]},
    {"batch_size": "four"},
    {"n_trials": -1},
    {"seed": 1.5},
    {"constraints": [{"name": "g", "sources": ["web"], "min": 0.9, "max": 0.1}]},
])
def test_bad_configs_through_the_command_exit_2_with_one_line(tmp_path, change):
    config = {**VALID, **change}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "mixopt.cli", "study", "run", str(tmp_path / "study.yaml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "study.db").exists(), "a rejected config must not create a study"
