"""What a run shows while it works.

The engine only calls ``Reporter.emit(kind, key=..., **data)`` (``runner.events``). Reporters turn events
into output: ``PlainReporter`` (timestamped lines, for logs and pipes), ``JsonReporter``
(one JSON object per line on stdout), ``QuietReporter`` (nothing), and ``LiveReporter``
(a rich live display on a terminal, in ``runner.display.live``). Reporters are called from
worker threads, so each one serialises its output.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, TextIO

from runner.events import EventKind


class QuietReporter:
    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        pass

    def close(self) -> None:
        pass


class JsonReporter:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        line = {"ts": round(time.time(), 3), "event": event, **({"key": key} if key else {}), **data}
        with self._lock:
            self.out.write(json.dumps(line, default=str) + "\n")
            self.out.flush()

    def close(self) -> None:
        pass


class PlainReporter:
    """Timestamped lines, one per meaningful change (no per-poll noise)."""

    def __init__(self, out: TextIO | None = None, prefix: str = "") -> None:
        self.out = out or sys.stderr
        self.prefix = prefix  # several pipelines in one command: "luna: " names each line
        self._lock = threading.Lock()
        self._last_training: str | None = None

    def emit(self, event: EventKind, key: str | None = None, **data: Any) -> None:
        line = describe(event, key, data)
        if event == "training":
            if data.get("status") == self._last_training:
                return
            self._last_training = data.get("status")
        if line is None:
            return
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            self.out.write(f"{stamp} {self.prefix}{line}\n")
            self.out.flush()

    def close(self) -> None:
        pass


def describe(kind: EventKind, key: str | None, data: dict[str, Any]) -> str | None:
    """One human line for an event, or None for events too fine-grained for a log."""
    if kind == "plan":
        return data.get("text")
    if kind == "phase":
        total = f" ({data['total']} images)" if data.get("total") else ""
        return f"== {data.get('name')}{total}"
    if kind == "step":
        state = data.get("state")
        if state == "done" and data.get("path"):
            return f"{key}: done -> {_shown(str(data['path']))}"
        if state == "done":
            rid = f" (id {data['remote_id']})" if data.get("remote_id") else ""
            return f"{key}: done{rid}"
        if state == "failed":
            return f"{key}: FAILED: {data.get('error')}"
        return None
    if kind == "training":
        elapsed = _duration(data.get("elapsed"))
        return f"training model {data.get('model_id')}: {data.get('status')}{elapsed}"
    if kind == "scene":
        state = data.get("state")
        if state == "recognised":
            return f"{key}: its image is already in place ({_shown(str(data.get('path')))}, " \
                   "as recorded beside it): kept, not generated again"
        return f"{key}: {state}" + (f" ({data['reason']})" if data.get("reason") else "") \
            if state in ("regenerating",) else None
    if kind == "wait":
        return f"rate limit: waiting {data.get('seconds', 0):.1f}s for {data.get('endpoint')}"
    if kind == "outage":
        return outage_line(data)
    if kind in ("notice", "moved", "adopted"):
        return data.get("message") or f"{key}: kept earlier output at {data.get('dst')}"
    if kind == "gallery":
        # After a finished run the last line names the page; here only before an error.
        return None if data.get("outcome") == "done" else f"gallery: {_shown(str(data['path']))}"
    if kind == "finished":
        return f"finished: {data.get('images', 0)} new image(s)"
    return None


def outage_line(data: dict[str, Any]) -> str:
    """``Bria unreachable for 4m12s, still waiting (training is not affected)``."""
    minutes, secs = divmod(int(data.get("seconds") or 0), 60)
    hours, minutes = divmod(minutes, 60)
    down = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
    running = f" ({data['running']} is not affected)" if data.get("running") else ""
    return f"Bria unreachable for {down}, still waiting{running}"


def _shown(path: str) -> str:
    """A path relative to the current folder when it is below it: shorter to read."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    except ValueError:
        return path


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f" ({hours}h{minutes:02d}m)" if hours else f" ({minutes}m{secs:02d}s)"
