"""Content hashes and step fingerprints.

"Has this run?" is data: a step's fingerprint is the sha256 of its canonical inputs,
including the fingerprint of the step it builds on, so a change anywhere upstream
changes everything downstream and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def canonical(value: Any) -> str:
    """The one canonical text of a value: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(kind: str, inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical([kind, inputs]).encode()).hexdigest()


def fingerprint_parts(kind: str, *parts: str) -> str:
    """A fingerprint over inputs already in canonical text: lets the planner encode what
    many steps share (a scene's parameters, the model) once instead of once per step."""
    return hashlib.sha256("\x1f".join((kind, *parts)).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    """Stream a file through sha256 in 1 MiB chunks: memory stays flat for any size."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(
    paths: Iterable[Path], cache: Mapping[str, tuple[int, int, str]]
) -> tuple[dict[Path, str], list[tuple[str, int, int, str]]]:
    """Hash ``paths``, reusing ``cache`` (path -> size, mtime_ns, sha256) where the file's
    size and mtime are unchanged. Returns the hashes and the cache rows that are new."""
    hashes: dict[Path, str] = {}
    fresh: list[tuple[str, int, int, str]] = []
    for path in paths:
        if path in hashes:
            continue
        stat = os.stat(path)
        known = cache.get(str(path))
        if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            hashes[path] = known[2]
            continue
        digest = sha256_file(path)
        hashes[path] = digest
        fresh.append((str(path), stat.st_size, stat.st_mtime_ns, digest))
    return hashes, fresh


def derived_seed(pipeline: str, scene: str, variation: int) -> int:
    """A seed that depends only on names, so a run's images can be reproduced."""
    digest = hashlib.sha256(f"{pipeline}/{scene}/{variation}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31)
