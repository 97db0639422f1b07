"""Realisable mixtures (``mixopt study export --realisable``): the snapped mixture is n / N with whole
instances n, inside the space, and OLMo-core's own ``SourceMixtureDatasetConfig.build`` realises exactly the
ratios the export writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_export_olmocore import LAYOUT, build, files_space, source_mixture, token_file

from mixopt.errors import ConfigError
from mixopt.export import TrainerLayout, olmo_core_audit, render
from mixopt.handoff import realisable_snap
from mixopt.realisable import olmo_core_realised, realisable_mixture
from mixopt.search.base import Searcher
from mixopt.search.recommend import recommend_search
from mixopt.space import Group, MixtureSpace, Source
from mixopt.trials import History
from study_helpers import assert_one_line_error, run_mixopt, write_study

N = 400  # LAYOUT at 50,000 tokens: 25 global batches of 2,048 tokens, 16 instances of 128 tokens each


def exported_shares(export: Path) -> dict[str, float]:
    return {s["source_name"]: s["target_ratio"] for s in yaml.safe_load(export.read_text())["source_list"]["sources"]}


# Balanced; sparse (code 0); math past its cap of 2 epochs of 15,000 tokens (0.586 of the 51,200 read).
MIXTURES = {"balanced": [0.5, 0.3, 0.2], "sparse": [0.6, 0.0, 0.4], "at cap": [0.2, 0.2, 0.6]}


@pytest.mark.parametrize("case", list(MIXTURES))
def test_olmo_core_builds_exactly_the_ratios_of_a_realisable_export(tmp_path: Path, case: str):
    source_mixture()
    space = files_space(tmp_path, {"web": 60_000, "code": 40_000, "math": 15_000}, 50_000, math=2.0)
    snapped = realisable_snap(space, LAYOUT)(np.array(MIXTURES[case]))
    export = tmp_path / "mix.yaml"
    export.write_text(render(space, snapped, "olmo-core", layout=LAYOUT, realisable=True))
    built, asked = build(export), exported_shares(export)
    total = sum(built.values())
    assert total == N * 128 == yaml.safe_load(export.read_text())["requested_tokens"]
    assert {name: tokens / total for name, tokens in built.items()} == asked  # exactly, as floats
    assert all(tokens % 128 == 0 for tokens in built.values())
    assert olmo_core_audit(export.read_text()).total_variation == 0.0
    assert "code" not in built if case == "sparse" else set(built) == set(space.names)
    if case == "at cap":
        assert 2 - 128 / 15_000 < built["math"] / 15_000 <= 2.0  # the most whole instances within 2 epochs


def test_a_source_read_from_several_files_over_several_epochs_is_moved_to_what_olmo_core_realises(tmp_path: Path):
    """qa's 7,777 tokens leave 97 after 60 instances of 128: at almost 3 epochs two leftovers are lost to the
    batch's rounding and only one comes back, so n / N is not what OLMo-core builds; the snap, checked with
    OLMo-core's build, moves to a mixture it builds exactly."""
    source_mixture()
    layout = TrainerLayout("uint16", sequence_length=128, global_batch_size=384)
    space = MixtureSpace((Source("web", max_repetition=1, paths=(token_file(tmp_path / "w1.bin", 30_001),
                                                                 token_file(tmp_path / "w2.bin", 25_555))),
                          Source("math", max_repetition=4, paths=(token_file(tmp_path / "m1.bin", 3_100),
                                                                  token_file(tmp_path / "m2.bin", 2_990))),
                          Source("qa", max_repetition=3, paths=(token_file(tmp_path / "qa.bin", 7_777),))),
                         token_budget=50_000)
    weights = np.array([0.4, 0.14, 0.46])
    on_grid = realisable_mixture(space, weights, layout)
    assert not np.array_equal(olmo_core_realised(space, on_grid, layout), on_grid)
    snapped = realisable_snap(space, layout)(weights)
    assert np.array_equal(olmo_core_realised(space, snapped, layout), snapped)
    assert np.array_equal(realisable_snap(space, layout)(snapped), snapped)
    export = tmp_path / "mix.yaml"
    export.write_text(render(space, snapped, "olmo-core", layout=layout, realisable=True))
    built = build(export)
    assert {n: t / sum(built.values()) for n, t in built.items()} == exported_shares(export)


def test_the_snap_is_on_the_instance_grid_inside_the_space_idempotent_and_near():
    """No OLMo-core here: the grid n / N alone, in a space with bounds, a group and a repetition cap."""
    space = MixtureSpace((Source("web", tokens=1e6, min_weight=0.2), Source("code", tokens=1e6, max_weight=0.3),
                          Source("math", tokens=6_000, max_repetition=2), Source("qa", tokens=1e6)),
                         groups=(Group("reasoning", ("code", "math"), min_weight=0.25),), token_budget=50_000)
    read = space.with_budget(N * 128)  # the caps at the tokens OLMo-core reads
    for w in space.sample(200, seed=3):
        snapped = realisable_mixture(space, w, LAYOUT)
        units = snapped * N
        assert np.allclose(units, np.round(units), atol=1e-9) and np.round(units).sum() == N
        assert space.is_feasible(snapped) and snapped[2] * N * 128 <= 2 * 6_000  # the cap at the tokens read
        assert np.array_equal(realisable_mixture(space, snapped, LAYOUT), snapped)
        assert 0.5 * np.abs(snapped - read.project(w)).sum() <= space.dim / (2 * N) + 1e-12  # under 1 instance each


def test_a_space_with_no_realisable_mixture_is_one_line():
    space = MixtureSpace((Source("web"), Source("math", fixed_weight=0.123)), token_budget=50_000)
    with pytest.raises(ConfigError) as refused:
        realisable_mixture(space, [0.877, 0.123], LAYOUT)
    assert str(refused.value) == ("no mixture OLMo-core realises exactly (400 instances of 128 tokens, 51,200 tokens "
                                  "in batches of 2,048) fits this space: no mixture on a grid of 0.0025 fits the "
                                  "source bounds (source 'math' has no grid value within its bounds)")
    with pytest.raises(ConfigError, match=r"needs a token budget"):
        realisable_mixture(space.with_budget(None), [0.877, 0.123], LAYOUT)
    free = MixtureSpace((Source("web"), Source("math")), token_budget=50_000)
    with pytest.raises(ConfigError) as moving:  # a trainer that always realises the mixture reversed
        realisable_mixture(free, [0.7, 0.3], LAYOUT, realise=lambda w: w[::-1])
    assert str(moving.value).startswith("OLMo-core realises no mixture exactly near this one (400 instances") and \
        "\n" not in str(moving.value)


class Linear(Searcher):
    """A model-keeping searcher whose posterior mean is ``W @ coefficients`` (sd 0)."""

    coefficients = np.array([[1.0], [2.0], [4.0]])

    def propose(self, space, history, n, *, seed):
        return space.sample(n, seed=seed)

    def predictor(self, space, history, *, seed):
        return lambda W: (W @ self.coefficients, np.zeros((len(W), 1)))


def test_a_snapped_recommendation_predicts_the_snapped_mixture():
    space = MixtureSpace((Source("web"), Source("code"), Source("math")), token_budget=50_000)
    W = space.sample(6, seed=0)
    history = History(W, (W @ Linear.coefficients), ("minimize",))
    plain = recommend_search(Linear(), space, history, seed=0)
    snapped = recommend_search(Linear(), space, history, seed=0, snap=lambda w: realisable_mixture(space, w, LAYOUT))
    assert plain.snapped_from is None and np.array_equal(snapped.snapped_from, plain.weights)
    assert np.array_equal(snapped.weights, realisable_mixture(space, plain.weights, LAYOUT))
    assert snapped.predicted == pytest.approx(snapped.weights @ Linear.coefficients)
    assert snapped.distance == pytest.approx(0.5 * np.abs(W - snapped.weights).sum(axis=1).min())


def test_study_export_realisable_writes_what_olmo_core_realises(tmp_path: Path):
    source_mixture()
    sizes = {"web": 60_000, "code": 40_000, "math": 15_000}
    sources = [{"name": n, "tokens": k, "max_repetition": 2, "paths": [token_file(tmp_path / f"{n}.bin", k)],
                "token_dtype": "uint16"} for n, k in sizes.items()]
    config = write_study(tmp_path, {"name": "files", "sources": sources, "constraints": [],
                                    "fidelities": [{"name": "microanneal", "tokens": 5_000},
                                                   {"name": "integration", "tokens": 50_000}]})
    for trial in json.loads(run_mixopt("study", "ask", config, "-n", "3", cwd=tmp_path).stdout):
        assert run_mixopt("study", "tell", config, "--trial", str(trial["trial"]), "--values", "1,2,3",
                          cwd=tmp_path).returncode == 0
    layout = ("--sequence-length", "128", "--global-batch-size", "2048")
    for choice in (("--pick", "recommended"), ("--trial", "1")):
        out = tmp_path / "mix.yaml"
        result = run_mixopt("study", "export", config, *choice, *layout, "--realisable", "--audit", "-o", out,
                            cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "total-variation distance, requested vs realised: 0.0000" in result.stderr
        text = out.read_text()
        what = "the model's recommendation" if choice[0] == "--pick" else "trial 1's mixture"
        assert f" from {what}\n" in text and "# snapped: to whole instances, total-variation distance 0.0" in text
        assert "# realisable: ratios are whole instances of 400 (25 global batches of 2,048 tokens)" in text
        built = build(out)
        assert {n: t / sum(built.values()) for n, t in built.items()} == exported_shares(out)
    assert_one_line_error(run_mixopt("study", "export", config, "--realisable", "--format", "plain", cwd=tmp_path), 2,
                          "--realisable snaps olmo-core exports")
