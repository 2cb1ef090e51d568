"""How a state location becomes a SQLAlchemy engine: a path or a URL, a SQLite file created
private (0600) and checked before use, and the one place for what is dialect-specific (SQLite's
pragmas, the database clock).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Float, cast, create_engine, event, extract, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

from runner.errors import StateError, StateMissing
from runner.state.health import check_existing


def dialect_setup(engine: Engine) -> None:
    """SQLite pragmas, one place for everything dialect-specific."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL: readers (status, plan) never block the runner's writes, and a commit is one
        # append, which keeps per-step checkpoints cheap.
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a killed process (the WAL is in the OS cache); only a power
        # loss can drop the last commits, and reconciliation through the API covers that.
        cur.execute("PRAGMA synchronous=NORMAL")
        # Intents point at steps and artifacts at steps: refuse orphans.
        cur.execute("PRAGMA foreign_keys=ON")
        # A second process (bria-run status) may hold a read lock briefly; wait, don't fail.
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()


def db_clock(engine: Engine) -> ColumnElement[float]:
    """Now, on the database's clock (epoch seconds): leases and the shared budget are judged by
    one clock, whichever machine's runner reads them."""
    if engine.dialect.name == "postgresql":
        return cast(extract("epoch", func.clock_timestamp()), Float)
    return (func.julianday("now") - 2440587.5) * 86400.0


def state_url(location: str | Path) -> str:
    """A path becomes a SQLite URL; a URL (``postgresql://...``) is taken as is."""
    text = str(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _create_private(path: Path) -> None:
    """Create an empty file with mode 0600 before SQLite does (it would use the umask)."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


def _sweep_unfinished(path: Path) -> None:
    """Remove the half-built states of runners killed while creating this one (their pid is
    gone); a live runner's is left alone."""
    for left in path.parent.glob(f".{path.name}.new-*"):
        try:
            os.kill(int(left.name.rsplit("-", 1)[1]), 0)
        except ProcessLookupError:
            for part in (left, *(left.with_name(left.name + end) for end in ("-wal", "-shm"))):
                part.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue


def create_sqlite_state(path: Path, prepare: Callable[[Engine], None]) -> bool:
    """Build a new state beside ``path`` under a temporary name and move it into place only
    once ``prepare`` (pragmas, tables) is done, so a kill at any moment leaves either no state
    or a whole one: created in place, a kill in the first second left an empty or half-made
    file that every later run refused. True when this call created ``path``; False when
    another runner created it first (theirs is used)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_unfinished(path)
    building = path.with_name(f".{path.name}.new-{os.getpid()}")
    parts = (building, *(building.with_name(building.name + end) for end in ("-wal", "-shm")))
    for part in parts:
        part.unlink(missing_ok=True)
    _create_private(building)
    try:
        engine = create_engine(f"sqlite:///{building}")
        try:
            prepare(engine)
        finally:
            engine.dispose()  # the last connection closes: SQLite folds the WAL into the file
        try:
            os.link(building, path)  # atomic, and never over a state another runner made
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            if path.exists():
                return False
            os.replace(building, path)
        return True
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def forget(path: Path | None) -> None:
    """Remove a state file this open created and could not set up: left behind, the next
    run would find an empty file and (rightly) refuse it."""
    if path is not None and path.exists() and path.stat().st_size == 0:
        path.unlink()


SQLITE_FULL = 13  # sqlite3's result code for "database or disk is full"
PG_DISK_FULL = "53100"  # PostgreSQL's SQLSTATE disk_full


def is_disk_full(exc: OperationalError) -> bool:
    """Whether the database said its disk is full (SQLite or PostgreSQL)."""
    orig = exc.orig
    return (getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL
            or getattr(orig, "pgcode", None) == PG_DISK_FULL
            or "disk is full" in str(orig))


def sqlite_engine(url: str, path: Path | None, location: str | Path, create: bool,
                  prepare: Callable[[Engine], None]) -> tuple[Engine, bool]:
    """The engine of a SQLite file (refused untouched if it is not a usable state), and
    whether this call created the file (made whole by ``prepare`` before it appears)."""
    if path is not None and not create and not path.exists():
        raise StateMissing(f"no state at {location}: nothing has run for this pipeline yet")
    if path is not None:
        check_existing(path, str(location))
    try:
        is_new = path is not None and not path.exists() and create_sqlite_state(path, prepare)
        return create_engine(url), is_new
    except (OSError, ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StateError(f"cannot open the state at {location}: {exc}") from exc
