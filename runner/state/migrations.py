"""Explicit, versioned creation and upgrade of a state's tables (a SQLite file, or one
pipeline's schema in PostgreSQL).

A new state is created at the latest version and every version is recorded as applied in
``migrations``; a state an older bria-run wrote is upgraded, one version at a time, in the
transaction that opens it; a state a newer bria-run wrote is refused before anything is read.
Version-1 states predate the ``migrations`` table: their version is the ``schema_version``
meta value.

Alembic was weighed and left out: two dialects, a schema per pipeline chosen at run time, a
wheel that must upgrade a state without an ``alembic.ini`` or a script folder, and one
migration so far; a list of functions and a table do all of that in a page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection

from runner import __version__
from runner.errors import StateTooNew
from runner.state.tables import SCHEMA_VERSION, meta, metadata, migrations

LEGACY_LEASE = 60.0  # what a version-1 runner's silence limit was


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[Connection], None]


def _nothing(_conn: Connection) -> None:
    """Version 1 is the first schema: created by ``metadata.create_all``, never upgraded to."""


def _lease_column(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("locks")}
    if "expires_at" not in columns:  # idempotent: an older bria-run kept the ALTER of a crash
        conn.execute(text("ALTER TABLE locks ADD COLUMN expires_at FLOAT"))
    conn.execute(text(f"UPDATE locks SET expires_at = heartbeat_at + {LEGACY_LEASE}"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "steps, intents, artifacts, events, locks, meta", _nothing),
    Migration(2, "the lock row becomes a lease: expires_at on the database clock", _lease_column),
)
LATEST = MIGRATIONS[-1].version
assert LATEST == SCHEMA_VERSION, "a schema change needs its migration"


def migrate(engine: Engine, location: str, *, serialise: Callable[[Connection], None]) -> int:
    """Bring the state at ``location`` to the latest version (``serialise`` keeps two runners
    from migrating at once); returns the version it had (0: it was new)."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            if applied_version(conn) == LATEST:
                return LATEST  # the usual case: nothing to write, no write lock taken
            # pysqlite runs DDL outside any transaction (it begins one only before DML): an
            # upgrade killed between an ALTER TABLE and its record would leave half of it.
            # One explicit transaction makes an upgrade all or nothing.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        serialise(conn)
        found = applied_version(conn)
        if found is None:
            metadata.create_all(conn)
            _record(conn, MIGRATIONS)
            return 0
        if found > LATEST:
            writer = conn.execute(select(meta.c.value).where(
                meta.c.key == "bria_run_version")).scalar()
            raise StateTooNew(location, found, writer, LATEST, __version__)
        todo = [m for m in MIGRATIONS if m.version > found]
        migrations.create(conn, checkfirst=True)
        for migration in todo:
            migration.upgrade(conn)
        _record(conn, todo)
        if todo:
            conn.execute(update(meta).where(meta.c.key == "schema_version")
                         .values(value=str(LATEST)))
        return found


def applied_version(conn: Connection) -> int | None:
    """The state's version: None when it holds no tables yet."""
    names = set(inspect(conn).get_table_names())
    if "migrations" in names:
        return int(conn.execute(select(func.max(migrations.c.version))).scalar_one() or 0)
    if "steps" not in names:
        return None
    if "meta" not in names:
        return 1
    stored = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(stored or 1)


def _record(conn: Connection, done: list[Migration] | tuple[Migration, ...]) -> None:
    now = time.time()
    for migration in done:
        conn.execute(insert(migrations).values(version=migration.version, name=migration.name,
                                               applied_at=now))
