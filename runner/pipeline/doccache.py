"""The checked form of an unchanged pipeline file, kept by the hash of its bytes.

Reading a 2,500-scene file with positions and checking it against the schema and the rules
takes about 0.2 s; a run that resumes it without an edit does the same work again. So after
a document passed those checks without a single problem, its data and positions are kept in
``<state folder>/cache/<key>.json``, the key being sha256 of the file's bytes, the schema's
text and bria-run's version (an edit, a new schema or a new bria-run misses). The checks of
the files the document names (images, references) still run every time: an image can change
while the pipeline file does not.

Entries are JSON, never pickle; a missing, corrupt or foreign entry is simply a miss, and a
cache that cannot be written is no error (the run goes on without it).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from runner import __version__
from runner.pipeline.schema import schema_text
from runner.pipeline.yamlpos import Document, Path_, Pos

FORMAT = 1
KEEP = 16  # entries kept per folder: the newest (a file edited often leaves old ones)


def key_of(raw: bytes) -> str:
    digest = hashlib.sha256(raw)
    digest.update(b"\0" + schema_text().encode() + b"\0" + __version__.encode())
    return digest.hexdigest()


def get(folder: Path | None, raw: bytes) -> Document | None:
    """The kept document for these bytes, or None."""
    if folder is None:
        return None
    key = key_of(raw)
    try:
        entry = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if entry.get("format") != FORMAT or entry.get("key") != key:
            return None
        return Document(entry["data"], _positions(entry["values"]), _positions(entry["keys"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def put(folder: Path | None, raw: bytes, doc: Document) -> None:
    """Keep ``doc`` (which passed every document check) for these bytes; never raises."""
    if folder is None:
        return
    try:
        if json.loads(json.dumps(doc.data)) != doc.data:
            return  # not plain JSON (a date, a number as a key): not worth a second form
    except (TypeError, ValueError):
        return
    key = key_of(raw)
    entry = {"format": FORMAT, "key": key, "data": doc.data,
             "values": _listed(doc.values), "keys": _listed(doc.keys)}
    import tempfile  # only when writing: keeps `validate`'s imports small

    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entry, out, separators=(",", ":"))
        os.replace(temp, folder / f"{key}.json")
        _prune(folder)
    except (OSError, TypeError, ValueError):
        pass


def _listed(positions: dict[Path_, Pos]) -> list[list[Any]]:
    return [[list(path), line, col] for path, (line, col) in positions.items()]


def _positions(rows: list[list[Any]]) -> dict[Path_, Pos]:
    return {tuple(path): (int(line), int(col)) for path, line, col in rows}


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)
