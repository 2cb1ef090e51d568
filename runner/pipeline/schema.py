"""The JSON Schema of pipeline files, as shipped.

An installed wheel carries it as ``runner/_schemas/pipeline.schema.json`` (pyproject's
hatch force-include); a source checkout reads ``<repo>/schemas/pipeline.schema.json``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from runner.errors import ConfigError

_NAME = "pipeline.schema.json"


def schema_text() -> str:
    """The schema file's text, exactly as shipped (what `bria-run schema` prints)."""
    return _read()


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The schema as a dict (parsed once per process)."""
    data: dict[str, Any] = json.loads(_read())
    return data


@lru_cache(maxsize=1)
def _read() -> str:
    shipped = files("runner") / "_schemas" / _NAME
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    in_repo = Path(__file__).resolve().parents[2] / "schemas" / _NAME
    if in_repo.is_file():
        return in_repo.read_text(encoding="utf-8")
    raise ConfigError(f"the pipeline schema {_NAME} is missing from this installation "
                      f"(looked in the package and in {in_repo.parent}); reinstall bria-run")
