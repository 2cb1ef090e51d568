"""How problems in a pipeline file are written: paths as users write them, values as they typed them.

Shared by the schema check, the cross-field rules, the file checks and the loader, so every
message in a `validate` report reads the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def format_path(path: Iterable[str | int]) -> str:
    """``("scenes", 2, "seed")`` -> ``scenes[2].seed``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def show(value: Any) -> str:
    """A value as a user wrote it, short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"`{value if len(value) <= 60 else value[:57] + '...'}`"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else (
        f"a {type(value).__name__}")
