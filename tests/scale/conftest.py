"""A private PostgreSQL server for the shared-storage tests, started from Debian's postgresql package."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from study_helpers import missing_component


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs:
        missing_component("PostgreSQL server not installed: apt-get install postgresql (.ci/run does)")
    bindir = Path(bindirs[-1])
    # Not under pytest's tmp folders: those are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="mixopt-pg-"))
    data, pwfile = root / "data", root / "pw"
    data.mkdir()
    pwfile.write_text("s3cret-pw\n")
    if os.geteuid() == 0:
        for path in (root, data, pwfile):
            shutil.chown(path, "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "md5", "-U", "mixopt",
                                 f"--pwfile={pwfile}"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([
        str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "server.log"),
        "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=100", "start",
    ]), check=True, capture_output=True)
    env = {**os.environ, "PGPASSWORD": "s3cret-pw"}
    subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mixopt", "mixopt"],
                   check=True, capture_output=True, env=env)
    yield f"postgresql+psycopg://mixopt:s3cret-pw@127.0.0.1:{port}/mixopt"
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
    shutil.rmtree(root, ignore_errors=True)
