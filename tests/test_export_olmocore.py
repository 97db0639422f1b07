"""olmo-core exports judged by OLMo-core itself (``ai2-olmo-core``): every file loads with
``SourceMixtureDatasetConfig.from_yaml`` (its ``source_list`` part with ``SourceMixtureList``) and builds on
real raw token files, read with the ``build`` arguments its header names; a mixture OLMo-core refuses at
build is refused by mixopt before a file is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from mixopt.export import IncompleteExport, TrainerLayout, audit_lines, olmo_core_audit, render
from mixopt.space import MixtureSpace, Source
from study_helpers import missing_component, run_mixopt, tiny_base_model, write_study

LAYOUT = TrainerLayout("uint16", sequence_length=128, global_batch_size=2048)


def source_mixture():
    """OLMo-core's ``olmo_core.data.source_mixture`` module (missing: skipped here, a failure under CI=true)."""
    try:
        from olmo_core.data import source_mixture
    except ImportError:
        missing_component("ai2-olmo-core is not installed: pip install -e '.[test]'")
    return source_mixture


def token_file(path: Path, tokens: int, dtype: str = "uint16") -> str:
    """A raw token file (no header, as Dolma writes them) of ``tokens`` ids; its path."""
    (np.arange(tokens) % 1000).astype(dtype).tofile(path)
    return str(path)


def build(export: Path) -> dict[str, int]:
    """Tokens per source in the dataset OLMo-core builds from ``export``, loaded as its users load it: the
    whole file as a ``SourceMixtureDatasetConfig``, its ``source_list`` part as a ``SourceMixtureList``,
    built with the dtype and sequence length its header names."""
    sm = source_mixture()
    part = export.with_name("source_list.yaml")
    part.write_text(yaml.safe_dump(yaml.safe_load(export.read_text())["source_list"]))
    sm.SourceMixtureList.from_yaml(part).validate()
    config = sm.SourceMixtureDatasetConfig.from_yaml(export)
    config.render_tables, config.quiet = False, True
    match = re.search(r"\.build\(npdtype=numpy\.(\w+), sequence_length=(\d+)\)", export.read_text())
    assert match, "the header names the build arguments"
    dataset = config.build(npdtype=getattr(np, match[1]), sequence_length=int(match[2]))
    return {s.name: sum(p.tokens for p in s.path_tokens) for s in dataset.sources}


def files_space(tmp_path: Path, sizes: dict[str, int], budget: float, **caps: float) -> MixtureSpace:
    """Sources on raw uint16 files of ``sizes`` tokens (the config counts 10x more: a stale count), repetition
    caps ``caps`` (default 1), at a budget of ``budget`` tokens."""
    return MixtureSpace(tuple(Source(name, tokens=10.0 * n, max_repetition=caps.get(name, 1.0),
                                     paths=(token_file(tmp_path / f"{name}.bin", n),), token_dtype="uint16")
                              for name, n in sizes.items()), token_budget=budget)


@pytest.mark.parametrize("weights", [[0.5, 0.3, 0.2], [0.6, 0.4, 0.0], [0.2, 0.2, 0.6]])
def test_every_export_loads_and_builds_in_olmo_core(tmp_path: Path, weights: list[float]):
    space = files_space(tmp_path, {"web": 60_000, "code": 40_000, "math": 30_000}, 50_000, math=2.0)
    export = tmp_path / "mix.yaml"
    export.write_text(render(space, weights, "olmo-core", layout=LAYOUT))
    built = build(export)
    assert list(built) == [n for n, w in zip(space.names, weights, strict=True) if w > 0]
    assert sum(built.values()) == 25 * 2048  # whole batches: ceil(50,000 / 2048) steps (the audit shows the shares)


def test_sources_of_weight_0_are_left_out_and_listed_unless_kept(tmp_path: Path):
    space = files_space(tmp_path, {"web": 60_000, "code": 40_000, "math": 30_000}, 50_000)
    text = render(space, [0.7, 0.0, 0.3], "olmo-core", layout=LAYOUT)
    assert "# left_out_weight_0: code\n" in text
    assert [s["source_name"] for s in yaml.safe_load(text)["source_list"]["sources"]] == ["web", "math"]
    (tmp_path / "sparse.yaml").write_text(text)
    assert set(build(tmp_path / "sparse.yaml")) == {"web", "math"}
    kept = render(space, [0.7, 0.0, 0.3], "olmo-core", layout=LAYOUT, keep_zero=True)
    assert "left_out" not in kept
    (tmp_path / "kept.yaml").write_text(kept)
    # Kept, a source of weight 0 still gets instances: OLMo-core spreads the batch's rounding over every path.
    assert build(tmp_path / "kept.yaml")["code"] > 0
    plain = yaml.safe_load(render(space, [0.7, 0.0, 0.3], "plain"))
    assert plain == {"web": 0.7, "code": 0.0, "math": 0.3}  # only olmo-core leaves sources out


@pytest.mark.parametrize("tokens", [20_000, 29_999, 30_000, 40_000])
def test_mixopt_refuses_exactly_what_olmo_core_refuses(tmp_path: Path, tokens: int):
    """A share of 0.6 of 100,000 tokens needs 60,000 tokens of math: at 2 epochs, 30,000 in its file suffice.
    The config's count (10x the file) lets the space allow it; the file decides, for both readers."""
    sm = source_mixture()
    space = files_space(tmp_path, {"web": 100_000, "math": tokens}, 100_000, math=2.0)
    export = tmp_path / "mix.yaml"
    fits = tokens * 2 >= 60_000
    if fits:
        export.write_text(render(space, [0.4, 0.6], "olmo-core", layout=LAYOUT))
        assert build(export)["math"] > 60_000 - 2 * 128  # at its cap: whole instances of each epoch
        return
    with pytest.raises(IncompleteExport) as refused:
        render(space, [0.4, 0.6], "olmo-core", layout=LAYOUT)
    message = str(refused.value)
    assert "\n" not in message and refused.value.sources == ("math",)
    assert message.startswith(f"olmo-core export refused: source math has {tokens:,} uint16 tokens in its files, "
                              "too few for its share 0.6 of 100,000 tokens (60,000) at max_repetition_ratio 2: "
                              "lower its share, raise its max_repetition or add data")
    export.write_text(render(space, [0.4, 0.6], "olmo-core", layout=LAYOUT, allow_incomplete=True))
    assert export.read_text().startswith("# WARNING: incomplete, not loadable as it is: source math has")
    with pytest.raises(sm.OLMoConfigurationError, match=r"Insufficient tokens for source: math @ target global ratio: 0\.6"):
        build(export)


def test_a_max_weight_is_no_limit_on_the_files_olmo_core_may_read(tmp_path: Path):
    """OLMo-core's max_source_fraction caps the share of a source's files it reads, not its mixture share: a
    source capped at half the mixture whose file holds just its half builds (written as a fraction, it would not)."""
    space = MixtureSpace((Source("web", paths=(token_file(tmp_path / "web.bin", 50_000),)),
                          Source("math", max_weight=0.5, paths=(token_file(tmp_path / "math.bin", 50_000),))),
                         token_budget=100_000)
    (tmp_path / "mix.yaml").write_text(render(space, [0.5, 0.5], "olmo-core", layout=LAYOUT))
    assert "max_source_fraction" not in (tmp_path / "mix.yaml").read_text()
    assert build(tmp_path / "mix.yaml")["math"] > 49_000


def test_a_source_given_as_text_is_refused_with_the_fix(tmp_path: Path):
    (tmp_path / "web.jsonl").write_text('{"text": "hello"}\n')
    space = MixtureSpace((Source("web", paths=(str(tmp_path / "web.jsonl"),)), Source("code", paths=(str(tmp_path),))))
    with pytest.raises(IncompleteExport, match=r"sources name text files or folders, which OLMo-core reads as token "
                       r"ids: web \(.*web\.jsonl\), code \(.*\): name their token files \(the microanneal runner "
                       r"tokenizes text into them\)"):
        render(space, [0.5, 0.5], "olmo-core")
    assert "WARNING" not in render(space, [0.5, 0.5], "plain")


def test_a_path_that_matches_no_file_is_refused_before_olmo_core_meets_it(tmp_path: Path):
    space = MixtureSpace((Source("web", paths=(str(tmp_path / "gone.bin"),)), Source("code", paths=("s3://bucket/*.npy",))),
                         token_budget=1000)
    with pytest.raises(Exception, match=r"source path .*gone\.bin matches no file: fix sources\[\]\.paths"):
        render(space, [0.5, 0.5], "olmo-core", layout=LAYOUT)
    assert "WARNING" not in render(space, [0.0, 1.0], "olmo-core", layout=LAYOUT)  # remote paths are not counted


def test_study_export_refuses_a_source_too_small_for_its_share_before_writing(tmp_path: Path):
    sm = source_mixture()
    files = {"web": 300_000, "code": 300_000, "math": 20_000}
    sources = [{"name": n, "tokens": 1_000_000, "max_repetition": 2, "paths": [token_file(tmp_path / f"{n}.bin", k)],
                "token_dtype": "uint16"} for n, k in files.items()]
    sources[2]["fixed_weight"] = 0.3  # 0.3 x 200,000 = 60,000 tokens: the file holds 20,000 (40,000 at 2 epochs)
    config = write_study(tmp_path, {"name": "files", "sources": sources, "constraints": [],
                                    "fidelities": [{"name": "microanneal", "tokens": 20_000},
                                                   {"name": "integration", "tokens": 200_000}]})
    (trial,) = json.loads(run_mixopt("study", "ask", config, cwd=tmp_path).stdout)
    assert run_mixopt("study", "tell", config, "--trial", str(trial["trial"]), "--values", "1,1,1", cwd=tmp_path).returncode == 0
    out = tmp_path / "mix.yaml"
    refused = run_mixopt("study", "export", config, "--trial", str(trial["trial"]), "-o", out, cwd=tmp_path)
    assert refused.returncode != 0 and not out.exists()
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert "source math has 20,000 uint16 tokens in its files, too few for its share 0.3 of 200,000 tokens (60,000) " \
           "at max_repetition_ratio 2: lower its share, raise its max_repetition or add data" in refused.stderr
    forced = run_mixopt("study", "export", config, "--trial", str(trial["trial"]), "-o", out, "--allow-incomplete",
                        "--sequence-length", "128", "--global-batch-size", "2048", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    with pytest.raises(sm.OLMoConfigurationError, match="Insufficient tokens for source: math"):
        build(out)


# A balanced mixture, a sparse one (code left out) and one with math at its cap (2 epochs of 15,000 tokens).
AUDITED = {"balanced": [0.5, 0.3, 0.2], "sparse": [0.6, 0.0, 0.4], "at cap": [0.2, 0.2, 0.6]}


@pytest.mark.parametrize("case", list(AUDITED))
def test_the_audit_realises_what_olmo_cores_built_dataset_holds(tmp_path: Path, case: str):
    source_mixture()
    space = files_space(tmp_path, {"web": 60_000, "code": 40_000, "math": 15_000}, 50_000, math=2.0)
    text = render(space, AUDITED[case], "olmo-core", layout=LAYOUT)
    (tmp_path / "mix.yaml").write_text(text)
    built = build(tmp_path / "mix.yaml")
    audit = olmo_core_audit(text)
    assert {r.name: r.realised_tokens for r in audit.sources} == built
    total = sum(built.values())
    for r, w in zip(audit.sources, [w for w in AUDITED[case] if w], strict=True):
        assert r.requested_share == w and r.requested_tokens == int(50_000 * w)
        assert r.realised_share == built[r.name] / total
    assert audit.total_variation == pytest.approx(0.5 * sum(abs(built[r.name] / total - r.requested_share) for r in audit.sources))
    assert 0 < audit.total_variation < 0.02 and audit.zero_instances == ()
    math = audit.sources[-1]
    assert math.epochs == built["math"] / 15_000
    assert audit.over_cap == () and (case != "at cap" or math.epochs > 1.98)
    lines = audit_lines(audit)
    assert lines[-3] == f"total-variation distance, requested vs realised: {audit.total_variation:.4f}"
    assert lines[-2:] == ["sources with zero instances: none", "repetition caps exceeded: none"]


def test_the_audit_flags_a_repetition_cap_that_olmo_cores_apportionment_exceeds(tmp_path: Path):
    """1.476 epochs of math are asked for (cap 1.5); the batch's rounding, spread evenly over the paths with
    room, gives it 1.574."""
    space = files_space(tmp_path, {"web": 60_000, "math": 10_000}, 41_000, math=1.5)
    text = render(space, [0.64, 0.36], "olmo-core", layout=LAYOUT)
    (tmp_path / "mix.yaml").write_text(text)
    audit = olmo_core_audit(text)
    assert {r.name: r.realised_tokens for r in audit.sources} == build(tmp_path / "mix.yaml") == {"web": 27_264, "math": 15_744}
    assert audit.sources[1].epochs == 1.5744 and audit.over_cap == ("math",)
    assert audit_lines(audit)[-1] == "repetition caps exceeded: math"


def test_study_export_prints_the_audit(tmp_path: Path):
    source_mixture()
    sources = [{"name": n, "tokens": 300_000, "max_repetition": 1, "paths": [token_file(tmp_path / f"{n}.bin", 300_000)],
                "token_dtype": "uint16"} for n in ("web", "code", "math")]
    config = write_study(tmp_path, {"name": "files", "sources": sources, "constraints": [],
                                    "fidelities": [{"name": "microanneal", "tokens": 20_000},
                                                   {"name": "integration", "tokens": 200_000}]})
    (trial,) = json.loads(run_mixopt("study", "ask", config, cwd=tmp_path).stdout)
    run_mixopt("study", "tell", config, "--trial", str(trial["trial"]), "--values", "1,1,1", cwd=tmp_path)
    result = run_mixopt("study", "export", config, "--trial", str(trial["trial"]), "--audit", "--sequence-length", "128",
                        "--global-batch-size", "4096", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# mixopt_version: ")  # the audit goes to stderr, the file to stdout
    (tmp_path / "mix.yaml").write_text(result.stdout)
    built = build(tmp_path / "mix.yaml")
    rows = {line.split()[0]: line.split() for line in result.stderr.splitlines()[1:4]}
    assert {name: int(row[4].replace(",", "")) for name, row in rows.items()} == built
    assert "total-variation distance, requested vs realised: " in result.stderr
    bad = run_mixopt("study", "export", config, "--trial", str(trial["trial"]), "--audit", "--format", "plain", cwd=tmp_path)
    assert bad.returncode != 0 and "--audit builds olmo-core exports" in bad.stderr


@pytest.mark.slow
def test_the_default_study_runs_to_a_complete_export_that_builds_on_the_demos_token_files(tmp_path: Path):
    """`mixopt study run` of the default study (on a tiny base model: the real one takes minutes to pretrain)
    ends with an export naming the token files its runs read the demo's sources from, with no warning;
    OLMo-core builds it on them."""
    from mixopt.demo.base import train_tokenizer
    from mixopt.demo.data import SOURCES, ensure_data

    source_mixture()
    data = ensure_data()
    texts = [json.loads(line)["text"] for name in SOURCES for line in data.source(name).read_text().splitlines()[:40]]
    model = tiny_base_model(train_tokenizer(texts, vocab_size=512), tmp_path / "base")
    config = yaml.safe_load((Path(__file__).parents[1] / "studies" / "default" / "study.yaml").read_text())
    config.update(fidelities=[{"name": "microanneal", "tokens": 4096, "model": str(model)},
                              {"name": "integration", "tokens": 65_536, "model": str(model)}],
                  searcher="random", executor={"name": "serial"}, n_trials=2, batch_size=2)
    config["runner"]["options"].update(block_size=64, batch_size=4, task_items=10)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_mixopt("study", "run", path, "--no-report", cwd=tmp_path, timeout=1200)
    assert result.returncode == 0, result.stderr
    assert "incomplete" not in result.stdout + result.stderr
    export = tmp_path / "exports" / "default.yaml"
    text = export.read_text()
    assert "WARNING" not in text and f"# tokenizer: {model}\n" in text
    assert ".build(npdtype=numpy.uint16, sequence_length=64)" in text
    sources = yaml.safe_load(text)["source_list"]["sources"]
    assert all(Path(s["paths"][0]).name == "tokens.bin" and Path(s["paths"][0]).is_file() for s in sources)
    built = build(export)
    assert set(built) == {s["source_name"] for s in sources} and sum(built.values()) == 65_536
