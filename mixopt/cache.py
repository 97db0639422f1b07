"""mixopt's cache: the folder (``$MIXOPT_CACHE``, default ``~/.cache/mixopt``) and build-once folders in it,
built under a file lock into a temporary sibling, renamed into place, and described by a ``manifest.json``
holding the sha256 of every file so later uses can verify them.

The demo's data and base model and the microanneal runner's tokenized sources live here; this module
imports nothing above the errors, so both can use it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from mixopt.errors import ConfigError

MANIFEST = "manifest.json"


def cache_dir() -> Path:
    """Root of mixopt's cache: ``$MIXOPT_CACHE`` or ``~/.cache/mixopt``."""
    return Path(os.environ.get("MIXOPT_CACHE") or Path.home() / ".cache" / "mixopt").expanduser()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def locked(path: Path):
    """An exclusive lock on ``path`` (a lock file), held across processes for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(target: Path, build: Callable[[Path], dict], rebuild: bool = False, what: str | None = None) -> Path:
    """Return ``target``, first running ``build(tmp_dir) -> info`` if it is missing (or ``rebuild``).

    ``info`` (JSON-able) is stored in the manifest next to the files' checksums. Concurrent callers
    (several runner processes on a fresh machine) wait on the lock and find the finished folder. A build
    of ``what`` (e.g. "the demo base model") says so on stderr when it starts and ends: long first uses are
    never silent, with a terminal or without.
    """
    with locked(target.with_name(target.name + ".lock")):
        if (target / MANIFEST).is_file() and not rebuild:
            return target
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        started = time.monotonic()
        if what:
            print(f"mixopt: building {what} (first use, cached in {target.parent})", file=sys.stderr, flush=True)
        info = build(tmp)
        if what:
            print(f"mixopt: built {what} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"info": info, "sha256": files}, indent=1, sort_keys=True))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def verify(target: Path) -> dict:
    """Check every file against the manifest; returns the manifest's ``info``. Raises ``ConfigError``."""
    manifest = target / MANIFEST
    if not manifest.is_file():
        raise ConfigError(f"{target} is not a built cache folder (no {MANIFEST}): build it again")
    recorded = json.loads(manifest.read_text())
    for name, digest in recorded["sha256"].items():
        path = target / name
        if not path.is_file() or sha256_file(path) != digest:
            raise ConfigError(f"{path} is missing or changed since it was built: rebuild with --force")
    return recorded["info"]
