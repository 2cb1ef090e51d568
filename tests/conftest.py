"""Fixtures shared by the PostgreSQL tests (``tests/pg.py``): one server per test session,
a fresh database per test that asks for ``pg_url``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import PgServer, start_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with tempfile.TemporaryDirectory(prefix="bria-run-pg-") as folder:
        server = start_server(Path(folder) / "data")
        try:
            yield server
        finally:
            server.drop_all()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A database of its own for this test (dropped with the session's others)."""
    return pg_server.create_database()
