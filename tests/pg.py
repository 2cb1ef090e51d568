"""A real PostgreSQL server for the tests, never a skip: the one at 127.0.0.1:5432 when it
answers (this project's machines run one, trust auth, user ``postgres``), else one started
from the ``pgserver`` package (it ships the server binaries) in a temporary folder.
``BRIA_RUN_TEST_PGSERVER=1`` forces the second, to check a fresh machine's path.

Each test session works in throwaway databases (``bria_run_test_<pid>_<n>``), dropped at the
end whatever happened."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PgServer:
    """A server the tests may create databases on (``admin``: a URL of its ``postgres`` db)."""

    def __init__(self, admin: str, handle: Any = None) -> None:
        self.admin, self._handle = admin, handle
        self._names = (f"bria_run_test_{os.getpid()}_{n}" for n in itertools.count())
        self.created: list[str] = []

    def url_of(self, database: str) -> str:
        base, _, query = self.admin.partition("?")
        return base.rsplit("/", 1)[0] + f"/{database}" + (f"?{query}" if query else "")

    def create_database(self) -> str:
        name = next(self._names)
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return self.url_of(name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            for name in self.created:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                             .format(sql.Identifier(name)))
        self.created.clear()
        if self._handle is not None:
            self._handle.cleanup()


def local_answers(url: str = LOCAL) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def sweep_stale(admin: str) -> None:
    """Drop the throwaway databases of test sessions that died before their teardown (the
    pid in the name is gone), so killed sessions do not pile databases up."""
    with psycopg.connect(admin, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bria\\_run\\_test\\_%'")]
        for name in names:
            try:
                os.kill(int(name.split("_")[3]), 0)
                continue  # a live session's
            except ProcessLookupError:
                pass
            except (PermissionError, ValueError, IndexError):
                continue
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def start_server(folder: Path) -> PgServer:
    if os.environ.get("BRIA_RUN_TEST_PGSERVER") != "1" and local_answers():
        sweep_stale(LOCAL)
        return PgServer(LOCAL)
    import pgserver  # the fresh machine's path: a server of the suite's own

    handle = pgserver.get_server(folder, cleanup_mode="delete")
    return PgServer(handle.get_uri("postgres"), handle)
