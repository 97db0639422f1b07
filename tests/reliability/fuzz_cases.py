"""Seeded mutations of valid study configs and run tables for the deep fuzz test (tests/reliability/
test_fuzz_deep.py): one change per case (a field changed, dropped, duplicated, retyped, out of range; unicode
and path separators in names; NaN, inf, huge and tiny numbers; YAML anchors, aliases and alias bombs; damaged
text), each described in words so that a failing case can be reproduced."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

NUMBERS: list[Any] = [0, -1, 1, 2, -0.0, 0.5, 1e308, -1e308, 1e-308, 5e-324, 1e-12, 1e30, 10**30, 2**63, -(2**63),
                      float("nan"), float("inf"), float("-inf"), 1.0000001, 3]
STRINGS = ["", " ", "web", "../../escaped", "a/b", "a\\b", "nul\x00byte", "ẁeb", "数据", "\U0001f642", "$(touch X)",
           "; rm -rf ~", "{spec}", "%s%n", "x" * 300, "NaN", "1e9", "true", "~", "\t", "line\nbreak", "C:\\x", ".",
           "..", "mean(l*)", "knee", "best:math", "chebyshev:1,1,1", "local", "synthetic", "random", "botorch"]
OTHER_TYPES: list[Any] = [None, True, 3, 2.5, "text", [1, 2], {"a": 1}, [], {}, [{"name": "x"}], {"name": "x"}]


@dataclass(frozen=True)
class Case:
    """A mutated input: ``text`` (the YAML or CSV text), what was done to it, and the mutated key path
    (``()`` for changes to the text itself)."""

    text: str
    what: str
    path: tuple = ()


def _paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path in a YAML tree (dict keys and list indices), parents before children."""
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _get(node: Any, path: tuple) -> Any:
    for key in path:
        node = node[key]
    return node


def _pick(rng: np.random.Generator, options: list) -> Any:
    return options[int(rng.integers(len(options)))]


def _changed(rng: np.random.Generator, value: Any) -> Any:
    """A value of the same type, moved somewhere hostile."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return _pick(rng, [value * 10.0 ** int(rng.integers(-12, 13)), -value, value + 1, _pick(rng, NUMBERS)])
    if isinstance(value, str):
        return _pick(rng, [_pick(rng, STRINGS), value + _pick(rng, ["/", "\u0301", " ", "_2", "\x00"]), value.upper()])
    if isinstance(value, list):
        return _pick(rng, [value[::-1], value[:1], [], value + value[:1]])
    if isinstance(value, dict):
        return {k: v for i, (k, v) in enumerate(value.items()) if i != int(rng.integers(max(len(value), 1)))}
    return _pick(rng, OTHER_TYPES)


def config_case(rng: np.random.Generator, base: dict, base_text: str) -> Case:
    """One mutation of the config ``base`` (its YAML ``base_text``)."""
    kind = _pick(rng, ["change", "change", "drop", "duplicate", "retype", "range", "range", "name", "name",
                       "anchor", "bomb", "text"])
    if kind == "text":
        return _damaged_text(rng, base_text)
    if kind in ("anchor", "bomb"):
        return _aliased(rng, base, kind)
    data = copy.deepcopy(base)
    paths = [p for p in _paths(data) if "delay" not in p]  # a sleep the test itself asks for, not input
    if kind == "name":
        paths = [p for p in paths if p[-1] == "name"] or paths
    elif kind == "range":
        paths = [p for p in paths if isinstance(_get(data, p), (int, float)) and not isinstance(_get(data, p), bool)] or paths
    path = _pick(rng, paths)
    parent, key = _get(data, path[:-1]), path[-1]
    if kind == "change":
        parent[key] = _changed(rng, parent[key])
    elif kind == "drop":
        del parent[key]
    elif kind == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[_pick(rng, [f"{key}_", f"{key}".upper(), f"{key}s"])] = copy.deepcopy(parent[key])
    elif kind == "retype":
        parent[key] = _pick(rng, [t for t in OTHER_TYPES if type(t) is not type(parent[key])])
    elif kind == "range":
        parent[key] = _pick(rng, NUMBERS)
    else:
        parent[key] = _pick(rng, STRINGS)
    return Case(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), f"{kind} {'.'.join(map(str, path))}", path)


def byte_case(rng: np.random.Generator, data: bytes) -> tuple[bytes, str]:
    """One mutation of a config file's bytes (not its YAML): a bit flipped, a byte replaced (by a NUL, a
    byte that is never UTF-8, a random one), a span deleted or repeated, the file cut at a byte (maybe inside
    a character), or a UTF-16 byte-order mark put first; with what was done, in words."""
    at = int(rng.integers(len(data)))
    span = int(rng.integers(1, 64))
    kind = _pick(rng, ["flip", "replace", "delete", "repeat", "cut", "bom"])
    if kind == "flip":
        bit = int(rng.integers(8))
        return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1:], f"bytes: bit {bit} of byte {at} flipped"
    if kind == "replace":
        byte = _pick(rng, [0x00, 0xFF, 0xC0, 0x80, int(rng.integers(256))])
        return data[:at] + bytes([byte]) + data[at + 1:], f"bytes: byte {at} replaced by {byte:#04x}"
    if kind == "delete":
        return data[:at] + data[at + span:], f"bytes: {span} bytes deleted at {at}"
    if kind == "repeat":
        return data[:at + span] + data[at:], f"bytes: {span} bytes at {at} repeated"
    if kind == "cut":
        return data[:at], f"bytes: cut at byte {at}"
    return b"\xff\xfe" + data, "bytes: a UTF-16 byte-order mark first"


def _aliased(rng: np.random.Generator, base: dict, kind: str) -> Case:
    """YAML anchors (PyYAML writes ``&id001`` and ``*id001`` for an object met twice): a section of the
    config reused by alias at another key path, or a billion-laughs bomb (9 levels of 9 aliases each, 9**9
    leaves once expanded, a few hundred bytes of YAML) put in place of a section."""
    data = copy.deepcopy(base)
    path = _pick(rng, [p for p in _paths(data) if len(p) <= 4])
    if kind == "anchor":
        sections = [p for p in _paths(data) if isinstance(_get(data, p), (dict, list)) and p[: len(path)] != path]
        source = _pick(rng, sections)
        _get(data, path[:-1])[path[-1]] = _get(data, source)
        what = f"anchor: {'.'.join(map(str, source))} aliased at {'.'.join(map(str, path))}"
    else:
        level: list = ["lol"] * 9
        for _ in range(8):
            level = [level] * 9
        _get(data, path[:-1])[path[-1]] = level
        what = f"alias bomb (9**9 leaves) at {'.'.join(map(str, path))}"
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    assert "&id" in text
    return Case(text, what, path)


def _damaged_text(rng: np.random.Generator, text: str) -> Case:
    """The config text itself damaged: cut short, a tab, an unclosed bracket, a duplicated key, junk bytes."""
    lines = text.splitlines()
    at = int(rng.integers(len(lines)))
    kind = _pick(rng, ["truncate", "tab", "bracket", "duplicate key", "junk", "bom"])
    if kind == "truncate":
        damaged = text[: int(rng.integers(len(text)))]
    elif kind == "tab":
        damaged = "\n".join(("\t" + line) if i == at else line for i, line in enumerate(lines))
    elif kind == "bracket":
        damaged = "\n".join((line + " [") if i == at else line for i, line in enumerate(lines))
    elif kind == "duplicate key":
        damaged = "\n".join([*lines[: at + 1], lines[at], *lines[at + 1:]])
    elif kind == "junk":
        damaged = text[:at] + _pick(rng, ["\x00\x01\x02", "\ufffd\ufeff", "%YAML 9.9\n", "!!binary AAAA", "? [a]\n: b"]) + text[at:]
    else:
        damaged = "\ufeff" + text
    return Case(damaged, f"text: {kind} at line {at + 1}")


CELLS = ["abc", "", "nan", "NaN", "inf", "-inf", "1e308", "1e400", "1e-320", "-0.5", "2", " 0.5 ", "0x10", "١٠", "½",
         "1,5", "None", "true", "\x00", '"', "web", "../x"]
HEADERS = ["", " ", "web", " web", "Unnamed: 0", "run", "index", "name", "ẁeb", "数据", "../x", "a/b", "a\\b",
           "metric/x", "$(touch X)", "x" * 300, "math_loss", "run.1"]


@dataclass(frozen=True)
class TableCase:
    """A mutated pair of run tables (CSV text) and what was done to them."""

    ratios: str
    metrics: str
    what: str


def table_case(rng: np.random.Generator, ratios: pd.DataFrame, metrics: pd.DataFrame) -> TableCase:
    """One mutation of a valid pair of tables (``ratios`` and ``metrics``, joined on their first column)."""
    frames = {"ratios": ratios.copy(), "metrics": metrics.copy()}
    which = _pick(rng, ["ratios", "metrics"])
    frame = frames[which].astype(object)
    row, column = int(rng.integers(len(frame))), frame.columns[int(rng.integers(len(frame.columns)))]
    kind = _pick(rng, ["cell", "cell", "cell", "drop row", "drop column", "duplicate row", "duplicate column",
                       "retype column", "header", "header", "range", "text", "text"])
    what = f"{which}: {kind}"
    if kind == "cell":
        frame.loc[row, column] = _pick(rng, CELLS)
        what += f" {column!r} row {row + 1}"
    elif kind == "drop row":
        frame = frame.drop(index=row)
    elif kind == "drop column":
        frame = frame.drop(columns=column)
        what += f" {column!r}"
    elif kind == "duplicate row":
        frame = pd.concat([frame, frame.iloc[[row]]])
    elif kind == "duplicate column":
        frame.insert(len(frame.columns), f"{column}@@DUP@@", frame[column])
        what += f" {column!r}"
    elif kind == "retype column":
        frame[column] = [_pick(rng, ["a", "b", "c"]) for _ in range(len(frame))]
        what += f" {column!r}"
    elif kind == "header":
        new = _pick(rng, HEADERS)
        frame = frame.rename(columns={column: new})
        what += f" {column!r} -> {new!r}"
    elif kind == "range" and which == "ratios" and column != frame.columns[0]:
        frame.loc[row, column] = _pick(rng, [1.5, -0.1, 1e308, 5e-324, 0.0, 1.0 + 1e-9, 1e-300])
        what += f" {column!r} row {row + 1}"
    frames[which] = frame
    texts = {k: f.to_csv(index=False).replace("@@DUP@@", "") for k, f in frames.items()}
    if kind == "text":
        text = texts[which]
        at = int(rng.integers(len(text)))
        damage = _pick(rng, ["truncate", "bom", "semicolons", "crlf", "blank lines", "quote", "nul", "latin-1",
                             "header only", "empty"])
        texts[which] = {
            "truncate": text[:at], "bom": "\ufeff" + text, "semicolons": text.replace(",", ";"),
            "crlf": text.replace("\n", "\r\n"), "blank lines": text.replace("\n", "\n\n"), "quote": text[:at] + '"' + text[at:],
            "nul": text[:at] + "\x00" + text[at:], "latin-1": text[:at] + "\udce9" + text[at:],
            "header only": text.splitlines()[0] + "\n", "empty": "",
        }[damage]
        what += f" {damage} at character {at}"
    return TableCase(texts["ratios"], texts["metrics"], what)
