"""A private PostgreSQL server started from Debian's postgresql package, for the tests that share a study
between controllers (``tests/scale``) and the chaos soak, which also stops and starts it."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from study_helpers import missing_component


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A fresh cluster with database ``mixopt`` (user ``mixopt``, password auth) on a free local port, started;
    :meth:`stop` and :meth:`start` restart the same server, :meth:`close` stops it and removes its files."""

    PASSWORD = "s3cret-pw"

    def __init__(self) -> None:
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bindirs:
            missing_component("PostgreSQL server not installed: apt-get install postgresql (.ci/run does)")
        self.bindir = Path(bindirs[-1])
        # Not under pytest's tmp folders: those are private to root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="mixopt-pg-"))
        self.data, pwfile = self.root / "data", self.root / "pw"
        self.data.mkdir()
        pwfile.write_text(f"{self.PASSWORD}\n")
        if os.geteuid() == 0:
            for path in (self.root, self.data, pwfile):
                shutil.chown(path, "postgres")
        self.port = free_port()
        subprocess.run(_as_postgres([str(self.bindir / "initdb"), "-D", str(self.data), "-A", "md5", "-U", "mixopt",
                                     f"--pwfile={pwfile}"]), check=True, capture_output=True)
        self.start()
        env = {**os.environ, "PGPASSWORD": self.PASSWORD}
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "mixopt",
                        "mixopt"], check=True, capture_output=True, env=env)

    @property
    def url(self) -> str:
        return self.url_via(self.port)

    def url_via(self, port: int) -> str:
        """The storage URL through ``port`` (the server's own, or a proxy's in front of it)."""
        return f"postgresql+psycopg://mixopt:{self.PASSWORD}@127.0.0.1:{port}/mixopt"

    def start(self) -> None:
        subprocess.run(_as_postgres([
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.data / "server.log"),
            "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=100", "start",
        ]), check=True, capture_output=True)

    def stop(self) -> None:
        """A fast shutdown: open sessions are cut, as a restart or a failover does."""
        subprocess.run(_as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       check=True, capture_output=True)

    def close(self) -> None:
        subprocess.run(_as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
