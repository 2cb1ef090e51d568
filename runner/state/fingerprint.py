"""Content hashes and step fingerprints.

"Has this run?" is data: a step's fingerprint is the sha256 of its canonical inputs,
including the fingerprint of the step it builds on, so a change anywhere upstream
changes everything downstream and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
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


def derived_seed(pipeline: str, scene: str, variation: int) -> int:
    """A seed that depends only on names, so a run's images can be reproduced."""
    digest = hashlib.sha256(f"{pipeline}/{scene}/{variation}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31)
