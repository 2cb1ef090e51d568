"""Where the traceback of an unexpected error goes: a log file beside the state (the terminal
shows one line naming the step, the cause and this file), or the terminal with ``--debug``.

Tracebacks carry no secrets of bria-run's own, but an exception's text may quote an answer
from Bria: the token is redacted from every line written or shown.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from runner.errors import redact

DEBUG_ENV = "BRIA_RUN_DEBUG"
TOKEN_ENV = "BRIA_API_TOKEN"


def is_debug() -> bool:
    """``--debug`` or ``BRIA_RUN_DEBUG=1``: tracebacks go to the terminal too."""
    return os.environ.get(DEBUG_ENV) == "1"


def traceback_text(exc: BaseException) -> str:
    return redact("".join(traceback.format_exception(exc)), os.environ.get(TOKEN_ENV))


def log_path(location: str, fallback_folder: Path, name: str) -> Path:
    """``state/luna.sqlite`` -> ``state/luna.errors.log``; a database URL: the default state
    folder (a URL has no folder of its own)."""
    if "://" in location:
        return fallback_folder / f"{name}.errors.log"
    return Path(location).with_suffix(".errors.log")


def keep_traceback(exc: BaseException, path: Path, command: str) -> Path | None:
    """Append ``exc``'s traceback to ``path``; None when it cannot be written (a full disk):
    the one-line message is what counts."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {stamp} pid {os.getpid()}: {redact(command, os.environ.get(TOKEN_ENV))}\n")
            handle.write(traceback_text(exc))
    except OSError:
        return None
    return path
