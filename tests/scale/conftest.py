"""A private PostgreSQL server for the shared-storage tests (``tests/pg_server.py``)."""

from __future__ import annotations

import pytest
from pg_server import PostgresServer


@pytest.fixture(scope="session")
def postgres_url() -> str:
    server = PostgresServer()
    yield server.url
    server.close()
