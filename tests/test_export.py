"""YAML export: every dialect loads, its ratios are decimals summing to exactly 1, every constraint holds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml

import mixopt
from mixopt.errors import ConfigError
from mixopt.export import DIALECTS, IncompleteExport, grid_decimals, render, write_atomic
from mixopt.space import Group, MixtureSpace, Source


def written_ratios(text: str, dialect: str) -> dict[str, Decimal]:
    """Source -> ratio exactly as written: scalars read as strings (BaseLoader), then as decimals."""
    body = yaml.load(text, Loader=yaml.BaseLoader)
    if dialect == "plain":
        return {name: Decimal(r) for name, r in body.items()}
    sources = body["source_list"]["sources"] if dialect == "olmo-core" else body["dataset"]["sources"]
    key = "source_name" if dialect == "olmo-core" else "name"
    return {s[key]: Decimal(s["target_ratio"]) for s in sources}


def assert_exports_hold(space: MixtureSpace, weights: np.ndarray, granularity: float = 1e-4) -> None:
    """Render ``weights`` in every dialect and check the file against every constraint of ``space``."""
    for dialect in DIALECTS:
        text = render(space, weights, dialect, granularity, provenance={"study": "t", "trial": 3}, allow_incomplete=True,
                      keep_zero=True)
        assert isinstance(yaml.safe_load(text), dict)
        ratios = written_ratios(text, dialect)
        assert list(ratios) == list(space.names)
        assert sum(ratios.values()) == 1
        assert all(r % Decimal(repr(granularity)) == 0 for r in ratios.values())
        assert exact_violations(space, ratios) == []


def exact(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def exact_violations(space: MixtureSpace, ratios: dict[str, Decimal]) -> list[str]:
    """Constraints the written decimals break, compared exactly with each bound's shortest decimal (as a user writes it)."""
    out = []
    for name, lo, hi in zip(space.names, space.lower, space.upper, strict=True):
        if not exact(lo) <= ratios[name] <= exact(hi):
            out.append(f"{name}: {ratios[name]} outside [{lo}, {hi}]")
    for group in space.groups:
        total = sum(ratios[name] for name in group.sources)
        if not exact(group.min_weight) <= total <= exact(group.max_weight):
            out.append(f"group {group.name}: {total} outside [{group.min_weight}, {group.max_weight}]")
    return out


# One space per constraint type, and a mixture pushed onto that constraint's face (off the decimal grid).
CONSTRAINT_CASES = {
    "min weight": (MixtureSpace((Source("web", min_weight=0.35), Source("code"), Source("math"))), [0.0, 0.7, 0.3]),
    "max weight": (MixtureSpace((Source("web"), Source("code", max_weight=0.23456), Source("math"))), [0.1, 0.8, 0.1]),
    "fixed weight": (MixtureSpace((Source("web"), Source("code", fixed_weight=0.125), Source("math"))), [0.5, 0.0, 0.5]),
    # cap = 3 epochs x 1.1111e9 tokens / 1e10 budget = 0.33333 (not on the grid)
    "repetition cap": (
        MixtureSpace((Source("web"), Source("math", tokens=1.1111e9, max_repetition=3.0), Source("qa")), token_budget=1e10),
        [0.0, 0.9, 0.1],
    ),
    "group min": (
        MixtureSpace((Source("web"), Source("books"), Source("code")), (Group("anchor", ("web", "books"), min_weight=0.61803),)),
        [0.1, 0.1, 0.8],
    ),
    "group max": (
        MixtureSpace((Source("web"), Source("code"), Source("math"), Source("qa")), (Group("stem", ("code", "math"), max_weight=0.31416),)),
        [0.05, 0.5, 0.4, 0.05],
    ),
}


@pytest.mark.parametrize("case", list(CONSTRAINT_CASES))
def test_every_constraint_type_holds_in_every_dialect(case: str):
    space, target = CONSTRAINT_CASES[case]
    on_face = space.project(np.array(target))
    assert space.is_feasible(on_face)
    assert_exports_hold(space, on_face)
    for w in space.sample(5, seed=1):
        assert_exports_hold(space, w)


def test_all_constraints_together_on_the_synthetic_space():
    space = MixtureSpace(
        (
            Source("web", tokens=5e11, max_repetition=1),
            Source("code", tokens=4e10, max_repetition=4, max_weight=0.5),
            Source("math", tokens=1e10, max_repetition=4, max_weight=0.4),
            Source("qa", min_weight=0.05),
            Source("books", tokens=3e10, max_repetition=2),
            Source("instructions", fixed_weight=0.1),
        ),
        (Group("anchor", ("web", "books"), min_weight=0.3), Group("stem", ("code", "math"), max_weight=0.45)),
        token_budget=1e11,
    )
    for granularity in (1e-2, 1e-3, 1e-4):
        for w in space.sample(10, seed=2):
            assert_exports_hold(space, w, granularity)


def test_dialects_carry_caps_budget_paths_and_a_provenance_header():
    space = MixtureSpace(
        (Source("web", paths=("s3://web/*.npy",)), Source("math", tokens=1e9, max_repetition=4, paths=("s3://math/*.npy",))),
        token_budget=1e10,
    )
    w = np.array([0.7, 0.3])
    core = render(space, w, "olmo-core", provenance={"study": "s", "trial": 7})
    assert core.startswith(f"# mixopt_version: {mixopt.__version__}\n# dialect: olmo-core\n# study: s\n# trial: 7\n")
    body = yaml.safe_load(core)
    web, math = body["source_list"]["sources"]
    assert web == {"source_name": "web", "target_ratio": 0.7, "paths": ["s3://web/*.npy"]}  # max_source_fraction: 1
    assert math == {"source_name": "math", "target_ratio": 0.3, "paths": ["s3://math/*.npy"], "max_repetition_ratio": 4.0}
    assert body["requested_tokens"] == 10_000_000_000
    cookbook = yaml.safe_load(render(space, w, "olmo-cookbook"))
    assert cookbook["max_tokens"] == 10_000_000_000
    assert cookbook["dataset"]["sources"][1]["repetition_factor"] == 4.0
    assert yaml.safe_load(render(space, w, "plain")) == {"web": 0.7, "math": 0.3}


def test_export_refuses_an_infeasible_mixture_and_an_unknown_dialect():
    space = MixtureSpace((Source("web"), Source("math", tokens=1e9, max_repetition=4)), token_budget=1e10)
    with pytest.raises(ConfigError, match="cannot export this mixture at a budget of 1e\\+10 tokens: source 'math'"):
        render(space, np.array([0.5, 0.5]), "plain")
    with pytest.raises(ConfigError, match="unknown export format 'olmo'"):
        render(space, np.array([0.7, 0.3]), "olmo")


def test_grid_decimals_refuses_weights_off_the_grid():
    assert grid_decimals(np.array([0.25, 0.75]), 1e-2) == [0.25, 0.75]
    with pytest.raises(ConfigError, match="rounded to the study's grid"):
        grid_decimals(np.array([0.3, 0.3]), 1e-2)


def test_write_atomic_replaces_the_file_and_leaves_no_temporaries(tmp_path: Path):
    target = tmp_path / "mix.yaml"
    target.write_text("old")
    write_atomic(target, "web: 1.0\n")
    assert target.read_text() == "web: 1.0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mix.yaml"]
    with pytest.raises(ConfigError, match="folder .* does not exist"):
        write_atomic(tmp_path / "missing" / "mix.yaml", "x")


# -- what the readers require ------------------------------------------------------------------------------
def test_a_structured_export_its_reader_would_refuse_names_the_sources_and_the_fix():
    """OLMo-core's SourceMixtureConfig (and olmo-cookbook) refuse a source with weight > 0 and empty paths."""
    space = MixtureSpace((Source("web", paths=("s3://web/*.npy",)), Source("code"), Source("math"), Source("qa")))
    w = np.array([0.5, 0.3, 0.2, 0.0])  # qa has no paths either, but weight 0: the reader needs none
    for dialect in ("olmo-core", "olmo-cookbook"):
        with pytest.raises(IncompleteExport) as refused:
            render(space, w, dialect)
        message = str(refused.value)
        assert "\n" not in message and refused.value.sources == ("code", "math")
        assert message.startswith(f"{dialect} export refused: sources code, math have weight > 0 and no paths")
        assert "set sources[].paths" in message and "--allow-incomplete" in message
        text = render(space, w, dialect, allow_incomplete=True, keep_zero=True)
        first, second = text.split("\n")[:2]
        assert first.startswith("# WARNING: incomplete, not loadable as it is: sources code, math have weight > 0")
        assert second == f"# mixopt_version: {mixopt.__version__}"
        sources = yaml.safe_load(text)["source_list" if dialect == "olmo-core" else "dataset"]["sources"]
        assert [s["paths"] for s in sources] == [["s3://web/*.npy"], [], [], []]
    assert not render(space, w, "plain").startswith("# WARNING")  # plain names no paths: nothing to refuse
    complete = MixtureSpace((Source("web", paths=("a",)), Source("code", paths=("b",)), Source("qa")))
    assert "WARNING" not in render(complete, np.array([0.6, 0.4, 0.0]), "olmo-core")
