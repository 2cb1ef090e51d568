"""Image files inline in a JSON body, streamed: Bria takes images as base64 fields, and
building that text whole costs about four copies of the file in memory. ``InlineFile``
marks a field; ``json_stream`` yields the JSON with each file's base64 read and encoded
in small chunks, and says its exact length up front (no chunked encoding needed)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 3 * (1 << 16)  # a multiple of 3: base64 of each chunk joins without padding


@dataclass(frozen=True)
class InlineFile:
    path: Path

    def encoded_length(self) -> int:
        return 4 * ((os.path.getsize(self.path) + 2) // 3)

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield base64.b64encode(chunk)


def has_inline(value: Any) -> bool:
    if isinstance(value, InlineFile):
        return True
    if isinstance(value, dict):
        return any(has_inline(v) for v in value.values())
    if isinstance(value, list):
        return any(has_inline(v) for v in value)
    return False


def json_stream(body: Any) -> tuple[int, Iterator[bytes]]:
    """The body as JSON bytes: (exact length, chunk iterator)."""
    files: list[InlineFile] = []

    def mark(value: Any) -> Any:
        if isinstance(value, InlineFile):
            files.append(value)
            return f"@@inline-{len(files) - 1}@@"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(body))
    parts = [text.encode()]
    for n in range(len(files)):
        head, tail = parts[-1].split(f"@@inline-{n}@@".encode(), 1)
        parts[-1:] = [head, tail]
    length = sum(len(p) for p in parts) + sum(f.encoded_length() for f in files)

    def generate() -> Iterator[bytes]:
        for n, part in enumerate(parts):
            yield part
            if n < len(files):
                yield from files[n].chunks()

    return length, generate()
