"""Decide whether an existing SQLite state file may be opened, before anything writes to it.

A state holds the ids of paid remote work; starting it over in silence would pay again. So a
file that exists and is empty, truncated, damaged or not a bria-run state raises
``StateUnusable`` and is left byte for byte as it was. The checks, cheapest first:

- 0 bytes, or a header that is not SQLite's;
- shorter than its header says (or not a whole number of pages): truncated;
- ``PRAGMA quick_check`` on a read-only connection. quick_check, not integrity_check: it
  reads every page and checks every b-tree and record (what a torn or truncated file
  breaks) but skips matching each index against its table, which makes it O(N) instead of
  O(N log N): milliseconds on a state of ten thousand steps;
- tables, none of them ``meta``: another program's database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runner.errors import StateUnusable

_MAGIC = b"SQLite format 3\x00"
_HEADER = 100


def check_existing(path: Path, location: str) -> None:
    """Raise ``StateUnusable`` when ``path`` exists and cannot be used as a state."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(_HEADER)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateUnusable(location, f"cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise StateUnusable(location, "is empty (0 bytes)")
    if not header.startswith(_MAGIC):
        raise StateUnusable(location, "is not a SQLite database, so not a bria-run state")
    wal = path.with_name(path.name + "-wal")
    if not (wal.exists() and wal.stat().st_size):
        # With a live WAL a runner may be checkpointing into the file right now (header first):
        # only SQLite, under its locks, can judge the length then.
        _check_length(header, size, location)
    _check_content(path, location)


def _check_length(header: bytes, size: int, location: str) -> None:
    if len(header) < _HEADER:
        raise StateUnusable(location, f"is truncated ({size} bytes, less than its header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is only valid when the two change counters agree.
    is_counted = header[24:28] == header[92:96] and pages > 0
    expected = pages * page_size if is_counted else size
    if page_size < 512 or size % page_size or size < expected:
        raise StateUnusable(location, f"is truncated ({size} bytes; its header says "
                                      f"{expected})")


def _check_content(path: Path, location: str) -> None:
    sidecars = [path.with_name(path.name + end) for end in ("-wal", "-shm")]
    had = [side.exists() for side in sidecars]
    try:
        _read_content(path, location)
    except StateUnusable:
        # A read-only look at a WAL-mode file makes its -wal and -shm: leave the folder as found.
        for side, existed in zip(sidecars, had, strict=True):
            if not existed:
                side.unlink(missing_ok=True)
        raise


def _read_content(path: Path, location: str) -> None:
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StateUnusable(location, f"cannot be opened ({exc})") from exc
    try:
        found = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        if found != ["ok"]:
            raise StateUnusable(location, f"fails SQLite's quick_check ({'; '.join(found)})")
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StateUnusable(location, f"is damaged (SQLite: {exc})") from exc
    finally:
        conn.close()
    if tables and "meta" not in tables:
        shown = ", ".join(sorted(tables)[:5])
        raise StateUnusable(location, f"is not a bria-run state (its tables: {shown})")
