"""`mixopt init` on data folders: every source format is found and counted exactly as the microanneal runner
trains on it, the written study.yaml loads, and it runs trials end to end (a tiny Llama on CPU). Real files
made here, a real byte-level BPE trained here, the real command."""

from __future__ import annotations

import json
import random

import numpy as np
import optuna
import pytest
import yaml

from mixopt.config import load_config
from mixopt.errors import ConfigError
from mixopt.scaffold import DATASET_KIND, TEXT_KIND, TOKEN_KIND, scan_source, scan_sources
from study_helpers import run_mixopt

WORDS = "the king said that his horse ran over green hills and slept under old oak trees while rain fell".split()


def prose(rng: random.Random, words: int = 50) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def sums(rng: random.Random) -> str:
    return "\n".join(f"{a} + {b} = {a + b}" for a, b in ((rng.randint(1, 99), rng.randint(1, 99)) for _ in range(6)))


def true_count(tokenizer, documents: list[str]) -> int:
    """Tokens a runner trains on: each non-empty document's ids and one end-of-text token (counted here by hand)."""
    return sum(len(tokenizer(doc, add_special_tokens=False)["input_ids"]) + 1 for doc in documents if doc)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tokenizer and a tiny model saved together, and three source folders: jsonl, parquet, a .npy token array."""
    import datasets

    from mixopt.demo.base import train_tokenizer
    from study_helpers import tiny_base_model

    root = tmp_path_factory.mktemp("scaffold")
    rng = random.Random(0)
    web = [prose(rng) for _ in range(120)] + [""]  # an empty document adds nothing
    code = [sums(rng) for _ in range(150)]
    math = [sums(rng) + " " + prose(rng, 10) for _ in range(120)]
    tokenizer = train_tokenizer(web[:40] + code[:40], vocab_size=400)
    base = tiny_base_model(tokenizer, root / "base")
    (root / "data" / "web").mkdir(parents=True)
    for part, rows in enumerate((web[:60], web[60:])):
        (root / "data" / "web" / f"part-{part}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    (root / "data" / "code").mkdir()
    datasets.Dataset.from_dict({"text": code}).to_parquet(str(root / "data" / "code" / "code.parquet"))
    (root / "data" / "math").mkdir()
    ids = [tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for doc in math]
    stream = np.concatenate([np.asarray(i, dtype=np.uint16) for i in ids])
    np.save(root / "data" / "math" / "math.npy", stream)
    counts = {"web": true_count(tokenizer, web), "code": true_count(tokenizer, code), "math": len(stream)}
    return {"root": root, "tokenizer": tokenizer, "base": base, "counts": counts, "stream": stream}


def test_init_counts_every_format_exactly_and_writes_a_config_that_loads(world, tmp_path):
    data = world["root"] / "data"
    out = tmp_path / "study" / "study.yaml"  # its folder is made by init, as for a new study
    result = run_mixopt("init", data / "web", data / "code", data / "math", "--tokenizer", world["base"],
                        "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}; check it, then run: mixopt study run {out}" in result.stderr
    config = load_config(out)
    tokens = {s.name: s.tokens for s in config.sources}
    assert tokens == world["counts"], f"counted {tokens}, true {world['counts']}"
    print(f"\nFIGURE mixopt init token counts: {tokens} (true {world['counts']})")
    by_name = {s.name: s for s in config.sources}
    data = data.resolve()
    assert by_name["math"].paths == [str(data / "math")] and by_name["math"].token_dtype is None  # headed .npy
    assert by_name["web"].paths == [str(data / "web" / "*.jsonl")]
    assert by_name["code"].paths == [str(data / "code" / "*.parquet")]
    largest = max(tokens, key=tokens.get)
    (anchor,) = config.constraints
    assert anchor.sources == [largest] and 0 < anchor.min <= 0.25
    text = out.read_text()
    assert f"# Suggested anchor, not a measurement: {largest}, the largest source" in text
    assert [(o.metric, o.direction) for o in config.objectives] == [(f"bpb_{s}", "minimize") for s in ("web", "code", "math")]
    assert [f.name for f in config.fidelities] == ["microanneal", "integration"]
    micro, integration = (f.tokens for f in config.fidelities)
    assert micro < integration <= sum(tokens.values())
    assert config.runner.name == "microanneal"
    assert config.runner.options["model"] == str(world["base"]) and config.runner.options["block_size"] == 64
    assert "#" in text.splitlines()[0] and yaml.safe_load(text)["name"] == "study"
    config.space(config.fidelities[-1].name)  # feasible at the integration budget too

    again = run_mixopt("init", data / "web", "--tokenizer", world["base"], "--out", out, cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        f"error: {out} exists: choose another --out or pass --force to overwrite it"]


@pytest.mark.slow
def test_the_written_config_runs_two_trials_end_to_end(world, tmp_path, monkeypatch):
    """Two microanneals of the tiny model on the three sources, from `mixopt init`'s config as written."""
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path / "cache"))
    data = world["root"] / "data"
    written = run_mixopt("init", data / "web", data / "code", data / "math", "--tokenizer", world["base"],
                         "--out", tmp_path / "study.yaml", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    result = run_mixopt("study", "run", "study.yaml", "--n-trials", "2", "--batch-size", "2", "--no-report",
                        cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name=tmp_path.name, storage=f"sqlite:///{tmp_path / 'study.db'}")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 2 and len(study.trials) == 2
    for trial in complete:
        metrics = trial.user_attrs["metrics"]
        assert all(np.isfinite(metrics[f"bpb_{s}"]) for s in ("web", "code", "math"))
        trained = sum(metrics[f"tokens_{s}"] for s in ("web", "code", "math"))
        assert trained == load_config(tmp_path / "study.yaml").fidelities[0].tokens
    export = (tmp_path / "exports" / f"{tmp_path.name}.yaml").read_text()
    assert "WARNING" not in export  # every source has paths: OLMo-core's reader takes it as it is
    print(f"\nFIGURE two trials from the scaffolded config: {[t.values for t in complete]}")


def test_each_format_is_found_and_counted(world, tmp_path):
    """Plain text, a save_to_disk folder and raw token files (dtype from --token-dtype or the vocabulary)."""
    import datasets

    tokenizer, rng = world["tokenizer"], random.Random(3)
    docs = [prose(rng) for _ in range(20)]
    (tmp_path / "notes").mkdir()
    for i, doc in enumerate(docs[:5]):
        (tmp_path / "notes" / f"{i}.txt").write_text(doc)
    datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "raw").mkdir()
    world["stream"].astype(np.uint32).tofile(tmp_path / "raw" / "shard.bin")
    notes = scan_source(tmp_path / "notes", tokenizer)
    assert (notes.kind, notes.files, notes.tokens) == (TEXT_KIND, 5, true_count(tokenizer, docs[:5]))
    saved = scan_source(tmp_path / "saved", tokenizer)
    assert (saved.kind, saved.paths, saved.tokens) == (DATASET_KIND, (str((tmp_path / "saved").resolve()),), true_count(tokenizer, docs))
    raw = scan_source(tmp_path / "raw", token_dtype="uint32")
    assert (raw.kind, raw.tokens, raw.token_dtype) == (TOKEN_KIND, len(world["stream"]), "uint32")
    assert scan_source(tmp_path / "raw", tokenizer).tokens == 2 * len(world["stream"])  # read as uint16: 400 ids
    with pytest.raises(ConfigError, match="raw token file: pass --token-dtype"):
        scan_source(tmp_path / "raw")


def test_folders_that_cannot_be_sources_are_one_line_errors(world, tmp_path):
    (tmp_path / "mixed").mkdir()
    np.save(tmp_path / "mixed" / "a.npy", np.arange(10, dtype=np.uint16))
    (tmp_path / "mixed" / "b.txt").write_text("text")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "table.csv").write_text("text\nhello\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a" / "web").mkdir(parents=True)
    (tmp_path / "b" / "web").mkdir(parents=True)
    for folder in (tmp_path / "a" / "web", tmp_path / "b" / "web"):
        (folder / "x.txt").write_text("some text")
    cases = [
        ([tmp_path / "mixed"], r"mixes token files \(a\.npy\) with other files \(b\.txt\)"),
        ([tmp_path / "odd"], r"cannot read .*table\.csv: a source folder holds"),
        ([tmp_path / "empty"], r"holds no files"),
        ([tmp_path / "missing"], r"not a folder"),
        ([tmp_path / "a" / "web", tmp_path / "b" / "web"], r"two source folders are named web"),
    ]
    for folders, message in cases:
        with pytest.raises(ConfigError, match=message):
            scan_sources(folders, world["tokenizer"])
    with pytest.raises(ConfigError, match="source 'web' is text: pass --tokenizer"):
        scan_sources([tmp_path / "a" / "web"])
